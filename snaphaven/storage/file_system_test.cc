#include "snaphaven/storage/file_system.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <limits>
#include <memory>
#include <random>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "snaphaven/testing/test_files.h"

namespace snaphaven {
namespace {

using testing::RandomBytes;

// Not a POSIX file: the kernel cannot copy from it.
class StringReadableFile : public ReadableFile {
 public:
  explicit StringReadableFile(std::string data) : data_(std::move(data)) {}
  absl::StatusOr<size_t> Read(char* buffer, size_t n) override {
    n = std::min(n, data_.size() - pos_);
    data_.copy(buffer, n, pos_);
    pos_ += n;
    return n;
  }
  absl::StatusOr<size_t> ReadAt(char* buffer, size_t n, uint64_t offset) override {
    return offset >= data_.size() ? 0 : data_.copy(buffer, n, offset);
  }
  absl::StatusOr<FileStat> Stat() override { return absl::UnimplementedError("no stat"); }

 private:
  const std::string data_;
  size_t pos_ = 0;
};

class AppendFromKernelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string templ = testing::MakeTempDir("fs");
    dir_ = templ;
    // Not a multiple of the chunk size, so the last call is a short one.
    data_ = RandomBytes((3 << 20) + 12345, 42);
    ASSERT_TRUE(fs_.WriteFileAtomically(In(), data_).ok());
  }

  std::string In() const { return dir_ + "/in"; }
  std::string Out() const { return dir_ + "/out"; }

  std::unique_ptr<ReadableFile> OpenIn() {
    absl::StatusOr<std::unique_ptr<ReadableFile>> in = fs_.OpenForRead(In());
    EXPECT_TRUE(in.ok()) << in.status();
    return in.ok() ? *std::move(in) : nullptr;
  }
  std::unique_ptr<WritableFile> CreateOut() {
    absl::StatusOr<std::unique_ptr<WritableFile>> out = fs_.CreateNew(Out());
    EXPECT_TRUE(out.ok()) << out.status();
    return out.ok() ? *std::move(out) : nullptr;
  }
  std::string ReadOut() {
    absl::StatusOr<std::string> got = fs_.ReadFile(Out());
    EXPECT_TRUE(got.ok()) << got.status();
    return got.ok() ? *got : "";
  }

  // Reads `n` bytes from `in` and appends them to `out`, the user-space way.
  static void ReadAppend(ReadableFile& in, WritableFile& out, size_t n) {
    std::string buffer(n, '\0');
    absl::StatusOr<size_t> got = in.Read(buffer.data(), n);
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ(*got, n);
    ASSERT_TRUE(out.Append(buffer).ok());
  }

  FileSystem& fs_ = *DefaultFileSystem();
  std::string dir_;
  std::string data_;
};

TEST_F(AppendFromKernelTest, CopiesAWholeFile) {
  std::unique_ptr<ReadableFile> in = OpenIn();
  std::unique_ptr<WritableFile> out = CreateOut();
  ASSERT_TRUE(in && out);
  size_t total = 0;
  while (true) {
    absl::StatusOr<size_t> copied = out->AppendFromKernel(*in, 1 << 20);
    ASSERT_TRUE(copied.ok()) << copied.status();
    if (*copied == 0) break;
    total += *copied;
  }
  EXPECT_EQ(total, data_.size());
  ASSERT_TRUE(out->Sync().ok());
  ASSERT_TRUE(out->Close().ok());
  EXPECT_TRUE(ReadOut() == data_);  // not EXPECT_EQ: no 3 MiB diff on failure
}

// Both positions advance, so user-space and kernel copies can take turns.
TEST_F(AppendFromKernelTest, MixesWithReadAndAppend) {
  std::unique_ptr<ReadableFile> in = OpenIn();
  std::unique_ptr<WritableFile> out = CreateOut();
  ASSERT_TRUE(in && out);
  ReadAppend(*in, *out, 1000);
  size_t kernel = 0;
  while (kernel < (1 << 20) + 7) {
    absl::StatusOr<size_t> copied = out->AppendFromKernel(*in, (1 << 20) + 7 - kernel);
    ASSERT_TRUE(copied.ok()) << copied.status();
    ASSERT_GT(*copied, 0u);
    kernel += *copied;
  }
  ReadAppend(*in, *out, 333);
  while (true) {
    absl::StatusOr<size_t> copied = out->AppendFromKernel(*in, 1 << 20);
    ASSERT_TRUE(copied.ok()) << copied.status();
    if (*copied == 0) break;
  }
  ASSERT_TRUE(out->Close().ok());
  EXPECT_TRUE(ReadOut() == data_);
}

TEST_F(AppendFromKernelTest, NotAPosixInputIsUnimplemented) {
  StringReadableFile in("some bytes");
  std::unique_ptr<WritableFile> out = CreateOut();
  ASSERT_TRUE(out);
  absl::StatusOr<size_t> copied = out->AppendFromKernel(in, 100);
  EXPECT_TRUE(absl::IsUnimplemented(copied.status())) << copied.status();
  ASSERT_TRUE(out->Close().ok());
  EXPECT_EQ(ReadOut(), "");
}

// Other errors carry their errno, like the other calls' (ENOSPC -> IsOutOfSpace).
TEST_F(AppendFromKernelTest, ErrorsCarryTheErrno) {
  std::unique_ptr<ReadableFile> in = OpenIn();
  std::unique_ptr<WritableFile> out = CreateOut();
  ASSERT_TRUE(in && out);
  ASSERT_TRUE(out->Close().ok());
  absl::StatusOr<size_t> copied = out->AppendFromKernel(*in, 100);  // a closed descriptor
  EXPECT_EQ(ErrnoOf(copied.status()), EBADF) << copied.status();
  EXPECT_EQ(OperationOf(copied.status()), "copy_file_range");
}


// Unnamed files (O_TMPFILE) and whole-file-system syncs, on the real file
// system the tests run on.
class UnnamedFileTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::MakeTempDir("unnamed"); }

  std::vector<std::string> Names() {
    absl::StatusOr<std::vector<std::string>> names = fs_.ListDir(dir_);
    EXPECT_TRUE(names.ok()) << names.status();
    return names.ok() ? *names : std::vector<std::string>();
  }

  // An unnamed file holding `contents`; skips the test where the file
  // system or the process cannot make one.
  std::unique_ptr<WritableFile> Unnamed(const std::string& contents) {
    absl::StatusOr<std::unique_ptr<WritableFile>> file = fs_.CreateUnnamed(dir_);
    if (absl::IsUnimplemented(file.status())) return nullptr;
    EXPECT_TRUE(file.ok()) << file.status();
    if (!file.ok()) return nullptr;
    EXPECT_TRUE((*file)->Append(contents).ok());
    return *std::move(file);
  }

  FileSystem& fs_ = *DefaultFileSystem();
  std::string dir_;
};

TEST_F(UnnamedFileTest, HasNoNameUntilLinkedAndNeverReplaces) {
  std::unique_ptr<WritableFile> file = Unnamed("whole");
  if (file == nullptr) GTEST_SKIP() << "no O_TMPFILE here: " << dir_;
  EXPECT_TRUE(Names().empty()) << "an unnamed file shows in its directory";
  ASSERT_TRUE(fs_.WriteFileAtomically(dir_ + "/taken", "stale").ok());
  absl::Status refused = file->LinkAs(dir_ + "/taken");
  EXPECT_EQ(ErrnoOf(refused), EEXIST) << refused;
  EXPECT_EQ(*fs_.ReadFile(dir_ + "/taken"), "stale");
  ASSERT_TRUE(file->Sync().ok());
  ASSERT_TRUE(file->LinkAs(dir_ + "/final").ok());
  ASSERT_TRUE(file->Close().ok());
  EXPECT_EQ(*fs_.ReadFile(dir_ + "/final"), "whole");
}

TEST_F(UnnamedFileTest, LeavesNothingBehindWhenDropped) {
  std::unique_ptr<WritableFile> file = Unnamed(std::string(100000, 'x'));
  if (file == nullptr) GTEST_SKIP() << "no O_TMPFILE here: " << dir_;
  file.reset();
  EXPECT_TRUE(Names().empty());
}

TEST_F(UnnamedFileTest, ANamedFileCannotBeLinkedThisWay) {
  absl::StatusOr<std::unique_ptr<WritableFile>> file = fs_.CreateNew(dir_ + "/named");
  ASSERT_TRUE(file.ok());
  EXPECT_TRUE(absl::IsUnimplemented((*file)->LinkAs(dir_ + "/other")));
}

TEST_F(UnnamedFileTest, FileSystemSyncOnlyWhereSyncfsIsTrusted) {
  absl::StatusOr<std::unique_ptr<FileSystemSync>> sync = fs_.OpenFileSystemSync(dir_);
  if (sync.ok()) {
    EXPECT_TRUE((*sync)->SyncAll().ok());
  } else {
    EXPECT_TRUE(absl::IsUnimplemented(sync.status())) << sync.status();
  }
  // /proc is no disk: syncfs there would promise nothing.
  EXPECT_TRUE(absl::IsUnimplemented(fs_.OpenFileSystemSync("/proc").status()));
  EXPECT_FALSE(fs_.OpenFileSystemSync(dir_ + "/missing").ok());
}

// statfs says "ext2/3/4" alike; an ext2 mount (perhaps the native ext2
// driver, whose syncfs does not flush the disk's cache) is refused.
TEST_F(UnnamedFileTest, FileSystemSyncRefusesExt2) {
  const std::string image = dir_ + "/ext2.img", mnt = dir_ + "/mnt";
  ASSERT_TRUE(fs_.MakeDir(mnt).ok());
  const std::string make = absl::StrCat(
      "PATH=$PATH:/usr/sbin:/sbin; truncate -s 16M ", image, " && mkfs.ext2 -q -F ", image,
      " >/dev/null 2>&1 && mount -t ext2 -o loop ", image, " ", mnt, " >/dev/null 2>&1");
  if (system(make.c_str()) != 0) {
    GTEST_SKIP() << "cannot mount an ext2 image here (needs root, mkfs.ext2, a loop device)";
  }
  absl::StatusOr<std::unique_ptr<FileSystemSync>> sync = fs_.OpenFileSystemSync(mnt);
  EXPECT_TRUE(absl::IsUnimplemented(sync.status())) << sync.status();
  EXPECT_TRUE(absl::StrContains(sync.status().message(), "ext2")) << sync.status();
  sync = absl::UnimplementedError("");  // closes the descriptor before the unmount
  EXPECT_EQ(system(("umount " + mnt).c_str()), 0);
}

// NewConfinedFileSystem, with openat2 and with the component walk.
class ConfinedTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    UseOpenat2ForTesting(GetParam());
    dir_ = testing::MakeTempDir("confined");
    root_ = dir_ + "/dest";
    canary_ = dir_ + "/canary";
    data_ = dir_ + "/data";
    for (const std::string& d : {root_, canary_, root_ + "/a", data_}) {
      ASSERT_TRUE(plain_.MakeDir(d).ok()) << d;
    }
    ASSERT_TRUE(plain_.WriteFileAtomically(canary_ + "/x", "canary").ok());
    ASSERT_TRUE(plain_.WriteFileAtomically(root_ + "/a/g", "mine").ok());
    ASSERT_EQ(symlink(canary_.c_str(), (root_ + "/link").c_str()), 0);
    ASSERT_EQ(symlink(canary_.c_str(), (root_ + "/a/link").c_str()), 0);
    confined_ = NewConfinedFileSystem({root_}, {data_});
  }
  void TearDown() override { UseOpenat2ForTesting(true); }

  // The canary holds exactly its file, unchanged.
  void ExpectCanaryUntouched() {
    absl::StatusOr<std::vector<std::string>> names = plain_.ListDir(canary_);
    ASSERT_TRUE(names.ok());
    EXPECT_EQ(*names, std::vector<std::string>{"x"});
    EXPECT_EQ(plain_.ReadFile(canary_ + "/x").value_or("(unreadable)"), "canary");
  }

  FileSystem& plain_ = *DefaultFileSystem();
  std::unique_ptr<FileSystem> confined_;
  std::string dir_, root_, canary_, data_;
};

INSTANTIATE_TEST_SUITE_P(Openat2OrWalk, ConfinedTest, ::testing::Bool());

TEST_P(ConfinedTest, EveryOperationWorksBeneathTheRoot) {
  FileSystem& fs = *confined_;
  ASSERT_TRUE(fs.MakeDir(root_ + "/a/b").ok());
  EXPECT_EQ(ErrnoOf(fs.MakeDir(root_ + "/a/b")), EEXIST);
  ASSERT_TRUE(fs.WriteFileAtomically(root_ + "/a/b/m", "manifest").ok());
  EXPECT_EQ(*fs.ReadFile(root_ + "/a/b/m"), "manifest");
  ASSERT_TRUE(fs.Rename(root_ + "/a/b/m", root_ + "/a/n").ok());
  ASSERT_TRUE(fs.Link(root_ + "/a/n", root_ + "/a/b/o").ok());
  absl::StatusOr<FileStat> st = fs.Stat(root_ + "/a/b/o");
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->nlink, 2u);
  absl::StatusOr<std::unique_ptr<WritableFile>> log = fs.OpenForAppend(root_ + "/a/log");
  ASSERT_TRUE(log.ok()) << log.status();
  ASSERT_TRUE((*log)->Append("entry").ok());
  ASSERT_TRUE((*log)->Close().ok());
  absl::StatusOr<std::unique_ptr<WritableFile>> unnamed = fs.CreateUnnamed(root_ + "/a/b");
  if (!absl::IsUnimplemented(unnamed.status())) {
    ASSERT_TRUE(unnamed.ok()) << unnamed.status();
    ASSERT_TRUE((*unnamed)->Append("whole").ok());
    ASSERT_TRUE((*unnamed)->LinkAs(root_ + "/a/b/u").ok());
    ASSERT_TRUE((*unnamed)->Close().ok());
    EXPECT_EQ(*fs.ReadFile(root_ + "/a/b/u"), "whole");
    ASSERT_TRUE(fs.Remove(root_ + "/a/b/u").ok());
  }
  absl::StatusOr<std::unique_ptr<FileLock>> lock = fs.TryLock(root_ + "/lock");
  ASSERT_TRUE(lock.ok()) << lock.status();
  EXPECT_TRUE(fs.SyncDir(root_ + "/a").ok());
  EXPECT_TRUE(fs.SyncDir(root_).ok());
  EXPECT_TRUE(fs.CheckAccess(root_ + "/a/n", R_OK).ok());
  absl::StatusOr<std::vector<std::string>> names = fs.ListDir(root_ + "/a/b");
  ASSERT_TRUE(names.ok()) << names.status();
  EXPECT_EQ(*names, std::vector<std::string>{"o"});
  absl::StatusOr<std::vector<FileSystem::DirEntry>> entries = fs.ListDirWithStats(root_);
  ASSERT_TRUE(entries.ok()) << entries.status();
  EXPECT_EQ(entries->size(), 3u);  // a, link, lock
  ASSERT_TRUE(fs.Remove(root_ + "/a/b/o").ok());
  ASSERT_TRUE(fs.RemoveDir(root_ + "/a/b").ok());
  // Outside the roots, paths are taken as given.
  ASSERT_TRUE(fs.WriteFileAtomically(dir_ + "/outside", "o").ok());
  ExpectCanaryUntouched();
}

TEST_P(ConfinedTest, ASymlinkBelowTheRootIsNeverFollowed) {
  FileSystem& fs = *confined_;
  for (const std::string& link : {root_ + "/link", root_ + "/a/link"}) {
    SCOPED_TRACE(link);
    EXPECT_EQ(ErrnoOf(fs.CreateNew(link + "/new").status()), ELOOP);
    EXPECT_EQ(ErrnoOf(fs.OpenForAppend(link + "/x").status()), ELOOP);
    EXPECT_EQ(ErrnoOf(fs.MakeDir(link + "/d")), ELOOP);
    EXPECT_EQ(ErrnoOf(fs.Remove(link + "/x")), ELOOP);
    EXPECT_EQ(ErrnoOf(fs.RemoveDir(link + "/x")), ELOOP);
    EXPECT_EQ(ErrnoOf(fs.Rename(root_ + "/a/g", link + "/x")), ELOOP);
    EXPECT_EQ(ErrnoOf(fs.Link(root_ + "/a/g", link + "/y")), ELOOP);
    EXPECT_EQ(ErrnoOf(fs.Link(link + "/x", root_ + "/a/y")), ELOOP);
    EXPECT_EQ(ErrnoOf(fs.Stat(link + "/x").status()), ELOOP);
    EXPECT_EQ(ErrnoOf(fs.OpenForRead(link + "/x").status()), ELOOP);
    EXPECT_EQ(ErrnoOf(fs.TryLock(link + "/lock").status()), ELOOP);
    EXPECT_EQ(ErrnoOf(fs.CreateUnnamed(link).status()), ELOOP);
    EXPECT_FALSE(fs.WriteFileAtomically(link + "/x", "attacker's").ok());
    EXPECT_EQ(ErrnoOf(fs.ListDir(link).status()), ELOOP);
    EXPECT_EQ(ErrnoOf(fs.ListDirWithStats(link).status()), ELOOP);
    EXPECT_EQ(ErrnoOf(fs.SyncDir(link)), ELOOP);
    // The link itself is an entry like any other, never its target.
    absl::StatusOr<FileStat> st = fs.Stat(link);
    ASSERT_TRUE(st.ok());
    EXPECT_EQ(st->type, FileType::kSymlink);
  }
  // ".." is refused, even where it would stay inside.
  EXPECT_EQ(ErrnoOf(fs.CreateNew(root_ + "/a/../../escape").status()), EXDEV);
  EXPECT_EQ(ErrnoOf(fs.CreateNew(root_ + "/a/../b").status()), EXDEV);
  EXPECT_FALSE(plain_.Stat(dir_ + "/escape").ok());
  ExpectCanaryUntouched();
  EXPECT_EQ(fs.ReadFile(root_ + "/a/g").value_or("(unreadable)"), "mine");
}

// The confined file system keeps the directories it resolved a short while
// (a first copy puts hundreds of files in each); a directory renamed or
// removed since, or replaced before a new cycle, must never be written to.
TEST_P(ConfinedTest, AResolvedDirectoryIsNeverUsedOnceItWasReplaced) {
  FileSystem& fs = *confined_;
  const std::string b = root_ + "/a/b";
  ASSERT_TRUE(fs.MakeDir(b).ok());
  ASSERT_TRUE(fs.WriteFileAtomically(b + "/1", "one").ok());  // b resolved
  // Renamed through it, and made again: the new b.
  ASSERT_TRUE(fs.Rename(b, root_ + "/a/renamed").ok());
  ASSERT_TRUE(fs.MakeDir(b).ok());
  ASSERT_TRUE(fs.WriteFileAtomically(b + "/2", "two").ok());
  EXPECT_EQ(plain_.ReadFile(b + "/2").value_or("(not there)"), "two");
  EXPECT_FALSE(plain_.Stat(root_ + "/a/renamed/2").ok()) << "written into the renamed directory";
  // Removed through it, and made again.
  ASSERT_TRUE(fs.Remove(b + "/2").ok());
  ASSERT_TRUE(fs.RemoveDir(b).ok());
  ASSERT_TRUE(fs.MakeDir(b).ok());
  EXPECT_TRUE(fs.WriteFileAtomically(b + "/3", "three").ok());
  EXPECT_EQ(plain_.ReadFile(b + "/3").value_or("(not there)"), "three");
  // Replaced behind its back: a new cycle forgets what it resolved.
  ASSERT_TRUE(plain_.Rename(b, root_ + "/a/moved").ok());
  ASSERT_TRUE(plain_.MakeDir(b).ok());
  fs.ForgetResolvedDirectories();
  ASSERT_TRUE(fs.WriteFileAtomically(b + "/4", "four").ok());
  EXPECT_EQ(plain_.ReadFile(b + "/4").value_or("(not there)"), "four");
  // And within a cycle, once a second has passed.
  ASSERT_TRUE(plain_.Rename(b, root_ + "/a/moved2").ok());
  ASSERT_TRUE(plain_.MakeDir(b).ok());
  absl::SleepFor(absl::Milliseconds(1100));
  ASSERT_TRUE(fs.WriteFileAtomically(b + "/5", "five").ok());
  EXPECT_EQ(plain_.ReadFile(b + "/5").value_or("(not there)"), "five");
  ExpectCanaryUntouched();
}

TEST_P(ConfinedTest, TheSourceChangesOnlyInsideSnapshotsOrBackups) {
  FileSystem& fs = *confined_;
  const std::string table = data_ + "/ks/t-1";
  for (const std::string& d : {data_ + "/ks", table, table + "/snapshots",
                               table + "/snapshots/tag", table + "/backups"}) {
    ASSERT_TRUE(plain_.MakeDir(d).ok()) << d;
  }
  for (const std::string& f :
       {table + "/nb-1-big-Data.db", table + "/snapshots/tag/nb-1-big-Data.db",
        table + "/backups/nb-1-big-Data.db"}) {
    ASSERT_TRUE(plain_.WriteFileAtomically(f, "sstable").ok()) << f;
  }
  // Live sstables, and anything outside a table's snapshots/<tag>/ or
  // backups/, are never changed; reads are as ever.
  EXPECT_EQ(ErrnoOf(fs.Remove(table + "/nb-1-big-Data.db")), EPERM);
  EXPECT_EQ(ErrnoOf(fs.RemoveDir(table + "/snapshots")), EPERM);
  EXPECT_EQ(ErrnoOf(fs.MakeDir(table + "/new")), EPERM);
  EXPECT_EQ(ErrnoOf(fs.CreateNew(data_ + "/ks/x").status()), EPERM);
  EXPECT_EQ(ErrnoOf(fs.Remove(table + "/snapshots/tag/../../nb-1-big-Data.db")), EPERM);
  EXPECT_TRUE(fs.Stat(table + "/nb-1-big-Data.db").ok());
  // A tag directory swapped for a symlink: not followed.
  ASSERT_EQ(symlink(canary_.c_str(), (table + "/snapshots/evil").c_str()), 0);
  EXPECT_EQ(ErrnoOf(fs.Remove(table + "/snapshots/evil/x")), ELOOP);
  ExpectCanaryUntouched();
  // Move mode's removals.
  EXPECT_TRUE(fs.Remove(table + "/snapshots/tag/nb-1-big-Data.db").ok());
  EXPECT_TRUE(fs.RemoveDir(table + "/snapshots/tag").ok());
  EXPECT_TRUE(fs.Remove(table + "/backups/nb-1-big-Data.db").ok());
  EXPECT_TRUE(plain_.Stat(table + "/nb-1-big-Data.db").ok());
  // A keyspace directory moved to another disk, a symlink in its place, is
  // followed as the scan follows it; below the table, nothing is.
  const std::string moved = dir_ + "/other-disk";
  for (const std::string& d : {moved, moved + "/t-2", moved + "/t-2/snapshots",
                               moved + "/t-2/snapshots/tag"}) {
    ASSERT_TRUE(plain_.MakeDir(d).ok()) << d;
  }
  ASSERT_TRUE(plain_.WriteFileAtomically(moved + "/t-2/snapshots/tag/f", "s").ok());
  ASSERT_EQ(symlink(moved.c_str(), (data_ + "/ks2").c_str()), 0);
  EXPECT_TRUE(fs.Remove(data_ + "/ks2/t-2/snapshots/tag/f").ok());
  EXPECT_FALSE(plain_.Stat(moved + "/t-2/snapshots/tag/f").ok());
}

TEST(SameMtime, EqualOnceTruncatedToTheGranularity) {
  EXPECT_TRUE(SameMtime(5, 5, 1));
  EXPECT_FALSE(SameMtime(5, 6, 1));
  EXPECT_TRUE(SameMtime(1000000000, 1999999999, 1000000000));
  EXPECT_FALSE(SameMtime(999999999, 1000000000, 1000000000));
  // Before 1970: floored, not truncated toward zero.
  EXPECT_TRUE(SameMtime(-1, -1000000000, 1000000000));
  EXPECT_FALSE(SameMtime(-1, 0, 1000000000));
  EXPECT_FALSE(SameMtime(-1000000001, -1000000000, 1000000000));
}

// The mtimes in a manifest and the granularity in the identity marker are
// read from the destination, which others can write: any int64 must compare
// without overflow (UBSan, --config=asan, caught the floor of INT64_MIN at a
// granularity of 3 ns going below INT64_MIN).
TEST(SameMtime, ExtremeValuesDoNotOverflow) {
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  // INT64_MIN = 3 * -3074457345618258603 + 1: its 3 ns step starts below it.
  EXPECT_TRUE(SameMtime(kMin, kMin + 1, 3));
  EXPECT_FALSE(SameMtime(kMin, kMin + 2, 3));
  EXPECT_FALSE(SameMtime(kMin, kMin + 1, kMax));
  EXPECT_TRUE(SameMtime(kMin + 1, -1, kMax));
  EXPECT_TRUE(SameMtime(kMax, kMax - 1, 2000000000));
  EXPECT_FALSE(SameMtime(kMin, kMax, 2));
}

}  // namespace
}  // namespace snaphaven
