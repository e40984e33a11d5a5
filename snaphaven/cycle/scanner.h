// Walks the source (the Cassandra data roots) read-only and lists the files a
// cycle concerns, in sorted order. It never writes. Like Cassandra it follows
// a keyspace or table directory that is a symlink (a table moved to another
// disk), listing it under the link's name; nothing below a table directory
// (snapshots/, a tag dir, an index dir, backups/, a file) is ever followed.

#ifndef SNAPHAVEN_SCANNER_H_
#define SNAPHAVEN_SCANNER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "re2/re2.h"
#include "snaphaven/cassandra/cassandra_path.h"
#include "snaphaven/state/dir_cache.h"
#include "snaphaven/storage/file_system.h"

namespace snaphaven {

struct SourceFile {
  // Path relative to its data root; also its path relative to the
  // destination root, since the destination mirrors the data root.
  std::string relative_path;
  int root = 0;  // index into ScanOptions::data_roots
  FileStat stat;
  PathKind kind = PathKind::kSnapshot;
};

struct ScanOptions {
  std::vector<std::string> data_roots;
  std::vector<std::string> keyspaces;
  // Unanchored search over the snapshot tag; null means every tag.
  const RE2* tag_filter = nullptr;
  // Also list the live files of each table dir and its index dirs
  // (everything, transaction logs and temporary files included: the
  // selector decides what is complete).
  bool include_live = false;
  // Also list backups/ and backups/.<index>/.
  bool include_backups = false;
  // Snapshot directories unchanged since all their files were current at
  // the destination: not listed again (null: list everything).
  const DirCache* unchanged_dirs = nullptr;
  // Record why directories were skipped (for -v 2).
  bool record_decisions = false;
  // Table directories scanned at once (a source with a high latency per
  // call, like NFS, gains from a few; a local disk needs one). The result
  // is the same whatever the number.
  int threads = 1;
  // The destination (absolute, symlinks resolved). A symlinked keyspace or
  // table directory whose target is inside it, or holds it, is refused (an
  // error) rather than followed. Empty: no symlinked directory is followed
  // (each is a "not following symlink" warning), since none can be checked.
  std::string destination;
};

struct ScanResult {
  std::vector<SourceFile> files;  // sorted by relative_path, then root
  // Symlinks and special files found and not followed, one line each.
  std::vector<std::string> warnings;
  // Symlinked keyspace and table directories followed, one line each
  // ("following symlinked table directory LINK -> TARGET"), for -v 1.
  std::vector<std::string> notes;
  // Directories that could not be read (not the ones that vanished), and
  // symlinked keyspace or table directories refused (dangling, looping, not
  // a directory, overlapping the destination or a data root).
  std::vector<absl::Status> errors;
  std::vector<std::string> decisions;
  // Every snapshot tag dir and directory below one: (root, relative path).
  std::vector<std::pair<int, std::string>> snapshot_dirs;
  // Snapshot directories listed this time, with their stat before listing
  // and their subdirectories (to cache them once all their files are in).
  struct WalkedDir {
    int root;
    std::string relative_path;
    FileStat stat;
    std::vector<std::string> subdirs;
  };
  std::vector<WalkedDir> walked_dirs;
  // Live table, index and backups directories listed, with their stat and
  // the ListingDigest of what they held (every entry, not only files).
  struct ListedDir {
    int root;
    std::string relative_path;
    FileStat stat;
    uint64_t listing;
  };
  std::vector<ListedDir> listed_dirs;
  // Absolute paths of snapshot directories skipped as unchanged, and the
  // files and bytes in them.
  std::vector<std::string> skipped_dirs;
  int64_t skipped_files = 0;
  int64_t skipped_bytes = 0;
};

// One table directory of one data root.
struct TableDir {
  int root = 0;
  std::string path;       // <root>/<keyspace>/<table dir>
  std::string list_path;  // where to list it: the target when it is a symlink
};

// A table's directories in every data root ("ks/<table dir>"), the unit a
// streaming cycle scans, plans, applies and commits before the next:
// Cassandra hard-links a file only within its table directory.
struct SourceTable {
  std::string relative_path;
  std::vector<TableDir> dirs;  // in data root order
};

struct TableListing {
  std::vector<SourceTable> tables;  // sorted by relative_path
  // What listing the keyspaces found (warnings, notes, errors): no files.
  ScanResult problems;
};

// Lists every table directory of the keyspaces in every data root, with
// symlinked keyspace and table directories checked as ScanSource does.
// Fails as a whole when a data root cannot be read.
absl::StatusOr<TableListing> ListSourceTables(FileSystem& fs, const ScanOptions& options);

// Scans the tables (their live, backup and snapshot files, as asked) into
// one result, files sorted by relative path.
ScanResult ScanTables(FileSystem& fs, const ScanOptions& options,
                      const std::vector<const SourceTable*>& tables);

// Scans <root>/<keyspace>/<table dir>/snapshots/<tag>/ recursively for every
// root and keyspace (and the live and backup files when asked). Fails as a whole when a data root cannot be read: an
// empty scan must never be mistaken for "nothing is there".
absl::StatusOr<ScanResult> ScanSource(FileSystem& fs,
                                         const ScanOptions& options);

}  // namespace snaphaven

#endif  // SNAPHAVEN_SCANNER_H_
