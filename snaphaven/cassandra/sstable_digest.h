// An sstable's own digest of its Data.db, the check no general copy tool
// can make. Which component holds it and what it covers, by version (Cassandra
// writes it in io/util/DataIntegrityMetadata.java, ChecksumWriter.
// writeFullChecksum; the checksum follows the version: Descriptor.Version
// hasAllAdlerChecksums in 2.1's io/sstable/Descriptor.java, and in 3.0's
// io/sstable/format/big/BigFormat.java Adler32 for "ka" <= v < "ma", CRC32
// from "ma" on, CASSANDRA-8684):
//   Digest.crc32    CRC-32 of the whole Data.db, unsigned decimal (ma and later)
//   Digest.adler32  Adler-32 of the whole Data.db, decimal         (la, lb)
//   Digest.sha1     in ka (2.1): an Adler-32 decimal despite its name. 2.1.5
//                   and later (CASSANDRA-8778): of the whole Data.db. 2.1.0
//                   to 2.1.4, for a compressed sstable: of the compressed
//                   chunks without the 4-byte checksum after each (offsets in
//                   CompressionInfo.db). Either form is accepted.
//                   In 1.2 (ic) and 2.0 (jb): "<40 hex>  <Data.db name>", as
//                   sha1sum prints it: a real SHA-1 of the whole Data.db.

#ifndef SNAPHAVEN_SSTABLE_DIGEST_H_
#define SNAPHAVEN_SSTABLE_DIGEST_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"
#include "snaphaven/storage/checksum.h"
#include "snaphaven/storage/file_system.h"

namespace snaphaven {

enum class DigestAlgorithm {
  kCrc32,          // whole file
  kAdler32,        // whole file (or, given chunk_offsets, chunks only: either)
  kAdler32Chunks,  // chunks only, each chunk's 4-byte checksum skipped
  kSha1,           // whole file (1.2/2.0 Digest.sha1)
};

// What a Data.db must checksum to.
struct ExpectedDigest {
  DigestAlgorithm algorithm = DigestAlgorithm::kCrc32;
  // The 32-bit checksum. kSha1: the SHA-1's first 4 bytes (big-endian), so
  // that code comparing or printing numbers still works; sha1_hex and
  // DigestHasher::Matches() decide on all 20 bytes.
  uint32_t value = 0;
  std::string sha1_hex;  // kSha1: the 40 lowercase hex digits
  // kAdler32Chunks: the chunks. With kAdler32 (a compressed "ka" or "la"
  // sstable, for which it is not known which form the writer used): either
  // the whole-file or the chunk-only value is accepted.
  std::vector<int64_t> chunk_offsets;
  std::string digest_file;             // for messages

  // The value as the digest file writes it: decimal, or SHA-1 hex.
  std::string Describe() const;
};

// The digest component names to look for beside "<prefix>-Data.db", in
// order: "Digest.crc32", "Digest.adler32", "Digest.sha1".
const std::vector<std::string>& DigestComponents();

// Parses a digest file's text for `component` of an sstable of `version`.
// A Digest.sha1 holding a decimal is ka's Adler-32, one starting with 40 hex
// digits (either case, then nothing or whitespace and the file name, which is
// not compared) a 1.2/2.0 SHA-1. InvalidArgument: the file is malformed
// (neither of those). The result is never nullopt today; nullopt stays
// reserved for "nothing to check".
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
  // What the bytes fed give, in the form of ExpectedDigest::value (kSha1:
  // the SHA-1's first 4 bytes; with two accepted forms, the whole-file one).
  uint32_t Value() const;
  // The bytes fed match the expected digest (in either accepted form; all
  // 20 bytes for SHA-1).
  bool Matches() const;
  // What the bytes fed give, as the digest file would write it (decimal, or
  // SHA-1 hex); "<whole> or <chunks only>" when two forms are accepted.
  std::string Describe() const;

 private:
  void UpdateChunks(absl::string_view piece, uint32_t& value) const;
  bool HasBothForms() const;
  const ExpectedDigest& expected_;
  const int64_t file_size_;
  int64_t position_ = 0;
  uint32_t value_;
  uint32_t chunks_value_ = 1;  // the chunk-only Adler-32, when also computed
  Sha1 sha1_;                  // kSha1 only
};

// The digest the Data.db at `relative_path` below `root` (a data root or a
// destination) must match, read from its sstable's digest component beside
// it (and, for a compressed 2.1 "ka" or 2.2 "la" sstable, the chunk offsets
// from its CompressionInfo.db, so that both forms are accepted); nullopt for
// other files and for sstables without a usable digest. Problems that make it
// skip a check (an unreadable or malformed digest file) are appended to
// `warnings`.
absl::optional<ExpectedDigest> FindSSTableDigest(FileSystem& fs, const std::string& root,
                                                 const std::string& relative_path,
                                                 std::vector<std::string>* warnings);

}  // namespace snaphaven

#endif  // SNAPHAVEN_SSTABLE_DIGEST_H_
