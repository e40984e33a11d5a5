// Names and places in a Cassandra data root: which files are snapshot files,
// live sstable components, backups, transaction logs or temporary files.
// Pure string functions; nothing here touches the file system.

#ifndef SNAPHAVEN_CASSANDRA_PATH_H_
#define SNAPHAVEN_CASSANDRA_PATH_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"

namespace snaphaven {

// An sstable component's file name taken apart (Cassandra's
// io/sstable/Descriptor.java, filenameFor/fromFilename of each version):
//   1.2, 2.0, 2.1:  <ks>-<table>[.<index>]-[tmp-|tmplink-]<ver>-<gen>-<Component>
//   2.2:            [tmp-|tmplink-]<ver>-<gen>-big-<Component>
//   3.0-5.0:        <ver>-<id>-<format>-<Component>
// 2.x secondary index sstables sit in their base table's directory, named
// "<ks>-<table>.<index>-..." (2.1's Directories.java: "secondary indicies go
// in the same directory as the base cf").
struct SSTableName {
  std::string prefix;     // everything before "-<Component>" ("nb-7-big")
  std::string version;    // two lowercase letters ("nb")
  std::string format;     // "big" or "bti"; "big" for the 2.x names
  std::string component;  // "Data.db", "TOC.txt", "SAI+aa+idx+Meta.db", ...
  bool temporary = false; // 2.x tmp-/tmplink- names: never complete
};

// With the keyspace and table of the directory the file sits in, a 1.2/2.0/
// 2.1 name is told from a newer one by its "<ks>-<table>" start, whatever
// the names' lengths (ks "ks" and table "users" make "ks-users-ka-1-Data.db",
// whose first token looks like a version). Without them (either empty), a
// name is read as newer only if its component holds no '-', which no
// component of any version does.
absl::optional<SSTableName> ParseSSTableName(absl::string_view file_name,
                                             absl::string_view keyspace = "",
                                             absl::string_view table = "");

// Written by Cassandra 2.0 or older (big format before "ka"), which wrote no
// manifest.json into its snapshots (ColumnFamilyStore.snapshotWithoutFlush;
// 2.1 added it, CASSANDRA-6326). 5.0's BTI versions ("da") sort before
// "ka" but are new.
bool WrittenBefore21(const SSTableName& name);

// The same for a path relative to a data root (or to a destination that
// mirrors one): the keyspace and table come from its directories.
absl::optional<SSTableName> ParseSSTablePath(absl::string_view relative_path);

// The table name of a table directory: "<table>-<32 hex id>" (2.1+) or
// "<table>" (created before 2.1).
absl::string_view TableName(absl::string_view table_dir);

// Where a file sits, from its path relative to a data root.
enum class PathKind {
  kLive,      // <ks>/<table dir>/[.<index>/]<file>
  kSnapshot,  // <ks>/<table dir>/snapshots/<tag>/[.<index>/...]<file>
  kBackup,    // <ks>/<table dir>/backups/[.<index>/]<file>
  kOther,     // anything else (too shallow, unknown shape)
};

struct PathInfo {
  PathKind kind = PathKind::kOther;
  std::string keyspace;
  std::string table_dir;
  std::string tag;        // snapshots only
  std::string index_dir;  // ".<index>" when inside a secondary index dir
  std::string file_name;  // last component
};

PathInfo ClassifyPath(absl::string_view relative_path);

// The sstable key ("ks/t/[.idx/]nb-1-big") of a path to an sstable
// component, or "" when it is not one (or is a 2.x temporary).
std::string SSTableKey(absl::string_view relative_path);

// A keyspace as given on the command line must be one plain directory name:
// no '/', no "..", no leading '.', not empty. The error names the culprit.
absl::Status ValidateKeyspaceName(absl::string_view keyspace);

// A relative path that stays inside the directory it is relative to: not
// empty, not absolute, no "." or ".." or empty components.
bool IsSafeRelativePath(absl::string_view path);

}  // namespace snaphaven

#endif  // SNAPHAVEN_CASSANDRA_PATH_H_
