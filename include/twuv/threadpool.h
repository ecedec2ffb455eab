/*
 * twuv/threadpool.h - Twisted's twisted.python.threadpool.ThreadPool, built
 * as Twisted builds it: on a team (worker.h) of thread workers whose
 * coordinator is the lock-free serial worker.
 *
 * Differences from Twisted, all in the direction of "nothing is silently
 * dropped, nothing asserts":
 *   - invalid sizes return TW_EINVAL instead of an AssertionError;
 *   - work submitted after stop is refused with TW_EALREADYQUIT instead of
 *     being dropped without a word;
 *   - work that can never run (no thread is left to run it when the pool
 *     stops or is freed: it never started, or may have no thread) goes
 *     through its cleanup path (arg_free; on_result gets a CancelledError
 *     failure) instead of being abandoned;
 *   - a thread that cannot be created (no memory, or the system refuses
 *     it) never leaves accepted work waiting for ever: with no thread left
 *     to run it, the submission fails with that error (as Twisted's
 *     callInThread raises it), or work already accepted fails with it
 *     (see "No thread" below); Twisted leaves such work queued until some
 *     later call happens to start a thread;
 *   - every function is thread-safe (Twisted documents callInThread and stop
 *     as single-threaded; free and the uv pool have their own rules below),
 *     and stop/free called from the pool's own work return TW_EDEADLK
 *     instead of deadlocking in join;
 *   - start after stop is refused (Twisted's restart is broken).
 *
 * Threads are named "<name>-N" (N counts from 1; truncated to 15 characters
 * by the platform). docs/threadpool.md describes the pool's structure, the
 * statistics and the uv pool's trade-offs.
 *
 * No thread. Threads are made on demand; making one can fail (TW_ENOMEM,
 * or the UV_E* code of the thread's creation, logged at TW_LOG_WARN).
 * While the pool has other threads, the work waits for them, and the next
 * submission that finds none idle tries again. When it has none at all:
 *   - a submission that would have to wait for a thread is refused with
 *     the error (nothing taken, arg_free not called) - unless another
 *     thread is coordinating the pool at that moment, when it is accepted
 *     and then failed as below;
 *   - accepted work waiting for a thread (held for start, or accepted as
 *     above) fails: arg_free(arg) runs instead of fn, on_result gets a
 *     failure with the error (tw_failure_from_code), the statistics count
 *     it in cancelled, and the pool's team logs one error for the lot;
 * so no job ever waits for a thread that nothing will create. Later
 * submissions try again.
 */
#ifndef TWUV_THREADPOOL_H
#define TWUV_THREADPOOL_H

#include <stdint.h>

#include "common.h"
#include "defer.h"
#include "worker.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tw_threadpool tw_threadpool;

/*
 * tw_threadpool_new: ThreadPool(minthreads, maxthreads, name). No thread is
 * started before tw_threadpool_start; work submitted before it is kept and
 * runs once the pool starts. name NULL means "tw-pool".
 * Errors: TW_EINVAL (out NULL, min < 0, max < min, max > 1024), TW_ENOMEM.
 * Thread-safe.
 */
TW_EXTERN int tw_threadpool_new(tw_threadpool **out, int min_threads,
                                int max_threads, const char *name);

/*
 * Builds the team a pool runs on (tw_threadpool_new_custom): Twisted's
 * ThreadPool._pool(currentLimit, threadFactory) hook. Store a new team in
 * *out and return 0, or return an error code (returned by
 * tw_threadpool_new_custom). The team must create a worker only while its
 * worker count (idle + busy) is below current_limit(limit_ctx) - read it on
 * every attempt, from the coordinator: it is 0 until the pool starts and
 * after it stops, and the pool's max in between. name is the pool's (never
 * NULL). The pool owns the team from then on: it quits, joins and frees it
 * in tw_threadpool_stop. The default is tw_pool_new(out, current_limit,
 * limit_ctx, name). Called once, on the thread calling
 * tw_threadpool_new_custom.
 */
typedef int (*tw_threadpool_team_fn)(tw_team **out,
                                     tw_pool_limit_fn current_limit,
                                     void *limit_ctx, const char *name,
                                     void *ctx);

/*
 * tw_threadpool_new_custom: tw_threadpool_new on a team built by
 * create_team(..., ctx), for tests that drive a pool deterministically: a
 * team of memory workers (tw_memory_worker_new) coordinated by a memory
 * worker, run step by step with tw_memory_worker_perform (Twisted's
 * MemoryBackedTests). Everything else is as for tw_threadpool_new, with one
 * caveat: stop (and free) waits for the team to finish, so the memory
 * workers must be driven until then (for instance by a coordinator that
 * performs everything outstanding when the quit arrives).
 * Errors: TW_EINVAL (as tw_threadpool_new, or create_team NULL), TW_ENOMEM,
 * what create_team returned (TW_EINVAL if it returned 0 without a team).
 * Thread-safe.
 */
TW_EXTERN int tw_threadpool_new_custom(tw_threadpool **out, int min_threads,
                                       int max_threads, const char *name,
                                       tw_threadpool_team_fn create_team,
                                       void *ctx);

/*
 * tw_threadpool_start: start(): grow to min threads, and start as many more
 * (up to max) as there is work waiting. Starting a started pool does
 * nothing. Short of memory to arrange the growth, the pool still starts:
 * work held for start gets a thread (or fails, see "No thread" above) and
 * threads are made as work comes; the min threads are made by the next
 * tw_threadpool_adjust_poolsize. Errors: TW_EINVAL, TW_EALREADYQUIT (after
 * stop: Twisted's restart is broken, twuv refuses it), or - only on a
 * custom team whose coordinator refuses work - that error (the pool stays
 * unstarted; try again). Thread-safe.
 */
TW_EXTERN int tw_threadpool_start(tw_threadpool *tp);

/*
 * tw_threadpool_stop: stop(): refuse new work, let the threads finish the
 * work they run and the work waiting for them, then join every thread the
 * pool ever started. Blocks until then. A pool that never started (or has
 * no thread at all) cannot run its waiting work: that work goes through its
 * cleanup path instead (see tw_threadpool_call_in_thread*), on this thread.
 * Errors: TW_EINVAL, TW_EALREADYQUIT (second stop, even while the first is
 * still joining), TW_EDEADLK (called from the pool's own work - a job, its
 * arg_free or on_result, cleanup path included - which it would wait for;
 * nothing changes),
 * TW_EWRONGTHREAD (a uv pool off its loop's thread; nothing changes).
 * Thread-safe.
 */
TW_EXTERN int tw_threadpool_stop(tw_threadpool *tp);

/*
 * tw_threadpool_adjust_poolsize: adjustPoolsize(min, max); pass -1 to keep a
 * value. On a started pool, shrinks to max (idle threads now, busy ones when
 * they finish) or grows to min. Raising max does not start threads by itself
 * (new work, or start, does, as in Twisted), with one exception: work that
 * waits with no thread at all (max was 0) gets one - Twisted leaves it
 * waiting for the next submission.
 * Errors: TW_EINVAL (min < 0 or max < min after applying -1s, max > 1024;
 * nothing changes), TW_EALREADYQUIT (after stop), TW_ENOMEM (nothing
 * changes), TW_ENOTSUP (a uv pool). Thread-safe.
 */
TW_EXTERN int tw_threadpool_adjust_poolsize(tw_threadpool *tp, int min_threads,
                                            int max_threads);

/*
 * tw_threadpool_call_in_thread: callInThread(f): run fn(arg) on a pool
 * thread, then arg_free(arg). Work runs in FIFO order of submission while
 * threads are available, and from a FIFO backlog otherwise (as Twisted's,
 * new work may overtake the backlog when the limit is raised). A failure the
 * work reports with tw_work_fail is logged (by the team's log_exception:
 * tw_log_failure for tw_threadpool_new; the log hook for a uv pool); the
 * thread carries on.
 * Cleanup path: if the work can never run (no thread is left to run it when
 * the pool stops), arg_free(arg) runs instead, on the stopping thread; or,
 * when no thread can be made for it ("No thread" above), on the thread
 * that found out.
 * Errors: TW_EINVAL (tp or fn NULL), TW_EALREADYQUIT (stopped: Twisted
 * drops the work silently), TW_ENOMEM, or the error of a thread that could
 * not be made when the pool has none ("No thread" above); arg_free is then
 * not called.
 * Thread-safe.
 */
TW_EXTERN int tw_threadpool_call_in_thread(tw_threadpool *tp, tw_call_fn fn,
                                           void *arg, tw_free_fn arg_free);

/*
 * Receives (and owns) the result of a tw_threadpool_call_in_thread_with_
 * callback job: the value or failure fn returned, or a CancelledError
 * failure if the job could never run (the pool stopped first), or the
 * failure of a thread that could not be made for it ("No thread" above).
 * Runs on the pool thread, right after fn and arg_free (so it must not
 * block; to reach the reactor, use tw_reactor_call_from_thread), or - for
 * the cleanup path - on the thread that stops or frees the pool, or that
 * found that no thread could be made (any thread submitting to or working
 * for the pool). If it reports a failure with tw_work_fail,
 * that failure is logged (by the team's log_exception, as Twisted's Team
 * logs an exception from onResult; on the cleanup path, through the log
 * hook) and the pool carries on.
 */
typedef void (*tw_on_result_fn)(tw_result result, void *ctx);

/*
 * tw_threadpool_call_in_thread_with_callback: callInThreadWithCallback(
 * onResult, f): run fn(arg) on a pool thread; then arg_free(arg) (the work
 * is released before on_result is called, as in Twisted); then
 * on_result(result, ctx), exactly once, with ownership of the result. fn
 * fails by returning a failure or by calling tw_work_fail (which wins: a
 * value returned with it is released). A Deferred result from fn is not
 * allowed: it is released and on_result gets a TW_TYPE_ERROR failure (a
 * NULL failure or an unknown kind: TW_VALUE_ERROR). ctx stays the caller's.
 * Moving arg into the result: when fn returns arg itself as its value
 * (tw_result_value(arg, ...)), arg moves into the result and arg_free does
 * not run then; a value without a destructor gets arg_free as its
 * destructor, so the result frees arg when it goes.
 * Cleanup path: arg_free(arg), then on_result(CancelledError failure), or
 * on_result(the thread's error) when no thread could be made for it.
 * Errors: TW_EINVAL (tp, fn or on_result NULL), TW_EALREADYQUIT, TW_ENOMEM,
 * a thread's error ("No thread" above); nothing is then called.
 * Thread-safe.
 */
TW_EXTERN int tw_threadpool_call_in_thread_with_callback(
    tw_threadpool *tp, tw_on_result_fn on_result, void *ctx, tw_result_fn fn,
    void *arg, tw_free_fn arg_free);

/*
 * tw_threadpool_new_uv: a ThreadPool whose jobs run on libuv's own thread
 * pool (uv_queue_work through a tw_uv_worker on loop), for programs that
 * want a single pool for fs, DNS and their blocking work. libuv's pool is
 * process-global, shared with fs and DNS, and sized once by
 * UV_THREADPOOL_SIZE: min/max do not apply (stats report 0 and
 * tw_threadpool_adjust_poolsize returns TW_ENOTSUP), jobs run in no
 * particular order, and long jobs starve fs and DNS. Create, stop and free
 * it on the loop's thread, and keep running the loop until stop: jobs
 * submitted off the loop's thread are handed to libuv through the loop.
 * As for any pool, jobs submitted before tw_threadpool_start wait for it
 * (and go through the cleanup path if it never comes). The pool keeps
 * uv_run(UV_RUN_DEFAULT) running until stop; after tw_threadpool_free, run
 * the loop once more (libuv completes the requests and the handle close)
 * before uv_loop_close. Submission, start and stats are thread-safe.
 * Stats: min/max, workers, waiters and threads_started are 0 (libuv's
 * threads are not the pool's); working counts jobs running now.
 * Errors: TW_EINVAL, TW_ENOMEM, libuv errors.
 */
TW_EXTERN int tw_threadpool_new_uv(tw_threadpool **out, struct uv_loop_s *loop);

/*
 * Statistics (Twisted's workers / waiters / working / q.qsize(), plus what
 * tells a saturated pool from an idle one). Cumulative times are in
 * nanoseconds over all completed jobs. On x86 with an invariant TSC they
 * are counted in time-stamp-counter ticks (a third of the cost of a clock
 * read per stamp) and converted at a rate measured once per process,
 * against uv_hrtime from the first pool's creation to the first statistics
 * read (at least 2 ms: a read sooner waits out the rest); elsewhere they
 * are uv_hrtime differences. Either way the totals never decrease between snapshots.
 */
typedef struct tw_threadpool_statistics {
  int min_threads;
  int max_threads;
  int started;          /* start called and stop not */
  int joined;           /* stop completed */
  size_t workers;       /* threads alive: waiters + working */
  size_t waiters;       /* idle threads */
  size_t working;       /* threads running a job */
  size_t queued;        /* jobs waiting for a thread (the backlog) */
  size_t threads_started; /* threads ever started */
  uint64_t submitted;   /* jobs accepted */
  uint64_t completed;   /* jobs run to completion */
  uint64_t cancelled;   /* jobs that went through the cleanup path */
  uint64_t queue_wait_ns; /* total time jobs waited between submit and start */
  uint64_t run_ns;      /* total time jobs ran (fn + on_result) */
} tw_threadpool_statistics;

/*
 * tw_threadpool_stats: a snapshot (lock-free reads: counters may be caught
 * mid-change, so working + queued may briefly disagree with submitted -
 * completed - cancelled). Once stopped, workers, waiters, working and queued
 * are 0 and the rest is final. Errors: TW_EINVAL (tp or out NULL).
 * Thread-safe, until tw_threadpool_free.
 */
TW_EXTERN int tw_threadpool_stats(const tw_threadpool *tp,
                                  tw_threadpool_statistics *out);

/*
 * tw_threadpool_free: stop the pool if needed (as tw_threadpool_stop) and
 * release it. Errors: TW_EINVAL, TW_EDEADLK (from the pool's own work,
 * including a cleanup-path on_result; nothing is freed), TW_EWRONGTHREAD (a
 * uv pool off its loop's thread; nothing is freed). Thread-safe, but no
 * other call on tp may run or follow.
 */
TW_EXTERN int tw_threadpool_free(tw_threadpool *tp);

#ifdef __cplusplus
}
#endif
#endif /* TWUV_THREADPOOL_H */
