// The soak's entry point on the real binary for about 20 s, and once on a
// careless copier (cp -a of the whole tree) to show the checks bite.

#include "tools/soak/soak.h"

#include <sys/stat.h>

#include <iostream>
#include <sstream>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "snaphaven/testing/e2e_util.h"

namespace snaphaven::soak {
namespace {

using ::snaphaven::testing::MakeTempDir;
using ::snaphaven::testing::SnaphavenBinary;
using ::snaphaven::testing::WriteFileOrDie;

SoakOptions ShortRun(const std::string& binary, absl::Duration duration) {
  SoakOptions options;
  options.binary = binary;
  options.duration = duration;
  options.workdir = MakeTempDir("soak");
  options.seed = 7;
  // A short run still sees every kind of event: a faster churn with more
  // snapshots, clears and aborts than the 10-minute default mix.
  options.churn.min_pause = absl::Milliseconds(10);
  options.churn.max_pause = absl::Milliseconds(40);
  options.churn.weight_snapshot = 12;
  options.churn.weight_clear_snapshot = 8;
  options.churn.abort_fraction = 0.3;
  return options;
}

TEST(SoakTest, TwentySecondsOfChurnPass) {
  SoakOptions options = ShortRun(SnaphavenBinary(), absl::Seconds(20));
  std::ostringstream report;
  SoakSummary summary = RunSoak(options, report);
  std::cout << report.str();
  EXPECT_TRUE(summary.passed) << report.str();
  EXPECT_EQ(summary.failed, 0);
  EXPECT_EQ(summary.violations, 0);
  EXPECT_GE(summary.cycles, 15);
  EXPECT_GT(summary.peak_rss_kib, 0);
  EXPECT_TRUE(absl::StartsWith(summary.final_line, "soak: 20s, ")) << summary.final_line;
  EXPECT_TRUE(absl::EndsWith(report.str(), summary.final_line + "\n"));
}

// A mirror that ignores transaction logs must be caught: it copies the
// never-committed sstable left at the end (and, most likely, aborted ones).
TEST(SoakTest, CarelessCopierIsCaught) {
  std::string dir = MakeTempDir("careless");
  std::string fake = dir + "/careless-mirror";
  WriteFileOrDie(fake, R"sh(#!/bin/sh
data=""; dest=""; interval=0
while [ $# -gt 0 ]; do
  case "$1" in
    -d) data=$2; shift ;;
    -s) dest=$2; shift ;;
    --interval) interval=$2; shift ;;
  esac
  shift
done
trap 'exit 0' TERM
mkdir -p "$dest"
while true; do
  cp -a "$data/." "$dest/" 2>/dev/null
  echo "2026-01-01 00:00:00 I cycle done: 1 scanned, 0 copied, 0 linked, 0 unchanged, 0 skipped, 0 failed, 0 moved, 0 pruned, 0 B copied in 0.00s (0 B/s)" >&2
  [ "$interval" = 0 ] && exit 0
  sleep 1 & wait $!
done
)sh");
  ASSERT_EQ(chmod(fake.c_str(), 0755), 0);
  SoakOptions options = ShortRun(fake, absl::Seconds(6));
  std::ostringstream report;
  SoakSummary summary = RunSoak(options, report);
  std::cout << report.str();
  EXPECT_FALSE(summary.passed);
  EXPECT_GT(summary.violations, 0);
  EXPECT_TRUE(absl::StrContains(report.str(), "while its sstable is never committed"))
      << report.str();
  EXPECT_TRUE(absl::StrContains(report.str(), "transaction logs and temporary files"))
      << report.str();
}

}  // namespace
}  // namespace snaphaven::soak
