// The directory cache's file format (versions 1 and 2) and its listing
// digest, on the crafted inputs in testdata/dircache/.

#include "snaphaven/state/dir_cache.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

namespace snaphaven {
namespace {

std::string Read(const std::string& name) {
  std::ifstream in("testdata/dircache/" + name, std::ios::binary);
  EXPECT_TRUE(in.good()) << name;
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(DirCacheTest, AVersion1FileIsReadWithoutListings) {
  absl::StatusOr<DirCache> cache = DirCache::Parse(Read("two_snapshots.txt"));
  ASSERT_TRUE(cache.ok()) << cache.status();
  ASSERT_EQ(cache->dirs().size(), 3u);
  for (const auto& [path, dir] : cache->dirs()) EXPECT_EQ(dir.listing, 0u) << path;
  const CachedDir* tag = cache->Find(
      "/var/lib/cassandra/data/ks1/users-0123456789abcdef0123456789abcdef/snapshots/daily-1");
  ASSERT_NE(tag, nullptr);
  EXPECT_EQ(tag->files, 4);
  EXPECT_EQ(tag->subdirs, std::vector<std::string>{".idx"});
}

TEST(DirCacheTest, Version2KeepsTheListingDigest) {
  absl::StatusOr<DirCache> cache = DirCache::Parse(Read("live_dirs_v2.txt"));
  ASSERT_TRUE(cache.ok()) << cache.status();
  const CachedDir* live = cache->Find("/var/lib/cassandra/data/ks1/users-0123456789abcdef0123456789abcdef");
  ASSERT_NE(live, nullptr);
  EXPECT_EQ(live->listing, 0x8a90a56addd6764fULL);
  EXPECT_EQ(live->subdirs, std::vector<std::string>{});
  // Written back byte for byte, and a round trip keeps every field.
  EXPECT_EQ(cache->Serialize(), Read("live_dirs_v2.txt"));
  absl::StatusOr<DirCache> again = DirCache::Parse(cache->Serialize());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->Serialize(), cache->Serialize());
}

TEST(DirCacheTest, DamageIsRefused) {
  std::string text = Read("live_dirs_v2.txt");
  for (size_t at : {size_t{5}, text.size() / 2, text.size() - 3}) {
    std::string bad = text;
    bad[at] ^= 1;
    EXPECT_FALSE(DirCache::Parse(bad).ok()) << at;
  }
  EXPECT_FALSE(DirCache::Parse("").ok());
  EXPECT_FALSE(DirCache::Parse("snaphaven-dircache 3\nend 0 00000000\n").ok());
}

// Every field of every entry counts: a change anywhere in a listing gives
// another digest, and the same listing the same one in every process.
TEST(DirCacheTest, TheListingDigestSeesEveryField) {
  FileStat stat;
  stat.type = FileType::kRegular;
  stat.dev = 2049;
  stat.ino = 77;
  stat.size = 1000;
  stat.mtime_ns = 1700000000123456789;
  auto digest = [](const std::string& name, const FileStat& s) {
    ListingDigest d;
    d.Add(name, s);
    return d.value();
  };
  const uint64_t base = digest("nb-1-big-Data.db", stat);
  EXPECT_EQ(base, 0x818efd255af41bb6ULL) << std::hex << base;  // stable across runs
  FileStat other = stat;
  other.size = 1001;
  EXPECT_NE(digest("nb-1-big-Data.db", other), base);
  other = stat;
  other.mtime_ns += 1;
  EXPECT_NE(digest("nb-1-big-Data.db", other), base);
  other = stat;
  other.ino += 1;
  EXPECT_NE(digest("nb-1-big-Data.db", other), base);
  other = stat;
  other.type = FileType::kDirectory;
  EXPECT_NE(digest("nb-1-big-Data.db", other), base);
  EXPECT_NE(digest("nb-1-big-Data.dc", stat), base);
  // Two entries are not one with the names run together.
  ListingDigest two;
  two.Add("a", stat);
  two.Add("b", stat);
  ListingDigest one;
  one.Add("ab", stat);
  EXPECT_NE(two.value(), one.value());
}

// Sub-second times show a change 100 ms on; whole seconds only 2 s on.
TEST(DirCacheTest, SettledFollowsTheFileSystemsTimeGranularity) {
  const absl::Time now = absl::FromUnixSeconds(1700000100);
  const int64_t fine = absl::ToUnixNanos(now) - 150000000 + 1;  // 150 ms before, odd ns
  EXPECT_TRUE(SettledAt(fine, now));
  EXPECT_FALSE(SettledAt(absl::ToUnixNanos(now) - 50000001, now));
  const int64_t whole = absl::ToUnixNanos(now - absl::Seconds(1));
  EXPECT_FALSE(SettledAt(whole, now));
  EXPECT_FALSE(SettledAt(absl::ToUnixNanos(now - absl::Seconds(2)), now));
  EXPECT_TRUE(SettledAt(absl::ToUnixNanos(now - absl::Seconds(3)), now));
}

}  // namespace
}  // namespace snaphaven
