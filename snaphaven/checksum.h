// Checksums of file contents, computed from the bytes as they are copied:
// CRC-32 (the zlib/IEEE polynomial Cassandra's Digest.crc32 uses) with
// carry-less multiplication where the CPU has it, and Adler-32 for 2.x
// sstables.

#ifndef SNAPHAVEN_CHECKSUM_H_
#define SNAPHAVEN_CHECKSUM_H_

#include <cstddef>
#include <cstdint>

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

}  // namespace snaphaven

#endif  // SNAPHAVEN_CHECKSUM_H_
