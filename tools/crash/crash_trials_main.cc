// crash_trials: kills snaphaven at random moments and checks that nothing is
// partial, lost or wrong, and that a rerun repairs everything (see
// crash_trials.h for the invariants).
//
//   bazel run //tools/crash:crash_trials -- --trials 50 [--verbose]
//
// Prints a line for each trial that violated something, then
//   crash trials: <N> run, <V> invariants violated (<copy> copy, <move> move;
//   kill after 0-<T> ms)
// Exit code: 0 when nothing was violated, 1 when something was (or the
// trials could not run), 2 for bad usage.

#include <gflags/gflags.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tools/crash/crash_trials.h"

DEFINE_string(binary, "",
              "The snaphaven executable; default: the one bazel built (the "
              "runfiles' snaphaven/snaphaven, else bazel-bin/snaphaven/"
              "snaphaven).");
DEFINE_int32(trials, 50, "Number of trials.");
DEFINE_string(mode, "both",
              "copy, move, or both (trials alternate, copy first).");
DEFINE_uint64(seed, 0,
              "Seeds the trees and the kill moments; 0 picks one from the "
              "clock (each violation line names it).");
DEFINE_string(workdir, "",
              "Directory for the trial trees (created if missing); default: "
              "a new temporary directory, removed when nothing was "
              "violated.");
DEFINE_bool(verbose, false,
            "Also print, on stderr, how far each trial's run got before the "
            "kill.");
DEFINE_string(data_size, "2M",
              "Bytes per Data.db (K, M, G suffixes allowed); the default "
              "gives runs of a few tenths of a second on a local disk.");

namespace {

int Usage(const std::string& message) {
  fprintf(stderr, "crash_trials: %s\n", message.c_str());
  return 2;
}

// bazel run starts the tool in its runfiles: a relative path on the command
// line means the directory bazel was called from.
std::string FromCallerDirectory(const std::string& path) {
  const char* caller = std::getenv("BUILD_WORKING_DIRECTORY");
  if (path.empty() || path[0] == '/' || caller == nullptr) return path;
  return absl::StrCat(caller, "/", path);
}

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "kills snaphaven at random moments and checks what it leaves.\n"
      "  crash_trials [--binary PATH] [--trials N] [--mode copy|move|both]\n"
      "               [--seed N] [--workdir DIR] [--data_size BYTES]");
  gflags::ParseCommandLineFlags(&argc, &argv, /*remove_flags=*/true);
  if (argc > 1) {
    return Usage(absl::StrCat("unexpected argument \"", argv[1], "\""));
  }

  snaphaven::crash::TrialsOptions options;
  options.binary = FLAGS_binary.empty()
                       ? snaphaven::crash::DefaultSnaphavenBinary()
                       : FromCallerDirectory(FLAGS_binary);
  if (options.binary.empty()) {
    return Usage(
        "cannot find the snaphaven binary: build it (bazel build //snaphaven) "
        "or pass --binary");
  }
  options.trials = FLAGS_trials;
  absl::StatusOr<snaphaven::crash::Modes> modes =
      snaphaven::crash::ParseModes(FLAGS_mode);
  if (!modes.ok()) return Usage(std::string(modes.status().message()));
  options.modes = *modes;
  absl::StatusOr<int64_t> data_size =
      snaphaven::tools::ParseByteSize(FLAGS_data_size);
  if (!data_size.ok()) {
    return Usage(absl::StrCat("--data_size: ", data_size.status().message()));
  }
  options.data_size = *data_size;
  options.seed = FLAGS_seed;
  if (options.seed == 0) {
    // Any nonzero value will do; the violation lines give it for a rerun.
    options.seed =
        static_cast<uint64_t>(absl::ToUnixMicros(absl::Now())) % 1000000000 + 1;
  }
  options.workdir = FromCallerDirectory(FLAGS_workdir);

  absl::StatusOr<snaphaven::crash::TrialsReport> report =
      snaphaven::crash::RunCrashTrials(
          options, [&](const snaphaven::crash::TrialResult& trial) {
            if (FLAGS_verbose) {
              fprintf(stderr, "%s\n",
                      snaphaven::crash::ProgressLine(trial).c_str());
            }
            if (!trial.violations.empty()) {
              printf("%s\n",
                     snaphaven::crash::TrialLine(trial, options.seed).c_str());
              fflush(stdout);
            }
          });
  if (!report.ok()) {
    fprintf(stderr, "crash_trials: %s\n",
            std::string(report.status().message()).c_str());
    // Bad options are usage errors; anything else stopped the trials.
    return absl::IsInvalidArgument(report.status()) ? 2 : 1;
  }
  printf("%s\n", report->Summary().c_str());
  return report->violations() == 0 ? 0 : 1;
}
