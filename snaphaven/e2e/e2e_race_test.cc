// End-to-end test of path races (issue 16, item 1): while the real binary
// runs cycles, move mode, retention and restores, an attacker thread keeps
// swapping directories of the destination, of the restore directory and of
// the snapshot being moved for symlinks to a "canary" directory, atomically
// (renameat2 RENAME_EXCHANGE), and back: one attacker thread per directory. Runs may fail; the canary, and the
// source outside the snapshot being moved, must never change.

#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "snaphaven/testing/e2e_util.h"
#include "tools/tree_generator.h"

namespace snaphaven {
namespace {

using testing::FileRecord;
using testing::ReadTree;
using testing::RunResult;
using testing::RunSnaphaven;

using Files = std::map<std::string, FileRecord>;

constexpr int kRounds = 30;

// Copies the tree below `from` to `to` (directories and regular files).
void CopyTree(const std::string& from, const std::string& to) {
  ASSERT_EQ(mkdir(to.c_str(), 0755), 0) << to;
  for (const auto& [path, record] : ReadTree(from)) {  // parents sort first
    const std::string target = to + "/" + path;
    if (record.type == 'd') {
      ASSERT_EQ(mkdir(target.c_str(), 0755), 0) << target;
    } else if (record.type == 'f') {
      testing::WriteFileOrDie(target, record.contents);
    }
  }
}

// One directory the attacker swaps for a symlink (to `link_to`, in the
// canary) and back. `slot` holds the symlink while the directory is in
// place, and the directory while the symlink is.
struct Target {
  std::string path;
  std::string link_to;
  std::string slot;  // a name in dir_/slots
  int standing_us;   // how long the directory stands, then the symlink
  int swapped_us;
  bool lost = false;  // could not be put back (the run removed the symlink, then made a new one)
};

// The directory `path` opened O_PATH without following any symlink (the
// attacker's own renames must not go through another attacker's symlink),
// or -1.
int OpenRealDir(const std::string& path) {
  struct open_how how = {};
  how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
  how.resolve = RESOLVE_NO_SYMLINKS;
  return static_cast<int>(syscall(SYS_openat2, AT_FDCWD, path.c_str(), &how, sizeof(how)));
}

// Swaps target `t` for its symlink and back until `stop`; it is in place
// when this returns. Returns the swaps made.
int64_t Attack(Target& t, int slots, const std::atomic<bool>& stop) {
  // The symlink stands a quarter of the time: a run gets far enough to
  // reach its writes and removals, then meets it.
  int64_t swaps = 0;
  const size_t slash = t.path.rfind('/');
  const std::string name = t.path.substr(slash + 1);
  int parent = -1;  // opened once it exists
  while (!stop.load() && !t.lost) {
    usleep(t.standing_us);  // the directory stands...
    if (parent < 0) parent = OpenRealDir(t.path.substr(0, slash));
    if (parent < 0) continue;
    const char* slot = t.slot.c_str();
    if (renameat2(slots, slot, parent, name.c_str(), RENAME_EXCHANGE) != 0) {
      continue;  // not there (yet, or any more)
    }
    ++swaps;
    usleep(t.swapped_us);  // ... and the symlink
    if (renameat2(slots, slot, parent, name.c_str(), RENAME_EXCHANGE) != 0) {
      // The run removed or renamed the symlink: put the directory back
      // unless the run made a new one meanwhile.
      if (renameat2(slots, slot, parent, name.c_str(), RENAME_NOREPLACE) != 0) {
        t.lost = true;
      } else {
        (void)symlinkat(t.link_to.c_str(), slots, slot);
      }
    }
  }
  if (parent >= 0) close(parent);
  return swaps;
}

// The snapshot tags of the source: one copied, never moved, and one moved
// per round.
std::vector<std::string> Tags() {
  std::vector<std::string> tags = {"stay"};
  for (int r = 0; r < kRounds; ++r) tags.push_back(absl::StrCat("r", r));
  return tags;
}

class RaceTest : public testing::CassandraTreeTest {
 protected:
  // A generated keyspace ks1 of two tables.
  void GenerateSource() {
    tools::TreeSpec spec = Spec(2, 2, Tags(), 8 * 1024);
    Generate(spec);
  }

  // Keyspace ks1 made of the two tables Cassandra 2.2 wrote in the shared
  // fixtures (real-sstables/ctools/data/lb), each snapshot as
  // `nodetool snapshot` leaves it: hard links of every component, then
  // manifest.json listing the Data.db files (2.2's format). False when the
  // fixtures are absent.
  bool LayOutRealSSTables() {
    const std::string fixtures = testing::RealSSTablesDir() + "/ctools/data/lb";
    const Files tree = ReadTree(fixtures);
    if (tree.empty()) return false;
    EXPECT_EQ(mkdir(home_.c_str(), 0755), 0);
    EXPECT_EQ(mkdir(data_.c_str(), 0755), 0);
    EXPECT_EQ(mkdir((data_ + "/ks1").c_str(), 0755), 0);
    for (const auto& [path, record] : tree) {
      const std::string target = data_ + "/ks1/" + path;
      if (record.type == 'd') EXPECT_EQ(mkdir(target.c_str(), 0755), 0) << target;
      if (record.type == 'f') testing::WriteFileOrDie(target, record.contents);
    }
    for (const auto& [table, record] : tree) {
      if (record.type != 'd' || absl::StrContains(table, "/")) continue;
      const std::string dir = data_ + "/ks1/" + table;
      EXPECT_EQ(mkdir((dir + "/snapshots").c_str(), 0755), 0);
      std::vector<std::string> data_files;
      for (const auto& [file, f] : tree) {
        if (f.type == 'f' && absl::StartsWith(file, table + "/") &&
            absl::EndsWith(file, "-Data.db")) {
          data_files.push_back(absl::StrCat("\"", file.substr(table.size() + 1), "\""));
        }
      }
      for (const std::string& tag : Tags()) {
        const std::string snap = dir + "/snapshots/" + tag;
        EXPECT_EQ(mkdir(snap.c_str(), 0755), 0);
        for (const auto& [file, f] : tree) {
          if (f.type != 'f' || !absl::StartsWith(file, table + "/")) continue;
          const std::string name = file.substr(table.size() + 1);
          EXPECT_EQ(link((dir + "/" + name).c_str(), (snap + "/" + name).c_str()), 0) << name;
        }
        testing::WriteFileOrDie(snap + "/manifest.json",
                                absl::StrCat("{\"files\":[", absl::StrJoin(data_files, ","), "]}\n"));
      }
    }
    return true;
  }

  // The canary (a copy of ks1), the attacker's slots, the tables' names.
  void Prepare() {
    canary_ = dir_ + "/canary";
    CopyTree(data_ + "/ks1", canary_);  // the names a redirected path would find
    ASSERT_EQ(mkdir((canary_ + "/state").c_str(), 0755), 0);
    testing::WriteFileOrDie(canary_ + "/state/manifest", "not snaphaven's\n");
    ASSERT_EQ(mkdir((canary_ + "/tmp").c_str(), 0755), 0);
    testing::WriteFileOrDie(canary_ + "/tmp/keep", "not snaphaven's\n");
    ASSERT_EQ(mkdir((dir_ + "/slots").c_str(), 0755), 0);
    ASSERT_EQ(mkdir((dir_ + "/restore").c_str(), 0755), 0);
    tables_ = {TableName(0), TableName(1)};
  }

  void RunRounds();

  std::string TableName(int n) { return TableDir(n).substr(data_.size() + 5); }

  // The directories swapped in round `r`, each for a symlink to the canary
  // directory of the same shape: the destination's and the restore
  // directory's in one round of three, the source's in the others (with
  // fewer targets, the runs get further: a move must get past its checks
  // to reach its removals).
  std::vector<Target> Targets(int r) {
    const bool destination = r % 3 == 0;
    const bool source = !destination;
    std::vector<std::pair<std::string, std::string>> pairs;
    if (destination) {
      pairs = {
          {dest_ + "/ks1", canary_},
          {dest_ + "/.snaphaven", canary_ + "/state"},
          {dest_ + "/.snaphaven/tmp", canary_ + "/tmp"},
          {dir_ + absl::StrCat("/restore/r", r, "/ks1"), canary_},
      };
    }
    for (const std::string& table : tables_) {
      if (destination) {
        pairs.push_back({dest_ + "/ks1/" + table, canary_ + "/" + table});
        pairs.push_back(
            {dest_ + "/ks1/" + table + "/snapshots", canary_ + "/" + table + "/snapshots"});
        for (int tag = std::max(0, r - 1); tag <= r; ++tag) {
          const std::string rel = absl::StrCat(table, "/snapshots/r", tag);
          pairs.push_back({dest_ + "/ks1/" + rel, canary_ + "/" + rel});
        }
      }
      if (source) {  // the snapshot being moved
        const std::string rel = absl::StrCat(table, "/snapshots/r", r);
        pairs.push_back({data_ + "/ks1/" + rel, canary_ + "/" + rel});
      }
    }
    std::vector<Target> targets;
    for (const auto& [path, link_to] : pairs) {
      // Move mode's removals follow its checks within tens of microseconds:
      // the source's directories are swapped more often, for less long.
      const bool at_source = absl::StartsWith(path, data_ + "/");
      Target t{path, link_to, absl::StrCat(r, "-", targets.size()), at_source ? 150 : 300,
               at_source ? 50 : 100};
      EXPECT_EQ(symlink(link_to.c_str(), (dir_ + "/slots/" + t.slot).c_str()), 0) << t.slot;
      targets.push_back(std::move(t));
    }
    return targets;
  }

  // The source outside round `r`'s snapshot: must never change.
  Files SourceOutside(int r) {
    Files files = ReadTree(data_);
    const std::string moved = absl::StrCat("/snapshots/r", r);
    for (auto it = files.begin(); it != files.end();) {
      const bool inside = absl::StrContains(it->first + "/", moved + "/");
      // A snapshots/ directory's mtime moves when its tag is removed.
      const bool parent = absl::EndsWith(it->first, "/snapshots");
      it = inside || parent ? files.erase(it) : std::next(it);
    }
    return files;
  }

  std::string canary_;
  std::vector<std::string> tables_;
};

void RaceTest::RunRounds() {
  const Files canary = ReadTree(canary_);
  ASSERT_GT(canary.size(), 10u);
  // A first copy, so the destination's directories exist to be swapped.
  RunResult first = Run({"--snapshot_regex", "^stay$"}, {"ks1"});
  ASSERT_EQ(first.exit_code, 0) << first.err;

  int64_t swaps = 0;
  std::map<std::string, int> exits;  // "<step> <exit code>" -> runs
  for (int r = 0; r < kRounds; ++r) {
    const std::string tag = absl::StrCat("r", r);
    const Files source = SourceOutside(r);
    std::vector<Target> targets = Targets(r);
    // One attacker per directory: each is a symlink half the time.
    std::atomic<bool> stop{false};
    std::vector<int64_t> target_swaps(targets.size());
    std::vector<std::thread> attackers;
    const int slots = OpenRealDir(dir_ + "/slots");
    ASSERT_GE(slots, 0);
    for (size_t i = 0; i < targets.size(); ++i) {
      attackers.emplace_back([&, i] { target_swaps[i] = Attack(targets[i], slots, stop); });
    }
    // A cycle copying the tag, move mode moving it, a restore of it,
    // retention; and a plain cycle again.
    const std::vector<std::pair<std::string, std::vector<std::string>>> steps = {
        {"cycle", {"-d", home_, "-s", dest_, "--snapshot_regex", "^" + tag + "$", "ks1"}},
        {"move",
         {"-d", home_, "-s", dest_, "--snapshot_regex", "^" + tag + "$", "--move-snapshots",
          "--settle_time=0s", "ks1"}},
        {"restore",
         {"-s", dest_, "--restore", tag, "--restore_to", dir_ + "/restore/" + tag, "ks1"}},
        {"retention",
         {"-d", home_, "-s", dest_, "--snapshot_regex", "^stay$", "--keep_snapshots", "2", "ks1"}},
        {"cycle", {"-d", home_, "-s", dest_, "--snapshot_regex", "^stay$", "ks1"}},
    };
    for (const auto& [step, args] : steps) {
      // Move mode again while it fails: its removals come last.
      for (int attempt = 0; attempt < (step == "move" ? 4 : 1); ++attempt) {
        RunResult run = RunSnaphaven(args, absl::Seconds(60));
        ++exits[absl::StrCat(step, " ", run.exit_code)];
        EXPECT_TRUE(run.exit_code == 0 || run.exit_code == 1 || run.exit_code == 2)
            << step << " round " << r << ": " << run.err;
        if (run.exit_code == 0) break;
      }
    }
    stop = true;
    for (size_t i = 0; i < targets.size(); ++i) {
      attackers[i].join();
      swaps += target_swaps[i];
    }
    close(slots);
    for (const Target& t : targets) {
      // A source directory lost would be a change at the source.
      EXPECT_FALSE(t.lost && absl::StartsWith(t.path, data_)) << t.path;
    }
    EXPECT_EQ(testing::DiffTrees(canary, ReadTree(canary_)), "")
        << "the canary changed in round " << r;
    EXPECT_EQ(testing::DiffTrees(source, SourceOutside(r)), "")
        << "the source outside snapshots/" << tag << " changed in round " << r;
    if (HasFailure()) break;
  }
  std::string summary;
  for (const auto& [what, n] : exits) absl::StrAppend(&summary, what, ": ", n, "; ");
  std::cerr << swaps << " swaps in " << kRounds << " rounds; runs by step and exit code: "
            << summary << "\n";
  EXPECT_GT(swaps, 100);
}

TEST_F(RaceTest, SwappedDirectoriesNeverLeadOutOfTheDestinationOrTheMovedSnapshot) {
  GenerateSource();
  Prepare();
  if (HasFatalFailure()) return;
  RunRounds();
}

TEST_F(RaceTest, TheSameOnSSTablesCassandraWrote) {
  if (!LayOutRealSSTables()) {
    GTEST_SKIP() << "no real sstables at " << testing::RealSSTablesDir();
  }
  Prepare();
  if (HasFatalFailure()) return;
  RunRounds();
}

}  // namespace
}  // namespace snaphaven
