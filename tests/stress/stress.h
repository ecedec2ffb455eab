/*
 * tests/stress/stress.h - helpers for the stress executables: plain programs
 * (Criterion's runner cannot run under TSan) that exit 0 on success, 1 on a
 * failed check, and are run by meson under TSan, ASan+UBSan and valgrind.
 */
#ifndef TWT_STRESS_H
#define TWT_STRESS_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <uv.h>

#include "twalloc.h"
#include "twthreads.h"
#include "twuv.h"

#define CHECK(cond)                                                    \
  do {                                                                 \
    if (!(cond)) {                                                     \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
              #cond);                                                  \
      exit(1);                                                         \
    }                                                                  \
  } while (0)

#define CHECK_EQ(a, b)                                                       \
  do {                                                                       \
    long long a_ = (long long)(a), b_ = (long long)(b);                      \
    if (a_ != b_) {                                                          \
      fprintf(stderr, "%s:%d: check failed: %s == %s (%lld != %lld)\n",      \
              __FILE__, __LINE__, #a, #b, a_, b_);                           \
      exit(1);                                                               \
    }                                                                        \
  } while (0)

/* n scaled by $TWUV_STRESS_SCALE (valgrind runs use 0.01), at least 1. */
static inline long stress_scaled(long n) {
  const char *s = getenv("TWUV_STRESS_SCALE");
  double f = s ? atof(s) : 1.0;
  long v = (long)((double)n * (f > 0 ? f : 1.0));
  return v > 0 ? v : 1;
}

/*
 * Thread counts. A joined thread can still be listed for a moment (the
 * kernel releases it after pthread_join has returned), so the checks wait,
 * polling each millisecond, for the count they expect, and fail only at a
 * deadline far longer than that moment even under valgrind.
 */
#ifndef STRESS_THREADS_DEADLINE_S
#define STRESS_THREADS_DEADLINE_S 30
#endif

/* uv_hrtime() at which a wait that starts now gives up. */
static inline uint64_t stress_threads_deadline(void) {
  return uv_hrtime() + (uint64_t)STRESS_THREADS_DEADLINE_S * 1000000000u;
}

/* Wait until twt_count_threads() == expected; exit(1) saying so at the
 * deadline. */
#define STRESS_WAIT_THREAD_COUNT(expected) \
  stress_wait_thread_count_((expected), __FILE__, __LINE__)
static inline void stress_wait_thread_count_(int expected, const char *file,
                                             int line) {
  uint64_t deadline = stress_threads_deadline();
  int n;
  while ((n = twt_count_threads()) != expected) {
    if (uv_hrtime() > deadline) {
      fprintf(stderr, "%s:%d: %d threads after %d s, expected %d\n", file,
              line, n, STRESS_THREADS_DEADLINE_S, expected);
      exit(1);
    }
    uv_sleep(1);
  }
}

static inline void stress_note_tid_(void *arg) {
  *(long *)arg = (long)syscall(SYS_gettid);
}

/*
 * The thread count to compare with at the end of a run. A first thread is
 * started and joined here so that TSan starts its own background thread now
 * and it is counted on both sides; the count is read once that first thread
 * has left /proc/self/task (exit(1) at the deadline).
 */
static inline int stress_threads_baseline(void) {
  uv_thread_t t;
  long tid = 0;
  char path[64];
  uint64_t deadline;
  CHECK_EQ(uv_thread_create(&t, stress_note_tid_, &tid), 0);
  CHECK_EQ(uv_thread_join(&t), 0);
  CHECK(tid > 0);
  snprintf(path, sizeof(path), "/proc/self/task/%ld", tid);
  deadline = stress_threads_deadline();
  while (access(path, F_OK) == 0) {
    if (uv_hrtime() > deadline) {
      fprintf(stderr, "joined thread %ld still listed after %d s\n", tid,
              STRESS_THREADS_DEADLINE_S);
      exit(1);
    }
    uv_sleep(1);
  }
  return twt_count_threads();
}

/* The end-of-run leak check through the counting allocator. */
static inline void stress_check_no_leaks(void) {
  long live;
  tw_thread_cleanup(); /* this thread's node cache is not a leak */
  live = twt_alloc_live();
  if (live != 0) {
    fprintf(stderr, "leak: %ld twuv allocation(s) still live\n", live);
    exit(1);
  }
}

#endif
