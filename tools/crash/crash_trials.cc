#include "tools/crash/crash_trials.h"

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <random>
#include <system_error>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "snaphaven/state/manifest_store.h"
#include "tools/tree_generator.h"

namespace snaphaven::crash {
namespace {

namespace fs = std::filesystem;

// A killed run is reaped within milliseconds; a rerun copies everything
// again at worst, which the calibration run did in well under this.
constexpr absl::Duration kReapTimeout = absl::Seconds(10);
constexpr absl::Duration kRunTimeout = absl::Seconds(300);

// At most this many violations are spelled out on a trial's line; the
// trial's directory is kept for the rest.
constexpr size_t kViolationsPerLine = 5;

// The same test as testing::SnapshotFiles, so that LiveFiles is its exact
// complement: a file under <ks>/<table>/snapshots/<tag>/.
bool IsSnapshotPath(const std::string& path) {
  std::vector<absl::string_view> parts = absl::StrSplit(path, '/');
  return parts.size() >= 5 && parts[2] == "snapshots";
}

std::string Describe(const testing::FileRecord& want,
                     const testing::FileRecord& got) {
  if (want.type != got.type) {
    return absl::StrCat("type '", std::string(1, got.type), "', source '",
                        std::string(1, want.type), "'");
  }
  std::vector<std::string> diffs;
  if (got.size != want.size) {
    diffs.push_back(absl::StrCat("size ", got.size, ", source ", want.size));
  } else if (got.contents != want.contents) {
    diffs.push_back("same size, different bytes");
  }
  if (got.mode != want.mode) {
    diffs.push_back(absl::StrFormat("mode %o, source %o", got.mode, want.mode));
  }
  if (got.mtime_ns != want.mtime_ns) {
    diffs.push_back(
        absl::StrCat("mtime ", got.mtime_ns, " ns, source ", want.mtime_ns));
  }
  return absl::StrJoin(diffs, ", ");
}

// Adds a violation for every file of `want` missing from or different in
// `got`, and every file of `got` not in `want`: the verdict of
// testing::DiffTrees (same FileRecord equality), one violation per path.
void CompareFiles(const Files& want, const Files& got,
                  absl::string_view invariant, absl::string_view where,
                  std::vector<Violation>& out) {
  for (const auto& [path, record] : want) {
    auto it = got.find(path);
    if (it == got.end()) {
      out.push_back(
          {std::string(invariant), path, absl::StrCat("missing ", where)});
    } else if (!(it->second == record)) {
      out.push_back({std::string(invariant), path,
                     absl::StrCat("differs ", where, ": ",
                                  Describe(record, it->second))});
    }
  }
  for (const auto& [path, record] : got) {
    if (want.count(path) == 0) {
      out.push_back(
          {std::string(invariant), path, absl::StrCat("extra ", where)});
    }
  }
}

// (b): each entry of the committed manifest describes the file at the
// destination, since the next run trusts it instead of looking.
void CheckManifest(const std::string& destination, const Files& at_destination,
                   std::vector<Violation>& out) {
  const std::string rel = ".snaphaven/manifest";
  const std::string path = absl::StrCat(destination, "/", rel);
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) {
    // No manifest yet: the run was killed before its first commit.
    if (errno == ENOENT) return;
    out.push_back({"b", rel, absl::StrCat("cannot stat: ", strerror(errno))});
    return;
  }
  // The base is replaced by rename and the log is appended to, so even a
  // kill in the middle of a commit must leave a whole base and a log whose
  // last record, if torn, is ignored: loaded as the next run loads it.
  absl::StatusOr<StoredManifest> manifest = StoredManifest::Load(*DefaultFileSystem(), path);
  if (!manifest.ok()) {
    out.push_back(
        {"b", rel,
         absl::StrCat("does not parse: ", manifest.status().message())});
    return;
  }
  for (const auto& [entry_path, entry] : manifest->entries()) {
    auto it = at_destination.find(entry_path);
    if (it == at_destination.end() || it->second.type != 'f') {
      out.push_back({"b", entry_path,
                     "in the manifest but not a file at the destination"});
    } else if (it->second.size != entry.size ||
               it->second.mtime_ns != entry.mtime_ns) {
      out.push_back({"b", entry_path,
                     absl::StrCat("manifest says size ", entry.size, " mtime ",
                                  entry.mtime_ns, " ns, the file has size ",
                                  it->second.size, " mtime ",
                                  it->second.mtime_ns, " ns")});
    }
  }
}

// Runs to completion: the exit code (128+N if killed by signal N), or -1
// if it was still running after `timeout` (it is killed then).
absl::StatusOr<int> Run(const std::string& binary,
                        const std::vector<std::string>& args,
                        const std::string& log_path, absl::Duration timeout) {
  const pid_t pid = testing::StartProgram(binary, args, log_path, log_path);
  const int code = testing::WaitForExit(pid, timeout);
  if (code == -1) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
  return code;
}

void AppendToLog(const std::string& log_path, absl::string_view text) {
  std::string old = testing::ReadFileIfExists(log_path);
  testing::WriteFileOrDie(log_path, absl::StrCat(old, text));
}

// The last non-empty line of a log, to say why a run failed.
std::string LastLine(const std::string& log_path) {
  std::string text = testing::ReadFileIfExists(log_path);
  std::vector<absl::string_view> lines =
      absl::StrSplit(text, '\n', absl::SkipWhitespace());
  return lines.empty() ? "(empty log)" : std::string(lines.back());
}

// Makes `dir` a new empty directory, replacing what a previous run of the
// tool left there.
absl::Status ResetDir(const std::string& dir) {
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (ec)
    return absl::InternalError(
        absl::StrCat("remove ", dir, ": ", ec.message()));
  fs::create_directories(dir, ec);
  if (ec)
    return absl::InternalError(absl::StrCat("mkdir ", dir, ": ", ec.message()));
  return absl::OkStatus();
}

void RemoveDir(const std::string& dir) {
  std::error_code ec;
  fs::remove_all(dir, ec);  // best effort: a leftover only costs space
}

std::string FirstViolations(const std::vector<Violation>& violations) {
  std::vector<std::string> shown;
  for (size_t i = 0; i < violations.size() && i < kViolationsPerLine; ++i) {
    shown.push_back(violations[i].ToString());
  }
  std::string line = absl::StrJoin(shown, "; ");
  if (violations.size() > kViolationsPerLine) {
    absl::StrAppend(&line, "; and ", violations.size() - kViolationsPerLine,
                    " more");
  }
  return line;
}

Mode ModeOfTrial(Modes modes, int index) {
  switch (modes) {
    case Modes::kCopy:
      return Mode::kCopy;
    case Modes::kMove:
      return Mode::kMove;
    case Modes::kBoth:
      break;
  }
  return index % 2 == 0 ? Mode::kCopy : Mode::kMove;
}

// One uninterrupted run on a fresh tree: how long it takes, from fork to
// exit as a trial measures its kill delay. It must leave an exact mirror,
// or the trials would blame the kills for what a plain run does wrong.
absl::StatusOr<absl::Duration> Calibrate(const TrialsOptions& options,
                                         const std::string& dir, Mode mode) {
  if (absl::Status s = ResetDir(dir); !s.ok()) return s;
  const std::string data_root = dir + "/data";
  if (absl::Status s = GenerateTrialTree(data_root, options.data_size,
                                         static_cast<uint32_t>(options.seed));
      !s.ok()) {
    return s;
  }
  const TrialTree tree = ReadTrialTree(data_root, dir + "/backup");
  const std::string log = dir + "/snaphaven.log";
  const absl::Time start = absl::Now();
  absl::StatusOr<int> code =
      Run(options.binary, SnaphavenArgs(tree, mode), log, kRunTimeout);
  const absl::Duration elapsed = absl::Now() - start;
  if (!code.ok()) return code.status();
  std::vector<Violation> violations = CheckAfterRerun(tree, mode, *code);
  if (!violations.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the uninterrupted calibration run in ", ModeName(mode), " mode ",
        *code == 0 ? "" : absl::StrCat("(", LastLine(log), ") "),
        "did not leave an exact mirror: ", FirstViolations(violations),
        " (kept in ", dir, ")"));
  }
  RemoveDir(dir);
  return elapsed;
}

absl::StatusOr<TrialResult> RunTrial(const TrialsOptions& options,
                                     const std::string& dir, int index,
                                     Mode mode, absl::Duration kill_after) {
  TrialResult result;
  result.index = index;
  result.mode = mode;
  result.kill_after = kill_after;
  if (absl::Status s = ResetDir(dir); !s.ok()) return s;
  const std::string data_root = dir + "/data";
  // Each trial its own contents and table ids; the calibration used
  // options.seed itself.
  const uint32_t tree_seed = static_cast<uint32_t>(options.seed + index + 1);
  if (absl::Status s =
          GenerateTrialTree(data_root, options.data_size, tree_seed);
      !s.ok()) {
    return s;
  }
  const TrialTree tree = ReadTrialTree(data_root, dir + "/backup");
  const std::vector<std::string> args = SnaphavenArgs(tree, mode);
  const std::string log = dir + "/snaphaven.log";

  const absl::Time start = absl::Now();
  const pid_t pid = testing::StartProgram(options.binary, args, log, log);
  absl::SleepFor(start + kill_after - absl::Now());
  // A run that already exited is a zombie until reaped: kill cannot hit
  // another process that reused the pid.
  kill(pid, SIGKILL);
  const int code = testing::WaitForExit(pid, kReapTimeout);
  result.killed = code == 128 + SIGKILL;
  if (!result.killed && code != 0) {
    result.violations.push_back(
        {"run", "",
         absl::StrCat("exited with ", code,
                      " before the kill: ", LastLine(log))});
  }
  result.destination_files_at_kill =
      testing::DestinationFiles(tree.destination).size();
  result.source_files_at_kill = testing::SnapshotFiles(data_root).size();
  result.snapshot_files = tree.snapshots.size();
  std::vector<Violation> after_crash = CheckAfterCrash(tree, mode);
  result.violations.insert(result.violations.end(), after_crash.begin(),
                           after_crash.end());

  AppendToLog(log, absl::StrFormat("--- %s after %d ms; rerun ---\n",
                                   result.killed ? "killed" : "exited",
                                   absl::ToInt64Milliseconds(kill_after)));
  absl::StatusOr<int> rerun = Run(options.binary, args, log, kRunTimeout);
  if (!rerun.ok()) return rerun.status();
  std::vector<Violation> after_rerun = CheckAfterRerun(tree, mode, *rerun);
  for (Violation& v : after_rerun) {
    if (v.invariant == "rerun") absl::StrAppend(&v.detail, ": ", LastLine(log));
  }
  result.violations.insert(result.violations.end(), after_rerun.begin(),
                           after_rerun.end());

  if (result.violations.empty()) {
    RemoveDir(dir);
  } else {
    result.kept_dir = dir;
  }
  return result;
}

}  // namespace

absl::string_view ModeName(Mode mode) {
  return mode == Mode::kCopy ? "copy" : "move";
}

absl::StatusOr<Modes> ParseModes(absl::string_view text) {
  if (text == "copy") return Modes::kCopy;
  if (text == "move") return Modes::kMove;
  if (text == "both") return Modes::kBoth;
  return absl::InvalidArgumentError(
      absl::StrCat("--mode must be copy, move or both, not \"", text, "\""));
}

std::string Violation::ToString() const {
  return path.empty() ? absl::StrCat("[", invariant, "] ", detail)
                      : absl::StrCat("[", invariant, "] ", path, ": ", detail);
}

const std::vector<std::string>& TrialKeyspaces() {
  static const auto* const kKeyspaces =
      new std::vector<std::string>{"ks1", "ks2"};
  return *kKeyspaces;
}

absl::Status GenerateTrialTree(const std::string& data_root, int64_t data_size,
                               uint32_t seed) {
  tools::TreeSpec with_live;
  with_live.keyspaces = {"ks1"};
  with_live.tables_per_keyspace = 2;
  with_live.sstables_per_table = 2;
  with_live.index_dirs_per_table = 1;
  with_live.snapshot_tags = {"daily_1", "daily_2"};
  with_live.data_size = data_size;
  with_live.seed = seed;
  if (absl::Status s = tools::GenerateTree(data_root, with_live); !s.ok()) {
    return s;
  }

  tools::TreeSpec without_live = with_live;
  without_live.keyspaces = {"ks2"};
  without_live.snapshot_tags = {"daily_1", "tag with space",
                                "\xc3\xa9t\xc3\xa9-\xc3\xbc"};
  without_live.write_live_sstables = false;
  if (absl::Status s = tools::GenerateTree(data_root, without_live); !s.ok()) {
    return s;
  }

  // Private files: a copy must keep their mode, not widen it. In ks1 this
  // also changes the live file, which is the same inode.
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(data_root, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file() &&
        absl::EndsWith(it->path().filename().string(), "Statistics.db") &&
        chmod(it->path().c_str(), 0600) != 0) {
      return absl::ErrnoToStatus(errno,
                                 absl::StrCat("chmod ", it->path().string()));
    }
  }
  if (ec) {
    return absl::InternalError(
        absl::StrCat("walk ", data_root, ": ", ec.message()));
  }
  return absl::OkStatus();
}

Files LiveFiles(const std::string& data_root) {
  Files live;
  for (auto& [path, record] : testing::ReadTree(data_root)) {
    if (record.type == 'f' && !IsSnapshotPath(path)) {
      live.emplace(path, std::move(record));
    }
  }
  return live;
}

TrialTree ReadTrialTree(const std::string& data_root,
                        const std::string& destination) {
  TrialTree tree;
  tree.data_root = data_root;
  tree.destination = destination;
  tree.snapshots = testing::SnapshotFiles(data_root);
  tree.live = LiveFiles(data_root);
  return tree;
}

std::vector<Violation> CheckAfterCrash(const TrialTree& tree, Mode mode) {
  std::vector<Violation> violations;
  const Files at_destination = testing::DestinationFiles(tree.destination);

  // (a) A file under its final name is whole: renamed into place only once
  // written, fsync'd and given its mode and mtime.
  for (const auto& [path, record] : at_destination) {
    auto it = tree.snapshots.find(path);
    if (it == tree.snapshots.end()) {
      violations.push_back({"a", path,
                            "at the destination but not a source "
                            "snapshot file"});
    } else if (!(record == it->second)) {
      violations.push_back({"a", path,
                            absl::StrCat("partial or wrong under its final "
                                         "name: ",
                                         Describe(it->second, record))});
    }
  }

  // (b)
  CheckManifest(tree.destination, at_destination, violations);

  // (c) The source changes only by move mode's deletions, and only of files
  // already safe at the destination.
  const Files at_source = testing::SnapshotFiles(tree.data_root);
  for (const auto& [path, record] : tree.snapshots) {
    auto it = at_source.find(path);
    if (it != at_source.end()) {
      if (!(it->second == record)) {
        violations.push_back({"c", path,
                              absl::StrCat("changed at the source: ",
                                           Describe(record, it->second))});
      }
      continue;
    }
    if (mode == Mode::kCopy) {
      violations.push_back({"c", path, "deleted from the source in copy mode"});
      continue;
    }
    auto copy = at_destination.find(path);
    if (copy == at_destination.end()) {
      violations.push_back(
          {"c", path, "gone from the source, not at the destination"});
    } else if (!(copy->second == record)) {
      violations.push_back(
          {"c", path,
           absl::StrCat("gone from the source, its copy differs: ",
                        Describe(record, copy->second))});
    }
  }
  for (const auto& [path, record] : at_source) {
    if (tree.snapshots.count(path) == 0) {
      violations.push_back({"c", path, "appeared at the source"});
    }
  }
  return violations;
}

std::vector<Violation> CheckAfterRerun(const TrialTree& tree, Mode mode,
                                       int rerun_exit_code) {
  std::vector<Violation> violations;
  if (rerun_exit_code != 0) {
    violations.push_back({"rerun", "",
                          rerun_exit_code == -1
                              ? absl::StrCat("still running after ",
                                             absl::FormatDuration(kRunTimeout))
                              : absl::StrCat("exited with ", rerun_exit_code)});
  }
  CompareFiles(tree.snapshots, testing::DestinationFiles(tree.destination),
               "mirror", "at the destination", violations);
  for (const auto& [path, record] :
       testing::ReadTree(tree.destination + "/.snaphaven/tmp")) {
    violations.push_back(
        {"tmp", absl::StrCat(".snaphaven/tmp/", path), "left after the rerun"});
  }
  const Files at_source = testing::SnapshotFiles(tree.data_root);
  if (mode == Mode::kMove) {
    for (const auto& [path, record] : at_source) {
      violations.push_back({"source", path, "left at the source by move mode"});
    }
  } else {
    CompareFiles(tree.snapshots, at_source, "source", "at the source",
                 violations);
  }
  CompareFiles(tree.live, LiveFiles(tree.data_root), "live", "at the source",
               violations);
  return violations;
}

std::vector<std::string> SnaphavenArgs(const TrialTree& tree, Mode mode) {
  std::vector<std::string> args = {"-d", tree.data_root, "-s",
                                   tree.destination};
  if (mode == Mode::kMove) {
    // No settle time: the generated snapshots are complete and may be
    // deleted at once, so the kills also land among the deletions.
    args.insert(args.end(), {"--move-snapshots", "--settle_time=0s"});
  }
  args.insert(args.end(), TrialKeyspaces().begin(), TrialKeyspaces().end());
  return args;
}

int TrialsReport::copy_trials() const {
  return static_cast<int>(std::count_if(
      trials.begin(), trials.end(),
      [](const TrialResult& t) { return t.mode == Mode::kCopy; }));
}

int TrialsReport::move_trials() const {
  return static_cast<int>(trials.size()) - copy_trials();
}

int TrialsReport::violations() const {
  int n = 0;
  for (const TrialResult& t : trials)
    n += static_cast<int>(t.violations.size());
  return n;
}

std::string TrialsReport::Summary() const {
  return absl::StrFormat(
      "crash trials: %d run, %d invariants violated (%d copy, %d move; kill "
      "after 0-%d ms)",
      trials.size(), violations(), copy_trials(), move_trials(),
      absl::ToInt64Milliseconds(kill_window));
}

std::string TrialLine(const TrialResult& trial, uint64_t seed) {
  std::string line = absl::StrFormat(
      "trial %d (%s, --seed %d, kill after %d ms%s): %d violated: %s",
      trial.index, ModeName(trial.mode), seed,
      absl::ToInt64Milliseconds(trial.kill_after),
      trial.killed ? "" : ", had already exited", trial.violations.size(),
      FirstViolations(trial.violations));
  if (!trial.kept_dir.empty())
    absl::StrAppend(&line, "; kept in ", trial.kept_dir);
  return line;
}

std::string ProgressLine(const TrialResult& trial) {
  return absl::StrFormat(
      "trial %d (%s, kill after %d ms, %s): %d of %d files at the "
      "destination, %d at the source, %d violated",
      trial.index, ModeName(trial.mode),
      absl::ToInt64Milliseconds(trial.kill_after),
      trial.killed ? "killed" : "had already exited",
      trial.destination_files_at_kill, trial.snapshot_files,
      trial.source_files_at_kill, trial.violations.size());
}

absl::StatusOr<TrialsReport> RunCrashTrials(
    const TrialsOptions& options,
    const std::function<void(const TrialResult&)>& on_trial) {
  if (options.trials < 1) {
    return absl::InvalidArgumentError("--trials must be at least 1");
  }
  if (options.data_size < 1) {
    return absl::InvalidArgumentError("--data_size must be at least 1 byte");
  }
  struct stat st;
  if (options.binary.empty() || stat(options.binary.c_str(), &st) != 0 ||
      !S_ISREG(st.st_mode) || access(options.binary.c_str(), X_OK) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "no executable snaphaven binary at \"", options.binary, "\""));
  }
  std::string workdir = options.workdir;
  const bool temporary = workdir.empty();
  if (temporary) {
    workdir = testing::MakeTempDir("crash_trials");
  } else {
    std::error_code ec;
    fs::create_directories(workdir, ec);
    if (ec) {
      return absl::InvalidArgumentError(absl::StrCat(
          "cannot create --workdir ", workdir, ": ", ec.message()));
    }
  }

  TrialsReport report;
  report.seed = options.seed;
  // One calibration run, as the trials' kill window. With both modes, a
  // move run: it does a copy run's work, then the deletions, so kills drawn
  // from its duration reach the end of either.
  const Mode calibration_mode =
      options.modes == Modes::kCopy ? Mode::kCopy : Mode::kMove;
  absl::StatusOr<absl::Duration> elapsed = Calibrate(
      options, absl::StrCat(workdir, "/calibration"), calibration_mode);
  if (!elapsed.ok()) return elapsed.status();
  report.kill_window = *elapsed;

  std::mt19937_64 random(options.seed);
  std::uniform_int_distribution<int64_t> kill_after_us(
      0, absl::ToInt64Microseconds(report.kill_window));
  for (int i = 0; i < options.trials; ++i) {
    const absl::Duration kill_after = absl::Microseconds(kill_after_us(random));
    absl::StatusOr<TrialResult> trial =
        RunTrial(options, absl::StrCat(workdir, "/trial-", i), i,
                 ModeOfTrial(options.modes, i), kill_after);
    if (!trial.ok()) return trial.status();
    on_trial(*trial);
    report.trials.push_back(*std::move(trial));
  }
  if (temporary && report.violations() == 0) RemoveDir(workdir);
  return report;
}

std::string DefaultSnaphavenBinary() {
  std::vector<std::string> candidates = {"snaphaven/snaphaven"};
  // bazel run starts the tool in its runfiles; the workspace is here.
  if (const char* workspace = std::getenv("BUILD_WORKSPACE_DIRECTORY")) {
    candidates.push_back(
        absl::StrCat(workspace, "/bazel-bin/snaphaven/snaphaven"));
  }
  candidates.push_back("bazel-bin/snaphaven/snaphaven");
  for (const std::string& candidate : candidates) {
    struct stat st;
    char resolved[PATH_MAX];
    if (stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        access(candidate.c_str(), X_OK) == 0 &&
        realpath(candidate.c_str(), resolved) != nullptr) {
      return resolved;
    }
  }
  return "";
}

}  // namespace snaphaven::crash
