// Retention end to end: the real binary syncs a generated tree with four
// snapshots taken over "four months" (with compactions between them, so some
// sstables live in one snapshot only and others are hard-linked across
// several), then ApplyRetention removes the copies the rules allow.

#include "snaphaven/ops/retention.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "snaphaven/cassandra/cassandra_path.h"
#include "snaphaven/storage/file_system.h"
#include "snaphaven/state/manifest_store.h"
#include "snaphaven/testing/e2e_util.h"
#include "tools/tree_generator.h"

namespace snaphaven {
namespace {

using testing::FileRecord;
using testing::ReadFileOrDie;
using testing::ReadTree;
using testing::RunResult;
using testing::WriteFileOrDie;

absl::Time Day(int year, int month, int day) {
  return absl::FromCivil(absl::CivilDay(year, month, day), absl::UTCTimeZone());
}

bool Exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

// Replaces the "created_at" value in a 4.1+ manifest.json.
void SetCreatedAt(const std::string& path, absl::Time t) {
  std::string text = ReadFileOrDie(path);
  const std::string key = "\"created_at\" : \"";
  size_t start = text.find(key);
  ASSERT_NE(start, std::string::npos) << text;
  start += key.size();
  size_t end = text.find('"', start);
  text.replace(start, end - start,
               absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone()));
  WriteFileOrDie(path, text);
}

void SetMtime(const std::string& path, absl::Time t) {
  struct timespec times[2];
  times[0] = times[1] = absl::ToTimespec(t);
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW), 0) << path;
}

std::string TagOf(const std::string& rel) { return ClassifyPath(rel + "/x").tag; }

class RetentionTest : public testing::CassandraTreeTest {
 protected:
  // ks1 with two tables (one index dir each) and snapshots t1..t4 created
  // on the first of January to April 2024. Before each later snapshot a new
  // sstable is flushed and, before t2, the oldest one is compacted away: so
  // nb-1 lives in t1 only, nb-2 in t1..t4, nb-3 in t2..t4, and so on.
  void MakeTree(bool sync_live = true) {
    tools::TreeSpec spec = Spec(2, 2, {"t1"}, 30000);
    spec.index_dirs_per_table = 1;
    Generate(spec);
    for (int n = 0; n < 2; ++n) {
      for (const auto& [path, record] : ReadTree(TableDir(n))) {
        if (record.type == 'f' && path.find('/') == std::string::npos &&
            absl::StartsWith(path, "nb-1-")) {
          ASSERT_EQ(unlink((TableDir(n) + "/" + path).c_str()), 0);
        }
      }
    }
    for (int i = 2; i <= 4; ++i) {
      ASSERT_TRUE(tools::FlushNewSSTables(data_, {"ks1"}, 30000, i).ok());
      ASSERT_TRUE(tools::TakeSnapshot(data_, {"ks1"}, absl::StrCat("t", i)).ok());
    }
    for (int n = 0; n < 2; ++n) {
      tables_.push_back("ks1/" + TableDir(n).substr(TableDir(n).rfind('/') + 1));
      for (int i = 1; i <= 4; ++i) {
        SetCreatedAt(absl::StrCat(TableDir(n), "/snapshots/t", i, "/manifest.json"),
                     Day(2024, i, 1));
      }
    }
    std::vector<std::string> flags;
    if (sync_live) flags.push_back("--sync-sstables");
    RunResult r = Run(flags, {"ks1"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  StoredManifest LoadManifest() { return testing::DestinationManifest(dest_); }

  // "ks1/<table n>/snapshots/<tag>".
  std::string Copy(int table, const std::string& tag) {
    return absl::StrCat(tables_[table], "/snapshots/", tag);
  }

  RetentionOptions Options() {
    RetentionOptions options;
    options.now = Day(2024, 4, 15);
    return options;
  }

  absl::StatusOr<RetentionResult> Apply(Manifest& manifest, const RetentionOptions& options,
                                        const std::set<std::string>& at_source_tags) {
    return ApplyRetention(*DefaultFileSystem(), manifest, dest_, options,
                          [&at_source_tags](const std::string& rel) {
                            return at_source_tags.count(TagOf(rel)) > 0;
                          });
  }

  // Checks that exactly the copies `removed` are gone (directory, files,
  // manifest entries), that every other destination file is untouched, and
  // the counts against the tree before.
  void ExpectRemoved(const std::map<std::string, FileRecord>& tree_before,
                     const Manifest& manifest_before, const Manifest& manifest_after,
                     const RetentionResult& result, std::vector<std::string> removed) {
    std::sort(removed.begin(), removed.end());
    EXPECT_EQ(result.removed_snapshots, removed);
    auto doomed = [&removed](const std::string& path) {
      for (const std::string& rel : removed) {
        if (path == rel || absl::StartsWith(path, rel + "/")) return true;
      }
      return false;
    };
    const std::map<std::string, FileRecord> tree_after = ReadTree(dest_, {".snaphaven"});
    int64_t files = 0, bytes = 0;
    size_t entries = 0;
    absl::flat_hash_map<uint64_t, int> names;
    for (const auto& [path, record] : tree_before) {
      if (doomed(path)) {
        ++entries;
        EXPECT_EQ(tree_after.count(path), 0u) << path << " survived";
        if (record.type == 'f') {
          ++files;
          ++names[record.ino];
        }
      } else {
        auto it = tree_after.find(path);
        ASSERT_TRUE(it != tree_after.end()) << path << " was removed";
        EXPECT_TRUE(it->second == record) << path << " changed";
      }
    }
    EXPECT_EQ(tree_after.size() + entries, tree_before.size());
    absl::flat_hash_map<uint64_t, bool> counted;
    for (const auto& [path, record] : tree_before) {
      if (doomed(path) && record.type == 'f' && names[record.ino] == record.nlink &&
          counted.emplace(record.ino, true).second) {
        bytes += record.size;
      }
    }
    EXPECT_EQ(result.files_removed, files);
    EXPECT_EQ(result.bytes_freed, bytes);
    for (const auto& [path, entry] : manifest_before.entries()) {
      if (doomed(path)) {
        EXPECT_EQ(manifest_after.Find(path), nullptr) << path << " still listed";
      } else {
        ASSERT_NE(manifest_after.Find(path), nullptr) << path << " no longer listed";
        EXPECT_TRUE(*manifest_after.Find(path) == entry) << path;
      }
    }
    EXPECT_EQ(manifest_after.size() + static_cast<size_t>(files), manifest_before.size());
    EXPECT_FALSE(Exists(dest_ + "/.snaphaven/retention-trash"));
  }

  std::vector<std::string> tables_;
};

TEST_F(RetentionTest, KeepSnapshotsRemovesTheOldestClearedCompleteCopies) {
  MakeTree();
  // Cassandra cleared t1..t3; t4 is still there.
  for (const std::string& table : tables_) {
    for (const char* tag : {"t1", "t2", "t3"}) {
      std::filesystem::remove_all(absl::StrCat(data_, "/", table, "/snapshots/", tag));
    }
  }
  const auto tree_before = ReadTree(dest_, {".snaphaven"});
  StoredManifest manifest = LoadManifest();
  const Manifest manifest_before = manifest;
  RetentionOptions options = Options();
  options.keep_snapshots = 2;
  absl::StatusOr<RetentionResult> result =
      ApplyRetention(*DefaultFileSystem(), manifest, dest_, options,
                     [this](const std::string& rel) { return Exists(data_ + "/" + rel); });
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->warnings.empty()) << result->warnings[0];
  ExpectRemoved(tree_before, manifest_before, manifest, *result,
                {Copy(0, "t1"), Copy(0, "t2"), Copy(1, "t1"), Copy(1, "t2")});
  // nb-1 lived in t1 alone: its bytes are freed. nb-2 is shared with t3, t4
  // and the live mirror: those keep it, with its bytes.
  const std::string only_t1 = Copy(0, "t1") + "/nb-1-big-Data.db";
  const std::string shared = Copy(0, "t2") + "/nb-2-big-Data.db";
  ASSERT_EQ(tree_before.at(only_t1).nlink, 1u);
  ASSERT_GT(tree_before.at(shared).nlink, 1u);
  EXPECT_GE(result->bytes_freed, 2 * tree_before.at(only_t1).size);
  const std::string kept = Copy(0, "t3") + "/nb-2-big-Data.db";
  EXPECT_EQ(ReadFileOrDie(dest_ + "/" + kept), tree_before.at(shared).contents);
  EXPECT_EQ(ReadFileOrDie(dest_ + "/" + tables_[0] + "/nb-2-big-Data.db"),
            tree_before.at(shared).contents);
  struct stat st;
  ASSERT_EQ(stat((dest_ + "/" + kept).c_str(), &st), 0);
  EXPECT_EQ(st.st_nlink, tree_before.at(shared).nlink - 2);
  // The snapshots/ directory stays.
  EXPECT_TRUE(Exists(dest_ + "/" + tables_[0] + "/snapshots"));

  // With the manifest committed, the next cycle finds nothing to do.
  ASSERT_TRUE(DefaultFileSystem()
                  ->WriteFileAtomically(dest_ + "/.snaphaven/manifest", manifest.Serialize())
                  .ok());
  RunResult r = Run({"--sync-sstables"}, {"ks1"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(testing::SummaryCount(r.err, "copied"), 0) << r.err;
  EXPECT_EQ(testing::SummaryCount(r.err, "linked"), 0) << r.err;
  EXPECT_FALSE(Exists(dest_ + "/" + Copy(0, "t1")));

  // Applied again: nothing more to remove.
  result = ApplyRetention(*DefaultFileSystem(), manifest, dest_, options,
                          [this](const std::string& rel) { return Exists(data_ + "/" + rel); });
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->removed_snapshots.empty());
  EXPECT_EQ(result->files_removed, 0);
}

TEST_F(RetentionTest, KeepForRemovesByAge) {
  MakeTree();
  const auto tree_before = ReadTree(dest_, {".snaphaven"});
  StoredManifest manifest = LoadManifest();
  const Manifest manifest_before = manifest;
  RetentionOptions options = Options();
  options.keep_for = absl::Hours(24 * 50);  // since Feb 25th: t3 and t4
  absl::StatusOr<RetentionResult> result = Apply(manifest, options, {});
  ASSERT_TRUE(result.ok()) << result.status();
  ExpectRemoved(tree_before, manifest_before, manifest, *result,
                {Copy(0, "t1"), Copy(0, "t2"), Copy(1, "t1"), Copy(1, "t2")});
}

TEST_F(RetentionTest, NeverRemovesACopyStillAtTheSourceAndNeverCountsAnIncompleteOne) {
  MakeTree();
  // t2 of the first table lost a Data.db at the destination.
  const std::string lost = dest_ + "/" + Copy(0, "t2") + "/nb-3-big-Data.db";
  ASSERT_EQ(unlink(lost.c_str()), 0);
  const auto tree_before = ReadTree(dest_, {".snaphaven"});
  StoredManifest manifest = LoadManifest();
  const Manifest manifest_before = manifest;
  RetentionOptions options = Options();
  options.keep_snapshots = 1;
  // t1 and t2 are still at the source.
  absl::StatusOr<RetentionResult> result = Apply(manifest, options, {"t1", "t2"});
  ASSERT_TRUE(result.ok()) << result.status();
  // First table: complete copies t4, t3, t1 (at the source); t2 incomplete
  // (at the source). Second table: t4, t3, t2 and t1 (both at the source).
  ExpectRemoved(tree_before, manifest_before, manifest, *result,
                {Copy(0, "t3"), Copy(1, "t3")});
  EXPECT_TRUE(Exists(dest_ + "/" + Copy(0, "t2") + "/manifest.json"));
  EXPECT_TRUE(Exists(dest_ + "/" + Copy(0, "t1") + "/nb-1-big-Data.db"));

  // Even by age the incomplete copy stays while its snapshot is at the source.
  options.keep_snapshots = 0;
  options.keep_for = absl::Hours(1);
  result = Apply(manifest, options, {"t2"});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->removed_snapshots,
            (std::vector<std::string>{Copy(0, "t1"), Copy(0, "t4"), Copy(1, "t1"),
                                      Copy(1, "t4")}));
  EXPECT_TRUE(Exists(dest_ + "/" + Copy(0, "t2") + "/manifest.json"));
  // Gone from the source, it is a partial copy of a snapshot that will never
  // be completed: removed by age like a complete one.
  result = Apply(manifest, options, {});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->removed_snapshots,
            (std::vector<std::string>{Copy(0, "t2"), Copy(1, "t2")}));
  EXPECT_FALSE(Exists(dest_ + "/" + Copy(0, "t2")));
}

// A partial copy (a cycle cut short, then Cassandra cleared the snapshot):
// the first table's t2 lacks a Data.db, the second table's t2 its
// manifest.json, at the destination and in the manifest alike.
class PartialCopyTest : public RetentionTest {
 protected:
  void SetUp() override {
    RetentionTest::SetUp();
    MakeTree();
    manifest_ = LoadManifest();
    MakePartial(Copy(0, "t2") + "/nb-3-big-Data.db");
    MakePartial(Copy(1, "t2") + "/manifest.json");
    // Without manifest.json the copy time tells its age.
    SetMtime(dest_ + "/" + Copy(1, "t2"), Day(2024, 2, 1));
    tree_before_ = ReadTree(dest_, {".snaphaven"});
    manifest_before_ = manifest_;
  }

  void MakePartial(const std::string& rel) {
    ASSERT_EQ(unlink((dest_ + "/" + rel).c_str()), 0) << rel;
    ASSERT_NE(manifest_.Find(rel), nullptr) << rel;
    manifest_.Erase(rel);
  }

  // Each of `partial` is named as a partial copy in one warning.
  static void ExpectPartialWarnings(const RetentionResult& result,
                                    const std::vector<std::string>& partial) {
    EXPECT_EQ(result.warnings.size(), partial.size());
    for (const std::string& rel : partial) {
      bool said = false;
      for (const std::string& warning : result.warnings) {
        said |= absl::StrContains(warning, rel) && absl::StrContains(warning, "partial copy");
      }
      EXPECT_TRUE(said) << rel << " not named as a partial copy";
    }
  }

  StoredManifest manifest_;
  StoredManifest manifest_before_;
  std::map<std::string, FileRecord> tree_before_;
};

TEST_F(PartialCopyTest, GoneFromTheSourceItIsRemovedByAge) {
  RetentionOptions options = Options();
  options.keep_for = absl::Hours(24 * 50);  // since Feb 25th: t3 and t4
  absl::StatusOr<RetentionResult> result = Apply(manifest_, options, {"t4"});
  ASSERT_TRUE(result.ok()) << result.status();
  ExpectRemoved(tree_before_, manifest_before_, manifest_, *result,
                {Copy(0, "t1"), Copy(0, "t2"), Copy(1, "t1"), Copy(1, "t2")});
  ExpectPartialWarnings(*result, {Copy(0, "t2"), Copy(1, "t2")});
}

TEST_F(PartialCopyTest, GoneFromTheSourceItIsRemovedBehindNCompleteCopies) {
  RetentionOptions options = Options();
  // Complete copies t4 (at the source), t3 and t1: t2 has two newer ones,
  // not three, and counts towards none.
  options.keep_snapshots = 3;
  absl::StatusOr<RetentionResult> result = Apply(manifest_, options, {"t4"});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->removed_snapshots.empty());
  EXPECT_TRUE(result->warnings.empty()) << result->warnings[0];
  EXPECT_EQ(testing::DiffTrees(tree_before_, ReadTree(dest_, {".snaphaven"})), "");

  options.keep_snapshots = 2;
  options.dry_run = true;
  result = Apply(manifest_, options, {"t4"});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->removed_snapshots,
            (std::vector<std::string>{Copy(0, "t1"), Copy(0, "t2"), Copy(1, "t1"),
                                      Copy(1, "t2")}));
  ExpectPartialWarnings(*result, {Copy(0, "t2"), Copy(1, "t2")});
  EXPECT_EQ(testing::DiffTrees(tree_before_, ReadTree(dest_, {".snaphaven"})), "");

  options.dry_run = false;
  result = Apply(manifest_, options, {"t4"});
  ASSERT_TRUE(result.ok()) << result.status();
  ExpectRemoved(tree_before_, manifest_before_, manifest_, *result,
                {Copy(0, "t1"), Copy(0, "t2"), Copy(1, "t1"), Copy(1, "t2")});
  ExpectPartialWarnings(*result, {Copy(0, "t2"), Copy(1, "t2")});
}

TEST_F(PartialCopyTest, KeptWhileItsSnapshotIsAtTheSource) {
  RetentionOptions options = Options();
  options.keep_for = absl::Hours(1);
  options.keep_snapshots = 1;
  absl::StatusOr<RetentionResult> result = Apply(manifest_, options, {"t2"});
  ASSERT_TRUE(result.ok()) << result.status();
  ExpectRemoved(tree_before_, manifest_before_, manifest_, *result,
                {Copy(0, "t1"), Copy(0, "t3"), Copy(0, "t4"), Copy(1, "t1"), Copy(1, "t3"),
                 Copy(1, "t4")});
  EXPECT_TRUE(result->warnings.empty()) << result->warnings[0];
  EXPECT_TRUE(Exists(dest_ + "/" + Copy(0, "t2") + "/manifest.json"));
  EXPECT_TRUE(Exists(dest_ + "/" + Copy(1, "t2") + "/nb-3-big-Data.db"));
}

TEST_F(PartialCopyTest, KeptWhenNoLimitApplies) {
  RetentionOptions options = Options();
  absl::StatusOr<RetentionResult> result = Apply(manifest_, options, {});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->removed_snapshots.empty());
  // Limits that reach no copy: nothing older than a year, ten kept.
  options.keep_for = absl::Hours(24 * 365);
  options.keep_snapshots = 10;
  result = Apply(manifest_, options, {});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->removed_snapshots.empty());
  EXPECT_TRUE(result->warnings.empty()) << result->warnings[0];
  EXPECT_EQ(testing::DiffTrees(tree_before_, ReadTree(dest_, {".snaphaven"})), "");
  EXPECT_EQ(manifest_.Serialize(), manifest_before_.Serialize());
}

TEST_F(RetentionTest, DryRunChangesNothingAndPredictsTheRealRun) {
  MakeTree();
  const auto tree_before = ReadTree(dest_);  // .snaphaven included
  StoredManifest manifest = LoadManifest();
  const std::string serialized = manifest.Serialize();
  RetentionOptions options = Options();
  options.keep_snapshots = 1;
  options.dry_run = true;
  absl::StatusOr<RetentionResult> dry = Apply(manifest, options, {});
  ASSERT_TRUE(dry.ok()) << dry.status();
  EXPECT_EQ(dry->removed_snapshots.size(), 6u);
  EXPECT_GT(dry->files_removed, 0);
  EXPECT_GT(dry->bytes_freed, 0);
  EXPECT_EQ(manifest.Serialize(), serialized);
  const auto tree_after = ReadTree(dest_);
  EXPECT_EQ(testing::DiffTrees(tree_before, tree_after), "");
  for (const auto& [path, record] : tree_before) {
    EXPECT_EQ(tree_after.at(path).nlink, record.nlink) << path;
  }

  options.dry_run = false;
  absl::StatusOr<RetentionResult> real = Apply(manifest, options, {});
  ASSERT_TRUE(real.ok()) << real.status();
  EXPECT_EQ(real->removed_snapshots, dry->removed_snapshots);
  EXPECT_EQ(real->files_removed, dry->files_removed);
  EXPECT_EQ(real->bytes_freed, dry->bytes_freed);
  EXPECT_NE(manifest.Serialize(), serialized);
}

TEST_F(RetentionTest, AgeFromTheCopyTimeWithoutCreatedAt) {
  // 2.1 snapshots: manifest.json has no created_at.
  tools::TreeSpec spec = Spec(1, 2, {"a", "b", "c"}, 20000);
  spec.version = "ka";
  Generate(spec);
  RunResult r = Run({}, {"ks1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string table = "ks1/" + TableDir(0).substr(TableDir(0).rfind('/') + 1);
  SetMtime(dest_ + "/" + table + "/snapshots/a", Day(2024, 3, 1));
  SetMtime(dest_ + "/" + table + "/snapshots/b", Day(2024, 1, 1));
  SetMtime(dest_ + "/" + table + "/snapshots/c", Day(2024, 2, 1));
  StoredManifest manifest = LoadManifest();
  RetentionOptions options = Options();
  options.keep_for = absl::Hours(24 * 60);  // since Feb 15th
  options.dry_run = true;
  absl::StatusOr<RetentionResult> result = Apply(manifest, options, {});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->removed_snapshots,
            (std::vector<std::string>{table + "/snapshots/b", table + "/snapshots/c"}));
  options.keep_for = absl::ZeroDuration();
  options.keep_snapshots = 2;
  options.dry_run = false;
  result = Apply(manifest, options, {});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->removed_snapshots, std::vector<std::string>{table + "/snapshots/b"});
  EXPECT_TRUE(Exists(dest_ + "/" + table + "/snapshots/a"));
  EXPECT_TRUE(Exists(dest_ + "/" + table + "/snapshots/c"));
  EXPECT_FALSE(Exists(dest_ + "/" + table + "/snapshots/b"));
}

TEST_F(RetentionTest, TheSourceIndexFollowsTheRemoval) {
  MakeTree(/*sync_live=*/false);
  StoredManifest manifest = LoadManifest();
  const std::string in_t2 = Copy(0, "t2") + "/nb-3-big-Data.db";
  ASSERT_NE(manifest.Find(in_t2), nullptr);
  const SourceIdentity source = manifest.Find(in_t2)->source();
  ASSERT_NE(manifest.FindBySource(source), nullptr);  // builds the index
  EXPECT_EQ(*manifest.FindBySource(source), in_t2);
  RetentionOptions options = Options();
  options.keep_snapshots = 2;
  absl::StatusOr<RetentionResult> result = Apply(manifest, options, {});
  ASSERT_TRUE(result.ok()) << result.status();
  // A new snapshot of that sstable is linked to a copy still there.
  const std::string* now = manifest.FindBySource(source);
  ASSERT_NE(now, nullptr);
  EXPECT_EQ(*now, Copy(0, "t3") + "/nb-3-big-Data.db");
}

// The trash is emptied through the destination walker: whatever was left
// in it goes, a file as well as a directory, and a symlink there is
// removed, never followed (what it points to stays whole).
TEST_F(RetentionTest, EmptiesTheTrashOfAnythingLeftInItWithoutFollowingSymlinks) {
  MakeTree(/*sync_live=*/false);
  const std::string trash = dest_ + "/.snaphaven/retention-trash";
  std::filesystem::create_directories(trash + "/1/.idx");
  WriteFileOrDie(trash + "/1/.idx/nb-1-big-Data.db", "x");
  WriteFileOrDie(trash + "/2", "a file put there by hand");
  const std::string elsewhere = dir_ + "/elsewhere";
  std::filesystem::create_directories(elsewhere);
  WriteFileOrDie(elsewhere + "/keep-me", "not snaphaven's");
  std::filesystem::create_directory_symlink(elsewhere, trash + "/3");
  Manifest manifest = LoadManifest();
  RetentionOptions options = Options();
  options.keep_snapshots = 10;
  absl::StatusOr<RetentionResult> result = Apply(manifest, options, {});
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(result->warnings.size(), 1u) << result->warnings.back();
  EXPECT_TRUE(absl::StrContains(result->warnings[0], "removed 3 leftover")) << result->warnings[0];
  EXPECT_FALSE(Exists(trash));
  EXPECT_EQ(ReadFileOrDie(elsewhere + "/keep-me"), "not snaphaven's");
}

TEST_F(RetentionTest, FinishesAnInterruptedRemovalAndForgetsVanishedCopies) {
  MakeTree(/*sync_live=*/false);
  const std::string trash = dest_ + "/.snaphaven/retention-trash";
  std::filesystem::create_directories(trash + "/1/.idx");
  WriteFileOrDie(trash + "/1/.idx/nb-1-big-Data.db", "x");
  WriteFileOrDie(trash + "/1/manifest.json", "{}");
  // A copy removed by hand (or whose removal was never committed).
  std::filesystem::remove_all(dest_ + "/" + Copy(1, "t1"));
  StoredManifest manifest = LoadManifest();
  const size_t entries = manifest.size();
  RetentionOptions options = Options();
  options.keep_snapshots = 10;
  absl::StatusOr<RetentionResult> result = Apply(manifest, options, {});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->removed_snapshots.empty());
  EXPECT_FALSE(Exists(trash + "/1"));
  ASSERT_EQ(result->warnings.size(), 2u);
  EXPECT_TRUE(absl::StrContains(result->warnings[0], "removed 2 leftover")) << result->warnings[0];
  EXPECT_TRUE(absl::StrContains(result->warnings[1], Copy(1, "t1"))) << result->warnings[1];
  EXPECT_LT(manifest.size(), entries);
  for (const auto& [path, entry] : manifest.entries()) {
    EXPECT_FALSE(absl::StartsWith(path, Copy(1, "t1") + "/")) << path;
  }
}

TEST_F(RetentionTest, RefusesBadOptionsAndDoesNothingWithoutLimits) {
  MakeTree(/*sync_live=*/false);
  StoredManifest manifest = LoadManifest();
  const std::string serialized = manifest.Serialize();
  RetentionOptions options = Options();
  absl::StatusOr<RetentionResult> result = Apply(manifest, options, {});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->removed_snapshots.empty());
  options.keep_snapshots = -1;
  EXPECT_EQ(Apply(manifest, options, {}).status().code(), absl::StatusCode::kInvalidArgument);
  options.keep_snapshots = 0;
  options.keep_for = -absl::Hours(1);
  EXPECT_EQ(Apply(manifest, options, {}).status().code(), absl::StatusCode::kInvalidArgument);
  options.keep_for = absl::ZeroDuration();
  options.keyspaces = {"../etc"};
  options.keep_snapshots = 1;
  EXPECT_EQ(Apply(manifest, options, {}).status().code(), absl::StatusCode::kInvalidArgument);
  // Another keyspace only: this one is left alone.
  options.keyspaces = {"ks2"};
  result = Apply(manifest, options, {});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->removed_snapshots.empty());
  EXPECT_EQ(manifest.Serialize(), serialized);
}

// Retention used to read every section in (and once replaced the manifest
// with what it could read: the rest was lost). It now finds the copies from
// the manifest's directories and reads only their sections; a damaged
// section it never needed is caught by the commit that copies it.
TEST(RetentionLazyManifest, ReadsNoSectionItDoesNotNeedAndNeverCommitsADamagedOne) {
  FileSystem& fs = *DefaultFileSystem();
  const std::string dir = snaphaven::testing::MakeTempDir("retention_lazy");
  const std::string path = dir + "/manifest";
  StoredManifest m;
  m.Put("ks/t/snapshots/gone/nb-1-big-Data.db", {10, 1, 0644, 1, 1});
  m.Put("zz/u/nb-1-big-Data.db", {20, 1, 0644, 1, 2});  // live: no business of retention
  ASSERT_TRUE(fs.WriteFileAtomically(path, m.Serialize()).ok());
  absl::StatusOr<StoredManifest> lazy =
      StoredManifest::Load(fs, path, StoredManifest::Loading::kLazy);
  ASSERT_TRUE(lazy.ok()) << lazy.status();
  // The zz/u section damaged in place (the same inode the manifest reads).
  std::string text = snaphaven::testing::ReadFileOrDie(path);
  size_t at = text.find("nb-1-big-Data.db\t20");
  ASSERT_NE(at, std::string::npos);
  int fd = open(path.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(pwrite(fd, "X", 1, static_cast<off_t>(at)), 1);
  close(fd);

  // Which copies there are comes from the manifest's directories: no
  // section is read in to find them.
  RetentionOptions options;
  options.keep_snapshots = 1;
  absl::StatusOr<RetentionResult> result = ApplyRetention(
      fs, *lazy, dir + "/dest", options, [](const std::string&) { return false; });
  EXPECT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(lazy->size(), 1u) << "the entry of the copy missing at the destination stays";
  // A commit copies the sections never read in, checked again: the damage
  // is caught there, and nothing is written.
  EXPECT_FALSE(lazy->CommitWhole(fs, path).ok());
  EXPECT_EQ(snaphaven::testing::ReadFileOrDie(path).size(), text.size());
}

}  // namespace
}  // namespace snaphaven
