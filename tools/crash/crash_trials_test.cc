#include "tools/crash/crash_trials.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "snaphaven/state/manifest_store.h"
#include "snaphaven/testing/e2e_util.h"

namespace snaphaven::crash {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

std::string Show(const std::vector<Violation>& violations) {
  std::vector<std::string> lines;
  for (const Violation& v : violations) lines.push_back(v.ToString());
  return absl::StrJoin(lines, "\n");
}

auto Is(const std::string& invariant, const std::string& path) {
  return ::testing::AllOf(Field(&Violation::invariant, invariant),
                          Field(&Violation::path, path));
}

// A small generated tree and a hand-made destination, to check the checker
// without the binary.
class CheckerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("checker");
    ASSERT_TRUE(GenerateTrialTree(dir_ + "/data", 4096, 7).ok());
    tree_ = ReadTrialTree(dir_ + "/data", dir_ + "/backup");
    ASSERT_GT(tree_.snapshots.size(), 100u);
    ASSERT_GT(tree_.live.size(), 10u);
    ASSERT_TRUE(fs::create_directories(tree_.destination + "/.snaphaven/tmp"));
  }

  // Places `path` at the destination as snaphaven would (same bytes, mode,
  // mtime), recorded in `manifest_`.
  void Place(const std::string& path) {
    const testing::FileRecord& source = tree_.snapshots.at(path);
    const std::string to = tree_.destination + "/" + path;
    fs::create_directories(fs::path(to).parent_path());
    testing::WriteFileOrDie(to, source.contents);
    ASSERT_EQ(chmod(to.c_str(), source.mode), 0);
    SetMtime(to, source.mtime_ns);
    ManifestEntry entry;
    entry.size = source.size;
    entry.mtime_ns = source.mtime_ns;
    entry.mode = source.mode;
    manifest_.Put(path, entry);
  }

  void PlaceAll() {
    for (const auto& [path, record] : tree_.snapshots) Place(path);
  }

  void SetMtime(const std::string& path, int64_t mtime_ns) {
    const struct timespec times[2] = {
        {0, UTIME_OMIT}, {mtime_ns / 1000000000, mtime_ns % 1000000000}};
    ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
  }

  void WriteManifest() {
    testing::WriteFileOrDie(tree_.destination + "/.snaphaven/manifest",
                            manifest_.Serialize());
  }

  // Some Data.db of the tree, from ks2, whose snapshot files have no live
  // twin.
  std::string DataFile(int n = 0) const {
    for (const auto& [path, record] : tree_.snapshots) {
      if (absl::StartsWith(path, "ks2/") && absl::EndsWith(path, "-Data.db") &&
          n-- == 0) {
        return path;
      }
    }
    return "";
  }

  std::string dir_;
  TrialTree tree_;
  StoredManifest manifest_;
};

TEST_F(CheckerTest, AWholeRecordedMirrorViolatesNothing) {
  PlaceAll();
  WriteManifest();
  EXPECT_THAT(CheckAfterCrash(tree_, Mode::kCopy), IsEmpty());
  EXPECT_THAT(CheckAfterRerun(tree_, Mode::kCopy, 0), IsEmpty());
}

TEST_F(CheckerTest, AnEmptyDestinationWithoutManifestViolatesNothing) {
  EXPECT_THAT(CheckAfterCrash(tree_, Mode::kCopy), IsEmpty());
  EXPECT_THAT(CheckAfterCrash(tree_, Mode::kMove), IsEmpty());
}

TEST_F(CheckerTest, ReportsAPartialFileAndAStaleManifestEntry) {
  const std::string truncated = DataFile(0);
  const std::string stale = DataFile(1);
  ASSERT_FALSE(truncated.empty());
  ASSERT_FALSE(stale.empty());
  Place(truncated);
  Place(stale);
  // A partial file under its final name, even with the source's mtime.
  const std::string truncated_at = tree_.destination + "/" + truncated;
  ASSERT_EQ(truncate(truncated_at.c_str(), 1000), 0);
  SetMtime(truncated_at, tree_.snapshots.at(truncated).mtime_ns);
  // A manifest entry the file does not match, and one with no file at all.
  ManifestEntry wrong = *manifest_.Find(stale);
  wrong.size += 1;
  manifest_.Put(stale, wrong);
  manifest_.Put("ks2/gone", wrong);
  // Only the partial file's own check should see it, not the manifest's.
  manifest_.Erase(truncated);
  WriteManifest();

  std::vector<Violation> violations = CheckAfterCrash(tree_, Mode::kCopy);
  EXPECT_THAT(violations,
              UnorderedElementsAre(Is("a", truncated), Is("b", stale),
                                   Is("b", "ks2/gone")))
      << Show(violations);
}

TEST_F(CheckerTest, ReportsACorruptManifest) {
  PlaceAll();
  std::string text = manifest_.Serialize();
  text.resize(text.size() / 2);  // as a non-atomic write killed halfway
  testing::WriteFileOrDie(tree_.destination + "/.snaphaven/manifest", text);
  EXPECT_THAT(CheckAfterCrash(tree_, Mode::kCopy),
              ElementsAre(Is("b", ".snaphaven/manifest")));
}

TEST_F(CheckerTest, ReportsASourceFileMovedWithoutItsCopy) {
  const std::string copied = DataFile(0);
  const std::string lost = DataFile(1);
  Place(copied);
  WriteManifest();
  // Deleting a copied file is what move mode does; deleting the other is
  // losing it.
  ASSERT_EQ(unlink((tree_.data_root + "/" + copied).c_str()), 0);
  ASSERT_EQ(unlink((tree_.data_root + "/" + lost).c_str()), 0);
  std::vector<Violation> violations = CheckAfterCrash(tree_, Mode::kMove);
  EXPECT_THAT(violations, ElementsAre(Is("c", lost))) << Show(violations);
  // Copy mode deletes nothing at all.
  violations = CheckAfterCrash(tree_, Mode::kCopy);
  EXPECT_THAT(violations, UnorderedElementsAre(Is("c", copied), Is("c", lost)))
      << Show(violations);
}

TEST_F(CheckerTest, ReportsAnIncompleteRerun) {
  PlaceAll();
  WriteManifest();
  const std::string missing = DataFile(0);
  ASSERT_EQ(unlink((tree_.destination + "/" + missing).c_str()), 0);
  testing::WriteFileOrDie(tree_.destination + "/.snaphaven/tmp/leftover", "x");
  // A new inode: the old one is also a snapshot file.
  const std::string live = tree_.live.begin()->first;
  ASSERT_EQ(unlink((tree_.data_root + "/" + live).c_str()), 0);
  testing::WriteFileOrDie(tree_.data_root + "/" + live, "overwritten");

  std::vector<Violation> violations = CheckAfterRerun(tree_, Mode::kMove, 1);
  // Move mode left every source snapshot file: one violation each.
  std::vector<Violation> left;
  std::copy_if(violations.begin(), violations.end(), std::back_inserter(left),
               [](const Violation& v) { return v.invariant == "source"; });
  EXPECT_EQ(left.size(), tree_.snapshots.size());
  violations.erase(std::remove_if(violations.begin(), violations.end(),
                                  [](const Violation& v) {
                                    return v.invariant == "source";
                                  }),
                   violations.end());
  EXPECT_THAT(violations,
              UnorderedElementsAre(Is("rerun", ""), Is("mirror", missing),
                                   Is("tmp", ".snaphaven/tmp/leftover"),
                                   Is("live", live)))
      << Show(violations);
}

TEST(ParseTest, ModesAndSizes) {
  EXPECT_EQ(*ParseModes("both"), Modes::kBoth);
  EXPECT_EQ(*ParseModes("move"), Modes::kMove);
  EXPECT_FALSE(ParseModes("mv").ok());
  EXPECT_EQ(*tools::ParseByteSize("2M"), 2 << 20);
  EXPECT_EQ(*tools::ParseByteSize("4096"), 4096);
  EXPECT_FALSE(tools::ParseByteSize("2X").ok());
  EXPECT_FALSE(tools::ParseByteSize("-1").ok());
}

TEST(CrashTrialsTest, SixTrialsOnTheRealBinaryViolateNothing) {
  TrialsOptions options;
  options.binary = testing::SnaphavenBinary();
  options.trials = 6;
  options.modes = Modes::kBoth;
  options.seed = 20261127;
  options.data_size = 1 << 20;
  std::vector<std::string> lines;
  absl::StatusOr<TrialsReport> report =
      RunCrashTrials(options, [&](const TrialResult& trial) {
        if (!trial.violations.empty()) {
          lines.push_back(TrialLine(trial, options.seed));
        }
      });
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->trials.size(), 6u);
  EXPECT_EQ(report->copy_trials(), 3);
  EXPECT_EQ(report->move_trials(), 3);
  EXPECT_EQ(report->violations(), 0) << absl::StrJoin(lines, "\n");
  EXPECT_THAT(lines, IsEmpty());
  EXPECT_GT(report->kill_window, absl::ZeroDuration());
  // Not vacuous: kills drawn from [0, T] land while the run is going.
  EXPECT_TRUE(std::any_of(report->trials.begin(), report->trials.end(),
                          [](const TrialResult& t) { return t.killed; }));
  EXPECT_THAT(report->Summary(),
              ::testing::MatchesRegex("crash trials: 6 run, 0 invariants "
                                      "violated \\(3 copy, 3 move; kill "
                                      "after 0-[0-9]+ ms\\)"));
}

// The whole pipeline (start, kill, check) catches a copier that writes under
// the final name.
TEST(CrashTrialsTest, CatchesANonAtomicCopier) {
  char resolved[PATH_MAX];
  ASSERT_NE(realpath("tools/crash/non_atomic_copier", resolved), nullptr);
  TrialsOptions options;
  options.binary = resolved;
  options.trials = 4;
  options.modes = Modes::kCopy;
  options.data_size = 4096;
  std::vector<std::string> lines;
  absl::StatusOr<TrialsReport> report =
      RunCrashTrials(options, [&](const TrialResult& trial) {
        if (!trial.violations.empty()) {
          lines.push_back(TrialLine(trial, options.seed));
        }
      });
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_GT(report->violations(), 0);
  EXPECT_FALSE(lines.empty());
  for (const TrialResult& trial : report->trials) {
    for (const Violation& v : trial.violations) {
      EXPECT_EQ(v.invariant, "a") << v.ToString();
    }
  }
  for (const std::string& line : lines) {
    EXPECT_THAT(line,
                ::testing::HasSubstr("partial or wrong under its final name"));
  }
}

}  // namespace
}  // namespace snaphaven::crash
