// Point-in-time, whole-node and resumed restores, end to end: the real
// binary syncs a generated tree, real commitlog segments Cassandra wrote
// (../shared/fixtures/cassandra-test-data/legacy-commitlog/) are put where
// --commitlog_archive mirrors them (<dest>/commitlog_archive/, mtimes set
// around the snapshot's time), and --restore stages and prints the rest.

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "re2/re2.h"
#include "snaphaven/testing/e2e_util.h"
#include "tools/tree_generator.h"

namespace snaphaven {
namespace {

using testing::FileRecord;
using testing::ReadFileOrDie;
using testing::ReadTree;
using testing::RunResult;
using testing::RunSnaphaven;

constexpr char kSystemLocal[] = "local-7ad54392bcdd35a684174e047860b377";

void SetMtime(const std::string& path, absl::Time mtime) {
  struct timespec times[2];
  times[0].tv_sec = 0;
  times[0].tv_nsec = UTIME_OMIT;
  times[1] = absl::ToTimespec(mtime);
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, 0), 0) << path;
}

// The value of the printed line "<key>=<value>", or "" when none.
std::string PrintedValue(const std::string& out, const std::string& key) {
  for (absl::string_view line : absl::StrSplit(out, '\n')) {
    if (absl::StartsWith(line, key + "=")) return std::string(line.substr(key.size() + 1));
  }
  return "";
}

// restore_point_in_time as Cassandra up to 3.11 reads it:
// SimpleDateFormat("yyyy:MM:dd HH:mm:ss"), GMT, parse(String) reading a
// prefix (CommitLogArchiver.java). Milliseconds since the epoch.
absl::optional<int64_t> ParseAsCassandra3(const std::string& text) {
  int y, mo, d, h, mi, s;
  if (!RE2::PartialMatch(text, R"(^(\d+):(\d+):(\d+) (\d+):(\d+):(\d+))", &y, &mo, &d, &h, &mi, &s)) {
    return absl::nullopt;
  }
  return absl::ToUnixMillis(absl::FromCivil(absl::CivilSecond(y, mo, d, h, mi, s), absl::UTCTimeZone()));
}

// As 4.0.14+/4.1.7+/5.0.1+ read it: DateTimeFormatter
// "yyyy:MM:dd HH:mm:ss[.[SSSSSS][SSS]]", GMT, the whole text
// (CASSANDRA-19448). Microseconds since the epoch.
absl::optional<int64_t> ParseAsCassandra4(const std::string& text) {
  int y, mo, d, h, mi, s;
  std::string fraction;
  if (!RE2::FullMatch(text, R"((\d{4}):(\d{2}):(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{6}|\d{3})?)?)",
                      &y, &mo, &d, &h, &mi, &s, &fraction)) {
    return absl::nullopt;
  }
  int64_t micros = 0;
  if (!fraction.empty()) {
    EXPECT_TRUE(absl::SimpleAtoi(fraction, &micros));
    if (fraction.size() == 3) micros *= 1000;
  }
  return absl::ToUnixMicros(absl::FromCivil(absl::CivilSecond(y, mo, d, h, mi, s), absl::UTCTimeZone())) +
         micros;
}

std::string UntilFlag(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%E6S", t, absl::UTCTimeZone());
}

class PitrTest : public testing::CassandraTreeTest {
 protected:
  void SetUp() override {
    CassandraTreeTest::SetUp();
    fixtures_ = testing::CassandraTestDataDir();
    if (!fixtures_.empty()) fixtures_ += "/legacy-commitlog";
    if (fixtures_.empty() || !std::filesystem::exists(fixtures_)) {
      GTEST_SKIP() << "../shared/fixtures/cassandra-test-data/legacy-commitlog is absent";
    }
    restore_ = dir_ + "/restore";
    archive_ = dest_ + "/commitlog_archive";
  }

  // One keyspace, snapshot s1 taken, synced; returns the snapshot's time
  // (manifest.json's created_at).
  absl::Time SnapshotAndSync(tools::TreeSpec spec, std::vector<std::string> keyspaces = {"ks1"}) {
    spec.snapshot_tags = {};
    Generate(spec);
    EXPECT_TRUE(tools::TakeSnapshot(data_, keyspaces, "s1").ok());
    RunResult r = Run({}, keyspaces);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::string created;
    for (const auto& [path, record] : testing::SnapshotFiles(data_)) {
      if (absl::EndsWith(path, "/s1/manifest.json")) {
        EXPECT_TRUE(RE2::PartialMatch(record.contents, R"re("created_at" : "([^"]+)")re", &created));
        break;
      }
    }
    absl::Time t;
    std::string error;
    EXPECT_TRUE(absl::ParseTime(absl::RFC3339_full, created, &t, &error)) << created << error;
    return t;
  }

  // Puts a fixture segment ("2.2/CommitLog-5-...log") where the mirror keeps
  // it, with the given mtime.
  std::string Archive(const std::string& fixture, absl::Time mtime) {
    std::filesystem::create_directories(archive_);
    const std::string name = std::filesystem::path(fixture).filename();
    const std::string path = archive_ + "/" + name;
    std::filesystem::copy_file(fixtures_ + "/" + fixture, path);
    std::filesystem::permissions(path, std::filesystem::perms::owner_write,
                                 std::filesystem::perm_options::add);
    SetMtime(path, mtime);
    return name;
  }

  RunResult Restore(std::vector<std::string> extra) {
    std::vector<std::string> args = {"-d", home_, "-s", dest_, "--restore", "s1", "--restore_to",
                                     restore_};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunSnaphaven(args);
  }

  // Files staged in commitlog_restore/, by name.
  std::map<std::string, FileRecord> Staged() {
    std::map<std::string, FileRecord> out;
    for (auto& [path, record] : ReadTree(restore_ + "/commitlog_restore")) out[path] = record;
    return out;
  }

  std::string fixtures_, restore_, archive_;
};

TEST_F(PitrTest, StagesTheSnapshotAndExactlyTheSegmentsWrittenSinceIt) {
  const absl::Time taken = SnapshotAndSync(Spec(1, 1, {}));
  // Written to before the snapshot: its flush holds all of them.
  Archive("2.2/CommitLog-5-1438186815314.log", taken - absl::Minutes(5));
  Archive("2.2/CommitLog-5-1438186815315.log", taken - absl::Seconds(1));
  // Written to since: plain, LZ4 and Snappy.
  std::vector<std::string> after = {
      Archive("2.2-lz4/CommitLog-5-1438186885380.log", taken),
      Archive("2.2-snappy/CommitLog-5-1438186915514.log", taken + absl::Seconds(20)),
      Archive("2.2-lz4/CommitLog-5-1438186885381.log", taken + absl::Seconds(40))};
  // Never used: a failed one in quarantine/, and what is not a segment.
  std::filesystem::create_directories(archive_ + "/quarantine");
  std::filesystem::copy_file(fixtures_ + "/2.2-lz4-bitrot/CommitLog-5-1438186885380.log",
                             archive_ + "/quarantine/CommitLog-5-1438186885380.log");
  testing::WriteFileOrDie(archive_ + "/CommitLog-5-1.log.tmp", "x");

  const absl::Time until = taken + absl::Seconds(15) + absl::Microseconds(500001);
  RunResult r = Restore({"--restore_until", UntilFlag(until)});
  ASSERT_EQ(r.exit_code, 0) << r.err;

  std::map<std::string, FileRecord> staged = Staged();
  ASSERT_EQ(staged.size(), after.size()) << r.err;
  for (const std::string& name : after) {
    ASSERT_EQ(staged.count(name), 1u) << name;
    EXPECT_TRUE(staged[name] == ReadTree(archive_)[name]) << name << " differs from its archive copy";
  }
  // The snapshot is staged as without a point in time, and nothing else.
  EXPECT_EQ(testing::FindSSTables(restore_ + "/ks1").size(), 1u);
  EXPECT_FALSE(std::filesystem::exists(restore_ + "/.snaphaven-restore-tmp"));

  // The properties, as Cassandra 2.2 (commitlog version 5) reads them.
  const std::string real_restore = std::filesystem::canonical(restore_);
  EXPECT_EQ(PrintedValue(r.out, "restore_directories"), real_restore + "/commitlog_restore");
  EXPECT_EQ(PrintedValue(r.out, "restore_command"), "/bin/cp -f %from %to");
  const std::string point = PrintedValue(r.out, "restore_point_in_time");
  absl::optional<int64_t> millis = ParseAsCassandra3(point);
  ASSERT_TRUE(millis.has_value()) << r.out;
  EXPECT_EQ(*millis, absl::ToUnixSeconds(until) * 1000) << point;
  EXPECT_FALSE(absl::StrContains(point, ".")) << "2.2 reads no fraction: " << point;
  for (const char* step : {"commitlog/*", "saved_caches/*", "hints/*", "every replica",
                           "Log replay complete", "remove the restore_directories"}) {
    EXPECT_TRUE(absl::StrContains(r.out, step)) << step << "\n" << r.out;
  }
}

TEST_F(PitrTest, MicrosecondsForCassandra4AndEncryptedSegmentsSaySo) {
  const absl::Time taken = SnapshotAndSync(Spec(1, 1, {}));
  // (The 4.0.11 one is in fact plain: every mutation checked.)
  Archive("4.0.11-encrypted/CommitLog-7-1699285478684.log", taken + absl::Minutes(1));
  const std::string name =
      Archive("3.4-encrypted/CommitLog-6-1480001790338.log", taken + absl::Seconds(10));
  const absl::Time until = taken + absl::Seconds(30) + absl::Microseconds(123456);
  RunResult r = Restore({"-v", "1", "--restore_until", UntilFlag(until)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Staged().size(), 2u);
  EXPECT_TRUE(absl::StrContains(r.err, name + " is encrypted: checked up to its sync markers"))
      << r.err;
  const std::string point = PrintedValue(r.out, "restore_point_in_time");
  absl::optional<int64_t> micros = ParseAsCassandra4(point);
  ASSERT_TRUE(micros.has_value()) << point;
  EXPECT_EQ(*micros, absl::ToUnixMicros(until)) << point;
  // Earlier 4.0 releases read its first whole seconds.
  EXPECT_EQ(ParseAsCassandra3(point), absl::ToUnixSeconds(until) * 1000);
}

// Before 4.1 manifest.json has no created_at: its mtime (kept by the copy)
// is when the snapshot was taken.
TEST_F(PitrTest, WithoutCreatedAtTheManifestsMtimeIsTheSnapshotTime) {
  tools::TreeSpec spec = Spec(1, 1, {});
  spec.version = "ka";
  Generate(spec);
  ASSERT_TRUE(tools::TakeSnapshot(data_, {"ks1"}, "s1").ok());
  ASSERT_EQ(Run({}, {"ks1"}).exit_code, 0);
  std::string manifest;
  for (const auto& [path, record] : testing::DestinationFiles(dest_)) {
    if (absl::EndsWith(path, "/snapshots/s1/manifest.json")) manifest = dest_ + "/" + path;
  }
  ASSERT_FALSE(manifest.empty());
  ASSERT_FALSE(absl::StrContains(ReadFileOrDie(manifest), "created_at"));
  const absl::Time taken = absl::FromUnixNanos(ReadTree(dest_)[manifest.substr(dest_.size() + 1)].mtime_ns);
  Archive("2.1/CommitLog-4-1431529069529.log", taken - absl::Seconds(1));
  const std::string after = Archive("2.1/CommitLog-4-1431529069530.log", taken + absl::Seconds(1));
  RunResult r = Restore({"--restore_until", UntilFlag(taken + absl::Milliseconds(500))});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::map<std::string, FileRecord> staged = Staged();
  ASSERT_EQ(staged.size(), 1u) << r.err;
  EXPECT_EQ(staged.begin()->first, after);
  EXPECT_TRUE(absl::StrContains(r.err, "(mtime of " + manifest + ")")) << r.err;
  // Cassandra 2.1 (version 4) reads whole seconds.
  EXPECT_EQ(ParseAsCassandra3(PrintedValue(r.out, "restore_point_in_time")),
            absl::ToUnixSeconds(taken + absl::Milliseconds(500)) * 1000);
}

// A real 2.2 node's own snapshot (manifest.json {"files":[]}, no
// created_at), its tag named, as Cassandra names such snapshots, after the
// time in milliseconds it was taken; with real 2.2 segments.
TEST_F(PitrTest, ARealCassandra22SnapshotWithRealSegments) {
  const std::string node = testing::CassandraTestDataDir() + "/migration-sstables/2.2";
  if (!std::filesystem::exists(node)) GTEST_SKIP() << node << " is absent";
  std::filesystem::create_directories(data_);
  std::filesystem::copy(node, data_, std::filesystem::copy_options::recursive);
  ASSERT_EQ(system(("chmod -R u+w '" + data_ + "'").c_str()), 0);
  const std::string tag = "1435298241532-compactions_in_progress";
  const absl::Time taken = absl::FromUnixMillis(1435298241532);
  std::string manifest;
  for (const auto& [path, record] : testing::SnapshotFiles(data_)) {
    if (absl::EndsWith(path, "/" + tag + "/manifest.json")) manifest = data_ + "/" + path;
  }
  ASSERT_FALSE(manifest.empty());
  ASSERT_EQ(ReadFileOrDie(manifest), "{\"files\":[]}\n");
  SetMtime(manifest, taken);
  ASSERT_EQ(Run({}, {"system"}).exit_code, 0);
  // Segment ids are seeded from the startup time in milliseconds.
  Archive("2.2/CommitLog-5-1438186815314.log", taken - absl::Hours(1));
  const std::string after =
      Archive("2.2/CommitLog-5-1438186815315.log", absl::FromUnixMillis(1438186815315));
  RunResult r = RunSnaphaven({"-s", dest_, "--restore", tag, "--restore_to", restore_,
                              "--restore_until", "2015-07-01 00:00:00", "system"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::map<std::string, FileRecord> staged = Staged();
  ASSERT_EQ(staged.size(), 1u) << r.err;
  EXPECT_EQ(staged.begin()->first, after);
  EXPECT_EQ(PrintedValue(r.out, "restore_point_in_time"), "2015:07:01 00:00:00");
  // 32 ms before the snapshot is refused, with the range.
  r = RunSnaphaven({"-s", dest_, "--restore", tag, "--restore_to", dir_ + "/r2",
                    "--restore_until", "2015-06-26 05:57:21.5", "system"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "from 2015-06-26 05:57:21.532000 UTC")) << r.err;
}

TEST_F(PitrTest, RefusesEachBadRestoreUntilNamingTheRange) {
  const absl::Time taken = SnapshotAndSync(Spec(1, 1, {}));
  const absl::Time newest = taken + absl::Minutes(10);
  Archive("2.2/CommitLog-5-1438186815314.log", taken + absl::Minutes(1));
  Archive("2.2/CommitLog-5-1438186815315.log", newest);
  struct Case {
    std::string until;
    std::string says;
  };
  const std::vector<Case> cases = {
      {UntilFlag(taken - absl::Seconds(1)), "outside what can be restored: from"},
      {UntilFlag(newest + absl::Seconds(1)), "outside what can be restored: from"},
      {"2026-13-01 00:00:00", "invalid --restore_until"},
      {"yesterday", "invalid --restore_until"},
      {absl::FormatTime("%Y-%m-%dT%H:%M:%S", taken, absl::UTCTimeZone()), "invalid --restore_until"},
      {absl::FormatTime("%Y-%m-%d %H:%M:%E7S", taken, absl::UTCTimeZone()), "invalid --restore_until"},
  };
  for (const Case& c : cases) {
    RunResult r = Restore({"--restore_until", c.until});
    EXPECT_EQ(r.exit_code, 2) << c.until << "\n" << r.err;
    EXPECT_TRUE(absl::StrContains(r.err, c.says)) << c.until << "\n" << r.err;
    EXPECT_FALSE(std::filesystem::exists(restore_)) << c.until << ": something was written";
  }
  // The range names both ends.
  RunResult r = Restore({"--restore_until", UntilFlag(newest + absl::Hours(1))});
  EXPECT_TRUE(absl::StrContains(r.err, absl::FormatTime("%Y-%m-%d %H:%M:%S", newest, absl::UTCTimeZone())))
      << r.err;
  // Without --restore.
  r = RunSnaphaven({"-d", home_, "-s", dest_, "--restore_until", UntilFlag(taken), "ks1"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "--restore_until needs --restore")) << r.err;
  // No archived segment at all.
  std::filesystem::remove_all(archive_);
  r = Restore({"--restore_until", UntilFlag(taken)});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "no archived commitlog segments")) << r.err;
}

TEST_F(PitrTest, ADamagedSegmentFailsNamingItAndIsNeverStaged) {
  const absl::Time taken = SnapshotAndSync(Spec(1, 1, {}));
  const std::string bad =
      Archive("2.2-lz4-bitrot/CommitLog-5-1438186885380.log", taken + absl::Seconds(10));
  RunResult r = Restore({"--restore_until", UntilFlag(taken + absl::Seconds(5))});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, archive_ + "/" + bad + " fails verification")) << r.err;
  EXPECT_EQ(Staged().count(bad), 0u);
  EXPECT_TRUE(std::filesystem::exists(archive_ + "/" + bad)) << "the archive copy must stay";
}

// ---------------------------------------------------------------------------
// Whole node.

class WholeNodeTest : public PitrTest {
 protected:
  // ks1 and a system keyspace whose first table is system.local.
  void SystemAndKs1(bool with_local) {
    tools::TreeSpec spec = Spec(1, 1, {"s1"});
    spec.keyspaces = {"ks1", "system"};
    Generate(spec);
    for (const auto& entry : std::filesystem::directory_iterator(data_ + "/system")) {
      std::filesystem::rename(entry.path(), data_ + "/system/" + (with_local ? kSystemLocal : "peers-37f71aca7dc2383ba70672528af04d4f"));
      break;
    }
    RunResult r = Run({}, {"ks1", "system"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
};

TEST_F(WholeNodeTest, RestoresEveryKeyspaceAndSaysTheTokensComeWithSystemLocal) {
  SystemAndKs1(/*with_local=*/true);
  RunResult r = RunSnaphaven({"-s", dest_, "--restore", "s1", "--restore_to", restore_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(testing::FindSSTables(restore_ + "/ks1").size(), 1u);
  EXPECT_EQ(testing::FindSSTables(restore_ + "/system/" + kSystemLocal).size(), 1u);
  EXPECT_TRUE(absl::StrContains(r.out, "Whole-node restore")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "system.local is restored")) << r.out;
  EXPECT_FALSE(absl::StrContains(r.out, "initial_token")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "Table ids")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "saved_caches/*")) << r.out;
}

TEST_F(WholeNodeTest, WithoutSystemLocalItSaysToSetTheTokens) {
  SystemAndKs1(/*with_local=*/false);
  RunResult r = RunSnaphaven({"-s", dest_, "--restore", "s1", "--restore_to", restore_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.out, "system.local is NOT in this copy")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "initial_token")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "auto_bootstrap: false")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "nodetool ring")) << r.out;
}

// ---------------------------------------------------------------------------
// Resumed after kill -9.

TEST_F(PitrTest, AKilledRestoreResumesKeepingWhatIsStaged) {
  const absl::Time taken = SnapshotAndSync(Spec(2, 4, {}, 2 << 20));
  Archive("2.2/CommitLog-5-1438186815314.log", taken + absl::Seconds(10));
  const std::string until = UntilFlag(taken + absl::Seconds(5));
  // Slowed down to about 4 MiB/s, then killed once some files are placed.
  const pid_t pid = testing::StartSnaphaven(
      {"-d", home_, "-s", dest_, "--restore", "s1", "--restore_to", restore_, "--restore_until",
       until, "--max_bandwidth", "4MiB"},
      dir_ + "/killed.log");
  auto placed = [&] {
    std::map<std::string, FileRecord> out;
    for (auto& [path, record] : ReadTree(restore_)) {
      if (record.type == 'f' && !absl::StartsWith(path, ".snaphaven-restore-tmp")) out[path] = record;
    }
    return out;
  };
  auto data_placed = [&] {
    int n = 0;
    for (const auto& [path, record] : placed()) n += absl::EndsWith(path, "-Data.db");
    return n;
  };
  ASSERT_TRUE(testing::WaitUntil([&] { return data_placed() >= 2; }, absl::Seconds(60)));
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  testing::WaitForExit(pid, absl::Seconds(10));
  std::map<std::string, FileRecord> before = placed();
  ASSERT_LT(data_placed(), 8) << "the restore finished before it was killed";

  RunResult r = Restore({"--restore_until", until});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  size_t kept = 0;
  EXPECT_TRUE(RE2::PartialMatch(r.err, R"((\d+) files \(\d+ bytes\) already there)", &kept)) << r.err;
  EXPECT_EQ(kept, before.size()) << r.err;
  std::map<std::string, FileRecord> after = placed();
  for (const auto& [path, record] : before) {
    ASSERT_TRUE(after.count(path)) << path;
    EXPECT_EQ(after[path].ino, record.ino) << path << " was copied again";
    EXPECT_TRUE(after[path] == record) << path;
  }
  EXPECT_EQ(testing::FindSSTables(restore_ + "/ks1").size(), 8u);
  EXPECT_EQ(Staged().size(), 1u);
  EXPECT_FALSE(std::filesystem::exists(restore_ + "/.snaphaven-restore-tmp"));

  // A staged file changed since (same size and mtime, other bytes) is
  // never overwritten: refused, named.
  const std::string changed = restore_ + "/" + before.begin()->first;
  testing::FlipByteKeepingMtime(changed, 0);
  const std::string contents = ReadFileOrDie(changed);
  r = Restore({"--restore_until", until});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, changed)) << r.err;
  EXPECT_EQ(ReadFileOrDie(changed), contents);
}

}  // namespace
}  // namespace snaphaven
