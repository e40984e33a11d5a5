#include "snaphaven/cli/command_line.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace snaphaven {

std::string LongNameForShort(char letter) {
  switch (letter) {
    case 's':
      return "snapshot_dir";
    case 'd':
      return "cassandra_dir";
    case 'q':
      return "quiet";
    case 'v':
      return "v";  // glog's verbosity flag
    default:
      return "";
  }
}

absl::StatusOr<ParsedArgs> ParseArgs(const std::vector<std::string>& args,
                                     const FlagLookup& lookup) {
  ParsedArgs parsed;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      parsed.positional.insert(parsed.positional.end(), args.begin() + i + 1,
                               args.end());
      break;
    }
    if (arg.size() < 2 || arg[0] != '-') {
      parsed.positional.push_back(arg);
      continue;
    }
    if (arg == "-h" || arg == "--help" || arg == "-help") {
      parsed.help = true;
      continue;
    }
    if (arg == "--version" || arg == "-version") {
      parsed.version = true;
      continue;
    }
    std::string name;
    absl::optional<std::string> value;
    // -s DIR, -s=DIR, -v 2, -v2; a longer single-dash word is gflags'
    // -long_name form.
    bool is_short = arg[1] != '-' && !LongNameForShort(arg[1]).empty() &&
                    (arg.size() == 2 || arg[2] == '=' ||
                     (arg[1] == 'v' && absl::ascii_isdigit(arg[2])));
    if (is_short) {
      name = LongNameForShort(arg[1]);
      if (arg.size() > 2) value = arg.substr(arg[2] == '=' ? 3 : 2);
    } else {
      absl::string_view body = arg;
      body.remove_prefix(arg[1] == '-' ? 2 : 1);
      size_t eq = body.find('=');
      if (eq != absl::string_view::npos) {
        value = std::string(body.substr(eq + 1));
        body = body.substr(0, eq);
      }
      name = absl::StrReplaceAll(body, {{"-", "_"}});
    }
    absl::optional<FlagKind> kind = lookup(name);
    bool negated = false;
    if (!kind.has_value() && absl::StartsWith(name, "no") && !value.has_value()) {
      kind = lookup(name.substr(2));
      if (kind == FlagKind::kBool) {
        negated = true;
        name = name.substr(2);
      } else {
        kind.reset();
      }
    }
    if (!kind.has_value()) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag ", arg));
    }
    if (*kind == FlagKind::kBool) {
      parsed.flags.emplace_back(name, negated ? "false" : value.value_or("true"));
      continue;
    }
    if (!value.has_value()) {
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(absl::StrCat("flag ", arg, " needs a value"));
      }
      value = args[++i];
    }
    parsed.flags.emplace_back(name, *value);
  }
  return parsed;
}

}  // namespace snaphaven
