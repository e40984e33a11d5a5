#include "snaphaven/cycle/applier.h"

#include <glog/logging.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <thread>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "snaphaven/storage/process_priority.h"

namespace snaphaven {
namespace {

// Runs work(i) for i = 0, 1, ... on `threads` workers, at most `window`
// ahead of the consumer, which takes the results strictly in order. Work i
// may depend on an earlier item (`dependency(i)`, -1 for none): it starts
// once that one is done, and `ok(dependency result)` tells whether it may
// run at all (else its result is nullopt). A done result for which
// `pending` holds (a copy written but not yet durable) is waited for until
// the consumer settles it (Settle) with its final result. Cancel() stops
// handing out work; items already started finish. A result for which
// `halt` holds (the destination is full) cancels at once, from the worker.
template <typename Result>
class Pipeline {
 public:
  Pipeline(int threads, size_t count, size_t window, std::function<Result(size_t)> work,
           std::function<int(size_t)> dependency, std::function<bool(const Result&)> ok,
           std::function<bool(const Result&)> pending, std::function<bool(const Result&)> halt)
      : count_(count),
        window_(window),
        work_(std::move(work)),
        dependency_(std::move(dependency)),
        ok_(std::move(ok)),
        pending_(std::move(pending)),
        halt_(std::move(halt)),
        results_(count),
        done_(count, false) {
    for (int t = 0; t < threads; ++t) workers_.emplace_back([this] { Work(); });
  }
  ~Pipeline() {
    Cancel();
    for (std::thread& worker : workers_) worker.join();
  }

  // Waits for item i (REQUIRES: i-1 was taken before); nullptr when it was
  // never started because of Cancel().
  const absl::optional<Result>* Take(size_t i) {
    absl::MutexLock lock(&mu_);
    consumed_ = i;
    auto ready = [this, i] { return done_[i] || (cancelled_ && next_ <= i); };
    mu_.Await(absl::Condition(&ready));
    return done_[i] ? &results_[i] : nullptr;
  }
  void Cancel() {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
  }
  // Item i (taken before, pending) has its final result now.
  void Settle(size_t i, Result result) {
    absl::MutexLock lock(&mu_);
    results_[i] = std::move(result);
  }
  // How many items were started (all of them finish).
  size_t Started() {
    absl::MutexLock lock(&mu_);
    return next_;
  }

 private:
  void Work() {
    while (true) {
      size_t i;
      {
        absl::MutexLock lock(&mu_);
        auto can_take = [this] {
          return cancelled_ || next_ >= count_ || next_ < consumed_ + window_;
        };
        mu_.Await(absl::Condition(&can_take));
        if (cancelled_ || next_ >= count_) return;
        i = next_++;
      }
      int dep = dependency_(i);
      bool run = true;
      if (dep >= 0) {
        absl::MutexLock lock(&mu_);
        auto dep_final = [this, dep] {
          if (!done_[dep]) return false;
          return cancelled_ || !results_[dep].has_value() || !pending_(*results_[dep]);
        };
        mu_.Await(absl::Condition(&dep_final));
        run = results_[dep].has_value() && ok_(*results_[dep]);
      }
      absl::optional<Result> result;
      if (run) result = work_(i);
      absl::MutexLock lock(&mu_);
      if (result.has_value() && halt_(*result)) cancelled_ = true;
      results_[i] = std::move(result);
      done_[i] = true;
    }
  }

  const size_t count_, window_;
  std::function<Result(size_t)> work_;
  std::function<int(size_t)> dependency_;
  std::function<bool(const Result&)> ok_;
  std::function<bool(const Result&)> pending_;
  std::function<bool(const Result&)> halt_;
  absl::Mutex mu_;
  std::vector<absl::optional<Result>> results_;
  std::vector<char> done_;
  size_t next_ = 0;
  size_t consumed_ = 0;
  bool cancelled_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace

size_t StageBatchFiles(int copy_threads) {
  const int64_t open_files = OpenFileLimit();
  // Two batches' worth open at once (the one being finished and the
  // pipeline's window), the copies in flight and a reserve.
  const int64_t fit = (open_files - 128 - 8 * int64_t{copy_threads}) / 2;
  return static_cast<size_t>(
      std::clamp<int64_t>(fit, 16, static_cast<int64_t>(kMaxStageBatchFiles)));
}

Applier::Applier(FileSystem& fs, Copier& copier, ApplierOptions options)
    : fs_(fs), copier_(copier), options_(std::move(options)) {}

absl::optional<ExpectedDigest> Applier::DigestFor(const std::string& root,
                                                  const std::string& relative_path) {
  std::vector<std::string> warnings;
  absl::optional<ExpectedDigest> digest = FindSSTableDigest(fs_, root, relative_path, &warnings);
  for (const std::string& warning : warnings) LOG(WARNING) << warning;
  return digest;
}

absl::StatusOr<AppliedFile> Applier::ApplyOnce(const Action& action, const SourceFile& file,
                                               bool may_stage) {
  const std::string& rel = file.relative_path;
  AppliedFile applied;
  if (action.kind == ActionKind::kLink) {
    absl::Status linked = copier_.Link(action.link_from, rel);
    if (linked.ok()) {
      applied.kind = Applied::kLinked;
      return applied;
    }
    // The destination refuses links, or the copy linked to is gone: copy.
    if (!IsLinkRefused(linked) && !IsVanished(linked)) return linked;
    VLOG(2) << "cannot link " << rel << " (" << linked.message() << "); copying";
  }
  absl::optional<ExpectedDigest> digest;
  if (options_.checksum) digest = DigestFor(options_.data_roots[file.root], rel);
  absl::StatusOr<CopyResult> copied =
      copier_.Copy(JoinPath(options_.data_roots[file.root], rel), file.stat, rel,
                   digest.has_value() ? &*digest : nullptr, may_stage);
  if (!copied.ok()) return copied.status();
  applied.copy = *std::move(copied);
  switch (applied.copy.outcome) {
    case CopyOutcome::kVanished:
      applied.kind = Applied::kVanished;
      break;
    case CopyOutcome::kChanged:
      applied.kind = Applied::kChanged;
      break;
    case CopyOutcome::kCorrupt:
      applied.kind = Applied::kCorrupt;
      LOG(ERROR) << "source " << rel << " does not match "
                 << digest->digest_file.substr(digest->digest_file.rfind('/') + 1) << ": it says "
                 << digest->Describe() << ", the bytes read give " << applied.copy.digest_text
                 << "; the copy is quarantined as " << applied.copy.quarantined;
      break;
    case CopyOutcome::kDone:
      applied.kind = Applied::kCopied;
      break;
    case CopyOutcome::kStaged:
      applied.kind = Applied::kStaged;
      break;
  }
  return applied;
}

absl::StatusOr<AppliedFile> Applier::Apply(const Action& action, const SourceFile& file,
                                           bool may_stage) {
  absl::Duration pause = options_.retry_backoff;
  for (int attempt = 1;; ++attempt) {
    absl::StatusOr<AppliedFile> applied = ApplyOnce(action, file, may_stage);
    if (applied.ok() || attempt >= options_.attempts || !IsTransient(applied.status())) {
      return applied;
    }
    LOG(WARNING) << "retrying " << file.relative_path << " in " << absl::FormatDuration(pause)
                 << " after a transient error: " << applied.status().message();
    absl::SleepFor(pause);
    pause *= 2;
  }
}

ApplyReport Applier::Run(const Plan& plan, const std::vector<SourceFile>& files,
                         const ApplyHooks& hooks) {
  ApplyReport report;
  const size_t n = plan.actions.size();
  report.succeeded.assign(n, false);
  if (n == 0) return report;
  using Result = absl::StatusOr<AppliedFile>;
  auto is_done = [](const Result& r) {
    return r.ok() && (r->kind == Applied::kCopied || r->kind == Applied::kLinked);
  };
  const size_t threads = static_cast<size_t>(std::max(1, options_.copy_threads));
  const size_t batch_files = options_.stage_small_files ? options_.stage_batch_files : 0;
  Pipeline<Result> pipeline(
      static_cast<int>(threads), n,
      // Workers may run a batch of staged copies ahead of this thread,
      // which makes the batch before durable meanwhile.
      4 * threads + batch_files,
      [&](size_t a) {
        return Apply(plan.actions[a], files[plan.actions[a].file], options_.stage_small_files);
      },
      [&](size_t a) {
        return plan.actions[a].kind == ActionKind::kLink ? plan.actions[a].after : -1;
      },
      is_done, [](const Result& r) { return r.ok() && r->kind == Applied::kStaged; },
      [](const Result& r) { return !r.ok() && IsOutOfSpace(r.status()); });
  bool stopping = false;  // after a stop, only what was already started is taken
  // Set once a sync, close or rename found the destination full: staged
  // copies are then dropped rather than tried. (A write that found no room
  // does not stop the files already written from being placed.)
  bool staged_out_of_space = false;
  auto record = [&](size_t a, const Result& outcome) {
    if (!outcome.ok() && IsOutOfSpace(outcome.status())) {
      const std::string op = OperationOf(outcome.status());
      if (op != "write" && op != "copy_file_range") staged_out_of_space = true;
    }
    report.succeeded[a] = is_done(outcome);
    if (!hooks.record(a, outcome) && !stopping) {
      stopping = true;
      pipeline.Cancel();
    }
  };

  // Small copies come back written but not yet durable (staged): a batch of
  // them is made durable at once, then recorded like any other copy.
  std::vector<size_t> staged_actions;
  std::vector<AppliedFile> staged_results;
  std::vector<std::shared_ptr<StagedCopy>> staged;
  std::vector<bool> was_staged(n, false);
  int64_t staged_bytes = 0;
  auto finish_staged = [&]() {
    if (staged.empty()) return;
    std::vector<absl::Status> finished;
    if (staged_out_of_space || hooks.discard_staged()) {
      copier_.DiscardStaged(staged);  // left for the next cycle
      finished.assign(staged.size(), absl::CancelledError("discarded"));
    } else {
      finished = copier_.FinishStaged(staged);
    }
    for (size_t k = 0; k < staged.size(); ++k) {
      if (absl::IsCancelled(finished[k])) {  // left for the next cycle
        pipeline.Settle(staged_actions[k], finished[k]);
        continue;
      }
      if (!finished[k].ok()) {
        record(staged_actions[k], finished[k]);
        pipeline.Settle(staged_actions[k], finished[k]);
        continue;
      }
      AppliedFile& done = staged_results[k];
      done.kind = Applied::kCopied;
      done.copy.outcome = CopyOutcome::kDone;
      done.copy.staged.reset();
      record(staged_actions[k], done);
      // The links to it may run now, on the workers.
      pipeline.Settle(staged_actions[k], done);
    }
    staged.clear();
    staged_actions.clear();
    staged_results.clear();
    staged_bytes = 0;
  };

  for (size_t a = 0; a < n; ++a) {
    hooks.progress(a);
    if (!stopping && hooks.stop_requested()) {
      report.interrupted = true;
      stopping = true;
      pipeline.Cancel();
    }
    if (a >= pipeline.Started() && stopping) break;
    // A link to a copy of the batch being staged waits for that batch to
    // be durable: finish it before waiting for the link.
    const int link_to = plan.actions[a].kind == ActionKind::kLink ? plan.actions[a].after : -1;
    if (link_to >= 0 && was_staged[link_to] && !staged_actions.empty() &&
        static_cast<size_t>(link_to) >= staged_actions.front()) {
      finish_staged();
    }
    const absl::optional<Result>* taken = pipeline.Take(a);
    if (taken == nullptr) break;
    const Action& action = plan.actions[a];
    if (!taken->has_value()) {
      // Not run: the copy it links to had not succeeded when it was due,
      // or was still staged. In the second case, finish the batch and link
      // now.
      const int after = action.after;
      const bool after_staged = after >= 0 && was_staged[after];
      if (after_staged) finish_staged();
      if (after_staged && report.succeeded[after] && !stopping) {
        record(a, Apply(action, files[action.file], /*may_stage=*/false));
      } else {
        AppliedFile not_run;
        not_run.kind = Applied::kNotRun;
        record(a, not_run);
      }
    } else if ((*taken)->ok() && (**taken)->kind == Applied::kStaged) {
      was_staged[a] = true;
      staged_actions.push_back(a);
      staged_results.push_back(***taken);
      staged.push_back((**taken)->copy.staged);
      staged_bytes += files[action.file].stat.size;
      if (staged.size() >= batch_files || staged_bytes >= kStageBatchBytes) finish_staged();
    } else {
      record(a, **taken);
    }
    if (!stopping && !hooks.checkpoint()) {
      stopping = true;
      pipeline.Cancel();
    }
  }
  // Whatever was staged is whole: make it durable and record it, even when
  // stopping.
  finish_staged();
  return report;
}

}  // namespace snaphaven
