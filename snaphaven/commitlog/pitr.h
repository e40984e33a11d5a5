// Point-in-time restore: which mirrored commitlog segments a snapshot needs
// to be brought forward to a given time, staging them verified, and the
// restore_point_in_time line Cassandra reads.
//
// Mirrored segments live at <destination>/commitlog_archive/<name>, named as
// Cassandra's archive_command wrote them (CommitLog-<version>-<id>.log), with
// the source's mtime. Only regular files directly in that directory whose
// names are segments count (failed ones kept in quarantine/ never do).
//
// The rules come from Cassandra's source (src/java/org/apache/cassandra/):
//   db/commitlog/CommitLogArchiver.java  restore_directories (split on ","),
//       restore_command (%from, %to), restore_point_in_time: parsed as GMT by
//       SimpleDateFormat("yyyy:MM:dd HH:mm:ss") up to 4.0.13, 4.1.6 and
//       5.0.0 (parse(String) reads a prefix: anything after the seconds is
//       ignored); by DateTimeFormatter "yyyy:MM:dd HH:mm:ss[.[SSSSSS][SSS]]"
//       from 4.0.14, 4.1.7 and 5.0.1 on (CASSANDRA-19448), which accepts
//       microseconds.
//   db/commitlog/CommitLog.java  recoverSegmentsOnDisk logs "Replaying
//       <files>" and "Log replay complete, <n> replayed mutations".
//   db/snapshot/SnapshotManifest.java (4.1+)  manifest.json's "created_at",
//       an ISO-8601 instant; before 4.1 manifest.json has only "files", and
//       its mtime is when the snapshot was taken (2.0 wrote none).
//   `nodetool snapshot` flushes first, so a segment whose last write (its
//   mtime) is before the snapshot holds nothing the snapshot lacks.
// ../shared/docs/commitlog-archiving.md summarises them.

#ifndef SNAPHAVEN_COMMITLOG_PITR_H_
#define SNAPHAVEN_COMMITLOG_PITR_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "snaphaven/state/destination.h"
#include "absl/time/time.h"
#include "snaphaven/storage/file_system.h"

namespace snaphaven::commitlog {

// Where a point-in-time restore stages them, below --restore_to: Cassandra's
// restore_directories (nothing else may be in it: Cassandra refuses to
// start on a stray file there).
inline constexpr char kRestoreDirName[] = "commitlog_restore";

// --restore_until: "YYYY-MM-DD HH:MM:SS" or "YYYY-MM-DD HH:MM:SS.f" with 1
// to 6 fraction digits, UTC. InvalidArgument (naming the flag and the
// expected form) otherwise.
absl::StatusOr<absl::Time> ParseRestoreUntil(absl::string_view text);

// "YYYY-MM-DD HH:MM:SS[.ffffff] UTC" (the fraction only when not zero).
std::string FormatUtc(absl::Time time);

struct ArchivedSegment {
  std::string name;  // CommitLog-<version>-<id>.log
  std::string path;  // absolute, at the destination
  int version = 0;
  int64_t id = 0;
  FileStat stat;
  absl::Time mtime;
};

// The mirrored segments of `destination`, sorted by id; none when the
// archive directory does not exist.
absl::StatusOr<std::vector<ArchivedSegment>> ListArchivedSegments(
    FileSystem& fs, const std::string& destination);

struct SnapshotTime {
  absl::Time time;
  // Where it came from, for messages: "created_at in <path>", "mtime of
  // <path>".
  std::string source;
};

// When snapshot `tag` was taken, from its copies at the destination for
// `keyspaces` (every keyspace there when empty): per table, manifest.json's
// created_at, else manifest.json's mtime, else the newest file's mtime;
// the earliest over the tables (an earlier time only stages more segments).
// NotFound when there is no copy of the tag.
absl::StatusOr<SnapshotTime> FindSnapshotTime(FileSystem& fs, const std::string& destination,
                                              const std::string& tag,
                                              const std::vector<std::string>& keyspaces);

// The segments written to at or after the snapshot: mtime >= `snapshot`.
std::vector<ArchivedSegment> SegmentsSince(const std::vector<ArchivedSegment>& all,
                                           absl::Time snapshot);

// OK when `until` is within [snapshot time, newest segment's mtime]; else
// InvalidArgument, one line saying what range is available.
absl::Status CheckRestorePoint(absl::Time until, const SnapshotTime& snapshot,
                               const std::vector<ArchivedSegment>& all, const std::string& tag);

// The restore_point_in_time value for segments of `segment_version` (the
// newest staged): Cassandra 4.0 and later (version 7 and 8) get the
// microseconds when there are any; earlier ones read whole seconds, so the
// time is cut to its second (rounding down: nothing after the requested
// point is replayed).
std::string FormatRestorePointInTime(absl::Time until, int segment_version);

struct StagedSegments {
  std::string dir;  // <restore_to>/commitlog_restore
  std::vector<std::string> names;  // every segment there, in id order
  int64_t copied = 0;
  int64_t kept = 0;   // already staged whole by an interrupted run
  int64_t bytes = 0;  // of all of them
  int max_version = 0;
  // One line per encrypted segment: checked only up to its markers.
  std::vector<std::string> notes;
};

// Conflicts that refuse a staging before anything is written: a target in
// <restore_root>/commitlog_restore/ that exists but is not a regular file
// of the segment's size and mtime. "" when none.
std::string SegmentConflicts(FileSystem& fs, const std::string& restore_root,
                             const std::vector<ArchivedSegment>& segments);

// Stages `segments` into <restore_root>/commitlog_restore/, each verified
// (VerifySegment: header, sync markers, every mutation checksum) from the
// bytes read, then copied through a Copier (temporary file in `temp_dir`,
// fsync, rename, directory fsync) and checked against those bytes' CRC-32,
// so none is visible under its name before it is whole, durable and
// verified. A target already there with the same size, mtime and CRC-32 is
// kept. FailedPrecondition naming the segment for one that fails
// verification (nothing after it is staged), AlreadyExists for a target
// that differs.
absl::StatusOr<StagedSegments> StageSegments(FileSystem& fs,
                                             const std::vector<ArchivedSegment>& segments,
                                             const std::string& restore_root,
                                             const std::string& temp_dir);

}  // namespace snaphaven::commitlog

#endif  // SNAPHAVEN_COMMITLOG_PITR_H_
