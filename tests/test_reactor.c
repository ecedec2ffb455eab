/*
 * tests/test_reactor.c - the reactor (reactor.h).
 *
 * Ports twisted/internet/test/test_core.py (SystemEventTestsBuilder),
 * twisted/test/test_internet.py (ThreePhaseEventTests - through the reactor's
 * trigger API on a custom event type -, SystemEventTests, TimeTests,
 * CallFromThreadStopsAndWakeUpTests, DelayedTests, CallFromThreadTests),
 * and the reactor-side tests of twisted/test/test_threads.py and
 * twisted/internet/test/test_threads.py that need no thread pool. Then
 * twuv's own contract: cleanup paths, bad input, thread checks, hosting a
 * reactor on a libuv program's loop, several reactors.
 */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "twtest.h"

TWT_SUITE(reactor);

/* ---- helpers ----------------------------------------------------------- */

/* An ordered log of short event names. */
static char events[64][32];
static int nevents;

static void record(const char *what) {
  cr_assert(nevents < 64);
  snprintf(events[nevents++], sizeof(events[0]), "%s", what);
}

static void assert_events(const char *const *expect, int n) {
  int i;
  cr_assert_eq(nevents, n, "got %d events, expected %d", nevents, n);
  for (i = 0; i < n; i++) cr_assert_str_eq(events[i], expect[i], "event %d", i);
}

#define ASSERT_EVENTS(...)                                             \
  do {                                                                 \
    static const char *const expect_[] = {__VA_ARGS__};                \
    assert_events(expect_, (int)(sizeof(expect_) / sizeof(expect_[0]))); \
  } while (0)

/* Trigger functions: record their argument (a string). */
static tw_result rec_trigger(void *arg) {
  record(arg);
  return tw_result_none();
}

static void rec_call(void *arg) { record(arg); }

static tw_reactor *R; /* the reactor under test, for trigger functions */

static tw_reactor *new_reactor(void) {
  tw_reactor *r = twt_new_reactor(0);
  cr_assert_not_null(r);
  nevents = 0;
  R = r;
  return r;
}

#define free_reactor(r) twt_free_reactor(r) /* twtest.h */

static tw_result stop_trigger(void *arg) {
  tw_reactor *r = arg;
  cr_assert_eq(tw_reactor_stop(r), 0);
  return tw_result_none();
}

static void stop_call(void *arg) { cr_assert_eq(tw_reactor_stop(arg), 0); }

/* Run until stopped: every test that runs stops itself. */
#define run(r) twt_run(r) /* twtest.h */

#define freed twt_freed /* twtest.h */
#define count_free twt_count_free

/* ---- test_core.py: SystemEventTestsBuilder ------------------------------- */

TWT_TEST(reactor, test_stop_when_not_started) {
  tw_reactor *r = new_reactor();
  cr_assert_eq(tw_reactor_stop(r), TW_ENOTRUNNING);
  free_reactor(r);
}

TWT_TEST(reactor, test_stop_when_already_stopped) {
  tw_reactor *r = new_reactor();
  tw_reactor_call_when_running(r, stop_trigger, r, NULL, NULL);
  run(r);
  cr_assert_eq(tw_reactor_stop(r), TW_ENOTRUNNING);
  free_reactor(r);
}

TWT_TEST(reactor, test_call_when_running_order) {
  tw_reactor *r = new_reactor();
  tw_reactor_call_when_running(r, rec_trigger, "first", NULL, NULL);
  tw_reactor_call_when_running(r, rec_trigger, "second", NULL, NULL);
  tw_reactor_call_when_running(r, stop_trigger, r, NULL, NULL);
  run(r);
  ASSERT_EVENTS("first", "second");
  free_reactor(r);
}

static tw_result rec_running(void *arg) {
  record(arg);
  record(tw_reactor_running(R) == 1 ? "running" : "not running");
  return tw_result_none();
}

TWT_TEST(reactor, test_running_for_startup_events) {
  tw_reactor *r = new_reactor();
  tw_reactor_add_system_event_trigger(r, TW_PHASE_BEFORE, "startup",
                                      rec_running, "before", NULL, NULL);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_DURING, "startup",
                                      rec_running, "during", NULL, NULL);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_AFTER, "startup",
                                      rec_running, "after", NULL, NULL);
  tw_reactor_call_when_running(r, stop_trigger, r, NULL, NULL);
  cr_assert_eq(nevents, 0);
  run(r);
  ASSERT_EVENTS("before", "not running", "during", "running", "after",
                "running");
  free_reactor(r);
}

static tw_result rec_sigterm_disposition(void *arg) {
  struct sigaction sa;
  sigaction(SIGTERM, NULL, &sa);
  record(arg);
  record(sa.sa_handler == SIG_DFL ? "default" : "installed");
  return tw_result_none();
}

static tw_result raise_sigterm(void *arg) {
  (void)arg;
  raise(SIGTERM);
  return tw_result_none();
}

TWT_TEST(reactor, test_signal_handlers_installed_during_startup) {
  /* With TW_REACTOR_SIGNALS, SIGINT/SIGTERM handlers are installed in the
   * "during startup" phase, and a signal stops the reactor cleanly. */
  tw_reactor *r = NULL;
  cr_assert_eq(tw_reactor_new(&r, NULL, TW_REACTOR_SIGNALS), 0);
  nevents = 0;
  tw_reactor_add_system_event_trigger(r, TW_PHASE_BEFORE, "startup",
                                      rec_sigterm_disposition, "before", NULL,
                                      NULL);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_AFTER, "startup",
                                      rec_sigterm_disposition, "after", NULL,
                                      NULL);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_BEFORE, "shutdown",
                                      rec_trigger, "shutdown", NULL, NULL);
  tw_reactor_call_when_running(r, raise_sigterm, NULL, NULL, NULL);
  run(r); /* returns only because SIGTERM stopped it */
  ASSERT_EVENTS("before", "default", "after", "installed", "shutdown");
  free_reactor(r);
}

TWT_TEST(reactor, test_stop_shut_down_events) {
  tw_reactor *r = new_reactor();
  tw_reactor_add_system_event_trigger(r, TW_PHASE_BEFORE, "shutdown",
                                      rec_trigger, "before", NULL, NULL);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_DURING, "shutdown",
                                      rec_trigger, "during", NULL, NULL);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_AFTER, "shutdown",
                                      rec_trigger, "after", NULL, NULL);
  tw_reactor_call_when_running(r, stop_trigger, r, NULL, NULL);
  run(r);
  ASSERT_EVENTS("before", "during", "after");
  free_reactor(r);
}

static tw_result stop_it(void *arg) {
  cr_assert_eq(tw_reactor_stop(arg), 0);
  record("stopped");
  return tw_result_none();
}

TWT_TEST(reactor, test_shutdown_fires_triggers_asynchronously) {
  tw_reactor *r = new_reactor();
  tw_reactor_add_system_event_trigger(r, TW_PHASE_BEFORE, "shutdown",
                                      rec_trigger, "before shutdown", NULL,
                                      NULL);
  tw_reactor_call_when_running(r, stop_it, r, NULL, NULL);
  cr_assert_eq(nevents, 0);
  run(r);
  ASSERT_EVENTS("stopped", "before shutdown");
  free_reactor(r);
}

static tw_result failing_trigger(void *arg) {
  (void)arg;
  return tw_result_failure(
      tw_failure_new(&TW_RUNTIME_ERROR, 0, "simulated connectionLost error"));
}

TWT_TEST(reactor, test_shutdown_disconnects_cleanly) {
  /* twuv has no file descriptors to disconnect; the point carried over is
   * that a failing shutdown step is logged and does not stop the rest. */
  tw_reactor *r = new_reactor();
  tw_reactor_add_system_event_trigger(r, TW_PHASE_DURING, "shutdown",
                                      failing_trigger, NULL, NULL, NULL);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_DURING, "shutdown",
                                      rec_trigger, "lost ok", NULL, NULL);
  tw_reactor_call_when_running(r, stop_trigger, r, NULL, NULL);
  run(r);
  cr_assert_eq(twt_log_flush(&TW_RUNTIME_ERROR), 1);
  ASSERT_EVENTS("lost ok");
  free_reactor(r);
}

static tw_result reentrant_run(void *arg) {
  cr_assert_eq(tw_reactor_run(arg), TW_EALREADYRUNNING);
  cr_assert_eq(tw_reactor_start_running(arg), TW_EALREADYRUNNING);
  record("tested");
  return tw_result_none();
}

TWT_TEST(reactor, test_multiple_run) {
  tw_reactor *r = new_reactor();
  tw_reactor_call_when_running(r, reentrant_run, r, NULL, NULL);
  tw_reactor_call_when_running(r, stop_trigger, r, NULL, NULL);
  run(r);
  ASSERT_EVENTS("tested");
  free_reactor(r);
}

static void crash_call(void *arg) { cr_assert_eq(tw_reactor_crash(arg), 0); }

TWT_TEST(reactor, test_iterate) {
  /* iterate(0) does not block, even with a call pending 5 s from now. */
  tw_reactor *r = new_reactor();
  tw_delayed_call *dc;
  cr_assert_eq(tw_reactor_call_later(r, 5, crash_call, r, NULL, &dc), 0);
  cr_assert_eq(tw_reactor_iterate(r, 0), 0);
  cr_assert(tw_delayed_call_active(dc)); /* returned before it was due */
  cr_assert_eq(tw_delayed_call_cancel(dc), 0);
  tw_delayed_call_unref(dc);
  free_reactor(r);
}

static tw_result call_later_crash(void *arg) {
  cr_assert_eq(tw_reactor_call_later(arg, 0, crash_call, arg, NULL, NULL), 0);
  return tw_result_none();
}

TWT_TEST(reactor, test_crash) {
  tw_reactor *r = new_reactor();
  tw_reactor_add_system_event_trigger(r, TW_PHASE_BEFORE, "shutdown",
                                      rec_trigger, "before shutdown", NULL,
                                      NULL);
  tw_reactor_call_when_running(r, call_later_crash, r, NULL, NULL);
  run(r);
  cr_assert_eq(tw_reactor_running(r), 0);
  cr_assert_eq(nevents, 0, "shutdown triggers ran after crash");
  free_reactor(r);
}

static tw_result crash_trigger(void *arg) {
  record("crash");
  cr_assert_eq(tw_reactor_crash(arg), 0);
  return tw_result_none();
}

static tw_result stop_running(void *arg) {
  record(tw_reactor_running(arg) == 1 ? "stop running" : "stop not running");
  cr_assert_eq(tw_reactor_stop(arg), 0);
  return tw_result_none();
}

TWT_TEST(reactor, test_run_after_crash) {
  tw_reactor *r = new_reactor();
  tw_reactor_call_when_running(r, crash_trigger, r, NULL, NULL);
  run(r);
  tw_reactor_call_when_running(r, stop_running, r, NULL, NULL);
  run(r);
  ASSERT_EVENTS("crash", "stop running");
  free_reactor(r);
}

static tw_result restart(void *arg) {
  cr_assert_eq(tw_reactor_run(arg), TW_ENOTRESTARTABLE);
  record("tested");
  return tw_result_none();
}

TWT_TEST(reactor, test_run_after_stop) {
  tw_reactor *r = new_reactor();
  tw_reactor_call_when_running(r, stop_trigger, r, NULL, NULL);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_AFTER, "shutdown", restart,
                                      r, NULL, NULL);
  run(r);
  ASSERT_EVENTS("tested");
  cr_assert_eq(tw_reactor_run(r), TW_ENOTRESTARTABLE);
  free_reactor(r);
}

/* ---- test_internet.py: ThreePhaseEventTests (event type "test") --------- */

TWT_TEST(reactor, test_add_invalid_phase) {
  tw_reactor *r = new_reactor();
  tw_trigger_id id = 99;
  cr_assert_eq(tw_reactor_add_system_event_trigger(r, (tw_phase)3, "test",
                                                   rec_trigger, "x", count_free,
                                                   &id),
               TW_EINVAL);
  cr_assert_eq(tw_reactor_add_system_event_trigger(r, (tw_phase)-1, "test",
                                                   rec_trigger, "x", count_free,
                                                   &id),
               TW_EINVAL);
  cr_assert_eq(id, 0);
  cr_assert_eq(freed, 0);
  free_reactor(r);
}

static void add_and_fire_one(tw_phase phase) {
  tw_reactor *r = new_reactor();
  tw_trigger_id id = 0;
  cr_assert_eq(tw_reactor_add_system_event_trigger(r, phase, "test",
                                                   rec_trigger, "trigger",
                                                   NULL, &id),
               0);
  cr_assert_neq(id, 0);
  cr_assert_eq(nevents, 0);
  cr_assert_eq(tw_reactor_fire_system_event(r, "test"), 0);
  ASSERT_EVENTS("trigger");
  free_reactor(r);
}

TWT_TEST(reactor, test_add_before_trigger) { add_and_fire_one(TW_PHASE_BEFORE); }
TWT_TEST(reactor, test_add_during_trigger) { add_and_fire_one(TW_PHASE_DURING); }
TWT_TEST(reactor, test_add_after_trigger) { add_and_fire_one(TW_PHASE_AFTER); }

TWT_TEST(reactor, test_remove_trigger) {
  tw_reactor *r = new_reactor();
  tw_trigger_id id;
  freed = 0;
  tw_reactor_add_system_event_trigger(r, TW_PHASE_BEFORE, "test", rec_trigger,
                                      "x", count_free, &id);
  cr_assert_eq(tw_reactor_remove_system_event_trigger(r, id), 0);
  cr_assert_eq(freed, 1); /* its arg_free ran on removal */
  tw_reactor_fire_system_event(r, "test");
  cr_assert_eq(nevents, 0);
  free_reactor(r);
}

TWT_TEST(reactor, test_remove_nonexistent_trigger) {
  tw_reactor *r = new_reactor();
  cr_assert_eq(tw_reactor_remove_system_event_trigger(r, 12345), TW_ENOENT);
  cr_assert_eq(tw_reactor_remove_system_event_trigger(r, 0), TW_ENOENT);
  free_reactor(r);
}

TWT_TEST(reactor, test_remove_removed_trigger) {
  tw_reactor *r = new_reactor();
  tw_trigger_id id;
  tw_reactor_add_system_event_trigger(r, TW_PHASE_BEFORE, "test", rec_trigger,
                                      "x", NULL, &id);
  cr_assert_eq(tw_reactor_remove_system_event_trigger(r, id), 0);
  cr_assert_eq(tw_reactor_remove_system_event_trigger(r, id), TW_ENOENT);
  free_reactor(r);
}

TWT_TEST(reactor, test_remove_almost_valid_trigger) {
  /* An id that looks like a real one (the next to be issued) is refused. */
  tw_reactor *r = new_reactor();
  tw_trigger_id id;
  tw_reactor_add_system_event_trigger(r, TW_PHASE_BEFORE, "test", rec_trigger,
                                      "x", NULL, &id);
  cr_assert_eq(tw_reactor_remove_system_event_trigger(r, id + 1), TW_ENOENT);
  cr_assert_eq(tw_reactor_remove_system_event_trigger(r, id), 0);
  free_reactor(r);
}

TWT_TEST(reactor, test_fire_event) {
  tw_reactor *r = new_reactor();
  tw_reactor_add_system_event_trigger(r, TW_PHASE_AFTER, "test", rec_trigger,
                                      "first after", NULL, NULL);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_DURING, "test", rec_trigger,
                                      "first during", NULL, NULL);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_BEFORE, "test", rec_trigger,
                                      "first before", NULL, NULL);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_BEFORE, "test", rec_trigger,
                                      "second before", NULL, NULL);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_DURING, "test", rec_trigger,
                                      "second during", NULL, NULL);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_AFTER, "test", rec_trigger,
                                      "second after", NULL, NULL);
  cr_assert_eq(nevents, 0);
  tw_reactor_fire_system_event(r, "test");
  ASSERT_EVENTS("first before", "second before", "first during",
                "second during", "first after", "second after");
  free_reactor(r);
}

TWT_TEST(reactor, test_before_trigger_exception) {
  tw_reactor *r = new_reactor();
  tw_reactor_add_system_event_trigger(r, TW_PHASE_BEFORE, "test",
                                      failing_trigger, NULL, NULL, NULL);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_BEFORE, "test", rec_trigger,
                                      "before", NULL, NULL);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_DURING, "test", rec_trigger,
                                      "during", NULL, NULL);
  tw_reactor_fire_system_event(r, "test");
  ASSERT_EVENTS("before", "during");
  cr_assert_eq(twt_log_flush(&TW_RUNTIME_ERROR), 1);
  cr_assert_eq(twt_log_count_containing("While calling system event trigger handler"), 0);
  free_reactor(r);
}

TWT_TEST(reactor, test_during_trigger_exception) {
  tw_reactor *r = new_reactor();
  tw_reactor_add_system_event_trigger(r, TW_PHASE_DURING, "test",
                                      failing_trigger, NULL, NULL, NULL);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_DURING, "test", rec_trigger,
                                      "during", NULL, NULL);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_AFTER, "test", rec_trigger,
                                      "after", NULL, NULL);
  tw_reactor_fire_system_event(r, "test");
  ASSERT_EVENTS("during", "after");
  cr_assert_eq(twt_log_count_containing("While calling system event trigger handler"), 1);
  cr_assert_eq(twt_log_flush(&TW_RUNTIME_ERROR), 1);
  free_reactor(r);
}

static tw_trigger_id victim;
static tw_result remove_victim(void *arg) {
  int expect = (int)(intptr_t)arg;
  cr_assert_eq(tw_reactor_remove_system_event_trigger(R, victim), expect);
  return tw_result_none();
}

TWT_TEST(reactor, test_synchronous_remove_already_executed_before) {
  /* Twisted warns and removes nothing; twuv says TW_ENOENT (it already ran). */
  tw_reactor *r = new_reactor();
  tw_reactor_add_system_event_trigger(r, TW_PHASE_BEFORE, "test", rec_trigger,
                                      "first before", NULL, &victim);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_BEFORE, "test",
                                      remove_victim,
                                      (void *)(intptr_t)TW_ENOENT, NULL, NULL);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_BEFORE, "test", rec_trigger,
                                      "second before", NULL, NULL);
  tw_reactor_fire_system_event(r, "test");
  ASSERT_EVENTS("first before", "second before");
  free_reactor(r);
}

TWT_TEST(reactor, test_synchronous_remove_pending_before) {
  tw_reactor *r = new_reactor();
  tw_reactor_add_system_event_trigger(r, TW_PHASE_BEFORE, "test",
                                      remove_victim, (void *)0, NULL, NULL);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_BEFORE, "test", rec_trigger,
                                      "first before", NULL, &victim);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_BEFORE, "test", rec_trigger,
                                      "second before", NULL, NULL);
  tw_reactor_fire_system_event(r, "test");
  ASSERT_EVENTS("second before");
  free_reactor(r);
}

TWT_TEST(reactor, test_synchronous_before_removes_during) {
  tw_reactor *r = new_reactor();
  tw_reactor_add_system_event_trigger(r, TW_PHASE_BEFORE, "test",
                                      remove_victim, (void *)0, NULL, NULL);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_DURING, "test", rec_trigger,
                                      "during", NULL, &victim);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_AFTER, "test", rec_trigger,
                                      "after", NULL, NULL);
  tw_reactor_fire_system_event(r, "test");
  ASSERT_EVENTS("after");
  free_reactor(r);
}

TWT_TEST(reactor, test_synchronous_before_removes_conspicuously_similar_during) {
  /* Same function and argument in two phases: ids tell them apart. */
  tw_reactor *r = new_reactor();
  tw_reactor_add_system_event_trigger(r, TW_PHASE_BEFORE, "test", rec_trigger,
                                      "trigger", NULL, NULL);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_BEFORE, "test",
                                      remove_victim, (void *)0, NULL, NULL);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_DURING, "test", rec_trigger,
                                      "trigger", NULL, &victim);
  tw_reactor_fire_system_event(r, "test");
  ASSERT_EVENTS("trigger");
  free_reactor(r);
}

TWT_TEST(reactor, test_synchronous_remove_pending_during) {
  tw_reactor *r = new_reactor();
  tw_reactor_add_system_event_trigger(r, TW_PHASE_DURING, "test",
                                      remove_victim, (void *)0, NULL, NULL);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_DURING, "test", rec_trigger,
                                      "first during", NULL, &victim);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_DURING, "test", rec_trigger,
                                      "second during", NULL, NULL);
  tw_reactor_fire_system_event(r, "test");
  ASSERT_EVENTS("second during");
  free_reactor(r);
}

TWT_TEST(reactor, test_triggers_run_once) {
  tw_reactor *r = new_reactor();
  freed = 0;
  tw_reactor_add_system_event_trigger(r, TW_PHASE_BEFORE, "test", rec_trigger,
                                      "before", count_free, NULL);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_DURING, "test", rec_trigger,
                                      "during", count_free, NULL);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_AFTER, "test", rec_trigger,
                                      "after", count_free, NULL);
  tw_reactor_fire_system_event(r, "test");
  tw_reactor_fire_system_event(r, "test");
  ASSERT_EVENTS("before", "during", "after");
  cr_assert_eq(freed, 3);
  free_reactor(r);
}

static tw_trigger_id before_id;
static tw_result during_checks_before_done(void *arg) {
  (void)arg;
  record("during");
  /* The before phase is over: its triggers are gone. */
  cr_assert_eq(tw_reactor_remove_system_event_trigger(R, before_id), TW_ENOENT);
  return tw_result_none();
}

TWT_TEST(reactor, test_finished_before_triggers_cleared) {
  tw_reactor *r = new_reactor();
  tw_reactor_add_system_event_trigger(r, TW_PHASE_BEFORE, "test", rec_trigger,
                                      "before", NULL, &before_id);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_DURING, "test",
                                      during_checks_before_done, NULL, NULL,
                                      NULL);
  tw_reactor_fire_system_event(r, "test");
  ASSERT_EVENTS("before", "during");
  free_reactor(r);
}

static tw_result add_more(void *arg) {
  /* Triggers added while firing run in this firing if their phase has not
   * finished (Twisted: before adds before and during; during adds after). */
  (void)arg;
  record("adder");
  tw_reactor_add_system_event_trigger(R, TW_PHASE_BEFORE, "test", rec_trigger,
                                      "late before", NULL, NULL);
  tw_reactor_add_system_event_trigger(R, TW_PHASE_DURING, "test", rec_trigger,
                                      "late during", NULL, NULL);
  return tw_result_none();
}

TWT_TEST(reactor, triggers_added_while_firing_run_in_that_firing) {
  tw_reactor *r = new_reactor();
  tw_reactor_add_system_event_trigger(r, TW_PHASE_BEFORE, "test", add_more,
                                      NULL, NULL, NULL);
  tw_reactor_fire_system_event(r, "test");
  ASSERT_EVENTS("adder", "late before", "late during");
  free_reactor(r);
}

/* ---- test_internet.py: SystemEventTests ----------------------------------- */

TWT_TEST(reactor, test_before_phase) { add_and_fire_one(TW_PHASE_BEFORE); }
TWT_TEST(reactor, test_during_phase) { add_and_fire_one(TW_PHASE_DURING); }
TWT_TEST(reactor, test_after_phase) { add_and_fire_one(TW_PHASE_AFTER); }

TWT_TEST(reactor, test_unknown_phase) {
  tw_reactor *r = new_reactor();
  cr_assert_eq(tw_reactor_add_system_event_trigger(r, (tw_phase)42, "test",
                                                   rec_trigger, "x", NULL,
                                                   NULL),
               TW_EINVAL);
  free_reactor(r);
}

TWT_TEST(reactor, test_before_preceeds_during) {
  tw_reactor *r = new_reactor();
  tw_reactor_add_system_event_trigger(r, TW_PHASE_BEFORE, "test", rec_trigger,
                                      "before", NULL, NULL);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_DURING, "test", rec_trigger,
                                      "during", NULL, NULL);
  tw_reactor_fire_system_event(r, "test");
  ASSERT_EVENTS("before", "during");
  free_reactor(r);
}

TWT_TEST(reactor, test_during_preceeds_after) {
  tw_reactor *r = new_reactor();
  tw_reactor_add_system_event_trigger(r, TW_PHASE_DURING, "test", rec_trigger,
                                      "during", NULL, NULL);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_AFTER, "test", rec_trigger,
                                      "after", NULL, NULL);
  tw_reactor_fire_system_event(r, "test");
  ASSERT_EVENTS("during", "after");
  free_reactor(r);
}

TWT_TEST(reactor, test_remove_system_event_trigger) {
  tw_reactor *r = new_reactor();
  tw_trigger_id id;
  tw_reactor_add_system_event_trigger(r, TW_PHASE_BEFORE, "test", rec_trigger,
                                      "first", NULL, NULL);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_BEFORE, "test", rec_trigger,
                                      "second", NULL, &id);
  cr_assert_eq(tw_reactor_remove_system_event_trigger(r, id), 0);
  tw_reactor_fire_system_event(r, "test");
  ASSERT_EVENTS("first");
  free_reactor(r);
}

TWT_TEST(reactor, test_remove_non_existent_system_event_trigger) {
  tw_reactor *r = new_reactor();
  tw_trigger_id id;
  tw_reactor_add_system_event_trigger(r, TW_PHASE_DURING, "test", rec_trigger,
                                      "x", NULL, &id);
  cr_assert_eq(tw_reactor_remove_system_event_trigger(r, id), 0);
  cr_assert_eq(tw_reactor_remove_system_event_trigger(NULL, id), TW_EINVAL);
  cr_assert_eq(tw_reactor_remove_system_event_trigger(r, id), TW_ENOENT);
  free_reactor(r);
}

TWT_TEST(reactor, fire_unknown_event_does_nothing) {
  tw_reactor *r = new_reactor();
  cr_assert_eq(tw_reactor_fire_system_event(r, "nobody-listens"), 0);
  cr_assert_eq(tw_reactor_fire_system_event(r, NULL), TW_EINVAL);
  free_reactor(r);
}

/* ---- test_internet.py: TimeTests ----------------------------------------- */

TWT_TEST(reactor, test_seconds) {
  tw_reactor *r = new_reactor();
  double a = tw_reactor_seconds(r), b = tw_reactor_seconds(r);
  cr_assert(isfinite(a));
  cr_assert(b >= a); /* monotonic */
  cr_assert_eq(tw_clock_seconds(tw_reactor_clock(r)) >= b, 1);
  free_reactor(r);
}

TWT_TEST(reactor, test_call_later_uses_reactor_seconds_in_delayed_call) {
  tw_reactor *r = new_reactor();
  tw_delayed_call *dc;
  double before = tw_reactor_seconds(r), after, t;
  cr_assert_eq(tw_reactor_call_later(r, 5, rec_call, "x", NULL, &dc), 0);
  after = tw_reactor_seconds(r);
  t = tw_delayed_call_get_time(dc);
  cr_assert(t >= before + 5 && t <= after + 5);
  tw_delayed_call_cancel(dc);
  tw_delayed_call_unref(dc);
  free_reactor(r);
}

TWT_TEST(reactor, test_call_later) {
  tw_reactor *r = new_reactor();
  tw_reactor_call_later(r, 0, rec_call, "called", NULL, NULL);
  tw_reactor_call_later(r, 0, stop_call, r, NULL, NULL);
  run(r);
  ASSERT_EVENTS("called");
  free_reactor(r);
}

TWT_TEST(reactor, test_call_later_reset) {
  tw_reactor *r = new_reactor();
  tw_delayed_call *dc;
  double orig;
  tw_reactor_call_later(r, 2, rec_call, "x", NULL, &dc);
  orig = tw_delayed_call_get_time(dc);
  cr_assert_eq(tw_delayed_call_reset(dc, 1), 0);
  cr_assert(tw_delayed_call_get_time(dc) < orig);
  tw_delayed_call_cancel(dc);
  tw_delayed_call_unref(dc);
  free_reactor(r);
}

static void check_then_stop(void *arg) {
  (void)arg;
  record("check");
  cr_assert_eq(tw_reactor_stop(R), 0);
}

static void later_check(void *arg) {
  (void)arg;
  tw_reactor_call_later(R, 0, check_then_stop, NULL, NULL, NULL);
}

TWT_TEST(reactor, test_cancel_delayed_call) {
  tw_reactor *r = new_reactor();
  tw_delayed_call *dc;
  tw_reactor_call_later(r, 0, rec_call, "must not run", NULL, &dc);
  cr_assert_eq(tw_delayed_call_cancel(dc), 0);
  /* Two iterations later, the cancelled call still has not run. */
  tw_reactor_call_later(r, 0, later_check, NULL, NULL, NULL);
  run(r);
  ASSERT_EVENTS("check");
  tw_delayed_call_unref(dc);
  free_reactor(r);
}

TWT_TEST(reactor, test_cancel_cancelled_delayed_call) {
  tw_reactor *r = new_reactor();
  tw_delayed_call *dc;
  tw_reactor_call_later(r, 0, rec_call, "x", NULL, &dc);
  cr_assert_eq(tw_delayed_call_cancel(dc), 0);
  cr_assert_eq(tw_delayed_call_cancel(dc), TW_EALREADYCANCELLED);
  tw_delayed_call_unref(dc);
  free_reactor(r);
}

static tw_delayed_call *self_call;
static void cancel_self_then_stop(void *arg) {
  (void)arg;
  cr_assert_eq(tw_delayed_call_cancel(self_call), TW_EALREADYCALLED);
  record("tested");
  tw_reactor_stop(R);
}

TWT_TEST(reactor, test_cancel_called_delayed_call_synchronous) {
  tw_reactor *r = new_reactor();
  tw_reactor_call_later(r, 0, cancel_self_then_stop, NULL, NULL, &self_call);
  run(r);
  ASSERT_EVENTS("tested");
  tw_delayed_call_unref(self_call);
  free_reactor(r);
}

static void cancel_earlier(void *arg) {
  (void)arg;
  cr_assert_eq(tw_delayed_call_cancel(self_call), TW_EALREADYCALLED);
  record("tested");
  tw_reactor_stop(R);
}

static void schedule_cancel_earlier(void *arg) {
  (void)arg;
  tw_reactor_call_later(R, 0, cancel_earlier, NULL, NULL, NULL);
}

TWT_TEST(reactor, test_cancel_called_delayed_call_asynchronous) {
  tw_reactor *r = new_reactor();
  tw_reactor_call_later(r, 0, schedule_cancel_earlier, NULL, NULL, &self_call);
  run(r);
  ASSERT_EVENTS("tested");
  tw_delayed_call_unref(self_call);
  free_reactor(r);
}

/* ---- CallFromThreadStopsAndWakeUpTests ------------------------------------ */

static int stopped_flag;
static void set_stopped(void *arg) {
  (void)arg;
  stopped_flag = 1;
}

static void second_thread_call(void *arg) {
  (void)arg;
  record(stopped_flag ? "stopped first" : "ran too early");
  tw_reactor_stop(R);
}

static void first_thread_call(void *arg) {
  (void)arg;
  cr_assert_eq(tw_reactor_call_from_thread(R, second_thread_call, NULL, NULL), 0);
  cr_assert_eq(tw_reactor_call_later(R, 0, set_stopped, NULL, NULL, NULL), 0);
}

TWT_TEST(reactor, test_call_from_thread_stops) {
  /* A call_from_thread made from a thread call waits for the next iteration,
   * after a call_later(0) made at the same time: no starvation. */
  tw_reactor *r = new_reactor();
  stopped_flag = 0;
  tw_reactor_call_from_thread(r, first_thread_call, NULL, NULL);
  run(r);
  ASSERT_EVENTS("stopped first");
  free_reactor(r);
}

static void call_stop_from_thread(void *arg) {
  cr_assert_eq(tw_reactor_call_from_thread(arg, stop_call, arg, NULL), 0);
}

static uv_thread_t helper_thread; /* joined by the test after run */

static tw_result start_waker(void *arg) {
  cr_assert_eq(uv_thread_create(&helper_thread, call_stop_from_thread, arg), 0);
  record("started");
  return tw_result_none();
}

TWT_TEST(reactor, test_wake_up) {
  /* Another thread wakes the reactor, asleep with nothing else to do. */
  tw_reactor *r = new_reactor();
  tw_reactor_call_when_running(r, start_waker, r, NULL, NULL);
  run(r); /* returns only if the thread's call woke the loop */
  cr_assert_eq(uv_thread_join(&helper_thread), 0);
  ASSERT_EVENTS("started");
  free_reactor(r);
}

/* ---- DelayedTests ----------------------------------------------------------- */

static tw_delayed_call *active_dc;
static void check_inactive(void *arg) {
  (void)arg;
  record(tw_delayed_call_active(active_dc) ? "active" : "inactive");
  tw_reactor_stop(R);
}

static void active_target(void *arg) {
  (void)arg;
  tw_reactor_call_later(R, 0, check_inactive, NULL, NULL, NULL);
}

TWT_TEST(reactor, test_active) {
  tw_reactor *r = new_reactor();
  tw_reactor_call_later(r, 0.01, active_target, NULL, NULL, &active_dc);
  cr_assert(tw_delayed_call_active(active_dc));
  run(r);
  ASSERT_EVENTS("inactive");
  tw_delayed_call_unref(active_dc);
  free_reactor(r);
}

static tw_delayed_call *timers[8];
static int ntimers_left;

static int pending_contains(tw_delayed_call *dc) {
  tw_delayed_call *all[16];
  size_t n = tw_clock_get_delayed_calls(tw_reactor_clock(R), all, 16), i;
  for (i = 0; i < n && i < 16; i++)
    if (all[i] == dc) return 1;
  return 0;
}

static void check_timers(void) {
  int i;
  for (i = 0; i < 8; i++)
    if (timers[i] != NULL && tw_delayed_call_active(timers[i]))
      cr_assert(pending_contains(timers[i]), "timer %d missing", i);
}

static void timer_fired(void *arg) {
  int i = (int)(intptr_t)arg;
  cr_assert_not(pending_contains(timers[i]));
  check_timers();
  if (--ntimers_left == 0) tw_reactor_stop(R);
}

TWT_TEST(reactor, test_get_delayed_calls) {
  /* Pending calls are listed, run ones are not, cancelled ones vanish. */
  static const double when[] = {0.035, 0.020, 0.030, 0.029, 0.025, 0.026};
  tw_reactor *r = new_reactor();
  int i;
  memset(timers, 0, sizeof(timers));
  for (i = 0; i < 6; i++)
    tw_reactor_call_later(r, when[i], timer_fired, (void *)(intptr_t)i, NULL,
                          &timers[i]);
  check_timers();
  cr_assert_eq(tw_clock_pending(tw_reactor_clock(r)), 6);
  tw_delayed_call_cancel(timers[3]);
  cr_assert_not(pending_contains(timers[3]));
  check_timers();
  ntimers_left = 5;
  run(r);
  cr_assert_eq(tw_clock_pending(tw_reactor_clock(r)), 0);
  for (i = 0; i < 6; i++) tw_delayed_call_unref(timers[i]);
  free_reactor(r);
}

/* ---- CallFromThreadTests ------------------------------------------------------ */

static int counter;
static void incr_and_maybe_stop(void *arg) {
  int limit = (int)(intptr_t)arg;
  if (++counter == limit) tw_reactor_stop(R);
}

TWT_TEST(reactor, test_lots_of_threads_are_scheduled_correctly) {
  tw_reactor *r = new_reactor();
  int i;
  counter = 0;
  for (i = 0; i < 100; i++)
    cr_assert_eq(tw_reactor_call_from_thread(r, incr_and_maybe_stop,
                                             (void *)(intptr_t)100, NULL),
                 0);
  run(r);
  cr_assert_eq(counter, 100);
  free_reactor(r);
}

static char order_names[3][4] = {"a", "b", "c"};

TWT_TEST(reactor, test_threads_are_run_in_scheduled_order) {
  tw_reactor *r = new_reactor();
  int i;
  for (i = 0; i < 3; i++)
    tw_reactor_call_from_thread(r, rec_call, order_names[i], NULL);
  tw_reactor_call_from_thread(r, stop_call, r, NULL);
  run(r);
  ASSERT_EVENTS("a", "b", "c");
  free_reactor(r);
}

TWT_TEST(reactor, test_scheduled_threads_not_run_until_reactor_runs) {
  tw_reactor *r = new_reactor();
  tw_reactor_call_from_thread(r, rec_call, "ran", NULL);
  /* Iterating libuv without the reactor running does not run it... */
  uv_run(tw_reactor_loop(r), UV_RUN_NOWAIT);
  cr_assert_eq(nevents, 0);
  /* ...running the reactor does, after the startup triggers. */
  tw_reactor_call_when_running(r, rec_trigger, "when running", NULL, NULL);
  tw_reactor_call_from_thread(r, stop_call, r, NULL);
  run(r);
  ASSERT_EVENTS("when running", "ran");
  free_reactor(r);
}

/* ---- test_threads.py (reactor side) -------------------------------------------- */

static void from_other_thread(void *arg) {
  cr_assert_eq(tw_reactor_call_from_thread(arg, rec_call, "from thread", NULL), 0);
  cr_assert_eq(tw_reactor_call_from_thread(arg, stop_call, arg, NULL), 0);
}

static tw_result both_threads(void *arg) {
  cr_assert_eq(tw_reactor_call_from_thread(arg, rec_call, "from loop", NULL), 0);
  cr_assert_eq(uv_thread_create(&helper_thread, from_other_thread, arg), 0);
  return tw_result_none();
}

TWT_TEST(reactor, test_call_from_thread) {
  /* call_from_thread works from another thread and from the loop thread. */
  tw_reactor *r = new_reactor();
  tw_reactor_call_when_running(r, both_threads, r, NULL, NULL);
  run(r);
  cr_assert_eq(uv_thread_join(&helper_thread), 0);
  cr_assert_eq(nevents, 2);
  cr_assert(strcmp(events[0], "from loop") == 0 ||
            strcmp(events[1], "from loop") == 0);
  free_reactor(r);
}

TWT_TEST(reactor, test_waker_overflow) {
  /* 100 000 calls from one thread never fail, and all run. */
  tw_reactor *r = new_reactor();
  int i;
  counter = 0;
  for (i = 0; i < 100000; i++)
    cr_assert_eq(tw_reactor_call_from_thread(r, incr_and_maybe_stop,
                                             (void *)(intptr_t)100000, NULL),
                 0);
  run(r);
  cr_assert_eq(counter, 100000);
  free_reactor(r);
}

static void wake_from_delayed(void *arg) {
  tw_reactor_call_from_thread(arg, stop_call, arg, NULL);
}

TWT_TEST(reactor, test_delayed_call_from_thread) {
  /* call_from_thread from a delayed call (on the loop thread) must not leave
   * the loop asleep: nothing else would ever wake it here. */
  tw_reactor *r = new_reactor();
  tw_reactor_call_later(r, 0, wake_from_delayed, r, NULL, NULL);
  run(r);
  free_reactor(r);
}

static tw_result rec_in_io_thread(void *arg) {
  record(tw_reactor_in_loop_thread(arg) ? "io thread" : "other thread");
  tw_reactor_stop(arg);
  return tw_result_none();
}

TWT_TEST(reactor, test_is_in_io_thread) {
  tw_reactor *r = new_reactor();
  tw_reactor_call_when_running(r, rec_in_io_thread, r, NULL, NULL);
  run(r);
  ASSERT_EVENTS("io thread");
  free_reactor(r);
}

static void check_not_io_thread(void *arg) {
  cr_assert_eq(tw_reactor_in_loop_thread(arg), 0);
}

TWT_TEST(reactor, test_is_not_in_io_thread) {
  tw_reactor *r = new_reactor();
  uv_thread_t t;
  cr_assert_eq(uv_thread_create(&t, check_not_io_thread, r), 0);
  uv_thread_join(&t);
  cr_assert_eq(tw_reactor_in_loop_thread(NULL), 0);
  free_reactor(r);
}

/* ---- twuv: ordering ------------------------------------------------------------ */

static int zero_runs;
static int thread_call_seen_at = -1;
static void zero_again(void *arg) {
  (void)arg;
  zero_runs++;
  if (zero_runs < 1000)
    tw_reactor_call_later(R, 0, zero_again, NULL, NULL, NULL);
  else
    tw_reactor_stop(R);
}

static void note_thread_call(void *arg) {
  (void)arg;
  thread_call_seen_at = zero_runs;
}

static tw_result start_zero_chain(void *arg) {
  (void)arg;
  tw_reactor_call_later(R, 0, zero_again, NULL, NULL, NULL);
  tw_reactor_call_from_thread(R, note_thread_call, NULL, NULL);
  return tw_result_none();
}

TWT_TEST(reactor, zero_delay_call_from_a_timer_runs_next_iteration) {
  /* libuv 1.44 would re-run a re-armed 0 ms timer in the same pass and
   * starve everything else; here each re-arm costs one iteration, so the
   * thread call queued at the start runs after at most one timer pass. */
  tw_reactor *r = new_reactor();
  zero_runs = 0;
  thread_call_seen_at = -1;
  tw_reactor_call_when_running(r, start_zero_chain, NULL, NULL, NULL);
  run(r);
  cr_assert_eq(zero_runs, 1000);
  cr_assert(thread_call_seen_at >= 0 && thread_call_seen_at <= 1,
            "thread call ran after %d timer passes", thread_call_seen_at);
  free_reactor(r);
}

TWT_TEST(reactor, equal_deadlines_run_fifo) {
  tw_reactor *r = new_reactor();
  static char names[20][4];
  int i;
  for (i = 0; i < 20; i++) {
    snprintf(names[i], sizeof(names[i]), "%d", i);
    tw_reactor_call_later(r, 0, rec_call, names[i], NULL, NULL);
  }
  tw_reactor_call_later(r, 0, stop_call, r, NULL, NULL);
  run(r);
  cr_assert_eq(nevents, 20);
  for (i = 0; i < 20; i++) cr_assert_str_eq(events[i], names[i]);
  free_reactor(r);
}

TWT_TEST(reactor, calls_before_run_follow_twisted_order) {
  /* Twisted (verified): before-startup, during-startup, after-startup,
   * callWhenRunning, callFromThread-before-run, callLater(0)-before-run. */
  tw_reactor *r = new_reactor();
  tw_reactor_call_later(r, 0, rec_call, "call later", NULL, NULL);
  tw_reactor_call_from_thread(r, rec_call, "call from thread", NULL);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_BEFORE, "startup",
                                      rec_trigger, "before", NULL, NULL);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_DURING, "startup",
                                      rec_trigger, "during", NULL, NULL);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_AFTER, "startup",
                                      rec_trigger, "after", NULL, NULL);
  tw_reactor_call_when_running(r, rec_trigger, "when running", NULL, NULL);
  tw_reactor_call_later(r, 0.001, stop_call, r, NULL, NULL);
  run(r);
  ASSERT_EVENTS("before", "during", "after", "when running",
                "call from thread", "call later");
  free_reactor(r);
}

static tw_result rec_and_fail_call_when_running(void *arg) {
  record(arg);
  return tw_result_failure(tw_failure_new(&TW_VALUE_ERROR, 0, "boom"));
}

TWT_TEST(reactor, call_when_running_runs_at_once_when_running) {
  tw_reactor *r = new_reactor();
  tw_trigger_id id = 7;
  freed = 0;
  tw_reactor_call_when_running(r, stop_trigger, r, NULL, NULL);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_BEFORE, "shutdown",
                                      rec_trigger, "shutdown", NULL, NULL);
  run(r);
  /* Not running any more: a trigger again. */
  cr_assert_eq(tw_reactor_call_when_running(r, rec_trigger, "later", count_free, &id), 0);
  cr_assert_neq(id, 0);
  free_reactor(r);
  cr_assert_eq(freed, 1); /* dropped with the reactor */
  ASSERT_EVENTS("shutdown");
}

static tw_result nested_when_running(void *arg) {
  tw_trigger_id id = 9;
  (void)arg;
  cr_assert_eq(tw_reactor_call_when_running(R, rec_and_fail_call_when_running,
                                            "immediate", count_free, &id),
               0);
  cr_assert_eq(id, 0);
  cr_assert_eq(freed, 1);
  tw_reactor_stop(R);
  return tw_result_none();
}

TWT_TEST(reactor, call_when_running_while_running_is_immediate) {
  tw_reactor *r = new_reactor();
  freed = 0;
  tw_reactor_call_when_running(r, nested_when_running, NULL, NULL, NULL);
  run(r);
  ASSERT_EVENTS("immediate");
  cr_assert_eq(twt_log_flush(&TW_VALUE_ERROR), 1);
  free_reactor(r);
}

/* ---- twuv: nothing is lost ------------------------------------------------------- */

TWT_TEST(reactor, free_hands_pending_work_to_cleanup) {
  tw_reactor *r = new_reactor();
  tw_delayed_call *dc;
  freed = 0;
  cr_assert_eq(tw_reactor_call_from_thread(r, rec_call, "x", count_free), 0);
  cr_assert_eq(tw_reactor_call_later(r, 1, rec_call, "y", count_free, &dc), 0);
  cr_assert_eq(tw_reactor_add_system_event_trigger(
                   r, TW_PHASE_BEFORE, "shutdown", rec_trigger, "z",
                   count_free, NULL),
               0);
  free_reactor(r);
  cr_assert_eq(nevents, 0);
  cr_assert_eq(freed, 3);
  cr_assert(tw_delayed_call_cancelled(dc));
  cr_assert_eq(tw_delayed_call_cancel(dc), TW_EALREADYCANCELLED);
  tw_delayed_call_unref(dc);
}

static void queue_after_stop(void *arg) {
  (void)arg;
  /* Queued now, during the iteration that stops: it never runs; its
   * arg_free runs when the reactor closes its queue. */
  cr_assert_eq(tw_reactor_call_from_thread(R, rec_call, "never", count_free), 0);
}

TWT_TEST(reactor, call_from_thread_after_stop_is_refused) {
  tw_reactor *r = new_reactor();
  freed = 0;
  tw_reactor_add_system_event_trigger(r, TW_PHASE_BEFORE, "shutdown",
                                      rec_trigger,
                                      "shutdown", NULL, NULL);
  tw_reactor_call_from_thread(r, stop_call, r, NULL);
  tw_reactor_call_from_thread(r, queue_after_stop, NULL, NULL);
  run(r);
  cr_assert_eq(freed, 1);
  cr_assert_eq(tw_reactor_call_from_thread(r, rec_call, "refused", count_free),
               TW_ESHUTDOWN);
  cr_assert_eq(freed, 1); /* refused: the caller keeps arg */
  ASSERT_EVENTS("shutdown");
  free_reactor(r);
}

TWT_TEST(reactor, free_while_running_is_busy) {
  tw_reactor *r = new_reactor();
  cr_assert_eq(tw_reactor_start_running(r), 0);
  cr_assert_eq(tw_reactor_free(r), TW_EBUSY);
  cr_assert_eq(tw_reactor_crash(r), 0);
  free_reactor(r);
}

static void free_inside(void *arg) { cr_assert_eq(tw_reactor_free(arg), TW_EBUSY); }

TWT_TEST(reactor, free_inside_a_callback_is_busy) {
  tw_reactor *r = new_reactor();
  tw_reactor_call_later(r, 0, free_inside, r, NULL, NULL);
  tw_reactor_call_later(r, 0, stop_call, r, NULL, NULL);
  run(r);
  free_reactor(r);
}

/* ---- twuv: bad input --------------------------------------------------------------- */

TWT_TEST(reactor, bad_input_returns_codes) {
  tw_reactor *r = new_reactor(), *out = (tw_reactor *)&out;
  tw_delayed_call *dc = (tw_delayed_call *)&dc;
  freed = 0;
  cr_assert_eq(tw_reactor_new(NULL, NULL, 0), TW_EINVAL);
  cr_assert_eq(tw_reactor_new(&out, NULL, 0x80), TW_EINVAL);
  cr_assert_null(out);
  cr_assert_eq(tw_reactor_free(NULL), TW_EINVAL);
  cr_assert_eq(tw_reactor_run(NULL), TW_EINVAL);
  cr_assert_eq(tw_reactor_start_running(NULL), TW_EINVAL);
  cr_assert_eq(tw_reactor_stop(NULL), TW_EINVAL);
  cr_assert_eq(tw_reactor_crash(NULL), TW_EINVAL);
  cr_assert_eq(tw_reactor_running(NULL), 0); /* yes/no: 0, not a code */
  cr_assert_eq(tw_reactor_iterate(NULL, 0), TW_EINVAL);
  cr_assert_eq(tw_reactor_iterate(r, -1), TW_EINVAL);
  cr_assert_eq(tw_reactor_iterate(r, NAN), TW_EINVAL);
  cr_assert_null(tw_reactor_loop(NULL));
  cr_assert_null(tw_reactor_clock(NULL));
  cr_assert(isnan(tw_reactor_seconds(NULL)));
  cr_assert_eq(tw_reactor_call_later(NULL, 1, rec_call, "x", count_free, &dc), TW_EINVAL);
  cr_assert_null(dc);
  cr_assert_eq(tw_reactor_call_later(r, -1, rec_call, "x", count_free, NULL), TW_EINVAL);
  cr_assert_eq(tw_reactor_call_later(r, NAN, rec_call, "x", count_free, NULL), TW_EINVAL);
  cr_assert_eq(tw_reactor_call_later(r, 1, NULL, "x", count_free, NULL), TW_EINVAL);
  cr_assert_eq(tw_reactor_call_from_thread(NULL, rec_call, "x", count_free), TW_EINVAL);
  cr_assert_eq(tw_reactor_call_from_thread(r, NULL, "x", count_free), TW_EINVAL);
  cr_assert_eq(tw_reactor_add_system_event_trigger(NULL, TW_PHASE_BEFORE, "t", rec_trigger, "x", count_free, NULL), TW_EINVAL);
  cr_assert_eq(tw_reactor_add_system_event_trigger(r, TW_PHASE_BEFORE, NULL, rec_trigger, "x", count_free, NULL), TW_EINVAL);
  cr_assert_eq(tw_reactor_add_system_event_trigger(r, TW_PHASE_BEFORE, "t", NULL, "x", count_free, NULL), TW_EINVAL);
  cr_assert_eq(tw_reactor_call_when_running(NULL, rec_trigger, "x", count_free, NULL), TW_EINVAL);
  cr_assert_eq(tw_reactor_call_when_running(r, NULL, "x", count_free, NULL), TW_EINVAL);
  cr_assert_eq(tw_reactor_fire_system_event(NULL, "t"), TW_EINVAL);
  cr_assert_eq(freed, 0);
  cr_assert_eq(nevents, 0);
  free_reactor(r);
}

TWT_TEST(reactor, out_of_memory_changes_nothing) {
  tw_reactor *r = NULL;
  int i;
  freed = 0;
  /* Every allocation tw_reactor_new makes, failed in turn. */
  for (i = 1; i < 10; i++) {
    twt_alloc_fail_nth(i);
    if (tw_reactor_new(&r, NULL, 0) == 0) break;
    cr_assert_null(r);
    cr_assert_eq(twt_alloc_live(), 0);
  }
  twt_alloc_fail_nth(0);
  cr_assert_not_null(r);
  R = r;
  nevents = 0;
  twt_alloc_fail_nth(1);
  cr_assert_eq(tw_reactor_call_from_thread(r, rec_call, "x", count_free), TW_ENOMEM);
  twt_alloc_fail_nth(1);
  cr_assert_eq(tw_reactor_call_later(r, 0, rec_call, "x", count_free, NULL), TW_ENOMEM);
  twt_alloc_fail_nth(1);
  cr_assert_eq(tw_reactor_add_system_event_trigger(r, TW_PHASE_BEFORE, "new event", rec_trigger, "x", count_free, NULL), TW_ENOMEM);
  twt_alloc_fail_nth(2);
  cr_assert_eq(tw_reactor_add_system_event_trigger(r, TW_PHASE_BEFORE, "new event", rec_trigger, "x", count_free, NULL), TW_ENOMEM);
  cr_assert_eq(freed, 0);
  tw_reactor_call_later(r, 0, stop_call, r, NULL, NULL);
  run(r);
  cr_assert_eq(nevents, 0);
  free_reactor(r);
}

typedef struct {
  tw_reactor *r;
  int results[12];
} wrong_thread_t;

static void from_wrong_thread(void *arg) {
  wrong_thread_t *w = arg;
  tw_delayed_call *dc;
  w->results[0] = tw_reactor_stop(w->r);
  w->results[1] = tw_reactor_crash(w->r);
  w->results[2] = tw_reactor_running(w->r);
  w->results[3] = tw_reactor_call_later(w->r, 1, rec_call, "x", NULL, &dc);
  w->results[4] = tw_reactor_add_system_event_trigger(w->r, TW_PHASE_BEFORE, "t", rec_trigger, "x", NULL, NULL);
  w->results[5] = tw_reactor_remove_system_event_trigger(w->r, 1);
  w->results[6] = tw_reactor_fire_system_event(w->r, "t");
  w->results[7] = tw_reactor_call_when_running(w->r, rec_trigger, "x", NULL, NULL);
  /* Not run or start_running: they make any thread the loop thread of a
   * reactor that is not running (run_on_another_thread_...). */
  w->results[8] = tw_clock_call_later(tw_reactor_clock(w->r), 1, rec_call, "x", NULL, NULL);
  w->results[9] = tw_reactor_iterate(w->r, 0);
  w->results[10] = tw_reactor_free(w->r);
  w->results[11] = isnan(tw_reactor_seconds(w->r)) ? TW_EWRONGTHREAD : 0;
}

/* In every build: the check costs ~5 instructions (reactor-internal.h). */
TWT_TEST(reactor, thread_checks_refuse_other_threads) {
  wrong_thread_t w;
  uv_thread_t t;
  int i;
  w.r = new_reactor();
  cr_assert_eq(uv_thread_create(&t, from_wrong_thread, &w), 0);
  uv_thread_join(&t);
  for (i = 0; i < 12; i++)
    if (i != 2) /* running is a yes/no: 0 off the loop thread */
      cr_assert_eq(w.results[i], TW_EWRONGTHREAD, "call %d: %s", i, tw_err_name(w.results[i]));
  cr_assert_eq(w.results[2], 0);
  cr_assert_eq(tw_reactor_running(w.r), 0); /* nothing changed */
  cr_assert_eq(tw_clock_pending(tw_reactor_clock(w.r)), 0);
  free_reactor(w.r);
}

typedef struct {
  tw_reactor *r;
  int on_loop, off_loop;
} running_ask_t;

static void ask_running(void *arg) {
  running_ask_t *a = arg;
  a->off_loop = tw_reactor_running(a->r);
}

static void ask_running_both_ways(void *arg) {
  running_ask_t *a = arg;
  uv_thread_t t;
  a->on_loop = tw_reactor_running(a->r);
  cr_assert_eq(uv_thread_create(&t, ask_running, a), 0);
  uv_thread_join(&t);
  cr_assert_eq(tw_reactor_stop(a->r), 0);
}

/* Yes/no answers are 1 or 0, never a code: a running reactor asked from
 * another thread says 0, so if (tw_reactor_running(r)) is never true on a
 * misuse. */
TWT_TEST(reactor, running_is_zero_off_the_loop_thread) {
  running_ask_t a = {NULL, -1, -1};
  a.r = new_reactor();
  cr_assert_eq(tw_reactor_call_later(a.r, 0, ask_running_both_ways, &a, NULL, NULL), 0);
  run(a.r);
  cr_assert_eq(a.on_loop, 1);
  cr_assert_eq(a.off_loop, 0);
  free_reactor(a.r);
}

/* ---- twuv: hosting, interop, several reactors -------------------------------------- */

static void raw_timer_cb(uv_timer_t *t) {
  record("raw libuv timer");
  uv_close((uv_handle_t *)t, NULL);
}

TWT_TEST(reactor, raw_libuv_handles_share_the_loop) {
  tw_reactor *r = new_reactor();
  uv_timer_t t;
  cr_assert_eq(uv_timer_init(tw_reactor_loop(r), &t), 0);
  cr_assert_eq(uv_timer_start(&t, raw_timer_cb, 1, 0), 0);
  tw_reactor_call_later(r, 0.02, stop_call, r, NULL, NULL);
  run(r);
  ASSERT_EVENTS("raw libuv timer");
  free_reactor(r);
}

TWT_TEST(reactor, hosted_on_a_libuv_programs_loop) {
  uv_loop_t loop;
  tw_reactor *r;
  cr_assert_eq(uv_loop_init(&loop), 0);
  cr_assert_eq(tw_reactor_new(&r, &loop, 0), 0);
  R = r;
  nevents = 0;
  /* Not started: the reactor's handles do not keep the loop alive. */
  cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_AFTER, "shutdown",
                                      rec_trigger, "shut down", NULL, NULL);
  tw_reactor_call_later(r, 0, rec_call, "timer", NULL, NULL);
  tw_reactor_call_from_thread(r, rec_call, "thread call", NULL);
  tw_reactor_call_later(r, 0.001, stop_call, r, NULL, NULL);
  cr_assert_eq(tw_reactor_start_running(r), 0);
  cr_assert_eq(tw_reactor_running(r), 1);
  /* The program's own uv_run drives the reactor until it stops. */
  uv_run(&loop, UV_RUN_DEFAULT);
  ASSERT_EVENTS("thread call", "timer", "shut down");
  cr_assert_eq(tw_reactor_running(r), 0);
  cr_assert_eq(tw_reactor_free(r), 0);
  uv_run(&loop, UV_RUN_NOWAIT); /* the close callbacks release the reactor */
  cr_assert_eq(uv_loop_close(&loop), 0);
}

TWT_TEST(reactor, hosted_run_drives_the_given_loop) {
  uv_loop_t loop;
  tw_reactor *r;
  cr_assert_eq(uv_loop_init(&loop), 0);
  cr_assert_eq(tw_reactor_new(&r, &loop, 0), 0);
  R = r;
  nevents = 0;
  tw_reactor_call_later(r, 0, stop_call, r, NULL, NULL);
  run(r);
  cr_assert_eq(tw_reactor_loop(r), &loop);
  cr_assert_eq(tw_reactor_free(r), 0);
  uv_run(&loop, UV_RUN_NOWAIT);
  cr_assert_eq(uv_loop_close(&loop), 0);
}

static void incr_int(void *arg) { ++*(int *)arg; }

static void run_own_reactor(void *arg) {
  tw_reactor *r;
  int *ok = arg, i, calls = 0;
  if (tw_reactor_new(&r, NULL, 0) != 0) return;
  for (i = 0; i < 1000; i++)
    tw_reactor_call_from_thread(r, incr_int, &calls, NULL);
  tw_reactor_call_later(r, 0, stop_call, r, NULL, NULL);
  if (tw_reactor_run(r) == 0 && tw_reactor_free(r) == 0 && calls == 1000)
    *ok = 1;
}

TWT_TEST(reactor, several_reactors_on_their_own_threads) {
  uv_thread_t t[4];
  int ok[4] = {0, 0, 0, 0}, i;
  for (i = 0; i < 4; i++)
    cr_assert_eq(uv_thread_create(&t[i], run_own_reactor, &ok[i]), 0);
  for (i = 0; i < 4; i++) uv_thread_join(&t[i]);
  for (i = 0; i < 4; i++) cr_assert_eq(ok[i], 1, "reactor %d", i);
}

TWT_TEST(reactor, default_reactor_is_created_once) {
  tw_reactor *a = tw_reactor_default(), *b = tw_reactor_default();
  cr_assert_not_null(a);
  cr_assert_eq(a, b);
  cr_assert_eq(tw_reactor_loop(a), uv_default_loop());
  R = a;
  nevents = 0;
  tw_reactor_call_later(a, 0, stop_call, a, NULL, NULL);
  run(a);
  cr_assert_eq(tw_reactor_free(a), 0);
  uv_run(uv_default_loop(), UV_RUN_NOWAIT);
  /* A new default after free. */
  b = tw_reactor_default();
  cr_assert_not_null(b);
  cr_assert_eq(tw_reactor_free(b), 0);
  uv_run(uv_default_loop(), UV_RUN_NOWAIT);
  cr_assert_eq(uv_loop_close(uv_default_loop()), 0);
}

TWT_TEST(reactor, iterate_with_a_delay_returns_by_then) {
  tw_reactor *r = new_reactor();
  tw_reactor_call_from_thread(r, rec_call, "thread call", NULL);
  cr_assert_eq(tw_reactor_iterate(r, 0), 0);
  ASSERT_EVENTS("thread call");
  tw_reactor_call_later(r, 0.001, rec_call, "timer", NULL, NULL);
  while (nevents < 2) cr_assert_eq(tw_reactor_iterate(r, 0.01), 0);
  ASSERT_EVENTS("thread call", "timer");
  free_reactor(r);
}

/* ---- before triggers that return Deferreds (gating) ------------------------ */

static tw_result return_deferred(void *arg) {
  /* The trigger hands the event a reference; the test keeps its own. */
  return tw_result_deferred(tw_deferred_ref(arg));
}

TWT_TEST(reactor, test_asynchronous_before) {
  tw_reactor *r = new_reactor();
  tw_deferred *d = tw_deferred_new(NULL, NULL);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_BEFORE, "test",
                                      return_deferred, d, NULL, NULL);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_DURING, "test", rec_trigger,
                                      "during", NULL, NULL);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_AFTER, "test", rec_trigger,
                                      "after", NULL, NULL);
  tw_reactor_fire_system_event(r, "test");
  cr_assert_eq(nevents, 0);
  cr_assert_eq(tw_deferred_callback(d, tw_result_none()), 0);
  ASSERT_EVENTS("during", "after");
  tw_deferred_unref(d);
  free_reactor(r);
}

TWT_TEST(reactor, test_asynchronous_before_removes_during) {
  tw_reactor *r = new_reactor();
  tw_deferred *d = tw_deferred_new(NULL, NULL);
  tw_trigger_id during;
  tw_reactor_add_system_event_trigger(r, TW_PHASE_BEFORE, "test",
                                      return_deferred, d, NULL, NULL);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_DURING, "test", rec_trigger,
                                      "during", NULL, &during);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_AFTER, "test", rec_trigger,
                                      "after", NULL, NULL);
  tw_reactor_fire_system_event(r, "test");
  cr_assert_eq(tw_reactor_remove_system_event_trigger(r, during), 0);
  tw_deferred_callback(d, tw_result_none());
  ASSERT_EVENTS("after");
  tw_deferred_unref(d);
  free_reactor(r);
}

TWT_TEST(reactor, test_before_returns_deferred) {
  tw_reactor *r = new_reactor();
  tw_deferred *d = tw_deferred_new(NULL, NULL);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_BEFORE, "test",
                                      return_deferred, d, NULL, NULL);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_DURING, "test", rec_trigger,
                                      "during", NULL, NULL);
  tw_reactor_fire_system_event(r, "test");
  cr_assert_eq(nevents, 0);
  tw_deferred_callback(d, tw_result_none());
  ASSERT_EVENTS("during");
  tw_deferred_unref(d);
  free_reactor(r);
}

TWT_TEST(reactor, test_multiple_before_return_deferred) {
  tw_reactor *r = new_reactor();
  tw_deferred *first = tw_deferred_new(NULL, NULL);
  tw_deferred *second = tw_deferred_new(NULL, NULL);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_BEFORE, "test",
                                      return_deferred, first, NULL, NULL);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_BEFORE, "test",
                                      return_deferred, second, NULL, NULL);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_DURING, "test", rec_trigger,
                                      "during", NULL, NULL);
  tw_reactor_fire_system_event(r, "test");
  cr_assert_eq(nevents, 0);
  tw_deferred_callback(first, tw_result_none());
  cr_assert_eq(nevents, 0);
  tw_deferred_callback(second, tw_result_none());
  ASSERT_EVENTS("during");
  tw_deferred_unref(first);
  tw_deferred_unref(second);
  free_reactor(r);
}

static tw_deferred *gate_first, *gate_second;
static tw_result fire_first(void *arg) {
  (void)arg;
  cr_assert_eq(tw_deferred_callback(gate_first, tw_result_none()), 0);
  return tw_result_none();
}
static tw_result record_and_return_second(void *arg) {
  (void)arg;
  record("before");
  return tw_result_deferred(tw_deferred_ref(gate_second));
}

TWT_TEST(reactor, test_subsequent_before_trigger_fires_prior_before_deferred) {
  tw_reactor *r = new_reactor();
  gate_first = tw_deferred_new(NULL, NULL);
  gate_second = tw_deferred_new(NULL, NULL);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_BEFORE, "test",
                                      return_deferred, gate_first, NULL, NULL);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_BEFORE, "test", fire_first,
                                      NULL, NULL, NULL);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_BEFORE, "test",
                                      record_and_return_second, NULL, NULL,
                                      NULL);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_DURING, "test", rec_trigger,
                                      "during", NULL, NULL);
  tw_reactor_fire_system_event(r, "test");
  ASSERT_EVENTS("before");
  tw_deferred_callback(gate_second, tw_result_none());
  ASSERT_EVENTS("before", "during");
  tw_deferred_unref(gate_first);
  tw_deferred_unref(gate_second);
  free_reactor(r);
}

static tw_result rec_and_return(void *arg) {
  tw_deferred **d = arg;
  record(d == &gate_first ? "before first" : "before second");
  return tw_result_deferred(tw_deferred_ref(*d));
}

TWT_TEST(reactor, test_interaction_between_different_events) {
  tw_reactor *r = new_reactor();
  gate_first = tw_deferred_new(NULL, NULL);
  gate_second = tw_deferred_new(NULL, NULL);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_BEFORE, "first-event",
                                      rec_and_return, &gate_first, NULL, NULL);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_AFTER, "first-event",
                                      rec_trigger, "after first", NULL, NULL);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_BEFORE, "second-event",
                                      rec_and_return, &gate_second, NULL, NULL);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_AFTER, "second-event",
                                      rec_trigger, "after second", NULL, NULL);
  tw_reactor_fire_system_event(r, "first-event");
  ASSERT_EVENTS("before first");
  tw_reactor_fire_system_event(r, "second-event");
  ASSERT_EVENTS("before first", "before second");
  tw_deferred_callback(gate_first, tw_result_none());
  ASSERT_EVENTS("before first", "before second", "after first");
  tw_deferred_callback(gate_second, tw_result_none());
  ASSERT_EVENTS("before first", "before second", "after first",
                "after second");
  tw_deferred_unref(gate_first);
  tw_deferred_unref(gate_second);
  free_reactor(r);
}

static void fire_none(void *arg) { tw_deferred_callback(arg, tw_result_none()); }
static void unref_deferred(void *arg) { tw_deferred_unref(arg); }

static tw_result startup_callback(tw_result result, void *arg) {
  (void)arg;
  record("callback");
  tw_reactor_stop(R);
  return result;
}

static tw_result async_startup_trigger(void *arg) {
  tw_deferred *d = tw_deferred_new(NULL, NULL);
  (void)arg;
  record("trigger");
  tw_deferred_add_callback(d, startup_callback, NULL);
  /* The timer holds a reference until it fires the Deferred. */
  tw_reactor_call_later(R, 0, fire_none, tw_deferred_ref(d), unref_deferred,
                        NULL);
  return tw_result_deferred(d);
}

TWT_TEST(reactor, test_run_with_asynchronous_before_startup_trigger) {
  /* A before-startup Deferred delays "during startup", but the loop runs
   * (timers fire) meanwhile, and stop works. */
  tw_reactor *r = new_reactor();
  tw_reactor_add_system_event_trigger(r, TW_PHASE_BEFORE, "startup",
                                      async_startup_trigger, NULL, NULL, NULL);
  run(r);
  ASSERT_EVENTS("trigger", "callback");
  free_reactor(r);
}

TWT_TEST(reactor, failed_before_deferred_still_releases_the_event) {
  /* Twisted continues after a failed before-Deferred and leaves the failure
   * unhandled: it is reported when that Deferred goes away. */
  tw_reactor *r = new_reactor();
  tw_deferred *d = tw_deferred_new(NULL, NULL);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_BEFORE, "test",
                                      return_deferred, d, NULL, NULL);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_DURING, "test", rec_trigger,
                                      "during", NULL, NULL);
  tw_reactor_fire_system_event(r, "test");
  tw_deferred_errback(d, tw_failure_new(&TW_VALUE_ERROR, 0, "before failed"));
  ASSERT_EVENTS("during");
  tw_deferred_unref(d);
  cr_assert_eq(twt_log_flush(&TW_VALUE_ERROR), 1);
  free_reactor(r);
}

TWT_TEST(reactor, reactor_freed_while_a_before_deferred_is_pending) {
  tw_reactor *r = new_reactor();
  tw_deferred *d = tw_deferred_new(NULL, NULL);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_BEFORE, "test",
                                      return_deferred, d, NULL, NULL);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_DURING, "test", rec_trigger,
                                      "during", count_free, NULL);
  freed = 0;
  tw_reactor_fire_system_event(r, "test");
  free_reactor(r);
  cr_assert_eq(freed, 1); /* the during trigger was dropped with the reactor */
  /* Firing the Deferred afterwards touches nothing of the reactor. */
  cr_assert_eq(tw_deferred_callback(d, tw_result_none()), 0);
  cr_assert_eq(nevents, 0);
  tw_deferred_unref(d);
}

/* ---- regressions ------------------------------------------------------------ */

static tw_deferred *gate_d;
static void fire_gate(void *arg) {
  (void)arg;
  tw_deferred_callback(gate_d, tw_result_none());
}

static tw_result hold_shutdown(void *arg) {
  (void)arg;
  gate_d = tw_deferred_new(NULL, NULL);
  /* Fired by a thread call: the shutdown then completes (and the queue
   * closes) in the middle of draining the queue. */
  tw_reactor_call_from_thread(R, fire_gate, NULL, NULL);
  tw_reactor_call_from_thread(R, rec_call, "after the gate", count_free);
  return tw_result_deferred(tw_deferred_ref(gate_d));
}

TWT_TEST(reactor, shutdown_completed_by_a_thread_call_does_not_hang) {
  tw_reactor *r = new_reactor();
  freed = 0;
  tw_reactor_add_system_event_trigger(r, TW_PHASE_BEFORE, "shutdown",
                                      hold_shutdown, NULL, NULL, NULL);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_AFTER, "shutdown",
                                      rec_trigger, "shut down", NULL, NULL);
  tw_reactor_call_when_running(r, stop_trigger, r, NULL, NULL);
  run(r);
  /* The call queued behind the gate was in the same batch: it ran. */
  ASSERT_EVENTS("shut down", "after the gate");
  cr_assert_eq(freed, 1);
  cr_assert_eq(tw_reactor_call_from_thread(r, rec_call, "late", NULL),
               TW_ESHUTDOWN);
  tw_deferred_unref(gate_d);
  free_reactor(r);
}

static tw_result return_dropped(void *arg) {
  (void)arg;
  return tw_result_deferred(tw_deferred_new(NULL, NULL));
}

static tw_deferred *dropped_later;
static tw_result return_then_drop(void *arg) {
  (void)arg;
  dropped_later = tw_deferred_new(NULL, NULL);
  return tw_result_deferred(tw_deferred_ref(dropped_later));
}

TWT_TEST(reactor, before_deferred_freed_unfired_does_not_hang_the_event) {
  /* Nothing can fire it any more: Twisted would wait for ever. */
  tw_reactor *r = new_reactor();
  tw_reactor_add_system_event_trigger(r, TW_PHASE_BEFORE, "test",
                                      return_dropped, NULL, NULL, NULL);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_DURING, "test", rec_trigger,
                                      "during", NULL, NULL);
  tw_reactor_fire_system_event(r, "test");
  ASSERT_EVENTS("during");
  /* Dropped later, while the event waits. */
  tw_reactor_add_system_event_trigger(r, TW_PHASE_BEFORE, "test2",
                                      return_then_drop, NULL, NULL, NULL);
  tw_reactor_add_system_event_trigger(r, TW_PHASE_DURING, "test2",
                                      rec_trigger, "during 2", NULL, NULL);
  tw_reactor_fire_system_event(r, "test2");
  ASSERT_EVENTS("during");
  tw_deferred_unref(dropped_later);
  ASSERT_EVENTS("during", "during 2");
  cr_assert_eq(twt_log_count_containing("freed without firing"), 2);
  free_reactor(r);
}

/* ---- test_task.py: ReactTests (task.react) --------------------------------
 * Twisted runs these on a fake reactor with a fake clock; here the reactor
 * is real, so delays are short and the tests check order, not time. */

TWT_SUITE(react);

static const tw_error_type EXPECTED_EXCEPTION = {"test.ExpectedException",
                                                 &TW_ERROR};

static void fire_expected(void *arg) {
  tw_deferred_errback(arg, tw_failure_new(&EXPECTED_EXCEPTION, 0, "expected"));
}

static tw_result fire_none_trigger(void *arg) {
  fire_none(arg);
  return tw_result_none();
}

static tw_result fire_expected_trigger(void *arg) {
  fire_expected(arg);
  return tw_result_none();
}

static void release_deferred(void *arg) { tw_deferred_unref(arg); }

static tw_deferred *main_async_callback(tw_reactor *r, int argc, char **argv) {
  tw_deferred *finished = tw_deferred_new(NULL, NULL);
  (void)argc;
  (void)argv;
  tw_reactor_call_later(r, 0.001, rec_call, "time passed", NULL, NULL);
  tw_reactor_call_later(r, 0.002, fire_none, tw_deferred_ref(finished),
                        release_deferred, NULL);
  return finished;
}

TWT_TEST(react, test_runs_until_async_callback) {
  tw_reactor *r = new_reactor();
  cr_assert_eq(tw_react_on(r, main_async_callback, 0, NULL), 0);
  ASSERT_EVENTS("time passed");
  cr_assert_eq(tw_reactor_running(r), 0);
  free_reactor(r);
}

static tw_deferred *main_sync_callback(tw_reactor *r, int argc, char **argv) {
  (void)r;
  (void)argc;
  (void)argv;
  record("main");
  return tw_succeed(NULL, NULL);
}

TWT_TEST(react, test_runs_until_sync_callback) {
  tw_reactor *r = new_reactor();
  tw_reactor_add_system_event_trigger(r, TW_PHASE_AFTER, "shutdown",
                                      rec_trigger, "stopped", NULL, NULL);
  cr_assert_eq(tw_react_on(r, main_sync_callback, 0, NULL), 0);
  ASSERT_EVENTS("main", "stopped");
  free_reactor(r);
}

static tw_deferred *main_async_errback(tw_reactor *r, int argc, char **argv) {
  tw_deferred *finished = tw_deferred_new(NULL, NULL);
  (void)argc;
  (void)argv;
  tw_reactor_call_later(r, 0.001, fire_expected, tw_deferred_ref(finished),
                        release_deferred, NULL);
  return finished;
}

TWT_TEST(react, test_runs_until_async_errback) {
  tw_reactor *r = new_reactor();
  cr_assert_eq(tw_react_on(r, main_async_errback, 0, NULL), 1);
  cr_assert_eq(twt_log_count_containing("main function encountered error"),
               1);
  cr_assert_eq(twt_log_flush(&EXPECTED_EXCEPTION), 1);
  free_reactor(r);
}

static tw_deferred *main_sync_errback(tw_reactor *r, int argc, char **argv) {
  (void)r;
  (void)argc;
  (void)argv;
  return tw_fail(tw_failure_new(&EXPECTED_EXCEPTION, 0, "expected"));
}

TWT_TEST(react, test_runs_until_sync_errback) {
  tw_reactor *r = new_reactor();
  cr_assert_eq(tw_react_on(r, main_sync_errback, 0, NULL), 1);
  cr_assert_eq(twt_log_flush(&EXPECTED_EXCEPTION), 1);
  free_reactor(r);
}

static tw_deferred *main_single_stop(tw_reactor *r, int argc, char **argv) {
  tw_deferred *finished = tw_deferred_new(NULL, NULL);
  (void)argv;
  tw_reactor_call_later(r, 0.001, stop_call, r, NULL, NULL);
  tw_reactor_add_system_event_trigger(
      r, TW_PHASE_DURING, "shutdown",
      argc == 0 ? fire_none_trigger : fire_expected_trigger,
      tw_deferred_ref(finished), release_deferred, NULL);
  return finished;
}

TWT_TEST(react, test_single_stop_callback) {
  /* stop_call asserts that its stop succeeds: react must not have stopped
   * the reactor first, and must not stop it again (that would be
   * TW_ENOTRUNNING, ignored, so check the log stays clean too). */
  tw_reactor *r = new_reactor();
  cr_assert_eq(tw_react_on(r, main_single_stop, 0, NULL), 0);
  cr_assert_eq(twt_log_count(), 0);
  free_reactor(r);
}

TWT_TEST(react, test_single_stop_errback) {
  static char *argv[] = {"errback", NULL};
  tw_reactor *r = new_reactor();
  cr_assert_eq(tw_react_on(r, main_single_stop, 1, argv), 1);
  cr_assert_eq(twt_log_flush(&EXPECTED_EXCEPTION), 1);
  free_reactor(r);
}

static char *react_args[4];
static tw_deferred *main_arguments(tw_reactor *r, int argc, char **argv) {
  int i;
  (void)r;
  for (i = 0; i < argc && i < 4; i++) react_args[i] = argv[i];
  return tw_succeed((void *)(intptr_t)argc, NULL);
}

TWT_TEST(react, test_arguments) {
  static char *argv[] = {"1", "2", "3", NULL};
  tw_reactor *r = new_reactor();
  memset(react_args, 0, sizeof(react_args));
  cr_assert_eq(tw_react_on(r, main_arguments, 3, argv), 0);
  cr_assert_str_eq(react_args[0], "1");
  cr_assert_str_eq(react_args[1], "2");
  cr_assert_str_eq(react_args[2], "3");
  cr_assert_null(react_args[3]);
  free_reactor(r);
}

static tw_reactor *passed_reactor;
static tw_deferred *main_default(tw_reactor *r, int argc, char **argv) {
  (void)argc;
  (void)argv;
  passed_reactor = r;
  return tw_succeed(NULL, NULL);
}

TWT_TEST(react, test_default_reactor) {
  /* tw_react uses the default reactor, and frees it afterwards (the leak
   * check would see it otherwise). */
  tw_reactor *def = tw_reactor_default();
  cr_assert_not_null(def);
  passed_reactor = NULL;
  cr_assert_eq(tw_react(main_default, 0, NULL), 0);
  cr_assert_eq(passed_reactor, def);
  /* The default loop was closed too: closing the new one is a no-op. */
  cr_assert_eq(uv_loop_close(uv_default_loop()), 0);
}

static tw_deferred *main_exit_code(tw_reactor *r, int argc, char **argv) {
  (void)r;
  (void)argc;
  (void)argv;
  return tw_fail(tw_failure_new(&TW_SYSTEM_EXIT, 23, "exit"));
}

TWT_TEST(react, test_exit_with_defined_code) {
  tw_reactor *r = new_reactor();
  cr_assert_eq(tw_react_on(r, main_exit_code, 0, NULL), 23);
  cr_assert_eq(twt_log_count(), 0); /* SystemExit is not logged */
  free_reactor(r);
}

static tw_result stop_then_fire(void *arg) {
  tw_deferred *d = arg;
  cr_assert_eq(tw_reactor_stop(R), 0);
  tw_deferred_callback(d, tw_result_none());
  return tw_result_none();
}

static tw_deferred *main_synchronous_stop(tw_reactor *r, int argc,
                                          char **argv) {
  tw_deferred *d = tw_deferred_new(NULL, NULL);
  (void)argc;
  (void)argv;
  tw_reactor_call_when_running(r, stop_then_fire, tw_deferred_ref(d),
                               release_deferred, NULL);
  return d;
}

TWT_TEST(react, test_synchronous_stop) {
  tw_reactor *r = new_reactor();
  cr_assert_eq(tw_react_on(r, main_synchronous_stop, 0, NULL), 0);
  cr_assert_eq(twt_log_count(), 0);
  free_reactor(r);
}

static tw_deferred *never_fired;
static tw_deferred *main_asynchronous_stop(tw_reactor *r, int argc,
                                           char **argv) {
  (void)argc;
  (void)argv;
  tw_reactor_call_later(r, 0.001, stop_call, r, NULL, NULL);
  never_fired = tw_deferred_new(NULL, NULL);
  return tw_deferred_ref(never_fired);
}

TWT_TEST(react, test_asynchronous_stop) {
  tw_reactor *r = new_reactor();
  cr_assert_eq(tw_react_on(r, main_asynchronous_stop, 0, NULL), 0);
  /* Fired after react returned: react's callback must still be safe. */
  cr_assert_eq(tw_deferred_callback(never_fired, tw_result_none()), 0);
  tw_deferred_unref(never_fired);
  cr_assert_eq(twt_log_count(), 0);
  free_reactor(r);
}

static tw_deferred *main_null(tw_reactor *r, int argc, char **argv) {
  (void)r;
  (void)argc;
  (void)argv;
  return NULL;
}

TWT_TEST(react, main_returning_null_exits_1_without_running) {
  tw_reactor *r = new_reactor();
  cr_assert_eq(tw_react_on(r, main_null, 0, NULL), 1);
  cr_assert_eq(twt_log_flush(NULL), 1);
  /* Not run: it can still run (and be stopped) afterwards. */
  tw_reactor_call_when_running(r, stop_trigger, r, NULL, NULL);
  run(r);
  free_reactor(r);
}

TWT_TEST(react, bad_arguments_are_refused) {
  tw_reactor *r = new_reactor();
  cr_assert_eq(tw_react_on(NULL, main_sync_callback, 0, NULL), TW_EINVAL);
  cr_assert_eq(tw_react_on(r, NULL, 0, NULL), TW_EINVAL);
  cr_assert_eq(tw_react_on(r, main_sync_callback, -1, NULL), TW_EINVAL);
  cr_assert_eq(tw_react_on(r, main_sync_callback, 2, NULL), TW_EINVAL);
  cr_assert_eq(tw_react(NULL, 0, NULL), TW_EINVAL);
  cr_assert_eq(nevents, 0); /* main never called */
  free_reactor(r);
}

TWT_TEST(react, on_a_stopped_reactor_is_not_restartable) {
  tw_reactor *r = new_reactor();
  tw_reactor_call_when_running(r, stop_trigger, r, NULL, NULL);
  run(r);
  cr_assert_eq(tw_react_on(r, main_sync_callback, 0, NULL),
               TW_ENOTRESTARTABLE);
  free_reactor(r);
}

/* ---- stopping helpers ---------------------------------------------------- */

TWT_TEST(reactor, stop_call_is_a_ready_call_fn) {
  tw_reactor *r = new_reactor();
  cr_assert_eq(tw_reactor_call_later(r, 0, tw_reactor_stop_call, r, NULL,
                                     NULL), 0);
  run(r);
  tw_reactor_stop_call(r); /* stopped already: left alone */
  cr_assert_eq(twt_log_count(), 0);
  free_reactor(r);
}

TWT_TEST(reactor, stop_when_fired_before_run_still_stops) {
  tw_reactor *r = new_reactor();
  tw_deferred *d = tw_succeed(NULL, NULL);
  cr_assert_eq(tw_reactor_stop_when_fired(r, d), 0);
  run(r); /* would hang if the stop were lost */
  tw_deferred_unref(d);
  free_reactor(r);
}

TWT_TEST(reactor, stop_when_fired_passes_the_failure_on) {
  tw_reactor *r = new_reactor();
  tw_deferred *d = tw_deferred_new(NULL, NULL);
  cr_assert_eq(tw_reactor_stop_when_fired(r, d), 0);
  tw_reactor_call_later(r, 0, fire_expected, d, NULL, NULL);
  run(r);
  cr_assert_eq(tw_reactor_stop_when_fired(NULL, d), TW_EINVAL);
  cr_assert_eq(tw_reactor_stop_when_fired(r, NULL), TW_EINVAL);
  tw_deferred_unref(d); /* the failure was not consumed: reported */
  cr_assert_eq(twt_log_flush(&EXPECTED_EXCEPTION), 1);
  free_reactor(r);
}

/* ---- react: nothing acts after it returned ------------------------------- */

static void crash_reactor(void *arg) { cr_assert_eq(tw_reactor_crash(arg), 0); }

static tw_deferred *kept_main_deferred;
static tw_deferred *main_crashing(tw_reactor *r, int argc, char **argv) {
  (void)argc;
  (void)argv;
  tw_reactor_call_later(r, 0, crash_reactor, r, NULL, NULL);
  kept_main_deferred = tw_deferred_new(NULL, NULL);
  return tw_deferred_ref(kept_main_deferred);
}

TWT_TEST(react, deferred_fired_after_a_crashed_run_leaves_the_reactor_alone) {
  tw_reactor *r = new_reactor();
  cr_assert_eq(tw_react_on(r, main_crashing, 0, NULL), 0);
  /* Fired after react returned: only reported, the reactor untouched (it
   * used to be stopped through react's pointer, or used after free). */
  tw_deferred_errback(kept_main_deferred,
                      tw_failure_new(&EXPECTED_EXCEPTION, 0, "late"));
  tw_deferred_unref(kept_main_deferred);
  cr_assert_eq(twt_log_flush(&EXPECTED_EXCEPTION), 1);
  /* A crashed reactor runs again, and only its own stop ends the run. */
  tw_reactor_call_later(r, 0.001, rec_call, "tick", NULL, NULL);
  tw_reactor_call_later(r, 0.002, stop_call, r, NULL, NULL);
  run(r);
  ASSERT_EVENTS("tick");
  free_reactor(r);
}

static int nested_react_result;
static tw_result nested_react(void *arg) {
  nested_react_result = tw_react_on(arg, main_sync_callback, 0, NULL);
  cr_assert_eq(tw_reactor_stop(arg), 0);
  return tw_result_none();
}

TWT_TEST(react, react_on_a_running_reactor_is_refused_before_main) {
  tw_reactor *r = new_reactor();
  tw_reactor_call_when_running(r, nested_react, r, NULL, NULL);
  run(r);
  cr_assert_eq(nested_react_result, TW_EALREADYRUNNING);
  cr_assert_eq(nevents, 0); /* main never called */
  free_reactor(r);
}

/* ---- re-entrancy and state (issue 11) ---------------------------------------- */

/* tw_reactor_free runs arg_frees (queued thread calls, delayed calls,
 * triggers); one of them calling free again or scheduling must be refused at
 * once, not spin, free twice or drop the call silently. */
static tw_reactor *freeing;
static int nested_free_rc[3], nested_later_rc[3], nested_n;
static void free_again(void *arg) {
  (void)arg;
  cr_assert(nested_n < 3);
  nested_free_rc[nested_n] = tw_reactor_free(freeing);
  nested_later_rc[nested_n] =
      tw_reactor_call_later(freeing, 0, rec_call, "too late", count_free, NULL);
  nested_n++;
}

TWT_TEST_OPTS(reactor, free_called_again_from_an_arg_free_it_runs, .timeout = 10) {
  tw_reactor *r = new_reactor();
  int i;
  freeing = r;
  freed = nested_n = 0;
  cr_assert_eq(tw_reactor_call_from_thread(r, rec_call, "queued", free_again), 0);
  cr_assert_eq(tw_reactor_call_later(r, 1, rec_call, "timer", free_again, NULL), 0);
  cr_assert_eq(tw_reactor_add_system_event_trigger(r, TW_PHASE_AFTER, "shutdown",
                                                   rec_trigger, "trigger",
                                                   free_again, NULL),
               0);
  free_reactor(r);
  cr_assert_eq(nested_n, 3);
  for (i = 0; i < 3; i++) {
    cr_assert_eq(nested_free_rc[i], TW_EBUSY, "arg_free %d: free gave %s", i,
                 tw_err_name(nested_free_rc[i]));
    cr_assert_eq(nested_later_rc[i], TW_ESHUTDOWN,
                 "arg_free %d: call_later gave %s", i,
                 tw_err_name(nested_later_rc[i]));
  }
  cr_assert_eq(freed, 0, "a refused call_later's arg_free ran");
  cr_assert_eq(nevents, 0);
}

/* A reactor created on one thread and run on another: refused in every
 * build (its loop thread is the thread that created it, for its whole life;
 * reactor.h). Before, builds with thread checks refused and the others ran it. */
typedef struct {
  tw_reactor *r;
  int run_rc, start_rc, in_loop_thread;
} other_runner_t;

static void note_loop_thread(void *arg) {
  other_runner_t *o = arg;
  o->in_loop_thread = tw_reactor_in_loop_thread(o->r);
  cr_assert_eq(tw_reactor_stop(o->r), 0);
}

static void run_elsewhere(void *arg) {
  other_runner_t *o = arg;
  o->run_rc = tw_reactor_run(o->r);
  o->start_rc = tw_reactor_start_running(o->r);
}

TWT_TEST_OPTS(reactor, run_on_another_thread_than_the_creator_is_refused, .timeout = 10) {
  other_runner_t o = {NULL, -1, -1, -1};
  uv_thread_t t;
  o.r = new_reactor();
  /* Stops the reactor wherever it runs, so that a regression fails
   * instead of hanging. */
  cr_assert_eq(tw_reactor_call_later(o.r, 0, note_loop_thread, &o, NULL, NULL), 0);
  cr_assert_eq(uv_thread_create(&t, run_elsewhere, &o), 0);
  uv_thread_join(&t);
  cr_assert_eq(o.run_rc, TW_EWRONGTHREAD, "run: %s", tw_err_name(o.run_rc));
  cr_assert_eq(o.start_rc, TW_EWRONGTHREAD, "start_running: %s",
               tw_err_name(o.start_rc));
  cr_assert_eq(o.in_loop_thread, -1, "the reactor ran on the other thread");
  run(o.r); /* nothing changed: the creator runs it */
  cr_assert_eq(o.in_loop_thread, 1);
  free_reactor(o.r);
}

/* iterate(INFINITY) waits until there is work; NaN and negative are
 * refused. Without the wait, the loop below spins many thousands of times
 * in the 0.2 s before the timer is due. */
static void noop_call(void *arg) { (void)arg; }
static void rec_and_wake(void *arg) {
  record(arg);
  cr_assert_eq(tw_reactor_call_from_thread(R, noop_call, NULL, NULL), 0);
}

TWT_TEST_OPTS(reactor, iterate_infinity_waits_for_work, .timeout = 30) {
  tw_reactor *r = new_reactor();
  int spins = 0;
  cr_assert_eq(tw_reactor_iterate(r, NAN), TW_EINVAL);
  cr_assert_eq(tw_reactor_iterate(r, -1), TW_EINVAL);
  cr_assert_eq(tw_reactor_iterate(r, -INFINITY), TW_EINVAL);
  /* The call wakes the poll that follows it in the same iterate (with
   * nothing left to wait for, that poll would wait for ever, as asked). */
  cr_assert_eq(tw_reactor_call_later(r, 0.2, rec_and_wake, "timer", NULL, NULL), 0);
  while (nevents == 0) {
    cr_assert_eq(tw_reactor_iterate(r, INFINITY), 0);
    spins++;
  }
  /* One wait for the timer, perhaps a few early wake-ups (libuv's timers
   * count whole milliseconds on a coarse clock), plus the iteration that
   * runs the call; without the wait it was 865534 times. */
  cr_assert_leq(spins, 20, "iterate(INFINITY) returned %d times", spins);
  ASSERT_EVENTS("timer");
  free_reactor(r);
}

/* Firing "shutdown" by hand before run runs the reactor's own crash trigger
 * (as in Twisted); a later run + stop must still return. */
TWT_TEST_OPTS(reactor, fire_shutdown_before_run_then_stop_still_returns, .timeout = 10) {
  tw_reactor *r = new_reactor();
  tw_reactor_add_system_event_trigger(r, TW_PHASE_AFTER, "shutdown",
                                      rec_trigger, "shutdown", NULL, NULL);
  cr_assert_eq(tw_reactor_fire_system_event(r, "shutdown"), 0);
  ASSERT_EVENTS("shutdown");
  tw_reactor_add_system_event_trigger(r, TW_PHASE_AFTER, "shutdown",
                                      rec_trigger, "shutdown again", NULL, NULL);
  tw_reactor_call_later(r, 0, stop_call, r, NULL, NULL);
  run(r);
  ASSERT_EVENTS("shutdown", "shutdown again");
  cr_assert_eq(tw_reactor_running(r), 0);
  free_reactor(r);
}

/* Same, with the event fired by hand while running: the reactor crashes (as
 * in Twisted), runs again, and a stop then still ends the run. */
static void fire_shutdown(void *arg) {
  cr_assert_eq(tw_reactor_fire_system_event(arg, "shutdown"), 0);
}

TWT_TEST_OPTS(reactor, fire_shutdown_while_running_then_stop_still_returns, .timeout = 10) {
  tw_reactor *r = new_reactor();
  tw_reactor_call_later(r, 0, fire_shutdown, r, NULL, NULL);
  run(r); /* crashed */
  tw_reactor_call_later(r, 0, stop_call, r, NULL, NULL);
  run(r);
  cr_assert_eq(tw_reactor_run(r), TW_ENOTRESTARTABLE);
  free_reactor(r);
}

/* The reactor's timers use the manual clock's order for equal deadlines: a
 * call moved sooner onto a time other calls are due at goes behind them
 * (task.Clock's order; Twisted's reactor heap promises none). */
TWT_TEST_OPTS(reactor, delay_sooner_goes_behind_calls_due_then, .timeout = 10) {
  tw_reactor *r = new_reactor();
  tw_delayed_call *a, *b;
  double ta, tb;
  /* A far later than B even on a stalled machine, so that the delay moves
   * it sooner (a call moved later would go in front of B). */
  cr_assert_eq(tw_reactor_call_later(r, 100, rec_call, "A", NULL, &a), 0);
  cr_assert_eq(tw_reactor_call_later(r, 0.01, rec_call, "B", NULL, &b), 0);
  ta = tw_delayed_call_get_time(a);
  tb = tw_delayed_call_get_time(b);
  cr_assert_lt(tb, ta);
  cr_assert_eq(tw_delayed_call_delay(a, tb - ta), 0);
  cr_assert_eq(tw_delayed_call_get_time(a), tb, "times differ: test broken");
  while (nevents < 2) cr_assert_eq(tw_reactor_iterate(r, 0.01), 0);
  ASSERT_EVENTS("B", "A");
  tw_delayed_call_unref(a);
  tw_delayed_call_unref(b);
  free_reactor(r);
}
