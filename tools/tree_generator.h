// Generates realistic Cassandra data trees (live sstables, hard-linked
// snapshots with manifest.json and schema.cql, secondary index directories)
// so snaphaven can be tested without a running Cassandra. The layout follows
// /work/shared/docs/cassandra-layout.md; file contents are pseudo-random but
// deterministic, except for the timestamps in manifest.json.

#ifndef SNAPHAVEN_TOOLS_TREE_GENERATOR_H_
#define SNAPHAVEN_TOOLS_TREE_GENERATOR_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace snaphaven::tools {

struct TreeSpec {
  std::vector<std::string> keyspaces = {"ks1"};
  // Tables are named "users", "events", then "t2", "t3", ...
  int tables_per_keyspace = 2;
  // Live sstables per table (and per index dir), generations 1..N.
  int sstables_per_table = 3;
  // Secondary index dirs ".<table>_idx<i>" (i from 0) with their own
  // sstables.
  int index_dirs_per_table = 0;
  // Each snapshot hard-links ALL current live sstables of every table (index
  // dirs too, as snapshots/<tag>/.<idx>/).
  std::vector<std::string> snapshot_tags = {"snap1"};
  // Bytes of each Data.db; the other components are a few hundred bytes to
  // a few KiB.
  int64_t data_size = 64 * 1024;
  // Two lowercase sstable version letters:
  // - "la" or later: "<ver>-<gen>-big-<Component>" names ("bti" format for
  //   "da"), Digest.adler32 for la/lb and Digest.crc32 from ma on.
  // - "ka" (Cassandra 2.1): "<ks>-<table>-ka-<gen>-<Component>" names (index
  //   sstables: "<ks>-<table>.<idx>-ka-<gen>-<Component>" in ".<idx>/"), and a
  //   Digest.sha1 holding an Adler-32 decimal: of the whole Data.db when
  //   uncompressed, of the chunks' compressed bytes only (without the 4-byte
  //   checksum after each) when compressed. Snapshots get 2.1's manifest.json
  //   ({"files":[...]} only) and no schema.cql.
  // Older versions are not supported.
  std::string version = "nb";
  // "ka" only (other versions always get a CompressionInfo.db with random
  // bytes, and ignore this). If true: Data.db is a sequence of chunks (random
  // bytes, 40-100% of the 64 KiB chunk length, each followed by its
  // big-endian Adler-32), described by a real CompressionInfo.db (Java
  // DataOutput: writeUTF("LZ4Compressor"), writeInt(0 options),
  // writeInt(65536), writeLong(uncompressed length), writeInt(chunk count),
  // writeLong(offset) per chunk); Data.db is then data_size bytes but at least
  // 5 when data_size > 0. If false: Data.db is data_size random bytes with a
  // CRC.db (writeInt(65536), then the Adler-32 of each 64 KiB block).
  bool compressed = true;
  // Seeds file contents and table ids.
  uint32_t seed = 1;
  bool write_schema_cql = true;
  // If false, live files are unlinked after snapshotting (snapshot files then
  // have link count 1), as after a compaction or a table truncation.
  bool write_live_sstables = true;
};

// Creates data_root (mkdir -p) and writes
// <data_root>/<ks>/<table>-<32 hex id>/<sstables>, their snapshots (hard
// links) with manifest.json and schema.cql. Fails with AlreadyExists rather
// than overwrite a file, since overwriting in place would also change every
// snapshot hard-linked to it.
absl::Status GenerateTree(const std::string& data_root, const TreeSpec& spec);

// Takes one more snapshot, as `nodetool snapshot -t <tag> <keyspaces>` does:
// hard-links every current live sstable (those with a TOC.txt) of every table
// of `keyspaces` in data_root, index dirs included, into
// <table dir>/snapshots/<tag>/[.<idx>/], then writes manifest.json
// ("files": Data.db names relative to the snapshot dir, index ones as
// ".<idx>/nb-1-big-Data.db"; "created_at": ISO-8601 string;
// "expires_at": null) and schema.cql (none for system keyspaces, as in
// Cassandra). A table whose newest sstable is a 2.1 ("ka") one gets 2.1's
// snapshot instead: manifest.json is {"files":[...]} plus a newline, with '/'
// escaped as "\/" as 2.1's json-simple wrote it, and there is no schema.cql.
// Works on any existing tree made by GenerateTree. Fails with AlreadyExists,
// before linking anything, if any table already has a snapshot named `tag`.
absl::Status TakeSnapshot(const std::string& data_root,
                          const std::vector<std::string>& keyspaces,
                          const std::string& tag);

// Flushes one new live sstable into every table of `keyspaces`, and into
// each of their index dirs, with random content from `seed`. The generation
// is one more than the highest one found in the live dir, its snapshots and
// backups, so a new sstable never takes the name of a snapshotted one; the
// version (and, for "ka", compression) is that of the newest existing
// sstable of that dir (if there is none: "ka", compressed, in a table whose
// other sstables are 2.1 ones, else "nb").
absl::Status FlushNewSSTables(const std::string& data_root,
                              const std::vector<std::string>& keyspaces,
                              int64_t data_size, uint32_t seed);

// "64K", "2M", "1G" (powers of 1024) or a plain count of bytes; errors
// name the text.
absl::StatusOr<int64_t> ParseByteSize(absl::string_view text);

}  // namespace snaphaven::tools

#endif  // SNAPHAVEN_TOOLS_TREE_GENERATOR_H_
