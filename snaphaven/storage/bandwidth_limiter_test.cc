#include "snaphaven/storage/bandwidth_limiter.h"

#include <gtest/gtest.h>

#include "absl/time/clock.h"

namespace snaphaven {
namespace {

TEST(ParseBandwidth, Units) {
  EXPECT_EQ(*ParseBandwidth("50MiB"), 50 * 1024 * 1024);
  EXPECT_EQ(*ParseBandwidth("50MiB/s"), 50 * 1024 * 1024);
  EXPECT_EQ(*ParseBandwidth("100M"), 100 * 1024 * 1024);
  EXPECT_EQ(*ParseBandwidth("1GB"), 1000000000);
  EXPECT_EQ(*ParseBandwidth("1.5KiB"), 1536);
  EXPECT_EQ(*ParseBandwidth("8388608"), 8388608);
  for (const char* bad : {"", "fast", "0", "-5M", "5 parsecs", "5MiBs"}) {
    EXPECT_FALSE(ParseBandwidth(bad).ok()) << bad;
  }
}

// Found by //snaphaven/fuzz:command_line_fuzzer (UBSan: a double beyond
// int64 converted to it; testdata/fuzz_regressions/command_line_fuzzer/):
// a rate must be a whole number of bytes per second that an int64 holds,
// and at least 1 (0 means unlimited: "0.5" must not turn the limit off).
TEST(ParseBandwidth, RefusesRatesNoInt64Holds) {
  for (const char* bad : {"99999999999999999999", "9223372036854775808", "8589934592GiB",
                          "777777777777777777777777777777777777777777777777777777777777777777G",
                          "0.5", "0.0000001M"}) {
    EXPECT_FALSE(ParseBandwidth(bad).ok()) << bad;
  }
  EXPECT_EQ(*ParseBandwidth("1"), 1);
  EXPECT_EQ(*ParseBandwidth("8589934591GiB"), int64_t{8589934591} << 30);
}

// A lower bound only (a slow machine may take longer, never shorter): the
// limiter never lets more than burst + rate x elapsed bytes through.
TEST(BandwidthLimiter, NeverFasterThanTheLimit) {
  const int64_t rate = 8 << 20, burst = 256 << 10;
  BandwidthLimiter limiter(rate, burst);
  const absl::Time start = absl::Now();
  int64_t passed = 0;
  for (int i = 0; i < 12; ++i) {  // 3 MiB in 256 KiB pieces
    limiter.Acquire(256 << 10);
    passed += 256 << 10;
    double elapsed = absl::ToDoubleSeconds(absl::Now() - start);
    // Everything acquired so far must fit in burst + rate * elapsed (the
    // last Acquire returned only after its debt was paid).
    EXPECT_LE(passed, burst + rate * elapsed + 1) << "after " << passed << " bytes";
  }
  EXPECT_GE(absl::ToDoubleSeconds(absl::Now() - start), (3.0 * (1 << 20) - burst) / rate);
}

}  // namespace
}  // namespace snaphaven
