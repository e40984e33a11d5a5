// The scan on a generated Cassandra tree: what it lists, and that scanning
// several table directories at once gives exactly what one at a time does.
#include "snaphaven/cycle/scanner.h"

#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dirent.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
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

  ScanResult Scan(int threads, const DirCache* cache = nullptr,
                  std::vector<std::string> keyspaces = {"ks1", "ks2"}) {
    ScanOptions options;
    options.data_roots = roots_;
    options.keyspaces = std::move(keyspaces);
    options.destination = dest_;
    options.include_live = true;
    options.include_backups = true;
    options.unchanged_dirs = cache;
    options.threads = threads;
    absl::StatusOr<ScanResult> result = ScanSource(*DefaultFileSystem(), options);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *std::move(result) : ScanResult();
  }

  // Moves `<root 0>/<rel>` to `<elsewhere>/<name>` and leaves a symlink
  // (an operator moving a hot table to another disk); returns the target.
  std::string MoveAway(const std::string& rel, const std::string& name) {
    const std::string target = elsewhere_ + "/" + name;
    EXPECT_EQ(rename((roots_[0] + "/" + rel).c_str(), target.c_str()), 0) << rel;
    EXPECT_EQ(symlink(target.c_str(), (roots_[0] + "/" + rel).c_str()), 0) << rel;
    return target;
  }

  // The sorted table dir names of root 0's keyspace (not following links).
  std::vector<std::string> Tables(const std::string& keyspace) {
    std::vector<std::string> out;
    DIR* dir = opendir((roots_[0] + "/" + keyspace).c_str());
    while (struct dirent* e = dir != nullptr ? readdir(dir) : nullptr) {
      if (e->d_name[0] != '.') out.push_back(e->d_name);
    }
    if (dir != nullptr) closedir(dir);
    std::sort(out.begin(), out.end());
    return out;
  }

  void SetUpElsewhere() {
    const std::string dir = testing::MakeTempDir("scanner_links");
    elsewhere_ = dir + "/other-disk";
    dest_ = dir + "/dest";
    ASSERT_EQ(mkdir(elsewhere_.c_str(), 0755), 0);
    ASSERT_EQ(mkdir(dest_.c_str(), 0755), 0);
  }

  // The errors as one text.
  static std::string Errors(const ScanResult& r) {
    std::string out;
    for (const absl::Status& e : r.errors) absl::StrAppend(&out, e.message(), "\n");
    return out;
  }

  std::vector<std::string> roots_;
  std::string elsewhere_, dest_;
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

TEST_F(ScannerTest, SymlinkedKeyspaceAndTableDirsAreListedUnderTheLinkNames) {
  SetUpElsewhere();
  const ScanResult before = Scan(1);
  ASSERT_TRUE(before.errors.empty()) << Errors(before);
  const std::string ks1 = MoveAway("ks1", "ks1-moved");
  const std::string table = Tables("ks2")[2];
  const std::string hot = MoveAway("ks2/" + table, "hot-table");
  for (int threads : {1, 4}) {
    SCOPED_TRACE(threads);
    const ScanResult after = Scan(threads);
    // The same files, inodes, directories, under the same link-relative
    // paths; nothing under the targets' names.
    EXPECT_EQ(Describe(after), Describe(before));
    EXPECT_TRUE(after.warnings.empty());
    EXPECT_EQ(after.notes, (std::vector<std::string>{
                               "following symlinked keyspace " + roots_[0] + "/ks1 -> " + ks1,
                               "following symlinked table directory " + roots_[0] + "/ks2/" +
                                   table + " -> " + hot}));
  }
}

TEST_F(ScannerTest, WithoutADestinationToCheckAgainstNoSymlinkedDirIsFollowed) {
  SetUpElsewhere();
  MoveAway("ks1", "ks1-moved");
  const std::string table = Tables("ks2")[0];
  MoveAway("ks2/" + table, "hot-table");
  dest_ = "";
  const ScanResult r = Scan(1);
  EXPECT_TRUE(r.errors.empty()) << Errors(r);
  EXPECT_TRUE(r.notes.empty());
  EXPECT_EQ(r.warnings, (std::vector<std::string>{
                            "not following symlink " + roots_[0] + "/ks1",
                            "not following symlink " + roots_[0] + "/ks2/" + table}));
  for (const SourceFile& f : r.files) {
    EXPECT_FALSE(f.root == 0 && absl::StartsWith(f.relative_path, "ks1/")) << f.relative_path;
    EXPECT_FALSE(absl::StartsWith(f.relative_path, "ks2/" + table + "/")) << f.relative_path;
  }
}

TEST_F(ScannerTest, SymlinkIntoTheDestinationIsRefused) {
  SetUpElsewhere();
  ASSERT_EQ(mkdir((dest_ + "/copied").c_str(), 0755), 0);
  ASSERT_EQ(mkdir((dest_ + "/copied/snapshots").c_str(), 0755), 0);
  ASSERT_EQ(symlink((dest_ + "/copied").c_str(), (roots_[0] + "/ks1/evil").c_str()), 0);
  ASSERT_EQ(symlink(dest_.c_str(), (roots_[0] + "/ks3").c_str()), 0);
  // A table link whose target holds the destination, one that holds a
  // data root: refused too.
  ASSERT_EQ(symlink(std::string(DirName(dest_)).c_str(), (roots_[0] + "/ks2/above").c_str()), 0);
  ASSERT_EQ(symlink(roots_[1].c_str(), (roots_[0] + "/ks2/root").c_str()), 0);
  const ScanResult r = Scan(2, nullptr, {"ks1", "ks2", "ks3"});
  const std::string errors = Errors(r);
  EXPECT_EQ(r.errors.size(), 4u) << errors;
  EXPECT_TRUE(absl::StrContains(
      errors, "symlinked table directory " + roots_[0] + "/ks1/evil -> " + dest_ +
                  "/copied: its target is inside the destination " + dest_ + "; not followed"))
      << errors;
  EXPECT_TRUE(absl::StrContains(errors, "symlinked keyspace " + roots_[0] + "/ks3 -> " + dest_ +
                                            ": its target is inside the destination"))
      << errors;
  EXPECT_TRUE(absl::StrContains(errors, roots_[0] + "/ks2/above -> " +
                                            std::string(DirName(dest_)) +
                                            ": its target contains the destination"))
      << errors;
  EXPECT_TRUE(absl::StrContains(errors, roots_[0] + "/ks2/root -> " + roots_[1] +
                                            ": its target contains the data root " + roots_[1]))
      << errors;
  for (const SourceFile& f : r.files) {
    EXPECT_FALSE(absl::StartsWith(f.relative_path, "ks1/evil/")) << f.relative_path;
    EXPECT_FALSE(absl::StartsWith(f.relative_path, "ks3/")) << f.relative_path;
    EXPECT_FALSE(absl::StartsWith(f.relative_path, "ks2/above/")) << f.relative_path;
    EXPECT_FALSE(absl::StartsWith(f.relative_path, "ks2/root/")) << f.relative_path;
  }
  EXPECT_TRUE(r.notes.empty());
}

TEST_F(ScannerTest, LoopingDanglingAndNonDirectoryLinksAreErrors) {
  SetUpElsewhere();
  const ScanResult before = Scan(1);
  const std::string ks1 = roots_[0] + "/ks1";
  ASSERT_EQ(symlink((ks1 + "/loop").c_str(), (ks1 + "/loop").c_str()), 0);
  ASSERT_EQ(symlink((elsewhere_ + "/nowhere").c_str(), (ks1 + "/gone").c_str()), 0);
  std::ofstream(elsewhere_ + "/a-file") << "x";
  ASSERT_EQ(symlink((elsewhere_ + "/a-file").c_str(), (ks1 + "/file").c_str()), 0);
  ASSERT_EQ(symlink("ks3", (roots_[0] + "/ks3").c_str()), 0);
  const ScanResult r = Scan(1, nullptr, {"ks1", "ks2", "ks3"});
  const std::string errors = Errors(r);
  EXPECT_EQ(r.errors.size(), 4u) << errors;
  EXPECT_TRUE(absl::StrContains(errors, "symlinked table directory " + ks1 + "/loop -> " + ks1 +
                                            "/loop: the symlink loops"))
      << errors;
  EXPECT_TRUE(absl::StrContains(errors, "symlinked table directory " + ks1 + "/gone -> " +
                                            elsewhere_ + "/nowhere: the symlink dangles"))
      << errors;
  EXPECT_TRUE(absl::StrContains(errors, ks1 + "/file -> " + elsewhere_ + "/a-file: its target " +
                                            elsewhere_ + "/a-file is not a directory"))
      << errors;
  EXPECT_TRUE(absl::StrContains(errors, "symlinked keyspace " + roots_[0] +
                                            "/ks3 -> ks3: the symlink loops"))
      << errors;
  // Everything else is listed as before.
  EXPECT_EQ(r.files.size(), before.files.size());
}

TEST_F(ScannerTest, SymlinksBelowAFollowedTableDirAreStillNotFollowed) {
  SetUpElsewhere();
  const std::vector<std::string> tables = Tables("ks1");
  MoveAway("ks1", "ks1-moved");
  const std::string t0 = roots_[0] + "/ks1/" + tables[0];  // through the keyspace link
  const std::string t1 = roots_[0] + "/ks1/" + tables[1];
  // t0: snapshots/ is a symlink. t1: a tag dir, an index dir, a file.
  ASSERT_EQ(rename((t0 + "/snapshots").c_str(), (elsewhere_ + "/snaps").c_str()), 0);
  ASSERT_EQ(symlink((elsewhere_ + "/snaps").c_str(), (t0 + "/snapshots").c_str()), 0);
  ASSERT_EQ(rename((t1 + "/snapshots/a").c_str(), (elsewhere_ + "/tag").c_str()), 0);
  ASSERT_EQ(symlink((elsewhere_ + "/tag").c_str(), (t1 + "/snapshots/a").c_str()), 0);
  ASSERT_EQ(symlink((elsewhere_ + "/tag").c_str(), (t1 + "/.linked_idx").c_str()), 0);
  ASSERT_EQ(symlink((elsewhere_ + "/a-file").c_str(), (t1 + "/nb-9-big-Data.db").c_str()), 0);
  const ScanResult r = Scan(1);
  EXPECT_TRUE(r.errors.empty()) << Errors(r);
  for (const std::string& link : {t0 + "/snapshots", t1 + "/snapshots/a", t1 + "/.linked_idx",
                                  t1 + "/nb-9-big-Data.db"}) {
    EXPECT_NE(std::find(r.warnings.begin(), r.warnings.end(), "not following symlink " + link),
              r.warnings.end())
        << link;
  }
  for (const SourceFile& f : r.files) {
    EXPECT_FALSE(absl::StartsWith(f.relative_path, "ks1/" + tables[0] + "/snapshots/"))
        << f.relative_path;
    EXPECT_FALSE(absl::StartsWith(f.relative_path, "ks1/" + tables[1] + "/snapshots/a/"))
        << f.relative_path;
    EXPECT_FALSE(absl::StrContains(f.relative_path, "linked_idx")) << f.relative_path;
    EXPECT_FALSE(absl::StrContains(f.relative_path, "nb-9-big")) << f.relative_path;
  }
  EXPECT_EQ(r.notes.size(), 1u);
}

}  // namespace
}  // namespace snaphaven
