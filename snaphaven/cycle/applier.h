// The applier runs a plan: each copy or link (retried on transient errors),
// on --copy_threads workers so that fsync latencies overlap, small copies
// made durable in batches (Copier::FinishStaged). It reports each action's
// outcome through a callback on the caller's thread, in plan order (a small
// copy's once its batch is durable, after later actions), and
// touches neither the manifest nor its log: recording what was done is the
// caller's (the cycle's) business.

#ifndef SNAPHAVEN_APPLIER_H_
#define SNAPHAVEN_APPLIER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/optional.h"
#include "snaphaven/storage/copier.h"
#include "snaphaven/storage/file_system.h"
#include "snaphaven/cycle/planner.h"
#include "snaphaven/cycle/scanner.h"
#include "snaphaven/cassandra/sstable_digest.h"

namespace snaphaven {

// What became of one action.
enum class Applied {
  kCopied,   // copied and durable
  kStaged,   // written, to be made durable with a batch (internal)
  kLinked,   // hard-linked to the copy it names
  kVanished,  // the source is gone (a snapshot cleared)
  kChanged,   // the source changed during the copy
  kCorrupt,   // the source's bytes do not match its sstable's digest
  kNotRun,    // a link whose copy did not complete: left for the next cycle
};
struct AppliedFile {
  Applied kind = Applied::kCopied;
  CopyResult copy;  // kCopied, kCorrupt
};

struct ApplierOptions {
  std::vector<std::string> data_roots;
  int copy_threads = 2;
  bool checksum = true;  // check each Data.db against its sstable's digest
  // Small copies are made durable in batches of at most this many files
  // and kStageBatchBytes (off: one fsync each).
  bool stage_small_files = true;
  size_t stage_batch_files = 1024;
  // Transient errors (IsTransient) are retried this many times in all,
  // pausing retry_backoff, then twice that, ...
  int attempts = 3;
  absl::Duration retry_backoff = absl::Milliseconds(200);
};

// The hooks a run reports through, all called on the caller's thread.
struct ApplyHooks {
  // Each action's outcome, in plan order but for batched small copies,
  // reported when their batch is durable (an error as a status). Returns
  // false to stop: only what is under way is then finished.
  std::function<bool(size_t action, const absl::StatusOr<AppliedFile>& outcome)> record;
  // After each action taken: a chance to commit. Returns false to stop.
  std::function<bool()> checkpoint = [] { return true; };
  // Polled between actions; true stops the run as interrupted.
  std::function<bool()> stop_requested = [] { return false; };
  // Whether copies written but not yet durable are to be dropped rather
  // than made durable (the destination is full, or no longer ours).
  std::function<bool()> discard_staged = [] { return false; };
  // Before each action is taken, with the number taken so far.
  std::function<void(size_t taken)> progress = [](size_t) {};
};

struct ApplyReport {
  std::vector<bool> succeeded;  // per action: copied or linked
  bool interrupted = false;     // stop_requested said so
};

// Staged small copies are made durable together: one syncfs, or a run of
// fsyncs that share journal commits. A syncfs costs about as much for 100
// files as for 1000 (a journal commit and a device cache flush), so a batch
// is as large as the open-file limit allows (each staged copy keeps its
// descriptor until then, and the pipeline runs up to a batch ahead), at
// most 1024 files; and at most 64 MiB, to bound the dirty pages.
constexpr size_t kMaxStageBatchFiles = 1024;
constexpr int64_t kStageBatchBytes = 64 << 20;
size_t StageBatchFiles(int copy_threads);

class Applier {
 public:
  Applier(FileSystem& fs, Copier& copier, ApplierOptions options);

  // Runs every action of `plan` (on `files`, the scan it was planned from).
  ApplyReport Run(const Plan& plan, const std::vector<SourceFile>& files,
                  const ApplyHooks& hooks);

  // One copy or link, retried on transient errors (falling back to a copy
  // where links are refused). With `may_stage`, a small copy may come back
  // kStaged. Thread-safe.
  absl::StatusOr<AppliedFile> Apply(const Action& action, const SourceFile& file,
                                    bool may_stage);

  // The digest the Data.db `rel` below `root` (a data root or the
  // destination) must match, from its sstable's digest component beside it
  // (and CompressionInfo.db for compressed ka sstables); nullopt for other
  // files and sstables without a usable digest.
  absl::optional<ExpectedDigest> DigestFor(const std::string& root, const std::string& rel);

 private:
  absl::StatusOr<AppliedFile> ApplyOnce(const Action& action, const SourceFile& file,
                                        bool may_stage);
  class PlanRun;  // one Run, in applier.cc

  FileSystem& fs_;
  Copier& copier_;
  const ApplierOptions options_;
};

}  // namespace snaphaven

#endif  // SNAPHAVEN_APPLIER_H_
