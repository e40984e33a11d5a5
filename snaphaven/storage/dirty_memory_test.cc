#include "snaphaven/storage/dirty_memory.h"

#include <gtest/gtest.h>
#include <sys/sysinfo.h>

#include <fstream>
#include <string>

#include "snaphaven/testing/test_files.h"

namespace snaphaven {
namespace {

TEST(DirtyMemory, AddsDirtyAndWriteback) {
  absl::StatusOr<Meminfo> meminfo = ParseMeminfo(
      "MemTotal:       24683632 kB\n"
      "Dirty:              1056 kB\n"
      "Writeback:            16 kB\n"
      "WritebackTmp:      99999 kB\n");
  ASSERT_TRUE(meminfo.ok()) << meminfo.status();
  EXPECT_EQ(meminfo->unwritten_bytes, (1056 + 16) * 1024);
  EXPECT_EQ(meminfo->total_bytes, int64_t{24683632} * 1024);
}

TEST(DirtyMemory, RefusesWhatItCannotRead) {
  const char* kTotal = "MemTotal: 100 kB\n";
  EXPECT_FALSE(ParseMeminfo(std::string(kTotal) + "Dirty: 5 kB\n").ok());  // no Writeback
  EXPECT_FALSE(ParseMeminfo(std::string(kTotal) + "Dirty: 5 kB\nDirty: 5 kB\n").ok());
  EXPECT_FALSE(ParseMeminfo(std::string(kTotal) + "Dirty: lots kB\nWriteback: 0 kB\n").ok());
  EXPECT_FALSE(ParseMeminfo(std::string(kTotal) + "Dirty: 5 MB\nWriteback: 0 kB\n").ok());
  EXPECT_FALSE(ParseMeminfo("Dirty: 5 kB\nWriteback: 0 kB\n").ok());  // no MemTotal
  EXPECT_FALSE(ParseMeminfo("").ok());
}

TEST(DirtyMemory, LittleOtherUnwrittenDataLeavesOutSnaphavensOwn) {
  const int64_t kLimit = 32 << 20, kOwn = 5 << 20;
  EXPECT_TRUE(LittleOtherUnwrittenData(kLimit + kOwn, kOwn, kLimit));
  EXPECT_FALSE(LittleOtherUnwrittenData(kLimit + kOwn + 1, kOwn, kLimit));
  EXPECT_TRUE(LittleOtherUnwrittenData(0, kOwn, kLimit));
  EXPECT_FALSE(LittleOtherUnwrittenData(absl::UnavailableError("no /proc"), 0, kLimit));
}

// A meminfo whose MemTotal is not the kernel's (a container's view).
TEST(DirtyMemory, DistrustsAMeminfoThatIsNotTheKernels) {
  struct sysinfo system;
  ASSERT_EQ(sysinfo(&system), 0);
  const int64_t total_kib = static_cast<int64_t>(system.totalram) * system.mem_unit / 1024;
  const std::string dir = testing::MakeTempDir("meminfo");
  auto write = [&](const std::string& name, int64_t mem_total_kib) {
    const std::string path = dir + "/" + name;
    std::ofstream(path) << "MemTotal: " << mem_total_kib << " kB\nDirty: 8 kB\n"
                        << "Writeback: 4 kB\n";
    return path;
  };
  absl::StatusOr<int64_t> own = DirtyMemoryBytes(write("kernels", total_kib).c_str());
  ASSERT_TRUE(own.ok()) << own.status();
  EXPECT_EQ(*own, 12 * 1024);
  absl::StatusOr<int64_t> container =
      DirtyMemoryBytes(write("containers", total_kib / 2).c_str());
  EXPECT_TRUE(absl::IsUnavailable(container.status())) << container.status();
  EXPECT_TRUE(absl::IsUnavailable(DirtyMemoryBytes((dir + "/none").c_str()).status()));
}

TEST(DirtyMemory, ReadsThisSystems) {
  absl::StatusOr<int64_t> bytes = DirtyMemoryBytes();
  if (absl::IsUnavailable(bytes.status())) GTEST_SKIP() << bytes.status();
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_GE(*bytes, 0);
}

}  // namespace
}  // namespace snaphaven
