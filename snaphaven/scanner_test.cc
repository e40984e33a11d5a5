// The scan on a generated Cassandra tree: what it lists, and that scanning
// several table directories at once gives exactly what one at a time does.
#include "snaphaven/scanner.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "snaphaven/testing/test_files.h"
#include "tools/tree_generator.h"

namespace snaphaven {
namespace {

// Everything a scan reports, as text, so two scans compare in one line.
std::string Describe(const ScanResult& r) {
  std::string out;
  for (const SourceFile& f : r.files) {
    absl::StrAppend(&out, "file ", f.root, " ", f.relative_path, " ", f.stat.size, " ",
                    f.stat.ino, " ", static_cast<int>(f.kind), "\n");
  }
  for (const auto& [root, rel] : r.snapshot_dirs) absl::StrAppend(&out, "dir ", root, " ", rel, "\n");
  for (const auto& w : r.walked_dirs) {
    absl::StrAppend(&out, "walked ", w.root, " ", w.relative_path, " ",
                    absl::StrJoin(w.subdirs, ","), "\n");
  }
  for (const std::string& d : r.skipped_dirs) absl::StrAppend(&out, "skipped ", d, "\n");
  for (const std::string& w : r.warnings) absl::StrAppend(&out, "warning ", w, "\n");
  for (const absl::Status& e : r.errors) absl::StrAppend(&out, "error ", e.ToString(), "\n");
  absl::StrAppend(&out, "skipped files ", r.skipped_files, " bytes ", r.skipped_bytes, "\n");
  return out;
}

class ScannerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string dir = testing::MakeTempDir("scanner");
    for (int i = 0; i < 2; ++i) {
      roots_.push_back(absl::StrCat(dir, "/data", i));
      tools::TreeSpec spec;
      spec.keyspaces = {"ks1", "ks2"};
      spec.tables_per_keyspace = 5;
      spec.sstables_per_table = 2;
      spec.index_dirs_per_table = 1;
      spec.snapshot_tags = {"a", "b"};
      spec.data_size = 100;
      spec.seed = 7 + i;
      ASSERT_TRUE(tools::GenerateTree(roots_.back(), spec).ok());
    }
  }

  ScanResult Scan(int threads, const DirCache* cache = nullptr) {
    ScanOptions options;
    options.data_roots = roots_;
    options.keyspaces = {"ks1", "ks2"};
    options.include_live = true;
    options.include_backups = true;
    options.unchanged_dirs = cache;
    options.threads = threads;
    absl::StatusOr<ScanResult> result = ScanSource(*DefaultFileSystem(), options);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *std::move(result) : ScanResult();
  }

  std::vector<std::string> roots_;
};

TEST_F(ScannerTest, SeveralThreadsListExactlyWhatOneDoes) {
  const ScanResult one = Scan(1);
  ASSERT_GT(one.files.size(), 200u);
  int live = 0, snapshot = 0;
  for (const SourceFile& f : one.files) {
    live += f.kind == PathKind::kLive;
    snapshot += f.kind == PathKind::kSnapshot;
  }
  EXPECT_GT(live, 0);
  EXPECT_GT(snapshot, 0);
  for (int threads : {2, 4, 64}) {
    SCOPED_TRACE(threads);
    EXPECT_EQ(Describe(Scan(threads)), Describe(one));
  }
}

TEST_F(ScannerTest, SeveralThreadsSkipTheSameCachedDirectories) {
  // Cache every snapshot directory of the first scan as unchanged.
  const ScanResult first = Scan(1);
  DirCache cache;
  for (const auto& w : first.walked_dirs) {
    CachedDir dir;
    dir.dev = w.stat.dev;
    dir.ino = w.stat.ino;
    dir.mtime_ns = w.stat.mtime_ns;
    dir.files = 1;
    dir.subdirs = w.subdirs;
    cache.Put(absl::StrCat(roots_[w.root], "/", w.relative_path), dir);
  }
  const ScanResult one = Scan(1, &cache);
  EXPECT_FALSE(one.skipped_dirs.empty());
  for (const SourceFile& f : one.files) EXPECT_EQ(f.kind, PathKind::kLive) << f.relative_path;
  EXPECT_EQ(Describe(Scan(3, &cache)), Describe(one));
}

}  // namespace
}  // namespace snaphaven
