/*
 * twuv/clock.h - time: the clock interface (Twisted's IReactorTime), delayed
 * calls (IDelayedCall), and the manual clock (task.Clock).
 *
 * A tw_clock tells the time and schedules calls. Two kinds exist: the
 * reactor's (tw_reactor_clock, real time on the loop) and the manual clock
 * (tw_clock_new_manual: time moves only when tw_clock_advance says so, which
 * makes every timer test deterministic). Everything that needs time -
 * tw_deferred_add_timeout, tw_defer_later, tw_looping_call - takes a clock,
 * never a reactor.
 *
 * Times are seconds as doubles. Which clock they are measured on: the manual
 * clock starts at 0.0; the reactor's clock is monotonic (uv_hrtime: seconds
 * since an arbitrary point, unaffected by wall-clock changes), unlike
 * Twisted's time.time().
 *
 * Threads: a clock and its delayed calls belong to one thread (the reactor's
 * loop thread for the reactor's clock). Using the reactor's clock off its
 * loop thread returns TW_EWRONGTHREAD (in every build).
 */
#ifndef TWUV_CLOCK_H
#define TWUV_CLOCK_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tw_clock tw_clock;
typedef struct tw_delayed_call tw_delayed_call;

/*
 * tw_clock_seconds: the clock's current time (IReactorTime.seconds).
 * Returns NaN for NULL.
 */
TW_EXTERN double tw_clock_seconds(tw_clock *clock);

/*
 * tw_clock_call_later: call fn(arg) delay seconds from now (callLater).
 *
 * fn runs once, on the clock's thread, unless cancelled first. arg_free(arg)
 * (may be NULL) runs exactly once: after fn returns, or on cancel, or when
 * the clock is freed with the call still pending.
 *
 * Calls due at the same time run in task.Clock's order, on both clocks
 * (Twisted's reactor promises no order; tests/test_clock.c replays programs
 * recorded on Twisted 22.4's task.Clock): in the order they were made,
 * except for calls moved by tw_delayed_call_reset / _delay. task.Clock
 * stable-sorts its calls by time at each callLater and before each call it
 * runs, and reset/delay do not sort; so a call moved sooner onto a time goes
 * behind the calls already due then, a call moved later in front of them,
 * and calls moved onto the same time between two such sorts keep their
 * previous order. E.g. A = call_later(2), B = call_later(1), reset(A, 1)
 * (or delay(A, -1)): B runs, then A. (Out of memory while recording a move,
 * the moved call is placed at once, which can differ from task.Clock when
 * it moves again before the next sort.) A call made from
 * inside a running call is never run in the same pass on the reactor's clock
 * (even with delay 0: it runs on the next loop iteration); on the manual
 * clock it runs within the same tw_clock_advance if it is due, as task.Clock
 * does.
 *
 * out: when not NULL, receives a new reference to the delayed call (release
 * it with tw_delayed_call_unref); pass NULL if you will never cancel or
 * inspect it.
 *
 * Errors (nothing is scheduled, arg_free is not called):
 *   TW_EINVAL        clock or fn NULL, delay negative, NaN or infinite
 *                    (Twisted asserts; its task.Clock accepts negatives),
 *                    or the deadline (now + delay) overflows to infinity
 *   TW_ENOMEM
 *   TW_EWRONGTHREAD  reactor clock off its loop thread
 *   TW_ESHUTDOWN     the clock is being freed (from an arg_free run by
 *                    tw_clock_free or tw_reactor_free)
 *
 * The reactor's clock lives as long as its reactor: do not use the pointer
 * after tw_reactor_free (delayed-call handles stay valid while referenced).
 */
TW_EXTERN int tw_clock_call_later(tw_clock *clock, double delay, tw_call_fn fn,
                                  void *arg, tw_free_fn arg_free,
                                  tw_delayed_call **out);

/*
 * tw_clock_new_manual: Twisted's task.Clock: time starts at 0.0 and moves only
 * through tw_clock_advance. Returns NULL when out of memory.
 */
TW_EXTERN tw_clock *tw_clock_new_manual(void);

/*
 * tw_clock_advance: Clock.advance(amount): move time forward, then run every
 * call now due, in time order (ties: see tw_clock_call_later) - including
 * calls they schedule that are due by then. Returns the number of calls run, or TW_EINVAL (not a
 * manual clock, amount negative, NaN or infinite, or the clock's time would
 * overflow to infinity: time stays at most DBL_MAX; nothing changes), or
 * TW_ESHUTDOWN (the clock was freed by one of the calls this advance runs).
 */
TW_EXTERN int tw_clock_advance(tw_clock *clock, double amount);

/*
 * tw_clock_pump: Clock.pump(timings): tw_clock_advance for each of the n
 * amounts in order. Returns the total number of calls run, or TW_EINVAL
 * (checked before anything advances, the sum included). A call that frees
 * the clock ends the pump.
 */
TW_EXTERN int tw_clock_pump(tw_clock *clock, const double *timings, size_t n);

/*
 * tw_clock_pending: the number of pending (not yet run, not cancelled) calls
 * on any clock; 0 for NULL.
 */
TW_EXTERN size_t tw_clock_pending(tw_clock *clock);

/*
 * tw_clock_get_delayed_calls: getDelayedCalls(): store up to n borrowed
 * pointers to the pending calls, in the order they will run, into out;
 * return how many are pending (which may exceed n). The pointers are valid
 * until the clock runs or cancels them; take a reference to keep one.
 */
TW_EXTERN size_t tw_clock_get_delayed_calls(tw_clock *clock,
                                            tw_delayed_call **out, size_t n);

/*
 * tw_clock_free: free a manual clock. Pending calls are dropped without
 * running: their arg_free runs, and their handles (if still referenced)
 * report inactive and TW_EALREADYCANCELLED. The reactor's clock is freed with
 * the reactor: passing it here is ignored. NULL is ignored.
 * From inside one of the clock's own calls (while tw_clock_advance or
 * tw_clock_pump runs them): safe. The pending calls are dropped at once as
 * above, call_later and advance on the clock return TW_ESHUTDOWN from then
 * on, and the memory is released when the outermost advance/pump returns.
 */
TW_EXTERN void tw_clock_free(tw_clock *clock);

/* ---- Delayed calls (IDelayedCall) ---------------------------------------- */

/* tw_delayed_call_ref / _unref: references to the handle. NULL-safe. */
TW_EXTERN tw_delayed_call *tw_delayed_call_ref(tw_delayed_call *dc);
TW_EXTERN void tw_delayed_call_unref(tw_delayed_call *dc);

/*
 * tw_delayed_call_cancel: cancel a pending call: fn will not run, arg_free
 * runs now. Errors: TW_EALREADYCANCELLED, TW_EALREADYCALLED (checked in that
 * order; a call cancelling itself from inside fn gets TW_EALREADYCALLED, as
 * "called" is set before fn runs), TW_EINVAL for NULL, TW_EWRONGTHREAD.
 */
TW_EXTERN int tw_delayed_call_cancel(tw_delayed_call *dc);

/*
 * tw_delayed_call_reset: reschedule to seconds_from_now from now (sooner or
 * later). Same errors as cancel, plus TW_EINVAL for a negative, NaN or
 * infinite delay, or a new time that overflows to infinity (unchanged).
 * Where the call then runs among calls due at the same time: see
 * tw_clock_call_later.
 */
TW_EXTERN int tw_delayed_call_reset(tw_delayed_call *dc,
                                    double seconds_from_now);

/*
 * tw_delayed_call_delay: move the call seconds_later later (negative: sooner).
 * Same errors as reset (seconds_later must be finite, and so must the new
 * time: TW_EINVAL, unchanged).
 */
TW_EXTERN int tw_delayed_call_delay(tw_delayed_call *dc, double seconds_later);

/*
 * tw_delayed_call_active: 1 while pending, 0 once it started running or was
 * cancelled (or for NULL).
 */
TW_EXTERN int tw_delayed_call_active(const tw_delayed_call *dc);

/*
 * tw_delayed_call_called / _cancelled: 1 once started running / cancelled.
 * 0 otherwise and for NULL.
 */
TW_EXTERN int tw_delayed_call_called(const tw_delayed_call *dc);
TW_EXTERN int tw_delayed_call_cancelled(const tw_delayed_call *dc);

/*
 * tw_delayed_call_get_time: when the call runs (or ran, or would have), on
 * its clock's time scale (getTime). NaN for NULL.
 */
TW_EXTERN double tw_delayed_call_get_time(const tw_delayed_call *dc);

/*
 * tw_delayed_call_compare: DelayedCall's ordering (__lt__ etc. compare the
 * scheduled time only): negative, 0 or positive as a's time is before, equal
 * to or after b's. NULL sorts first. Use pointer equality for ==, as Twisted
 * does.
 */
TW_EXTERN int tw_delayed_call_compare(const tw_delayed_call *a,
                                      const tw_delayed_call *b);

#ifdef __cplusplus
}
#endif
#endif /* TWUV_CLOCK_H */
