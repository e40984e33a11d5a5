#include "snaphaven/cli/options.h"

#include <unistd.h>

#include <tuple>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "snaphaven/storage/bandwidth_limiter.h"
#include "snaphaven/cassandra/cassandra_path.h"
#include "snaphaven/commitlog/pitr.h"
#include "snaphaven/cassandra/keyspace_dirs.h"

namespace snaphaven {
namespace {

absl::Status Invalid(absl::string_view message) {
  return absl::InvalidArgumentError(message);
}

bool IsDirectory(FileSystem& fs, const std::string& path) {
  absl::StatusOr<FileStat> st = fs.Stat(path);
  return st.ok() && st->type == FileType::kDirectory;
}

// A directory, or a symlink (which may be a keyspace moved to another disk:
// ValidateOptions then checks where it leads).
bool IsDirectoryOrSymlink(FileSystem& fs, const std::string& path) {
  absl::StatusOr<FileStat> st = fs.Stat(path);
  return st.ok() && (st->type == FileType::kDirectory || st->type == FileType::kSymlink);
}

// The path with its symlinks resolved, or as given when that fails.
std::string RealOrGiven(FileSystem& fs, const std::string& path) {
  absl::StatusOr<std::string> real = fs.RealPath(path);
  return real.ok() ? *real : path;
}

// The likeliest data root of a Cassandra home or data root `real` that
// holds none of the keyspaces looked for: DIR/data/data, DIR/data or DIR.
std::string LikeliestDataRoot(FileSystem& fs, const std::string& real) {
  const std::string data = JoinPath(real, "data");
  return IsDirectory(fs, JoinPath(data, "data")) ? JoinPath(data, "data")
         : IsDirectory(fs, data)                 ? data
                                                 : real;
}

// The flags that choose what is copied or listed: keyspaces or
// --all_keyspaces, and --cluster only with --list.
absl::Status CheckSelectionFlags(const RawOptions& raw) {
  if (raw.all_keyspaces && !raw.keyspaces.empty()) {
    return Invalid("give keyspaces or --all_keyspaces, not both");
  }
  if (raw.cluster && !raw.list_only) {
    return Invalid("--cluster goes with --list: snaphaven --list --cluster -s ROOT");
  }
  if (raw.cluster && !raw.restore_tag.empty()) {
    return Invalid("--cluster lists; it does not restore: drop --restore or --cluster");
  }
  return absl::OkStatus();
}

// --list --cluster: the root holding one destination per node. A -s as
// the nodes give it (`/nas/cassandra/%h`) names its parent.
absl::StatusOr<std::string> ClusterRoot(FileSystem& fs, const std::string& snapshot_dir) {
  std::string root = snapshot_dir;
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  const size_t slash = root.rfind('/');
  if (absl::StrContains(root.substr(slash == std::string::npos ? 0 : slash + 1), "%h")) {
    root = slash == std::string::npos ? "." : slash == 0 ? "/" : root.substr(0, slash);
  }
  absl::StatusOr<std::string> real = fs.RealPath(root);
  if (!real.ok() || !IsDirectory(fs, *real)) {
    return Invalid(absl::StrCat("cluster root ", root, " does not exist or is not a directory"));
  }
  return *real;
}

// --all_keyspaces: the keyspace directories of the data roots now (each
// cycle looks again); none at all is refused, as an empty mount point must
// never be taken for a node without data.
absl::Status FindAllKeyspaces(FileSystem& fs, Options& options) {
  absl::StatusOr<KeyspaceDirs> found = FindKeyspaceDirs(fs, options.data_roots);
  if (!found.ok()) {
    return Invalid(absl::StrCat("--all_keyspaces: cannot list the data roots: ",
                                found.status().message()));
  }
  if (found->keyspaces.empty()) {
    return Invalid(absl::StrCat("--all_keyspaces: no keyspace directory in ",
                                absl::StrJoin(options.data_roots, ", ")));
  }
  options.keyspaces = std::move(found->keyspaces);
  options.all_keyspaces = true;
  return absl::OkStatus();
}

// --max_bandwidth (cycles and restores).
absl::Status SetMaxBandwidth(const RawOptions& raw, Options& options) {
  if (raw.max_bandwidth.empty()) return absl::OkStatus();
  absl::StatusOr<int64_t> bandwidth = ParseBandwidth(raw.max_bandwidth);
  if (!bandwidth.ok()) return bandwidth.status();
  options.max_bandwidth = *bandwidth;
  return absl::OkStatus();
}

// `dir` (the --`what` flag's, named `what` in messages) with its symlinks
// resolved, once it is a readable directory.
absl::StatusOr<std::string> ReadableDirectory(FileSystem& fs, absl::string_view what,
                                              const std::string& dir) {
  absl::StatusOr<std::string> real = fs.RealPath(dir);
  if (!real.ok()) {
    return Invalid(absl::StrCat(what, " ", dir, " does not exist or cannot be reached (",
                                real.status().message(), ")"));
  }
  if (!IsDirectory(fs, *real)) {
    return Invalid(absl::StrCat(what, " ", dir, " is not a directory"));
  }
  if (!fs.CheckAccess(*real, R_OK | X_OK).ok()) {
    return Invalid(absl::StrCat(what, " ", dir, " cannot be read"));
  }
  return real;
}

// --commitlog_archive (commitlog/archive_mirror.h): an existing, readable
// directory (writable in move mode, which removes mirrored segments from
// it), apart from the destination; no keyspace may share the name of the
// mirrored segments' directory, <dest>/commitlog_archive/.
absl::Status ValidateCommitlogArchive(FileSystem& fs, const RawOptions& raw, Options& options) {
  const std::string& dir = raw.commitlog_archive;
  absl::StatusOr<std::string> real = ReadableDirectory(fs, "commitlog archive", dir);
  if (!real.ok()) return real.status();
  if (options.move_snapshots && !fs.CheckAccess(*real, W_OK | X_OK).ok()) {
    return Invalid(absl::StrCat("commitlog archive ", dir,
                                " cannot be written, and --move-snapshots removes the mirrored "
                                "segments from it"));
  }
  if (IsSameOrInside(*real, options.destination) || IsSameOrInside(options.destination, *real)) {
    return Invalid(absl::StrCat("commitlog archive ", dir, " (", *real,
                                ") and the destination ", options.destination,
                                " overlap: the archive must be apart from the copies"));
  }
  for (const std::string& keyspace : options.keyspaces) {
    if (keyspace == "commitlog_archive") {
      return Invalid(
          "keyspace 'commitlog_archive' cannot be copied with --commitlog_archive: its copy and "
          "the mirrored segments would share <dest>/commitlog_archive/");
    }
  }
  options.commitlog_archive = *real;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<absl::Duration> ParseDurationFlag(absl::string_view flag,
                                                 const std::string& text) {
  absl::Duration duration;
  if (!absl::ParseDuration(text, &duration)) {
    return Invalid(absl::StrCat("invalid --", flag, " '", text,
                                "': use a duration such as 90s, 5m or 1h"));
  }
  if (duration < absl::ZeroDuration() || duration == absl::InfiniteDuration()) {
    return Invalid(absl::StrCat("invalid --", flag, " '", text,
                                "': must be zero or positive"));
  }
  return duration;
}

absl::StatusOr<std::string> FindDataRoot(FileSystem& fs, const std::string& dir,
                                         const std::vector<std::string>& keyspaces) {
  const std::vector<std::string> candidates = {
      dir, JoinPath(dir, "data"), JoinPath(dir, "data/data")};
  for (const std::string& candidate : candidates) {
    for (const std::string& keyspace : keyspaces) {
      if (IsDirectoryOrSymlink(fs, JoinPath(candidate, keyspace))) return candidate;
    }
  }
  return absl::NotFoundError("no keyspace found");
}

namespace {

// The flags every mode reads: --restore's companions, the run mode, the
// plain switches and the verbosity, in this order (after the selection
// flags and the --cluster root).
absl::Status SetCommonFlags(const RawOptions& raw, Options& options) {
  if (!raw.restore_tag.empty() && raw.restore_to.empty()) {
    return Invalid("--restore needs --restore_to DIR: where to put the restored sstables");
  }
  if (!raw.restore_until.empty()) {
    if (raw.restore_tag.empty()) {
      return Invalid("--restore_until needs --restore TAG: the snapshot to bring forward");
    }
    absl::StatusOr<absl::Time> until = commitlog::ParseRestoreUntil(raw.restore_until);
    if (!until.ok()) return until.status();
    options.restore_until = *until;
  }
  options.mode = raw.list_only               ? RunMode::kList
                 : !raw.restore_tag.empty() ? RunMode::kRestore
                 : raw.verify               ? RunMode::kVerify
                                            : RunMode::kSync;
  options.json = raw.json;
  options.cluster = raw.cluster;
  options.all_keyspaces = raw.all_keyspaces;
  options.checksum = raw.checksum;
  options.dry_run = raw.dry_run;
  options.require_destination = raw.require_destination;
  options.adopt_destination = raw.adopt_destination;
  options.metrics_file = raw.metrics_file;
  if (raw.verbosity < 0 || raw.verbosity > 2) {
    return Invalid(absl::StrCat("invalid -v ", raw.verbosity, ": choose 0, 1 or 2"));
  }
  options.verbosity = raw.verbosity;
  // Every mode (--list and --restore too): -q wins over -v.
  options.quiet = raw.quiet;
  if (options.quiet) options.verbosity = 0;
  return absl::OkStatus();
}

// The keyspaces named on the command line, each a valid name, in order.
absl::Status AddNamedKeyspaces(const RawOptions& raw, Options& options) {
  for (const std::string& keyspace : raw.keyspaces) {
    absl::Status valid = ValidateKeyspaceName(keyspace);
    if (!valid.ok()) return valid;
    options.keyspaces.push_back(keyspace);
  }
  return absl::OkStatus();
}

// --list and --restore: they read only the destination, which must exist.
// The live data roots are noted as far as they exist, so a restore never
// writes into one; --cluster does not even look at them.
absl::Status ValidateReadOnlyMode(FileSystem& fs, const RawOptions& raw,
                                  const std::string& snapshot_dir, Options& options) {
  absl::Status bandwidth = SetMaxBandwidth(raw, options);
  if (!bandwidth.ok()) return bandwidth;
  options.restore_tag = raw.restore_tag;
  options.restore_to = raw.restore_to;
  absl::Status named = AddNamedKeyspaces(raw, options);
  if (!named.ok()) return named;
  if (options.cluster) return absl::OkStatus();
  for (absl::string_view given : absl::StrSplit(raw.cassandra_dir, ',', absl::SkipEmpty())) {
    absl::StatusOr<std::string> real = fs.RealPath(std::string(given));
    if (!real.ok()) continue;
    absl::StatusOr<std::string> root = FindDataRoot(fs, *real, raw.keyspaces);
    options.data_roots.push_back(root.ok() ? *root : *real);
    if (IsDirectory(fs, JoinPath(*real, "data"))) options.data_roots.push_back(JoinPath(*real, "data"));
  }
  absl::StatusOr<std::string> real = fs.RealPath(snapshot_dir);
  if (!real.ok() || !IsDirectory(fs, *real)) {
    return Invalid(absl::StrCat("destination ", snapshot_dir, " does not exist"));
  }
  options.destination = *real;
  return absl::OkStatus();
}

// Sync and --verify: keyspaces named (or --all_keyspaces), and
// --snapshot_regex.
absl::Status SetKeyspacesAndTagFilter(const RawOptions& raw, Options& options) {
  if (raw.keyspaces.empty() && !raw.all_keyspaces) {
    return Invalid("no keyspace given: name at least one keyspace to copy, or --all_keyspaces");
  }
  absl::Status named = AddNamedKeyspaces(raw, options);
  if (!named.ok()) return named;
  options.fullsync = raw.fullsync;
  if (!raw.snapshot_regex.empty()) {
    options.tag_filter = std::make_unique<RE2>(raw.snapshot_regex, RE2::Quiet);
    if (!options.tag_filter->ok()) {
      return Invalid(absl::StrCat("invalid --snapshot_regex '", raw.snapshot_regex,
                                  "': ", options.tag_filter->error()));
    }
  }
  return absl::OkStatus();
}

// Sync and --verify: the numbers (sample, threads, retention, bandwidth,
// I/O priority) and the plain switches of a cycle.
absl::Status SetCycleLimits(const RawOptions& raw, Options& options) {
  if (!(raw.verify_sample >= 0 && raw.verify_sample <= 100)) {
    return Invalid(absl::StrCat("invalid --verify_sample ", raw.verify_sample,
                                ": a percentage from 0 to 100"));
  }
  options.verify_sample = raw.verify_sample;
  if (raw.copy_threads < 1 || raw.copy_threads > 64) {
    return Invalid(absl::StrCat("invalid --copy_threads ", raw.copy_threads, ": from 1 to 64"));
  }
  options.copy_threads = raw.copy_threads;
  if (raw.scan_threads < 1 || raw.scan_threads > 64) {
    return Invalid(absl::StrCat("invalid --scan_threads ", raw.scan_threads, ": from 1 to 64"));
  }
  options.scan_threads = raw.scan_threads;
  if (raw.keep_snapshots < 0) {
    return Invalid(absl::StrCat("invalid --keep_snapshots ", raw.keep_snapshots, ": 0 or more"));
  }
  options.keep_snapshots = raw.keep_snapshots;
  absl::Status bandwidth = SetMaxBandwidth(raw, options);
  if (!bandwidth.ok()) return bandwidth;
  absl::StatusOr<IoPriority> io_priority = ParseIoPriority(raw.io_priority);
  if (!io_priority.ok()) return io_priority.status();
  options.io_priority = *io_priority;
  options.move_snapshots = raw.move_snapshots;
  options.sync_sstables = raw.sync_sstables;
  options.sync_backups = raw.sync_backups;
  return absl::OkStatus();
}

// Sync and --verify: the duration flags, in this order.
absl::Status SetDurations(const RawOptions& raw, Options& options) {
  for (auto [flag, text, out] : {std::make_tuple("interval", &raw.interval, &options.interval),
                                 std::make_tuple("settle_time", &raw.settle_time, &options.settle_time),
                                 std::make_tuple("prune_after", &raw.prune_after, &options.prune_after),
                                 std::make_tuple("stuck_after", &raw.stuck_after, &options.stuck_after),
                                 std::make_tuple("progress_interval", &raw.progress_interval,
                                                 &options.progress_interval),
                                 std::make_tuple("keep_for", &raw.keep_for, &options.keep_for)}) {
    absl::StatusOr<absl::Duration> duration = ParseDurationFlag(flag, *text);
    if (!duration.ok()) return duration.status();
    *out = *duration;
  }
  return absl::OkStatus();
}

// Sync and --verify: the data roots, a comma-separated list of Cassandra
// homes or data roots, each a readable directory; with --all_keyspaces,
// the keyspaces they hold.
absl::Status SetDataRoots(FileSystem& fs, const RawOptions& raw, Options& options) {
  for (absl::string_view given : absl::StrSplit(raw.cassandra_dir, ',', absl::SkipEmpty())) {
    absl::StatusOr<std::string> real = ReadableDirectory(fs, "cassandra dir", std::string(given));
    if (!real.ok()) return real.status();
    // --all_keyspaces: a data root holds the system keyspace, which a
    // Cassandra home (data/, commitlog/, bin/...) does not.
    absl::StatusOr<std::string> root = FindDataRoot(
        fs, *real,
        raw.all_keyspaces ? std::vector<std::string>{std::string(kSystemKeyspace)}
                          : options.keyspaces);
    // No keyspace here: keep the likeliest root (so the error can name it).
    options.data_roots.push_back(root.ok() ? *root : LikeliestDataRoot(fs, *real));
  }
  if (options.data_roots.empty()) {
    return Invalid("empty -d/--cassandra_dir: name the Cassandra home or data root");
  }
  if (raw.all_keyspaces) return FindAllKeyspaces(fs, options);
  return absl::OkStatus();
}

// A symlinked keyspace directory (moved to another disk) in data root
// number `root`: followed, as Cassandra does, once its target is known not
// to overlap the destination or a data root (CheckKeyspaceLinks).
struct KeyspaceLink {
  std::string link, target;
  size_t root;
};

// Sync and --verify: every keyspace is a readable directory (or a link to
// one) in at least one data root; returns the links among them.
absl::StatusOr<std::vector<KeyspaceLink>> FindKeyspaceLinks(FileSystem& fs,
                                                            const Options& options) {
  std::vector<KeyspaceLink> keyspace_links;
  for (const std::string& keyspace : options.keyspaces) {
    bool found = false;
    for (size_t r = 0; r < options.data_roots.size(); ++r) {
      std::string path = JoinPath(options.data_roots[r], keyspace);
      absl::StatusOr<FileStat> st = fs.Stat(path);
      if (!st.ok()) continue;
      if (st->type == FileType::kSymlink) {
        absl::StatusOr<std::string> target = ResolveDirectoryLink(fs, path);
        if (!target.ok()) {
          return Invalid(absl::StrCat("keyspace ", target.status().message()));
        }
        keyspace_links.push_back(KeyspaceLink{path, *target, r});
      } else if (st->type != FileType::kDirectory) {
        continue;
      }
      if (!fs.CheckAccess(path, R_OK | X_OK).ok()) {
        return Invalid(absl::StrCat("keyspace directory ", path, " cannot be read"));
      }
      found = true;
    }
    if (!found) {
      return Invalid(absl::StrCat("keyspace '", keyspace, "' not found in ",
                                  absl::StrJoin(options.data_roots, ", ")));
    }
  }
  return keyspace_links;
}

// Sync and --verify: the destination, resolved (it may not exist yet),
// neither inside nor around a data root.
absl::Status SetDestination(FileSystem& fs, const std::string& snapshot_dir, Options& options) {
  absl::StatusOr<std::string> destination = ResolveMaybeMissing(fs, snapshot_dir, "destination");
  if (!destination.ok()) {
    return Invalid(absl::StrCat("destination ", snapshot_dir, " cannot be resolved (",
                                destination.status().message(), ")"));
  }
  options.destination = *destination;
  for (const std::string& root : options.data_roots) {
    if (IsSameOrInside(options.destination, root)) {
      return Invalid(absl::StrCat("destination ", snapshot_dir, " (", options.destination,
                                  ") is inside the data root ", root,
                                  ": snaphaven never writes into the Cassandra tree"));
    }
    if (IsSameOrInside(root, options.destination)) {
      return Invalid(absl::StrCat("destination ", snapshot_dir, " (", options.destination,
                                  ") contains the data root ", root));
    }
  }
  return absl::OkStatus();
}

// Sync and --verify: no keyspace link target overlaps the destination or
// a data root (FindLinkOverlap).
absl::Status CheckKeyspaceLinks(FileSystem& fs, const std::vector<KeyspaceLink>& keyspace_links,
                                const Options& options) {
  std::vector<std::string> real_roots;
  for (const std::string& root : options.data_roots) real_roots.push_back(RealOrGiven(fs, root));
  for (const KeyspaceLink& k : keyspace_links) {
    const std::string arrow = absl::StrCat("keyspace ", k.link, " -> ", k.target);
    LinkOverlap overlap =
        FindLinkOverlap(k.target, options.destination, real_roots, k.root, /*keyspace=*/true);
    switch (overlap.kind) {
      case LinkOverlap::kNone:
        break;
      case LinkOverlap::kInsideDestination:
        return Invalid(absl::StrCat(arrow, " is inside the destination ", overlap.where,
                                    ": following it would copy the copies"));
      case LinkOverlap::kContainsDestination:
        return Invalid(absl::StrCat(arrow, " contains the destination ", overlap.where,
                                    ": snaphaven never writes into the Cassandra tree"));
      case LinkOverlap::kContainsDataRoot:
        return Invalid(absl::StrCat(arrow, " contains the data root ", overlap.where,
                                    ": following it would make the copy recursive"));
      case LinkOverlap::kInsideOtherDataRoot:
        return Invalid(absl::StrCat(arrow, " is inside another data root ", overlap.where,
                                    ": its files would be copied twice"));
    }
  }
  return absl::OkStatus();
}

// Sync and --verify: an existing destination is a writable directory; a
// missing one can be created (its nearest existing ancestor allows that).
absl::Status CheckDestinationWritable(FileSystem& fs, const std::string& snapshot_dir,
                                      const Options& options) {
  absl::StatusOr<FileStat> st = fs.Stat(options.destination);
  if (st.ok()) {
    if (st->type != FileType::kDirectory) {
      return Invalid(absl::StrCat("destination ", snapshot_dir, " is not a directory"));
    }
    if (!fs.CheckAccess(options.destination, W_OK | X_OK).ok()) {
      return Invalid(absl::StrCat("destination ", snapshot_dir, " cannot be written"));
    }
    return absl::OkStatus();
  }
  std::string ancestor(DirName(options.destination));
  while (!ancestor.empty() && !fs.Stat(ancestor).ok()) {
    ancestor = std::string(DirName(ancestor));
  }
  if (ancestor.empty() || !IsDirectory(fs, ancestor) ||
      !fs.CheckAccess(ancestor, W_OK | X_OK).ok()) {
    return Invalid(absl::StrCat("destination ", snapshot_dir, " cannot be created (",
                                ancestor, " is not a writable directory)"));
  }
  return absl::OkStatus();
}

// Sync and --verify, after the flags every mode reads: the steps in the
// order their errors are reported.
absl::Status ValidateCycleMode(FileSystem& fs, const RawOptions& raw,
                               const std::string& snapshot_dir, Options& options) {
  absl::Status status = SetKeyspacesAndTagFilter(raw, options);
  if (status.ok()) status = SetCycleLimits(raw, options);
  if (status.ok()) status = SetDurations(raw, options);
  if (status.ok()) status = SetDataRoots(fs, raw, options);
  if (!status.ok()) return status;
  absl::StatusOr<std::vector<KeyspaceLink>> keyspace_links = FindKeyspaceLinks(fs, options);
  if (!keyspace_links.ok()) return keyspace_links.status();
  status = SetDestination(fs, snapshot_dir, options);
  if (status.ok()) status = CheckKeyspaceLinks(fs, *keyspace_links, options);
  if (status.ok() && !raw.commitlog_archive.empty()) {
    status = ValidateCommitlogArchive(fs, raw, options);
  }
  if (status.ok()) status = CheckDestinationWritable(fs, snapshot_dir, options);
  return status;
}

}  // namespace

absl::StatusOr<Options> ValidateOptions(FileSystem& fs, const RawOptions& raw) {
  Options options;
  if (raw.snapshot_dir.empty()) {
    return Invalid("missing -s/--snapshot_dir: name the destination directory");
  }
  absl::Status status = CheckSelectionFlags(raw);
  if (!status.ok()) return status;
  // One NAS for a cluster: each node writes its own directory.
  if (raw.cluster) {
    absl::StatusOr<std::string> root = ClusterRoot(fs, raw.snapshot_dir);
    if (!root.ok()) return root.status();
    options.destination = *root;
  }
  const std::string snapshot_dir = absl::StrReplaceAll(raw.snapshot_dir, {{"%h", raw.hostname}});
  status = SetCommonFlags(raw, options);
  if (!status.ok()) return status;
  const bool read_only = raw.list_only || !raw.restore_tag.empty();
  if (read_only && !raw.commitlog_archive.empty()) {
    return Invalid(
        "--commitlog_archive is for sync cycles and --verify; --list and --restore read only the "
        "destination (its commitlog_archive/): leave it out");
  }
  status = read_only ? ValidateReadOnlyMode(fs, raw, snapshot_dir, options)
                     : ValidateCycleMode(fs, raw, snapshot_dir, options);
  if (!status.ok()) return status;
  return options;
}

}  // namespace snaphaven
