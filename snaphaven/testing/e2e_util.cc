#include "snaphaven/testing/e2e_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace snaphaven::testing {
namespace {

[[noreturn]] void Die(const std::string& message) {
  fprintf(stderr, "e2e_util: %s: %s\n", message.c_str(), strerror(errno));
  abort();
}

std::vector<char*> Argv(const std::string& binary, const std::vector<std::string>& args) {
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(binary.c_str()));
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  return argv;
}

// In a sanitizer build (.bazelrc asan, tsan) the binary is sanitized too: a
// report in the stderr of a program started here fails the test when it is
// reaped. (ASan and TSan also write theirs where tools/test.sh collects them;
// gcc's UBSan writes to stderr only.)
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

std::mutex started_mu;
std::map<pid_t, std::string>& StderrOfStarted() {
  static auto* const paths = new std::map<pid_t, std::string>;
  return *paths;
}

void ExpectNoSanitizerReport(pid_t pid) {
  if (!kSanitized) return;
  std::string path;
  {
    std::lock_guard<std::mutex> lock(started_mu);
    auto it = StderrOfStarted().find(pid);
    if (it == StderrOfStarted().end()) return;
    path = it->second;
    StderrOfStarted().erase(it);
  }
  const std::string err = ReadFileIfExists(path);
  for (const char* marker : {"runtime error:", "ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                             "WARNING: ThreadSanitizer"}) {
    const size_t at = err.find(marker);
    if (at != std::string::npos) {
      ADD_FAILURE() << "sanitizer report from pid " << pid << " in " << path << ":\n"
                    << err.substr(at > 200 ? at - 200 : 0, 4000);
      return;
    }
  }
}

int DecodeStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

void ReadTreeInto(const std::string& root, const std::string& rel,
                  const std::vector<std::string>& skip,
                  std::map<std::string, FileRecord>& out) {
  std::string dir = rel.empty() ? root : root + "/" + rel;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return;
  std::vector<std::string> names;
  while (struct dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    if (rel.empty() && std::find(skip.begin(), skip.end(), name) != skip.end()) continue;
    names.push_back(name);
  }
  closedir(d);
  for (const std::string& name : names) {
    std::string child = rel.empty() ? name : rel + "/" + name;
    std::string path = root + "/" + child;
    struct stat st;
    if (lstat(path.c_str(), &st) != 0) continue;
    FileRecord r;
    r.size = st.st_size;
    r.mode = st.st_mode & 07777;
    r.mtime_ns = int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
    r.ino = st.st_ino;
    r.nlink = st.st_nlink;
    if (S_ISREG(st.st_mode)) {
      r.type = 'f';
      r.contents = ReadFileOrDie(path);
    } else if (S_ISDIR(st.st_mode)) {
      r.type = 'd';
      r.size = 0;
      r.mtime_ns = 0;  // directory mtimes are not mirrored
      ReadTreeInto(root, child, {}, out);
    } else if (S_ISLNK(st.st_mode)) {
      r.type = 'l';
    } else {
      r.type = 'o';
    }
    out[child] = std::move(r);
  }
}

}  // namespace

std::string SnaphavenBinary() {
  // Bazel runs tests from the runfiles tree of this workspace.
  for (const char* candidate : {"snaphaven/snaphaven", "bazel-bin/snaphaven/snaphaven"}) {
    if (access(candidate, X_OK) == 0) {
      char resolved[PATH_MAX];
      if (realpath(candidate, resolved) != nullptr) return resolved;
    }
  }
  Die("cannot find the snaphaven binary in the runfiles");
}

pid_t StartProgram(const std::string& binary, const std::vector<std::string>& args,
                   const std::string& out_path, const std::string& err_path) {
  // Everything the child needs is prepared before fork: after it, only
  // async-signal-safe calls.
  std::vector<char*> argv = Argv(binary, args);
  const int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  const int err = err_path == out_path
                      ? out
                      : open(err_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (out < 0 || err < 0) Die("open " + out_path + " / " + err_path);
  pid_t pid = fork();
  if (pid < 0) Die("fork");
  if (pid == 0) {
    const int in = open("/dev/null", O_RDONLY);
    if (in < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) _exit(127);
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
  close(out);
  if (err != out) close(err);
  if (kSanitized) {
    std::lock_guard<std::mutex> lock(started_mu);
    StderrOfStarted()[pid] = err_path;
  }
  return pid;
}

RunResult RunSnaphaven(const std::vector<std::string>& args, absl::Duration timeout) {
  std::string dir = MakeTempDir("run");
  std::string out_path = dir + "/out", err_path = dir + "/err";
  pid_t pid = StartProgram(SnaphavenBinary(), args, out_path, err_path);
  RunResult result;
  result.exit_code = WaitForExit(pid, timeout);
  if (result.exit_code == -1) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
  result.out = ReadFileIfExists(out_path);
  result.err = ReadFileIfExists(err_path);
  return result;
}

pid_t StartSnaphaven(const std::vector<std::string>& args, const std::string& log_path) {
  return StartProgram(SnaphavenBinary(), args, log_path, log_path);
}

int WaitForExit(pid_t pid, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    int status = 0;
    pid_t got = waitpid(pid, &status, WNOHANG);
    if (got == pid) {
      ExpectNoSanitizerReport(pid);
      return DecodeStatus(status);
    }
    if (got < 0) return -1;
    if (absl::Now() > deadline) return -1;
    absl::SleepFor(absl::Milliseconds(5));
  }
}

std::vector<int64_t> FilesBeingWritten(pid_t pid, const std::string& dir) {
  std::vector<int64_t> sizes;
  const std::string fds = absl::StrCat("/proc/", pid, "/fd");
  DIR* listing = opendir(fds.c_str());
  if (listing == nullptr) return sizes;
  while (struct dirent* entry = readdir(listing)) {
    const std::string fd = absl::StrCat(fds, "/", entry->d_name);
    char target[PATH_MAX];
    ssize_t n = readlink(fd.c_str(), target, sizeof(target) - 1);
    if (n <= 0) continue;
    target[n] = '\0';
    if (!absl::StartsWith(target, dir + "/")) continue;
    // stat(2) of the fd's link reaches the open file, unlinked or not.
    struct stat st;
    if (stat(fd.c_str(), &st) == 0 && S_ISREG(st.st_mode)) sizes.push_back(st.st_size);
  }
  closedir(listing);
  return sizes;
}

bool WaitUntil(const std::function<bool()>& condition, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (condition()) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return condition();
}

std::map<std::string, FileRecord> ReadTree(const std::string& root,
                                           const std::vector<std::string>& skip) {
  std::map<std::string, FileRecord> out;
  ReadTreeInto(root, "", skip, out);
  return out;
}

std::map<std::string, FileRecord> SnapshotFiles(const std::string& data_root) {
  std::map<std::string, FileRecord> out;
  for (auto& [path, record] : ReadTree(data_root)) {
    std::vector<std::string> parts = absl::StrSplit(path, '/');
    if (record.type == 'f' && parts.size() >= 5 && parts[2] == "snapshots") {
      out[path] = record;
    }
  }
  return out;
}

StoredManifest DestinationManifest(const std::string& destination) {
  // The base and its log, as the binary reads them.
  absl::StatusOr<StoredManifest> manifest =
      StoredManifest::Load(*DefaultFileSystem(), destination + "/.snaphaven/manifest");
  EXPECT_TRUE(manifest.ok()) << manifest.status();
  return manifest.ok() ? *std::move(manifest) : StoredManifest();
}

std::map<std::string, FileRecord> LiveFiles(const std::string& data_root) {
  std::map<std::string, FileRecord> out;
  for (auto& [path, record] : ReadTree(data_root)) {
    std::vector<std::string> parts = absl::StrSplit(path, '/');
    if (record.type == 'f' && parts.size() >= 3 && parts[2] != "snapshots" &&
        parts[2] != "backups") {
      out[path] = record;
    }
  }
  return out;
}

std::map<std::string, FileRecord> DestinationFiles(const std::string& destination) {
  std::map<std::string, FileRecord> out;
  for (auto& [path, record] : ReadTree(destination, {".snaphaven"})) {
    if (record.type != 'd') out[path] = record;
  }
  return out;
}

std::string DiffTrees(const std::map<std::string, FileRecord>& want,
                      const std::map<std::string, FileRecord>& got) {
  std::string diff;
  for (const auto& [path, record] : want) {
    auto it = got.find(path);
    if (it == got.end()) {
      absl::StrAppend(&diff, "missing: ", path, "\n");
    } else if (!(it->second == record)) {
      absl::StrAppend(&diff, "differs: ", path, " (size ", record.size, " vs ", it->second.size,
                      ", mode ", absl::Hex(record.mode), " vs ", absl::Hex(it->second.mode),
                      ", mtime ", record.mtime_ns, " vs ", it->second.mtime_ns, ")\n");
    }
  }
  for (const auto& [path, record] : got) {
    if (!want.count(path)) absl::StrAppend(&diff, "extra: ", path, "\n");
  }
  return diff;
}

std::string ReadFileOrDie(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Die("open " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void FlipByte(const std::string& path, int64_t at) {
  std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
  if (!file) Die("open " + path);
  file.seekg(at);
  char c = 0;
  file.get(c);
  file.seekp(at);
  file.put(static_cast<char>(c ^ 0x5a));
}

void FlipByteKeepingMtime(const std::string& path, int64_t at) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) Die("stat " + path);
  FlipByte(path, at);
  struct timespec times[2] = {st.st_atim, st.st_mtim};
  if (utimensat(AT_FDCWD, path.c_str(), times, 0) != 0) Die("utimensat " + path);
}

std::string ReadFileIfExists(const std::string& path) {
  if (access(path.c_str(), F_OK) != 0) return "";
  return ReadFileOrDie(path);
}

void WriteFileOrDie(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) Die("create " + path);
  out << contents;
}

std::map<std::string, FileRecord> FilesContaining(const std::map<std::string, FileRecord>& files,
                                                  const std::string& infix) {
  std::map<std::string, FileRecord> out;
  for (const auto& [path, record] : files) {
    if (absl::StrContains(path, infix)) out[path] = record;
  }
  return out;
}

std::string RealSSTablesDir() {
  if (const char* env = std::getenv("SNAPHAVEN_REAL_SSTABLES")) return env;
  return SharedFixturesDir("real-sstables");
}

std::string CassandraTestDataDir() {
  if (const char* env = std::getenv("SNAPHAVEN_CASSANDRA_TEST_DATA")) return env;
  return SharedFixturesDir("cassandra-test-data");
}

std::vector<std::string> FindSSTables(const std::string& root) {
  std::vector<std::string> out;
  for (const auto& [path, record] : ReadTree(root)) {
    if (record.type == 'f' && absl::EndsWith(path, "-Data.db")) {
      out.push_back(root + "/" + path.substr(0, path.size() - strlen("-Data.db")));
    }
  }
  return out;
}

int64_t SummaryCount(const std::string& output, const std::string& what) {
  // The last summary line ("cycle done: N scanned, ..." or "dry run done: ...").
  size_t scanned_at = output.rfind(" scanned, ");
  if (scanned_at == std::string::npos) return -1;
  size_t line_at = output.rfind('\n', scanned_at);
  line_at = line_at == std::string::npos ? 0 : line_at + 1;
  std::string line = output.substr(line_at, output.find('\n', line_at) - line_at);
  for (absl::string_view part : absl::StrSplit(line, absl::ByAnyChar(",:"))) {
    part = absl::StripAsciiWhitespace(part);
    std::vector<absl::string_view> words = absl::StrSplit(part, ' ');
    int64_t n = 0;
    if (words.size() == 2 && words[1] == what && absl::SimpleAtoi(words[0], &n)) return n;
  }
  return -1;
}

}  // namespace snaphaven::testing
