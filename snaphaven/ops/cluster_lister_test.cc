#include "snaphaven/ops/cluster_lister.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "snaphaven/testing/test_files.h"

namespace snaphaven {
namespace {

void Touch(const std::string& path, int64_t mtime_seconds) {
  std::ofstream(path) << "x";
  struct timespec times[2] = {{mtime_seconds, 0}, {mtime_seconds, 0}};
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, 0), 0) << path;
}

// By modification time, not by name: a segment rewritten in place (2.1
// recycling, cp -f over a partial copy) is as new as its last write.
TEST(FindNewestSegment, TheLatestWrittenSegmentAndItsAge) {
  const std::string dest = testing::MakeTempDir("cluster_lister");
  const std::string archive = dest + "/commitlog_archive";
  ASSERT_EQ(mkdir(archive.c_str(), 0755), 0);
  Touch(archive + "/CommitLog-6-20.log", 1000);
  Touch(archive + "/CommitLog-6-10.log", 1900);  // rewritten later
  Touch(archive + "/CommitLog-10.log", 1990);    // before 1.2.5: not replayable
  Touch(archive + "/CommitLog-7-30_cdc.idx", 1995);
  ASSERT_EQ(mkdir((archive + "/CommitLog-7-40.log").c_str(), 0755), 0);  // not a file
  ClusterNode node;
  FindNewestSegment(*DefaultFileSystem(), dest, absl::FromUnixSeconds(2000), node);
  EXPECT_EQ(node.newest_segment, "CommitLog-6-10.log");
  EXPECT_EQ(node.newest_segment_age_seconds, 100);

  ClusterNode none;
  FindNewestSegment(*DefaultFileSystem(), dest + "/nowhere", absl::FromUnixSeconds(2000), none);
  EXPECT_FALSE(none.newest_segment.has_value());
  EXPECT_FALSE(none.newest_segment_age_seconds.has_value());
}

TEST(ListCluster, AnEmptyRootHasNoTagsNoNodesAndARootThatIsNotThereFails) {
  const std::string root = testing::MakeTempDir("cluster_root");
  ASSERT_EQ(mkdir((root + "/.snapshot").c_str(), 0755), 0);  // a NAS's: silently skipped
  absl::StatusOr<ClusterView> view = ListCluster(*DefaultFileSystem(), root, {}, absl::Now());
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_TRUE(view->tags.empty());
  EXPECT_TRUE(view->nodes.empty());
  EXPECT_TRUE(view->warnings.empty());
  EXPECT_EQ(FormatClusterJson(*view), "{\n  \"nodes\": [],\n  \"tags\": []\n}\n");
  EXPECT_FALSE(ListCluster(*DefaultFileSystem(), root + "/nowhere", {}, absl::Now()).ok());
}

}  // namespace
}  // namespace snaphaven
