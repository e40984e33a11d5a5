#include "snaphaven/sstable_digest.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "snaphaven/checksum.h"
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

  // 1.2/2.0: real SHA-1 hex and a file name: nothing to check.
  EXPECT_FALSE(Parse("Digest.sha1", "ic",
                     "0123456789abcdef0123456789abcdef01234567  ks-t-ic-1-Data.db")
                   .has_value());
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

}  // namespace
}  // namespace snaphaven
