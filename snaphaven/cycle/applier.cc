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

namespace {

using Result = absl::StatusOr<AppliedFile>;

bool IsDone(const Result& r) {
  return r.ok() && (r->kind == Applied::kCopied || r->kind == Applied::kLinked);
}

}  // namespace

// One Applier::Run: the pipeline of workers, the batch of staged small
// copies, and the outcomes reported in plan order, on the caller's thread.
class Applier::PlanRun {
 public:
  PlanRun(Applier& applier, const Plan& plan, const std::vector<SourceFile>& files,
          const ApplyHooks& hooks)
      : applier_(applier),
        plan_(plan),
        files_(files),
        hooks_(hooks),
        batch_files_(applier.options_.stage_small_files ? applier.options_.stage_batch_files : 0),
        was_staged_(plan.actions.size(), false),
        pipeline_(Threads(), plan.actions.size(),
                  // Workers may run a batch of staged copies ahead of this
                  // thread, which makes the batch before durable meanwhile.
                  4 * static_cast<size_t>(Threads()) + batch_files_,
                  [this](size_t a) {
                    return applier_.Apply(plan_.actions[a], files_[plan_.actions[a].file],
                                          applier_.options_.stage_small_files);
                  },
                  [this](size_t a) {
                    const Action& action = plan_.actions[a];
                    return action.kind == ActionKind::kLink ? action.after : -1;
                  },
                  IsDone, [](const Result& r) { return r.ok() && r->kind == Applied::kStaged; },
                  [](const Result& r) { return !r.ok() && IsOutOfSpace(r.status()); }) {
    report_.succeeded.assign(plan.actions.size(), false);
  }

  ApplyReport Run() {
    for (size_t a = 0; a < plan_.actions.size(); ++a) {
      hooks_.progress(a);
      if (!stopping_ && hooks_.stop_requested()) {
        report_.interrupted = true;
        Stop();
      }
      if (a >= pipeline_.Started() && stopping_) break;
      if (!Take(a)) break;
      if (!stopping_ && !hooks_.checkpoint()) Stop();
    }
    // Whatever was staged is whole: make it durable and record it, even
    // when stopping.
    FinishStaged();
    return std::move(report_);
  }

 private:
  int Threads() const { return std::max(1, applier_.options_.copy_threads); }

  void Stop() {
    stopping_ = true;
    pipeline_.Cancel();
  }

  // Takes action a's outcome from the pipeline; false when it was never
  // started (stopped).
  bool Take(size_t a) {
    // A link to a copy of the batch being staged waits for that batch to
    // be durable: finish it before waiting for the link.
    const Action& action = plan_.actions[a];
    const int link_to = action.kind == ActionKind::kLink ? action.after : -1;
    if (link_to >= 0 && InBatch(link_to)) FinishStaged();
    const absl::optional<Result>* taken = pipeline_.Take(a);
    if (taken == nullptr) return false;
    if (!taken->has_value()) {
      NotRun(a);
    } else if ((*taken)->ok() && (**taken)->kind == Applied::kStaged) {
      Stage(a, ***taken);
    } else {
      Record(a, **taken);
    }
    return true;
  }

  bool InBatch(int action) const {
    return was_staged_[action] && !batch_.actions.empty() &&
           static_cast<size_t>(action) >= batch_.actions.front();
  }

  // A link not run: the copy it links to had not succeeded when it was
  // due, or was still staged when the run stopped. In the second case,
  // finish the batch and link now.
  void NotRun(size_t a) {
    const Action& action = plan_.actions[a];
    const bool after_staged = action.after >= 0 && was_staged_[action.after];
    if (after_staged) FinishStaged();
    if (after_staged && report_.succeeded[action.after] && !stopping_) {
      Record(a, applier_.Apply(action, files_[action.file], /*may_stage=*/false));
      return;
    }
    AppliedFile not_run;
    not_run.kind = Applied::kNotRun;
    Record(a, not_run);
  }

  // Small copies come back written but not yet durable (staged): a batch
  // of them is made durable at once, then recorded like any other copy.
  void Stage(size_t a, const AppliedFile& applied) {
    was_staged_[a] = true;
    batch_.actions.push_back(a);
    batch_.results.push_back(applied);
    batch_.copies.push_back(applied.copy.staged);
    batch_.bytes += files_[plan_.actions[a].file].stat.size;
    if (batch_.copies.size() >= batch_files_ || batch_.bytes >= kStageBatchBytes) {
      FinishStaged();
    }
  }

  void FinishStaged() {
    if (batch_.copies.empty()) return;
    std::vector<absl::Status> finished;
    if (staged_out_of_space_ || hooks_.discard_staged()) {
      applier_.copier_.DiscardStaged(batch_.copies);  // left for the next cycle
      finished.assign(batch_.copies.size(), absl::CancelledError("discarded"));
    } else {
      finished = applier_.copier_.FinishStaged(batch_.copies);
    }
    for (size_t k = 0; k < batch_.copies.size(); ++k) {
      const size_t a = batch_.actions[k];
      if (absl::IsCancelled(finished[k])) {  // left for the next cycle
        pipeline_.Settle(a, finished[k]);
        continue;
      }
      if (!finished[k].ok()) {
        Record(a, finished[k]);
        pipeline_.Settle(a, finished[k]);
        continue;
      }
      AppliedFile& done = batch_.results[k];
      done.kind = Applied::kCopied;
      done.copy.outcome = CopyOutcome::kDone;
      done.copy.staged.reset();
      Record(a, done);
      pipeline_.Settle(a, done);  // the links to it may run now, on the workers
    }
    batch_ = StagedBatch();
  }

  void Record(size_t a, const Result& outcome) {
    // A sync, close or rename that found the destination full: staged
    // copies are then dropped rather than tried. (A write that found no
    // room does not stop the files already written from being placed.)
    if (!outcome.ok() && IsOutOfSpace(outcome.status())) {
      const std::string op = OperationOf(outcome.status());
      if (op != "write" && op != "copy_file_range") staged_out_of_space_ = true;
    }
    report_.succeeded[a] = IsDone(outcome);
    if (!hooks_.record(a, outcome) && !stopping_) Stop();
  }

  struct StagedBatch {
    std::vector<size_t> actions;  // ascending
    std::vector<AppliedFile> results;
    std::vector<std::shared_ptr<StagedCopy>> copies;
    int64_t bytes = 0;
  };

  Applier& applier_;
  const Plan& plan_;
  const std::vector<SourceFile>& files_;
  const ApplyHooks& hooks_;
  const size_t batch_files_;
  ApplyReport report_;
  StagedBatch batch_;
  std::vector<bool> was_staged_;
  bool stopping_ = false;  // after a stop, only what was already started is taken
  bool staged_out_of_space_ = false;
  Pipeline<Result> pipeline_;  // last: its workers start at once and use the above
};

ApplyReport Applier::Run(const Plan& plan, const std::vector<SourceFile>& files,
                         const ApplyHooks& hooks) {
  if (plan.actions.empty()) return ApplyReport();
  return PlanRun(*this, plan, files, hooks).Run();
}

}  // namespace snaphaven
