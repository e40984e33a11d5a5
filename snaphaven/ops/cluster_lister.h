// --list --cluster: one view of a cluster's copies, from a root holding one
// destination per node (what `-s /nas/cassandra/%h` makes on every node).
// Reads only the destinations (their identity marker, manifest, copies of
// manifest.json and commitlog archive), never a node's data.
//
// Per snapshot tag: on how many nodes it is complete, of how many, and per
// incomplete node which tables are missing; per node, its newest archived
// commitlog segment and that segment's age.
//
// What "missing" means, when nodes hold different tables:
// - A node is a directory of the root holding `.snaphaven/id`. Other
//   directories are skipped with a warning (hidden ones, such as a NAS's
//   `.snapshot`, silently); a node whose manifest cannot be read is left
//   out with an error (the listing then exits 1).
// - The tables of a tag are the union, over every node, of the table
//   directories ("<keyspace>/<table>-<id>", as --list names them) that hold
//   a copy of that tag, complete or not (restricted to the keyspaces named,
//   if any).
// - A node misses a table of the tag when it holds no complete copy of it
//   (complete by IsCompleteSnapshotCopy, snapshot_copy.h: the rule --list
//   uses): no copy at all, or a partial one. A node that lacks the tag
//   altogether misses every table of it. Tables are compared by directory,
//   table id included: nodes that disagree on a table's id (a schema
//   disagreement) each miss the other's.
// - A tag is complete on a node when the node misses none of its tables;
//   nodes_total counts every node, with or without the tag.

#ifndef SNAPHAVEN_CLUSTER_LISTER_H_
#define SNAPHAVEN_CLUSTER_LISTER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/optional.h"
#include "snaphaven/storage/file_system.h"

namespace snaphaven {

struct MissingTable {
  std::string node, keyspace, table;  // table: the table directory
};

struct ClusterTag {
  std::string tag;
  int nodes_complete = 0;
  int nodes_total = 0;
  std::vector<MissingTable> missing;  // by node, keyspace, table
  int tables = 0;                     // the tag's tables (see above)
  // Nodes without any copy of the tag (each misses all `tables`).
  std::vector<std::string> nodes_without;
};

struct ClusterNode {
  std::string node;  // its directory's name under the root
  // The newest archived segment (by mtime) in <dest>/commitlog_archive/,
  // and how long ago it was last written; nullopt when there is none.
  absl::optional<std::string> newest_segment;
  absl::optional<int64_t> newest_segment_age_seconds;
};

struct ClusterView {
  std::vector<ClusterTag> tags;    // sorted by tag
  std::vector<ClusterNode> nodes;  // sorted by node
  std::vector<std::string> warnings;  // directories skipped
  std::vector<std::string> errors;    // nodes left out
};

// `keyspaces` empty: every keyspace. Fails only when `root` cannot be
// listed.
absl::StatusOr<ClusterView> ListCluster(FileSystem& fs, const std::string& root,
                                        const std::vector<std::string>& keyspaces,
                                        absl::Time now);

// The newest segment of a destination's commitlog archive (see
// ClusterNode): files that commitlog::ParseSegmentName calls kSegment.
void FindNewestSegment(FileSystem& fs, const std::string& destination, absl::Time now,
                       ClusterNode& node);

// Text for people: one row per tag, a line per incomplete node naming its
// missing tables, then one row per node with its newest segment's age.
std::string FormatClusterTable(const ClusterView& view);
// JSON for scripts: {"tags": [{"tag", "nodes_complete", "nodes_total",
// "missing": [{"node", "keyspace", "table"}]}], "nodes": [{"node",
// "newest_segment", "newest_segment_age_seconds"}]} (null when none).
std::string FormatClusterJson(const ClusterView& view);

}  // namespace snaphaven

#endif  // SNAPHAVEN_CLUSTER_LISTER_H_
