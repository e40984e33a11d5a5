#include "tools/soak/churn.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "tools/tree_generator.h"

namespace snaphaven::soak {
namespace {

// The components of a 4.x "big" sstable, in the order its TOC.txt lists
// them (the generator's order, copied from a real nb TOC.txt).
const std::vector<std::string>& Components() {
  static const auto* components = new std::vector<std::string>{
      "TOC.txt",   "CompressionInfo.db", "Index.db", "Statistics.db",
      "Filter.db", "Digest.crc32",       "Data.db",  "Summary.db"};
  return *components;
}

// The order a writer creates them: Data.db first, TOC.txt last.
const std::vector<std::string>& WriteOrder() {
  static const auto* order = new std::vector<std::string>{
      "Data.db",   "Index.db",     "Filter.db", "Summary.db", "Statistics.db",
      "CompressionInfo.db", "Digest.crc32", "TOC.txt"};
  return *order;
}

absl::Status PosixError(absl::string_view op, absl::string_view path) {
  const int err = errno;
  return absl::ErrnoToStatus(err, absl::StrCat(op, " ", path));
}

uint32_t Crc32(absl::string_view data) {
  uLong crc = crc32(0L, Z_NULL, 0);
  crc = crc32(crc, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size()));
  return static_cast<uint32_t>(crc);
}

absl::Status WriteAll(int fd, absl::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return PosixError("write", path);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

// Creates `path` (never overwriting: that would change every snapshot
// hard-linked to it) with `contents`.
absl::Status WriteNewFile(const std::string& path, absl::string_view contents) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return PosixError("create", path);
  absl::Status s = WriteAll(fd, contents, path);
  if (::close(fd) != 0 && s.ok()) s = PosixError("close", path);
  return s;
}

absl::Status AppendLine(const std::string& path, absl::string_view line) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return PosixError("open", path);
  absl::Status s = WriteAll(fd, absl::StrCat(line, "\n"), path);
  // Cassandra syncs each record; so do we (cheap on these tiny files).
  if (s.ok() && ::fsync(fd) != 0) s = PosixError("fsync", path);
  if (::close(fd) != 0 && s.ok()) s = PosixError("close", path);
  return s;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return PosixError("open", path);
  std::string out;
  char buffer[65536];
  while (true) {
    ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      absl::Status s = PosixError("read", path);
      ::close(fd);
      return s;
    }
    if (n == 0) break;
    out.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}


// "nb-7-big-Data.db" -> prefix "nb-7-big", generation 7, component.
struct SSTableFileName {
  std::string version, prefix, component;
  int64_t generation = -1;
};

bool ParseSSTableFileName(absl::string_view name, SSTableFileName* out) {
  std::vector<absl::string_view> parts = absl::StrSplit(name, absl::MaxSplits('-', 3));
  if (parts.size() != 4 || parts[0].size() != 2 || !absl::ascii_islower(parts[0][0]) ||
      !absl::ascii_islower(parts[0][1]) || parts[3].empty() || absl::EndsWith(name, ".tmp")) {
    return false;
  }
  int64_t gen;
  if (!absl::SimpleAtoi(parts[1], &gen)) return false;
  out->version = std::string(parts[0]);
  out->generation = gen;
  out->prefix = absl::StrCat(parts[0], "-", parts[1], "-", parts[2]);
  out->component = std::string(parts[3]);
  return true;
}

}  // namespace

// Entries of `dir` without "." and "..", sorted; NotFound if it is gone.
absl::StatusOr<std::vector<std::string>> ListDir(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return PosixError("opendir", dir);
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(std::move(name));
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

bool IsDir(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

const char* FateName(Fate fate) {
  switch (fate) {
    case Fate::kLive: return "live";
    case Fate::kInFlight: return "in flight (uncommitted)";
    case Fate::kAborted: return "aborted";
    case Fate::kCompacted: return "compacted away";
    case Fate::kUncommitted: return "never committed";
  }
  return "?";
}

struct Churner::Store {
  std::string rel;        // "ks1/users-<id>" or "ks1/users-<id>/.users_idx0"
  std::string abs;
  std::string table_rel;  // "ks1/users-<id>"
  std::string index;      // "" or ".users_idx0"
  std::string version = "nb";
  int64_t next_generation = 1;
  std::vector<std::string> live;  // committed prefixes, oldest first
  std::set<std::string> busy;     // prefixes an operation holds

  std::string Key(const std::string& prefix) const { return absl::StrCat(rel, "/", prefix); }
  std::vector<std::string> FreeLive() const {
    std::vector<std::string> out;
    for (const std::string& p : live) {
      if (!busy.count(p)) out.push_back(p);
    }
    return out;
  }
  std::string BackupRel() const {
    return index.empty() ? absl::StrCat(table_rel, "/backups")
                         : absl::StrCat(table_rel, "/backups/", index);
  }
};

// An operation in flight: its actions run one per step.
struct Churner::Operation {
  std::string name;
  std::vector<std::function<absl::Status()>> actions;
  size_t next = 0;
  std::string key;                     // the sstable it writes
  std::shared_ptr<TxnLogRecord> log;  // its transaction log
  bool done() const { return next >= actions.size(); }
};

namespace {

std::string Record(absl::string_view type, absl::string_view path, int64_t update_time,
                   int64_t num_files) {
  std::string text = absl::StrCat(type, ":[", path, ",", update_time, ",", num_files, "]");
  if (type == "ABORT") return absl::StrCat(text, "[1]");
  return absl::StrCat(text, "[", Churner::RecordChecksum(text), "]");
}

}  // namespace

uint32_t Churner::RecordChecksum(const std::string& record_text) { return Crc32(record_text); }

bool Churner::ParseLogLine(const std::string& line, LogLine* out) {
  // TYPE:[<path>,<updateTime>,<numFiles>][<checksum>]
  size_t colon = line.find(":[");
  if (colon == std::string::npos) return false;
  out->type = line.substr(0, colon);
  if (out->type != "ADD" && out->type != "REMOVE" && out->type != "COMMIT" &&
      out->type != "ABORT") {
    return false;
  }
  size_t close = line.rfind("][");
  if (close == std::string::npos || close < colon || line.back() != ']') return false;
  std::string record = line.substr(colon + 2, close - colon - 2);
  out->checksum = line.substr(close + 2, line.size() - close - 3);
  if (out->checksum.empty() ||
      !std::all_of(out->checksum.begin(), out->checksum.end(),
                   [](char c) { return absl::ascii_isdigit(static_cast<unsigned char>(c)); })) {
    return false;
  }
  size_t last = record.rfind(',');
  if (last == std::string::npos || last == 0) return false;
  size_t before = record.rfind(',', last - 1);
  if (before == std::string::npos) return false;
  out->path = record.substr(0, before);
  return absl::SimpleAtoi(record.substr(before + 1, last - before - 1), &out->update_time) &&
         absl::SimpleAtoi(record.substr(last + 1), &out->num_files);
}

Churner::Churner(const ChurnOptions& options) : options_(options), rng_(options.seed) {
  if (!options_.journal_path.empty()) {
    journal_ = std::make_unique<std::ofstream>(options_.journal_path, std::ios::app);
  }
}

absl::Status Churner::AppendToLog(TxnLogRecord& log, const std::string& line) {
  if (absl::Status st = AppendLine(log.path, line); !st.ok()) return st;
  absl::StrAppend(&log.contents, line, "\n");
  Note(absl::StrCat(Rel(log.path), " += ", line));
  return absl::OkStatus();
}

void Churner::Note(const std::string& what) {
  if (journal_ == nullptr) return;
  *journal_ << absl::FormatTime("%H:%M:%E3S ", absl::Now(), absl::LocalTimeZone()) << what
            << std::endl;
}
Churner::~Churner() = default;

absl::StatusOr<std::unique_ptr<Churner>> Churner::Create(const ChurnOptions& options) {
  if (options.data_root.empty() || options.data_root[0] != '/') {
    return absl::InvalidArgumentError("ChurnOptions.data_root must be an absolute path");
  }
  if (options.keyspaces.empty()) return absl::InvalidArgumentError("no keyspace");
  std::unique_ptr<Churner> churner(new Churner(options));
  if (absl::Status s = churner->Load(); !s.ok()) return s;
  if (churner->stores_.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("no table under ", options.data_root));
  }
  return churner;
}

std::string Churner::Rel(const std::string& abs) const {
  if (absl::StartsWith(abs, options_.data_root + "/")) {
    return abs.substr(options_.data_root.size() + 1);
  }
  return abs;
}

absl::Status Churner::Unlink(const std::string& abs) {
  removed_paths_.insert(Rel(abs));
  Note(absl::StrCat("unlink ", Rel(abs)));
  if (::unlink(abs.c_str()) != 0 && errno != ENOENT) return PosixError("unlink", abs);
  return absl::OkStatus();
}

// rm -rf that tolerates snaphaven deleting the same files meanwhile.
absl::Status Churner::RemoveTree(const std::string& abs) {
  Note(absl::StrCat("rm -r ", Rel(abs)));
  absl::StatusOr<std::vector<std::string>> names = ListDir(abs);
  if (!names.ok()) return absl::IsNotFound(names.status()) ? absl::OkStatus() : names.status();
  for (const std::string& name : *names) {
    std::string child = absl::StrCat(abs, "/", name);
    if (IsDir(child)) {
      if (absl::Status s = RemoveTree(child); !s.ok()) return s;
    } else if (absl::Status s = Unlink(child); !s.ok()) {
      return s;
    }
  }
  removed_paths_.insert(Rel(abs));
  if (::rmdir(abs.c_str()) != 0 && errno != ENOENT) return PosixError("rmdir", abs);
  return absl::OkStatus();
}

std::string Churner::RandomBytes(int64_t n) {
  std::string out(static_cast<size_t>(n), '\0');
  size_t i = 0;
  for (; i + 8 <= out.size(); i += 8) {
    uint64_t v = rng_();
    std::memcpy(&out[i], &v, 8);
  }
  if (i < out.size()) {
    uint64_t v = rng_();
    std::memcpy(&out[i], &v, out.size() - i);
  }
  return out;
}

// A version-1 (time) UUID as Cassandra names its logs with; the bits come
// from the RNG so a seed replays the same names.
std::string Churner::TimeUuid() {
  uint64_t hi = rng_(), lo = rng_();
  hi = (hi & ~uint64_t{0xf000}) | 0x1000;
  lo = (lo & ~(uint64_t{3} << 62)) | (uint64_t{2} << 62);
  std::string hex = absl::StrFormat("%016x%016x", hi, lo);
  return absl::StrCat(hex.substr(0, 8), "-", hex.substr(8, 4), "-", hex.substr(12, 4), "-",
                      hex.substr(16, 4), "-", hex.substr(20));
}

absl::Status Churner::Pause() {
  int64_t lo = absl::ToInt64Microseconds(options_.min_pause);
  int64_t hi = std::max(lo, absl::ToInt64Microseconds(options_.max_pause));
  int64_t us = std::uniform_int_distribution<int64_t>(lo, hi)(rng_);
  absl::SleepFor(absl::Microseconds(us));
  return absl::OkStatus();
}

absl::Status Churner::Load() {
  const std::string& root = options_.data_root;
  for (const std::string& ks : options_.keyspaces) {
    absl::StatusOr<std::vector<std::string>> tables = ListDir(absl::StrCat(root, "/", ks));
    if (!tables.ok()) return tables.status();
    for (const std::string& table : *tables) {
      std::string table_abs = absl::StrCat(root, "/", ks, "/", table);
      if (table[0] == '.' || !IsDir(table_abs)) continue;
      std::vector<std::string> indexes = {""};
      absl::StatusOr<std::vector<std::string>> entries = ListDir(table_abs);
      if (!entries.ok()) return entries.status();
      for (const std::string& e : *entries) {
        if (e.size() > 1 && e[0] == '.' && IsDir(absl::StrCat(table_abs, "/", e))) {
          indexes.push_back(e);
        }
      }
      for (const std::string& index : indexes) {
        auto store = std::make_unique<Store>();
        store->table_rel = absl::StrCat(ks, "/", table);
        store->index = index;
        store->rel = index.empty() ? store->table_rel : absl::StrCat(store->table_rel, "/", index);
        store->abs = absl::StrCat(root, "/", store->rel);
        // Generations above every one seen, live, snapshotted or backed up:
        // Cassandra never reuses one.
        std::vector<std::string> dirs = {store->abs,
                                         absl::StrCat(root, "/", store->BackupRel())};
        absl::StatusOr<std::vector<std::string>> tags =
            ListDir(absl::StrCat(table_abs, "/snapshots"));
        if (tags.ok()) {
          for (const std::string& tag : *tags) {
            dirs.push_back(absl::StrCat(table_abs, "/snapshots/", tag,
                                        index.empty() ? "" : "/", index));
          }
        }
        int64_t max_generation = 0;
        for (size_t d = 0; d < dirs.size(); ++d) {
          absl::StatusOr<std::vector<std::string>> names = ListDir(dirs[d]);
          if (!names.ok()) continue;
          std::set<std::string> prefixes;
          for (const std::string& name : *names) {
            SSTableFileName parsed;
            if (!ParseSSTableFileName(name, &parsed)) continue;
            max_generation = std::max(max_generation, parsed.generation);
            if (d != 0) continue;
            store->version = parsed.version;
            prefixes.insert(parsed.prefix);
            std::string abs = absl::StrCat(dirs[d], "/", name);
            absl::StatusOr<std::string> contents = ReadFile(abs);
            if (!contents.ok()) return contents.status();
            live_versions_[Rel(abs)].push_back(
                FileSig{static_cast<int64_t>(contents->size()), Crc32(*contents)});
          }
          for (const std::string& prefix : prefixes) {
            store->live.push_back(prefix);
            fates_[store->Key(prefix)] = Fate::kLive;
          }
        }
        store->next_generation = max_generation + 1;
        stores_.push_back(std::move(store));
      }
      absl::StatusOr<std::vector<std::string>> tags =
          ListDir(absl::StrCat(table_abs, "/snapshots"));
      if (tags.ok()) {
        for (const std::string& tag : *tags) {
          if (std::find(snapshot_tags_.begin(), snapshot_tags_.end(), tag) ==
              snapshot_tags_.end()) {
            snapshot_tags_.push_back(tag);
          }
        }
      }
    }
  }
  for (const std::string& tag : snapshot_tags_) {
    if (absl::Status s = RecordSnapshot(tag); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status Churner::RecordSnapshot(const std::string& tag) {
  for (const auto& store : stores_) {
    if (!store->index.empty()) continue;
    std::string unit_rel = absl::StrCat(store->table_rel, "/snapshots/", tag);
    std::string unit_abs = absl::StrCat(options_.data_root, "/", unit_rel);
    if (!IsDir(unit_abs)) continue;
    SnapshotUnit& unit = snapshots_[unit_rel];
    unit.tag = tag;
    std::function<void(const std::string&)> walk = [&](const std::string& dir) {
      absl::StatusOr<std::vector<std::string>> names = ListDir(dir);
      if (!names.ok()) {
        unit.complete_record = false;
        return;
      }
      for (const std::string& name : *names) {
        std::string abs = absl::StrCat(dir, "/", name);
        if (IsDir(abs)) {
          walk(abs);
          continue;
        }
        absl::StatusOr<std::string> contents = ReadFile(abs);
        if (!contents.ok()) {
          unit.complete_record = false;  // moved away already: too fast
          continue;
        }
        unit.files[Rel(abs)] = FileSig{static_cast<int64_t>(contents->size()), Crc32(*contents)};
      }
    };
    walk(unit_abs);
  }
  return absl::OkStatus();
}

std::vector<std::string> Churner::store_dirs() const {
  std::vector<std::string> out;
  for (const auto& store : stores_) out.push_back(store->rel);
  return out;
}

int Churner::in_flight() const { return static_cast<int>(in_flight_.size()); }

// Flushes and compactions write one new sstable each: the ADD record, then
// the components one action at a time, then COMMIT (or ABORT), as
// Cassandra's LogTransaction does.
struct Churner::NewSSTable {
  std::string prefix, key, abs_prefix;
  std::vector<std::string> written;  // absolute paths of components written
};

std::function<absl::Status()> Churner::WriteComponent(
    std::shared_ptr<NewSSTable> sst,
    std::shared_ptr<std::map<std::string, std::string>> contents, std::string component) {
  return [this, sst, contents, component]() {
    std::string path = absl::StrCat(sst->abs_prefix, "-", component);
    const std::string& bytes = contents->at(component);
    if (absl::Status st = WriteNewFile(path, bytes); !st.ok()) return st;
    Note(absl::StrCat("write ", Rel(path)));
    sst->written.push_back(path);
    live_versions_[Rel(path)].push_back(
        FileSig{static_cast<int64_t>(bytes.size()), Crc32(bytes)});
    return absl::OkStatus();
  };
}

std::shared_ptr<std::map<std::string, std::string>> Churner::NewContents() {
  auto contents = std::make_shared<std::map<std::string, std::string>>();
  const int64_t data_size = std::max<int64_t>(
      1, std::uniform_int_distribution<int64_t>(options_.data_size / 2,
                                                options_.data_size * 3 / 2)(rng_));
  std::string data = RandomBytes(data_size);
  for (const std::string& component : WriteOrder()) {
    if (component == "Data.db") {
      continue;
    } else if (component == "Digest.crc32") {
      (*contents)[component] = absl::StrCat(Crc32(data));  // decimal, no newline
    } else if (component == "TOC.txt") {
      (*contents)[component] = absl::StrCat(absl::StrJoin(Components(), "\n"), "\n");
    } else {
      int64_t size = component == "Statistics.db"
                         ? std::uniform_int_distribution<int64_t>(4600, 5400)(rng_)
                         : std::uniform_int_distribution<int64_t>(50, 2048)(rng_);
      (*contents)[component] = RandomBytes(size);
    }
  }
  (*contents)["Data.db"] = std::move(data);
  return contents;
}

std::unique_ptr<Churner::Operation> Churner::NewFlush(Store& store, bool may_abort) {
  auto op = std::make_unique<Operation>();
  const bool abort = may_abort && std::bernoulli_distribution(options_.abort_fraction)(rng_);
  // Most aborts come after every component is written, TOC.txt included:
  // the case a reader ignoring the log would take for a finished sstable.
  const int components = static_cast<int>(WriteOrder().size());
  const int abort_after =
      !abort ? components
             : (std::bernoulli_distribution(0.7)(rng_)
                    ? components
                    : std::uniform_int_distribution<int>(0, components - 1)(rng_));
  auto sst = std::make_shared<NewSSTable>();
  const int64_t generation = store.next_generation++;
  sst->prefix = absl::StrCat(store.version, "-", generation, "-big");
  sst->key = store.Key(sst->prefix);
  sst->abs_prefix = absl::StrCat(store.abs, "/", sst->prefix);
  auto log = std::make_shared<TxnLogRecord>();
  log->path = absl::StrCat(store.abs, "/", store.version, "_txn_flush_", TimeUuid(), ".log");
  log->added.push_back(sst->key);
  op->name = absl::StrCat(abort ? "aborted flush " : "flush ", sst->key);
  op->key = sst->key;
  op->log = log;
  Store* s = &store;

  auto append = [this, log](const std::string& line) { return AppendToLog(*log, line); };
  op->actions.push_back([this, sst, append]() {
    fates_[sst->key] = Fate::kInFlight;
    return append(Record("ADD", sst->abs_prefix, 0, static_cast<int64_t>(Components().size())));
  });
  // Sizes and contents are drawn when the operation starts, so the
  // interleaving does not change the bytes a seed produces.
  auto contents = NewContents();
  for (int c = 0; c < abort_after; ++c) {
    const std::string component = WriteOrder()[c];
    op->actions.push_back(WriteComponent(sst, contents, component));
  }
  auto finish_log = [this, log]() {
    logs_.push_back(*log);
    return Unlink(log->path);
  };
  if (abort) {
    op->actions.push_back([this, sst, log, append]() {
      fates_[sst->key] = Fate::kAborted;
      log->aborted = true;
      ++stats_.flushes_aborted;
      return append(Record("ABORT", "", 0, 0));
    });
    // The sstable's files one by one, then the log.
    for (int c = 0; c < abort_after; ++c) {
      op->actions.push_back([this, sst, c]() { return Unlink(sst->written[c]); });
    }
    op->actions.push_back(finish_log);
    return op;
  }
  op->actions.push_back([this, sst, s, log, append]() {
    if (absl::Status st = append(Record("COMMIT", "", 0, 0)); !st.ok()) return st;
    log->committed = true;
    fates_[sst->key] = Fate::kLive;
    s->live.push_back(sst->prefix);
    s->busy.insert(sst->prefix);  // until its backup links and log are done
    last_flush_ = {s, sst->prefix};
    ++stats_.flushes_committed;
    return absl::OkStatus();
  });
  if (options_.incremental_backups) {
    // Hard links of every component into backups/ (Cassandra's
    // incremental_backups), in HashSet order: arbitrary.
    std::vector<std::string> order = Components();
    std::shuffle(order.begin(), order.end(), rng_);
    op->actions.push_back([this, sst, s, order, contents]() {
      std::string dir = absl::StrCat(options_.data_root, "/", s->BackupRel());
      if (::mkdir(absl::StrCat(options_.data_root, "/", s->table_rel, "/backups").c_str(),
                  0755) != 0 &&
          errno != EEXIST) {
        return PosixError("mkdir", dir);
      }
      if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return PosixError("mkdir", dir);
      for (const std::string& component : order) {
        std::string from = absl::StrCat(sst->abs_prefix, "-", component);
        std::string to = absl::StrCat(dir, "/", sst->prefix, "-", component);
        if (::link(from.c_str(), to.c_str()) != 0) {
          return PosixError("link", absl::StrCat(from, " -> ", to));
        }
        const std::string& bytes = contents->at(component);
        backups_[Rel(to)] = FileSig{static_cast<int64_t>(bytes.size()), Crc32(bytes)};
      }
      ++stats_.backups_linked;
      Note(absl::StrCat("link ", sst->key, "-* into ", s->BackupRel()));
      return absl::OkStatus();
    });
  }
  // "Shortly after" the commit, the log goes.
  op->actions.push_back([s, sst, finish_log]() {
    s->busy.erase(sst->prefix);
    return finish_log();
  });
  return op;
}

std::unique_ptr<Churner::Operation> Churner::NewCompaction(Store& store) {
  std::vector<std::string> free = store.FreeLive();
  std::shuffle(free.begin(), free.end(), rng_);
  std::vector<std::string> inputs(free.begin(), free.begin() + 2);
  for (const std::string& p : inputs) store.busy.insert(p);
  const bool abort = std::bernoulli_distribution(options_.abort_fraction / 3)(rng_);

  auto op = std::make_unique<Operation>();
  auto sst = std::make_shared<NewSSTable>();
  const int64_t generation = store.next_generation++;
  sst->prefix = absl::StrCat(store.version, "-", generation, "-big");
  sst->key = store.Key(sst->prefix);
  sst->abs_prefix = absl::StrCat(store.abs, "/", sst->prefix);
  auto log = std::make_shared<TxnLogRecord>();
  log->path =
      absl::StrCat(store.abs, "/", store.version, "_txn_compaction_", TimeUuid(), ".log");
  log->added.push_back(sst->key);
  op->name = absl::StrCat(abort ? "aborted compaction " : "compaction ",
                          absl::StrJoin(inputs, "+"), " -> ", sst->key);
  op->key = sst->key;
  op->log = log;
  Store* s = &store;
  auto append = [this, log](const std::string& line) { return AppendToLog(*log, line); };
  auto release = [s, inputs, sst]() {
    for (const std::string& p : inputs) s->busy.erase(p);
    s->busy.erase(sst->prefix);
  };
  op->actions.push_back([this, sst, append]() {
    fates_[sst->key] = Fate::kInFlight;
    return append(Record("ADD", sst->abs_prefix, 0, static_cast<int64_t>(Components().size())));
  });
  auto contents = NewContents();
  for (const std::string& component : WriteOrder()) {
    op->actions.push_back(WriteComponent(sst, contents, component));
  }
  auto finish_log = [this, log, release]() {
    release();
    logs_.push_back(*log);
    return Unlink(log->path);
  };
  if (abort) {
    op->actions.push_back([this, sst, log, append]() {
      fates_[sst->key] = Fate::kAborted;
      log->aborted = true;
      ++stats_.compactions_aborted;
      return append(Record("ABORT", "", 0, 0));
    });
    for (size_t c = 0; c < WriteOrder().size(); ++c) {
      op->actions.push_back([this, sst, c]() { return Unlink(sst->written[c]); });
    }
    op->actions.push_back(finish_log);
    return op;
  }
  // The inputs become obsolete: REMOVE records (with their files' newest
  // mtime in ms and file count, as Cassandra writes), then COMMIT.
  op->actions.push_back([this, s, inputs, log, append]() {
    for (const std::string& prefix : inputs) {
      int64_t newest_ms = 0, files = 0;
      for (const std::string& component : Components()) {
        struct stat st;
        std::string path = absl::StrCat(s->abs, "/", prefix, "-", component);
        if (::stat(path.c_str(), &st) != 0) continue;
        ++files;
        newest_ms = std::max<int64_t>(
            newest_ms, int64_t{st.st_mtim.tv_sec} * 1000 + st.st_mtim.tv_nsec / 1000000);
      }
      log->removed.push_back(s->Key(prefix));
      if (absl::Status st = append(
              Record("REMOVE", absl::StrCat(s->abs, "/", prefix), newest_ms, files));
          !st.ok()) {
        return st;
      }
    }
    return absl::OkStatus();
  });
  op->actions.push_back([this, sst, s, inputs, log, append]() {
    if (absl::Status st = append(Record("COMMIT", "", 0, 0)); !st.ok()) return st;
    log->committed = true;
    fates_[sst->key] = Fate::kLive;
    s->live.push_back(sst->prefix);
    s->busy.insert(sst->prefix);  // until the log is gone
    for (const std::string& prefix : inputs) {
      fates_[s->Key(prefix)] = Fate::kCompacted;
      s->live.erase(std::remove(s->live.begin(), s->live.end(), prefix), s->live.end());
    }
    ++stats_.compactions_committed;
    return absl::OkStatus();
  });
  // The obsolete sstables go component by component, Data.db first.
  for (const std::string& prefix : inputs) {
    std::vector<std::string> order = Components();
    order.erase(std::find(order.begin(), order.end(), "Data.db"));
    std::shuffle(order.begin(), order.end(), rng_);
    order.insert(order.begin(), "Data.db");
    for (const std::string& component : order) {
      std::string path = absl::StrCat(s->abs, "/", prefix, "-", component);
      op->actions.push_back([this, path]() { return Unlink(path); });
    }
  }
  op->actions.push_back(finish_log);
  return op;
}

// Cassandra rewrites Statistics.db (repairedAt, level) into
// "<file>.tmp" and renames it over the old one: a new inode.
std::unique_ptr<Churner::Operation> Churner::NewStatsRewrite(Store& store, std::string prefix) {
  if (prefix.empty()) {
    std::vector<std::string> free = store.FreeLive();
    prefix = free[std::uniform_int_distribution<size_t>(0, free.size() - 1)(rng_)];
  }
  store.busy.insert(prefix);
  std::string path = absl::StrCat(store.abs, "/", prefix, "-Statistics.db");
  std::string tmp = absl::StrCat(path, ".tmp");
  // Often the same size (a field changed in place), sometimes not.
  struct stat st;
  int64_t size = ::stat(path.c_str(), &st) == 0 && std::bernoulli_distribution(0.5)(rng_)
                     ? st.st_size
                     : std::uniform_int_distribution<int64_t>(4600, 5400)(rng_);
  auto bytes = std::make_shared<std::string>(RandomBytes(size));
  auto op = std::make_unique<Operation>();
  op->name = absl::StrCat("rewrite ", store.Key(prefix), "-Statistics.db");
  Store* s = &store;
  op->actions.push_back([this, tmp, bytes]() {
    Note(absl::StrCat("write ", Rel(tmp)));
    return WriteNewFile(tmp, *bytes);
  });
  op->actions.push_back([this, s, prefix, path, tmp, bytes]() {
    removed_paths_.insert(Rel(tmp));
    removed_paths_.insert(Rel(path));  // replaced
    if (::rename(tmp.c_str(), path.c_str()) != 0) return PosixError("rename", tmp);
    Note(absl::StrCat("rename ", Rel(tmp), " over ", Rel(path)));
    live_versions_[Rel(path)].push_back(
        FileSig{static_cast<int64_t>(bytes->size()), Crc32(*bytes)});
    s->busy.erase(prefix);
    ++stats_.stats_rewrites;
    return absl::OkStatus();
  });
  return op;
}

absl::Status Churner::TakeSnapshot() {
  // A tag like nodetool's automatic ones (epoch ms), made unique.
  std::string tag = absl::StrCat("soak-", ++snapshot_seq_, "-", absl::ToUnixMillis(absl::Now()));
  // Usually one keyspace ("nodetool snapshot -t <tag> ks1"), sometimes all.
  std::vector<std::string> keyspaces = options_.keyspaces;
  if (keyspaces.size() > 1 && std::bernoulli_distribution(0.75)(rng_)) {
    keyspaces = {keyspaces[std::uniform_int_distribution<size_t>(0, keyspaces.size() - 1)(rng_)]};
  }
  Note(absl::StrCat("snapshot ", tag, " of ", absl::StrJoin(keyspaces, ",")));
  if (absl::Status s = tools::TakeSnapshot(options_.data_root, keyspaces, tag); !s.ok()) {
    return s;
  }
  snapshot_tags_.push_back(tag);
  ++stats_.snapshots_taken;
  if (std::bernoulli_distribution(options_.quick_clear_probability)(rng_)) {
    quick_clears_.emplace_back(std::uniform_int_distribution<int>(0, 40)(rng_), tag);
  }
  return RecordSnapshot(tag);
}

absl::Status Churner::ClearSnapshot(std::string tag) {
  if (tag.empty()) {
    std::vector<std::string> candidates;
    for (const std::string& t : snapshot_tags_) {
      if (!cleared_tags_.count(t)) candidates.push_back(t);
    }
    if (candidates.empty()) return absl::OkStatus();
    // Half the time the newest.
    tag = std::bernoulli_distribution(0.5)(rng_)
              ? candidates.back()
              : candidates[std::uniform_int_distribution<size_t>(0, candidates.size() - 1)(rng_)];
  }
  if (!cleared_tags_.insert(tag).second) return absl::OkStatus();
  Note(absl::StrCat("clearsnapshot ", tag));
  bool any = false;
  for (auto& [unit_rel, unit] : snapshots_) {
    if (unit.tag != tag) continue;
    std::string abs = absl::StrCat(options_.data_root, "/", unit_rel);
    if (!Exists(abs)) {
      unit.gone_before_clear = true;
      continue;
    }
    unit.cleared = true;
    any = true;
    if (absl::Status s = RemoveTree(abs); !s.ok()) return s;
  }
  ++(any ? stats_.snapshots_cleared : stats_.snapshot_clears_gone);
  return absl::OkStatus();
}

absl::Status Churner::StartOperation() {
  // What can start now.
  std::vector<Store*> compactable, rewritable;
  std::vector<Store*> crowded;
  for (const auto& store : stores_) {
    size_t free = store->FreeLive().size();
    if (free >= 3) compactable.push_back(store.get());
    if (free > static_cast<size_t>(options_.compaction_threshold)) crowded.push_back(store.get());
    if (free >= 1) rewritable.push_back(store.get());
  }
  bool clearable = false;
  for (const std::string& tag : snapshot_tags_) clearable |= !cleared_tags_.count(tag);
  std::vector<double> weights = {
      options_.weight_flush,
      compactable.empty() ? 0 : options_.weight_compaction * (crowded.empty() ? 1 : 4),
      rewritable.empty() ? 0 : options_.weight_rewrite_stats, options_.weight_snapshot,
      clearable ? options_.weight_clear_snapshot : 0};
  int kind = std::discrete_distribution<int>(weights.begin(), weights.end())(rng_);
  auto pick = [this](const std::vector<Store*>& from) {
    return from[std::uniform_int_distribution<size_t>(0, from.size() - 1)(rng_)];
  };
  std::unique_ptr<Operation> op;
  switch (kind) {
    case 0: {
      std::vector<Store*> all;
      for (const auto& store : stores_) all.push_back(store.get());
      op = NewFlush(*pick(all), /*may_abort=*/true);
      break;
    }
    case 1:
      op = NewCompaction(*pick(crowded.empty() ? compactable : crowded));
      break;
    case 2: {
      // Half the time the newest flush, as an incremental repair running
      // beside the writes does: its backup links (and any snapshot just
      // taken) still share the old inode and are likely not copied yet.
      Store* store = last_flush_.first;
      const bool newest = std::bernoulli_distribution(0.5)(rng_) && store != nullptr &&
                          !store->busy.count(last_flush_.second) &&
                          std::find(store->live.begin(), store->live.end(),
                                    last_flush_.second) != store->live.end();
      op = newest ? NewStatsRewrite(*store, last_flush_.second)
                  : NewStatsRewrite(*pick(rewritable));
      break;
    }
    case 3:
      want_snapshot_ = true;  // once nothing is in flight
      return absl::OkStatus();
    case 4:
      return ClearSnapshot();
  }
  // The first action runs in this step.
  Note(absl::StrCat("start ", op->name));
  absl::Status s = op->actions[op->next++]();
  if (!s.ok()) return s;
  if (!op->done()) in_flight_.push_back(std::move(op));
  return absl::OkStatus();
}

absl::Status Churner::Step(bool pause) {
  ++stats_.steps;
  for (auto it = quick_clears_.begin(); it != quick_clears_.end();) {
    if (it->first-- > 0) {
      ++it;
      continue;
    }
    std::string tag = it->second;
    it = quick_clears_.erase(it);
    if (absl::Status s = ClearSnapshot(tag); !s.ok()) return s;
  }
  absl::Status status;
  if (want_snapshot_ && in_flight_.empty()) {
    // nodetool snapshot links only committed sstables: take it when no
    // transaction is open (the generator links whatever has a TOC.txt).
    want_snapshot_ = false;
    status = TakeSnapshot();
  } else {
    const bool can_start =
        !want_snapshot_ && static_cast<int>(in_flight_.size()) < options_.max_in_flight;
    if (can_start &&
        (in_flight_.empty() || std::bernoulli_distribution(options_.start_probability)(rng_))) {
      status = StartOperation();
    } else if (!in_flight_.empty()) {
      size_t i = std::uniform_int_distribution<size_t>(0, in_flight_.size() - 1)(rng_);
      Operation& op = *in_flight_[i];
      status = op.actions[op.next++]();
      if (op.done()) in_flight_.erase(in_flight_.begin() + static_cast<long>(i));
    }
  }
  if (!status.ok()) return status;
  return pause ? Pause() : absl::OkStatus();
}

absl::Status Churner::Drain(bool pause) {
  want_snapshot_ = false;
  while (!in_flight_.empty()) {
    ++stats_.steps;
    size_t i = std::uniform_int_distribution<size_t>(0, in_flight_.size() - 1)(rng_);
    Operation& op = *in_flight_[i];
    if (absl::Status s = op.actions[op.next++](); !s.ok()) return s;
    if (op.done()) in_flight_.erase(in_flight_.begin() + static_cast<long>(i));
    if (pause) {
      if (absl::Status s = Pause(); !s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

absl::Status Churner::LeaveUncommittedFlush() {
  if (!in_flight_.empty()) return absl::FailedPreconditionError("operations in flight");
  Store& store = *stores_[std::uniform_int_distribution<size_t>(0, stores_.size() - 1)(rng_)];
  std::unique_ptr<Operation> op = NewFlush(store, /*may_abort=*/false);
  // ADD and every component, TOC.txt last; then stop before COMMIT.
  const size_t stop = 1 + WriteOrder().size();
  for (size_t a = 0; a < stop; ++a) {
    if (absl::Status s = op->actions[a](); !s.ok()) return s;
  }
  fates_[op->key] = Fate::kUncommitted;
  Note(absl::StrCat("left ", op->key, " under its pending log for good"));
  op->log->pending = true;
  logs_.push_back(*op->log);
  return absl::OkStatus();
}

}  // namespace snaphaven::soak
