#include "snaphaven/cassandra/sstable_components.h"

#include <dirent.h>
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "snaphaven/testing/test_files.h"

namespace snaphaven {
namespace {

SSTableName Name(const std::string& file) {
  absl::optional<SSTableName> name = ParseSSTableName(file);
  EXPECT_TRUE(name.has_value()) << file;
  return name.value_or(SSTableName());
}

// Whether the sstable made of `components` is whole, given its TOC text.
SSTableCompleteness Check(const std::string& prefix, std::set<std::string> components,
                          const std::string* toc) {
  return CheckSSTableComplete(Name(prefix + "-Data.db"), toc, [&](absl::string_view c) {
    return components.count(std::string(c)) > 0;
  });
}

const std::string kBigToc =
    "Data.db\nIndex.db\nStatistics.db\nSummary.db\nFilter.db\nCompressionInfo.db\n"
    "Digest.crc32\nTOC.txt\n";

TEST(RequiredComponents, PerFormatAndVersion) {
  EXPECT_EQ(RequiredComponents(Name("nb-1-big-Data.db"), nullptr),
            (std::vector<std::string>{"Data.db", "TOC.txt", "Index.db", "Statistics.db"}));
  EXPECT_EQ(RequiredComponents(Name("da-1-bti-Data.db"), nullptr),
            (std::vector<std::string>{"Data.db", "TOC.txt", "Partitions.db", "Statistics.db"}));
  // 2.x opens without Statistics.db (defaults).
  EXPECT_EQ(RequiredComponents(Name("ks-t-ka-1-Data.db"), nullptr),
            (std::vector<std::string>{"Data.db", "TOC.txt", "Index.db"}));
  EXPECT_EQ(RequiredComponents(Name("ks-t-jb-1-Data.db"), nullptr).size(), 3u);
  // Compressed: CompressionInfo.db, as the TOC says.
  EXPECT_EQ(RequiredComponents(Name("nb-1-big-Data.db"), &kBigToc).back(), "CompressionInfo.db");
}

TEST(CheckSSTableComplete, PrimaryComponentsAreRequiredTheRestIsNot) {
  std::set<std::string> all = {"Data.db",   "Index.db",           "Statistics.db", "Summary.db",
                               "Filter.db", "CompressionInfo.db", "Digest.crc32",  "TOC.txt"};
  EXPECT_TRUE(Check("nb-1-big", all, &kBigToc).whole());
  for (const char* optional : {"Summary.db", "Filter.db", "Digest.crc32"}) {
    std::set<std::string> fewer = all;
    fewer.erase(optional);
    EXPECT_TRUE(Check("nb-1-big", fewer, &kBigToc).whole()) << optional;
  }
  for (const char* required : {"Data.db", "Index.db", "Statistics.db", "CompressionInfo.db", "TOC.txt"}) {
    std::set<std::string> fewer = all;
    fewer.erase(required);
    SSTableCompleteness result = Check("nb-1-big", fewer, &kBigToc);
    EXPECT_EQ(result.missing, absl::StrCat("nb-1-big-", required, " is missing"));
  }
  // BTI: Partitions.db is needed, Rows.db is opened only when present.
  std::set<std::string> bti = {"Data.db", "Partitions.db", "Statistics.db", "TOC.txt"};
  EXPECT_TRUE(Check("da-1-bti", bti, nullptr).whole());
  bti.erase("Partitions.db");
  EXPECT_FALSE(Check("da-1-bti", bti, nullptr).whole());
}

// Index builds append to the TOC that snapshots and backups share through a
// hard link (SAI in 5.0; an index with no values writes only ColumnComplete):
// the listed index files never come, and must not hold anything back.
TEST(CheckSSTableComplete, IndexComponentsAppendedToTheTocAreNotWaitedFor) {
  std::string toc = kBigToc +
                    "SAI+aa+idx+Meta.db\nSAI+aa+idx+TermsData.db\nSAI+aa+idx+PostingLists.db\n"
                    "SAI+aa+idx+ColumnComplete.db\nSAI+aa+GroupComplete.db\n";
  std::set<std::string> files = {"Data.db", "Index.db", "Statistics.db", "CompressionInfo.db",
                                 "TOC.txt", "SAI+aa+idx+ColumnComplete.db"};
  SSTableCompleteness result = Check("oa-3-big", files, &toc);
  EXPECT_TRUE(result.whole()) << result.missing;
  EXPECT_EQ(result.warning, "");
}

// SASI on 3.11.14+/4.0.5+ can leave a TOC holding only "SI_<index>.db": it
// tells nothing, so the files on disk are trusted, with a warning.
TEST(CheckSSTableComplete, ATocThatDoesNotListDataIsNotTrusted) {
  std::string toc = "SI_users_idx.db\n";
  std::set<std::string> files = {"Data.db", "Index.db", "Statistics.db", "TOC.txt",
                                 "SI_users_idx.db"};
  SSTableCompleteness result = Check("md-2-big", files, &toc);
  EXPECT_TRUE(result.whole()) << result.missing;
  EXPECT_NE(result.warning.find("does not list Data.db"), std::string::npos) << result.warning;
  files.erase("Index.db");
  EXPECT_EQ(Check("md-2-big", files, &toc).missing, "md-2-big-Index.db is missing");
}

// Every sstable Cassandra itself wrote, 2.0 to 5.0, is whole by the rule:
// each version's required components are there in its own test data.
TEST(CheckSSTableComplete, EveryRealSSTableOfEveryVersionIsWhole) {
  const std::string root = testing::SharedFixturesDir("cassandra-test-data");
  if (root.empty()) GTEST_SKIP() << "../shared/fixtures/cassandra-test-data is absent: nothing to check";
  std::map<std::string, int> whole_per_version;
  int with_missing_listed_summary = 0;
  std::vector<std::string> dirs;
  for (const char* group : {"legacy-sstables", "migration-sstables"}) {
    // Every directory holding a file named *-Data.db, found with find(1)'s
    // equivalent: a small recursive listing.
    std::vector<std::string> pending = {absl::StrCat(root, "/", group)};
    while (!pending.empty()) {
      std::string dir = pending.back();
      pending.pop_back();
      DIR* d = opendir(dir.c_str());
      ASSERT_NE(d, nullptr) << dir;
      bool has_data = false;
      while (dirent* e = readdir(d)) {
        std::string name = e->d_name;
        if (name == "." || name == "..") continue;
        if (e->d_type == DT_DIR) pending.push_back(absl::StrCat(dir, "/", name));
        if (name.size() > 8 && name.substr(name.size() - 8) == "-Data.db") has_data = true;
      }
      closedir(d);
      if (has_data) dirs.push_back(dir);
    }
  }
  ASSERT_GT(dirs.size(), 100u);
  for (const std::string& dir : dirs) {
    // The directory's files grouped by sstable, with the names read as the
    // node would (keyspace and table from the fixture's folders).
    std::map<std::string, std::set<std::string>> sstables;
    std::map<std::string, SSTableName> names;
    DIR* d = opendir(dir.c_str());
    while (dirent* e = readdir(d)) {
      std::string file = e->d_name;
      if (e->d_type != DT_REG) continue;
      absl::optional<SSTableName> name = ParseSSTableName(file);
      if (!name.has_value() || name->temporary) continue;
      sstables[name->prefix].insert(name->component);
      names[name->prefix] = *name;
    }
    closedir(d);
    for (const auto& [prefix, components] : sstables) {
      SCOPED_TRACE(absl::StrCat(dir, "/", prefix));
      std::ifstream in(absl::StrCat(dir, "/", prefix, "-TOC.txt"));
      std::stringstream toc;
      toc << in.rdbuf();
      std::string toc_text = toc.str();
      SSTableCompleteness result = CheckSSTableComplete(
          names[prefix], &toc_text,
          [&](absl::string_view c) { return components.count(std::string(c)) > 0; });
      if (names[prefix].version == "ic") continue;  // 1.2: only "must not crash"
      EXPECT_TRUE(result.whole()) << result.missing;
      EXPECT_EQ(result.warning, "");
      ++whole_per_version[names[prefix].version];
      if (toc_text.find("Summary.db") != std::string::npos && !components.count("Summary.db")) {
        ++with_missing_listed_summary;
      }
    }
  }
  for (const char* version : {"jb", "ka", "la", "ma", "mb", "mc", "md", "me", "na", "nb", "nc",
                              "oa", "da"}) {
    EXPECT_GT(whole_per_version[version], 0) << version;
  }
  // legacy_ka_with_illegal_cell_names*: the TOC lists a Summary.db that
  // Cassandra never wrote. Before this rule they were never copied.
  EXPECT_GE(with_missing_listed_summary, 1);
}

}  // namespace
}  // namespace snaphaven
