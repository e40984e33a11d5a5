// Every name snaphaven keeps under <dest>/.snaphaven/, in one place (as
// leveldb's filename.h names a database's files). The destination mirrors
// data roots, so nothing else in it is snaphaven's own.

#ifndef SNAPHAVEN_DESTINATION_H_
#define SNAPHAVEN_DESTINATION_H_

#include <string>

#include "absl/strings/string_view.h"

namespace snaphaven {

// The state directory's name, relative to the destination root: never a
// mirrored path (the manifest refuses entries in it).
inline constexpr absl::string_view kStateDirName = ".snaphaven";

// Where the mirrored commitlog segments are, relative to the destination
// root: commitlog_archive/<segment name>, and those that failed their
// verification in commitlog_archive/quarantine/ (--commitlog_archive, read
// by --restore_until and --list --cluster). No keyspace of that name is
// mirrored beside them.
inline constexpr absl::string_view kCommitlogArchiveDirName = "commitlog_archive";

// The log that goes with the manifest base `manifest` (manifest_store.h):
// StateDir::manifest_log for the manifest, and the log of a manifest being
// rebuilt beside it.
std::string ManifestLogPath(const std::string& manifest);

struct StateDir {
  explicit StateDir(const std::string& destination);
  std::string dir;            // <dest>/.snaphaven
  std::string manifest;       // the manifest's base (manifest_store.h)
  std::string manifest_log;   // its log
  std::string manifest_rebuild;  // a manifest being rebuilt from the destination (and its log)
  std::string lock;           // flock held by the running snaphaven
  std::string temp;           // files being written (named ones)
  std::string marker;         // "id": the destination's identity
  std::string node;           // the Cassandra instance it belongs to (node_record.h)
  std::string dir_cache;      // snapshot directories wholly copied
  std::string verify_cursor;  // where --verify_sample goes on
  std::string quarantine;     // copies that failed their sstable digest
  std::string retention_trash;  // copies being removed by retention
};

}  // namespace snaphaven

#endif  // SNAPHAVEN_DESTINATION_H_
