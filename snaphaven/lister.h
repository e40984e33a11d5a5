// --list: the snapshot copies held at the destination, read from the
// manifest and the destination's own copies of manifest.json only.

#ifndef SNAPHAVEN_LISTER_H_
#define SNAPHAVEN_LISTER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "snaphaven/file_system.h"
#include "snaphaven/manifest.h"

namespace snaphaven {

struct SnapshotCopy {
  std::string keyspace, table, tag;
  int64_t files = 0;
  int64_t bytes = 0;  // unique: hard-linked files (one source inode) once
  // Its manifest.json is there, parses, and every Data.db it lists is there.
  bool complete = false;
};

// Sorted by keyspace, table, tag. `keyspaces` empty: all.
std::vector<SnapshotCopy> ListSnapshotCopies(FileSystem& fs, const Manifest& manifest,
                                             const std::string& destination,
                                             const std::vector<std::string>& keyspaces);

// An aligned text table with a header, or a JSON array for scripts.
std::string FormatSnapshotTable(const std::vector<SnapshotCopy>& copies);
std::string FormatSnapshotJson(const std::vector<SnapshotCopy>& copies);

}  // namespace snaphaven

#endif  // SNAPHAVEN_LISTER_H_
