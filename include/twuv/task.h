/*
 * twuv/task.h - time-based helpers on a tw_clock (twisted.internet.task and
 * Deferred.addTimeout): tw_deferred_add_timeout, tw_defer_later and
 * tw_looping_call.
 *
 * They take a tw_clock, never a reactor: pass tw_reactor_clock(reactor) in a
 * program, a manual clock (tw_clock_new_manual) in a test. Like the clock
 * they run on, they are single-threaded.
 */
#ifndef TWUV_TASK_H
#define TWUV_TASK_H

#include "clock.h"
#include "common.h"
#include "defer.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * What to make of a timed-out Deferred (onTimeoutCancel): receives (and
 * owns) the result the Deferred got when the timeout cancelled it, and the
 * timeout in seconds; returns the result to continue with.
 */
typedef tw_result (*tw_timeout_fn)(tw_result result, double timeout,
                                   void *arg);

/*
 * tw_deferred_add_timeout: Deferred.addTimeout(timeout, clock,
 * onTimeoutCancel). If d has not fired `seconds` from now, d is cancelled,
 * and the result of that cancellation is passed to on_timeout (NULL: the
 * default, which turns CancelledError into TW_TIMEOUT_ERROR and passes any
 * other result through). Firing d first cancels the timer. Only callbacks
 * added before this call run before the translation, as in Twisted. The
 * timer holds a reference to d until it runs or is cancelled, so d times
 * out even if nothing else holds it; a clock freed first drops the timer.
 * Errors: TW_EINVAL (NULL or freed d, NULL clock; seconds negative, NaN or
 * infinite), TW_ENOMEM, TW_EWRONGTHREAD; on error nothing was added.
 */
TW_EXTERN int tw_deferred_add_timeout(tw_deferred *d, tw_clock *clock,
                                      double seconds, tw_timeout_fn on_timeout,
                                      void *arg);

/*
 * tw_defer_later: deferLater(clock, delay, callable). *out receives a
 * Deferred that fires, delay seconds from now, with fn(arg)'s result (fn
 * NULL: None). fn runs inside the callback chain, so a failure it returns
 * errbacks the Deferred. Cancelling before the delay cancels the timer, fn
 * never runs, and the Deferred fails with CancelledError. arg_free(arg) runs
 * once when fn has run or will never run (cancelled, or the Deferred freed
 * unfired, e.g. after its clock was freed), which is before the Deferred's
 * later callbacks run. Moving arg into the result: when fn returns arg itself as its value
 * (tw_result_value(arg, ...)), arg moves into the result and arg_free does
 * not run then; a value without a destructor gets arg_free as its
 * destructor, so the result frees arg when it goes.
 * The timer holds a reference to the Deferred until it fires it.
 * Errors: TW_EINVAL (NULL clock/out, bad delay), TW_ENOMEM, TW_EWRONGTHREAD;
 * on error *out is NULL and arg_free is not called.
 */
TW_EXTERN int tw_defer_later(tw_clock *clock, double delay, tw_result_fn fn,
                             void *arg, tw_free_fn arg_free,
                             tw_deferred **out);

/* ---- LoopingCall --------------------------------------------------------- */

typedef struct tw_looping_call tw_looping_call;

/*
 * For tw_looping_call_new_with_count (LoopingCall.withCount): called with the
 * number of intervals that elapsed since the last call (at least 1).
 */
typedef tw_result (*tw_count_fn)(long count, void *arg);

/*
 * tw_looping_call_new: LoopingCall(f) on clock: fn(arg) is called every
 * interval once started. fn may return a value, a failure (stops the loop
 * and errbacks the start Deferred) or a Deferred (the next call waits until
 * it fires). arg_free(arg) runs when the looping call is freed.
 * Returns 0 and *out, or an error with *out NULL (when out is not NULL):
 * TW_EINVAL (out, clock or fn NULL), TW_ENOMEM; on error arg_free is not
 * called.
 */
TW_EXTERN int tw_looping_call_new(tw_looping_call **out, tw_clock *clock,
                                  tw_result_fn fn, void *arg,
                                  tw_free_fn arg_free);

/* tw_looping_call_new_with_count: LoopingCall.withCount(countCallable).
 * Errors as tw_looping_call_new's. */
TW_EXTERN int tw_looping_call_new_with_count(tw_looping_call **out,
                                             tw_clock *clock, tw_count_fn fn,
                                             void *arg, tw_free_fn arg_free);

/*
 * tw_looping_call_start: start(interval, now). With now, the first call
 * happens inside this function; otherwise after one interval. Missed
 * intervals are skipped, and calls stay aligned to start + k * interval.
 * *out (may be NULL) receives a reference to the Deferred that fires with
 * the looping call (as a value without destructor) when it is stopped, or
 * errbacks with the failure that ended it.
 * Errors: TW_EINVAL (NULL; interval negative, NaN or infinite: ValueError
 * in Twisted), TW_EALREADYRUNNING (running - Twisted asserts - or stopped
 * while fn's Deferred is still pending: Twisted would start again and lose
 * the first start's Deferred), TW_ENOMEM, TW_EWRONGTHREAD; on error nothing
 * started and *out is NULL.
 */
TW_EXTERN int tw_looping_call_start(tw_looping_call *lc, double interval,
                                    int now, tw_deferred **out);

/*
 * tw_looping_call_stop: stop(). If a call is scheduled it is cancelled and
 * the start Deferred fires now; if fn's Deferred is pending, the start
 * Deferred fires when that completes.
 * Errors: TW_EINVAL, TW_ENOTRUNNING (Twisted asserts).
 */
TW_EXTERN int tw_looping_call_stop(tw_looping_call *lc);

/*
 * tw_looping_call_reset: reset(): restart the interval from now.
 * Errors: TW_EINVAL, TW_ENOTRUNNING, TW_ENOMEM, TW_EWRONGTHREAD (the
 * reactor's clock off its loop thread).
 */
TW_EXTERN int tw_looping_call_reset(tw_looping_call *lc);

/* tw_looping_call_running: 1 while running, 0 when not (0 also for NULL: a
 * yes/no, never a code). */
TW_EXTERN int tw_looping_call_running(const tw_looping_call *lc);

/* tw_looping_call_interval: the interval given to start (NaN for NULL). */
TW_EXTERN double tw_looping_call_interval(const tw_looping_call *lc);

/*
 * tw_looping_call_free: stop it if running (the start Deferred fires as with
 * stop), release everything. Freeing from inside fn, or while fn's Deferred
 * is pending, completes once fn returns / that Deferred fires (then the
 * start Deferred fires too). arg_free(arg) runs when it is finally freed.
 * NULL is ignored.
 */
TW_EXTERN void tw_looping_call_free(tw_looping_call *lc);

#ifdef __cplusplus
}
#endif
#endif /* TWUV_TASK_H */
