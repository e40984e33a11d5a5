#!/usr/bin/env python3
"""Benchmarks snaphaven against reference tools (rsync, cp, find) on generated trees.

Generates Cassandra data trees with the project's generator (bazel-bin/tools/gen_tree), runs
snaphaven and the reference tools on them in alternation (run 1: A B C, run 2: B C A, ...),
and prints one markdown table: median wall time, CPU time (user+sys of the child and the
children it waited for, from wait4), peak RSS, a rate (files/s or MB/s) and the ratio to
snaphaven (the median of the per-run ratios tool/snaphaven: above 1 means slower than
snaphaven).

  tools/bench/bench.py --quick                       # small sizes (see --help for the list)
  tools/bench/bench.py                               # full sizes: 1M files, 3 GB, ...
  tools/bench/bench.py --cases nochange,manifest --files 200000 --out /tmp/bench.md

Cases (--cases, comma-separated; default all):
  nochange        N-file Cassandra-shaped tree (7 daily snapshots hard-linked to the live
                  sstables, 1 KiB Data.db), mirrored once; a no-change cycle of
                  `snaphaven --sync-sstables` vs `rsync -aH --delete` vs `rsync -a` vs
                  `find -printf` (the walk floor). Also snaphaven's peak RSS per file.
  nochange_sshfs  The same with the destination on an sshfs mount over loopback (a private
                  sshd on 127.0.0.1); skipped with a reason if sshd/sshfs/FUSE are missing.
  initial_copy    A few GB of realistic sstables (Data.db 64 to 256 MiB plus small
                  components, one hard-linked snapshot): snaphaven's first copy (with and
                  without --nochecksum) vs `cp -a` followed by `sync`. Source pages are evicted
                  before each run (cold source) unless --warm_source.
  new_snapshot    After a first copy: flush one new sstable per table and take one more
                  snapshot, then time the cycle that picks it up (snaphaven vs rsync -aH
                  --delete). A fresh flush+snapshot is made before each round of runs.
  small_files     First copy of many small files (live sstables only): snaphaven vs
                  `rsync -aH` vs `rsync -aH` + `sync`.
  manifest        Load/commit cost of a big manifest: on the nochange mirror, a no-change cycle
                  (-v 0: loads the manifest lazily, parsing only the live sections; commits
                  nothing) vs a cycle with one new sstable (reads that table's sections in
                  and commits: appends a record to the manifest's log). snaphaven prints no
                  separate timing for either. Also the bytes of state (manifest, its log,
                  directory cache) the one-sstable cycle wrote.

Measuring rules (see /work/shared/docs/offline-bazel.md, "Measuring on this machine"): tools
run in alternation, back to back; a timed copy's destination is never `rm -rf`'d between
timed runs: finished copies are renamed into <workdir>/trash/ and deleted at the very end
(unless --keep). Everything is under --workdir.
"""

import argparse
import datetime
import json
import math
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ALL_CASES = ["nochange", "nochange_sshfs", "initial_copy", "new_snapshot", "small_files",
             "manifest", "node", "node_memory"]
MARKER = ".snaphaven-bench"  # marks a --workdir as ours (safe to reuse and delete)

# Sizes: full run, quick run. Every one can be overridden by its flag.
FULL = dict(files=1_000_000, sshfs_files=20_000, initial_size="3G", small_files=100_000,
            snapshot_files=200_000, node_tables=100, memory_tables=500)
QUICK = dict(files=20_000, sshfs_files=2_000, initial_size="500M", small_files=5_000,
             snapshot_files=10_000, node_tables=4, memory_tables=8)
# The node case's shape (issue 14): tables x 160 sstables x 8 components, live plus 7 daily
# snapshots: 100 tables make 1,025,400 files, 500 make 5,127,000.
NODE_SSTABLES = 160

# Cassandra-shaped tree used by nochange, nochange_sshfs, new_snapshot and manifest.
SHAPED_KEYSPACES = 4
SHAPED_SSTABLES = 50      # live sstables per table
SHAPED_SNAPSHOTS = 7      # daily snapshots, each hard-linking every live sstable
COMPONENTS = 8            # files per "nb" sstable written by the generator

SUMMARY_RE = re.compile(
    r"cycle done: (\d+) scanned, (\d+) copied, (\d+) linked, (\d+) unchanged, (\d+) skipped, "
    r"(\d+) failed.*?([\d.]+ [KMGT]?i?B) copied in ([\d.]+)s")
SSTABLE_RE = re.compile(r"^([a-z]{2})-(\d+)-(big|bti)-(.+)$")


def slug(text):
    return re.sub(r"[^\w.-]+", "_", text)


def log(message):
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


# ----------------------------------------------------------------------------- sizes & units

def parse_size(text):
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", text, re.IGNORECASE)
    if not m:
        raise argparse.ArgumentTypeError(f"bad size {text!r} (want e.g. 500M, 3G)")
    power = " KMGT".index(m.group(2).upper() or " ")
    return int(float(m.group(1)) * 1024 ** power)


def parse_bytes(text):
    """'3.7 MiB' (snaphaven's summary) -> bytes."""
    number, unit = text.split()
    power = {"B": 0, "KiB": 1, "MiB": 2, "GiB": 3, "TiB": 4}[unit]
    return float(number) * 1024 ** power


def human_bytes(n):
    for unit in ["B", "KiB", "MiB", "GiB"]:
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def human_seconds(s):
    if s is None:
        return "-"
    if s < 10:
        return f"{s:.3f} s"
    if s < 100:
        return f"{s:.2f} s"
    return f"{s:.1f} s"


def human_rate(value, unit):
    if value is None:
        return "-"
    if unit == "MB/s":
        return f"{value:,.0f} MB/s" if value >= 10 else f"{value:.2f} MB/s"
    return f"{value:,.0f} {unit}"


# ----------------------------------------------------------------------------- running

class Measurement:
    def __init__(self, wall, cpu, maxrss_kib, rc, stderr_text):
        self.wall = wall
        self.cpu = cpu
        self.maxrss = maxrss_kib * 1024
        self.rc = rc
        self.stderr = stderr_text
        self.summary = parse_summary(stderr_text)


def parse_summary(text):
    found = None
    for line in text.splitlines():
        m = SUMMARY_RE.search(line)
        if m:
            found = dict(scanned=int(m.group(1)), copied=int(m.group(2)),
                         linked=int(m.group(3)), unchanged=int(m.group(4)),
                         skipped=int(m.group(5)), failed=int(m.group(6)),
                         bytes=parse_bytes(m.group(7)), seconds=float(m.group(8)))
    return found


# A child forked from this Python process starts with Python's resident pages, and Linux
# keeps that high-water mark across exec: wait4's ru_maxrss would never be below ~14 MiB.
# GNU time forks the command from its own ~1 MiB process, so its %M is the command's own.
GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None


def measure(commands, log_dir, label):
    """Runs each argv of `commands` in turn (stopping at the first failure) and returns the
    wall time of all, their summed user+sys CPU (each child with the descendants it waited
    for, as wait4 reports) and the largest peak RSS of any of them (GNU time's %M). stdout
    goes to /dev/null, stderr to a log file that is returned in the measurement."""
    os.makedirs(log_dir, exist_ok=True)
    err_path = os.path.join(log_dir, slug(label) + ".stderr")
    rss_path = os.path.join(log_dir, slug(label) + ".rss")
    cpu = 0.0
    maxrss = 0
    rc = 0
    start = time.perf_counter()
    with open(err_path, "wb") as err:
        for argv in commands:
            if GNU_TIME:
                argv = [GNU_TIME, "-f", "bench_maxrss_kib %M", "-o", rss_path, *argv]
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL, stderr=err)
            try:
                _, status, usage = os.wait4(process.pid, 0)
            except BaseException:   # interrupted: stop the child before cleaning up
                process.terminate()
                process.wait()
                raise
            process.returncode = os.waitstatus_to_exitcode(status)
            cpu += usage.ru_utime + usage.ru_stime
            rss = usage.ru_maxrss
            if GNU_TIME:
                with open(rss_path) as f:
                    found = re.findall(r"^bench_maxrss_kib (\d+)$", f.read(), re.MULTILINE)
                rss = int(found[-1]) if found else 0
            maxrss = max(maxrss, rss)
            rc = process.returncode
            if rc != 0:
                break
    wall = time.perf_counter() - start
    with open(err_path, "r", errors="replace") as f:
        text = f.read()
    return Measurement(wall, cpu, maxrss, rc, text)


def run(argv, check=True, **kwargs):
    """Untimed helper command."""
    result = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)
    if check and result.returncode != 0:
        raise BenchError(f"{shlex.join(argv)} failed ({result.returncode}): "
                         f"{result.stderr.strip()[-2000:]}")
    return result


def sync():
    run(["sync"])


def evict_pages(root):
    """Drops the page cache of every regular file under root (they must be clean: sync
    first), so the next read comes from the disk."""
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = os.path.join(dirpath, name)
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            except OSError:
                continue
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


# ----------------------------------------------------------------------------- results

class Row:
    """One tool in one case: its measurements over the runs."""

    def __init__(self, case, tool, command, unit=None, amount=None, baseline=False):
        self.case = case
        self.tool = tool
        self.command = command   # shown under the table
        self.unit = unit         # "files/s" or "MB/s"
        self.amount = amount     # files or bytes (MB/s) per run, or None
        self.baseline = baseline
        self.runs = []           # Measurement, in run order
        self.notes = []
        self.failed = []

    def add(self, m):
        self.runs.append(m)
        if m.rc != 0:
            tail = m.stderr.strip().splitlines()[-1:] or [""]
            self.failed.append(f"run {len(self.runs)} exit {m.rc}: {tail[0][:160]}")

    def walls(self):
        return [m.wall for m in self.runs]

    def median_wall(self):
        return statistics.median(self.walls()) if self.runs else None

    def rate(self):
        wall = self.median_wall()
        if not wall or self.amount is None:
            return None
        amount = statistics.median(self.amount) if isinstance(self.amount, list) else self.amount
        return amount / 1e6 / wall if self.unit == "MB/s" else amount / wall


class Report:
    def __init__(self):
        self.rows = []
        self.case_notes = {}   # case -> [text]
        self.skipped = {}      # case -> reason

    def row(self, *args, **kwargs):
        r = Row(*args, **kwargs)
        self.rows.append(r)
        return r

    def note(self, case, text):
        self.case_notes.setdefault(case, []).append(text)


def alternate(rows_and_commands, runs, before_round=None, before_each=None, after_each=None):
    """rows_and_commands: [(row, fn(run_index) -> [argv, ...])]. Runs every tool once per
    round, the starting tool rotating from round to round."""
    n = len(rows_and_commands)
    for r in range(runs):
        if before_round:
            before_round(r)
        for k in range(n):
            row, make = rows_and_commands[(r + k) % n]
            if before_each:
                before_each(row, r)
            commands = make(r)
            m = measure(commands, LOG_DIR, f"{row.case}-{row.tool}-run{r + 1}")
            row.add(m)
            log(f"  {row.case} | {row.tool} | run {r + 1}: {m.wall:.3f} s"
                + (f" (exit {m.rc})" if m.rc else "")
                + (f" [{m.summary['copied']} copied, {m.summary['linked']} linked, "
                   f"{m.summary['unchanged']} unchanged]" if m.summary else ""))
            if after_each:
                after_each(row, r, m)


def ratio(row, base):
    if base is None or not row.runs or not base.runs:
        return None
    pairs = [a.wall / b.wall for a, b in zip(row.runs, base.runs) if b.wall > 0]
    return statistics.median(pairs) if pairs else None


def render(report, args, header_lines):
    out = []
    out.extend(header_lines)
    out.append("")
    out.append("| case | tool | median wall | CPU (user+sys) | peak RSS | rate | vs snaphaven "
               "| runs (wall, s) | notes |")
    out.append("|---|---|---:|---:|---:|---:|---:|---|---|")
    for case in ALL_CASES:
        if case in report.skipped:
            out.append(f"| {case} | (skipped) | | | | | | | {report.skipped[case]} |")
            continue
        rows = [r for r in report.rows if r.case == case]
        base = next((r for r in rows if r.baseline), None)
        for r in rows:
            if not r.runs:
                continue
            rr = ratio(r, base)
            cpu = statistics.median([m.cpu for m in r.runs])
            rss = max(m.maxrss for m in r.runs)
            notes = "; ".join(r.notes + r.failed)
            out.append(
                f"| {case} | {r.tool} | {human_seconds(r.median_wall())} | {human_seconds(cpu)} "
                f"| {human_bytes(rss)} | {human_rate(r.rate(), r.unit)} "
                f"| {'-' if rr is None else f'{rr:.2f}x'} "
                f"| {' / '.join(f'{w:.2f}' for w in r.walls())} | {notes} |")
    out.append("")
    out.append("Median wall and CPU over the runs; peak RSS is the largest over the runs (of "
               "one process: for rsync, the largest of its processes). CPU is user+sys of the "
               "child and the children it waited for (wait4); the sshfs and sshd processes "
               "serving a mount are not children and are not counted. \"vs snaphaven\" is the "
               "median over runs of tool time / snaphaven time in the same round: above 1 "
               "means slower than snaphaven. MB/s are 10^6 bytes of distinct inodes written "
               "per second.")
    for case in ALL_CASES:
        notes = report.case_notes.get(case)
        if notes:
            out.append("")
            out.append(f"**{case}**: " + " ".join(notes))
    out.append("")
    out.append("Commands:")
    out.append("")
    seen = set()
    for r in report.rows:
        if r.runs and (r.case, r.tool) not in seen:
            seen.add((r.case, r.tool))
            out.append(f"- {r.case} / {r.tool}: `{r.command}`")
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------------- trees

def gen_tree(args, out, **flags):
    argv = [args.gen_tree, f"--out={out}"]
    for key, value in flags.items():
        argv.append(f"--{key}={value}")
    result = run(argv)
    m = re.search(r": (\d+) files \((\d+) distinct inodes, (\d+) bytes\)", result.stdout)
    if not m:
        raise BenchError(f"unexpected gen_tree output: {result.stdout!r}")
    return dict(files=int(m.group(1)), inodes=int(m.group(2)), bytes=int(m.group(3)))


def shaped_layout(files):
    """(tables per keyspace, sstables per table) so that keyspaces x tables x (sstables x 8 x
    (1 + snapshots) + 2 x snapshots) is close to `files`: as few tables as allow at most
    SHAPED_SSTABLES sstables each."""
    per_sstable = COMPONENTS * (1 + SHAPED_SNAPSHOTS)
    per_table_max = SHAPED_SSTABLES * per_sstable + 2 * SHAPED_SNAPSHOTS
    tables = max(1, math.ceil(files / (SHAPED_KEYSPACES * per_table_max)))
    per_table = files / (SHAPED_KEYSPACES * tables)
    sstables = max(1, round((per_table - 2 * SHAPED_SNAPSHOTS) / per_sstable))
    return tables, sstables


def make_shaped_tree(args, home, files, data_size="1K", seed=1):
    """<home>/data/<keyspaces>: a Cassandra package-install home (-d <home>)."""
    tables, sstables = shaped_layout(files)
    keyspaces = [f"ks{i + 1}" for i in range(SHAPED_KEYSPACES)]
    log(f"generating {home}: {len(keyspaces)} keyspaces x {tables} tables x {sstables} sstables, "
        f"{SHAPED_SNAPSHOTS} snapshots, Data.db {data_size}")
    stats = gen_tree(args, os.path.join(home, "data"), keyspaces=",".join(keyspaces),
                     tables=tables, sstables=sstables, data_size=data_size, seed=seed,
                     snapshots=",".join(f"daily_{d}" for d in range(1, SHAPED_SNAPSHOTS + 1)))
    stats.update(keyspaces=keyspaces, tables=tables, sstables=sstables)
    log(f"  {stats['files']:,} files, {stats['inodes']:,} inodes, {human_bytes(stats['bytes'])}")
    return stats


def table_dirs(data_root, keyspaces):
    for ks in keyspaces:
        with os.scandir(os.path.join(data_root, ks)) as it:
            for entry in sorted(it, key=lambda e: e.name):
                if entry.is_dir(follow_symlinks=False) and "-" in entry.name:
                    yield entry.path


def sstable_files(directory):
    """{generation: [names]} of the sstable components directly in directory."""
    by_gen = {}
    try:
        with os.scandir(directory) as it:
            for entry in it:
                m = SSTABLE_RE.match(entry.name)
                if m and entry.is_file(follow_symlinks=False):
                    by_gen.setdefault(int(m.group(2)), []).append(entry.name)
    except FileNotFoundError:
        pass
    return by_gen


def flush_sstable(table_dir):
    """Emulates a memtable flush: a new live sstable (the next generation, counting the
    snapshots' too) with the components of the newest one copied under the new name, TOC.txt
    last. Same bytes, new inode: the digest still matches. Returns (files, bytes)."""
    live = sstable_files(table_dir)
    if not live:
        return 0, 0
    highest = max(live)
    snapshots = os.path.join(table_dir, "snapshots")
    if os.path.isdir(snapshots):
        for tag in os.listdir(snapshots):
            gens = sstable_files(os.path.join(snapshots, tag))
            if gens:
                highest = max(highest, max(gens))
    newest = max(live)
    names = sorted(live[newest], key=lambda n: n.endswith("TOC.txt"))
    files = nbytes = 0
    for name in names:
        m = SSTABLE_RE.match(name)
        new_name = f"{m.group(1)}-{highest + 1}-{m.group(3)}-{m.group(4)}"
        src = os.path.join(table_dir, name)
        dst = os.path.join(table_dir, new_name)
        shutil.copyfile(src, dst)
        files += 1
        nbytes += os.path.getsize(dst)
    return files, nbytes


def take_snapshot(table_dir, tag):
    """Emulates `nodetool snapshot -t tag` for one table (gen_tree has no such mode):
    hard-links every complete live sstable into snapshots/<tag>/, then writes manifest.json
    (as the generator does) and a copy of the table's schema.cql. Returns the file count."""
    snapdir = os.path.join(table_dir, "snapshots", tag)
    os.makedirs(snapdir)
    data_files = []
    count = 0
    for gen, names in sorted(sstable_files(table_dir).items()):
        if not any(n.endswith("-TOC.txt") for n in names):
            continue
        for name in names:
            os.link(os.path.join(table_dir, name), os.path.join(snapdir, name))
            count += 1
            if name.endswith("-Data.db"):
                data_files.append(name)
    now = datetime.datetime.now(datetime.timezone.utc)
    manifest = ('{\n  "files" : [ ' + ", ".join(json.dumps(n) for n in data_files) + " ],\n"
                f'  "created_at" : "{now.strftime("%Y-%m-%dT%H:%M:%S.")}'
                f'{now.microsecond // 1000:03d}Z",\n  "expires_at" : null\n}}')
    with open(os.path.join(snapdir, "manifest.json"), "w") as f:
        f.write(manifest)
    count += 1
    snapshots = os.path.join(table_dir, "snapshots")
    for other in sorted(os.listdir(snapshots)):
        schema = os.path.join(snapshots, other, "schema.cql")
        if other != tag and os.path.isfile(schema):
            shutil.copyfile(schema, os.path.join(snapdir, "schema.cql"))
            count += 1
            break
    return count




# ----------------------------------------------------------------------------- sshfs

class SshfsMount:
    """A private sshd on 127.0.0.1 (own port, host key and client key, key-only auth,
    internal-sftp) and an sshfs mount of `export` on `mountpoint` through it."""

    def __init__(self, base, options):
        self.base = base
        self.state = os.path.join(base, "state")
        self.export = os.path.join(base, "export")
        self.mountpoint = os.path.join(base, "mnt")
        self.options = options
        self.pid = None
        self.fusermount = shutil.which("fusermount3") or shutil.which("fusermount")

    def unavailable(self):
        for tool in ["/usr/sbin/sshd", "ssh-keygen", "sshfs"]:
            if not (os.access(tool, os.X_OK) if tool.startswith("/") else shutil.which(tool)):
                return f"{tool} is missing (tools/setup.sh installs openssh-server, sshfs)"
        if not self.fusermount:
            return "fusermount3 is missing (fuse3)"
        if not os.path.exists("/dev/fuse"):
            return "/dev/fuse does not exist (no FUSE in this container)"
        return None

    def start(self):
        os.makedirs(self.state, mode=0o700)
        os.makedirs(self.export)
        os.makedirs(self.mountpoint)
        for key in ["host_key", "client_key"]:
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "snaphaven-bench",
                 "-f", os.path.join(self.state, key)])
        shutil.copyfile(os.path.join(self.state, "client_key.pub"),
                        os.path.join(self.state, "authorized_keys"))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        user = run(["id", "-un"]).stdout.strip()
        config = os.path.join(self.state, "sshd_config")
        with open(config, "w") as f:
            f.write(f"""# snaphaven bench: loopback only, one key
ListenAddress 127.0.0.1
Port {port}
HostKey {self.state}/host_key
PidFile {self.state}/sshd.pid
AuthorizedKeysFile {self.state}/authorized_keys
AuthenticationMethods publickey
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers {user}
UsePAM no
StrictModes no
PermitTTY no
X11Forwarding no
AllowTcpForwarding no
PrintMotd no
UseDNS no
Subsystem sftp internal-sftp
""")
        os.makedirs("/run/sshd", exist_ok=True)
        run(["/usr/sbin/sshd", "-f", config, "-E", os.path.join(self.state, "sshd.log")])
        pidfile = os.path.join(self.state, "sshd.pid")
        deadline = time.time() + 10
        while time.time() < deadline:
            if os.path.exists(pidfile):
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1):
                        break
                except OSError:
                    pass
            time.sleep(0.05)
        if os.path.exists(pidfile):
            with open(pidfile) as f:
                self.pid = int(f.read().strip())
        else:
            raise BenchError("sshd did not start: " + open(
                os.path.join(self.state, "sshd.log")).read()[-1000:])
        options = (f"IdentityFile={self.state}/client_key,IdentitiesOnly=yes,"
                   "StrictHostKeyChecking=no,UserKnownHostsFile=/dev/null,BatchMode=yes,"
                   "LogLevel=ERROR")
        if self.options:
            options += "," + self.options
        run(["sshfs", "-F", "/dev/null", "-p", str(port), "-o", options,
             f"{user}@127.0.0.1:{self.export}", self.mountpoint])
        if not os.path.ismount(self.mountpoint):
            raise BenchError(f"sshfs did not mount {self.mountpoint}")
        log(f"sshfs: {user}@127.0.0.1:{self.export} on {self.mountpoint} (sshd pid {self.pid}, "
            f"port {port})")

    def stop(self):
        """Returns True when nothing is mounted any more."""
        if os.path.ismount(self.mountpoint):
            if run([self.fusermount, "-u", self.mountpoint], check=False).returncode != 0:
                time.sleep(1)
                run([self.fusermount, "-u", "-z", self.mountpoint], check=False)
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGTERM)
                for _ in range(100):
                    os.kill(self.pid, 0)
                    time.sleep(0.05)
            except ProcessLookupError:
                pass
            self.pid = None
        return not os.path.ismount(self.mountpoint)


# ----------------------------------------------------------------------------- second disk

class LoopDisk:
    """A fresh ext4 file system in an image file, loop-mounted on `mountpoint`: a second
    drive, as a destination is in production (snaphaven then makes a batch of small copies
    durable with one syncfs instead of an fsync per file). Needs root and a loop device."""

    def __init__(self, base, size):
        self.image = os.path.join(base, "disk.img")
        self.mountpoint = os.path.join(base, "mnt")
        self.size = size

    def unavailable(self):
        if os.geteuid() != 0:
            return "not root (mount needs it)"
        for tool in ["mkfs.ext4", "mount", "umount"]:
            if not shutil.which(tool, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin"):
                return f"{tool} is missing"
        if not os.path.exists("/dev/loop-control"):
            return "no loop devices here"
        return None

    def start(self):
        os.makedirs(self.mountpoint)
        with open(self.image, "wb") as f:
            f.truncate(self.size)
        path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
        env = dict(os.environ, PATH=path)
        # One inode per 4 KiB: room for many small files.
        subprocess.run(["mkfs.ext4", "-q", "-F", "-i", "4096", self.image], check=True, env=env,
                       stdout=subprocess.DEVNULL)
        result = subprocess.run(["mount", "-o", "loop", self.image, self.mountpoint], env=env,
                                capture_output=True, text=True)
        if result.returncode != 0 or not os.path.ismount(self.mountpoint):
            raise BenchError(f"cannot loop-mount {self.image}: {result.stderr.strip()}")
        log(f"second disk: ext4 image of {human_bytes(self.size)} on {self.mountpoint}")

    def stop(self):
        """Returns True when nothing is mounted any more."""
        if os.path.ismount(self.mountpoint):
            subprocess.run(["umount", self.mountpoint], check=False)
        return not os.path.ismount(self.mountpoint)


# ----------------------------------------------------------------------------- benchmark

LOG_DIR = None


class Bench:
    def __init__(self, args):
        self.args = args
        self.work = args.workdir
        self.report = Report()
        self.shaped = {}   # files -> fixture dict (shared by nochange and manifest)
        self.mounts = []
        self.disk = None  # LoopDisk of --second_disk, mounted on first use
        self.trash_count = 0
        self._baseline_rss = None

    def path(self, *parts):
        return os.path.join(self.work, *parts)

    def dest_path(self, *parts):
        """Where the copy cases write: the --second_disk mount when there is one."""
        if self.args.second_disk and self.disk is None:
            disk = LoopDisk(self.path("disk"), parse_size(self.args.second_disk))
            why = disk.unavailable()
            if why:
                raise BenchError(f"--second_disk: {why}")
            os.makedirs(self.path("disk"))
            self.mounts.append(disk)
            disk.start()
            self.disk = disk
        base = self.disk.mountpoint if self.disk else self.work
        return os.path.join(base, *parts)

    def where(self):
        if self.args.second_disk and self.args.shared_disk:
            return ("source and destinations on one fresh ext4 (a loop-mounted image, "
                    "--second_disk --shared_disk): the data's own disk")
        return ("destinations on a second disk (a loop-mounted ext4 image, --second_disk)"
                if self.args.second_disk else
                "destinations on the source's file system")

    def trash(self, path):
        """Moves a finished destination away instead of deleting it now (into a trash/
        directory on its own file system)."""
        if os.path.lexists(path):
            self.trash_count += 1
            on_disk = self.disk is not None and path.startswith(self.disk.mountpoint + "/")
            trash = (os.path.join(self.disk.mountpoint, "trash") if on_disk
                     else self.path("trash"))
            os.makedirs(trash, exist_ok=True)
            os.rename(path, os.path.join(trash, f"{self.trash_count:04d}-{os.path.basename(path)}"))

    def snaphaven(self, home, dest, keyspaces, *flags):
        return [self.args.binary, *flags, "--sync-sstables", "-d", home, "-s", dest, *keyspaces]

    def first_copy(self, case, home, data, dest_snap, dest_rsync, keyspaces):
        """Mirrors a tree once with snaphaven and with rsync -aH (untimed rows, one run)."""
        # On a node, snapshots are minutes old when they are copied. snaphaven
        # only trusts a snapshot directory not to change once its mtime is 2 s
        # old (and saves that knowledge with the copy's manifest commit), so
        # a tree copied the instant it was generated would be listed again on
        # every no-change cycle: let it settle first, as a real one has.
        time.sleep(3)
        log(f"{case}: first copy with snaphaven (setup)")
        m = measure([self.snaphaven(home, dest_snap, keyspaces)], LOG_DIR,
                    f"{case}-setup-snaphaven")
        if m.rc != 0:
            raise BenchError(f"snaphaven first copy failed ({m.rc}): {m.stderr[-2000:]}")
        s = m.summary
        log(f"  {m.wall:.1f} s: {s['copied']:,} copied, {s['linked']:,} linked")
        r = None
        if dest_rsync:
            log(f"{case}: first copy with rsync -aH (setup)")
            r = measure([["rsync", "-aH", data + "/", dest_rsync + "/"]], LOG_DIR,
                        f"{case}-setup-rsync")
            if r.rc != 0:
                raise BenchError(f"rsync first copy failed: {r.stderr[-2000:]}")
            log(f"  {r.wall:.1f} s")
        sync()
        return m, r

    def shaped_fixture(self, files):
        """A shaped tree of `files` files mirrored once by snaphaven and by rsync -aH."""
        if files in self.shaped:
            return self.shaped[files]
        base = self.path(f"shaped-{files}")
        home = os.path.join(base, "home")
        stats = make_shaped_tree(self.args, home, files)
        data = os.path.join(home, "data")
        sync()
        fx = dict(base=base, home=home, data=data, stats=stats,
                  dest_snap=os.path.join(base, "dest-snaphaven"),
                  dest_rsync=os.path.join(base, "dest-rsync"))
        fx["setup_snap"], fx["setup_rsync"] = self.first_copy(
            "nochange", home, data, fx["dest_snap"], fx["dest_rsync"], stats["keyspaces"])
        self.shaped[files] = fx
        return fx

    # ---- cases

    def case_nochange(self):
        case = "nochange"
        fx = self.shaped_fixture(self.args.files)
        home, data, ks = fx["home"], fx["data"], fx["stats"]["keyspaces"]
        n = fx["stats"]["files"]
        self.nochange_rows(case, home, data, ks, n, fx["dest_snap"], fx["dest_rsync"])
        s = fx["setup_snap"]
        self.report.note(case, (
            f"{n:,} files ({fx['stats']['inodes']:,} distinct inodes, "
            f"{human_bytes(fx['stats']['bytes'])}): {SHAPED_KEYSPACES} keyspaces x "
            f"{fx['stats']['tables']} table(s) x {fx['stats']['sstables']} live sstables, "
            f"{SHAPED_SNAPSHOTS} snapshots hard-linked to them, Data.db 1 KiB; warm cache. "
            f"Untimed setup (one run): snaphaven's first copy took {s.wall:.1f} s "
            f"({s.summary['copied']:,} copied, {s.summary['linked']:,} linked, "
            f"{n / s.wall:,.0f} files/s, peak RSS {human_bytes(s.maxrss)}), rsync -aH's "
            f"{fx['setup_rsync'].wall:.1f} s ({n / fx['setup_rsync'].wall:,.0f} files/s)."))

    def baseline_rss(self):
        """Peak RSS of `snaphaven --version`: the binary's own floor."""
        if self._baseline_rss is None:
            self._baseline_rss = measure([[self.args.binary, "--version"]], LOG_DIR,
                                         "snaphaven-version").maxrss
        return self._baseline_rss

    def nochange_rows(self, case, home, data, ks, n, dest_snap, dest_rsync, dest_walk=None):
        rows = []
        snap = self.report.row(case, "snaphaven", shlex.join(self.snaphaven(home, "<dest>", ks)),
                               "files/s", n, baseline=True)
        rows.append((snap, lambda r: [self.snaphaven(home, dest_snap, ks)]))
        rsync_h = self.report.row(case, "rsync -aH --delete",
                                  f"rsync -aH --delete {data}/ <dest>/", "files/s", n)
        rows.append((rsync_h, lambda r: [["rsync", "-aH", "--delete", data + "/",
                                          dest_rsync + "/"]]))
        rsync_a = self.report.row(case, "rsync -a", f"rsync -a {data}/ <dest>/", "files/s", n)
        rows.append((rsync_a, lambda r: [["rsync", "-a", data + "/", dest_rsync + "/"]]))
        walk = self.report.row(case, "find (walk floor)",
                               f"find {data} -printf '%s %T@\\n' > /dev/null", "files/s", n)
        rows.append((walk, lambda r: [["find", data, "-printf", r"%s %T@\n"]]))
        if dest_walk:
            walk_dest = self.report.row(case, "find on the copy",
                                        f"find <dest> -printf '%s %T@\\n' > /dev/null",
                                        "files/s", n)
            rows.append((walk_dest, lambda r: [["find", dest_walk, "-printf", r"%s %T@\n"]]))
        alternate(rows, self.args.runs)
        # Nothing must have been done: check snaphaven's summaries and rsync's dry run.
        for m in snap.runs:
            s = m.summary
            if s and (s["copied"] or s["linked"]):
                snap.notes.append(f"NOT a no-change cycle: {s['copied']} copied, "
                                  f"{s['linked']} linked")
                break
        rss = max(m.maxrss for m in snap.runs)
        floor = self.baseline_rss()
        snap.notes.append(f"peak RSS / file = {rss / n:,.0f} B ({(rss - floor) / n:,.0f} B "
                          f"above the {human_bytes(floor)} of --version)")
        dry = run(["rsync", "-aHni", "--delete", data + "/", dest_rsync + "/"], check=False)
        changes = [l for l in dry.stdout.splitlines() if l.strip()]
        if changes:
            rsync_h.notes.append(f"not a no-change run: a dry run still lists {len(changes):,} "
                                 f"changes, e.g. `{changes[0].strip()}`")
        return changes

    def case_nochange_sshfs(self):
        case = "nochange_sshfs"
        mount = SshfsMount(self.path("sshfs"), self.args.sshfs_options)
        reason = mount.unavailable()
        if reason:
            log(f"{case}: skipped: {reason}")
            self.report.skipped[case] = reason
            return
        self.mounts.append(mount)
        try:
            mount.start()
        except BenchError as e:
            log(f"{case}: skipped: cannot mount: {e}")
            self.report.skipped[case] = f"cannot mount sshfs: {str(e)[:300]}"
            mount.stop()
            return
        base = self.path("sshfs-tree")
        home = os.path.join(base, "home")
        stats = make_shaped_tree(self.args, home, self.args.sshfs_files, seed=2)
        data = os.path.join(home, "data")
        ks = stats["keyspaces"]
        n = stats["files"]
        sync()
        dest_snap = os.path.join(mount.mountpoint, "snaphaven")
        dest_rsync = os.path.join(mount.mountpoint, "rsync")
        setup_snap, setup_rsync = self.first_copy(case, home, data, dest_snap, dest_rsync, ks)
        changes = self.nochange_rows(case, home, data, ks, n, dest_snap, dest_rsync,
                                     dest_walk=dest_rsync)
        opts = self.args.sshfs_options or "none (defaults: 20 s attribute and name caches)"
        self.report.note(case, (
            f"{n:,} files (same shape as nochange, {stats['tables']} table(s) x "
            f"{stats['sstables']} sstables per keyspace); destination on sshfs over loopback "
            f"(extra sshfs options: {opts}). Untimed setup (one run): snaphaven's first copy "
            f"over sshfs took {setup_snap.wall:.1f} s ({n / setup_snap.wall:,.0f} files/s), "
            f"rsync -aH's {setup_rsync.wall:.1f} s ({n / setup_rsync.wall:,.0f} files/s). "
            f"The walk floor is find on the local source; \"find on the copy\" walks rsync's "
            f"copy through the mount."))
        if changes:
            self.report.note(case, (
                "rsync -aH never reaches a no-change state here: on sshfs every file has "
                "st_nlink 1 and its own inode number, so rsync -aH re-creates every hard link "
                "on every run (link to .<name>.<pid>, then a rename onto the existing link of "
                "the same inode, which POSIX makes a no-op, leaving the temporary name for the "
                "next run's --delete)."))
        if mount.stop():
            self.mounts.remove(mount)

    def case_initial_copy(self):
        case = "initial_copy"
        target = self.args.initial_size
        source = self.path("initial", "data")
        # Data.db sizes in MiB, in turn, until the target is reached; one keyspace per size.
        cycle = [64, 128, 256, 96, 192, 160]
        counts = {}
        total = i = 0
        while total < target:
            remaining = (target - total) >> 20
            size = cycle[i % len(cycle)]
            if remaining < size:   # the last one: what is left, but at least 64 MiB
                size = max(64, remaining)
            counts[size] = counts.get(size, 0) + 1
            total += size << 20
            i += 1
        keyspaces = []
        log(f"{case}: generating {human_bytes(total)} in {i} sstables "
            f"({', '.join(f'{c} x {s} MiB' for s, c in sorted(counts.items()))})")
        for seed, (size, count) in enumerate(sorted(counts.items()), start=10):
            ks = f"ks_{size}m"
            keyspaces.append(ks)
            # Its counts are of the whole tree at --out, so the last call's are the total.
            stats = gen_tree(self.args, source, keyspaces=ks, tables=1, sstables=count,
                             data_size=f"{size}M", snapshots="snap1", seed=seed)
        sync()
        need = (3 * self.args.runs + 2) * stats["bytes"]
        free = shutil.disk_usage(self.work).free
        if need > free - (5 << 30):
            raise BenchError(f"{case}: needs ~{human_bytes(need)} free in {self.work} "
                             f"(only {human_bytes(free)}; use a smaller --initial_size)")
        nbytes = stats["bytes"]
        home = source
        dests = self.path("initial")

        def dest(row, r):
            return os.path.join(dests, f"dest-{slug(row.tool)}-{r + 1}")

        snap = self.report.row(case, "snaphaven", shlex.join(self.snaphaven(home, "<new dest>",
                                                                          keyspaces)),
                               "MB/s", nbytes, baseline=True)
        nock = self.report.row(case, "snaphaven --nochecksum",
                               shlex.join(self.snaphaven(home, "<new dest>", keyspaces,
                                                         "--nochecksum")), "MB/s", nbytes)
        cp = self.report.row(case, "cp -a + sync", f"cp -a {source} <new dest>; sync", "MB/s",
                             nbytes)

        def before_each(row, r):
            sync()   # nobody pays for the previous run's dirty pages
            if not self.args.warm_source:
                evict_pages(source)

        def after_each(row, r, m):
            self.trash(dest(row, r))

        alternate([
            (snap, lambda r: [self.snaphaven(home, dest(snap, r), keyspaces)]),
            (nock, lambda r: [self.snaphaven(home, dest(nock, r), keyspaces, "--nochecksum")]),
            (cp, lambda r: [["cp", "-a", source, dest(cp, r)], ["sync"]]),
        ], self.args.runs, before_each=before_each, after_each=after_each)
        for row in (snap, nock):
            copied = [m.summary["bytes"] for m in row.runs if m.summary]
            if copied and abs(statistics.median(copied) - nbytes) > 0.01 * nbytes:
                row.notes.append(f"summary says {human_bytes(statistics.median(copied))} copied")
        mix = ", ".join(f"{c} x {s} MiB" for s, c in sorted(counts.items()))
        self.report.note(case, (
            f"{stats['files']} files ({stats['inodes']} distinct inodes, {human_bytes(nbytes)}): "
            f"{i} sstables with Data.db of {mix} "
            f"plus small components, live and in one hard-linked snapshot. "
            + ("Warm source (pages cached)." if self.args.warm_source else
               "Cold source: its pages are evicted (posix_fadvise DONTNEED) before each run.")
            + " `sync` (untimed) before each run. Each run writes a new destination; finished "
            "ones are renamed into trash/ and deleted at the end."))

    def case_new_snapshot(self):
        case = "new_snapshot"
        base = self.path("newsnap")
        home = os.path.join(base, "home")
        stats = make_shaped_tree(self.args, home, self.args.snapshot_files,
                                 data_size=self.args.snapshot_data_size, seed=3)
        data = os.path.join(home, "data")
        ks = stats["keyspaces"]
        sync()
        dest_snap = os.path.join(base, "dest-snaphaven")
        dest_rsync = os.path.join(base, "dest-rsync")
        self.first_copy(case, home, data, dest_snap, dest_rsync, ks)
        added = []   # per round: (files, bytes)

        def before_round(r):
            files = nbytes = 0
            for table in table_dirs(data, ks):
                f, b = flush_sstable(table)
                files += f
                nbytes += b
                files += take_snapshot(table, f"bench_{r + 1}")
            added.append((files, nbytes))
            sync()
            log(f"  round {r + 1}: flushed and snapshotted: {files:,} new files, "
                f"{human_bytes(nbytes)} new bytes")

        snap = self.report.row(case, "snaphaven", shlex.join(self.snaphaven(home, "<dest>", ks)),
                               "files/s", [], baseline=True)
        rs = self.report.row(case, "rsync -aH --delete", f"rsync -aH --delete {data}/ <dest>/",
                             "files/s", [])

        def after_each(row, r, m):
            row.amount.append(added[r][0])

        alternate([
            (snap, lambda r: [self.snaphaven(home, dest_snap, ks)]),
            (rs, lambda r: [["rsync", "-aH", "--delete", data + "/", dest_rsync + "/"]]),
        ], self.args.runs, before_round=before_round, after_each=after_each)
        summaries = [m.summary for m in snap.runs if m.summary]
        if summaries:
            mid = summaries[len(summaries) // 2]
            snap.notes.append(f"e.g. {mid['copied']:,} copied + {mid['linked']:,} linked, "
                              f"{human_bytes(mid['bytes'])} written (of {mid['scanned']:,} "
                              "scanned)")
        rs.notes.append(f"{human_bytes(statistics.median(b for _, b in added))} written")
        self.report.note(case, (
            f"Tree of {stats['files']:,} files ({SHAPED_KEYSPACES} keyspaces x "
            f"{stats['tables']} table(s) x {stats['sstables']} sstables, Data.db "
            f"{self.args.snapshot_data_size}, {SHAPED_SNAPSHOTS} snapshots), mirrored once. "
            f"Before each round (untimed): one new sstable per table (a copy of its newest, "
            f"under the next generation: a flush) and one more snapshot of every table "
            f"(hard links + manifest.json + schema.cql, as gen_tree has no snapshot mode): "
            f"{statistics.median(f for f, _ in added):,.0f} new files per round; "
            f"files/s counts those. The tree grows by one snapshot per round."))

    def case_small_files(self):
        case = "small_files"
        n = self.args.small_files
        keyspaces, tables = ["ks1", "ks2"], 10
        sstables = max(1, round(n / (len(keyspaces) * tables * COMPONENTS)))
        source = (self.dest_path("small", "data") if self.args.shared_disk
                  else self.path("small", "data"))
        log(f"{case}: generating {n:,} small files")
        stats = gen_tree(self.args, source, keyspaces=",".join(keyspaces), tables=tables,
                         sstables=sstables, snapshots="", data_size=self.args.small_data_size,
                         seed=4)
        sync()
        files = stats["files"]

        def dest(row, r):
            return self.dest_path("small", f"dest-{slug(row.tool)}-{r + 1}")

        snap = self.report.row(case, "snaphaven", shlex.join(self.snaphaven(source, "<new dest>",
                                                                          keyspaces)),
                               "files/s", files, baseline=True)
        rs = self.report.row(case, "rsync -aH", f"rsync -aH {source}/ <new dest>/", "files/s",
                             files)
        rss = self.report.row(case, "rsync -aH + sync", f"rsync -aH {source}/ <new dest>/; sync",
                              "files/s", files)
        alternate([
            (snap, lambda r: [self.snaphaven(source, dest(snap, r), keyspaces)]),
            (rs, lambda r: [["rsync", "-aH", source + "/", dest(rs, r) + "/"]]),
            (rss, lambda r: [["rsync", "-aH", source + "/", dest(rss, r) + "/"], ["sync"]]),
        ], self.args.runs, before_each=lambda row, r: sync(),
            after_each=lambda row, r, m: self.trash(dest(row, r)))
        self.report.note(case, (
            f"{files:,} files ({human_bytes(stats['bytes'])}): live sstables only, "
            f"{len(keyspaces)} keyspaces x {tables} tables x {sstables} sstables, Data.db "
            f"{self.args.small_data_size}; warm source; {self.where()}; `sync` (untimed) "
            f"before each run; a new destination per run (finished ones renamed into trash/). "
            f"snaphaven makes every file durable (one syncfs per batch; on the data's own disk "
            f"only while the system holds at most 32 MiB of other unwritten data, else an fsync "
            f"per file); plain rsync does not, hence the rsync + sync row."))

    def case_node(self):
        NodeCase(self, "node", self.args.node_tables).run()

    def case_node_memory(self):
        MemoryCase(self, "node_memory", self.args.memory_tables).run()

    def case_manifest(self):
        case = "manifest"
        fx = self.shaped_fixture(self.args.files)
        home, data, ks = fx["home"], fx["data"], fx["stats"]["keyspaces"]
        dest = fx["dest_snap"]
        manifest = os.path.join(dest, ".snaphaven", "manifest")
        first_table = next(table_dirs(data, ks))

        state_files = [manifest, manifest + ".log", os.path.join(dest, ".snaphaven", "dircache")]
        before = {}
        written = []   # bytes of state each one-sstable cycle wrote

        def state_stat():
            out = {}
            for path in state_files:
                try:
                    st = os.stat(path)
                    out[path] = (st.st_ino, st.st_size)
                except FileNotFoundError:
                    out[path] = None
            return out

        def flush_one(row, r):
            if row is change:
                files, _ = flush_sstable(first_table)
                sync()
                before.clear()
                before.update(state_stat())

        def state_written(row, r, m):
            # The state files are replaced whole (a new inode: its whole size written) or,
            # the manifest's log, appended to (its growth written).
            if row is not change:
                return
            total = 0
            for path, now in state_stat().items():
                old = before.get(path)
                if now is None:
                    continue
                if path.endswith(".log") and old is not None and old[0] == now[0]:
                    total += max(0, now[1] - old[1])
                elif old is None or old[0] != now[0]:
                    total += now[1]
            written.append(total)

        nochange = self.report.row(case, "no-change cycle (load)",
                                   shlex.join(self.snaphaven(home, "<dest>", ks, "-v", "0")),
                                   "files/s", fx["stats"]["files"], baseline=True)
        change = self.report.row(case, "1 new sstable (load + commit)",
                                 "same, after a flush of one sstable (8 files) in one table",
                                 "files/s", fx["stats"]["files"])
        alternate([
            (nochange, lambda r: [self.snaphaven(home, dest, ks, "-v", "0")]),
            (change, lambda r: [self.snaphaven(home, dest, ks, "-v", "0")]),
        ], self.args.runs, before_each=flush_one, after_each=state_written)
        for m in change.runs:
            if m.summary and m.summary["copied"] == 0:
                change.notes.append("the cycle copied nothing (no commit?)")
                break
        if written:
            change.notes.append(f"state written (manifest, its log, directory cache): median "
                                f"{human_bytes(statistics.median(written))}, runs "
                                + " / ".join(human_bytes(w) for w in written))
        commit = change.median_wall() - nochange.median_wall()
        size = os.path.getsize(manifest)
        entries = fx["stats"]["files"]
        change.notes.append(f"difference (commit + 8 small copies) {commit * 1000:,.0f} ms")
        nochange.notes.append(f"manifest {human_bytes(size)}, {size / entries:,.0f} B/entry")
        self.report.note(case, (
            f"The nochange mirror ({entries:,} manifest entries). snaphaven prints no "
            f"separate timing for loading or committing its manifest, so these are whole "
            f"cycles with -v 0: the no-change one loads the manifest and scans the source; the "
            f"other also copies one new sstable (8 small files) and commits the manifest. "
            f"Rate = manifest entries per second of cycle."))


class NodeCase:
    """The node-sized case: what a cycle costs on a node of --node_tables tables (1M files),
    side by side in one run: state bytes written by a one-flush cycle, peak memory per mode,
    the no-change cycle against a walk+stat of the live directories and rsync -aH, the cycle
    after a snapshot taken moments before, the first copy against rsync -aH."""

    def __init__(self, bench, case, tables):
        self.bench = bench
        self.args = bench.args
        self.case = case
        base = bench.path(f"{case}-{tables}")
        self.home = os.path.join(base, "home")
        self.data = os.path.join(self.home, "data")
        self.base = base
        self.ks = ["ks1"]
        log(f"generating {self.data}: 1 keyspace x {tables} tables x {NODE_SSTABLES} sstables, "
            f"{SHAPED_SNAPSHOTS} daily snapshots")
        self.stats = gen_tree(self.args, self.data, keyspaces="ks1", tables=tables,
                              sstables=NODE_SSTABLES, data_size="1K", seed=3,
                              snapshots=",".join(f"daily_{d}"
                                                 for d in range(1, SHAPED_SNAPSHOTS + 1)))
        self.stats["tables"] = tables
        log(f"  {self.stats['files']:,} files, {self.stats['inodes']:,} inodes")
        time.sleep(3)  # settled, as a node's snapshots are by the time they are copied
        sync()
        self.results = []  # (what, figure, target)

    def snaphaven(self, dest, *flags):
        return self.bench.snaphaven(self.home, dest, self.ks, *flags)

    def dest(self, name):
        return os.path.join(self.base, name)

    def row(self, tool, command, baseline=False):
        return self.bench.report.row(self.case, tool, command, "files/s", self.stats["files"],
                                     baseline=baseline)

    def first_copy(self, runs):
        """Each run into a fresh destination: snaphaven (durable) vs rsync -aH (not)."""
        snap = self.row("first copy: snaphaven", shlex.join(self.snaphaven("<new dest>")),
                        baseline=True)
        rsync = self.row("first copy: rsync -aH", f"rsync -aH {self.data}/ <new dest>/")
        kept = self.dest("dest")
        def dest_of(row, r):
            return self.dest(f"first-{'snap' if row is snap else 'rsync'}-{r}")
        def after_each(row, r, m):
            path = dest_of(row, r)
            if row is snap and not os.path.exists(kept):
                os.rename(path, kept)  # the mirror the other rows work on
            else:
                self.bench.trash(path)
        alternate([(snap, lambda r: [self.snaphaven(dest_of(snap, r))]),
                   (rsync, lambda r: [["rsync", "-aH", self.data + "/", dest_of(rsync, r) + "/"]])],
                  runs, before_each=lambda row, r: sync(), after_each=after_each)
        return snap, rsync

    def once(self, label, argv):
        m = measure([argv], LOG_DIR, f"{self.case}-{label}")
        if m.rc not in (0,):
            raise BenchError(f"{label} failed ({m.rc}): {m.stderr[-1500:]}")
        return m

    def state_bytes(self, dest, argv, label):
        """Runs argv and returns (measurement, bytes of .snaphaven state written): files
        replaced whole count whole, the manifest's log its growth."""
        state = os.path.join(dest, ".snaphaven")
        def snap():
            out = {}
            for name in os.listdir(state):
                path = os.path.join(state, name)
                if os.path.isfile(path):
                    st = os.stat(path)
                    out[name] = (st.st_ino, st.st_size)
            return out
        before = snap()
        m = self.once(label, argv)
        total = 0
        for name, (ino, size) in snap().items():
            old = before.get(name)
            if old is not None and old[0] == ino:
                total += max(0, size - old[1]) if name.endswith(".log") else (
                    size if size != old[1] else 0)
            else:
                total += size
        return m, total

    def run(self):
        b = self.bench
        walk_argv = ["find", self.data, "-mindepth", "3", "-maxdepth", "3", "-printf",
                     "%s %T@\n"]
        snap, rsync = self.first_copy(self.args.runs)
        self.results.append(("first copy", f"{snap.median_wall():.1f} s = "
                             f"{ratio(snap, rsync):.2f}x rsync -aH "
                             f"({rsync.median_wall():.1f} s, not durable)", "<= 1.25x"))
        self.results.append(("peak memory, first copy", human_bytes(max(
            m.maxrss for m in snap.runs)), "<= 64 MiB"))
        dest = self.dest("dest")
        rsync_dest = self.dest("dest-rsync")
        run(["rsync", "-aH", self.data + "/", rsync_dest + "/"])
        sync()
        # The no-change cycle against the walk floor of the live directories and rsync.
        nochange = self.row("no-change cycle: snaphaven", shlex.join(self.snaphaven("<dest>")),
                            baseline=True)
        walk = self.row("walk+stat of the live directories", shlex.join(walk_argv))
        rsync_nc = self.row("no-change: rsync -aH --delete",
                            f"rsync -aH --delete {self.data}/ <dest>/")
        alternate([(nochange, lambda r: [self.snaphaven(dest)]),
                   (walk, lambda r: [walk_argv]),
                   (rsync_nc, lambda r: [["rsync", "-aH", "--delete", self.data + "/",
                                          rsync_dest + "/"]])], self.args.runs)
        walk_ratio = ratio(nochange, walk)
        self.results.append(("no-change cycle", f"{nochange.median_wall():.2f} s = "
                             f"{walk_ratio:.2f}x a walk+stat of the live directories "
                             f"({walk.median_wall():.2f} s); rsync -aH --delete "
                             f"{rsync_nc.median_wall():.2f} s", "<= 1.5x that walk"))
        # One flushed sstable: the state written.
        table = next(table_dirs(self.data, self.ks))
        flush_sstable(table)
        m, written = self.state_bytes(dest, self.snaphaven(dest), "one-flush")
        self.results.append(("a cycle that copies one flushed sstable (8 files)",
                             f"writes {human_bytes(written)} of state", "<= 1 MiB"))
        # A snapshot taken moments before the run, then the cycles after it.
        tag = "fresh"
        for t in table_dirs(self.data, self.ks):
            take_snapshot(t, tag)
        fresh = self.once("after-fresh-snapshot", self.snaphaven(dest))
        walls = []
        for r in range(self.args.runs):
            time.sleep(1)
            walls.append(self.once(f"after-fresh-nochange-{r}", self.snaphaven(dest)).wall)
        walk_now = statistics.median(
            self.once(f"walk-{r}", walk_argv).wall for r in range(self.args.runs))
        self.results.append(("the cycle after a fresh snapshot (copies it)",
                             f"{fresh.wall:.2f} s, peak {human_bytes(fresh.maxrss)}", ""))
        self.results.append(("no-change cycles after it", f"{statistics.median(walls):.2f} s = "
                             f"{statistics.median(walls) / walk_now:.2f}x the walk "
                             f"({walk_now:.2f} s)", "<= 1.5x"))
        # Peak memory per mode.
        modes = [("no-change", []), ("--fullsync", ["--fullsync"]),
                 ("move mode (dry run)", ["--move-snapshots", "--dry_run"]),
                 ("--list", ["--list"]), ("--verify", ["--verify"])]
        peaks = [("the cycle after a fresh snapshot", fresh.maxrss)]
        for name, flags in modes:
            m = self.once(f"mode-{slug(name)}", self.snaphaven(dest, *flags))
            peaks.append((name, m.maxrss))
        for name, rss in peaks:
            self.results.append((f"peak memory, {name}", human_bytes(rss), "<= 64 MiB"))
        self.report()

    def report(self):
        lines = [f"| what ({self.stats['files']:,} files: {self.stats['tables']} tables x "
                 f"{NODE_SSTABLES} sstables x 8 components, live + {SHAPED_SNAPSHOTS} "
                 f"snapshots) | measured | target |", "|---|---|---|"]
        lines += [f"| {what} | {figure} | {target} |" for what, figure, target in self.results]
        self.bench.report.note(self.case, "\n" + "\n".join(lines))
        for line in lines:
            log(line)


class MemoryCase(NodeCase):
    """The node shape at --memory_tables tables (5M files): peak memory of the first copy,
    a no-change cycle, --verify and --list."""

    def run(self):
        dest = self.dest("dest")
        for label, flags in [("first copy", []), ("no-change cycle", []), ("--list", ["--list"]),
                             ("--verify", ["--verify"])]:
            m = self.once(slug(label), self.snaphaven(dest, *flags))
            self.results.append((f"peak memory, {label}", f"{human_bytes(m.maxrss)} "
                                 f"({m.wall:.1f} s)", "<= 64 MiB"))
        self.report()


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default=",".join(ALL_CASES),
                        help="comma-separated subset of: " + ", ".join(ALL_CASES))
    parser.add_argument("--quick", action="store_true",
                        help="small sizes: " + ", ".join(f"--{k} {v}" for k, v in QUICK.items()))
    parser.add_argument("--runs", type=int, default=3,
                        help="alternating runs per tool (at least 3; default 3)")
    parser.add_argument("--workdir", default="/tmp/snaphaven-bench",
                        help="everything is created under it (default /tmp/snaphaven-bench)")
    parser.add_argument("--keep", action="store_true",
                        help="keep --workdir (trees, copies, logs) at the end")
    parser.add_argument("--out", help="also write the report (markdown) to this file")
    parser.add_argument("--binary", default="bazel-bin/snaphaven/snaphaven")
    parser.add_argument("--gen_tree", default="bazel-bin/tools/gen_tree")
    parser.add_argument("--files", type=int,
                        help=f"files in the nochange/manifest tree (full {FULL['files']:,})")
    parser.add_argument("--sshfs_files", type=int,
                        help=f"files in the nochange_sshfs tree (full {FULL['sshfs_files']:,}; "
                             "every file is a network round trip)")
    parser.add_argument("--initial_size", type=parse_size,
                        help=f"bytes for initial_copy (full {FULL['initial_size']})")
    parser.add_argument("--small_files", type=int,
                        help=f"files for small_files (full {FULL['small_files']:,})")
    parser.add_argument("--small_data_size", default="4K", help="Data.db size for small_files")
    parser.add_argument("--second_disk", default="",
                        help="small_files writes its copies (every tool's) to a fresh ext4 "
                             "image of this size, loop-mounted: a second drive, as a "
                             "destination is in production (needs root); e.g. 8G. Default: "
                             "under --workdir, on the source's file system")
    parser.add_argument("--shared_disk", action="store_true",
                        help="with --second_disk, small_files puts its source on that disk "
                             "too: source and destination share a fresh file system, as when "
                             "the destination is on the data's own disk")
    parser.add_argument("--snapshot_files", type=int,
                        help=f"files in the new_snapshot tree (full {FULL['snapshot_files']:,})")
    parser.add_argument("--snapshot_data_size", default="256K",
                        help="Data.db size in the new_snapshot tree (default 256K)")
    parser.add_argument("--warm_source", action="store_true",
                        help="initial_copy: do not evict the source's pages before each run")
    parser.add_argument("--node_tables", type=int,
                        help="node case: tables of 160 sstables (100: 1,025,400 files)")
    parser.add_argument("--memory_tables", type=int,
                        help="node_memory case: tables of 160 sstables (500: 5,127,000 files)")
    parser.add_argument("--sshfs_options", default="",
                        help="extra sshfs -o options, e.g. dir_cache=no")
    args = parser.parse_args()

    sizes = QUICK if args.quick else FULL
    for key, value in sizes.items():
        if getattr(args, key) is None:
            setattr(args, key, parse_size(value) if key == "initial_size" else value)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in ALL_CASES]
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; known: {', '.join(ALL_CASES)}")
    if args.runs < 3:
        parser.error("--runs must be at least 3 (medians of alternating runs)")
    if args.shared_disk and not args.second_disk:
        parser.error("--shared_disk needs --second_disk (the disk the source goes on)")
    for attr in ["binary", "gen_tree"]:
        path = getattr(args, attr)
        if not os.path.isabs(path) and not os.path.exists(path):
            path = os.path.join(REPO, path)
        if not os.access(path, os.X_OK):
            parser.error(f"--{attr} {getattr(args, attr)} is not an executable (build it: "
                         "bazel build //snaphaven //tools:gen_tree)")
        setattr(args, attr, os.path.abspath(path))
    for tool in ["rsync", "cp", "find", "sync"]:
        if not shutil.which(tool):
            parser.error(f"{tool} is missing (tools/setup.sh installs it)")
    args.workdir = os.path.abspath(args.workdir)
    if os.path.exists(args.workdir):
        if os.listdir(args.workdir) and not os.path.exists(os.path.join(args.workdir, MARKER)):
            parser.error(f"--workdir {args.workdir} exists, is not empty and was not made by "
                         "this benchmark: choose another")
        if os.path.exists(os.path.join(args.workdir, MARKER)):
            # A kept workdir of an earlier run: move it aside so this run starts clean.
            old = f"{args.workdir}.old-{int(time.time())}"
            os.rename(args.workdir, old)
            log(f"moved the earlier workdir to {old} (delete it when done)")
    os.makedirs(args.workdir, exist_ok=True)
    open(os.path.join(args.workdir, MARKER), "w").close()
    global LOG_DIR
    LOG_DIR = os.path.join(args.workdir, "logs")

    def on_signal(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)

    command_line = shlex.join([os.path.relpath(sys.argv[0], REPO)
                               if os.path.abspath(sys.argv[0]).startswith(REPO) else sys.argv[0],
                               *sys.argv[1:]])
    version = run([args.binary, "--version"], check=False)
    started = time.time()
    bench = Bench(args)
    status = 0
    try:
        for case in ALL_CASES:
            if case in cases:
                log(f"=== {case}")
                case_started = time.time()
                try:
                    getattr(bench, f"case_{case}")()
                except BenchError as e:
                    log(f"{case}: FAILED: {e}")
                    bench.report.skipped[case] = f"FAILED: {str(e)[:300]}"
                    status = 1
                log(f"=== {case} done in {time.time() - case_started:.0f} s")
    except KeyboardInterrupt:
        log("interrupted")
        status = 130
    finally:
        clean = True
        for mount in list(bench.mounts):
            if not mount.stop():
                clean = False
                log(f"WARNING: {mount.mountpoint} is still mounted; not deleting {args.workdir}")
        if args.keep or not clean:
            log(f"kept {args.workdir}")
        else:
            log(f"deleting {args.workdir}")
            subprocess.run(["rm", "-rf", "--one-file-system", args.workdir])

    elapsed = time.time() - started
    version_text = (version.stdout or version.stderr).strip()
    version_line = version_text.splitlines()[0] if version_text else "snaphaven (version unknown)"
    header = [
        f"snaphaven benchmark, {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}, "
        f"{platform.node()} ({os.cpu_count()} CPUs, {platform.release()}), "
        f"{version_line}",
        "",
        f"Command: `{command_line}` ({args.runs} alternating runs per tool; "
        f"sizes: --files {args.files}, --sshfs_files {args.sshfs_files}, "
        f"--initial_size {human_bytes(args.initial_size)}, --small_files {args.small_files}, "
        f"--snapshot_files {args.snapshot_files}; took {elapsed / 60:.1f} min"
        + (", INTERRUPTED: partial results)" if status == 130 else ")"),
    ]
    text = render(bench.report, args, header)
    sys.stdout.write(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return status


if __name__ == "__main__":
    sys.exit(main())
