// The copier's fast paths, each on its own: the kernel copy (and its
// fallback), and staged small copies made durable in a batch.
#include "snaphaven/storage/copier.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "snaphaven/storage/checksum.h"
#include "snaphaven/testing/fault_injection_file_system.h"
#include "snaphaven/testing/test_files.h"

namespace snaphaven {
namespace {

using testing::RandomBytes;

// Its files are not the kernel's to copy: AppendFromKernel is refused.
class NoKernelCopyFileSystem : public ForwardingFileSystem {
 public:
  using ForwardingFileSystem::ForwardingFileSystem;
  absl::StatusOr<std::unique_ptr<ReadableFile>> OpenForRead(const std::string& path) override {
    absl::StatusOr<std::unique_ptr<ReadableFile>> file = base()->OpenForRead(path);
    if (!file.ok()) return file.status();
    return std::unique_ptr<ReadableFile>(new Wrapped(*std::move(file)));
  }

 private:
  class Wrapped : public ReadableFile {
   public:
    explicit Wrapped(std::unique_ptr<ReadableFile> base) : base_(std::move(base)) {}
    absl::StatusOr<size_t> Read(char* buffer, size_t n) override { return base_->Read(buffer, n); }
    absl::StatusOr<size_t> ReadAt(char* buffer, size_t n, uint64_t offset) override {
      return base_->ReadAt(buffer, n, offset);
    }
    absl::StatusOr<FileStat> Stat() override { return base_->Stat(); }

   private:
    std::unique_ptr<ReadableFile> base_;
  };
};

class CopierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string templ = testing::MakeTempDir("copier");
    root_ = templ;
    dest_ = root_ + "/dest";
    ASSERT_TRUE(fs_.MakeDir(dest_).ok());
    ASSERT_TRUE(fs_.MakeDir(dest_ + "/tmp").ok());
  }

  // A source file of `size` random bytes; returns its path.
  std::string Source(const std::string& name, size_t size, uint32_t seed) {
    std::string path = absl::StrCat(root_, "/", name);
    EXPECT_TRUE(fs_.WriteFileAtomically(path, RandomBytes(size, seed)).ok());
    return path;
  }

  FileStat StatOf(const std::string& path) {
    absl::StatusOr<FileStat> st = fs_.Stat(path);
    EXPECT_TRUE(st.ok()) << st.status();
    return st.ok() ? *st : FileStat();
  }

  std::string Read(const std::string& path) {
    absl::StatusOr<std::string> text = fs_.ReadFile(path);
    EXPECT_TRUE(text.ok()) << text.status();
    return text.ok() ? *text : "";
  }

  // `n` small copies <prefix>/f<i> of sources <prefix><i>, staged.
  std::vector<std::shared_ptr<StagedCopy>> StageBatch(Copier& copier, const std::string& prefix,
                                                      int n) {
    std::vector<std::shared_ptr<StagedCopy>> batch;
    for (int i = 0; i < n; ++i) {
      const std::string source = Source(absl::StrCat(prefix, i), 700 + i, i);
      absl::StatusOr<CopyResult> result = copier.Copy(
          source, StatOf(source), absl::StrCat(prefix, "/f", i), nullptr, /*may_stage=*/true);
      EXPECT_TRUE(result.ok() && result->outcome == CopyOutcome::kStaged);
      if (result.ok()) batch.push_back(result->staged);
    }
    return batch;
  }

  // FinishStaged placed each copy of StageBatch(prefix) whole.
  void ExpectPlaced(const std::string& prefix, const std::vector<absl::Status>& done, int n) {
    ASSERT_EQ(done.size(), static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
      EXPECT_TRUE(done[i].ok()) << done[i];
      EXPECT_EQ(Read(absl::StrCat(dest_, "/", prefix, "/f", i)),
                Read(absl::StrCat(root_, "/", prefix, i)));
    }
  }

  // A syncfs handle on the destination, or null where it is not trusted.
  std::unique_ptr<FileSystemSync> TrustedSync(FileSystem& fs) {
    absl::StatusOr<std::unique_ptr<FileSystemSync>> sync = fs.OpenFileSystemSync(dest_);
    EXPECT_TRUE(sync.ok() || absl::IsUnimplemented(sync.status())) << sync.status();
    return sync.ok() ? *std::move(sync) : nullptr;
  }

  // The temporary files in dest_/tmp, unnamed or named.
  static constexpr char kTemporaryFile[] = "/dest/tmp/(\\(unnamed\\)|copy-)";
  FileSystem& fs_ = *DefaultFileSystem();
  std::string root_, dest_;
};

TEST_F(CopierTest, WithoutAChecksumTheKernelCopies) {
  const std::string source = Source("big", (3 << 20) + 4321, 1);
  Copier copier(fs_, dest_, dest_ + "/tmp", false, /*checksum=*/false);
  absl::StatusOr<CopyResult> result = copier.Copy(source, StatOf(source), "ks/t/big");
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->outcome, CopyOutcome::kDone);
  EXPECT_EQ(result->kernel_bytes, (3 << 20) + 4321);
  EXPECT_FALSE(result->has_crc32);
  EXPECT_EQ(Read(dest_ + "/ks/t/big"), Read(source));
  EXPECT_EQ(StatOf(dest_ + "/ks/t/big").mtime_ns, StatOf(source).mtime_ns);
}

// Regression: each kernel copy charged the throttle a whole buffer (1 MiB)
// per call, the last empty one too: 2 MiB for a 300-byte file.
TEST_F(CopierTest, TheKernelCopyChargesTheThrottleWhatItCopied) {
  BandwidthLimiter limiter(1 << 30);
  Copier copier(fs_, dest_, dest_ + "/tmp", false, /*checksum=*/false);
  copier.set_limiter(&limiter);
  int64_t total = 0;
  for (size_t size : {size_t{300}, size_t{(1 << 20) + 5}, size_t{0}}) {
    const std::string source = Source(absl::StrCat("f", size), size, 4);
    absl::StatusOr<CopyResult> result =
        copier.Copy(source, StatOf(source), absl::StrCat("f", size));
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->kernel_bytes, static_cast<int64_t>(size));
    total += static_cast<int64_t>(size);
    EXPECT_EQ(limiter.acquired(), total);
  }
}

TEST_F(CopierTest, WithAChecksumTheBytesPassThroughIt) {
  const std::string source = Source("big", (2 << 20) + 5, 2);
  Copier copier(fs_, dest_, dest_ + "/tmp", false, /*checksum=*/true);
  absl::StatusOr<CopyResult> result = copier.Copy(source, StatOf(source), "big");
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->kernel_bytes, 0);
  ASSERT_TRUE(result->has_crc32);
  EXPECT_EQ(result->crc32, Crc32(0, Read(source)));
  EXPECT_EQ(Read(dest_ + "/big"), Read(source));
}

TEST_F(CopierTest, WhereTheKernelCannotCopyItFallsBackToReadAndWrite) {
  const std::string source = Source("big", (1 << 20) + 17, 3);
  NoKernelCopyFileSystem no_kernel(&fs_);
  Copier copier(no_kernel, dest_, dest_ + "/tmp", false, /*checksum=*/false);
  absl::StatusOr<CopyResult> result = copier.Copy(source, StatOf(source), "big");
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->outcome, CopyOutcome::kDone);
  EXPECT_EQ(result->kernel_bytes, 0);
  EXPECT_EQ(Read(dest_ + "/big"), Read(source));
}

// A link takes the final name at once when it is free, and replaces a stale
// file (or a planted symlink, never followed) through a temporary name.
TEST_F(CopierTest, LinksTakeAFreeNameAndReplaceAStaleOne) {
  const std::string source = Source("src", 5000, 5);
  Copier copier(fs_, dest_, dest_ + "/tmp", false, /*checksum=*/true);
  ASSERT_TRUE(copier.Copy(source, StatOf(source), "ks/t/a").ok());
  const FileStat copy = StatOf(dest_ + "/ks/t/a");

  ASSERT_TRUE(copier.Link("ks/t/a", "ks/t/snapshots/s/a").ok());
  EXPECT_EQ(StatOf(dest_ + "/ks/t/snapshots/s/a").ino, copy.ino);

  ASSERT_TRUE(fs_.WriteFileAtomically(dest_ + "/ks/t/snapshots/s/b", "stale").ok());
  ASSERT_TRUE(copier.Link("ks/t/a", "ks/t/snapshots/s/b").ok());
  EXPECT_EQ(StatOf(dest_ + "/ks/t/snapshots/s/b").ino, copy.ino);

  const std::string outside = root_ + "/outside";
  ASSERT_TRUE(fs_.WriteFileAtomically(outside, "not to be touched").ok());
  ASSERT_EQ(symlink(outside.c_str(), (dest_ + "/ks/t/snapshots/s/c").c_str()), 0);
  ASSERT_TRUE(copier.Link("ks/t/a", "ks/t/snapshots/s/c").ok());
  EXPECT_EQ(StatOf(dest_ + "/ks/t/snapshots/s/c").ino, copy.ino);
  EXPECT_EQ(Read(outside), "not to be touched");

  // Linking a name to its own inode again changes nothing.
  ASSERT_TRUE(copier.Link("ks/t/a", "ks/t/snapshots/s/a").ok());
  EXPECT_EQ(StatOf(dest_ + "/ks/t/snapshots/s/a").ino, copy.ino);
  absl::StatusOr<std::vector<std::string>> left = fs_.ListDir(dest_ + "/tmp");
  ASSERT_TRUE(left.ok());
  EXPECT_TRUE(left->empty());
}

TEST_F(CopierTest, StagedCopiesAreInvisibleUntilFinished) {
  Copier copier(fs_, dest_, dest_ + "/tmp", false, /*checksum=*/true);
  std::vector<std::shared_ptr<StagedCopy>> batch;
  std::vector<std::string> sources;
  for (int i = 0; i < 5; ++i) {
    sources.push_back(Source(absl::StrCat("small", i), 1000 + i, 10 + i));
    absl::StatusOr<CopyResult> result =
        copier.Copy(sources.back(), StatOf(sources.back()), absl::StrCat("ks/t/f", i),
                    nullptr, /*may_stage=*/true);
    ASSERT_TRUE(result.ok()) << result.status();
    ASSERT_EQ(result->outcome, CopyOutcome::kStaged);
    EXPECT_EQ(result->crc32, Crc32(0, Read(sources.back())));
    batch.push_back(result->staged);
  }
  // Nothing under a final name yet.
  EXPECT_FALSE(fs_.Stat(dest_ + "/ks/t/f0").ok());
  std::vector<absl::Status> finished = copier.FinishStaged(batch);
  ASSERT_EQ(finished.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(finished[i].ok()) << finished[i];
    EXPECT_EQ(Read(absl::StrCat(dest_, "/ks/t/f", i)), Read(sources[i]));
  }
  absl::StatusOr<std::vector<std::string>> left = fs_.ListDir(dest_ + "/tmp");
  ASSERT_TRUE(left.ok());
  EXPECT_TRUE(left->empty());

  // A big file is never staged; a discarded batch leaves nothing behind.
  const std::string big = Source("big", Copier::kStageMaxBytes + 1, 20);
  absl::StatusOr<CopyResult> result = copier.Copy(big, StatOf(big), "big", nullptr, true);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->outcome, CopyOutcome::kDone);
  result = copier.Copy(sources[0], StatOf(sources[0]), "again", nullptr, true);
  ASSERT_TRUE(result.ok());
  ASSERT_EQ(result->outcome, CopyOutcome::kStaged);
  copier.DiscardStaged({result->staged});
  EXPECT_FALSE(fs_.Stat(dest_ + "/again").ok());
  left = fs_.ListDir(dest_ + "/tmp");
  ASSERT_TRUE(left.ok());
  EXPECT_TRUE(left->empty());
}


// The real file system, less unnamed files: temporary files get names.
class NamedTemporariesFileSystem : public ForwardingFileSystem {
 public:
  using ForwardingFileSystem::ForwardingFileSystem;
  absl::StatusOr<std::unique_ptr<WritableFile>> CreateUnnamed(const std::string&) override {
    return absl::UnimplementedError("no unnamed files here");
  }
};

TEST_F(CopierTest, CopiesReplaceAStaleFileWithOrWithoutUnnamedTemporaries) {
  NamedTemporariesFileSystem named(&fs_);
  for (FileSystem* fs : {&fs_, static_cast<FileSystem*>(&named)}) {
    SCOPED_TRACE(fs == &fs_ ? "unnamed where possible" : "named temporaries");
    Copier copier(*fs, dest_, dest_ + "/tmp", false, /*checksum=*/true);
    const std::string source = Source("src", 5000, 1);
    ASSERT_TRUE(fs_.MakeDir(dest_ + "/ks").ok() || fs_.Stat(dest_ + "/ks").ok());
    ASSERT_TRUE(fs_.WriteFileAtomically(dest_ + "/ks/f", "stale").ok());
    for (bool may_stage : {false, true}) {
      absl::StatusOr<CopyResult> result =
          copier.Copy(source, StatOf(source), "ks/f", nullptr, may_stage);
      ASSERT_TRUE(result.ok()) << result.status();
      if (result->outcome == CopyOutcome::kStaged) {
        std::vector<absl::Status> finished = copier.FinishStaged({result->staged});
        ASSERT_TRUE(finished[0].ok()) << finished[0];
      }
      EXPECT_EQ(Read(dest_ + "/ks/f"), Read(source));
      absl::StatusOr<std::vector<std::string>> left = fs_.ListDir(dest_ + "/tmp");
      ASSERT_TRUE(left.ok());
      EXPECT_TRUE(left->empty());
      ASSERT_TRUE(fs_.WriteFileAtomically(dest_ + "/ks/f", "stale again").ok());
    }
  }
}

// Without a syncfs, a batch's fsyncs run side by side (so they can share
// journal commits), on many more threads than --copy_threads.
TEST_F(CopierTest, ABatchsFsyncsRunSideBySide) {
  testing::FaultInjectionFileSystem faulty(&fs_);
  Copier copier(faulty, dest_, dest_ + "/tmp", false, /*checksum=*/true);
  copier.set_finish_threads(2);
  constexpr int kWanted = 8;
  absl::Mutex mu;
  int in_flight = 0, most = 0;
  // Each fsync waits (up to 100 ms) for kWanted of them to be under way.
  faulty.DuringSync([&](const std::string&) {
    absl::MutexLock lock(&mu);
    most = std::max(most, ++in_flight);
    auto enough = [&]() { return most >= kWanted; };
    mu.AwaitWithTimeout(absl::Condition(&enough), absl::Milliseconds(100));
    --in_flight;
  });
  ExpectPlaced("s", copier.FinishStaged(StageBatch(copier, "s", 4 * kWanted)), 4 * kWanted);
  EXPECT_GE(most, kWanted) << "fsyncs at once";
}

// A batch made durable with one syncfs rather than an fsync per file; after
// a failed syncfs, an fsync per file for good.
TEST_F(CopierTest, ABatchIsSyncedWithOneSyncfsUntilOneFails) {
  testing::FaultInjectionFileSystem faulty(&fs_);
  std::unique_ptr<FileSystemSync> sync = TrustedSync(faulty);
  if (sync == nullptr) GTEST_SKIP() << "syncfs is not trusted on " << dest_;
  Copier copier(faulty, dest_, dest_ + "/tmp", false, /*checksum=*/true);
  copier.set_file_system_sync(std::move(sync));
  copier.set_finish_threads(2);

  ExpectPlaced("a", copier.FinishStaged(StageBatch(copier, "a", 6)), 6);
  EXPECT_EQ(faulty.Calls(testing::FsOp::kSyncFs, ""), 1);
  EXPECT_EQ(faulty.Calls(testing::FsOp::kSync, kTemporaryFile), 0) << "no fsync per file";
  EXPECT_TRUE(copier.syncs_whole_file_system());

  faulty.AddRule({testing::FsOp::kSyncFs, "", EIO, 0, 1});
  ExpectPlaced("b", copier.FinishStaged(StageBatch(copier, "b", 6)), 6);
  EXPECT_EQ(faulty.Calls(testing::FsOp::kSync, kTemporaryFile), 6) << "each file on its own";
  EXPECT_FALSE(copier.syncs_whole_file_system());
  ExpectPlaced("c", copier.FinishStaged(StageBatch(copier, "c", 6)), 6);
  EXPECT_EQ(faulty.Calls(testing::FsOp::kSyncFs, ""), 2) << "no syncfs after one failed";
  EXPECT_EQ(faulty.Calls(testing::FsOp::kSync, kTemporaryFile), 12);
}

// Where a syncfs would also write out Cassandra's data, a gate decides
// batch by batch: refused, each file gets its fsync; let through, one
// syncfs. It is told how many bytes of snaphaven's own staged copies are
// still unwritten in memory (whole pages).
TEST_F(CopierTest, AGateDecidesEachBatchsSyncfs) {
  testing::FaultInjectionFileSystem faulty(&fs_);
  std::unique_ptr<FileSystemSync> sync = TrustedSync(faulty);
  if (sync == nullptr) GTEST_SKIP() << "syncfs is not trusted on " << dest_;
  Copier copier(faulty, dest_, dest_ + "/tmp", false, /*checksum=*/true);
  bool quiet = false;
  std::vector<int64_t> asked;
  auto gate = [&](int64_t own_unwritten) {
    asked.push_back(own_unwritten);
    return quiet;
  };
  copier.set_file_system_sync(std::move(sync), gate);
  EXPECT_FALSE(copier.syncs_whole_file_system()) << "not every batch";
  const int64_t batch = 3 * 4096;  // three small files, a page each

  ExpectPlaced("busy", copier.FinishStaged(StageBatch(copier, "busy", 3)), 3);
  EXPECT_EQ(faulty.Calls(testing::FsOp::kSyncFs, ""), 0);
  EXPECT_EQ(faulty.Calls(testing::FsOp::kSync, kTemporaryFile), 3) << "an fsync each";
  quiet = true;
  ExpectPlaced("quiet", copier.FinishStaged(StageBatch(copier, "quiet", 3)), 3);
  EXPECT_EQ(faulty.Calls(testing::FsOp::kSyncFs, ""), 1);
  EXPECT_EQ(faulty.Calls(testing::FsOp::kSync, kTemporaryFile), 3) << "no more fsyncs";
  // At first a syncfs is expected, so the batch's write-back is left to it
  // (all its bytes unwritten); after a refusal the next batch starts its
  // write-back at once, for its fsyncs (none counted).
  EXPECT_EQ(asked, (std::vector<int64_t>{batch, 0}));

  // A syncfs writes what was staged before it began, the next batch too.
  asked.clear();
  std::vector<std::shared_ptr<StagedCopy>> a = StageBatch(copier, "a", 3);
  std::vector<std::shared_ptr<StagedCopy>> b = StageBatch(copier, "b", 3);
  ExpectPlaced("a", copier.FinishStaged(a), 3);
  ExpectPlaced("b", copier.FinishStaged(b), 3);
  EXPECT_EQ(asked, (std::vector<int64_t>{2 * batch, 0}));

  // A discarded batch is not counted any more.
  asked.clear();
  copier.DiscardStaged(StageBatch(copier, "dropped", 3));
  ExpectPlaced("c", copier.FinishStaged(StageBatch(copier, "c", 3)), 3);
  EXPECT_EQ(asked, (std::vector<int64_t>{batch}));

  // Nor is one staged before the cycle's handle was set.
  asked.clear();
  std::vector<std::shared_ptr<StagedCopy>> left = StageBatch(copier, "left", 3);
  std::unique_ptr<FileSystemSync> next_cycle = TrustedSync(faulty);
  ASSERT_NE(next_cycle, nullptr);
  copier.set_file_system_sync(std::move(next_cycle), gate);
  ExpectPlaced("d", copier.FinishStaged(StageBatch(copier, "d", 3)), 3);
  ExpectPlaced("left", copier.FinishStaged(left), 3);
  EXPECT_EQ(asked, (std::vector<int64_t>{batch, 0}));
}

}  // namespace
}  // namespace snaphaven
