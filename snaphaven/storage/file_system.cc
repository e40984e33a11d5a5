#include "snaphaven/storage/file_system.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <utility>

#include <linux/openat2.h>

#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"

namespace snaphaven {
namespace {

constexpr char kErrnoPayload[] = "snaphaven/errno";
constexpr char kOperationPayload[] = "snaphaven/operation";

FileStat ToFileStat(const struct stat& st) {
  FileStat out;
  if (S_ISREG(st.st_mode)) {
    out.type = FileType::kRegular;
  } else if (S_ISDIR(st.st_mode)) {
    out.type = FileType::kDirectory;
  } else if (S_ISLNK(st.st_mode)) {
    out.type = FileType::kSymlink;
  }
  out.dev = st.st_dev;
  out.ino = st.st_ino;
  out.size = st.st_size;
  out.mtime_ns = int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
  out.atime_ns = int64_t{st.st_atim.tv_sec} * 1000000000 + st.st_atim.tv_nsec;
  out.mode = st.st_mode & 07777;
  out.uid = st.st_uid;
  out.gid = st.st_gid;
  out.nlink = st.st_nlink;
  return out;
}

timespec ToTimespec(int64_t ns) {
  timespec ts;
  ts.tv_sec = ns / 1000000000;
  ts.tv_nsec = ns % 1000000000;
  if (ts.tv_nsec < 0) {  // times before 1970
    ts.tv_nsec += 1000000000;
    ts.tv_sec -= 1;
  }
  return ts;
}

class PosixReadableFile : public ReadableFile {
 public:
  PosixReadableFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~PosixReadableFile() override { close(fd_); }

  absl::StatusOr<size_t> Read(char* buffer, size_t n) override {
    while (true) {
      ssize_t got = read(fd_, buffer, n);
      if (got >= 0) return static_cast<size_t>(got);
      if (errno != EINTR) return ErrnoStatus(errno, "read", path_);
    }
  }

  absl::StatusOr<size_t> ReadAt(char* buffer, size_t n, uint64_t offset) override {
    while (true) {
      ssize_t got = pread(fd_, buffer, n, static_cast<off_t>(offset));
      if (got >= 0) return static_cast<size_t>(got);
      if (errno != EINTR) return ErrnoStatus(errno, "pread", path_);
    }
  }

  absl::StatusOr<FileStat> Stat() override {
    struct stat st;
    if (fstat(fd_, &st) != 0) return ErrnoStatus(errno, "fstat", path_);
    size_ = st.st_size;
    return ToFileStat(st);
  }

  std::vector<bool> ResidentPages() override {
    const int64_t size = Size();
    if (size <= 0) return {};
    const size_t pages = (size + kPageSize - 1) / kPageSize;
    // Mostly a file is wholly cached or not at all: one cachestat(2) says
    // which, without mapping the file (whose unmapping interrupts every CPU
    // this process runs on).
    switch (CachedPages(pages)) {
      case Cached::kAll: return std::vector<bool>(pages, true);
      case Cached::kNone: return std::vector<bool>(pages, false);
      case Cached::kSome: break;
    }
    void* map = mmap(nullptr, size, PROT_READ, MAP_SHARED, fd_, 0);
    if (map == MAP_FAILED) return {};
    std::vector<unsigned char> vec(pages);
    std::vector<bool> resident;
    if (mincore(map, size, vec.data()) == 0) {
      resident.resize(pages);
      for (size_t i = 0; i < pages; ++i) resident[i] = vec[i] & 1;
    }
    munmap(map, size);
    return resident;
  }

  void DropPagesExcept(const std::vector<bool>& keep) override {
    const int64_t size = Size();
    if (size < 0) return;
    const size_t pages = (size + kPageSize - 1) / kPageSize;
    // Runs of pages not to keep, one fadvise each.
    for (size_t i = 0; i < pages;) {
      if (i < keep.size() && keep[i]) {
        ++i;
        continue;
      }
      size_t j = i;
      while (j < pages && !(j < keep.size() && keep[j])) ++j;
      posix_fadvise(fd_, static_cast<off_t>(i * kPageSize),
                    static_cast<off_t>((j - i) * kPageSize), POSIX_FADV_DONTNEED);
      i = j;
    }
  }

  // For PosixWritableFile::AppendFromKernel only (this class is local to
  // this file, so the descriptor stays out of the public interface).
  int fd() const { return fd_; }
  const std::string& path() const { return path_; }

 private:
  static constexpr size_t kPageSize = 4096;
  enum class Cached { kAll, kNone, kSome };

  // The size the last Stat saw (the caller's view of the file), else fstat's.
  int64_t Size() {
    if (size_ < 0) {
      struct stat st;
      if (fstat(fd_, &st) == 0) size_ = st.st_size;
    }
    return size_;
  }

  // cachestat(2), Linux 6.5 and later; kSome (ask mincore) before that.
  Cached CachedPages(size_t pages) {
    static std::atomic<bool> unsupported{false};
    if (unsupported.load(std::memory_order_relaxed)) return Cached::kSome;
    struct {
      uint64_t off, len;
    } range{0, static_cast<uint64_t>(pages) * kPageSize};
    struct {
      uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
    } stat{};
    constexpr long kCachestat = 451;  // the same number on every architecture
    if (syscall(kCachestat, fd_, &range, &stat, 0) != 0) {
      if (errno == ENOSYS) unsupported.store(true, std::memory_order_relaxed);
      return Cached::kSome;
    }
    if (stat.nr_cache == 0) return Cached::kNone;
    return stat.nr_cache >= pages ? Cached::kAll : Cached::kSome;
  }

  const int fd_;
  const std::string path_;
  int64_t size_ = -1;
};

// How this process can give an O_TMPFILE file a name: linkat(2) with
// AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH (before Linux 6.10); through
// /proc/self/fd it needs /proc. Found out once, on the first unnamed file.
enum class LinkMethod { kUnknown, kEmptyPath, kProcFd, kNone };

// Names the unnamed file `fd` as `name` in directory `dirfd`.
int LinkFd(int fd, int dirfd, const char* name, LinkMethod method) {
  if (method == LinkMethod::kEmptyPath) {
    return linkat(fd, "", dirfd, name, AT_EMPTY_PATH);
  }
  const std::string proc = absl::StrCat("/proc/self/fd/", fd);
  return linkat(AT_FDCWD, proc.c_str(), dirfd, name, AT_SYMLINK_FOLLOW);
}

// Closes a descriptor when it goes out of scope (AT_FDCWD and -1 are left).
class ScopedFd {
 public:
  explicit ScopedFd(int fd = -1) : fd_(fd) {}
  ScopedFd(ScopedFd&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  ScopedFd& operator=(ScopedFd&& other) noexcept {
    std::swap(fd_, other.fd_);
    return *this;
  }
  ~ScopedFd() {
    if (fd_ >= 0) close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

// Where a path operation happens: the name `name` in the directory `dirfd`
// (AT_FDCWD and the whole path for a path taken as given). A confined path
// holds its parent directory open in `holder`, and `nofollow` is
// O_NOFOLLOW: its last component is never followed either.
struct Located {
  int dirfd = AT_FDCWD;
  std::string name;
  ScopedFd holder;
  // Or held with ConfinedFileSystem's cache of resolved directories.
  std::shared_ptr<const ScopedFd> shared_holder;
  int nofollow = 0;
};

// The errno of a failed open of directory `name` in `dirfd` with
// O_NOFOLLOW: ELOOP, not ENOTDIR, for a symlink (O_PATH | O_NOFOLLOW opens
// a symlink itself, which O_DIRECTORY then refuses).
int DirectoryOpenErrno(int error, int dirfd, const char* name) {
  struct stat st;
  if (error == ENOTDIR && fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
      S_ISLNK(st.st_mode)) {
    return ELOOP;
  }
  return error;
}

// Resolves paths to where their operations happen. The plain file system
// takes every path as given; the confined one (below) resolves paths below
// its roots through directory descriptors, never following a symlink.
class PathResolver {
 public:
  virtual ~PathResolver() = default;
  // `writes`: the operation creates, links, renames or removes.
  virtual absl::StatusOr<Located> Locate(const std::string& path, bool writes) const {
    (void)writes;
    Located at;
    at.name = path;
    return at;
  }
};

class PosixWritableFile : public WritableFile {
 public:
  // `link_method` other than kNone: made with O_TMPFILE, to be named that
  // way; `path` is then its directory.
  PosixWritableFile(int fd, std::string path, LinkMethod link_method = LinkMethod::kNone,
                    const PathResolver* resolver = nullptr)
      : fd_(fd), path_(std::move(path)), link_method_(link_method), resolver_(resolver) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0) close(fd_);
  }

  absl::Status Append(absl::string_view data) override {
    while (!data.empty()) {
      ssize_t done = write(fd_, data.data(), data.size());
      if (done < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus(errno, "write", path_);
      }
      data.remove_prefix(static_cast<size_t>(done));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<size_t> AppendFromKernel(ReadableFile& in, size_t n) override {
    auto* posix_in = dynamic_cast<PosixReadableFile*>(&in);
    if (posix_in == nullptr) return absl::UnimplementedError("no kernel copy: not a POSIX file");
    // Null offsets: both files' positions advance, so Read/Append go on from
    // where the kernel stopped.
    while (true) {
      ssize_t done = copy_file_range(posix_in->fd(), nullptr, fd_, nullptr, n, 0);
      if (done >= 0) return static_cast<size_t>(done);
      const int error = errno;
      if (error == EINTR) continue;
      const std::string paths = absl::StrCat(posix_in->path(), " -> ", path_);
      // One call, one syscall: an error here means nothing was copied by it.
      if (error == EXDEV || error == ENOSYS || error == EOPNOTSUPP || error == EINVAL) {
        return absl::UnimplementedError(
            absl::StrCat("no kernel copy ", paths, ": ", std::strerror(error)));
      }
      return ErrnoStatus(error, "copy_file_range", paths);
    }
  }

  absl::Status SetAttributes(const FileStat& from, bool set_owner) override {
    // Owner first: fchown clears set-id bits, which fchmod then restores.
    if (set_owner) (void)!fchown(fd_, from.uid, from.gid);
    if (fchmod(fd_, from.mode & 07777) != 0) {
      return ErrnoStatus(errno, "fchmod", path_);
    }
    timespec times[2] = {ToTimespec(from.atime_ns), ToTimespec(from.mtime_ns)};
    if (futimens(fd_, times) != 0) return ErrnoStatus(errno, "futimens", path_);
    return absl::OkStatus();
  }

  absl::Status Sync() override {
    if (fsync(fd_) != 0) return ErrnoStatus(errno, "fsync", path_);
    return absl::OkStatus();
  }

  void StartWriteback() override { (void)sync_file_range(fd_, 0, 0, SYNC_FILE_RANGE_WRITE); }

  absl::Status LinkAs(const std::string& path) override {
    if (link_method_ == LinkMethod::kNone) return WritableFile::LinkAs(path);
    absl::StatusOr<Located> at = resolver_->Locate(path, /*writes=*/true);
    if (!at.ok()) return at.status();
    if (LinkFd(fd_, at->dirfd, at->name.c_str(), link_method_) != 0) {
      return ErrnoStatus(errno, "link", absl::StrCat("(unnamed file in ", path_, ") -> ", path));
    }
    return absl::OkStatus();
  }

  absl::Status Close() override {
    int fd = fd_;
    fd_ = -1;
    if (close(fd) != 0) return ErrnoStatus(errno, "close", path_);
    return absl::OkStatus();
  }

  void DropPages() override {
    if (fd_ >= 0) posix_fadvise(fd_, 0, 0, POSIX_FADV_DONTNEED);
  }

 private:
  int fd_;
  const std::string path_;
  const LinkMethod link_method_;
  const PathResolver* const resolver_;
};

// Tries the ways of naming an unnamed file in `dir`, with a throwaway one;
// kUnknown when `dir` takes no unnamed file at all.
LinkMethod ProbeLinkMethod(int dirfd) {
  static std::atomic<int> probes{0};
  for (LinkMethod method : {LinkMethod::kEmptyPath, LinkMethod::kProcFd}) {
    int fd = openat(dirfd, ".", O_WRONLY | O_TMPFILE | O_CLOEXEC, 0600);
    if (fd < 0) return LinkMethod::kUnknown;
    const std::string probe = absl::StrCat(".unnamed-probe-", getpid(), "-", ++probes);
    const bool linked = LinkFd(fd, dirfd, probe.c_str(), method) == 0;
    const int error = errno;
    close(fd);
    if (linked) {
      unlinkat(dirfd, probe.c_str(), 0);
      return method;
    }
    // No right (AT_EMPTY_PATH), no /proc: try the next way. Anything else
    // (a full disk, too many open files) says nothing: ask again later.
    if (error != ENOENT && error != EPERM && error != EACCES) return LinkMethod::kUnknown;
  }
  return LinkMethod::kNone;
}

// The process's LinkMethod, probed in directory `dirfd` the first time.
// Copies on several threads ask at once: one probes, the others wait for
// its answer.
LinkMethod ProcessLinkMethod(int dirfd) {
  static std::atomic<LinkMethod> known{LinkMethod::kUnknown};  // once settled, lock-free
  LinkMethod method = known.load();
  if (method != LinkMethod::kUnknown) return method;
  static absl::Mutex mu;
  absl::MutexLock lock(&mu);
  method = known.load();
  if (method == LinkMethod::kUnknown) {
    method = ProbeLinkMethod(dirfd);
    known.store(method);
  }
  return method;
}

class PosixFileLock : public FileLock {
 public:
  explicit PosixFileLock(int fd) : fd_(fd) {}
  ~PosixFileLock() override { close(fd_); }  // closing releases the flock

 private:
  const int fd_;
};

class PosixFileSystemSync : public FileSystemSync {
 public:
  PosixFileSystemSync(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~PosixFileSystemSync() override { close(fd_); }

  absl::Status SyncAll() override {
    if (syncfs(fd_) != 0) return ErrnoStatus(errno, "syncfs", path_);
    return absl::OkStatus();
  }

 private:
  const int fd_;  // open since before the writes it is to cover
  const std::string path_;
};

// syncfs(2) reports write-back errors since Linux 5.8 (per file system,
// sampled when the descriptor was opened), and the file system's own
// failures (a journal commit, a log force) since 5.17; before, it could
// say OK where fsync would not.
bool KernelReportsSyncfsErrors() {
  struct utsname names;
  if (uname(&names) != 0) return false;
  int major = 0, minor = 0;
  if (sscanf(names.release, "%d.%d", &major, &minor) != 2) return false;
  return major > 5 || (major == 5 && minor >= 17);
}

// The type of the file system mounted as device `dev` (e.g. "ext4"), from
// /proc/self/mountinfo; "" when not found. statfs cannot tell ext4 from the
// native ext2 driver, whose syncfs does not flush the device's cache.
std::string MountedType(dev_t dev) {
  std::ifstream mountinfo("/proc/self/mountinfo");
  const std::string wanted = absl::StrCat(major(dev), ":", minor(dev));
  std::string line;
  while (std::getline(mountinfo, line)) {
    // "36 35 98:0 /root /mnt opts [optional fields] - ext4 /dev/sda1 opts"
    std::vector<absl::string_view> fields = absl::StrSplit(line, ' ');
    if (fields.size() < 3 || fields[2] != wanted) continue;
    const size_t separator = line.find(" - ");
    if (separator == std::string::npos) return "";
    const absl::string_view rest = absl::string_view(line).substr(separator + 3);
    return std::string(rest.substr(0, rest.find(' ')));
  }
  return "";
}

// Local file systems whose syncfs writes every dirty inode, commits the
// journal and flushes the device's cache.
bool SyncfsIsDurableOn(long magic, const std::string& type) {
  const bool known_magic =
      magic == EXT4_SUPER_MAGIC || magic == XFS_SUPER_MAGIC || magic == BTRFS_SUPER_MAGIC;
  // ext3 is mounted by the ext4 code since Linux 4.3; "ext2" may not be.
  return known_magic &&
         (type == "ext4" || type == "ext3" || type == "xfs" || type == "btrfs");
}

// Reads the names in the open directory `fd` (which it closes); with
// `stats`, each one's lstat relative to it (fstatat, no path lookup).
absl::Status ReadDirectory(int fd, const std::string& path, std::vector<std::string>* names,
                           std::vector<FileSystem::DirEntry>* stats) {
  DIR* dir = fdopendir(fd);
  if (dir == nullptr) {
    int error = errno;
    close(fd);
    return ErrnoStatus(error, "opendir", path);
  }
  while (true) {
    errno = 0;
    struct dirent* entry = readdir(dir);
    if (entry == nullptr) break;
    absl::string_view name = entry->d_name;
    if (name == "." || name == "..") continue;
    if (names != nullptr) names->emplace_back(name);
    if (stats != nullptr) {
      struct stat st;
      if (fstatat(fd, entry->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        stats->push_back(FileSystem::DirEntry{std::string(name), ToFileStat(st)});
      } else {
        stats->push_back(FileSystem::DirEntry{std::string(name),
                                              ErrnoStatus(errno, "lstat", JoinPath(path, name))});
      }
    }
    errno = 0;
  }
  int error = errno;
  closedir(dir);
  if (error != 0) return ErrnoStatus(error, "readdir", path);
  return absl::OkStatus();
}

// The operating system's file calls. Every path goes through Locate (the
// PathResolver), then the *at() call on the directory it gives: the plain
// file system takes paths as given, ConfinedFileSystem resolves them
// beneath its roots.
class PosixFileSystem : public FileSystem, protected PathResolver {
 public:
  absl::StatusOr<std::vector<DirEntry>> ListDirWithStats(const std::string& path) override {
    absl::StatusOr<int> fd = OpenDirectory(path);
    if (!fd.ok()) return fd.status();
    std::vector<DirEntry> entries;
    absl::Status read = ReadDirectory(*fd, path, nullptr, &entries);
    if (!read.ok()) return read;
    return entries;
  }

  absl::StatusOr<FileStat> Stat(const std::string& path) override {
    absl::StatusOr<Located> at = Locate(path, false);
    if (!at.ok()) return at.status();
    struct stat st;
    if (fstatat(at->dirfd, at->name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      return ErrnoStatus(errno, "lstat", path);
    }
    return ToFileStat(st);
  }

  absl::StatusOr<std::vector<std::string>> ListDir(
      const std::string& path) override {
    absl::StatusOr<int> fd = OpenDirectory(path);
    if (!fd.ok()) return fd.status();
    std::vector<std::string> names;
    absl::Status read = ReadDirectory(*fd, path, &names, nullptr);
    if (!read.ok()) return read;
    return names;
  }

  absl::StatusOr<std::unique_ptr<ReadableFile>> OpenForRead(
      const std::string& path) override {
    absl::StatusOr<Located> at = Locate(path, false);
    if (!at.ok()) return at.status();
    const char* name = at->name.c_str();
    int fd = openat(at->dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME);
    if (fd < 0 && errno == EPERM) {
      // O_NOATIME is only allowed to the file's owner (or root).
      fd = openat(at->dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0) return ErrnoStatus(errno, "open", path);
    // Sequential reads: the kernel reads ahead further and drops pages sooner.
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    return std::unique_ptr<ReadableFile>(new PosixReadableFile(fd, path));
  }

  absl::StatusOr<std::unique_ptr<WritableFile>> CreateNew(
      const std::string& path) override {
    absl::StatusOr<Located> at = Locate(path, true);
    if (!at.ok()) return at.status();
    int fd = openat(at->dirfd, at->name.c_str(),
                    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return ErrnoStatus(errno, "create", path);
    return std::unique_ptr<WritableFile>(new PosixWritableFile(fd, path));
  }

  absl::StatusOr<std::unique_ptr<WritableFile>> OpenForAppend(const std::string& path) override {
    absl::StatusOr<Located> at = Locate(path, true);
    if (!at.ok()) return at.status();
    int fd = openat(at->dirfd, at->name.c_str(),
                    O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return ErrnoStatus(errno, "open for append", path);
    return std::unique_ptr<WritableFile>(new PosixWritableFile(fd, path));
  }

  absl::StatusOr<std::unique_ptr<WritableFile>> CreateUnnamed(const std::string& dir) override {
    absl::StatusOr<Located> at = Locate(dir, true);
    if (!at.ok()) return at.status();
    ScopedFd dirfd(openat(at->dirfd, at->name.c_str(),
                          O_PATH | O_DIRECTORY | O_CLOEXEC | at->nofollow));
    if (dirfd.get() < 0) {
      return ErrnoStatus(DirectoryOpenErrno(errno, at->dirfd, at->name.c_str()), "open", dir);
    }
    const LinkMethod method = ProcessLinkMethod(dirfd.get());
    if (method == LinkMethod::kNone) {
      return absl::UnimplementedError("this process cannot link an O_TMPFILE file");
    }
    int fd = openat(dirfd.get(), ".", O_WRONLY | O_TMPFILE | O_CLOEXEC, 0600);
    if (fd < 0) {
      const int error = errno;
      // Not supported here (EOPNOTSUPP), or by the kernel (EISDIR, EINVAL).
      if (error == EOPNOTSUPP || error == EISDIR || error == EINVAL) {
        return absl::UnimplementedError(
            absl::StrCat("no unnamed files in ", dir, ": ", std::strerror(error)));
      }
      return ErrnoStatus(error, "create (unnamed)", dir);
    }
    if (method == LinkMethod::kUnknown) {  // the probe could not even make one
      close(fd);
      return absl::UnimplementedError(absl::StrCat("no unnamed files in ", dir));
    }
    return std::unique_ptr<WritableFile>(new PosixWritableFile(fd, dir, method, this));
  }

  absl::Status Rename(const std::string& from, const std::string& to) override {
    absl::StatusOr<Located> a = Locate(from, true);
    if (!a.ok()) return a.status();
    absl::StatusOr<Located> b = Locate(to, true);
    if (!b.ok()) return b.status();
    if (renameat(a->dirfd, a->name.c_str(), b->dirfd, b->name.c_str()) != 0) {
      return ErrnoStatus(errno, "rename", absl::StrCat(from, " -> ", to));
    }
    return absl::OkStatus();
  }

  absl::Status Link(const std::string& existing,
                    const std::string& to) override {
    absl::StatusOr<Located> a = Locate(existing, true);
    if (!a.ok()) return a.status();
    absl::StatusOr<Located> b = Locate(to, true);
    if (!b.ok()) return b.status();
    // Flags 0: a symlink named `existing` is linked itself, never followed.
    if (linkat(a->dirfd, a->name.c_str(), b->dirfd, b->name.c_str(), 0) != 0) {
      return ErrnoStatus(errno, "link", absl::StrCat(existing, " -> ", to));
    }
    return absl::OkStatus();
  }

  absl::Status Remove(const std::string& path) override {
    absl::StatusOr<Located> at = Locate(path, true);
    if (!at.ok()) return at.status();
    if (unlinkat(at->dirfd, at->name.c_str(), 0) != 0) return ErrnoStatus(errno, "unlink", path);
    return absl::OkStatus();
  }

  absl::Status RemoveDir(const std::string& path) override {
    absl::StatusOr<Located> at = Locate(path, true);
    if (!at.ok()) return at.status();
    if (unlinkat(at->dirfd, at->name.c_str(), AT_REMOVEDIR) != 0) {
      return ErrnoStatus(errno, "rmdir", path);
    }
    return absl::OkStatus();
  }

  absl::Status MakeDir(const std::string& path) override {
    absl::StatusOr<Located> at = Locate(path, true);
    if (!at.ok()) return at.status();
    if (mkdirat(at->dirfd, at->name.c_str(), 0755) != 0) return ErrnoStatus(errno, "mkdir", path);
    return absl::OkStatus();
  }

  absl::Status SyncDir(const std::string& path) override {
    absl::StatusOr<Located> at = Locate(path, false);
    if (!at.ok()) return at.status();
    int fd = openat(at->dirfd, at->name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | at->nofollow);
    if (fd < 0) {
      return ErrnoStatus(DirectoryOpenErrno(errno, at->dirfd, at->name.c_str()), "open", path);
    }
    int rc = fsync(fd);
    int error = errno;
    close(fd);
    // Some file systems (and FUSE mounts) refuse fsync on a directory; the
    // rename is then as durable as that file system can make it.
    if (rc != 0 && error != EINVAL && error != ENOTSUP) {
      return ErrnoStatus(error, "fsync", path);
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::unique_ptr<FileLock>> TryLock(
      const std::string& path) override {
    absl::StatusOr<Located> at = Locate(path, true);
    if (!at.ok()) return at.status();
    int fd = openat(at->dirfd, at->name.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) return ErrnoStatus(errno, "open", path);
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
      int error = errno;
      close(fd);
      if (error == EWOULDBLOCK) {
        return absl::FailedPreconditionError(
            absl::StrCat("another snaphaven holds the lock ", path));
      }
      return ErrnoStatus(error, "flock", path);
    }
    return std::unique_ptr<FileLock>(new PosixFileLock(fd));
  }

  absl::StatusOr<std::string> RealPath(const std::string& path) override {
    char resolved[PATH_MAX];
    if (realpath(path.c_str(), resolved) == nullptr) {
      return ErrnoStatus(errno, "realpath", path);
    }
    return std::string(resolved);
  }

  absl::StatusOr<std::string> ReadLink(const std::string& path) override {
    char target[PATH_MAX];
    ssize_t n = readlink(path.c_str(), target, sizeof(target));
    if (n < 0) return ErrnoStatus(errno, "readlink", path);
    return std::string(target, static_cast<size_t>(n));
  }

  absl::Status CheckAccess(const std::string& path, int mode) override {
    absl::StatusOr<Located> at = Locate(path, false);
    if (!at.ok()) return at.status();
    if (faccessat(at->dirfd, at->name.c_str(), mode, 0) != 0) {
      return ErrnoStatus(errno, "access", path);
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::unique_ptr<FileSystemSync>> OpenFileSystemSync(
      const std::string& path) override {
    if (!KernelReportsSyncfsErrors()) {
      return absl::UnimplementedError("syncfs does not report every error before Linux 5.17");
    }
    int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus(errno, "open", path);
    struct statfs info;
    struct stat st;
    if (fstatfs(fd, &info) != 0 || fstat(fd, &st) != 0) {
      int error = errno;
      close(fd);
      return ErrnoStatus(error, "fstatfs", path);
    }
    const std::string type = MountedType(st.st_dev);
    if (!SyncfsIsDurableOn(static_cast<long>(info.f_type), type)) {
      close(fd);
      return absl::UnimplementedError(absl::StrCat(
          "syncfs is not trusted on ", path, " (file system ",
          type.empty() ? "not found in /proc/self/mountinfo" : type, ", type 0x",
          absl::Hex(static_cast<unsigned long>(info.f_type)), ")"));
    }
    return std::unique_ptr<FileSystemSync>(new PosixFileSystemSync(fd, path));
  }

 private:
  // The directory `path`, opened for reading; never a symlink.
  absl::StatusOr<int> OpenDirectory(const std::string& path) {
    absl::StatusOr<Located> at = Locate(path, false);
    if (!at.ok()) return at.status();
    int fd = openat(at->dirfd, at->name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      return ErrnoStatus(DirectoryOpenErrno(errno, at->dirfd, at->name.c_str()), "opendir", path);
    }
    return fd;
  }
};

// openat2(2) (Linux 5.6): resolves a whole path beneath a directory in one
// call. Where the kernel lacks it (ENOSYS) or a seccomp filter refuses it
// (EPERM), each component is opened in turn instead.
std::atomic<bool> openat2_unavailable{false};

// The directory `components` (none empty, ".", or "..") below the open
// directory `base`, opened O_PATH, never following a symlink: one found
// on the way is ELOOP. `shown` names the path in errors.
absl::StatusOr<ScopedFd> OpenBeneath(int base, const std::vector<absl::string_view>& components,
                                     const std::string& shown) {
  if (!openat2_unavailable.load(std::memory_order_relaxed)) {
    const std::string relative =
        components.empty() ? std::string(".") : absl::StrJoin(components, "/");
    struct open_how how = {};
    how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    while (true) {
      const long fd = syscall(SYS_openat2, base, relative.c_str(), &how, sizeof(how));
      if (fd >= 0) return ScopedFd(static_cast<int>(fd));
      if (errno == EINTR || errno == EAGAIN) continue;
      if (errno == ENOSYS) openat2_unavailable.store(true, std::memory_order_relaxed);
      if (errno != ENOSYS && errno != EPERM && errno != E2BIG) {
        return ErrnoStatus(errno, "open beneath", shown);
      }
      break;  // the component walk
    }
  }
  ScopedFd dir(fcntl(base, F_DUPFD_CLOEXEC, 0));
  if (dir.get() < 0) return ErrnoStatus(errno, "dup", shown);
  for (absl::string_view component : components) {
    const std::string name(component);
    ScopedFd next(openat(dir.get(), name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (next.get() < 0) {
      return ErrnoStatus(DirectoryOpenErrno(errno, dir.get(), name.c_str()), "open beneath", shown);
    }
    dir = std::move(next);
  }
  return dir;
}

// The components of `relative`, without empty ones and "."; false when
// one is "..".
bool SplitComponents(absl::string_view relative, std::vector<absl::string_view>* components) {
  for (absl::string_view component : absl::StrSplit(relative, '/', absl::SkipEmpty())) {
    if (component == ".") continue;
    if (component == "..") return false;
    components->push_back(component);
  }
  return true;
}

// See NewConfinedFileSystem.
class ConfinedFileSystem : public PosixFileSystem {
 public:
  ConfinedFileSystem(const std::vector<std::string>& roots,
                     const std::vector<std::string>& data_roots)
      : data_roots_(data_roots) {
    for (const std::string& root : roots) roots_.push_back(std::make_unique<Root>(root));
    // The innermost root first (a restore directory inside the destination).
    std::sort(roots_.begin(), roots_.end(), [](const auto& a, const auto& b) {
      return a->path.size() > b->path.size();
    });
  }

 protected:
  absl::StatusOr<Located> Locate(const std::string& path, bool writes) const override {
    for (const auto& root : roots_) {
      if (path == root->path || !IsSameOrInside(path, root->path)) continue;
      return LocateBeneathRoot(*root, path);
    }
    if (!writes) return PathResolver::Locate(path, writes);
    for (const std::string& data_root : data_roots_) {
      if (!IsSameOrInside(path, data_root)) continue;
      return LocateAtSource(data_root, path);
    }
    return PathResolver::Locate(path, writes);
  }

 public:
  // A directory renamed or removed through this file system is forgotten
  // first: no later call may reach it (or what is inside it) through a
  // descriptor resolved before.
  // (Before, and after too: another thread may have resolved it between.)
  absl::Status Rename(const std::string& from, const std::string& to) override {
    ForgetResolvedBelow(from);
    ForgetResolvedBelow(to);
    absl::Status renamed = PosixFileSystem::Rename(from, to);
    ForgetResolvedBelow(from);
    ForgetResolvedBelow(to);
    return renamed;
  }
  absl::Status RemoveDir(const std::string& path) override {
    ForgetResolvedBelow(path);
    absl::Status removed = PosixFileSystem::RemoveDir(path);
    ForgetResolvedBelow(path);
    return removed;
  }
  void ForgetResolvedDirectories() override {
    absl::MutexLock lock(&resolved_mu_);
    resolved_.clear();
  }

 private:
  // The parent directories of the last few paths, as resolved beneath their
  // root. A first copy links and copies hundreds of files into each
  // directory; resolving the whole path again for each (a stat of the root,
  // an openat2, a close) cost about a third of its system time. An entry is
  // used for at most kResolvedFor, and the cycle forgets them all at its
  // start (ForgetResolvedDirectories), so a destination replaced between
  // cycles, or a file system mounted on the root, is seen as before.
  struct Root;
  struct ResolvedDir {
    std::string path;  // absolute, as the callers name it
    std::shared_ptr<const ScopedFd> fd;
    int64_t resolved_at_ns;
  };
  static constexpr int64_t kResolvedForNs = 1'000'000'000;
  static constexpr size_t kResolvedDirs = 16;

  absl::StatusOr<Located> LocateBeneathRoot(Root& root, const std::string& path) const {
    const size_t slash = path.rfind('/');
    const std::string parent = path.substr(0, slash == 0 ? 1 : slash);
    const int64_t now = absl::GetCurrentTimeNanos();
    Located at;
    at.nofollow = O_NOFOLLOW;
    at.name = path.substr(slash + 1);
    if (at.name != "." && at.name != ".." && !at.name.empty() && parent != root.path &&
        IsSameOrInside(parent, root.path)) {
      absl::MutexLock lock(&resolved_mu_);
      for (const ResolvedDir& dir : resolved_) {
        if (dir.path == parent && now - dir.resolved_at_ns < kResolvedForNs) {
          at.shared_holder = dir.fd;
          at.dirfd = dir.fd->get();
          return at;
        }
      }
    }
    absl::StatusOr<int> fd = root.Open();
    if (!fd.ok()) return fd.status();
    absl::StatusOr<Located> located =
        Beneath(*fd, path.substr(root.path == "/" ? 1 : root.path.size() + 1), path);
    if (!located.ok() || located->name != at.name || located->holder.get() < 0) return located;
    // Remember it (the name is the last component: the parent was resolved).
    auto shared = std::make_shared<const ScopedFd>(std::move(located->holder));
    located->shared_holder = shared;
    absl::MutexLock lock(&resolved_mu_);
    if (resolved_.size() >= kResolvedDirs) resolved_.erase(resolved_.begin());
    resolved_.push_back(ResolvedDir{parent, std::move(shared), now});
    return located;
  }

  void ForgetResolvedBelow(const std::string& path) {
    absl::MutexLock lock(&resolved_mu_);
    resolved_.erase(std::remove_if(resolved_.begin(), resolved_.end(),
                                   [&](const ResolvedDir& dir) {
                                     return IsSameOrInside(dir.path, path);
                                   }),
                    resolved_.end());
  }

  // A confined root, opened at its first use and again when the path
  // names another directory (a file system mounted on it since).
  struct Root {
    explicit Root(std::string p) : path(std::move(p)) {}
    absl::StatusOr<int> Open() {
      struct stat now;
      if (stat(path.c_str(), &now) != 0) return ErrnoStatus(errno, "stat", path);
      absl::MutexLock lock(&mu);
      if (fd.get() < 0 || now.st_dev != dev || now.st_ino != ino) {
        ScopedFd opened(open(path.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        struct stat st;
        if (opened.get() < 0 || fstat(opened.get(), &st) != 0) {
          return ErrnoStatus(errno, "open", path);
        }
        dev = st.st_dev;
        ino = st.st_ino;
        // Descriptors handed out stay valid: the old one is kept open.
        retired.push_back(std::move(fd));
        fd = std::move(opened);
      }
      return fd.get();
    }
    const std::string path;
    absl::Mutex mu;
    ScopedFd fd ABSL_GUARDED_BY(mu);
    dev_t dev ABSL_GUARDED_BY(mu) = 0;
    ino_t ino ABSL_GUARDED_BY(mu) = 0;
    std::vector<ScopedFd> retired ABSL_GUARDED_BY(mu);
  };

  // `relative` (to the open directory `base`): its parent opened beneath
  // `base`, and its last name.
  static absl::StatusOr<Located> Beneath(int base, absl::string_view relative,
                                         const std::string& path) {
    std::vector<absl::string_view> components;
    if (!SplitComponents(relative, &components)) {
      return ErrnoStatus(EXDEV, "refusing '..' in", path);
    }
    Located at;
    at.nofollow = O_NOFOLLOW;
    if (components.empty()) {
      at.name = ".";
      absl::StatusOr<ScopedFd> self = OpenBeneath(base, {}, path);
      if (!self.ok()) return self.status();
      at.holder = *std::move(self);
      at.dirfd = at.holder.get();
      return at;
    }
    at.name = std::string(components.back());
    components.pop_back();
    absl::StatusOr<ScopedFd> parent = OpenBeneath(base, components, path);
    if (!parent.ok()) return parent.status();
    at.holder = *std::move(parent);
    at.dirfd = at.holder.get();
    return at;
  }

  // A change at the source: only move mode's removals, inside a table's
  // snapshots/<tag>/ or backups/ (Cassandra's db/Directories.java,
  // SNAPSHOT_SUBDIR and BACKUPS_SUBDIR below a table directory
  // <root>/<keyspace>/<table>), resolved beneath the table directory (which
  // may itself be a symlink the scan followed).
  absl::StatusOr<Located> LocateAtSource(const std::string& data_root,
                                         const std::string& path) const {
    std::vector<absl::string_view> components;
    const bool plain = SplitComponents(
        absl::string_view(path).substr(std::min(path.size(), data_root.size() + 1)), &components);
    const bool inside = plain && components.size() >= 4 &&
                        (components[2] == "snapshots" || components[2] == "backups");
    if (!inside) {
      return ErrnoStatus(EPERM, "refusing to change the source outside snapshots/<tag>/ or backups/:",
                         path);
    }
    const std::string table = JoinPath(JoinPath(data_root, components[0]), components[1]);
    ScopedFd table_fd(open(table.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (table_fd.get() < 0) return ErrnoStatus(errno, "open", table);
    const std::string below = absl::StrJoin(components.begin() + 2, components.end(), "/");
    return Beneath(table_fd.get(), below, path);
  }

  std::vector<std::unique_ptr<Root>> roots_;
  const std::vector<std::string> data_roots_;
  mutable absl::Mutex resolved_mu_;
  mutable std::vector<ResolvedDir> resolved_ ABSL_GUARDED_BY(resolved_mu_);
};

}  // namespace

std::unique_ptr<FileSystem> NewConfinedFileSystem(const std::vector<std::string>& roots,
                                                  const std::vector<std::string>& data_roots) {
  return std::make_unique<ConfinedFileSystem>(roots, data_roots);
}

void UseOpenat2ForTesting(bool use) { openat2_unavailable.store(!use); }

int ErrnoOf(const absl::Status& status) {
  absl::optional<absl::Cord> payload = status.GetPayload(kErrnoPayload);
  int error = 0;
  if (!payload.has_value() || !absl::SimpleAtoi(std::string(*payload), &error)) {
    return 0;
  }
  return error;
}

absl::Status ErrnoStatus(int error_number, absl::string_view operation,
                         absl::string_view path) {
  absl::Status status(absl::ErrnoToStatusCode(error_number),
                      absl::StrCat(operation, " ", path, ": ",
                                   std::strerror(error_number)));
  status.SetPayload(kErrnoPayload, absl::Cord(absl::StrCat(error_number)));
  status.SetPayload(kOperationPayload, absl::Cord(operation));
  return status;
}

std::string OperationOf(const absl::Status& status) {
  absl::optional<absl::Cord> payload = status.GetPayload(kOperationPayload);
  return payload.has_value() ? std::string(*payload) : "";
}

bool IsTransient(const absl::Status& status) {
  switch (ErrnoOf(status)) {
    case ESTALE:
    case ETIMEDOUT:
    case EINTR:
    case EAGAIN:
      return true;
    case EIO: {
      std::string op = OperationOf(status);
      return op == "read" || op == "open" || op == "lstat" || op == "fstat" ||
             op == "opendir" || op == "readdir";
    }
    default:
      return false;
  }
}

template <typename Call>
auto RetryingFileSystem::Retry(Call call) -> decltype(call()) {
  absl::Duration pause = backoff_;
  for (int attempt = 1;; ++attempt) {
    auto result = call();
    if (result.ok() || attempt >= attempts_ || !IsTransient(result.status())) return result;
    absl::SleepFor(pause);
    pause *= 2;
  }
}

absl::StatusOr<FileStat> RetryingFileSystem::Stat(const std::string& path) {
  return Retry([&] { return ForwardingFileSystem::Stat(path); });
}

absl::StatusOr<std::vector<FileSystem::DirEntry>> FileSystem::ListDirWithStats(
    const std::string& path) {
  absl::StatusOr<std::vector<std::string>> names = ListDir(path);
  if (!names.ok()) return names.status();
  std::vector<DirEntry> entries;
  entries.reserve(names->size());
  for (std::string& name : *names) {
    absl::StatusOr<FileStat> stat = Stat(JoinPath(path, name));
    entries.push_back(DirEntry{std::move(name), std::move(stat)});
  }
  return entries;
}

absl::StatusOr<std::vector<std::string>> RetryingFileSystem::ListDir(const std::string& path) {
  return Retry([&] { return ForwardingFileSystem::ListDir(path); });
}

absl::StatusOr<std::vector<FileSystem::DirEntry>> RetryingFileSystem::ListDirWithStats(
    const std::string& path) {
  absl::StatusOr<std::vector<DirEntry>> entries =
      Retry([&] { return base()->ListDirWithStats(path); });
  if (!entries.ok()) return entries;
  for (DirEntry& entry : *entries) {  // a name whose stat failed for a moment
    if (!entry.stat.ok() && IsTransient(entry.stat.status())) {
      entry.stat = Stat(JoinPath(path, entry.name));
    }
  }
  return entries;
}

absl::StatusOr<std::unique_ptr<ReadableFile>> RetryingFileSystem::OpenForRead(
    const std::string& path) {
  return Retry([&] { return ForwardingFileSystem::OpenForRead(path); });
}

bool IsOutOfSpace(const absl::Status& status) {
  int error = ErrnoOf(status);
  return error == ENOSPC || error == EDQUOT;
}

bool IsVanished(const absl::Status& status) { return ErrnoOf(status) == ENOENT; }

absl::Status FileSystem::WriteFileAtomically(const std::string& path,
                                             absl::string_view contents) {
  return WriteFileAtomically(path,
                             [contents](WritableFile& out) { return out.Append(contents); });
}

absl::Status FileSystem::WriteFileAtomically(
    const std::string& path, const std::function<absl::Status(WritableFile& out)>& write) {
  const std::string temp = absl::StrCat(path, ".tmp");
  absl::Status removed = Remove(temp);  // a leftover of a crash
  if (!removed.ok() && !IsVanished(removed)) return removed;
  absl::StatusOr<std::unique_ptr<WritableFile>> file = CreateNew(temp);
  if (!file.ok()) return file.status();
  absl::Status status = write(**file);
  if (status.ok()) status = (*file)->Sync();
  if (status.ok()) status = (*file)->Close();
  if (status.ok()) status = Rename(temp, path);
  if (!status.ok()) {
    (void)Remove(temp);
    return status;
  }
  std::string dir(DirName(path));
  return SyncDir(dir.empty() ? "." : dir);
}

absl::StatusOr<std::string> FileSystem::ReadFile(const std::string& path) {
  absl::StatusOr<std::unique_ptr<ReadableFile>> file = OpenForRead(path);
  if (!file.ok()) return file.status();
  std::string contents;
  char buffer[64 * 1024];
  while (true) {
    absl::StatusOr<size_t> got = (*file)->Read(buffer, sizeof(buffer));
    if (!got.ok()) return got.status();
    if (*got == 0) break;
    contents.append(buffer, *got);
  }
  return contents;
}

FileSystem* DefaultFileSystem() {
  static FileSystem* const file_system = new PosixFileSystem();
  return file_system;
}

std::string JoinPath(absl::string_view a, absl::string_view b) {
  if (a.empty()) return std::string(b);
  if (b.empty()) return std::string(a);
  if (a.back() == '/') return absl::StrCat(a, b);
  return absl::StrCat(a, "/", b);
}

absl::string_view DirName(absl::string_view path) {
  size_t slash = path.rfind('/');
  if (slash == absl::string_view::npos) return "";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// `path` or a path below it, compared by components.
bool IsSameOrInside(absl::string_view path, absl::string_view root) {
  if (path == root) return true;
  if (root == "/") return true;
  return absl::StartsWith(path, root) && path.size() > root.size() && path[root.size()] == '/';
}

absl::StatusOr<std::string> ResolveDirectoryLink(FileSystem& fs, const std::string& link) {
  absl::StatusOr<std::string> held = fs.ReadLink(link);
  const std::string arrow =
      absl::StrCat(link, " -> ", held.ok() ? *held : std::string("(unreadable link)"));
  absl::StatusOr<std::string> real = fs.RealPath(link);
  if (!real.ok()) {
    switch (ErrnoOf(real.status())) {
      case ELOOP:
        return absl::FailedPreconditionError(
            absl::StrCat(arrow, ": the symlink loops (too many levels of symbolic links)"));
      case ENOENT:
      case ENOTDIR: {
        absl::StatusOr<FileStat> st = fs.Stat(link);
        if (!st.ok() && IsVanished(st.status())) return st.status();
        return absl::FailedPreconditionError(
            absl::StrCat(arrow, ": the symlink dangles (its target does not exist)"));
      }
      default:
        return absl::FailedPreconditionError(
            absl::StrCat(arrow, ": the symlink cannot be resolved (", real.status().message(), ")"));
    }
  }
  absl::StatusOr<FileStat> st = fs.Stat(*real);
  if (!st.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat(arrow, ": its target ", *real, " cannot be read (", st.status().message(), ")"));
  }
  if (st->type != FileType::kDirectory) {
    return absl::FailedPreconditionError(
        absl::StrCat(arrow, ": its target ", *real, " is not a directory"));
  }
  return *std::move(real);
}

LinkOverlap FindLinkOverlap(const std::string& target, const std::string& destination,
                            const std::vector<std::string>& real_roots, size_t own_root,
                            bool keyspace) {
  if (!destination.empty() && IsSameOrInside(target, destination)) {
    return {LinkOverlap::kInsideDestination, destination};
  }
  if (!destination.empty() && IsSameOrInside(destination, target)) {
    return {LinkOverlap::kContainsDestination, destination};
  }
  for (size_t r = 0; r < real_roots.size(); ++r) {
    if (IsSameOrInside(real_roots[r], target)) return {LinkOverlap::kContainsDataRoot, real_roots[r]};
    if (keyspace && r != own_root && IsSameOrInside(target, real_roots[r])) {
      return {LinkOverlap::kInsideOtherDataRoot, real_roots[r]};
    }
  }
  return {};
}

// Resolves symlinks in the longest existing prefix of `path`; the missing
// rest is appended as given. A name that exists but cannot be resolved (a
// dangling symlink, a loop) is refused: it could lead anywhere once created.
absl::StatusOr<std::string> ResolveMaybeMissing(FileSystem& fs, const std::string& path,
                                                absl::string_view what) {
  std::string absolute = path;
  if (!absl::StartsWith(path, "/")) {
    absl::StatusOr<std::string> cwd = fs.RealPath(".");
    if (!cwd.ok()) return cwd.status();
    absolute = JoinPath(*cwd, path);
  }
  std::vector<std::string> missing;
  std::string existing = absolute;
  while (true) {
    absl::StatusOr<std::string> real = fs.RealPath(existing);
    if (real.ok()) {
      std::string out = *real;
      for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
        if (*it == "..") {
          return absl::InvalidArgumentError(
              absl::StrCat(what, " ", path, " goes through '..' below a missing directory"));
        }
        if (*it == "." || it->empty()) continue;
        out = JoinPath(out, *it);
      }
      return out;
    }
    if (!IsVanished(real.status()) && ErrnoOf(real.status()) != ENOTDIR) return real.status();
    if (fs.Stat(existing).ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, " ", path, " goes through ", existing,
          ", which exists but cannot be resolved (a dangling symlink?)"));
    }
    std::string parent(DirName(existing));
    if (parent.empty() || parent == existing) return real.status();
    missing.push_back(existing.substr(parent == "/" ? 1 : parent.size() + 1));
    existing = parent;
  }
}

}  // namespace snaphaven
