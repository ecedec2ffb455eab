/*
 * tests/stress/stress.h - helpers for the stress executables: plain programs
 * (Criterion's runner cannot run under TSan) that exit 0 on success, 1 on a
 * failed check, and are run by meson under TSan, ASan+UBSan and valgrind.
 */
#ifndef TWT_STRESS_H
#define TWT_STRESS_H

#include <stdio.h>
#include <stdlib.h>
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
 * twt_count_threads once the count settles: a joined thread can still be
 * listed for a moment (the kernel releases it after pthread_join has
 * returned), so count until two reads 1 ms apart agree (at most a second).
 */
static inline int stress_count_threads_settled(void) {
  int n = twt_count_threads(), i;
  for (i = 0; i < 1000; i++) {
    int m;
    uv_sleep(1);
    m = twt_count_threads();
    if (m == n) break;
    n = m;
  }
  return n;
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
