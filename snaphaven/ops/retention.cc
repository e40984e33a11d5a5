#include "snaphaven/ops/retention.h"

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/types/optional.h"
#include "snaphaven/cassandra/cassandra_metadata.h"
#include "snaphaven/cassandra/cassandra_path.h"
#include "snaphaven/state/destination.h"
#include "snaphaven/state/destination_walker.h"
#include "snaphaven/state/snapshot_copy.h"

namespace snaphaven {
namespace {

// Relative to the destination: StateDir's own name for it, of a root "".
const std::string& TrashDir() {
  static const std::string* const dir = new std::string(StateDir("").retention_trash);
  return *dir;
}

// What a copy is by the rule of snapshot_copy.h (present: a regular file
// at the destination).
enum class Completeness {
  kComplete,
  kPartial,
  kUnknown,  // something could not be read, or it is not a directory
};

// One snapshot copy of a table.
struct SnapshotCopy {
  std::string rel;  // ks/table dir/snapshots/tag
  std::string tag;
  bool at_source = false;
  Completeness completeness = Completeness::kUnknown;
  absl::Time age_from;  // created_at, else the copy time
};

// `a` is newer than `b`: the order in which the newest N are kept.
bool Newer(const SnapshotCopy& a, const SnapshotCopy& b) {
  if (a.age_from != b.age_from) return a.age_from > b.age_from;
  return a.tag > b.tag;
}

// A file (or other non-directory) of a copy to remove.
struct DoomedFile {
  std::string rel;  // below the tag directory
  FileStat stat;
};

struct Doomed {
  std::string rel;  // ks/table dir/snapshots/tag
  std::vector<DoomedFile> files;
  std::vector<std::string> dirs;  // below the tag directory, parents first
};

class Retention {
 public:
  Retention(FileSystem& fs, Manifest& manifest, const std::string& destination,
            const RetentionOptions& options,
            const std::function<bool(const std::string&)>& present_at_source)
      : fs_(fs),
        manifest_(manifest),
        destination_(destination),
        options_(options),
        present_at_source_(present_at_source) {}

  absl::StatusOr<RetentionResult> Run();

 private:
  // Names of an inode (dev, ino) among a set of files.
  using InodeNames = absl::flat_hash_map<std::pair<uint64_t, uint64_t>, int>;
  // table rel -> tag rel -> tag.
  using TagsByTable = std::map<std::string, std::map<std::string, std::string>>;
  // What the reading half of a pass decided.
  struct Verdict {
    // Recorded, gone from the destination and from the source: entries to
    // erase.
    std::vector<std::string> stale;
    // Copies to remove (their files listed by WalkDoomed).
    std::vector<Doomed> doomed;
  };

  // InvalidArgument for options no pass can run with.
  absl::Status CheckOptions() const;
  // The snapshot copies the manifest records in the keyspaces asked for.
  absl::StatusOr<TagsByTable> RecordedCopies();
  // Decides the fate of one table's copies (`tags`: tag rel -> tag).
  absl::Status JudgeTable(const std::map<std::string, std::string>& tags, Verdict& verdict);
  // Whether a copy with `newer_complete` newer complete copies of its table
  // and that age is beyond --keep_snapshots or --keep_for.
  bool BeyondLimits(size_t newer_complete, absl::Time age_from) const;
  void DoomComplete(const std::vector<SnapshotCopy*>& complete_newest_first,
                    std::vector<Doomed>& doomed) const;
  void DoomPartialGone(const std::vector<SnapshotCopy*>& complete,
                       const std::vector<SnapshotCopy*>& partial_gone,
                       std::vector<Doomed>& doomed);
  // Lists the files of every doomed copy and counts their inodes' names.
  absl::Status WalkDoomed(std::vector<Doomed>& doomed, InodeNames& names_per_inode);
  static int64_t BytesFreed(const std::vector<Doomed>& doomed, const InodeNames& names);
  void ReportWouldRemove(const std::vector<Doomed>& doomed, const InodeNames& names_per_inode);
  void EraseStale(const std::vector<std::string>& stale);
  void RemoveAll(const std::vector<Doomed>& doomed);
  std::string Dest(const std::string& rel) const { return JoinPath(destination_, rel); }
  void EmptyTrash();
  // Removes `rel` and everything below it; counts the names.
  int64_t RemoveTree(const std::string& rel);
  // Fills completeness/age_from; false when its tag directory is gone.
  absl::StatusOr<bool> Evaluate(SnapshotCopy& copy);
  absl::Status Walk(Doomed& doomed);
  void EraseEntries(const std::string& tag_rel);
  // The first section EraseEntries could not read back.
  absl::Status unreadable_;
  void Remove(const Doomed& doomed, const std::string& trash, InodeNames& removed_names);

  FileSystem& fs_;
  Manifest& manifest_;
  const std::string& destination_;
  const RetentionOptions& options_;
  const std::function<bool(const std::string&)>& present_at_source_;
  RetentionResult result_;
  bool manifest_changed_ = false;
  int trash_counter_ = 0;
};

int64_t Retention::RemoveTree(const std::string& rel) {
  int64_t removed = 0;
  bool scope_is_file = false;
  auto warn = [this](const absl::Status& status) {
    if (!status.ok() && !IsVanished(status)) result_.warnings.push_back(std::string(status.message()));
  };
  DestinationVisitor visitor;
  visitor.file = [&](const std::string& path, const FileStat&) {
    scope_is_file |= path == rel;
    absl::Status status = fs_.Remove(Dest(path));
    if (status.ok()) ++removed;
    warn(status);
    return absl::OkStatus();
  };
  // Children first: each directory is empty by the time it is left.
  visitor.leave = [&](const std::string& path) {
    warn(fs_.RemoveDir(Dest(path)));
    return absl::OkStatus();
  };
  visitor.error = [&](const std::string&, const absl::Status& error) {
    warn(error);  // what is left of it stays for the next pass
    return absl::OkStatus();
  };
  (void)WalkDestination(fs_, destination_, rel, visitor);
  if (!scope_is_file) warn(fs_.RemoveDir(Dest(rel)));
  return removed;
}

void Retention::EmptyTrash() {
  const std::string trash = Dest(TrashDir());
  absl::StatusOr<std::vector<std::string>> names = fs_.ListDir(trash);
  if (!names.ok()) return;  // none (the usual case)
  int64_t removed = 0;
  for (const std::string& name : *names) removed += RemoveTree(JoinPath(TrashDir(), name));
  (void)fs_.RemoveDir(trash);
  if (!names->empty()) {
    result_.warnings.push_back(absl::StrCat("removed ", removed,
                                            " leftover file(s) of an interrupted removal in ",
                                            trash));
  }
}

absl::StatusOr<bool> Retention::Evaluate(SnapshotCopy& copy) {
  absl::StatusOr<FileStat> dir = fs_.Stat(Dest(copy.rel));
  if (!dir.ok()) {
    if (IsVanished(dir.status())) return false;
    return dir.status();
  }
  if (dir->type != FileType::kDirectory) {
    result_.warnings.push_back(absl::StrCat(Dest(copy.rel), " is not a directory; left alone"));
    return true;
  }
  copy.age_from = absl::FromUnixNanos(dir->mtime_ns);
  auto unknown = [this, &copy](const absl::Status& status) {
    result_.warnings.push_back(absl::StrCat(status.message(), "; ", copy.rel,
                                            " is kept (its completeness is unknown)"));
  };
  const std::string manifest_json = Dest(JoinPath(copy.rel, "manifest.json"));
  absl::StatusOr<std::string> text = fs_.ReadFile(manifest_json);
  std::vector<std::string> files;
  if (text.ok()) {
    absl::StatusOr<SnapshotManifest> parsed = ParseSnapshotManifest(*text);
    if (parsed.ok() && parsed->created_at.has_value()) copy.age_from = *parsed->created_at;
  } else if (!IsVanished(text.status())) {
    unknown(text.status());
    return true;
  } else {
    Doomed listing{copy.rel, {}, {}};  // the copy's files, as a removal would list them
    absl::Status listed = Walk(listing);
    if (!listed.ok()) {
      unknown(listed);
      return true;
    }
    for (const DoomedFile& file : listing.files) files.push_back(file.rel);
  }
  absl::Status error;
  const bool complete = IsCompleteSnapshotCopy(
      copy.rel, text.ok() ? &*text : nullptr, files, [&](const std::string& rel) {
        absl::StatusOr<FileStat> st = fs_.Stat(Dest(JoinPath(copy.rel, rel)));
        if (!st.ok() && !IsVanished(st.status()) && error.ok()) error = st.status();
        return st.ok() && st->type == FileType::kRegular;
      });
  if (!error.ok()) {
    unknown(error);
    return true;
  }
  copy.completeness = complete ? Completeness::kComplete : Completeness::kPartial;
  return true;
}

absl::Status Retention::Walk(Doomed& doomed) {
  // Paths below the tag directory; any error stops the pass before
  // anything is removed.
  const size_t below = doomed.rel.size() + 1;
  DestinationVisitor visitor;
  visitor.enter = [&doomed, below](const std::string& rel, const FileStat&) {
    doomed.dirs.push_back(rel.substr(below));  // parents first
    return true;
  };
  visitor.file = [&doomed, below](const std::string& rel, const FileStat& stat) {
    doomed.files.push_back(DoomedFile{rel.substr(below), stat});
    return absl::OkStatus();
  };
  return WalkDestination(fs_, destination_, doomed.rel, visitor);
}

void Retention::EraseEntries(const std::string& tag_rel) {
  const std::string prefix = tag_rel + "/";
  std::vector<std::string> erase;
  absl::Status loaded = manifest_.LoadBelow(tag_rel);  // only the copy's sections
  if (!loaded.ok()) {
    // Its entries stay, and the store refuses to commit a manifest that
    // lacks a section: Run reports it.
    if (unreadable_.ok()) unreadable_ = loaded;
    return;
  }
  const Manifest::Map& entries = manifest_.loaded_entries();
  for (auto it = entries.lower_bound(prefix);
       it != entries.end() && absl::StartsWith(it->first, prefix); ++it) {
    erase.push_back(it->first);
  }
  for (const std::string& path : erase) manifest_.Erase(path);
  if (!erase.empty()) manifest_changed_ = true;
}

void Retention::Remove(const Doomed& doomed, const std::string& trash,
                       InodeNames& removed_names) {
  // Out of its place in one step; then emptied at leisure.
  std::string base = Dest(doomed.rel);
  absl::Status made = fs_.MakeDir(trash);
  if (made.ok() || made.code() == absl::StatusCode::kAlreadyExists) {
    std::string to;
    for (;;) {
      to = JoinPath(trash, absl::StrCat(++trash_counter_));
      if (IsVanished(fs_.Stat(to).status())) break;
    }
    if (fs_.Rename(base, to).ok()) base = to;
  }
  const bool in_place = base == Dest(doomed.rel);
  if (!in_place) EraseEntries(doomed.rel);
  for (const DoomedFile& file : doomed.files) {
    absl::Status status = fs_.Remove(JoinPath(base, file.rel));
    if (!status.ok() && !IsVanished(status)) {
      result_.warnings.push_back(std::string(status.message()));
      continue;
    }
    if (status.ok()) {
      ++result_.files_removed;
      if (file.stat.type == FileType::kRegular) ++removed_names[{file.stat.dev, file.stat.ino}];
    }
    if (in_place) {
      manifest_.Erase(JoinPath(doomed.rel, file.rel));
      manifest_changed_ = true;
    }
  }
  for (auto it = doomed.dirs.rbegin(); it != doomed.dirs.rend(); ++it) {
    absl::Status status = fs_.RemoveDir(JoinPath(base, *it));
    if (!status.ok() && !IsVanished(status)) {
      result_.warnings.push_back(std::string(status.message()));
    }
  }
  absl::Status status = fs_.RemoveDir(base);
  if (!status.ok() && !IsVanished(status)) {
    result_.warnings.push_back(std::string(status.message()));
  }
  if (in_place) {
    if (status.ok() || IsVanished(status)) {
      EraseEntries(doomed.rel);  // recorded files that were not there
    } else {
      result_.warnings.push_back(
          absl::StrCat("snapshot copy ", doomed.rel, " could only be partly removed"));
      return;
    }
  }
  result_.removed_snapshots.push_back(doomed.rel);
}

absl::Status Retention::CheckOptions() const {
  if (options_.keep_snapshots < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid number of snapshots to keep: ", options_.keep_snapshots));
  }
  if (options_.keep_for < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid retention time: ", absl::FormatDuration(options_.keep_for)));
  }
  for (const std::string& keyspace : options_.keyspaces) {
    absl::Status valid = ValidateKeyspaceName(keyspace);
    if (!valid.ok()) return valid;
  }
  return absl::OkStatus();
}

absl::StatusOr<Retention::TagsByTable> Retention::RecordedCopies() {
  TagsByTable tables;
  auto collect = [&tables](const std::string& path) {
    PathInfo info = ClassifyPath(path);
    if (info.kind != PathKind::kSnapshot) return;
    const std::string table = JoinPath(info.keyspace, info.table_dir);
    tables[table].emplace(JoinPath(JoinPath(table, "snapshots"), info.tag), info.tag);
  };
  // From the manifest's directories alone: no entry is read in for this.
  const std::set<std::string> keyspaces(options_.keyspaces.begin(), options_.keyspaces.end());
  for (const std::string& dir : manifest_.Directories()) {
    const std::string keyspace = dir.substr(0, dir.find('/'));
    if (keyspaces.empty() || keyspaces.count(keyspace)) collect(JoinPath(dir, "x"));
  }
  return tables;
}

bool Retention::BeyondLimits(size_t newer_complete, absl::Time age_from) const {
  const bool beyond_count = options_.keep_snapshots > 0 &&
                            newer_complete >= static_cast<size_t>(options_.keep_snapshots);
  const bool too_old = options_.keep_for > absl::ZeroDuration() &&
                       options_.now - age_from > options_.keep_for;
  return beyond_count || too_old;
}

absl::Status Retention::JudgeTable(const std::map<std::string, std::string>& tags,
                                   Verdict& verdict) {
  std::vector<SnapshotCopy> copies;
  bool any_cleared = false;
  for (const auto& [rel, tag] : tags) {
    SnapshotCopy copy;
    copy.rel = rel;
    copy.tag = tag;
    copy.at_source = present_at_source_(rel);
    any_cleared |= !copy.at_source;
    copies.push_back(std::move(copy));
  }
  // Only a copy cleared at the source can go: with none, nothing needs
  // reading (the usual case for most tables on most passes).
  if (!any_cleared) return absl::OkStatus();
  std::vector<SnapshotCopy*> complete;
  std::vector<SnapshotCopy*> partial_gone;  // partial, and gone from the source
  for (SnapshotCopy& copy : copies) {
    absl::StatusOr<bool> there = Evaluate(copy);
    if (!there.ok()) return there.status();
    if (!*there) {
      if (!copy.at_source) verdict.stale.push_back(copy.rel);
      continue;
    }
    if (copy.completeness == Completeness::kComplete) complete.push_back(&copy);
    if (copy.completeness == Completeness::kPartial && !copy.at_source) {
      partial_gone.push_back(&copy);
    }
  }
  std::sort(complete.begin(), complete.end(),
            [](const SnapshotCopy* a, const SnapshotCopy* b) { return Newer(*a, *b); });
  DoomComplete(complete, verdict.doomed);
  DoomPartialGone(complete, partial_gone, verdict.doomed);
  return absl::OkStatus();
}

void Retention::DoomComplete(const std::vector<SnapshotCopy*>& complete_newest_first,
                             std::vector<Doomed>& doomed) const {
  // Sorted newest first, a copy's index is how many complete copies are
  // newer. Those still at the source count but stay (a later cycle would
  // only copy them again).
  for (size_t i = 0; i < complete_newest_first.size(); ++i) {
    const SnapshotCopy& copy = *complete_newest_first[i];
    if (copy.at_source) continue;
    if (BeyondLimits(i, copy.age_from)) doomed.push_back(Doomed{copy.rel, {}, {}});
  }
}

void Retention::DoomPartialGone(const std::vector<SnapshotCopy*>& complete,
                                const std::vector<SnapshotCopy*>& partial_gone,
                                std::vector<Doomed>& doomed) {
  // A partial copy of a snapshot gone from the source is never completed:
  // it goes by the same limits, behind N complete copies, counting for none.
  for (const SnapshotCopy* copy : partial_gone) {
    const size_t newer = static_cast<size_t>(
        std::count_if(complete.begin(), complete.end(),
                      [copy](const SnapshotCopy* c) { return Newer(*c, *copy); }));
    if (!BeyondLimits(newer, copy->age_from)) continue;
    doomed.push_back(Doomed{copy->rel, {}, {}});
    result_.warnings.push_back(absl::StrCat(
        "snapshot copy ", copy->rel,
        " is a partial copy of a snapshot gone from the source: ",
        options_.dry_run ? "would be removed" : "removed"));
  }
}

absl::Status Retention::WalkDoomed(std::vector<Doomed>& doomed, InodeNames& names_per_inode) {
  for (Doomed& d : doomed) {
    absl::Status walked = Walk(d);
    if (!walked.ok()) return walked;
    for (const DoomedFile& file : d.files) {
      if (file.stat.type == FileType::kRegular) ++names_per_inode[{file.stat.dev, file.stat.ino}];
    }
  }
  return absl::OkStatus();
}

int64_t Retention::BytesFreed(const std::vector<Doomed>& doomed, const InodeNames& names) {
  // An inode is freed when every one of its links is among the names
  // removed; a file hard-linked elsewhere (another copy, the live mirror)
  // frees nothing.
  int64_t bytes = 0;
  absl::flat_hash_map<std::pair<uint64_t, uint64_t>, bool> counted;
  for (const Doomed& d : doomed) {
    for (const DoomedFile& file : d.files) {
      if (file.stat.type != FileType::kRegular) continue;
      auto key = std::make_pair(file.stat.dev, file.stat.ino);
      auto it = names.find(key);
      if (it == names.end() || static_cast<uint64_t>(it->second) < file.stat.nlink) continue;
      if (counted.emplace(key, true).second) bytes += file.stat.size;
    }
  }
  return bytes;
}

void Retention::ReportWouldRemove(const std::vector<Doomed>& doomed,
                                  const InodeNames& names_per_inode) {
  for (const Doomed& d : doomed) {
    result_.removed_snapshots.push_back(d.rel);
    result_.files_removed += static_cast<int64_t>(d.files.size());
  }
  result_.bytes_freed = BytesFreed(doomed, names_per_inode);
}

void Retention::EraseStale(const std::vector<std::string>& stale) {
  for (const std::string& rel : stale) {
    EraseEntries(rel);
    result_.warnings.push_back(absl::StrCat(
        "snapshot copy ", rel, " is recorded but gone from the destination; entries erased"));
  }
}

void Retention::RemoveAll(const std::vector<Doomed>& doomed) {
  InodeNames removed_names;
  std::set<std::string> parents;
  for (const Doomed& d : doomed) {
    Remove(d, Dest(TrashDir()), removed_names);
    parents.insert(std::string(DirName(Dest(d.rel))));
  }
  // Counted from the names actually removed: a file that could not be
  // unlinked keeps its inode.
  result_.bytes_freed = BytesFreed(doomed, removed_names);
  // The removals durable (the trash directory is emptied again anyway).
  for (const std::string& parent : parents) {
    absl::Status synced = fs_.SyncDir(parent);
    if (!synced.ok() && !IsVanished(synced)) {
      result_.warnings.push_back(std::string(synced.message()));
    }
  }
  if (!doomed.empty()) (void)fs_.RemoveDir(Dest(TrashDir()));
}

absl::StatusOr<RetentionResult> Retention::Run() {
  absl::Status valid = CheckOptions();
  if (!valid.ok()) return valid;
  // Leftovers of an interrupted pass go even when no limit is set.
  if (!options_.dry_run) EmptyTrash();
  if (options_.keep_snapshots == 0 && options_.keep_for == absl::ZeroDuration()) {
    return std::move(result_);
  }
  absl::StatusOr<TagsByTable> tables = RecordedCopies();
  if (!tables.ok()) return tables.status();
  Verdict verdict;
  for (const auto& [table, tags] : *tables) {
    absl::Status judged = JudgeTable(tags, verdict);
    if (!judged.ok()) return judged;
  }
  // Everything is read before anything is removed: an error up to here
  // leaves the destination and the manifest untouched.
  InodeNames names_per_inode;
  absl::Status walked = WalkDoomed(verdict.doomed, names_per_inode);
  if (!walked.ok()) return walked;
  if (options_.dry_run) {
    ReportWouldRemove(verdict.doomed, names_per_inode);
  } else {
    EraseStale(verdict.stale);
    RemoveAll(verdict.doomed);
    if (!unreadable_.ok()) return unreadable_;
  }
  std::sort(result_.removed_snapshots.begin(), result_.removed_snapshots.end());
  return std::move(result_);
}

}  // namespace

absl::StatusOr<RetentionResult> ApplyRetention(
    FileSystem& fs, Manifest& manifest, const std::string& destination,
    const RetentionOptions& options,
    const std::function<bool(const std::string&)>& present_at_source) {
  return Retention(fs, manifest, destination, options, present_at_source).Run();
}

}  // namespace snaphaven
