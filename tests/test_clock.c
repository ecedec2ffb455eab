/*
 * tests/test_clock.c - the manual clock and delayed calls (clock.h).
 *
 * Ports twisted/test/test_task.py ClockTests and the DelayedCall ordering
 * tests of twisted/internet/test/test_base.py (DelayedCallMixin test_lt ...
 * test_ne), plus twuv's own contract: arg_free on every path, bad input,
 * out of memory, FIFO ties.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "twtest.h"

TWT_SUITE(clock);

/* ---- helpers ----------------------------------------------------------- */

typedef struct {
  tw_clock *clock;
  char names[32];
  double times[32];
  int n;
} log_t;

typedef struct {
  log_t *log;
  char name;
} entry_t;

static void log_call(void *arg) {
  entry_t *e = arg;
  e->log->names[e->log->n] = e->name;
  e->log->times[e->log->n] = tw_clock_seconds(e->log->clock);
  e->log->n++;
}

static int calls;
static void count_call(void *arg) {
  (void)arg;
  calls++;
}

#define freed twt_freed /* twtest.h */
#define count_free twt_count_free

/* ---- ClockTests --------------------------------------------------------- */

TWT_TEST(clock, test_seconds) {
  tw_clock *c = tw_clock_new_manual();
  cr_assert_eq(tw_clock_seconds(c), 0.0);
  tw_clock_free(c);
}

TWT_TEST(clock, test_call_later) {
  tw_clock *c = tw_clock_new_manual();
  tw_delayed_call *dc;
  cr_assert_eq(tw_clock_call_later(c, 1, count_call, NULL, NULL, &dc), 0);
  cr_assert(tw_delayed_call_active(dc));
  cr_assert_eq(tw_delayed_call_get_time(dc), 1.0);
  tw_delayed_call_unref(dc);
  tw_clock_free(c);
}

TWT_TEST(clock, test_call_later_cancelled) {
  tw_clock *c = tw_clock_new_manual();
  tw_delayed_call *dc;
  cr_assert_eq(tw_clock_call_later(c, 1, count_call, NULL, NULL, &dc), 0);
  cr_assert_eq(tw_delayed_call_cancel(dc), 0);
  cr_assert_not(tw_delayed_call_active(dc));
  cr_assert(tw_delayed_call_cancelled(dc));
  cr_assert_eq(tw_clock_pending(c), 0);
  tw_delayed_call_unref(dc);
  tw_clock_free(c);
}

TWT_TEST(clock, test_call_later_ordering) {
  tw_clock *c = tw_clock_new_manual();
  tw_delayed_call *a, *b;
  tw_clock_call_later(c, 10, count_call, NULL, NULL, &a);
  tw_clock_call_later(c, 1, count_call, NULL, NULL, &b);
  cr_assert_neq(a, b);
  tw_delayed_call_unref(a);
  tw_delayed_call_unref(b);
  tw_clock_free(c);
}

TWT_TEST(clock, test_advance) {
  tw_clock *c = tw_clock_new_manual();
  tw_delayed_call *dc;
  calls = 0;
  tw_clock_call_later(c, 2, count_call, NULL, NULL, &dc);
  cr_assert_eq(tw_clock_advance(c, 1), 0);
  cr_assert_eq(calls, 0);
  cr_assert_eq(tw_clock_advance(c, 1), 1);
  cr_assert_eq(calls, 1);
  cr_assert_not(tw_delayed_call_active(dc));
  cr_assert(tw_delayed_call_called(dc));
  tw_delayed_call_unref(dc);
  tw_clock_free(c);
}

static tw_delayed_call *self_dc;
static int self_cancel_result;
static void cancel_self(void *arg) {
  (void)arg;
  cr_assert_not(tw_delayed_call_active(self_dc));
  self_cancel_result = tw_delayed_call_cancel(self_dc);
}

TWT_TEST(clock, test_advance_cancel) {
  /* "called" is set before the function runs: cancelling itself fails. */
  tw_clock *c = tw_clock_new_manual();
  tw_clock_call_later(c, 1, cancel_self, NULL, NULL, &self_dc);
  tw_clock_advance(c, 1);
  cr_assert_eq(self_cancel_result, TW_EALREADYCALLED);
  tw_delayed_call_unref(self_dc);
  tw_clock_free(c);
}

TWT_TEST(clock, test_call_later_delayed) {
  tw_clock *c = tw_clock_new_manual();
  tw_delayed_call *dc;
  calls = 0;
  tw_clock_call_later(c, 1, count_call, NULL, NULL, &dc);
  cr_assert_eq(tw_delayed_call_delay(dc, 1), 0);
  cr_assert_eq(tw_delayed_call_get_time(dc), 2.0);
  tw_clock_advance(c, 1.5);
  cr_assert_eq(calls, 0);
  tw_clock_advance(c, 1.0);
  cr_assert_eq(calls, 1);
  tw_delayed_call_unref(dc);
  tw_clock_free(c);
}

TWT_TEST(clock, test_call_later_reset_later) {
  tw_clock *c = tw_clock_new_manual();
  tw_delayed_call *dc;
  calls = 0;
  tw_clock_call_later(c, 2, count_call, NULL, NULL, &dc);
  tw_clock_advance(c, 1);
  cr_assert_eq(tw_delayed_call_reset(dc, 3), 0);
  cr_assert_eq(tw_delayed_call_get_time(dc), 4.0);
  tw_clock_advance(c, 2);
  cr_assert_eq(calls, 0);
  tw_clock_advance(c, 1);
  cr_assert_eq(calls, 1);
  tw_delayed_call_unref(dc);
  tw_clock_free(c);
}

TWT_TEST(clock, test_call_later_reset_sooner) {
  tw_clock *c = tw_clock_new_manual();
  tw_delayed_call *dc;
  calls = 0;
  tw_clock_call_later(c, 4, count_call, NULL, NULL, &dc);
  cr_assert_eq(tw_delayed_call_reset(dc, 3), 0);
  tw_clock_advance(c, 3);
  cr_assert_eq(calls, 1);
  tw_delayed_call_unref(dc);
  tw_clock_free(c);
}

TWT_TEST(clock, test_get_delayed_calls) {
  tw_clock *c = tw_clock_new_manual();
  tw_delayed_call *a, *b, *out[4];
  tw_clock_call_later(c, 2, count_call, NULL, NULL, &a);
  tw_clock_call_later(c, 1, count_call, NULL, NULL, &b);
  cr_assert_eq(tw_clock_get_delayed_calls(c, out, 4), 2);
  cr_assert_eq(out[0], b); /* run order */
  cr_assert_eq(out[1], a);
  cr_assert_eq(tw_clock_get_delayed_calls(c, out, 1), 2);
  cr_assert_eq(out[0], b);
  cr_assert_eq(tw_clock_get_delayed_calls(c, NULL, 0), 2);
  tw_delayed_call_unref(a);
  tw_delayed_call_unref(b);
  tw_clock_free(c);
}

TWT_TEST(clock, test_get_delayed_calls_empty) {
  tw_clock *c = tw_clock_new_manual();
  tw_delayed_call *out[1];
  cr_assert_eq(tw_clock_get_delayed_calls(c, out, 1), 0);
  cr_assert_eq(tw_clock_pending(c), 0);
  tw_clock_free(c);
}

TWT_TEST(clock, test_call_later_keeps_calls_ordered) {
  log_t log = {0};
  entry_t ea = {&log, 'a'}, eb = {&log, 'b'};
  tw_delayed_call *a;
  log.clock = tw_clock_new_manual();
  tw_clock_call_later(log.clock, 1, log_call, &ea, NULL, &a);
  tw_delayed_call_reset(a, 3);
  tw_clock_call_later(log.clock, 2, log_call, &eb, NULL, NULL);
  tw_clock_advance(log.clock, 3);
  cr_assert_eq(log.n, 2);
  cr_assert_eq(log.names[0], 'b');
  cr_assert_eq(log.names[1], 'a');
  tw_delayed_call_unref(a);
  tw_clock_free(log.clock);
}

TWT_TEST(clock, test_call_later_reset_keeps_calls_ordered) {
  log_t log = {0};
  entry_t ea = {&log, 'a'}, eb = {&log, 'b'};
  tw_delayed_call *a;
  log.clock = tw_clock_new_manual();
  tw_clock_call_later(log.clock, 1, log_call, &ea, NULL, &a);
  tw_clock_call_later(log.clock, 2, log_call, &eb, NULL, NULL);
  tw_delayed_call_reset(a, 3);
  tw_clock_advance(log.clock, 3);
  cr_assert_eq(log.n, 2);
  cr_assert_eq(log.names[0], 'b');
  cr_assert_eq(log.names[1], 'a');
  tw_delayed_call_unref(a);
  tw_clock_free(log.clock);
}

static tw_delayed_call *call_b;
static void reset_b(void *arg) {
  (void)arg;
  cr_assert_eq(tw_delayed_call_reset(call_b, 3.0), 0);
}

TWT_TEST(clock, test_call_later_reset_inside_call_keeps_calls_ordered) {
  static const double half[10] = {.5, .5, .5, .5, .5, .5, .5, .5, .5, .5};
  log_t log = {0};
  entry_t eb = {&log, 'b'}, ec = {&log, 'c'};
  log.clock = tw_clock_new_manual();
  tw_clock_call_later(log.clock, 2.0, log_call, &eb, NULL, &call_b);
  tw_clock_call_later(log.clock, 1.0, reset_b, NULL, NULL, NULL);
  tw_clock_call_later(log.clock, 3.0, log_call, &ec, NULL, NULL);
  cr_assert_eq(tw_clock_pump(log.clock, half, 10), 3);
  cr_assert_eq(log.n, 2);
  cr_assert_eq(log.names[0], 'c');
  cr_assert_eq(log.times[0], 3.0);
  cr_assert_eq(log.names[1], 'b');
  cr_assert_eq(log.times[1], 4.0);
  tw_delayed_call_unref(call_b);
  tw_clock_free(log.clock);
}

/* ---- DelayedCall ordering (test_base.DelayedCallMixin) ------------------- */

TWT_TEST(clock, test_lt_le_gt_ge_eq_ne) {
  tw_clock *c = tw_clock_new_manual();
  tw_delayed_call *zero, *one, *one_again;
  tw_clock_call_later(c, 0, count_call, NULL, NULL, &zero);
  tw_clock_call_later(c, 1, count_call, NULL, NULL, &one);
  tw_clock_call_later(c, 1, count_call, NULL, NULL, &one_again);
  cr_assert(tw_delayed_call_compare(zero, one) < 0);          /* test_lt */
  cr_assert(tw_delayed_call_compare(one, one_again) <= 0);    /* test_le */
  cr_assert(tw_delayed_call_compare(one, zero) > 0);          /* test_gt */
  cr_assert(tw_delayed_call_compare(one_again, one) >= 0);    /* test_ge */
  cr_assert_eq(tw_delayed_call_compare(one, one_again), 0);
  cr_assert_neq(one, one_again); /* test_eq/test_ne: identity */
  cr_assert(tw_delayed_call_compare(NULL, one) < 0);
  cr_assert_eq(tw_delayed_call_compare(NULL, NULL), 0);
  tw_delayed_call_unref(zero);
  tw_delayed_call_unref(one);
  tw_delayed_call_unref(one_again);
  tw_clock_free(c);
}

/* ---- twuv's own contract ------------------------------------------------ */

TWT_TEST(clock, equal_deadlines_run_in_creation_order) {
  log_t log = {0};
  entry_t e[20];
  int i;
  log.clock = tw_clock_new_manual();
  for (i = 0; i < 20; i++) {
    e[i].log = &log;
    e[i].name = (char)('a' + i);
    tw_clock_call_later(log.clock, 0, log_call, &e[i], NULL, NULL);
  }
  tw_clock_advance(log.clock, 0);
  cr_assert_eq(log.n, 20);
  for (i = 0; i < 20; i++) cr_assert_eq(log.names[i], 'a' + i);
  tw_clock_free(log.clock);
}

static tw_clock *nested_clock;
static void schedule_zero(void *arg) {
  (void)arg;
  calls++;
  if (calls < 50)
    tw_clock_call_later(nested_clock, 0, schedule_zero, NULL, NULL, NULL);
}

TWT_TEST(clock, zero_delay_calls_made_during_advance_run_in_it) {
  /* task.Clock.advance runs calls that become due during the advance. */
  nested_clock = tw_clock_new_manual();
  calls = 0;
  tw_clock_call_later(nested_clock, 0, schedule_zero, NULL, NULL, NULL);
  cr_assert_eq(tw_clock_advance(nested_clock, 0), 50);
  cr_assert_eq(calls, 50);
  tw_clock_free(nested_clock);
}

TWT_TEST(clock, arg_free_runs_once_after_the_call) {
  tw_clock *c = tw_clock_new_manual();
  freed = calls = 0;
  tw_clock_call_later(c, 1, count_call, NULL, count_free, NULL);
  tw_clock_advance(c, 1);
  cr_assert_eq(calls, 1);
  cr_assert_eq(freed, 1);
  tw_clock_free(c);
  cr_assert_eq(freed, 1);
}

TWT_TEST(clock, arg_free_runs_on_cancel) {
  tw_clock *c = tw_clock_new_manual();
  tw_delayed_call *dc;
  freed = calls = 0;
  tw_clock_call_later(c, 1, count_call, NULL, count_free, &dc);
  tw_delayed_call_cancel(dc);
  cr_assert_eq(freed, 1);
  tw_clock_advance(c, 5);
  cr_assert_eq(calls, 0);
  cr_assert_eq(freed, 1);
  tw_delayed_call_unref(dc);
  tw_clock_free(c);
}

TWT_TEST(clock, freeing_the_clock_drops_pending_calls) {
  tw_clock *c = tw_clock_new_manual();
  tw_delayed_call *dc;
  freed = calls = 0;
  tw_clock_call_later(c, 1, count_call, NULL, count_free, &dc);
  tw_clock_call_later(c, 2, count_call, NULL, count_free, NULL);
  tw_clock_free(c);
  cr_assert_eq(calls, 0);
  cr_assert_eq(freed, 2);
  /* The handle outlives the clock and reports the call as cancelled. */
  cr_assert_not(tw_delayed_call_active(dc));
  cr_assert_eq(tw_delayed_call_cancel(dc), TW_EALREADYCANCELLED);
  cr_assert_eq(tw_delayed_call_reset(dc, 1), TW_EALREADYCANCELLED);
  tw_delayed_call_unref(dc);
}

TWT_TEST(clock, cancelled_is_checked_before_called) {
  tw_clock *c = tw_clock_new_manual();
  tw_delayed_call *dc;
  tw_clock_call_later(c, 1, count_call, NULL, NULL, &dc);
  tw_delayed_call_cancel(dc);
  cr_assert_eq(tw_delayed_call_cancel(dc), TW_EALREADYCANCELLED);
  cr_assert_eq(tw_delayed_call_reset(dc, 1), TW_EALREADYCANCELLED);
  cr_assert_eq(tw_delayed_call_delay(dc, 1), TW_EALREADYCANCELLED);
  tw_delayed_call_unref(dc);
  tw_clock_call_later(c, 1, count_call, NULL, NULL, &dc);
  tw_clock_advance(c, 1);
  cr_assert_eq(tw_delayed_call_cancel(dc), TW_EALREADYCALLED);
  cr_assert_eq(tw_delayed_call_reset(dc, 1), TW_EALREADYCALLED);
  cr_assert_eq(tw_delayed_call_delay(dc, 1), TW_EALREADYCALLED);
  tw_delayed_call_unref(dc);
  tw_clock_free(c);
}

TWT_TEST(clock, bad_input_returns_einval_and_changes_nothing) {
  tw_clock *c = tw_clock_new_manual();
  tw_delayed_call *dc = (tw_delayed_call *)&dc;
  double t[2] = {1, -1};
  freed = 0;
  cr_assert_eq(tw_clock_call_later(NULL, 1, count_call, NULL, count_free, &dc), TW_EINVAL);
  cr_assert_null(dc);
  cr_assert_eq(tw_clock_call_later(c, 1, NULL, NULL, count_free, NULL), TW_EINVAL);
  cr_assert_eq(tw_clock_call_later(c, -1, count_call, NULL, count_free, NULL), TW_EINVAL);
  cr_assert_eq(tw_clock_call_later(c, NAN, count_call, NULL, count_free, NULL), TW_EINVAL);
  cr_assert_eq(tw_clock_call_later(c, INFINITY, count_call, NULL, count_free, NULL), TW_EINVAL);
  cr_assert_eq(freed, 0);
  cr_assert_eq(tw_clock_pending(c), 0);
  cr_assert_eq(tw_clock_advance(c, -1), TW_EINVAL);
  cr_assert_eq(tw_clock_advance(c, NAN), TW_EINVAL);
  cr_assert_eq(tw_clock_advance(NULL, 1), TW_EINVAL);
  cr_assert_eq(tw_clock_pump(c, t, 2), TW_EINVAL);
  cr_assert_eq(tw_clock_pump(c, NULL, 1), TW_EINVAL);
  cr_assert_eq(tw_clock_seconds(c), 0.0); /* pump checked before advancing */
  cr_assert(isnan(tw_clock_seconds(NULL)));
  cr_assert_eq(tw_clock_pending(NULL), 0);
  tw_clock_free(NULL);
  cr_assert_eq(tw_delayed_call_cancel(NULL), TW_EINVAL);
  cr_assert_eq(tw_delayed_call_reset(NULL, 1), TW_EINVAL);
  cr_assert_eq(tw_delayed_call_delay(NULL, 1), TW_EINVAL);
  cr_assert_not(tw_delayed_call_active(NULL));
  cr_assert(isnan(tw_delayed_call_get_time(NULL)));
  cr_assert_null(tw_delayed_call_ref(NULL));
  tw_delayed_call_unref(NULL);
  tw_clock_call_later(c, 1, count_call, NULL, NULL, &dc);
  cr_assert_eq(tw_delayed_call_reset(dc, -1), TW_EINVAL);
  cr_assert_eq(tw_delayed_call_reset(dc, NAN), TW_EINVAL);
  cr_assert_eq(tw_delayed_call_delay(dc, INFINITY), TW_EINVAL);
  cr_assert_eq(tw_delayed_call_get_time(dc), 1.0);
  cr_assert(tw_delayed_call_active(dc));
  tw_delayed_call_unref(dc);
  tw_clock_free(c);
}

TWT_TEST(clock, negative_delay_moves_a_call_sooner) {
  tw_clock *c = tw_clock_new_manual();
  tw_delayed_call *dc;
  calls = 0;
  tw_clock_call_later(c, 5, count_call, NULL, NULL, &dc);
  cr_assert_eq(tw_delayed_call_delay(dc, -4), 0);
  tw_clock_advance(c, 1);
  cr_assert_eq(calls, 1);
  tw_delayed_call_unref(dc);
  tw_clock_free(c);
}

TWT_TEST(clock, out_of_memory_schedules_nothing) {
  tw_clock *c = tw_clock_new_manual();
  tw_delayed_call *dc;
  int i;
  freed = 0;
  twt_alloc_fail_nth(1); /* the heap array */
  cr_assert_eq(tw_clock_call_later(c, 1, count_call, NULL, count_free, &dc), TW_ENOMEM);
  cr_assert_null(dc);
  twt_alloc_fail_nth(2); /* the call itself, after the heap grew */
  cr_assert_eq(tw_clock_call_later(c, 1, count_call, NULL, count_free, NULL), TW_ENOMEM);
  cr_assert_eq(freed, 0);
  cr_assert_eq(tw_clock_pending(c), 0);
  twt_alloc_fail_nth(1);
  cr_assert_null(tw_clock_new_manual());
  /* Growth past the first block also fails cleanly. */
  for (i = 0; i < 16; i++)
    cr_assert_eq(tw_clock_call_later(c, i, count_call, NULL, count_free, NULL), 0);
  twt_alloc_fail_nth(1);
  cr_assert_eq(tw_clock_call_later(c, 99, count_call, NULL, count_free, NULL), TW_ENOMEM);
  cr_assert_eq(tw_clock_pending(c), 16);
  tw_clock_free(c);
  cr_assert_eq(freed, 16);
}

TWT_TEST(clock, heap_stays_ordered_under_random_operations) {
  /* A model check: random schedules, cancels and resets against a sort. */
  tw_clock *c = tw_clock_new_manual();
  enum { N = 500 };
  static tw_delayed_call *dcs[N];
  static double expect_time[N];
  double last = -1;
  unsigned seed = 12345;
  int i, ran;
  for (i = 0; i < N; i++) {
    seed = seed * 1103515245u + 12345u;
    tw_clock_call_later(c, (seed >> 16) % 1000, count_call, NULL, NULL, &dcs[i]);
  }
  for (i = 0; i < N; i += 3) tw_delayed_call_cancel(dcs[i]);
  for (i = 1; i < N; i += 7) {
    seed = seed * 1103515245u + 12345u;
    tw_delayed_call_reset(dcs[i], (seed >> 16) % 1000);
  }
  for (i = 0; i < N; i++) expect_time[i] = tw_delayed_call_get_time(dcs[i]);
  /* Advance step by step; each call must run at its time, in order. */
  calls = 0;
  for (ran = 0; tw_clock_pending(c) > 0;) {
    tw_delayed_call *next[1];
    tw_clock_get_delayed_calls(c, next, 1);
    cr_assert(tw_delayed_call_get_time(next[0]) >= last);
    last = tw_delayed_call_get_time(next[0]);
    ran += tw_clock_advance(c, last - tw_clock_seconds(c));
  }
  cr_assert_eq(ran, N - (N + 2) / 3);
  for (i = 0; i < N; i++) {
    if (i % 3 == 0)
      cr_assert(tw_delayed_call_cancelled(dcs[i]));
    else
      cr_assert(tw_delayed_call_called(dcs[i]));
    cr_assert_eq(tw_delayed_call_get_time(dcs[i]), expect_time[i]);
    tw_delayed_call_unref(dcs[i]);
  }
  tw_clock_free(c);
}

TWT_TEST(clock, lazy_cancellation_compacts_and_keeps_order) {
  /* Cancelled calls leave the heap lazily (Twisted's strategy); cancelling
   * most of a large heap triggers a rebuild, after which everything still
   * runs in order and nothing is lost or leaked. */
  tw_clock *c = tw_clock_new_manual();
  enum { N = 1000 };
  static tw_delayed_call *dcs[N];
  log_t log = {0};
  static entry_t e[N];
  int i;
  freed = 0;
  log.clock = c;
  for (i = 0; i < N; i++) {
    e[i].log = &log;
    e[i].name = (char)('a' + i % 26);
    tw_clock_call_later(c, (double)(N - i), count_call,
                        &e[i], count_free, &dcs[i]);
  }
  for (i = 0; i < N; i++)
    if (i % 10 != 0) cr_assert_eq(tw_delayed_call_cancel(dcs[i]), 0);
  cr_assert_eq(freed, N - N / 10);
  cr_assert_eq(tw_clock_pending(c), N / 10);
  {
    tw_delayed_call *first[1];
    cr_assert_eq(tw_clock_get_delayed_calls(c, first, 1), N / 10);
    cr_assert_eq(first[0], dcs[N - 10]); /* the earliest live deadline */
  }
  calls = 0;
  cr_assert_eq(tw_clock_advance(c, N), N / 10);
  cr_assert_eq(calls, N / 10);
  cr_assert_eq(freed, N);
  for (i = 0; i < N; i++) {
    cr_assert(i % 10 == 0 ? tw_delayed_call_called(dcs[i])
                          : tw_delayed_call_cancelled(dcs[i]));
    cr_assert_eq(tw_delayed_call_get_time(dcs[i]), (double)(N - i));
    tw_delayed_call_unref(dcs[i]);
  }
  tw_clock_free(c);
}

/* An object owning two timers: freeing the clock releases the first one's
 * arg, whose destructor cancels the second. */
static tw_delayed_call *sibling;
static int sibling_cancel_rc = 99;
static void cancel_sibling(void *arg) {
  (void)arg;
  sibling_cancel_rc = tw_delayed_call_cancel(sibling);
  cr_assert(isfinite(tw_delayed_call_get_time(sibling)));
  cr_assert_eq(tw_clock_call_later(nested_clock, 1, count_call, NULL, NULL,
                                   NULL),
               TW_ESHUTDOWN);
}

TWT_TEST(clock, freeing_a_clock_whose_arg_free_touches_a_sibling) {
  tw_clock *c = tw_clock_new_manual();
  tw_delayed_call *first;
  nested_clock = c;
  freed = 0;
  tw_clock_call_later(c, 1, count_call, NULL, cancel_sibling, &first);
  tw_clock_call_later(c, 2, count_call, NULL, count_free, &sibling);
  tw_clock_free(c);
  cr_assert_eq(sibling_cancel_rc, TW_EALREADYCANCELLED);
  cr_assert_eq(freed, 1);
  tw_delayed_call_unref(first);
  tw_delayed_call_unref(sibling);
}

/* ---- re-entrancy and limits (issue 11) ------------------------------------ */

/* tw_clock_free from inside one of the clock's own calls. The call then
 * makes a new clock: with glibc's allocator that reuses the freed clock's
 * memory at once, so a run loop still reading the old clock would run the
 * new clock's call (and ASan/valgrind report the use after free). */
static tw_clock *freed_inside, *made_inside;
static int made_inside_calls;
static void count_made_inside(void *arg) {
  (void)arg;
  made_inside_calls++;
}
static void free_own_clock(void *arg) {
  (void)arg;
  tw_clock_free(freed_inside);
  /* Freed for the caller: new calls are refused, pending ones dropped. */
  cr_assert_eq(tw_clock_call_later(freed_inside, 0, count_call, NULL, NULL,
                                   NULL),
               TW_ESHUTDOWN);
  made_inside = tw_clock_new_manual();
  cr_assert_not_null(made_inside);
  cr_assert_eq(tw_clock_call_later(made_inside, 0, count_made_inside, NULL,
                                   NULL, NULL),
               0);
}

TWT_TEST(clock, free_from_inside_its_own_delayed_call) {
  tw_delayed_call *later;
  double steps[3] = {1, 1, 1};
  calls = made_inside_calls = 0;
  freed = 0;
  freed_inside = tw_clock_new_manual();
  cr_assert_eq(tw_clock_call_later(freed_inside, 1, free_own_clock, NULL,
                                   NULL, NULL),
               0);
  cr_assert_eq(tw_clock_call_later(freed_inside, 1, count_call, NULL,
                                   count_free, &later),
               0);
  /* pump, not advance: the later steps must not touch the freed clock. */
  cr_assert_eq(tw_clock_pump(freed_inside, steps, 3), 1);
  cr_assert_eq(calls, 0, "a call dropped by the free ran");
  cr_assert_eq(freed, 1);
  cr_assert(tw_delayed_call_cancelled(later));
  tw_delayed_call_unref(later);
  cr_assert_eq(made_inside_calls, 0, "the freed clock ran another clock's call");
  cr_assert_eq(tw_clock_pending(made_inside), 1);
  cr_assert_eq(tw_clock_advance(made_inside, 0), 1);
  tw_clock_free(made_inside);
}

TWT_TEST(clock, time_never_overflows_to_infinity) {
  tw_clock *c = tw_clock_new_manual();
  tw_delayed_call *dc;
  calls = 0;
  cr_assert_eq(tw_clock_call_later(c, DBL_MAX, count_call, NULL, NULL, &dc), 0);
  cr_assert_eq(tw_delayed_call_get_time(dc), DBL_MAX);
  /* DBL_MAX + DBL_MAX is +inf: refused, nothing changes. */
  cr_assert_eq(tw_delayed_call_delay(dc, DBL_MAX), TW_EINVAL);
  cr_assert_eq(tw_delayed_call_get_time(dc), DBL_MAX);
  cr_assert_eq(tw_clock_advance(c, DBL_MAX), 1, "the call fires at DBL_MAX");
  cr_assert_eq(calls, 1);
  tw_delayed_call_unref(dc);
  cr_assert_eq(tw_clock_seconds(c), DBL_MAX);
  cr_assert_eq(tw_clock_advance(c, DBL_MAX), TW_EINVAL);
  cr_assert_eq(tw_clock_seconds(c), DBL_MAX);
  {
    double steps[2] = {0, DBL_MAX};
    cr_assert_eq(tw_clock_pump(c, steps, 2), TW_EINVAL);
  }
  cr_assert_eq(tw_clock_seconds(c), DBL_MAX);
  cr_assert_eq(tw_clock_call_later(c, DBL_MAX, count_call, NULL, NULL, NULL),
               TW_EINVAL);
  cr_assert_eq(tw_clock_call_later(c, 0, count_call, NULL, NULL, &dc), 0);
  cr_assert_eq(tw_delayed_call_reset(dc, DBL_MAX), TW_EINVAL);
  cr_assert_eq(tw_delayed_call_delay(dc, INFINITY), TW_EINVAL);
  cr_assert_eq(tw_delayed_call_delay(dc, NAN), TW_EINVAL);
  cr_assert_eq(tw_delayed_call_reset(dc, NAN), TW_EINVAL);
  cr_assert_eq(tw_delayed_call_reset(dc, INFINITY), TW_EINVAL);
  cr_assert_eq(tw_delayed_call_get_time(dc), DBL_MAX);
  cr_assert_eq(tw_clock_advance(c, 0), 1);
  cr_assert_eq(calls, 2);
  tw_delayed_call_unref(dc);
  tw_clock_free(c);
}

/* A call moved by reset/delay onto a time other calls are due at: the order
 * of task.Clock (issue 11 item 14). Twisted 22.4: A = callLater(2);
 * B = callLater(1); A.reset(1) -> B then A; A.delay(-1) too. */
static void reset_onto_b(int use_delay) {
  log_t log = {0};
  entry_t a = {&log, 'A'}, b = {&log, 'B'};
  tw_delayed_call *dc;
  log.clock = tw_clock_new_manual();
  cr_assert_eq(tw_clock_call_later(log.clock, 2, log_call, &a, NULL, &dc), 0);
  cr_assert_eq(tw_clock_call_later(log.clock, 1, log_call, &b, NULL, NULL), 0);
  if (use_delay)
    cr_assert_eq(tw_delayed_call_delay(dc, -1), 0);
  else
    cr_assert_eq(tw_delayed_call_reset(dc, 1), 0);
  cr_assert_eq(tw_clock_advance(log.clock, 1), 2);
  cr_assert_eq(log.n, 2);
  cr_assert_eq(log.names[0], 'B');
  cr_assert_eq(log.names[1], 'A');
  tw_delayed_call_unref(dc);
  tw_clock_free(log.clock);
}

TWT_TEST(clock, reset_sooner_goes_behind_calls_due_then) { reset_onto_b(0); }
TWT_TEST(clock, delay_sooner_goes_behind_calls_due_then) { reset_onto_b(1); }

/* Differential test: programs run on Twisted's task.Clock, recorded by
 * tests/support/gen_clock_traces.py, replayed here. */
#include "clock_traces.h"

#define TRACE_IDS 10
typedef struct {
  tw_clock *clock;
  tw_delayed_call *dc[TRACE_IDS];
  char trace[64];
  size_t n;
} replay_t;

typedef struct {
  replay_t *rp;
  int id;
  char act;  /* 0, 'R', 'D' or 'L' */
  int target;
  double value;
} replay_call_t;

static replay_call_t replay_calls[2 * TRACE_IDS];
static int replay_ncalls;

static void replay_note(replay_t *rp, char c) {
  cr_assert(rp->n + 1 < sizeof(rp->trace));
  rp->trace[rp->n++] = c;
  rp->trace[rp->n] = '\0';
}

static void replay_call(void *arg);

static void replay_act(replay_t *rp, char kind, int id, double v,
                       replay_call_t *call) {
  int rc = 0;
  if (kind == 'R') {
    rc = tw_delayed_call_reset(rp->dc[id], v);
  } else if (kind == 'D') {
    rc = tw_delayed_call_delay(rp->dc[id], v);
  } else if (kind == 'C') {
    rc = tw_delayed_call_cancel(rp->dc[id]);
  } else if (kind == 'L') {
    cr_assert_null(rp->dc[id]);
    rc = tw_clock_call_later(rp->clock, v, replay_call, call, NULL,
                             &rp->dc[id]);
    cr_assert_eq(rc, 0);
  }
  if (rc != 0) {
    cr_assert(rc == TW_EALREADYCALLED || rc == TW_EALREADYCANCELLED,
              "%c%d: %s", kind, id, tw_err_name(rc));
    replay_note(rp, 'x');
  }
}

static replay_call_t *replay_new_call(replay_t *rp, int id) {
  replay_call_t *call = &replay_calls[replay_ncalls++];
  cr_assert(replay_ncalls <= 2 * TRACE_IDS);
  memset(call, 0, sizeof(*call));
  call->rp = rp;
  call->id = id;
  return call;
}

static void replay_call(void *arg) {
  replay_call_t *call = arg;
  replay_note(call->rp, (char)('0' + call->id));
  if (call->act != 0)
    replay_act(call->rp, call->act, call->target, call->value,
               call->act == 'L' ? replay_new_call(call->rp, call->target)
                                : NULL);
}

static void replay(const char *program, char *trace, size_t size) {
  replay_t rp;
  const char *p = program;
  int i;
  memset(&rp, 0, sizeof(rp));
  replay_ncalls = 0;
  rp.clock = tw_clock_new_manual();
  cr_assert_not_null(rp.clock);
  while (*p != '\0') {
    char kind = *p++;
    int id = -1;
    double v = 0;
    if (kind == ' ') continue;
    if (kind != 'A') id = *p++ - '0';
    if (kind != 'C') {
      char *end;
      cr_assert_eq(*p++, ':');
      v = strtod(p, &end);
      p = end;
    }
    if (kind == 'A') {
      cr_assert_geq(tw_clock_advance(rp.clock, v), 0);
    } else if (kind == 'L') {
      replay_call_t *call = replay_new_call(&rp, id);
      if (*p == '/') {
        char *end;
        call->act = p[1];
        call->target = p[2] - '0';
        cr_assert_eq(p[3], ':');
        call->value = strtod(p + 4, &end);
        p = end;
      }
      replay_act(&rp, 'L', id, v, call);
    } else {
      replay_act(&rp, kind, id, v, NULL);
    }
  }
  snprintf(trace, size, "%s", rp.trace);
  for (i = 0; i < TRACE_IDS; i++) tw_delayed_call_unref(rp.dc[i]);
  tw_clock_free(rp.clock);
}

TWT_TEST(clock, twisted_clock_traces_match) {
  size_t i, n = sizeof(twisted_clock_traces) / sizeof(twisted_clock_traces[0]);
  for (i = 0; i < n; i++) {
    char trace[64];
    replay(twisted_clock_traces[i].program, trace, sizeof(trace));
    cr_assert_str_eq(trace, twisted_clock_traces[i].trace,
                     "program %zu: %s: twuv ran %s, Twisted %s", i,
                     twisted_clock_traces[i].program, trace,
                     twisted_clock_traces[i].trace);
  }
}

/* Out of memory while recording a moved call: the move still happens, and
 * the call is placed at once (same order here as task.Clock's). */
TWT_TEST(clock, reset_out_of_memory_still_moves_the_call) {
  log_t log = {0};
  entry_t a = {&log, 'A'}, b = {&log, 'B'};
  tw_delayed_call *dc;
  log.clock = tw_clock_new_manual();
  cr_assert_eq(tw_clock_call_later(log.clock, 2, log_call, &a, NULL, &dc), 0);
  cr_assert_eq(tw_clock_call_later(log.clock, 1, log_call, &b, NULL, NULL), 0);
  twt_alloc_fail_nth(1);
  cr_assert_eq(tw_delayed_call_reset(dc, 1), 0);
  twt_alloc_fail_nth(0);
  cr_assert_eq(tw_delayed_call_get_time(dc), 1.0);
  cr_assert_eq(tw_clock_advance(log.clock, 1), 2);
  cr_assert_eq(log.names[0], 'B');
  cr_assert_eq(log.names[1], 'A');
  tw_delayed_call_unref(dc);
  tw_clock_free(log.clock);
}
