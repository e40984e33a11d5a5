#include "tools/tree_generator.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

namespace snaphaven::tools {
namespace {

const std::set<std::string> kBigComponents = {"Data.db",
                                              "Index.db",
                                              "Summary.db",
                                              "Filter.db",
                                              "CompressionInfo.db",
                                              "Statistics.db",
                                              "Digest.crc32",
                                              "TOC.txt"};

// A fresh directory per test under $TEST_TMPDIR (Bazel cleans it up).
std::string MakeTestDir() {
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string base = tmp != nullptr ? tmp : "/tmp";
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string dir =
      absl::StrCat(base, "/", info->test_suite_name(), "_", info->name());
  std::string rm = absl::StrCat("rm -rf '", dir, "'");
  EXPECT_EQ(std::system(rm.c_str()), 0);
  return dir;
}

std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return names;
  while (const dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<std::string> ListFiles(const std::string& dir) {
  std::vector<std::string> files;
  for (const std::string& name : ListDir(dir)) {
    struct stat st;
    if (::lstat((dir + "/" + name).c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      files.push_back(name);
    }
  }
  return files;
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

struct stat Stat(const std::string& path) {
  struct stat st = {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
  return st;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

uint32_t Crc32(const std::string& bytes) {
  return static_cast<uint32_t>(
      crc32(0L, reinterpret_cast<const Bytef*>(bytes.data()),
            static_cast<uInt>(bytes.size())));
}

// The table dirs of a keyspace, by table name ("users" -> "users-<id>").
std::map<std::string, std::string> TableDirs(const std::string& ks_dir) {
  std::map<std::string, std::string> dirs;
  for (const std::string& name : ListDir(ks_dir)) {
    dirs[name.substr(0, name.find('-'))] = ks_dir + "/" + name;
  }
  return dirs;
}

// The strings of the manifest's "files" array.
std::vector<std::string> ManifestFiles(const std::string& json) {
  std::smatch m;
  EXPECT_TRUE(std::regex_search(
      json, m, std::regex(R"re("files"\s*:\s*\[([^\]]*)\])re")))
      << json;
  std::vector<std::string> files;
  const std::string list = m[1];
  const std::regex quoted(R"re("([^"]*)")re");
  for (auto it = std::sregex_iterator(list.begin(), list.end(), quoted);
       it != std::sregex_iterator(); ++it) {
    // 2.1's json-simple escapes '/'; no other escape occurs in these names.
    files.push_back(absl::StrReplaceAll((*it)[1].str(), {{"\\/", "/"}}));
  }
  return files;
}

uint32_t Adler32(const std::string& bytes) {
  return static_cast<uint32_t>(adler32(
      adler32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(bytes.data()),
      static_cast<uInt>(bytes.size())));
}

// Checks that one sstable has exactly `components` and that its TOC lists
// them.
void ExpectComponents(const std::string& dir, const std::string& prefix,
                      const std::set<std::string>& components) {
  std::set<std::string> on_disk;
  for (const std::string& file : ListFiles(dir)) {
    if (absl::StartsWith(file, prefix))
      on_disk.insert(file.substr(prefix.size()));
  }
  EXPECT_EQ(on_disk, components) << dir << "/" << prefix;

  const std::string toc = ReadFile(dir + "/" + prefix + "TOC.txt");
  EXPECT_TRUE(absl::EndsWith(toc, "\n"));
  std::vector<std::string> lines = absl::StrSplit(toc, '\n', absl::SkipEmpty());
  EXPECT_EQ(std::set<std::string>(lines.begin(), lines.end()), components);
  EXPECT_EQ(lines.size(), components.size()) << "TOC lists a component twice";
}

// Checks that one sstable has exactly `components`, that its TOC lists them
// and that its digest matches its whole Data.db.
void ExpectCompleteSSTable(
    const std::string& dir, const std::string& prefix,
    const std::set<std::string>& components,
    const std::string& digest_component = "Digest.crc32") {
  ExpectComponents(dir, prefix, components);
  const std::string data = ReadFile(dir + "/" + prefix + "Data.db");
  const std::string digest = ReadFile(dir + "/" + prefix + digest_component);
  uint32_t expected =
      digest_component == "Digest.crc32" ? Crc32(data) : Adler32(data);
  EXPECT_EQ(digest, absl::StrCat(expected)) << "decimal, no newline";
}

TEST(TreeGeneratorTest, WritesCassandraLayout) {
  const std::string root = MakeTestDir() + "/data";
  TreeSpec spec;
  spec.keyspaces = {"ks1", "ks2"};
  spec.tables_per_keyspace = 3;
  spec.sstables_per_table = 2;
  spec.index_dirs_per_table = 1;
  spec.snapshot_tags = {"snap1", "weekly-2024"};
  spec.data_size = 10001;  // Not a multiple of 8: exercises the tail fill.
  ASSERT_TRUE(GenerateTree(root, spec).ok());

  EXPECT_EQ(ListDir(root), (std::vector<std::string>{"ks1", "ks2"}));
  const std::regex table_dir_re(R"(^\w+-[0-9a-f]{32}$)");
  std::set<std::string> ids;
  for (const std::string& ks : spec.keyspaces) {
    const std::vector<std::string> table_dirs = ListDir(root + "/" + ks);
    ASSERT_EQ(table_dirs.size(), 3u);
    std::set<std::string> names;
    for (const std::string& table_dir : table_dirs) {
      EXPECT_TRUE(std::regex_match(table_dir, table_dir_re)) << table_dir;
      names.insert(table_dir.substr(0, table_dir.find('-')));
      ids.insert(table_dir.substr(table_dir.find('-') + 1));
    }
    EXPECT_EQ(names, (std::set<std::string>{"users", "events", "t2"}));
  }
  EXPECT_EQ(ids.size(), 6u) << "table ids must be unique across keyspaces";

  const std::string users = TableDirs(root + "/ks1")["users"];
  EXPECT_EQ(
      ListDir(users),
      (std::vector<std::string>{
          ".users_idx0", "nb-1-big-CompressionInfo.db", "nb-1-big-Data.db",
          "nb-1-big-Digest.crc32", "nb-1-big-Filter.db", "nb-1-big-Index.db",
          "nb-1-big-Statistics.db", "nb-1-big-Summary.db", "nb-1-big-TOC.txt",
          "nb-2-big-CompressionInfo.db", "nb-2-big-Data.db",
          "nb-2-big-Digest.crc32", "nb-2-big-Filter.db", "nb-2-big-Index.db",
          "nb-2-big-Statistics.db", "nb-2-big-Summary.db", "nb-2-big-TOC.txt",
          "snapshots"}));
  for (const std::string& dir : {users, users + "/.users_idx0"}) {
    for (const std::string prefix : {"nb-1-big-", "nb-2-big-"}) {
      ExpectCompleteSSTable(dir, prefix, kBigComponents);
      EXPECT_EQ(Stat(dir + "/" + prefix + "Data.db").st_size, 10001);
      const off_t statistics =
          Stat(dir + "/" + prefix + "Statistics.db").st_size;
      EXPECT_GT(statistics, 100);
      EXPECT_LT(statistics, 8192);
    }
  }

  EXPECT_EQ(ListDir(users + "/snapshots"),
            (std::vector<std::string>{"snap1", "weekly-2024"}));
  for (const std::string& tag : spec.snapshot_tags) {
    const std::string snap = users + "/snapshots/" + tag;
    // Every live file, index ones included, is a hard link in the snapshot.
    for (const std::string& rel :
         {std::string(), std::string("/.users_idx0")}) {
      const std::vector<std::string> live = ListFiles(users + rel);
      ASSERT_EQ(live.size(), 16u);
      EXPECT_EQ(
          ListFiles(snap + rel).size(),
          live.size() + (rel.empty() ? 2 : 0));  // + manifest.json, schema.cql
      for (const std::string& file : live) {
        const struct stat a = Stat(users + rel + "/" + file);
        const struct stat b = Stat(snap + rel + "/" + file);
        EXPECT_EQ(a.st_ino, b.st_ino) << snap << rel << "/" << file;
        EXPECT_EQ(a.st_dev, b.st_dev);
        EXPECT_EQ(a.st_nlink, 3u) << "live + two snapshots";
      }
    }

    const std::string manifest = ReadFile(snap + "/manifest.json");
    EXPECT_EQ(ManifestFiles(manifest),
              (std::vector<std::string>{"nb-1-big-Data.db", "nb-2-big-Data.db",
                                        ".users_idx0/nb-1-big-Data.db",
                                        ".users_idx0/nb-2-big-Data.db"}));
    EXPECT_TRUE(std::regex_search(
        manifest,
        std::regex(
            R"re("created_at"\s*:\s*"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")re")))
        << manifest;
    EXPECT_TRUE(std::regex_search(
        manifest, std::regex(R"re("expires_at"\s*:\s*null)re")));

    const std::string schema = ReadFile(snap + "/schema.cql");
    EXPECT_TRUE(
        absl::StrContains(schema, "CREATE TABLE IF NOT EXISTS ks1.users ("))
        << schema;
    EXPECT_TRUE(absl::StrContains(
        schema, "CREATE INDEX IF NOT EXISTS users_idx0 ON ks1.users"));
    // The id in schema.cql is the dir's id, dashed.
    const std::string id = users.substr(users.rfind('-') + 1);
    EXPECT_TRUE(absl::StrContains(
        schema, absl::StrCat("WITH ID = ", id.substr(0, 8), "-",
                             id.substr(8, 4), "-", id.substr(12, 4), "-",
                             id.substr(16, 4), "-", id.substr(20))));
  }
}

TEST(TreeGeneratorTest, IsDeterministicFromSeed) {
  const std::string dir = MakeTestDir();
  TreeSpec spec;
  spec.tables_per_keyspace = 1;
  spec.sstables_per_table = 1;
  spec.snapshot_tags = {};
  ASSERT_TRUE(GenerateTree(dir + "/a", spec).ok());
  ASSERT_TRUE(GenerateTree(dir + "/b", spec).ok());
  spec.seed = 2;
  ASSERT_TRUE(GenerateTree(dir + "/c", spec).ok());

  const std::string a = TableDirs(dir + "/a/ks1")["users"];
  const std::string b = TableDirs(dir + "/b/ks1")["users"];
  const std::string c = TableDirs(dir + "/c/ks1")["users"];
  EXPECT_EQ(a.substr(a.rfind('/')), b.substr(b.rfind('/')));
  EXPECT_NE(a.substr(a.rfind('/')), c.substr(c.rfind('/')));
  for (const std::string& component : kBigComponents) {
    EXPECT_EQ(ReadFile(a + "/nb-1-big-" + component),
              ReadFile(b + "/nb-1-big-" + component))
        << component;
  }
  EXPECT_NE(ReadFile(a + "/nb-1-big-Data.db"),
            ReadFile(c + "/nb-1-big-Data.db"));
}

TEST(TreeGeneratorTest, LargeDataFileSpansChunks) {
  const std::string root = MakeTestDir();
  TreeSpec spec;
  spec.tables_per_keyspace = 1;
  spec.sstables_per_table = 1;
  spec.data_size = (int64_t{2} << 20) + 3;
  ASSERT_TRUE(GenerateTree(root, spec).ok());
  const std::string users = TableDirs(root + "/ks1")["users"];
  EXPECT_EQ(Stat(users + "/nb-1-big-Data.db").st_size, spec.data_size);
  ExpectCompleteSSTable(users, "nb-1-big-", kBigComponents);
  // Chunks must not repeat: real compressed data does not.
  const std::string data = ReadFile(users + "/nb-1-big-Data.db");
  EXPECT_NE(data.substr(0, 4096), data.substr(1 << 20, 4096));
}

TEST(TreeGeneratorTest, WithoutLiveSSTablesSnapshotsHoldTheOnlyLinks) {
  const std::string root = MakeTestDir();
  TreeSpec spec;
  spec.tables_per_keyspace = 1;
  spec.index_dirs_per_table = 1;
  spec.write_live_sstables = false;
  ASSERT_TRUE(GenerateTree(root, spec).ok());
  const std::string users = TableDirs(root + "/ks1")["users"];
  EXPECT_TRUE(ListFiles(users).empty());
  EXPECT_TRUE(ListFiles(users + "/.users_idx0").empty());
  const std::string snap = users + "/snapshots/snap1";
  for (const std::string& dir : {snap, snap + "/.users_idx0"}) {
    for (const std::string& file : ListFiles(dir)) {
      EXPECT_EQ(Stat(dir + "/" + file).st_nlink, 1u) << dir << "/" << file;
    }
  }
  ExpectCompleteSSTable(snap, "nb-3-big-", kBigComponents);
  EXPECT_EQ(ManifestFiles(ReadFile(snap + "/manifest.json")).size(), 6u);

  // The next flush must not reuse a generation that lives on in a snapshot.
  ASSERT_TRUE(FlushNewSSTables(root, {"ks1"}, 100, 9).ok());
  ExpectCompleteSSTable(users, "nb-4-big-", kBigComponents);
  ExpectCompleteSSTable(users + "/.users_idx0", "nb-4-big-", kBigComponents);
  EXPECT_FALSE(Exists(users + "/nb-1-big-Data.db"));
}

TEST(TreeGeneratorTest, TakeSnapshotLinksCurrentLiveSSTables) {
  const std::string root = MakeTestDir();
  TreeSpec spec;
  spec.keyspaces = {"ks1", "ks2"};
  spec.index_dirs_per_table = 1;
  spec.snapshot_tags = {};
  ASSERT_TRUE(GenerateTree(root, spec).ok());
  ASSERT_TRUE(TakeSnapshot(root, {"ks1"}, "manual-1").ok());

  for (const auto& [name, table] : TableDirs(root + "/ks1")) {
    const std::string snap = table + "/snapshots/manual-1";
    for (const std::string& rel : {std::string(), "/." + name + "_idx0"}) {
      for (const std::string& file : ListFiles(table + rel)) {
        EXPECT_EQ(Stat(table + rel + "/" + file).st_ino,
                  Stat(snap + rel + "/" + file).st_ino);
      }
    }
    EXPECT_EQ(ManifestFiles(ReadFile(snap + "/manifest.json")).size(), 6u);
    EXPECT_TRUE(Exists(snap + "/schema.cql"));
  }
  // Only the keyspaces asked for.
  for (const auto& [name, table] : TableDirs(root + "/ks2")) {
    EXPECT_FALSE(Exists(table + "/snapshots")) << table;
  }

  // A tag is never reused; unknown keyspaces are an error.
  EXPECT_TRUE(absl::IsAlreadyExists(TakeSnapshot(root, {"ks1"}, "manual-1")));
  EXPECT_TRUE(absl::IsNotFound(TakeSnapshot(root, {"nope"}, "manual-2")));
  EXPECT_TRUE(absl::IsInvalidArgument(TakeSnapshot(root, {"ks1"}, "a/b")));
}

TEST(TreeGeneratorTest, FlushThenSnapshotSeesTheNewGeneration) {
  const std::string root = MakeTestDir();
  TreeSpec spec;
  spec.tables_per_keyspace = 1;
  spec.sstables_per_table = 2;
  ASSERT_TRUE(GenerateTree(root, spec).ok());
  ASSERT_TRUE(FlushNewSSTables(root, {"ks1"}, 5000, 42).ok());
  const std::string users = TableDirs(root + "/ks1")["users"];
  ExpectCompleteSSTable(users, "nb-3-big-", kBigComponents);
  EXPECT_EQ(Stat(users + "/nb-3-big-Data.db").st_size, 5000);
  EXPECT_EQ(Stat(users + "/nb-3-big-Data.db").st_nlink, 1u);

  ASSERT_TRUE(TakeSnapshot(root, {"ks1"}, "snap2").ok());
  EXPECT_EQ(ManifestFiles(ReadFile(users + "/snapshots/snap1/manifest.json")),
            (std::vector<std::string>{"nb-1-big-Data.db", "nb-2-big-Data.db"}));
  EXPECT_EQ(ManifestFiles(ReadFile(users + "/snapshots/snap2/manifest.json")),
            (std::vector<std::string>{"nb-1-big-Data.db", "nb-2-big-Data.db",
                                      "nb-3-big-Data.db"}));
  EXPECT_EQ(Stat(users + "/nb-1-big-Data.db").st_nlink, 3u);
  EXPECT_EQ(Stat(users + "/nb-3-big-Data.db").st_nlink, 2u);

  ASSERT_TRUE(FlushNewSSTables(root, {"ks1"}, 10, 43).ok());
  EXPECT_TRUE(Exists(users + "/nb-4-big-TOC.txt"));
}

TEST(TreeGeneratorTest, OtherVersions) {
  const std::string root = MakeTestDir();
  TreeSpec spec;
  spec.tables_per_keyspace = 1;
  spec.sstables_per_table = 1;
  spec.version = "lb";
  ASSERT_TRUE(GenerateTree(root + "/lb", spec).ok());
  const std::string lb = TableDirs(root + "/lb/ks1")["users"];
  std::set<std::string> lb_components = kBigComponents;
  lb_components.erase("Digest.crc32");
  lb_components.insert("Digest.adler32");
  ExpectCompleteSSTable(lb, "lb-1-big-", lb_components, "Digest.adler32");
  EXPECT_FALSE(Exists(lb + "/snapshots/snap1/schema.cql"))
      << "2.2 wrote no schema.cql";
  // A flush keeps the table's version.
  ASSERT_TRUE(FlushNewSSTables(root + "/lb", {"ks1"}, 10, 1).ok());
  ExpectCompleteSSTable(lb, "lb-2-big-", lb_components, "Digest.adler32");

  spec.version = "da";
  spec.compressed = false;  // Only "ka" has uncompressed sstables.
  ASSERT_TRUE(GenerateTree(root + "/da", spec).ok());
  const std::string da = TableDirs(root + "/da/ks1")["users"];
  ExpectCompleteSSTable(
      da, "da-1-bti-",
      {"Data.db", "Partitions.db", "Rows.db", "Filter.db", "CompressionInfo.db",
       "Statistics.db", "Digest.crc32", "TOC.txt"});
}

TEST(TreeGeneratorTest, RejectsBadInput) {
  const std::string root = MakeTestDir();
  TreeSpec spec;
  spec.keyspaces = {"bad-name"};
  EXPECT_TRUE(absl::IsInvalidArgument(GenerateTree(root, spec)));
  spec = TreeSpec();
  spec.version = "jb";  // 2.0: not generated (ka, 2.1, is)
  EXPECT_TRUE(absl::IsInvalidArgument(GenerateTree(root, spec)));
  spec.version = "KA";
  EXPECT_TRUE(absl::IsInvalidArgument(GenerateTree(root, spec)));
  spec = TreeSpec();
  spec.snapshot_tags = {"x", "x"};
  EXPECT_TRUE(absl::IsInvalidArgument(GenerateTree(root, spec)));

  // Never overwrite: a rewritten file would change the snapshots linked to it.
  spec = TreeSpec();
  ASSERT_TRUE(GenerateTree(root, spec).ok());
  const absl::Status again = GenerateTree(root, spec);
  EXPECT_TRUE(absl::IsAlreadyExists(again)) << again;
  EXPECT_TRUE(absl::StrContains(again.message(), root))
      << "error names the path: " << again;

  // A file where a directory of the data root should be.
  EXPECT_EQ(std::system(absl::StrCat("touch '", root, "/blocker'").c_str()), 0);
  EXPECT_FALSE(GenerateTree(root + "/blocker/data", TreeSpec()).ok());
}

// ---- Cassandra 2.1 ("ka") sstables ----

const std::set<std::string> kKaCompressedComponents = {
    "Data.db",       "Index.db",   "Filter.db",   "CompressionInfo.db",
    "Statistics.db", "Summary.db", "Digest.sha1", "TOC.txt"};
const std::set<std::string> kKaUncompressedComponents = {
    "Data.db",       "Index.db",   "Filter.db",   "CRC.db",
    "Statistics.db", "Summary.db", "Digest.sha1", "TOC.txt"};

// Reads what Java's DataOutputStream writes (big-endian). Reading past the
// end sets `failed` and yields zeros.
class JavaDataInput {
 public:
  explicit JavaDataInput(const std::string& bytes) : bytes_(bytes) {}

  uint64_t ReadBigEndian(int size) {
    if (pos_ + size > bytes_.size()) {
      failed = true;
      pos_ = bytes_.size();
      return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < size; ++i)
      v = (v << 8) | static_cast<unsigned char>(bytes_[pos_++]);
    return v;
  }
  int32_t ReadInt() { return static_cast<int32_t>(ReadBigEndian(4)); }
  int64_t ReadLong() { return static_cast<int64_t>(ReadBigEndian(8)); }
  // readUTF: unsigned 2-byte length, then (here ASCII) bytes.
  std::string ReadUTF() {
    const size_t n = ReadBigEndian(2);
    if (pos_ + n > bytes_.size()) {
      failed = true;
      return "";
    }
    std::string s = bytes_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  bool AtEnd() const { return pos_ == bytes_.size(); }

  bool failed = false;

 private:
  const std::string& bytes_;
  size_t pos_ = 0;
};

// 2.1's CompressionInfo.db (CompressionMetadata.Writer).
struct CompressionInfo {
  std::string compressor;
  std::map<std::string, std::string> options;
  int32_t chunk_length = 0;
  int64_t data_length = 0;  // uncompressed
  std::vector<int64_t> offsets;
};

CompressionInfo ParseCompressionInfo(const std::string& bytes) {
  JavaDataInput in(bytes);
  CompressionInfo info;
  info.compressor = in.ReadUTF();
  const int32_t option_count = in.ReadInt();
  for (int32_t i = 0; i < option_count && !in.failed; ++i) {
    std::string key = in.ReadUTF();
    info.options[key] = in.ReadUTF();
  }
  info.chunk_length = in.ReadInt();
  info.data_length = in.ReadLong();
  const int32_t chunk_count = in.ReadInt();
  for (int32_t i = 0; i < chunk_count && !in.failed; ++i)
    info.offsets.push_back(in.ReadLong());
  EXPECT_FALSE(in.failed) << "CompressionInfo.db is truncated";
  EXPECT_TRUE(in.AtEnd()) << "CompressionInfo.db has trailing bytes";
  return info;
}

// Checks a compressed ka sstable: its CompressionInfo.db describes Data.db
// chunk by chunk (each chunk followed by the big-endian Adler-32 of its
// bytes), and Digest.sha1 is the Adler-32 of the chunks without their
// checksums, not of the whole file. Returns the chunk count.
size_t ExpectCompressedKaSSTable(const std::string& dir,
                                 const std::string& prefix) {
  ExpectComponents(dir, prefix, kKaCompressedComponents);
  const std::string data = ReadFile(dir + "/" + prefix + "Data.db");
  const CompressionInfo info =
      ParseCompressionInfo(ReadFile(dir + "/" + prefix + "CompressionInfo.db"));
  EXPECT_EQ(info.compressor, "LZ4Compressor");
  EXPECT_TRUE(info.options.empty());
  EXPECT_EQ(info.chunk_length, 65536);
  const size_t chunks = info.offsets.size();
  if (data.empty()) {
    EXPECT_EQ(chunks, 0u);
    EXPECT_EQ(info.data_length, 0);
  } else {
    EXPECT_GT(chunks, 0u);
    // Every chunk but the last stands for a whole chunk_length.
    EXPECT_GT(info.data_length, int64_t{65536} * (chunks - 1));
    EXPECT_LE(info.data_length, int64_t{65536} * chunks);
    EXPECT_EQ(info.offsets.front(), 0);
  }
  std::string compressed;  // the chunks without their checksums
  for (size_t i = 0; i < chunks; ++i) {
    const int64_t begin = info.offsets[i];
    // The last chunk (and its checksum) ends at the end of the file.
    const int64_t end = i + 1 < chunks ? info.offsets[i + 1]
                                       : static_cast<int64_t>(data.size());
    EXPECT_LT(begin, end) << "chunk offsets must increase";
    const int64_t length = end - begin - 4;
    if (length <= 0 || end > static_cast<int64_t>(data.size())) {
      ADD_FAILURE() << "chunk " << i << " of " << prefix << " is malformed";
      return chunks;
    }
    EXPECT_LE(length, 65536) << "chunk " << i;
    if (i + 1 < chunks) {
      EXPECT_GE(length, 65536 * 2 / 5) << "chunk " << i << ": 40% to 100%";
    }
    const std::string chunk = data.substr(begin, length);
    const std::string stored = data.substr(begin + length, 4);
    JavaDataInput checksum(stored);
    EXPECT_EQ(static_cast<uint32_t>(checksum.ReadInt()), Adler32(chunk))
        << "checksum of chunk " << i;
    compressed += chunk;
  }
  const std::string digest = ReadFile(dir + "/" + prefix + "Digest.sha1");
  EXPECT_EQ(digest, absl::StrCat(Adler32(compressed)))
      << "chunk-only Adler-32, decimal, no newline";
  if (!data.empty()) {
    EXPECT_NE(digest, absl::StrCat(Adler32(data)))
        << "2.1.2's digest never matches the whole file";
  }
  return chunks;
}

TEST(TreeGeneratorTest, KaCompressedSSTables) {
  const std::string root = MakeTestDir();
  TreeSpec spec;
  spec.version = "ka";
  spec.tables_per_keyspace = 1;
  spec.sstables_per_table = 2;
  spec.index_dirs_per_table = 1;
  spec.data_size = 200 * 1024 + 3;
  ASSERT_TRUE(GenerateTree(root + "/a", spec).ok());

  const std::string users = TableDirs(root + "/a/ks1")["users"];
  EXPECT_TRUE(std::regex_match(users.substr(users.rfind('/') + 1),
                               std::regex(R"(^users-[0-9a-f]{32}$)")))
      << users;
  EXPECT_EQ(ListDir(users),
            (std::vector<std::string>{
                ".users_idx0", "ks1-users-ka-1-CompressionInfo.db",
                "ks1-users-ka-1-Data.db", "ks1-users-ka-1-Digest.sha1",
                "ks1-users-ka-1-Filter.db", "ks1-users-ka-1-Index.db",
                "ks1-users-ka-1-Statistics.db", "ks1-users-ka-1-Summary.db",
                "ks1-users-ka-1-TOC.txt", "ks1-users-ka-2-CompressionInfo.db",
                "ks1-users-ka-2-Data.db", "ks1-users-ka-2-Digest.sha1",
                "ks1-users-ka-2-Filter.db", "ks1-users-ka-2-Index.db",
                "ks1-users-ka-2-Statistics.db", "ks1-users-ka-2-Summary.db",
                "ks1-users-ka-2-TOC.txt", "snapshots"}));
  // Index sstables are named after the index table, "<table>.<index>".
  const std::string index = users + "/.users_idx0";
  EXPECT_EQ(ListFiles(index).size(), 16u);
  for (const std::string gen : {"1", "2"}) {
    const std::string base_prefix = "ks1-users-ka-" + gen + "-";
    const std::string index_prefix = "ks1-users.users_idx0-ka-" + gen + "-";
    EXPECT_EQ(Stat(users + "/" + base_prefix + "Data.db").st_size,
              spec.data_size);
    // 200 KiB of chunks, each 40% to 100% of 64 KiB plus 4 bytes.
    const size_t chunks = ExpectCompressedKaSSTable(users, base_prefix);
    EXPECT_GE(chunks, 4u);
    EXPECT_LE(chunks, 8u);
    ExpectCompressedKaSSTable(index, index_prefix);
  }

  // The 2.1 snapshot: every file hard-linked, a {"files":[...]} manifest of
  // the Data.db names (json-simple escapes '/'), no schema.cql.
  const std::string snap = users + "/snapshots/snap1";
  for (const std::string& rel : {std::string(), std::string("/.users_idx0")}) {
    for (const std::string& file : ListFiles(users + rel)) {
      EXPECT_EQ(Stat(users + rel + "/" + file).st_ino,
                Stat(snap + rel + "/" + file).st_ino)
          << file;
    }
  }
  EXPECT_EQ(ListFiles(snap).size(), 16u + 1u) << "+ manifest.json only";
  EXPECT_FALSE(Exists(snap + "/schema.cql")) << "2.1 wrote no schema.cql";
  const std::string manifest = ReadFile(snap + "/manifest.json");
  EXPECT_EQ(manifest,
            "{\"files\":[\"ks1-users-ka-1-Data.db\",\"ks1-users-ka-2-Data.db\","
            "\".users_idx0\\/ks1-users.users_idx0-ka-1-Data.db\","
            "\".users_idx0\\/ks1-users.users_idx0-ka-2-Data.db\"]}\n");
  EXPECT_EQ(ManifestFiles(manifest),
            (std::vector<std::string>{
                "ks1-users-ka-1-Data.db", "ks1-users-ka-2-Data.db",
                ".users_idx0/ks1-users.users_idx0-ka-1-Data.db",
                ".users_idx0/ks1-users.users_idx0-ka-2-Data.db"}));

  // Deterministic from the seed, like the other versions.
  ASSERT_TRUE(GenerateTree(root + "/b", spec).ok());
  const std::string again = TableDirs(root + "/b/ks1")["users"];
  for (const std::string& component : kKaCompressedComponents) {
    EXPECT_EQ(ReadFile(users + "/ks1-users-ka-2-" + component),
              ReadFile(again + "/ks1-users-ka-2-" + component))
        << component;
  }
}

TEST(TreeGeneratorTest, KaCompressedSizes) {
  const std::string root = MakeTestDir();
  TreeSpec spec;
  spec.version = "ka";
  spec.tables_per_keyspace = 1;
  spec.sstables_per_table = 1;
  spec.snapshot_tags = {};
  // Many chunks, spanning several write buffers.
  spec.data_size = (int64_t{3} << 20) + 5;
  ASSERT_TRUE(GenerateTree(root + "/big", spec).ok());
  const std::string big = TableDirs(root + "/big/ks1")["users"];
  EXPECT_EQ(Stat(big + "/ks1-users-ka-1-Data.db").st_size, spec.data_size);
  EXPECT_GT(ExpectCompressedKaSSTable(big, "ks1-users-ka-1-"), 48u);

  // Tiny and empty Data.db files: one short chunk, or none.
  for (int64_t size : {0, 1, 5, 100, 65540, 65541}) {
    spec.data_size = size;
    const std::string dir = absl::StrCat(root, "/size", size);
    ASSERT_TRUE(GenerateTree(dir, spec).ok()) << size;
    const std::string table = TableDirs(dir + "/ks1")["users"];
    EXPECT_EQ(Stat(table + "/ks1-users-ka-1-Data.db").st_size,
              size == 0 ? 0 : std::max<int64_t>(size, 5))
        << size;
    ExpectCompressedKaSSTable(table, "ks1-users-ka-1-");
  }
}

TEST(TreeGeneratorTest, KaUncompressedSSTables) {
  const std::string root = MakeTestDir();
  TreeSpec spec;
  spec.version = "ka";
  spec.compressed = false;
  spec.tables_per_keyspace = 1;
  spec.sstables_per_table = 2;
  spec.index_dirs_per_table = 1;
  spec.data_size = 150000;  // Two whole 64 KiB blocks and a short one.
  ASSERT_TRUE(GenerateTree(root, spec).ok());
  const std::string users = TableDirs(root + "/ks1")["users"];
  for (const auto& [dir, prefix] :
       std::vector<std::pair<std::string, std::string>>{
           {users, "ks1-users-ka-1-"},
           {users, "ks1-users-ka-2-"},
           {users + "/.users_idx0", "ks1-users.users_idx0-ka-2-"}}) {
    // Digest.sha1 is the Adler-32 of the whole Data.db.
    ExpectCompleteSSTable(dir, prefix, kKaUncompressedComponents,
                          "Digest.sha1");
    const std::string data = ReadFile(dir + "/" + prefix + "Data.db");
    EXPECT_EQ(data.size(), 150000u);
    // CRC.db: the chunk length, then the Adler-32 of each chunk.
    const std::string crc = ReadFile(dir + "/" + prefix + "CRC.db");
    JavaDataInput in(crc);
    EXPECT_EQ(in.ReadInt(), 65536);
    for (size_t begin = 0; begin < data.size(); begin += 65536) {
      EXPECT_EQ(static_cast<uint32_t>(in.ReadInt()),
                Adler32(data.substr(begin, 65536)))
          << prefix << " block at " << begin;
    }
    EXPECT_FALSE(in.failed);
    EXPECT_TRUE(in.AtEnd());
  }
  const std::string snap = users + "/snapshots/snap1";
  EXPECT_FALSE(Exists(snap + "/schema.cql"));
  EXPECT_EQ(ManifestFiles(ReadFile(snap + "/manifest.json")).size(), 4u);
}

TEST(TreeGeneratorTest, KaFlushAndTakeSnapshot) {
  const std::string root = MakeTestDir();
  TreeSpec spec;
  spec.version = "ka";
  spec.keyspaces = {"ks"};  // Two letters, like a version: must not confuse.
  spec.tables_per_keyspace = 1;
  spec.sstables_per_table = 2;
  spec.index_dirs_per_table = 1;
  spec.data_size = 70000;
  ASSERT_TRUE(GenerateTree(root, spec).ok());
  const std::string users = TableDirs(root + "/ks")["users"];

  // 2.1's in-flight files must be neither snapshotted nor counted.
  EXPECT_EQ(std::system(absl::StrCat("cd '", users,
                                     "' && touch ks-users-tmp-ka-7-Data.db "
                                     "ks-users-tmplink-ka-8-Data.db")
                            .c_str()),
            0);

  ASSERT_TRUE(FlushNewSSTables(root, {"ks"}, 100000, 5).ok());
  EXPECT_EQ(Stat(users + "/ks-users-ka-3-Data.db").st_size, 100000);
  ExpectCompressedKaSSTable(users, "ks-users-ka-3-");
  ExpectCompressedKaSSTable(users + "/.users_idx0",
                            "ks-users.users_idx0-ka-3-");

  ASSERT_TRUE(TakeSnapshot(root, {"ks"}, "snap2").ok());
  const std::string snap2 = users + "/snapshots/snap2";
  const std::string manifest = ReadFile(snap2 + "/manifest.json");
  EXPECT_TRUE(absl::StartsWith(manifest, "{\"files\":[")) << manifest;
  EXPECT_FALSE(absl::StrContains(manifest, "created_at")) << manifest;
  EXPECT_EQ(ManifestFiles(manifest),
            (std::vector<std::string>{
                "ks-users-ka-1-Data.db", "ks-users-ka-2-Data.db",
                "ks-users-ka-3-Data.db",
                ".users_idx0/ks-users.users_idx0-ka-1-Data.db",
                ".users_idx0/ks-users.users_idx0-ka-2-Data.db",
                ".users_idx0/ks-users.users_idx0-ka-3-Data.db"}));
  EXPECT_FALSE(Exists(snap2 + "/schema.cql"));
  EXPECT_FALSE(Exists(snap2 + "/ks-users-tmp-ka-7-Data.db"));
  EXPECT_FALSE(Exists(snap2 + "/ks-users-tmplink-ka-8-Data.db"));
  EXPECT_EQ(Stat(users + "/ks-users-ka-3-Data.db").st_nlink, 2u);
  EXPECT_EQ(Stat(users + "/ks-users-ka-1-Data.db").st_nlink, 3u);

  // Uncompressed tables stay uncompressed; with the live sstables gone, the
  // generation still follows the snapshotted ones.
  spec.compressed = false;
  spec.write_live_sstables = false;
  spec.keyspaces = {"ks1"};
  ASSERT_TRUE(GenerateTree(root, spec).ok());
  const std::string plain = TableDirs(root + "/ks1")["users"];
  EXPECT_TRUE(ListFiles(plain).empty());
  ASSERT_TRUE(FlushNewSSTables(root, {"ks1"}, 1000, 6).ok());
  ExpectCompleteSSTable(plain, "ks1-users-ka-3-", kKaUncompressedComponents,
                        "Digest.sha1");
  ExpectCompleteSSTable(plain + "/.users_idx0", "ks1-users.users_idx0-ka-3-",
                        kKaUncompressedComponents, "Digest.sha1");
  ASSERT_TRUE(TakeSnapshot(root, {"ks1"}, "after").ok());
  EXPECT_EQ(ManifestFiles(ReadFile(plain + "/snapshots/after/manifest.json")),
            (std::vector<std::string>{
                "ks1-users-ka-3-Data.db",
                ".users_idx0/ks1-users.users_idx0-ka-3-Data.db"}));
  EXPECT_FALSE(Exists(plain + "/snapshots/after/schema.cql"));
}

// Compares the generated components with real Cassandra sstables, when the
// shared fixtures are present (they are not part of this repository).
TEST(TreeGeneratorTest, ComponentsMatchRealSSTables) {
  const char* env = std::getenv("SNAPHAVEN_REAL_SSTABLES");
  const std::string fixtures =
      env != nullptr ? env : "/work/shared/fixtures/real-sstables";
  const std::string real_nb =
      fixtures + "/sstable-transformer/core/input-four/nb-1-big-TOC.txt";
  if (!Exists(real_nb)) {
    GTEST_SKIP()
        << "real sstables not found at " << fixtures
        << " (set SNAPHAVEN_REAL_SSTABLES via --test_env to run this check)";
  }
  std::vector<std::string> lines =
      absl::StrSplit(ReadFile(real_nb), '\n', absl::SkipEmpty());
  EXPECT_EQ(std::set<std::string>(lines.begin(), lines.end()), kBigComponents);

  // The real digest has the same shape as ours: decimal CRC-32, no newline.
  const std::string prefix =
      fixtures + "/sstable-transformer/core/input-four/nb-1-big-";
  EXPECT_EQ(ReadFile(prefix + "Digest.crc32"),
            absl::StrCat(Crc32(ReadFile(prefix + "Data.db"))));
}

}  // namespace
}  // namespace snaphaven::tools
