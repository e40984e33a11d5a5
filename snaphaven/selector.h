// The selector applies Cassandra's completeness rules to a scan, with no
// I/O: which files may be copied now (committed, complete sstables; no
// ephemeral snapshot; no conflicting duplicates across data roots), which
// groups of source files move mode may delete once they are all safely at
// the destination, and which live sstables still exist (for pruning).

#ifndef SNAPHAVEN_SELECTOR_H_
#define SNAPHAVEN_SELECTOR_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/time/time.h"
#include "snaphaven/manifest.h"
#include "snaphaven/scanner.h"

namespace snaphaven {

struct SelectOptions {
  bool move = false;  // build MoveUnits for complete snapshots and backups
  absl::Duration settle_time = absl::Seconds(10);
  absl::Time now;
  bool record_decisions = false;
};

// Source files to delete together once every one of them is durably at the
// destination: one table's snapshot (one tag, all roots) or one backup
// sstable. `files` are in deletion order (manifest.json last, so a killed
// move still knows the snapshot was complete).
struct MoveUnit {
  std::string name;  // "ks/t/snapshots/tag" or "ks/t/backups/nb-1-big"
  std::vector<size_t> files;
  // Directories to remove afterwards if empty, deepest first: (root, path
  // relative to the root).
  std::vector<std::pair<int, std::string>> dirs;
};

struct Selection {
  std::vector<size_t> eligible;  // indices into the scan, ascending
  std::vector<MoveUnit> units;
  std::vector<std::string> errors;     // conflicts between roots
  std::vector<std::string> decisions;  // for -v 2
  // "ks/t/[.idx/]<prefix>" of every live sstable with a file at the source.
  absl::flat_hash_set<std::string> live_sstables;
};

// Which scanned files the selector needs the contents of: every TOC.txt,
// every snapshot's top-level manifest.json and every transaction log.
std::vector<size_t> MetadataToRead(const ScanResult& scan);

// `texts` holds the contents of the files MetadataToRead named (a file that
// could not be read is absent). `destination` is the manifest: a file that a
// killed move already deleted at the source counts as present if recorded.
Selection SelectFiles(const ScanResult& scan,
                      const absl::flat_hash_map<size_t, std::string>& texts,
                      const Manifest& destination, const SelectOptions& options);

}  // namespace snaphaven

#endif  // SNAPHAVEN_SELECTOR_H_
