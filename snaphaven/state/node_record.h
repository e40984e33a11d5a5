// The Cassandra instance a destination belongs to: <dest>/.snaphaven/node.
//
// Contract: one destination per Cassandra instance. The record holds the
// host name and the data roots of the instance that writes the destination:
//
//   host <hostname>
//   roots <root1>,<root2>
//
// (unknown lines are ignored; a record without a roots line is an old one
// that holds the host only). A run compares itself with the record, before
// it changes anything at the destination:
//
// - no record: the destination is new to this rule; the record is written.
// - same host and the same set of data roots (in any order): nothing to
//   write (no write per cycle).
// - another host, or data roots sharing none with the recorded ones (another
//   instance on the same host): refused (exit 2) with one line naming both
//   hosts and both root lists, the destination untouched, unless
//   --adopt_destination: then the record is rewritten and a warning says
//   what was adopted. (A node replaced by another host keeps its roots, so a
//   differing host alone refuses.)
// - same host, roots that overlap but differ (a disk added or removed): the
//   record is updated, with a warning naming the old and the new roots.
// - same host, an old record without roots: the roots are recorded.
// - a record that names no host (garbage): refused as unreadable, unless
//   --adopt_destination.
//
// Pure logic: parse, compare, decide, format. The caller reads and writes
// the file (atomically) and never writes in a dry run.

#ifndef SNAPHAVEN_NODE_RECORD_H_
#define SNAPHAVEN_NODE_RECORD_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"

namespace snaphaven {

struct NodeRecord {
  std::string host;
  // In the order given (the run's -d order, or the recorded order); empty
  // for an old record without a roots line.
  std::vector<std::string> data_roots;
};

// Parses a record's text. Lines "host <name>" and "roots <a>,<b>,..." (the
// first of each counts); surrounding blanks, \r and unknown lines are
// ignored. InvalidArgument when no line names a host.
absl::StatusOr<NodeRecord> ParseNodeRecord(absl::string_view text);

// "host <name>\nroots <a>,<b>\n" (no roots line when there are no roots).
std::string FormatNodeRecord(const NodeRecord& record);

enum class NodeAction {
  kKeep,    // the record is this run's: write nothing
  kWrite,   // write `record` (atomically; never in a dry run)
  kRefuse,  // another instance's destination: exit 2, change nothing
};

struct NodeDecision {
  NodeAction action = NodeAction::kKeep;
  std::string record;   // kWrite: the new record's text
  std::string warning;  // kWrite: a WARNING to log (roots changed, adopted), or ""
  std::string note;     // kWrite: an INFO line when there is no warning, or ""
  std::string refusal;  // kRefuse: one line (without the "snaphaven: " prefix)
};

// Decides what a run (`mine`: its host and data roots) does with the
// destination's record: `recorded` is the record's text, absl::nullopt
// when there is none. `adopt`: --adopt_destination.
NodeDecision DecideNodeRecord(const absl::optional<std::string>& recorded, const NodeRecord& mine,
                              absl::string_view destination, bool adopt);

}  // namespace snaphaven

#endif  // SNAPHAVEN_NODE_RECORD_H_
