#!/usr/bin/env bash
# Installs every Debian 12 package that building, testing, the demo and the
# benchmarks need. Idempotent: prints nothing when all is already there.
set -euo pipefail

packages=(
  bazel-bootstrap        # Bazel 4.2.3, builds offline
  g++
  libabsl-dev            # abseil (static libraries included)
  libre2-dev
  libgflags-dev
  libgoogle-glog-dev
  libgtest-dev
  libgmock-dev
  libunwind-dev          # glog's static library needs it
  liblzma-dev            # ... and this
  zlib1g-dev
  nlohmann-json3-dev     # parses snapshot manifest.json (header only)
  python3                # tools/test.sh reads the test results with it
  file                   # the demo shows the binary is static
  util-linux             # mount, fincore
  rsync                  # benchmarks compare with it
)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "setup: installing ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
  "${missing[@]}" >/dev/null
