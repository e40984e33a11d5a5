// The archive mirror's decisions (pure), and passes over real segments in
// temporary directories: what lands under the final name is exactly the
// bytes verified, a damaged segment only ever reaches the quarantine, and
// move mode removes only what is mirrored. (The binary end to end, with
// every fixture segment: //snaphaven:e2e_commitlog_test.)

#include "snaphaven/commitlog/archive_mirror.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "snaphaven/storage/checksum.h"
#include "snaphaven/commitlog/segment.h"
#include "snaphaven/storage/copier.h"
#include "snaphaven/storage/file_system.h"
#include "snaphaven/state/manifest.h"
#include "snaphaven/testing/test_files.h"

namespace snaphaven::commitlog {
namespace {

constexpr int64_t kSecond = 1000000000;
const absl::Time kNow = absl::FromUnixSeconds(1800000000);

FileStat RegularFile(int64_t size, absl::Time mtime) {
  FileStat stat;
  stat.type = FileType::kRegular;
  stat.size = size;
  stat.mtime_ns = absl::ToUnixNanos(mtime);
  stat.ino = 7;
  return stat;
}

ManifestEntry Recorded(int64_t size, absl::Time mtime) {
  ManifestEntry entry;
  entry.size = size;
  entry.mtime_ns = absl::ToUnixNanos(mtime);
  return entry;
}

ArchiveStep Step(absl::string_view name, const FileStat& stat,
                 const ManifestEntry* mirrored = nullptr, int64_t granularity = 1) {
  return DecideArchiveFile(name, stat, mirrored, kNow, absl::Seconds(10), granularity).step;
}

TEST(DecideArchiveFileTest, OnlySegmentsAreMirrored) {
  const FileStat old = RegularFile(100, kNow - absl::Hours(1));
  EXPECT_EQ(Step("CommitLog-7-1700000000000.log", old), ArchiveStep::kCopy);
  EXPECT_EQ(Step("CommitLog-3-1431528750790.log", old), ArchiveStep::kCopy);
  EXPECT_EQ(Step("CommitLog-1431528750790.log", old), ArchiveStep::kLegacy);
  EXPECT_EQ(Step("CommitLog-7-1700000000000_cdc.idx", old), ArchiveStep::kIgnore);
  EXPECT_EQ(Step("CommitLog-7-1700000000000.log.tmp", old), ArchiveStep::kIgnore);
  EXPECT_EQ(Step("commitlog_archiving.properties", old), ArchiveStep::kIgnore);
  FileStat link = old;
  link.type = FileType::kSymlink;
  EXPECT_EQ(Step("CommitLog-7-1700000000000.log", link), ArchiveStep::kNotRegular);
  FileStat dir = old;
  dir.type = FileType::kDirectory;
  EXPECT_EQ(Step("CommitLog-7-1700000000000.log", dir), ArchiveStep::kNotRegular);
}

TEST(DecideArchiveFileTest, SettleTime) {
  const char* name = "CommitLog-7-1700000000000.log";
  EXPECT_EQ(Step(name, RegularFile(100, kNow - absl::Seconds(9))), ArchiveStep::kSettling);
  EXPECT_EQ(Step(name, RegularFile(100, kNow)), ArchiveStep::kSettling);
  EXPECT_EQ(Step(name, RegularFile(100, kNow + absl::Hours(1))), ArchiveStep::kSettling);
  EXPECT_EQ(Step(name, RegularFile(100, kNow - absl::Seconds(10))), ArchiveStep::kCopy);
  // A rewritten segment settles too before it is copied again.
  const ManifestEntry entry = Recorded(50, kNow - absl::Hours(2));
  EXPECT_EQ(Step(name, RegularFile(100, kNow - absl::Seconds(1)), &entry),
            ArchiveStep::kSettling);
}

TEST(DecideArchiveFileTest, RewrittenInPlaceIsCopiedAgain) {
  const char* name = "CommitLog-4-1431529069529.log";
  const absl::Time mtime = kNow - absl::Hours(1);
  const ManifestEntry same = Recorded(100, mtime);
  EXPECT_EQ(Step(name, RegularFile(100, mtime), &same), ArchiveStep::kUnchanged);
  EXPECT_FALSE(DecideArchiveFile(name, RegularFile(100, mtime), &same, kNow, absl::Seconds(10), 1)
                   .rewritten);
  const ManifestEntry shorter = Recorded(60, mtime);  // cp -f over a partial copy
  ArchiveDecision decision =
      DecideArchiveFile(name, RegularFile(100, mtime), &shorter, kNow, absl::Seconds(10), 1);
  EXPECT_EQ(decision.step, ArchiveStep::kCopy);
  EXPECT_TRUE(decision.rewritten);
  const ManifestEntry older = Recorded(100, mtime - absl::Minutes(5));  // 2.1 recycling
  decision = DecideArchiveFile(name, RegularFile(100, mtime), &older, kNow, absl::Seconds(10), 1);
  EXPECT_EQ(decision.step, ArchiveStep::kCopy);
  EXPECT_TRUE(decision.rewritten);
  // Within the destination's mtime granularity (whole seconds on sshfs).
  const ManifestEntry truncated = Recorded(100, absl::FromUnixSeconds(absl::ToUnixSeconds(mtime)));
  FileStat precise = RegularFile(100, mtime);
  precise.mtime_ns += 123;
  EXPECT_EQ(Step(name, precise, &truncated, kSecond), ArchiveStep::kUnchanged);
  EXPECT_EQ(Step(name, precise, &truncated, 1), ArchiveStep::kCopy);
}

TEST(ArchivePathsTest, Names) {
  EXPECT_EQ(MirroredPath("CommitLog-7-1.log"), "commitlog_archive/CommitLog-7-1.log");
  EXPECT_EQ(QuarantinedPath("CommitLog-7-1.log"), "commitlog_archive/quarantine/CommitLog-7-1.log");
  // What a restore takes: only names directly in commitlog_archive/ that
  // are segments; the quarantine's are not.
  EXPECT_EQ(ParseSegmentName("quarantine/CommitLog-7-1.log").kind, FileKind::kOther);
}

std::string ReadWhole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

bool Exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

// Reads one path's bytes from another file: what the verification reads
// is not what the copier then copies (a source rewritten in between).
class RedirectingFileSystem : public ForwardingFileSystem {
 public:
  RedirectingFileSystem(FileSystem* base, std::string from, std::string to)
      : ForwardingFileSystem(base), from_(std::move(from)), to_(std::move(to)) {}
  absl::StatusOr<std::unique_ptr<ReadableFile>> OpenForRead(const std::string& path) override {
    return base()->OpenForRead(path == from_ ? to_ : path);
  }

 private:
  const std::string from_, to_;
};

class ArchiveMirrorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fixtures_ = testing::SharedFixturesDir("cassandra-test-data");
    if (fixtures_.empty()) GTEST_SKIP() << "../shared/fixtures/cassandra-test-data is absent";
    fixtures_ += "/legacy-commitlog";
    const std::string dir = testing::MakeTempDir("archive_mirror");
    archive_ = dir + "/archive";
    dest_ = dir + "/dest";
    for (const std::string& d : {archive_, dest_, dest_ + "/.snaphaven", dest_ + "/.snaphaven/tmp"}) {
      ASSERT_TRUE(fs_.MakeDir(d).ok()) << d;
    }
    copier_ = std::make_unique<Copier>(fs_, dest_, dest_ + "/.snaphaven/tmp", false);
  }

  // Copies a fixture segment into the archive, an hour old.
  std::string Archive(const std::string& fixture) {
    const std::string name = fixture.substr(fixture.rfind('/') + 1);
    const std::string path = archive_ + "/" + name;
    EXPECT_TRUE(fs_.WriteFileAtomically(path, ReadWhole(fixtures_ + "/" + fixture)).ok());
    const timespec times[2] = {{absl::ToUnixSeconds(absl::Now()) - 3600, 0},
                               {absl::ToUnixSeconds(absl::Now()) - 3600, 0}};
    EXPECT_EQ(utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
    return name;
  }

  // `commit_succeeds`: what the manifest commit reports.
  ArchivePassResult Pass(FileSystem& archive_fs, bool move = false, bool commit_succeeds = true) {
    ArchiveMirrorOptions options;
    options.archive_dir = archive_;
    options.destination = dest_;
    options.move = move;
    ArchiveMirror mirror(archive_fs, *copier_, options);
    ArchiveHooks hooks;
    hooks.now = absl::Now();
    hooks.record = [this](const std::string& rel, const ManifestEntry& entry) {
      manifest_.Put(rel, entry);
    };
    hooks.commit = [this, commit_succeeds] {
      ++commits_;
      return copier_->SyncPendingDirs().ok() && commit_succeeds;
    };
    stats_ = CommitlogStats();
    return mirror.Run(manifest_, hooks, stats_);
  }

  std::string fixtures_, archive_, dest_;
  FileSystem& fs_ = *DefaultFileSystem();
  std::unique_ptr<Copier> copier_;
  Manifest manifest_;
  CommitlogStats stats_;
  int commits_ = 0;
};

TEST_F(ArchiveMirrorTest, SoundSegmentsAreCopiedWithTheirChecksumsAndCommitted) {
  const std::string lz4 = Archive("2.2-lz4/CommitLog-5-1438186885380.log");
  const std::string encrypted = Archive("3.4-encrypted/CommitLog-6-1480001790338.log");
  ArchivePassResult result = Pass(fs_);
  EXPECT_EQ(result.failed, 0);
  EXPECT_EQ(stats_.segments_copied, 2);
  EXPECT_EQ(commits_, 1);
  for (const std::string& name : {lz4, encrypted}) {
    const std::string bytes = ReadWhole(archive_ + "/" + name);
    EXPECT_EQ(ReadWhole(dest_ + "/commitlog_archive/" + name), bytes) << name;
    const ManifestEntry* entry = manifest_.Find(MirroredPath(name));
    ASSERT_NE(entry, nullptr) << name;
    EXPECT_TRUE(entry->has_crc32);
    EXPECT_EQ(entry->crc32, Crc32(0, bytes));
  }
  EXPECT_EQ(stats_.segments_waiting, 2);  // not move mode: still in the archive
  EXPECT_EQ(stats_.segments_mirrored, 2);
  // Nothing new: nothing copied, no commit.
  Pass(fs_);
  EXPECT_EQ(stats_.segments_copied, 0);
  EXPECT_EQ(commits_, 1);
}

TEST_F(ArchiveMirrorTest, DamagedSegmentOnlyReachesTheQuarantine) {
  const std::string name = Archive("2.2-lz4-bitrot/CommitLog-5-1438186885380.log");
  ArchivePassResult result = Pass(fs_, /*move=*/true);
  EXPECT_EQ(result.failed, 1);
  EXPECT_EQ(stats_.segments_failed, 1);
  EXPECT_EQ(stats_.segments_removed, 0);
  EXPECT_FALSE(Exists(dest_ + "/commitlog_archive/" + name));
  EXPECT_EQ(ReadWhole(dest_ + "/commitlog_archive/quarantine/" + name),
            ReadWhole(archive_ + "/" + name));
  EXPECT_TRUE(Exists(archive_ + "/" + name));  // never deleted at the source
  EXPECT_NE(manifest_.Find(QuarantinedPath(name)), nullptr);
  EXPECT_EQ(stats_.segments_mirrored, 0);  // the quarantine is not mirrored history
}

// The bytes verified are the sound segment; the file the copier then reads
// is the damaged one (same name and size): it must not get the final name.
TEST_F(ArchiveMirrorTest, BytesThatChangedAfterTheirVerificationAreNotPlaced) {
  const std::string name = Archive("2.2-lz4-bitrot/CommitLog-5-1438186885380.log");
  RedirectingFileSystem reads_sound(&fs_, archive_ + "/" + name,
                                    fixtures_ + "/2.2-lz4/CommitLog-5-1438186885380.log");
  ArchivePassResult result = Pass(reads_sound, /*move=*/true);
  EXPECT_EQ(result.skipped, 1);
  EXPECT_EQ(stats_.segments_copied, 0);
  EXPECT_FALSE(Exists(dest_ + "/commitlog_archive/" + name));
  EXPECT_EQ(manifest_.Find(MirroredPath(name)), nullptr);
  EXPECT_TRUE(Exists(archive_ + "/" + name));
  // Nor is anything left in the copier's own quarantine.
  absl::StatusOr<std::vector<std::string>> kept =
      fs_.ListDir(dest_ + "/.snaphaven/quarantine/commitlog_archive");
  EXPECT_TRUE(!kept.ok() || kept->empty()) << "the changed bytes were kept";
}

TEST_F(ArchiveMirrorTest, MoveModeRemovesOnlyWhatIsMirrored) {
  const std::string sound = Archive("2.2-snappy/CommitLog-5-1438186915514.log");
  const std::string damaged = Archive("2.2-lz4-bitrot/CommitLog-5-1438186885380.log");
  ASSERT_TRUE(fs_.WriteFileAtomically(archive_ + "/CommitLog-5-1438186915514_cdc.idx", "x").ok());
  Pass(fs_, /*move=*/true);
  EXPECT_EQ(stats_.segments_removed, 1);
  EXPECT_FALSE(Exists(archive_ + "/" + sound));
  EXPECT_TRUE(Exists(archive_ + "/" + damaged));
  EXPECT_TRUE(Exists(archive_ + "/CommitLog-5-1438186915514_cdc.idx"));
  EXPECT_EQ(stats_.segments_waiting, 1);
  EXPECT_EQ(stats_.bytes_waiting, 839051);
}

// A commit that fails removes nothing from the archive.
TEST_F(ArchiveMirrorTest, NothingIsRemovedWhenTheCommitFails) {
  const std::string sound = Archive("2.2-snappy/CommitLog-5-1438186915514.log");
  Pass(fs_, /*move=*/true, /*commit_succeeds=*/false);
  EXPECT_EQ(stats_.segments_copied, 1);
  EXPECT_EQ(stats_.segments_removed, 0);
  EXPECT_TRUE(Exists(archive_ + "/" + sound));
}

}  // namespace
}  // namespace snaphaven::commitlog
