// When a snapshot copy at the destination is complete: the one rule, for
// --list (lister.h) and retention (retention.h) alike.
//
// A copy ("<ks>/<table dir>/snapshots/<tag>", as below a data root) is
// complete when either
//  - its manifest.json parses, is not ephemeral, and every Data.db it lists
//    is present together with the components that sstable needs
//    (RequiredComponents without a TOC, sstable_components.h); or
//  - it has no manifest.json and holds at least one sstable, every sstable
//    in it is a 2.0-or-older one (version < "ka": 2.0 wrote no
//    manifest.json, 2.1 did) and each is whole by RequiredComponents.
// What "present" means is the caller's: recorded in the destination
// manifest (--list), or a regular file at the destination (retention).

#ifndef SNAPHAVEN_SNAPSHOT_COPY_H_
#define SNAPHAVEN_SNAPSHOT_COPY_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace snaphaven {

// `copy_dir`: "<ks>/<table dir>/snapshots/<tag>" (its keyspace and table
// name the 2.x sstables). `manifest_json`: the copy's manifest.json text, or
// null when it has none. `files`: every file of the copy, relative to the
// tag directory (".idx/..." for index sstables); only read when
// `manifest_json` is null. `present(rel)`: whether the file `rel` (relative
// to the tag directory) is in the copy.
bool IsCompleteSnapshotCopy(absl::string_view copy_dir, const std::string* manifest_json,
                            const std::vector<std::string>& files,
                            const std::function<bool(const std::string& rel)>& present);

}  // namespace snaphaven

#endif  // SNAPHAVEN_SNAPSHOT_COPY_H_
