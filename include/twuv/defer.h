/*
 * twuv/defer.h - Deferred (twisted.internet.defer), in C.
 *
 * A tw_deferred is a promise of one result, with a chain of callbacks that
 * transform it, exactly as Twisted's Deferred: callback/errback fire it once;
 * each (callback, errback) pair in the chain sees the current result and
 * returns the next one; returning a Deferred from a callback pauses the chain
 * until that Deferred fires (chaining), with an explicit stack so depth does
 * not grow the C stack.
 *
 * Threads: a Deferred is a single-threaded object. Use it on one thread
 * (normally the reactor's); hand results across threads with
 * tw_reactor_call_from_thread or tw_defer_to_thread.
 *
 * ---- Results and ownership (DESIGN.md decision 2) -------------------------
 *
 * A tw_result is a tagged value:
 *   TW_RESULT_VALUE     u.value (any pointer, may be NULL) and value_free,
 *                       its destructor (may be NULL)
 *   TW_RESULT_FAILURE   u.failure, a tw_failure reference
 *   TW_RESULT_DEFERRED  u.deferred, a tw_deferred reference; only valid as
 *                       the return value of a callback (chaining) or of a
 *                       tw_result_fn given to tw_maybe_deferred
 *
 * Ownership moves with the result. A callback OWNS the result it receives:
 * it must return it (pass it on), or destroy it (tw_result_release) and
 * return another. The chain owns what a callback returns. A Deferred freed
 * while holding a value runs the value's destructor; one freed while holding
 * an unconsumed failure reports it through the log hook ("Unhandled error in
 * Deferred", TW_LOG_CRITICAL, with the file:line where the Deferred was
 * created) and releases it.
 *
 * When a function that takes a result (tw_deferred_callback, ...) returns an
 * error, the result was NOT taken: the caller still owns it.
 *
 * ---- References -------------------------------------------------------------
 *
 * Deferreds are reference counted. tw_deferred_new and every function that
 * returns a tw_deferred * (or fills a tw_deferred **out) give the caller one
 * reference, released with tw_deferred_unref. Besides the user's references:
 *   - a Deferred waiting on another (chaining) is kept alive by it: the inner
 *     Deferred holds a reference to the outer until it fires or is freed;
 *   - a producer (a timer, a thread-pool job, a DeferredList) holds a
 *     reference to the Deferred it will fire, until it fires it.
 * So "create, add callbacks, unref" is the normal pattern: the callbacks
 * still run when the producer fires. A Deferred that nothing can fire any
 * more is freed with its last reference; its pending callbacks are dropped
 * (their arg_free runs) and nothing leaks. The outer Deferred of a chain
 * does not keep the inner one alive (that would be a cycle): it only points
 * at it, and if the inner is freed unfired the outer waits for good, as it
 * would in Twisted. Cancelling the outer reaches the inner only while the
 * inner is alive.
 *
 * Reference counting cannot free a cycle. Chaining never makes one: a
 * callback returning its own Deferred, or one that (transitively) waits on
 * it, gives a RuntimeError failure instead of Twisted's silent deadlock.
 * tw_deferred_chain_deferred can (A chained to B while B waits on A): such
 * a deadlock is freed only once broken (cancel or fire one of them).
 *
 * ---- Debug builds -------------------------------------------------------------
 *
 * Built with -Ddebug_deferreds=true, every function here returns TW_EINVAL
 * (tw_deferred_ref: NULL; tw_deferred_unref: nothing) for a Deferred whose
 * last reference is gone, as long as it is still in the quarantine of
 * recently freed Deferreds (the last 256, emptied when no Deferred is
 * alive). Use after that is not detected.
 */
#ifndef TWUV_DEFER_H
#define TWUV_DEFER_H

#include <stdarg.h>
#include <stdint.h>

#include "common.h"
#include "failure.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tw_deferred tw_deferred;

typedef enum tw_result_kind {
  TW_RESULT_VALUE = 0,
  TW_RESULT_FAILURE = 1,
  TW_RESULT_DEFERRED = 2
} tw_result_kind;

typedef struct tw_result {
  tw_result_kind kind;
  tw_free_fn value_free; /* TW_RESULT_VALUE only: destructor of u.value */
  union {
    void *value;
    tw_failure *failure;
    tw_deferred *deferred;
  } u;
} tw_result;

/* A value result (value may be NULL; value_free may be NULL). */
static inline tw_result tw_result_value(void *value, tw_free_fn value_free) {
  tw_result r;
  r.kind = TW_RESULT_VALUE;
  r.value_free = value_free;
  r.u.value = value;
  return r;
}

/* The NULL value, Python's None. */
static inline tw_result tw_result_none(void) {
  return tw_result_value((void *)0, (tw_free_fn)0);
}

/* A failure result; takes ownership of the caller's reference to f. */
static inline tw_result tw_result_failure(tw_failure *f) {
  tw_result r;
  r.kind = TW_RESULT_FAILURE;
  r.value_free = (tw_free_fn)0;
  r.u.failure = f;
  return r;
}

/* A Deferred result (chaining); takes ownership of the caller's reference. */
static inline tw_result tw_result_deferred(tw_deferred *d) {
  tw_result r;
  r.kind = TW_RESULT_DEFERRED;
  r.value_free = (tw_free_fn)0;
  r.u.deferred = d;
  return r;
}

static inline int tw_result_is_failure(tw_result r) {
  return r.kind == TW_RESULT_FAILURE;
}

/*
 * tw_result_release: destroy a result you own and will not pass on: runs the
 * value's destructor, or releases the failure or Deferred reference.
 */
TW_EXTERN void tw_result_release(tw_result r);

/*
 * Results that carry an int or a string, without casts or a hand-written
 * vsnprintf + malloc:
 *
 *     return tw_result_int(42);                     (Python: return 42)
 *     return tw_result_printf("%d files", n);       (return "%d files" % n)
 *     long n = (long)tw_result_as_int(r);  const char *s = tw_result_as_str(r);
 *
 * tw_result_int: a value result holding v itself (no memory, no destructor).
 * tw_result_strdup / tw_result_printf / tw_result_vprintf: a value result
 * holding a NUL-terminated copy made through twuv's allocator, with its
 * destructor: the result owns it, as any value with a value_free (released
 * by whoever releases the result, e.g. the Deferred holding it). Out of
 * memory they return a failure result (MemoryError) instead, which a chain
 * handles like any failure; s NULL or fmt NULL gives a ValueError failure.
 * Thread-safe.
 * tw_result_as_int / tw_result_as_str: read such a value back (borrowed: the
 * string lives as long as the result). For a failure or Deferred result they
 * return 0 / NULL.
 */
static inline tw_result tw_result_int(intptr_t v) {
  return tw_result_value((void *)v, (tw_free_fn)0);
}
TW_EXTERN tw_result tw_result_strdup(const char *s);
TW_EXTERN tw_result tw_result_printf(const char *fmt, ...) TW_PRINTF(1, 2);
TW_EXTERN tw_result tw_result_vprintf(const char *fmt, va_list ap)
    TW_PRINTF(1, 0);
static inline intptr_t tw_result_as_int(tw_result r) {
  return r.kind == TW_RESULT_VALUE ? (intptr_t)r.u.value : 0;
}
static inline const char *tw_result_as_str(tw_result r) {
  return r.kind == TW_RESULT_VALUE ? (const char *)r.u.value
                                   : (const char *)0;
}

/*
 * A callback, an errback, or both: receives (and owns) the current result and
 * returns the next one. Return a failure to switch to the error path, a value
 * to switch (back) to the success path, a Deferred to wait for it (the chain
 * takes your reference). What twuv makes of a bad return: a NULL failure or
 * Deferred, or an unknown kind, becomes a ValueError failure; the Deferred
 * the callback is attached to, or one waiting on it, a RuntimeError failure
 * (Twisted warns and deadlocks); running out of memory while chaining, a
 * MemoryError failure. Returning a fired Deferred takes its result (it is
 * left None), as in Twisted; but one whose own callback is running (further
 * up the stack: that callback fired, or led to, yours) has no result to
 * take and gives None, where Twisted's takes the value the running callback
 * holds, the same object that callback goes on with.
 */
typedef tw_result (*tw_callback_fn)(tw_result result, void *arg);

/* A function producing a result (maybe_deferred, defer_later, threads). */
typedef tw_result (*tw_result_fn)(void *arg);

/*
 * A canceller: called at most once, by tw_deferred_cancel on an unfired
 * Deferred. It may fire d itself (callback or errback); if it does not, d
 * errbacks with CancelledError after it returns. It cannot raise: a
 * canceller that wants to report an error errbacks d with it.
 */
typedef void (*tw_canceller_fn)(tw_deferred *d, void *arg);

/*
 * tw_deferred_new: Deferred(canceller). canceller may be NULL; arg is passed
 * to it (and stays the caller's). Returns a new Deferred with one reference,
 * or NULL when out of memory. A Deferred with no callbacks is one
 * allocation of at most 64 bytes; callbacks live in one growing block.
 * The macro records __FILE__/__LINE__ for the "Unhandled error in Deferred"
 * report; call (tw_deferred_new)(c, a) for the plain function.
 */
TW_EXTERN tw_deferred *tw_deferred_new_at(tw_canceller_fn canceller,
                                          void *arg, const char *file,
                                          int line);
TW_EXTERN tw_deferred *(tw_deferred_new)(tw_canceller_fn canceller, void *arg);
#define tw_deferred_new(canceller, arg) \
  tw_deferred_new_at((canceller), (arg), __FILE__, __LINE__)

/* tw_deferred_ref: take another reference. Returns d (NULL for NULL). */
TW_EXTERN tw_deferred *tw_deferred_ref(tw_deferred *d);

/*
 * tw_deferred_unref: release a reference. The last one frees the Deferred:
 * pending callbacks are dropped (their arg_free runs), a held value is
 * destroyed, an unconsumed failure is reported and released. NULL is ignored.
 */
TW_EXTERN void tw_deferred_unref(tw_deferred *d);

/*
 * tw_deferred_callback: fire d with result (Deferred.callback). A failure
 * result behaves exactly as tw_deferred_errback. Takes ownership of result
 * when it returns 0.
 * Errors: TW_EINVAL (d NULL, or result is a Deferred);
 *         TW_EALREADYCALLED (d already fired; d's own result is untouched).
 * After a cancel without canceller, the first late fire returns 0 and is
 * silently discarded (its result released), as in Twisted.
 */
TW_EXTERN int tw_deferred_callback(tw_deferred *d, tw_result result);

/*
 * tw_deferred_errback: fire d with a failure (Deferred.errback). Takes
 * ownership of f when it returns 0.
 * Errors: TW_EINVAL (d or f NULL), TW_EALREADYCALLED.
 */
TW_EXTERN int tw_deferred_errback(tw_deferred *d, tw_failure *f);

/*
 * Adding callbacks (addCallbacks / addCallback / addErrback / addBoth). The
 * pair is appended to the chain; if d has already fired (and is not paused,
 * running its callbacks, or waiting on another Deferred) it runs at once,
 * before the function returns. Added from inside one of d's own callbacks,
 * it is appended and runs after the current callback returns.
 *
 * tw_deferred_add_callbacks: callback runs on success, errback on failure;
 * either may be NULL (pass the result through), not both. arg is given to
 * whichever runs.
 * tw_deferred_add_callbacks_full: also arg_free, run exactly once after the
 * pair has run or when it is dropped unrun.
 *
 * Errors: TW_EINVAL (d NULL, fn NULL, both NULL), TW_ENOMEM. On error
 * nothing was added and arg_free is not called.
 * Ignoring the code: TW_EINVAL only comes from passing NULL, so with valid
 * arguments the only failure is TW_ENOMEM, and then the chain goes on as if
 * the pair had never been added (the result skips it; a later pair still
 * runs). Ignore it only where that is acceptable - a logging callback, say -
 * and check it where the pair matters (it releases a resource, or it is the
 * errback that consumes a failure) or where arg_free must run.
 */
TW_EXTERN int tw_deferred_add_callbacks(tw_deferred *d, tw_callback_fn callback,
                                        tw_callback_fn errback, void *arg);
TW_EXTERN int tw_deferred_add_callbacks_full(tw_deferred *d,
                                             tw_callback_fn callback,
                                             tw_callback_fn errback, void *arg,
                                             tw_free_fn arg_free);
TW_EXTERN int tw_deferred_add_callback(tw_deferred *d, tw_callback_fn fn,
                                       void *arg);
TW_EXTERN int tw_deferred_add_errback(tw_deferred *d, tw_callback_fn fn,
                                      void *arg);
TW_EXTERN int tw_deferred_add_both(tw_deferred *d, tw_callback_fn fn,
                                   void *arg);

/*
 * tw_deferred_chain_deferred: Deferred.chainDeferred(d2): add d2.callback and
 * d2.errback as a pair on d, so d2 fires with d's result, and d is left
 * holding None (or an AlreadyCalledError failure if d2 had fired). Takes a
 * reference to d2 until the pair runs or is dropped. As in Twisted, d2's
 * callbacks run before d's next ones, and d counts as running meanwhile;
 * unlike Twisted's recursion, a long explicit chain runs in bounded stack.
 * Errors: TW_EINVAL (NULL, or d == d2), TW_ENOMEM.
 */
TW_EXTERN int tw_deferred_chain_deferred(tw_deferred *d, tw_deferred *d2);

/*
 * tw_deferred_pause / tw_deferred_unpause: pauses nest; callbacks do not run
 * while paused. Unpausing to zero resumes the chain if d has fired. As in
 * Twisted, the pause count is looked at only when d's callbacks start to
 * run and when d's run comes back from a Deferred that was waiting on d: a
 * pause taken meanwhile (by one of d's callbacks, or by the callbacks of a
 * Deferred chained to d with tw_deferred_chain_deferred) lets the rest of
 * d's callbacks run.
 * Errors: TW_EINVAL (d NULL; unpause without a matching pause - Twisted
 * silently goes to -1 and never runs callbacks again - including the pause
 * a Deferred waiting on another holds for the chain).
 */
TW_EXTERN int tw_deferred_pause(tw_deferred *d);
TW_EXTERN int tw_deferred_unpause(tw_deferred *d);

/*
 * tw_deferred_cancel: Deferred.cancel(). Unfired: calls the canceller (once);
 * if d is still unfired afterwards it errbacks with CancelledError, and
 * without a canceller the next callback/errback from the producer is
 * swallowed once. Fired but waiting on an inner Deferred: cancels the inner
 * one. Otherwise nothing happens. Returns 0, or TW_EINVAL for NULL.
 */
TW_EXTERN int tw_deferred_cancel(tw_deferred *d);

/* tw_deferred_called: 1 once fired, 0 before (0 also for NULL or a freed
 * Deferred: a yes/no, never a code). */
TW_EXTERN int tw_deferred_called(const tw_deferred *d);

/* tw_deferred_paused: the pause count (>= 0; a Deferred waiting on another
 * counts one pause for it, as in Twisted), TW_EINVAL for NULL. A count, not
 * a yes/no: test it with > 0. */
TW_EXTERN int tw_deferred_paused(const tw_deferred *d);

/*
 * tw_deferred_peek_result: a borrowed view of d's current result, without
 * consuming it (for tests, and to inspect a fired Deferred). Returns 0 and
 * fills *out when d holds a value or a failure; TW_EBUSY when d has not
 * fired, or is waiting on another Deferred, or is running its callbacks;
 * TW_EINVAL for NULL arguments. The view is valid until d changes.
 */
TW_EXTERN int tw_deferred_peek_result(const tw_deferred *d, tw_result *out);

/*
 * tw_deferred_take_result: move d's current result out (the caller owns it),
 * leaving d holding None - as an errback that consumes it would. A taken
 * failure is no longer reported as unhandled. Same errors as peek.
 */
TW_EXTERN int tw_deferred_take_result(tw_deferred *d, tw_result *out);

/*
 * tw_succeed / tw_fail: an already-fired Deferred (succeed(v) / fail(f)).
 * Take ownership of value / f on success; return NULL (and leave ownership
 * with the caller) when out of memory, and for nothing else: tw_fail(NULL)
 * gives a Deferred failed with ValueError (as a callback returning a NULL
 * failure does).
 */
TW_EXTERN tw_deferred *tw_succeed(void *value, tw_free_fn value_free);
TW_EXTERN tw_deferred *tw_fail(tw_failure *f);

/*
 * tw_maybe_deferred: maybeDeferred(fn, arg). Calls fn(arg) now: a value gives
 * a fired Deferred, a failure an errbacked one, a Deferred is returned as is.
 * fn == NULL gives a Deferred failed with TypeError (Twisted's
 * maybeDeferred(None) catches the TypeError of calling None). Returns NULL
 * when out of memory only (fn's result is then released).
 */
TW_EXTERN tw_deferred *tw_maybe_deferred(tw_result_fn fn, void *arg);

/* ---- DeferredList, gatherResults, race ------------------------------------ */

/*
 * The result value of tw_deferred_list, tw_gather_results and tw_race: a
 * tw_list_result *, freed (with everything it holds) by the value's
 * destructor when the result is released.
 *
 *   count       number of input Deferreds
 *   index       race / fire-on-one-callback: the index that fired the list;
 *               SIZE_MAX otherwise
 *   items[i]    input i: succeeded == 1 with its value (value, value_free),
 *               or succeeded == 0 with failure (a reference), or
 *               succeeded == -1 when input i had not fired when the list did
 *
 * Values are MOVED from the input Deferreds into the list (the input is left
 * holding None, as an inner Deferred is after chaining); failures are SHARED
 * (the list holds a reference; the input keeps its failure unless
 * consume_errors is set, in which case its result becomes None).
 */
typedef struct tw_list_item {
  int succeeded;
  void *value;
  tw_free_fn value_free;
  tw_failure *failure;
} tw_list_item;

typedef struct tw_list_result {
  size_t count;
  size_t index;
  tw_list_item items[];
} tw_list_result;

/* Flags of tw_deferred_list (DeferredList's keyword arguments). */
#define TW_DL_FIRE_ON_ONE_CALLBACK 0x1u
#define TW_DL_FIRE_ON_ONE_ERRBACK 0x2u
#define TW_DL_CONSUME_ERRORS 0x4u

/*
 * tw_deferred_list: DeferredList(ds, fireOnOneCallback, fireOnOneErrback,
 * consumeErrors). The array is copied (later changes to it are ignored).
 * Fires with a tw_list_result when all inputs fired (input order), or at the
 * first success (FIRE_ON_ONE_CALLBACK, index set; if every input fails, the
 * full list, index SIZE_MAX), or errbacks with FirstError
 * (tw_failure_first_error) at the first failure (FIRE_ON_ONE_ERRBACK).
 * n == 0 fires at once with an empty list - except with FIRE_ON_ONE_CALLBACK,
 * where, as in Twisted, it never fires. Cancelling the list cancels every
 * input that has not fired (inputs keep firing it as they complete).
 *
 * References: the inputs keep the list alive (they are its producers), so
 * "create, add callbacks, unref" works; the list does not keep its inputs
 * alive (that would be a cycle): an input that nothing else holds can never
 * fire, so it goes, and so does a list left with nothing to fire it. Once
 * the list has fired its result is yours: inputs that fire later keep their
 * results (Twisted also records them in the delivered list).
 * Adding the list's pairs to the inputs is all-or-nothing: on error nothing
 * was attached.
 * Returns 0 and *out (a new reference), or an error with *out NULL (when
 * out is not NULL): TW_EINVAL (out NULL, ds NULL with n > 0, a NULL or
 * freed entry, unknown flags), TW_ENOMEM.
 */
TW_EXTERN int tw_deferred_list(tw_deferred **out, tw_deferred *const *ds,
                               size_t n, unsigned flags);

/*
 * tw_gather_results: gatherResults(ds, consumeErrors): fires with a
 * tw_list_result of the values (every item succeeded), or errbacks with
 * FirstError wrapping the first failure and its index. Cancelling cancels
 * every input. Errors as tw_deferred_list's.
 */
TW_EXTERN int tw_gather_results(tw_deferred **out, tw_deferred *const *ds,
                                size_t n, int consume_errors);

/*
 * tw_race: race(ds) (Twisted 23.8+): fires with a tw_list_result whose
 * index is the first input to succeed (items[index] holds its value), and
 * cancels every other input; if all fail, errbacks with a FailureGroup of the
 * failures in input order. Every input's result is consumed (left None), as
 * in Twisted; results arriving after the winner are released. Cancelling
 * the race cancels every input. n == 0 never fires. Errors as
 * tw_deferred_list's.
 */
TW_EXTERN int tw_race(tw_deferred **out, tw_deferred *const *ds, size_t n);

/* ---- DeferredLock, DeferredSemaphore, DeferredQueue ----------------------- */

typedef struct tw_deferred_lock tw_deferred_lock;
typedef struct tw_deferred_semaphore tw_deferred_semaphore;
typedef struct tw_deferred_queue tw_deferred_queue;

/*
 * tw_deferred_lock_new / _free: DeferredLock(). NULL when out of memory.
 * Freeing a lock with waiters cancels their Deferreds (CancelledError); a
 * tw_deferred_lock_run still in progress keeps what it needs alive.
 * Like Deferreds, locks, semaphores and queues are single-threaded.
 */
TW_EXTERN tw_deferred_lock *tw_deferred_lock_new(void);
TW_EXTERN void tw_deferred_lock_free(tw_deferred_lock *lock);

/*
 * tw_deferred_lock_acquire: a Deferred (in *out) that fires with the lock
 * (a value without destructor, as Twisted fires with the lock) when it is
 * acquired - at once when it is free. Cancelling a waiting acquire removes
 * it (CancelledError); cancelling after acquisition does nothing.
 * Errors: TW_EINVAL, TW_ENOMEM (nothing acquired or queued).
 */
TW_EXTERN int tw_deferred_lock_acquire(tw_deferred_lock *lock,
                                       tw_deferred **out);

/*
 * tw_deferred_lock_release: release; the first waiter (if any) acquires it
 * at once, inside this call. As in Twisted, the lock stays held and the
 * waiter leaves the queue before its Deferred fires: its callbacks own the
 * lock, so a release there passes it on (or frees it) and an acquire there
 * waits. Errors: TW_EINVAL, TW_ENOTLOCKED (Twisted asserts).
 */
TW_EXTERN int tw_deferred_lock_release(tw_deferred_lock *lock);

/* tw_deferred_lock_locked: 1 when held, 0 when free (0 also for NULL: a
 * yes/no, never a code). */
TW_EXTERN int tw_deferred_lock_locked(const tw_deferred_lock *lock);

/*
 * tw_deferred_lock_run: DeferredLock.run(f): acquire, call fn(arg) (as
 * maybe_deferred), release when its result (or the Deferred it returned)
 * is ready, whether success or failure; *out fires with that result. If
 * the run can never finish (its Deferred is freed while fn's Deferred is
 * pending), the lock is released then rather than held for ever. If that
 * release fails (fn released the lock itself: TW_ENOTLOCKED), *out fails
 * with it (tw_failure_from_code; Twisted: AssertionError) instead of fn's
 * result, which is released; for a run dropped unfinished, it is logged
 * (TW_LOG_ERROR).
 * Errors: TW_EINVAL (NULL fn: Twisted raises TypeError), TW_ENOMEM.
 */
TW_EXTERN int tw_deferred_lock_run(tw_deferred_lock *lock, tw_result_fn fn,
                                   void *arg, tw_deferred **out);

/*
 * tw_deferred_semaphore_new: DeferredSemaphore(tokens). Returns 0 and *out,
 * or an error with *out NULL (when out is not NULL): TW_EINVAL (out NULL,
 * tokens < 1: Twisted's ValueError), TW_ENOMEM.
 */
TW_EXTERN int tw_deferred_semaphore_new(tw_deferred_semaphore **out,
                                        int tokens);
/* As the lock's: free cancels waiters; acquire fires with the semaphore;
 * release hands the token to the first waiter before firing it (its
 * callbacks own the token); run holds a token until fn's result is ready
 * and fails with a release's error. */
TW_EXTERN void tw_deferred_semaphore_free(tw_deferred_semaphore *sem);
TW_EXTERN int tw_deferred_semaphore_acquire(tw_deferred_semaphore *sem,
                                            tw_deferred **out);
/* Errors: TW_EINVAL, TW_ENOTLOCKED when every token is already free. */
TW_EXTERN int tw_deferred_semaphore_release(tw_deferred_semaphore *sem);
TW_EXTERN int tw_deferred_semaphore_run(tw_deferred_semaphore *sem,
                                        tw_result_fn fn, void *arg,
                                        tw_deferred **out);
/* Tokens currently available (>= 0), and the limit; TW_EINVAL for NULL. */
TW_EXTERN int tw_deferred_semaphore_tokens(const tw_deferred_semaphore *sem);
TW_EXTERN int tw_deferred_semaphore_limit(const tw_deferred_semaphore *sem);

/*
 * tw_deferred_queue_new: DeferredQueue(size, backlog); pass TW_UNLIMITED for
 * None; 0 is allowed (every put without a waiter overflows, every get on an
 * empty queue underflows). Returns 0 and *out, or an error with *out NULL
 * (when out is not NULL): TW_EINVAL (out NULL), TW_ENOMEM.
 */
#define TW_UNLIMITED ((size_t)-1)
TW_EXTERN int tw_deferred_queue_new(tw_deferred_queue **out, size_t size,
                                    size_t backlog);

/*
 * tw_deferred_queue_free: pending values are destroyed; waiting gets are
 * cancelled (CancelledError).
 */
TW_EXTERN void tw_deferred_queue_free(tw_deferred_queue *q);

/*
 * tw_deferred_queue_put: hand value to the first waiting get, else queue it.
 * The get leaves the queue before it fires, so a put in its callbacks goes
 * to the next get (or is queued), as in Twisted.
 * Takes ownership of value when it returns 0.
 * Errors: TW_EINVAL, TW_EOVERFLOW (queue full: QueueOverflow), TW_ENOMEM.
 */
TW_EXTERN int tw_deferred_queue_put(tw_deferred_queue *q, void *value,
                                    tw_free_fn value_free);

/*
 * tw_deferred_queue_get: a Deferred for the next value: fired at once when a
 * value is pending (the value moves into it), else waiting (cancelling it
 * removes it from the queue). Errors: TW_EINVAL, TW_EUNDERFLOW (too many
 * waiters: QueueUnderflow), TW_ENOMEM (the value stays queued).
 */
TW_EXTERN int tw_deferred_queue_get(tw_deferred_queue *q, tw_deferred **out);

/* Pending values and waiting gets; 0 for NULL. */
TW_EXTERN size_t tw_deferred_queue_pending(const tw_deferred_queue *q);
TW_EXTERN size_t tw_deferred_queue_waiting(const tw_deferred_queue *q);

/*
 * tw_log_error: Twisted's defer.logError, ready to pass as an errback: logs
 * the failure (TW_LOG_ERROR) and returns it unchanged. arg is ignored.
 */
TW_EXTERN tw_result tw_log_error(tw_result result, void *arg);

#ifdef __cplusplus
}
#endif
#endif /* TWUV_DEFER_H */
