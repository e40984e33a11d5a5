// One reconciliation cycle: clean leftovers, load the manifest, scan the
// source, plan, apply durably, commit the manifest, report. A Syncer keeps
// the manifest in memory between the cycles of one process (it holds the
// destination lock, so nobody else changes the destination meanwhile).

#ifndef SNAPHAVEN_CYCLE_H_
#define SNAPHAVEN_CYCLE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/optional.h"
#include "re2/re2.h"
#include "snaphaven/cycle/applier.h"
#include "snaphaven/storage/clock.h"
#include "snaphaven/commitlog/archive_mirror.h"
#include "snaphaven/storage/copier.h"
#include "snaphaven/state/destination.h"
#include "snaphaven/storage/dirty_memory.h"
#include "snaphaven/state/dir_cache.h"
#include "snaphaven/storage/file_system.h"
#include "snaphaven/state/manifest.h"
#include "snaphaven/state/manifest_store.h"
#include "snaphaven/cli/options.h"
#include "snaphaven/cycle/planner.h"
#include "snaphaven/ops/report.h"
#include "snaphaven/cycle/scanner.h"
#include "snaphaven/cycle/selector.h"
#include "snaphaven/cassandra/sstable_digest.h"
#include "snaphaven/ops/verifier.h"

namespace snaphaven {

// How the engine runs, as opposed to what the user asked for (Options, the
// one validated configuration, which the Syncer reads and never copies).
// None of these is a flag: they are facts main derives from the process
// (preserve_owner, progress_on_terminal) and knobs that tests turn so that
// a fault lands on a known file or time stands still. The defaults are what
// the binary runs with.
struct EngineSettings {
  // Running as root: copies are chowned to the source's owner (only root
  // may).
  bool preserve_owner = false;
  bool spare_page_cache = true;   // drop only the pages a copy brought in
  // Without a syncfs, the fsyncs of a batch of small copies run this many
  // at a time, so that they share journal commits (tests: 1, so that a
  // fault aimed at the first fsync lands on a known file).
  int concurrent_fsyncs = Copier::kConcurrentFsyncs;
  // Small copies are made durable in batches (Copier::FinishStaged) rather
  // than one fsync each. Off only in tests that aim a fault at the fsync
  // of one particular file.
  bool stage_small_files = true;
  // A batch of staged copies is made durable with one syncfs(2) of the
  // destination's file system (Copier::set_file_system_sync) where the
  // kernel can be trusted with it (kAuto). When that file system also holds
  // a data root, a syncfs also writes out Cassandra's unwritten data, so it
  // is used only while the system holds at most kQuietDirtyBytes of it
  // besides snaphaven's own (dirty_memory), else an fsync per file. kAlways
  // (no such limit) is for tests.
  enum class WholeFileSystemSync { kAuto, kNever, kAlways };
  WholeFileSystemSync whole_file_system_sync = WholeFileSystemSync::kAuto;
  static constexpr int64_t kQuietDirtyBytes = 32 << 20;
  // The system's unwritten bytes (DirtyMemoryBytes; tests replace it).
  std::function<absl::StatusOr<int64_t>()> dirty_memory = [] { return DirtyMemoryBytes(); };
  // stderr is a terminal (and not --quiet): one self-updating progress line
  // instead of log lines.
  bool progress_on_terminal = false;
  // Where the cycle takes the time from (settle and stuck ages, pruning,
  // retention, progress, commit spacing); tests set a FakeClock.
  Clock* clock = &RealClock();
  // The manifest is committed at least this often during a long cycle
  // (a commit appends what changed to its log: see StoredManifest::Commit).
  int commit_every_files = 1000;
  absl::Duration commit_every = absl::Seconds(10);
  // Transient errors (IsTransient) are retried this many times in all per
  // file, pausing retry_backoff, then twice that, ...
  int attempts = 3;
  absl::Duration retry_backoff = absl::Milliseconds(200);
};

class Syncer {
 public:
  // `options` is validated (ValidateOptions) and outlives the Syncer.
  Syncer(FileSystem& fs, const Options& options, EngineSettings settings = {});
  // A temporary Options would be gone before the first cycle.
  Syncer(FileSystem& fs, const Options&& options, EngineSettings settings = {}) = delete;

  // Creates the destination root and its state directory if missing.
  absl::Status PrepareDestination();

  // Runs one cycle. `stop` is polled between files.
  CycleStats RunCycle(const std::atomic<bool>& stop);

  // Reads every file the manifest records for the keyspaces and checks it
  // against its recorded checksum and, for Data.db, its sstable's digest;
  // lists files the manifest does not know. Changes nothing, unless
  // `repair`: then every file that failed is copied again from the source.
  VerifyStats Verify(bool repair, const std::atomic<bool>& stop);

  // --keep_snapshots/--keep_for: removes complete snapshot copies whose
  // snapshot is gone from the source, beyond the limits; logs each.
  void ApplyRetentionLimits(CycleStats& stats);

  // The manifest as this process knows it (null before the first cycle).
  const Manifest* manifest() const { return manifest_.has_value() ? &*manifest_ : nullptr; }

 private:
  // First cycle: reads (or creates) the identity marker. Later: the marker
  // must still be the one first seen, else the destination was removed,
  // unmounted or swapped.
  absl::Status CheckDestinationIdentity();
  // mkdir, then fsync of the parent, so the new directory's name survives a
  // power cut.
  absl::Status MakeDurableDir(const std::string& dir);
  // Creates the marker, probing the mtime granularity the destination keeps.
  absl::Status CreateMarker();
  absl::Status LoadManifest(bool from_destination);
  // Each cycle: whether batches of small copies are made durable with one
  // syncfs (see EngineSettings::whole_file_system_sync) or an fsync each.
  void ChooseDurability();
  // One cycle's state, from its start to its summary.
  struct CycleRun;
  // One table's state while its plan is applied.
  struct TableRun;
  // What SyncTable leaves the cycle to do.
  enum class TableStep { kNext, kStop, kRestart };

  // The steps of a cycle: BeginCycle (checks, leftovers, the manifest),
  // then SyncTable for each table, then EndCycle (the last commit,
  // pruning, the directory cache, retention).
  bool BeginCycle(CycleRun& run);
  // --all_keyspaces: the cycle's keyspaces into `scan`; false (stats.fatal)
  // when the roots cannot be listed or hold none.
  bool FindCycleKeyspaces(ScanOptions& scan, CycleStats& stats);
  TableStep SyncTable(const SourceTable& table, CycleRun& run, const std::atomic<bool>& stop);
  // A manifest section could not be read in: set aside and rebuilt
  // (kRestart) when corrupt, else the cycle stops.
  TableStep ManifestUnreadable(CycleRun& run);
  void EndCycle(CycleRun& run);
  // --commitlog_archive: one pass of the archive mirror, its manifest
  // changes committed, its counts added to the cycle's.
  void MirrorCommitlogArchive(CycleRun& run, const std::atomic<bool>& stop);
  // SyncTable's parts: the selection with its reports, then the plan's
  // application with its bookkeeping.
  Selection SelectTable(const ScanResult& scan, const std::vector<CopyState>& states,
                        CycleRun& run);
  void ApplyTable(TableRun& table, CycleRun& run, const std::atomic<bool>& stop);
  // The outcome of one action: counted, logged, recorded in the manifest.
  // False to stop the run.
  bool RecordOutcome(TableRun& table, CycleRun& run, size_t action,
                     const absl::StatusOr<AppliedFile>& outcome);
  // An action that failed: counted and logged; a full destination, or one
  // that is no longer ours, stops the run (false).
  bool RecordFailure(CycleRun& run, const Action& action, const std::string& rel,
                     const absl::Status& error);
  // A commit (and the moves it allows) when one is due. False to stop.
  bool CommitIfDue(TableRun& table, CycleRun& run);
  void ReportProgress(CycleRun& run, const TableRun& table);
  // Checks copies at the destination against the manifest (verifier.h).
  DestinationVerifier MakeVerifier();
  // --verify, one keyspace table by table: problems go to `bad`. False
  // when stopped or the manifest could not be read (stats.fatal).
  bool VerifyKeyspace(const std::string& keyspace, DestinationVerifier& verifier,
                      const std::atomic<bool>& stop, VerifyStats& stats,
                      std::vector<std::string>& bad);
  // --verify --fullsync: copies `bad` again from the source, then checks
  // the new copies.
  void RepairAndRecheck(const std::vector<std::string>& bad, DestinationVerifier& verifier,
                        const std::atomic<bool>& stop, VerifyStats& stats);
  // --verify: counts and names the files at the destination below `scope`
  // that the manifest does not know, and what could not be searched for
  // them; the tables in `known_tables` (sorted) are not walked.
  void ReportUnknownFiles(const std::string& scope, const std::vector<std::string>& known_tables,
                          VerifyStats& stats);
  // Forgets (in the manifest) every path whose destination file is the same
  // inode as `rel`'s, so the next plan copies them afresh.
  void ForgetCopy(const std::string& rel);
  // --verify_sample: checks the next share of the manifest.
  void VerifySample(CycleStats& stats);
  // --dry_run: logs every action the plan holds, fills the counts.
  void ReportPlan(const std::string& table, const ScanResult& scan, const Selection& selection,
                  const Plan& plan, CycleStats& stats);
  // After a table: its snapshot directories whose files are all recorded,
  // to skip next time, go to `next`.
  void UpdateDirCache(const ScanResult& scan, absl::Time cycle_start, DirCache& next);
  // Whether every live, index and backups directory of the table lists
  // what the cache says it listed when the manifest held exactly its files,
  // all current, and no snapshot directory had to be listed: then nothing
  // in the table can need a copy, a link, a move or a prune.
  bool TableUnchanged(const SourceTable& source, const ScanResult& scan,
                      const CycleRun& run) const;
  // Counts such a table as unchanged and keeps its cache entries.
  void SkipUnchangedTable(const SourceTable& source, const ScanResult& scan, CycleRun& run);
  // After a table whose selection held nothing back and warned of nothing
  // (`clean`): its listed directories whose files the manifest holds
  // exactly, all current and settled, go to `next` with their listing.
  void RememberListings(const ScanResult& scan, bool clean, absl::Time cycle_start,
                        DirCache& next);
  // Whether the manifest's entries directly in `dir` are `files` in number,
  // none missing at the source.
  bool ManifestHoldsExactly(absl::string_view dir, size_t files);
  // The manifest sections of the directories `scan` listed in `source`,
  // read in: what the lookups of this table's states need.
  absl::Status LoadScannedSections(const SourceTable& source, const ScanResult& scan);
  // Reads <dest>/.snaphaven/dircache once (an unreadable one is empty).
  void LoadDirCache();
  // After a cycle: the directory cache is `next` now; saved when it changed.
  void SaveDirCache(DirCache next);
  // The directory cache in memory, saved now (when it changed); where it
  // cannot be written, removed instead. An error when neither worked.
  absl::Status SaveDirCacheNow();
  // The regular files of the mirror (destination_walker.h), with the
  // source identity `previous` recorded where the file is still what it
  // recorded.
  absl::StatusOr<StoredManifest> RebuildFromDestination(const Manifest* previous);
  absl::Status CommitManifest();
  // Keeps the error of a Load call on the manifest (the first one) in
  // manifest_unreadable_; whether the manifest is still whole.
  bool ManifestReadable(const absl::Status& loaded);
  // When the manifest failed to read a section back because the file is
  // corrupt (not an I/O error): renames it to manifest.corrupt, so the next
  // load rebuilds it from the destination, and says so. Once per Syncer.
  bool SetAsideCorruptManifest();
  absl::flat_hash_map<size_t, std::string> ReadMetadata(FileSystem& fs, const ScanResult& scan,
                                                        const SelectOptions& select_options);
  // Commits the manifest if needed, then deletes the sources of the units
  // that are ready. False when the manifest could not be committed.
  bool CommitAndMove(const ScanResult& scan, const std::vector<MoveUnit>& units,
                     std::vector<int>& ready, CycleStats& stats);
  // Live-mirror pruning of the tables `scopes` ("ks/<table dir>"), whose
  // live sstables at the source are `live_sstables`.
  void Prune(const std::vector<std::string>& scopes,
             const absl::flat_hash_set<std::string>& live_sstables, CycleStats& stats);
  // After a cycle whose commits appended a large share of the manifest to
  // its log (a first copy), writes the base whole: later loads then replay
  // little (StoredManifest::WorthCompactingAfter).
  void FoldLogIfLarge(uint64_t log_bytes_at_start);
  // Counts what the selection held back and names what is stuck.
  void ReportHeldBack(const Selection& selection, absl::Time now, CycleStats& stats);

  FileSystem& fs_;
  const Options& options_;
  const EngineSettings settings_;
  Clock& clock_;
  StateDir state_;
  Copier copier_;
  Applier applier_;
  // The source may sit on a flaky network file system too: the scan's
  // reads are retried on transient errors.
  RetryingFileSystem retrying_;
  std::string durability_;  // ChooseDurability's last choice, logged when it changes
  std::unique_ptr<BandwidthLimiter> limiter_;
  std::unique_ptr<commitlog::ArchiveMirror> archive_mirror_;  // --commitlog_archive
  absl::optional<StoredManifest> manifest_;
  // The first error of a Load call on manifest_ since it was loaded: a
  // section could not be read back, so entries are missing and nothing may
  // be planned from it or committed (ManifestReadable).
  absl::Status manifest_unreadable_;
  bool first_cycle_ = true;
  bool manifest_dirty_ = false;  // in memory differs from the committed one
  bool manifest_set_aside_ = false;  // a corrupt one was, once: never loop
  std::string destination_id_;   // from the marker, once known
  int64_t mtime_granularity_ns_ = 1;
  std::string sample_cursor_;   // last path --verify_sample checked
  bool manifest_rebuilt_ = false;  // this cycle's manifest came from a walk
  absl::optional<DirCache> dir_cache_;
  std::string dir_cache_saved_;    // as last read or written
  bool sample_cursor_loaded_ = false;
};

}  // namespace snaphaven

#endif  // SNAPHAVEN_CYCLE_H_
