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
#include "snaphaven/state/manifest.h"
#include "snaphaven/cycle/scanner.h"

namespace snaphaven {

struct SelectOptions {
  bool move = false;  // build MoveUnits for complete snapshots and backups
  absl::Duration settle_time = absl::Seconds(10);
  absl::Time now;
  bool record_decisions = false;
  // What the manifest holds for each scanned file (StatesOfCopies), or null.
  // A live or backup sstable whose every file is a current copy was whole
  // when it was copied, and sstables are immutable: its TOC.txt is neither
  // read nor needed again.
  const std::vector<CopyState>* states = nullptr;
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

// Something the source holds that this cycle did not take: an sstable not
// mirrored (live or backup; its files are not copied) or a snapshot move
// mode keeps at the source (its files are copied; it is not deleted).
struct HeldBack {
  enum class Kind { kLiveSSTable, kBackupSSTable, kSnapshot };
  Kind kind = Kind::kLiveSSTable;
  std::string name;    // "ks/t/[.idx/]nb-1-big" or "ks/t/snapshots/tag"
  std::string reason;  // what is missing, which log holds it, ...
  int64_t files = 0;   // source files not copied (sstables); 0 for snapshots
  // The newest mtime among its files and (snapshots) directories: once this
  // is older than --stuck_after, it is stuck rather than on its way.
  int64_t newest_mtime_ns = 0;
};

struct Selection {
  std::vector<size_t> eligible;  // indices into the scan, ascending
  std::vector<MoveUnit> units;
  std::vector<std::string> errors;     // conflicts between roots
  std::vector<std::string> decisions;  // for -v 2
  std::vector<HeldBack> held_back;     // in scan order
  // Problems worth a warning that hold nothing back (a TOC.txt that does
  // not list Data.db), one line each.
  std::vector<std::string> warnings;
  // "ks/t/[.idx/]<prefix>" of every live sstable with a file at the source.
  absl::flat_hash_set<std::string> live_sstables;
};

// The rules (see sstable_components.h for the sstable one):
//  - live sstable: not temporary (2.x tmp-/tmplink-, *.tmp), not named by
//    a transaction log as being written (ADD, no COMMIT yet), aborted (ADD,
//    ABORT) or obsolete (REMOVE, COMMIT), and whole; then every one of its
//    components present is copied. A REMOVE in a log still in flight is a
//    compaction's input, still live: it is copied.
//  - backup sstable: whole and unchanged for settle_time.
//  - snapshot: every file is copied (unless ephemeral). Move mode deletes it
//    when its manifest.json parses, has settled, and every Data.db it lists
//    belongs to a whole sstable. 2.0 wrote no manifest.json: a snapshot
//    without one whose sstables are all older than 2.1 ("ka") is complete
//    when each is whole and nothing in it changed for settle_time.
// Which scanned files the selector (run with the same `options`) needs the
// contents of: every snapshot's top-level manifest.json, every transaction
// log, the TOC.txt of every live or backup sstable not wholly current at the
// destination, and in move mode every snapshot's TOC.txt.
std::vector<size_t> MetadataToRead(const ScanResult& scan, const SelectOptions& options);

// `texts` holds the contents of the files MetadataToRead named (a file that
// could not be read is absent). `destination` is the manifest: a file that a
// killed move already deleted at the source counts as present if recorded.
Selection SelectFiles(const ScanResult& scan,
                      const absl::flat_hash_map<size_t, std::string>& texts,
                      const Manifest& destination, const SelectOptions& options);

}  // namespace snaphaven

#endif  // SNAPHAVEN_SELECTOR_H_
