// The manifest store: the destination manifest's bytes on disk. A
// StoredManifest is the in-memory index (manifest.h) together with its place
// on disk: it reads a manifest file (eagerly, or lazily, section by
// section), replays and appends to its log, compacts it, and reads the older
// formats. The names of the files are the destination's (destination.h
// StateDir::manifest, ManifestLogPath).
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
// file above is its base, and its log (ManifestLogPath) holds what changed
// since,
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

#ifndef SNAPHAVEN_MANIFEST_STORE_H_
#define SNAPHAVEN_MANIFEST_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "snaphaven/storage/file_system.h"
#include "snaphaven/state/manifest.h"

namespace snaphaven {

class StoredManifest : public Manifest {
 public:
  enum class Loading {
    kEager,  // every section parsed now
    kLazy,   // sections checked now, parsed on first use (the file stays open)
  };

  // InvalidArgument (naming the line) when `text` is not a whole, valid
  // manifest. Everything is in memory.
  static absl::StatusOr<StoredManifest> Parse(absl::string_view text);
  // Reads the manifest file at `path` piece by piece, so a large manifest is
  // never held twice in memory (as text and as entries), then replays the
  // records of its log. Open and read errors carry their errno (ErrnoOf,
  // IsVanished); a file that is not a valid manifest gives InvalidArgument
  // without one.
  static absl::StatusOr<StoredManifest> Load(FileSystem& fs, const std::string& path,
                                             Loading loading = Loading::kEager);
  // The log that goes with the manifest file `path` (destination.h).
  static std::string LogPath(const std::string& path);

  // The version of the file it was read from (5, the current one, when
  // built in memory): an older one is rewritten at the next commit.
  int format_version() const { return format_version_; }

  // The file's text, piece by piece; fails when a section not in memory
  // cannot be read back (status()).
  absl::Status WriteTo(const std::function<absl::Status(absl::string_view)>& sink) const;
  // The whole text at once (small manifests, tests); empty on failure.
  std::string Serialize() const;

  // Makes every change since the last commit (or load) durable at `path`:
  // appends one record to its log, or compacts (see above). Writing the
  // base starts the write-back as it goes, so that the final fsync of a
  // large manifest finds most of it on disk already. On failure nothing is
  // lost in memory: the next commit compacts.
  absl::Status Commit(FileSystem& fs, const std::string& path);
  // What Commit does once the log has grown: writes the base whole, with a
  // new epoch, and removes the log.
  absl::Status CommitWhole(FileSystem& fs, const std::string& path);
  // Bytes in the log as of the last load or commit (0: none).
  uint64_t log_bytes() const { return log_bytes_; }
  // Whether a log that grew by `appended` bytes in one go (a big first
  // copy) is better folded into the base now: every load replays the log,
  // reading in the sections it names, so a large part of the manifest left
  // in it costs every later cycle memory and time.
  bool WorthCompactingAfter(uint64_t appended) const;

 protected:
  absl::Status ReadSection(absl::string_view dir,
                           std::vector<std::pair<std::string, ManifestEntry>>* out) const override;
  bool CanReadBack() const override { return positioned_; }
  void ForgetPlace(absl::string_view dir) const override;

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
    uint64_t base_count = 0;  // entries in the base section
    uint32_t crc = 0;
    std::vector<LogRef> records;
  };
  using StoredMap = absl::btree_map<std::string, StoredSection>;
  using Entries = std::vector<std::pair<std::string, ManifestEntry>>;

  // WriteTo, also listing each section written with its place in the text.
  absl::Status WriteTo(const std::function<absl::Status(absl::string_view)>& sink,
                       std::vector<std::pair<std::string, StoredSection>>* written) const;
  // The text of the section of `dir` that is not in memory, and its count
  // (0: every entry erased since, no section).
  absl::Status RenderStored(absl::string_view dir, std::string* body, uint64_t* count) const;
  // The bytes of a stored section, checked against its CRC.
  absl::Status ReadStored(absl::string_view dir, const StoredSection& stored,
                          std::string* body) const;
  // Parses a section body into `out` (entries of `dir`, names ascending).
  static absl::Status ParseBody(absl::string_view dir, absl::string_view body, uint64_t count,
                                Entries* out);
  // One line of a version 1 to 3 manifest.
  absl::Status ParseLegacyLine(absl::string_view line, int version, size_t line_number,
                               std::string* previous_path);
  absl::Status ParseLineV3(absl::string_view line, size_t line_number,
                           std::string* previous_path);
  // A section of the base being read lazily: in the file, not in memory.
  void AddUnloaded(std::string dir, StoredSection stored);

  // After a compaction wrote `written` (dir -> its section in the new base
  // `base`): every directory's place is that section, with no records.
  void Reposition(std::shared_ptr<ReadableFile> base,
                  std::vector<std::pair<std::string, StoredSection>> written);
  // The directories in memory lose their places on disk: they stay in memory.
  void Unposition();
  // Appends the pending changes as one record to the log, creating it.
  absl::Status AppendToLog(FileSystem& fs, const std::string& path);
  // After a record at `record` was appended: each directory it changed is
  // its stored place plus this record.
  void NoteAppended(FileSystem& fs, const std::string& log, LogRef record, bool created);
  // The body of the next log record: the pending changes.
  std::string RenderLogBody() const;
  // Replays the log of the base just loaded from `path`: applies its
  // records, or (`lazy`) only notes which directories each one changes.
  absl::Status ReplayLog(FileSystem& fs, const std::string& path, bool lazy);
  // Replays the records of `file` (of `size` bytes) from `offset`.
  absl::Status ReplayRecords(const std::shared_ptr<ReadableFile>& file, uint64_t offset,
                             uint64_t size, bool lazy);
  absl::Status ApplyLogRecord(absl::string_view body);
  // Lazily loaded: remembers, for each directory the record (at `ref`)
  // changes, to apply it when the directory is read in.
  absl::Status IndexLogRecord(absl::string_view body, const LogRef& ref);

  // Where each directory with a place on disk is: those not in memory
  // (unloaded_), and those in memory that can be let go of (releasable_).
  mutable StoredMap places_;
  bool positioned_ = false;  // loaded lazily or compacted: places_ kept for all
  std::shared_ptr<ReadableFile> log_file_;  // the log, read back by records
  bool has_base_ = false;      // loaded from, or committed to, a file
  uint32_t base_crc_ = 0;      // the base's trailer checksum: its identity
  uint64_t base_bytes_ = 0;
  uint64_t log_bytes_ = 0;
  bool compact_next_ = false;  // the log cannot take another record
  int format_version_ = 5;
  uint64_t epoch_ = 0;  // chosen at each compaction: the base's identity
  mutable uint32_t written_crc_ = 0;  // the trailer checksum WriteTo wrote last
  mutable int64_t written_unique_bytes_ = 0;  // and the unique bytes in its trailer
};

}  // namespace snaphaven

#endif  // SNAPHAVEN_MANIFEST_STORE_H_
