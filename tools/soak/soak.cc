#include "tools/soak/soak.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace snaphaven::soak {
namespace {

// ---------------------------------------------------------------------------
// Files.

struct FileRec {
  int64_t size = 0;
  uint32_t mode = 0;
  int64_t mtime_ns = 0;
  std::string contents;
};

std::optional<FileRec> ReadRec(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  FileRec r;
  r.size = st.st_size;
  r.mode = st.st_mode & 07777;
  r.mtime_ns = int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
  r.contents = ss.str();
  return r;
}

FileSig SigOf(const FileRec& r) {
  uLong crc = crc32(0L, Z_NULL, 0);
  crc = crc32(crc, reinterpret_cast<const Bytef*>(r.contents.data()),
              static_cast<uInt>(r.contents.size()));
  return FileSig{static_cast<int64_t>(r.contents.size()), static_cast<uint32_t>(crc)};
}

// How two records differ, or "" when they are the same file content,
// mode and mtime.
std::string Difference(const FileRec& want, const FileRec& got) {
  std::vector<std::string> diffs;
  if (want.size != got.size) diffs.push_back(absl::StrCat("size ", want.size, " vs ", got.size));
  if (want.contents != got.contents && want.size == got.size) diffs.push_back("bytes differ");
  if (want.mode != got.mode) {
    diffs.push_back(absl::StrFormat("mode %o vs %o", want.mode, got.mode));
  }
  if (want.mtime_ns != got.mtime_ns) {
    diffs.push_back(absl::StrCat("mtime ", want.mtime_ns, " vs ", got.mtime_ns));
  }
  return absl::StrJoin(diffs, ", ");
}

// The names in `dir` (churn.h's ListDir), none when it is gone.
std::vector<std::string> Names(const std::string& dir) {
  absl::StatusOr<std::vector<std::string>> names = ListDir(dir);
  return names.ok() ? *std::move(names) : std::vector<std::string>();
}

bool IsRegular(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// Relative paths of the regular files below root/rel (recursively).
void WalkFiles(const std::string& root, const std::string& rel, std::vector<std::string>& out,
               const std::set<std::string>& skip_top = {}) {
  std::string dir = rel.empty() ? root : absl::StrCat(root, "/", rel);
  for (const std::string& name : Names(dir)) {
    if (rel.empty() && skip_top.count(name)) continue;
    std::string child = rel.empty() ? name : absl::StrCat(rel, "/", name);
    std::string path = absl::StrCat(root, "/", child);
    if (IsDir(path)) {
      WalkFiles(root, child, out);
    } else if (IsRegular(path)) {
      out.push_back(child);
    }
  }
}

bool IsTxnLogName(absl::string_view name) {
  return absl::StrContains(name, "_txn_") && absl::EndsWith(name, ".log");
}

bool IsTemporaryName(absl::string_view name) {
  return absl::EndsWith(name, ".tmp") || absl::StartsWith(name, "tmp-") ||
         absl::StartsWith(name, "tmplink-");
}

// "nb-7-big-Data.db" -> "nb-7-big"; "" if not an sstable component.
std::string SSTablePrefix(absl::string_view name) {
  std::vector<absl::string_view> parts = absl::StrSplit(name, absl::MaxSplits('-', 3));
  if (parts.size() != 4 || parts[0].size() != 2 || parts[3].empty() || IsTemporaryName(name)) {
    return "";
  }
  return absl::StrCat(parts[0], "-", parts[1], "-", parts[2]);
}

enum class DestKind { kLive, kSnapshot, kBackup, kOther };

DestKind Classify(const std::string& rel, std::string* unit = nullptr) {
  std::vector<std::string> parts = absl::StrSplit(rel, '/');
  if (parts.size() >= 5 && parts[2] == "snapshots") {
    if (unit != nullptr) *unit = absl::StrJoin(parts.begin(), parts.begin() + 4, "/");
    return DestKind::kSnapshot;
  }
  if (parts.size() >= 4 && parts[2] == "backups") return DestKind::kBackup;
  if (parts.size() == 3) return DestKind::kLive;
  if (parts.size() == 4 && absl::StartsWith(parts[2], ".")) return DestKind::kLive;
  return DestKind::kOther;
}

std::string DirName(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "" : path.substr(0, slash);
}

std::string BaseName(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string Seconds(absl::Duration d) {
  return absl::StrFormat("%.1fs", absl::ToDoubleSeconds(d));
}

// ---------------------------------------------------------------------------
// snaphaven's output.

struct CycleRecord {
  int64_t index = 0;  // 1-based, in the loop process; the final one-shot is last
  std::string summary;
  std::string kind;  // "done", "failed", "interrupted"
  std::map<std::string, int64_t> counts;  // "copied" -> 3, ...
  std::vector<std::string> errors;        // E lines since the previous summary
  bool final_one_shot = false;
  double seen_at = 0;  // seconds since snaphaven started (when read)
  int64_t window_peak_kib = 0;
  int64_t Count(const std::string& what) const {
    auto it = counts.find(what);
    return it == counts.end() ? 0 : it->second;
  }
  bool Failed() const {
    return kind == "failed" || Count("failed") > 0 ||
           absl::StrContains(summary, "out of space");
  }
};

// Reads "YYYY-MM-DD HH:MM:SS S message" lines (main.cc's OperatorLogSink).
class LogParser {
 public:
  void Feed(const std::string& line, double now) {
    if (line.empty()) return;
    const bool prefixed = line.size() >= 22 && line[4] == '-' && line[10] == ' ' &&
                          line[13] == ':' && line[19] == ' ' && line[21] == ' ';
    if (!prefixed) {
      other_lines.push_back(line);
      return;
    }
    const char severity = line[20];
    const std::string message = line.substr(22);
    for (const char* kind : {"done", "failed", "interrupted"}) {
      if (absl::StartsWith(message, absl::StrCat("cycle ", kind, ":"))) {
        CycleRecord c;
        c.index = static_cast<int64_t>(cycles.size()) + 1;
        c.summary = line;
        c.kind = kind;
        c.seen_at = now;
        std::string counts_part = message.substr(message.find(':') + 1);
        counts_part = counts_part.substr(0, counts_part.find(';'));
        for (absl::string_view part : absl::StrSplit(counts_part, ',')) {
          std::vector<absl::string_view> words =
              absl::StrSplit(absl::StripAsciiWhitespace(part), ' ');
          int64_t n;
          if (words.size() == 2 && absl::SimpleAtoi(words[0], &n)) {
            c.counts[std::string(words[1])] = n;
          }
        }
        c.errors = std::move(pending_errors);
        pending_errors.clear();
        cycles.push_back(std::move(c));
        return;
      }
    }
    if (severity == 'E' || severity == 'F') {
      pending_errors.push_back(line);
    } else if (severity == 'W') {
      ++warnings;
      std::string shape = message.substr(0, message.find(' ', message.find(' ') + 1));
      ++warning_kinds[shape];
      if (warning_samples.size() < 5) warning_samples.push_back(line);
    }
  }

  std::vector<CycleRecord> cycles;
  std::vector<std::string> pending_errors;
  int64_t warnings = 0;
  std::map<std::string, int64_t> warning_kinds;  // first two words -> count
  std::vector<std::string> warning_samples;
  std::vector<std::string> other_lines;
};

// ---------------------------------------------------------------------------
// The process.

pid_t Spawn(const std::string& binary, const std::vector<std::string>& args,
            const std::string& log_path) {
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(binary.c_str()));
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    int in = ::open("/dev/null", O_RDONLY);
    int out = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (in < 0 || out < 0) _exit(126);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(out, 2);
    ::execv(binary.c_str(), argv.data());
    _exit(127);
  }
  return pid;
}

int DecodeStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// Kills (SIGKILL) and reaps the child if the soak leaves early.
class Child {
 public:
  explicit Child(pid_t pid) : pid_(pid) {}
  ~Child() {
    if (running()) {
      ::kill(pid_, SIGKILL);
      Wait(absl::Seconds(10));
    }
  }
  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0 && exit_code_ == -2; }
  // The exit code (128+N for signal N), or -1 if still running after
  // `timeout`.
  int Wait(absl::Duration timeout) {
    if (!running()) return exit_code_;
    absl::Time deadline = absl::Now() + timeout;
    while (true) {
      int status = 0;
      struct rusage usage;
      pid_t got = ::wait4(pid_, &status, WNOHANG, &usage);
      if (got == pid_) {
        exit_code_ = DecodeStatus(status);
        max_rss_kib_ = usage.ru_maxrss;
        return exit_code_;
      }
      if (got < 0) {
        exit_code_ = -1;
        return exit_code_;
      }
      if (absl::Now() >= deadline) return -1;
      absl::SleepFor(absl::Milliseconds(5));
    }
  }
  bool Exited() { return Wait(absl::ZeroDuration()) != -1 || !running(); }
  int exit_code() const { return exit_code_; }
  int64_t max_rss_kib() const { return max_rss_kib_; }

 private:
  pid_t pid_;
  int exit_code_ = -2;  // -2: running
  int64_t max_rss_kib_ = 0;
};

// Samples the process's VmRSS and tails its log, in a thread of its own.
class Monitor {
 public:
  struct Sample {
    double t;  // seconds since Start
    int64_t rss_kib;
    int64_t cycles_done;
  };

  Monitor(pid_t pid, std::string log_path, std::string manifest_path, absl::Duration period)
      : pid_(pid),
        log_path_(std::move(log_path)),
        manifest_path_(std::move(manifest_path)),
        period_(period) {}

  void Start() {
    start_ = absl::Now();
    thread_ = std::thread([this] { Loop(); });
  }
  // Joins the thread after a last look at the log.
  void Stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
    Tail();
  }
  int64_t cycles() const { return cycles_done_.load(); }
  double Now() const { return absl::ToDoubleSeconds(absl::Now() - start_); }

  // Valid after Stop().
  std::vector<Sample> samples;
  std::vector<std::pair<double, int64_t>> manifest_entries;  // (t, entries)
  LogParser parser;
  int64_t hwm_kib = 0;  // VmHWM last seen

 private:
  void Loop() {
    int64_t n = 0;
    while (!stop_.load()) {
      int64_t rss = 0, hwm = 0;
      ReadStatus(&rss, &hwm);
      if (rss > 0) {
        samples.push_back(Sample{Now(), rss, cycles_done_.load()});
        window_peak_ = std::max(window_peak_, rss);
        hwm_kib = std::max(hwm_kib, hwm);
      }
      Tail();
      if (n++ % 25 == 0) CountManifest();
      absl::SleepFor(period_);
    }
  }

  void ReadStatus(int64_t* rss, int64_t* hwm) {
    std::ifstream in(absl::StrCat("/proc/", pid_, "/status"));
    std::string line;
    while (std::getline(in, line)) {
      int64_t* target = absl::StartsWith(line, "VmRSS:")   ? rss
                        : absl::StartsWith(line, "VmHWM:") ? hwm
                                                           : nullptr;
      if (target == nullptr) continue;
      std::vector<absl::string_view> words =
          absl::StrSplit(line.substr(6), ' ', absl::SkipWhitespace());
      if (!words.empty()) (void)absl::SimpleAtoi(words[0], target);
    }
  }

  void CountManifest() {
    std::ifstream in(manifest_path_, std::ios::binary);
    if (!in) return;
    int64_t lines = 0;
    char buffer[1 << 16];
    while (in.read(buffer, sizeof(buffer)) || in.gcount() > 0) {
      lines += std::count(buffer, buffer + in.gcount(), '\n');
    }
    manifest_entries.emplace_back(Now(), std::max<int64_t>(0, lines - 2));
  }

  void Tail() {
    std::ifstream in(log_path_, std::ios::binary);
    if (!in) return;
    in.seekg(offset_);
    std::string chunk((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    offset_ += static_cast<std::streamoff>(chunk.size());
    partial_ += chunk;
    size_t start = 0;
    for (size_t nl; (nl = partial_.find('\n', start)) != std::string::npos; start = nl + 1) {
      size_t before = parser.cycles.size();
      parser.Feed(partial_.substr(start, nl - start), Now());
      if (parser.cycles.size() > before) {
        parser.cycles.back().window_peak_kib = window_peak_;
        window_peak_ = 0;
        cycles_done_.store(static_cast<int64_t>(parser.cycles.size()));
      }
    }
    partial_.erase(0, start);
  }

  const pid_t pid_;
  const std::string log_path_, manifest_path_;
  const absl::Duration period_;
  absl::Time start_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> cycles_done_{0};
  std::streamoff offset_ = 0;
  std::string partial_;
  int64_t window_peak_ = 0;
};

// ---------------------------------------------------------------------------
// Judging.

class Violations {
 public:
  // One entry per key: a file seen wrong at every check counts once.
  void Add(const std::string& key, const std::string& text) {
    if (seen_.insert(key).second) list_.push_back(text);
  }
  const std::vector<std::string>& list() const { return list_; }
  size_t size() const { return list_.size(); }

 private:
  std::set<std::string> seen_;
  std::vector<std::string> list_;
};

// (b): the live mirror holds only sstables that were committed when
// copied. Anything aborted, still in flight or never committed is a
// violation, as is a transaction log or temporary file.
int64_t CheckLiveMirror(const Churner& churner, const std::string& dest, double t,
                        Violations& v) {
  int64_t files = 0;
  for (const std::string& store : churner.store_dirs()) {
    std::string dir = absl::StrCat(dest, "/", store);
    for (const std::string& name : Names(dir)) {
      std::string rel = absl::StrCat(store, "/", name);
      if (!IsRegular(absl::StrCat(dir, "/", name))) continue;
      ++files;
      if (IsTxnLogName(name) || IsTemporaryName(name)) {
        v.Add(absl::StrCat("b:", rel),
              absl::StrFormat("(b) %s is in the live mirror (t=%.1fs): transaction logs and "
                              "temporary files are never copied",
                              rel, t));
        continue;
      }
      std::string prefix = SSTablePrefix(name);
      std::string key = absl::StrCat(store, "/", prefix);
      auto it = churner.sstables().find(key);
      if (prefix.empty() || it == churner.sstables().end()) {
        v.Add(absl::StrCat("b:", rel),
              absl::StrFormat("(b) %s is in the live mirror (t=%.1fs) but is no sstable the "
                              "source ever had",
                              rel, t));
        continue;
      }
      if (it->second == Fate::kAborted || it->second == Fate::kInFlight ||
          it->second == Fate::kUncommitted) {
        v.Add(absl::StrCat("b:", key),
              absl::StrFormat("(b) %s is in the live mirror (t=%.1fs) while its sstable is %s",
                              rel, t, FateName(it->second)));
      }
    }
  }
  return files;
}

// The rel path named by an error message token, if the churner removed or
// replaced it (or a directory above it).
std::string NamedRemovedPath(const std::string& message, const std::string& data_root,
                             const std::set<std::string>& removed) {
  for (absl::string_view token : absl::StrSplit(message, absl::ByAnyChar(" \t'\"()"))) {
    token = absl::StripSuffix(token, ":");
    token = absl::StripSuffix(token, ",");
    token = absl::StripSuffix(token, ";");
    if (token.empty()) continue;
    std::string rel(token);
    if (absl::StartsWith(rel, data_root + "/")) rel = rel.substr(data_root.size() + 1);
    for (std::string p = rel; !p.empty(); p = DirName(p)) {
      if (removed.count(p)) return rel;
    }
  }
  return "";
}

// The error says its file was gone or changed under it: a race with the
// node, retried next cycle, if the file is one the churner removed or
// replaced.
bool SaysVanishedOrChanged(const std::string& message) {
  return absl::StrContains(message, "No such file or directory") ||
         absl::StrContains(message, "Stale file handle") ||
         absl::StrContains(message, "vanished") || absl::StrContains(message, "changed");
}

struct ThirdStats {
  int64_t peak = 0;
  int64_t samples = 0;
};

}  // namespace

tools::TreeSpec SoakOptions::DefaultTree() {
  tools::TreeSpec spec;
  spec.keyspaces = {"ks1", "ks2"};
  spec.tables_per_keyspace = 2;
  spec.sstables_per_table = 4;
  spec.index_dirs_per_table = 1;
  spec.snapshot_tags = {"initial-1", "initial-2"};
  spec.data_size = 32 * 1024;
  return spec;
}

SoakSummary RunSoak(const SoakOptions& options, std::ostream& out) {
  SoakSummary summary;
  Violations v;
  auto finish = [&](const std::string& why) {
    if (!why.empty()) out << "soak: cannot run: " << why << "\n";
    summary.passed = false;
    summary.final_line = absl::StrCat("soak: ", absl::FormatDuration(options.duration), ", ",
                                      summary.cycles, " cycles, ", summary.failed, " failed, ",
                                      std::max<int64_t>(1, summary.violations),
                                      " violations, peak RSS ", summary.peak_rss_kib, " KiB");
    out << summary.final_line << "\n";
    return summary;
  };

  // The binary, the work directory and the tree.
  char resolved[PATH_MAX];
  if (::realpath(options.binary.c_str(), resolved) == nullptr ||
      ::access(resolved, X_OK) != 0) {
    return finish(absl::StrCat("no executable snaphaven at ", options.binary,
                               " (bazel build //snaphaven, or pass --binary)"));
  }
  const std::string binary = resolved;
  std::string workdir = options.workdir;
  if (workdir.empty()) {
    std::string templ = "/tmp/soak_XXXXXX";
    if (::mkdtemp(templ.data()) == nullptr) return finish("mkdtemp failed");
    workdir = templ;
  } else {
    ::mkdir(workdir.c_str(), 0755);
    if (::realpath(workdir.c_str(), resolved) == nullptr) {
      return finish(absl::StrCat("cannot create ", workdir));
    }
    workdir = resolved;
  }
  const std::string data_root = absl::StrCat(workdir, "/cassandra/data");
  const std::string dest = absl::StrCat(workdir, "/backup");
  const std::string log_path = absl::StrCat(workdir, "/snaphaven.log");
  const std::string final_log_path = absl::StrCat(workdir, "/snaphaven-final.log");
  if (IsDir(data_root) || IsDir(dest)) {
    return finish(absl::StrCat(workdir, " holds an earlier run; give a new --workdir"));
  }
  tools::TreeSpec tree = options.tree;
  tree.seed = options.seed;
  if (absl::Status s = tools::GenerateTree(data_root, tree); !s.ok()) {
    return finish(absl::StrCat("generating the tree: ", s.ToString()));
  }
  ChurnOptions churn_options = options.churn;
  churn_options.data_root = data_root;
  churn_options.keyspaces = tree.keyspaces;
  churn_options.seed = options.seed;
  churn_options.journal_path = absl::StrCat(workdir, "/churn.log");
  absl::StatusOr<std::unique_ptr<Churner>> created = Churner::Create(churn_options);
  if (!created.ok()) return finish(created.status().ToString());
  Churner& churner = **created;

  std::vector<std::string> args = {"-d", data_root, "-s", dest};
  std::vector<std::string> flags = {"--move-snapshots", "--sync-sstables", "--sync_backups",
                                    absl::StrCat("--settle_time=",
                                                 absl::FormatDuration(options.settle_time)),
                                    "--prune_after=1h", "-v", "0"};
  args.insert(args.end(), flags.begin(), flags.end());
  args.insert(args.end(), tree.keyspaces.begin(), tree.keyspaces.end());
  std::vector<std::string> loop_args = args;
  loop_args.insert(loop_args.begin() + 4,
                   {"--interval", absl::FormatDuration(options.interval)});
  out << "soak: workdir " << workdir << ", seed " << options.seed << ", churn "
      << absl::FormatDuration(options.duration) << "\n"
      << "soak: " << binary << " " << absl::StrJoin(loop_args, " ") << "\n";
  out.flush();

  // Run.
  Child child(Spawn(binary, loop_args, log_path));
  if (child.pid() <= 0) return finish("fork failed");
  Monitor monitor(child.pid(), log_path, absl::StrCat(dest, "/.snaphaven/manifest"),
                  options.sample_every);
  monitor.Start();
  const absl::Time started = absl::Now();
  const absl::Time deadline = started + options.duration;
  absl::Time next_check = started;
  int64_t live_checks = 0;
  std::string harness_error;
  bool died = false;
  while (absl::Now() < deadline) {
    if (absl::Status s = churner.Step(); !s.ok()) {
      harness_error = absl::StrCat("churn step failed: ", s.ToString());
      break;
    }
    if (absl::Now() >= next_check) {
      CheckLiveMirror(churner, dest, monitor.Now(), v);
      ++live_checks;
      next_check = absl::Now() + options.check_every;
      if (child.Exited()) {
        died = true;
        break;
      }
    }
  }
  const double churn_end = monitor.Now();
  const absl::Duration churned = absl::Now() - started;
  if (harness_error.empty()) {
    absl::Status s = churner.Drain();
    if (s.ok()) s = churner.LeaveUncommittedFlush();
    if (!s.ok()) harness_error = absl::StrCat("ending the churn: ", s.ToString());
  }
  CheckLiveMirror(churner, dest, monitor.Now(), v);
  ++live_checks;

  // A few more cycles once everything settled, then SIGTERM.
  int loop_exit = -1;
  int64_t cycles_at_stop = monitor.cycles();
  bool caught_up = false;
  if (!died) {
    absl::SleepFor(options.settle_time + absl::Milliseconds(500));
    const int64_t from = monitor.cycles();
    const absl::Time wait_until =
        absl::Now() + std::max(absl::Seconds(60), options.interval * (options.final_cycles * 4));
    while (absl::Now() < wait_until && !child.Exited()) {
      if (monitor.cycles() >= from + options.final_cycles) {
        caught_up = true;
        break;
      }
      CheckLiveMirror(churner, dest, monitor.Now(), v);
      ++live_checks;
      absl::SleepFor(options.check_every);
    }
    if (!child.Exited()) {
      ::kill(child.pid(), SIGTERM);
      loop_exit = child.Wait(absl::Seconds(60));
      if (loop_exit == -1) {
        v.Add("sigterm", "snaphaven did not exit within 60 s of SIGTERM (killed)");
        ::kill(child.pid(), SIGKILL);
        loop_exit = child.Wait(absl::Seconds(10));
      }
    } else {
      died = true;
      loop_exit = child.exit_code();
    }
  } else {
    loop_exit = child.exit_code();
  }
  monitor.Stop();
  if (died) {
    v.Add("died", absl::StrCat("snaphaven exited by itself during the run (exit ", loop_exit,
                               "); see ", log_path));
  } else if (loop_exit != 0) {
    v.Add("exit", absl::StrCat("snaphaven exited ", loop_exit, " after SIGTERM (want 0)"));
  }
  if (!caught_up && !died) {
    v.Add("catchup", absl::StrCat("snaphaven ran fewer than ", options.final_cycles,
                                  " cycles after the churn stopped"));
  }

  // The final one-shot cycle with the same flags.
  std::vector<std::string> final_args = args;
  final_args.insert(final_args.begin() + 4, {"--interval", "0"});
  Child final_child(Spawn(binary, final_args, final_log_path));
  int final_exit = final_child.Wait(absl::Minutes(10));
  if (final_exit == -1) v.Add("final-timeout", "the final one-shot cycle ran over 10 minutes");
  LogParser& parser = monitor.parser;
  {
    std::ifstream in(final_log_path);
    std::string line;
    size_t before = parser.cycles.size();
    while (std::getline(in, line)) parser.Feed(line, monitor.Now());
    if (parser.cycles.size() > before) {
      parser.cycles.back().final_one_shot = true;
      parser.cycles.back().window_peak_kib = final_child.max_rss_kib();
    } else {
      v.Add("final-summary", "the final one-shot cycle printed no summary line");
    }
  }
  if (final_exit != 0 && final_exit != -1) {
    v.Add("final-exit", absl::StrCat("the final one-shot cycle exited ", final_exit));
  }

  // (a) Failed cycles.
  std::vector<std::string> failure_notes;
  int64_t failed = 0, excused = 0;
  for (const CycleRecord& c : parser.cycles) {
    if (!c.Failed()) continue;
    std::vector<std::string> messages = c.errors;
    if (c.kind == "failed") messages.push_back(c.summary);  // the fatal reason is on it
    bool transient = !messages.empty() && !absl::StrContains(c.summary, "out of space");
    std::vector<std::string> why;
    for (const std::string& m : messages) {
      std::string named = NamedRemovedPath(m, data_root, churner.removed_paths());
      bool ok = SaysVanishedOrChanged(m) && !named.empty();
      transient &= ok;
      why.push_back(absl::StrCat("    ", ok ? "[transient: churn removed " + named + "] "
                                            : "[NOT transient] ",
                                 m));
    }
    if (messages.empty()) why.push_back("    [NOT transient] no error line names a file");
    (transient ? excused : failed) += 1;
    failure_notes.push_back(absl::StrCat("  cycle ", c.index, c.final_one_shot ? " (final)" : "",
                                         transient ? " failed, excused:" : " FAILED:", "\n    ",
                                         c.summary, "\n", absl::StrJoin(why, "\n")));
  }
  for (const std::string& line : parser.pending_errors) {
    failure_notes.push_back(absl::StrCat("  error after the last summary: ", line));
  }

  // (b) once more, then (c): the destination against the final source.
  int64_t live_files = CheckLiveMirror(churner, dest, monitor.Now(), v);
  ++live_checks;
  std::vector<std::string> dest_files;
  WalkFiles(dest, "", dest_files, {".snaphaven"});
  std::set<std::string> dest_set(dest_files.begin(), dest_files.end());
  int64_t live_sstables_ok = 0, live_sstables_skipped = 0;
  // Live: every complete, committed sstable at the source is at the
  // destination with the same bytes, mode and mtime.
  for (const std::string& store : churner.store_dirs()) {
    std::string dir = absl::StrCat(data_root, "/", store);
    std::map<std::string, std::vector<std::string>> by_prefix;
    for (const std::string& name : Names(dir)) {
      if (!IsRegular(absl::StrCat(dir, "/", name))) continue;
      std::string prefix = SSTablePrefix(name);
      if (!prefix.empty()) by_prefix[prefix].push_back(name);
    }
    for (const auto& [prefix, names] : by_prefix) {
      std::string key = absl::StrCat(store, "/", prefix);
      auto fate = churner.sstables().find(key);
      if (fate == churner.sstables().end() || fate->second != Fate::kLive) {
        ++live_sstables_skipped;  // the uncommitted detector
        continue;
      }
      std::optional<FileRec> toc = ReadRec(absl::StrCat(dir, "/", prefix, "-TOC.txt"));
      bool complete = toc.has_value();
      if (complete) {
        for (absl::string_view c : absl::StrSplit(toc->contents, '\n', absl::SkipEmpty())) {
          complete &= IsRegular(absl::StrCat(dir, "/", prefix, "-", c));
        }
      }
      if (!complete) {
        v.Add(absl::StrCat("c:incomplete:", key),
              absl::StrCat("(c) harness: live sstable ", key, " is incomplete at the source"));
        continue;
      }
      bool ok = true;
      for (const std::string& name : names) {
        std::string rel = absl::StrCat(store, "/", name);
        std::optional<FileRec> want = ReadRec(absl::StrCat(data_root, "/", rel));
        std::optional<FileRec> got = ReadRec(absl::StrCat(dest, "/", rel));
        if (!want) continue;
        if (!got) {
          ok = false;
          v.Add(absl::StrCat("c:", rel),
                absl::StrCat("(c) live ", rel, " (committed, complete) is missing at the "
                             "destination"));
        } else if (std::string d = Difference(*want, *got); !d.empty()) {
          ok = false;
          v.Add(absl::StrCat("c:", rel), absl::StrCat("(c) live ", rel, " differs: ", d));
        }
      }
      live_sstables_ok += ok;
    }
  }
  // Every live-mirror file holds bytes its name had at the source.
  int64_t live_extra = 0;
  for (const std::string& rel : dest_files) {
    if (Classify(rel) != DestKind::kLive || SSTablePrefix(BaseName(rel)).empty()) continue;
    if (!IsRegular(absl::StrCat(data_root, "/", rel))) ++live_extra;  // compacted away
    auto versions = churner.live_versions().find(rel);
    std::optional<FileRec> got = ReadRec(absl::StrCat(dest, "/", rel));
    if (!got) continue;
    FileSig sig = SigOf(*got);
    if (versions == churner.live_versions().end() ||
        std::find(versions->second.begin(), versions->second.end(), sig) ==
            versions->second.end()) {
      v.Add(absl::StrCat("c:", rel),
            absl::StrCat("(c) live-mirror ", rel, " holds bytes its source never had"));
    }
  }
  // Snapshots.
  int64_t snapshots_at_source = 0, snapshots_moved = 0, snapshots_cleared = 0;
  std::set<std::string> recorded_snapshot_files;
  for (const auto& [unit_rel, unit] : churner.snapshots()) {
    for (const auto& [rel, sig] : unit.files) recorded_snapshot_files.insert(rel);
    std::string source_unit = absl::StrCat(data_root, "/", unit_rel);
    if (IsDir(source_unit)) {
      ++snapshots_at_source;
      std::vector<std::string> files;
      WalkFiles(data_root, unit_rel, files);
      for (const std::string& rel : files) {
        std::optional<FileRec> want = ReadRec(absl::StrCat(data_root, "/", rel));
        std::optional<FileRec> got = ReadRec(absl::StrCat(dest, "/", rel));
        if (!want) continue;
        if (!got) {
          v.Add(absl::StrCat("c:", rel),
                absl::StrCat("(c) snapshot file ", rel, " (still at the source) is missing at "
                             "the destination"));
        } else if (std::string d = Difference(*want, *got); !d.empty()) {
          v.Add(absl::StrCat("c:", rel), absl::StrCat("(c) snapshot file ", rel, " differs: ", d));
        }
      }
    }
    // Files gone from the source: moved, unless the churner cleared them.
    const bool must_be_whole = !unit.cleared;
    if (!IsDir(source_unit)) ++(unit.cleared ? snapshots_cleared : snapshots_moved);
    for (const auto& [rel, sig] : unit.files) {
      if (IsRegular(absl::StrCat(data_root, "/", rel))) continue;
      std::optional<FileRec> got = ReadRec(absl::StrCat(dest, "/", rel));
      if (!got) {
        if (must_be_whole) {
          v.Add(absl::StrCat("c:", rel),
                absl::StrCat("(c) ", rel, " of snapshot ", unit_rel,
                             " is gone from the source (moved) but missing at the destination"));
        }
      } else if (!(SigOf(*got) == sig)) {
        v.Add(absl::StrCat("c:", rel),
              absl::StrCat("(c) snapshot file ", rel, " at the destination is not what the "
                           "snapshot held"));
      }
    }
    // A moved snapshot is complete at the destination: everything its
    // manifest.json lists, and every component of those sstables' TOC.txt.
    if (must_be_whole && !IsDir(source_unit)) {
      std::optional<FileRec> manifest =
          ReadRec(absl::StrCat(dest, "/", unit_rel, "/manifest.json"));
      if (!manifest) {
        v.Add(absl::StrCat("c:manifest:", unit_rel),
              absl::StrCat("(c) moved snapshot ", unit_rel, " has no manifest.json at the "
                           "destination"));
        continue;
      }
      nlohmann::json json = nlohmann::json::parse(manifest->contents, nullptr, false);
      if (json.is_discarded() || !json.contains("files") || !json["files"].is_array()) {
        v.Add(absl::StrCat("c:manifest:", unit_rel),
              absl::StrCat("(c) moved snapshot ", unit_rel, ": manifest.json does not parse"));
        continue;
      }
      for (const auto& f : json["files"]) {
        if (!f.is_string()) continue;
        std::string data = absl::StrCat(unit_rel, "/", f.get<std::string>());
        std::string prefix = absl::StrCat(DirName(data), "/", SSTablePrefix(BaseName(data)));
        std::optional<FileRec> toc = ReadRec(absl::StrCat(dest, "/", prefix, "-TOC.txt"));
        if (!dest_set.count(data) || !toc) {
          v.Add(absl::StrCat("c:", data),
                absl::StrCat("(c) moved snapshot ", unit_rel, " lacks ", data,
                             toc ? "" : " (or its TOC.txt)", " at the destination"));
          continue;
        }
        for (absl::string_view c : absl::StrSplit(toc->contents, '\n', absl::SkipEmpty())) {
          std::string component = absl::StrCat(prefix, "-", c);
          if (!dest_set.count(component)) {
            v.Add(absl::StrCat("c:", component),
                  absl::StrCat("(c) moved snapshot ", unit_rel, " lacks ", component,
                               " at the destination"));
          }
        }
      }
    }
  }
  // Backups: each one linked is at the destination with its bytes, and one
  // still at the source is there identically.
  int64_t backups_at_source = 0, backups_moved = 0;
  for (const auto& [rel, sig] : churner.backups()) {
    std::optional<FileRec> want = ReadRec(absl::StrCat(data_root, "/", rel));
    std::optional<FileRec> got = ReadRec(absl::StrCat(dest, "/", rel));
    ++(want ? backups_at_source : backups_moved);
    if (!got) {
      v.Add(absl::StrCat("c:", rel),
            absl::StrCat("(c) backup ", rel, want ? " (still at the source)" : " (moved)",
                         " is missing at the destination"));
    } else if (want) {
      if (std::string d = Difference(*want, *got); !d.empty()) {
        v.Add(absl::StrCat("c:", rel), absl::StrCat("(c) backup ", rel, " differs: ", d));
      }
    } else if (!(SigOf(*got) == sig)) {
      v.Add(absl::StrCat("c:", rel),
            absl::StrCat("(c) backup ", rel, " at the destination is not what was linked"));
    }
  }
  // Nothing at the destination that the source never had.
  for (const std::string& rel : dest_files) {
    DestKind kind = Classify(rel);
    if (kind == DestKind::kSnapshot && !recorded_snapshot_files.count(rel)) {
      v.Add(absl::StrCat("c:", rel),
            absl::StrCat("(c) ", rel, " is at the destination but in no snapshot taken"));
    } else if (kind == DestKind::kBackup && !churner.backups().count(rel)) {
      v.Add(absl::StrCat("c:", rel),
            absl::StrCat("(c) ", rel, " is at the destination but was never a backup"));
    } else if (kind == DestKind::kOther) {
      v.Add(absl::StrCat("c:", rel), absl::StrCat("(c) unexpected file ", rel,
                                                  " at the destination"));
    }
  }
  std::vector<std::string> leftovers;
  WalkFiles(absl::StrCat(dest, "/.snaphaven"), "tmp", leftovers);
  if (!leftovers.empty()) {
    v.Add("c:tmp", absl::StrCat("(c) ", leftovers.size(), " temporary files left in ", dest,
                                "/.snaphaven/tmp"));
  }

  // (d) Memory: the last third against the first third of the churn.
  ThirdStats thirds[3];
  for (const Monitor::Sample& s : monitor.samples) {
    if (s.t > churn_end) continue;
    int third = std::min(2, static_cast<int>(3 * s.t / std::max(churn_end, 1e-9)));
    thirds[third].peak = std::max(thirds[third].peak, s.rss_kib);
    ++thirds[third].samples;
  }
  const int64_t limit_kib = thirds[0].peak + thirds[0].peak / 2 + 2048;
  bool memory_checked = thirds[0].samples > 0 && thirds[2].samples > 0;
  if (memory_checked && thirds[2].peak > limit_kib) {
    v.Add("d", absl::StrCat("(d) memory grew: peak RSS ", thirds[2].peak,
                            " KiB in the last third > ", limit_kib,
                            " KiB (1.5 x first third's ", thirds[0].peak, " KiB + 2 MiB)"));
  }
  int64_t peak_sampled = 0;
  for (const Monitor::Sample& s : monitor.samples) peak_sampled = std::max(peak_sampled, s.rss_kib);
  if (!harness_error.empty()) v.Add("harness", absl::StrCat("harness: ", harness_error));

  // Report.
  {
    std::ofstream tsv(absl::StrCat(workdir, "/rss.tsv"));
    tsv << "cycle\tseen_at_s\tpeak_rss_kib\tsummary\n";
    for (const CycleRecord& c : parser.cycles) {
      tsv << c.index << (c.final_one_shot ? " (final)" : "") << "\t"
          << absl::StrFormat("%.1f", c.seen_at) << "\t" << c.window_peak_kib << "\t"
          << c.summary << "\n";
    }
  }
  const ChurnStats& cs = churner.stats();
  int64_t aborted = 0, uncommitted = 0;
  for (const auto& [key, fate] : churner.sstables()) {
    aborted += fate == Fate::kAborted;
    uncommitted += fate == Fate::kUncommitted;
  }
  std::map<std::string, int64_t> totals;
  for (const CycleRecord& c : parser.cycles) {
    for (const auto& [what, n] : c.counts) {
      if (what != "scanned" && what != "unchanged") totals[what] += n;
    }
  }
  int64_t loop_cycles = static_cast<int64_t>(parser.cycles.size()) -
                        (parser.cycles.empty() || !parser.cycles.back().final_one_shot ? 0 : 1);
  out << absl::StrFormat(
      "churn: %s, %d steps: %d flushes committed, %d aborted; %d compactions committed, "
      "%d aborted; %d Statistics.db rewrites; %d snapshots taken, %d cleared at the source, "
      "%d clears found them moved already; %d sstables hard-linked into backups/\n",
      Seconds(churned), cs.steps, cs.flushes_committed, cs.flushes_aborted,
      cs.compactions_committed, cs.compactions_aborted, cs.stats_rewrites, cs.snapshots_taken,
      cs.snapshots_cleared, cs.snapshot_clears_gone, cs.backups_linked);
  std::vector<std::string> total_parts;
  for (const auto& [what, n] : totals) total_parts.push_back(absl::StrCat(n, " ", what));
  out << "snaphaven: " << loop_cycles << " cycles in the loop (" << cycles_at_stop
      << " during the churn), exit " << loop_exit << " after SIGTERM; final one-shot exit "
      << final_exit << "; totals: " << absl::StrJoin(total_parts, ", ") << "; "
      << parser.warnings << " warnings";
  if (!parser.warning_kinds.empty()) {
    std::vector<std::string> kinds;
    for (const auto& [k, n] : parser.warning_kinds) kinds.push_back(absl::StrCat(n, "x \"", k, "\""));
    out << " (" << absl::StrJoin(kinds, ", ") << ")";
  }
  out << "\n";
  if (!parser.cycles.empty() && parser.cycles.back().final_one_shot) {
    out << "  final: " << parser.cycles.back().summary << "\n";
  }
  for (const std::string& line : parser.other_lines) out << "  other output: " << line << "\n";
  out << "(a) failed cycles: " << failed << " not transient, " << excused
      << " excused as transient\n";
  for (size_t i = 0; i < failure_notes.size(); ++i) {
    if (i == 20) {
      out << "  ... and " << failure_notes.size() - 20 << " more (see " << log_path << ")\n";
      break;
    }
    out << failure_notes[i] << "\n";
  }
  out << "(b) live mirror checked " << live_checks << " times against " << aborted
      << " aborted and " << uncommitted << " never-committed sstables (and every in-flight "
      << "one at each check); " << live_files << " live-mirror files at the end\n";
  out << "(c) destination: " << live_sstables_ok << " live sstables identical (" << live_extra
      << " live-mirror files of sstables compacted away, kept until --prune_after; "
      << live_sstables_skipped << " uncommitted at the source, not copied); "
      << snapshots_at_source << " table snapshots at the source, " << snapshots_moved
      << " moved away (checked complete), " << snapshots_cleared << " cleared by the churn; "
      << backups_at_source << " backup files at the source, " << backups_moved
      << " moved; " << dest_files.size() << " files in all\n";
  out << "(d) memory: peak VmRSS by third of the churn: " << thirds[0].peak << " / "
      << thirds[1].peak << " / " << thirds[2].peak << " KiB (limit for the last third "
      << limit_kib << " KiB)" << (memory_checked ? "" : " [too few samples: not checked]")
      << "; VmHWM " << monitor.hwm_kib << " KiB";
  if (!monitor.manifest_entries.empty()) {
    auto entries_at = [&](double t) {
      int64_t n = 0;
      for (const auto& [when, count] : monitor.manifest_entries) {
        if (when <= t) n = count;
      }
      return n;
    };
    out << "; destination manifest entries at 1/3, 2/3, end of churn: "
        << entries_at(churn_end / 3) << ", " << entries_at(2 * churn_end / 3) << ", "
        << entries_at(churn_end);
  }
  out << "\n";
  // Per-cycle window peaks, about a dozen of them; all in rss.tsv.
  if (!parser.cycles.empty()) {
    size_t step = std::max<size_t>(1, parser.cycles.size() / 12);
    std::vector<std::string> peaks;
    for (size_t i = 0; i < parser.cycles.size(); i += step) {
      peaks.push_back(absl::StrCat("#", parser.cycles[i].index, "@",
                                   absl::StrFormat("%.0fs", parser.cycles[i].seen_at), "=",
                                   parser.cycles[i].window_peak_kib));
    }
    const CycleRecord& last = parser.cycles.back();
    if ((parser.cycles.size() - 1) % step != 0) {
      peaks.push_back(absl::StrCat("#", last.index, last.final_one_shot ? "(final)" : "", "=",
                                   last.window_peak_kib));
    }
    out << "    peak RSS per cycle window (KiB): " << absl::StrJoin(peaks, " ") << "\n"
        << "    all cycles: " << workdir << "/rss.tsv; snaphaven's log: " << log_path
        << "; churn journal: " << workdir << "/churn.log\n";
  }
  if (v.size() > 0) {
    out << "violations:\n";
    size_t shown = 0;
    for (const std::string& text : v.list()) {
      if (++shown > 40) {
        out << "  ... and " << v.size() - 40 << " more\n";
        break;
      }
      out << "  " << text << "\n";
    }
  }

  summary.cycles = static_cast<int64_t>(parser.cycles.size());
  summary.failed = failed;
  summary.violations = static_cast<int64_t>(v.size());
  summary.peak_rss_kib = std::max<int64_t>({peak_sampled, monitor.hwm_kib, child.max_rss_kib()});
  summary.passed = failed == 0 && v.size() == 0;
  summary.final_line = absl::StrCat("soak: ", absl::FormatDuration(options.duration), ", ",
                                    summary.cycles, " cycles, ", summary.failed, " failed, ",
                                    summary.violations, " violations, peak RSS ",
                                    summary.peak_rss_kib, " KiB");
  out << summary.final_line << "\n";
  out.flush();
  return summary;
}

}  // namespace snaphaven::soak
