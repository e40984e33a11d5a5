// soak: imitates a busy Cassandra node beside a looping snaphaven and judges
// the result (see soak.h). From the workspace root:
//
//   bazel build //snaphaven //tools/soak:soak
//   bazel-bin/tools/soak/soak --duration 10m
//
// Prints a short report ending in
//   soak: <duration>, <cycles> cycles, <failed> failed, <violations> violations, peak RSS <n> KiB
// and exits 0 iff every check passed (1 otherwise, 2 on bad flags).

#include <gflags/gflags.h>

#include <iostream>

#include "absl/time/time.h"
#include "tools/soak/soak.h"

DEFINE_string(binary, "bazel-bin/snaphaven/snaphaven", "The snaphaven executable.");
DEFINE_string(duration, "10m", "How long to churn (an abseil duration: 90s, 10m, 1h).");
DEFINE_string(workdir, "",
              "Directory for the source tree, the destination and the logs (created; must "
              "not hold an earlier run). Default: a new /tmp/soak_XXXXXX, kept afterwards.");
DEFINE_uint32(seed, 1, "Seeds the tree and every decision of the churn.");
DEFINE_string(interval, "1s", "snaphaven's --interval.");

int main(int argc, char** argv) {
  gflags::SetUsageMessage("soak [--duration 10m] [--binary PATH] [--workdir DIR] [--seed N]");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  if (argc > 1) {
    std::cerr << "soak: unexpected argument " << argv[1] << "\n";
    return 2;
  }
  snaphaven::soak::SoakOptions options;
  options.binary = FLAGS_binary;
  options.workdir = FLAGS_workdir;
  options.seed = FLAGS_seed;
  if (!absl::ParseDuration(FLAGS_duration, &options.duration) ||
      options.duration <= absl::ZeroDuration()) {
    std::cerr << "soak: invalid --duration " << FLAGS_duration << "\n";
    return 2;
  }
  if (!absl::ParseDuration(FLAGS_interval, &options.interval) ||
      options.interval <= absl::ZeroDuration()) {
    std::cerr << "soak: invalid --interval " << FLAGS_interval << "\n";
    return 2;
  }
  snaphaven::soak::SoakSummary summary = snaphaven::soak::RunSoak(options, std::cout);
  return summary.passed ? 0 : 1;
}
