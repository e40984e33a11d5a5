#include "snaphaven/ops/report.h"

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

namespace {

// "; commitlog archive: 2 segments copied (64.0 MiB), 1 segment failed
// verification, 3 removed from the archive, 12 segments (384.0 MiB) waiting
// in the archive".
std::string CommitlogSummary(const CommitlogStats& c) {
  auto segments = [](int64_t n) { return absl::StrCat(n, n == 1 ? " segment" : " segments"); };
  std::string part = absl::StrCat("; commitlog archive: ", segments(c.segments_copied),
                                  " copied (", HumanBytes(c.bytes_copied), ")");
  if (c.segments_failed > 0) {
    absl::StrAppend(&part, ", ", segments(c.segments_failed), " failed verification");
  }
  if (c.segments_removed > 0) {
    absl::StrAppend(&part, ", ", segments(c.segments_removed), " removed from the archive");
  }
  absl::StrAppend(&part, ", ", segments(c.segments_waiting), " (", HumanBytes(c.bytes_waiting),
                  ") waiting in the archive");
  return part;
}

}  // namespace

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
  if (stats.commitlog.enabled) absl::StrAppend(&line, CommitlogSummary(stats.commitlog));
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
  if (stats.unreadable > 0) absl::StrAppend(&line, "; ", stats.unreadable, " unreadable");
  if (stats.repaired > 0) absl::StrAppend(&line, "; ", stats.repaired, " repaired");
  if (stats.fatal.has_value()) absl::StrAppend(&line, "; ", *stats.fatal);
  return line;
}

}  // namespace snaphaven
