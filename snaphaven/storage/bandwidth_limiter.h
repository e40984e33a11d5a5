// A token bucket shared by every copy: --max_bandwidth caps the bytes
// written per second so a long first copy leaves the disks to Cassandra.

#ifndef SNAPHAVEN_BANDWIDTH_LIMITER_H_
#define SNAPHAVEN_BANDWIDTH_LIMITER_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace snaphaven {

class BandwidthLimiter {
 public:
  // `bytes_per_second` > 0. At most `burst` bytes pass without waiting.
  explicit BandwidthLimiter(int64_t bytes_per_second, int64_t burst = 256 * 1024);

  // Blocks until `bytes` may be written. Thread-safe. Over any interval
  // that starts with a full bucket, at most burst + rate * elapsed bytes
  // are let through.
  void Acquire(int64_t bytes);

  int64_t bytes_per_second() const { return rate_; }
  // Bytes acquired so far, in all.
  int64_t acquired() {
    absl::MutexLock lock(&mu_);
    return acquired_;
  }

 private:
  const int64_t rate_;
  const int64_t burst_;
  absl::Mutex mu_;
  double tokens_ ABSL_GUARDED_BY(mu_);
  int64_t acquired_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time last_ ABSL_GUARDED_BY(mu_);
};

// "50MiB", "1GB", "100M", "8388608": bytes per second ("/s" optional).
// KiB/MiB/GiB and K/M/G are powers of 1024, KB/MB/GB powers of 1000.
absl::StatusOr<int64_t> ParseBandwidth(const std::string& text);

}  // namespace snaphaven

#endif  // SNAPHAVEN_BANDWIDTH_LIMITER_H_
