// Small helpers shared by the tests: temporary directories and test data.

#ifndef SNAPHAVEN_TESTING_TEST_FILES_H_
#define SNAPHAVEN_TESTING_TEST_FILES_H_

#include <cstdint>
#include <string>

namespace snaphaven::testing {

// A new directory under $TEST_TMPDIR (else /tmp) named <name>_XXXXXX;
// aborts if it cannot be made.
std::string MakeTempDir(const std::string& name);

// `n` pseudo-random bytes, the same for the same seed.
std::string RandomBytes(size_t n, uint32_t seed);

}  // namespace snaphaven::testing

#endif  // SNAPHAVEN_TESTING_TEST_FILES_H_
