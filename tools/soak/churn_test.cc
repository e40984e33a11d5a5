#include "tools/soak/churn.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "snaphaven/cassandra/cassandra_metadata.h"
#include "tools/tree_generator.h"

namespace snaphaven::soak {
namespace {

std::string TempDir(const std::string& name) {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string templ = absl::StrCat(base ? base : "/tmp", "/", name, "_XXXXXX");
  if (mkdtemp(templ.data()) == nullptr) abort();
  return templ;
}

std::vector<std::string> List(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = opendir(dir.c_str())) {
    while (struct dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(n);
    }
    closedir(d);
  }
  return names;
}

std::string Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

uint32_t Crc(const std::string& s) {
  return static_cast<uint32_t>(
      crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(s.data()), s.size()));
}

class ChurnTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = TempDir("churn") + "/data";
    tools::TreeSpec spec;
    spec.keyspaces = {"ks1", "ks2"};
    spec.tables_per_keyspace = 2;
    spec.sstables_per_table = 3;
    spec.index_dirs_per_table = 1;
    spec.snapshot_tags = {"first"};
    spec.data_size = 2048;
    ASSERT_TRUE(tools::GenerateTree(root_, spec).ok());
  }

  ChurnOptions Options() {
    ChurnOptions o;
    o.data_root = root_;
    o.keyspaces = {"ks1", "ks2"};
    o.seed = 42;
    o.data_size = 2048;
    o.abort_fraction = 0.4;  // plenty of detectors
    o.weight_snapshot = 6;
    o.weight_clear_snapshot = 4;
    return o;
  }

  // Every transaction log on disk right now.
  std::vector<std::string> LogsOnDisk(const Churner& churner) {
    std::vector<std::string> logs;
    for (const std::string& store : churner.store_dirs()) {
      for (const std::string& name : List(absl::StrCat(root_, "/", store))) {
        if (absl::StrContains(name, "_txn_")) logs.push_back(absl::StrCat(root_, "/", store, "/", name));
      }
    }
    return logs;
  }

  std::string root_;
};

// The documented format, checked independently of Churner::ParseLogLine:
// TYPE:[<absolute sstable path prefix>,<updateTime>,<numFiles>][<checksum>].
void ExpectWellFormed(const std::string& root, const TxnLogRecord& log) {
  static const std::regex kLine(R"(^(ADD|REMOVE|COMMIT|ABORT):\[(.*),(\d+),(\d+)\]\[(\d+)\]$)");
  static const std::regex kPrefix(R"(^[a-z]{2}-\d+-big$)");
  ASSERT_TRUE(absl::EndsWith(log.contents, "\n")) << log.path;
  const std::string dir = log.path.substr(0, log.path.rfind('/'));
  const std::string name = log.path.substr(log.path.rfind('/') + 1);
  EXPECT_TRUE(std::regex_match(name, std::regex(R"(^nb_txn_(flush|compaction)_[0-9a-f]{8}-[0-9a-f]{4}-1[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\.log$)")))
      << name;
  std::vector<std::string> lines = absl::StrSplit(log.contents, '\n', absl::SkipEmpty());
  for (const std::string& line : lines) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(line, m, kLine)) << line;
    Churner::LogLine parsed;
    ASSERT_TRUE(Churner::ParseLogLine(line, &parsed)) << line;
    EXPECT_EQ(parsed.type, m[1].str());
    EXPECT_EQ(parsed.path, m[2].str());
    const std::string type = m[1], path = m[2];
    if (type == "ADD" || type == "REMOVE") {
      EXPECT_EQ(path.substr(0, path.rfind('/')), dir) << "an sstable of the log's directory: " << line;
      EXPECT_TRUE(absl::StartsWith(path, root + "/")) << line;
      EXPECT_TRUE(std::regex_match(path.substr(path.rfind('/') + 1), kPrefix)) << line;
      EXPECT_GT(std::stoll(m[4]), 0) << "numFiles: " << line;
    } else {
      EXPECT_EQ(path, "") << line;
      EXPECT_EQ(m[3].str() + "," + m[4].str(), "0,0") << line;
    }
    const std::string text = line.substr(0, line.rfind("]["));
    if (type == "ABORT") {
      EXPECT_EQ(m[5].str(), "1") << line;
    } else {
      EXPECT_EQ(m[5].str(), absl::StrCat(Crc(text + "]"))) << line;
    }
  }
}

TEST_F(ChurnTest, AbortedGenerationsNeverCommitAndLogsParse) {
  absl::StatusOr<std::unique_ptr<Churner>> created = Churner::Create(Options());
  ASSERT_TRUE(created.ok()) << created.status();
  Churner& churner = **created;
  for (int i = 0; i < 1500; ++i) {
    ASSERT_TRUE(churner.Step(/*pause=*/false).ok());
    // Whatever a scanner could read at any instant: an aborted log never
    // also commits, and every line on disk is already well formed.
    if (i % 5 == 0) {
      for (const std::string& path : LogsOnDisk(churner)) {
        std::string text = Read(path);
        EXPECT_FALSE(absl::StrContains(text, "COMMIT:") && absl::StrContains(text, "ABORT:")) << text;
        TxnLog parsed = ParseTxnLog(text);
        EXPECT_EQ(parsed.malformed_lines, 0) << text;
      }
    }
  }
  ASSERT_TRUE(churner.Drain(false).ok());
  ASSERT_TRUE(churner.LeaveUncommittedFlush().ok());

  const ChurnStats& stats = churner.stats();
  EXPECT_GT(stats.flushes_aborted, 0);
  EXPECT_GT(stats.flushes_committed, 0);
  EXPECT_GT(stats.compactions_committed, 0);
  EXPECT_GT(stats.snapshots_taken, 0);
  EXPECT_GT(stats.stats_rewrites, 0);

  std::map<std::string, const TxnLogRecord*> log_of;  // added key -> log
  for (const TxnLogRecord& log : churner.txn_logs()) {
    ExpectWellFormed(root_, log);
    TxnLog parsed = ParseTxnLog(log.contents);  // snaphaven's own reader
    EXPECT_EQ(parsed.malformed_lines, 0) << log.contents;
    EXPECT_EQ(parsed.state == TxnLog::State::kCommitted, log.committed) << log.contents;
    EXPECT_EQ(parsed.state == TxnLog::State::kAborted, log.aborted) << log.contents;
    EXPECT_EQ(parsed.state == TxnLog::State::kInFlight, log.pending) << log.contents;
    ASSERT_EQ(parsed.added.size(), log.added.size());
    for (size_t i = 0; i < log.added.size(); ++i) {
      EXPECT_TRUE(absl::EndsWith(log.added[i], "/" + parsed.added[i]));
      EXPECT_TRUE(log_of.emplace(log.added[i], &log).second) << "added twice: " << log.added[i];
    }
    for (size_t i = 0; i < log.removed.size(); ++i) {
      EXPECT_TRUE(absl::EndsWith(log.removed[i], "/" + parsed.removed[i]));
    }
  }

  int aborted = 0;
  for (const auto& [key, fate] : churner.sstables()) {
    if (fate == Fate::kLive || fate == Fate::kCompacted) {
      if (!log_of.count(key)) continue;  // generated by the tree: no log
      const std::string& text = log_of[key]->contents;
      EXPECT_TRUE(absl::StrContains(text, "\nCOMMIT:[,0,0][")) << key << "\n" << text;
      EXPECT_FALSE(absl::StrContains(text, "ABORT:")) << key;
      continue;
    }
    ASSERT_TRUE(log_of.count(key)) << key << " has no log";
    const std::string& text = log_of[key]->contents;
    // Never a COMMIT for an aborted or never-committed generation.
    EXPECT_FALSE(absl::StrContains(text, "COMMIT:")) << key << "\n" << text;
    if (fate == Fate::kAborted) {
      ++aborted;
      EXPECT_TRUE(absl::EndsWith(text, "ABORT:[,0,0][1]\n")) << text;
      // Its files are gone (deleted before the log).
      const std::string dir = absl::StrCat(root_, "/", key.substr(0, key.rfind('/')));
      const std::string prefix = key.substr(key.rfind('/') + 1) + "-";
      for (const std::string& name : List(dir)) {
        EXPECT_FALSE(absl::StartsWith(name, prefix)) << "left behind: " << name;
      }
    } else {
      EXPECT_EQ(fate, Fate::kUncommitted) << key;
      EXPECT_TRUE(absl::StartsWith(text, "ADD:[")) << text;
    }
  }
  EXPECT_EQ(aborted, stats.flushes_aborted + stats.compactions_aborted);

  // Only the never-committed flush's log is left on disk, with its TOC.txt.
  std::vector<std::string> logs = LogsOnDisk(churner);
  ASSERT_EQ(logs.size(), 1u);
  EXPECT_EQ(Read(logs[0]), churner.txn_logs().back().contents);
  EXPECT_TRUE(churner.txn_logs().back().pending);
  const std::string& uncommitted = churner.txn_logs().back().added[0];
  struct stat st;
  EXPECT_EQ(stat(absl::StrCat(root_, "/", uncommitted, "-TOC.txt").c_str(), &st), 0);

  // No snapshot holds an sstable that was not committed when it was taken.
  for (const auto& [unit, record] : churner.snapshots()) {
    for (const auto& [rel, sig] : record.files) {
      std::string name = rel.substr(rel.rfind('/') + 1);
      if (!absl::EndsWith(name, "-Data.db")) continue;
      std::string store = rel.substr(0, rel.rfind('/'));
      // ks/table/snapshots/tag[/.idx] -> ks/table[/.idx]
      std::vector<std::string> parts = absl::StrSplit(store, '/');
      std::string live = absl::StrCat(parts[0], "/", parts[1]);
      if (parts.size() == 5) absl::StrAppend(&live, "/", parts[4]);
      std::string key = absl::StrCat(live, "/", name.substr(0, name.size() - 8));
      auto fate = churner.sstables().find(key);
      ASSERT_NE(fate, churner.sstables().end()) << key;
      EXPECT_TRUE(fate->second == Fate::kLive || fate->second == Fate::kCompacted)
          << key << " is " << FateName(fate->second);
    }
  }
}

TEST_F(ChurnTest, SameSeedSameChurn) {
  std::string other = TempDir("churn2") + "/data";
  tools::TreeSpec spec;
  spec.keyspaces = {"ks1", "ks2"};
  spec.tables_per_keyspace = 2;
  spec.sstables_per_table = 3;
  spec.index_dirs_per_table = 1;
  spec.snapshot_tags = {"first"};
  spec.data_size = 2048;
  ASSERT_TRUE(tools::GenerateTree(other, spec).ok());
  ChurnOptions a = Options(), b = Options();
  b.data_root = other;
  auto ca = Churner::Create(a);
  auto cb = Churner::Create(b);
  ASSERT_TRUE(ca.ok() && cb.ok());
  for (int i = 0; i < 400; ++i) {
    ASSERT_TRUE((*ca)->Step(false).ok());
    ASSERT_TRUE((*cb)->Step(false).ok());
  }
  EXPECT_EQ((*ca)->sstables(), (*cb)->sstables());
  EXPECT_EQ((*ca)->live_versions(), (*cb)->live_versions());
  EXPECT_EQ((*ca)->stats().flushes_aborted, (*cb)->stats().flushes_aborted);
  EXPECT_EQ((*ca)->stats().snapshots_taken, (*cb)->stats().snapshots_taken);
}

TEST(ParseLogLineTest, Format) {
  Churner::LogLine l;
  ASSERT_TRUE(Churner::ParseLogLine("ADD:[/d/ks/t-1/nb-7-big,0,8][123]", &l));
  EXPECT_EQ(l.type, "ADD");
  EXPECT_EQ(l.path, "/d/ks/t-1/nb-7-big");
  EXPECT_EQ(l.num_files, 8);
  EXPECT_EQ(l.checksum, "123");
  ASSERT_TRUE(Churner::ParseLogLine("REMOVE:[/d/a,b/nb-1-big,1700000000000,8][9]", &l));
  EXPECT_EQ(l.path, "/d/a,b/nb-1-big");
  EXPECT_EQ(l.update_time, 1700000000000);
  ASSERT_TRUE(Churner::ParseLogLine("COMMIT:[,0,0][42]", &l));
  EXPECT_EQ(l.path, "");
  EXPECT_FALSE(Churner::ParseLogLine("COMMIT:[,0,0]", &l));
  EXPECT_FALSE(Churner::ParseLogLine("MOVE:[,0,0][1]", &l));
  EXPECT_FALSE(Churner::ParseLogLine("ADD:[/x,0][1]", &l));
  EXPECT_FALSE(Churner::ParseLogLine("ADD:[/x,0,8][12a]", &l));
}

}  // namespace
}  // namespace snaphaven::soak
