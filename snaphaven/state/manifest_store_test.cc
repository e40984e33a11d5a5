#include "snaphaven/state/manifest_store.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "snaphaven/storage/checksum.h"
#include "snaphaven/state/destination.h"
#include "snaphaven/storage/file_system.h"
#include "snaphaven/testing/fault_injection_file_system.h"
#include "snaphaven/testing/test_files.h"

namespace snaphaven {
namespace {

// Every entry of `m`, its sections read in first (lookups never read).
const Manifest::Map& All(const Manifest& m) {
  const absl::Status loaded = m.LoadAll();
  EXPECT_TRUE(loaded.ok()) << loaded;
  return m.entries();
}

StoredManifest Sample() {
  StoredManifest m;
  m.Put("ks/t/snapshots/s1/nb-1-big-Data.db", {100, 1700000000123456789, 0644, 2049, 77});
  m.Put("ks/t/snapshots/tag with space/nb-1-big-TOC.txt", {5, 1, 0600, 2049, 78});
  m.Put("ks/t/snapshots/\xc3\xa9t\xc3\xa9/\tweird\nname", {0, 0, 0600, 0, 0});
  m.Put("ks/t/snapshots/bad\xff" "utf8/f", {1, 2, 0640, 0, 0});
  ManifestEntry with_crc{7, 8, 0644, 1, 2, 0, true, 0x0badf00d};
  m.Put("ks/t/snapshots/s1/nb-2-big-Data.db", with_crc);
  ManifestEntry gone{7, 8, 0644, 1, 3, 1700000000000000000, true, 0};
  m.Put("ks/t/nb-3-big-Data.db", gone);
  return m;
}

TEST(ManifestStore, RoundTripsExactly) {
  StoredManifest m = Sample();
  std::string text = m.Serialize();
  absl::StatusOr<StoredManifest> parsed = StoredManifest::Parse(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(All(*parsed), All(m));
  EXPECT_EQ(parsed->Serialize(), text);  // deterministic
}

// Directories whose entries interleave in path order (a subdirectory's
// sort between its parent's), files at the top, escaped names and hard
// links: the exact text, as the format (and older binaries) expect it.
TEST(ManifestStore, WritesTheFormatByteForByte) {
  StoredManifest m;
  ManifestEntry live{10, 1700000000000000001, 0644, 2049, 5, 0, true, 0xabc};
  m.Put("ks/t/nb-1-big-Data.db", live);
  m.Put("ks/t/snapshots/s/nb-1-big-Data.db", live);  // a hard link: counted once
  m.Put("ks/t/a", {1, 2, 0600, 0, 0});
  m.Put("ks/t/backups/x", {3, 4, 0640, 2049, 6, 0, true, 0xffffffff});
  m.Put("ks/t/zz", {5, 6, 0644, 2049, 7, 1700000000000000000});
  m.Put("ks/t-2/f", {7, 8, 0644, 2049, 8});
  m.Put("ks/tz/q", {9, 10, 01777, 2049, 9});
  m.Put("top", {11, 12, 0644, 0, 0});
  m.Put("zz top", {13, 14, 0644, 0, 0});
  m.Put("a\tb", {15, 16, 0644, 0, 0});
  const std::string expected =
      "snaphaven-manifest 5\n"
      "epoch 0000000000000000\n"
      "dir\t\t3\t70\t9963143a\n"
      "a\\tb\t15\t16\t1a4\t0\t0\t-\t0\n"
      "top\t11\t12\t1a4\t0\t0\t-\t0\n"
      "zz top\t13\t14\t1a4\t0\t0\t-\t0\n"
      "dir\tks/t\t3\t120\t3c0c4f56\n"
      "a\t1\t2\t180\t0\t0\t-\t0\n"
      "nb-1-big-Data.db\t10\t1700000000000000001\t1a4\t2049\t5\t00000abc\t0\n"
      "zz\t5\t6\t1a4\t2049\t7\t-\t1700000000000000000\n"
      "dir\tks/t-2\t1\t21\t7438402f\n"
      "f\t7\t8\t1a4\t2049\t8\t-\t0\n"
      "dir\tks/t/backups\t1\t28\tb52aabdd\n"
      "x\t3\t4\t1a0\t2049\t6\tffffffff\t0\n"
      "dir\tks/t/snapshots/s\t1\t62\ta463ff0a\n"
      "nb-1-big-Data.db\t10\t1700000000000000001\t1a4\t2049\t5\t00000abc\t0\n"
      "dir\tks/tz\t1\t22\tf8c3a314\n"
      "q\t9\t10\t3ff\t2049\t9\t-\t0\n"
      "end 10 74 bc606055\n";
  EXPECT_EQ(m.Serialize(), expected);
  absl::StatusOr<StoredManifest> parsed = StoredManifest::Parse(expected);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(All(*parsed), All(m));
}

TEST(ManifestStore, CommitsToAFileThatLoadsBack) {
  FileSystem& fs = *DefaultFileSystem();
  const std::string path = testing::MakeTempDir("commit") + "/manifest";
  StoredManifest m = Sample();
  ASSERT_TRUE(m.Commit(fs, path).ok());
  absl::StatusOr<StoredManifest> loaded = StoredManifest::Load(fs, path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(All(*loaded), All(m));
  EXPECT_FALSE(fs.Stat(path + ".tmp").ok());  // nothing left beside it
}

TEST(ManifestStore, ReadsVersion1) {
  absl::StatusOr<StoredManifest> parsed = StoredManifest::Parse(
      "snaphaven-manifest 1\nks/t/snapshots/s/f\t5\t6\t1a4\t1\t2\nks/t/f\t1\t2\t1a4\t1\t3\t99\n"
      "end 2 ");
  // (checksum filled in below)
  std::string body =
      "snaphaven-manifest 1\nks/t/snapshots/s/f\t5\t6\t1a4\t1\t2\nks/t/f\t1\t2\t1a4\t1\t3\t99\n";
  uLong crc = crc32(0, reinterpret_cast<const Bytef*>(body.data()), body.size());
  parsed =
      StoredManifest::Parse(absl::StrCat(body, "end 2 ", absl::Hex(crc, absl::kZeroPad8), "\n"));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->Find("ks/t/snapshots/s/f")->size, 5);
  EXPECT_FALSE(parsed->Find("ks/t/snapshots/s/f")->has_crc32);
  EXPECT_EQ(parsed->Find("ks/t/f")->missing_since_ns, 99);
}

TEST(ManifestStore, EmptyRoundTrips) {
  absl::StatusOr<StoredManifest> parsed = StoredManifest::Parse(StoredManifest().Serialize());
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->size(), 0u);
}

TEST(ManifestStore, RejectsEveryTruncation) {
  std::string text = Sample().Serialize();
  for (size_t cut = 0; cut < text.size(); ++cut) {
    EXPECT_FALSE(StoredManifest::Parse(text.substr(0, cut)).ok()) << "cut at " << cut;
  }
}

TEST(ManifestStore, RejectsFlippedBytes) {
  std::string text = Sample().Serialize();
  for (size_t i = 0; i < text.size(); ++i) {
    std::string bad = text;
    bad[i] ^= 0x01;
    EXPECT_FALSE(StoredManifest::Parse(bad).ok()) << "flip at " << i;
  }
}

// A crafted manifest (valid checksum) must not point outside the destination.
TEST(ManifestStore, RejectsPathsOutsideTheDestination) {
  for (const char* evil : {"../etc/passwd", "/etc/passwd", "ks/../../x", ".snaphaven/lock",
                           ".snaphaven", "ks/t/..", "ks/./x"}) {
    StoredManifest m;
    m.Put(evil, {1, 1, 0644, 0, 0});
    absl::StatusOr<StoredManifest> parsed = StoredManifest::Parse(m.Serialize());
    EXPECT_FALSE(parsed.ok()) << evil;
  }
}

TEST(ManifestStore, RejectsGarbage) {
  EXPECT_FALSE(StoredManifest::Parse("").ok());
  EXPECT_FALSE(StoredManifest::Parse("hello\n").ok());
  EXPECT_FALSE(StoredManifest::Parse("snaphaven-manifest 1\nend 0 00000000\n").ok());
}

TEST(ManifestStore, ReadsVersion3) {
  // Whole sorted paths, each sharing a prefix with the one before.
  std::string body =
      "snaphaven-manifest 3\n0\tks/t/nb-1-big-Data.db\t10\t20\t1a4\t1\t2\t0badf00d\t0\n"
      "5\tsnapshots/s/nb-1-big-Data.db\t10\t20\t1a4\t1\t2\t-\t0\n";
  uLong crc = crc32(0, reinterpret_cast<const Bytef*>(body.data()), body.size());
  absl::StatusOr<StoredManifest> parsed =
      StoredManifest::Parse(absl::StrCat(body, "end 2 ", absl::Hex(crc, absl::kZeroPad8), "\n"));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_NE(parsed->Find("ks/t/snapshots/s/nb-1-big-Data.db"), nullptr);
  EXPECT_EQ(parsed->Find("ks/t/nb-1-big-Data.db")->crc32, 0x0badf00du);
  EXPECT_EQ(parsed->UniqueBytes(), 10);  // one source inode, two names
  EXPECT_EQ(parsed->format_version(), 3);
  // Written back in the current version, with the same entries.
  absl::StatusOr<StoredManifest> again = StoredManifest::Parse(parsed->Serialize());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(All(*again), All(*parsed));
  EXPECT_EQ(again->format_version(), 5);
}

// A manifest file on a real file system, for lazy loading.
class LazyManifestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string templ = testing::MakeTempDir("manifest");
    path_ = templ + "/manifest";
    // Three snapshot sections and a live one; hard links share a source.
    for (int table = 0; table < 3; ++table) {
      for (int n = 1; n <= 4; ++n) {
        ManifestEntry e{100 * n, 1000 + n, 0644, 7, static_cast<uint64_t>(table * 10 + n)};
        e.has_crc32 = true;
        e.crc32 = 0x1000 + n;
        full_.Put(absl::StrCat("ks/t", table, "/nb-", n, "-big-Data.db"), e);
        full_.Put(absl::StrCat("ks/t", table, "/snapshots/a/nb-", n, "-big-Data.db"), e);
        full_.Put(absl::StrCat("ks/t", table, "/snapshots/b/.idx/nb-", n, "-big-Data.db"), e);
      }
    }
    full_.Put("top-level file", {1, 2, 0600, 0, 0});
    text_ = full_.Serialize();
    ASSERT_TRUE(fs_.WriteFileAtomically(path_, text_).ok());
  }

  StoredManifest LoadLazily() {
    absl::StatusOr<StoredManifest> m =
        StoredManifest::Load(fs_, path_, StoredManifest::Loading::kLazy);
    EXPECT_TRUE(m.ok()) << m.status();
    return m.ok() ? *std::move(m) : StoredManifest();
  }

  FileSystem& fs_ = *DefaultFileSystem();
  std::string path_;
  StoredManifest full_;
  std::string text_;
};

TEST_F(LazyManifestTest, ReadsOnlyTheSectionsAskedAbout) {
  StoredManifest m = LoadLazily();
  EXPECT_EQ(m.size(), full_.size());
  EXPECT_TRUE(m.loaded_entries().empty());
  EXPECT_FALSE(m.fully_loaded());
  EXPECT_EQ(m.UniqueBytes(), full_.UniqueBytes());  // from the trailer
  EXPECT_TRUE(m.loaded_entries().empty());

  ASSERT_TRUE(m.LoadSections([](absl::string_view dir) { return dir == "ks/t1/snapshots/a"; })
                  .ok());
  const ManifestEntry* e = m.Find("ks/t1/snapshots/a/nb-2-big-Data.db");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(*e, *full_.Find("ks/t1/snapshots/a/nb-2-big-Data.db"));
  EXPECT_EQ(m.loaded_entries().size(), 4u);  // that directory only
  EXPECT_EQ(m.Find("ks/t1/snapshots/a/nb-9-big-Data.db"), nullptr);

  EXPECT_TRUE(
      m.LoadSections([](absl::string_view dir) { return absl::EndsWith(dir, "/.idx"); }).ok());
  EXPECT_EQ(m.loaded_entries().size(), 4u + 12u);
  EXPECT_FALSE(m.fully_loaded());
  ASSERT_TRUE(m.LoadAll().ok());
  EXPECT_EQ(All(m), All(full_));
  EXPECT_TRUE(m.fully_loaded());
}

// A lookup never reads: what it needs is read in first by a Load call,
// which returns its own error (no error is left to be fetched afterwards).
// A lookup in a section not read in is a bug, caught in debug builds.
TEST_F(LazyManifestTest, LookupsNeverReadALoadCallDoes) {
  StoredManifest m = LoadLazily();
  EXPECT_DEBUG_DEATH(m.Find("ks/t0/nb-1-big-Data.db"), "before its section was read in");
  EXPECT_DEBUG_DEATH(m.FindBySource(SourceIdentity{7, 1001, 1, 1}, "ks/t0"),
                     "before its sections were read in");
  EXPECT_DEBUG_DEATH(m.entries(), "before LoadAll");
  EXPECT_TRUE(m.loaded_entries().empty());
  EXPECT_FALSE(m.Loaded("ks/t0"));
  ASSERT_TRUE(m.LoadBelow("ks/t0").ok());
  EXPECT_TRUE(m.Loaded("ks/t0"));
  EXPECT_NE(m.Find("ks/t0/nb-1-big-Data.db"), nullptr);
}

TEST_F(LazyManifestTest, WritesBackWhatItDidNotReadByteForByte) {
  StoredManifest m = LoadLazily();
  ASSERT_TRUE(m.LoadSections([](absl::string_view dir) { return dir == "ks/t0"; }).ok());
  ASSERT_NE(m.Find("ks/t0/nb-1-big-Data.db"), nullptr);
  EXPECT_EQ(m.Serialize(), text_);
  EXPECT_FALSE(m.fully_loaded());  // nothing had to be read in to write it

  // A change in one section: the same text as the same change in memory.
  ManifestEntry changed{5, 6, 0644, 7, 99};
  m.Put("ks/t2/snapshots/a/nb-5-big-Data.db", changed);
  m.Erase("ks/t0/snapshots/b/.idx/nb-1-big-Data.db");
  full_.Put("ks/t2/snapshots/a/nb-5-big-Data.db", changed);
  full_.Erase("ks/t0/snapshots/b/.idx/nb-1-big-Data.db");
  std::string written = m.Serialize();
  EXPECT_EQ(written, full_.Serialize());
  absl::StatusOr<StoredManifest> reread = StoredManifest::Parse(written);
  ASSERT_TRUE(reread.ok()) << reread.status();
  EXPECT_EQ(All(*reread), All(full_));
  EXPECT_EQ(reread->UniqueBytes(), full_.UniqueBytes());
}

TEST_F(LazyManifestTest, CountsHardLinkedBytesOnceAfterAnErase) {
  StoredManifest m = LoadLazily();
  const int64_t before = m.UniqueBytes();
  // Another name of the same source: the unique bytes stay.
  m.Erase("ks/t0/snapshots/a/nb-1-big-Data.db");
  EXPECT_EQ(m.UniqueBytes(), before);
  // The last names of a source: its bytes go.
  m.Erase("ks/t0/nb-1-big-Data.db");
  m.Erase("ks/t0/snapshots/b/.idx/nb-1-big-Data.db");
  EXPECT_EQ(m.UniqueBytes(), before - 100);
  // A new source adds its bytes; a new name of a known one adds none.
  m.Put("ks/t0/snapshots/c/new", {50, 1, 0644, 7, 12345});
  m.Put("ks/t0/snapshots/c/nb-2-big-Data.db", *m.Find("ks/t0/nb-2-big-Data.db"));
  EXPECT_EQ(m.UniqueBytes(), before - 100 + 50);
  // Only ks/t0's sections were read in to know it.
  EXPECT_FALSE(m.fully_loaded());
  EXPECT_FALSE(m.Loaded("ks/t1"));
  ASSERT_TRUE(m.LoadBelow("ks/t1").ok());
  EXPECT_NE(m.Find("ks/t1/nb-1-big-Data.db"), nullptr);
  EXPECT_EQ(StoredManifest::Parse(m.Serialize())->UniqueBytes(), before - 100 + 50);
}

// A section changed under a lazily loaded manifest (nobody else should
// write it, but a crafted or damaged file must never be half-trusted).
TEST_F(LazyManifestTest, ASectionChangedUnderItIsAnErrorNotMissingEntries) {
  StoredManifest m = LoadLazily();
  std::string damaged = text_;
  size_t at = damaged.find("nb-3-big-Data.db\t300");
  ASSERT_NE(at, std::string::npos);
  damaged[at + 17] = '4';  // same length, other size
  {
    std::fstream f(path_, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(0);
    f.write(damaged.data(), damaged.size());
  }
  // The first section (ks/t0) is the one damaged.
  const absl::Status loaded = m.LoadBelow("ks/t0");
  EXPECT_FALSE(loaded.ok());
  EXPECT_NE(loaded.message().find("changed since it was loaded"), std::string::npos) << loaded;
  EXPECT_FALSE(m.WriteTo([](absl::string_view) { return absl::OkStatus(); }).ok());
}

TEST_F(LazyManifestTest, EveryTruncationOfTheFileIsRefused) {
  for (size_t cut = 0; cut < text_.size(); cut += 7) {
    ASSERT_TRUE(fs_.WriteFileAtomically(path_, text_.substr(0, cut)).ok());
    EXPECT_FALSE(StoredManifest::Load(fs_, path_, StoredManifest::Loading::kLazy).ok())
        << "cut at " << cut;
  }
}

// Hand-made version 4 text: sections with their checksums, a trailer.
std::string Section(const std::string& dir, const std::string& count, const std::string& body) {
  return absl::StrCat("dir\t", dir, "\t", count, "\t", body.size(), "\t",
                      absl::Hex(Crc32(0, body), absl::kZeroPad8), "\n", body);
}

std::string WithTrailer(const std::string& text, const std::string& count) {
  std::string head = absl::StrCat(text, "end ", count, " 0 ");
  return absl::StrCat(head, absl::Hex(Crc32(0, head), absl::kZeroPad8), "\n");
}

// Regression: a section header's count was reserved before any checksum
// vouched for it (std::bad_alloc, an abort in the binary).
TEST(ManifestStore, AHugeSectionCountIsRefusedNotAllocated) {
  const std::string body = "f\t1\t2\t1a4\t0\t0\t-\t0\n";
  for (const char* count : {"1000000000000", "18446744073709551615"}) {
    const std::string text = WithTrailer(
        absl::StrCat("snaphaven-manifest 4\n", Section("ks/t", count, body)), count);
    EXPECT_FALSE(StoredManifest::Parse(text).ok()) << count;
  }
}

// The column parser: every value the writer can write reads back, and an
// entry line is refused for anything else in it.
TEST(ManifestStore, ReadsBackExtremeValuesAndRefusesMalformedColumns) {
  StoredManifest m;
  m.Put("ks/t/a", {INT64_MAX, INT64_MIN, 0, UINT64_MAX, UINT64_MAX, INT64_MIN, true, 0});
  m.Put("ks/t/b", {0, -1, 0xffffffff, 0, 0, INT64_MAX, true, 0xffffffff});
  absl::StatusOr<StoredManifest> parsed = StoredManifest::Parse(m.Serialize());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(All(*parsed), All(m));

  auto parses = [](const std::string& line) {
    return StoredManifest::Parse(WithTrailer(
                               absl::StrCat("snaphaven-manifest 4\n", Section("ks/t", "1", line)),
                               "1"))
        .ok();
  };
  EXPECT_TRUE(parses("f\t1\t-2\t1A4\t0\t0\t0000ABCD\t0\n"));
  for (const char* bad : {
           "f\t-1\t2\t1a4\t0\t0\t-\t0\n",                    // negative size
           "f\t+1\t2\t1a4\t0\t0\t-\t0\n",                    // a sign
           "f\t 1\t2\t1a4\t0\t0\t-\t0\n",                    // a space
           "f\t\t2\t1a4\t0\t0\t-\t0\n",                      // empty
           "f\t1\t9223372036854775808\t1a4\t0\t0\t-\t0\n",   // int64 overflow
           "f\t1\t2\t1a4\t18446744073709551616\t0\t-\t0\n",  // uint64 overflow
           "f\t1\t2\t0x1a4\t0\t0\t-\t0\n",                   // hex prefix
           "f\t1\t2\t100000000\t0\t0\t-\t0\n",               // mode over 32 bits
           "f\t1\t2\t1a4\t0\t0\tabcdef\t0\n",                // crc not 8 digits
           "f\t1\t2\t1a4\t0\t0\t-x\t0\n",                    // junk after '-'
           "f\t1\t2\t1a4\t0\t0\t-\t0\textra\n",             // a column too many
           "f\t1\t2\t1a4\t0\t0\t-\n",                         // a column short
           "f\t1\t2\t1a4\t0\t0\t-\t0",                        // no newline
           "x\ny\t1\t2\t1a4\t0\t0\t-\t0\n",                   // a raw newline in a name
           "\nf\t1\t2\t1a4\t0\t0\t-\t0\n",                    // an empty line first
       }) {
    EXPECT_FALSE(parses(bad)) << absl::CEscape(bad);
  }
}

// A section whose checksum holds but which does not parse: refused when
// read whole; when read lazily, its first use fails with a format error (no
// errno), which the cycle takes for a corrupt manifest and rebuilds.
TEST_F(LazyManifestTest, ASectionThatDoesNotParseIsACorruptManifest) {
  const std::string a = "f\t1\t2\t1a4\t0\t0\t-\t0\ng\t1\t2\t1a4\t0\t0\t-\t0\n";
  const std::string b = "h\t1\t2\t1a4\t0\t0\t-\t0\n";
  const std::string text = WithTrailer(
      absl::StrCat("snaphaven-manifest 4\n", Section("ks/a", "1", a), Section("ks/b", "2", b)),
      "3");
  EXPECT_FALSE(StoredManifest::Parse(text).ok());
  ASSERT_TRUE(fs_.WriteFileAtomically(path_, text).ok());
  StoredManifest m = LoadLazily();
  const absl::Status loaded = m.LoadBelow("ks/a");
  EXPECT_EQ(loaded.code(), absl::StatusCode::kInvalidArgument) << loaded;
  EXPECT_EQ(ErrnoOf(loaded), 0);
  EXPECT_TRUE(m.Serialize().empty()) << "never written back";
}

// ------------------------------------------------------------------- the log

class ManifestLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = testing::MakeTempDir("log") + "/manifest";
    manifest_ = Sample();
    ASSERT_TRUE(manifest_.Commit(fs_, path_).ok());  // no base yet: written whole
    base_ = ReadFile(path_);
  }
  std::string ReadFile(const std::string& path) {
    absl::StatusOr<std::string> text = fs_.ReadFile(path);
    return text.ok() ? *text : "";
  }
  void WriteFile(const std::string& path, const std::string& text) {
    ASSERT_TRUE(fs_.WriteFileAtomically(path, text).ok());
  }
  StoredManifest Load(StoredManifest::Loading loading = StoredManifest::Loading::kEager) {
    absl::StatusOr<StoredManifest> loaded = StoredManifest::Load(fs_, path_, loading);
    EXPECT_TRUE(loaded.ok()) << loaded.status();
    return loaded.ok() ? *std::move(loaded) : StoredManifest();
  }

  FileSystem& fs_ = *DefaultFileSystem();
  std::string path_, base_;
  StoredManifest manifest_;
};

// A commit writes what changed, not the manifest: the base stays as it was
// and one record goes to the log, which a load replays.
TEST_F(ManifestLogTest, ACommitAppendsWhatChangedAndALoadReplaysIt) {
  EXPECT_EQ(manifest_.log_bytes(), 0u);
  manifest_.Put("ks/t/snapshots/s2/nb-9-big-Data.db", {42, 9, 0644, 2049, 99});
  manifest_.Erase("ks/t/nb-3-big-Data.db");
  manifest_.Put("ks/t/snapshots/s1/nb-1-big-Data.db", {100, 1700000000123456789, 0644, 2049, 77});
  EXPECT_EQ(manifest_.pending_changes(), 2u) << "an unchanged Put is no change";
  ASSERT_TRUE(manifest_.Commit(fs_, path_).ok());
  EXPECT_EQ(ReadFile(path_), base_) << "the base was rewritten";
  const std::string log = ReadFile(StoredManifest::LogPath(path_));
  EXPECT_TRUE(absl::StartsWith(log, "snaphaven-manifest-log 1 ")) << log;
  EXPECT_LT(log.size(), 200u);
  EXPECT_EQ(manifest_.pending_changes(), 0u);
  // Nothing changed: nothing written.
  ASSERT_TRUE(manifest_.Commit(fs_, path_).ok());
  EXPECT_EQ(ReadFile(StoredManifest::LogPath(path_)), log);

  for (StoredManifest::Loading loading :
       {StoredManifest::Loading::kEager, StoredManifest::Loading::kLazy}) {
    StoredManifest loaded = Load(loading);
    EXPECT_EQ(All(loaded), All(manifest_));
    EXPECT_EQ(loaded.UniqueBytes(), manifest_.UniqueBytes());
  }
}

// A crash while a record is appended leaves it cut short (or its bytes not
// all written): ignored, and the next commit compacts rather than append
// after it. Every cut of the last record is tried.
TEST_F(ManifestLogTest, ATornLastRecordIsIgnoredAndTheNextCommitCompacts) {
  manifest_.Put("ks/t/snapshots/s2/a", {1, 1, 0644, 1, 1});
  ASSERT_TRUE(manifest_.Commit(fs_, path_).ok());
  const Manifest::Map first = All(manifest_);
  const std::string one = ReadFile(StoredManifest::LogPath(path_));
  manifest_.Put("ks/t/snapshots/s2/b", {2, 2, 0644, 1, 2});
  manifest_.Erase("ks/t/snapshots/s2/a");
  ASSERT_TRUE(manifest_.Commit(fs_, path_).ok());
  const std::string two = ReadFile(StoredManifest::LogPath(path_));
  ASSERT_GT(two.size(), one.size());
  for (size_t cut = one.size() + 1; cut < two.size(); ++cut) {
    SCOPED_TRACE(cut);
    WriteFile(StoredManifest::LogPath(path_), two.substr(0, cut));
    StoredManifest loaded = Load();
    EXPECT_EQ(All(loaded), first);
  }
  // The same length with the last bytes never written (zeros).
  std::string zeroed = two;
  std::fill(zeroed.begin() + one.size() + 20, zeroed.end(), '\0');
  WriteFile(StoredManifest::LogPath(path_), zeroed);
  StoredManifest loaded = Load();
  EXPECT_EQ(All(loaded), first);
  loaded.Put("ks/t/snapshots/s2/c", {3, 3, 0644, 1, 3});
  ASSERT_TRUE(loaded.Commit(fs_, path_).ok());
  EXPECT_NE(ReadFile(path_), base_) << "compacted";
  EXPECT_FALSE(fs_.Stat(StoredManifest::LogPath(path_)).ok()) << "the log went into the base";
  EXPECT_EQ(All(Load()), All(loaded));
}

// A bad record with more after it is not a crash's doing: the manifest is
// corrupt (rebuilt from the destination by the caller), never half-read.
TEST_F(ManifestLogTest, ABadRecordBeforeTheLastIsCorrupt) {
  for (const char* name : {"ks/t/snapshots/s2/a", "ks/t/snapshots/s2/b"}) {
    manifest_.Put(name, {1, 1, 0644, 1, 1});
    ASSERT_TRUE(manifest_.Commit(fs_, path_).ok());
  }
  std::string log = ReadFile(StoredManifest::LogPath(path_));
  const size_t first_body = log.find("put\t");
  log[first_body + 5] ^= 1;
  WriteFile(StoredManifest::LogPath(path_), log);
  absl::StatusOr<StoredManifest> loaded = StoredManifest::Load(fs_, path_);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrnoOf(loaded.status()), 0) << "corrupt, not an I/O error";
}

// A compaction killed after the new base was in place and before the log
// was removed: the log names the old base and is ignored (its records are
// in the new one); the next commit removes it.
TEST_F(ManifestLogTest, ALogOfAnotherBaseIsIgnored) {
  manifest_.Put("ks/t/snapshots/s2/a", {1, 1, 0644, 1, 1});
  ASSERT_TRUE(manifest_.Commit(fs_, path_).ok());
  const std::string log = ReadFile(StoredManifest::LogPath(path_));
  manifest_.Erase("ks/t/snapshots/s2/a");
  // A compaction writes the new base (the same entries as the first one,
  // yet a base of its own) and removes the log: put the log back, as a
  // crash between the two leaves it.
  absl::StatusOr<StoredManifest> compacting = StoredManifest::Parse(manifest_.Serialize());
  ASSERT_TRUE(compacting.ok());
  ASSERT_TRUE(compacting->Commit(fs_, path_).ok());
  ASSERT_EQ(ReadFile(StoredManifest::LogPath(path_)), "");
  WriteFile(StoredManifest::LogPath(path_), log);
  StoredManifest loaded = Load();
  EXPECT_EQ(loaded.Find("ks/t/snapshots/s2/a"), nullptr) << "an old record replayed";
  loaded.Put("ks/t/snapshots/s2/b", {2, 2, 0644, 1, 2});
  ASSERT_TRUE(loaded.Commit(fs_, path_).ok());
  EXPECT_FALSE(fs_.Stat(StoredManifest::LogPath(path_)).ok());
  EXPECT_EQ(All(Load()), All(loaded));
}

// Bytes written per change stay constant however big the manifest is: the
// log is compacted once it outgrows a quarter of the base.
TEST_F(ManifestLogTest, TheLogIsCompactedOnceItOutgrowsAShareOfTheBase) {
  StoredManifest big;
  for (int i = 0; i < 20000; ++i) {
    big.Put(absl::StrCat("ks/t/snapshots/s", i % 50, "/nb-", i, "-big-Data.db"),
            {i, i, 0644, 1, static_cast<uint64_t>(i + 1)});
  }
  ASSERT_TRUE(big.Commit(fs_, path_).ok());
  const uint64_t base_bytes = ReadFile(path_).size();
  ASSERT_GT(base_bytes, 500000u);
  int compactions = 0;
  uint64_t written = 0;
  for (int round = 0; round < 4000; ++round) {
    big.Put(absl::StrCat("ks/t/snapshots/new/nb-", round, "-big-Data.db"),
            {round, round, 0644, 2, static_cast<uint64_t>(round + 1)});
    const uint64_t before = big.log_bytes();
    ASSERT_TRUE(big.Commit(fs_, path_).ok());
    if (big.log_bytes() < before) {
      ++compactions;
      written += ReadFile(path_).size();
    } else {
      written += big.log_bytes() - before;
      EXPECT_LT(big.log_bytes() - before, 200u) << "one record per change";
    }
  }
  EXPECT_GE(compactions, 1);
  EXPECT_LE(compactions, 3);
  // Amortised: a few hundred bytes per change, not the manifest's size.
  EXPECT_LT(written / 4000, 3000u);
  EXPECT_EQ(All(Load()), All(big));
}

// An older base is rewritten in the current format at the first commit,
// even with nothing changed.
TEST_F(ManifestLogTest, AnOlderBaseIsRewrittenAtTheFirstCommit) {
  std::string body = "snaphaven-manifest 1\nks/t/snapshots/s/f\t1\t2\t1a4\t0\t0\n";
  WriteFile(path_, absl::StrCat(body, "end 1 ", absl::Hex(Crc32(0, body), absl::kZeroPad8), "\n"));
  StoredManifest loaded = Load();
  ASSERT_EQ(loaded.format_version(), 1);
  ASSERT_TRUE(loaded.Commit(fs_, path_).ok());
  EXPECT_TRUE(absl::StartsWith(ReadFile(path_), "snaphaven-manifest 5\nepoch "));
}

// ------------------------------------------------------- letting tables go

// A table of many entries in two tables, committed whole: the base.
StoredManifest TwoTables() {
  StoredManifest m;
  for (int i = 0; i < 50; ++i) {
    const uint64_t ino = 1000 + i;
    m.Put(absl::StrCat("ks/a/nb-", i, "-big-Data.db"), {i, i, 0644, 7, ino});
    m.Put(absl::StrCat("ks/a/snapshots/s1/nb-", i, "-big-Data.db"), {i, i, 0644, 7, ino});
    m.Put(absl::StrCat("ks/b/nb-", i, "-big-Data.db"), {2 * i, i, 0644, 7, 5000u + i});
  }
  return m;
}

class ManifestReleaseTest : public ManifestLogTest {
 protected:
  void SetUp() override {
    path_ = testing::MakeTempDir("release") + "/manifest";
    expected_ = TwoTables();
    ASSERT_TRUE(expected_.Commit(fs_, path_).ok());
    manifest_ = Load(StoredManifest::Loading::kLazy);
  }
  // Makes the same change to the manifest under test and to the expected one.
  void Put(const std::string& path, const ManifestEntry& entry) {
    manifest_.Put(path, entry);
    expected_.Put(path, entry);
  }
  void Erase(const std::string& path) {
    manifest_.Erase(path);
    expected_.Erase(path);
  }
  size_t LoadedBelow(absl::string_view scope) {
    size_t n = 0;
    for (const auto& [path, entry] : manifest_.loaded_entries()) {
      n += absl::StartsWith(path, absl::StrCat(scope, "/"));
    }
    return n;
  }
  StoredManifest expected_;
};

// A streaming cycle lets each table go once committed: the entries leave
// memory, and come back (base section plus the log records since) when asked.
TEST_F(ManifestReleaseTest, AReleasedTableLeavesMemoryAndReadsBackWithItsChanges) {
  Put("ks/a/nb-100-big-Data.db", {100, 100, 0644, 7, 9100});
  Put("ks/a/nb-3-big-Data.db", {33, 33, 0644, 7, 9003});
  Erase("ks/a/snapshots/s1/nb-4-big-Data.db");
  Put("ks/a/snapshots/s2/nb-1-big-Data.db", {1, 1, 0644, 7, 1001});  // a new directory
  EXPECT_GT(LoadedBelow("ks/a"), 0u);
  manifest_.Release("ks/a");
  EXPECT_GT(LoadedBelow("ks/a"), 0u) << "let go of before its changes were committed";
  ASSERT_TRUE(manifest_.Commit(fs_, path_).ok());
  EXPECT_GT(manifest_.log_bytes(), 0u) << "appended, not compacted";
  manifest_.Release("ks/a");
  EXPECT_EQ(LoadedBelow("ks/a"), 0u);
  EXPECT_EQ(manifest_.size(), expected_.size());

  ASSERT_TRUE(manifest_.LoadBelow("ks/a").ok());
  const ManifestEntry* changed = manifest_.Find("ks/a/nb-3-big-Data.db");
  ASSERT_NE(changed, nullptr);
  EXPECT_EQ(changed->size, 33);
  EXPECT_EQ(manifest_.Find("ks/a/snapshots/s1/nb-4-big-Data.db"), nullptr);
  EXPECT_NE(manifest_.FindBySource(SourceIdentity{7, 1001, 1, 1}, "ks/a"), nullptr);
  EXPECT_EQ(All(manifest_), All(expected_));
  EXPECT_EQ(manifest_.UniqueBytes(), expected_.UniqueBytes());
}

// Released again and again, a table's record list grows; a compaction
// writes it whole from base and records, and a fresh load agrees.
TEST_F(ManifestReleaseTest, ACompactionWritesReleasedTablesWhole) {
  for (int round = 0; round < 3; ++round) {
    Put(absl::StrCat("ks/a/nb-", 200 + round, "-big-Data.db"), {round, round, 0644, 7, 7000u + round});
    Put(absl::StrCat("ks/b/nb-", 200 + round, "-big-Data.db"), {round, round, 0644, 7, 8000u + round});
    ASSERT_TRUE(manifest_.Commit(fs_, path_).ok());
    manifest_.Release("ks/a");
    manifest_.Release("ks/b");
    EXPECT_EQ(manifest_.loaded_entries().size(), 0u);
  }
  // Every entry of ks/b erased: its directory is left out of the base.
  for (int i = 0; i < 50; ++i) Erase(absl::StrCat("ks/b/nb-", i, "-big-Data.db"));
  for (int round = 0; round < 3; ++round) Erase(absl::StrCat("ks/b/nb-", 200 + round, "-big-Data.db"));
  ASSERT_TRUE(manifest_.Commit(fs_, path_).ok());
  manifest_.Release("ks/b");
  const int64_t unique = manifest_.UniqueBytes();
  EXPECT_EQ(unique, expected_.UniqueBytes());
  EXPECT_EQ(manifest_.loaded_entries().size(), 0u) << "counting read tables in for good";
  ASSERT_TRUE(manifest_.CommitWhole(fs_, path_).ok());
  absl::StatusOr<StoredManifest> base = StoredManifest::Parse(ReadFile(path_));
  ASSERT_TRUE(base.ok()) << base.status();
  EXPECT_EQ(All(*base), All(expected_)) << "the base is not what was put";
  EXPECT_EQ(base->UniqueBytes(), expected_.UniqueBytes());
  // Repositioned in the new base: still released, still readable.
  manifest_.Release("");
  EXPECT_EQ(manifest_.loaded_entries().size(), 0u);
  EXPECT_EQ(All(manifest_), All(expected_));
  StoredManifest reloaded = Load(StoredManifest::Loading::kLazy);
  EXPECT_EQ(All(reloaded), All(expected_));
}

// A load replays a log without reading in what it changed: memory follows
// what the cycle asks for, not the size of the log.
TEST_F(ManifestReleaseTest, ALazyLoadOnlyNotesWhatTheLogChanged) {
  for (int i = 0; i < 50; ++i) Put(absl::StrCat("ks/b/nb-", i, "-big-Index.db"), {i, i, 0644, 7, 6000u + i});
  Erase("ks/a/nb-7-big-Data.db");
  ASSERT_TRUE(manifest_.Commit(fs_, path_).ok());
  StoredManifest loaded = Load(StoredManifest::Loading::kLazy);
  EXPECT_EQ(loaded.loaded_entries().size(), 0u);
  EXPECT_EQ(loaded.UniqueBytes(), expected_.UniqueBytes());
  EXPECT_EQ(loaded.loaded_entries().size(), 0u);
  ASSERT_TRUE(loaded.LoadBelow("ks/b").ok());
  ASSERT_TRUE(loaded.LoadBelow("ks/a").ok());
  const ManifestEntry* index = loaded.Find("ks/b/nb-49-big-Index.db");
  ASSERT_NE(index, nullptr);
  EXPECT_EQ(index->size, 49);
  EXPECT_EQ(loaded.Find("ks/a/nb-7-big-Data.db"), nullptr);
  EXPECT_EQ(All(loaded), All(expected_));
  // And a load that reads it all at once agrees.
  EXPECT_EQ(All(Load(StoredManifest::Loading::kEager)), All(expected_));
}

// A manifest built in memory (rebuilt from the destination, or a first
// copy's) knows its unique bytes once written whole: a later compaction
// reads in one table at a time to count them, never all at once.
TEST_F(ManifestReleaseTest, ACompactionOfAManifestBuiltInMemoryReadsInOneTableAtATime) {
  StoredManifest built = TwoTables();
  ASSERT_TRUE(built.CommitWhole(fs_, path_).ok());
  built.Release("");
  EXPECT_EQ(built.loaded_entries().size(), 0u);
  built.ResetPeakLoadedEntries();
  built.Put("ks/b/nb-99-big-Data.db", {9, 9, 0644, 7, 9999});
  ASSERT_TRUE(built.Commit(fs_, path_).ok());
  built.Release("ks/b");
  ASSERT_TRUE(built.CommitWhole(fs_, path_).ok());
  EXPECT_LE(built.peak_loaded_entries(), 51u) << "more than the table changed was read in";
  expected_.Put("ks/b/nb-99-big-Data.db", {9, 9, 0644, 7, 9999});
  EXPECT_EQ(Load(StoredManifest::Loading::kLazy).UniqueBytes(), expected_.UniqueBytes());
}

// ------------------------------------------- manifests older binaries wrote

// (Runfiles are symbolic links, which FileSystem does not follow.)
std::string ReadTestdata(const std::string& name) {
  std::ifstream in("testdata/destination_manifest/" + name, std::ios::binary);
  EXPECT_TRUE(in.good()) << name;
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Every manifest of testdata/destination_manifest (each format version,
// with and without its log, a log of another base, a torn last record)
// loads, eagerly and lazily alike, to what it holds; the first commit
// appends to a current base's log and compacts anything else; and what
// was committed loads back.
TEST(ManifestStore, LoadsAndCommitsEveryManifestInTestdata) {
  struct Case {
    const char* file;
    size_t entries;
    int version;
    bool appends;  // the first commit appends to the log, not compacts
  };
  FileSystem& fs = *DefaultFileSystem();
  for (const Case& c : std::vector<Case>{{"v1.txt", 2, 1, false},
                                         {"v2.txt", 2, 2, false},
                                         {"v3.txt", 2, 3, false},
                                         {"v3_with_log.txt", 3, 3, false},
                                         {"v4.txt", 2, 4, false},
                                         {"v5.txt", 5, 5, true},
                                         {"v5_escaped.txt", 3, 5, true},
                                         {"v5_stale_log.txt", 2, 5, false},
                                         {"v5_torn_log.txt", 1, 5, false},
                                         {"v5_with_log.txt", 6, 5, true}}) {
    SCOPED_TRACE(c.file);
    const std::string text = ReadTestdata(c.file);
    const size_t log_at = text.find("\nsnaphaven-manifest-log ");
    const std::string base = text.substr(0, log_at == std::string::npos ? text.size() : log_at + 1);
    const std::string path = testing::MakeTempDir("testdata") + "/manifest";
    ASSERT_TRUE(fs.WriteFileAtomically(path, base).ok());
    if (log_at != std::string::npos) {
      const std::string log = text.substr(log_at + 1);
      ASSERT_TRUE(fs.WriteFileAtomically(path + ".log", log).ok());  // the name on disk
    }
    absl::StatusOr<StoredManifest> eager = StoredManifest::Load(fs, path);
    absl::StatusOr<StoredManifest> lazy =
        StoredManifest::Load(fs, path, StoredManifest::Loading::kLazy);
    ASSERT_TRUE(eager.ok()) << eager.status();
    ASSERT_TRUE(lazy.ok()) << lazy.status();
    EXPECT_EQ(All(*eager).size(), c.entries);
    EXPECT_EQ(eager->format_version(), c.version);
    // (Not the unique bytes: lazily they come from the trailer, which
    // these crafted files do not keep right.)
    ASSERT_TRUE(lazy->LoadAll().ok());
    EXPECT_EQ(All(*lazy), All(*eager));

    lazy->Put("ks/t/snapshots/new/nb-9-big-Data.db", {9, 9, 0644, 1, 99});
    ASSERT_TRUE(lazy->Commit(fs, path).ok());
    absl::StatusOr<std::string> now = fs.ReadFile(path);
    ASSERT_TRUE(now.ok());
    EXPECT_EQ(*now == base, c.appends) << "appended to the log, or compacted";
    EXPECT_EQ(lazy->log_bytes() > 0, c.appends);
    absl::StatusOr<StoredManifest> reloaded = StoredManifest::Load(fs, path);
    ASSERT_TRUE(reloaded.ok()) << reloaded.status();
    EXPECT_EQ(All(*reloaded), All(*lazy));
    EXPECT_EQ(All(*reloaded).size(), c.entries + 1);
  }
}

// The log lives where the destination names it (destination.h), beside
// the base: both a run and the store agree on it.
TEST(ManifestStore, KeepsItsLogWhereTheDestinationNamesIt) {
  const StateDir state("/dest");
  EXPECT_EQ(StoredManifest::LogPath(state.manifest), state.manifest_log);
  EXPECT_EQ(state.manifest_log, "/dest/.snaphaven/manifest.log");
}

// When the log cannot be opened again to read records back from, the
// tables read in stay in memory for good: counting a table's unique bytes
// reads its other sections in and must not let go of them (they would be
// lost from the manifest, and from every later commit).
TEST(ManifestStore, KeepsEntriesItCanNoLongerReadBack) {
  const std::string path = testing::MakeTempDir("unpositioned") + "/manifest";
  StoredManifest expected = TwoTables();
  ASSERT_TRUE(expected.CommitWhole(*DefaultFileSystem(), path).ok());
  testing::FaultInjectionFileSystem fs(DefaultFileSystem());
  absl::StatusOr<StoredManifest> loaded =
      StoredManifest::Load(fs, path, StoredManifest::Loading::kLazy);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  testing::FaultRule no_log_reads;
  no_log_reads.op = testing::FsOp::kOpenForRead;
  no_log_reads.path_pattern = "manifest\\.log$";
  no_log_reads.error = EIO;
  no_log_reads.times = -1;
  fs.AddRule(no_log_reads);
  for (const char* table : {"ks/b", "ks/a"}) {
    const std::string name = absl::StrCat(table, "/nb-999-big-Data.db");
    loaded->Put(name, {9, 9, 0644, 7, 9999});
    expected.Put(name, {9, 9, 0644, 7, 9999});
    ASSERT_TRUE(loaded->Commit(fs, path).ok());
    loaded->Release(table);
  }
  EXPECT_EQ(All(*loaded), All(expected));
  EXPECT_EQ(loaded->UniqueBytes(), expected.UniqueBytes());
  ASSERT_TRUE(loaded->CommitWhole(fs, path).ok());
  absl::StatusOr<StoredManifest> reloaded = StoredManifest::Load(*DefaultFileSystem(), path);
  ASSERT_TRUE(reloaded.ok()) << reloaded.status();
  EXPECT_EQ(All(*reloaded), All(expected));
}

}  // namespace
}  // namespace snaphaven
