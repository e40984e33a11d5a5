// Directories known to be wholly at the destination.
//  - Snapshot directories: Cassandra never adds to a snapshot tag and
//    replaces (never edits) files, so a snapshot directory whose inode and
//    mtime are what they were when every file in it was last seen current
//    needs no file-by-file re-check: the scan skips it.
//  - Live table, index and backups directories are always listed (a file
//    replaced under the same name leaves a directory's mtime alone), but one
//    whose listing (every name with its type, inode, size and mtime) hashes
//    to what it was when the manifest held exactly its files, all current,
//    needs neither a manifest lookup, nor selection, nor pruning.
// --fullsync re-checks everything. Stored in <dest>/.snaphaven/dircache.

#ifndef SNAPHAVEN_DIR_CACHE_H_
#define SNAPHAVEN_DIR_CACHE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "snaphaven/storage/file_system.h"

namespace snaphaven {

struct CachedDir {
  uint64_t dev = 0;
  uint64_t ino = 0;
  int64_t mtime_ns = 0;
  int64_t files = 0;  // regular files directly in it
  int64_t bytes = 0;
  std::vector<std::string> subdirs;  // names of its directories
  // Live, index and backups directories: the ListingDigest of the listing
  // when it was all current; 0 for snapshot directories.
  uint64_t listing = 0;
};

// A stable 64-bit hash (FNV-1a) of a directory's listing, entry by entry in
// name order: the same listing gives the same value in every process.
class ListingDigest {
 public:
  void Add(absl::string_view name, const FileStat& stat);
  uint64_t value() const { return hash_; }

 private:
  void Mix(absl::string_view bytes);
  uint64_t hash_ = 14695981039346656037ULL;
};

// Whether what has `mtime_ns` as its mtime has been left alone long enough,
// at `now` (taken before it was looked at), that a later change to it would
// show in its mtime: 100 ms on a file system that keeps sub-second times
// (the kernel stamps them from a clock that ticks every 1 to 10 ms), 2 s on
// one that keeps whole seconds (or 2-second units, as FAT does).
bool SettledAt(int64_t mtime_ns, absl::Time now);

class DirCache {
 public:
  // Keyed by the directory's absolute path at the source.
  using Map = absl::btree_map<std::string, CachedDir>;

  const CachedDir* Find(absl::string_view path) const;
  void Put(const std::string& path, CachedDir dir) { dirs_[path] = std::move(dir); }
  // Forgets `path` and every directory below it.
  void EraseTree(const std::string& path);
  const Map& dirs() const { return dirs_; }
  bool empty() const { return dirs_.empty(); }

  std::string Serialize() const;
  static absl::StatusOr<DirCache> Parse(absl::string_view text);

 private:
  Map dirs_;
};

}  // namespace snaphaven

#endif  // SNAPHAVEN_DIR_CACHE_H_
