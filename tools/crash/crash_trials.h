// Crash trials: runs the real snaphaven binary on freshly generated Cassandra
// trees, kills it with SIGKILL at a random moment, and checks that what it
// left behind keeps the README's promises ("a file is never visible under its
// final name before it is whole", "nothing is lost", "read-only towards
// Cassandra"), then that a rerun repairs everything.
//
// One trial:
//   1. generate a tree (GenerateTrialTree) and record every snapshot file
//      and every live file (path -> bytes, mode, mtime);
//   2. start snaphaven on it, copy or move mode, and kill -9 it after a
//      delay drawn uniformly from [0, T], T being the duration of an
//      uninterrupted calibration run;
//   3. CheckAfterCrash: (a) every file under a final name at the destination
//      equals its source; (b) every destination-manifest entry matches its
//      file; (c) nothing at the source changed, and in move mode a source
//      file is gone only if an identical copy is at the destination;
//   4. rerun snaphaven to completion and CheckAfterRerun: exit code 0, an
//      exact mirror, an empty .snaphaven/tmp, the source snapshots emptied
//      (move) or unchanged (copy), the live files untouched.

#ifndef SNAPHAVEN_TOOLS_CRASH_CRASH_TRIALS_H_
#define SNAPHAVEN_TOOLS_CRASH_CRASH_TRIALS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "snaphaven/testing/e2e_util.h"

namespace snaphaven::crash {

// Regular files by path relative to a root, as the e2e helpers read them.
using Files = std::map<std::string, testing::FileRecord>;

enum class Mode { kCopy, kMove };
// "copy" or "move".
absl::string_view ModeName(Mode mode);

// The modes a run of trials uses. kBoth alternates, copy first, so an even
// number of trials splits evenly.
enum class Modes { kCopy, kMove, kBoth };
// "copy", "move" or "both".
absl::StatusOr<Modes> ParseModes(absl::string_view text);

struct TrialsOptions {
  std::string binary;  // the snaphaven executable; required
  int trials = 50;
  Modes modes = Modes::kBoth;
  // Seeds the trees (the calibration run uses seed, trial i seed + i + 1)
  // and the kill moments.
  uint64_t seed = 1;
  // Where the trees go (created if missing); "" for a new temporary
  // directory, removed at the end unless something was violated.
  std::string workdir;
  // Bytes per Data.db. 2 MiB makes ~32 MiB to copy: a run of a few tenths of
  // a second on a local disk, long enough for kills to land mid-file.
  int64_t data_size = int64_t{2} << 20;
};

// One broken promise.
struct Violation {
  // "a", "b", "c" (the crash invariants above); "rerun", "mirror", "tmp",
  // "source", "live" (after the rerun).
  std::string invariant;
  std::string path;  // relative to the data root or destination; "" if none
  std::string detail;

  // "[a] ks1/users-.../nb-1-big-Data.db: <detail>"
  std::string ToString() const;
};

// The state a trial starts from.
struct TrialTree {
  std::string data_root;
  std::string destination;
  Files snapshots;  // testing::SnapshotFiles(data_root) before the run
  Files live;       // LiveFiles(data_root) before the run
};

// Writes a trial's tree in data_root: keyspace ks1 with live sstables (its
// snapshots are hard links of them), ks2 without (each snapshot file is an
// inode of its own, as after a compaction); two tables each with an index
// dir; 2 and 3 snapshot tags, one with a space and non-ASCII letters; the
// Statistics.db files mode 0600, so modes are checked too.
absl::Status GenerateTrialTree(const std::string& data_root, int64_t data_size,
                               uint32_t seed);

// The keyspaces GenerateTrialTree writes, as snaphaven's arguments.
const std::vector<std::string>& TrialKeyspaces();

// The regular files of a data root outside */*/snapshots/.
Files LiveFiles(const std::string& data_root);

// Records data_root's files before a run.
TrialTree ReadTrialTree(const std::string& data_root,
                        const std::string& destination);

// The invariants (a), (b), (c) on the state a killed run left.
std::vector<Violation> CheckAfterCrash(const TrialTree& tree, Mode mode);

// The state after a rerun that exited with `rerun_exit_code`.
std::vector<Violation> CheckAfterRerun(const TrialTree& tree, Mode mode,
                                       int rerun_exit_code);

// snaphaven's arguments for one run on `tree` in `mode`.
std::vector<std::string> SnaphavenArgs(const TrialTree& tree, Mode mode);

struct TrialResult {
  int index = 0;
  Mode mode = Mode::kCopy;
  absl::Duration kill_after;
  // Whether SIGKILL ended the run; false when it had already exited.
  bool killed = false;
  // How far the run got: files under a final name at the destination, and
  // snapshot files still at the source, right after the kill (of
  // TrialTree::snapshots.size()).
  size_t destination_files_at_kill = 0;
  size_t source_files_at_kill = 0;
  size_t snapshot_files = 0;
  std::vector<Violation> violations;
  // The trial's directory, kept when something was violated.
  std::string kept_dir;
};

struct TrialsReport {
  uint64_t seed = 0;
  // T: how long one uninterrupted run took (in move mode unless all trials
  // copy); each kill comes after a delay drawn uniformly from [0, T].
  absl::Duration kill_window;
  std::vector<TrialResult> trials;

  int copy_trials() const;
  int move_trials() const;
  int violations() const;
  // "crash trials: <N> run, <V> invariants violated (<copy> copy, <move>
  // move; kill after 0-<T> ms)"
  std::string Summary() const;
};

// The line printed for a trial that violated something: its mode, kill
// delay, the run's seed and the violations.
std::string TrialLine(const TrialResult& trial, uint64_t seed);
// How far a trial's run got before the kill, to see that the kills land
// everywhere (before the first copy, mid-copy, among the deletions).
std::string ProgressLine(const TrialResult& trial);

// Calibrates T with one uninterrupted run, then runs the trials, calling
// `on_trial` after each one. An error means the trials could not run (bad
// options, a tree that could not be generated, a calibration run that failed
// or left no exact mirror), not that an invariant was violated.
absl::StatusOr<TrialsReport> RunCrashTrials(
    const TrialsOptions& options,
    const std::function<void(const TrialResult&)>& on_trial);

// The snaphaven binary when --binary is not given: the one in the runfiles
// (bazel run, bazel test), else bazel-bin/snaphaven/snaphaven of the
// workspace bazel run was called from, else of the current directory. ""
// if none is found.
std::string DefaultSnaphavenBinary();

}  // namespace snaphaven::crash

#endif  // SNAPHAVEN_TOOLS_CRASH_CRASH_TRIALS_H_
