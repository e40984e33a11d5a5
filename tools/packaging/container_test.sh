#!/usr/bin/env bash
# //tools/packaging:container_test: the container image, built and run for
# real with Docker (Debian's docker.io).
#
# The Docker daemon: the one answering at /var/run/docker.sock, else one this
# test starts (dockerd --storage-driver=vfs, no bridge, no iptables, its own
# socket, data and exec roots in a temporary directory) and stops at the end.
# Every case is skipped, with the reason, only where no daemon answers and
# none can start (not root; dockerd exits or never answers).
#
# Image: tools/packaging/Dockerfile builds, without network, from a context
#   holding that Dockerfile and the static binary of `bazel build //snaphaven`,
#   nothing else: one layer holding one file, /snaphaven, byte for byte the
#   built binary; USER 999:999, ENTRYPOINT /snaphaven, STOPSIGNAL SIGTERM;
#   `docker run IMAGE --version` answers, as uid 999, with no --user given.
# Sidecar: the container runs as kubernetes-sidecar.yaml runs its snaphaven
#   container, every setting read from the yaml: its args, its uid and gid,
#   read-only root file system, all capabilities dropped, no privilege
#   escalation, its memory and CPU limits, the data volume read-only at its
#   mount path, the backup volume at /backup, the pod's host name
#   (cassandra-0), its termination grace period as the stop timeout; plus no
#   network. Against a generated Cassandra tree (2 keyspaces, 2 snapshots, an
#   index dir) owned by uid 999, into a destination owned by uid 999: one
#   summary line "cycle done ... 0 failed", then `docker stop` ends the loop
#   with exit 0; the destination holds exactly the source's snapshots, same
#   bytes, mtimes and hard links, owned by 999:999; the source is unchanged.
# StopMidCopy: the same container with --max_bandwidth 4MiB on a tree of six
#   8 MiB Data.db files: `docker stop` once the first Data.db is in place
#   ends the run after the files in hand, exit 0, "cycle interrupted", not
#   everything copied; every file under its final name is whole (the bytes of
#   its source) and no temporary file is left. A new container (a pod
#   restart) completes the copy: the destination equals the source.
# KillMidCopy: the same, with `docker kill` (SIGKILL: a grace period run out,
#   the OOM killer): exit 137, every file under its final name whole; a new
#   container completes the copy.
set -euo pipefail
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:$PATH"

runfiles="${TEST_SRCDIR:-}/${TEST_WORKSPACE:-snaphaven}"
if [ -z "${TEST_SRCDIR:-}" ]; then  # by hand, from the repository root
  runfiles="$(cd "$(dirname "$0")/../.." && pwd)"
  bin="$runfiles/bazel-bin"
else
  bin="$runfiles"
fi
here="$runfiles/tools/packaging"
binary="$bin/snaphaven/snaphaven"
gen_tree="$bin/tools/gen_tree"
# shellcheck source=tools/packaging/test_cases.sh
source "$here/test_cases.sh"
cases=(Image Sidecar StopMidCopy KillMidCopy)
for f in "$binary" "$gen_tree"; do
  [ -x "$f" ] || { echo "FAIL: no $f"; exit 1; }
done

# Short paths: the daemon's sockets must fit in a sockaddr_un (108 bytes).
work=$(mktemp -d /tmp/snaphaven-container.XXXXXX)
chmod 0755 "$work"
tag="snaphaven-container-test:$$"
daemon_pid=""
containers=()

# Debian's client speaks the daemon's API version; another docker earlier on
# PATH may not build without BuildKit.
docker_cli=$(command -v /usr/bin/docker || command -v docker || true)
export DOCKER_CONFIG="$work/client" DOCKER_BUILDKIT=0
docker() { "$docker_cli" "$@"; }

cleanup() {
  set +e
  for c in "${containers[@]}"; do docker rm -f "$c" >/dev/null 2>&1; done
  [ -n "$docker_cli" ] && docker rmi -f "$tag" >/dev/null 2>&1
  if [ -n "$daemon_pid" ]; then
    kill -TERM "$daemon_pid" 2>/dev/null
    for _ in $(seq 1 300); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$daemon_pid" 2>/dev/null
    wait "$daemon_pid" 2>/dev/null
    # The containerd it started, should it outlive a killed dockerd.
    local pidfile="$work/d/exec/containerd/containerd.pid"
    [ -s "$pidfile" ] && kill -KILL "$(cat "$pidfile")" 2>/dev/null
    # What the daemon may leave mounted under its roots.
    grep -o " $work/[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m"; done
  fi
  rm -rf "$work"
}
trap cleanup EXIT

skip_all() {
  for c in "${cases[@]}"; do skip_case "$c" "$1"; done
  write_junit container_test "${cases[@]}"
  exit 0
}

# ------------------------------------------------------------------ daemon
start_daemon() {
  if [ -z "$docker_cli" ] || ! command -v dockerd >/dev/null; then
    fail "no docker or dockerd: install Debian's docker.io (tools/setup.sh does)"
    for c in "${cases[@]}"; do result[$c]=failed; done
    write_junit container_test "${cases[@]}"
    exit 1
  fi
  if docker info >/dev/null 2>&1; then
    echo "using the Docker daemon at ${DOCKER_HOST:-/var/run/docker.sock}"
    return
  fi
  if [ "$(id -u)" -ne 0 ]; then
    skip_all "no Docker daemon answers at ${DOCKER_HOST:-/var/run/docker.sock} and starting one needs root (run the tests as root)"
  fi
  local d="$work/d"
  mkdir -p "$d"
  export DOCKER_HOST="unix://$d/sock"
  dockerd --storage-driver=vfs --data-root="$d/root" --exec-root="$d/exec" \
    --pidfile="$d/pid" -H "$DOCKER_HOST" --bridge=none --iptables=false \
    --ip-masq=false >"$d/log" 2>&1 &
  daemon_pid=$!
  for _ in $(seq 1 600); do
    if docker info >/dev/null 2>&1; then
      echo "started dockerd (pid $daemon_pid, vfs) at $DOCKER_HOST"
      return
    fi
    kill -0 "$daemon_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "---- dockerd's log"
  tail -n 20 "$d/log"
  skip_all "dockerd --storage-driver=vfs cannot start here: $(grep . "$d/log" | tail -n 1)"
}

# --------------------------------------------------- the example's settings
# Reads kubernetes-sidecar.yaml's snaphaven container into shell variables:
# run_flags (the docker run options that mean the same), args, grace.
# A setting the test relies on that is missing from the yaml is a failure.
read_example() {
  local out
  out=$(python3 - "$here/kubernetes-sidecar.yaml" 2>&1 <<'PY'
import re, shlex, sys, yaml
docs = list(yaml.safe_load_all(open(sys.argv[1])))
sets = [d for d in docs if d and d.get("kind") == "StatefulSet"]
if len(sets) != 1:
    sys.exit("want one StatefulSet")
pod = sets[0]["spec"]["template"]["spec"]
[c] = [c for c in pod["containers"] if c["name"] == "snaphaven"]
sc = c.get("securityContext", {})
problems = []
def want(ok, what):
    if not ok:
        problems.append(what)
want(sc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem: true")
want(sc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation: false")
want(sc.get("capabilities", {}).get("drop") == ["ALL"], "capabilities: drop: [ALL]")
want(sc.get("runAsNonRoot") is True, "runAsNonRoot: true")
uid, gid = sc.get("runAsUser"), sc.get("runAsGroup")
want(uid == 999 and gid == 999, "runAsUser/runAsGroup 999")
limits = c.get("resources", {}).get("limits", {})
units = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30}
m = re.fullmatch(r"(\d+)(Ki|Mi|Gi)", str(limits.get("memory", "")))
want(m, "a memory limit in Ki, Mi or Gi")
cpu = re.fullmatch(r"(\d+)m", str(limits.get("cpu", "")))
want(cpu, "a CPU limit in millicores")
mounts = {v["mountPath"]: v for v in c.get("volumeMounts", [])}
want("/var/lib/cassandra" in mounts and mounts["/var/lib/cassandra"].get("readOnly") is True,
     "the data volume read-only at /var/lib/cassandra")
want("/backup" in mounts and not mounts["/backup"].get("readOnly"), "the backup volume at /backup")
grace = pod.get("terminationGracePeriodSeconds", 30)
if problems:
    sys.exit("the snaphaven container lacks: " + "; ".join(problems))
flags = ["--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
         "--user", f"{uid}:{gid}", "--memory", str(int(m[1]) * units[m[2]]),
         "--cpus", str(int(cpu[1]) / 1000), "--stop-timeout", str(grace),
         "--network", "none", "--hostname", sets[0]["metadata"]["name"] + "-0"]
print("run_flags=(" + " ".join(map(shlex.quote, flags)) + ")")
print("args=(" + " ".join(map(shlex.quote, map(str, c["args"]))) + ")")
print(f"grace={int(grace)}")
PY
  ) || { fail "reading kubernetes-sidecar.yaml: $out"; return 1; }
  eval "$out"
  echo "as kubernetes-sidecar.yaml: docker run ${run_flags[*]} IMAGE ${args[*]}"
}

# ----------------------------------------------------------------- helpers
# compare MODE SOURCE_DATA DEST: the snapshot files under SOURCE_DATA
# (<ks>/<table>/snapshots/...) against DEST. complete: the same set of
# files, bytes, mtimes, modes and hard links, owned by 999:999, nothing else
# (but .snaphaven/, whose tmp/ is empty). partial: every file under its final
# name is one of the source's, whole; nothing in .snaphaven/tmp. running (a
# copy under way): the same, but for .snaphaven/tmp. Prints what differs and
# the count of Data.db files in place.
compare() {
  python3 - "$@" <<'PY'
import filecmp, os, sys
mode, src, dst = sys.argv[1:]
def files(root, keep):
    out = {}
    for d, dirs, names in os.walk(root):
        rel = os.path.relpath(d, root)
        if rel.split(os.sep)[0] == ".snaphaven":
            continue
        for n in names:
            p = os.path.join(rel, n)
            if keep(p):
                out[os.path.normpath(p)] = os.lstat(os.path.join(root, p))
    return out
source = files(src, lambda p: p.split(os.sep)[2:3] == ["snapshots"])
dest = files(dst, lambda p: True)
problems = []
extra = sorted(set(dest) - set(source))
missing = sorted(set(source) - set(dest))
problems += [f"not from a source snapshot: {p}" for p in extra]
if mode == "complete":
    problems += [f"missing: {p}" for p in missing]
links_src, links_dst = {}, {}
for p in sorted(set(source) & set(dest)):
    s, d = source[p], dest[p]
    if d.st_size != s.st_size or not filecmp.cmp(os.path.join(src, p), os.path.join(dst, p), shallow=False):
        problems.append(f"not whole or not the source's bytes: {p} ({d.st_size} of {s.st_size} bytes)")
    if mode == "complete":
        if d.st_mtime_ns != s.st_mtime_ns:
            problems.append(f"mtime: {p}")
        if (d.st_mode & 0o7777) != (s.st_mode & 0o7777):
            problems.append(f"mode {oct(d.st_mode)}: {p}")
        links_src.setdefault(s.st_ino, set()).add(p)
        links_dst.setdefault(d.st_ino, set()).add(p)
    if (d.st_uid, d.st_gid) != (999, 999):
        problems.append(f"owned by {d.st_uid}:{d.st_gid}: {p}")
if mode == "complete" and sorted(map(sorted, links_src.values())) != sorted(map(sorted, links_dst.values())):
    problems.append("the hard links differ from the source's")
tmp = os.path.join(dst, ".snaphaven", "tmp")
if mode != "running" and os.path.isdir(tmp) and os.listdir(tmp):
    problems.append(f"left in .snaphaven/tmp: {sorted(os.listdir(tmp))}")
data = [p for p in dest if p.endswith("-Data.db")]
print(f"{mode}: {len(dest)} of {len(source)} files in place, {len(data)} Data.db")
for p in problems[:20]:
    print("  " + p)
sys.exit(1 if problems else 0)
PY
}

# A listing of a tree: paths, sizes, mtimes, modes, owners, inodes.
listing() { find "$1" -printf '%P %s %T@ %m %U:%G %i\n' | sort; }

# make_tree NAME GEN_TREE_FLAGS...: a generated Cassandra data root at
# $work/NAME/src/data with an empty commitlog archive directory beside it
# (what the example's init container makes), owned by 999:999, and an empty
# destination volume $work/NAME/backup owned by 999:999.
make_tree() {
  local name=$1
  shift
  mkdir -p "$work/$name/backup" "$work/$name/src/commitlog_archive"
  "$gen_tree" --out "$work/$name/src/data" "$@"
  chown -R 999:999 "$work/$name/src" "$work/$name/backup"
}

# run NAME CONTAINER EXTRA_ARGS...: starts the container (detached) as the
# example runs it, on tree NAME.
run() {
  local name=$1 container=$2
  shift 2
  containers+=("$container")
  docker run -d --name "$container" "${run_flags[@]}" \
    -v "$work/$name/src:/var/lib/cassandra:ro" -v "$work/$name/backup:/backup" \
    "$tag" "${args[@]}" "$@" >/dev/null || fail "docker run $container"
}

# wait_log CONTAINER REGEX SECONDS: until the container's output matches.
wait_log() {
  local i
  for i in $(seq 1 $(($3 * 5))); do
    docker logs "$1" 2>&1 | grep -Eq "$2" && return 0
    [ "$(docker inspect -f '{{.State.Running}}' "$1")" = true ] || break
    sleep 0.2
  done
  docker logs "$1" 2>&1 | grep -Eq "$2"
}

exit_code() { docker inspect -f '{{.State.ExitCode}}' "$1" 2>&1 || true; }

# stop_and_check CONTAINER: docker stop; exit 0 wanted.
stop_and_check() {
  local started=$SECONDS
  docker stop -t "$grace" "$1" >/dev/null || true
  local code
  code=$(exit_code "$1")
  echo "docker stop $1: exit $code after $((SECONDS - started)) s"
  [ "$code" = 0 ] || fail "$1: docker stop: exit $code, want 0"
}

summaries() { docker logs "$1" 2>&1 | grep -E '(cycle|dry run) (done|interrupted|failed):' || true; }

# check_summary CONTAINER done|interrupted: its output holds one summary
# line, "cycle <that>: ... 0 failed, ...".
check_summary() {
  local lines
  lines=$(summaries "$1")
  [ "$(grep -c . <<<"$lines")" -eq 1 ] && [[ "$lines" == *" cycle $2: "*" 0 failed, "* ]] ||
    fail "$1: want one summary line 'cycle $2: ... 0 failed', got: $lines"
}

# ------------------------------------------------------------------- Image
image() {
  local before=$failures ctx="$work/context"
  # No program interpreter (PT_INTERP): nothing to load from an empty image.
  python3 - "$binary" <<'PY' || fail "$binary is linked dynamically (a sanitizer build?): the image takes the default, static build"
import struct, sys
elf = open(sys.argv[1], "rb").read()
phoff, = struct.unpack_from("<Q", elf, 0x20)
phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
sys.exit(any(struct.unpack_from("<I", elf, phoff + i * phentsize)[0] == 3 for i in range(phnum)))
PY
  mkdir "$ctx"
  cp "$here/Dockerfile" "$binary" "$ctx/"
  chmod 0755 "$ctx/snaphaven"
  if ! docker build --network none -t "$tag" "$ctx" >"$work/build.log" 2>&1; then
    cat "$work/build.log"
    fail "docker build"
    result[Image]=failed
    return 1
  fi
  local config
  config=$(docker image inspect -f '{{.Config.User}} {{json .Config.Entrypoint}} {{.Config.StopSignal}} {{len .RootFS.Layers}}' "$tag")
  echo "image: $config"
  [ "$config" = '999:999 ["/snaphaven"] SIGTERM 1' ] ||
    fail "image config '$config', want '999:999 [\"/snaphaven\"] SIGTERM 1' (USER, ENTRYPOINT, STOPSIGNAL, one layer)"
  # The one layer: /snaphaven, the built binary, nothing else.
  docker save "$tag" -o "$work/image.tar"
  local layer
  layer=$(python3 - "$work/image.tar" "$binary" <<'PY'
import hashlib, io, json, sys, tarfile
image = tarfile.open(sys.argv[1])
[manifest] = json.load(image.extractfile("manifest.json"))
entries = []
for name in manifest["Layers"]:
    layer = tarfile.open(fileobj=io.BytesIO(image.extractfile(name).read()))
    for m in layer.getmembers():
        digest = ""
        if m.isfile():
            digest = hashlib.sha256(layer.extractfile(m).read()).hexdigest()
        entries.append(f"{m.name} {oct(m.mode & 0o7777)} {digest}")
built = hashlib.sha256(open(sys.argv[2], "rb").read()).hexdigest()
print("; ".join(entries))
sys.exit(0 if entries == [f"snaphaven 0o755 {built}"] else 1)
PY
  ) || fail "the image's layers hold '$layer', want only snaphaven (0755), the built binary"
  echo "layer: $layer"
  local out rc=0
  out=$(docker run --rm --network none "$tag" --version 2>&1) || rc=$?
  echo "docker run IMAGE --version: $out (exit $rc)"
  [ $rc -eq 0 ] && [[ "$out" =~ ^snaphaven\ [0-9] ]] || fail "docker run IMAGE --version: exit $rc: $out"
  end_case Image "$before"
}

# ----------------------------------------------------------------- Sidecar
sidecar() {
  local before=$failures c=sidecar-$$
  make_tree sidecar --keyspaces ks1,ks2 --tables 2 --sstables 2 --index_dirs 1 \
    --snapshots daily-1,daily-2 --data_size 256K
  local src_before
  src_before=$(listing "$work/sidecar/src")
  run sidecar "$c"
  local flags
  flags=$(docker inspect -f '{{.HostConfig.ReadonlyRootfs}} {{.HostConfig.CapDrop}} {{.HostConfig.SecurityOpt}} {{.Config.User}} {{.HostConfig.NetworkMode}} {{.HostConfig.Memory}}' "$c")
  echo "container: $flags"
  wait_log "$c" 'cycle (done|failed|interrupted):' 60 || fail "$c: no summary line in 60 s"
  stop_and_check "$c"
  docker logs "$c" 2>&1 | tail -n 5
  check_summary "$c" done
  compare complete "$work/sidecar/src/data" "$work/sidecar/backup/cassandra-0" ||
    fail "$c: the destination differs from the source's snapshots"
  [ "$(listing "$work/sidecar/src")" = "$src_before" ] || fail "$c: the source changed"
  end_case Sidecar "$before"
}

# ----------------------------------------- StopMidCopy and KillMidCopy
# interrupted CASE HOW: a long copy (six 8 MiB Data.db at 4 MiB/s), ended
# by HOW (stop: docker stop; kill: docker kill) once the first Data.db is in
# place; then a new container completes it.
interrupted() {
  local name=$1 how=$2 before=$failures c=$1-$$
  make_tree "$name" --keyspaces ks1,ks2 --tables 1 --sstables 3 --snapshots s1 --data_size 8M
  local dest="$work/$name/backup/cassandra-0"
  run "$name" "$c" --max_bandwidth 4MiB
  local i placed=0
  for i in $(seq 1 300); do
    placed=$(find "$dest" -name '*-Data.db' -not -path '*/.snaphaven/*' 2>/dev/null | wc -l)
    [ "$placed" -ge 1 ] && break
    [ "$(docker inspect -f '{{.State.Running}}' "$c")" = true ] || break
    sleep 0.1
  done
  echo "$c: $placed Data.db in place after $((i / 10)) s"
  [ "$placed" -ge 1 ] || fail "$c: no Data.db in place in 30 s"
  # While the copy goes on, what is in place is whole.
  local out
  if out=$(compare running "$work/$name/src/data" "$dest"); then echo "$out"; else fail "$c: while copying: $out"; fi
  echo "docker $how $c"
  if [ "$how" = stop ]; then
    stop_and_check "$c"
    docker logs "$c" 2>&1 | tail -n 3
    check_summary "$c" interrupted
  else
    docker kill "$c" >/dev/null || true
    docker wait "$c" >/dev/null || true
    local code
    code=$(exit_code "$c")
    echo "docker kill $c: exit $code"
    [ "$code" = 137 ] || fail "$c: docker kill: exit $code, want 137"
    [ -z "$(summaries "$c")" ] || fail "$c: killed, yet a summary line: $(summaries "$c")"
  fi
  if out=$(compare partial "$work/$name/src/data" "$dest"); then echo "$out"; else fail "$c: after docker $how: $out"; fi
  [[ "$out" != *" 6 Data.db"* ]] || fail "$c: everything was copied before docker $how ended the run (it did not end the cycle, or came too late)"

  # The restart: a new container for the same pod (same host name).
  local again=$c-restart
  run "$name" "$again" --max_bandwidth 4MiB
  wait_log "$again" 'cycle (done|failed|interrupted):' 120 || fail "$again: no summary line in 120 s"
  stop_and_check "$again"
  docker logs "$again" 2>&1 | tail -n 2
  check_summary "$again" done
  compare complete "$work/$name/src/data" "$dest" || fail "$again: the copy is not complete"
  end_case "$name" "$before"
}

start_daemon
if image; then
  if read_example; then
    sidecar
    interrupted StopMidCopy stop
    interrupted KillMidCopy kill
  fi
fi
write_junit container_test "${cases[@]}"
if [ $failures -ne 0 ]; then
  echo "FAILED: $failures check(s)"
  exit 1
fi
echo PASS
