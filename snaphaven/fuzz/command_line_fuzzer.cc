// The command line (command_line.h ParseArgs, then options.h
// ValidateOptions), one argument per input line. The flags are main.cc's,
// by name and kind; their values go into RawOptions as gflags would set
// them. ValidateOptions runs in a sandbox (a small Cassandra home, a
// destination, a keyspace moved away behind a symlink) that every path,
// relative or absolute, is mapped into, and must change nothing.

#include <unistd.h>

#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "snaphaven/cli/command_line.h"
#include "snaphaven/storage/file_system.h"
#include "snaphaven/fuzz/fuzz_util.h"
#include "snaphaven/cli/options.h"

namespace snaphaven {
namespace {

// main.cc's flags (and glog's -v): the RawOptions field each sets.
using Field = std::variant<std::string RawOptions::*, bool RawOptions::*, int RawOptions::*,
                           double RawOptions::*>;

const absl::flat_hash_map<std::string, Field>& Flags() {
  using R = RawOptions;
  static const auto* const flags = new absl::flat_hash_map<std::string, Field>{
      {"snapshot_dir", &R::snapshot_dir},   {"cassandra_dir", &R::cassandra_dir},
      {"snapshot_regex", &R::snapshot_regex}, {"fullsync", &R::fullsync},
      {"interval", &R::interval},           {"quiet", &R::quiet},
      {"move_snapshots", &R::move_snapshots}, {"sync_sstables", &R::sync_sstables},
      {"sync_backups", &R::sync_backups},   {"verify", &R::verify},
      {"verify_sample", &R::verify_sample}, {"checksum", &R::checksum},
      {"list", &R::list_only},              {"json", &R::json},
      {"cluster", &R::cluster},             {"all_keyspaces", &R::all_keyspaces},
      {"restore", &R::restore_tag},         {"restore_to", &R::restore_to},
      {"keep_snapshots", &R::keep_snapshots}, {"keep_for", &R::keep_for},
      {"require_destination", &R::require_destination},
      {"adopt_destination", &R::adopt_destination},
      {"metrics_file", &R::metrics_file},   {"progress_interval", &R::progress_interval},
      {"dry_run", &R::dry_run},             {"max_bandwidth", &R::max_bandwidth},
      {"copy_threads", &R::copy_threads},   {"scan_threads", &R::scan_threads},
      {"io_priority", &R::io_priority},     {"settle_time", &R::settle_time},
      {"stuck_after", &R::stuck_after},     {"prune_after", &R::prune_after},
      {"v", &R::verbosity},
  };
  return *flags;
}

absl::optional<FlagKind> Lookup(absl::string_view name) {
  auto it = Flags().find(name);
  if (it == Flags().end()) return absl::nullopt;
  return std::holds_alternative<bool RawOptions::*>(it->second) ? FlagKind::kBool
                                                                 : FlagKind::kValue;
}

// Every path into the sandbox; anything that would change a file fails the
// run.
class SandboxFileSystem : public ForwardingFileSystem {
 public:
  explicit SandboxFileSystem(std::string root)
      : ForwardingFileSystem(DefaultFileSystem()), root_(std::move(root)) {}

  std::string Map(const std::string& path) const {
    if (path == root_ || absl::StartsWith(path, root_ + "/")) return path;
    if (!path.empty() && path[0] == '/') return root_ + path;
    return root_ + "/" + path;
  }

  absl::StatusOr<FileStat> Stat(const std::string& p) override { return base()->Stat(Map(p)); }
  absl::StatusOr<std::vector<std::string>> ListDir(const std::string& p) override {
    return base()->ListDir(Map(p));
  }
  absl::StatusOr<std::unique_ptr<ReadableFile>> OpenForRead(const std::string& p) override {
    return base()->OpenForRead(Map(p));
  }
  absl::StatusOr<std::string> RealPath(const std::string& p) override {
    return base()->RealPath(Map(p));
  }
  absl::StatusOr<std::string> ReadLink(const std::string& p) override {
    return base()->ReadLink(Map(p));
  }
  absl::Status CheckAccess(const std::string& p, int mode) override {
    return base()->CheckAccess(Map(p), mode);
  }
  absl::StatusOr<std::unique_ptr<WritableFile>> CreateNew(const std::string& p) override {
    return Wrote("CreateNew", p);
  }
  absl::StatusOr<std::unique_ptr<WritableFile>> CreateUnnamed(const std::string& p) override {
    return Wrote("CreateUnnamed", p);
  }
  absl::StatusOr<std::unique_ptr<WritableFile>> OpenForAppend(const std::string& p) override {
    return Wrote("OpenForAppend", p);
  }
  absl::Status Rename(const std::string& from, const std::string&) override {
    return Wrote("Rename", from);
  }
  absl::Status Link(const std::string& from, const std::string&) override {
    return Wrote("Link", from);
  }
  absl::Status Remove(const std::string& p) override { return Wrote("Remove", p); }
  absl::Status RemoveDir(const std::string& p) override { return Wrote("RemoveDir", p); }
  absl::Status MakeDir(const std::string& p) override { return Wrote("MakeDir", p); }
  absl::StatusOr<std::unique_ptr<FileLock>> TryLock(const std::string& p) override {
    return Wrote("TryLock", p);
  }

 private:
  static absl::Status Wrote(absl::string_view call, const std::string& path) {
    fuzz::CheckFailed(__FILE__, __LINE__, "ValidateOptions changes nothing",
                      absl::StrCat(call, " ", path));
  }
  const std::string root_;
};

SandboxFileSystem& Sandbox() {
  static SandboxFileSystem* const fs = [] {
    const std::string root = fuzz::ScratchDir() + "/sandbox";
    FileSystem& real = *DefaultFileSystem();
    for (const char* dir :
         {"", "/cassandra", "/cassandra/data", "/cassandra/data/ks1",
          "/cassandra/data/ks1/users-0123456789abcdef0123456789abcdef", "/moved", "/moved/ks2",
          "/moved/ks2/t-0123456789abcdef0123456789abcdef", "/home", "/home/data",
          "/home/data/data", "/home/data/data/ks1", "/dest", "/dest/.snaphaven",
          "/cassandra/data/lost+found", "/cassandra/commitlog"}) {
      FUZZ_CHECK(real.MakeDir(root + dir).ok(), dir);
    }
    FUZZ_CHECK(symlink("../../moved/ks2", (root + "/cassandra/data/ks2").c_str()) == 0, "symlink");
    fuzz::WriteFileOrDie(root + "/file", "not a directory");
    return new SandboxFileSystem(root);
  }();
  return *fs;
}

// Sets `name` in `raw` from its text as gflags would; false when gflags
// would refuse the value.
bool Set(const std::string& name, const std::string& value, RawOptions& raw) {
  const Field& field = Flags().at(name);
  if (auto* s = std::get_if<std::string RawOptions::*>(&field)) {
    raw.*(*s) = value;
    return true;
  }
  if (auto* b = std::get_if<bool RawOptions::*>(&field)) return absl::SimpleAtob(value, &(raw.*(*b)));
  if (auto* i = std::get_if<int RawOptions::*>(&field)) return absl::SimpleAtoi(value, &(raw.*(*i)));
  return absl::SimpleAtod(value, &(raw.*std::get<double RawOptions::*>(field)));
}

bool IsAbsolute(const std::string& path) { return !path.empty() && path[0] == '/'; }

}  // namespace
}  // namespace snaphaven

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace snaphaven;
  absl::string_view text = fuzz::AsText(data, size);
  if (absl::EndsWith(text, "\n")) text.remove_suffix(1);
  std::vector<std::string> args;
  if (!text.empty()) args = absl::StrSplit(text, '\n');
  absl::StatusOr<ParsedArgs> parsed = ParseArgs(args, Lookup);
  if (!parsed.ok()) {
    FUZZ_CHECK(parsed.status().code() == absl::StatusCode::kInvalidArgument,
               parsed.status().ToString());
    return 0;
  }
  FUZZ_CHECK(parsed->flags.size() + parsed->positional.size() <= args.size(),
             absl::StrJoin(args, " "));
  // Written back in one canonical form, the same flags and arguments.
  std::vector<std::string> canonical;
  for (const auto& [name, value] : parsed->flags) {
    FUZZ_CHECK(Lookup(name).has_value(), name);
    canonical.push_back(absl::StrCat("--", name, "=", value));
  }
  canonical.push_back("--");
  canonical.insert(canonical.end(), parsed->positional.begin(), parsed->positional.end());
  absl::StatusOr<ParsedArgs> again = ParseArgs(canonical, Lookup);
  FUZZ_CHECK(again.ok(), again.status().ToString());
  FUZZ_CHECK(again->flags == parsed->flags && again->positional == parsed->positional,
             absl::StrJoin(canonical, " "));

  RawOptions raw;
  raw.hostname = "cass-1";
  for (const auto& [name, value] : parsed->flags) {
    if (!Set(name, value, raw)) return 0;  // gflags refuses it: exit 2 in main
  }
  raw.keyspaces = parsed->positional;
  absl::StatusOr<Options> options = ValidateOptions(Sandbox(), raw);
  if (!options.ok()) {
    FUZZ_CHECK(options.status().code() == absl::StatusCode::kInvalidArgument,
               options.status().ToString());
    return 0;
  }
  FUZZ_CHECK(IsAbsolute(options->destination), options->destination);
  FUZZ_CHECK(!options->cluster || options->mode == RunMode::kList, "--cluster without --list");
  if (options->mode == RunMode::kSync || options->mode == RunMode::kVerify) {
    FUZZ_CHECK(!options->keyspaces.empty() && !options->data_roots.empty(), "no keyspace");
    // --all_keyspaces finds keyspaces only: never the sandbox's lost+found,
    // nor a home's commitlog/ or data/.
    for (const std::string& keyspace : options->keyspaces) {
      FUZZ_CHECK(!options->all_keyspaces ||
                     (keyspace != "lost+found" && keyspace != "commitlog" && keyspace != "data"),
                 keyspace);
    }
    for (const std::string& root : options->data_roots) {
      FUZZ_CHECK(IsAbsolute(root), root);
      // Never a destination inside a data root, nor one holding a data root.
      FUZZ_CHECK(!IsSameOrInside(options->destination, root) &&
                     !IsSameOrInside(root, options->destination),
                 absl::StrCat(options->destination, " and ", root));
    }
    for (absl::Duration d : {options->interval, options->settle_time, options->prune_after,
                             options->stuck_after, options->progress_interval, options->keep_for}) {
      FUZZ_CHECK(d >= absl::ZeroDuration() && d != absl::InfiniteDuration(), "duration");
    }
    FUZZ_CHECK(options->copy_threads >= 1 && options->copy_threads <= 64, "copy threads");
    FUZZ_CHECK(options->verify_sample >= 0 && options->verify_sample <= 100, "verify sample");
    FUZZ_CHECK(options->max_bandwidth >= 0, "bandwidth");
  }
  return 0;
}
