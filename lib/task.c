/*
 * lib/task.c - Deferred.addTimeout, deferLater and LoopingCall on a tw_clock
 * (task.h).
 */
#include "clock-internal.h"
#include "defer-internal.h"

#include <limits.h>
#include <math.h>

/* ---- addTimeout ---------------------------------------------------------- */

typedef struct tw__timeout {
  size_t refs;          /* the timer's, and the two pairs' */
  tw_deferred *d;       /* a reference, held by the timer while pending */
  tw_delayed_call *dc;  /* a reference */
  double seconds;
  tw_timeout_fn on_timeout;
  void *arg;
  int timed_out;
} tw__timeout;

static void tw__timeout_unref(void *p) {
  tw__timeout *t = p;
  if (--t->refs > 0) return;
  tw_delayed_call_unref(t->dc);
  tw__free(t);
}

/* timeItOut */
static void tw__timeout_fire(void *p) {
  tw__timeout *t = p;
  t->timed_out = 1;
  tw_deferred_cancel(t->d);
}

/* The timer is done (run or cancelled): it no longer keeps d alive. */
static void tw__timeout_timer_done(void *p) {
  tw__timeout *t = p;
  tw_deferred *d = t->d;
  t->d = NULL;
  tw_deferred_unref(d);
  tw__timeout_unref(t);
}

/* _cancelledToTimedOutError */
static tw_result tw__cancelled_to_timed_out(tw_result r, double timeout,
                                            void *arg) {
  (void)arg;
  if (r.kind != TW_RESULT_FAILURE ||
      !tw_failure_trap(r.u.failure, &TW_CANCELLED_ERROR))
    return r;
  tw_result_release(r);
  return tw_result_failure(tw_failure_new(&TW_TIMEOUT_ERROR, TW_ETIMEDOUT,
                                          "Deferred timed out after %g seconds",
                                          timeout));
}

/* convertCancelled */
static tw_result tw__timeout_convert(tw_result r, void *p) {
  tw__timeout *t = p;
  if (!t->timed_out) return r;
  return (t->on_timeout ? t->on_timeout : tw__cancelled_to_timed_out)(
      r, t->seconds, t->arg);
}

/* cancelTimeout */
static tw_result tw__timeout_cancel_timer(tw_result r, void *p) {
  tw__timeout *t = p;
  if (tw_delayed_call_active(t->dc)) tw_delayed_call_cancel(t->dc);
  return r;
}

int tw_deferred_add_timeout(tw_deferred *d, tw_clock *clock, double seconds,
                            tw_timeout_fn on_timeout, void *arg) {
  tw__timeout *t;
  int err;
  if (!tw__deferred_live(d) || clock == NULL ||
      !tw__valid_delay(seconds))
    return TW_EINVAL;
  /* Room for both pairs first: adding the first one to a fired Deferred
   * runs it, and nothing may be left half-added. */
  if (tw__deferred_reserve(d, 2) != 0) return TW_ENOMEM;
  t = tw__malloc(sizeof(*t));
  if (t == NULL) return TW_ENOMEM;
  t->refs = 3;
  t->d = d;
  t->dc = NULL;
  t->seconds = seconds;
  t->on_timeout = on_timeout;
  t->arg = arg;
  t->timed_out = 0;
  err = tw_clock_call_later(clock, seconds, tw__timeout_fire, t,
                            tw__timeout_timer_done, &t->dc);
  if (err != 0) {
    tw__free(t);
    return err;
  }
  tw_deferred_ref(d);
  tw_deferred_add_callbacks_full(d, tw__timeout_convert, tw__timeout_convert,
                                 t, tw__timeout_unref);
  tw_deferred_add_callbacks_full(d, tw__timeout_cancel_timer,
                                 tw__timeout_cancel_timer, t,
                                 tw__timeout_unref);
  return 0;
}

/* ---- deferLater ---------------------------------------------------------- */

typedef struct tw__later {
  size_t refs;         /* the Deferred's canceller slot, and the pair */
  tw_delayed_call *dc; /* a reference */
  tw_result_fn fn;
  void *arg;
  tw_free_fn arg_free;
} tw__later;

static void tw__later_unref(void *p) {
  tw__later *l = p;
  if (--l->refs > 0) return;
  if (l->arg_free != NULL) l->arg_free(l->arg);
  tw_delayed_call_unref(l->dc);
  tw__free(l);
}

/* The canceller: stop the timer; d then fails with CancelledError. */
static void tw__later_cancel(tw_deferred *d, void *p) {
  tw__later *l = p;
  (void)d;
  if (tw_delayed_call_active(l->dc)) tw_delayed_call_cancel(l->dc);
}

static tw_result tw__later_call(tw_result r, void *p) {
  tw__later *l = p;
  tw_result res;
  tw_result_release(r);
  if (l->fn == NULL) return tw_result_none();
  res = l->fn(l->arg);
  if (tw__result_adopt_arg(&res, l->arg, l->arg_free)) l->arg_free = NULL;
  return res;
}

static void tw__later_fire(void *d) {
  tw_deferred_callback(d, tw_result_none());
}

static void tw__later_timer_done(void *d) { tw_deferred_unref(d); }

int tw_defer_later(tw_clock *clock, double delay, tw_result_fn fn, void *arg,
                   tw_free_fn arg_free, tw_deferred **out) {
  tw__later *l;
  tw_deferred *d;
  int err;
  if (out != NULL) *out = NULL;
  if (clock == NULL || out == NULL || !tw__valid_delay(delay))
    return TW_EINVAL;
  l = tw__malloc(sizeof(*l));
  if (l == NULL) return TW_ENOMEM;
  l->refs = 2;
  l->dc = NULL;
  l->fn = fn;
  l->arg = arg;
  l->arg_free = NULL; /* until nothing can fail: on error arg stays theirs */
  d = tw__deferred_new_full(tw__later_cancel, l, tw__later_unref, __FILE__,
                            __LINE__);
  if (d == NULL) {
    tw__free(l);
    return TW_ENOMEM;
  }
  if (tw_deferred_add_callbacks_full(d, tw__later_call, NULL, l,
                                     tw__later_unref) != 0) {
    l->refs = 1;
    tw_deferred_unref(d);
    return TW_ENOMEM;
  }
  /* The timer is d's producer: it owns a reference until it is done. */
  err = tw_clock_call_later(clock, delay, tw__later_fire, d,
                            tw__later_timer_done, &l->dc);
  if (err != 0) {
    tw_deferred_unref(d);
    return err;
  }
  tw_deferred_ref(d);
  l->arg_free = arg_free;
  *out = d;
  return 0;
}

/* ---- LoopingCall --------------------------------------------------------- */

struct tw_looping_call {
  size_t refs; /* the user's, the timer's, a pending call's */
  tw_clock *clock;
  tw_result_fn fn;
  tw_count_fn count_fn;
  void *arg;
  tw_free_fn arg_free;
  int running;
  int run_at_start;
  int has_real_last;
  double interval;
  double starttime;
  double real_last_time;
  tw_delayed_call *call;  /* pending timer (a reference), or NULL */
  tw_deferred *deferred;  /* start's Deferred (a reference), or NULL */
};

static void tw__lc_unref(void *p) {
  tw_looping_call *lc = p;
  if (--lc->refs > 0) return;
  if (lc->arg_free != NULL) lc->arg_free(lc->arg);
  tw_delayed_call_unref(lc->call);
  tw_deferred_unref(lc->deferred);
  tw__free(lc);
}

static int tw__lc_new(tw_looping_call **out, tw_clock *clock,
                      tw_result_fn fn, tw_count_fn count_fn, void *arg,
                      tw_free_fn arg_free) {
  tw_looping_call *lc;
  if (out != NULL) *out = NULL;
  if (out == NULL || clock == NULL || (fn == NULL && count_fn == NULL))
    return TW_EINVAL;
  lc = tw__malloc(sizeof(*lc));
  if (lc == NULL) return TW_ENOMEM;
  lc->refs = 1;
  lc->clock = clock;
  lc->fn = fn;
  lc->count_fn = count_fn;
  lc->arg = arg;
  lc->arg_free = arg_free;
  lc->running = lc->run_at_start = lc->has_real_last = 0;
  lc->interval = lc->starttime = lc->real_last_time = 0.0;
  lc->call = NULL;
  lc->deferred = NULL;
  *out = lc;
  return 0;
}

int tw_looping_call_new(tw_looping_call **out, tw_clock *clock,
                        tw_result_fn fn, void *arg, tw_free_fn arg_free) {
  if (fn == NULL) {
    if (out != NULL) *out = NULL;
    return TW_EINVAL;
  }
  return tw__lc_new(out, clock, fn, NULL, arg, arg_free);
}

int tw_looping_call_new_with_count(tw_looping_call **out, tw_clock *clock,
                                   tw_count_fn fn, void *arg,
                                   tw_free_fn arg_free) {
  if (fn == NULL) {
    if (out != NULL) *out = NULL;
    return TW_EINVAL;
  }
  return tw__lc_new(out, clock, NULL, fn, arg, arg_free);
}

/* Python's float %, whose result takes the divisor's sign. */
static double tw__py_mod(double a, double b) {
  double r = fmod(a, b);
  if (r != 0.0 && ((r < 0.0) != (b < 0.0))) r += b;
  return r;
}

/* _intervalOf: whole intervals elapsed since the start, as of t. Clamped:
 * a tiny interval over a long time exceeds any integer, and converting an
 * out-of-range double is undefined. */
static long long tw__lc_interval_of(const tw_looping_call *lc, double t) {
  double n = (t - lc->starttime) / lc->interval;
  if (!(n < 9.0e18)) return (long long)9e18;
  if (!(n > -9.0e18)) return -(long long)9e18;
  return (long long)n;
}

static void tw__lc_tick(void *p);

/* _scheduleFrom: the next call lands on the next interval boundary. */
static int tw__lc_schedule_from(tw_looping_call *lc, double when) {
  double delay;
  int err;
  if (lc->interval == 0.0) {
    delay = 0.0;
  } else {
    delay = lc->interval - tw__py_mod(when - lc->starttime, lc->interval);
    if (when == when + delay) delay = lc->interval; /* float underflow */
  }
  err = tw_clock_call_later(lc->clock, delay, tw__lc_tick, lc, tw__lc_unref,
                            &lc->call);
  if (err == 0) lc->refs++;
  return err;
}

/* Fire start's Deferred and forget it. */
static void tw__lc_finish(tw_looping_call *lc, tw_failure *f) {
  tw_deferred *d = lc->deferred;
  lc->deferred = NULL;
  if (d == NULL) {
    tw_failure_unref(f);
    return;
  }
  if (f != NULL)
    tw_deferred_errback(d, f);
  else
    tw_deferred_callback(d, tw_result_value(lc, NULL));
  tw_deferred_unref(d);
}

/* What __call__ calls: f, or withCount's counter. */
static tw_result tw__lc_invoke(void *p) {
  tw_looping_call *lc = p;
  double now;
  long long count;
  if (lc->fn != NULL) return lc->fn(lc->arg);
  now = tw_clock_seconds(lc->clock);
  if (lc->interval == 0.0) {
    lc->real_last_time = now;
    lc->has_real_last = 1;
    return lc->count_fn(1, lc->arg);
  }
  if (lc->has_real_last) {
    count = tw__lc_interval_of(lc, now) -
            tw__lc_interval_of(lc, lc->real_last_time);
  } else {
    double last = lc->starttime;
    if (lc->run_at_start) last -= lc->interval;
    count = tw__lc_interval_of(lc, now) - tw__lc_interval_of(lc, last);
  }
  if (count <= 0) return tw_result_none();
  lc->real_last_time = now;
  lc->has_real_last = 1;
  return lc->count_fn(count > LONG_MAX ? LONG_MAX : (long)count, lc->arg);
}

/* __call__'s cb and eb, as one pair (cb cannot raise here but by OOM). */
static tw_result tw__lc_done(tw_result r, void *p) {
  tw_looping_call *lc = p;
  int failed = r.kind == TW_RESULT_FAILURE;
  tw_failure *f = failed ? r.u.failure : NULL;
  int err;
  if (!failed) {
    tw_result_release(r);
    if (!lc->running) {
      tw__lc_finish(lc, NULL);
      return tw_result_none();
    }
    err = tw__lc_schedule_from(lc, tw_clock_seconds(lc->clock));
    if (err == 0) return tw_result_none();
    f = tw_failure_from_code(err);
  }
  lc->running = 0;
  tw__lc_finish(lc, f);
  return tw_result_none();
}

/* __call__ */
static void tw__lc_call(tw_looping_call *lc) {
  tw_deferred *d;
  tw_delayed_call *dc = lc->call;
  lc->call = NULL;
  tw_delayed_call_unref(dc);
  lc->refs++; /* the pair's: lc must outlive fn and its Deferred */
  d = tw_maybe_deferred(tw__lc_invoke, lc);
  if (d == NULL) {
    tw__lc_done(tw_result_failure(tw_failure_from_code(TW_ENOMEM)), lc);
    tw__lc_unref(lc);
    return;
  }
  if (tw_deferred_add_callbacks_full(d, tw__lc_done, tw__lc_done, lc,
                                     tw__lc_unref) != 0) {
    tw__lc_done(tw_result_failure(tw_failure_from_code(TW_ENOMEM)), lc);
    tw__lc_unref(lc);
  }
  tw_deferred_unref(d);
}

static void tw__lc_tick(void *p) { tw__lc_call(p); }

int tw_looping_call_start(tw_looping_call *lc, double interval, int now,
                          tw_deferred **out) {
  tw_deferred *d;
  int err;
  if (out != NULL) *out = NULL;
  if (lc == NULL || !tw__valid_delay(interval)) return TW_EINVAL;
  /* Also refused: a start while the previous run's Deferred is still
   * pending (Twisted would lose the first start's Deferred). */
  if (lc->running || lc->deferred != NULL) return TW_EALREADYRUNNING;
  d = tw__deferred_new_full(NULL, NULL, NULL, __FILE__, __LINE__);
  if (d == NULL) return TW_ENOMEM;
  lc->running = 1;
  lc->deferred = d;
  lc->starttime = tw_clock_seconds(lc->clock);
  lc->interval = interval;
  lc->run_at_start = now != 0;
  lc->has_real_last = 0;
  if (out != NULL) *out = tw_deferred_ref(d);
  if (now) {
    lc->refs++; /* fn may free lc */
    tw__lc_call(lc);
    tw__lc_unref(lc);
  } else if ((err = tw__lc_schedule_from(lc, lc->starttime)) != 0) {
    lc->running = 0;
    lc->deferred = NULL;
    tw_deferred_unref(d);
    if (out != NULL) {
      tw_deferred_unref(*out);
      *out = NULL;
    }
    return err;
  }
  return 0;
}

int tw_looping_call_stop(tw_looping_call *lc) {
  tw_delayed_call *dc;
  if (lc == NULL) return TW_EINVAL;
  if (!lc->running) return TW_ENOTRUNNING;
  lc->running = 0;
  if (lc->call != NULL) {
    dc = lc->call;
    lc->call = NULL;
    lc->refs++; /* cancelling drops the timer's reference */
    tw_delayed_call_cancel(dc);
    tw_delayed_call_unref(dc);
    tw__lc_finish(lc, NULL);
    tw__lc_unref(lc);
  }
  return 0;
}

int tw_looping_call_reset(tw_looping_call *lc) {
  tw_delayed_call *old;
  double saved;
  int err;
  if (lc == NULL) return TW_EINVAL;
  if (!lc->running) return TW_ENOTRUNNING;
  if (lc->call == NULL) return 0;
  /* Schedule the new call before cancelling the old one, so that running
   * out of memory leaves the loop as it was. */
  old = lc->call;
  saved = lc->starttime;
  lc->starttime = tw_clock_seconds(lc->clock);
  if ((err = tw__lc_schedule_from(lc, lc->starttime)) != 0) {
    lc->starttime = saved;
    lc->call = old;
    return err;
  }
  tw_delayed_call_cancel(old);
  tw_delayed_call_unref(old);
  return 0;
}

int tw_looping_call_running(const tw_looping_call *lc) {
  return lc != NULL && lc->running;
}

double tw_looping_call_interval(const tw_looping_call *lc) {
  return lc ? lc->interval : NAN;
}

void tw_looping_call_free(tw_looping_call *lc) {
  if (lc == NULL) return;
  if (lc->running) tw_looping_call_stop(lc);
  tw__lc_unref(lc);
}
