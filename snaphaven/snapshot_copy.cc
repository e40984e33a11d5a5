#include "snaphaven/snapshot_copy.h"

#include <map>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/types/optional.h"
#include "snaphaven/cassandra_metadata.h"
#include "snaphaven/cassandra_path.h"
#include "snaphaven/sstable_components.h"

namespace snaphaven {
namespace {

// "a/b" of "a/b/c", "" of "c".
std::string DirOf(absl::string_view rel) {
  size_t slash = rel.rfind('/');
  return slash == absl::string_view::npos ? std::string() : std::string(rel.substr(0, slash));
}

// Whether the sstable `name` in `dir` (relative to the tag directory) has
// every component it needs.
bool Whole(const std::string& dir, const SSTableName& name,
           const std::function<bool(const std::string&)>& present) {
  for (const std::string& component : RequiredComponents(name, nullptr)) {
    const std::string file = absl::StrCat(name.prefix, "-", component);
    if (!present(dir.empty() ? file : absl::StrCat(dir, "/", file))) return false;
  }
  return true;
}

}  // namespace

bool IsCompleteSnapshotCopy(absl::string_view copy_dir, const std::string* manifest_json,
                            const std::vector<std::string>& files,
                            const std::function<bool(const std::string& rel)>& present) {
  if (manifest_json != nullptr) {
    absl::StatusOr<SnapshotManifest> parsed = ParseSnapshotManifest(*manifest_json);
    if (!parsed.ok() || parsed->ephemeral) return false;
    for (const std::string& listed : parsed->files) {
      if (!present(listed)) return false;
      absl::optional<SSTableName> name = ParseSSTablePath(absl::StrCat(copy_dir, "/", listed));
      if (name.has_value() && !Whole(DirOf(listed), *name, present)) return false;
    }
    return true;
  }
  // No manifest.json: only 2.0 (and older) took snapshots without one.
  std::map<std::string, SSTableName> sstables;  // by "<dir>/<prefix>"
  for (const std::string& rel : files) {
    absl::optional<SSTableName> name = ParseSSTablePath(absl::StrCat(copy_dir, "/", rel));
    if (!name.has_value()) continue;
    if (!WrittenBefore21(*name)) return false;
    sstables.emplace(absl::StrCat(DirOf(rel), "/", name->prefix), *name);
  }
  if (sstables.empty()) return false;
  for (const auto& [key, name] : sstables) {
    if (!Whole(key.substr(0, key.rfind('/')), name, present)) return false;
  }
  return true;
}

}  // namespace snaphaven
