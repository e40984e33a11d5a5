#include "snaphaven/dirty_memory.h"

#include <gtest/gtest.h>

namespace snaphaven {
namespace {

TEST(DirtyMemory, AddsDirtyAndWriteback) {
  absl::StatusOr<int64_t> bytes = ParseDirtyMemory(
      "MemTotal:       24683632 kB\n"
      "Dirty:              1056 kB\n"
      "Writeback:            16 kB\n"
      "WritebackTmp:      99999 kB\n");
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_EQ(*bytes, (1056 + 16) * 1024);
}

TEST(DirtyMemory, RefusesWhatItCannotRead) {
  EXPECT_FALSE(ParseDirtyMemory("MemTotal: 1 kB\nDirty: 5 kB\n").ok());  // no Writeback
  EXPECT_FALSE(ParseDirtyMemory("Dirty: lots kB\nWriteback: 0 kB\n").ok());
  EXPECT_FALSE(ParseDirtyMemory("Dirty: 5 MB\nWriteback: 0 kB\n").ok());
  EXPECT_FALSE(ParseDirtyMemory("").ok());
}

TEST(DirtyMemory, ReadsThisSystems) {
  absl::StatusOr<int64_t> bytes = DirtyMemoryBytes();
  if (absl::IsUnavailable(bytes.status())) GTEST_SKIP() << bytes.status();
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_GE(*bytes, 0);
}

}  // namespace
}  // namespace snaphaven
