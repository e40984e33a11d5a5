#include "snaphaven/cli/options.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace snaphaven {
namespace {

TEST(ParseDurationFlag, AbseilSyntax) {
  EXPECT_EQ(*ParseDurationFlag("interval", "0"), absl::ZeroDuration());
  EXPECT_EQ(*ParseDurationFlag("interval", "90s"), absl::Seconds(90));
  EXPECT_EQ(*ParseDurationFlag("interval", "5m"), absl::Minutes(5));
  EXPECT_EQ(*ParseDurationFlag("interval", "1h30m"), absl::Minutes(90));
  for (const char* bad : {"", "5", "abc", "-5s", "5 minutes", "inf"}) {
    SCOPED_TRACE(bad);
    absl::StatusOr<absl::Duration> d = ParseDurationFlag("interval", bad);
    ASSERT_FALSE(d.ok());
    EXPECT_NE(d.status().message().find("--interval"), std::string::npos);
  }
}

class ValidateOptionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/snaphaven_options_XXXXXX";
    const char* base = std::getenv("TEST_TMPDIR");
    std::string templ = base ? absl::StrCat(base, "/options_XXXXXX") : pattern;
    ASSERT_NE(mkdtemp(templ.data()), nullptr);
    dir_ = templ;
    home_ = dir_ + "/cassandra";
    ASSERT_EQ(system(("mkdir -p " + home_ + "/data/ks1 " + home_ + "/data/ks2").c_str()), 0);
  }
  RawOptions Raw() {
    RawOptions raw;
    raw.snapshot_dir = dir_ + "/dest";
    raw.cassandra_dir = home_;
    raw.keyspaces = {"ks1"};
    return raw;
  }
  std::string Error(const RawOptions& raw) {
    absl::StatusOr<Options> o = ValidateOptions(*DefaultFileSystem(), raw);
    EXPECT_FALSE(o.ok());
    if (o.ok()) return "";
    EXPECT_EQ(o.status().code(), absl::StatusCode::kInvalidArgument);
    return std::string(o.status().message());
  }
  std::string dir_, home_;
};

// One mode per run, decided once: --list before --restore before --verify.
TEST_F(ValidateOptionsTest, TheRunModeComesFromTheFlagsOnce) {
  ASSERT_EQ(system(("mkdir -p " + dir_ + "/dest").c_str()), 0);
  auto mode = [&](RawOptions raw) {
    absl::StatusOr<Options> o = ValidateOptions(*DefaultFileSystem(), raw);
    EXPECT_TRUE(o.ok()) << o.status();
    return o.ok() ? o->mode : RunMode::kSync;
  };
  RawOptions raw = Raw();
  EXPECT_EQ(mode(raw), RunMode::kSync);
  raw.verify = true;
  raw.metrics_file = "/tmp/m.prom";
  raw.checksum = false;
  EXPECT_EQ(mode(raw), RunMode::kVerify);
  absl::StatusOr<Options> o = ValidateOptions(*DefaultFileSystem(), raw);
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->metrics_file, "/tmp/m.prom");
  EXPECT_FALSE(o->checksum);
  raw.restore_tag = "t";
  raw.restore_to = dir_ + "/restore";
  EXPECT_EQ(mode(raw), RunMode::kRestore);
  raw.list_only = true;
  EXPECT_EQ(mode(raw), RunMode::kList);
}

// The Syncer takes its verbosity from Options alone (no second copy that
// main adjusts): with -q it is 0, whatever -v says.
TEST_F(ValidateOptionsTest, QuietWinsOverVerbosity) {
  RawOptions raw = Raw();
  raw.verbosity = 2;
  absl::StatusOr<Options> o = ValidateOptions(*DefaultFileSystem(), raw);
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->verbosity, 2);
  raw.quiet = true;
  o = ValidateOptions(*DefaultFileSystem(), raw);
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_TRUE(o->quiet);
  EXPECT_EQ(o->verbosity, 0);
}

// --list and --restore are quiet with -q too (they returned early, before
// -q was read: a restore with -q still logged its INFO lines).
TEST_F(ValidateOptionsTest, QuietHoldsInEveryMode) {
  ASSERT_EQ(system(("mkdir -p " + dir_ + "/dest").c_str()), 0);
  RawOptions restore = Raw();
  restore.restore_tag = "t";
  restore.restore_to = dir_ + "/restore";
  RawOptions list = Raw();
  list.list_only = true;
  for (RawOptions raw : {restore, list}) {
    raw.verbosity = 2;
    raw.quiet = true;
    absl::StatusOr<Options> o = ValidateOptions(*DefaultFileSystem(), raw);
    ASSERT_TRUE(o.ok()) << o.status();
    EXPECT_TRUE(o->quiet);
    EXPECT_EQ(o->verbosity, 0);
  }
}

TEST_F(ValidateOptionsTest, AcceptsHomeOrDataRootAndResolvesSymlinks) {
  absl::StatusOr<Options> o = ValidateOptions(*DefaultFileSystem(), Raw());
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->data_roots, std::vector<std::string>{home_ + "/data"});
  EXPECT_EQ(o->destination, dir_ + "/dest");

  RawOptions raw = Raw();
  raw.cassandra_dir = home_ + "/data";
  EXPECT_EQ(ValidateOptions(*DefaultFileSystem(), raw)->data_roots,
            std::vector<std::string>{home_ + "/data"});

  ASSERT_EQ(symlink(home_.c_str(), (dir_ + "/link").c_str()), 0);
  raw.cassandra_dir = dir_ + "/link";
  EXPECT_EQ(ValidateOptions(*DefaultFileSystem(), raw)->data_roots,
            std::vector<std::string>{home_ + "/data"});
}

TEST_F(ValidateOptionsTest, BadInputNamesTheCulprit) {
  RawOptions raw = Raw();
  raw.snapshot_dir = "";
  EXPECT_NE(Error(raw).find("--snapshot_dir"), std::string::npos);

  raw = Raw();
  raw.keyspaces = {};
  EXPECT_NE(Error(raw).find("no keyspace"), std::string::npos);

  raw = Raw();
  raw.keyspaces = {"nope"};
  EXPECT_NE(Error(raw).find("'nope' not found"), std::string::npos);

  raw = Raw();
  raw.keyspaces = {"../ks1"};
  EXPECT_NE(Error(raw).find("../ks1"), std::string::npos);

  raw = Raw();
  raw.cassandra_dir = dir_ + "/missing";
  EXPECT_NE(Error(raw).find("missing does not exist"), std::string::npos);

  raw = Raw();
  raw.snapshot_regex = "(unclosed";
  EXPECT_NE(Error(raw).find("missing )"), std::string::npos);

  raw = Raw();
  raw.interval = "soon";
  EXPECT_NE(Error(raw).find("soon"), std::string::npos);

  raw = Raw();
  raw.settle_time = "-1s";
  EXPECT_NE(Error(raw).find("--settle_time"), std::string::npos);

  raw = Raw();
  raw.prune_after = "forever";
  EXPECT_NE(Error(raw).find("--prune_after"), std::string::npos);

  raw = Raw();
  raw.verify_sample = 101;
  EXPECT_NE(Error(raw).find("--verify_sample 101"), std::string::npos);

  raw = Raw();
  raw.max_bandwidth = "fast";
  EXPECT_NE(Error(raw).find("--max_bandwidth 'fast'"), std::string::npos);

  raw = Raw();
  raw.scan_threads = 0;
  EXPECT_NE(Error(raw).find("--scan_threads 0"), std::string::npos);

  raw = Raw();
  raw.copy_threads = 65;
  EXPECT_NE(Error(raw).find("--copy_threads 65"), std::string::npos);

  raw = Raw();
  raw.io_priority = "low";
  EXPECT_NE(Error(raw).find("--io_priority 'low'"), std::string::npos);

  raw = Raw();
  raw.verbosity = 3;
  EXPECT_NE(Error(raw).find("-v 3"), std::string::npos);

  raw = Raw();
  raw.snapshot_dir = home_ + "/data/ks1/backup";
  EXPECT_NE(Error(raw).find("inside the data root"), std::string::npos);

  raw = Raw();
  raw.snapshot_dir = home_ + "/data";
  EXPECT_NE(Error(raw).find("inside the data root"), std::string::npos);

  raw = Raw();
  raw.snapshot_dir = dir_;
  EXPECT_NE(Error(raw).find("contains the data root"), std::string::npos);

  ASSERT_EQ(symlink((home_ + "/data/ks2").c_str(), (dir_ + "/sneaky").c_str()), 0);
  raw = Raw();
  raw.snapshot_dir = dir_ + "/sneaky/dest";
  EXPECT_NE(Error(raw).find("inside the data root"), std::string::npos);

  std::ofstream(dir_ + "/file") << "x";
  raw = Raw();
  raw.snapshot_dir = dir_ + "/file";
  EXPECT_NE(Error(raw).find("is not a directory"), std::string::npos);
  raw.snapshot_dir = dir_ + "/file/sub";
  EXPECT_NE(Error(raw).find("cannot be created"), std::string::npos);
}

TEST_F(ValidateOptionsTest, FollowsASymlinkedKeyspace) {
  // ks1 moved to another disk, a symlink left in its place.
  ASSERT_EQ(system(("mkdir -p " + dir_ + "/other-disk && mv " + home_ + "/data/ks1 " + dir_ +
                    "/other-disk/ks1").c_str()),
            0);
  ASSERT_EQ(symlink((dir_ + "/other-disk/ks1").c_str(), (home_ + "/data/ks1").c_str()), 0);
  RawOptions raw = Raw();
  for (const std::string& given : {home_, home_ + "/data"}) {
    SCOPED_TRACE(given);
    raw.cassandra_dir = given;
    absl::StatusOr<Options> o = ValidateOptions(*DefaultFileSystem(), raw);
    ASSERT_TRUE(o.ok()) << o.status();
    EXPECT_EQ(o->data_roots, std::vector<std::string>{home_ + "/data"});
    EXPECT_EQ(o->keyspaces, std::vector<std::string>{"ks1"});
  }
  raw.keyspaces = {"ks1", "ks2"};
  EXPECT_TRUE(ValidateOptions(*DefaultFileSystem(), raw).ok());
}

TEST_F(ValidateOptionsTest, RefusesKeyspaceLinksThatLoopDangleOrOverlap) {
  const std::string data = home_ + "/data";
  auto link = [&](const std::string& target, const std::string& keyspace) {
    ASSERT_EQ(symlink(target.c_str(), (data + "/" + keyspace).c_str()), 0);
  };
  auto error_for = [&](const std::string& keyspace) {
    RawOptions raw = Raw();
    raw.keyspaces = {"ks1", keyspace};
    return Error(raw);
  };
  ASSERT_EQ(system(("mkdir -p " + dir_ + "/dest/ks3").c_str()), 0);
  link(dir_ + "/dest/ks3", "ks3");
  EXPECT_EQ(error_for("ks3"), "keyspace " + data + "/ks3 -> " + dir_ +
                                  "/dest/ks3 is inside the destination " + dir_ +
                                  "/dest: following it would copy the copies");

  link(data + "/ks4", "ks4");
  EXPECT_EQ(error_for("ks4"), "keyspace " + data + "/ks4 -> " + data +
                                  "/ks4: the symlink loops (too many levels of symbolic links)");

  link(dir_ + "/nowhere", "ks5");
  EXPECT_EQ(error_for("ks5"), "keyspace " + data + "/ks5 -> " + dir_ +
                                  "/nowhere: the symlink dangles (its target does not exist)");

  std::ofstream(dir_ + "/file") << "x";
  link(dir_ + "/file", "ks6");
  EXPECT_EQ(error_for("ks6"), "keyspace " + data + "/ks6 -> " + dir_ + "/file: its target " +
                                  dir_ + "/file is not a directory");

  link(home_, "ks7");
  EXPECT_NE(error_for("ks7").find("contains the data root " + data +
                                  ": following it would make the copy recursive"),
            std::string::npos);

  link(dir_, "ks8");
  EXPECT_NE(error_for("ks8").find("contains the destination " + dir_ + "/dest"),
            std::string::npos);

  // Into another data root: its files would be listed twice.
  ASSERT_EQ(system(("mkdir -p " + dir_ + "/c2/data/ks1").c_str()), 0);
  link(dir_ + "/c2/data/ks1", "ks9");
  RawOptions raw = Raw();
  raw.cassandra_dir = home_ + "," + dir_ + "/c2";
  raw.keyspaces = {"ks1", "ks9"};
  EXPECT_EQ(Error(raw), "keyspace " + data + "/ks9 -> " + dir_ +
                            "/c2/data/ks1 is inside another data root " + dir_ +
                            "/c2/data: its files would be copied twice");
}

// --commitlog_archive: an existing, readable directory apart from the
// destination, resolved; refused with --list and --restore, and beside a
// keyspace named like the mirrored segments' directory.
TEST_F(ValidateOptionsTest, CommitlogArchive) {
  const std::string archive = dir_ + "/archive";
  ASSERT_EQ(system(("mkdir -p " + archive + " && ln -s " + archive + " " + dir_ + "/link").c_str()),
            0);
  RawOptions raw = Raw();
  raw.commitlog_archive = dir_ + "/link";
  absl::StatusOr<Options> o = ValidateOptions(*DefaultFileSystem(), raw);
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->commitlog_archive, archive) << "symlinks resolved";
  EXPECT_EQ(ValidateOptions(*DefaultFileSystem(), Raw())->commitlog_archive, "");
  raw.verify = true;
  EXPECT_TRUE(ValidateOptions(*DefaultFileSystem(), raw).ok()) << "--verify checks them too";

  raw = Raw();
  raw.commitlog_archive = dir_ + "/missing";
  EXPECT_EQ(Error(raw).rfind("commitlog archive " + dir_ + "/missing does not exist", 0), 0u)
      << Error(raw);
  ASSERT_EQ(system(("touch " + dir_ + "/file").c_str()), 0);
  raw.commitlog_archive = dir_ + "/file";
  EXPECT_EQ(Error(raw), "commitlog archive " + dir_ + "/file is not a directory");
  raw.commitlog_archive = dir_;  // contains the destination
  EXPECT_NE(Error(raw).find("overlap"), std::string::npos);
  raw.commitlog_archive = archive;
  raw.snapshot_dir = archive + "/dest";  // inside the archive
  EXPECT_NE(Error(raw).find("overlap"), std::string::npos);
  raw = Raw();
  raw.commitlog_archive = archive;
  ASSERT_EQ(system(("mkdir -p " + home_ + "/data/commitlog_archive").c_str()), 0);
  raw.keyspaces = {"ks1", "commitlog_archive"};
  EXPECT_NE(Error(raw).find("keyspace 'commitlog_archive' cannot be copied with --commitlog_archive"),
            std::string::npos);
  raw = Raw();
  raw.commitlog_archive = archive;
  raw.list_only = true;
  EXPECT_NE(Error(raw).find("--list and --restore read only the destination"), std::string::npos);
  raw.list_only = false;
  raw.restore_tag = "t";
  raw.restore_to = dir_ + "/restore";
  EXPECT_NE(Error(raw).find("--list and --restore read only the destination"), std::string::npos);
  if (geteuid() != 0) {  // root may write anywhere
    ASSERT_EQ(chmod(archive.c_str(), 0555), 0);
    raw = Raw();
    raw.commitlog_archive = archive;
    EXPECT_TRUE(ValidateOptions(*DefaultFileSystem(), raw).ok()) << "read-only is fine";
    raw.move_snapshots = true;
    EXPECT_NE(Error(raw).find("cannot be written, and --move-snapshots removes"),
              std::string::npos);
    ASSERT_EQ(chmod(archive.c_str(), 0755), 0);
  }
}

}  // namespace
}  // namespace snaphaven

namespace snaphaven {
namespace {

// --all_keyspaces: the keyspaces are those of the data root, which is the
// directory holding `system`, even below a keyspace that is named "data".
TEST_F(ValidateOptionsTest, AllKeyspacesFindsTheDataRootByItsSystemKeyspace) {
  ASSERT_EQ(system(("mkdir -p " + home_ + "/data/system " + home_ + "/data/data/t " + home_ +
                    "/data/lost+found " + home_ + "/data/commitlog " + home_ + "/commitlog")
                       .c_str()),
            0);
  RawOptions raw = Raw();
  raw.keyspaces.clear();
  raw.all_keyspaces = true;
  absl::StatusOr<Options> o = ValidateOptions(*DefaultFileSystem(), raw);
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_TRUE(o->all_keyspaces);
  EXPECT_EQ(o->data_roots, std::vector<std::string>{home_ + "/data"});
  EXPECT_EQ(o->keyspaces, (std::vector<std::string>{"data", "ks1", "ks2", "system"}));

  raw.keyspaces = {"ks1"};
  EXPECT_EQ(Error(raw), "give keyspaces or --all_keyspaces, not both");
}

TEST_F(ValidateOptionsTest, ClusterRootIsTheParentOfAPercentHComponent) {
  ASSERT_EQ(system(("mkdir -p " + dir_ + "/nas/node1").c_str()), 0);
  RawOptions raw;
  raw.list_only = true;
  raw.cluster = true;
  raw.hostname = "node1";
  raw.cassandra_dir = home_;  // there, and never looked at
  for (const std::string& given : {dir_ + "/nas", dir_ + "/nas/", dir_ + "/nas/%h",
                                   dir_ + "/nas/%h-cass2"}) {
    raw.snapshot_dir = given;
    absl::StatusOr<Options> o = ValidateOptions(*DefaultFileSystem(), raw);
    ASSERT_TRUE(o.ok()) << given << ": " << o.status();
    EXPECT_EQ(o->destination, dir_ + "/nas") << given;
    EXPECT_TRUE(o->cluster);
    EXPECT_TRUE(o->data_roots.empty());
  }
  raw.snapshot_dir = dir_ + "/nowhere";
  EXPECT_NE(Error(raw).find("cluster root " + dir_ + "/nowhere does not exist"),
            std::string::npos);
  raw.list_only = false;
  EXPECT_NE(Error(raw).find("--cluster goes with --list"), std::string::npos);
}

// Bad input is reported by its FIRST error, so the order of the checks is
// part of the interface. Each step breaks one more thing that is checked
// before everything broken so far; its error must then be the one reported.
struct BreakStep {
  std::function<void(RawOptions&)> do_break;
  std::string error;  // a substring of the one line reported
};

void ExpectFirstErrors(RawOptions raw, const std::vector<BreakStep>& steps_last_first) {
  for (const BreakStep& step : steps_last_first) {
    step.do_break(raw);
    absl::StatusOr<Options> o = ValidateOptions(*DefaultFileSystem(), raw);
    ASSERT_FALSE(o.ok()) << "expected: " << step.error;
    EXPECT_EQ(o.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(o.status().message().find(step.error), std::string::npos)
        << "expected first: " << step.error << "\ngot: " << o.status().message();
  }
}

TEST_F(ValidateOptionsTest, SyncReportsTheFirstErrorInCheckOrder) {
  ASSERT_EQ(system(("mkdir -p " + dir_ + "/outer && ln -s " + dir_ + "/outer " + home_ +
                    "/data/ks3").c_str()),
            0);
  std::ofstream(dir_ + "/outer/file") << "x";
  const std::string d = dir_;
  const std::string h = home_;
  auto duration = [](std::string RawOptions::*field, std::string flag) {
    return BreakStep{[field](RawOptions& r) { r.*field = "x"; }, "invalid --" + flag + " 'x'"};
  };
  ExpectFirstErrors(
      Raw(),
      {
          {[&](RawOptions& r) { r.snapshot_dir = d + "/outer/file"; }, "is not a directory"},
          {[&](RawOptions& r) { r.commitlog_archive = d + "/no_archive"; },
           "commitlog archive " + d + "/no_archive does not exist"},
          {[&](RawOptions& r) { r.keyspaces = {"ks1", "ks3"}; }, "contains the destination"},
          {[&](RawOptions& r) { r.snapshot_dir = h + "/data/ks1/dest"; }, "inside the data root"},
          {[](RawOptions& r) { r.keyspaces.push_back("nope"); }, "keyspace 'nope' not found"},
          {[&](RawOptions& r) { r.cassandra_dir = d + "/missing"; },
           "cassandra dir " + d + "/missing does not exist"},
          duration(&RawOptions::keep_for, "keep_for"),
          duration(&RawOptions::progress_interval, "progress_interval"),
          duration(&RawOptions::stuck_after, "stuck_after"),
          duration(&RawOptions::prune_after, "prune_after"),
          duration(&RawOptions::settle_time, "settle_time"),
          duration(&RawOptions::interval, "interval"),
          {[](RawOptions& r) { r.io_priority = "low"; }, "--io_priority 'low'"},
          {[](RawOptions& r) { r.max_bandwidth = "fast"; }, "--max_bandwidth 'fast'"},
          {[](RawOptions& r) { r.keep_snapshots = -1; }, "--keep_snapshots -1"},
          {[](RawOptions& r) { r.scan_threads = 0; }, "--scan_threads 0"},
          {[](RawOptions& r) { r.copy_threads = 65; }, "--copy_threads 65"},
          {[](RawOptions& r) { r.verify_sample = 101; }, "--verify_sample 101"},
          {[](RawOptions& r) { r.snapshot_regex = "(unclosed"; }, "--snapshot_regex"},
          {[](RawOptions& r) { r.keyspaces.push_back("../x"); }, "../x"},
          {[](RawOptions& r) { r.verbosity = 3; }, "-v 3"},
          {[](RawOptions& r) { r.restore_until = "2020-01-01 00:00:00"; },
           "--restore_until needs --restore TAG"},
          {[](RawOptions& r) { r.restore_tag = "t"; }, "--restore needs --restore_to"},
          {[](RawOptions& r) { r.cluster = true; }, "--cluster goes with --list"},
          {[](RawOptions& r) { r.all_keyspaces = true; }, "not both"},
          {[](RawOptions& r) { r.snapshot_dir = ""; }, "missing -s/--snapshot_dir"},
      });
  RawOptions raw = Raw();
  raw.keyspaces = {};
  raw.snapshot_regex = "(unclosed";
  EXPECT_NE(Error(raw).find("no keyspace given"), std::string::npos);
  raw.keyspaces = {"../x"};
  raw.commitlog_archive = d + "/no_archive";
  raw.verify = true;
  EXPECT_NE(Error(raw).find("../x"), std::string::npos) << "--verify: the same order";
}

TEST_F(ValidateOptionsTest, ListAndRestoreReportTheFirstErrorInCheckOrder) {
  ASSERT_EQ(system(("mkdir -p " + dir_ + "/dest").c_str()), 0);
  RawOptions raw = Raw();
  raw.keyspaces = {};
  raw.list_only = true;
  ASSERT_TRUE(ValidateOptions(*DefaultFileSystem(), raw).ok());
  const std::string d = dir_;
  ExpectFirstErrors(
      raw,
      {
          {[&](RawOptions& r) { r.snapshot_dir = d + "/nodest"; },
           "destination " + d + "/nodest does not exist"},
          {[](RawOptions& r) { r.keyspaces = {"../x"}; }, "../x"},
          {[](RawOptions& r) { r.max_bandwidth = "fast"; }, "--max_bandwidth 'fast'"},
          {[&](RawOptions& r) { r.commitlog_archive = d; }, "--commitlog_archive is for sync"},
          {[](RawOptions& r) { r.verbosity = 3; }, "-v 3"},
          {[&](RawOptions& r) {
             r.restore_tag = "t";
             r.restore_to = d + "/restored";
             r.restore_until = "soon";
           },
           "soon"},
          {[](RawOptions& r) { r.restore_to = ""; }, "--restore needs --restore_to"},
          {[](RawOptions& r) { r.cluster = true; }, "--cluster lists; it does not restore"},
          {[](RawOptions& r) { r.all_keyspaces = true; }, "not both"},
          {[](RawOptions& r) { r.snapshot_dir = ""; }, "missing -s/--snapshot_dir"},
      });
  // --list --cluster: the cluster root comes before --restore_until and -v.
  raw = Raw();
  raw.keyspaces = {};
  raw.list_only = true;
  raw.cluster = true;
  raw.snapshot_dir = dir_ + "/nowhere";
  raw.restore_until = "soon";
  raw.verbosity = 3;
  EXPECT_NE(Error(raw).find("cluster root " + dir_ + "/nowhere does not exist"),
            std::string::npos);
}

}  // namespace
}  // namespace snaphaven
