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

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "snaphaven/state/manifest_store.h"
#include "snaphaven/testing/test_files.h"
#include "tools/tree_generator.h"

namespace snaphaven::testing {


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

// Starts `binary` in the background, stdin from /dev/null, stdout and
// stderr appended to the given files (which may be the same).
pid_t StartProgram(const std::string& binary, const std::vector<std::string>& args,
                   const std::string& out_path, const std::string& err_path);

// Starts the binary in the background, stdout and stderr to `log_path`.
pid_t StartSnaphaven(const std::vector<std::string>& args,
                     const std::string& log_path);
// Waits for a started process; -1 if it did not exit within `timeout`.
int WaitForExit(pid_t pid, absl::Duration timeout);

// The sizes of the regular files process `pid` has open below `dir`, named
// or not (an O_TMPFILE file shows as "<dir>/#<inode> (deleted)").
std::vector<int64_t> FilesBeingWritten(pid_t pid, const std::string& dir);

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

// The live sstables' files of a source tree: regular files under */*/
// but not under snapshots/ or backups/.
std::map<std::string, FileRecord> LiveFiles(const std::string& data_root);

// The destination's committed manifest (a test failure, and an empty one,
// when it does not parse).
StoredManifest DestinationManifest(const std::string& destination);

// The regular files of a destination (its .snaphaven state excluded).
std::map<std::string, FileRecord> DestinationFiles(const std::string& destination);

// The entries of `files` whose path contains `infix` ("/snapshots/s1/").
std::map<std::string, FileRecord> FilesContaining(const std::map<std::string, FileRecord>& files,
                                                  const std::string& infix);

// Lists the differences between two file maps (empty when equal).
std::string DiffTrees(const std::map<std::string, FileRecord>& want,
                      const std::map<std::string, FileRecord>& got);

std::string ReadFileOrDie(const std::string& path);
// Flips one byte of a file in place (same size; its mtime moves).
void FlipByte(const std::string& path, int64_t at);
// The same, then puts the old mtime back: only the bytes tell.
void FlipByteKeepingMtime(const std::string& path, int64_t at);
// The file's contents, or "" when it does not exist (yet).
std::string ReadFileIfExists(const std::string& path);
void WriteFileOrDie(const std::string& path, const std::string& contents);

// The real Cassandra sstables of ../shared/fixtures/real-sstables (beside
// the repository; $SNAPHAVEN_REAL_SSTABLES overrides), or "" when absent.
// REQUIRES: the test has data = ["//:README.md"] (to find the repository).
std::string RealSSTablesDir();

// Apache Cassandra's own test sstables, ../shared/fixtures/cassandra-test-data
// (beside the repository; $SNAPHAVEN_CASSANDRA_TEST_DATA overrides), else
// /work/shared/fixtures/cassandra-test-data, or "" when absent.
// REQUIRES: the test has data = ["//:README.md"] (to find the repository).
std::string CassandraTestDataDir();

// Every "<dir>/<prefix>" of a Data.db below `root`.
std::vector<std::string> FindSSTables(const std::string& root);

// A number from the summary line ("... 3 copied, ..."), or -1.
int64_t SummaryCount(const std::string& output, const std::string& what);

// A generated Cassandra home in a temporary directory, and the binary run
// on it: the base of the end-to-end tests.
class CassandraTreeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("e2e");
    home_ = dir_ + "/cassandra";
    data_ = home_ + "/data";
    dest_ = dir_ + "/backup";
  }

  void Generate(tools::TreeSpec spec) {
    absl::Status status = tools::GenerateTree(data_, spec);
    ASSERT_TRUE(status.ok()) << status;
  }

  // A realistic default: two keyspaces, index dirs, several snapshots
  // (including tags with a space and non-ASCII letters) and some 0600 files.
  void GenerateDefault() {
    tools::TreeSpec spec;
    spec.keyspaces = {"ks1", "ks2"};
    spec.tables_per_keyspace = 2;
    spec.sstables_per_table = 2;
    spec.index_dirs_per_table = 1;
    spec.snapshot_tags = {"snap1", "tag with space", "\xc3\xa9t\xc3\xa9-\xc3\xbc"};
    spec.data_size = 20000;
    Generate(spec);
    // Private files: their mode must be kept, not widened.
    int privatized = 0;
    for (const auto& [path, record] : SnapshotFiles(data_)) {
      if (absl::EndsWith(path, "Statistics.db")) {
        ASSERT_EQ(chmod((data_ + "/" + path).c_str(), 0600), 0);
        ++privatized;
      }
    }
    ASSERT_GT(privatized, 0);
  }

  // The absolute path of ks1's n-th table directory (sorted by name).
  std::string TableDir(int n) {
    std::vector<std::string> tables;
    for (const auto& [path, record] : ReadTree(data_ + "/ks1")) {
      if (record.type == 'd' && path.find('/') == std::string::npos) tables.push_back(path);
    }
    EXPECT_LT(n, static_cast<int>(tables.size()));
    return data_ + "/ks1/" + tables[n];
  }

  // One keyspace "ks1" with the given shape.
  static tools::TreeSpec Spec(int tables, int sstables, std::vector<std::string> tags,
                              int64_t data_size = 64 * 1024) {
    tools::TreeSpec spec;
    spec.keyspaces = {"ks1"};
    spec.tables_per_keyspace = tables;
    spec.sstables_per_table = sstables;
    spec.snapshot_tags = std::move(tags);
    spec.data_size = data_size;
    return spec;
  }

  // After an interrupted run: whatever is under a final name is whole, and
  // some files are still missing.
  void ExpectOnlyWholeFiles() {
    auto source = SnapshotFiles(data_);
    auto dest = DestinationFiles(dest_);
    EXPECT_LT(dest.size(), source.size());
    for (const auto& [path, record] : dest) {
      EXPECT_TRUE(record == source[path]) << path << " is partial or wrong";
    }
  }

  RunResult Run(std::vector<std::string> extra = {}, std::vector<std::string> keyspaces = {"ks1", "ks2"}) {
    std::vector<std::string> args = {"-d", home_, "-s", dest_};
    args.insert(args.end(), extra.begin(), extra.end());
    args.insert(args.end(), keyspaces.begin(), keyspaces.end());
    return RunSnaphaven(args);
  }

  void ExpectExactMirror() {
    EXPECT_EQ(DiffTrees(SnapshotFiles(data_), DestinationFiles(dest_)), "");
    EXPECT_TRUE(ReadTree(dest_ + "/.snaphaven/tmp").empty()) << "stray temporary files";
  }

  std::string dir_, home_, data_, dest_;
};

}  // namespace snaphaven::testing

#endif  // SNAPHAVEN_TESTING_E2E_UTIL_H_
