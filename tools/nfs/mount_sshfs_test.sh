#!/usr/bin/env bash
# tools/nfs/mount_sshfs.sh: START mounts an export through a loopback sshd,
# files written through the mount land in the export, STOP undoes all of it.
set -euo pipefail

script="${TEST_SRCDIR:-.}/snaphaven/tools/nfs/mount_sshfs.sh"
[ -x "$script" ] || script="$(dirname "$0")/mount_sshfs.sh"

skip() {
  echo "SKIPPED: $1"
  if [ -n "${XML_OUTPUT_FILE:-}" ]; then
    cat >"$XML_OUTPUT_FILE" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="1" failures="0" errors="0">
  <testsuite name="mount_sshfs_test" tests="1" failures="0" errors="0" skipped="1">
    <testcase name="StartWriteStop" result="skipped"><skipped message="$1"/></testcase>
  </testsuite>
</testsuites>
EOF
  fi
  exit 0
}
[ "$(id -u)" -eq 0 ] || skip "needs root (sshd's /run/sshd, FUSE mounts)"
for tool in /usr/sbin/sshd sshfs ssh-keygen; do
  command -v "$tool" >/dev/null || skip "$tool is missing (tools/setup.sh installs it)"
done
{ exec 9<>/dev/fuse; } 2>/dev/null || skip "/dev/fuse cannot be opened"
exec 9>&-

dir=$(mktemp -d "${TEST_TMPDIR:-/tmp}/mount_sshfs_XXXXXX")
dir=$(cd "$dir" && pwd -P)
mkdir "$dir/export"
trap '"$script" STOP "$dir/export" "$dir/mnt" >/dev/null 2>&1 || true' EXIT

"$script" START "$dir/export" "$dir/mnt"
grep -q " $dir/mnt fuse.sshfs " /proc/mounts || { echo "FAIL: not mounted"; exit 1; }
pid=$(cat "$dir/mnt.sshfs/sshd.pid")

echo hello >"$dir/mnt/file"
touch -d "2020-09-13 12:26:41.123456789" "$dir/mnt/file"
[ "$(cat "$dir/export/file")" = hello ] || { echo "FAIL: file not in the export"; exit 1; }
# sshfs keeps whole seconds.
[ "$(stat -c %y "$dir/export/file")" = "2020-09-13 12:26:41.000000000 +0000" ] \
  || { echo "FAIL: mtime $(stat -c %y "$dir/export/file")"; exit 1; }
# A second START on the same mount point is refused.
if "$script" START "$dir/export" "$dir/mnt" 2>/dev/null; then
  echo "FAIL: second START accepted"
  exit 1
fi

"$script" STOP "$dir/export" "$dir/mnt"
if grep -q " $dir/mnt " /proc/mounts; then echo "FAIL: still mounted"; exit 1; fi
if kill -0 "$pid" 2>/dev/null; then echo "FAIL: sshd $pid still running"; exit 1; fi
[ ! -e "$dir/mnt.sshfs" ] || { echo "FAIL: state directory left"; exit 1; }
[ "$(cat "$dir/export/file")" = hello ] || { echo "FAIL: export changed"; exit 1; }
# STOP again is harmless.
"$script" STOP "$dir/export" "$dir/mnt"
echo PASS
