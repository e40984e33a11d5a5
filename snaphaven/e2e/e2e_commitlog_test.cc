// --commitlog_archive end to end: the real binary mirrors the commitlog
// segments Cassandra 2.0 to 4.0 wrote (../shared/fixtures/cassandra-test-data/
// legacy-commitlog: plain, LZ4, Snappy, encrypted, and one damaged) from an
// archive directory, as archive_command leaves them, to
// <dest>/commitlog_archive/: verified, quarantined when damaged, drained
// in move mode, copied again when rewritten in place, after the settle
// time, with their metrics; and the rest of snaphaven (--verify,
// --fullsync, pruning, --list, --dry_run, bad input) treats them sanely.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "snaphaven/testing/e2e_util.h"
#include "tools/tree_generator.h"

namespace snaphaven {
namespace {

using testing::FileRecord;
using testing::ReadFileOrDie;
using testing::ReadTree;
using testing::RunResult;

using Files = std::map<std::string, FileRecord>;

// The damaged segment, and the sound one of the same name.
constexpr char kBitrot[] = "2.2-lz4-bitrot/CommitLog-5-1438186885380.log";
constexpr char kBitrotName[] = "CommitLog-5-1438186885380.log";
constexpr char kSoundTwin[] = "2.2-lz4/CommitLog-5-1438186885380.log";

bool Exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

void SetMtime(const std::string& path, absl::Time mtime) {
  const timespec times[2] = {absl::ToTimespec(mtime), absl::ToTimespec(mtime)};
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, 0), 0) << path;
}

// Rewrites a file in place (same inode), as `cp -f` or 2.1's recycling do.
void RewriteInPlace(const std::string& path, const std::string& bytes) {
  const int fd = open(path.c_str(), O_WRONLY | O_TRUNC);
  ASSERT_GE(fd, 0) << path;
  ASSERT_EQ(write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  ASSERT_EQ(close(fd), 0);
}

// Samples of a metrics file by name.
std::map<std::string, double> Samples(const std::string& text) {
  std::map<std::string, double> samples;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::vector<std::string> f = absl::StrSplit(line, ' ');
    double value = 0;
    if (line[0] != '#' && f.size() == 2 && absl::SimpleAtod(f[1], &value)) samples[f[0]] = value;
  }
  return samples;
}

// The last summary line.
std::string Summary(const std::string& err) {
  const size_t at = err.rfind(" scanned, ");
  if (at == std::string::npos) return "";
  const size_t start = err.rfind('\n', at);
  return err.substr(start == std::string::npos ? 0 : start + 1,
                    err.find('\n', at) - (start == std::string::npos ? 0 : start + 1));
}

class CommitlogTest : public testing::CassandraTreeTest {
 protected:
  void SetUp() override {
    CassandraTreeTest::SetUp();
    fixtures_ = testing::CassandraTestDataDir();
    if (fixtures_.empty()) GTEST_SKIP() << "../shared/fixtures/cassandra-test-data is absent";
    fixtures_ += "/legacy-commitlog";
    archive_ = dir_ + "/commitlog_archive";
    ASSERT_EQ(mkdir(archive_.c_str(), 0755), 0);
    tools::TreeSpec spec = Spec(1, 1, {"s1"}, 4096);
    Generate(spec);
  }

  // Every sound segment of the fixtures ("2.2/CommitLog-5-....log"): 18.
  std::vector<std::string> SoundSegments() {
    std::vector<std::string> out;
    for (const auto& [path, record] : ReadTree(fixtures_)) {
      if (record.type == 'f' && absl::StartsWith(path.substr(path.find('/') + 1), "CommitLog-") &&
          !absl::StartsWith(path, "2.2-lz4-bitrot/")) {
        out.push_back(path);
      }
    }
    return out;
  }

  // What archive_command leaves: the fixture's bytes under its name, an
  // hour old (older than the default --settle_time); returns its name.
  std::string Archive(const std::string& fixture, absl::Duration age = absl::Hours(1)) {
    const std::string name = fixture.substr(fixture.rfind('/') + 1);
    testing::WriteFileOrDie(archive_ + "/" + name, ReadFileOrDie(fixtures_ + "/" + fixture));
    SetMtime(archive_ + "/" + name, absl::Now() - age);
    return name;
  }

  RunResult Mirror(std::vector<std::string> extra = {}) {
    extra.insert(extra.begin(), {"--commitlog_archive", archive_});
    return Run(extra, {"ks1"});
  }

  std::string Mirrored(const std::string& name) { return dest_ + "/commitlog_archive/" + name; }
  std::string Quarantined(const std::string& name) {
    return dest_ + "/commitlog_archive/quarantine/" + name;
  }

  std::string fixtures_, archive_;
};

TEST_F(CommitlogTest, EverySoundSegmentIsMirroredVerifiedAndRecorded) {
  const std::vector<std::string> sound = SoundSegments();
  ASSERT_EQ(sound.size(), 18u);
  int64_t bytes = 0;
  for (const std::string& fixture : sound) {
    Archive(fixture);
    bytes += static_cast<int64_t>(ReadFileOrDie(fixtures_ + "/" + fixture).size());
  }
  // Not segments: a CDC index, a pre-1.2.5 segment, anything else.
  testing::WriteFileOrDie(archive_ + "/CommitLog-7-1699285478684_cdc.idx", "1234\nCOMPLETED");
  testing::WriteFileOrDie(archive_ + "/CommitLog-1431528750790.log", "old");
  testing::WriteFileOrDie(archive_ + "/notes.txt", "x");
  const Files archived = ReadTree(archive_);
  const std::string metrics = dir_ + "/snaphaven.prom";

  RunResult r = Mirror({"-v", "1", "--metrics_file", metrics});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const std::string& fixture : sound) {
    const std::string name = fixture.substr(fixture.rfind('/') + 1);
    SCOPED_TRACE(fixture);
    const Files copy = ReadTree(dest_ + "/commitlog_archive", {"quarantine"});
    ASSERT_TRUE(copy.count(name));
    EXPECT_TRUE(copy.at(name) == archived.at(name)) << "bytes, mode and mtime as archived";
    EXPECT_TRUE(absl::StrContains(r.err, "copied commitlog segment " + archive_ + "/" + name))
        << r.err;
  }
  EXPECT_EQ(ReadTree(dest_ + "/commitlog_archive").size(), 18u) << "segments only";
  EXPECT_EQ(ReadTree(archive_), archived) << "the archive is left as it was";
  EXPECT_TRUE(absl::StrContains(r.err, "CommitLog-1431528750790.log is a segment of Cassandra "
                                       "before 1.2.5"))
      << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "CommitLog-7-1699285478684_cdc.idx (a CDC index")) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "CommitLog-6-1480001790338.log is encrypted "
                                       "(AES/CBC/PKCS5Padding): checked to its sync markers"))
      << r.err;
  // Recorded like any file, with the CRC-32 of the bytes copied.
  Manifest manifest = testing::DestinationManifest(dest_);
  for (const std::string& fixture : sound) {
    const ManifestEntry* entry =
        manifest.Find("commitlog_archive/" + fixture.substr(fixture.rfind('/') + 1));
    ASSERT_NE(entry, nullptr) << fixture;
    EXPECT_TRUE(entry->has_crc32);
  }
  // The snapshot is copied as usual beside them.
  EXPECT_EQ(testing::DiffTrees(testing::SnapshotFiles(data_),
                               testing::FilesContaining(testing::DestinationFiles(dest_),
                                                        "/snapshots/")),
            "");
  const std::string summary = Summary(r.err);
  EXPECT_TRUE(absl::StrContains(summary, "commitlog archive: 18 segments copied (23.0 MiB), "
                                         "18 segments (23.0 MiB) waiting in the archive"))
      << summary;

  const std::string text = ReadFileOrDie(metrics);
  EXPECT_TRUE(absl::StrContains(text, "# TYPE snaphaven_commitlog_segments_total counter")) << text;
  EXPECT_TRUE(absl::StrContains(text, "# TYPE snaphaven_commitlog_newest_segment_age_seconds gauge"))
      << text;
  std::map<std::string, double> m = Samples(text);
  EXPECT_EQ(m["snaphaven_commitlog_segments_total"], 18);
  EXPECT_EQ(m["snaphaven_commitlog_bytes_total"], bytes);
  EXPECT_EQ(m["snaphaven_commitlog_segments_waiting"], 18);
  EXPECT_EQ(m["snaphaven_commitlog_bytes_waiting"], bytes);
  EXPECT_EQ(m["snaphaven_commitlog_segments_failed"], 0);
  // The newest segment was archived an hour ago.
  EXPECT_NEAR(m["snaphaven_commitlog_newest_segment_age_seconds"], 3600, 60);

  // Nothing new: nothing copied, the counters carry on.
  r = Mirror({"--metrics_file", metrics});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(Summary(r.err), "commitlog archive: 0 segments copied (0 B)"))
      << r.err;
  m = Samples(ReadFileOrDie(metrics));
  EXPECT_EQ(m["snaphaven_commitlog_segments_total"], 18);
  EXPECT_EQ(m["snaphaven_commitlog_segments_waiting"], 18);

  // A cycle that cannot run at all keeps the counters.
  testing::WriteFileOrDie(dest_ + "/.snaphaven/id", "garbage\n");
  r = Mirror({"--metrics_file", metrics});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  m = Samples(ReadFileOrDie(metrics));
  EXPECT_EQ(m["snaphaven_last_cycle_exit_code"], 1);
  EXPECT_EQ(m["snaphaven_commitlog_segments_total"], 18);
  EXPECT_EQ(m["snaphaven_commitlog_bytes_total"], bytes);
}

TEST_F(CommitlogTest, DamagedSegmentIsReportedQuarantinedAndKept) {
  const std::string name = Archive(kBitrot);
  const std::string sound = Archive("2.2-snappy/CommitLog-5-1438186915514.log");
  const std::string metrics = dir_ + "/snaphaven.prom";
  RunResult r = Mirror({"--metrics_file", metrics});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  // One line naming the file and what is wrong with it.
  EXPECT_TRUE(absl::StrContains(
      r.err, absl::StrCat("E commitlog segment ", archive_, "/", name,
                          " failed verification: mutation at byte 1452 of the sync section at "
                          "offset 76731 (LZ4Compressor, 3421 bytes uncompressed): data CRC "
                          "mismatch")))
      << r.err;
  EXPECT_FALSE(Exists(Mirrored(name))) << "never under its final name";
  EXPECT_EQ(ReadFileOrDie(Quarantined(name)), ReadFileOrDie(fixtures_ + "/" + kBitrot));
  EXPECT_EQ(ReadFileOrDie(archive_ + "/" + name), ReadFileOrDie(fixtures_ + "/" + kBitrot))
      << "kept at the source";
  EXPECT_TRUE(Exists(Mirrored(sound)));
  EXPECT_TRUE(absl::StrContains(Summary(r.err), "1 segment failed verification")) << r.err;
  std::map<std::string, double> m = Samples(ReadFileOrDie(metrics));
  EXPECT_EQ(m["snaphaven_commitlog_segments_failed"], 1);
  EXPECT_EQ(m["snaphaven_commitlog_segments_total"], 1);
  EXPECT_EQ(m["snaphaven_last_cycle_exit_code"], 1);

  // Every cycle says so again while it is there; its quarantined copy is
  // not made again.
  struct stat before, after;
  ASSERT_EQ(stat(Quarantined(name).c_str(), &before), 0);
  r = Mirror();
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "failed verification")) << r.err;
  ASSERT_EQ(stat(Quarantined(name).c_str(), &after), 0);
  EXPECT_EQ(before.st_ino, after.st_ino);
}

TEST_F(CommitlogTest, MoveModeDrainsTheArchiveButKeepsTheDamagedSegment) {
  std::vector<std::string> names;
  for (const std::string& fixture : SoundSegments()) {
    if (fixture != kSoundTwin) names.push_back(Archive(fixture));  // its name is the damaged one's
  }
  ASSERT_EQ(names.size(), 17u);
  Archive(kBitrot);
  RunResult r = Mirror({"--move-snapshots", "--settle_time=0s"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  const Files left = ReadTree(archive_);
  EXPECT_EQ(left.size(), 1u);
  EXPECT_TRUE(left.count(kBitrotName)) << "the damaged segment stays";
  for (const std::string& name : names) {
    EXPECT_FALSE(left.count(name)) << name;
    EXPECT_TRUE(Exists(Mirrored(name))) << name;
  }
  EXPECT_TRUE(absl::StrContains(Summary(r.err), "17 segments removed from the archive, "
                                                "1 segment (819.4 KiB) waiting in the archive"))
      << r.err;
  // The operator puts the sound segment back (cp -f): mirrored, removed.
  testing::WriteFileOrDie(archive_ + "/" + kBitrotName, ReadFileOrDie(fixtures_ + "/" + kSoundTwin));
  SetMtime(archive_ + "/" + kBitrotName, absl::Now() - absl::Minutes(5));
  r = Mirror({"--move-snapshots", "--settle_time=0s"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(ReadTree(archive_).empty());
  EXPECT_EQ(ReadFileOrDie(Mirrored(kBitrotName)), ReadFileOrDie(fixtures_ + "/" + kSoundTwin));
  EXPECT_TRUE(absl::StrContains(Summary(r.err), "0 segments (0 B) waiting in the archive"))
      << r.err;
}

TEST_F(CommitlogTest, SegmentRewrittenInPlaceIsCopiedAgain) {
  // A `cp -f` cut short in the segment's preallocated zero tail: still a
  // sound segment, mirrored.
  const std::string fixture = "2.2/CommitLog-5-1438186815314.log";
  const std::string whole = ReadFileOrDie(fixtures_ + "/" + fixture);
  const std::string name = Archive(fixture);
  const std::string source = archive_ + "/" + name;
  RewriteInPlace(source, whole.substr(0, 1600000));
  SetMtime(source, absl::Now() - absl::Hours(2));
  RunResult r = Mirror();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ReadFileOrDie(Mirrored(name)).size(), 1600000u);

  // The copy completes over it, in place: copied again.
  RewriteInPlace(source, whole);
  SetMtime(source, absl::Now() - absl::Hours(1));
  r = Mirror();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, name + " was rewritten in place since it was copied"))
      << r.err;
  EXPECT_EQ(ReadFileOrDie(Mirrored(name)), whole);
  EXPECT_EQ(testing::DestinationManifest(dest_).Find("commitlog_archive/" + name)->size,
            static_cast<int64_t>(whole.size()));

  // Rewritten again into something unsound (2.1's recycling writes another
  // segment into the same inode): quarantined; the good copy stays.
  std::string damaged = whole;
  damaged[30000] ^= 0x55;
  RewriteInPlace(source, damaged);
  SetMtime(source, absl::Now() - absl::Minutes(30));
  r = Mirror();
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "the copy made before it was rewritten is kept")) << r.err;
  EXPECT_EQ(ReadFileOrDie(Mirrored(name)), whole);
  EXPECT_EQ(ReadFileOrDie(Quarantined(name)), damaged);
}

TEST_F(CommitlogTest, SegmentIsCopiedOnlyOnceOlderThanTheSettleTime) {
  const std::string name = Archive("2.1/CommitLog-4-1431529069529.log", absl::Seconds(1));
  RunResult r = Mirror({"--settle_time=1h", "-v", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(Exists(Mirrored(name)));
  EXPECT_TRUE(absl::StrContains(r.err, name + " changed within --settle_time")) << r.err;
  EXPECT_TRUE(absl::StrContains(Summary(r.err), "0 segments copied (0 B), 1 segment (2.0 MiB) "
                                                "waiting in the archive"))
      << r.err;
  SetMtime(archive_ + "/" + name, absl::Now() - absl::Hours(2));
  r = Mirror({"--settle_time=1h"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ReadFileOrDie(Mirrored(name)), ReadFileOrDie(archive_ + "/" + name));
}

TEST_F(CommitlogTest, BadArchiveIsRefusedBeforeAnythingIsTouched) {
  testing::WriteFileOrDie(dir_ + "/a_file", "x");
  ASSERT_EQ(mkdir((data_ + "/commitlog_archive").c_str(), 0755), 0);
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--commitlog_archive", dir_ + "/missing", "ks1"},
       "snaphaven: commitlog archive " + dir_ + "/missing does not exist"},
      {{"--commitlog_archive", dir_ + "/a_file", "ks1"},
       "snaphaven: commitlog archive " + dir_ + "/a_file is not a directory"},
      {{"--commitlog_archive", dir_, "ks1"}, "overlap: the archive must be apart from the copies"},
      {{"--commitlog_archive", archive_, "ks1", "commitlog_archive"},
       "snaphaven: keyspace 'commitlog_archive' cannot be copied with --commitlog_archive"},
      {{"--commitlog_archive", archive_, "--list"}, "--list and --restore read only the destination"},
      {{"--commitlog_archive", archive_, "--restore", "s1", "--restore_to", dir_ + "/r"},
       "--list and --restore read only the destination"},
  };
  for (const auto& [args, message] : cases) {
    std::vector<std::string> all = {"-d", home_, "-s", dest_};
    all.insert(all.end(), args.begin(), args.end());
    RunResult r = testing::RunSnaphaven(all);
    EXPECT_EQ(r.exit_code, 2) << message << "\n" << r.err;
    EXPECT_TRUE(absl::StartsWith(r.err, "snaphaven: ")) << r.err;
    EXPECT_TRUE(absl::StrContains(r.err.substr(0, r.err.find('\n')), message)) << r.err;
    EXPECT_FALSE(Exists(dest_)) << "nothing is created";
  }
  // The destination inside the archive.
  RunResult r = testing::RunSnaphaven(
      {"-d", home_, "-s", archive_ + "/dest", "--commitlog_archive", archive_, "ks1"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(ReadTree(archive_).empty());
}

// Mirrored segments are history: a segment gone from the archive keeps its
// copy through pruning and a --fullsync rebuild; --verify checks them;
// --list and --dry_run leave them alone.
TEST_F(CommitlogTest, MirroredSegmentsAreKeptCheckedAndLeftOutOfListings) {
  const std::string kept = Archive("2.2-snappy/CommitLog-5-1438186915514.log");
  const std::string gone = Archive("2.0/CommitLog-3-1431528750791.log");
  RunResult r = Mirror({"--sync-sstables"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(unlink((archive_ + "/" + gone).c_str()), 0);
  r = Mirror({"--sync-sstables", "--prune_after=0s"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = Mirror({"--sync-sstables", "--prune_after=0s"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ReadFileOrDie(Mirrored(gone)),
            ReadFileOrDie(fixtures_ + "/2.0/CommitLog-3-1431528750791.log"));
  EXPECT_NE(testing::DestinationManifest(dest_).Find("commitlog_archive/" + gone), nullptr);

  // Rebuilt from the destination: still recorded, nothing copied again.
  r = Mirror({"--fullsync"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(Summary(r.err), "commitlog archive: 0 segments copied")) << r.err;
  EXPECT_NE(testing::DestinationManifest(dest_).Find("commitlog_archive/" + gone), nullptr);

  r = Mirror({"--verify", "-v", "1"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "verified commitlog_archive/" + kept)) << r.err;
  testing::FlipByteKeepingMtime(Mirrored(kept), 5000);
  r = Mirror({"--verify"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "commitlog_archive/" + kept)) << r.err;
  // Without the flag, --verify checks the keyspaces only.
  r = Run({"--verify"}, {"ks1"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // --verify_sample finds it too, and the segment, still in the archive,
  // is copied again.
  r = Mirror({"--verify_sample=100"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "--verify_sample: ")) << r.err;
  r = Mirror();
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ReadFileOrDie(Mirrored(kept)), ReadFileOrDie(archive_ + "/" + kept));

  r = testing::RunSnaphaven({"-s", dest_, "--list"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(absl::StrContains(r.out, "commitlog")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "s1")) << r.out;
}

TEST_F(CommitlogTest, DryRunPlansAndChangesNothing) {
  const std::string name = Archive("2.2/CommitLog-5-1438186815315.log");
  RunResult r = Mirror({"--dry_run", "--move-snapshots"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "plan: verify and copy commitlog segment " + archive_ +
                                           "/" + name + " (2.0 MiB)"))
      << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "plan: remove " + archive_ + "/" + name)) << r.err;
  EXPECT_TRUE(absl::StrContains(Summary(r.err),
                                "commitlog archive: 1 segment copied (2.0 MiB), 1 segment removed "
                                "from the archive, 0 segments (0 B) waiting in the archive"))
      << r.err;
  EXPECT_FALSE(Exists(dest_));
  EXPECT_TRUE(Exists(archive_ + "/" + name));
}

}  // namespace
}  // namespace snaphaven
