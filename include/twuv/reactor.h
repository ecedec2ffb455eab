/*
 * twuv/reactor.h - the reactor: Twisted's IReactorCore, IReactorTime and
 * callFromThread, on a libuv loop.
 *
 * A reactor runs on one uv_loop_t: its own, or one you already have (a libuv
 * program can host a reactor without handing over its loop). It uses four
 * libuv handles on that loop - one uv_async_t (wake-ups from other threads),
 * one uv_timer_t (the earliest delayed call), one uv_check_t and one
 * uv_idle_t (to run its work once per loop iteration) - whatever the number
 * of delayed calls or cross-thread calls. Raw libuv handles may share the
 * loop: get it with tw_reactor_loop.
 *
 * One reactor iteration is Twisted's runUntilCurrent, run once per libuv
 * loop iteration, after the poll phase:
 *   1. the calls queued by tw_reactor_call_from_thread before this iteration,
 *      in FIFO order (calls queued meanwhile wait for the next iteration);
 *   2. the delayed calls now due, in deadline order, ties as clock.h says
 *      (calls created meanwhile - even with delay 0 - wait for the next
 *      iteration);
 *   3. if tw_reactor_stop was called: the "shutdown" system event.
 *
 * ---- Threads (see docs/threading.md) ---------------------------------------
 * A reactor belongs to its loop thread: the thread that created it, for the
 * reactor's whole life (tw_reactor_run and tw_reactor_start_running refuse
 * any other thread with TW_EWRONGTHREAD, in every build; Twisted makes
 * whichever thread starts the reactor its I/O thread). To run a reactor on
 * a thread of its own, create it on that thread. Only the functions marked
 * "Thread-safe" below may be called from other threads; all others are
 * "loop thread only". In every build, every loop-thread-only function
 * returns TW_EWRONGTHREAD when called from another thread, having done
 * nothing (functions returning a pointer or void return NULL / do nothing;
 * tw_reactor_seconds returns NaN). The check is a pthread_self() compare.
 *
 * ---- Running, stopping, hosting ---------------------------------------------
 * tw_reactor_run runs the loop until the reactor stops (tw_reactor_stop, a
 * signal with TW_REACTOR_SIGNALS, or tw_reactor_crash). Twisted's semantics:
 * stop is asynchronous, shutdown triggers fire at the end of the next
 * iteration, and a stopped reactor cannot run again (a crashed one can).
 *
 * Hosting: when your program runs the loop itself, call
 * tw_reactor_start_running instead of tw_reactor_run and keep calling
 * uv_run as you always do; the reactor's handles do its work. While the
 * reactor is started, one of its handles is referenced, so uv_run(DEFAULT)
 * keeps going until the reactor stops, as reactor.run() would; once stopped
 * (or never started), the reactor's handles never keep your loop alive.
 */
#ifndef TWUV_REACTOR_H
#define TWUV_REACTOR_H

#include <stdint.h>

#include "clock.h"
#include "common.h"
#include "defer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tw_reactor tw_reactor;

/* Flags of tw_reactor_new. */
/* Stop the reactor on SIGINT and SIGTERM while it runs (as Twisted's
 * reactor.run() does by default); installed in the "during startup" phase. */
#define TW_REACTOR_SIGNALS 0x1u
/* The reactor's thread pool (threads.h) runs on libuv's own pool instead of
 * threads of its own: one pool for fs, DNS and blocking work, sized by
 * UV_THREADPOOL_SIZE; see tw_threadpool_new_uv for the trade-offs. */
#define TW_REACTOR_UV_POOL 0x2u

/*
 * tw_reactor_new: a new reactor on loop, or on a loop of its own when loop
 * is NULL (created now, closed by tw_reactor_free). flags: 0, or any of
 * TW_REACTOR_SIGNALS and TW_REACTOR_UV_POOL. The calling thread becomes the
 * reactor's loop thread, for good.
 * Errors: TW_EINVAL (out NULL, unknown flags), TW_ENOMEM, libuv errors from
 * uv_loop_init. On error *out is NULL.
 */
TW_EXTERN int tw_reactor_new(tw_reactor **out, struct uv_loop_s *loop,
                             unsigned flags);

/*
 * tw_reactor_default: the process-wide reactor (Twisted's global reactor),
 * created on first use on libuv's default loop (uv_default_loop()). NULL
 * when it cannot be created (out of memory). Thread-safe (creation happens
 * once); the reactor itself then belongs to the thread that created it.
 * tw_reactor_free on it is allowed; the next call creates a new one.
 */
TW_EXTERN tw_reactor *tw_reactor_default(void);

/*
 * tw_reactor_free: release the reactor. Not while it runs (TW_EBUSY: stop it
 * first; in particular not from inside one of its callbacks), and not while
 * work that will call back into it is in flight elsewhere (TW_EBUSY):
 * tw_defer_to_thread_pool jobs on a pool the reactor does not own (stop that
 * pool first), or tw_reactor_resolve lookups (their callbacks come through
 * the loop: run it, e.g. with tw_reactor_iterate, until free succeeds).
 * On TW_EBUSY nothing has changed.
 * Everything still pending is handed to its cleanup path: queued
 * call_from_thread calls, pending delayed calls and unrun triggers are not
 * run, but their arg_free runs; the reactor's thread pool is stopped (its
 * threads joined) and work it never ran gets its cleanup; Deferreds of
 * tw_defer_to_thread whose results can no longer be delivered fail with
 * TW_SHUTDOWN_ERROR. Threads blocked in tw_blocking_call_from_thread are
 * released (TW_ESHUTDOWN) and waited for.
 * Other threads must have stopped calling into the reactor before free
 * starts: a call_from_thread racing with free may touch freed memory.
 * Own loop: closed here, synchronously (libuv handles you added to it and
 * left open are reported through the log hook, and the loop is then left
 * allocated rather than freed under them). Hosted loop: the reactor's
 * handles are closed, and its memory is released by their close callbacks,
 * so run your loop (uv_run(loop, UV_RUN_NOWAIT) suffices) before
 * uv_loop_close.
 * While free runs, the arg_frees it runs may not use the reactor for new
 * work: tw_reactor_free returns TW_EBUSY, tw_reactor_call_later (and
 * tw_clock_call_later on its clock) and tw_reactor_call_from_thread
 * TW_ESHUTDOWN, the trigger functions TW_EINVAL.
 * Returns 0, TW_EINVAL (NULL), TW_EBUSY, TW_EWRONGTHREAD.
 */
TW_EXTERN int tw_reactor_free(tw_reactor *r);

/* tw_reactor_loop: the reactor's uv_loop_t, for raw libuv. Thread-safe. */
TW_EXTERN struct uv_loop_s *tw_reactor_loop(tw_reactor *r);

/*
 * tw_reactor_clock: the reactor's tw_clock (IReactorTime), for
 * tw_deferred_add_timeout, tw_defer_later, tw_looping_call. Valid until
 * tw_reactor_free. Thread-safe (the clock itself is loop thread only).
 */
TW_EXTERN tw_clock *tw_reactor_clock(tw_reactor *r);

/*
 * tw_reactor_run: reactor.run(): fire the "startup" event (before triggers
 * with running == 0; then running becomes 1; during; after, which includes
 * tw_reactor_call_when_running calls), then run the loop until the reactor
 * is stopped or crashed. Only on the reactor's loop thread (the thread that
 * created it).
 * Returns 0 once stopped/crashed, or TW_EINVAL, TW_EALREADYRUNNING (already
 * started: Twisted's ReactorAlreadyRunning), TW_ENOTRESTARTABLE (stopped
 * before: ReactorNotRestartable), TW_EWRONGTHREAD (another thread), TW_EBUSY
 * (inside tw_reactor_iterate or a callback). Do not call it from inside a callback of
 * another reactor or libuv handle on the same loop (uv_run is not
 * re-entrant).
 */
TW_EXTERN int tw_reactor_run(tw_reactor *r);

/*
 * tw_reactor_start_running: startRunning(): fire the "startup" event as run
 * does, but return at once; the caller runs the loop (hosted mode).
 * Same errors as tw_reactor_run.
 */
TW_EXTERN int tw_reactor_start_running(tw_reactor *r);

/*
 * tw_reactor_stop: reactor.stop(): asynchronous. The "shutdown" event fires
 * at the end of the next reactor iteration (before triggers, which may return
 * Deferreds that delay the rest; during, where the reactor stops running;
 * after); then tw_reactor_run returns. A stopped reactor cannot be run again.
 * Errors: TW_ENOTRUNNING (never started, already stopping or stopped:
 * Twisted's ReactorNotRunning), TW_EINVAL, TW_EWRONGTHREAD (from another
 * thread use tw_reactor_call_from_thread with a function that calls stop).
 */
TW_EXTERN int tw_reactor_stop(tw_reactor *r);

/*
 * tw_reactor_crash: reactor.crash(): stop at the end of this loop iteration
 * without firing shutdown triggers; the reactor may be run again.
 * Returns 0, TW_EINVAL, TW_EWRONGTHREAD.
 */
TW_EXTERN int tw_reactor_crash(tw_reactor *r);

/*
 * tw_reactor_running: reactor.running: 1 from the "during startup" phase
 * until the "during shutdown" phase (or a crash), else 0. A yes/no, never a
 * code: 0 also for NULL and when called off the loop thread (where the
 * answer could not be read safely), so if (tw_reactor_running(r)) is never
 * true on a misuse.
 */
TW_EXTERN int tw_reactor_running(tw_reactor *r);

/*
 * tw_reactor_iterate: reactor.iterate(delay): run one reactor iteration and
 * one libuv loop iteration, waiting at most delay seconds for events (0: do
 * not block; INFINITY: wait until there is an event - a delayed call due, a
 * call_from_thread, any libuv handle's event -, for ever if nothing can
 * come). The calls woken for run on the next iterate. For tests and for
 * programs that drive the loop step by step.
 * Errors: TW_EINVAL (NULL; delay negative or NaN), TW_EBUSY (inside
 * tw_reactor_run or a callback), TW_EWRONGTHREAD.
 */
TW_EXTERN int tw_reactor_iterate(tw_reactor *r, double delay);

/*
 * tw_reactor_in_loop_thread: threadable.isInIOThread(): 1 when called on the
 * reactor's loop thread, else 0 (0 for NULL). Thread-safe.
 */
TW_EXTERN int tw_reactor_in_loop_thread(tw_reactor *r);

/* ---- IReactorTime --------------------------------------------------------- */

/*
 * tw_reactor_seconds: reactor.seconds(): the reactor clock's time: monotonic
 * seconds (uv_hrtime; arbitrary origin), NOT the wall clock Twisted uses.
 * NaN for NULL or off the loop thread.
 */
TW_EXTERN double tw_reactor_seconds(tw_reactor *r);

/*
 * tw_reactor_call_later: reactor.callLater: tw_clock_call_later on the
 * reactor's clock (see clock.h for the ordering rules, arg_free and out).
 * The call runs when due on a running (or starting) reactor; a delay-0 call
 * made from a reactor callback runs on the next iteration, never in the same
 * pass. Errors: TW_EINVAL, TW_ENOMEM, TW_EWRONGTHREAD, TW_ESHUTDOWN (from
 * an arg_free run by tw_reactor_free); arg_free is then not called.
 */
TW_EXTERN int tw_reactor_call_later(tw_reactor *r, double delay, tw_call_fn fn,
                                    void *arg, tw_free_fn arg_free,
                                    tw_delayed_call **out);

/* ---- IReactorCore: system events --------------------------------------------- */

typedef enum tw_phase {
  TW_PHASE_BEFORE = 0,
  TW_PHASE_DURING = 1,
  TW_PHASE_AFTER = 2
} tw_phase;

/* Identifies a trigger for removal. 0 is never a valid id. */
typedef uint64_t tw_trigger_id;

/*
 * A trigger's function receives arg and returns a result: a value (released
 * at once), a failure (logged as "While calling system event trigger
 * handler" and released; the other triggers still run), or - in the before
 * phase - a Deferred: the during phase then waits until every such Deferred
 * has fired (successfully or not).
 */

/*
 * tw_reactor_add_system_event_trigger: addSystemEventTrigger(phase,
 * event_type, f). Any event type string works ("startup", "shutdown", or your
 * own, fired with tw_reactor_fire_system_event); it is copied. Triggers run
 * once each, FIFO within a phase. arg_free(arg) runs once after the trigger
 * ran, or when it is removed or dropped (reactor freed). *id (may be NULL)
 * receives the trigger's id.
 * Errors: TW_EINVAL (NULL r, fn or event_type; phase not one of the three:
 * Twisted's KeyError), TW_ENOMEM, TW_EWRONGTHREAD; arg_free is then not
 * called.
 */
TW_EXTERN int tw_reactor_add_system_event_trigger(tw_reactor *r,
                                                  tw_phase phase,
                                                  const char *event_type,
                                                  tw_result_fn fn, void *arg,
                                                  tw_free_fn arg_free,
                                                  tw_trigger_id *id);

/*
 * tw_reactor_remove_system_event_trigger: removeSystemEventTrigger(id): the
 * trigger will not run; its arg_free runs now.
 * Errors: TW_ENOENT (unknown id, already removed, or already run: Twisted's
 * ValueError), TW_EINVAL, TW_EWRONGTHREAD.
 */
TW_EXTERN int tw_reactor_remove_system_event_trigger(tw_reactor *r,
                                                     tw_trigger_id id);

/*
 * tw_reactor_fire_system_event: fireSystemEvent(event_type): run the event's
 * before triggers, then (at once, or once the Deferreds they returned have
 * fired) its during and after triggers. An event with no triggers does
 * nothing. Firing "shutdown" on a reactor that never ran is allowed (as in
 * Twisted). Firing "shutdown" by hand runs the reactor's own during-shutdown
 * trigger (a running reactor crashes), and triggers run once; where Twisted
 * then never returns from a later run + stop, twuv crashes the reactor at
 * the end of that stop's shutdown event, so run still returns.
 * Errors: TW_EINVAL, TW_EWRONGTHREAD.
 */
TW_EXTERN int tw_reactor_fire_system_event(tw_reactor *r,
                                           const char *event_type);

/*
 * tw_reactor_call_when_running: callWhenRunning(f): if the reactor is
 * running, call fn(arg) now (then arg_free) and set *id to 0; otherwise add
 * an "after startup" trigger and set *id to its id (id may be NULL).
 * Errors as tw_reactor_add_system_event_trigger.
 */
TW_EXTERN int tw_reactor_call_when_running(tw_reactor *r, tw_result_fn fn,
                                           void *arg, tw_free_fn arg_free,
                                           tw_trigger_id *id);

/* ---- IReactorFromThreads ----------------------------------------------------- */

/*
 * tw_reactor_call_from_thread: callFromThread(f): run fn(arg) on the loop
 * thread in the next reactor iteration, then arg_free(arg). Thread-safe and
 * lock-free: the only reactor function that may be called from any thread
 * (also from the loop thread itself; not from a signal handler, as it
 * allocates). Calls from one thread run in the order they were made. Calls
 * made before the reactor runs are run once it runs.
 * Nothing is lost: once a reactor has stopped for good (its shutdown event
 * completed after tw_reactor_stop) or is being freed, calls are refused with
 * TW_ESHUTDOWN (Twisted silently queues them forever); calls accepted but
 * not run by then have their arg_free run instead (on the loop thread).
 * Errors: TW_EINVAL (NULL r or fn), TW_ENOMEM, TW_ESHUTDOWN; arg_free is
 * then not called.
 */
TW_EXTERN int tw_reactor_call_from_thread(tw_reactor *r, tw_call_fn fn,
                                          void *arg, tw_free_fn arg_free);

/* ---- task.react and stopping helpers -------------------------------------- */

/*
 * The main function of tw_react: task.react's main(reactor, *argv). Called on
 * the loop thread before the reactor runs; returns a new reference to the
 * Deferred whose firing ends the program (tw_react takes it), or NULL for
 * "main failed" (Twisted: main raised).
 */
typedef tw_deferred *(*tw_react_fn)(tw_reactor *reactor, int argc,
                                    char **argv);

/*
 * tw_react: task.react(main, argv) on the default reactor: call
 * main(reactor, argc, argv), run the reactor until the Deferred main returned
 * fires, stop it (once, and only if nothing else is stopping it already) and
 * return the exit code: 0 when the Deferred succeeded; for a failure of type
 * TW_SYSTEM_EXIT its code & 0xff; for any other failure 1, after logging it
 * ("main function encountered error"); 1 when main returned NULL (logged; the
 * reactor is not run). A reactor stopped by something else ends the run too,
 * with code 0 unless the Deferred failed meanwhile. Twisted's react calls
 * sys.exit(code); tw_react returns it: `return tw_react(main, argc, argv);`
 * from C's main is the port. The default reactor is freed before returning
 * (a later tw_reactor_default makes a new one), and uv_default_loop() is
 * closed unless handles of the program's own are still open on it.
 * Call it on the thread that may run the default reactor, not from inside a
 * reactor callback.
 * Errors (negative, distinct from exit codes): TW_EINVAL (main NULL, argc
 * negative, argv NULL with argc > 0), TW_ENOMEM, TW_EALREADYRUNNING,
 * TW_ENOTRESTARTABLE (the reactor already ran and stopped), TW_EWRONGTHREAD.
 * A reactor already running is refused before main is called; with
 * TW_ENOTRESTARTABLE main was called, and a failure its Deferred held is
 * logged. After tw_react returns, main's Deferred no longer touches the
 * reactor (firing it later only logs a failure), so a crashed or refused run
 * leaves nothing behind that acts later.
 */
TW_EXTERN int tw_react(tw_react_fn main_fn, int argc, char **argv);

/*
 * tw_react_on: tw_react on reactor r (Twisted's _reactor argument), which it
 * runs but does not free. Same results and errors.
 */
TW_EXTERN int tw_react_on(tw_reactor *r, tw_react_fn main_fn, int argc,
                          char **argv);

/*
 * tw_reactor_stop_call: reactor.stop as a ready tw_call_fn, arg being the
 * reactor: tw_reactor_call_later(r, 5.0, tw_reactor_stop_call, r, NULL, NULL).
 * A reactor that is not running (or already stopping) is left alone, without
 * error. Loop thread only, as tw_reactor_stop.
 */
TW_EXTERN void tw_reactor_stop_call(void *reactor);

/*
 * tw_reactor_stop_when_fired: d.addBoth(lambda _: reactor.stop()) in one
 * call: when d fires, the reactor is stopped (at once if it runs, otherwise as
 * soon as it does: a Deferred that fired before run does not leave run
 * waiting for ever). Unlike the Twisted idiom, the result is passed on
 * unchanged, so a failure nobody handles is still reported as unhandled when
 * d goes, instead of being swallowed. The pair refers to r: d must fire, or
 * be released, before r is freed.
 * Errors: TW_EINVAL (NULL), TW_ENOMEM, TW_EWRONGTHREAD. Loop thread only.
 */
TW_EXTERN int tw_reactor_stop_when_fired(tw_reactor *r, tw_deferred *d);

#ifdef __cplusplus
}
#endif
#endif /* TWUV_REACTOR_H */
