// CompressionInfo.db (sstable_digest.h ParseCompressionChunkOffsets: Java
// DataOutput), and the chunk-only Adler-32 of 2.1's compressed sstables
// computed over the offsets it gives.

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "snaphaven/storage/checksum.h"
#include "snaphaven/fuzz/fuzz_util.h"
#include "snaphaven/cassandra/sstable_digest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace snaphaven;
  const absl::string_view bytes = fuzz::AsText(data, size);
  absl::StatusOr<std::vector<int64_t>> offsets = ParseCompressionChunkOffsets(bytes);
  if (!offsets.ok()) {
    FUZZ_CHECK(offsets.status().code() == absl::StatusCode::kInvalidArgument,
               offsets.status().ToString());
    return 0;
  }
  FUZZ_CHECK(std::is_sorted(offsets->begin(), offsets->end()), "offsets not sorted");
  FUZZ_CHECK(offsets->size() * 8 <= size, "more offsets than bytes");
  // A Data.db of the input's own bytes, fed in uneven pieces: the chunk-only
  // checksum is the same however the file is cut into pieces.
  for (DigestAlgorithm algorithm : {DigestAlgorithm::kAdler32Chunks, DigestAlgorithm::kAdler32}) {
    ExpectedDigest expected;
    expected.algorithm = algorithm;
    expected.chunk_offsets = *offsets;
    DigestHasher whole(expected, static_cast<int64_t>(size));
    whole.Update(bytes);
    DigestHasher pieces(expected, static_cast<int64_t>(size));
    for (size_t at = 0, step = 1; at < size; at += step, step = step * 2 + 1) {
      pieces.Update(bytes.substr(at, step));
    }
    FUZZ_CHECK(whole.Value() == pieces.Value(), "chunk checksum depends on the pieces");
    FUZZ_CHECK(whole.Matches() == pieces.Matches(), "match depends on the pieces");
    (void)whole.Describe();
  }
  return 0;
}
