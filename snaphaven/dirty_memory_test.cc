#include "snaphaven/dirty_memory.h"

#include <gtest/gtest.h>

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

TEST(DirtyMemory, ReadsThisSystems) {
  absl::StatusOr<int64_t> bytes = DirtyMemoryBytes();
  if (absl::IsUnavailable(bytes.status())) GTEST_SKIP() << bytes.status();
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_GE(*bytes, 0);
}

}  // namespace
}  // namespace snaphaven
