// Collects what the code under test logs (through glog), so a test can
// check that a message names the file and the error.

#ifndef SNAPHAVEN_TESTING_LOG_CAPTURE_H_
#define SNAPHAVEN_TESTING_LOG_CAPTURE_H_

#include <glog/logging.h>

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace snaphaven::testing {

// Add it with google::AddLogSink, remove it with google::RemoveLogSink.
class CapturingSink : public google::LogSink {
 public:
  void send(google::LogSeverity, const char*, const char*, int, const struct ::tm*,
            const char* message, size_t length) override {
    absl::MutexLock lock(&mu_);
    absl::StrAppend(&text_, absl::string_view(message, length), "\n");
  }
  // What was logged since the last call, one message a line.
  std::string Take() {
    absl::MutexLock lock(&mu_);
    return std::exchange(text_, "");
  }

 private:
  absl::Mutex mu_;
  std::string text_;
};

}  // namespace snaphaven::testing

#endif  // SNAPHAVEN_TESTING_LOG_CAPTURE_H_
