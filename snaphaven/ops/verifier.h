// Re-reads copies at the destination and checks them against what the
// manifest recorded: their size and mtime, the CRC-32 of their bytes and,
// for a Data.db, its sstable's own digest. Used by --verify and by
// --verify_sample.
//
// Hard links are read once: every name is stat'ed (a missing name, or one
// whose size or mtime changed, is that name's problem), but the bytes of
// each distinct destination inode (st_dev, st_ino) are read once. Each
// name's recorded CRC-32 is compared with them on its own; a digest (found
// through the first Data.db name that has one) or a read error is every
// name's, since they share the bytes.

#ifndef SNAPHAVEN_VERIFIER_H_
#define SNAPHAVEN_VERIFIER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "absl/types/optional.h"
#include "snaphaven/storage/file_system.h"
#include "snaphaven/state/manifest.h"
#include "snaphaven/cassandra/sstable_digest.h"

namespace snaphaven {

// What --verify found.
struct VerifyStats {
  int64_t files = 0;     // manifest entries (names) checked
  int64_t distinct = 0;  // of them, distinct inodes read
  int64_t bytes = 0;     // bytes read
  int64_t missing = 0;
  int64_t changed = 0;    // size or mtime differ from the manifest
  int64_t corrupt = 0;    // checksum or sstable digest mismatch
  int64_t unknown = 0;    // at the destination, not in the manifest
  int64_t unchecked = 0;  // no recorded checksum and no digest to compare with
  int64_t unreadable = 0;  // names or directories that could not be searched for unknown files
  int64_t repaired = 0;   // with repair: re-copied
  absl::Duration duration;
  absl::optional<std::string> fatal;
  int64_t problems() const { return missing + changed + corrupt + unknown + unreadable; }
};

// A manifest entry to check, by its path relative to the destination.
struct RecordedFile {
  const std::string* rel;
  const ManifestEntry* entry;
};

class DestinationVerifier {
 public:
  // `digest_for(rel)`: the digest the Data.db at `rel` must match (nullopt
  // for other files and sstables without one).
  DestinationVerifier(FileSystem& fs, std::string destination, int64_t mtime_granularity_ns,
                      std::function<absl::optional<ExpectedDigest>(const std::string&)> digest_for);

  // Checks `files`, counting into `stats` (files, distinct, bytes and the
  // problems); `done(i, problem)` gets each file's verdict in order ("" when
  // it passed). False when `stop()` (polled between files) said to stop.
  bool Check(const std::vector<RecordedFile>& files, VerifyStats& stats,
             const std::function<bool()>& stop,
             const std::function<void(size_t, const std::string&)>& done);

 private:
  struct Inode;
  // Reads the inode's bytes through the name `rel` once.
  void Read(Inode& inode, const std::vector<RecordedFile>& files, const std::string& rel,
            int64_t size, VerifyStats& stats);
  // The verdict of one name whose inode was read.
  static std::string Verdict(const Inode& inode, const ManifestEntry& entry, VerifyStats& stats);

  FileSystem& fs_;
  const std::string destination_;
  const int64_t mtime_granularity_ns_;
  const std::function<absl::optional<ExpectedDigest>(const std::string&)> digest_for_;
};

}  // namespace snaphaven

#endif  // SNAPHAVEN_VERIFIER_H_
