// Turns argv into flag assignments and positional arguments, accepting the
// old Python tool's spellings: short forms (-s DIR, -d DIR, -q, -v N, -h),
// dashed long names (--move-snapshots) and gflags' own forms (--name=value,
// --name value, --noname). Unknown flags and missing values are errors, so
// main can exit 2 with one clear line instead of gflags' exit 1.

#ifndef SNAPHAVEN_COMMAND_LINE_H_
#define SNAPHAVEN_COMMAND_LINE_H_

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"

namespace snaphaven {

enum class FlagKind { kBool, kValue };

// Returns the kind of a flag known by `name` (underscored), or nullopt.
using FlagLookup = std::function<absl::optional<FlagKind>(absl::string_view)>;

struct ParsedArgs {
  // (flag name, value) in command-line order; bools get "true"/"false".
  std::vector<std::pair<std::string, std::string>> flags;
  std::vector<std::string> positional;
  bool help = false;
  bool version = false;
};

// Short flag letters and the long flags they stand for.
std::string LongNameForShort(char letter);

// `args` excludes argv[0].
absl::StatusOr<ParsedArgs> ParseArgs(const std::vector<std::string>& args,
                                     const FlagLookup& lookup);

}  // namespace snaphaven

#endif  // SNAPHAVEN_COMMAND_LINE_H_
