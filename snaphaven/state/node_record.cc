#include "snaphaven/state/node_record.h"

#include <set>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace snaphaven {
namespace {

std::string RootList(const std::vector<std::string>& roots) {
  return roots.empty() ? std::string("not recorded") : absl::StrJoin(roots, ",");
}

// "host X, data roots A,B"
std::string Describe(const NodeRecord& record) {
  return absl::StrCat("host ", record.host, ", data roots ", RootList(record.data_roots));
}

}  // namespace

absl::StatusOr<NodeRecord> ParseNodeRecord(absl::string_view text) {
  NodeRecord record;
  bool have_host = false, have_roots = false;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    absl::string_view value = line;
    if (!have_host && absl::ConsumePrefix(&value, "host ")) {
      value = absl::StripAsciiWhitespace(value);
      if (value.empty()) continue;
      record.host = std::string(value);
      have_host = true;
    } else if (!have_roots && absl::ConsumePrefix(&value, "roots ")) {
      for (absl::string_view root : absl::StrSplit(value, ',')) {
        root = absl::StripAsciiWhitespace(root);
        if (!root.empty()) record.data_roots.emplace_back(root);
      }
      have_roots = !record.data_roots.empty();
    }
  }
  if (!have_host) return absl::InvalidArgumentError("no \"host\" line");
  return record;
}

std::string FormatNodeRecord(const NodeRecord& record) {
  std::string text = absl::StrCat("host ", record.host, "\n");
  if (!record.data_roots.empty()) {
    absl::StrAppend(&text, "roots ", absl::StrJoin(record.data_roots, ","), "\n");
  }
  return text;
}

NodeDecision DecideNodeRecord(const absl::optional<std::string>& recorded, const NodeRecord& mine,
                              absl::string_view destination, bool adopt) {
  NodeDecision decision;
  const std::string mine_text = FormatNodeRecord(mine);
  auto write = [&](std::string warning, std::string note) {
    decision.action = NodeAction::kWrite;
    decision.record = mine_text;
    decision.warning = std::move(warning);
    decision.note = std::move(note);
    return decision;
  };
  if (!recorded.has_value()) {
    return write("", absl::StrCat("destination ", destination, " recorded as this instance's (",
                                  Describe(mine), ")"));
  }

  absl::StatusOr<NodeRecord> theirs = ParseNodeRecord(*recorded);
  if (!theirs.ok()) {
    if (adopt) {
      return write(absl::StrCat("--adopt_destination: destination ", destination,
                                " had an unreadable node record (", theirs.status().message(),
                                "); taking it over as ", Describe(mine)),
                   "");
    }
    decision.action = NodeAction::kRefuse;
    decision.refusal = absl::StrCat(
        "destination ", destination, " has an unreadable node record (",
        theirs.status().message(), "), so the Cassandra instance it belongs to is unknown; this run is ",
        Describe(mine), ": check the destination, then --adopt_destination to take it over");
    return decision;
  }

  const std::set<std::string> old_roots(theirs->data_roots.begin(), theirs->data_roots.end());
  const std::set<std::string> new_roots(mine.data_roots.begin(), mine.data_roots.end());
  bool shared = false;
  for (const std::string& root : new_roots) shared = shared || old_roots.count(root) > 0;
  const bool same_host = theirs->host == mine.host;
  // An old record (no roots) tells the host only.
  const bool other_instance = !same_host || (!old_roots.empty() && !shared);

  if (other_instance) {
    if (adopt) {
      return write(absl::StrCat("--adopt_destination: destination ", destination,
                                " belonged to another Cassandra instance (", Describe(*theirs),
                                "); taking it over as ", Describe(mine)),
                   "");
    }
    decision.action = NodeAction::kRefuse;
    decision.refusal = absl::StrCat(
        "destination ", destination, " belongs to another Cassandra instance (", Describe(*theirs),
        "); this run is host ", mine.host, " with data roots ", RootList(mine.data_roots),
        ": give each instance its own destination (-s /nas/%h-<instance>), or "
        "--adopt_destination to take it over");
    return decision;
  }
  if (old_roots.empty()) {
    return write("", absl::StrCat("destination ", destination, ": recording the data roots ",
                                  RootList(mine.data_roots), " of host ", mine.host));
  }
  if (old_roots == new_roots) return decision;  // kKeep

  std::vector<std::string> added, removed;
  for (const std::string& root : new_roots) {
    if (!old_roots.count(root)) added.push_back(root);
  }
  for (const std::string& root : old_roots) {
    if (!new_roots.count(root)) removed.push_back(root);
  }
  std::string change;
  if (!added.empty()) absl::StrAppend(&change, "added ", absl::StrJoin(added, ","));
  if (!removed.empty()) {
    absl::StrAppend(&change, change.empty() ? "" : ", ", "removed ", absl::StrJoin(removed, ","));
  }
  return write(absl::StrCat("the data roots of this instance changed (", change, "): destination ",
                            destination, " is recorded with data roots ",
                            RootList(theirs->data_roots), "; recording ",
                            RootList(mine.data_roots)),
               "");
}

}  // namespace snaphaven
