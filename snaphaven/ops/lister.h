// --list: the snapshot copies held at the destination, read from the
// manifest and the destination's own copies of manifest.json; and, to tell
// a partial copy whose snapshot has vanished from the source (cleared, TTL
// expired: it will never be completed, and retention removes it), whether
// each snapshot's directory is still in the data roots.

#ifndef SNAPHAVEN_LISTER_H_
#define SNAPHAVEN_LISTER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/types/optional.h"
#include "snaphaven/storage/file_system.h"
#include "snaphaven/state/manifest.h"

namespace snaphaven {

struct SnapshotCopy {
  std::string keyspace, table, tag;
  int64_t files = 0;
  int64_t bytes = 0;  // unique: hard-linked files (one source inode) once
  // By IsCompleteSnapshotCopy (snapshot_copy.h), a file counting as there
  // when the manifest records it (manifest.json read from the destination).
  bool complete = false;
  // Whether the snapshot is gone from the source: true when at least one
  // data root is there and none holds <root>/<ks>/<table dir>/snapshots/
  // <tag>; false when one holds it; nullopt when no data root can be read
  // (or one could not be asked).
  absl::optional<bool> source_gone;
};

// Sorted by keyspace, table, tag. `keyspaces` empty: all. `data_roots`: where
// to look for the snapshots at the source (see ListingDataRoots).
absl::StatusOr<std::vector<SnapshotCopy>> ListSnapshotCopies(FileSystem& fs, const Manifest& manifest,
                                             const std::string& destination,
                                             const std::vector<std::string>& keyspaces,
                                             const std::vector<std::string>& data_roots = {});

// The data roots of the instance that writes `destination`: those recorded
// in <destination>/.snaphaven/node ("roots" line, node_record.h), else (no
// record, or one without roots) `fallback` (the roots given with -d).
std::vector<std::string> ListingDataRoots(FileSystem& fs, const std::string& destination,
                                          const std::vector<std::string>& fallback);

// A directory, or a symlink to one.
bool IsDirectoryOrLinkToOne(FileSystem& fs, const std::string& path);

// Whether the snapshot `copy_dir` ("<ks>/<table dir>/snapshots/<tag>") is
// gone from every one of `data_roots` (SnapshotCopy::source_gone).
absl::optional<bool> SnapshotGoneFromSource(FileSystem& fs,
                                            const std::vector<std::string>& data_roots,
                                            const std::string& copy_dir);

// An aligned text table with a header, or a JSON array for scripts. The
// table's COMPLETE column: "yes", "no", or "no (source gone)"; JSON gives
// "complete" and "source_gone" (true, false or null).
std::string FormatSnapshotTable(const std::vector<SnapshotCopy>& copies);
std::string FormatSnapshotJson(const std::vector<SnapshotCopy>& copies);

}  // namespace snaphaven

#endif  // SNAPHAVEN_LISTER_H_
