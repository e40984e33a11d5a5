#include "snaphaven/state/destination_walker.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "snaphaven/state/destination.h"

namespace snaphaven {
namespace {

// The fsck directory at the root of an ext2/3/4 file system (mke2fs).
constexpr absl::string_view kLostAndFound = "lost+found";

// A directory being walked: its listing, sorted, and how far the walk is.
struct Frame {
  std::string rel;
  std::vector<FileSystem::DirEntry> entries;
  size_t next = 0;
};

class Walker {
 public:
  Walker(FileSystem& fs, const std::string& destination, const DestinationVisitor& visitor)
      : fs_(fs), destination_(destination), visitor_(visitor) {}

  absl::Status Run(const std::string& scope);

 private:
  // Lists `rel` onto the stack, or gives the visitor why it cannot be.
  absl::Status Push(const std::string& rel);
  // Visits the next name of the directory on top of the stack.
  absl::Status VisitNext();
  absl::Status Error(const std::string& rel, const absl::Status& error) {
    return visitor_.error ? visitor_.error(rel, error) : error;
  }
  absl::Status File(const std::string& rel, const FileStat& stat) {
    return visitor_.file ? visitor_.file(rel, stat) : absl::OkStatus();
  }

  FileSystem& fs_;
  const std::string& destination_;
  const DestinationVisitor& visitor_;
  // The directories on the way down from the scope: only their listings
  // are held, so memory follows the largest directory, not the tree.
  std::vector<Frame> stack_;
};

absl::Status Walker::Run(const std::string& scope) {
  if (!scope.empty()) {
    // lstat: a scope that is a symlink must not lead the walk elsewhere.
    absl::StatusOr<FileStat> stat = fs_.Stat(JoinPath(destination_, scope));
    if (!stat.ok()) return Error(scope, stat.status());
    if (stat->type != FileType::kDirectory) return File(scope, *stat);
  }
  absl::Status status = Push(scope);
  while (status.ok() && !stack_.empty()) {
    if (stack_.back().next < stack_.back().entries.size()) {
      status = VisitNext();
      continue;
    }
    const std::string rel = std::move(stack_.back().rel);
    stack_.pop_back();
    // The scope itself is not left: the caller knows when the walk ends.
    if (!stack_.empty() && visitor_.leave) status = visitor_.leave(rel);
  }
  return status;
}

absl::Status Walker::Push(const std::string& rel) {
  // ListDirWithStats: an lstat relative to the open directory per name,
  // no path lookup each (thousands of names per table on a slow NAS).
  absl::StatusOr<std::vector<FileSystem::DirEntry>> listed =
      fs_.ListDirWithStats(JoinPath(destination_, rel));
  if (!listed.ok()) return Error(rel, listed.status());
  std::vector<FileSystem::DirEntry>& entries = *listed;
  if (rel.empty()) {
    entries.erase(std::remove_if(entries.begin(), entries.end(),
                                 [](const FileSystem::DirEntry& entry) {
                                   return ClassifyDestinationTopLevel(entry.name) ==
                                          DestinationTopLevel::kNotMirrored;
                                 }),
                  entries.end());
  }
  // Sorted: the same destination is walked, and reported, the same way.
  std::sort(entries.begin(), entries.end(),
            [](const FileSystem::DirEntry& a, const FileSystem::DirEntry& b) {
              return a.name < b.name;
            });
  stack_.push_back(Frame{rel, std::move(entries), 0});
  return absl::OkStatus();
}

absl::Status Walker::VisitNext() {
  Frame& top = stack_.back();
  FileSystem::DirEntry entry = std::move(top.entries[top.next++]);
  const std::string rel = JoinPath(top.rel, entry.name);
  if (!entry.stat.ok()) return Error(rel, entry.stat.status());
  // Only a real directory is entered (lstat): a symlink is a file here.
  if (entry.stat->type != FileType::kDirectory) return File(rel, *entry.stat);
  if (visitor_.enter && !visitor_.enter(rel, *entry.stat)) return absl::OkStatus();
  return Push(rel);  // `top` may move: not used past here
}

}  // namespace

DestinationTopLevel ClassifyDestinationTopLevel(absl::string_view name) {
  if (name == kCommitlogArchiveDirName) return DestinationTopLevel::kCommitlogArchive;
  // kStateDirName begins with '.' too: one test covers both.
  static_assert(kStateDirName[0] == '.', "the state directory is a dot-name");
  if (absl::StartsWith(name, ".") || name == kLostAndFound) {
    return DestinationTopLevel::kNotMirrored;
  }
  return DestinationTopLevel::kKeyspace;
}

bool IsTableUnit(absl::string_view rel) {
  const size_t slash = rel.find('/');
  return slash != absl::string_view::npos && slash > 0 && slash + 1 < rel.size() &&
         rel.find('/', slash + 1) == absl::string_view::npos;
}

absl::Status WalkDestination(FileSystem& fs, const std::string& destination,
                             const std::string& scope, const DestinationVisitor& visitor) {
  return Walker(fs, destination, visitor).Run(scope);
}

absl::StatusOr<std::vector<std::string>> DestinationKeyspaces(FileSystem& fs,
                                                              const std::string& destination) {
  std::vector<std::string> keyspaces;
  DestinationVisitor visitor;
  visitor.enter = [&keyspaces](const std::string& rel, const FileStat&) {
    if (ClassifyDestinationTopLevel(rel) == DestinationTopLevel::kKeyspace) {
      keyspaces.push_back(rel);
    }
    return false;  // the root's listing is all it takes
  };
  visitor.error = [](const std::string& rel, const absl::Status& error) {
    // A destination not made yet holds nothing; a name gone meanwhile is none.
    return IsVanished(error) ? absl::OkStatus() : error;
  };
  absl::Status status = WalkDestination(fs, destination, "", visitor);
  if (!status.ok()) return status;
  return keyspaces;  // sorted: the walk lists names in order
}

}  // namespace snaphaven
