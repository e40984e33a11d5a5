// When an sstable is whole: the one rule, for live sstables, incremental
// backups and snapshots alike.
//
// TOC.txt is not an authority. Cassandra only logs "Missing component" for
// a listed file that is absent and rebuilds a missing Summary.db or
// Filter.db; building an index later (SAI in 5.0, SASI in 3.x to 5.0)
// appends its components to the TOC.txt that every snapshot and backup of
// the sstable shares through a hard link, so their TOC lists files they
// never get; SASI on 3.11.14+/4.0.5+ can even truncate it to one "SI_"
// line. What must exist is what Cassandra needs to open the sstable; every
// other component (summary, filter, digest, CRC, SAI "SAI+..." and SASI
// "SI_..." parts) is copied when present and never waited for.
//
// Required, from Cassandra's source (see sstable_components.cc for the
// files each rule comes from):
//   every version:     Data.db, TOC.txt (written last: the writer finished)
//   big format:        Index.db          (1.2 to 5.0)
//   bti format (5.0):  Partitions.db
//   ma and later:      Statistics.db     (its serialization header is needed)
//   compressed:        CompressionInfo.db, when a TOC that lists Data.db
//                      lists it (compression is fixed when the sstable is
//                      written, before its TOC)
// A TOC that does not list Data.db (truncated by a SASI build) tells
// nothing: the files on disk are trusted, with a warning.

#ifndef SNAPHAVEN_SSTABLE_COMPONENTS_H_
#define SNAPHAVEN_SSTABLE_COMPONENTS_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "snaphaven/cassandra/cassandra_path.h"

namespace snaphaven {

// The components Cassandra needs to open `name`'s sstable. `toc` is its
// TOC.txt's text, or null when there is none (or it cannot be read).
std::vector<std::string> RequiredComponents(const SSTableName& name, const std::string* toc);

struct SSTableCompleteness {
  // "" when whole; else what is missing, for messages ("Index.db is
  // missing").
  std::string missing;
  // Set when the TOC could not be used (it does not list Data.db).
  std::string warning;
  bool whole() const { return missing.empty(); }
};

// Whether the sstable `name` is whole. `present(component)` tells whether
// "<prefix>-<component>" exists (at the source, or recorded at the
// destination when a killed move already deleted it at the source).
SSTableCompleteness CheckSSTableComplete(
    const SSTableName& name, const std::string* toc,
    const std::function<bool(absl::string_view component)>& present);

}  // namespace snaphaven

#endif  // SNAPHAVEN_SSTABLE_COMPONENTS_H_
