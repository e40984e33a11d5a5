// The commitlog archive's part of the summary line and of the metrics file
// (--commitlog_archive): present only with the flag, the counters carried
// on, the age of the newest mirrored segment absent until there is one.

#include "snaphaven/ops/metrics.h"

#include <gtest/gtest.h>

#include <string>

#include "absl/strings/match.h"
#include "snaphaven/ops/report.h"

namespace snaphaven {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1800000000);

CycleStats WithCommitlog() {
  CycleStats stats;
  stats.started = kNow - absl::Seconds(5);
  stats.commitlog.enabled = true;
  stats.commitlog.segments_copied = 2;
  stats.commitlog.bytes_copied = 64 << 20;
  stats.commitlog.segments_waiting = 12;
  stats.commitlog.bytes_waiting = int64_t{384} << 20;
  return stats;
}

TEST(CommitlogSummaryTest, SaysWhatWasCopiedFailedRemovedAndWaits) {
  CycleStats stats = WithCommitlog();
  EXPECT_TRUE(absl::EndsWith(SummaryLine(stats),
                             "; commitlog archive: 2 segments copied (64.0 MiB), 12 segments "
                             "(384.0 MiB) waiting in the archive"))
      << SummaryLine(stats);
  stats.commitlog.segments_failed = 1;
  stats.commitlog.segments_removed = 1;
  stats.commitlog.segments_waiting = 1;
  stats.commitlog.bytes_waiting = 100;
  EXPECT_TRUE(absl::StrContains(SummaryLine(stats),
                                "; commitlog archive: 2 segments copied (64.0 MiB), 1 segment "
                                "failed verification, 1 segment removed from the archive, 1 "
                                "segment (100 B) waiting in the archive"))
      << SummaryLine(stats);
  EXPECT_FALSE(absl::StrContains(SummaryLine(CycleStats()), "commitlog")) << "only with the flag";
}

TEST(CommitlogMetricsTest, OnlyWithTheFlagCountersCarryOnAgeOnceMirrored) {
  EXPECT_FALSE(absl::StrContains(RenderMetrics(CycleStats(), 0, nullptr, {}, kNow), "commitlog"));
  CycleStats stats = WithCommitlog();
  std::string text = RenderMetrics(stats, 0, nullptr, {}, kNow);
  EXPECT_FALSE(absl::StrContains(text, "snaphaven_commitlog_newest_segment_age_seconds"))
      << "absent until a segment is mirrored";
  auto samples = ReadMetricSamples(text);
  EXPECT_EQ(samples["snaphaven_commitlog_segments_total"], 2);
  EXPECT_EQ(samples["snaphaven_commitlog_bytes_total"], 64 << 20);
  EXPECT_EQ(samples["snaphaven_commitlog_segments_waiting"], 12);
  EXPECT_EQ(samples["snaphaven_commitlog_bytes_waiting"], int64_t{384} << 20);
  EXPECT_EQ(samples["snaphaven_commitlog_segments_failed"], 0);
  EXPECT_TRUE(absl::StrContains(text, "# TYPE snaphaven_commitlog_segments_total counter\n"));
  EXPECT_TRUE(absl::StrContains(text, "# TYPE snaphaven_commitlog_segments_waiting gauge\n"));

  stats.commitlog.segments_mirrored = 3;
  stats.commitlog.newest_mirrored_mtime_ns = absl::ToUnixNanos(kNow - absl::Minutes(7));
  stats.commitlog.segments_failed = 1;
  samples = ReadMetricSamples(RenderMetrics(stats, 1, nullptr, samples, kNow));
  EXPECT_EQ(samples["snaphaven_commitlog_segments_total"], 4) << "carried on";
  EXPECT_EQ(samples["snaphaven_commitlog_bytes_total"], 128 << 20);
  EXPECT_EQ(samples["snaphaven_commitlog_newest_segment_age_seconds"], 420);
  EXPECT_EQ(samples["snaphaven_commitlog_segments_failed"], 1);
}

}  // namespace
}  // namespace snaphaven
