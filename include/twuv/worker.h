/*
 * twuv/worker.h - workers: Twisted's twisted._threads package (IWorker,
 * ThreadWorker, LockWorker, MemoryWorker, Team, pool), made public, plus a
 * lock-free serial worker and a worker over libuv's own thread pool.
 *
 * A worker (tw_worker) accepts work - a function and its argument - and runs
 * it somewhere, some time: on its own thread (thread worker), on the calling
 * thread under a lock (lock worker), on whichever submitting thread finds it
 * idle (serial worker), when a test says so (memory worker), on one of
 * several workers (team, pool), or on libuv's pool (uv worker). Every worker
 * has the same two operations, do and quit, and a team is itself a worker,
 * so pool logic can be tested deterministically with memory workers.
 *
 * Errors are libuv-style ints: 0 or a negative TW_E* / UV_E* code.
 *
 * ---- Ownership of work: the arg_free rule (see common.h) ----
 *
 * tw_worker_do_full(w, fn, arg, arg_free): when it returns 0 the worker owns
 * arg, and arg_free(arg) (if not NULL) runs exactly once: right after fn(arg)
 * returned, on the same thread, or instead of fn when the work is dropped
 * (a memory worker or team freed with unrun work). When it returns an error,
 * nothing was taken: fn never runs and arg_free is not called.
 *
 * ---- Failing work ----
 *
 * C has no exceptions, so work reports failure explicitly: fn calls
 * tw_work_fail(failure) before returning. Whoever runs the work collects it
 * with tw_work_take_failure(): a team hands it to its log_exception callback
 * (Twisted's Team), thread, serial and uv workers log it through the log
 * hook (failure.h) and go on, a lock worker drops the work queued
 * re-entrantly behind the failed item and leaves the failure pending for the
 * caller of the outermost do (Twisted's exception propagating out of
 * LockWorker.do), and tw_memory_worker_perform leaves it pending for its
 * caller.
 *
 * ---- Lifetime: quit and free ----
 *
 * tw_worker_quit never frees anything and is thread-safe: a do racing with
 * quit on another thread either is accepted (returns 0; the work will run)
 * or returns TW_EALREADYQUIT (nothing taken) - never a use after free.
 *
 * tw_worker_free(w) quits w if needed, waits for work already accepted to
 * finish where the worker runs it by itself (a thread worker's queue, a
 * serial worker's drain, a team's workers), drops (arg_free) what can never
 * run (a memory worker's queue), joins any thread, and releases w. Call it
 * once, and only when no thread can call do or quit on w any more (the usual
 * sequence: stop your producers, tw_worker_quit, join your producers,
 * tw_worker_free). It must not be called from work running on w itself: it
 * returns TW_EDEADLK instead of deadlocking, and w is left unchanged.
 *
 * ---- Writing your own worker ----
 *
 * Embed struct tw_worker as the first member of your struct, point its
 * vtable at a static tw_worker_vtable, and implement the three entries with
 * the contracts of tw_worker_do_full, tw_worker_quit and tw_worker_free
 * (the public functions check their arguments - NULL worker, NULL fn - before
 * calling your entries, so the entries need not). All three must honour the
 * arg_free rule, and do/quit must be thread-safe. docs/workers.md has an
 * example.
 */
#ifndef TWUV_WORKER_H
#define TWUV_WORKER_H

#include "common.h"
#include "failure.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tw_worker tw_worker;

/*
 * The worker interface (Twisted's IWorker). `do` is a C keyword, hence
 * do_work.
 *   do_work  accept fn/arg/arg_free (see tw_worker_do_full); fn is not NULL.
 *   quit     see tw_worker_quit.
 *   destroy  see tw_worker_free: quit if needed, finish or drop the work,
 *            release everything; TW_EDEADLK when called from the worker's
 *            own work.
 */
typedef struct tw_worker_vtable {
  int (*do_work)(tw_worker *worker, tw_call_fn fn, void *arg,
                 tw_free_fn arg_free);
  int (*quit)(tw_worker *worker);
  int (*destroy)(tw_worker *worker);
} tw_worker_vtable;

/* The first member of every worker. */
struct tw_worker {
  const tw_worker_vtable *vtable;
};

/*
 * tw_worker_do: IWorker.do(task): tw_worker_do_full(worker, fn, arg, NULL),
 * with the same contract (thread-safe; TW_EINVAL, TW_EALREADYQUIT,
 * TW_ENOMEM).
 */
TW_EXTERN int tw_worker_do(tw_worker *worker, tw_call_fn fn, void *arg);

/*
 * tw_worker_do_full: hand fn(arg) to the worker, which runs it once, with no
 * promise about when or on which thread (each worker below says). On 0, the
 * worker owns arg and arg_free(arg) (may be NULL) runs exactly once (the rule
 * at the top of this file).
 * Thread-safe for every worker in this file (uv worker included).
 * Errors (nothing taken, arg_free not called):
 *   TW_EINVAL        worker or fn NULL, or a worker without a vtable
 *   TW_EALREADYQUIT  the worker has quit
 *   TW_ENOMEM
 */
TW_EXTERN int tw_worker_do_full(tw_worker *worker, tw_call_fn fn, void *arg,
                                tw_free_fn arg_free);

/*
 * tw_worker_quit: IWorker.quit(): reject all future work. Work accepted
 * before keeps its promise (it runs, or for a memory worker stays
 * performable). Never frees memory; see "Lifetime" above.
 * Thread-safe.
 * Errors: TW_EINVAL (NULL worker); TW_EALREADYQUIT (the second time).
 */
TW_EXTERN int tw_worker_quit(tw_worker *worker);

/*
 * tw_worker_free: quit (if not yet quit), finish or drop the accepted work,
 * join threads and release the worker (see "Lifetime" above: it may block
 * until accepted work has run).
 * Not thread-safe with respect to the worker: the caller guarantees that no
 * other thread uses the worker any more.
 * Errors (the worker is unchanged): TW_EINVAL (NULL worker); TW_EDEADLK
 * (called from work running on this worker, or from inside a team's work or
 * coordination when freeing that team); TW_EWRONGTHREAD (a uv worker off its
 * loop's thread).
 */
TW_EXTERN int tw_worker_free(tw_worker *worker);

/* ---- Failing work -------------------------------------------------------- */

/*
 * tw_work_fail: report that the work running on this thread failed (the C
 * spelling of raising out of a task). Takes ownership of failure; NULL means
 * a generic TW_ERROR failure. A failure already pending on this thread is
 * released and replaced (the later error wins, as a second raise would).
 * The worker running the work collects it when fn returns (see "Failing
 * work" at the top of this file). Calling it outside any work leaves the
 * failure pending on the thread until tw_work_take_failure.
 * Thread-safe (per-thread state). Never fails.
 */
TW_EXTERN void tw_work_fail(tw_failure *failure);

/*
 * tw_work_take_failure: the failure pending on this thread (a new reference
 * the caller must release), clearing it; NULL when none is pending. Custom
 * workers call it after running each item; callers of a lock worker's do
 * and of tw_memory_worker_perform call it to see a failure that propagated.
 * Thread-safe (per-thread state).
 */
TW_EXTERN tw_failure *tw_work_take_failure(void);

/* ---- Thread worker (Twisted's ThreadWorker) ------------------------------ */

/*
 * tw_thread_worker_new: a worker with one thread of its own, started now,
 * that runs the work it is given one item at a time in FIFO order (an
 * exclusive worker). quit lets the queued work finish, then the thread
 * exits; tw_worker_free joins it. do never blocks; the queue is lock-free
 * (no mutex between submitters and the thread) and unbounded.
 * name: the thread's name where the platform allows (Linux: at most 15
 * characters, longer names are truncated); NULL gives "tw-worker-N".
 * *out receives the worker on success and is left untouched on error.
 * Thread-safe. Errors: TW_EINVAL (out NULL), TW_ENOMEM, or the UV_E* code
 * of a failed thread creation.
 */
TW_EXTERN int tw_thread_worker_new(tw_worker **out, const char *name);

/*
 * How a thread worker starts and joins its thread (Twisted's startThread),
 * for tests that want to run the thread's body by hand.
 *   start  start a thread running target(target_arg); store anything that
 *          identifies it in *thread. Return 0 or an error code (returned by
 *          tw_thread_worker_new_custom).
 *   join   wait until that thread has returned from target (called once by
 *          tw_worker_free; may be NULL when nothing needs joining).
 * target returns after tw_worker_quit, once every accepted item has run.
 */
typedef struct tw_thread_starter {
  int (*start)(void *ctx, tw_call_fn target, void *target_arg, void **thread);
  void (*join)(void *ctx, void *thread);
  void *ctx;
} tw_thread_starter;

/*
 * tw_thread_worker_new_custom: tw_thread_worker_new with an injected thread
 * start (the starter is copied). The worker's thread is unnamed. If target
 * was never run (a fake thread), tw_worker_free drops the queued work
 * (arg_free) after join. Thread-safe (start is called on the calling thread).
 * Errors: TW_EINVAL (out, starter or starter->start NULL), TW_ENOMEM, or
 * what start returned.
 */
TW_EXTERN int tw_thread_worker_new_custom(tw_worker **out,
                                          const tw_thread_starter *starter);

/* ---- Lock worker (Twisted's LockWorker) ----------------------------------- */

/*
 * tw_lock_worker_new: a worker that runs each item at once, on the thread
 * calling do, with a mutex held (an exclusive worker: other threads' do
 * blocks on the mutex). A do made from inside the work on the same thread
 * does not recurse: the item is queued and run, FIFO, after the current item
 * returns and before the outermost do returns (Twisted's re-entrancy rule).
 * When an item reports a failure (tw_work_fail), the items queued behind it
 * re-entrantly are dropped (arg_free) and the failure is left pending for
 * the caller of the outermost do.
 * quit does not release the mutex object (a racing do may be using it);
 * tw_worker_free does.
 * Thread-safe. Errors: TW_EINVAL (out NULL), TW_ENOMEM.
 */
TW_EXTERN int tw_lock_worker_new(tw_worker **out);

/*
 * tw_lock_worker_new_custom: a lock worker over a caller-supplied lock:
 * acquire(lock) and release(lock) must behave as a non-recursive mutex.
 * The lock stays the caller's and must outlive the worker. For tests (a fake
 * lock that detects double acquisition) and for sharing a lock.
 * Thread-safe. Errors: TW_EINVAL (out, acquire or release NULL), TW_ENOMEM.
 */
TW_EXTERN int tw_lock_worker_new_custom(tw_worker **out, tw_call_fn acquire,
                                        tw_call_fn release, void *lock);

/* ---- Serial worker (new: the team's lock-free coordinator) --------------- */

/*
 * tw_serial_worker_new: an exclusive worker with no thread and no lock. Work
 * runs on a submitting thread: the thread whose do finds the worker idle
 * runs its item at once and then every item other threads submit meanwhile,
 * until none is waiting; the other submitters only queue and return. So
 * items never run two at once, and nothing on the path takes a mutex.
 * Order: FIFO per submitting thread (each thread queues in a lane of its
 * own); items of different threads run in no promised order. A do from
 * inside the work is queued and runs right after the current item (before
 * items other threads queued meanwhile), on the same thread, as with a
 * lock worker.
 * Bounded: at most 1024 items of one submitting thread wait (its lane, a
 * fixed ring of 24 KiB made on its first do that finds the worker busy; at
 * most 64 lanes). A do from another thread that finds its lane full waits -
 * spinning, then yielding the CPU, never on a mutex - until the running
 * thread has run some of them (or the worker is idle: it then runs its
 * item itself); a thread that cannot have a lane (64 other live threads
 * have one, or no memory) waits likewise until the worker is idle. A do
 * from inside the work never waits, nor does a do that finds another
 * thread inside an item. So do not call do while holding something the
 * work needs (a lock its items take) when a thousand items may be waiting,
 * and do not build cycles of serial workers that submit to each other in
 * bulk from inside their work.
 * Costs: an item queued by another thread is copied into its lane (no
 * allocation but the lane, once per thread and worker); an idle worker
 * runs fn before do returns; a do from inside the work allocates a node
 * (TW_ENOMEM possible only there). A submitter may find itself running
 * other threads' work for as long as they keep it busy, and, fed by them,
 * waits a few microseconds for more before it returns, so keep the work
 * short (coordination, not computation). A thread that has done thousands
 * of dos in a row alone gets the worker biased to it (on Linux with
 * membarrier): its dos then run with no atomic operation, and another
 * thread's first do afterwards pays about a microsecond to take the bias
 * away (docs/workers.md).
 * quit lets the accepted items run; tw_worker_free waits for them.
 * Thread-safe. Errors: TW_EINVAL (out NULL), TW_ENOMEM.
 */
TW_EXTERN int tw_serial_worker_new(tw_worker **out);

/* ---- Memory worker (Twisted's createMemoryWorker) ------------------------ */

/*
 * tw_memory_worker_new: a worker that only queues work until the test calls
 * tw_memory_worker_perform (an exclusive worker as long as perform is not
 * called from two threads at once). do and quit are thread-safe;
 * tw_worker_free drops (arg_free) the work never performed, and returns
 * TW_EDEADLK (the worker unchanged) while an item tw_memory_worker_perform
 * runs, e.g. from inside that item.
 * Thread-safe. Errors: TW_EINVAL (out NULL), TW_ENOMEM.
 */
TW_EXTERN int tw_memory_worker_new(tw_worker **out);

/*
 * tw_memory_worker_perform: run the oldest queued item on the calling thread
 * and return 1, or return 0 when nothing is queued (after quit, once the
 * queue is empty, it returns 0 for ever). A failure the item reports stays
 * pending for the caller (tw_work_take_failure).
 * Thread-safe. A yes/no ("ran one"), never a code: 0 also for NULL or a
 * worker that is not a memory worker, so while (perform(w)) ends.
 */
TW_EXTERN int tw_memory_worker_perform(tw_worker *worker);

/* ---- Team (Twisted's Team) ------------------------------------------------ */

typedef struct tw_team tw_team;

/*
 * Creates a worker for the team, or returns NULL when no more workers are
 * allowed or resources ran out (the work then waits in the backlog, until a
 * worker becomes idle, or a later do or grow gets one from create_worker).
 * Runs in the coordinator (so never concurrently with itself), on any
 * thread.
 */
typedef tw_worker *(*tw_team_create_fn)(void *ctx);

/*
 * Receives the failure a team item reported (tw_work_fail) - Twisted's
 * logException. The failure is borrowed (take a reference to keep it). Runs
 * on the worker's thread, right after the item, concurrently with other
 * items' calls: it must be thread-safe.
 */
typedef void (*tw_team_log_fn)(tw_failure *failure, void *ctx);

/* Twisted's Team.statistics(), plus a counter. */
typedef struct tw_team_stats {
  size_t idle;    /* idleWorkerCount: workers waiting for work */
  size_t busy;    /* busyWorkerCount: workers running (or given) an item */
  size_t backlog; /* backloggedWorkCount: items waiting for a worker */
  size_t created; /* workers create_worker ever returned (twuv addition) */
} tw_team_stats;

/*
 * tw_team_new: Twisted's Team(coordinator, createWorker, logException): a
 * worker that hands each item to an idle worker, or to a new one from
 * create_worker, or else keeps it in a FIFO backlog until a worker becomes
 * idle. All team state is touched only inside work submitted to the
 * coordinator, an exclusive worker (serial, lock, thread or memory worker;
 * the serial worker makes the whole team lock-free). Details and the
 * differences from Twisted: docs/workers.md.
 *
 * The team is itself a worker: do, quit and free go through
 * tw_worker_do/_do_full/_quit/_free on tw_team_worker(team), with these
 * team-specific meanings:
 *   do    Thread-safe. Never blocks unless the coordinator does. The item
 *         runs once on a team worker; if it reports a failure, log_exception
 *         gets it and the worker carries on.
 *   quit  Thread-safe. Idle workers quit now, busy ones when their work and
 *         the backlog are done (the backlog is still served, as in Twisted),
 *         then the coordinator quits. TW_ENOMEM only with a custom
 *         coordinator whose do failed (the team is then not quit).
 *   free  Quits if needed, waits for the team to finish (tw_team_join),
 *         drops (arg_free) a backlog no worker was left to serve, frees
 *         every worker and the coordinator. With workers that need driving
 *         (memory workers), drive them until the team has finished first:
 *         free would wait for ever.
 *
 * No worker. When the team has no worker at all and cannot allocate its
 * own record for a new one (TW_ENOMEM), the work would wait for ever:
 * a do whose coordination runs at once (an idle serial coordinator) is
 * refused with TW_ENOMEM (nothing taken), and work already accepted and
 * backlogged fails - its arg_free runs instead of fn - with one error
 * logged. A NULL from a user's create_worker means "no more workers", as
 * in Twisted: the work waits. With any worker left, the work waits for it.
 *
 * Ownership: on success the team owns coordinator and every worker
 * create_worker returns, and frees them; on error the caller keeps
 * coordinator. log_exception NULL logs failures through tw_log_failure.
 * ctx is passed to both callbacks. The team performs no coordination until
 * its first do, grow, shrink or quit. Thread-safe.
 * Errors: TW_EINVAL (out, coordinator or create_worker NULL, a coordinator
 * with an incomplete vtable, or one that is not exclusive: a team or a uv
 * worker), TW_ENOMEM.
 */
TW_EXTERN int tw_team_new(tw_team **out, tw_worker *coordinator,
                          tw_team_create_fn create_worker,
                          tw_team_log_fn log_exception, void *ctx);

/* tw_team_worker: the team's IWorker view (NULL for NULL). Thread-safe. */
TW_EXTERN tw_worker *tw_team_worker(tw_team *team);

/*
 * tw_team_grow: Team.grow(n): in the coordinator, create up to n workers
 * (stopping at the first NULL from create_worker) and make them idle; they
 * take backlogged work at once. Asynchronous: done when the coordinator runs
 * it. Thread-safe.
 * Errors: TW_EINVAL (NULL team, n <= 0), TW_EALREADYQUIT, TW_ENOMEM.
 */
TW_EXTERN int tw_team_grow(tw_team *team, int n);

/*
 * tw_team_shrink: Team.shrink(n): in the coordinator, quit n idle workers;
 * for each one missing, the next busy worker to become idle with no backlog
 * left quits instead. Unlike Twisted, this debt is clamped to the number of
 * busy workers, so an over-shrink never quits workers created later.
 * Asynchronous. Thread-safe.
 * Errors: TW_EINVAL (NULL team, n <= 0), TW_EALREADYQUIT, TW_ENOMEM.
 */
TW_EXTERN int tw_team_shrink(tw_team *team, int n);

/*
 * tw_team_shrink_all: Team.shrink() with no argument: quit every worker,
 * idle ones now and busy ones as they become idle (backlog first). The team
 * is not quit: new work creates new workers. Asynchronous. Thread-safe.
 * Errors: TW_EINVAL (NULL team), TW_EALREADYQUIT, TW_ENOMEM.
 */
TW_EXTERN int tw_team_shrink_all(tw_team *team);

/*
 * tw_team_statistics: Team.statistics(): a snapshot of the counters, read
 * without coordination (a few atomic loads: cheap, thread-safe, possibly
 * mid-change, so idle + busy may briefly disagree with each other). An
 * item is never counted twice in backlog, and a started item is never in
 * it once the step that gave it to a worker has ended.
 * Errors: TW_EINVAL (team or out NULL).
 */
TW_EXTERN int tw_team_statistics(const tw_team *team, tw_team_stats *out);

/*
 * tw_team_join: after quit, wait until the team has finished - every item
 * accepted has run (or sits in a backlog no worker was left to serve), every
 * worker has quit - then free every worker the team ever created (joining
 * their threads; thread workers quit earlier by shrinking may already have
 * been freed, when the team next created a worker) and the coordinator (a
 * serial coordinator is freed with the team instead). What ThreadPool.stop
 * needs. The team stays valid for tw_team_statistics and tw_worker_free.
 * Calling it again returns 0 at once (after the first join completes).
 * Thread-safe.
 * Errors: TW_EINVAL (NULL team, or not quit: it would wait for ever);
 * TW_EDEADLK (called from the team's own work or coordination).
 */
TW_EXTERN int tw_team_join(tw_team *team);

/* ---- Pool (Twisted's twisted._threads.pool) ----------------------------- */

/*
 * The pool's size limit, read each time the team considers creating a
 * worker (in the coordinator, on any thread): must be thread-safe and quick.
 */
typedef size_t (*tw_pool_limit_fn)(void *ctx);

/*
 * tw_pool_new: Twisted's pool(currentLimit): a team of thread workers,
 * coordinated by a serial worker, that creates a worker only while
 * idle + busy < current_limit(ctx). Threads are named "<name>-N" (N from 1,
 * truncated to 15 characters), or "tw-worker-N" when name is NULL. A thread
 * that fails to start (no memory, or uv_thread_create's error; logged at
 * TW_LOG_WARN) is not "no more workers": with no worker left, the work
 * fails with that error as described under "No worker" for tw_team_new
 * (the do that would wait is refused with it; backlogged work's arg_free
 * runs instead of fn), and the next do tries again. While workers remain,
 * the work waits for them. Failing work is logged through tw_log_failure. Use it as any team:
 * tw_team_worker, grow, shrink, statistics, quit, join, free. No thread is
 * started until work or grow needs one. Thread-safe.
 * Errors: TW_EINVAL (out or current_limit NULL), TW_ENOMEM.
 */
TW_EXTERN int tw_pool_new(tw_team **out, tw_pool_limit_fn current_limit,
                          void *ctx, const char *name);

/* ---- uv worker (new: libuv's own pool) ------------------------------------ */

/*
 * tw_uv_worker_new: a worker whose items run on libuv's thread pool through
 * uv_queue_work, for programs that want one pool for fs, DNS and their own
 * work. NOT exclusive: items run concurrently and in no particular order.
 *
 * libuv's pool is process-global: it is shared by every loop and by fs,
 * DNS (getaddrinfo/getnameinfo) and uv_random requests; it is sized once,
 * on its first use, by the UV_THREADPOOL_SIZE environment variable (default
 * 4, at most 1024), and cannot be resized. Long items therefore starve fs
 * and DNS. Prefer a pool (tw_pool_new) for blocking work.
 *
 * Threads: create it, free it and run the loop on the loop's thread. do and
 * quit are thread-safe: off the loop's thread, do hands the item over
 * through one uv_async_t (woken only when its queue goes from empty to
 * non-empty), so the item starts once the loop runs. fn runs on a pool
 * thread, arg_free right after it there; a failure fn reports is logged.
 *
 * The worker's handle keeps uv_run(UV_RUN_DEFAULT) running until quit;
 * after quit, the loop stops when the accepted work is done. tw_worker_free
 * closes the handle; the memory is released during a later uv_run, once the
 * close and any work still in flight have completed - so run the loop once
 * more before uv_loop_close.
 * Errors: TW_EINVAL (out or loop NULL), TW_ENOMEM, or the UV_E* code of
 * uv_async_init. tw_worker_free returns TW_EWRONGTHREAD off the loop thread.
 */
TW_EXTERN int tw_uv_worker_new(tw_worker **out, struct uv_loop_s *loop);

#ifdef __cplusplus
}
#endif
#endif /* TWUV_WORKER_H */
