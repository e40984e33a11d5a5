// The destination's identity marker <dest>/.snaphaven/id ("snaphaven-
// destination 1", "id <hex>", "mtime_granularity_ns <n>"). It is read only
// inside a cycle (Syncer::CheckDestinationIdentity, cycle.cc: no parser of
// its own in destination.h), so each input is the marker of a real
// destination that two real cycles then run against: one snapshot of one
// sstable to copy, then nothing to copy, whatever granularity the marker
// claims.

#include <atomic>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <glog/logging.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "snaphaven/cycle/cycle.h"
#include "snaphaven/state/destination.h"
#include "snaphaven/storage/file_system.h"
#include "snaphaven/fuzz/fuzz_util.h"
#include "snaphaven/cli/options.h"
#include "tools/tree_generator.h"

namespace snaphaven {
namespace {

// What the marker says, read independently: the identity of the last "id"
// line, its second space-separated word ("" when none, or empty).
std::string ExpectedId(absl::string_view text) {
  std::string id;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    std::vector<absl::string_view> words = absl::StrSplit(line, ' ');
    if (words[0] == "id") id = words.size() > 1 ? std::string(words[1]) : "";
  }
  return id;
}

const std::string& DataRoot() {
  static const std::string* const root = [] {
    auto* path = new std::string(fuzz::ScratchDir() + "/data");
    tools::TreeSpec spec;
    spec.tables_per_keyspace = 1;
    spec.sstables_per_table = 1;
    spec.data_size = 100;
    spec.write_schema_cql = false;
    absl::Status made = tools::GenerateTree(*path, spec);
    FUZZ_CHECK(made.ok(), made.ToString());
    return path;
  }();
  return *root;
}

}  // namespace
}  // namespace snaphaven

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  FLAGS_minloglevel = 3;  // the cycles' own logging is not the point here
  FLAGS_logtostderr = true;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace snaphaven;
  const absl::string_view marker = fuzz::AsText(data, size);
  FileSystem& fs = *DefaultFileSystem();
  const std::string dest = fuzz::ScratchDir() + "/dest";
  fuzz::RemoveTree(dest);
  FUZZ_CHECK(fs.MakeDir(dest).ok(), dest);
  const StateDir state(dest);
  FUZZ_CHECK(fs.MakeDir(state.dir).ok(), state.dir);
  fuzz::WriteFileOrDie(state.marker, marker);

  Options options;
  options.data_roots = {DataRoot()};
  options.keyspaces = {"ks1"};
  options.destination = dest;
  options.settle_time = absl::ZeroDuration();
  options.copy_threads = 1;
  EngineSettings settings;
  settings.retry_backoff = absl::ZeroDuration();
  settings.whole_file_system_sync = EngineSettings::WholeFileSystemSync::kNever;
  settings.dirty_memory = []() -> absl::StatusOr<int64_t> { return 0; };
  Syncer syncer(fs, options, settings);
  FUZZ_CHECK(syncer.PrepareDestination().ok(), "PrepareDestination");
  const std::atomic<bool> stop{false};
  const std::string id = ExpectedId(marker);
  const CycleStats first = syncer.RunCycle(stop);
  if (id.empty()) {
    // Refused, and nothing copied.
    FUZZ_CHECK(first.fatal.has_value() &&
                   first.fatal->find("identity marker") != std::string::npos,
               first.fatal.value_or("no fatal error"));
    FUZZ_CHECK(first.copied == 0 && first.linked == 0, "copied past a corrupt marker");
    return 0;
  }
  FUZZ_CHECK(!first.fatal.has_value(), *first.fatal);
  FUZZ_CHECK(first.failed == 0 && first.copied > 0, SummaryLine(first));
  // The same destination, the same marker: nothing to copy again.
  const CycleStats second = syncer.RunCycle(stop);
  FUZZ_CHECK(!second.fatal.has_value(), *second.fatal);
  FUZZ_CHECK(second.failed == 0 && second.copied == 0 && second.linked == 0,
             absl::StrCat(SummaryLine(first), "\n", SummaryLine(second)));
  return 0;
}
