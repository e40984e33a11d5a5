#include "snaphaven/cassandra/keyspace_dirs.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "snaphaven/testing/test_files.h"

namespace snaphaven {
namespace {

TEST(ClassifyKeyspaceDirName, CassandrasNameRuleAndItsOwnDirectories) {
  for (const char* name : {"system", "system_schema", "system_auth", "system_distributed",
                           "system_traces", "ks1", "Keyspace1", "_x", "data"}) {
    EXPECT_EQ(ClassifyKeyspaceDirName(name), KeyspaceDirName::kKeyspace) << name;
  }
  for (const char* name : {"lost+found", ".snaphaven", ".Trash-1000", "a-b", "a.b", "", "é"}) {
    EXPECT_EQ(ClassifyKeyspaceDirName(name), KeyspaceDirName::kNotAName) << name;
  }
  for (const char* name : {"commitlog", "saved_caches", "hints", "cdc_raw"}) {
    EXPECT_EQ(ClassifyKeyspaceDirName(name), KeyspaceDirName::kCassandraDir) << name;
  }
}

TEST(FindKeyspaceDirs, TheUnionOfTheRootsDirectoriesAndLinksThatAreKeyspaces) {
  const std::string dir = testing::MakeTempDir("keyspace_dirs");
  ASSERT_EQ(system(absl::StrCat("mkdir -p ", dir, "/r1/system ", dir, "/r1/ks1 ", dir,
                                "/r1/lost+found ", dir, "/r1/hints ", dir, "/r2/ks2 ", dir,
                                "/r2/system ", dir, "/elsewhere/ks3")
                       .c_str()),
            0);
  ASSERT_EQ(symlink((dir + "/elsewhere/ks3").c_str(), (dir + "/r2/ks3").c_str()), 0);
  ASSERT_EQ(system(absl::StrCat("touch ", dir, "/r1/file").c_str()), 0);
  absl::StatusOr<KeyspaceDirs> found =
      FindKeyspaceDirs(*DefaultFileSystem(), {dir + "/r1", dir + "/r2"});
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->keyspaces, (std::vector<std::string>{"ks1", "ks2", "ks3", "system"}));
  ASSERT_EQ(found->notes.size(), 2u);
  EXPECT_FALSE(FindKeyspaceDirs(*DefaultFileSystem(), {dir + "/r1", dir + "/none"}).ok());
}

TEST(KeyspacesAtDestination, EveryKeyspaceRecordedButTheCommitlogArchive) {
  Manifest manifest;
  // .snapshot/ and lost+found/ as an older snaphaven's rebuild recorded them.
  for (const char* path : {"ks1/t-1/snapshots/a/x-Data.db", "system/local-2/snapshots/a/m",
                           "commitlog_archive/CommitLog-7-1.log", "ks1/t-1/y-Data.db",
                           ".snapshot/hourly.0/ks1/t-1/x-Data.db", "lost+found/#12/x"}) {
    manifest.Put(path, ManifestEntry());
  }
  EXPECT_EQ(KeyspacesAtDestination(manifest), (std::vector<std::string>{"ks1", "system"}));
}

}  // namespace
}  // namespace snaphaven
