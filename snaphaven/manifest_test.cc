#include "snaphaven/manifest.h"

#include <gtest/gtest.h>

#include <string>

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

}  // namespace
}  // namespace snaphaven
