#include "snaphaven/cassandra/keyspace_dirs.h"

#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "snaphaven/cassandra/cassandra_path.h"

namespace snaphaven {

KeyspaceDirName ClassifyKeyspaceDirName(absl::string_view name) {
  if (name.empty()) return KeyspaceDirName::kNotAName;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_') {
      return KeyspaceDirName::kNotAName;
    }
  }
  for (absl::string_view own : {"commitlog", "saved_caches", "hints", "cdc_raw"}) {
    if (name == own) return KeyspaceDirName::kCassandraDir;
  }
  return KeyspaceDirName::kKeyspace;
}

absl::StatusOr<KeyspaceDirs> FindKeyspaceDirs(FileSystem& fs,
                                              const std::vector<std::string>& data_roots) {
  std::set<std::string> keyspaces;
  KeyspaceDirs found;
  for (const std::string& root : data_roots) {
    absl::StatusOr<std::vector<std::string>> names = fs.ListDir(root);
    if (!names.ok()) return names.status();
    for (const std::string& name : *names) {
      absl::StatusOr<FileStat> st = fs.Stat(JoinPath(root, name));
      if (!st.ok() || (st->type != FileType::kDirectory && st->type != FileType::kSymlink)) {
        continue;  // files (and what vanished) are no keyspaces
      }
      switch (ClassifyKeyspaceDirName(name)) {
        case KeyspaceDirName::kKeyspace:
          keyspaces.insert(name);
          break;
        case KeyspaceDirName::kNotAName:
          found.notes.push_back(absl::StrCat("not a keyspace (not a Cassandra keyspace name): ",
                                             JoinPath(root, name)));
          break;
        case KeyspaceDirName::kCassandraDir:
          found.notes.push_back(absl::StrCat(
              "not a keyspace (Cassandra's own directory; name it to copy a keyspace so named): ",
              JoinPath(root, name)));
          break;
      }
    }
  }
  found.keyspaces.assign(keyspaces.begin(), keyspaces.end());
  return found;
}

std::vector<std::string> KeyspacesAtDestination(const Manifest& manifest) {
  std::set<std::string> keyspaces;
  for (const std::string& dir : manifest.Directories()) {
    std::string keyspace = dir.substr(0, dir.find('/'));
    // The destination walker's rule: not the commitlog archive, nor what a
    // manifest rebuilt by an older snaphaven may hold (.snapshot/, lost+found/).
    if (!keyspace.empty() &&
        ClassifyDestinationTopLevel(keyspace) == DestinationTopLevel::kKeyspace) {
      keyspaces.insert(std::move(keyspace));
    }
  }
  return std::vector<std::string>(keyspaces.begin(), keyspaces.end());
}

}  // namespace snaphaven
