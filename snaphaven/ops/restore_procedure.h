// What an operator does with a staged restore of a whole node, or of a
// snapshot brought forward to a point in time: the printed procedure.
//
// From Cassandra's source and ../shared/docs/commitlog-archiving.md:
//   - tokens and host id live in system.local
//     (data/system/local-7ad54392bcdd35a684174e047860b377/;
//     db/SystemKeyspace.java); a node without them and without
//     initial_token picks new tokens, and at the old address with a new host
//     id it fails to start (service/StorageService.java); config/Config.java
//     initial_token, auto_bootstrap;
//   - sstables are loaded only from the directory named after the table's
//     id (<table>-<id>, db/Directories.java), and commitlog mutations for an
//     unknown table id are dropped (db/commitlog/CommitLogReplayer.java);
//   - commitlog/, saved_caches/ and hints/ must be cleared before the
//     restored node starts; restore_* keys left in
//     commitlog_archiving.properties replay again at every restart
//     (db/commitlog/CommitLogArchiver.java, read at startup).

#ifndef SNAPHAVEN_RESTORE_PROCEDURE_H_
#define SNAPHAVEN_RESTORE_PROCEDURE_H_

#include <string>
#include <vector>

#include "absl/time/time.h"

namespace snaphaven {

// system.local's table directory (its id is fixed: the same on every node
// and version since 2.1).
inline constexpr char kSystemLocalDir[] = "system/local-7ad54392bcdd35a684174e047860b377";

struct ProcedureInput {
  std::string tag;
  std::string restore_root;         // absolute
  std::vector<std::string> tables;  // "ks/table dir" restored, sorted
  bool whole_node = false;          // no keyspace named
  std::string recorded_host;        // from .snaphaven/node; "" when none
  // Point in time (staged_segments empty: none).
  std::string segments_dir;
  std::vector<std::string> staged_segments;
  absl::Time until;
  std::string restore_point_in_time;  // as Cassandra is to read it
  int segment_version = 0;            // the newest staged segment's
};

// The procedure, one line each, commands unprefixed and explanations as
// "# " comments, so the output can be read and pasted step by step.
std::vector<std::string> RestoreProcedure(const ProcedureInput& input);

}  // namespace snaphaven

#endif  // SNAPHAVEN_RESTORE_PROCEDURE_H_
