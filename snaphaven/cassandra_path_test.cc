#include "snaphaven/cassandra_path.h"

#include <gtest/gtest.h>

namespace snaphaven {
namespace {

struct NameCase {
  const char* file;
  bool parses;
  const char* prefix;
  const char* version;
  const char* component;
  bool temporary;
};

TEST(ParseSSTableName, EveryCassandraForm) {
  const NameCase cases[] = {
      {"ks1-users-ka-1-Data.db", true, "ks1-users-ka-1", "ka", "Data.db", false},
      {"ks1-users-tmp-ka-2-Index.db", true, "ks1-users-tmp-ka-2", "ka", "Index.db", true},
      {"ks1-users-tmplink-ka-3-Data.db", true, "ks1-users-tmplink-ka-3", "ka", "Data.db", true},
      {"la-1-big-Data.db", true, "la-1-big", "la", "Data.db", false},
      {"tmp-la-4-big-TOC.txt", true, "tmp-la-4-big", "la", "TOC.txt", true},
      {"tmplink-lb-5-big-Data.db", true, "tmplink-lb-5-big", "lb", "Data.db", true},
      {"mc-3113-big-Data.db", true, "mc-3113-big", "mc", "Data.db", false},
      {"nb-7-big-Statistics.db", true, "nb-7-big", "nb", "Statistics.db", false},
      {"da-1-bti-Partitions.db", true, "da-1-bti", "da", "Partitions.db", false},
      {"nb-3gll_1kke_3qdyo2i4kzfpt3cqcy-big-Data.db", true,
       "nb-3gll_1kke_3qdyo2i4kzfpt3cqcy-big", "nb", "Data.db", false},
      {"nc-2-big-SAI+aa+users_idx+Meta.db", true, "nc-2-big", "nc", "SAI+aa+users_idx+Meta.db",
       false},
      {"manifest.json", false, "", "", "", false},
      {"schema.cql", false, "", "", "", false},
      {"nb_txn_flush_1e2d-11ee.log", false, "", "", "", false},
      {"NB-1-big-Data.db", false, "", "", "", false},
  };
  for (const NameCase& c : cases) {
    SCOPED_TRACE(c.file);
    absl::optional<SSTableName> name = ParseSSTableName(c.file);
    ASSERT_EQ(name.has_value(), c.parses);
    if (!c.parses) continue;
    EXPECT_EQ(name->prefix, c.prefix);
    EXPECT_EQ(name->version, c.version);
    EXPECT_EQ(name->component, c.component);
    EXPECT_EQ(name->temporary, c.temporary);
  }
}

TEST(ClassifyPath, SnapshotsLiveBackupsAndIndexDirs) {
  PathInfo snap = ClassifyPath("ks/t-0123/snapshots/my tag/nb-1-big-Data.db");
  EXPECT_EQ(snap.kind, PathKind::kSnapshot);
  EXPECT_EQ(snap.keyspace, "ks");
  EXPECT_EQ(snap.table_dir, "t-0123");
  EXPECT_EQ(snap.tag, "my tag");
  EXPECT_EQ(snap.index_dir, "");
  EXPECT_EQ(snap.file_name, "nb-1-big-Data.db");

  PathInfo snap_index = ClassifyPath("ks/t/snapshots/s1/.t_idx/nb-1-big-Data.db");
  EXPECT_EQ(snap_index.kind, PathKind::kSnapshot);
  EXPECT_EQ(snap_index.index_dir, ".t_idx");

  PathInfo live = ClassifyPath("ks/t/nb-1-big-Data.db");
  EXPECT_EQ(live.kind, PathKind::kLive);
  PathInfo live_index = ClassifyPath("ks/t/.t_idx/nb-1-big-Data.db");
  EXPECT_EQ(live_index.kind, PathKind::kLive);
  EXPECT_EQ(live_index.index_dir, ".t_idx");

  PathInfo backup = ClassifyPath("ks/t/backups/nb-1-big-Data.db");
  EXPECT_EQ(backup.kind, PathKind::kBackup);
  PathInfo backup_index = ClassifyPath("ks/t/backups/.t_idx/nb-1-big-Data.db");
  EXPECT_EQ(backup_index.kind, PathKind::kBackup);
  EXPECT_EQ(backup_index.index_dir, ".t_idx");

  EXPECT_EQ(ClassifyPath("ks/t").kind, PathKind::kOther);
  EXPECT_EQ(ClassifyPath("ks/t/snapshots/x").kind, PathKind::kOther);
  EXPECT_EQ(ClassifyPath("ks/t/weird/deeper/file").kind, PathKind::kOther);
}

TEST(ValidateKeyspaceName, RejectsPathsAndHiddenNames) {
  EXPECT_TRUE(ValidateKeyspaceName("ks1").ok());
  EXPECT_TRUE(ValidateKeyspaceName("system_auth").ok());
  for (const char* bad : {"", "a/b", "..", ".", ".hidden", "../etc", "/abs"}) {
    SCOPED_TRACE(bad);
    absl::Status status = ValidateKeyspaceName(bad);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  }
  EXPECT_NE(ValidateKeyspaceName("a/b").message().find("a/b"), std::string::npos);
}

TEST(IsSafeRelativePath, StaysInside) {
  EXPECT_TRUE(IsSafeRelativePath("ks/t/snapshots/s/f"));
  EXPECT_TRUE(IsSafeRelativePath("ks/t/snapshots/s/.idx/f"));
  EXPECT_FALSE(IsSafeRelativePath(""));
  EXPECT_FALSE(IsSafeRelativePath("/etc/passwd"));
  EXPECT_FALSE(IsSafeRelativePath("../x"));
  EXPECT_FALSE(IsSafeRelativePath("ks/../../x"));
  EXPECT_FALSE(IsSafeRelativePath("ks//x"));
  EXPECT_FALSE(IsSafeRelativePath("ks/./x"));
}

}  // namespace
}  // namespace snaphaven
