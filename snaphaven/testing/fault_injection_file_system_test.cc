#include "snaphaven/testing/fault_injection_file_system.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cerrno>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "snaphaven/testing/test_files.h"

namespace snaphaven::testing {
namespace {

class FaultInjectionFileSystemTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string templ = MakeTempDir("faulty");
    in_path_ = templ + "/in";
    out_path_ = templ + "/out";
    data_ = RandomBytes((1 << 20) + 99, 7);
    ASSERT_TRUE(fs_.WriteFileAtomically(in_path_, data_).ok());
    absl::StatusOr<std::unique_ptr<ReadableFile>> in = fs_.OpenForRead(in_path_);
    ASSERT_TRUE(in.ok()) << in.status();
    in_ = *std::move(in);
    absl::StatusOr<std::unique_ptr<WritableFile>> out = fs_.CreateNew(out_path_);
    ASSERT_TRUE(out.ok()) << out.status();
    out_ = *std::move(out);
  }

  // AppendFromKernel until the end of the input; the first error if any.
  absl::Status KernelCopy() {
    while (true) {
      absl::StatusOr<size_t> copied = out_->AppendFromKernel(*in_, 64 << 10);
      if (!copied.ok()) return copied.status();
      if (*copied == 0) return absl::OkStatus();
    }
  }

  std::string ReadOut() {
    absl::StatusOr<std::string> got = DefaultFileSystem()->ReadFile(out_path_);
    EXPECT_TRUE(got.ok()) << got.status();
    return got.ok() ? *got : "";
  }

  FaultInjectionFileSystem fs_{DefaultFileSystem()};
  std::string in_path_;
  std::string out_path_;
  std::string data_;
  std::unique_ptr<ReadableFile> in_;
  std::unique_ptr<WritableFile> out_;
};

// The wrapped files still reach the kernel copy.
TEST_F(FaultInjectionFileSystemTest, AppendFromKernelCopiesThroughTheWrappers) {
  ASSERT_TRUE(KernelCopy().ok());
  ASSERT_TRUE(out_->Close().ok());
  EXPECT_TRUE(ReadOut() == data_);
  EXPECT_GT(fs_.Calls(FsOp::kWrite, "/out$"), 0);
  EXPECT_GT(fs_.Calls(FsOp::kRead, "/in$"), 0);
}

TEST_F(FaultInjectionFileSystemTest, WriteFaultFailsAppendFromKernel) {
  fs_.AddRule({FsOp::kWrite, "/out$", ENOSPC, /*skip=*/2});
  absl::Status status = KernelCopy();
  EXPECT_TRUE(IsOutOfSpace(status)) << status;
  EXPECT_EQ(OperationOf(status), "copy_file_range");
  EXPECT_EQ(fs_.Injected().size(), 1u);
  // The fault struck before the kernel copied anything: going on completes the copy.
  ASSERT_TRUE(KernelCopy().ok());
  ASSERT_TRUE(out_->Close().ok());
  EXPECT_TRUE(ReadOut() == data_);
}

TEST_F(FaultInjectionFileSystemTest, ReadFaultAndHookApplyToAppendFromKernel) {
  int hooks = 0;
  fs_.AfterFirstRead("/in$", [&hooks](const std::string&) { ++hooks; });
  fs_.AddRule({FsOp::kRead, "/in$", EIO, /*skip=*/1});
  absl::Status status = KernelCopy();
  EXPECT_EQ(ErrnoOf(status), EIO) << status;
  EXPECT_EQ(hooks, 1);  // after the first, successful, copy
}

}  // namespace
}  // namespace snaphaven::testing
