// Defects planted on purpose, one per argument, for sanitizer_test: each must
// be reported by the sanitizer of the build it runs in, and the clean ones
// must not be (the abseil Mutex cases prove tsan_absl_mutex.cc makes its
// ordering visible to ThreadSanitizer without hiding a race beside it).

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace {

// Not optimized away: the sanitizers must see the accesses themselves.
volatile int sink;

int HeapOverflow(int n) {
  std::vector<int> v(n);
  int* p = v.data();
  return p[n];  // one past the end
}

int UseAfterFree() {
  int* p = new int[4];
  delete[] p;
  return p[1];
}

int SignedOverflow(int argc) {
  long long x = std::numeric_limits<long long>::max() - 1;
  return static_cast<int>((x + argc) & 1);  // argc >= 2
}

// Two threads: a counter under an abseil Mutex (clean), one beside it
// (racy), or both waiting on each other with Await and a CondVar (clean).
int Counter(bool racy) {
  absl::Mutex mu;
  int guarded = 0, unguarded = 0;
  auto work = [&] {
    for (int i = 0; i < 1000; ++i) {
      {
        absl::MutexLock lock(&mu);
        ++guarded;
      }
      if (racy) ++unguarded;
    }
  };
  std::thread a(work), b(work);
  a.join();
  b.join();
  return guarded + unguarded;
}

int HandOff() {
  absl::Mutex mu;
  absl::CondVar cv;
  std::vector<int> items;  // guarded by mu
  bool done = false;
  std::thread producer([&] {
    for (int i = 0; i < 200; ++i) {
      absl::MutexLock lock(&mu);
      items.push_back(i);
      cv.Signal();
    }
    absl::MutexLock lock(&mu);
    done = true;
  });
  int taken = 0;
  {
    absl::MutexLock lock(&mu);
    auto ready = [&] { return items.size() >= 100; };
    mu.Await(absl::Condition(&ready));  // evaluated by the producer too
    while (!done) {
      taken += static_cast<int>(items.size());
      items.clear();
      cv.WaitWithTimeout(&mu, absl::Milliseconds(10));
    }
  }
  producer.join();
  return taken;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: %s heap_overflow|use_after_free|signed_overflow|race|guarded|handoff\n",
                 argv[0]);
    return 2;
  }
  const char* what = argv[1];
  if (!std::strcmp(what, "heap_overflow")) sink = HeapOverflow(argc + 2);
  else if (!std::strcmp(what, "use_after_free")) sink = UseAfterFree();
  else if (!std::strcmp(what, "signed_overflow")) sink = SignedOverflow(argc);
  else if (!std::strcmp(what, "race")) sink = Counter(/*racy=*/true);
  else if (!std::strcmp(what, "guarded")) sink = Counter(/*racy=*/false);
  else if (!std::strcmp(what, "handoff")) sink = HandOff();
  else return 2;
  std::printf("done %s\n", what);
  return 0;
}
