#include "snaphaven/storage/copier.h"

#include <cerrno>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/types/optional.h"
#include "glog/logging.h"
#include "snaphaven/storage/checksum.h"
#include "snaphaven/state/destination.h"
#include "snaphaven/storage/parallel_for.h"

namespace snaphaven {
namespace {

// Large enough for full-speed sequential I/O, small enough to stay out of
// the way of Cassandra's memory.
constexpr size_t kCopyBufferSize = 1 << 20;

bool SameContentStat(const FileStat& a, const FileStat& b) {
  return a.dev == b.dev && a.ino == b.ino && a.size == b.size &&
         a.mtime_ns == b.mtime_ns;
}

}  // namespace

bool IsLinkRefused(const absl::Status& status) {
  int error = ErrnoOf(status);
  return error == EXDEV || error == EPERM || error == EMLINK ||
         error == ENOTSUP || error == EOPNOTSUPP || error == ENOSYS;
}

Copier::Copier(FileSystem& fs, std::string destination_root, std::string temp_dir,
               bool preserve_owner, bool checksum)
    : fs_(fs),
      destination_root_(std::move(destination_root)),
      temp_dir_(std::move(temp_dir)),
      preserve_owner_(preserve_owner),
      checksum_(checksum) {}

std::string Copier::NextTempName() {
  return JoinPath(temp_dir_, absl::StrCat("copy-", ++temp_counter_, ".tmp"));
}

absl::StatusOr<int> Copier::CleanTempDir() {
  absl::StatusOr<std::vector<std::string>> names = fs_.ListDir(temp_dir_);
  if (!names.ok()) return names.status();
  int removed = 0;
  for (const std::string& name : *names) {
    absl::Status status = fs_.Remove(JoinPath(temp_dir_, name));
    if (!status.ok() && !IsVanished(status)) return status;
    ++removed;
  }
  return removed;
}

absl::Status Copier::EnsureParentDirs(const std::string& relative_path) {
  std::string parent(DirName(relative_path));
  if (parent.empty()) return absl::OkStatus();
  {
    absl::MutexLock lock(&mu_);
    if (known_dirs_.contains(parent)) return absl::OkStatus();
  }
  std::string rel;
  for (absl::string_view part : absl::StrSplit(parent, '/')) {
    std::string up = rel;
    rel = rel.empty() ? std::string(part) : absl::StrCat(rel, "/", part);
    {
      absl::MutexLock lock(&mu_);
      if (known_dirs_.contains(rel)) continue;
    }
    std::string path = JoinPath(destination_root_, rel);
    absl::StatusOr<FileStat> st = fs_.Stat(path);
    if (st.ok()) {
      // A symlink or file planted here must never redirect a write.
      if (st->type != FileType::kDirectory) {
        return absl::FailedPreconditionError(absl::StrCat(
            "destination ", path, " exists and is not a directory"));
      }
    } else if (IsVanished(st.status())) {
      absl::Status made = fs_.MakeDir(path);
      if (!made.ok() && made.code() != absl::StatusCode::kAlreadyExists) {
        return made;
      }
      // The new directory's name must survive a crash like the files in it.
      absl::Status synced = fs_.SyncDir(JoinPath(destination_root_, up));
      if (!synced.ok()) return synced;
    } else {
      return st.status();
    }
    absl::MutexLock lock(&mu_);
    known_dirs_.insert(rel);
  }
  return absl::OkStatus();
}

// One copy's bytes on their way: what Copier::Copy carries from one step
// to the next.
struct Copier::Transfer {
  std::unique_ptr<ReadableFile> in;
  std::unique_ptr<WritableFile> out;
  std::string temp;  // its name, "" for an unnamed file
  int64_t copied = 0;
  uint32_t crc = 0;
  // The expected digest when its algorithm is not CRC-32 (a CRC-32 digest
  // is the copy's own checksum: no second pass).
  absl::optional<DigestHasher> hasher;
};

absl::StatusOr<CopyResult> Copier::Copy(const std::string& source, const FileStat& expected,
                                        const std::string& relative_path,
                                        const ExpectedDigest* digest, bool may_stage) {
  CopyResult result;
  Transfer t;
  absl::StatusOr<std::unique_ptr<ReadableFile>> in = fs_.OpenForRead(source);
  if (!in.ok()) {
    if (!IsVanished(in.status())) return in.status();
    result.outcome = CopyOutcome::kVanished;
    return result;
  }
  t.in = *std::move(in);
  absl::StatusOr<FileStat> before = t.in->Stat();
  if (!before.ok()) return before.status();
  if (!SameContentStat(*before, expected)) {
    result.outcome = CopyOutcome::kChanged;
    return result;
  }
  // Pages already cached belong to Cassandra's working set: keep them, and
  // drop the rest once read (whatever happens to the copy).
  std::vector<bool> resident;
  if (spare_page_cache_) resident = t.in->ResidentPages();
  struct DropSourcePages {
    ~DropSourcePages() {
      if (enabled) file->DropPagesExcept(*keep);
    }
    bool enabled;
    ReadableFile* file;
    const std::vector<bool>* keep;
  } drop_source_pages{spare_page_cache_ && (!resident.empty() || expected.size == 0),
                      t.in.get(), &resident};

  // The temporary file comes first: if the state directory is gone (the
  // destination was removed or unmounted), this fails before anything is
  // created in what may now be the wrong place.
  absl::StatusOr<std::unique_ptr<WritableFile>> out = CreateTemporary(t.temp);
  if (!out.ok()) return out.status();
  t.out = *std::move(out);
  absl::Status status = TransferBytes(t, expected, digest, result);
  // Every failure from here on removes the temporary file (if it has a name).
  if (status.ok()) status = FinishCopy(t, expected, relative_path, digest, may_stage, result);
  if (!status.ok() || result.outcome == CopyOutcome::kChanged) {
    t.out.reset();
    if (!t.temp.empty()) (void)fs_.Remove(t.temp);
  }
  if (!status.ok()) return status;
  return result;
}

absl::Status Copier::TransferBytes(Transfer& t, const FileStat& expected,
                                   const ExpectedDigest* digest, CopyResult& result) {
  if (digest != nullptr && digest->algorithm != DigestAlgorithm::kCrc32) {
    t.hasher.emplace(*digest, expected.size);
  }
  // With no checksum to compute, the kernel copies (copy_file_range: no
  // trip through user space; a server-side copy on NFS 4.2) until it says
  // it cannot, then the read/write loop goes on from there.
  bool kernel = !checksum_ && digest == nullptr;
  while (kernel && t.copied < expected.size) {
    const size_t want =
        static_cast<size_t>(std::min<int64_t>(kCopyBufferSize, expected.size - t.copied));
    absl::StatusOr<size_t> got = t.out->AppendFromKernel(*t.in, want);
    if (!got.ok() && !absl::IsUnimplemented(got.status())) return got.status();
    if (!got.ok() || *got == 0) {
      // Refused, or nothing where bytes were expected: read/write goes on
      // from here and tells a short file from a kernel that would not.
      kernel = false;
      break;
    }
    if (limiter_ != nullptr) limiter_->Acquire(static_cast<int64_t>(*got));
    t.copied += static_cast<int64_t>(*got);
    result.kernel_bytes += static_cast<int64_t>(*got);
  }
  // Reading stops at the size the scan saw: the stat after the copy tells a
  // file that grew (or shrank) meanwhile, so no read is spent to find EOF.
  std::unique_ptr<char[]> buffer(kernel ? nullptr : new char[kCopyBufferSize]);
  while (!kernel && t.copied < expected.size) {
    const size_t want =
        static_cast<size_t>(std::min<int64_t>(kCopyBufferSize, expected.size - t.copied));
    absl::StatusOr<size_t> got = t.in->Read(buffer.get(), want);
    if (!got.ok()) return got.status();
    if (*got == 0) break;
    absl::string_view piece(buffer.get(), *got);
    if (limiter_ != nullptr) limiter_->Acquire(static_cast<int64_t>(*got));
    absl::Status appended = t.out->Append(piece);
    if (!appended.ok()) return appended;
    if (checksum_ || digest != nullptr) t.crc = Crc32(t.crc, piece);
    if (t.hasher.has_value()) t.hasher->Update(piece);
    t.copied += static_cast<int64_t>(*got);
  }
  return absl::OkStatus();
}

absl::Status Copier::FinishCopy(Transfer& t, const FileStat& expected,
                                const std::string& relative_path, const ExpectedDigest* digest,
                                bool may_stage, CopyResult& result) {
  absl::StatusOr<FileStat> after = t.in->Stat();
  if (!after.ok()) return after.status();
  if (t.copied != expected.size || !SameContentStat(*after, expected)) {
    result.outcome = CopyOutcome::kChanged;
    return absl::OkStatus();
  }
  result.has_crc32 = checksum_ || digest != nullptr;
  result.crc32 = t.crc;
  absl::Status status = t.out->SetAttributes(expected, preserve_owner_);
  if (!status.ok()) return status;
  const bool separate_digest = t.hasher.has_value();
  if (digest != nullptr) {
    result.digest_value = separate_digest ? t.hasher->Value() : t.crc;
    result.digest_text = separate_digest ? t.hasher->Describe() : absl::StrCat(t.crc);
  }
  const bool corrupt =
      digest != nullptr && (separate_digest ? !t.hasher->Matches() : t.crc != digest->value);
  if (may_stage && !corrupt && expected.size <= kStageMaxBytes) {
    // Write-back starts now, so that the batch's fsyncs find their data
    // written, or, before a syncfs, so that the pages waiting for it stay
    // few (a window of staged copies of up to 1 MiB each could otherwise
    // hold a gigabyte dirty); the smallest are left to a syncfs, when the
    // batch is likely to get one.
    const bool writeback = !expect_syncfs_.load() || expected.size > kStageWritebackBytes;
    if (writeback) t.out->StartWriteback();
    result.staged = std::make_shared<StagedCopy>(
        StagedCopy{std::move(t.out), t.temp, relative_path, expected.size, !writeback,
                   writeback ? 0 : unwritten_.Add(expected.size)});
    result.outcome = CopyOutcome::kStaged;
    return absl::OkStatus();
  }
  status = t.out->Sync();
  if (status.ok() && spare_page_cache_) t.out->DropPages();
  if (!status.ok()) return status;
  if (corrupt) {
    // The source is damaged or was read wrong: keep the evidence, never
    // under the final name.
    std::string kept = absl::StrCat(kStateDirName, "/quarantine/", relative_path, ".",
                                    absl::Hex(t.crc, absl::kZeroPad8));
    status = PlaceDurable(*t.out, t.temp, kept);
    if (!status.ok()) return status;
    result.quarantined = kept;
    result.outcome = CopyOutcome::kCorrupt;
    return absl::OkStatus();
  }
  status = PlaceDurable(*t.out, t.temp, relative_path);
  if (status.ok()) result.outcome = CopyOutcome::kDone;
  return status;
}

absl::StatusOr<std::unique_ptr<WritableFile>> Copier::CreateTemporary(std::string& temp) {
  // An unnamed file (O_TMPFILE) locks and grows no directory while it is
  // written and leaves nothing behind after a crash; where the destination
  // cannot make one, a temporary name in the state directory.
  if (unnamed_files_.load()) {
    absl::StatusOr<std::unique_ptr<WritableFile>> file = fs_.CreateUnnamed(temp_dir_);
    if (!absl::IsUnimplemented(file.status())) {
      temp.clear();
      return file;
    }
    VLOG(1) << file.status().message() << ": temporary files get names";
    unnamed_files_.store(false);
  }
  temp = NextTempName();
  return fs_.CreateNew(temp);
}

absl::Status Copier::PlaceDurable(WritableFile& file, const std::string& temp,
                                  const std::string& relative_path) {
  const std::string destination = JoinPath(destination_root_, relative_path);
  absl::Status status;
  if (!temp.empty()) {
    status = file.Close();
    if (status.ok()) status = RenameIntoPlace(temp, relative_path, destination);
  } else {
    status = LinkIntoPlace(relative_path, destination, temp_dir_,
                           [&](const std::string& name) { return file.LinkAs(name); });
    absl::Status closed = file.Close();
    if (status.ok()) status = closed;
  }
  if (status.ok()) NoteDirToSync(destination);
  return status;
}

void Copier::set_file_system_sync(std::unique_ptr<FileSystemSync> sync, SyncfsGate gate) {
  absl::MutexLock lock(&sync_mu_);
  file_system_sync_ = std::move(sync);
  syncfs_gate_ = std::move(gate);
  expect_syncfs_.store(file_system_sync_ != nullptr);
  // Set before a cycle's copies: none staged should be counted. (Should
  // one be, finishing it later finds its epoch gone and changes nothing.)
  unwritten_.Clear();
}

bool Copier::syncs_whole_file_system() const {
  absl::MutexLock lock(&sync_mu_);
  return file_system_sync_ != nullptr && !syncfs_gate_;
}

bool Copier::SyncWholeFileSystem() {
  // Held through the syncfs; copies only read the atomics.
  absl::MutexLock lock(&sync_mu_);
  if (file_system_sync_ == nullptr) return false;
  if (syncfs_gate_ && !syncfs_gate_(unwritten_.total())) return false;
  const uint64_t epoch = unwritten_.BeginSync();
  absl::Status synced = file_system_sync_->SyncAll();
  if (synced.ok()) {
    unwritten_.SyncDone(epoch);
    return true;
  }
  LOG(WARNING) << synced << "; making each file durable on its own from now on";
  file_system_sync_.reset();
  expect_syncfs_.store(false);
  return false;
}

std::vector<absl::Status> Copier::FinishStaged(
    const std::vector<std::shared_ptr<StagedCopy>>& batch) {
  // One syncfs makes the whole batch durable. Without it, their write-back
  // was started when they were staged, and their fsyncs run side by side,
  // so that one journal commit and one cache flush serve many of them.
  const bool synced_together = !batch.empty() && SyncWholeFileSystem();
  // The next batch is likely to get what this one got.
  if (!batch.empty()) expect_syncfs_.store(synced_together);
  const int threads =
      synced_together ? finish_threads_ : std::max(finish_threads_, concurrent_fsyncs_);
  std::vector<absl::Status> statuses(batch.size());
  absl::Mutex full_mu;
  absl::Status full;  // once the destination is full, the rest is not tried
  ParallelFor(threads, batch.size(), [&](size_t k) {
    StagedCopy& staged = *batch[k];
    absl::Status status;
    {
      absl::MutexLock lock(&full_mu);
      status = full;
    }
    if (status.ok() && !synced_together) status = staged.file->Sync();
    if (status.ok() && spare_page_cache_) staged.file->DropPages();
    if (status.ok()) status = PlaceDurable(*staged.file, staged.temp, staged.relative_path);
    staged.file.reset();
    if (IsOutOfSpace(status)) {
      absl::MutexLock lock(&full_mu);
      if (full.ok()) full = status;
    }
    if (!status.ok() && !staged.temp.empty()) (void)fs_.Remove(staged.temp);
    ForgetUnwritten(staged);
    statuses[k] = std::move(status);
  });
  return statuses;
}

void Copier::ForgetUnwritten(StagedCopy& staged) {
  if (!staged.counted_unwritten) return;
  unwritten_.Remove(staged.unwritten_epoch, staged.size);
  staged.counted_unwritten = false;
}

void Copier::DiscardStaged(const std::vector<std::shared_ptr<StagedCopy>>& batch) {
  for (const std::shared_ptr<StagedCopy>& staged : batch) {
    ForgetUnwritten(*staged);
    staged->file.reset();
    if (!staged->temp.empty()) (void)fs_.Remove(staged->temp);
  }
}

absl::Status Copier::Link(const std::string& existing_relative,
                          const std::string& relative_path) {
  const std::string existing = JoinPath(destination_root_, existing_relative);
  const std::string destination = JoinPath(destination_root_, relative_path);
  absl::Status status =
      LinkIntoPlace(relative_path, destination, existing,
                    [&](const std::string& name) { return fs_.Link(existing, name); });
  if (status.ok()) NoteDirToSync(destination);
  return status;
}

absl::Status Copier::LinkIntoPlace(const std::string& relative_path,
                                   const std::string& destination, const std::string& from,
                                   const std::function<absl::Status(const std::string&)>& link) {
  // Mostly the final name is free: one link(2) makes it appear, whole (it
  // never follows nor replaces what holds the name).
  absl::Status status = PlaceUnderParents(relative_path, from, [&] { return link(destination); });
  if (ErrnoOf(status) != EEXIST) return status;
  // A stale file holds the name: link under a temporary name, then rename
  // over it, so the final name always shows a whole file.
  const std::string temp = NextTempName();
  status = link(temp);
  if (!status.ok()) return status;
  status = RenameIntoPlace(temp, relative_path, destination);
  // rename(2) between two links of one inode succeeds and does nothing, so
  // the temporary name may still be there.
  absl::Status removed = fs_.Remove(temp);
  if (!status.ok()) return status;
  if (!removed.ok() && !IsVanished(removed)) return removed;
  return absl::OkStatus();
}

absl::Status Copier::RenameIntoPlace(const std::string& temp, const std::string& relative_path,
                                     const std::string& destination) {
  return PlaceUnderParents(relative_path, temp, [&] { return fs_.Rename(temp, destination); });
}

absl::Status Copier::PlaceUnderParents(const std::string& relative_path, const std::string& from,
                                       const std::function<absl::Status()>& place) {
  absl::Status status = EnsureParentDirs(relative_path);
  if (status.ok()) status = place();
  if (IsVanished(status) && fs_.Stat(from).ok()) {
    // A directory this process made earlier was removed since (an operator
    // tidying up between two loop cycles): make it again, once.
    ForgetKnownDirs();
    status = EnsureParentDirs(relative_path);
    if (status.ok()) status = place();
  }
  return status;
}

void Copier::NoteDirToSync(const std::string& destination) {
  absl::MutexLock lock(&mu_);
  dirs_to_sync_.insert(std::string(DirName(destination)));
}

void Copier::ForgetKnownDirs() {
  absl::MutexLock lock(&mu_);
  known_dirs_.clear();
}

absl::Status Copier::SyncPendingDirs() {
  absl::flat_hash_set<std::string> dirs;
  {
    absl::MutexLock lock(&mu_);
    dirs.swap(dirs_to_sync_);
  }
  // A first copy fills thousands of directories: one syncfs for them all.
  // (Not for a few: a syncfs also waits for the big copies under way.)
  if (dirs.size() > kDirsWorthASyncfs && SyncWholeFileSystem()) return absl::OkStatus();
  for (auto it = dirs.begin(); it != dirs.end();) {
    absl::Status synced = fs_.SyncDir(*it);
    if (!synced.ok() && !IsVanished(synced)) {
      absl::MutexLock lock(&mu_);
      dirs_to_sync_.insert(dirs.begin(), dirs.end());  // still to do
      return synced;
    }
    dirs.erase(it++);
  }
  return absl::OkStatus();
}

namespace {

// Pages of the page cache a file of `size` bytes fills.
int64_t PageRounded(int64_t size) {
  constexpr int64_t kPage = 4096;
  return (size + kPage - 1) / kPage * kPage;
}

}  // namespace

uint64_t UnwrittenBytes::Add(int64_t size) {
  absl::MutexLock lock(&mu_);
  by_epoch_[epoch_] += PageRounded(size);
  return epoch_;
}

void UnwrittenBytes::Remove(uint64_t epoch, int64_t size) {
  absl::MutexLock lock(&mu_);
  auto it = by_epoch_.find(epoch);
  if (it == by_epoch_.end()) return;
  it->second -= PageRounded(size);
  if (it->second <= 0) by_epoch_.erase(it);
}

uint64_t UnwrittenBytes::BeginSync() {
  absl::MutexLock lock(&mu_);
  return epoch_++;
}

void UnwrittenBytes::SyncDone(uint64_t epoch) {
  absl::MutexLock lock(&mu_);
  by_epoch_.erase(by_epoch_.begin(), by_epoch_.upper_bound(epoch));
}

void UnwrittenBytes::Clear() {
  absl::MutexLock lock(&mu_);
  by_epoch_.clear();
}

int64_t UnwrittenBytes::total() const {
  absl::MutexLock lock(&mu_);
  int64_t total = 0;
  for (const auto& [epoch, bytes] : by_epoch_) total += bytes;
  return total;
}

}  // namespace snaphaven
