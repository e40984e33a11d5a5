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
  liblz4-dev libsnappy-dev libzstd-dev  # commitlog segments' codecs (with zlib's Deflate)
  nlohmann-json3-dev     # parses snapshot manifest.json (header only)
  python3                # tools/test.sh reads the test results with it
  python3-yaml           # //tools/packaging:container_test reads the Kubernetes example
  docker.io              # ... and builds and runs the image (its own dockerd when none runs)
  file                   # the demo shows the binary is static
  util-linux             # mount, fincore
  rsync                  # benchmarks compare with it
  time                   # tools/bench: GNU time gives each benchmarked command's peak RSS
  openssh-server         # tools/nfs: a private sshd on 127.0.0.1 serves SFTP ...
  sshfs                  # ... to an sshfs mount: a real network file system
  fuse3                  # ... through FUSE (fusermount3)
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
# Installing openssh-server must not start a system sshd, nor docker.io a
# system dockerd: the tests run their own (sshd on 127.0.0.1; dockerd only
# when none answers). policy-rc.d tells the package scripts not to start
# services (only for this install, and only if no policy is in place).
policy=/usr/sbin/policy-rc.d
added_policy=""
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod +x "$policy"
  added_policy=1
fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
  "${missing[@]}" >/dev/null
[ -n "$added_policy" ] && $sudo rm -f "$policy"
exit 0
