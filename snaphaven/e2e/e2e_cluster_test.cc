// --list --cluster, end to end: three nodes, each a generated Cassandra
// tree mirrored by snaphaven itself into ROOT/node<n> (what -s ROOT/%h
// makes), one of them missing a table of a snapshot, one with a partial
// copy, one without a tag; the text and the JSON views of them.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "snaphaven/testing/e2e_util.h"
#include "tools/tree_generator.h"

namespace snaphaven {
namespace {

using testing::ReadTree;
using testing::RunResult;
using testing::RunSnaphaven;

// Sets a file's mtime to `seconds_ago` before now.
void SetAge(const std::string& path, int64_t seconds_ago) {
  struct timespec times[2];
  clock_gettime(CLOCK_REALTIME, &times[0]);
  times[0].tv_sec -= seconds_ago;
  times[1] = times[0];
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, 0), 0) << path;
}

void Remove(const std::string& path) {
  ASSERT_EQ(std::system(absl::StrCat("rm -rf '", path, "'").c_str()), 0) << path;
}

class ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("cluster");
    root_ = dir_ + "/nas";
  }

  std::string Data(int node) { return absl::StrCat(dir_, "/node", node, "/data"); }
  std::string Dest(int node) { return absl::StrCat(root_, "/node", node); }

  // The one table directory of `keyspace` whose name starts with `table`.
  std::string TableDir(int node, const std::string& keyspace, const std::string& table) {
    for (const auto& [path, record] : ReadTree(Data(node) + "/" + keyspace)) {
      if (record.type == 'd' && absl::StartsWith(path, table + "-") &&
          path.find('/') == std::string::npos) {
        return path;
      }
    }
    ADD_FAILURE() << "no table " << table << " in node " << node;
    return "";
  }

  // Three nodes of one cluster (the same schema: the same table ids), with
  // tags s1 (everywhere, node2's copy of ks1.users partial), s2 (node3
  // lacks ks1.events in it) and s3 (node1 and node3 only), each mirrored by
  // a snaphaven run.
  void BuildCluster() {
    for (int node = 1; node <= 3; ++node) {
      tools::TreeSpec spec;
      spec.keyspaces = {"system", "ks1"};
      spec.tables_per_keyspace = 2;
      spec.sstables_per_table = 1;
      spec.snapshot_tags = {"s1", "s2"};
      spec.data_size = 2048;
      spec.seed = 5;
      ASSERT_TRUE(tools::GenerateTree(Data(node), spec).ok());
      if (node != 2) {
        ASSERT_TRUE(tools::TakeSnapshot(Data(node), {"system", "ks1"}, "s3").ok());
      }
    }
    users_ = TableDir(2, "ks1", "users");
    events_ = TableDir(3, "ks1", "events");
    // node2's s1 of ks1.users lost its Index.db before it was copied: a
    // partial copy. node3 took s2 without ks1.events.
    for (const auto& [name, record] : ReadTree(Data(2) + "/ks1/" + users_ + "/snapshots/s1")) {
      if (absl::EndsWith(name, "-Index.db")) {
        ASSERT_EQ(unlink((Data(2) + "/ks1/" + users_ + "/snapshots/s1/" + name).c_str()), 0);
      }
    }
    Remove(Data(3) + "/ks1/" + events_ + "/snapshots/s2");
    for (int node = 1; node <= 3; ++node) {
      RunResult r = RunSnaphaven({"-d", Data(node), "-s", Dest(node), "--all_keyspaces"});
      ASSERT_EQ(r.exit_code, 0) << r.err;
    }
  }

  // Archived segments in node1's destination, 300 and 60 seconds old (the
  // real 2.2 segments of Cassandra's test data when present), and newer
  // files that are no segments: a 4.0 CDC index, a partial copy, a note.
  void ArchiveSegments() {
    const std::string archive = Dest(1) + "/commitlog_archive";
    ASSERT_EQ(mkdir(archive.c_str(), 0755), 0);
    const std::string fixtures = testing::CassandraTestDataDir();
    for (const auto& [name, age] : std::vector<std::pair<std::string, int>>{
             {"CommitLog-5-1438186815314.log", 300},
             {"CommitLog-5-1438186815315.log", 60},
             {"CommitLog-7-1438186815316_cdc.idx", 5},
             {"CommitLog-5-1438186815316.log.partial", 5},
             {"notes.txt", 1}}) {
      const std::string real = fixtures + "/legacy-commitlog/2.2/" + name;
      testing::WriteFileOrDie(archive + "/" + name, !fixtures.empty() && absl::EndsWith(name, ".log")
                                                        ? testing::ReadFileOrDie(real)
                                                        : std::string("x"));
      SetAge(archive + "/" + name, age);
    }
  }

  std::string dir_, root_, users_, events_;
};

TEST_F(ClusterTest, JsonSaysWhereEachTagIsCompleteAndWhatIsMissing) {
  BuildCluster();
  ArchiveSegments();
  // Not a destination: skipped with a warning. The sources are gone: the
  // view reads only the destinations.
  ASSERT_EQ(mkdir((root_ + "/scratch").c_str(), 0755), 0);
  for (int node = 1; node <= 3; ++node) Remove(Data(node));
  RunResult r = RunSnaphaven({"--list", "--cluster", "--json", "-s", root_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "skipping " + root_ + "/scratch: not a snaphaven destination"))
      << r.err;
  nlohmann::json view = nlohmann::json::parse(r.out);
  std::map<std::string, nlohmann::json> tags;
  for (const auto& tag : view["tags"]) tags[tag["tag"].get<std::string>()] = tag;
  ASSERT_EQ(tags.size(), 3u) << r.out;
  using Missing = std::set<std::tuple<std::string, std::string, std::string>>;
  auto missing = [&](const std::string& tag) {
    Missing out;
    for (const auto& m : tags[tag]["missing"]) {
      out.emplace(m["node"].get<std::string>(), m["keyspace"].get<std::string>(),
                  m["table"].get<std::string>());
    }
    return out;
  };
  for (const auto& [tag, complete] : std::map<std::string, int>{{"s1", 2}, {"s2", 2}, {"s3", 2}}) {
    EXPECT_EQ(tags[tag]["nodes_complete"], complete) << tag;
    EXPECT_EQ(tags[tag]["nodes_total"], 3) << tag;
  }
  EXPECT_EQ(missing("s1"), (Missing{{"node2", "ks1", users_}}));
  EXPECT_EQ(missing("s2"), (Missing{{"node3", "ks1", events_}}));
  // node2 has no s3 at all: every table of it is missing there.
  Missing s3;
  for (const auto& [path, record] : ReadTree(Dest(1))) {
    std::vector<std::string> parts = absl::StrSplit(path, '/');
    if (parts.size() == 4 && parts[2] == "snapshots" && parts[3] == "s3") {
      s3.emplace("node2", parts[0], parts[1]);
    }
  }
  EXPECT_EQ(s3.size(), 4u);
  EXPECT_EQ(missing("s3"), s3);

  std::map<std::string, nlohmann::json> nodes;
  for (const auto& node : view["nodes"]) nodes[node["node"].get<std::string>()] = node;
  ASSERT_EQ(nodes.size(), 3u) << r.out;
  EXPECT_EQ(nodes["node1"]["newest_segment"], "CommitLog-5-1438186815315.log");
  const int64_t age = nodes["node1"]["newest_segment_age_seconds"].get<int64_t>();
  EXPECT_GE(age, 60);
  EXPECT_LT(age, 120);
  EXPECT_TRUE(nodes["node2"]["newest_segment"].is_null());
  EXPECT_TRUE(nodes["node2"]["newest_segment_age_seconds"].is_null());
}

TEST_F(ClusterTest, TextHasARowPerTagTheMissingTablesAndTheSegmentAges) {
  BuildCluster();
  ArchiveSegments();
  // -s as the nodes give it: the %h component is dropped.
  RunResult r = RunSnaphaven({"--list", "--cluster", "-s", root_ + "/%h"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> lines = absl::StrSplit(r.out, '\n');
  auto line_starting = [&](const std::string& start) -> std::string {
    for (const std::string& line : lines) {
      if (absl::StartsWith(line, start)) return line;
    }
    return "";
  };
  EXPECT_TRUE(absl::StrContains(line_starting("s1 "), "2 of 3 nodes")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "node2 misses 1 of 4 tables: ks1/" + users_)) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "node3 misses 1 of 4 tables: ks1/" + events_)) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "node2 has no copy of this tag: misses all 4 tables"))
      << r.out;
  EXPECT_TRUE(absl::StrContains(line_starting("node1 "), "CommitLog-5-1438186815315.log  1m"))
      << r.out;
  EXPECT_TRUE(absl::StrContains(line_starting("node3 "), "none")) << r.out;

  // Keyspaces named: only their tables count; system's s1 and s2 copies are
  // whole everywhere.
  r = RunSnaphaven({"--list", "--cluster", "--json", "-s", root_, "system"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // (Parsed into a local first: a range-for over a member of a temporary
  // reads freed memory.)
  const nlohmann::json named = nlohmann::json::parse(r.out);
  for (const auto& tag : named["tags"]) {
    EXPECT_EQ(tag["nodes_complete"], tag["tag"] == "s3" ? 2 : 3) << tag.dump();
  }
}

// Two nodes that disagree on the tables' ids (each created them on its
// own): each misses the other's table directories, in every tag.
TEST_F(ClusterTest, NodesThatDisagreeOnTableIdsEachMissTheOthers) {
  for (int node = 1; node <= 2; ++node) {
    tools::TreeSpec spec;
    spec.keyspaces = {"ks1"};
    spec.tables_per_keyspace = 1;
    spec.sstables_per_table = 1;
    spec.snapshot_tags = {"s1"};
    spec.data_size = 1024;
    spec.seed = node;
    ASSERT_TRUE(tools::GenerateTree(Data(node), spec).ok());
    RunResult r = RunSnaphaven({"-d", Data(node), "-s", Dest(node), "ks1"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  const std::string users1 = TableDir(1, "ks1", "users"), users2 = TableDir(2, "ks1", "users");
  ASSERT_NE(users1, users2);
  RunResult r = RunSnaphaven({"--list", "--cluster", "--json", "-s", root_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json tag = nlohmann::json::parse(r.out)["tags"][0];
  EXPECT_EQ(tag["nodes_complete"], 0) << r.out;
  EXPECT_EQ(tag["nodes_total"], 2) << r.out;
  std::set<std::pair<std::string, std::string>> missing;
  for (const auto& m : tag["missing"]) {
    missing.emplace(m["node"].get<std::string>(), m["table"].get<std::string>());
  }
  EXPECT_EQ(missing, (std::set<std::pair<std::string, std::string>>{{"node1", users2},
                                                                    {"node2", users1}}));
}

TEST_F(ClusterTest, BadRootsAndFlagsExitTwo) {
  for (const auto& [args, culprit] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"--list", "--cluster", "-s", dir_ + "/nowhere"}, "does not exist"},
           {{"--cluster", "-s", dir_, "ks1"}, "--cluster goes with --list"},
           {{"--list", "--cluster", "-s", dir_, "--all_keyspaces", "ks1"}, "not both"}}) {
    RunResult r = RunSnaphaven(args);
    EXPECT_EQ(r.exit_code, 2) << culprit;
    EXPECT_TRUE(absl::StartsWith(r.err, "snaphaven: ") && absl::StrContains(r.err, culprit))
        << r.err;
    EXPECT_EQ(r.out, "");
  }
}

TEST_F(ClusterTest, ANodeWhoseManifestCannotBeReadIsLeftOutWithExitOne) {
  BuildCluster();
  testing::WriteFileOrDie(Dest(2) + "/.snaphaven/manifest", "garbage\n");
  RunResult r = RunSnaphaven({"--list", "--cluster", "--json", "-s", root_});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "leaving out node node2")) << r.err;
  const nlohmann::json listed = nlohmann::json::parse(r.out);
  for (const auto& tag : listed["tags"]) EXPECT_EQ(tag["nodes_total"], 2);
}

}  // namespace
}  // namespace snaphaven
