#include "snaphaven/commitlog/segment.h"

#include <fcntl.h>
#include <lz4.h>
#include <snappy-c.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "snaphaven/storage/checksum.h"

namespace snaphaven::commitlog {
namespace {

// CommitLogDescriptor.java: the versions (VERSION_20 = 3 ... VERSION_50 = 8).
constexpr int kVersion20 = 3;  // 2.0: no header, no sync markers, 8-byte CRCs
constexpr int kVersion21 = 4;  // 2.1: 16-byte header without parameters
constexpr int kVersionNewest = 8;
// CommitLogSegment.SYNC_MARKER_SIZE: int next-marker offset, int CRC.
constexpr int64_t kSyncMarkerSize = 8;
// CompressedSegment.COMPRESSED_MARKER_SIZE, EncryptedSegment.
// ENCRYPTED_SECTION_HEADER_SIZE: the marker plus an int length.
constexpr int64_t kSectionHeaderSize = kSyncMarkerSize + 4;
// EncryptionUtils.ENCRYPTED_BLOCK_HEADER_SIZE: int encrypted length, int
// plain length.
constexpr int64_t kEncryptedBlockHeaderSize = 8;
// CommitLogReader.readSection: "Mutation must be at LEAST 10 bytes".
constexpr int32_t kMinMutationSize = 10;

const char* CassandraReleases(int version) {
  switch (version) {
    case 3:
      return "Cassandra 2.0";
    case 4:
      return "Cassandra 2.1";
    case 5:
      return "Cassandra 2.2";
    case 6:
      return "Cassandra 3.0/3.x";
    case 7:
      return "Cassandra 4.0/4.1";
    case 8:
      return "Cassandra 5.0";
    default:
      return "unknown";
  }
}

// Java's DataOutput: big-endian. The caller checks the bounds.
uint64_t LoadBigEndian(absl::string_view bytes, int64_t offset, int width) {
  uint64_t value = 0;
  for (int i = 0; i < width; ++i) value = value << 8 | static_cast<uint8_t>(bytes[offset + i]);
  return value;
}
uint32_t LoadU32(absl::string_view bytes, int64_t offset) {
  return static_cast<uint32_t>(LoadBigEndian(bytes, offset, 4));
}
int32_t LoadI32(absl::string_view bytes, int64_t offset) {
  return static_cast<int32_t>(LoadU32(bytes, offset));
}

// FBUtilities.updateChecksumInt: an int goes into the CRC as its 4
// big-endian bytes.
uint32_t CrcInt(uint32_t crc, uint32_t value) {
  const char b[4] = {static_cast<char>(value >> 24), static_cast<char>(value >> 16),
                     static_cast<char>(value >> 8), static_cast<char>(value)};
  return Crc32(crc, absl::string_view(b, 4));
}

// The CRC a header or a sync marker starts with: version (header only),
// then the id's low and high 32 bits.
uint32_t CrcOfId(uint32_t crc, int64_t id) {
  const uint64_t u = static_cast<uint64_t>(id);
  return CrcInt(CrcInt(crc, static_cast<uint32_t>(u)), static_cast<uint32_t>(u >> 32));
}

std::string Hex(uint64_t value) { return absl::StrFormat("0x%08x", value); }

// Parses a run of decimal digits (nothing else) into *out.
bool ParseDigits(absl::string_view digits, int64_t* out) {
  if (digits.empty()) return false;
  for (char c : digits) {
    if (c < '0' || c > '9') return false;
  }
  return absl::SimpleAtoi(digits, out);
}

absl::string_view BaseName(absl::string_view path) {
  size_t slash = path.rfind('/');
  return slash == absl::string_view::npos ? path : path.substr(slash + 1);
}

// The compressors Cassandra ships (io/compress/), by the class name in the
// header: short, or in full (CompressionParams.parseCompressorClass adds
// the package to a name without a dot).
enum class Codec { kNone, kLz4, kSnappy, kDeflate, kZstd, kNoop };

bool CodecFromClass(absl::string_view name, Codec* codec) {
  absl::ConsumePrefix(&name, "org.apache.cassandra.io.compress.");
  if (name == "LZ4Compressor")
    *codec = Codec::kLz4;
  else if (name == "SnappyCompressor")
    *codec = Codec::kSnappy;
  else if (name == "DeflateCompressor")
    *codec = Codec::kDeflate;
  else if (name == "ZstdCompressor")
    *codec = Codec::kZstd;
  else if (name == "NoopCompressor")
    *codec = Codec::kNoop;
  else
    return false;
  return true;
}

// Where a mutation sits, for the failure sentence: a file offset in an
// uncompressed segment, else a byte of a decompressed section.
struct Place {
  int64_t base = 0;             // file offset of the region's first byte
  int64_t section = -1;         // the sync marker's offset (-1: 2.0, none)
  std::string compressed_with;  // the class, when the region is decompressed
  int64_t region_size = 0;

  std::string Of(int64_t position) const {
    if (!compressed_with.empty()) {
      return absl::StrCat("mutation at byte ", position, " of the sync section at offset ", section,
                          " (", compressed_with, ", ", region_size, " bytes uncompressed)");
    }
    std::string where = absl::StrCat("mutation at offset ", base + position);
    if (section >= 0) absl::StrAppend(&where, " (sync section at offset ", section, ")");
    return where;
  }
  // What lies after the region, if a mutation runs past it.
  std::string End() const {
    if (!compressed_with.empty()) return "its decompressed section";
    if (section >= 0) return absl::StrCat("its section at offset ", base + region_size);
    return absl::StrCat("the file at offset ", base + region_size);
  }
};

class Verifier {
 public:
  Verifier(absl::string_view file_name, absl::string_view bytes, SegmentVerification* result)
      : name_(BaseName(file_name)), bytes_(bytes), result_(*result) {}

  void Run() {
    if (ReadName() && ReadHeader() && ReadBody()) result_.ok = true;
  }

 private:
  bool Fail(std::string sentence) {
    result_.failure = std::move(sentence);
    result_.ended_cleanly = false;
    return false;
  }
  int64_t size() const { return static_cast<int64_t>(bytes_.size()); }

  bool ReadName() {
    const SegmentName name = ParseSegmentName(name_);
    switch (name.kind) {
      case FileKind::kSegment:
        break;
      case FileKind::kLegacySegment:
        return Fail(absl::StrCat("the name ", name_,
                                 " has no version: a segment of Cassandra before 1.2.5, which no "
                                 "Cassandra since 2.0 replays"));
      case FileKind::kCdcIndex:
        return Fail(absl::StrCat(name_, " is a CDC index, not a commitlog segment"));
      case FileKind::kOther:
        return Fail(absl::StrCat("the name ", name_,
                                 " is not a commitlog segment's (CommitLog-<version>-<id>.log)"));
    }
    if (name.version < kVersion20 || name.version > kVersionNewest) {
      return Fail(
          absl::StrCat("the name says commitlog version ", name.version,
                       ", not one this verifier reads (3, Cassandra 2.0, to 8, Cassandra 5.0)"));
    }
    name_version_ = name.version;
    name_id_ = name.id;
    result_.descriptor.version = name.version;
    result_.descriptor.id = name.id;
    return true;
  }

  // CommitLogDescriptor.writeHeader/readHeader. 2.1 (version 4): int
  // version, long id, int CRC(version, id low, id high). 2.2 on: the same
  // with a u16 length and that many bytes of JSON parameters before the CRC,
  // which covers the length (as an int) and the JSON too.
  bool ReadHeader() {
    if (name_version_ == kVersion20) {
      // 2.0 segments have no header (3.x CommitLogReader reads them from
      // offset 0, the descriptor from the name). One that starts with a
      // sound newer header was misnamed.
      int64_t header_size;
      uint32_t stored, computed;
      if (ParseHeaderFrame(&header_size, &stored, &computed) && stored == computed) {
        return Fail(
            absl::StrCat("the name says version 3 (Cassandra 2.0, no header), but the file starts "
                         "with a sound version-",
                         LoadI32(bytes_, 0), " header"));
      }
      return true;
    }
    if (size() < 4)
      return Fail(absl::StrCat("the file is ", size(), " bytes, too short for a header"));
    const int32_t version = LoadI32(bytes_, 0);
    if (version < kVersion21 || version > kVersionNewest) {
      return Fail(absl::StrCat("header at offset 0: version ", version,
                               " is not a commitlog version with a header (4 to 8)"));
    }
    uint32_t stored, computed;
    if (!ParseHeaderFrame(&header_size_, &stored, &computed)) {
      return Fail(absl::StrCat("the file is ", size(), " bytes, too short for its version-",
                               version, " header (", header_size_, " bytes)"));
    }
    if (stored != computed) {
      return Fail(absl::StrCat("header at offset 0: CRC mismatch (stored ", Hex(stored),
                               ", computed ", Hex(computed), ")"));
    }
    const int64_t id = static_cast<int64_t>(LoadBigEndian(bytes_, 4, 8));
    result_.descriptor.version = version;
    result_.descriptor.id = id;
    if (version != name_version_) {
      return Fail(absl::StrCat("the name says version ", name_version_,
                               " but the header says version ", version));
    }
    // CommitLogReader: "Segment id mismatch (filename %d, descriptor %d)".
    if (id != name_id_) {
      return Fail(absl::StrCat("the name says segment id ", name_id_, " but the header says ", id));
    }
    return version == kVersion21 || ReadParameters();
  }

  // Sizes the header by the version at offset 0 and computes its CRC.
  // False when the file is too short for it (*header_size still says how
  // long it would be).
  bool ParseHeaderFrame(int64_t* header_size, uint32_t* stored, uint32_t* computed) {
    *header_size = 16;
    if (size() < 4) return false;
    const int32_t version = LoadI32(bytes_, 0);
    if (version < kVersion21 || version > kVersionNewest) return false;
    int64_t parameters = 0;
    if (version > kVersion21) {
      *header_size = 18;
      if (size() < 14) return false;
      parameters = static_cast<int64_t>(LoadBigEndian(bytes_, 12, 2));
      *header_size = 18 + parameters;
    }
    if (size() < *header_size) return false;
    uint32_t crc = CrcOfId(CrcInt(0, static_cast<uint32_t>(version)),
                           static_cast<int64_t>(LoadBigEndian(bytes_, 4, 8)));
    if (version > kVersion21) {
      crc = CrcInt(crc, static_cast<uint32_t>(parameters));
      crc = Crc32(crc, bytes_.substr(14, parameters));
    }
    *computed = crc;
    *stored = LoadU32(bytes_, *header_size - 4);
    return true;
  }

  // The JSON parameters (constructParametersString): compressionClass and
  // compressionParameters; encCipher, encKeyAlias, encIV when encrypted
  // (EncryptionContext.toHeaderParameters). "{}" for a plain segment.
  bool ReadParameters() {
    const std::string text(bytes_.substr(14, header_size_ - 18));
    const nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (json.is_discarded() || !json.is_object()) {
      return Fail(absl::StrCat("header at offset 0: its parameters are not a JSON object: ",
                               text.substr(0, 200)));
    }
    SegmentDescriptor& d = result_.descriptor;
    auto text_of = [&](const char* key, std::string* out) {
      auto it = json.find(key);
      if (it != json.end() && it->is_string()) *out = it->get<std::string>();
    };
    text_of("compressionClass", &d.compression_class);
    text_of("encCipher", &d.cipher);
    text_of("encKeyAlias", &d.key_alias);
    d.encrypted = !d.cipher.empty();
    // CommitLogSegmentReader: an encrypted segment is read as such whatever
    // else the header says; its blocks carry their own compression.
    if (d.encrypted) return true;
    if (!d.compression_class.empty() && !CodecFromClass(d.compression_class, &codec_)) {
      return Fail(absl::StrCat("header at offset 0: unknown compression class ",
                               d.compression_class, " (Cassandra would refuse the segment)"));
    }
    return true;
  }

  bool ReadBody() {
    if (name_version_ == kVersion20) {
      // One run of entries over the whole (preallocated) file.
      Place place;
      place.region_size = size();
      bool ended_early;
      int64_t early_at;
      if (!CheckMutations(bytes_, /*crc_width=*/8, place, &ended_early, &early_at)) return false;
      result_.ended_cleanly = true;
      return true;
    }
    if (result_.descriptor.encrypted) result_.encrypted_checked_to_markers_only = true;
    return FollowMarkers();
  }

  // CommitLogSegmentReader.readSyncMarker, over the whole chain. Stricter
  // than replay, which tolerates a truncated last section and stops quietly
  // at a zero mutation size: an archived segment is complete, so both mean
  // lost mutations here.
  bool FollowMarkers() {
    const bool appended = result_.descriptor.encrypted || codec_ != Codec::kNone;
    const int64_t min_section = appended ? kSectionHeaderSize : kSyncMarkerSize;
    int64_t offset = header_size_;
    // A zero mutation size, or under 4 bytes left, in the last section read:
    // a clean end only if no section follows.
    bool ended_early = false;
    int64_t early_at = 0;
    while (true) {
      if (offset > size() - kSyncMarkerSize) {
        // "There was no room in the segment to write a final header."
        // Compressed and encrypted segments are written by appending
        // whole sections, so they end exactly at one.
        if (appended && offset != size()) {
          return Fail(absl::StrCat("the file ends ", size() - offset,
                                   " bytes into the sync marker at offset ", offset,
                                   ": the segment is truncated"));
        }
        break;
      }
      const int32_t next = LoadI32(bytes_, offset);
      const uint32_t stored = LoadU32(bytes_, offset + 4);
      const uint32_t computed =
          CrcInt(CrcOfId(0, result_.descriptor.id), static_cast<uint32_t>(offset));
      if (stored != computed) {
        if (next != 0 || stored != 0) {
          return Fail(absl::StrCat("sync marker at offset ", offset, ": CRC mismatch (stored ",
                                   Hex(stored), ", computed ", Hex(computed), ")"));
        }
        // The zeroed end marker. In an uncompressed (preallocated,
        // possibly recycled) segment anything may follow; an appended one
        // has nothing after its last section but zeros.
        if (appended && bytes_.find_first_not_of('\0', offset) != absl::string_view::npos) {
          return Fail(absl::StrCat(
              "sync marker at offset ", offset,
              " is zero (an end marker), yet data follows it: Cassandra would stop reading there"));
        }
        break;
      }
      if (next > size()) {
        return Fail(absl::StrCat("sync marker at offset ", offset, " points to the next at ", next,
                                 ", past the end of the file (", size(),
                                 " bytes): the segment is truncated"));
      }
      if (next < offset + min_section) {
        return Fail(absl::StrCat("sync marker at offset ", offset, " points to the next at ", next,
                                 ", not after its own section's start"));
      }
      if (ended_early) {
        return Fail(absl::StrCat(
            early_at_place_, ": an end-of-segment zero (or a cut-off entry) ends the log there, ",
            "yet the sync section at offset ", offset, " follows: Cassandra would not replay it"));
      }
      ++result_.sync_sections;
      if (!CheckSection(offset, next, &ended_early, &early_at)) return false;
      offset = next;
    }
    result_.ended_cleanly = true;
    return true;
  }

  bool CheckSection(int64_t offset, int64_t next, bool* ended_early, int64_t* early_at) {
    Place place;
    place.section = offset;
    if (result_.descriptor.encrypted) return CheckEncryptedSection(offset, next);
    if (codec_ == Codec::kNone) {
      place.base = offset + kSyncMarkerSize;
      place.region_size = next - place.base;
      if (!CheckMutations(bytes_.substr(place.base, place.region_size), /*crc_width=*/4, place,
                          ended_early, early_at)) {
        return false;
      }
    } else {
      // CommitLogSegmentReader.CompressedSegmenter: int uncompressed
      // length, then the compressor's block up to the next marker.
      const int32_t length = LoadI32(bytes_, offset + kSyncMarkerSize);
      const std::string where = absl::StrCat("sync section at offset ", offset, " (",
                                             result_.descriptor.compression_class, ")");
      if (length < 0) return Fail(absl::StrCat(where, ": negative uncompressed length ", length));
      absl::string_view data;
      std::string error;
      const int64_t start = offset + kSectionHeaderSize;
      if (!Decompress(bytes_.substr(start, next - start), length, &data, &error)) {
        return Fail(absl::StrCat(where, ": ", error));
      }
      place.compressed_with = result_.descriptor.compression_class;
      place.region_size = length;
      if (!CheckMutations(data, /*crc_width=*/4, place, ended_early, early_at)) return false;
    }
    if (*ended_early) early_at_place_ = place.Of(*early_at);
    return true;
  }

  // EncryptedSegment.write: int plain-text length of the section, then
  // blocks of int encrypted length, int plain length and the cipher text
  // (EncryptionUtils.encryptAndWrite), up to the next marker. Without the
  // key the blocks can only be checked to tile the section.
  bool CheckEncryptedSection(int64_t offset, int64_t next) {
    const int32_t total = LoadI32(bytes_, offset + kSyncMarkerSize);
    if (total < 0) {
      return Fail(
          absl::StrCat("encrypted sync section at offset ", offset, ": negative length ", total));
    }
    const bool pkcs5 = result_.descriptor.cipher == "AES/CBC/PKCS5Padding";
    int64_t block = offset + kSectionHeaderSize;
    int blocks = 0;
    while (block < next) {
      const std::string where = absl::StrCat("encrypted block at offset ", block,
                                             " (sync section at offset ", offset, ")");
      if (next - block < kEncryptedBlockHeaderSize) {
        return Fail(
            absl::StrCat(where, ": its header is cut off by the next sync marker at ", next));
      }
      const int32_t encrypted = LoadI32(bytes_, block);
      const int32_t plain = LoadI32(bytes_, block + 4);
      if (encrypted <= 0 || plain < 0) {
        return Fail(absl::StrCat(where, ": impossible lengths (", encrypted, " encrypted, ", plain,
                                 " plain)"));
      }
      if (encrypted > next - block - kEncryptedBlockHeaderSize) {
        return Fail(absl::StrCat(where, ": its ", encrypted,
                                 " bytes run past the next sync marker at ", next));
      }
      // PKCS#5 pads 1 to 16 bytes up to a whole 16-byte block.
      if (pkcs5 && encrypted != (plain / 16 + 1) * 16) {
        return Fail(absl::StrCat(where, ": ", encrypted, " encrypted bytes cannot hold ", plain,
                                 " plain bytes under AES/CBC/PKCS5Padding"));
      }
      block += kEncryptedBlockHeaderSize + encrypted;
      ++blocks;
    }
    if (total > 0 && blocks == 0) {
      return Fail(absl::StrCat("encrypted sync section at offset ", offset, ": claims ", total,
                               " bytes but holds no encrypted block"));
    }
    return true;
  }

  // The section's data, decompressed as the codec's uncompress() does it
  // (io/compress/*Compressor.java), into a buffer reused across sections.
  // The length comes from the section (not covered by the marker's CRC),
  // so a bit flip could ask for up to 2 GiB: the buffer is allocated
  // without being filled, so only what a codec really writes is touched.
  bool Decompress(absl::string_view in, int32_t length, absl::string_view* out,
                  std::string* error) {
    if (codec_ == Codec::kNoop) {
      if (static_cast<int64_t>(in.size()) != length) {
        *error = absl::StrCat("holds ", in.size(), " bytes, not the ", length, " its length says");
        return false;
      }
      *out = in;
      return true;
    }
    if (static_cast<size_t>(length) + 1 > capacity_) {
      capacity_ = static_cast<size_t>(length) + 1;  // never 0: codecs want a real pointer
      buffer_.reset(new char[capacity_]);
    }
    char* dst = buffer_.get();
    int64_t produced = -1;
    switch (codec_) {
      case Codec::kLz4: {
        // LZ4Compressor: 4-byte little-endian length, then an LZ4 block.
        if (in.size() < 4) {
          *error = "too short for LZ4's length prefix";
          return false;
        }
        const uint32_t prefix = static_cast<uint8_t>(in[0]) | static_cast<uint8_t>(in[1]) << 8 |
                                static_cast<uint8_t>(in[2]) << 16 |
                                static_cast<uint32_t>(static_cast<uint8_t>(in[3])) << 24;
        if (prefix != static_cast<uint32_t>(length)) {
          *error = absl::StrCat("LZ4's length prefix says ", prefix, " bytes but the section says ",
                                length);
          return false;
        }
        const int n =
            LZ4_decompress_safe(in.data() + 4, dst, static_cast<int>(in.size() - 4), length);
        if (n < 0) {
          *error = "the LZ4 data is corrupt (does not decompress)";
          return false;
        }
        produced = n;
        break;
      }
      case Codec::kSnappy: {
        // SnappyCompressor: Snappy's raw format (rawUncompress).
        size_t n = 0;
        if (snappy_uncompressed_length(in.data(), in.size(), &n) != SNAPPY_OK) {
          *error = "the Snappy data is corrupt (no length)";
          return false;
        }
        if (n != static_cast<size_t>(length)) {
          *error = absl::StrCat("Snappy's length says ", n, " bytes but the section says ", length);
          return false;
        }
        if (snappy_uncompress(in.data(), in.size(), dst, &n) != SNAPPY_OK) {
          *error = "the Snappy data is corrupt (does not decompress)";
          return false;
        }
        produced = static_cast<int64_t>(n);
        break;
      }
      case Codec::kDeflate: {
        // DeflateCompressor: java.util.zip.Deflater/Inflater defaults, a
        // zlib stream (RFC 1950); an empty input inflates to nothing.
        if (in.empty()) {
          produced = 0;
          break;
        }
        z_stream z{};
        if (inflateInit(&z) != Z_OK) {
          *error = "zlib could not start";
          return false;
        }
        z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
        z.avail_in = static_cast<uInt>(in.size());
        z.next_out = reinterpret_cast<Bytef*>(dst);
        z.avail_out = static_cast<uInt>(length);
        const int rc = inflate(&z, Z_FINISH);
        produced = static_cast<int64_t>(z.total_out);
        const uInt left = z.avail_in;
        inflateEnd(&z);
        if (rc != Z_STREAM_END) {
          *error = rc == Z_BUF_ERROR
                       ? absl::StrCat("the Deflate data inflates to more than ", length, " bytes")
                       : "the Deflate data is corrupt (does not inflate)";
          return false;
        }
        if (left != 0) {
          *error = absl::StrCat(left, " bytes follow the end of the Deflate stream");
          return false;
        }
        break;
      }
      case Codec::kZstd: {
        // ZstdCompressor: zstd frames (Zstd.decompressByteArray).
        const size_t n = ZSTD_decompress(dst, static_cast<size_t>(length), in.data(), in.size());
        if (ZSTD_isError(n)) {
          *error = absl::StrCat("the Zstd data is corrupt (", ZSTD_getErrorName(n), ")");
          return false;
        }
        produced = static_cast<int64_t>(n);
        break;
      }
      case Codec::kNone:
      case Codec::kNoop:
        break;
    }
    if (produced != length) {
      *error = absl::StrCat("decompresses to ", produced, " bytes, not the ", length,
                            " its length says");
      return false;
    }
    *out = absl::string_view(dst, length);
    return true;
  }

  // CommitLogReader.readSection: entries of int size, CRC(size), the
  // mutation, CRC(size, mutation), the CRC carried on from the first; the
  // CRCs are ints from 2.1 on and longs in 2.0 (CommitLogFormat). A zero
  // size (LEGACY_END_OF_SEGMENT_MARKER, the preallocated file's zeros) or
  // fewer than 4 bytes left ends the log: *ended_early and where.
  bool CheckMutations(absl::string_view region, int crc_width, const Place& place,
                      bool* ended_early, int64_t* early_at) {
    *ended_early = false;
    const int64_t end = static_cast<int64_t>(region.size());
    const int64_t entry_header = 4 + crc_width;
    int64_t position = 0;
    while (position < end) {
      if (end - position < 4) break;
      const int32_t mutation_size = LoadI32(region, position);
      if (mutation_size == 0) break;
      if (mutation_size < kMinMutationSize) {
        return Fail(absl::StrCat(place.Of(position), ": invalid mutation size ", mutation_size,
                                 " (at least 10)"));
      }
      if (end - position < entry_header) {
        return Fail(absl::StrCat(place.Of(position), ": its size CRC is cut off by the end of ",
                                 place.End()));
      }
      const uint64_t stored_size_crc = LoadBigEndian(region, position + 4, crc_width);
      uint32_t crc = CrcInt(0, static_cast<uint32_t>(mutation_size));
      if (stored_size_crc != crc) {
        return Fail(absl::StrCat(place.Of(position), ": size CRC mismatch (stored ",
                                 Hex(stored_size_crc), ", computed ", Hex(crc), ")"));
      }
      if (end - position - entry_header < static_cast<int64_t>(mutation_size) + crc_width) {
        return Fail(absl::StrCat(place.Of(position), ": its ", mutation_size,
                                 " bytes run past the end of ", place.End()));
      }
      crc = Crc32(crc, region.substr(position + entry_header, mutation_size));
      const uint64_t stored =
          LoadBigEndian(region, position + entry_header + mutation_size, crc_width);
      if (stored != crc) {
        return Fail(absl::StrCat(place.Of(position), ": data CRC mismatch (stored ", Hex(stored),
                                 ", computed ", Hex(crc), ")"));
      }
      ++result_.mutations;
      position += entry_header + mutation_size + crc_width;
    }
    if (position < end) {
      *ended_early = true;
      *early_at = position;
    }
    return true;
  }

  const absl::string_view name_;
  const absl::string_view bytes_;
  SegmentVerification& result_;
  int name_version_ = 0;
  int64_t name_id_ = 0;
  int64_t header_size_ = 0;
  Codec codec_ = Codec::kNone;
  std::string early_at_place_;
  std::unique_ptr<char[]> buffer_;
  size_t capacity_ = 0;
};

}  // namespace

SegmentName ParseSegmentName(absl::string_view name) {
  // CommitLogDescriptor: "CommitLog-" digits ("-" digits)? ".log"; the CDC
  // index of 4.0+ is the same with "_cdc.idx".
  SegmentName parsed;
  FileKind kind;
  if (!absl::ConsumePrefix(&name, "CommitLog-")) return parsed;
  if (absl::ConsumeSuffix(&name, ".log")) {
    kind = FileKind::kSegment;
  } else if (absl::ConsumeSuffix(&name, "_cdc.idx")) {
    kind = FileKind::kCdcIndex;
  } else {
    return parsed;
  }
  const size_t dash = name.find('-');
  int64_t version = 0, id = 0;
  if (dash == absl::string_view::npos) {
    if (kind != FileKind::kSegment || !ParseDigits(name, &id)) return parsed;
    parsed.kind = FileKind::kLegacySegment;
    parsed.id = id;
    return parsed;
  }
  if (!ParseDigits(name.substr(0, dash), &version) || version > 1000 ||
      !ParseDigits(name.substr(dash + 1), &id)) {
    return parsed;
  }
  parsed.kind = kind;
  parsed.version = static_cast<int>(version);
  parsed.id = id;
  return parsed;
}

SegmentVerification VerifySegment(absl::string_view file_name, absl::string_view bytes) {
  SegmentVerification result;
  Verifier(file_name, bytes, &result).Run();
  return result;
}

SegmentVerification VerifySegmentFile(const std::string& path) {
  SegmentVerification result;
  auto io_failure = [&](const std::string& what) {
    result.io_error = true;
    result.failure = absl::StrCat("cannot ", what, " ", path, ": ", strerror(errno));
    return result;
  };
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return io_failure("open");
  struct stat st;
  if (fstat(fd, &st) != 0) {
    const int saved = errno;
    close(fd);
    errno = saved;
    return io_failure("stat");
  }
  // Cassandra keeps segment offsets in ints (commitlog_segment_size must
  // be under 2 GiB): a larger file is not a segment, and is not read.
  if (st.st_size >= (int64_t{1} << 31)) {
    close(fd);
    result.failure =
        absl::StrCat("the file is ", st.st_size,
                     " bytes: no commitlog segment reaches 2 GiB (Cassandra's offsets are ints)");
    return result;
  }
  std::string bytes(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = pread(fd, &bytes[done], bytes.size() - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int saved = errno;
      close(fd);
      errno = saved;
      return io_failure("read");
    }
    if (n == 0) break;  // shrank while read: verify what is there
    done += static_cast<size_t>(n);
  }
  close(fd);
  bytes.resize(done);
  return VerifySegment(path, bytes);
}

std::string Describe(const SegmentVerification& v) {
  if (!v.ok) return absl::StrCat("FAILED: ", v.failure);
  const SegmentDescriptor& d = v.descriptor;
  std::string line = absl::StrCat("ok: version ", d.version, " (", CassandraReleases(d.version),
                                  "), id ", d.id, ", ");
  if (d.encrypted) {
    absl::StrAppend(&line, "encrypted (", d.cipher, ", key ", d.key_alias, "), ", v.sync_sections,
                    " sync sections; checked to the sync markers and encrypted blocks only: the "
                    "mutations need the key");
  } else {
    absl::StrAppend(&line, d.compression_class.empty() ? "uncompressed" : d.compression_class, ", ",
                    d.version == kVersion20 ? "no sync markers (2.0)"
                                            : absl::StrCat(v.sync_sections, " sync sections"),
                    ", ", v.mutations, " mutations checked");
  }
  absl::StrAppend(&line, v.ended_cleanly ? ", clean end" : ", no clean end");
  return line;
}

}  // namespace snaphaven::commitlog
