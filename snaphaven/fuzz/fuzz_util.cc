#include "snaphaven/fuzz/fuzz_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "snaphaven/storage/checksum.h"

namespace snaphaven::fuzz {

void CheckFailed(const char* file, int line, const char* condition, absl::string_view detail) {
  std::fprintf(stderr, "%s:%d: invariant failed: %s\n%.*s\n", file, line, condition,
               static_cast<int>(detail.size()), detail.data());
  std::fflush(stderr);
  std::abort();
}

void CheckAsIsAndFixed(const uint8_t* data, size_t size,
                       std::string (*fix)(absl::string_view),
                       void (*check)(absl::string_view)) {
  const absl::string_view text = AsText(data, size);
  check(text);
  const std::string fixed = fix(text);
  if (fixed != text) check(fixed);
}

void RemoveTree(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return;
  if (S_ISDIR(st.st_mode)) {
    if (DIR* dir = opendir(path.c_str())) {
      while (struct dirent* entry = readdir(dir)) {
        const std::string name = entry->d_name;
        if (name != "." && name != "..") RemoveTree(path + "/" + name);
      }
      closedir(dir);
    }
    rmdir(path.c_str());
  } else {
    unlink(path.c_str());
  }
}

const std::string& ScratchDir() {
  static const std::string* const dir = [] {
    std::string base;
    if (const char* test_tmp = std::getenv("TEST_TMPDIR")) base = test_tmp;
    if (base.empty() && access("/dev/shm", W_OK) == 0) base = "/dev/shm";
    if (base.empty()) base = "/tmp";
    std::string templ = base + "/snaphaven_fuzz_XXXXXX";
    if (mkdtemp(templ.data()) == nullptr) {
      std::perror(("mkdtemp " + templ).c_str());
      std::abort();
    }
    std::atexit([] { RemoveTree(ScratchDir()); });
    return new std::string(templ);
  }();
  return *dir;
}

void WriteFileOrDie(const std::string& path, absl::string_view text) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  bool ok = fd >= 0;
  for (size_t done = 0; ok && done < text.size();) {
    const ssize_t n = write(fd, text.data() + done, text.size() - done);
    ok = n > 0;
    if (ok) done += n;
  }
  if (fd >= 0 && close(fd) != 0) ok = false;
  if (!ok) {
    std::perror(("write " + path).c_str());
    std::abort();
  }
}

namespace {

constexpr absl::string_view kLogHeader = "snaphaven-manifest-log";

// The lines of `text`, each with its newline (the last one may lack it).
std::vector<absl::string_view> Lines(absl::string_view text) {
  std::vector<absl::string_view> lines;
  while (!text.empty()) {
    size_t newline = text.find('\n');
    size_t take = newline == absl::string_view::npos ? text.size() : newline + 1;
    lines.push_back(text.substr(0, take));
    text.remove_prefix(take);
  }
  return lines;
}

// The last line after the first that starts "end " (a trailer), else the
// number of lines.
size_t LastTrailer(const std::vector<absl::string_view>& lines) {
  for (size_t i = lines.size(); i-- > 1;) {
    if (absl::StartsWith(lines[i], "end ")) return i;
  }
  return lines.size();
}

std::string Hex8(uint32_t value) { return absl::StrCat(absl::Hex(value, absl::kZeroPad8)); }

// The field after the `n`th tab of a "dir\t..." header, "" if none.
absl::string_view Field(absl::string_view line, size_t n) {
  std::vector<absl::string_view> fields = absl::StrSplit(line, '\t');
  return n < fields.size() ? fields[n] : absl::string_view();
}

// Version 4 and 5: sections, then "end <entries> <unique bytes> <crc>".
// Returns the trailer's CRC (what the log's header names).
uint32_t FixSections(const std::vector<absl::string_view>& lines, size_t first,
                     std::string* out) {
  uint64_t total = 0;
  size_t i = first;
  bool trailer = false;
  while (i < lines.size()) {
    absl::string_view line = lines[i];
    if (absl::StartsWith(line, "end ")) {
      std::vector<absl::string_view> t = absl::StrSplit(absl::StripSuffix(line, "\n"), ' ');
      int64_t unique = 0;
      if (t.size() < 3 || !absl::SimpleAtoi(t[2], &unique)) unique = 0;
      absl::StrAppend(out, "end ", total, " ", unique, " ");
      const uint32_t crc = Crc32(0, *out);
      absl::StrAppend(out, Hex8(crc), "\n");
      trailer = true;
      // Whatever follows the trailer is kept (the parser must refuse it).
      for (++i; i < lines.size(); ++i) absl::StrAppend(out, lines[i]);
      return crc;
    }
    if (!absl::StartsWith(line, "dir\t")) {  // a stray line: kept as it is
      absl::StrAppend(out, line);
      ++i;
      continue;
    }
    std::string body;
    uint64_t count = 0;
    for (++i; i < lines.size() && !absl::StartsWith(lines[i], "dir\t") &&
              !absl::StartsWith(lines[i], "end ");
         ++i) {
      absl::StrAppend(&body, lines[i]);
      ++count;
    }
    total += count;
    absl::StrAppend(out, "dir\t", Field(absl::StripSuffix(line, "\n"), 1), "\t", count, "\t",
                    body.size(), "\t", Hex8(Crc32(0, body)), "\n", body);
  }
  if (!trailer) {
    if (!out->empty() && out->back() != '\n') *out += '\n';
    absl::StrAppend(out, "end ", total, " 0 ");
    const uint32_t crc = Crc32(0, *out);
    absl::StrAppend(out, Hex8(crc), "\n");
    return crc;
  }
  return 0;
}

// Versions 1 to 3: entry lines, then "end <entries> <crc of all before>".
uint32_t FixLegacy(const std::vector<absl::string_view>& lines, std::string* out) {
  uint64_t count = 0;
  const size_t end = LastTrailer(lines);
  for (size_t i = 1; i < end; ++i) {
    absl::StrAppend(out, lines[i]);
    ++count;
  }
  if (!out->empty() && out->back() != '\n') *out += '\n';
  const uint32_t crc = Crc32(0, *out);
  absl::StrAppend(out, "end ", count, " ", Hex8(crc), "\n");
  return crc;
}

// The log: its header names the base by `base_crc`; each "rec\t" line
// starts a record whose body runs to the next one.
std::string FixLog(absl::string_view log, uint32_t base_crc) {
  std::vector<absl::string_view> lines = Lines(log);
  std::string out = absl::StrCat(kLogHeader, " 1 ", Hex8(base_crc), "\n");
  size_t i = 1;
  while (i < lines.size()) {
    if (!absl::StartsWith(lines[i], "rec\t")) {
      absl::StrAppend(&out, lines[i++]);
      continue;
    }
    std::string body;
    for (++i; i < lines.size() && !absl::StartsWith(lines[i], "rec\t"); ++i) {
      absl::StrAppend(&body, lines[i]);
    }
    absl::StrAppend(&out, "rec\t", body.size(), "\t", Hex8(Crc32(0, body)), "\n", body);
  }
  return out;
}

}  // namespace

void SplitManifestAndLog(absl::string_view text, std::string* base, std::string* log) {
  size_t at = absl::StartsWith(text, kLogHeader) ? 0 : text.find(absl::StrCat("\n", kLogHeader));
  if (at == absl::string_view::npos) {
    base->assign(text.data(), text.size());
    log->clear();
    return;
  }
  if (at > 0) ++at;  // after the newline
  base->assign(text.data(), at);
  log->assign(text.data() + at, text.size() - at);
}

std::string FixManifest(absl::string_view text) {
  std::string base, log;
  SplitManifestAndLog(text, &base, &log);
  std::vector<absl::string_view> lines = Lines(base);
  std::string out;
  uint32_t base_crc = 0;
  if (!lines.empty()) {
    out = std::string(lines[0]);
    if (lines[0] == "snaphaven-manifest 5\n" || lines[0] == "snaphaven-manifest 4\n") {
      size_t first = 1;
      if (lines[0] == "snaphaven-manifest 5\n" && lines.size() > 1) {
        absl::StrAppend(&out, lines[1]);  // the epoch
        first = 2;
      }
      base_crc = FixSections(lines, first, &out);
    } else if (absl::StartsWith(lines[0], "snaphaven-manifest ")) {
      base_crc = FixLegacy(lines, &out);
    } else {
      for (size_t i = 1; i < lines.size(); ++i) absl::StrAppend(&out, lines[i]);
    }
  }
  if (!log.empty()) {
    if (!out.empty() && out.back() != '\n') out += '\n';
    out += FixLog(log, base_crc);
  }
  return out;
}

std::string FixDirCache(absl::string_view text) {
  std::vector<absl::string_view> lines = Lines(text);
  std::string out;
  uint64_t count = 0;
  const size_t end = LastTrailer(lines);
  for (size_t i = 0; i < end; ++i) {
    absl::StrAppend(&out, lines[i]);
    if (i > 0 && lines[i] != "\n") ++count;
  }
  if (!out.empty() && out.back() != '\n') {
    out += '\n';
  }
  const uint32_t crc = Crc32(0, out);
  absl::StrAppend(&out, "end ", count, " ", Hex8(crc), "\n");
  return out;
}

}  // namespace snaphaven::fuzz
