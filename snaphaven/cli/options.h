// The validated configuration of a run. Everything a user can get wrong is
// checked here, before anything is created or changed, and reported as one
// InvalidArgument line naming the culprit (main exits 2 on it).

#ifndef SNAPHAVEN_OPTIONS_H_
#define SNAPHAVEN_OPTIONS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/optional.h"
#include "re2/re2.h"
#include "snaphaven/storage/file_system.h"
#include "snaphaven/storage/process_priority.h"

namespace snaphaven {

// The flags as given.
struct RawOptions {
  std::string snapshot_dir;
  std::string cassandra_dir = "/var/lib/cassandra";
  std::string snapshot_regex;
  std::string interval = "0";
  int verbosity = 0;
  bool quiet = false;
  bool fullsync = false;
  bool move_snapshots = false;
  bool sync_sstables = false;
  bool sync_backups = false;
  std::string settle_time = "10s";
  std::string prune_after = "1h";
  std::string stuck_after = "1h";
  double verify_sample = 0;
  std::string max_bandwidth;  // "" : unlimited
  std::string io_priority = "idle";
  std::string progress_interval = "10s";
  int copy_threads = 2;
  int scan_threads = 1;
  // --list reads only the destination: no data root, keyspaces optional,
  // the destination must exist.
  bool list_only = false;
  // --list --cluster: -s names a root holding one destination per node.
  bool cluster = false;
  // --all_keyspaces: every keyspace directory of the data roots (system
  // keyspaces included) instead of named keyspaces.
  bool all_keyspaces = false;
  // --restore TAG --restore_to DIR: reads the destination, writes DIR.
  std::string restore_tag;
  std::string restore_to;
  // --restore_until "YYYY-MM-DD HH:MM:SS[.ffffff]" (UTC): with --restore,
  // also stage the archived commitlog segments to reach that time.
  std::string restore_until;
  int keep_snapshots = 0;
  std::string keep_for = "0";
  std::string hostname;  // what %h in --snapshot_dir becomes
  bool verify = false;
  bool json = false;
  bool checksum = true;
  bool dry_run = false;
  bool require_destination = false;
  bool adopt_destination = false;
  std::string metrics_file;
  std::string commitlog_archive;  // "" : none
  std::vector<std::string> keyspaces;
};

// What a run does: one of these, decided once from the flags.
enum class RunMode {
  kSync,     // cycles (the default)
  kVerify,   // --verify (with --fullsync: and repair)
  kList,     // --list: reads only the destination
  kRestore,  // --restore TAG --restore_to DIR
};

// What ValidateOptions returns; a default Options holds the flags' defaults
// (tests fill in the rest). Read where it is needed, never copied into a
// second configuration: the Syncer holds it by reference (cycle.h).
struct Options {
  RunMode mode = RunMode::kSync;
  std::vector<std::string> data_roots;  // resolved, absolute
  std::string destination;              // absolute, symlinks resolved
  // Named, or with all_keyspaces those found in the data roots when the run
  // started (a cycle looks again), or empty (--list, --restore: all).
  std::vector<std::string> keyspaces;
  bool all_keyspaces = false;
  bool cluster = false;  // --list --cluster: `destination` is the cluster root
  std::unique_ptr<RE2> tag_filter;  // null: every tag
  absl::Duration interval;          // zero: one cycle
  // -v in effect: 0 with --quiet (2: log every decision).
  int verbosity = 0;
  bool quiet = false;
  bool fullsync = false;        // first cycle (or --verify: repair) only
  bool move_snapshots = false;  // delete complete snapshots (and backups) once copied
  bool sync_sstables = false;   // also mirror live sstables
  bool sync_backups = false;    // also mirror backups/
  absl::Duration settle_time = absl::Seconds(10);
  absl::Duration prune_after = absl::Hours(1);
  // Something held back whose newest file is older than this is stuck, not
  // on its way: it is named in a warning at the default verbosity.
  absl::Duration stuck_after = absl::Hours(1);
  // Each cycle also re-reads this share (percent) of the files already at
  // the destination, continuing where the last cycle stopped.
  double verify_sample = 0;
  int64_t max_bandwidth = 0;  // bytes per second; 0: unlimited
  IoPriority io_priority = IoPriority::kIdle;
  absl::Duration progress_interval = absl::Seconds(10);
  int copy_threads = 2;
  int scan_threads = 1;
  std::string restore_tag;
  std::string restore_to;
  absl::optional<absl::Time> restore_until;  // none: no point in time
  int keep_snapshots = 0;
  absl::Duration keep_for;  // zero: no limit
  bool json = false;      // --list: JSON for scripts
  bool checksum = true;   // --nochecksum: benchmarks only
  bool dry_run = false;
  bool require_destination = false;
  bool adopt_destination = false;
  std::string metrics_file;  // "": none
  // --commitlog_archive: the directory Cassandra's archive_command fills,
  // absolute and resolved; "" for none. Sync cycles and --verify only.
  std::string commitlog_archive;
};

// "90s", "5m", "1h30m", "0" (abseil syntax) for the flag --`flag`; negative
// or malformed is an error naming the flag.
absl::StatusOr<absl::Duration> ParseDurationFlag(absl::string_view flag,
                                                 const std::string& text);

// Picks the data root inside a Cassandra home or accepts a data root: the
// first of DIR, DIR/data, DIR/data/data that holds one of the keyspaces.
absl::StatusOr<std::string> FindDataRoot(FileSystem& fs, const std::string& dir,
                                         const std::vector<std::string>& keyspaces);

absl::StatusOr<Options> ValidateOptions(FileSystem& fs, const RawOptions& raw);

}  // namespace snaphaven

#endif  // SNAPHAVEN_OPTIONS_H_
