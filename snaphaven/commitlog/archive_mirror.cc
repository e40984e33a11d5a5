#include "snaphaven/commitlog/archive_mirror.h"

#include <glog/logging.h>

#include <algorithm>
#include <tuple>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "snaphaven/storage/checksum.h"
#include "snaphaven/commitlog/segment.h"
#include "snaphaven/cassandra/sstable_digest.h"

namespace snaphaven::commitlog {
namespace {

// Cassandra keeps every offset in a segment in an int, and refuses a
// commitlog_segment_size of 2048 MiB or more (config/DatabaseDescriptor.java,
// applySimpleConfig, since CASSANDRA-13622):
// a larger file is not a segment, and is not read into memory to tell.
constexpr int64_t kMaxSegmentBytes = (int64_t{1} << 31) - 1;

// Mirrored segments are committed (and, in move mode, removed from the
// archive) this many at a time, so that a long first pass frees the
// commitlog disk as it goes and a crash costs little.
constexpr int64_t kSegmentsPerCommit = 32;

ManifestEntry EntryFor(const FileStat& stat, const CopyResult& copy) {
  ManifestEntry entry = EntryForSource(stat);
  entry.has_crc32 = copy.has_crc32;
  entry.crc32 = copy.crc32;
  return entry;
}

bool SameSource(const FileStat& a, const FileStat& b) { return IdentityOf(a) == IdentityOf(b); }

}  // namespace

std::string MirroredPath(absl::string_view name) {
  return absl::StrCat(kCommitlogArchiveDirName, "/", name);
}

std::string QuarantinedPath(absl::string_view name) {
  return absl::StrCat(kCommitlogArchiveDirName, "/", kQuarantineDirName, "/", name);
}

ArchiveDecision DecideArchiveFile(absl::string_view name, const FileStat& stat,
                                  const ManifestEntry* mirrored, absl::Time now,
                                  absl::Duration settle_time, int64_t mtime_granularity_ns) {
  const FileKind kind = ParseSegmentName(name).kind;
  if (kind == FileKind::kLegacySegment) return {ArchiveStep::kLegacy};
  if (kind != FileKind::kSegment) return {ArchiveStep::kIgnore};
  if (stat.type != FileType::kRegular) return {ArchiveStep::kNotRegular};
  if (now - absl::FromUnixNanos(stat.mtime_ns) < settle_time) return {ArchiveStep::kSettling};
  if (mirrored == nullptr) return {ArchiveStep::kCopy};
  if (IsCurrentCopy(mirrored, stat, mtime_granularity_ns)) return {ArchiveStep::kUnchanged};
  return {ArchiveStep::kCopy, /*rewritten=*/true};
}

// One pass's state.
struct ArchiveMirror::Pass {
  const Manifest& manifest;
  const ArchiveHooks& hooks;
  CommitlogStats& stats;
  ArchivePassResult& result;
  std::vector<Entry> ready;  // mirrored, verified: removable in move mode once committed
  absl::flat_hash_set<std::string> removed;  // from the archive, this pass
  int64_t placed_since_commit = 0;
  bool stopping = false;
};

ArchiveMirror::ArchiveMirror(FileSystem& fs, Copier& copier, ArchiveMirrorOptions options)
    : fs_(fs), copier_(copier), options_(std::move(options)) {}

ArchivePassResult ArchiveMirror::Run(const Manifest& manifest, const ArchiveHooks& hooks,
                                     CommitlogStats& stats) {
  ArchivePassResult result;
  stats.enabled = true;
  std::vector<Entry> entries;
  if (ListArchive(entries, result)) {
    Pass pass{manifest, hooks, stats, result};
    for (const Entry& entry : entries) {
      if (pass.stopping || hooks.stop_requested()) break;
      HandleEntry(entry, pass);
      if (pass.placed_since_commit >= kSegmentsPerCommit) RemoveMirrored(pass);
    }
    RemoveMirrored(pass);
    for (const Entry& entry : entries) {
      if (ParseSegmentName(entry.name).kind != FileKind::kSegment ||
          entry.stat.type != FileType::kRegular || pass.removed.contains(entry.name)) {
        continue;
      }
      ++stats.segments_waiting;
      stats.bytes_waiting += entry.stat.size;
    }
  }
  CountMirrored(manifest, stats);
  return result;
}

bool ArchiveMirror::ListArchive(std::vector<Entry>& entries, ArchivePassResult& result) {
  absl::StatusOr<std::vector<FileSystem::DirEntry>> listed =
      fs_.ListDirWithStats(options_.archive_dir);
  if (!listed.ok()) {
    LOG(ERROR) << "commitlog archive: cannot list " << options_.archive_dir << ": "
               << listed.status().message();
    ++result.failed;
    return false;
  }
  for (FileSystem::DirEntry& listed_entry : *listed) {
    if (listed_entry.stat.ok()) {
      entries.push_back(Entry{std::move(listed_entry.name), *listed_entry.stat});
    } else if (!IsVanished(listed_entry.stat.status())) {
      LOG(ERROR) << "commitlog archive: " << listed_entry.stat.status().message();
      ++result.failed;
    }
  }
  // Oldest first: move mode frees the oldest, and a pass cut short has
  // mirrored a prefix of the history.
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return std::tie(a.stat.mtime_ns, a.name) < std::tie(b.stat.mtime_ns, b.name);
  });
  return true;
}

void ArchiveMirror::HandleEntry(const Entry& entry, Pass& pass) {
  const std::string source = JoinPath(options_.archive_dir, entry.name);
  const ArchiveDecision decision =
      DecideArchiveFile(entry.name, entry.stat, pass.manifest.Find(MirroredPath(entry.name)),
                        pass.hooks.now, options_.settle_time, pass.hooks.mtime_granularity_ns);
  switch (decision.step) {
    case ArchiveStep::kIgnore:
      VLOG(1) << "commitlog archive: ignoring " << source
              << (ParseSegmentName(entry.name).kind == FileKind::kCdcIndex
                      ? " (a CDC index, not a segment)"
                      : " (not a commitlog segment)");
      return;
    case ArchiveStep::kLegacy:
      if (legacy_reported_.insert(entry.name).second) {
        LOG(WARNING) << "commitlog archive: " << source
                     << " is a segment of Cassandra before 1.2.5, which no Cassandra since 2.0 "
                        "replays; not mirrored";
      }
      return;
    case ArchiveStep::kNotRegular:
      LOG(WARNING) << "commitlog archive: " << source
                   << " is not a regular file (a symlink, a directory or a device): not "
                      "followed, not mirrored";
      return;
    case ArchiveStep::kSettling:
      VLOG(2) << "commitlog archive: " << source
              << " changed within --settle_time (a copy may still be writing it); next cycle";
      return;
    case ArchiveStep::kUnchanged:
      VLOG(2) << "commitlog archive: " << source << " is mirrored already";
      pass.ready.push_back(entry);
      return;
    case ArchiveStep::kCopy:
      break;
  }
  if (options_.dry_run) {
    // Counted as a real cycle would, if it verifies.
    LOG(INFO) << "plan: verify and copy commitlog segment " << source << " ("
              << HumanBytes(entry.stat.size) << ")" << (decision.rewritten ? ", rewritten" : "");
    ++pass.stats.segments_copied;
    pass.stats.bytes_copied += entry.stat.size;
    pass.ready.push_back(entry);
    return;
  }
  VerifyAndCopy(entry, decision.rewritten, pass);
}

void ArchiveMirror::VerifyAndCopy(const Entry& entry, bool rewritten, Pass& pass) {
  const std::string source = JoinPath(options_.archive_dir, entry.name);
  if (entry.stat.size > kMaxSegmentBytes) {
    Quarantine(entry,
               absl::StrCat(entry.stat.size, " bytes: larger than any segment Cassandra writes "
                                             "(its offsets are ints)"),
               rewritten, pass);
    return;
  }
  // Read whole (a segment is commitlog_segment_size, 32 MiB by default),
  // verified, then copied: the copy's CRC-32 must be that of these bytes.
  absl::StatusOr<std::string> bytes = fs_.ReadFile(source);
  if (!bytes.ok() && IsVanished(bytes.status())) {
    ++pass.result.skipped;
    VLOG(2) << "commitlog archive: " << source << " vanished";
    return;
  }
  if (!bytes.ok()) {
    ++pass.result.failed;
    LOG(ERROR) << "commitlog archive: " << bytes.status().message()
               << " (the segment is read again next cycle)";
    return;
  }
  if (static_cast<int64_t>(bytes->size()) != entry.stat.size) {
    ++pass.result.skipped;
    LOG(WARNING) << "commitlog archive: " << source << " changed while it was read; next cycle";
    return;
  }
  const SegmentVerification verified = VerifySegment(entry.name, *bytes);
  if (!verified.ok) {
    Quarantine(entry, verified.failure, rewritten, pass);
    return;
  }
  if (verified.encrypted_checked_to_markers_only) {
    VLOG(1) << "commitlog archive: " << source << " is encrypted ("
            << verified.descriptor.cipher
            << "): checked to its sync markers and encrypted blocks only; its mutations "
               "need the key";
  }
  if (rewritten) {
    LOG(WARNING) << "commitlog archive: " << source
                 << " was rewritten in place since it was copied (its size or mtime "
                    "changed); copying it again";
  }
  CopyVerified(entry, Crc32(0, *bytes), Describe(verified), pass);
}

void ArchiveMirror::CopyVerified(const Entry& entry, uint32_t crc, const std::string& summary,
                                 Pass& pass) {
  const std::string source = JoinPath(options_.archive_dir, entry.name);
  const std::string rel = MirroredPath(entry.name);
  ExpectedDigest verified_bytes;
  verified_bytes.algorithm = DigestAlgorithm::kCrc32;
  verified_bytes.value = crc;
  verified_bytes.digest_file = "the segment as verified";
  absl::StatusOr<CopyResult> copy = copier_.Copy(source, entry.stat, rel, &verified_bytes);
  if (!copy.ok()) {
    CopyFailed(rel, copy.status(), /*count=*/true, pass);
    return;
  }
  switch (copy->outcome) {
    case CopyOutcome::kDone:
      pass.hooks.record(rel, EntryFor(entry.stat, *copy));
      ++pass.stats.segments_copied;
      pass.stats.bytes_copied += entry.stat.size;
      ++pass.placed_since_commit;
      pass.ready.push_back(entry);
      VLOG(1) << "copied commitlog segment " << source << " (" << entry.stat.size
              << " bytes), verified: " << summary;
      return;
    case CopyOutcome::kCorrupt:
      // Not the bytes verified: the source changed in between. The copier
      // kept them in its quarantine; they are no evidence of anything.
      (void)fs_.Remove(JoinPath(options_.destination, copy->quarantined));
      ABSL_FALLTHROUGH_INTENDED;
    case CopyOutcome::kChanged:
      ++pass.result.skipped;
      LOG(WARNING) << "commitlog archive: " << source
                   << " changed during its verification or copy; next cycle";
      return;
    case CopyOutcome::kVanished:
    case CopyOutcome::kStaged:  // never: nothing is staged
      ++pass.result.skipped;
      VLOG(2) << "commitlog archive: " << source << " vanished during its copy";
      return;
  }
}

void ArchiveMirror::Quarantine(const Entry& entry, const std::string& failure, bool rewritten,
                               Pass& pass) {
  const std::string source = JoinPath(options_.archive_dir, entry.name);
  const std::string rel = QuarantinedPath(entry.name);
  ++pass.stats.segments_failed;
  ++pass.result.failed;
  LOG(ERROR) << "commitlog segment " << source << " failed verification: " << failure
             << "; left in the archive, copied to " << JoinPath(options_.destination, rel)
             << (rewritten ? "; the copy made before it was rewritten is kept" : "");
  if (IsCurrentCopy(pass.manifest.Find(rel), entry.stat, pass.hooks.mtime_granularity_ns)) {
    return;  // quarantined by an earlier cycle
  }
  absl::StatusOr<CopyResult> copy = copier_.Copy(source, entry.stat, rel);
  if (!copy.ok()) {
    CopyFailed(rel, copy.status(), /*count=*/false, pass);
  } else if (copy->outcome == CopyOutcome::kDone) {
    pass.hooks.record(rel, EntryFor(entry.stat, *copy));
    ++pass.placed_since_commit;
  } else {
    VLOG(1) << "commitlog archive: " << source
            << " vanished or changed during its copy to quarantine; next cycle";
  }
}

void ArchiveMirror::CopyFailed(const std::string& rel, const absl::Status& error, bool count,
                               Pass& pass) {
  if (IsOutOfSpace(error)) {
    LOG(ERROR) << "destination " << options_.destination << " is out of space while copying "
               << rel << ": " << error.message();
    pass.result.out_of_space = true;
    pass.stopping = true;
    return;
  }
  if (count) ++pass.result.failed;
  LOG(ERROR) << "failed to copy " << rel << ": " << error.message()
             << (IsTransient(error) ? " (transient; retried, will retry next cycle)" : "");
}

void ArchiveMirror::RemoveMirrored(Pass& pass) {
  if (options_.dry_run) {
    for (const Entry& entry : options_.move ? pass.ready : std::vector<Entry>()) {
      LOG(INFO) << "plan: remove " << JoinPath(options_.archive_dir, entry.name)
                << " from the commitlog archive once mirrored";
      pass.removed.insert(entry.name);
      ++pass.stats.segments_removed;
    }
    pass.ready.clear();
    return;
  }
  // The copies must be durable and recorded in the committed manifest
  // before a source goes (a commit with nothing new costs nothing).
  const bool need_commit = pass.placed_since_commit > 0 || (options_.move && !pass.ready.empty());
  const bool committed = !need_commit || pass.hooks.commit();
  pass.placed_since_commit = 0;
  if (!committed || !options_.move) {
    pass.ready.clear();
    return;
  }
  for (const Entry& entry : pass.ready) {
    if (RemoveFromArchive(entry, pass.manifest, pass.hooks.mtime_granularity_ns)) {
      pass.removed.insert(entry.name);
      ++pass.stats.segments_removed;
    }
  }
  pass.ready.clear();
}

bool ArchiveMirror::RemoveFromArchive(const Entry& entry, const Manifest& manifest,
                                      int64_t mtime_granularity_ns) {
  const std::string source = JoinPath(options_.archive_dir, entry.name);
  const std::string rel = MirroredPath(entry.name);
  const std::string copy = JoinPath(options_.destination, rel);
  // Belt and braces: only a segment, only one whose copy is recorded.
  if (ParseSegmentName(entry.name).kind != FileKind::kSegment) return false;
  absl::StatusOr<FileStat> now = fs_.Stat(source);
  absl::StatusOr<FileStat> copied = fs_.Stat(copy);
  std::string keep;  // why not
  if (!now.ok()) {
    if (IsVanished(now.status())) return false;
    keep = std::string(now.status().message());
  } else if (!SameSource(*now, entry.stat)) {
    keep = "it changed since its copy";
  } else if (!IsCurrentCopy(manifest.Find(rel), *now, mtime_granularity_ns)) {
    keep = "its copy is not recorded";
  } else if (!copied.ok() || copied->type != FileType::kRegular || copied->size != now->size ||
             !SameMtime(copied->mtime_ns, now->mtime_ns, mtime_granularity_ns)) {
    keep = absl::StrCat("its copy ", copy, " is missing or differs");
  } else if (copied->dev == now->dev && copied->ino == now->ino) {
    keep = absl::StrCat("its copy ", copy, " is the same file (bind mount?)");
  }
  absl::Status removed = keep.empty() ? fs_.Remove(source) : absl::OkStatus();
  if (!removed.ok() && !IsVanished(removed)) keep = std::string(removed.message());
  if (!keep.empty()) {
    LOG(WARNING) << "commitlog archive: keeping " << source << ": " << keep;
    return false;
  }
  VLOG(1) << "removed " << source << " from the commitlog archive (mirrored to " << copy << ")";
  return removed.ok();
}

void ArchiveMirror::CountMirrored(const Manifest& manifest, CommitlogStats& stats) {
  // (The cycle reads the archive's section in before the mirror runs.)
  const std::string prefix = absl::StrCat(kCommitlogArchiveDirName, "/");
  const Manifest::Map& entries = manifest.loaded_entries();
  for (auto it = entries.lower_bound(prefix);
       it != entries.end() && absl::StartsWith(it->first, prefix); ++it) {
    const absl::string_view name = absl::string_view(it->first).substr(prefix.size());
    if (ParseSegmentName(name).kind != FileKind::kSegment) continue;  // quarantine/...
    ++stats.segments_mirrored;
    stats.newest_mirrored_mtime_ns = std::max(stats.newest_mirrored_mtime_ns, it->second.mtime_ns);
  }
}

}  // namespace snaphaven::commitlog
