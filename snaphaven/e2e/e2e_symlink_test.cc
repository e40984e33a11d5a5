// Symlinked keyspace and table directories (an operator moved a hot table to
// another disk and left a symlink; Cassandra follows it): the real binary
// follows them too, mirrors them under the link's name, and in move mode
// deletes only inside the target's snapshots/<tag>/. A link into the
// destination is refused; nothing deeper than a table dir is followed.

#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <map>
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
using testing::FilesContaining;
using testing::LiveFiles;
using testing::ReadTree;
using testing::RunResult;
using testing::SnapshotFiles;
using testing::WriteFileOrDie;

using Files = std::map<std::string, FileRecord>;

bool IsSymlink(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode);
}

class SymlinkTest : public testing::CassandraTreeTest {
 protected:
  void SetUp() override {
    CassandraTreeTest::SetUp();
    tools::TreeSpec spec;
    spec.keyspaces = {"ks1", "ks2"};
    spec.tables_per_keyspace = 2;
    spec.sstables_per_table = 2;
    spec.index_dirs_per_table = 1;
    spec.snapshot_tags = {"day1", "day2"};
    spec.data_size = 8000;
    Generate(spec);
    other_disk_ = dir_ + "/other-disk";
    ASSERT_EQ(mkdir(other_disk_.c_str(), 0755), 0);
  }

  // Moves `<data>/<rel>` to `<other disk>/<name>` and leaves a symlink;
  // returns the target.
  std::string MoveAway(const std::string& rel, const std::string& name) {
    const std::string target = other_disk_ + "/" + name;
    EXPECT_EQ(rename((data_ + "/" + rel).c_str(), target.c_str()), 0) << rel;
    EXPECT_EQ(symlink(target.c_str(), (data_ + "/" + rel).c_str()), 0) << rel;
    return target;
  }

  // The table dir names of a keyspace dir (following nothing).
  std::vector<std::string> Tables(const std::string& keyspace_dir) {
    std::vector<std::string> out;
    for (const auto& [path, record] : ReadTree(keyspace_dir)) {
      if (record.type == 'd' && !absl::StrContains(path, "/")) out.push_back(path);
    }
    return out;
  }

  std::string other_disk_;
};

// Everything a move mode run must leave of a moved directory: its live files
// untouched (same inodes, bytes, mtimes), its snapshots gone, the tag dirs
// removed, snapshots/ itself kept.
void ExpectMovedOut(const Files& live_before, const std::string& target, int table_depth) {
  Files after = ReadTree(target);
  for (const auto& [path, record] : after) {
    EXPECT_FALSE(record.type == 'f' && absl::StrContains(path, "snapshots/")) << path;
  }
  for (const auto& [path, record] : live_before) {
    auto it = after.find(path);
    ASSERT_NE(it, after.end()) << "live file gone: " << path;
    EXPECT_TRUE(it->second == record) << path;
    EXPECT_EQ(it->second.ino, record.ino) << path;
  }
  int snapshot_dirs = 0;
  for (const auto& [path, record] : after) {
    std::vector<std::string> parts = absl::StrSplit(path, '/');
    if (static_cast<int>(parts.size()) == table_depth + 1 && parts.back() == "snapshots") {
      ++snapshot_dirs;
      EXPECT_EQ(record.type, 'd') << path;
    }
    EXPECT_FALSE(static_cast<int>(parts.size()) > table_depth + 1 &&
                 parts[table_depth] == "snapshots")
        << "left in snapshots/: " << path;
  }
  EXPECT_GT(snapshot_dirs, 0) << "snapshots/ itself must stay";
}

TEST_F(SymlinkTest, SymlinkedKeyspaceIsFollowedAndMovedUnderTheLinkName) {
  const Files snapshots = SnapshotFiles(data_);
  const std::string target = MoveAway("ks1", "ks1-moved");
  Files live_before;
  for (const auto& [path, record] : ReadTree(target)) {
    if (record.type == 'f' && !absl::StrContains(path, "/snapshots/")) live_before[path] = record;
  }
  ASSERT_FALSE(live_before.empty());
  const Files ks2_live = LiveFiles(data_);

  RunResult r = Run({"--move-snapshots", "--settle_time=0s"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Mirrored under ks1/..., the link's name, not the target's.
  EXPECT_EQ(DiffTrees(snapshots, DestinationFiles(dest_)), "");
  EXPECT_TRUE(FilesContaining(DestinationFiles(dest_), "ks1-moved").empty());
  // The link is still a link; deletions happened inside the target's
  // snapshots/<tag>/ only.
  EXPECT_TRUE(IsSymlink(data_ + "/ks1"));
  ExpectMovedOut(live_before, target, 1);
  EXPECT_EQ(DiffTrees(ks2_live, LiveFiles(data_)), "");
  EXPECT_TRUE(SnapshotFiles(data_).empty());
}

TEST_F(SymlinkTest, SymlinkedTableDirIsFollowedAndMovedUnderTheLinkName) {
  const Files snapshots = SnapshotFiles(data_);
  const std::string table = Tables(data_ + "/ks2")[1];
  const std::string target = MoveAway("ks2/" + table, "hot-table");
  Files live_before;
  for (const auto& [path, record] : ReadTree(target)) {
    if (record.type == 'f' && !absl::StartsWith(path, "snapshots/")) live_before[path] = record;
  }
  ASSERT_FALSE(live_before.empty());
  const Files other_live = LiveFiles(data_);

  RunResult r = Run({"--move-snapshots", "--settle_time=0s"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(DiffTrees(snapshots, DestinationFiles(dest_)), "");
  EXPECT_FALSE(FilesContaining(DestinationFiles(dest_), "ks2/" + table + "/snapshots/day1/").empty());
  EXPECT_FALSE(absl::StrContains(r.err, "not following symlink")) << r.err;
  EXPECT_TRUE(IsSymlink(data_ + "/ks2/" + table));
  ExpectMovedOut(live_before, target, 0);
  EXPECT_EQ(DiffTrees(other_live, LiveFiles(data_)), "");
  EXPECT_TRUE(SnapshotFiles(data_).empty());
}

TEST_F(SymlinkTest, SymlinkedSnapshotsDirBelowALinkedTableIsStillNotFollowed) {
  const std::string table = Tables(data_ + "/ks1")[0];
  const std::string target = MoveAway("ks1/" + table, "hot-table");
  // Its snapshots/ moved once more, behind a second link: not followed.
  ASSERT_EQ(rename((target + "/snapshots").c_str(), (other_disk_ + "/snaps").c_str()), 0);
  ASSERT_EQ(symlink((other_disk_ + "/snaps").c_str(), (target + "/snapshots").c_str()), 0);
  const Files hidden = ReadTree(other_disk_ + "/snaps");
  RunResult r = Run({"--move-snapshots", "--settle_time=0s"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "not following symlink " + data_ + "/ks1/" + table +
                                           "/snapshots"))
      << r.err;
  EXPECT_TRUE(FilesContaining(DestinationFiles(dest_), "ks1/" + table + "/").empty());
  EXPECT_EQ(DiffTrees(hidden, ReadTree(other_disk_ + "/snaps")), "");
}

TEST_F(SymlinkTest, TableLinkIntoTheDestinationIsRefused) {
  // A first run fills the destination; then a table link points into it.
  ASSERT_EQ(Run({}).exit_code, 0);
  const std::string table = Tables(data_ + "/ks1")[0];
  const std::string inside = dest_ + "/ks1/" + table;
  ASSERT_EQ(symlink(inside.c_str(), (data_ + "/ks1/evil").c_str()), 0);
  const Files source_before = ReadTree(data_);
  const Files dest_before = DestinationFiles(dest_);

  RunResult r = Run({"--move-snapshots", "--settle_time=0s"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, data_ + "/ks1/evil")) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "inside the destination")) << r.err;
  // The destination lost nothing, gained no "evil" copy.
  Files dest_after = DestinationFiles(dest_);
  EXPECT_EQ(DiffTrees(dest_before, dest_after), "");
  EXPECT_TRUE(FilesContaining(dest_after, "ks1/evil").empty());
  // The rest of the source was moved as usual; the live files are intact.
  EXPECT_TRUE(SnapshotFiles(data_).empty());
  Files live_before;
  for (const auto& [path, record] : source_before) {
    std::vector<std::string> parts = absl::StrSplit(path, '/');
    if (record.type == 'f' && parts.size() >= 3 && parts[2] != "snapshots") {
      live_before[path] = record;
    }
  }
  EXPECT_EQ(DiffTrees(live_before, LiveFiles(data_)), "");
}

TEST_F(SymlinkTest, KeyspaceLinkIntoTheDestinationOrLoopingIsRefusedUpFront) {
  ASSERT_EQ(mkdir(dest_.c_str(), 0755), 0);
  ASSERT_EQ(mkdir((dest_ + "/ks3").c_str(), 0755), 0);
  ASSERT_EQ(symlink((dest_ + "/ks3").c_str(), (data_ + "/ks3").c_str()), 0);
  RunResult r = Run({}, {"ks1", "ks3"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, data_ + "/ks3")) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "inside the destination")) << r.err;

  ASSERT_EQ(symlink((data_ + "/ks4").c_str(), (data_ + "/ks4").c_str()), 0);
  r = Run({}, {"ks1", "ks4"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, data_ + "/ks4")) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "loop")) << r.err;
  EXPECT_TRUE(DestinationFiles(dest_).empty());
}

}  // namespace
}  // namespace snaphaven
