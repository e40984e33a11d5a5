#include "snaphaven/state/snapshot_copy.h"

#include <map>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/types/optional.h"
#include "snaphaven/cassandra/cassandra_metadata.h"
#include "snaphaven/cassandra/cassandra_path.h"
#include "snaphaven/cassandra/sstable_components.h"

namespace snaphaven {
namespace {

// "a/b" of "a/b/c", "" of "c".
std::string DirOf(absl::string_view rel) {
  size_t slash = rel.rfind('/');
  return slash == absl::string_view::npos ? std::string() : std::string(rel.substr(0, slash));
}

}  // namespace

std::string SnapshotIncompleteness(
    absl::string_view copy_dir, const std::string* manifest_json,
    const std::vector<std::string>& files,
    const std::function<bool(const std::string& rel)>& present,
    const std::function<std::string(const std::string& dir, const SSTableName& name)>&
        missing_component) {
  if (manifest_json != nullptr) {
    absl::StatusOr<SnapshotManifest> parsed = ParseSnapshotManifest(*manifest_json);
    if (!parsed.ok()) return "manifest.json does not parse (still being written?)";
    if (parsed->ephemeral) return "ephemeral snapshot";
    for (const std::string& listed : parsed->files) {
      if (!present(listed)) return absl::StrCat("manifest.json lists ", listed, ", which is missing");
      absl::optional<SSTableName> name = ParseSSTablePath(absl::StrCat(copy_dir, "/", listed));
      if (!name.has_value()) continue;
      std::string reason = missing_component(DirOf(listed), *name);
      if (!reason.empty()) return reason;
    }
    return "";
  }
  // No manifest.json: only 2.0 (and older) took snapshots without one.
  std::map<std::string, SSTableName> sstables;  // by "<dir>/<prefix>"
  for (const std::string& rel : files) {
    absl::optional<SSTableName> name = ParseSSTablePath(absl::StrCat(copy_dir, "/", rel));
    if (!name.has_value()) continue;
    if (!WrittenBefore21(*name)) return "no manifest.json (still being written?)";
    sstables.emplace(absl::StrCat(DirOf(rel), "/", name->prefix), *name);
  }
  if (sstables.empty()) return "no manifest.json and no sstable";
  for (const auto& [key, name] : sstables) {
    std::string reason = missing_component(key.substr(0, key.rfind('/')), name);
    if (!reason.empty()) return reason;
  }
  return "";
}

bool IsCompleteSnapshotCopy(absl::string_view copy_dir, const std::string* manifest_json,
                            const std::vector<std::string>& files,
                            const std::function<bool(const std::string& rel)>& present) {
  auto missing = [&](const std::string& dir, const SSTableName& name) -> std::string {
    for (const std::string& component : RequiredComponents(name, nullptr)) {
      const std::string file = absl::StrCat(name.prefix, "-", component);
      if (!present(dir.empty() ? file : absl::StrCat(dir, "/", file))) return file;
    }
    return "";
  };
  return SnapshotIncompleteness(copy_dir, manifest_json, files, present, missing).empty();
}

}  // namespace snaphaven
