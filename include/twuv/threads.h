/*
 * twuv/threads.h - the reactor's threads: IReactorThreads (the reactor's
 * thread pool, callInThread) and twisted.internet.threads (deferToThread,
 * callMultipleInThread, blockingCallFromThread). reactor.resolve is in
 * resolve.h.
 *
 * The rule of "Using Threads in Twisted" holds (docs/threading.md): code
 * that blocks runs on pool threads; everything that touches the reactor or
 * a Deferred runs on the loop thread. The functions here are loop thread
 * only, except tw_blocking_call_from_thread, which is for other threads.
 *
 * Where Twisted hangs, twuv answers:
 *   - tw_blocking_call_from_thread on the loop thread: TW_EDEADLK at once;
 *   - a reactor that has stopped, crashed or is freed: TW_ESHUTDOWN (waiting
 *     callers are released as soon as the reactor stops running; a call
 *     made before the reactor's first run waits for it, as in Twisted);
 *   - a timeout: TW_ETIMEDOUT, and the Deferred is cancelled;
 *   - cancelling a tw_defer_to_thread Deferred: work that has not started
 *     never runs; work already running is abandoned (its late result is
 *     released) and the Deferred fails with CancelledError at once
 *     (Twisted #5058);
 *   - work submitted to a stopped pool: an error, not a silent drop.
 */
#ifndef TWUV_THREADS_H
#define TWUV_THREADS_H

#include "common.h"
#include "defer.h"
#include "reactor.h"
#include "threadpool.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- IReactorThreads ------------------------------------------------------- */

/*
 * tw_reactor_get_thread_pool: reactor.getThreadPool(): the reactor's pool,
 * created on first use - ThreadPool(0, 10, "tw-pool"), so threads are named
 * tw-pool-N; or, for a reactor made with TW_REACTOR_UV_POOL, a pool on
 * libuv's own thread pool (tw_threadpool_new_uv; see threadpool.h for the
 * trade-offs). It is started when the reactor runs (at once if it already
 * does) and stopped - every thread joined - in the "during shutdown" phase,
 * after which the reactor forgets it (a later call creates a new one, which
 * starts only if the reactor runs again). Owned by the reactor: do not stop
 * or free it yourself (from another thread than the loop's, stop and free
 * return TW_EWRONGTHREAD).
 * Returns NULL when out of memory, for NULL, off the loop thread, or once
 * the reactor has stopped for good.
 */
TW_EXTERN tw_threadpool *tw_reactor_get_thread_pool(tw_reactor *r);

/*
 * tw_reactor_call_in_thread: reactor.callInThread(f): run fn(arg) on the
 * reactor's pool (tw_threadpool_call_in_thread). Before the reactor runs,
 * the work waits and runs once it does.
 * Errors: TW_EINVAL, TW_ENOMEM, TW_EWRONGTHREAD, TW_ESHUTDOWN (the reactor
 * has stopped for good: Twisted would keep the work for ever).
 */
TW_EXTERN int tw_reactor_call_in_thread(tw_reactor *r, tw_call_fn fn,
                                        void *arg, tw_free_fn arg_free);

/*
 * tw_reactor_suggest_thread_pool_size: suggestThreadPoolSize(size): set the
 * reactor pool's maximum (creating the pool if needed).
 * Errors: TW_EINVAL (size below the pool's minimum, or above 1024),
 * TW_ENOMEM, TW_EWRONGTHREAD, TW_ESHUTDOWN, TW_ENOTSUP (libuv's pool).
 */
TW_EXTERN int tw_reactor_suggest_thread_pool_size(tw_reactor *r, int size);

/* ---- twisted.internet.threads ---------------------------------------------- */

/*
 * tw_defer_to_thread_pool: deferToThreadPool(reactor, threadpool, f): run
 * fn(arg) on a thread of tp; *out receives a Deferred (one reference, the
 * caller's) that fires on the loop thread with what fn returned: a value or
 * a failure (a Deferred returned by fn is refused with a TW_TYPE_ERROR
 * failure). arg_free(arg) runs on the pool thread right after fn (or, if
 * the work never runs, when that is known), before the Deferred fires.
 * Moving arg into the result: when fn returns arg itself as its value
 * (tw_result_value(arg, ...)), arg moves into the result and arg_free does
 * not run then; a value without a destructor gets arg_free as its
 * destructor, so the result frees arg when it goes.
 * Cancelling the Deferred: before fn started, fn never runs and the
 * Deferred fails with CancelledError; while fn runs, the Deferred fails
 * with CancelledError at once and fn's result is released when it comes.
 * So the Deferred's callbacks may run while fn still runs: arg belongs to
 * the work until arg_free, and must not be freed by those callbacks.
 * tp must outlive the work: while jobs on a pool that is not the reactor's
 * are in flight, tw_reactor_free returns TW_EBUSY.
 * Memory: the job and its Deferred are one 448-byte node from the loop
 * thread's cache (no allocation per job); a reference kept after the
 * Deferred fired keeps that node, and the 16 KiB block it was cut from,
 * until it is released.
 * A pool that can make no thread for the job (threadpool.h, "No thread")
 * refuses it with that error, or - if the job was already accepted, e.g.
 * held until the reactor runs - the Deferred fails with it (arg_free runs
 * instead of fn); it never stays unfired.
 * Errors: TW_EINVAL (NULL r, tp, fn or out), TW_ENOMEM, TW_EWRONGTHREAD,
 * TW_EALREADYQUIT (tp stopped), TW_ESHUTDOWN (reactor stopped for good),
 * a thread's creation error (above).
 * On error nothing runs and arg_free is not called.
 */
TW_EXTERN int tw_defer_to_thread_pool(tw_reactor *r, tw_threadpool *tp,
                                      tw_result_fn fn, void *arg,
                                      tw_free_fn arg_free, tw_deferred **out);

/*
 * tw_defer_to_thread: deferToThread(f): tw_defer_to_thread_pool on the
 * reactor's pool (created on first use).
 */
TW_EXTERN int tw_defer_to_thread(tw_reactor *r, tw_result_fn fn, void *arg,
                                 tw_free_fn arg_free, tw_deferred **out);

/* One call for tw_call_multiple_in_thread. */
typedef struct tw_thread_call {
  tw_call_fn fn;
  void *arg;
  tw_free_fn arg_free;
} tw_thread_call;

/*
 * tw_call_multiple_in_thread: callMultipleInThread([(f, a, kw), ...]): run
 * the n calls in order, in one pool thread. The array is copied. If a call
 * reports a failure (tw_work_fail), it is logged and the remaining calls are
 * skipped, as in Twisted; every call's arg_free still runs exactly once.
 * Errors: TW_EINVAL (NULL r or calls with n > 0, a NULL fn), TW_ENOMEM,
 * TW_EWRONGTHREAD, TW_ESHUTDOWN; nothing runs then.
 */
TW_EXTERN int tw_call_multiple_in_thread(tw_reactor *r,
                                         const tw_thread_call *calls,
                                         size_t n);

/*
 * tw_blocking_call_from_thread: blockingCallFromThread(reactor, f): from a
 * thread that is not the loop thread, run fn(arg) on the loop thread and
 * wait for its result: a value or failure, or - when fn returns a Deferred -
 * that Deferred's result. On 0, *result holds it and the caller owns it
 * (release it with tw_result_release); it is never reported as unhandled.
 * timeout is in seconds (INFINITY: no limit).
 * Before the reactor's first run, the call is queued like
 * tw_reactor_call_from_thread and waits: fn runs in the first iteration
 * (of tw_reactor_run, tw_reactor_start_running's loop or
 * tw_reactor_iterate), as Twisted's call waits for reactor.run(). If the
 * reactor is freed without running, the caller is released with
 * TW_ESHUTDOWN and fn never runs.
 * Errors (*result is then None):
 *   TW_EDEADLK    called on the loop thread (Twisted hangs for ever)
 *   TW_ESHUTDOWN  the reactor has been stopped (tw_reactor_stop called),
 *                 crashed (until it runs again) or is being freed, or that
 *                 happens before the result arrives (the caller is
 *                 released at once; fn never runs if it had not started)
 *   TW_ETIMEDOUT  no result in time; the Deferred is cancelled, and a late
 *                 result is released
 *   TW_ECANCELLED fn returned a Deferred that was then freed without firing
 *                 (nothing held it): no result can ever come
 *   TW_EINVAL     NULL r, fn or result; timeout negative or NaN
 *   TW_ENOMEM
 *   libuv's code  the call's mutex or condition variable could not be made
 * Thread-safe (that is its purpose). The reactor must not be freed before
 * the call returns (tw_reactor_free waits for released callers to leave).
 */
TW_EXTERN int tw_blocking_call_from_thread(tw_reactor *r, tw_result_fn fn,
                                           void *arg, tw_result *result,
                                           double timeout);

#ifdef __cplusplus
}
#endif
#endif /* TWUV_THREADS_H */
