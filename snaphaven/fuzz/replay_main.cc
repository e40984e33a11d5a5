// A main for a fuzz target outside libFuzzer: feeds LLVMFuzzerTestOneInput
// every seed input seeds.txt lists for the target, and every regression
// input (testdata/fuzz_regressions/<target>/: the crashes fuzzing found).
// So each fuzz target is also a unit test, in the default gcc build and
// under --config=asan and --config=tsan: a regression input that crashes
// again fails it, and a change that breaks a fuzz target's build is seen by
// `bazel test //...`.
//
//   <target>_replay_test <target> <seeds.txt>     (as the BUILD runs it)
//   <target>_replay_test <target> FILE_OR_DIR...  (given inputs only)
//
// Bazel's report of it holds one test case, which tools/test.sh counts.

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "snaphaven/testing/test_files.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int* argc, char*** argv);

namespace {

bool IsDirectory(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// Every regular file at or below `path`, sorted; those whose names end with
// `suffix`.
void CollectFiles(const std::string& path, const std::string& suffix,
                  std::vector<std::string>* out) {
  if (!IsDirectory(path)) {
    if (absl::EndsWith(path, suffix)) out->push_back(path);
    return;
  }
  DIR* dir = opendir(path.c_str());
  if (dir == nullptr) return;
  std::vector<std::string> names;
  while (struct dirent* entry = readdir(dir)) {
    std::string name = entry->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  closedir(dir);
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) CollectFiles(path + "/" + name, suffix, out);
}

// The seed sources seeds.txt lists for `target`; false when it has no line.
bool SeedSources(const std::string& seeds_file, const std::string& target,
                 std::vector<std::string>* sources) {
  std::ifstream in(seeds_file);
  std::string line;
  while (std::getline(in, line)) {
    absl::string_view content = absl::StripAsciiWhitespace(line);
    if (content.empty() || content[0] == '#') continue;
    std::vector<std::string> words = absl::StrSplit(content, ' ', absl::SkipWhitespace());
    if (words[0] != target) continue;
    sources->assign(words.begin() + 1, words.end());
    return true;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: " << argv[0] << " TARGET SEEDS_TXT | TARGET FILE_OR_DIR...\n";
    return 2;
  }
  const std::string target = argv[1];
  std::vector<std::string> inputs;
  size_t fixtures = 0;
  if (argc == 3 && absl::EndsWith(argv[2], "seeds.txt")) {
    std::vector<std::string> sources;
    if (!SeedSources(argv[2], target, &sources)) {
      std::cerr << target << " has no line in " << argv[2] << "\n";
      return 1;
    }
    sources.push_back("testdata/fuzz_regressions/" + target);
    for (const std::string& source : sources) {
      absl::string_view fixture = source;
      if (absl::ConsumePrefix(&fixture, "fixture:")) {
        // fixture:<folder>/<name suffix>, read where the tests find them.
        const size_t slash = fixture.find('/');
        const std::string dir =
            snaphaven::testing::SharedFixturesDir(std::string(fixture.substr(0, slash)));
        if (dir.empty()) {
          std::cerr << "shared fixtures absent: not replaying " << source << "\n";
          continue;
        }
        const size_t before = inputs.size();
        CollectFiles(dir, std::string(fixture.substr(slash + 1)), &inputs);
        fixtures += inputs.size() - before;
      } else if (source.find("fuzz_regressions") == std::string::npos || IsDirectory(source)) {
        const size_t before = inputs.size();
        CollectFiles(source, "", &inputs);
        if (inputs.size() == before) {
          std::cerr << "seed source " << source << " holds no file\n";
          return 1;
        }
      }
    }
  } else {
    for (int i = 2; i < argc; ++i) CollectFiles(argv[i], "", &inputs);
  }
  if (LLVMFuzzerInitialize != nullptr) LLVMFuzzerInitialize(&argc, &argv);
  for (const std::string& path : inputs) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream buffer;
    buffer << in.rdbuf();
    const std::string data = buffer.str();
    std::cerr << "replaying " << path << " (" << data.size() << " bytes)\n";
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(data.data()), data.size());
  }
  std::cerr << target << ": " << inputs.size() << " inputs replayed, " << fixtures
            << " of them from the shared fixtures\n";
  if (inputs.empty()) return 1;
  return 0;
}
