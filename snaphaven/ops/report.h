// What a cycle and a --verify report: their counts, the one summary line
// each ends with, the exit code cron sees, and byte counts for people. The
// metrics file (metrics.h) is written from the same counts.

#ifndef SNAPHAVEN_REPORT_H_
#define SNAPHAVEN_REPORT_H_

#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "absl/types/optional.h"
#include "snaphaven/ops/verifier.h"

namespace snaphaven {

// What a cycle did with the commitlog archive (--commitlog_archive; see
// commitlog/archive_mirror.h).
struct CommitlogStats {
  bool enabled = false;          // --commitlog_archive was given
  int64_t segments_copied = 0;   // verified and made durable at the destination
  int64_t bytes_copied = 0;
  int64_t segments_failed = 0;   // failed verification: quarantined, kept at the source
  int64_t segments_removed = 0;  // deleted from the archive (move mode)
  int64_t segments_waiting = 0;  // still in the archive directory after the cycle
  int64_t bytes_waiting = 0;
  // Segments mirrored at the destination, and the newest one's mtime (its
  // last write: the point in time a restore can reach); 0 when none.
  int64_t segments_mirrored = 0;
  int64_t newest_mirrored_mtime_ns = 0;
};

struct CycleStats {
  int64_t scanned = 0;
  int64_t copied = 0;
  int64_t linked = 0;
  int64_t unchanged = 0;
  int64_t skipped = 0;  // vanished or changed during the copy
  int64_t failed = 0;
  int64_t moved = 0;   // source files deleted after their copy (move mode)
  int64_t pruned = 0;  // live-mirror files removed at the destination
  int64_t retired = 0;  // snapshot copies removed by retention
  int64_t bytes_copied = 0;
  absl::Duration duration;
  bool out_of_space = false;
  bool interrupted = false;  // stopped by a signal between files
  bool dry_run = false;      // the counts are what a real cycle would do
  // Held back at the source: files of sstables not mirrored (live or
  // backups: in flight, incomplete, temporary) and snapshots move mode keeps.
  int64_t held_back_files = 0;
  int64_t held_back_snapshots = 0;
  int64_t pending_files = 0;  // planned but not done at the end (the backlog)
  int64_t pending_bytes = 0;
  absl::Time started;
  CommitlogStats commitlog;
  // Set when the cycle could not run at all (unreadable data root, ...).
  absl::optional<std::string> fatal;
};

// 0 when all planned work was done (or a signal stopped it), 1 otherwise.
int ExitCodeFor(const CycleStats& stats);
// "cycle done: N scanned, N copied, ..., BYTES copied in Ts (RATE/s)".
std::string SummaryLine(const CycleStats& stats, bool show_moved = false,
                        bool show_pruned = false);

// 0 when nothing is wrong (or everything wrong was repaired), 1 otherwise.
int ExitCodeFor(const VerifyStats& stats);
std::string SummaryLine(const VerifyStats& stats);

// "512 B", "1.5 KiB", "3.2 GiB".
std::string HumanBytes(int64_t bytes);

}  // namespace snaphaven

#endif  // SNAPHAVEN_REPORT_H_
