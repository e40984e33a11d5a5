// Helpers for end-to-end tests that run the real snaphaven binary on real
// directory trees: temporary directories, running and killing the binary,
// and reading whole trees to compare a destination with its source.

#ifndef SNAPHAVEN_TESTING_E2E_UTIL_H_
#define SNAPHAVEN_TESTING_E2E_UTIL_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace snaphaven::testing {

// A new empty directory under $TEST_TMPDIR (or /tmp).
std::string MakeTempDir(const std::string& name);

// The built binary, found through the test's runfiles.
std::string SnaphavenBinary();

struct RunResult {
  int exit_code = -1;  // 128+N when killed by signal N
  std::string out;
  std::string err;
};

// Runs the binary to completion (killed after `timeout`).
RunResult RunSnaphaven(const std::vector<std::string>& args,
                       absl::Duration timeout = absl::Seconds(120));

// Starts the binary in the background, stdout and stderr to `log_path`.
pid_t StartSnaphaven(const std::vector<std::string>& args,
                     const std::string& log_path);
// Waits for a started process; -1 if it did not exit within `timeout`.
int WaitForExit(pid_t pid, absl::Duration timeout);

// Polls `condition` every 10 ms until it holds or `timeout` passes.
bool WaitUntil(const std::function<bool()>& condition, absl::Duration timeout);

struct FileRecord {
  char type = '?';  // 'f' file, 'd' directory, 'l' symlink, 'o' other
  int64_t size = 0;
  uint32_t mode = 0;
  int64_t mtime_ns = 0;
  uint64_t ino = 0;
  uint64_t nlink = 0;
  std::string contents;  // regular files only
  bool operator==(const FileRecord& o) const {
    return type == o.type && size == o.size && mode == o.mode && mtime_ns == o.mtime_ns &&
           contents == o.contents;
  }
};

// Every entry below `root` by relative path (not following symlinks),
// skipping the top-level names in `skip`.
std::map<std::string, FileRecord> ReadTree(const std::string& root,
                                           const std::vector<std::string>& skip = {});

// The part of a source tree snaphaven mirrors by default: regular files
// under */*/snapshots/, keyed by path relative to the data root.
std::map<std::string, FileRecord> SnapshotFiles(const std::string& data_root);

// The regular files of a destination (its .snaphaven state excluded).
std::map<std::string, FileRecord> DestinationFiles(const std::string& destination);

// Lists the differences between two file maps (empty when equal).
std::string DiffTrees(const std::map<std::string, FileRecord>& want,
                      const std::map<std::string, FileRecord>& got);

std::string ReadFileOrDie(const std::string& path);
// The file's contents, or "" when it does not exist (yet).
std::string ReadFileIfExists(const std::string& path);
void WriteFileOrDie(const std::string& path, const std::string& contents);

// A number from the summary line ("... 3 copied, ..."), or -1.
int64_t SummaryCount(const std::string& output, const std::string& what);

}  // namespace snaphaven::testing

#endif  // SNAPHAVEN_TESTING_E2E_UTIL_H_
