// The destination manifest's index: what snaphaven has placed at the
// destination, keyed by path relative to the destination root. It is a cache
// of the destination (the destination is the truth) that spares a walk of a
// slow NAS on every cycle, and it remembers which source inode each copy came
// from so later snapshots of the same sstable are hard-linked, not copied.
//
// This file holds the entries in memory and the rules on them (is a copy
// current, which source a path came from, unique bytes); it does no file
// I/O. The bytes on disk (format, checksums, the log, compaction, lazy
// loading, older formats) are manifest_store.h's: a StoredManifest is a
// Manifest with its place on disk. A lazily loaded manifest holds only the
// directories ("sections") asked about so far; the index reads one in
// through ReadSection, the one thing it asks of the store.

#ifndef SNAPHAVEN_MANIFEST_H_
#define SNAPHAVEN_MANIFEST_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/node_hash_map.h"
#include "absl/hash/hash.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "snaphaven/storage/file_system.h"

namespace snaphaven {

// A source file's identity: the same inode with the same size and mtime is
// the same bytes (Cassandra replaces files, it does not edit them).
struct SourceIdentity {
  uint64_t dev = 0;
  uint64_t ino = 0;
  int64_t size = 0;
  int64_t mtime_ns = 0;

  bool known() const { return ino != 0; }
  friend bool operator==(const SourceIdentity& a, const SourceIdentity& b) {
    return a.dev == b.dev && a.ino == b.ino && a.size == b.size &&
           a.mtime_ns == b.mtime_ns;
  }
  template <typename H>
  friend H AbslHashValue(H h, const SourceIdentity& id) {
    return H::combine(std::move(h), id.dev, id.ino, id.size, id.mtime_ns);
  }
};

struct ManifestEntry {
  int64_t size = 0;
  int64_t mtime_ns = 0;
  uint32_t mode = 0;
  uint64_t source_dev = 0;  // 0/0 when unknown (rebuilt from the destination)
  uint64_t source_ino = 0;
  // Live mirror only: when the source sstable was first seen gone (0: it
  // is there). Pruned after --prune_after.
  int64_t missing_since_ns = 0;
  // CRC-32 of the bytes as copied; unknown for entries rebuilt from the
  // destination.
  bool has_crc32 = false;
  uint32_t crc32 = 0;

  SourceIdentity source() const {
    return SourceIdentity{source_dev, source_ino, size, mtime_ns};
  }
  friend bool operator==(const ManifestEntry& a, const ManifestEntry& b) {
    return a.size == b.size && a.mtime_ns == b.mtime_ns && a.mode == b.mode &&
           a.source_dev == b.source_dev && a.source_ino == b.source_ino &&
           a.missing_since_ns == b.missing_since_ns && a.has_crc32 == b.has_crc32 &&
           a.crc32 == b.crc32;
  }
};

// The one rule for "this source file is current at the destination": the
// manifest records its path (`entry`, null when it does not) with the
// source's size and mtime, to the destination's mtime granularity.
bool IsCurrentCopy(const ManifestEntry* entry, const FileStat& source,
                   int64_t mtime_granularity_ns);

// A source file's identity, as entries record it.
inline SourceIdentity IdentityOf(const FileStat& stat) {
  return SourceIdentity{stat.dev, stat.ino, stat.size, stat.mtime_ns};
}
// The entry of a copy of the source file with `stat` (no checksum yet).
ManifestEntry EntryForSource(const FileStat& stat);

// What the manifest holds for one source file, by the rule above: looked up
// once per file and cycle, and shared by the selector and the planner.
enum class CopyState : uint8_t {
  kNone,                // no entry for its path
  kStale,               // an entry, not current
  kCurrent,             // current; recorded from another source identity
  kCurrentSameSource,   // current, and recorded from this very inode
};
CopyState StateOfCopy(const ManifestEntry* entry, const FileStat& source,
                      int64_t mtime_granularity_ns);
inline bool IsCurrent(CopyState state) {
  return state == CopyState::kCurrent || state == CopyState::kCurrentSameSource;
}

// Sums the sizes of entries taken in path order, each source counted once
// per table directory (its hard links there are the same bytes). The one
// rule for a manifest's unique bytes, which its file also records.
class UniqueBytesCounter {
 public:
  // `same_directory`: `path` is in the directory of the path added last.
  void Add(absl::string_view path, const ManifestEntry& entry, bool same_directory = false);
  int64_t bytes() const { return bytes_; }

 private:
  absl::flat_hash_set<SourceIdentity> seen_;
  absl::string_view scope_;
  int64_t bytes_ = 0;
};

// Lookups (Find, FindBySource, entries) answer from memory only and never
// read: what they need is read in first, explicitly, by a Load call that
// returns its error (the planner and the selector thus do no I/O). Not
// thread-safe.
class Manifest {
 public:
  // Entries sorted by path.
  using Map = absl::btree_map<std::string, ManifestEntry>;

  Manifest() = default;
  Manifest(const Manifest&) = default;
  Manifest(Manifest&&) = default;
  Manifest& operator=(const Manifest&) = default;
  Manifest& operator=(Manifest&&) = default;
  virtual ~Manifest() = default;

  // The entry for `path`; its directory's section must be in memory (a
  // Load call). Like every pointer into the map, it is valid until the next
  // call that may add entries (Put, a Load).
  const ManifestEntry* Find(absl::string_view path) const;
  // A path below directory `within` ("" for anywhere) whose entry came from
  // `source`, or nullptr; the sections below `within` must be in memory:
  // hard links of a Cassandra file stay in its table directory, so that is
  // where to look. The index behind it is built on first use: a cycle with
  // nothing to copy never pays for it.
  const std::string* FindBySource(const SourceIdentity& source,
                                  absl::string_view within = "") const;
  // Where hard links of `path`'s source can be: its table directory
  // ("ks/t"), or "" (anywhere) for a path less than three deep.
  static std::string LinkScope(absl::string_view path);
  void Put(const std::string& path, const ManifestEntry& entry);
  void Erase(const std::string& path);

  // Every entry; every section must be in memory (LoadAll).
  const Map& entries() const;
  // Reads in every section not yet in memory.
  absl::Status LoadAll() const { return LoadSectionsBelow(""); }
  // Reads in the section of every directory that `wanted` accepts
  // ("ks/t", "ks/t/snapshots/tag/.idx"; "" for files at the top).
  absl::Status LoadSections(const std::function<bool(absl::string_view dir)>& wanted) const;
  // The same, among the directories at or below `scope` only: a table's
  // sections are found without looking at every directory of the node.
  absl::Status LoadSectionsBelow(absl::string_view scope,
                                 const std::function<bool(absl::string_view dir)>& wanted) const;
  // Lets go of the entries below `scope` ("ks/t": a table and everything in
  // it) that are on disk, in the base or in records of its log: they are
  // read in again when next asked for. This is what keeps a streaming cycle's
  // memory to the table at hand. Does nothing when a change below `scope` is
  // not committed yet, or for a manifest not loaded lazily (nor compacted
  // since), whose sections have no place on disk to be read back from.
  void Release(absl::string_view scope) const;
  // Reads in the sections of `scope` ("ks/t") and of every directory below
  // it ("": all): its entries are then in loaded_entries().
  absl::Status LoadBelow(absl::string_view scope) const { return LoadSectionsBelow(scope); }
  // OK unless reading a section in ever failed (an I/O error, or the file
  // changed under it): the manifest then lacks entries, so the store never
  // commits it. Every Load call returns its own error; this one is for the
  // reads a change or a count makes (Put, Erase, UniqueBytes), which cannot.
  const absl::Status& load_error() const { return load_error_; }
  // Whether `dir`'s section is in memory (or has no entries).
  bool Loaded(absl::string_view dir) const { return !unloaded_.contains(dir); }
  // Every directory that holds entries, sorted; nothing is read in.
  std::vector<std::string> Directories() const;

  // The table directories ("ks/<table dir>") of the keyspaces that hold
  // entries, sorted; nothing is read in.
  std::vector<std::string> TablesBelow(const std::vector<std::string>& keyspaces) const;

  // Only the entries in memory: those of the sections read in so far.
  const Map& loaded_entries() const { return entries_; }
  bool fully_loaded() const { return unloaded_.empty(); }
  // The most entries held in memory at once so far: what a streaming cycle
  // keeps to the largest table.
  size_t peak_loaded_entries() const { return peak_loaded_; }
  // Starts the count above again from what is in memory now (each cycle).
  void ResetPeakLoadedEntries() { peak_loaded_ = entries_.size(); }

  // An estimate while sections changed by the log are not read in (their
  // count is the base's, plus the puts, less the erasures, since).
  size_t size() const { return entries_.size() + unloaded_entries_; }
  // Bytes of all entries, those sharing a source identity (hard links) in
  // one table directory counted once. Kept in the file, so a lazily loaded
  // manifest answers from it, plus what changed in the tables changed since
  // (their sections are read in when the first change is made).
  int64_t UniqueBytes() const;

  // Paths changed since the last commit or load.
  size_t pending_changes() const { return changed_paths_.size(); }

 protected:
  // What the index asks of the store (manifest_store.h), for the sections
  // the store put in unloaded_: the entries of directory `dir` as stored,
  // names ascending. Only called for a directory in unloaded_, which only
  // the store fills; a Manifest built in memory never calls it.
  virtual absl::Status ReadSection(
      absl::string_view dir, std::vector<std::pair<std::string, ManifestEntry>>* out) const;
  // Whether a directory read in keeps its place on disk to be released to
  // (a lazily loaded or compacted manifest).
  virtual bool CanReadBack() const { return false; }
  // `dir` has no entries left in memory nor a place to be read back from.
  virtual void ForgetPlace(absl::string_view dir) const {}

  // Reads in the sections of `dir` and below it ("": all).
  absl::Status LoadSectionsBelow(absl::string_view dir) const;

  // Before an entry below `path`'s scope changes: remembers the scope's
  // unique bytes as they were (for UniqueBytes of a lazy manifest).
  void NoteChange(absl::string_view path);

  // The state the store fills and keeps in step with the file.
  // Paths put or erased since the last commit: the next log record.
  absl::btree_set<std::string> changed_paths_;
  bool replaying_ = false;  // applying the log: nothing to record
  // Mutable: const lookups read sections in on first use.
  mutable Map entries_;
  // Directories on disk and not in memory -> their entries (an estimate
  // once the log changed them).
  mutable absl::btree_map<std::string, uint64_t> unloaded_;
  // Directories in memory that can be released to their place on disk.
  mutable absl::btree_set<std::string> releasable_;
  mutable size_t unloaded_entries_ = 0;
  // UniqueBytes() as of the file; -1 when unknown (older versions).
  int64_t stored_unique_bytes_ = -1;
  // Scope -> its unique bytes when first changed since loading.
  absl::flat_hash_map<std::string, int64_t> unique_bytes_before_;

 private:
  // Before a change: the section of `dir` read in (a failure is kept in
  // load_error(): the store then never commits).
  void LoadSection(absl::string_view dir);
  // Reads in one directory not in memory; a failure is also kept in
  // load_error().
  absl::Status LoadStored(absl::btree_map<std::string, uint64_t>::iterator it) const;
  // Release() of the directories in `dirs`, all at or below `scope`.
  void ReleaseDirs(const absl::btree_set<std::string>& dirs, absl::string_view scope) const;
  // Unique bytes of the entries below `scope`, reading their sections in.
  int64_t UniqueBytesBelow(absl::string_view scope) const;

  mutable size_t peak_loaded_ = 0;
  mutable absl::Status load_error_;
  mutable bool by_source_built_ = false;
  // Node-based: FindBySource's answers stay valid while sections are read in.
  mutable absl::node_hash_map<SourceIdentity, std::string> by_source_;
};

}  // namespace snaphaven

#endif  // SNAPHAVEN_MANIFEST_H_
