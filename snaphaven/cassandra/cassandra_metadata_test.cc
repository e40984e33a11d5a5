#include "snaphaven/cassandra/cassandra_metadata.h"

#include <gtest/gtest.h>

namespace snaphaven {
namespace {

using Files = std::vector<std::string>;

TEST(ParseSnapshotManifest, EveryVersionsForm) {
  // 2.1 to 4.0: only "files", with a trailing newline.
  auto old = ParseSnapshotManifest("{\"files\":[\"na-1-big-Data.db\",\"na-2-big-Data.db\"]}\n");
  ASSERT_TRUE(old.ok()) << old.status();
  EXPECT_EQ(old->files, (Files{"na-1-big-Data.db", "na-2-big-Data.db"}));
  EXPECT_FALSE(old->ephemeral);
  EXPECT_FALSE(old->created_at.has_value());

  // 4.1+: pretty-printed, timestamps, ephemeral flag, index sstables.
  auto modern = ParseSnapshotManifest(R"({
  "files" : [ "nb-1-big-Data.db", ".users_idx/nb-1-big-Data.db" ],
  "created_at" : "2024-05-01T10:00:00.123Z",
  "expires_at" : null,
  "ephemeral" : false
})");
  ASSERT_TRUE(modern.ok()) << modern.status();
  EXPECT_EQ(modern->files, (Files{"nb-1-big-Data.db", ".users_idx/nb-1-big-Data.db"}));
  ASSERT_TRUE(modern->created_at.has_value());
  EXPECT_EQ(absl::ToUnixMillis(*modern->created_at), 1714557600123);

  auto ephemeral = ParseSnapshotManifest(R"({"files":[],"ephemeral":true})");
  ASSERT_TRUE(ephemeral.ok());
  EXPECT_TRUE(ephemeral->ephemeral);

  // Numeric (epoch millis) timestamps and unknown keys are accepted.
  auto numeric = ParseSnapshotManifest(
      R"({"files":["oa-3-big-Data.db"],"created_at":1714557600123,"expires_at":1714557700000,"future_key":{"x":[1,2]}})");
  ASSERT_TRUE(numeric.ok()) << numeric.status();
  EXPECT_EQ(absl::ToUnixMillis(*numeric->created_at), 1714557600123);
}

TEST(ParseSnapshotManifest, HalfWrittenOrWrongIsIncomplete) {
  const std::string whole = R"({"files":["nb-1-big-Data.db","nb-2-big-Data.db"],"created_at":"2024-05-01T10:00:00Z"})";
  for (size_t cut = 0; cut < whole.size(); ++cut) {
    EXPECT_FALSE(ParseSnapshotManifest(whole.substr(0, cut)).ok()) << "cut at " << cut;
  }
  EXPECT_TRUE(ParseSnapshotManifest(whole).ok());
  EXPECT_FALSE(ParseSnapshotManifest("").ok());
  EXPECT_FALSE(ParseSnapshotManifest("[]").ok());
  EXPECT_FALSE(ParseSnapshotManifest(R"({"nofiles":[]})").ok());
  EXPECT_FALSE(ParseSnapshotManifest(R"({"files":"nb-1-big-Data.db"})").ok());
  EXPECT_FALSE(ParseSnapshotManifest(R"({"files":[1]})").ok());
  EXPECT_FALSE(ParseSnapshotManifest(R"({"files":["../../other/nb-1-big-Data.db"]})").ok());
  EXPECT_FALSE(ParseSnapshotManifest(R"({"files":["/etc/passwd"]})").ok());
}

TEST(ParseToc, ComponentsOnePerLine) {
  EXPECT_EQ(ParseToc("Data.db\nTOC.txt\r\nStatistics.db\n\n  Filter.db  \n"),
            (Files{"Data.db", "TOC.txt", "Statistics.db", "Filter.db"}));
  EXPECT_TRUE(ParseToc("").empty());
}

TEST(IsTxnLogName, Forms) {
  EXPECT_TRUE(IsTxnLogName("nb_txn_flush_e4d9c0a0-0a5b-11ef-9a4b-8d0e7c5a1f11.log"));
  EXPECT_TRUE(IsTxnLogName("ma_txn_compaction_1e2d.log"));
  EXPECT_TRUE(IsTxnLogName("nb_txn_anticompactionafterrepair_1.log"));
  EXPECT_FALSE(IsTxnLogName("nb-1-big-Data.db"));
  EXPECT_FALSE(IsTxnLogName("nb_txn_flush_1.log.tmp"));
}

TEST(ParseTxnLog, InFlightCommittedAborted) {
  const std::string add = "ADD:[/var/lib/cassandra/data/ks/t-0a/nb-7-big,0,8][2613697870]\n";
  const std::string remove = "REMOVE:[/var/lib/cassandra/data/ks/t-0a/nb-3-big,1714557600123,8][429]\n";
  TxnLog pending = ParseTxnLog(add + remove);
  EXPECT_EQ(pending.state, TxnLog::State::kInFlight);
  EXPECT_EQ(pending.added, Files{"nb-7-big"});
  EXPECT_EQ(pending.removed, Files{"nb-3-big"});
  EXPECT_EQ(pending.malformed_lines, 0);

  TxnLog committed = ParseTxnLog(add + remove + "COMMIT:[,0,0][2613697870]\n");
  EXPECT_EQ(committed.state, TxnLog::State::kCommitted);
  TxnLog aborted = ParseTxnLog(add + "ABORT:[,0,0][1]\n");
  EXPECT_EQ(aborted.state, TxnLog::State::kAborted);
  EXPECT_EQ(aborted.added, Files{"nb-7-big"});
}

TEST(ParseTxnLog, MalformedLinesAreSkippedNotFatal) {
  TxnLog log = ParseTxnLog(
      "ADD:[/d/ks/t/nb-7-big,0,8][1]\n"
      "garbage line\n"
      "UNKNOWN:[/d/ks/t/nb-9-big,0,8][1]\n"
      "ADD:[/d/ks/t/nb-8-big,0,8][1]\n"
      "COMMIT:[,0,0]");  // torn last line: no checksum yet
  EXPECT_EQ(log.added, (Files{"nb-7-big", "nb-8-big"}));
  EXPECT_EQ(log.state, TxnLog::State::kInFlight) << "a torn COMMIT is not a commit";
  EXPECT_EQ(log.malformed_lines, 3);
  EXPECT_EQ(ParseTxnLog("").state, TxnLog::State::kInFlight);
}

TEST(ParseTxnLog, IndexDirLogsAndOddPaths) {
  TxnLog log = ParseTxnLog(
      "ADD:[/data/ks/t-0a/.t_idx/nb-2-big,0,8][1]\n"
      "ADD:[/mnt/disk,2/data/ks/t-0a/nb-5-big,0,8][1]\n"  // a comma in the path
      "COMMIT:[,0,0][5]\n");
  EXPECT_EQ(log.added, (Files{"nb-2-big", "nb-5-big"}));
  EXPECT_EQ(log.state, TxnLog::State::kCommitted);
}

}  // namespace
}  // namespace snaphaven
