// When a snapshot (at the source, or its copy at the destination) is
// complete (snapshot_copy.h): its manifest.json's files are all there with
// the components each sstable needs; a 2.0 snapshot, which has no
// manifest.json, by its whole sstables. Also on Cassandra's own snapshots
// and sstables from ../shared/fixtures/cassandra-test-data.
#include "snaphaven/state/snapshot_copy.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "snaphaven/storage/file_system.h"
#include "snaphaven/cassandra/sstable_components.h"
#include "snaphaven/testing/test_files.h"

namespace snaphaven {
namespace {

constexpr char kCopy[] = "ks/t-0094ac203e7411e59149ef9f87394ca6/snapshots/s1";
constexpr char k20Copy[] = "Keyspace1/Standard1/snapshots/s1";

// Why the copy `dir` holding `files` (relative to it) is not complete, ""
// when it is: SnapshotIncompleteness with the sstable rule of
// sstable_components.h (no TOC), which IsCompleteSnapshotCopy must agree with.
std::string Why(const std::string& dir, const std::string* manifest_json,
                const std::vector<std::string>& files) {
  const std::set<std::string> present(files.begin(), files.end());
  auto is_present = [&](const std::string& rel) { return present.count(rel) > 0; };
  std::string why = SnapshotIncompleteness(
      dir, manifest_json, files, is_present,
      [&](const std::string& in, const SSTableName& name) {
        return CheckSSTableComplete(name, nullptr, [&](absl::string_view component) {
                 const std::string file = absl::StrCat(name.prefix, "-", component);
                 return is_present(in.empty() ? file : absl::StrCat(in, "/", file));
               }).missing;
      });
  EXPECT_EQ(IsCompleteSnapshotCopy(dir, manifest_json, files, is_present), why.empty()) << why;
  return why;
}

std::string Why(const std::string& dir, const std::string& manifest_json,
                const std::vector<std::string>& files) {
  return Why(dir, &manifest_json, files);
}

// The files of a whole sstable `prefix` in `in` ("" or ".t_idx"):
// the required components and the optional ones.
std::vector<std::string> SSTable(const std::string& prefix, const std::string& in = "",
                                 const std::vector<std::string>& components = {
                                     "Data.db", "Index.db", "Statistics.db", "TOC.txt",
                                     "Summary.db", "Filter.db", "Digest.crc32"}) {
  std::vector<std::string> out;
  for (const std::string& c : components) {
    out.push_back(absl::StrCat(in, in.empty() ? "" : "/", prefix, "-", c));
  }
  return out;
}

std::vector<std::string> Without(std::vector<std::string> files, const std::string& gone) {
  files.erase(std::remove(files.begin(), files.end(), gone), files.end());
  return files;
}

std::vector<std::string> Plus(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

const char kManifest[] = R"({"files":["nb-1-big-Data.db",".t_idx/nb-1-big-Data.db"]})";

std::vector<std::string> WholeCopy() {
  return Plus(Plus(SSTable("nb-1-big"), SSTable("nb-1-big", ".t_idx")),
              {"manifest.json", "schema.cql"});
}

TEST(SnapshotIncompleteness, CompleteWhenEveryListedSSTableIsWhole) {
  EXPECT_EQ(Why(kCopy, kManifest, WholeCopy()), "");
  // Optional components are never waited for.
  EXPECT_EQ(Why(kCopy, kManifest,
                Plus(SSTable("nb-1-big", "", {"Data.db", "Index.db", "Statistics.db", "TOC.txt"}),
                     SSTable("nb-1-big", ".t_idx",
                             {"Data.db", "Index.db", "Statistics.db", "TOC.txt"}))),
            "");
  // What the manifest does not list is not its business (it may come and go).
  EXPECT_EQ(Why(kCopy, R"({"files":["nb-1-big-Data.db"]})",
                Plus(SSTable("nb-1-big"), {"nb-2-big-Data.db"})),
            "");
  // A snapshot of an empty table.
  EXPECT_EQ(Why(kCopy, R"({"files":[]})", {"manifest.json", "schema.cql"}), "");
  // Components only newer versions need.
  EXPECT_EQ(Why(kCopy, R"({"files":["la-1-big-Data.db"]})",
                SSTable("la-1-big", "", {"Data.db", "Index.db", "TOC.txt"})),
            "")
      << "Statistics.db is required from \"ma\" on only";
  EXPECT_EQ(Why(kCopy, R"({"files":["ks-t-ka-1-Data.db"]})",
                SSTable("ks-t-ka-1", "", {"Data.db", "Index.db", "TOC.txt"})),
            "");
  EXPECT_EQ(Why(kCopy, R"({"files":["da-1-bti-Data.db"]})",
                SSTable("da-1-bti", "", {"Data.db", "Partitions.db", "Statistics.db", "TOC.txt"})),
            "")
      << "bti has no Index.db";
}

struct IncompleteCase {
  const char* name;
  const char* manifest;  // null: no manifest.json
  std::vector<std::string> files;
  const char* reason;    // all of it
};

TEST(SnapshotIncompleteness, IncompleteCopiesSayWhatIsMissing) {
  const std::vector<IncompleteCase> cases = {
      {"a listed Data.db missing", R"({"files":["nb-1-big-Data.db","nb-2-big-Data.db"]})",
       SSTable("nb-1-big"), "manifest.json lists nb-2-big-Data.db, which is missing"},
      {"an index sstable's listed Data.db missing", kManifest,
       Without(WholeCopy(), ".t_idx/nb-1-big-Data.db"),
       "manifest.json lists .t_idx/nb-1-big-Data.db, which is missing"},
      {"Index.db (big format)", kManifest, Without(WholeCopy(), "nb-1-big-Index.db"),
       "nb-1-big-Index.db is missing"},
      {"an index sstable's Index.db", kManifest, Without(WholeCopy(), ".t_idx/nb-1-big-Index.db"),
       "nb-1-big-Index.db is missing"},
      {"TOC.txt (every version)", kManifest, Without(WholeCopy(), "nb-1-big-TOC.txt"),
       "nb-1-big-TOC.txt is missing"},
      {"Statistics.db from ma on", R"({"files":["ma-1-big-Data.db"]})",
       SSTable("ma-1-big", "", {"Data.db", "Index.db", "TOC.txt"}),
       "ma-1-big-Statistics.db is missing"},
      {"Partitions.db (bti)", R"({"files":["da-1-bti-Data.db"]})",
       SSTable("da-1-bti", "", {"Data.db", "Index.db", "Statistics.db", "TOC.txt", "Rows.db"}),
       "da-1-bti-Partitions.db is missing"},
      {"Statistics.db (bti)", R"({"files":["da-1-bti-Data.db"]})",
       SSTable("da-1-bti", "", {"Data.db", "Partitions.db", "TOC.txt"}),
       "da-1-bti-Statistics.db is missing"},
      {"manifest.json half written", R"({"files":["nb-1-big-Data.db",".t_id)", WholeCopy(),
       "manifest.json does not parse (still being written?)"},
      {"manifest.json empty", "", WholeCopy(),
       "manifest.json does not parse (still being written?)"},
      {"ephemeral", R"({"files":["nb-1-big-Data.db"],"ephemeral":true})", WholeCopy(),
       "ephemeral snapshot"},
      {"no manifest.json, a 2.1 sstable", nullptr, SSTable("ks-t-ka-1"),
       "no manifest.json (still being written?)"},
      {"no manifest.json, a newer sstable", nullptr, SSTable("nb-1-big"),
       "no manifest.json (still being written?)"},
      {"no manifest.json, nothing", nullptr, {"schema.cql"}, "no manifest.json and no sstable"},
  };
  for (const IncompleteCase& c : cases) {
    SCOPED_TRACE(c.name);
    std::string manifest = c.manifest == nullptr ? "" : c.manifest;
    EXPECT_EQ(Why(kCopy, c.manifest == nullptr ? nullptr : &manifest, c.files), c.reason);
  }
}

// 2.0 wrote no manifest.json: such a snapshot is judged by its sstables,
// every one of which must be a whole pre-2.1 one.
TEST(SnapshotIncompleteness, A20SnapshotIsJudgedByItsWholeSSTables) {
  const std::vector<std::string> whole =
      Plus(SSTable("Keyspace1-Standard1-jb-1"), SSTable("Keyspace1-Standard1.idx-jb-1"));
  EXPECT_EQ(Why(k20Copy, nullptr, whole), "");
  EXPECT_EQ(Why(k20Copy, nullptr, Without(whole, "Keyspace1-Standard1.idx-jb-1-Index.db")),
            "Keyspace1-Standard1.idx-jb-1-Index.db is missing");
  EXPECT_EQ(Why(k20Copy, nullptr, Without(whole, "Keyspace1-Standard1-jb-1-Data.db")),
            "Keyspace1-Standard1-jb-1-Data.db is missing");
  EXPECT_EQ(Why(k20Copy, nullptr, Without(whole, "Keyspace1-Standard1-jb-1-Statistics.db")), "")
      << "not required before ma";
  EXPECT_EQ(Why(k20Copy, nullptr, Plus(whole, SSTable("Keyspace1-Standard1-ka-2"))),
            "no manifest.json (still being written?)")
      << "a 2.1 sstable among them: 2.1 writes a manifest.json, wait for it";
}

// ---- Cassandra's own files (../shared/fixtures/cassandra-test-data) ----

// The names in `dir` (files only).
std::vector<std::string> Listing(const std::string& dir) {
  FileSystem& fs = *DefaultFileSystem();
  absl::StatusOr<std::vector<std::string>> names = fs.ListDir(dir);
  EXPECT_TRUE(names.ok()) << names.status();
  std::vector<std::string> files;
  if (!names.ok()) return files;
  for (const std::string& name : *names) {
    absl::StatusOr<FileStat> st = fs.Stat(JoinPath(dir, name));
    if (st.ok() && st->type == FileType::kRegular) files.push_back(name);
  }
  std::sort(files.begin(), files.end());
  return files;
}

// "<...>/<ks>/<table dir>/snapshots/<tag>" directories below `dir` that hold
// a manifest.json.
void FindSnapshotsWithManifest(const std::string& dir, std::vector<std::string>& found) {
  FileSystem& fs = *DefaultFileSystem();
  absl::StatusOr<std::vector<std::string>> names = fs.ListDir(dir);
  ASSERT_TRUE(names.ok()) << names.status();
  for (const std::string& name : *names) {
    const std::string path = JoinPath(dir, name);
    absl::StatusOr<FileStat> st = fs.Stat(path);
    if (!st.ok() || st->type != FileType::kDirectory) continue;
    if (absl::EndsWith(dir, "/snapshots") && fs.Stat(JoinPath(path, "manifest.json")).ok()) {
      found.push_back(path);
    }
    FindSnapshotsWithManifest(path, found);
  }
}

// The last `n` components of `path` ("ks/t/snapshots/tag" for 4).
std::string Tail(const std::string& path, int n) {
  size_t at = path.size();
  for (int i = 0; i < n; ++i) at = path.rfind('/', at - 1);
  return path.substr(at + 1);
}

// The real snapshots Cassandra 2.2 left (system.compactions_in_progress,
// one taken for the upgrade to 3.0): each complete as it is; without its
// manifest.json, not.
TEST(SnapshotIncompleteness, RealSnapshotsWithTheirManifestJson) {
  const std::string root = testing::SharedFixturesDir("cassandra-test-data");
  if (root.empty()) GTEST_SKIP() << "../shared/fixtures/cassandra-test-data is absent: nothing to check";
  std::vector<std::string> snapshots;
  FindSnapshotsWithManifest(absl::StrCat(root, "/migration-sstables"), snapshots);
  ASSERT_FALSE(snapshots.empty()) << "no snapshot with a manifest.json below "
                                  << root << "/migration-sstables";
  for (const std::string& snapshot : snapshots) {
    SCOPED_TRACE(snapshot);
    absl::StatusOr<std::string> manifest = DefaultFileSystem()->ReadFile(snapshot + "/manifest.json");
    ASSERT_TRUE(manifest.ok()) << manifest.status();
    const std::string copy_dir = Tail(snapshot, 4);
    const std::vector<std::string> files = Listing(snapshot);
    EXPECT_EQ(Why(copy_dir, *manifest, files), "");
    // manifest.json taken out of the listing: these hold nothing else.
    EXPECT_NE(Why(copy_dir, nullptr, Without(files, "manifest.json")), "");
  }
}

// Real sstables of each version, laid out as a snapshot of their table:
// complete with a manifest.json listing their Data.db (or, for 2.0's, none);
// each required component taken out of the listing in turn, incomplete and
// named; any other one taken out, still complete.
TEST(SnapshotIncompleteness, RealSSTablesOfEachVersion) {
  const std::string root = testing::SharedFixturesDir("cassandra-test-data");
  if (root.empty()) GTEST_SKIP() << "../shared/fixtures/cassandra-test-data is absent: nothing to check";
  // Version -> the components Cassandra cannot open it without.
  const std::map<std::string, std::set<std::string>> required = {
      {"jb", {"Data.db", "Index.db", "TOC.txt"}},
      {"ka", {"Data.db", "Index.db", "TOC.txt"}},
      {"la", {"Data.db", "Index.db", "TOC.txt"}},
      {"ma", {"Data.db", "Index.db", "Statistics.db", "TOC.txt"}},
      {"nb", {"Data.db", "Index.db", "Statistics.db", "TOC.txt"}},
      {"oa", {"Data.db", "Index.db", "Statistics.db", "TOC.txt"}},
      {"da", {"Data.db", "Partitions.db", "Statistics.db", "TOC.txt"}},
  };
  int checked = 0;
  for (const auto& [version, needed] : required) {
    const std::string table = absl::StrCat("legacy_", version, "_simple");
    const std::string dir = absl::StrCat(root, "/legacy-sstables/", version, "/legacy_tables/", table);
    if (!DefaultFileSystem()->Stat(dir).ok()) {
      ADD_FAILURE() << dir << " is missing from the fixtures";
      continue;
    }
    SCOPED_TRACE(dir);
    // Cassandra's own layout: a 2.0 table dir has no id; 2.x names start
    // with "<keyspace>-<table>".
    const std::string copy_dir =
        absl::StrCat("legacy_tables/", table,
                     version == "jb" ? "" : "-0094ac203e7411e59149ef9f87394ca6", "/snapshots/s1");
    const std::vector<std::string> files = Listing(dir);
    std::string listed;
    for (const std::string& file : files) {
      if (!absl::EndsWith(file, "-Data.db")) continue;
      absl::StrAppend(&listed, listed.empty() ? "" : ",", "\"", file, "\"");
    }
    ASSERT_FALSE(listed.empty()) << "no Data.db";
    const std::string manifest = absl::StrCat("{\"files\":[", listed, "]}");
    const std::string* manifest_json = version == "jb" ? nullptr : &manifest;
    EXPECT_EQ(Why(copy_dir, manifest_json, files), "");
    for (const std::string& file : files) {
      SCOPED_TRACE(file);
      const std::string component = file.substr(file.rfind('-') + 1);
      std::string why = Why(copy_dir, manifest_json, Without(files, file));
      if (needed.count(component) == 0) {
        EXPECT_EQ(why, "") << "not a required component";
      } else if (component == "Data.db" && manifest_json != nullptr) {
        EXPECT_EQ(why, absl::StrCat("manifest.json lists ", file, ", which is missing"));
      } else {
        EXPECT_EQ(why, absl::StrCat(file, " is missing"));
      }
    }
    ++checked;
  }
  EXPECT_EQ(checked, static_cast<int>(required.size()));
}

}  // namespace
}  // namespace snaphaven
