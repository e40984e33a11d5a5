// A deliberately broken stand-in for snaphaven, for crash_trials_test: it
// writes snapshot files straight to their final names, first the front half
// of every file, then the rest of each. From its first write to its last, some
// file is partial under its final name, so nearly every kill -9 leaves one.
// The crash trials must notice; if they do not, their zero for snaphaven
// means nothing.
//
//   non_atomic_copier -d DATA_ROOT -s DEST [other flags ignored] keyspace...
//
// Copy mode only: it never deletes, and writes no .snaphaven state.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "snaphaven/testing/e2e_util.h"

namespace {

namespace fs = std::filesystem;

// Slows each step so the run lasts long enough for the kills to spread
// over it, as they do over a real copy.
constexpr absl::Duration kPause = absl::Milliseconds(1);

bool WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = write(fd, data, size);
    if (n < 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// The broken part: no temporary name.
bool WriteFrontHalf(const std::string& from, const std::string& to) {
  const std::string contents = snaphaven::testing::ReadFileOrDie(from);
  std::error_code ec;
  fs::create_directories(fs::path(to).parent_path(), ec);
  const int fd = open(to.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return false;
  const bool ok = WriteAll(fd, contents.data(), contents.size() / 2);
  return close(fd) == 0 && ok;
}

bool Finish(const std::string& from, const std::string& to) {
  struct stat st;
  if (stat(from.c_str(), &st) != 0) return false;
  const std::string contents = snaphaven::testing::ReadFileOrDie(from);
  const int fd = open(to.c_str(), O_WRONLY | O_APPEND);
  if (fd < 0) return false;
  const size_t half = contents.size() / 2;
  const struct timespec times[2] = {st.st_atim, st.st_mtim};
  const bool ok =
      WriteAll(fd, contents.data() + half, contents.size() - half) &&
      fchmod(fd, st.st_mode & 07777) == 0 && futimens(fd, times) == 0;
  return close(fd) == 0 && ok;
}

}  // namespace

int main(int argc, char** argv) {
  std::string data_root, destination;
  std::vector<std::string> keyspaces;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if ((arg == "-d" || arg == "-s") && i + 1 < argc) {
      (arg == "-d" ? data_root : destination) = argv[++i];
    } else if (arg[0] != '-') {
      keyspaces.push_back(arg);
    }
  }
  if (data_root.empty() || destination.empty() || keyspaces.empty()) {
    fprintf(stderr, "usage: non_atomic_copier -d DATA_ROOT -s DEST ks...\n");
    return 2;
  }
  // (source, final destination) of every snapshot file.
  std::vector<std::pair<std::string, std::string>> files;
  int failed = 0;
  for (const std::string& keyspace : keyspaces) {
    std::error_code ec;
    for (auto it =
             fs::recursive_directory_iterator(data_root + "/" + keyspace, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      const std::string rel = it->path().string().substr(data_root.size() + 1);
      std::vector<std::string> parts = absl::StrSplit(rel, '/');
      if (it->is_regular_file() && parts.size() >= 5 &&
          parts[2] == "snapshots") {
        files.emplace_back(it->path().string(), destination + "/" + rel);
      }
    }
    if (ec) ++failed;
  }
  for (const auto& [from, to] : files) {
    if (!WriteFrontHalf(from, to)) ++failed;
    absl::SleepFor(kPause);
  }
  for (const auto& [from, to] : files) {
    if (!Finish(from, to)) ++failed;
    absl::SleepFor(kPause);
  }
  return failed == 0 ? 0 : 1;
}
