#include "snaphaven/state/node_record.h"

#include <gtest/gtest.h>

#include <string>

#include "absl/strings/match.h"

namespace snaphaven {
namespace {

NodeRecord Mine(std::vector<std::string> roots, std::string host = "db1") {
  return NodeRecord{std::move(host), std::move(roots)};
}

NodeDecision Decide(const std::string& recorded, const NodeRecord& mine, bool adopt = false) {
  return DecideNodeRecord(recorded, mine, "/nas/db1", adopt);
}

TEST(NodeRecordTest, ParsesAndFormatsTheRecord) {
  absl::StatusOr<NodeRecord> r = ParseNodeRecord("host db1\nroots /a/data,/b/data\n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->host, "db1");
  EXPECT_EQ(r->data_roots, (std::vector<std::string>{"/a/data", "/b/data"}));
  EXPECT_EQ(FormatNodeRecord(*r), "host db1\nroots /a/data,/b/data\n");
  EXPECT_EQ(FormatNodeRecord(Mine({})), "host db1\n");
}

TEST(NodeRecordTest, ParsingIgnoresUnknownLinesBlanksAndCarriageReturns) {
  absl::StatusOr<NodeRecord> r =
      ParseNodeRecord("# written by snaphaven\r\nversion 7\r\n  host  db1 \r\n\r\nroots /a, ,/b,\r\n"
                      "host other\nroots /c\n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->host, "db1");
  EXPECT_EQ(r->data_roots, (std::vector<std::string>{"/a", "/b"}));
}

TEST(NodeRecordTest, ParsingRejectsARecordWithoutAHost) {
  for (const char* text : {"", "\n", "roots /a\n", "host \n", "\x01\xff garbage", "hostdb1\n"}) {
    EXPECT_FALSE(ParseNodeRecord(text).ok()) << text;
  }
}

TEST(NodeRecordTest, NoRecordIsWritten) {
  NodeDecision d = DecideNodeRecord(absl::nullopt, Mine({"/a"}), "/nas/db1", false);
  EXPECT_EQ(d.action, NodeAction::kWrite);
  EXPECT_EQ(d.record, "host db1\nroots /a\n");
  EXPECT_EQ(d.warning, "");
}

TEST(NodeRecordTest, SameHostAndRootsWritesNothing) {
  EXPECT_EQ(Decide("host db1\nroots /a,/b\n", Mine({"/a", "/b"})).action, NodeAction::kKeep);
  // The order of -d does not matter, nor do unknown lines.
  EXPECT_EQ(Decide("host db1\nroots /b,/a\nextra 1\n", Mine({"/a", "/b"})).action,
            NodeAction::kKeep);
  EXPECT_EQ(Decide("host db1\nroots /a\n", Mine({"/a"}), /*adopt=*/true).action, NodeAction::kKeep);
}

TEST(NodeRecordTest, DisjointRootsOnTheSameHostAreAnotherInstance) {
  NodeDecision d = Decide("host db1\nroots /a/data,/b/data\n", Mine({"/c/data"}));
  EXPECT_EQ(d.action, NodeAction::kRefuse);
  EXPECT_EQ(d.record, "");
  EXPECT_EQ(d.refusal,
            "destination /nas/db1 belongs to another Cassandra instance (host db1, data roots "
            "/a/data,/b/data); this run is host db1 with data roots /c/data: give each instance "
            "its own destination (-s /nas/%h-<instance>), or --adopt_destination to take it over");
  EXPECT_EQ(d.refusal.find('\n'), std::string::npos) << "one line";
}

TEST(NodeRecordTest, OverlappingRootsUpdateTheRecordWithAWarning) {
  // A disk added.
  NodeDecision d = Decide("host db1\nroots /a\n", Mine({"/a", "/c"}));
  EXPECT_EQ(d.action, NodeAction::kWrite);
  EXPECT_EQ(d.record, "host db1\nroots /a,/c\n");
  EXPECT_TRUE(absl::StrContains(d.warning, "recorded with data roots /a; recording /a,/c")) << d.warning;
  EXPECT_TRUE(absl::StrContains(d.warning, "added /c")) << d.warning;
  // One added, one removed.
  d = Decide("host db1\nroots /a,/b\n", Mine({"/b", "/c"}));
  EXPECT_EQ(d.action, NodeAction::kWrite);
  EXPECT_EQ(d.record, "host db1\nroots /b,/c\n");
  EXPECT_TRUE(absl::StrContains(d.warning, "added /c, removed /a")) << d.warning;
  EXPECT_TRUE(absl::StrContains(d.warning, "/a,/b")) << d.warning;
  // A disk removed.
  d = Decide("host db1\nroots /a,/b\n", Mine({"/b"}));
  EXPECT_EQ(d.action, NodeAction::kWrite);
  EXPECT_EQ(d.record, "host db1\nroots /b\n");
  EXPECT_TRUE(absl::StrContains(d.warning, "removed /a")) << d.warning;
}

TEST(NodeRecordTest, AnotherHostIsRefusedEvenWithTheSameRoots) {
  // A replaced node keeps its data roots: the host alone tells.
  NodeDecision d = Decide("host db2\nroots /a\n", Mine({"/a"}));
  EXPECT_EQ(d.action, NodeAction::kRefuse);
  EXPECT_TRUE(absl::StrContains(d.refusal, "(host db2, data roots /a)")) << d.refusal;
  EXPECT_TRUE(absl::StrContains(d.refusal, "this run is host db1 with data roots /a")) << d.refusal;
  EXPECT_EQ(Decide("host db2\nroots /x\n", Mine({"/a"})).action, NodeAction::kRefuse);
}

TEST(NodeRecordTest, AdoptRewritesTheRecordAndSaysWhat) {
  for (const char* recorded : {"host db2\nroots /a\n", "host db1\nroots /x\n", "host db2\n"}) {
    NodeDecision d = Decide(recorded, Mine({"/a"}), /*adopt=*/true);
    EXPECT_EQ(d.action, NodeAction::kWrite) << recorded;
    EXPECT_EQ(d.record, "host db1\nroots /a\n");
    EXPECT_TRUE(absl::StrContains(d.warning, "--adopt_destination")) << d.warning;
    EXPECT_TRUE(absl::StrContains(d.warning, "taking it over as host db1, data roots /a"))
        << d.warning;
  }
  NodeDecision d = Decide("host db1\nroots /x,/y\n", Mine({"/a"}), /*adopt=*/true);
  EXPECT_TRUE(absl::StrContains(d.warning, "(host db1, data roots /x,/y)")) << d.warning;
}

TEST(NodeRecordTest, AnOldRecordWithoutRootsComparesTheHostThenRecordsTheRoots) {
  NodeDecision d = Decide("host db1\n", Mine({"/a", "/b"}));
  EXPECT_EQ(d.action, NodeAction::kWrite);
  EXPECT_EQ(d.record, "host db1\nroots /a,/b\n");
  EXPECT_EQ(d.warning, "");
  d = Decide("host db2\n", Mine({"/a"}));
  EXPECT_EQ(d.action, NodeAction::kRefuse);
  EXPECT_TRUE(absl::StrContains(d.refusal, "(host db2, data roots not recorded)")) << d.refusal;
  EXPECT_TRUE(absl::StrContains(d.refusal, "this run is host db1")) << d.refusal;
}

TEST(NodeRecordTest, AGarbageRecordIsRefusedUnlessAdopted) {
  for (const char* garbage : {"", "\x7f" "ELF\x01\x02", "roots /a\n"}) {
    NodeDecision d = Decide(garbage, Mine({"/a"}));
    EXPECT_EQ(d.action, NodeAction::kRefuse) << garbage;
    EXPECT_TRUE(absl::StrContains(d.refusal, "unreadable node record")) << d.refusal;
    EXPECT_TRUE(absl::StrContains(d.refusal, "--adopt_destination")) << d.refusal;
    EXPECT_EQ(d.refusal.find('\n'), std::string::npos);
    d = Decide(garbage, Mine({"/a"}), /*adopt=*/true);
    EXPECT_EQ(d.action, NodeAction::kWrite);
    EXPECT_EQ(d.record, "host db1\nroots /a\n");
    EXPECT_FALSE(d.warning.empty());
  }
}

}  // namespace
}  // namespace snaphaven
