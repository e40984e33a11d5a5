#include "snaphaven/cassandra/sstable_components.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "snaphaven/cassandra/cassandra_metadata.h"

namespace snaphaven {
namespace {

constexpr absl::string_view kData = "Data.db";
constexpr absl::string_view kToc = "TOC.txt";
constexpr absl::string_view kCompressionInfo = "CompressionInfo.db";

// The components no sstable of `name`'s format and version opens without
// (read in Cassandra's release sources):
//  - Data.db and the primary index: SSTableReader.open asserts both, 2.0 to
//    4.1 (io/sstable/SSTableReader.java, from 2.2 io/sstable/format/
//    SSTableReader.java: "Data component is missing"); 5.0 names them per
//    format, primaryComponents (io/sstable/format/big/BigFormat.java: DATA,
//    PRIMARY_INDEX; io/sstable/format/bti/BtiFormat.java: DATA,
//    PARTITION_INDEX). BTI's Rows.db is not among them: the reader opens it
//    only when present (BtiTableReaderLoadingBuilder.openComponents).
//  - Statistics.db: before 3.0 a missing one is replaced by defaults
//    (io/sstable/metadata/MetadataSerializer.java, "No sstable stats for");
//    from "ma" on SSTableReader.open asserts it ("Stats component is
//    missing") and needs the serialization header in it.
//  - TOC.txt: Cassandra opens an sstable without one (SSTable.componentsFor
//    falls back to discoverComponentsFor), but the writer writes it last,
//    so its presence says the writer finished: snaphaven's own rule.
//  - Summary.db and Filter.db are rebuilt on load when missing
//    (SSTableReader.load; 5.0 GENERATED_ON_LOAD_COMPONENTS), digests and
//    CRC.db are only checked by scrub/verify: never required.
std::vector<std::string> BaseComponents(const SSTableName& name) {
  std::vector<std::string> required = {std::string(kData), std::string(kToc)};
  required.push_back(name.format == "bti" ? "Partitions.db" : "Index.db");
  // BTI ("da") is 5.0's: its version letters do not sort after "ma".
  if (name.version >= "ma" || name.format == "bti") required.push_back("Statistics.db");
  return required;
}

}  // namespace

std::vector<std::string> RequiredComponents(const SSTableName& name, const std::string* toc) {
  std::vector<std::string> required = BaseComponents(name);
  if (toc == nullptr) return required;
  std::vector<std::string> listed = ParseToc(*toc);
  bool lists_data = std::find(listed.begin(), listed.end(), kData) != listed.end();
  bool lists_compression =
      std::find(listed.begin(), listed.end(), kCompressionInfo) != listed.end();
  // A compressed sstable's Data.db cannot be read without its chunk
  // offsets: before 5.0 Cassandra silently reads it as uncompressed, 5.0
  // refuses it when the TOC lists CompressionInfo.db
  // (io/sstable/format/CompressionInfoComponent.java,
  // verifyCompressionInfoExistenceIfApplicable).
  if (lists_data && lists_compression) required.emplace_back(kCompressionInfo);
  return required;
}

SSTableCompleteness CheckSSTableComplete(
    const SSTableName& name, const std::string* toc,
    const std::function<bool(absl::string_view component)>& present) {
  SSTableCompleteness result;
  if (toc != nullptr) {
    std::vector<std::string> listed = ParseToc(*toc);
    if (std::find(listed.begin(), listed.end(), kData) == listed.end()) {
      result.warning = absl::StrCat(name.prefix,
                                    "-TOC.txt does not list Data.db (rewritten by an index "
                                    "build?): trusting the files on disk");
    }
  }
  for (const std::string& component : RequiredComponents(name, toc)) {
    if (!present(component)) {
      result.missing = absl::StrCat(name.prefix, "-", component, " is missing");
      break;
    }
  }
  return result;
}

}  // namespace snaphaven
