#include "snaphaven/report.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace snaphaven {

std::string HumanBytes(int64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 4) {
    value /= 1024;
    ++unit;
  }
  return unit == 0 ? absl::StrCat(bytes, " B")
                   : absl::StrFormat("%.1f %s", value, units[unit]);
}

int ExitCodeFor(const CycleStats& stats) {
  if (stats.fatal.has_value() || stats.out_of_space || stats.failed > 0) return 1;
  return 0;
}

std::string SummaryLine(const CycleStats& stats, bool show_moved, bool show_pruned) {
  double seconds = absl::ToDoubleSeconds(stats.duration);
  double rate = seconds > 0 ? static_cast<double>(stats.bytes_copied) / seconds : 0;
  std::string line = absl::StrCat(
      stats.dry_run ? "dry run " : "cycle ",
      stats.fatal.has_value() ? "failed" : (stats.interrupted ? "interrupted" : "done"),
      ": ", stats.scanned, " scanned, ", stats.copied, " copied, ", stats.linked,
      " linked, ", stats.unchanged, " unchanged, ", stats.skipped, " skipped, ",
      stats.failed, " failed, ", stats.held_back_files + stats.held_back_snapshots,
      " held back, ", show_moved ? absl::StrCat(stats.moved, " moved, ") : "",
      show_pruned ? absl::StrCat(stats.pruned, " pruned, ") : "", HumanBytes(stats.bytes_copied),
      " copied in ",
      absl::StrFormat("%.2fs", seconds), " (", HumanBytes(static_cast<int64_t>(rate)), "/s)");
  if (stats.out_of_space) absl::StrAppend(&line, "; destination out of space");
  if (stats.fatal.has_value()) absl::StrAppend(&line, "; ", *stats.fatal);
  return line;
}

int ExitCodeFor(const VerifyStats& stats) {
  if (stats.fatal.has_value()) return 1;
  return stats.problems() > stats.repaired ? 1 : 0;
}

std::string SummaryLine(const VerifyStats& stats) {
  double seconds = absl::ToDoubleSeconds(stats.duration);
  double rate = seconds > 0 ? static_cast<double>(stats.bytes) / seconds : 0;
  std::string line = absl::StrCat(
      "verify ", stats.fatal.has_value() ? "failed" : "done", ": ", stats.files, " files (",
      stats.distinct, " distinct: hard links are read once), ",
      HumanBytes(stats.bytes), " read in ", absl::StrFormat("%.2fs", seconds), " (",
      HumanBytes(static_cast<int64_t>(rate)), "/s); ", stats.missing, " missing, ", stats.changed,
      " changed, ", stats.corrupt, " corrupt, ", stats.unknown, " unknown, ", stats.unchecked,
      " without a checksum");
  if (stats.repaired > 0) absl::StrAppend(&line, "; ", stats.repaired, " repaired");
  if (stats.fatal.has_value()) absl::StrAppend(&line, "; ", *stats.fatal);
  return line;
}

}  // namespace snaphaven
