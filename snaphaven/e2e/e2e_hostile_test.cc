// Hostile input: symlinks anywhere in the source or planted in the
// destination, odd file names, very deep paths, and a crafted manifest.
// Nothing may be followed, nothing written outside the destination, and no
// name mangled into another.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "snaphaven/state/manifest_store.h"
#include "snaphaven/testing/e2e_util.h"

namespace snaphaven {
namespace {

using testing::DestinationFiles;
using testing::DiffTrees;
using testing::ReadTree;
using testing::RunResult;
using testing::SnapshotFiles;
using testing::WriteFileOrDie;

class HostileTest : public testing::CassandraTreeTest {
 protected:
  void SetUp() override {
    CassandraTreeTest::SetUp();
    Generate(Spec(2, 2, {"s1"}));
    outside_ = dir_ + "/outside";
    ASSERT_EQ(mkdir(outside_.c_str(), 0755), 0);
    WriteFileOrDie(outside_ + "/secret", "not Cassandra's");
    for (const auto& [path, record] : ReadTree(data_ + "/ks1")) {
      if (record.type == 'd' && path.find('/') == std::string::npos) {
        tables_.push_back(path);
      }
    }
    ASSERT_EQ(tables_.size(), 2u);
  }
  std::string outside_;
  std::vector<std::string> tables_;
};

// A symlinked table directory is part of the node's data (operators move a
// hot table to another disk): followed, as Cassandra follows it. A symlinked
// tag directory or snapshots/ directory is not.
TEST_F(HostileTest, SymlinkedTableDirIsFollowedSnapshotDirsAreNot) {
  ASSERT_EQ(system(("mkdir -p " + outside_ + "/fake/snapshots/s9 && cp " + outside_ +
                    "/secret " + outside_ + "/fake/snapshots/s9/nb-1-big-Data.db").c_str()),
            0);
  ASSERT_EQ(symlink((outside_ + "/fake").c_str(), (data_ + "/ks1/evil-0123").c_str()), 0);
  ASSERT_EQ(symlink((outside_ + "/fake/snapshots/s9").c_str(),
                    (data_ + "/ks1/" + tables_[0] + "/snapshots/s9").c_str()),
            0);
  ASSERT_EQ(system(("rm -rf " + data_ + "/ks1/" + tables_[1] + "/snapshots").c_str()), 0);
  ASSERT_EQ(symlink((outside_ + "/fake/snapshots").c_str(),
                    (data_ + "/ks1/" + tables_[1] + "/snapshots").c_str()),
            0);
  RunResult r = Run({"-v", "1"}, {"ks1"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "/ks1/evil-0123 -> ")) << r.err;
  for (const char* link : {"/snapshots/s9", "/" /* tables_[1]'s snapshots, below */}) {
    EXPECT_TRUE(absl::StrContains(r.err, absl::StrCat("not following symlink "))) << r.err;
    EXPECT_TRUE(absl::StrContains(r.err, link)) << link << "\n" << r.err;
  }
  EXPECT_TRUE(absl::StrContains(r.err, "/ks1/" + tables_[1] + "/snapshots")) << r.err;
  auto dest = DestinationFiles(dest_);
  EXPECT_EQ(dest["ks1/evil-0123/snapshots/s9/nb-1-big-Data.db"].contents,
            testing::ReadFileOrDie(outside_ + "/secret"));
  dest.erase("ks1/evil-0123/snapshots/s9/nb-1-big-Data.db");
  for (const auto& [path, record] : dest) {
    EXPECT_FALSE(absl::StrContains(path, "/s9/")) << path;
    EXPECT_FALSE(absl::StartsWith(path, "ks1/" + tables_[1])) << path;
  }
  EXPECT_EQ(DiffTrees(SnapshotFiles(data_), dest), "");
}

TEST_F(HostileTest, SymlinkPlantedInTheDestinationNeverRedirectsAWrite) {
  ASSERT_EQ(Run({}, {"ks1"}).exit_code, 0);
  // Replace the first table's copy with a symlink to a directory outside.
  std::string planted = dest_ + "/ks1/" + tables_[0];
  ASSERT_EQ(system(("rm -rf '" + planted + "'").c_str()), 0);
  ASSERT_EQ(symlink(outside_.c_str(), planted.c_str()), 0);
  auto outside_before = ReadTree(outside_);
  RunResult r = Run({"--fullsync"}, {"ks1"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "exists and is not a directory")) << r.err;
  EXPECT_EQ(DiffTrees(outside_before, ReadTree(outside_)), "") << "wrote through the symlink";
  // The other table is still mirrored.
  EXPECT_FALSE(DestinationFiles(dest_).empty());
}

TEST_F(HostileTest, SymlinkedStateDirectoryIsRefused) {
  ASSERT_EQ(mkdir(dest_.c_str(), 0755), 0);
  ASSERT_EQ(symlink(outside_.c_str(), (dest_ + "/.snaphaven").c_str()), 0);
  auto outside_before = ReadTree(outside_);
  RunResult r = Run({}, {"ks1"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(r.err, ".snaphaven is not a directory")) << r.err;
  EXPECT_EQ(DiffTrees(outside_before, ReadTree(outside_)), "");
}

TEST_F(HostileTest, PrivateTemporaryFilesAndStateFiles) {
  ASSERT_EQ(Run({}, {"ks1"}).exit_code, 0);
  auto state = ReadTree(dest_ + "/.snaphaven");
  for (const char* name : {"manifest", "lock", "id"}) {
    ASSERT_TRUE(state.count(name)) << name;
    EXPECT_EQ(state[name].mode & 0002, 0u) << name << " is world-writable";
  }
  // Copies never get wider permissions than their source.
  auto source = SnapshotFiles(data_);
  for (const auto& [path, record] : DestinationFiles(dest_)) {
    EXPECT_EQ(record.mode, source[path].mode) << path;
  }
}

TEST_F(HostileTest, OddNamesAreCopiedExactlyOrReported) {
  std::string snap = data_ + "/ks1/" + tables_[0] + "/snapshots/s1/";
  const std::vector<std::string> names = {
      "with\nnewline", "with\ttab", "invalid-utf8-\xff\xfe", "trailing space ",
      std::string(255, 'x'), "-dash-first", "back\\slash", "quote\"d"};
  for (const std::string& name : names) WriteFileOrDie(snap + name, "odd:" + name);
  // A path far deeper than PATH_MAX: reported, not mangled.
  std::string deep = data_ + "/ks1/" + tables_[1] + "/snapshots/deep";
  ASSERT_EQ(mkdir(deep.c_str(), 0755), 0);
  int fd = open(deep.c_str(), O_RDONLY | O_DIRECTORY);
  ASSERT_GE(fd, 0);
  for (int i = 0; i < 40; ++i) {
    std::string part(200, 'd');
    ASSERT_EQ(mkdirat(fd, part.c_str(), 0755), 0);
    int next = openat(fd, part.c_str(), O_RDONLY | O_DIRECTORY);
    close(fd);
    fd = next;
  }
  int file = openat(fd, "deepfile", O_WRONLY | O_CREAT, 0644);
  ASSERT_GE(file, 0);
  close(file);
  close(fd);

  RunResult r = Run({}, {"ks1"});
  EXPECT_EQ(r.exit_code, 1) << "the too-deep path is reported as a failure";
  EXPECT_TRUE(absl::StrContains(r.err, "File name too long")) << r.err.substr(0, 2000);
  auto dest = DestinationFiles(dest_);
  std::string table_rel = "ks1/" + tables_[0] + "/snapshots/s1/";
  for (const std::string& name : names) {
    ASSERT_TRUE(dest.count(table_rel + name)) << "missing " << absl::CEscape(name);
    EXPECT_EQ(dest[table_rel + name].contents, "odd:" + name);
  }
  // Nothing under any other (mangled) name.
  EXPECT_EQ(DiffTrees(SnapshotFiles(data_), dest), "");
  // The manifest round-trips the odd names.
  StoredManifest manifest = testing::DestinationManifest(dest_);
  for (const std::string& name : names) EXPECT_NE(manifest.Find(table_rel + name), nullptr);
  // And a second run is quiet about them (nothing recopied).
  r = Run({}, {"ks1"});
  EXPECT_EQ(testing::SummaryCount(r.err, "copied"), 0) << r.err.substr(0, 2000);
}

TEST_F(HostileTest, CraftedManifestPointingOutsideIsRejectedAsCorrupt) {
  ASSERT_EQ(Run({}, {"ks1"}).exit_code, 0);
  // A manifest with a valid checksum whose entry escapes the destination.
  StoredManifest evil;
  evil.Put("../outside/secret", {15, 1, 0644, 0, 0});
  WriteFileOrDie(dest_ + "/.snaphaven/manifest", evil.Serialize());
  auto outside_before = ReadTree(outside_);
  RunResult r = Run({"--sync-sstables", "--prune_after=0s"}, {"ks1"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "is corrupt (manifest line 3: path outside the destination)"))
      << r.err;
  EXPECT_EQ(DiffTrees(outside_before, ReadTree(outside_)), "");
}

// An unmounted NAS leaves an empty mount point: with --require_destination
// it is refused instead of being filled as a new destination.
TEST_F(HostileTest, RequireDestinationRefusesAnEmptyMountPoint) {
  ASSERT_EQ(mkdir(dest_.c_str(), 0755), 0);  // the bare mount point
  RunResult r = Run({"--require_destination"}, {"ks1"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "has no identity marker")) << r.err;
  EXPECT_TRUE(ReadTree(dest_).empty()) << "wrote into the bare mount point";
  // Mounted (a destination snaphaven made): it runs.
  ASSERT_EQ(Run({}, {"ks1"}).exit_code, 0);
  EXPECT_EQ(Run({"--require_destination"}, {"ks1"}).exit_code, 0);
}

}  // namespace
}  // namespace snaphaven
