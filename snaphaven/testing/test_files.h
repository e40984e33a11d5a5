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

// A folder of the shared real-data fixtures (Cassandra's own test sstables:
// "cassandra-test-data"; "real-sstables"), beside the repository
// (<repo>/../shared/fixtures/<name>), else /work/shared/fixtures/<name>;
// "" when absent (the test then skips, naming it). REQUIRES: the test has
// data = ["//:README.md"], through which the repository is found.
std::string SharedFixturesDir(const std::string& name);

}  // namespace snaphaven::testing

#endif  // SNAPHAVEN_TESTING_TEST_FILES_H_
