// What the fuzz targets share: a check that crashes (so libFuzzer keeps the
// input), a scratch directory, and the checksum fix-ups that let mutated
// inputs past the CRCs guarding the destination's own files, so that the
// parsers behind them are fuzzed too, not only the checksum test.

#ifndef SNAPHAVEN_FUZZ_FUZZ_UTIL_H_
#define SNAPHAVEN_FUZZ_FUZZ_UTIL_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

// An invariant of the code under test: on failure prints what failed (and
// `detail`) and aborts, which libFuzzer reports as a crash.
#define FUZZ_CHECK(condition, detail)                                                    \
  do {                                                                                   \
    if (!(condition)) ::snaphaven::fuzz::CheckFailed(__FILE__, __LINE__, #condition, detail); \
  } while (false)

namespace snaphaven::fuzz {

[[noreturn]] void CheckFailed(const char* file, int line, const char* condition,
                              absl::string_view detail);

// The input as text.
inline absl::string_view AsText(const uint8_t* data, size_t size) {
  return absl::string_view(reinterpret_cast<const char*>(data), size);
}

// Runs `check` on the input as it is, then on `fix`(input) when that
// differs: the parser's own checks, then what lies behind them.
void CheckAsIsAndFixed(const uint8_t* data, size_t size,
                       std::string (*fix)(absl::string_view),
                       void (*check)(absl::string_view));

// A directory of this process, made on first use ($TEST_TMPDIR, else
// /dev/shm, else /tmp) and removed at exit.
const std::string& ScratchDir();

// Removes `path` and everything below it (no symlink is followed).
void RemoveTree(const std::string& path);

// Writes `text` to `path` (replacing it); aborts on failure.
void WriteFileOrDie(const std::string& path, absl::string_view text);

// A destination manifest (manifest_store.h), its log after it when present
// (starting at a line "snaphaven-manifest-log ..."), with every length,
// count and CRC-32 recomputed from the text: each section header's count
// (its lines), byte length and CRC; the trailer's count and CRC (a trailer
// is appended when there is none); the log header's base checksum and each
// record's length and CRC. Lines are otherwise left as they are.
std::string FixManifest(absl::string_view text);

// Splits a manifest input into the base and its log ("" when none).
void SplitManifestAndLog(absl::string_view text, std::string* base, std::string* log);

// A directory cache (dir_cache.h) with its trailer's count and CRC
// recomputed (appended when missing).
std::string FixDirCache(absl::string_view text);

}  // namespace snaphaven::fuzz

#endif  // SNAPHAVEN_FUZZ_FUZZ_UTIL_H_
