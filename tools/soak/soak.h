// The soak run: a generated Cassandra tree, a Churner imitating a busy node
// on it, and snaphaven running beside it in loop mode with every feature on
// (--move-snapshots --sync-sstables --sync_backups). When the churn stops,
// snaphaven gets a few more cycles, is stopped with SIGTERM, and runs one
// final one-shot cycle; then the run is judged:
//  (a) no cycle failed, except where every error names a source file the
//      churner deleted or replaced and says it was gone (transient);
//  (b) no aborted, in-flight or never-committed sstable ever appears in the
//      destination's live mirror (checked every 0.5 s and at the end);
//  (c) the destination is what the final source requires: live committed
//      sstables, snapshots still at the source, snapshots moved away
//      (complete), backups;
//  (d) memory stayed flat: the peak RSS of the last third of the run is at
//      most 1.5 x that of the first third + 2 MiB.
// Used by soak_main.cc (//tools/soak:soak) and soak_test.cc.

#ifndef SNAPHAVEN_TOOLS_SOAK_SOAK_H_
#define SNAPHAVEN_TOOLS_SOAK_SOAK_H_

#include <cstdint>
#include <ostream>
#include <string>

#include "absl/time/time.h"
#include "tools/soak/churn.h"
#include "tools/tree_generator.h"

namespace snaphaven::soak {

struct SoakOptions {
  std::string binary;  // the snaphaven executable
  absl::Duration duration = absl::Minutes(10);  // of the churn
  // Holds cassandra/data (the source), backup (the destination), the logs
  // and rss.tsv. Created if missing; "" makes a new /tmp/soak_XXXXXX. Must
  // not hold an earlier run.
  std::string workdir;
  uint32_t seed = 1;
  absl::Duration interval = absl::Seconds(1);  // snaphaven's --interval
  absl::Duration settle_time = absl::Seconds(2);  // snaphaven's --settle_time
  // The initial tree (its seed is replaced by `seed`).
  tools::TreeSpec tree = DefaultTree();
  // The churn (data_root, keyspaces and seed are filled in).
  ChurnOptions churn;
  absl::Duration sample_every = absl::Milliseconds(200);
  absl::Duration check_every = absl::Milliseconds(500);
  // Cycles snaphaven gets once the churn stopped and settle_time passed.
  int final_cycles = 3;

  static tools::TreeSpec DefaultTree();
};

struct SoakSummary {
  bool passed = false;
  int64_t cycles = 0;      // summary lines, loop and final one-shot
  int64_t failed = 0;      // failed cycles not excused as transient
  int64_t violations = 0;  // of (b), (c), (d), and process misbehaviour
  int64_t peak_rss_kib = 0;
  std::string final_line;  // "soak: 10m, ... KiB"
};

// Runs the soak, writing the report to `out`; the last line is
// SoakSummary::final_line.
SoakSummary RunSoak(const SoakOptions& options, std::ostream& out);

}  // namespace snaphaven::soak

#endif  // SNAPHAVEN_TOOLS_SOAK_SOAK_H_
