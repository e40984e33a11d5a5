// What the tests that drive a Syncer directly start from, in one place:
// the validated configuration a run would have (Options, built here without
// ValidateOptions, which needs the binary's view of the paths) and the
// engine settings under which an injected fault lands on a known file.

#ifndef SNAPHAVEN_TESTING_CYCLE_CONFIG_H_
#define SNAPHAVEN_TESTING_CYCLE_CONFIG_H_

#include <atomic>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "snaphaven/cycle/cycle.h"
#include "snaphaven/cli/options.h"

namespace snaphaven::testing {

// One data root into one destination, the flags' defaults otherwise, but
// no settle time (a generated tree is settled at once) and one copy at a
// time (one order of calls: the Nth call is the same step each run).
inline Options CycleOptions(const std::string& data_root, const std::string& destination,
                            std::vector<std::string> keyspaces = {"ks1"}) {
  Options options;
  options.data_roots = {data_root};
  options.destination = destination;
  options.keyspaces = std::move(keyspaces);
  options.settle_time = absl::ZeroDuration();
  options.copy_threads = 1;
  return options;
}

// No pause between retries, and one fsync at a time, so that a fault aimed
// at the first fsync lands on a known file.
inline EngineSettings CycleSettings() {
  EngineSettings settings;
  settings.retry_backoff = absl::ZeroDuration();
  settings.concurrent_fsyncs = 1;
  return settings;
}

// One run of the binary: the destination prepared, then one cycle; a
// failure to prepare is the cycle's fatal error, as main reports it.
inline CycleStats PrepareAndRunCycle(Syncer& syncer) {
  std::atomic<bool> stop{false};
  CycleStats stats;
  absl::Status prepared = syncer.PrepareDestination();
  if (prepared.ok()) {
    stats = syncer.RunCycle(stop);
  } else {
    stats.fatal = std::string(prepared.message());
  }
  return stats;
}

}  // namespace snaphaven::testing

#endif  // SNAPHAVEN_TESTING_CYCLE_CONFIG_H_
