// The real binary on what Apache Cassandra itself wrote, 2.0 (jb) to 5.0
// (da): ../shared/fixtures/cassandra-test-data, laid out exactly as each
// version lays out a node (table dirs, names, hard-linked snapshots and their
// manifest.json), then a --sync-sstables --move-snapshots cycle and --verify.
// Also the layouts that fooled earlier versions: a 2.1 keyspace whose name
// looks like a version ("ks-users-ka-1-Data.db"), and TOC.txt files that list
// components that never exist (SAI, SASI, the 2.1 illegal-cell-name tables).

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "snaphaven/testing/e2e_util.h"

namespace snaphaven {
namespace {

using testing::FileRecord;
using testing::ReadFileOrDie;
using testing::ReadTree;
using testing::RunResult;
using testing::SummaryCount;

constexpr char kTag[] = "nightly";
constexpr int64_t kTwoHours = 2 * 3600;

const std::vector<std::string>& AllVersions() {
  static const auto* versions = new std::vector<std::string>{
      "jb", "ka", "la", "ma", "mb", "mc", "md", "me", "na", "nb", "nc", "oa", "da"};
  return *versions;
}

bool IsVersion30Plus(const std::string& v) {
  return v[0] == 'm' || v[0] == 'n' || v[0] == 'o' || v == "da";
}

// A stable 32-lowercase-hex table id, as 2.1+ appends to table dirs.
std::string TableId(const std::string& name) {
  uint64_t a = 1469598103934665603ull, b = 1099511628211ull * 7;
  for (unsigned char c : name) {
    a = (a ^ c) * 1099511628211ull;
    b = (b ^ c) * 6364136223846793005ull + 1442695040888963407ull;
  }
  char out[33];
  snprintf(out, sizeof(out), "%016llx%016llx", static_cast<unsigned long long>(a),
           static_cast<unsigned long long>(b));
  return out;
}

std::string Basename(const std::string& path) { return path.substr(path.rfind('/') + 1); }

// Files a backup must never take: 2.x tmp-/tmplink- sstables (both name
// forms), *.tmp rewrites and 3.0+ transaction logs.
bool IsTemporary(const std::string& path) {
  const std::string name = Basename(path);
  return absl::StartsWith(name, "tmp-") || absl::StartsWith(name, "tmplink-") ||
         absl::StrContains(name, "-tmp-") || absl::StrContains(name, "-tmplink-") ||
         absl::EndsWith(name, ".tmp") || absl::StrContains(name, "_txn_");
}

void MakeDirs(const std::string& path) {
  for (size_t slash = path.find('/', 1);; slash = path.find('/', slash + 1)) {
    std::string at = path.substr(0, slash);
    if (mkdir(at.c_str(), 0755) != 0 && errno != EEXIST) {
      ADD_FAILURE() << "mkdir " << at << ": " << strerror(errno);
    }
    if (slash == std::string::npos) return;
  }
}

// A writable copy (the fixtures are read-only and must stay untouched).
void CopyFile(const std::string& from, const std::string& to) {
  testing::WriteFileOrDie(to, ReadFileOrDie(from));
  ASSERT_EQ(chmod(to.c_str(), 0644), 0) << to;
}

// Copies a whole fixture directory tree (files and dirs) below `to`.
void CopyTree(const std::string& from, const std::string& to) {
  MakeDirs(to);
  for (const auto& [path, record] : ReadTree(from)) {
    if (record.type == 'd') MakeDirs(to + "/" + path);
  }
  for (const auto& [path, record] : ReadTree(from)) {
    if (record.type == 'f') CopyFile(from + "/" + path, to + "/" + path);
  }
}

// The regular files directly in `dir`, sorted.
std::vector<std::string> FilesIn(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& [path, record] : ReadTree(dir)) {
    if (record.type == 'f' && path.find('/') == std::string::npos) out.push_back(path);
  }
  return out;
}

bool IsDir(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// Every file and dir below `root` (and `root`) gets an mtime `seconds` ago.
void AgeTree(const std::string& root, int64_t seconds) {
  struct timespec times[2];
  clock_gettime(CLOCK_REALTIME, &times[0]);
  times[0].tv_sec -= seconds;
  times[1] = times[0];
  for (const auto& [path, record] : ReadTree(root)) {
    ASSERT_EQ(utimensat(AT_FDCWD, (root + "/" + path).c_str(), times, AT_SYMLINK_NOFOLLOW), 0)
        << path;
  }
  ASSERT_EQ(utimensat(AT_FDCWD, root.c_str(), times, 0), 0) << root;
}

// The level of a glog-style line "YYYY-MM-DD HH:MM:SS L ...", or 0.
char LineLevel(absl::string_view line) {
  if (line.size() < 22 || line[4] != '-' || line[10] != ' ' || line[19] != ' ' ||
      line[21] != ' ') {
    return 0;
  }
  return line[20];
}

std::string ErrorLines(const std::string& err) {
  std::string out;
  for (absl::string_view line : absl::StrSplit(err, '\n')) {
    if (LineLevel(line) == 'E') absl::StrAppend(&out, line, "\n");
  }
  return out;
}

std::string SummaryLine(const std::string& err) {
  std::string last;
  for (absl::string_view line : absl::StrSplit(err, '\n')) {
    if (absl::StrContains(line, "cycle done: ") || absl::StrContains(line, "cycle failed: ")) {
      last = std::string(line);
    }
  }
  return last;
}

// A count from the summary line, also for several-word names ("held back").
int64_t Count(const std::string& err, const std::string& what) {
  int64_t n = SummaryCount(err, what);
  if (n >= 0) return n;
  std::string line = SummaryLine(err);
  for (absl::string_view part : absl::StrSplit(line, absl::ByAnyChar(",:"))) {
    part = absl::StripAsciiWhitespace(part);
    size_t space = part.find(' ');
    if (space == absl::string_view::npos || part.substr(space + 1) != what) continue;
    if (absl::SimpleAtoi(part.substr(0, space), &n)) return n;
  }
  return -1;
}

class RealCassandraTest : public testing::CassandraTreeTest {
 protected:
  void SetUp() override {
    CassandraTreeTest::SetUp();
    fixtures_ = testing::CassandraTestDataDir();
    keyspaces_.clear();
    expected_ = Expected();
  }

  // The fixture folder `sub`, or "" (the test then skips).
  std::string Fixture(const std::string& sub) {
    if (fixtures_.empty() || !IsDir(fixtures_ + "/" + sub)) return "";
    return fixtures_ + "/" + sub;
  }

  void AddKeyspace(const std::string& ks) {
    for (const std::string& k : keyspaces_) {
      if (k == ks) return;
    }
    keyspaces_.push_back(ks);
  }

  // data/<ks>/<table dir> as `version` names it: no id for 2.0.
  static std::string TableDirName(const std::string& version, const std::string& table) {
    return version == "jb" ? table : table + "-" + TableId(table);
  }

  // Copies the files of one fixture table dir into data/<ks>/<table dir>/,
  // renaming each with `rename` (identity when null).
  std::string AddLiveTable(const std::string& ks, const std::string& table_dir,
                           const std::string& fixture_dir,
                           std::string (*rename)(const std::string&) = nullptr) {
    std::string dir = data_ + "/" + ks + "/" + table_dir;
    MakeDirs(dir);
    std::vector<std::string> files = FilesIn(fixture_dir);
    EXPECT_FALSE(files.empty()) << fixture_dir;
    for (const std::string& name : files) {
      CopyFile(fixture_dir + "/" + name, dir + "/" + (rename ? rename(name) : name));
    }
    AddKeyspace(ks);
    return dir;
  }

  // What `nodetool snapshot -t <tag>` leaves in `table_dir` for `version`:
  // hard links of every live component, then manifest.json (2.1+), then
  // schema.cql (3.0+).
  void TakeSnapshot(const std::string& table_dir, const std::string& version) {
    std::string snap = table_dir + "/snapshots/" + kTag;
    MakeDirs(snap);
    std::vector<std::string> data_files;
    for (const std::string& name : FilesIn(table_dir)) {
      if (IsTemporary(name)) continue;
      ASSERT_EQ(link((table_dir + "/" + name).c_str(), (snap + "/" + name).c_str()), 0)
          << name << ": " << strerror(errno);
      if (absl::EndsWith(name, "-Data.db")) data_files.push_back("\"" + name + "\"");
    }
    if (version == "jb") return;  // 2.0 writes no manifest
    std::string manifest;
    if (version == "nc" || version == "oa" || version == "da") {
      manifest = absl::StrCat("{\n  \"files\" : [ ", absl::StrJoin(data_files, ", "),
                              " ],\n  \"created_at\" : \"2024-05-01T10:00:00.123Z\",\n"
                              "  \"expires_at\" : null,\n  \"ephemeral\" : false\n}");
    } else if (version == "na" || version == "nb") {
      manifest = absl::StrCat("{\"files\":[", absl::StrJoin(data_files, ","),
                              "],\"created_at\":\"2024-05-01T10:00:00.123Z\","
                              "\"expires_at\":null}\n");
    } else {
      manifest = absl::StrCat("{\"files\":[", absl::StrJoin(data_files, ","), "]}\n");
    }
    testing::WriteFileOrDie(snap + "/manifest.json", manifest);
    if (IsVersion30Plus(version)) {
      std::string table = Basename(table_dir);
      table = table.substr(0, table.rfind('-'));
      testing::WriteFileOrDie(
          snap + "/schema.cql",
          absl::StrCat("CREATE TABLE IF NOT EXISTS legacy_tables.", table,
                       " (\n    k int,\n    c1 text,\n    v int,\n    PRIMARY KEY (k, c1)\n)"
                       " WITH ID = ", TableId(table), "\n    AND comment = '';\n"));
    }
  }

  // One version's legacy tables (and jb's Keyspace1.Standard1), each with
  // its snapshot.
  void LayOutVersion(const std::string& version) {
    std::string tables = fixtures_ + "/legacy-sstables/" + version + "/legacy_tables";
    ASSERT_TRUE(IsDir(tables)) << tables;
    for (const auto& [table, record] : ReadTree(tables)) {
      if (record.type != 'd' || table.find('/') != std::string::npos) continue;
      // 2.0/2.1 names carry their keyspace: one ka table of the fixtures
      // is "Keyspace1-legacy_ka_repeated_rt-ka-1-*", so it lives in
      // data/Keyspace1/ as a 2.1 node would have it.
      std::string ks = "legacy_tables";
      if (version == "jb" || version == "ka") {
        std::vector<std::string> files = FilesIn(tables + "/" + table);
        ASSERT_FALSE(files.empty()) << table;
        size_t at = files[0].find("-" + table + "-");
        ASSERT_NE(at, std::string::npos) << files[0];
        ks = files[0].substr(0, at);
      }
      std::string dir = AddLiveTable(ks, TableDirName(version, table), tables + "/" + table);
      TakeSnapshot(dir, version);
    }
    if (version == "jb") {
      std::string dir = AddLiveTable("Keyspace1", "Standard1",
                                     fixtures_ + "/legacy-sstables/jb/Keyspace1");
      TakeSnapshot(dir, version);
    }
  }

  // migration-sstables/<which>/ is already a data root: copied as is.
  void LayOutMigration(const std::string& which) {
    std::string root = fixtures_ + "/migration-sstables/" + which;
    ASSERT_TRUE(IsDir(root)) << root;
    CopyTree(root, data_);
    for (const auto& [ks, record] : ReadTree(root)) {
      if (record.type == 'd' && ks.find('/') == std::string::npos) AddKeyspace(ks);
    }
  }

  struct Expected {
    std::map<std::string, std::string> live;       // live sstable files to mirror
    std::map<std::string, std::string> snapshots;  // snapshot files to move
    std::set<std::string> snapshot_dirs;           // <ks>/<table>/snapshots/<tag>
    std::map<std::string, FileRecord> source_live; // every live file, untouched
  };

  // Ages the tree, then records what a correct cycle must do.
  void Freeze() {
    AgeTree(home_, kTwoHours);  // files and dirs, data root included
    expected_ = Expected();
    for (const auto& [path, record] : testing::LiveFiles(data_)) {
      expected_.source_live[path] = record;
      if (!IsTemporary(path)) expected_.live[path] = record.contents;
    }
    for (const auto& [path, record] : testing::SnapshotFiles(data_)) {
      expected_.snapshots[path] = record.contents;
      std::vector<std::string> parts = absl::StrSplit(path, '/');
      expected_.snapshot_dirs.insert(absl::StrJoin(parts.begin(), parts.begin() + 4, "/"));
    }
  }

  std::vector<std::string> CycleArgs() {
    std::vector<std::string> args = {"-d",           home_, "-s", dest_, "--sync-sstables",
                                     "--move-snapshots", "--settle_time", "0s"};
    args.insert(args.end(), keyspaces_.begin(), keyspaces_.end());
    return args;
  }

  RunResult Verify() {
    std::vector<std::string> args = {"-d", home_, "-s", dest_, "--verify"};
    args.insert(args.end(), keyspaces_.begin(), keyspaces_.end());
    return testing::RunSnaphaven(args, absl::Seconds(60));
  }

  // The cycle, every expectation of the contract, then --verify.
  RunResult CycleAndCheck() {
    RunResult r = testing::RunSnaphaven(CycleArgs(), absl::Seconds(60));
    std::cerr << "[" << ::testing::UnitTest::GetInstance()->current_test_info()->name()
              << "] summary: " << SummaryLine(r.err) << "\n";
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_FALSE(absl::StrContains(r.err, "corrupt")) << r.err;
    EXPECT_EQ(ErrorLines(r.err), "") << "ERROR lines in the cycle's output";
    EXPECT_EQ(Count(r.err, "failed"), 0) << SummaryLine(r.err);
    // Held back: exactly the files of the real leftover 2.x temporary
    // sstables (tmp-, tmplink-), two hours old: counted, and named as stuck
    // at the default verbosity.
    int64_t temporary = 0;
    for (const auto& [path, record] : expected_.source_live) {
      temporary += IsTemporary(path) && !absl::EndsWith(path, ".tmp") &&
                   !absl::StrContains(path, "_txn_");
    }
    EXPECT_EQ(Count(r.err, "held back"), temporary) << SummaryLine(r.err);
    EXPECT_EQ(absl::StrContains(r.err, "W held back, unchanged for"), temporary > 0) << r.err;

    // The destination: every live and snapshot file, byte for byte.
    std::map<std::string, FileRecord> dest = testing::DestinationFiles(dest_);
    std::string problems;
    auto expect_at_dest = [&](const std::map<std::string, std::string>& want, const char* what) {
      for (const auto& [path, contents] : want) {
        auto it = dest.find(path);
        if (it == dest.end()) {
          absl::StrAppend(&problems, what, " not at the destination: ", path, "\n");
        } else if (it->second.contents != contents) {
          absl::StrAppend(&problems, what, " differs at the destination: ", path, "\n");
        }
      }
    };
    expect_at_dest(expected_.live, "live file");
    expect_at_dest(expected_.snapshots, "snapshot file");
    for (const auto& [path, record] : dest) {
      if (IsTemporary(path)) {
        absl::StrAppend(&problems, "temporary file mirrored: ", path, "\n");
      } else if (!expected_.live.count(path) && !expected_.snapshots.count(path)) {
        absl::StrAppend(&problems, "unexpected at the destination: ", path, "\n");
      }
    }
    EXPECT_EQ(problems, "") << r.err;

    // Every snapshot moved: its dir gone or empty.
    std::string left;
    for (const std::string& snap : expected_.snapshot_dirs) {
      for (const auto& [path, record] : ReadTree(data_ + "/" + snap)) {
        if (record.type != 'd') absl::StrAppend(&left, snap, "/", path, "\n");
      }
    }
    EXPECT_EQ(left, "") << "snapshot files not moved\n" << r.err;

    // Live files untouched.
    std::string touched;
    std::map<std::string, FileRecord> after = testing::LiveFiles(data_);
    for (const auto& [path, before] : expected_.source_live) {
      auto it = after.find(path);
      if (it == after.end()) {
        absl::StrAppend(&touched, "deleted: ", path, "\n");
      } else if (it->second.ino != before.ino || it->second.size != before.size ||
                 it->second.mtime_ns != before.mtime_ns ||
                 it->second.contents != before.contents) {
        absl::StrAppend(&touched, "changed: ", path, "\n");
      }
    }
    for (const auto& [path, record] : after) {
      if (!expected_.source_live.count(path)) absl::StrAppend(&touched, "new: ", path, "\n");
    }
    EXPECT_EQ(touched, "") << "live files at the source must not be touched";

    RunResult v = Verify();
    EXPECT_EQ(v.exit_code, 0) << v.err;
    EXPECT_EQ(ErrorLines(v.err), "") << v.err;
    return r;
  }

  // A live Data.db at the destination whose path contains `infix`.
  std::string DestDataDb(const std::string& infix) {
    for (const auto& [path, contents] : expected_.live) {
      if (absl::EndsWith(path, "-Data.db") && absl::StrContains(path, infix)) return path;
    }
    ADD_FAILURE() << "no live Data.db with " << infix;
    return "";
  }

  // Flips one byte of each, then --verify must fail and name each (or a
  // hard link of it at the destination: the same file).
  void FlipAndExpectVerifyToName(const std::vector<std::string>& paths) {
    std::map<std::string, FileRecord> dest = testing::DestinationFiles(dest_);
    for (const std::string& path : paths) {
      if (path.empty()) continue;
      ASSERT_TRUE(dest.count(path)) << path << " is not at the destination";
      ASSERT_GT(dest[path].size, 0) << path;
      testing::FlipByteKeepingMtime(dest_ + "/" + path, dest[path].size / 2);
    }
    RunResult v = Verify();
    EXPECT_NE(v.exit_code, 0) << "--verify must fail after a flipped byte\n" << v.err;
    EXPECT_TRUE(v.exit_code == 1) << "exit " << v.exit_code << "\n" << v.err;
    for (const std::string& path : paths) {
      if (path.empty()) continue;
      bool named = absl::StrContains(v.err, path);
      for (const auto& [other, record] : dest) {
        if (record.ino == dest[path].ino && absl::StrContains(v.err, other)) named = true;
      }
      EXPECT_TRUE(named) << "--verify does not name " << path << "\n" << v.err;
    }
  }

  std::string fixtures_;
  std::vector<std::string> keyspaces_;
  Expected expected_;
};

std::string SkipMessage(const std::string& sub) {
  return "../shared/fixtures/cassandra-test-data/" + sub +
         " is absent (Apache Cassandra's test sstables)";
}

// ---------------------------------------------------------------------------
// One version at a time.

class VersionTest : public RealCassandraTest,
                    public ::testing::WithParamInterface<std::string> {};

TEST_P(VersionTest, MirroredMovedVerifiedAndAFlipIsCaught) {
  const std::string version = GetParam();
  if (Fixture("legacy-sstables/" + version).empty()) {
    GTEST_SKIP() << SkipMessage("legacy-sstables/" + version);
  }
  LayOutVersion(version);
  Freeze();
  ASSERT_FALSE(expected_.live.empty());
  ASSERT_FALSE(expected_.snapshots.empty());
  CycleAndCheck();
  // jb: the one sstable with a real SHA-1 digest.
  std::string flip = version == "jb" ? DestDataDb("Keyspace1/Standard1/")
                                     : DestDataDb("/legacy_" + version + "_");
  FlipAndExpectVerifyToName({flip});
}

INSTANTIATE_TEST_SUITE_P(EveryVersion, VersionTest, ::testing::ValuesIn(AllVersions()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

// ---------------------------------------------------------------------------
// The acceptance run: every version and both migrated nodes in one data root.

TEST_F(RealCassandraTest, EveryVersionAndMigratedNodesInOneDataRoot) {
  if (Fixture("legacy-sstables").empty()) GTEST_SKIP() << SkipMessage("legacy-sstables");
  if (Fixture("migration-sstables/2.1").empty()) {
    GTEST_SKIP() << SkipMessage("migration-sstables/2.1");
  }
  if (Fixture("migration-sstables/2.2").empty()) {
    GTEST_SKIP() << SkipMessage("migration-sstables/2.2");
  }
  for (const std::string& version : AllVersions()) {
    if (Fixture("legacy-sstables/" + version).empty()) {
      GTEST_SKIP() << SkipMessage("legacy-sstables/" + version);
    }
    LayOutVersion(version);
  }
  LayOutMigration("2.1");
  LayOutMigration("2.2");
  Freeze();
  // The real tmp-/tmplink- files are there, and must stay out of the copy.
  int temporary = 0;
  for (const auto& [path, record] : expected_.source_live) temporary += IsTemporary(path);
  EXPECT_GE(temporary, 6);
  // The 2.2 node's own snapshots ({"files":[]}) are there too.
  EXPECT_GE(expected_.snapshot_dirs.size(), 3u + AllVersions().size());

  RunResult r = CycleAndCheck();
  std::cout << "acceptance run over " << absl::StrJoin(keyspaces_, " ") << ": "
            << SummaryLine(r.err) << std::endl;

  // Every version's snapshot restores, verified against the manifest and
  // each sstable's digest (2.1's were quarantined as corrupt, and so never
  // restorable, before the digest rule was fixed).
  const std::string restore_to = dir_ + "/restore";
  // No keyspace named: every one that holds the tag (system does not).
  RunResult restored = testing::RunSnaphaven(
      {"-s", dest_, "--restore", kTag, "--restore_to", restore_to}, absl::Seconds(60));
  EXPECT_EQ(restored.exit_code, 0) << restored.err;
  int64_t restored_data = 0;
  for (const auto& [path, record] : testing::ReadTree(restore_to)) {
    restored_data += record.type == 'f' && absl::EndsWith(path, "-Data.db");
  }
  int64_t snapshot_data = 0;
  for (const auto& [path, contents] : expected_.snapshots) {
    snapshot_data += absl::EndsWith(path, "-Data.db");
  }
  EXPECT_EQ(restored_data, snapshot_data);

  std::vector<std::string> flips;
  for (const std::string& version : AllVersions()) {
    flips.push_back(version == "jb" ? DestDataDb("Keyspace1/Standard1/")
                                    : DestDataDb("/legacy_" + version + "_"));
  }
  flips.push_back(DestDataDb("test/foo-"));
  flips.push_back(DestDataDb("keyspace1/test-"));
  FlipAndExpectVerifyToName(flips);
}

// ---------------------------------------------------------------------------
// 2.1 names that begin with a two-letter keyspace: "ks-users-ka-1-Data.db".

std::string ToKsUsers(const std::string& name) {
  // legacy_tables-legacy_ka_simple-ka-1-Data.db -> ks-users-ka-1-Data.db
  return "ks-users-" + name.substr(name.find("-ka-") + 1);
}

TEST_F(RealCassandraTest, ShortKeyspaceNamesOf21AreMirroredAndMoved) {
  std::string fixture = Fixture("legacy-sstables/ka/legacy_tables/legacy_ka_simple");
  if (fixture.empty()) {
    GTEST_SKIP() << SkipMessage("legacy-sstables/ka/legacy_tables/legacy_ka_simple");
  }
  std::string dir = AddLiveTable("ks", "users-" + TableId("users"), fixture, &ToKsUsers);
  ASSERT_TRUE(IsDir(dir));
  ASSERT_FALSE(testing::ReadFileIfExists(dir + "/ks-users-ka-1-Data.db").empty());
  TakeSnapshot(dir, "ka");
  ASSERT_EQ(ReadFileOrDie(dir + "/snapshots/nightly/manifest.json"),
            "{\"files\":[\"ks-users-ka-1-Data.db\"]}\n");
  Freeze();
  CycleAndCheck();
  EXPECT_TRUE(testing::DestinationFiles(dest_).count("ks/users-" + TableId("users") +
                                                      "/ks-users-ka-1-Data.db"));
  FlipAndExpectVerifyToName({DestDataDb("ks/users-")});
}

// ---------------------------------------------------------------------------
// TOC.txt is not an authority.

// A real 5.0 big-format sstable (nc, else oa): the fixture dir and version.
std::string FiftyTable(const std::string& fixtures, const char** version) {
  if (fixtures.empty()) return "";
  for (const char* v : {"nc", "oa"}) {
    std::string fixture =
        fixtures + "/legacy-sstables/" + v + "/legacy_tables/legacy_" + v + "_simple";
    if (IsDir(fixture)) {
      *version = v;
      return fixture;
    }
  }
  return "";
}

void AppendInPlace(const std::string& path, const std::string& text) {
  int fd = open(path.c_str(), O_WRONLY | O_APPEND);
  ASSERT_GE(fd, 0) << path << ": " << strerror(errno);
  ASSERT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  ASSERT_EQ(close(fd), 0);
}

void TruncateInPlace(const std::string& path, const std::string& text) {
  int fd = open(path.c_str(), O_WRONLY | O_TRUNC);
  ASSERT_GE(fd, 0) << path << ": " << strerror(errno);
  ASSERT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  ASSERT_EQ(close(fd), 0);
}

ino_t Inode(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

// (a) SAI built after the snapshot: the shared TOC.txt lists Meta,
// TermsData, PostingLists and ColumnComplete; only ColumnComplete exists,
// and only in the live dir.
TEST_F(RealCassandraTest, SaiComponentsListedButNeverWritten) {
  const char* v = nullptr;
  std::string fixture = FiftyTable(fixtures_, &v);
  if (fixture.empty()) GTEST_SKIP() << SkipMessage("legacy-sstables/nc (or oa)");
  const std::string table = "sai_table";
  std::string dir = AddLiveTable("sai_ks", table + "-" + TableId(table), fixture);
  TakeSnapshot(dir, v);
  const std::string prefix = std::string(v) + "-1-big-";
  const std::string toc = dir + "/" + prefix + "TOC.txt";
  ASSERT_EQ(Inode(toc), Inode(dir + "/snapshots/nightly/" + prefix + "TOC.txt"));
  std::string old_toc = ReadFileOrDie(toc);
  AppendInPlace(toc, absl::StrCat(absl::EndsWith(old_toc, "\n") ? "" : "\n",
                                  "SAI+aa+idx+Meta.db\nSAI+aa+idx+TermsData.db\n"
                                  "SAI+aa+idx+PostingLists.db\nSAI+aa+idx+ColumnComplete.db\n"));
  testing::WriteFileOrDie(dir + "/" + prefix + "SAI+aa+idx+ColumnComplete.db", "");
  ASSERT_TRUE(absl::StrContains(ReadFileOrDie(dir + "/snapshots/nightly/" + prefix + "TOC.txt"),
                                "SAI+aa+idx+Meta.db"));
  Freeze();
  ASSERT_TRUE(expected_.live.count("sai_ks/" + Basename(dir) + "/" + prefix +
                                   "SAI+aa+idx+ColumnComplete.db"));
  CycleAndCheck();
  FlipAndExpectVerifyToName({DestDataDb("sai_ks/")});
}

// (b) SASI on 3.11.14+/4.0.5+ truncates the TOC to "SI_idx.db".
TEST_F(RealCassandraTest, SasiTruncatedTocStillMirrorsEveryComponent) {
  const char* v = nullptr;
  std::string fixture = FiftyTable(fixtures_, &v);
  if (fixture.empty()) GTEST_SKIP() << SkipMessage("legacy-sstables/nc (or oa)");
  const std::string table = "sasi_table";
  std::string dir = AddLiveTable("sasi_ks", table + "-" + TableId(table), fixture);
  TakeSnapshot(dir, v);
  const std::string prefix = std::string(v) + "-1-big-";
  testing::WriteFileOrDie(dir + "/" + prefix + "SI_idx.db",
                          std::string("SASI index of a real sstable\0\1\2", 32));
  TruncateInPlace(dir + "/" + prefix + "TOC.txt", "SI_idx.db\n");
  Freeze();
  ASSERT_GE(expected_.live.size(), 8u);
  CycleAndCheck();
  std::map<std::string, FileRecord> dest = testing::DestinationFiles(dest_);
  for (const auto& [path, contents] : expected_.live) {
    EXPECT_TRUE(dest.count(path)) << "live mirror lacks " << path;
  }
  FlipAndExpectVerifyToName({DestDataDb("sasi_ks/")});
}

// A live sstable whose every file is already a current copy is not checked
// again (selector.cc: neither its TOC.txt read nor its completeness): it was
// whole when copied, and sstables are immutable. On real 5.0 files, a
// compaction deleting an sstable component by component (CompressionInfo.db
// first, which its TOC.txt lists: incomplete if checked) holds nothing back
// and copies nothing of it, while the sstable flushed beside it is copied.
TEST_F(RealCassandraTest, ACopiedLiveSSTableIsNotCheckedAgainWhileCompactionDeletesIt) {
  const char* v = nullptr;
  std::string fixture = FiftyTable(fixtures_, &v);
  if (fixture.empty()) GTEST_SKIP() << SkipMessage("legacy-sstables/nc (or oa)");
  const std::string table = "compacted";
  std::string dir = AddLiveTable("cks", table + "-" + TableId(table), fixture);
  Freeze();
  std::vector<std::string> args = {"-d", home_, "-s", dest_, "--sync-sstables", "cks"};
  RunResult first = testing::RunSnaphaven(args, absl::Seconds(60));
  ASSERT_EQ(first.exit_code, 0) << first.err;
  const std::vector<std::string> files = FilesIn(fixture);
  ASSERT_EQ(Count(first.err, "copied"), static_cast<int64_t>(files.size())) << SummaryLine(first.err);

  const std::string old_prefix = std::string(v) + "-1-big-";
  ASSERT_TRUE(absl::StrContains(ReadFileOrDie(dir + "/" + old_prefix + "TOC.txt"),
                                "CompressionInfo.db"));
  ASSERT_EQ(unlink((dir + "/" + old_prefix + "CompressionInfo.db").c_str()), 0);
  for (const std::string& name : files) {
    std::string flushed = name;
    flushed.replace(0, old_prefix.size(), std::string(v) + "-2-big-");
    CopyFile(fixture + "/" + name, dir + "/" + flushed);
  }
  absl::SleepFor(absl::Milliseconds(300));  // the table dir settles (--settle_time 10s is for files)
  RunResult second = testing::RunSnaphaven(
      {"-d", home_, "-s", dest_, "--sync-sstables", "--settle_time", "0s", "cks"},
      absl::Seconds(60));
  EXPECT_EQ(second.exit_code, 0) << second.err;
  EXPECT_EQ(Count(second.err, "held back"), 0) << second.err;
  EXPECT_EQ(Count(second.err, "copied"), static_cast<int64_t>(files.size()))
      << SummaryLine(second.err);
  EXPECT_EQ(Count(second.err, "failed"), 0) << SummaryLine(second.err);
}

// (c) Real 2.1 sstables whose TOC lists a Summary.db that does not exist.
TEST_F(RealCassandraTest, IllegalCellNameTablesWithAMissingSummary) {
  std::string tables = Fixture("legacy-sstables/ka/legacy_tables");
  if (tables.empty()) GTEST_SKIP() << SkipMessage("legacy-sstables/ka/legacy_tables");
  int missing_summary = 0;
  for (const auto& [table, record] : ReadTree(tables)) {
    if (record.type != 'd' || table.find('/') != std::string::npos ||
        !absl::StartsWith(table, "legacy_ka_with_illegal_cell_names")) {
      continue;
    }
    std::string dir =
        AddLiveTable("legacy_tables", TableDirName("ka", table), tables + "/" + table);
    TakeSnapshot(dir, "ka");
    for (const std::string& name : FilesIn(dir)) {
      if (!absl::EndsWith(name, "-TOC.txt")) continue;
      std::string prefix = name.substr(0, name.size() - strlen("TOC.txt"));
      if (absl::StrContains(ReadFileOrDie(dir + "/" + name), "Summary.db") &&
          access((dir + "/" + prefix + "Summary.db").c_str(), F_OK) != 0) {
        ++missing_summary;
      }
    }
  }
  ASSERT_GE(missing_summary, 1) << "the fixture's TOC lists no absent Summary.db";
  Freeze();
  CycleAndCheck();
  FlipAndExpectVerifyToName({DestDataDb("legacy_ka_with_illegal_cell_names-")});
}

// ---------------------------------------------------------------------------
// 1.2 (ic) sstables: older than anything supported, must not crash.

TEST_F(RealCassandraTest, Cassandra12SSTablesDoNotCrash) {
  std::string fixture = Fixture("migration-sstables/ic/Keyspace1/legacyleveled");
  if (fixture.empty()) {
    GTEST_SKIP() << SkipMessage("migration-sstables/ic/Keyspace1/legacyleveled");
  }
  std::string dir = AddLiveTable("Keyspace1", "legacyleveled", fixture);
  TakeSnapshot(dir, "jb");  // 2.0 style: hard links, no manifest
  Freeze();
  RunResult r = testing::RunSnaphaven(CycleArgs(), absl::Seconds(60));
  std::cerr << "1.2 summary: " << SummaryLine(r.err) << "\n";
  EXPECT_TRUE(r.exit_code == 0 || r.exit_code == 1) << "exit " << r.exit_code << "\n" << r.err;
  EXPECT_NE(SummaryLine(r.err), "") << "no summary line\n" << r.err;
  // Whatever it did, the live files are untouched.
  std::map<std::string, FileRecord> after = testing::LiveFiles(data_);
  for (const auto& [path, before] : expected_.source_live) {
    ASSERT_TRUE(after.count(path)) << path;
    EXPECT_EQ(after[path].ino, before.ino) << path;
    EXPECT_EQ(after[path].contents, before.contents) << path;
  }
  RunResult v = Verify();
  EXPECT_TRUE(v.exit_code == 0 || v.exit_code == 1) << "exit " << v.exit_code << "\n" << v.err;
}

}  // namespace
}  // namespace snaphaven
