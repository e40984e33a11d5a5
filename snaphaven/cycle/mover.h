// Move mode's deletions at the source. Only files of a MoveUnit (inside
// snapshots/<tag>/ or backups/) are ever deleted, one at a time, and only
// when the file is still the one scanned and its destination copy is a
// different file with the same size and mtime.

#ifndef SNAPHAVEN_MOVER_H_
#define SNAPHAVEN_MOVER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "snaphaven/storage/file_system.h"
#include "snaphaven/cycle/scanner.h"
#include "snaphaven/cycle/selector.h"

namespace snaphaven {

struct MoveOutcome {
  int64_t deleted = 0;
  bool completed = false;              // every file deleted (or already gone)
  std::vector<std::string> problems;   // why a file was kept, one line each
};

// REQUIRES: every file of `unit` is recorded in a committed manifest.
MoveOutcome DeleteMovedSources(FileSystem& fs, const MoveUnit& unit, const ScanResult& scan,
                               const std::vector<std::string>& data_roots,
                               const std::string& destination, int64_t mtime_granularity_ns);

}  // namespace snaphaven

#endif  // SNAPHAVEN_MOVER_H_
