#!/usr/bin/env bash
# Mounts a local directory through a real network file system on this
# machine: a private sshd on 127.0.0.1 and sshfs (FUSE over SFTP) through it.
# The same set-up as tools/nfs/sshfs_mount.h, for benchmarks and by hand.
#
#   tools/nfs/mount_sshfs.sh START <export dir> <mount point>
#   tools/nfs/mount_sshfs.sh STOP  <export dir> <mount point>
#
# START generates a host key and a client key, writes an sshd_config
# (127.0.0.1, a free port, that one key only, `Subsystem sftp internal-sftp`),
# starts sshd, waits for its port and mounts USER@127.0.0.1:<export dir> on
# <mount point> (created if missing). Its state (keys, config, pid file, logs)
# is kept in <mount point>.sshfs/ beside the mount point. STOP unmounts
# (lazily if busy), stops that sshd and removes the state directory; it is
# harmless when nothing is mounted.
#
# sshfs runs with its default caches (20 s for names and attributes); set
# SSHFS_OPTIONS (a comma-separated -o list, e.g. "dir_cache=no" or
# "disable_hardlink") to add options. Needs root (sshd's /run/sshd, FUSE) and
# the packages openssh-server, sshfs and fuse3 (tools/setup.sh).
set -euo pipefail

usage() {
  echo "usage: $0 START|STOP <export dir> <mount point>" >&2
  exit 2
}
[ $# -eq 3 ] || usage
action=$1
export_dir=$2
mount_point=${3%/}
state="$mount_point.sshfs"

fusermount=$(command -v fusermount3 || command -v fusermount || true)

is_mounted() {
  # Field 5 of mountinfo is the mount point (spaces escaped as \040).
  local escaped=${1// /\\040}
  awk -v mp="$escaped" '$5 == mp { found = 1 } END { exit !found }' /proc/self/mountinfo
}

stop() {
  local resolved=$mount_point parent
  if parent=$(cd "$(dirname "$mount_point")" 2>/dev/null && pwd -P); then
    resolved="${parent%/}/$(basename "$mount_point")"
  fi
  if is_mounted "$resolved"; then
    "$fusermount" -u "$resolved" 2>/dev/null || "$fusermount" -u -z "$resolved"
  fi
  if [ -f "$state/sshd.pid" ]; then
    local pid
    pid=$(cat "$state/sshd.pid")
    if kill "$pid" 2>/dev/null; then
      for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
      done
    fi
  fi
  rm -rf "$state"
}

start() {
  for tool in /usr/sbin/sshd ssh-keygen sshfs python3; do
    command -v "$tool" >/dev/null \
      || { echo "$0: $tool is missing (tools/setup.sh installs it)" >&2; exit 1; }
  done
  [ -n "$fusermount" ] || { echo "$0: fusermount3 is missing (fuse3)" >&2; exit 1; }
  [ -d "$export_dir" ] || { echo "$0: $export_dir is not a directory" >&2; exit 1; }
  if [ -f "$state/sshd.pid" ] && kill -0 "$(cat "$state/sshd.pid")" 2>/dev/null; then
    echo "$0: already started for $mount_point (STOP first)" >&2
    exit 1
  fi
  rm -rf "$state"
  mkdir -p "$state" "$mount_point"
  chmod 700 "$state"
  state=$(cd "$state" && pwd -P)
  local export_abs mount_abs user port
  export_abs=$(cd "$export_dir" && pwd -P)
  mount_abs=$(cd "$mount_point" && pwd -P)
  user=$(id -un)

  ssh-keygen -q -t ed25519 -N "" -C mount_sshfs -f "$state/host_key"
  ssh-keygen -q -t ed25519 -N "" -C mount_sshfs -f "$state/client_key"
  cp "$state/client_key.pub" "$state/authorized_keys"
  # A port free now (the kernel's choice).
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
  cat >"$state/sshd_config" <<EOF
# Written by tools/nfs/mount_sshfs.sh: loopback only, one key.
ListenAddress 127.0.0.1
Port $port
HostKey "$state/host_key"
PidFile "$state/sshd.pid"
AuthorizedKeysFile "$state/authorized_keys"
AuthenticationMethods publickey
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers $user
UsePAM no
StrictModes no
PermitTTY no
X11Forwarding no
AllowTcpForwarding no
PrintMotd no
UseDNS no
Subsystem sftp internal-sftp
EOF
  mkdir -p /run/sshd
  /usr/sbin/sshd -f "$state/sshd_config" -E "$state/sshd.log"  # daemonizes
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.05
  done
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || {
    echo "$0: sshd does not accept on 127.0.0.1:$port:" >&2
    tail "$state/sshd.log" >&2
    stop
    exit 1
  }
  local options="IdentityFile=$state/client_key,IdentitiesOnly=yes,StrictHostKeyChecking=no"
  options+=",UserKnownHostsFile=/dev/null,BatchMode=yes,LogLevel=ERROR,auto_unmount"
  [ -n "${SSHFS_OPTIONS:-}" ] && options+=",$SSHFS_OPTIONS"
  if ! sshfs -F /dev/null -p "$port" -o "$options" "$user@127.0.0.1:$export_abs" "$mount_abs" \
      2>"$state/sshfs.log"; then
    echo "$0: sshfs failed:" >&2
    cat "$state/sshfs.log" >&2
    stop
    exit 1
  fi
  echo "mounted $user@127.0.0.1:$export_abs on $mount_abs (sshd port $port, state in $state)"
}

case "$action" in
  START) start ;;
  STOP) stop ;;
  *) usage ;;
esac
