// --commitlog_archive in a cycle driven through the fault-injecting file
// system: a full destination, an unreadable segment and a manifest that
// cannot be committed each fail as they should, leave no partial file under
// a final name and nothing removed from the archive without its copy; the
// next cycle without faults converges.

#include <glog/logging.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "snaphaven/cycle/cycle.h"
#include "snaphaven/testing/cycle_config.h"
#include "snaphaven/testing/e2e_util.h"
#include "snaphaven/testing/fault_injection_file_system.h"
#include "snaphaven/testing/log_capture.h"
#include "tools/tree_generator.h"

namespace snaphaven {
namespace {

using testing::FaultInjectionFileSystem;
using testing::FileRecord;
using testing::FsOp;
using Files = std::map<std::string, FileRecord>;

class CommitlogCycleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string fixtures = testing::CassandraTestDataDir();
    if (fixtures.empty()) GTEST_SKIP() << "../shared/fixtures/cassandra-test-data is absent";
    google::AddLogSink(&sink_);
    const std::string dir = testing::MakeTempDir("commitlog_cycle");
    data_ = dir + "/data";
    dest_ = dir + "/dest";
    archive_ = dir + "/archive";
    tools::TreeSpec spec;
    spec.keyspaces = {"ks1"};
    spec.tables_per_keyspace = 1;
    spec.sstables_per_table = 1;
    spec.snapshot_tags = {"s1"};
    spec.data_size = 4096;
    ASSERT_TRUE(tools::GenerateTree(data_, spec).ok());
    ASSERT_EQ(system(("mkdir " + archive_ + " && cp --preserve=timestamps " + fixtures +
                      "/legacy-commitlog/2.2/CommitLog-* " + fixtures +
                      "/legacy-commitlog/2.2-lz4/CommitLog-* " + archive_)
                         .c_str()),
              0);
    archived_ = testing::ReadTree(archive_);
    ASSERT_EQ(archived_.size(), 4u);
    fs_ = std::make_unique<FaultInjectionFileSystem>(DefaultFileSystem(), 7);
  }
  void TearDown() override { google::RemoveLogSink(&sink_); }

  CycleStats Cycle(bool move = false) {
    Options options = testing::CycleOptions(data_, dest_);
    options.move_snapshots = move;
    options.commitlog_archive = archive_;
    Syncer syncer(*fs_, options, testing::CycleSettings());
    std::atomic<bool> stop{false};
    EXPECT_TRUE(syncer.PrepareDestination().ok());
    CycleStats stats = syncer.RunCycle(stop);
    log_ = sink_.Take();
    return stats;
  }

  // Whatever failed: every mirrored segment is whole, the manifest records
  // only what is there, no temporary file is left, and every segment gone
  // from the archive has its copy.
  void ExpectInvariants() {
    const Files mirrored = testing::ReadTree(dest_ + "/commitlog_archive", {"quarantine"});
    for (const auto& [name, record] : mirrored) {
      ASSERT_TRUE(archived_.count(name)) << "unexpected " << name;
      EXPECT_TRUE(record == archived_.at(name)) << name << " under its final name is not whole";
    }
    absl::StatusOr<StoredManifest> manifest =
        StoredManifest::Load(*DefaultFileSystem(), dest_ + "/.snaphaven/manifest");
    if (!IsVanished(manifest.status())) ASSERT_TRUE(manifest.ok()) << manifest.status();
    for (const auto& [path, entry] : manifest.ok() ? manifest->entries() : Manifest::Map()) {
      if (!absl::StartsWith(path, "commitlog_archive/")) continue;
      const std::string name = path.substr(strlen("commitlog_archive/"));
      ASSERT_TRUE(mirrored.count(name)) << "the manifest records a missing " << path;
      EXPECT_EQ(mirrored.at(name).size, entry.size);
    }
    EXPECT_TRUE(testing::ReadTree(dest_ + "/.snaphaven/tmp").empty()) << "temporary files left";
    const Files left = testing::ReadTree(archive_);
    for (const auto& [name, record] : archived_) {
      if (!left.count(name)) EXPECT_TRUE(mirrored.count(name)) << name << " removed without a copy";
    }
  }

  void ExpectConvergesWithoutFaults(bool move = false) {
    fs_->ClearRules();
    CycleStats stats = Cycle(move);
    EXPECT_EQ(ExitCodeFor(stats), 0) << log_;
    EXPECT_EQ(testing::DiffTrees(archived_,
                                 testing::ReadTree(dest_ + "/commitlog_archive", {"quarantine"})),
              "");
    if (move) EXPECT_TRUE(testing::ReadTree(archive_).empty());
    ExpectInvariants();
  }

  testing::CapturingSink sink_;
  std::string data_, dest_, archive_, log_;
  Files archived_;
  std::unique_ptr<FaultInjectionFileSystem> fs_;
};

TEST_F(CommitlogCycleTest, OutOfSpaceWhileCopyingASegmentEndsTheCycle) {
  for (FsOp op : {FsOp::kWrite, FsOp::kSync, FsOp::kClose}) {
    SCOPED_TRACE(testing::FsOpName(op));
    ASSERT_EQ(system(("rm -rf " + dest_).c_str()), 0);
    fs_->ClearRules();
    fs_->AddRule({op, "/\\.snaphaven/tmp/", ENOSPC, /*skip=*/1, /*times=*/-1});
    CycleStats stats = Cycle(/*move=*/true);
    EXPECT_TRUE(stats.out_of_space) << log_;
    EXPECT_EQ(ExitCodeFor(stats), 1);
    EXPECT_TRUE(absl::StrContains(log_, "is out of space while copying commitlog_archive/"))
        << log_;
    EXPECT_EQ(stats.copied, 0) << "the tables are not started";
    ExpectInvariants();
    ExpectConvergesWithoutFaults(/*move=*/true);
    ASSERT_EQ(system(("cp --preserve=timestamps " + dest_ + "/commitlog_archive/CommitLog-* " +
                      archive_)
                         .c_str()),
              0);  // the archive as it was, for the next case
  }
}

TEST_F(CommitlogCycleTest, UnreadableSegmentFailsAloneAndIsNotQuarantined) {
  const std::string name = "CommitLog-5-1438186885380.log";
  for (testing::FaultRule rule :
       {testing::FaultRule{FsOp::kRead, archive_ + "/" + name, EIO, 0, -1},
        testing::FaultRule{FsOp::kOpenForRead, archive_ + "/" + name, EACCES, 0, -1}}) {
    SCOPED_TRACE(strerror(rule.error));
    ASSERT_EQ(system(("rm -rf " + dest_).c_str()), 0);
    fs_->ClearRules();
    fs_->AddRule(rule);
    CycleStats stats = Cycle();
    EXPECT_EQ(ExitCodeFor(stats), 1);
    EXPECT_EQ(stats.failed, 1) << log_;
    EXPECT_EQ(stats.commitlog.segments_failed, 0) << "not a damaged segment";
    EXPECT_EQ(stats.commitlog.segments_copied, 3) << log_;
    EXPECT_TRUE(absl::StrContains(log_, absl::StrCat("commitlog archive: ",
                                                     rule.op == FsOp::kRead ? "read " : "open ",
                                                     archive_, "/", name)))
        << log_;
    EXPECT_TRUE(absl::StrContains(log_, strerror(rule.error))) << log_;
    struct stat st;
    EXPECT_NE(stat((dest_ + "/commitlog_archive/quarantine/" + name).c_str(), &st), 0);
    EXPECT_EQ(stat((archive_ + "/" + name).c_str(), &st), 0) << "kept in the archive";
    ExpectInvariants();
    ExpectConvergesWithoutFaults();
  }
}

TEST_F(CommitlogCycleTest, NothingLeavesTheArchiveWhenTheManifestCannotBeCommitted) {
  fs_->AddRule({FsOp::kWrite, "/\\.snaphaven/manifest", EIO, 0, -1});
  CycleStats stats = Cycle(/*move=*/true);
  EXPECT_EQ(ExitCodeFor(stats), 1);
  EXPECT_EQ(stats.commitlog.segments_removed, 0);
  EXPECT_EQ(testing::ReadTree(archive_), archived_) << "a segment left the archive";
  EXPECT_TRUE(absl::StrContains(log_, "cannot commit the manifest")) << log_;
  ExpectInvariants();
  ExpectConvergesWithoutFaults(/*move=*/true);
}

}  // namespace
}  // namespace snaphaven
