// The destination walker on real temporary trees: what it visits, in which
// order, what it never enters (the state directory, other dot-names at the
// root), symlinks never followed, hard links, errors handed to the visitor;
// and on Cassandra's own sstables from ../shared/fixtures.

#include "snaphaven/state/destination_walker.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <map>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "snaphaven/state/destination.h"
#include "snaphaven/testing/fault_injection_file_system.h"
#include "snaphaven/testing/test_files.h"

namespace snaphaven {
namespace {

using testing::FaultInjectionFileSystem;
using testing::FaultRule;
using testing::FsOp;

void MakeDirs(const std::string& path) {
  std::error_code error;
  std::filesystem::create_directories(path, error);
  ASSERT_FALSE(error) << path << ": " << error.message();
}

void Write(const std::string& path, const std::string& contents = "x") {
  MakeDirs(std::string(DirName(path)));
  absl::Status written = DefaultFileSystem()->WriteFileAtomically(path, contents);
  ASSERT_TRUE(written.ok()) << written;
}

// What a walk did, one line per callback.
struct Recorder {
  std::vector<std::string> events;
  std::map<std::string, FileStat> files;
  bool go_on_after_errors = true;

  DestinationVisitor Visitor() {
    DestinationVisitor visitor;
    visitor.enter = [this](const std::string& rel, const FileStat&) {
      events.push_back("enter " + rel);
      return true;
    };
    visitor.file = [this](const std::string& rel, const FileStat& stat) {
      events.push_back("file " + rel);
      files[rel] = stat;
      return absl::OkStatus();
    };
    visitor.leave = [this](const std::string& rel) {
      events.push_back("leave " + rel);
      return absl::OkStatus();
    };
    visitor.error = [this](const std::string& rel, const absl::Status& error) {
      events.push_back(absl::StrCat("error ", rel, " errno ", ErrnoOf(error)));
      return go_on_after_errors ? absl::OkStatus() : error;
    };
    return visitor;
  }
};

class DestinationWalkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("walker");
    dest_ = dir_ + "/dest";
  }

  // A destination as a cycle leaves it, with everything that is not part
  // of the mirror beside the copies.
  void MakeDestination() {
    const StateDir state(dest_);
    Write(state.manifest);
    Write(JoinPath(state.temp, "copy-1.tmp"));  // a copy being written
    Write(JoinPath(state.retention_trash, "1/nb-9-big-Data.db"));
    Write(JoinPath(state.quarantine, "ks1/t1-abc/nb-1-big-Data.db.0badf00d"));
    Write(dest_ + "/.snapshot/hourly.0/ks1/t1-abc/nb-1-big-Data.db");  // a NAS's own
    Write(dest_ + "/lost+found/#1234");  // an orphan fsck found
    Write(dest_ + "/commitlog_archive/CommitLog-7-1.log");
    Write(dest_ + "/commitlog_archive/quarantine/CommitLog-7-2.log");
    Write(dest_ + "/ks1/t1-abc/nb-1-big-Data.db");
    Write(dest_ + "/ks1/t1-abc/.idx/nb-1-big-Data.db");
    MakeDirs(dest_ + "/ks1/t1-abc/snapshots/s1");
    ASSERT_EQ(link((dest_ + "/ks1/t1-abc/nb-1-big-Data.db").c_str(),
                   (dest_ + "/ks1/t1-abc/snapshots/s1/nb-1-big-Data.db").c_str()),
              0);
    Write(dest_ + "/ks1/t1-abc/snapshots/s1/manifest.json");
    Write(dest_ + "/ks2/t2/backups/nb-2-big-Data.db");
  }

  // What a walk of `scope` did through a file system failing `rule`.
  std::vector<std::string> WalkFailing(const FaultRule& rule, const std::string& scope) {
    FaultInjectionFileSystem fs(DefaultFileSystem());
    fs.AddRule(rule);
    Recorder recorder;
    EXPECT_TRUE(WalkDestination(fs, dest_, scope, recorder.Visitor()).ok());
    return recorder.events;
  }

  std::string dir_;
  std::string dest_;
};

TEST_F(DestinationWalkerTest, WalksTheMirrorDepthFirstSortedAndNothingElse) {
  MakeDestination();
  Recorder recorder;
  ASSERT_TRUE(WalkDestination(*DefaultFileSystem(), dest_, "", recorder.Visitor()).ok());
  const std::vector<std::string> want = {
      "enter commitlog_archive",
      "file commitlog_archive/CommitLog-7-1.log",
      "enter commitlog_archive/quarantine",
      "file commitlog_archive/quarantine/CommitLog-7-2.log",
      "leave commitlog_archive/quarantine",
      "leave commitlog_archive",
      "enter ks1",
      "enter ks1/t1-abc",
      "enter ks1/t1-abc/.idx",  // dot-names below the root are the mirror's
      "file ks1/t1-abc/.idx/nb-1-big-Data.db",
      "leave ks1/t1-abc/.idx",
      "file ks1/t1-abc/nb-1-big-Data.db",
      "enter ks1/t1-abc/snapshots",
      "enter ks1/t1-abc/snapshots/s1",
      "file ks1/t1-abc/snapshots/s1/manifest.json",
      "file ks1/t1-abc/snapshots/s1/nb-1-big-Data.db",
      "leave ks1/t1-abc/snapshots/s1",
      "leave ks1/t1-abc/snapshots",
      "leave ks1/t1-abc",
      "leave ks1",
      "enter ks2",
      "enter ks2/t2",
      "enter ks2/t2/backups",
      "file ks2/t2/backups/nb-2-big-Data.db",
      "leave ks2/t2/backups",
      "leave ks2/t2",
      "leave ks2",
  };
  EXPECT_EQ(recorder.events, want);
  // Hard links are two names of one inode, each visited.
  const FileStat& live = recorder.files["ks1/t1-abc/nb-1-big-Data.db"];
  const FileStat& snapshot = recorder.files["ks1/t1-abc/snapshots/s1/nb-1-big-Data.db"];
  EXPECT_EQ(live.ino, snapshot.ino);
  EXPECT_EQ(live.nlink, 2u);
  EXPECT_EQ(live.type, FileType::kRegular);
}

TEST_F(DestinationWalkerTest, ListsEachDirectoryOnlyWhenItGetsThere) {
  // Streaming: a keyspace is not even listed while the one before it is
  // walked, so memory follows the directories on the way down.
  MakeDestination();
  FaultInjectionFileSystem fs(DefaultFileSystem());
  DestinationVisitor visitor;
  int ks2_listings_seen_in_ks1 = -1;
  visitor.file = [&](const std::string& rel, const FileStat&) {
    if (rel == "ks1/t1-abc/nb-1-big-Data.db") {
      ks2_listings_seen_in_ks1 = fs.Calls(FsOp::kListDir, "/ks2");
    }
    return absl::OkStatus();
  };
  ASSERT_TRUE(WalkDestination(fs, dest_, "", visitor).ok());
  EXPECT_EQ(ks2_listings_seen_in_ks1, 0);
  EXPECT_EQ(fs.Calls(FsOp::kListDir, "/ks2$"), 1);
}

TEST_F(DestinationWalkerTest, NeverFollowsASymlink) {
  Write(dir_ + "/elsewhere/secret-Data.db");
  Write(dest_ + "/ks1/t1/snapshots/s1/nb-1-big-Data.db");
  ASSERT_EQ(symlink((dir_ + "/elsewhere").c_str(), (dest_ + "/ks1/t1/snapshots/s1/evil").c_str()), 0);
  ASSERT_EQ(symlink((dir_ + "/elsewhere").c_str(), (dest_ + "/ks3").c_str()), 0);
  ASSERT_EQ(symlink("../..", (dest_ + "/ks1/t1/loop").c_str()), 0);
  std::unique_ptr<FileSystem> confined = NewConfinedFileSystem({dest_}, {});
  for (FileSystem* fs : {DefaultFileSystem(), confined.get()}) {
    Recorder recorder;
    ASSERT_TRUE(WalkDestination(*fs, dest_, "", recorder.Visitor()).ok());
    for (const std::string& event : recorder.events) {
      EXPECT_FALSE(absl::StrContains(event, "secret")) << event;
      EXPECT_FALSE(absl::StartsWith(event, "error")) << event;
    }
    for (const std::string link : {"ks1/t1/snapshots/s1/evil", "ks3", "ks1/t1/loop"}) {
      ASSERT_EQ(recorder.files.count(link), 1u) << link;
      EXPECT_EQ(recorder.files[link].type, FileType::kSymlink) << link;
    }
    EXPECT_EQ(recorder.files.size(), 4u);
    // A scope that is a symlink is a file too, not a way elsewhere.
    Recorder scoped;
    ASSERT_TRUE(WalkDestination(*fs, dest_, "ks3", scoped.Visitor()).ok());
    EXPECT_EQ(scoped.events, std::vector<std::string>{"file ks3"});
  }
}

TEST_F(DestinationWalkerTest, AnUnlistableDirectoryIsReportedAndTheWalkGoesOn) {
  Write(dest_ + "/ks1/t1/a-Data.db");
  Write(dest_ + "/ks1/t2/b-Data.db");
  Write(dest_ + "/ks2/t3/c-Data.db");
  const FaultRule unlistable{FsOp::kListDir, "/ks1/t2$", EACCES, 0, -1};
  const std::vector<std::string> want = {
      "enter ks1",           "enter ks1/t1",   "file ks1/t1/a-Data.db",
      "leave ks1/t1",        "enter ks1/t2",   absl::StrCat("error ks1/t2 errno ", EACCES),
      "leave ks1",           "enter ks2",      "enter ks2/t3",
      "file ks2/t3/c-Data.db", "leave ks2/t3", "leave ks2",
  };
  EXPECT_EQ(WalkFailing(unlistable, ""), want);

  // By default an error ends the walk, with that error.
  FaultInjectionFileSystem fs(DefaultFileSystem());
  fs.AddRule(unlistable);
  DestinationVisitor stop;
  std::vector<std::string> files;
  stop.file = [&files](const std::string& rel, const FileStat&) {
    files.push_back(rel);
    return absl::OkStatus();
  };
  absl::Status status = WalkDestination(fs, dest_, "", stop);
  EXPECT_EQ(ErrnoOf(status), EACCES) << status;
  EXPECT_EQ(files, std::vector<std::string>{"ks1/t1/a-Data.db"});
}

TEST_F(DestinationWalkerTest, AReallyUnreadableDirectoryIsReported) {
  // Where another user can reach it ($TEST_TMPDIR's parents may not let
  // nobody through).
  char reachable[] = "/tmp/walker_unreadable_XXXXXX";
  ASSERT_NE(mkdtemp(reachable), nullptr);
  ASSERT_EQ(chmod(reachable, 0755), 0);
  dest_ = std::string(reachable) + "/dest";
  Write(dest_ + "/ks1/t1/a-Data.db");
  Write(dest_ + "/ks1/t2/b-Data.db");
  ASSERT_EQ(chmod((dest_ + "/ks1/t2").c_str(), 0700), 0);
  // Root reads anything: the walk runs as nobody then, in a child.
  const bool as_root = geteuid() == 0;
  if (!as_root) {
    ASSERT_EQ(chmod((dest_ + "/ks1/t2").c_str(), 0), 0);
  }
  const pid_t pid = as_root ? fork() : 0;
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (as_root && (setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0)) {
      _exit(3);
    }
    if (access((dest_ + "/ks1/t1").c_str(), R_OK | X_OK) != 0) _exit(4);  // cannot reach it
    Recorder recorder;
    const bool walked = WalkDestination(*DefaultFileSystem(), dest_, "", recorder.Visitor()).ok();
    const bool reported =
        walked && std::count(recorder.events.begin(), recorder.events.end(),
                             absl::StrCat("error ks1/t2 errno ", EACCES)) == 1 &&
        recorder.files.count("ks1/t1/a-Data.db") == 1 && recorder.files.size() == 1;
    if (!as_root) {
      EXPECT_TRUE(reported) << ::testing::PrintToString(recorder.events);
      return;
    }
    _exit(reported ? 0 : 1);
  }
  int wstatus = 0;
  ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
  ASSERT_TRUE(WIFEXITED(wstatus));
  if (WEXITSTATUS(wstatus) == 4) GTEST_SKIP() << "nobody cannot reach " << dest_;
  EXPECT_EQ(WEXITSTATUS(wstatus), 0) << "the unreadable directory was not reported as EACCES";
  std::filesystem::remove_all(reachable);
}

TEST_F(DestinationWalkerTest, ANameThatCannotBeStatedIsReported) {
  Write(dest_ + "/ks1/t1/a-Data.db");
  Write(dest_ + "/ks1/t1/b-Data.db");
  const std::vector<std::string> want = {
      "enter ks1/t1", absl::StrCat("error ks1/t1/a-Data.db errno ", EIO),
      "file ks1/t1/b-Data.db", "leave ks1/t1"};
  EXPECT_EQ(WalkFailing(FaultRule{FsOp::kStat, "/ks1/t1/a-Data.db$", EIO, 0, -1}, "ks1"), want);
}

TEST_F(DestinationWalkerTest, AMissingDestinationOrScopeIsAVanishedError) {
  Recorder recorder;
  ASSERT_TRUE(WalkDestination(*DefaultFileSystem(), dest_, "", recorder.Visitor()).ok());
  EXPECT_EQ(recorder.events, std::vector<std::string>{absl::StrCat("error  errno ", ENOENT)});
  absl::StatusOr<std::vector<std::string>> keyspaces =
      DestinationKeyspaces(*DefaultFileSystem(), dest_);
  ASSERT_TRUE(keyspaces.ok()) << keyspaces.status();
  EXPECT_TRUE(keyspaces->empty());
  MakeDirs(dest_);
  Recorder scoped;
  ASSERT_TRUE(WalkDestination(*DefaultFileSystem(), dest_, "ks9/t", scoped.Visitor()).ok());
  EXPECT_EQ(scoped.events, std::vector<std::string>{absl::StrCat("error ks9/t errno ", ENOENT)});
}

TEST_F(DestinationWalkerTest, ACallbackErrorOrRefusalStopsThere) {
  MakeDestination();
  Recorder recorder;
  DestinationVisitor visitor = recorder.Visitor();
  visitor.enter = [&recorder](const std::string& rel, const FileStat&) {
    recorder.events.push_back("enter " + rel);
    return rel != "ks1/t1-abc";  // not walked, not left
  };
  visitor.leave = [&recorder](const std::string& rel) {
    recorder.events.push_back("leave " + rel);
    return rel == "ks1" ? absl::CancelledError("stop") : absl::OkStatus();
  };
  // The scope itself is not entered nor left: the walk just ends.
  absl::Status status = WalkDestination(*DefaultFileSystem(), dest_, "ks1", visitor);
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(recorder.events, std::vector<std::string>{"enter ks1/t1-abc"});
  status = WalkDestination(*DefaultFileSystem(), dest_, "", visitor);
  EXPECT_TRUE(absl::IsCancelled(status)) << status;
  EXPECT_EQ(recorder.events.back(), "leave ks1");
  for (const std::string& event : recorder.events) {
    EXPECT_FALSE(absl::StrContains(event, "ks2")) << event;
    EXPECT_FALSE(absl::StrContains(event, "t1-abc/")) << event;
  }
}

TEST_F(DestinationWalkerTest, WalksAStateDirectoryGivenAsTheScope) {
  // Retention empties its trash through the walker: the rule is about what
  // a walk finds at the root, not about the scope it is given.
  MakeDestination();
  Recorder recorder;
  ASSERT_TRUE(
      WalkDestination(*DefaultFileSystem(), dest_, ".snaphaven/retention-trash", recorder.Visitor())
          .ok());
  const std::vector<std::string> want = {"enter .snaphaven/retention-trash/1",
                                         "file .snaphaven/retention-trash/1/nb-9-big-Data.db",
                                         "leave .snaphaven/retention-trash/1"};
  EXPECT_EQ(recorder.events, want);
}

TEST_F(DestinationWalkerTest, KeyspacesAreTheRootsDirectoriesThatCanBeOne) {
  MakeDestination();
  Write(dest_ + "/README.txt");
  MakeDirs(dest_ + "/.Trash-1000");
  ASSERT_EQ(symlink((dest_ + "/ks1").c_str(), (dest_ + "/ks0").c_str()), 0);
  absl::StatusOr<std::vector<std::string>> keyspaces =
      DestinationKeyspaces(*DefaultFileSystem(), dest_);
  ASSERT_TRUE(keyspaces.ok()) << keyspaces.status();
  EXPECT_EQ(*keyspaces, (std::vector<std::string>{"ks1", "ks2"}));
  EXPECT_EQ(ClassifyDestinationTopLevel(".snaphaven"), DestinationTopLevel::kNotMirrored);
  EXPECT_EQ(ClassifyDestinationTopLevel(".snapshot"), DestinationTopLevel::kNotMirrored);
  EXPECT_EQ(ClassifyDestinationTopLevel("lost+found"), DestinationTopLevel::kNotMirrored);
  EXPECT_EQ(ClassifyDestinationTopLevel("commitlog_archive"),
            DestinationTopLevel::kCommitlogArchive);
  EXPECT_EQ(ClassifyDestinationTopLevel("system_auth"), DestinationTopLevel::kKeyspace);
}

TEST(IsTableUnitTest, TwoComponentsBelowTheRoot) {
  EXPECT_TRUE(IsTableUnit("ks/t-0123"));
  EXPECT_TRUE(IsTableUnit("commitlog_archive/quarantine"));
  EXPECT_FALSE(IsTableUnit(""));
  EXPECT_FALSE(IsTableUnit("ks"));
  EXPECT_FALSE(IsTableUnit("ks/t/snapshots"));
  EXPECT_FALSE(IsTableUnit("ks/"));
  EXPECT_FALSE(IsTableUnit("/t"));
}

// Every regular file below `root`, by path relative to it, found with the
// standard library (an independent walk).
std::set<std::string> RegularFilesBelow(const std::string& root) {
  std::set<std::string> files;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
    if (entry.is_regular_file() && !entry.is_symlink()) {
      files.insert(std::filesystem::relative(entry.path(), root).string());
    }
  }
  return files;
}

// Cassandra's own data roots (2.1 and 2.2 live tables, tmp-/tmplink-
// files, snapshots with manifest.json), walked read-only as a destination
// mirrors them: every file visited once, and the keyspaces are Cassandra's.
TEST(DestinationWalkerFixturesTest, VisitsEveryFileOfCassandrasOwnDataRoots) {
  const std::string fixtures = testing::SharedFixturesDir("cassandra-test-data");
  if (fixtures.empty()) GTEST_SKIP() << "../shared/fixtures/cassandra-test-data is absent";
  struct Root {
    std::string name;
    std::vector<std::string> keyspaces;
    bool snapshots;
  };
  const std::vector<Root> roots = {
      {"migration-sstables/2.1", {"system", "test"}, false},
      {"migration-sstables/2.2", {"keyspace1", "system"}, true},
  };
  for (const auto& [name, want_keyspaces, snapshots] : roots) {
    const std::string root = JoinPath(fixtures, name);
    std::vector<std::string> visited;
    DestinationVisitor visitor;
    visitor.file = [&visited](const std::string& rel, const FileStat& stat) {
      EXPECT_EQ(stat.type, FileType::kRegular) << rel;
      visited.push_back(rel);
      return absl::OkStatus();
    };
    ASSERT_TRUE(WalkDestination(*DefaultFileSystem(), root, "", visitor).ok()) << root;
    const std::set<std::string> want = RegularFilesBelow(root);
    EXPECT_EQ(std::set<std::string>(visited.begin(), visited.end()), want) << root;
    EXPECT_EQ(visited.size(), want.size()) << root;
    EXPECT_EQ(std::any_of(visited.begin(), visited.end(),
                          [](const std::string& rel) {
                            return absl::StrContains(rel, "/snapshots/");
                          }),
              snapshots)
        << root;
    absl::StatusOr<std::vector<std::string>> keyspaces =
        DestinationKeyspaces(*DefaultFileSystem(), root);
    ASSERT_TRUE(keyspaces.ok()) << keyspaces.status();
    EXPECT_EQ(*keyspaces, want_keyspaces) << root;
  }
}

}  // namespace
}  // namespace snaphaven
