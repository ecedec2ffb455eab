/*
 * tests/test_task.c - addTimeout, deferLater and LoopingCall (task.h).
 *
 * Ports test_defer.py DeferredAddTimeoutTests and test_task.py LoopTests,
 * ReactorLoopTests and DeferLaterTests (ClockTests are in test_clock.c),
 * under the same names in snake_case. ReactorLoopTests use the real reactor
 * in Twisted; here they run on the manual clock, so that every test is
 * deterministic: "the next reactor iteration" becomes tw_clock_advance(0),
 * which on the manual clock runs calls that are due, including new ones.
 *
 * Not ported: LoopTests.test_defaultClock (a looping call always takes a
 * clock) and test_withCountIntervalZeroDelayThenNonZeroInterval (it assigns
 * loop.interval directly; the interval is only set by start here).
 */
#include <math.h>

#include "defer_helpers.h"

TWT_SUITE(task);

/* ---- DeferredAddTimeoutTests --------------------------------------------- */

static tw_result override_func(tw_result r, double timeout, void *arg) {
  (void)timeout;
  (void)arg;
  tw_result_release(r);
  return tw_result_value(V("OVERRIDDEN"), NULL);
}

static tw_result return_done(tw_result r, void *arg) {
  (void)arg;
  tw_result_release(r);
  return tw_result_value(V("done"), NULL);
}

static tw_result return_inner(tw_result r, void *inner) {
  trace_result("on", r);
  tw_result_release(r);
  return tw_result_deferred(tw_deferred_ref(inner));
}

TWT_TEST(task, test_timeout_chainable) {
  tw_clock *clock = tw_clock_new_manual();
  tw_deferred *d = tw_deferred_new(NULL, NULL);
  cr_assert_eq(tw_deferred_add_timeout(d, clock, 5, NULL, NULL), 0);
  tw_deferred_add_callback(d, return_done, NULL);
  tw_deferred_callback(d, tw_result_none());
  cr_assert_str_eq(success_result_of(d), "done");
  cr_assert_eq(tw_clock_pending(clock), 0);
  tw_deferred_unref(d);
  tw_clock_free(clock);
}

static void result_before_timeout(tw_timeout_fn custom, int fail) {
  tw_clock *clock = tw_clock_new_manual();
  tw_deferred *d = tw_deferred_new(NULL, NULL);
  tw_deferred *inner = tw_deferred_new(NULL, NULL);
  tw_deferred_add_timeout(d, clock, 10, custom, NULL);
  if (fail) {
    tw_deferred_add_errback(d, return_inner, inner);
    tw_deferred_errback(d, tw_failure_new(&TW_VALUE_ERROR, 0, "fail"));
    assert_trace("on!ValueError:fail");
  } else {
    tw_deferred_add_callback(d, return_inner, inner);
    tw_deferred_callback(d, tw_result_value(V("results"), NULL));
    assert_trace("on=results");
  }
  /* The timeout never happens: it would cancel inner through d. */
  cr_assert_eq(tw_clock_pending(clock), 0);
  tw_clock_advance(clock, 15);
  assert_no_result(inner);
  tw_deferred_unref(d);
  tw_deferred_unref(inner);
  tw_clock_free(clock);
}

TWT_TEST(task, test_success_result_before_timeout) {
  result_before_timeout(NULL, 0);
}
TWT_TEST(task, test_success_result_before_timeout_custom) {
  result_before_timeout(override_func, 0);
}
TWT_TEST(task, test_failure_before_timeout) { result_before_timeout(NULL, 1); }
TWT_TEST(task, test_failure_before_timeout_custom) {
  result_before_timeout(override_func, 1);
}

TWT_TEST(task, test_timed_out) {
  tw_clock *clock = tw_clock_new_manual();
  tw_deferred *d = tw_deferred_new(NULL, NULL);
  tw_result r;
  tw_deferred_add_timeout(d, clock, 10, NULL, NULL);
  assert_no_result(d);
  tw_clock_advance(clock, 15);
  cr_assert_eq(tw_deferred_peek_result(d, &r), 0);
  cr_assert_eq(tw_failure_code(r.u.failure), TW_ETIMEDOUT);
  failure_result_of(d, &TW_TIMEOUT_ERROR);
  tw_deferred_unref(d);
  tw_clock_free(clock);
}

TWT_TEST(task, test_timed_out_custom) {
  tw_clock *clock = tw_clock_new_manual();
  tw_deferred *d = tw_deferred_new(NULL, NULL);
  tw_deferred_add_timeout(d, clock, 10, override_func, NULL);
  assert_no_result(d);
  tw_clock_advance(clock, 15);
  cr_assert_str_eq(success_result_of(d), "OVERRIDDEN");
  tw_deferred_unref(d);
  tw_clock_free(clock);
}

static void cancel_with_success(tw_deferred *d, void *arg) {
  tw_deferred_callback(d, tw_result_value(arg, NULL));
}

static void cancel_with_value_error(tw_deferred *d, void *arg) {
  (void)arg;
  tw_deferred_errback(d, tw_failure_new(&TW_VALUE_ERROR, 0, "what!"));
}

TWT_TEST(task, test_timed_out_provided_cancel_success) {
  tw_clock *clock = tw_clock_new_manual();
  tw_deferred *d = tw_deferred_new(cancel_with_success, "I was cancelled!");
  tw_deferred_add_timeout(d, clock, 10, NULL, NULL);
  assert_no_result(d);
  tw_clock_advance(clock, 15);
  cr_assert_str_eq(success_result_of(d), "I was cancelled!");
  tw_deferred_unref(d);
  tw_clock_free(clock);
}

TWT_TEST(task, test_timed_out_provided_cancel_failure) {
  tw_clock *clock = tw_clock_new_manual();
  tw_deferred *d = tw_deferred_new(cancel_with_value_error, NULL);
  tw_result r;
  tw_deferred_add_timeout(d, clock, 10, NULL, NULL);
  tw_clock_advance(clock, 15);
  cr_assert_eq(tw_deferred_peek_result(d, &r), 0);
  cr_assert_str_eq(tw_failure_message(r.u.failure), "what!");
  failure_result_of(d, &TW_VALUE_ERROR);
  tw_deferred_unref(d);
  tw_clock_free(clock);
}

static void cancel_before_timeout(tw_timeout_fn custom) {
  tw_clock *clock = tw_clock_new_manual();
  tw_deferred *d = tw_deferred_new(NULL, NULL);
  tw_deferred *inner = tw_deferred_new(NULL, NULL);
  tw_deferred_add_timeout(d, clock, 10, custom, NULL);
  tw_deferred_add_errback(d, return_inner, inner);
  tw_deferred_cancel(d);
  assert_trace("on!CancelledError:");
  tw_clock_advance(clock, 15);
  assert_no_result(inner);
  tw_deferred_unref(d);
  tw_deferred_unref(inner);
  tw_clock_free(clock);
}

TWT_TEST(task, test_cancel_before_timeout) { cancel_before_timeout(NULL); }
TWT_TEST(task, test_cancel_before_timeout_custom) {
  cancel_before_timeout(override_func);
}

TWT_TEST(task, test_provided_cancel_called_before_timeout_custom) {
  tw_clock *clock = tw_clock_new_manual();
  tw_deferred *d = tw_deferred_new(cancel_with_value_error, NULL);
  tw_deferred_add_timeout(d, clock, 10, override_func, NULL);
  assert_no_result(d);
  tw_clock_advance(clock, 15);
  cr_assert_str_eq(success_result_of(d), "OVERRIDDEN");
  tw_deferred_unref(d);
  tw_clock_free(clock);
}

static tw_result suppress_cancelled(tw_result r, void *arg) {
  trace_result(arg, r);
  if (!tw_failure_trap(r.u.failure, &TW_CANCELLED_ERROR)) return r;
  tw_result_release(r);
  return tw_result_none();
}

static void errback_before_timeout(tw_timeout_fn custom, int suppress,
                                   const char *expected) {
  tw_clock *clock = tw_clock_new_manual();
  tw_deferred *d = tw_deferred_new(NULL, NULL);
  tw_deferred_add_errback(d, suppress ? suppress_cancelled : rec, "eb");
  tw_deferred_add_timeout(d, clock, 10, custom, NULL);
  tw_clock_advance(clock, 15);
  assert_trace("eb!CancelledError:");
  if (expected == NULL)
    failure_result_of(d, &TW_TIMEOUT_ERROR);
  else if (expected[0] == '\0')
    cr_assert_null(success_result_of(d));
  else
    cr_assert_str_eq(success_result_of(d), expected);
  tw_deferred_unref(d);
  tw_clock_free(clock);
}

TWT_TEST(task, test_errback_added_before_timeout) {
  errback_before_timeout(NULL, 0, NULL);
}
TWT_TEST(task, test_errback_added_before_timeout_suppresses_cancellation) {
  errback_before_timeout(NULL, 1, "");
}
TWT_TEST(task, test_errback_added_before_timeout_custom) {
  errback_before_timeout(override_func, 0, "OVERRIDDEN");
}
TWT_TEST(task,
         test_errback_added_before_timeout_suppresses_cancellation_custom) {
  errback_before_timeout(override_func, 1, "OVERRIDDEN");
}

static void callback_added_to_canceller(tw_timeout_fn custom,
                                        const char *expected) {
  tw_clock *clock = tw_clock_new_manual();
  tw_deferred *d = tw_deferred_new(cancel_with_success, "success");
  tw_deferred_add_callback(d, rec, "cb");
  tw_deferred_add_timeout(d, clock, 10, custom, NULL);
  tw_clock_advance(clock, 15);
  assert_trace("cb=success");
  cr_assert_str_eq(success_result_of(d), expected);
  tw_deferred_unref(d);
  tw_clock_free(clock);
}

TWT_TEST(task, test_callback_added_to_canceler_before_timeout) {
  callback_added_to_canceller(NULL, "success");
}
TWT_TEST(task, test_callback_added_to_canceler_before_timeout_custom) {
  callback_added_to_canceller(override_func, "OVERRIDDEN");
}

/* ---- LoopTests ------------------------------------------------------------ */

typedef struct {
  tw_clock *clock;
  double times[64];
  long counts[64];
  int n;
  double call_duration;
  tw_looping_call *lc;
  int stop_after;            /* stop() once n reaches this (0: never) */
  tw_deferred *block_on;     /* returned once, at call block_at */
  int block_at;
} loop_t;

static tw_result a_callback(void *arg) {
  loop_t *l = arg;
  l->times[l->n++] = tw_clock_seconds(l->clock);
  if (l->call_duration > 0) tw_clock_advance(l->clock, l->call_duration);
  if (l->stop_after && l->n >= l->stop_after) tw_looping_call_stop(l->lc);
  if (l->block_on != NULL && l->n == l->block_at)
    return tw_result_deferred(tw_deferred_ref(l->block_on));
  return tw_result_none();
}

static tw_result count_callback(long count, void *arg) {
  loop_t *l = arg;
  l->counts[l->n] = count;
  return a_callback(arg);
}

TWT_TEST(task, test_callback_time_skips) {
  loop_t l = {0};
  tw_deferred *d;
  l.clock = tw_clock_new_manual();
  cr_assert_eq(tw_looping_call_new(&l.lc, l.clock, a_callback, &l, NULL), 0);
  l.call_duration = 2;
  cr_assert_eq(tw_looping_call_start(l.lc, 0.5, 1, &d), 0);
  cr_assert_eq(l.n, 1);
  cr_assert_eq(l.times[0], 0);
  cr_assert_eq(tw_clock_seconds(l.clock), 2);
  /* 2 is the present, not the future: skipped. */
  tw_clock_advance(l.clock, 0);
  cr_assert_eq(l.n, 1);
  l.call_duration = 1;
  tw_clock_advance(l.clock, 0.5);
  cr_assert_eq(l.n, 2);
  cr_assert_eq(l.times[1], 2.5);
  cr_assert_eq(tw_clock_seconds(l.clock), 3.5);
  tw_clock_advance(l.clock, 0);
  cr_assert_eq(l.n, 2);
  l.call_duration = 0;
  tw_clock_advance(l.clock, 0.5);
  cr_assert_eq(l.n, 3);
  cr_assert_eq(l.times[2], 4);
  cr_assert_eq(tw_clock_seconds(l.clock), 4);
  tw_looping_call_free(l.lc);
  cr_assert_eq(tw_deferred_called(d), 1); /* freeing stops it */
  tw_deferred_unref(d);
  tw_clock_free(l.clock);
}

TWT_TEST(task, test_reactor_time_skips) {
  loop_t l = {0};
  l.clock = tw_clock_new_manual();
  cr_assert_eq(tw_looping_call_new(&l.lc, l.clock, a_callback, &l, NULL), 0);
  tw_looping_call_start(l.lc, 0.5, 1, NULL);
  cr_assert_eq(l.n, 1);
  cr_assert_eq(l.times[0], 0);
  tw_clock_advance(l.clock, 2);
  cr_assert_eq(l.n, 2);
  cr_assert_eq(l.times[1], 2);
  tw_clock_advance(l.clock, 1);
  cr_assert_eq(l.n, 3);
  cr_assert_eq(l.times[2], 3);
  tw_clock_advance(l.clock, 0);
  cr_assert_eq(l.n, 3);
  tw_looping_call_free(l.lc);
  tw_clock_free(l.clock);
}

TWT_TEST(task, test_reactor_time_count_skips) {
  loop_t l = {0};
  const double interval = 0.5, delay = 0.01;
  l.clock = tw_clock_new_manual();
  cr_assert_eq(tw_looping_call_new_with_count(&l.lc, l.clock, count_callback,
                                              &l, NULL),
               0);
  tw_looping_call_start(l.lc, interval, 1, NULL);
  cr_assert_eq(l.n, 1);
  cr_assert(l.times[0] == 0 && l.counts[0] == 1);
  tw_clock_advance(l.clock, interval + delay);
  cr_assert_eq(l.n, 2);
  cr_assert(l.times[1] == interval + delay && l.counts[1] == 1);
  tw_clock_advance(l.clock, 3 * interval + delay);
  cr_assert_eq(l.n, 3);
  cr_assert(l.times[2] == 4 * interval + 2 * delay && l.counts[2] == 3);
  tw_clock_advance(l.clock, 0);
  cr_assert_eq(l.n, 3);
  tw_looping_call_free(l.lc);
  tw_clock_free(l.clock);
}

TWT_TEST(task, test_count_lengthy_interval_counts) {
  loop_t l = {0};
  const double interval = 0.5, delay = 0.01;
  l.clock = tw_clock_new_manual();
  cr_assert_eq(tw_looping_call_new_with_count(&l.lc, l.clock, count_callback,
                                              &l, NULL),
               0);
  tw_looping_call_start(l.lc, interval, 1, NULL);
  cr_assert(l.n == 1 && l.times[0] == 0 && l.counts[0] == 1);
  tw_clock_advance(l.clock, interval + delay);
  cr_assert(l.n == 2 && l.times[1] == interval + delay && l.counts[1] == 1);
  tw_clock_advance(l.clock, interval * 1.75);
  cr_assert(l.n == 3 && l.times[2] == 2.75 * interval + delay &&
            l.counts[2] == 1);
  tw_clock_advance(l.clock, interval * 0.25);
  cr_assert(l.n == 4 && l.times[3] == 3.0 * interval + delay &&
            l.counts[3] == 1);
  tw_looping_call_free(l.lc);
  tw_clock_free(l.clock);
}

TWT_TEST(task, test_with_count_floating_point_boundary) {
  loop_t l = {0};
  const int count = 10;
  const double timespan = 1.0, interval = timespan / count;
  double epsilon, sum = 0;
  long total = 0;
  int i;
  l.clock = tw_clock_new_manual();
  cr_assert_eq(tw_looping_call_new_with_count(&l.lc, l.clock, count_callback,
                                              &l, NULL),
               0);
  tw_looping_call_start(l.lc, interval, 0, NULL);
  for (i = 0; i < count; i++) tw_clock_advance(l.clock, interval);
  for (i = 0; i < count; i++) sum += interval;
  epsilon = timespan - sum;
  tw_clock_advance(l.clock, epsilon);
  cr_assert(fabs(epsilon) > 0.0, "the test needs floating-point inaccuracy");
  cr_assert(tw_clock_seconds(l.clock) >= timespan);
  for (i = 0; i < l.n; i++) {
    cr_assert_neq(l.counts[i], 0);
    total += l.counts[i];
  }
  cr_assert_eq(total, count);
  tw_looping_call_free(l.lc);
  tw_clock_free(l.clock);
}

TWT_TEST(task, test_with_count_interval_zero) {
  loop_t l = {0};
  tw_deferred *d;
  int i;
  l.clock = tw_clock_new_manual();
  cr_assert_eq(tw_looping_call_new_with_count(&l.lc, l.clock, count_callback,
                                              &l, NULL),
               0);
  l.stop_after = 5;
  tw_looping_call_start(l.lc, 0, 0, &d);
  tw_clock_advance(l.clock, 0);
  cr_assert_eq(tw_deferred_called(d), 1);
  cr_assert_eq(l.n, 5);
  for (i = 0; i < 5; i++) cr_assert_eq(l.counts[i], 1);
  tw_deferred_unref(d);
  tw_looping_call_free(l.lc);
  tw_clock_free(l.clock);
}

TWT_TEST(task, test_with_count_interval_zero_delay) {
  loop_t l = {0};
  int i;
  l.clock = tw_clock_new_manual();
  cr_assert_eq(tw_looping_call_new_with_count(&l.lc, l.clock, count_callback,
                                              &l, NULL),
               0);
  l.block_on = tw_deferred_new(NULL, NULL);
  l.block_at = 2;
  l.stop_after = 5;
  tw_looping_call_start(l.lc, 0, 0, NULL);
  tw_clock_advance(l.clock, 0);
  cr_assert_eq(l.n, 2); /* blocked on the Deferred of the second call */
  tw_clock_advance(l.clock, 2);
  cr_assert_eq(l.n, 2);
  tw_deferred_callback(l.block_on, tw_result_none());
  tw_clock_advance(l.clock, 0);
  cr_assert_eq(l.n, 5);
  for (i = 0; i < 5; i++) cr_assert_eq(l.counts[i], 1);
  tw_deferred_unref(l.block_on);
  tw_looping_call_free(l.lc);
  tw_clock_free(l.clock);
}

static tw_result record_loop(tw_result r, void *lc) {
  trace("stopped:%s", r.u.value == lc ? "lc" : "?");
  return r;
}

TWT_TEST(task, test_basic_function) {
  loop_t l = {0};
  const double timings[] = {0.05, 0.1, 0.1};
  tw_deferred *d;
  l.clock = tw_clock_new_manual();
  cr_assert_eq(tw_looping_call_new(&l.lc, l.clock, a_callback, &l, NULL), 0);
  cr_assert_eq(tw_looping_call_start(l.lc, 0.1, 1, &d), 0);
  cr_assert_eq(tw_looping_call_running(l.lc), 1);
  cr_assert_eq(tw_looping_call_interval(l.lc), 0.1);
  tw_deferred_add_callback(d, record_loop, l.lc);
  tw_clock_pump(l.clock, timings, 3);
  cr_assert_eq(l.n, 3, "got %d iterations, not 3", l.n);
  cr_assert_eq(tw_looping_call_stop(l.lc), 0);
  assert_trace("stopped:lc");
  cr_assert_eq(tw_clock_pending(l.clock), 0);
  tw_deferred_unref(d);
  tw_looping_call_free(l.lc);
  tw_clock_free(l.clock);
}

TWT_TEST(task, test_delayed_start) {
  loop_t l = {0};
  const double timings[] = {0.05, 0.1, 0.1};
  tw_deferred *d;
  l.clock = tw_clock_new_manual();
  cr_assert_eq(tw_looping_call_new(&l.lc, l.clock, a_callback, &l, NULL), 0);
  tw_looping_call_start(l.lc, 0.1, 0, &d);
  tw_deferred_add_callback(d, record_loop, l.lc);
  tw_clock_pump(l.clock, timings, 3);
  cr_assert_eq(l.n, 2, "got %d iterations, not 2", l.n);
  tw_looping_call_stop(l.lc);
  assert_trace("stopped:lc");
  cr_assert_eq(tw_clock_pending(l.clock), 0);
  tw_deferred_unref(d);
  tw_looping_call_free(l.lc);
  tw_clock_free(l.clock);
}

TWT_TEST(task, test_bad_delay) {
  loop_t l = {0};
  tw_deferred *d = (void *)1;
  l.clock = tw_clock_new_manual();
  cr_assert_eq(tw_looping_call_new(&l.lc, l.clock, a_callback, &l, NULL), 0);
  cr_assert_eq(tw_looping_call_start(l.lc, -1, 1, &d), TW_EINVAL);
  cr_assert_null(d);
  cr_assert_eq(tw_looping_call_start(l.lc, NAN, 1, &d), TW_EINVAL);
  cr_assert_eq(tw_looping_call_running(l.lc), 0);
  cr_assert_eq(l.n, 0);
  tw_looping_call_free(l.lc);
  tw_clock_free(l.clock);
}

static void stopping_test(double delay) {
  loop_t l = {0};
  l.clock = tw_clock_new_manual();
  cr_assert_eq(tw_looping_call_new(&l.lc, l.clock, a_callback, &l, NULL), 0);
  tw_looping_call_start(l.lc, delay, 0, NULL);
  tw_looping_call_stop(l.lc);
  cr_assert_eq(l.n, 0);
  cr_assert_eq(tw_clock_pending(l.clock), 0);
  tw_looping_call_free(l.lc);
  tw_clock_free(l.clock);
}

TWT_TEST(task, test_stop_at_once) { stopping_test(0); }
TWT_TEST(task, test_stopping_before_delayed_start) { stopping_test(10); }

TWT_TEST(task, test_reset) {
  loop_t l = {0};
  l.clock = tw_clock_new_manual();
  cr_assert_eq(tw_looping_call_new(&l.lc, l.clock, a_callback, &l, NULL), 0);
  tw_looping_call_start(l.lc, 2, 0, NULL);
  tw_clock_advance(l.clock, 1);
  cr_assert_eq(tw_looping_call_reset(l.lc), 0);
  tw_clock_advance(l.clock, 1);
  cr_assert_eq(l.n, 0);
  tw_clock_advance(l.clock, 1);
  cr_assert_eq(l.n, 1);
  tw_looping_call_free(l.lc);
  tw_clock_free(l.clock);
}

/* ---- ReactorLoopTests (on the manual clock) ------------------------------- */

static const tw_error_type TEST_EXCEPTION = {"TestException", &TW_ERROR};

static tw_result foo_raises(void *arg) {
  loop_t *l = arg;
  if (l->stop_after) tw_looping_call_stop(l->lc);
  return tw_result_failure(tw_failure_new(&TEST_EXCEPTION, 0, "bar"));
}

static void failure_test(int stop_first) {
  loop_t l = {0};
  tw_deferred *d;
  l.clock = tw_clock_new_manual();
  cr_assert_eq(tw_looping_call_new(&l.lc, l.clock, foo_raises, &l, NULL), 0);
  l.stop_after = stop_first;
  tw_looping_call_start(l.lc, 0.1, 1, &d);
  failure_result_of(d, &TEST_EXCEPTION);
  cr_assert_eq(tw_looping_call_running(l.lc), 0);
  cr_assert_eq(tw_looping_call_stop(l.lc), TW_ENOTRUNNING);
  cr_assert_eq(tw_clock_pending(l.clock), 0);
  tw_deferred_unref(d);
  tw_looping_call_free(l.lc);
  tw_clock_free(l.clock);
}

TWT_TEST(task, test_failure) { failure_test(0); }
TWT_TEST(task, test_fail_and_stop) { failure_test(1); }

TWT_TEST(task, test_every_iteration) {
  loop_t l = {0};
  tw_deferred *d;
  l.clock = tw_clock_new_manual();
  cr_assert_eq(tw_looping_call_new(&l.lc, l.clock, a_callback, &l, NULL), 0);
  l.stop_after = 6;
  tw_looping_call_start(l.lc, 0, 1, &d);
  while (!tw_deferred_called(d)) tw_clock_advance(l.clock, 0);
  cr_assert_eq(l.n, 6);
  tw_deferred_unref(d);
  tw_looping_call_free(l.lc);
  tw_clock_free(l.clock);
}

static void stop_lc(void *lc) { tw_looping_call_stop(lc); }

TWT_TEST(task, test_stop_at_once_later) {
  loop_t l = {0};
  l.clock = tw_clock_new_manual();
  cr_assert_eq(tw_looping_call_new(&l.lc, l.clock, a_callback, &l, NULL), 0);
  tw_looping_call_start(l.lc, 1, 0, NULL);
  tw_clock_call_later(l.clock, 0, stop_lc, l.lc, NULL, NULL);
  tw_clock_advance(l.clock, 0);
  tw_clock_advance(l.clock, 5);
  cr_assert_eq(l.n, 0, "This task also should never get called.");
  tw_looping_call_free(l.lc);
  tw_clock_free(l.clock);
}

static tw_result stop_cb(tw_result r, void *lc) {
  tw_looping_call_stop(lc);
  return r;
}

static void fire_none(void *d) { tw_deferred_callback(d, tw_result_none()); }
static void unref_deferred(void *d) { tw_deferred_unref(d); }

static tw_result foo_wait(void *arg) {
  loop_t *l = arg;
  tw_deferred *d = tw_deferred_new(NULL, NULL);
  l->n++;
  tw_deferred_add_callback(d, stop_cb, l->lc);
  tw_clock_call_later(l->clock, 1, fire_none, tw_deferred_ref(d),
                      unref_deferred, NULL);
  return tw_result_deferred(d);
}

TWT_TEST(task, test_wait_deferred) {
  loop_t l = {0};
  const double timings[] = {0.2, 0.8};
  l.clock = tw_clock_new_manual();
  cr_assert_eq(tw_looping_call_new(&l.lc, l.clock, foo_wait, &l, NULL), 0);
  tw_looping_call_start(l.lc, 0.2, 1, NULL);
  tw_clock_pump(l.clock, timings, 2);
  cr_assert_eq(l.n, 1); /* never re-entered while its Deferred is pending */
  cr_assert_eq(tw_clock_pending(l.clock), 0);
  tw_looping_call_free(l.lc);
  tw_clock_free(l.clock);
}

static void errback_test_exception(void *d) {
  tw_deferred_errback(d, tw_failure_new(&TEST_EXCEPTION, 0, "later"));
}

static tw_result foo_fails_later(void *arg) {
  loop_t *l = arg;
  tw_deferred *d = tw_deferred_new(NULL, NULL);
  tw_clock_call_later(l->clock, 0.3, errback_test_exception, tw_deferred_ref(d),
                      unref_deferred, NULL);
  return tw_result_deferred(d);
}

TWT_TEST(task, test_failure_propagation) {
  loop_t l = {0};
  const double timings[] = {0.3};
  tw_deferred *d;
  l.clock = tw_clock_new_manual();
  cr_assert_eq(tw_looping_call_new(&l.lc, l.clock, foo_fails_later, &l, NULL),
               0);
  tw_looping_call_start(l.lc, 1, 1, &d);
  tw_clock_pump(l.clock, timings, 1);
  cr_assert_eq(tw_clock_pending(l.clock), 0);
  failure_result_of(d, &TEST_EXCEPTION);
  tw_deferred_unref(d);
  tw_looping_call_free(l.lc);
  tw_clock_free(l.clock);
}

TWT_TEST(task, test_deferred_with_count) {
  loop_t l = {0};
  const double timings[] = {0.2, 0.4};
  const double more[] = {0.2};
  l.clock = tw_clock_new_manual();
  cr_assert_eq(tw_looping_call_new_with_count(&l.lc, l.clock, count_callback,
                                              &l, NULL),
               0);
  l.block_on = tw_deferred_new(NULL, NULL);
  l.block_at = 1;
  tw_looping_call_start(l.lc, 0.2, 0, NULL);
  cr_assert_eq(l.n, 0);
  tw_clock_pump(l.clock, timings, 2);
  cr_assert_eq(l.n, 1);
  tw_deferred_callback(l.block_on, tw_result_none());
  tw_clock_pump(l.clock, more, 1);
  cr_assert_eq(l.n, 2);
  cr_assert_eq(l.counts[0], 1);
  cr_assert_eq(l.counts[1], 3);
  tw_deferred_unref(l.block_on);
  tw_looping_call_free(l.lc);
  tw_clock_free(l.clock);
}

/* ---- DeferLaterTests ------------------------------------------------------ */

typedef struct {
  const char *foo, *bar;
  int calls;
} later_args;

static tw_result later_callable(void *arg) {
  later_args *a = arg;
  a->calls++;
  trace("callable(%s, bar=%s)", a->foo, a->bar);
  return tw_result_value(V("flag"), NULL);
}

TWT_TEST(task, test_callback) {
  tw_clock *clock = tw_clock_new_manual();
  later_args a = {"foo", "bar", 0};
  tw_deferred *d;
  cr_assert_eq(tw_defer_later(clock, 3, later_callable, &a, NULL, &d), 0);
  tw_clock_advance(clock, 2);
  assert_trace("");
  tw_clock_advance(clock, 1);
  assert_trace("callable(foo, bar=bar)");
  cr_assert_str_eq(success_result_of(d), "flag");
  tw_deferred_unref(d);
  tw_clock_free(clock);
}

static tw_result raise_test_exception(void *arg) {
  (void)arg;
  return tw_result_failure(tw_failure_new(&TEST_EXCEPTION, 0, "raised"));
}

TWT_TEST(task, test_errback) {
  tw_clock *clock = tw_clock_new_manual();
  tw_deferred *d;
  tw_defer_later(clock, 1, raise_test_exception, NULL, NULL, &d);
  tw_clock_advance(clock, 1);
  failure_result_of(d, &TEST_EXCEPTION);
  tw_deferred_unref(d);
  tw_clock_free(clock);
}

#define freed twt_freed /* twtest.h */
#define count_free twt_count_free

TWT_TEST(task, test_cancel) {
  tw_clock *clock = tw_clock_new_manual();
  later_args a = {"x", "y", 0};
  tw_deferred *d;
  tw_defer_later(clock, 1, later_callable, &a, count_free, &d);
  tw_deferred_cancel(d);
  failure_result_of(d, &TW_CANCELLED_ERROR);
  cr_assert_eq(tw_clock_pending(clock), 0);
  cr_assert_eq(a.calls, 0);
  cr_assert_eq(freed, 1); /* fn will never run: arg_free has run */
  tw_clock_advance(clock, 5);
  cr_assert_eq(a.calls, 0);
  tw_deferred_unref(d);
  tw_clock_free(clock);
}

TWT_TEST(task, test_no_callback) {
  tw_clock *clock = tw_clock_new_manual();
  tw_deferred *d;
  tw_defer_later(clock, 2.0, NULL, NULL, NULL, &d);
  assert_no_result(d);
  tw_clock_advance(clock, 2.0);
  cr_assert_null(success_result_of(d));
  tw_deferred_unref(d);
  tw_clock_free(clock);
}

/* ==== twuv's own ============================================================ */

TWT_TEST(task, defer_later_arg_free_after_fn) {
  tw_clock *clock = tw_clock_new_manual();
  later_args a = {"x", "y", 0};
  tw_deferred *d;
  tw_defer_later(clock, 1, later_callable, &a, count_free, &d);
  tw_deferred_unref(d); /* the timer keeps it */
  tw_clock_advance(clock, 1);
  cr_assert_eq(a.calls, 1);
  cr_assert_eq(freed, 1);
  tw_clock_free(clock);
}

TWT_TEST(task, defer_later_clock_freed_first) {
  tw_clock *clock = tw_clock_new_manual();
  later_args a = {"x", "y", 0};
  tw_deferred *d;
  tw_defer_later(clock, 1, later_callable, &a, count_free, &d);
  tw_clock_free(clock); /* nothing will fire d now */
  assert_no_result(d);
  cr_assert_eq(freed, 0);
  tw_deferred_unref(d);
  cr_assert_eq(freed, 1);
  cr_assert_eq(a.calls, 0);
}

TWT_TEST(task, add_timeout_clock_freed_first) {
  tw_clock *clock = tw_clock_new_manual();
  tw_deferred *d = tw_deferred_new(NULL, NULL);
  tw_deferred_add_timeout(d, clock, 1, NULL, NULL);
  tw_clock_free(clock);
  tw_deferred_callback(d, tw_result_value(V("v"), NULL));
  cr_assert_str_eq(success_result_of(d), "v");
  tw_deferred_unref(d);
}

TWT_TEST(task, add_timeout_keeps_deferred_alive_until_timeout) {
  tw_clock *clock = tw_clock_new_manual();
  tw_deferred *d = tw_deferred_new(NULL, NULL);
  tw_deferred_add_timeout(d, clock, 1, NULL, NULL);
  tw_deferred_add_errback(d, rec_eat, "eb");
  tw_deferred_unref(d);
  tw_clock_advance(clock, 1);
  assert_trace("eb!TimeoutError:Deferred timed out after 1 seconds");
  tw_clock_free(clock);
}

/* Out of memory is TW_ENOMEM with *out NULL, and arg_free does not run. */
TWT_TEST(task, looping_call_new_out_of_memory) {
  tw_clock *clock = tw_clock_new_manual();
  tw_looping_call *lc = (void *)1;
  freed = 0;
  twt_alloc_fail_nth(1);
  cr_assert_eq(tw_looping_call_new(&lc, clock, a_callback, NULL, count_free),
               TW_ENOMEM);
  twt_alloc_fail_nth(0);
  cr_assert_null(lc);
  lc = (void *)1;
  twt_alloc_fail_nth(1);
  cr_assert_eq(tw_looping_call_new_with_count(&lc, clock, count_callback, NULL,
                                              count_free),
               TW_ENOMEM);
  twt_alloc_fail_nth(0);
  cr_assert_null(lc);
  cr_assert_eq(freed, 0);
  tw_clock_free(clock);
}

TWT_TEST(task, bad_input) {
  tw_clock *clock = tw_clock_new_manual();
  tw_deferred *d = tw_deferred_new(NULL, NULL), *out = (void *)1;
  tw_looping_call *lc;
  loop_t l = {0};
  cr_assert_eq(tw_deferred_add_timeout(NULL, clock, 1, NULL, NULL), TW_EINVAL);
  cr_assert_eq(tw_deferred_add_timeout(d, NULL, 1, NULL, NULL), TW_EINVAL);
  cr_assert_eq(tw_deferred_add_timeout(d, clock, -1, NULL, NULL), TW_EINVAL);
  cr_assert_eq(tw_deferred_add_timeout(d, clock, NAN, NULL, NULL), TW_EINVAL);
  cr_assert_eq(tw_deferred_add_timeout(d, clock, INFINITY, NULL, NULL),
               TW_EINVAL);
  cr_assert_eq(tw_defer_later(NULL, 1, NULL, NULL, count_free, &out),
               TW_EINVAL);
  cr_assert_null(out);
  cr_assert_eq(tw_defer_later(clock, -1, NULL, NULL, count_free, &out),
               TW_EINVAL);
  cr_assert_eq(tw_defer_later(clock, NAN, NULL, NULL, count_free, &out),
               TW_EINVAL);
  cr_assert_eq(tw_defer_later(clock, 1, NULL, NULL, count_free, NULL),
               TW_EINVAL);
  cr_assert_eq(freed, 0);
  lc = (tw_looping_call *)clock; /* not NULL: an error sets it to NULL */
  cr_assert_eq(tw_looping_call_new(&lc, NULL, a_callback, NULL, NULL),
               TW_EINVAL);
  cr_assert_null(lc);
  lc = (tw_looping_call *)clock;
  cr_assert_eq(tw_looping_call_new(&lc, clock, NULL, NULL, NULL), TW_EINVAL);
  cr_assert_null(lc);
  lc = (tw_looping_call *)clock;
  cr_assert_eq(tw_looping_call_new_with_count(&lc, clock, NULL, NULL, NULL),
               TW_EINVAL);
  cr_assert_null(lc);
  cr_assert_eq(tw_looping_call_new(NULL, clock, a_callback, NULL, NULL),
               TW_EINVAL);
  cr_assert_eq(tw_looping_call_new_with_count(NULL, clock, count_callback,
                                              NULL, NULL),
               TW_EINVAL);
  cr_assert_eq(tw_looping_call_start(NULL, 1, 1, NULL), TW_EINVAL);
  cr_assert_eq(tw_looping_call_stop(NULL), TW_EINVAL);
  cr_assert_eq(tw_looping_call_reset(NULL), TW_EINVAL);
  cr_assert_eq(tw_looping_call_running(NULL), 0);
  cr_assert(isnan(tw_looping_call_interval(NULL)));
  tw_looping_call_free(NULL);
  l.clock = clock;
  cr_assert_eq(tw_looping_call_new(&l.lc, clock, a_callback, &l, count_free),
               0);
  cr_assert_eq(tw_looping_call_stop(l.lc), TW_ENOTRUNNING);
  cr_assert_eq(tw_looping_call_reset(l.lc), TW_ENOTRUNNING);
  cr_assert_eq(tw_looping_call_start(l.lc, 1, 0, NULL), 0);
  cr_assert_eq(tw_looping_call_start(l.lc, 1, 0, NULL), TW_EALREADYRUNNING);
  cr_assert_eq(tw_clock_pending(clock), 1);
  tw_looping_call_free(l.lc);
  cr_assert_eq(freed, 1); /* the looping call's arg_free */
  cr_assert_eq(tw_clock_pending(clock), 0);
  tw_deferred_callback(d, tw_result_none());
  tw_deferred_unref(d);
  tw_clock_free(clock);
}

TWT_TEST(task, looping_call_start_while_previous_deferred_pending) {
  loop_t l = {0};
  tw_deferred *d1, *d2;
  l.clock = tw_clock_new_manual();
  cr_assert_eq(tw_looping_call_new(&l.lc, l.clock, a_callback, &l, NULL), 0);
  l.block_on = tw_deferred_new(NULL, NULL);
  l.block_at = 1;
  tw_looping_call_start(l.lc, 1, 1, &d1);
  tw_looping_call_stop(l.lc); /* fn's Deferred is pending: d1 waits for it */
  assert_no_result(d1);
  /* Twisted would start again and lose d1; twuv refuses until it fires. */
  cr_assert_eq(tw_looping_call_start(l.lc, 1, 1, &d2), TW_EALREADYRUNNING);
  tw_deferred_callback(l.block_on, tw_result_none());
  cr_assert_eq(tw_deferred_called(d1), 1);
  cr_assert_eq(tw_looping_call_start(l.lc, 1, 0, &d2), 0);
  tw_looping_call_free(l.lc);
  cr_assert_eq(tw_deferred_called(d2), 1);
  tw_deferred_unref(d1);
  tw_deferred_unref(d2);
  tw_deferred_unref(l.block_on);
  tw_clock_free(l.clock);
}

static tw_result free_self(void *arg) {
  loop_t *l = arg;
  l->n++;
  tw_looping_call_free(l->lc); /* deferred until fn returns */
  return tw_result_none();
}

TWT_TEST(task, looping_call_freed_from_inside_fn) {
  loop_t l = {0};
  tw_deferred *d;
  l.clock = tw_clock_new_manual();
  cr_assert_eq(tw_looping_call_new(&l.lc, l.clock, free_self, &l, count_free),
               0);
  tw_looping_call_start(l.lc, 1, 0, &d);
  tw_clock_advance(l.clock, 1);
  cr_assert_eq(l.n, 1);
  cr_assert_eq(freed, 1);
  cr_assert_eq(tw_deferred_called(d), 1); /* stopped: fired with the lc */
  cr_assert_eq(tw_clock_pending(l.clock), 0);
  tw_deferred_unref(d);
  tw_clock_free(l.clock);
}

TWT_TEST(task, looping_call_clock_freed_first) {
  loop_t l = {0};
  tw_deferred *d;
  l.clock = tw_clock_new_manual();
  cr_assert_eq(tw_looping_call_new(&l.lc, l.clock, a_callback, &l, count_free),
               0);
  tw_looping_call_start(l.lc, 1, 0, &d);
  tw_clock_free(l.clock);
  cr_assert_eq(freed, 0);
  tw_looping_call_free(l.lc);
  cr_assert_eq(freed, 1);
  tw_deferred_unref(d);
}

TWT_TEST(task, oom) {
  long n;
  for (n = 1; n < 10; n++) {
    tw_clock *clock = tw_clock_new_manual();
    tw_deferred *d = tw_deferred_new(NULL, NULL), *later = NULL, *ld = NULL;
    loop_t l = {0};
    int err;
    tw_clock_call_later(clock, 100, count_free, NULL, NULL, NULL);
    twt_alloc_fail_nth(n);
    err = tw_deferred_add_timeout(d, clock, 1, NULL, NULL);
    twt_alloc_fail_nth(0);
    cr_assert(err == 0 || err == TW_ENOMEM);
    cr_assert_eq(tw_clock_pending(clock), err == 0 ? 2 : 1, "n=%ld", n);
    twt_alloc_fail_nth(n);
    err = tw_defer_later(clock, 1, NULL, V("arg"), count_free, &later);
    twt_alloc_fail_nth(0);
    cr_assert(err == 0 || (err == TW_ENOMEM && later == NULL));
    cr_assert_eq(freed, 0, "arg_free ran on a failed submission (n=%ld)", n);
    l.clock = clock;
    cr_assert_eq(tw_looping_call_new(&l.lc, clock, a_callback, &l, NULL), 0);
    twt_alloc_fail_nth(n);
    err = tw_looping_call_start(l.lc, 1, 0, &ld);
    twt_alloc_fail_nth(0);
    cr_assert(err == 0 || (err == TW_ENOMEM && ld == NULL &&
                           tw_looping_call_running(l.lc) == 0));
    tw_clock_advance(clock, 1);
    if (later != NULL) {
      cr_assert_eq(freed, 1);
      freed = 0;
    }
    tw_looping_call_free(l.lc);
    tw_deferred_add_errback(d, eat, NULL);
    tw_deferred_unref(d);
    tw_deferred_unref(later);
    tw_deferred_unref(ld);
    tw_clock_free(clock);
    cr_assert_eq(twt_alloc_live(), 0, "n=%ld", n);
  }
}

/* ---- arg moved into the result (issue 13) ---------------------------------
 * deferLater's arg_free runs before the Deferred's later callbacks: a
 * function returning arg itself as the result moves it there instead (it
 * used to be freed under the callbacks). */

static int moved_freed;
static void moved_free(void *p) {
  moved_freed++;
  free(p);
}
static tw_result return_own_arg(void *arg) { return tw_result_value(arg, NULL); }
static tw_result read_moved(tw_result r, void *arg) {
  (void)arg;
  cr_assert_str_eq(r.u.value, "moved");
  cr_assert_eq(moved_freed, 0);
  return r;
}

TWT_TEST(task, defer_later_result_may_be_its_own_arg) {
  tw_clock *clock = tw_clock_new_manual();
  tw_deferred *d;
  moved_freed = 0;
  cr_assert_eq(tw_defer_later(clock, 1, return_own_arg, strdup("moved"),
                              moved_free, &d), 0);
  tw_deferred_add_callback(d, read_moved, NULL);
  tw_clock_advance(clock, 1);
  tw_deferred_add_callback(d, read_moved, NULL); /* later still fine */
  cr_assert_eq(moved_freed, 0);
  tw_deferred_unref(d); /* the result goes, and arg with it: once */
  cr_assert_eq(moved_freed, 1);
  tw_clock_free(clock);
}
