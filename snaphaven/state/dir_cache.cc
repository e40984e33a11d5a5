#include "snaphaven/state/dir_cache.h"

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "snaphaven/storage/checksum.h"

namespace snaphaven {
namespace {

// Version 2 adds the listing digest (the 7th field); version 1 is read too.
constexpr absl::string_view kHeader = "snaphaven-dircache 2\n";
constexpr absl::string_view kHeaderV1 = "snaphaven-dircache 1\n";

}  // namespace

void ListingDigest::Mix(absl::string_view bytes) {
  for (unsigned char c : bytes) {
    hash_ ^= c;
    hash_ *= 1099511628211ULL;
  }
}

void ListingDigest::Add(absl::string_view name, const FileStat& stat) {
  Mix(name);
  const int64_t fields[] = {static_cast<int64_t>(stat.type), static_cast<int64_t>(stat.dev),
                            static_cast<int64_t>(stat.ino), stat.size, stat.mtime_ns};
  // The '\0' ends the name (no name holds one), then the fields.
  Mix(absl::string_view("\0", 1));
  Mix(absl::string_view(reinterpret_cast<const char*>(fields), sizeof(fields)));
}

bool SettledAt(int64_t mtime_ns, absl::Time now) {
  const bool whole_seconds = mtime_ns % 1000000000 == 0;
  const absl::Duration window = whole_seconds ? absl::Seconds(2) : absl::Milliseconds(100);
  return absl::FromUnixNanos(mtime_ns) < now - window;
}

const CachedDir* DirCache::Find(absl::string_view path) const {
  auto it = dirs_.find(path);
  return it == dirs_.end() ? nullptr : &it->second;
}

void DirCache::EraseTree(const std::string& path) {
  dirs_.erase(path);
  const std::string below = absl::StrCat(path, "/");
  auto it = dirs_.lower_bound(below);
  while (it != dirs_.end() && absl::StartsWith(it->first, below)) it = dirs_.erase(it);
}

// One line per directory: path, dev, ino, mtime, files, bytes, listing
// digest (hex), subdirs (C-escaped, tab-separated), then a checksummed
// trailer as the manifest's.
std::string DirCache::Serialize() const {
  std::string out(kHeader);
  for (const auto& [path, d] : dirs_) {
    absl::StrAppend(&out, absl::CEscape(path), "\t", d.dev, "\t", d.ino, "\t", d.mtime_ns, "\t",
                    d.files, "\t", d.bytes, "\t", absl::Hex(d.listing));
    for (const std::string& sub : d.subdirs) absl::StrAppend(&out, "\t", absl::CEscape(sub));
    out += '\n';
  }
  absl::StrAppend(&out, "end ", dirs_.size(), " ", absl::Hex(Crc32(0, out), absl::kZeroPad8),
                  "\n");
  return out;
}

absl::StatusOr<DirCache> DirCache::Parse(absl::string_view text) {
  auto corrupt = [] { return absl::InvalidArgumentError("corrupt dircache"); };
  const bool v1 = absl::StartsWith(text, kHeaderV1);
  if (!(v1 || absl::StartsWith(text, kHeader)) || text.back() != '\n') return corrupt();
  const size_t fixed = v1 ? 6 : 7;  // fields before the subdirectories
  size_t trailer_at = text.rfind('\n', text.size() - 2);
  absl::string_view body = text.substr(0, trailer_at + 1);
  std::vector<absl::string_view> t =
      absl::StrSplit(text.substr(trailer_at + 1, text.size() - trailer_at - 2), ' ');
  uint64_t count = 0;
  uint32_t crc = 0;
  if (t.size() != 3 || t[0] != "end" || !absl::SimpleAtoi(t[1], &count) ||
      !absl::SimpleHexAtoi(t[2], &crc) || Crc32(0, body) != crc) {
    return corrupt();
  }
  DirCache cache;
  body.remove_prefix(kHeader.size());
  for (absl::string_view line : absl::StrSplit(body, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> f = absl::StrSplit(line, '\t');
    std::string path;
    CachedDir d;
    if (f.size() < fixed || !absl::CUnescape(f[0], &path) || !absl::SimpleAtoi(f[1], &d.dev) ||
        !absl::SimpleAtoi(f[2], &d.ino) || !absl::SimpleAtoi(f[3], &d.mtime_ns) ||
        !absl::SimpleAtoi(f[4], &d.files) || !absl::SimpleAtoi(f[5], &d.bytes) ||
        (!v1 && !absl::SimpleHexAtoi(f[6], &d.listing))) {
      return corrupt();
    }
    for (size_t i = fixed; i < f.size(); ++i) {
      std::string sub;
      if (!absl::CUnescape(f[i], &sub) || sub.empty() || absl::StrContains(sub, '/')) {
        return corrupt();
      }
      d.subdirs.push_back(std::move(sub));
    }
    cache.Put(path, std::move(d));
  }
  if (cache.dirs().size() != count) return corrupt();
  return cache;
}

}  // namespace snaphaven
