// Digest files (sstable_digest.h ParseDigest), read as each of the three
// components, and the hasher built from what they give.

#include <cstdint>
#include <string>

#include "absl/strings/ascii.h"
#include "snaphaven/storage/checksum.h"
#include "snaphaven/fuzz/fuzz_util.h"
#include "snaphaven/cassandra/sstable_digest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace snaphaven;
  const absl::string_view text = fuzz::AsText(data, size);
  for (const std::string& component : DigestComponents()) {
    for (absl::string_view version : {"ka", "jb", "nb"}) {
      absl::StatusOr<absl::optional<ExpectedDigest>> digest =
          ParseDigest(component, version, text);
      if (!digest.ok()) {
        FUZZ_CHECK(digest.status().code() == absl::StatusCode::kInvalidArgument,
                   digest.status().ToString());
        continue;
      }
      FUZZ_CHECK(digest->has_value(), component);
      const ExpectedDigest& expected = **digest;
      if (expected.algorithm == DigestAlgorithm::kSha1) {
        FUZZ_CHECK(component == "Digest.sha1", component);
        FUZZ_CHECK(expected.sha1_hex.size() == 40, expected.sha1_hex);
        for (char c : expected.sha1_hex) {
          FUZZ_CHECK(absl::ascii_isxdigit(c) && !absl::ascii_isupper(c), expected.sha1_hex);
        }
      }
      (void)expected.Describe();
      // The data itself, hashed as the expected digest says: a match is
      // exactly what the value says.
      DigestHasher hasher(expected, static_cast<int64_t>(size));
      hasher.Update(text.substr(0, size / 3));
      hasher.Update(text.substr(size / 3));
      (void)hasher.Describe();
      if (expected.algorithm == DigestAlgorithm::kCrc32) {
        FUZZ_CHECK(hasher.Value() == Crc32(0, text), component);
        FUZZ_CHECK(hasher.Matches() == (expected.value == Crc32(0, text)), component);
      } else if (expected.algorithm == DigestAlgorithm::kAdler32) {
        FUZZ_CHECK(hasher.Value() == Adler32(1, text), component);
      } else if (expected.algorithm == DigestAlgorithm::kSha1) {
        Sha1 sha1;
        sha1.Update(text);
        FUZZ_CHECK(hasher.Matches() == (sha1.FinishHex() == expected.sha1_hex), component);
      }
    }
  }
  return 0;
}
