// Cassandra 3.0+ transaction logs (cassandra_metadata.h ParseTxnLog):
// never fails, whatever is in them.

#include <cstdint>
#include <string>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "snaphaven/cassandra/cassandra_metadata.h"
#include "snaphaven/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace snaphaven;
  const absl::string_view text = fuzz::AsText(data, size);
  const TxnLog log = ParseTxnLog(text);
  int lines = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    (void)line;
    ++lines;
  }
  // Each line counts once: as a record read or as malformed.
  FUZZ_CHECK(log.malformed_lines >= 0 && log.malformed_lines <= lines, text);
  FUZZ_CHECK(static_cast<int>(log.added.size() + log.removed.size()) + log.malformed_lines <=
                 lines,
             text);
  // A prefix is a file name: never a path, never empty.
  for (const auto* list : {&log.added, &log.removed}) {
    for (const std::string& prefix : *list) {
      FUZZ_CHECK(!prefix.empty() && prefix.find('/') == std::string::npos, prefix);
    }
  }
  // The name check is total too.
  (void)IsTxnLogName(text);
  // Read while Cassandra appends whole lines to it: a log cut after a line
  // that ends it is ended in the full log too.
  const size_t cut = text.substr(0, text.size() / 2).rfind('\n');
  const TxnLog half = ParseTxnLog(text.substr(0, cut == absl::string_view::npos ? 0 : cut + 1));
  if (half.state == TxnLog::State::kCommitted) {
    FUZZ_CHECK(log.state != TxnLog::State::kInFlight, text);
  }
  return 0;
}
