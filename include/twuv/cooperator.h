/*
 * twuv/cooperator.h - cooperative iteration of long work on one thread
 * (twisted.internet.task.Cooperator, CooperativeTask, cooperate, coiterate).
 *
 * A task is an iterator: a C function called again and again, one unit of
 * work per call, until it says it is done. A cooperator runs its tasks in
 * turn, a time slice per tick (0.01 s by default), and schedules the next
 * tick on a tw_clock (callLater(1e-8), as Twisted's default scheduler), so
 * that long work shares the reactor thread with everything else. An
 * iterator that returns a Deferred pauses its task until that Deferred has
 * fired.
 *
 * Like task.h, this takes a tw_clock, never a reactor: pass
 * tw_reactor_clock(reactor) in a program, a manual clock in a test (then
 * tw_clock_advance(clock, TW_COOPERATOR_EPSILON) runs one tick). There is no
 * global cooperator: Twisted's module-level task.cooperate/coiterate use
 * one on the global reactor; here tw_cooperate and tw_coiterate take the
 * cooperator the program made (one per clock is what Twisted's global is).
 *
 * Threads: a cooperator and its tasks belong to the clock's thread, like
 * the clock. Using one on the reactor's clock off its loop thread returns
 * TW_EWRONGTHREAD.
 *
 * Errors: misuse returns a negative code where Twisted raises: a finished
 * task (TaskDone, TaskStopped, TaskFailed, SchedulerStopped in Twisted)
 * gives TW_ENOTRUNNING, and tw_cooperative_task_completion says which;
 * NotPaused gives TW_EINVAL (as tw_deferred_unpause without a pause). The
 * error types below are the failures whenDone Deferreds fail with, and what
 * tw_cooperative_task_completion returns.
 */
#ifndef TWUV_COOPERATOR_H
#define TWUV_COOPERATOR_H

#include "clock.h"
#include "common.h"
#include "defer.h"
#include "failure.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The default scheduler's delay (Twisted's _EPSILON), in seconds. */
#define TW_COOPERATOR_EPSILON 0.00000001

/* The default time slice per tick (Twisted's _Timer.MAX_SLICE), seconds. */
#define TW_COOPERATOR_MAX_SLICE 0.01

/* twisted.internet.task's scheduler errors (messages empty, as Twisted's). */
TW_EXTERN extern const tw_error_type TW_SCHEDULER_ERROR;   /* SchedulerError(Exception) */
TW_EXTERN extern const tw_error_type TW_SCHEDULER_STOPPED; /* SchedulerStopped(SchedulerError) */
TW_EXTERN extern const tw_error_type TW_TASK_FINISHED;     /* TaskFinished(SchedulerError) */
TW_EXTERN extern const tw_error_type TW_TASK_DONE;         /* TaskDone(TaskFinished) */
TW_EXTERN extern const tw_error_type TW_TASK_STOPPED;      /* TaskStopped(TaskFinished) */
TW_EXTERN extern const tw_error_type TW_TASK_FAILED;       /* TaskFailed(TaskFinished) */
TW_EXTERN extern const tw_error_type TW_NOT_PAUSED;        /* NotPaused(SchedulerError) */

typedef struct tw_cooperator tw_cooperator;
typedef struct tw_cooperative_task tw_cooperative_task;

/*
 * An iterator's next(): do one unit of work and return
 *   - a value: the unit is done (the cooperator releases it at once, as
 *     Twisted ignores what an iterator yields);
 *   - a Deferred (the cooperator takes your reference): the task pauses
 *     until it fires; a success resumes the task, a failure ends it (that
 *     failure is consumed: the Deferred is left holding None);
 *   - a failure: the task ends with it (TaskFailed).
 * Set *done (0 on entry) to 1 for StopIteration: the task is done, and a
 * value returned with it is released (a failure still counts as failing).
 */
typedef tw_result (*tw_iterator_fn)(void *arg, int *done);

/*
 * Cooperator's optional keyword arguments. A zeroed struct (or NULL) means
 * Twisted's defaults. The functions run on the cooperator's thread; the
 * contexts are borrowed and must outlive the cooperator.
 *
 * terminationPredicateFactory: slice_begin(slice_ctx) is called at the
 * start of each tick (the factory call) and slice_over(slice_ctx) after each
 * unit of work (the predicate): non-zero ends the tick. slice_begin may be
 * NULL. Default (both NULL): Twisted's _Timer, which ends the tick once
 * TW_COOPERATOR_MAX_SLICE seconds of real (monotonic) time have passed since
 * it began, whatever the clock - so a manual clock's tick is bounded too.
 *
 * scheduler: schedule(tick, tick_arg, schedule_ctx) must arrange for
 * tick(tick_arg) to be called later, on this thread, and return a non-NULL
 * handle for that call (NULL: it could not; the operation that needed a
 * tick then fails with TW_ENOMEM). cancel(handle, schedule_ctx) means the
 * call must not run; it is called at most once per handle, and never after
 * the tick ran. Both or neither. Default: tw_clock_call_later(clock,
 * TW_COOPERATOR_EPSILON, ...).
 */
typedef struct tw_cooperator_options {
  void (*slice_begin)(void *slice_ctx);
  int (*slice_over)(void *slice_ctx);
  void *slice_ctx;
  void *(*schedule)(tw_call_fn tick, void *tick_arg, void *schedule_ctx);
  void (*cancel)(void *handle, void *schedule_ctx);
  void *schedule_ctx;
} tw_cooperator_options;

/*
 * tw_cooperator_new: Cooperator(terminationPredicateFactory, scheduler,
 * started). clock schedules the ticks (it may be NULL only with a custom
 * scheduler) and must outlive the cooperator. started == 0: tasks are
 * queued until tw_cooperator_start. opts is copied (NULL: defaults).
 * Returns 0 and *out, or an error with *out NULL (when out is not NULL):
 * TW_EINVAL (out NULL, a NULL clock without scheduler, schedule without
 * cancel or the reverse, slice_begin without slice_over), TW_ENOMEM.
 * Thread-safety: any thread; then use it on the clock's thread only.
 */
TW_EXTERN int tw_cooperator_new(tw_cooperator **out, tw_clock *clock,
                                int started,
                                const tw_cooperator_options *opts);

/*
 * tw_cooperator_start: start(): begin scheduling ticks (also after a stop:
 * new tasks are accepted again). Returns 0; TW_EINVAL (NULL or freed);
 * TW_ENOMEM or TW_EWRONGTHREAD when the pending tick could not be scheduled
 * (the cooperator is then left as it was).
 */
TW_EXTERN int tw_cooperator_start(tw_cooperator *c);

/*
 * tw_cooperator_stop: stop(): stop scheduling ticks; every task in the
 * cooperator ends with SchedulerStopped (its whenDone Deferreds errback with
 * TW_SCHEDULER_STOPPED), as does every task added or resumed until the next
 * start. A task paused at the time is not in the cooperator: it gets
 * SchedulerStopped when resumed. Unlike Twisted 22.4, whose loop removes from
 * the list it walks, every task in the cooperator is ended, not every other
 * one. Errors: TW_EINVAL (NULL or freed), TW_EWRONGTHREAD.
 */
TW_EXTERN int tw_cooperator_stop(tw_cooperator *c);

/* tw_cooperator_running: `running`: 1 when started and not stopped, else 0
 * (0 also for NULL or a freed cooperator: a yes/no, never a code). */
TW_EXTERN int tw_cooperator_running(const tw_cooperator *c);

/*
 * tw_cooperator_free: stop it (as tw_cooperator_stop) and release the
 * caller's handle. Tasks the program still holds keep what they need; any
 * later use of the pointer is an error (TW_EINVAL while tasks still keep
 * it). Safe from inside an iterator or a whenDone callback. NULL is ignored.
 */
TW_EXTERN void tw_cooperator_free(tw_cooperator *c);

/*
 * tw_cooperate: Cooperator.cooperate(iterator) (and task.cooperate, on this
 * cooperator): add a task that calls fn(arg, &done) once per turn, starting
 * at the next tick (never inside this call). *out (may be NULL) receives a
 * reference to the task (tw_cooperative_task_unref). arg_free(arg) runs
 * once, when the task is freed: once it has finished and nothing holds it
 * (whenDone values stay valid while you hold the task), or when the last
 * reference to an unfinished task that nothing can resume goes.
 * On a stopped cooperator the task is added already finished
 * (SchedulerStopped), as in Twisted.
 * Errors: TW_EINVAL (NULL c or fn, freed c), TW_ENOMEM, TW_EWRONGTHREAD
 * (scheduling the tick failed); on error nothing was added, *out is NULL
 * and arg_free is not called.
 */
TW_EXTERN int tw_cooperate(tw_cooperator *c, tw_iterator_fn fn, void *arg,
                           tw_free_fn arg_free, tw_cooperative_task **out);

/*
 * tw_coiterate: Cooperator.coiterate(iterator, doneDeferred) (and
 * task.coiterate): tw_cooperate, returning only a Deferred that fires when
 * the task finishes. done (may be NULL: a new Deferred) is the Deferred to
 * fire; *out receives a reference to it. It fires with arg on success, and
 * arg moves into the result: its value_free is arg_free, so the result
 * keeps arg alive as long as it is held (a callback may keep it; releasing
 * it runs arg_free). On failure (the iterator's failure, or
 * SchedulerStopped) arg_free runs when the task goes, which is after the
 * errbacks have run if done can run them at once; if done is paused or
 * waiting on another Deferred then, arg_free has already run when its
 * errbacks do: an errback must not use arg. A done that has already fired
 * is left as it is, and the task's result is released (Twisted logs
 * AlreadyCalledError).
 * Errors: as tw_cooperate, plus TW_EINVAL for a NULL out; on error *out is
 * NULL, done is untouched and arg_free is not called.
 */
TW_EXTERN int tw_coiterate(tw_cooperator *c, tw_iterator_fn fn, void *arg,
                           tw_free_fn arg_free, tw_deferred *done,
                           tw_deferred **out);

/*
 * tw_cooperative_task_when_done: whenDone(): *out receives a new Deferred
 * that fires with arg (a value without destructor: borrowed, valid while
 * the task is held) when the iterator is done, or fails with the iterator's
 * failure, or with TW_TASK_STOPPED / TW_SCHEDULER_STOPPED. Each call gives
 * a new Deferred; after the task finished it has fired already.
 * Errors: TW_EINVAL (NULL), TW_ENOMEM, TW_EWRONGTHREAD; *out is then NULL.
 */
TW_EXTERN int tw_cooperative_task_when_done(tw_cooperative_task *t,
                                            tw_deferred **out);

/*
 * tw_cooperative_task_pause: pause(): no more work until as many resumes as
 * pauses. Errors: TW_EINVAL (NULL), TW_ENOTRUNNING (finished: Twisted
 * raises the completion state - see tw_cooperative_task_completion),
 * TW_EWRONGTHREAD.
 */
TW_EXTERN int tw_cooperative_task_pause(tw_cooperative_task *t);

/*
 * tw_cooperative_task_resume: resume(): undo one pause; the last one puts
 * the task back into its cooperator (which does no work now: at the next
 * tick). A finished task just counts down. Errors: TW_EINVAL (NULL, or not
 * paused: NotPaused), TW_ENOMEM (nothing changed), TW_EWRONGTHREAD.
 */
TW_EXTERN int tw_cooperative_task_resume(tw_cooperative_task *t);

/*
 * tw_cooperative_task_stop: stop(): end the task now; its whenDone
 * Deferreds fail with TW_TASK_STOPPED (before this returns). Errors:
 * TW_EINVAL (NULL), TW_ENOTRUNNING (already finished), TW_EWRONGTHREAD.
 */
TW_EXTERN int tw_cooperative_task_stop(tw_cooperative_task *t);

/*
 * tw_cooperative_task_completion: the task's completion state (Twisted's
 * _completionState, the exception pause/stop raise): NULL while it runs
 * (or for NULL), &TW_TASK_DONE, &TW_TASK_STOPPED, &TW_TASK_FAILED or
 * &TW_SCHEDULER_STOPPED once finished.
 */
TW_EXTERN const tw_error_type *tw_cooperative_task_completion(
    const tw_cooperative_task *t);

/* tw_cooperative_task_paused: the pause count (>= 0; waiting on a Deferred
 * counts one), TW_EINVAL for NULL. A count, not a yes/no: test it with > 0. */
TW_EXTERN int tw_cooperative_task_paused(const tw_cooperative_task *t);

/* tw_cooperative_task_ref / _unref: references to a task (NULL-safe).
 * Dropping the last one does not stop a task that its cooperator runs. */
TW_EXTERN tw_cooperative_task *tw_cooperative_task_ref(tw_cooperative_task *t);
TW_EXTERN void tw_cooperative_task_unref(tw_cooperative_task *t);

#ifdef __cplusplus
}
#endif
#endif /* TWUV_COOPERATOR_H */
