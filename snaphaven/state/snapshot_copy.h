// When a snapshot is complete: the one rule, for a snapshot at the source
// that move mode may delete (selector.h) and a copy at the destination that
// --list (lister.h) and retention (retention.h) count as complete.
//
// A copy ("<ks>/<table dir>/snapshots/<tag>", as below a data root) is
// complete when either
//  - its manifest.json parses, is not ephemeral, and every Data.db it lists
//    is present together with the components that sstable needs
//    (RequiredComponents without a TOC, sstable_components.h); or
//  - it has no manifest.json and holds at least one sstable, every sstable
//    in it is a 2.0-or-older one (version < "ka": 2.0 wrote no
//    manifest.json, 2.1 did) and each is whole by RequiredComponents.
// What "present" and "whole" mean is the caller's: recorded in the
// destination manifest (--list), a regular file at the destination
// (retention), at the source or already moved (the selector, which also
// reads each sstable's TOC for its compression info).

#ifndef SNAPHAVEN_SNAPSHOT_COPY_H_
#define SNAPHAVEN_SNAPSHOT_COPY_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "snaphaven/cassandra/cassandra_path.h"

namespace snaphaven {

// `copy_dir`: "<ks>/<table dir>/snapshots/<tag>" (its keyspace and table
// name the 2.x sstables). `manifest_json`: the copy's manifest.json text, or
// null when it has none. `files`: every file of the copy, relative to the
// tag directory (".idx/..." for index sstables); only read when
// `manifest_json` is null. `present(rel)`: whether the file `rel` (relative
// to the tag directory) is in the copy.
// `missing_component(dir, name)`: "" when the sstable `name` in `dir`
// (relative to the tag directory, "" for the tag directory itself) is
// whole, else what it lacks. Returns "" when the snapshot is complete, else
// why not ("manifest.json lists X, which is missing", ...).
std::string SnapshotIncompleteness(
    absl::string_view copy_dir, const std::string* manifest_json,
    const std::vector<std::string>& files,
    const std::function<bool(const std::string& rel)>& present,
    const std::function<std::string(const std::string& dir, const SSTableName& name)>&
        missing_component);

// The same, each sstable whole when the components RequiredComponents
// names (without its TOC) are present.
bool IsCompleteSnapshotCopy(absl::string_view copy_dir, const std::string* manifest_json,
                            const std::vector<std::string>& files,
                            const std::function<bool(const std::string& rel)>& present);

}  // namespace snaphaven

#endif  // SNAPHAVEN_SNAPSHOT_COPY_H_
