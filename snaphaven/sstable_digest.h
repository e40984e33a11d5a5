// An sstable's own digest of its Data.db, the check no general copy tool
// can make. The digest file holds an unsigned decimal with no newline:
//   Digest.crc32    CRC-32 of the whole Data.db            (ma and later)
//   Digest.adler32  Adler-32 of the whole Data.db          (la, lb)
//   Digest.sha1     in ka (2.1): an Adler-32 decimal; for a compressed ka
//                   sstable it covers the compressed chunks without the
//                   4-byte checksum after each (offsets in CompressionInfo.db).
//                   In 1.2/2.0 it held real SHA-1 hex: not checked.

#ifndef SNAPHAVEN_SSTABLE_DIGEST_H_
#define SNAPHAVEN_SSTABLE_DIGEST_H_

#include <cstdint>
#include <string>
#include <vector>


#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"
#include "snaphaven/file_system.h"

namespace snaphaven {

enum class DigestAlgorithm {
  kCrc32,         // whole file
  kAdler32,       // whole file
  kAdler32Chunks  // compressed ka: chunks only, each chunk's 4-byte checksum skipped
};

// What a Data.db must checksum to.
struct ExpectedDigest {
  DigestAlgorithm algorithm = DigestAlgorithm::kCrc32;
  uint32_t value = 0;
  // kAdler32Chunks: the chunks. With kAdler32 (a compressed "la"
  // sstable, for which it is not known which form 2.2.0 wrote): either the
  // whole-file or the chunk-only value is accepted.
  std::vector<int64_t> chunk_offsets;
  std::string digest_file;             // for messages
};

// The digest component names to look for beside "<prefix>-Data.db", in
// order: "Digest.crc32", "Digest.adler32", "Digest.sha1".
const std::vector<std::string>& DigestComponents();

// Parses a digest file's text for `component` of an sstable of `version`.
// nullopt: nothing to check (a 1.2/2.0 SHA-1 digest). InvalidArgument: the
// file is malformed (not a decimal 32-bit number).
absl::StatusOr<absl::optional<ExpectedDigest>> ParseDigest(absl::string_view component,
                                                          absl::string_view version,
                                                          absl::string_view text);

// The chunk offsets in a CompressionInfo.db (Java DataOutput: UTF compressor
// name, int option count, UTF key/value pairs, int chunk length, long data
// length, int chunk count, long offsets).
absl::StatusOr<std::vector<int64_t>> ParseCompressionChunkOffsets(absl::string_view bytes);

// Computes a digest over a file fed in order, piece by piece.
class DigestHasher {
 public:
  // `file_size` is needed to know where the last ka chunk ends.
  DigestHasher(const ExpectedDigest& expected, int64_t file_size);
  void Update(absl::string_view piece);
  uint32_t Value() const { return value_; }
  // The bytes fed match the expected digest (in either accepted form).
  bool Matches() const;

 private:
  void UpdateChunks(absl::string_view piece, uint32_t& value) const;
  const ExpectedDigest& expected_;
  const int64_t file_size_;
  int64_t position_ = 0;
  uint32_t value_;
  uint32_t chunks_value_ = 1;  // the chunk-only Adler-32, when also computed
};

// The digest the Data.db at `relative_path` below `root` (a data root or a
// destination) must match, read from its sstable's digest component beside
// it (and, for a compressed 2.1 "ka" sstable, the chunk offsets from its
// CompressionInfo.db); nullopt for other files and for sstables without a
// usable digest. Problems that make it skip a check (an unreadable or
// malformed digest file) are appended to `warnings`.
absl::optional<ExpectedDigest> FindSSTableDigest(FileSystem& fs, const std::string& root,
                                                 const std::string& relative_path,
                                                 std::vector<std::string>* warnings);

}  // namespace snaphaven

#endif  // SNAPHAVEN_SSTABLE_DIGEST_H_
