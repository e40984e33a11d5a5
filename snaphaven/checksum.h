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
// The portable (zlib) implementation, for tests and benchmarks.
uint32_t Crc32Portable(uint32_t crc, absl::string_view data);
// True when Crc32 uses the PCLMULQDQ path.
bool Crc32IsAccelerated();

// Adler-32 of `data` continuing from `adler` (1 to start), as zlib's.
uint32_t Adler32(uint32_t adler, absl::string_view data);

}  // namespace snaphaven

#endif  // SNAPHAVEN_CHECKSUM_H_
