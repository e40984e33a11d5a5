// Move mode's deletions at the source (mover.h), on real directory trees: a
// data root holding ks/t-<id>/snapshots/<tag>/ and a destination holding the
// copies. A unit is deleted only when every file of it is still the one
// scanned and its copy is a different file of the same size and mtime.
#include "snaphaven/cycle/mover.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "snaphaven/cassandra/cassandra_path.h"
#include "snaphaven/testing/fault_injection_file_system.h"
#include "snaphaven/testing/test_files.h"

namespace snaphaven {
namespace {

constexpr char kTable[] = "ks/t-0094ac203e7411e59149ef9f87394ca6";
constexpr char kTag[] = "ks/t-0094ac203e7411e59149ef9f87394ca6/snapshots/s1";
// 1600000000.123456789 s: inside a whole second, so that a copy a little
// later in the same second is "the same mtime" at a granularity of 1 s.
constexpr int64_t kSecond = 1000000000;
constexpr int64_t kMtime = 1600000000 * kSecond + 123456789;

// The files of the usual unit, in its deletion order: manifest.json last.
const std::vector<std::string> kUnitFiles = {"nb-1-big-Data.db", "nb-1-big-TOC.txt",
                                             ".t_idx/nb-1-big-Data.db", ".t_idx/nb-1-big-TOC.txt",
                                             "manifest.json"};

// The real file system, with every path Remove is asked for recorded.
class RecordingFileSystem : public ForwardingFileSystem {
 public:
  using ForwardingFileSystem::ForwardingFileSystem;
  absl::Status Remove(const std::string& path) override {
    removed.push_back(path);
    return base()->Remove(path);
  }
  std::vector<std::string> removed;
};

FileSystem& Fs() { return *DefaultFileSystem(); }

void MakeDirs(const std::string& dir) {
  for (size_t slash = dir.find('/', 1);; slash = dir.find('/', slash + 1)) {
    absl::Status made = Fs().MakeDir(dir.substr(0, slash));
    ASSERT_TRUE(made.ok() || absl::IsAlreadyExists(made)) << made;
    if (slash == std::string::npos) return;
  }
}

void SetMtime(const std::string& path, int64_t mtime_ns) {
  const struct timespec times[2] = {{0, UTIME_OMIT}, {mtime_ns / kSecond, mtime_ns % kSecond}};
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW), 0) << path;
}

// `contents` at `path` (a new inode), its directories made, with `mtime_ns`.
void Write(const std::string& path, const std::string& contents, int64_t mtime_ns = kMtime) {
  MakeDirs(std::string(DirName(path)));
  ASSERT_TRUE(Fs().WriteFileAtomically(path, contents).ok()) << path;
  SetMtime(path, mtime_ns);
}

// One byte longer, same inode and mtime.
void Grow(const std::string& path) {
  struct stat st;
  ASSERT_EQ(lstat(path.c_str(), &st), 0) << path;
  ASSERT_EQ(truncate(path.c_str(), st.st_size + 1), 0) << path;
  SetMtime(path, kMtime);
}

bool Exists(const std::string& path) { return Fs().Stat(path).ok(); }

std::string Problems(const MoveOutcome& outcome) { return absl::StrJoin(outcome.problems, "\n"); }

class MoverTest : public ::testing::Test {
 public:
  void SetUp() override { Reset(); }

  // A fresh tree: new data roots and destination, an empty scan.
  void Reset() {
    const std::string base = testing::MakeTempDir("mover");
    roots_ = {base + "/data0", base + "/data1"};
    dest_ = base + "/dest";
    scan_ = ScanResult();
  }

  std::string Source(const std::string& rel, int root = 0) const {
    return JoinPath(roots_[root], rel);
  }
  std::string Copy(const std::string& rel) const { return JoinPath(dest_, rel); }

  // A source file (and, when `copied`, its copy at the destination), both
  // with mtime kMtime, scanned as it is now; returns its index in the scan.
  size_t AddFile(const std::string& rel, int root = 0, bool copied = true) {
    const std::string contents = absl::StrCat("the bytes of ", rel);
    Write(Source(rel, root), contents);
    if (copied) Write(Copy(rel), contents);
    SourceFile file;
    file.relative_path = rel;
    file.root = root;
    absl::StatusOr<FileStat> stat = Fs().Stat(Source(rel, root));
    EXPECT_TRUE(stat.ok()) << stat.status();
    if (stat.ok()) file.stat = *stat;
    file.kind = ClassifyPath(rel).kind;
    scan_.files.push_back(file);
    return scan_.files.size() - 1;
  }

  // ks/t-<id>/snapshots/s1 with an index sstable, copied whole: the files of
  // kUnitFiles in that order, its two directories deepest first.
  MoveUnit Snapshot() {
    MoveUnit unit;
    unit.name = kTag;
    for (const std::string& file : kUnitFiles) unit.files.push_back(AddFile(Rel(file)));
    unit.dirs = {{0, Rel(".t_idx")}, {0, kTag}};
    return unit;
  }
  static std::string Rel(const std::string& in_tag) { return absl::StrCat(kTag, "/", in_tag); }

  MoveOutcome Delete(const MoveUnit& unit, int64_t granularity_ns = 1,
                     FileSystem& fs = *DefaultFileSystem()) {
    return DeleteMovedSources(fs, unit, scan_, roots_, dest_, granularity_ns);
  }

  // Every source file of kUnitFiles is still there, and every copy.
  void ExpectUnitKept() {
    for (const std::string& file : kUnitFiles) {
      EXPECT_TRUE(Exists(Source(Rel(file)))) << file;
      EXPECT_TRUE(Exists(Copy(Rel(file)))) << file;
    }
  }

  std::vector<std::string> roots_;
  std::string dest_;
  ScanResult scan_;
};

TEST_F(MoverTest, DeletesEveryFileOfTheUnitInItsOrderThenItsEmptiedDirs) {
  MoveUnit unit = Snapshot();
  RecordingFileSystem recording(DefaultFileSystem());
  MoveOutcome outcome = Delete(unit, 1, recording);
  EXPECT_TRUE(outcome.completed) << Problems(outcome);
  EXPECT_TRUE(outcome.problems.empty()) << Problems(outcome);
  EXPECT_EQ(outcome.deleted, 5);
  std::vector<std::string> expected;
  for (const std::string& file : kUnitFiles) expected.push_back(Source(Rel(file)));
  EXPECT_EQ(recording.removed, expected) << "not in the unit's order (manifest.json last)";
  for (const std::string& file : kUnitFiles) {
    EXPECT_FALSE(Exists(Source(Rel(file)))) << file;
    EXPECT_TRUE(Exists(Copy(Rel(file)))) << "the copy must stay: " << file;
  }
  EXPECT_FALSE(Exists(Source(Rel(".t_idx"))));
  EXPECT_FALSE(Exists(Source(kTag)));
  // Only the unit's directories: snapshots/ and the table stay.
  EXPECT_TRUE(Exists(Source(absl::StrCat(kTable, "/snapshots"))));
}

struct KeepCase {
  const char* name;
  // Changes the source or the copy of `rel` after the scan.
  std::function<void(MoverTest& t, const std::string& rel)> change;
  const char* problem;
};

// One file that is not as it should be keeps the whole unit: everything is
// checked before anything is deleted. The culprit is the third file, so
// that two files before it passed their checks.
TEST_F(MoverTest, KeepsTheWholeUnitWhenAFileOrItsCopyIsNotAsScanned) {
  const std::vector<KeepCase> cases = {
      {"source replaced (another inode, same size and mtime)",
       [](MoverTest& t, const std::string& rel) {
         Write(t.Source(rel), absl::StrCat("THE BYTES OF ", rel));
       },
       "changed since the scan"},
      {"source grew", [](MoverTest& t, const std::string& rel) { Grow(t.Source(rel)); },
       "changed since the scan"},
      {"source touched",
       [](MoverTest& t, const std::string& rel) { SetMtime(t.Source(rel), kMtime + 1); },
       "changed since the scan"},
      {"copy missing",
       [](MoverTest& t, const std::string& rel) {
         ASSERT_TRUE(Fs().Remove(t.Copy(rel)).ok());
       },
       "is missing or differs from"},
      {"copy of another size", [](MoverTest& t, const std::string& rel) { Grow(t.Copy(rel)); },
       "is missing or differs from"},
      {"copy with another mtime",
       [](MoverTest& t, const std::string& rel) { SetMtime(t.Copy(rel), kMtime - 1); },
       "is missing or differs from"},
      {"copy is a directory",
       [](MoverTest& t, const std::string& rel) {
         ASSERT_TRUE(Fs().Remove(t.Copy(rel)).ok());
         ASSERT_TRUE(Fs().MakeDir(t.Copy(rel)).ok());
       },
       "is missing or differs from"},
      {"copy is the source itself (a hard link: a bind mount's view)",
       [](MoverTest& t, const std::string& rel) {
         ASSERT_TRUE(Fs().Remove(t.Copy(rel)).ok());
         ASSERT_TRUE(Fs().Link(t.Source(rel), t.Copy(rel)).ok());
       },
       "is the same file (bind mount?)"},
  };
  for (const KeepCase& c : cases) {
    SCOPED_TRACE(c.name);
    Reset();
    MoveUnit unit = Snapshot();
    const std::string culprit = Rel(kUnitFiles[2]);
    c.change(*this, culprit);
    MoveOutcome outcome = Delete(unit);
    EXPECT_FALSE(outcome.completed);
    EXPECT_EQ(outcome.deleted, 0);
    ASSERT_EQ(outcome.problems.size(), 1u) << Problems(outcome);
    EXPECT_NE(outcome.problems[0].find(c.problem), std::string::npos) << outcome.problems[0];
    EXPECT_NE(outcome.problems[0].find(Source(culprit)), std::string::npos) << outcome.problems[0];
    for (const std::string& file : kUnitFiles) EXPECT_TRUE(Exists(Source(Rel(file)))) << file;
    EXPECT_TRUE(Exists(Source(Rel(".t_idx"))));
  }
}

// A killed move is resumed: what it already deleted counts as done.
TEST_F(MoverTest, ASourceAlreadyGoneCountsAsDone) {
  MoveUnit unit = Snapshot();
  ASSERT_TRUE(Fs().Remove(Source(Rel("nb-1-big-Data.db"))).ok());
  ASSERT_TRUE(Fs().Remove(Source(Rel(".t_idx/nb-1-big-TOC.txt"))).ok());
  MoveOutcome outcome = Delete(unit);
  EXPECT_TRUE(outcome.completed) << Problems(outcome);
  EXPECT_TRUE(outcome.problems.empty()) << Problems(outcome);
  EXPECT_EQ(outcome.deleted, 3);
  EXPECT_FALSE(Exists(Source(kTag)));

  // All of it gone (the whole tag dir too): done, nothing to delete.
  outcome = Delete(unit);
  EXPECT_TRUE(outcome.completed) << Problems(outcome);
  EXPECT_EQ(outcome.deleted, 0);
}

TEST_F(MoverTest, NeverDeletesAnythingOutsideTheUnit) {
  MoveUnit unit = Snapshot();
  // In the same tag dir but not in the unit (appeared after the scan, or
  // not taken): it stays, and so does the tag dir holding it.
  AddFile(Rel("schema.cql"));
  AddFile(Rel("nb-2-big-Data.db"), 0, /*copied=*/false);
  // Another snapshot and the live sstable of the same table.
  AddFile(absl::StrCat(kTable, "/snapshots/s2/nb-1-big-Data.db"));
  AddFile(absl::StrCat(kTable, "/nb-1-big-Data.db"));
  MoveOutcome outcome = Delete(unit);
  EXPECT_TRUE(outcome.completed) << Problems(outcome);
  EXPECT_EQ(outcome.deleted, 5);
  for (size_t i = kUnitFiles.size(); i < scan_.files.size(); ++i) {
    EXPECT_TRUE(Exists(Source(scan_.files[i].relative_path))) << scan_.files[i].relative_path;
  }
  EXPECT_FALSE(Exists(Source(Rel(".t_idx")))) << "emptied: removed";
  EXPECT_TRUE(Exists(Source(kTag))) << "not empty: kept";
}

// Belt and braces: a unit naming a live file (a bug in whoever built it)
// deletes nothing at all.
TEST_F(MoverTest, RefusesAUnitWithAFileOutsideSnapshotsAndBackups) {
  MoveUnit unit = Snapshot();
  const std::string live = absl::StrCat(kTable, "/nb-1-big-Data.db");
  unit.files.push_back(AddFile(live));
  MoveOutcome outcome = Delete(unit);
  EXPECT_FALSE(outcome.completed);
  EXPECT_EQ(outcome.deleted, 0);
  ASSERT_EQ(outcome.problems.size(), 1u) << Problems(outcome);
  EXPECT_NE(outcome.problems[0].find("refusing to delete " + live), std::string::npos)
      << outcome.problems[0];
  EXPECT_TRUE(Exists(Source(live)));
  ExpectUnitKept();
}

// A destination that keeps whole seconds (sshfs) stores the copy's mtime
// truncated: mtimes agree when both fall in the same step.
TEST_F(MoverTest, CopyMtimesAgreeAtTheDestinationsGranularity) {
  MoveUnit unit = Snapshot();
  const std::string rel = Rel(kUnitFiles[1]);
  SetMtime(Copy(rel), 1600000000 * kSecond);  // truncated to the second
  MoveOutcome outcome = Delete(unit, /*granularity_ns=*/1);
  EXPECT_FALSE(outcome.completed) << "differs at 1 ns";
  EXPECT_EQ(outcome.deleted, 0);
  ExpectUnitKept();

  // Less than a second apart, but in the next second: not the same.
  SetMtime(Copy(rel), 1600000001 * kSecond);
  outcome = Delete(unit, kSecond);
  EXPECT_FALSE(outcome.completed) << "another second";
  ExpectUnitKept();

  SetMtime(Copy(rel), 1600000000 * kSecond + 999999999);
  outcome = Delete(unit, kSecond);
  EXPECT_TRUE(outcome.completed) << Problems(outcome);
  EXPECT_EQ(outcome.deleted, 5);
  EXPECT_FALSE(Exists(Source(rel)));
}

// An unlink that fails stops the deleting there: what came before is gone,
// the rest (manifest.json, the proof of completeness, included) stays.
TEST_F(MoverTest, AFailedUnlinkStopsAndSaysSo) {
  MoveUnit unit = Snapshot();
  testing::FaultInjectionFileSystem faulty(DefaultFileSystem());
  faulty.AddRule({testing::FsOp::kRemove, "/nb-1-big-TOC\\.txt$", EACCES, 0, 1});
  MoveOutcome outcome = Delete(unit, 1, faulty);
  EXPECT_FALSE(outcome.completed);
  EXPECT_EQ(outcome.deleted, 1);
  ASSERT_EQ(outcome.problems.size(), 1u) << Problems(outcome);
  EXPECT_NE(outcome.problems[0].find(Source(Rel("nb-1-big-TOC.txt"))), std::string::npos)
      << outcome.problems[0];
  EXPECT_FALSE(Exists(Source(Rel("nb-1-big-Data.db"))));
  for (size_t i = 1; i < kUnitFiles.size(); ++i) {
    EXPECT_TRUE(Exists(Source(Rel(kUnitFiles[i])))) << kUnitFiles[i];
  }
  EXPECT_EQ(faulty.Calls(testing::FsOp::kRemoveDir, ""), 0) << "no directory removed";

  // The next try finishes it.
  outcome = Delete(unit);
  EXPECT_TRUE(outcome.completed) << Problems(outcome);
  EXPECT_EQ(outcome.deleted, 4);
  EXPECT_FALSE(Exists(Source(kTag)));
}

// One snapshot over two data roots (Cassandra's data_file_directories):
// deleted in both, each root's tag dir removed.
TEST_F(MoverTest, ASnapshotOverTwoDataRootsIsDeletedInBoth) {
  MoveUnit unit;
  unit.name = kTag;
  unit.files = {AddFile(Rel("nb-1-big-Data.db"), 0), AddFile(Rel("nb-2-big-Data.db"), 1),
                AddFile(Rel("manifest.json"), 1)};
  unit.dirs = {{0, kTag}, {1, kTag}};
  MoveOutcome outcome = Delete(unit);
  EXPECT_TRUE(outcome.completed) << Problems(outcome);
  EXPECT_EQ(outcome.deleted, 3);
  EXPECT_FALSE(Exists(Source(kTag, 0)));
  EXPECT_FALSE(Exists(Source(kTag, 1)));
}

// Backups move one sstable at a time; backups/ itself is not the unit's.
TEST_F(MoverTest, ABackupSSTableIsDeleted) {
  const std::string backups = absl::StrCat(kTable, "/backups");
  MoveUnit unit;
  unit.name = backups + "/nb-3-big";
  unit.files = {AddFile(backups + "/nb-3-big-Data.db"), AddFile(backups + "/nb-3-big-TOC.txt")};
  AddFile(backups + "/nb-4-big-Data.db");
  MoveOutcome outcome = Delete(unit);
  EXPECT_TRUE(outcome.completed) << Problems(outcome);
  EXPECT_EQ(outcome.deleted, 2);
  EXPECT_FALSE(Exists(Source(backups + "/nb-3-big-Data.db")));
  EXPECT_TRUE(Exists(Source(backups + "/nb-4-big-Data.db")));
}

}  // namespace
}  // namespace snaphaven
