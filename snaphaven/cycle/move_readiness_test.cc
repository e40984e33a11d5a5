// Move readiness: which snapshots the selector hands to move mode as units
// to delete (selector.h), for what selector_test.cc leaves open: a 2.0
// snapshot's directories settling, a manifest.json that could not be read,
// the settle time's edge, and units spread over several data roots.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "snaphaven/state/manifest.h"
#include "snaphaven/cycle/scanner.h"
#include "snaphaven/cycle/selector.h"

namespace snaphaven {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1700000000);
const absl::Duration kSettle = absl::Seconds(10);
const int64_t kSettled = absl::ToUnixNanos(kNow - kSettle);  // just settled
const int64_t kOld = absl::ToUnixNanos(kNow - absl::Hours(1));
const int64_t kFresh = absl::ToUnixNanos(kNow - absl::Seconds(1));

constexpr char kTag[] = "ks/t-0094ac203e7411e59149ef9f87394ca6/snapshots/s1";
constexpr char k20Tag[] = "Keyspace1/Standard1/snapshots/s1";
const char kToc[] = "Data.db\nIndex.db\nStatistics.db\nTOC.txt\n";

class MoveReadinessTest : public ::testing::Test {
 public:
  // A scanned snapshot file of root `root`; `text` is what the selector
  // reads of it (TOC.txt, manifest.json), null for nothing.
  void AddFile(const std::string& rel, int root = 0, int64_t mtime = kOld,
               const char* text = nullptr) {
    SourceFile f;
    f.relative_path = rel;
    f.root = root;
    f.kind = PathKind::kSnapshot;
    f.stat.type = FileType::kRegular;
    f.stat.ino = 1000 + files_.size();
    f.stat.size = 10;
    f.stat.mtime_ns = mtime;
    files_.push_back(f);
    if (text != nullptr) texts_[{root, rel}] = text;
  }
  // A whole sstable `prefix` in `dir`.
  void AddSSTable(const std::string& dir, const std::string& prefix, int root = 0,
                  int64_t mtime = kOld) {
    for (const char* c : {"Data.db", "Index.db", "Statistics.db"}) {
      AddFile(absl::StrCat(dir, "/", prefix, "-", c), root, mtime);
    }
    AddFile(absl::StrCat(dir, "/", prefix, "-TOC.txt"), root, mtime, kToc);
  }
  // A snapshot directory listed by the scan, with its mtime.
  void AddDir(const std::string& rel, int root = 0, int64_t mtime = kOld) {
    dirs_.emplace_back(root, rel);
    ScanResult::WalkedDir walked;
    walked.root = root;
    walked.relative_path = rel;
    walked.stat.type = FileType::kDirectory;
    walked.stat.mtime_ns = mtime;
    walked_.push_back(walked);
  }
  // The manifest.json of kTag listing nb-1-big and its index's nb-1-big.
  void AddManifest(int root = 0, int64_t mtime = kOld) {
    AddFile(absl::StrCat(kTag, "/manifest.json"), root, mtime,
            R"({"files":["nb-1-big-Data.db",".t_idx/nb-1-big-Data.db"]})");
  }
  // kTag whole in root 0: nb-1-big, .t_idx/nb-1-big, manifest.json, schema.cql.
  void AddSnapshot(int64_t manifest_mtime = kOld, int64_t sstable_mtime = kOld) {
    AddSSTable(kTag, "nb-1-big", 0, sstable_mtime);
    AddSSTable(absl::StrCat(kTag, "/.t_idx"), "nb-1-big", 0, sstable_mtime);
    AddManifest(0, manifest_mtime);
    AddFile(absl::StrCat(kTag, "/schema.cql"));
    AddDir(kTag);
    AddDir(absl::StrCat(kTag, "/.t_idx"));
  }

  // Selects in move mode, as the cycle does: the scan sorted by path then
  // root, the texts of the files MetadataToRead names.
  Selection Select() {
    scan_ = ScanResult();
    scan_.files = files_;
    std::sort(scan_.files.begin(), scan_.files.end(), [](const SourceFile& a, const SourceFile& b) {
      return std::tie(a.relative_path, a.root) < std::tie(b.relative_path, b.root);
    });
    scan_.snapshot_dirs = dirs_;
    scan_.walked_dirs = walked_;
    SelectOptions options;
    options.move = true;
    options.now = kNow;
    options.settle_time = kSettle;
    options.record_decisions = true;
    absl::flat_hash_map<size_t, std::string> texts;
    for (size_t i : MetadataToRead(scan_, options)) {
      auto it = texts_.find({scan_.files[i].root, scan_.files[i].relative_path});
      if (it != texts_.end()) texts[i] = it->second;
    }
    return SelectFiles(scan_, texts, Manifest(), options);
  }

  // "<root>:<path>" of each file of unit `u`, in its order.
  std::vector<std::string> UnitFiles(const Selection& s, size_t u = 0) const {
    std::vector<std::string> out;
    for (size_t i : s.units[u].files) {
      out.push_back(absl::StrCat(scan_.files[i].root, ":", scan_.files[i].relative_path));
    }
    return out;
  }
  // Why the one snapshot held back was held back ("" if none was).
  static std::string HeldBackReason(const Selection& s) {
    for (const HeldBack& h : s.held_back) {
      if (h.kind == HeldBack::Kind::kSnapshot) return h.reason;
    }
    return "";
  }
  static std::string Decisions(const Selection& s) { return absl::StrJoin(s.decisions, "\n"); }

  std::vector<SourceFile> files_;
  std::map<std::pair<int, std::string>, std::string> texts_;
  std::vector<std::pair<int, std::string>> dirs_;
  std::vector<ScanResult::WalkedDir> walked_;
  ScanResult scan_;
};

// 2.0 wrote no manifest.json: its snapshot is settled when nothing in it
// changed for the settle time, its directories included (a hard link
// being added or removed changes the directory, not the files' mtimes,
// which are the live sstables').
TEST_F(MoveReadinessTest, A20SnapshotWaitsForItsDirectoriesToSettle) {
  AddSSTable(k20Tag, "Keyspace1-Standard1-jb-1");
  AddSSTable(k20Tag, "Keyspace1-Standard1.idx-jb-1");
  AddDir(k20Tag, 0, kFresh);
  Selection s = Select();
  EXPECT_TRUE(s.units.empty()) << "the tag dir just changed";
  EXPECT_EQ(HeldBackReason(s), "changed within --settle_time (2.0 snapshot: no manifest.json)");
  ASSERT_EQ(s.held_back.size(), 1u);
  EXPECT_EQ(s.held_back[0].newest_mtime_ns, kFresh);

  walked_.clear();
  dirs_.clear();
  AddDir(k20Tag, 0, kSettled);
  AddDir(absl::StrCat(k20Tag, "/.Standard1_idx"), 0, kFresh);  // any directory below it
  s = Select();
  EXPECT_TRUE(s.units.empty()) << "a directory below the tag dir just changed";

  walked_[1].stat.mtime_ns = kSettled;
  s = Select();
  ASSERT_EQ(s.units.size(), 1u) << Decisions(s);
  EXPECT_EQ(s.units[0].files.size(), files_.size());

  // Another snapshot's directory changing is not this one's business.
  AddDir("Keyspace1/Standard1/snapshots/s2", 0, kFresh);
  EXPECT_EQ(Select().units.size(), 1u);
}

// A manifest.json the cycle could not read is no proof of completeness.
TEST_F(MoveReadinessTest, AManifestJsonThatCouldNotBeReadIsNotAUnit) {
  AddSnapshot();
  texts_.erase({0, absl::StrCat(kTag, "/manifest.json")});
  Selection s = Select();
  EXPECT_TRUE(s.units.empty());
  EXPECT_EQ(HeldBackReason(s), "manifest.json does not parse (still being written?)");
  EXPECT_EQ(s.eligible.size(), files_.size()) << "still copied";
}

// The settle time runs from manifest.json's mtime, the last file Cassandra
// writes in a snapshot: the sstables' own mtimes are the live files'.
TEST_F(MoveReadinessTest, TheSettleTimeRunsFromManifestJson) {
  AddSnapshot(/*manifest_mtime=*/kSettled + 1);
  Selection s = Select();
  EXPECT_TRUE(s.units.empty()) << "one nanosecond short";
  EXPECT_EQ(HeldBackReason(s), "manifest.json is younger than --settle_time");

  files_.clear();
  AddSnapshot(/*manifest_mtime=*/kSettled);
  s = Select();
  ASSERT_EQ(s.units.size(), 1u) << Decisions(s);
  EXPECT_EQ(UnitFiles(s).back(), absl::StrCat("0:", kTag, "/manifest.json"));

  files_.clear();
  AddSnapshot(/*manifest_mtime=*/kSettled, /*sstable_mtime=*/kFresh);
  EXPECT_EQ(Select().units.size(), 1u) << "a just-flushed sstable in a settled snapshot";
}

// One snapshot spread over two data roots, its manifest.json in the second
// (where it does not sort last): one unit of every file, manifest.json
// last, every directory of both roots, deepest first.
TEST_F(MoveReadinessTest, AUnitOverTwoRootsListsManifestJsonLast) {
  AddSSTable(kTag, "nb-1-big", 0);
  AddSSTable(absl::StrCat(kTag, "/.t_idx"), "nb-1-big", 1);
  AddManifest(1);
  AddFile(absl::StrCat(kTag, "/schema.cql"), 1);
  AddFile(absl::StrCat(kTag, "/nb-9-big-Filter.db"), 0);  // a stray component: moved too
  AddDir(kTag, 0);
  AddDir(kTag, 1);
  AddDir(absl::StrCat(kTag, "/.t_idx"), 1);
  Selection s = Select();
  ASSERT_EQ(s.units.size(), 1u) << Decisions(s);
  std::vector<std::string> files = UnitFiles(s);
  EXPECT_EQ(files.size(), files_.size());
  EXPECT_EQ(std::set<std::string>(files.begin(), files.end()).size(), files.size()) << "twice";
  EXPECT_EQ(files.back(), absl::StrCat("1:", kTag, "/manifest.json"));
  const std::vector<std::pair<int, std::string>> dirs = {
      {1, absl::StrCat(kTag, "/.t_idx")}, {0, kTag}, {1, kTag}};
  EXPECT_EQ(s.units[0].dirs, dirs);
}

// The same file (same size and mtime) in two roots is copied once; the unit
// that deletes the snapshot must delete it from both, or the root that
// keeps it keeps a snapshot with no manifest.json, never moved again.
// Failed before the fix: the unit was built from the files not excluded,
// and every root's copy of an identical duplicate but the first is
// excluded (from copying); the move left root 1's schema.cql behind, and
// every later cycle kept that remnant ("no manifest.json and no sstable").
TEST_F(MoveReadinessTest, AFileInTwoRootsIsDeletedFromBoth) {
  AddSnapshot();
  AddFile(absl::StrCat(kTag, "/schema.cql"), 1);
  AddDir(kTag, 1);
  Selection s = Select();
  ASSERT_EQ(s.units.size(), 1u) << Decisions(s);
  std::vector<std::string> files = UnitFiles(s);
  EXPECT_NE(std::find(files.begin(), files.end(), absl::StrCat("1:", kTag, "/schema.cql")),
            files.end())
      << absl::StrJoin(files, "\n");
  EXPECT_EQ(files.back(), absl::StrCat("0:", kTag, "/manifest.json"));
}

}  // namespace
}  // namespace snaphaven
