#include "snaphaven/ops/lister.h"

#include <sys/stat.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "snaphaven/storage/file_system.h"
#include "snaphaven/state/manifest.h"
#include "snaphaven/testing/test_files.h"

namespace snaphaven {
namespace {

constexpr char kTable[] = "ks1/users-0123456789abcdef0123456789abcdef";

class ListerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string dir = testing::MakeTempDir("lister");
    dest_ = dir + "/dest";
    root_ = dir + "/data";
    std::filesystem::create_directories(dest_ + "/.snaphaven");
    std::filesystem::create_directories(root_);
  }

  static std::string Unit(const std::string& tag) {
    return absl::StrCat(kTable, "/snapshots/", tag);
  }

  // Records `rel` (below the tag directory) as copied; manifest.json's text
  // is written at the destination too.
  void Put(const std::string& tag, const std::string& rel, const std::string& text = "x") {
    const std::string path = absl::StrCat(Unit(tag), "/", rel);
    manifest_.Put(path, ManifestEntry{static_cast<int64_t>(text.size()), 1, 0644, 1,
                                      ++next_ino_});
    std::filesystem::create_directories(std::filesystem::path(dest_ + "/" + path).parent_path());
    ASSERT_TRUE(DefaultFileSystem()->WriteFileAtomically(dest_ + "/" + path, text).ok());
  }

  // A whole "nb" sstable (generation `gen`) in `dir` ("" or ".idx/").
  void PutSSTable(const std::string& tag, int gen, const std::string& dir = "") {
    for (const char* component : {"Data.db", "Index.db", "TOC.txt", "Statistics.db",
                                  "Summary.db", "Filter.db"}) {
      Put(tag, absl::StrCat(dir, "nb-", gen, "-big-", component));
    }
  }

  void PutManifestJson(const std::string& tag, const std::vector<std::string>& files) {
    Put(tag, "manifest.json", nlohmann::json({{"files", files}}).dump());
  }

  void MakeSourceSnapshot(const std::string& tag) {
    std::filesystem::create_directories(root_ + "/" + Unit(tag));
  }

  std::vector<SnapshotCopy> List(const std::vector<std::string>& roots) {
    absl::StatusOr<std::vector<SnapshotCopy>> copies =
        ListSnapshotCopies(*DefaultFileSystem(), manifest_, dest_, {}, roots);
    EXPECT_TRUE(copies.ok()) << copies.status();
    return copies.ok() ? *std::move(copies) : std::vector<SnapshotCopy>();
  }

  static const SnapshotCopy& Find(const std::vector<SnapshotCopy>& copies, const std::string& tag) {
    for (const SnapshotCopy& c : copies) {
      if (c.tag == tag) return c;
    }
    ADD_FAILURE() << "no copy " << tag;
    static SnapshotCopy none;
    return none;
  }

  // The COMPLETE column of `tag`'s line in the table.
  static std::string CompleteColumn(const std::string& table, const std::string& tag) {
    for (absl::string_view line : absl::StrSplit(table, '\n')) {
      std::vector<absl::string_view> fields = absl::StrSplit(line, ' ', absl::SkipEmpty());
      if (fields.size() >= 6 && fields[2] == tag) {
        std::string column(fields[5]);
        for (size_t i = 6; i < fields.size(); ++i) absl::StrAppend(&column, " ", fields[i]);
        return column;
      }
    }
    return "<no line for " + tag + ">";
  }

  Manifest manifest_;
  std::string dest_, root_;
  uint64_t next_ino_ = 0;
};

TEST_F(ListerTest, APartialCopyShowsWhetherItsSnapshotIsGoneFromTheSource) {
  PutSSTable("whole", 1);
  PutManifestJson("whole", {"nb-1-big-Data.db"});
  // "partial": manifest.json lists two sstables, one was never copied.
  PutSSTable("partial", 1);
  PutManifestJson("partial", {"nb-1-big-Data.db", "nb-2-big-Data.db"});
  MakeSourceSnapshot("whole");
  MakeSourceSnapshot("partial");

  std::vector<SnapshotCopy> copies = List({root_});
  ASSERT_EQ(copies.size(), 2u);
  EXPECT_TRUE(Find(copies, "whole").complete);
  EXPECT_FALSE(Find(copies, "partial").complete);
  EXPECT_EQ(Find(copies, "partial").source_gone, absl::optional<bool>(false));
  std::string table = FormatSnapshotTable(copies);
  EXPECT_EQ(CompleteColumn(table, "whole"), "yes") << table;
  EXPECT_EQ(CompleteColumn(table, "partial"), "no") << table;

  // Cassandra cleared it: it will never be completed.
  std::filesystem::remove_all(root_ + "/" + Unit("partial"));
  copies = List({root_});
  EXPECT_EQ(Find(copies, "partial").source_gone, absl::optional<bool>(true));
  EXPECT_EQ(Find(copies, "whole").source_gone, absl::optional<bool>(false));
  table = FormatSnapshotTable(copies);
  EXPECT_EQ(CompleteColumn(table, "partial"), "no (source gone)") << table;
  EXPECT_EQ(CompleteColumn(table, "whole"), "yes") << table;
  nlohmann::json json = nlohmann::json::parse(FormatSnapshotJson(copies));
  ASSERT_EQ(json.size(), 2u);
  for (const auto& c : json) {
    if (c["tag"] == "partial") {
      EXPECT_EQ(c["complete"], false);
      EXPECT_EQ(c["source_gone"], true);
    } else {
      EXPECT_EQ(c["complete"], true);
      EXPECT_EQ(c["source_gone"], false);
    }
  }

  // Also gone when another root lacks the table altogether, or is missing.
  copies = List({root_ + "/nonexistent", root_});
  EXPECT_EQ(Find(copies, "partial").source_gone, absl::optional<bool>(true));

  // No data root to read: unknown, never "gone".
  for (const std::vector<std::string>& roots :
       {std::vector<std::string>{}, std::vector<std::string>{root_ + "/nonexistent"}}) {
    copies = List(roots);
    EXPECT_EQ(Find(copies, "partial").source_gone, absl::nullopt);
    table = FormatSnapshotTable(copies);
    EXPECT_EQ(CompleteColumn(table, "partial"), "no") << table;
    json = nlohmann::json::parse(FormatSnapshotJson(copies));
    for (const auto& c : json) EXPECT_TRUE(c["source_gone"].is_null()) << c;
  }
}

TEST_F(ListerTest, ASnapshotInAnyRootIsStillAtTheSource) {
  PutSSTable("s", 1);
  PutManifestJson("s", {"nb-1-big-Data.db", "nb-2-big-Data.db"});
  const std::string other = root_ + "2";
  std::filesystem::create_directories(other + "/" + Unit("s"));
  std::vector<SnapshotCopy> copies = List({root_, other});
  EXPECT_EQ(Find(copies, "s").source_gone, absl::optional<bool>(false));
}

TEST_F(ListerTest, EverySSTableListedMustHaveItsRequiredComponents) {
  // Data.db there, Statistics.db (required from "ma" on) not.
  for (const char* component : {"Data.db", "Index.db", "TOC.txt"}) {
    Put("no_stats", absl::StrCat("nb-1-big-", component));
  }
  PutManifestJson("no_stats", {"nb-1-big-Data.db"});
  // An index sstable in .idx/, whole.
  PutSSTable("with_index", 1);
  PutSSTable("with_index", 1, ".users_idx/");
  PutManifestJson("with_index", {"nb-1-big-Data.db", ".users_idx/nb-1-big-Data.db"});
  // The same, its index sstable without TOC.txt.
  PutSSTable("index_torn", 1);
  for (const char* component : {"Data.db", "Index.db", "Statistics.db"}) {
    Put("index_torn", absl::StrCat(".users_idx/nb-1-big-", component));
  }
  PutManifestJson("index_torn", {"nb-1-big-Data.db", ".users_idx/nb-1-big-Data.db"});
  // Ephemeral, and a manifest.json that does not parse.
  PutSSTable("ephemeral", 1);
  Put("ephemeral", "manifest.json", R"({"files":["nb-1-big-Data.db"],"ephemeral":true})");
  PutSSTable("torn_json", 1);
  Put("torn_json", "manifest.json", R"({"files":["nb-1-big-)");
  // A 4.x copy without manifest.json.
  PutSSTable("no_json", 1);

  std::vector<SnapshotCopy> copies = List({root_});
  EXPECT_FALSE(Find(copies, "no_stats").complete);
  EXPECT_TRUE(Find(copies, "with_index").complete);
  EXPECT_FALSE(Find(copies, "index_torn").complete);
  EXPECT_FALSE(Find(copies, "ephemeral").complete);
  EXPECT_FALSE(Find(copies, "torn_json").complete);
  EXPECT_FALSE(Find(copies, "no_json").complete);
  // None is at the source (the root is there): all gone.
  for (const SnapshotCopy& c : copies) {
    EXPECT_EQ(c.source_gone, absl::optional<bool>(true)) << c.tag;
  }
}

TEST_F(ListerTest, A20CopyWithoutManifestJsonIsCompleteWhenItsSSTablesAreWhole) {
  // Cassandra 2.0 wrote no manifest.json; "jb" needs Data, Index and TOC.
  for (const char* component : {"Data.db", "Index.db", "TOC.txt", "Filter.db"}) {
    Put("old", absl::StrCat("ks1-users-jb-1-", component));
    Put("old", absl::StrCat("ks1-users-jb-2-", component));
    Put("old", absl::StrCat(".users_idx/ks1-users.users_idx-jb-1-", component));
  }
  for (const char* component : {"Data.db", "TOC.txt"}) {
    Put("old_torn", absl::StrCat("ks1-users-jb-1-", component));  // no Index.db
  }
  // A 2.1 ("ka") sstable among them: 2.1 wrote manifest.json.
  for (const char* component : {"Data.db", "Index.db", "TOC.txt"}) {
    Put("mixed", absl::StrCat("ks1-users-jb-1-", component));
    Put("mixed", absl::StrCat("ks1-users-ka-2-", component));
  }
  Put("no_sstable", "schema.cql");

  std::vector<SnapshotCopy> copies = List({root_});
  EXPECT_TRUE(Find(copies, "old").complete);
  EXPECT_FALSE(Find(copies, "old_torn").complete);
  EXPECT_FALSE(Find(copies, "mixed").complete);
  EXPECT_FALSE(Find(copies, "no_sstable").complete);
  EXPECT_EQ(CompleteColumn(FormatSnapshotTable(copies), "old"), "yes");
  EXPECT_EQ(CompleteColumn(FormatSnapshotTable(copies), "old_torn"), "no (source gone)");
}

TEST_F(ListerTest, PresentMeansRecordedInTheManifest) {
  PutSSTable("s", 1);
  PutManifestJson("s", {"nb-1-big-Data.db"});
  EXPECT_TRUE(Find(List({}), "s").complete);
  // A file at the destination the manifest does not record is not there.
  manifest_.Erase(Unit("s") + "/nb-1-big-TOC.txt");
  EXPECT_FALSE(Find(List({}), "s").complete);
}

TEST_F(ListerTest, TheRootsAreTheRecordedOnesElseTheGivenOnes) {
  FileSystem& fs = *DefaultFileSystem();
  const std::vector<std::string> given = {"/given"};
  EXPECT_EQ(ListingDataRoots(fs, dest_, given), given);
  const std::string node = dest_ + "/.snaphaven/node";
  ASSERT_TRUE(fs.WriteFileAtomically(node, "host h1\nroots /a,/b\n").ok());
  EXPECT_EQ(ListingDataRoots(fs, dest_, given), (std::vector<std::string>{"/a", "/b"}));
  // An old record without roots, and garbage: the given ones.
  ASSERT_TRUE(fs.WriteFileAtomically(node, "host h1\n").ok());
  EXPECT_EQ(ListingDataRoots(fs, dest_, given), given);
  ASSERT_TRUE(fs.WriteFileAtomically(node, "garbage").ok());
  EXPECT_EQ(ListingDataRoots(fs, dest_, given), given);
}

}  // namespace
}  // namespace snaphaven
