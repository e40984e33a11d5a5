// The file-system seam: every file-system call snaphaven makes goes through
// FileSystem. PosixFileSystem (file_system.cc) is the only code that calls
// the OS for files; tests wrap it to inject faults.
//
// Errors come back as absl::Status. The OS error number is kept as a payload
// so callers can tell "vanished" (ENOENT), "out of space" (ENOSPC, EDQUOT)
// and "links refused" (EXDEV, EPERM, EMLINK, ENOTSUP) apart: see ErrnoOf().

#ifndef SNAPHAVEN_FILE_SYSTEM_H_
#define SNAPHAVEN_FILE_SYSTEM_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace snaphaven {

enum class FileType { kRegular, kDirectory, kSymlink, kOther };

// What lstat(2)/fstat(2) says of a file, reduced to what snaphaven uses.
struct FileStat {
  FileType type = FileType::kOther;
  uint64_t dev = 0;
  uint64_t ino = 0;
  int64_t size = 0;
  int64_t mtime_ns = 0;  // nanoseconds since the epoch
  int64_t atime_ns = 0;
  uint32_t mode = 0;  // permission bits only (07777)
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint64_t nlink = 0;
};

// The errno an error status was made from, or 0 when it carries none.
int ErrnoOf(const absl::Status& status);
// Makes a status from an errno, naming the operation and the path.
absl::Status ErrnoStatus(int error_number, absl::string_view operation,
                         absl::string_view path);
// ENOSPC or EDQUOT: the destination is full.
bool IsOutOfSpace(const absl::Status& status);
// ENOENT: the file (or a directory above it) is gone.
bool IsVanished(const absl::Status& status);
// The operation an errno status was made for ("read", "lstat", ...).
std::string OperationOf(const absl::Status& status);
// Worth retrying after a pause: ESTALE, ETIMEDOUT, EINTR, EAGAIN anywhere,
// and EIO on a read-side operation (a flaky NAS or disk read).
bool IsTransient(const absl::Status& status);

// A file opened for sequential reading. Not thread-safe.
class ReadableFile {
 public:
  virtual ~ReadableFile() = default;
  // Reads up to `n` bytes; returns 0 at end of file.
  virtual absl::StatusOr<size_t> Read(char* buffer, size_t n) = 0;
  // pread(2): up to `n` bytes at `offset`, without moving the file position.
  virtual absl::StatusOr<size_t> ReadAt(char* buffer, size_t n, uint64_t offset) = 0;
  // fstat(2) of the open file.
  virtual absl::StatusOr<FileStat> Stat() = 0;
  // Which pages of the file are in the page cache now (mincore(2)); empty
  // when unknown. Taken before a copy, so that afterwards only the pages the
  // copy itself brought in are dropped (Cassandra's hot pages stay).
  virtual std::vector<bool> ResidentPages() { return {}; }
  // Drops from the page cache every page not marked in `keep`.
  virtual void DropPagesExcept(const std::vector<bool>& keep) { (void)keep; }
};

// A new file being written. Not thread-safe. Destroying it closes the
// descriptor; it never removes the file (the caller owns the name).
class WritableFile {
 public:
  virtual ~WritableFile() = default;
  virtual absl::Status Append(absl::string_view data) = 0;
  // Appends up to `n` bytes read from `in` at its current position using the
  // kernel's copy (copy_file_range(2); a server-side copy on NFS 4.2), without
  // passing the bytes through user space. Returns the bytes copied (0 at the
  // end of `in`). Unimplemented when this pair of files cannot do it (another
  // FileSystem's files, or the kernel refuses: EXDEV before 5.3, ENOSYS,
  // EOPNOTSUPP, EINVAL on some file systems): the caller then falls back to
  // Read/Append, from where both files now stand.
  virtual absl::StatusOr<size_t> AppendFromKernel(ReadableFile& in, size_t n) {
    (void)in;
    (void)n;
    return absl::UnimplementedError("no kernel copy");
  }
  // Sets permission bits, owner (when `set_owner`; failures ignored since
  // only root may do it) and access/modification times.
  virtual absl::Status SetAttributes(const FileStat& from, bool set_owner) = 0;
  // fsync(2): data and metadata are durable once it returns OK.
  virtual absl::Status Sync() = 0;
  // Starts writing the data back without waiting (sync_file_range(2)), so
  // that a later Sync finds it written and, for a batch of files, one
  // journal commit covers them all. A hint: failures show up in Sync.
  virtual void StartWriteback() {}
  // Gives a file made by FileSystem::CreateUnnamed its name (linkat(2)),
  // before Close. Fails with EEXIST when `path` is taken: it never
  // replaces a file.
  virtual absl::Status LinkAs(const std::string& path) {
    (void)path;
    return absl::UnimplementedError("not an unnamed file");
  }
  // close(2); reports write-back errors (ENOSPC on NFS shows up here).
  virtual absl::Status Close() = 0;
  // Drops the file's pages from the page cache (after Sync: they are clean).
  virtual void DropPages() {}
};

// A handle on a whole file system, opened before a batch of writes and
// used after it: one call makes everything written to that file system
// durable, instead of one fsync per file (each of which costs a journal
// commit and a device cache flush). Not thread-safe.
class FileSystemSync {
 public:
  virtual ~FileSystemSync() = default;
  // syncfs(2). OK: every write to this file system since the handle was
  // opened (or since the last SyncAll) is durable. An error means some
  // write-back on the file system failed, not necessarily one of ours: the
  // caller falls back to fsync of each file, which tells which.
  virtual absl::Status SyncAll() = 0;
};

// Holds an flock(2) until destroyed.
class FileLock {
 public:
  virtual ~FileLock() = default;
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;

  // lstat(2): never follows a final symlink.
  virtual absl::StatusOr<FileStat> Stat(const std::string& path) = 0;
  // Names in a directory, without "." and "..", in no particular order.
  virtual absl::StatusOr<std::vector<std::string>> ListDir(
      const std::string& path) = 0;
  // A name in a directory with its lstat (or why that failed: a name that
  // vanished after the listing has an IsVanished status).
  struct DirEntry {
    std::string name;
    absl::StatusOr<FileStat> stat;
  };
  // ListDir, then Stat of each name: a scan's every step. The local file
  // system stats relative to the open directory (fstatat), sparing a path
  // lookup per name; wrappers that change Stat or ListDir (fault
  // injection) get this default, made of their own calls.
  virtual absl::StatusOr<std::vector<DirEntry>> ListDirWithStats(const std::string& path);
  // Opens a regular file read-only; fails with ELOOP on a symlink.
  virtual absl::StatusOr<std::unique_ptr<ReadableFile>> OpenForRead(
      const std::string& path) = 0;
  // Creates a new file (O_EXCL, mode 0600) for writing.
  virtual absl::StatusOr<std::unique_ptr<WritableFile>> CreateNew(
      const std::string& path) = 0;
  // Opens a file for appending (O_APPEND), creating it (mode 0600) if
  // missing; never follows a symlink. For logs: Append, then Sync.
  virtual absl::StatusOr<std::unique_ptr<WritableFile>> OpenForAppend(const std::string& path) {
    (void)path;
    return absl::UnimplementedError("no appending");
  }
  // Creates a file with no name (O_TMPFILE, mode 0600) on the file system
  // of directory `dir`; WritableFile::LinkAs names it once it is whole. A
  // crash leaves nothing behind, and no directory is locked or grown for a
  // temporary name. Unimplemented where the file system, the kernel or the
  // process's rights do not allow it: use CreateNew with a temporary name.
  virtual absl::StatusOr<std::unique_ptr<WritableFile>> CreateUnnamed(const std::string& dir) {
    (void)dir;
    return absl::UnimplementedError("no unnamed files");
  }
  // rename(2): atomically replaces `to`.
  virtual absl::Status Rename(const std::string& from,
                              const std::string& to) = 0;
  // link(2): `to` becomes a new name of `existing`.
  virtual absl::Status Link(const std::string& existing,
                            const std::string& to) = 0;
  // unlink(2) of a file.
  virtual absl::Status Remove(const std::string& path) = 0;
  // rmdir(2) of an empty directory.
  virtual absl::Status RemoveDir(const std::string& path) = 0;
  // mkdir(2) with mode 0755 (less the umask); AlreadyExists when present.
  virtual absl::Status MakeDir(const std::string& path) = 0;
  // fsync(2) of a directory, making renames and links in it durable.
  virtual absl::Status SyncDir(const std::string& path) = 0;
  // Takes an exclusive flock(2) on `path` (created 0644 if missing) without
  // waiting; FailedPrecondition when another process holds it.
  virtual absl::StatusOr<std::unique_ptr<FileLock>> TryLock(
      const std::string& path) = 0;
  // realpath(3).
  virtual absl::StatusOr<std::string> RealPath(const std::string& path) = 0;
  // readlink(2): the text a symlink holds (for messages: where a link that
  // cannot be resolved points). Unimplemented where not provided.
  virtual absl::StatusOr<std::string> ReadLink(const std::string& path) {
    (void)path;
    return absl::UnimplementedError("no readlink");
  }
  // access(2) with R_OK/W_OK/X_OK bits.
  virtual absl::Status CheckAccess(const std::string& path, int mode) = 0;
  // A FileSystemSync for the file system holding `path`. Unimplemented
  // where syncfs(2) cannot be trusted with the data: a kernel before 5.8
  // (syncfs reported no write-back errors), or a file system other than
  // ext2/3/4, XFS and btrfs (on FUSE and network file systems it may return
  // before the data is on stable storage).
  virtual absl::StatusOr<std::unique_ptr<FileSystemSync>> OpenFileSystemSync(
      const std::string& path) {
    (void)path;
    return absl::UnimplementedError("no syncfs");
  }
  // A file system that keeps directories it resolved (the confined one)
  // forgets them: the next call resolves its path afresh. A cycle starts so.
  virtual void ForgetResolvedDirectories() {}
  // Replaces a file's contents atomically and durably: temp file beside it,
  // fsync, rename, fsync of the directory.
  absl::Status WriteFileAtomically(const std::string& path,
                                   absl::string_view contents);
  // The same, with the contents produced piece by piece by `write`, so a
  // large file is never held whole in memory.
  absl::Status WriteFileAtomically(
      const std::string& path,
      const std::function<absl::Status(WritableFile& out)>& write);
  // Reads a whole (small) file.
  absl::StatusOr<std::string> ReadFile(const std::string& path);
};

// Forwards every call to another file system: the base of wrappers that
// change only a few calls (fault injection, retries).
class ForwardingFileSystem : public FileSystem {
 public:
  explicit ForwardingFileSystem(FileSystem* base) : base_(base) {}
  FileSystem* base() const { return base_; }

  absl::StatusOr<FileStat> Stat(const std::string& path) override { return base_->Stat(path); }
  absl::StatusOr<std::vector<std::string>> ListDir(const std::string& path) override {
    return base_->ListDir(path);
  }
  absl::StatusOr<std::unique_ptr<ReadableFile>> OpenForRead(const std::string& path) override {
    return base_->OpenForRead(path);
  }
  absl::StatusOr<std::unique_ptr<WritableFile>> CreateNew(const std::string& path) override {
    return base_->CreateNew(path);
  }
  absl::StatusOr<std::unique_ptr<WritableFile>> CreateUnnamed(const std::string& dir) override {
    return base_->CreateUnnamed(dir);
  }
  absl::StatusOr<std::unique_ptr<WritableFile>> OpenForAppend(const std::string& path) override {
    return base_->OpenForAppend(path);
  }
  absl::Status Rename(const std::string& from, const std::string& to) override {
    return base_->Rename(from, to);
  }
  absl::Status Link(const std::string& existing, const std::string& to) override {
    return base_->Link(existing, to);
  }
  absl::Status Remove(const std::string& path) override { return base_->Remove(path); }
  absl::Status RemoveDir(const std::string& path) override { return base_->RemoveDir(path); }
  absl::Status MakeDir(const std::string& path) override { return base_->MakeDir(path); }
  absl::Status SyncDir(const std::string& path) override { return base_->SyncDir(path); }
  absl::StatusOr<std::unique_ptr<FileLock>> TryLock(const std::string& path) override {
    return base_->TryLock(path);
  }
  absl::StatusOr<std::string> RealPath(const std::string& path) override {
    return base_->RealPath(path);
  }
  absl::StatusOr<std::string> ReadLink(const std::string& path) override {
    return base_->ReadLink(path);
  }
  absl::Status CheckAccess(const std::string& path, int mode) override {
    return base_->CheckAccess(path, mode);
  }
  absl::StatusOr<std::unique_ptr<FileSystemSync>> OpenFileSystemSync(
      const std::string& path) override {
    return base_->OpenFileSystemSync(path);
  }
  void ForgetResolvedDirectories() override { base_->ForgetResolvedDirectories(); }

 private:
  FileSystem* const base_;
};

// Retries Stat, ListDir and OpenForRead on transient errors (IsTransient),
// `attempts` tries in all, sleeping `backoff`, then twice that, ... between
// them. For the read-only scan of a source on a flaky network file system.
class RetryingFileSystem : public ForwardingFileSystem {
 public:
  RetryingFileSystem(FileSystem* base, int attempts, absl::Duration backoff)
      : ForwardingFileSystem(base), attempts_(attempts), backoff_(backoff) {}
  absl::StatusOr<FileStat> Stat(const std::string& path) override;
  absl::StatusOr<std::vector<std::string>> ListDir(const std::string& path) override;
  absl::StatusOr<std::vector<DirEntry>> ListDirWithStats(const std::string& path) override;
  absl::StatusOr<std::unique_ptr<ReadableFile>> OpenForRead(const std::string& path) override;

 private:
  template <typename Call>
  auto Retry(Call call) -> decltype(call());
  const int attempts_;
  const absl::Duration backoff_;
};

// The real file system.
FileSystem* DefaultFileSystem();

// The real file system, with every operation on a path below one of
// `roots` (the destination, a restore directory) resolved beneath it: the
// root is opened once (again only when its path names another directory,
// e.g. a file system mounted on it since), each directory below it is
// opened from its parent without following a symlink (openat2(2) with
// RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS, else one
// openat(O_NOFOLLOW | O_DIRECTORY) per component), and the operation itself
// is the *at() call on that directory with the last name, never following
// it either. A symlink anywhere below a root is an ELOOP error, and ".."
// is refused (EXDEV): a directory swapped for a symlink at any instant
// cannot move a write, a link or a removal out of the root. The root's
// own path, and what is above it, are taken as given.
//
// Below `data_roots` (the source) nothing is ever written but move mode's
// removals: a change there is refused (EPERM) unless it is inside a
// table's snapshots/<tag>/ or backups/ (<root>/<keyspace>/<table>/...;
// Cassandra's db/Directories.java, SNAPSHOT_SUBDIR and BACKUPS_SUBDIR),
// and it is resolved beneath the table directory the same way (the
// keyspace and table directories may be symlinks, followed as the scan
// follows them). Reads at the source are taken as given.
std::unique_ptr<FileSystem> NewConfinedFileSystem(const std::vector<std::string>& roots,
                                                  const std::vector<std::string>& data_roots);
// false: NewConfinedFileSystem walks components as on a kernel without
// openat2 (process-wide); true: it tries openat2 again.
void UseOpenat2ForTesting(bool use);

// Two mtimes agree at the granularity a destination keeps (1 ns on ext4,
// whole seconds on sshfs, 2 s on FAT): equal once both are truncated to it.
// Any int64 is fine (the mtimes in a manifest and the granularity in the
// identity marker are read from the destination): the steps are compared by
// their floored quotients, which cannot overflow where the truncated times
// could (the step of INT64_MIN starts below it).
inline bool SameMtime(int64_t a, int64_t b, int64_t granularity_ns) {
  if (a == b) return true;
  if (granularity_ns <= 1) return false;
  auto step = [granularity_ns](int64_t t) {
    const int64_t q = t / granularity_ns;
    return t % granularity_ns < 0 ? q - 1 : q;
  };
  return step(a) == step(b);
}

// Joins path pieces with single slashes.
std::string JoinPath(absl::string_view a, absl::string_view b);
// The directory part of a path ("a/b/c" -> "a/b", "c" -> "").
absl::string_view DirName(absl::string_view path);

// `path` is `root` or below it, compared by whole components.
bool IsSameOrInside(absl::string_view path, absl::string_view root);

// The real path of the directory symlink `link` points to (a keyspace or
// table directory moved to another disk, a symlink left in its place). A
// link that dangles, loops or leads to something other than a directory is
// a FailedPrecondition naming the link and what it holds; a link that is
// itself gone returns lstat's ENOENT status (IsVanished).
absl::StatusOr<std::string> ResolveDirectoryLink(FileSystem& fs, const std::string& link);

// Why a symlinked keyspace or table directory resolving to `target` must
// not be followed: it overlaps the destination (the copy would copy itself,
// or write into the Cassandra tree), contains a data root (the copy would
// recurse), or, for a keyspace, leads into a data root other than its own
// (`own_root`, an index into `real_roots`: its files would be copied
// twice). `where` is the destination or root it overlaps.
struct LinkOverlap {
  enum Kind {
    kNone,
    kInsideDestination,
    kContainsDestination,
    kContainsDataRoot,
    kInsideOtherDataRoot,
  };
  Kind kind = kNone;
  std::string where;
};
LinkOverlap FindLinkOverlap(const std::string& target, const std::string& destination,
                            const std::vector<std::string>& real_roots, size_t own_root,
                            bool keyspace);

// Makes `path` absolute and resolves symlinks in its longest existing prefix;
// the missing rest is appended as given. A name that exists but cannot be
// resolved (a dangling symlink) is refused, as is ".." below a missing
// directory: either could lead anywhere once created. `what` names the path
// in messages ("destination", "restore directory").
absl::StatusOr<std::string> ResolveMaybeMissing(FileSystem& fs, const std::string& path,
                                                absl::string_view what);

}  // namespace snaphaven

#endif  // SNAPHAVEN_FILE_SYSTEM_H_
