// Restore: copies one snapshot (a tag) of some keyspaces back out of a
// snaphaven destination into a staging directory laid out for
// `nodetool import` (or sstableloader), verifying every byte on the way.
//
//   <destination>/<ks>/<table dir>/snapshots/<tag>/<file>
//       -> <restore_to>/<ks>/<table dir>/<file>
//   <destination>/<ks>/<table dir>/snapshots/<tag>/.<idx>/<file>
//       -> <restore_to>/<ks>/<table dir>/.<idx>/<file>
//
// manifest.json and schema.cql come along (schema.cql recreates a dropped
// table; nodetool import ignores both).
//
// Each file goes through a Copier (temporary name in
// <restore_to>/.snaphaven-restore-tmp, fsync, the copy's mode and mtime,
// rename, directory fsync), so no file is ever visible under its final name
// before it is whole, durable and verified:
// - a file with a CRC-32 in the destination manifest must give that CRC-32;
// - a Data.db must match its sstable's digest component (Digest.crc32,
//   Digest.adler32 or 2.1's Digest.sha1), read from the destination copy.
// Digest components are copied (and so checked against the manifest) before
// the Data.db files that rely on them.
//
// All or nothing: before anything is written, every file the manifest lists
// for the snapshot must be at the destination with its recorded size, every
// Data.db listed by the snapshot's manifest.json and every component listed
// by each TOC.txt must be there, and every target file that already exists
// must be a whole copy this restore would have placed. A failure during the
// copy (a checksum mismatch, an I/O error) removes the files this call placed
// and the directories it created.
//
// Resumable: a restore stopped halfway (killed, a power cut) left only whole,
// verified files under their final names (and maybe a temporary file, which
// the next run removes). Run again, it keeps every target that already has
// the destination copy's size, mtime and CRC-32 (the manifest's, else the
// copy's own), reading it but not copying it again, and copies the rest. A
// target that exists and differs is never overwritten: the restore is
// refused (AlreadyExists) naming it, before anything is written.
//
// Takes no lock. The destination is only read; hold <dest>/.snaphaven/lock
// (FileSystem::TryLock) around the call so no snaphaven cycle or retention
// pass changes the snapshot copy while it is restored.

#ifndef SNAPHAVEN_RESTORE_H_
#define SNAPHAVEN_RESTORE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/optional.h"
#include "snaphaven/storage/file_system.h"
#include "snaphaven/state/manifest.h"
#include "snaphaven/cli/options.h"
#include "snaphaven/cassandra/sstable_digest.h"

namespace snaphaven {

// Where a restore's files are written before they get their names, below
// the restore directory (removed when the restore is done).
inline constexpr char kRestoreTempDirName[] = ".snaphaven-restore-tmp";

// `s` quoted for a POSIX shell where it needs it.
std::string ShellQuote(absl::string_view s);

struct RestoreResult {
  // Copied by this call.
  int64_t files = 0;
  int64_t bytes = 0;
  // Already at the target from an earlier, interrupted restore: checked and
  // kept.
  int64_t kept_files = 0;
  int64_t kept_bytes = 0;
  // "ks/table dir" of every table restored, sorted.
  std::vector<std::string> tables;
  // The commands that finish the restore, shell-quoted where needed, with
  // the resolved absolute restore path: first one
  //   nodetool import <ks> <table> <restore_to>/<ks>/<table dir>
  // per table (in `tables` order; Cassandra 4.0+), then, as the alternative
  // (streaming to the cluster; any version), one
  //   sstableloader -d <host> <restore_to>/<ks>/<table dir>
  // per table in the same order.
  std::vector<std::string> commands;
  // The resolved absolute restore path the files went to.
  std::string restore_root;
  // Things worth a log line that did not stop the restore: files present at
  // the destination but not in its manifest (only a Data.db digest checks
  // them), a snapshot without a readable manifest.json (its completeness not
  // checked), an unreadable or malformed digest component.
  std::vector<std::string> warnings;
};

// Reads from `options` (the validated --restore configuration):
// `destination` (the snaphaven destination root, holding
// .snaphaven/manifest); `keyspaces` to restore (empty: every keyspace of the
// destination; each named one must have a copy of the snapshot in at least
// one table); `restore_tag` (one plain directory name); `restore_to`, where
// to put the files, created (with its parents) if missing and refused when
// equal to or inside a live data root or the destination, after resolving
// symlinks (a not-yet-existing tail is taken as given, and may not hold
// ".."); `data_roots`, the live Cassandra data roots; `max_bandwidth`
// (bytes per second written; 0: unlimited). `loader_host` goes into the
// sstableloader commands; empty: the placeholder "<host>".
//
// Errors: InvalidArgument for bad options, a restore_to inside a data root
// or the destination, a keyspace without a copy of the tag (the message
// lists the tags it has); FailedPrecondition naming the file for a file
// missing at the destination, changed since it was recorded, or failing its
// CRC-32 or sstable digest, and AlreadyExists for a target file already
// there that differs from what the restore would put there; the file
// system's error otherwise.
absl::StatusOr<RestoreResult> RestoreSnapshot(FileSystem& fs, const Manifest& manifest,
                                              const Options& options,
                                              const std::string& loader_host = "");


}  // namespace snaphaven

#endif  // SNAPHAVEN_RESTORE_H_
