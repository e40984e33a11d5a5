// Runs a loop's iterations on a few threads: the calling thread and up to
// threads-1 helpers started for the call, each taking the next index in
// order. For short bursts of blocking file-system calls (scanning table
// directories, placing a batch of copies), where a thread costs little next
// to the work.

#ifndef SNAPHAVEN_PARALLEL_FOR_H_
#define SNAPHAVEN_PARALLEL_FOR_H_

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <system_error>
#include <thread>
#include <vector>

namespace snaphaven {

// Calls body(i) once for each i in [0, count), on at most `threads`
// threads; returns when all calls have. Indexes are handed out in
// increasing order (a body that sees a stop flag skips the rest).
template <typename Body>
void ParallelFor(int threads, size_t count, const Body& body) {
  std::atomic<size_t> next{0};
  auto work = [&]() {
    for (size_t i = next++; i < count; i = next++) body(i);
  };
  const size_t helpers_wanted =
      count == 0 ? 0 : std::min<size_t>(std::max(1, threads), count) - 1;
  std::vector<std::thread> helpers;
  for (size_t t = 0; t < helpers_wanted; ++t) {
    try {
      helpers.emplace_back(work);
    } catch (const std::system_error&) {
      break;  // no more threads to be had (a pids limit): do with those there are
    }
  }
  work();
  for (std::thread& helper : helpers) helper.join();
}

}  // namespace snaphaven

#endif  // SNAPHAVEN_PARALLEL_FOR_H_
