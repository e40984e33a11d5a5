#include "snaphaven/manifest.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace snaphaven {
namespace {

Manifest Sample() {
  Manifest m;
  m.Put("ks/t/snapshots/s1/nb-1-big-Data.db", {100, 1700000000123456789, 0644, 2049, 77});
  m.Put("ks/t/snapshots/tag with space/nb-1-big-TOC.txt", {5, 1, 0600, 2049, 78});
  m.Put("ks/t/snapshots/\xc3\xa9t\xc3\xa9/\tweird\nname", {0, 0, 0600, 0, 0});
  m.Put("ks/t/snapshots/bad\xff" "utf8/f", {1, 2, 0640, 0, 0});
  ManifestEntry with_crc{7, 8, 0644, 1, 2, 0, true, 0x0badf00d};
  m.Put("ks/t/snapshots/s1/nb-2-big-Data.db", with_crc);
  ManifestEntry gone{7, 8, 0644, 1, 3, 1700000000000000000, true, 0};
  m.Put("ks/t/nb-3-big-Data.db", gone);
  return m;
}

TEST(Manifest, RoundTripsExactly) {
  Manifest m = Sample();
  std::string text = m.Serialize();
  absl::StatusOr<Manifest> parsed = Manifest::Parse(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->entries(), m.entries());
  EXPECT_EQ(parsed->Serialize(), text);  // deterministic
}

TEST(Manifest, ReadsVersion1) {
  absl::StatusOr<Manifest> parsed = Manifest::Parse(
      "snaphaven-manifest 1\nks/t/snapshots/s/f\t5\t6\t1a4\t1\t2\nks/t/f\t1\t2\t1a4\t1\t3\t99\n"
      "end 2 ");
  // (checksum filled in below)
  std::string body =
      "snaphaven-manifest 1\nks/t/snapshots/s/f\t5\t6\t1a4\t1\t2\nks/t/f\t1\t2\t1a4\t1\t3\t99\n";
  uLong crc = crc32(0, reinterpret_cast<const Bytef*>(body.data()), body.size());
  parsed = Manifest::Parse(absl::StrCat(body, "end 2 ", absl::Hex(crc, absl::kZeroPad8), "\n"));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->Find("ks/t/snapshots/s/f")->size, 5);
  EXPECT_FALSE(parsed->Find("ks/t/snapshots/s/f")->has_crc32);
  EXPECT_EQ(parsed->Find("ks/t/f")->missing_since_ns, 99);
}

TEST(Manifest, EmptyRoundTrips) {
  absl::StatusOr<Manifest> parsed = Manifest::Parse(Manifest().Serialize());
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->size(), 0u);
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

TEST(Manifest, RejectsEveryTruncation) {
  std::string text = Sample().Serialize();
  for (size_t cut = 0; cut < text.size(); ++cut) {
    EXPECT_FALSE(Manifest::Parse(text.substr(0, cut)).ok()) << "cut at " << cut;
  }
}

TEST(Manifest, RejectsFlippedBytes) {
  std::string text = Sample().Serialize();
  for (size_t i = 0; i < text.size(); ++i) {
    std::string bad = text;
    bad[i] ^= 0x01;
    EXPECT_FALSE(Manifest::Parse(bad).ok()) << "flip at " << i;
  }
}

// A crafted manifest (valid checksum) must not point outside the destination.
TEST(Manifest, RejectsPathsOutsideTheDestination) {
  for (const char* evil : {"../etc/passwd", "/etc/passwd", "ks/../../x", ".snaphaven/lock"}) {
    Manifest m;
    m.Put(evil, {1, 1, 0644, 0, 0});
    absl::StatusOr<Manifest> parsed = Manifest::Parse(m.Serialize());
    EXPECT_FALSE(parsed.ok()) << evil;
  }
}

TEST(Manifest, RejectsGarbage) {
  EXPECT_FALSE(Manifest::Parse("").ok());
  EXPECT_FALSE(Manifest::Parse("hello\n").ok());
  EXPECT_FALSE(Manifest::Parse("snaphaven-manifest 1\nend 0 00000000\n").ok());
}

}  // namespace
}  // namespace snaphaven
