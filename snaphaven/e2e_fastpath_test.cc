// The fast paths, each tested for correctness on its own (no timings here
// beyond a lower bound for the throttle): unchanged snapshot directories
// skipped, and what makes them be listed again.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "snaphaven/testing/e2e_util.h"
#include "tools/tree_generator.h"

namespace snaphaven {
namespace {

using testing::DestinationFiles;
using testing::DiffTrees;
using testing::ReadTree;
using testing::RunResult;
using testing::SnapshotFiles;
using testing::SummaryCount;

// Moves every directory's mtime an hour back: snapshot directories that
// have settled, as on a real node.
void AgeDirectories(const std::string& root) {
  for (const auto& [path, record] : ReadTree(root)) {
    if (record.type != 'd') continue;
    struct timespec times[2] = {{0, UTIME_OMIT}, {time(nullptr) - 3600, 0}};
    ASSERT_EQ(utimensat(AT_FDCWD, (root + "/" + path).c_str(), times, AT_SYMLINK_NOFOLLOW), 0);
  }
}

int Count(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

class FastPathTest : public testing::CassandraTreeTest {};

TEST_F(FastPathTest, UnchangedSnapshotDirectoriesAreNotListedAgain) {
  tools::TreeSpec spec = Spec(2, 3, {"d1", "d2"});
  spec.index_dirs_per_table = 1;
  Generate(spec);
  AgeDirectories(data_);
  const int64_t total = static_cast<int64_t>(SnapshotFiles(data_).size());
  ASSERT_EQ(Run({}, {"ks1"}).exit_code, 0);

  RunResult r = Run({"-v", "2"}, {"ks1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // 2 tables x 2 tags x (tag dir + index dir).
  EXPECT_EQ(Count(r.err, "unchanged directory "), 8) << r.err;
  EXPECT_EQ(Count(r.err, "] unchanged ks1/"), 0) << "no file-by-file check";
  EXPECT_EQ(SummaryCount(r.err, "scanned"), total);
  EXPECT_EQ(SummaryCount(r.err, "unchanged"), total);

  // A new file in one snapshot dir changes its mtime: that dir, and only
  // that one, is listed again and the file copied.
  std::string table = TableDir(0);
  testing::WriteFileOrDie(table + "/snapshots/d1/late-file", "added later");
  r = Run({"-v", "2"}, {"ks1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(SummaryCount(r.err, "copied"), 1) << r.err;
  EXPECT_EQ(Count(r.err, "unchanged directory "), 7) << r.err;
  EXPECT_EQ(DiffTrees(SnapshotFiles(data_), DestinationFiles(dest_)), "");

  // A file rewritten in place (not what Cassandra does) keeps the dir's
  // mtime: ordinary cycles trust the directory, --fullsync re-checks all.
  std::string victim = table + "/snapshots/d2/nb-1-big-Summary.db";
  std::string bytes = testing::ReadFileOrDie(victim);
  ASSERT_EQ(unlink(victim.c_str()), 0);  // break the hard link, keep the name
  testing::WriteFileOrDie(victim, bytes + "x");
  AgeDirectories(data_);
  r = Run({}, {"ks1"});
  EXPECT_EQ(SummaryCount(r.err, "copied"), 0) << "trusted: dir unchanged";
  r = Run({"--fullsync"}, {"ks1"});
  EXPECT_EQ(SummaryCount(r.err, "copied"), 1) << r.err;
  EXPECT_EQ(DiffTrees(SnapshotFiles(data_), DestinationFiles(dest_)), "");
}

TEST_F(FastPathTest, DirectoriesAreListedAgainWhenTheManifestIsRebuilt) {
  Generate(Spec(1, 2, {"d1"}));
  AgeDirectories(data_);
  ASSERT_EQ(Run({}, {"ks1"}).exit_code, 0);
  ASSERT_EQ(Run({}, {"ks1"}).exit_code, 0);
  ASSERT_EQ(unlink((dest_ + "/.snaphaven/manifest").c_str()), 0);
  std::string lost = DestinationFiles(dest_).begin()->first;
  ASSERT_EQ(unlink((dest_ + "/" + lost).c_str()), 0);
  RunResult r = Run({"-v", "2"}, {"ks1"});
  EXPECT_EQ(Count(r.err, "unchanged directory "), 0) << "the cache depends on the manifest";
  EXPECT_EQ(DiffTrees(SnapshotFiles(data_), DestinationFiles(dest_)), "");
}

TEST_F(FastPathTest, MoveModeLooksAtEverySnapshot) {
  Generate(Spec(1, 2, {"d1"}));
  AgeDirectories(data_);
  ASSERT_EQ(Run({}, {"ks1"}).exit_code, 0);
  ASSERT_EQ(Run({}, {"ks1"}).exit_code, 0);  // now cached
  RunResult r = Run({"--move-snapshots", "--settle_time=0s"}, {"ks1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(SnapshotFiles(data_).empty()) << "a cached dir must still be moved";
}

}  // namespace
}  // namespace snaphaven
