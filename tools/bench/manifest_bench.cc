// Goal 6 of the performance issue: a 1M-entry manifest loads and commits in
// under a second each. Builds a manifest of Cassandra-shaped paths, commits
// it (serialize, write, fsync, rename) and loads it back (read, parse,
// verify) a few times, both whole (everything parsed) and as a cycle does
// (lazily: every section checked, none parsed; then one entry changed and
// the manifest committed, copying the sections never parsed), and prints
// the medians and the resident memory.
//
//   bazel run -c opt //tools/bench:manifest_bench -- [entries] [dir]

#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "snaphaven/storage/file_system.h"
#include "snaphaven/state/manifest_store.h"

namespace {

long PeakRssKib() {
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  using snaphaven::StoredManifest;
  const int entries = argc > 1 ? std::atoi(argv[1]) : 1000000;
  const std::string dir = argc > 2 ? argv[2] : "/tmp";
  const std::string path = dir + "/manifest-bench";
  const char* components[] = {"Data.db",       "Index.db",   "Summary.db", "Filter.db",
                              "Statistics.db", "TOC.txt",    "CompressionInfo.db",
                              "Digest.crc32"};
  StoredManifest manifest;
  const long rss_before = PeakRssKib();
  for (int i = 0; i < entries; ++i) {
    int sstable = i / 8, table = sstable / 1000, snapshot = table % 8;
    std::string rel = absl::StrCat("ks", table % 4, "/table", table,
                                   "-0123456789abcdef0123456789abcdef/snapshots/daily-", snapshot,
                                   "/nb-", sstable, "-big-", components[i % 8]);
    manifest.Put(rel, {1000 + i, 1700000000000000000 + i, 0644, 2049, 1000000u + i, 0, true,
                       static_cast<uint32_t>(i)});
  }
  const long rss_built = PeakRssKib();
  snaphaven::FileSystem& fs = *snaphaven::DefaultFileSystem();
  std::vector<double> commits, loads, lazy_loads, lazy_commits;
  uint64_t log_bytes = 0;
  for (int run = 0; run < 3; ++run) {
    absl::Time t0 = absl::Now();
    if (!manifest.CommitWhole(fs, path).ok()) return 1;
    commits.push_back(absl::ToDoubleSeconds(absl::Now() - t0));
    t0 = absl::Now();
    absl::StatusOr<StoredManifest> loaded = StoredManifest::Load(fs, path);
    if (!loaded.ok() || loaded->size() != manifest.size()) return 1;
    loads.push_back(absl::ToDoubleSeconds(absl::Now() - t0));
    t0 = absl::Now();
    loaded = StoredManifest::Load(fs, path, StoredManifest::Loading::kLazy);
    if (!loaded.ok() || loaded->size() != manifest.size()) return 1;
    lazy_loads.push_back(absl::ToDoubleSeconds(absl::Now() - t0));
    // One new file in one snapshot directory, as a cycle would record it:
    // one record appended to the log.
    t0 = absl::Now();
    loaded->Put(absl::StrCat("ks0/table0-0123456789abcdef0123456789abcdef/snapshots/daily-0/",
                             "new-file"),
                {1, 2, 0644, 2049, 1});
    if (!loaded->Commit(fs, path).ok()) return 1;
    lazy_commits.push_back(absl::ToDoubleSeconds(absl::Now() - t0));
    log_bytes = loaded->log_bytes();
    (void)fs.Remove(StoredManifest::LogPath(path));
  }
  absl::StatusOr<snaphaven::FileStat> st = fs.Stat(path);
  (void)fs.Remove(path);
  std::printf(
      "manifest: %d entries, %.1f MiB on disk, %.0f bytes/entry in memory when whole\n"
      "  whole:  commit median %.3f s, load median %.3f s\n"
      "  lazily, as a cycle: load median %.3f s; one entry changed, commit median %.3f s "
      "(%llu bytes appended to the log)\n",
      entries, st.ok() ? st->size / 1048576.0 : 0.0,
      (rss_built - rss_before) * 1024.0 / entries, Median(commits), Median(loads),
      Median(lazy_loads), Median(lazy_commits), static_cast<unsigned long long>(log_bytes));
  return 0;
}
