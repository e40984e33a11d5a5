#include "snaphaven/cassandra/sstable_digest.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "snaphaven/cassandra/cassandra_path.h"
#include "snaphaven/storage/checksum.h"

namespace snaphaven {
namespace {

// Big-endian reader of Java's DataOutput encoding.
class JavaDataReader {
 public:
  explicit JavaDataReader(absl::string_view bytes) : bytes_(bytes) {}
  bool ReadInt(int64_t* out, int width) {
    if (bytes_.size() < static_cast<size_t>(width)) return false;
    uint64_t value = 0;
    for (int i = 0; i < width; ++i) value = value << 8 | static_cast<uint8_t>(bytes_[i]);
    bytes_.remove_prefix(width);
    // Sign-extend to 64 bits.
    if (width < 8 && (value >> (width * 8 - 1)) & 1) value |= ~uint64_t{0} << (width * 8);
    *out = static_cast<int64_t>(value);
    return true;
  }
  bool SkipUtf() {
    int64_t length;
    if (!ReadInt(&length, 2)) return false;
    length &= 0xffff;
    if (bytes_.size() < static_cast<size_t>(length)) return false;
    bytes_.remove_prefix(length);
    return true;
  }

 private:
  absl::string_view bytes_;
};

}  // namespace

const std::vector<std::string>& DigestComponents() {
  static const std::vector<std::string>* const names =
      new std::vector<std::string>{"Digest.crc32", "Digest.adler32", "Digest.sha1"};
  return *names;
}

namespace {

bool AllDecimal(absl::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), absl::ascii_isdigit);
}

// The 1.2/2.0 form, "<40 hex>  <Data.db name>" (2.0's
// io/util/DataIntegrityMetadata.java, ChecksumWriter.writeFullChecksum:
// String.format("%s  %s", Hex.bytesToHex(digest.digest()), dataFileName),
// "compatible with sha1sum", the SHA-1 of every byte written to Data.db;
// 1.2's "ic" sstables carry the same form, as Cassandra's own
// migration-sstables/ic test sstables show). The name is not compared: the
// bytes decide.
bool ParseSha1Text(absl::string_view text, ExpectedDigest& digest) {
  if (text.size() < 2 * Sha1::kDigestBytes) return false;
  absl::string_view hex = text.substr(0, 2 * Sha1::kDigestBytes);
  if (!std::all_of(hex.begin(), hex.end(), absl::ascii_isxdigit)) return false;
  if (text.size() > hex.size() && !absl::ascii_isspace(text[hex.size()])) return false;
  digest.algorithm = DigestAlgorithm::kSha1;
  digest.sha1_hex = absl::AsciiStrToLower(hex);
  // `value` holds the first 4 bytes, for callers that print numbers.
  return absl::SimpleHexAtoi(absl::string_view(digest.sha1_hex).substr(0, 8), &digest.value);
}

uint32_t Sha1Prefix(const Sha1::Digest& digest) {
  return uint32_t{digest[0]} << 24 | uint32_t{digest[1]} << 16 | uint32_t{digest[2]} << 8 |
         uint32_t{digest[3]};
}

}  // namespace

std::string ExpectedDigest::Describe() const {
  return algorithm == DigestAlgorithm::kSha1 ? sha1_hex : absl::StrCat(value);
}

absl::StatusOr<absl::optional<ExpectedDigest>> ParseDigest(absl::string_view component,
                                                          absl::string_view version,
                                                          absl::string_view text) {
  absl::string_view number = absl::StripAsciiWhitespace(text);
  ExpectedDigest digest;
  if (component == "Digest.sha1" && !AllDecimal(number)) {
    // Not ka's decimal: 1.2/2.0's SHA-1 text, or malformed.
    if (!ParseSha1Text(number, digest)) {
      return absl::InvalidArgumentError(
          "malformed Digest.sha1: neither an unsigned 32-bit decimal (2.1) nor "
          "\"<40 hex digits>  <Data.db name>\" (1.2, 2.0)");
    }
    return absl::optional<ExpectedDigest>(std::move(digest));
  }
  uint64_t value = 0;
  if (!AllDecimal(number) || !absl::SimpleAtoi(number, &value) || value > 0xffffffffu) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed ", component, ": not an unsigned 32-bit decimal"));
  }
  digest.value = static_cast<uint32_t>(value);
  if (component == "Digest.crc32") {
    // ma and later: CRC32 (3.0's io/sstable/format/big/BigFormat.java,
    // BigVersion: Adler32 only for "ka" <= version < "ma"; CASSANDRA-8684).
    digest.algorithm = DigestAlgorithm::kCrc32;
  } else if (component == "Digest.adler32" || component == "Digest.sha1") {
    // ka/la/lb: Adler32 (Descriptor.Version hasAllAdlerChecksums in 2.1,
    // BigFormat.java's BigVersion in 2.2/3.0; written by
    // DataIntegrityMetadata.java's ChecksumWriter.writeFullChecksum); ka
    // still names it Digest.sha1 (Component.DIGEST in 2.1's
    // io/sstable/Component.java).
    digest.algorithm = DigestAlgorithm::kAdler32;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("unknown digest component ", component));
  }
  (void)version;
  return absl::optional<ExpectedDigest>(std::move(digest));
}

absl::StatusOr<std::vector<int64_t>> ParseCompressionChunkOffsets(absl::string_view bytes) {
  JavaDataReader in(bytes);
  auto corrupt = [] { return absl::InvalidArgumentError("malformed CompressionInfo.db"); };
  int64_t options, chunk_length, data_length, chunk_count;
  if (!in.SkipUtf() || !in.ReadInt(&options, 4) || options < 0 || options > 1000) {
    return corrupt();
  }
  for (int64_t i = 0; i < 2 * options; ++i) {
    if (!in.SkipUtf()) return corrupt();
  }
  if (!in.ReadInt(&chunk_length, 4) || !in.ReadInt(&data_length, 8) ||
      !in.ReadInt(&chunk_count, 4) || chunk_count < 0 ||
      static_cast<uint64_t>(chunk_count) > bytes.size() / 8) {
    return corrupt();
  }
  std::vector<int64_t> offsets(chunk_count);
  for (int64_t& offset : offsets) {
    if (!in.ReadInt(&offset, 8)) return corrupt();
  }
  if (!std::is_sorted(offsets.begin(), offsets.end())) return corrupt();
  return offsets;
}

DigestHasher::DigestHasher(const ExpectedDigest& expected, int64_t file_size)
    : expected_(expected),
      file_size_(file_size),
      value_(expected.algorithm == DigestAlgorithm::kCrc32 ? 0 : 1) {}

void DigestHasher::UpdateChunks(absl::string_view piece, uint32_t& value) const {
  // Chunk i covers [offset_i, end_i - 4), end_i being the next offset (or
  // the file size); the 4 bytes before end_i are its checksum.
  const std::vector<int64_t>& offsets = expected_.chunk_offsets;
  int64_t start = position_;
  int64_t stop = position_ + static_cast<int64_t>(piece.size());
  auto chunk = std::upper_bound(offsets.begin(), offsets.end(), start);
  if (chunk != offsets.begin()) --chunk;
  for (; chunk != offsets.end() && *chunk < stop; ++chunk) {
    int64_t end = chunk + 1 == offsets.end() ? file_size_ : *(chunk + 1);
    int64_t from = std::max(start, *chunk);
    int64_t to = std::min(stop, end - 4);
    if (from < to) value = Adler32(value, piece.substr(from - start, to - from));
  }
}

void DigestHasher::Update(absl::string_view piece) {
  switch (expected_.algorithm) {
    case DigestAlgorithm::kCrc32:
      value_ = Crc32(value_, piece);
      break;
    case DigestAlgorithm::kAdler32:
      value_ = Adler32(value_, piece);
      if (HasBothForms()) UpdateChunks(piece, chunks_value_);
      break;
    case DigestAlgorithm::kAdler32Chunks:
      UpdateChunks(piece, value_);
      break;
    case DigestAlgorithm::kSha1:
      sha1_.Update(piece);
      break;
  }
  position_ += static_cast<int64_t>(piece.size());
}

bool DigestHasher::HasBothForms() const {
  return expected_.algorithm == DigestAlgorithm::kAdler32 && !expected_.chunk_offsets.empty();
}

uint32_t DigestHasher::Value() const {
  return expected_.algorithm == DigestAlgorithm::kSha1 ? Sha1Prefix(sha1_.Finish()) : value_;
}

bool DigestHasher::Matches() const {
  if (expected_.algorithm == DigestAlgorithm::kSha1) {
    return sha1_.FinishHex() == expected_.sha1_hex;  // lowercased when parsed
  }
  if (value_ == expected_.value) return true;
  return HasBothForms() && chunks_value_ == expected_.value;
}

std::string DigestHasher::Describe() const {
  if (expected_.algorithm == DigestAlgorithm::kSha1) return sha1_.FinishHex();
  if (HasBothForms()) {
    return absl::StrCat(value_, " (whole file) or ", chunks_value_, " (chunks only)");
  }
  return absl::StrCat(value_);
}

absl::optional<ExpectedDigest> FindSSTableDigest(FileSystem& fs, const std::string& root,
                                                 const std::string& relative_path,
                                                 std::vector<std::string>* warnings) {
  auto warn = [warnings](std::string message) {
    if (warnings != nullptr) warnings->push_back(std::move(message));
  };
  absl::string_view rel = relative_path;
  size_t slash = rel.rfind('/');
  // Read with its table directory's names when `rel` is <ks>/<table dir>/...
  absl::optional<SSTableName> name = ParseSSTablePath(rel);
  if (!name.has_value() || name->component != "Data.db") return absl::nullopt;
  const std::string dir =
      slash == absl::string_view::npos ? root : JoinPath(root, rel.substr(0, slash));
  const std::string prefix = JoinPath(dir, name->prefix);
  for (const std::string& component : DigestComponents()) {
    const std::string path = absl::StrCat(prefix, "-", component);
    absl::StatusOr<std::string> text = fs.ReadFile(path);
    if (!text.ok()) {
      if (!IsVanished(text.status())) warn(absl::StrCat("cannot read ", text.status().message()));
      continue;
    }
    absl::StatusOr<absl::optional<ExpectedDigest>> digest =
        ParseDigest(component, name->version, *text);
    if (!digest.ok()) {
      warn(absl::StrCat(path, ": ", digest.status().message(), "; Data.db not checked"));
      return absl::nullopt;
    }
    if (!digest->has_value()) return absl::nullopt;
    ExpectedDigest expected = **digest;
    expected.digest_file = path;
    if (expected.algorithm == DigestAlgorithm::kAdler32 &&
        (name->version == "ka" || name->version == "la")) {
      // Which form a compressed sstable's Adler-32 takes depends on the
      // writer: 2.1.0 to 2.1.4 left out each chunk's checksum (2.1's
      // io/compress/CompressedSequentialWriter.java fed only the compressed
      // bytes to ChecksumWriter), 2.1.5 and later digest the whole file
      // (CASSANDRA-8778), and for 2.2.0's "la" it is not known. So both are
      // accepted: the chunk offsets ride along with kAdler32. Lacking a
      // CompressionInfo.db the sstable is uncompressed: whole file only.
      absl::StatusOr<std::string> info = fs.ReadFile(absl::StrCat(prefix, "-CompressionInfo.db"));
      if (info.ok()) {
        absl::StatusOr<std::vector<int64_t>> offsets = ParseCompressionChunkOffsets(*info);
        // For "la" the whole-file form stays checkable without the chunks.
        if (!offsets.ok() && name->version == "la") return expected;
        // For "ka" a whole-file mismatch could be a sound 2.1.0-2.1.4
        // sstable: not checked, as before.
        if (!offsets.ok()) {
          warn(absl::StrCat(prefix, "-CompressionInfo.db: ", offsets.status().message(),
                            "; Data.db not checked"));
          return absl::nullopt;
        }
        expected.chunk_offsets = *std::move(offsets);
      }
    }
    return expected;
  }
  return absl::nullopt;
}

}  // namespace snaphaven
