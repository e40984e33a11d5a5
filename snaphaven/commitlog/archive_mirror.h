// --commitlog_archive DIR: every cycle mirrors the commitlog segments that
// Cassandra's archive_command put in DIR to <dest>/commitlog_archive/, each
// verified (segment.h) before it gets its final name, durably, recorded in
// the manifest like any other file.
//
// What Cassandra does with the archive directory (db/commitlog/
// CommitLogArchiver.java, ../shared/docs/commitlog-archiving.md): it runs
// archive_command (`ln %path DIR/%name`, or `cp -f` on 2.1.0 to 2.1.8) on a
// segment once it has switched away from it and synced it for the last
// time (maybeArchive: segment.waitForFinalSync(), then exec), so a segment
// is never written again once it is there, except on 2.1 with segment
// recycling, where the same inode is rewritten (a hard link in DIR sees
// it), and while a `cp` is still writing it. (Segments found in the
// commitlog directory at startup, after a crash, are archived without a
// final sync, CASSANDRA-6904: one a crash cut short may fail verification,
// and is then quarantined for a person to judge.) Hence:
//   - only files ParseSegmentName calls kSegment are mirrored;
//   - a segment is taken once its mtime is older than --settle_time;
//   - a segment whose size or mtime differs from its recorded copy was
//     rewritten in place and is copied again, replacing the old copy
//     atomically, but only if it verifies: a recycled 2.1 segment (its
//     header now names another id) fails and leaves the good copy alone;
//   - one that fails verification is copied to
//     <dest>/commitlog_archive/quarantine/<name>, reported with the reason,
//     and never deleted at the source;
//   - in move mode a segment whose copy is verified, durable and recorded
//     in the committed manifest is removed from DIR (hard links there are
//     not counted by commitlog_total_space: an archive nobody drains fills
//     the commitlog disk).
// Mirrored segments are history: nothing here ever deletes one at the
// destination (a segment gone from DIR keeps its copy).

#ifndef SNAPHAVEN_COMMITLOG_ARCHIVE_MIRROR_H_
#define SNAPHAVEN_COMMITLOG_ARCHIVE_MIRROR_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "snaphaven/state/destination.h"
#include "absl/time/time.h"
#include "snaphaven/storage/copier.h"
#include "snaphaven/storage/file_system.h"
#include "snaphaven/state/manifest.h"
#include "snaphaven/ops/report.h"

namespace snaphaven::commitlog {

inline constexpr absl::string_view kQuarantineDirName = "quarantine";

// "commitlog_archive/<name>", "commitlog_archive/quarantine/<name>".
std::string MirroredPath(absl::string_view name);
std::string QuarantinedPath(absl::string_view name);

// What a cycle does with one entry of the archive directory.
enum class ArchiveStep {
  kIgnore,      // not a segment (a CDC index, anything else): -v 1 says so
  kLegacy,      // CommitLog-<id>.log: older than 1.2.5, never replayed
  kNotRegular,  // a segment's name on a symlink, directory or device
  kSettling,    // younger than --settle_time: a `cp` may still be writing it
  kUnchanged,   // its mirrored copy is current
  kCopy,        // new, or rewritten in place: verify it, then copy it
};

struct ArchiveDecision {
  ArchiveStep step = ArchiveStep::kIgnore;
  // kCopy over a recorded copy whose size or mtime differ.
  bool rewritten = false;
};

// Pure: the step for the entry `name` with lstat `stat`, given the
// manifest's record of its mirrored copy (`mirrored`, null when none),
// the time and the settle time, at the destination's mtime granularity.
ArchiveDecision DecideArchiveFile(absl::string_view name, const FileStat& stat,
                                  const ManifestEntry* mirrored, absl::Time now,
                                  absl::Duration settle_time, int64_t mtime_granularity_ns);

struct ArchiveMirrorOptions {
  std::string archive_dir;  // absolute, resolved
  std::string destination;  // absolute, resolved
  absl::Duration settle_time = absl::Seconds(10);
  bool move = false;     // remove mirrored segments from the archive
  bool dry_run = false;  // plan and log, change nothing
};

// What the cycle lends a pass, all called on the caller's thread.
struct ArchiveHooks {
  absl::Time now;
  int64_t mtime_granularity_ns = 1;
  // Records a file placed at the destination in the manifest.
  std::function<void(const std::string& rel, const ManifestEntry& entry)> record;
  // Makes the placed copies' directories durable and commits the manifest;
  // false when that failed (then nothing is removed from the archive).
  std::function<bool()> commit;
  // Polled between segments: stop taking new ones.
  std::function<bool()> stop_requested = [] { return false; };
};

// What a pass adds to the cycle's counts besides CommitlogStats.
struct ArchivePassResult {
  int64_t failed = 0;   // segments failed verification, copies failed
  int64_t skipped = 0;  // vanished or changed during their copy: next cycle
  bool out_of_space = false;
};

class ArchiveMirror {
 public:
  // `fs` reads the archive (a retrying one suits a flaky disk); `copier`
  // places copies at the destination (its own file system).
  ArchiveMirror(FileSystem& fs, Copier& copier, ArchiveMirrorOptions options);

  // One pass over the archive directory: verifies and copies what is new,
  // quarantines what fails, commits, then (move mode) removes from the
  // archive what is mirrored. Fills `stats` (the waiting and mirrored
  // counts, the newest mirrored segment from the manifest).
  ArchivePassResult Run(const Manifest& manifest, const ArchiveHooks& hooks,
                        CommitlogStats& stats);

 private:
  struct Entry {
    std::string name;
    FileStat stat;
  };
  struct Pass;
  // The archive's entries, by name; false (and an error logged) when it
  // cannot be listed.
  bool ListArchive(std::vector<Entry>& entries, ArchivePassResult& result);
  // One entry: decided, then verified and copied, or quarantined.
  void HandleEntry(const Entry& entry, Pass& pass);
  // Reads the segment whole and verifies it; then copies it or
  // quarantines it.
  void VerifyAndCopy(const Entry& entry, bool rewritten, Pass& pass);
  // Copies the verified bytes (their CRC-32: `crc`) to the final name; the
  // copy must give the same CRC-32, else it is dropped (the source changed).
  void CopyVerified(const Entry& entry, uint32_t crc, const std::string& summary, Pass& pass);
  // A segment that failed verification: reported, copied to quarantine.
  void Quarantine(const Entry& entry, const std::string& failure, bool rewritten, Pass& pass);
  // A copy to `rel` that ended in an error: logged, counted as a failure
  // when `count`; out of space stops the pass.
  void CopyFailed(const std::string& rel, const absl::Status& error, bool count, Pass& pass);
  // Move mode: after a successful commit, removes the mirrored segments
  // whose source is still what was copied.
  void RemoveMirrored(Pass& pass);
  // Removes one archived segment, guarded; false (logged) when kept.
  bool RemoveFromArchive(const Entry& entry, const Manifest& manifest,
                         int64_t mtime_granularity_ns);
  // The newest mirrored segment and how many there are, from the manifest.
  void CountMirrored(const Manifest& manifest, CommitlogStats& stats);

  FileSystem& fs_;
  Copier& copier_;
  const ArchiveMirrorOptions options_;
  // Pre-1.2.5 segments already reported by this process (once each).
  absl::flat_hash_set<std::string> legacy_reported_;
};

}  // namespace snaphaven::commitlog

#endif  // SNAPHAVEN_COMMITLOG_ARCHIVE_MIRROR_H_
