// The destination manifest: what snaphaven has placed at the destination,
// keyed by path relative to the destination root. It is a cache of the
// destination (the destination is the truth) that spares a walk of a slow
// NAS on every cycle, and it remembers which source inode each copy came
// from so later snapshots of the same sstable are hard-linked, not copied.
//
// On disk (<dest>/.snaphaven/manifest), one section per destination
// directory, sections sorted by directory and entries by name:
//   snaphaven-manifest 5
//   epoch <16 hex digits: random, new at every compaction>
//   dir\t<directory>\t<entries>\t<body bytes>\t<crc32 hex of the body>
//   <name>\t<size>\t<mtime ns>\t<mode hex>\t<src dev>\t<src ino>
//     \t<crc32 hex, or - when unknown>\t<missing since, ns>      (the body)
//   ...
//   end <entries> <unique bytes> <crc32 hex of every byte before it>
// Names and directories are C-escaped when not plain. Version 4 (the same
// without the epoch) and versions 1 to 3 (one line per whole path, without
// sections) are still read, and rewritten at the next commit.
//
// Sections are what make a cycle with nothing to do cheap on a big node: the
// scan skips snapshot directories that cannot have changed, and a lazily
// loaded manifest (Loading::kLazy) only checks the sections of those
// directories and keeps their place in the file; it parses a section the
// first time something asks about a path in it. A commit copies the bytes of
// sections never parsed, after checking them again.
//
// A file that does not parse, fails a checksum or names a path outside the
// destination is corrupt and must be rebuilt from the destination.
//
// The manifest is a log (after leveldb's MANIFEST of version edits): the
// file above is its base, and <manifest>.log holds what changed since,
//   snaphaven-manifest-log 1 <crc32 hex of the base's trailer: its epoch too>
//   rec\t<body bytes>\t<crc32 hex of the body>\n<body>
//   ...
// each body a run of lines "put\t<path><the entry's columns>" and
// "del\t<path>". A commit appends one record of the paths changed since the
// last one and syncs it: the bytes written follow the change, not the node.
// Once the log has grown past a quarter of the base (or the base is of an
// older format, or was rebuilt), a commit compacts instead: it writes the
// base whole (atomically) and removes the log. A log whose header names
// another base (a compaction killed before it removed the log) is already
// in that base and is ignored. A torn last record (cut by a crash) is
// ignored; any other bad record makes the manifest corrupt.

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
#include "absl/container/node_hash_map.h"
#include "absl/hash/hash.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "snaphaven/file_system.h"

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

// Not thread-safe, not even its const methods: they may read sections in.
class Manifest {
 public:
  // Entries sorted by path.
  using Map = absl::btree_map<std::string, ManifestEntry>;

  // The entry for `path`, reading its directory's section in if need be.
  // Like every pointer into the map, it is valid until the next call that
  // may add entries (Put, and any lookup that reads a section in).
  const ManifestEntry* Find(absl::string_view path) const;
  // A path below directory `within` ("" for anywhere) whose entry came from
  // `source`, or nullptr. Reads in the sections below `within`: hard links
  // of a Cassandra file stay in its table directory, so that is where to
  // look. The index behind it is built on first use: a cycle with nothing
  // to copy never pays for it.
  const std::string* FindBySource(const SourceIdentity& source,
                                  absl::string_view within = "") const;
  // Where hard links of `path`'s source can be: its table directory
  // ("ks/t"), or "" (anywhere) for a path less than three deep.
  static std::string LinkScope(absl::string_view path);
  void Put(const std::string& path, const ManifestEntry& entry);
  void Erase(const std::string& path);

  // Every entry: reads in every section not yet in memory.
  const Map& entries() const;
  // Reads in the section of every directory that `wanted` accepts
  // ("ks/t", "ks/t/snapshots/tag/.idx"; "" for files at the top).
  void LoadSections(const std::function<bool(absl::string_view dir)>& wanted) const;
  // The same, among the directories at or below `scope` only: a table's
  // sections are found without looking at every directory of the node.
  void LoadSectionsBelow(absl::string_view scope,
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
  void LoadBelow(absl::string_view scope) const { LoadSectionsBelow(scope); }
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
  // The version of the file it was read from (5, the current one, when
  // built in memory): an older one is rewritten at the next commit.
  int format_version() const { return format_version_; }
  // Bytes of all entries, those sharing a source identity (hard links) in
  // one table directory counted once. Kept in the file, so a lazily loaded
  // manifest answers from it, plus what changed in the tables changed since
  // (their sections are read in when the first change is made).
  int64_t UniqueBytes() const;

  // OK unless reading a section in failed (an I/O error, or the file
  // changed under it): the manifest then lacks entries, so it must not be
  // planned from nor committed.
  const absl::Status& status() const { return load_error_; }

  // The file's text, piece by piece; fails when a section not in memory
  // cannot be read back (status()).
  absl::Status WriteTo(const std::function<absl::Status(absl::string_view)>& sink) const;
  // Makes every change since the last commit (or load) durable at `path`:
  // appends one record to <path>.log, or compacts (see above). Writing the
  // base starts the write-back as it goes, so that the final fsync of a
  // large manifest finds most of it on disk already. On failure nothing is
  // lost in memory: the next commit compacts.
  absl::Status Commit(FileSystem& fs, const std::string& path);
  // What Commit does once the log has grown: writes the base whole, with a
  // new epoch, and removes the log.
  absl::Status CommitWhole(FileSystem& fs, const std::string& path);
  // Paths changed since the last commit or load.
  size_t pending_changes() const { return changed_paths_.size(); }
  // Bytes in <path>.log as of the last load or commit (0: none).
  uint64_t log_bytes() const { return log_bytes_; }
  // Whether a log that grew by `appended` bytes in one go (a big first
  // copy) is better folded into the base now: every load replays the log,
  // reading in the sections it names, so a large part of the manifest left
  // in it costs every later cycle memory and time.
  bool WorthCompactingAfter(uint64_t appended) const;
  // The log that goes with the manifest file `path`.
  static std::string LogPath(const std::string& path) { return path + ".log"; }
  // The whole text at once (small manifests, tests); empty on failure.
  std::string Serialize() const;

  // InvalidArgument (naming the line) when `text` is not a whole, valid
  // manifest. Everything is in memory.
  static absl::StatusOr<Manifest> Parse(absl::string_view text);
  enum class Loading {
    kEager,  // every section parsed now
    kLazy,   // sections checked now, parsed on first use (the file stays open)
  };
  // Reads the manifest file at `path` piece by piece, so a large manifest is
  // never held twice in memory (as text and as entries), then replays the
  // records of its log. Open and read
  // errors carry their errno (ErrnoOf, IsVanished); a file that is not a
  // valid manifest gives InvalidArgument without one.
  static absl::StatusOr<Manifest> Load(FileSystem& fs, const std::string& path,
                                       Loading loading = Loading::kEager);

 private:
  friend class ManifestReader;
  friend class LegacyManifestParser;

  // One record of the log, by place: its body's bytes and their CRC-32.
  struct LogRef {
    std::shared_ptr<ReadableFile> file;
    uint64_t offset = 0;
    uint64_t length = 0;
    uint32_t crc = 0;
  };
  // Where a directory's entries are on disk: its section of a base (if it
  // has one), then the log records that changed it since, in order.
  struct StoredSection {
    std::shared_ptr<ReadableFile> base;  // null: no section in the base
    uint64_t offset = 0;
    uint64_t length = 0;
    uint64_t count = 0;       // entries; an estimate once records are added
    uint64_t base_count = 0;  // entries in the base section
    uint32_t crc = 0;
    std::vector<LogRef> records;
  };
  using StoredMap = absl::btree_map<std::string, StoredSection>;

  void EnsureSection(absl::string_view dir) const;
  // WriteTo, also listing each section written with its place in the text.
  absl::Status WriteTo(const std::function<absl::Status(absl::string_view)>& sink,
                       std::vector<std::pair<std::string, StoredSection>>* written) const;
  // The entries of `dir` as stored (its base section with its records
  // applied), names ascending.
  absl::Status ReadStoredEntries(absl::string_view dir, const StoredSection& stored,
                                 std::vector<std::pair<std::string, ManifestEntry>>* out) const;
  // Release() of the directories in `dirs`, all at or below `scope`.
  void ReleaseDirs(const absl::btree_set<std::string>& dirs, absl::string_view scope) const;
  // After a compaction wrote `written` (dir -> its section in the new base
  // `base`): every directory's place is that section, with no records.
  void Reposition(std::shared_ptr<ReadableFile> base,
                  std::vector<std::pair<std::string, StoredSection>> written);
  // Reads in the sections of `dir` and below it ("": all).
  void LoadSectionsBelow(absl::string_view dir) const;
  // The bytes of a stored section, checked against its CRC.
  absl::Status ReadStored(absl::string_view dir, const StoredSection& stored,
                          std::string* body) const;
  void EnsureAll() const;
  // Reads in one stored section; on failure records status().
  void LoadStored(StoredMap::iterator it) const;
  // Parses a section body into `out` (entries of `dir`, names ascending).
  static absl::Status ParseBody(absl::string_view dir, absl::string_view body, uint64_t count,
                                std::vector<std::pair<std::string, ManifestEntry>>* out);
  // One line of a version 1 to 3 manifest.
  absl::Status ParseLegacyLine(absl::string_view line, int version, size_t line_number,
                               std::string* previous_path);
  absl::Status ParseLineV3(absl::string_view line, size_t line_number,
                           std::string* previous_path);

  // Appends the pending changes as one record to the log, creating it.
  absl::Status AppendToLog(FileSystem& fs, const std::string& path);
  // Replays the log of the base just loaded from `path`: applies its
  // records, or (`lazy`) only notes which directories each one changes.
  absl::Status ReplayLog(FileSystem& fs, const std::string& path, bool lazy);
  absl::Status ApplyLogRecord(absl::string_view body);
  // Lazily loaded: remembers, for each directory the record (at `ref`)
  // changes, to apply it when the directory is read in.
  absl::Status IndexLogRecord(absl::string_view body, const LogRef& ref);
  // The body of the next log record: the pending changes.
  std::string RenderLogBody() const;

  // Paths put or erased since the last commit: the next log record.
  absl::btree_set<std::string> changed_paths_;
  bool replaying_ = false;     // applying the log: nothing to record
  bool has_base_ = false;      // loaded from, or committed to, a file
  uint32_t base_crc_ = 0;      // the base's trailer checksum: its identity
  uint64_t base_bytes_ = 0;
  uint64_t log_bytes_ = 0;
  bool compact_next_ = false;  // the log cannot take another record
  mutable uint32_t written_crc_ = 0;  // the trailer checksum WriteTo wrote last
  mutable int64_t written_unique_bytes_ = 0;  // and the unique bytes in its trailer

  // Mutable: const lookups read sections in on first use.
  mutable Map entries_;
  mutable StoredMap unloaded_;
  // Where the directories read in are on disk, to be released to: kept
  // only while every change is recorded on disk as it is committed (a lazily
  // loaded or compacted manifest: `positioned_`).
  mutable StoredMap stored_of_loaded_;
  mutable size_t peak_loaded_ = 0;
  bool positioned_ = false;
  std::shared_ptr<ReadableFile> log_file_;  // the log, read back by records
  mutable size_t unloaded_entries_ = 0;
  mutable absl::Status load_error_;
  int format_version_ = 5;
  uint64_t epoch_ = 0;  // chosen at each compaction: the base's identity
  // UniqueBytes() as of the file; -1 when unknown (older versions).
  int64_t stored_unique_bytes_ = -1;
  // Unique bytes of the entries below `scope`, reading their sections in.
  int64_t UniqueBytesBelow(absl::string_view scope) const;
  // Before an entry below `path`'s scope changes: remembers the scope's
  // unique bytes as they were (for UniqueBytes of a lazy manifest).
  void NoteChange(absl::string_view path);
  // Scope -> its unique bytes when first changed since loading.
  absl::flat_hash_map<std::string, int64_t> unique_bytes_before_;
  mutable bool by_source_built_ = false;
  // Node-based: FindBySource's answers stay valid while sections are read in.
  mutable absl::node_hash_map<SourceIdentity, std::string> by_source_;
};

}  // namespace snaphaven

#endif  // SNAPHAVEN_MANIFEST_H_
