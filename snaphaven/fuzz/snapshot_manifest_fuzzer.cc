// A snapshot's manifest.json (cassandra_metadata.h ParseSnapshotManifest):
// Cassandra writes it, so anyone who can write the data directory shapes it.

#include <cstdint>
#include <string>

#include "snaphaven/cassandra/cassandra_metadata.h"
#include "snaphaven/cassandra/cassandra_path.h"
#include "snaphaven/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace snaphaven;
  const absl::string_view text = fuzz::AsText(data, size);
  absl::StatusOr<SnapshotManifest> manifest = ParseSnapshotManifest(text);
  if (!manifest.ok()) {
    FUZZ_CHECK(manifest.status().code() == absl::StatusCode::kInvalidArgument,
               manifest.status().ToString());
    return 0;
  }
  // Every listed path stays inside the snapshot directory.
  for (const std::string& file : manifest->files) FUZZ_CHECK(IsSafeRelativePath(file), file);
  if (manifest->created_at.has_value()) (void)absl::FormatTime(*manifest->created_at);
  return 0;
}
