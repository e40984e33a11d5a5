#include "snaphaven/cycle/scanner.h"

#include <algorithm>
#include <iterator>

#include "absl/container/btree_map.h"
#include "absl/strings/str_cat.h"
#include "absl/types/optional.h"
#include "snaphaven/storage/parallel_for.h"

namespace snaphaven {
namespace {

class SnapshotScanner {
 public:
  SnapshotScanner(FileSystem& fs, const ScanOptions& options, ScanResult& result)
      : fs_(fs), options_(options), result_(result) {}

  // Lists a directory's names sorted; a vanished directory lists as empty,
  // an unreadable one is recorded as an error.
  std::vector<std::string> SortedNames(const std::string& dir) {
    absl::StatusOr<std::vector<std::string>> names = fs_.ListDir(dir);
    if (!names.ok()) {
      if (!IsVanished(names.status())) result_.errors.push_back(names.status());
      return {};
    }
    std::sort(names->begin(), names->end());
    return *std::move(names);
  }

  // A directory's names with their lstat, sorted by name, each stat taken
  // relative to the open directory; names that vanished are left out, other
  // failures recorded as errors.
  std::vector<FileSystem::DirEntry> SortedEntries(const std::string& dir) {
    absl::StatusOr<std::vector<FileSystem::DirEntry>> entries = fs_.ListDirWithStats(dir);
    if (!entries.ok()) {
      if (!IsVanished(entries.status())) result_.errors.push_back(entries.status());
      return {};
    }
    std::vector<FileSystem::DirEntry> kept;
    kept.reserve(entries->size());
    for (FileSystem::DirEntry& entry : *entries) {
      if (entry.stat.ok()) {
        kept.push_back(std::move(entry));
      } else if (!IsVanished(entry.stat.status())) {
        result_.errors.push_back(entry.stat.status());
      }
    }
    std::sort(kept.begin(), kept.end(),
              [](const FileSystem::DirEntry& a, const FileSystem::DirEntry& b) {
                return a.name < b.name;
              });
    return kept;
  }

  // lstat that reports symlinks and special files as warnings and returns
  // nullopt for anything that is not of `wanted` type.
  absl::optional<FileStat> StatAs(const std::string& path, FileType wanted) {
    absl::StatusOr<FileStat> st = fs_.Stat(path);
    if (!st.ok()) {
      if (!IsVanished(st.status())) result_.errors.push_back(st.status());
      return absl::nullopt;
    }
    if (st->type == FileType::kSymlink) {
      result_.warnings.push_back(absl::StrCat("not following symlink ", path));
      return absl::nullopt;
    }
    if (st->type != wanted) {
      if (st->type == FileType::kOther) {
        result_.warnings.push_back(
            absl::StrCat("skipping special file (not a regular file) ", path));
      }
      return absl::nullopt;
    }
    return *st;
  }

  // Every regular file below snapshot directory `dir` (relative path `rel`,
  // lstat `st`), recursively, skipping directories the cache says are
  // unchanged.
  void WalkSnapshotDir(int root, const std::string& dir, const std::string& rel,
                       const FileStat& st) {
    if (options_.unchanged_dirs != nullptr) {
      const CachedDir* cached = options_.unchanged_dirs->Find(dir);
      if (cached != nullptr && cached->dev == st.dev && cached->ino == st.ino &&
          cached->mtime_ns == st.mtime_ns) {
        result_.skipped_dirs.push_back(dir);
        result_.skipped_files += cached->files;
        result_.skipped_bytes += cached->bytes;
        if (options_.record_decisions) {
          result_.decisions.push_back(absl::StrCat("unchanged directory ", rel, " (", cached->files,
                                                   " files, not listed again)"));
        }
        for (const std::string& sub : cached->subdirs) {
          std::string path = JoinPath(dir, sub);
          if (absl::optional<FileStat> sub_st = StatAs(path, FileType::kDirectory)) {
            result_.snapshot_dirs.emplace_back(root, JoinPath(rel, sub));
            WalkSnapshotDir(root, path, JoinPath(rel, sub), *sub_st);
          }
        }
        return;
      }
    }
    ScanResult::WalkedDir walked{root, rel, st, {}};
    for (const FileSystem::DirEntry& entry : SortedEntries(dir)) {
      const std::string& name = entry.name;
      std::string path = JoinPath(dir, name);
      std::string child_rel = JoinPath(rel, name);
      const absl::StatusOr<FileStat>& child = entry.stat;
      switch (child->type) {
        case FileType::kRegular:
          result_.files.push_back(SourceFile{child_rel, root, *child, PathKind::kSnapshot});
          break;
        case FileType::kDirectory:
          walked.subdirs.push_back(name);
          result_.snapshot_dirs.emplace_back(root, child_rel);
          WalkSnapshotDir(root, path, child_rel, *child);
          break;
        case FileType::kSymlink:
          result_.warnings.push_back(absl::StrCat("not following symlink ", path));
          break;
        case FileType::kOther:
          result_.warnings.push_back(
              absl::StrCat("skipping special file (not a regular file) ", path));
          break;
      }
    }
    result_.walked_dirs.push_back(std::move(walked));
  }

  // The regular files of a live table dir or a backups/ dir, and those of
  // its index dirs (".<index>/"), not recursing further: other directories
  // (snapshots/, backups/) are not part of it.
  // `list_dir`: where to list `dir` when `dir` is a followed symlink (the
  // listing cannot go through the link's own name; the paths still do).
  void ScanFlatDir(int root, const std::string& dir, const std::string& rel, PathKind kind,
                   bool index_dir = false, const std::string* list_dir = nullptr) {
    const std::string& listed = list_dir != nullptr ? *list_dir : dir;
    // The directory's own stat first: the cache keeps it with the listing.
    absl::StatusOr<FileStat> dir_stat = fs_.Stat(listed);
    ListingDigest digest;
    for (const FileSystem::DirEntry& entry : SortedEntries(listed)) {
      const std::string& name = entry.name;
      const absl::StatusOr<FileStat>& st = entry.stat;
      digest.Add(name, *st);
      if (st->type == FileType::kRegular) {
        result_.files.push_back(SourceFile{JoinPath(rel, name), root, *st, kind});
      } else if (st->type == FileType::kDirectory && name[0] == '.' && !index_dir) {
        ScanFlatDir(root, JoinPath(dir, name), JoinPath(rel, name), kind, /*index_dir=*/true);
      } else if (st->type == FileType::kSymlink) {
        result_.warnings.push_back(absl::StrCat("not following symlink ", JoinPath(dir, name)));
      }
    }
    if (dir_stat.ok()) {
      result_.listed_dirs.push_back(ScanResult::ListedDir{root, rel, *dir_stat, digest.value()});
    }
  }

  // `list_path`: the resolved target when the table dir is a symlink, else
  // `table_path` itself.
  void ScanTable(int root, const std::string& table_path, const std::string& table_rel,
                 const std::string& list_path) {
    if (options_.include_live) {
      ScanFlatDir(root, table_path, table_rel, PathKind::kLive, /*index_dir=*/false, &list_path);
    }
    std::string backups = JoinPath(table_path, "backups");
    if (options_.include_backups && StatAs(backups, FileType::kDirectory)) {
      ScanFlatDir(root, backups, JoinPath(table_rel, "backups"), PathKind::kBackup);
    }
    std::string snapshots = JoinPath(table_path, "snapshots");
    if (!StatAs(snapshots, FileType::kDirectory)) return;
    for (const std::string& tag : SortedNames(snapshots)) {
      if (options_.tag_filter != nullptr &&
          !RE2::PartialMatch(tag, *options_.tag_filter)) {
        if (options_.record_decisions) {
          result_.decisions.push_back(absl::StrCat(
              "skip ", table_rel, "/snapshots/", tag, ": tag does not match --snapshot_regex"));
        }
        continue;
      }
      std::string tag_path = JoinPath(snapshots, tag);
      absl::optional<FileStat> st = StatAs(tag_path, FileType::kDirectory);
      if (!st.has_value()) continue;
      std::string tag_rel = absl::StrCat(table_rel, "/snapshots/", tag);
      result_.snapshot_dirs.emplace_back(root, tag_rel);
      WalkSnapshotDir(root, tag_path, tag_rel, *st);
    }
  }

 private:
  FileSystem& fs_;
  const ScanOptions& options_;
  ScanResult& result_;
};

// Appends everything `part` found to `result`.
void Merge(ScanResult&& part, ScanResult& result) {
  auto append = [](auto& to, auto& from) {
    to.insert(to.end(), std::make_move_iterator(from.begin()),
              std::make_move_iterator(from.end()));
  };
  append(result.files, part.files);
  append(result.warnings, part.warnings);
  append(result.notes, part.notes);
  append(result.errors, part.errors);
  append(result.decisions, part.decisions);
  append(result.listed_dirs, part.listed_dirs);
  append(result.snapshot_dirs, part.snapshot_dirs);
  append(result.walked_dirs, part.walked_dirs);
  append(result.skipped_dirs, part.skipped_dirs);
  result.skipped_files += part.skipped_files;
  result.skipped_bytes += part.skipped_bytes;
}

// Why following a symlinked keyspace (`keyspace`) or table directory that
// resolves to `real` is refused (FindLinkOverlap), or "" when it may be.
std::string RefusalOf(const std::string& real, const ScanOptions& options,
                      const std::vector<std::string>& real_roots, int own_root, bool keyspace) {
  LinkOverlap overlap = FindLinkOverlap(real, options.destination, real_roots,
                                        static_cast<size_t>(own_root), keyspace);
  switch (overlap.kind) {
    case LinkOverlap::kNone:
      return "";
    case LinkOverlap::kInsideDestination:
      return absl::StrCat("its target is inside the destination ", overlap.where);
    case LinkOverlap::kContainsDestination:
      return absl::StrCat("its target contains the destination ", overlap.where);
    case LinkOverlap::kContainsDataRoot:
      return absl::StrCat("its target contains the data root ", overlap.where,
                          " (the copy would recurse)");
    case LinkOverlap::kInsideOtherDataRoot:
      return absl::StrCat("its target is inside another data root ", overlap.where,
                          " (its files would be listed twice)");
  }
  return "";
}

// Resolves the symlinked keyspace or table directory `link` ("keyspace",
// "table directory": `what`) and checks it may be followed: its real path,
// with a note; nullopt with an error recorded when it may not (nothing when
// the link itself vanished).
absl::optional<std::string> FollowDirectoryLink(FileSystem& fs, const std::string& link,
                                                absl::string_view what,
                                                const ScanOptions& options,
                                                const std::vector<std::string>& real_roots,
                                                int root, ScanResult& result) {
  if (options.destination.empty()) {
    // Nothing to check the target against: it might lead into the
    // destination (and move mode would then delete the copies).
    result.warnings.push_back(absl::StrCat("not following symlink ", link));
    return absl::nullopt;
  }
  absl::StatusOr<std::string> real = ResolveDirectoryLink(fs, link);
  if (!real.ok()) {
    if (!IsVanished(real.status())) {
      result.errors.push_back(absl::FailedPreconditionError(
          absl::StrCat("symlinked ", what, " ", real.status().message(), "; not followed")));
    }
    return absl::nullopt;
  }
  std::string refusal = RefusalOf(*real, options, real_roots, root, what == "keyspace");
  if (!refusal.empty()) {
    result.errors.push_back(absl::FailedPreconditionError(absl::StrCat(
        "symlinked ", what, " ", link, " -> ", *real, ": ", refusal, "; not followed")));
    return absl::nullopt;
  }
  result.notes.push_back(absl::StrCat("following symlinked ", what, " ", link, " -> ", *real));
  return *std::move(real);
}

}  // namespace

absl::StatusOr<TableListing> ListSourceTables(FileSystem& fs, const ScanOptions& options) {
  TableListing listing;
  ScanResult& result = listing.problems;
  SnapshotScanner lister(fs, options, result);
  // The data roots with their symlinks resolved, to compare the targets of
  // symlinked directories with.
  std::vector<std::string> real_roots;
  for (const std::string& root : options.data_roots) {
    absl::StatusOr<std::string> real = fs.RealPath(root);
    real_roots.push_back(real.ok() ? *real : root);
  }
  absl::btree_map<std::string, std::vector<TableDir>> tables;
  for (int root = 0; root < static_cast<int>(options.data_roots.size()); ++root) {
    // An unreadable root aborts the cycle rather than looking empty.
    absl::StatusOr<std::vector<std::string>> top =
        fs.ListDir(options.data_roots[root]);
    if (!top.ok()) return top.status();
    for (const std::string& keyspace : options.keyspaces) {
      std::string keyspace_path = JoinPath(options.data_roots[root], keyspace);
      absl::StatusOr<FileStat> st = fs.Stat(keyspace_path);
      if (!st.ok()) {
        // A keyspace need only exist in one root; in a single-root setup a
        // vanished keyspace (dropped) is worth an error.
        if (!IsVanished(st.status()) || options.data_roots.size() == 1) {
          result.errors.push_back(st.status());
        }
        continue;
      }
      // A symlinked keyspace is listed through its target, its paths kept
      // under the link's name.
      std::string keyspace_list_path = keyspace_path;
      if (st->type == FileType::kSymlink) {
        absl::optional<std::string> real =
            FollowDirectoryLink(fs, keyspace_path, "keyspace", options, real_roots, root, result);
        if (!real.has_value()) continue;
        keyspace_list_path = *std::move(real);
      }
      for (const std::string& table : lister.SortedNames(keyspace_list_path)) {
        std::string table_path = JoinPath(keyspace_path, table);
        absl::StatusOr<FileStat> table_st = fs.Stat(table_path);
        if (!table_st.ok()) {
          if (!IsVanished(table_st.status())) result.errors.push_back(table_st.status());
          continue;
        }
        std::string list_path = table_path;
        if (table_st->type == FileType::kSymlink) {
          absl::optional<std::string> real = FollowDirectoryLink(
              fs, table_path, "table directory", options, real_roots, root, result);
          if (!real.has_value()) continue;
          list_path = *std::move(real);
        } else if (table_st->type != FileType::kDirectory) {
          if (table_st->type == FileType::kOther) {
            result.warnings.push_back(
                absl::StrCat("skipping special file (not a regular file) ", table_path));
          }
          continue;
        }
        tables[absl::StrCat(keyspace, "/", table)].push_back(
            TableDir{root, std::move(table_path), std::move(list_path)});
      }
    }
  }
  for (auto& [rel, dirs] : tables) {
    listing.tables.push_back(SourceTable{rel, std::move(dirs)});
  }
  return listing;
}

ScanResult ScanTables(FileSystem& fs, const ScanOptions& options,
                      const std::vector<const SourceTable*>& tables) {
  // Each table directory on its own (on several threads when asked), the
  // parts joined in order.
  std::vector<std::pair<const SourceTable*, const TableDir*>> dirs;
  for (const SourceTable* table : tables) {
    for (const TableDir& dir : table->dirs) dirs.emplace_back(table, &dir);
  }
  std::vector<ScanResult> parts(dirs.size());
  ParallelFor(options.threads, dirs.size(), [&](size_t i) {
    const auto& [table, dir] = dirs[i];
    SnapshotScanner(fs, options, parts[i])
        .ScanTable(dir->root, dir->path, table->relative_path, dir->list_path);
  });
  ScanResult result;
  for (ScanResult& part : parts) Merge(std::move(part), result);
  std::stable_sort(result.files.begin(), result.files.end(),
                   [](const SourceFile& a, const SourceFile& b) {
                     return a.relative_path < b.relative_path;
                   });
  return result;
}

absl::StatusOr<ScanResult> ScanSource(FileSystem& fs, const ScanOptions& options) {
  absl::StatusOr<TableListing> listing = ListSourceTables(fs, options);
  if (!listing.ok()) return listing.status();
  std::vector<const SourceTable*> tables;
  for (const SourceTable& table : listing->tables) tables.push_back(&table);
  ScanResult result = std::move(listing->problems);
  ScanResult scanned = ScanTables(fs, options, tables);
  Merge(std::move(scanned), result);
  return result;
}

}  // namespace snaphaven
