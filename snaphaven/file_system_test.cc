#include "snaphaven/file_system.h"

#include <gtest/gtest.h>
#include <stdlib.h>

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
