#include "snaphaven/cassandra/cassandra_path.h"

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

// 2.x names begin with the keyspace and table, which can look like a
// version themselves: before this rule, "ks-users-ka-1-Data.db" read as
// version "ks", generation "users", component "1-Data.db", and the sstable
// was never mirrored, moved or digest-checked.
TEST(ParseSSTableName, TwoLetterKeyspaceWithAndWithoutItsDirectory) {
  for (absl::optional<SSTableName> name :
       {ParseSSTableName("ks-users-ka-1-Data.db", "ks", "users"),
        ParseSSTableName("ks-users-ka-1-Data.db"),
        ParseSSTablePath("ks/users-0094ac203e7411e59149ef9f87394ca6/ks-users-ka-1-Data.db"),
        ParseSSTablePath("ks/users/snapshots/t1/ks-users-ka-1-Data.db")}) {
    ASSERT_TRUE(name.has_value());
    EXPECT_EQ(name->version, "ka");
    EXPECT_EQ(name->prefix, "ks-users-ka-1");
    EXPECT_EQ(name->component, "Data.db");
    EXPECT_EQ(name->format, "big");
  }
  // Two-letter keyspace and table, temporary, and a keyspace named "tmp".
  absl::optional<SSTableName> name = ParseSSTableName("ab-cd-tmp-jb-2-Index.db", "ab", "cd");
  ASSERT_TRUE(name.has_value());
  EXPECT_TRUE(name->temporary);
  EXPECT_EQ(name->version, "jb");
  EXPECT_EQ(name->prefix, "ab-cd-tmp-jb-2");
  name = ParseSSTablePath("tmp/t/tmp-t-ka-1-Data.db");
  ASSERT_TRUE(name.has_value());
  EXPECT_FALSE(name->temporary);
  EXPECT_EQ(name->prefix, "tmp-t-ka-1");
}

// 2.0/2.1 secondary index sstables sit beside their base table's:
// "<ks>-<table>.<index>-ka-1-Data.db", a prefix of their own.
TEST(ParseSSTableName, OldSecondaryIndexNames) {
  absl::optional<SSTableName> name = ParseSSTablePath(
      "ks/users-0094ac203e7411e59149ef9f87394ca6/ks-users.users_email_idx-ka-3-Filter.db");
  ASSERT_TRUE(name.has_value());
  EXPECT_EQ(name->prefix, "ks-users.users_email_idx-ka-3");
  EXPECT_EQ(name->version, "ka");
  EXPECT_EQ(name->component, "Filter.db");
}

TEST(ParseSSTableName, NewNamesKeepTheirFormat) {
  absl::optional<SSTableName> name = ParseSSTablePath("ks/t-0094ac203e7411e59149ef9f87394ca6/da-4-bti-Rows.db");
  ASSERT_TRUE(name.has_value());
  EXPECT_EQ(name->format, "bti");
  // A keyspace "nb" and table "1" do not turn a 3.0+ name into a 2.x one.
  name = ParseSSTableName("nb-1-big-Data.db", "nb", "1");
  ASSERT_TRUE(name.has_value());
  EXPECT_EQ(name->version, "nb");
  EXPECT_EQ(name->prefix, "nb-1-big");
}

TEST(WrittenBefore21, BigFormatBeforeKaOnly) {
  EXPECT_TRUE(WrittenBefore21(*ParseSSTableName("ks-t-jb-1-Data.db")));
  EXPECT_TRUE(WrittenBefore21(*ParseSSTableName("ks-t-ic-1-Data.db")));
  EXPECT_FALSE(WrittenBefore21(*ParseSSTableName("ks-t-ka-1-Data.db")));
  EXPECT_FALSE(WrittenBefore21(*ParseSSTableName("la-1-big-Data.db")));
  EXPECT_FALSE(WrittenBefore21(*ParseSSTableName("da-1-bti-Data.db")));
}

TEST(TableName, StripsTheIdOnly) {
  EXPECT_EQ(TableName("users-0094ac203e7411e59149ef9f87394ca6"), "users");
  EXPECT_EQ(TableName("users"), "users");
  EXPECT_EQ(TableName("my-table"), "my-table");
  EXPECT_EQ(TableName("users-0094AC203E7411E59149EF9F87394CA6"),
            "users-0094AC203E7411E59149EF9F87394CA6");
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
