#include "snaphaven/storage/dirty_memory.h"

#include <sys/sysinfo.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace snaphaven {

absl::StatusOr<Meminfo> ParseMeminfo(absl::string_view text) {
  struct Wanted {
    absl::string_view prefix;
    int64_t kib = -1;
  };
  // "Dirty:            1234 kB"; "WritebackTmp:" (FUSE) is another line.
  Wanted wanted[] = {{"MemTotal:"}, {"Dirty:"}, {"Writeback:"}};
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    for (Wanted& w : wanted) {
      absl::string_view rest = line;
      if (!absl::ConsumePrefix(&rest, w.prefix)) continue;
      int64_t kib = 0;
      if (w.kib >= 0 || !absl::ConsumeSuffix(&rest, " kB") || !absl::SimpleAtoi(rest, &kib) ||
          kib < 0) {
        return absl::InvalidArgumentError(absl::StrCat("unexpected meminfo line \"", line, "\""));
      }
      w.kib = kib;
    }
  }
  for (const Wanted& w : wanted) {
    if (w.kib < 0) return absl::InvalidArgumentError(absl::StrCat("no ", w.prefix, " in meminfo"));
  }
  return Meminfo{(wanted[1].kib + wanted[2].kib) * 1024, wanted[0].kib * 1024};
}

absl::StatusOr<int64_t> DirtyMemoryBytes(const char* meminfo_path) {
  FILE* file = std::fopen(meminfo_path, "re");
  if (file == nullptr) {
    return absl::UnavailableError(absl::StrCat(meminfo_path, ": ", std::strerror(errno)));
  }
  std::string text;
  char buffer[4096];
  for (size_t got; (got = std::fread(buffer, 1, sizeof(buffer), file)) > 0;) {
    text.append(buffer, got);
  }
  std::fclose(file);
  absl::StatusOr<Meminfo> meminfo = ParseMeminfo(text);
  if (!meminfo.ok()) return meminfo.status();
  struct sysinfo system;
  if (sysinfo(&system) != 0) {
    return absl::UnavailableError(absl::StrCat("sysinfo: ", std::strerror(errno)));
  }
  const int64_t total = static_cast<int64_t>(system.totalram) * system.mem_unit;
  if (total / 1024 != meminfo->total_bytes / 1024) {
    return absl::UnavailableError(absl::StrCat(
        meminfo_path, " is a container's view (MemTotal ", meminfo->total_bytes / 1024,
        " kB, the kernel's ", total / 1024, " kB)"));
  }
  return meminfo->unwritten_bytes;
}

bool LittleOtherUnwrittenData(const absl::StatusOr<int64_t>& dirty, int64_t own_unwritten,
                              int64_t limit) {
  return dirty.ok() && *dirty - own_unwritten <= limit;
}

}  // namespace snaphaven
