// ThreadSanitizer cannot see abseil's Mutex synchronize: Debian's abseil is
// not built with -fsanitize=thread, so its lock word and futex waits are
// invisible and every access guarded by an absl::Mutex reads as a race (a
// two-thread counter under absl::MutexLock is reported). This library,
// linked into every binary of --config=tsan (.bazelrc: --custom_malloc),
// interposes the Mutex and CondVar entry points the program calls: each
// calls abseil's own (found with dlsym(RTLD_NEXT)), then tells TSan what it
// did: a lock acquires the mutex's happens-before state, an unlock releases
// it, a wait (Await, CondVar::Wait) does both, since the mutex is let go
// during it, and a Condition is evaluated as a critical section of its own
// (abseil evaluates it in whichever thread holds the mutex). Only the
// mutex's own ordering is added: a race on data beside it is still reported
// (//tools/sanitizers:sanitizer_test checks both).
//
// Under any other configuration this file compiles to nothing.

#if defined(__has_feature)
#if __has_feature(thread_sanitizer) && !defined(__SANITIZE_THREAD__)
#define __SANITIZE_THREAD__ 1  // clang's spelling; gcc defines it itself
#endif
#endif
#ifdef __SANITIZE_THREAD__

#include <dlfcn.h>
#include <sanitizer/tsan_interface.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

#define SNAPHAVEN_STR2(x) #x
#define SNAPHAVEN_STR(x) SNAPHAVEN_STR2(x)

namespace {

// The address of abseil's own definition of a member of `cls` ("5Mutex",
// "7CondVar" as mangled) whose mangled tail is `tail` ("4LockEv").
void* Real(const char* cls, const char* tail) {
  const char* ns = SNAPHAVEN_STR(ABSL_OPTION_INLINE_NAMESPACE_NAME);
  std::string name = "_ZN4absl";
  name += std::to_string(std::strlen(ns));
  name += ns;
  name += cls;
  name += tail;
  void* real = dlsym(RTLD_NEXT, name.c_str());
  if (real == nullptr) {
    std::fprintf(stderr, "tsan_absl_mutex: abseil's %s not found\n", name.c_str());
    std::abort();
  }
  return real;
}

// A Condition as a waiter hands it to abseil, evaluated by whichever thread
// abseil picks (often the one unlocking, inside its Unlock or Await, where no
// wrapper below sees it hold the mutex): the evaluator holds the mutex, so
// the evaluation is a critical section of its own.
struct GuardedCondition {
  const absl::Condition* condition;
  absl::Mutex* mu;
};

bool EvalGuarded(void* arg) {
  const auto* guarded = static_cast<const GuardedCondition*>(arg);
  __tsan_acquire(guarded->mu);
  const bool met = guarded->condition->Eval();
  __tsan_release(guarded->mu);
  return met;
}

// Calls abseil's `real` (a LockWhen or Await) with `cond` guarded; the mutex
// is held when it returns, and was let go in it first when `let_go` (Await).
template <typename Real, typename... Args>
auto WithGuardedCondition(Real real, absl::Mutex* mu, bool let_go, const absl::Condition& cond,
                          Args... args) {
  GuardedCondition guarded{&cond, mu};
  if (let_go) __tsan_release(mu);
  if constexpr (std::is_void_v<decltype(real(mu, cond, args...))>) {
    real(mu, absl::Condition(&EvalGuarded, &guarded), args...);
    __tsan_acquire(mu);
  } else {
    const auto met = real(mu, absl::Condition(&EvalGuarded, &guarded), args...);
    __tsan_acquire(mu);  // held on return either way
    return met;
  }
}

}  // namespace

// Each member calls the real one through a function pointer of the same
// signature, `this` first (the Itanium C++ ABI).
#define REAL(cls, tail, type) reinterpret_cast<type>(Real(cls, tail))

namespace absl {
ABSL_NAMESPACE_BEGIN

void Mutex::Lock() {
  static auto real = REAL("5Mutex", "4LockEv", void (*)(Mutex*));
  real(this);
  __tsan_acquire(this);
}

void Mutex::Unlock() {
  static auto real = REAL("5Mutex", "6UnlockEv", void (*)(Mutex*));
  __tsan_release(this);
  real(this);
}

bool Mutex::TryLock() {
  static auto real = REAL("5Mutex", "7TryLockEv", bool (*)(Mutex*));
  const bool locked = real(this);
  if (locked) __tsan_acquire(this);
  return locked;
}

void Mutex::ReaderLock() {
  static auto real = REAL("5Mutex", "10ReaderLockEv", void (*)(Mutex*));
  real(this);
  __tsan_acquire(this);
}

void Mutex::ReaderUnlock() {
  static auto real = REAL("5Mutex", "12ReaderUnlockEv", void (*)(Mutex*));
  __tsan_release(this);
  real(this);
}

bool Mutex::ReaderTryLock() {
  static auto real = REAL("5Mutex", "13ReaderTryLockEv", bool (*)(Mutex*));
  const bool locked = real(this);
  if (locked) __tsan_acquire(this);
  return locked;
}

void Mutex::LockWhen(const Condition& cond) {
  static auto real =
      REAL("5Mutex", "8LockWhenERKNS0_9ConditionE", void (*)(Mutex*, const Condition&));
  WithGuardedCondition(real, this, /*let_go=*/false, cond);
}

void Mutex::ReaderLockWhen(const Condition& cond) {
  static auto real =
      REAL("5Mutex", "14ReaderLockWhenERKNS0_9ConditionE", void (*)(Mutex*, const Condition&));
  WithGuardedCondition(real, this, /*let_go=*/false, cond);
}

bool Mutex::LockWhenWithTimeout(const Condition& cond, absl::Duration timeout) {
  static auto real = REAL("5Mutex", "19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE",
                          bool (*)(Mutex*, const Condition&, absl::Duration));
  return WithGuardedCondition(real, this, /*let_go=*/false, cond, timeout);
}

bool Mutex::LockWhenWithDeadline(const Condition& cond, absl::Time deadline) {
  static auto real = REAL("5Mutex", "20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE",
                          bool (*)(Mutex*, const Condition&, absl::Time));
  return WithGuardedCondition(real, this, /*let_go=*/false, cond, deadline);
}

void Mutex::Await(const Condition& cond) {
  static auto real =
      REAL("5Mutex", "5AwaitERKNS0_9ConditionE", void (*)(Mutex*, const Condition&));
  WithGuardedCondition(real, this, /*let_go=*/true, cond);
}

bool Mutex::AwaitWithTimeout(const Condition& cond, absl::Duration timeout) {
  static auto real = REAL("5Mutex", "16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE",
                          bool (*)(Mutex*, const Condition&, absl::Duration));
  return WithGuardedCondition(real, this, /*let_go=*/true, cond, timeout);
}

bool Mutex::AwaitWithDeadline(const Condition& cond, absl::Time deadline) {
  static auto real = REAL("5Mutex", "17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE",
                          bool (*)(Mutex*, const Condition&, absl::Time));
  return WithGuardedCondition(real, this, /*let_go=*/true, cond, deadline);
}

void CondVar::Wait(Mutex* mu) {
  static auto real = REAL("7CondVar", "4WaitEPNS0_5MutexE", void (*)(CondVar*, Mutex*));
  __tsan_release(mu);
  real(this, mu);
  __tsan_acquire(mu);
}

bool CondVar::WaitWithTimeout(Mutex* mu, absl::Duration timeout) {
  static auto real = REAL("7CondVar", "15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE",
                          bool (*)(CondVar*, Mutex*, absl::Duration));
  __tsan_release(mu);
  const bool timed_out = real(this, mu, timeout);
  __tsan_acquire(mu);
  return timed_out;
}

bool CondVar::WaitWithDeadline(Mutex* mu, absl::Time deadline) {
  static auto real = REAL("7CondVar", "16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE",
                          bool (*)(CondVar*, Mutex*, absl::Time));
  __tsan_release(mu);
  const bool timed_out = real(this, mu, deadline);
  __tsan_acquire(mu);
  return timed_out;
}

ABSL_NAMESPACE_END
}  // namespace absl

#endif  // thread sanitizer
