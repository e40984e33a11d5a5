// Readers for the small files in which Cassandra records what is complete:
// a snapshot's manifest.json, an sstable's TOC.txt and transaction logs
// (<ver>_txn_<operation>_<uuid>.log). Pure functions over file contents; a
// file caught half-written must read as "not complete", never as an error
// that stops the cycle.

#ifndef SNAPHAVEN_CASSANDRA_METADATA_H_
#define SNAPHAVEN_CASSANDRA_METADATA_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/optional.h"

namespace snaphaven {

// manifest.json of a snapshot (2.1 to 5.0):
//   {"files":["nb-1-big-Data.db", ".idx/nb-1-big-Data.db"]}            2.1-4.0
//   {"files":[...],"created_at":"2024-05-01T10:00:00.123Z",
//    "expires_at":null,"ephemeral":false}                              4.1+
struct SnapshotManifest {
  std::vector<std::string> files;  // Data.db paths relative to the tag dir
  bool ephemeral = false;
  absl::optional<absl::Time> created_at;  // ISO-8601 string or epoch millis
};

// InvalidArgument when the text is not a whole JSON object with a "files"
// array of strings (a manifest still being written), or when a listed path
// would leave the snapshot directory.
absl::StatusOr<SnapshotManifest> ParseSnapshotManifest(absl::string_view text);

// The component names a TOC.txt lists ("Data.db", "TOC.txt", ...), one per
// line, surrounding white space and empty lines ignored.
std::vector<std::string> ParseToc(absl::string_view text);

bool IsTxnLogName(absl::string_view file_name);

// A transaction log: records "TYPE:[<path prefix>,<time>,<files>][<crc>]".
struct TxnLog {
  enum class State { kInFlight, kCommitted, kAborted };
  State state = State::kInFlight;
  std::vector<std::string> added;    // sstable prefixes (file names, e.g. "nb-7-big")
  std::vector<std::string> removed;  // sstable prefixes
  int malformed_lines = 0;           // torn last line, garbage
};

// Never fails: unreadable lines are counted and skipped, and a log without
// a final COMMIT or ABORT is in flight.
TxnLog ParseTxnLog(absl::string_view text);

}  // namespace snaphaven

#endif  // SNAPHAVEN_CASSANDRA_METADATA_H_
