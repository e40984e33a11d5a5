#include "tools/tree_generator.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace snaphaven::tools {
namespace {

// Data.db is written in chunks of this size: large enough for few syscalls,
// small enough that a multi-GiB file never needs a multi-GiB buffer.
constexpr size_t kChunkSize = size_t{1} << 20;

// SplitMix64: a tiny, fast generator whose output looks incompressible, which
// is what compressed Data.db files look like. Not std::random_device: the
// trees must be reproducible from a seed.
class Prng {
 public:
  explicit Prng(uint64_t seed) : state_(seed) {}

  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  // A value in [lo, hi]; the modulo bias does not matter for test data.
  int64_t Between(int64_t lo, int64_t hi) {
    return lo +
           static_cast<int64_t>(Next() % static_cast<uint64_t>(hi - lo + 1));
  }

  void Fill(char* buf, size_t n) {
    size_t i = 0;
    for (; i + sizeof(uint64_t) <= n; i += sizeof(uint64_t)) {
      const uint64_t v = Next();
      std::memcpy(buf + i, &v, sizeof(v));
    }
    if (i < n) {
      const uint64_t v = Next();
      std::memcpy(buf + i, &v, n - i);
    }
  }

 private:
  uint64_t state_;
};

// Mixes `parts` into `seed` so that every table and sstable gets its own
// stream, independent of what else the same call generates (adding a
// keyspace must not change the bytes of the others).
uint64_t DeriveSeed(uint64_t seed,
                    std::initializer_list<absl::string_view> parts) {
  uint64_t h = 0xcbf29ce484222325ULL ^ seed;  // FNV-1a
  for (absl::string_view part : parts) {
    for (unsigned char c : part) {
      h = (h ^ c) * 0x100000001b3ULL;
    }
    // A separator, so that {"ab", "c"} and {"a", "bc"} differ.
    h = (h ^ 0xff) * 0x100000001b3ULL;
  }
  return Prng(h).Next();
}

// Builds "<op> <path>: <strerror>" with the code matching errno (ENOENT gives
// NotFound, EEXIST AlreadyExists, ...). Call it right after the failing call.
absl::Status PosixError(absl::string_view op, absl::string_view path) {
  const int err = errno;
  return absl::ErrnoToStatus(err, absl::StrCat(op, " ", path));
}

std::string JoinPath(absl::string_view dir, absl::string_view name) {
  if (dir.empty()) return std::string(name);
  if (name.empty()) return std::string(dir);
  if (dir.back() == '/') return absl::StrCat(dir, name);
  return absl::StrCat(dir, "/", name);
}

// Owns a file descriptor; Close() reports the error that a destructor would
// have to drop (close can report a failed deferred write).
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  int Close() {
    const int fd = std::exchange(fd_, -1);
    return ::close(fd);
  }

 private:
  int fd_;
};

// O_EXCL: never overwrite. Rewriting a file in place would silently change
// every snapshot hard-linked to it, which Cassandra never does.
absl::StatusOr<int> CreateExclusive(const std::string& path) {
  const int fd =
      ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return PosixError("open", path);
  return fd;
}

absl::Status WriteAll(int fd, const char* data, size_t size,
                      const std::string& path) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return PosixError("write", path);
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::Status WriteNewFile(const std::string& path, absl::string_view content) {
  absl::StatusOr<int> fd_or = CreateExclusive(path);
  if (!fd_or.ok()) return fd_or.status();
  Fd fd(*fd_or);
  if (absl::Status s = WriteAll(fd.get(), content.data(), content.size(), path);
      !s.ok()) {
    return s;
  }
  if (fd.Close() != 0) return PosixError("close", path);
  return absl::OkStatus();
}

enum class DigestKind { kCrc32, kAdler32 };

uint32_t Adler32Of(const char* data, size_t size) {
  return static_cast<uint32_t>(adler32(adler32(0L, Z_NULL, 0),
                                       reinterpret_cast<const Bytef*>(data),
                                       static_cast<uInt>(size)));
}

// Java's DataOutput is big-endian.
void AppendInt32(std::string* out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out->push_back(static_cast<char>((v >> shift) & 0xff));
}

void AppendInt64(std::string* out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8)
    out->push_back(static_cast<char>((v >> shift) & 0xff));
}

// DataOutput.writeUTF for an ASCII string: 2-byte length, then the bytes.
void AppendUtf(std::string* out, absl::string_view s) {
  out->push_back(static_cast<char>((s.size() >> 8) & 0xff));
  out->push_back(static_cast<char>(s.size() & 0xff));
  out->append(s.data(), s.size());
}

// 2.1's CRC.db (uncompressed sstables) and CompressionInfo.db chunk length:
// 64 KiB. It divides kChunkSize, so the blocks of CRC.db never straddle two
// write buffers.
constexpr int64_t kKaChunkLength = 64 * 1024;
static_assert(kChunkSize % kKaChunkLength == 0);

// Writes `size` pseudo-random bytes and returns their checksum, computed on
// the fly so large files are not read back. With `block_checksums`, also
// appends the Adler-32 of every 64 KiB block (the last one may be short), as
// 2.1's CRC.db holds.
absl::StatusOr<uint32_t> WriteRandomFile(
    const std::string& path, int64_t size, DigestKind kind, Prng& prng,
    std::vector<uint32_t>* block_checksums = nullptr) {
  absl::StatusOr<int> fd_or = CreateExclusive(path);
  if (!fd_or.ok()) return fd_or.status();
  Fd fd(*fd_or);
  uLong checksum = kind == DigestKind::kCrc32 ? crc32(0L, Z_NULL, 0)
                                              : adler32(0L, Z_NULL, 0);
  std::string buffer(static_cast<size_t>(std::min<int64_t>(size, kChunkSize)),
                     '\0');
  for (int64_t left = size; left > 0;) {
    const size_t n = static_cast<size_t>(std::min<int64_t>(left, kChunkSize));
    prng.Fill(buffer.data(), n);
    const Bytef* bytes = reinterpret_cast<const Bytef*>(buffer.data());
    checksum = kind == DigestKind::kCrc32
                   ? crc32(checksum, bytes, static_cast<uInt>(n))
                   : adler32(checksum, bytes, static_cast<uInt>(n));
    if (block_checksums != nullptr) {
      for (size_t i = 0; i < n; i += kKaChunkLength) {
        block_checksums->push_back(Adler32Of(
            buffer.data() + i, std::min<size_t>(n - i, kKaChunkLength)));
      }
    }
    if (absl::Status s = WriteAll(fd.get(), buffer.data(), n, path); !s.ok())
      return s;
    left -= static_cast<int64_t>(n);
  }
  if (fd.Close() != 0) return PosixError("close", path);
  return static_cast<uint32_t>(checksum);
}

// What writing a compressed 2.1 Data.db yields besides the file.
struct KaCompressedData {
  // Adler-32 of the chunks' compressed bytes, without the 4-byte checksum
  // after each chunk: what real 2.1 writes to Digest.sha1.
  uint32_t digest = 0;
  std::string compression_info;  // The whole CompressionInfo.db.
};

// Writes a 2.1 compressed Data.db of `size` bytes (at least 5 when size > 0:
// one byte of chunk and its checksum): chunks of random "compressed" bytes,
// 40% to 100% of the 64 KiB chunk length, each followed by the big-endian
// Adler-32 of that chunk, as CompressedSequentialWriter wrote them. Returns
// the matching CompressionInfo.db in Java DataOutput form: writeUTF(compressor
// class), writeInt(option count = 0), writeInt(chunk length),
// writeLong(uncompressed length), writeInt(chunk count), then writeLong(offset
// of each chunk in Data.db).
absl::StatusOr<KaCompressedData> WriteKaCompressedDataFile(
    const std::string& path, int64_t size, Prng& prng) {
  absl::StatusOr<int> fd_or = CreateExclusive(path);
  if (!fd_or.ok()) return fd_or.status();
  Fd fd(*fd_or);
  constexpr int64_t kChecksumSize = 4;
  constexpr int64_t kMinChunk = 1 + kChecksumSize;
  const int64_t target = size == 0 ? 0 : std::max(size, kMinChunk);
  uLong digest = adler32(0L, Z_NULL, 0);
  std::vector<int64_t> offsets;
  int64_t uncompressed_length = 0;
  std::string chunk(static_cast<size_t>(kKaChunkLength), '\0');
  std::string out;
  out.reserve(kChunkSize + kKaChunkLength + kChecksumSize);
  for (int64_t offset = 0; offset < target;) {
    const int64_t left = target - offset;
    int64_t length;          // compressed bytes of this chunk
    int64_t nominal_length;  // the uncompressed bytes it stands for
    if (left <= kKaChunkLength + kChecksumSize) {
      // The last chunk: it covers what is left of the uncompressed data, so
      // its nominal length may be short of the chunk length.
      length = left - kChecksumSize;
      nominal_length =
          prng.Between(length, std::min(kKaChunkLength, length * 5 / 2));
    } else {
      length = prng.Between(kKaChunkLength * 2 / 5 + 8, kKaChunkLength);
      // Never leave a tail too short for a chunk and its checksum.
      if (left - length - kChecksumSize < kMinChunk) length -= 8;
      nominal_length = kKaChunkLength;
    }
    prng.Fill(chunk.data(), static_cast<size_t>(length));
    digest = adler32(digest, reinterpret_cast<const Bytef*>(chunk.data()),
                     static_cast<uInt>(length));
    out.append(chunk.data(), static_cast<size_t>(length));
    AppendInt32(&out, Adler32Of(chunk.data(), static_cast<size_t>(length)));
    offsets.push_back(offset);
    offset += length + kChecksumSize;
    uncompressed_length += nominal_length;
    if (out.size() >= kChunkSize || offset >= target) {
      if (absl::Status s = WriteAll(fd.get(), out.data(), out.size(), path);
          !s.ok())
        return s;
      out.clear();
    }
  }
  if (fd.Close() != 0) return PosixError("close", path);

  KaCompressedData result;
  result.digest = static_cast<uint32_t>(digest);
  std::string& info = result.compression_info;
  AppendUtf(&info, "LZ4Compressor");  // 2.1's default compressor
  AppendInt32(&info, 0);              // no compressor options
  AppendInt32(&info, static_cast<uint32_t>(kKaChunkLength));
  AppendInt64(&info, static_cast<uint64_t>(uncompressed_length));
  AppendInt32(&info, static_cast<uint32_t>(offsets.size()));
  for (int64_t offset : offsets)
    AppendInt64(&info, static_cast<uint64_t>(offset));
  return result;
}

absl::Status MakeDirs(const std::string& path) {
  if (path.empty()) return absl::InvalidArgumentError("empty directory path");
  for (size_t pos = path.find('/', 1);; pos = path.find('/', pos + 1)) {
    const std::string prefix = path.substr(0, pos);
    if (::mkdir(prefix.c_str(), 0755) != 0) {
      if (errno != EEXIST) return PosixError("mkdir", prefix);
      // EEXIST also covers a regular file in the way: make that an error
      // here rather than a confusing ENOTDIR further down.
      struct stat st;
      if (::stat(prefix.c_str(), &st) != 0) return PosixError("stat", prefix);
      if (!S_ISDIR(st.st_mode)) {
        return absl::FailedPreconditionError(
            absl::StrCat("mkdir ", prefix, ": not a directory"));
      }
    }
    if (pos == std::string::npos) break;
  }
  return absl::OkStatus();
}

// Sorted names of the entries of `dir`, without "." and "..".
absl::StatusOr<std::vector<std::string>> ListDir(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return PosixError("opendir", dir);
  std::vector<std::string> names;
  errno = 0;
  while (const dirent* entry = ::readdir(d)) {
    absl::string_view name = entry->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
  }
  const int err = errno;
  ::closedir(d);
  if (err != 0) return absl::ErrnoToStatus(err, absl::StrCat("readdir ", dir));
  std::sort(names.begin(), names.end());
  return names;
}

bool IsDir(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool IsRegularFile(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// Keyspace, table and index names are `\w+` in Cassandra.
bool IsWordName(absl::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

// Tags are any directory name in Cassandra; only reject what cannot be one.
absl::Status ValidateTag(absl::string_view tag) {
  if (tag.empty() || tag == "." || tag == ".." ||
      tag.find('/') != absl::string_view::npos ||
      tag.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid snapshot tag \"", tag, "\""));
  }
  return absl::OkStatus();
}

absl::Status ValidateKeyspaces(const std::vector<std::string>& keyspaces) {
  for (const std::string& ks : keyspaces) {
    if (!IsWordName(ks)) {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid keyspace name \"", ks, "\""));
    }
  }
  return absl::OkStatus();
}

// How sstables of one version are named and which components they have.
struct SSTableFormat {
  std::string version;  // "nb"
  std::string format;   // "big" or "bti"; empty for "ka"
  DigestKind digest;
  std::string digest_component;         // "Digest.crc32"
  std::vector<std::string> components;  // in the order TOC.txt lists them
  // 2.1 ("ka"): "<ks>-<table>-ka-<gen>-<Component>" names, a chunk-only
  // Digest.sha1 when compressed, and real CompressionInfo.db/CRC.db contents.
  bool ka = false;
  bool compressed = true;  // false only for uncompressed "ka" (CRC.db)
};

// `compressed` only matters for "ka": later versions always get a
// CompressionInfo.db, as before.
absl::StatusOr<SSTableFormat> FormatForVersion(absl::string_view version,
                                               bool compressed = true) {
  const bool two_letters = version.size() == 2 &&
                           absl::ascii_islower(version[0]) &&
                           absl::ascii_islower(version[1]);
  // "d?" is the 5.0 BTI family; every other supported version (2.2's la/lb,
  // 3.x's m?, 4.x's n?, 5.0's oa) uses the "big" format and the same naming.
  const bool bti = two_letters && version[0] == 'd';
  const bool ka = version == "ka";
  if (!two_letters || (!bti && !ka && version < "la")) {
    return absl::InvalidArgumentError(
        absl::StrCat("unsupported sstable version \"", version,
                     "\": want two lowercase letters, \"ka\", \"la\" or "
                     "later (or \"da\"); pre-2.1 sstables are not "
                     "generated"));
  }
  SSTableFormat f;
  f.version = std::string(version);
  if (ka) {
    // 2.1 wrote an Adler-32 decimal into a file still named Digest.sha1.
    f.ka = true;
    f.compressed = compressed;
    f.digest = DigestKind::kAdler32;
    f.digest_component = "Digest.sha1";
    // TOC.txt is a Java HashSet dump: the order is arbitrary, readers must
    // compare as a set. CRC.db replaces CompressionInfo.db when uncompressed.
    f.components = {compressed ? "CompressionInfo.db" : "CRC.db",
                    "Data.db",
                    "Summary.db",
                    "Filter.db",
                    "Statistics.db",
                    "TOC.txt",
                    "Index.db",
                    f.digest_component};
    return f;
  }
  f.format = bti ? "bti" : "big";
  // 2.2 used Adler-32 digests; 3.0 (ma) switched to CRC-32.
  const bool adler = version == "la" || version == "lb";
  f.digest = adler ? DigestKind::kAdler32 : DigestKind::kCrc32;
  f.digest_component = adler ? "Digest.adler32" : "Digest.crc32";
  // Big-format order copied from a real nb TOC.txt (Cassandra writes a Java
  // HashSet, so the order looks arbitrary; readers must compare as a set).
  if (bti) {
    f.components = {
        "TOC.txt",       "CompressionInfo.db", "Partitions.db",    "Rows.db",
        "Statistics.db", "Filter.db",          f.digest_component, "Data.db"};
  } else {
    f.components = {"TOC.txt",       "CompressionInfo.db", "Index.db",
                    "Statistics.db", "Filter.db",          f.digest_component,
                    "Data.db",       "Summary.db"};
  }
  return f;
}

// Sizes of the small components, in the ranges seen on real small sstables.
int64_t SmallComponentSize(absl::string_view component, Prng& prng) {
  if (component == "Statistics.db") return prng.Between(4600, 5400);
  if (component == "Index.db" || component == "Partitions.db")
    return prng.Between(200, 4096);
  if (component == "Rows.db") return prng.Between(100, 2048);
  if (component == "Summary.db") return prng.Between(56, 600);
  if (component == "CompressionInfo.db") return prng.Between(47, 400);
  if (component == "Filter.db") return prng.Between(16, 1024);
  return prng.Between(100, 1000);
}

// The column family name 2.1 puts in sstable names: the table's, or for an
// index store ".<idx>" the index table's "<table>.<idx>".
std::string KaColumnFamily(absl::string_view table, absl::string_view rel) {
  if (rel.empty()) return std::string(table);
  return absl::StrCat(table, ".", absl::StripPrefix(rel, "."));
}

// "<ver>-<gen>-<format>-", or for 2.1 "<keyspace>-<cf>-ka-<gen>-" (cf from
// KaColumnFamily).
std::string SSTablePrefix(const SSTableFormat& f, absl::string_view keyspace,
                          absl::string_view cf, int64_t generation) {
  if (f.ka) {
    return absl::StrCat(keyspace, "-", cf, "-", f.version, "-", generation,
                        "-");
  }
  return absl::StrCat(f.version, "-", generation, "-", f.format, "-");
}

// Writes one complete sstable into `dir`, Data.db first and TOC.txt last, as
// Cassandra does. `keyspace` and `cf` only appear in 2.1 names.
absl::Status WriteSSTable(const std::string& dir, const SSTableFormat& f,
                          absl::string_view keyspace, absl::string_view cf,
                          int64_t generation, int64_t data_size,
                          uint64_t seed) {
  Prng prng(seed);
  const std::string prefix =
      JoinPath(dir, SSTablePrefix(f, keyspace, cf, generation));
  const std::string data_path = absl::StrCat(prefix, "Data.db");
  uint32_t digest;
  // Components whose content follows from Data.db (2.1 only; later versions
  // get random bytes there, as before).
  std::map<std::string, std::string> derived;
  if (f.ka && f.compressed) {
    absl::StatusOr<KaCompressedData> data =
        WriteKaCompressedDataFile(data_path, data_size, prng);
    if (!data.ok()) return data.status();
    digest = data->digest;
    derived["CompressionInfo.db"] = std::move(data->compression_info);
  } else if (f.ka) {
    // CRC.db: writeInt(chunk length), then the Adler-32 of every chunk.
    std::vector<uint32_t> blocks;
    absl::StatusOr<uint32_t> whole =
        WriteRandomFile(data_path, data_size, f.digest, prng, &blocks);
    if (!whole.ok()) return whole.status();
    digest = *whole;
    std::string crc;
    AppendInt32(&crc, static_cast<uint32_t>(kKaChunkLength));
    for (uint32_t block : blocks) AppendInt32(&crc, block);
    derived["CRC.db"] = std::move(crc);
  } else {
    absl::StatusOr<uint32_t> whole =
        WriteRandomFile(data_path, data_size, f.digest, prng);
    if (!whole.ok()) return whole.status();
    digest = *whole;
  }
  for (const std::string& component : f.components) {
    if (component == "Data.db" || component == "TOC.txt") continue;
    std::string content;
    if (component == f.digest_component) {
      content = absl::StrCat(digest);  // Unsigned decimal, no newline.
    } else if (auto it = derived.find(component); it != derived.end()) {
      content = std::move(it->second);
    } else {
      content.resize(static_cast<size_t>(SmallComponentSize(component, prng)));
      prng.Fill(content.data(), content.size());
    }
    if (absl::Status s = WriteNewFile(absl::StrCat(prefix, component), content);
        !s.ok()) {
      return s;
    }
  }
  return WriteNewFile(absl::StrCat(prefix, "TOC.txt"),
                      absl::StrCat(absl::StrJoin(f.components, "\n"), "\n"));
}

// "<ver>-<id>-<format>-<Component>", the naming from 2.2 on, or 2.1's
// "<keyspace>-<cf>-<ver>-<gen>-<Component>".
struct SSTableName {
  std::string keyspace;  // 2.1 only, like cf
  std::string cf;        // "users", or "users.users_idx0" for an index
  std::string version;
  std::string id;
  std::string format;  // empty for 2.1
  std::string component;

  bool IsKa() const { return !cf.empty(); }
  std::string Prefix() const {
    if (IsKa())
      return absl::StrCat(keyspace, "-", cf, "-", version, "-", id, "-");
    return absl::StrCat(version, "-", id, "-", format, "-");
  }
  // The integer generation, or -1 for a 4.1+ UUID-like id.
  int64_t Generation() const {
    int64_t gen;
    return absl::SimpleAtoi(id, &gen) && gen >= 0 ? gen : -1;
  }
};

// Parses live sstable component names; rejects 2.x "tmp-"/"tmplink-" files,
// transaction logs and "*.tmp" rewrites, which a snapshot never includes.
// Components never contain '-', which keeps the two namings apart: 2.2+
// names have 4 dash-separated fields, 2.1 names 5 (6 with "tmp"/"tmplink").
std::optional<SSTableName> ParseSSTableName(absl::string_view name) {
  std::vector<absl::string_view> parts = absl::StrSplit(name, '-');
  const auto all_lower = [](absl::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
      return absl::ascii_islower(static_cast<unsigned char>(c));
    });
  };
  const auto is_version = [&](absl::string_view s) {
    return s.size() == 2 && all_lower(s);
  };
  const absl::string_view component = parts.back();
  if (component.empty() || absl::EndsWith(component, ".tmp")) {
    return std::nullopt;
  }
  if (parts.size() == 5) {
    // 2.1: the cf of an index sstable is "<table>.<index>".
    const absl::string_view keyspace = parts[0], cf = parts[1],
                            version = parts[2], gen = parts[3];
    const std::vector<absl::string_view> cf_parts = absl::StrSplit(cf, '.');
    const bool cf_ok =
        cf_parts.size() <= 2 &&
        std::all_of(cf_parts.begin(), cf_parts.end(), IsWordName);
    if (!IsWordName(keyspace) || !cf_ok || !is_version(version) ||
        gen.empty() || !std::all_of(gen.begin(), gen.end(), [](char c) {
          return absl::ascii_isdigit(static_cast<unsigned char>(c));
        })) {
      return std::nullopt;
    }
    return SSTableName{std::string(keyspace),    std::string(cf),
                       std::string(version),     std::string(gen),
                       /*format=*/std::string(), std::string(component)};
  }
  if (parts.size() != 4) return std::nullopt;
  const absl::string_view version = parts[0], id = parts[1], format = parts[2];
  if (!is_version(version) || !IsWordName(id) || !all_lower(format)) {
    return std::nullopt;
  }
  return SSTableName{
      /*keyspace=*/std::string(), /*cf=*/std::string(),
      std::string(version),       std::string(id),
      std::string(format),        std::string(component)};
}

// The files of one sstable found in a directory.
struct SSTableFiles {
  SSTableName name;  // Of any one component; only the prefix fields matter.
  std::vector<std::string> files;
  bool has_toc = false;
  bool has_data = false;
  bool has_crc = false;  // CRC.db: an uncompressed sstable
};

// The sstables whose files sit directly in `dir`, ordered by generation (so
// manifests list gen 2 before gen 10). A missing dir has none.
absl::StatusOr<std::vector<SSTableFiles>> ListSSTables(const std::string& dir) {
  absl::StatusOr<std::vector<std::string>> names = ListDir(dir);
  if (!names.ok()) {
    if (absl::IsNotFound(names.status())) return std::vector<SSTableFiles>();
    return names.status();
  }
  std::map<std::string, SSTableFiles> by_prefix;
  for (const std::string& name : *names) {
    std::optional<SSTableName> parsed = ParseSSTableName(name);
    if (!parsed || !IsRegularFile(JoinPath(dir, name))) continue;
    SSTableFiles& sstable = by_prefix[parsed->Prefix()];
    sstable.name = *parsed;
    sstable.files.push_back(name);
    sstable.has_toc |= parsed->component == "TOC.txt";
    sstable.has_data |= parsed->component == "Data.db";
    sstable.has_crc |= parsed->component == "CRC.db";
  }
  std::vector<SSTableFiles> sstables;
  for (auto& [prefix, sstable] : by_prefix)
    sstables.push_back(std::move(sstable));
  std::stable_sort(
      sstables.begin(), sstables.end(),
      [](const SSTableFiles& a, const SSTableFiles& b) {
        // UUID-like ids (-1) sort last; the map already
        // ordered equal generations by prefix.
        const uint64_t ga = static_cast<uint64_t>(a.name.Generation());
        const uint64_t gb = static_cast<uint64_t>(b.name.Generation());
        return ga < gb;
      });
  return sstables;
}

// One table directory and the secondary index dirs inside it.
struct Table {
  std::string keyspace;
  std::string dir_name;  // "users-<32 hex id>", or "users" for pre-2.1 tables
  std::string path;
  std::vector<std::string> index_dirs;  // ".users_idx0", sorted
  // Its newest sstables are 2.1 ("ka") ones: snapshots then get 2.1's
  // manifest.json and no schema.cql.
  bool ka = false;

  std::string TableName() const {
    return dir_name.substr(0, dir_name.find('-'));
  }
  std::string Id() const {
    const size_t dash = dir_name.find('-');
    return dash == std::string::npos ? "" : dir_name.substr(dash + 1);
  }
  // "" for the base table, then each index dir; a snapshot mirrors them as
  // snapshots/<tag>/<rel>.
  std::vector<std::string> StoreRelPaths() const {
    std::vector<std::string> rels = {""};
    rels.insert(rels.end(), index_dirs.begin(), index_dirs.end());
    return rels;
  }
};

bool IsTableDirName(absl::string_view name) {
  const size_t dash = name.find('-');
  if (dash == absl::string_view::npos) return IsWordName(name);
  const absl::string_view id = name.substr(dash + 1);
  return IsWordName(name.substr(0, dash)) && id.size() == 32 &&
         std::all_of(id.begin(), id.end(), [](char c) {
           return absl::ascii_isdigit(static_cast<unsigned char>(c)) ||
                  (c >= 'a' && c <= 'f');
         });
}

// Every directory that may hold an sstable of the store `rel` ("" or
// ".<idx>") of `table`: the live dir, each snapshot's and backups'.
absl::StatusOr<std::vector<std::string>> StoreDirs(const Table& table,
                                                   const std::string& rel) {
  std::vector<std::string> dirs = {JoinPath(table.path, rel)};
  const std::string snapshots = JoinPath(table.path, "snapshots");
  absl::StatusOr<std::vector<std::string>> tags = ListDir(snapshots);
  if (tags.ok()) {
    for (const std::string& tag : *tags)
      dirs.push_back(JoinPath(JoinPath(snapshots, tag), rel));
  } else if (!absl::IsNotFound(tags.status())) {
    return tags.status();
  }
  dirs.push_back(JoinPath(JoinPath(table.path, "backups"), rel));
  return dirs;
}

// The sstable with the highest integer generation of one store, live,
// snapshotted or backed up.
struct NewestSSTable {
  int64_t generation = 0;  // 0 if there is none
  std::string version;     // empty if there is none
  bool compressed = true;  // false if it has a CRC.db
};

absl::StatusOr<NewestSSTable> FindNewestSSTable(const Table& table,
                                                const std::string& rel) {
  absl::StatusOr<std::vector<std::string>> dirs = StoreDirs(table, rel);
  if (!dirs.ok()) return dirs.status();
  NewestSSTable newest;
  for (const std::string& dir : *dirs) {
    absl::StatusOr<std::vector<SSTableFiles>> sstables = ListSSTables(dir);
    if (!sstables.ok()) return sstables.status();
    for (const SSTableFiles& sstable : *sstables) {
      if (sstable.name.Generation() > newest.generation) {
        newest.generation = sstable.name.Generation();
        newest.version = sstable.name.version;
        newest.compressed = !sstable.has_crc;
      }
    }
  }
  return newest;
}

absl::StatusOr<Table> LoadTable(const std::string& keyspace,
                                const std::string& dir_name,
                                const std::string& path) {
  Table table{keyspace, dir_name, path, {}, /*ka=*/false};
  absl::StatusOr<std::vector<std::string>> entries = ListDir(path);
  if (!entries.ok()) return entries.status();
  for (const std::string& entry : *entries) {
    if (entry.size() > 1 && entry[0] == '.' && IsWordName(entry.substr(1)) &&
        IsDir(JoinPath(path, entry))) {
      table.index_dirs.push_back(entry);
    }
  }
  // The base table's newest sstable tells, or an index's if it has none.
  for (const std::string& rel : table.StoreRelPaths()) {
    absl::StatusOr<NewestSSTable> newest = FindNewestSSTable(table, rel);
    if (!newest.ok()) return newest.status();
    if (!newest->version.empty()) {
      table.ka = newest->version == "ka";
      break;
    }
  }
  return table;
}

// The tables of `keyspaces` under data_root, as Cassandra would find them.
absl::StatusOr<std::vector<Table>> FindTables(
    const std::string& data_root, const std::vector<std::string>& keyspaces) {
  if (absl::Status s = ValidateKeyspaces(keyspaces); !s.ok()) return s;
  std::vector<Table> tables;
  for (const std::string& ks : keyspaces) {
    const std::string ks_path = JoinPath(data_root, ks);
    absl::StatusOr<std::vector<std::string>> entries = ListDir(ks_path);
    if (!entries.ok()) return entries.status();
    for (const std::string& entry : *entries) {
      const std::string path = JoinPath(ks_path, entry);
      if (!IsTableDirName(entry) || !IsDir(path)) continue;
      absl::StatusOr<Table> table = LoadTable(ks, entry, path);
      if (!table.ok()) return table.status();
      tables.push_back(*std::move(table));
    }
  }
  return tables;
}

// Cassandra's table ids are time UUIDs: random bits with the version-1 and
// RFC 4122 variant nibbles set, so the ids look like the real ones.
std::string TableId(uint32_t seed, absl::string_view keyspace,
                    absl::string_view table) {
  Prng prng(DeriveSeed(seed, {"table-id", keyspace, table}));
  const uint64_t hi = (prng.Next() & ~uint64_t{0xf000}) | 0x1000;
  const uint64_t lo =
      (prng.Next() & ~(uint64_t{3} << 62)) | (uint64_t{2} << 62);
  return absl::StrFormat("%016x%016x", hi, lo);
}

std::string TableNameFor(int index) {
  static constexpr const char* kFirstNames[] = {"users", "events"};
  if (index < 2) return kFirstNames[index];
  return absl::StrCat("t", index);
}

// `escape_slash`: write '/' as "\/", as json-simple (Cassandra 2.1's JSON
// library) does; valid JSON either way.
std::string JsonString(absl::string_view s, bool escape_slash = false) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\' || (escape_slash && c == '/')) {
      absl::StrAppend(&out, "\\", absl::string_view(&c, 1));
    } else if (static_cast<unsigned char>(c) < 0x20) {
      absl::StrAppend(
          &out, absl::StrFormat("\\u%04x", static_cast<int>(
                                               static_cast<unsigned char>(c))));
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
  return out;
}

// The 4.1+ manifest, laid out the way Jackson's default pretty printer writes
// it (valid JSON either way; readers must not depend on the whitespace).
std::string ManifestJson(const std::vector<std::string>& files,
                         absl::Time created_at) {
  std::vector<std::string> quoted;
  for (const std::string& f : files) quoted.push_back(JsonString(f));
  const std::string list =
      quoted.empty() ? "[ ]"
                     : absl::StrCat("[ ", absl::StrJoin(quoted, ", "), " ]");
  return absl::StrCat(
      "{\n  \"files\" : ", list, ",\n  \"created_at\" : \"",
      absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", created_at, absl::UTCTimeZone()),
      "\",\n  \"expires_at\" : null\n}");
}

// 2.1's manifest: json-simple's compact output, then println's newline.
// Index sstables are listed as ".<idx>/<name>", which json-simple writes as
// ".<idx>\/<name>". (That is what CASSANDRA-10968, in 2.1.22, made 2.1 write:
// before it, a table with indexes got a manifest listing only its last
// index's sstables. The generator writes the fixed form.)
std::string KaManifestJson(const std::vector<std::string>& files) {
  std::vector<std::string> quoted;
  for (const std::string& f : files)
    quoted.push_back(JsonString(f, /*escape_slash=*/true));
  return absl::StrCat("{\"files\":[", absl::StrJoin(quoted, ","), "]}\n");
}

std::string DashedUuid(absl::string_view hex) {
  if (hex.size() != 32) return std::string(hex);
  return absl::StrCat(hex.substr(0, 8), "-", hex.substr(8, 4), "-",
                      hex.substr(12, 4), "-", hex.substr(16, 4), "-",
                      hex.substr(20));
}

// A schema.cql like Cassandra 4's: the table (with its id, so a restore can
// recreate it under the same id) and one CREATE INDEX per index dir.
std::string SchemaCql(const Table& table) {
  const std::string qualified =
      absl::StrCat(table.keyspace, ".", table.TableName());
  std::string cql =
      absl::StrCat("CREATE TABLE IF NOT EXISTS ", qualified,
                   " (\n\tid uuid,\n\tts timestamp,\n\tpayload blob,\n");
  for (size_t i = 0; i < table.index_dirs.size(); ++i) {
    absl::StrAppend(&cql, "\tv", i, " text,\n");
  }
  absl::StrAppend(&cql, "\tPRIMARY KEY (id, ts)\n) WITH ");
  if (!table.Id().empty())
    absl::StrAppend(&cql, "ID = ", DashedUuid(table.Id()), "\n\tAND ");
  absl::StrAppend(
      &cql,
      "CLUSTERING ORDER BY (ts DESC)\n"
      "\tAND additional_write_policy = '99p'\n"
      "\tAND bloom_filter_fp_chance = 0.01\n"
      "\tAND caching = {'keys': 'ALL', 'rows_per_partition': 'NONE'}\n"
      "\tAND cdc = false\n"
      "\tAND comment = ''\n"
      "\tAND compaction = {'class': "
      "'org.apache.cassandra.db.compaction.SizeTieredCompactionStrategy', "
      "'max_threshold': '32', 'min_threshold': '4'}\n"
      "\tAND compression = {'chunk_length_in_kb': '16', 'class': "
      "'org.apache.cassandra.io.compress.LZ4Compressor'}\n"
      "\tAND crc_check_chance = 1.0\n"
      "\tAND default_time_to_live = 0\n"
      "\tAND extensions = {}\n"
      "\tAND gc_grace_seconds = 864000\n"
      "\tAND max_index_interval = 2048\n"
      "\tAND memtable_flush_period_in_ms = 0\n"
      "\tAND min_index_interval = 128\n"
      "\tAND read_repair = 'BLOCKING'\n"
      "\tAND speculative_retry = '99p';\n");
  for (size_t i = 0; i < table.index_dirs.size(); ++i) {
    absl::StrAppend(&cql, "CREATE INDEX IF NOT EXISTS ",
                    table.index_dirs[i].substr(1), " ON ", qualified, " (v", i,
                    ");\n");
  }
  return cql;
}

// Cassandra writes no schema.cql for its own keyspaces.
bool IsSystemKeyspace(absl::string_view ks) {
  return ks == "system" || ks == "system_auth" || ks == "system_traces" ||
         ks == "system_distributed" || ks == "system_schema";
}

// Links one table's live sstables into snapshots/<tag>/, then writes the
// manifest, then schema.cql: the order nodetool snapshot uses.
absl::Status SnapshotTable(const Table& table, const std::string& tag,
                           bool write_schema, absl::Time created_at) {
  const std::string snapshot_dir =
      JoinPath(JoinPath(table.path, "snapshots"), tag);
  if (absl::Status s = MakeDirs(snapshot_dir); !s.ok()) return s;
  std::vector<std::string> data_files;
  for (const std::string& rel : table.StoreRelPaths()) {
    const std::string source_dir = JoinPath(table.path, rel);
    const std::string dest_dir = JoinPath(snapshot_dir, rel);
    if (!rel.empty() && ::mkdir(dest_dir.c_str(), 0755) != 0) {
      return PosixError("mkdir", dest_dir);
    }
    absl::StatusOr<std::vector<SSTableFiles>> sstables =
        ListSSTables(source_dir);
    if (!sstables.ok()) return sstables.status();
    for (const SSTableFiles& sstable : *sstables) {
      // Without TOC.txt the sstable is still being written: not live yet.
      if (!sstable.has_toc) continue;
      for (const std::string& file : sstable.files) {
        const std::string from = JoinPath(source_dir, file);
        const std::string to = JoinPath(dest_dir, file);
        if (::link(from.c_str(), to.c_str()) != 0) {
          return PosixError("link", absl::StrCat(from, " -> ", to));
        }
      }
      if (sstable.has_data) {
        data_files.push_back(
            JoinPath(rel, absl::StrCat(sstable.name.Prefix(), "Data.db")));
      }
    }
  }
  if (absl::Status s =
          WriteNewFile(JoinPath(snapshot_dir, "manifest.json"),
                       table.ka ? KaManifestJson(data_files)
                                : ManifestJson(data_files, created_at));
      !s.ok()) {
    return s;
  }
  // 2.1 wrote no schema.cql (it came with 3.0).
  if (write_schema && !table.ka && !IsSystemKeyspace(table.keyspace)) {
    return WriteNewFile(JoinPath(snapshot_dir, "schema.cql"), SchemaCql(table));
  }
  return absl::OkStatus();
}

absl::Status SnapshotTables(const std::vector<Table>& tables,
                            const std::string& tag, bool write_schema) {
  if (absl::Status s = ValidateTag(tag); !s.ok()) return s;
  // Check every table first: a tag is never reused, and failing halfway
  // would leave a partial snapshot behind.
  for (const Table& table : tables) {
    const std::string dir = JoinPath(JoinPath(table.path, "snapshots"), tag);
    struct stat st;
    if (::lstat(dir.c_str(), &st) == 0) {
      return absl::AlreadyExistsError(
          absl::StrCat("snapshot ", dir, " already exists"));
    }
    if (errno != ENOENT) return PosixError("lstat", dir);
  }
  const absl::Time created_at = absl::Now();
  for (const Table& table : tables) {
    if (absl::Status s = SnapshotTable(table, tag, write_schema, created_at);
        !s.ok())
      return s;
  }
  return absl::OkStatus();
}

absl::Status UnlinkLiveSSTables(const std::string& dir) {
  absl::StatusOr<std::vector<SSTableFiles>> sstables = ListSSTables(dir);
  if (!sstables.ok()) return sstables.status();
  for (const SSTableFiles& sstable : *sstables) {
    for (const std::string& file : sstable.files) {
      const std::string path = JoinPath(dir, file);
      if (::unlink(path.c_str()) != 0) return PosixError("unlink", path);
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateSpec(const TreeSpec& spec) {
  if (absl::Status s = ValidateKeyspaces(spec.keyspaces); !s.ok()) return s;
  if (std::set<std::string>(spec.keyspaces.begin(), spec.keyspaces.end())
          .size() != spec.keyspaces.size()) {
    return absl::InvalidArgumentError("duplicate keyspace name");
  }
  if (spec.tables_per_keyspace < 0 || spec.sstables_per_table < 0 ||
      spec.index_dirs_per_table < 0 || spec.data_size < 0) {
    return absl::InvalidArgumentError(
        "counts and data_size must not be negative");
  }
  for (const std::string& tag : spec.snapshot_tags) {
    if (absl::Status s = ValidateTag(tag); !s.ok()) return s;
  }
  if (std::set<std::string>(spec.snapshot_tags.begin(),
                            spec.snapshot_tags.end())
          .size() != spec.snapshot_tags.size()) {
    return absl::InvalidArgumentError(
        "duplicate snapshot tag (Cassandra never reuses one)");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status GenerateTree(const std::string& data_root, const TreeSpec& spec) {
  if (absl::Status s = ValidateSpec(spec); !s.ok()) return s;
  absl::StatusOr<SSTableFormat> format =
      FormatForVersion(spec.version, spec.compressed);
  if (!format.ok()) return format.status();
  if (absl::Status s = MakeDirs(data_root); !s.ok()) return s;

  std::vector<Table> tables;
  for (const std::string& ks : spec.keyspaces) {
    if (absl::Status s = MakeDirs(JoinPath(data_root, ks)); !s.ok()) return s;
    for (int t = 0; t < spec.tables_per_keyspace; ++t) {
      const std::string name = TableNameFor(t);
      const std::string dir_name =
          absl::StrCat(name, "-", TableId(spec.seed, ks, name));
      Table table{ks,
                  dir_name,
                  JoinPath(JoinPath(data_root, ks), dir_name),
                  {},
                  format->ka};
      for (int i = 0; i < spec.index_dirs_per_table; ++i) {
        table.index_dirs.push_back(absl::StrCat(".", name, "_idx", i));
      }
      for (const std::string& rel : table.StoreRelPaths()) {
        const std::string dir = JoinPath(table.path, rel);
        if (absl::Status s = MakeDirs(dir); !s.ok()) return s;
        for (int gen = 1; gen <= spec.sstables_per_table; ++gen) {
          const uint64_t seed =
              DeriveSeed(spec.seed, {ks, name, rel, absl::StrCat(gen)});
          if (absl::Status s =
                  WriteSSTable(dir, *format, ks, KaColumnFamily(name, rel), gen,
                               spec.data_size, seed);
              !s.ok()) {
            return s;
          }
        }
      }
      tables.push_back(std::move(table));
    }
  }

  // Cassandra 2.1 and 2.2 wrote no schema.cql; it came with 3.0.
  const bool write_schema = spec.write_schema_cql && format->version != "ka" &&
                            format->version != "la" && format->version != "lb";
  for (const std::string& tag : spec.snapshot_tags) {
    if (absl::Status s = SnapshotTables(tables, tag, write_schema); !s.ok())
      return s;
  }

  if (!spec.write_live_sstables) {
    for (const Table& table : tables) {
      for (const std::string& rel : table.StoreRelPaths()) {
        if (absl::Status s = UnlinkLiveSSTables(JoinPath(table.path, rel));
            !s.ok())
          return s;
      }
    }
  }
  return absl::OkStatus();
}

absl::Status TakeSnapshot(const std::string& data_root,
                          const std::vector<std::string>& keyspaces,
                          const std::string& tag) {
  absl::StatusOr<std::vector<Table>> tables = FindTables(data_root, keyspaces);
  if (!tables.ok()) return tables.status();
  return SnapshotTables(*tables, tag, /*write_schema=*/true);
}

absl::Status FlushNewSSTables(const std::string& data_root,
                              const std::vector<std::string>& keyspaces,
                              int64_t data_size, uint32_t seed) {
  if (data_size < 0)
    return absl::InvalidArgumentError("data_size must not be negative");
  absl::StatusOr<std::vector<Table>> tables = FindTables(data_root, keyspaces);
  if (!tables.ok()) return tables.status();
  for (const Table& table : *tables) {
    for (const std::string& rel : table.StoreRelPaths()) {
      // Look in snapshots and backups too, so the new generation is above
      // all of them even when the live files are gone.
      absl::StatusOr<NewestSSTable> newest = FindNewestSSTable(table, rel);
      if (!newest.ok()) return newest.status();
      const std::string version = !newest->version.empty() ? newest->version
                                  : table.ka               ? "ka"
                                                           : "nb";
      absl::StatusOr<SSTableFormat> format =
          FormatForVersion(version, newest->compressed);
      if (!format.ok()) return format.status();
      const int64_t generation = newest->generation + 1;
      const uint64_t sstable_seed = DeriveSeed(
          seed,
          {table.keyspace, table.dir_name, rel, absl::StrCat(generation)});
      if (absl::Status s =
              WriteSSTable(JoinPath(table.path, rel), *format, table.keyspace,
                           KaColumnFamily(table.TableName(), rel), generation,
                           data_size, sstable_seed);
          !s.ok()) {
        return s;
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> ParseByteSize(absl::string_view text) {
  text = absl::StripAsciiWhitespace(text);
  int64_t multiplier = 1;
  if (!text.empty()) {
    switch (absl::ascii_toupper(static_cast<unsigned char>(text.back()))) {
      case 'K':
        multiplier = int64_t{1} << 10;
        break;
      case 'M':
        multiplier = int64_t{1} << 20;
        break;
      case 'G':
        multiplier = int64_t{1} << 30;
        break;
      default:
        break;
    }
    if (multiplier != 1) text.remove_suffix(1);
  }
  int64_t value = 0;
  if (!absl::SimpleAtoi(text, &value) || value < 0 ||
      value > std::numeric_limits<int64_t>::max() / multiplier) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a byte count: \"", text, "\""));
  }
  return value * multiplier;
}

}  // namespace snaphaven::tools
