/*
 * tests/test_children.c - the reactor's registry of children
 * (reactor-internal.h; docs/design.md, "Reactor children"), white-box: the
 * test registers children of its own and watches the reactor close them.
 *
 * Pinned here: free closes children newest first; a child that finishes
 * closing later (another thread, or a uv_close callback on the reactor's
 * loop) keeps free waiting; adds are refused once free is under way (and a
 * halt child while the reactor is halted); a busy child makes free refuse
 * before anything changes; a halt reaches only halt children.
 */
#include <stdatomic.h>
#include <string.h>
#include <uv.h>

#include "reactor-internal.h"
#include "twtest.h"

TWT_SUITE(children);

#define MAXLOG 16

/* The order closes happened in: child ids, and why. */
static int close_log[MAXLOG], why_log[MAXLOG];
static int nlog;

typedef struct test_child {
  tw__child child;
  tw_reactor *r;
  int id;
  int done_in_close; /* call done from close */
  int closed;        /* close calls */
  uv_timer_t timer;  /* ON_LOOP: closed with uv_close, done from its cb */
  uv_sem_t *finish;  /* off-loop: a thread waits on it, then says done */
} test_child;

static void log_close(test_child *t, int why) {
  cr_assert_lt(nlog, MAXLOG);
  close_log[nlog] = t->id;
  why_log[nlog] = why;
  nlog++;
}

static void plain_close(tw__child *c, int why) {
  test_child *t = (test_child *)c;
  t->closed++;
  log_close(t, why);
  if (t->done_in_close && why == TW__CLOSE_FREE)
    tw__reactor_child_done(t->r, c);
}

static const tw__child_ops plain_ops = {plain_close};

static void child_init(test_child *t, tw_reactor *r, int id, unsigned flags,
                       int done_in_close) {
  memset(t, 0, sizeof(*t));
  tw__child_init(&t->child, &plain_ops, flags);
  t->r = r;
  t->id = id;
  t->done_in_close = done_in_close;
}

TWT_TEST(children, free_closes_children_newest_first) {
  tw_reactor *r = twt_new_reactor(0);
  test_child c[3];
  int i;
  nlog = 0;
  for (i = 0; i < 3; i++) {
    child_init(&c[i], r, i, 0, 1);
    cr_assert_eq(tw__reactor_child_add(r, &c[i].child), 0);
  }
  twt_free_reactor(r);
  cr_assert_eq(nlog, 3);
  for (i = 0; i < 3; i++) {
    cr_assert_eq(close_log[i], 2 - i);
    cr_assert_eq(why_log[i], TW__CLOSE_FREE);
    cr_assert_eq(c[i].closed, 1);
  }
}

TWT_TEST(children, a_child_done_before_free_is_not_closed) {
  tw_reactor *r = twt_new_reactor(0);
  test_child a, b;
  nlog = 0;
  child_init(&a, r, 1, 0, 1);
  child_init(&b, r, 2, 0, 1);
  cr_assert_eq(tw__reactor_child_add(r, &a.child), 0);
  cr_assert_eq(tw__reactor_child_add(r, &b.child), 0);
  tw__reactor_child_done(r, &a.child);
  twt_free_reactor(r);
  cr_assert_eq(nlog, 1);
  cr_assert_eq(close_log[0], 2);
  cr_assert_eq(a.closed, 0);
}

/* ---- closing done later, on another thread ------------------------------------- */

static uv_sem_t finish_sem, closing_sem;
static atomic_int finished;

static void later_close(tw__child *c, int why) {
  test_child *t = (test_child *)c;
  t->closed++;
  log_close(t, why);
  uv_sem_post(&closing_sem); /* the thread may finish now */
}

static const tw__child_ops later_ops = {later_close};

static void finisher(void *arg) {
  test_child *t = arg;
  uv_sem_wait(&closing_sem);
  uv_sem_wait(&finish_sem);
  atomic_store(&finished, 1);
  tw__reactor_child_done(t->r, &t->child);
}

static void releaser(void *arg) {
  (void)arg;
  /* Free must still be waiting: the child has not said done. */
  uv_sem_post(&finish_sem);
}

TWT_TEST(children, a_child_that_finishes_later_keeps_free_waiting) {
  tw_reactor *r = twt_new_reactor(0);
  test_child t;
  uv_thread_t th, rel;
  nlog = 0;
  atomic_store(&finished, 0);
  cr_assert_eq(uv_sem_init(&finish_sem, 0), 0);
  cr_assert_eq(uv_sem_init(&closing_sem, 0), 0);
  child_init(&t, r, 7, 0, 0);
  t.child.ops = &later_ops;
  cr_assert_eq(tw__reactor_child_add(r, &t.child), 0);
  cr_assert_eq(uv_thread_create(&th, finisher, &t), 0);
  cr_assert_eq(uv_thread_create(&rel, releaser, NULL), 0);
  twt_free_reactor(r); /* returns only once the finisher said done */
  cr_assert_eq(atomic_load(&finished), 1);
  cr_assert_eq(t.closed, 1);
  uv_thread_join(&th);
  uv_thread_join(&rel);
  uv_sem_destroy(&finish_sem);
  uv_sem_destroy(&closing_sem);
}

/* ---- closing done later, from a uv_close callback on the loop ------------------ */

static void timer_closed(uv_handle_t *h) {
  test_child *t = h->data;
  atomic_store(&finished, 1);
  tw__reactor_child_done(t->r, &t->child);
}

static void handle_close(tw__child *c, int why) {
  test_child *t = (test_child *)c;
  t->closed++;
  log_close(t, why);
  uv_close((uv_handle_t *)&t->timer, timer_closed);
}

static const tw__child_ops handle_ops = {handle_close};

TWT_TEST(children, free_runs_its_loop_for_children_closing_on_it) {
  tw_reactor *r = twt_new_reactor(0);
  test_child t;
  nlog = 0;
  atomic_store(&finished, 0);
  child_init(&t, r, 3, TW__CHILD_ON_LOOP, 0);
  t.child.ops = &handle_ops;
  cr_assert_eq(uv_timer_init(tw_reactor_loop(r), &t.timer), 0);
  t.timer.data = &t;
  cr_assert_eq(tw__reactor_child_add(r, &t.child), 0);
  twt_free_reactor(r);
  cr_assert_eq(atomic_load(&finished), 1);
  cr_assert_eq(t.closed, 1);
}

TWT_TEST(children, on_a_hosted_loop_the_reactor_goes_with_its_last_child) {
  uv_loop_t loop;
  tw_reactor *r = NULL;
  test_child t;
  nlog = 0;
  atomic_store(&finished, 0);
  cr_assert_eq(uv_loop_init(&loop), 0);
  cr_assert_eq(tw_reactor_new(&r, &loop, 0), 0);
  child_init(&t, r, 4, TW__CHILD_ON_LOOP, 0);
  t.child.ops = &handle_ops;
  cr_assert_eq(uv_timer_init(&loop, &t.timer), 0);
  t.timer.data = &t;
  cr_assert_eq(tw__reactor_child_add(r, &t.child), 0);
  cr_assert_eq(tw_reactor_free(r), 0);
  cr_assert_eq(t.closed, 1);
  cr_assert_eq(atomic_load(&finished), 0); /* the host's loop has not run */
  cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
  cr_assert_eq(atomic_load(&finished), 1);
  cr_assert_eq(uv_loop_close(&loop), 0);
  /* The leak check (twt_check) sees the reactor's memory gone. */
}

/* ---- refusals -------------------------------------------------------------------- */

static tw_reactor *adding_r;
static int add_rc;

static void add_from_close(tw__child *c, int why) {
  test_child *t = (test_child *)c;
  test_child late;
  log_close(t, why);
  child_init(&late, adding_r, 9, 0, 1);
  add_rc = tw__reactor_child_add(adding_r, &late.child);
  tw__reactor_child_done(t->r, c);
}

static const tw__child_ops add_ops = {add_from_close};

TWT_TEST(children, add_after_free_started_is_refused) {
  tw_reactor *r = twt_new_reactor(0);
  test_child t;
  nlog = 0;
  add_rc = 0;
  adding_r = r;
  child_init(&t, r, 5, 0, 0);
  t.child.ops = &add_ops;
  cr_assert_eq(tw__reactor_child_add(r, &t.child), 0);
  twt_free_reactor(r);
  cr_assert_eq(add_rc, TW_ESHUTDOWN);
  cr_assert_eq(nlog, 1);
}

TWT_TEST(children, a_busy_child_makes_free_refuse_until_parked) {
  tw_reactor *r = twt_new_reactor(0);
  test_child t;
  nlog = 0;
  child_init(&t, r, 6, TW__CHILD_BUSY, 1);
  cr_assert_eq(tw__reactor_child_add(r, &t.child), 0);
  cr_assert_eq(tw_reactor_free(r), TW_EBUSY);
  cr_assert_eq(nlog, 0); /* nothing changed */
  /* Parked: no longer busy; free closes it. */
  tw__reactor_child_park(r, &t.child);
  twt_free_reactor(r);
  cr_assert_eq(nlog, 1);
  cr_assert_eq(close_log[0], 6);
}

TWT_TEST(children, park_adds_a_child_not_yet_registered) {
  tw_reactor *r = twt_new_reactor(0);
  test_child t;
  nlog = 0;
  child_init(&t, r, 8, 0, 1);
  tw__reactor_child_park(r, &t.child);
  twt_free_reactor(r);
  cr_assert_eq(nlog, 1);
  cr_assert_eq(close_log[0], 8);
}

/* ---- halts ------------------------------------------------------------------------ */

static tw_result stop_now(void *arg) {
  cr_assert_eq(tw_reactor_stop(arg), 0);
  return tw_result_none();
}

TWT_TEST(children, a_halt_reaches_only_halt_children_and_refuses_new_ones) {
  tw_reactor *r = twt_new_reactor(0);
  test_child h, p, late;
  nlog = 0;
  child_init(&h, r, 1, TW__CHILD_HALT, 1);
  child_init(&p, r, 2, 0, 1);
  child_init(&late, r, 3, TW__CHILD_HALT, 1);
  cr_assert_eq(tw__reactor_child_add(r, &h.child), 0);
  cr_assert_eq(tw__reactor_child_add(r, &p.child), 0);
  cr_assert_eq(tw_reactor_call_when_running(r, stop_now, r, NULL, NULL), 0);
  twt_run(r);
  cr_assert_eq(nlog, 1);
  cr_assert_eq(close_log[0], 1);
  cr_assert_eq(why_log[0], TW__CLOSE_HALT);
  cr_assert_eq(tw__reactor_child_add(r, &late.child), TW_ESHUTDOWN);
  twt_free_reactor(r);
  cr_assert_eq(nlog, 3);
  cr_assert_eq(close_log[1], 2);
  cr_assert_eq(close_log[2], 1);
  cr_assert_eq(why_log[2], TW__CLOSE_FREE);
}
