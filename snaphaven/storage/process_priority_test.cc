#include "snaphaven/storage/process_priority.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

namespace snaphaven {
namespace {

TEST(ParseIoPriority, Names) {
  EXPECT_EQ(*ParseIoPriority("idle"), IoPriority::kIdle);
  EXPECT_EQ(*ParseIoPriority("best-effort"), IoPriority::kBestEffort);
  EXPECT_EQ(*ParseIoPriority("normal"), IoPriority::kNormal);
  EXPECT_FALSE(ParseIoPriority("low").ok());
}

// In a child process, so the test runner keeps its own priority.
int ClassAndNiceAfter(IoPriority priority) {
  pid_t pid = fork();
  if (pid == 0) {
    if (!ApplyProcessPriority(priority).ok()) _exit(99);
    _exit(CurrentIoClass() * 10 + (getpriority(PRIO_PROCESS, 0) >= 10 ? 1 : 0));
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WEXITSTATUS(status);
}

TEST(ApplyProcessPriority, IdleAndBestEffortLowerIoAndCpu) {
  EXPECT_EQ(ClassAndNiceAfter(IoPriority::kIdle), 31);        // idle class, niced
  EXPECT_EQ(ClassAndNiceAfter(IoPriority::kBestEffort), 21);  // best-effort, niced
  int normal = ClassAndNiceAfter(IoPriority::kNormal);
  EXPECT_NE(normal / 10, 3) << "normal leaves the class alone";
}

}  // namespace
}  // namespace snaphaven
