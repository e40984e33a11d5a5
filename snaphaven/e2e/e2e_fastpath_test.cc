// The fast paths, each tested for correctness on its own (no timings here
// beyond a lower bound for the throttle): unchanged snapshot directories
// skipped, and what makes them be listed again.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "snaphaven/storage/checksum.h"
#include "snaphaven/state/manifest_store.h"
#include "absl/time/clock.h"
#include "snaphaven/testing/e2e_util.h"
#include "tools/tree_generator.h"

namespace snaphaven {
namespace {

using testing::DestinationFiles;
using testing::DiffTrees;
using testing::ReadTree;
using testing::RunResult;
using testing::SnapshotFiles;
using testing::SummaryCount;

// Moves every directory's mtime an hour back: snapshot directories that
// have settled, as on a real node.
void AgeDirectories(const std::string& root) {
  for (const auto& [path, record] : ReadTree(root)) {
    if (record.type != 'd') continue;
    struct timespec times[2] = {{0, UTIME_OMIT}, {time(nullptr) - 3600, 0}};
    ASSERT_EQ(utimensat(AT_FDCWD, (root + "/" + path).c_str(), times, AT_SYMLINK_NOFOLLOW), 0);
  }
}

// Moves every file's and directory's mtime an hour back: a node whose
// sstables and snapshots have settled.
void AgeEverything(const std::string& root) {
  for (const auto& [path, record] : ReadTree(root)) {
    if (record.type != 'd' && record.type != 'f') continue;
    struct timespec times[2] = {{0, UTIME_OMIT}, {time(nullptr) - 3600, 0}};
    ASSERT_EQ(utimensat(AT_FDCWD, (root + "/" + path).c_str(), times, AT_SYMLINK_NOFOLLOW), 0);
  }
}

int Count(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

class FastPathTest : public testing::CassandraTreeTest {};

TEST_F(FastPathTest, UnchangedSnapshotDirectoriesAreNotListedAgain) {
  tools::TreeSpec spec = Spec(2, 3, {"d1", "d2"});
  spec.index_dirs_per_table = 1;
  Generate(spec);
  AgeDirectories(data_);
  const int64_t total = static_cast<int64_t>(SnapshotFiles(data_).size());
  ASSERT_EQ(Run({}, {"ks1"}).exit_code, 0);

  RunResult r = Run({"-v", "2"}, {"ks1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // 2 tables x 2 tags x (tag dir + index dir).
  EXPECT_EQ(Count(r.err, "unchanged directory "), 8) << r.err;
  EXPECT_EQ(Count(r.err, "] unchanged ks1/"), 0) << "no file-by-file check";
  EXPECT_EQ(SummaryCount(r.err, "scanned"), total);
  EXPECT_EQ(SummaryCount(r.err, "unchanged"), total);

  // A new file in one snapshot dir changes its mtime: that dir, and only
  // that one, is listed again and the file copied.
  std::string table = TableDir(0);
  testing::WriteFileOrDie(table + "/snapshots/d1/late-file", "added later");
  r = Run({"-v", "2"}, {"ks1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(SummaryCount(r.err, "copied"), 1) << r.err;
  EXPECT_EQ(Count(r.err, "unchanged directory "), 7) << r.err;
  EXPECT_EQ(DiffTrees(SnapshotFiles(data_), DestinationFiles(dest_)), "");

  // A file rewritten in place (not what Cassandra does) keeps the dir's
  // mtime: ordinary cycles trust the directory, --fullsync re-checks all.
  std::string dir = table + "/snapshots/d2";
  std::string victim = dir + "/nb-1-big-Summary.db";
  struct stat dir_before;
  ASSERT_EQ(stat(dir.c_str(), &dir_before), 0);
  std::string bytes = testing::ReadFileOrDie(victim);
  ASSERT_EQ(unlink(victim.c_str()), 0);  // break the hard link, keep the name
  testing::WriteFileOrDie(victim, bytes + "x");
  // As if edited in place: the directory keeps its exact mtime.
  struct timespec times[2] = {{0, UTIME_OMIT}, dir_before.st_mtim};
  ASSERT_EQ(utimensat(AT_FDCWD, dir.c_str(), times, 0), 0);
  r = Run({}, {"ks1"});
  EXPECT_EQ(SummaryCount(r.err, "copied"), 0) << "trusted: dir unchanged";
  r = Run({"--fullsync"}, {"ks1"});
  EXPECT_EQ(SummaryCount(r.err, "copied"), 1) << r.err;
  EXPECT_EQ(DiffTrees(SnapshotFiles(data_), DestinationFiles(dest_)), "");
}

// The manifest is read in section by section: a cycle with nothing to do
// reads only the sections of the directories it listed, not those of the
// snapshots it skipped.
TEST_F(FastPathTest, ANoChangeCycleReadsOnlyTheManifestSectionsItNeeds) {
  tools::TreeSpec spec = Spec(2, 3, {"d1", "d2", "d3"});
  Generate(spec);
  AgeEverything(data_);  // settled files too: the live listings are trusted
  ASSERT_EQ(Run({"--sync-sstables"}, {"ks1"}).exit_code, 0);
  ASSERT_EQ(Run({"--sync-sstables"}, {"ks1"}).exit_code, 0);  // now cached
  const int64_t total = static_cast<int64_t>(testing::LiveFiles(data_).size() +
                                             SnapshotFiles(data_).size());
  // Nothing is read in: the snapshot directories are unchanged, and the
  // live directories list what they listed when all was current.
  std::map<std::string, int64_t> live_per_table;
  for (const auto& [path, record] : testing::LiveFiles(data_)) {
    ++live_per_table[Manifest::LinkScope(path)];
  }
  RunResult r = Run({"--sync-sstables", "-v", "1"}, {"ks1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(SummaryCount(r.err, "unchanged"), total) << r.err;
  EXPECT_TRUE(absl::StrContains(
      r.err, absl::StrCat("manifest: at most 0 of ", total, " entries in memory at once")))
      << r.err;

  // A new snapshot of one table's sstables is linked to their copies:
  // that table's sections are read in to find them, and no others.
  const std::string first = TableDir(0).substr(data_.size() + 1);
  int64_t first_old = 0;  // snapshot copies of the first table so far
  for (const auto& [path, record] : SnapshotFiles(data_)) {
    first_old += absl::StartsWith(path, first + "/") ? 1 : 0;
  }
  ASSERT_EQ(tools::TakeSnapshot(data_, {"ks1"}, "d4").code(), absl::StatusCode::kOk);
  ASSERT_EQ(system(("rm -rf '" + TableDir(1) + "/snapshots/d4'").c_str()), 0);
  int64_t new_files = 0;
  for (const auto& [path, record] : SnapshotFiles(data_)) {
    new_files += absl::StrContains(path, "/snapshots/d4/") ? 1 : 0;
  }
  r = Run({"--sync-sstables", "-v", "1"}, {"ks1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(SummaryCount(r.err, "copied") + SummaryCount(r.err, "linked"), new_files) << r.err;
  EXPECT_GT(SummaryCount(r.err, "linked"), new_files / 2) << r.err;
  EXPECT_TRUE(absl::StrContains(
      r.err, absl::StrCat("manifest: at most ", live_per_table[first] + first_old + new_files,
                          " of ", total + new_files, " entries in memory at once")))
      << r.err;
  std::map<std::string, testing::FileRecord> copies;
  for (auto& [rel, record] : DestinationFiles(dest_)) {
    if (absl::StrContains(rel, "/snapshots/")) copies[rel] = record;
  }
  EXPECT_EQ(DiffTrees(SnapshotFiles(data_), copies), "");
}

// A manifest in the version before sections is read whole, and rewritten
// in the current version by the next cycle even when nothing changed.
TEST_F(FastPathTest, AnOlderManifestIsRewrittenInTheCurrentVersion) {
  Generate(Spec(1, 2, {"d1"}));
  ASSERT_EQ(Run({}, {"ks1"}).exit_code, 0);
  const std::string path = dest_ + "/.snaphaven/manifest";
  absl::StatusOr<StoredManifest> current = StoredManifest::Parse(testing::ReadFileOrDie(path));
  ASSERT_TRUE(current.ok()) << current.status();
  // Version 3: one line per whole path (nothing shared with the line before).
  std::string v3 = "snaphaven-manifest 3\n";
  for (const auto& [rel, e] : current->entries()) {
    absl::StrAppend(&v3, "0\t", rel, "\t", e.size, "\t", e.mtime_ns, "\t", absl::Hex(e.mode),
                    "\t", e.source_dev, "\t", e.source_ino, "\t",
                    absl::Hex(e.crc32, absl::kZeroPad8), "\t0\n");
  }
  absl::StrAppend(&v3, "end ", current->size(), " ", absl::Hex(Crc32(0, v3), absl::kZeroPad8),
                  "\n");
  testing::WriteFileOrDie(path, v3);

  RunResult r = Run({}, {"ks1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(SummaryCount(r.err, "copied"), 0) << "the old manifest was understood";
  std::string text = testing::ReadFileOrDie(path);
  EXPECT_TRUE(absl::StartsWith(text, "snaphaven-manifest 5\nepoch ")) << text.substr(0, 40);
  absl::StatusOr<StoredManifest> rewritten = StoredManifest::Parse(text);
  ASSERT_TRUE(rewritten.ok()) << rewritten.status();
  EXPECT_EQ(rewritten->entries(), current->entries());
}

TEST_F(FastPathTest, DirectoriesAreListedAgainWhenTheManifestIsRebuilt) {
  Generate(Spec(1, 2, {"d1"}));
  AgeDirectories(data_);
  ASSERT_EQ(Run({}, {"ks1"}).exit_code, 0);
  ASSERT_EQ(Run({}, {"ks1"}).exit_code, 0);
  ASSERT_EQ(unlink((dest_ + "/.snaphaven/manifest").c_str()), 0);
  std::string lost = DestinationFiles(dest_).begin()->first;
  ASSERT_EQ(unlink((dest_ + "/" + lost).c_str()), 0);
  RunResult r = Run({"-v", "2"}, {"ks1"});
  EXPECT_EQ(Count(r.err, "unchanged directory "), 0) << "the cache depends on the manifest";
  EXPECT_EQ(DiffTrees(SnapshotFiles(data_), DestinationFiles(dest_)), "");
}

// A table whose live, index and backups directories list exactly what they
// listed when all of it was current is counted unchanged without a manifest
// lookup; any change to a listing (a flush, a compaction, a dropped index)
// takes the table through the whole cycle again.
TEST_F(FastPathTest, UnchangedLiveDirectoriesAreNeitherLookedUpNorSelectedAgain) {
  tools::TreeSpec spec = Spec(3, 3, {"d1"});
  spec.index_dirs_per_table = 1;
  Generate(spec);
  AgeEverything(data_);
  const std::vector<std::string> flags = {"--sync-sstables", "--prune_after=0s", "-v", "2"};
  auto mirrored = [&] {
    std::map<std::string, testing::FileRecord> source = SnapshotFiles(data_);
    for (auto& [path, record] : testing::LiveFiles(data_)) source[path] = record;
    return DiffTrees(source, DestinationFiles(dest_));
  };
  RunResult r = Run(flags, {"ks1"});  // all copied: the listings are kept
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Count(r.err, "unchanged table "), 0) << r.err;
  r = Run(flags, {"ks1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Count(r.err, "unchanged table "), 3) << r.err;
  EXPECT_EQ(Count(r.err, "] unchanged ks1/"), 0) << "no file-by-file check";
  EXPECT_TRUE(absl::StrContains(r.err, "manifest: at most 0 of ")) << r.err;

  // A flush in every table (its index dirs too): copied, then trusted again.
  ASSERT_TRUE(tools::FlushNewSSTables(data_, {"ks1"}, 1000, 7).ok());
  r = Run(flags, {"ks1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Count(r.err, "unchanged table "), 0) << r.err;
  EXPECT_GT(SummaryCount(r.err, "copied"), 0) << r.err;
  EXPECT_EQ(mirrored(), "");
  AgeEverything(data_);
  ASSERT_EQ(Run(flags, {"ks1"}).exit_code, 0);
  r = Run(flags, {"ks1"});
  EXPECT_EQ(Count(r.err, "unchanged table "), 3) << r.err;

  // A compaction's inputs gone from one table, and one index dropped in
  // another: both pruned; the third table is still trusted.
  const std::string live = TableDir(0);
  int removed = 0;
  for (const auto& [name, record] : ReadTree(live)) {
    if (name.find('/') == std::string::npos && absl::StartsWith(name, "nb-1-")) {
      ASSERT_EQ(unlink((live + "/" + name).c_str()), 0);
      ++removed;
    }
  }
  ASSERT_GT(removed, 0);
  std::string index;
  for (const auto& [name, record] : ReadTree(TableDir(1))) {
    if (record.type == 'd' && absl::StartsWith(name, ".") && name.find('/') == std::string::npos) {
      index = TableDir(1) + "/" + name;
    }
  }
  ASSERT_FALSE(index.empty());
  ASSERT_EQ(system(("rm -rf '" + index + "'").c_str()), 0);
  r = Run(flags, {"ks1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Count(r.err, "unchanged table "), 1) << r.err;
  EXPECT_GT(SummaryCount(r.err, "pruned"), removed) << r.err;
  EXPECT_EQ(mirrored(), "");
  r = Run(flags, {"ks1"});
  EXPECT_EQ(Count(r.err, "unchanged table "), 3) << r.err;
  EXPECT_EQ(mirrored(), "");

  // An sstable gone, its copies kept for --prune_after: the table cannot be
  // trusted while they wait, or they would never be pruned.
  const std::string table2 = TableDir(2);
  for (const auto& [name, record] : ReadTree(table2)) {
    if (name.find('/') == std::string::npos && absl::StartsWith(name, "nb-2-")) {
      ASSERT_EQ(unlink((table2 + "/" + name).c_str()), 0);
    }
  }
  const std::vector<std::string> waiting = {"--sync-sstables", "--prune_after=1h", "-v", "2"};
  for (int i = 0; i < 2; ++i) {
    r = Run(waiting, {"ks1"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(Count(r.err, "unchanged table "), 2) << r.err;
    EXPECT_EQ(SummaryCount(r.err, "pruned"), 0) << r.err;
  }
  r = Run(flags, {"ks1"});
  EXPECT_GT(SummaryCount(r.err, "pruned"), 0) << r.err;
  EXPECT_EQ(mirrored(), "");
}

// A copy found bad by --verify --fullsync, or by --verify_sample, is copied
// again even when its directory's listing is trusted: forgetting the copy
// forgets the directory.
TEST_F(FastPathTest, ACopyFoundBadIsCopiedAgainInATrustedDirectory) {
  Generate(Spec(1, 2, {"d1"}));
  AgeEverything(data_);
  const std::vector<std::string> flags = {"--sync-sstables"};
  for (int i = 0; i < 3; ++i) ASSERT_EQ(Run(flags, {"ks1"}).exit_code, 0);
  for (const std::string& kind : {std::string("/snapshots/d1/"), std::string("")}) {
    std::string victim;
    for (const auto& [path, record] : DestinationFiles(dest_)) {
      bool snapshot = absl::StrContains(path, "/snapshots/");
      if (absl::EndsWith(path, "-Data.db") && snapshot == !kind.empty()) victim = path;
    }
    ASSERT_FALSE(victim.empty());
    for (const std::string& way : {std::string("--verify"), std::string("--verify_sample=100")}) {
      SCOPED_TRACE(victim + " " + way);
      testing::FlipByteKeepingMtime(dest_ + "/" + victim, 100);
      RunResult r = way == "--verify" ? Run({"--sync-sstables", "--verify", "--fullsync"}, {"ks1"})
                                      : Run({"--sync-sstables", way}, {"ks1"});
      if (way != "--verify") r = Run(flags, {"ks1"});  // the next cycle copies it
      EXPECT_TRUE(testing::ReadFileOrDie(dest_ + "/" + victim) ==
                  testing::ReadFileOrDie(data_ + "/" + victim))
          << "not copied again\n" << r.err;
      RunResult verified = Run({"--sync-sstables", "--verify"}, {"ks1"});
      ASSERT_EQ(verified.exit_code, 0) << r.err << "\n" << verified.err;
      for (int i = 0; i < 2; ++i) ASSERT_EQ(Run(flags, {"ks1"}).exit_code, 0);
    }
  }
}

TEST_F(FastPathTest, MoveModeLooksAtEverySnapshot) {
  Generate(Spec(1, 2, {"d1"}));
  AgeDirectories(data_);
  ASSERT_EQ(Run({}, {"ks1"}).exit_code, 0);
  ASSERT_EQ(Run({}, {"ks1"}).exit_code, 0);  // now cached
  RunResult r = Run({"--move-snapshots", "--settle_time=0s"}, {"ks1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(SnapshotFiles(data_).empty()) << "a cached dir must still be moved";
}

// Bytes of `path` in the page cache, as util-linux's fincore reports them.
int64_t CachedBytes(const std::string& path) {
  std::string command = "fincore --bytes --noheadings --raw --output RES '" + path + "'";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return -1;
  char line[64] = {0};
  bool got = fgets(line, sizeof(line), pipe) != nullptr;
  int status = pclose(pipe);
  return got && status == 0 ? std::atoll(line) : -1;
}

// Copying must not evict Cassandra's hot pages, nor leave the pages it
// brought in: a pre-cached source stays cached, a cold one is not left
// cached, and the destination's pages are dropped after their fsync.
TEST_F(FastPathTest, CopiesLeaveThePageCacheAsTheyFoundIt) {
  if (CachedBytes("/proc/self/exe") < 0) GTEST_SKIP() << "fincore (util-linux) is not installed";
  tools::TreeSpec spec = Spec(1, 2, {"s1"}, 8 << 20);
  spec.write_live_sstables = false;
  Generate(spec);
  std::string hot, cold;
  for (const auto& [path, record] : SnapshotFiles(data_)) {
    if (!absl::EndsWith(path, "-Data.db")) continue;
    (hot.empty() ? hot : cold) = data_ + "/" + path;
  }
  ASSERT_FALSE(cold.empty());
  // Cold: evicted. Hot: read through, as Cassandra serving reads would.
  for (const std::string& path : {hot, cold}) {
    int fd = open(path.c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    fdatasync(fd);
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
  }
  ASSERT_EQ(CachedBytes(cold), 0) << "cannot evict here; nothing to measure";
  testing::ReadFileOrDie(hot);
  const int64_t hot_before = CachedBytes(hot);
  ASSERT_EQ(hot_before, 8 << 20);

  // With the checksum (read/write), then without (the kernel copies).
  for (const char* checksum : {"--checksum", "--nochecksum"}) {
    SCOPED_TRACE(checksum);
    const std::string dest = dest_ + checksum;
    int fd = open(cold.c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
    ASSERT_EQ(CachedBytes(cold), 0);
    ASSERT_EQ(Run({"-s", dest, checksum}, {"ks1"}).exit_code, 0);
    EXPECT_EQ(CachedBytes(hot), hot_before) << "a hot source page was evicted";
    EXPECT_LE(CachedBytes(cold), 64 << 10) << "the copy left the cold source cached";
    // (Checked by name: reading the destination tree would cache it.)
    for (const std::string& source : {hot, cold}) {
      std::string copy = dest + source.substr(data_.size());
      EXPECT_LE(CachedBytes(copy), 64 << 10) << copy << " left cached";
      EXPECT_EQ(CachedBytes(copy) >= 0 ? testing::ReadFileOrDie(copy).size() : 0, 8u << 20);
    }
  }
}

// A lower bound only: with --max_bandwidth the copy cannot be faster than
// the limit allows (burst 256 KiB).
TEST_F(FastPathTest, ThrottledCopyIsNeverFasterThanTheLimit) {
  tools::TreeSpec spec = Spec(1, 1, {"s1"}, 4 << 20);
  spec.write_live_sstables = false;
  Generate(spec);
  int64_t total = 0;
  for (const auto& [path, record] : SnapshotFiles(data_)) total += record.size;
  const absl::Time start = absl::Now();
  RunResult r = Run({"--max_bandwidth", "8MiB"}, {"ks1"});
  const double elapsed = absl::ToDoubleSeconds(absl::Now() - start);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_GE(elapsed, static_cast<double>(total - (256 << 10)) / (8 << 20)) << total << " bytes";
  EXPECT_EQ(DiffTrees(SnapshotFiles(data_), DestinationFiles(dest_)), "");
  r = Run({"--max_bandwidth", "lots"}, {"ks1"});
  EXPECT_EQ(r.exit_code, 2);
}

}  // namespace
}  // namespace snaphaven
