// Power cuts at every step of a cycle, through the fault-injecting file
// system's durability model (leveldb's fault_injection_test): a `kill -9`
// keeps the page cache, so only a model of what fsync made durable can tell
// a forgotten fsync. For each scenario the cycle is run again and again,
// the power cut after its 1st, 2nd, ... changing call (every later call
// fails with EIO: the process is dead), the disk brought back to what was
// durable at that moment, and then:
//  (1) every file under its final name at the destination is whole (equal
//      to its source, or to the source's bytes before a move deleted it);
//  (2) the manifest (base + log, as the next run reads it) is absent or
//      loads, and records nothing that is not there as recorded;
//  (3) a move never deleted a source whose copy was lost;
//  (4) a fresh run (a new process: no faults) ends with exit code 0 and the
//      destination mirrors the source again.
// A run that ends before its cut is also cut at its end: what it completed
// must have been durable, the destination mirroring the source already.

#include <glog/logging.h>
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "snaphaven/cycle/cycle.h"
#include "snaphaven/testing/cycle_config.h"
#include "snaphaven/testing/e2e_util.h"
#include "snaphaven/testing/fault_injection_file_system.h"
#include "tools/tree_generator.h"

namespace snaphaven {
namespace {

using testing::DestinationFiles;
using testing::DiffTrees;
using testing::FaultInjectionFileSystem;
using testing::FileRecord;
using Files = std::map<std::string, FileRecord>;

void Shell(const std::string& command) { ASSERT_EQ(system(command.c_str()), 0) << command; }

class PowerCutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FLAGS_minloglevel = 3;  // thousands of runs, each dying noisily
    dir_ = testing::MakeTempDir("powercut");
    root_ = dir_ + "/root";  // what the model follows: the source and the destination
    saved_ = dir_ + "/saved";
    data_ = root_ + "/data";
    dest_ = root_ + "/dest";
    // The destination directory exists (and is durable) before the first
    // run; FirstRunCreatingTheDestination lets the run make it.
    Shell("mkdir -p " + root_ + " " + dest_);
    tools::TreeSpec spec;
    spec.keyspaces = {"ks1"};
    spec.tables_per_keyspace = 1;
    spec.sstables_per_table = 2;
    spec.index_dirs_per_table = 0;
    spec.snapshot_tags = {"s1", "s2"};  // s2 shares s1's inodes: links at the destination
    spec.data_size = (1 << 20) + 4096;  // Data.db copied on its own; the rest staged
    ASSERT_TRUE(tools::GenerateTree(data_, spec).ok());
    Remember();
  }

  // The source's snapshot files as they are now, added to what the
  // destination may hold (a moved or retired file keeps its old bytes).
  void Remember() {
    for (auto& [path, record] : testing::SnapshotFiles(data_)) known_[path] = record;
    for (auto& [name, record] : Archived()) known_["commitlog_archive/" + name] = record;
  }

  // --commitlog_archive: an archive directory beside the data (tracked
  // too) holding segments Cassandra 2.2 wrote. False when the fixtures are
  // absent.
  bool ArchiveSegments() {
    const std::string fixtures = testing::CassandraTestDataDir();
    if (fixtures.empty()) return false;
    archive_ = root_ + "/commitlog_archive";
    Shell("mkdir " + archive_ + " && cp --preserve=timestamps " + fixtures +
          "/legacy-commitlog/2.2-snappy/CommitLog-* " + archive_ + "/");
    Remember();
    return true;
  }

  // The archive directory's files by name (none without one).
  Files Archived() { return archive_.empty() ? Files() : testing::ReadTree(archive_); }

  // Every directory's mtime an hour back: settled, so the directory cache
  // vouches for them (and is written).
  void AgeDirectories() {
    for (const auto& [path, record] : testing::ReadTree(data_)) {
      if (record.type != 'd') continue;
      struct timespec times[2] = {{0, UTIME_OMIT}, {time(nullptr) - 3600, 0}};
      ASSERT_EQ(utimensat(AT_FDCWD, (data_ + "/" + path).c_str(), times, AT_SYMLINK_NOFOLLOW), 0);
    }
  }

  // One copy at a time (CycleOptions): cut N is the same step each time.
  Options Config() {
    Options options = testing::CycleOptions(data_, dest_);
    options.move_snapshots = move_;
    options.keep_for = keep_for_;
    options.commitlog_archive = archive_;
    return options;
  }

  EngineSettings Settings() {
    EngineSettings settings = testing::CycleSettings();
    settings.whole_file_system_sync = EngineSettings::WholeFileSystemSync::kNever;  // fsyncs
    settings.dirty_memory = []() -> absl::StatusOr<int64_t> { return int64_t{1} << 40; };
    settings.stage_small_files = true;
    return settings;
  }

  // One run of the binary: a fresh Syncer.
  CycleStats Cycle(FileSystem& fs) {
    const Options options = Config();
    Syncer syncer(fs, options, Settings());
    return testing::PrepareAndRunCycle(syncer);
  }

  void CycleWithoutFaults() {
    FaultInjectionFileSystem fs(DefaultFileSystem());
    ASSERT_EQ(ExitCodeFor(Cycle(fs)), 0);
  }

  // What the destination mirrors once converged.
  Files Expected() {
    Files all = move_ ? before_ : Files();
    for (auto& [path, record] : testing::SnapshotFiles(data_)) all[path] = record;
    // Every segment ever archived: copies are never removed.
    for (auto& [path, record] : known_) {
      if (absl::StartsWith(path, "commitlog_archive/")) all[path] = record;
    }
    return all;
  }

  // (1), (2), (3).
  void ExpectDurableStateIsSound(const std::string& when) {
    SCOPED_TRACE(when);
    Files dest = DestinationFiles(dest_);
    for (const auto& [path, record] : dest) {
      auto it = known_.find(path);
      ASSERT_NE(it, known_.end()) << "unexpected " << path;
      EXPECT_TRUE(record == it->second)
          << path << " under its final name is not whole (" << record.size << " of "
          << it->second.size << " bytes)";
    }
    absl::StatusOr<StoredManifest> manifest =
        StoredManifest::Load(*DefaultFileSystem(), dest_ + "/.snaphaven/manifest");
    if (!IsVanished(manifest.status())) {
      ASSERT_TRUE(manifest.ok()) << "the manifest does not load: " << manifest.status();
      for (const auto& [path, entry] : manifest->entries()) {
        auto it = dest.find(path);
        // Retention removes a copy first and then commits: its entries may
        // outlive it (as after a kill -9 there); the next run erases them.
        if (it == dest.end() && !retiring_.empty() && absl::StartsWith(path, retiring_)) continue;
        ASSERT_NE(it, dest.end()) << "the manifest records a missing " << path;
        EXPECT_EQ(it->second.size, entry.size) << path;
        EXPECT_EQ(it->second.mtime_ns, entry.mtime_ns) << path;
      }
    }
    if (move_) {
      Files source = testing::SnapshotFiles(data_);
      for (const auto& [path, record] : before_) {
        if (source.count(path)) continue;
        EXPECT_TRUE(dest.count(path) && dest[path] == record)
            << "the move deleted " << path << " but its copy was lost";
      }
      const Files archived = Archived();
      for (const auto& [name, record] : archive_before_) {
        if (archived.count(name)) continue;
        const std::string copy = "commitlog_archive/" + name;
        EXPECT_TRUE(dest.count(copy) && dest[copy] == record)
            << "the move removed segment " << name << " from the archive but its copy was lost";
      }
    }
  }

  // Cuts the power after each changing call of one cycle in turn.
  void CutEverywhere(const FaultInjectionFileSystem::PowerCutOptions& cut_options = {}) {
    // The source is kept by hard links, never copied: its inodes must stay
    // the ones the manifest recorded. A copy would give its files new inode
    // numbers, which may be the recorded ones of other files with the same
    // size and mtime (cp --preserve=timestamps): the cycle would then link
    // a copy to the wrong bytes, a fault of the test, not of the power cut.
    Shell("rm -rf " + saved_ + " && mkdir " + saved_ + " && cp -al " + data_ + " " + saved_ +
          "/data && { test ! -e " + dest_ + " || cp -a " + dest_ + " " + saved_ + "/dest; }" +
          (archive_.empty() ? "" : " && cp -a " + archive_ + " " + saved_ + "/archive"));
    before_ = testing::SnapshotFiles(data_);
    archive_before_ = Archived();
    Remember();
    int cuts = 0;
    for (int64_t n = 1;; ++n) {
      Shell("rm -rf " + root_ + " && mkdir " + root_ + " && cp -al " + saved_ + "/data " +
            data_ + " && { test ! -e " + saved_ + "/dest || cp -a " + saved_ + "/dest " + dest_ +
            "; }" + (archive_.empty() ? "" : " && cp -a " + saved_ + "/archive " + archive_));
      FaultInjectionFileSystem fs(DefaultFileSystem());
      fs.TrackDurability(root_);
      fs.CutPowerAfter(n);
      CycleStats stats = Cycle(fs);
      const bool cut = fs.PowerIsOff();
      const std::string when =
          cut ? absl::StrCat("power cut after ", n, " changing calls; the next: ",
                             fs.Injected().empty() ? "?" : fs.Injected().back())
              : absl::StrCat("power cut after a whole cycle (", n - 1, " changing calls)");
      if (!cut) {
        EXPECT_EQ(ExitCodeFor(stats), 0) << when << ": " << SummaryLine(stats);
      }
      absl::Status restored = fs.PowerCut(cut_options);
      ASSERT_TRUE(restored.ok()) << when << ": " << restored;
      ExpectDurableStateIsSound(when);
      if (!cut) {
        EXPECT_EQ(DiffTrees(Expected(), DestinationFiles(dest_)), "")
            << when << ": a completed cycle did not survive the power cut";
      }
      // (4) The next run, a new process.
      FaultInjectionFileSystem plain(DefaultFileSystem());
      CycleStats next = Cycle(plain);
      EXPECT_EQ(ExitCodeFor(next), 0) << when << ": the next run: " << SummaryLine(next);
      EXPECT_EQ(DiffTrees(Expected(), DestinationFiles(dest_)), "")
          << when << ": the next run did not converge";
      ExpectDurableStateIsSound(when + ", then a run");
      if (::testing::Test::HasFailure()) {
        ADD_FAILURE() << "first failure at: " << when;
        return;
      }
      ++cuts;
      if (!cut) break;
      ASSERT_LT(n, 5000) << "no end";
    }
    LOG(INFO) << cuts << " power cuts";
    EXPECT_GT(cuts, 20);
  }

  std::string dir_, root_, saved_, data_, dest_;
  std::string archive_;  // --commitlog_archive, below root_; "" for none
  Files archive_before_;  // the archive's files before the cycle cut
  bool move_ = false;
  absl::Duration keep_for_ = absl::ZeroDuration();
  std::string retiring_;  // the copy retention retires (relative, with a trailing slash)
  Files known_;   // every snapshot file the source held, by path
  Files before_;  // the source's snapshot files before the cycle cut
};

// (a) The first copy: copies (unnamed files named in place, staged ones in
// a batch), links of s2 to s1's copies, new directories, the first commit
// (a compaction: the whole base), the directory cache.
TEST_F(PowerCutTest, FirstCopy) {
  AgeDirectories();
  CutEverywhere();
}

// A first run makes the destination (and its missing parents, .snaphaven,
// .snaphaven/tmp): each directory made must be synced into its parent, else
// a power cut after a whole run loses the destination with every copy in
// it, in move mode after the sources were deleted. Failed before
// PrepareDestination synced them.
TEST_F(PowerCutTest, FirstRunCreatingTheDestination) {
  Shell("rmdir " + dest_);
  AgeDirectories();
  move_ = true;
  FaultInjectionFileSystem::PowerCutOptions options;
  options.names_survive_under = data_;
  CutEverywhere(options);
}

// (b) A second cycle after new sstables appear: the commit appends a
// record to the manifest's log (a new log: its name made durable too).
TEST_F(PowerCutTest, SecondCycleAppendsToTheLog) {
  AgeDirectories();
  CycleWithoutFaults();
  ASSERT_FALSE(testing::ReadFileIfExists(dest_ + "/.snaphaven/manifest").empty());
  // A new snapshot: new files (new inodes), copied.
  std::string snapshots;
  for (const auto& [path, record] : testing::SnapshotFiles(data_)) {
    if (absl::StrContains(path, "/snapshots/s2/")) {
      snapshots = data_ + "/" + path.substr(0, path.find("/snapshots/s2/") + 11);
      break;
    }
  }
  ASSERT_FALSE(snapshots.empty());
  Shell("cp -r --preserve=mode,timestamps " + snapshots + "/s2 " + snapshots + "/s3");
  AgeDirectories();
  CutEverywhere();
  EXPECT_TRUE(testing::ReadFileIfExists(dest_ + "/.snaphaven/manifest.log").size() > 0)
      << "the last run appended to the log";
}

// (c) A commit that compacts the log: a torn record at the end of the log
// (a crash mid-append) makes the next commit write the base whole, then
// remove the log.
TEST_F(PowerCutTest, CompactionOfTheLog) {
  AgeDirectories();
  CycleWithoutFaults();
  std::string snapshots;
  for (const auto& [path, record] : testing::SnapshotFiles(data_)) {
    if (absl::StrContains(path, "/snapshots/s2/")) {
      snapshots = data_ + "/" + path.substr(0, path.find("/snapshots/s2/") + 11);
      break;
    }
  }
  Shell("cp -r --preserve=mode,timestamps " + snapshots + "/s2 " + snapshots + "/s3");
  AgeDirectories();
  CycleWithoutFaults();  // appends a record
  const std::string log = dest_ + "/.snaphaven/manifest.log";
  ASSERT_FALSE(testing::ReadFileIfExists(log).empty());
  Shell("printf 'rec\\t9999\\t00000000\\nput\\t' >> " + log);
  Shell("cp -r --preserve=mode,timestamps " + snapshots + "/s2 " + snapshots + "/s4");
  AgeDirectories();
  CutEverywhere();
  EXPECT_EQ(testing::ReadFileIfExists(log), "") << "the last run compacted the log";
}

// (d) Move mode: copies made durable, recorded, then the sources deleted.
// Cut twice at each step: once dropping every unsynced change; once with
// the source's deletions surviving unsynced (the worst case for a move:
// the deletion reached the disk, the copy's name may not have).
TEST_F(PowerCutTest, MoveDeletesOnlyDurableCopies) {
  move_ = true;
  CutEverywhere();
}

TEST_F(PowerCutTest, MoveDeletesOnlyDurableCopiesEvenWhenItsDeletionsSurviveUnsynced) {
  move_ = true;
  FaultInjectionFileSystem::PowerCutOptions options;
  options.names_survive_under = data_;
  CutEverywhere(options);
}

// (f) --commitlog_archive: segments verified and copied (each named only
// once durable), recorded, and in move mode removed from the archive only
// once the copy is durable and recorded: cut with the archive's removals
// surviving unsynced, the worst case for them.
TEST_F(PowerCutTest, CommitlogSegmentsMirroredAndDrained) {
  if (!ArchiveSegments()) GTEST_SKIP() << "../shared/fixtures/cassandra-test-data is absent";
  AgeDirectories();
  move_ = true;
  FaultInjectionFileSystem::PowerCutOptions options;
  options.names_survive_under = archive_;
  CutEverywhere(options);
  EXPECT_TRUE(Archived().empty()) << "the last run drained the archive";
}

// (e) Retention: the copy of a snapshot cleared at the source is retired
// (renamed into the trash, emptied, its parent synced, the manifest
// committed).
TEST_F(PowerCutTest, RetentionRetiresACopy) {
  AgeDirectories();
  CycleWithoutFaults();
  std::string s1;
  for (const auto& [path, record] : testing::SnapshotFiles(data_)) {
    if (absl::StrContains(path, "/snapshots/s1/")) {
      s1 = data_ + "/" + path.substr(0, path.find("/snapshots/s1/") + 13);
      break;
    }
  }
  ASSERT_FALSE(s1.empty());
  Shell("rm -rf '" + s1 + "'");
  retiring_ = s1.substr(data_.size() + 1);
  keep_for_ = absl::Nanoseconds(1);
  CutEverywhere();
}

}  // namespace
}  // namespace snaphaven
