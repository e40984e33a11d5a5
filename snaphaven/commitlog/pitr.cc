#include "snaphaven/commitlog/pitr.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "re2/re2.h"
#include "snaphaven/cassandra/cassandra_metadata.h"
#include "snaphaven/storage/checksum.h"
#include "snaphaven/commitlog/segment.h"
#include "snaphaven/storage/copier.h"

namespace snaphaven::commitlog {
namespace {

// Cassandra 4.0 writes commitlog version 7 (CommitLogDescriptor.VERSION_40);
// only 4.0 and later releases ever read microseconds in
// restore_point_in_time (CASSANDRA-19448: 4.0.14, 4.1.7, 5.0.1; the earlier
// 4.0/4.1/5.0.0 releases ignore what follows the seconds).
constexpr int kFirstVersionWithMicroseconds = 7;

absl::Time FromNanos(int64_t ns) { return absl::FromUnixNanos(ns); }

// The snapshot time of one table's copy of the tag, or nullopt when the
// directory holds no file.
absl::optional<SnapshotTime> TableSnapshotTime(FileSystem& fs, const std::string& tag_dir) {
  const std::string manifest = JoinPath(tag_dir, "manifest.json");
  absl::StatusOr<FileStat> st = fs.Stat(manifest);
  if (st.ok()) {
    absl::StatusOr<std::string> text = fs.ReadFile(manifest);
    absl::StatusOr<SnapshotManifest> parsed =
        text.ok() ? ParseSnapshotManifest(*text) : absl::StatusOr<SnapshotManifest>(text.status());
    if (parsed.ok() && parsed->created_at.has_value()) {
      return SnapshotTime{*parsed->created_at, absl::StrCat("created_at in ", manifest)};
    }
    return SnapshotTime{FromNanos(st->mtime_ns), absl::StrCat("mtime of ", manifest)};
  }
  // 2.0 wrote no manifest.json: the flush `nodetool snapshot` made just
  // before is the newest file.
  absl::StatusOr<std::vector<std::string>> names = fs.ListDir(tag_dir);
  if (!names.ok()) return absl::nullopt;
  absl::optional<SnapshotTime> newest;
  for (const std::string& name : *names) {
    const std::string path = JoinPath(tag_dir, name);
    absl::StatusOr<FileStat> file = fs.Stat(path);
    if (!file.ok() || file->type != FileType::kRegular) continue;
    if (!newest.has_value() || FromNanos(file->mtime_ns) > newest->time) {
      newest = SnapshotTime{FromNanos(file->mtime_ns), absl::StrCat("mtime of ", path)};
    }
  }
  return newest;
}

std::vector<std::string> DirectoriesIn(FileSystem& fs, const std::string& dir) {
  std::vector<std::string> out;
  absl::StatusOr<std::vector<std::string>> names = fs.ListDir(dir);
  if (!names.ok()) return out;
  for (const std::string& name : *names) {
    if (absl::StartsWith(name, ".")) continue;
    absl::StatusOr<FileStat> st = fs.Stat(JoinPath(dir, name));
    if (st.ok() && st->type == FileType::kDirectory) out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// A staged segment already whole at `target` (same size, mtime, CRC-32)?
absl::StatusOr<bool> AlreadyStaged(FileSystem& fs, const std::string& target,
                                   const ArchivedSegment& segment, uint32_t crc) {
  absl::StatusOr<FileStat> st = fs.Stat(target);
  if (!st.ok()) {
    if (IsVanished(st.status())) return false;
    return st.status();
  }
  absl::StatusOr<std::string> bytes = fs.ReadFile(target);
  if (!bytes.ok()) return bytes.status();
  if (st->type == FileType::kRegular && st->size == segment.stat.size &&
      st->mtime_ns == segment.stat.mtime_ns && Crc32(0, *bytes) == crc) {
    return true;
  }
  return absl::AlreadyExistsError(absl::StrCat(
      target, " is already there and is not the archived segment ", segment.path,
      "; remove it, or restore somewhere else"));
}

// Copies one verified segment (whose bytes gave `crc`) into place.
absl::Status CopySegment(FileSystem& fs, Copier& copier, const ArchivedSegment& segment,
                         const std::string& restore_root, uint32_t crc) {
  ExpectedDigest digest;
  digest.algorithm = DigestAlgorithm::kCrc32;
  digest.value = crc;
  digest.digest_file = "its verified bytes";
  const std::string rel = JoinPath(kRestoreDirName, segment.name);
  absl::StatusOr<CopyResult> copied = copier.Copy(segment.path, segment.stat, rel, &digest);
  if (!copied.ok()) {
    return absl::Status(copied.status().code(), absl::StrCat("staging ", segment.path, ": ",
                                                             copied.status().message()));
  }
  if (copied->outcome == CopyOutcome::kDone) return absl::OkStatus();
  if (copied->outcome == CopyOutcome::kCorrupt) {
    (void)fs.Remove(JoinPath(restore_root, copied->quarantined));
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "archived segment ", segment.path,
      " changed or vanished while it was staged (hold the destination's lock); nothing of it "
      "was staged"));
}

}  // namespace

absl::StatusOr<absl::Time> ParseRestoreUntil(absl::string_view text) {
  static const LazyRE2 kForm = {R"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,6})?)"};
  absl::Time time;
  std::string error;
  if (!RE2::FullMatch(re2::StringPiece(text.data(), text.size()), *kForm) ||
      !absl::ParseTime("%Y-%m-%d %H:%M:%E*S", std::string(text), absl::UTCTimeZone(), &time,
                       &error)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid --restore_until '", text,
        "': give a UTC time as \"YYYY-MM-DD HH:MM:SS\" or \"YYYY-MM-DD HH:MM:SS.ffffff\""));
  }
  return time;
}

std::string FormatUtc(absl::Time time) {
  const bool whole = absl::ToUnixMicros(time) % 1000000 == 0;
  return absl::FormatTime(whole ? "%Y-%m-%d %H:%M:%S UTC" : "%Y-%m-%d %H:%M:%E6S UTC", time,
                          absl::UTCTimeZone());
}

absl::StatusOr<std::vector<ArchivedSegment>> ListArchivedSegments(
    FileSystem& fs, const std::string& destination) {
  const std::string dir = JoinPath(destination, kCommitlogArchiveDirName);
  std::vector<ArchivedSegment> out;
  absl::StatusOr<std::vector<std::string>> names = fs.ListDir(dir);
  if (!names.ok()) {
    if (IsVanished(names.status())) return out;
    return names.status();
  }
  for (const std::string& name : *names) {
    SegmentName parsed = ParseSegmentName(name);
    if (parsed.kind != FileKind::kSegment) continue;
    const std::string path = JoinPath(dir, name);
    absl::StatusOr<FileStat> st = fs.Stat(path);
    if (!st.ok() || st->type != FileType::kRegular) continue;
    out.push_back({name, path, parsed.version, parsed.id, *st, FromNanos(st->mtime_ns)});
  }
  std::sort(out.begin(), out.end(), [](const ArchivedSegment& a, const ArchivedSegment& b) {
    return a.id < b.id;
  });
  return out;
}

absl::StatusOr<SnapshotTime> FindSnapshotTime(FileSystem& fs, const std::string& destination,
                                              const std::string& tag,
                                              const std::vector<std::string>& keyspaces) {
  std::vector<std::string> spaces = keyspaces.empty() ? DirectoriesIn(fs, destination) : keyspaces;
  absl::optional<SnapshotTime> earliest;
  for (const std::string& keyspace : spaces) {
    const std::string keyspace_dir = JoinPath(destination, keyspace);
    for (const std::string& table : DirectoriesIn(fs, keyspace_dir)) {
      const std::string tag_dir = JoinPath(JoinPath(JoinPath(keyspace_dir, table), "snapshots"), tag);
      absl::optional<SnapshotTime> time = TableSnapshotTime(fs, tag_dir);
      if (time.has_value() && (!earliest.has_value() || time->time < earliest->time)) {
        earliest = std::move(time);
      }
    }
  }
  if (!earliest.has_value()) {
    return absl::NotFoundError(
        absl::StrCat("no copy of snapshot '", tag, "' at ", destination));
  }
  return *earliest;
}

std::vector<ArchivedSegment> SegmentsSince(const std::vector<ArchivedSegment>& all,
                                           absl::Time snapshot) {
  std::vector<ArchivedSegment> out;
  for (const ArchivedSegment& segment : all) {
    if (segment.mtime >= snapshot) out.push_back(segment);
  }
  return out;
}

absl::Status CheckRestorePoint(absl::Time until, const SnapshotTime& snapshot,
                               const std::vector<ArchivedSegment>& all, const std::string& tag) {
  const std::string taken = absl::StrCat("snapshot '", tag, "' was taken at ",
                                         FormatUtc(snapshot.time), " (", snapshot.source, ")");
  if (all.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot restore to a point in time: no archived commitlog segments at the destination (",
        kCommitlogArchiveDirName, "/ is empty or missing); ", taken));
  }
  absl::Time newest = all.front().mtime;
  for (const ArchivedSegment& segment : all) newest = std::max(newest, segment.mtime);
  if (until >= snapshot.time && until <= newest) return absl::OkStatus();
  if (newest < snapshot.time) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--restore_until ", FormatUtc(until), " cannot be reached: ", taken,
        " and the newest archived segment was last written at ", FormatUtc(newest),
        ", before it; only the snapshot itself can be restored"));
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "--restore_until ", FormatUtc(until), " is outside what can be restored: from ",
      FormatUtc(snapshot.time), " (snapshot '", tag, "') to ", FormatUtc(newest),
      " (the newest archived segment's last write)"));
}

std::string FormatRestorePointInTime(absl::Time until, int segment_version) {
  const bool fraction = absl::ToUnixMicros(until) % 1000000 != 0;
  const bool micros = fraction && segment_version >= kFirstVersionWithMicroseconds;
  // Microseconds are all Cassandra keeps (client timestamps); anything
  // finer is dropped, never rounded up.
  const absl::Time cut = absl::FromUnixMicros(absl::ToUnixMicros(until));
  return absl::FormatTime(micros ? "%Y:%m:%d %H:%M:%E6S" : "%Y:%m:%d %H:%M:%S", cut,
                          absl::UTCTimeZone());
}

std::string SegmentConflicts(FileSystem& fs, const std::string& restore_root,
                             const std::vector<ArchivedSegment>& segments) {
  for (const ArchivedSegment& segment : segments) {
    const std::string target = JoinPath(JoinPath(restore_root, kRestoreDirName), segment.name);
    absl::StatusOr<FileStat> st = fs.Stat(target);
    if (!st.ok()) continue;
    if (st->type != FileType::kRegular || st->size != segment.stat.size ||
        st->mtime_ns != segment.stat.mtime_ns) {
      return absl::StrCat(target, " is already there and is not the archived segment ",
                          segment.path, ": nothing restored (remove it, or restore somewhere else)");
    }
  }
  return "";
}

absl::StatusOr<StagedSegments> StageSegments(FileSystem& fs,
                                             const std::vector<ArchivedSegment>& segments,
                                             const std::string& restore_root,
                                             const std::string& temp_dir) {
  StagedSegments staged;
  staged.dir = JoinPath(restore_root, kRestoreDirName);
  absl::Status status = fs.MakeDir(staged.dir);
  if (!status.ok() && ErrnoOf(status) != EEXIST) return status;
  status = fs.SyncDir(restore_root);
  if (!status.ok()) return status;
  status = fs.MakeDir(temp_dir);
  if (!status.ok() && ErrnoOf(status) != EEXIST) return status;
  Copier copier(fs, restore_root, temp_dir, /*preserve_owner=*/true, /*checksum=*/true);
  absl::StatusOr<int> cleaned = copier.CleanTempDir();
  if (!cleaned.ok()) return cleaned.status();
  for (const ArchivedSegment& segment : segments) {
    absl::StatusOr<std::string> bytes = fs.ReadFile(segment.path);
    if (!bytes.ok()) return bytes.status();
    const SegmentVerification verified = VerifySegment(segment.name, *bytes);
    if (!verified.ok) {
      return absl::FailedPreconditionError(absl::StrCat(
          "archived segment ", segment.path, " fails verification: ", verified.failure,
          "; it and the segments after it were not staged"));
    }
    if (verified.encrypted_checked_to_markers_only) {
      staged.notes.push_back(absl::StrCat(segment.name,
                                          " is encrypted: checked up to its sync markers only"));
    }
    const uint32_t crc = Crc32(0, *bytes);
    const std::string target = JoinPath(staged.dir, segment.name);
    absl::StatusOr<bool> kept = AlreadyStaged(fs, target, segment, crc);
    if (!kept.ok()) return kept.status();
    if (!*kept) {
      status = CopySegment(fs, copier, segment, restore_root, crc);
      if (!status.ok()) return status;
    }
    ++(*kept ? staged.kept : staged.copied);
    staged.bytes += segment.stat.size;
    staged.names.push_back(segment.name);
    staged.max_version = std::max(staged.max_version, segment.version);
  }
  status = copier.SyncPendingDirs();
  if (status.ok()) status = fs.RemoveDir(temp_dir);
  if (status.ok()) status = fs.SyncDir(restore_root);
  if (!status.ok()) return status;
  return staged;
}

}  // namespace snaphaven::commitlog
