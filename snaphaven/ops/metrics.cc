#include "snaphaven/ops/metrics.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace snaphaven {
namespace {

class Writer {
 public:
  void Gauge(absl::string_view name, absl::string_view help, double value) {
    Family(name, help, "gauge");
    Sample(name, value);
  }
  void Counter(absl::string_view name, absl::string_view help, double increment,
               const absl::flat_hash_map<std::string, double>& previous) {
    Family(name, help, "counter");
    auto it = previous.find(name);
    Sample(name, (it == previous.end() ? 0 : it->second) + increment);
  }
  std::string Take() { return std::move(out_); }

 private:
  void Family(absl::string_view name, absl::string_view help, absl::string_view type) {
    absl::StrAppend(&out_, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
  }
  void Sample(absl::string_view name, double value) {
    absl::StrAppend(&out_, name, " ", absl::StrFormat("%.15g", value), "\n");
  }
  std::string out_;
};

// --commitlog_archive: what was mirrored, how far behind the newest
// mirrored segment is (the point-in-time lag), what waits, what failed.
void RenderCommitlogMetrics(Writer& w, const CommitlogStats& c,
                            const absl::flat_hash_map<std::string, double>& previous,
                            absl::Time now) {
  w.Counter("snaphaven_commitlog_segments_total",
            "Commitlog segments verified and mirrored to <dest>/commitlog_archive/.",
            c.segments_copied, previous);
  w.Counter("snaphaven_commitlog_bytes_total", "Bytes of commitlog segments mirrored.",
            c.bytes_copied, previous);
  if (c.newest_mirrored_mtime_ns != 0) {
    // Absent until a first segment is mirrored (alert on absent() too).
    w.Gauge("snaphaven_commitlog_newest_segment_age_seconds",
            "Age (by its mtime, its last write) of the newest segment mirrored: how much a "
            "point-in-time restore from the destination would lose now.",
            absl::ToDoubleSeconds(now - absl::FromUnixNanos(c.newest_mirrored_mtime_ns)));
  }
  w.Gauge("snaphaven_commitlog_segments_waiting",
          "Commitlog segments left in the archive directory after the last cycle (all of "
          "them without --move-snapshots): what the archive holds on the commitlog disk.",
          c.segments_waiting);
  w.Gauge("snaphaven_commitlog_bytes_waiting",
          "Bytes of the commitlog segments left in the archive directory.", c.bytes_waiting);
  w.Gauge("snaphaven_commitlog_segments_failed",
          "Segments of the archive that failed verification in the last cycle (quarantined "
          "at the destination, kept at the source, named in the log).",
          c.segments_failed);
}

}  // namespace

absl::flat_hash_map<std::string, double> ReadMetricSamples(absl::string_view text) {
  absl::flat_hash_map<std::string, double> samples;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    if (absl::StartsWith(line, "#")) continue;
    std::vector<absl::string_view> parts = absl::StrSplit(line, ' ');
    double value = 0;
    if (parts.size() == 2 && absl::SimpleAtod(parts[1], &value)) {
      samples[std::string(parts[0])] = value;
    }
  }
  return samples;
}

std::string RenderMetrics(const CycleStats& stats, int exit_code, const Manifest* manifest,
                          const absl::flat_hash_map<std::string, double>& previous,
                          absl::Time now) {
  Writer w;
  const double start = absl::ToDoubleSeconds(stats.started - absl::UnixEpoch());
  w.Gauge("snaphaven_last_cycle_start_timestamp_seconds", "When the last cycle started.", start);
  w.Gauge("snaphaven_last_cycle_end_timestamp_seconds", "When the last cycle ended.",
          absl::ToDoubleSeconds(now - absl::UnixEpoch()));
  double last_success = 0;
  if (exit_code == 0) {
    last_success = absl::ToDoubleSeconds(now - absl::UnixEpoch());
  } else if (auto it = previous.find("snaphaven_last_success_timestamp_seconds");
             it != previous.end()) {
    last_success = it->second;
  }
  w.Gauge("snaphaven_last_success_timestamp_seconds",
          "When a cycle last ended with all planned work done (exit 0).", last_success);
  w.Gauge("snaphaven_last_cycle_duration_seconds", "How long the last cycle took.",
          absl::ToDoubleSeconds(stats.duration));
  w.Gauge("snaphaven_last_cycle_exit_code",
          "0 all done, 1 some files failed, 2 bad configuration, 75 locked.", exit_code);
  w.Counter("snaphaven_files_copied_total", "Files copied.", stats.copied, previous);
  w.Counter("snaphaven_bytes_copied_total", "Bytes copied.", stats.bytes_copied, previous);
  w.Counter("snaphaven_files_linked_total", "Files hard-linked to a copy of the same inode.",
            stats.linked, previous);
  w.Counter("snaphaven_files_moved_total", "Source files deleted after their copy (move mode).",
            stats.moved, previous);
  w.Counter("snaphaven_files_pruned_total",
            "Live-mirror files removed after their sstable was compacted away.", stats.pruned,
            previous);
  w.Counter("snaphaven_files_failed_total", "Files that failed (named in the log).",
            stats.failed, previous);
  w.Counter("snaphaven_files_skipped_total",
            "Files skipped in flight (vanished or changed during their copy).", stats.skipped,
            previous);
  w.Counter("snaphaven_cycles_total", "Cycles run.", 1, previous);
  w.Gauge("snaphaven_held_back_files",
          "Source files of sstables the last cycle did not mirror (in flight, incomplete, "
          "temporary; each named in the log once stuck).",
          stats.held_back_files);
  w.Gauge("snaphaven_held_back_snapshots",
          "Snapshots move mode kept at the source in the last cycle (incomplete, settling).",
          stats.held_back_snapshots);
  w.Gauge("snaphaven_pending_files", "Files planned but not done by the last cycle (backlog).",
          stats.pending_files);
  w.Gauge("snaphaven_pending_bytes", "Bytes planned but not copied by the last cycle (backlog).",
          stats.pending_bytes);
  if (stats.commitlog.enabled) RenderCommitlogMetrics(w, stats.commitlog, previous, now);
  if (manifest != nullptr) {
    // Unique bytes: hard links (one source inode) count once.
    const int64_t bytes = manifest->UniqueBytes();
    w.Gauge("snaphaven_destination_files", "Files recorded at the destination.",
            static_cast<double>(manifest->size()));
    w.Gauge("snaphaven_destination_bytes",
            "Bytes at the destination, hard-linked files counted once.",
            static_cast<double>(bytes));
  }
  return w.Take();
}

absl::Status WriteMetricsFile(FileSystem& fs, const std::string& path, const CycleStats& stats,
                              int exit_code, const Manifest* manifest) {
  absl::StatusOr<std::string> old = fs.ReadFile(path);
  absl::flat_hash_map<std::string, double> previous;
  if (old.ok()) previous = ReadMetricSamples(*old);
  return fs.WriteFileAtomically(
      path, RenderMetrics(stats, exit_code, manifest, previous, absl::Now()));
}

}  // namespace snaphaven
