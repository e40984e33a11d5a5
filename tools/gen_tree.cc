// gen_tree: writes a realistic Cassandra data tree for tests and demos.
//
//   gen_tree --out /tmp/data --keyspaces ks1,ks2 --tables 3 --sstables 4
//       --index_dirs 1 --snapshots snap1,snap2 --data_size 1M --seed 7
//   gen_tree --out /tmp/data21 --sstable_version ka [--nocompressed]

#include <ftw.h>
#include <gflags/gflags.h>
#include <sys/stat.h>

#include <cstdint>
#include <cstdio>
#include <limits>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "tools/tree_generator.h"

DEFINE_string(out, "",
              "Data root to create (required), e.g. /tmp/cassandra/data.");
DEFINE_string(keyspaces, "ks1", "Comma-separated keyspace names.");
DEFINE_int32(tables, 2, "Tables per keyspace (users, events, t2, t3, ...).");
DEFINE_int32(sstables, 3, "Live sstables per table and per index dir.");
DEFINE_int32(index_dirs, 0, "Secondary index dirs per table.");
DEFINE_string(snapshots, "snap1",
              "Comma-separated snapshot tags; empty for none.");
DEFINE_string(data_size, "64K",
              "Bytes per Data.db; suffixes K, M, G (powers of 1024).");
DEFINE_uint32(seed, 1, "Seed of file contents and table ids.");
// Not --version: gflags reserves that one for the program's own version.
DEFINE_string(sstable_version, "nb",
              "SSTable version letters: ka (Cassandra 2.1), la or later, or "
              "da.");
DEFINE_bool(compressed, true,
            "With --sstable_version ka: compressed sstables (chunked Data.db, "
            "CompressionInfo.db); --nocompressed writes uncompressed ones "
            "(CRC.db). Other versions ignore it.");
DEFINE_bool(schema_cql, true, "Write schema.cql in each snapshot.");
DEFINE_bool(
    live, true,
    "Keep the live sstables; --nolive unlinks them after snapshotting.");

namespace {

std::vector<std::string> SplitList(const std::string& list) {
  return absl::StrSplit(list, ',', absl::SkipWhitespace());
}

// What the tree holds; nftw offers no user pointer, hence the global.
struct TreeStats {
  int64_t files = 0;  // directory entries of regular files
  int64_t dirs = 0;
  std::set<std::pair<dev_t, ino_t>> inodes;
  int64_t bytes = 0;  // of distinct inodes: hard links take no extra space
} g_stats;

int CountEntry(const char* /*path*/, const struct stat* st, int type,
               struct FTW* /*ftw*/) {
  if (type == FTW_D) {
    ++g_stats.dirs;
  } else if (type == FTW_F && S_ISREG(st->st_mode)) {
    ++g_stats.files;
    if (g_stats.inodes.emplace(st->st_dev, st->st_ino).second)
      g_stats.bytes += st->st_size;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "Writes a realistic Cassandra data tree. Usage: gen_tree --out DIR "
      "[flags]");
  gflags::ParseCommandLineFlags(&argc, &argv, /*remove_flags=*/true);
  if (FLAGS_out.empty() || argc > 1) {
    std::fprintf(stderr, "gen_tree: %s\n",
                 FLAGS_out.empty() ? "--out DIR is required"
                                   : "unexpected positional argument");
    return 2;
  }

  snaphaven::tools::TreeSpec spec;
  spec.keyspaces = SplitList(FLAGS_keyspaces);
  spec.tables_per_keyspace = FLAGS_tables;
  spec.sstables_per_table = FLAGS_sstables;
  spec.index_dirs_per_table = FLAGS_index_dirs;
  spec.snapshot_tags = SplitList(FLAGS_snapshots);
  spec.version = FLAGS_sstable_version;
  spec.compressed = FLAGS_compressed;
  spec.seed = FLAGS_seed;
  spec.write_schema_cql = FLAGS_schema_cql;
  spec.write_live_sstables = FLAGS_live;
  absl::StatusOr<int64_t> data_size = snaphaven::tools::ParseByteSize(FLAGS_data_size);
  if (data_size.ok()) spec.data_size = *data_size;
  if (!data_size.ok()) {
    std::fprintf(
        stderr,
        "gen_tree: bad --data_size \"%s\" (want e.g. 65536, 64K, 1M, 2G)\n",
        FLAGS_data_size.c_str());
    return 2;
  }

  if (absl::Status s = snaphaven::tools::GenerateTree(FLAGS_out, spec);
      !s.ok()) {
    std::fprintf(stderr, "gen_tree: %s\n", s.ToString().c_str());
    return 1;
  }

  if (::nftw(FLAGS_out.c_str(), CountEntry, 64, FTW_PHYS) != 0) {
    std::perror("gen_tree: nftw");
    return 1;
  }
  std::printf(
      "gen_tree: %s: %lld files (%zu distinct inodes, %lld bytes) in %lld "
      "dirs; "
      "keyspaces %s x %d tables x %d sstables (+%d index dirs), snapshots "
      "[%s], seed %u\n",
      FLAGS_out.c_str(), static_cast<long long>(g_stats.files),
      g_stats.inodes.size(), static_cast<long long>(g_stats.bytes),
      static_cast<long long>(g_stats.dirs),
      absl::StrJoin(spec.keyspaces, ",").c_str(), spec.tables_per_keyspace,
      spec.sstables_per_table, spec.index_dirs_per_table,
      absl::StrJoin(spec.snapshot_tags, ",").c_str(), spec.seed);
  return 0;
}
