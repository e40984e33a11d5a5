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

namespace {

// A flag argument split into its name (underscored, or the long name of a
// short letter) and the value it carries, if any.
struct FlagArg {
  std::string name;
  absl::optional<std::string> value;
};

// -s DIR, -s=DIR, -v 2, -v2; a longer single-dash word is gflags'
// -long_name form; --name, --name=value, dashed long names.
FlagArg SplitFlagArg(const std::string& arg) {
  FlagArg flag;
  bool is_short = arg[1] != '-' && !LongNameForShort(arg[1]).empty() &&
                  (arg.size() == 2 || arg[2] == '=' ||
                   (arg[1] == 'v' && absl::ascii_isdigit(arg[2])));
  if (is_short) {
    flag.name = LongNameForShort(arg[1]);
    if (arg.size() > 2) flag.value = arg.substr(arg[2] == '=' ? 3 : 2);
    return flag;
  }
  absl::string_view body = arg;
  body.remove_prefix(arg[1] == '-' ? 2 : 1);
  size_t eq = body.find('=');
  if (eq != absl::string_view::npos) {
    flag.value = std::string(body.substr(eq + 1));
    body = body.substr(0, eq);
  }
  flag.name = absl::StrReplaceAll(body, {{"-", "_"}});
  return flag;
}

// The kind of `flag`, or nullopt when unknown. --noNAME (without a value)
// of a bool flag NAME turns `flag` into NAME=false.
absl::optional<FlagKind> LookupFlag(const FlagLookup& lookup, FlagArg& flag) {
  absl::optional<FlagKind> kind = lookup(flag.name);
  if (kind.has_value() || !absl::StartsWith(flag.name, "no") || flag.value.has_value()) {
    return kind;
  }
  if (lookup(flag.name.substr(2)) != FlagKind::kBool) return absl::nullopt;
  flag.name = flag.name.substr(2);
  flag.value = "false";
  return FlagKind::kBool;
}

// The flag argument args[*i] into `parsed`; a value flag without `=` takes
// the next argument (advancing *i).
absl::Status ParseFlag(const std::vector<std::string>& args, size_t* i,
                       const FlagLookup& lookup, ParsedArgs& parsed) {
  const std::string& arg = args[*i];
  FlagArg flag = SplitFlagArg(arg);
  absl::optional<FlagKind> kind = LookupFlag(lookup, flag);
  if (!kind.has_value()) {
    return absl::InvalidArgumentError(absl::StrCat("unknown flag ", arg));
  }
  if (*kind == FlagKind::kBool) {
    parsed.flags.emplace_back(flag.name, flag.value.value_or("true"));
    return absl::OkStatus();
  }
  if (!flag.value.has_value()) {
    if (*i + 1 >= args.size()) {
      return absl::InvalidArgumentError(absl::StrCat("flag ", arg, " needs a value"));
    }
    flag.value = args[++*i];
  }
  parsed.flags.emplace_back(flag.name, *flag.value);
  return absl::OkStatus();
}

}  // namespace

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
    } else if (arg == "-h" || arg == "--help" || arg == "-help") {
      parsed.help = true;
    } else if (arg == "--version" || arg == "-version") {
      parsed.version = true;
    } else {
      absl::Status flag = ParseFlag(args, &i, lookup, parsed);
      if (!flag.ok()) return flag;
    }
  }
  return parsed;
}

}  // namespace snaphaven
