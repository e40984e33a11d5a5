#include "snaphaven/checksum.h"
#include "snaphaven/testing/test_files.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <random>
#include <string>

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

}  // namespace
}  // namespace snaphaven
