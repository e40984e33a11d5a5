// The point-in-time rules on their own: the --restore_until form, the
// restore_point_in_time Cassandra reads per commitlog version, which
// segments a snapshot needs, and the range check. (End to end, on the real
// segments: //snaphaven:e2e_pitr_test.)

#include "snaphaven/commitlog/pitr.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/time/time.h"

namespace snaphaven::commitlog {
namespace {

absl::Time At(const std::string& text) {
  absl::Time t;
  std::string error;
  EXPECT_TRUE(absl::ParseTime("%Y-%m-%d %H:%M:%E*S", text, absl::UTCTimeZone(), &t, &error))
      << text << ": " << error;
  return t;
}

TEST(ParseRestoreUntil, TakesSecondsAndUpToSixFractionDigitsInUtc) {
  EXPECT_EQ(*ParseRestoreUntil("2026-12-02 14:59:00"), At("2026-12-02 14:59:00"));
  EXPECT_EQ(*ParseRestoreUntil("2026-12-02 14:59:00.5"),
            At("2026-12-02 14:59:00") + absl::Milliseconds(500));
  EXPECT_EQ(*ParseRestoreUntil("2026-12-02 14:59:00.000001"),
            At("2026-12-02 14:59:00") + absl::Microseconds(1));
  for (const char* bad : {"", "2026-12-02", "2026-12-02T14:59:00", "2026-12-02 14:59",
                          "2026-12-02 14:59:00.1234567", "2026-13-02 14:59:00",
                          "2026-12-02 25:00:00", "2026-12-02 14:59:00Z", " 2026-12-02 14:59:00",
                          "2026:12:02 14:59:00", "yesterday"}) {
    absl::StatusOr<absl::Time> parsed = ParseRestoreUntil(bad);
    EXPECT_FALSE(parsed.ok()) << "'" << bad << "' was taken";
    if (!parsed.ok()) {
      EXPECT_TRUE(absl::StrContains(parsed.status().message(), "YYYY-MM-DD HH:MM:SS")) << bad;
    }
  }
}

// CommitLogArchiver.java: SimpleDateFormat("yyyy:MM:dd HH:mm:ss") before
// 4.0.14/4.1.7/5.0.1; "yyyy:MM:dd HH:mm:ss[.[SSSSSS][SSS]]" from then on
// (CASSANDRA-19448). Commitlog version 7 is 4.0/4.1, 8 is 5.0.
TEST(FormatRestorePointInTime, MicrosecondsFromCassandra4OnWholeSecondsCutDownBefore) {
  const absl::Time t = At("2026-12-02 14:59:07") + absl::Nanoseconds(123456789);
  for (int version : {3, 4, 5, 6}) {
    EXPECT_EQ(FormatRestorePointInTime(t, version), "2026:12:02 14:59:07") << version;
  }
  for (int version : {7, 8}) {
    EXPECT_EQ(FormatRestorePointInTime(t, version), "2026:12:02 14:59:07.123456") << version;
  }
  // No fraction given: none written.
  EXPECT_EQ(FormatRestorePointInTime(At("2026-12-02 14:59:07"), 8), "2026:12:02 14:59:07");
}

ArchivedSegment Segment(int64_t id, absl::Time mtime) {
  ArchivedSegment s;
  s.name = "CommitLog-7-" + std::to_string(id) + ".log";
  s.id = id;
  s.version = 7;
  s.mtime = mtime;
  return s;
}

TEST(SegmentsSince, WrittenToAtOrAfterTheSnapshot) {
  const absl::Time snapshot = At("2026-12-02 10:00:00");
  std::vector<ArchivedSegment> all = {Segment(1, snapshot - absl::Nanoseconds(1)),
                                      Segment(2, snapshot), Segment(3, snapshot + absl::Hours(1))};
  std::vector<ArchivedSegment> needed = SegmentsSince(all, snapshot);
  ASSERT_EQ(needed.size(), 2u);
  EXPECT_EQ(needed[0].id, 2);
  EXPECT_EQ(needed[1].id, 3);
}

TEST(CheckRestorePoint, FromTheSnapshotToTheNewestSegmentBothIncluded) {
  const SnapshotTime snapshot{At("2026-12-02 10:00:00"), "created_at in x"};
  const std::vector<ArchivedSegment> all = {Segment(1, At("2026-12-02 11:00:00")),
                                            Segment(2, At("2026-12-02 10:30:00"))};
  EXPECT_TRUE(CheckRestorePoint(snapshot.time, snapshot, all, "t").ok());
  EXPECT_TRUE(CheckRestorePoint(At("2026-12-02 11:00:00"), snapshot, all, "t").ok());
  for (absl::Time bad : {snapshot.time - absl::Microseconds(1), At("2026-12-02 11:00:00.000001")}) {
    absl::Status status = CheckRestorePoint(bad, snapshot, all, "t");
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StrContains(status.message(),
                                  "from 2026-12-02 10:00:00 UTC (snapshot 't') to 2026-12-02 "
                                  "11:00:00 UTC"))
        << status;
  }
  EXPECT_FALSE(CheckRestorePoint(snapshot.time, snapshot, {}, "t").ok());
}

}  // namespace
}  // namespace snaphaven::commitlog
