// The Prometheus text-format file for node_exporter's textfile collector,
// written atomically after every cycle (--metrics_file). Counters (_total)
// carry on from the previous file, so they keep growing across cron runs.

#ifndef SNAPHAVEN_METRICS_H_
#define SNAPHAVEN_METRICS_H_

#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "snaphaven/ops/report.h"
#include "snaphaven/storage/file_system.h"
#include "snaphaven/state/manifest.h"

namespace snaphaven {

// Samples of a previous metrics file, by "name{labels}"; unparseable lines
// are ignored (a fresh start is better than no metrics).
absl::flat_hash_map<std::string, double> ReadMetricSamples(absl::string_view text);

// Renders the metrics after `stats` (its exit code `exit_code`) given the
// previous file's samples and the destination's manifest.
std::string RenderMetrics(const CycleStats& stats, int exit_code, const Manifest* manifest,
                          const absl::flat_hash_map<std::string, double>& previous,
                          absl::Time now);

// Reads the previous file at `path` (if any), renders, replaces atomically.
absl::Status WriteMetricsFile(FileSystem& fs, const std::string& path, const CycleStats& stats,
                              int exit_code, const Manifest* manifest);

}  // namespace snaphaven

#endif  // SNAPHAVEN_METRICS_H_
