/*
 * tests/test_cooperator.c - Cooperator, CooperativeTask, cooperate and
 * coiterate (cooperator.h).
 *
 * Ports twisted/test/test_cooperator.py (Twisted 22.4): CooperatorTests and
 * AliasTests as suite "cooperator", RunStateTests as suite "run_state",
 * under the same names in snake_case. Twisted's iterators are generators;
 * here each is a C function with its state in arg. Tests that use the
 * global reactor in Twisted run on a manual clock, so that they are
 * deterministic: "the next reactor iteration" is one tick,
 * tw_clock_advance(clock, TW_COOPERATOR_EPSILON). What Twisted's tests read
 * from privates (_delayedCall, _tasks, _tick) is seen from the scheduler
 * instead: its pending call, or the fake scheduler's work.
 * The twuv-only tests at the end cover what Twisted's tests leave out.
 */
#include <string.h>

#include "defer_helpers.h"

TWT_SUITE(cooperator);
TWT_SUITE(run_state);

#define EPS TW_COOPERATOR_EPSILON

/* ---- FakeScheduler --------------------------------------------------------- */

typedef struct fake_call {
  tw_call_fn fn;
  void *arg;
  int cancelled;
} fake_call;

typedef struct fake_scheduler {
  fake_call pool[256]; /* handles stay valid for the whole test */
  size_t npool;
  fake_call *work[256];
  size_t nwork;
} fake_scheduler;

static void *fake_schedule(tw_call_fn tick, void *tick_arg, void *ctx) {
  fake_scheduler *s = ctx;
  fake_call *unit;
  cr_assert_lt(s->npool, 256);
  unit = &s->pool[s->npool++];
  unit->fn = tick;
  unit->arg = tick_arg;
  unit->cancelled = 0;
  s->work[s->nwork++] = unit;
  return unit;
}

static void fake_cancel(void *handle, void *ctx) {
  fake_call *unit = handle;
  (void)ctx;
  cr_assert_not(unit->cancelled, "cancelled twice");
  unit->cancelled = 1;
}

/* pump: do all of the work that is currently available to be done. */
static void fake_pump(fake_scheduler *s) {
  fake_call *work[256];
  size_t i, n = s->nwork;
  memcpy(work, s->work, n * sizeof(*work));
  s->nwork = 0;
  for (i = 0; i < n; i++)
    if (!work[i]->cancelled) work[i]->fn(work[i]->arg);
}

/* Scheduled calls neither run nor cancelled. */
static size_t pending_calls(const fake_scheduler *s) {
  size_t i, n = 0;
  for (i = 0; i < s->nwork; i++) n += !s->work[i]->cancelled;
  return n;
}

/* terminationPredicateFactory=lambda: lambda: True */
static int always_over(void *ctx) {
  (void)ctx;
  return 1;
}

static tw_cooperator_options fake_options(fake_scheduler *s, int one_unit) {
  tw_cooperator_options o;
  memset(&o, 0, sizeof(o));
  o.schedule = fake_schedule;
  o.cancel = fake_cancel;
  o.schedule_ctx = s;
  if (one_unit) o.slice_over = always_over;
  return o;
}

/* ---- iterators --------------------------------------------------------- */

/* iter(()) */
static tw_result empty_iter(void *arg, int *done) {
  (void)arg;
  *done = 1;
  return tw_result_none();
}

/* iter(range(n)) / iter([1, 2]): arg points at the remaining count. */
static tw_result count_iter(void *arg, int *done) {
  int *left = arg;
  if (*left == 0) {
    *done = 1;
    return tw_result_none();
  }
  --*left;
  return tw_result_none();
}

/* ---- CooperatorTests ------------------------------------------------------- */

#define RESULT "done"

/* ebIter: trap SchedulerStopped, return RESULT. */
static tw_result eb_iter(tw_result r, void *arg) {
  (void)arg;
  if (!tw_failure_trap(r.u.failure, &TW_SCHEDULER_STOPPED)) return r;
  tw_result_release(r);
  return tw_result_value(V(RESULT), NULL);
}

/* cbIter: self.fail() */
static tw_result cb_iter(tw_result r, void *arg) {
  (void)arg;
  tw_result_release(r);
  cr_assert_fail("the iterator completed");
  return tw_result_none();
}

static void assert_result(tw_deferred *d) {
  cr_assert_str_eq(success_result_of(d), RESULT);
}

TWT_TEST(cooperator, test_stopped_rejects_new_tasks) {
  int with_deferred;
  for (with_deferred = 0; with_deferred < 2; with_deferred++) {
    tw_clock *clock = tw_clock_new_manual();
    tw_cooperator *c;
    cr_assert_eq(tw_cooperator_new(&c, clock, 1, NULL), 0);
    tw_deferred *stuff = with_deferred ? tw_deferred_new(NULL, NULL) : NULL;
    tw_deferred *d;
    cr_assert_eq(tw_cooperator_stop(c), 0);
    cr_assert_eq(tw_coiterate(c, empty_iter, NULL, NULL, stuff, &d), 0);
    if (stuff != NULL) cr_assert_eq(d, stuff);
    tw_deferred_add_callback(d, cb_iter, NULL);
    tw_deferred_add_errback(d, eb_iter, NULL);
    assert_result(d);
    cr_assert_eq(tw_clock_pending(clock), 0);
    tw_deferred_unref(d);
    tw_deferred_unref(stuff);
    tw_cooperator_free(c);
    tw_clock_free(clock);
  }
}

/* myiter(): yield from range(3), counting in value (starts at -1). */
static tw_result range3_iter(void *arg, int *done) {
  int *value = arg;
  if (*value == 2) {
    *done = 1;
    return tw_result_none();
  }
  ++*value;
  return tw_result_none();
}

TWT_TEST(cooperator, test_stop_running) {
  tw_clock *clock = tw_clock_new_manual();
  tw_cooperator *c;
  cr_assert_eq(tw_cooperator_new(&c, clock, 1, NULL), 0);
  int value = -1;
  tw_deferred *d;
  cr_assert_eq(tw_coiterate(c, range3_iter, &value, NULL, NULL, &d), 0);
  tw_deferred_add_callback(d, cb_iter, NULL);
  tw_deferred_add_errback(d, eb_iter, NULL);
  tw_cooperator_stop(c);
  assert_result(d);
  cr_assert_eq(value, -1);
  tw_clock_advance(clock, 1);
  cr_assert_eq(value, -1);
  tw_deferred_unref(d);
  tw_cooperator_free(c);
  tw_clock_free(clock);
}

typedef struct outstanding {
  tw_clock *clock;
  tw_deferred *test_control_d;
  tw_deferred *outstanding_d;
  tw_cooperator *c;
  int calls;
} outstanding;

static void fire_none(void *d) { tw_deferred_callback(d, tw_result_none()); }

/* reactor.callLater(0, testControlD.callback, None); yield outstandingD;
 * self.fail() */
static tw_result outstanding_iter(void *arg, int *done) {
  outstanding *o = arg;
  (void)done;
  cr_assert_eq(o->calls++, 0, "resumed after the cooperator stopped");
  tw_clock_call_later(o->clock, 0, fire_none, o->test_control_d, NULL, NULL);
  return tw_result_deferred(tw_deferred_ref(o->outstanding_d));
}

/* stopAndGo */
static tw_result stop_and_go(tw_result r, void *arg) {
  outstanding *o = arg;
  tw_result_release(r);
  tw_cooperator_stop(o->c);
  tw_deferred_callback(o->outstanding_d, tw_result_value(V("arglebargle"), NULL));
  return tw_result_none();
}

TWT_TEST(cooperator, test_stop_outstanding) {
  outstanding o;
  tw_deferred *d;
  int fired = 0;
  o.clock = tw_clock_new_manual();
  o.test_control_d = tw_deferred_new(NULL, NULL);
  o.outstanding_d = tw_deferred_new(NULL, NULL);
  cr_assert_eq(tw_cooperator_new(&o.c, o.clock, 1, NULL), 0);
  o.calls = 0;
  cr_assert_eq(tw_coiterate(o.c, outstanding_iter, &o, NULL, NULL, &d), 0);
  tw_deferred_add_callback(o.test_control_d, stop_and_go, &o);
  tw_deferred_add_callback(d, cb_iter, NULL);
  tw_deferred_add_errback(d, eb_iter, NULL);
  while (tw_deferred_called(d) == 0 && fired++ < 10)
    tw_clock_advance(o.clock, EPS);
  assert_result(d);
  cr_assert_eq(o.calls, 1);
  tw_deferred_unref(d);
  tw_deferred_unref(o.test_control_d);
  tw_deferred_unref(o.outstanding_d);
  tw_cooperator_free(o.c);
  tw_clock_free(o.clock);
}

/* if False: yield None / else: raise RuntimeError() */
static tw_result raising_iter(void *arg, int *done) {
  (void)arg;
  (void)done;
  return tw_result_failure(tw_failure_new(&TW_RUNTIME_ERROR, 0, "boom"));
}

/* Run a coiterate on a manual clock until its Deferred fires. */
static tw_deferred *coiterate_to_end(tw_clock *clock, tw_cooperator *c,
                                     tw_iterator_fn fn, void *arg) {
  tw_deferred *d;
  int n = 0;
  cr_assert_eq(tw_coiterate(c, fn, arg, NULL, NULL, &d), 0);
  while (tw_deferred_called(d) == 0 && n++ < 100) tw_clock_advance(clock, EPS);
  return d;
}

TWT_TEST(cooperator, test_unexpected_error) {
  tw_clock *clock = tw_clock_new_manual();
  tw_cooperator *c;
  cr_assert_eq(tw_cooperator_new(&c, clock, 1, NULL), 0);
  tw_deferred *d = coiterate_to_end(clock, c, raising_iter, NULL);
  failure_result_of(d, &TW_RUNTIME_ERROR);
  tw_deferred_unref(d);
  tw_cooperator_free(c);
  tw_clock_free(clock);
}

typedef struct later_iter_state {
  tw_clock *clock;
  tw_deferred *d;
} later_iter_state;

static void errback_runtime(void *d) {
  tw_deferred_errback(d, tw_failure_new(&TW_RUNTIME_ERROR, 0, "later"));
}

/* D = Deferred(); reactor.callLater(0, D.errback, RuntimeError()); yield D */
static tw_result actually_later_iter(void *arg, int *done) {
  later_iter_state *s = arg;
  (void)done;
  cr_assert_null(s->d, "called again");
  s->d = tw_deferred_new(NULL, NULL);
  tw_clock_call_later(s->clock, 0, errback_runtime, s->d, NULL, NULL);
  return tw_result_deferred(tw_deferred_ref(s->d));
}

TWT_TEST(cooperator, test_unexpected_error_actually_later) {
  later_iter_state s;
  tw_cooperator *c;
  tw_deferred *d;
  s.clock = tw_clock_new_manual();
  s.d = NULL;
  cr_assert_eq(tw_cooperator_new(&c, s.clock, 1, NULL), 0);
  d = coiterate_to_end(s.clock, c, actually_later_iter, &s);
  failure_result_of(d, &TW_RUNTIME_ERROR);
  tw_deferred_unref(d);
  tw_deferred_unref(s.d);
  tw_cooperator_free(c);
  tw_clock_free(s.clock);
}

/* yield defer.fail(RuntimeError()) */
static tw_result not_actually_later_iter(void *arg, int *done) {
  (void)arg;
  (void)done;
  return tw_result_deferred(
      tw_fail(tw_failure_new(&TW_RUNTIME_ERROR, 0, "now")));
}

TWT_TEST(cooperator, test_unexpected_error_not_actually_later) {
  tw_clock *clock = tw_clock_new_manual();
  tw_cooperator *c;
  cr_assert_eq(tw_cooperator_new(&c, clock, 1, NULL), 0);
  tw_deferred *d = coiterate_to_end(clock, c, not_actually_later_iter, NULL);
  failure_result_of(d, &TW_RUNTIME_ERROR);
  tw_deferred_unref(d);
  tw_cooperator_free(c);
  tw_clock_free(clock);
}

/* myiter(things): for th in things: L.append(th); yield None */
typedef struct things_iter_state {
  const char *const *things;
  size_t i, n;
} things_iter_state;

static tw_result things_iter(void *arg, int *done) {
  things_iter_state *s = arg;
  if (s->i == s->n) {
    *done = 1;
    return tw_result_none();
  }
  trace("%s", s->things[s->i++]);
  return tw_result_none();
}

TWT_TEST(cooperator, test_cooperation) {
  static const char *const groups[4][3] = {
      {"a", "b", "c"}, {"1", "2", "3"}, {"d", "e", "f"}, {"4", "5", "6"}};
  things_iter_state st[4];
  tw_deferred *tasks[4], *dl;
  tw_clock *clock = tw_clock_new_manual();
  tw_cooperator *c;
  cr_assert_eq(tw_cooperator_new(&c, clock, 1, NULL), 0);
  int i, n = 0;
  trace_reset();
  for (i = 0; i < 4; i++) {
    st[i].things = groups[i];
    st[i].i = 0;
    st[i].n = 3;
    cr_assert_eq(tw_coiterate(c, things_iter, &st[i], NULL, NULL, &tasks[i]),
                 0);
  }
  cr_assert_eq(tw_deferred_list(&dl, tasks, 4, 0), 0);
  while (tw_deferred_called(dl) == 0 && n++ < 100)
    tw_clock_advance(clock, EPS);
  cr_assert_eq(tw_deferred_called(dl), 1);
  /* sum(zip(*groupsOfThings), ()) */
  assert_trace("a,1,d,4,b,2,e,5,c,3,f,6");
  tw_deferred_unref(dl);
  for (i = 0; i < 4; i++) tw_deferred_unref(tasks[i]);
  tw_cooperator_free(c);
  tw_clock_free(clock);
}

/* class _TPF: stopped = False; __call__ returns stopped */
static int tpf_stopped;
static int tpf_over(void *ctx) {
  (void)ctx;
  return tpf_stopped;
}

typedef struct exhaustion_iter_state {
  int i;
  int output[100];
  int noutput;
} exhaustion_iter_state;

static tw_result exhaustion_iter(void *arg, int *done) {
  exhaustion_iter_state *s = arg;
  if (s->i == 100) {
    *done = 1;
    return tw_result_none();
  }
  s->output[s->noutput++] = s->i;
  if (s->i == 9) tpf_stopped = 1;
  s->i++;
  return tw_result_none();
}

TWT_TEST(cooperator, test_resource_exhaustion) {
  tw_clock *clock = tw_clock_new_manual();
  tw_cooperator_options o;
  tw_cooperator *c;
  exhaustion_iter_state s;
  tw_deferred *d;
  int i;
  memset(&o, 0, sizeof(o));
  memset(&s, 0, sizeof(s));
  o.slice_over = tpf_over;
  tpf_stopped = 0;
  cr_assert_eq(tw_cooperator_new(&c, clock, 1, &o), 0);
  cr_assert_eq(tw_coiterate(c, exhaustion_iter, &s, NULL, NULL, &d), 0);
  tw_deferred_add_errback(d, eb_iter, NULL);
  /* c._delayedCall.cancel(); c._tick(): run the one tick scheduled. */
  cr_assert_eq(tw_clock_pending(clock), 1);
  cr_assert_eq(tw_clock_advance(clock, EPS), 1);
  tw_cooperator_stop(c);
  cr_assert(tpf_stopped);
  cr_assert_eq(s.noutput, 10);
  for (i = 0; i < 10; i++) cr_assert_eq(s.output[i], i);
  assert_result(d);
  tw_deferred_unref(d);
  tw_cooperator_free(c);
  tw_clock_free(clock);
}

/* sched(f): assertFalse(calls); calls.append(FakeCall(f)) */
typedef struct recoiterate {
  fake_scheduler sched;
  tw_cooperator *c;
  int done;
} recoiterate;

static void *assert_single_schedule(tw_call_fn tick, void *tick_arg,
                                    void *ctx) {
  recoiterate *s = ctx;
  cr_assert_eq(s->sched.nwork, 0, "scheduled twice");
  return fake_schedule(tick, tick_arg, &s->sched);
}

static void recoiterate_cancel(void *handle, void *ctx) {
  recoiterate *s = ctx;
  fake_cancel(handle, &s->sched);
}

static tw_result done_append(tw_result r, void *arg) {
  recoiterate *s = arg;
  tw_result_release(r);
  s->done = 1;
  return tw_result_none();
}

/* anotherTask: c.coiterate(iter(())).addBoth(done.append) */
static tw_result another_task(tw_result r, void *arg) {
  recoiterate *s = arg;
  tw_deferred *d;
  tw_result_release(r);
  cr_assert_eq(tw_coiterate(s->c, empty_iter, NULL, NULL, NULL, &d), 0);
  tw_deferred_add_both(d, done_append, s);
  tw_deferred_unref(d);
  return tw_result_none();
}

TWT_TEST(cooperator, test_callback_re_coiterate) {
  static recoiterate s;
  tw_cooperator_options o;
  tw_deferred *d;
  int work = 0;
  memset(&s, 0, sizeof(s));
  memset(&o, 0, sizeof(o));
  o.schedule = assert_single_schedule;
  o.cancel = recoiterate_cancel;
  o.schedule_ctx = &s;
  o.slice_over = always_over;
  cr_assert_eq(tw_cooperator_new(&s.c, NULL, 1, &o), 0);
  cr_assert_eq(tw_coiterate(s.c, empty_iter, NULL, NULL, NULL, &d), 0);
  tw_deferred_add_callback(d, another_task, &s);
  while (!s.done) {
    work++;
    while (s.sched.nwork > 0) {
      /* calls.pop(0).func() */
      fake_call *call = s.sched.work[0];
      memmove(s.sched.work, s.sched.work + 1,
              --s.sched.nwork * sizeof(*s.sched.work));
      if (!call->cancelled) call->fn(call->arg);
      work++;
    }
    cr_assert_leq(work, 50, "Cooperator took too long");
  }
  tw_deferred_unref(d);
  tw_cooperator_free(s.c);
}

TWT_TEST(cooperator, test_removing_last_task_stops_scheduled_call) {
  static fake_scheduler s;
  tw_cooperator_options o;
  tw_cooperator *coop;
  tw_cooperative_task *task1, *task2, *task3;
  fake_call *call;
  int l1 = 2, l2 = 2, l3 = 2;
  memset(&s, 0, sizeof(s));
  o = fake_options(&s, 0);
  cr_assert_eq(tw_cooperator_new(&coop, NULL, 1, &o), 0);
  /* Add two tasks; this should schedule the tick. */
  cr_assert_eq(tw_cooperate(coop, count_iter, &l1, NULL, &task1), 0);
  cr_assert_eq(tw_cooperate(coop, count_iter, &l2, NULL, &task2), 0);
  cr_assert_eq(s.npool, 1);
  call = &s.pool[0];
  cr_assert_eq(call->arg, coop); /* calls[0].func == coop._tick */
  /* Remove the first task; the scheduled call should still be going. */
  tw_cooperative_task_stop(task1);
  cr_assert_not(call->cancelled);
  cr_assert_eq(pending_calls(&s), 1); /* coop._delayedCall == calls[0] */
  /* Remove the second task; the scheduled call should be cancelled. */
  tw_cooperative_task_stop(task2);
  cr_assert(call->cancelled);
  cr_assert_eq(pending_calls(&s), 0); /* coop._delayedCall is None */
  /* Add another task; the scheduled call will be recreated. */
  cr_assert_eq(tw_cooperate(coop, count_iter, &l3, NULL, &task3), 0);
  cr_assert_eq(s.npool, 2);
  call = &s.pool[1];
  cr_assert_not(call->cancelled);
  cr_assert_eq(pending_calls(&s), 1);
  /* The stopped tasks' whenDone would fail: none was asked for. */
  tw_cooperative_task_unref(task1);
  tw_cooperative_task_unref(task2);
  tw_cooperative_task_unref(task3);
  tw_cooperator_free(coop);
}

TWT_TEST(cooperator, test_running_when_started) {
  tw_clock *clock = tw_clock_new_manual();
  tw_cooperator *c;
  cr_assert_eq(tw_cooperator_new(&c, clock, 1, NULL), 0);
  cr_assert_eq(tw_cooperator_running(c), 1);
  tw_cooperator_free(c);
  tw_clock_free(clock);
}

TWT_TEST(cooperator, test_running_when_not_started) {
  tw_clock *clock = tw_clock_new_manual();
  tw_cooperator *c;
  cr_assert_eq(tw_cooperator_new(&c, clock, 0, NULL), 0);
  cr_assert_eq(tw_cooperator_running(c), 0);
  tw_cooperator_free(c);
  tw_clock_free(clock);
}

TWT_TEST(cooperator, test_running_when_running) {
  tw_clock *clock = tw_clock_new_manual();
  tw_cooperator *c;
  cr_assert_eq(tw_cooperator_new(&c, clock, 0, NULL), 0);
  cr_assert_eq(tw_cooperator_start(c), 0);
  cr_assert_eq(tw_cooperator_running(c), 1);
  tw_cooperator_stop(c); /* addCleanup(c.stop) */
  tw_cooperator_free(c);
  tw_clock_free(clock);
}

TWT_TEST(cooperator, test_running_when_stopped) {
  tw_clock *clock = tw_clock_new_manual();
  tw_cooperator *c;
  cr_assert_eq(tw_cooperator_new(&c, clock, 0, NULL), 0);
  cr_assert_eq(tw_cooperator_start(c), 0);
  cr_assert_eq(tw_cooperator_stop(c), 0);
  cr_assert_eq(tw_cooperator_running(c), 0);
  tw_cooperator_free(c);
  tw_clock_free(clock);
}

/* ---- AliasTests -------------------------------------------------------------
 * task.cooperate uses the global cooperator on the global reactor; twuv has
 * no global cooperator, so this runs cooperate on one made for a clock. */

typedef struct doit_state {
  int step;
  tw_deferred *d;
} doit_state;

/* yield 1; yield 2; yield 3; d.callback("yay") */
static tw_result doit_iter(void *arg, int *done) {
  doit_state *s = arg;
  if (s->step++ == 3) {
    tw_deferred_callback(s->d, tw_result_value(V("yay"), NULL));
    *done = 1;
  }
  return tw_result_none();
}

TWT_TEST(cooperator, test_cooperate) {
  tw_clock *clock = tw_clock_new_manual();
  tw_cooperator *c;
  cr_assert_eq(tw_cooperator_new(&c, clock, 1, NULL), 0);
  tw_cooperative_task *the_task;
  doit_state s;
  int n = 0;
  s.step = 0;
  s.d = tw_deferred_new(NULL, NULL);
  cr_assert_eq(tw_cooperate(c, doit_iter, &s, NULL, &the_task), 0);
  /* assertIn(theTask, task._theCooperator._tasks): a tick is scheduled. */
  cr_assert_eq(tw_clock_pending(clock), 1);
  cr_assert_null(tw_cooperative_task_completion(the_task));
  while (tw_deferred_called(s.d) == 0 && n++ < 100)
    tw_clock_advance(clock, EPS);
  cr_assert_str_eq(success_result_of(s.d), "yay");
  cr_assert_eq(tw_cooperative_task_completion(the_task), &TW_TASK_DONE);
  tw_deferred_unref(s.d);
  tw_cooperative_task_unref(the_task);
  tw_cooperator_free(c);
  tw_clock_free(clock);
}

/* ---- RunStateTests ------------------------------------------------------- */

/* The fixture: a cooperator with a fake scheduler and one unit of work per
 * tick, running worker(). work holds ints, or Deferreds (a reference). */
typedef struct rs_work {
  int i;
  tw_deferred *d;
} rs_work;

static struct run_state {
  fake_scheduler scheduler;
  tw_cooperator *cooperator;
  tw_cooperative_task *task;
  int do_defer_next, do_stop_next, do_die_next;
  int i;
  rs_work work[64];
  size_t nwork;
} rs;

static const tw_error_type UNHANDLED_EXCEPTION = {"UnhandledException",
                                                  &TW_ERROR};

/* worker() */
static tw_result rs_worker(void *arg, int *done) {
  (void)arg;
  rs.i++;
  if (rs.do_defer_next) {
    tw_deferred *d = tw_deferred_new(NULL, NULL);
    rs.do_defer_next = 0;
    rs.work[rs.nwork].i = 0;
    rs.work[rs.nwork++].d = d;
    return tw_result_deferred(tw_deferred_ref(d));
  }
  if (rs.do_stop_next) {
    *done = 1;
    return tw_result_none();
  }
  if (rs.do_die_next)
    return tw_result_failure(tw_failure_new(&UNHANDLED_EXCEPTION, 0, "die"));
  rs.work[rs.nwork].i = rs.i;
  rs.work[rs.nwork++].d = NULL;
  return tw_result_none();
}

static void rs_setup(void) {
  tw_cooperator_options o;
  memset(&rs, 0, sizeof(rs));
  o = fake_options(&rs.scheduler, 1);
  cr_assert_eq(tw_cooperator_new(&rs.cooperator, NULL, 1, &o), 0);
  cr_assert_eq(tw_cooperate(rs.cooperator, rs_worker, &rs, NULL, &rs.task),
               0);
  cr_assert_eq(tw_cooperator_start(rs.cooperator), 0);
}

static void rs_teardown(void) {
  size_t i;
  tw_cooperator_free(rs.cooperator);
  tw_cooperative_task_unref(rs.task);
  for (i = 0; i < rs.nwork; i++) tw_deferred_unref(rs.work[i].d);
}

/* The ints in work, as a string ("1,2"); a Deferred is "D". */
static const char *rs_work_str(void) {
  static char buf[256];
  size_t i;
  buf[0] = '\0';
  for (i = 0; i < rs.nwork; i++) {
    size_t len = strlen(buf);
    if (rs.work[i].d != NULL)
      snprintf(buf + len, sizeof(buf) - len, "%sD", i ? "," : "");
    else
      snprintf(buf + len, sizeof(buf) - len, "%s%d", i ? "," : "",
               rs.work[i].i);
  }
  return buf;
}

#define assert_work(expected) cr_assert_str_eq(rs_work_str(), (expected))
#define pump() fake_pump(&rs.scheduler)

#define RS_TEST(name)                  \
  static void rs_##name(void);         \
  TWT_TEST(run_state, test_##name) {   \
    rs_setup();                        \
    rs_##name();                       \
    rs_teardown();                     \
  }                                    \
  static void rs_##name(void)

RS_TEST(pause_resume) {
  /* first, sanity check */
  pump();
  assert_work("1");
  pump();
  assert_work("1,2");
  /* OK, now for real */
  cr_assert_eq(tw_cooperative_task_pause(rs.task), 0);
  pump();
  assert_work("1,2");
  cr_assert_eq(tw_cooperative_task_resume(rs.task), 0);
  /* Resuming itself should not do any work */
  assert_work("1,2");
  pump();
  /* But when the scheduler rolls around again... */
  assert_work("1,2,3");
}

RS_TEST(resume_not_paused) {
  cr_assert_eq(tw_cooperative_task_resume(rs.task), TW_EINVAL);
  cr_assert_eq(tw_cooperative_task_pause(rs.task), 0);
  cr_assert_eq(tw_cooperative_task_resume(rs.task), 0);
  cr_assert_eq(tw_cooperative_task_resume(rs.task), TW_EINVAL);
  cr_assert_eq(tw_cooperative_task_paused(rs.task), 0);
}

RS_TEST(pause_twice) {
  /* pause once */
  tw_cooperative_task_pause(rs.task);
  pump();
  assert_work("");
  /* pause twice */
  tw_cooperative_task_pause(rs.task);
  pump();
  assert_work("");
  /* resume once (it shouldn't) */
  tw_cooperative_task_resume(rs.task);
  pump();
  assert_work("");
  /* resume twice (now it should go) */
  tw_cooperative_task_resume(rs.task);
  pump();
  assert_work("1");
}

RS_TEST(pause_while_deferred) {
  rs.do_defer_next = 1;
  pump();
  cr_assert_eq(rs.nwork, 1);
  cr_assert_not_null(rs.work[0].d); /* assertIsInstance(work[0], Deferred) */
  pump();
  cr_assert_eq(rs.nwork, 1);
  tw_cooperative_task_pause(rs.task);
  pump();
  cr_assert_eq(rs.nwork, 1);
  tw_cooperative_task_resume(rs.task);
  pump();
  cr_assert_eq(rs.nwork, 1);
  tw_deferred_callback(rs.work[0].d, tw_result_value(V("STUFF!"), NULL));
  pump();
  cr_assert_eq(rs.nwork, 2);
  cr_assert_null(rs.work[1].d);
  cr_assert_eq(rs.work[1].i, 2);
}

static void *results1[4], *results2[4];
static size_t nresults1, nresults2;
static long final1[4], final2[4];
static size_t nfinal1, nfinal2;

static tw_result callback_one(tw_result r, void *arg) {
  (void)arg;
  results1[nresults1++] = r.u.value;
  tw_result_release(r);
  return tw_result_value((void *)1, NULL);
}

static tw_result callback_two(tw_result r, void *arg) {
  (void)arg;
  results2[nresults2++] = r.u.value;
  tw_result_release(r);
  return tw_result_value((void *)2, NULL);
}

static tw_result final_append(tw_result r, void *arg) {
  if (arg == final1)
    final1[nfinal1++] = (long)r.u.value;
  else
    final2[nfinal2++] = (long)r.u.value;
  tw_result_release(r);
  return tw_result_none();
}

RS_TEST(when_done) {
  tw_deferred *deferred1, *deferred2;
  nresults1 = nresults2 = nfinal1 = nfinal2 = 0;
  cr_assert_eq(tw_cooperative_task_when_done(rs.task, &deferred1), 0);
  cr_assert_eq(tw_cooperative_task_when_done(rs.task, &deferred2), 0);
  cr_assert_neq(deferred1, deferred2);
  tw_deferred_add_callback(deferred1, callback_one, NULL);
  tw_deferred_add_callback(deferred2, callback_two, NULL);
  tw_deferred_add_callback(deferred1, final_append, final1);
  tw_deferred_add_callback(deferred2, final_append, final2);
  /* exhaust the task iterator; callbacks fire */
  rs.do_stop_next = 1;
  pump();
  cr_assert_eq(nresults1, 1);
  cr_assert_eq(nresults2, 1);
  /* assertIs(results[0], self.task._iterator): the iterator is arg. */
  cr_assert_eq(results1[0], &rs);
  cr_assert_eq(results2[0], &rs);
  cr_assert_eq(nfinal1, 1);
  cr_assert_eq(final1[0], 1);
  cr_assert_eq(nfinal2, 1);
  cr_assert_eq(final2[0], 2);
  tw_deferred_unref(deferred1);
  tw_deferred_unref(deferred2);
}

static tw_result record_failure_type(tw_result r, void *arg) {
  const tw_error_type **out = arg;
  *out = tw_failure_type(r.u.failure);
  tw_result_release(r);
  return tw_result_none();
}

RS_TEST(when_done_error) {
  tw_deferred *deferred1;
  const tw_error_type *type = NULL;
  cr_assert_eq(tw_cooperative_task_when_done(rs.task, &deferred1), 0);
  tw_deferred_add_errback(deferred1, record_failure_type, &type);
  rs.do_die_next = 1;
  pump();
  cr_assert_eq(type, &UNHANDLED_EXCEPTION);
  tw_deferred_unref(deferred1);
}

RS_TEST(when_done_stop) {
  tw_deferred *deferred1;
  const tw_error_type *type = NULL;
  cr_assert_eq(tw_cooperative_task_when_done(rs.task, &deferred1), 0);
  tw_deferred_add_errback(deferred1, record_failure_type, &type);
  cr_assert_eq(tw_cooperative_task_stop(rs.task), 0);
  cr_assert_eq(type, &TW_TASK_STOPPED);
  tw_deferred_unref(deferred1);
}

RS_TEST(when_done_already_done) {
  tw_deferred *d;
  rs.do_stop_next = 1;
  pump();
  cr_assert_eq(tw_cooperative_task_when_done(rs.task, &d), 0);
  cr_assert_eq(tw_deferred_called(d), 1);
  cr_assert_eq(success_result_of(d), (const char *)&rs); /* the iterator */
  tw_deferred_unref(d);
}

RS_TEST(stop_stops) {
  cr_assert_eq(tw_cooperative_task_stop(rs.task), 0);
  pump();
  cr_assert_eq(rs.nwork, 0);
  cr_assert_eq(tw_cooperative_task_stop(rs.task), TW_ENOTRUNNING);
  cr_assert_eq(tw_cooperative_task_completion(rs.task), &TW_TASK_STOPPED);
  cr_assert_eq(tw_cooperative_task_pause(rs.task), TW_ENOTRUNNING);
  cr_assert_eq(tw_cooperative_task_completion(rs.task), &TW_TASK_STOPPED);
  /* Sanity check - it's still not scheduled, is it? */
  pump();
  assert_work("");
}

RS_TEST(pause_stop_resume) {
  cr_assert_eq(tw_cooperative_task_pause(rs.task), 0);
  cr_assert_eq(tw_cooperative_task_stop(rs.task), 0);
  cr_assert_eq(tw_cooperative_task_resume(rs.task), 0);
  pump();
  assert_work("");
}

RS_TEST(stop_deferred) {
  tw_deferred *d;
  rs.do_defer_next = 1;
  pump();
  d = rs.work[--rs.nwork].d; /* self.work.pop() */
  cr_assert_eq(tw_cooperative_task_paused(rs.task), 1);
  trace_reset();
  tw_deferred_add_both(d, rec_eat, "r");
  pump();
  cr_assert_eq(tw_cooperative_task_stop(rs.task), 0);
  pump();
  tw_deferred_callback(d, tw_result_value(V("7"), NULL));
  pump();
  /* None, not 7: the cooperator consumed the result. */
  assert_trace("r=None");
  /* But more importantly, no further work should have happened. */
  assert_work("");
  tw_deferred_unref(d);
}

RS_TEST(stop_exhausted) {
  rs.do_stop_next = 1;
  pump();
  cr_assert_eq(tw_cooperative_task_stop(rs.task), TW_ENOTRUNNING);
  cr_assert_eq(tw_cooperative_task_completion(rs.task), &TW_TASK_DONE);
}

RS_TEST(stop_errored) {
  tw_deferred *d;
  rs.do_die_next = 1;
  /* Nothing in Twisted's test consumes the failure: it has no whenDone. */
  pump();
  cr_assert_eq(tw_cooperative_task_stop(rs.task), TW_ENOTRUNNING);
  cr_assert_eq(tw_cooperative_task_completion(rs.task), &TW_TASK_FAILED);
  /* A whenDone now fails with the iterator's failure. */
  cr_assert_eq(tw_cooperative_task_when_done(rs.task, &d), 0);
  failure_result_of(d, &UNHANDLED_EXCEPTION);
  tw_deferred_unref(d);
}

static int callback_phases;
static void *callback_result;

/* stopit */
static tw_result stopit(tw_result r, void *arg) {
  (void)arg;
  callback_result = r.u.value;
  callback_phases++;
  tw_result_release(r);
  cr_assert_eq(tw_cooperator_stop(rs.cooperator), 0);
  callback_phases++; /* "done" */
  return tw_result_none();
}

RS_TEST(stop_cooperator_reentrancy) {
  tw_deferred *d;
  callback_phases = 0;
  callback_result = NULL;
  cr_assert_eq(tw_cooperative_task_when_done(rs.task, &d), 0);
  tw_deferred_add_callback(d, stopit, NULL);
  rs.do_stop_next = 1;
  pump();
  cr_assert_eq(callback_phases, 2);
  cr_assert_eq(callback_result, &rs); /* self.task._iterator */
  cr_assert_eq(tw_cooperative_task_completion(rs.task), &TW_TASK_DONE);
  tw_deferred_unref(d);
}

/* ---- twuv: what Twisted's tests leave out ------------------------------- */

#define frees twt_freed /* twtest.h */
#define count_free twt_count_free

static tw_result count_stopped(tw_result r, void *arg) {
  int *n = arg;
  cr_assert(tw_failure_trap(r.u.failure, &TW_SCHEDULER_STOPPED));
  tw_result_release(r);
  ++*n;
  return tw_result_none();
}

/* Twisted 22.4's stop() removes each task from the list it walks, so it
 * ends only every other task and forgets the rest (their Deferreds never
 * fire). Here every task ends with SchedulerStopped. */
TWT_TEST(cooperator, stop_ends_every_task) {
  tw_clock *clock = tw_clock_new_manual();
  tw_cooperator *c;
  cr_assert_eq(tw_cooperator_new(&c, clock, 1, NULL), 0);
  int left[4] = {100, 100, 100, 100}, stopped = 0, i;
  tw_deferred *d[4];
  frees = 0;
  for (i = 0; i < 4; i++) {
    cr_assert_eq(tw_coiterate(c, count_iter, &left[i], count_free, NULL, &d[i]),
                 0);
    tw_deferred_add_errback(d[i], count_stopped, &stopped);
  }
  cr_assert_eq(tw_cooperator_stop(c), 0);
  cr_assert_eq(stopped, 4);
  cr_assert_eq(frees, 4);
  cr_assert_eq(tw_clock_pending(clock), 0);
  for (i = 0; i < 4; i++) tw_deferred_unref(d[i]);
  tw_cooperator_free(c);
  tw_clock_free(clock);
}

static tw_result keep_value(tw_result r, void *arg) {
  tw_result *kept = arg;
  *kept = r;
  return tw_result_none();
}

/* coiterate's Deferred fires with arg, and the result owns it: a callback
 * added after the task is gone still gets a live arg (issue 13: arg_free
 * before the callbacks made ports use freed memory). */
TWT_TEST(cooperator, coiterate_moves_arg_into_result) {
  tw_clock *clock = tw_clock_new_manual();
  tw_cooperator *c;
  cr_assert_eq(tw_cooperator_new(&c, clock, 1, NULL), 0);
  int left = 3;
  tw_deferred *d;
  tw_result kept;
  frees = 0;
  cr_assert_eq(tw_coiterate(c, count_iter, &left, count_free, NULL, &d), 0);
  while (tw_deferred_called(d) == 0) tw_clock_advance(clock, EPS);
  cr_assert_eq(left, 0);
  cr_assert_eq(frees, 0, "arg freed while the result holds it");
  tw_deferred_add_callback(d, keep_value, &kept);
  cr_assert_eq(kept.u.value, &left);
  cr_assert_eq(kept.value_free, count_free);
  cr_assert_eq(frees, 0);
  tw_result_release(kept);
  cr_assert_eq(frees, 1);
  tw_deferred_unref(d);
  cr_assert_eq(frees, 1);
  tw_cooperator_free(c);
  tw_clock_free(clock);
}

/* Freed with its unconsumed value, the Deferred frees arg. */
TWT_TEST(cooperator, coiterate_result_released_frees_arg) {
  tw_clock *clock = tw_clock_new_manual();
  tw_cooperator *c;
  cr_assert_eq(tw_cooperator_new(&c, clock, 1, NULL), 0);
  int left = 1;
  tw_deferred *d;
  frees = 0;
  cr_assert_eq(tw_coiterate(c, count_iter, &left, count_free, NULL, &d), 0);
  while (tw_deferred_called(d) == 0) tw_clock_advance(clock, EPS);
  cr_assert_eq(frees, 0);
  tw_deferred_unref(d);
  cr_assert_eq(frees, 1);
  tw_cooperator_free(c);
  tw_clock_free(clock);
}

static tw_result check_not_freed(tw_result r, void *arg) {
  (void)arg;
  cr_assert_eq(frees, 0, "arg freed before the errbacks ran");
  if (!tw_failure_trap(r.u.failure, &TW_RUNTIME_ERROR)) return r;
  tw_result_release(r);
  return tw_result_none();
}

TWT_TEST(cooperator, coiterate_failure_frees_arg_after_errbacks) {
  tw_clock *clock = tw_clock_new_manual();
  tw_cooperator *c;
  cr_assert_eq(tw_cooperator_new(&c, clock, 1, NULL), 0);
  tw_deferred *d;
  frees = 0;
  cr_assert_eq(tw_coiterate(c, raising_iter, NULL, count_free, NULL, &d), 0);
  tw_deferred_add_errback(d, check_not_freed, NULL);
  tw_clock_advance(clock, EPS);
  cr_assert_eq(tw_deferred_called(d), 1);
  cr_assert_eq(frees, 1);
  tw_deferred_unref(d);
  tw_cooperator_free(c);
  tw_clock_free(clock);
}

/* cooperate: arg_free runs when the finished task is no longer held; the
 * whenDone value (arg) is valid until then. */
TWT_TEST(cooperator, cooperate_arg_free_when_task_released) {
  tw_clock *clock = tw_clock_new_manual();
  tw_cooperator *c;
  cr_assert_eq(tw_cooperator_new(&c, clock, 1, NULL), 0);
  tw_cooperative_task *t;
  tw_deferred *d;
  int left = 2;
  frees = 0;
  cr_assert_eq(tw_cooperate(c, count_iter, &left, count_free, &t), 0);
  cr_assert_eq(tw_cooperative_task_when_done(t, &d), 0);
  while (tw_deferred_called(d) == 0) tw_clock_advance(clock, EPS);
  cr_assert_eq(success_result_of(d), (const char *)&left);
  cr_assert_eq(frees, 0);
  tw_deferred_unref(d);
  cr_assert_eq(frees, 0);
  tw_cooperative_task_unref(t);
  cr_assert_eq(frees, 1);
  /* Without a handle: freed as soon as it finishes. */
  left = 1;
  cr_assert_eq(tw_cooperate(c, count_iter, &left, count_free, NULL), 0);
  /* One tick is 10 ms of real time: under valgrind that may be one unit. */
  while (frees < 2 && tw_clock_pending(clock) > 0) tw_clock_advance(clock, EPS);
  cr_assert_eq(frees, 2);
  tw_cooperator_free(c);
  tw_clock_free(clock);
}

/* A paused task dropped by its last holder: nothing can resume it, so it
 * goes (arg_free runs), and its unfired whenDone Deferred just stays
 * unfired, as after Python's garbage collection. */
TWT_TEST(cooperator, paused_task_released) {
  tw_clock *clock = tw_clock_new_manual();
  tw_cooperator *c;
  cr_assert_eq(tw_cooperator_new(&c, clock, 1, NULL), 0);
  tw_cooperative_task *t;
  tw_deferred *d;
  int left = 100;
  frees = 0;
  cr_assert_eq(tw_cooperate(c, count_iter, &left, count_free, &t), 0);
  cr_assert_eq(tw_cooperative_task_when_done(t, &d), 0);
  cr_assert_eq(tw_cooperative_task_pause(t), 0);
  cr_assert_eq(tw_clock_pending(clock), 0); /* no task: no tick */
  tw_cooperative_task_unref(t);
  cr_assert_eq(frees, 1);
  assert_no_result(d);
  tw_deferred_unref(d);
  tw_cooperator_free(c);
  tw_clock_free(clock);
}

/* yield Deferred(): one that only the test holds. */
static tw_result hold_iter(void *arg, int *done) {
  tw_deferred **held = arg;
  (void)done;
  cr_assert_null(*held, "called again");
  *held = tw_deferred_new(NULL, NULL);
  return tw_result_deferred(tw_deferred_ref(*held));
}

/* A task waiting on a Deferred that nobody can fire goes with it. */
TWT_TEST(cooperator, task_waiting_on_dropped_deferred_released) {
  tw_clock *clock = tw_clock_new_manual();
  tw_cooperator *c;
  cr_assert_eq(tw_cooperator_new(&c, clock, 1, NULL), 0);
  tw_deferred *held = NULL, *d;
  frees = 0;
  cr_assert_eq(tw_coiterate(c, hold_iter, &held, count_free, NULL, &d), 0);
  tw_clock_advance(clock, EPS); /* the iterator yields held */
  cr_assert_not_null(held);
  cr_assert_eq(tw_clock_pending(clock), 0); /* no task to tick for */
  cr_assert_eq(frees, 0);
  tw_deferred_unref(held);
  cr_assert_eq(frees, 1);
  assert_no_result(d);
  tw_deferred_unref(d);
  tw_cooperator_free(c);
  tw_clock_free(clock);
}

TWT_TEST(cooperator, new_out_of_memory_is_enomem) {
  tw_clock *clock = tw_clock_new_manual();
  tw_cooperator *c = (void *)1;
  twt_alloc_fail_nth(1);
  cr_assert_eq(tw_cooperator_new(&c, clock, 1, NULL), TW_ENOMEM);
  twt_alloc_fail_nth(0);
  cr_assert_null(c);
  tw_clock_free(clock);
}

TWT_TEST(cooperator, bad_input) {
  tw_clock *clock = tw_clock_new_manual();
  tw_cooperator *c;
  cr_assert_eq(tw_cooperator_new(&c, clock, 1, NULL), 0);
  tw_cooperator_options o;
  tw_cooperative_task *t = (void *)1;
  tw_deferred *d = (void *)1;
  tw_cooperator *bad = (tw_cooperator *)&o; /* an error sets it to NULL */
  memset(&o, 0, sizeof(o));
  cr_assert_eq(tw_cooperator_new(&bad, NULL, 1, NULL), TW_EINVAL);
  cr_assert_null(bad);
  cr_assert_eq(tw_cooperator_new(NULL, clock, 1, NULL), TW_EINVAL);
  o.schedule = fake_schedule;
  cr_assert_eq(tw_cooperator_new(&bad, clock, 1, &o), TW_EINVAL); /* no cancel */
  o.schedule = NULL;
  o.cancel = fake_cancel;
  cr_assert_eq(tw_cooperator_new(&bad, clock, 1, &o), TW_EINVAL); /* no schedule */
  memset(&o, 0, sizeof(o));
  o.slice_begin = count_free;
  cr_assert_eq(tw_cooperator_new(&bad, clock, 1, &o), TW_EINVAL); /* no predicate */
  cr_assert_eq(tw_cooperator_start(NULL), TW_EINVAL);
  cr_assert_eq(tw_cooperator_stop(NULL), TW_EINVAL);
  cr_assert_eq(tw_cooperator_running(NULL), 0); /* yes/no: 0, not a code */
  tw_cooperator_free(NULL);
  frees = 0;
  cr_assert_eq(tw_cooperate(NULL, count_iter, NULL, count_free, &t),
               TW_EINVAL);
  cr_assert_null(t);
  cr_assert_eq(tw_cooperate(c, NULL, NULL, count_free, NULL), TW_EINVAL);
  cr_assert_eq(tw_coiterate(c, count_iter, NULL, count_free, NULL, NULL),
               TW_EINVAL);
  cr_assert_eq(tw_coiterate(NULL, count_iter, NULL, count_free, NULL, &d),
               TW_EINVAL);
  cr_assert_null(d);
  cr_assert_eq(frees, 0);
  cr_assert_eq(tw_cooperative_task_when_done(NULL, &d), TW_EINVAL);
  cr_assert_eq(tw_cooperative_task_pause(NULL), TW_EINVAL);
  cr_assert_eq(tw_cooperative_task_resume(NULL), TW_EINVAL);
  cr_assert_eq(tw_cooperative_task_stop(NULL), TW_EINVAL);
  cr_assert_eq(tw_cooperative_task_paused(NULL), TW_EINVAL);
  cr_assert_null(tw_cooperative_task_completion(NULL));
  cr_assert_null(tw_cooperative_task_ref(NULL));
  tw_cooperative_task_unref(NULL);
  cr_assert_eq(tw_clock_pending(clock), 0);
  tw_cooperator_free(c);
  tw_clock_free(clock);
}

/* Out of memory at each allocation in turn: an error changes nothing and
 * keeps arg the caller's; a success runs to the end. */
TWT_TEST(cooperator, out_of_memory) {
  long n;
  for (n = 1; n < 20; n++) {
    tw_clock *clock = tw_clock_new_manual();
    tw_cooperator *c;
    cr_assert_eq(tw_cooperator_new(&c, clock, 1, NULL), 0);
    tw_cooperative_task *t = NULL;
    tw_deferred *d = NULL, *w = NULL;
    int left = 2, rc1, rc2, rc3, k = 0;
    frees = 0;
    twt_alloc_fail_nth(n);
    rc1 = tw_coiterate(c, count_iter, &left, count_free, NULL, &d);
    rc2 = tw_cooperate(c, count_iter, &left, count_free, &t);
    rc3 = t ? tw_cooperative_task_when_done(t, &w) : TW_EINVAL;
    twt_alloc_fail_nth(0);
    cr_assert(rc1 == 0 || rc1 == TW_ENOMEM);
    cr_assert(rc2 == 0 || rc2 == TW_ENOMEM);
    cr_assert_eq(frees, 0);
    cr_assert_eq(rc1 == 0, d != NULL);
    cr_assert_eq(rc2 == 0, t != NULL);
    cr_assert_eq(rc3 == 0, w != NULL);
    if (rc1 != 0 && rc2 != 0) cr_assert_eq(tw_clock_pending(clock), 0);
    while (tw_clock_pending(clock) > 0 && k++ < 10)
      tw_clock_advance(clock, EPS);
    if (d != NULL) cr_assert_eq(tw_deferred_called(d), 1);
    if (w != NULL) cr_assert_eq(tw_deferred_called(w), 1);
    tw_deferred_unref(d);
    tw_deferred_unref(w);
    tw_cooperative_task_unref(t);
    cr_assert_eq(frees, (rc1 == 0) + (rc2 == 0));
    tw_cooperator_free(c);
    tw_clock_free(clock);
    if (rc1 == 0 && rc2 == 0 && rc3 == 0) break;
  }
  cr_assert_lt(n, 20);
}

/* A tick that cannot schedule the next one (out of memory) ends its tasks
 * with the failure instead of leaving them waiting for good. */
TWT_TEST(cooperator, tick_out_of_memory_fails_tasks) {
  tw_clock *clock = tw_clock_new_manual();
  tw_cooperator_options o;
  tw_cooperator *c;
  tw_deferred *d;
  int left = 100;
  memset(&o, 0, sizeof(o));
  o.slice_over = always_over; /* one unit per tick */
  cr_assert_eq(tw_cooperator_new(&c, clock, 1, &o), 0);
  frees = 0;
  cr_assert_eq(tw_coiterate(c, count_iter, &left, count_free, NULL, &d), 0);
  twt_alloc_fail_nth(1); /* the next tick's delayed call */
  tw_clock_advance(clock, EPS);
  twt_alloc_fail_nth(0);
  cr_assert_eq(left, 99);
  failure_result_of(d, &TW_MEMORY_ERROR);
  cr_assert_eq(frees, 1);
  cr_assert_eq(tw_clock_pending(clock), 0);
  tw_deferred_unref(d);
  tw_cooperator_free(c);
  tw_clock_free(clock);
}

typedef struct freeing_iter_state {
  tw_cooperator *c;
  int calls;
} freeing_iter_state;

static tw_result freeing_iter(void *arg, int *done) {
  freeing_iter_state *s = arg;
  (void)done;
  if (s->calls++ == 0) tw_cooperator_free(s->c);
  return tw_result_none();
}

/* Freeing the cooperator from inside an iterator ends every task there,
 * including the running one, and the tick stops cleanly. */
TWT_TEST(cooperator, free_inside_iterator) {
  tw_clock *clock = tw_clock_new_manual();
  freeing_iter_state s;
  tw_deferred *d1, *d2;
  int left = 100, stopped = 0;
  cr_assert_eq(tw_cooperator_new(&s.c, clock, 1, NULL), 0);
  s.calls = 0;
  frees = 0;
  cr_assert_eq(tw_coiterate(s.c, freeing_iter, &s, count_free, NULL, &d1), 0);
  cr_assert_eq(tw_coiterate(s.c, count_iter, &left, count_free, NULL, &d2),
               0);
  tw_deferred_add_errback(d1, count_stopped, &stopped);
  tw_deferred_add_errback(d2, count_stopped, &stopped);
  tw_clock_advance(clock, EPS);
  cr_assert_eq(s.calls, 1);
  cr_assert_eq(left, 100);
  cr_assert_eq(stopped, 2);
  cr_assert_eq(frees, 2);
  cr_assert_eq(tw_clock_pending(clock), 0);
  tw_deferred_unref(d1);
  tw_deferred_unref(d2);
  tw_clock_free(clock);
}

/* A task the program holds outlives its cooperator (and the clock): a
 * resume then ends it with SchedulerStopped, as on a stopped cooperator. */
TWT_TEST(cooperator, resume_after_cooperator_freed) {
  tw_clock *clock = tw_clock_new_manual();
  tw_cooperator *c;
  cr_assert_eq(tw_cooperator_new(&c, clock, 1, NULL), 0);
  tw_cooperative_task *t;
  tw_deferred *d;
  int left = 100;
  cr_assert_eq(tw_cooperate(c, count_iter, &left, NULL, &t), 0);
  cr_assert_eq(tw_cooperative_task_pause(t), 0);
  tw_cooperator_free(c);
  /* The task keeps the struct: a freed cooperator answers 0, not a code. */
  cr_assert_eq(tw_cooperator_running(c), 0);
  cr_assert_eq(tw_cooperator_start(c), TW_EINVAL);
  tw_clock_free(clock);
  cr_assert_null(tw_cooperative_task_completion(t));
  cr_assert_eq(tw_cooperative_task_when_done(t, &d), 0);
  cr_assert_eq(tw_cooperative_task_resume(t), 0);
  cr_assert_eq(tw_cooperative_task_completion(t), &TW_SCHEDULER_STOPPED);
  failure_result_of(d, &TW_SCHEDULER_STOPPED);
  cr_assert_eq(left, 100);
  tw_deferred_unref(d);
  tw_cooperative_task_unref(t);
}

static long slice_units;
static tw_result endless_iter(void *arg, int *done) {
  (void)arg;
  (void)done;
  slice_units++;
  return tw_result_none();
}

/* The default termination predicate is real time: a tick of an endless
 * task ends even though the manual clock does not move. */
TWT_TEST_OPTS(cooperator, default_time_slice_ends_the_tick, .timeout = 20) {
  tw_clock *clock = tw_clock_new_manual();
  tw_cooperator *c;
  cr_assert_eq(tw_cooperator_new(&c, clock, 1, NULL), 0);
  tw_cooperative_task *t;
  long first;
  slice_units = 0;
  cr_assert_eq(tw_cooperate(c, endless_iter, NULL, NULL, &t), 0);
  cr_assert_eq(tw_clock_advance(clock, EPS), 1);
  first = slice_units;
  cr_assert_geq(first, 1);
  cr_assert_eq(tw_clock_pending(clock), 1); /* the next tick */
  cr_assert_eq(tw_clock_advance(clock, EPS), 1);
  cr_assert_gt(slice_units, first);
  tw_cooperative_task_unref(t);
  tw_cooperator_free(c);
  tw_clock_free(clock);
}

static int begins, overs;
static void count_begin(void *ctx) {
  (void)ctx;
  begins++;
}
static int over_after_three(void *ctx) {
  (void)ctx;
  return ++overs % 3 == 0;
}

/* slice_begin runs once per tick (the factory), slice_over after each
 * unit (the predicate); tasks take turns across ticks (the metarator
 * carries on where the last tick stopped). */
TWT_TEST(cooperator, custom_termination_predicate) {
  static const char *const abcde[] = {"a", "b", "c", "d", "e"};
  static const char *const digits[] = {"1", "2", "3", "4", "5"};
  tw_clock *clock = tw_clock_new_manual();
  tw_cooperator_options o;
  tw_cooperator *c;
  things_iter_state s1 = {abcde, 0, 5}, s2 = {digits, 0, 5};
  memset(&o, 0, sizeof(o));
  o.slice_begin = count_begin;
  o.slice_over = over_after_three;
  begins = overs = 0;
  cr_assert_eq(tw_cooperator_new(&c, clock, 1, &o), 0);
  trace_reset();
  cr_assert_eq(tw_cooperate(c, things_iter, &s1, NULL, NULL), 0);
  cr_assert_eq(tw_cooperate(c, things_iter, &s2, NULL, NULL), 0);
  tw_clock_advance(clock, EPS);
  cr_assert_eq(begins, 1);
  assert_trace("a,1,b");
  tw_clock_advance(clock, EPS);
  cr_assert_eq(begins, 2);
  assert_trace("a,1,b,2,c,3");
  tw_cooperator_free(c);
  tw_clock_free(clock);
}

TWT_TEST(cooperator, not_started_queues_until_start) {
  tw_clock *clock = tw_clock_new_manual();
  tw_cooperator *c;
  cr_assert_eq(tw_cooperator_new(&c, clock, 0, NULL), 0);
  tw_deferred *d;
  int left = 2;
  cr_assert_eq(tw_coiterate(c, count_iter, &left, NULL, NULL, &d), 0);
  cr_assert_eq(tw_clock_pending(clock), 0);
  tw_clock_advance(clock, 1);
  cr_assert_eq(left, 2);
  cr_assert_eq(tw_cooperator_start(c), 0);
  cr_assert_eq(tw_clock_pending(clock), 1);
  while (tw_deferred_called(d) == 0) tw_clock_advance(clock, EPS);
  cr_assert_eq(left, 0);
  cr_assert_eq(success_result_of(d), (const char *)&left);
  tw_deferred_unref(d);
  tw_cooperator_free(c);
  tw_clock_free(clock);
}

/* After stop, start accepts tasks again. */
TWT_TEST(cooperator, start_after_stop) {
  tw_clock *clock = tw_clock_new_manual();
  tw_cooperator *c;
  cr_assert_eq(tw_cooperator_new(&c, clock, 1, NULL), 0);
  tw_deferred *d;
  int left = 1;
  cr_assert_eq(tw_cooperator_stop(c), 0);
  cr_assert_eq(tw_cooperator_start(c), 0);
  cr_assert_eq(tw_cooperator_running(c), 1);
  cr_assert_eq(tw_coiterate(c, count_iter, &left, NULL, NULL, &d), 0);
  while (tw_deferred_called(d) == 0) tw_clock_advance(clock, EPS);
  cr_assert_eq(success_result_of(d), (const char *)&left);
  tw_deferred_unref(d);
  tw_cooperator_free(c);
  tw_clock_free(clock);
}

/* A task stopped while it waits on a Deferred that then fails: the task
 * is over, so the failure stays in that Deferred (Twisted would complete
 * the task a second time and raise AlreadyCalledError there). */
TWT_TEST(run_state, stopped_task_deferred_fails) {
  tw_deferred *d;
  rs_setup();
  rs.do_defer_next = 1;
  pump();
  d = rs.work[0].d;
  cr_assert_eq(tw_cooperative_task_stop(rs.task), 0);
  tw_deferred_errback(d, tw_failure_new(&TW_RUNTIME_ERROR, 0, "late"));
  failure_result_of(d, &TW_RUNTIME_ERROR);
  cr_assert_eq(tw_cooperative_task_completion(rs.task), &TW_TASK_STOPPED);
  rs_teardown();
}

/* ---- on the reactor ------------------------------------------------------ */

static tw_result stop_reactor(tw_result r, void *reactor) {
  tw_result_release(r);
  cr_assert_eq(tw_reactor_stop(reactor), 0);
  return tw_result_none();
}

typedef struct reactor_iter_state {
  int steps;
} reactor_iter_state;

static tw_result reactor_iter(void *arg, int *done) {
  reactor_iter_state *s = arg;
  if (++s->steps == 50) *done = 1;
  return tw_result_none();
}

TWT_TEST_OPTS(cooperator, coiterate_on_reactor, .timeout = 20) {
  tw_reactor *r = NULL;
  tw_cooperator *c;
  reactor_iter_state s = {0};
  tw_deferred *d;
  cr_assert_eq(tw_reactor_new(&r, NULL, 0), 0);
  cr_assert_eq(tw_cooperator_new(&c, tw_reactor_clock(r), 1, NULL), 0);
  cr_assert_not_null(c);
  cr_assert_eq(tw_coiterate(c, reactor_iter, &s, NULL, NULL, &d), 0);
  tw_deferred_add_both(d, stop_reactor, r);
  cr_assert_eq(tw_reactor_run(r), 0);
  cr_assert_eq(s.steps, 50);
  tw_deferred_unref(d);
  tw_cooperator_free(c);
  cr_assert_eq(tw_reactor_free(r), 0);
}

/* From review: the tick is cancelled before the tasks' whenDone callbacks
 * run, so an errback that restarts the cooperator and adds a task keeps it
 * (it used to sit in the list with no tick scheduled; Twisted loses it). */
static tw_cooperator *restart_c;
static int restart_left;
static tw_deferred *restarted_d;
static tw_result restart_on_stop(tw_result r, void *arg) {
  (void)arg;
  cr_assert(tw_failure_check(r.u.failure, &TW_SCHEDULER_STOPPED));
  tw_result_release(r);
  cr_assert_eq(tw_cooperator_start(restart_c), 0);
  cr_assert_eq(tw_coiterate(restart_c, count_iter, &restart_left, NULL, NULL,
                            &restarted_d), 0);
  return tw_result_none();
}

TWT_TEST(cooperator, stop_whose_errback_restarts_keeps_the_new_task) {
  tw_clock *clock = tw_clock_new_manual();
  int left = 100, rounds = 0;
  tw_deferred *d;
  cr_assert_eq(tw_cooperator_new(&restart_c, clock, 1, NULL), 0);
  restart_left = 2;
  restarted_d = NULL;
  cr_assert_eq(tw_coiterate(restart_c, count_iter, &left, NULL, NULL, &d), 0);
  tw_deferred_add_errback(d, restart_on_stop, NULL);
  cr_assert_eq(tw_cooperator_stop(restart_c), 0);
  cr_assert_not_null(restarted_d);
  while (tw_deferred_called(restarted_d) == 0 && rounds++ < 100)
    tw_clock_advance(clock, EPS);
  cr_assert_eq(success_result_of(restarted_d), (const char *)&restart_left);
  tw_deferred_unref(restarted_d);
  tw_deferred_unref(d);
  tw_cooperator_free(restart_c);
  tw_clock_free(clock);
}

/* From review: a yielded Deferred whose pause the program already resumed
 * gets NotPaused when it fires (Twisted raises it there), not silence. */
TWT_TEST(run_state, resume_after_yield_already_resumed_reports_not_paused) {
  tw_deferred *d;
  rs_setup();
  rs.do_defer_next = 1;
  pump();
  d = rs.work[0].d;
  cr_assert_eq(tw_cooperative_task_resume(rs.task), 0); /* the yield's pause */
  tw_deferred_callback(d, tw_result_none());
  failure_result_of(d, &TW_NOT_PAUSED);
  rs_teardown();
}
