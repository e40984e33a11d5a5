#include "snaphaven/cycle/selector.h"

#include <algorithm>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "snaphaven/cassandra/cassandra_metadata.h"
#include "snaphaven/cassandra/cassandra_path.h"
#include "snaphaven/state/snapshot_copy.h"
#include "snaphaven/cassandra/sstable_components.h"

namespace snaphaven {
namespace {

constexpr absl::string_view kManifestJson = "manifest.json";
constexpr absl::string_view kEphemeralMarker = "ephemeral.snapshot";

absl::string_view BaseName(absl::string_view path) {
  size_t slash = path.rfind('/');
  return slash == absl::string_view::npos ? path : path.substr(slash + 1);
}

// "ks/t/snapshots/tag" of a snapshot file path.
std::string SnapshotUnit(absl::string_view rel) {
  std::vector<absl::string_view> parts = absl::StrSplit(rel, '/');
  return absl::StrJoin(parts.begin(), parts.begin() + 4, "/");
}


int Depth(absl::string_view path) { return static_cast<int>(std::count(path.begin(), path.end(), '/')); }

bool AllCurrent(const std::vector<CopyState>* states, const std::vector<size_t>& files) {
  if (states == nullptr) return false;
  for (size_t i : files) {
    if (!IsCurrent((*states)[i])) return false;
  }
  return true;
}

// The files of the sstable whose TOC.txt is scan.files[toc]: its neighbours
// in the scan (sorted by path, within a root or across roots, so the paths
// sharing the prefix "<dir>/<sstable>-" are contiguous) in the same root.
std::vector<size_t> FilesBesideToc(const ScanResult& scan, size_t toc) {
  const SourceFile& t = scan.files[toc];
  const absl::string_view path = t.relative_path;
  const absl::string_view prefix = path.substr(0, path.size() - (sizeof("TOC.txt") - 1));
  auto shares_prefix = [&](size_t j) {
    return absl::StartsWith(scan.files[j].relative_path, prefix);
  };
  size_t first = toc, last = toc;
  while (first > 0 && shares_prefix(first - 1)) --first;
  while (last + 1 < scan.files.size() && shares_prefix(last + 1)) ++last;
  std::vector<size_t> files;
  for (size_t j = first; j <= last; ++j) {
    if (scan.files[j].root == t.root) files.push_back(j);
  }
  return files;
}

class Selector {
 public:
  Selector(const ScanResult& scan, const absl::flat_hash_map<size_t, std::string>& texts,
           const Manifest& destination, const SelectOptions& options)
      : scan_(scan), texts_(texts), destination_(destination), options_(options) {}

  Selection Run() {
    excluded_.assign(scan_.files.size(), false);
    duplicate_.assign(scan_.files.size(), false);
    eligible_.assign(scan_.files.size(), false);
    FindConflicts();
    for (const ScanResult::WalkedDir& dir : scan_.walked_dirs) {
      if (Depth(dir.relative_path) < 3) continue;
      int64_t& newest = snapshot_dir_mtime_[SnapshotUnit(dir.relative_path)];
      newest = std::max(newest, dir.stat.mtime_ns);
    }
    std::map<std::string, std::vector<size_t>> snapshots;
    std::map<std::pair<int, std::string>, std::vector<size_t>> live_dirs, backup_dirs;
    for (size_t i = 0; i < scan_.files.size(); ++i) {
      const SourceFile& f = scan_.files[i];
      std::string dir(DirName(f.relative_path));
      switch (f.kind) {
        case PathKind::kSnapshot:
          snapshots[SnapshotUnit(f.relative_path)].push_back(i);
          break;
        case PathKind::kLive:
          live_dirs[{f.root, dir}].push_back(i);
          break;
        case PathKind::kBackup:
          backup_dirs[{f.root, dir}].push_back(i);
          break;
        case PathKind::kOther:
          break;
      }
    }
    for (const auto& [unit, files] : snapshots) SelectSnapshot(unit, files);
    for (const auto& [key, files] : live_dirs) SelectLiveDir(key.second, files);
    for (const auto& [key, files] : backup_dirs) SelectBackupDir(key.second, files);
    for (size_t i = 0; i < scan_.files.size(); ++i) {
      if (eligible_[i] && !excluded_[i]) out_.eligible.push_back(i);
    }
    return std::move(out_);
  }

 private:
  void Decide(absl::string_view what) {
    if (options_.record_decisions) out_.decisions.emplace_back(what);
  }

  // At the source (any root), or recorded at the destination (a killed move
  // already deleted it at the source).
  bool Exists(const std::string& rel) const {
    return by_path_.contains(rel) || destination_.Find(rel) != nullptr;
  }

  const std::string* Text(size_t i) const {
    auto it = texts_.find(i);
    return it == texts_.end() ? nullptr : &it->second;
  }

  // The same relative path in several roots: identical (size and mtime)
  // copies are one file; different ones are an error for that path.
  void FindConflicts() {
    const std::vector<SourceFile>& files = scan_.files;
    for (size_t i = 0; i < files.size();) {
      size_t j = i + 1;
      while (j < files.size() && files[j].relative_path == files[i].relative_path) ++j;
      by_path_.emplace(files[i].relative_path, i);
      bool identical = true;
      for (size_t k = i + 1; k < j; ++k) {
        identical &= files[k].stat.size == files[i].stat.size &&
                     files[k].stat.mtime_ns == files[i].stat.mtime_ns;
      }
      if (j - i > 1) {
        if (identical) {
          for (size_t k = i + 1; k < j; ++k) excluded_[k] = duplicate_[k] = true;
          Decide(absl::StrCat("skip duplicate ", files[i].relative_path,
                              " (same size and mtime in several data roots)"));
        } else {
          for (size_t k = i; k < j; ++k) excluded_[k] = true;
          conflicted_.insert(files[i].relative_path);
          out_.errors.push_back(absl::StrCat(
              "conflict: ", files[i].relative_path,
              " exists with different contents in several data roots; not copied"));
        }
      }
      i = j;
    }
  }

  // Why a snapshot cannot be deleted yet, or "" when it is complete (the
  // rule of snapshot_copy.h) and settled: its manifest.json, or for a 2.0
  // snapshot without one, its newest file or directory, older than the
  // settle time.
  std::string Incompleteness(const std::string& unit, const std::vector<size_t>& files,
                             size_t manifest_index, int64_t newest_ns) {
    for (size_t i : files) {
      if (conflicted_.contains(scan_.files[i].relative_path)) return "a file conflicts between roots";
    }
    static const std::string* const kUnreadable = new std::string();
    const std::string* manifest_json = nullptr;
    if (manifest_index != SIZE_MAX) {
      manifest_json = Text(manifest_index);
      if (manifest_json == nullptr) manifest_json = kUnreadable;  // does not parse
    }
    std::vector<std::string> rels;
    for (size_t i : files) rels.push_back(scan_.files[i].relative_path.substr(unit.size() + 1));
    std::string why = SnapshotIncompleteness(
        unit, manifest_json, rels,
        [&](const std::string& rel) { return Exists(absl::StrCat(unit, "/", rel)); },
        [&](const std::string& dir, const SSTableName& name) {
          return MissingComponent(dir.empty() ? unit : absl::StrCat(unit, "/", dir), name);
        });
    if (!why.empty()) return why;
    const absl::Time settled = options_.now - options_.settle_time;
    if (manifest_index != SIZE_MAX) {
      if (absl::FromUnixNanos(scan_.files[manifest_index].stat.mtime_ns) > settled) {
        return "manifest.json is younger than --settle_time";
      }
    } else if (absl::FromUnixNanos(newest_ns) > settled) {
      return "changed within --settle_time (2.0 snapshot: no manifest.json)";
    }
    return "";
  }

  // Whether the sstable `name` in `dir` (at the source, or already moved by
  // a killed run) is whole; "" when it is, else what is missing.
  std::string MissingComponent(const std::string& dir, const SSTableName& name) {
    std::string toc = absl::StrCat(dir, "/", name.prefix, "-TOC.txt");
    auto it = by_path_.find(toc);
    if (it == by_path_.end() && destination_.Find(toc) != nullptr) {
      return "";  // already moved by a killed run: it was complete then
    }
    const std::string* text = it == by_path_.end() ? nullptr : Text(it->second);
    SSTableCompleteness whole = CheckSSTableComplete(name, text, [&](absl::string_view component) {
      return Exists(absl::StrCat(dir, "/", name.prefix, "-", component));
    });
    if (!whole.warning.empty()) Warn(absl::StrCat(dir, "/", whole.warning));
    return whole.missing;
  }

  void SelectSnapshot(const std::string& unit, const std::vector<size_t>& files) {
    size_t manifest_index = SIZE_MAX;
    bool ephemeral = false;
    for (size_t i : files) {
      absl::string_view rest = absl::string_view(scan_.files[i].relative_path).substr(unit.size() + 1);
      if (rest == kManifestJson && manifest_index == SIZE_MAX) manifest_index = i;
      if (rest == kEphemeralMarker) ephemeral = true;
    }
    absl::optional<SnapshotManifest> manifest;
    if (manifest_index != SIZE_MAX) {
      if (const std::string* text = Text(manifest_index)) {
        absl::StatusOr<SnapshotManifest> parsed = ParseSnapshotManifest(*text);
        if (parsed.ok()) manifest = *std::move(parsed);
      }
    }
    if (ephemeral || (manifest.has_value() && manifest->ephemeral)) {
      Decide(absl::StrCat("skip ", unit, ": ephemeral snapshot (repair's), never copied nor deleted"));
      return;
    }
    for (size_t i : files) eligible_[i] = true;
    if (!options_.move) return;
    int64_t newest_ns = NewestMtime(files);
    auto dir_mtime = snapshot_dir_mtime_.find(unit);
    if (dir_mtime != snapshot_dir_mtime_.end()) newest_ns = std::max(newest_ns, dir_mtime->second);
    std::string why = Incompleteness(unit, files, manifest_index, newest_ns);
    if (!why.empty()) {
      Decide(absl::StrCat("keep ", unit, " at the source: ", why));
      out_.held_back.push_back(HeldBack{HeldBack::Kind::kSnapshot, unit, why, 0, newest_ns});
      return;
    }
    MoveUnit move;
    move.name = unit;
    // Every root's file, the identical duplicates too (one copy stands for
    // them all); never one in conflict (not copied).
    const std::string* manifest_path =
        manifest_index != SIZE_MAX ? &scan_.files[manifest_index].relative_path : nullptr;
    std::vector<size_t> proofs;  // manifest.json in each root
    for (size_t i : files) {
      if (excluded_[i] && !duplicate_[i]) continue;
      if (manifest_path != nullptr && scan_.files[i].relative_path == *manifest_path) {
        if (i != manifest_index) proofs.push_back(i);
        continue;
      }
      move.files.push_back(i);
    }
    // Last: the proof of completeness (2.0 wrote none).
    move.files.insert(move.files.end(), proofs.begin(), proofs.end());
    if (manifest_index != SIZE_MAX) move.files.push_back(manifest_index);
    for (const auto& [root, dir] : scan_.snapshot_dirs) {
      if (dir == unit || absl::StartsWith(dir, absl::StrCat(unit, "/"))) move.dirs.emplace_back(root, dir);
    }
    std::stable_sort(move.dirs.begin(), move.dirs.end(), [](const auto& a, const auto& b) {
      return Depth(a.second) > Depth(b.second);
    });
    out_.units.push_back(std::move(move));
  }

  int64_t NewestMtime(const std::vector<size_t>& files) const {
    int64_t newest = 0;
    for (size_t i : files) newest = std::max(newest, scan_.files[i].stat.mtime_ns);
    return newest;
  }

  void HoldBack(HeldBack::Kind kind, const std::string& key, const std::vector<size_t>& group,
                std::string reason) {
    Decide(absl::StrCat("skip ", kind == HeldBack::Kind::kBackupSSTable ? "backup " : "live sstable ",
                        key, ": ", reason));
    out_.held_back.push_back(HeldBack{kind, key, std::move(reason),
                                      static_cast<int64_t>(group.size()), NewestMtime(group)});
  }

  // Files of one directory grouped by sstable prefix, 2.x temporary
  // sstables (tmp-, tmplink-) apart; *.tmp files and names that are no
  // sstable's are left out (with a decision).
  std::map<std::string, std::vector<size_t>> GroupBySSTable(
      const std::vector<size_t>& files, std::map<std::string, std::vector<size_t>>* temporary) {
    std::map<std::string, std::vector<size_t>> groups;
    for (size_t i : files) {
      const std::string& rel = scan_.files[i].relative_path;
      absl::string_view name = BaseName(rel);
      if (IsTxnLogName(name)) continue;
      if (absl::EndsWith(name, ".tmp")) {
        Decide(absl::StrCat("skip ", rel, ": temporary file"));
        continue;
      }
      absl::optional<SSTableName> parsed = ParseSSTablePath(rel);
      if (!parsed.has_value()) {
        Decide(absl::StrCat("skip ", rel, ": not an sstable component"));
        continue;
      }
      (parsed->temporary ? *temporary : groups)[parsed->prefix].push_back(i);
    }
    return groups;
  }

  // Whether the sstable `prefix` made of `group` (one directory's files) is
  // whole; "" when it is, else why not.
  std::string WholeSSTable(const std::string& prefix, const std::vector<size_t>& group) {
    const std::string& first = scan_.files[group.front()].relative_path;
    absl::optional<SSTableName> name = ParseSSTablePath(first);
    absl::flat_hash_set<std::string> components;
    const std::string* toc = nullptr;
    // Copied whole and unchanged since (sstables are immutable).
    if (AllCurrent(options_.states, group)) return "";
    for (size_t i : group) {
      absl::string_view file = BaseName(scan_.files[i].relative_path);
      components.insert(std::string(file.substr(prefix.size() + 1)));
      if (file.substr(prefix.size() + 1) == "TOC.txt") toc = Text(i);
    }
    SSTableCompleteness whole = CheckSSTableComplete(
        *name, toc, [&](absl::string_view c) { return components.contains(c); });
    if (!whole.warning.empty()) Warn(absl::StrCat(DirName(first), "/", whole.warning));
    return whole.missing;
  }

  void SelectLiveDir(const std::string& dir, const std::vector<size_t>& files) {
    // Transaction logs: what is in flight, committed or about to go.
    absl::flat_hash_map<std::string, std::string> blocked;  // prefix -> why
    absl::flat_hash_set<std::string> obsolete;  // aborted or compacted away: not data to keep
    for (size_t i : files) {
      absl::string_view name = BaseName(scan_.files[i].relative_path);
      if (!IsTxnLogName(name)) continue;
      const std::string* text = Text(i);
      if (text == nullptr) continue;  // gone: the operation finished
      TxnLog log = ParseTxnLog(*text);
      for (const std::string& prefix : log.added) {
        if (log.state == TxnLog::State::kInFlight) {
          blocked.emplace(prefix, absl::StrCat("being written (", dir, "/", name, " has no COMMIT yet)"));
        }
        if (log.state == TxnLog::State::kAborted) obsolete.insert(prefix);
      }
      // A REMOVE is obsolete once committed; while the log is in flight the
      // sstable is a compaction's input and still live.
      if (log.state == TxnLog::State::kCommitted) obsolete.insert(log.removed.begin(), log.removed.end());
    }
    std::map<std::string, std::vector<size_t>> temporary;
    for (const auto& [prefix, group] : GroupBySSTable(files, &temporary)) {
      std::string key = absl::StrCat(dir, "/", prefix);
      out_.live_sstables.insert(key);
      if (obsolete.contains(prefix)) {
        Decide(absl::StrCat("skip live sstable ", key, ": aborted or compacted away (its transaction log)"));
        continue;
      }
      auto block = blocked.find(prefix);
      std::string why = block != blocked.end() ? block->second : WholeSSTable(prefix, group);
      if (!why.empty()) {
        HoldBack(HeldBack::Kind::kLiveSSTable, key, group, why);
        continue;
      }
      for (size_t i : group) eligible_[i] = true;
    }
    for (const auto& [prefix, group] : temporary) {
      HoldBack(HeldBack::Kind::kLiveSSTable, absl::StrCat(dir, "/", prefix), group,
               "temporary sstable (2.x tmp-/tmplink- name: being written; Cassandra removes "
               "leftovers at its next start)");
    }
  }

  void SelectBackupDir(const std::string& dir, const std::vector<size_t>& files) {
    std::map<std::string, std::vector<size_t>> temporary;
    for (const auto& [prefix, group] : GroupBySSTable(files, &temporary)) {
      std::string key = absl::StrCat(dir, "/", prefix);
      std::string why = WholeSSTable(prefix, group);
      if (why.empty() &&
          absl::FromUnixNanos(NewestMtime(group)) > options_.now - options_.settle_time) {
        why = "changed within --settle_time";
      }
      if (!why.empty()) {
        HoldBack(HeldBack::Kind::kBackupSSTable, key, group, why);
        continue;
      }
      for (size_t i : group) eligible_[i] = true;
      if (!options_.move) continue;
      MoveUnit move;
      move.name = key;
      size_t toc = SIZE_MAX;
      for (size_t i : group) {
        if (absl::EndsWith(scan_.files[i].relative_path, "-TOC.txt")) {
          toc = i;
        } else {
          move.files.push_back(i);
        }
      }
      if (toc != SIZE_MAX) move.files.push_back(toc);  // last, as for snapshots
      out_.units.push_back(std::move(move));
    }
    for (const auto& [prefix, group] : temporary) {
      HoldBack(HeldBack::Kind::kBackupSSTable, absl::StrCat(dir, "/", prefix), group,
               "temporary sstable name");
    }
  }

  void Warn(std::string warning) {
    if (warned_.insert(warning).second) out_.warnings.push_back(std::move(warning));
  }

  const ScanResult& scan_;
  const absl::flat_hash_map<size_t, std::string>& texts_;
  const Manifest& destination_;
  const SelectOptions& options_;
  std::vector<bool> excluded_, eligible_;
  // Excluded as an identical copy, in another data root, of a file taken.
  std::vector<bool> duplicate_;
  absl::flat_hash_map<absl::string_view, size_t> by_path_;
  absl::flat_hash_set<std::string> conflicted_;
  absl::flat_hash_set<std::string> warned_;
  // Newest mtime of each snapshot's tag directory and those below it.
  absl::flat_hash_map<std::string, int64_t> snapshot_dir_mtime_;
  Selection out_;
};

}  // namespace

std::vector<size_t> MetadataToRead(const ScanResult& scan, const SelectOptions& options) {
  std::vector<size_t> wanted;
  for (size_t i = 0; i < scan.files.size(); ++i) {
    const SourceFile& f = scan.files[i];
    absl::string_view name = BaseName(f.relative_path);
    // A snapshot's sstables matter only to move mode (MissingComponent);
    // the selector skips an sstable that is wholly current (WholeSSTable).
    bool toc = absl::EndsWith(name, "-TOC.txt") &&
               (f.kind == PathKind::kSnapshot ? options.move
                                              : !AllCurrent(options.states, FilesBesideToc(scan, i)));
    bool manifest = f.kind == PathKind::kSnapshot && name == kManifestJson &&
                    Depth(f.relative_path) == 4;
    bool txn_log = f.kind == PathKind::kLive && IsTxnLogName(name);
    if (toc || manifest || txn_log) wanted.push_back(i);
  }
  return wanted;
}

Selection SelectFiles(const ScanResult& scan,
                      const absl::flat_hash_map<size_t, std::string>& texts,
                      const Manifest& destination, const SelectOptions& options) {
  return Selector(scan, texts, destination, options).Run();
}

}  // namespace snaphaven
