// Integrity end to end: checksums while copying, Cassandra's own digests
// (generated ka to da sstables and the real ones Cassandra wrote), and
// --verify / --verify_sample on the destination.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <fstream>
#include <cstring>
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

using testing::FlipByteKeepingMtime;

class IntegrityTest : public testing::CassandraTreeTest {
 protected:
  std::string FirstDataDb(const std::string& root, const std::string& infix = "/snapshots/") {
    for (const auto& [path, record] : ReadTree(root)) {
      if (record.type == 'f' && absl::EndsWith(path, "-Data.db") &&
          absl::StrContains(path, infix) && !absl::StrContains(path, "quarantine")) {
        return path;
      }
    }
    ADD_FAILURE() << "no Data.db in " << root;
    return "";
  }
};

TEST_F(IntegrityTest, DamagedSourceIsReportedQuarantinedAndNotMoved) {
  tools::TreeSpec spec = Spec(1, 2, {"s1"});
  spec.write_live_sstables = false;
  Generate(spec);
  std::string data = FirstDataDb(data_);
  FlipByteKeepingMtime(data_ + "/" + data, 1000);
  RunResult r = Run({"--move-snapshots", "--settle_time=0s"}, {"ks1"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  // Both values, and where the copy went.
  EXPECT_TRUE(absl::StrContains(r.err, "source " + data + " does not match nb-1-big-Digest.crc32: it says"))
      << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "the bytes read give")) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "quarantined as .snaphaven/quarantine/" + data)) << r.err;
  EXPECT_EQ(DestinationFiles(dest_).count(data), 0u) << "never under its final name";
  bool quarantined = false;
  for (const auto& [path, record] : ReadTree(dest_ + "/.snaphaven/quarantine")) {
    quarantined |= record.type == 'f' && absl::StrContains(path, "nb-1-big-Data.db.");
  }
  EXPECT_TRUE(quarantined);
  // Nothing of that snapshot is deleted.
  EXPECT_TRUE(SnapshotFiles(data_).count(data));
  EXPECT_EQ(SummaryCount(r.err, "moved"), 0);
}

TEST_F(IntegrityTest, VerifyFindsAFlippedByteAndFullsyncRepairsIt) {
  Generate(Spec(2, 2, {"s1", "s2"}));
  ASSERT_EQ(Run({}, {"ks1"}).exit_code, 0);
  RunResult r = Run({"--verify"}, {"ks1"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "verify done: ")) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "0 corrupt")) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "/s)")) << "throughput";

  std::string data = FirstDataDb(dest_);
  FlipByteKeepingMtime(dest_ + "/" + data, 4321);
  auto before = ReadTree(dest_);
  r = Run({"--verify"}, {"ks1"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "corrupt (CRC-32")) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, data)) << r.err;
  EXPECT_EQ(DiffTrees(before, ReadTree(dest_)), "") << "--verify alone changes nothing";

  r = Run({"--verify", "--fullsync"}, {"ks1"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "repaired " + data)) << r.err;
  EXPECT_EQ(DiffTrees(SnapshotFiles(data_), DestinationFiles(dest_)), "");
  r = Run({"--verify"}, {"ks1"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(IntegrityTest, VerifyReportsMissingAndUnknownFiles) {
  Generate(Spec(1, 2, {"s1"}));
  ASSERT_EQ(Run({}, {"ks1"}).exit_code, 0);
  std::string gone = FirstDataDb(dest_);
  std::string index = gone.substr(0, gone.size() - strlen("Data.db")) + "Index.db";
  ASSERT_EQ(unlink((dest_ + "/" + index).c_str()), 0);
  std::string extra = gone.substr(0, gone.rfind('/')) + "/stray-file";
  testing::WriteFileOrDie(dest_ + "/" + extra, "who put this here");
  auto before = ReadTree(dest_);
  RunResult r = Run({"--verify"}, {"ks1"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "missing: " + index)) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "unknown (not in the manifest): " + extra)) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "1 missing")) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "1 unknown")) << r.err;
  EXPECT_EQ(DiffTrees(before, ReadTree(dest_)), "") << "copies nothing, deletes nothing";
}

// Unknown files are looked for in the whole keyspace directory: in a table
// directory the manifest does not know at all, directly in the keyspace
// directory, and a symlink (reported, never followed) among the copies.
TEST_F(IntegrityTest, VerifyReportsUnknownFilesAnywhereInTheKeyspace) {
  Generate(Spec(1, 2, {"s1"}));
  ASSERT_EQ(Run({}, {"ks1"}).exit_code, 0);
  const std::string data = FirstDataDb(dest_);
  const std::string table_dir = data.substr(0, data.find("/snapshots/"));
  const std::string elsewhere = dir_ + "/elsewhere";
  ASSERT_EQ(mkdir(elsewhere.c_str(), 0755), 0);
  testing::WriteFileOrDie(elsewhere + "/not-a-copy", "x");
  ASSERT_EQ(mkdir((dest_ + "/ks1/other-0123456789abcdef0123456789abcdef").c_str(), 0755), 0);
  const std::vector<std::string> unknown = {
      "ks1/other-0123456789abcdef0123456789abcdef/nb-9-big-Data.db", "ks1/notes.txt",
      table_dir + "/snapshots/s1/link"};
  testing::WriteFileOrDie(dest_ + "/" + unknown[0], "x");
  testing::WriteFileOrDie(dest_ + "/" + unknown[1], "x");
  ASSERT_EQ(symlink(elsewhere.c_str(), (dest_ + "/" + unknown[2]).c_str()), 0);
  RunResult r = Run({"--verify"}, {"ks1"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  for (const std::string& path : unknown) {
    EXPECT_TRUE(absl::StrContains(r.err, "unknown (not in the manifest): " + path + "\n"))
        << path << "\n" << r.err;
  }
  EXPECT_TRUE(absl::StrContains(r.err, " 3 unknown")) << r.err;
  EXPECT_FALSE(absl::StrContains(r.err, "not-a-copy")) << r.err;
}

TEST_F(IntegrityTest, VerifySampleCatchesSilentCorruptionInOrdinaryCycles) {
  Generate(Spec(1, 2, {"s1"}));
  ASSERT_EQ(Run({}, {"ks1"}).exit_code, 0);
  std::string data = FirstDataDb(dest_);
  FlipByteKeepingMtime(dest_ + "/" + data, 10);
  RunResult r = Run({}, {"ks1"});
  EXPECT_EQ(r.exit_code, 0) << "an ordinary cycle trusts the manifest";
  // 50%: two cycles re-read everything between them.
  r = Run({"--verify_sample", "50"}, {"ks1"});
  RunResult r2 = Run({"--verify_sample", "50"}, {"ks1"});
  std::string both = r.err + r2.err;
  EXPECT_TRUE(absl::StrContains(both, "--verify_sample: corrupt")) << both;
  EXPECT_TRUE(absl::StrContains(both, data)) << both;
  // Found and copied again from the source.
  r = Run({"--verify"}, {"ks1"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(DiffTrees(SnapshotFiles(data_), DestinationFiles(dest_)), "");
}

// Generated sstables of every digest form: each Data.db is checked with its
// version's algorithm, and each fails once a byte is flipped at the source.
TEST_F(IntegrityTest, EveryDigestFormIsCheckedWithItsAlgorithm) {
  struct Form {
    const char* version;
    const char* digest;
    bool compressed;
  };
  for (Form form : {Form{"ka", "Digest.sha1", true}, Form{"ka", "Digest.sha1", false},
                    Form{"la", "Digest.adler32", true}, Form{"lb", "Digest.adler32", true},
                    Form{"mc", "Digest.crc32", true}, Form{"nb", "Digest.crc32", true},
                    Form{"oa", "Digest.crc32", true}, Form{"da", "Digest.crc32", true}}) {
    SCOPED_TRACE(absl::StrCat(form.version, form.compressed ? " compressed" : ""));
    SetUp();  // a fresh tree and destination
    tools::TreeSpec spec = Spec(1, 2, {"s1"}, 300 * 1024);  // several ka chunks
    spec.version = form.version;
    spec.compressed = form.compressed;
    spec.write_live_sstables = false;
    Generate(spec);
    RunResult r = Run({"-v", "1"}, {"ks1"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(DiffTrees(SnapshotFiles(data_), DestinationFiles(dest_)), "");
    std::string data = FirstDataDb(data_);
    EXPECT_TRUE(absl::StrContains(data, std::string(form.version) + "-1-")) << data;
    std::string prefix = data.substr(data.rfind('/') + 1);
    prefix = prefix.substr(0, prefix.size() - strlen("Data.db"));
    FlipByteKeepingMtime(data_ + "/" + data, 77);
    dest_ += "-second";
    r = Run({}, {"ks1"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_TRUE(absl::StrContains(r.err, "does not match " + prefix + form.digest)) << r.err;
  }
}

// What Cassandra really wrote, 2.2 to 5.0, copied through snaphaven: every
// sstable passes, and each fails once a byte of its Data.db is flipped.
TEST_F(IntegrityTest, RealCassandraSSTablesPassAndFailWhenFlipped) {
  std::string fixtures = testing::RealSSTablesDir();
  if (fixtures.empty()) GTEST_SKIP() << "../shared/fixtures/real-sstables is absent";
  // Lay them out as snapshots of one table each, in a scratch data root.
  int n = 0;
  for (const std::string& prefix : testing::FindSSTables(fixtures)) {
    std::string table = absl::StrCat(data_, "/ks1/t", n++, "-0123456789abcdef0123456789abcdef");
    std::string snap = table + "/snapshots/real";
    ASSERT_EQ(system(("mkdir -p '" + snap + "'").c_str()), 0);
    std::string dir = prefix.substr(0, prefix.rfind('/'));
    std::string name = prefix.substr(prefix.rfind('/') + 1);
    ASSERT_EQ(system(("cp -p '" + dir + "'/" + name + "-* '" + snap + "/'").c_str()), 0);
  }
  ASSERT_GE(n, 13);
  RunResult r = Run({}, {"ks1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(absl::StrContains(r.err, "does not match")) << r.err;
  r = Run({"--verify"}, {"ks1"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // Now every Data.db, flipped: every one is caught.
  int flipped = 0;
  for (const auto& [path, record] : SnapshotFiles(data_)) {
    if (!absl::EndsWith(path, "-Data.db")) continue;
    FlipByteKeepingMtime(data_ + "/" + path, record.size / 2);
    ++flipped;
  }
  dest_ += "-second";
  r = Run({}, {"ks1"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(SummaryCount(r.err, "failed"), flipped) << r.err;
}

}  // namespace
}  // namespace snaphaven
