// --all_keyspaces: which directories of a data root are keyspaces, and
// which keyspaces a destination holds.
//
// Cassandra itself never lists its data roots for keyspaces (it goes from
// the schema), so a data root can hold other directories: `lost+found` of a
// disk mounted there, or Cassandra's own directories that an operator
// nested inside it. The rules, from Cassandra's source
// (src/java/org/apache/cassandra/):
//   schema/SchemaConstants.java (PATTERN_WORD_CHARS "\w+", isValidName;
//       2.x: config/KSMetaData.java, CFMetaData.isNameValid): a keyspace's
//       name is letters, digits and underscores only, so `lost+found`,
//       dot-directories and names with '-' or '.' are not keyspaces;
//   config/DatabaseDescriptor.java (the defaults of commitlog_directory,
//       saved_caches_directory, hints_directory, cdc_raw_directory, beside
//       data/): these four are never keyspaces, even nested in a data root
//       (a keyspace of that name can still be named on the command line).
// And db/Directories.java creates a table's directory in every data root,
// so a keyspace in one root is usually in all of them; the keyspaces of
// several roots are their union.

#ifndef SNAPHAVEN_KEYSPACE_DIRS_H_
#define SNAPHAVEN_KEYSPACE_DIRS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "snaphaven/state/destination.h"
#include "snaphaven/state/destination_walker.h"
#include "snaphaven/storage/file_system.h"
#include "snaphaven/state/manifest.h"

namespace snaphaven {

// The keyspace every node has (SchemaConstants.SYSTEM_KEYSPACE_NAME): it
// tells a data root from the Cassandra home holding it.
inline constexpr absl::string_view kSystemKeyspace = "system";


enum class KeyspaceDirName {
  kKeyspace,      // a valid keyspace name
  kNotAName,      // not \w+ (lost+found, .Trash, a-b)
  kCassandraDir,  // commitlog, saved_caches, hints, cdc_raw
};

KeyspaceDirName ClassifyKeyspaceDirName(absl::string_view name);

struct KeyspaceDirs {
  std::vector<std::string> keyspaces;  // sorted, each once
  // Directories of the roots not taken for keyspaces, one line each (-v 1).
  std::vector<std::string> notes;
};

// The keyspace directories (directories, or symlinks, which the scan then
// checks and follows) of every data root. Fails when a root cannot be
// listed: an unreadable root must never look like one without keyspaces.
absl::StatusOr<KeyspaceDirs> FindKeyspaceDirs(FileSystem& fs,
                                              const std::vector<std::string>& data_roots);

// The keyspaces a destination holds: the first directory of every path its
// manifest records that can be a keyspace at the destination root
// (destination_walker.h: not the commitlog archive, a dot-name or
// lost+found). Sorted.
std::vector<std::string> KeyspacesAtDestination(const Manifest& manifest);

}  // namespace snaphaven

#endif  // SNAPHAVEN_KEYSPACE_DIRS_H_
