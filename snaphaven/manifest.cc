#include "snaphaven/manifest.h"


#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "snaphaven/cassandra_path.h"
#include "snaphaven/checksum.h"

namespace snaphaven {
namespace {

constexpr absl::string_view kHeader = "snaphaven-manifest 3\n";
constexpr absl::string_view kHeaderV2 = "snaphaven-manifest 2\n";
constexpr absl::string_view kHeaderV1 = "snaphaven-manifest 1\n";

// Plain printable bytes are written as they are; anything else C-escaped.
bool NeedsEscape(absl::string_view s) {
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || c == '\\' || c == '"' || c == '\'') return true;
  }
  return false;
}

size_t CommonPrefix(absl::string_view a, absl::string_view b) {
  size_t n = std::min(a.size(), b.size()), i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}


absl::Status Corrupt(size_t line, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("manifest line ", line, ": ", why));
}

}  // namespace

const ManifestEntry* Manifest::Find(absl::string_view path) const {
  auto it = entries_.find(path);
  return it == entries_.end() ? nullptr : &it->second;
}

const std::string* Manifest::FindBySource(const SourceIdentity& source) const {
  if (!by_source_built_) {
    for (const auto& [path, entry] : entries_) {
      if (entry.source().known()) by_source_.emplace(entry.source(), path);
    }
    by_source_built_ = true;
  }
  auto it = by_source_.find(source);
  if (it == by_source_.end()) return nullptr;
  // The index is never pruned on overwrite; check the entry still agrees.
  const ManifestEntry* entry = Find(it->second);
  if (entry == nullptr || !(entry->source() == source)) return nullptr;
  return &it->second;
}

void Manifest::Put(const std::string& path, const ManifestEntry& entry) {
  entries_[path] = entry;
  if (by_source_built_ && entry.source().known()) by_source_.emplace(entry.source(), path);
}

void Manifest::Erase(const std::string& path) {
  entries_.erase(path);
  // The index may name this path for a source another path also holds:
  // rebuild it on next use rather than answer "not stored".
  by_source_.clear();
  by_source_built_ = false;
}

std::string Manifest::Serialize() const {
  std::string out(kHeader);
  out.reserve(entries_.size() * 96);
  // Sorted paths share long prefixes (keyspace, table, tag): each line says
  // how many bytes it shares with the one before, then the rest.
  absl::string_view previous;
  for (const auto& [path, e] : entries_) {
    size_t shared = CommonPrefix(previous, path);
    absl::string_view rest = absl::string_view(path).substr(shared);
    absl::StrAppend(&out, shared, "\t");
    if (NeedsEscape(rest)) {
      out += absl::CEscape(rest);
    } else {
      out.append(rest.data(), rest.size());
    }
    absl::StrAppend(&out, "\t", e.size, "\t", e.mtime_ns, "\t", absl::Hex(e.mode), "\t",
                    e.source_dev, "\t", e.source_ino, "\t");
    if (e.has_crc32) {
      absl::StrAppend(&out, absl::Hex(e.crc32, absl::kZeroPad8));
    } else {
      out += '-';
    }
    absl::StrAppend(&out, "\t", e.missing_since_ns, "\n");
    previous = path;
  }
  absl::StrAppend(&out, "end ", entries_.size(), " ",
                  absl::Hex(Crc32(0, out), absl::kZeroPad8), "\n");
  return out;
}

absl::Status Manifest::ParseLine(absl::string_view line, int version, size_t line_number,
                                 std::string* previous_path) {
  if (version >= 3) return ParseLineV3(line, line_number, previous_path);
  const bool v1 = version == 1;
  std::vector<absl::string_view> f = absl::StrSplit(line, '\t');
  std::string path;
  ManifestEntry e;
  const size_t columns = v1 ? 6 : 8;
  bool crc_ok = v1 || f.size() != 8 || f[6] == "-" ||
                (f[6].size() == 8 && absl::SimpleHexAtoi(f[6], &e.crc32));
  e.has_crc32 = !v1 && f.size() == 8 && f[6] != "-";
  if ((f.size() != columns && !(v1 && f.size() == 7)) || !crc_ok ||
      !absl::CUnescape(f[0], &path) || !absl::SimpleAtoi(f[1], &e.size) ||
      !absl::SimpleAtoi(f[2], &e.mtime_ns) || !absl::SimpleHexAtoi(f[3], &e.mode) ||
      !absl::SimpleAtoi(f[4], &e.source_dev) || !absl::SimpleAtoi(f[5], &e.source_ino) ||
      e.size < 0 || (v1 && f.size() == 7 && !absl::SimpleAtoi(f[6], &e.missing_since_ns)) ||
      (!v1 && !absl::SimpleAtoi(f[7], &e.missing_since_ns))) {
    return Corrupt(line_number, "malformed entry");
  }
  // A crafted manifest must never steer a write outside the destination.
  if (!IsSafeRelativePath(path) || absl::StartsWith(path, ".snaphaven/") ||
      path.find('\0') != std::string::npos) {
    return Corrupt(line_number, "path outside the destination");
  }
  // Lines come sorted: appending at the end is the cheap insertion.
  entries_.emplace_hint(entries_.end(), std::move(path), e);
  return absl::OkStatus();
}

absl::Status Manifest::ParseLineV3(absl::string_view line, size_t line_number,
                                   std::string* previous_path) {
  // <shared>\t<rest>\t<size>\t<mtime>\t<mode hex>\t<dev>\t<ino>\t<crc|->\t<missing since>
  absl::string_view f[9];
  size_t n = 0;
  while (n < 9) {
    size_t tab = line.find('\t');
    f[n++] = line.substr(0, tab);
    if (tab == absl::string_view::npos) {
      line = absl::string_view();
      break;
    }
    line.remove_prefix(tab + 1);
  }
  size_t shared = 0;
  ManifestEntry e;
  if (n != 9 || !line.empty() || !absl::SimpleAtoi(f[0], &shared) ||
      shared > previous_path->size() || !absl::SimpleAtoi(f[2], &e.size) || e.size < 0 ||
      !absl::SimpleAtoi(f[3], &e.mtime_ns) || !absl::SimpleHexAtoi(f[4], &e.mode) ||
      !absl::SimpleAtoi(f[5], &e.source_dev) || !absl::SimpleAtoi(f[6], &e.source_ino) ||
      !absl::SimpleAtoi(f[8], &e.missing_since_ns)) {
    return Corrupt(line_number, "malformed entry");
  }
  if (f[7] != "-") {
    if (f[7].size() != 8 || !absl::SimpleHexAtoi(f[7], &e.crc32)) {
      return Corrupt(line_number, "malformed entry");
    }
    e.has_crc32 = true;
  }
  // The previous path becomes this one in place: no new allocation.
  previous_path->resize(shared);
  if (f[1].find('\\') == absl::string_view::npos) {
    previous_path->append(f[1].data(), f[1].size());
  } else {
    std::string rest;
    if (!absl::CUnescape(f[1], &rest)) return Corrupt(line_number, "malformed entry");
    *previous_path += rest;
  }
  const std::string& path = *previous_path;
  // A crafted manifest must never steer a write outside the destination.
  if (!IsSafeRelativePath(path) || absl::StartsWith(path, ".snaphaven/") ||
      path.find('\0') != std::string::npos) {
    return Corrupt(line_number, "path outside the destination");
  }
  entries_.emplace_hint(entries_.end(), path, e);
  return absl::OkStatus();
}

namespace {

// Parses a manifest fed in pieces. Every line but the last is an entry
// (or the header); the last must be the trailer, whose checksum covers
// everything before it, so each line is held back until the next one ends.
class ManifestParser {
 public:
  absl::Status Feed(absl::string_view piece, Manifest& manifest) {
    while (!piece.empty()) {
      size_t newline = piece.find('\n');
      if (newline == absl::string_view::npos) {
        partial_.append(piece.data(), piece.size());
        return absl::OkStatus();
      }
      partial_.append(piece.data(), newline);
      piece.remove_prefix(newline + 1);
      absl::Status status = CompleteLine(manifest);
      if (!status.ok()) return status;
    }
    return absl::OkStatus();
  }

  absl::Status Finish(Manifest& manifest) {
    if (!partial_.empty()) return Corrupt(0, "truncated (no final newline)");
    if (line_number_ < 2) return Corrupt(0, "no trailer");
    std::vector<absl::string_view> t = absl::StrSplit(held_, ' ');
    uint64_t count = 0;
    uint32_t crc = 0;
    if (t.size() != 3 || t[0] != "end" || !absl::SimpleAtoi(t[1], &count) ||
        !absl::SimpleHexAtoi(t[2], &crc)) {
      return Corrupt(0, "truncated (no valid trailer)");
    }
    if (crc_ != crc) return Corrupt(0, "checksum mismatch");
    if (manifest.size() != count) return Corrupt(0, "entry count mismatch");
    return absl::OkStatus();
  }

 private:
  absl::Status CompleteLine(Manifest& manifest);

  std::string partial_;  // the line being read
  std::string held_;     // the last complete line, not yet known not to be the trailer
  size_t line_number_ = 0;
  int version_ = 3;
  std::string previous_path_;
  uint32_t crc_ = 0;
};

}  // namespace

absl::Status ManifestLineSink(Manifest& manifest, absl::string_view line, int version,
                              size_t line_number, std::string* previous_path);

absl::Status ManifestParser::CompleteLine(Manifest& manifest) {
  ++line_number_;
  if (line_number_ == 1) {
    std::string header = partial_ + "\n";
    if (header == kHeaderV1) {
      version_ = 1;
    } else if (header == kHeaderV2) {
      version_ = 2;
    } else if (header != kHeader) {
      return Corrupt(1, "bad header");
    }
    crc_ = Crc32(crc_, header);
  } else if (line_number_ > 2) {
    // The held line was not the last: it is an entry.
    crc_ = Crc32(crc_, held_);
    crc_ = Crc32(crc_, "\n");
    if (held_.empty()) return Corrupt(line_number_ - 1, "empty line");
    absl::Status status =
        ManifestLineSink(manifest, held_, version_, line_number_ - 1, &previous_path_);
    if (!status.ok()) return status;
  }
  held_.swap(partial_);
  partial_.clear();
  return absl::OkStatus();
}

absl::Status ManifestLineSink(Manifest& manifest, absl::string_view line, int version,
                              size_t line_number, std::string* previous_path) {
  return manifest.ParseLine(line, version, line_number, previous_path);
}

absl::StatusOr<Manifest> Manifest::Parse(absl::string_view text) {
  Manifest manifest;
  ManifestParser parser;
  absl::Status status = parser.Feed(text, manifest);
  if (status.ok()) status = parser.Finish(manifest);
  if (!status.ok()) return status;
  return manifest;
}

absl::StatusOr<Manifest> Manifest::Load(FileSystem& fs, const std::string& path) {
  absl::StatusOr<std::unique_ptr<ReadableFile>> opened = fs.OpenForRead(path);
  if (!opened.ok()) return opened.status();
  ReadableFile& file = **opened;
  Manifest manifest;
  ManifestParser parser;
  std::string buffer(1 << 20, '\0');
  while (true) {
    absl::StatusOr<size_t> got = file.Read(buffer.data(), buffer.size());
    if (!got.ok()) return got.status();
    if (*got == 0) break;
    absl::Status status = parser.Feed(absl::string_view(buffer.data(), *got), manifest);
    if (!status.ok()) return status;
  }
  absl::Status status = parser.Finish(manifest);
  if (!status.ok()) return status;
  return manifest;
}

}  // namespace snaphaven
