#include "snaphaven/planner.h"

#include <gtest/gtest.h>

#include <string>
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

}  // namespace
}  // namespace snaphaven
