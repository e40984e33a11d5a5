// Restore end to end: the real binary syncs a generated tree, the source
// snapshot is wiped, and RestoreSnapshot brings it back from the destination
// byte for byte, verified, or refuses with the file named.

#include "snaphaven/ops/restore.h"

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "snaphaven/cassandra/cassandra_path.h"
#include "snaphaven/storage/file_system.h"
#include "snaphaven/state/manifest.h"
#include "snaphaven/testing/e2e_util.h"
#include "snaphaven/testing/fault_injection_file_system.h"
#include "tools/tree_generator.h"

namespace snaphaven {
namespace {

using testing::DiffTrees;
using testing::FileRecord;
using testing::FlipByte;
using testing::ReadFileOrDie;
using testing::ReadTree;
using testing::RunResult;
using testing::SnapshotFiles;
using testing::WriteFileOrDie;

bool Exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

class RestoreTest : public testing::CassandraTreeTest {
 protected:
  void SetUp() override {
    CassandraTreeTest::SetUp();
    restore_ = dir_ + "/restore";
  }

  void Sync(std::vector<std::string> keyspaces = {"ks1", "ks2"}) {
    RunResult r = Run({}, std::move(keyspaces));
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  Manifest LoadManifest() { return testing::DestinationManifest(dest_); }

  // The source files of snapshot `tag`, keyed by where a restore puts them.
  std::map<std::string, FileRecord> SourceSnapshot(const std::string& tag) {
    std::map<std::string, FileRecord> out;
    for (const auto& [path, record] : SnapshotFiles(data_)) {
      PathInfo info = ClassifyPath(path);
      if (info.tag != tag) continue;
      const std::string tag_dir =
          absl::StrCat(info.keyspace, "/", info.table_dir, "/snapshots/", tag, "/");
      out[absl::StrCat(info.keyspace, "/", info.table_dir, "/", path.substr(tag_dir.size()))] =
          record;
    }
    return out;
  }

  // Removes snapshot `tag` from the source, as `nodetool clearsnapshot`.
  void WipeSourceSnapshot(const std::string& tag) {
    for (const auto& [path, record] : ReadTree(data_)) {
      PathInfo info = ClassifyPath(path + "/x");
      if (record.type == 'd' && info.kind == PathKind::kSnapshot && info.tag == tag &&
          absl::EndsWith(path, "/snapshots/" + tag)) {
        std::filesystem::remove_all(data_ + "/" + path);
      }
    }
    ASSERT_TRUE(SourceSnapshot(tag).empty());
  }

  // The regular files below `root`.
  static std::map<std::string, FileRecord> Files(const std::string& root) {
    std::map<std::string, FileRecord> out;
    for (auto& [path, record] : ReadTree(root)) {
      if (record.type == 'f') out[path] = record;
    }
    return out;
  }

  // The validated configuration of `snaphaven --restore TAG ks1 ks2`.
  Options Config(const std::string& tag) {
    Options options;
    options.mode = RunMode::kRestore;
    options.destination = dest_;
    options.keyspaces = {"ks1", "ks2"};
    options.restore_tag = tag;
    options.restore_to = restore_;
    options.data_roots = {data_};
    return options;
  }

  absl::StatusOr<RestoreResult> Restore(const Options& options,
                                        const std::string& loader_host = "") {
    return RestoreSnapshot(*DefaultFileSystem(), LoadManifest(), options, loader_host);
  }

  // The destination copy of the first file of snapshot `tag` whose name ends
  // with `suffix`, relative to the destination.
  std::string DestinationFile(const std::string& tag, const std::string& suffix) {
    for (const auto& [path, record] : testing::DestinationFiles(dest_)) {
      if (absl::StrContains(path, "/snapshots/" + tag + "/") && absl::EndsWith(path, suffix)) {
        return path;
      }
    }
    ADD_FAILURE() << "no " << suffix << " in snapshot " << tag;
    return "";
  }

  // Nothing was left behind by a refused or failed restore.
  void ExpectNothingRestored() {
    EXPECT_FALSE(Exists(restore_)) << "created " << restore_;
  }

  std::string restore_;
};

TEST_F(RestoreTest, RoundTripIsByteIdentical) {
  GenerateDefault();
  Sync();
  const std::map<std::string, FileRecord> want = SourceSnapshot("snap1");
  ASSERT_GT(want.size(), 40u);
  bool has_index = false, has_schema = false, has_manifest = false;
  int64_t bytes = 0;
  for (const auto& [path, record] : want) {
    has_index |= ClassifyPath(path).kind == PathKind::kLive && absl::StrContains(path, "/.");
    has_schema |= absl::EndsWith(path, "/schema.cql");
    has_manifest |= absl::EndsWith(path, "/manifest.json");
    bytes += record.size;
  }
  ASSERT_TRUE(has_index && has_schema && has_manifest);
  WipeSourceSnapshot("snap1");

  Options options = Config("snap1");
  options.restore_to = dir_ + "/re store/deeper";  // missing parents, a space
  absl::StatusOr<RestoreResult> result = Restore(options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(DiffTrees(want, Files(options.restore_to)), "");
  EXPECT_EQ(result->files, static_cast<int64_t>(want.size()));
  EXPECT_EQ(result->bytes, bytes);
  EXPECT_TRUE(result->warnings.empty()) << result->warnings[0];
  EXPECT_EQ(result->restore_root, options.restore_to);
  // Only the tables' directories and their files: no temporary or
  // quarantine directory left.
  for (const auto& [path, record] : ReadTree(options.restore_to)) {
    EXPECT_FALSE(absl::StrContains(path, ".snaphaven")) << path;
  }

  ASSERT_EQ(result->tables.size(), 4u);
  ASSERT_EQ(result->commands.size(), 8u);
  for (size_t i = 0; i < result->tables.size(); ++i) {
    const std::string& table = result->tables[i];
    PathInfo info = ClassifyPath(table + "/x");
    const std::string name = info.table_dir.substr(0, info.table_dir.rfind('-'));
    ASSERT_EQ(info.table_dir.size(), name.size() + 33) << table;
    const std::string dir = absl::StrCat("'", options.restore_to, "/", table, "'");
    EXPECT_EQ(result->commands[i],
              absl::StrCat("nodetool import ", info.keyspace, " ", name, " ", dir));
    EXPECT_EQ(result->commands[4 + i], absl::StrCat("sstableloader -d <host> ", dir));
  }
  EXPECT_TRUE(absl::StartsWith(result->tables[0], "ks1/")) << result->tables[0];
  EXPECT_TRUE(absl::StartsWith(result->tables[3], "ks2/")) << result->tables[3];
}

TEST_F(RestoreTest, AllKeyspacesWhenNoneNamedAndAHostForTheLoader) {
  GenerateDefault();
  Sync();
  Options options = Config("tag with space");
  options.keyspaces = {};
  absl::StatusOr<RestoreResult> result = Restore(options, /*loader_host=*/"10.0.0.1");
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(DiffTrees(SourceSnapshot("tag with space"), Files(restore_)), "");
  EXPECT_EQ(result->tables.size(), 4u);
  EXPECT_EQ(result->commands.back(),
            absl::StrCat("sstableloader -d 10.0.0.1 ", restore_, "/", result->tables.back()));
}

// A whole-node restore takes the destination's keyspaces by the walker's
// rule: not lost+found (the disk's own; root's, 0700: unreadable to the
// user restoring, as injected here), not a dot-directory, not the
// commitlog archive.
TEST_F(RestoreTest, AWholeNodeRestoreTakesOnlyKeyspacesFromTheDestinationRoot) {
  GenerateDefault();
  Sync();
  std::filesystem::create_directories(dest_ + "/lost+found");
  std::filesystem::create_directories(dest_ + "/.snapshot/hourly.0");
  std::filesystem::create_directories(dest_ + "/commitlog_archive/quarantine");
  testing::FaultInjectionFileSystem fs(DefaultFileSystem());
  fs.AddRule({testing::FsOp::kListDir, "/lost\\+found$", EACCES, 0, -1});
  fs.AddRule({testing::FsOp::kListDir, "/\\.snapshot$", EACCES, 0, -1});
  Options options = Config("snap1");
  options.keyspaces = {};
  absl::StatusOr<RestoreResult> result = RestoreSnapshot(fs, LoadManifest(), options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(DiffTrees(SourceSnapshot("snap1"), Files(restore_)), "");
  EXPECT_EQ(fs.Calls(testing::FsOp::kListDir, "/commitlog_archive$"), 0);
}

// The sstable digests of older formats: whole-file Adler-32 (la, ka
// uncompressed) and 2.1's compressed chunks.
class RestoreFormatTest : public RestoreTest,
                          public ::testing::WithParamInterface<std::pair<std::string, bool>> {};

TEST_P(RestoreFormatTest, RoundTripAndDamageCaught) {
  tools::TreeSpec spec = Spec(2, 2, {"s1", "s2"}, 100000);
  spec.version = GetParam().first;
  spec.compressed = GetParam().second;
  Generate(spec);
  Sync({"ks1"});
  const std::map<std::string, FileRecord> want = SourceSnapshot("s1");
  WipeSourceSnapshot("s1");
  Options options = Config("s1");
  options.keyspaces = {"ks1"};
  absl::StatusOr<RestoreResult> result = Restore(options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(DiffTrees(want, Files(restore_)), "");
  EXPECT_TRUE(result->warnings.empty()) << result->warnings[0];

  // Without a recorded CRC-32 only the sstable's own digest can tell.
  std::string data = DestinationFile("s2", "-Data.db");
  FlipByte(dest_ + "/" + data, 5000);
  Manifest manifest = LoadManifest();
  const Manifest recorded = manifest;
  for (const auto& [path, entry] : recorded.entries()) {
    ManifestEntry unknown = entry;
    unknown.has_crc32 = false;
    manifest.Put(path, unknown);
  }
  options = Config("s2");
  options.keyspaces = {"ks1"};
  options.restore_to = dir_ + "/second";
  result = RestoreSnapshot(*DefaultFileSystem(), manifest, options);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(result.status().message(), dest_ + "/" + data + " is corrupt"))
      << result.status();
  EXPECT_TRUE(absl::StrContains(result.status().message(), "Digest")) << result.status();
  EXPECT_FALSE(Exists(options.restore_to));
}

INSTANTIATE_TEST_SUITE_P(Formats, RestoreFormatTest,
                         ::testing::Values(std::make_pair("nb", true), std::make_pair("la", true),
                                           std::make_pair("ka", true),
                                           std::make_pair("ka", false)));

TEST_F(RestoreTest, RefusesARestoreDirectoryInsideTheDataRoot) {
  Generate(Spec(1, 1, {"s1"}));
  Sync({"ks1"});
  Options options = Config("s1");
  options.keyspaces = {"ks1"};
  for (const std::string& inside : {data_, data_ + "/restore", data_ + "/ks1/new/deeper"}) {
    options.restore_to = inside;
    absl::StatusOr<RestoreResult> result = Restore(options);
    ASSERT_FALSE(result.ok()) << inside;
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StrContains(result.status().message(), "inside the live data root"))
        << result.status();
  }
  // Through a symlink to the data tree, and a dangling one.
  ASSERT_EQ(symlink((data_ + "/ks1").c_str(), (dir_ + "/link").c_str()), 0);
  ASSERT_EQ(symlink((data_ + "/ks1/not-yet").c_str(), (dir_ + "/dangling").c_str()), 0);
  for (const std::string& inside : {dir_ + "/link", dir_ + "/link/new/deeper",
                                    dir_ + "/dangling/x"}) {
    options.restore_to = inside;
    absl::StatusOr<RestoreResult> result = Restore(options);
    ASSERT_FALSE(result.ok()) << inside;
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << result.status();
  }
  EXPECT_FALSE(Exists(data_ + "/restore"));
  EXPECT_FALSE(Exists(data_ + "/ks1/new"));
  EXPECT_FALSE(Exists(data_ + "/ks1/not-yet"));
  // Nor into the destination.
  options.restore_to = dest_ + "/restore";
  absl::StatusOr<RestoreResult> result = Restore(options);
  ASSERT_FALSE(result.ok());
  EXPECT_TRUE(absl::StrContains(result.status().message(), "inside the snaphaven destination"))
      << result.status();
}

TEST_F(RestoreTest, RefusesAnUnknownTagOrKeyspace) {
  Generate(Spec(1, 1, {"s1", "s2"}));
  Sync({"ks1"});
  Options options = Config("nosuch");
  options.keyspaces = {"ks1"};
  absl::StatusOr<RestoreResult> result = Restore(options);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(result.status().message(), "'nosuch'")) << result.status();
  EXPECT_TRUE(absl::StrContains(result.status().message(), "'s1', 's2'")) << result.status();

  options = Config("s1");
  options.keyspaces = {"ks1", "ks9"};
  result = Restore(options);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(result.status().message(), "ks9")) << result.status();

  for (const char* bad : {"", "..", "a/b"}) {
    options = Config(bad);
    options.keyspaces = {"ks1"};
    EXPECT_EQ(Restore(options).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  ExpectNothingRestored();
}

TEST_F(RestoreTest, AFlippedByteFailsNamingTheFileAndLeavesNothing) {
  Generate(Spec(2, 2, {"s1"}));
  Sync({"ks1"});
  Options options = Config("s1");
  options.keyspaces = {"ks1"};
  // A Data.db (its sstable digest and its CRC-32), then a component only
  // the destination manifest's CRC-32 covers.
  for (const char* suffix : {"nb-2-big-Data.db", "nb-1-big-Statistics.db", "schema.cql"}) {
    SCOPED_TRACE(suffix);
    const std::string file = dest_ + "/" + DestinationFile("s1", suffix);
    FlipByte(file, 10);
    absl::StatusOr<RestoreResult> result = Restore(options);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_TRUE(absl::StrContains(result.status().message(), file + " is corrupt"))
        << result.status();
    EXPECT_TRUE(absl::StrContains(result.status().message(), "nothing restored"))
        << result.status();
    ExpectNothingRestored();
    FlipByte(file, 10);  // repaired: the next one fails alone
  }
  absl::StatusOr<RestoreResult> result = Restore(options);
  EXPECT_TRUE(result.ok()) << result.status();
}

TEST_F(RestoreTest, AMissingFileFailsBeforeAnythingIsWritten) {
  Generate(Spec(1, 2, {"s1"}));
  Sync({"ks1"});
  Options options = Config("s1");
  options.keyspaces = {"ks1"};
  // Recorded in the manifest, gone at the destination.
  const std::string summary = dest_ + "/" + DestinationFile("s1", "nb-1-big-Summary.db");
  ASSERT_EQ(unlink(summary.c_str()), 0);
  absl::StatusOr<RestoreResult> result = Restore(options);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(result.status().message(), summary)) << result.status();
  ExpectNothingRestored();

  // A Data.db listed by manifest.json but never recorded (a manifest
  // rebuilt after it went): still caught.
  const std::string data = DestinationFile("s1", "nb-2-big-Data.db");
  ASSERT_EQ(unlink((dest_ + "/" + data).c_str()), 0);
  Manifest manifest = LoadManifest();
  manifest.Erase(data);
  manifest.Erase(summary.substr(dest_.size() + 1));
  result = RestoreSnapshot(*DefaultFileSystem(), manifest, options);
  ASSERT_FALSE(result.ok());
  EXPECT_TRUE(absl::StrContains(result.status().message(), dest_ + "/" + data)) << result.status();
  EXPECT_TRUE(absl::StrContains(result.status().message(), "manifest.json")) << result.status();
  // nb-1's TOC.txt still names its Summary.db, but Cassandra rebuilds a
  // missing summary: the TOC is no authority, only the manifest was.
  EXPECT_FALSE(absl::StrContains(result.status().message(), summary)) << result.status();
  ExpectNothingRestored();
}

TEST_F(RestoreTest, AFileChangedSinceRecordedFailsBeforeAnythingIsWritten) {
  Generate(Spec(1, 2, {"s1"}));
  Sync({"ks1"});
  Options options = Config("s1");
  options.keyspaces = {"ks1"};
  // One byte longer than the destination manifest recorded: refused by its
  // size before any copy (not later, as a CRC-32 mismatch rolled back).
  const std::string statistics = dest_ + "/" + DestinationFile("s1", "nb-1-big-Statistics.db");
  std::ofstream(statistics, std::ios::app | std::ios::binary) << 'x';
  absl::StatusOr<RestoreResult> result = Restore(options);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(result.status().message(),
                                "changed at the destination since snaphaven recorded it: " +
                                    statistics + " (size "))
      << result.status();
  EXPECT_TRUE(absl::StrContains(result.status().message(), "; nothing restored"))
      << result.status();
  ExpectNothingRestored();
}

TEST_F(RestoreTest, NeverOverwritesAndCleansAKilledRestoresTemporaryFiles) {
  Generate(Spec(1, 1, {"s1"}));
  Sync({"ks1"});
  const std::map<std::string, FileRecord> want = SourceSnapshot("s1");
  Options options = Config("s1");
  options.keyspaces = {"ks1"};
  const std::string taken = restore_ + "/" + want.begin()->first;
  std::filesystem::create_directories(std::filesystem::path(taken).parent_path());
  WriteFileOrDie(taken, "mine");
  absl::StatusOr<RestoreResult> result = Restore(options);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(absl::StrContains(result.status().message(), taken)) << result.status();
  EXPECT_EQ(ReadFileOrDie(taken), "mine");
  EXPECT_EQ(Files(restore_).size(), 1u);

  ASSERT_EQ(unlink(taken.c_str()), 0);
  ASSERT_EQ(mkdir((restore_ + "/.snaphaven-restore-tmp").c_str(), 0755), 0);
  WriteFileOrDie(restore_ + "/.snaphaven-restore-tmp/copy-1.tmp", "half");
  result = Restore(options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(DiffTrees(want, Files(restore_)), "");
}

}  // namespace
}  // namespace snaphaven
