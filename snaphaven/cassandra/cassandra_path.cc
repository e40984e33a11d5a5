#include "snaphaven/cassandra/cassandra_path.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

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

// "[tmp-|tmplink-]<ver>-<gen>-<Component>", what follows "<ks>-<table>-" in
// a 1.2/2.0/2.1 name; `file_name` is the whole name, for the prefix.
bool ParseOldTail(absl::string_view file_name, absl::string_view tail, SSTableName& name) {
  bool temporary = absl::ConsumePrefix(&tail, "tmp-") || absl::ConsumePrefix(&tail, "tmplink-");
  size_t dash = tail.find('-');
  if (dash == absl::string_view::npos || !IsVersion(tail.substr(0, dash))) return false;
  absl::string_view version = tail.substr(0, dash);
  absl::string_view rest = tail.substr(dash + 1);
  dash = rest.find('-');
  if (dash == absl::string_view::npos || !IsGeneration(rest.substr(0, dash))) return false;
  absl::string_view component = rest.substr(dash + 1);
  if (component.empty()) return false;
  name.version = std::string(version);
  name.format = "big";
  name.component = std::string(component);
  name.temporary = temporary;
  name.prefix = std::string(file_name.substr(0, file_name.size() - component.size() - 1));
  return true;
}

// "[tmp-|tmplink-]<ver>-<gen>-<format>-<Component>" (2.2 to 5.0).
bool ParseNewName(absl::string_view file_name, SSTableName& name) {
  std::vector<absl::string_view> parts = absl::StrSplit(file_name, '-');
  size_t i = parts[0] == "tmp" || parts[0] == "tmplink" ? 1 : 0;
  // No component of any version holds a '-': exactly four parts remain.
  if (parts.size() - i != 4 || !IsVersion(parts[i]) || !IsGeneration(parts[i + 1]) ||
      !IsGeneration(parts[i + 2]) || parts[i + 3].empty()) {
    return false;
  }
  name.version = std::string(parts[i]);
  name.format = std::string(parts[i + 2]);
  name.component = std::string(parts[i + 3]);
  name.temporary = i == 1;
  name.prefix = std::string(file_name.substr(0, file_name.size() - name.component.size() - 1));
  return true;
}

}  // namespace

absl::optional<SSTableName> ParseSSTableName(absl::string_view file_name,
                                             absl::string_view keyspace,
                                             absl::string_view table) {
  SSTableName name;
  // The table directory's own names first: "<ks>-<table>[.<index>]-...".
  absl::string_view rest = file_name;
  if (!keyspace.empty() && !table.empty() && absl::ConsumePrefix(&rest, keyspace) &&
      absl::ConsumePrefix(&rest, "-") && absl::ConsumePrefix(&rest, table)) {
    if (absl::ConsumePrefix(&rest, ".")) {  // a 2.x secondary index: ".<index>"
      size_t dash = rest.find('-');
      if (dash != absl::string_view::npos && IsGeneration(rest.substr(0, dash))) {
        rest.remove_prefix(dash);
      }
    }
    if (absl::ConsumePrefix(&rest, "-") && ParseOldTail(file_name, rest, name)) return name;
  }
  if (ParseNewName(file_name, name)) return name;
  // A 2.x name whose directory was not given (or does not match it):
  // "<ks>-<table>[.<index>]-" are the first two tokens.
  size_t first = file_name.find('-');
  size_t second = first == absl::string_view::npos ? first : file_name.find('-', first + 1);
  if (second != absl::string_view::npos && first > 0 && second > first + 1 &&
      ParseOldTail(file_name, file_name.substr(second + 1), name)) {
    return name;
  }
  return absl::nullopt;
}

bool WrittenBefore21(const SSTableName& name) {
  return name.format != "bti" && name.version < "ka";
}

absl::string_view TableName(absl::string_view table_dir) {
  constexpr size_t kIdLength = 32;
  if (table_dir.size() <= kIdLength + 1 || table_dir[table_dir.size() - kIdLength - 1] != '-') {
    return table_dir;
  }
  absl::string_view id = table_dir.substr(table_dir.size() - kIdLength);
  for (char c : id) {
    if (!absl::ascii_isdigit(c) && !(c >= 'a' && c <= 'f')) return table_dir;
  }
  return table_dir.substr(0, table_dir.size() - kIdLength - 1);
}

absl::optional<SSTableName> ParseSSTablePath(absl::string_view relative_path) {
  size_t slash = relative_path.rfind('/');
  absl::string_view file_name =
      slash == absl::string_view::npos ? relative_path : relative_path.substr(slash + 1);
  // <ks>/<table dir>/...: the directories name the keyspace and table.
  size_t first = relative_path.find('/');
  size_t second = first == absl::string_view::npos ? first : relative_path.find('/', first + 1);
  if (second == absl::string_view::npos || second > slash) return ParseSSTableName(file_name);
  return ParseSSTableName(file_name, relative_path.substr(0, first),
                          TableName(relative_path.substr(first + 1, second - first - 1)));
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
  absl::optional<SSTableName> name = ParseSSTablePath(relative_path);
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
