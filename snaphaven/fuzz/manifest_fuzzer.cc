// The destination manifest's text (manifest_store.h StoredManifest::Parse), every
// version: as read, and with its counts and checksums made right so that
// the sections and entries behind them are fuzzed too. What parses must
// write back to text that parses to the same entries.

#include <cstdint>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "snaphaven/fuzz/fuzz_util.h"
#include "snaphaven/state/manifest_store.h"

namespace snaphaven {
namespace {

void Check(absl::string_view text) {
  absl::StatusOr<StoredManifest> manifest = StoredManifest::Parse(text);
  if (!manifest.ok()) {
    FUZZ_CHECK(manifest.status().code() == absl::StatusCode::kInvalidArgument,
               manifest.status().ToString());
    return;
  }
  FUZZ_CHECK(manifest->size() == manifest->entries().size(), "size");
  // Every path stays inside the destination, out of its state directory.
  for (const auto& [path, entry] : manifest->entries()) {
    FUZZ_CHECK(!path.empty() && path[0] != '/' && path != ".snaphaven" &&
                   !absl::StartsWith(path, ".snaphaven/"),
               path);
    const ManifestEntry* found = manifest->Find(path);
    FUZZ_CHECK(found != nullptr && *found == entry, path);
    if (entry.source().known()) {
      const std::string* by_source =
          manifest->FindBySource(entry.source(), Manifest::LinkScope(path));
      FUZZ_CHECK(by_source != nullptr, path);
      const ManifestEntry* linked = manifest->Find(*by_source);
      FUZZ_CHECK(linked != nullptr && linked->source() == entry.source(), *by_source);
    }
  }
  // Written (as the current version) and read back: the same entries, and
  // the same text when written again.
  const std::string written = manifest->Serialize();
  FUZZ_CHECK(!written.empty(), "Serialize failed");
  absl::StatusOr<StoredManifest> again = StoredManifest::Parse(written);
  FUZZ_CHECK(again.ok(), absl::StrCat(again.status().ToString(), "\n", written));
  FUZZ_CHECK(again->entries() == manifest->entries(), written);
  FUZZ_CHECK(again->UniqueBytes() == manifest->UniqueBytes(), written);
  FUZZ_CHECK(again->Serialize() == written, written);
  // A change, written and read back.
  ManifestEntry entry;
  entry.size = 7;
  entry.source_ino = 3;
  manifest->Put("ks/t/nb-9-big-Data.db", entry);
  // (A copy of the key: Erase uses its argument after erasing the entry, so a
  // reference into the map itself would dangle; every caller passes a copy.)
  if (!manifest->entries().empty()) manifest->Erase(std::string(manifest->entries().begin()->first));
  absl::StatusOr<StoredManifest> changed = StoredManifest::Parse(manifest->Serialize());
  FUZZ_CHECK(changed.ok(), changed.status().ToString());
  FUZZ_CHECK(changed->entries() == manifest->entries(), "a change did not read back");
}

}  // namespace
}  // namespace snaphaven

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  snaphaven::fuzz::CheckAsIsAndFixed(data, size, snaphaven::fuzz::FixManifest, snaphaven::Check);
  return 0;
}
