#include "snaphaven/cycle/cycle.h"

#include <glog/logging.h>

#include <algorithm>
#include <functional>
#include <iostream>
#include <thread>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/random/random.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "snaphaven/cassandra/cassandra_path.h"
#include "snaphaven/storage/checksum.h"
#include "snaphaven/state/destination_walker.h"
#include "snaphaven/cassandra/keyspace_dirs.h"
#include "snaphaven/cycle/mover.h"
#include "snaphaven/cycle/planner.h"
#include "snaphaven/storage/process_priority.h"
#include "snaphaven/ops/retention.h"
#include "snaphaven/cycle/scanner.h"

namespace snaphaven {

Syncer::Syncer(FileSystem& fs, const Options& options, EngineSettings settings)
    : fs_(fs),
      options_(options),
      settings_(std::move(settings)),
      clock_(*settings_.clock),
      state_(options_.destination),
      copier_(fs, options_.destination, state_.temp, settings_.preserve_owner,
              options_.checksum),
      applier_(fs, copier_, [this] {
        ApplierOptions applier;
        applier.data_roots = options_.data_roots;
        applier.copy_threads = std::max(1, options_.copy_threads);
        applier.checksum = options_.checksum;
        applier.stage_small_files = settings_.stage_small_files;
        applier.stage_batch_files = StageBatchFiles(std::max(1, options_.copy_threads));
        applier.attempts = settings_.attempts;
        applier.retry_backoff = settings_.retry_backoff;
        return applier;
      }()),
      retrying_(&fs, settings_.attempts, settings_.retry_backoff) {
  if (options_.max_bandwidth > 0) {
    limiter_ = std::make_unique<BandwidthLimiter>(options_.max_bandwidth);
    copier_.set_limiter(limiter_.get());
  }
  copier_.set_spare_page_cache(settings_.spare_page_cache);
  copier_.set_finish_threads(std::max(1, options_.copy_threads));
  copier_.set_concurrent_fsyncs(std::max(1, settings_.concurrent_fsyncs));
  if (!options_.commitlog_archive.empty()) {
    commitlog::ArchiveMirrorOptions archive;
    archive.archive_dir = options_.commitlog_archive;
    archive.destination = options_.destination;
    archive.settle_time = options_.settle_time;
    archive.move = options_.move_snapshots;
    archive.dry_run = options_.dry_run;
    archive_mirror_ = std::make_unique<commitlog::ArchiveMirror>(retrying_, copier_, archive);
  }
}

absl::Status Syncer::PrepareDestination() {
  // mkdir -p of the destination root (validation made sure it is
  // possible), then the state directories, each checked to be a directory
  // (lstat: a symlink is not) before anything is made inside it. Each
  // directory made is synced into its parent: else a power cut could take
  // the destination, with every copy made durable in it, away (the
  // power-cut test caught it).
  std::vector<std::string> missing;
  for (std::string dir(DirName(options_.destination)); !dir.empty() && dir != "/" &&
                                                       !fs_.Stat(dir).ok();
       dir = std::string(DirName(dir))) {
    missing.push_back(dir);
  }
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
    absl::Status made = MakeDurableDir(*it);
    if (!made.ok()) return made;
  }
  const std::string* const dirs[] = {&options_.destination, &state_.dir, &state_.temp};
  for (const std::string* dir : dirs) {
    absl::StatusOr<FileStat> st = fs_.Stat(*dir);
    if (!st.ok() && IsVanished(st.status())) {
      absl::Status made = MakeDurableDir(*dir);
      if (!made.ok()) return made;
      st = fs_.Stat(*dir);
    }
    if (!st.ok()) return st.status();
    if (st->type != FileType::kDirectory) {
      return absl::FailedPreconditionError(absl::StrCat(*dir, " is not a directory"));
    }
  }
  return absl::OkStatus();
}

absl::Status Syncer::MakeDurableDir(const std::string& dir) {
  absl::Status made = fs_.MakeDir(dir);
  if (!made.ok() && made.code() != absl::StatusCode::kAlreadyExists) return made;
  return fs_.SyncDir(std::string(DirName(dir)));
}

absl::Status Syncer::CreateMarker() {
  // Probe: which part of a nanosecond mtime does this file system keep?
  const std::string probe = JoinPath(state_.dir, "mtime-probe");
  (void)fs_.Remove(probe);
  absl::StatusOr<std::unique_ptr<WritableFile>> file = fs_.CreateNew(probe);
  if (!file.ok()) return file.status();
  FileStat wanted;
  wanted.mode = 0600;
  wanted.mtime_ns = wanted.atime_ns = int64_t{1600000001} * 1000000000 + 123456789;
  absl::Status status = (*file)->SetAttributes(wanted, false);
  if (status.ok()) status = (*file)->Close();
  absl::StatusOr<FileStat> kept = fs_.Stat(probe);
  (void)fs_.Remove(probe);
  if (!status.ok()) return status;
  if (!kept.ok()) return kept.status();
  int64_t granularity = 1;
  for (int64_t g : {int64_t{1}, int64_t{1000}, int64_t{1000000}, int64_t{1000000000},
                    int64_t{2000000000}}) {
    granularity = g;
    if (SameMtime(kept->mtime_ns, wanted.mtime_ns, g)) break;
  }
  // 128 random bits from the kernel via absl's seeded generator.
  absl::BitGen random;
  std::string id = absl::StrFormat("%016x%016x", absl::Uniform<uint64_t>(random),
                                   absl::Uniform<uint64_t>(random));
  return fs_.WriteFileAtomically(
      state_.marker, absl::StrCat("snaphaven-destination 1\nid ", id,
                                  "\nmtime_granularity_ns ", granularity, "\n"));
}

absl::Status Syncer::CheckDestinationIdentity() {
  absl::StatusOr<std::string> text = fs_.ReadFile(state_.marker);
  if (!text.ok() && IsVanished(text.status()) && destination_id_.empty() && options_.dry_run) {
    return absl::OkStatus();  // a new destination; a dry run creates nothing
  }
  if (!text.ok() && IsVanished(text.status()) && destination_id_.empty()) {
    absl::Status created = CreateMarker();
    if (!created.ok()) return created;
    text = fs_.ReadFile(state_.marker);
  }
  if (!text.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "destination ", options_.destination, " vanished or was unmounted (its identity marker ",
        state_.marker, " cannot be read: ", text.status().message(),
        "); not writing anything there"));
  }
  std::string id;
  int64_t granularity = 1;
  for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(line, ' ');
    if (kv.first == "id") id = std::string(kv.second);
    if (kv.first == "mtime_granularity_ns") (void)absl::SimpleAtoi(kv.second, &granularity);
  }
  if (id.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("identity marker ", state_.marker, " is corrupt; remove it to adopt ",
                     options_.destination, " again"));
  }
  if (!destination_id_.empty() && id != destination_id_) {
    return absl::FailedPreconditionError(absl::StrCat(
        "destination ", options_.destination, " was swapped (identity ", id, " instead of ",
        destination_id_, "); not writing anything there"));
  }
  destination_id_ = id;
  mtime_granularity_ns_ = std::max<int64_t>(granularity, 1);
  return absl::OkStatus();
}

absl::StatusOr<StoredManifest> Syncer::RebuildFromDestination(const Manifest* previous) {
  StoredManifest rebuilt;
  // Table by table, each committed to a scratch manifest and let go of, so
  // that memory follows the largest table; written in place of the
  // manifest at the end. (A dry run writes nothing, and holds it all.) An
  // empty destination writes nothing either: the first commit writes it.
  const bool stream = !options_.dry_run;
  const std::string& scratch = state_.manifest_rebuild;
  bool streaming = false;  // the scratch manifest was started
  DestinationVisitor visitor;
  visitor.file = [&](const std::string& rel, const FileStat& st) {
    // Only a regular file is a copy: a symlink or a device never is.
    if (st.type != FileType::kRegular) return absl::OkStatus();
    ManifestEntry entry;
    entry.size = st.size;
    entry.mtime_ns = st.mtime_ns;
    entry.mode = st.mode;
    // Keep the source identity where the file is still what was recorded.
    const ManifestEntry* old =
        previous != nullptr && previous->Loaded(DirName(rel)) ? previous->Find(rel) : nullptr;
    if (old != nullptr && old->size == entry.size &&
        SameMtime(old->mtime_ns, entry.mtime_ns, mtime_granularity_ns_)) {
      entry = *old;  // the source's exact mtime and identity
    }
    rebuilt.Put(rel, entry);
    return absl::OkStatus();
  };
  visitor.enter = [&](const std::string& rel, const FileStat&) {
    // The old entries of its files (a section that cannot be read back
    // leaves them out: their copies are read again by --verify, not lost).
    if (previous != nullptr) {
      (void)previous->LoadSectionsBelow(rel, [&](absl::string_view dir) { return dir == rel; });
    }
    return true;
  };
  visitor.leave = [&](const std::string& rel) {
    if (!IsTableUnit(rel)) return absl::OkStatus();
    absl::Status status;
    if (stream && rebuilt.pending_changes() > 0) {
      status = streaming ? rebuilt.Commit(fs_, scratch) : rebuilt.CommitWhole(fs_, scratch);
      streaming = true;
    }
    rebuilt.Release(rel);
    if (previous != nullptr) previous->Release(rel);
    return status;
  };
  visitor.error = [](const std::string& rel, const absl::Status& error) {
    // A destination not created yet holds nothing; anything else unread
    // would leave copies out of the manifest.
    return rel.empty() && IsVanished(error) ? absl::OkStatus() : error;
  };
  absl::Status status = WalkDestination(fs_, options_.destination, "", visitor);
  if (status.ok() && streaming) status = rebuilt.CommitWhole(fs_, state_.manifest);
  if (streaming) {
    (void)fs_.Remove(StoredManifest::LogPath(scratch));
    (void)fs_.Remove(scratch);
  }
  if (!status.ok()) return status;
  return rebuilt;
}

void Syncer::ChooseDurability() {
  using Mode = EngineSettings::WholeFileSystemSync;
  // Opened now, before this cycle writes anything: a syncfs reports the
  // write-back errors seen on the file system since its handle was opened.
  absl::StatusOr<std::unique_ptr<FileSystemSync>> sync =
      absl::UnimplementedError("whole-file-system syncs are off");
  if (settings_.whole_file_system_sync != Mode::kNever) sync = fs_.OpenFileSystemSync(state_.temp);
  absl::StatusOr<FileStat> destination = fs_.Stat(state_.temp);
  std::string shared_root;  // a data root on the destination's file system
  if (sync.ok() && settings_.whole_file_system_sync == Mode::kAuto) {
    for (const std::string& root : options_.data_roots) {
      absl::StatusOr<FileStat> data = fs_.Stat(root);
      if (!destination.ok() || !data.ok()) {
        sync = absl::FailedPreconditionError(
            absl::StrCat("cannot tell whether ", root, " is on the destination's file system"));
        break;
      }
      if (data->dev == destination->dev) shared_root = root;
    }
  }
  Copier::SyncfsGate gate;
  std::string choice;
  if (!sync.ok()) {
    choice = absl::StrCat("one fsync per file (", sync.status().message(), ")");
  } else if (shared_root.empty()) {
    choice = "one syncfs per batch of small copies";
  } else {
    // A syncfs here also writes out Cassandra's unwritten data and waits
    // for it: only while there is little of it (it would be written within
    // seconds anyway), so that a batch never waits for a flush or a
    // compaction, and Cassandra's I/O is not brought forward in bulk.
    gate = [probe = settings_.dirty_memory](int64_t own_unwritten) {
      absl::StatusOr<int64_t> dirty = probe();
      const bool quiet =
          LittleOtherUnwrittenData(dirty, own_unwritten, EngineSettings::kQuietDirtyBytes);
      VLOG(2) << "batch: " << (quiet ? "one syncfs" : "an fsync per file") << " ("
              << (dirty.ok() ? absl::StrCat(HumanBytes(*dirty), " unwritten in memory, ",
                                            HumanBytes(own_unwritten), " of it ours")
                             : std::string(dirty.status().message()))
              << ")";
      return quiet;
    };
    choice = absl::StrCat(
        "one syncfs per batch of small copies while the system holds at most ",
        HumanBytes(EngineSettings::kQuietDirtyBytes),
        " of other unwritten data, else one fsync per file (", shared_root,
        " is on the destination's file system: a syncfs also writes out Cassandra's data)");
  }
  if (choice != durability_) VLOG(1) << "durability: " << choice;
  durability_ = std::move(choice);
  copier_.set_file_system_sync(sync.ok() ? *std::move(sync) : nullptr, std::move(gate));
}

absl::Status Syncer::LoadManifest(bool from_destination) {
  absl::optional<StoredManifest> loaded;
  bool missing = false;
  // Lazily: a cycle reads in only the sections of the directories it looks
  // at, so the snapshots the scan skips cost nothing.
  absl::StatusOr<StoredManifest> parsed =
      StoredManifest::Load(fs_, state_.manifest, StoredManifest::Loading::kLazy);
  if (parsed.ok()) {
    loaded = *std::move(parsed);
  } else if (IsVanished(parsed.status())) {
    missing = true;  // first run, or the manifest was lost
    from_destination = true;
  } else if (ErrnoOf(parsed.status()) != 0) {
    return parsed.status();  // a read error, not a corrupt manifest
  } else {
    LOG(WARNING) << "manifest " << state_.manifest << " is corrupt ("
                 << parsed.status().message() << "); rebuilding it from the destination";
    from_destination = true;
  }
  manifest_unreadable_ = absl::OkStatus();
  if (!from_destination) {
    manifest_ = *std::move(loaded);
    // An older format is rewritten in the current one at the first commit.
    if (manifest_->format_version() < 5) manifest_dirty_ = true;
    return absl::OkStatus();
  }
  absl::StatusOr<StoredManifest> rebuilt =
      RebuildFromDestination(loaded.has_value() ? &*loaded : nullptr);
  if (!rebuilt.ok()) return rebuilt.status();
  if (missing && rebuilt->size() > 0) {
    LOG(WARNING) << "manifest " << state_.manifest << " is missing; rebuilt it from the "
                 << rebuilt->size() << " files at the destination";
  }
  manifest_ = *std::move(rebuilt);
  manifest_dirty_ = true;
  manifest_rebuilt_ = true;
  return absl::OkStatus();
}

bool Syncer::ManifestReadable(const absl::Status& loaded) {
  if (!loaded.ok() && manifest_unreadable_.ok()) manifest_unreadable_ = loaded;
  return manifest_unreadable_.ok();
}

bool Syncer::SetAsideCorruptManifest() {
  const absl::Status status = manifest_unreadable_;
  // Only a file that does not parse (no errno): a read error may pass.
  if (status.ok() || ErrnoOf(status) != 0 || manifest_set_aside_) return false;
  const std::string aside = state_.manifest + ".corrupt";
  absl::Status moved = fs_.Rename(state_.manifest, aside);
  if (!moved.ok()) return false;
  LOG(WARNING) << "manifest " << state_.manifest << " is corrupt (" << status.message()
               << "); kept as " << aside << " and rebuilt from the destination";
  manifest_set_aside_ = true;
  manifest_.reset();
  return true;
}

absl::Status Syncer::CommitManifest() {
  // A section that could not be read back (also by a change or a count)
  // would be dropped by a commit (the store refuses it too).
  if (!ManifestReadable(manifest_->load_error())) return manifest_unreadable_;
  absl::Status status = manifest_->Commit(fs_, state_.manifest);
  if (status.ok()) manifest_dirty_ = false;
  return status;
}

absl::flat_hash_map<size_t, std::string> Syncer::ReadMetadata(
    FileSystem& fs, const ScanResult& scan, const SelectOptions& select_options) {
  absl::flat_hash_map<size_t, std::string> texts;
  for (size_t i : MetadataToRead(scan, select_options)) {
    const SourceFile& file = scan.files[i];
    absl::StatusOr<std::string> text =
        fs.ReadFile(JoinPath(options_.data_roots[file.root], file.relative_path));
    if (text.ok()) {
      texts.emplace(i, *std::move(text));
    } else if (!IsVanished(text.status())) {
      // The selector treats an unreadable TOC or manifest as incomplete.
      LOG(WARNING) << "cannot read " << text.status().message();
    }
  }
  return texts;
}

bool Syncer::CommitAndMove(const ScanResult& scan, const std::vector<MoveUnit>& units,
                           std::vector<int>& ready, CycleStats& stats) {
  if (manifest_dirty_) {
    // The renames the manifest is about to record must be durable first.
    absl::Status committed = copier_.SyncPendingDirs();
    if (committed.ok()) committed = CommitManifest();
    if (!committed.ok()) {
      LOG(ERROR) << "cannot commit the manifest " << state_.manifest << ": "
                 << committed.message();
      if (IsOutOfSpace(committed)) stats.out_of_space = true;
      ++stats.failed;
      return false;  // nothing is deleted unless its copy is recorded
    }
  }
  // Snapshot by snapshot, so space comes back during a long run.
  for (int u : ready) {
    MoveOutcome outcome =
        DeleteMovedSources(fs_, units[u], scan, options_.data_roots, options_.destination,
                           mtime_granularity_ns_);
    stats.moved += outcome.deleted;
    for (const std::string& problem : outcome.problems) LOG(WARNING) << problem;
    if (outcome.completed) {
      VLOG(1) << "moved " << units[u].name << " (" << outcome.deleted << " source files deleted)";
    }
  }
  ready.clear();
  return true;
}

void Syncer::FoldLogIfLarge(uint64_t log_bytes_at_start) {
  const uint64_t now = manifest_->log_bytes();
  if (now < log_bytes_at_start || !manifest_->WorthCompactingAfter(now - log_bytes_at_start)) {
    return;
  }
  absl::Status folded = manifest_->CommitWhole(fs_, state_.manifest);
  if (!folded.ok()) {
    LOG(WARNING) << "cannot fold the manifest's log into " << state_.manifest << ": "
                 << folded.message() << " (the next commit does)";
  }
}

void Syncer::ReportHeldBack(const Selection& selection, absl::Time now, CycleStats& stats) {
  for (const HeldBack& held : selection.held_back) {
    if (held.kind == HeldBack::Kind::kSnapshot) {
      ++stats.held_back_snapshots;
    } else {
      stats.held_back_files += held.files;
    }
    const absl::Duration age = now - absl::FromUnixNanos(held.newest_mtime_ns);
    if (age < options_.stuck_after) continue;  // on its way (-v 2 says why)
    const char* what = held.kind == HeldBack::Kind::kSnapshot      ? "snapshot kept at the source"
                       : held.kind == HeldBack::Kind::kBackupSSTable ? "backup sstable not copied"
                                                                     : "live sstable not mirrored";
    LOG(WARNING) << "held back, unchanged for "
                 << absl::FormatDuration(absl::Trunc(age, absl::Minutes(1))) << ": " << what
                 << " " << held.name << ": " << held.reason;
  }
}

void Syncer::Prune(const std::vector<std::string>& scopes,
                   const absl::flat_hash_set<std::string>& live_sstables, CycleStats& stats) {
  if (!ManifestReadable(LoadLiveMirror(*manifest_, scopes))) {
    // Live sections missing: nothing is removed (the commit is refused too).
    LOG(ERROR) << "cannot prune: " << manifest_unreadable_.message();
    ++stats.failed;
    return;
  }
  PrunePlan prune = PlanPrune(*manifest_, scopes, live_sstables, clock_.Now(),
                              options_.prune_after);
  for (const auto& [path, entry] : prune.updates) {
    manifest_->Put(path, entry);
    manifest_dirty_ = true;
    VLOG(2) << (entry.missing_since_ns != 0 ? "gone from the source (pruned after --prune_after): "
                                            : "back at the source: ")
            << path;
  }
  for (const std::string& path : prune.remove) {
    absl::Status removed = fs_.Remove(JoinPath(options_.destination, path));
    if (!removed.ok() && !IsVanished(removed)) {
      LOG(ERROR) << "cannot prune " << removed.message();
      ++stats.failed;
      continue;
    }
    manifest_->Erase(path);
    manifest_dirty_ = true;
    ++stats.pruned;
    VLOG(1) << "pruned " << path << " (compacted away at the source)";
  }
}

DestinationVerifier Syncer::MakeVerifier() {
  return DestinationVerifier(fs_, options_.destination, mtime_granularity_ns_,
                             [this](const std::string& rel) {
                               return applier_.DigestFor(options_.destination, rel);
                             });
}

// One cycle's state, from its start to its summary.
struct Syncer::CycleRun {
  explicit CycleRun(absl::Time start) : start(start) { stats.started = start; }
  const absl::Time start;
  CycleStats stats;
  bool fullsync = false;
  bool stopping = false;  // nothing new is started: a signal, a full destination
  ScanOptions scan_options;
  uint64_t log_bytes_at_start = 0;
  DirCache next_dir_cache;
  // The live mirror's tables seen at the source (pruned as they go); the
  // others are pruned at the end.
  absl::flat_hash_set<std::string> tables_seen;
  // Progress: tables done of the listing's total, and the commit spacing.
  size_t tables_total = 0;
  size_t tables_done = 0;
  absl::Time last_progress;
  bool progress_shown = false;
  int64_t since_commit = 0;
  absl::Time last_commit;
  absl::Duration last_commit_took;
};

// One table's state while its plan is applied.
struct Syncer::TableRun {
  const ScanResult& scan;
  const Selection& selection;
  const Plan& plan;
  // Move units become ready when every one of their files is recorded.
  std::vector<int> unit_of;    // per scanned file: its move unit, or -1
  std::vector<int> remaining;  // per move unit: files not recorded yet
  std::vector<int> ready;      // units to delete at the next commit
  int64_t bytes_done = 0;      // of plan.bytes_to_copy
};

CycleStats Syncer::RunCycle(const std::atomic<bool>& stop) {
  CycleRun run(clock_.Now());
  auto finish = [&]() {
    if (run.progress_shown) std::cerr << "\r\x1b[K" << std::flush;  // clear the progress line
    run.stats.duration = clock_.Now() - run.start;
    return run.stats;
  };
  run.fullsync = options_.fullsync && first_cycle_;
  first_cycle_ = false;
  // Also when the cycle cannot run: the metrics keep their commitlog
  // counters (a family left out of one file would restart from zero).
  run.stats.commitlog.enabled = archive_mirror_ != nullptr;
  if (!BeginCycle(run)) return finish();
  MirrorCommitlogArchive(run, stop);
  absl::StatusOr<TableListing> listing = ListSourceTables(retrying_, run.scan_options);
  if (!listing.ok()) {
    run.stats.fatal = absl::StrCat("cannot scan the source: ", listing.status().message());
    return finish();
  }
  for (const std::string& warning : listing->problems.warnings) LOG(WARNING) << warning;
  for (const std::string& note : listing->problems.notes) VLOG(1) << note;
  for (const absl::Status& error : listing->problems.errors) {
    LOG(ERROR) << "cannot read " << error.message();
    ++run.stats.failed;
  }
  // Table by table: scanned, planned, applied and committed, then let go
  // of, so memory follows the largest table rather than the node.
  run.tables_total = listing->tables.size();
  for (const SourceTable& table : listing->tables) {
    if (run.stopping) break;
    TableStep step = SyncTable(table, run, stop);
    if (step == TableStep::kRestart) return RunCycle(stop);
    ++run.tables_done;
    if (step == TableStep::kStop) break;
  }
  if (!run.stats.fatal.has_value()) EndCycle(run);
  return finish();
}

bool Syncer::BeginCycle(CycleRun& run) {
  CycleStats& stats = run.stats;
  // Nothing resolved in an earlier cycle is trusted: the destination may
  // have been replaced or mounted over since.
  fs_.ForgetResolvedDirectories();
  absl::Status identity = CheckDestinationIdentity();
  if (!identity.ok()) {
    stats.fatal = std::string(identity.message());
    return false;
  }
  absl::StatusOr<int> leftovers = options_.dry_run ? 0 : copier_.CleanTempDir();
  if (!leftovers.ok()) {
    stats.fatal = absl::StrCat("cannot clean ", state_.temp, ": ", leftovers.status().message());
    return false;
  }
  if (*leftovers > 0) {
    LOG(WARNING) << "removed " << *leftovers << " temporary files left by an interrupted run";
  }
  if (!options_.dry_run) ChooseDurability();
  manifest_rebuilt_ = false;
  // (A manifest that failed to read a section back is read again.)
  if (!manifest_.has_value() || run.fullsync ||
      !ManifestReadable(manifest_->load_error())) {
    absl::Status loaded = LoadManifest(run.fullsync);
    if (!loaded.ok()) {
      stats.fatal = absl::StrCat("cannot load the manifest: ", loaded.message());
      manifest_.reset();
      return false;
    }
  }
  if (!options_.dry_run) VerifySample(stats);
  run.log_bytes_at_start = manifest_->log_bytes();
  manifest_->ResetPeakLoadedEntries();
  run.last_commit = run.last_progress = clock_.Now();

  ScanOptions& scan = run.scan_options;
  scan.data_roots = options_.data_roots;
  scan.keyspaces = options_.keyspaces;
  if (options_.all_keyspaces && !FindCycleKeyspaces(scan, stats)) return false;
  scan.tag_filter = options_.tag_filter.get();
  scan.include_live = options_.sync_sstables;
  scan.include_backups = options_.sync_backups;
  scan.record_decisions = options_.verbosity >= 2;
  scan.threads = options_.scan_threads;
  // Symlinked keyspace and table directories are followed, never into it.
  scan.destination = options_.destination;
  LoadDirCache();
  // Unchanged snapshot directories are skipped, unless this cycle must not
  // trust what it recorded (--fullsync, a rebuilt manifest), or move mode
  // must look at every snapshot (a settling one becomes movable without
  // changing).
  if (!run.fullsync && !manifest_rebuilt_ && !options_.move_snapshots) {
    scan.unchanged_dirs = &*dir_cache_;
  }
  return true;
}

bool Syncer::FindCycleKeyspaces(ScanOptions& scan, CycleStats& stats) {
  absl::StatusOr<KeyspaceDirs> found = FindKeyspaceDirs(retrying_, options_.data_roots);
  if (!found.ok()) {
    stats.fatal = absl::StrCat("cannot scan the source: ", found.status().message());
    return false;
  }
  for (const std::string& note : found->notes) VLOG(1) << note;
  // An empty mount point is not a node without data: nothing is pruned.
  if (found->keyspaces.empty()) {
    stats.fatal = absl::StrCat("--all_keyspaces: no keyspace directory in ",
                               absl::StrJoin(options_.data_roots, ", "), " (not mounted?)");
    return false;
  }
  scan.keyspaces = std::move(found->keyspaces);
  return true;
}

void Syncer::MirrorCommitlogArchive(CycleRun& run, const std::atomic<bool>& stop) {
  if (archive_mirror_ == nullptr) return;
  const std::string scope(kCommitlogArchiveDirName);
  // The archive's section and its quarantine's.
  if (!ManifestReadable(manifest_->LoadBelow(scope))) {
    // Its table loop sets the manifest aside or stops (SyncTable).
    LOG(ERROR) << "commitlog archive: not mirrored this cycle: " << manifest_unreadable_.message();
    ++run.stats.failed;
    return;
  }
  commitlog::ArchiveHooks hooks;
  hooks.now = clock_.Now();
  hooks.mtime_granularity_ns = mtime_granularity_ns_;
  hooks.record = [this](const std::string& rel, const ManifestEntry& entry) {
    manifest_->Put(rel, entry);
    manifest_dirty_ = true;
  };
  hooks.commit = [this, &run] {
    std::vector<int> none;
    return CommitAndMove(ScanResult(), {}, none, run.stats);
  };
  hooks.stop_requested = [&stop] { return stop.load(); };
  const commitlog::ArchivePassResult pass =
      archive_mirror_->Run(*manifest_, hooks, run.stats.commitlog);
  run.stats.failed += pass.failed;
  run.stats.skipped += pass.skipped;
  if (pass.out_of_space) {
    run.stats.out_of_space = true;
    run.stopping = true;
  }
  if (stop.load()) {
    run.stats.interrupted = true;
    run.stopping = true;
  }
  manifest_->Release(scope);  // unless changed and not committed
}

Selection Syncer::SelectTable(const ScanResult& scan, const std::vector<CopyState>& states,
                               CycleRun& run) {
  for (const std::string& warning : scan.warnings) LOG(WARNING) << warning;
  for (const std::string& note : scan.notes) VLOG(1) << note;
  for (const absl::Status& error : scan.errors) {
    LOG(ERROR) << "cannot read " << error.message();
    ++run.stats.failed;
  }
  for (const std::string& decision : scan.decisions) VLOG(2) << decision;
  run.stats.scanned += static_cast<int64_t>(scan.files.size()) + scan.skipped_files;

  SelectOptions select_options;
  select_options.move = options_.move_snapshots;
  select_options.settle_time = options_.settle_time;
  select_options.now = clock_.Now();
  select_options.record_decisions = options_.verbosity >= 2;
  select_options.states = &states;
  Selection selection = SelectFiles(scan, ReadMetadata(retrying_, scan, select_options),
                                    *manifest_, select_options);
  for (const std::string& decision : selection.decisions) VLOG(2) << decision;
  for (const std::string& warning : selection.warnings) LOG(WARNING) << warning;
  for (const std::string& error : selection.errors) {
    LOG(ERROR) << error;
    ++run.stats.failed;
  }
  ReportHeldBack(selection, select_options.now, run.stats);
  return selection;
}

Syncer::TableStep Syncer::ManifestUnreadable(CycleRun& run) {
  // Entries are missing: planning from it would copy what is there. A
  // corrupt file is set aside and the cycle starts again from a manifest
  // rebuilt from the destination; a read error ends it (the next cycle
  // reads the file again).
  if (SetAsideCorruptManifest()) return TableStep::kRestart;
  run.stats.fatal = std::string(manifest_unreadable_.message());
  manifest_.reset();
  return TableStep::kStop;
}

Syncer::TableStep Syncer::SyncTable(const SourceTable& source, CycleRun& run,
                                    const std::atomic<bool>& stop) {
  const ScanResult scan = ScanTables(retrying_, run.scan_options, {&source});
  if (TableUnchanged(source, scan, run)) {
    SkipUnchangedTable(source, scan, run);
    return run.stopping ? TableStep::kStop : TableStep::kNext;
  }
  if (!ManifestReadable(LoadScannedSections(source, scan))) return ManifestUnreadable(run);
  const std::vector<CopyState> states =
      StatesOfCopies(scan.files, *manifest_, mtime_granularity_ns_);
  const Selection selection = SelectTable(scan, states, run);
  // The planner reads only what is in memory: when something is to be
  // copied or linked, the table's sections (where a link target may be) are
  // read in first, and one that cannot be read stops the table here.
  const bool to_do = std::any_of(selection.eligible.begin(), selection.eligible.end(),
                                 [&](size_t i) { return !IsCurrent(states[i]); });
  if (!ManifestReadable(to_do ? manifest_->LoadBelow(source.relative_path) : absl::OkStatus())) {
    return ManifestUnreadable(run);
  }
  PlanOptions plan_options;
  plan_options.record_decisions = options_.verbosity >= 2;
  plan_options.mtime_granularity_ns = mtime_granularity_ns_;
  plan_options.states = &states;
  const Plan plan = PlanCycle(scan.files, selection.eligible, *manifest_, plan_options);
  for (const std::string& decision : plan.decisions) VLOG(2) << decision;
  run.stats.unchanged += plan.unchanged + scan.skipped_files;
  if (run.fullsync || !plan.manifest_updates.empty()) manifest_dirty_ = true;
  for (const auto& [path, entry] : plan.manifest_updates) manifest_->Put(path, entry);
  if (options_.sync_sstables) run.tables_seen.insert(source.relative_path);
  if (options_.dry_run) {
    ReportPlan(source.relative_path, scan, selection, plan, run.stats);
    manifest_->Release(source.relative_path);  // unless changed in memory
    return TableStep::kNext;
  }

  TableRun table{scan, selection, plan};
  ApplyTable(table, run, stop);
  if (run.stats.fatal.has_value()) return TableStep::kStop;  // the destination is not ours now
  if (options_.sync_sstables && !run.stopping) {
    Prune({source.relative_path}, selection.live_sstables, run.stats);
  }
  if (!CommitAndMove(scan, selection.units, table.ready, run.stats)) return TableStep::kStop;
  UpdateDirCache(scan, run.start, run.next_dir_cache);
  const bool clean = scan.errors.empty() && scan.warnings.empty() &&
                     selection.held_back.empty() && selection.warnings.empty() &&
                     selection.errors.empty();
  RememberListings(scan, clean, run.start, run.next_dir_cache);
  manifest_->Release(source.relative_path);
  return run.stopping ? TableStep::kStop : TableStep::kNext;
}

void Syncer::ApplyTable(TableRun& table, CycleRun& run, const std::atomic<bool>& stop) {
  const ScanResult& scan = table.scan;
  const std::vector<MoveUnit>& units = table.selection.units;
  table.unit_of.assign(scan.files.size(), -1);
  table.remaining.assign(units.size(), 0);
  for (size_t u = 0; u < units.size(); ++u) {
    for (size_t i : units[u].files) {
      table.unit_of[i] = static_cast<int>(u);
      if (!IsCurrentCopy(manifest_->Find(scan.files[i].relative_path), scan.files[i].stat,
                         mtime_granularity_ns_)) {
        ++table.remaining[u];
      }
    }
    if (table.remaining[u] == 0) table.ready.push_back(static_cast<int>(u));
  }
  ApplyHooks hooks;
  hooks.record = [&](size_t a, const absl::StatusOr<AppliedFile>& outcome) {
    return RecordOutcome(table, run, a, outcome);
  };
  hooks.checkpoint = [&] { return CommitIfDue(table, run); };
  hooks.stop_requested = [&stop] { return stop.load(); };
  hooks.discard_staged = [&run] { return run.stats.fatal.has_value(); };
  hooks.progress = [&](size_t) { ReportProgress(run, table); };
  ApplyReport report = applier_.Run(table.plan, scan.files, hooks);
  if (report.interrupted) {
    run.stats.interrupted = true;
    run.stopping = true;
  }
  for (size_t a = 0; a < table.plan.actions.size(); ++a) {
    if (report.succeeded[a]) continue;
    ++run.stats.pending_files;
    if (table.plan.actions[a].kind == ActionKind::kCopy) {
      run.stats.pending_bytes += scan.files[table.plan.actions[a].file].stat.size;
    }
  }
}

bool Syncer::RecordOutcome(TableRun& table, CycleRun& run, size_t a,
                           const absl::StatusOr<AppliedFile>& outcome) {
  CycleStats& stats = run.stats;
  const Action& action = table.plan.actions[a];
  const SourceFile& file = table.scan.files[action.file];
  const std::string& rel = file.relative_path;
  if (!outcome.ok()) return RecordFailure(run, action, rel, outcome.status());
  ManifestEntry entry = EntryFor(file);
  switch (outcome->kind) {
    case Applied::kCorrupt:
      ++stats.failed;  // logged with both values by the applier
      return true;
    case Applied::kVanished:
      ++stats.skipped;
      VLOG(2) << "skip " << rel << ": vanished from the source (snapshot cleared)";
      return true;
    case Applied::kChanged:
      ++stats.skipped;
      LOG(WARNING) << "skip " << rel << ": changed during the copy; retrying next cycle";
      return true;
    case Applied::kNotRun:
    case Applied::kStaged:  // never reported
      ++stats.skipped;
      VLOG(2) << "skip " << rel << ": its copy " << action.link_from
              << " did not complete; next cycle";
      return true;
    case Applied::kLinked:
      ++stats.linked;
      VLOG(1) << "linked " << rel << " (same inode as " << action.link_from << ")";
      // The same bytes as the copy linked to.
      if (const ManifestEntry* target = manifest_->Find(action.link_from)) {
        entry.has_crc32 = target->has_crc32;
        entry.crc32 = target->crc32;
      }
      break;
    case Applied::kCopied:
      ++stats.copied;
      stats.bytes_copied += file.stat.size;
      table.bytes_done += file.stat.size;
      VLOG(1) << "copied " << rel << " (" << file.stat.size << " bytes)";
      entry.has_crc32 = outcome->copy.has_crc32;
      entry.crc32 = outcome->copy.crc32;
      break;
  }
  manifest_->Put(rel, entry);
  manifest_dirty_ = true;
  ++run.since_commit;
  int u = table.unit_of[action.file];
  if (u >= 0 && --table.remaining[u] == 0) table.ready.push_back(u);
  return true;
}

bool Syncer::RecordFailure(CycleRun& run, const Action& action, const std::string& rel,
                           const absl::Status& error) {
  CycleStats& stats = run.stats;
  if (IsOutOfSpace(error)) {
    if (!stats.out_of_space) {
      LOG(ERROR) << "destination " << options_.destination << " is out of space while "
                 << (action.kind == ActionKind::kCopy ? "copying " : "linking ") << rel
                 << ": " << error.message();
    }
    stats.out_of_space = true;
    run.stopping = true;
    return false;
  }
  // A failure on the destination side may mean it is gone: then stop
  // rather than fail (or worse, recreate) everything that follows.
  if (!stats.fatal.has_value()) {
    absl::Status identity = CheckDestinationIdentity();
    if (!identity.ok()) stats.fatal = std::string(identity.message());
  }
  if (stats.fatal.has_value()) {
    run.stopping = true;
    return false;
  }
  ++stats.failed;
  LOG(ERROR) << "failed to " << (action.kind == ActionKind::kCopy ? "copy " : "link ") << rel
             << ": " << error.message()
             << (IsTransient(error) ? " (transient; retried, will retry next cycle)" : "");
  return true;
}

bool Syncer::CommitIfDue(TableRun& table, CycleRun& run) {
  // Commit now and then, so a crash in a long cycle costs little re-copy
  // and moved snapshots free their space as the run goes. A commit appends
  // what changed to the manifest's log (StoredManifest::Commit), so it costs what
  // changed; the odd one that compacts the log is paid back by waiting ten
  // times what the last commit took.
  const absl::Duration time_due = std::max(settings_.commit_every, 10 * run.last_commit_took);
  if (run.since_commit < settings_.commit_every_files &&
      (run.since_commit == 0 || clock_.Now() - run.last_commit < time_due)) {
    return true;
  }
  absl::Status identity = CheckDestinationIdentity();
  if (!identity.ok()) {
    run.stats.fatal = std::string(identity.message());
    run.stopping = true;
    return false;
  }
  const absl::Time commit_start = clock_.Now();
  const bool committed = CommitAndMove(table.scan, table.selection.units, table.ready, run.stats);
  run.since_commit = 0;
  run.last_commit = clock_.Now();
  run.last_commit_took = run.last_commit - commit_start;
  if (!committed && run.stats.out_of_space) {
    run.stopping = true;
    return false;
  }
  return true;
}

void Syncer::ReportProgress(CycleRun& run, const TableRun& table) {
  const absl::Time now = clock_.Now();
  if (now - run.last_progress < options_.progress_interval) return;
  run.last_progress = now;
  const CycleStats& stats = run.stats;
  const double seconds = absl::ToDoubleSeconds(now - run.start);
  const double rate = seconds > 0 ? stats.bytes_copied / seconds : 0;
  // The listing of the tables is the cheap first pass that gives the
  // total: the share done is the tables done, plus the part of this one.
  const double this_table = table.plan.bytes_to_copy > 0
                                ? static_cast<double>(table.bytes_done) / table.plan.bytes_to_copy
                                : 0;
  const double done = run.tables_total > 0
                          ? (run.tables_done + this_table) / static_cast<double>(run.tables_total)
                          : 1;
  const std::string eta =
      done > 0 ? absl::FormatDuration(absl::Seconds(std::ceil(seconds * (1 - done) / done)))
               : std::string("unknown");
  const std::string line = absl::StrFormat(
      "progress: %d/%d tables (%.0f%%), %d files, %s copied, %s/s, ETA %s",
      run.tables_done, run.tables_total, 100.0 * done, stats.copied + stats.linked,
      HumanBytes(stats.bytes_copied), HumanBytes(static_cast<int64_t>(rate)), eta);
  if (settings_.progress_on_terminal) {
    std::cerr << "\r" << line << "\x1b[K" << std::flush;
    run.progress_shown = true;
  } else {
    LOG(INFO) << line;
  }
}

void Syncer::EndCycle(CycleRun& run) {
  CycleStats& stats = run.stats;
  const bool whole = !stats.interrupted && !stats.out_of_space && !run.stopping;
  if (options_.dry_run) {
    LOG(INFO) << "plan: " << stats.copied << " to copy (" << HumanBytes(stats.bytes_copied)
              << "), " << stats.linked << " to link, " << stats.moved
              << " to delete at the source, " << stats.pruned << " to prune; nothing was changed";
    ApplyRetentionLimits(stats);
    manifest_.reset();  // it was changed in memory only; never commit it
    return;
  }
  if (options_.sync_sstables && whole) {
    // Tables gone from the source altogether (dropped): their copies are
    // pruned like any sstable gone.
    std::vector<std::string> gone;
    for (const std::string& scope : manifest_->TablesBelow(run.scan_options.keyspaces)) {
      if (!run.tables_seen.contains(scope)) gone.push_back(scope);
    }
    if (!gone.empty()) Prune(gone, {}, stats);
  }
  std::vector<int> none;
  if (CommitAndMove(ScanResult(), {}, none, stats)) {
    FoldLogIfLarge(run.log_bytes_at_start);
    SaveDirCache(std::move(run.next_dir_cache));
  }
  manifest_->Release("");
  VLOG(1) << "manifest: at most " << manifest_->peak_loaded_entries() << " of "
          << manifest_->size() << " entries in memory at once";
  if (whole) ApplyRetentionLimits(stats);
}


void Syncer::ReportUnknownFiles(const std::string& scope,
                                const std::vector<std::string>& known_tables,
                                VerifyStats& stats) {
  DestinationVisitor visitor;
  visitor.enter = [&known_tables](const std::string& rel, const FileStat&) {
    return !std::binary_search(known_tables.begin(), known_tables.end(), rel);
  };
  visitor.file = [&](const std::string& rel, const FileStat&) {
    if (manifest_->Find(rel) == nullptr) {
      ++stats.unknown;
      LOG(ERROR) << "unknown (not in the manifest): " << rel;
    }
    return absl::OkStatus();
  };
  // A table the manifest does not know: what the lookups read in, let go of.
  visitor.leave = [this](const std::string& rel) {
    if (IsTableUnit(rel)) manifest_->Release(rel);
    return absl::OkStatus();
  };
  visitor.error = [&stats](const std::string& rel, const absl::Status& error) {
    // A directory that cannot be searched could hide anything: a problem,
    // never a pass. One gone holds nothing (a recorded copy gone is
    // reported missing).
    if (!IsVanished(error)) {
      ++stats.unreadable;
      LOG(ERROR) << "cannot look for unknown files in " << rel << ": " << error.message();
    }
    return absl::OkStatus();
  };
  (void)WalkDestination(fs_, options_.destination, scope, visitor);
}

void Syncer::LoadDirCache() {
  if (dir_cache_.has_value()) return;
  absl::StatusOr<std::string> text = fs_.ReadFile(state_.dir_cache);
  absl::StatusOr<DirCache> parsed =
      text.ok() ? DirCache::Parse(*text) : absl::StatusOr<DirCache>(text.status());
  dir_cache_ = parsed.ok() ? *std::move(parsed) : DirCache();
  if (parsed.ok()) dir_cache_saved_ = *text;
}

void Syncer::ForgetCopy(const std::string& rel) {
  // Its directory must be listed again for the copy to be redone: the
  // cache is read first, or the next cycle would read it from disk and
  // trust the directory still.
  LoadDirCache();
  for (const std::string& root : options_.data_roots) {
    dir_cache_->EraseTree(JoinPath(root, DirName(rel)));
  }
  // And so on disk, before the manifest forgets the copy: a run that
  // committed that and ended before saving its cache would leave the
  // directory trusted, and the file never copied again.
  absl::Status untrusted = SaveDirCacheNow();
  if (!untrusted.ok()) {
    LOG(ERROR) << "cannot save the directory cache, nor remove it: " << untrusted.message();
    ManifestReadable(untrusted);  // nothing is committed this cycle
    return;
  }
  absl::StatusOr<FileStat> bad = fs_.Stat(JoinPath(options_.destination, rel));
  manifest_->Erase(rel);
  manifest_dirty_ = true;
  if (!bad.ok()) return;
  // Hard links share the bad bytes: forget every name of that inode.
  // Hard links stay in the table directory: only its entries are looked at.
  const std::string scope = Manifest::LinkScope(rel);
  const std::string prefix = scope.empty() ? std::string() : scope + "/";
  if (!ManifestReadable(manifest_->LoadBelow(scope))) return;  // the cycle fails for it
  std::vector<std::string> twins;
  const Manifest::Map& entries = manifest_->loaded_entries();
  for (auto it = entries.lower_bound(prefix);
       it != entries.end() && absl::StartsWith(it->first, prefix); ++it) {
    const auto& [path, entry] = *it;
    if (entry.size != bad->size) continue;
    absl::StatusOr<FileStat> st = fs_.Stat(JoinPath(options_.destination, path));
    if (st.ok() && st->dev == bad->dev && st->ino == bad->ino) twins.push_back(path);
  }
  for (const std::string& path : twins) manifest_->Erase(path);
}

void Syncer::VerifySample(CycleStats& stats) {
  if (options_.verify_sample <= 0 || manifest_->size() == 0) return;
  const std::string& cursor_file = state_.verify_cursor;
  if (!sample_cursor_loaded_) {
    absl::StatusOr<std::string> saved = fs_.ReadFile(cursor_file);
    if (saved.ok()) sample_cursor_ = *saved;
    sample_cursor_loaded_ = true;
  }
  // Round-robin over the manifest in path order, so every file is re-read
  // once every 100/percent cycles; directory by directory, each let go of
  // once its share is taken.
  const int64_t budget = std::min<int64_t>(
      static_cast<int64_t>(manifest_->size()),
      static_cast<int64_t>(std::ceil(static_cast<double>(manifest_->size()) *
                                     options_.verify_sample / 100)));
  std::vector<std::pair<std::string, ManifestEntry>> taken;
  const std::vector<std::string> dirs = manifest_->Directories();
  auto take_from = [&](const std::string& dir, const std::string& after) {
    if (!ManifestReadable(
            manifest_->LoadSections([&dir](absl::string_view d) { return d == dir; }))) {
      return;
    }
    const std::string prefix = dir.empty() ? std::string() : dir + "/";
    const Manifest::Map& entries = manifest_->loaded_entries();
    for (auto it = entries.upper_bound(std::max(after, prefix));
         it != entries.end() && absl::StartsWith(it->first, prefix) &&
         static_cast<int64_t>(taken.size()) < budget;
         ++it) {
      if (DirName(it->first) == dir) taken.emplace_back(it->first, it->second);
    }
    manifest_->Release(dir);
  };
  // From the cursor's directory on, then from the first one round again.
  const std::string cursor_dir(DirName(sample_cursor_));
  auto start = std::lower_bound(dirs.begin(), dirs.end(), cursor_dir);
  for (int round = 0; round < 2 && static_cast<int64_t>(taken.size()) < budget; ++round) {
    for (auto d = round == 0 ? start : dirs.begin();
         d != dirs.end() && static_cast<int64_t>(taken.size()) < budget; ++d) {
      take_from(*d, round == 0 && *d == cursor_dir ? sample_cursor_ : std::string());
    }
  }
  if (!manifest_unreadable_.ok()) return;  // the cycle fails for it after planning
  std::vector<RecordedFile> sample;
  for (const auto& [rel, entry] : taken) sample.push_back({&rel, &entry});
  if (!taken.empty()) sample_cursor_ = taken.back().first;
  VerifyStats found;
  std::vector<std::string> bad;
  MakeVerifier().Check(sample, found, [] { return false; }, [&](size_t i, const std::string& problem) {
    if (problem.empty()) return;
    LOG(ERROR) << "--verify_sample: " << problem << ": " << *sample[i].rel
               << "; copying it again if the source still has it";
    bad.push_back(*sample[i].rel);
  });
  for (const std::string& rel : bad) ForgetCopy(rel);
  stats.failed += static_cast<int64_t>(bad.size());
  VLOG(1) << "--verify_sample: re-read " << sample.size() << " files ("
          << HumanBytes(found.bytes) << ")";
  absl::Status saved = fs_.WriteFileAtomically(cursor_file, sample_cursor_);
  if (!saved.ok()) LOG(WARNING) << "cannot save " << cursor_file << ": " << saved.message();
}

void Syncer::ReportPlan(const std::string& table, const ScanResult& scan,
                        const Selection& selection, const Plan& plan, CycleStats& stats) {
  stats.dry_run = true;
  for (const Action& action : plan.actions) {
    const SourceFile& file = scan.files[action.file];
    if (action.kind == ActionKind::kCopy) {
      ++stats.copied;
      stats.bytes_copied += file.stat.size;
      LOG(INFO) << "plan: copy " << file.relative_path << " (" << HumanBytes(file.stat.size)
                << ")";
    } else {
      ++stats.linked;
      LOG(INFO) << "plan: link " << file.relative_path << " to " << action.link_from;
    }
  }
  for (const MoveUnit& unit : selection.units) {
    int64_t bytes = 0;
    for (size_t i : unit.files) bytes += scan.files[i].stat.size;
    LOG(INFO) << "plan: move " << unit.name << " (" << unit.files.size() << " files, "
              << HumanBytes(bytes) << ", deleted at the source once copied)";
    for (size_t i : unit.files) {
      const SourceFile& file = scan.files[i];
      LOG(INFO) << "plan: delete " << JoinPath(options_.data_roots[file.root], file.relative_path);
      ++stats.moved;
    }
  }
  if (options_.sync_sstables) {
    if (!ManifestReadable(LoadLiveMirror(*manifest_, {table}))) return;
    PrunePlan prune = PlanPrune(*manifest_, {table}, selection.live_sstables, clock_.Now(),
                                options_.prune_after);
    for (const std::string& path : prune.remove) {
      const ManifestEntry* entry = manifest_->Find(path);
      LOG(INFO) << "plan: prune " << path << " ("
                << HumanBytes(entry != nullptr ? entry->size : 0) << ")";
      ++stats.pruned;
    }
  }
}

void Syncer::ApplyRetentionLimits(CycleStats& stats) {
  if (options_.keep_snapshots <= 0 && options_.keep_for <= absl::ZeroDuration()) return;
  if (!manifest_unreadable_.ok()) return;  // the cycle already failed for it
  RetentionOptions retention;
  // --all_keyspaces: every keyspace at the destination (none named: all).
  if (!options_.all_keyspaces) retention.keyspaces = options_.keyspaces;
  retention.keep_snapshots = options_.keep_snapshots;
  retention.keep_for = options_.keep_for;
  retention.now = clock_.Now();
  retention.dry_run = options_.dry_run;
  // Asked of the file system, in every data root: a snapshot that was only
  // filtered out of the scan (--snapshot_regex) is still at the source.
  auto present_at_source = [this](const std::string& snapshot_dir) {
    for (const std::string& root : options_.data_roots) {
      if (fs_.Stat(JoinPath(root, snapshot_dir)).ok()) return true;
    }
    return false;
  };
  absl::StatusOr<RetentionResult> result =
      ApplyRetention(fs_, *manifest_, options_.destination, retention, present_at_source);
  if (!result.ok()) {
    LOG(ERROR) << "retention: " << result.status().message();
    ++stats.failed;
    return;
  }
  for (const std::string& warning : result->warnings) LOG(WARNING) << "retention: " << warning;
  for (const std::string& removed : result->removed_snapshots) {
    LOG(INFO) << (options_.dry_run ? "plan: retire " : "retired ") << removed
              << " (a complete copy of a snapshot gone from the source, beyond "
                 "--keep_snapshots/--keep_for)";
  }
  stats.retired = static_cast<int64_t>(result->removed_snapshots.size());
  if (options_.dry_run || result->removed_snapshots.empty()) return;
  LOG(INFO) << "retention freed " << HumanBytes(result->bytes_freed) << " ("
            << result->files_removed << " files)";
  copier_.ForgetKnownDirs();  // some destination directories are gone
  manifest_dirty_ = true;
  absl::Status committed = CommitManifest();
  if (!committed.ok()) {
    LOG(ERROR) << "cannot commit the manifest after retention: " << committed.message();
    ++stats.failed;
  }
}

void Syncer::UpdateDirCache(const ScanResult& scan, absl::Time cycle_start, DirCache& next) {
  if (options_.move_snapshots) return;
  for (const std::string& dir : scan.skipped_dirs) {
    if (const CachedDir* cached = dir_cache_->Find(dir)) next.Put(dir, *cached);
  }
  // Which snapshot directories have every file recorded at the destination.
  // (Live and backups directories: RememberListings.)
  struct Tally {
    bool all_current = true;
    int64_t files = 0;
    int64_t bytes = 0;
  };
  absl::flat_hash_map<std::string, Tally> tally;
  for (const SourceFile& file : scan.files) {
    if (file.kind != PathKind::kSnapshot) continue;
    Tally& t = tally[JoinPath(options_.data_roots[file.root], DirName(file.relative_path))];
    t.all_current &=
        IsCurrentCopy(manifest_->Find(file.relative_path), file.stat, mtime_granularity_ns_);
    ++t.files;
    t.bytes += file.stat.size;
  }
  // A directory changed within the last moments may still be changing at
  // a granularity its mtime cannot show: list it again next time.
  for (const ScanResult::WalkedDir& walked : scan.walked_dirs) {
    std::string dir = JoinPath(options_.data_roots[walked.root], walked.relative_path);
    const Tally& t = tally[dir];
    if (!t.all_current || !SettledAt(walked.stat.mtime_ns, cycle_start)) continue;
    next.Put(dir, CachedDir{walked.stat.dev, walked.stat.ino, walked.stat.mtime_ns, t.files,
                            t.bytes, walked.subdirs});
  }
}

bool Syncer::TableUnchanged(const SourceTable& source, const ScanResult& scan,
                            const CycleRun& run) const {
  if (run.scan_options.unchanged_dirs == nullptr || options_.dry_run) return false;
  if (!scan.walked_dirs.empty() || !scan.errors.empty() || !scan.warnings.empty()) return false;
  // Every root's table directory listed (one that vanished since the
  // tables were listed has its live copies to prune).
  if (options_.sync_sstables) {
    for (const TableDir& dir : source.dirs) {
      bool listed = false;
      for (const ScanResult::ListedDir& l : scan.listed_dirs) {
        listed |= l.root == dir.root && l.relative_path == source.relative_path;
      }
      if (!listed) return false;
    }
  }
  for (const ScanResult::ListedDir& listed : scan.listed_dirs) {
    const CachedDir* cached = dir_cache_->Find(
        JoinPath(options_.data_roots[listed.root], listed.relative_path));
    if (cached == nullptr || cached->listing != listed.listing ||
        cached->dev != listed.stat.dev || cached->ino != listed.stat.ino) {
      return false;
    }
  }
  return true;
}

void Syncer::SkipUnchangedTable(const SourceTable& source, const ScanResult& scan,
                                CycleRun& run) {
  const int64_t files = static_cast<int64_t>(scan.files.size()) + scan.skipped_files;
  run.stats.scanned += files;
  run.stats.unchanged += files;
  for (const std::string& decision : scan.decisions) VLOG(2) << decision;
  VLOG(2) << "unchanged table " << source.relative_path << " (" << files
          << " files; its directories list as when all were current)";
  if (options_.sync_sstables) run.tables_seen.insert(source.relative_path);
  UpdateDirCache(scan, run.start, run.next_dir_cache);  // the snapshot directories
  for (const ScanResult::ListedDir& listed : scan.listed_dirs) {
    const std::string dir = JoinPath(options_.data_roots[listed.root], listed.relative_path);
    run.next_dir_cache.Put(dir, *dir_cache_->Find(dir));
  }
}

void Syncer::RememberListings(const ScanResult& scan, bool clean, absl::Time cycle_start,
                              DirCache& next) {
  if (options_.move_snapshots || !clean) return;
  // (A file changed within the last moments may change again at a
  // granularity its mtime cannot show: SettledAt.)
  // Per directory (relative: one manifest directory for every root): its
  // files, and whether each is current and settled.
  struct Tally {
    absl::flat_hash_set<absl::string_view> files;
    bool all_current = true;
  };
  absl::flat_hash_map<absl::string_view, Tally> tally;
  for (const ScanResult::ListedDir& listed : scan.listed_dirs) tally[listed.relative_path];
  for (const SourceFile& file : scan.files) {
    auto it = tally.find(DirName(file.relative_path));
    if (it == tally.end()) continue;
    it->second.files.insert(file.relative_path);
    it->second.all_current &=
        SettledAt(file.stat.mtime_ns, cycle_start) &&
        IsCurrentCopy(manifest_->Find(file.relative_path), file.stat, mtime_granularity_ns_);
  }
  for (auto& [dir, t] : tally) {
    if (t.all_current) t.all_current = ManifestHoldsExactly(dir, t.files.size());
  }
  for (const ScanResult::ListedDir& listed : scan.listed_dirs) {
    // (The directory's own mtime may be young: its listing says what changed.)
    if (!tally[listed.relative_path].all_current) continue;
    next.Put(JoinPath(options_.data_roots[listed.root], listed.relative_path),
             CachedDir{listed.stat.dev, listed.stat.ino, listed.stat.mtime_ns, 0, 0, {},
                       listed.listing});
  }
}

absl::Status Syncer::LoadScannedSections(const SourceTable& source, const ScanResult& scan) {
  absl::flat_hash_set<absl::string_view> dirs;
  for (const SourceFile& file : scan.files) dirs.insert(DirName(file.relative_path));
  // And every snapshot directory listed, with what is below it even where
  // the source holds no file any more: a snapshot's manifest.json names its
  // index files (".idx/..."), which a killed move may already have deleted,
  // and the selector then asks whether their copies are recorded.
  for (const auto& [root, dir] : scan.snapshot_dirs) dirs.insert(dir);
  return manifest_->LoadSectionsBelow(source.relative_path, [&](absl::string_view dir) {
    if (dirs.contains(dir)) return true;
    const PathInfo info = ClassifyPath(absl::StrCat(dir, "/x"));
    return info.kind == PathKind::kSnapshot &&
           dirs.contains(JoinPath(JoinPath(JoinPath(info.keyspace, info.table_dir), "snapshots"),
                                  info.tag));
  });
}

bool Syncer::ManifestHoldsExactly(absl::string_view dir, size_t files) {
  const std::string d(dir);
  if (!ManifestReadable(manifest_->LoadSectionsBelow(
          d, [&](absl::string_view section) { return section == d; }))) {
    return false;
  }
  const std::string prefix = absl::StrCat(d, "/");
  size_t held = 0;
  const Manifest::Map& entries = manifest_->loaded_entries();
  for (auto it = entries.lower_bound(prefix);
       it != entries.end() && absl::StartsWith(it->first, prefix); ++it) {
    if (absl::StrContains(absl::string_view(it->first).substr(prefix.size()), '/')) continue;
    if (it->second.missing_since_ns != 0) return false;  // on its way to be pruned
    ++held;
  }
  return held == files;
}

absl::Status Syncer::SaveDirCacheNow() {
  std::string text = dir_cache_->Serialize();
  if (text == dir_cache_saved_) return absl::OkStatus();
  absl::Status saved = fs_.WriteFileAtomically(state_.dir_cache, text);
  if (saved.ok()) {
    dir_cache_saved_ = std::move(text);
    return saved;
  }
  // No cache trusts nothing: the next run lists every directory.
  absl::Status removed = fs_.Remove(state_.dir_cache);
  if (!removed.ok() && !IsVanished(removed)) return removed;
  dir_cache_saved_.clear();
  return fs_.SyncDir(state_.dir);
}

void Syncer::SaveDirCache(DirCache next) {
  if (options_.move_snapshots) return;
  dir_cache_ = std::move(next);
  // Saved whenever it changed, once the manifest on disk records every file
  // it vouches for (the commit before this made it so): also by a cycle
  // that copied nothing, so that a directory too young to trust in one
  // cycle is trusted, and saved, in the next.
  if (manifest_dirty_) return;
  absl::Status saved = SaveDirCacheNow();
  if (!saved.ok()) LOG(WARNING) << "cannot save the directory cache: " << saved.message();
}

VerifyStats Syncer::Verify(bool repair, const std::atomic<bool>& stop) {
  const absl::Time start = clock_.Now();
  VerifyStats stats;
  first_cycle_ = false;  // --fullsync here means repair, not a rebuilt manifest
  absl::Status identity = CheckDestinationIdentity();
  if (identity.ok() && !manifest_.has_value()) identity = LoadManifest(false);
  if (!identity.ok()) stats.fatal = std::string(identity.message());
  DestinationVerifier verifier = MakeVerifier();
  std::vector<std::string> bad;
  // --all_keyspaces: every keyspace at the destination, even one gone from
  // the source. With --commitlog_archive, the mirrored segments too.
  std::vector<std::string> scopes =
      options_.all_keyspaces && manifest_.has_value() ? KeyspacesAtDestination(*manifest_)
                                                      : options_.keyspaces;
  if (archive_mirror_ != nullptr) scopes.emplace_back(kCommitlogArchiveDirName);
  for (size_t k = 0; !stats.fatal.has_value() && k < scopes.size(); ++k) {
    if (!VerifyKeyspace(scopes[k], verifier, stop, stats, bad)) break;
  }
  if (repair && !bad.empty() && !stats.fatal.has_value()) {
    RepairAndRecheck(bad, verifier, stop, stats);
  }
  stats.duration = clock_.Now() - start;
  return stats;
}

bool Syncer::VerifyKeyspace(const std::string& keyspace, DestinationVerifier& verifier,
                            const std::atomic<bool>& stop, VerifyStats& stats,
                            std::vector<std::string>& bad) {
  // A section that cannot be read back ends the verify: it must not pass
  // over a part of the copies.
  auto unreadable = [&](const absl::Status& loaded) {
    if (ManifestReadable(loaded)) return false;
    stats.fatal = absl::StrCat(manifest_unreadable_.message(),
                               ErrnoOf(manifest_unreadable_) == 0
                                   ? " (a sync cycle rebuilds it from the destination)"
                                   : "");
    manifest_.reset();
    return true;
  };
  // Checks the entries read in below `prefix` that `take` accepts (each
  // inode read once: its names are all in one table directory); false
  // when stopped.
  auto check_below = [&](const std::string& prefix,
                         const std::function<bool(absl::string_view)>& take) {
    std::vector<RecordedFile> names;
    const Manifest::Map& entries = manifest_->loaded_entries();
    for (auto it = entries.lower_bound(prefix);
         it != entries.end() && absl::StartsWith(it->first, prefix); ++it) {
      if (take(it->first)) names.push_back({&it->first, &it->second});
    }
    return verifier.Check(
        names, stats, [&stop] { return stop.load(); },
        [&](size_t i, const std::string& problem) {
          if (!problem.empty()) {
            LOG(ERROR) << problem << ": " << *names[i].rel;
            bad.push_back(*names[i].rel);
          } else {
            VLOG(1) << "verified " << *names[i].rel;
          }
        });
  };
  // Table by table, each let go of once checked: memory follows the
  // largest table, not the keyspace.
  const std::vector<std::string> tables = manifest_->TablesBelow({keyspace});
  for (const std::string& table : tables) {
    if (unreadable(manifest_->LoadBelow(table))) return false;
    const bool finished = check_below(table + "/", [](absl::string_view) { return true; });
    ReportUnknownFiles(table, {}, stats);
    manifest_->Release(table);
    if (!finished) return false;
  }
  // Files directly in the keyspace directory (no table's).
  if (unreadable(
          manifest_->LoadSections([&](absl::string_view dir) { return dir == keyspace; }))) {
    return false;
  }
  if (!check_below(keyspace + "/",
                   [&](absl::string_view path) { return DirName(path) == keyspace; })) {
    return false;
  }
  // And what else the keyspace directory holds: its own files, and the
  // tables the manifest does not know at all.
  ReportUnknownFiles(keyspace, tables, stats);
  return true;
}

void Syncer::RepairAndRecheck(const std::vector<std::string>& bad,
                              DestinationVerifier& verifier, const std::atomic<bool>& stop,
                              VerifyStats& stats) {
  for (const std::string& rel : bad) ForgetCopy(rel);
  CycleStats cycle = RunCycle(stop);
  LOG(INFO) << SummaryLine(cycle);
  if (!manifest_.has_value()) return;  // the cycle failed: it said why
  // The entries by value: reading a section in moves the entries already
  // found.
  std::vector<std::pair<std::string, ManifestEntry>> found;
  for (const std::string& rel : bad) {
    if (!ManifestReadable(manifest_->LoadBelow(std::string(DirName(rel))))) {
      stats.fatal = std::string(manifest_unreadable_.message());
      return;
    }
    const ManifestEntry* entry = manifest_->Find(rel);
    if (entry != nullptr) {
      found.emplace_back(rel, *entry);
    } else {
      LOG(ERROR) << "could not repair " << rel << " (is it still at the source?)";
    }
  }
  std::vector<RecordedFile> again;
  for (const auto& [rel, entry] : found) again.push_back({&rel, &entry});
  VerifyStats recheck;
  verifier.Check(again, recheck, [] { return false; }, [&](size_t i, const std::string& problem) {
    if (problem.empty()) {
      ++stats.repaired;
      LOG(INFO) << "repaired " << *again[i].rel;
    } else {
      LOG(ERROR) << "could not repair " << *again[i].rel << " (is it still at the source?)";
    }
  });
  manifest_->Release("");
}

}  // namespace snaphaven
