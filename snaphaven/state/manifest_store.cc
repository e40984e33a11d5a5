#include "snaphaven/state/manifest_store.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "absl/container/btree_set.h"
#include "absl/random/random.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "snaphaven/cassandra/cassandra_path.h"
#include "snaphaven/storage/checksum.h"
#include "snaphaven/state/destination.h"

namespace snaphaven {
namespace {

constexpr absl::string_view kHeader = "snaphaven-manifest 5\n";
constexpr absl::string_view kHeaderV4 = "snaphaven-manifest 4\n";
constexpr absl::string_view kHeaderV3 = "snaphaven-manifest 3\n";
constexpr absl::string_view kHeaderV2 = "snaphaven-manifest 2\n";
constexpr absl::string_view kHeaderV1 = "snaphaven-manifest 1\n";
constexpr size_t kChunk = 1 << 20;
constexpr absl::string_view kLogHeader = "snaphaven-manifest-log 1";

// Plain printable bytes are written as they are; anything else C-escaped.
bool NeedsEscape(absl::string_view s) {
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || c == '\\' || c == '"' || c == '\'') return true;
  }
  return false;
}

void AppendEscaped(absl::string_view s, std::string* out) {
  if (NeedsEscape(s)) {
    *out += absl::CEscape(s);
  } else {
    out->append(s.data(), s.size());
  }
}

bool Unescape(absl::string_view s, std::string* out) {
  if (s.find('\\') == absl::string_view::npos) {
    out->assign(s.data(), s.size());
    return true;
  }
  return absl::CUnescape(s, out);
}

absl::Status Corrupt(size_t line, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("manifest line ", line, ": ", why));
}
absl::Status CorruptSection(absl::string_view dir, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("manifest section \"", absl::CEscape(dir), "\": ", why));
}

// The state directory (destination.h), or a path inside it.
bool IsInStateDir(absl::string_view path) {
  return absl::StartsWith(path, kStateDirName) &&
         (path.size() == kStateDirName.size() || path[kStateDirName.size()] == '/');
}

// A crafted manifest must never steer a write outside the destination.
bool IsAcceptablePath(absl::string_view path) {
  return IsSafeRelativePath(path) && !IsInStateDir(path) &&
         path.find('\0') == absl::string_view::npos;
}

// Splits `line` at tabs into exactly `n` fields.
bool SplitFields(absl::string_view line, absl::string_view* f, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    size_t tab = line.find('\t');
    if (i + 1 == n) {
      if (tab != absl::string_view::npos) return false;
      f[i] = line;
      return true;
    }
    if (tab == absl::string_view::npos) return false;
    f[i] = line.substr(0, tab);
    line.remove_prefix(tab + 1);
  }
  return n == 0;
}

// Reads a line's columns left to right in one pass, each number ending at
// the separator that must follow it: a load parses millions of them.
// Stricter than absl::SimpleAtoi (no spaces, no '+', no "0x"), which the
// writer never writes.
class ColumnReader {
 public:
  static constexpr char kEndOfText = '\0';  // as a separator: the text ends there

  explicit ColumnReader(absl::string_view text)
      : at_(text.data()), end_(text.data() + text.size()) {}

  // The bytes up to the next tab, on this line; the tab is consumed.
  bool Text(absl::string_view* out) {
    const char* tab = static_cast<const char*>(std::memchr(at_, '\t', end_ - at_));
    if (tab == nullptr || std::memchr(at_, '\n', tab - at_) != nullptr) return false;
    *out = absl::string_view(at_, tab - at_);
    at_ = tab + 1;
    return true;
  }
  bool Unsigned(uint64_t* value, char separator) {
    const char* start = at_;
    uint64_t v = 0;
    for (; at_ != end_ && *at_ >= '0' && *at_ <= '9'; ++at_) {
      const unsigned digit = *at_ - '0';
      if (v > (UINT64_MAX - digit) / 10) return false;
      v = v * 10 + digit;
    }
    *value = v;
    return at_ != start && Separator(separator);
  }
  bool Signed(int64_t* value, char separator) {
    const bool negative = at_ != end_ && *at_ == '-';
    if (negative) ++at_;
    uint64_t magnitude = 0;
    if (!Unsigned(&magnitude, separator)) return false;
    const uint64_t limit = negative ? uint64_t{1} << 63 : (uint64_t{1} << 63) - 1;
    if (magnitude > limit) return false;
    *value = negative ? static_cast<int64_t>(0 - magnitude) : static_cast<int64_t>(magnitude);
    return true;
  }
  // Lowercase or uppercase hex of 1 to 8 digits, or exactly `width` of them.
  bool Hex(uint32_t* value, char separator, int width = 0) {
    const char* start = at_;
    uint32_t v = 0;
    for (; at_ != end_ && at_ - start < 8; ++at_) {
      const char c = *at_;
      const int digit = c >= '0' && c <= '9'   ? c - '0'
                        : c >= 'a' && c <= 'f' ? c - 'a' + 10
                        : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                               : -1;
      if (digit < 0) break;
      v = v << 4 | static_cast<uint32_t>(digit);
    }
    *value = v;
    const long digits = at_ - start;
    return digits > 0 && (width == 0 || digits == width) && Separator(separator);
  }
  bool Separator(char separator) {
    if (separator == kEndOfText) return at_ == end_;
    if (at_ == end_ || *at_ != separator) return false;
    ++at_;
    return true;
  }
  // What is left after the last column read.
  absl::string_view rest() const { return absl::string_view(at_, end_ - at_); }

 private:
  const char* at_;
  const char* const end_;
};

// The entry columns after the name: size, mtime, mode, dev, ino, crc (or
// '-'), missing since; the last one followed by `end`.
bool ReadEntryColumns(ColumnReader& in, char end, ManifestEntry* e) {
  if (!in.Signed(&e->size, '\t') || e->size < 0 || !in.Signed(&e->mtime_ns, '\t') ||
      !in.Hex(&e->mode, '\t') || !in.Unsigned(&e->source_dev, '\t') ||
      !in.Unsigned(&e->source_ino, '\t')) {
    return false;
  }
  if (in.Separator('-')) {
    if (!in.Separator('\t')) return false;
  } else {
    if (!in.Hex(&e->crc32, '\t', 8)) return false;
    e->has_crc32 = true;
  }
  return in.Signed(&e->missing_since_ns, end);
}

// `piece` as absl::StrAppend formats it (a number, absl::Hex); returns the end.
char* PutPiece(const absl::AlphaNum& piece, char* out) {
  std::memcpy(out, piece.data(), piece.size());
  return out + piece.size();
}

// The columns after the name, as absl::StrAppend would write them, but
// without its per-argument overhead: this runs once per entry of a manifest
// of millions.
void AppendEntryFields(const ManifestEntry& e, std::string* out) {
  char line[5 * 21 + 2 * 8 + 8];  // five numbers of up to 21 characters, two hex, separators
  char* p = line;
  *p++ = '\t';
  p = PutPiece(e.size, p);
  *p++ = '\t';
  p = PutPiece(e.mtime_ns, p);
  *p++ = '\t';
  p = PutPiece(absl::Hex(e.mode), p);
  *p++ = '\t';
  p = PutPiece(e.source_dev, p);
  *p++ = '\t';
  p = PutPiece(e.source_ino, p);
  *p++ = '\t';
  if (e.has_crc32) {
    p = PutPiece(absl::Hex(e.crc32, absl::kZeroPad8), p);
  } else {
    *p++ = '-';
  }
  *p++ = '\t';
  p = PutPiece(e.missing_since_ns, p);
  *p++ = '\n';
  out->append(line, p - line);
}

// Reads a byte stream delivered in pieces, keeping the CRC-32 of every byte
// consumed and the offset reached.
class ChunkReader {
 public:
  // `skip` (optional) moves the stream `n` bytes on without reading them.
  explicit ChunkReader(std::function<absl::StatusOr<absl::string_view>()> next,
                       std::function<void(uint64_t n)> skip = nullptr)
      : next_(std::move(next)), skip_(std::move(skip)) {}

  bool can_skip() const { return skip_ != nullptr; }
  // Passes over the next `n` bytes without reading them (those already
  // read are dropped), taking `n_crc` as their CRC-32: a lazy load checks a
  // section's bytes when it reads them in, not now. REQUIRES: can_skip().
  void Skip(uint64_t n, uint32_t n_crc) {
    const uint64_t buffered = std::min<uint64_t>(n, pending_.size());
    pending_.remove_prefix(static_cast<size_t>(buffered));
    if (n > buffered) skip_(n - buffered);
    crc_ = Crc32Combine(crc_, n_crc, n);
    offset_ += n;
  }

  // The next line, without its newline; false at the end of the stream.
  // A last line without a newline is an error.
  absl::StatusOr<bool> ReadLine(std::string* line) {
    line->clear();
    while (true) {
      if (!Fill()) return status_;
      if (pending_.empty()) {
        if (!line->empty()) return absl::InvalidArgumentError("truncated (no final newline)");
        return false;
      }
      size_t newline = pending_.find('\n');
      size_t take = newline == absl::string_view::npos ? pending_.size() : newline + 1;
      Consume(take);
      line->append(pending_.data(), newline == absl::string_view::npos ? take : newline);
      pending_.remove_prefix(take);
      if (newline != absl::string_view::npos) return true;
    }
  }

  // Hands the next `n` bytes to `consume`, piece by piece, with the CRC-32
  // of each piece (computed once, for both the caller and the stream's).
  absl::Status ReadBytes(uint64_t n,
                         const std::function<void(absl::string_view, uint32_t)>& consume) {
    while (n > 0) {
      if (!Fill()) return status_;
      if (pending_.empty()) return absl::InvalidArgumentError("truncated section");
      size_t take = static_cast<size_t>(std::min<uint64_t>(n, pending_.size()));
      const uint32_t piece_crc = Crc32(0, pending_.substr(0, take));
      Consume(take, piece_crc);
      consume(pending_.substr(0, take), piece_crc);
      pending_.remove_prefix(take);
      n -= take;
    }
    return absl::OkStatus();
  }

  uint64_t offset() const { return offset_; }
  uint32_t crc() const { return crc_; }

 private:
  // False with status_ set on a read error; pending_ empty at the end.
  bool Fill() {
    if (!pending_.empty() || at_end_) return true;
    absl::StatusOr<absl::string_view> piece = next_();
    if (!piece.ok()) {
      status_ = piece.status();
      return false;
    }
    pending_ = *piece;
    at_end_ = pending_.empty();
    return true;
  }
  void Consume(size_t n) {
    crc_ = Crc32(crc_, pending_.substr(0, n));
    offset_ += n;
  }
  // The next `n` bytes, whose CRC-32 is `n_crc`.
  void Consume(size_t n, uint32_t n_crc) {
    crc_ = Crc32Combine(crc_, n_crc, n);
    offset_ += n;
  }

  std::function<absl::StatusOr<absl::string_view>()> next_;
  std::function<void(uint64_t)> skip_;
  absl::string_view pending_;
  bool at_end_ = false;
  absl::Status status_;
  uint64_t offset_ = 0;
  uint32_t crc_ = 0;
};

// Buffers output for a sink and keeps the CRC-32 of all of it.
class ChunkWriter {
 public:
  explicit ChunkWriter(const std::function<absl::Status(absl::string_view)>& sink)
      : sink_(sink) {}
  absl::Status Write(absl::string_view data) { return Write(data, Crc32(0, data)); }
  // `data` whose CRC-32 the caller has already computed.
  absl::Status Write(absl::string_view data, uint32_t data_crc) {
    crc_ = Crc32Combine(crc_, data_crc, data.size());
    bytes_ += data.size();
    if (buffer_.size() + data.size() > kChunk) {
      absl::Status flushed = Flush();
      if (!flushed.ok()) return flushed;
      if (data.size() >= kChunk) return sink_(data);
    }
    buffer_.append(data.data(), data.size());
    return absl::OkStatus();
  }
  absl::Status Flush() {
    if (buffer_.empty()) return absl::OkStatus();
    absl::Status status = sink_(buffer_);
    buffer_.clear();
    return status;
  }
  uint32_t crc() const { return crc_; }
  uint64_t bytes() const { return bytes_; }  // written so far

 private:
  const std::function<absl::Status(absl::string_view)>& sink_;
  std::string buffer_;
  uint32_t crc_ = 0;
  uint64_t bytes_ = 0;
};

// Calls `line` for each line of a log record's body, in order: a put (with
// its entry) or an erasure of a path.
absl::Status ForEachLogLine(
    absl::string_view body,
    const std::function<void(bool put, const std::string& path, const ManifestEntry& entry)>&
        line_fn) {
  std::string path;
  while (!body.empty()) {
    const size_t newline = body.find('\n');
    if (newline == absl::string_view::npos) return Corrupt(0, "log: record cut short");
    absl::string_view line = body.substr(0, newline + 1);
    body.remove_prefix(newline + 1);
    const bool put = absl::ConsumePrefix(&line, "put\t");
    if (!put && !absl::ConsumePrefix(&line, "del\t")) return Corrupt(0, "log: malformed line");
    absl::string_view escaped = line.substr(0, line.size() - 1);  // del: the path
    ManifestEntry entry;
    if (put) {
      ColumnReader in(line);
      if (!in.Text(&escaped) || !ReadEntryColumns(in, '\n', &entry) || !in.rest().empty()) {
        return Corrupt(0, "log: malformed entry");
      }
    }
    if (!Unescape(escaped, &path) || !IsAcceptablePath(path)) {
      return Corrupt(0, "log: path outside the destination");
    }
    line_fn(put, path, entry);
  }
  return absl::OkStatus();
}

// Reads up to `length` bytes at `offset` into `out`; fewer only at the end
// of the file.
absl::Status ReadAtMost(ReadableFile& file, uint64_t offset, uint64_t length, std::string* out) {
  out->resize(length);
  uint64_t done = 0;
  while (done < length) {
    absl::StatusOr<size_t> got = file.ReadAt(&(*out)[done], length - done, offset + done);
    if (!got.ok()) return got.status();
    if (*got == 0) break;
    done += *got;
  }
  out->resize(done);
  return absl::OkStatus();
}


// Where one directory's entries sit in the map. In path order they come in
// runs, between which come the entries of its subdirectories
// ("ks/t/backups/x" sorts between "ks/t/a" and "ks/t/nb-1-big-Data.db").
struct DirectoryRuns {
  std::vector<std::pair<Manifest::Map::const_iterator, uint64_t>> runs;  // first, length
  uint64_t count = 0;
};
using RunsByDirectory = absl::btree_map<absl::string_view, DirectoryRuns>;

// One pass over the entries finds each directory's runs: rendering then
// neither searches the map nor compares paths again. Counts the unique
// bytes on the way into `counter`, when given.
RunsByDirectory FindRuns(const Manifest::Map& entries, UniqueBytesCounter* counter) {
  RunsByDirectory in_memory;
  DirectoryRuns* current = nullptr;  // valid until the next insertion
  absl::string_view last;            // its directory
  for (auto it = entries.begin(); it != entries.end(); ++it) {
    const std::string& path = it->first;
    // Siblings mostly come together: is this one in the last one's directory?
    const size_t n = last.size();
    bool sibling = current != nullptr && path.size() > n + 1 && path[n] == '/' &&
                   absl::string_view(path).substr(0, n) == last &&
                   path.find('/', n + 1) == std::string::npos;
    if (!sibling) {
      const absl::string_view dir = DirName(path);
      sibling = current != nullptr && dir == last;  // files at the top ("")
      if (!sibling) {
        current = &in_memory[dir];
        current->runs.emplace_back(it, 0);
        last = dir;
      }
    }
    ++current->runs.back().second;
    ++current->count;
    if (counter != nullptr) counter->Add(path, it->second, sibling && n > 0);
  }
  return in_memory;
}

// The section body of a directory's entries, names ascending.
void RenderBody(absl::string_view dir, const DirectoryRuns& in_memory, std::string* body) {
  const size_t prefix = dir.empty() ? 0 : dir.size() + 1;
  for (auto [it, length] : in_memory.runs) {
    for (uint64_t i = 0; i < length; ++i, ++it) {
      AppendEscaped(absl::string_view(it->first).substr(prefix), body);
      AppendEntryFields(it->second, body);
    }
  }
}

// Writes one section: its header, then its body (whose CRC-32 is
// `body_crc`), which starts at `*body_offset` in the text.
absl::Status WriteSection(ChunkWriter& out, absl::string_view dir, const std::string& body,
                          uint64_t count, uint32_t body_crc, uint64_t* body_offset) {
  std::string header = "dir\t";
  AppendEscaped(dir, &header);
  absl::StrAppend(&header, "\t", count, "\t", body.size(), "\t",
                  absl::Hex(body_crc, absl::kZeroPad8), "\n");
  absl::Status status = out.Write(header);
  *body_offset = out.bytes();
  if (status.ok()) status = out.Write(body, body_crc);
  return status;
}

}  // namespace

std::string StoredManifest::LogPath(const std::string& path) { return ManifestLogPath(path); }

// ------------------------------------------------------ reading sections back

absl::Status StoredManifest::ReadStored(absl::string_view dir, const StoredSection& stored,
                                        std::string* body) const {
  absl::Status status = ReadAtMost(*stored.base, stored.offset, stored.length, body);
  if (!status.ok()) return status;
  if (body->size() != stored.length) {
    return CorruptSection(dir, "the manifest file shrank since it was loaded");
  }
  if (Crc32(0, *body) != stored.crc) {
    return CorruptSection(dir, "the manifest file changed since it was loaded");
  }
  return absl::OkStatus();
}

absl::Status StoredManifest::ReadSection(absl::string_view dir, Entries* out) const {
  out->clear();
  auto place = places_.find(dir);
  if (place == places_.end()) return CorruptSection(dir, "no place on disk");
  const StoredSection& stored = place->second;
  std::string body;
  if (stored.base != nullptr) {
    absl::Status status = ReadStored(dir, stored, &body);
    if (status.ok()) status = ParseBody(dir, body, stored.base_count, out);
    if (!status.ok()) return status;
  }
  if (stored.records.empty()) return absl::OkStatus();
  // The records that changed it since, in order, each checked again.
  Map merged(std::make_move_iterator(out->begin()), std::make_move_iterator(out->end()));
  for (const LogRef& record : stored.records) {
    absl::Status status = ReadAtMost(*record.file, record.offset, record.length, &body);
    if (!status.ok()) return status;
    if (body.size() != record.length || Crc32(0, body) != record.crc) {
      return CorruptSection(dir, "the manifest's log changed since it was loaded");
    }
    status = ForEachLogLine(body, [&](bool put, const std::string& path,
                                      const ManifestEntry& entry) {
      if (DirName(path) != dir) return;
      if (put) {
        merged[path] = entry;
      } else {
        merged.erase(path);
      }
    });
    if (!status.ok()) return status;
  }
  out->assign(std::make_move_iterator(merged.begin()), std::make_move_iterator(merged.end()));
  return absl::OkStatus();
}

void StoredManifest::ForgetPlace(absl::string_view dir) const { places_.erase(dir); }

// ---------------------------------------------------------------- writing

absl::Status StoredManifest::WriteTo(
    const std::function<absl::Status(absl::string_view)>& sink) const {
  return WriteTo(sink, nullptr);
}

absl::Status StoredManifest::WriteTo(
    const std::function<absl::Status(absl::string_view)>& sink,
    std::vector<std::pair<std::string, StoredSection>>* written) const {
  // Wholly in memory, the unique bytes are counted in the pass that finds
  // the directories; else from the stored count and the changes since.
  const bool whole = fully_loaded();
  const int64_t stored_unique_bytes = whole ? 0 : UniqueBytes();  // may read sections in
  if (!load_error().ok()) return load_error();
  UniqueBytesCounter counter;
  const RunsByDirectory in_memory = FindRuns(entries_, whole ? &counter : nullptr);
  const int64_t unique_bytes = whole ? counter.bytes() : stored_unique_bytes;

  ChunkWriter out(sink);
  absl::Status status = out.Write(kHeader);
  if (status.ok()) status =
      out.Write(absl::StrCat("epoch ", absl::Hex(epoch_, absl::kZeroPad16), "\n"));
  std::string body;
  uint64_t total = 0;
  // Sections in directory order, merging those in memory with those on
  // disk (a directory is in one or the other: Put reads its section in).
  auto memory = in_memory.begin();
  auto stored = unloaded_.begin();
  while (status.ok() && (memory != in_memory.end() || stored != unloaded_.end())) {
    const bool from_store =
        memory == in_memory.end() ||
        (stored != unloaded_.end() && absl::string_view(stored->first) <= memory->first);
    const absl::string_view dir = from_store ? absl::string_view(stored->first) : memory->first;
    body.clear();
    uint64_t count = 0;
    if (from_store) {
      ++stored;
      status = RenderStored(dir, &body, &count);
      if (!status.ok()) return status;
      if (count == 0) continue;  // every entry erased since
    } else {
      RenderBody(dir, memory->second, &body);
      count = memory->second.count;
      ++memory;
    }
    const uint32_t body_crc = Crc32(0, body);
    uint64_t body_offset = 0;
    status = WriteSection(out, dir, body, count, body_crc, &body_offset);
    if (written != nullptr) {
      StoredSection section;
      section.offset = body_offset;
      section.length = body.size();
      section.base_count = count;
      section.crc = body_crc;
      written->emplace_back(std::string(dir), std::move(section));
    }
    total += count;
  }
  if (!status.ok()) return status;
  // The trailer's checksum covers everything before it, its own line too.
  status = out.Write(absl::StrCat("end ", total, " ", unique_bytes, " "));
  written_crc_ = out.crc();
  written_unique_bytes_ = unique_bytes;
  if (status.ok()) status = out.Write(absl::StrCat(absl::Hex(written_crc_, absl::kZeroPad8), "\n"));
  if (status.ok()) status = out.Flush();
  return status;
}

absl::Status StoredManifest::RenderStored(absl::string_view dir, std::string* body,
                                          uint64_t* count) const {
  auto place = places_.find(dir);
  if (place == places_.end()) return CorruptSection(dir, "no place on disk");
  if (place->second.records.empty()) {
    // Never parsed: copy its bytes, checked again on the way.
    *count = place->second.base_count;
    return ReadStored(dir, place->second, body);
  }
  // Changed by records since: read in (one directory at a time), rendered.
  Entries entries;
  absl::Status status = ReadSection(dir, &entries);
  if (!status.ok()) return status;
  const size_t prefix = dir.empty() ? 0 : dir.size() + 1;
  for (const auto& [path, entry] : entries) {
    AppendEscaped(absl::string_view(path).substr(prefix), body);
    AppendEntryFields(entry, body);
  }
  *count = entries.size();
  return absl::OkStatus();
}

std::string StoredManifest::Serialize() const {
  std::string text;
  absl::Status status = WriteTo([&text](absl::string_view piece) {
    text.append(piece.data(), piece.size());
    return absl::OkStatus();
  });
  return status.ok() ? text : std::string();
}

// ---------------------------------------------------------------- committing

absl::Status StoredManifest::Commit(FileSystem& fs, const std::string& path) {
  if (!load_error().ok()) return load_error();  // entries are missing: never write them away
  if (has_base_ && !compact_next_ && format_version_ >= 5 && changed_paths_.empty()) {
    return absl::OkStatus();
  }
  // The log is compacted once it holds a fair share of the base: a change
  // then costs a constant number of bytes written, however big the node.
  constexpr uint64_t kMinLogBytes = 256 << 10;
  const bool compact = !has_base_ || compact_next_ || format_version_ < 5 ||
                       log_bytes_ > std::max<uint64_t>(kMinLogBytes, base_bytes_ / 4);
  absl::Status status = compact ? CommitWhole(fs, path) : AppendToLog(fs, path);
  // A record half written, or a base written without its log removed:
  // the next commit starts afresh from a new base.
  if (!status.ok()) compact_next_ = true;
  return status;
}

bool StoredManifest::WorthCompactingAfter(uint64_t appended) const {
  // An eighth of the base: the whole base written for at least that much
  // appended keeps the bytes written per change within a constant factor.
  constexpr uint64_t kMinAppended = 256 << 10;
  return log_bytes_ > 0 && appended > std::max<uint64_t>(kMinAppended, base_bytes_ / 8);
}

absl::Status StoredManifest::CommitWhole(FileSystem& fs, const std::string& path) {
  constexpr uint64_t kWritebackEvery = 8 << 20;
  // A new epoch: this base differs from every earlier one even where the
  // entries are the same (a put then an erase), so a log of an earlier base
  // is never replayed onto it.
  epoch_ = absl::Uniform<uint64_t>(absl::BitGen());
  uint64_t written = 0;
  std::vector<std::pair<std::string, StoredSection>> sections;
  absl::Status status = fs.WriteFileAtomically(path, [&](WritableFile& out) {
    uint64_t unsent = 0;
    sections.clear();
    return WriteTo([&out, &unsent, &written](absl::string_view piece) {
      absl::Status status = out.Append(piece);
      unsent += piece.size();
      written += piece.size();
      if (unsent >= kWritebackEvery) {
        out.StartWriteback();
        unsent = 0;
      }
      return status;
    }, &sections);
  });
  if (!status.ok()) return status;
  // Every directory is in the new base now: that is where to read it back
  // from, the old base and log can be let go of.
  absl::StatusOr<std::unique_ptr<ReadableFile>> base = fs.OpenForRead(path);
  if (base.ok()) {
    Reposition(std::move(*base), std::move(sections));
  } else {
    // The sections not read in keep their old places (their files stay
    // open); those read in stay in memory.
    Unposition();
  }
  has_base_ = true;
  base_crc_ = written_crc_;
  // What the base says now: the changes since the last load are in it.
  stored_unique_bytes_ = written_unique_bytes_;
  unique_bytes_before_.clear();
  base_bytes_ = written;
  format_version_ = 5;
  changed_paths_.clear();
  // The log is in the base now. Removed after the base is in place: a crash
  // between the two leaves a log naming the old base, which loading ignores.
  status = fs.Remove(LogPath(path));
  if (!status.ok() && !IsVanished(status)) return status;
  if (status.ok()) status = fs.SyncDir(std::string(DirName(path)));
  if (!status.ok() && !IsVanished(status)) return status;
  log_bytes_ = 0;
  compact_next_ = false;
  return absl::OkStatus();
}

void StoredManifest::Reposition(std::shared_ptr<ReadableFile> base,
                                std::vector<std::pair<std::string, StoredSection>> written) {
  StoredMap placed;
  for (auto& [dir, section] : written) {
    section.base = base;
    placed.emplace_hint(placed.end(), std::move(dir), std::move(section));
  }
  unloaded_entries_ = 0;
  for (auto it = unloaded_.begin(); it != unloaded_.end();) {
    auto place = placed.find(it->first);
    if (place == placed.end()) {  // no entries left
      it = unloaded_.erase(it);
      continue;
    }
    it->second = place->second.base_count;
    unloaded_entries_ += it->second;
    ++it;
  }
  // The rest are in memory, and can be let go of to the new base.
  releasable_.clear();
  for (const auto& [dir, section] : placed) {
    if (!unloaded_.contains(dir)) releasable_.insert(releasable_.end(), dir);
  }
  places_ = std::move(placed);
  log_file_.reset();
  positioned_ = true;
}

void StoredManifest::Unposition() {
  positioned_ = false;
  for (const std::string& dir : releasable_) places_.erase(dir);
  releasable_.clear();
}

std::string StoredManifest::RenderLogBody() const {
  std::string body;
  for (const std::string& path : changed_paths_) {
    auto it = entries_.find(path);
    body += it == entries_.end() ? "del\t" : "put\t";
    AppendEscaped(path, &body);
    if (it == entries_.end()) {
      body += '\n';
    } else {
      AppendEntryFields(it->second, &body);
    }
  }
  return body;
}

absl::Status StoredManifest::AppendToLog(FileSystem& fs, const std::string& path) {
  const std::string log = LogPath(path);
  const std::string body = RenderLogBody();
  const uint32_t body_crc = Crc32(0, body);
  std::string text =
      absl::StrCat("rec\t", body.size(), "\t", absl::Hex(body_crc, absl::kZeroPad8), "\n", body);
  const bool create = log_bytes_ == 0;
  if (create) {
    // A new log: it may exist only as a leftover of a log never synced (or
    // of another base); start it over.
    absl::Status removed = fs.Remove(log);
    if (!removed.ok() && !IsVanished(removed)) return removed;
    text = absl::StrCat(kLogHeader, " ", absl::Hex(base_crc_, absl::kZeroPad8), "\n", text);
  }
  absl::StatusOr<std::unique_ptr<WritableFile>> out = fs.OpenForAppend(log);
  if (!out.ok()) return out.status();
  absl::Status status = (*out)->Append(text);
  if (status.ok()) status = (*out)->Sync();
  absl::Status closed = (*out)->Close();
  if (status.ok()) status = closed;
  // A new log's name must be durable too.
  if (status.ok() && create) status = fs.SyncDir(std::string(DirName(path)));
  if (!status.ok()) return status;
  const uint64_t body_offset = log_bytes_ + text.size() - body.size();
  log_bytes_ += text.size();
  NoteAppended(fs, log, LogRef{nullptr, body_offset, body.size(), body_crc}, create);
  changed_paths_.clear();
  return absl::OkStatus();
}

void StoredManifest::NoteAppended(FileSystem& fs, const std::string& log, LogRef record,
                                  bool created) {
  if (positioned_ && (created || log_file_ == nullptr)) {
    absl::StatusOr<std::unique_ptr<ReadableFile>> reader = fs.OpenForRead(log);
    if (reader.ok()) {
      log_file_ = std::move(*reader);
    } else {
      Unposition();  // what changed stays in memory
    }
  }
  if (!positioned_) return;
  record.file = log_file_;
  absl::btree_set<absl::string_view> dirs;
  for (const std::string& changed : changed_paths_) dirs.insert(DirName(changed));
  for (absl::string_view dir : dirs) {
    places_[dir].records.push_back(record);
    releasable_.emplace(dir);
  }
}

// ---------------------------------------------------------------- the log

absl::Status StoredManifest::ApplyLogRecord(absl::string_view body) {
  return ForEachLogLine(body, [this](bool put, const std::string& path,
                                     const ManifestEntry& entry) {
    if (put) {
      Put(path, entry);
    } else {
      Erase(path);
    }
  });
}

absl::Status StoredManifest::IndexLogRecord(absl::string_view body, const LogRef& ref) {
  // Checked whole before anything is noted.
  absl::Status status = ForEachLogLine(body, [](bool, const std::string&, const ManifestEntry&) {});
  if (!status.ok()) return status;
  auto note_record = [&ref](std::vector<LogRef>& records) {
    if (records.empty() || records.back().offset != ref.offset) records.push_back(ref);
  };
  return ForEachLogLine(body, [&](bool put, const std::string& path, const ManifestEntry& entry) {
    const absl::string_view dir = DirName(path);
    if (!unloaded_.contains(dir) && (entries_.contains(path) || releasable_.contains(dir))) {
      // Read in already (to count its unique bytes, say): apply it now,
      // and remember the record for when it is let go of again.
      note_record(places_[dir].records);
      releasable_.emplace(dir);
      if (put) {
        Put(path, entry);
      } else {
        Erase(path);
      }
      return;
    }
    // Counted as they were before the first change to their table.
    NoteChange(path);
    note_record(places_[dir].records);  // once per record
    uint64_t& count = unloaded_[dir];
    if (put) {
      ++count;
      ++unloaded_entries_;
    } else if (count > 0) {
      --count;
      unloaded_entries_ -= std::min<size_t>(1, unloaded_entries_);
    }
  });
}

absl::Status StoredManifest::ReplayLog(FileSystem& fs, const std::string& path, bool lazy) {
  const std::string log = LogPath(path);
  absl::StatusOr<std::unique_ptr<ReadableFile>> opened = fs.OpenForRead(log);
  if (!opened.ok()) return IsVanished(opened.status()) ? absl::OkStatus() : opened.status();
  std::shared_ptr<ReadableFile> file = std::move(*opened);
  // Read record by record, never whole: a log may be a large share of the
  // manifest.
  absl::StatusOr<FileStat> stat = fs.Stat(log);
  if (!stat.ok()) return stat.status();
  const uint64_t size = static_cast<uint64_t>(std::max<int64_t>(stat->size, 0));
  const std::string header =
      absl::StrCat(kLogHeader, " ", absl::Hex(base_crc_, absl::kZeroPad8), "\n");
  std::string buffer;
  absl::Status status = ReadAtMost(*file, 0, header.size(), &buffer);
  if (!status.ok()) return status;
  log_bytes_ = size;
  if (buffer != header) {
    // Another base's log (a compaction stopped before removing it, so its
    // records are in this base), or a log whose header never reached the
    // disk: nothing in it is new. The next commit starts a new one.
    compact_next_ = true;
    return absl::OkStatus();
  }
  replaying_ = true;
  status = ReplayRecords(file, header.size(), size, lazy);
  replaying_ = false;
  if (lazy) log_file_ = std::move(file);
  return status;
}

absl::Status StoredManifest::ReplayRecords(const std::shared_ptr<ReadableFile>& file,
                                           uint64_t offset, uint64_t size, bool lazy) {
  std::string buffer;
  absl::Status status;
  while (offset < size && status.ok()) {
    // "rec\t<bytes>\t<crc>\n<body>"; the head is well under 64 bytes.
    status = ReadAtMost(*file, offset, 64, &buffer);
    if (!status.ok()) break;
    const size_t newline = buffer.find('\n');
    std::vector<absl::string_view> head = absl::StrSplit(
        absl::string_view(buffer).substr(0, newline == std::string::npos ? 0 : newline), '\t');
    uint64_t length = 0;
    uint32_t crc = 0;
    const uint64_t body_offset = offset + newline + 1;
    if (newline == std::string::npos || head.size() != 3 || head[0] != "rec" ||
        !absl::SimpleAtoi(head[1], &length) || length > size - std::min(size, body_offset)) {
      // Cut short by a crash: a record appended after it would be hidden
      // behind it, so the next commit compacts instead.
      compact_next_ = true;
      break;
    }
    const bool valid_crc = head[2].size() == 8 && absl::SimpleHexAtoi(head[2], &crc);
    status = ReadAtMost(*file, body_offset, length, &buffer);
    if (!status.ok()) break;
    offset = body_offset + length;
    if (buffer.size() != length || !valid_crc || Crc32(0, buffer) != crc) {
      if (offset >= size) {  // the last record, not all of it synced before a crash
        compact_next_ = true;
        break;
      }
      status = Corrupt(0, "log: record checksum mismatch");
      break;
    }
    status = lazy ? IndexLogRecord(buffer, LogRef{file, body_offset, length, crc})
                  : ApplyLogRecord(buffer);
  }
  return status;
}

// ---------------------------------------------------------------- reading

absl::Status StoredManifest::ParseBody(absl::string_view dir, absl::string_view body,
                                       uint64_t count, Entries* out) {
  // `count` is not trusted yet: no entry line is shorter than 16 bytes.
  out->reserve(std::min<uint64_t>(count, body.size() / 16));
  std::string name, previous;
  const std::string prefix = dir.empty() ? std::string() : absl::StrCat(dir, "/");
  ColumnReader in(body);
  while (!in.rest().empty()) {
    absl::string_view escaped;
    ManifestEntry e;
    if (!in.Text(&escaped) || !Unescape(escaped, &name) || !ReadEntryColumns(in, '\n', &e)) {
      return CorruptSection(dir, "malformed entry");
    }
    if (name.empty() || name.find('/') != std::string::npos ||
        (!out->empty() && name <= previous)) {
      return CorruptSection(dir, "names not ascending, empty or with a slash");
    }
    // The directory was checked once for its section; the name is one
    // more component.
    if (name == "." || name == ".." || name.find('\0') != std::string::npos ||
        (dir.empty() && name == kStateDirName)) {
      return CorruptSection(dir, "path outside the destination");
    }
    std::string path;
    path.reserve(prefix.size() + name.size());
    path.append(prefix).append(name);
    out->emplace_back(std::move(path), e);
    previous.swap(name);
  }
  if (out->size() != count) return CorruptSection(dir, "entry count mismatch");
  return absl::OkStatus();
}

void StoredManifest::AddUnloaded(std::string dir, StoredSection stored) {
  unloaded_.emplace_hint(unloaded_.end(), dir, stored.base_count);
  unloaded_entries_ += stored.base_count;
  places_.emplace_hint(places_.end(), std::move(dir), std::move(stored));
}

// Reads a version 4 or 5 manifest: sections parsed at once (kEager) or
// checked and remembered by place (kLazy).
class ManifestReader {
 public:
  // `version`: 4, or 5, which is 4 with the base's epoch on its second line.
  ManifestReader(ChunkReader& in, StoredManifest& manifest, StoredManifest::Loading loading,
                 std::shared_ptr<ReadableFile> backing, int version)
      : in_(in),
        manifest_(manifest),
        eager_(loading == StoredManifest::Loading::kEager),
        backing_(std::move(backing)),
        version_(version) {}

  absl::Status Run() {
    manifest_.format_version_ = version_;
    if (version_ >= 5) {
      absl::Status status = ReadEpoch();
      if (!status.ok()) return status;
    }
    std::string line;
    while (true) {
      ++line_number_;
      const uint32_t crc_before = in_.crc();
      absl::StatusOr<bool> got = in_.ReadLine(&line);
      if (!got.ok()) return Annotate(got.status(), line_number_);
      if (!*got) return Corrupt(line_number_, "truncated (no trailer)");
      if (absl::StartsWith(line, "end ")) return ReadTrailer(line, crc_before);
      absl::Status status = ReadSection(line);
      if (!status.ok()) return status;
    }
  }

 private:
  absl::Status ReadEpoch() {
    std::string line;
    ++line_number_;
    absl::StatusOr<bool> got = in_.ReadLine(&line);
    if (!got.ok()) return Annotate(got.status(), line_number_);
    absl::string_view epoch = line;
    if (!*got || !absl::ConsumePrefix(&epoch, "epoch ") || epoch.size() != 16 ||
        !absl::SimpleHexAtoi(epoch, &manifest_.epoch_)) {
      return Corrupt(line_number_, "bad epoch");
    }
    return absl::OkStatus();
  }

  // `line` is the trailer; `crc_before` the CRC-32 of everything before it.
  absl::Status ReadTrailer(std::string& line, uint32_t crc_before) {
    std::vector<absl::string_view> t = absl::StrSplit(line, ' ');
    uint64_t count = 0;
    int64_t unique = 0;
    uint32_t crc = 0;
    if (t.size() != 4 || !absl::SimpleAtoi(t[1], &count) || !absl::SimpleAtoi(t[2], &unique) ||
        t[3].size() != 8 || !absl::SimpleHexAtoi(t[3], &crc)) {
      return Corrupt(line_number_, "truncated (no valid trailer)");
    }
    if (crc != Crc32(crc_before, absl::string_view(line).substr(0, line.size() - 8))) {
      return Corrupt(line_number_, "checksum mismatch");
    }
    if (count != total_) return Corrupt(line_number_, "entry count mismatch");
    absl::StatusOr<bool> more = in_.ReadLine(&line);
    if (!more.ok()) return more.status();
    if (*more) return Corrupt(line_number_ + 1, "text after the trailer");
    manifest_.stored_unique_bytes_ = unique;
    manifest_.base_crc_ = crc;
    // Every directory now has its place on disk to be let go of to.
    manifest_.positioned_ = !eager_;
    return absl::OkStatus();
  }

  // `line` is a section's header: reads its body.
  absl::Status ReadSection(const std::string& line) {
    absl::string_view f[5];
    std::string dir;
    uint64_t count = 0, length = 0;
    uint32_t crc = 0;
    if (!absl::StartsWith(line, "dir\t") ||
        !SplitFields(absl::string_view(line).substr(4), f, 4) || !Unescape(f[0], &dir) ||
        !absl::SimpleAtoi(f[1], &count) || !absl::SimpleAtoi(f[2], &length) ||
        f[3].size() != 8 || !absl::SimpleHexAtoi(f[3], &crc) || count == 0) {
      return Corrupt(line_number_, "malformed section header");
    }
    if (!first_ && dir <= previous_dir_) return Corrupt(line_number_, "sections not ascending");
    if (!dir.empty() && !IsAcceptablePath(dir)) {
      return Corrupt(line_number_, "path outside the destination");
    }
    first_ = false;
    const uint64_t offset = in_.offset();
    std::string body;
    absl::Status status = ReadBody(length, crc, &body);
    if (!status.ok()) return status;
    line_number_ += count;
    total_ += count;
    if (eager_) {
      StoredManifest::Entries parsed;
      status = StoredManifest::ParseBody(dir, body, count, &parsed);
      if (!status.ok()) return status;
      for (auto& [path, entry] : parsed) {
        manifest_.entries_.emplace_hint(manifest_.entries_.end(), std::move(path), entry);
      }
    } else {
      StoredManifest::StoredSection stored;
      stored.base = backing_;
      stored.offset = offset;
      stored.length = length;
      stored.base_count = count;
      stored.crc = crc;
      manifest_.AddUnloaded(dir, std::move(stored));
    }
    previous_dir_ = std::move(dir);
    return absl::OkStatus();
  }

  // The section's `length` bytes, checked against `crc`: into `body` when
  // eager, else passed over.
  absl::Status ReadBody(uint64_t length, uint32_t crc, std::string* body) {
    uint32_t body_crc = 0;
    // Not trusted before the checksums are: grows as the bytes come.
    if (eager_) body->reserve(std::min<uint64_t>(length, kChunk));
    absl::Status status;
    if (!eager_ && in_.can_skip()) {
      // Lazily, a section's bytes are checked when it is read in (or
      // copied by a commit): passed over now, so a cycle reads the
      // headers, not the whole file. The trailer's checksum still holds
      // the headers to the section checksums they give.
      in_.Skip(length, crc);
      body_crc = crc;
    } else {
      status = in_.ReadBytes(length, [&](absl::string_view piece, uint32_t crc) {
        body_crc = Crc32Combine(body_crc, crc, piece.size());
        if (eager_) body->append(piece.data(), piece.size());
      });
    }
    if (!status.ok()) return Annotate(status, line_number_);
    if (body_crc != crc) return Corrupt(line_number_, "section checksum mismatch");
    if (!body->empty() && body->back() != '\n') return Corrupt(line_number_, "section cut short");
    return absl::OkStatus();
  }

  // Read errors keep their errno; format errors name the line.
  static absl::Status Annotate(const absl::Status& status, size_t line_number) {
    if (status.code() != absl::StatusCode::kInvalidArgument) return status;
    return Corrupt(line_number, status.message());
  }

  ChunkReader& in_;
  StoredManifest& manifest_;
  const bool eager_;
  std::shared_ptr<ReadableFile> backing_;
  const int version_;
  size_t line_number_ = 1;
  uint64_t total_ = 0;
  std::string previous_dir_;
  bool first_ = true;
};

absl::Status StoredManifest::ParseLegacyLine(absl::string_view line, int version,
                                             size_t line_number, std::string* previous_path) {
  if (version >= 3) return ParseLineV3(line, line_number, previous_path);
  const bool v1 = version == 1;
  std::vector<absl::string_view> f = absl::StrSplit(line, '\t');
  std::string path;
  ManifestEntry e;
  const size_t columns = v1 ? 6 : 8;
  bool crc_ok = v1 || f.size() != 8 || f[6] == "-" ||
                (f[6].size() == 8 && absl::SimpleHexAtoi(f[6], &e.crc32));
  e.has_crc32 = !v1 && f.size() == 8 && f[6] != "-";
  if ((f.size() != columns && !(v1 && f.size() == 7)) || !crc_ok ||
      !absl::CUnescape(f[0], &path) || !absl::SimpleAtoi(f[1], &e.size) ||
      !absl::SimpleAtoi(f[2], &e.mtime_ns) || !absl::SimpleHexAtoi(f[3], &e.mode) ||
      !absl::SimpleAtoi(f[4], &e.source_dev) || !absl::SimpleAtoi(f[5], &e.source_ino) ||
      e.size < 0 || (v1 && f.size() == 7 && !absl::SimpleAtoi(f[6], &e.missing_since_ns)) ||
      (!v1 && !absl::SimpleAtoi(f[7], &e.missing_since_ns))) {
    return Corrupt(line_number, "malformed entry");
  }
  if (!IsAcceptablePath(path)) return Corrupt(line_number, "path outside the destination");
  // Lines come sorted: appending at the end is the cheap insertion.
  entries_.emplace_hint(entries_.end(), std::move(path), e);
  return absl::OkStatus();
}

absl::Status StoredManifest::ParseLineV3(absl::string_view line, size_t line_number,
                                         std::string* previous_path) {
  // <shared>\t<rest>\t<size>\t<mtime>\t<mode hex>\t<dev>\t<ino>\t<crc|->\t<missing since>
  ColumnReader in(line);
  absl::string_view escaped;
  uint64_t shared = 0;
  ManifestEntry e;
  if (!in.Unsigned(&shared, '\t') || shared > previous_path->size() || !in.Text(&escaped) ||
      !ReadEntryColumns(in, ColumnReader::kEndOfText, &e)) {
    return Corrupt(line_number, "malformed entry");
  }
  // The previous path becomes this one in place: no new allocation.
  previous_path->resize(shared);
  std::string rest;
  if (!Unescape(escaped, &rest)) return Corrupt(line_number, "malformed entry");
  *previous_path += rest;
  if (!IsAcceptablePath(*previous_path)) {
    return Corrupt(line_number, "path outside the destination");
  }
  entries_.emplace_hint(entries_.end(), *previous_path, e);
  return absl::OkStatus();
}

// Reads versions 1 to 3: one line per entry, then the trailer, whose
// checksum covers everything before it, so each line is held back until the
// next one is known to exist.
class LegacyManifestParser {
 public:
  LegacyManifestParser(int version, uint32_t header_crc) : version_(version), crc_(header_crc) {}

  absl::Status Run(ChunkReader& in, StoredManifest& manifest) {
    manifest.format_version_ = version_;
    std::string line, held;
    size_t line_number = 1;
    bool holding = false;
    while (true) {
      absl::StatusOr<bool> got = in.ReadLine(&line);
      if (!got.ok()) return got.status().code() == absl::StatusCode::kInvalidArgument
                                ? Corrupt(0, got.status().message())
                                : got.status();
      if (!*got) break;
      ++line_number;
      if (holding) {
        if (held.empty()) return Corrupt(line_number - 1, "empty line");
        crc_ = Crc32(crc_, held);
        crc_ = Crc32(crc_, "\n");
        absl::Status status =
            manifest.ParseLegacyLine(held, version_, line_number - 1, &previous_path_);
        if (!status.ok()) return status;
      }
      held.swap(line);
      holding = true;
    }
    if (!holding) return Corrupt(0, "no trailer");
    std::vector<absl::string_view> t = absl::StrSplit(held, ' ');
    uint64_t count = 0;
    uint32_t crc = 0;
    if (t.size() != 3 || t[0] != "end" || !absl::SimpleAtoi(t[1], &count) ||
        !absl::SimpleHexAtoi(t[2], &crc)) {
      return Corrupt(0, "truncated (no valid trailer)");
    }
    if (crc_ != crc) return Corrupt(0, "checksum mismatch");
    if (manifest.size() != count) return Corrupt(0, "entry count mismatch");
    manifest.base_crc_ = crc;
    return absl::OkStatus();
  }

 private:
  const int version_;
  uint32_t crc_;
  std::string previous_path_;
};

namespace {

absl::StatusOr<StoredManifest> ReadManifest(ChunkReader& in, StoredManifest::Loading loading,
                                            std::shared_ptr<ReadableFile> backing) {
  std::string header;
  absl::StatusOr<bool> got = in.ReadLine(&header);
  if (!got.ok()) {
    if (got.status().code() != absl::StatusCode::kInvalidArgument) return got.status();
    return Corrupt(1, "bad header");
  }
  header += '\n';
  StoredManifest manifest;
  absl::Status status;
  if (header == kHeader || header == kHeaderV4) {
    status = ManifestReader(in, manifest, loading, std::move(backing), header == kHeader ? 5 : 4)
                 .Run();
  } else {
    int version = header == kHeaderV3 ? 3 : header == kHeaderV2 ? 2 : header == kHeaderV1 ? 1 : 0;
    if (version == 0) return Corrupt(1, "bad header");
    status = LegacyManifestParser(version, Crc32(0, header)).Run(in, manifest);
  }
  if (!status.ok()) return status;
  return manifest;
}

}  // namespace

absl::StatusOr<StoredManifest> StoredManifest::Parse(absl::string_view text) {
  bool given = false;
  ChunkReader in([&]() -> absl::StatusOr<absl::string_view> {
    if (given) return absl::string_view();
    given = true;
    return text;
  });
  return ReadManifest(in, Loading::kEager, nullptr);
}

absl::StatusOr<StoredManifest> StoredManifest::Load(FileSystem& fs, const std::string& path,
                                                    Loading loading) {
  absl::StatusOr<std::unique_ptr<ReadableFile>> opened = fs.OpenForRead(path);
  if (!opened.ok()) return opened.status();
  std::shared_ptr<ReadableFile> file = std::move(*opened);
  // Lazily, only the section headers are read: small reads where the
  // sections are passed over, whole chunks otherwise.
  const size_t chunk = loading == Loading::kLazy ? 4 << 10 : kChunk;
  std::string buffer(chunk, '\0');
  uint64_t at = 0;  // where the next read starts
  ChunkReader in(
      [&]() -> absl::StatusOr<absl::string_view> {
        absl::StatusOr<size_t> got = file->ReadAt(buffer.data(), buffer.size(), at);
        if (!got.ok()) return got.status();
        at += *got;
        return absl::string_view(buffer.data(), *got);
      },
      [&at](uint64_t n) { at += n; });
  absl::StatusOr<StoredManifest> manifest = ReadManifest(in, loading, file);
  if (!manifest.ok()) return manifest;
  manifest->has_base_ = true;
  manifest->base_bytes_ = in.offset();
  absl::Status replayed = manifest->ReplayLog(fs, path, manifest->positioned_);
  if (!replayed.ok()) return replayed;
  return manifest;
}

}  // namespace snaphaven
