#include "snaphaven/cycle/mover.h"

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "snaphaven/cassandra/cassandra_path.h"

namespace snaphaven {

MoveOutcome DeleteMovedSources(FileSystem& fs, const MoveUnit& unit, const ScanResult& scan,
                               const std::vector<std::string>& data_roots,
                               const std::string& destination, int64_t mtime_granularity_ns) {
  MoveOutcome outcome;
  // First check every file, then delete: a snapshot is never left half
  // deleted because one of its copies turned out wrong.
  std::vector<std::string> to_delete;
  for (size_t i : unit.files) {
    const SourceFile& file = scan.files[i];
    // Belt and braces: never delete outside snapshots/<tag>/ or backups/.
    PathKind kind = ClassifyPath(file.relative_path).kind;
    if (kind != PathKind::kSnapshot && kind != PathKind::kBackup) {
      outcome.problems.push_back(absl::StrCat("refusing to delete ", file.relative_path,
                                              ": not inside snapshots/ or backups/"));
      return outcome;
    }
    const std::string source = JoinPath(data_roots[file.root], file.relative_path);
    absl::StatusOr<FileStat> now = fs.Stat(source);
    if (!now.ok()) {
      if (IsVanished(now.status())) continue;  // already gone
      outcome.problems.push_back(std::string(now.status().message()));
      return outcome;
    }
    if (now->ino != file.stat.ino || now->size != file.stat.size ||
        now->mtime_ns != file.stat.mtime_ns) {
      outcome.problems.push_back(absl::StrCat("keeping ", unit.name, ": ", source,
                                              " changed since the scan"));
      return outcome;
    }
    const std::string copy = JoinPath(destination, file.relative_path);
    absl::StatusOr<FileStat> copied = fs.Stat(copy);
    if (!copied.ok() || copied->type != FileType::kRegular || copied->size != now->size ||
        !SameMtime(copied->mtime_ns, now->mtime_ns, mtime_granularity_ns)) {
      outcome.problems.push_back(absl::StrCat("keeping ", unit.name, ": the copy ", copy,
                                              " is missing or differs from ", source));
      return outcome;
    }
    if (copied->dev == now->dev && copied->ino == now->ino) {
      outcome.problems.push_back(absl::StrCat("refusing to delete ", source, ": its copy ", copy,
                                              " is the same file (bind mount?)"));
      return outcome;
    }
    to_delete.push_back(source);
  }
  for (const std::string& source : to_delete) {
    absl::Status removed = fs.Remove(source);
    if (!removed.ok() && !IsVanished(removed)) {
      outcome.problems.push_back(std::string(removed.message()));
      return outcome;
    }
    if (removed.ok()) ++outcome.deleted;
  }
  for (const auto& [root, dir] : unit.dirs) {
    // Not empty (a file appeared, a symlink was left) is fine: keep it.
    (void)fs.RemoveDir(JoinPath(data_roots[root], dir));
  }
  outcome.completed = true;
  return outcome;
}

}  // namespace snaphaven
