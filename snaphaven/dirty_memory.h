// How much written data the kernel still holds in memory, not yet on disk
// (Dirty + Writeback of /proc/meminfo, system-wide). A syncfs(2) of the
// data's file system must write and wait for all of it, Cassandra's share
// included, so snaphaven uses one there only while this is small.

#ifndef SNAPHAVEN_DIRTY_MEMORY_H_
#define SNAPHAVEN_DIRTY_MEMORY_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace snaphaven {

// Dirty + Writeback of `meminfo` (the text of /proc/meminfo), in bytes.
// InvalidArgument when either line is missing or malformed.
absl::StatusOr<int64_t> ParseDirtyMemory(absl::string_view meminfo);

// Of this system, read now from /proc/meminfo.
absl::StatusOr<int64_t> DirtyMemoryBytes();

}  // namespace snaphaven

#endif  // SNAPHAVEN_DIRTY_MEMORY_H_
