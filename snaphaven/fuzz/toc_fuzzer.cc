// TOC.txt (cassandra_metadata.h ParseToc) and the completeness rule that
// reads it (sstable_components.h), for each sstable format.

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "snaphaven/cassandra/cassandra_metadata.h"
#include "snaphaven/cassandra/cassandra_path.h"
#include "snaphaven/fuzz/fuzz_util.h"
#include "snaphaven/cassandra/sstable_components.h"

namespace snaphaven {
namespace {

bool Contains(const std::vector<std::string>& v, absl::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace
}  // namespace snaphaven

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace snaphaven;
  const std::string toc(fuzz::AsText(data, size));
  const std::vector<std::string> listed = ParseToc(toc);
  for (const std::string& component : listed) {
    FUZZ_CHECK(!component.empty(), toc);
    FUZZ_CHECK(component.find('\n') == std::string::npos, component);
    FUZZ_CHECK(!absl::ascii_isspace(component.front()) && !absl::ascii_isspace(component.back()),
               component);
  }
  // Newer big and BTI formats, and the 2.x names.
  for (absl::string_view path : {"ks/t-1234/nb-1-big-Data.db", "ks/t-1234/da-1-bti-Data.db",
                                 "ks/t-1234/ma-3-big-Data.db", "ks/t/ks-t-ka-1-Data.db",
                                 "ks/t/ks-t-jb-2-Data.db"}) {
    absl::optional<SSTableName> name = ParseSSTablePath(path);
    FUZZ_CHECK(name.has_value(), path);
    const std::vector<std::string> required = RequiredComponents(*name, &toc);
    FUZZ_CHECK(Contains(required, "Data.db") && Contains(required, "TOC.txt"), path);
    // Compression is required exactly when the TOC lists it beside Data.db.
    FUZZ_CHECK(Contains(required, "CompressionInfo.db") ==
                   (Contains(listed, "Data.db") && Contains(listed, "CompressionInfo.db")),
               toc);
    // Everything present: whole. Only what the TOC lists present: whole
    // exactly when it lists every required component.
    SSTableCompleteness all =
        CheckSSTableComplete(*name, &toc, [](absl::string_view) { return true; });
    FUZZ_CHECK(all.whole(), all.missing);
    FUZZ_CHECK(all.warning.empty() == Contains(listed, "Data.db"), toc);
    SSTableCompleteness listed_only = CheckSSTableComplete(
        *name, &toc, [&](absl::string_view c) { return Contains(listed, c); });
    const bool lists_all = std::all_of(required.begin(), required.end(),
                                       [&](const std::string& c) { return Contains(listed, c); });
    FUZZ_CHECK(listed_only.whole() == lists_all, toc);
  }
  return 0;
}
