#include "snaphaven/testing/fault_injection_file_system.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>

#include "absl/strings/str_cat.h"

namespace snaphaven::testing {

// What is durable below a root: see the header. Every call holds mu.
struct InodeState {
  bool is_dir = false;
  // The durable contents are known: written through the file system since
  // tracking began (then `durable` is as of the last Sync), or read when
  // its name was first changed (a file from before).
  bool known = false;
  std::string current, durable;
  bool current_has_attrs = false, durable_has_attrs = false;
  uint32_t mode = 0, durable_mode = 0;
  int64_t atime_ns = 0, mtime_ns = 0, durable_atime_ns = 0, durable_mtime_ns = 0;
};

class DurabilityModel {
 public:
  struct Entry {
    int64_t id = 0;
    bool is_dir = false;
  };
  using Listing = std::map<std::string, Entry>;

  DurabilityModel(FileSystem* base, std::string root) : base_(base), root_(std::move(root)) {}

  absl::Mutex mu;

  bool Inside(const std::string& path) const { return IsSameOrInside(path, root_); }
  static std::string Parent(const std::string& path) {
    std::string dir(DirName(path));
    return dir.empty() ? "." : dir;
  }

  // The id of a live inode, made up when first seen.
  int64_t IdOf(const FileStat& st) {
    auto it = ino_to_id_.find(st.ino);
    if (it != ino_to_id_.end()) return it->second;
    const int64_t id = next_id_++;
    auto state = std::make_shared<InodeState>();
    state->is_dir = st.type == FileType::kDirectory;
    states_[id] = state;
    ino_to_id_[st.ino] = id;
    return id;
  }
  int64_t NewId(uint64_t ino, std::shared_ptr<InodeState> state) {
    const int64_t id = next_id_++;
    states_[id] = std::move(state);
    ino_to_id_[ino] = id;
    return id;
  }

  absl::StatusOr<Listing> RealListing(const std::string& dir) {
    absl::StatusOr<std::vector<std::string>> names = base_->ListDir(dir);
    if (!names.ok()) return names.status();
    Listing out;
    for (const std::string& name : *names) {
      absl::StatusOr<FileStat> st = base_->Stat(JoinPath(dir, name));
      if (!st.ok()) continue;
      out[name] = Entry{IdOf(*st), st->type == FileType::kDirectory};
    }
    return out;
  }

  // Before a name in `dir` changes: its durable names are those it holds now.
  void TouchDir(const std::string& dir) {
    if (!Inside(dir)) return;
    absl::StatusOr<FileStat> st = base_->Stat(dir);
    if (!st.ok() || st->type != FileType::kDirectory) return;
    const int64_t id = IdOf(*st);
    if (durable_dirs_.count(id)) return;
    absl::StatusOr<Listing> listing = RealListing(dir);
    if (listing.ok()) durable_dirs_[id] = *std::move(listing);
  }

  // Before a file's name goes (or moves): its contents, when not known.
  void Capture(const std::string& path) {
    if (!Inside(path)) return;
    absl::StatusOr<FileStat> st = base_->Stat(path);
    if (!st.ok() || st->type != FileType::kRegular) return;
    std::shared_ptr<InodeState> state = states_[IdOf(*st)];
    if (state->known) return;
    absl::StatusOr<std::string> contents = base_->ReadFile(path);
    if (!contents.ok()) return;
    state->known = true;
    state->current = state->durable = *contents;
    state->current_has_attrs = state->durable_has_attrs = true;
    state->mode = state->durable_mode = st->mode;
    state->atime_ns = state->durable_atime_ns = st->atime_ns;
    state->mtime_ns = state->durable_mtime_ns = st->mtime_ns;
  }

  // A new file under `path` (made, or named by LinkAs): registers its inode.
  void Named(const std::string& path, const std::shared_ptr<InodeState>& state) {
    absl::StatusOr<FileStat> st = base_->Stat(path);
    if (st.ok()) NewId(st->ino, state);
  }

  // The inode behind `path` loses a name; its last one: a later file may
  // reuse the number.
  void Unlinked(uint64_t ino, uint64_t nlink_before) {
    if (nlink_before <= 1) ino_to_id_.erase(ino);
  }

  std::shared_ptr<InodeState> NewFileState() {
    auto state = std::make_shared<InodeState>();
    state->known = true;
    all_new_.push_back(state);
    return state;
  }

  // An existing file opened for appending: its state (captured if new to us).
  std::shared_ptr<InodeState> StateOf(const std::string& path) {
    absl::StatusOr<FileStat> st = base_->Stat(path);
    if (!st.ok()) return nullptr;
    Capture(path);
    return states_[IdOf(*st)];
  }

  void SyncDir(const std::string& dir) {
    if (!Inside(dir)) return;
    absl::StatusOr<FileStat> st = base_->Stat(dir);
    if (!st.ok()) return;
    const int64_t id = IdOf(*st);
    absl::StatusOr<Listing> listing = RealListing(dir);
    if (listing.ok()) durable_dirs_[id] = *std::move(listing);
  }

  static void MakeDurable(InodeState& state) {
    state.durable = state.current;
    state.durable_has_attrs = state.current_has_attrs;
    state.durable_mode = state.mode;
    state.durable_atime_ns = state.atime_ns;
    state.durable_mtime_ns = state.mtime_ns;
  }

  // syncfs: everything below the root.
  void SyncAll() {
    for (auto& [id, state] : states_) {
      if (state->known) MakeDurable(*state);
    }
    for (auto& state : all_new_) MakeDurable(*state);
    SyncTree(root_);
  }
  void SyncTree(const std::string& dir) {
    SyncDir(dir);
    absl::StatusOr<Listing> listing = RealListing(dir);
    if (!listing.ok()) return;
    for (const auto& [name, entry] : *listing) {
      if (entry.is_dir) SyncTree(JoinPath(dir, name));
    }
  }

  absl::Status PowerCut(const std::string& names_survive_under);

 private:
  // Every real path below the root (and the holding directory) by inode.
  void ScanInto(const std::string& dir, std::map<uint64_t, std::string>& out) {
    absl::StatusOr<std::vector<std::string>> names = base_->ListDir(dir);
    if (!names.ok()) return;
    for (const std::string& name : *names) {
      const std::string path = JoinPath(dir, name);
      absl::StatusOr<FileStat> st = base_->Stat(path);
      if (!st.ok()) continue;
      out.emplace(st->ino, path);
      if (st->type == FileType::kDirectory) ScanInto(path, out);
    }
  }
  // Where the live inode of `id` is now, or "".
  std::string FindLive(int64_t id) {
    uint64_t ino = 0;
    bool live = false;
    for (const auto& [i, d] : ino_to_id_) {
      if (d == id) {
        ino = i;
        live = true;
        break;
      }
    }
    if (!live) return "";
    std::map<uint64_t, std::string> where;
    ScanInto(root_, where);
    if (!holding_.empty()) ScanInto(holding_, where);
    auto it = where.find(ino);
    return it == where.end() ? "" : it->second;
  }
  absl::Status RestoreDir(const std::string& path, int64_t id, const std::string& survive);
  absl::Status WriteWhole(const std::string& path, const InodeState& state, bool create);

  FileSystem* const base_;
  const std::string root_;
  int64_t next_id_ = 1;
  std::map<uint64_t, int64_t> ino_to_id_;  // live inodes
  std::map<int64_t, std::shared_ptr<InodeState>> states_;
  std::vector<std::shared_ptr<InodeState>> all_new_;  // also unnamed ones, for SyncAll
  std::map<int64_t, Listing> durable_dirs_;            // directories touched
  // During a PowerCut:
  std::string holding_;
  int holding_counter_ = 0;
  std::map<int64_t, std::string> placed_;  // file id -> a path it has now
  std::map<int64_t, bool> rewritten_;
};

namespace {

absl::Status PosixError(const char* what, const std::string& path) {
  return ErrnoStatus(errno, what, path);
}

}  // namespace

absl::Status DurabilityModel::WriteWhole(const std::string& path, const InodeState& state,
                                         bool create) {
  if (!create) (void)chmod(path.c_str(), 0600);
  const int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC | (create ? O_CREAT | O_EXCL : O_TRUNC),
                      0600);
  if (fd < 0) return PosixError("open", path);
  const std::string& data = state.durable;
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      close(fd);
      return PosixError("write", path);
    }
    done += static_cast<size_t>(n);
  }
  if (state.durable_has_attrs) {
    (void)fchmod(fd, state.durable_mode);
    timespec times[2] = {{state.durable_atime_ns / 1000000000, state.durable_atime_ns % 1000000000},
                         {state.durable_mtime_ns / 1000000000, state.durable_mtime_ns % 1000000000}};
    (void)futimens(fd, times);
  } else if (state.current_has_attrs) {
    (void)fchmod(fd, state.mode);
  }
  close(fd);
  return absl::OkStatus();
}

absl::Status DurabilityModel::RestoreDir(const std::string& path, int64_t id,
                                         const std::string& survive) {
  const bool names_survive = !survive.empty() && IsSameOrInside(path, survive);
  absl::StatusOr<Listing> real = RealListing(path);
  if (!real.ok()) return real.status();
  Listing want;
  auto durable = durable_dirs_.find(id);
  want = (durable == durable_dirs_.end() || names_survive) ? *real : durable->second;
  // What does not belong goes: files unlinked, directories set aside (they
  // may belong elsewhere).
  for (const auto& [name, entry] : *real) {
    auto it = want.find(name);
    if (it != want.end() && it->second.id == entry.id) continue;
    const std::string from = JoinPath(path, name);
    if (entry.is_dir) {
      if (holding_.empty()) {
        holding_ = root_ + ".powercut-holding";
        std::filesystem::remove_all(holding_);
        if (mkdir(holding_.c_str(), 0700) != 0) return PosixError("mkdir", holding_);
      }
      const std::string to = JoinPath(holding_, absl::StrCat(++holding_counter_));
      if (rename(from.c_str(), to.c_str()) != 0) return PosixError("rename", from);
    } else if (unlink(from.c_str()) != 0) {
      return PosixError("unlink", from);
    }
  }
  // What is missing comes back.
  for (const auto& [name, entry] : want) {
    const std::string to = JoinPath(path, name);
    auto there = real->find(name);
    const bool in_place = there != real->end() && there->second.id == entry.id;
    if (entry.is_dir) {
      if (!in_place) {
        const std::string live = FindLive(entry.id);
        if (!live.empty()) {
          if (rename(live.c_str(), to.c_str()) != 0) return PosixError("rename", live);
        } else {
          if (mkdir(to.c_str(), 0755) != 0) return PosixError("mkdir", to);
          absl::StatusOr<FileStat> st = base_->Stat(to);
          if (st.ok()) ino_to_id_[st->ino] = entry.id;
          durable_dirs_.emplace(entry.id, Listing());  // made empty, unless known
        }
      }
      absl::Status status = RestoreDir(to, entry.id, survive);
      if (!status.ok()) return status;
      continue;
    }
    std::shared_ptr<InodeState>& state = states_[entry.id];
    if (state == nullptr) state = std::make_shared<InodeState>();
    if (in_place) {
      placed_.emplace(entry.id, to);
      continue;
    }
    auto placed = placed_.find(entry.id);
    std::string from = placed != placed_.end() ? placed->second : FindLive(entry.id);
    if (!from.empty()) {
      if (link(from.c_str(), to.c_str()) != 0) return PosixError("link", to);
      placed_.emplace(entry.id, to);
      continue;
    }
    if (!state->known) {
      return absl::InternalError(absl::StrCat("power cut: cannot bring back ", to,
                                              ": its contents were never seen"));
    }
    absl::Status status = WriteWhole(to, *state, /*create=*/true);
    if (!status.ok()) return status;
    rewritten_[entry.id] = true;
    placed_.emplace(entry.id, to);
    absl::StatusOr<FileStat> st = base_->Stat(to);
    if (st.ok()) ino_to_id_[st->ino] = entry.id;
  }
  return absl::OkStatus();
}

absl::Status DurabilityModel::PowerCut(const std::string& names_survive_under) {
  holding_.clear();
  placed_.clear();
  rewritten_.clear();
  absl::StatusOr<FileStat> root = base_->Stat(root_);
  if (!root.ok()) return root.status();
  absl::Status status = RestoreDir(root_, IdOf(*root), names_survive_under);
  // The bytes: every known file that has a name now, as last synced.
  for (const auto& [id, path] : placed_) {
    if (!status.ok()) break;
    const InodeState& state = *states_[id];
    if (!state.known || rewritten_[id]) continue;
    const bool same = state.current == state.durable &&
                      state.current_has_attrs == state.durable_has_attrs &&
                      (!state.durable_has_attrs ||
                       (state.mode == state.durable_mode && state.mtime_ns == state.durable_mtime_ns &&
                        state.atime_ns == state.durable_atime_ns));
    if (same) continue;
    status = WriteWhole(path, state, /*create=*/false);
  }
  if (!holding_.empty()) std::filesystem::remove_all(holding_);
  // The disk is what is durable now: start afresh.
  ino_to_id_.clear();
  states_.clear();
  all_new_.clear();
  durable_dirs_.clear();
  placed_.clear();
  rewritten_.clear();
  holding_.clear();
  return status;
}

namespace {

bool Matches(const RE2* pattern, const std::string& path) {
  return pattern == nullptr || RE2::PartialMatch(path, *pattern);
}

std::unique_ptr<RE2> Compile(const std::string& pattern) {
  if (pattern.empty()) return nullptr;
  auto re = std::make_unique<RE2>(pattern);
  if (!re->ok()) abort();  // a broken test
  return re;
}

class FaultyReadableFile : public ReadableFile {
 public:
  FaultyReadableFile(FaultInjectionFileSystem* fs, std::unique_ptr<ReadableFile> base,
                     std::string path)
      : fs_(fs), base_(std::move(base)), path_(std::move(path)) {}
  absl::StatusOr<size_t> Read(char* buffer, size_t n) override {
    absl::Status fault = fs_->MaybeFail(FsOp::kRead, path_, "read");
    if (!fault.ok()) return fault;
    absl::StatusOr<size_t> got = base_->Read(buffer, n);
    if (got.ok() && *got > 0) fs_->RunReadHooks(path_);
    return got;
  }
  absl::StatusOr<size_t> ReadAt(char* buffer, size_t n, uint64_t offset) override {
    absl::Status fault = fs_->MaybeFail(FsOp::kRead, path_, "pread");
    if (!fault.ok()) return fault;
    return base_->ReadAt(buffer, n, offset);
  }
  absl::StatusOr<FileStat> Stat() override { return base_->Stat(); }
  std::vector<bool> ResidentPages() override { return base_->ResidentPages(); }
  void DropPagesExcept(const std::vector<bool>& keep) override { base_->DropPagesExcept(keep); }

  // The read side of FaultyWritableFile::AppendFromKernel: `out` copies from
  // the real file, with this file's read faults and hooks applied as in Read.
  absl::StatusOr<size_t> KernelCopyTo(WritableFile& out, size_t n) {
    absl::Status fault = fs_->MaybeFail(FsOp::kRead, path_, "copy_file_range");
    if (!fault.ok()) return fault;
    absl::StatusOr<size_t> got = out.AppendFromKernel(*base_, n);
    if (got.ok() && *got > 0) fs_->RunReadHooks(path_);
    return got;
  }

 private:
  FaultInjectionFileSystem* const fs_;
  std::unique_ptr<ReadableFile> base_;
  const std::string path_;
};

class FaultyWritableFile : public WritableFile {
 public:
  FaultyWritableFile(FaultInjectionFileSystem* fs, std::unique_ptr<WritableFile> base,
                     std::string path, std::shared_ptr<InodeState> state = nullptr)
      : fs_(fs), base_(std::move(base)), path_(std::move(path)), state_(std::move(state)) {}
  absl::Status Append(absl::string_view data) override {
    absl::Status fault = fs_->MaybeFail(FsOp::kWrite, path_, "write");
    if (!fault.ok()) return fault;
    DurabilityModel* model = state_ ? fs_->model() : nullptr;
    if (model == nullptr) return base_->Append(data);
    absl::MutexLock lock(&model->mu);
    absl::Status status = base_->Append(data);
    if (status.ok()) state_->current.append(data.data(), data.size());
    return status;
  }
  absl::StatusOr<size_t> AppendFromKernel(ReadableFile& in, size_t n) override {
    // Tracked: every byte must pass through Append to be seen.
    if (state_ != nullptr) return absl::UnimplementedError("no kernel copy while tracking");
    absl::Status fault = fs_->MaybeFail(FsOp::kWrite, path_, "copy_file_range");
    if (!fault.ok()) return fault;
    // The real files must meet: unwrap `in` when it is one of ours.
    auto* faulty_in = dynamic_cast<FaultyReadableFile*>(&in);
    if (faulty_in == nullptr) return base_->AppendFromKernel(in, n);
    return faulty_in->KernelCopyTo(*base_, n);
  }
  absl::Status SetAttributes(const FileStat& from, bool set_owner) override {
    absl::Status fault = fs_->MaybeFail(FsOp::kSetAttributes, path_, "futimens");
    if (!fault.ok()) return fault;
    absl::Status status = base_->SetAttributes(from, set_owner);
    DurabilityModel* model = state_ ? fs_->model() : nullptr;
    if (status.ok() && model != nullptr) {
      absl::MutexLock lock(&model->mu);
      state_->current_has_attrs = true;
      state_->mode = from.mode & 07777;
      state_->atime_ns = from.atime_ns;
      state_->mtime_ns = from.mtime_ns;
    }
    return status;
  }
  absl::Status Sync() override {
    absl::Status fault = fs_->MaybeFail(FsOp::kSync, path_, "fsync");
    if (!fault.ok()) return fault;
    fs_->RunSyncHook(path_);
    absl::Status status = base_->Sync();
    DurabilityModel* model = state_ ? fs_->model() : nullptr;
    if (status.ok() && model != nullptr) {
      absl::MutexLock lock(&model->mu);
      DurabilityModel::MakeDurable(*state_);
    }
    return status;
  }
  absl::Status Close() override {
    absl::Status closed = base_->Close();  // the descriptor is released either way
    absl::Status fault = fs_->MaybeFail(FsOp::kClose, path_, "close");
    return fault.ok() ? closed : fault;
  }
  void DropPages() override { base_->DropPages(); }
  void StartWriteback() override { base_->StartWriteback(); }
  absl::Status LinkAs(const std::string& path) override {
    absl::Status fault = fs_->MaybeFail(FsOp::kRename, path, "link");
    if (!fault.ok()) return fault;
    DurabilityModel* model = state_ ? fs_->model() : nullptr;
    if (model == nullptr) return base_->LinkAs(path);
    absl::MutexLock lock(&model->mu);
    model->TouchDir(DurabilityModel::Parent(path));
    absl::Status status = base_->LinkAs(path);
    if (status.ok()) model->Named(path, state_);
    return status;
  }

 private:
  FaultInjectionFileSystem* const fs_;
  std::unique_ptr<WritableFile> base_;
  const std::string path_;
  const std::shared_ptr<InodeState> state_;  // tracked: what it holds, what is durable
};

class FaultyFileSystemSync : public FileSystemSync {
 public:
  FaultyFileSystemSync(FaultInjectionFileSystem* fs, std::unique_ptr<FileSystemSync> base,
                       std::string path)
      : fs_(fs), base_(std::move(base)), path_(std::move(path)) {}
  absl::Status SyncAll() override {
    absl::Status fault = fs_->MaybeFail(FsOp::kSyncFs, path_, "syncfs");
    if (!fault.ok()) return fault;
    DurabilityModel* model = fs_->model();
    if (model == nullptr) return base_->SyncAll();
    absl::MutexLock lock(&model->mu);
    absl::Status status = base_->SyncAll();
    if (status.ok()) model->SyncAll();
    return status;
  }

 private:
  FaultInjectionFileSystem* const fs_;
  std::unique_ptr<FileSystemSync> base_;
  const std::string path_;
};

}  // namespace

const char* FsOpName(FsOp op) {
  switch (op) {
    case FsOp::kStat: return "stat";
    case FsOp::kListDir: return "listdir";
    case FsOp::kOpenForRead: return "open";
    case FsOp::kRead: return "read";
    case FsOp::kCreate: return "create";
    case FsOp::kWrite: return "write";
    case FsOp::kSetAttributes: return "setattr";
    case FsOp::kSync: return "fsync";
    case FsOp::kClose: return "close";
    case FsOp::kRename: return "rename";
    case FsOp::kLink: return "link";
    case FsOp::kRemove: return "remove";
    case FsOp::kRemoveDir: return "rmdir";
    case FsOp::kMakeDir: return "mkdir";
    case FsOp::kSyncDir: return "syncdir";
    case FsOp::kSyncFs: return "syncfs";
  }
  return "?";
}

FaultInjectionFileSystem::FaultInjectionFileSystem(FileSystem* base, uint32_t seed)
    : ForwardingFileSystem(base), random_(seed) {}

FaultInjectionFileSystem::~FaultInjectionFileSystem() = default;

void FaultInjectionFileSystem::TrackDurability(const std::string& root) {
  absl::MutexLock lock(&mu_);
  model_ = std::make_unique<DurabilityModel>(base(), root);
}

void FaultInjectionFileSystem::StopTracking() {
  absl::MutexLock lock(&mu_);
  model_.reset();
}

bool FaultInjectionFileSystem::tracking() const {
  absl::MutexLock lock(&mu_);
  return model_ != nullptr;
}

DurabilityModel* FaultInjectionFileSystem::model() const {
  absl::MutexLock lock(&mu_);
  return model_.get();
}

void FaultInjectionFileSystem::CutPowerAfter(int64_t calls) {
  absl::MutexLock lock(&mu_);
  cut_after_ = calls;
  cut_base_ = changing_calls_;
  power_off_ = false;
}

int64_t FaultInjectionFileSystem::ChangingCalls() const {
  absl::MutexLock lock(&mu_);
  return changing_calls_;
}

bool FaultInjectionFileSystem::PowerIsOff() const {
  absl::MutexLock lock(&mu_);
  return power_off_;
}

absl::Status FaultInjectionFileSystem::PowerCut(const PowerCutOptions& options) {
  DurabilityModel* model = this->model();
  if (model == nullptr) return absl::FailedPreconditionError("PowerCut: not tracking durability");
  absl::Status status;
  {
    absl::MutexLock lock(&model->mu);
    status = model->PowerCut(options.names_survive_under);
  }
  absl::MutexLock lock(&mu_);
  power_off_ = false;
  cut_after_ = -1;
  return status;
}

void FaultInjectionFileSystem::AddRule(const FaultRule& rule) {
  absl::MutexLock lock(&mu_);
  rules_.push_back(Rule{rule, Compile(rule.path_pattern)});
}

void FaultInjectionFileSystem::ClearRules() {
  absl::MutexLock lock(&mu_);
  rules_.clear();
  hooks_.clear();
  calls_.clear();
  injected_.clear();
  changing_calls_ = 0;
  cut_after_ = -1;
  cut_base_ = 0;
  power_off_ = false;
}

void FaultInjectionFileSystem::AfterFirstRead(const std::string& pattern,
                                              std::function<void(const std::string&)> hook) {
  absl::MutexLock lock(&mu_);
  hooks_.push_back(Hook{Compile(pattern), std::move(hook)});
}

int FaultInjectionFileSystem::Calls(FsOp op, const std::string& pattern) const {
  std::unique_ptr<RE2> re = Compile(pattern);
  absl::MutexLock lock(&mu_);
  int n = 0;
  for (const Call& call : calls_) n += call.op == op && Matches(re.get(), call.path);
  return n;
}

std::vector<std::string> FaultInjectionFileSystem::Injected() const {
  absl::MutexLock lock(&mu_);
  return injected_;
}

absl::Status FaultInjectionFileSystem::MaybeFail(FsOp op, const std::string& path,
                                                 absl::string_view operation_name) {
  absl::MutexLock lock(&mu_);
  calls_.push_back(Call{op, path});
  if (power_off_) return ErrnoStatus(EIO, operation_name, path);  // dead since the cut
  switch (op) {
    case FsOp::kStat:
    case FsOp::kListDir:
    case FsOp::kOpenForRead:
    case FsOp::kRead:
      break;
    default:
      if (cut_after_ >= 0 && changing_calls_ - cut_base_ >= cut_after_) {
        power_off_ = true;
        injected_.push_back(absl::StrCat(FsOpName(op), " ", path, ": power cut"));
        return ErrnoStatus(EIO, operation_name, path);
      }
      ++changing_calls_;
  }
  for (Rule& rule : rules_) {
    if (rule.spec.op != op || !Matches(rule.pattern.get(), path)) continue;
    ++rule.seen;
    bool fire;
    if (rule.spec.one_in > 0) {
      fire = std::uniform_int_distribution<int>(1, rule.spec.one_in)(random_) == 1;
    } else {
      fire = rule.seen > rule.spec.skip &&
             (rule.spec.times < 0 || rule.failed < rule.spec.times);
    }
    if (!fire) continue;
    ++rule.failed;
    injected_.push_back(absl::StrCat(FsOpName(op), " ", path, ": ", strerror(rule.spec.error)));
    return ErrnoStatus(rule.spec.error, operation_name, path);
  }
  return absl::OkStatus();
}

void FaultInjectionFileSystem::RunReadHooks(const std::string& path) {
  std::vector<std::function<void(const std::string&)>> to_run;
  {
    absl::MutexLock lock(&mu_);
    for (Hook& hook : hooks_) {
      if (!hook.done && Matches(hook.pattern.get(), path)) {
        hook.done = true;
        to_run.push_back(hook.run);
      }
    }
  }
  for (auto& run : to_run) run(path);
}

void FaultInjectionFileSystem::DuringSync(std::function<void(const std::string&)> hook) {
  absl::MutexLock lock(&mu_);
  sync_hook_ = std::move(hook);
}

void FaultInjectionFileSystem::RunSyncHook(const std::string& path) {
  std::function<void(const std::string&)> hook;
  {
    absl::MutexLock lock(&mu_);
    hook = sync_hook_;
  }
  if (hook) hook(path);
}

#define SNAPHAVEN_FAULT(op, name, path)                     \
  do {                                                      \
    absl::Status fault = MaybeFail(op, path, name);         \
    if (!fault.ok()) return fault;                          \
  } while (0)

absl::StatusOr<FileStat> FaultInjectionFileSystem::Stat(const std::string& path) {
  SNAPHAVEN_FAULT(FsOp::kStat, "lstat", path);
  return ForwardingFileSystem::Stat(path);
}

absl::StatusOr<std::vector<std::string>> FaultInjectionFileSystem::ListDir(
    const std::string& path) {
  SNAPHAVEN_FAULT(FsOp::kListDir, "opendir", path);
  return ForwardingFileSystem::ListDir(path);
}

absl::StatusOr<std::unique_ptr<ReadableFile>> FaultInjectionFileSystem::OpenForRead(
    const std::string& path) {
  SNAPHAVEN_FAULT(FsOp::kOpenForRead, "open", path);
  absl::StatusOr<std::unique_ptr<ReadableFile>> file = ForwardingFileSystem::OpenForRead(path);
  if (!file.ok()) return file.status();
  return std::unique_ptr<ReadableFile>(new FaultyReadableFile(this, *std::move(file), path));
}

absl::StatusOr<std::unique_ptr<WritableFile>> FaultInjectionFileSystem::CreateNew(
    const std::string& path) {
  SNAPHAVEN_FAULT(FsOp::kCreate, "create", path);
  DurabilityModel* model = this->model();
  if (model == nullptr || !model->Inside(path)) {
    absl::StatusOr<std::unique_ptr<WritableFile>> file = ForwardingFileSystem::CreateNew(path);
    if (!file.ok()) return file.status();
    return std::unique_ptr<WritableFile>(new FaultyWritableFile(this, *std::move(file), path));
  }
  absl::MutexLock lock(&model->mu);
  model->TouchDir(DurabilityModel::Parent(path));
  absl::StatusOr<std::unique_ptr<WritableFile>> file = ForwardingFileSystem::CreateNew(path);
  if (!file.ok()) return file.status();
  std::shared_ptr<InodeState> state = model->NewFileState();
  state->current_has_attrs = true;
  state->mode = 0600;
  model->Named(path, state);
  return std::unique_ptr<WritableFile>(new FaultyWritableFile(this, *std::move(file), path, state));
}

absl::StatusOr<std::unique_ptr<WritableFile>> FaultInjectionFileSystem::CreateUnnamed(
    const std::string& dir) {
  // Rules aimed at temporary files ("/\\.snaphaven/tmp/") match these too.
  const std::string path = JoinPath(dir, "(unnamed)");
  SNAPHAVEN_FAULT(FsOp::kCreate, "create", path);
  absl::StatusOr<std::unique_ptr<WritableFile>> file = ForwardingFileSystem::CreateUnnamed(dir);
  if (!file.ok()) return file.status();
  DurabilityModel* model = this->model();
  std::shared_ptr<InodeState> state;
  if (model != nullptr && model->Inside(dir)) {
    absl::MutexLock lock(&model->mu);
    state = model->NewFileState();  // named (and followed) by LinkAs
    state->current_has_attrs = true;
    state->mode = 0600;
  }
  return std::unique_ptr<WritableFile>(new FaultyWritableFile(this, *std::move(file), path, state));
}

absl::StatusOr<std::unique_ptr<WritableFile>> FaultInjectionFileSystem::OpenForAppend(
    const std::string& path) {
  SNAPHAVEN_FAULT(FsOp::kCreate, "open for append", path);
  DurabilityModel* model = this->model();
  if (model == nullptr || !model->Inside(path)) {
    absl::StatusOr<std::unique_ptr<WritableFile>> file =
        ForwardingFileSystem::OpenForAppend(path);
    if (!file.ok()) return file.status();
    return std::unique_ptr<WritableFile>(new FaultyWritableFile(this, *std::move(file), path));
  }
  absl::MutexLock lock(&model->mu);
  model->TouchDir(DurabilityModel::Parent(path));
  std::shared_ptr<InodeState> state = model->StateOf(path);  // null: to be made
  absl::StatusOr<std::unique_ptr<WritableFile>> file = ForwardingFileSystem::OpenForAppend(path);
  if (!file.ok()) return file.status();
  if (state == nullptr) {
    state = model->NewFileState();
    state->current_has_attrs = true;
    state->mode = 0600;
    model->Named(path, state);
  }
  return std::unique_ptr<WritableFile>(new FaultyWritableFile(this, *std::move(file), path, state));
}

absl::Status FaultInjectionFileSystem::Rename(const std::string& from, const std::string& to) {
  SNAPHAVEN_FAULT(FsOp::kRename, "rename", to);
  DurabilityModel* model = this->model();
  if (model == nullptr) return ForwardingFileSystem::Rename(from, to);
  absl::MutexLock lock(&model->mu);
  model->TouchDir(DurabilityModel::Parent(from));
  model->TouchDir(DurabilityModel::Parent(to));
  model->Capture(from);
  absl::StatusOr<FileStat> from_st = base()->Stat(from);
  absl::StatusOr<FileStat> replaced = base()->Stat(to);
  if (replaced.ok()) model->Capture(to);
  absl::Status status = ForwardingFileSystem::Rename(from, to);
  if (status.ok() && replaced.ok() && from_st.ok() && replaced->ino != from_st->ino) {
    model->Unlinked(replaced->ino, replaced->nlink);
  }
  return status;
}

absl::Status FaultInjectionFileSystem::Link(const std::string& existing, const std::string& to) {
  SNAPHAVEN_FAULT(FsOp::kLink, "link", to);
  DurabilityModel* model = this->model();
  if (model == nullptr) return ForwardingFileSystem::Link(existing, to);
  absl::MutexLock lock(&model->mu);
  model->TouchDir(DurabilityModel::Parent(to));
  model->Capture(existing);
  return ForwardingFileSystem::Link(existing, to);
}

absl::Status FaultInjectionFileSystem::Remove(const std::string& path) {
  SNAPHAVEN_FAULT(FsOp::kRemove, "unlink", path);
  DurabilityModel* model = this->model();
  if (model == nullptr) return ForwardingFileSystem::Remove(path);
  absl::MutexLock lock(&model->mu);
  model->TouchDir(DurabilityModel::Parent(path));
  model->Capture(path);
  absl::StatusOr<FileStat> st = base()->Stat(path);
  absl::Status status = ForwardingFileSystem::Remove(path);
  if (status.ok() && st.ok()) model->Unlinked(st->ino, st->nlink);
  return status;
}

absl::Status FaultInjectionFileSystem::RemoveDir(const std::string& path) {
  SNAPHAVEN_FAULT(FsOp::kRemoveDir, "rmdir", path);
  DurabilityModel* model = this->model();
  if (model == nullptr) return ForwardingFileSystem::RemoveDir(path);
  absl::MutexLock lock(&model->mu);
  model->TouchDir(DurabilityModel::Parent(path));
  model->TouchDir(path);
  absl::StatusOr<FileStat> st = base()->Stat(path);
  absl::Status status = ForwardingFileSystem::RemoveDir(path);
  if (status.ok() && st.ok()) model->Unlinked(st->ino, 1);
  return status;
}

absl::Status FaultInjectionFileSystem::MakeDir(const std::string& path) {
  SNAPHAVEN_FAULT(FsOp::kMakeDir, "mkdir", path);
  DurabilityModel* model = this->model();
  if (model == nullptr) return ForwardingFileSystem::MakeDir(path);
  absl::MutexLock lock(&model->mu);
  model->TouchDir(DurabilityModel::Parent(path));
  absl::Status status = ForwardingFileSystem::MakeDir(path);
  if (status.ok()) {
    model->TouchDir(path);  // new: empty, and so durably (once its name is)
  }
  return status;
}

absl::Status FaultInjectionFileSystem::SyncDir(const std::string& path) {
  SNAPHAVEN_FAULT(FsOp::kSyncDir, "fsync", path);
  DurabilityModel* model = this->model();
  if (model == nullptr) return ForwardingFileSystem::SyncDir(path);
  absl::MutexLock lock(&model->mu);
  absl::Status status = ForwardingFileSystem::SyncDir(path);
  if (status.ok()) model->SyncDir(path);
  return status;
}

absl::StatusOr<std::unique_ptr<FileSystemSync>> FaultInjectionFileSystem::OpenFileSystemSync(
    const std::string& path) {
  absl::StatusOr<std::unique_ptr<FileSystemSync>> sync =
      ForwardingFileSystem::OpenFileSystemSync(path);
  if (!sync.ok()) return sync.status();
  return std::unique_ptr<FileSystemSync>(new FaultyFileSystemSync(this, *std::move(sync), path));
}

#undef SNAPHAVEN_FAULT

}  // namespace snaphaven::testing
