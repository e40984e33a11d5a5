#include "snaphaven/commitlog/segment.h"

#include <dirent.h>
#include <lz4.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "snaphaven/testing/test_files.h"

namespace snaphaven::commitlog {
namespace {

using ::testing::HasSubstr;

// ../shared/fixtures/cassandra-test-data/legacy-commitlog: segments that
// Cassandra 2.0 to 4.0 wrote (its own test/data/legacy-commitlog).
std::string LegacyCommitlogDir() {
  const std::string root = snaphaven::testing::SharedFixturesDir("cassandra-test-data");
  return root.empty() ? "" : root + "/legacy-commitlog";
}

#define REQUIRE_FIXTURES(dir)                                                            \
  const std::string dir = LegacyCommitlogDir();                                          \
  if (dir.empty()) {                                                                     \
    GTEST_SKIP() << "../shared/fixtures/cassandra-test-data/legacy-commitlog is absent"; \
  }

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::vector<std::string> Entries(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] != '.') names.push_back(e->d_name);
    }
    closedir(d);
  }
  std::sort(names.begin(), names.end());
  return names;
}

// A fixture segment's bytes, and its name.
struct Fixture {
  std::string name;
  std::string bytes;
};
Fixture Load(const std::string& dir, const std::string& folder, const std::string& name) {
  return {name, ReadFile(absl::StrCat(dir, "/", folder, "/", name))};
}

// Java's big-endian ints, read back.
uint32_t Be32(const std::string& bytes, size_t at) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = v << 8 | static_cast<uint8_t>(bytes.at(at + i));
  return v;
}
uint32_t Be16(const std::string& bytes, size_t at) {
  return static_cast<uint8_t>(bytes.at(at)) << 8 | static_cast<uint8_t>(bytes.at(at + 1));
}

std::string Flipped(std::string bytes, size_t offset) {
  bytes.at(offset) ^= 0x5a;
  return bytes;
}

// One byte flipped (or the file cut to a length), and what the failure
// must say.
struct Damage {
  size_t at;
  const char* says;
};

void ExpectFlipsCaught(const Fixture& f, std::initializer_list<Damage> flips) {
  for (const Damage& flip : flips) {
    const SegmentVerification v = VerifySegment(f.name, Flipped(f.bytes, flip.at));
    EXPECT_FALSE(v.ok) << "byte " << flip.at << " flipped";
    EXPECT_THAT(v.failure, HasSubstr(flip.says)) << "byte " << flip.at << " flipped";
  }
}

void ExpectCutsCaught(const Fixture& f, std::initializer_list<Damage> cuts) {
  for (const Damage& cut : cuts) {
    const SegmentVerification v = VerifySegment(f.name, f.bytes.substr(0, cut.at));
    EXPECT_FALSE(v.ok) << "cut to " << cut.at << " bytes";
    EXPECT_FALSE(v.ended_cleanly) << "cut to " << cut.at << " bytes";
    EXPECT_THAT(v.failure, HasSubstr(cut.says)) << "cut to " << cut.at << " bytes";
  }
}

// ---- names ----

TEST(ParseSegmentName, SegmentsCdcIndexesAndOthers) {
  SegmentName n = ParseSegmentName("CommitLog-7-1699285478684.log");
  EXPECT_EQ(n.kind, FileKind::kSegment);
  EXPECT_EQ(n.version, 7);
  EXPECT_EQ(n.id, 1699285478684);

  n = ParseSegmentName("CommitLog-3-1431528750790.log");  // 2.0 names carry a version too
  EXPECT_EQ(n.kind, FileKind::kSegment);
  EXPECT_EQ(n.version, 3);

  n = ParseSegmentName("CommitLog-1431528750790.log");  // before 1.2.5
  EXPECT_EQ(n.kind, FileKind::kLegacySegment);
  EXPECT_EQ(n.version, 0);
  EXPECT_EQ(n.id, 1431528750790);

  n = ParseSegmentName("CommitLog-7-1699285478684_cdc.idx");
  EXPECT_EQ(n.kind, FileKind::kCdcIndex);
  EXPECT_EQ(n.version, 7);
  EXPECT_EQ(n.id, 1699285478684);

  for (const char* other :
       {"CommitLog-7-1.log.tmp", "CommitLog-x-1.log", "CommitLog--1.log", "CommitLog-7-.log",
        "commitlog-7-1.log", "CommitLog-7-1-2.log", "CommitLog-7-+1.log", "CommitLog-1_cdc.idx",
        "CommitLog-7-99999999999999999999.log", "hash.txt", ""}) {
    EXPECT_EQ(ParseSegmentName(other).kind, FileKind::kOther) << other;
  }
}

// ---- Cassandra's own segments ----

struct Expected {
  int version;
  const char* compression;
  bool encrypted;
  int64_t sync_sections;
  int64_t mutations;
};

// Sections and mutations of the uncompressed ones were counted again by an
// independent script; the compressed ones' counts are this verifier's.
// The "*-encrypted" folders of 3.0.13, 3.0.29 and 4.0.11 hold segments
// whose header is "{}": not encrypted, so checked in full.
const std::map<std::string, Expected>& ExpectedFixtures() {
  static const auto* expected = new std::map<std::string, Expected>{
      {"2.0/CommitLog-3-1431528750790.log", {3, "", false, 0, 0}},  // all zeros: empty
      {"2.0/CommitLog-3-1431528750791.log", {3, "", false, 0, 5417}},
      {"2.0/CommitLog-3-1431528750792.log", {3, "", false, 0, 4346}},
      {"2.0/CommitLog-3-1431528750793.log", {3, "", false, 0, 0}},
      {"2.1/CommitLog-4-1431529069529.log", {4, "", false, 386, 5243}},
      {"2.1/CommitLog-4-1431529069530.log", {4, "", false, 0, 0}},
      {"2.2/CommitLog-5-1438186815314.log", {5, "", false, 488, 6449}},
      {"2.2/CommitLog-5-1438186815315.log", {5, "", false, 1, 0}},
      {"2.2-lz4/CommitLog-5-1438186885380.log", {5, "LZ4Compressor", false, 464, 6134}},
      {"2.2-lz4/CommitLog-5-1438186885381.log", {5, "LZ4Compressor", false, 1, 0}},
      {"2.2-snappy/CommitLog-5-1438186915514.log", {5, "SnappyCompressor", false, 468, 6133}},
      {"2.2-snappy/CommitLog-5-1438186915515.log", {5, "SnappyCompressor", false, 1, 0}},
      {"3.0.13-encrypted/CommitLog-6-1699284515156.log", {6, "", false, 2, 1480}},
      {"3.0.13-encrypted/CommitLog-6-1699284515157.log", {6, "", false, 1, 0}},
      {"3.0.29-encrypted/CommitLog-6-1699279786262.log", {6, "", false, 15, 176}},
      {"3.4-encrypted/CommitLog-6-1480001790338.log", {6, "", true, 2, 0}},
      {"3.4-encrypted/CommitLog-6-1480001790339.log", {6, "", true, 1, 0}},
      {"4.0.11-encrypted/CommitLog-7-1699285478684.log", {7, "", false, 4, 358}},
  };
  return *expected;
}

TEST(CassandraSegments, EverySoundSegmentVerifies) {
  REQUIRE_FIXTURES(dir);
  int checked = 0;
  for (const std::string& folder : Entries(dir)) {
    if (folder == "2.2-lz4-bitrot") continue;  // the damaged one: below
    for (const std::string& name : Entries(absl::StrCat(dir, "/", folder))) {
      if (ParseSegmentName(name).kind != FileKind::kSegment) continue;  // hash.txt
      const std::string rel = absl::StrCat(folder, "/", name);
      SCOPED_TRACE(rel);
      const SegmentVerification v = VerifySegmentFile(absl::StrCat(dir, "/", rel));
      EXPECT_TRUE(v.ok) << v.failure;
      EXPECT_EQ(v.failure, "");
      EXPECT_TRUE(v.ended_cleanly);
      EXPECT_EQ(v.descriptor.id, ParseSegmentName(name).id);
      auto it = ExpectedFixtures().find(rel);
      ASSERT_NE(it, ExpectedFixtures().end()) << "a fixture segment this test does not know";
      const Expected& e = it->second;
      EXPECT_EQ(v.descriptor.version, e.version);
      EXPECT_EQ(v.descriptor.compression_class, e.compression);
      EXPECT_EQ(v.descriptor.encrypted, e.encrypted);
      EXPECT_EQ(v.encrypted_checked_to_markers_only, e.encrypted);
      EXPECT_EQ(v.sync_sections, e.sync_sections);
      EXPECT_EQ(v.mutations, e.mutations);
      ++checked;
    }
  }
  EXPECT_EQ(checked, static_cast<int>(ExpectedFixtures().size()));
}

TEST(CassandraSegments, EncryptedSegmentSaysItIsCheckedToMarkersOnly) {
  REQUIRE_FIXTURES(dir);
  const Fixture f = Load(dir, "3.4-encrypted", "CommitLog-6-1480001790338.log");
  SegmentVerification v = VerifySegment(f.name, f.bytes);
  ASSERT_TRUE(v.ok) << v.failure;
  EXPECT_TRUE(v.encrypted_checked_to_markers_only);
  EXPECT_EQ(v.descriptor.cipher, "AES/CBC/PKCS5Padding");
  EXPECT_EQ(v.descriptor.key_alias, "testing:1");
  EXPECT_EQ(v.mutations, 0);
  EXPECT_THAT(Describe(v), HasSubstr("checked to the sync markers and encrypted blocks only"));

  // Without the key, a flipped byte of cipher text goes unseen ...
  EXPECT_TRUE(VerifySegment(f.name, Flipped(f.bytes, 1000)).ok);
  // ... but the markers and the blocks' framing are checked. Header 125
  // bytes, the first marker at 125, its section's first block at 137.
  ExpectFlipsCaught(f, {
                           {125 + 5, "sync marker at offset 125: CRC mismatch (stored "},
                           {137 + 2,
                            "encrypted block at offset 137 (sync section at offset 125): "
                            "55856 encrypted bytes cannot hold 32809 plain bytes under "
                            "AES/CBC/PKCS5Padding"},
                           {137 + 7,
                            "encrypted block at offset 137 (sync section at offset 125): "
                            "32816 encrypted bytes cannot hold 32883 plain bytes"},
                       });
}

// Cassandra's bit-rot test segment: 2.2-lz4 with byte 77777 overwritten.
TEST(CassandraSegments, BitrotIsCaughtAtTheDamagedSection) {
  REQUIRE_FIXTURES(dir);
  const SegmentVerification v =
      VerifySegmentFile(dir + "/2.2-lz4-bitrot/CommitLog-5-1438186885380.log");
  EXPECT_FALSE(v.ok);
  EXPECT_FALSE(v.io_error);
  EXPECT_FALSE(v.ended_cleanly);
  EXPECT_EQ(v.failure,
            "mutation at byte 1452 of the sync section at offset 76731 (LZ4Compressor, 3421 bytes "
            "uncompressed): data CRC mismatch (stored 0x421fd29d, computed 0x815f4257)");
  // That section is the one holding the damaged byte: its marker (in the
  // sound copy) points to the next one past 77777.
  const Fixture sound = Load(dir, "2.2-lz4", "CommitLog-5-1438186885380.log");
  const std::string damaged = ReadFile(dir + "/2.2-lz4-bitrot/CommitLog-5-1438186885380.log");
  ASSERT_EQ(damaged.size(), sound.bytes.size());
  std::vector<size_t> differ;
  for (size_t i = 0; i < damaged.size(); ++i) {
    if (damaged[i] != sound.bytes[i]) differ.push_back(i);
  }
  ASSERT_EQ(differ, std::vector<size_t>{77777});
  EXPECT_LT(76731u, 77777u);
  EXPECT_GT(Be32(sound.bytes, 76731), 77777u);
}

// ---- crafted damage to real segments ----

// 2.2 uncompressed: header 20 bytes ({} parameters); the first marker at
// 20 points to 103765; the first mutation at 28 (103725 bytes) fills that
// section; the marker chain ends with a zeroed marker at 1591869.
TEST(CraftedDamage, PlainSegment) {
  REQUIRE_FIXTURES(dir);
  const Fixture f = Load(dir, "2.2", "CommitLog-5-1438186815314.log");
  ASSERT_TRUE(VerifySegment(f.name, f.bytes).ok);
  ExpectFlipsCaught(
      f,
      {
          {8, "header at offset 0: CRC mismatch (stored "},   // the id
          {13, "header at offset 0: CRC mismatch (stored "},  // the JSON's length
          {25, "sync marker at offset 20: CRC mismatch (stored "},
          // The marker's CRC does not cover where it points: moved, the
          // section no longer fits its mutation.
          {23,
           "mutation at offset 28 (sync section at offset 20): its 103725 bytes run past the "
           "end of its section at offset 103695"},
          {30, "mutation at offset 28 (sync section at offset 20): size CRC mismatch (stored "},
          {5000, "mutation at offset 28 (sync section at offset 20): data CRC mismatch (stored "},
          {28 + 8 + 103725 + 2, "mutation at offset 28 (sync section at offset 20): data CRC "},
      });
  ExpectCutsCaught(
      f, {
             {1000000, "past the end of the file (1000000 bytes): the segment is truncated"},
             {5000,
              "sync marker at offset 20 points to the next at 103765, past the end of the "
              "file (5000 bytes): the segment is truncated"},
             {15, "the file is 15 bytes, too short for its version-5 header (20 bytes)"},
         });
  // A zero mutation size is Cassandra's end of the log: in a section that
  // others follow, it would silently drop them.
  std::string zeroed = f.bytes;
  zeroed.replace(28, 4, 4, '\0');
  EXPECT_EQ(VerifySegment(f.name, zeroed).failure,
            "mutation at offset 28 (sync section at offset 20): an end-of-segment zero (or a "
            "cut-off entry) ends the log there, yet the sync section at offset 103765 follows: "
            "Cassandra would not replay it");
}

// 2.2 LZ4: header 83 bytes; the first marker at 83 points to 16960; its
// section's uncompressed length at 91, LZ4's own length prefix at 95.
TEST(CraftedDamage, Lz4Segment) {
  REQUIRE_FIXTURES(dir);
  const Fixture f = Load(dir, "2.2-lz4", "CommitLog-5-1438186885380.log");
  ASSERT_TRUE(VerifySegment(f.name, f.bytes).ok);
  ExpectFlipsCaught(
      f, {
             {30, "header at offset 0: CRC mismatch (stored "},
             {89, "sync marker at offset 83: CRC mismatch (stored "},
             {93,
              "sync section at offset 83 (LZ4Compressor): LZ4's length prefix says 103737 "
              "bytes but the section says "},
             {96, "sync section at offset 83 (LZ4Compressor): LZ4's length prefix says "},
             // Inside the compressed mutations: whether LZ4 or a CRC
             // notices, the reason names the section.
             {200, "sync section at offset 83 "},
             {5000, "sync section at offset 83 "},
             {16000, "sync section at offset 83 "},
         });
  ExpectCutsCaught(
      f, {
             {500000, "past the end of the file (500000 bytes): the segment is truncated"},
             {16960 + 3,
              "the file ends 3 bytes into the sync marker at offset 16960: the segment "
              "is truncated"},
         });
  // Data after a zeroed end marker would never be read.
  std::string zeroed = f.bytes;
  zeroed.replace(16960, 8, 8, '\0');
  EXPECT_EQ(VerifySegment(f.name, zeroed).failure,
            "sync marker at offset 16960 is zero (an end marker), yet data follows it: Cassandra "
            "would stop reading there");
  // The limit: cut exactly between two sections, a compressed segment looks
  // finished (settle time, not the verifier, guards against a copy still
  // being written).
  EXPECT_TRUE(VerifySegment(f.name, f.bytes.substr(0, 16960)).ok);
}

TEST(CraftedDamage, SnappyAnd20Segments) {
  REQUIRE_FIXTURES(dir);
  // Header 86 bytes, the first marker at 86, compressed data from 98.
  ExpectFlipsCaught(Load(dir, "2.2-snappy", "CommitLog-5-1438186915514.log"),
                    {
                        {98, "sync section at offset 86 (SnappyCompressor): Snappy's length says "},
                        {300, "sync section at offset 86 "},
                        {10000, "sync section at offset 86 "},
                    });
  // 2.0: no header; entries of int size, long CRC, data, long CRC from 0.
  const Fixture old = Load(dir, "2.0", "CommitLog-3-1431528750791.log");
  ExpectFlipsCaught(old, {
                             {6, "mutation at offset 0: size CRC mismatch (stored "},
                             {100, "mutation at offset 0: data CRC mismatch (stored "},
                         });
  ExpectCutsCaught(old, {{50000,
                          "mutation at offset 0: its 101852 bytes run past the end of the file at "
                          "offset 50000"}});
}

TEST(CraftedDamage, NameMustMatchTheHeader) {
  REQUIRE_FIXTURES(dir);
  const Fixture f = Load(dir, "2.2", "CommitLog-5-1438186815314.log");
  EXPECT_EQ(VerifySegment("CommitLog-5-1438186815999.log", f.bytes).failure,
            "the name says segment id 1438186815999 but the header says 1438186815314");
  EXPECT_EQ(VerifySegment("/archive/CommitLog-6-1438186815314.log", f.bytes).failure,
            "the name says version 6 but the header says version 5");
  EXPECT_EQ(VerifySegment("CommitLog-3-1438186815314.log", f.bytes).failure,
            "the name says version 3 (Cassandra 2.0, no header), but the file starts with a sound "
            "version-5 header");
  EXPECT_THAT(VerifySegment("CommitLog-1438186815314.log", f.bytes).failure,
              HasSubstr("before 1.2.5"));
  EXPECT_THAT(VerifySegment("CommitLog-5-1438186815314_cdc.idx", f.bytes).failure,
              HasSubstr("CDC index"));
  EXPECT_THAT(VerifySegment("segment.log", f.bytes).failure,
              HasSubstr("is not a commitlog segment's"));
  EXPECT_THAT(VerifySegment("CommitLog-9-1438186815314.log", f.bytes).failure,
              HasSubstr("not one this verifier reads"));
  // A 2.0 segment under a newer name: its first int is no header version.
  const Fixture old = Load(dir, "2.0", "CommitLog-3-1431528750791.log");
  EXPECT_EQ(VerifySegment("CommitLog-5-1431528750791.log", old.bytes).failure,
            "header at offset 0: version 101852 is not a commitlog version with a header (4 to 8)");
}

// ---- Deflate, Zstd and Noop, which no fixture has: segments built here ----

void PutInt(std::string* out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}
uint32_t ZlibCrc(uint32_t crc, const std::string& bytes) {
  return static_cast<uint32_t>(
      crc32(crc, reinterpret_cast<const Bytef*>(bytes.data()), bytes.size()));
}
uint32_t CrcOfInts(std::initializer_list<uint32_t> ints) {
  std::string bytes;
  for (uint32_t v : ints) PutInt(&bytes, v);
  return ZlibCrc(0, bytes);
}

std::string Compress(const std::string& codec, const std::string& in) {
  std::string out;
  if (codec == "DeflateCompressor") {
    uLongf n = compressBound(in.size());
    out.resize(n);
    EXPECT_EQ(
        compress2(reinterpret_cast<Bytef*>(&out[0]), &n, reinterpret_cast<const Bytef*>(in.data()),
                  in.size(), Z_DEFAULT_COMPRESSION),
        Z_OK);
    out.resize(n);
  } else if (codec == "ZstdCompressor") {
    out.resize(ZSTD_compressBound(in.size()));
    const size_t n = ZSTD_compress(&out[0], out.size(), in.data(), in.size(), 3);
    EXPECT_FALSE(ZSTD_isError(n));
    out.resize(n);
  } else if (codec == "org.apache.cassandra.io.compress.LZ4Compressor") {
    for (int shift = 0; shift < 32; shift += 8)
      out.push_back(static_cast<char>(in.size() >> shift));
    std::string block(LZ4_compressBound(in.size()), '\0');
    block.resize(LZ4_compress_default(in.data(), &block[0], in.size(), block.size()));
    out += block;
  } else {
    out = in;  // NoopCompressor
  }
  return out;
}

// A version-7 segment as CompressedSegment writes it: header, then per
// section its marker, the uncompressed length and the compressed entries.
std::string BuildCompressedSegment(int64_t id, const std::string& codec, int sections,
                                   int per_section) {
  std::string out;
  const std::string json =
      absl::StrCat(R"({"compressionClass":")", codec, R"(","compressionParameters":{}})");
  const uint32_t lo = static_cast<uint32_t>(id),
                 hi = static_cast<uint32_t>(static_cast<uint64_t>(id) >> 32);
  PutInt(&out, 7);
  PutInt(&out, hi);
  PutInt(&out, lo);
  out.push_back(static_cast<char>(json.size() >> 8));
  out.push_back(static_cast<char>(json.size()));
  out += json;
  PutInt(&out, ZlibCrc(CrcOfInts({7, lo, hi, static_cast<uint32_t>(json.size())}), json));
  uint32_t seed = 1;
  for (int s = 0; s < sections; ++s) {
    std::string entries;
    for (int m = 0; m < per_section; ++m) {
      // Compressible: a repeated random phrase.
      std::string data;
      const std::string phrase = snaphaven::testing::RandomBytes(20 + seed % 50, seed);
      while (data.size() < 300 + (97 * seed) % 4000) data += phrase;
      ++seed;
      const uint32_t size_crc = CrcOfInts({static_cast<uint32_t>(data.size())});
      PutInt(&entries, data.size());
      PutInt(&entries, size_crc);
      entries += data;
      PutInt(&entries, ZlibCrc(size_crc, data));
    }
    const std::string block = Compress(codec, entries);
    const uint32_t offset = out.size();
    PutInt(&out, offset + 12 + block.size());
    PutInt(&out, CrcOfInts({lo, hi, offset}));
    PutInt(&out, entries.size());
    out += block;
  }
  return out;
}

TEST(BuiltSegments, DeflateZstdLz4AndNoopVerify) {
  for (const std::string codec :
       {"DeflateCompressor", "ZstdCompressor", "org.apache.cassandra.io.compress.LZ4Compressor",
        "NoopCompressor"}) {
    SCOPED_TRACE(codec);
    const int64_t id = 1700000000123;
    const std::string name = absl::StrCat("CommitLog-7-", id, ".log");
    const std::string bytes = BuildCompressedSegment(id, codec, 5, 7);
    SegmentVerification v = VerifySegment(name, bytes);
    EXPECT_TRUE(v.ok) << v.failure;
    EXPECT_TRUE(v.ended_cleanly);
    EXPECT_EQ(v.descriptor.compression_class, codec);
    EXPECT_EQ(v.sync_sections, 5);
    EXPECT_EQ(v.mutations, 35);

    // Damage in the middle of the third section's data. The header is 18
    // bytes and the JSON (its length at 12); markers from there on.
    size_t third = 18 + Be16(bytes, 12);
    for (int s = 0; s < 2; ++s) third = Be32(bytes, third);
    const size_t next = Be32(bytes, third);
    v = VerifySegment(name, Flipped(bytes, (third + 12 + next) / 2));
    EXPECT_FALSE(v.ok);
    EXPECT_THAT(v.failure, HasSubstr(absl::StrCat("sync section at offset ", third, " ")));
    // Cut mid-section.
    v = VerifySegment(name, bytes.substr(0, (third + next) / 2));
    EXPECT_THAT(v.failure,
                HasSubstr(absl::StrCat("sync marker at offset ", third, " points to the next at ",
                                       next, ", past the end of the file")));
  }
}

TEST(BuiltSegments, UnknownCompressorIsRefused) {
  const std::string bytes = BuildCompressedSegment(42, "com.example.SecretCompressor", 1, 1);
  EXPECT_EQ(VerifySegment("CommitLog-7-42.log", bytes).failure,
            "header at offset 0: unknown compression class com.example.SecretCompressor (Cassandra "
            "would refuse the "
            "segment)");
}

TEST(VerifySegmentFile, UnreadableFileIsAnIoErrorNotDamage) {
  const SegmentVerification v = VerifySegmentFile("/nonexistent/CommitLog-7-1.log");
  EXPECT_FALSE(v.ok);
  EXPECT_TRUE(v.io_error);
  EXPECT_THAT(v.failure, HasSubstr("cannot open /nonexistent/CommitLog-7-1.log"));
  EXPECT_EQ(VerifySegment("CommitLog-7-1.log", "").failure,
            "the file is 0 bytes, too short for a header");
}

}  // namespace
}  // namespace snaphaven::commitlog
