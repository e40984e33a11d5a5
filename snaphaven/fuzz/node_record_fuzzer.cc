// The node record <dest>/.snaphaven/node (node_record.h): parsed, formatted
// back, and decided on against this run's instance.

#include <cstdint>
#include <string>

#include "snaphaven/fuzz/fuzz_util.h"
#include "snaphaven/state/node_record.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace snaphaven;
  const std::string text(fuzz::AsText(data, size));
  const NodeRecord mine{"cass-1", {"/var/lib/cassandra/data", "/data2"}};
  for (bool adopt : {false, true}) {
    const NodeDecision decision = DecideNodeRecord(text, mine, "/nas/dest", adopt);
    switch (decision.action) {
      case NodeAction::kWrite:
        FUZZ_CHECK(decision.record == FormatNodeRecord(mine), text);
        break;
      case NodeAction::kRefuse:
        FUZZ_CHECK(!adopt && !decision.refusal.empty(), text);
        break;
      case NodeAction::kKeep:
        break;
    }
  }
  absl::StatusOr<NodeRecord> record = ParseNodeRecord(text);
  if (!record.ok()) {
    FUZZ_CHECK(record.status().code() == absl::StatusCode::kInvalidArgument,
               record.status().ToString());
    return 0;
  }
  FUZZ_CHECK(!record->host.empty(), text);
  // What is written reads back the same.
  const std::string formatted = FormatNodeRecord(*record);
  absl::StatusOr<NodeRecord> again = ParseNodeRecord(formatted);
  FUZZ_CHECK(again.ok(), formatted);
  FUZZ_CHECK(again->host == record->host && again->data_roots == record->data_roots, formatted);
  // The instance a record describes keeps it as it is: no write per cycle.
  if (!record->data_roots.empty()) {
    FUZZ_CHECK(DecideNodeRecord(text, *record, "/nas/dest", false).action == NodeAction::kKeep,
               text);
    FUZZ_CHECK(DecideNodeRecord(formatted, *record, "/nas/dest", false).action ==
                   NodeAction::kKeep,
               formatted);
  }
  return 0;
}
