// Keeps snaphaven out of Cassandra's way: I/O scheduling class through
// ioprio_set(2) (honoured by the BFQ and CFQ schedulers) and a lower CPU
// priority (nice).

#ifndef SNAPHAVEN_PROCESS_PRIORITY_H_
#define SNAPHAVEN_PROCESS_PRIORITY_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace snaphaven {

enum class IoPriority {
  kIdle,        // I/O only when the disk is otherwise idle; nice 10
  kBestEffort,  // best-effort class, lowest level (7); nice 10
  kNormal,      // unchanged
};

// "idle", "best-effort", "normal".
absl::StatusOr<IoPriority> ParseIoPriority(const std::string& text);

// Applies `priority` to the whole process (every thread started later).
absl::Status ApplyProcessPriority(IoPriority priority);

// Raises the soft limit on open files to the hard limit (at most 65536):
// a batch of small copies keeps each file open until the batch is durable
// (see Syncer's batch size). Returns the soft limit now in force.
int64_t RaiseOpenFileLimit();
// The soft limit on open files (at most 2^20; 1024 when it cannot be read).
int64_t OpenFileLimit();

// The calling thread's I/O class as ioprio_get(2) reports it: 0 none,
// 1 real-time, 2 best-effort, 3 idle; -1 on error.
int CurrentIoClass();

}  // namespace snaphaven

#endif  // SNAPHAVEN_PROCESS_PRIORITY_H_
