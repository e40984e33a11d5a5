// Checksums of file contents, computed from the bytes as they are copied:
// CRC-32 (the zlib/IEEE polynomial Cassandra's Digest.crc32 uses) with
// carry-less multiplication where the CPU has it, Adler-32 for 2.1/2.2
// sstables, and SHA-1 for the Digest.sha1 of 1.2/2.0 sstables.

#ifndef SNAPHAVEN_CHECKSUM_H_
#define SNAPHAVEN_CHECKSUM_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace snaphaven {

// CRC-32 of `data` continuing from `crc` (0 to start), as zlib's crc32().
uint32_t Crc32(uint32_t crc, absl::string_view data);
// The CRC-32 of a followed by b, from crc_a, crc_b and b's length (zlib's
// crc32_combine): a stream's CRC from its parts' without reading them again.
uint32_t Crc32Combine(uint32_t crc_a, uint32_t crc_b, uint64_t length_b);
// The portable (zlib) implementation, for tests and benchmarks.
uint32_t Crc32Portable(uint32_t crc, absl::string_view data);
// True when Crc32 uses the PCLMULQDQ path.
bool Crc32IsAccelerated();

// Adler-32 of `data` continuing from `adler` (1 to start), as zlib's.
uint32_t Adler32(uint32_t adler, absl::string_view data);

// SHA-1 (FIPS 180-4, section 6.1), fed piece by piece. Only for checking
// the digests 1.2/2.0 sstables carry (not for anything security-related:
// SHA-1 is broken for collisions). Abseil has no SHA-1 and the project
// links no crypto library, hence this small portable version.
class Sha1 {
 public:
  static constexpr size_t kDigestBytes = 20;
  using Digest = std::array<uint8_t, kDigestBytes>;

  Sha1();
  void Update(absl::string_view data);
  // The digest of the bytes fed so far. The hasher is left as it was (the
  // padding goes into a copy), so it may go on being updated.
  Digest Finish() const;
  // The same as 40 lowercase hex digits (as sha1sum prints it).
  std::string FinishHex() const;

 private:
  void Compress(const unsigned char* block);  // one 64-byte block
  uint32_t state_[5];
  unsigned char buffer_[64];
  size_t buffered_ = 0;   // bytes in buffer_, < 64
  uint64_t length_ = 0;   // bytes fed in all
};

// The SHA-1 of `data` as 40 lowercase hex digits.
std::string Sha1Hex(absl::string_view data);

}  // namespace snaphaven

#endif  // SNAPHAVEN_CHECKSUM_H_
