// The one walk of a snaphaven destination, and the one rule of what in it
// is not part of the mirror. The manifest rebuild (--fullsync, a lost or
// corrupt manifest), --verify's search for unknown files and retention all
// walk the destination through it.
//
// The rule, applied where a walk lists the destination root: a name there
// is part of the mirror when it is a keyspace directory or the commitlog
// archive. Never entered nor visited:
//  - the state directory (kStateDirName, destination.h): the manifest,
//    the lock, tmp/ (where every copy is written before it gets its final
//    name, unnamed or as tmp/copy-<n>.tmp: copier.h), quarantine/,
//    retention-trash/ (copies retention is removing);
//  - every other name beginning with '.': never a keyspace (Cassandra's
//    keyspace names are \w+, src/java/org/apache/cassandra/schema/
//    SchemaConstants.java; ValidateKeyspaceName refuses a leading '.'), so
//    never a copy snaphaven made: a NAS's .snapshot/, a .Trash-1000/;
//  - lost+found: mke2fs makes it at the root of every ext2/3/4 file system
//    (root's, mode 0700; fsck puts orphaned files there), so a destination
//    that is a disk of its own has one, and '+' is no keyspace name either.
//    Walked, it made every rebuild as another user than root fail.
// Below the root, dot-names are the mirror's like any other: a table's
// secondary index sstables are in .<index name>/ (Cassandra's
// db/Directories.java, SECONDARY_INDEX_NAME_SEPARATOR), in its live
// directory, snapshots/<tag>/ and backups/.
// The commitlog archive (kCommitlogArchiveDirName: mirrored segments and
// quarantine/) is walked: its segments are recorded in the manifest as the
// copies are. It is no keyspace: DestinationKeyspaces leaves it out.
//
// The walk is depth-first, each directory's names in sorted order, and
// holds only the listings of the directories on the way down: memory
// follows the largest directory, never the tree. A symlink is never
// followed: it is visited as a file (FileStat::type kSymlink), whatever
// it points to. Every error is given to the visitor, never skipped.

#ifndef SNAPHAVEN_DESTINATION_WALKER_H_
#define SNAPHAVEN_DESTINATION_WALKER_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "snaphaven/storage/file_system.h"

namespace snaphaven {

// What a name at the destination root is.
enum class DestinationTopLevel {
  kKeyspace,          // a keyspace's mirror
  kCommitlogArchive,  // commitlog_archive/: mirrored segments (not a keyspace)
  kNotMirrored,       // the state directory, another dot-name, lost+found
};
DestinationTopLevel ClassifyDestinationTopLevel(absl::string_view name);

// A directory two levels below the destination root ("ks/<table dir>", or
// "commitlog_archive/quarantine"): the unit the cycle streams by (Cassandra
// hard-links only within a table), after which a walk's caller commits
// what it gathered and lets it go.
bool IsTableUnit(absl::string_view rel);

// Paths given to the visitor are relative to the destination root. Every
// member may be left empty: the default is given with each.
struct DestinationVisitor {
  // A directory below the scope, before what is in it (parents first).
  // False: it is not walked (nor left). Default: true.
  std::function<bool(const std::string& rel, const FileStat& stat)> enter;
  // Anything that is not a directory: a regular file, a symlink (never
  // followed), a device or socket. Default: nothing.
  std::function<absl::Status(const std::string& rel, const FileStat& stat)> file;
  // A directory below the scope, after everything in it (children first;
  // not for one that could not be listed). Default: nothing.
  std::function<absl::Status(const std::string& rel)> leave;
  // `rel` could not be listed or stat'ed (`error`; IsVanished when it went
  // away meanwhile, or when the scope is missing). OK: the walk goes on
  // past it; an error ends the walk with it. Default: ends it with `error`.
  std::function<absl::Status(const std::string& rel, const absl::Status& error)> error;
};

// Walks `scope` ("" for the whole destination, a keyspace, a table, a tag
// directory, or one of the state directory's own, such as retention's
// trash: the rule above applies to what the walk finds at the root, not to
// the scope it is given). A scope that is not a directory (a symlink, a
// file) is visited as a file; `enter` and `leave` are never called for the
// scope itself. Returns OK, or the first error a callback returned (the
// walk stops there).
absl::Status WalkDestination(FileSystem& fs, const std::string& destination,
                             const std::string& scope, const DestinationVisitor& visitor);

// The keyspace directories at the destination root (not symlinks), sorted.
// A missing destination holds none; any other error is returned.
absl::StatusOr<std::vector<std::string>> DestinationKeyspaces(FileSystem& fs,
                                                              const std::string& destination);

}  // namespace snaphaven

#endif  // SNAPHAVEN_DESTINATION_WALKER_H_
