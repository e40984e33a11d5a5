#!/usr/bin/env bash
# //tools/packaging:empty_root_test: what the packaging files promise.
#
# EmptyRoot: the binary runs in a root holding nothing but itself and a tiny
#   Cassandra tree (no libc, no /etc, no /proc, no /tmp: what the FROM scratch
#   image gives it): --version, a copy with identical bytes and mtimes, a
#   second run, exit 2 for bad configuration (the units' RestartPreventExitStatus),
#   exit 75 while another process holds the lock (the oneshot's
#   SuccessExitStatus), and, as uid 999 (the image's USER), a copy to a
#   destination that user owns. In a chroot as root, else in `unshare -r
#   --root`, else skipped with the reason.
# SystemdUnits: `systemd-analyze verify` finds nothing to say about the units,
#   their exposure (`systemd-analyze security --offline`) is at most 2.0, and
#   both services carry the same hardening block. Skipped without systemd-analyze.
# CronLine: snaphaven.cron holds one job line, as cassandra, with -q.
set -euo pipefail
# chroot is in /usr/sbin, not on the test environment's PATH.
export PATH="$PATH:/usr/sbin:/sbin"

here="${TEST_SRCDIR:-}/${TEST_WORKSPACE:-snaphaven}/tools/packaging"
binary="${TEST_SRCDIR:-}/${TEST_WORKSPACE:-snaphaven}/snaphaven/snaphaven"
if [ -z "${TEST_SRCDIR:-}" ]; then  # by hand, from the repository root
  here="$(cd "$(dirname "$0")" && pwd)"
  binary="$here/../../bazel-bin/snaphaven/snaphaven"
fi
[ -x "$binary" ] || { echo "FAIL: no binary at $binary"; exit 1; }
binary="$(cd "$(dirname "$binary")" && pwd -P)/$(basename "$binary")"

work=$(mktemp -d "${TEST_TMPDIR:-/tmp}/empty_root_XXXXXX")
work=$(cd "$work" && pwd -P)
trap 'rm -rf "$work"' EXIT

# shellcheck source=tools/packaging/test_cases.sh
source "$here/test_cases.sh"

# ---------------------------------------------------------------- EmptyRoot
empty_root() {
  local root="$work/root"
  local table=ks1/t-0123456789abcdef0123456789abcdef
  local snapshot="$table/snapshots/s1"
  local files="nb-1-big-Data.db nb-1-big-TOC.txt manifest.json"
  mkdir -p "$root/data/$snapshot"
  cp "$binary" "$root/snaphaven"
  chmod 0755 "$root" "$root/snaphaven"
  # The tree, with plain shell: a Data.db with bytes text tools would mangle,
  # its TOC, the snapshot's manifest; mtimes in the past, with nanoseconds.
  printf 'sstable\000\001\002\377\376 data\r\n\000' >"$root/data/$snapshot/nb-1-big-Data.db"
  printf 'Data.db\nTOC.txt\n' >"$root/data/$snapshot/nb-1-big-TOC.txt"
  printf '{"files":["nb-1-big-Data.db"],"created_at":"2026-01-02T03:04:05.678Z","expires_at":null,"ephemeral":false}\n' \
    >"$root/data/$snapshot/manifest.json"
  for f in $files; do
    chmod 0644 "$root/data/$snapshot/$f"
    touch -d "2026-01-02 03:04:05.123456789" "$root/data/$snapshot/$f"
  done
  find "$root/data" -type d -exec chmod 0755 {} +

  # How to enter the root: probe with --version. A binary that is not fully
  # static fails here with 127 (its loader is missing): that is a failure, not
  # a reason to skip.
  local mode="" out rc
  if [ "$(id -u)" -eq 0 ] && command -v chroot >/dev/null; then
    rc=0; out=$(chroot "$root" /snaphaven --version 2>&1) || rc=$?
    if [ $rc -eq 0 ]; then
      mode=chroot
    elif [ $rc -ne 125 ]; then  # 125: chroot itself failed
      fail "chroot <root> /snaphaven --version: exit $rc: $out"
      return
    fi
  fi
  if [ -z "$mode" ] && command -v unshare >/dev/null; then
    rc=0; out=$(unshare -r --root="$root" /snaphaven --version 2>&1) || rc=$?
    if [ $rc -eq 0 ]; then
      mode=unshare
    elif [ $rc -eq 126 ] || [ $rc -eq 127 ] || [[ "$out" != unshare:* ]]; then
      fail "unshare -r --root=<root> /snaphaven --version: exit $rc: $out"
      return
    fi
  fi
  if [ -z "$mode" ]; then
    skip_case EmptyRoot "cannot enter an empty root here (not root or chroot refused, and no user namespace: ${out:-no unshare})"
    return
  fi
  echo "entering the empty root with $mode"
  in_root() {
    if [ $mode = chroot ]; then chroot "$root" "$@"; else unshare -r --root="$root" "$@"; fi
  }
  local before=$failures

  [[ "$out" =~ ^snaphaven\ [0-9] ]] || fail "--version printed '$out'"
  echo "--version: $out"

  rc=0; out=$(in_root /snaphaven -d /data -s /dest ks1 2>&1) || rc=$?
  echo "$out"
  [ $rc -eq 0 ] || fail "first run: exit $rc"
  for f in $files; do
    local src="$root/data/$snapshot/$f" dst="$root/dest/$snapshot/$f"
    if [ ! -f "$dst" ]; then fail "/dest/$snapshot/$f missing"; continue; fi
    cmp -s "$src" "$dst" || fail "/dest/$snapshot/$f: bytes differ"
    [ "$(stat -c %y "$dst")" = "$(stat -c %y "$src")" ] ||
      fail "/dest/$snapshot/$f: mtime $(stat -c %y "$dst"), source $(stat -c %y "$src")"
  done

  rc=0; out=$(in_root /snaphaven -d /data -s /dest ks1 2>&1) || rc=$?
  echo "$out"
  [ $rc -eq 0 ] || fail "second run: exit $rc"
  for f in $files; do
    cmp -s "$root/data/$snapshot/$f" "$root/dest/$snapshot/$f" || fail "after the second run: $f differs"
  done

  # Bad configuration: exit 2 (the units must not restart on it).
  rc=0; out=$(in_root /snaphaven -d /data -s /dest no_such_keyspace 2>&1) || rc=$?
  [ $rc -eq 2 ] || fail "unknown keyspace: exit $rc, want 2: $out"
  rc=0; out=$(in_root /snaphaven -d /data ks1 2>&1) || rc=$?
  [ $rc -eq 2 ] || fail "no -s: exit $rc, want 2: $out"

  # The lock held by someone else: exit 75 (the oneshot's SuccessExitStatus).
  if command -v flock >/dev/null; then
    exec 8>>"$root/dest/.snaphaven/lock"
    flock -x 8
    rc=0; out=$(in_root /snaphaven -d /data -s /dest ks1 2>&1 8>&-) || rc=$?
    flock -u 8
    exec 8>&-
    [ $rc -eq 75 ] || fail "lock held: exit $rc, want 75: $out"
  else
    echo "SKIPPED: the exit 75 check: no flock(1)"
  fi

  # As uid:gid 999:999, the container's USER: no /etc/passwd, a destination
  # that user owns (the mounted volume), the source only readable.
  if [ $mode = chroot ] && chroot --help 2>&1 | grep -q -- --userspec; then
    mkdir "$root/backup"
    chown 999:999 "$root/backup"
    rc=0; out=$(chroot --userspec=999:999 "$root" /snaphaven -d /data -s /backup ks1 2>&1) || rc=$?
    echo "$out"
    [ $rc -eq 0 ] || fail "as 999:999: exit $rc"
    for f in $files; do
      local dst="$root/backup/$snapshot/$f"
      if [ ! -f "$dst" ]; then fail "as 999: /backup/$snapshot/$f missing"; continue; fi
      cmp -s "$root/data/$snapshot/$f" "$dst" || fail "as 999: /backup/$snapshot/$f: bytes differ"
      [ "$(stat -c %u:%g "$dst")" = 999:999 ] || fail "as 999: $f owned by $(stat -c %u:%g "$dst")"
    done
  else
    echo "SKIPPED: the run as uid 999: needs root and chroot --userspec"
  fi

  end_case EmptyRoot "$before"
}

# ------------------------------------------------------------- SystemdUnits
systemd_units() {
  local before=$failures
  # Both services carry the same hardening block.
  local a b
  a=$(sed -n '/^# --- Hardening/,/^# --- end of hardening/p' "$here/snaphaven.service")
  b=$(sed -n '/^# --- Hardening/,/^# --- end of hardening/p' "$here/snaphaven-oneshot.service")
  [ -n "$a" ] || fail "snaphaven.service: no hardening block"
  [ "$a" = "$b" ] || fail "the hardening blocks of snaphaven.service and snaphaven-oneshot.service differ"

  if ! command -v systemd-analyze >/dev/null; then
    skip_case SystemdUnits "systemd-analyze is not installed (apt-get install systemd)"
    return
  fi
  # verify checks that ExecStart's program exists: point it at the built one.
  local units="$work/units" out rc
  mkdir -p "$units"
  for f in snaphaven.service snaphaven-oneshot.service snaphaven.timer; do
    sed "s#/usr/local/bin/snaphaven#$binary#" "$here/$f" >"$units/$f"
  done
  rc=0; out=$(systemd-analyze verify "$units/snaphaven.service" \
    "$units/snaphaven-oneshot.service" "$units/snaphaven.timer" 2>&1) || rc=$?
  # verify exits 0 on an unknown key or a bad value, but says so.
  if [ $rc -ne 0 ] || grep -q snaphaven <<<"$out"; then
    fail "systemd-analyze verify (exit $rc): $out"
  fi
  if systemd-analyze security --help 2>&1 | grep -q -- --offline; then
    for f in snaphaven.service snaphaven-oneshot.service; do
      rc=0; out=$(systemd-analyze security --offline=true --threshold=20 --no-pager "$units/$f" 2>&1) || rc=$?
      tail -n 1 <<<"$out"
      [ $rc -eq 0 ] || fail "$f: exposure above 2.0: $(tail -n 1 <<<"$out")"
    done
  else
    echo "SKIPPED: systemd-analyze security --offline: this systemd lacks it"
  fi
  end_case SystemdUnits "$before"
}

# ----------------------------------------------------------------- CronLine
cron_line() {
  local before=$failures jobs
  # Job lines: not comments, not blank, not VAR=value.
  jobs=$(grep -Ev '^[[:space:]]*(#|$)|^[A-Za-z_]+=' "$here/snaphaven.cron" || true)
  [ "$(wc -l <<<"$jobs")" -eq 1 ] && [ -n "$jobs" ] || fail "snaphaven.cron: want one job line, got: $jobs"
  read -r m h dom mon dow user command <<<"$jobs"
  [ "$user" = cassandra ] || fail "snaphaven.cron: runs as '$user'"
  [[ " $command " == *" -q "* ]] || fail "snaphaven.cron: no -q in: $command"
  [[ "$command" != *%* ]] || fail "snaphaven.cron: an unescaped % (cron turns it into a newline)"
  [ -z "$(tail -c 1 "$here/snaphaven.cron")" ] || fail "snaphaven.cron: no final newline (cron ignores the last line)"
  end_case CronLine "$before"
}

empty_root
systemd_units
cron_line

write_junit empty_root_test EmptyRoot SystemdUnits CronLine

if [ $failures -ne 0 ]; then
  echo "FAILED: $failures check(s)"
  exit 1
fi
echo PASS
