#include "snaphaven/storage/checksum.h"
#include "snaphaven/testing/test_files.h"

#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace snaphaven {
namespace {

using testing::RandomBytes;

TEST(Crc32, KnownValues) {
  EXPECT_EQ(Crc32(0, ""), 0u);
  EXPECT_EQ(Crc32(0, "123456789"), 0xCBF43926u);  // the CRC-32 check value
  EXPECT_EQ(Crc32(0, std::string(1 << 20, '\0')), Crc32Portable(0, std::string(1 << 20, '\0')));
}

// The accelerated path must equal zlib's on every length, alignment and
// starting value (lengths around the 64- and 16-byte boundaries).
TEST(Crc32, MatchesZlibEverywhere) {
  std::string data = RandomBytes(70000, 1);
  for (size_t offset : {0, 1, 3, 8, 15}) {
    for (size_t len = 0; len < 600; ++len) {
      absl::string_view piece(data.data() + offset, len);
      ASSERT_EQ(Crc32(0, piece), Crc32Portable(0, piece)) << offset << "+" << len;
      ASSERT_EQ(Crc32(0xdeadbeef, piece), Crc32Portable(0xdeadbeef, piece)) << len;
    }
  }
  for (size_t len : {4096, 65536, 65537, 69999}) {
    ASSERT_EQ(Crc32(0, absl::string_view(data.data(), len)),
              Crc32Portable(0, absl::string_view(data.data(), len)));
  }
  std::cout << "accelerated: " << Crc32IsAccelerated() << "\n";
}

TEST(Crc32, StreamingEqualsWholeBuffer) {
  std::string data = RandomBytes(1 << 20, 2);
  std::mt19937 random(3);
  uint32_t crc = 0;
  for (size_t at = 0; at < data.size();) {
    size_t n = std::min<size_t>(random() % 5000, data.size() - at);
    crc = Crc32(crc, absl::string_view(data).substr(at, n));
    at += n;
  }
  EXPECT_EQ(crc, static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(data.data()),
                                              static_cast<uInt>(data.size()))));
}

TEST(Crc32, CombinedPartsEqualTheWhole) {
  const std::string data = RandomBytes(100000, 4);
  const uint32_t whole = Crc32(0, data);
  for (size_t cut : {size_t{0}, size_t{1}, size_t{63}, size_t{4096}, data.size()}) {
    absl::string_view a = absl::string_view(data).substr(0, cut);
    absl::string_view b = absl::string_view(data).substr(cut);
    EXPECT_EQ(Crc32Combine(Crc32(0, a), Crc32(0, b), b.size()), whole) << "cut at " << cut;
  }
}

TEST(Adler32, MatchesZlib) {
  EXPECT_EQ(Adler32(1, "Wikipedia"), 0x11E60398u);
  std::string data = RandomBytes(100000, 4);
  EXPECT_EQ(Adler32(Adler32(1, data.substr(0, 777)), data.substr(777)), Adler32(1, data));
}

// FIPS 180-4's examples (csrc.nist.gov, "SHA1.pdf" of the Examples with
// Intermediate Values) and the long message of FIPS 180-1 / RFC 3174.
TEST(Sha1, FipsVectors) {
  EXPECT_EQ(Sha1Hex(""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  EXPECT_EQ(Sha1Hex("abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
  // 448 bits: exactly 56 bytes, so the padding needs a second block.
  EXPECT_EQ(Sha1Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
  EXPECT_EQ(Sha1Hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
                    "hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu"),
            "a49b2446a02c645bf419f995b67091253a04a259");
  EXPECT_EQ(Sha1Hex(std::string(1000000, 'a')), "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
  // The million 'a's fed 1000 at a time, and the raw 20 bytes.
  Sha1 sha1;
  for (int i = 0; i < 1000; ++i) sha1.Update(std::string(1000, 'a'));
  EXPECT_EQ(sha1.FinishHex(), "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
  const Sha1::Digest raw = sha1.Finish();
  EXPECT_EQ(raw[0], 0x34);
  EXPECT_EQ(raw[19], 0x6f);
}

// Every length from 0 to 199 (each padding case: room for the length in the
// last block or not), chained into one value computed with Python's hashlib:
//   h = sha1(); for n in range(200):
//     h.update(sha1(bytes((i * 7 + 3) & 255 for i in range(n))).digest())
TEST(Sha1, EveryPaddingLength) {
  Sha1 chain;
  for (int n = 0; n < 200; ++n) {
    std::string message;
    for (int i = 0; i < n; ++i) message.push_back(static_cast<char>((i * 7 + 3) & 255));
    Sha1 one;
    one.Update(message);
    const Sha1::Digest digest = one.Finish();
    chain.Update(absl::string_view(reinterpret_cast<const char*>(digest.data()), digest.size()));
  }
  EXPECT_EQ(chain.FinishHex(), "8b12ee1d73de5287db7fc3d864d1c732ac699e94");
}

TEST(Sha1, StreamingEqualsWholeBufferAndFinishLeavesItUsable) {
  const std::string data = RandomBytes(300000, 5);
  const std::string whole = Sha1Hex(data);
  std::mt19937 random(6);
  for (int round = 0; round < 5; ++round) {
    Sha1 sha1;
    for (size_t at = 0; at < data.size();) {
      size_t n = std::min<size_t>(random() % 200, data.size() - at);
      sha1.Update(absl::string_view(data).substr(at, n));
      at += n;
      if (at == data.size() / 2) {
        // Finishing midway does not disturb the stream.
        EXPECT_EQ(sha1.FinishHex(), Sha1Hex(absl::string_view(data).substr(0, at)));
      }
    }
    EXPECT_EQ(sha1.FinishHex(), whole);
  }
}

// A real file, against `sha1sum` run on it by hand:
//   665e26388ec8e0e0335b6f05cac39ba958c7232b  legacy_tables-legacy_ka_indexed-ka-1-Data.db
// (the largest Data.db of Cassandra's test sstables, 196203 bytes).
TEST(Sha1, RealFileMatchesSha1sum) {
  const std::string rel =
      "legacy-sstables/ka/legacy_tables/legacy_ka_indexed/"
      "legacy_tables-legacy_ka_indexed-ka-1-Data.db";
  const std::string root = testing::SharedFixturesDir("cassandra-test-data");
  const std::string path = root.empty() ? "" : absl::StrCat(root, "/", rel);
  if (path.empty()) {
    GTEST_SKIP() << "../shared/fixtures/cassandra-test-data is absent: nothing to check";
  }
  std::ifstream in(path, std::ios::binary);
  ASSERT_TRUE(in.good()) << path;
  std::stringstream contents;
  contents << in.rdbuf();
  ASSERT_EQ(contents.str().size(), 196203u) << path;
  EXPECT_EQ(Sha1Hex(contents.str()), "665e26388ec8e0e0335b6f05cac39ba958c7232b");
}

}  // namespace
}  // namespace snaphaven
