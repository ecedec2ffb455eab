/*
 * tests/test_worker.c - the worker interface and the single workers
 * (worker.h): thread, lock, serial, memory and uv workers.
 *
 * Ports twisted/_threads/test/test_convenience.py QuitTests,
 * test_memory.py MemoryWorkerTests and test_threadworker.py
 * ThreadWorkerTests / LockWorkerTests (names in snake_case), plus twuv's own
 * contract: arg_free on every path, failing work, bad input, out of memory,
 * free from inside, the serial worker and the uv worker.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <uv.h>

#include "twtest.h"
#include "worker-internal.h"

TWT_SUITE(worker);

/* ---- helpers ----------------------------------------------------------- */

static int calls;
static void count_call(void *arg) {
  (void)arg;
  calls++;
}

#define freed twt_freed /* twtest.h */
#define count_free twt_count_free

typedef struct {
  char log[64];
  int n;
} trace_t;

/* An argument for trace_char: append c to t. */
typedef struct {
  trace_t *t;
  char c;
} letter_t;

static void trace_char(void *arg) {
  letter_t *l = arg;
  l->t->log[l->t->n++] = l->c;
}

static void fail_value_error(void *arg) {
  (void)arg;
  tw_work_fail(tw_failure_new(&TW_VALUE_ERROR, 0, "boom"));
}

/* ---- QuitTests (twisted/_threads/test/test_convenience.py) ------------- */

TWT_TEST(worker, test_is_initially_set) {
  tw__quit q;
  tw__quit_init(&q);
  cr_assert_eq(tw__quit_is_set(&q), 0);
}

TWT_TEST(worker, test_set_sets_set) {
  tw__quit q;
  tw__quit_init(&q);
  cr_assert_eq(tw__quit_set(&q), 0);
  cr_assert_eq(tw__quit_is_set(&q), 1);
}

TWT_TEST(worker, test_check_does_nothing) {
  tw__quit q;
  tw__quit_init(&q);
  cr_assert_eq(tw__quit_check(&q), 0);
}

TWT_TEST(worker, test_check_after_set_raises) {
  tw__quit q;
  tw__quit_init(&q);
  tw__quit_set(&q);
  cr_assert_eq(tw__quit_check(&q), TW_EALREADYQUIT);
}

TWT_TEST(worker, test_set_twice_raises) {
  tw__quit q;
  tw__quit_init(&q);
  tw__quit_set(&q);
  cr_assert_eq(tw__quit_set(&q), TW_EALREADYQUIT);
}

/* ---- MemoryWorkerTests (test_memory.py) --------------------------------- */

static int done_list[8];
static int done_n;
static void append_int(void *arg) { done_list[done_n++] = (int)(intptr_t)arg; }

TWT_TEST(worker, test_create_worker_and_perform) {
  tw_worker *w;
  done_n = 0;
  cr_assert_eq(tw_memory_worker_new(&w), 0);
  cr_assert_eq(tw_worker_do(w, append_int, (void *)3), 0);
  cr_assert_eq(tw_worker_do(w, append_int, (void *)4), 0);
  cr_assert_eq(done_n, 0);
  cr_assert_eq(tw_memory_worker_perform(w), 1);
  cr_assert_eq(done_n, 1);
  cr_assert_eq(done_list[0], 3);
  cr_assert_eq(tw_memory_worker_perform(w), 1);
  cr_assert_eq(done_n, 2);
  cr_assert_eq(done_list[1], 4);
  cr_assert_eq(tw_worker_free(w), 0);
}

TWT_TEST(worker, test_quit_quits) {
  tw_worker *w;
  done_n = 0;
  freed = 0;
  cr_assert_eq(tw_memory_worker_new(&w), 0);
  cr_assert_eq(tw_worker_do(w, append_int, (void *)7), 0);
  cr_assert_eq(tw_worker_quit(w), 0);
  cr_assert_eq(tw_worker_do_full(w, append_int, (void *)8, count_free),
               TW_EALREADYQUIT);
  cr_assert_eq(tw_worker_quit(w), TW_EALREADYQUIT);
  cr_assert_eq(tw_memory_worker_perform(w), 1);
  cr_assert_eq(done_n, 1);
  cr_assert_eq(done_list[0], 7);
  cr_assert_eq(tw_memory_worker_perform(w), 0);
  cr_assert_eq(tw_memory_worker_perform(w), 0);
  cr_assert_eq(freed, 0, "rejected work is not taken");
  cr_assert_eq(tw_worker_free(w), 0);
}

TWT_TEST(worker, test_perform_when_nothing_to_do_yet) {
  tw_worker *w;
  cr_assert_eq(tw_memory_worker_new(&w), 0);
  cr_assert_eq(tw_memory_worker_perform(w), 0);
  cr_assert_eq(tw_worker_free(w), 0);
}

TWT_TEST(worker, memory_worker_free_drops_unrun_work) {
  tw_worker *w;
  calls = 0;
  freed = 0;
  cr_assert_eq(tw_memory_worker_new(&w), 0);
  cr_assert_eq(tw_worker_do_full(w, count_call, NULL, count_free), 0);
  cr_assert_eq(tw_worker_do_full(w, count_call, NULL, count_free), 0);
  cr_assert_eq(tw_memory_worker_perform(w), 1);
  cr_assert_eq(calls, 1);
  cr_assert_eq(freed, 1, "arg_free right after fn");
  cr_assert_eq(tw_worker_free(w), 0);
  cr_assert_eq(calls, 1);
  cr_assert_eq(freed, 2, "the unrun item's arg is released");
}

TWT_TEST(worker, memory_worker_perform_leaves_failure_to_caller) {
  tw_worker *w;
  tw_failure *f;
  cr_assert_eq(tw_memory_worker_new(&w), 0);
  cr_assert_eq(tw_worker_do(w, fail_value_error, NULL), 0);
  cr_assert_eq(tw_memory_worker_perform(w), 1);
  f = tw_work_take_failure();
  cr_assert_not_null(f);
  cr_assert(tw_failure_check(f, &TW_VALUE_ERROR));
  tw_failure_unref(f);
  cr_assert_null(tw_work_take_failure());
  tw_worker_free(w);
}

static int free_from_own_item_rc;
static void free_own_memory_worker(void *arg) {
  free_from_own_item_rc = tw_worker_free(arg);
}

TWT_TEST(worker, memory_worker_free_from_its_own_item_is_deadlk) {
  /* worker.h: tw_worker_free from work running on the worker returns
   * TW_EDEADLK and leaves it unchanged, as the four other kinds do. */
  tw_worker *w;
  calls = 0;
  freed = 0;
  free_from_own_item_rc = 0;
  cr_assert_eq(tw_memory_worker_new(&w), 0);
  cr_assert_eq(tw_worker_do(w, free_own_memory_worker, w), 0);
  cr_assert_eq(tw_worker_do_full(w, count_call, NULL, count_free), 0);
  cr_assert_eq(tw_memory_worker_perform(w), 1);
  cr_assert_eq(free_from_own_item_rc, TW_EDEADLK, "got %s",
               tw_err_name(free_from_own_item_rc));
  /* Unchanged: not quit, the queued item still performable. */
  cr_assert_eq(tw_worker_do_full(w, count_call, NULL, count_free), 0);
  cr_assert_eq(tw_memory_worker_perform(w), 1);
  cr_assert_eq(tw_memory_worker_perform(w), 1);
  cr_assert_eq(calls, 2);
  cr_assert_eq(freed, 2);
  cr_assert_eq(tw_worker_free(w), 0);
}

/* ---- ThreadWorkerTests (test_threadworker.py), with a fake thread ------- */

static struct {
  tw_call_fn target;
  void *target_arg;
  int started;
  int joined;
  int fail_with;
} fake_thread;

static int fake_start(void *ctx, tw_call_fn target, void *target_arg,
                      void **thread) {
  (void)ctx;
  if (fake_thread.fail_with) return fake_thread.fail_with;
  fake_thread.target = target;
  fake_thread.target_arg = target_arg;
  fake_thread.started++;
  *thread = &fake_thread;
  return 0;
}

static void fake_join(void *ctx, void *thread) {
  (void)ctx;
  cr_assert_eq(thread, &fake_thread);
  fake_thread.joined++;
}

static const tw_thread_starter fake_starter = {fake_start, fake_join, NULL};

TWT_TEST(worker, test_starts_thread_and_performs_work) {
  tw_worker *w;
  memset(&fake_thread, 0, sizeof(fake_thread));
  calls = 0;
  cr_assert_eq(tw_thread_worker_new_custom(&w, &fake_starter), 0);
  cr_assert_eq(fake_thread.started, 1);
  cr_assert_eq(tw_worker_do(w, count_call, NULL), 0);
  cr_assert_eq(calls, 0);
  /* Twisted's fake queue raises when empty; a real one blocks, so quit
   * first and the thread body returns once the queue is done. */
  cr_assert_eq(tw_worker_quit(w), 0);
  fake_thread.target(fake_thread.target_arg);
  cr_assert_eq(calls, 1);
  cr_assert_eq(tw_worker_free(w), 0);
  cr_assert_eq(fake_thread.joined, 1);
}

TWT_TEST(worker, test_quit_prevents_future_calls) {
  tw_worker *w;
  memset(&fake_thread, 0, sizeof(fake_thread));
  cr_assert_eq(tw_thread_worker_new_custom(&w, &fake_starter), 0);
  cr_assert_eq(tw_worker_quit(w), 0);
  cr_assert_eq(tw_worker_quit(w), TW_EALREADYQUIT);
  cr_assert_eq(tw_worker_do(w, count_call, NULL), TW_EALREADYQUIT);
  cr_assert_eq(tw_worker_free(w), 0);
}

TWT_TEST(worker, thread_worker_fake_thread_never_run_drops_work) {
  tw_worker *w;
  memset(&fake_thread, 0, sizeof(fake_thread));
  calls = 0;
  freed = 0;
  cr_assert_eq(tw_thread_worker_new_custom(&w, &fake_starter), 0);
  cr_assert_eq(tw_worker_do_full(w, count_call, NULL, count_free), 0);
  cr_assert_eq(tw_worker_do_full(w, count_call, NULL, count_free), 0);
  cr_assert_eq(tw_worker_free(w), 0);
  cr_assert_eq(calls, 0);
  cr_assert_eq(freed, 2);
}

TWT_TEST(worker, thread_worker_start_failure_is_returned) {
  tw_worker *w = (tw_worker *)&fake_thread;
  memset(&fake_thread, 0, sizeof(fake_thread));
  fake_thread.fail_with = UV_EAGAIN;
  cr_assert_eq(tw_thread_worker_new_custom(&w, &fake_starter), UV_EAGAIN);
  cr_assert_eq(w, (tw_worker *)&fake_thread, "out untouched on error");
}

/* Real threads. */

typedef struct {
  uv_mutex_t mutex;
  uv_cond_t cond;
  int count;
} waiter_t;

static void waiter_init(waiter_t *wt) {
  uv_mutex_init(&wt->mutex);
  uv_cond_init(&wt->cond);
  wt->count = 0;
}

static void waiter_bump(waiter_t *wt) {
  uv_mutex_lock(&wt->mutex);
  wt->count++;
  uv_cond_broadcast(&wt->cond);
  uv_mutex_unlock(&wt->mutex);
}

static void waiter_wait(waiter_t *wt, int count) {
  uv_mutex_lock(&wt->mutex);
  while (wt->count < count) uv_cond_wait(&wt->cond, &wt->mutex);
  uv_mutex_unlock(&wt->mutex);
}

static void waiter_destroy(waiter_t *wt) {
  uv_cond_destroy(&wt->cond);
  uv_mutex_destroy(&wt->mutex);
}

#define ORDER_N 200
static struct {
  int seen[ORDER_N];
  int n;
  uv_thread_t thread;
  int other_thread;
  int same_thread;
  char name[32];
} order;

static void record_order(void *arg) {
  uv_thread_t self = uv_thread_self();
  if (order.n == 0) {
    order.thread = self;
    pthread_getname_np(pthread_self(), order.name, sizeof(order.name));
  } else if (!uv_thread_equal(&self, &order.thread)) {
    order.same_thread = 0;
  }
  order.seen[order.n++] = (int)(intptr_t)arg;
}

TWT_TEST(worker, thread_worker_runs_work_in_order_on_its_thread) {
  tw_worker *w;
  uv_thread_t main_thread = uv_thread_self();
  int i;
  memset(&order, 0, sizeof(order));
  order.same_thread = 1;
  freed = 0;
  cr_assert_eq(tw_thread_worker_new(&w, "tw-test-thread"), 0);
  for (i = 0; i < ORDER_N; i++)
    cr_assert_eq(tw_worker_do_full(w, record_order, (void *)(intptr_t)i,
                                   count_free),
                 0);
  cr_assert_eq(tw_worker_quit(w), 0);
  cr_assert_eq(tw_worker_do(w, record_order, NULL), TW_EALREADYQUIT);
  /* free joins: everything accepted has run when it returns. */
  cr_assert_eq(tw_worker_free(w), 0);
  cr_assert_eq(order.n, ORDER_N);
  for (i = 0; i < ORDER_N; i++) cr_assert_eq(order.seen[i], i);
  cr_assert(order.same_thread);
  cr_assert_not(uv_thread_equal(&order.thread, &main_thread));
  cr_assert_str_eq(order.name, "tw-test-thread");
  cr_assert_eq(freed, ORDER_N);
}

static void record_name(void *arg) {
  pthread_getname_np(pthread_self(), arg, 32);
}

TWT_TEST(worker, thread_worker_default_name) {
  tw_worker *w;
  char name[32] = "";
  cr_assert_eq(tw_thread_worker_new(&w, NULL), 0);
  cr_assert_eq(tw_worker_do(w, record_name, name), 0);
  cr_assert_eq(tw_worker_free(w), 0);
  cr_assert_eq(strncmp(name, "tw-worker-", 10), 0, "name was %s", name);
}

TWT_TEST(worker, thread_worker_free_without_quit_finishes_work) {
  tw_worker *w;
  int i;
  memset(&order, 0, sizeof(order));
  cr_assert_eq(tw_thread_worker_new(&w, NULL), 0);
  for (i = 0; i < 50; i++)
    cr_assert_eq(tw_worker_do(w, record_order, (void *)(intptr_t)i), 0);
  cr_assert_eq(tw_worker_free(w), 0);
  cr_assert_eq(order.n, 50);
}

static tw_worker *self_worker;
static int self_free_rc;
static waiter_t self_waiter;
static void free_self(void *arg) {
  (void)arg;
  self_free_rc = tw_worker_free(self_worker);
  waiter_bump(&self_waiter);
}

TWT_TEST(worker, thread_worker_free_from_its_own_thread_is_edeadlk) {
  waiter_init(&self_waiter);
  self_free_rc = 0;
  cr_assert_eq(tw_thread_worker_new(&self_worker, NULL), 0);
  cr_assert_eq(tw_worker_do(self_worker, free_self, NULL), 0);
  waiter_wait(&self_waiter, 1);
  cr_assert_eq(self_free_rc, TW_EDEADLK);
  cr_assert_eq(tw_worker_free(self_worker), 0);
  waiter_destroy(&self_waiter);
}

TWT_TEST(worker, thread_worker_logs_failing_work_and_survives) {
  tw_worker *w;
  calls = 0;
  cr_assert_eq(tw_thread_worker_new(&w, NULL), 0);
  cr_assert_eq(tw_worker_do(w, fail_value_error, NULL), 0);
  cr_assert_eq(tw_worker_do(w, count_call, NULL), 0);
  cr_assert_eq(tw_worker_free(w), 0);
  cr_assert_eq(calls, 1);
  cr_assert_eq(twt_log_flush(&TW_VALUE_ERROR), 1);
}

/* ---- LockWorkerTests (test_threadworker.py), with a fake lock ----------- */

typedef struct {
  int acquired;
  int would_deadlock; /* WouldDeadlock raised */
  int thread_error;   /* ThreadError raised */
  int acquisitions;
  tw_worker *quit_on_acquire; /* RacyLockWorker */
} fake_lock_t;

static void fake_acquire(void *arg) {
  fake_lock_t *l = arg;
  if (l->quit_on_acquire) tw_worker_quit(l->quit_on_acquire);
  if (l->acquired) {
    l->would_deadlock++;
    return;
  }
  l->acquired = 1;
  l->acquisitions++;
}

static void fake_release(void *arg) {
  fake_lock_t *l = arg;
  if (!l->acquired) {
    l->thread_error++;
    return;
  }
  l->acquired = 0;
}

TWT_TEST(worker, test_fake_deadlock) {
  fake_lock_t lock = {0};
  fake_acquire(&lock);
  fake_acquire(&lock);
  cr_assert_eq(lock.would_deadlock, 1);
}

TWT_TEST(worker, test_fake_double_release) {
  fake_lock_t lock = {0};
  fake_release(&lock);
  cr_assert_eq(lock.thread_error, 1);
  fake_acquire(&lock);
  fake_release(&lock);
  cr_assert_eq(lock.thread_error, 1);
  fake_release(&lock);
  cr_assert_eq(lock.thread_error, 2);
}

static fake_lock_t *the_lock;
static int work_done, work_acquired;
static void note_lock(void *arg) {
  (void)arg;
  work_done = 1;
  work_acquired = the_lock->acquired;
}

TWT_TEST(worker, test_do_executes_immediately_with_lock) {
  fake_lock_t lock = {0};
  tw_worker *w;
  the_lock = &lock;
  work_done = work_acquired = 0;
  cr_assert_eq(tw_lock_worker_new_custom(&w, fake_acquire, fake_release, &lock),
               0);
  cr_assert_eq(tw_worker_do(w, note_lock, NULL), 0);
  cr_assert_eq(work_done, 1);
  cr_assert_eq(work_acquired, 1);
  cr_assert_eq(lock.acquired, 0);
  tw_worker_free(w);
  cr_assert_eq(lock.would_deadlock + lock.thread_error, 0);
}

static tw_worker *reentrant_worker;
static int level, levels[4], acquired[4], n_levels;
static void reentrant_work(void *arg) {
  (void)arg;
  level++;
  levels[n_levels] = level;
  acquired[n_levels] = the_lock->acquired;
  n_levels++;
  if (n_levels < 2)
    cr_assert_eq(tw_worker_do(reentrant_worker, reentrant_work, NULL), 0);
  level--;
}

TWT_TEST(worker, test_do_unwinds_reentrancy) {
  fake_lock_t lock = {0};
  the_lock = &lock;
  level = n_levels = 0;
  cr_assert_eq(tw_lock_worker_new_custom(&reentrant_worker, fake_acquire,
                                         fake_release, &lock),
               0);
  cr_assert_eq(tw_worker_do(reentrant_worker, reentrant_work, NULL), 0);
  cr_assert_eq(n_levels, 2);
  cr_assert_eq(levels[0], 1);
  cr_assert_eq(levels[1], 1);
  cr_assert_eq(acquired[0], 1);
  cr_assert_eq(acquired[1], 1);
  cr_assert_eq(lock.would_deadlock, 0);
  tw_worker_free(reentrant_worker);
}

TWT_TEST(worker, test_quit) {
  /* Twisted also checks that quit drops the lock object (a weakref, N); here
   * the lock stays the caller's, and quit means it is never taken again. */
  fake_lock_t lock = {0};
  tw_worker *w;
  cr_assert_eq(tw_lock_worker_new_custom(&w, fake_acquire, fake_release, &lock),
               0);
  cr_assert_eq(tw_worker_quit(w), 0);
  cr_assert_eq(tw_worker_quit(w), TW_EALREADYQUIT);
  cr_assert_eq(tw_worker_do(w, count_call, NULL), TW_EALREADYQUIT);
  cr_assert_eq(lock.acquisitions, 0);
  tw_worker_free(w);
}

static tw_worker *phase_worker;
static int phase1_complete, phase2_complete, phase2_acquired, phase1_do_rc;
static void phase2(void *arg) {
  (void)arg;
  phase2_complete = 1;
  phase2_acquired = the_lock->acquired;
}
static void phase1(void *arg) {
  (void)arg;
  cr_assert_eq(tw_worker_do(phase_worker, phase2, NULL), 0);
  cr_assert_eq(tw_worker_quit(phase_worker), 0);
  phase1_do_rc = tw_worker_do(phase_worker, count_call, NULL);
  phase1_complete = 1;
}

TWT_TEST(worker, test_quit_while_working) {
  fake_lock_t lock = {0};
  the_lock = &lock;
  phase1_complete = phase2_complete = phase2_acquired = 0;
  cr_assert_eq(tw_lock_worker_new_custom(&phase_worker, fake_acquire,
                                         fake_release, &lock),
               0);
  cr_assert_eq(tw_worker_do(phase_worker, phase1, NULL), 0);
  cr_assert_eq(phase1_do_rc, TW_EALREADYQUIT);
  cr_assert_eq(phase1_complete, 1);
  cr_assert_eq(phase2_complete, 1);
  cr_assert_eq(phase2_acquired, 1);
  cr_assert_eq(lock.acquired, 0);
  tw_worker_free(phase_worker);
}

TWT_TEST(worker, test_quit_while_getting_lock) {
  fake_lock_t lock = {0};
  tw_worker *w;
  calls = 0;
  freed = 0;
  cr_assert_eq(tw_lock_worker_new_custom(&w, fake_acquire, fake_release, &lock),
               0);
  lock.quit_on_acquire = w;
  cr_assert_eq(tw_worker_do_full(w, count_call, NULL, count_free),
               TW_EALREADYQUIT);
  cr_assert_eq(calls, 0);
  cr_assert_eq(freed, 0);
  cr_assert_eq(lock.acquired, 0, "the lock was released");
  lock.quit_on_acquire = NULL;
  tw_worker_free(w);
}

static tw_worker *failing_lock_worker;
static void fail_then_queue(void *arg) {
  (void)arg;
  cr_assert_eq(tw_worker_do_full(failing_lock_worker, count_call, NULL,
                                 count_free),
               0);
  tw_work_fail(tw_failure_new(&TW_VALUE_ERROR, 0, "boom"));
}

TWT_TEST(worker, lock_worker_failure_drops_reentrant_work) {
  tw_failure *f;
  calls = 0;
  freed = 0;
  cr_assert_eq(tw_lock_worker_new(&failing_lock_worker), 0);
  cr_assert_eq(tw_worker_do(failing_lock_worker, fail_then_queue, NULL), 0);
  cr_assert_eq(calls, 0, "work queued behind a failure never runs");
  cr_assert_eq(freed, 1, "its arg is released");
  f = tw_work_take_failure();
  cr_assert(tw_failure_check(f, &TW_VALUE_ERROR), "it propagates to do's caller");
  tw_failure_unref(f);
  /* The worker is still usable. */
  cr_assert_eq(tw_worker_do(failing_lock_worker, count_call, NULL), 0);
  cr_assert_eq(calls, 1);
  tw_worker_free(failing_lock_worker);
}

TWT_TEST(worker, lock_worker_keeps_a_callers_pending_failure) {
  tw_worker *w;
  tw_failure *f;
  cr_assert_eq(tw_lock_worker_new(&w), 0);
  tw_work_fail(tw_failure_new(&TW_TYPE_ERROR, 0, "earlier"));
  calls = 0;
  cr_assert_eq(tw_worker_do(w, count_call, NULL), 0);
  cr_assert_eq(calls, 1);
  f = tw_work_take_failure();
  cr_assert(tw_failure_check(f, &TW_TYPE_ERROR));
  tw_failure_unref(f);
  tw_worker_free(w);
}

static int lock_free_rc;
static void free_lock_self(void *arg) { lock_free_rc = tw_worker_free(arg); }

TWT_TEST(worker, lock_worker_free_inside_work_is_edeadlk) {
  tw_worker *w;
  cr_assert_eq(tw_lock_worker_new(&w), 0);
  cr_assert_eq(tw_worker_do(w, free_lock_self, w), 0);
  cr_assert_eq(lock_free_rc, TW_EDEADLK);
  cr_assert_eq(tw_worker_free(w), 0);
}

static tw_worker *oom_lock_worker;
static int oom_inner_rc;
static void reentrant_oom(void *arg) {
  (void)arg;
  twt_alloc_fail_nth(1);
  oom_inner_rc = tw_worker_do_full(oom_lock_worker, count_call, NULL,
                                   count_free);
}

TWT_TEST(worker, lock_worker_reentrant_do_out_of_memory) {
  calls = 0;
  freed = 0;
  cr_assert_eq(tw_lock_worker_new(&oom_lock_worker), 0);
  cr_assert_eq(tw_worker_do(oom_lock_worker, reentrant_oom, NULL), 0);
  cr_assert_eq(oom_inner_rc, TW_ENOMEM);
  cr_assert_eq(calls, 0);
  cr_assert_eq(freed, 0);
  tw_worker_free(oom_lock_worker);
}

/* Exclusion across real threads, for both exclusive thread-less workers. */

#define EXCL_THREADS 4
#define EXCL_ITEMS 2000
static struct {
  tw_worker *w;
  atomic_int running;
  int overlaps;
  int next[EXCL_THREADS];
  int out_of_order;
  int total;
} excl;

static void excl_item(void *arg) {
  intptr_t v = (intptr_t)arg;
  int t = (int)(v / EXCL_ITEMS), i = (int)(v % EXCL_ITEMS);
  if (atomic_fetch_add(&excl.running, 1) != 0) excl.overlaps++;
  if (excl.next[t] != i) excl.out_of_order++;
  excl.next[t] = i + 1;
  excl.total++;
  atomic_fetch_sub(&excl.running, 1);
}

static void excl_submitter(void *arg) {
  intptr_t t = (intptr_t)arg;
  int i;
  for (i = 0; i < EXCL_ITEMS; i++)
    cr_assert_eq(tw_worker_do(excl.w, excl_item,
                              (void *)(t * EXCL_ITEMS + i)),
                 0);
}

static void run_exclusion(tw_worker *w) {
  uv_thread_t th[EXCL_THREADS];
  intptr_t t;
  memset(&excl, 0, sizeof(excl));
  excl.w = w;
  for (t = 0; t < EXCL_THREADS; t++)
    cr_assert_eq(uv_thread_create(&th[t], excl_submitter, (void *)t), 0);
  for (t = 0; t < EXCL_THREADS; t++) uv_thread_join(&th[t]);
  cr_assert_eq(tw_worker_free(w), 0);
  cr_assert_eq(excl.overlaps, 0);
  cr_assert_eq(excl.out_of_order, 0);
  cr_assert_eq(excl.total, EXCL_THREADS * EXCL_ITEMS);
}

TWT_TEST(worker, lock_worker_excludes_across_threads) {
  tw_worker *w;
  cr_assert_eq(tw_lock_worker_new(&w), 0);
  run_exclusion(w);
}

/* ---- Serial worker -------------------------------------------------------- */

TWT_TEST(worker, serial_worker_excludes_across_threads_fifo_per_submitter) {
  tw_worker *w;
  cr_assert_eq(tw_serial_worker_new(&w), 0);
  run_exclusion(w);
}

TWT_TEST(worker, serial_worker_runs_idle_work_at_once) {
  tw_worker *w;
  long before;
  calls = 0;
  freed = 0;
  cr_assert_eq(tw_serial_worker_new(&w), 0);
  before = twt_alloc_total();
  cr_assert_eq(tw_worker_do_full(w, count_call, NULL, count_free), 0);
  cr_assert_eq(calls, 1, "an idle serial worker runs on the caller");
  cr_assert_eq(freed, 1);
  cr_assert_eq(twt_alloc_total(), before, "and allocates nothing");
  tw_worker_free(w);
}

static tw_worker *serial_w;
static trace_t serial_trace;
static letter_t letter_b = {&serial_trace, 'b'}, letter_c = {&serial_trace, 'c'};
static void serial_outer(void *arg) {
  (void)arg;
  serial_trace.log[serial_trace.n++] = 'a';
  cr_assert_eq(tw_worker_do(serial_w, trace_char, &letter_b), 0);
  cr_assert_eq(tw_worker_do(serial_w, trace_char, &letter_c), 0);
  serial_trace.log[serial_trace.n++] = 'A';
}

TWT_TEST(worker, serial_worker_reentrant_do_runs_after_current_item) {
  memset(&serial_trace, 0, sizeof(serial_trace));
  cr_assert_eq(tw_serial_worker_new(&serial_w), 0);
  cr_assert_eq(tw_worker_do(serial_w, serial_outer, NULL), 0);
  cr_assert_str_eq(serial_trace.log, "aAbc");
  tw_worker_free(serial_w);
}

TWT_TEST(worker, serial_worker_quit) {
  tw_worker *w;
  cr_assert_eq(tw_serial_worker_new(&w), 0);
  cr_assert_eq(tw_worker_quit(w), 0);
  cr_assert_eq(tw_worker_quit(w), TW_EALREADYQUIT);
  cr_assert_eq(tw_worker_do(w, count_call, NULL), TW_EALREADYQUIT);
  cr_assert_eq(tw_worker_free(w), 0);
}

static void quit_serial_then_queue(void *arg) {
  (void)arg;
  cr_assert_eq(tw_worker_do_full(serial_w, count_call, NULL, count_free), 0);
  cr_assert_eq(tw_worker_quit(serial_w), 0);
  cr_assert_eq(tw_worker_do(serial_w, count_call, NULL), TW_EALREADYQUIT);
}

TWT_TEST(worker, serial_worker_quit_lets_accepted_work_run) {
  calls = 0;
  freed = 0;
  cr_assert_eq(tw_serial_worker_new(&serial_w), 0);
  cr_assert_eq(tw_worker_do(serial_w, quit_serial_then_queue, NULL), 0);
  cr_assert_eq(calls, 1);
  cr_assert_eq(freed, 1);
  cr_assert_eq(tw_worker_free(serial_w), 0);
}

static int serial_free_rc;
static void free_serial_self(void *arg) {
  serial_free_rc = tw_worker_free(arg);
}

TWT_TEST(worker, serial_worker_free_inside_work_is_edeadlk) {
  tw_worker *w;
  cr_assert_eq(tw_serial_worker_new(&w), 0);
  cr_assert_eq(tw_worker_do(w, free_serial_self, w), 0);
  cr_assert_eq(serial_free_rc, TW_EDEADLK);
  cr_assert_eq(tw_worker_free(w), 0);
}

TWT_TEST(worker, serial_worker_logs_failing_work) {
  tw_worker *w;
  cr_assert_eq(tw_serial_worker_new(&w), 0);
  cr_assert_eq(tw_worker_do(w, fail_value_error, NULL), 0);
  cr_assert_null(tw_work_take_failure(), "logged, not left to the caller");
  cr_assert_eq(twt_log_flush(&TW_VALUE_ERROR), 1);
  tw_worker_free(w);
}

static int serial_oom_rc;
static void serial_busy_oom(void *arg) {
  (void)arg;
  /* Neither the node pool nor a node of its own can be had. */
  twt_alloc_fail_all(1);
  serial_oom_rc = tw_worker_do_full(serial_w, count_call, NULL, count_free);
  twt_alloc_fail_all(0);
}

TWT_TEST(worker, serial_worker_busy_do_out_of_memory) {
  calls = 0;
  freed = 0;
  cr_assert_eq(tw_serial_worker_new(&serial_w), 0);
  cr_assert_eq(tw_worker_do(serial_w, serial_busy_oom, NULL), 0);
  cr_assert_eq(serial_oom_rc, TW_ENOMEM);
  cr_assert_eq(calls, 0);
  cr_assert_eq(freed, 0);
  tw_worker_free(serial_w);
}

static void queue_many(void *arg) {
  int i;
  (void)arg;
  /* More than the worker's node pool holds: the rest come from malloc. */
  for (i = 0; i < 3000; i++)
    cr_assert_eq(tw_worker_do_full(serial_w, count_call, NULL, count_free), 0);
}

TWT_TEST(worker, serial_worker_busy_beyond_its_node_pool) {
  calls = 0;
  freed = 0;
  cr_assert_eq(tw_serial_worker_new(&serial_w), 0);
  cr_assert_eq(tw_worker_do(serial_w, queue_many, NULL), 0);
  cr_assert_eq(calls, 3000);
  cr_assert_eq(freed, 3000);
  cr_assert_eq(tw_worker_do(serial_w, queue_many, NULL), 0);
  cr_assert_eq(calls, 6000);
  tw_worker_free(serial_w);
}

/*
 * The serial worker's bound (worker.h): at most 256 items of one
 * submitting thread wait for the thread running the worker; its 257th do
 * waits until that thread frees room. Here the main thread takes the
 * worker and holds it inside one item while another thread submits more
 * than that.
 */
#define SERIAL_BOUND 1024
#define SERIAL_OVER 100
static atomic_long serial_accepted;
/* Set by the main thread's item once it holds the worker: the other thread
 * submits only then (else it could take the idle worker itself). */
static atomic_int serial_holding, serial_sub_done;
static long serial_seen, serial_calls_before_mine, serial_alloc_delta;
static int serial_mine_calls;

static void serial_bound_submitter(void *arg) {
  long i;
  (void)arg;
  while (!atomic_load(&serial_holding)) sched_yield();
  for (i = 0; i < SERIAL_BOUND + SERIAL_OVER; i++) {
    cr_assert_eq(tw_worker_do_full(serial_w, count_call, NULL, count_free), 0);
    atomic_fetch_add(&serial_accepted, 1);
  }
  atomic_store(&serial_sub_done, 1);
}

static void serial_mine(void *arg) {
  (void)arg;
  serial_calls_before_mine = calls;
  serial_mine_calls++;
}

static void serial_hold_until_full(void *arg) {
  int i;
  (void)arg;
  atomic_store(&serial_holding, 1);
  while (atomic_load(&serial_accepted) < SERIAL_BOUND) sched_yield();
  /* Give the submitter every chance to go further (it must not). */
  for (i = 0; i < 2000; i++) sched_yield();
  serial_seen = atomic_load(&serial_accepted);
  /* Full, and this thread is the one that must empty it: a do from inside
   * the work is queued without waiting, and runs right after this item. */
  cr_assert_eq(tw_worker_do(serial_w, serial_mine, NULL), 0);
}

TWT_TEST_OPTS(worker, serial_worker_bounds_the_backlog_submitter_waits,
              .timeout = 60) {
  uv_thread_t th;
  calls = serial_mine_calls = 0;
  freed = 0;
  serial_calls_before_mine = -1;
  atomic_store(&serial_accepted, 0);
  atomic_store(&serial_holding, 0);
  cr_assert_eq(tw_serial_worker_new(&serial_w), 0);
  cr_assert_eq(uv_thread_create(&th, serial_bound_submitter, NULL), 0);
  cr_assert_eq(tw_worker_do(serial_w, serial_hold_until_full, NULL), 0);
  uv_thread_join(&th);
  cr_assert_eq(serial_seen, SERIAL_BOUND,
               "a busy worker holds at most %d waiting items (saw %ld "
               "accepted)",
               SERIAL_BOUND, serial_seen);
  cr_assert_eq(serial_mine_calls, 1);
  cr_assert_eq(serial_calls_before_mine, 0,
               "the re-entrant item ran before the queued ones");
  cr_assert_eq(calls, SERIAL_BOUND + SERIAL_OVER);
  cr_assert_eq(freed, SERIAL_BOUND + SERIAL_OVER);
  cr_assert_eq(tw_worker_free(serial_w), 0);
}

/* What another thread queues on a busy serial worker costs no allocation
 * beyond its lane, made once on its first do that finds the worker busy:
 * items wait in that fixed ring (so the backlog cannot grow). */
static long serial_alloc_first;
static void serial_hold_while_other_submits(void *arg) {
  long start, before;
  (void)arg;
  start = twt_alloc_total();
  atomic_store(&serial_holding, 1);
  while (atomic_load(&serial_accepted) < 1) sched_yield();
  before = twt_alloc_total();
  serial_alloc_first = before - start;
  while (atomic_load(&serial_accepted) < SERIAL_BOUND) sched_yield();
  serial_alloc_delta = twt_alloc_total() - before;
}

TWT_TEST_OPTS(worker, serial_worker_queues_other_threads_work_without_allocating,
              .timeout = 60) {
  uv_thread_t th;
  calls = 0;
  freed = 0;
  atomic_store(&serial_accepted, 0);
  atomic_store(&serial_holding, 0);
  cr_assert_eq(tw_serial_worker_new(&serial_w), 0);
  cr_assert_eq(uv_thread_create(&th, serial_bound_submitter, NULL), 0);
  cr_assert_eq(tw_worker_do(serial_w, serial_hold_while_other_submits, NULL),
               0);
  uv_thread_join(&th);
  cr_assert_eq(serial_alloc_first, 1, "the lane: %ld allocations",
               serial_alloc_first);
  cr_assert_eq(serial_alloc_delta, 0,
               "%ld allocations for %d more queued items", serial_alloc_delta,
               SERIAL_BOUND - 1);
  cr_assert_eq(calls, SERIAL_BOUND + SERIAL_OVER);
  cr_assert_eq(tw_worker_free(serial_w), 0);
}

/*
 * A thread that finds the worker busy and cannot get a lane (no memory for
 * it) neither fails nor loses the item: it waits until the worker is idle
 * and runs the item itself (do_item, a team's step, must not fail).
 */
static atomic_int serial_oom_go, serial_oom_ran_on_other;
static int serial_oom_other_rc;
static uv_thread_t serial_oom_thread;

static void serial_oom_item(void *arg) {
  uv_thread_t self = uv_thread_self();
  (void)arg;
  calls++;
  if (uv_thread_equal(&self, &serial_oom_thread))
    atomic_store(&serial_oom_ran_on_other, 1);
}

static void serial_oom_other(void *arg) {
  (void)arg;
  while (!atomic_load(&serial_oom_go)) sched_yield();
  serial_oom_other_rc = tw_worker_do(serial_w, serial_oom_item, NULL);
  atomic_store(&serial_sub_done, 1);
}

static void serial_hold_while_oom(void *arg) {
  int i;
  (void)arg;
  twt_alloc_fail_all(1);
  atomic_store(&serial_oom_go, 1);
  /* The other thread waits for us (it cannot queue): give it time to. */
  for (i = 0; i < 2000 && !atomic_load(&serial_sub_done); i++) sched_yield();
  twt_alloc_fail_all(0);
  serial_seen = calls;
}

TWT_TEST_OPTS(worker, serial_worker_busy_without_a_lane_runs_when_idle,
              .timeout = 60) {
  calls = 0;
  serial_seen = -1;
  atomic_store(&serial_oom_go, 0);
  atomic_store(&serial_sub_done, 0);
  atomic_store(&serial_oom_ran_on_other, 0);
  cr_assert_eq(tw_serial_worker_new(&serial_w), 0);
  cr_assert_eq(uv_thread_create(&serial_oom_thread, serial_oom_other, NULL),
               0);
  cr_assert_eq(tw_worker_do(serial_w, serial_hold_while_oom, NULL), 0);
  uv_thread_join(&serial_oom_thread);
  cr_assert_eq(serial_oom_other_rc, 0);
  cr_assert_eq(serial_seen, 0, "the item ran while the worker was held");
  cr_assert_eq(calls, 1);
  cr_assert_eq(atomic_load(&serial_oom_ran_on_other), 1,
               "the thread with no lane ran its item itself");
  cr_assert_eq(tw_worker_free(serial_w), 0);
}

/*
 * Order (worker.h): FIFO per submitting thread; a do from inside the work
 * runs right after the current item, before what other threads queued
 * meanwhile (as in a lock worker).
 */
static letter_t letter_x = {&serial_trace, 'x'}, letter_r = {&serial_trace, 'r'};

static void serial_other_b(void *arg) {
  (void)arg;
  while (!atomic_load(&serial_holding)) sched_yield();
  cr_assert_eq(tw_worker_do(serial_w, trace_char, &letter_b), 0);
  atomic_store(&serial_sub_done, 1);
}

static void serial_x_then_mine(void *arg) {
  (void)arg;
  trace_char(&letter_x);
  atomic_store(&serial_holding, 1);
  while (!atomic_load(&serial_sub_done)) sched_yield(); /* b is queued */
  cr_assert_eq(tw_worker_do(serial_w, trace_char, &letter_r), 0);
}

TWT_TEST_OPTS(worker, serial_worker_reentrant_do_runs_before_other_threads_items,
              .timeout = 60) {
  uv_thread_t th;
  memset(&serial_trace, 0, sizeof(serial_trace));
  atomic_store(&serial_sub_done, 0);
  atomic_store(&serial_holding, 0);
  cr_assert_eq(tw_serial_worker_new(&serial_w), 0);
  cr_assert_eq(uv_thread_create(&th, serial_other_b, NULL), 0);
  cr_assert_eq(tw_worker_do(serial_w, serial_x_then_mine, NULL), 0);
  uv_thread_join(&th);
  cr_assert_str_eq(serial_trace.log, "xrb");
  cr_assert_eq(tw_worker_free(serial_w), 0);
}

/*
 * The bias (lib/serial.c, "Biasing"): a thread that keeps taking the
 * worker from its own hand-back parks it biased to itself and then runs
 * its items with no atomic. BIAS_RUN dos in a row is more than the
 * threshold (4096), so the tests below run on the bias where the system
 * allows it (membarrier), and on the usual path elsewhere - the behaviour
 * asserted is the same.
 */
#define BIAS_RUN 10000

static void bias_up(tw_worker *w) {
  int i;
  for (i = 0; i < BIAS_RUN; i++) cr_assert_eq(tw_worker_do(w, count_call, NULL), 0);
}

TWT_TEST(worker, serial_worker_on_its_bias_behaves_as_idle) {
  long before;
  calls = 0;
  freed = 0;
  memset(&serial_trace, 0, sizeof(serial_trace));
  cr_assert_eq(tw_serial_worker_new(&serial_w), 0);
  bias_up(serial_w);
  cr_assert_eq(calls, BIAS_RUN);
  before = twt_alloc_total();
  cr_assert_eq(tw_worker_do_full(serial_w, count_call, NULL, count_free), 0);
  cr_assert_eq(calls, BIAS_RUN + 1, "run before do returns");
  cr_assert_eq(freed, 1);
  cr_assert_eq(twt_alloc_total(), before, "and allocates nothing");
  /* A do from inside the work waits for the current item. */
  cr_assert_eq(tw_worker_do(serial_w, serial_outer, NULL), 0);
  cr_assert_str_eq(serial_trace.log, "aAbc");
  /* A failure is logged, not left to the caller. */
  cr_assert_eq(tw_worker_do(serial_w, fail_value_error, NULL), 0);
  cr_assert_null(tw_work_take_failure());
  cr_assert_eq(twt_log_flush(&TW_VALUE_ERROR), 1);
  cr_assert_eq(tw_worker_free(serial_w), 0);
}

static void bias_thread(void *arg) { bias_up(arg); }

static atomic_int bias_other_calls;
static void bias_other_item(void *arg) {
  (void)arg;
  atomic_fetch_add(&bias_other_calls, 1);
}

TWT_TEST_OPTS(worker, serial_worker_bias_of_an_exited_thread_is_taken_at_once,
              .timeout = 60) {
  uv_thread_t th;
  calls = 0;
  atomic_store(&bias_other_calls, 0);
  cr_assert_eq(tw_serial_worker_new(&serial_w), 0);
  cr_assert_eq(uv_thread_create(&th, bias_thread, serial_w), 0);
  uv_thread_join(&th);
  /* Its thread is gone, running nothing: the worker is idle to us. */
  cr_assert_eq(tw_worker_do(serial_w, bias_other_item, NULL), 0);
  cr_assert_eq(atomic_load(&bias_other_calls), 1, "run before do returns");
  /* And a new thread (perhaps with the old one's index) biases it again. */
  cr_assert_eq(uv_thread_create(&th, bias_thread, serial_w), 0);
  uv_thread_join(&th);
  cr_assert_eq(calls, 2 * BIAS_RUN);
  cr_assert_eq(tw_worker_do(serial_w, bias_other_item, NULL), 0);
  cr_assert_eq(atomic_load(&bias_other_calls), 2);
  cr_assert_eq(tw_worker_free(serial_w), 0);
}

static atomic_int bias_holding, bias_other_returned;
static uv_thread_t bias_main;
static int bias_other_on_main, bias_other_before_hold_ended;
static void bias_other_item_where(void *arg) {
  uv_thread_t self = uv_thread_self();
  (void)arg;
  bias_other_on_main = uv_thread_equal(&self, &bias_main);
  atomic_fetch_add(&bias_other_calls, 1);
}

static void bias_other_submits(void *arg) {
  (void)arg;
  while (!atomic_load(&bias_holding)) sched_yield();
  /* The worker's thread is inside an item: this do queues and returns
   * (were it to wait for that item, the test would time out). */
  cr_assert_eq(tw_worker_do(serial_w, bias_other_item_where, NULL), 0);
  atomic_store(&bias_other_returned, 1);
}

static void bias_hold(void *arg) {
  (void)arg;
  atomic_store(&bias_holding, 1);
  while (!atomic_load(&bias_other_returned)) sched_yield();
  bias_other_before_hold_ended = atomic_load(&bias_other_calls);
}

TWT_TEST_OPTS(worker, serial_worker_bias_taken_while_its_item_runs,
              .timeout = 60) {
  uv_thread_t th;
  calls = 0;
  atomic_store(&bias_other_calls, 0);
  atomic_store(&bias_holding, 0);
  atomic_store(&bias_other_returned, 0);
  bias_main = uv_thread_self();
  cr_assert_eq(tw_serial_worker_new(&serial_w), 0);
  bias_up(serial_w);
  cr_assert_eq(uv_thread_create(&th, bias_other_submits, NULL), 0);
  cr_assert_eq(tw_worker_do(serial_w, bias_hold, NULL), 0);
  uv_thread_join(&th);
  cr_assert_eq(bias_other_before_hold_ended, 0, "never two items at once");
  /* The thread that held the worker ran the other item before its do
   * returned: nothing waits for a thread that may not come back. */
  cr_assert_eq(atomic_load(&bias_other_calls), 1);
  cr_assert(bias_other_on_main);
  cr_assert_eq(tw_worker_free(serial_w), 0);
}

static void bias_quit_from_thread(void *arg) {
  cr_assert_eq(tw_worker_quit(arg), 0);
}

TWT_TEST(worker, serial_worker_quit_on_its_bias) {
  uv_thread_t th;
  calls = 0;
  /* Quit by the biased thread itself. */
  cr_assert_eq(tw_serial_worker_new(&serial_w), 0);
  bias_up(serial_w);
  cr_assert_eq(tw_worker_quit(serial_w), 0);
  cr_assert_eq(tw_worker_do(serial_w, count_call, NULL), TW_EALREADYQUIT);
  cr_assert_eq(tw_worker_free(serial_w), 0);
  /* And by another thread. */
  cr_assert_eq(tw_serial_worker_new(&serial_w), 0);
  bias_up(serial_w);
  cr_assert_eq(uv_thread_create(&th, bias_quit_from_thread, serial_w), 0);
  uv_thread_join(&th);
  cr_assert_eq(tw_worker_do(serial_w, count_call, NULL), TW_EALREADYQUIT);
  cr_assert_eq(calls, 2 * BIAS_RUN);
  cr_assert_eq(tw_worker_free(serial_w), 0);
}

/* ---- uv worker ----------------------------------------------------------- */

static atomic_int uv_runs, uv_frees, uv_on_main;
static uv_thread_t uv_main_thread;
static void uv_item(void *arg) {
  uv_thread_t self = uv_thread_self();
  (void)arg;
  if (uv_thread_equal(&self, &uv_main_thread)) atomic_fetch_add(&uv_on_main, 1);
  atomic_fetch_add(&uv_runs, 1);
}
static void uv_item_free(void *arg) {
  (void)arg;
  atomic_fetch_add(&uv_frees, 1);
}

static void uv_reset(void) {
  atomic_store(&uv_runs, 0);
  atomic_store(&uv_frees, 0);
  atomic_store(&uv_on_main, 0);
  uv_main_thread = uv_thread_self();
}

TWT_TEST(worker, uv_worker_runs_work_on_libuvs_pool) {
  uv_loop_t loop;
  tw_worker *w;
  int i;
  uv_reset();
  cr_assert_eq(uv_loop_init(&loop), 0);
  cr_assert_eq(tw_uv_worker_new(&w, &loop), 0);
  for (i = 0; i < 20; i++)
    cr_assert_eq(tw_worker_do_full(w, uv_item, NULL, uv_item_free), 0);
  cr_assert_eq(tw_worker_quit(w), 0);
  cr_assert_eq(tw_worker_do(w, uv_item, NULL), TW_EALREADYQUIT);
  /* After quit the loop ends once the accepted work is done. */
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(atomic_load(&uv_runs), 20);
  cr_assert_eq(atomic_load(&uv_frees), 20);
  cr_assert_eq(atomic_load(&uv_on_main), 0);
  cr_assert_eq(tw_worker_free(w), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(uv_loop_close(&loop), 0);
}

static tw_worker *uv_w;
static int uv_free_rc;
static void uv_submitter(void *arg) {
  int i;
  (void)arg;
  for (i = 0; i < 500; i++)
    cr_assert_eq(tw_worker_do_full(uv_w, uv_item, NULL, uv_item_free), 0);
  uv_free_rc = tw_worker_free(uv_w);
  cr_assert_eq(tw_worker_quit(uv_w), 0);
}

TWT_TEST(worker, uv_worker_do_from_another_thread) {
  uv_loop_t loop;
  uv_thread_t th;
  uv_reset();
  cr_assert_eq(uv_loop_init(&loop), 0);
  cr_assert_eq(tw_uv_worker_new(&uv_w, &loop), 0);
  cr_assert_eq(uv_thread_create(&th, uv_submitter, NULL), 0);
  /* The handle keeps the loop running until the quit arrives. */
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_thread_join(&th);
  cr_assert_eq(uv_free_rc, TW_EWRONGTHREAD);
  cr_assert_eq(atomic_load(&uv_runs), 500);
  cr_assert_eq(atomic_load(&uv_frees), 500);
  cr_assert_eq(tw_worker_free(uv_w), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(uv_loop_close(&loop), 0);
}

TWT_TEST(worker, uv_worker_free_with_work_in_flight) {
  uv_loop_t loop;
  tw_worker *w;
  int i;
  uv_reset();
  cr_assert_eq(uv_loop_init(&loop), 0);
  cr_assert_eq(tw_uv_worker_new(&w, &loop), 0);
  for (i = 0; i < 10; i++)
    cr_assert_eq(tw_worker_do_full(w, uv_item, NULL, uv_item_free), 0);
  cr_assert_eq(tw_worker_free(w), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(atomic_load(&uv_runs), 10);
  cr_assert_eq(atomic_load(&uv_frees), 10);
  cr_assert_eq(uv_loop_close(&loop), 0);
}

TWT_TEST(worker, uv_worker_logs_failing_work) {
  uv_loop_t loop;
  tw_worker *w;
  cr_assert_eq(uv_loop_init(&loop), 0);
  cr_assert_eq(tw_uv_worker_new(&w, &loop), 0);
  cr_assert_eq(tw_worker_do(w, fail_value_error, NULL), 0);
  tw_worker_quit(w);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(twt_log_flush(&TW_VALUE_ERROR), 1);
  tw_worker_free(w);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(uv_loop_close(&loop), 0);
}

/* ---- The interface: custom workers, failing work, bad input, OOM -------- */

/* A user-written worker: runs work at once, counts what it saw. */
typedef struct {
  tw_worker base;
  int quit;
  int items;
} inline_worker;

static int inline_do(tw_worker *w, tw_call_fn fn, void *arg,
                     tw_free_fn arg_free) {
  inline_worker *iw = (inline_worker *)w;
  if (iw->quit) return TW_EALREADYQUIT;
  iw->items++;
  fn(arg);
  if (arg_free) arg_free(arg);
  return 0;
}
static int inline_quit(tw_worker *w) {
  inline_worker *iw = (inline_worker *)w;
  if (iw->quit) return TW_EALREADYQUIT;
  iw->quit = 1;
  return 0;
}
static int inline_destroy(tw_worker *w) {
  (void)w;
  return 0;
}
static const tw_worker_vtable inline_vtable = {inline_do, inline_quit,
                                               inline_destroy};

TWT_TEST(worker, custom_worker_through_the_interface) {
  inline_worker iw = {{&inline_vtable}, 0, 0};
  calls = 0;
  freed = 0;
  cr_assert_eq(tw_worker_do_full(&iw.base, count_call, NULL, count_free), 0);
  cr_assert_eq(tw_worker_do(&iw.base, count_call, NULL), 0);
  cr_assert_eq(calls, 2);
  cr_assert_eq(freed, 1);
  cr_assert_eq(tw_worker_do(&iw.base, NULL, NULL), TW_EINVAL,
               "the public call checks fn before the vtable sees it");
  cr_assert_eq(iw.items, 2);
  cr_assert_eq(tw_worker_quit(&iw.base), 0);
  cr_assert_eq(tw_worker_quit(&iw.base), TW_EALREADYQUIT);
  cr_assert_eq(tw_worker_free(&iw.base), 0);
}

TWT_TEST(worker, bad_input) {
  tw_worker none = {NULL};
  tw_worker *w;
  cr_assert_eq(tw_worker_do(NULL, count_call, NULL), TW_EINVAL);
  cr_assert_eq(tw_worker_do_full(NULL, count_call, NULL, count_free),
               TW_EINVAL);
  cr_assert_eq(tw_worker_do(&none, count_call, NULL), TW_EINVAL);
  cr_assert_eq(tw_worker_quit(NULL), TW_EINVAL);
  cr_assert_eq(tw_worker_quit(&none), TW_EINVAL);
  cr_assert_eq(tw_worker_free(NULL), TW_EINVAL);
  cr_assert_eq(tw_worker_free(&none), TW_EINVAL);
  cr_assert_eq(tw_thread_worker_new(NULL, NULL), TW_EINVAL);
  cr_assert_eq(tw_thread_worker_new_custom(NULL, &fake_starter), TW_EINVAL);
  cr_assert_eq(tw_thread_worker_new_custom(&w, NULL), TW_EINVAL);
  {
    tw_thread_starter no_start = {NULL, NULL, NULL};
    cr_assert_eq(tw_thread_worker_new_custom(&w, &no_start), TW_EINVAL);
  }
  cr_assert_eq(tw_lock_worker_new(NULL), TW_EINVAL);
  cr_assert_eq(tw_lock_worker_new_custom(&w, NULL, fake_release, NULL),
               TW_EINVAL);
  cr_assert_eq(tw_lock_worker_new_custom(&w, fake_acquire, NULL, NULL),
               TW_EINVAL);
  cr_assert_eq(tw_serial_worker_new(NULL), TW_EINVAL);
  cr_assert_eq(tw_memory_worker_new(NULL), TW_EINVAL);
  /* "did it run one": 0 for bad input, so while (perform(w)) ends. */
  cr_assert_eq(tw_memory_worker_perform(NULL), 0);
  cr_assert_eq(tw_uv_worker_new(NULL, NULL), TW_EINVAL);
  cr_assert_eq(tw_uv_worker_new(&w, NULL), TW_EINVAL);
  /* perform on a worker that is not a memory worker */
  cr_assert_eq(tw_serial_worker_new(&w), 0);
  cr_assert_eq(tw_memory_worker_perform(w), 0);
  cr_assert_eq(tw_worker_do(w, NULL, NULL), TW_EINVAL);
  tw_worker_free(w);
}

TWT_TEST(worker, work_fail_and_take_failure) {
  tw_failure *f;
  cr_assert_null(tw_work_take_failure());
  tw_work_fail(NULL);
  f = tw_work_take_failure();
  cr_assert(tw_failure_check(f, &TW_ERROR), "NULL gives a generic failure");
  tw_failure_unref(f);
  tw_work_fail(tw_failure_new(&TW_TYPE_ERROR, 0, "first"));
  tw_work_fail(tw_failure_new(&TW_VALUE_ERROR, 0, "second"));
  f = tw_work_take_failure();
  cr_assert(tw_failure_check(f, &TW_VALUE_ERROR), "the later one wins");
  tw_failure_unref(f);
  cr_assert_null(tw_work_take_failure());
}

TWT_TEST(worker, constructors_out_of_memory) {
  tw_worker *w = NULL;
  uv_loop_t loop;
  twt_alloc_fail_nth(1);
  cr_assert_eq(tw_thread_worker_new(&w, NULL), TW_ENOMEM);
  twt_alloc_fail_nth(1);
  cr_assert_eq(tw_thread_worker_new_custom(&w, &fake_starter), TW_ENOMEM);
  twt_alloc_fail_nth(1);
  cr_assert_eq(tw_lock_worker_new(&w), TW_ENOMEM);
  twt_alloc_fail_nth(1);
  cr_assert_eq(tw_lock_worker_new_custom(&w, fake_acquire, fake_release, NULL),
               TW_ENOMEM);
  twt_alloc_fail_nth(1);
  cr_assert_eq(tw_serial_worker_new(&w), TW_ENOMEM);
  twt_alloc_fail_nth(1);
  cr_assert_eq(tw_memory_worker_new(&w), TW_ENOMEM);
  cr_assert_eq(uv_loop_init(&loop), 0);
  twt_alloc_fail_nth(1);
  cr_assert_eq(tw_uv_worker_new(&w, &loop), TW_ENOMEM);
  cr_assert_null(w);
  cr_assert_eq(uv_loop_close(&loop), 0);
}

TWT_TEST(worker, do_out_of_memory_takes_nothing) {
  tw_worker *w;
  uv_loop_t loop;
  calls = 0;
  freed = 0;
  cr_assert_eq(tw_memory_worker_new(&w), 0);
  twt_alloc_fail_nth(1);
  cr_assert_eq(tw_worker_do_full(w, count_call, NULL, count_free), TW_ENOMEM);
  cr_assert_eq(tw_memory_worker_perform(w), 0);
  tw_worker_free(w);
  memset(&fake_thread, 0, sizeof(fake_thread));
  cr_assert_eq(tw_thread_worker_new_custom(&w, &fake_starter), 0);
  twt_alloc_fail_nth(1);
  cr_assert_eq(tw_worker_do_full(w, count_call, NULL, count_free), TW_ENOMEM);
  tw_worker_free(w);
  cr_assert_eq(uv_loop_init(&loop), 0);
  cr_assert_eq(tw_uv_worker_new(&w, &loop), 0);
  twt_alloc_fail_nth(1);
  cr_assert_eq(tw_worker_do_full(w, count_call, NULL, count_free), TW_ENOMEM);
  tw_worker_free(w);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(uv_loop_close(&loop), 0);
  cr_assert_eq(calls, 0);
  cr_assert_eq(freed, 0);
}
