#include "snaphaven/cycle/selector.h"

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
    SelectOptions options;
    options.move = move;
    options.now = kNow;
    options.settle_time = absl::Seconds(10);
    options.record_decisions = true;
    states_.clear();
    for (const SourceFile& f : scan_.files) {
      states_.push_back(current_.count(f.relative_path) ? CopyState::kCurrentSameSource
                                                        : CopyState::kNone);
    }
    options.states = &states_;
    // As the cycle does: the texts of the files the selector asks for.
    absl::flat_hash_map<size_t, std::string> texts;
    read_.clear();
    for (size_t i : MetadataToRead(scan_, options)) {
      read_.insert(scan_.files[i].relative_path);
      auto it = texts_by_path_.find({scan_.files[i].root, scan_.files[i].relative_path});
      if (it != texts_by_path_.end()) texts[i] = it->second;
    }
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
  std::set<std::string> current_;  // paths recorded current at the destination
  std::vector<CopyState> states_;
  std::set<std::string> read_;     // what the last Select asked to read
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
       "lists nb-2-big-Data.db, which is missing"},
      {"a required component missing (only TOC-listed ones are not required)",
       [](SelectorTest& t) {
         t.Add(std::string(kUnit) + "/nb-1-big-Data.db", PathKind::kSnapshot);
         t.AddText(std::string(kUnit) + "/nb-1-big-TOC.txt", PathKind::kSnapshot,
                   "Data.db\nFilter.db\nTOC.txt\n");
         t.AddText(std::string(kUnit) + "/manifest.json", PathKind::kSnapshot,
                   R"({"files":["nb-1-big-Data.db"]})");
       },
       "nb-1-big-Index.db is missing"},
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

// A live sstable whose every file is a current copy was whole when copied
// and sstables are immutable: its TOC.txt is not read again, nor its
// completeness re-checked. One with a file not current is checked in full.
TEST_F(SelectorTest, WhollyCurrentLiveSSTablesAreNotReadAgain) {
  // Its TOC.txt names a component that is not there: incomplete if checked.
  for (const char* c : {"Data.db", "Statistics.db"}) Add(absl::StrCat("ks/t/nb-1-big-", c), PathKind::kLive);
  AddText("ks/t/nb-1-big-TOC.txt", PathKind::kLive, "Data.db\nIndex.db\nStatistics.db\nTOC.txt\n");
  AddSSTable("ks/t", "nb-2-big", PathKind::kLive);
  for (const char* c : {"Data.db", "Statistics.db", "TOC.txt"}) current_.insert(absl::StrCat("ks/t/nb-1-big-", c));
  for (const char* c : {"Data.db", "Index.db", "Statistics.db"}) current_.insert(absl::StrCat("ks/t/nb-2-big-", c));
  Selection s = Select(/*move=*/false);
  EXPECT_EQ(read_, (std::set<std::string>{"ks/t/nb-2-big-TOC.txt"}));
  EXPECT_EQ(Eligible(s).size(), scan_.files.size()) << Decisions(s);
  EXPECT_TRUE(s.held_back.empty());

  current_.erase("ks/t/nb-1-big-Statistics.db");  // as if rewritten since
  s = Select(/*move=*/false);
  EXPECT_EQ(read_, (std::set<std::string>{"ks/t/nb-1-big-TOC.txt", "ks/t/nb-2-big-TOC.txt"}));
  ASSERT_EQ(s.held_back.size(), 1u) << Decisions(s);
  EXPECT_EQ(s.held_back[0].name, "ks/t/nb-1-big");
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

// The TOC is not an authority: an index build appends to the TOC that the
// snapshot shares with the live sstable through a hard link, listing files
// the snapshot never gets. Before the rule, such snapshots were never moved.
TEST_F(SelectorTest, SnapshotWhoseTocListsIndexFilesItNeverGotIsMoved) {
  AddSSTable(kUnit, "oa-1-big", PathKind::kSnapshot);
  texts_by_path_[{0, std::string(kUnit) + "/oa-1-big-TOC.txt"}] =
      "Data.db\nIndex.db\nStatistics.db\nTOC.txt\nSAI+aa+idx+Meta.db\nSAI+aa+idx+ColumnComplete.db\n";
  AddText(std::string(kUnit) + "/manifest.json", PathKind::kSnapshot,
          R"({"files":["oa-1-big-Data.db"]})");
  Selection s = Select();
  ASSERT_EQ(s.units.size(), 1u) << Decisions(s);
  EXPECT_TRUE(s.held_back.empty());
}

// 2.0 wrote no manifest.json: its snapshots are complete once each sstable
// is whole and nothing changed for the settle time. A newer sstable without
// a manifest is still being snapshotted.
TEST_F(SelectorTest, A20SnapshotWithoutManifestMovesOnceSettled) {
  const std::string unit = "Keyspace1/Standard1/snapshots/s1";
  AddSSTable(unit, "Keyspace1-Standard1-jb-1", PathKind::kSnapshot);
  AddSSTable(unit, "Keyspace1-Standard1.idx-jb-1", PathKind::kSnapshot);
  Selection s = Select();
  ASSERT_EQ(s.units.size(), 1u) << Decisions(s);
  EXPECT_EQ(s.units[0].files.size(), scan_.files.size());

  scan_ = ScanResult();
  texts_by_path_.clear();
  AddSSTable(unit, "Keyspace1-Standard1-jb-1", PathKind::kSnapshot, 0, kFresh);
  s = Select();
  EXPECT_TRUE(s.units.empty());
  ASSERT_EQ(s.held_back.size(), 1u);
  EXPECT_EQ(s.held_back[0].kind, HeldBack::Kind::kSnapshot);
  EXPECT_NE(s.held_back[0].reason.find("settle"), std::string::npos) << s.held_back[0].reason;

  scan_ = ScanResult();
  texts_by_path_.clear();
  AddSSTable("ks/t-0094ac203e7411e59149ef9f87394ca6/snapshots/s1", "ks-t-ka-1", PathKind::kSnapshot);
  s = Select();
  EXPECT_TRUE(s.units.empty()) << "2.1 writes a manifest.json: wait for it";
  ASSERT_EQ(s.held_back.size(), 1u);
  EXPECT_NE(s.held_back[0].reason.find("no manifest.json"), std::string::npos);

  // 5.0's BTI version "da" sorts before "ka" yet is no 2.0 sstable.
  scan_ = ScanResult();
  texts_by_path_.clear();
  AddSSTable("ks/t-0094ac203e7411e59149ef9f87394ca6/snapshots/s1", "da-1-bti", PathKind::kSnapshot);
  Add("ks/t-0094ac203e7411e59149ef9f87394ca6/snapshots/s1/da-1-bti-Partitions.db",
      PathKind::kSnapshot);  // whole: only the manifest is missing
  s = Select();
  EXPECT_TRUE(s.units.empty()) << "a 5.0 snapshot without manifest.json was moved";
}

// A live sstable is mirrored whole: every component present, whether its
// TOC lists it or not, once the components Cassandra needs are there.
TEST_F(SelectorTest, LiveSSTablesAreCopiedWithEveryComponentTheTocIsNoAuthority) {
  const std::string dir = "ks/t";
  // SAI index without values: only ColumnComplete, the TOC lists four.
  AddSSTable(dir, "nc-1-big", PathKind::kLive);
  texts_by_path_[{0, dir + "/nc-1-big-TOC.txt"}] =
      "Data.db\nIndex.db\nStatistics.db\nTOC.txt\nSAI+aa+idx+Meta.db\nSAI+aa+idx+TermsData.db\n"
      "SAI+aa+idx+PostingLists.db\nSAI+aa+idx+ColumnComplete.db\n";
  Add(dir + "/nc-1-big-SAI+aa+idx+ColumnComplete.db", PathKind::kLive);
  // SASI truncated the TOC to its own line.
  AddSSTable(dir, "md-2-big", PathKind::kLive);
  texts_by_path_[{0, dir + "/md-2-big-TOC.txt"}] = "SI_idx.db\n";
  Add(dir + "/md-2-big-SI_idx.db", PathKind::kLive);
  Add(dir + "/md-2-big-Filter.db", PathKind::kLive);
  // A short keyspace's 2.1 name, and a compaction input (REMOVE, log in flight).
  AddSSTable(dir, "ks-t-ka-3", PathKind::kLive);
  AddSSTable(dir, "nb-4-big", PathKind::kLive);
  AddText(dir + "/nb_txn_compaction_e.log", PathKind::kLive,
          "ADD:[/data/ks/t/nb-5-big,0,4][1]\nREMOVE:[/data/ks/t/nb-4-big,5,4][2]\n");
  Selection s = Select();
  std::set<std::string> eligible = Eligible(s);
  for (const char* file : {"nc-1-big-SAI+aa+idx+ColumnComplete.db", "nc-1-big-Data.db",
                           "md-2-big-Data.db", "md-2-big-SI_idx.db", "md-2-big-Filter.db",
                           "md-2-big-TOC.txt", "ks-t-ka-3-Data.db", "nb-4-big-Data.db"}) {
    EXPECT_TRUE(eligible.count(dir + "/" + file)) << file << "\n" << Decisions(s);
  }
  EXPECT_EQ(eligible.size(), 5u + 6u + 4u + 4u);
  ASSERT_EQ(s.warnings.size(), 1u);
  EXPECT_NE(s.warnings[0].find("md-2-big-TOC.txt does not list Data.db"), std::string::npos);
  EXPECT_TRUE(s.held_back.empty()) << Decisions(s);
}

// What is not taken is recorded with its reason, files and age, so the
// cycle can count it and name it once stuck.
TEST_F(SelectorTest, EverythingNotTakenIsHeldBackWithItsReason) {
  const std::string dir = "ks/t";
  AddSSTable(dir, "nb-2-big", PathKind::kLive, 0, kFresh);
  AddText(dir + "/nb_txn_flush_a.log", PathKind::kLive, "ADD:[/data/ks/t/nb-2-big,0,4][1]\n");
  Add(dir + "/nb-7-big-Data.db", PathKind::kLive);
  AddText(dir + "/nb-7-big-TOC.txt", PathKind::kLive, "Data.db\nIndex.db\nTOC.txt\n");
  Add(dir + "/ks-t-tmp-ka-9-Data.db", PathKind::kLive);
  Add(dir + "/ks-t-tmp-ka-9-Index.db", PathKind::kLive);
  AddSSTable("ks/t/backups", "nb-3-big", PathKind::kBackup, 0, kFresh);
  AddSSTable(kUnit, "nb-1-big", PathKind::kSnapshot);  // no manifest.json yet
  Selection s = Select();
  std::map<std::string, const HeldBack*> by_name;
  for (const HeldBack& h : s.held_back) by_name[h.name] = &h;
  ASSERT_EQ(by_name.size(), 5u) << Decisions(s);
  const HeldBack* flushing = by_name["ks/t/nb-2-big"];
  ASSERT_NE(flushing, nullptr);
  EXPECT_EQ(flushing->files, 4);
  EXPECT_EQ(flushing->newest_mtime_ns, kFresh);
  EXPECT_NE(flushing->reason.find("ks/t/nb_txn_flush_a.log has no COMMIT"), std::string::npos)
      << flushing->reason;
  ASSERT_NE(by_name["ks/t/nb-7-big"], nullptr);
  EXPECT_EQ(by_name["ks/t/nb-7-big"]->reason, "nb-7-big-Index.db is missing");
  ASSERT_NE(by_name["ks/t/ks-t-tmp-ka-9"], nullptr);
  EXPECT_EQ(by_name["ks/t/ks-t-tmp-ka-9"]->files, 2);
  ASSERT_NE(by_name["ks/t/backups/nb-3-big"], nullptr);
  EXPECT_EQ(by_name["ks/t/backups/nb-3-big"]->kind, HeldBack::Kind::kBackupSSTable);
  ASSERT_NE(by_name[kUnit], nullptr);
  EXPECT_EQ(by_name[kUnit]->kind, HeldBack::Kind::kSnapshot);
  EXPECT_EQ(by_name[kUnit]->files, 0);
}

}  // namespace
}  // namespace snaphaven
