// The destination manifest: what snaphaven has placed at the destination,
// keyed by path relative to the destination root. It is a cache of the
// destination (the destination is the truth) that spares a walk of a slow
// NAS on every cycle, and it remembers which source inode each copy came
// from so later snapshots of the same sstable are hard-linked, not copied.
//
// On disk (<dest>/.snaphaven/manifest), one text line per entry, sorted:
//   snaphaven-manifest 3
//   <bytes shared with the previous path>\t<the rest, C-escaped if not plain>
//     \t<size>\t<mtime ns>\t<mode hex>\t<src dev>\t<src ino>
//     \t<crc32 hex, or - when unknown>\t<missing since, ns>
// (versions 1 and 2 wrote whole paths, 2 without the prefix sharing and 1
// also without the last two columns; both are still read).
//   end <entries> <crc32 hex of every byte before this line>
// A file that does not parse, fails its checksum or names a path outside the
// destination is corrupt and must be rebuilt from the destination.

#ifndef SNAPHAVEN_MANIFEST_H_
#define SNAPHAVEN_MANIFEST_H_

#include <cstdint>
#include <string>

#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
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

class Manifest {
 public:
  // Entries sorted by path, so the serialized form is deterministic.
  using Map = absl::btree_map<std::string, ManifestEntry>;

  const ManifestEntry* Find(absl::string_view path) const;
  // A path whose entry came from `source`, or nullptr. The index behind it
  // is built on first use: a cycle with nothing to copy never pays for it.
  const std::string* FindBySource(const SourceIdentity& source) const;
  void Put(const std::string& path, const ManifestEntry& entry);
  void Erase(const std::string& path);

  const Map& entries() const { return entries_; }
  size_t size() const { return entries_.size(); }

  std::string Serialize() const;
  // InvalidArgument (naming the line) when `text` is not a whole, valid
  // manifest.
  static absl::StatusOr<Manifest> Parse(absl::string_view text);
  // Reads the manifest file at `path` piece by piece, so a large manifest is
  // never held twice in memory (as text and as entries). Open and read
  // errors carry their errno (ErrnoOf, IsVanished); a file that is not a
  // valid manifest gives InvalidArgument without one.
  static absl::StatusOr<Manifest> Load(FileSystem& fs, const std::string& path);

 private:
  // Parses one entry line (without its newline) into the map.
  absl::Status ParseLine(absl::string_view line, int version, size_t line_number,
                         std::string* previous_path);
  absl::Status ParseLineV3(absl::string_view line, size_t line_number,
                           std::string* previous_path);
  friend absl::Status ManifestLineSink(Manifest&, absl::string_view, int, size_t, std::string*);

  Map entries_;
  mutable bool by_source_built_ = false;
  mutable absl::flat_hash_map<SourceIdentity, std::string> by_source_;
};

}  // namespace snaphaven

#endif  // SNAPHAVEN_MANIFEST_H_
