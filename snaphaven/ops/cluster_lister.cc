#include "snaphaven/ops/cluster_lister.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "snaphaven/commitlog/segment.h"
#include "snaphaven/state/destination.h"
#include "snaphaven/cassandra/keyspace_dirs.h"
#include "snaphaven/ops/lister.h"
#include "snaphaven/state/manifest_store.h"

namespace snaphaven {
namespace {

// The snapshot copies a node's destination holds, by its manifest (no
// manifest yet: a destination whose first cycle has not committed).
absl::StatusOr<std::vector<SnapshotCopy>> NodeCopies(FileSystem& fs, const std::string& dest,
                                                     const std::vector<std::string>& keyspaces) {
  absl::StatusOr<StoredManifest> manifest =
      StoredManifest::Load(fs, StateDir(dest).manifest, StoredManifest::Loading::kLazy);
  if (!manifest.ok()) {
    if (IsVanished(manifest.status())) return std::vector<SnapshotCopy>();
    return manifest.status();
  }
  // No data roots: whether a snapshot is still at its source is not asked.
  return ListSnapshotCopies(fs, *manifest, dest, keyspaces, {});
}

using TableKey = std::pair<std::string, std::string>;  // keyspace, table dir

// One tag across the nodes: its tables, with the nodes holding a complete
// copy of each, and the nodes holding any copy of it.
struct TagCopies {
  std::map<TableKey, std::set<std::string>> complete_on;
  std::set<std::string> nodes_with;
};

ClusterTag SummarizeTag(const std::string& tag, const TagCopies& copies,
                        const std::vector<ClusterNode>& nodes) {
  ClusterTag row;
  row.tag = tag;
  row.nodes_total = static_cast<int>(nodes.size());
  row.tables = static_cast<int>(copies.complete_on.size());
  for (const ClusterNode& node : nodes) {
    bool complete = true;
    for (const auto& [table, complete_on] : copies.complete_on) {
      if (complete_on.count(node.node)) continue;
      complete = false;
      row.missing.push_back(MissingTable{node.node, table.first, table.second});
    }
    if (complete) ++row.nodes_complete;
    if (!copies.nodes_with.count(node.node)) row.nodes_without.push_back(node.node);
  }
  return row;
}

// The root's entries that are node destinations, sorted; the others go to
// the view's warnings.
absl::StatusOr<std::vector<std::string>> NodeDirs(FileSystem& fs, const std::string& root,
                                                  ClusterView& view) {
  absl::StatusOr<std::vector<std::string>> names = fs.ListDir(root);
  if (!names.ok()) return names.status();
  std::sort(names->begin(), names->end());
  std::vector<std::string> nodes;
  for (const std::string& name : *names) {
    if (absl::StartsWith(name, ".")) continue;  // a NAS's .snapshot, ours
    const std::string path = JoinPath(root, name);
    if (!IsDirectoryOrLinkToOne(fs, path)) continue;
    if (fs.Stat(StateDir(path).marker).ok()) {
      nodes.push_back(name);
    } else {
      view.warnings.push_back(absl::StrCat("skipping ", path, ": not a snaphaven destination (no ",
                                           StateDir(path).marker, ")"));
    }
  }
  return nodes;
}

}  // namespace

void FindNewestSegment(FileSystem& fs, const std::string& destination, absl::Time now,
                       ClusterNode& node) {
  const std::string archive = JoinPath(destination, std::string(kCommitlogArchiveDirName));
  absl::StatusOr<std::vector<std::string>> names = fs.ListDir(archive);
  if (!names.ok()) return;
  int64_t newest_ns = 0;
  for (const std::string& name : *names) {
    if (commitlog::ParseSegmentName(name).kind != commitlog::FileKind::kSegment) continue;
    absl::StatusOr<FileStat> st = fs.Stat(JoinPath(archive, name));
    if (!st.ok() || st->type != FileType::kRegular) continue;
    if (node.newest_segment.has_value() &&
        std::make_pair(st->mtime_ns, name) < std::make_pair(newest_ns, *node.newest_segment)) {
      continue;
    }
    newest_ns = st->mtime_ns;
    node.newest_segment = name;
  }
  if (!node.newest_segment.has_value()) return;
  const absl::Duration age = now - absl::FromUnixNanos(newest_ns);
  node.newest_segment_age_seconds = std::max<int64_t>(0, absl::ToInt64Seconds(age));
}

absl::StatusOr<ClusterView> ListCluster(FileSystem& fs, const std::string& root,
                                        const std::vector<std::string>& keyspaces,
                                        absl::Time now) {
  ClusterView view;
  absl::StatusOr<std::vector<std::string>> names = NodeDirs(fs, root, view);
  if (!names.ok()) return names.status();
  std::map<std::string, TagCopies> tags;
  for (const std::string& name : *names) {
    const std::string dest = JoinPath(root, name);
    absl::StatusOr<std::vector<SnapshotCopy>> copies = NodeCopies(fs, dest, keyspaces);
    if (!copies.ok()) {
      view.errors.push_back(absl::StrCat("leaving out node ", name, ": cannot read its manifest: ",
                                         copies.status().message()));
      continue;
    }
    for (const SnapshotCopy& copy : *copies) {
      TagCopies& tag = tags[copy.tag];
      std::set<std::string>& complete_on = tag.complete_on[{copy.keyspace, copy.table}];
      if (copy.complete) complete_on.insert(name);
      tag.nodes_with.insert(name);
    }
    ClusterNode node;
    node.node = name;
    FindNewestSegment(fs, dest, now, node);
    view.nodes.push_back(std::move(node));
  }
  for (const auto& [tag, copies] : tags) view.tags.push_back(SummarizeTag(tag, copies, view.nodes));
  return view;
}

namespace {

// "3h2m5s": whole seconds.
std::string FormatAge(int64_t seconds) {
  return absl::FormatDuration(absl::Seconds(seconds));
}

// The line under a tag for each incomplete node.
std::string MissingLines(const ClusterTag& row) {
  std::map<std::string, std::vector<std::string>> by_node;
  for (const MissingTable& m : row.missing) {
    by_node[m.node].push_back(absl::StrCat(m.keyspace, "/", m.table));
  }
  std::string out;
  for (const auto& [node, tables] : by_node) {
    const bool without =
        std::count(row.nodes_without.begin(), row.nodes_without.end(), node) > 0;
    absl::StrAppend(&out, "    ", node,
                    without ? absl::StrCat(" has no copy of this tag: misses all ", tables.size(),
                                           " tables")
                            : absl::StrCat(" misses ", tables.size(), " of ", row.tables,
                                           " tables: ", absl::StrJoin(tables, ", ")),
                    "\n");
  }
  return out;
}

}  // namespace

std::string FormatClusterTable(const ClusterView& view) {
  size_t tag_width = 3;
  for (const ClusterTag& row : view.tags) tag_width = std::max(tag_width, row.tag.size());
  std::string out = absl::StrFormat("%-*s  %s\n", tag_width, "TAG", "COMPLETE ON");
  for (const ClusterTag& row : view.tags) {
    absl::StrAppend(&out, absl::StrFormat("%-*s  %d of %d nodes\n", tag_width, row.tag,
                                          row.nodes_complete, row.nodes_total),
                    MissingLines(row));
  }
  size_t node_width = 4, segment_width = 14;
  for (const ClusterNode& node : view.nodes) {
    node_width = std::max(node_width, node.node.size());
    segment_width = std::max(segment_width, node.newest_segment.value_or("none").size());
  }
  absl::StrAppend(&out, "\n", absl::StrFormat("%-*s  %-*s  %s\n", node_width, "NODE",
                                               segment_width, "NEWEST SEGMENT", "AGE"));
  for (const ClusterNode& node : view.nodes) {
    absl::StrAppend(&out, absl::StrFormat("%-*s  %-*s  %s\n", node_width, node.node,
                                          segment_width, node.newest_segment.value_or("none"),
                                          node.newest_segment_age_seconds.has_value()
                                              ? FormatAge(*node.newest_segment_age_seconds)
                                              : "-"));
  }
  return out;
}

std::string FormatClusterJson(const ClusterView& view) {
  nlohmann::json tags = nlohmann::json::array();
  for (const ClusterTag& row : view.tags) {
    nlohmann::json missing = nlohmann::json::array();
    for (const MissingTable& m : row.missing) {
      missing.push_back({{"node", m.node}, {"keyspace", m.keyspace}, {"table", m.table}});
    }
    tags.push_back({{"tag", row.tag},
                    {"nodes_complete", row.nodes_complete},
                    {"nodes_total", row.nodes_total},
                    {"missing", std::move(missing)}});
  }
  nlohmann::json nodes = nlohmann::json::array();
  for (const ClusterNode& node : view.nodes) {
    nodes.push_back(
        {{"node", node.node},
         {"newest_segment", node.newest_segment.has_value() ? nlohmann::json(*node.newest_segment)
                                                            : nlohmann::json(nullptr)},
         {"newest_segment_age_seconds", node.newest_segment_age_seconds.has_value()
                                            ? nlohmann::json(*node.newest_segment_age_seconds)
                                            : nlohmann::json(nullptr)}});
  }
  nlohmann::json out = {{"tags", std::move(tags)}, {"nodes", std::move(nodes)}};
  // Invalid UTF-8 in names is replaced rather than thrown on.
  return out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace snaphaven
