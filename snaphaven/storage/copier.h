// Durable placement of files at the destination. A file is never visible
// under its final name before it is whole and durable: it is written as an
// unnamed file (O_TMPFILE) or under a temporary name in the state
// directory, given the source's mode and mtime, fsync'd (or synced with its
// batch), then linked or renamed into place, and the directory fsync'd.

#ifndef SNAPHAVEN_COPIER_H_
#define SNAPHAVEN_COPIER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>
#include <string>

#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "snaphaven/storage/bandwidth_limiter.h"
#include "snaphaven/storage/file_system.h"
#include "snaphaven/cassandra/sstable_digest.h"

namespace snaphaven {

enum class CopyOutcome {
  kDone,
  kStaged,    // written but not yet durable nor in place: see FinishStaged
  kVanished,  // the source is gone (a cleared snapshot): not an error
  kChanged,   // the source changed during the copy: discarded, retry later
  kCorrupt,   // the bytes do not match the sstable's digest: quarantined
};

// A copy written whole to its temporary file (still open), not yet fsync'd
// nor renamed into place.
struct StagedCopy {
  std::unique_ptr<WritableFile> file;
  std::string temp;  // empty: an unnamed file (FileSystem::CreateUnnamed)
  std::string relative_path;
  int64_t size = 0;
  // Its write-back was not started (a syncfs is expected): its bytes are in
  // the Copier's count of unwritten ones, under this epoch.
  bool counted_unwritten = false;
  uint64_t unwritten_epoch = 0;
};

// The bytes of staged copies whose write-back was not started and which
// are not durable yet, in whole pages (what they hold dirty in the page
// cache), for the syncfs gate. Kept by epoch, the number of syncfs calls
// begun before the copy was staged: a syncfs that succeeds has written
// every page dirtied before it began. Thread-safe.
class UnwrittenBytes {
 public:
  // Counts a copy of `size` bytes; returns its epoch.
  uint64_t Add(int64_t size);
  // A copy counted at `epoch` is durable or dropped (a no-op when a
  // syncfs since, or Clear, already took it off).
  void Remove(uint64_t epoch, int64_t size);
  // A syncfs begins; returns the epoch to pass to SyncDone.
  uint64_t BeginSync();
  // That syncfs succeeded: what was counted before it began is written.
  void SyncDone(uint64_t epoch);
  void Clear();
  int64_t total() const;

 private:
  mutable absl::Mutex mu_;
  uint64_t epoch_ ABSL_GUARDED_BY(mu_) = 0;
  absl::btree_map<uint64_t, int64_t> by_epoch_ ABSL_GUARDED_BY(mu_);
};

struct CopyResult {
  CopyOutcome outcome = CopyOutcome::kDone;
  std::shared_ptr<StagedCopy> staged;  // kStaged
  bool has_crc32 = false;
  uint32_t crc32 = 0;         // of the bytes copied
  uint32_t digest_value = 0;  // what the expected digest's algorithm gave
  std::string digest_text;    // the same for messages (hex for a SHA-1)
  std::string quarantined;    // kCorrupt: where the copy was kept
  int64_t kernel_bytes = 0;   // of those copied, bytes the kernel copied
};

// Thread-safe: copies and links may run on several threads at once.
class Copier {
 public:
  // `temp_dir` must be on the destination's file system (renames into the
  // destination must not cross devices). Copies chown to the source's owner
  // when `preserve_owner` (only root may).
  Copier(FileSystem& fs, std::string destination_root, std::string temp_dir,
         bool preserve_owner, bool checksum = true);

  // Caps the bytes written per second (not owned; null: unlimited).
  void set_limiter(BandwidthLimiter* limiter) { limiter_ = limiter; }
  // Leave the page cache as found: after each copy drop the source pages
  // the copy brought in and the destination's (clean) pages.
  void set_spare_page_cache(bool spare) { spare_page_cache_ = spare; }
  // FinishStaged makes durable and places a batch on this many threads
  // (their fsyncs share journal commits; renames run side by side).
  void set_finish_threads(int threads) { finish_threads_ = threads; }
  // Without a syncfs, a batch's fsyncs run on at least this many threads
  // (kConcurrentFsyncs; tests use 1 so that a fault lands on a known file).
  void set_concurrent_fsyncs(int fsyncs) { concurrent_fsyncs_ = fsyncs; }

  // Makes each batch of staged copies (and the pending directories)
  // durable with one SyncAll of `sync` instead of an fsync per file. Null:
  // an fsync per file (and directory). A syncfs also flushes everything
  // else written to that file system: where that includes Cassandra's
  // writes (the destination shares the data's file system), `gate` is
  // asked before each one, with the bytes of snaphaven's own staged copies
  // still unwritten (this batch's and those staged ahead of it), and a
  // batch it refuses gets an fsync per file. After the first failed
  // SyncAll, back to fsyncs for good (they tell which file failed, and the
  // handle's error was consumed). Called before a cycle's copies.
  using SyncfsGate = std::function<bool(int64_t own_unwritten_bytes)>;
  void set_file_system_sync(std::unique_ptr<FileSystemSync> sync, SyncfsGate gate = nullptr);
  // Every batch is made durable with one syncfs (a handle, and no gate).
  bool syncs_whole_file_system() const;

  // Renames and links land in their directory at once, but making them
  // durable (fsync of each directory) waits until this is called, once per
  // directory however many files went in: call it before recording the
  // files in a committed manifest.
  absl::Status SyncPendingDirs();

  // Copies `source` (whose scan saw `expected`) to destination-relative
  // `relative_path`. Errors name the file; out-of-space errors satisfy
  // IsOutOfSpace(). No temporary file survives a failure. The CRC-32 is
  // computed from the bytes as they are copied (no second read). With
  // `digest`, the bytes must also match it, else the copy is kept under
  // <dest>/.snaphaven/quarantine/<relative_path>.<crc> (kCorrupt), never
  // under its final name.
  //
  // With `may_stage`, a file of at most kStageMaxBytes is only written
  // (kStaged), its write-back started unless a syncfs is expected to make it
  // durable: FinishStaged then makes a whole batch of them durable with one
  // syncfs, or fsyncs that share journal commits, instead of one journal
  // commit per file, which is what limits a first copy of many small files.
  absl::StatusOr<CopyResult> Copy(const std::string& source, const FileStat& expected,
                                  const std::string& relative_path,
                                  const ExpectedDigest* digest = nullptr,
                                  bool may_stage = false);
  static constexpr int64_t kStageMaxBytes = 1 << 20;
  // Staged copies above this size start their write-back even when a
  // syncfs will make the batch durable (bounding the dirty pages).
  static constexpr int64_t kStageWritebackBytes = 64 << 10;
  // Without a syncfs, a batch's fsyncs run on at least this many threads:
  // they mostly wait, and concurrent fsyncs share the journal's commits and
  // the device's cache flushes (fsyncs one after another pay one each).
  static constexpr int kConcurrentFsyncs = 32;
  // SyncPendingDirs uses one syncfs (when there is a handle) above this many
  // directories, an fsync each up to it.
  static constexpr size_t kDirsWorthASyncfs = 32;

  // Makes staged copies durable (one SyncAll, or an fsync of each) and
  // renames them into place, on set_finish_threads threads (at least
  // kConcurrentFsyncs for fsyncs). One status per
  // copy, in order; a failed copy's temporary file is removed. After an
  // out-of-space error the copies not yet started are not tried (they get
  // that error too).
  std::vector<absl::Status> FinishStaged(const std::vector<std::shared_ptr<StagedCopy>>& batch);
  // Drops staged copies (their temporary files are removed).
  void DiscardStaged(const std::vector<std::shared_ptr<StagedCopy>>& batch);

  // Makes destination-relative `relative_path` a hard link of the existing
  // destination file `existing_relative`. The errno of a refused link
  // (EXDEV, EPERM, EMLINK, ENOTSUP) or a missing `existing` is kept for
  // IsLinkRefused()/IsVanished().
  absl::Status Link(const std::string& existing_relative,
                    const std::string& relative_path);

  // Creates the directories above destination-relative `relative_path`,
  // refusing to pass through anything but a real directory.
  absl::Status EnsureParentDirs(const std::string& relative_path);

  // Forgets which destination directories exist (after something removed
  // some, e.g. retention).
  void ForgetKnownDirs();

  // Removes every file in the temp dir (leftovers of a killed run); returns
  // how many.
  absl::StatusOr<int> CleanTempDir();

 private:
  // Copy's steps: the bytes (and their checksums) into the temporary file,
  // then the checks after the copy and its placement (or staging).
  struct Transfer;
  absl::Status TransferBytes(Transfer& t, const FileStat& expected, const ExpectedDigest* digest,
                             CopyResult& result);
  absl::Status FinishCopy(Transfer& t, const FileStat& expected, const std::string& relative_path,
                          const ExpectedDigest* digest, bool may_stage, CopyResult& result);
  std::string NextTempName();
  // A new temporary file: unnamed where the destination allows (`temp`
  // cleared), else named `temp` in the state directory.
  absl::StatusOr<std::unique_ptr<WritableFile>> CreateTemporary(std::string& temp);
  // Gives a durable temporary file (named `temp`, or unnamed) its final
  // destination-relative name, replacing a stale file there, and closes
  // it. The directory is left for SyncPendingDirs.
  absl::Status PlaceDurable(WritableFile& file, const std::string& temp,
                            const std::string& relative_path);
  // Gives what `link(name)` links (an existing destination file, an unnamed
  // file) the destination-relative name `relative_path` (`destination` in
  // full): one link when the name is free, else a link under a temporary
  // name renamed over the stale file. `from` must still exist for vanished
  // parents to be made again.
  absl::Status LinkIntoPlace(const std::string& relative_path, const std::string& destination,
                             const std::string& from,
                             const std::function<absl::Status(const std::string&)>& link);
  // Makes the parent directories and renames `temp` to `destination`.
  absl::Status RenameIntoPlace(const std::string& temp, const std::string& relative_path,
                               const std::string& destination);
  // Makes the parent directories of `relative_path` and runs `place` (a
  // rename or link from `from`); if a directory vanished meanwhile while
  // `from` is still there, makes them again and retries once.
  absl::Status PlaceUnderParents(const std::string& relative_path, const std::string& from,
                                 const std::function<absl::Status()>& place);
  // Takes a staged copy off unwritten_, if it is on it.
  void ForgetUnwritten(StagedCopy& staged);
  // The directory of `destination` is to be fsync'd by SyncPendingDirs.
  void NoteDirToSync(const std::string& destination);
  // One SyncAll when there is a handle and the gate (if any) lets it
  // through; false when not, and the handle dropped when it failed.
  bool SyncWholeFileSystem();

  FileSystem& fs_;
  const std::string destination_root_;
  const std::string temp_dir_;
  const bool preserve_owner_;
  const bool checksum_;
  BandwidthLimiter* limiter_ = nullptr;
  bool spare_page_cache_ = true;
  int finish_threads_ = 1;
  int concurrent_fsyncs_ = kConcurrentFsyncs;
  UnwrittenBytes unwritten_;  // of staged copies, for syncfs_gate_
  absl::flat_hash_set<std::string> dirs_to_sync_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> temp_counter_{0};
  std::atomic<bool> unnamed_files_{true};  // until the destination refuses one
  // Copies run on several threads: the directory sets are shared.
  absl::Mutex mu_;
  absl::flat_hash_set<std::string> known_dirs_ ABSL_GUARDED_BY(mu_);
  // Apart from mu_: a syncfs takes a while, and must not hold up the rest.
  mutable absl::Mutex sync_mu_;
  std::unique_ptr<FileSystemSync> file_system_sync_ ABSL_GUARDED_BY(sync_mu_);
  SyncfsGate syncfs_gate_ ABSL_GUARDED_BY(sync_mu_);
  // The next batch will likely be synced whole: the last one was (or, at
  // first, there is a handle). Small staged copies then leave their
  // write-back to the syncfs; else they start it, for their fsyncs.
  std::atomic<bool> expect_syncfs_{false};
};

// The destination will not take a hard link here; copy instead.
bool IsLinkRefused(const absl::Status& status);

}  // namespace snaphaven

#endif  // SNAPHAVEN_COPIER_H_
