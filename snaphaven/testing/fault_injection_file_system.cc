#include "snaphaven/testing/fault_injection_file_system.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace snaphaven::testing {
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
                     std::string path)
      : fs_(fs), base_(std::move(base)), path_(std::move(path)) {}
  absl::Status Append(absl::string_view data) override {
    absl::Status fault = fs_->MaybeFail(FsOp::kWrite, path_, "write");
    return fault.ok() ? base_->Append(data) : fault;
  }
  absl::StatusOr<size_t> AppendFromKernel(ReadableFile& in, size_t n) override {
    absl::Status fault = fs_->MaybeFail(FsOp::kWrite, path_, "copy_file_range");
    if (!fault.ok()) return fault;
    // The real files must meet: unwrap `in` when it is one of ours.
    auto* faulty_in = dynamic_cast<FaultyReadableFile*>(&in);
    if (faulty_in == nullptr) return base_->AppendFromKernel(in, n);
    return faulty_in->KernelCopyTo(*base_, n);
  }
  absl::Status SetAttributes(const FileStat& from, bool set_owner) override {
    absl::Status fault = fs_->MaybeFail(FsOp::kSetAttributes, path_, "futimens");
    return fault.ok() ? base_->SetAttributes(from, set_owner) : fault;
  }
  absl::Status Sync() override {
    absl::Status fault = fs_->MaybeFail(FsOp::kSync, path_, "fsync");
    if (!fault.ok()) return fault;
    fs_->RunSyncHook(path_);
    return base_->Sync();
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
    return fault.ok() ? base_->LinkAs(path) : fault;
  }

 private:
  FaultInjectionFileSystem* const fs_;
  std::unique_ptr<WritableFile> base_;
  const std::string path_;
};

class FaultyFileSystemSync : public FileSystemSync {
 public:
  FaultyFileSystemSync(FaultInjectionFileSystem* fs, std::unique_ptr<FileSystemSync> base,
                       std::string path)
      : fs_(fs), base_(std::move(base)), path_(std::move(path)) {}
  absl::Status SyncAll() override {
    absl::Status fault = fs_->MaybeFail(FsOp::kSyncFs, path_, "syncfs");
    return fault.ok() ? base_->SyncAll() : fault;
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
  absl::StatusOr<std::unique_ptr<WritableFile>> file = ForwardingFileSystem::CreateNew(path);
  if (!file.ok()) return file.status();
  return std::unique_ptr<WritableFile>(new FaultyWritableFile(this, *std::move(file), path));
}

absl::StatusOr<std::unique_ptr<WritableFile>> FaultInjectionFileSystem::CreateUnnamed(
    const std::string& dir) {
  // Rules aimed at temporary files ("/\\.snaphaven/tmp/") match these too.
  const std::string path = JoinPath(dir, "(unnamed)");
  SNAPHAVEN_FAULT(FsOp::kCreate, "create", path);
  absl::StatusOr<std::unique_ptr<WritableFile>> file = ForwardingFileSystem::CreateUnnamed(dir);
  if (!file.ok()) return file.status();
  return std::unique_ptr<WritableFile>(new FaultyWritableFile(this, *std::move(file), path));
}

absl::StatusOr<std::unique_ptr<WritableFile>> FaultInjectionFileSystem::OpenForAppend(
    const std::string& path) {
  SNAPHAVEN_FAULT(FsOp::kCreate, "open for append", path);
  absl::StatusOr<std::unique_ptr<WritableFile>> file = ForwardingFileSystem::OpenForAppend(path);
  if (!file.ok()) return file.status();
  return std::unique_ptr<WritableFile>(new FaultyWritableFile(this, *std::move(file), path));
}

absl::Status FaultInjectionFileSystem::Rename(const std::string& from, const std::string& to) {
  SNAPHAVEN_FAULT(FsOp::kRename, "rename", to);
  return ForwardingFileSystem::Rename(from, to);
}

absl::Status FaultInjectionFileSystem::Link(const std::string& existing, const std::string& to) {
  SNAPHAVEN_FAULT(FsOp::kLink, "link", to);
  return ForwardingFileSystem::Link(existing, to);
}

absl::Status FaultInjectionFileSystem::Remove(const std::string& path) {
  SNAPHAVEN_FAULT(FsOp::kRemove, "unlink", path);
  return ForwardingFileSystem::Remove(path);
}

absl::Status FaultInjectionFileSystem::RemoveDir(const std::string& path) {
  SNAPHAVEN_FAULT(FsOp::kRemoveDir, "rmdir", path);
  return ForwardingFileSystem::RemoveDir(path);
}

absl::Status FaultInjectionFileSystem::MakeDir(const std::string& path) {
  SNAPHAVEN_FAULT(FsOp::kMakeDir, "mkdir", path);
  return ForwardingFileSystem::MakeDir(path);
}

absl::Status FaultInjectionFileSystem::SyncDir(const std::string& path) {
  SNAPHAVEN_FAULT(FsOp::kSyncDir, "fsync", path);
  return ForwardingFileSystem::SyncDir(path);
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
