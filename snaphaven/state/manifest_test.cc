#include "snaphaven/state/manifest.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace snaphaven {
namespace {

// Entries of a few sources, one of them looked for.
Manifest Sample() {
  Manifest m;
  m.Put("ks/t/snapshots/s1/nb-1-big-Data.db", {100, 1700000000123456789, 0644, 2049, 77});
  m.Put("ks/t/snapshots/s1/nb-1-big-TOC.txt", {5, 1, 0600, 2049, 78});
  m.Put("ks/t/snapshots/s1/nb-2-big-Data.db", {7, 8, 0644, 1, 2, 0, true, 0x0badf00d});
  m.Put("ks/t/nb-3-big-Data.db", {7, 8, 0644, 1, 3, 1700000000000000000, true, 0});
  return m;
}

TEST(Manifest, FindsBySourceIdentity) {
  Manifest m = Sample();
  const std::string* path = m.FindBySource({2049, 77, 100, 1700000000123456789});
  ASSERT_NE(path, nullptr);
  EXPECT_EQ(*path, "ks/t/snapshots/s1/nb-1-big-Data.db");
  EXPECT_EQ(m.FindBySource({2049, 77, 101, 1700000000123456789}), nullptr);  // size differs
  // An overwritten entry no longer answers for its old source.
  m.Put("ks/t/snapshots/s1/nb-1-big-Data.db", {100, 5, 0644, 2049, 99});
  EXPECT_EQ(m.FindBySource({2049, 77, 100, 1700000000123456789}), nullptr);
}

// Regression: after erasing the path the index named, another path with the
// same source must still be found (a new snapshot of a pruned sstable is
// linked, not copied again).
TEST(Manifest, FindsBySourceAfterAnErase) {
  Manifest m;
  m.Put("a/live", {10, 5, 0644, 1, 42});
  m.Put("b/snapshots/s/f", {10, 5, 0644, 1, 42});
  ASSERT_NE(m.FindBySource({1, 42, 10, 5}), nullptr);
  const std::string first = *m.FindBySource({1, 42, 10, 5});
  m.Erase(first);
  const std::string* other = m.FindBySource({1, 42, 10, 5});
  ASSERT_NE(other, nullptr);
  EXPECT_NE(*other, first);
}

// ----------------------------------------------- the rules on the entries

FileStat Source(int64_t size, int64_t mtime_ns, uint64_t ino) {
  FileStat stat;
  stat.size = size;
  stat.mtime_ns = mtime_ns;
  stat.dev = 2049;
  stat.ino = ino;
  stat.mode = 0100644;
  return stat;
}

// One rule for "is this copy current": the size, and the mtime at the
// destination's granularity; from which source it was recorded tells the
// two kinds of current apart.
TEST(Manifest, TellsTheStateOfACopy) {
  const FileStat source = Source(100, 1700000000123456789, 77);
  EXPECT_EQ(StateOfCopy(nullptr, source, 1), CopyState::kNone);
  const ManifestEntry same = EntryForSource(source);
  EXPECT_EQ(StateOfCopy(&same, source, 1), CopyState::kCurrentSameSource);
  EXPECT_TRUE(IsCurrent(StateOfCopy(&same, source, 1)));
  // Another inode with the same bytes (a copy, not a link of this one).
  const ManifestEntry other = EntryForSource(Source(100, 1700000000123456789, 78));
  EXPECT_EQ(StateOfCopy(&other, source, 1), CopyState::kCurrent);
  EXPECT_TRUE(IsCurrent(StateOfCopy(&other, source, 1)));
  // Another size, or another mtime at nanosecond granularity: stale.
  const ManifestEntry bigger = EntryForSource(Source(101, 1700000000123456789, 77));
  EXPECT_EQ(StateOfCopy(&bigger, source, 1), CopyState::kStale);
  const ManifestEntry older = EntryForSource(Source(100, 1700000000000000000, 77));
  EXPECT_EQ(StateOfCopy(&older, source, 1), CopyState::kStale);
  EXPECT_FALSE(IsCurrent(StateOfCopy(&older, source, 1)));
  // On a destination keeping whole seconds (sshfs), the same second is current.
  EXPECT_EQ(StateOfCopy(&older, source, 1000000000), CopyState::kCurrent);
  EXPECT_TRUE(IsCurrentCopy(&older, source, 1000000000));
  EXPECT_FALSE(IsCurrentCopy(&older, source, 1));
}

// Hard links of one source in one table directory are the same bytes:
// counted once. The same source in another table is counted again.
TEST(Manifest, CountsHardLinkedBytesOncePerTable) {
  Manifest m;
  const ManifestEntry data{1000, 5, 0644, 2049, 7};
  m.Put("ks/t/nb-1-big-Data.db", data);
  m.Put("ks/t/snapshots/a/nb-1-big-Data.db", data);
  m.Put("ks/t/snapshots/b/nb-1-big-Data.db", data);
  EXPECT_EQ(m.UniqueBytes(), 1000);
  m.Put("ks/u/snapshots/a/nb-1-big-Data.db", data);
  EXPECT_EQ(m.UniqueBytes(), 2000);
  // An entry of unknown source (rebuilt from the destination) is its own bytes.
  m.Put("ks/t/snapshots/c/nb-1-big-Data.db", {1000, 5, 0644, 0, 0});
  EXPECT_EQ(m.UniqueBytes(), 3000);
  m.Erase("ks/t/nb-1-big-Data.db");
  m.Erase("ks/t/snapshots/a/nb-1-big-Data.db");
  EXPECT_EQ(m.UniqueBytes(), 3000) << "one name of the source is left";
  m.Erase("ks/t/snapshots/b/nb-1-big-Data.db");
  EXPECT_EQ(m.UniqueBytes(), 2000);
  EXPECT_EQ(m.size(), 2u);
}

TEST(Manifest, ListsDirectoriesAndTables) {
  Manifest m;
  for (const char* path : {"top", "ks/t-1/nb-1-big-Data.db", "ks/t-1/snapshots/s/.idx/f",
                           "ks/t-2/backups/f", "other/t/f", "ks2/t/f"}) {
    m.Put(path, {1, 1, 0644, 0, 0});
  }
  EXPECT_EQ(m.Directories(),
            (std::vector<std::string>{"", "ks/t-1", "ks/t-1/snapshots/s/.idx", "ks/t-2/backups",
                                      "ks2/t", "other/t"}));
  EXPECT_EQ(m.TablesBelow({"ks", "ks2"}),
            (std::vector<std::string>{"ks/t-1", "ks/t-2", "ks2/t"}));
  EXPECT_EQ(Manifest::LinkScope("ks/t-1/snapshots/s/f"), "ks/t-1");
  EXPECT_EQ(Manifest::LinkScope("ks/f"), "");
}

// A manifest built in memory has no place on disk to read entries back
// from: letting go of a table must keep them (they would be lost).
TEST(Manifest, ABuiltManifestKeepsWhatItCannotReadBack) {
  Manifest m = Sample();
  const Manifest::Map before = m.loaded_entries();
  m.Release("ks/t");
  m.Release("");
  EXPECT_EQ(m.loaded_entries(), before);
  EXPECT_TRUE(m.fully_loaded());
}

}  // namespace
}  // namespace snaphaven
