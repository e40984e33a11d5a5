// A Churner imitates a busy Cassandra node on a data root made by
// tools::GenerateTree: step by step, driven by a seeded RNG, it flushes new
// sstables under transaction logs (some of which abort), compacts, takes and
// clears snapshots, rewrites Statistics.db, and hard-links flushed sstables
// into backups/. Several operations are in flight at once, interleaved one
// action at a time, with small pauses between actions, so a scanner running
// beside it sees every intermediate state Cassandra can leave on disk.
//
// It remembers what it did, so a checker can judge a copy of the tree: the
// fate of every sstable (committed, aborted, never committed, compacted
// away), every content each live file name ever had, the files of each
// snapshot and backup, and every path it deleted or replaced.
//
// Transaction logs follow Cassandra 3.0+ (see
// /work/shared/docs/cassandra-layout.md): "nb_txn_<op>_<time uuid>.log" in
// the sstable's directory, one record per line,
//   TYPE:[<absolute path prefix>,<updateTime>,<numFiles>][<checksum>]
// with TYPE one of ADD, REMOVE, COMMIT, ABORT; the prefix is the sstable's
// absolute path without the component ("/abs/ks/t-<id>/nb-7-big"); COMMIT
// and ABORT have an empty path. The checksum is the CRC-32 of the text
// before it ("ADD:[/abs/..,0,8]"), except ABORT, written "ABORT:[,0,0][1]".
//
// Not thread-safe: one thread calls Step() and reads the records between
// steps.

#ifndef SNAPHAVEN_TOOLS_SOAK_CHURN_H_
#define SNAPHAVEN_TOOLS_SOAK_CHURN_H_

#include <cstdint>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace snaphaven::soak {

struct ChurnOptions {
  std::string data_root;  // absolute; made by tools::GenerateTree
  std::vector<std::string> keyspaces = {"ks1"};
  uint32_t seed = 1;
  // Mean bytes of a new Data.db (each is 50% to 150% of it).
  int64_t data_size = 32 * 1024;
  // Pause after each action (uniform in [min, max]).
  absl::Duration min_pause = absl::Milliseconds(30);
  absl::Duration max_pause = absl::Milliseconds(120);
  // Operations in flight at once (flushes, compactions, rewrites).
  int max_in_flight = 3;
  // Per step: chance of starting a new operation rather than advancing one
  // in flight (always starts one when none is in flight).
  double start_probability = 0.3;
  // Relative weights of the operation started.
  double weight_flush = 50;
  double weight_compaction = 20;
  double weight_rewrite_stats = 20;
  double weight_snapshot = 2;
  double weight_clear_snapshot = 2;
  // Chance that a new snapshot is cleared again 0 to 40 steps later (an
  // operator's quick clearsnapshot, a short TTL): while snaphaven copies or
  // moves it.
  double quick_clear_probability = 0.3;
  // Fraction of flushes that abort (compactions abort a third as often).
  double abort_fraction = 0.2;
  // A store (table or index dir) with more committed sstables than this
  // is compacted in preference, and compactions are then 4 times as likely
  // (so they keep up with flushes); fewer than 3 cannot be compacted.
  int compaction_threshold = 4;
  // Hard-link each committed flush into backups/ (incremental_backups).
  bool incremental_backups = true;
  // If set, every action is appended to this file with its wall-clock time
  // ("02:31:07.412 COMMIT ks1/users-<id>/nb-9-big"), to line up with
  // snaphaven's log.
  std::string journal_path;
};

// What became of an sstable the churner knows.
enum class Fate {
  kLive,         // committed (or generated), still at the source
  kInFlight,     // being written under a pending transaction log
  kAborted,      // written under a log that ended in ABORT, then deleted
  kCompacted,    // was live, removed by a committed compaction
  kUncommitted,  // left under a pending log for good (LeaveUncommittedFlush)
};
const char* FateName(Fate fate);

// Size and CRC-32 of a file's bytes.
struct FileSig {
  int64_t size = 0;
  uint32_t crc = 0;
  bool operator==(const FileSig& o) const { return size == o.size && crc == o.crc; }
};

// One table's snapshot, "<ks>/<table dir>/snapshots/<tag>".
struct SnapshotUnit {
  std::string tag;
  // Every file right after the snapshot was taken, by path relative to the
  // data root (index sstables under ".<idx>/").
  std::map<std::string, FileSig> files;
  bool complete_record = true;  // false if a file vanished while recording
  bool cleared = false;         // the churner deleted it (clearsnapshot)
  // When the churner went to clear it, it was already gone: moved away by
  // snaphaven (or never there).
  bool gone_before_clear = false;
};

// A transaction log as it was just before the churner deleted it (or, for
// one left pending, as it is).
struct TxnLogRecord {
  std::string path;      // absolute
  std::string contents;  // every line, "\n"-terminated
  std::vector<std::string> added;    // sstable keys (relative, see Key)
  std::vector<std::string> removed;  // sstable keys
  bool committed = false;
  bool aborted = false;
  bool pending = false;  // never finished
};

struct ChurnStats {
  int64_t steps = 0;
  int64_t flushes_committed = 0;
  int64_t flushes_aborted = 0;
  int64_t compactions_committed = 0;
  int64_t compactions_aborted = 0;
  int64_t stats_rewrites = 0;
  int64_t snapshots_taken = 0;
  int64_t snapshots_cleared = 0;   // clear found it at the source
  int64_t snapshot_clears_gone = 0;  // clear found it already moved away
  int64_t backups_linked = 0;      // sstables
};

// Small file helpers, shared with soak.cc.
// Entries of `dir` without "." and "..", sorted; NotFound if it is gone.
absl::StatusOr<std::vector<std::string>> ListDir(const std::string& dir);
bool IsDir(const std::string& path);
bool Exists(const std::string& path);

class Churner {
 public:
  static absl::StatusOr<std::unique_ptr<Churner>> Create(const ChurnOptions& options);
  ~Churner();

  // One action of one operation (or the start of one), then a pause when
  // `pause` is true.
  absl::Status Step(bool pause = true);
  // Finishes every operation in flight without starting new ones.
  absl::Status Drain(bool pause = true);
  // Writes one more sstable, components and TOC.txt included, under an ADD
  // log that is never committed nor aborted (a flush caught by a crash):
  // the last detector. Call after Drain(); take no step afterwards.
  absl::Status LeaveUncommittedFlush();

  // An sstable's key: its path prefix relative to the data root, as in the
  // live mirror at the destination ("ks1/users-<id>/nb-7-big",
  // "ks1/users-<id>/.users_idx0/nb-3-big").
  const std::map<std::string, Fate>& sstables() const { return fates_; }
  // Every content each live component name ever had (relative path ->
  // signatures, oldest first), whatever its sstable's fate.
  const std::map<std::string, std::vector<FileSig>>& live_versions() const {
    return live_versions_;
  }
  // Every backup file linked (relative path -> its bytes when linked).
  const std::map<std::string, FileSig>& backups() const { return backups_; }
  // Snapshots by unit "<ks>/<table dir>/snapshots/<tag>".
  const std::map<std::string, SnapshotUnit>& snapshots() const { return snapshots_; }
  // Relative paths (files and directories) the churner deleted or renamed
  // over at some point.
  const std::set<std::string>& removed_paths() const { return removed_paths_; }
  const std::vector<TxnLogRecord>& txn_logs() const { return logs_; }
  // Relative directories holding sstables: "<ks>/<table dir>" and
  // "<ks>/<table dir>/.<idx>".
  std::vector<std::string> store_dirs() const;
  const ChurnStats& stats() const { return stats_; }
  int in_flight() const;
  const std::string& data_root() const { return options_.data_root; }

  // Parses one transaction log line; false if it is not in the format
  // above. Exposed for tests.
  struct LogLine {
    std::string type, path;
    int64_t update_time = 0, num_files = 0;
    std::string checksum;
  };
  static bool ParseLogLine(const std::string& line, LogLine* out);
  // CRC-32 of a record's text, as written in its checksum field.
  static uint32_t RecordChecksum(const std::string& record_text);

  struct Store;
  struct Operation;

 private:
  explicit Churner(const ChurnOptions& options);
  absl::Status Load();
  absl::Status RecordSnapshot(const std::string& tag);

  absl::Status StartOperation();
  // The components of a new sstable, by component name.
  std::shared_ptr<std::map<std::string, std::string>> NewContents();
  // A flush's or compaction's output, written component by component.
  struct NewSSTable;
  // The action writing one component of `sst`, with its bytes from `contents`.
  std::function<absl::Status()> WriteComponent(
      std::shared_ptr<NewSSTable> sst,
      std::shared_ptr<std::map<std::string, std::string>> contents, std::string component);
  std::unique_ptr<Operation> NewFlush(Store& store, bool may_abort);
  std::unique_ptr<Operation> NewCompaction(Store& store);
  // Of `prefix`, or of a random free live sstable of `store` if empty.
  std::unique_ptr<Operation> NewStatsRewrite(Store& store, std::string prefix = "");
  absl::Status TakeSnapshot();
  // Clears `tag`, or a random old snapshot (often the newest) if empty.
  absl::Status ClearSnapshot(std::string tag = "");
  absl::Status Pause();
  void Note(const std::string& what);
  // Appends a record line to a transaction log (and to its in-memory copy).
  absl::Status AppendToLog(TxnLogRecord& log, const std::string& line);

  // File helpers; every deletion is recorded in removed_paths_.
  std::string Rel(const std::string& abs) const;
  absl::Status Unlink(const std::string& abs);
  absl::Status RemoveTree(const std::string& abs);
  std::string RandomBytes(int64_t n);
  std::string TimeUuid();

  ChurnOptions options_;
  std::mt19937_64 rng_;
  std::vector<std::unique_ptr<Store>> stores_;
  std::vector<std::unique_ptr<Operation>> in_flight_;
  bool want_snapshot_ = false;
  int64_t snapshot_seq_ = 0;
  std::vector<std::string> snapshot_tags_;  // taken or generated, oldest first
  std::set<std::string> cleared_tags_;
  std::vector<std::pair<int, std::string>> quick_clears_;  // (steps left, tag)
  // The newest committed flush: (store, prefix).
  std::pair<Store*, std::string> last_flush_{nullptr, ""};

  std::map<std::string, Fate> fates_;
  std::map<std::string, std::vector<FileSig>> live_versions_;
  std::map<std::string, FileSig> backups_;
  std::map<std::string, SnapshotUnit> snapshots_;
  std::set<std::string> removed_paths_;
  std::vector<TxnLogRecord> logs_;
  ChurnStats stats_;
  std::unique_ptr<std::ofstream> journal_;

  friend struct Operation;
};

}  // namespace snaphaven::soak

#endif  // SNAPHAVEN_TOOLS_SOAK_CHURN_H_
