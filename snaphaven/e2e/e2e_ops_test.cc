// Operations: --dry_run, progress, --metrics_file, --list, %h and the
// node a destination belongs to.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "re2/re2.h"
#include "snaphaven/testing/e2e_util.h"
#include "tools/tree_generator.h"

namespace snaphaven {
namespace {

using testing::DestinationFiles;
using testing::DiffTrees;
using testing::ReadTree;
using testing::RunResult;
using testing::RunSnaphaven;
using testing::SnapshotFiles;
using testing::SummaryCount;

class OpsTest : public testing::CassandraTreeTest {};

std::map<std::string, testing::FileRecord> Under(const std::map<std::string, testing::FileRecord>& files,
                                                 const std::string& infix) {
  std::map<std::string, testing::FileRecord> out;
  for (const auto& [path, record] : files) {
    if (absl::StrContains(path, infix)) out[path] = record;
  }
  return out;
}

TEST_F(OpsTest, DryRunChangesNothingAndPredictsTheRealRun) {
  tools::TreeSpec spec = Spec(2, 3, {"d1", "d2"});
  spec.index_dirs_per_table = 1;
  Generate(spec);
  const std::vector<std::string> flags = {"--sync-sstables", "--move-snapshots",
                                          "--settle_time=0s", "--prune_after=0s"};
  // A fresh destination: the dry run creates nothing at all.
  auto everything = [&] { return ReadTree(dir_); };
  auto before = everything();
  std::vector<std::string> dry = flags;
  dry.push_back("--dry_run");
  RunResult plan = Run(dry, {"ks1"});
  ASSERT_EQ(plan.exit_code, 0) << plan.err;
  EXPECT_EQ(DiffTrees(before, everything()), "") << "the dry run changed something";
  EXPECT_TRUE(absl::StrContains(plan.err, "plan: copy ks1/")) << plan.err;
  EXPECT_TRUE(absl::StrContains(plan.err, "plan: link ks1/")) << plan.err;
  EXPECT_TRUE(absl::StrContains(plan.err, "plan: move ks1/")) << plan.err;
  EXPECT_TRUE(absl::StrContains(plan.err, "plan: delete " + data_ + "/ks1/")) << plan.err;
  RunResult real = Run(flags, {"ks1"});
  ASSERT_EQ(real.exit_code, 0) << real.err;
  for (const char* what : {"copied", "linked", "moved", "pruned"}) {
    EXPECT_EQ(SummaryCount(plan.err, what), SummaryCount(real.err, what)) << what;
  }

  // An existing destination, a new snapshot and a compacted sstable.
  ASSERT_TRUE(tools::FlushNewSSTables(data_, {"ks1"}, 4000, 9).ok());
  ASSERT_TRUE(tools::TakeSnapshot(data_, {"ks1"}, "d3").ok());
  for (const auto& [path, record] : ReadTree(TableDir(0))) {
    if (absl::StartsWith(path, "nb-1-big-")) {
      ASSERT_EQ(unlink((TableDir(0) + "/" + path).c_str()), 0);
    }
  }
  before = everything();
  plan = Run(dry, {"ks1"});
  ASSERT_EQ(plan.exit_code, 0) << plan.err;
  EXPECT_EQ(DiffTrees(before, everything()), "") << "manifest, destination or source changed";
  EXPECT_TRUE(absl::StrContains(plan.err, "plan: prune ks1/")) << plan.err;
  real = Run(flags, {"ks1"});
  ASSERT_EQ(real.exit_code, 0) << real.err;
  for (const char* what : {"copied", "linked", "moved", "pruned"}) {
    EXPECT_EQ(SummaryCount(plan.err, what), SummaryCount(real.err, what)) << what << "\n"
                                                                          << plan.err;
  }
}

TEST_F(OpsTest, ProgressLinesGiveDoneTotalRateAndEta) {
  Generate(Spec(1, 3, {"s1"}, 1 << 20));
  RunResult r = Run({"--progress_interval=0s"}, {"ks1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // The total is the tables (listed before the first is scanned); the ETA
  // comes from the share of them done.
  EXPECT_TRUE(RE2::PartialMatch(
      r.err, R"(progress: \d+/\d+ tables \(\d+%\), \d+ files, \S+ \S+ copied, \S+ \S+/s, ETA \S+)"))
      << r.err;
}

// A strict reader of the Prometheus text exposition format (0.0.4): every
// sample belongs to a family announced by HELP and TYPE lines, names are
// valid, counters end in _total, values are numbers.
std::map<std::string, double> ParsePrometheus(const std::string& text, std::string* error) {
  std::map<std::string, double> samples;
  std::map<std::string, std::string> types;
  std::set<std::string> helped;
  const RE2 name_re("[a-zA-Z_:][a-zA-Z0-9_:]*");
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::vector<std::string> f = absl::StrSplit(line, absl::MaxSplits(' ', 3));
    if (line[0] == '#') {
      if (f.size() < 4 || (f[1] != "HELP" && f[1] != "TYPE") || !RE2::FullMatch(f[2], name_re)) {
        *error = absl::StrCat("bad comment line: ", line);
        return {};
      }
      if (f[1] == "HELP") helped.insert(f[2]);
      if (f[1] == "TYPE") {
        if (f[3] != "counter" && f[3] != "gauge") *error = absl::StrCat("bad type: ", line);
        if (!helped.count(f[2])) *error = absl::StrCat("TYPE before HELP: ", line);
        if (types.count(f[2])) *error = absl::StrCat("family twice: ", line);
        types[f[2]] = f[3];
      }
      continue;
    }
    double value;
    if (f.size() != 2 || !RE2::FullMatch(f[0], name_re) || !absl::SimpleAtod(f[1], &value)) {
      *error = absl::StrCat("bad sample: ", line);
      return {};
    }
    if (!types.count(f[0])) *error = absl::StrCat("sample without TYPE: ", line);
    if (types[f[0]] == "counter" && !absl::EndsWith(f[0], "_total")) {
      *error = absl::StrCat("counter not named _total: ", f[0]);
    }
    if (!absl::StartsWith(f[0], "snaphaven_")) *error = absl::StrCat("no prefix: ", f[0]);
    samples[f[0]] = value;
  }
  return samples;
}

TEST_F(OpsTest, MetricsFileParsesAndMatchesTheSummary) {
  Generate(Spec(2, 2, {"s1", "s2"}));
  const std::string metrics = dir_ + "/snaphaven.prom";
  RunResult r = Run({"--metrics_file", metrics}, {"ks1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string error;
  auto m = ParsePrometheus(testing::ReadFileOrDie(metrics), &error);
  ASSERT_EQ(error, "");
  EXPECT_EQ(m["snaphaven_files_copied_total"], SummaryCount(r.err, "copied"));
  EXPECT_EQ(m["snaphaven_files_linked_total"], SummaryCount(r.err, "linked"));
  EXPECT_EQ(m["snaphaven_files_failed_total"], 0);
  EXPECT_EQ(m["snaphaven_last_cycle_exit_code"], 0);
  EXPECT_EQ(m["snaphaven_destination_files"], SnapshotFiles(data_).size());
  EXPECT_EQ(m["snaphaven_pending_files"], 0);
  EXPECT_GT(m["snaphaven_last_success_timestamp_seconds"], 1.7e9);
  EXPECT_GE(m["snaphaven_last_cycle_end_timestamp_seconds"],
            m["snaphaven_last_cycle_start_timestamp_seconds"]);
  int64_t bytes = 0;
  for (const auto& [path, record] : SnapshotFiles(data_)) bytes += record.size;
  EXPECT_LT(m["snaphaven_destination_bytes"], bytes) << "hard links count once";
  const double copied = m["snaphaven_files_copied_total"];

  // Counters carry on across runs; a failure shows in the exit code gauge
  // and leaves the last success time alone.
  ASSERT_TRUE(tools::TakeSnapshot(data_, {"ks1"}, "s3").ok());
  r = Run({"--metrics_file", metrics}, {"ks1"});
  auto m2 = ParsePrometheus(testing::ReadFileOrDie(metrics), &error);
  ASSERT_EQ(error, "");
  EXPECT_EQ(m2["snaphaven_files_copied_total"], copied + SummaryCount(r.err, "copied"));
  EXPECT_EQ(m2["snaphaven_cycles_total"], 2);
  ASSERT_EQ(chmod((TableDir(0) + "/snapshots/s3/schema.cql").c_str(), 0), 0);
  ASSERT_TRUE(tools::TakeSnapshot(data_, {"ks1"}, "s4").ok());
  ASSERT_EQ(chmod((TableDir(0) + "/snapshots/s4/schema.cql").c_str(), 0), 0);
  if (geteuid() != 0) {  // root reads anything
    r = Run({"--metrics_file", metrics}, {"ks1"});
    auto m3 = ParsePrometheus(testing::ReadFileOrDie(metrics), &error);
    EXPECT_EQ(m3["snaphaven_last_cycle_exit_code"], 1);
    EXPECT_EQ(m3["snaphaven_last_success_timestamp_seconds"],
              m2["snaphaven_last_success_timestamp_seconds"]);
  }
}

// Nothing held back in silence: an sstable not mirrored and a snapshot move
// mode keeps are counted in the summary and the metrics every cycle, and
// named with their reason at -v 0 once older than --stuck_after.
TEST_F(OpsTest, HeldBackIsCountedAndNamedOnceStuck) {
  Generate(Spec(1, 2, {"s1", "unfinished"}));
  const std::string table = TableDir(0);
  auto set_age = [](const std::string& path, absl::Duration age) {
    const int64_t when = absl::ToUnixSeconds(absl::Now() - age);
    struct timespec times[2] = {{when, 0}, {when, 0}};
    ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW), 0) << path;
  };
  // A live sstable whose primary index never came (stuck for 3 hours) and
  // one being written now (not stuck yet).
  for (const char* gen : {"77", "78"}) {
    for (const char* component : {"Data.db", "Statistics.db", "TOC.txt"}) {
      const std::string path = absl::StrCat(table, "/nb-", gen, "-big-", component);
      testing::WriteFileOrDie(path, component);
      set_age(path, std::string(gen) == "77" ? absl::Hours(3) : absl::ZeroDuration());
    }
  }
  // A snapshot whose manifest.json never came, its directory old too.
  ASSERT_EQ(unlink((table + "/snapshots/unfinished/manifest.json").c_str()), 0);
  for (const auto& [path, record] : ReadTree(table + "/snapshots/unfinished")) {
    set_age(table + "/snapshots/unfinished/" + path, absl::Hours(3));
  }
  set_age(table + "/snapshots/unfinished", absl::Hours(3));

  const std::string metrics = dir_ + "/snaphaven.prom";
  RunResult r = Run({"--sync-sstables", "--move-snapshots", "--settle_time=0s", "--metrics_file",
                     metrics},
                    {"ks1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, ", 7 held back, ")) << r.err;  // 3 + 3 files, 1 snapshot
  std::string error;
  auto m = ParsePrometheus(testing::ReadFileOrDie(metrics), &error);
  ASSERT_EQ(error, "");
  EXPECT_EQ(m["snaphaven_held_back_files"], 6);
  EXPECT_EQ(m["snaphaven_held_back_snapshots"], 1);
  // Named at the default verbosity, with the reason: only the stuck ones.
  EXPECT_TRUE(RE2::PartialMatch(r.err, R"(W held back, unchanged for 3h\S*: live sstable not )"
                                       R"(mirrored ks1/\S+/nb-77-big: nb-77-big-Index.db is missing)"))
      << r.err;
  EXPECT_TRUE(RE2::PartialMatch(r.err, R"(W held back, unchanged for 3h\S*: snapshot kept at )"
                                       R"(the source ks1/\S+/snapshots/unfinished: no manifest.json)"))
      << r.err;
  EXPECT_FALSE(absl::StrContains(r.err, "nb-78-big: ")) << "not stuck yet: -v 2 only\n" << r.err;
  // A shorter --stuck_after names the young one too.
  r = Run({"--sync-sstables", "--move-snapshots", "--settle_time=0s", "--stuck_after=0s"},
          {"ks1"});
  EXPECT_TRUE(absl::StrContains(r.err, "nb-78-big: nb-78-big-Index.db is missing")) << r.err;
}

TEST_F(OpsTest, ListShowsCompleteAndIncompleteCopies) {
  Generate(Spec(1, 2, {"whole", "no_manifest", "missing_data"}));
  std::string table = TableDir(0);
  ASSERT_EQ(unlink((table + "/snapshots/no_manifest/manifest.json").c_str()), 0);
  ASSERT_EQ(unlink((table + "/snapshots/missing_data/nb-2-big-Data.db").c_str()), 0);
  ASSERT_EQ(Run({}, {"ks1"}).exit_code, 0);
  auto before = ReadTree(dest_);
  RunResult r = RunSnaphaven({"-s", dest_, "--list"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StartsWith(r.out, "KEYSPACE")) << r.out;
  EXPECT_TRUE(RE2::PartialMatch(r.out, R"(whole\s+\d+\s+\d+\s+yes)")) << r.out;
  EXPECT_TRUE(RE2::PartialMatch(r.out, R"(no_manifest\s+\d+\s+\d+\s+no)")) << r.out;
  EXPECT_TRUE(RE2::PartialMatch(r.out, R"(missing_data\s+\d+\s+\d+\s+no)")) << r.out;

  r = RunSnaphaven({"-s", dest_, "--list", "--json", "ks1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json json = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(json.is_array()) << r.out;
  ASSERT_EQ(json.size(), 3u);
  std::map<std::string, bool> complete;
  for (const auto& copy : json) complete[copy["tag"]] = copy["complete"];
  EXPECT_TRUE(complete["whole"]);
  EXPECT_FALSE(complete["no_manifest"]);
  EXPECT_FALSE(complete["missing_data"]);
  // Unique bytes: the two complete snapshots' shared inodes count once each.
  int64_t whole_bytes = 0;
  for (const auto& [path, record] : SnapshotFiles(data_)) {
    if (absl::StrContains(path, "/whole/")) whole_bytes += record.size;
  }
  for (const auto& copy : json) {
    if (copy["tag"] == "whole") {
      EXPECT_EQ(copy["bytes"].get<int64_t>(), whole_bytes);
    }
  }
  EXPECT_EQ(DiffTrees(before, ReadTree(dest_)), "") << "--list reads only";
  EXPECT_EQ(RunSnaphaven({"-s", dest_, "--list", "other_ks"}).out.find("ks1"), std::string::npos);
}

TEST_F(OpsTest, EachNodeWritesItsOwnDestination) {
  Generate(Spec(1, 1, {"s1"}));
  char host[256] = {0};
  ASSERT_EQ(gethostname(host, sizeof(host) - 1), 0);
  const std::string nas = dir_ + "/nas";
  RunResult r = RunSnaphaven({"-d", home_, "-s", nas + "/%h", "ks1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  dest_ = nas + "/" + host;
  EXPECT_EQ(DiffTrees(SnapshotFiles(data_), DestinationFiles(dest_)), "");
  std::string node = testing::ReadFileOrDie(dest_ + "/.snaphaven/node");
  EXPECT_TRUE(absl::StrContains(node, absl::StrCat("host ", host))) << node;
  EXPECT_TRUE(absl::StrContains(node, data_)) << node;

  // Another node's destination: refused, naming both, nothing touched.
  testing::WriteFileOrDie(dest_ + "/.snaphaven/node", "host other-node\nroots /x/data\n");
  auto before = ReadTree(dest_);
  r = RunSnaphaven({"-d", home_, "-s", dest_, "ks1"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(absl::StrContains(
      r.err, "belongs to another Cassandra instance (host other-node, data roots /x/data)"))
      << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, absl::StrCat("this run is host ", host, " with data roots ",
                                                    data_)))
      << r.err;
  EXPECT_EQ(DiffTrees(before, ReadTree(dest_)), "");
  r = RunSnaphaven({"-d", home_, "-s", dest_, "--adopt_destination", "ks1"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(testing::ReadFileOrDie(dest_ + "/.snaphaven/node"), host));
}

// Lines the binary logged at WARNING that contain `text`.
int Warnings(const std::string& err, const std::string& text) {
  int n = 0;
  for (const std::string& line : std::vector<std::string>(absl::StrSplit(err, '\n'))) {
    if (RE2::PartialMatch(line, R"(^\S+ \S+ W )") && absl::StrContains(line, text)) ++n;
  }
  return n;
}

std::string HostName() {
  char host[256] = {0};
  EXPECT_EQ(gethostname(host, sizeof(host) - 1), 0);
  return host;
}

// Two Cassandra instances on one host (their own data roots) pointed at one
// destination: the second is refused before it changes anything there.
TEST_F(OpsTest, AnotherInstanceOnTheSameHostIsRefusedAndChangesNothing) {
  Generate(Spec(1, 1, {"s1"}));
  const std::string host = HostName();
  const std::string node_path = dest_ + "/.snaphaven/node";
  RunResult r = Run({}, {"ks1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(testing::ReadFileOrDie(node_path), "host " + host + "\nroots " + data_ + "\n");

  // The same instance again: the record stays as it is (no write per cycle).
  auto before = ReadTree(dest_);
  r = Run({}, {"ks1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto after = ReadTree(dest_);
  EXPECT_EQ(after[".snaphaven/node"].ino, before[".snaphaven/node"].ino) << "record rewritten";
  EXPECT_EQ(after[".snaphaven/node"].mtime_ns, before[".snaphaven/node"].mtime_ns);

  // A second instance: its own generated tree, another data root.
  const std::string home2 = dir_ + "/cassandra2", data2 = home2 + "/data";
  tools::TreeSpec spec2 = Spec(1, 1, {"t1"});
  spec2.keyspaces = {"ks2"};
  ASSERT_TRUE(tools::GenerateTree(data2, spec2).ok());
  before = ReadTree(dest_);
  for (bool dry_run : {false, true}) {
    std::vector<std::string> args = {"-d", home2, "-s", dest_, "ks2"};
    if (dry_run) args.push_back("--dry_run");
    r = RunSnaphaven(args);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_TRUE(absl::StrContains(
        r.err, absl::StrCat("snaphaven: destination ", dest_,
                            " belongs to another Cassandra instance (host ", host,
                            ", data roots ", data_, "); this run is host ", host,
                            " with data roots ", data2, ":")))
        << r.err;
    EXPECT_TRUE(absl::StrContains(r.err, "--adopt_destination")) << r.err;
    EXPECT_EQ(DiffTrees(before, ReadTree(dest_)), "") << "the refused run changed the destination";
  }

  // --adopt_destination takes it over, saying so; then the first instance is
  // the other one.
  r = RunSnaphaven({"-d", home2, "-s", dest_, "--adopt_destination", "ks2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Warnings(r.err, "--adopt_destination: destination " + dest_), 1) << r.err;
  EXPECT_EQ(testing::ReadFileOrDie(node_path), "host " + host + "\nroots " + data2 + "\n");
  EXPECT_EQ(DiffTrees(SnapshotFiles(data2), Under(DestinationFiles(dest_), "ks2/")), "");
  r = Run({}, {"ks1"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
}

// A disk added to (or removed from) the instance: its roots still overlap
// the recorded ones, so the record follows, with a warning.
TEST_F(OpsTest, ADataRootAddedOrRemovedUpdatesTheRecordWithAWarning) {
  Generate(Spec(1, 1, {"s1"}));
  const std::string host = HostName();
  const std::string node_path = dest_ + "/.snaphaven/node";
  ASSERT_EQ(Run({}, {"ks1"}).exit_code, 0);
  const std::string disk2 = dir_ + "/disk2/data";
  ASSERT_EQ(system(("mkdir -p " + disk2).c_str()), 0);
  const std::string both = data_ + "," + disk2;

  // A dry run warns and writes nothing.
  RunResult r = RunSnaphaven({"-d", both, "-s", dest_, "--dry_run", "ks1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Warnings(r.err, "data roots"), 1) << r.err;
  EXPECT_EQ(testing::ReadFileOrDie(node_path), "host " + host + "\nroots " + data_ + "\n");

  r = RunSnaphaven({"-d", both, "-s", dest_, "ks1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Warnings(r.err, "data roots"), 1) << r.err;
  EXPECT_EQ(Warnings(r.err, "recorded with data roots " + data_ + "; recording " + both), 1) << r.err;
  EXPECT_EQ(testing::ReadFileOrDie(node_path), "host " + host + "\nroots " + both + "\n");
  // Once recorded, no more warnings.
  r = RunSnaphaven({"-d", both, "-s", dest_, "ks1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Warnings(r.err, "data roots"), 0) << r.err;

  // The disk removed again.
  r = Run({}, {"ks1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Warnings(r.err, "removed " + disk2), 1) << r.err;
  EXPECT_EQ(testing::ReadFileOrDie(node_path), "host " + host + "\nroots " + data_ + "\n");
  EXPECT_TRUE(testing::ReadFileIfExists(node_path + ".tmp").empty());
}

// A record from before data roots were recorded: the host decides, then the
// roots are added.
TEST_F(OpsTest, AnOldRecordWithoutRootsGetsThem) {
  Generate(Spec(1, 1, {"s1"}));
  const std::string host = HostName();
  const std::string node_path = dest_ + "/.snaphaven/node";
  ASSERT_EQ(Run({}, {"ks1"}).exit_code, 0);
  testing::WriteFileOrDie(node_path, "host " + host + "\n");
  RunResult r = Run({}, {"ks1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(testing::ReadFileOrDie(node_path), "host " + host + "\nroots " + data_ + "\n");
}

TEST_F(OpsTest, RestoreRoundTripsATreeAndPrintsTheCommands) {
  tools::TreeSpec spec = Spec(2, 2, {"s1"});
  spec.index_dirs_per_table = 1;
  Generate(spec);
  auto original = SnapshotFiles(data_);
  ASSERT_EQ(Run({}, {"ks1"}).exit_code, 0);
  // The node loses its snapshots.
  for (int t = 0; t < 2; ++t) {
    ASSERT_EQ(system(("rm -rf '" + TableDir(t) + "/snapshots'").c_str()), 0);
  }
  const std::string target = dir_ + "/restore";
  RunResult r = RunSnaphaven({"-d", home_, "-s", dest_, "--restore", "s1", "--restore_to", target});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.out, "nodetool import ks1 users " + target + "/ks1/")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "sstableloader -d")) << r.out;
  // Byte for byte, each file where nodetool import wants it.
  std::map<std::string, testing::FileRecord> want;
  for (const auto& [path, record] : original) {
    std::string flat = path;
    flat.erase(flat.find("/snapshots/s1"), strlen("/snapshots/s1"));
    want[flat] = record;
  }
  auto restored = ReadTree(target);
  std::map<std::string, testing::FileRecord> got;
  for (const auto& [path, record] : restored) {
    if (record.type == 'f') got[path] = record;
  }
  EXPECT_EQ(DiffTrees(want, got), "");
  // Never into a live data root.
  r = RunSnaphaven({"-d", home_, "-s", dest_, "--restore", "s1", "--restore_to", data_ + "/ks1"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  r = RunSnaphaven({"-d", home_, "-s", dest_, "--restore", "nope", "--restore_to", dir_ + "/r2"});
  EXPECT_NE(r.exit_code, 0);
}

TEST_F(OpsTest, RetentionRemovesOnlyCompleteCopiesGoneFromTheSource) {
  Generate(Spec(1, 2, {}));
  // Taken in turn: created_at (milliseconds) orders them.
  for (const char* tag : {"old1", "old2", "current"}) {
    ASSERT_TRUE(tools::TakeSnapshot(data_, {"ks1"}, tag).ok());
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_EQ(Run({}, {"ks1"}).exit_code, 0);
  // Cassandra cleared two snapshots; their copies remain at the destination.
  ASSERT_EQ(system(("rm -rf '" + TableDir(0) + "/snapshots/old1' '" + TableDir(0) +
                    "/snapshots/old2'").c_str()),
            0);
  auto kept_before = DestinationFiles(dest_);
  // A dry run says what it would retire and changes nothing.
  auto before = ReadTree(dest_);
  RunResult r = Run({"--keep_for", "1ms", "--dry_run"}, {"ks1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "plan: retire ks1/")) << r.err;
  EXPECT_EQ(DiffTrees(before, ReadTree(dest_)), "");

  // The newest two copies per table are "current" (still at the source)
  // and old2: old1 goes.
  r = Run({"--keep_snapshots", "2"}, {"ks1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto after = DestinationFiles(dest_);
  EXPECT_TRUE(Under(after, "/old1/").empty()) << r.err;
  EXPECT_FALSE(Under(after, "/old2/").empty()) << r.err;
  r = Run({"--keep_for", "1ms"}, {"ks1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  after = DestinationFiles(dest_);
  EXPECT_TRUE(Under(after, "/old1/").empty());
  EXPECT_TRUE(Under(after, "/old2/").empty());
  // The snapshot still at the source stays whole, hard-linked files and all.
  EXPECT_EQ(DiffTrees(Under(kept_before, "/current/"), Under(after, "/current/")), "");
  EXPECT_EQ(DiffTrees(SnapshotFiles(data_), after), "");
}

TEST_F(OpsTest, ListTellsAPartialCopyWhoseSnapshotIsGoneAndRetentionRemovesIt) {
  Generate(Spec(1, 2, {"s1", "s2"}));
  ASSERT_EQ(Run({}, {"ks1"}).exit_code, 0);
  // s1's copy cut short: one Data.db neither at the destination nor recorded.
  StoredManifest manifest = testing::DestinationManifest(dest_);
  std::string lost;
  for (const auto& [path, entry] : manifest.entries()) {
    if (absl::StrContains(path, "/snapshots/s1/") && absl::EndsWith(path, "-Data.db")) {
      lost = path;
      break;
    }
  }
  ASSERT_FALSE(lost.empty());
  ASSERT_EQ(unlink((dest_ + "/" + lost).c_str()), 0);
  manifest.Erase(lost);
  testing::WriteFileOrDie(dest_ + "/.snaphaven/manifest", manifest.Serialize());

  // Without -d: the data roots come from the destination's node record.
  RunResult r = RunSnaphaven({"-s", dest_, "--list"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(RE2::PartialMatch(r.out, R"((?m)^ks1\s+\S+\s+s1\s+\d+\s+\d+\s+no$)")) << r.out;
  EXPECT_TRUE(RE2::PartialMatch(r.out, R"((?m)^ks1\s+\S+\s+s2\s+\d+\s+\d+\s+yes$)")) << r.out;

  // Cassandra cleared s1: its copy will never be completed.
  ASSERT_EQ(system(("rm -rf '" + TableDir(0) + "/snapshots/s1'").c_str()), 0);
  r = RunSnaphaven({"-s", dest_, "--list"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(RE2::PartialMatch(r.out, R"((?m)^ks1\s+\S+\s+s1\s+\d+\s+\d+\s+no \(source gone\)$)"))
      << r.out;
  EXPECT_TRUE(RE2::PartialMatch(r.out, R"((?m)^ks1\s+\S+\s+s2\s+\d+\s+\d+\s+yes$)")) << r.out;
  r = RunSnaphaven({"-s", dest_, "--list", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json json = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(json.is_array()) << r.out;
  ASSERT_EQ(json.size(), 2u) << r.out;
  for (const auto& copy : json) {
    EXPECT_EQ(copy["complete"], copy["tag"] == "s2") << copy;
    EXPECT_EQ(copy["source_gone"], copy["tag"] == "s1") << copy;
  }

  // Retention removes the partial copy and names it; s2, at the source, stays.
  r = Run({"--keep_for", "1ms"}, {"ks1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "partial copy")) << r.err;
  auto after = DestinationFiles(dest_);
  EXPECT_TRUE(Under(after, "/s1/").empty()) << r.err;
  EXPECT_EQ(DiffTrees(SnapshotFiles(data_), after), "");
}

}  // namespace
}  // namespace snaphaven
