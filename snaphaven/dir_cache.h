// Snapshot directories known to be wholly at the destination. Cassandra never
// adds to a snapshot tag and replaces (never edits) files, so a snapshot
// directory whose inode and mtime are what they were when every file in it
// was last seen current needs no file-by-file re-check: the scan skips it.
// --fullsync re-checks everything. Stored in <dest>/.snaphaven/dircache.

#ifndef SNAPHAVEN_DIR_CACHE_H_
#define SNAPHAVEN_DIR_CACHE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace snaphaven {

struct CachedDir {
  uint64_t dev = 0;
  uint64_t ino = 0;
  int64_t mtime_ns = 0;
  int64_t files = 0;  // regular files directly in it
  int64_t bytes = 0;
  std::vector<std::string> subdirs;  // names of its directories
};

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
