/*
 * tests/test_threads.c - the reactor's threads (threads.h).
 *
 * Ports twisted/test/test_threads.py (ReactorThreadsTests,
 * DeferredResultTests, DeferToThreadPoolTests, StartupBehaviorTests) and the
 * ThreadTestsBuilder tests of twisted/internet/test/test_threads.py, then
 * twuv's own promises: where Twisted hangs (blocking_call_from_thread on the
 * loop thread, a reactor that stops, a result that never comes) twuv
 * answers; cancelling defer_to_thread really stops queued work and releases
 * late results; nothing is leaked or reported as unhandled.
 *
 * No test sleeps to synchronise: threads wait on semaphores the test posts.
 */
#include <arpa/inet.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <uv.h>

/* White-box: the reactor's count of queued thread calls (calls_queued). */
#include "reactor-internal.h"
#include "twtest.h"

TWT_SUITE(threads);

static tw_reactor *R;
static int record_call;

static tw_reactor *new_reactor(unsigned flags) {
  tw_reactor *r = twt_new_reactor(flags);
  R = r;
  return r;
}

static void stop_call(void *arg) { cr_assert_eq(tw_reactor_stop(arg), 0); }

static tw_result stop_trigger(void *arg) {
  tw_reactor_stop(arg);
  return tw_result_none();
}

#define run(r) twt_run(r) /* twtest.h */
#define free_reactor(r) twt_free_reactor(r)

/* Stop the reactor from any thread. */
static void stop_from_anywhere(tw_reactor *r) {
  cr_assert_eq(tw_reactor_call_from_thread(r, stop_call, r, NULL), 0);
}

#define freed twt_freed /* twtest.h */
#define count_free twt_count_free

/* ---- ReactorThreadsTests (test_threads.py) -------------------------------- */

TWT_TEST(threads, test_suggest_thread_pool_size) {
  tw_reactor *r = new_reactor(0);
  tw_threadpool_statistics st;
  cr_assert_eq(tw_reactor_suggest_thread_pool_size(r, 34), 0);
  tw_threadpool_stats(tw_reactor_get_thread_pool(r), &st);
  cr_assert_eq(st.max_threads, 34);
  cr_assert_eq(tw_reactor_suggest_thread_pool_size(r, 4), 0);
  tw_threadpool_stats(tw_reactor_get_thread_pool(r), &st);
  cr_assert_eq(st.max_threads, 4);
  cr_assert_eq(st.min_threads, 0);
  cr_assert_eq(tw_reactor_suggest_thread_pool_size(r, -1), TW_EINVAL);
  free_reactor(r);
}

static int in_io_thread = -1;
static void note_thread_then_stop(void *arg) {
  in_io_thread = tw_reactor_in_loop_thread(arg);
  stop_from_anywhere(arg);
}

TWT_TEST(threads, test_call_in_thread) {
  /* The callable runs on a thread that is not the reactor's. */
  tw_reactor *r = new_reactor(0);
  cr_assert_eq(tw_reactor_call_in_thread(r, note_thread_then_stop, r, NULL), 0);
  run(r);
  cr_assert_eq(in_io_thread, 0);
  free_reactor(r);
}

static int ran_on_loop = -1;
static void on_loop(void *arg) {
  ran_on_loop = tw_reactor_in_loop_thread(arg);
  tw_reactor_stop(arg);
}

static void hop_back(void *arg) {
  cr_assert_eq(tw_reactor_call_from_thread(arg, on_loop, arg, NULL), 0);
}

TWT_TEST(threads, test_call_from_thread) {
  /* callInThread(callFromThread, f): f runs on the reactor thread. */
  tw_reactor *r = new_reactor(0);
  tw_reactor_call_in_thread(r, hop_back, r, NULL);
  run(r);
  cr_assert_eq(ran_on_loop, 1);
  free_reactor(r);
}

/* blockingCallFromThread from a pool thread; the results are checked on the
 * loop thread after the call returns. */
typedef struct {
  tw_result_fn fn;
  void *fn_arg;
  int rc;
  tw_result result;
  double timeout;
} blocking_t;

static void do_blocking(void *arg) {
  blocking_t *b = arg;
  b->rc = tw_blocking_call_from_thread(R, b->fn, b->fn_arg, &b->result,
                                       b->timeout);
  stop_from_anywhere(R);
}

static void run_blocking(blocking_t *b) {
  tw_reactor *r = new_reactor(0);
  b->rc = 99;
  if (b->timeout == 0) b->timeout = INFINITY;
  cr_assert_eq(tw_reactor_call_in_thread(r, do_blocking, b, NULL), 0);
  run(r);
  free_reactor(r);
}

static tw_result succeed_foo(void *arg) {
  (void)arg;
  return tw_result_deferred(tw_succeed("foo", NULL));
}

TWT_TEST(threads, test_blocking_call_from_thread) {
  blocking_t b = {succeed_foo, NULL, 0, {0}, 0};
  run_blocking(&b);
  cr_assert_eq(b.rc, 0);
  cr_assert_eq(b.result.kind, TW_RESULT_VALUE);
  cr_assert_str_eq(b.result.u.value, "foo");
}

static void fire_egg(void *arg) {
  tw_deferred_callback(arg, tw_result_value("egg", NULL));
}
static void unref_deferred(void *arg) { tw_deferred_unref(arg); }

static tw_result later_egg(void *arg) {
  tw_deferred *d = tw_deferred_new(NULL, NULL);
  (void)arg;
  tw_reactor_call_later(R, 0.01, fire_egg, tw_deferred_ref(d), unref_deferred,
                        NULL);
  return tw_result_deferred(d);
}

TWT_TEST(threads, test_async_blocking_call_from_thread) {
  blocking_t b = {later_egg, NULL, 0, {0}, 0};
  run_blocking(&b);
  cr_assert_eq(b.rc, 0);
  cr_assert_str_eq(b.result.u.value, "egg");
}

static tw_result fail_bar(void *arg) {
  (void)arg;
  return tw_result_deferred(
      tw_fail(tw_failure_new(&TW_RUNTIME_ERROR, 0, "bar")));
}

TWT_TEST(threads, test_error_blocking_call_from_thread) {
  blocking_t b = {fail_bar, NULL, 0, {0}, 0};
  run_blocking(&b);
  cr_assert_eq(b.rc, 0);
  cr_assert_eq(b.result.kind, TW_RESULT_FAILURE);
  cr_assert(tw_failure_check(b.result.u.failure, &TW_RUNTIME_ERROR));
  cr_assert_str_eq(tw_failure_message(b.result.u.failure), "bar");
  tw_result_release(b.result);
}

static void fire_spam(void *arg) {
  tw_deferred_errback(arg, tw_failure_new(&TW_RUNTIME_ERROR, 0, "spam"));
}

static tw_result later_spam(void *arg) {
  tw_deferred *d = tw_deferred_new(NULL, NULL);
  (void)arg;
  tw_reactor_call_later(R, 0.01, fire_spam, tw_deferred_ref(d), unref_deferred,
                        NULL);
  return tw_result_deferred(d);
}

TWT_TEST(threads, test_async_error_blocking_call_from_thread) {
  blocking_t b = {later_spam, NULL, 0, {0}, 0};
  run_blocking(&b);
  cr_assert_eq(b.rc, 0);
  cr_assert_str_eq(tw_failure_message(b.result.u.failure), "spam");
  tw_result_release(b.result);
}

static tw_result plain_value(void *arg) { return tw_result_value(arg, NULL); }

TWT_TEST(threads, blocking_call_returns_a_plain_value) {
  blocking_t b = {plain_value, "plain", 0, {0}, 0};
  run_blocking(&b);
  cr_assert_eq(b.rc, 0);
  cr_assert_str_eq(b.result.u.value, "plain");
}

/* ---- DeferredResultTests ------------------------------------------------------ */

static int order[16];
static int norder;
static uv_thread_t multiple_threads[16];

static void append_index(void *arg) {
  multiple_threads[norder] = uv_thread_self();
  order[norder++] = (int)(intptr_t)arg;
}

static void finished(void *arg) {
  (void)arg;
  stop_from_anywhere(R);
}

TWT_TEST(threads, test_call_multiple) {
  tw_reactor *r = new_reactor(0);
  tw_thread_call calls[11];
  int i;
  norder = 0;
  for (i = 0; i < 10; i++) {
    calls[i].fn = append_index;
    calls[i].arg = (void *)(intptr_t)i;
    calls[i].arg_free = count_free;
  }
  calls[10].fn = finished;
  calls[10].arg = NULL;
  calls[10].arg_free = NULL;
  freed = 0;
  cr_assert_eq(tw_call_multiple_in_thread(r, calls, 11), 0);
  run(r);
  cr_assert_eq(norder, 10);
  for (i = 0; i < 10; i++) {
    cr_assert_eq(order[i], i);
    cr_assert(uv_thread_equal(&multiple_threads[i], &multiple_threads[0]));
  }
  cr_assert_eq(freed, 10);
  free_reactor(r);
}

typedef struct {
  int x, y;
} add_args;

static tw_result add_xy(void *arg) {
  add_args *a = arg;
  return tw_result_value((void *)(intptr_t)(a->x + a->y), NULL);
}

static tw_result zero_division(void *arg) {
  (void)arg;
  return tw_result_failure(
      tw_failure_new(&TW_VALUE_ERROR, 0, "integer division or modulo by zero"));
}

static tw_result record_and_stop(tw_result r, void *arg) {
  tw_result *out = arg;
  *out = r; /* keep it: the test inspects it after run */
  tw_reactor_stop(R);
  return tw_result_none();
}

static tw_result kept;

static tw_result keep_result(tw_result r, void *arg) {
  *(tw_result *)arg = r;
  return tw_result_none();
}

static void defer_and_record(tw_reactor *r, tw_threadpool *tp, tw_result_fn fn,
                             void *arg) {
  tw_deferred *d = NULL;
  kept = tw_result_none();
  if (tp == NULL)
    cr_assert_eq(tw_defer_to_thread(r, fn, arg, NULL, &d), 0);
  else
    cr_assert_eq(tw_defer_to_thread_pool(r, tp, fn, arg, NULL, &d), 0);
  cr_assert_not_null(d);
  tw_deferred_add_both(d, record_and_stop, &kept);
  tw_deferred_unref(d);
}

TWT_TEST(threads, test_deferred_result) {
  tw_reactor *r = new_reactor(0);
  add_args a = {3, 4};
  tw_reactor_suggest_thread_pool_size(r, 8);
  defer_and_record(r, NULL, add_xy, &a);
  run(r);
  cr_assert_eq(kept.kind, TW_RESULT_VALUE);
  cr_assert_eq((intptr_t)kept.u.value, 7);
  free_reactor(r);
}

TWT_TEST(threads, test_deferred_failure) {
  tw_reactor *r = new_reactor(0);
  defer_and_record(r, NULL, zero_division, NULL);
  run(r);
  cr_assert_eq(kept.kind, TW_RESULT_FAILURE);
  cr_assert(tw_failure_check(kept.u.failure, &TW_VALUE_ERROR));
  tw_result_release(kept);
  free_reactor(r);
}

static tw_result then_fail_in_thread(tw_result r, void *arg) {
  tw_deferred *d = NULL;
  (void)arg;
  tw_result_release(r);
  cr_assert_eq(tw_defer_to_thread(R, zero_division, NULL, NULL, &d), 0);
  return tw_result_deferred(d);
}

TWT_TEST(threads, test_deferred_failure_after_success) {
  /* A successful deferToThread, then a failing one from its callback. */
  tw_reactor *r = new_reactor(0);
  add_args a = {1, 1};
  tw_deferred *d = NULL;
  kept = tw_result_none();
  cr_assert_eq(tw_defer_to_thread(r, add_xy, &a, NULL, &d), 0);
  tw_deferred_add_callback(d, then_fail_in_thread, NULL);
  tw_deferred_add_both(d, record_and_stop, &kept);
  tw_deferred_unref(d);
  run(r);
  cr_assert(tw_failure_check(kept.u.failure, &TW_VALUE_ERROR));
  tw_result_release(kept);
  free_reactor(r);
}

/* ---- DeferToThreadPoolTests ---------------------------------------------------- */

TWT_TEST(threads, test_defer_to_thread_pool_result) {
  tw_reactor *r = new_reactor(0);
  tw_threadpool *tp;
  add_args a = {3, 4};
  cr_assert_eq(tw_threadpool_new(&tp, 0, 8, "test-pool"), 0);
  cr_assert_eq(tw_threadpool_start(tp), 0);
  defer_and_record(r, tp, add_xy, &a);
  run(r);
  cr_assert_eq((intptr_t)kept.u.value, 7);
  cr_assert_eq(tw_threadpool_free(tp), 0);
  free_reactor(r);
}

TWT_TEST(threads, test_defer_to_thread_pool_failure) {
  tw_reactor *r = new_reactor(0);
  tw_threadpool *tp;
  cr_assert_eq(tw_threadpool_new(&tp, 0, 8, "test-pool"), 0);
  cr_assert_eq(tw_threadpool_start(tp), 0);
  defer_and_record(r, tp, zero_division, NULL);
  run(r);
  cr_assert(tw_failure_check(kept.u.failure, &TW_VALUE_ERROR));
  tw_result_release(kept);
  cr_assert_eq(tw_threadpool_free(tp), 0);
  free_reactor(r);
}

/* ---- StartupBehaviorTests ------------------------------------------------------- */

static int must_not_run;
static void never(void *arg) {
  (void)arg;
  must_not_run = 1;
}

TWT_TEST(threads, test_call_before_startup_unexecuted) {
  /* callInThread on a reactor that never runs: no thread is started, the
   * work never runs, and - twuv - its data is released when the reactor
   * goes away. */
  tw_reactor *r = new_reactor(0);
  tw_threadpool_statistics st;
  freed = 0;
  must_not_run = 0;
  cr_assert_eq(tw_reactor_call_in_thread(r, never, NULL, count_free), 0);
  tw_threadpool_stats(tw_reactor_get_thread_pool(r), &st);
  cr_assert_eq(st.workers, 0);
  cr_assert_eq(st.started, 0);
  free_reactor(r);
  cr_assert_eq(must_not_run, 0);
  cr_assert_eq(freed, 1);
}

/* ---- ThreadTestsBuilder (internet/test/test_threads.py) -------------------------- */

static int started_when_running = -1;
static tw_result check_pool_started(void *arg) {
  tw_threadpool_statistics st;
  tw_threadpool_stats(tw_reactor_get_thread_pool(arg), &st);
  started_when_running = st.started && !st.joined;
  tw_reactor_stop(arg);
  return tw_result_none();
}

TWT_TEST(threads, test_get_thread_pool) {
  tw_reactor *r = new_reactor(0);
  tw_threadpool *tp = tw_reactor_get_thread_pool(r);
  tw_threadpool_statistics st;
  cr_assert_not_null(tp);
  cr_assert_eq(tw_reactor_get_thread_pool(r), tp);
  tw_threadpool_stats(tp, &st);
  cr_assert_eq(st.started, 0);
  tw_reactor_call_when_running(r, check_pool_started, r, NULL, NULL);
  run(r);
  cr_assert_eq(started_when_running, 1);
  /* Stopped and joined during shutdown, then forgotten. */
  cr_assert_null(tw_reactor_get_thread_pool(r));
  free_reactor(r);
}

TWT_TEST(threads, test_suggest_thread_pool_size_before_pool_exists) {
  tw_reactor *r = new_reactor(0);
  tw_threadpool_statistics st;
  cr_assert_eq(tw_reactor_suggest_thread_pool_size(r, 17), 0);
  tw_threadpool_stats(tw_reactor_get_thread_pool(r), &st);
  cr_assert_eq(st.max_threads, 17);
  free_reactor(r);
}

static tw_result create_pool_while_running(void *arg) {
  cr_assert_not_null(tw_reactor_get_thread_pool(arg));
  tw_reactor_stop(arg);
  return tw_result_none();
}

TWT_TEST(threads, test_stop_thread_pool) {
  tw_reactor *r = new_reactor(0);
  cr_assert_not_null(tw_reactor_get_thread_pool(r));
  tw_reactor_call_when_running(r, stop_trigger, r, NULL, NULL);
  run(r);
  cr_assert_null(tw_reactor_get_thread_pool(r));
  free_reactor(r);
}

TWT_TEST(threads, test_stop_thread_pool_when_started_after_reactor_ran) {
  tw_reactor *r = new_reactor(0);
  tw_reactor_call_when_running(r, create_pool_while_running, r, NULL, NULL);
  run(r);
  cr_assert_null(tw_reactor_get_thread_pool(r));
  free_reactor(r);
}

TWT_TEST(threads, test_clean_up_thread_pool_even_before_reactor_is_run) {
  tw_reactor *r = new_reactor(0);
  tw_threadpool *first;
  freed = 0;
  must_not_run = 0;
  first = tw_reactor_get_thread_pool(r);
  cr_assert_not_null(first);
  cr_assert_eq(tw_reactor_call_in_thread(r, never, NULL, count_free), 0);
  cr_assert_eq(tw_reactor_fire_system_event(r, "shutdown"), 0);
  /* The pool was stopped and freed: its unrun work went to cleanup. */
  cr_assert_eq(freed, 1);
  cr_assert_eq(must_not_run, 0);
  free_reactor(r);
}

static int io_thread_in_job = -1;
static void note_io_thread(void *arg) {
  io_thread_in_job = tw_reactor_in_loop_thread(arg);
  stop_from_anywhere(arg);
}

TWT_TEST(threads, test_is_not_in_io_thread) {
  tw_reactor *r = new_reactor(0);
  tw_reactor_call_in_thread(r, note_io_thread, r, NULL);
  run(r);
  cr_assert_eq(io_thread_in_job, 0);
  free_reactor(r);
}

/* ---- A pool that cannot make a thread (issue 11) ------------------------------ */

static long failed_before;

/* Runs just before the pool's start (both "after startup", in order): the
 * start's grow step is allocated, the thread's worker is not. */
static tw_result fail_the_pool_thread(void *arg) {
  (void)arg;
  failed_before = twt_alloc_failed();
  twt_alloc_fail_nth(2);
  return tw_result_none();
}

/* Its Deferred used to never fire: the job waited for a thread that
 * nothing would create. It fails with the error now. */
TWT_TEST_OPTS(threads, defer_to_thread_fails_when_no_thread_can_be_made,
              .timeout = 60) {
  tw_reactor *r = new_reactor(0);
  cr_assert_eq(tw_reactor_add_system_event_trigger(
                   r, TW_PHASE_AFTER, "startup", fail_the_pool_thread, NULL,
                   NULL, NULL),
               0);
  defer_and_record(r, NULL, plain_value, "x"); /* held until the pool starts */
  run(r);
  twt_alloc_fail_nth(0);
  cr_assert_eq(twt_alloc_failed(), failed_before + 1);
  cr_assert_eq(twt_log_count_containing("could not start a worker thread"),
               1);
  cr_assert_eq(kept.kind, TW_RESULT_FAILURE);
  cr_assert_eq(tw_failure_code(kept.u.failure), TW_ENOMEM);
  tw_result_release(kept);
  cr_assert_eq(twt_log_flush(NULL), 1); /* the team's report */
  free_reactor(r);
}

/* ---- twuv: blocking_call_from_thread answers instead of hanging ----------------- */

static tw_result deadlock_check(void *arg) {
  tw_result res;
  (void)arg;
  cr_assert_eq(tw_blocking_call_from_thread(R, plain_value, "x", &res, INFINITY),
               TW_EDEADLK);
  cr_assert_eq(res.kind, TW_RESULT_VALUE);
  cr_assert_null(res.u.value);
  tw_reactor_stop(R);
  return tw_result_none();
}

TWT_TEST(threads, blocking_call_on_the_loop_thread_is_edeadlk) {
  tw_reactor *r = new_reactor(0);
  tw_reactor_call_when_running(r, deadlock_check, NULL, NULL, NULL);
  run(r);
  free_reactor(r);
}

static void blocking_not_running(void *arg) {
  tw_result res;
  int *rc = arg;
  *rc = tw_blocking_call_from_thread(R, plain_value, "x", &res, INFINITY);
}

TWT_TEST(threads, blocking_call_on_a_stopped_reactor_is_eshutdown) {
  tw_reactor *r = new_reactor(0);
  uv_thread_t t;
  int rc = 0;
  cr_assert_eq(tw_reactor_call_when_running(r, stop_trigger, r, NULL, NULL),
               0);
  run(r);
  cr_assert_eq(uv_thread_create(&t, blocking_not_running, &rc), 0);
  uv_thread_join(&t);
  cr_assert_eq(rc, TW_ESHUTDOWN);
  free_reactor(r);
}

/* ---- blocking_call_from_thread before the reactor runs -------------------- */

/* Thread calls counted in the reactor's queue (white-box: no public
 * figure says whether a call from another thread has arrived). */
static uint64_t calls_queued(tw_reactor *r) {
  return tw__reactor_calls_queued(r);
}

static atomic_int early_returned, early_fn_ran;

static tw_result early_value(void *arg) {
  atomic_store(&early_fn_ran, 1);
  return tw_result_value(arg, NULL);
}

static void call_before_run(void *arg) {
  blocking_t *b = arg;
  b->rc = tw_blocking_call_from_thread(R, b->fn, b->fn_arg, &b->result,
                                       b->timeout);
  atomic_store(&early_returned, 1);
}

/* Stop once the early caller has its answer. Not "queued behind it": its
 * call is counted before it is pushed, so a call made meanwhile from
 * another thread may be drained first (calls from different threads have
 * no order); a stop drained first would release the caller with
 * TW_ESHUTDOWN (seen under valgrind). So poll, from the loop. */
static void stop_when_answered(void *arg) {
  (void)arg;
  if (atomic_load(&early_returned))
    cr_assert_eq(tw_reactor_stop(R), 0);
  else
    cr_assert_eq(tw_reactor_call_later(R, 0.001, stop_when_answered, NULL,
                                       NULL, NULL),
                 0);
}

/* Start a thread whose blocking call is made before the reactor runs, and
 * wait (no sleep: a yield loop on a count) until the call has reached the
 * reactor's queue - or was answered at once, which is the bug. */
static void start_early_caller(uv_thread_t *t, blocking_t *b) {
  atomic_store(&early_returned, 0);
  atomic_store(&early_fn_ran, 0);
  cr_assert_eq(uv_thread_create(t, call_before_run, b), 0);
  while (calls_queued(R) == 0 && !atomic_load(&early_returned)) sched_yield();
}

/* Twisted's blockingCallFromThread made before reactor.run() waits for the
 * reactor to run (callFromThread queues it); twuv used to refuse it with
 * TW_ESHUTDOWN at once, racing with tw_reactor_run. */
TWT_TEST_OPTS(threads, blocking_call_before_run_waits_for_the_reactor,
              .timeout = 120) {
  tw_reactor *r = new_reactor(0);
  blocking_t b = {early_value, "early", 99, {0}, INFINITY};
  uv_thread_t t;
  start_early_caller(&t, &b);
  if (atomic_load(&early_returned)) {
    uv_thread_join(&t);
    cr_assert_fail("answered before the reactor ran: %s", tw_err_name(b.rc));
  }
  cr_assert_eq(tw_reactor_call_from_thread(r, stop_when_answered, NULL, NULL),
               0);
  run(r);
  uv_thread_join(&t);
  cr_assert_eq(b.rc, 0);
  cr_assert_eq(b.result.kind, TW_RESULT_VALUE);
  cr_assert_str_eq(b.result.u.value, "early");
  tw_result_release(b.result);
  free_reactor(r);
}

/* ... and a reactor freed without ever running releases it (never a hang),
 * without running fn. */
TWT_TEST_OPTS(threads, blocking_call_before_run_is_released_by_free,
              .timeout = 120) {
  tw_reactor *r = new_reactor(0);
  blocking_t b = {early_value, "early", 99, {0}, INFINITY};
  uv_thread_t t;
  start_early_caller(&t, &b);
  free_reactor(r);
  uv_thread_join(&t);
  cr_assert_eq(b.rc, TW_ESHUTDOWN);
  cr_assert_eq(b.result.kind, TW_RESULT_VALUE);
  cr_assert_null(b.result.u.value);
  cr_assert_eq(atomic_load(&early_fn_ran), 0);
}

static uv_sem_t entered;
static tw_deferred *held[2];
static int nheld;
static tw_result never_fires(void *arg) {
  /* Held by the test, so it could fire - it just does not. */
  tw_deferred *d = tw_deferred_new(NULL, NULL);
  (void)arg;
  held[nheld++] = tw_deferred_ref(d);
  uv_sem_post(&entered);
  return tw_result_deferred(d);
}

typedef struct {
  int rc;
  tw_result res;
  double timeout;
} waiter_t;

static void wait_forever(void *arg) {
  waiter_t *w = arg;
  w->rc = tw_blocking_call_from_thread(R, never_fires, NULL, &w->res,
                                       w->timeout);
}

static void stop_after_entered(void *arg) {
  (void)arg;
  tw_reactor_stop(R);
}

static void start_waiters(void *arg) {
  waiter_t *w = arg;
  static uv_thread_t t[2];
  int i;
  for (i = 0; i < 2; i++)
    cr_assert_eq(uv_thread_create(&t[i], wait_forever, &w[i]), 0);
  /* Both are inside (their fn ran on the loop) before the reactor stops. */
  uv_sem_wait(&entered);
  uv_sem_wait(&entered);
  tw_reactor_call_from_thread(R, stop_after_entered, NULL, NULL);
  for (i = 0; i < 2; i++) uv_thread_join(&t[i]);
}

/* The callers may start before the reactor runs: their calls wait for it
 * (before the fix for issue 11 they were refused, and the starter waited
 * for ever for callers that never entered). */
TWT_TEST_OPTS(threads, shutdown_releases_blocked_callers, .timeout = 120) {
  /* Twisted leaves them blocked for ever. */
  tw_reactor *r = new_reactor(0);
  waiter_t w[2] = {{0, {0}, INFINITY}, {0, {0}, INFINITY}};
  uv_thread_t starter;
  nheld = 0;
  cr_assert_eq(uv_sem_init(&entered, 0), 0);
  cr_assert_eq(uv_thread_create(&starter, start_waiters, w), 0);
  run(r);
  uv_thread_join(&starter);
  cr_assert_eq(w[0].rc, TW_ESHUTDOWN);
  cr_assert_eq(w[1].rc, TW_ESHUTDOWN);
  tw_deferred_unref(held[0]);
  tw_deferred_unref(held[1]);
  free_reactor(r);
  uv_sem_destroy(&entered);
}

/* Released before the before-shutdown triggers end: the trigger here waits
 * for the released caller, so a later release would hang the test. */
static tw_deferred *shutdown_gate, *never_fired;

static tw_result slow_before_shutdown(void *arg) {
  (void)arg;
  shutdown_gate = tw_deferred_new(NULL, NULL);
  return tw_result_deferred(tw_deferred_ref(shutdown_gate));
}

static void open_shutdown_gate(void *arg) {
  (void)arg;
  tw_deferred_callback(shutdown_gate, tw_result_none());
}

static tw_result stop_while_a_caller_waits(void *arg) {
  (void)arg;
  never_fired = tw_deferred_new(NULL, NULL);
  cr_assert_eq(tw_reactor_stop(R), 0);
  return tw_result_deferred(tw_deferred_ref(never_fired));
}

static void caller_released_at_stop(void *arg) {
  waiter_t *w = arg;
  w->rc = tw_blocking_call_from_thread(R, stop_while_a_caller_waits, NULL,
                                       &w->res, INFINITY);
  cr_assert_eq(tw_reactor_call_from_thread(R, open_shutdown_gate, NULL, NULL),
               0);
}

static tw_result start_released_caller(void *arg) {
  cr_assert_eq(tw_reactor_call_in_thread(R, caller_released_at_stop, arg,
                                         NULL),
               0);
  return tw_result_none();
}

/* A regression would hang: a timeout keeps the rest of the suite. */
TWT_TEST_OPTS(threads, blocked_callers_are_released_before_the_shutdown_triggers, .timeout = 120) {
  tw_reactor *r = new_reactor(0);
  waiter_t w = {0, {0}, INFINITY};
  shutdown_gate = never_fired = NULL;
  cr_assert_eq(tw_reactor_add_system_event_trigger(
                   r, TW_PHASE_BEFORE, "shutdown", slow_before_shutdown, NULL,
                   NULL, NULL),
               0);
  tw_reactor_call_when_running(r, start_released_caller, &w, NULL, NULL);
  run(r);
  cr_assert_eq(w.rc, TW_ESHUTDOWN);
  cr_assert_eq(tw_deferred_called(shutdown_gate), 1);
  tw_deferred_unref(shutdown_gate);
  tw_deferred_unref(never_fired);
  free_reactor(r);
}

static int cancelled_on_timeout;
static void note_cancel(tw_deferred *d, void *arg) {
  (void)d;
  (void)arg;
  cancelled_on_timeout = 1;
}

static tw_deferred *slow;
static tw_result slow_deferred(void *arg) {
  (void)arg;
  slow = tw_deferred_new(note_cancel, NULL);
  return tw_result_deferred(tw_deferred_ref(slow));
}

static int timeout_tries;
static void timed_out_check(void *arg);

static void blocking_with_timeout(void *arg) {
  waiter_t *w = arg;
  w->rc = tw_blocking_call_from_thread(R, slow_deferred, NULL, &w->res,
                                       w->timeout);
  /* Queued behind the call's start and its cancel: sees what they did. */
  cr_assert_eq(tw_reactor_call_from_thread(R, timed_out_check, w, NULL), 0);
}

static void timed_out_check(void *arg) {
  waiter_t *w = arg;
  cr_assert_eq(w->rc, TW_ETIMEDOUT);
  cr_assert_eq(w->res.kind, TW_RESULT_VALUE);
  cr_assert_null(w->res.u.value);
  if (slow != NULL) {
    cr_assert_eq(cancelled_on_timeout, 1);
    cr_assert_eq(tw_reactor_stop(R), 0);
    return;
  }
  /* The deadline passed before the loop reached the call (a slow machine,
   * valgrind): the function never ran and there was nothing to cancel.
   * Again, with twice the time, until the function runs in time. */
  cr_assert_eq(cancelled_on_timeout, 0);
  cr_assert_lt(++timeout_tries, 24);
  w->timeout *= 2;
  cr_assert_eq(tw_reactor_call_in_thread(R, blocking_with_timeout, w, NULL), 0);
}

TWT_TEST(threads, blocking_call_times_out_and_cancels) {
  tw_reactor *r = new_reactor(0);
  waiter_t w = {0, {0}, 0.01};
  cancelled_on_timeout = 0;
  timeout_tries = 0;
  slow = NULL;
  cr_assert_eq(tw_reactor_call_in_thread(r, blocking_with_timeout, &w, NULL), 0);
  run(r);
  /* The CancelledError that followed was consumed, not reported. */
  tw_deferred_unref(slow);
  free_reactor(r);
}

static uv_sem_t timed_out;
static int late_fn_ran;

static tw_result note_late_run(void *arg) {
  (void)arg;
  late_fn_ran = 1;
  return tw_result_none();
}

static void time_out_while_the_loop_is_busy(void *arg) {
  waiter_t *w = arg;
  w->rc = tw_blocking_call_from_thread(R, note_late_run, NULL, &w->res,
                                       w->timeout);
  uv_sem_post(&timed_out);
  stop_from_anywhere(R);
}

static tw_result hold_the_loop(void *arg) {
  cr_assert_eq(tw_reactor_call_in_thread(R, time_out_while_the_loop_is_busy,
                                         arg, NULL), 0);
  /* The call cannot start while this callback runs: it must time out. */
  uv_sem_wait(&timed_out);
  return tw_result_none();
}

/* A regression would hang: a timeout keeps the rest of the suite. */
TWT_TEST_OPTS(threads, blocking_call_that_timed_out_before_it_started_never_runs, .timeout = 120) {
  /* Otherwise a caller told TW_ETIMEDOUT could not know whether it ran. */
  tw_reactor *r = new_reactor(0);
  waiter_t w = {0, {0}, 0.001};
  late_fn_ran = 0;
  cr_assert_eq(uv_sem_init(&timed_out, 0), 0);
  tw_reactor_call_when_running(r, hold_the_loop, &w, NULL, NULL);
  run(r);
  cr_assert_eq(w.rc, TW_ETIMEDOUT);
  cr_assert_eq(late_fn_ran, 0);
  uv_sem_destroy(&timed_out);
  free_reactor(r);
}

static tw_result dropped_deferred(void *arg) {
  (void)arg;
  return tw_result_deferred(tw_deferred_new(NULL, NULL));
}

TWT_TEST(threads, blocking_call_on_a_deferred_nobody_can_fire_is_ecancelled) {
  /* Twisted waits for ever on a Deferred nothing references. */
  blocking_t b = {dropped_deferred, NULL, 0, {0}, 0};
  run_blocking(&b);
  cr_assert_eq(b.rc, TW_ECANCELLED);
}

TWT_TEST(threads, blocking_call_bad_input) {
  tw_reactor *r = new_reactor(0);
  tw_result res;
  cr_assert_eq(tw_blocking_call_from_thread(NULL, plain_value, NULL, &res, 1), TW_EINVAL);
  cr_assert_eq(tw_blocking_call_from_thread(r, NULL, NULL, &res, 1), TW_EINVAL);
  cr_assert_eq(tw_blocking_call_from_thread(r, plain_value, NULL, NULL, 1), TW_EINVAL);
  cr_assert_eq(tw_blocking_call_from_thread(r, plain_value, NULL, &res, -1), TW_EINVAL);
  cr_assert_eq(tw_blocking_call_from_thread(r, plain_value, NULL, &res, NAN), TW_EINVAL);
  free_reactor(r);
}

/* ---- twuv: cancelling defer_to_thread --------------------------------------------- */

static uv_sem_t gate, in_job;
static int job_ran;

static void block_pool(void *arg) {
  (void)arg;
  uv_sem_post(&in_job);
  uv_sem_wait(&gate);
}

static tw_result job_that_must_not_run(void *arg) {
  (void)arg;
  job_ran = 1;
  return tw_result_none();
}

static tw_result kept_after_cancel;
static tw_result keep(tw_result r, void *arg) {
  (void)arg;
  kept_after_cancel = r;
  return tw_result_none();
}

static void release_gate_and_stop(void *arg) {
  (void)arg;
  uv_sem_post(&gate);
  tw_reactor_call_later(R, 0.01, stop_call, R, NULL, NULL);
}

static tw_result cancel_queued(void *arg) {
  tw_deferred *d = NULL;
  (void)arg;
  /* One thread, busy: the job waits in the backlog. */
  cr_assert_eq(tw_reactor_call_in_thread(R, block_pool, NULL, NULL), 0);
  uv_sem_wait(&in_job);
  cr_assert_eq(tw_defer_to_thread(R, job_that_must_not_run, NULL, count_free, &d), 0);
  tw_deferred_add_both(d, keep, NULL);
  cr_assert_eq(tw_deferred_cancel(d), 0);
  /* CancelledError at once. */
  cr_assert_eq(kept_after_cancel.kind, TW_RESULT_FAILURE);
  tw_deferred_unref(d);
  tw_reactor_call_later(R, 0, release_gate_and_stop, NULL, NULL, NULL);
  return tw_result_none();
}

TWT_TEST(threads, cancel_removes_work_that_has_not_started) {
  tw_reactor *r = new_reactor(0);
  cr_assert_eq(uv_sem_init(&gate, 0), 0);
  cr_assert_eq(uv_sem_init(&in_job, 0), 0);
  job_ran = 0;
  freed = 0;
  kept_after_cancel = tw_result_none();
  tw_reactor_suggest_thread_pool_size(r, 1);
  tw_reactor_call_when_running(r, cancel_queued, NULL, NULL, NULL);
  run(r);
  cr_assert_eq(job_ran, 0);
  cr_assert_eq(freed, 1); /* its arg was released all the same */
  cr_assert(tw_failure_check(kept_after_cancel.u.failure, &TW_CANCELLED_ERROR));
  tw_result_release(kept_after_cancel);
  free_reactor(r);
  uv_sem_destroy(&gate);
  uv_sem_destroy(&in_job);
}

static int late_value_released;
static void release_late(void *v) {
  (void)v;
  late_value_released = 1;
}

static tw_result job_blocks_then_returns(void *arg) {
  (void)arg;
  uv_sem_post(&in_job);
  uv_sem_wait(&gate);
  return tw_result_value("late", release_late);
}

static tw_result cancel_running(void *arg) {
  tw_deferred *d = NULL;
  (void)arg;
  cr_assert_eq(tw_defer_to_thread(R, job_blocks_then_returns, NULL, NULL, &d), 0);
  tw_deferred_add_both(d, keep, NULL);
  uv_sem_wait(&in_job); /* it runs */
  cr_assert_eq(tw_deferred_cancel(d), 0);
  cr_assert(tw_failure_check(kept_after_cancel.u.failure, &TW_CANCELLED_ERROR));
  tw_deferred_unref(d);
  tw_reactor_call_later(R, 0, release_gate_and_stop, NULL, NULL, NULL);
  return tw_result_none();
}

TWT_TEST(threads, cancel_while_running_fails_now_and_releases_the_late_result) {
  tw_reactor *r = new_reactor(0);
  cr_assert_eq(uv_sem_init(&gate, 0), 0);
  cr_assert_eq(uv_sem_init(&in_job, 0), 0);
  late_value_released = 0;
  kept_after_cancel = tw_result_none();
  tw_reactor_call_when_running(r, cancel_running, NULL, NULL, NULL);
  run(r); /* the pool is joined during shutdown: the late result is in */
  cr_assert_eq(late_value_released, 1);
  tw_result_release(kept_after_cancel);
  free_reactor(r);
  uv_sem_destroy(&gate);
  uv_sem_destroy(&in_job);
}

/* ---- twuv: call_multiple skips after a failure ---------------------------------- */

static void fail_call(void *arg) {
  (void)arg;
  tw_work_fail(tw_failure_new(&TW_VALUE_ERROR, 0, "second call failed"));
}

TWT_TEST(threads, call_multiple_skips_the_rest_after_a_failure) {
  tw_reactor *r = new_reactor(0);
  tw_thread_call calls[4] = {{append_index, (void *)(intptr_t)0, count_free},
                             {fail_call, NULL, count_free},
                             {append_index, (void *)(intptr_t)2, count_free},
                             {finished, NULL, count_free}};
  norder = 0;
  freed = 0;
  cr_assert_eq(tw_call_multiple_in_thread(r, calls, 4), 0);
  /* "finished" is skipped too: stop from the loop once the pool is idle. */
  tw_reactor_call_later(r, 0.05, stop_call, r, NULL, NULL);
  run(r);
  cr_assert_eq(norder, 1);
  cr_assert_eq(freed, 4);
  cr_assert_eq(twt_log_flush(&TW_VALUE_ERROR), 1);
  free_reactor(r);
}

TWT_TEST(threads, call_multiple_bad_input) {
  tw_reactor *r = new_reactor(0);
  tw_thread_call bad[1] = {{NULL, NULL, count_free}};
  freed = 0;
  cr_assert_eq(tw_call_multiple_in_thread(NULL, bad, 0), TW_EINVAL);
  cr_assert_eq(tw_call_multiple_in_thread(r, NULL, 1), TW_EINVAL);
  cr_assert_eq(tw_call_multiple_in_thread(r, bad, 1), TW_EINVAL);
  cr_assert_eq(tw_call_multiple_in_thread(r, NULL, 0), 0);
  cr_assert_eq(freed, 0);
  free_reactor(r);
}

/* ---- twuv: lifetime and bad input --------------------------------------------------- */

TWT_TEST(threads, after_stop_new_work_is_refused) {
  tw_reactor *r = new_reactor(0);
  tw_deferred *d = (tw_deferred *)&d;
  tw_reactor_call_when_running(r, stop_trigger, r, NULL, NULL);
  run(r);
  freed = 0;
  cr_assert_eq(tw_reactor_call_in_thread(r, never, NULL, count_free), TW_ESHUTDOWN);
  cr_assert_eq(tw_defer_to_thread(r, plain_value, NULL, count_free, &d), TW_ESHUTDOWN);
  cr_assert_null(d);
  cr_assert_eq(tw_reactor_suggest_thread_pool_size(r, 3), TW_ESHUTDOWN);
  cr_assert_eq(freed, 0);
  free_reactor(r);
}

TWT_TEST(threads, free_waits_for_work_on_a_foreign_pool) {
  tw_reactor *r = new_reactor(0);
  tw_threadpool *tp;
  tw_deferred *d;
  cr_assert_eq(uv_sem_init(&gate, 0), 0);
  cr_assert_eq(uv_sem_init(&in_job, 0), 0);
  cr_assert_eq(tw_threadpool_new(&tp, 1, 1, "foreign"), 0);
  cr_assert_eq(tw_threadpool_start(tp), 0);
  cr_assert_eq(tw_defer_to_thread_pool(r, tp, job_blocks_then_returns, NULL,
                                       NULL, &d), 0);
  uv_sem_wait(&in_job);
  cr_assert_eq(tw_reactor_free(r), TW_EBUSY); /* would be called back */
  uv_sem_post(&gate);
  cr_assert_eq(tw_threadpool_stop(tp), 0);
  /* The result came back to a reactor that never runs: parked, and free
   * (on this, the loop, thread) tells the Deferred the result is lost. */
  kept = tw_result_none();
  tw_deferred_add_both(d, keep_result, &kept);
  tw_deferred_unref(d);
  free_reactor(r);
  cr_assert(tw_failure_check(kept.u.failure, &TW_SHUTDOWN_ERROR));
  tw_result_release(kept);
  cr_assert_eq(tw_threadpool_free(tp), 0);
  uv_sem_destroy(&gate);
  uv_sem_destroy(&in_job);
}

TWT_TEST(threads, bad_input_returns_codes) {
  tw_reactor *r = new_reactor(0);
  tw_deferred *d = (tw_deferred *)&d;
  freed = 0;
  cr_assert_null(tw_reactor_get_thread_pool(NULL));
  cr_assert_eq(tw_reactor_call_in_thread(NULL, never, NULL, count_free), TW_EINVAL);
  cr_assert_eq(tw_reactor_call_in_thread(r, NULL, NULL, count_free), TW_EINVAL);
  cr_assert_eq(tw_reactor_suggest_thread_pool_size(NULL, 3), TW_EINVAL);
  cr_assert_eq(tw_defer_to_thread(NULL, plain_value, NULL, count_free, &d), TW_EINVAL);
  cr_assert_null(d);
  cr_assert_eq(tw_defer_to_thread(r, NULL, NULL, count_free, &d), TW_EINVAL);
  cr_assert_eq(tw_defer_to_thread(r, plain_value, NULL, count_free, NULL), TW_EINVAL);
  cr_assert_eq(tw_defer_to_thread_pool(r, NULL, plain_value, NULL, count_free, &d), TW_EINVAL);
  cr_assert_eq(freed, 0);
  free_reactor(r);
}

TWT_TEST(threads, out_of_memory_changes_nothing) {
  tw_reactor *r = new_reactor(0);
  tw_deferred *d;
  int i, rc;
  freed = 0;
  tw_reactor_get_thread_pool(r);
  for (i = 1; i < 6; i++) {
    twt_alloc_fail_nth(i);
    rc = tw_defer_to_thread(r, plain_value, NULL, count_free, &d);
    twt_alloc_fail_nth(0);
    if (rc == 0) {
      tw_deferred_unref(d);
      break;
    }
    cr_assert_eq(rc, TW_ENOMEM);
    cr_assert_null(d);
  }
  cr_assert_eq(freed, 0);
  free_reactor(r); /* the job that got through is cleaned up */
  cr_assert_eq(freed, 1);
  /* ...and its Deferred, dropped by the test, reports the lost result. */
  cr_assert_eq(twt_log_flush(&TW_SHUTDOWN_ERROR), 1);
}

/* ---- regressions ------------------------------------------------------------ */

TWT_TEST(threads, cancel_after_the_reactor_dropped_the_work) {
  /* The job was cleaned up with the reactor: its Deferred is told so, and
   * a later cancel finds it fired (no canceller reaching freed memory). */
  tw_reactor *r = new_reactor(0);
  tw_deferred *d;
  kept = tw_result_none();
  cr_assert_eq(tw_defer_to_thread(r, plain_value, "x", NULL, &d), 0);
  tw_deferred_add_both(d, keep_result, &kept);
  free_reactor(r);
  cr_assert(tw_failure_check(kept.u.failure, &TW_SHUTDOWN_ERROR));
  cr_assert_eq(tw_deferred_called(d), 1);
  cr_assert_eq(tw_deferred_cancel(d), 0);
  tw_result_release(kept);
  tw_deferred_unref(d);
}

TWT_TEST(threads, blocking_call_with_a_huge_timeout_waits_for_the_result) {
  blocking_t b = {later_egg, NULL, 0, {0}, 1e300};
  run_blocking(&b);
  cr_assert_eq(b.rc, 0);
  cr_assert_str_eq(b.result.u.value, "egg");
}

static tw_result defer_in_after_shutdown(void *arg) {
  tw_deferred *d = (tw_deferred *)&d;
  (void)arg;
  /* The pool is joined by now: work submitted here could never come back. */
  cr_assert_eq(tw_defer_to_thread(R, plain_value, NULL, NULL, &d), TW_ESHUTDOWN);
  cr_assert_null(tw_reactor_get_thread_pool(R));
  record_call = 1;
  return tw_result_none();
}

TWT_TEST(threads, work_submitted_after_the_shutdown_crash_is_refused) {
  tw_reactor *r = new_reactor(0);
  record_call = 0;
  tw_reactor_add_system_event_trigger(r, TW_PHASE_AFTER, "shutdown",
                                      defer_in_after_shutdown, NULL, NULL, NULL);
  tw_reactor_call_when_running(r, stop_trigger, r, NULL, NULL);
  run(r);
  cr_assert_eq(record_call, 1);
  free_reactor(r);
}

/* ---- twuv: the Deferred lives in the job's memory ----------------------------- */

static tw_result append_digit(tw_result r, void *arg) {
  /* r carries a counter; each callback appends its digit */
  intptr_t v = (intptr_t)r.u.value * 10 + (intptr_t)arg;
  return tw_result_value((void *)v, NULL);
}

static tw_result zero_in_thread(void *arg) {
  (void)arg;
  return tw_result_value((void *)(intptr_t)0, NULL);
}

TWT_TEST(threads, defer_to_thread_deferred_outlives_its_job) {
  /* The caller keeps its reference past the job's end and past the
   * reactor's free, and adds more callbacks than the job has room for. */
  tw_reactor *r = new_reactor(0);
  tw_deferred *d = NULL;
  intptr_t i;
  kept = tw_result_none();
  cr_assert_eq(tw_defer_to_thread(r, zero_in_thread, NULL, NULL, &d), 0);
  tw_deferred_add_callback(d, append_digit, (void *)(intptr_t)1);
  tw_deferred_add_both(d, record_and_stop, &kept);
  run(r);
  free_reactor(r);
  cr_assert_eq(kept.kind, TW_RESULT_VALUE);
  cr_assert_eq((intptr_t)kept.u.value, 1);
  cr_assert(tw_deferred_called(d));
  /* Fired, so these run at once, in order, from the result None (0). */
  for (i = 1; i <= 5; i++)
    cr_assert_eq(tw_deferred_add_callback(d, append_digit, (void *)i), 0);
  cr_assert_eq(tw_deferred_add_both(d, keep_result, &kept), 0);
  cr_assert_eq((intptr_t)kept.u.value, 12345);
  tw_deferred_unref(d);
}

TWT_TEST(threads, defer_to_thread_unhandled_failure_is_reported_when_dropped) {
  /* Nobody handled the failure: the Deferred reports it when it goes, as any
   * Deferred does. */
  tw_reactor *r = new_reactor(0);
  tw_deferred *d = NULL;
  cr_assert_eq(tw_defer_to_thread(r, zero_division, NULL, NULL, &d), 0);
  cr_assert_eq(tw_deferred_add_callback(d, append_digit, (void *)1), 0);
  tw_deferred_unref(d);
  tw_reactor_call_when_running(r, stop_trigger, r, NULL, NULL);
  /* stop_trigger runs before the job's result can come back, but the pool
   * is joined during shutdown and its result is delivered (or failed with
   * ShutdownError) before run returns; either way a failure is reported. */
  run(r);
  free_reactor(r);
  cr_assert_eq(twt_log_flush(&TW_VALUE_ERROR) +
                   twt_log_flush(&TW_SHUTDOWN_ERROR),
               1);
}

TWT_TEST(threads, defer_to_thread_deferred_used_after_its_last_unref) {
#if TW_TEST_DEBUG_DEFERREDS
  /* Debug builds catch it as for any Deferred: the job's node stays while
   * its Deferred is in quarantine (which holds while a Deferred lives). */
  tw_deferred *keeper = tw_deferred_new(NULL, NULL);
  tw_reactor *r = new_reactor(0);
  tw_deferred *d = NULL;
  kept = tw_result_none();
  cr_assert_eq(tw_defer_to_thread(r, zero_in_thread, NULL, NULL, &d), 0);
  cr_assert_eq(tw_deferred_add_both(d, record_and_stop, &kept), 0);
  run(r);
  free_reactor(r);
  tw_deferred_unref(d);
  cr_assert_eq(tw_deferred_called(d), 0); /* freed: 0, never a code */
  cr_assert_eq(tw_deferred_add_callback(d, append_digit, NULL), TW_EINVAL);
  tw_deferred_unref(d); /* a double unref: ignored */
  tw_deferred_unref(keeper);
#else
  cr_skip_test("needs -Ddebug_deferreds=true");
#endif
}

static int pool_stop_rc, pool_free_rc;

static void stop_and_free_pool(void *arg) {
  pool_stop_rc = tw_threadpool_stop(arg);
  pool_free_rc = tw_threadpool_free(arg);
}

TWT_TEST(threads, the_reactors_pool_is_stopped_only_by_the_reactor) {
  /* Owned by the reactor, which submits to it without the pool's gate:
   * stop and free from another thread are refused, not raced. */
  tw_reactor *r = new_reactor(0);
  tw_threadpool *tp = tw_reactor_get_thread_pool(r);
  uv_thread_t t;
  cr_assert_not_null(tp);
  cr_assert_eq(uv_thread_create(&t, stop_and_free_pool, tp), 0);
  cr_assert_eq(uv_thread_join(&t), 0);
  cr_assert_eq(pool_stop_rc, TW_EWRONGTHREAD);
  cr_assert_eq(pool_free_rc, TW_EWRONGTHREAD);
  cr_assert_eq(tw_reactor_get_thread_pool(r), tp);
  free_reactor(r);
}

/* ---- arg moved into the result (issue 13) --------------------------------- */

static int moved_freed;
static void moved_free(void *p) {
  moved_freed++;
  free(p);
}
static tw_result return_own_arg(void *arg) { return tw_result_value(arg, NULL); }
static tw_result read_moved_and_stop(tw_result r, void *arg) {
  (void)arg;
  cr_assert_eq(r.kind, TW_RESULT_VALUE);
  cr_assert_str_eq(r.u.value, "moved");
  cr_assert_eq(moved_freed, 0);
  tw_reactor_stop(R);
  return r;
}

TWT_TEST(threads, defer_to_thread_result_may_be_its_own_arg) {
  /* arg_free runs on the pool thread before the Deferred fires: returning
   * arg itself moves it into the result instead of freeing it first. */
  tw_reactor *r = new_reactor(0);
  tw_deferred *d;
  moved_freed = 0;
  cr_assert_eq(tw_defer_to_thread(r, return_own_arg, strdup("moved"),
                                  moved_free, &d), 0);
  tw_deferred_add_callback(d, read_moved_and_stop, NULL);
  run(r);
  cr_assert_eq(moved_freed, 0);
  tw_deferred_unref(d);
  cr_assert_eq(moved_freed, 1);
  free_reactor(r);
}
