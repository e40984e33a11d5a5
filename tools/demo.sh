#!/usr/bin/env bash
# Sets up the machine, builds the static binary, generates an example
# Cassandra tree in demo/ and runs snaphaven on it twice (the second cycle
# has nothing to do), then shows the destination.
set -euo pipefail
cd "$(dirname "$0")/.."

tools/setup.sh
bazel build --noshow_progress //snaphaven //tools:gen_tree 2>/dev/null
file -b bazel-bin/snaphaven/snaphaven | cut -d, -f1-5

rm -rf demo
bazel-bin/tools/gen_tree --out demo/cassandra/data --keyspaces shop,audit \
  --tables 2 --sstables 3 --index_dirs 1 --snapshots daily-1,daily-2 --data_size 1M

echo; echo "== first cycle (-v 1: every file copied or linked)"
bazel-bin/snaphaven/snaphaven -v 1 -d demo/cassandra -s demo/backup shop audit 2>&1 | tail -n 4
echo "   ..."
echo; echo "== second cycle: nothing new, nothing written"
bazel-bin/snaphaven/snaphaven -d demo/cassandra -s demo/backup shop audit 2>&1

echo; echo "== the snapshot copies it holds (snaphaven --list)"
bazel-bin/snaphaven/snaphaven -s demo/backup --list

echo; echo "== the destination mirrors the data root (one table shown)"
# (sed, not head: head leaving early would kill sort with SIGPIPE, and
# pipefail would make that the script's failure.)
table=$(ls -d demo/backup/shop/*/ | sed -n 1p)
find "$table" -type f -printf '%n links  %10s bytes  %P\n' | sort -k5 | sed -n 1,10p
echo "   ..."
echo "$(find demo/backup -type f -not -path '*/.snaphaven/*' | wc -l) files in demo/backup," \
  "$(du -sh demo/backup | cut -f1) on disk (snapshots share inodes, as at the source)"
