// snaphaven: keeps a current copy of a Cassandra node's snapshots in another
// directory. Flags and logging are set up here and nowhere else; the work is
// done by Syncer (cycle.h).

#include <gflags/gflags.h>
#include <glog/logging.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "snaphaven/ops/cluster_lister.h"
#include "snaphaven/cli/command_line.h"
#include "snaphaven/cycle/cycle.h"
#include "snaphaven/ops/lister.h"
#include "snaphaven/state/manifest_store.h"
#include "snaphaven/ops/metrics.h"
#include "snaphaven/state/node_record.h"
#include "snaphaven/cli/options.h"
#include "snaphaven/storage/process_priority.h"
#include "snaphaven/commitlog/pitr.h"
#include "snaphaven/ops/restore.h"
#include "snaphaven/ops/restore_procedure.h"

DEFINE_string(snapshot_dir, "",
              "Destination root (required); created if missing.");
DEFINE_string(cassandra_dir, "/var/lib/cassandra",
              "Cassandra home holding data/, or a data root itself; symlinks are "
              "resolved. A comma-separated list gives several data roots.");
DEFINE_string(snapshot_regex, "",
              "RE2 pattern searched (unanchored) in each snapshot tag; only "
              "matching snapshots are copied. Empty: all.");
DEFINE_bool(fullsync, false,
            "Do not trust the manifest for the first cycle: check every "
            "destination file against the source, recopy what differs, rewrite "
            "the manifest from the destination.");
DEFINE_string(interval, "0",
              "Loop: start a cycle this long after the previous one started "
              "(90s, 5m, 1h). 0: run one cycle and exit.");
DEFINE_bool(quiet, false, "Log errors only.");
DEFINE_bool(move_snapshots, false,
            "Move mode (also --move-snapshots): once every file of a complete "
            "snapshot is durably copied and recorded, delete it at the source "
            "(and copied backups with --sync_backups). Live sstables are never "
            "deleted.");
DEFINE_bool(sync_sstables, false,
            "Also mirror the live sstables (also --sync-sstables): committed, "
            "complete ones only, to <dest>/<keyspace>/<table>/. Sstables "
            "compacted away are pruned from the mirror after --prune_after.");
DEFINE_bool(sync_backups, false,
            "Also mirror incremental backups (backups/) once each sstable is "
            "complete and unchanged for --settle_time.");
DEFINE_bool(verify, false,
            "Instead of a cycle: read every file the manifest records for the "
            "keyspaces at the destination, check it against its recorded CRC-32 "
            "and, for Data.db, its sstable's digest; report missing, changed, "
            "corrupt and unknown files, and each directory it cannot search "
            "for unknown ones (N unreadable). Copies and deletes nothing (with "
            "--fullsync: copies again every file that failed). Exit 0 when all "
            "is well.");
DEFINE_double(verify_sample, 0,
              "Percent of the files already at the destination that each cycle "
              "re-reads and checks, in turn, so every file is re-checked over time.");
DEFINE_bool(checksum, true,
            "Compute a CRC-32 of every copy (from the bytes as copied) and check "
            "each Data.db against its sstable's digest. --nochecksum is for "
            "benchmarks only.");
DEFINE_bool(list, false,
            "List the snapshot copies held at the destination for the named "
            "keyspaces (all with none named): keyspace, table, tag, files, unique "
            "bytes, complete or not. Reads the destination, and the data roots it "
            "records (else -d's) to tell an incomplete copy whose snapshot is gone "
            "from the source.");
DEFINE_bool(json, false, "With --list: print JSON for scripts.");
DEFINE_bool(cluster, false,
            "With --list: -s names a root holding one destination per node (what "
            "-s /nas/cassandra/%h makes; a last component with %h is dropped). "
            "One row per snapshot tag: on how many nodes it is complete, of how "
            "many, and per incomplete node the tables missing; then each node's "
            "newest archived commitlog segment and its age. Reads only the "
            "destinations.");
DEFINE_bool(all_keyspaces, false,
            "Instead of naming keyspaces: every keyspace directory of the data "
            "roots, system keyspaces included (so system.local and the schema "
            "travel with the data), looked for again each cycle. --verify, "
            "retention, --list and --restore then cover every keyspace at the "
            "destination.");
DEFINE_string(restore, "",
              "Restore the snapshot copies with this tag, for the named keyspaces "
              "(all with none named: the whole node), from the destination into "
              "--restore_to, verified against the manifest and the sstables' "
              "digests; prints the commands (for a whole node, the procedure) that "
              "finish the restore. Run again after an interruption, it keeps what "
              "is already staged and verified and copies the rest.");
DEFINE_string(restore_to, "",
              "With --restore: the directory to restore into "
              "(<dir>/<keyspace>/<table dir>/); never inside a live data root.");
DEFINE_string(restore_until, "",
              "With --restore: a UTC time, \"YYYY-MM-DD HH:MM:SS[.ffffff]\", between "
              "the snapshot and the newest archived commitlog segment. Also stages, "
              "verified, in <restore_to>/commitlog_restore/ every segment of "
              "<dest>/commitlog_archive/ written to since the snapshot, and prints "
              "the point-in-time procedure with its commitlog_archiving.properties "
              "lines.");
DEFINE_int32(keep_snapshots, 0,
             "Retention at the destination: keep the newest N complete copies of "
             "snapshots per table that are gone from the source; 0: no limit.");
DEFINE_string(keep_for, "0",
              "Retention at the destination: drop complete copies of snapshots gone "
              "from the source once older than this (age from manifest.json's "
              "created_at, else the copy time); 0: no limit.");
DEFINE_bool(require_destination, false,
            "Refuse to start (exit 2) unless the destination already holds "
            "snaphaven's identity marker (<dest>/.snaphaven/id): use it after the "
            "first run, so an unmounted NAS (an empty mount point) is never taken "
            "for a new destination and filled on the wrong disk.");
DEFINE_bool(adopt_destination, false,
            "Take over a destination recorded as another Cassandra instance's "
            "(another host, or data roots sharing none with the recorded ones), "
            "after replacing a node. Without it such a run refuses with exit 2. "
            "Roots that overlap (a disk added or removed) update the record "
            "with a warning.");
DEFINE_string(metrics_file, "",
              "After every cycle, write this Prometheus text-format file "
              "(atomically) for node_exporter's textfile collector.");
DEFINE_string(progress_interval, "10s",
              "During a cycle with copies to make, a progress line this often "
              "(a single self-updating line when stderr is a terminal).");
DEFINE_bool(dry_run, false,
            "Print the plan (every copy, link, move, delete and prune, with "
            "sizes, and the totals), then exit: nothing changes at the "
            "destination or the source, the manifest included.");
DEFINE_string(max_bandwidth, "",
              "Cap on bytes written per second across all copies (restores "
              "too), e.g. 50MiB, 1GB, 100M. Empty: unlimited.");
DEFINE_int32(copy_threads, 2,
             "Copies and links in flight at once (1 to 64): overlaps the fsync "
             "latency of many small files and of a slow NAS.");
DEFINE_int32(scan_threads, 1,
             "Table directories scanned at once (1 to 64). One suits a local "
             "disk; a few hide the latency of a source on NFS.");
DEFINE_string(io_priority, "idle",
              "I/O scheduling class: idle (only when the disk is otherwise idle), "
              "best-effort (lowest level) or normal. idle and best-effort also "
              "lower the CPU priority (nice 10).");
DEFINE_string(settle_time, "10s",
              "A snapshot's manifest.json (or a backup sstable) must be this old "
              "before move mode deletes it (or a backup sstable, or an archived "
              "commitlog segment, is copied).");
DEFINE_string(stuck_after, "1h",
              "Anything held back (an sstable not mirrored, a snapshot move mode "
              "keeps) whose newest file is older than this is named, with the "
              "reason, in a warning at the default verbosity; every cycle counts "
              "all of it in its summary (\"N held back\") and the metrics.");
DEFINE_string(commitlog_archive, "",
              "The directory Cassandra's archive_command fills "
              "(commitlog_archiving.properties: archive_command=/bin/ln %path DIR/%name). "
              "Every cycle verifies each segment older than --settle_time and mirrors it "
              "to <dest>/commitlog_archive/; one that fails is reported, copied to "
              "<dest>/commitlog_archive/quarantine/ and kept at the source (exit 1). With "
              "--move-snapshots a mirrored segment is removed from DIR. With --verify the "
              "mirrored segments are checked too; --list and --restore refuse it.");
DEFINE_string(prune_after, "1h",
              "With --sync_sstables: remove a live sstable from the destination "
              "mirror once it has been gone from the source this long.");

namespace snaphaven {
namespace {

constexpr char kVersion[] = "snaphaven 0.1.0";
constexpr int kExitUsage = 2;
constexpr int kExitLocked = 75;  // EX_TEMPFAIL: cron may simply retry

std::atomic<bool> stop_requested{false};

void RequestStop(int) { stop_requested.store(true); }

// Writes "2026-11-27 01:40:00.123 W message" to stderr instead of glog's
// file:line prefix: the reader is an operator, not a developer. (Debian's
// glog lacks the custom-prefix hook, so this is a sink.)
class OperatorLogSink : public google::LogSink {
 public:
  void send(google::LogSeverity severity, const char*, const char*, int,
            const struct ::tm* t, const char* message, size_t length) override {
    std::string line = absl::StrFormat(
        "%04d-%02d-%02d %02d:%02d:%02d %c %s\n", 1900 + t->tm_year, 1 + t->tm_mon,
        t->tm_mday, t->tm_hour, t->tm_min, t->tm_sec,
        google::GetLogSeverityName(severity)[0], absl::string_view(message, length));
    (void)!write(STDERR_FILENO, line.data(), line.size());
  }
};

void SetUpLogging(const char* argv0, bool quiet) {
  FLAGS_logtostderr = false;
  FLAGS_alsologtostderr = false;
  FLAGS_stderrthreshold = google::GLOG_FATAL;
  FLAGS_minloglevel = quiet ? google::GLOG_ERROR : google::GLOG_INFO;
  if (quiet) FLAGS_v = 0;
  google::InitGoogleLogging(argv0);
  // No log files: everything goes through the sink to stderr.
  for (int severity = 0; severity < google::NUM_SEVERITIES; ++severity) {
    google::SetLogDestination(severity, "");
  }
  static OperatorLogSink* const sink = new OperatorLogSink();
  google::AddLogSink(sink);
}

int UsageError(absl::string_view message) {
  std::cerr << "snaphaven: " << message << "\n"
            << "usage: snaphaven [flags] -s SNAPSHOT_DIR {keyspace [keyspace ...] | "
               "--all_keyspaces}; see snaphaven --help\n";
  return kExitUsage;
}

// The placeholder shown for a flag's value in --help.
std::string MetaVariable(absl::string_view flag) {
  if (absl::EndsWith(flag, "_dir")) return "DIR";
  if (flag == "snapshot_regex") return "REGEX";
  if (flag == "interval" || flag == "settle_time" || flag == "prune_after" ||
      flag == "stuck_after" ||
      flag == "progress_interval") {
    return "DURATION";
  }
  if (flag == "metrics_file") return "PATH";
  if (flag == "commitlog_archive") return "DIR";
  if (flag == "restore_to") return "DIR";
  if (flag == "restore") return "TAG";
  if (flag == "restore_until") return "TIME";
  if (flag == "keep_for") return "DURATION";
  if (flag == "verify_sample") return "PERCENT";
  if (flag == "max_bandwidth") return "BYTES/s";
  if (flag == "io_priority") return "CLASS";
  return "VALUE";
}

// Indents a flag description by 6 and wraps it at 79 columns.
std::string Wrap(absl::string_view text) {
  std::string out, line;
  for (absl::string_view word : absl::StrSplit(text, ' ', absl::SkipEmpty())) {
    if (!line.empty() && line.size() + 1 + word.size() > 73) {
      absl::StrAppend(&out, "      ", line, "\n");
      line.clear();
    }
    absl::StrAppend(&line, line.empty() ? "" : " ", word);
  }
  if (!line.empty()) absl::StrAppend(&out, "      ", line, "\n");
  return out;
}

void PrintHelp() {
  std::cout << "usage: snaphaven [-h] [-q] [-v {0,1,2}] [--move-snapshots] [--sync-sstables]\n"
               "                 [--sync_backups] [-d CASSANDRA_DIR] -s SNAPSHOT_DIR [--fullsync]\n"
               "                 [--snapshot_regex REGEX] [--interval DURATION] [--verify]\n"
               "                 [--commitlog_archive DIR] [--dry_run] [flags below]\n"
               "                 {keyspace [keyspace ...] | --all_keyspaces}\n"
               "       snaphaven -s SNAPSHOT_DIR --list [--json] [keyspace ...]\n"
               "       snaphaven -s ROOT --list --cluster [--json] [keyspace ...]\n"
               "       snaphaven -s SNAPSHOT_DIR --restore TAG --restore_to DIR\n"
               "                 [--restore_until TIME] [keyspace ...]\n\n"
               "Keeps a current, durable copy of a Cassandra node's snapshots in another\n"
               "directory. Each cycle scans <data root>/<keyspace>/<table>/snapshots/ and\n"
               "copies (or hard-links) only what the destination lacks.\n\n"
               "flags:\n";
  std::vector<gflags::CommandLineFlagInfo> flags;
  gflags::GetAllFlags(&flags);
  for (const gflags::CommandLineFlagInfo& flag : flags) {
    if (flag.filename != __FILE__) continue;
    std::string shortform;
    for (char c : std::string("sdq")) {
      if (LongNameForShort(c) == flag.name) shortform = absl::StrCat("-", std::string(1, c), ", ");
    }
    std::string value = flag.type == "bool" ? "" : absl::StrCat(" ", MetaVariable(flag.name));
    std::cout << absl::StrFormat("  %s--%s%s  (default: %s)\n%s", shortform, flag.name, value,
                                 flag.default_value.empty() ? "\"\"" : flag.default_value,
                                 Wrap(flag.description));
  }
  std::cout << "  -v N, --v N  (default: 0)\n"
            << Wrap("Verbosity: 0 one summary line per cycle; 1 also every file copied or "
                    "linked; 2 also every decision and why.")
            << "  -h, --help\n      Show this help and exit.\n"
               "  --version\n      Print the version and exit.\n\n"
               "exit codes: 0 all planned work done; 1 some files failed (each logged);\n"
               "2 bad usage or configuration (nothing touched); 75 destination locked by\n"
               "another snaphaven.\n";
}

std::string HostName() {
  char name[256] = {0};
  if (gethostname(name, sizeof(name) - 1) != 0) return "unknown-host";
  return name;
}

// The destination's manifest, or one line saying why not. Lazily loaded,
// its sections are read in by the Load calls of those who read it.
absl::StatusOr<StoredManifest> LoadManifestOrSay(FileSystem& fs, const StateDir& state,
                                                 StoredManifest::Loading loading) {
  absl::StatusOr<StoredManifest> manifest = StoredManifest::Load(fs, state.manifest, loading);
  if (!manifest.ok()) {
    std::cerr << "snaphaven: cannot read the manifest " << state.manifest << ": "
              << manifest.status().message() << "\n";
  }
  return manifest;
}

// --list: reads the manifest and the destination, nothing else.
int ListDestination(const Options& options) {
  std::unique_ptr<FileSystem> confined = NewConfinedFileSystem({options.destination}, {});
  FileSystem& fs = *confined;
  StateDir state(options.destination);
  absl::StatusOr<StoredManifest> manifest =
      LoadManifestOrSay(fs, state, StoredManifest::Loading::kLazy);
  if (!manifest.ok()) return 1;
  // Where to tell whether an incomplete copy's snapshot has vanished from
  // the source: the data roots recorded for the destination, else -d's.
  absl::StatusOr<std::vector<SnapshotCopy>> copies =
      ListSnapshotCopies(fs, *manifest, options.destination, options.keyspaces,
                         ListingDataRoots(fs, options.destination, options.data_roots));
  if (!copies.ok()) {
    // A section could not be read back: the listing would lack copies.
    std::cerr << "snaphaven: cannot read the manifest " << state.manifest << ": "
              << copies.status().message() << "\n";
    return 1;
  }
  std::cout << (options.json ? FormatSnapshotJson(*copies) : FormatSnapshotTable(*copies));
  return 0;
}

// --list --cluster: reads the destinations under the root, nothing else.
int ListClusterRoot(const Options& options) {
  absl::StatusOr<ClusterView> view =
      ListCluster(*DefaultFileSystem(), options.destination, options.keyspaces, absl::Now());
  if (!view.ok()) {
    std::cerr << "snaphaven: cannot list the cluster root " << options.destination << ": "
              << view.status().message() << "\n";
    return 1;
  }
  for (const std::string& warning : view->warnings) LOG(WARNING) << warning;
  for (const std::string& error : view->errors) LOG(ERROR) << error;
  std::cout << (options.json ? FormatClusterJson(*view) : FormatClusterTable(*view));
  return view->errors.empty() ? 0 : 1;
}

// --restore_until: the segments to stage, checked before anything is
// written. Returns 0 to go on, else the exit code after one line.
int PlanPointInTime(FileSystem& fs, const Options& options,
                    std::vector<commitlog::ArchivedSegment>* segments) {
  absl::StatusOr<commitlog::SnapshotTime> snapshot = commitlog::FindSnapshotTime(
      fs, options.destination, options.restore_tag, options.keyspaces);
  if (!snapshot.ok()) {
    std::cerr << "snaphaven: " << snapshot.status().message() << "\n";
    return kExitUsage;
  }
  absl::StatusOr<std::vector<commitlog::ArchivedSegment>> all =
      commitlog::ListArchivedSegments(fs, options.destination);
  if (!all.ok()) {
    std::cerr << "snaphaven: cannot list the archived segments: " << all.status().message() << "\n";
    return 1;
  }
  absl::Status in_range = commitlog::CheckRestorePoint(*options.restore_until, *snapshot, *all,
                                                       options.restore_tag);
  if (!in_range.ok()) {
    std::cerr << "snaphaven: " << in_range.message() << "\n";
    return kExitUsage;
  }
  *segments = commitlog::SegmentsSince(*all, snapshot->time);
  absl::StatusOr<std::string> root =
      ResolveMaybeMissing(fs, options.restore_to, "restore directory");
  const std::string conflict =
      root.ok() ? commitlog::SegmentConflicts(fs, *root, *segments) : std::string();
  if (!conflict.empty()) {
    std::cerr << "snaphaven: restore failed: " << conflict << "\n";
    return kExitUsage;
  }
  LOG(INFO) << "snapshot '" << options.restore_tag << "' was taken at "
            << commitlog::FormatUtc(snapshot->time) << " (" << snapshot->source << "); "
            << segments->size() << " of " << all->size()
            << " archived segments were written to since";
  return 0;
}

// The host the destination records, or "".
std::string RecordedHost(FileSystem& fs, const std::string& destination) {
  absl::StatusOr<std::string> text = fs.ReadFile(StateDir(destination).node);
  if (!text.ok()) return "";
  absl::StatusOr<NodeRecord> record = ParseNodeRecord(*text);
  return record.ok() ? record->host : "";
}

// Stages the planned segments; fills the procedure's point-in-time part.
// Returns 0, else the exit code after one line.
int StageForPointInTime(FileSystem& fs, const Options& options, const RestoreResult& restored,
                        const std::vector<commitlog::ArchivedSegment>& segments,
                        ProcedureInput* procedure) {
  absl::StatusOr<commitlog::StagedSegments> staged = commitlog::StageSegments(
      fs, segments, restored.restore_root, JoinPath(restored.restore_root, kRestoreTempDirName));
  if (!staged.ok()) {
    std::cerr << "snaphaven: restore failed: " << staged.status().message() << "\n";
    return staged.status().code() == absl::StatusCode::kAlreadyExists ? kExitUsage : 1;
  }
  if (options.verbosity >= 1) {
    for (const std::string& note : staged->notes) LOG(INFO) << note;
  }
  LOG(INFO) << "staged " << staged->names.size() << " commitlog segments (" << staged->bytes
            << " bytes) in " << staged->dir << ", verified: " << staged->copied << " copied, "
            << staged->kept << " already there and kept";
  procedure->segments_dir = staged->dir;
  procedure->staged_segments = staged->names;
  procedure->until = *options.restore_until;
  procedure->segment_version = staged->max_version;
  procedure->restore_point_in_time =
      commitlog::FormatRestorePointInTime(*options.restore_until, staged->max_version);
  return 0;
}

// --restore: copies a tag's snapshot copies out of the destination,
// verified, under the destination's lock (nothing changes there); with
// --restore_until also the commitlog segments since the snapshot.
int RestoreFromDestination(const Options& options) {
  // Reads of the destination and writes into the restore directory, each
  // beneath its root (NewConfinedFileSystem).
  std::vector<std::string> roots = {options.destination};
  absl::StatusOr<std::string> restore_root =
      ResolveMaybeMissing(*DefaultFileSystem(), options.restore_to, "restore directory");
  if (restore_root.ok()) roots.push_back(*restore_root);  // else RestoreSnapshot says why
  std::unique_ptr<FileSystem> confined = NewConfinedFileSystem(roots, {});
  FileSystem& fs = *confined;
  StateDir state(options.destination);
  absl::StatusOr<std::unique_ptr<FileLock>> lock = fs.TryLock(state.lock);
  if (!lock.ok()) {
    std::cerr << "snaphaven: " << lock.status().message() << "\n";
    return lock.status().code() == absl::StatusCode::kFailedPrecondition ? kExitLocked : 1;
  }
  absl::StatusOr<StoredManifest> manifest =
      LoadManifestOrSay(fs, state, StoredManifest::Loading::kLazy);
  if (!manifest.ok()) return 1;
  std::vector<commitlog::ArchivedSegment> segments;
  if (options.restore_until.has_value()) {
    if (int code = PlanPointInTime(fs, options, &segments); code != 0) return code;
  }
  absl::StatusOr<RestoreResult> result = RestoreSnapshot(fs, *manifest, options);
  if (!result.ok()) {
    std::cerr << "snaphaven: restore failed: " << result.status().message() << "\n";
    const absl::StatusCode code = result.status().code();
    return code == absl::StatusCode::kInvalidArgument || code == absl::StatusCode::kAlreadyExists
               ? kExitUsage
               : 1;
  }
  for (const std::string& warning : result->warnings) LOG(WARNING) << warning;
  LOG(INFO) << "restored " << result->files << " files (" << result->bytes << " bytes) of "
            << result->tables.size() << " tables into " << result->restore_root << ", verified; "
            << result->kept_files << " files (" << result->kept_bytes
            << " bytes) already there from an interrupted restore were checked and kept";
  ProcedureInput procedure{options.restore_tag, result->restore_root, result->tables,
                           options.keyspaces.empty(), RecordedHost(fs, options.destination)};
  if (options.restore_until.has_value()) {
    if (int code = StageForPointInTime(fs, options, *result, segments, &procedure); code != 0) {
      return code;
    }
  }
  if (procedure.whole_node || !procedure.staged_segments.empty()) {
    for (const std::string& line : RestoreProcedure(procedure)) std::cout << line << "\n";
  }
  if (procedure.staged_segments.empty()) {
    if (procedure.whole_node) {
      std::cout << "# Or load the tables into a running node (no point in time):\n";
    }
    for (const std::string& command : result->commands) std::cout << command << "\n";
  }
  return 0;
}

// A destination records the Cassandra instance it belongs to: its host and
// data roots (<dest>/.snaphaven/node; the rules are in node_record.h). Many
// nodes, and instances, share one NAS: one must never write into another's.
// Called twice: with `refuse_only` before anything at the destination
// changes, so a refused run leaves it exactly as it was; then under the
// lock, to record this instance (never in a dry run). Returns 0 to go on,
// else the exit code after one clear line.
int CheckNodeIdentity(FileSystem& fs, const StateDir& state, const Options& options,
                      bool refuse_only) {
  const std::string& path = state.node;
  absl::optional<std::string> recorded;
  absl::StatusOr<std::string> text = fs.ReadFile(path);
  if (text.ok()) {
    recorded = *std::move(text);
  } else if (!IsVanished(text.status())) {
    if (refuse_only) return 0;  // said under the lock (a missing destination, a file...)
    std::cerr << "snaphaven: cannot read the node record " << path << ": "
              << text.status().message() << "\n";
    return 1;
  }
  const NodeDecision decision =
      DecideNodeRecord(recorded, NodeRecord{HostName(), options.data_roots}, options.destination,
                       options.adopt_destination);
  if (decision.action == NodeAction::kRefuse) {
    std::cerr << "snaphaven: " << decision.refusal << "\n";
    return kExitUsage;
  }
  if (refuse_only || decision.action == NodeAction::kKeep) return 0;
  if (!decision.warning.empty()) {
    LOG(WARNING) << decision.warning << (options.dry_run ? " (dry run: not recorded)" : "");
  } else if (!decision.note.empty() && !options.dry_run) {
    VLOG(1) << decision.note;
  }
  if (!options.dry_run) {
    absl::Status written = fs.WriteFileAtomically(path, decision.record);
    if (!written.ok()) LOG(WARNING) << "cannot record the node in " << path << ": "
                                    << written.message();
  }
  return 0;
}

absl::optional<FlagKind> LookupFlag(absl::string_view name) {
  gflags::CommandLineFlagInfo info;
  if (!gflags::GetCommandLineFlagInfo(std::string(name).c_str(), &info)) {
    return absl::nullopt;
  }
  return info.type == "bool" ? FlagKind::kBool : FlagKind::kValue;
}

// The flags as given (ValidateOptions checks them); nowhere else are flags
// read.
RawOptions RawOptionsFromFlags(std::vector<std::string> keyspaces) {
  RawOptions raw;
  raw.snapshot_dir = FLAGS_snapshot_dir;
  raw.cassandra_dir = FLAGS_cassandra_dir;
  raw.snapshot_regex = FLAGS_snapshot_regex;
  raw.interval = FLAGS_interval;
  raw.verbosity = FLAGS_v;
  raw.quiet = FLAGS_quiet;
  raw.fullsync = FLAGS_fullsync;
  raw.move_snapshots = FLAGS_move_snapshots;
  raw.sync_sstables = FLAGS_sync_sstables;
  raw.sync_backups = FLAGS_sync_backups;
  raw.settle_time = FLAGS_settle_time;
  raw.prune_after = FLAGS_prune_after;
  raw.stuck_after = FLAGS_stuck_after;
  raw.verify_sample = FLAGS_verify_sample;
  raw.max_bandwidth = FLAGS_max_bandwidth;
  raw.io_priority = FLAGS_io_priority;
  raw.progress_interval = FLAGS_progress_interval;
  raw.list_only = FLAGS_list;
  raw.cluster = FLAGS_cluster;
  raw.all_keyspaces = FLAGS_all_keyspaces;
  raw.copy_threads = FLAGS_copy_threads;
  raw.scan_threads = FLAGS_scan_threads;
  raw.restore_tag = FLAGS_restore;
  raw.restore_to = FLAGS_restore_to;
  raw.restore_until = FLAGS_restore_until;
  raw.keep_snapshots = FLAGS_keep_snapshots;
  raw.keep_for = FLAGS_keep_for;
  raw.hostname = HostName();
  raw.verify = FLAGS_verify;
  raw.json = FLAGS_json;
  raw.checksum = FLAGS_checksum;
  raw.dry_run = FLAGS_dry_run;
  raw.require_destination = FLAGS_require_destination;
  raw.adopt_destination = FLAGS_adopt_destination;
  raw.metrics_file = FLAGS_metrics_file;
  raw.commitlog_archive = FLAGS_commitlog_archive;
  raw.keyspaces = std::move(keyspaces);
  return raw;
}

// What this process is, not what the user configured: the Syncer's engine
// settings (cycle.h), the rest left at their defaults.
EngineSettings EngineSettingsFor(const Options& options) {
  EngineSettings settings;
  settings.progress_on_terminal = isatty(STDERR_FILENO) && !options.quiet;
  settings.preserve_owner = geteuid() == 0;  // only root may chown
  return settings;
}

// --verify: one summary line; the exit code.
int VerifyDestination(Syncer& syncer, const Options& options) {
  VerifyStats verified = syncer.Verify(/*repair=*/options.fullsync, stop_requested);
  if (ExitCodeFor(verified) == 0) {
    LOG(INFO) << SummaryLine(verified);
  } else {
    LOG(ERROR) << SummaryLine(verified);
  }
  return ExitCodeFor(verified);
}

// Sync cycles: one, or with --interval until a signal; a summary line (and
// the metrics file) after each. Returns the exit code.
int RunCycles(FileSystem& fs, Syncer& syncer, const Options& options) {
  while (true) {
    const absl::Time started = absl::Now();
    CycleStats stats = syncer.RunCycle(stop_requested);
    if (stats.fatal.has_value() || stats.failed > 0 || stats.out_of_space) {
      LOG(ERROR) << SummaryLine(stats, options.move_snapshots, options.sync_sstables);
    } else {
      LOG(INFO) << SummaryLine(stats, options.move_snapshots, options.sync_sstables);
    }
    if (!options.metrics_file.empty() && !options.dry_run) {
      absl::Status written = WriteMetricsFile(fs, options.metrics_file, stats, ExitCodeFor(stats),
                                              syncer.manifest());
      if (!written.ok()) LOG(WARNING) << "cannot write --metrics_file: " << written.message();
    }
    if (options.interval == absl::ZeroDuration() || options.dry_run) return ExitCodeFor(stats);
    if (stop_requested.load()) return 0;
    // The next cycle starts `interval` after this one started (at once if
    // this one overran). Sleep in short steps so a signal ends it promptly.
    const absl::Time next = started + options.interval;
    while (!stop_requested.load() && absl::Now() < next) {
      absl::SleepFor(std::min(absl::Milliseconds(100), next - absl::Now()));
    }
    if (stop_requested.load()) {
      LOG(INFO) << "stopping on signal";
      return 0;
    }
  }
}

// Sync cycles and --verify: at the destination as this node's, under its
// lock. Returns the exit code.
int SyncOrVerify(const Options& options) {
  // Every operation at the destination beneath its root; at the source,
  // only move mode's removals, beneath the table directory.
  std::unique_ptr<FileSystem> confined =
      NewConfinedFileSystem({options.destination}, options.data_roots);
  FileSystem& fs = *confined;
  absl::Status lowered = ApplyProcessPriority(options.io_priority);
  if (!lowered.ok()) LOG(WARNING) << "cannot lower the priority: " << lowered.message();
  (void)RaiseOpenFileLimit();
  Syncer syncer(fs, options, EngineSettingsFor(options));

  StateDir state(options.destination);
  if (options.require_destination && !fs.Stat(state.marker).ok()) {
    std::cerr << "snaphaven: destination " << options.destination
              << " has no identity marker (" << state.marker
              << "): not mounted? (--require_destination refuses to start a new one)\n";
    return kExitUsage;
  }
  // Another instance's destination is refused before anything in it changes.
  if (int refused = CheckNodeIdentity(fs, state, options, /*refuse_only=*/true)) return refused;
  // A dry run creates nothing: it locks only a destination that exists.
  const bool prepare = !options.dry_run || fs.Stat(state.dir).ok();
  absl::Status prepared = prepare ? syncer.PrepareDestination() : absl::OkStatus();
  if (!prepared.ok()) {
    LOG(ERROR) << "cannot prepare the destination " << options.destination << ": "
               << prepared.message();
    return 1;
  }
  absl::StatusOr<std::unique_ptr<FileLock>> lock =
      prepare ? fs.TryLock(state.lock) : absl::StatusOr<std::unique_ptr<FileLock>>(nullptr);
  if (!lock.ok()) {
    std::cerr << "snaphaven: " << lock.status().message() << "\n";
    return lock.status().code() == absl::StatusCode::kFailedPrecondition ? kExitLocked : 1;
  }
  if (int refused = prepare ? CheckNodeIdentity(fs, state, options, /*refuse_only=*/false) : 0) {
    return refused;
  }

  // SIGTERM/SIGINT end the run after the file in hand (see RunCycle).
  struct sigaction action = {};
  action.sa_handler = RequestStop;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);

  VLOG(1) << "data roots: " << absl::StrJoin(options.data_roots, ", ")
          << "; destination: " << options.destination;
  if (options.mode == RunMode::kVerify) return VerifyDestination(syncer, options);
  return RunCycles(fs, syncer, options);
}

int Run(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  absl::StatusOr<ParsedArgs> parsed = ParseArgs(args, LookupFlag);
  if (!parsed.ok()) return UsageError(parsed.status().message());
  if (parsed->help) {
    PrintHelp();
    return 0;
  }
  if (parsed->version) {
    std::cout << kVersion << "\n";
    return 0;
  }
  for (const auto& [name, value] : parsed->flags) {
    if (gflags::SetCommandLineOption(name.c_str(), value.c_str()).empty()) {
      return UsageError(absl::StrCat("invalid value '", value, "' for --", name));
    }
  }
  absl::StatusOr<Options> options =
      ValidateOptions(*DefaultFileSystem(), RawOptionsFromFlags(parsed->positional));
  if (!options.ok()) return UsageError(options.status().message());

  SetUpLogging(argv[0], options->quiet);
  if (options->mode == RunMode::kList && options->cluster) return ListClusterRoot(*options);
  if (options->mode == RunMode::kList) return ListDestination(*options);
  if (options->mode == RunMode::kRestore) return RestoreFromDestination(*options);
  return SyncOrVerify(*options);
}

}  // namespace
}  // namespace snaphaven

int main(int argc, char** argv) {
  // Debian's abseil is built without NDEBUG, so every Mutex lock would also
  // update a process-wide lock graph to detect deadlocks: a first copy
  // spent about a tenth of its CPU there. The tests (which run the cycle in
  // process) keep the check.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return snaphaven::Run(argc, argv);
}
