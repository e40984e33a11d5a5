#include "snaphaven/selector.h"

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"

namespace snaphaven {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1700000000);
const int64_t kOld = absl::ToUnixNanos(kNow - absl::Minutes(5));
const int64_t kFresh = absl::ToUnixNanos(kNow - absl::Seconds(2));

// A scan under construction plus the metadata texts the selector reads.
class SelectorTest : public ::testing::Test {
 public:
  size_t Add(const std::string& path, PathKind kind, int root = 0, int64_t mtime = kOld,
             int64_t size = 10) {
    SourceFile f;
    f.relative_path = path;
    f.root = root;
    f.kind = kind;
    f.stat.type = FileType::kRegular;
    f.stat.ino = ++next_ino_;
    f.stat.size = size;
    f.stat.mtime_ns = mtime;
    scan_.files.push_back(f);
    return scan_.files.size() - 1;
  }
  void AddText(const std::string& path, PathKind kind, const std::string& text, int root = 0,
               int64_t mtime = kOld) {
    texts_by_path_[{root, path}] = text;
    Add(path, kind, root, mtime);
  }
  // An sstable's components (TOC.txt listing them all) in `dir`.
  void AddSSTable(const std::string& dir, const std::string& prefix, PathKind kind, int root = 0,
                  int64_t mtime = kOld, bool with_toc = true) {
    for (const char* c : {"Data.db", "Index.db", "Statistics.db"}) {
      Add(absl::StrCat(dir, "/", prefix, "-", c), kind, root, mtime);
    }
    if (with_toc) {
      AddText(absl::StrCat(dir, "/", prefix, "-TOC.txt"), kind,
              "Data.db\nIndex.db\nStatistics.db\nTOC.txt\n", root, mtime);
    }
  }
  void AddSnapshot(const std::string& unit, const std::string& manifest, int64_t mtime = kOld) {
    AddSSTable(unit, "nb-1-big", PathKind::kSnapshot);
    AddSSTable(unit + "/.t_idx", "nb-1-big", PathKind::kSnapshot);
    AddText(unit + "/manifest.json", PathKind::kSnapshot, manifest, 0, mtime);
    Add(unit + "/schema.cql", PathKind::kSnapshot);
    scan_.snapshot_dirs.emplace_back(0, unit);
    scan_.snapshot_dirs.emplace_back(0, unit + "/.t_idx");
  }

  Selection Select(bool move = true) {
    std::stable_sort(scan_.files.begin(), scan_.files.end(),
                     [](const SourceFile& a, const SourceFile& b) {
                       return a.relative_path < b.relative_path;
                     });
    absl::flat_hash_map<size_t, std::string> texts;
    for (size_t i = 0; i < scan_.files.size(); ++i) {
      auto it = texts_by_path_.find({scan_.files[i].root, scan_.files[i].relative_path});
      if (it != texts_by_path_.end()) texts[i] = it->second;
    }
    // The selector asks for exactly the files it then reads.
    std::set<size_t> wanted;
    for (size_t i : MetadataToRead(scan_)) wanted.insert(i);
    for (const auto& [i, text] : texts) EXPECT_TRUE(wanted.count(i)) << scan_.files[i].relative_path;
    SelectOptions options;
    options.move = move;
    options.now = kNow;
    options.settle_time = absl::Seconds(10);
    options.record_decisions = true;
    return SelectFiles(scan_, texts, destination_, options);
  }

  std::set<std::string> Eligible(const Selection& s) {
    std::set<std::string> out;
    for (size_t i : s.eligible) out.insert(scan_.files[i].relative_path);
    return out;
  }
  std::vector<std::string> UnitFiles(const Selection& s, size_t u) {
    std::vector<std::string> out;
    for (size_t i : s.units[u].files) out.push_back(scan_.files[i].relative_path);
    return out;
  }
  std::string Decisions(const Selection& s) {
    std::string out;
    for (const std::string& d : s.decisions) absl::StrAppend(&out, d, "\n");
    return out;
  }

  ScanResult scan_;
  Manifest destination_;
  std::map<std::pair<int, std::string>, std::string> texts_by_path_;
  uint64_t next_ino_ = 100;
};

const char kUnit[] = "ks/t/snapshots/s1";
const char kManifest[] = R"({"files":["nb-1-big-Data.db",".t_idx/nb-1-big-Data.db"]})";

TEST_F(SelectorTest, CompleteSnapshotIsCopiedAndMovableManifestLast) {
  AddSnapshot(kUnit, kManifest);
  Selection s = Select();
  EXPECT_EQ(Eligible(s).size(), scan_.files.size());
  ASSERT_EQ(s.units.size(), 1u) << Decisions(s);
  EXPECT_EQ(s.units[0].name, kUnit);
  std::vector<std::string> files = UnitFiles(s, 0);
  EXPECT_EQ(files.size(), scan_.files.size());
  EXPECT_EQ(files.back(), "ks/t/snapshots/s1/manifest.json");
  ASSERT_EQ(s.units[0].dirs.size(), 2u);
  EXPECT_EQ(s.units[0].dirs[0].second, "ks/t/snapshots/s1/.t_idx");  // deepest first
  EXPECT_EQ(s.units[0].dirs[1].second, "ks/t/snapshots/s1");
  EXPECT_TRUE(Select(/*move=*/false).units.empty());
}

struct IncompleteCase {
  const char* name;
  std::function<void(SelectorTest&)> build;
  const char* reason;
};

TEST_F(SelectorTest, IncompleteSnapshotsAreCopiedButNeverMovable) {
  const std::vector<IncompleteCase> cases = {
      {"no manifest",
       [](SelectorTest& t) {
         t.AddSSTable(kUnit, "nb-1-big", PathKind::kSnapshot);
       },
       "no manifest.json"},
      {"half-written manifest",
       [](SelectorTest& t) {
         t.AddSSTable(kUnit, "nb-1-big", PathKind::kSnapshot);
         t.AddText(std::string(kUnit) + "/manifest.json", PathKind::kSnapshot, "{\"files\":[\"nb-1-b");
       },
       "does not parse"},
      {"listed Data.db missing",
       [](SelectorTest& t) {
         t.AddSSTable(kUnit, "nb-1-big", PathKind::kSnapshot);
         t.AddText(std::string(kUnit) + "/manifest.json", PathKind::kSnapshot,
                   R"({"files":["nb-1-big-Data.db","nb-2-big-Data.db"]})");
       },
       "nb-2-big-Data.db is missing"},
      {"TOC component missing",
       [](SelectorTest& t) {
         t.Add(std::string(kUnit) + "/nb-1-big-Data.db", PathKind::kSnapshot);
         t.AddText(std::string(kUnit) + "/nb-1-big-TOC.txt", PathKind::kSnapshot,
                   "Data.db\nFilter.db\nTOC.txt\n");
         t.AddText(std::string(kUnit) + "/manifest.json", PathKind::kSnapshot,
                   R"({"files":["nb-1-big-Data.db"]})");
       },
       "nb-1-big-Filter.db (listed in its TOC.txt) is missing"},
      {"TOC missing",
       [](SelectorTest& t) {
         t.Add(std::string(kUnit) + "/nb-1-big-Data.db", PathKind::kSnapshot);
         t.AddText(std::string(kUnit) + "/manifest.json", PathKind::kSnapshot,
                   R"({"files":["nb-1-big-Data.db"]})");
       },
       "nb-1-big-TOC.txt is missing"},
      {"younger than the settle time",
       [](SelectorTest& t) { t.AddSnapshot(kUnit, kManifest, kFresh); },
       "younger than --settle_time"},
  };
  for (const IncompleteCase& c : cases) {
    SCOPED_TRACE(c.name);
    scan_ = ScanResult();
    texts_by_path_.clear();
    c.build(*this);
    Selection s = Select();
    EXPECT_TRUE(s.units.empty());
    EXPECT_EQ(Eligible(s).size(), scan_.files.size()) << "still copied";
    EXPECT_NE(Decisions(s).find(c.reason), std::string::npos) << Decisions(s);
  }
}

TEST_F(SelectorTest, EphemeralSnapshotsAreNeitherCopiedNorMoved) {
  AddSnapshot("ks/t/snapshots/repair-1", kManifest);
  Add("ks/t/snapshots/repair-1/ephemeral.snapshot", PathKind::kSnapshot);
  AddSnapshot("ks/t/snapshots/repair-2",
              R"({"files":["nb-1-big-Data.db",".t_idx/nb-1-big-Data.db"],"ephemeral":true})");
  Selection s = Select();
  EXPECT_TRUE(Eligible(s).empty());
  EXPECT_TRUE(s.units.empty());
  EXPECT_NE(Decisions(s).find("ephemeral"), std::string::npos);
}

TEST_F(SelectorTest, ResumedMoveCountsRecordedFilesAsPresent) {
  // A killed move deleted everything but manifest.json and schema.cql.
  AddText(std::string(kUnit) + "/manifest.json", PathKind::kSnapshot, kManifest);
  Add(std::string(kUnit) + "/schema.cql", PathKind::kSnapshot);
  for (const char* path : {"nb-1-big-Data.db", ".t_idx/nb-1-big-Data.db", "nb-1-big-TOC.txt",
                           ".t_idx/nb-1-big-TOC.txt"}) {
    destination_.Put(absl::StrCat(kUnit, "/", path), {10, kOld, 0644, 1, 1});
  }
  Selection s = Select();
  ASSERT_EQ(s.units.size(), 1u) << Decisions(s);
  EXPECT_EQ(UnitFiles(s, 0).back(), "ks/t/snapshots/s1/manifest.json");
  // Without those records it would not be complete.
  destination_ = Manifest();
  EXPECT_TRUE(Select().units.empty());
}

TEST_F(SelectorTest, LiveSSTablesFollowTransactionLogs) {
  const std::string dir = "ks/t";
  AddSSTable(dir, "nb-1-big", PathKind::kLive);  // no log: complete
  AddSSTable(dir, "nb-2-big", PathKind::kLive);  // ADD, pending
  AddSSTable(dir, "nb-3-big", PathKind::kLive);  // ADD, committed
  AddSSTable(dir, "nb-4-big", PathKind::kLive);  // REMOVE, committed
  AddSSTable(dir, "nb-5-big", PathKind::kLive);  // ADD, aborted
  AddSSTable(dir, "nb-6-big", PathKind::kLive, 0, kOld, /*with_toc=*/false);
  Add(dir + "/nb-7-big-Data.db", PathKind::kLive);  // TOC lists a missing file
  AddText(dir + "/nb-7-big-TOC.txt", PathKind::kLive, "Data.db\nIndex.db\nTOC.txt\n");
  AddSSTable(dir + "/.t_idx", "nb-8-big", PathKind::kLive);  // index sstable, pending in its own log
  AddText(dir + "/nb_txn_flush_a.log", PathKind::kLive, "ADD:[/data/ks/t/nb-2-big,0,4][1]\n");
  AddText(dir + "/nb_txn_compaction_b.log", PathKind::kLive,
          "ADD:[/data/ks/t/nb-3-big,0,4][1]\nREMOVE:[/data/ks/t/nb-4-big,5,4][2]\nCOMMIT:[,0,0][3]\n");
  AddText(dir + "/nb_txn_flush_c.log", PathKind::kLive, "ADD:[/data/ks/t/nb-5-big,0,4][1]\nABORT:[,0,0][2]\n");
  AddText(dir + "/.t_idx/nb_txn_flush_d.log", PathKind::kLive, "ADD:[/data/ks/t/.t_idx/nb-8-big,0,4][1]\n");
  Add(dir + "/nb-9-big-Statistics.db.1234.tmp", PathKind::kLive);
  Add(dir + "/tmp-la-10-big-Data.db", PathKind::kLive);
  Add(dir + "/tmplink-la-11-big-Data.db", PathKind::kLive);

  Selection s = Select();
  std::set<std::string> prefixes;
  for (const std::string& path : Eligible(s)) prefixes.insert(path.substr(0, path.rfind('-')));
  EXPECT_EQ(prefixes, (std::set<std::string>{"ks/t/nb-1-big", "ks/t/nb-3-big"})) << Decisions(s);
  EXPECT_EQ(Eligible(s).size(), 8u);  // 4 components each
  EXPECT_TRUE(s.units.empty()) << "live sstables are never moved";
  for (const char* key : {"ks/t/nb-1-big", "ks/t/nb-4-big", "ks/t/nb-6-big", "ks/t/.t_idx/nb-8-big"}) {
    EXPECT_TRUE(s.live_sstables.contains(key)) << key;
  }
  EXPECT_FALSE(s.live_sstables.contains("ks/t/tmp-la-10-big"));
}

TEST_F(SelectorTest, BackupsSettleAndMoveWithTocLast) {
  AddSSTable("ks/t/backups", "nb-1-big", PathKind::kBackup);
  AddSSTable("ks/t/backups", "nb-2-big", PathKind::kBackup, 0, kFresh);
  AddSSTable("ks/t/backups/.t_idx", "nb-3-big", PathKind::kBackup);
  Add("ks/t/backups/nb-4-big-Data.db", PathKind::kBackup);  // no TOC yet
  Selection s = Select();
  EXPECT_EQ(Eligible(s).size(), 8u) << Decisions(s);
  ASSERT_EQ(s.units.size(), 2u);
  EXPECT_EQ(UnitFiles(s, 0).back(), "ks/t/backups/nb-1-big-TOC.txt");
  EXPECT_EQ(UnitFiles(s, 1).back(), "ks/t/backups/.t_idx/nb-3-big-TOC.txt");
  EXPECT_NE(Decisions(s).find("nb-2-big: changed within --settle_time"), std::string::npos);
}

TEST_F(SelectorTest, SeveralRootsMergeButConflictsAreErrors) {
  // One snapshot spread over two roots; the manifest lives in root 1.
  AddSSTable(kUnit, "nb-1-big", PathKind::kSnapshot, 0);
  AddSSTable(kUnit, "nb-2-big", PathKind::kSnapshot, 1);
  AddText(std::string(kUnit) + "/manifest.json", PathKind::kSnapshot,
          R"({"files":["nb-1-big-Data.db","nb-2-big-Data.db"]})", 1);
  scan_.snapshot_dirs = {{0, kUnit}, {1, kUnit}};
  Selection s = Select();
  ASSERT_EQ(s.units.size(), 1u) << Decisions(s);
  EXPECT_EQ(s.units[0].dirs.size(), 2u);
  EXPECT_TRUE(s.errors.empty());

  // The same path in both roots with different contents.
  Add(std::string(kUnit) + "/schema.cql", PathKind::kSnapshot, 0, kOld, 10);
  Add(std::string(kUnit) + "/schema.cql", PathKind::kSnapshot, 1, kOld, 11);
  s = Select();
  ASSERT_EQ(s.errors.size(), 1u);
  EXPECT_NE(s.errors[0].find("ks/t/snapshots/s1/schema.cql"), std::string::npos);
  EXPECT_FALSE(Eligible(s).count("ks/t/snapshots/s1/schema.cql"));
  EXPECT_TRUE(s.units.empty()) << "a snapshot with a conflict is not moved";
}

}  // namespace
}  // namespace snaphaven
