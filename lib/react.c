/*
 * lib/react.c - task.react and the "stop the reactor" helpers (reactor.h).
 *
 * Built on the reactor's public functions only (system event triggers,
 * callWhenRunning, stop, run), as Twisted's react is built on IReactorCore.
 */
#include "internal.h"

#include <twuv/reactor.h>
#include <uv.h>

/*
 * What react shares with the callbacks it registers. Every registration (the
 * before-shutdown trigger, the Deferred's callback pair, the callWhenRunning
 * trigger) holds a reference released by its arg_free, so the state outlives
 * tw_react when the Deferred fires after react returned (the reactor stopped
 * by something else), as Twisted's closure would. Loop thread only.
 */
typedef struct tw__react {
  int refs;
  tw_reactor *reactor; /* NULL once tw_react_on returned: hands off */
  int stopping; /* the shutdown event started (Twisted's `stopping`) */
  int before_run; /* tw_react_on has not called run yet */
  int fired_early; /* main's Deferred fired before run */
  int code;     /* the exit code */
  tw_failure *failure; /* main's failure, until handled on the loop */
} tw__react;

static void tw__react_unref(void *p) {
  tw__react *s = p;
  if (--s->refs > 0) return;
  tw_failure_unref(s->failure);
  tw__free(s);
}

/* onShutdown: a before-shutdown trigger. */
static tw_result tw__react_on_shutdown(void *p) {
  tw__react *s = p;
  s->stopping = 1;
  return tw_result_none();
}

/* stop(result, stopReactor): the failure part, once the reactor runs. */
static void tw__react_finish(tw__react *s) {
  tw_failure *f = s->failure;
  if (f == NULL) return;
  s->failure = NULL;
  if (tw_failure_check(f, &TW_SYSTEM_EXIT) != NULL) {
    s->code = tw_failure_code(f) & 0xff; /* what exit(code) reports */
  } else {
    tw_log_failure(f, "main function encountered error");
    s->code = 1;
  }
  tw_failure_unref(f);
}

/* stop(result, True), called when the reactor runs. */
static tw_result tw__react_stop(void *p) {
  tw__react *s = p;
  /* A trigger left on a crashed reactor that is run again later must not
   * stop the program's run: react is over. */
  if (s->reactor != NULL)
    (void)tw_reactor_stop(s->reactor); /* TW_ENOTRUNNING: stopping already */
  tw__react_finish(s);
  return tw_result_none();
}

/* cbFinish: main's Deferred fired. */
static tw_result tw__react_fired(tw_result result, void *p) {
  tw__react *s = p;
  int rc;
  if (tw_result_is_failure(result))
    s->failure = result.u.failure; /* moved into s */
  else
    tw_result_release(result);
  if (s->stopping || s->reactor == NULL) {
    /* Stopping already; or react returned (the reactor crashed, or run was
     * refused) and the reactor may be gone: only report a failure. */
    tw__react_finish(s);
    return tw_result_none();
  }
  if (s->before_run) {
    /* tw_react_on registers the stop itself, where it can still refuse. */
    s->fired_early = 1;
    return tw_result_none();
  }
  s->refs++;
  rc = tw_reactor_call_when_running(s->reactor, tw__react_stop, s,
                                    tw__react_unref, NULL);
  if (rc < 0) {
    /* Out of memory in a startup trigger: stop at once instead. */
    s->refs--;
    tw_log(TW_LOG_CRITICAL, NULL, "react: %s; stopping now", tw_strerror(rc));
    tw__react_stop(s);
  }
  return tw_result_none();
}

int tw_react_on(tw_reactor *r, tw_react_fn main_fn, int argc, char **argv) {
  tw__react *s;
  tw_deferred *d;
  tw_trigger_id trigger = 0, when_running = 0;
  int rc, code;

  if (r == NULL || main_fn == NULL || argc < 0 || (argc > 0 && argv == NULL))
    return TW_EINVAL;
  /* Refused before main runs, so the error has no side effect. */
  if (tw_reactor_running(r) == 1) return TW_EALREADYRUNNING;
  s = tw__malloc(sizeof(*s));
  if (s == NULL) return TW_ENOMEM;
  s->refs = 1;
  s->reactor = r;
  s->stopping = 0;
  s->code = 0;
  s->failure = NULL;
  s->before_run = 1;
  s->fired_early = 0;

  s->refs++;
  rc = tw_reactor_add_system_event_trigger(r, TW_PHASE_BEFORE, "shutdown",
                                           tw__react_on_shutdown, s,
                                           tw__react_unref, &trigger);
  if (rc < 0) {
    s->refs--;
    tw__react_unref(s);
    return rc;
  }

  d = main_fn(r, argc, argv);
  if (d == NULL) {
    /* Twisted: main raised, and react raises before running the reactor. */
    tw_log(TW_LOG_ERROR, NULL, "react: main function returned no Deferred");
    (void)tw_reactor_remove_system_event_trigger(r, trigger);
    tw__react_unref(s);
    return 1;
  }
  s->refs++;
  rc = tw_deferred_add_callbacks_full(d, tw__react_fired, tw__react_fired, s,
                                      tw__react_unref);
  if (rc < 0) s->refs--; /* not added: its arg_free will not run */
  if (rc == 0 && s->fired_early) {
    /* The pair ran (and released its reference) inside the add. */
    s->refs++;
    rc = tw_reactor_call_when_running(r, tw__react_stop, s, tw__react_unref,
                                      &when_running);
    if (rc < 0) s->refs--;
  }
  if (rc < 0) {
    s->reactor = NULL;
    tw_deferred_unref(d);
    (void)tw_reactor_remove_system_event_trigger(r, trigger);
    tw__react_finish(s); /* a failure main's Deferred already had */
    tw__react_unref(s);
    return rc;
  }
  s->before_run = 0;

  rc = tw_reactor_run(r);
  s->reactor = NULL; /* from now on main's Deferred leaves r alone */
  if (when_running != 0)
    (void)tw_reactor_remove_system_event_trigger(r, when_running);
  /* A trigger that did not run (run refused, or the reactor crashed) must
   * not outlive us: TW_ENOENT when it ran, which is the normal case. */
  (void)tw_reactor_remove_system_event_trigger(r, trigger);
  /* Keep d until now: main's Deferred may be referenced by nobody else, and
   * freeing it unfired would drop the callback that stops the reactor. */
  tw_deferred_unref(d);
  if (rc < 0) tw__react_finish(s); /* run refused: report, code stays rc */
  code = rc < 0 ? rc : s->code;
  tw__react_unref(s);
  return code;
}

int tw_react(tw_react_fn main_fn, int argc, char **argv) {
  tw_reactor *r;
  uv_loop_t *loop;
  int code;
  if (main_fn == NULL || argc < 0 || (argc > 0 && argv == NULL))
    return TW_EINVAL;
  r = tw_reactor_default();
  if (r == NULL) return TW_ENOMEM;
  loop = tw_reactor_loop(r);
  code = tw_react_on(r, main_fn, argc, argv);
  /* Twisted's react exits the process; here the program goes on, so leave
   * nothing behind (a reactor that cannot be freed yet stays, and
   * tw_reactor_default keeps returning it). The default reactor is hosted
   * on uv_default_loop(): its memory goes in its handles' close callbacks. */
  if (tw_reactor_free(r) == 0) {
    (void)uv_run(loop, UV_RUN_NOWAIT);
    /* UV_EBUSY when the program left handles of its own on it: then it
     * stays. Otherwise the next uv_default_loop() makes a new one. */
    (void)uv_loop_close(loop);
  }
  return code;
}

/* ---- stopping helpers ---------------------------------------------------- */

void tw_reactor_stop_call(void *reactor) {
  (void)tw_reactor_stop(reactor);
}

static tw_result tw__stop_when_running(void *r) {
  (void)tw_reactor_stop(r);
  return tw_result_none();
}

static tw_result tw__stop_fired(tw_result result, void *r) {
  /* Stop once the reactor runs (at once when it does): a Deferred that
   * fired before run must not leave run waiting for ever. */
  if (tw_reactor_call_when_running(r, tw__stop_when_running, r, NULL, NULL) <
      0)
    (void)tw_reactor_stop(r);
  return result; /* passed on: a failure nobody handles is still reported */
}

int tw_reactor_stop_when_fired(tw_reactor *r, tw_deferred *d) {
  if (r == NULL || d == NULL) return TW_EINVAL;
  if (!tw_reactor_in_loop_thread(r)) return TW_EWRONGTHREAD;
  return tw_deferred_add_both(d, tw__stop_fired, r);
}
