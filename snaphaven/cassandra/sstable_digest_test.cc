#include "snaphaven/cassandra/sstable_digest.h"

#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "snaphaven/storage/checksum.h"
#include "snaphaven/storage/file_system.h"
#include "snaphaven/testing/e2e_util.h"

namespace snaphaven {
namespace {

absl::optional<ExpectedDigest> Parse(absl::string_view component, absl::string_view version,
                                     absl::string_view text) {
  absl::StatusOr<absl::optional<ExpectedDigest>> digest = ParseDigest(component, version, text);
  EXPECT_TRUE(digest.ok()) << digest.status();
  return digest.ok() ? *digest : absl::nullopt;
}

TEST(ParseDigest, EveryForm) {
  auto crc = Parse("Digest.crc32", "nb", "3735928559");
  ASSERT_TRUE(crc.has_value());
  EXPECT_EQ(crc->algorithm, DigestAlgorithm::kCrc32);
  EXPECT_EQ(crc->value, 3735928559u);

  auto adler = Parse("Digest.adler32", "lb", "12345");
  ASSERT_TRUE(adler.has_value());
  EXPECT_EQ(adler->algorithm, DigestAlgorithm::kAdler32);

  // ka's Digest.sha1 holds an Adler-32 decimal despite its name.
  auto ka = Parse("Digest.sha1", "ka", "4294967295");
  ASSERT_TRUE(ka.has_value());
  EXPECT_EQ(ka->algorithm, DigestAlgorithm::kAdler32);
  EXPECT_EQ(ka->value, 4294967295u);

  // 1.2/2.0: real SHA-1 hex and a file name (as sha1sum prints it).
  auto sha1 = Parse("Digest.sha1", "ic",
                    "0123456789abcdef0123456789abcdef01234567  ks-t-ic-1-Data.db");
  ASSERT_TRUE(sha1.has_value());
  EXPECT_EQ(sha1->algorithm, DigestAlgorithm::kSha1);
  EXPECT_EQ(sha1->sha1_hex, "0123456789abcdef0123456789abcdef01234567");
  EXPECT_EQ(sha1->value, 0x01234567u);  // the first 4 bytes, for number-minded callers
  EXPECT_EQ(sha1->Describe(), "0123456789abcdef0123456789abcdef01234567");
  // Upper case, no file name, a newline: the same.
  auto upper = Parse("Digest.sha1", "jb", "0123456789ABCDEF0123456789ABCDEF01234567\n");
  ASSERT_TRUE(upper.has_value());
  EXPECT_EQ(upper->algorithm, DigestAlgorithm::kSha1);
  EXPECT_EQ(upper->sha1_hex, "0123456789abcdef0123456789abcdef01234567");
  EXPECT_EQ(ka->Describe(), "4294967295");
  // Cassandra writes no newline; tolerate one anyway.
  EXPECT_EQ(Parse("Digest.crc32", "nb", "42\n")->value, 42u);
}

TEST(ParseDigest, MalformedIsAnError) {
  for (const char* bad : {"", " ", "abc", "-1", "4294967296", "12 34", "0x10", "1.5"}) {
    SCOPED_TRACE(bad);
    absl::StatusOr<absl::optional<ExpectedDigest>> digest = ParseDigest("Digest.crc32", "nb", bad);
    ASSERT_FALSE(digest.ok());
    EXPECT_NE(digest.status().message().find("malformed Digest.crc32"), std::string::npos);
  }
  EXPECT_FALSE(ParseDigest("Digest.md5", "nb", "1").ok());
}

TEST(ParseDigest, MalformedSha1IsAnError) {
  const std::string hex = "0123456789abcdef0123456789abcdef01234567";
  for (const std::string& bad : {
           std::string("abc"),
           hex.substr(0, 39),                       // too short
           hex.substr(0, 39) + "g",                 // not hex
           hex + "8  ks-t-jb-1-Data.db",            // 41 digits
           hex + "-ks-t-jb-1-Data.db",              // no space after the digits
           std::string("4294967296"),               // ka's decimal, too big
           std::string("12 34"),
       }) {
    SCOPED_TRACE(bad);
    absl::StatusOr<absl::optional<ExpectedDigest>> digest = ParseDigest("Digest.sha1", "jb", bad);
    ASSERT_FALSE(digest.ok());
    EXPECT_TRUE(absl::IsInvalidArgument(digest.status()));
    EXPECT_NE(digest.status().message().find("malformed Digest.sha1"), std::string::npos);
  }
}

// A SHA-1 digest: Matches() compares all 20 bytes; Value() is the first 4,
// as ExpectedDigest::value is.
TEST(DigestHasher, Sha1WholeFile) {
  const std::string data = testing::RandomBytes(100000, 7);
  absl::optional<ExpectedDigest> expected =
      Parse("Digest.sha1", "jb", absl::StrCat(Sha1Hex(data), "  ks-t-jb-1-Data.db"));
  ASSERT_TRUE(expected.has_value());
  for (size_t piece : {1, 63, 64, 65, 4096, 1 << 20}) {
    DigestHasher hasher(*expected, static_cast<int64_t>(data.size()));
    for (size_t at = 0; at < data.size(); at += piece) {
      hasher.Update(absl::string_view(data).substr(at, piece));
    }
    EXPECT_TRUE(hasher.Matches()) << piece;
    EXPECT_EQ(hasher.Value(), expected->value);
    EXPECT_EQ(hasher.Describe(), expected->sha1_hex);
  }
  // Only the last 16 bytes of the digest differ: the 4-byte prefix agrees,
  // Matches() still says no.
  ExpectedDigest tail_differs = *expected;
  tail_differs.sha1_hex.back() = tail_differs.sha1_hex.back() == '0' ? '1' : '0';
  DigestHasher hasher(tail_differs, static_cast<int64_t>(data.size()));
  hasher.Update(data);
  EXPECT_EQ(hasher.Value(), tail_differs.value);
  EXPECT_FALSE(hasher.Matches());
}

// A compressed ka Data.db: chunks, each followed by a 4-byte checksum, and
// its CompressionInfo.db in Java's DataOutput format.
struct KaCompressed {
  std::string data, compression_info;
  uint32_t chunks_adler = 1;
};

void PutBigEndian(std::string& out, uint64_t value, int width) {
  for (int i = width - 1; i >= 0; --i) out.push_back(static_cast<char>(value >> (8 * i)));
}

KaCompressed MakeKaCompressed(int chunks, uint32_t seed) {
  std::mt19937 random(seed);
  KaCompressed ka;
  std::vector<int64_t> offsets;
  for (int i = 0; i < chunks; ++i) {
    offsets.push_back(static_cast<int64_t>(ka.data.size()));
    std::string chunk(1000 + random() % 5000, '\0');
    for (char& c : chunk) c = static_cast<char>(random());
    ka.chunks_adler = Adler32(ka.chunks_adler, chunk);
    ka.data += chunk;
    PutBigEndian(ka.data, Adler32(1, chunk), 4);
  }
  std::string& info = ka.compression_info;
  PutBigEndian(info, 13, 2);
  info += "LZ4Compressor";
  PutBigEndian(info, 1, 4);  // one option
  for (const char* s : {"crc_check_chance", "1.0"}) {
    PutBigEndian(info, strlen(s), 2);
    info += s;
  }
  PutBigEndian(info, 65536, 4);
  PutBigEndian(info, 65536ull * chunks, 8);
  PutBigEndian(info, chunks, 4);
  for (int64_t offset : offsets) PutBigEndian(info, offset, 8);
  return ka;
}

TEST(DigestHasher, CompressedKaCoversChunksWithoutTheirChecksums) {
  KaCompressed ka = MakeKaCompressed(7, 1);
  absl::StatusOr<std::vector<int64_t>> offsets = ParseCompressionChunkOffsets(ka.compression_info);
  ASSERT_TRUE(offsets.ok()) << offsets.status();
  ASSERT_EQ(offsets->size(), 7u);
  ExpectedDigest expected;
  expected.algorithm = DigestAlgorithm::kAdler32Chunks;
  expected.chunk_offsets = *offsets;
  // Fed in awkward pieces, as a copy does.
  for (size_t piece : {1, 3, 4, 100, 4096, 1 << 20}) {
    DigestHasher hasher(expected, static_cast<int64_t>(ka.data.size()));
    for (size_t at = 0; at < ka.data.size(); at += piece) {
      hasher.Update(absl::string_view(ka.data).substr(at, piece));
    }
    EXPECT_EQ(hasher.Value(), ka.chunks_adler) << piece;
  }
  // The whole-file Adler-32 is a different number: checking it that way
  // would call a sound sstable corrupt.
  EXPECT_NE(Adler32(1, ka.data), ka.chunks_adler);
  // A flipped byte inside a chunk is caught.
  std::string bad = ka.data;
  bad[bad.size() / 2] ^= 1;
  DigestHasher hasher(expected, static_cast<int64_t>(bad.size()));
  hasher.Update(bad);
  EXPECT_NE(hasher.Value(), ka.chunks_adler);
}

// 2.2.0's "la": which form its Digest.adler32 takes for compressed sstables
// is not known, so both are accepted, and a flipped byte still fails both.
TEST(DigestHasher, CompressedLaAcceptsWholeFileOrChunkOnly) {
  KaCompressed la = MakeKaCompressed(5, 3);
  ExpectedDigest expected;
  expected.algorithm = DigestAlgorithm::kAdler32;
  expected.chunk_offsets = *ParseCompressionChunkOffsets(la.compression_info);
  for (uint32_t value : {Adler32(1, la.data), la.chunks_adler}) {
    expected.value = value;
    DigestHasher hasher(expected, static_cast<int64_t>(la.data.size()));
    hasher.Update(la.data);
    EXPECT_TRUE(hasher.Matches());
    std::string bad = la.data;
    bad[100] ^= 1;
    DigestHasher flipped(expected, static_cast<int64_t>(bad.size()));
    flipped.Update(bad);
    EXPECT_FALSE(flipped.Matches());
  }
}

TEST(ParseCompressionChunkOffsets, RejectsMalformed) {
  KaCompressed ka = MakeKaCompressed(3, 2);
  for (size_t cut : {0, 1, 10, 20, 40}) {
    EXPECT_FALSE(ParseCompressionChunkOffsets(ka.compression_info.substr(0, cut)).ok()) << cut;
  }
  EXPECT_FALSE(ParseCompressionChunkOffsets(
                   ka.compression_info.substr(0, ka.compression_info.size() - 1))
                   .ok());
}

// What Cassandra really wrote (2.2 to 5.0): every sstable passes, and fails
// once a byte of its Data.db is flipped.
TEST(RealSSTables, DigestsMatchAndCatchAFlippedByte) {
  std::string dir = testing::RealSSTablesDir();
  if (dir.empty()) GTEST_SKIP() << "../shared/fixtures/real-sstables is absent: nothing to check";
  int checked = 0;
  for (const std::string& prefix : testing::FindSSTables(dir)) {
    SCOPED_TRACE(prefix);
    std::string data = testing::ReadFileOrDie(prefix + "-Data.db");
    std::string name = prefix.substr(prefix.rfind('/') + 1);
    absl::optional<ExpectedDigest> expected;
    for (const std::string& component : DigestComponents()) {
      std::string text = testing::ReadFileIfExists(absl::StrCat(prefix, "-", component));
      if (!text.empty()) expected = Parse(component, name.substr(0, 2), text);
    }
    ASSERT_TRUE(expected.has_value()) << "no digest";
    DigestHasher hasher(*expected, static_cast<int64_t>(data.size()));
    hasher.Update(data);
    EXPECT_EQ(hasher.Value(), expected->value);
    for (size_t at : {size_t{0}, data.size() / 2, data.size() - 1}) {
      std::string flipped = data;
      flipped[at] ^= 0x20;
      DigestHasher bad(*expected, static_cast<int64_t>(flipped.size()));
      bad.Update(flipped);
      EXPECT_NE(bad.Value(), expected->value) << "flip at " << at;
    }
    ++checked;
  }
  EXPECT_GE(checked, 13) << "the fixtures hold 13 sstables";
}

// Every Data.db below root/<sub>, as paths relative to `root`, sorted.
std::vector<std::string> DataFilesBelow(const std::string& root, const std::string& sub) {
  std::vector<std::string> out;
  for (const auto& entry :
       std::filesystem::recursive_directory_iterator(absl::StrCat(root, "/", sub))) {
    const std::string path = entry.path().string();
    if (entry.is_regular_file() && absl::EndsWith(path, "-Data.db")) {
      out.push_back(path.substr(root.size() + 1));
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

struct Checked {
  absl::optional<ExpectedDigest> expected;
  bool matches = false;
  std::string form;  // "crc32", "sha1", "adler32 whole", "adler32 chunks", "none"
};

// FindSSTableDigest on the Data.db at root/rel, then its bytes through a
// DigestHasher in odd-sized pieces (as a copy feeds them).
Checked CheckDataFile(const std::string& root, const std::string& rel) {
  Checked checked;
  std::vector<std::string> warnings;
  checked.expected = FindSSTableDigest(*DefaultFileSystem(), root, rel, &warnings);
  EXPECT_TRUE(warnings.empty()) << rel << ": " << warnings.front();
  if (!checked.expected.has_value()) {
    checked.form = "none";
    return checked;
  }
  const std::string data = testing::ReadFileOrDie(absl::StrCat(root, "/", rel));
  DigestHasher hasher(*checked.expected, static_cast<int64_t>(data.size()));
  for (size_t at = 0; at < data.size(); at += 777) {
    hasher.Update(absl::string_view(data).substr(at, 777));
  }
  checked.matches = hasher.Matches();
  switch (checked.expected->algorithm) {
    case DigestAlgorithm::kCrc32:
      checked.form = "crc32";
      break;
    case DigestAlgorithm::kSha1:
      checked.form = "sha1";
      break;
    case DigestAlgorithm::kAdler32:
    case DigestAlgorithm::kAdler32Chunks:
      checked.form = Adler32(1, data) == checked.expected->value ? "adler32 whole"
                                                                 : "adler32 chunks";
      break;
  }
  return checked;
}

// Apache Cassandra's own test sstables, 1.2 to 5.0: every one with a
// digest must match it, whatever form its writer used.
TEST(CassandraTestData, EveryDigestMatches) {
  const std::string root = testing::SharedFixturesDir("cassandra-test-data");
  if (root.empty()) {
    GTEST_SKIP() << "../shared/fixtures/cassandra-test-data is absent: nothing to check";
  }
  // "<fixture folder>: <form>" -> how many.
  std::map<std::string, int> counts;
  int checked = 0;
  for (const char* sub : {"legacy-sstables", "migration-sstables"}) {
    for (const std::string& rel : DataFilesBelow(root, sub)) {
      SCOPED_TRACE(rel);
      Checked result = CheckDataFile(root, rel);
      bool has_digest_file = false;
      const std::string prefix =
          absl::StrCat(root, "/", rel.substr(0, rel.size() - strlen("-Data.db")));
      for (const std::string& component : DigestComponents()) {
        struct stat st;
        has_digest_file |= stat(absl::StrCat(prefix, "-", component).c_str(), &st) == 0;
      }
      EXPECT_EQ(result.expected.has_value(), has_digest_file);
      if (result.expected.has_value()) {
        EXPECT_TRUE(result.matches) << "does not match " << result.expected->digest_file
                                    << " (" << result.expected->Describe() << ")";
        ++checked;
      }
      // The fixture folder: "legacy-sstables/ka", "migration-sstables/2.1".
      const std::string folder = rel.substr(0, rel.find('/', strlen(sub) + 1));
      ++counts[absl::StrCat(folder, ": ", result.form)];
    }
  }
  const std::map<std::string, int> want = {
      {"legacy-sstables/da: crc32", 4},
      {"legacy-sstables/jb: none", 8},  // many 2.0 sstables have no digest
      {"legacy-sstables/jb: sha1", 1},
      // 2.1.5+ (CASSANDRA-8778): the whole file; legacy_ka_14912 was
      // written by 2.1.0-2.1.4: its compressed chunks only.
      {"legacy-sstables/ka: adler32 chunks", 1},
      {"legacy-sstables/ka: adler32 whole", 23},
      {"legacy-sstables/la: adler32 whole", 8},
      {"legacy-sstables/ma: crc32", 8},
      {"legacy-sstables/mb: crc32", 8},
      {"legacy-sstables/mc: crc32", 9},
      {"legacy-sstables/md: crc32", 8},
      {"legacy-sstables/me: crc32", 8},
      {"legacy-sstables/na: crc32", 8},
      {"legacy-sstables/nb: crc32", 4},
      {"legacy-sstables/nc: crc32", 4},
      {"legacy-sstables/oa: crc32", 4},
      {"migration-sstables/2.1: adler32 whole", 2},
      {"migration-sstables/2.1: none", 2},
      {"migration-sstables/2.2: adler32 whole", 1},
      {"migration-sstables/2.2: none", 3},
      {"migration-sstables/ic: sha1", 3},
  };
  EXPECT_EQ(counts, want);
  EXPECT_EQ(checked, 104);
}

// Copies the sstable at root/<prefix_rel> (every component) below a new
// temporary root at the same relative path, and returns that root.
std::string CopySSTable(const std::string& root, const std::string& prefix_rel) {
  const std::string copy_root = testing::MakeTempDir("sstable_copy");
  const std::filesystem::path source_dir =
      std::filesystem::path(root + "/" + prefix_rel).parent_path();
  const std::string prefix_name = std::filesystem::path(prefix_rel).filename().string() + "-";
  const std::filesystem::path target_dir =
      std::filesystem::path(copy_root + "/" + prefix_rel).parent_path();
  std::filesystem::create_directories(target_dir);
  for (const auto& entry : std::filesystem::directory_iterator(source_dir)) {
    const std::string name = entry.path().filename().string();
    if (!absl::StartsWith(name, prefix_name)) continue;
    testing::WriteFileOrDie((target_dir / name).string(),
                            testing::ReadFileOrDie(entry.path().string()));
  }
  return copy_root;
}

// One flipped byte in a copy of a Data.db (the fixtures stay untouched) is
// caught, for each kind of digest.
TEST(CassandraTestData, FlippedByteInACopyIsCaught) {
  const std::string root = testing::SharedFixturesDir("cassandra-test-data");
  if (root.empty()) {
    GTEST_SKIP() << "../shared/fixtures/cassandra-test-data is absent: nothing to check";
  }
  const struct {
    const char* prefix;
    const char* form;
  } cases[] = {
      {"legacy-sstables/jb/Keyspace1/Keyspace1-Standard1-jb-0", "sha1"},
      {"migration-sstables/ic/Keyspace1/legacyleveled/Keyspace1-legacyleveled-ic-1", "sha1"},
      {"legacy-sstables/ka/legacy_tables/legacy_ka_simple/legacy_tables-legacy_ka_simple-ka-1",
       "adler32 whole"},
      {"legacy-sstables/ka/legacy_tables/legacy_ka_14912/legacy_tables-legacy_ka_14912-ka-1",
       "adler32 chunks"},
      {"legacy-sstables/la/legacy_tables/legacy_la_simple/la-1-big", "adler32 whole"},
      {"legacy-sstables/mc/legacy_tables/legacy_mc_simple/mc-1-big", "crc32"},
      {"legacy-sstables/oa/legacy_tables/legacy_oa_simple/oa-1-big", "crc32"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.prefix);
    const std::string copy_root = CopySSTable(root, c.prefix);
    const std::string rel = absl::StrCat(c.prefix, "-Data.db");
    const std::string copy = absl::StrCat(copy_root, "/", rel);
    // The untouched copy matches, in the expected form.
    Checked sound = CheckDataFile(copy_root, rel);
    ASSERT_TRUE(sound.expected.has_value());
    EXPECT_TRUE(sound.matches);
    EXPECT_EQ(sound.form, c.form);
    const int64_t size = static_cast<int64_t>(testing::ReadFileOrDie(copy).size());
    // A chunk-only digest leaves out the 4 checksum bytes after each chunk
    // (Cassandra's per-chunk checksum guards those): flip bytes that it covers,
    // the first and the last chunk's first.
    std::vector<int64_t> flips = {0, size / 2, size - 1};
    if (std::string(c.form) == "adler32 chunks") {
      ASSERT_FALSE(sound.expected->chunk_offsets.empty());
      flips = {0, sound.expected->chunk_offsets.back()};
    }
    for (int64_t at : flips) {
      testing::FlipByte(copy, at);
      Checked bad = CheckDataFile(copy_root, rel);
      ASSERT_TRUE(bad.expected.has_value());
      EXPECT_FALSE(bad.matches) << "flipped at " << at;
      testing::FlipByte(copy, at);  // back
    }
    EXPECT_TRUE(CheckDataFile(copy_root, rel).matches);
    std::filesystem::remove_all(copy_root);
  }
}

}  // namespace
}  // namespace snaphaven
