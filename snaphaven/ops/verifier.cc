#include "snaphaven/ops/verifier.h"

#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "snaphaven/storage/checksum.h"

namespace snaphaven {

struct DestinationVerifier::Inode {
  std::vector<size_t> names;  // indices into the files checked
  bool read = false;
  absl::optional<std::string> unopenable, unreadable;  // the error
  uint32_t crc = 0;
  absl::optional<ExpectedDigest> digest;
  std::string digest_problem;  // "corrupt (does not match ...)"
};

DestinationVerifier::DestinationVerifier(
    FileSystem& fs, std::string destination, int64_t mtime_granularity_ns,
    std::function<absl::optional<ExpectedDigest>(const std::string&)> digest_for)
    : fs_(fs),
      destination_(std::move(destination)),
      mtime_granularity_ns_(mtime_granularity_ns),
      digest_for_(std::move(digest_for)) {}

bool DestinationVerifier::Check(const std::vector<RecordedFile>& files, VerifyStats& stats,
                                const std::function<bool()>& stop,
                                const std::function<void(size_t, const std::string&)>& done) {
  // Every name stat'ed first; those that still match their record grouped
  // by inode, so each inode's bytes are read once.
  std::vector<absl::StatusOr<FileStat>> stat(files.size(), absl::UnknownError(""));
  std::map<std::pair<uint64_t, uint64_t>, Inode> inodes;
  std::vector<Inode*> inode_of(files.size(), nullptr);
  for (size_t i = 0; i < files.size(); ++i) {
    if (stop()) return false;
    stat[i] = fs_.Stat(JoinPath(destination_, *files[i].rel));
    const absl::StatusOr<FileStat>& st = stat[i];
    const ManifestEntry& entry = *files[i].entry;
    if (st.ok() && st->type == FileType::kRegular && st->size == entry.size &&
        SameMtime(st->mtime_ns, entry.mtime_ns, mtime_granularity_ns_)) {
      inode_of[i] = &inodes[{st->dev, st->ino}];
      inode_of[i]->names.push_back(i);
    }
  }
  for (size_t i = 0; i < files.size(); ++i) {
    if (stop()) return false;
    ++stats.files;
    const absl::StatusOr<FileStat>& st = stat[i];
    const ManifestEntry& entry = *files[i].entry;
    if (!st.ok() && IsVanished(st.status())) {
      ++stats.missing;
      done(i, "missing");
      continue;
    }
    if (inode_of[i] == nullptr) {
      ++stats.changed;
      done(i, st.ok() ? absl::StrCat("changed (size ", st->size, ", recorded ", entry.size, ")")
                      : absl::StrCat("changed (", st.status().message(), ")"));
      continue;
    }
    Inode& inode = *inode_of[i];
    if (!inode.read) Read(inode, files, *files[i].rel, st->size, stats);
    done(i, Verdict(inode, entry, stats));
  }
  return true;
}

void DestinationVerifier::Read(Inode& inode, const std::vector<RecordedFile>& files,
                               const std::string& rel, int64_t size, VerifyStats& stats) {
  inode.read = true;
  ++stats.distinct;
  for (size_t j : inode.names) {
    inode.digest = digest_for_(*files[j].rel);
    if (inode.digest.has_value()) break;
  }
  absl::StatusOr<std::unique_ptr<ReadableFile>> in = fs_.OpenForRead(JoinPath(destination_, rel));
  if (!in.ok()) {
    inode.unopenable = std::string(in.status().message());
    return;
  }
  absl::optional<DigestHasher> hasher;
  if (inode.digest.has_value()) hasher.emplace(*inode.digest, size);
  std::string buffer(1 << 20, '\0');
  while (true) {
    absl::StatusOr<size_t> got = (*in)->Read(buffer.data(), buffer.size());
    if (!got.ok()) {
      inode.unreadable = std::string(got.status().message());
      return;
    }
    if (*got == 0) break;
    absl::string_view piece(buffer.data(), *got);
    inode.crc = Crc32(inode.crc, piece);
    if (hasher.has_value()) hasher->Update(piece);
    stats.bytes += static_cast<int64_t>(*got);
  }
  if (hasher.has_value() && !hasher->Matches()) {
    const std::string& file = inode.digest->digest_file;
    inode.digest_problem = absl::StrCat("corrupt (does not match ", file.substr(file.rfind('/') + 1),
                                        ": it says ", inode.digest->Describe(),
                                        ", the bytes give ", hasher->Describe(), ")");
  }
}

std::string DestinationVerifier::Verdict(const Inode& inode, const ManifestEntry& entry,
                                         VerifyStats& stats) {
  if (inode.unopenable.has_value()) {
    ++stats.changed;
    return absl::StrCat("unreadable (", *inode.unopenable, ")");
  }
  if (inode.unreadable.has_value()) {
    ++stats.corrupt;
    return absl::StrCat("unreadable (", *inode.unreadable, ")");
  }
  if (entry.has_crc32 && inode.crc != entry.crc32) {
    ++stats.corrupt;
    return absl::StrFormat("corrupt (CRC-32 %08x, recorded %08x)", inode.crc, entry.crc32);
  }
  if (!inode.digest_problem.empty()) {
    ++stats.corrupt;
    return inode.digest_problem;
  }
  if (!entry.has_crc32 && !inode.digest.has_value()) ++stats.unchecked;
  return "";
}

}  // namespace snaphaven
