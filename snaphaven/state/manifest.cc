#include "snaphaven/state/manifest.h"

#include <glog/logging.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "absl/container/btree_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace snaphaven {
namespace {

// The table directory of a path ("ks/t" of "ks/t/snapshots/s/f"): its
// first two components when it has more, else "".
absl::string_view LinkScopeView(absl::string_view path) {
  size_t first = path.find('/');
  if (first == absl::string_view::npos) return "";
  size_t second = path.find('/', first + 1);
  if (second == absl::string_view::npos) return "";
  return path.substr(0, second);
}

// The key of a map's or a set's element.
const std::string& KeyOf(const std::string& key) { return key; }
template <typename Pair>
const std::string& KeyOf(const Pair& element) {
  return element.first;
}

// The directories in `stored` (a map or a set keyed by directory) at or
// below `scope` ("": all).
template <typename Sorted>
absl::btree_set<std::string> DirsBelow(const Sorted& stored, absl::string_view scope) {
  absl::btree_set<std::string> dirs;
  const std::string below = absl::StrCat(scope, "/");
  for (auto it = stored.lower_bound(scope); it != stored.end(); ++it) {
    const std::string& dir = KeyOf(*it);
    if (!absl::StartsWith(dir, scope)) break;  // sorted: none further
    if (scope.empty() || dir == scope || absl::StartsWith(dir, below)) dirs.insert(dir);
  }
  return dirs;
}

}  // namespace

// ---------------------------------------------------------------- lookups

absl::Status Manifest::LoadSections(
    const std::function<bool(absl::string_view dir)>& wanted) const {
  for (auto it = unloaded_.begin(); it != unloaded_.end();) {
    auto next = std::next(it);
    if (wanted(it->first)) {
      const std::string dir = it->first;
      absl::Status loaded = LoadStored(it);
      if (!loaded.ok()) return loaded;
      next = unloaded_.upper_bound(dir);  // the map changed
    }
    it = next;
  }
  return absl::OkStatus();
}

absl::Status Manifest::LoadSectionsBelow(
    absl::string_view scope, const std::function<bool(absl::string_view dir)>& wanted) const {
  for (const std::string& dir : DirsBelow(unloaded_, scope)) {
    if (!wanted(dir)) continue;
    auto it = unloaded_.find(dir);
    if (it == unloaded_.end()) continue;
    absl::Status loaded = LoadStored(it);
    if (!loaded.ok()) return loaded;
  }
  return absl::OkStatus();
}

absl::Status Manifest::LoadSectionsBelow(absl::string_view dir) const {
  if (unloaded_.empty()) return absl::OkStatus();  // the common case in a cycle
  if (dir.empty()) {
    while (!unloaded_.empty()) {
      absl::Status loaded = LoadStored(unloaded_.begin());
      if (!loaded.ok()) return loaded;
    }
    return absl::OkStatus();
  }
  return LoadSectionsBelow(dir, [](absl::string_view) { return true; });
}

void Manifest::LoadSection(absl::string_view dir) {
  auto it = unloaded_.find(dir);
  if (it != unloaded_.end()) (void)LoadStored(it);  // a failure is kept in load_error_
}

absl::Status Manifest::ReadSection(
    absl::string_view dir, std::vector<std::pair<std::string, ManifestEntry>>* out) const {
  return absl::InternalError(absl::StrCat("no stored section for \"", dir, "\""));
}

absl::Status Manifest::LoadStored(absl::btree_map<std::string, uint64_t>::iterator it) const {
  const std::string dir = it->first;
  const uint64_t count = it->second;
  std::vector<std::pair<std::string, ManifestEntry>> parsed;
  absl::Status status = ReadSection(dir, &parsed);
  if (!status.ok()) {
    status = absl::Status(status.code(),
                          absl::StrCat("cannot read back the manifest: ", status.message()));
    if (load_error_.ok()) load_error_ = status;
    return status;
  }
  for (auto& [path, entry] : parsed) {
    if (by_source_built_ && entry.source().known()) by_source_.emplace(entry.source(), path);
    entries_.emplace(std::move(path), entry);
  }
  peak_loaded_ = std::max(peak_loaded_, entries_.size());
  unloaded_entries_ -= std::min<uint64_t>(count, unloaded_entries_);
  unloaded_.erase(it);
  // Kept, to be released to; or, with no place on disk, in memory for good.
  if (CanReadBack()) {
    releasable_.insert(dir);
  } else {
    ForgetPlace(dir);
  }
  return absl::OkStatus();
}

void Manifest::Release(absl::string_view scope) const {
  if (releasable_.empty()) return;
  const std::string below = scope.empty() ? std::string() : absl::StrCat(scope, "/");
  auto pending = changed_paths_.lower_bound(below);
  if (pending != changed_paths_.end() && absl::StartsWith(*pending, below)) return;
  ReleaseDirs(DirsBelow(releasable_, scope), scope);
}

void Manifest::ReleaseDirs(const absl::btree_set<std::string>& candidates,
                           absl::string_view scope) const {
  // Only a directory with a place on disk can be let go of: any other
  // would lose its entries.
  absl::btree_set<std::string> dirs;
  for (const std::string& dir : candidates) {
    if (releasable_.contains(dir)) dirs.insert(dir);
  }
  if (dirs.empty()) return;
  const std::string below = scope.empty() ? std::string() : absl::StrCat(scope, "/");
  absl::flat_hash_map<std::string, uint64_t> counts;
  for (auto it = entries_.lower_bound(below);
       it != entries_.end() && absl::StartsWith(it->first, below);) {
    const absl::string_view dir = DirName(it->first);
    if (dirs.contains(dir)) {
      ++counts[dir];
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
  for (const std::string& dir : dirs) {
    releasable_.erase(dir);
    auto count = counts.find(dir);
    if (count == counts.end()) {  // no entries left: nothing to keep
      ForgetPlace(dir);
      continue;
    }
    unloaded_entries_ += count->second;
    unloaded_.emplace(dir, count->second);
  }
  // The index may name paths let go of; rebuilt on next use.
  by_source_.clear();
  by_source_built_ = false;
}

const ManifestEntry* Manifest::Find(absl::string_view path) const {
  DCHECK(Loaded(DirName(path))) << "Find(" << path << ") before its section was read in";
  auto it = entries_.find(path);
  return it == entries_.end() ? nullptr : &it->second;
}

const Manifest::Map& Manifest::entries() const {
  DCHECK(fully_loaded()) << "entries() before LoadAll()";
  return entries_;
}

const std::string* Manifest::FindBySource(const SourceIdentity& source,
                                          absl::string_view within) const {
  DCHECK(DirsBelow(unloaded_, within).empty())
      << "FindBySource below " << within << " before its sections were read in";
  if (!by_source_built_) {
    // Of the entries in memory; sections read in later are added as they come.
    for (const auto& [path, entry] : entries_) {
      if (entry.source().known()) by_source_.emplace(entry.source(), path);
    }
    by_source_built_ = true;
  }
  auto it = by_source_.find(source);
  if (it == by_source_.end()) return nullptr;
  // The index is never pruned on overwrite; check the entry still agrees.
  const ManifestEntry* entry = Find(it->second);
  if (entry == nullptr || !(entry->source() == source)) return nullptr;
  return &it->second;
}

void Manifest::Put(const std::string& path, const ManifestEntry& entry) {
  LoadSection(DirName(path));
  auto it = entries_.find(path);
  if (!replaying_ && (it == entries_.end() || !(it->second == entry))) {
    changed_paths_.insert(path);
  }
  if (it == entries_.end() || it->second.size != entry.size ||
      !(it->second.source() == entry.source())) {
    NoteChange(path);  // may read sections in: `it` is stale after it
    it = entries_.find(path);
  }
  if (it == entries_.end()) {
    entries_.emplace(path, entry);
    peak_loaded_ = std::max(peak_loaded_, entries_.size());
  } else {
    it->second = entry;
  }
  if (by_source_built_ && entry.source().known()) by_source_.emplace(entry.source(), path);
}

void Manifest::Erase(const std::string& path) {
  LoadSection(DirName(path));
  if (entries_.contains(path)) {
    NoteChange(path);
    entries_.erase(path);
    if (!replaying_) changed_paths_.insert(path);
  }
  // The index may name this path for a source another path also holds:
  // rebuild it on next use rather than answer "not stored".
  by_source_.clear();
  by_source_built_ = false;
}

bool IsCurrentCopy(const ManifestEntry* entry, const FileStat& source,
                   int64_t mtime_granularity_ns) {
  return entry != nullptr && entry->size == source.size &&
         SameMtime(entry->mtime_ns, source.mtime_ns, mtime_granularity_ns);
}

ManifestEntry EntryForSource(const FileStat& stat) {
  ManifestEntry entry;
  entry.size = stat.size;
  entry.mtime_ns = stat.mtime_ns;
  entry.mode = stat.mode;
  entry.source_dev = stat.dev;
  entry.source_ino = stat.ino;
  return entry;
}

CopyState StateOfCopy(const ManifestEntry* entry, const FileStat& source,
                      int64_t mtime_granularity_ns) {
  if (entry == nullptr) return CopyState::kNone;
  if (!IsCurrentCopy(entry, source, mtime_granularity_ns)) return CopyState::kStale;
  return entry->source() == IdentityOf(source) ? CopyState::kCurrentSameSource
                                               : CopyState::kCurrent;
}

std::vector<std::string> Manifest::Directories() const {
  absl::btree_set<std::string> dirs;
  for (const auto& [dir, count] : unloaded_) dirs.insert(dir);
  for (const std::string& dir : releasable_) dirs.insert(dir);
  absl::string_view last;
  for (const auto& [path, entry] : entries_) {
    const absl::string_view dir = DirName(path);
    if (dir != last) dirs.emplace(dir);
    last = dir;
  }
  return std::vector<std::string>(dirs.begin(), dirs.end());
}

std::vector<std::string> Manifest::TablesBelow(const std::vector<std::string>& keyspaces) const {
  absl::btree_set<std::string> tables;
  for (const std::string& dir : Directories()) {
    const std::string inside = absl::StrCat(dir, "/x");
    const absl::string_view table = LinkScopeView(inside);
    if (table.empty()) continue;
    for (const std::string& keyspace : keyspaces) {
      if (table.size() > keyspace.size() && absl::StartsWith(table, keyspace) &&
          table[keyspace.size()] == '/') {
        tables.emplace(table);
        break;
      }
    }
  }
  return std::vector<std::string>(tables.begin(), tables.end());
}

std::string Manifest::LinkScope(absl::string_view path) {
  return std::string(LinkScopeView(path));
}

void UniqueBytesCounter::Add(absl::string_view path, const ManifestEntry& entry,
                             bool same_directory) {
  // A scope is a path prefix, so its entries come together: one small set
  // of sources per scope.
  const absl::string_view scope = same_directory ? scope_ : LinkScopeView(path);
  if (scope != scope_) {
    // clear() frees a large table; the next scope is likely as big.
    const size_t size = seen_.size();
    seen_.clear();
    seen_.reserve(size);
    scope_ = scope;
  }
  if (!entry.source().known() || seen_.insert(entry.source()).second) {
    // Saturating: a crafted manifest's sizes may add up past int64.
    const int64_t size = std::max<int64_t>(entry.size, 0);
    bytes_ = size > std::numeric_limits<int64_t>::max() - bytes_
                 ? std::numeric_limits<int64_t>::max()
                 : bytes_ + size;
  }
}

int64_t Manifest::UniqueBytesBelow(absl::string_view scope) const {
  const std::string prefix = scope.empty() ? std::string() : absl::StrCat(scope, "/");
  // What it reads in only to count, it lets go of again (when it can).
  const absl::btree_set<std::string> read_in = DirsBelow(unloaded_, scope);
  (void)LoadSectionsBelow(scope);  // a failure is kept in load_error_: never committed
  UniqueBytesCounter counter;
  for (auto it = entries_.lower_bound(prefix);
       it != entries_.end() && absl::StartsWith(it->first, prefix); ++it) {
    counter.Add(it->first, it->second);
  }
  if (load_error_.ok()) ReleaseDirs(read_in, scope);
  return counter.bytes();
}

void Manifest::NoteChange(absl::string_view path) {
  if (fully_loaded() || stored_unique_bytes_ < 0) return;  // computed whole anyway
  std::string scope = LinkScope(path);
  if (unique_bytes_before_.contains(scope)) return;
  const int64_t before = UniqueBytesBelow(scope);
  unique_bytes_before_.emplace(std::move(scope), before);
}

int64_t Manifest::UniqueBytes() const {
  if (fully_loaded() || stored_unique_bytes_ < 0 || unique_bytes_before_.contains("")) {
    return UniqueBytesBelow("");
  }
  int64_t bytes = stored_unique_bytes_;
  for (const auto& [scope, before] : unique_bytes_before_) {
    bytes += UniqueBytesBelow(scope) - before;
  }
  return bytes;
}

}  // namespace snaphaven
