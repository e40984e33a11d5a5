#include "snaphaven/cli/command_line.h"

#include <gtest/gtest.h>

namespace snaphaven {
namespace {

absl::optional<FlagKind> Lookup(absl::string_view name) {
  if (name == "quiet" || name == "fullsync" || name == "move_snapshots") return FlagKind::kBool;
  if (name == "snapshot_dir" || name == "cassandra_dir" || name == "v" ||
      name == "snapshot_regex" || name == "interval") {
    return FlagKind::kValue;
  }
  return absl::nullopt;
}

using Flags = std::vector<std::pair<std::string, std::string>>;

TEST(ParseArgs, OldToolCommandLine) {
  absl::StatusOr<ParsedArgs> p = ParseArgs(
      {"-q", "-v", "2", "--move-snapshots", "-d", "/var/lib/cassandra", "-s", "/mnt/backup",
       "--fullsync", "--snapshot_regex", "^opcenter_", "ks1", "ks2"},
      Lookup);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->flags, (Flags{{"quiet", "true"},
                             {"v", "2"},
                             {"move_snapshots", "true"},
                             {"cassandra_dir", "/var/lib/cassandra"},
                             {"snapshot_dir", "/mnt/backup"},
                             {"fullsync", "true"},
                             {"snapshot_regex", "^opcenter_"}}));
  EXPECT_EQ(p->positional, (std::vector<std::string>{"ks1", "ks2"}));
}

TEST(ParseArgs, GflagsForms) {
  absl::StatusOr<ParsedArgs> p = ParseArgs(
      {"--snapshot_dir=/d", "-v2", "-v=1", "--nofullsync", "--quiet=false", "-interval=5m",
       "ks", "--", "-weird"},
      Lookup);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->flags, (Flags{{"snapshot_dir", "/d"},
                             {"v", "2"},
                             {"v", "1"},
                             {"fullsync", "false"},
                             {"quiet", "false"},
                             {"interval", "5m"}}));
  EXPECT_EQ(p->positional, (std::vector<std::string>{"ks", "-weird"}));
}

TEST(ParseArgs, HelpAndVersion) {
  EXPECT_TRUE(ParseArgs({"-h"}, Lookup)->help);
  EXPECT_TRUE(ParseArgs({"--help"}, Lookup)->help);
  EXPECT_TRUE(ParseArgs({"--version"}, Lookup)->version);
}

TEST(ParseArgs, ErrorsNameTheCulprit) {
  absl::StatusOr<ParsedArgs> unknown = ParseArgs({"--bogus", "ks"}, Lookup);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().message(), "unknown flag --bogus");
  absl::StatusOr<ParsedArgs> missing = ParseArgs({"ks", "-s"}, Lookup);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(), "flag -s needs a value");
  EXPECT_FALSE(ParseArgs({"--nosnapshot_dir"}, Lookup).ok());  // "no" only negates bools
}

// Arguments are read left to right: the first bad one is the one reported,
// even after -h; "no" negates a bool only without a value.
TEST(ParseArgs, TheFirstBadArgumentIsReported) {
  auto error = [](std::vector<std::string> args) {
    absl::StatusOr<ParsedArgs> p = ParseArgs(args, Lookup);
    return p.ok() ? std::string("ok") : std::string(p.status().message());
  };
  EXPECT_EQ(error({"--bogus", "--other", "-s"}), "unknown flag --bogus");
  EXPECT_EQ(error({"--fullsync", "--other", "--bogus"}), "unknown flag --other");
  EXPECT_EQ(error({"-h", "--bogus"}), "unknown flag --bogus");
  EXPECT_EQ(error({"--version", "-v"}), "flag -v needs a value");
  EXPECT_EQ(error({"--", "--bogus"}), "ok");
  EXPECT_EQ(error({"-x"}), "unknown flag -x");
  EXPECT_EQ(error({"--noquiet=true"}), "unknown flag --noquiet=true");
  EXPECT_EQ(error({"--nointerval", "5m"}), "unknown flag --nointerval");
  absl::StatusOr<ParsedArgs> p = ParseArgs({"-s", "--bogus", "-", "ks"}, Lookup);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->flags, (Flags{{"snapshot_dir", "--bogus"}})) << "a value flag takes the next word";
  EXPECT_EQ(p->positional, (std::vector<std::string>{"-", "ks"}));
}

}  // namespace
}  // namespace snaphaven
