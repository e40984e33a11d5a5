#include "snaphaven/cassandra/cassandra_metadata.h"

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "snaphaven/cassandra/cassandra_path.h"

namespace snaphaven {

absl::StatusOr<SnapshotManifest> ParseSnapshotManifest(absl::string_view text) {
  // No exceptions: a half-written manifest parses as "discarded".
  nlohmann::json json = nlohmann::json::parse(text.begin(), text.end(), nullptr,
                                              /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return absl::InvalidArgumentError("manifest.json is not a complete JSON object");
  }
  auto files = json.find("files");
  if (files == json.end() || !files->is_array()) {
    return absl::InvalidArgumentError("manifest.json has no \"files\" array");
  }
  SnapshotManifest manifest;
  for (const nlohmann::json& file : *files) {
    if (!file.is_string()) {
      return absl::InvalidArgumentError("manifest.json lists a file name that is not a string");
    }
    std::string name = file.get<std::string>();
    if (!IsSafeRelativePath(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("manifest.json lists a path outside the snapshot: ", name));
    }
    manifest.files.push_back(std::move(name));
  }
  auto ephemeral = json.find("ephemeral");
  if (ephemeral != json.end() && ephemeral->is_boolean()) {
    manifest.ephemeral = ephemeral->get<bool>();
  }
  auto created = json.find("created_at");
  if (created != json.end()) {
    absl::Time t;
    std::string error;
    if (created->is_string() &&
        absl::ParseTime(absl::RFC3339_full, created->get<std::string>(), &t, &error)) {
      manifest.created_at = t;
    } else if (created->is_number_integer()) {
      manifest.created_at = absl::FromUnixMillis(created->get<int64_t>());
    }
  }
  return manifest;
}

std::vector<std::string> ParseToc(absl::string_view text) {
  std::vector<std::string> components;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (!line.empty()) components.emplace_back(line);
  }
  return components;
}

bool IsTxnLogName(absl::string_view file_name) {
  return absl::StrContains(file_name, "_txn_") && absl::EndsWith(file_name, ".log");
}

TxnLog ParseTxnLog(absl::string_view text) {
  TxnLog log;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    line = absl::StripTrailingAsciiWhitespace(line);
    size_t colon = line.find(":[");
    size_t close = line.find("][");
    if (colon == absl::string_view::npos || close == absl::string_view::npos ||
        close < colon || !absl::EndsWith(line, "]")) {
      ++log.malformed_lines;
      continue;
    }
    absl::string_view type = line.substr(0, colon);
    absl::string_view record = line.substr(colon + 2, close - colon - 2);
    // "<path>,<updateTime>,<numFiles>": the path itself may hold commas.
    size_t last = record.rfind(',');
    size_t before = last == absl::string_view::npos || last == 0
                        ? absl::string_view::npos
                        : record.rfind(',', last - 1);
    if (before == absl::string_view::npos) {
      ++log.malformed_lines;
      continue;
    }
    absl::string_view path = record.substr(0, before);
    absl::string_view prefix = path.substr(path.rfind('/') + 1);  // npos+1 == 0
    if (type == "ADD" && !prefix.empty()) {
      log.added.emplace_back(prefix);
    } else if (type == "REMOVE" && !prefix.empty()) {
      log.removed.emplace_back(prefix);
    } else if (type == "COMMIT") {
      log.state = TxnLog::State::kCommitted;
    } else if (type == "ABORT") {
      log.state = TxnLog::State::kAborted;
    } else {
      ++log.malformed_lines;
    }
  }
  return log;
}

}  // namespace snaphaven
