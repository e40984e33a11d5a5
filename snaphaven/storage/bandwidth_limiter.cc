#include "snaphaven/storage/bandwidth_limiter.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace snaphaven {

BandwidthLimiter::BandwidthLimiter(int64_t bytes_per_second, int64_t burst)
    : rate_(bytes_per_second), burst_(burst), tokens_(static_cast<double>(burst)),
      last_(absl::Now()) {}

void BandwidthLimiter::Acquire(int64_t bytes) {
  absl::Duration wait;
  {
    absl::MutexLock lock(&mu_);
    acquired_ += bytes;
    absl::Time now = absl::Now();
    tokens_ = std::min<double>(static_cast<double>(burst_),
                               tokens_ + absl::ToDoubleSeconds(now - last_) * rate_);
    last_ = now;
    // Take the bytes now (the bucket may go into debt) and wait the debt off.
    tokens_ -= static_cast<double>(bytes);
    if (tokens_ < 0) wait = absl::Seconds(-tokens_ / static_cast<double>(rate_));
  }
  if (wait > absl::ZeroDuration()) absl::SleepFor(wait);
}

absl::StatusOr<int64_t> ParseBandwidth(const std::string& given) {
  absl::string_view text = absl::StripAsciiWhitespace(given);
  absl::ConsumeSuffix(&text, "/s");
  size_t digits = 0;
  while (digits < text.size() && (absl::ascii_isdigit(text[digits]) || text[digits] == '.')) {
    ++digits;
  }
  double number = 0;
  std::string unit = absl::AsciiStrToLower(text.substr(digits));
  if (digits == 0 || !absl::SimpleAtod(text.substr(0, digits), &number) || number <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid --max_bandwidth '", given, "': use e.g. 50MiB, 1GB or 100M"));
  }
  double scale = 0;
  if (unit.empty() || unit == "b") scale = 1;
  if (unit == "k" || unit == "kib") scale = 1024.0;
  if (unit == "m" || unit == "mib") scale = 1024.0 * 1024;
  if (unit == "g" || unit == "gib") scale = 1024.0 * 1024 * 1024;
  if (unit == "kb") scale = 1e3;
  if (unit == "mb") scale = 1e6;
  if (unit == "gb") scale = 1e9;
  if (scale == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid --max_bandwidth '", given, "': unknown unit '", unit, "'"));
  }
  // Whole bytes per second: at least 1 (0 would mean no limit at all), and
  // below 2^63 (a double beyond int64 has no value in it).
  const double bytes = number * scale;
  if (!(bytes >= 1 && bytes < 9223372036854775808.0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid --max_bandwidth '", given, "': from 1 byte to 8 EiB per second"));
  }
  return static_cast<int64_t>(bytes);
}

}  // namespace snaphaven
