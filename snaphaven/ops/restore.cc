#include "snaphaven/ops/restore.h"

#include <algorithm>
#include <cerrno>
#include <map>
#include <memory>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/types/optional.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "snaphaven/cassandra/cassandra_metadata.h"
#include "snaphaven/cassandra/cassandra_path.h"
#include "snaphaven/cassandra/sstable_components.h"
#include "snaphaven/storage/checksum.h"
#include "snaphaven/storage/copier.h"
#include "snaphaven/state/destination_walker.h"
#include "snaphaven/storage/bandwidth_limiter.h"

namespace snaphaven {
namespace {

// How many names an error lists before "and N more".
constexpr size_t kNamesInMessage = 5;

// "users-1a2b...(32 hex)" -> "users"; a 2.x directory without an id is the
// table name itself.
std::string TableName(absl::string_view table_dir) {
  size_t dash = table_dir.rfind('-');
  if (dash == absl::string_view::npos) return std::string(table_dir);
  absl::string_view id = table_dir.substr(dash + 1);
  if (id.size() != 32) return std::string(table_dir);
  for (char c : id) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return std::string(table_dir);
  }
  return std::string(table_dir.substr(0, dash));
}

std::string NameList(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < kNamesInMessage; ++i) {
    absl::StrAppend(&out, i == 0 ? "" : ", ", names[i]);
  }
  if (names.size() > kNamesInMessage) {
    absl::StrAppend(&out, " and ", names.size() - kNamesInMessage, " more");
  }
  return out;
}

// A restored file whose bytes are not what the destination manifest
// recorded.
absl::Status CrcMismatchError(const std::string& source, uint32_t got, uint32_t recorded) {
  return absl::FailedPreconditionError(absl::StrFormat(
      "%s is corrupt: its bytes give CRC-32 %08x, the destination manifest recorded %08x",
      source, got, recorded));
}

// The CRC-32 of a whole file, read in pieces.
absl::StatusOr<uint32_t> FileCrc32(FileSystem& fs, const std::string& path) {
  absl::StatusOr<std::unique_ptr<ReadableFile>> in = fs.OpenForRead(path);
  if (!in.ok()) return in.status();
  std::string buffer(1 << 20, '\0');
  uint32_t crc = 0;
  while (true) {
    absl::StatusOr<size_t> n = (*in)->Read(buffer.data(), buffer.size());
    if (!n.ok()) return n.status();
    if (*n == 0) return crc;
    crc = Crc32(crc, absl::string_view(buffer.data(), *n));
  }
}

struct RestoreFile {
  std::string source_rel;  // below the destination
  std::string target_rel;  // below the restore root
  FileStat stat;           // of the destination copy
  absl::optional<ManifestEntry> entry;  // none: not recorded
  bool data_db = false;
  // Already at the target, whole and the same (a restore stopped halfway
  // placed it): kept, not copied again.
  bool keep = false;
};

struct TableCopy {
  std::string keyspace;
  std::string table_dir;
  std::vector<RestoreFile> files;
};

// What the checks before the copy found wrong.
struct Problems {
  std::vector<std::string> missing;
  std::vector<std::string> changed;
  std::vector<std::string> conflicts;
};

// Creates `dir` and every missing directory above it, making each new name
// durable; the directories created are appended to `created`.
absl::Status MakeDirs(FileSystem& fs, const std::string& dir, std::vector<std::string>* created) {
  absl::StatusOr<FileStat> st = fs.Stat(dir);
  if (st.ok()) {
    if (st->type == FileType::kDirectory) return absl::OkStatus();
    return absl::FailedPreconditionError(
        absl::StrCat(dir, " exists and is not a directory: cannot restore into it"));
  }
  if (!IsVanished(st.status())) return st.status();
  std::string parent(DirName(dir));
  if (parent.empty() || parent == dir) return st.status();
  absl::Status status = MakeDirs(fs, parent, created);
  if (!status.ok()) return status;
  status = fs.MakeDir(dir);
  if (!status.ok()) return status;
  created->push_back(dir);
  return fs.SyncDir(parent);
}

// Where a file of the snapshot goes: "ks/t/snapshots/tag/[.idx/]f" ->
// "ks/t/[.idx/]f".
std::string TargetOf(const std::string& source_rel, const std::string& tag_rel,
                     const std::string& table_rel) {
  return JoinPath(table_rel, absl::string_view(source_rel).substr(tag_rel.size() + 1));
}

class Restorer {
 public:
  Restorer(FileSystem& fs, const Manifest& manifest, const Options& options,
           const std::string& loader_host)
      : fs_(fs), manifest_(manifest), options_(options), loader_host_(loader_host) {}

  absl::StatusOr<RestoreResult> Run();

 private:
  absl::Status CheckOptions();
  // Finds the keyspace's copies of the tag; false when it has none.
  absl::StatusOr<bool> CollectKeyspace(const std::string& keyspace);
  // Every keyspace asked for (or at the destination), into tables_.
  absl::Status CollectAll();
  absl::Status CollectTable(const std::string& keyspace, const std::string& table_dir,
                            const std::set<std::string>& recorded);
  // The regular files of the tag directory and its index directories;
  // anything else is skipped with a warning. None: no tag directory.
  absl::Status ListTagFiles(const std::string& tag_rel, std::map<std::string, FileStat>& found);
  // One file of the copy, with its entry; a size that differs from the
  // entry, and a target already there, are sorted out now.
  absl::StatusOr<RestoreFile> PlanFile(const std::string& rel, const FileStat& stat,
                                       const std::string& tag_rel, const std::string& table_rel);
  // Sorts out a target that exists: a whole copy of `file` left by an
  // earlier restore (same size, mtime and CRC-32) is kept; anything else
  // is a conflict.
  absl::Status CheckExistingTarget(RestoreFile& file, const FileStat& target);
  // Every Data.db manifest.json lists and every component each TOC.txt
  // lists must be among the files found.
  absl::Status CheckComplete(const std::string& tag_rel,
                             const std::map<std::string, FileStat>& found);
  std::string NoCopyMessage(const std::string& keyspace);
  // The error for whatever collecting found wrong; OK when nothing.
  absl::Status RefuseProblems() const;
  // CopyAll, and on failure RollBack, the message saying what is left.
  absl::Status CopyOrRollBack();
  absl::Status CopyAll();
  // What a file's bytes are checked against while it is copied.
  struct Expectation {
    ExpectedDigest digest;
    bool has_digest = false;
    // The digest is the manifest's CRC-32 (no sstable digest for it).
    bool crc_as_digest = false;
  };
  Expectation ExpectationFor(const RestoreFile& file);
  // Counts a file not in the manifest, or one nothing checks.
  void CountUnverified(const RestoreFile& file, const std::string& source, bool has_digest);
  absl::Status CopyOne(Copier& copier, const RestoreFile& file);
  // The error for a copy that did not complete (OK for kDone).
  absl::Status CheckOutcome(const RestoreFile& file, const std::string& source,
                            const CopyResult& copied, const Expectation& expect);
  void WarnUnverified();
  void ListTablesAndCommands();
  // Removes what this call placed; "" when everything went.
  std::string RollBack();
  void RemoveQuarantined(const std::string& quarantined_rel);
  std::string Dest(absl::string_view rel) const { return JoinPath(destination_, rel); }

  FileSystem& fs_;
  const Manifest& manifest_;
  const Options& options_;
  const std::string& loader_host_;
  std::string destination_;   // resolved
  std::string restore_root_;  // resolved
  std::string temp_dir_;
  std::vector<TableCopy> tables_;
  Problems problems_;
  std::vector<std::string> created_dirs_;
  std::vector<std::string> placed_;
  RestoreResult result_;
  std::unique_ptr<BandwidthLimiter> limiter_;  // --max_bandwidth
  int64_t unrecorded_ = 0;
  std::string first_unrecorded_;
  int64_t unchecked_ = 0;
  std::string first_unchecked_;
};

absl::Status Restorer::CheckOptions() {
  if (options_.destination.empty()) return absl::InvalidArgumentError("no destination given");
  if (options_.restore_to.empty()) {
    return absl::InvalidArgumentError("no restore directory given");
  }
  const std::string& tag = options_.restore_tag;
  if (tag.empty() || tag == "." || tag == ".." || absl::StrContains(tag, '/') ||
      absl::StrContains(tag, '\0')) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid snapshot tag '", tag, "': give one snapshot directory name"));
  }
  for (const std::string& keyspace : options_.keyspaces) {
    absl::Status valid = ValidateKeyspaceName(keyspace);
    if (!valid.ok()) return valid;
  }
  absl::StatusOr<std::string> destination = fs_.RealPath(options_.destination);
  absl::StatusOr<FileStat> st =
      destination.ok() ? fs_.Stat(*destination) : absl::StatusOr<FileStat>(destination.status());
  if (!st.ok() || st->type != FileType::kDirectory) {
    return absl::InvalidArgumentError(absl::StrCat(
        "destination ", options_.destination, " is not a directory",
        st.ok() ? "" : absl::StrCat(" (", st.status().message(), ")")));
  }
  destination_ = *destination;

  absl::StatusOr<std::string> restore = ResolveMaybeMissing(fs_, options_.restore_to, "restore directory");
  if (!restore.ok()) {
    if (restore.status().code() == absl::StatusCode::kInvalidArgument) return restore.status();
    return absl::InvalidArgumentError(absl::StrCat("restore directory ", options_.restore_to,
                                                   " cannot be resolved (",
                                                   restore.status().message(), ")"));
  }
  restore_root_ = *restore;
  for (const std::string& root : options_.data_roots) {
    absl::StatusOr<std::string> real = ResolveMaybeMissing(fs_, root, "data root");
    if (!real.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("data root ", root, " cannot be resolved (",
                                                     real.status().message(), ")"));
    }
    if (IsSameOrInside(restore_root_, *real)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "restore directory ", options_.restore_to, " (", restore_root_,
          ") is inside the live data root ", *real,
          ": restore to a staging directory, then load it with nodetool import"));
    }
  }
  if (IsSameOrInside(restore_root_, destination_)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "restore directory ", options_.restore_to, " (", restore_root_,
        ") is inside the snaphaven destination ", destination_));
  }
  temp_dir_ = JoinPath(restore_root_, kRestoreTempDirName);
  result_.restore_root = restore_root_;
  return absl::OkStatus();
}

absl::StatusOr<bool> Restorer::CollectKeyspace(const std::string& keyspace) {
  // Table directories at the destination, and those the manifest knows
  // copies of the tag in (a table whose copy vanished must be reported).
  std::map<std::string, std::set<std::string>> tables;
  absl::StatusOr<std::vector<std::string>> names = fs_.ListDir(Dest(keyspace));
  if (names.ok()) {
    for (const std::string& name : *names) {
      absl::StatusOr<FileStat> st = fs_.Stat(Dest(JoinPath(keyspace, name)));
      if (st.ok() && st->type == FileType::kDirectory) tables[name];
    }
  } else if (!IsVanished(names.status())) {
    return names.status();
  }
  // The tables with a recorded copy of the tag, from the manifest's
  // directories (nothing read in for this).
  for (const std::string& dir : manifest_.Directories()) {
    PathInfo info = ClassifyPath(JoinPath(dir, "x"));
    if (info.kind == PathKind::kSnapshot && info.keyspace == keyspace &&
        info.tag == options_.restore_tag) {
      tables[info.table_dir];
    }
  }
  const size_t before = tables_.size();
  for (auto& [table_dir, recorded] : tables) {
    // Table by table: the copy's sections read in, its files taken (with
    // their entries), then let go of.
    const std::string table_rel = JoinPath(keyspace, table_dir);
    const std::string tag_rel = JoinPath(JoinPath(table_rel, "snapshots"), options_.restore_tag);
    absl::Status loaded = manifest_.LoadBelow(tag_rel);
    if (!loaded.ok()) {
      // Not a usage error: the manifest is damaged or unreadable.
      return absl::DataLossError(loaded.message());
    }
    const std::string prefix = tag_rel + "/";
    const Manifest::Map& entries = manifest_.loaded_entries();
    for (auto it = entries.lower_bound(prefix);
         it != entries.end() && absl::StartsWith(it->first, prefix); ++it) {
      recorded.insert(it->first);
    }
    absl::Status status = CollectTable(keyspace, table_dir, recorded);
    manifest_.Release(table_rel);
    if (!status.ok()) return status;
  }
  return tables_.size() > before;
}

absl::Status Restorer::ListTagFiles(const std::string& tag_rel,
                                    std::map<std::string, FileStat>& found) {
  absl::StatusOr<FileStat> tag_stat = fs_.Stat(Dest(tag_rel));
  if (!tag_stat.ok()) {
    // No tag directory is no copy here (the manifest may still record one).
    return IsVanished(tag_stat.status()) ? absl::OkStatus() : tag_stat.status();
  }
  if (tag_stat->type != FileType::kDirectory) {
    return absl::FailedPreconditionError(absl::StrCat(Dest(tag_rel), " is not a directory"));
  }
  // The tag dir and its index dirs (one level, as Cassandra makes them).
  auto skipped = [this](const std::string& rel) {
    result_.warnings.push_back(absl::StrCat(
        Dest(rel), " skipped: not a snapshot file nor a secondary index directory"));
  };
  DestinationVisitor visitor;
  visitor.enter = [&](const std::string& rel, const FileStat&) {
    // ".<index>" directly in the tag directory.
    const bool index_dir = DirName(rel) == tag_rel && rel[tag_rel.size() + 1] == '.';
    if (!index_dir) skipped(rel);
    return index_dir;
  };
  visitor.file = [&](const std::string& rel, const FileStat& st) {
    if (st.type == FileType::kRegular) {
      found[rel] = st;
    } else {
      skipped(rel);
    }
    return absl::OkStatus();
  };
  return WalkDestination(fs_, destination_, tag_rel, visitor);
}

absl::StatusOr<RestoreFile> Restorer::PlanFile(const std::string& rel, const FileStat& stat,
                                               const std::string& tag_rel,
                                               const std::string& table_rel) {
  RestoreFile file;
  file.source_rel = rel;
  file.target_rel = TargetOf(rel, tag_rel, table_rel);
  file.stat = stat;
  if (const ManifestEntry* entry = manifest_.Find(rel)) file.entry = *entry;
  absl::optional<SSTableName> name = ParseSSTablePath(rel);
  file.data_db = name.has_value() && name->component == "Data.db";
  if (file.entry.has_value() && file.entry->size != stat.size) {
    problems_.changed.push_back(absl::StrCat(Dest(rel), " (size ", stat.size,
                                             ", recorded ", file.entry->size, ")"));
  }
  // A target already there is kept or refused now, before anything is
  // written (all or nothing).
  absl::StatusOr<FileStat> target = fs_.Stat(JoinPath(restore_root_, file.target_rel));
  if (target.ok()) {
    absl::Status checked = CheckExistingTarget(file, *target);
    if (!checked.ok()) return checked;
  } else if (!IsVanished(target.status())) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot restore to ", JoinPath(restore_root_, file.target_rel), ": ",
        target.status().message()));
  }
  return file;
}

absl::Status Restorer::CollectTable(const std::string& keyspace, const std::string& table_dir,
                                    const std::set<std::string>& recorded) {
  const std::string table_rel = JoinPath(keyspace, table_dir);
  const std::string tag_rel = JoinPath(JoinPath(table_rel, "snapshots"), options_.restore_tag);
  std::map<std::string, FileStat> found;
  absl::Status listed = ListTagFiles(tag_rel, found);
  if (!listed.ok()) return listed;
  if (found.empty() && recorded.empty()) return absl::OkStatus();  // no copy of the tag

  for (const std::string& rel : recorded) {
    if (found.count(rel) == 0) problems_.missing.push_back(Dest(rel));
  }
  absl::Status complete = CheckComplete(tag_rel, found);
  if (!complete.ok()) return complete;

  TableCopy table{keyspace, table_dir, {}};
  for (const auto& [rel, stat] : found) {
    absl::StatusOr<RestoreFile> file = PlanFile(rel, stat, tag_rel, table_rel);
    if (!file.ok()) return file.status();
    table.files.push_back(*std::move(file));
  }
  // Digest components (and everything else) before the Data.db files whose
  // check reads them: a damaged digest file is then named as such.
  std::stable_partition(table.files.begin(), table.files.end(),
                        [](const RestoreFile& f) { return !f.data_db; });
  tables_.push_back(std::move(table));
  return absl::OkStatus();
}

absl::Status Restorer::CheckExistingTarget(RestoreFile& file, const FileStat& target) {
  const std::string path = JoinPath(restore_root_, file.target_rel);
  if (target.type != FileType::kRegular || target.size != file.stat.size ||
      target.mtime_ns != file.stat.mtime_ns) {
    problems_.conflicts.push_back(path);
    return absl::OkStatus();
  }
  // The CRC-32 the copy was checked against when it was placed: the
  // manifest's, else the destination copy's own bytes.
  absl::StatusOr<uint32_t> want = file.entry.has_value() && file.entry->has_crc32
                                      ? absl::StatusOr<uint32_t>(file.entry->crc32)
                                      : FileCrc32(fs_, Dest(file.source_rel));
  if (!want.ok()) return want.status();
  absl::StatusOr<uint32_t> got = FileCrc32(fs_, path);
  if (!got.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot read ", path, " to check it: ", got.status().message()));
  }
  if (*got == *want) {
    file.keep = true;
  } else {
    problems_.conflicts.push_back(path);
  }
  return absl::OkStatus();
}

absl::Status Restorer::CheckComplete(const std::string& tag_rel,
                                     const std::map<std::string, FileStat>& found) {
  const std::string manifest_json = JoinPath(tag_rel, "manifest.json");
  const bool taken_by_2_0 =
      !found.empty() && std::all_of(found.begin(), found.end(), [](const auto& file) {
        absl::optional<SSTableName> name = ParseSSTablePath(file.first);
        return !name.has_value() || WrittenBefore21(*name);
      });
  if (found.count(manifest_json) == 0 && taken_by_2_0) {
    // 2.0 wrote no manifest.json; its sstables are checked one by one below.
  } else if (found.count(manifest_json) == 0) {
    result_.warnings.push_back(absl::StrCat(
        Dest(tag_rel), " has no manifest.json: whether the snapshot is complete is not checked"));
  } else {
    absl::StatusOr<std::string> text = fs_.ReadFile(Dest(manifest_json));
    if (!text.ok()) return text.status();
    absl::StatusOr<SnapshotManifest> parsed = ParseSnapshotManifest(*text);
    if (!parsed.ok()) {
      result_.warnings.push_back(absl::StrCat(Dest(manifest_json), ": ",
                                              parsed.status().message(),
                                              "; whether the snapshot is complete is not checked"));
    } else {
      for (const std::string& listed : parsed->files) {
        const std::string rel = JoinPath(tag_rel, listed);
        if (found.count(rel) == 0) {
          problems_.missing.push_back(absl::StrCat(Dest(rel), " (listed in manifest.json)"));
        }
      }
    }
  }
  // Each sstable whole by the one rule (sstable_components.h): the TOC is
  // not an authority (an index build appends files the snapshot never got).
  std::map<std::string, SSTableName> sstables;  // "<dir>/<prefix>"
  for (const auto& [rel, stat] : found) {
    absl::optional<SSTableName> name = ParseSSTablePath(rel);
    if (name.has_value() && !name->temporary) {
      sstables.emplace(absl::StrCat(rel.substr(0, rel.rfind('/') + 1), name->prefix), *name);
    }
  }
  for (const auto& [key, name] : sstables) {
    absl::StatusOr<std::string> toc = fs_.ReadFile(Dest(key + "-TOC.txt"));
    if (!toc.ok() && !IsVanished(toc.status())) return toc.status();
    for (const std::string& component : RequiredComponents(name, toc.ok() ? &*toc : nullptr)) {
      const std::string part = absl::StrCat(key, "-", component);
      const bool named = std::any_of(
          problems_.missing.begin(), problems_.missing.end(),
          [&](const std::string& m) { return absl::StartsWith(m, Dest(part)); });
      if (found.count(part) == 0 && !named) {
        problems_.missing.push_back(absl::StrCat(Dest(part), " (Cassandra needs it to open the sstable)"));
      }
    }
  }
  return absl::OkStatus();
}

std::string Restorer::NoCopyMessage(const std::string& keyspace) {
  std::set<std::string> tags;
  absl::StatusOr<std::vector<std::string>> tables = fs_.ListDir(Dest(keyspace));
  if (!tables.ok()) {
    return absl::StrCat("keyspace ", keyspace, " is not at the destination ", destination_);
  }
  for (const std::string& table : *tables) {
    absl::StatusOr<std::vector<std::string>> names =
        fs_.ListDir(Dest(JoinPath(JoinPath(keyspace, table), "snapshots")));
    if (names.ok()) tags.insert(names->begin(), names->end());
  }
  std::string message = absl::StrCat("no copy of snapshot '", options_.restore_tag,
                                     "' of keyspace ", keyspace, " at ", destination_);
  if (tags.empty()) return absl::StrCat(message, " (it has no snapshot copies)");
  std::vector<std::string> listed;
  for (const std::string& tag : tags) listed.push_back(absl::StrCat("'", tag, "'"));
  return absl::StrCat(message, " (it has ", NameList(listed), ")");
}

void Restorer::RemoveQuarantined(const std::string& quarantined_rel) {
  // The Copier keeps a corrupt copy as evidence; here the evidence is the
  // destination file itself, so the extra copy goes.
  (void)fs_.Remove(JoinPath(restore_root_, quarantined_rel));
  std::string dir(DirName(quarantined_rel));
  while (!dir.empty() && fs_.RemoveDir(JoinPath(restore_root_, dir)).ok()) {
    dir = std::string(DirName(dir));
  }
}

Restorer::Expectation Restorer::ExpectationFor(const RestoreFile& file) {
  Expectation expect;
  // A Data.db is checked against its sstable's own digest component, the
  // check Cassandra itself would make.
  if (file.data_db) {
    absl::optional<ExpectedDigest> found =
        FindSSTableDigest(fs_, destination_, file.source_rel, &result_.warnings);
    if (found.has_value()) {
      expect.digest = *std::move(found);
      expect.has_digest = true;
    }
  }
  // Otherwise the manifest's CRC-32 is the digest: the Copier then refuses
  // a corrupt file before it gets its name.
  if (!expect.has_digest && file.entry.has_value() && file.entry->has_crc32) {
    expect.digest.algorithm = DigestAlgorithm::kCrc32;
    expect.digest.value = file.entry->crc32;
    expect.digest.digest_file = "the destination manifest";
    expect.has_digest = true;
    expect.crc_as_digest = true;
  }
  return expect;
}

void Restorer::CountUnverified(const RestoreFile& file, const std::string& source,
                               bool has_digest) {
  if (!file.entry.has_value()) {
    if (unrecorded_++ == 0) first_unrecorded_ = source;
  } else if (!has_digest) {
    if (unchecked_++ == 0) first_unchecked_ = source;
  }
}

absl::Status Restorer::CheckOutcome(const RestoreFile& file, const std::string& source,
                                    const CopyResult& copied, const Expectation& expect) {
  switch (copied.outcome) {
    case CopyOutcome::kVanished:
      return absl::FailedPreconditionError(
          absl::StrCat(source, " vanished from the destination during the restore"));
    case CopyOutcome::kChanged:
      return absl::FailedPreconditionError(absl::StrCat(
          source, " changed during the restore (hold the destination's lock while restoring)"));
    case CopyOutcome::kCorrupt:
      RemoveQuarantined(copied.quarantined);
      if (expect.crc_as_digest) return CrcMismatchError(source, copied.crc32, file.entry->crc32);
      return absl::FailedPreconditionError(absl::StrCat(
          source, " is corrupt: it does not match ",
          expect.digest.digest_file.substr(expect.digest.digest_file.rfind('/') + 1),
          " (which says ", expect.digest.Describe(), "; the bytes give ", copied.digest_text,
          ")"));
    case CopyOutcome::kDone:
      return absl::OkStatus();
    case CopyOutcome::kStaged:  // never asked for here
      return absl::InternalError(absl::StrCat(source, ": a staged copy was not asked for"));
  }
  return absl::OkStatus();
}

absl::Status Restorer::CopyOne(Copier& copier, const RestoreFile& file) {
  const std::string source = Dest(file.source_rel);
  const Expectation expect = ExpectationFor(file);
  const ExpectedDigest* expected = expect.has_digest ? &expect.digest : nullptr;
  CountUnverified(file, source, expect.has_digest);

  absl::StatusOr<CopyResult> copied = copier.Copy(source, file.stat, file.target_rel, expected);
  if (!copied.ok()) {
    return absl::Status(copied.status().code(),
                        absl::StrCat("restoring ", source, ": ", copied.status().message()));
  }
  absl::Status outcome = CheckOutcome(file, source, *copied, expect);
  if (!outcome.ok()) return outcome;
  placed_.push_back(JoinPath(restore_root_, file.target_rel));
  // A Data.db checked by its sstable digest must still give the manifest's
  // CRC-32 (it is placed already: a failure here rolls it back).
  const bool has_crc = file.entry.has_value() && file.entry->has_crc32;
  if (has_crc && !expect.crc_as_digest &&
      (!copied->has_crc32 || copied->crc32 != file.entry->crc32)) {
    return CrcMismatchError(source, copied->crc32, file.entry->crc32);
  }
  ++result_.files;
  result_.bytes += file.stat.size;
  return absl::OkStatus();
}

absl::Status Restorer::CopyAll() {
  std::set<std::string> dirs;
  for (const TableCopy& table : tables_) {
    for (const RestoreFile& file : table.files) {
      dirs.insert(std::string(DirName(JoinPath(restore_root_, file.target_rel))));
    }
  }
  absl::Status status = MakeDirs(fs_, restore_root_, &created_dirs_);
  for (const std::string& dir : dirs) {
    if (status.ok()) status = MakeDirs(fs_, dir, &created_dirs_);
  }
  if (!status.ok()) return status;

  // The temporary directory; a leftover of a killed restore is emptied.
  absl::StatusOr<FileStat> temp = fs_.Stat(temp_dir_);
  if (temp.ok() && temp->type != FileType::kDirectory) {
    return absl::FailedPreconditionError(
        absl::StrCat(temp_dir_, " exists and is not a directory"));
  }
  if (!temp.ok()) {
    if (!IsVanished(temp.status())) return temp.status();
    status = fs_.MakeDir(temp_dir_);
    if (!status.ok()) return status;
  }
  Copier copier(fs_, restore_root_, temp_dir_, /*preserve_owner=*/true, /*checksum=*/true);
  absl::StatusOr<int> cleaned = copier.CleanTempDir();
  if (!cleaned.ok()) return cleaned.status();

  if (options_.max_bandwidth > 0) {
    limiter_ = std::make_unique<BandwidthLimiter>(options_.max_bandwidth);
    copier.set_limiter(limiter_.get());
  }
  for (const TableCopy& table : tables_) {
    for (const RestoreFile& file : table.files) {
      if (file.keep) {
        ++result_.kept_files;
        result_.kept_bytes += file.stat.size;
        continue;
      }
      status = CopyOne(copier, file);
      if (!status.ok()) return status;
    }
  }
  status = copier.SyncPendingDirs();
  if (!status.ok()) return status;
  status = fs_.RemoveDir(temp_dir_);
  if (!status.ok()) return status;
  return fs_.SyncDir(restore_root_);
}

std::string Restorer::RollBack() {
  std::vector<std::string> failures;
  for (auto it = placed_.rbegin(); it != placed_.rend(); ++it) {
    absl::Status removed = fs_.Remove(*it);
    if (!removed.ok() && !IsVanished(removed)) failures.push_back(std::string(removed.message()));
  }
  absl::StatusOr<std::vector<std::string>> leftovers = fs_.ListDir(temp_dir_);
  if (leftovers.ok()) {
    for (const std::string& name : *leftovers) (void)fs_.Remove(JoinPath(temp_dir_, name));
    absl::Status removed = fs_.RemoveDir(temp_dir_);
    if (!removed.ok() && !IsVanished(removed)) failures.push_back(std::string(removed.message()));
  }
  for (auto it = created_dirs_.rbegin(); it != created_dirs_.rend(); ++it) {
    absl::Status removed = fs_.RemoveDir(*it);
    if (!removed.ok() && !IsVanished(removed)) failures.push_back(std::string(removed.message()));
  }
  return NameList(failures);
}

absl::Status Restorer::CollectAll() {
  std::vector<std::string> keyspaces = options_.keyspaces;
  const bool all = keyspaces.empty();
  if (all) {
    // Every keyspace at the destination, by the one rule of what is one.
    absl::StatusOr<std::vector<std::string>> names = DestinationKeyspaces(fs_, destination_);
    if (!names.ok()) return names.status();
    keyspaces = *std::move(names);
  }
  std::set<std::string> seen;
  for (const std::string& keyspace : keyspaces) {
    if (!seen.insert(keyspace).second) continue;
    absl::StatusOr<bool> any = CollectKeyspace(keyspace);
    if (!any.ok()) return any.status();
    // A keyspace named by the user must have the tag; of all keyspaces,
    // only some need to.
    if (!*any && !all) return absl::InvalidArgumentError(NoCopyMessage(keyspace));
  }
  if (tables_.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("no copy of snapshot '", options_.restore_tag,
                                                   "' at ", destination_));
  }
  return absl::OkStatus();
}

absl::Status Restorer::RefuseProblems() const {
  if (!problems_.missing.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("snapshot '", options_.restore_tag,
                     "' is incomplete at the destination: missing ", NameList(problems_.missing),
                     "; nothing restored"));
  }
  if (!problems_.changed.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "changed at the destination since snaphaven recorded it: ", NameList(problems_.changed),
        "; nothing restored"));
  }
  if (!problems_.conflicts.empty()) {
    return absl::AlreadyExistsError(absl::StrCat(
        "already there and not what this restore would put there: ",
        NameList(problems_.conflicts),
        "; nothing restored (remove them, or restore somewhere else)"));
  }
  return absl::OkStatus();
}

absl::Status Restorer::CopyOrRollBack() {
  absl::Status status = CopyAll();
  if (status.ok()) return status;
  std::string left = RollBack();
  return absl::Status(
      status.code(),
      absl::StrCat(status.message(),
                   left.empty() ? "; nothing restored (what was copied was removed)"
                                : absl::StrCat("; the restore is incomplete and could not be "
                                               "cleaned up: ",
                                               left)));
}

void Restorer::WarnUnverified() {
  if (unrecorded_ > 0) {
    result_.warnings.push_back(absl::StrCat(
        unrecorded_, " file(s) not in the destination manifest (", first_unrecorded_,
        ", ...): only a Data.db's sstable digest checked them"));
  }
  if (unchecked_ > 0) {
    result_.warnings.push_back(absl::StrCat(
        unchecked_, " file(s) without a recorded CRC-32 (", first_unchecked_,
        ", ...) were not checked"));
  }
}

void Restorer::ListTablesAndCommands() {
  // All the nodetool import commands first, then the sstableloader ones as
  // the alternative (restore.h, RestoreResult::commands).
  std::vector<std::string> loaders;
  const std::string host = loader_host_.empty() ? "<host>" : ShellQuote(loader_host_);
  for (const TableCopy& table : tables_) {
    const std::string dir = JoinPath(JoinPath(restore_root_, table.keyspace), table.table_dir);
    result_.tables.push_back(JoinPath(table.keyspace, table.table_dir));
    result_.commands.push_back(absl::StrCat("nodetool import ", ShellQuote(table.keyspace), " ",
                                            ShellQuote(TableName(table.table_dir)), " ",
                                            ShellQuote(dir)));
    loaders.push_back(absl::StrCat("sstableloader -d ", host, " ", ShellQuote(dir)));
  }
  result_.commands.insert(result_.commands.end(), loaders.begin(), loaders.end());
}

absl::StatusOr<RestoreResult> Restorer::Run() {
  absl::Status status = CheckOptions();
  if (!status.ok()) return status;
  status = CollectAll();
  if (!status.ok()) return status;
  // All or nothing: every problem found while collecting refuses the
  // restore before anything is written.
  status = RefuseProblems();
  if (!status.ok()) return status;
  status = CopyOrRollBack();
  if (!status.ok()) return status;
  WarnUnverified();
  ListTablesAndCommands();
  return std::move(result_);
}

}  // namespace

std::string ShellQuote(absl::string_view s) {
  bool plain = !s.empty();
  for (char c : s) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) &&
        !absl::StrContains("_@%+=:,./-", c)) {
      plain = false;
      break;
    }
  }
  if (plain) return std::string(s);
  return absl::StrCat("'", absl::StrReplaceAll(s, {{"'", "'\\''"}}), "'");
}

absl::StatusOr<RestoreResult> RestoreSnapshot(FileSystem& fs, const Manifest& manifest,
                                              const Options& options,
                                              const std::string& loader_host) {
  return Restorer(fs, manifest, options, loader_host).Run();
}

}  // namespace snaphaven
