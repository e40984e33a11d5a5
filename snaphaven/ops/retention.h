// Retention: removes old snapshot copies from a snaphaven destination once
// Cassandra has cleared them at the source.
//
// Per table (<ks>/<table dir>), the snapshot copies the manifest records are
// ordered by age: the creation time in the copy's manifest.json
// ("created_at", Cassandra 4.1+) when it has one, else the copy time (the
// mtime of <dest>/<ks>/<table dir>/snapshots/<tag>). A copy is COMPLETE by
// the rule of snapshot_copy.h (IsCompleteSnapshotCopy, the one --list uses
// too), a file counting as present when it is a regular file at the
// destination: its manifest.json parses, is not ephemeral, and every
// Data.db it lists is there with the components its sstable needs; or, with
// no manifest.json, it holds only 2.0-or-older sstables, each whole.
//
// A complete copy is removed when its snapshot is no longer at the source
// and it is beyond the newest `keep_snapshots` complete copies of its table
// or older than `keep_for` (either limit suffices; 0 disables a limit).
// Copies still at the source count towards the newest N but are never
// removed (the next cycle would only copy them again).
//
// An incomplete (partial) copy never counts towards the N. While its
// snapshot is at the source it is left alone (a later cycle completes it).
// Once its snapshot is gone from the source (cleared, TTL expired) it can
// never be completed, and it is removed under the same limits: when older
// than `keep_for`, or when `keep_snapshots` is set and at least that many
// complete copies of its table are newer than it. Each such removal is
// also named in a warning as a partial copy. A copy whose completeness
// cannot be told (a read error) is kept, with a warning.
//
// Removal of a copy: its manifest entries are erased, its tag directory is
// renamed into <dest>/.snaphaven/retention-trash/ (one atomic step: a crash
// never leaves a half-removed copy in place), then every file in it is
// unlinked and its directories removed. A file hard-linked elsewhere (another
// snapshot's copy, the live mirror) keeps its other names and bytes; only
// inodes whose last link goes count in bytes_freed. Leftovers of an
// interrupted pass are removed at the start of the next one. Where the
// rename is refused, the copy is removed in place. The snapshots/ directory
// itself is kept.
//
// Copies recorded in the manifest whose tag directory is gone from the
// destination (removed by hand, or by a pass whose manifest was never
// committed) and that are not at the source have their entries erased.
//
// Takes no lock: call it with <dest>/.snaphaven/lock held, and commit the
// manifest afterwards (the files are already gone; until the commit the
// manifest on disk still lists them, which the next pass repairs).
//
// Caution for a long-lived caller: a Copier remembers the directories it has
// seen (Copier::EnsureParentDirs). A tag directory removed here and taken
// again later at the source (a reused tag such as "daily") must be created
// afresh, so a Copier that copied into it before must not be reused.

#ifndef SNAPHAVEN_RETENTION_H_
#define SNAPHAVEN_RETENTION_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "snaphaven/storage/file_system.h"
#include "snaphaven/state/manifest.h"

namespace snaphaven {

struct RetentionOptions {
  // Keyspaces to apply retention to; empty: all.
  std::vector<std::string> keyspaces;
  // Keep the newest N complete copies per table; 0: no limit.
  int keep_snapshots = 0;
  // Remove copies older than this; 0: no limit.
  absl::Duration keep_for = absl::ZeroDuration();
  // What "older" is measured from.
  absl::Time now = absl::Now();
  // Compute and return what would be removed; change nothing.
  bool dry_run = false;
};

struct RetentionResult {
  // "ks/table dir/snapshots/tag" of every copy removed (or that would be,
  // in a dry run), sorted.
  std::vector<std::string> removed_snapshots;
  // Files (names) unlinked.
  int64_t files_removed = 0;
  // Bytes of the inodes whose last link went.
  int64_t bytes_freed = 0;
  // What went wrong without stopping the pass (a file that could not be
  // unlinked, an unreadable manifest.json, stale entries erased, leftovers
  // of an interrupted pass removed), one line each, for the log.
  std::vector<std::string> warnings;
};

// `present_at_source(rel)` says whether the snapshot "ks/table dir/snapshots/
// tag" still exists at the source (in any data root). Answer from the file
// system, not from a scan filtered by --snapshot_regex: a copy whose
// snapshot merely went unscanned must not look cleared.
//
// Errors: InvalidArgument for bad options; the file system's error when the
// destination cannot be read (nothing was removed then, or the manifest
// reflects exactly what was). A file that cannot be unlinked is a warning.
absl::StatusOr<RetentionResult> ApplyRetention(
    FileSystem& fs, Manifest& manifest, const std::string& destination,
    const RetentionOptions& options,
    const std::function<bool(const std::string&)>& present_at_source);

}  // namespace snaphaven

#endif  // SNAPHAVEN_RETENTION_H_
