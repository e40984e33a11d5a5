// Time, through an interface: the cycle asks a Clock for the time (settle
// and stuck ages, pruning, retention, progress, commit spacing) so that a
// test can set it instead of sleeping. Durations are absl::Duration, times
// absl::Time (abseil Tip #181: units in the type).

#ifndef SNAPHAVEN_CLOCK_H_
#define SNAPHAVEN_CLOCK_H_

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace snaphaven {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() = 0;
  virtual void SleepFor(absl::Duration duration) = 0;
};

// The system's clock. Never destroyed; thread-safe.
Clock& RealClock();

// A clock that moves only when told to (tests). Thread-safe.
class FakeClock : public Clock {
 public:
  explicit FakeClock(absl::Time now) : now_(now) {}
  absl::Time Now() override;
  // Sleeping advances the clock at once.
  void SleepFor(absl::Duration duration) override { Advance(duration); }
  void Advance(absl::Duration duration);
  void Set(absl::Time now);

 private:
  absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

}  // namespace snaphaven

#endif  // SNAPHAVEN_CLOCK_H_
