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

struct Meminfo {
  int64_t unwritten_bytes = 0;  // Dirty + Writeback
  int64_t total_bytes = 0;      // MemTotal
};

// The lines snaphaven needs of `text` (that of /proc/meminfo).
// InvalidArgument when one is missing, repeated or malformed.
absl::StatusOr<Meminfo> ParseMeminfo(absl::string_view text);

// This system's Dirty + Writeback, read now from `meminfo_path`.
// Unavailable when that is not the kernel's own view (its MemTotal is not
// what sysinfo(2) says: a container's view, as LXCFS gives, which may not
// show Cassandra's data).
absl::StatusOr<int64_t> DirtyMemoryBytes(const char* meminfo_path = "/proc/meminfo");

// Whether a syncfs would write out little besides snaphaven's own data:
// at most `limit` bytes of `dirty` (DirtyMemoryBytes) are not among
// `own_unwritten`. False when `dirty` is an error.
bool LittleOtherUnwrittenData(const absl::StatusOr<int64_t>& dirty, int64_t own_unwritten,
                              int64_t limit);

}  // namespace snaphaven

#endif  // SNAPHAVEN_DIRTY_MEMORY_H_
