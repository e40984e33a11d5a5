// The sanitizer configs catch what they are for, run on the defects planted
// in planted_defects.cc (in the default build there is nothing to check).
// Each defect runs in a child with the sanitizer's report on its stderr
// (log_path=stderr), so that tools/test.sh does not count it as a finding.

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer) && !defined(__SANITIZE_ADDRESS__)
#define __SANITIZE_ADDRESS__ 1
#endif
#if __has_feature(thread_sanitizer) && !defined(__SANITIZE_THREAD__)
#define __SANITIZE_THREAD__ 1
#endif
#endif

namespace {

struct Run {
  int exit_code = -1;
  std::string output;
};

Run RunPlanted(const std::string& defect) {
  const std::string out = std::string(std::getenv("TEST_TMPDIR")) + "/" + defect + ".out";
  pid_t pid = fork();
  if (pid == 0) {
    const int fd = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    setenv("ASAN_OPTIONS", "halt_on_error=1:detect_leaks=0:log_path=stderr", 1);
    setenv("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1:log_path=stderr", 1);
    setenv("TSAN_OPTIONS", "halt_on_error=1:log_path=stderr", 1);
    execl("tools/sanitizers/planted_defects", "planted_defects", defect.c_str(), nullptr);
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  Run run;
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  std::ifstream in(out);
  std::stringstream text;
  text << in.rdbuf();
  run.output = text.str();
  return run;
}

void ExpectCaught(const std::string& defect, const std::string& report) {
  Run run = RunPlanted(defect);
  EXPECT_NE(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find(report), std::string::npos) << run.output;
}

void ExpectClean(const std::string& defect) {
  Run run = RunPlanted(defect);
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(run.output, "done " + defect + "\n");
}

#if defined(__SANITIZE_ADDRESS__)
TEST(AddressSanitizer, CatchesAHeapOverflow) {
  ExpectCaught("heap_overflow", "ERROR: AddressSanitizer: heap-buffer-overflow");
}
TEST(AddressSanitizer, CatchesAUseAfterFree) {
  ExpectCaught("use_after_free", "ERROR: AddressSanitizer: heap-use-after-free");
}
TEST(UndefinedBehaviorSanitizer, CatchesASignedOverflow) {
  ExpectCaught("signed_overflow", "runtime error: signed integer overflow");
}
TEST(AddressSanitizer, LeavesCleanCodeAlone) { ExpectClean("guarded"); }
#elif defined(__SANITIZE_THREAD__)
TEST(ThreadSanitizer, CatchesARaceBesideAnAbseilMutex) {
  ExpectCaught("race", "WARNING: ThreadSanitizer: data race");
}
TEST(ThreadSanitizer, SeesAnAbseilMutexOrderAccesses) { ExpectClean("guarded"); }
TEST(ThreadSanitizer, SeesAwaitAndCondVarHandOffs) { ExpectClean("handoff"); }
#else
TEST(Sanitizers, NoneInThisBuild) {
  GTEST_SKIP() << "built without a sanitizer: --config=asan or --config=tsan runs these";
}
#endif

}  // namespace
