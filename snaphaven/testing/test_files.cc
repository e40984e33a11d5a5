#include "snaphaven/testing/test_files.h"

#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <random>

#include "absl/strings/str_cat.h"

namespace snaphaven::testing {

std::string MakeTempDir(const std::string& name) {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string templ = absl::StrCat(base ? base : "/tmp", "/", name, "_XXXXXX");
  if (mkdtemp(templ.data()) == nullptr) {
    perror("mkdtemp");
    abort();
  }
  return templ;
}

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 random(seed);
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(random());
  return out;
}

std::string SharedFixturesDir(const std::string& name) {
  std::string candidates[2];
  char resolved[PATH_MAX];
  // README.md in the runfiles is a symlink into the repository.
  if (realpath("README.md", resolved) != nullptr) {
    std::string repo = resolved;
    candidates[0] = absl::StrCat(repo.substr(0, repo.rfind('/')), "/../shared/fixtures/", name);
  }
  candidates[1] = absl::StrCat("/work/shared/fixtures/", name);
  for (const std::string& dir : candidates) {
    struct stat st;
    if (dir.empty() || stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    return realpath(dir.c_str(), resolved) != nullptr ? std::string(resolved) : dir;
  }
  return "";
}

}  // namespace snaphaven::testing
