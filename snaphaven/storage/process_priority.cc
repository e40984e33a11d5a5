#include "snaphaven/storage/process_priority.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace snaphaven {
namespace {

// From linux/ioprio.h (glibc has no wrapper).
constexpr int kIoprioWhoProcess = 1;
constexpr int kIoprioClassShift = 13;
constexpr int kIoprioClassBestEffort = 2;
constexpr int kIoprioClassIdle = 3;
constexpr int kNice = 10;

}  // namespace

absl::StatusOr<IoPriority> ParseIoPriority(const std::string& text) {
  if (text == "idle") return IoPriority::kIdle;
  if (text == "best-effort") return IoPriority::kBestEffort;
  if (text == "normal") return IoPriority::kNormal;
  return absl::InvalidArgumentError(
      absl::StrCat("invalid --io_priority '", text, "': choose idle, best-effort or normal"));
}

absl::Status ApplyProcessPriority(IoPriority priority) {
  if (priority == IoPriority::kNormal) return absl::OkStatus();
  int value = priority == IoPriority::kIdle ? kIoprioClassIdle << kIoprioClassShift
                                            : (kIoprioClassBestEffort << kIoprioClassShift) | 7;
  if (syscall(SYS_ioprio_set, kIoprioWhoProcess, 0, value) != 0) {
    return absl::InternalError(absl::StrCat("ioprio_set: ", strerror(errno)));
  }
  if (setpriority(PRIO_PROCESS, 0, kNice) != 0) {
    return absl::InternalError(absl::StrCat("setpriority: ", strerror(errno)));
  }
  return absl::OkStatus();
}

int64_t OpenFileLimit() {
  struct rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 1024;
  return static_cast<int64_t>(std::min<rlim_t>(limit.rlim_cur, 1 << 20));
}

int64_t RaiseOpenFileLimit() {
  struct rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    // No select(2) here, so descriptors above 1024 are safe to use.
    const rlim_t wanted = std::min<rlim_t>(limit.rlim_max, 65536);
    if (limit.rlim_cur < wanted) {
      limit.rlim_cur = wanted;
      (void)setrlimit(RLIMIT_NOFILE, &limit);
    }
  }
  return OpenFileLimit();
}

int CurrentIoClass() {
  long value = syscall(SYS_ioprio_get, kIoprioWhoProcess, 0);
  return value < 0 ? -1 : static_cast<int>(value >> kIoprioClassShift);
}

}  // namespace snaphaven
