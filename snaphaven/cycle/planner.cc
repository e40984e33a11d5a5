#include "snaphaven/cycle/planner.h"

#include <map>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "snaphaven/cassandra/cassandra_path.h"
#include "snaphaven/storage/file_system.h"
#include "absl/strings/str_cat.h"

namespace snaphaven {

Plan PlanCycle(const std::vector<SourceFile>& files, const Manifest& manifest,
               const PlanOptions& options) {
  std::vector<size_t> all(files.size());
  for (size_t i = 0; i < files.size(); ++i) all[i] = i;
  return PlanCycle(files, all, manifest, options);
}

std::vector<CopyState> StatesOfCopies(const std::vector<SourceFile>& files,
                                      const Manifest& manifest, int64_t mtime_granularity_ns) {
  std::vector<CopyState> states;
  states.reserve(files.size());
  for (const SourceFile& file : files) {
    states.push_back(
        StateOfCopy(manifest.Find(file.relative_path), file.stat, mtime_granularity_ns));
  }
  return states;
}

namespace {

// Where each source identity is (or will be) at the destination this
// cycle: the path and the action index producing it (-1: already there).
struct Holder {
  const std::string* path;
  int action;
};
using Holders = absl::flat_hash_map<SourceIdentity, Holder>;

// Pass 1: what is current (counted, its manifest entry refreshed where only
// the source identity changed) into `current`, the rest into `pending`.
void SortOutCurrent(const std::vector<SourceFile>& files, const std::vector<size_t>& selected,
                    const Manifest& manifest, const PlanOptions& options, Plan& plan,
                    std::vector<size_t>& current, std::vector<size_t>& pending) {
  for (size_t i : selected) {
    const SourceFile& file = files[i];
    const CopyState state =
        options.states != nullptr
            ? (*options.states)[i]
            : StateOfCopy(manifest.Find(file.relative_path), file.stat,
                          options.mtime_granularity_ns);
    if (!IsCurrent(state)) {
      pending.push_back(i);
      continue;
    }
    ++plan.unchanged;
    current.push_back(i);
    if (state == CopyState::kCurrent) {
      plan.manifest_updates.emplace_back(file.relative_path, EntryFor(file));
    }
    if (options.record_decisions) {
      plan.decisions.push_back(absl::StrCat("unchanged ", file.relative_path));
    }
  }
}

// Pass 2: one copy per source identity, links for the rest (to a current
// copy, one recorded earlier in the table, or a copy planned this cycle).
void PlanCopiesAndLinks(const std::vector<SourceFile>& files, const std::vector<size_t>& pending,
                        const Manifest& manifest, const PlanOptions& options, Holders& holders,
                        Plan& plan) {
  // Paths this cycle writes over: an earlier copy recorded there is about
  // to be replaced (Cassandra rewrote Statistics.db under the same name),
  // so it must not be linked to.
  absl::flat_hash_set<absl::string_view> rewritten;
  for (size_t i : pending) rewritten.insert(files[i].relative_path);
  for (size_t i : pending) {
    const SourceFile& file = files[i];
    SourceIdentity id = IdentityOf(file.stat);
    auto it = holders.find(id);
    if (it == holders.end()) {
      // Other names of a Cassandra file are in its table directory.
      const std::string* earlier =
          manifest.FindBySource(id, Manifest::LinkScope(file.relative_path));
      if (earlier != nullptr && !rewritten.contains(*earlier)) {
        it = holders.emplace(id, Holder{earlier, -1}).first;
      }
    }
    const char* why = manifest.Find(file.relative_path) == nullptr ? "new" : "changed";
    if (it != holders.end()) {
      plan.actions.push_back(Action{ActionKind::kLink, i, *it->second.path,
                                    it->second.action});
      if (options.record_decisions) {
        plan.decisions.push_back(absl::StrCat("link ", file.relative_path, " (", why,
                                              ", same inode as ", *it->second.path, ")"));
      }
      continue;
    }
    int index = static_cast<int>(plan.actions.size());
    plan.actions.push_back(Action{ActionKind::kCopy, i, "", -1});
    plan.bytes_to_copy += file.stat.size;
    holders.emplace(id, Holder{&file.relative_path, index});
    if (options.record_decisions) {
      plan.decisions.push_back(absl::StrCat("copy ", file.relative_path, " (", why, ")"));
    }
  }
}

}  // namespace

Plan PlanCycle(const std::vector<SourceFile>& files, const std::vector<size_t>& selected,
               const Manifest& manifest, const PlanOptions& options) {
  Plan plan;
  std::vector<size_t> current, pending;
  SortOutCurrent(files, selected, manifest, options, plan, current, pending);
  if (pending.empty()) return plan;  // nothing to link: no holders needed
  Holders holders;
  for (size_t i : current) {
    holders.emplace(IdentityOf(files[i].stat), Holder{&files[i].relative_path, -1});
  }
  PlanCopiesAndLinks(files, pending, manifest, options, holders, plan);
  return plan;
}

absl::Status LoadLiveMirror(const Manifest& manifest, const std::vector<std::string>& scopes) {
  // Only the live mirror's sections are needed, so a lazily loaded manifest
  // leaves the snapshots' alone.
  auto is_live_dir = [](absl::string_view dir) {
    return ClassifyPath(absl::StrCat(dir, "/x")).kind == PathKind::kLive;
  };
  for (const std::string& scope : scopes) {
    absl::Status loaded = manifest.LoadSectionsBelow(scope, is_live_dir);
    if (!loaded.ok()) return loaded;
  }
  return absl::OkStatus();
}

PrunePlan PlanPrune(const Manifest& manifest, const std::vector<std::string>& scopes,
                    const absl::flat_hash_set<std::string>& live_sstables, absl::Time now,
                    absl::Duration prune_after) {
  PrunePlan plan;
  const int64_t now_ns = absl::ToUnixNanos(now);
  // Components of one gone sstable, pruned together when the earliest
  // "missing since" of them is old enough.
  struct Gone {
    std::vector<std::string> paths;
    int64_t since = 0;
  };
  std::map<std::string, Gone> gone;
  const Manifest::Map& loaded = manifest.loaded_entries();
  for (const std::string& scope : scopes) {
    const std::string prefix = absl::StrCat(scope, "/");
    for (auto it = loaded.lower_bound(prefix);
         it != loaded.end() && absl::StartsWith(it->first, prefix); ++it) {
      const std::string& path = it->first;
      if (ClassifyPath(path).kind != PathKind::kLive) continue;
      std::string key = SSTableKey(path);
      if (key.empty()) continue;
      ManifestEntry entry = it->second;
      if (live_sstables.contains(key)) {
        if (entry.missing_since_ns != 0) {
          entry.missing_since_ns = 0;
          plan.updates.emplace_back(path, entry);
        }
        continue;
      }
      if (entry.missing_since_ns == 0) {
        entry.missing_since_ns = now_ns;
        plan.updates.emplace_back(path, entry);
      }
      Gone& g = gone[key];
      g.paths.push_back(path);
      g.since = g.since == 0 ? entry.missing_since_ns : std::min(g.since, entry.missing_since_ns);
    }
  }
  for (const auto& [key, g] : gone) {
    if (absl::FromUnixNanos(g.since) + prune_after <= now) {
      plan.remove.insert(plan.remove.end(), g.paths.begin(), g.paths.end());
    }
  }
  return plan;
}

}  // namespace snaphaven
