// The planner decides, with no I/O at all, what a cycle must do: which source
// files to copy, which to hard-link to a copy already at the destination, and
// which are unchanged. Its output is deterministic for the same input.

#ifndef SNAPHAVEN_PLANNER_H_
#define SNAPHAVEN_PLANNER_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/time/time.h"
#include "snaphaven/state/manifest.h"
#include "snaphaven/cycle/scanner.h"

namespace snaphaven {

enum class ActionKind {
  kCopy,  // copy the source file's bytes
  kLink,  // hard-link an existing destination copy of the same source inode
};

struct Action {
  ActionKind kind = ActionKind::kCopy;
  size_t file = 0;  // index into the scanned files
  // kLink: destination-relative path of the copy to link to.
  std::string link_from;
  // kLink: index of the action (a copy planned in this cycle) that must have
  // succeeded first; -1 when the copy is already at the destination.
  int after = -1;
};

struct Plan {
  std::vector<Action> actions;  // copies always precede the links on them
  int64_t unchanged = 0;
  int64_t bytes_to_copy = 0;
  // Entries whose bytes are current but whose recorded source identity is
  // not (a manifest rebuilt from the destination): record it, so later
  // snapshots of the same inode get linked.
  std::vector<std::pair<std::string, ManifestEntry>> manifest_updates;
  std::vector<std::string> decisions;  // for -v 2
};

struct PlanOptions {
  bool record_decisions = false;
  // The destination's mtime granularity: a manifest rebuilt from a
  // destination that keeps whole seconds still matches the source.
  int64_t mtime_granularity_ns = 1;
  // What the manifest holds for each of `files` (same indices), from
  // StatesOfCopies; null: looked up here.
  const std::vector<CopyState>* states = nullptr;
};

// StateOfCopy for every file: one manifest lookup per file and cycle.
std::vector<CopyState> StatesOfCopies(const std::vector<SourceFile>& files,
                                      const Manifest& manifest, int64_t mtime_granularity_ns);

// A file is current when the manifest has an entry for its path with the
// source's size and mtime. Others are linked when a current copy of the same
// source identity (dev, ino, size, mtime) exists or is planned, else copied.
// Only `files[i]` for i in `selected` (ascending) are considered.
// It reads the manifest's entries and nothing else: given `options.states`
// and a manifest whose sections for these files' table are in memory (the
// cycle reads them in first, Manifest::LoadBelow), it does no I/O.
Plan PlanCycle(const std::vector<SourceFile>& files, const std::vector<size_t>& selected,
               const Manifest& manifest, const PlanOptions& options);
// Every file considered.
Plan PlanCycle(const std::vector<SourceFile>& files, const Manifest& manifest,
               const PlanOptions& options);

// What the live mirror's pruning must do this cycle.
struct PrunePlan {
  // Entries to update: missing_since set (newly gone) or cleared (back).
  std::vector<std::pair<std::string, ManifestEntry>> updates;
  // Destination paths to delete: every component of each sstable gone from
  // the source for longer than prune_after.
  std::vector<std::string> remove;
};

// Reads in the manifest's live-mirror sections ("ks/t", "ks/t/.idx") below
// `scopes` (keyspaces "ks", or tables "ks/<table dir>"), and only those:
// what PlanPrune looks at, read in before it runs.
absl::Status LoadLiveMirror(const Manifest& manifest, const std::vector<std::string>& scopes);

// Looks at the manifest's live-mirror entries ("ks/t/[.idx/]<component>")
// in memory below `scopes` (LoadLiveMirror reads them in first): it does
// no I/O. `live_sstables` holds the "ks/t/[.idx/]<prefix>" keys that still
// have a file at the source. Snapshot and backup copies are never pruned.
PrunePlan PlanPrune(const Manifest& manifest, const std::vector<std::string>& scopes,
                    const absl::flat_hash_set<std::string>& live_sstables, absl::Time now,
                    absl::Duration prune_after);

// The manifest entry describing a destination copy of `file`.
inline ManifestEntry EntryFor(const SourceFile& file) { return EntryForSource(file.stat); }

}  // namespace snaphaven

#endif  // SNAPHAVEN_PLANNER_H_
