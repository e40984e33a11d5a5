#include "snaphaven/cassandra_path.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace snaphaven {
namespace {

bool IsVersion(absl::string_view s) {
  return s.size() == 2 && absl::ascii_islower(s[0]) && absl::ascii_islower(s[1]);
}

// A generation or 4.1+ UUID-like id: an opaque token without '-'.
bool IsGeneration(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!absl::ascii_isalnum(c) && c != '_') return false;
  }
  return true;
}

}  // namespace

absl::optional<SSTableName> ParseSSTableName(absl::string_view file_name) {
  std::vector<absl::string_view> parts = absl::StrSplit(file_name, '-');
  if (parts.size() < 3) return absl::nullopt;
  SSTableName name;
  size_t i = 0;
  if (parts[0] == "tmp" || parts[0] == "tmplink") {
    name.temporary = true;
    i = 1;
  }
  // 3.0+ and 2.2: <ver>-<gen>-<format>-<Component>
  if (parts.size() - i >= 4 && IsVersion(parts[i]) && IsGeneration(parts[i + 1]) &&
      IsGeneration(parts[i + 2])) {
    name.version = std::string(parts[i]);
    size_t component_at = i + 3;
    // The component itself may contain '-' (rare): rejoin the rest.
    name.component = absl::StrJoin(parts.begin() + component_at, parts.end(), "-");
    name.prefix = absl::StrJoin(parts.begin(), parts.begin() + component_at, "-");
    return name;
  }
  // 2.1: <ks>-<table>-[tmp-|tmplink-]<ver>-<gen>-<Component>
  if (!name.temporary && parts.size() >= 5) {
    size_t v = 2;
    if (parts[2] == "tmp" || parts[2] == "tmplink") {
      name.temporary = true;
      v = 3;
    }
    if (parts.size() - v >= 3 && IsVersion(parts[v]) && IsGeneration(parts[v + 1])) {
      name.version = std::string(parts[v]);
      name.component = absl::StrJoin(parts.begin() + v + 2, parts.end(), "-");
      name.prefix = absl::StrJoin(parts.begin(), parts.begin() + v + 2, "-");
      return name;
    }
  }
  return absl::nullopt;
}

PathInfo ClassifyPath(absl::string_view relative_path) {
  PathInfo info;
  std::vector<absl::string_view> parts = absl::StrSplit(relative_path, '/');
  if (parts.size() < 3) return info;
  info.keyspace = std::string(parts[0]);
  info.table_dir = std::string(parts[1]);
  info.file_name = std::string(parts.back());
  if (parts[2] == "snapshots" && parts.size() >= 5) {
    info.kind = PathKind::kSnapshot;
    info.tag = std::string(parts[3]);
    if (parts.size() >= 6 && absl::StartsWith(parts[4], ".")) {
      info.index_dir = std::string(parts[4]);
    }
    return info;
  }
  if (parts[2] == "backups" && (parts.size() == 4 || parts.size() == 5)) {
    info.kind = PathKind::kBackup;
    if (parts.size() == 5) info.index_dir = std::string(parts[3]);
    return info;
  }
  if (parts.size() == 3) {
    info.kind = PathKind::kLive;
    return info;
  }
  if (parts.size() == 4 && absl::StartsWith(parts[2], ".")) {
    info.kind = PathKind::kLive;
    info.index_dir = std::string(parts[2]);
    return info;
  }
  info.kind = PathKind::kOther;
  return info;
}

std::string SSTableKey(absl::string_view relative_path) {
  size_t slash = relative_path.rfind('/');
  absl::string_view dir = slash == absl::string_view::npos ? "" : relative_path.substr(0, slash);
  absl::optional<SSTableName> name = ParseSSTableName(relative_path.substr(slash + 1));
  if (!name.has_value() || name->temporary) return "";
  return absl::StrCat(dir, "/", name->prefix);
}

absl::Status ValidateKeyspaceName(absl::string_view keyspace) {
  if (keyspace.empty()) {
    return absl::InvalidArgumentError("empty keyspace name");
  }
  if (absl::StrContains(keyspace, '/')) {
    return absl::InvalidArgumentError(
        absl::StrCat("keyspace '", keyspace, "' contains '/': give a name, not a path"));
  }
  if (keyspace == "." || keyspace == "..") {
    return absl::InvalidArgumentError(
        absl::StrCat("keyspace '", keyspace, "' is not a keyspace name"));
  }
  if (keyspace[0] == '.') {
    return absl::InvalidArgumentError(
        absl::StrCat("keyspace '", keyspace, "' starts with '.'"));
  }
  return absl::OkStatus();
}

bool IsSafeRelativePath(absl::string_view path) {
  if (path.empty() || path[0] == '/') return false;
  // Every component non-empty and neither "." nor "..": scanned in place,
  // since the manifest checks a million paths on every load.
  size_t start = 0;
  while (true) {
    size_t slash = path.find('/', start);
    absl::string_view part =
        path.substr(start, slash == absl::string_view::npos ? absl::string_view::npos : slash - start);
    if (part.empty() || part == "." || part == "..") return false;
    if (slash == absl::string_view::npos) return true;
    start = slash + 1;
  }
}

}  // namespace snaphaven
