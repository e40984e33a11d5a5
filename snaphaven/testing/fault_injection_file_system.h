// A file system that fails chosen calls on demand, after leveldb's and
// RocksDB's fault-injection environments: it wraps a real file system and,
// for calls matching a rule (operation + path pattern), returns an errno
// error once, N times, always, or one time in N (seeded). It can also run a
// hook after a read, to change or remove files while a copy is under way.
//
// Power cuts, after leveldb's fault_injection_test model: with
// TrackDurability(root), it follows what each file and directory below
// `root` has made durable, and PowerCut() brings the real disk back to just
// that, as a power cut would (kill -9 keeps the page cache; this does not):
//  - a file's bytes (and mode and times) are durable as of its last
//    WritableFile::Sync; a file written through this file system and never
//    synced comes back EMPTY (leveldb drops unsynced data: so does this);
//    files that were there before tracking began count as durable as they
//    were;
//  - a name made (CreateNew, OpenForAppend creating, LinkAs, Link, the
//    target of Rename, MakeDir) or removed (Remove, the source of Rename,
//    RemoveDir) is durable only once its directory is SyncDir'd: each
//    directory keeps the names it held at its last SyncDir (as found when
//    first touched, before that). Hard links of one file stay links.
//  - FileSystemSync::SyncAll (syncfs) makes everything below `root` durable.
// While tracking, AppendFromKernel is refused (Unimplemented: the callers
// fall back to Read/Append) so that every byte written is seen. Calls that
// change something (create, write, setattr, fsync, close, rename/link,
// remove, rmdir, mkdir, fsync of a directory, syncfs) are counted;
// CutPowerAfter(n) lets n of them through and then fails every call (of any
// kind) with EIO: the process is dead from then on, until PowerCut().

#ifndef SNAPHAVEN_TESTING_FAULT_INJECTION_FILE_SYSTEM_H_
#define SNAPHAVEN_TESTING_FAULT_INJECTION_FILE_SYSTEM_H_

#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "re2/re2.h"
#include "snaphaven/storage/file_system.h"

namespace snaphaven::testing {

enum class FsOp {
  kStat,
  kListDir,
  kOpenForRead,
  kRead,
  kCreate,  // also CreateUnnamed ("<dir>/(unnamed)") and OpenForAppend
  kWrite,
  kSetAttributes,
  kSync,
  kClose,
  kRename,  // also naming an unnamed file (LinkAs); matched against the destination path
  kLink,    // matched against the new name
  kRemove,
  kRemoveDir,
  kMakeDir,
  kSyncDir,
  kSyncFs,  // FileSystemSync::SyncAll, matched against the path it was opened on
};

class DurabilityModel;  // fault_injection_file_system.cc

struct FaultRule {
  FsOp op = FsOp::kRead;
  std::string path_pattern;  // RE2, unanchored; empty matches every path
  int error = 0;             // errno to fail with
  int skip = 0;              // let this many matching calls through first
  int times = 1;             // then fail this many (-1: every one)
  int one_in = 0;            // > 0: instead fail each matching call with p = 1/one_in
};

class FaultInjectionFileSystem : public ForwardingFileSystem {
 public:
  explicit FaultInjectionFileSystem(FileSystem* base, uint32_t seed = 1);
  ~FaultInjectionFileSystem() override;

  void AddRule(const FaultRule& rule);
  // Forgets every rule and hook, and the calls and failures seen so far.
  void ClearRules();
  // Runs `hook(path)` once, after the first successful read of a file whose
  // path matches `pattern` (e.g. to append to the source mid-copy).
  void AfterFirstRead(const std::string& pattern, std::function<void(const std::string&)> hook);

  // Runs `hook(path)` at the start of every fsync of a file that no rule
  // fails (to watch how many run at once).
  void DuringSync(std::function<void(const std::string&)> hook);
  void RunSyncHook(const std::string& path);

  // Calls of `op` on paths matching `pattern` seen so far (failed or not).
  int Calls(FsOp op, const std::string& pattern) const;
  // One line per injected failure: "<op> <path>: <errno name>".
  std::vector<std::string> Injected() const;

  // If a rule fires for (op, path), the error to return.
  absl::Status MaybeFail(FsOp op, const std::string& path, absl::string_view operation_name);
  void RunReadHooks(const std::string& path);

  absl::StatusOr<FileStat> Stat(const std::string& path) override;
  absl::StatusOr<std::vector<std::string>> ListDir(const std::string& path) override;
  absl::StatusOr<std::unique_ptr<ReadableFile>> OpenForRead(const std::string& path) override;
  absl::StatusOr<std::unique_ptr<WritableFile>> CreateNew(const std::string& path) override;
  absl::StatusOr<std::unique_ptr<WritableFile>> CreateUnnamed(const std::string& dir) override;
  absl::StatusOr<std::unique_ptr<WritableFile>> OpenForAppend(const std::string& path) override;
  absl::Status Rename(const std::string& from, const std::string& to) override;
  absl::Status Link(const std::string& existing, const std::string& to) override;
  absl::Status Remove(const std::string& path) override;
  absl::Status RemoveDir(const std::string& path) override;
  absl::Status MakeDir(const std::string& path) override;
  absl::Status SyncDir(const std::string& path) override;
  absl::StatusOr<std::unique_ptr<FileSystemSync>> OpenFileSystemSync(
      const std::string& path) override;

  // ---- Durability (power cuts) ----
  // Starts following what is durable below `root` (an existing directory,
  // which must itself be durable). Forgets what was followed before.
  void TrackDurability(const std::string& root);
  void StopTracking();
  bool tracking() const;
  // Lets `calls` more changing calls through, then fails every call with
  // EIO (negative: never).
  void CutPowerAfter(int64_t calls);
  // Changing calls seen since construction (or ClearRules).
  int64_t ChangingCalls() const;
  // A call was refused by CutPowerAfter.
  bool PowerIsOff() const;

  struct PowerCutOptions {
    // Below this directory (none when empty), names made or removed and
    // not yet synced survive anyway (as a journal commit may write them):
    // only file data falls back to what was synced. E.g. the source of a
    // move, whose deletions are then as durable as they can ever be.
    std::string names_survive_under;
  };
  // Brings the disk below the tracked root back to its durable state, then
  // starts afresh from it (still tracking; the power is back on). Requires
  // tracking. Every file written since tracking began must be closed.
  absl::Status PowerCut(const PowerCutOptions& options);
  absl::Status PowerCut() { return PowerCut(PowerCutOptions()); }

  // For the wrapped files and syncfs handles.
  DurabilityModel* model() const;
  // Counts a changing call; false (and the power goes off) past the cut.
  bool CountChangingCall();

 private:
  struct Rule {
    FaultRule spec;
    std::unique_ptr<RE2> pattern;
    int seen = 0;
    int failed = 0;
  };
  struct Hook {
    std::unique_ptr<RE2> pattern;
    std::function<void(const std::string&)> run;
    bool done = false;
  };
  struct Call {
    FsOp op;
    std::string path;
  };

  mutable absl::Mutex mu_;
  std::vector<Rule> rules_;
  std::vector<Hook> hooks_;
  std::function<void(const std::string&)> sync_hook_;
  std::vector<Call> calls_;
  std::vector<std::string> injected_;
  std::mt19937 random_;
  int64_t changing_calls_ = 0;
  int64_t cut_after_ = -1;  // changing calls allowed since CutPowerAfter; -1: no cut
  int64_t cut_base_ = 0;
  bool power_off_ = false;
  std::unique_ptr<DurabilityModel> model_;  // null: not tracking
};

const char* FsOpName(FsOp op);

}  // namespace snaphaven::testing

#endif  // SNAPHAVEN_TESTING_FAULT_INJECTION_FILE_SYSTEM_H_
