#include "snaphaven/selector.h"

#include <algorithm>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "snaphaven/cassandra_metadata.h"
#include "snaphaven/cassandra_path.h"

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

bool IsTemporaryName(absl::string_view name) {
  if (absl::EndsWith(name, ".tmp")) return true;
  absl::optional<SSTableName> parsed = ParseSSTableName(name);
  return parsed.has_value() && parsed->temporary;
}

int Depth(absl::string_view path) { return static_cast<int>(std::count(path.begin(), path.end(), '/')); }

class Selector {
 public:
  Selector(const ScanResult& scan, const absl::flat_hash_map<size_t, std::string>& texts,
           const Manifest& destination, const SelectOptions& options)
      : scan_(scan), texts_(texts), destination_(destination), options_(options) {}

  Selection Run() {
    excluded_.assign(scan_.files.size(), false);
    eligible_.assign(scan_.files.size(), false);
    FindConflicts();
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
          for (size_t k = i + 1; k < j; ++k) excluded_[k] = true;
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

  // Why a snapshot cannot be deleted yet, or "" when it is complete.
  std::string Incompleteness(const std::string& unit, const std::vector<size_t>& files,
                             const SnapshotManifest* manifest, size_t manifest_index) {
    for (size_t i : files) {
      if (conflicted_.contains(scan_.files[i].relative_path)) return "a file conflicts between roots";
    }
    if (manifest_index == SIZE_MAX) return "no manifest.json";
    if (manifest == nullptr) return "manifest.json does not parse (still being written?)";
    const FileStat& st = scan_.files[manifest_index].stat;
    if (absl::FromUnixNanos(st.mtime_ns) > options_.now - options_.settle_time) {
      return "manifest.json is younger than --settle_time";
    }
    for (const std::string& listed : manifest->files) {
      std::string path = absl::StrCat(unit, "/", listed);
      if (!Exists(path)) return absl::StrCat("listed ", listed, " is missing");
      absl::optional<SSTableName> name = ParseSSTableName(BaseName(listed));
      if (!name.has_value()) continue;
      std::string dir(DirName(path));
      std::string reason = MissingComponent(dir, name->prefix);
      if (!reason.empty()) return reason;
    }
    return "";
  }

  // Checks an sstable's TOC.txt against what exists; "" when complete.
  std::string MissingComponent(const std::string& dir, const std::string& prefix) {
    std::string toc = absl::StrCat(dir, "/", prefix, "-TOC.txt");
    auto it = by_path_.find(toc);
    if (it == by_path_.end()) {
      // Already moved by a killed run: it was complete then.
      if (destination_.Find(toc) != nullptr) return "";
      return absl::StrCat(prefix, "-TOC.txt is missing");
    }
    const std::string* text = Text(it->second);
    if (text == nullptr) return absl::StrCat(prefix, "-TOC.txt cannot be read");
    for (const std::string& component : ParseToc(*text)) {
      if (!Exists(absl::StrCat(dir, "/", prefix, "-", component))) {
        return absl::StrCat(prefix, "-", component, " (listed in its TOC.txt) is missing");
      }
    }
    return "";
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
    std::string why = Incompleteness(unit, files, manifest.has_value() ? &*manifest : nullptr,
                                     manifest_index);
    if (!why.empty()) {
      Decide(absl::StrCat("keep ", unit, " at the source: ", why));
      return;
    }
    MoveUnit move;
    move.name = unit;
    for (size_t i : files) {
      if (!excluded_[i] && i != manifest_index) move.files.push_back(i);
    }
    move.files.push_back(manifest_index);  // last: the proof of completeness
    for (const auto& [root, dir] : scan_.snapshot_dirs) {
      if (dir == unit || absl::StartsWith(dir, absl::StrCat(unit, "/"))) move.dirs.emplace_back(root, dir);
    }
    std::stable_sort(move.dirs.begin(), move.dirs.end(), [](const auto& a, const auto& b) {
      return Depth(a.second) > Depth(b.second);
    });
    out_.units.push_back(std::move(move));
  }

  // Files of one directory grouped by sstable prefix (temporary and
  // unparseable names left out, with a decision).
  std::map<std::string, std::vector<size_t>> GroupBySSTable(const std::vector<size_t>& files) {
    std::map<std::string, std::vector<size_t>> groups;
    for (size_t i : files) {
      absl::string_view name = BaseName(scan_.files[i].relative_path);
      if (IsTxnLogName(name)) continue;
      if (IsTemporaryName(name)) {
        Decide(absl::StrCat("skip ", scan_.files[i].relative_path, ": temporary file"));
        continue;
      }
      absl::optional<SSTableName> parsed = ParseSSTableName(name);
      if (!parsed.has_value()) {
        Decide(absl::StrCat("skip ", scan_.files[i].relative_path, ": not an sstable component"));
        continue;
      }
      groups[parsed->prefix].push_back(i);
    }
    return groups;
  }

  // The components an sstable's TOC.txt lists, when they all exist in the
  // group; empty (with `why`) otherwise.
  std::vector<size_t> CompleteComponents(const std::string& prefix,
                                         const std::vector<size_t>& group, std::string* why) {
    size_t toc = SIZE_MAX;
    absl::flat_hash_map<absl::string_view, size_t> by_name;
    for (size_t i : group) {
      absl::string_view name = BaseName(scan_.files[i].relative_path);
      by_name.emplace(name, i);
      if (name == absl::StrCat(prefix, "-TOC.txt")) toc = i;
    }
    if (toc == SIZE_MAX) {
      *why = "no TOC.txt yet";
      return {};
    }
    const std::string* text = Text(toc);
    if (text == nullptr) {
      *why = "TOC.txt cannot be read";
      return {};
    }
    std::vector<size_t> components;
    for (const std::string& component : ParseToc(*text)) {
      auto it = by_name.find(absl::StrCat(prefix, "-", component));
      if (it == by_name.end()) {
        *why = absl::StrCat(component, " listed in TOC.txt is missing");
        return {};
      }
      components.push_back(it->second);
    }
    return components;
  }

  void SelectLiveDir(const std::string& dir, const std::vector<size_t>& files) {
    // Transaction logs: what is in flight, committed or about to go.
    absl::flat_hash_map<std::string, std::string> blocked;  // prefix -> why
    for (size_t i : files) {
      absl::string_view name = BaseName(scan_.files[i].relative_path);
      if (!IsTxnLogName(name)) continue;
      const std::string* text = Text(i);
      if (text == nullptr) continue;  // gone: the operation finished
      TxnLog log = ParseTxnLog(*text);
      for (const std::string& prefix : log.added) {
        if (log.state == TxnLog::State::kInFlight) blocked.emplace(prefix, absl::StrCat("being written (", name, " pending)"));
        if (log.state == TxnLog::State::kAborted) blocked.emplace(prefix, absl::StrCat("aborted (", name, ")"));
      }
      for (const std::string& prefix : log.removed) {
        blocked.emplace(prefix, absl::StrCat(log.state == TxnLog::State::kCommitted
                                                 ? "about to be deleted ("
                                                 : "in a transaction (",
                                             name, ")"));
      }
    }
    for (const auto& [prefix, group] : GroupBySSTable(files)) {
      std::string key = absl::StrCat(dir, "/", prefix);
      out_.live_sstables.insert(key);
      auto block = blocked.find(prefix);
      if (block != blocked.end()) {
        Decide(absl::StrCat("skip live sstable ", key, ": ", block->second));
        continue;
      }
      std::string why;
      std::vector<size_t> components = CompleteComponents(prefix, group, &why);
      if (components.empty()) {
        Decide(absl::StrCat("skip live sstable ", key, ": ", why, "; later cycle"));
        continue;
      }
      for (size_t i : components) eligible_[i] = true;
    }
  }

  void SelectBackupDir(const std::string& dir, const std::vector<size_t>& files) {
    for (const auto& [prefix, group] : GroupBySSTable(files)) {
      std::string key = absl::StrCat(dir, "/", prefix);
      std::string why;
      std::vector<size_t> components = CompleteComponents(prefix, group, &why);
      if (components.empty()) {
        Decide(absl::StrCat("skip backup ", key, ": ", why));
        continue;
      }
      int64_t newest = 0;
      for (size_t i : components) newest = std::max(newest, scan_.files[i].stat.mtime_ns);
      if (absl::FromUnixNanos(newest) > options_.now - options_.settle_time) {
        Decide(absl::StrCat("skip backup ", key, ": changed within --settle_time"));
        continue;
      }
      for (size_t i : components) eligible_[i] = true;
      if (!options_.move) continue;
      MoveUnit move;
      move.name = key;
      size_t toc = SIZE_MAX;
      for (size_t i : components) {
        if (absl::EndsWith(scan_.files[i].relative_path, "-TOC.txt")) {
          toc = i;
        } else {
          move.files.push_back(i);
        }
      }
      if (toc != SIZE_MAX) move.files.push_back(toc);  // last, as for snapshots
      out_.units.push_back(std::move(move));
    }
  }

  const ScanResult& scan_;
  const absl::flat_hash_map<size_t, std::string>& texts_;
  const Manifest& destination_;
  const SelectOptions& options_;
  std::vector<bool> excluded_, eligible_;
  absl::flat_hash_map<absl::string_view, size_t> by_path_;
  absl::flat_hash_set<std::string> conflicted_;
  Selection out_;
};

}  // namespace

std::vector<size_t> MetadataToRead(const ScanResult& scan) {
  std::vector<size_t> wanted;
  for (size_t i = 0; i < scan.files.size(); ++i) {
    const SourceFile& f = scan.files[i];
    absl::string_view name = BaseName(f.relative_path);
    bool toc = absl::EndsWith(name, "-TOC.txt");
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
