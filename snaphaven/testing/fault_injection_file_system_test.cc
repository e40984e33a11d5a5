#include "snaphaven/testing/fault_injection_file_system.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cerrno>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "snaphaven/testing/test_files.h"

namespace snaphaven::testing {
namespace {

class FaultInjectionFileSystemTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string templ = MakeTempDir("faulty");
    in_path_ = templ + "/in";
    out_path_ = templ + "/out";
    data_ = RandomBytes((1 << 20) + 99, 7);
    ASSERT_TRUE(fs_.WriteFileAtomically(in_path_, data_).ok());
    absl::StatusOr<std::unique_ptr<ReadableFile>> in = fs_.OpenForRead(in_path_);
    ASSERT_TRUE(in.ok()) << in.status();
    in_ = *std::move(in);
    absl::StatusOr<std::unique_ptr<WritableFile>> out = fs_.CreateNew(out_path_);
    ASSERT_TRUE(out.ok()) << out.status();
    out_ = *std::move(out);
  }

  // AppendFromKernel until the end of the input; the first error if any.
  absl::Status KernelCopy() {
    while (true) {
      absl::StatusOr<size_t> copied = out_->AppendFromKernel(*in_, 64 << 10);
      if (!copied.ok()) return copied.status();
      if (*copied == 0) return absl::OkStatus();
    }
  }

  std::string ReadOut() {
    absl::StatusOr<std::string> got = DefaultFileSystem()->ReadFile(out_path_);
    EXPECT_TRUE(got.ok()) << got.status();
    return got.ok() ? *got : "";
  }

  FaultInjectionFileSystem fs_{DefaultFileSystem()};
  std::string in_path_;
  std::string out_path_;
  std::string data_;
  std::unique_ptr<ReadableFile> in_;
  std::unique_ptr<WritableFile> out_;
};

// The wrapped files still reach the kernel copy.
TEST_F(FaultInjectionFileSystemTest, AppendFromKernelCopiesThroughTheWrappers) {
  ASSERT_TRUE(KernelCopy().ok());
  ASSERT_TRUE(out_->Close().ok());
  EXPECT_TRUE(ReadOut() == data_);
  EXPECT_GT(fs_.Calls(FsOp::kWrite, "/out$"), 0);
  EXPECT_GT(fs_.Calls(FsOp::kRead, "/in$"), 0);
}

TEST_F(FaultInjectionFileSystemTest, WriteFaultFailsAppendFromKernel) {
  fs_.AddRule({FsOp::kWrite, "/out$", ENOSPC, /*skip=*/2});
  absl::Status status = KernelCopy();
  EXPECT_TRUE(IsOutOfSpace(status)) << status;
  EXPECT_EQ(OperationOf(status), "copy_file_range");
  EXPECT_EQ(fs_.Injected().size(), 1u);
  // The fault struck before the kernel copied anything: going on completes the copy.
  ASSERT_TRUE(KernelCopy().ok());
  ASSERT_TRUE(out_->Close().ok());
  EXPECT_TRUE(ReadOut() == data_);
}

TEST_F(FaultInjectionFileSystemTest, ReadFaultAndHookApplyToAppendFromKernel) {
  int hooks = 0;
  fs_.AfterFirstRead("/in$", [&hooks](const std::string&) { ++hooks; });
  fs_.AddRule({FsOp::kRead, "/in$", EIO, /*skip=*/1});
  absl::Status status = KernelCopy();
  EXPECT_EQ(ErrnoOf(status), EIO) << status;
  EXPECT_EQ(hooks, 1);  // after the first, successful, copy
}


// ---- The power-cut model ----

class PowerCutModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = MakeTempDir("powercut");
    ASSERT_TRUE(real_.MakeDir(root_ + "/d").ok());
    Write(root_ + "/d/old", "old bytes");  // from before: durable as it is
    fs_.TrackDurability(root_);
  }

  static void Write(const std::string& path, const std::string& data) {
    ASSERT_TRUE(DefaultFileSystem()->WriteFileAtomically(path, data).ok());
  }
  // Creates `path` through the wrapper with `data`, synced or not.
  void Create(const std::string& path, const std::string& data, bool sync) {
    absl::StatusOr<std::unique_ptr<WritableFile>> file = fs_.CreateNew(path);
    ASSERT_TRUE(file.ok()) << file.status();
    ASSERT_TRUE((*file)->Append(data).ok());
    if (sync) {
      ASSERT_TRUE((*file)->Sync().ok());
    }
    ASSERT_TRUE((*file)->Close().ok());
  }
  bool Exists(const std::string& path) { return real_.Stat(path).ok(); }
  std::string Read(const std::string& path) {
    absl::StatusOr<std::string> got = real_.ReadFile(path);
    EXPECT_TRUE(got.ok()) << got.status();
    return got.ok() ? *got : "<missing>";
  }
  void Cut() {
    absl::Status status = fs_.PowerCut();
    ASSERT_TRUE(status.ok()) << status;
  }

  FileSystem& real_ = *DefaultFileSystem();
  FaultInjectionFileSystem fs_{DefaultFileSystem()};
  std::string root_;
};

TEST_F(PowerCutModelTest, AWrittenButUnsyncedFileVanishes) {
  Create(root_ + "/d/new", "data", /*sync=*/false);
  Cut();
  EXPECT_FALSE(Exists(root_ + "/d/new"));
  EXPECT_EQ(Read(root_ + "/d/old"), "old bytes");
}

TEST_F(PowerCutModelTest, AnUnsyncedFileWhoseNameIsDurableComesBackEmpty) {
  Create(root_ + "/d/new", "data", /*sync=*/false);
  ASSERT_TRUE(fs_.SyncDir(root_ + "/d").ok());
  Cut();
  EXPECT_EQ(Read(root_ + "/d/new"), "");  // leveldb's choice: unsynced data is dropped
}

TEST_F(PowerCutModelTest, ASyncedFileWhoseDirectoryWasNotSyncedVanishes) {
  Create(root_ + "/d/new", "data", /*sync=*/true);
  Cut();
  EXPECT_FALSE(Exists(root_ + "/d/new"));
}

TEST_F(PowerCutModelTest, ASyncedFileInASyncedDirectorySurvivesWithoutItsUnsyncedTail) {
  absl::StatusOr<std::unique_ptr<WritableFile>> file = fs_.CreateNew(root_ + "/d/new");
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE((*file)->Append("synced").ok());
  FileStat times;
  times.mode = 0644;
  times.mtime_ns = 1234567890123456789;
  times.atime_ns = 1234567890000000000;
  ASSERT_TRUE((*file)->SetAttributes(times, false).ok());
  ASSERT_TRUE((*file)->Sync().ok());
  ASSERT_TRUE((*file)->Append(" and not").ok());
  ASSERT_TRUE((*file)->Close().ok());
  ASSERT_TRUE(fs_.SyncDir(root_ + "/d").ok());
  EXPECT_EQ(Read(root_ + "/d/new"), "synced and not");
  Cut();
  EXPECT_EQ(Read(root_ + "/d/new"), "synced");
  absl::StatusOr<FileStat> st = real_.Stat(root_ + "/d/new");
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->mtime_ns, times.mtime_ns);
  EXPECT_EQ(st->mode, 0644u);
}

TEST_F(PowerCutModelTest, ARenameNotFollowedBySyncDirIsUndoneAndTheOldTargetComesBack) {
  Create(root_ + "/d/tmp", "new bytes", /*sync=*/true);
  ASSERT_TRUE(fs_.SyncDir(root_ + "/d").ok());
  ASSERT_TRUE(fs_.Rename(root_ + "/d/tmp", root_ + "/d/old").ok());
  EXPECT_EQ(Read(root_ + "/d/old"), "new bytes");
  Cut();
  EXPECT_EQ(Read(root_ + "/d/old"), "old bytes");
  EXPECT_EQ(Read(root_ + "/d/tmp"), "new bytes");
}

TEST_F(PowerCutModelTest, ARenameFollowedBySyncDirStays) {
  Create(root_ + "/d/tmp", "new bytes", /*sync=*/true);
  ASSERT_TRUE(fs_.Rename(root_ + "/d/tmp", root_ + "/d/old").ok());
  ASSERT_TRUE(fs_.SyncDir(root_ + "/d").ok());
  Cut();
  EXPECT_EQ(Read(root_ + "/d/old"), "new bytes");
  EXPECT_FALSE(Exists(root_ + "/d/tmp"));
}

TEST_F(PowerCutModelTest, ARemoveNotFollowedBySyncDirIsUndone) {
  ASSERT_TRUE(fs_.Remove(root_ + "/d/old").ok());
  EXPECT_FALSE(Exists(root_ + "/d/old"));
  Cut();
  EXPECT_EQ(Read(root_ + "/d/old"), "old bytes");
  // Made durable, a removal stays.
  ASSERT_TRUE(fs_.Remove(root_ + "/d/old").ok());
  ASSERT_TRUE(fs_.SyncDir(root_ + "/d").ok());
  Cut();
  EXPECT_FALSE(Exists(root_ + "/d/old"));
}

TEST_F(PowerCutModelTest, ANewDirectoryNeedsItsParentSynced) {
  ASSERT_TRUE(fs_.MakeDir(root_ + "/d/sub").ok());
  Create(root_ + "/d/sub/f", "data", /*sync=*/true);
  ASSERT_TRUE(fs_.SyncDir(root_ + "/d/sub").ok());
  Cut();
  EXPECT_FALSE(Exists(root_ + "/d/sub"));
  ASSERT_TRUE(fs_.MakeDir(root_ + "/d/sub").ok());
  ASSERT_TRUE(fs_.SyncDir(root_ + "/d").ok());
  Create(root_ + "/d/sub/f", "data", /*sync=*/true);
  ASSERT_TRUE(fs_.SyncDir(root_ + "/d/sub").ok());
  Cut();
  EXPECT_EQ(Read(root_ + "/d/sub/f"), "data");
}

TEST_F(PowerCutModelTest, UnnamedFilesAndHardLinks) {
  absl::StatusOr<std::unique_ptr<WritableFile>> file = fs_.CreateUnnamed(root_ + "/d");
  if (absl::IsUnimplemented(file.status())) GTEST_SKIP() << "no O_TMPFILE here";
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_TRUE((*file)->Append("linked").ok());
  ASSERT_TRUE((*file)->Sync().ok());
  ASSERT_TRUE((*file)->LinkAs(root_ + "/d/a").ok());
  ASSERT_TRUE((*file)->Close().ok());
  ASSERT_TRUE(fs_.Link(root_ + "/d/a", root_ + "/d/b").ok());
  ASSERT_TRUE(fs_.SyncDir(root_ + "/d").ok());
  ASSERT_TRUE(fs_.Link(root_ + "/d/a", root_ + "/d/c").ok());  // not durable
  ASSERT_TRUE(fs_.Remove(root_ + "/d/a").ok());                 // nor this
  Cut();
  EXPECT_EQ(Read(root_ + "/d/a"), "linked");
  EXPECT_EQ(Read(root_ + "/d/b"), "linked");
  EXPECT_FALSE(Exists(root_ + "/d/c"));
  absl::StatusOr<FileStat> a = real_.Stat(root_ + "/d/a"), b = real_.Stat(root_ + "/d/b");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->ino, b->ino) << "links of one file stay links";
}

TEST_F(PowerCutModelTest, AnAppendedLogKeepsWhatWasSynced) {
  Write(root_ + "/d/log", "head\n");
  absl::StatusOr<std::unique_ptr<WritableFile>> log = fs_.OpenForAppend(root_ + "/d/log");
  ASSERT_TRUE(log.ok()) << log.status();
  ASSERT_TRUE((*log)->Append("one\n").ok());
  ASSERT_TRUE((*log)->Sync().ok());
  ASSERT_TRUE((*log)->Append("two\n").ok());
  ASSERT_TRUE((*log)->Close().ok());
  Cut();
  EXPECT_EQ(Read(root_ + "/d/log"), "head\none\n");
}

TEST_F(PowerCutModelTest, ADirectoryRenamedAwayComesBackWithItsFiles) {
  ASSERT_TRUE(fs_.MakeDir(root_ + "/trash").ok());
  ASSERT_TRUE(fs_.SyncDir(root_).ok());
  ASSERT_TRUE(fs_.Rename(root_ + "/d", root_ + "/trash/1").ok());
  ASSERT_TRUE(fs_.Remove(root_ + "/trash/1/old").ok());
  ASSERT_TRUE(fs_.RemoveDir(root_ + "/trash/1").ok());
  Cut();
  EXPECT_EQ(Read(root_ + "/d/old"), "old bytes");
  EXPECT_FALSE(Exists(root_ + "/trash/1"));
}

TEST_F(PowerCutModelTest, NamesCanSurviveWhereAsked) {
  ASSERT_TRUE(fs_.Remove(root_ + "/d/old").ok());
  Create(root_ + "/d/new", "data", /*sync=*/false);
  FaultInjectionFileSystem::PowerCutOptions options;
  options.names_survive_under = root_ + "/d";
  ASSERT_TRUE(fs_.PowerCut(options).ok());
  EXPECT_FALSE(Exists(root_ + "/d/old"));
  EXPECT_EQ(Read(root_ + "/d/new"), "");  // the name stays; the data was never synced
}

TEST_F(PowerCutModelTest, TheSyncfsOfTheWholeFileSystemMakesEverythingDurable) {
  absl::StatusOr<std::unique_ptr<FileSystemSync>> sync = fs_.OpenFileSystemSync(root_);
  if (!sync.ok()) GTEST_SKIP() << sync.status();
  Create(root_ + "/d/new", "data", /*sync=*/false);
  ASSERT_TRUE((*sync)->SyncAll().ok());
  Cut();
  EXPECT_EQ(Read(root_ + "/d/new"), "data");
}

TEST_F(PowerCutModelTest, AfterTheCutEveryCallFails) {
  fs_.CutPowerAfter(2);
  absl::StatusOr<std::unique_ptr<WritableFile>> file = fs_.CreateNew(root_ + "/d/new");  // 1
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE((*file)->Append("data").ok());  // 2
  EXPECT_FALSE(fs_.PowerIsOff());
  EXPECT_EQ(ErrnoOf((*file)->Sync()), EIO);
  EXPECT_TRUE(fs_.PowerIsOff());
  EXPECT_EQ(ErrnoOf(fs_.Stat(root_ + "/d/old").status()), EIO) << "reads too";
  EXPECT_EQ(ErrnoOf(fs_.SyncDir(root_ + "/d")), EIO);
  file->reset();
  Cut();
  EXPECT_FALSE(fs_.PowerIsOff());
  EXPECT_FALSE(Exists(root_ + "/d/new"));
  EXPECT_TRUE(fs_.Stat(root_ + "/d/old").ok());
}

}  // namespace
}  // namespace snaphaven::testing
