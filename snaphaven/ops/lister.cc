#include "snaphaven/ops/lister.h"

#include <algorithm>
#include <map>
#include <set>
#include <nlohmann/json.hpp>
#include <tuple>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "snaphaven/cassandra/cassandra_metadata.h"
#include "snaphaven/cassandra/cassandra_path.h"
#include "snaphaven/state/destination.h"
#include "snaphaven/state/node_record.h"
#include "snaphaven/state/snapshot_copy.h"

namespace snaphaven {
bool IsDirectoryOrLinkToOne(FileSystem& fs, const std::string& path) {
  absl::StatusOr<FileStat> st = fs.Stat(path);
  if (st.ok() && st->type == FileType::kSymlink) st = fs.Stat(path + "/.");
  return st.ok() && st->type == FileType::kDirectory;
}

std::vector<std::string> ListingDataRoots(FileSystem& fs, const std::string& destination,
                                          const std::vector<std::string>& fallback) {
  absl::StatusOr<std::string> text = fs.ReadFile(StateDir(destination).node);
  if (!text.ok()) return fallback;
  absl::StatusOr<NodeRecord> record = ParseNodeRecord(*text);
  if (!record.ok() || record->data_roots.empty()) return fallback;
  return record->data_roots;
}

absl::optional<bool> SnapshotGoneFromSource(FileSystem& fs,
                                            const std::vector<std::string>& data_roots,
                                            const std::string& copy_dir) {
  bool any_root = false;
  bool unsure = false;
  for (const std::string& root : data_roots) {
    if (!IsDirectoryOrLinkToOne(fs, root)) continue;
    any_root = true;
    absl::StatusOr<FileStat> st = fs.Stat(JoinPath(root, copy_dir));
    if (st.ok()) return false;
    if (!IsVanished(st.status())) unsure = true;  // EACCES, EIO: cannot tell
  }
  if (!any_root || unsure) return absl::nullopt;
  return true;
}

namespace {

// The copies of one table's snapshots ("ks/<table dir>"), from its entries
// (read in by the caller).
void ListTableCopies(FileSystem& fs, const Manifest& manifest, const std::string& destination,
                     const std::string& table, const std::vector<std::string>& data_roots,
                     std::vector<SnapshotCopy>& out) {
  using Key = std::tuple<std::string, std::string, std::string>;
  std::map<Key, SnapshotCopy> copies;
  // The files of each copy, relative to its tag directory.
  std::map<Key, std::vector<std::string>> files;
  std::map<Key, absl::flat_hash_set<SourceIdentity>> seen;
  const std::string prefix = table + "/";
  const Manifest::Map& entries = manifest.loaded_entries();
  for (auto it = entries.lower_bound(prefix);
       it != entries.end() && absl::StartsWith(it->first, prefix); ++it) {
    const auto& [path, entry] = *it;
    PathInfo info = ClassifyPath(path);
    if (info.kind != PathKind::kSnapshot) continue;
    Key key = std::make_tuple(info.keyspace, info.table_dir, info.tag);
    SnapshotCopy& copy = copies[key];
    copy.keyspace = info.keyspace;
    copy.table = info.table_dir;
    copy.tag = info.tag;
    ++copy.files;
    const std::string unit = absl::StrCat(info.keyspace, "/", info.table_dir, "/snapshots/",
                                          info.tag, "/");
    files[key].push_back(path.substr(unit.size()));
    if (!entry.source().known() || seen[key].insert(entry.source()).second) copy.bytes += entry.size;
  }
  for (auto& [key, copy] : copies) {
    const std::string unit = absl::StrCat(copy.keyspace, "/", copy.table, "/snapshots/", copy.tag);
    // manifest.json as recorded; one recorded but unreadable is no proof.
    absl::optional<std::string> manifest_json;
    if (manifest.Find(unit + "/manifest.json") != nullptr) {
      absl::StatusOr<std::string> text = fs.ReadFile(JoinPath(destination, unit + "/manifest.json"));
      manifest_json = text.ok() ? *std::move(text) : std::string();
    }
    copy.complete = IsCompleteSnapshotCopy(
        unit, manifest_json.has_value() ? &*manifest_json : nullptr, files[key],
        [&](const std::string& rel) {
          return manifest.Find(absl::StrCat(unit, "/", rel)) != nullptr;
        });
    copy.source_gone = SnapshotGoneFromSource(fs, data_roots, unit);
    out.push_back(std::move(copy));
  }
}

}  // namespace

absl::StatusOr<std::vector<SnapshotCopy>> ListSnapshotCopies(FileSystem& fs, const Manifest& manifest,
                                             const std::string& destination,
                                             const std::vector<std::string>& keyspaces,
                                             const std::vector<std::string>& data_roots) {
  std::vector<std::string> wanted = keyspaces;
  if (wanted.empty()) {  // every keyspace recorded
    std::set<std::string> all;
    for (const std::string& dir : manifest.Directories()) {
      const size_t slash = dir.find('/');
      if (slash != std::string::npos) all.insert(dir.substr(0, slash));
    }
    wanted.assign(all.begin(), all.end());
  }
  std::vector<SnapshotCopy> out;
  // Table by table (a snapshot's files are all in its table directory),
  // each let go of once listed: memory follows the largest table.
  for (const std::string& table : manifest.TablesBelow(wanted)) {
    absl::Status loaded = manifest.LoadBelow(table);
    if (!loaded.ok()) return loaded;
    ListTableCopies(fs, manifest, destination, table, data_roots, out);
    manifest.Release(table);
  }
  std::sort(out.begin(), out.end(), [](const SnapshotCopy& a, const SnapshotCopy& b) {
    return std::tie(a.keyspace, a.table, a.tag) < std::tie(b.keyspace, b.table, b.tag);
  });
  return out;
}

std::string FormatSnapshotTable(const std::vector<SnapshotCopy>& copies) {
  size_t ks = 8, table = 5, tag = 3;
  for (const SnapshotCopy& c : copies) {
    ks = std::max(ks, c.keyspace.size());
    table = std::max(table, c.table.size());
    tag = std::max(tag, c.tag.size());
  }
  std::string out = absl::StrFormat("%-*s  %-*s  %-*s  %8s  %14s  %s\n", ks, "KEYSPACE", table,
                                    "TABLE", tag, "TAG", "FILES", "BYTES", "COMPLETE");
  for (const SnapshotCopy& c : copies) {
    absl::StrAppend(&out, absl::StrFormat("%-*s  %-*s  %-*s  %8d  %14d  %s\n", ks, c.keyspace,
                                          table, c.table, tag, c.tag, c.files, c.bytes,
                                          c.complete                 ? "yes"
                                          : c.source_gone == true    ? "no (source gone)"
                                                                     : "no"));
  }
  return out;
}

std::string FormatSnapshotJson(const std::vector<SnapshotCopy>& copies) {
  nlohmann::json array = nlohmann::json::array();
  for (const SnapshotCopy& c : copies) {
    array.push_back({{"keyspace", c.keyspace},
                     {"table", c.table},
                     {"tag", c.tag},
                     {"files", c.files},
                     {"bytes", c.bytes},
                     {"complete", c.complete},
                     {"source_gone", c.source_gone.has_value() ? nlohmann::json(*c.source_gone)
                                                               : nlohmann::json(nullptr)}});
  }
  // Invalid UTF-8 in names is replaced rather than thrown on.
  return array.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace snaphaven
