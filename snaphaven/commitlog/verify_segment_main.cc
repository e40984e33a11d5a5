// verify_segment FILE...: verifies Cassandra commitlog segments as
// snaphaven will before mirroring them, one line per file:
//   <path>: ok: version 5 (Cassandra 2.2), id ..., LZ4Compressor, ...
//   <path>: FAILED: sync marker at offset 20: CRC mismatch (...)
// Exit status 0 when every file verified, 1 when any did not, 2 on misuse.

#include <cstdio>
#include <string>

#include "snaphaven/commitlog/segment.h"

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::fprintf(stderr, "usage: %s CommitLog-<version>-<id>.log...\n", argv[0]);
    return argc < 2 ? 2 : 0;
  }
  int failed = 0;
  for (int i = 1; i < argc; ++i) {
    const snaphaven::commitlog::SegmentVerification result =
        snaphaven::commitlog::VerifySegmentFile(argv[i]);
    std::printf("%s: %s\n", argv[i], snaphaven::commitlog::Describe(result).c_str());
    if (!result.ok) ++failed;
  }
  return failed == 0 ? 0 : 1;
}
