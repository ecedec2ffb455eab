/*
 * tests/test_threadpool.c - ThreadPool (threadpool.h).
 *
 * Ports twisted/test/test_threadpool.py (names in snake_case):
 * ThreadPoolTests and RaceConditionTests on real threads, without sleeps -
 * a job that must block waits on a semaphore the test posts - and
 * MemoryBackedTests on a team of memory workers injected through
 * tw_threadpool_new_custom (Twisted's _pool hook), pumped by hand. Then
 * twuv's own contract: bad input, the cleanup path, statistics, thread
 * names, out of memory, TW_EDEADLK, and the pool over libuv's threads.
 *
 * Assertions run on the test's thread only: jobs record what they saw and
 * the test checks it once the pool has stopped (stop joins every thread).
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "twtest.h"

TWT_SUITE(threadpool);

static const tw_error_type NEW_ERROR = {"test.NewError", &TW_ERROR};

/* ---- helpers ----------------------------------------------------------- */

static void nothing(void *arg) { (void)arg; }

static tw_result return_none(void *arg) {
  (void)arg;
  return tw_result_none();
}

static void post(void *arg) { uv_sem_post(arg); }

static void raise_error(void *arg) {
  (void)arg;
  tw_work_fail(tw_failure_new(&NEW_ERROR, 0, "new error"));
}

#define frees twt_freed /* twtest.h */
#define count_free twt_count_free

static tw_threadpool_statistics stats(const tw_threadpool *tp) {
  tw_threadpool_statistics s;
  cr_assert_eq(tw_threadpool_stats(tp, &s), 0);
  return s;
}

/* What on_result saw, for the checks after stop. */
typedef struct seen {
  int calls;
  int is_failure;
  const tw_error_type *type;
  int code; /* of the failure */
  void *value;
  uv_thread_t thread;
  int arg_freed_before; /* the job's arg_free had run */
  uv_sem_t done;
} seen;

static void seen_init(seen *s) {
  memset(s, 0, sizeof(*s));
  cr_assert_eq(uv_sem_init(&s->done, 0), 0);
}

static void seen_on_result(tw_result r, void *ctx) {
  seen *s = ctx;
  s->calls++;
  s->thread = uv_thread_self();
  s->arg_freed_before = atomic_load(&frees);
  s->is_failure = tw_result_is_failure(r);
  if (s->is_failure) {
    s->type = tw_failure_type(r.u.failure);
    s->code = tw_failure_code(r.u.failure);
  } else {
    s->value = r.u.value;
  }
  tw_result_release(r);
  uv_sem_post(&s->done);
}

/* ---- ThreadPoolTests -------------------------------------------------------- */

TWT_TEST(threadpool, test_attributes) {
  tw_threadpool *tp;
  tw_threadpool_statistics s;
  cr_assert_eq(tw_threadpool_new(&tp, 12, 22, NULL), 0);
  s = stats(tp);
  cr_assert_eq(s.min_threads, 12);
  cr_assert_eq(s.max_threads, 22);
  cr_assert_eq(s.started, 0);
  cr_assert_eq(s.joined, 0);
  cr_assert_eq(tw_threadpool_free(tp), 0);
}

TWT_TEST(threadpool, test_start) {
  tw_threadpool *tp;
  cr_assert_eq(tw_threadpool_new(&tp, 0, 5, NULL), 0);
  cr_assert_eq(tw_threadpool_start(tp), 0);
  cr_assert_eq(stats(tp).threads_started, 0);
  cr_assert_eq(tw_threadpool_free(tp), 0);

  cr_assert_eq(tw_threadpool_new(&tp, 3, 10, NULL), 0);
  cr_assert_eq(stats(tp).threads_started, 0);
  cr_assert_eq(tw_threadpool_start(tp), 0);
  /* The grow ran on this thread (an idle serial coordinator runs at once). */
  cr_assert_eq(stats(tp).threads_started, 3);
  cr_assert_eq(stats(tp).workers, 3);
  cr_assert_eq(stats(tp).started, 1);
  cr_assert_eq(tw_threadpool_start(tp), 0, "starting twice is harmless");
  cr_assert_eq(stats(tp).threads_started, 3);
  cr_assert_eq(tw_threadpool_free(tp), 0);
}

TWT_TEST(threadpool, test_adjusting_when_pool_stopped) {
  /* Twisted ignores the sizes of a stopped pool; twuv says so. */
  tw_threadpool *tp;
  cr_assert_eq(tw_threadpool_new(&tp, 0, 5, NULL), 0);
  cr_assert_eq(tw_threadpool_start(tp), 0);
  cr_assert_eq(tw_threadpool_stop(tp), 0);
  cr_assert_eq(tw_threadpool_adjust_poolsize(tp, 2, -1), TW_EALREADYQUIT);
  cr_assert_eq(stats(tp).threads_started, 0);
  cr_assert_eq(stats(tp).min_threads, 0);
  cr_assert_eq(tw_threadpool_free(tp), 0);
}

/* The job's argument, released by arg_free. */
typedef struct unique {
  atomic_int used;
} unique;

static void use_unique(void *arg) { atomic_fetch_add(&((unique *)arg)->used, 1); }

static void free_unique(void *arg) {
  atomic_fetch_add(&frees, 1);
  free(arg);
}

TWT_TEST(threadpool, test_thread_creation_arguments) {
  /* In C: the pool releases the job's argument (arg_free, exactly once)
   * after running it, and keeps nothing: the leak check ends the test. */
  tw_threadpool *tp;
  uv_sem_t done;
  unique *u = calloc(1, sizeof(*u));
  atomic_store(&frees, 0);
  cr_assert_eq(uv_sem_init(&done, 0), 0);
  cr_assert_eq(tw_threadpool_new(&tp, 0, 1, NULL), 0);
  cr_assert_eq(tw_threadpool_start(tp), 0);
  cr_assert_eq(stats(tp).threads_started, 0);
  cr_assert_eq(tw_threadpool_call_in_thread(tp, use_unique, u, free_unique), 0);
  cr_assert_eq(tw_threadpool_call_in_thread(tp, post, &done, NULL), 0);
  uv_sem_wait(&done);
  /* FIFO on one thread: the first job and its arg_free are done. */
  cr_assert_eq(atomic_load(&frees), 1);
  cr_assert_eq(tw_threadpool_free(tp), 0);
  cr_assert_eq(atomic_load(&frees), 1);
  uv_sem_destroy(&done);
}

static atomic_int value_frees;
static void free_value(void *value) {
  atomic_fetch_add(&value_frees, 1);
  free(value);
}

static tw_result make_dumb(void *arg) {
  use_unique(arg);
  return tw_result_value(malloc(16), free_value);
}

TWT_TEST(threadpool, test_thread_creation_arguments_call_in_thread_with_callback) {
  /* The work (arg) is released before on_result runs; on_result owns the
   * result and releases it; the pool keeps nothing afterwards. */
  tw_threadpool *tp;
  seen s;
  unique *u = calloc(1, sizeof(*u));
  atomic_store(&frees, 0);
  atomic_store(&value_frees, 0);
  seen_init(&s);
  cr_assert_eq(tw_threadpool_new(&tp, 0, 1, NULL), 0);
  cr_assert_eq(tw_threadpool_start(tp), 0);
  cr_assert_eq(tw_threadpool_call_in_thread_with_callback(
                   tp, seen_on_result, &s, make_dumb, u, free_unique),
               0);
  uv_sem_wait(&s.done);
  cr_assert_eq(tw_threadpool_free(tp), 0);
  cr_assert_eq(s.calls, 1);
  cr_assert_eq(s.arg_freed_before, 1, "arg_free ran before on_result");
  cr_assert_not(s.is_failure);
  cr_assert_eq(atomic_load(&frees), 1);
  cr_assert_eq(atomic_load(&value_frees), 1);
  uv_sem_destroy(&s.done);
}

/* Twisted's Synchronization: run() is "synchronized", so two runs never
 * overlap; the inner lock detects an overlap. */
#define SYNC_N 10
static struct {
  uv_mutex_t sync;
  uv_mutex_t inner;
  int runs;
  int failures;
  uv_sem_t waiting;
} sy;

static void sync_run(void *arg) {
  (void)arg;
  uv_mutex_lock(&sy.sync);
  if (uv_mutex_trylock(&sy.inner) == 0)
    uv_mutex_unlock(&sy.inner);
  else
    sy.failures++;
  if (++sy.runs == SYNC_N) uv_sem_post(&sy.waiting);
  uv_mutex_unlock(&sy.sync);
}

TWT_TEST(threadpool, test_call_in_thread) {
  tw_threadpool *tp;
  int i;
  memset(&sy, 0, sizeof(sy));
  uv_mutex_init(&sy.sync);
  uv_mutex_init(&sy.inner);
  uv_sem_init(&sy.waiting, 0);
  cr_assert_eq(tw_threadpool_new(&tp, 5, 20, NULL), 0); /* Twisted's default */
  cr_assert_eq(tw_threadpool_start(tp), 0);
  for (i = 0; i < SYNC_N; i++)
    cr_assert_eq(tw_threadpool_call_in_thread(tp, sync_run, NULL, NULL), 0);
  uv_sem_wait(&sy.waiting);
  cr_assert_eq(tw_threadpool_free(tp), 0);
  cr_assert_eq(sy.failures, 0, "run() re-entered %d times", sy.failures);
  cr_assert_eq(sy.runs, SYNC_N);
  uv_sem_destroy(&sy.waiting);
  uv_mutex_destroy(&sy.inner);
  uv_mutex_destroy(&sy.sync);
}

TWT_TEST(threadpool, test_call_in_thread_exception) {
  tw_threadpool *tp;
  cr_assert_eq(tw_threadpool_new(&tp, 0, 1, NULL), 0);
  cr_assert_eq(tw_threadpool_call_in_thread(tp, raise_error, NULL, NULL), 0);
  cr_assert_eq(tw_threadpool_start(tp), 0);
  cr_assert_eq(tw_threadpool_stop(tp), 0);
  cr_assert_eq(twt_log_flush(&NEW_ERROR), 1);
  cr_assert_eq(stats(tp).completed, 1);
  cr_assert_eq(tw_threadpool_free(tp), 0);
}

static tw_result return_test(void *arg) {
  (void)arg;
  return tw_result_value("test", NULL);
}

TWT_TEST(threadpool, test_call_in_thread_with_callback) {
  tw_threadpool *tp;
  seen s;
  seen_init(&s);
  cr_assert_eq(tw_threadpool_new(&tp, 0, 1, NULL), 0);
  cr_assert_eq(tw_threadpool_call_in_thread_with_callback(tp, seen_on_result,
                                                          &s, return_test,
                                                          NULL, NULL),
               0);
  cr_assert_eq(tw_threadpool_start(tp), 0);
  uv_sem_wait(&s.done);
  cr_assert_eq(tw_threadpool_stop(tp), 0);
  cr_assert_not(s.is_failure);
  cr_assert_str_eq(s.value, "test");
  cr_assert_eq(tw_threadpool_free(tp), 0);
  uv_sem_destroy(&s.done);
}

static tw_result raise_error_result(void *arg) {
  raise_error(arg);
  return tw_result_none();
}

TWT_TEST(threadpool, test_call_in_thread_with_callback_exception_in_callback) {
  tw_threadpool *tp;
  seen s;
  seen_init(&s);
  cr_assert_eq(tw_threadpool_new(&tp, 0, 1, NULL), 0);
  cr_assert_eq(tw_threadpool_call_in_thread_with_callback(
                   tp, seen_on_result, &s, raise_error_result, NULL, NULL),
               0);
  cr_assert_eq(tw_threadpool_start(tp), 0);
  uv_sem_wait(&s.done);
  cr_assert_eq(tw_threadpool_stop(tp), 0);
  cr_assert(s.is_failure);
  cr_assert_eq(s.type, &NEW_ERROR);
  cr_assert_eq(twt_log_count(), 0, "the failure went to on_result only");
  cr_assert_eq(tw_threadpool_free(tp), 0);
  uv_sem_destroy(&s.done);
}

static seen raising_seen;
static void raising_on_result(tw_result r, void *ctx) {
  seen_on_result(r, ctx);
  tw_work_fail(tw_failure_new(&NEW_ERROR, 0, "from on_result"));
}

TWT_TEST(threadpool, test_call_in_thread_with_callback_exception_in_on_result) {
  tw_threadpool *tp;
  uv_sem_t waiter;
  seen_init(&raising_seen);
  uv_sem_init(&waiter, 0);
  cr_assert_eq(tw_threadpool_new(&tp, 0, 1, NULL), 0);
  cr_assert_eq(tw_threadpool_call_in_thread_with_callback(
                   tp, raising_on_result, &raising_seen, return_none, NULL,
                   NULL),
               0);
  cr_assert_eq(tw_threadpool_call_in_thread(tp, post, &waiter, NULL), 0);
  cr_assert_eq(tw_threadpool_start(tp), 0);
  uv_sem_wait(&waiter); /* the pool carried on with the next job */
  cr_assert_eq(tw_threadpool_stop(tp), 0);
  cr_assert_eq(twt_log_flush(&NEW_ERROR), 1);
  cr_assert_eq(raising_seen.calls, 1);
  cr_assert_not(raising_seen.is_failure);
  cr_assert_null(raising_seen.value);
  cr_assert_eq(stats(tp).threads_started, 1, "the thread survived");
  cr_assert_eq(tw_threadpool_free(tp), 0);
  uv_sem_destroy(&waiter);
  uv_sem_destroy(&raising_seen.done);
}

static uv_thread_t fn_thread;
static tw_result note_thread(void *arg) {
  (void)arg;
  fn_thread = uv_thread_self();
  return tw_result_none();
}

TWT_TEST(threadpool, test_callback_thread) {
  tw_threadpool *tp;
  seen s;
  uv_thread_t self = uv_thread_self();
  seen_init(&s);
  cr_assert_eq(tw_threadpool_new(&tp, 0, 1, NULL), 0);
  cr_assert_eq(tw_threadpool_call_in_thread_with_callback(
                   tp, seen_on_result, &s, note_thread, NULL, NULL),
               0);
  cr_assert_eq(tw_threadpool_start(tp), 0);
  uv_sem_wait(&s.done);
  cr_assert_eq(tw_threadpool_free(tp), 0);
  cr_assert(uv_thread_equal(&fn_thread, &s.thread));
  cr_assert_not(uv_thread_equal(&fn_thread, &self));
  uv_sem_destroy(&s.done);
}

TWT_TEST(threadpool, test_existing_work) {
  tw_threadpool *tp;
  uv_sem_t waiter;
  uv_sem_init(&waiter, 0);
  cr_assert_eq(tw_threadpool_new(&tp, 0, 1, NULL), 0);
  cr_assert_eq(tw_threadpool_call_in_thread(tp, post, &waiter, NULL), 0);
  cr_assert_eq(stats(tp).queued, 1);
  cr_assert_eq(tw_threadpool_start(tp), 0);
  uv_sem_wait(&waiter);
  cr_assert_eq(tw_threadpool_free(tp), 0);
  uv_sem_destroy(&waiter);
}

/* A job that says it started and waits to be released. */
typedef struct gate_job {
  uv_sem_t working;
  uv_sem_t finish;
} gate_job;

static void gate_job_init(gate_job *g) {
  uv_sem_init(&g->working, 0);
  uv_sem_init(&g->finish, 0);
}

static void gate_job_destroy(gate_job *g) {
  uv_sem_destroy(&g->working);
  uv_sem_destroy(&g->finish);
}

static void gated(void *arg) {
  gate_job *g = arg;
  uv_sem_post(&g->working);
  uv_sem_wait(&g->finish);
}

TWT_TEST(threadpool, test_worker_state_transition) {
  tw_threadpool *tp;
  tw_threadpool_statistics s;
  gate_job g;
  gate_job_init(&g);
  cr_assert_eq(tw_threadpool_new(&tp, 0, 1, NULL), 0);
  cr_assert_eq(tw_threadpool_start(tp), 0);
  s = stats(tp);
  cr_assert_eq(s.workers, 0);
  cr_assert_eq(s.waiters, 0);
  cr_assert_eq(s.working, 0);
  cr_assert_eq(tw_threadpool_call_in_thread(tp, gated, &g, NULL), 0);
  uv_sem_wait(&g.working);
  s = stats(tp);
  cr_assert_eq(s.workers, 1);
  cr_assert_eq(s.waiters, 0);
  cr_assert_eq(s.working, 1);
  uv_sem_post(&g.finish);
  /* The worker recycles itself after the job, on its own thread, with no
   * event to wait for: spin on the state, as Twisted does (no sleep). */
  while (stats(tp).waiters != 1) sched_yield();
  s = stats(tp);
  cr_assert_eq(s.waiters, 1);
  cr_assert_eq(s.working, 0);
  cr_assert_eq(tw_threadpool_free(tp), 0);
  gate_job_destroy(&g);
}

TWT_TEST(threadpool, test_q) {
  tw_threadpool *tp;
  cr_assert_eq(tw_threadpool_new(&tp, 5, 20, NULL), 0);
  cr_assert_eq(stats(tp).queued, 0);
  cr_assert_eq(tw_threadpool_free(tp), 0);
}

/* ---- RaceConditionTests ------------------------------------------------------ */

typedef struct event {
  uv_mutex_t mutex;
  uv_cond_t cond;
  int set;
} event;

static event ev;

static void event_set(void *arg) {
  (void)arg;
  uv_mutex_lock(&ev.mutex);
  ev.set = 1;
  uv_cond_broadcast(&ev.cond);
  uv_mutex_unlock(&ev.mutex);
}

static void event_wait(void *arg) {
  (void)arg;
  uv_mutex_lock(&ev.mutex);
  while (!ev.set) uv_cond_wait(&ev.cond, &ev.mutex);
  uv_mutex_unlock(&ev.mutex);
}

TWT_TEST_OPTS(threadpool, test_synchronization, .timeout = 60) {
  /* Three jobs wait for an event that a fourth sets: the fourth must get a
   * fresh thread (spare capacity) rather than wait behind them. A pool that
   * queued it would hang here, and the timeout would fail the test. */
  tw_threadpool *tp;
  int i;
  memset(&ev, 0, sizeof(ev));
  uv_mutex_init(&ev.mutex);
  uv_cond_init(&ev.cond);
  cr_assert_eq(tw_threadpool_new(&tp, 0, 10, NULL), 0);
  cr_assert_eq(tw_threadpool_start(tp), 0);
  cr_assert_eq(tw_threadpool_call_in_thread(tp, event_set, NULL, NULL), 0);
  event_wait(NULL);
  uv_mutex_lock(&ev.mutex);
  ev.set = 0;
  uv_mutex_unlock(&ev.mutex);
  for (i = 0; i < 3; i++)
    cr_assert_eq(tw_threadpool_call_in_thread(tp, event_wait, NULL, NULL), 0);
  cr_assert_eq(tw_threadpool_call_in_thread(tp, event_set, NULL, NULL), 0);
  event_wait(NULL);
  cr_assert_eq(tw_threadpool_free(tp), 0);
  uv_cond_destroy(&ev.cond);
  uv_mutex_destroy(&ev.mutex);
}

/* ---- MemoryBackedTests: a pool on memory workers ------------------------------ */

/*
 * Twisted's MemoryPool/PoolHelper: the team's coordinator and every worker
 * are memory workers, run by hand. The coordinator is wrapped so that, once
 * the test is over (mp.auto), each step it receives drives everything to a
 * standstill on the spot: stop's quit step then completes inside stop.
 */
#define MP_MAX 64

typedef struct mp_coordinator {
  tw_worker base;
  tw_worker *inner;
} mp_coordinator;

static struct {
  tw_worker *coordinator; /* the inner memory worker */
  tw_worker *workers[MP_MAX];
  int n_workers;
  int live; /* created and not quit */
  tw_team *team;
  tw_pool_limit_fn limit;
  void *limit_ctx;
  int team_rc; /* what create_team returns */
  int no_team; /* return 0 without a team */
  int auto_pump, pumping;
  int failures; /* Twisted's failTest */
} mp;

static int mp_coordinate(void) {
  int did = 0;
  while (tw_memory_worker_perform(mp.coordinator) == 1) did = 1;
  return did;
}

/* PoolHelper.performAllCoordination plus the workers: to a standstill. */
static void mp_pump(void) {
  int go = 1, i;
  while (go) {
    go = mp_coordinate();
    for (i = 0; i < mp.n_workers; i++)
      if (tw_memory_worker_perform(mp.workers[i]) == 1) go = 1;
    go = mp_coordinate() || go;
  }
}

static int mpc_do(tw_worker *w, tw_call_fn fn, void *arg, tw_free_fn arg_free) {
  int rc = tw_worker_do_full(((mp_coordinator *)w)->inner, fn, arg, arg_free);
  if (rc == 0 && mp.auto_pump && !mp.pumping) {
    mp.pumping = 1;
    mp_pump();
    mp.pumping = 0;
  }
  return rc;
}

static int mpc_quit(tw_worker *w) {
  return tw_worker_quit(((mp_coordinator *)w)->inner);
}

static int mpc_destroy(tw_worker *w) {
  int rc = tw_worker_free(((mp_coordinator *)w)->inner);
  free(w);
  return rc;
}

static const tw_worker_vtable mpc_vtable = {mpc_do, mpc_quit, mpc_destroy};

/*
 * A memory worker that counts itself out when it quits: respectLimit needs
 * the team's worker count as the coordinator sees it, and the published
 * statistics only catch up at the end of each coordination step.
 */
typedef struct mp_worker {
  tw_worker base;
  tw_worker *inner;
} mp_worker;

static int mpw_do(tw_worker *w, tw_call_fn fn, void *arg, tw_free_fn arg_free) {
  return tw_worker_do_full(((mp_worker *)w)->inner, fn, arg, arg_free);
}

static int mpw_quit(tw_worker *w) {
  int rc = tw_worker_quit(((mp_worker *)w)->inner);
  if (rc == 0) mp.live--;
  return rc;
}

static int mpw_destroy(tw_worker *w) {
  int rc = tw_worker_free(((mp_worker *)w)->inner);
  free(w);
  return rc;
}

static const tw_worker_vtable mpw_vtable = {mpw_do, mpw_quit, mpw_destroy};

/* MemoryPool._pool's respectLimit. */
static tw_worker *mp_new_worker(void *ctx) {
  mp_worker *w;
  (void)ctx;
  if ((size_t)mp.live >= mp.limit(mp.limit_ctx) || mp.n_workers == MP_MAX)
    return NULL;
  w = calloc(1, sizeof(*w));
  w->base.vtable = &mpw_vtable;
  cr_assert_eq(tw_memory_worker_new(&w->inner), 0);
  mp.workers[mp.n_workers++] = w->inner;
  mp.live++;
  return &w->base;
}

static void mp_log(tw_failure *f, void *ctx) {
  (void)f;
  (void)ctx;
  mp.failures++;
}

static int mp_create_team(tw_team **out, tw_pool_limit_fn limit,
                          void *limit_ctx, const char *name, void *ctx) {
  mp_coordinator *c;
  int rc;
  (void)ctx;
  cr_assert_str_eq(name, "tw-pool");
  if (mp.team_rc != 0) return mp.team_rc;
  if (mp.no_team) return 0;
  c = calloc(1, sizeof(*c));
  c->base.vtable = &mpc_vtable;
  cr_assert_eq(tw_memory_worker_new(&c->inner), 0);
  mp.coordinator = c->inner;
  mp.limit = limit;
  mp.limit_ctx = limit_ctx;
  rc = tw_team_new(&mp.team, &c->base, mp_new_worker, mp_log, NULL);
  cr_assert_eq(rc, 0);
  *out = mp.team;
  return 0;
}

static tw_threadpool *mp_pool(int min, int max) {
  tw_threadpool *tp;
  memset(&mp, 0, sizeof(mp));
  cr_assert_eq(
      tw_threadpool_new_custom(&tp, min, max, NULL, mp_create_team, NULL), 0);
  return tp;
}

/* Free the pool, driving the team to its end inside stop. */
static void mp_free(tw_threadpool *tp) {
  mp.auto_pump = 1;
  /* Once stopped, the team and its memory workers are gone. */
  if (!stats(tp).joined) mp_pump();
  cr_assert_eq(tw_threadpool_free(tp), 0);
  cr_assert_eq(mp.failures, 0);
}

TWT_TEST(threadpool, test_work_before_starting) {
  tw_threadpool *tp = mp_pool(0, 10);
  int i;
  for (i = 0; i < 5; i++)
    cr_assert_eq(tw_threadpool_call_in_thread(tp, nothing, NULL, NULL), 0);
  mp_coordinate();
  cr_assert_eq(mp.n_workers, 0);
  cr_assert_eq(stats(tp).queued, 5);
  cr_assert_eq(tw_threadpool_start(tp), 0);
  mp_coordinate();
  cr_assert_eq(mp.n_workers, 5);
  mp_free(tp);
}

TWT_TEST(threadpool, test_too_much_work_before_starting) {
  tw_threadpool *tp = mp_pool(0, 10);
  int i;
  for (i = 0; i < 50; i++)
    cr_assert_eq(tw_threadpool_call_in_thread(tp, nothing, NULL, NULL), 0);
  mp_coordinate();
  cr_assert_eq(mp.n_workers, 0);
  cr_assert_eq(tw_threadpool_start(tp), 0);
  mp_coordinate();
  cr_assert_eq(mp.n_workers, stats(tp).max_threads);
  cr_assert_eq(mp.n_workers, 10);
  mp_pump();
  cr_assert_eq(stats(tp).completed, 50);
  cr_assert_eq(mp.n_workers, 10);
  mp_free(tp);
}

TWT_TEST(threadpool, worker_state_transition_step_by_step) {
  /* test_worker_state_transition, with every step made by hand. */
  tw_threadpool *tp = mp_pool(0, 1);
  tw_threadpool_statistics s;
  cr_assert_eq(tw_threadpool_start(tp), 0);
  cr_assert_eq(tw_threadpool_call_in_thread(tp, nothing, NULL, NULL), 0);
  s = stats(tp);
  cr_assert_eq(s.workers + s.queued, 0, "nothing coordinated yet");
  mp_coordinate();
  s = stats(tp);
  cr_assert_eq(s.workers, 1);
  cr_assert_eq(s.waiters, 0);
  cr_assert_eq(s.working, 1);
  cr_assert_eq(tw_memory_worker_perform(mp.workers[0]), 1);
  cr_assert_eq(stats(tp).completed, 1);
  cr_assert_eq(stats(tp).working, 1, "recycled by the coordinator");
  mp_coordinate();
  s = stats(tp);
  cr_assert_eq(s.waiters, 1);
  cr_assert_eq(s.working, 0);
  mp_free(tp);
}

TWT_TEST(threadpool, adjust_poolsize_shrinks_and_grows) {
  tw_threadpool *tp = mp_pool(0, 10);
  int i;
  cr_assert_eq(tw_threadpool_adjust_poolsize(tp, 2, -1), 0);
  mp_pump();
  cr_assert_eq(mp.n_workers, 0, "not started: sizes only");
  cr_assert_eq(tw_threadpool_start(tp), 0);
  mp_pump();
  cr_assert_eq(stats(tp).workers, 2, "grown to min at start");
  for (i = 0; i < 5; i++)
    cr_assert_eq(tw_threadpool_call_in_thread(tp, nothing, NULL, NULL), 0);
  mp_coordinate();
  cr_assert_eq(stats(tp).workers, 5);
  mp_pump();
  cr_assert_eq(stats(tp).waiters, 5);
  cr_assert_eq(tw_threadpool_adjust_poolsize(tp, -1, 3), 0);
  mp_pump();
  cr_assert_eq(stats(tp).workers, 3);
  cr_assert_eq(tw_threadpool_adjust_poolsize(tp, 1, 1), 0);
  mp_pump();
  cr_assert_eq(stats(tp).workers, 1);
  cr_assert_eq(tw_threadpool_adjust_poolsize(tp, 4, 6), 0);
  mp_pump();
  cr_assert_eq(stats(tp).workers, 4);
  cr_assert_eq(stats(tp).min_threads, 4);
  cr_assert_eq(stats(tp).max_threads, 6);
  mp_free(tp);
}

static int order[8], order_n;
static void note_order(void *arg) { order[order_n++] = (int)(intptr_t)arg; }

TWT_TEST(threadpool, raising_max_does_not_dispatch_the_backlog) {
  /* Twisted: only a worker becoming idle or new work moves the backlog,
   * and new work then overtakes it. */
  tw_threadpool *tp = mp_pool(0, 1);
  int i;
  order_n = 0;
  cr_assert_eq(tw_threadpool_start(tp), 0);
  for (i = 0; i < 3; i++)
    tw_threadpool_call_in_thread(tp, note_order, (void *)(intptr_t)i, NULL);
  mp_coordinate();
  cr_assert_eq(stats(tp).working, 1);
  cr_assert_eq(stats(tp).queued, 2);
  cr_assert_eq(tw_threadpool_adjust_poolsize(tp, -1, 3), 0);
  mp_coordinate();
  cr_assert_eq(stats(tp).working, 1);
  cr_assert_eq(stats(tp).queued, 2);
  tw_threadpool_call_in_thread(tp, note_order, (void *)(intptr_t)9, NULL);
  mp_coordinate();
  cr_assert_eq(stats(tp).working, 2);
  cr_assert_eq(tw_memory_worker_perform(mp.workers[1]), 1);
  mp_pump();
  cr_assert_eq(order_n, 4);
  cr_assert_eq(order[0], 9, "the new job overtook the backlog");
  mp_free(tp);
}

TWT_TEST(threadpool, stop_serves_the_backlog_through_live_threads) {
  tw_threadpool *tp = mp_pool(0, 1);
  int i;
  atomic_store(&frees, 0);
  cr_assert_eq(tw_threadpool_start(tp), 0);
  for (i = 0; i < 3; i++)
    tw_threadpool_call_in_thread(tp, nothing, NULL, count_free);
  mp_coordinate();
  cr_assert_eq(stats(tp).queued, 2);
  mp.auto_pump = 1;
  cr_assert_eq(tw_threadpool_stop(tp), 0);
  cr_assert_eq(stats(tp).completed, 3);
  cr_assert_eq(stats(tp).cancelled, 0);
  cr_assert_eq(atomic_load(&frees), 3);
  mp_free(tp);
}

/* ---- The cleanup path --------------------------------------------------------- */

static atomic_int ran;
static void count_run(void *arg) {
  (void)arg;
  atomic_fetch_add(&ran, 1);
}
static tw_result count_run_result(void *arg) {
  count_run(arg);
  return tw_result_none();
}

TWT_TEST(threadpool, cleanup_path_when_stopped_before_start) {
  tw_threadpool *tp;
  seen a, b;
  uv_thread_t self = uv_thread_self();
  tw_threadpool_statistics s;
  atomic_store(&frees, 0);
  atomic_store(&ran, 0);
  seen_init(&a);
  seen_init(&b);
  cr_assert_eq(tw_threadpool_new(&tp, 2, 4, NULL), 0);
  cr_assert_eq(tw_threadpool_call_in_thread(tp, count_run, NULL, count_free), 0);
  cr_assert_eq(tw_threadpool_call_in_thread_with_callback(
                   tp, seen_on_result, &a, count_run_result, NULL, count_free),
               0);
  cr_assert_eq(tw_threadpool_call_in_thread_with_callback(
                   tp, seen_on_result, &b, count_run_result, NULL, NULL),
               0);
  cr_assert_eq(stats(tp).queued, 3);
  cr_assert_eq(tw_threadpool_stop(tp), 0);
  cr_assert_eq(atomic_load(&ran), 0);
  cr_assert_eq(atomic_load(&frees), 2);
  cr_assert_eq(a.calls, 1);
  cr_assert(a.is_failure);
  cr_assert_eq(a.type, &TW_CANCELLED_ERROR);
  cr_assert_eq(a.arg_freed_before, 2, "arg_free before on_result");
  cr_assert(uv_thread_equal(&a.thread, &self), "on the stopping thread");
  cr_assert_eq(b.calls, 1);
  cr_assert_eq(b.type, &TW_CANCELLED_ERROR);
  s = stats(tp);
  cr_assert_eq(s.submitted, 3);
  cr_assert_eq(s.completed, 0);
  cr_assert_eq(s.cancelled, 3);
  cr_assert_eq(s.queued, 0);
  cr_assert_eq(s.joined, 1);
  cr_assert_eq(s.threads_started, 0);
  cr_assert_eq(tw_threadpool_free(tp), 0);
  cr_assert_eq(a.calls + b.calls, 2, "exactly once");
  uv_sem_destroy(&a.done);
  uv_sem_destroy(&b.done);
}

TWT_TEST(threadpool, cleanup_path_when_freed_before_start) {
  tw_threadpool *tp;
  seen a;
  atomic_store(&frees, 0);
  atomic_store(&ran, 0);
  seen_init(&a);
  cr_assert_eq(tw_threadpool_new(&tp, 0, 4, "never"), 0);
  cr_assert_eq(tw_threadpool_call_in_thread(tp, count_run, NULL, count_free), 0);
  cr_assert_eq(tw_threadpool_call_in_thread_with_callback(
                   tp, seen_on_result, &a, count_run_result, NULL, count_free),
               0);
  cr_assert_eq(tw_threadpool_free(tp), 0);
  cr_assert_eq(atomic_load(&ran), 0);
  cr_assert_eq(atomic_load(&frees), 2);
  cr_assert_eq(a.calls, 1);
  cr_assert_eq(a.type, &TW_CANCELLED_ERROR);
  uv_sem_destroy(&a.done);
}

TWT_TEST(threadpool, cleanup_path_for_a_pool_that_may_have_no_thread) {
  /* max 0: started, but no thread may ever start. */
  tw_threadpool *tp;
  atomic_store(&frees, 0);
  cr_assert_eq(tw_threadpool_new(&tp, 0, 0, NULL), 0);
  cr_assert_eq(tw_threadpool_start(tp), 0);
  cr_assert_eq(tw_threadpool_call_in_thread(tp, count_run, NULL, count_free), 0);
  cr_assert_eq(stats(tp).queued, 1);
  cr_assert_eq(tw_threadpool_stop(tp), 0);
  cr_assert_eq(stats(tp).cancelled, 1);
  cr_assert_eq(atomic_load(&frees), 1);
  cr_assert_eq(tw_threadpool_free(tp), 0);
}

/* ---- twuv's contract ------------------------------------------------------------ */

TWT_TEST(threadpool, bad_input) {
  tw_threadpool *tp = (tw_threadpool *)&tp, *sentinel = tp;
  tw_threadpool_statistics s;
  uv_loop_t loop;
  atomic_store(&frees, 0);
  cr_assert_eq(tw_threadpool_new(NULL, 0, 1, NULL), TW_EINVAL);
  cr_assert_eq(tw_threadpool_new(&tp, -1, 1, NULL), TW_EINVAL);
  cr_assert_eq(tw_threadpool_new(&tp, 5, 4, NULL), TW_EINVAL);
  cr_assert_eq(tw_threadpool_new(&tp, 0, 1025, NULL), TW_EINVAL);
  cr_assert_eq(tw_threadpool_new(&tp, 1025, 1025, NULL), TW_EINVAL);
  cr_assert_eq(tw_threadpool_new_custom(&tp, 0, 1, NULL, NULL, NULL),
               TW_EINVAL);
  cr_assert_eq(tw_threadpool_new_uv(NULL, &loop), TW_EINVAL);
  cr_assert_eq(tw_threadpool_new_uv(&tp, NULL), TW_EINVAL);
  cr_assert_eq(tp, sentinel, "out untouched on error");
  cr_assert_eq(tw_threadpool_start(NULL), TW_EINVAL);
  cr_assert_eq(tw_threadpool_stop(NULL), TW_EINVAL);
  cr_assert_eq(tw_threadpool_free(NULL), TW_EINVAL);
  cr_assert_eq(tw_threadpool_adjust_poolsize(NULL, 1, 2), TW_EINVAL);
  cr_assert_eq(tw_threadpool_stats(NULL, &s), TW_EINVAL);
  cr_assert_eq(tw_threadpool_call_in_thread(NULL, nothing, NULL, count_free),
               TW_EINVAL);
  cr_assert_eq(tw_threadpool_call_in_thread_with_callback(
                   NULL, seen_on_result, NULL, return_none, NULL, count_free),
               TW_EINVAL);

  cr_assert_eq(tw_threadpool_new(&tp, 0, 1024, NULL), 0);
  cr_assert_eq(tw_threadpool_stats(tp, NULL), TW_EINVAL);
  cr_assert_eq(tw_threadpool_call_in_thread(tp, NULL, NULL, count_free),
               TW_EINVAL);
  cr_assert_eq(tw_threadpool_call_in_thread_with_callback(
                   tp, NULL, NULL, return_none, NULL, count_free),
               TW_EINVAL);
  cr_assert_eq(tw_threadpool_call_in_thread_with_callback(
                   tp, seen_on_result, NULL, NULL, NULL, count_free),
               TW_EINVAL);
  cr_assert_eq(atomic_load(&frees), 0, "nothing taken");
  cr_assert_eq(tw_threadpool_adjust_poolsize(tp, 2, 3), 0);
  cr_assert_eq(tw_threadpool_adjust_poolsize(tp, -2, -1), TW_EINVAL);
  cr_assert_eq(tw_threadpool_adjust_poolsize(tp, -1, -7), TW_EINVAL);
  cr_assert_eq(tw_threadpool_adjust_poolsize(tp, 5, 4), TW_EINVAL);
  cr_assert_eq(tw_threadpool_adjust_poolsize(tp, 4, -1), TW_EINVAL);
  cr_assert_eq(tw_threadpool_adjust_poolsize(tp, -1, 1), TW_EINVAL);
  cr_assert_eq(tw_threadpool_adjust_poolsize(tp, -1, 1025), TW_EINVAL);
  cr_assert_eq(stats(tp).min_threads, 2, "nothing changed");
  cr_assert_eq(stats(tp).max_threads, 3);
  cr_assert_eq(tw_threadpool_adjust_poolsize(tp, -1, -1), 0);
  cr_assert_eq(stats(tp).submitted, 0);
  cr_assert_eq(tw_threadpool_free(tp), 0);
}

TWT_TEST(threadpool, stop_twice_and_use_after_stop) {
  tw_threadpool *tp;
  seen s;
  seen_init(&s);
  atomic_store(&frees, 0);
  cr_assert_eq(tw_threadpool_new(&tp, 1, 2, NULL), 0);
  cr_assert_eq(tw_threadpool_start(tp), 0);
  cr_assert_eq(tw_threadpool_stop(tp), 0);
  cr_assert_eq(tw_threadpool_stop(tp), TW_EALREADYQUIT);
  cr_assert_eq(tw_threadpool_start(tp), TW_EALREADYQUIT, "no restart");
  cr_assert_eq(tw_threadpool_adjust_poolsize(tp, 0, 1), TW_EALREADYQUIT);
  cr_assert_eq(tw_threadpool_call_in_thread(tp, nothing, NULL, count_free),
               TW_EALREADYQUIT, "Twisted drops it silently");
  cr_assert_eq(tw_threadpool_call_in_thread_with_callback(
                   tp, seen_on_result, &s, return_none, NULL, count_free),
               TW_EALREADYQUIT);
  cr_assert_eq(atomic_load(&frees), 0);
  cr_assert_eq(s.calls, 0);
  cr_assert_eq(stats(tp).joined, 1);
  cr_assert_eq(stats(tp).started, 0);
  cr_assert_eq(stats(tp).submitted, 0);
  cr_assert_eq(stats(tp).threads_started, 1);
  cr_assert_eq(stats(tp).workers, 0);
  cr_assert_eq(tw_threadpool_free(tp), 0);
  uv_sem_destroy(&s.done);
}

/* Stop and free from the pool's own work. */
static struct {
  tw_threadpool *tp;
  int fn_stop, fn_free, arg_free_stop, on_result_free, on_result_submit;
} inside;

static tw_result stop_from_fn(void *arg) {
  (void)arg;
  inside.fn_stop = tw_threadpool_stop(inside.tp);
  inside.fn_free = tw_threadpool_free(inside.tp);
  return tw_result_none();
}

static void stop_from_arg_free(void *arg) {
  (void)arg;
  inside.arg_free_stop = tw_threadpool_stop(inside.tp);
}

static void free_from_on_result(tw_result r, void *ctx) {
  tw_result_release(r);
  inside.on_result_free = tw_threadpool_free(inside.tp);
  inside.on_result_submit =
      tw_threadpool_call_in_thread(inside.tp, nothing, NULL, NULL);
  if (ctx != NULL) uv_sem_post(ctx);
}

TWT_TEST(threadpool, stop_and_free_from_the_pool_are_edeadlk) {
  uv_sem_t done;
  uv_sem_init(&done, 0);
  memset(&inside, 0, sizeof(inside));
  cr_assert_eq(tw_threadpool_new(&inside.tp, 0, 1, NULL), 0);
  cr_assert_eq(tw_threadpool_start(inside.tp), 0);
  cr_assert_eq(tw_threadpool_call_in_thread_with_callback(
                   inside.tp, free_from_on_result, &done, stop_from_fn, NULL,
                   stop_from_arg_free),
               0);
  uv_sem_wait(&done);
  cr_assert_eq(inside.fn_stop, TW_EDEADLK);
  cr_assert_eq(inside.fn_free, TW_EDEADLK);
  cr_assert_eq(inside.arg_free_stop, TW_EDEADLK);
  cr_assert_eq(inside.on_result_free, TW_EDEADLK);
  cr_assert_eq(inside.on_result_submit, 0, "submitting from inside is fine");
  cr_assert_eq(stats(inside.tp).started, 1, "nothing changed");
  cr_assert_eq(tw_threadpool_free(inside.tp), 0);

  /* The cleanup path runs on the stopping thread, inside the pool too. */
  cr_assert_eq(tw_threadpool_new(&inside.tp, 0, 1, NULL), 0);
  cr_assert_eq(tw_threadpool_call_in_thread_with_callback(
                   inside.tp, free_from_on_result, NULL, return_none, NULL,
                   NULL),
               0);
  cr_assert_eq(tw_threadpool_stop(inside.tp), 0);
  cr_assert_eq(inside.on_result_free, TW_EDEADLK);
  cr_assert_eq(inside.on_result_submit, TW_EALREADYQUIT);
  cr_assert_eq(stats(inside.tp).cancelled, 1);
  cr_assert_eq(tw_threadpool_free(inside.tp), 0);
  uv_sem_destroy(&done);
}

/* The library's clock reads go through libuv's exported uv_hrtime; this
 * definition takes their place (the executable's symbol interposes libuv's)
 * and counts them. The same clock as libuv's on Linux: CLOCK_MONOTONIC. */
static atomic_ulong hrtime_reads;

uint64_t uv_hrtime(void) {
  struct timespec ts;
  atomic_fetch_add_explicit(&hrtime_reads, 1, memory_order_relaxed);
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Issue 17 item 7: the process's first pool measured the TSC's rate with
 * 2 ms of clock reads in a spin (tens of thousands of uv_hrtime calls), for
 * statistics most programs never read. Making, running and freeing a pool
 * now reads the clock a handful of times; the rate is measured when
 * statistics are first read. (Each Criterion test is a fresh process, so
 * this is its first pool. Without an invariant TSC nothing spins at all.) */
TWT_TEST(threadpool, new_run_free_do_not_calibrate_the_clock) {
  tw_threadpool *tp;
  unsigned long reads;
  unsigned long before = atomic_load(&hrtime_reads);
  cr_assert_eq(tw_threadpool_new(&tp, 0, 1, "quiet"), 0);
  cr_assert_eq(tw_threadpool_start(tp), 0);
  cr_assert_eq(tw_threadpool_call_in_thread(tp, nothing, NULL, NULL), 0);
  cr_assert_eq(tw_threadpool_stop(tp), 0);
  cr_assert_eq(tw_threadpool_free(tp), 0);
  reads = atomic_load(&hrtime_reads) - before;
  cr_assert_lt(reads, 64, "%lu clock reads: the pool calibrated the clock",
               reads);
}

TWT_TEST(threadpool, stats_count_jobs_and_time) {
  tw_threadpool *tp;
  tw_threadpool_statistics s;
  gate_job g;
  gate_job_init(&g);
  cr_assert_eq(tw_threadpool_new(&tp, 0, 1, "stats"), 0);
  cr_assert_eq(tw_threadpool_call_in_thread(tp, gated, &g, NULL), 0);
  s = stats(tp);
  cr_assert_eq(s.submitted, 1);
  cr_assert_eq(s.queued, 1);
  cr_assert_eq(s.queue_wait_ns, 0);
  cr_assert_eq(tw_threadpool_start(tp), 0);
  uv_sem_wait(&g.working);
  cr_assert_eq(tw_threadpool_call_in_thread(tp, nothing, NULL, NULL), 0);
  s = stats(tp);
  cr_assert_eq(s.workers, 1);
  cr_assert_eq(s.working, 1);
  cr_assert_eq(s.waiters, 0);
  cr_assert_eq(s.queued, 1, "behind the busy thread");
  cr_assert_eq(s.submitted, 2);
  cr_assert_eq(s.completed, 0);
  cr_assert_eq(s.threads_started, 1);
  cr_assert(s.queue_wait_ns > 0, "the first job waited for start");
  uv_sem_post(&g.finish);
  cr_assert_eq(tw_threadpool_stop(tp), 0);
  s = stats(tp);
  cr_assert_eq(s.submitted, 2);
  cr_assert_eq(s.completed, 2);
  cr_assert_eq(s.cancelled, 0);
  cr_assert(s.run_ns > 0);
  cr_assert_eq(s.workers + s.waiters + s.working + s.queued, 0);
  cr_assert_eq(s.threads_started, 1);
  cr_assert_eq(s.started, 0);
  cr_assert_eq(s.joined, 1);
  cr_assert_eq(tw_threadpool_free(tp), 0);
  gate_job_destroy(&g);
}

/* Thread names: each job notes its thread's name and waits at a barrier,
 * so that every job runs on a thread of its own. */
static uv_barrier_t name_barrier;
static char names[4][16];
static atomic_int name_n;
static void note_name(void *arg) {
  (void)arg;
  pthread_getname_np(pthread_self(), names[atomic_fetch_add(&name_n, 1)], 16);
  uv_barrier_wait(&name_barrier);
}

static void check_names(const char *pool_name, int n, const char *expected[]) {
  tw_threadpool *tp;
  int i, j;
  atomic_store(&name_n, 0);
  memset(names, 0, sizeof(names));
  cr_assert_eq(uv_barrier_init(&name_barrier, (unsigned)n + 1), 0);
  cr_assert_eq(tw_threadpool_new(&tp, 0, n, pool_name), 0);
  cr_assert_eq(tw_threadpool_start(tp), 0);
  for (i = 0; i < n; i++)
    cr_assert_eq(tw_threadpool_call_in_thread(tp, note_name, NULL, NULL), 0);
  uv_barrier_wait(&name_barrier);
  cr_assert_eq(tw_threadpool_free(tp), 0);
  uv_barrier_destroy(&name_barrier);
  for (i = 0; i < n; i++) {
    int found = 0;
    for (j = 0; j < n; j++) found += strcmp(names[j], expected[i]) == 0;
    cr_assert_eq(found, 1, "thread %s: seen %s, %s, ...", expected[i],
                 names[0], names[1]);
  }
}

TWT_TEST(threadpool, threads_are_named_after_the_pool) {
  const char *defaults[] = {"tw-pool-1"};
  const char *mine[] = {"mypool-1", "mypool-2"};
  const char *longer[] = {"a-very-long-p-1", "a-very-long-p-2"};
  check_names(NULL, 1, defaults);
  check_names("mypool", 2, mine);
  check_names("a-very-long-pool-name", 2, longer);
}

static tw_result return_deferred(void *arg) {
  (void)arg;
  return tw_result_deferred(tw_deferred_new(NULL, NULL));
}

static tw_result return_null_failure(void *arg) {
  (void)arg;
  return tw_result_failure(NULL);
}

static tw_result value_and_failure(void *arg) {
  (void)arg;
  tw_work_fail(tw_failure_new(&NEW_ERROR, 0, "the failure wins"));
  return tw_result_value(malloc(8), free_value);
}

TWT_TEST(threadpool, results_that_cannot_cross_threads) {
  tw_threadpool *tp;
  seen d, n, v;
  seen_init(&d);
  seen_init(&n);
  seen_init(&v);
  atomic_store(&value_frees, 0);
  cr_assert_eq(tw_threadpool_new(&tp, 0, 1, NULL), 0);
  cr_assert_eq(tw_threadpool_start(tp), 0);
  cr_assert_eq(tw_threadpool_call_in_thread_with_callback(
                   tp, seen_on_result, &d, return_deferred, NULL, NULL),
               0);
  cr_assert_eq(tw_threadpool_call_in_thread_with_callback(
                   tp, seen_on_result, &n, return_null_failure, NULL, NULL),
               0);
  cr_assert_eq(tw_threadpool_call_in_thread_with_callback(
                   tp, seen_on_result, &v, value_and_failure, NULL, NULL),
               0);
  cr_assert_eq(tw_threadpool_free(tp), 0);
  cr_assert_eq(d.type, &TW_TYPE_ERROR, "a Deferred is refused");
  cr_assert_eq(n.type, &TW_VALUE_ERROR);
  cr_assert_eq(v.type, &NEW_ERROR);
  cr_assert_eq(atomic_load(&value_frees), 1, "the value was released");
  uv_sem_destroy(&d.done);
  uv_sem_destroy(&n.done);
  uv_sem_destroy(&v.done);
}

TWT_TEST(threadpool, custom_team_errors) {
  tw_threadpool *tp = NULL;
  memset(&mp, 0, sizeof(mp));
  mp.team_rc = TW_ENOMEM;
  cr_assert_eq(tw_threadpool_new_custom(&tp, 0, 1, NULL, mp_create_team, NULL),
               TW_ENOMEM);
  mp.team_rc = 0;
  mp.no_team = 1;
  cr_assert_eq(tw_threadpool_new_custom(&tp, 0, 1, NULL, mp_create_team, NULL),
               TW_EINVAL);
  cr_assert_null(tp);
}

TWT_TEST(threadpool, out_of_memory) {
  tw_threadpool *tp = NULL;
  uv_loop_t loop;
  seen s;
  int i, rc;
  seen_init(&s);
  atomic_store(&frees, 0);
  /* Every allocation of tw_threadpool_new, in turn. */
  for (i = 1; i < 20; i++) {
    twt_alloc_fail_nth(i);
    rc = tw_threadpool_new(&tp, 1, 2, NULL);
    if (rc == 0) break;
    cr_assert_eq(rc, TW_ENOMEM);
    cr_assert_null(tp);
  }
  twt_alloc_fail_nth(0);
  cr_assert(i > 1);
  cr_assert_not_null(tp);
  /* Submissions */
  twt_alloc_fail_all(1);
  cr_assert_eq(tw_threadpool_call_in_thread(tp, nothing, NULL, count_free),
               TW_ENOMEM);
  cr_assert_eq(tw_threadpool_call_in_thread_with_callback(
                   tp, seen_on_result, &s, return_none, NULL, count_free),
               TW_ENOMEM);
  /* start: without memory for its grow, the pool still starts - work held
   * for start would otherwise wait for ever (issue 11) - and makes its
   * threads as work comes, or when the sizes are set again */
  cr_assert_eq(tw_threadpool_start(tp), 0);
  twt_alloc_fail_all(0);
  cr_assert_eq(stats(tp).started, 1);
  cr_assert_eq(stats(tp).workers, 0);
  cr_assert_eq(stats(tp).submitted, 0);
  cr_assert_eq(atomic_load(&frees), 0);
  cr_assert_eq(s.calls, 0);
  cr_assert_eq(tw_threadpool_start(tp), 0);
  cr_assert_eq(tw_threadpool_adjust_poolsize(tp, -1, -1), 0);
  cr_assert_eq(stats(tp).workers, 1);
  /* adjust_poolsize: nothing changes */
  twt_alloc_fail_all(1);
  cr_assert_eq(tw_threadpool_adjust_poolsize(tp, 2, -1), TW_ENOMEM);
  twt_alloc_fail_all(0);
  cr_assert_eq(stats(tp).min_threads, 1);
  cr_assert_eq(stats(tp).workers, 1);
  cr_assert_eq(tw_threadpool_free(tp), 0);
  /* tw_threadpool_new_uv */
  cr_assert_eq(uv_loop_init(&loop), 0);
  for (i = 1; i <= 2; i++) {
    twt_alloc_fail_nth(i);
    cr_assert_eq(tw_threadpool_new_uv(&tp, &loop), TW_ENOMEM);
  }
  twt_alloc_fail_nth(0);
  cr_assert_eq(uv_loop_close(&loop), 0);
  uv_sem_destroy(&s.done);
}

/* ---- A thread that cannot be made (issue 11) --------------------------------- */

/* A pool (0, 1) with one job held until start: its first submission has
 * carved this thread's nodes and the team's worker record, so what start
 * allocates next is the grow step, then the thread's worker. */
static tw_threadpool *pool_with_a_held_job(seen *s) {
  tw_threadpool *tp;
  seen_init(s);
  atomic_store(&frees, 0);
  cr_assert_eq(tw_threadpool_new(&tp, 0, 1, NULL), 0);
  cr_assert_eq(tw_threadpool_call_in_thread_with_callback(
                   tp, seen_on_result, s, return_none, NULL, count_free),
               0);
  cr_assert_eq(stats(tp).queued, 1);
  return tp;
}

/* A job submitted now runs (a failed creation is tried again). */
static void a_later_job_runs(tw_threadpool *tp) {
  seen s;
  seen_init(&s);
  cr_assert_eq(tw_threadpool_call_in_thread_with_callback(
                   tp, seen_on_result, &s, return_none, NULL, NULL),
               0);
  uv_sem_wait(&s.done);
  cr_assert_eq(s.is_failure, 0);
  uv_sem_destroy(&s.done);
}

/* start's grow could make no thread (its worker's allocation failed):
 * the job held for start used to wait for ever (no thread, and nothing
 * to make one until another submission). It fails with the error now. */
TWT_TEST_OPTS(threadpool, start_that_cannot_make_a_thread_fails_the_held_job,
              .timeout = 60) {
  seen s;
  tw_threadpool *tp = pool_with_a_held_job(&s);
  long failed = twt_alloc_failed();
  twt_alloc_fail_nth(2); /* the grow step is made; the thread's worker not */
  cr_assert_eq(tw_threadpool_start(tp), 0);
  twt_alloc_fail_nth(0);
  cr_assert_eq(twt_alloc_failed(), failed + 1);
  cr_assert_eq(twt_log_count_containing("could not start a worker thread"),
               1);
  uv_sem_wait(&s.done); /* hung here before the fix */
  cr_assert_eq(s.calls, 1);
  cr_assert(s.is_failure);
  cr_assert_eq(s.code, TW_ENOMEM);
  cr_assert_eq(atomic_load(&frees), 1);
  cr_assert_eq(stats(tp).cancelled, 1);
  cr_assert_eq(stats(tp).queued, 0);
  /* The team says so: no worker, the backlog failed. */
  cr_assert_eq(twt_log_flush(NULL), 1);
  a_later_job_runs(tp);
  cr_assert_eq(tw_threadpool_free(tp), 0);
  uv_sem_destroy(&s.done);
}

/* start could not allocate its grow step: it used to return TW_ENOMEM and
 * leave the pool unstarted, and the reactor, which ignores that error,
 * then kept its held jobs for ever. The pool starts and serves them. */
TWT_TEST_OPTS(threadpool, start_without_memory_for_its_grow_still_runs_held_jobs,
              .timeout = 60) {
  seen s;
  tw_threadpool *tp = pool_with_a_held_job(&s);
  twt_alloc_fail_nth(1); /* the grow step */
  cr_assert_eq(tw_threadpool_start(tp), 0);
  twt_alloc_fail_nth(0);
  uv_sem_wait(&s.done);
  cr_assert_eq(s.is_failure, 0);
  cr_assert_eq(atomic_load(&frees), 1);
  cr_assert_eq(stats(tp).started, 1);
  a_later_job_runs(tp);
  cr_assert_eq(tw_threadpool_free(tp), 0);
  uv_sem_destroy(&s.done);
}

/* A submission to a started pool with no thread, when none can be made:
 * refused with the error (nothing taken), as Twisted's callInThread
 * raises the thread's start error; it used to be accepted and never run. */
TWT_TEST_OPTS(threadpool, submission_that_cannot_make_a_thread_fails,
              .timeout = 60) {
  seen s;
  tw_threadpool *tp = pool_with_a_held_job(&s);
  cr_assert_eq(tw_threadpool_start(tp), 0);
  uv_sem_wait(&s.done);
  /* No thread left: shrink to none (once the worker is back), then allow
   * one again. */
  while (stats(tp).waiters != 1) sched_yield();
  cr_assert_eq(tw_threadpool_adjust_poolsize(tp, 0, 0), 0);
  while (stats(tp).workers != 0) sched_yield();
  cr_assert_eq(tw_threadpool_adjust_poolsize(tp, 0, 1), 0);
  atomic_store(&frees, 0);
  twt_alloc_fail_all(1); /* nodes come from this thread's slabs */
  cr_assert_eq(tw_threadpool_call_in_thread(tp, nothing, NULL, count_free),
               TW_ENOMEM);
  twt_alloc_fail_all(0);
  cr_assert_eq(atomic_load(&frees), 0);
  cr_assert_eq(stats(tp).queued, 0);
  cr_assert_eq(stats(tp).submitted, 1);
  a_later_job_runs(tp);
  cr_assert_eq(tw_threadpool_free(tp), 0);
  uv_sem_destroy(&s.done);
}

/* Work that waited while the maximum was 0 runs when it is raised (Twisted
 * grows only to the minimum there, and the work waits for the next
 * submission). */
TWT_TEST_OPTS(threadpool, jobs_held_by_a_zero_maximum_run_when_it_is_raised,
              .timeout = 60) {
  tw_threadpool *tp;
  seen s;
  seen_init(&s);
  cr_assert_eq(tw_threadpool_new(&tp, 0, 0, NULL), 0);
  cr_assert_eq(tw_threadpool_start(tp), 0);
  cr_assert_eq(tw_threadpool_call_in_thread_with_callback(
                   tp, seen_on_result, &s, return_none, NULL, NULL),
               0);
  cr_assert_eq(stats(tp).queued, 1);
  cr_assert_eq(tw_threadpool_adjust_poolsize(tp, 0, 1), 0);
  uv_sem_wait(&s.done);
  cr_assert_eq(s.is_failure, 0);
  cr_assert_eq(tw_threadpool_free(tp), 0);
  uv_sem_destroy(&s.done);
}

/* ---- The pool over libuv's threads --------------------------------------------- */

static struct {
  tw_threadpool *tp;
  uv_async_t async;
  atomic_int results;
  int expected;
  int closed;
  int stop_rc;
  uv_thread_t loop_thread;
  int wrong_thread; /* an on_result ran on the loop thread */
} uvp;

static void uvp_on_result(tw_result r, void *ctx) {
  uv_thread_t self = uv_thread_self();
  (void)ctx;
  if (uv_thread_equal(&self, &uvp.loop_thread)) uvp.wrong_thread = 1;
  tw_result_release(r);
  atomic_fetch_add(&uvp.results, 1);
  uv_async_send(&uvp.async);
}

static void uvp_async_cb(uv_async_t *a) {
  if (uvp.closed || atomic_load(&uvp.results) < uvp.expected) return;
  uvp.closed = 1;
  uvp.stop_rc = tw_threadpool_stop(uvp.tp);
  uv_close((uv_handle_t *)a, NULL);
}

static void uvp_submit_from_thread(void *arg) {
  int i;
  (void)arg;
  for (i = 0; i < 5; i++)
    tw_threadpool_call_in_thread_with_callback(uvp.tp, uvp_on_result, NULL,
                                               count_run_result, NULL,
                                               count_free);
}

static int off_loop_stop_rc, off_loop_free_rc;
static void uvp_stop_off_loop(void *arg) {
  (void)arg;
  off_loop_stop_rc = tw_threadpool_stop(uvp.tp);
  off_loop_free_rc = tw_threadpool_free(uvp.tp);
}

TWT_TEST(threadpool, uv_pool_runs_jobs_on_libuv_threads) {
  uv_loop_t loop;
  uv_thread_t t;
  tw_threadpool_statistics s;
  int i;
  memset(&uvp, 0, sizeof(uvp));
  atomic_store(&ran, 0);
  atomic_store(&frees, 0);
  uvp.loop_thread = uv_thread_self();
  uvp.expected = 8;
  cr_assert_eq(uv_loop_init(&loop), 0);
  cr_assert_eq(uv_async_init(&loop, &uvp.async, uvp_async_cb), 0);
  cr_assert_eq(tw_threadpool_new_uv(&uvp.tp, &loop), 0);
  for (i = 0; i < 3; i++)
    cr_assert_eq(tw_threadpool_call_in_thread_with_callback(
                     uvp.tp, uvp_on_result, NULL, count_run_result, NULL,
                     count_free),
                 0);
  s = stats(uvp.tp);
  cr_assert_eq(s.queued, 3, "held until start");
  cr_assert_eq(s.submitted, 3);
  cr_assert_eq(s.min_threads + s.max_threads + s.workers + s.waiters, 0);
  cr_assert_eq(atomic_load(&ran), 0);
  cr_assert_eq(tw_threadpool_adjust_poolsize(uvp.tp, 1, 2), TW_ENOTSUP);
  cr_assert_eq(uv_thread_create(&t, uvp_stop_off_loop, NULL), 0);
  uv_thread_join(&t);
  cr_assert_eq(off_loop_stop_rc, TW_EWRONGTHREAD);
  cr_assert_eq(off_loop_free_rc, TW_EWRONGTHREAD);
  cr_assert_eq(tw_threadpool_start(uvp.tp), 0);
  cr_assert_eq(tw_threadpool_start(uvp.tp), 0);
  cr_assert_eq(uv_thread_create(&t, uvp_submit_from_thread, NULL), 0);
  uv_thread_join(&t);
  /* The off-loop jobs reach libuv through the loop; the async callback
   * stops the pool once every result is in. */
  cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
  cr_assert_eq(uvp.stop_rc, 0);
  cr_assert_eq(atomic_load(&ran), 8);
  cr_assert_eq(atomic_load(&frees), 8);
  cr_assert_not(uvp.wrong_thread);
  s = stats(uvp.tp);
  cr_assert_eq(s.submitted, 8);
  cr_assert_eq(s.completed, 8);
  cr_assert_eq(s.working + s.queued, 0);
  cr_assert_eq(s.joined, 1);
  cr_assert_eq(tw_threadpool_call_in_thread(uvp.tp, nothing, NULL, NULL),
               TW_EALREADYQUIT);
  cr_assert_eq(tw_threadpool_free(uvp.tp), 0);
  cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
  cr_assert_eq(uv_loop_close(&loop), 0);
}

TWT_TEST(threadpool, uv_pool_cleanup_path_and_failures) {
  uv_loop_t loop;
  tw_threadpool *tp;
  seen a;
  uv_sem_t done;
  seen_init(&a);
  uv_sem_init(&done, 0);
  atomic_store(&ran, 0);
  atomic_store(&frees, 0);
  cr_assert_eq(uv_loop_init(&loop), 0);
  /* Freed before start: the cleanup path. */
  cr_assert_eq(tw_threadpool_new_uv(&tp, &loop), 0);
  cr_assert_eq(tw_threadpool_call_in_thread(tp, count_run, NULL, count_free), 0);
  cr_assert_eq(tw_threadpool_call_in_thread_with_callback(
                   tp, seen_on_result, &a, count_run_result, NULL, count_free),
               0);
  cr_assert_eq(tw_threadpool_free(tp), 0);
  cr_assert_eq(atomic_load(&ran), 0);
  cr_assert_eq(atomic_load(&frees), 2);
  cr_assert_eq(a.type, &TW_CANCELLED_ERROR);
  cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
  /* A failing job is logged; the pool carries on. Jobs submitted on the
   * loop thread go to libuv at once, so no loop run is needed to run
   * them; stop waits for them. */
  cr_assert_eq(tw_threadpool_new_uv(&tp, &loop), 0);
  cr_assert_eq(tw_threadpool_start(tp), 0);
  cr_assert_eq(tw_threadpool_call_in_thread(tp, raise_error, NULL, NULL), 0);
  cr_assert_eq(tw_threadpool_call_in_thread(tp, post, &done, NULL), 0);
  uv_sem_wait(&done);
  cr_assert_eq(tw_threadpool_stop(tp), 0);
  cr_assert_eq(twt_log_flush(&NEW_ERROR), 1);
  cr_assert_eq(stats(tp).completed, 2);
  cr_assert_eq(tw_threadpool_free(tp), 0);
  cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
  cr_assert_eq(uv_loop_close(&loop), 0);
  uv_sem_destroy(&done);
  uv_sem_destroy(&a.done);
}

TWT_TEST(threadpool, uv_pool_hand_over_failing_at_start) {
  /* Jobs held for start that libuv cannot take (out of memory) end through
   * the cleanup path with the error, and are logged. */
  uv_loop_t loop;
  tw_threadpool *tp;
  seen a;
  seen_init(&a);
  atomic_store(&ran, 0);
  atomic_store(&frees, 0);
  cr_assert_eq(uv_loop_init(&loop), 0);
  cr_assert_eq(tw_threadpool_new_uv(&tp, &loop), 0);
  cr_assert_eq(tw_threadpool_call_in_thread(tp, count_run, NULL, count_free), 0);
  cr_assert_eq(tw_threadpool_call_in_thread_with_callback(
                   tp, seen_on_result, &a, count_run_result, NULL, count_free),
               0);
  twt_alloc_fail_all(1);
  cr_assert_eq(tw_threadpool_start(tp), 0);
  twt_alloc_fail_all(0);
  cr_assert_eq(twt_log_flush(&TW_MEMORY_ERROR), 2);
  cr_assert_eq(atomic_load(&ran), 0);
  cr_assert_eq(atomic_load(&frees), 2);
  cr_assert_eq(a.type, &TW_MEMORY_ERROR);
  cr_assert_eq(stats(tp).cancelled, 2);
  cr_assert_eq(tw_threadpool_free(tp), 0);
  cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
  cr_assert_eq(uv_loop_close(&loop), 0);
  uv_sem_destroy(&a.done);
}

/* A job that submits more jobs to its own pool, down to depth 0. */
static tw_threadpool *fan_pool;
static atomic_int fan_runs;
static void fan(void *arg) {
  intptr_t depth = (intptr_t)arg;
  atomic_fetch_add(&fan_runs, 1);
  if (depth > 0) {
    tw_threadpool_call_in_thread(fan_pool, fan, (void *)(depth - 1), NULL);
    tw_threadpool_call_in_thread(fan_pool, fan, (void *)(depth - 1), NULL);
  }
}

TWT_TEST(threadpool, jobs_may_submit_jobs) {
  atomic_store(&fan_runs, 0);
  cr_assert_eq(tw_threadpool_new(&fan_pool, 0, 3, NULL), 0);
  cr_assert_eq(tw_threadpool_start(fan_pool), 0);
  cr_assert_eq(tw_threadpool_call_in_thread(fan_pool, fan, (void *)8, NULL),
               0);
  /* 511 jobs in all; the last ones may be refused if stop comes first, so
   * wait for them through the statistics before stopping. */
  while (stats(fan_pool).completed < 511) sched_yield();
  cr_assert_eq(tw_threadpool_free(fan_pool), 0);
  cr_assert_eq(atomic_load(&fan_runs), 511);
}

static atomic_int stop_results[3];
static void stop_concurrently(void *arg) {
  int rc = tw_threadpool_stop(arg);
  atomic_fetch_add(&stop_results[rc == 0 ? 0 : rc == TW_EALREADYQUIT ? 1 : 2],
                   1);
}

TWT_TEST(threadpool, concurrent_stops) {
  tw_threadpool *tp;
  uv_thread_t t[4];
  gate_job g;
  int i;
  gate_job_init(&g);
  for (i = 0; i < 3; i++) atomic_store(&stop_results[i], 0);
  cr_assert_eq(tw_threadpool_new(&tp, 2, 4, NULL), 0);
  cr_assert_eq(tw_threadpool_start(tp), 0);
  cr_assert_eq(tw_threadpool_call_in_thread(tp, gated, &g, NULL), 0);
  uv_sem_wait(&g.working);
  for (i = 0; i < 4; i++)
    cr_assert_eq(uv_thread_create(&t[i], stop_concurrently, tp), 0);
  /* One stop waits for the gated job; the others return at once. */
  while (atomic_load(&stop_results[1]) < 3) sched_yield();
  cr_assert_eq(atomic_load(&stop_results[0]), 0);
  uv_sem_post(&g.finish);
  for (i = 0; i < 4; i++) uv_thread_join(&t[i]);
  cr_assert_eq(atomic_load(&stop_results[0]), 1);
  cr_assert_eq(atomic_load(&stop_results[1]), 3);
  cr_assert_eq(atomic_load(&stop_results[2]), 0);
  cr_assert_eq(stats(tp).joined, 1);
  cr_assert_eq(tw_threadpool_free(tp), 0);
  gate_job_destroy(&g);
}

/* ---- twuv: a pool run inline on a thread that is not its own ----------------- */

typedef struct lock_team {
  tw_pool_limit_fn limit;
  void *limit_ctx;
  size_t created;
} lock_team;

static lock_team lt;

static tw_worker *lock_member(void *ctx) {
  lock_team *t = ctx;
  tw_worker *w = NULL;
  if (t->created >= t->limit(t->limit_ctx)) return NULL;
  if (tw_lock_worker_new(&w) != 0) return NULL;
  t->created++;
  return w;
}

/* A team of lock workers: its jobs run on whichever thread submits them. */
static int lock_team_fn(tw_team **out, tw_pool_limit_fn limit,
                        void *limit_ctx, const char *name, void *ctx) {
  tw_worker *coordinator = NULL;
  int rc;
  (void)name;
  (void)ctx;
  lt.limit = limit;
  lt.limit_ctx = limit_ctx;
  lt.created = 0;
  rc = tw_lock_worker_new(&coordinator);
  if (rc != 0) return rc;
  rc = tw_team_new(out, coordinator, lock_member, NULL, &lt);
  if (rc != 0) tw_worker_free(coordinator);
  return rc;
}

static void submit_here(void *arg) {
  cr_assert_eq(tw_threadpool_call_in_thread(arg, nothing, NULL, NULL), 0);
}

TWT_TEST(threadpool, stats_of_jobs_run_on_a_foreign_thread_worker) {
  /* The job runs inline on a thread worker the pool does not own, which
   * outlives the pool: its figures go to the pool's own counters, not to a
   * per-thread slot that thread would still write after the pool is gone. */
  tw_threadpool *tp;
  tw_worker *w = NULL;
  uv_sem_t done;
  cr_assert_eq(uv_sem_init(&done, 0), 0);
  cr_assert_eq(tw_threadpool_new_custom(&tp, 0, 2, NULL, lock_team_fn, NULL),
               0);
  cr_assert_eq(tw_threadpool_start(tp), 0);
  cr_assert_eq(tw_thread_worker_new(&w, "foreign"), 0);
  cr_assert_eq(tw_worker_do(w, submit_here, tp), 0);
  cr_assert_eq(tw_worker_do(w, post, &done), 0);
  uv_sem_wait(&done);
  cr_assert_eq(stats(tp).completed, 1);
  cr_assert_eq(tw_threadpool_free(tp), 0);
  /* The thread leaves its loop after the pool is gone. */
  cr_assert_eq(tw_worker_free(w), 0);
  uv_sem_destroy(&done);
}

/* ---- arg moved into the result (issue 13) --------------------------------- */

static int moved_freed; /* written on the pool thread, read after stop */
static void moved_free(void *p) {
  moved_freed++;
  free(p);
}
static tw_result return_own_arg(void *arg) { return tw_result_value(arg, NULL); }
static int moved_ok;
static uv_sem_t moved_done;
static void on_moved_result(tw_result r, void *ctx) {
  (void)ctx;
  moved_ok = r.kind == TW_RESULT_VALUE && strcmp(r.u.value, "moved") == 0 &&
             moved_freed == 0 && r.value_free == moved_free;
  tw_result_release(r); /* frees arg: it moved into the result */
  uv_sem_post(&moved_done);
}

TWT_TEST(threadpool, call_in_thread_with_callback_result_may_be_its_own_arg) {
  tw_threadpool *tp;
  moved_freed = 0;
  moved_ok = 0;
  cr_assert_eq(uv_sem_init(&moved_done, 0), 0);
  cr_assert_eq(tw_threadpool_new(&tp, 0, 1, NULL), 0);
  cr_assert_eq(tw_threadpool_call_in_thread_with_callback(
                   tp, on_moved_result, NULL, return_own_arg, strdup("moved"),
                   moved_free), 0);
  cr_assert_eq(tw_threadpool_start(tp), 0);
  uv_sem_wait(&moved_done);
  cr_assert_eq(tw_threadpool_stop(tp), 0); /* joins the thread */
  uv_sem_destroy(&moved_done);
  cr_assert_eq(moved_ok, 1);
  cr_assert_eq(moved_freed, 1);
  cr_assert_eq(tw_threadpool_free(tp), 0);
}
