// The directory cache <dest>/.snaphaven/dircache (dir_cache.h): as read,
// and with its checksum made right so the lines behind it are fuzzed too.

#include <cstdint>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "snaphaven/storage/checksum.h"
#include "snaphaven/state/dir_cache.h"
#include "snaphaven/fuzz/fuzz_util.h"

namespace snaphaven {
namespace {

bool Same(const CachedDir& a, const CachedDir& b) {
  return a.dev == b.dev && a.ino == b.ino && a.mtime_ns == b.mtime_ns && a.files == b.files &&
         a.bytes == b.bytes && a.subdirs == b.subdirs;
}

void Check(absl::string_view text) {
  absl::StatusOr<DirCache> cache = DirCache::Parse(text);
  if (!cache.ok()) return;
  // Written and read back: the same directories.
  const std::string written = cache->Serialize();
  absl::StatusOr<DirCache> again = DirCache::Parse(written);
  FUZZ_CHECK(again.ok(), written);
  FUZZ_CHECK(again->dirs().size() == cache->dirs().size(), written);
  for (const auto& [path, dir] : cache->dirs()) {
    const CachedDir* found = again->Find(path);
    FUZZ_CHECK(found != nullptr && Same(*found, dir), path);
  }
  FUZZ_CHECK(again->Serialize() == written, written);
  // Forgetting a tree forgets everything below it, nothing else.
  if (!cache->empty()) {
    const std::string first = cache->dirs().begin()->first;
    const size_t before = cache->dirs().size();
    size_t below = 0;
    for (const auto& [path, dir] : cache->dirs()) {
      if (path == first || absl::StartsWith(path, absl::StrCat(first, "/"))) ++below;
    }
    cache->EraseTree(first);
    FUZZ_CHECK(cache->dirs().size() == before - below, first);
  }
}

}  // namespace
}  // namespace snaphaven

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace snaphaven;
  fuzz::CheckAsIsAndFixed(data, size, fuzz::FixDirCache, Check);
  const absl::string_view text = fuzz::AsText(data, size);
  // The CRC-32 every checksummed file here relies on (carry-less multiply
  // where the CPU has it): as zlib's, and combinable.
  FUZZ_CHECK(Crc32(0, text) == Crc32Portable(0, text), "accelerated CRC-32 differs");
  const absl::string_view a = text.substr(0, size / 2), b = text.substr(size / 2);
  FUZZ_CHECK(Crc32Combine(Crc32(0, a), Crc32(0, b), b.size()) == Crc32(0, text),
             "Crc32Combine differs");
  FUZZ_CHECK(Crc32(Crc32(0, a), b) == Crc32(0, text), "continued CRC-32 differs");
  return 0;
}
