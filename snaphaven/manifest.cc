#include "snaphaven/manifest.h"

#include <zlib.h>

#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "snaphaven/cassandra_path.h"

namespace snaphaven {
namespace {

constexpr absl::string_view kHeader = "snaphaven-manifest 2\n";
constexpr absl::string_view kHeaderV1 = "snaphaven-manifest 1\n";

uint32_t Crc32(absl::string_view data) {
  uLong crc = crc32(0L, Z_NULL, 0);
  // zlib takes a uInt length: feed large inputs in pieces.
  while (!data.empty()) {
    uInt n = static_cast<uInt>(std::min<size_t>(data.size(), 1u << 30));
    crc = crc32(crc, reinterpret_cast<const Bytef*>(data.data()), n);
    data.remove_prefix(n);
  }
  return static_cast<uint32_t>(crc);
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
  auto it = by_source_.find(source);
  if (it == by_source_.end()) return nullptr;
  // The index is never pruned on overwrite; check the entry still agrees.
  const ManifestEntry* entry = Find(it->second);
  if (entry == nullptr || !(entry->source() == source)) return nullptr;
  return &it->second;
}

void Manifest::Put(const std::string& path, const ManifestEntry& entry) {
  entries_[path] = entry;
  if (entry.source().known()) by_source_.emplace(entry.source(), path);
}

void Manifest::Erase(const std::string& path) { entries_.erase(path); }

std::string Manifest::Serialize() const {
  std::string out(kHeader);
  for (const auto& [path, e] : entries_) {
    absl::StrAppend(&out, absl::CEscape(path), "\t", e.size, "\t", e.mtime_ns,
                    "\t", absl::StrCat(absl::Hex(e.mode)), "\t", e.source_dev,
                    "\t", e.source_ino, "\t",
                    e.has_crc32 ? absl::StrCat(absl::Hex(e.crc32, absl::kZeroPad8)) : "-", "\t",
                    e.missing_since_ns, "\n");
  }
  absl::StrAppend(&out, "end ", entries_.size(), " ",
                  absl::Hex(Crc32(out), absl::kZeroPad8), "\n");
  return out;
}

absl::StatusOr<Manifest> Manifest::Parse(absl::string_view text) {
  const bool v1 = absl::StartsWith(text, kHeaderV1);
  if (!v1 && !absl::StartsWith(text, kHeader)) return Corrupt(1, "bad header");
  // The trailer is the last line; everything before it is checksummed.
  if (text.empty() || text.back() != '\n') {
    return Corrupt(0, "truncated (no final newline)");
  }
  size_t trailer_at = text.rfind('\n', text.size() - 2);
  if (trailer_at == absl::string_view::npos) return Corrupt(0, "no trailer");
  absl::string_view body = text.substr(0, trailer_at + 1);
  absl::string_view trailer = text.substr(trailer_at + 1);
  trailer.remove_suffix(1);
  std::vector<absl::string_view> t = absl::StrSplit(trailer, ' ');
  uint64_t count = 0;
  uint32_t crc = 0;
  if (t.size() != 3 || t[0] != "end" || !absl::SimpleAtoi(t[1], &count) ||
      !absl::SimpleHexAtoi(t[2], &crc)) {
    return Corrupt(0, "truncated (no valid trailer)");
  }
  if (Crc32(body) != crc) return Corrupt(0, "checksum mismatch");

  Manifest manifest;
  size_t line_number = 1;
  body.remove_prefix(kHeader.size());
  for (absl::string_view line : absl::StrSplit(body, '\n', absl::SkipEmpty())) {
    ++line_number;
    std::vector<absl::string_view> f = absl::StrSplit(line, '\t');
    std::string path;
    ManifestEntry e;
    const size_t columns = v1 ? 6 : 8;
    bool crc_ok = v1 || f.size() != 8 || f[6] == "-" ||
                  (f[6].size() == 8 && absl::SimpleHexAtoi(f[6], &e.crc32));
    e.has_crc32 = !v1 && f.size() == 8 && f[6] != "-";
    if ((f.size() != columns && !(v1 && f.size() == 7)) || !crc_ok ||
        !absl::CUnescape(f[0], &path) ||
        !absl::SimpleAtoi(f[1], &e.size) || !absl::SimpleAtoi(f[2], &e.mtime_ns) ||
        !absl::SimpleHexAtoi(f[3], &e.mode) ||
        !absl::SimpleAtoi(f[4], &e.source_dev) ||
        !absl::SimpleAtoi(f[5], &e.source_ino) || e.size < 0 ||
        (v1 && f.size() == 7 && !absl::SimpleAtoi(f[6], &e.missing_since_ns)) ||
        (!v1 && !absl::SimpleAtoi(f[7], &e.missing_since_ns))) {
      return Corrupt(line_number, "malformed entry");
    }
    // A crafted manifest must never steer a write outside the destination.
    if (!IsSafeRelativePath(path) || absl::StartsWith(path, ".snaphaven/") ||
        path.find('\0') != std::string::npos) {
      return Corrupt(line_number, "path outside the destination");
    }
    manifest.Put(path, e);
  }
  if (manifest.size() != count) return Corrupt(0, "entry count mismatch");
  return manifest;
}

}  // namespace snaphaven
