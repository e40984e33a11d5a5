#include "snaphaven/lister.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <tuple>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "snaphaven/cassandra_metadata.h"
#include "snaphaven/cassandra_path.h"

namespace snaphaven {

std::vector<SnapshotCopy> ListSnapshotCopies(FileSystem& fs, const Manifest& manifest,
                                             const std::string& destination,
                                             const std::vector<std::string>& keyspaces) {
  std::map<std::tuple<std::string, std::string, std::string>, SnapshotCopy> copies;
  std::map<std::tuple<std::string, std::string, std::string>, absl::flat_hash_set<SourceIdentity>>
      seen;
  for (const auto& [path, entry] : manifest.entries()) {
    PathInfo info = ClassifyPath(path);
    if (info.kind != PathKind::kSnapshot) continue;
    if (!keyspaces.empty() &&
        std::find(keyspaces.begin(), keyspaces.end(), info.keyspace) == keyspaces.end()) {
      continue;
    }
    auto key = std::make_tuple(info.keyspace, info.table_dir, info.tag);
    SnapshotCopy& copy = copies[key];
    copy.keyspace = info.keyspace;
    copy.table = info.table_dir;
    copy.tag = info.tag;
    ++copy.files;
    if (!entry.source().known() || seen[key].insert(entry.source()).second) copy.bytes += entry.size;
  }
  std::vector<SnapshotCopy> out;
  for (auto& [key, copy] : copies) {
    const std::string unit = absl::StrCat(copy.keyspace, "/", copy.table, "/snapshots/", copy.tag);
    if (manifest.Find(unit + "/manifest.json") != nullptr) {
      absl::StatusOr<std::string> text = fs.ReadFile(JoinPath(destination, unit + "/manifest.json"));
      absl::StatusOr<SnapshotManifest> parsed =
          text.ok() ? ParseSnapshotManifest(*text) : absl::StatusOr<SnapshotManifest>(text.status());
      if (parsed.ok()) {
        copy.complete = std::all_of(parsed->files.begin(), parsed->files.end(),
                                    [&](const std::string& listed) {
                                      return manifest.Find(absl::StrCat(unit, "/", listed)) !=
                                             nullptr;
                                    });
      }
    }
    out.push_back(std::move(copy));
  }
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
                                          c.complete ? "yes" : "no"));
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
                     {"complete", c.complete}});
  }
  // Invalid UTF-8 in names is replaced rather than thrown on.
  return array.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace snaphaven
