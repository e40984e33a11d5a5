// The real snaphaven binary with its destination on a real network file
// system: sshfs (FUSE over SFTP) through a private sshd on 127.0.0.1
// (tools/nfs/sshfs_mount.h). The destination is <mount>/backup; the same
// directory seen by the "server" (no network in between) is
// <export>/backup, where inode numbers and link counts are the real ones.
//
// What sshfs does here (sshfs 3.7.3, OpenSSH 9.2 internal-sftp, Debian 12;
// seen by hand with `sshfs -o sshfs_debug` and checked by these tests where
// noted):
//  - mtimes are kept in whole seconds: SFTP v3 attributes carry seconds only,
//    so utimensat(2) with 1600000001.123456789 s leaves 1600000001.000000000
//    on the server and on the mount (truncated, not rounded). snaphaven's
//    probe records it: "mtime_granularity_ns 1000000000" in
//    <dest>/.snaphaven/id (FirstSyncMirrorsEveryFile checks it).
//  - hard links work (link(2) becomes hardlink@openssh.com): on the server
//    the names share one inode. The mount does NOT report it: SFTP v3 has no
//    inode numbers nor link counts, so sshfs gives each path its own inode
//    number and st_nlink 1. Linked files are therefore checked on the export
//    (HardLinksShareOneInodeOnTheServer). With `-o disable_hardlink`, link(2)
//    fails with EPERM (sshfs answers ENOSYS, the kernel's FUSE turns it into
//    EPERM), which snaphaven treats as "links refused" and copies
//    (RefusedHardLinksFallBackToCopying).
//  - fsync(2) of a file is forwarded (fsync@openssh.com: the server fsyncs).
//    fsync(2) of a directory returns 0 without sending anything: sshfs has
//    no fsyncdir and the kernel takes FUSE's ENOSYS there as success. So it
//    never fails, but it does not make a rename durable on the server either;
//    the server's own file system decides when the rename reaches its disk.
//  - rename(2) over an existing name works (posix-rename@openssh.com).
//  - flock(2) is emulated by the local kernel, per mount: it excludes
//    processes using the same mount, but a second sshfs mount of the same
//    export (as another client host would have) gets the same lock too. So
//    <dest>/.snaphaven/lock protects against a second snaphaven on the same
//    client only (LockExcludesThroughTheSameMount; see its comment).
//  - Every attribute lookup is a round trip; the mount is slow to walk, so
//    these trees are small.
//
// Mount options: the harness's defaults (sshfs's 20 s directory/attribute
// cache kept on). Every change made here goes through the mount, and sshfs
// updates its cache on its own operations; the export is read directly only
// to look at inodes, which the cache does not affect.

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "snaphaven/testing/e2e_util.h"
#include "tools/nfs/sshfs_mount.h"
#include "tools/tree_generator.h"

namespace snaphaven {
namespace {

using testing::DestinationFiles;
using testing::DiffTrees;
using testing::FileRecord;
using testing::ReadFileOrDie;
using testing::ReadTree;
using testing::RunResult;
using testing::SnapshotFiles;
using testing::SummaryCount;

constexpr int64_t kSecond = 1000000000;

int64_t FloorSeconds(int64_t ns) { return ns >= 0 ? ns / kSecond : (ns - kSecond + 1) / kSecond; }

// Like DiffTrees, but mtimes compared in whole seconds (what sshfs keeps).
std::string DiffAtWholeSeconds(const std::map<std::string, FileRecord>& want,
                               const std::map<std::string, FileRecord>& got) {
  auto truncated = [](std::map<std::string, FileRecord> files) {
    for (auto& [path, record] : files) record.mtime_ns = FloorSeconds(record.mtime_ns) * kSecond;
    return files;
  };
  return DiffTrees(truncated(want), truncated(got));
}

class NfsDestinationTest : public testing::CassandraTreeTest {
 protected:
  void SetUp() override {
    CassandraTreeTest::SetUp();
    absl::Status available = nfs::LoopbackSshfs::Available();
    if (!available.ok()) GTEST_SKIP() << available.message();
    export_ = dir_ + "/export";
    mount_ = dir_ + "/mnt";
    ASSERT_EQ(mkdir(export_.c_str(), 0755), 0);
    server_ = std::make_unique<nfs::LoopbackSshfs>(dir_ + "/sshfs");
    absl::Status started = server_->Start();
    ASSERT_TRUE(started.ok()) << started << "\n" << server_->Logs();
    absl::Status mounted = server_->Mount(export_, mount_);
    ASSERT_TRUE(mounted.ok()) << mounted << "\n" << server_->Logs();
    dest_ = mount_ + "/backup";
    server_dest_ = export_ + "/backup";
  }

  void TearDown() override {
    if (server_ == nullptr) return;
    absl::Status stopped = server_->Stop();
    EXPECT_TRUE(stopped.ok()) << stopped << "\n" << server_->Logs();
    EXPECT_FALSE(nfs::LoopbackSshfs::IsMountPoint(mount_));
  }

  // The default tree, with every snapshot file's mtime given a fraction of
  // a second, so that whole-second mtimes at the destination always differ
  // from the source's in nanoseconds: the case to get right.
  void GenerateWithSubsecondMtimes() {
    GenerateDefault();
    for (const auto& [path, record] : SnapshotFiles(data_)) {
      if (record.mtime_ns % kSecond != 0) continue;
      struct timespec times[2] = {{0, UTIME_OMIT},
                                  {record.mtime_ns / kSecond, 500000000}};
      ASSERT_EQ(utimensat(AT_FDCWD, (data_ + "/" + path).c_str(), times, AT_SYMLINK_NOFOLLOW), 0);
    }
    for (const auto& [path, record] : SnapshotFiles(data_)) {
      ASSERT_NE(record.mtime_ns % kSecond, 0) << path;
    }
  }

  // Runs snaphaven; on failure the message includes the sshd/sshfs logs.
  RunResult RunOk(std::vector<std::string> extra = {}) {
    RunResult r = Run(std::move(extra));
    EXPECT_EQ(r.exit_code, 0) << r.err << "\n" << server_->Logs();
    EXPECT_EQ(SummaryCount(r.err, "failed"), 0) << r.err;
    return r;
  }

  void ExpectMirrorAtWholeSeconds(const std::map<std::string, FileRecord>& source) {
    EXPECT_EQ(DiffAtWholeSeconds(source, DestinationFiles(dest_)), "");
    EXPECT_TRUE(ReadTree(dest_ + "/.snaphaven/tmp").empty()) << "stray temporary files";
  }

  std::unique_ptr<nfs::LoopbackSshfs> server_;
  std::string export_, mount_, server_dest_;
};

// The sshfs facts the comment at the top relies on, checked on this mount:
// a different sshfs or sftp server shows here first.
TEST_F(NfsDestinationTest, SshfsBehavesAsThisFileSays) {
  const std::string a = mount_ + "/a", b = mount_ + "/b", c = mount_ + "/c";
  testing::WriteFileOrDie(a, "first");
  // Whole seconds, truncated, on the mount and on the server.
  struct timespec times[2] = {{0, UTIME_OMIT}, {1600000001, 987654321}};
  ASSERT_EQ(utimensat(AT_FDCWD, a.c_str(), times, 0), 0) << strerror(errno);
  for (const std::string& path : {a, export_ + "/a"}) {
    struct stat st;
    ASSERT_EQ(stat(path.c_str(), &st), 0) << path;
    EXPECT_EQ(st.st_mtim.tv_sec, 1600000001) << path;
    EXPECT_EQ(st.st_mtim.tv_nsec, 0) << path;
  }
  // Hard links work: one inode on the server.
  ASSERT_EQ(link(a.c_str(), b.c_str()), 0) << strerror(errno);
  struct stat sa, sb;
  ASSERT_EQ(stat((export_ + "/a").c_str(), &sa), 0);
  ASSERT_EQ(stat((export_ + "/b").c_str(), &sb), 0);
  EXPECT_EQ(sa.st_ino, sb.st_ino);
  EXPECT_EQ(sa.st_nlink, 2u);
  ASSERT_EQ(stat(a.c_str(), &sa), 0);
  ASSERT_EQ(stat(b.c_str(), &sb), 0);
  std::cout << "on the mount, two names of one file: inodes " << sa.st_ino << " and " << sb.st_ino
            << ", link counts " << sa.st_nlink << " and " << sb.st_nlink << "\n";
  // rename(2) replaces an existing name.
  testing::WriteFileOrDie(c, "second");
  ASSERT_EQ(rename(c.c_str(), a.c_str()), 0) << strerror(errno);
  EXPECT_EQ(ReadFileOrDie(export_ + "/a"), "second");
  EXPECT_EQ(ReadFileOrDie(export_ + "/b"), "first");
  // fsync(2) succeeds on a file and on a directory (where it is a no-op).
  int file = open(b.c_str(), O_WRONLY);
  ASSERT_GE(file, 0);
  EXPECT_EQ(fsync(file), 0) << strerror(errno);
  close(file);
  int dir = open(mount_.c_str(), O_RDONLY | O_DIRECTORY);
  ASSERT_GE(dir, 0);
  EXPECT_EQ(fsync(dir), 0) << strerror(errno);
  close(dir);
}

// (a) A first sync mirrors every snapshot file: same bytes and mode, the
// mtime in whole seconds.
TEST_F(NfsDestinationTest, FirstSyncMirrorsEveryFile) {
  GenerateWithSubsecondMtimes();
  auto source = SnapshotFiles(data_);
  RunResult r = RunOk();
  EXPECT_EQ(SummaryCount(r.err, "scanned"), static_cast<int64_t>(source.size()));
  EXPECT_EQ(SummaryCount(r.err, "copied") + SummaryCount(r.err, "linked"),
            static_cast<int64_t>(source.size()))
      << r.err;
  ExpectMirrorAtWholeSeconds(source);
  // The server holds the same (it is not only a client-side cache).
  EXPECT_EQ(DiffAtWholeSeconds(source, DestinationFiles(server_dest_)), "");

  // sshfs drops the nanoseconds, on the mount and on the server alike, and
  // snaphaven's probe saw it.
  for (const auto* files : {&dest_, &server_dest_}) {
    for (const auto& [path, record] : DestinationFiles(*files)) {
      EXPECT_EQ(record.mtime_ns % kSecond, 0) << *files << "/" << path;
    }
  }
  std::string marker = ReadFileOrDie(dest_ + "/.snaphaven/id");
  EXPECT_TRUE(absl::StrContains(marker, "\nmtime_granularity_ns 1000000000\n")) << marker;
}

// (b) Cycles after the first copy nothing: whole-second mtimes at the
// destination do not look like changed files.
TEST_F(NfsDestinationTest, LaterCyclesCopyNothing) {
  GenerateWithSubsecondMtimes();
  const int64_t files = SnapshotFiles(data_).size();
  ASSERT_EQ(RunOk().exit_code, 0);
  auto before = ReadTree(server_dest_);
  for (int cycle = 2; cycle <= 3; ++cycle) {
    SCOPED_TRACE(absl::StrCat("cycle ", cycle));
    RunResult r = RunOk();
    EXPECT_EQ(SummaryCount(r.err, "copied"), 0) << r.err;
    EXPECT_EQ(SummaryCount(r.err, "linked"), 0) << r.err;
    EXPECT_EQ(SummaryCount(r.err, "unchanged"), files) << r.err;
  }
  // Nothing was written on the server, not even the manifest.
  auto after = ReadTree(server_dest_);
  EXPECT_EQ(DiffTrees(before, after), "");
  EXPECT_EQ(before[".snaphaven/manifest"].ino, after[".snaphaven/manifest"].ino);
}

// (c) --fullsync checks every destination file against its source at the
// destination's granularity: nothing to copy, exit 0, nothing rewritten.
TEST_F(NfsDestinationTest, FullsyncCopiesNothing) {
  GenerateWithSubsecondMtimes();
  auto source = SnapshotFiles(data_);
  ASSERT_EQ(RunOk().exit_code, 0);
  auto before = DestinationFiles(server_dest_);
  RunResult r = RunOk({"--fullsync"});
  EXPECT_EQ(SummaryCount(r.err, "copied"), 0) << r.err;
  EXPECT_EQ(SummaryCount(r.err, "linked"), 0) << r.err;
  EXPECT_EQ(SummaryCount(r.err, "unchanged"), static_cast<int64_t>(source.size())) << r.err;
  auto after = DestinationFiles(server_dest_);
  EXPECT_EQ(DiffTrees(before, after), "");
  for (const auto& [path, record] : after) {
    EXPECT_EQ(record.ino, before[path].ino) << path << " was rewritten";
  }
  // And the manifest it rewrote still spares the next cycle a copy.
  r = RunOk();
  EXPECT_EQ(SummaryCount(r.err, "copied"), 0) << r.err;
  EXPECT_EQ(SummaryCount(r.err, "linked"), 0) << r.err;
  ExpectMirrorAtWholeSeconds(source);
}

// (d) A file deleted at the destination (through the mount) is recopied by
// --fullsync, and only that one.
TEST_F(NfsDestinationTest, FullsyncRecopiesOneDeletedFile) {
  GenerateWithSubsecondMtimes();
  auto source = SnapshotFiles(data_);
  ASSERT_EQ(RunOk().exit_code, 0);
  // A file with no hard-linked twin at the source (a manifest.json or
  // schema.cql): it can only come back by a copy.
  std::string deleted;
  for (const auto& [path, record] : source) {
    if (record.nlink == 1) {
      deleted = path;
      break;
    }
  }
  ASSERT_FALSE(deleted.empty());
  ASSERT_EQ(unlink((dest_ + "/" + deleted).c_str()), 0);

  // An ordinary cycle trusts its manifest.
  RunResult r = RunOk();
  EXPECT_EQ(SummaryCount(r.err, "copied"), 0) << r.err;

  r = RunOk({"--fullsync", "-v", "1"});
  EXPECT_EQ(SummaryCount(r.err, "copied"), 1) << r.err;
  EXPECT_EQ(SummaryCount(r.err, "linked"), 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "copied " + deleted)) << r.err;
  ExpectMirrorAtWholeSeconds(source);
  r = RunOk();
  EXPECT_EQ(SummaryCount(r.err, "copied"), 0) << r.err;
}

// (e) Move mode on that destination: the mover stats each copy through the
// mount and compares its whole-second mtime with the source's at the
// destination's granularity, then deletes the source. Files copied by an
// earlier cycle and files copied in the same cycle both qualify.
TEST_F(NfsDestinationTest, MoveSnapshotsDeletesSourcesAfterCopying) {
  GenerateWithSubsecondMtimes();
  ASSERT_EQ(RunOk().exit_code, 0);
  ASSERT_TRUE(tools::TakeSnapshot(data_, {"ks1", "ks2"}, "day2").ok());
  auto source = SnapshotFiles(data_);
  auto live_before = ReadTree(data_);
  for (auto it = live_before.begin(); it != live_before.end();) {
    it = absl::StrContains(it->first, "/snapshots") ? live_before.erase(it) : std::next(it);
  }

  RunResult r = RunOk({"--move-snapshots", "--settle_time=0s", "-v", "2"});
  EXPECT_EQ(SummaryCount(r.err, "moved"), static_cast<int64_t>(source.size())) << r.err;
  EXPECT_TRUE(SnapshotFiles(data_).empty()) << "snapshot files left at the source";
  ExpectMirrorAtWholeSeconds(source);
  // Live sstables are never touched.
  auto live_after = ReadTree(data_);
  for (auto it = live_after.begin(); it != live_after.end();) {
    it = absl::StrContains(it->first, "/snapshots") ? live_after.erase(it) : std::next(it);
  }
  EXPECT_EQ(DiffTrees(live_before, live_after), "");
  EXPECT_FALSE(absl::StrContains(r.err, "missing or differs")) << r.err;
}

// (f) sshfs accepts hard links: each source inode is stored once. The mount
// reports per-path inode numbers (see the top of this file), so sharing is
// checked on the server; through the mount, the bytes.
TEST_F(NfsDestinationTest, HardLinksShareOneInodeOnTheServer) {
  GenerateWithSubsecondMtimes();
  auto source = SnapshotFiles(data_);
  RunResult r = RunOk();
  ExpectMirrorAtWholeSeconds(source);

  auto server = DestinationFiles(server_dest_);
  std::map<uint64_t, uint64_t> server_inode_for_source;
  std::map<uint64_t, int> names_per_source_inode;
  for (const auto& [path, record] : source) {
    auto [it, inserted] = server_inode_for_source.emplace(record.ino, server[path].ino);
    EXPECT_EQ(it->second, server[path].ino) << path << " not linked to its twin on the server";
    ++names_per_source_inode[record.ino];
  }
  std::set<uint64_t> distinct;
  for (const auto& [ino, server_ino] : server_inode_for_source) distinct.insert(server_ino);
  EXPECT_EQ(distinct.size(), server_inode_for_source.size());
  EXPECT_EQ(SummaryCount(r.err, "copied"), static_cast<int64_t>(distinct.size())) << r.err;
  EXPECT_EQ(SummaryCount(r.err, "linked"),
            static_cast<int64_t>(source.size() - distinct.size()))
      << r.err;
  ASSERT_GT(SummaryCount(r.err, "linked"), 0) << "the tree has no hard links to test";
  for (const auto& [path, record] : source) {
    EXPECT_EQ(server[path].nlink, static_cast<uint64_t>(names_per_source_inode[record.ino]))
        << path;
  }

  // What the mount says about the same files (not asserted: it is sshfs's
  // business). If it ever reports the server's inodes, they must agree.
  auto mounted = DestinationFiles(dest_);
  std::set<uint64_t> mount_inodes;
  bool nlink_reported = false;
  for (const auto& [path, record] : mounted) {
    mount_inodes.insert(record.ino);
    nlink_reported |= record.nlink > 1;
  }
  const bool mount_shares_inodes = mount_inodes.size() == distinct.size() && nlink_reported;
  std::cout << "sshfs mount: " << mount_inodes.size() << " inode numbers for " << mounted.size()
            << " names (" << distinct.size() << " inodes on the server), link counts "
            << (nlink_reported ? "reported" : "all 1") << "\n";
  if (mount_shares_inodes) {
    std::map<uint64_t, uint64_t> mount_inode_for_server;
    for (const auto& [path, record] : server) {
      auto [it, inserted] = mount_inode_for_server.emplace(record.ino, mounted[path].ino);
      EXPECT_EQ(it->second, mounted[path].ino) << path;
    }
  }
}

// (f) Where the mount refuses hard links (`-o disable_hardlink`: link(2)
// fails with EPERM), every file is copied instead; nothing fails.
TEST_F(NfsDestinationTest, RefusedHardLinksFallBackToCopying) {
  const std::string no_links = dir_ + "/mnt-nolinks";
  absl::Status mounted = server_->Mount(export_, no_links, {"disable_hardlink"});
  ASSERT_TRUE(mounted.ok()) << mounted << "\n" << server_->Logs();
  ASSERT_EQ(mkdir((no_links + "/probe").c_str(), 0755), 0);
  testing::WriteFileOrDie(no_links + "/probe/a", "a");
  ASSERT_NE(link((no_links + "/probe/a").c_str(), (no_links + "/probe/b").c_str()), 0);
  EXPECT_EQ(errno, EPERM) << "link(2) on sshfs -o disable_hardlink: " << strerror(errno);

  GenerateWithSubsecondMtimes();
  auto source = SnapshotFiles(data_);
  dest_ = no_links + "/backup";
  server_dest_ = export_ + "/backup";
  RunResult r = RunOk({"-v", "2"});
  EXPECT_EQ(SummaryCount(r.err, "copied"), static_cast<int64_t>(source.size())) << r.err;
  EXPECT_EQ(SummaryCount(r.err, "linked"), 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "); copying")) << "-v 2 names the refused links\n" << r.err;
  ExpectMirrorAtWholeSeconds(source);
  std::set<uint64_t> server_inodes;
  for (const auto& [path, record] : DestinationFiles(server_dest_)) {
    EXPECT_EQ(record.nlink, 1u) << path;
    server_inodes.insert(record.ino);
  }
  EXPECT_EQ(server_inodes.size(), source.size());
  // And the next cycle copies nothing either.
  r = RunOk();
  EXPECT_EQ(SummaryCount(r.err, "copied"), 0) << r.err;
  EXPECT_EQ(SummaryCount(r.err, "linked"), 0) << r.err;
}

// A lost manifest is rebuilt by walking the mount; whole-second mtimes there
// must still match the sources, so nothing is copied again.
TEST_F(NfsDestinationTest, LostManifestIsRebuiltWithoutRecopy) {
  GenerateWithSubsecondMtimes();
  auto source = SnapshotFiles(data_);
  ASSERT_EQ(RunOk().exit_code, 0);
  ASSERT_EQ(unlink((dest_ + "/.snaphaven/manifest").c_str()), 0);
  RunResult r = RunOk();
  EXPECT_TRUE(absl::StrContains(r.err, "missing; rebuilt")) << r.err;
  EXPECT_EQ(SummaryCount(r.err, "copied"), 0) << r.err;
  EXPECT_EQ(SummaryCount(r.err, "linked"), 0) << r.err;
  ExpectMirrorAtWholeSeconds(source);
}

// The lock excludes a second snaphaven using the same mount (flock is
// emulated by the client kernel). It does NOT exclude one using another
// mount of the same export, as a second client host would: checked by hand,
// flock(LOCK_EX|LOCK_NB) on <mount2>/backup/.snaphaven/lock succeeds while
// <mount1>/backup/.snaphaven/lock is held. Not asserted here: it is sshfs's
// limit, not snaphaven's doing (NFSv4 maps flock to server-side locks).
TEST_F(NfsDestinationTest, LockExcludesThroughTheSameMount) {
  GenerateWithSubsecondMtimes();
  ASSERT_EQ(RunOk().exit_code, 0);
  std::string lock_path = dest_ + "/.snaphaven/lock";
  int fd = open(lock_path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(flock(fd, LOCK_EX | LOCK_NB), 0);
  RunResult r = Run();
  close(fd);
  EXPECT_EQ(r.exit_code, 75) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, lock_path)) << r.err;
}

// The mount goes away under a looping snaphaven (a NAS dropped): later
// cycles fail on the identity marker and write nothing into the bare mount
// point; SIGTERM still ends the loop with exit 0.
TEST_F(NfsDestinationTest, UnmountedDestinationIsNotWrittenTo) {
  Generate(Spec(1, 2, {"first"}, 4096));
  std::string log = dir_ + "/loop.log";
  pid_t pid = testing::StartSnaphaven({"-d", home_, "-s", dest_, "--interval", "1s", "ks1"}, log);
  auto count = [&](const std::string& what) {
    std::string text = testing::ReadFileIfExists(log);
    int n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
  };
  ASSERT_TRUE(testing::WaitUntil([&] { return count("cycle done") >= 1; }, absl::Seconds(60)))
      << testing::ReadFileIfExists(log);
  // snaphaven holds its lock file open on the mount: the unmount is lazy.
  absl::Status unmounted = server_->Unmount(mount_);
  ASSERT_TRUE(unmounted.ok()) << unmounted << "\n" << server_->Logs();
  ASSERT_FALSE(nfs::LoopbackSshfs::IsMountPoint(mount_));
  bool refused = testing::WaitUntil([&] { return count("vanished or was unmounted") >= 1; },
                                    absl::Seconds(30));
  ASSERT_EQ(kill(pid, SIGTERM), 0);
  EXPECT_EQ(testing::WaitForExit(pid, absl::Seconds(30)), 0) << testing::ReadFileIfExists(log);
  EXPECT_TRUE(refused) << testing::ReadFileIfExists(log);
  EXPECT_TRUE(ReadTree(mount_).empty()) << "written into the bare mount point";
}

}  // namespace
}  // namespace snaphaven
