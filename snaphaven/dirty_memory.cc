#include "snaphaven/dirty_memory.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace snaphaven {

absl::StatusOr<int64_t> ParseDirtyMemory(absl::string_view meminfo) {
  int64_t total = 0;
  int found = 0;
  for (absl::string_view line : absl::StrSplit(meminfo, '\n')) {
    // "Dirty:            1234 kB"; "WritebackTmp:" (FUSE) is another line.
    absl::string_view rest = line;
    if (!absl::ConsumePrefix(&rest, "Dirty:") && !absl::ConsumePrefix(&rest, "Writeback:")) {
      continue;
    }
    int64_t kib = 0;
    if (!absl::ConsumeSuffix(&rest, " kB") || !absl::SimpleAtoi(rest, &kib) || kib < 0) {
      return absl::InvalidArgumentError(absl::StrCat("malformed meminfo line \"", line, "\""));
    }
    total += kib * 1024;
    ++found;
  }
  if (found != 2) return absl::InvalidArgumentError("no Dirty and Writeback lines in meminfo");
  return total;
}

absl::StatusOr<int64_t> DirtyMemoryBytes() {
  FILE* file = std::fopen("/proc/meminfo", "re");
  if (file == nullptr) {
    return absl::UnavailableError(absl::StrCat("/proc/meminfo: ", std::strerror(errno)));
  }
  std::string text;
  char buffer[4096];
  for (size_t got; (got = std::fread(buffer, 1, sizeof(buffer), file)) > 0;) {
    text.append(buffer, got);
  }
  std::fclose(file);
  return ParseDirtyMemory(text);
}

}  // namespace snaphaven
