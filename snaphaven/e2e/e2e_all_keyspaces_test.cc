// --all_keyspaces, end to end: every keyspace directory of the data roots
// (system keyspaces included) is copied, and nothing else in them; every
// mode (cycles, move mode, --verify, --fullsync, retention, --list,
// --restore) covers every keyspace; keyspaces created later are found by
// the next cycle. On generated trees and on the real 2.1 and 2.2 data roots
// of Cassandra's own test data.

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "snaphaven/testing/e2e_util.h"
#include "tools/tree_generator.h"

namespace snaphaven {
namespace {

using testing::DestinationFiles;
using testing::DiffTrees;
using testing::FileRecord;
using testing::ReadTree;
using testing::RunResult;
using testing::RunSnaphaven;
using testing::SnapshotFiles;

// The first directory of every path.
std::set<std::string> TopDirs(const std::map<std::string, FileRecord>& files) {
  std::set<std::string> out;
  for (const auto& [path, record] : files) out.insert(path.substr(0, path.find('/')));
  return out;
}

// The files of `files` whose first directory is not in `drop`.
std::map<std::string, FileRecord> Without(const std::map<std::string, FileRecord>& files,
                                          const std::set<std::string>& drop) {
  std::map<std::string, FileRecord> out;
  for (const auto& [path, record] : files) {
    if (!drop.count(path.substr(0, path.find('/')))) out.emplace(path, record);
  }
  return out;
}

void MakeDirs(const std::string& path) {
  ASSERT_EQ(std::system(absl::StrCat("mkdir -p '", path, "'").c_str()), 0) << path;
}

// Something below `dir` that would be copied if `dir` were taken for a
// keyspace: a table directory with a complete snapshot of no sstables.
void PlantLookalikeTable(const std::string& dir) {
  const std::string tag = dir + "/t-0123456789abcdef0123456789abcdef/snapshots/s1";
  MakeDirs(tag);
  testing::WriteFileOrDie(tag + "/manifest.json", "{\"files\":[]}\n");
}

class AllKeyspacesTest : public testing::CassandraTreeTest {
 protected:
  // system, ks1 and ks2, tags s1 and s2, and beside them what a data root
  // also holds: lost+found, Cassandra's hints/ nested in it, a file.
  void GenerateNode() {
    tools::TreeSpec spec = Spec(2, 1, {"s1", "s2"}, 4096);
    spec.keyspaces = {"system", "ks1", "ks2"};
    Generate(spec);
    PlantLookalikeTable(data_ + "/lost+found");
    PlantLookalikeTable(data_ + "/hints");
    testing::WriteFileOrDie(data_ + "/README", "not a keyspace\n");
    // The home also holds Cassandra's other directories.
    MakeDirs(home_ + "/commitlog");
    PlantLookalikeTable(home_ + "/saved_caches");
  }

  RunResult RunAll(std::vector<std::string> extra = {}) { return Run(extra, {"--all_keyspaces"}); }

  // What an --all_keyspaces cycle must have copied: the snapshots of the
  // keyspaces only.
  std::map<std::string, FileRecord> KeyspaceSnapshots() {
    return Without(SnapshotFiles(data_), {"lost+found", "hints"});
  }
};

TEST_F(AllKeyspacesTest, CopiesEveryKeyspaceWithSystemAndNothingElse) {
  GenerateNode();
  RunResult r = RunAll({"-v", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(DiffTrees(KeyspaceSnapshots(), DestinationFiles(dest_)), "");
  EXPECT_EQ(TopDirs(DestinationFiles(dest_)), (std::set<std::string>{"ks1", "ks2", "system"}));
  // The home was given: its data/ is the data root (it holds system).
  for (const char* name : {"lost+found", "hints"}) {
    EXPECT_TRUE(absl::StrContains(r.err, absl::StrCat("not a keyspace")) &&
                absl::StrContains(r.err, absl::StrCat(data_, "/", name)))
        << name << ": " << r.err;
  }
}

TEST_F(AllKeyspacesTest, KeyspacesAndAllKeyspacesTogetherOrNeitherExitTwo) {
  GenerateNode();
  auto before = ReadTree(dir_);
  for (const auto& [args, culprit] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"-d", home_, "-s", dest_, "--all_keyspaces", "ks1"}, "not both"},
           {{"-d", home_, "-s", dest_, "--list", "--all_keyspaces", "ks1"}, "not both"},
           {{"-d", home_, "-s", dest_}, "no keyspace given"},
           {{"-d", dir_ + "/empty", "-s", dest_, "--all_keyspaces"}, "no keyspace directory"}}) {
    if (absl::EndsWith(args[1], "/empty")) {
      MakeDirs(dir_ + "/empty/lost+found");
      before = ReadTree(dir_);
    }
    RunResult r = RunSnaphaven(args);
    EXPECT_EQ(r.exit_code, 2) << culprit;
    std::vector<std::string> lines = absl::StrSplit(r.err, '\n', absl::SkipEmpty());
    ASSERT_GE(lines.size(), 1u);
    EXPECT_TRUE(absl::StartsWith(lines[0], "snaphaven: ") && absl::StrContains(lines[0], culprit))
        << lines[0];
  }
  EXPECT_EQ(DiffTrees(before, ReadTree(dir_)), "") << "bad input changed something";
}

TEST(AllKeyspacesHelp, HelpNamesBothFlagsAndTheirUsage) {
  RunResult r = RunSnaphaven({"--help"});
  ASSERT_EQ(r.exit_code, 0);
  for (const char* text : {"{keyspace [keyspace ...] | --all_keyspaces}", "--all_keyspaces  (default: false)",
                           "--list --cluster [--json] [keyspace ...]", "--cluster  (default: false)"}) {
    EXPECT_TRUE(absl::StrContains(r.out, text)) << text << "\n" << r.out;
  }
}

TEST_F(AllKeyspacesTest, LoopModeFindsAKeyspaceCreatedLater) {
  GenerateNode();
  const std::string log = dir_ + "/log";
  pid_t pid = testing::StartSnaphaven(
      {"-d", home_, "-s", dest_, "--interval", "1s", "--all_keyspaces"}, log);
  ASSERT_TRUE(testing::WaitUntil(
      [&] { return absl::StrContains(testing::ReadFileIfExists(log), "cycle done"); },
      absl::Seconds(30)));
  tools::TreeSpec spec = Spec(1, 1, {"later"}, 4096);
  spec.keyspaces = {"ks_new"};
  spec.seed = 9;
  ASSERT_TRUE(tools::GenerateTree(data_, spec).ok());
  const bool copied = testing::WaitUntil(
      [&] { return DiffTrees(KeyspaceSnapshots(), DestinationFiles(dest_)).empty(); },
      absl::Seconds(30));
  ASSERT_EQ(kill(pid, SIGTERM), 0);
  EXPECT_EQ(testing::WaitForExit(pid, absl::Seconds(30)), 0);
  EXPECT_TRUE(copied) << DiffTrees(KeyspaceSnapshots(), DestinationFiles(dest_));
}

// A data root emptied under a running loop (an unmounted disk leaves an
// empty mount point): each cycle fails, naming it, and prunes nothing.
TEST_F(AllKeyspacesTest, AnEmptiedDataRootFailsTheCycleAndPrunesNothing) {
  GenerateNode();
  const std::string log = dir_ + "/log";
  pid_t pid = testing::StartSnaphaven({"-d", home_, "-s", dest_, "--interval", "1s",
                                       "--all_keyspaces", "--sync-sstables", "--prune_after",
                                       "0s"},
                                      log);
  ASSERT_TRUE(testing::WaitUntil(
      [&] { return absl::StrContains(testing::ReadFileIfExists(log), "cycle done"); },
      absl::Seconds(30)));
  const auto before = DestinationFiles(dest_);
  ASSERT_EQ(std::system(absl::StrCat("rm -rf '", data_, "'/*").c_str()), 0);
  const bool said = testing::WaitUntil(
      [&] {
        const std::string text = testing::ReadFileIfExists(log);
        const size_t at = text.find(" E cycle failed: ");
        return at != std::string::npos &&
               text.find("; --all_keyspaces: no keyspace directory in " + data_, at) !=
                   std::string::npos;
      },
      absl::Seconds(30));
  ASSERT_EQ(kill(pid, SIGTERM), 0);
  EXPECT_EQ(testing::WaitForExit(pid, absl::Seconds(30)), 0);
  EXPECT_TRUE(said) << testing::ReadFileIfExists(log);
  EXPECT_EQ(DiffTrees(before, DestinationFiles(dest_)), "");
}

TEST_F(AllKeyspacesTest, MoveModeMovesTheSystemKeyspacesSnapshotsToo) {
  GenerateNode();
  const auto want = KeyspaceSnapshots();
  RunResult r = RunAll({"--move-snapshots", "--settle_time", "0s"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(DiffTrees(want, DestinationFiles(dest_)), "");
  // Moved at the source: the keyspaces' snapshots, not the lookalikes.
  EXPECT_EQ(TopDirs(SnapshotFiles(data_)), (std::set<std::string>{"hints", "lost+found"}));
}

TEST_F(AllKeyspacesTest, VerifyCoversAKeyspaceGoneFromTheSource) {
  GenerateNode();
  ASSERT_EQ(RunAll().exit_code, 0);
  // ks2 dropped at the source (its directory gone): its copies stay, and
  // --verify still reads them.
  ASSERT_EQ(std::system(absl::StrCat("rm -rf '", data_, "/ks2'").c_str()), 0);
  std::string flipped;
  for (const auto& [path, record] : DestinationFiles(dest_)) {
    if (absl::StartsWith(path, "ks2/") && absl::EndsWith(path, "Data.db")) flipped = path;
  }
  ASSERT_FALSE(flipped.empty());
  testing::FlipByteKeepingMtime(dest_ + "/" + flipped, 10);
  RunResult r = RunAll({"--verify"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, flipped)) << r.err;
  // --fullsync with it: the other keyspaces are checked against the source
  // and whole; the rest is as it was.
  r = RunAll({"--fullsync"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(AllKeyspacesTest, RetentionCoversAKeyspaceGoneFromTheSource) {
  GenerateNode();
  ASSERT_EQ(RunAll().exit_code, 0);
  ASSERT_EQ(std::system(absl::StrCat("rm -rf '", data_, "/ks2'").c_str()), 0);
  RunResult r = RunAll({"--keep_snapshots", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // ks2's snapshots are gone from the source: only the newest copy stays.
  std::set<std::string> ks2_tags;
  for (const auto& [path, record] : DestinationFiles(dest_)) {
    if (!absl::StartsWith(path, "ks2/")) continue;
    std::vector<std::string> parts = absl::StrSplit(path, '/');
    ks2_tags.insert(parts[3]);
  }
  EXPECT_EQ(ks2_tags.size(), 1u);
  // The others are still at the source: kept whole.
  EXPECT_EQ(DiffTrees(KeyspaceSnapshots(), Without(DestinationFiles(dest_), {"ks2"})), "");
}

// The live mirror: a table dropped in a keyspace still there is pruned as
// ever; a keyspace whose directory is gone altogether keeps its mirror.
TEST_F(AllKeyspacesTest, LiveMirrorOfAKeyspaceGoneIsKeptOfATableGonePruned) {
  GenerateNode();
  const std::vector<std::string> live = {"--sync-sstables", "--prune_after", "0s"};
  ASSERT_EQ(RunAll(live).exit_code, 0);
  auto live_files = [&](const std::string& keyspace) {
    int n = 0;
    for (const auto& [path, record] : DestinationFiles(dest_)) {
      n += absl::StartsWith(path, keyspace + "/") && !absl::StrContains(path, "/snapshots/");
    }
    return n;
  };
  const int ks2_live = live_files("ks2");
  ASSERT_GT(ks2_live, 0);
  ASSERT_GT(live_files("ks1"), 0);
  ASSERT_EQ(std::system(absl::StrCat("rm -rf '", data_, "/ks2' '", data_, "'/ks1/*").c_str()), 0);
  RunResult r = RunAll(live);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = RunAll(live);  // pruned once gone --prune_after (0s) by a cycle's clock
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(live_files("ks1"), 0);
  EXPECT_EQ(live_files("ks2"), ks2_live);
}

TEST_F(AllKeyspacesTest, ListAndRestoreCoverEveryKeyspace) {
  GenerateNode();
  ASSERT_EQ(RunAll().exit_code, 0);
  RunResult r = RunSnaphaven({"-s", dest_, "--list", "--json", "--all_keyspaces"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::set<std::string> listed;
  for (const auto& copy : nlohmann::json::parse(r.out)) {
    listed.insert(copy["keyspace"].get<std::string>());
    EXPECT_TRUE(copy["complete"].get<bool>()) << copy.dump();
  }
  EXPECT_EQ(listed, (std::set<std::string>{"ks1", "ks2", "system"}));
  const std::string restore_to = dir_ + "/restore";
  r = RunSnaphaven(
      {"-s", dest_, "--restore", "s1", "--restore_to", restore_to, "--all_keyspaces"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(TopDirs(ReadTree(restore_to)), (std::set<std::string>{"ks1", "ks2", "system"}));
}

// Cassandra's own 2.1 and 2.2 data roots (system keyspaces, real tmp- and
// tmplink- files, the 2.2 node's own snapshots of system tables), as two
// data roots of one node, each inside a home beside commitlog/.
TEST_F(AllKeyspacesTest, RealTwoOneAndTwoTwoDataRoots) {
  const std::string fixtures = testing::CassandraTestDataDir();
  if (fixtures.empty()) GTEST_SKIP() << "cassandra-test-data fixtures absent";
  std::vector<std::string> homes;
  for (const char* version : {"2.1", "2.2"}) {
    const std::string home = absl::StrCat(dir_, "/home", version);
    MakeDirs(home + "/commitlog");
    ASSERT_EQ(std::system(absl::StrCat("cp -R '", fixtures, "/migration-sstables/", version,
                                       "' '", home, "/data' && chmod -R u+w '", home, "'")
                              .c_str()),
              0);
    PlantLookalikeTable(home + "/data/lost+found");
    homes.push_back(home);
  }
  // A snapshot of each node's user table, as 2.1 and 2.2 take one.
  for (const auto& [table, data_db] : std::vector<std::pair<std::string, std::string>>{
           {homes[0] + "/data/test/foo-0094ac203e7411e59149ef9f87394ca6", "test-foo-ka-3-Data.db"},
           {homes[1] + "/data/keyspace1/test-dfcc85801bc811e5aa694b06169f4ffa",
            "la-1-big-Data.db"}}) {
    const std::string prefix = data_db.substr(0, data_db.size() - strlen("Data.db"));
    MakeDirs(table + "/snapshots/whole");
    for (const auto& [name, record] : ReadTree(table)) {
      if (absl::StartsWith(name, prefix)) {
        ASSERT_EQ(link((table + "/" + name).c_str(), (table + "/snapshots/whole/" + name).c_str()),
                  0);
      }
    }
    testing::WriteFileOrDie(table + "/snapshots/whole/manifest.json",
                            absl::StrCat("{\"files\":[\"", data_db, "\"]}\n"));
  }
  RunResult r = RunSnaphaven({"-d", homes[0] + "," + homes[1], "-s", dest_, "--all_keyspaces",
                              "--sync-sstables"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto copied = DestinationFiles(dest_);
  EXPECT_EQ(TopDirs(copied), (std::set<std::string>{"keyspace1", "system", "test"}));
  auto want = Without(SnapshotFiles(homes[0] + "/data"), {"lost+found"});
  for (const auto& [path, record] : Without(SnapshotFiles(homes[1] + "/data"), {"lost+found"})) {
    want.emplace(path, record);
  }
  EXPECT_EQ(DiffTrees(want, testing::FilesContaining(copied, "/snapshots/")), "");
  // The system tables' live sstables came too (system.local would).
  EXPECT_GT(testing::FilesContaining(copied, "system/compactions_in_progress-").size(), 3u);
  r = RunSnaphaven({"-s", dest_, "--restore", "whole", "--restore_to", dir_ + "/restore",
                    "--all_keyspaces"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(TopDirs(ReadTree(dir_ + "/restore")), (std::set<std::string>{"keyspace1", "test"}));
}

}  // namespace
}  // namespace snaphaven
