// Cassandra commitlog segments (the files `archive_command` hands over):
// what their names say, and whether a segment is whole and sound, checked
// the way Cassandra's own replay reads it, without a running node.
//
// The rules come from Cassandra's source (src/java/org/apache/cassandra/):
//   db/commitlog/CommitLogDescriptor.java   names, header and its CRC
//   db/commitlog/CommitLogSegmentReader.java  sync markers, sections
//       (readSyncMarker; CompressedSegmenter; EncryptedSegmenter)
//   db/commitlog/CommitLogReader.java       mutations (readSection,
//       CommitLogFormat), and 2.0 segments read headerless from offset 0
//       (3.x readCommitLogSegment, desc.version < VERSION_21)
//   db/commitlog/CompressedSegment.java, EncryptedSegment.java,
//       security/EncryptionUtils.java       how sections are written
//   io/compress/{LZ4,Snappy,Deflate,Zstd}Compressor.java  the codecs
// and ../shared/docs/commitlog-archiving.md summarises them.

#ifndef SNAPHAVEN_COMMITLOG_SEGMENT_H_
#define SNAPHAVEN_COMMITLOG_SEGMENT_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace snaphaven::commitlog {

// What a file in a commitlog (or archive, or cdc_raw) directory is, by name.
enum class FileKind {
  kOther,          // not a commitlog file
  kSegment,        // CommitLog-<version>-<id>.log
  kLegacySegment,  // CommitLog-<id>.log: Cassandra before 1.2.5, which no
                   // Cassandra since 2.0 replays ("too old to open")
  kCdcIndex,       // CommitLog-<version>-<id>_cdc.idx (4.0+ CDC): not a segment
};

struct SegmentName {
  FileKind kind = FileKind::kOther;
  // The commitlog format version in the name: 3 = Cassandra 2.0, 4 = 2.1,
  // 5 = 2.2, 6 = 3.0/3.x, 7 = 4.0/4.1 (and 5.0 in CASSANDRA_4 compatibility
  // mode), 8 = 5.0. 0 for kLegacySegment and kOther.
  int version = 0;
  int64_t id = 0;  // the segment id (not a time: a counter seeded at startup)
};

// Parses a file's base name (no directory). Digits only, as Cassandra's
// COMMIT_LOG_FILE_PATTERN; a number too large for its type makes kOther.
SegmentName ParseSegmentName(absl::string_view name);

// What a segment's header says (for 2.0 segments, which have no header:
// what the name says).
struct SegmentDescriptor {
  int version = 0;
  int64_t id = 0;
  // The header's compressionClass as written ("LZ4Compressor", or a full
  // class name); "" when uncompressed.
  std::string compression_class;
  bool encrypted = false;  // the header names a cipher (encCipher)
  std::string cipher;      // encCipher, e.g. "AES/CBC/PKCS5Padding"
  std::string key_alias;   // encKeyAlias
};

struct SegmentVerification {
  bool ok = false;
  // When !ok: one sentence saying what is wrong and where (a file offset,
  // or a byte within a compressed section), e.g. "sync marker at offset 20:
  // CRC mismatch (...)". "" when ok.
  std::string failure;
  // Filled as far as it was read (the header's, once its CRC held).
  SegmentDescriptor descriptor;
  // Sync sections whose marker was checked (2.0 segments have none: 0).
  int64_t sync_sections = 0;
  // Mutations whose size CRC and data CRC held.
  int64_t mutations = 0;
  // The marker chain (for 2.0, the entries) was followed to an end that
  // Cassandra's reader accepts: a zeroed end marker, the file's end, or
  // an end-of-segment zero in the last section.
  bool ended_cleanly = false;
  // An encrypted segment: without the key only the header, the sync-marker
  // chain and the framing of the encrypted blocks in each section were
  // checked, not the mutations (mutations stays 0).
  bool encrypted_checked_to_markers_only = false;
  // VerifySegmentFile could not read the file (failure says why): nothing
  // is known about its content, so this is not a damaged segment.
  bool io_error = false;
};

// Verifies a whole segment given its bytes and its file name (a base name,
// or a path whose last component is used; the name carries the version and
// id the header must repeat, and for 2.0 the only descriptor there is).
// Checks, in order: the name parses as a segment of a known version (3 to
// 8); the header's CRC holds and its version and id equal the name's; the
// compression class is one Cassandra ships (LZ4, Snappy, Deflate, Zstd,
// Noop); each sync marker's CRC, that each points forward and within the
// file, and that the chain ends cleanly; every mutation's size CRC and data
// CRC, decompressing compressed sections; for encrypted segments see above.
// Stops at the first failure.
SegmentVerification VerifySegment(absl::string_view file_name, absl::string_view bytes);

// The same for a file on disk. The whole file is read into memory (a
// segment is commitlog_segment_size, 32 MiB by default; Cassandra keeps
// every offset in an int, so never 2 GiB or more, and a larger file is
// refused before reading). Not through snaphaven's FileSystem: plain POSIX
// reads, so it can run anywhere, e.g. in the verify_segment tool.
SegmentVerification VerifySegmentFile(const std::string& path);

// One line for a person: "ok: version 5, id ..., LZ4Compressor, 464 sync
// sections, 6051 mutations, clean end" or "FAILED: <failure>".
std::string Describe(const SegmentVerification& verification);

}  // namespace snaphaven::commitlog

#endif  // SNAPHAVEN_COMMITLOG_SEGMENT_H_
