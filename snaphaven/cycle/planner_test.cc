#include "snaphaven/cycle/planner.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace snaphaven {
namespace {

SourceFile File(const std::string& path, uint64_t ino, int64_t size, int64_t mtime) {
  SourceFile f;
  f.relative_path = path;
  f.stat.type = FileType::kRegular;
  f.stat.dev = 1;
  f.stat.ino = ino;
  f.stat.size = size;
  f.stat.mtime_ns = mtime;
  f.stat.mode = 0644;
  return f;
}

ManifestEntry Entry(int64_t size, int64_t mtime, uint64_t ino = 0) {
  return ManifestEntry{size, mtime, 0644, ino == 0 ? 0u : 1u, ino};
}

// One action rendered as text: "copy a", "link b<-a", "link b<-a@0".
std::string Render(const Plan& plan, const std::vector<SourceFile>& files) {
  std::string out;
  for (const Action& a : plan.actions) {
    if (!out.empty()) out += "; ";
    if (a.kind == ActionKind::kCopy) {
      absl::StrAppend(&out, "copy ", files[a.file].relative_path);
    } else {
      absl::StrAppend(&out, "link ", files[a.file].relative_path, "<-", a.link_from);
      if (a.after >= 0) absl::StrAppend(&out, "@", a.after);
    }
  }
  return out;
}

struct PlanCase {
  const char* name;
  std::vector<SourceFile> files;
  std::vector<std::pair<std::string, ManifestEntry>> manifest;
  std::string actions;
  int64_t unchanged;
  int64_t bytes;
  size_t updates;
};

TEST(PlanCycle, TableDriven) {
  const std::vector<PlanCase> cases = {
      {"empty source, empty manifest", {}, {}, "", 0, 0, 0},
      {"new file is copied", {File("a", 1, 10, 5)}, {}, "copy a", 0, 10, 0},
      {"matching entry is unchanged",
       {File("a", 1, 10, 5)}, {{"a", Entry(10, 5, 1)}}, "", 1, 0, 0},
      {"size differs: copied", {File("a", 1, 11, 5)}, {{"a", Entry(10, 5, 1)}}, "copy a", 0, 11, 0},
      {"mtime differs: copied", {File("a", 1, 10, 6)}, {{"a", Entry(10, 5, 1)}}, "copy a", 0, 10, 0},
      {"same inode twice in one cycle: one copy, one link",
       {File("s1/a", 1, 10, 5), File("s2/a", 1, 10, 5)}, {},
       "copy s1/a; link s2/a<-s1/a@0", 0, 10, 0},
      {"new snapshot of a stored inode: linked to the earlier copy",
       {File("s1/a", 1, 10, 5), File("s2/a", 1, 10, 5)}, {{"s1/a", Entry(10, 5, 1)}},
       "link s2/a<-s1/a", 1, 0, 0},
      {"stored inode from an earlier cycle whose source is gone",
       {File("s2/a", 1, 10, 5)}, {{"s1/a", Entry(10, 5, 1)}}, "link s2/a<-s1/a", 0, 0, 0},
      {"same inode number but rewritten (mtime differs): copied",
       {File("s2/a", 1, 10, 9)}, {{"s1/a", Entry(10, 5, 1)}}, "copy s2/a", 0, 10, 0},
      {"links precede nothing they depend on, whatever the path order",
       {File("a/x", 2, 3, 3), File("b/x", 1, 10, 5), File("c/x", 2, 3, 3)},
       {{"c/x", Entry(3, 3, 2)}}, "link a/x<-c/x; copy b/x", 1, 10, 0},
      {"rebuilt manifest (no source identity): unchanged, identity recorded",
       {File("s1/a", 1, 10, 5), File("s2/a", 1, 10, 5)}, {{"s1/a", Entry(10, 5)}},
       "link s2/a<-s1/a", 1, 0, 1},
      // Regression (found by the soak): a snapshot of the old Statistics.db
      // inode must not be linked to the live-mirror path that this same
      // cycle overwrites with the rewritten file's bytes.
      {"earlier copy of the inode is being overwritten this cycle: copied, not linked",
       {File("ks/t/nb-1-big-Statistics.db", 9, 12, 7),
        File("ks/t/snapshots/s/nb-1-big-Statistics.db", 1, 10, 5)},
       {{"ks/t/nb-1-big-Statistics.db", Entry(10, 5, 1)}},
       "copy ks/t/nb-1-big-Statistics.db; copy ks/t/snapshots/s/nb-1-big-Statistics.db", 0, 22, 0},
      {"different inodes with the same size and mtime are not linked",
       {File("a", 1, 10, 5), File("b", 2, 10, 5)}, {}, "copy a; copy b", 0, 20, 0},
  };
  for (const PlanCase& c : cases) {
    SCOPED_TRACE(c.name);
    Manifest manifest;
    for (const auto& [path, entry] : c.manifest) manifest.Put(path, entry);
    Plan plan = PlanCycle(c.files, manifest, PlanOptions{});
    EXPECT_EQ(Render(plan, c.files), c.actions);
    EXPECT_EQ(plan.unchanged, c.unchanged);
    EXPECT_EQ(plan.bytes_to_copy, c.bytes);
    EXPECT_EQ(plan.manifest_updates.size(), c.updates);
  }
}

TEST(PlanCycle, DecisionsExplainEveryFile) {
  std::vector<SourceFile> files = {File("a", 1, 10, 5), File("b", 1, 10, 5), File("c", 3, 1, 1)};
  Manifest manifest;
  manifest.Put("c", Entry(1, 1, 3));
  PlanOptions options;
  options.record_decisions = true;
  Plan plan = PlanCycle(files, manifest, options);
  ASSERT_EQ(plan.decisions.size(), 3u);
  EXPECT_EQ(plan.decisions[0], "unchanged c");
  EXPECT_EQ(plan.decisions[1], "copy a (new)");
  EXPECT_EQ(plan.decisions[2], "link b (new, same inode as a)");
}

TEST(PlanCycle, IsDeterministic) {
  std::vector<SourceFile> files;
  for (int i = 0; i < 50; ++i) {
    files.push_back(File(absl::StrCat("s", i % 5, "/f", i), 1 + i % 7, 10, 5));
  }
  Manifest manifest;
  std::string first = Render(PlanCycle(files, manifest, {}), files);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(Render(PlanCycle(files, manifest, {}), files), first);
}

// ---- PlanPrune: the live mirror's sstables gone from the source ----

const absl::Time kPruneNow = absl::FromUnixSeconds(1700000000);
const int64_t kPruneNowNs = absl::ToUnixNanos(kPruneNow);
const absl::Duration kPruneAfter = absl::Hours(1);
constexpr char kPruneTable[] = "ks/t-0094ac203e7411e59149ef9f87394ca6";
const std::vector<std::string> kComponents = {"Data.db", "Index.db", "TOC.txt"};

// A live-mirror entry, gone from the source since `missing_since` (0: not).
ManifestEntry LiveEntry(int64_t missing_since = 0) {
  ManifestEntry entry = Entry(10, 5, 7);
  entry.missing_since_ns = missing_since;
  return entry;
}

// Puts every component of the sstable `key` ("<dir>/<prefix>").
void PutSSTable(Manifest& manifest, const std::string& key, int64_t missing_since = 0) {
  for (const std::string& c : kComponents) {
    manifest.Put(absl::StrCat(key, "-", c), LiveEntry(missing_since));
  }
}

std::vector<std::string> Paths(const std::string& key) {
  std::vector<std::string> out;
  for (const std::string& c : kComponents) out.push_back(absl::StrCat(key, "-", c));
  return out;
}

// "path=missing_since" per update, in order.
std::vector<std::string> Updates(const PrunePlan& plan) {
  std::vector<std::string> out;
  for (const auto& [path, entry] : plan.updates) {
    EXPECT_EQ(entry.size, 10) << path;  // the rest of the entry is kept
    EXPECT_EQ(entry.source_ino, 7u) << path;
    out.push_back(absl::StrCat(path, "=", entry.missing_since_ns));
  }
  return out;
}

std::vector<std::string> Marked(const std::string& key, int64_t since) {
  std::vector<std::string> out;
  for (const std::string& path : Paths(key)) out.push_back(absl::StrCat(path, "=", since));
  return out;
}

TEST(PlanPrune, AGoneSSTableIsMarkedThenRemovedWholeAfterPruneAfter) {
  const std::string live = absl::StrCat(kPruneTable, "/nb-1-big");
  const std::string gone = absl::StrCat(kPruneTable, "/nb-2-big");
  Manifest manifest;
  PutSSTable(manifest, live);
  PutSSTable(manifest, gone);
  PrunePlan plan = PlanPrune(manifest, {"ks"}, {live}, kPruneNow, kPruneAfter);
  EXPECT_EQ(Updates(plan), Marked(gone, kPruneNowNs));
  EXPECT_TRUE(plan.remove.empty());

  // Recorded: not yet old enough, nothing more to do.
  for (const auto& [path, entry] : plan.updates) manifest.Put(path, entry);
  plan = PlanPrune(manifest, {"ks"}, {live}, kPruneNow + kPruneAfter - absl::Nanoseconds(1),
                   kPruneAfter);
  EXPECT_TRUE(plan.updates.empty());
  EXPECT_TRUE(plan.remove.empty());

  // prune_after later: every component of it, and nothing else.
  plan = PlanPrune(manifest, {"ks"}, {live}, kPruneNow + kPruneAfter, kPruneAfter);
  EXPECT_TRUE(plan.updates.empty());
  EXPECT_EQ(plan.remove, Paths(gone));
}

// The components were seen gone at different times (one was copied later,
// or a cycle failed between): the earliest decides, and all go together.
TEST(PlanPrune, TheEarliestMissingSinceDecidesForEveryComponent) {
  const std::string key = absl::StrCat(kPruneTable, "/nb-2-big");
  Manifest manifest;
  manifest.Put(key + "-Data.db", LiveEntry(kPruneNowNs - absl::ToInt64Nanoseconds(absl::Hours(2))));
  manifest.Put(key + "-Index.db", LiveEntry(kPruneNowNs - absl::ToInt64Nanoseconds(absl::Minutes(1))));
  manifest.Put(key + "-TOC.txt", LiveEntry());  // copied since: not marked yet
  PrunePlan plan = PlanPrune(manifest, {kPruneTable}, {}, kPruneNow, kPruneAfter);
  EXPECT_EQ(Updates(plan), std::vector<std::string>{absl::StrCat(key, "-TOC.txt=", kPruneNowNs)});
  EXPECT_EQ(plan.remove, Paths(key));

  // None old enough: none removed.
  manifest.Put(key + "-Data.db", LiveEntry(kPruneNowNs - absl::ToInt64Nanoseconds(absl::Minutes(59))));
  plan = PlanPrune(manifest, {kPruneTable}, {}, kPruneNow, kPruneAfter);
  EXPECT_TRUE(plan.remove.empty()) << plan.remove[0];
}

TEST(PlanPrune, AnSSTableThatCameBackIsNoLongerMissing) {
  const std::string key = absl::StrCat(kPruneTable, "/nb-1-big");
  Manifest manifest;
  PutSSTable(manifest, key, kPruneNowNs - absl::ToInt64Nanoseconds(absl::Hours(5)));
  PrunePlan plan = PlanPrune(manifest, {"ks"}, {key}, kPruneNow, kPruneAfter);
  EXPECT_EQ(Updates(plan), Marked(key, 0));
  EXPECT_TRUE(plan.remove.empty());
}

// Only the live mirror is pruned: a snapshot or backup copy stays whatever
// the source holds (and whatever its entry says).
TEST(PlanPrune, SnapshotAndBackupCopiesAreNeverPruned) {
  const int64_t long_ago = kPruneNowNs - absl::ToInt64Nanoseconds(absl::Hours(100));
  Manifest manifest;
  PutSSTable(manifest, absl::StrCat(kPruneTable, "/snapshots/s1/nb-1-big"));
  PutSSTable(manifest, absl::StrCat(kPruneTable, "/snapshots/s1/.t_idx/nb-1-big"), long_ago);
  PutSSTable(manifest, absl::StrCat(kPruneTable, "/backups/nb-1-big"));
  PutSSTable(manifest, absl::StrCat(kPruneTable, "/backups/.t_idx/nb-2-big"), long_ago);
  manifest.Put(absl::StrCat(kPruneTable, "/snapshots/s1/manifest.json"), LiveEntry());
  for (const std::string& scope : {std::string("ks"), std::string(kPruneTable)}) {
    SCOPED_TRACE(scope);
    PrunePlan plan = PlanPrune(manifest, {scope}, {}, kPruneNow, kPruneAfter);
    EXPECT_TRUE(plan.updates.empty()) << plan.updates[0].first;
    EXPECT_TRUE(plan.remove.empty()) << plan.remove[0];
  }
}

// Scopes are whole path components: "ks" is not "ks2", a table is not its
// neighbour. What is outside them is not looked at, even when long gone.
TEST(PlanPrune, OnlyTheScopesAreLookedAt) {
  const int64_t long_ago = kPruneNowNs - absl::ToInt64Nanoseconds(absl::Hours(100));
  const std::string a = absl::StrCat(kPruneTable, "/nb-1-big");
  const std::string b = "ks/u-1c3f4ea03e7411e59149ef9f87394ca6/nb-1-big";
  const std::string other_keyspace = "ks2/t-5f1a7b103e7411e59149ef9f87394ca6/nb-1-big";
  Manifest manifest;
  PutSSTable(manifest, a, long_ago);
  PutSSTable(manifest, b, long_ago);
  PutSSTable(manifest, other_keyspace, long_ago);
  manifest.Put("ks2/t-5f1a7b103e7411e59149ef9f87394ca6/nb-2-big-Data.db", LiveEntry());

  PrunePlan plan = PlanPrune(manifest, {kPruneTable}, {}, kPruneNow, kPruneAfter);
  EXPECT_TRUE(plan.updates.empty());
  EXPECT_EQ(plan.remove, Paths(a));

  plan = PlanPrune(manifest, {"ks"}, {}, kPruneNow, kPruneAfter);
  EXPECT_TRUE(plan.updates.empty());
  std::vector<std::string> both = Paths(a);
  for (const std::string& path : Paths(b)) both.push_back(path);
  EXPECT_EQ(plan.remove, both);

  plan = PlanPrune(manifest, {"ks2"}, {}, kPruneNow, kPruneAfter);
  EXPECT_EQ(Updates(plan), std::vector<std::string>{absl::StrCat(
                               "ks2/t-5f1a7b103e7411e59149ef9f87394ca6/nb-2-big-Data.db=",
                               kPruneNowNs)});
  EXPECT_EQ(plan.remove, Paths(other_keyspace));

  // A keyspace whose name starts like another's.
  plan = PlanPrune(manifest, {"k"}, {}, kPruneNow, kPruneAfter);
  EXPECT_TRUE(plan.updates.empty());
  EXPECT_TRUE(plan.remove.empty());
}

// A secondary index's sstables ("ks/t/.t_idx/nb-1-big") are sstables of
// their own: the table's live sstable of the same name does not keep them.
TEST(PlanPrune, IndexSSTablesAreTheirOwnSSTables) {
  const std::string table_sstable = absl::StrCat(kPruneTable, "/nb-1-big");
  const std::string index_sstable = absl::StrCat(kPruneTable, "/.t_idx/nb-1-big");
  Manifest manifest;
  PutSSTable(manifest, table_sstable);
  PutSSTable(manifest, index_sstable);
  PrunePlan plan = PlanPrune(manifest, {kPruneTable}, {table_sstable}, kPruneNow, kPruneAfter);
  EXPECT_EQ(Updates(plan), Marked(index_sstable, kPruneNowNs));

  plan = PlanPrune(manifest, {kPruneTable}, {index_sstable}, kPruneNow, kPruneAfter);
  EXPECT_EQ(Updates(plan), Marked(table_sstable, kPruneNowNs));

  PutSSTable(manifest, index_sstable, kPruneNowNs - absl::ToInt64Nanoseconds(kPruneAfter));
  plan = PlanPrune(manifest, {kPruneTable}, {table_sstable}, kPruneNow, kPruneAfter);
  EXPECT_EQ(plan.remove, Paths(index_sstable));
}

// Files of the live mirror that are no sstable's (a transaction log, a 2.x
// temporary) have no key: never marked, never removed.
TEST(PlanPrune, FilesOfNoSSTableAreLeftAlone) {
  Manifest manifest;
  manifest.Put(absl::StrCat(kPruneTable, "/nb_txn_flush_0a.log"), LiveEntry());
  manifest.Put(absl::StrCat(kPruneTable, "/tmp-la-3-big-Data.db"), LiveEntry(1));
  PrunePlan plan = PlanPrune(manifest, {"ks"}, {}, kPruneNow, kPruneAfter);
  EXPECT_TRUE(plan.updates.empty());
  EXPECT_TRUE(plan.remove.empty());
}

// A manifest whose every section is elsewhere (as a lazily loaded one's are
// on disk), read in only through the store's interface, which notes each
// directory it is asked for.
class SectionedManifest : public Manifest {
 public:
  explicit SectionedManifest(const Manifest& all) {
    for (const auto& [path, entry] : all.loaded_entries()) {
      stored_[std::string(DirName(path))].emplace_back(path, entry);
    }
    for (const auto& [dir, entries] : stored_) {
      unloaded_[dir] = entries.size();
      unloaded_entries_ += entries.size();
    }
  }
  const std::vector<std::string>& read() const { return read_; }

 protected:
  absl::Status ReadSection(
      absl::string_view dir,
      std::vector<std::pair<std::string, ManifestEntry>>* out) const override {
    read_.emplace_back(dir);
    *out = stored_.at(std::string(dir));
    return absl::OkStatus();
  }
  bool CanReadBack() const override { return true; }

 private:
  std::map<std::string, std::vector<std::pair<std::string, ManifestEntry>>> stored_;
  mutable std::vector<std::string> read_;
};

// The planner is pure: PlanPrune reads nothing in; LoadLiveMirror, before
// it, reads in the live mirror's sections of the scopes, and no others.
TEST(PlanPrune, ReadsNothingInItselfAndLoadLiveMirrorOnlyTheLiveSections) {
  Manifest all;
  const std::string gone = absl::StrCat(kPruneTable, "/nb-1-big");
  PutSSTable(all, gone);
  PutSSTable(all, absl::StrCat(kPruneTable, "/.idx/nb-1-big"));
  PutSSTable(all, absl::StrCat(kPruneTable, "/snapshots/s/nb-1-big"));
  PutSSTable(all, "ks2/t/nb-1-big");
  SectionedManifest manifest(all);
  PrunePlan plan = PlanPrune(manifest, {"ks"}, {}, kPruneNow, kPruneAfter);
  EXPECT_TRUE(manifest.read().empty());
  EXPECT_TRUE(plan.updates.empty()) << "nothing in memory to plan from";

  LoadLiveMirror(manifest, {"ks"});
  EXPECT_EQ(manifest.read(), (std::vector<std::string>{std::string(kPruneTable),
                                                       absl::StrCat(kPruneTable, "/.idx")}));
  plan = PlanPrune(manifest, {"ks"}, {}, kPruneNow, kPruneAfter);
  EXPECT_EQ(plan.updates.size(), 2 * kComponents.size());
  EXPECT_EQ(manifest.read().size(), 2u);
}

}  // namespace
}  // namespace snaphaven
