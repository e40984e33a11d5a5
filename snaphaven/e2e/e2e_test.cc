// End-to-end tests: the real static binary on generated Cassandra trees.

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "snaphaven/testing/e2e_util.h"
#include "tools/tree_generator.h"

namespace snaphaven {
namespace {

using testing::DestinationFiles;
using testing::DiffTrees;
using testing::FileRecord;
using testing::MakeTempDir;
using testing::ReadTree;
using testing::RunResult;
using testing::RunSnaphaven;
using testing::SnapshotFiles;
using testing::SummaryCount;

using EndToEnd = testing::CassandraTreeTest;

TEST_F(EndToEnd, MirrorIsByteIdenticalWithModesMtimesAndSharedInodes) {
  GenerateDefault();
  auto source_before = ReadTree(home_);
  RunResult r = Run();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ExpectExactMirror();
  // The Cassandra tree is untouched, down to the mtimes.
  EXPECT_EQ(DiffTrees(source_before, ReadTree(home_)), "");

  // One copy per source inode: files hard-linked at the source are
  // hard-linked at the destination, and nothing else is.
  auto source = SnapshotFiles(data_);
  auto dest = DestinationFiles(dest_);
  std::map<uint64_t, uint64_t> dest_inode_for_source;
  for (const auto& [path, record] : source) {
    auto [it, inserted] = dest_inode_for_source.emplace(record.ino, dest[path].ino);
    EXPECT_EQ(it->second, dest[path].ino) << path << " not linked to its twin";
  }
  std::set<uint64_t> distinct;
  for (const auto& [ino, dest_ino] : dest_inode_for_source) distinct.insert(dest_ino);
  EXPECT_EQ(distinct.size(), dest_inode_for_source.size());

  EXPECT_EQ(SummaryCount(r.err, "scanned"), static_cast<int64_t>(source.size()));
  EXPECT_EQ(SummaryCount(r.err, "copied"), static_cast<int64_t>(distinct.size()));
  EXPECT_EQ(SummaryCount(r.err, "linked"), static_cast<int64_t>(source.size() - distinct.size()));
  EXPECT_EQ(SummaryCount(r.err, "failed"), 0);
  // The live sstables are not part of the default mirror.
  for (const auto& [path, record] : dest) EXPECT_TRUE(absl::StrContains(path, "/snapshots/"));
}

TEST_F(EndToEnd, SecondRunChangesNothing) {
  GenerateDefault();
  ASSERT_EQ(Run().exit_code, 0);
  auto before = ReadTree(dest_, {});
  RunResult r = Run();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(SummaryCount(r.err, "copied"), 0);
  EXPECT_EQ(SummaryCount(r.err, "linked"), 0);
  EXPECT_EQ(SummaryCount(r.err, "unchanged"), static_cast<int64_t>(SnapshotFiles(data_).size()));
  auto after = ReadTree(dest_, {});
  // The directory cache may be saved (directories settled since the first
  // run are trusted now); nothing else is written.
  before.erase(".snaphaven/dircache");
  after.erase(".snaphaven/dircache");
  EXPECT_EQ(DiffTrees(before, after), "");
  // Not even the manifest was replaced.
  EXPECT_EQ(before[".snaphaven/manifest"].ino, after[".snaphaven/manifest"].ino);
}

TEST_F(EndToEnd, NewSnapshotCopiesOnlyNewInodes) {
  Generate(Spec(2, 3, {"day1"}));
  ASSERT_EQ(Run({}, {"ks1"}).exit_code, 0);
  ASSERT_TRUE(tools::FlushNewSSTables(data_, {"ks1"}, 5000, 7).ok());
  ASSERT_TRUE(tools::TakeSnapshot(data_, {"ks1"}, "day2").ok());

  auto source = SnapshotFiles(data_);
  int64_t day2_files = 0, new_bytes = 0, new_files = 0;
  for (const auto& [path, record] : source) {
    if (!absl::StrContains(path, "/snapshots/day2/")) continue;
    ++day2_files;
    // New inodes: the new sstables (generation 4), the manifest and schema.
    if (absl::StrContains(path, "-4-big-") || !absl::StrContains(path, "-big-")) {
      ++new_files;
      new_bytes += record.size;
    }
  }
  RunResult r = Run({"-v", "1"}, {"ks1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(SummaryCount(r.err, "copied"), new_files) << r.err;
  EXPECT_EQ(SummaryCount(r.err, "linked"), day2_files - new_files);
  EXPECT_TRUE(absl::StrContains(r.err, "linked ks1/")) << "-v 1 names each linked file";
  EXPECT_TRUE(absl::StrContains(r.err, "copied ks1/")) << "-v 1 names each copied file";
  ExpectExactMirror();
}

TEST_F(EndToEnd, SnapshotRegexSelectsTags) {
  Generate(Spec(1, 3, {"opcenter_1", "daily_opcenter_2", "manual"}));
  RunResult r = Run({"--snapshot_regex", "^opcenter_"}, {"ks1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const auto& [path, record] : DestinationFiles(dest_)) {
    EXPECT_TRUE(absl::StrContains(path, "/snapshots/opcenter_1/")) << path;
  }
  EXPECT_GT(DestinationFiles(dest_).size(), 0u);
  // Unanchored search: "opcenter_" also matches the daily tag.
  r = Run({"--snapshot_regex", "opcenter_"}, {"ks1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  bool daily = false;
  for (const auto& [path, record] : DestinationFiles(dest_)) {
    EXPECT_FALSE(absl::StrContains(path, "/manual/")) << path;
    daily |= absl::StrContains(path, "/daily_opcenter_2/");
  }
  EXPECT_TRUE(daily);
}

TEST_F(EndToEnd, FullsyncRepairsDeletedAndTruncatedFiles) {
  GenerateDefault();
  ASSERT_EQ(Run().exit_code, 0);
  auto dest = DestinationFiles(dest_);
  std::string deleted, truncated;
  for (const auto& [path, record] : dest) {
    if (record.nlink != 1) continue;  // pick files with no twin to hide behind
    if (deleted.empty()) {
      deleted = path;
    } else if (truncated.empty() && record.size > 100) {
      truncated = path;
    }
  }
  ASSERT_FALSE(deleted.empty());
  ASSERT_FALSE(truncated.empty());
  ASSERT_EQ(unlink((dest_ + "/" + deleted).c_str()), 0);
  // Truncate, then put the old mtime back: only the size tells.
  ASSERT_EQ(truncate((dest_ + "/" + truncated).c_str(), 10), 0);
  const FileRecord& t = dest[truncated];
  struct timespec times[2] = {{0, UTIME_OMIT}, {t.mtime_ns / 1000000000, t.mtime_ns % 1000000000}};
  ASSERT_EQ(utimensat(AT_FDCWD, (dest_ + "/" + truncated).c_str(), times, 0), 0);

  // An ordinary cycle trusts its manifest and does not walk the destination.
  RunResult r = Run();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(SummaryCount(r.err, "copied"), 0);

  r = Run({"--fullsync"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(SummaryCount(r.err, "copied") + SummaryCount(r.err, "linked"), 2) << r.err;
  ExpectExactMirror();
  r = Run();
  EXPECT_EQ(SummaryCount(r.err, "copied"), 0);
}

// A manifest rebuilt from the destination (--fullsync) records the mirror
// and nothing else: not a NAS's own .snapshot/ at the destination root,
// nor a desktop's .Trash-0/ (a name with a leading '.' is never a
// keyspace), which the restore never took for keyspaces either.
TEST_F(EndToEnd, FullsyncRebuildsTheManifestFromTheMirrorOnly) {
  GenerateDefault();
  ASSERT_EQ(Run().exit_code, 0);
  const auto copies = DestinationFiles(dest_);
  ASSERT_FALSE(copies.empty());
  const std::string copy = copies.begin()->first;
  std::filesystem::create_directories(std::filesystem::path(dest_ + "/.snapshot/hourly.0/" + copy)
                                          .parent_path());
  std::filesystem::create_directories(dest_ + "/.Trash-0/files");
  testing::WriteFileOrDie(dest_ + "/.snapshot/hourly.0/" + copy, "an older copy");
  testing::WriteFileOrDie(dest_ + "/.Trash-0/files/nb-1-big-Data.db", "thrown away");

  RunResult r = Run({"--fullsync"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(SummaryCount(r.err, "copied"), 0) << r.err;
  std::vector<std::string> recorded;
  const Manifest manifest = testing::DestinationManifest(dest_);
  for (const auto& [path, entry] : manifest.entries()) {
    recorded.push_back(path);
    EXPECT_TRUE(copies.count(path)) << "recorded, not a copy: " << path;
  }
  EXPECT_EQ(recorded.size(), copies.size());
  r = Run({"--verify"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, " 0 unknown")) << r.err;
  // Left alone.
  EXPECT_EQ(testing::ReadFileOrDie(dest_ + "/.snapshot/hourly.0/" + copy), "an older copy");
}

// A destination that is the root of a disk of its own holds that file
// system's lost+found/ (root's, mode 0700). It is not part of the mirror:
// snaphaven running as another user (Cassandra's) rebuilds its manifest
// from the destination on the first run, and with --fullsync, without
// trying to read it.
TEST_F(EndToEnd, LostAndFoundAtTheDestinationRootIsNotPartOfTheMirror) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root, to make a lost+found another user cannot read";
  // Somewhere nobody can reach ($TEST_TMPDIR's parents may not let it in).
  char reachable[] = "/tmp/e2e_lost_found_XXXXXX";
  ASSERT_NE(mkdtemp(reachable), nullptr);
  dir_ = reachable;
  home_ = dir_ + "/cassandra";
  data_ = home_ + "/data";
  dest_ = dir_ + "/backup";
  Generate(Spec(1, 2, {"s1"}));
  const std::string binary = dir_ + "/snaphaven";
  std::filesystem::copy_file(testing::SnaphavenBinary(), binary);
  ASSERT_EQ(system(("chmod -R a+rX " + dir_).c_str()), 0);
  ASSERT_EQ(mkdir(dest_.c_str(), 0755), 0);
  ASSERT_EQ(chown(dest_.c_str(), 65534, 65534), 0);
  ASSERT_EQ(mkdir((dest_ + "/lost+found").c_str(), 0700), 0);
  for (const std::vector<std::string>& extra :
       std::vector<std::vector<std::string>>{{}, {"--fullsync"}}) {
    const std::string log = dir_ + "/log";
    std::vector<std::string> args = {"--reuid=65534", "--regid=65534", "--clear-groups", binary,
                                     "-d", home_, "-s", dest_, "ks1"};
    args.insert(args.end(), extra.begin(), extra.end());
    const pid_t pid = testing::StartProgram("/usr/bin/setpriv", args, log, log);
    EXPECT_EQ(testing::WaitForExit(pid, absl::Seconds(60)), 0) << testing::ReadFileOrDie(log);
    unlink(log.c_str());
  }
  ExpectExactMirror();
  std::filesystem::remove_all(dir_);
}

TEST_F(EndToEnd, BadInputExitsTwoWithOneClearLineAndTouchesNothing) {
  GenerateDefault();
  ASSERT_EQ(mkdir((dir_ + "/unwritable").c_str(), 0555), 0);
  testing::WriteFileOrDie(dir_ + "/plainfile", "x");
  ASSERT_EQ(symlink(data_.c_str(), (dir_ + "/datalink").c_str()), 0);
  struct Case {
    std::vector<std::string> args;
    std::string culprit;
  };
  const std::string d = home_, s = dest_;
  std::vector<Case> cases = {
      {{"-d", d, "ks1"}, "--snapshot_dir"},
      {{"-d", d, "-s", s}, "no keyspace"},
      {{"-d", dir_ + "/nope", "-s", s, "ks1"}, dir_ + "/nope"},
      {{"-d", d, "-s", s, "ks9"}, "'ks9' not found"},
      {{"-d", d, "-s", s, "ks1/x"}, "ks1/x"},
      {{"-d", d, "-s", s, "../ks1"}, "../ks1"},
      {{"-d", d, "-s", s, ".hidden"}, ".hidden"},
      {{"-d", d, "-s", s, "--snapshot_regex", "a(b", "ks1"}, "missing )"},
      {{"-d", d, "-s", s, "--interval", "often", "ks1"}, "often"},
      {{"-d", d, "-s", s, "--interval", "-5s", "ks1"}, "-5s"},
      {{"-d", d, "-s", data_ + "/ks1/copy", "ks1"}, "inside the data root"},
      {{"-d", d, "-s", dir_ + "/datalink/x", "ks1"}, "inside the data root"},
      {{"-d", d, "-s", dir_ + "/plainfile", "ks1"}, "not a directory"},
      {{"-d", d, "-s", s, "-v", "5", "ks1"}, "-v 5"},
      {{"-d", d, "-s", s, "--no_such_flag", "ks1"}, "--no_such_flag"},
  };
  if (geteuid() != 0) {  // root may write anywhere
    cases.push_back({{"-d", d, "-s", dir_ + "/unwritable", "ks1"}, "cannot be written"});
    cases.push_back({{"-d", d, "-s", dir_ + "/unwritable/sub", "ks1"}, "cannot be created"});
  }
  auto before = ReadTree(dir_);
  for (const Case& c : cases) {
    SCOPED_TRACE(absl::StrJoin(c.args, " "));
    RunResult r = RunSnaphaven(c.args);
    EXPECT_EQ(r.exit_code, 2);
    std::vector<std::string> lines = absl::StrSplit(r.err, '\n', absl::SkipEmpty());
    ASSERT_GE(lines.size(), 1u);
    EXPECT_TRUE(absl::StartsWith(lines[0], "snaphaven: ")) << lines[0];
    EXPECT_TRUE(absl::StrContains(lines[0], c.culprit)) << lines[0];
    EXPECT_EQ(r.out, "");
  }
  EXPECT_EQ(DiffTrees(before, ReadTree(dir_)), "") << "bad input changed something";
}

TEST_F(EndToEnd, HeldLockExits75AndNamesIt) {
  GenerateDefault();
  ASSERT_EQ(Run().exit_code, 0);
  std::string lock_path = dest_ + "/.snaphaven/lock";
  int fd = open(lock_path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(flock(fd, LOCK_EX | LOCK_NB), 0);
  auto before = ReadTree(dest_);
  RunResult r = Run();
  close(fd);
  EXPECT_EQ(r.exit_code, 75);
  EXPECT_TRUE(absl::StrContains(r.err, lock_path)) << r.err;
  EXPECT_EQ(DiffTrees(before, ReadTree(dest_)), "");
}

TEST_F(EndToEnd, HelpListsEveryFlagWithItsDefault) {
  RunResult r = RunSnaphaven({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  for (const char* flag : {"-s, --snapshot_dir", "-d, --cassandra_dir", "--snapshot_regex",
                           "--fullsync", "--interval", "-q, --quiet", "-v N", "-h, --help",
                           "--version", "(default: /var/lib/cassandra)", "(default: 0)",
                           "(default: false)"}) {
    EXPECT_TRUE(absl::StrContains(r.out, flag)) << flag << "\n" << r.out;
  }
  r = RunSnaphaven({"-h"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(r.out, "usage: snaphaven"));
  r = RunSnaphaven({"--version"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(absl::StartsWith(r.out, "snaphaven ")) << r.out;
}

TEST_F(EndToEnd, QuietPrintsNothingOnSuccessAndVerboseExplainsDecisions) {
  GenerateDefault();
  RunResult r = Run({"-q"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(r.out, "");
  r = Run({"-v", "2"});
  EXPECT_EQ(r.exit_code, 0);
  // File by file, or (a directory settled since the first run) by directory.
  EXPECT_TRUE(absl::StrContains(r.err, " unchanged ks1/") ||
              absl::StrContains(r.err, " unchanged directory ks1/"))
      << r.err;
  r = Run({"-v", "0"});
  std::vector<std::string> lines = absl::StrSplit(r.err, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 1u) << r.err;
  EXPECT_TRUE(absl::StrContains(lines[0], "cycle done: ")) << lines[0];
  for (const char* word : {"scanned", "copied", "linked", "unchanged", "skipped", "failed", "/s)"}) {
    EXPECT_TRUE(absl::StrContains(lines[0], word)) << word;
  }
}

TEST_F(EndToEnd, SymlinksAndSpecialFilesAreNotFollowedButNamed) {
  GenerateDefault();
  std::string snap_dir;
  for (const auto& [path, record] : SnapshotFiles(data_)) {
    snap_dir = data_ + "/" + path.substr(0, path.rfind('/'));
    break;
  }
  std::string outside = dir_ + "/outside";
  ASSERT_EQ(mkdir(outside.c_str(), 0755), 0);
  testing::WriteFileOrDie(outside + "/secret", "do not copy");
  ASSERT_EQ(symlink((outside + "/secret").c_str(), (snap_dir + "/evil-link").c_str()), 0);
  ASSERT_EQ(symlink(outside.c_str(), (snap_dir + "/evil-dir").c_str()), 0);
  ASSERT_EQ(mkfifo((snap_dir + "/a-fifo").c_str(), 0644), 0);
  RunResult r = Run();
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "not following symlink " + snap_dir + "/evil-link")) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "not following symlink " + snap_dir + "/evil-dir"));
  EXPECT_TRUE(absl::StrContains(r.err, snap_dir + "/a-fifo"));
  for (const auto& [path, record] : DestinationFiles(dest_)) {
    EXPECT_FALSE(absl::StrContains(path, "evil")) << path;
    EXPECT_FALSE(absl::StrContains(path, "fifo")) << path;
    EXPECT_EQ(record.type, 'f') << path;
  }
}

TEST_F(EndToEnd, MissingOrCorruptManifestIsRebuiltNotTrusted) {
  GenerateDefault();
  ASSERT_EQ(Run().exit_code, 0);
  std::string manifest = dest_ + "/.snaphaven/manifest";
  ASSERT_EQ(unlink(manifest.c_str()), 0);
  RunResult r = Run();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "missing; rebuilt")) << r.err;
  EXPECT_EQ(SummaryCount(r.err, "copied"), 0) << "a rebuilt manifest must spare the re-copy";
  ExpectExactMirror();

  std::string text = testing::ReadFileOrDie(manifest);
  testing::WriteFileOrDie(manifest, text.substr(0, text.size() / 2));  // truncated
  r = Run();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "is corrupt")) << r.err;
  EXPECT_EQ(SummaryCount(r.err, "copied"), 0);
  ExpectExactMirror();
}

TEST_F(EndToEnd, FullDestinationStopsCleanlyAndNextRunFinishes) {
  Generate(Spec(2, 4, {"s1"}, 300 * 1024));
  ASSERT_EQ(mkdir(dest_.c_str(), 0755), 0);
  if (mount("tmpfs", dest_.c_str(), "tmpfs", 0, "size=1m") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs here (" << strerror(errno)
                 << "): the full-destination test needs root and mount rights";
  }
  RunResult r = Run({}, {"ks1"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "out of space")) << r.err;
  // No partial file under a final name; no temporary file left behind.
  EXPECT_GT(DestinationFiles(dest_).size(), 0u);
  ExpectOnlyWholeFiles();
  EXPECT_TRUE(ReadTree(dest_ + "/.snaphaven/tmp").empty());
  ASSERT_EQ(umount(dest_.c_str()), 0);
  // On a bigger destination the next run finishes the job.
  r = Run({}, {"ks1"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  ExpectExactMirror();
}

// A destination on a disk of its own (here a loop-mounted ext4 image):
// batches of small copies are made durable with one syncfs each.
TEST_F(EndToEnd, DestinationOnItsOwnDiskIsSyncedABatchAtATime) {
  Generate(Spec(2, 4, {"s1", "s2"}));
  const std::string image = dir_ + "/disk.img";
  ASSERT_EQ(mkdir(dest_.c_str(), 0755), 0);
  const std::string make = absl::StrCat("PATH=$PATH:/usr/sbin:/sbin; truncate -s 64M ", image, " && mkfs.ext4 -q -F ", image,
                                        " >/dev/null 2>&1 && mount -o loop ", image, " ", dest_,
                                        " >/dev/null 2>&1");
  if (system(make.c_str()) != 0) {
    GTEST_SKIP() << "cannot mount an ext4 image here (needs root, mkfs.ext4 and a loop "
                    "device): the own-disk destination test is skipped";
  }
  struct Unmount {
    ~Unmount() { EXPECT_EQ(system(("umount " + dir).c_str()), 0); }
    std::string dir;
  } unmount{dest_};
  RunResult r = Run({"-v", "1"}, {"ks1"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "durability: one syncfs per batch of small copies"))
      << r.err;
  ExpectExactMirror();
}

TEST_F(EndToEnd, KillNineMidCopyThenRerunConverges) {
  tools::TreeSpec spec = Spec(2, 3, {"s1", "s2"}, 24 << 20);
  spec.write_live_sstables = false;
  Generate(spec);
  std::string log = dir_ + "/log";
  pid_t pid = testing::StartSnaphaven({"-d", home_, "-s", dest_, "ks1"}, log);
  // Wait until a copy is under way: a temporary file (unnamed, or named in
  // the state directory) with some bytes in it.
  bool copying = testing::WaitUntil([&] {
    for (int64_t size : testing::FilesBeingWritten(pid, dest_ + "/.snaphaven/tmp")) {
      if (size > 0) return true;
    }
    return false;
  }, absl::Seconds(60));
  ASSERT_TRUE(copying);
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  EXPECT_EQ(testing::WaitForExit(pid, absl::Seconds(10)), 128 + SIGKILL);

  ExpectOnlyWholeFiles();
  // Unnamed temporary files vanish with the process; named ones stay for
  // the next run to remove.
  const size_t leftovers = ReadTree(dest_ + "/.snaphaven/tmp").size();

  RunResult r = Run({}, {"ks1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(absl::StrContains(r.err, "temporary files left by an interrupted run"), leftovers > 0)
      << leftovers << " leftovers; " << r.err;
  ExpectExactMirror();
}

TEST_F(EndToEnd, LoopModePicksUpNewSnapshotsAndExitsZeroOnSigterm) {
  Generate(Spec(1, 3, {"first"}));
  std::string log = dir_ + "/log";
  pid_t pid = testing::StartSnaphaven({"-d", home_, "-s", dest_, "--interval", "1s", "ks1"}, log);
  auto cycles = [&] {
    std::string text = testing::ReadFileIfExists(log);
    int n = 0;
    for (size_t at = text.find("cycle done"); at != std::string::npos;
         at = text.find("cycle done", at + 1)) {
      ++n;
    }
    return n;
  };
  ASSERT_TRUE(testing::WaitUntil([&] { return cycles() >= 1; }, absl::Seconds(30)));
  ASSERT_TRUE(tools::TakeSnapshot(data_, {"ks1"}, "second").ok());
  ASSERT_TRUE(testing::WaitUntil(
      [&] { return DiffTrees(SnapshotFiles(data_), DestinationFiles(dest_)).empty(); },
      absl::Seconds(30)))
      << DiffTrees(SnapshotFiles(data_), DestinationFiles(dest_));
  ASSERT_EQ(kill(pid, SIGTERM), 0);
  EXPECT_EQ(testing::WaitForExit(pid, absl::Seconds(10)), 0) << testing::ReadFileOrDie(log);
  EXPECT_GE(cycles(), 2);
  ExpectExactMirror();
}

// The binary is fully static: no program interpreter, so it runs where no
// shared library exists (an empty container image).
TEST_F(EndToEnd, BinaryIsFullyStaticAndRunsInAnEmptyRoot) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "a sanitizer build (.bazelrc asan, tsan) links the binary dynamically: gcc "
                  "refuses -static with -fsanitize";
#endif
  std::string elf = testing::ReadFileOrDie(testing::SnaphavenBinary());
  ASSERT_GT(elf.size(), 64u);
  ASSERT_EQ(elf.substr(0, 4), "\x7f" "ELF");
  // Program headers: look for PT_INTERP (3) or PT_DYNAMIC (2).
  uint64_t phoff;
  uint16_t phentsize, phnum;
  memcpy(&phoff, elf.data() + 0x20, 8);
  memcpy(&phentsize, elf.data() + 0x36, 2);
  memcpy(&phnum, elf.data() + 0x38, 2);
  for (int i = 0; i < phnum; ++i) {
    uint32_t type;
    memcpy(&type, elf.data() + phoff + i * phentsize, 4);
    EXPECT_NE(type, 3u) << "has a program interpreter (dynamically linked)";
    EXPECT_NE(type, 2u) << "has a dynamic section";
  }
  // In an empty root: only the binary and a tiny tree.
  if (geteuid() != 0) GTEST_SKIP() << "chroot needs root";
  std::string root = MakeTempDir("emptyroot");
  ASSERT_EQ(system(("cp " + testing::SnaphavenBinary() + " " + root + "/snaphaven").c_str()), 0);
  data_ = root + "/data";
  Generate(Spec(1, 3, {"snap1"}));
  pid_t pid = fork();
  if (pid == 0) {
    if (chroot(root.c_str()) != 0 || chdir("/") != 0) _exit(100);
    int null = open("/snaphaven.log", O_WRONLY | O_CREAT, 0644);
    dup2(null, 1);
    dup2(null, 2);
    execl("/snaphaven", "/snaphaven", "-d", "/data", "-s", "/dest", "ks1", nullptr);
    _exit(101);
  }
  int code = testing::WaitForExit(pid, absl::Seconds(30));
  EXPECT_EQ(code, 0) << testing::ReadFileOrDie(root + "/snaphaven.log");
  EXPECT_EQ(DiffTrees(SnapshotFiles(root + "/data"), DestinationFiles(root + "/dest")), "");
}

}  // namespace
}  // namespace snaphaven
