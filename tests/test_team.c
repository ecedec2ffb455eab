/*
 * tests/test_team.c - Team and pool (worker.h).
 *
 * Ports twisted/_threads/test/test_team.py TeamTests (names in snake_case)
 * with Twisted's fixture: a memory worker as coordinator and, per created
 * worker, a memory worker wrapped in a user-written worker that records
 * quits and marks which worker runs the work (Twisted's ContextualWorker;
 * here it also exercises the team's path for foreign workers). The whole
 * team is driven deterministically by pumping to a fixpoint
 * (performAllOutstandingWork). Then twuv's own: shrink-debt clamping, the
 * abandoned backlog, failures, refusing workers, bad input, out of memory,
 * TW_EDEADLK, and pools on real threads.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "twtest.h"
#include "twthreads.h"

TWT_SUITE(team);

/* ---- The fixture (TeamTests.setUp) --------------------------------------- */

#define FX_MAX 64

typedef struct tracked {
  tw_worker base;
  tw_worker *inner; /* a memory worker */
  int id;           /* 1, 2, ... in creation order */
  int quit;
} tracked;

typedef struct {
  tracked *t;
  tw_call_fn fn;
  void *arg;
  tw_free_fn arg_free;
} tracked_call;

static struct {
  tw_worker *coordinator; /* the memory worker the team was given */
  tw_worker *coordinator_inner;
  tw_team *team;
  tracked *all[FX_MAX]; /* allWorkersEver */
  int n_all;
  int limit;     /* noMoreWorkers after this many; < 0: never */
  int no_more;   /* noMoreWorkers() */
  int raw;       /* create plain memory workers instead of tracked ones */
  tw_worker *raw_workers[FX_MAX];
  int n_raw;
  tw_failure *failures[8];
  int n_failures;
  int who; /* the id of the tracked worker running work now */
  int pump_on_next_coordinator_do;
} fx;

static void tracked_call_run(void *arg) {
  tracked_call *c = arg;
  int prev = fx.who;
  fx.who = c->t->id;
  c->fn(c->arg);
  fx.who = prev;
}

static void tracked_call_free(void *arg) {
  tracked_call *c = arg;
  if (c->arg_free) c->arg_free(c->arg);
  free(c);
}

static int tracked_do(tw_worker *w, tw_call_fn fn, void *arg,
                      tw_free_fn arg_free) {
  tracked *t = (tracked *)w;
  tracked_call *c = malloc(sizeof(*c));
  int rc;
  c->t = t;
  c->fn = fn;
  c->arg = arg;
  c->arg_free = arg_free;
  rc = tw_worker_do_full(t->inner, tracked_call_run, c, tracked_call_free);
  if (rc != 0) free(c);
  return rc;
}

static int tracked_quit(tw_worker *w) {
  tracked *t = (tracked *)w;
  int rc = tw_worker_quit(t->inner);
  if (rc == 0) t->quit = 1;
  return rc;
}

static int tracked_destroy(tw_worker *w) {
  tracked *t = (tracked *)w;
  int rc = tw_worker_free(t->inner);
  free(t);
  return rc;
}

static const tw_worker_vtable tracked_vtable = {tracked_do, tracked_quit,
                                                tracked_destroy};

static tw_worker *fx_create(void *ctx) {
  tracked *t;
  (void)ctx;
  if (fx.no_more || (fx.limit >= 0 && fx.n_all + fx.n_raw >= fx.limit))
    return NULL;
  if (fx.raw) {
    tw_worker *w;
    if (tw_memory_worker_new(&w) != 0) return NULL;
    fx.raw_workers[fx.n_raw++] = w;
    return w;
  }
  t = calloc(1, sizeof(*t));
  t->base.vtable = &tracked_vtable;
  cr_assert_eq(tw_memory_worker_new(&t->inner), 0);
  t->id = fx.n_all + 1;
  fx.all[fx.n_all++] = t;
  return &t->base;
}

static void fx_log(tw_failure *f, void *ctx) {
  (void)ctx;
  fx.failures[fx.n_failures++] = tw_failure_ref(f);
}

/* A coordinator wrapper for test_quit_concurrent_with_work_happening. */
static void pump(void);
typedef struct {
  tw_worker base;
  tw_worker *inner;
} wrapped_coordinator;
static int wc_do(tw_worker *w, tw_call_fn fn, void *arg, tw_free_fn arg_free) {
  if (fx.pump_on_next_coordinator_do) {
    fx.pump_on_next_coordinator_do = 0;
    pump();
  }
  return tw_worker_do_full(((wrapped_coordinator *)w)->inner, fn, arg,
                           arg_free);
}
static int wc_quit(tw_worker *w) {
  return tw_worker_quit(((wrapped_coordinator *)w)->inner);
}
static int wc_destroy(tw_worker *w) {
  int rc = tw_worker_free(((wrapped_coordinator *)w)->inner);
  free(w);
  return rc;
}
static const tw_worker_vtable wc_vtable = {wc_do, wc_quit, wc_destroy};

static void fx_setup_with(tw_team_log_fn log, int wrap_coordinator) {
  memset(&fx, 0, sizeof(fx));
  fx.limit = -1;
  cr_assert_eq(tw_memory_worker_new(&fx.coordinator_inner), 0);
  if (wrap_coordinator) {
    wrapped_coordinator *wc = calloc(1, sizeof(*wc));
    wc->base.vtable = &wc_vtable;
    wc->inner = fx.coordinator_inner;
    fx.coordinator = &wc->base;
  } else {
    fx.coordinator = fx.coordinator_inner;
  }
  cr_assert_eq(tw_team_new(&fx.team, fx.coordinator, fx_create, log, NULL),
               0);
}

static void fx_setup(void) { fx_setup_with(fx_log, 0); }

/* TeamTests.coordinate: run the coordinator until it is idle. */
static int coordinate(void) {
  int did = 0;
  while (tw_memory_worker_perform(fx.coordinator_inner) == 1) did = 1;
  return did;
}

/* TeamTests.performAllOutstandingWork. */
static void pump(void) {
  int continuing = 1, i;
  while (continuing) {
    continuing = coordinate();
    for (i = 0; i < fx.n_all; i++)
      if (!fx.all[i]->quit) tw_memory_worker_perform(fx.all[i]->inner);
    for (i = 0; i < fx.n_raw; i++) tw_memory_worker_perform(fx.raw_workers[i]);
    continuing = continuing || coordinate();
  }
}

static int unquit_workers(void) {
  int i, n = 0;
  for (i = 0; i < fx.n_all; i++) n += !fx.all[i]->quit;
  return n;
}

static tw_team_stats stats(void) {
  tw_team_stats s;
  cr_assert_eq(tw_team_statistics(fx.team, &s), 0);
  return s;
}

static int team_do(tw_call_fn fn, void *arg) {
  return tw_worker_do(tw_team_worker(fx.team), fn, arg);
}

/* Quit (if not yet), drive the team to its end, free it. */
static void fx_finish(void) {
  int i;
  (void)tw_worker_quit(tw_team_worker(fx.team));
  pump();
  cr_assert_eq(tw_worker_free(tw_team_worker(fx.team)), 0);
  for (i = 0; i < fx.n_failures; i++) tw_failure_unref(fx.failures[i]);
}

static void nothing(void *arg) { (void)arg; }

static int something_who, something_times;
static void something(void *arg) {
  (void)arg;
  something_who = fx.who;
  something_times++;
}

#define freed twt_freed /* twtest.h */
#define count_free twt_count_free

/* ---- TeamTests ------------------------------------------------------------- */

TWT_TEST(team, test_do_does_work_in_worker) {
  fx_setup();
  something_who = 0;
  cr_assert_eq(team_do(something, NULL), 0);
  coordinate();
  cr_assert_eq(stats().busy, 1);
  pump();
  cr_assert_eq(something_who, 1);
  cr_assert_eq(stats().busy, 0);
  fx_finish();
}

TWT_TEST(team, test_initial_statistics) {
  tw_team_stats s;
  fx_setup();
  s = stats();
  cr_assert_eq(s.idle, 0);
  cr_assert_eq(s.busy, 0);
  cr_assert_eq(s.backlog, 0);
  cr_assert_eq(s.created, 0);
  fx_finish();
}

TWT_TEST(team, test_grow_creates_idle_workers) {
  fx_setup();
  cr_assert_eq(tw_team_grow(fx.team, 5), 0);
  pump();
  cr_assert_eq(fx.n_all, 5);
  cr_assert_eq(stats().idle, 5);
  cr_assert_eq(stats().created, 5);
  fx_finish();
}

TWT_TEST(team, test_grow_create_limit) {
  fx_setup();
  fx.limit = 3;
  cr_assert_eq(tw_team_grow(fx.team, 5), 0);
  pump();
  cr_assert_eq(fx.n_all, 3);
  cr_assert_eq(stats().idle, 3);
  fx_finish();
}

TWT_TEST(team, test_shrink_quits_workers) {
  fx_setup();
  tw_team_grow(fx.team, 5);
  pump();
  cr_assert_eq(tw_team_shrink(fx.team, 3), 0);
  pump();
  cr_assert_eq(unquit_workers(), 2);
  fx_finish();
}

TWT_TEST(team, test_shrink_to_zero) {
  fx_setup();
  tw_team_grow(fx.team, 10);
  pump();
  cr_assert_eq(unquit_workers(), 10);
  cr_assert_eq(tw_team_shrink_all(fx.team), 0);
  cr_assert_eq(unquit_workers(), 10);
  pump();
  cr_assert_eq(unquit_workers(), 0);
  fx_finish();
}

TWT_TEST(team, test_more_work_when_no_workers_available) {
  int i;
  fx_setup();
  something_times = 0;
  tw_team_grow(fx.team, 3);
  coordinate();
  cr_assert_eq(stats().idle, 3);
  for (i = 0; i < 3; i++) cr_assert_eq(team_do(something, NULL), 0);
  /* Progress on the coordinator, but do not complete the work yet. */
  coordinate();
  cr_assert_eq(stats().idle, 0);
  fx.no_more = 1;
  cr_assert_eq(team_do(something, NULL), 0);
  coordinate();
  cr_assert_eq(stats().idle, 0);
  cr_assert_eq(stats().backlog, 1);
  pump();
  cr_assert_eq(stats().backlog, 0);
  cr_assert_eq(something_times, 4);
  fx_finish();
}

static void raise_generic(void *arg) {
  (void)arg;
  tw_work_fail(NULL);
}

TWT_TEST(team, test_exception_in_task) {
  fx_setup();
  cr_assert_eq(team_do(raise_generic, NULL), 0);
  pump();
  cr_assert_eq(fx.n_failures, 1);
  cr_assert(tw_failure_check(fx.failures[0], &TW_ERROR));
  fx_finish();
}

static void zero_division(void *arg) {
  (void)arg;
  tw_work_fail(tw_failure_new(&TW_VALUE_ERROR, 0, "division by zero"));
}

TWT_TEST(team, exception_in_task_keeps_the_worker) {
  fx_setup();
  something_times = 0;
  cr_assert_eq(team_do(zero_division, NULL), 0);
  pump();
  cr_assert_eq(team_do(something, NULL), 0);
  pump();
  cr_assert_eq(fx.n_failures, 1);
  cr_assert(tw_failure_check(fx.failures[0], &TW_VALUE_ERROR));
  cr_assert_eq(fx.n_all, 1, "the same worker ran the next task");
  cr_assert_eq(something_times, 1);
  fx_finish();
}

TWT_TEST(team, test_quit) {
  fx_setup();
  cr_assert_eq(tw_worker_quit(tw_team_worker(fx.team)), 0);
  cr_assert_eq(tw_worker_quit(tw_team_worker(fx.team)), TW_EALREADYQUIT);
  cr_assert_eq(team_do(nothing, NULL), TW_EALREADYQUIT);
  cr_assert_eq(tw_team_grow(fx.team, 1), TW_EALREADYQUIT);
  cr_assert_eq(tw_team_shrink(fx.team, 1), TW_EALREADYQUIT);
  cr_assert_eq(tw_team_shrink_all(fx.team), TW_EALREADYQUIT);
  fx_finish();
}

TWT_TEST(team, test_quit_quits) {
  int i;
  fx_setup();
  for (i = 0; i < 10; i++) team_do(nothing, NULL);
  pump();
  cr_assert_eq(tw_worker_quit(tw_team_worker(fx.team)), 0);
  pump();
  cr_assert_eq(unquit_workers(), 0);
  cr_assert_eq(tw_worker_quit(fx.coordinator), TW_EALREADYQUIT);
  fx_finish();
}

TWT_TEST(team, test_quit_quits_later_when_busy) {
  int i;
  fx_setup();
  tw_team_grow(fx.team, 10);
  for (i = 0; i < 5; i++) team_do(nothing, NULL);
  coordinate();
  cr_assert_eq(tw_worker_quit(tw_team_worker(fx.team)), 0);
  coordinate();
  cr_assert_eq(unquit_workers(), 5);
  pump();
  cr_assert_eq(unquit_workers(), 0);
  cr_assert_eq(tw_worker_quit(fx.coordinator), TW_EALREADYQUIT);
  fx_finish();
}

TWT_TEST(team, test_quit_concurrent_with_work_happening) {
  /* Twisted swaps Team._quit.set for one that sets the flag and then pumps
   * everything; here the coordinator's do pumps when the quit step arrives,
   * which is the same moment: after the flag, before the quit step. */
  fx_setup_with(fx_log, 1);
  cr_assert_eq(team_do(nothing, NULL), 0);
  fx.pump_on_next_coordinator_do = 1;
  cr_assert_eq(tw_worker_quit(tw_team_worker(fx.team)), 0);
  cr_assert_eq(fx.pump_on_next_coordinator_do, 0, "the pump happened");
  cr_assert_eq(tw_worker_quit(tw_team_worker(fx.team)), TW_EALREADYQUIT);
  cr_assert_eq(team_do(nothing, NULL), TW_EALREADYQUIT);
  pump();
  cr_assert_eq(unquit_workers(), 0);
  cr_assert_eq(tw_worker_quit(fx.coordinator_inner), TW_EALREADYQUIT);
  fx_finish();
}

TWT_TEST(team, test_shrink_when_busy) {
  int i;
  fx_setup();
  for (i = 0; i < 10; i++) team_do(nothing, NULL);
  coordinate();
  cr_assert_eq(unquit_workers(), 10);
  cr_assert_eq(stats().busy, 10);
  tw_team_shrink(fx.team, 7);
  pump();
  cr_assert_eq(unquit_workers(), 3);
  fx_finish();
}

/* ---- twuv's team contract --------------------------------------------------- */

TWT_TEST(team, shrink_debt_is_clamped_to_busy_workers) {
  /* Twisted: shrink(5) with one busy worker leaves a debt of 4 that quits
   * each of the next 4 workers ever created after their first task. */
  fx_setup();
  team_do(nothing, NULL);
  coordinate();
  cr_assert_eq(stats().busy, 1);
  tw_team_shrink(fx.team, 5);
  pump();
  cr_assert_eq(unquit_workers(), 0, "the busy worker paid its share");
  team_do(nothing, NULL);
  pump();
  cr_assert_eq(fx.n_all, 2);
  cr_assert_eq(unquit_workers(), 1, "a later worker is not quit");
  cr_assert_eq(stats().idle, 1);
  fx_finish();
}

static int order_seen[8], order_n;
static void note_order(void *arg) { order_seen[order_n++] = (int)(intptr_t)arg; }

static int index_seen[4096], index_n;
static void note_index(void *arg) { index_seen[index_n++] = (int)(intptr_t)arg; }

TWT_TEST(team, backlog_runs_in_submission_order) {
  int i;
  fx_setup();
  order_n = 0;
  fx.limit = 1;
  for (i = 0; i < 6; i++) team_do(note_order, (void *)(intptr_t)i);
  pump();
  cr_assert_eq(order_n, 6);
  for (i = 0; i < 6; i++) cr_assert_eq(order_seen[i], i);
  fx_finish();
}

TWT_TEST(team, new_work_may_overtake_the_backlog) {
  /* Twisted's FIFO is not strict: when the limit rises, the next new item
   * gets a fresh worker at once, ahead of the backlog. */
  int i;
  fx_setup();
  order_n = 0;
  fx.limit = 1;
  for (i = 0; i < 4; i++) team_do(note_order, (void *)(intptr_t)i);
  coordinate();
  cr_assert_eq(stats().backlog, 3);
  fx.limit = 2;
  team_do(note_order, (void *)(intptr_t)9);
  pump();
  cr_assert_eq(order_n, 5);
  cr_assert_eq(order_seen[0], 0);
  cr_assert_eq(order_seen[1], 9);
  cr_assert_eq(order_seen[2], 1);
  fx_finish();
}

TWT_TEST(team, abandoned_backlog_is_released_on_free) {
  /* No worker can ever be created: Twisted leaves the backlog behind at
   * quit. twuv keeps its promise: each arg is released, fn never runs. */
  int i;
  fx_setup();
  fx.no_more = 1;
  freed = something_times = 0;
  for (i = 0; i < 3; i++)
    cr_assert_eq(
        tw_worker_do_full(tw_team_worker(fx.team), something, NULL, count_free),
        0);
  coordinate();
  cr_assert_eq(stats().backlog, 3);
  cr_assert_eq(tw_worker_quit(tw_team_worker(fx.team)), 0);
  pump();
  cr_assert_eq(tw_worker_quit(fx.coordinator), TW_EALREADYQUIT,
               "with nobody busy the team finishes");
  cr_assert_eq(tw_team_join(fx.team), 0);
  cr_assert_eq(stats().backlog, 3);
  cr_assert_eq(freed, 0);
  cr_assert_eq(tw_worker_free(tw_team_worker(fx.team)), 0);
  cr_assert_eq(freed, 3);
  cr_assert_eq(something_times, 0);
}

TWT_TEST(team, arg_free_runs_after_each_item) {
  int i;
  fx_setup();
  freed = something_times = 0;
  for (i = 0; i < 5; i++)
    tw_worker_do_full(tw_team_worker(fx.team), something, NULL, count_free);
  pump();
  cr_assert_eq(something_times, 5);
  cr_assert_eq(freed, 5);
  fx_finish();
}

TWT_TEST(team, backlog_beyond_the_task_freelist) {
  /* More tasks in flight than the team recycles: the rest are allocated. */
  int i;
  fx_setup();
  fx.no_more = 1;
  freed = something_times = 0;
  for (i = 0; i < 3000; i++)
    cr_assert_eq(tw_worker_do_full(tw_team_worker(fx.team), something, NULL,
                                   count_free),
                 0);
  coordinate();
  cr_assert_eq(stats().backlog, 3000);
  fx.no_more = 0;
  tw_team_grow(fx.team, 3);
  pump();
  cr_assert_eq(something_times, 3000);
  cr_assert_eq(freed, 3000);
  fx_finish();
}

TWT_TEST(team, grow_serves_the_backlog) {
  fx_setup();
  fx.no_more = 1;
  something_times = 0;
  team_do(something, NULL);
  team_do(something, NULL);
  pump();
  cr_assert_eq(stats().backlog, 2);
  fx.no_more = 0;
  cr_assert_eq(tw_team_grow(fx.team, 1), 0);
  pump();
  cr_assert_eq(something_times, 2);
  cr_assert_eq(stats().backlog, 0);
  cr_assert_eq(stats().idle, 1);
  fx_finish();
}

TWT_TEST(team, quit_serves_the_backlog_first) {
  int i;
  fx_setup();
  fx.limit = 2;
  something_times = 0;
  for (i = 0; i < 6; i++) team_do(something, NULL);
  coordinate();
  cr_assert_eq(stats().backlog, 4);
  cr_assert_eq(tw_worker_quit(tw_team_worker(fx.team)), 0);
  pump();
  cr_assert_eq(something_times, 6);
  cr_assert_eq(unquit_workers(), 0);
  fx_finish();
}

TWT_TEST(team, intrusive_memory_workers) {
  /* Plain memory workers (twuv's own) take the team's items directly. */
  int i;
  fx_setup();
  fx.raw = 1;
  freed = something_times = 0;
  for (i = 0; i < 10; i++)
    tw_worker_do_full(tw_team_worker(fx.team), something, NULL, count_free);
  pump();
  cr_assert_eq(something_times, 10);
  cr_assert_eq(freed, 10);
  cr_assert_eq(stats().idle, 10);
  tw_team_shrink(fx.team, 4);
  pump();
  cr_assert_eq(stats().idle, 6);
  fx_finish();
}

TWT_TEST(team, default_log_exception_logs) {
  fx_setup_with(NULL, 0);
  cr_assert_eq(team_do(zero_division, NULL), 0);
  pump();
  cr_assert_eq(twt_log_flush(&TW_VALUE_ERROR), 1);
  fx_finish();
}

/* A worker that refuses everything (quit before the team sees it). */
static tw_worker *refusing_create(void *ctx) {
  tw_worker *w;
  (void)ctx;
  if (fx.no_more) return NULL;
  fx.no_more = 1;
  tw_memory_worker_new(&w);
  tw_worker_quit(w);
  return w;
}

TWT_TEST(team, refusing_worker_is_retired_and_work_kept) {
  tw_worker *coordinator;
  tw_team *team;
  tw_team_stats s;
  memset(&fx, 0, sizeof(fx));
  cr_assert_eq(tw_memory_worker_new(&coordinator), 0);
  cr_assert_eq(tw_team_new(&team, coordinator, refusing_create, NULL, NULL),
               0);
  freed = something_times = 0;
  cr_assert_eq(tw_worker_do_full(tw_team_worker(team), something, NULL,
                                 count_free),
               0);
  while (tw_memory_worker_perform(coordinator) == 1) continue;
  cr_assert_eq(twt_log_count_containing("refused work"), 1);
  twt_log_flush(NULL);
  tw_team_statistics(team, &s);
  cr_assert_eq(s.backlog, 1);
  cr_assert_eq(s.idle + s.busy, 0);
  tw_worker_quit(tw_team_worker(team));
  while (tw_memory_worker_perform(coordinator) == 1) continue;
  cr_assert_eq(tw_worker_free(tw_team_worker(team)), 0);
  cr_assert_eq(freed, 1);
  cr_assert_eq(something_times, 0);
}

static tw_worker *one_memory_worker(void *ctx) {
  tw_worker **w = ctx;
  if (*w != NULL) return NULL;
  return tw_memory_worker_new(w) == 0 ? *w : NULL;
}

TWT_TEST(team, thread_cleanup_releases_this_threads_cached_slab) {
  /* A task comes from the submitting thread's slab, which stays cached for
   * the thread's next tasks after the task is released. */
  tw_worker *coordinator, *member = NULL;
  tw_team *team;
  long before;
  tw_thread_cleanup();
  before = twt_alloc_live();
  cr_assert_eq(tw_memory_worker_new(&coordinator), 0);
  cr_assert_eq(tw_team_new(&team, coordinator, one_memory_worker, NULL,
                           &member),
               0);
  something_times = 0;
  cr_assert_eq(tw_worker_do(tw_team_worker(team), something, NULL), 0);
  while (tw_memory_worker_perform(coordinator) == 1) continue;
  cr_assert_eq(tw_memory_worker_perform(member), 1);
  while (tw_memory_worker_perform(coordinator) == 1) continue;
  cr_assert_eq(something_times, 1);
  tw_worker_quit(tw_team_worker(team));
  while (tw_memory_worker_perform(coordinator) == 1) continue;
  cr_assert_eq(tw_worker_free(tw_team_worker(team)), 0);
  cr_assert(twt_alloc_live() > before, "the slab is cached");
  tw_thread_cleanup();
  cr_assert_eq(twt_alloc_live(), before);
  tw_thread_cleanup(); /* again: nothing left to release */
  cr_assert_eq(twt_alloc_live(), before);
}

static tw_worker broken_worker = {NULL};
static tw_worker *broken_create(void *ctx) {
  (void)ctx;
  return fx.no_more++ ? NULL : &broken_worker;
}

TWT_TEST(team, worker_without_vtable_is_refused_not_crashed) {
  tw_worker *coordinator;
  tw_team *team;
  tw_team_stats s;
  memset(&fx, 0, sizeof(fx));
  freed = 0;
  cr_assert_eq(tw_memory_worker_new(&coordinator), 0);
  cr_assert_eq(tw_team_new(&team, coordinator, broken_create, NULL, NULL), 0);
  cr_assert_eq(tw_worker_do_full(tw_team_worker(team), something, NULL,
                                 count_free),
               0);
  while (tw_memory_worker_perform(coordinator) == 1) continue;
  cr_assert_eq(twt_log_flush(NULL), 1, "the refusal is logged");
  tw_team_statistics(team, &s);
  cr_assert_eq(s.backlog, 1);
  tw_worker_quit(tw_team_worker(team));
  while (tw_memory_worker_perform(coordinator) == 1) continue;
  cr_assert_eq(tw_worker_free(tw_team_worker(team)), 0);
  cr_assert_eq(freed, 1);
}

TWT_TEST(team, lock_worker_coordinator) {
  /* Twisted's own pool uses a LockWorker coordinator. */
  tw_worker *coordinator;
  int i;
  memset(&fx, 0, sizeof(fx));
  fx.limit = 2;
  fx.raw = 1;
  something_times = 0;
  cr_assert_eq(tw_lock_worker_new(&coordinator), 0);
  cr_assert_eq(tw_team_new(&fx.team, coordinator, fx_create, fx_log, NULL), 0);
  for (i = 0; i < 5; i++) team_do(something, NULL);
  cr_assert_eq(stats().busy, 2, "coordination happened inside do");
  cr_assert_eq(stats().backlog, 3);
  while (something_times < 5)
    for (i = 0; i < fx.n_raw; i++) tw_memory_worker_perform(fx.raw_workers[i]);
  cr_assert_eq(stats().backlog, 0);
  cr_assert_eq(tw_worker_quit(tw_team_worker(fx.team)), 0);
  cr_assert_eq(tw_worker_free(tw_team_worker(fx.team)), 0);
}

/*
 * With a serial coordinator, a worker that finishes while the backlog is not
 * empty takes the backlog's head itself (its recycle step, which that
 * coordinator would have run at once anyway): same order, same counts.
 */
static void serial_fx_setup(int limit) {
  tw_worker *coordinator;
  memset(&fx, 0, sizeof(fx));
  fx.limit = limit;
  fx.raw = 1;
  cr_assert_eq(tw_serial_worker_new(&coordinator), 0);
  cr_assert_eq(tw_team_new(&fx.team, coordinator, fx_create, fx_log, NULL), 0);
}

TWT_TEST(team, serial_coordinator_worker_takes_the_backlog_in_order) {
  int i;
  serial_fx_setup(1);
  order_n = 0;
  for (i = 0; i < 5; i++) team_do(note_order, (void *)(intptr_t)i);
  cr_assert_eq(stats().busy, 1, "coordinated inside do");
  cr_assert_eq(stats().backlog, 4);
  cr_assert_eq(tw_memory_worker_perform(fx.raw_workers[0]), 1);
  cr_assert_eq(order_n, 1);
  /* Item 1 went straight to the worker: still busy, one less waiting. */
  cr_assert_eq(stats().busy, 1);
  cr_assert_eq(stats().idle, 0);
  cr_assert_eq(stats().backlog, 3);
  while (tw_memory_worker_perform(fx.raw_workers[0]) == 1) continue;
  cr_assert_eq(order_n, 5);
  for (i = 0; i < 5; i++) cr_assert_eq(order_seen[i], i);
  cr_assert_eq(stats().busy, 0);
  cr_assert_eq(stats().idle, 1);
  cr_assert_eq(stats().backlog, 0);
  cr_assert_eq(tw_worker_quit(tw_team_worker(fx.team)), 0);
  cr_assert_eq(tw_worker_free(tw_team_worker(fx.team)), 0);
}

TWT_TEST(team, serial_coordinator_backlog_beyond_the_ring) {
  /* More backlog than the ring holds: the rest waits in the coordinator
   * and still comes out in order. */
  int i, n = 3000;
  serial_fx_setup(1);
  index_n = 0;
  for (i = 0; i < n; i++)
    cr_assert_eq(team_do(note_index, (void *)(intptr_t)i), 0);
  cr_assert_eq(stats().backlog, (size_t)n - 1);
  while (tw_memory_worker_perform(fx.raw_workers[0]) == 1) continue;
  cr_assert_eq(index_n, n);
  for (i = 0; i < n; i++) cr_assert_eq(index_seen[i], i);
  cr_assert_eq(stats().backlog, 0);
  cr_assert_eq(tw_worker_quit(tw_team_worker(fx.team)), 0);
  cr_assert_eq(tw_worker_free(tw_team_worker(fx.team)), 0);
}

TWT_TEST(team, serial_coordinator_worker_quit_behind_the_teams_back) {
  /* The worker takes the next item but refuses it (quit by someone else):
   * it is retired and the item goes back to the head of the backlog. */
  int i;
  serial_fx_setup(1);
  order_n = 0;
  for (i = 0; i < 4; i++) team_do(note_order, (void *)(intptr_t)i);
  cr_assert_eq(tw_worker_quit(fx.raw_workers[0]), 0);
  cr_assert_eq(tw_memory_worker_perform(fx.raw_workers[0]), 1);
  cr_assert_eq(twt_log_count_containing("refused work"), 1);
  twt_log_flush(NULL);
  cr_assert_eq(stats().busy, 0);
  cr_assert_eq(stats().idle, 0);
  cr_assert_eq(stats().backlog, 3);
  fx.limit = 2;
  cr_assert_eq(tw_team_grow(fx.team, 1), 0);
  while (tw_memory_worker_perform(fx.raw_workers[1]) == 1) continue;
  cr_assert_eq(order_n, 4);
  for (i = 0; i < 4; i++) cr_assert_eq(order_seen[i], i);
  cr_assert_eq(tw_worker_quit(tw_team_worker(fx.team)), 0);
  cr_assert_eq(tw_worker_free(tw_team_worker(fx.team)), 0);
}

TWT_TEST(team, join_before_quit_is_einval) {
  fx_setup();
  cr_assert_eq(tw_team_join(fx.team), TW_EINVAL);
  fx_finish();
}

TWT_TEST(team, join_twice) {
  fx_setup();
  tw_team_grow(fx.team, 2);
  tw_worker_quit(tw_team_worker(fx.team));
  pump();
  cr_assert_eq(tw_team_join(fx.team), 0);
  cr_assert_eq(tw_team_join(fx.team), 0);
  cr_assert_eq(stats().idle, 0);
  cr_assert_eq(stats().created, 2);
  cr_assert_eq(tw_worker_free(tw_team_worker(fx.team)), 0);
}

static int inside_join_rc, inside_free_rc;
static void join_from_inside(void *arg) {
  inside_join_rc = tw_team_join(arg);
  inside_free_rc = tw_worker_free(tw_team_worker(arg));
}

TWT_TEST(team, join_and_free_from_inside_are_edeadlk) {
  fx_setup();
  cr_assert_eq(team_do(join_from_inside, fx.team), 0);
  pump();
  cr_assert_eq(inside_join_rc, TW_EDEADLK);
  cr_assert_eq(inside_free_rc, TW_EDEADLK);
  fx_finish();
}

TWT_TEST(team, bad_input) {
  tw_worker *mw, *team_as_coordinator;
  tw_team *t = NULL;
  tw_team_stats s;
  fx_setup();
  cr_assert_eq(tw_memory_worker_new(&mw), 0);
  cr_assert_eq(tw_team_new(NULL, mw, fx_create, NULL, NULL), TW_EINVAL);
  cr_assert_eq(tw_team_new(&t, NULL, fx_create, NULL, NULL), TW_EINVAL);
  cr_assert_eq(tw_team_new(&t, mw, NULL, NULL, NULL), TW_EINVAL);
  {
    static const tw_worker_vtable partial = {NULL, NULL, NULL};
    tw_worker odd = {&partial};
    cr_assert_eq(tw_team_new(&t, &odd, fx_create, NULL, NULL), TW_EINVAL);
  }
  team_as_coordinator = tw_team_worker(fx.team);
  cr_assert_eq(tw_team_new(&t, team_as_coordinator, fx_create, NULL, NULL),
               TW_EINVAL, "a team is not exclusive");
  cr_assert_null(t);
  cr_assert_eq(tw_team_grow(NULL, 1), TW_EINVAL);
  cr_assert_eq(tw_team_grow(fx.team, 0), TW_EINVAL);
  cr_assert_eq(tw_team_grow(fx.team, -3), TW_EINVAL);
  cr_assert_eq(tw_team_shrink(NULL, 1), TW_EINVAL);
  cr_assert_eq(tw_team_shrink(fx.team, 0), TW_EINVAL);
  cr_assert_eq(tw_team_shrink(fx.team, -1), TW_EINVAL);
  cr_assert_eq(tw_team_shrink_all(NULL), TW_EINVAL);
  cr_assert_eq(tw_team_statistics(NULL, &s), TW_EINVAL);
  cr_assert_eq(tw_team_statistics(fx.team, NULL), TW_EINVAL);
  cr_assert_eq(tw_team_join(NULL), TW_EINVAL);
  cr_assert_null(tw_team_worker(NULL));
  cr_assert_eq(team_do(NULL, NULL), TW_EINVAL);
  cr_assert_eq(tw_pool_new(NULL, NULL, NULL, NULL), TW_EINVAL);
  cr_assert_eq(tw_pool_new(&t, NULL, NULL, NULL), TW_EINVAL);
  tw_worker_free(mw);
  fx_finish();
}

static size_t read_limit(void *ctx);

/*
 * issue 11: no worker exists and none can be made (here the team's record
 * for it cannot be allocated). The item used to wait in the backlog for
 * ever: nothing creates a worker for it until another do, which may never
 * come. It fails instead - arg_free in place of fn, and an error logged -
 * and the next do tries again.
 */
TWT_TEST(team, work_no_worker_can_be_made_for_fails) {
  fx_setup();
  freed = something_times = 0;
  fx.raw = 1;
  cr_assert_eq(
      tw_worker_do_full(tw_team_worker(fx.team), something, NULL, count_free),
      0);
  twt_alloc_fail_nth(1);
  coordinate();
  twt_alloc_fail_nth(0);
  cr_assert_eq(freed, 1, "the item still waits, with no worker to run it");
  cr_assert_eq(something_times, 0);
  cr_assert_eq(stats().backlog, 0);
  cr_assert_eq(twt_log_count_containing("no worker could be created"), 1);
  cr_assert_eq(twt_log_flush(NULL), 1);
  cr_assert_eq(
      tw_worker_do_full(tw_team_worker(fx.team), something, NULL, count_free),
      0);
  pump();
  cr_assert_eq(something_times, 1);
  cr_assert_eq(freed, 2);
  fx_finish();
}

/* With a worker busy, a creation that fails only leaves the item to it. */
TWT_TEST(team, work_waits_for_a_busy_worker_when_no_other_can_be_made) {
  fx_setup();
  freed = something_times = 0;
  fx.raw = 1;
  cr_assert_eq(
      tw_worker_do_full(tw_team_worker(fx.team), something, NULL, count_free),
      0);
  coordinate();
  cr_assert_eq(stats().busy, 1);
  cr_assert_eq(
      tw_worker_do_full(tw_team_worker(fx.team), something, NULL, count_free),
      0);
  twt_alloc_fail_nth(1);
  coordinate();
  twt_alloc_fail_nth(0);
  cr_assert_eq(stats().backlog, 1);
  cr_assert_eq(freed, 0);
  pump();
  cr_assert_eq(something_times, 2);
  cr_assert_eq(freed, 2);
  cr_assert_eq(fx.n_raw, 1);
  fx_finish();
}

TWT_TEST(team, out_of_memory) {
  tw_worker *mw;
  tw_team *t = NULL;
  int i;
  fx_setup();
  freed = something_times = 0;
  /* tw_team_do: the task (neither from the task freelist nor malloc) */
  twt_alloc_fail_all(1);
  cr_assert_eq(
      tw_worker_do_full(tw_team_worker(fx.team), something, NULL, count_free),
      TW_ENOMEM);
  twt_alloc_fail_all(0);
  twt_alloc_fail_nth(1);
  cr_assert_eq(tw_team_grow(fx.team, 1), TW_ENOMEM);
  twt_alloc_fail_nth(1);
  cr_assert_eq(tw_team_shrink(fx.team, 1), TW_ENOMEM);
  pump();
  cr_assert_eq(stats().idle + stats().busy + stats().backlog, 0,
               "nothing happened");
  /* The bookkeeping for a new worker, with no worker at all: the item
   * fails (work_no_worker_can_be_made_for_fails). */
  fx.raw = 1;
  cr_assert_eq(
      tw_worker_do_full(tw_team_worker(fx.team), something, NULL, count_free),
      0);
  twt_alloc_fail_nth(1);
  coordinate();
  cr_assert_eq(stats().backlog, 0);
  cr_assert_eq(fx.n_raw, 0);
  cr_assert_eq(something_times, 0);
  cr_assert_eq(freed, 1);
  cr_assert_eq(twt_log_flush(NULL), 1);
  tw_team_grow(fx.team, 1);
  pump();
  cr_assert_eq(fx.n_raw, 1);
  /* tw_team_new and tw_pool_new */
  cr_assert_eq(tw_memory_worker_new(&mw), 0);
  twt_alloc_fail_nth(1);
  cr_assert_eq(tw_team_new(&t, mw, fx_create, NULL, NULL), TW_ENOMEM);
  tw_worker_free(mw);
  /* the pool, its serial coordinator, its team */
  for (i = 1; i <= 3; i++) {
    twt_alloc_fail_nth(i);
    cr_assert_eq(tw_pool_new(&t, read_limit, NULL, NULL), TW_ENOMEM);
  }
  cr_assert_null(t);
  fx_finish();
}

/* ---- Pools on real threads ---------------------------------------------- */

static atomic_size_t limit_value;
static size_t read_limit(void *ctx) {
  (void)ctx;
  return atomic_load(&limit_value);
}

typedef struct {
  uv_mutex_t mutex;
  uv_cond_t cond;
  int count;
  char names[64][16];
  uv_thread_t threads[64];
} pool_log_t;

static pool_log_t plog;

static void plog_init(void) {
  memset(&plog, 0, sizeof(plog));
  uv_mutex_init(&plog.mutex);
  uv_cond_init(&plog.cond);
}

static void plog_destroy(void) {
  uv_cond_destroy(&plog.cond);
  uv_mutex_destroy(&plog.mutex);
}

static void plog_item(void *arg) {
  (void)arg;
  uv_mutex_lock(&plog.mutex);
  if (plog.count < 64) {
    pthread_getname_np(pthread_self(), plog.names[plog.count], 16);
    plog.threads[plog.count] = uv_thread_self();
  }
  plog.count++;
  uv_cond_broadcast(&plog.cond);
  uv_mutex_unlock(&plog.mutex);
}

static void plog_wait(int n) {
  uv_mutex_lock(&plog.mutex);
  while (plog.count < n) uv_cond_wait(&plog.cond, &plog.mutex);
  uv_mutex_unlock(&plog.mutex);
}

TWT_TEST(team, pool_runs_work_on_named_threads) {
  tw_team *pool;
  tw_team_stats s;
  uv_thread_t self = uv_thread_self();
  int i;
  plog_init();
  atomic_store(&limit_value, 2);
  cr_assert_eq(tw_pool_new(&pool, read_limit, NULL, NULL), 0);
  for (i = 0; i < 40; i++)
    cr_assert_eq(tw_worker_do(tw_team_worker(pool), plog_item, NULL), 0);
  plog_wait(40);
  cr_assert_eq(tw_worker_quit(tw_team_worker(pool)), 0);
  cr_assert_eq(tw_team_join(pool), 0);
  tw_team_statistics(pool, &s);
  cr_assert_leq(s.created, 2, "the limit holds");
  cr_assert_geq(s.created, 1);
  cr_assert_eq(s.idle + s.busy + s.backlog, 0);
  for (i = 0; i < 40; i++) {
    cr_assert_eq(strncmp(plog.names[i], "tw-worker-", 10), 0, "name %s",
                 plog.names[i]);
    cr_assert_not(uv_thread_equal(&plog.threads[i], &self));
  }
  cr_assert_eq(tw_worker_free(tw_team_worker(pool)), 0);
  plog_destroy();
}

TWT_TEST(team, pool_thread_names_keep_the_number) {
  tw_team *pool;
  plog_init();
  atomic_store(&limit_value, 1);
  cr_assert_eq(tw_pool_new(&pool, read_limit, NULL, "a-very-long-pool-name"),
               0);
  cr_assert_eq(tw_worker_do(tw_team_worker(pool), plog_item, NULL), 0);
  plog_wait(1);
  cr_assert_str_eq(plog.names[0], "a-very-long-p-1");
  cr_assert_eq(tw_worker_free(tw_team_worker(pool)), 0);
  plog_destroy();
}

TWT_TEST(team, pool_limit_zero_backlogs_until_raised) {
  tw_team *pool;
  tw_team_stats s;
  plog_init();
  atomic_store(&limit_value, 0);
  cr_assert_eq(tw_pool_new(&pool, read_limit, NULL, "tw-pool"), 0);
  cr_assert_eq(tw_worker_do(tw_team_worker(pool), plog_item, NULL), 0);
  /* An idle serial coordinator runs on the submitting thread, so the
   * decision is already made. */
  tw_team_statistics(pool, &s);
  cr_assert_eq(s.backlog, 1);
  cr_assert_eq(s.created, 0);
  atomic_store(&limit_value, 3);
  cr_assert_eq(tw_team_grow(pool, 1), 0);
  plog_wait(1);
  cr_assert_str_eq(plog.names[0], "tw-pool-1");
  tw_worker_quit(tw_team_worker(pool));
  cr_assert_eq(tw_team_join(pool), 0);
  tw_team_statistics(pool, &s);
  cr_assert_eq(s.created, 1);
  cr_assert_eq(tw_worker_free(tw_team_worker(pool)), 0);
  plog_destroy();
}

static atomic_int slow_runs;
static void slow_item(void *arg) {
  (void)arg;
  sched_yield();
  atomic_fetch_add(&slow_runs, 1);
}

TWT_TEST(team, pool_join_waits_for_backlog_and_workers) {
  tw_team *pool;
  int i;
  atomic_store(&slow_runs, 0);
  atomic_store(&limit_value, 3);
  cr_assert_eq(tw_pool_new(&pool, read_limit, NULL, NULL), 0);
  for (i = 0; i < 300; i++)
    cr_assert_eq(tw_worker_do(tw_team_worker(pool), slow_item, NULL), 0);
  cr_assert_eq(tw_worker_quit(tw_team_worker(pool)), 0);
  cr_assert_eq(tw_worker_do(tw_team_worker(pool), slow_item, NULL),
               TW_EALREADYQUIT);
  cr_assert_eq(tw_team_join(pool), 0);
  cr_assert_eq(atomic_load(&slow_runs), 300);
  cr_assert_eq(tw_worker_free(tw_team_worker(pool)), 0);
}

TWT_TEST(team, pool_free_without_quit_or_join) {
  tw_team *pool;
  int i;
  atomic_store(&slow_runs, 0);
  atomic_store(&limit_value, 2);
  cr_assert_eq(tw_pool_new(&pool, read_limit, NULL, NULL), 0);
  tw_team_grow(pool, 2);
  for (i = 0; i < 100; i++)
    tw_worker_do(tw_team_worker(pool), slow_item, NULL);
  tw_team_shrink(pool, 1);
  cr_assert_eq(tw_worker_free(tw_team_worker(pool)), 0);
  cr_assert_eq(atomic_load(&slow_runs), 100);
}

TWT_TEST(team, pool_reaps_quit_workers) {
  /* A pool that keeps growing and shrinking frees the workers it quit (and
   * joins their threads) as it goes, not only at join. */
  tw_team *pool;
  tw_team_stats s;
  long live = 0;
  int i, base = twt_count_threads();
  cr_assert(base > 0, "/proc/self/task is readable");
  atomic_store(&limit_value, 2);
  cr_assert_eq(tw_pool_new(&pool, read_limit, NULL, NULL), 0);
  for (i = 0; i < 40; i++) {
    cr_assert_eq(tw_team_grow(pool, 2), 0);
    cr_assert_eq(tw_team_shrink_all(pool), 0);
    /* Until the quit threads are gone (a thread leaves the kernel's list
     * after it marked itself finished), so the next grow can reap them. */
    while (twt_count_threads() > base) sched_yield();
    if (i == 9) live = twt_alloc_live();
  }
  /* Each worker costs two allocations until reaped: 60 more without. */
  cr_assert_leq(twt_alloc_live(), live + 8);
  tw_team_statistics(pool, &s);
  cr_assert_eq(s.created, 80);
  cr_assert_eq(tw_worker_free(tw_team_worker(pool)), 0);
}

static atomic_long started_items;
static uv_sem_t hold;

static void gated_item(void *arg) {
  if (arg != NULL) uv_sem_wait(arg);
  atomic_fetch_add(&started_items, 1);
}

TWT_TEST(team, statistics_never_count_a_backlogged_item_twice) {
  /* The backlog's oldest items wait in a ring counted live; the rest is
   * counted by the coordinator at the end of each step, after it moved
   * some into the ring. A reader in between must not see those twice. */
  enum { TOTAL = 20000, ROUNDS = 10 };
  tw_team *pool;
  tw_team_stats s;
  long i, before;
  int round;
  atomic_store(&limit_value, 1);
  cr_assert_eq(uv_sem_init(&hold, 0), 0);
  cr_assert_eq(tw_pool_new(&pool, read_limit, NULL, NULL), 0);
  /* The window is short (a refill, every 256 items): several rounds. */
  for (round = 0; round < ROUNDS; round++) {
    atomic_store(&started_items, 0);
    /* One worker, held: the rest waits in the ring and overflow. */
    cr_assert_eq(tw_worker_do(tw_team_worker(pool), gated_item, &hold), 0);
    for (i = 0; i < TOTAL; i++)
      cr_assert_eq(tw_worker_do(tw_team_worker(pool), gated_item, NULL), 0);
    uv_sem_post(&hold);
    do {
      before = atomic_load(&started_items);
      cr_assert_eq(tw_team_statistics(pool, &s), 0);
      /* Started items have left the backlog; others may have too. */
      cr_assert_leq((long)s.backlog, TOTAL + 1 - before,
                    "backlog %zu with %ld of %d started", s.backlog, before,
                    TOTAL + 1);
    } while (before < TOTAL + 1);
  }
  cr_assert_eq(tw_worker_quit(tw_team_worker(pool)), 0);
  cr_assert_eq(tw_team_join(pool), 0);
  cr_assert_eq(tw_worker_free(tw_team_worker(pool)), 0);
  uv_sem_destroy(&hold);
}

TWT_TEST(team, pool_never_used) {
  tw_team *pool;
  atomic_store(&limit_value, 4);
  cr_assert_eq(tw_pool_new(&pool, read_limit, NULL, NULL), 0);
  cr_assert_eq(tw_worker_quit(tw_team_worker(pool)), 0);
  cr_assert_eq(tw_team_join(pool), 0);
  cr_assert_eq(tw_worker_free(tw_team_worker(pool)), 0);
}

TWT_TEST(team, pool_logs_failing_work) {
  tw_team *pool;
  atomic_store(&limit_value, 1);
  cr_assert_eq(tw_pool_new(&pool, read_limit, NULL, NULL), 0);
  cr_assert_eq(tw_worker_do(tw_team_worker(pool), zero_division, NULL), 0);
  cr_assert_eq(tw_worker_free(tw_team_worker(pool)), 0);
  cr_assert_eq(twt_log_flush(&TW_VALUE_ERROR), 1);
}

static tw_team *inner_pool;
static int pool_inside_rc;
static uv_sem_t inside_sem;
static void pool_join_inside(void *arg) {
  (void)arg;
  pool_inside_rc = tw_team_join(inner_pool);
  uv_sem_post(&inside_sem);
}

TWT_TEST(team, pool_join_from_its_worker_is_edeadlk) {
  uv_sem_init(&inside_sem, 0);
  atomic_store(&limit_value, 1);
  cr_assert_eq(tw_pool_new(&inner_pool, read_limit, NULL, NULL), 0);
  cr_assert_eq(tw_worker_do(tw_team_worker(inner_pool), pool_join_inside, NULL),
               0);
  uv_sem_wait(&inside_sem);
  cr_assert_eq(pool_inside_rc, TW_EDEADLK);
  cr_assert_eq(tw_worker_quit(tw_team_worker(inner_pool)), 0);
  cr_assert_eq(tw_team_join(inner_pool), 0);
  cr_assert_eq(tw_worker_free(tw_team_worker(inner_pool)), 0);
  uv_sem_destroy(&inside_sem);
}

/*
 * With a serial coordinator a thread worker runs backlogged tasks back to
 * back; a failure that one task's arg_free reports is the worker's to log
 * (as for a lone task), never handed to log_exception as the next task's.
 */
static uv_sem_t gate_sem, gate_entered;
static atomic_int after_ran;
static tw_worker *one_thread_worker(void *ctx) {
  tw_worker *w;
  int *made = ctx;
  if (*made) return NULL;
  if (tw_thread_worker_new(&w, "tw-team-af") != 0) return NULL;
  *made = 1;
  return w;
}
static void wait_gate(void *arg) {
  (void)arg;
  uv_sem_post(&gate_entered);
  uv_sem_wait(&gate_sem);
}
static void nothing_to_do(void *arg) { (void)arg; }
static void failing_arg_free(void *arg) {
  (void)arg;
  tw_work_fail(tw_failure_new(&TW_VALUE_ERROR, 0, "from arg_free"));
}
static void note_after(void *arg) {
  (void)arg;
  atomic_fetch_add(&after_ran, 1);
}

TWT_TEST(team, serial_coordinator_arg_free_failure_is_not_the_next_tasks) {
  tw_team *team;
  tw_worker *coordinator;
  int made = 0;
  memset(&fx, 0, sizeof(fx));
  atomic_store(&after_ran, 0);
  cr_assert_eq(uv_sem_init(&gate_sem, 0), 0);
  cr_assert_eq(uv_sem_init(&gate_entered, 0), 0);
  cr_assert_eq(tw_serial_worker_new(&coordinator), 0);
  cr_assert_eq(
      tw_team_new(&team, coordinator, one_thread_worker, fx_log, &made), 0);
  cr_assert_eq(tw_worker_do(tw_team_worker(team), wait_gate, NULL), 0);
  uv_sem_wait(&gate_entered);
  /* The only worker is busy: these two wait in the backlog's ring. */
  cr_assert_eq(tw_worker_do_full(tw_team_worker(team), nothing_to_do, NULL,
                                 failing_arg_free),
               0);
  cr_assert_eq(tw_worker_do(tw_team_worker(team), note_after, NULL), 0);
  uv_sem_post(&gate_sem);
  cr_assert_eq(tw_worker_quit(tw_team_worker(team)), 0);
  cr_assert_eq(tw_team_join(team), 0);
  cr_assert_eq(atomic_load(&after_ran), 1);
  cr_assert_eq(fx.n_failures, 0, "log_exception got arg_free's failure");
  cr_assert_eq(twt_log_flush(&TW_VALUE_ERROR), 1, "the worker logged it");
  cr_assert_eq(tw_worker_free(tw_team_worker(team)), 0);
  uv_sem_destroy(&gate_sem);
  uv_sem_destroy(&gate_entered);
}

/*
 * A worker on a custom starter is not reaped when its loop ends: its thread
 * may go on (or be the thread reaping it), so only the team's join joins
 * it.
 */
typedef struct {
  uv_thread_t tid;
  tw_call_fn target;
  void *target_arg;
} custom_thread;
static uv_sem_t custom_done;
static atomic_int custom_joins;
static void custom_body(void *arg) {
  custom_thread *ct = arg;
  ct->target(ct->target_arg);
  uv_sem_post(&custom_done); /* the worker's loop is over */
}
static int custom_start(void *ctx, tw_call_fn target, void *target_arg,
                        void **thread) {
  custom_thread *ct = calloc(1, sizeof(*ct));
  (void)ctx;
  ct->target = target;
  ct->target_arg = target_arg;
  if (uv_thread_create(&ct->tid, custom_body, ct) != 0) {
    free(ct);
    return TW_ENOMEM;
  }
  *thread = ct;
  return 0;
}
static void custom_join(void *ctx, void *thread) {
  custom_thread *ct = thread;
  (void)ctx;
  uv_thread_join(&ct->tid);
  free(ct);
  atomic_fetch_add(&custom_joins, 1);
}
static tw_worker *custom_worker(void *ctx) {
  static const tw_thread_starter starter = {custom_start, custom_join, NULL};
  tw_worker *w;
  (void)ctx;
  return tw_thread_worker_new_custom(&w, &starter) == 0 ? w : NULL;
}

TWT_TEST(team, custom_starter_workers_wait_for_join) {
  tw_team *team;
  tw_worker *coordinator;
  memset(&fx, 0, sizeof(fx));
  atomic_store(&custom_joins, 0);
  cr_assert_eq(uv_sem_init(&custom_done, 0), 0);
  cr_assert_eq(tw_serial_worker_new(&coordinator), 0);
  cr_assert_eq(tw_team_new(&team, coordinator, custom_worker, fx_log, NULL),
               0);
  cr_assert_eq(tw_team_grow(team, 1), 0);
  cr_assert_eq(tw_team_shrink_all(team), 0);
  uv_sem_wait(&custom_done);
  /* Creating the next worker is where finished workers are reaped. */
  cr_assert_eq(tw_team_grow(team, 1), 0);
  cr_assert_eq(atomic_load(&custom_joins), 0);
  cr_assert_eq(tw_worker_quit(tw_team_worker(team)), 0);
  cr_assert_eq(tw_team_join(team), 0);
  uv_sem_wait(&custom_done);
  cr_assert_eq(atomic_load(&custom_joins), 2);
  cr_assert_eq(tw_worker_free(tw_team_worker(team)), 0);
  uv_sem_destroy(&custom_done);
}
