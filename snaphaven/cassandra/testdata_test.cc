// The crafted inputs in testdata/ (snapshot manifests, transaction logs,
// TOC files, digest files, each shaped as a Cassandra version writes it or
// as a crash or an index build leaves it) read as their names say. They
// are also the seeds for fuzzing these parsers.

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "snaphaven/cassandra/cassandra_metadata.h"
#include "snaphaven/cassandra/cassandra_path.h"
#include "snaphaven/cassandra/sstable_components.h"
#include "snaphaven/cassandra/sstable_digest.h"

namespace snaphaven {
namespace {

std::string Read(const std::string& name) {
  std::ifstream in("testdata/" + name, std::ios::binary);
  EXPECT_TRUE(in.good()) << "testdata/" << name;
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(Testdata, SnapshotManifestsOfEveryVersion) {
  struct Case {
    const char* file;
    bool parses;
    size_t files;
    bool ephemeral;
    bool created_at;
  };
  for (const Case& c : std::vector<Case>{{"2.1.json", true, 1, false, false},
                                         {"2.2.json", true, 2, false, false},
                                         {"2.2_empty.json", true, 0, false, false},
                                         {"4.1.json", true, 2, false, true},
                                         {"5.0.json", true, 2, false, true},
                                         {"5.0_ephemeral.json", true, 1, true, true},
                                         {"half_written.json", false, 0, false, false},
                                         {"outside.json", false, 0, false, false}}) {
    SCOPED_TRACE(c.file);
    absl::StatusOr<SnapshotManifest> m = ParseSnapshotManifest(Read(std::string("snapshot_manifest/") + c.file));
    ASSERT_EQ(m.ok(), c.parses) << m.status();
    if (!m.ok()) continue;
    EXPECT_EQ(m->files.size(), c.files);
    EXPECT_EQ(m->ephemeral, c.ephemeral);
    EXPECT_EQ(m->created_at.has_value(), c.created_at);
  }
}

TEST(Testdata, TransactionLogs) {
  const std::string id = "8a9c2d80-1e2d-11ee-9f3a-0123456789ab";
  EXPECT_TRUE(IsTxnLogName("nb_txn_flush_" + id + ".log"));
  EXPECT_TRUE(IsTxnLogName("bti-da_txn_flush_" + id + ".log"));
  TxnLog flush = ParseTxnLog(Read("txn_log/nb_txn_flush_" + id + ".log"));
  EXPECT_EQ(flush.state, TxnLog::State::kInFlight);
  EXPECT_EQ(flush.added, std::vector<std::string>{"nb-7-big"});
  TxnLog compaction = ParseTxnLog(Read("txn_log/nb_txn_compaction_" + id + ".log"));
  EXPECT_EQ(compaction.state, TxnLog::State::kCommitted);
  EXPECT_EQ(compaction.added, std::vector<std::string>{"nb-9-big"});
  EXPECT_EQ(compaction.removed, (std::vector<std::string>{"nb-7-big", "nb-8-big"}));
  TxnLog aborted = ParseTxnLog(Read("txn_log/bti-da_txn_flush_" + id + ".log"));
  EXPECT_EQ(aborted.state, TxnLog::State::kAborted);
  EXPECT_EQ(aborted.added, std::vector<std::string>{"da-3-bti"});
  // Cut mid-line by a crash (or read while Cassandra appends): the whole
  // lines count, the torn one is skipped, and the log is still in flight.
  TxnLog torn = ParseTxnLog(Read("txn_log/nb_txn_compaction_torn.log"));
  EXPECT_EQ(torn.state, TxnLog::State::kInFlight);
  EXPECT_EQ(torn.added, std::vector<std::string>{"nb-10-big"});
  EXPECT_TRUE(torn.removed.empty());
  EXPECT_EQ(torn.malformed_lines, 1);
}

TEST(Testdata, TocFilesAreNoAuthority) {
  const SSTableName name = *ParseSSTableName("nb-3-big-Data.db");
  auto present = [](std::vector<std::string> components) {
    return [components](absl::string_view c) {
      return std::find(components.begin(), components.end(), c) != components.end();
    };
  };
  // An index build appended four SAI components; only one was written.
  std::string sai = Read("toc/sai_appended.txt");
  SSTableCompleteness whole = CheckSSTableComplete(
      name, &sai,
      present({"Data.db", "Index.db", "Statistics.db", "CompressionInfo.db", "TOC.txt",
               "SAI+aa+users_idx+ColumnComplete.db"}));
  EXPECT_TRUE(whole.whole()) << whole.missing;
  // Listed, so needed: the compression info.
  whole = CheckSSTableComplete(name, &sai,
                               present({"Data.db", "Index.db", "Statistics.db", "TOC.txt"}));
  EXPECT_EQ(whole.missing, "nb-3-big-CompressionInfo.db is missing");
  // SASI truncated it to its own line: the files on disk are trusted.
  std::string sasi = Read("toc/sasi_truncated.txt");
  whole = CheckSSTableComplete(name, &sasi,
                               present({"Data.db", "Index.db", "Statistics.db", "TOC.txt"}));
  EXPECT_TRUE(whole.whole());
  EXPECT_NE(whole.warning, "");
  EXPECT_EQ(ParseToc(Read("toc/crlf_blank_lines.txt")),
            (std::vector<std::string>{"Statistics.db", "CRC.db", "Data.db", "TOC.txt", "Index.db"}));
}

TEST(Testdata, DigestFilesOfEachVersion) {
  struct Case {
    const char* file;
    const char* component;
    const char* version;
    bool valid;
    const char* describe;  // the expected digest as messages show it
  };
  for (const Case& c : std::vector<Case>{
           {"jb_Digest.sha1", "Digest.sha1", "jb", true, "4a9f1896a599e4b3ff5d19600901de1a0b851bc1"},
           {"upper_hex_Digest.sha1", "Digest.sha1", "jb", true,
            "4a9f1896a599e4b3ff5d19600901de1a0b851bc1"},
           {"ka_Digest.sha1", "Digest.sha1", "ka", true, "2318496372"},
           {"nb_Digest.crc32", "Digest.crc32", "nb", true, "3977617513"},
           {"malformed_Digest.crc32", "Digest.crc32", "nb", false, ""}}) {
    SCOPED_TRACE(c.file);
    absl::StatusOr<absl::optional<ExpectedDigest>> digest =
        ParseDigest(c.component, c.version, Read(std::string("digest/") + c.file));
    ASSERT_EQ(digest.ok(), c.valid) << digest.status();
    if (!c.valid) continue;
    ASSERT_TRUE(digest->has_value());
    EXPECT_EQ((*digest)->Describe(), c.describe);
  }
}

}  // namespace
}  // namespace snaphaven
