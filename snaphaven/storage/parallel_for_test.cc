#include "snaphaven/storage/parallel_for.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <thread>

namespace snaphaven {
namespace {

TEST(ParallelFor, RunsEveryIndexOnce) {
  std::atomic<int> calls[100] = {};
  ParallelFor(8, 100, [&](size_t i) { ++calls[i]; });
  for (const std::atomic<int>& c : calls) EXPECT_EQ(c.load(), 1);
}

// Where no thread can be started (a pids limit), the calling thread does
// the whole loop instead of the process dying of std::system_error.
TEST(ParallelFor, WithoutThreadsTheCallerDoesItAll) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root, to become a user with no processes to spare";
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // A user of its own at its limit of processes: clone(2) fails.
    struct rlimit one = {1, 1};
    if (setrlimit(RLIMIT_NPROC, &one) != 0 || setresuid(65533, 65533, 65533) != 0) _exit(3);
    try {
      std::thread probe([] {});
      probe.join();
      _exit(77);  // threads can still be started here: nothing to test
    } catch (const std::system_error&) {
    }
    std::atomic<int> done{0};
    ParallelFor(8, 100, [&](size_t) { ++done; });
    _exit(done.load() == 100 ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << "the child died (signal " << WTERMSIG(status) << ")";
  if (WEXITSTATUS(status) == 77) GTEST_SKIP() << "RLIMIT_NPROC does not stop threads here";
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace snaphaven
