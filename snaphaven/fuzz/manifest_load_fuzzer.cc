// The destination manifest as a run reads it (manifest_store.h StoredManifest::Load):
// the base file and its log (the input holds both: the log from its line
// "snaphaven-manifest-log ..."), through a file, read eagerly and lazily.
// Both must agree; what loads must commit (as a log record and compacted)
// and load back the same.

#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "snaphaven/storage/file_system.h"
#include "snaphaven/fuzz/fuzz_util.h"
#include "snaphaven/state/manifest_store.h"

namespace snaphaven {
namespace {

void Check(absl::string_view input) {
  FileSystem& fs = *DefaultFileSystem();
  const std::string dir = fuzz::ScratchDir() + "/load";
  fuzz::RemoveTree(dir);
  FUZZ_CHECK(fs.MakeDir(dir).ok(), dir);
  const std::string path = dir + "/manifest";
  std::string base, log;
  fuzz::SplitManifestAndLog(input, &base, &log);
  fuzz::WriteFileOrDie(path, base);
  if (!log.empty()) fuzz::WriteFileOrDie(StoredManifest::LogPath(path), log);

  absl::StatusOr<StoredManifest> eager =
      StoredManifest::Load(fs, path, StoredManifest::Loading::kEager);
  absl::StatusOr<StoredManifest> lazy =
      StoredManifest::Load(fs, path, StoredManifest::Loading::kLazy);
  // A lazy load finds a bad section only when it reads it in.
  const absl::Status lazy_loaded = lazy.ok() ? lazy->LoadAll() : lazy.status();
  FUZZ_CHECK(eager.ok() == lazy_loaded.ok(),
             absl::StrCat("eager: ", eager.status().ToString(), "; lazy: ",
                          lazy_loaded.ToString()));
  if (!eager.ok()) {
    FUZZ_CHECK(eager.status().code() == absl::StatusCode::kInvalidArgument,
               eager.status().ToString());
    return;
  }
  FUZZ_CHECK(lazy->entries() == eager->entries(), "lazy and eager loads differ");
  FUZZ_CHECK(lazy->UniqueBytes() == eager->UniqueBytes(), "unique bytes differ");
  if (log.empty()) {
    absl::StatusOr<StoredManifest> parsed = StoredManifest::Parse(base);
    FUZZ_CHECK(parsed.ok() && parsed->entries() == eager->entries(), "Parse and Load differ");
  }
  // A change committed (a log record, or a compaction for an older base),
  // then loaded back; then compacted and loaded back.
  ManifestEntry entry;
  entry.size = 11;
  entry.mtime_ns = 5;
  entry.source_ino = 9;
  lazy->Put("ks/t-1/snapshots/s/nb-1-big-Data.db", entry);
  eager->Put("ks/t-1/snapshots/s/nb-1-big-Data.db", entry);
  absl::Status committed = lazy->Commit(fs, path);
  FUZZ_CHECK(committed.ok(), committed.ToString());
  absl::StatusOr<StoredManifest> reloaded =
      StoredManifest::Load(fs, path, StoredManifest::Loading::kEager);
  FUZZ_CHECK(reloaded.ok(), reloaded.status().ToString());
  FUZZ_CHECK(reloaded->entries() == eager->entries(), "a committed change did not load back");
  committed = reloaded->CommitWhole(fs, path);
  FUZZ_CHECK(committed.ok(), committed.ToString());
  absl::StatusOr<StoredManifest> compacted =
      StoredManifest::Load(fs, path, StoredManifest::Loading::kLazy);
  FUZZ_CHECK(compacted.ok(), compacted.status().ToString());
  const absl::Status all = compacted->LoadAll();
  FUZZ_CHECK(all.ok(), all.ToString());
  FUZZ_CHECK(compacted->entries() == eager->entries(), "a compacted manifest did not load back");
}

}  // namespace
}  // namespace snaphaven

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  snaphaven::fuzz::CheckAsIsAndFixed(data, size, snaphaven::fuzz::FixManifest, snaphaven::Check);
  return 0;
}
