/*
 * lib/threads.c - the reactor's thread pool, defer_to_thread,
 * call_multiple_in_thread and blocking_call_from_thread (threads.h).
 *
 * Everything that crosses threads goes through the two thread-safe doors:
 * tw_threadpool_call_in_thread_with_callback (loop -> pool) and
 * tw_reactor_call_from_thread (pool -> loop), or their forms with the
 * caller's memory for defer_to_thread's jobs (tw__threadpool_submit_ext,
 * tw__reactor_call_from_thread_node). Deferreds are only ever touched on
 * the loop thread. The reactor is reached through reactor-internal.h only:
 * its pool, blocked callers and results it must hand over at free are its
 * children (docs/design.md, "Reactor children").
 */
#include "defer-internal.h"
#include "reactor-internal.h"
#include "threadpool-internal.h"
#include "tnode.h"

#include <math.h>
#include <string.h>
#include <uv.h>

/* ---- the reactor's pool --------------------------------------------------- */

/*
 * The reactor's pool, as one of its children: stopped by its own "during
 * shutdown" trigger (Twisted's _stopThreadPool, added when the pool is
 * made, so that it runs among the other during-shutdown triggers where
 * Twisted's does), or by tw_reactor_free (close) if the reactor never got
 * that far.
 */
typedef struct tw__pool_child {
  tw__child child; /* first */
  tw_reactor *r;
  tw_threadpool *tp;
  tw_trigger_id start_id; /* the "after startup" start, until it ran */
  tw_trigger_id stop_id;  /* the "during shutdown" stop, until it ran */
} tw__pool_child;

/* Only the reactor stops and frees its pool, on its loop thread (the one
 * driving the loop now: for a uv pool, not necessarily the one it was
 * made on). */
static int tw__reactor_owns_pool(void *r) {
  return tw_reactor_in_loop_thread(r);
}

static int tw__pool_releasing(void *r) {
  (void)r;
  return 1;
}

static tw_result tw__pool_start(void *arg) {
  tw__pool_child *rp = arg;
  rp->start_id = 0;
  (void)tw_threadpool_start(rp->tp);
  return tw_result_none();
}

/* Forget the pool, stop it (joining its threads), free it; the child is
 * done. */
static void tw__pool_release(tw__pool_child *rp) {
  tw_reactor *r = rp->r;
  tw_threadpool *tp = rp->tp;
  /* Neither trigger may run with rp gone (the one running now was taken
   * off its list already: TW_ENOENT). */
  if (rp->start_id != 0)
    (void)tw_reactor_remove_system_event_trigger(r, rp->start_id);
  if (rp->stop_id != 0)
    (void)tw_reactor_remove_system_event_trigger(r, rp->stop_id);
  tw__reactor_set_pool(r, NULL);
  /* Ours to free from here (the loop thread, unless the caller broke
   * that rule: even then, leaving its threads running would be worse). */
  tw__threadpool_own(tp, tw__pool_releasing, r);
  /* Finished jobs hand their results to the loop meanwhile: queued (the
   * shutdown's queue closes after this trigger), or parked once the queue
   * is closed (free): either way their cleanup path runs. */
  (void)tw_threadpool_free(tp);
  tw__reactor_child_done(r, &rp->child);
  tw__free(rp);
}

/* Twisted's _stopThreadPool, a "during shutdown" trigger. */
static tw_result tw__pool_stop(void *arg) {
  tw__pool_child *rp = arg;
  rp->stop_id = 0;
  tw__pool_release(rp);
  return tw_result_none();
}

/* The reactor is being freed before its shutdown stopped the pool. */
static void tw__pool_close(tw__child *c, int why) {
  (void)why; /* TW__CLOSE_FREE: not a TW__CHILD_HALT child */
  tw__pool_release((tw__pool_child *)c);
}

static const tw__child_ops tw__pool_ops = {tw__pool_close};

tw_threadpool *tw_reactor_get_thread_pool(tw_reactor *r) {
  tw__pool_child *rp;
  tw_threadpool *tp;
  int err;
  if (r == NULL) return NULL;
  if (!tw_reactor_in_loop_thread(r)) return NULL;
  tp = tw__reactor_pool(r);
  if (tp != NULL) return tp;
  if (tw__reactor_gone(r)) return NULL;
  rp = tw__malloc(sizeof(*rp));
  if (rp == NULL) return NULL;
  tw__child_init(&rp->child, &tw__pool_ops, 0);
  rp->r = r;
  rp->start_id = 0;
  rp->stop_id = 0;
  err = (tw__reactor_flags(r) & TW_REACTOR_UV_POOL)
            ? tw_threadpool_new_uv(&tp, tw_reactor_loop(r))
            : tw_threadpool_new(&tp, 0, 10, "tw-pool");
  if (err != 0) goto fail_child;
  rp->tp = tp;
  tw__threadpool_own(tp, tw__reactor_owns_pool, r);
  /* The stop trigger first: if the start cannot be arranged, nothing is
   * left half-registered. */
  if (tw_reactor_add_system_event_trigger(r, TW_PHASE_DURING, "shutdown",
                                          tw__pool_stop, rp, NULL,
                                          &rp->stop_id) != 0)
    goto fail_pool;
  if (tw_reactor_running(r) == 1) {
    (void)tw_threadpool_start(tp);
  } else if (tw_reactor_add_system_event_trigger(r, TW_PHASE_AFTER, "startup",
                                                 tw__pool_start, rp, NULL,
                                                 &rp->start_id) != 0) {
    goto fail_stop;
  }
  /* Not closing (gone says so): accepted. */
  if (tw__reactor_child_add(r, &rp->child) != 0) goto fail_start;
  tw__reactor_set_pool(r, tp);
  return tp;

fail_start:
  if (rp->start_id != 0)
    (void)tw_reactor_remove_system_event_trigger(r, rp->start_id);
fail_stop:
  (void)tw_reactor_remove_system_event_trigger(r, rp->stop_id);
fail_pool:
  tw_threadpool_free(tp);
fail_child:
  tw__free(rp);
  return NULL;
}

int tw_reactor_call_in_thread(tw_reactor *r, tw_call_fn fn, void *arg,
                              tw_free_fn arg_free) {
  tw_threadpool *tp;
  if (r == NULL || fn == NULL) return TW_EINVAL;
  if (!tw_reactor_in_loop_thread(r)) return TW_EWRONGTHREAD;
  if (tw__reactor_gone(r)) return TW_ESHUTDOWN;
  tp = tw_reactor_get_thread_pool(r);
  if (tp == NULL) return TW_ENOMEM;
  return tw_threadpool_call_in_thread(tp, fn, arg, arg_free);
}

int tw_reactor_suggest_thread_pool_size(tw_reactor *r, int size) {
  tw_threadpool *tp;
  /* -1 would mean "keep" to adjust_poolsize. */
  if (r == NULL || size < 0) return TW_EINVAL;
  if (!tw_reactor_in_loop_thread(r)) return TW_EWRONGTHREAD;
  if (tw__reactor_gone(r)) return TW_ESHUTDOWN;
  tp = tw_reactor_get_thread_pool(r);
  if (tp == NULL) return TW_ENOMEM;
  return tw_threadpool_adjust_poolsize(tp, -1, size);
}

/* ---- defer_to_thread ---------------------------------------------------- */

enum { TW__JOB_QUEUED, TW__JOB_RUNNING, TW__JOB_CANCELLED, TW__JOB_DONE };

/*
 * One node per job, made on the loop thread: the team's task, the pool's
 * job, the call back to the loop and the Deferred (with room for its first
 * callbacks) live in it, so a job allocates nothing else. Two parties hold
 * it - the pool (until its team is done with the task) and the Deferred
 * (until its last reference goes: the job's own, dropped when the job is
 * finished on the loop, and any the caller keeps) - each with a reference
 * of its own in the node's slab (tnode.h), which is the job's free.
 */
typedef struct tw__job {
  /* Shared with the pool thread: the node's first four lines. */
  union {
    struct {
      tw__tp_job_ext tp; /* first: the node's start (its task's room) */
      tw__call_node call;
      tw_reactor *r;
      tw_result_fn fn;
      void *arg;
      tw_free_fn arg_free;
      tw_result result;
      _Atomic int state;
      int ran;     /* fn started (pool side only) */
      int foreign; /* on a pool the reactor does not own: a busy child
                      until the job has handed itself back to the loop */
    };
    char pool_lines[4 * 64 - 8]; /* a node starts 8 bytes into a line */
  };
  /* The loop thread's, on lines of their own: the loop adds callbacks
   * while a pool thread may be running the job. */
  tw__deferred_box box; /* the job holds one reference, dropped by finish */
  int delivered;        /* result handed on */
  /* A child of the reactor (under its lock): a foreign job from submission
   * (busy: free waits) until its result is queued to the loop; any job
   * whose result the loop refused (parked: free hands it over). */
  tw__child child;
} tw__job;

_Static_assert(sizeof(tw__job) <= TW__TNODE_JOB_SIZE, "a job fits its node");
_Static_assert(offsetof(tw__job, box) == sizeof(((tw__job *)0)->pool_lines),
               "the pool thread's part fits its lines");
_Static_assert(offsetof(tw__job, tp) == 0 &&
                   offsetof(tw__tp_job_ext, room) == 0,
               "the task's room is the node's start");

/* The Deferred's last reference went: its hold on the node goes. */
static void tw__job_box_release(tw__deferred_box *box) {
  tw__tnode_put(TW__CONTAINER_OF(box, tw__job, box));
}

/* Pool thread: run the work unless the Deferred was cancelled first. */
static tw_result tw__job_run(void *arg) {
  tw__job *job = arg;
  int expected = TW__JOB_QUEUED;
  tw_result res;
  job->ran = 1;
  if (!atomic_compare_exchange_strong_explicit(
          &job->state, &expected, TW__JOB_RUNNING, memory_order_acq_rel,
          memory_order_acquire))
    res = tw_result_none(); /* cancelled before it started: never runs */
  else
    res = job->fn(job->arg);
  if (!tw__result_adopt_arg(&res, job->arg, job->arg_free) &&
      job->arg_free != NULL)
    job->arg_free(job->arg);
  return res;
}

/* Loop thread: fire the Deferred with the result, unless cancelled. */
static void tw__job_deliver(void *arg) {
  tw__job *job = arg;
  /* Nobody else writes state now: the pool thread's last write came before
   * it queued this call, and cancel runs on this thread. */
  int state = atomic_load_explicit(&job->state, memory_order_relaxed);
  atomic_store_explicit(&job->state, TW__JOB_DONE, memory_order_relaxed);
  job->delivered = 1;
  if (state == TW__JOB_CANCELLED ||
      tw_deferred_callback(tw__box_deferred(&job->box), job->result) != 0)
    tw_result_release(job->result); /* the late result of cancelled work */
}

/* Loop thread (or the thread freeing the reactor): the job is over. */
static void tw__job_finish(void *arg) {
  tw__job *job = arg;
  if (!job->delivered) {
    /* The reactor stopped for good before the result could be delivered.
     * Say so rather than leave the Deferred unfired for ever (firing it
     * also means its canceller can no longer reach this job). A Deferred
     * already cancelled refuses it. */
    tw_failure *f = tw_failure_new(
        &TW_SHUTDOWN_ERROR, TW_ESHUTDOWN,
        "the reactor stopped before the work's result could be delivered");
    tw_result_release(job->result);
    if (tw_deferred_errback(tw__box_deferred(&job->box), f) != 0)
      tw_failure_unref(f);
  }
  /* May free the job (if nobody else holds the Deferred, and the pool is
   * done with it). */
  tw_deferred_unref(tw__box_deferred(&job->box));
}

/* tw_reactor_free, on the loop thread: the result the queue refused. */
static void tw__job_close(tw__child *c, int why) {
  tw__job *job = TW__CONTAINER_OF(c, tw__job, child);
  (void)why; /* TW__CLOSE_FREE: not a TW__CHILD_HALT child */
  tw__reactor_child_done(job->r, c);
  tw__job_finish(job);
}

static const tw__child_ops tw__job_ops = {tw__job_close};

/* Pool thread (or the thread dropping unrun work): hand the result over. */
static void tw__job_on_result(tw_result result, void *ctx) {
  tw__job *job = ctx;
  int err;
  if (!job->ran && job->arg_free != NULL) job->arg_free(job->arg);
  job->result = result;
  /* The loop refuses only once stopped for good; then the job's cleanup
   * runs there when the queue closes (already closed: see below). The
   * job's memory stays ours until we return (the pool's hold). */
  err = tw__reactor_call_from_thread_node(job->r, &job->call, tw__job_deliver,
                                          job, tw__job_finish);
  if (err != 0) {
    /* Only the loop thread may release the Deferred: park the job with the
     * reactor, whose free runs on that thread (tw__job_close). A job on
     * the reactor's own pool gets its child only now: the loop thread
     * does not touch that line per job. */
    if (!job->foreign) tw__child_init(&job->child, &tw__job_ops, 0);
    tw__reactor_child_park(job->r, &job->child);
  } else if (job->foreign) {
    /* Queued: the reactor deals with the job from here, and free need not
     * wait for it. This thread's last access to the reactor. */
    tw__reactor_child_done(job->r, &job->child);
  }
}

/* Loop thread: Deferred.cancel() on a defer_to_thread Deferred. */
static void tw__job_cancel(tw_deferred *d, void *arg) {
  tw__job *job = arg;
  (void)d;
  /* Queued: it will be skipped. Running: its result will be released.
   * Either way the Deferred fails with CancelledError now (we leave it
   * unfired, so tw_deferred_cancel errbacks it). */
  (void)atomic_exchange_explicit(&job->state, TW__JOB_CANCELLED,
                                 memory_order_acq_rel);
}

int tw_defer_to_thread_pool(tw_reactor *r, tw_threadpool *tp, tw_result_fn fn,
                            void *arg, tw_free_fn arg_free,
                            tw_deferred **out) {
  tw__job *job;
  tw_deferred *d;
  int err;
  if (out != NULL) *out = NULL;
  if (r == NULL || tp == NULL || fn == NULL || out == NULL) return TW_EINVAL;
  if (!tw_reactor_in_loop_thread(r)) return TW_EWRONGTHREAD;
  if (tw__reactor_gone(r)) return TW_ESHUTDOWN;
  job = tw__tnode_get_kind(TW__TNODE_JOB);
  if (job == NULL) return TW_ENOMEM;
  d = tw__deferred_box_init(&job->box, tw__job_cancel, job,
                            tw__job_box_release, __FILE__, __LINE__);
  job->r = r;
  (void)tw_deferred_ref(d); /* the job's */
  job->fn = fn;
  job->arg = arg;
  job->arg_free = arg_free;
  job->result = tw_result_none();
  atomic_init(&job->state, TW__JOB_QUEUED);
  job->ran = 0;
  job->delivered = 0;
  job->foreign = tp != tw__reactor_pool(r);
  /* A foreign job is a busy child until it has handed its result back: a
   * pool the reactor does not own may finish it after the reactor is gone
   * (free refuses meanwhile). The reactor's own pool is a child itself,
   * joined before the reactor goes: its jobs need no registration (which
   * costs a lock on each side). */
  if (job->foreign) {
    tw__child_init(&job->child, &tw__job_ops, TW__CHILD_BUSY);
    if ((err = tw__reactor_child_add(r, &job->child)) != 0) goto fail;
  }
  err = tw__threadpool_submit_ext(tp, &job->tp, !job->foreign, tw__job_run,
                                  job, tw__job_on_result, job);
  if (err != 0) goto fail_child;
  *out = d;
  return 0;

fail_child:
  if (job->foreign) tw__reactor_child_done(job->r, &job->child);
fail:
  /* The pool took nothing: its hold goes now. The Deferred, unfired and
   * never reachable by anyone, drops nothing as it goes. */
  tw__tnode_put(job);
  tw_deferred_unref(d);
  tw_deferred_unref(d);
  return err;
}

int tw_defer_to_thread(tw_reactor *r, tw_result_fn fn, void *arg,
                       tw_free_fn arg_free, tw_deferred **out) {
  tw_threadpool *tp;
  if (out != NULL) *out = NULL;
  if (r == NULL || fn == NULL || out == NULL) return TW_EINVAL;
  if (!tw_reactor_in_loop_thread(r)) return TW_EWRONGTHREAD;
  if (tw__reactor_gone(r)) return TW_ESHUTDOWN;
  tp = tw_reactor_get_thread_pool(r);
  if (tp == NULL) return TW_ENOMEM;
  return tw_defer_to_thread_pool(r, tp, fn, arg, arg_free, out);
}

/* ---- call_multiple_in_thread ---------------------------------------------- */

typedef struct tw__multiple {
  size_t n;
  size_t done; /* calls whose arg_free has run */
  tw_thread_call calls[];
} tw__multiple;

static void tw__multiple_run(void *arg) {
  tw__multiple *m = arg;
  tw_failure *failed = NULL;
  for (; m->done < m->n; m->done++) {
    tw_thread_call *c = &m->calls[m->done];
    if (failed == NULL) {
      c->fn(c->arg);
      failed = tw_work_take_failure();
    }
    /* After a failure the rest are skipped, as in Twisted; their data is
     * still released. */
    if (c->arg_free != NULL) c->arg_free(c->arg);
  }
  if (failed != NULL) tw_work_fail(failed); /* the pool logs it */
}

static void tw__multiple_free(void *arg) {
  tw__multiple *m = arg;
  for (; m->done < m->n; m->done++)
    if (m->calls[m->done].arg_free != NULL)
      m->calls[m->done].arg_free(m->calls[m->done].arg);
  tw__free(m);
}

int tw_call_multiple_in_thread(tw_reactor *r, const tw_thread_call *calls,
                               size_t n) {
  tw__multiple *m;
  size_t i;
  int err;
  if (r == NULL || (calls == NULL && n > 0)) return TW_EINVAL;
  for (i = 0; i < n; i++)
    if (calls[i].fn == NULL) return TW_EINVAL;
  if (n > (SIZE_MAX - sizeof(*m)) / sizeof(m->calls[0])) return TW_ENOMEM;
  m = tw__malloc(sizeof(*m) + n * sizeof(m->calls[0]));
  if (m == NULL) return TW_ENOMEM;
  m->n = n;
  m->done = 0;
  if (n > 0) memcpy(m->calls, calls, n * sizeof(m->calls[0]));
  err = tw_reactor_call_in_thread(r, tw__multiple_run, m, tw__multiple_free);
  if (err != 0) tw__free(m);
  return err;
}

/* ---- blocking_call_from_thread --------------------------------------------- */

enum {
  TW__BC_PENDING,
  TW__BC_DONE,
  TW__BC_TIMEDOUT,
  TW__BC_SHUTDOWN,
  TW__BC_DROPPED /* the Deferred was freed unfired: no result will come */
};

typedef struct tw__blocking {
  tw__child child; /* first: a child of the reactor while we wait */
  uv_mutex_t mutex;
  uv_cond_t cond;
  int state;            /* under mutex */
  int refs;             /* under mutex: the caller's and the loop side's */
  tw_result result;     /* under mutex, once DONE */
  tw_result_fn fn;
  void *arg;
  /* Loop thread only: what a timeout cancels. Not a reference: if nothing
   * else holds the Deferred, it can never fire, and its being freed is what
   * tells the waiter (DROPPED) - holding it here would hang the waiter and
   * leak the two in a cycle. */
  tw_deferred *pending;
} tw__blocking;

static void tw__bc_unref(tw__blocking *b) {
  int last;
  uv_mutex_lock(&b->mutex);
  last = --b->refs == 0;
  uv_mutex_unlock(&b->mutex);
  if (!last) return;
  uv_cond_destroy(&b->cond);
  uv_mutex_destroy(&b->mutex);
  tw__free(b);
}

/* Reactor: it stopped running (halt: stop, crash) or is being freed. The
 * caller's thread leaves (tw__reactor_child_done) when it wakes; b stays
 * valid meanwhile (the reactor pins it). */
static void tw__bc_release(tw__child *c, int why) {
  tw__blocking *b = (tw__blocking *)c;
  (void)why;
  uv_mutex_lock(&b->mutex);
  if (b->state == TW__BC_PENDING) {
    b->state = TW__BC_SHUTDOWN;
    uv_cond_signal(&b->cond);
  }
  uv_mutex_unlock(&b->mutex);
}

/* Loop thread: the result is here. Consumes it, so nothing is left for the
 * "Unhandled error in Deferred" report. */
static tw_result tw__bc_deliver(tw_result result, void *arg) {
  tw__blocking *b = arg;
  b->pending = NULL;
  uv_mutex_lock(&b->mutex);
  if (b->state == TW__BC_PENDING) {
    b->result = result;
    b->state = TW__BC_DONE;
    uv_cond_signal(&b->cond);
    result = tw_result_none();
  }
  uv_mutex_unlock(&b->mutex);
  tw_result_release(result); /* nobody waits for it any more */
  return tw_result_none();
}

static const tw__child_ops tw__bc_ops = {tw__bc_release};

static void tw__bc_unref_cb(void *arg) { tw__bc_unref(arg); }

/* Loop thread: the callbacks are done with b - run, or dropped unrun with
 * their Deferred. */
static void tw__bc_callbacks_gone(void *arg) {
  tw__blocking *b = arg;
  b->pending = NULL;
  uv_mutex_lock(&b->mutex);
  if (b->state == TW__BC_PENDING) {
    b->state = TW__BC_DROPPED;
    uv_cond_signal(&b->cond);
  }
  uv_mutex_unlock(&b->mutex);
  tw__bc_unref(b);
}

/* Loop thread: maybeDeferred(f).addBoth(deliver). */
static void tw__bc_start(void *arg) {
  tw__blocking *b = arg;
  tw_deferred *d;
  int pending;
  /* The caller may have been released (shutdown, timeout) before the loop
   * got here: then fn must not run, or a caller told TW_ESHUTDOWN could not
   * know whether its work happened. */
  uv_mutex_lock(&b->mutex);
  pending = b->state == TW__BC_PENDING;
  uv_mutex_unlock(&b->mutex);
  if (!pending) return;
  d = tw_maybe_deferred(b->fn, b->arg);
  if (d == NULL) {
    tw__bc_deliver(tw_result_failure(tw_failure_from_code(TW_ENOMEM)), b);
    return;
  }
  uv_mutex_lock(&b->mutex);
  b->refs++; /* the callbacks' */
  uv_mutex_unlock(&b->mutex);
  b->pending = d;
  if (tw_deferred_add_callbacks_full(d, tw__bc_deliver, tw__bc_deliver, b,
                                     tw__bc_callbacks_gone) != 0) {
    b->pending = NULL;
    tw__bc_unref(b);
    tw__bc_deliver(tw_result_failure(tw_failure_from_code(TW_ENOMEM)), b);
  }
  tw_deferred_unref(d);
}

/* Loop thread: the caller gave up waiting. */
static void tw__bc_cancel(void *arg) {
  tw__blocking *b = arg;
  if (b->pending != NULL) (void)tw_deferred_cancel(b->pending);
}

int tw_blocking_call_from_thread(tw_reactor *r, tw_result_fn fn, void *arg,
                                 tw_result *result, double timeout) {
  tw__blocking *b;
  int err, state;
  uint64_t deadline = 0;
  if (result != NULL) *result = tw_result_none();
  if (r == NULL || fn == NULL || result == NULL || isnan(timeout) ||
      timeout < 0)
    return TW_EINVAL;
  /* Twisted's blockingCallFromThread hangs here for ever. */
  if (tw_reactor_in_loop_thread(r)) return TW_EDEADLK;
  b = tw__malloc(sizeof(*b));
  if (b == NULL) return TW_ENOMEM;
  /* Their failure is reported with libuv's code: a mutex or condition
   * that cannot be made is not out of memory. */
  if ((err = uv_mutex_init(&b->mutex)) != 0) goto fail_memory;
  if ((err = uv_cond_init(&b->cond)) != 0) goto fail_mutex;
  tw__child_init(&b->child, &tw__bc_ops, TW__CHILD_HALT);
  b->state = TW__BC_PENDING;
  b->refs = 2; /* ours, and the loop call's */
  b->result = tw_result_none();
  b->fn = fn;
  b->arg = arg;
  b->pending = NULL;
  /* Beyond ~292 years of nanoseconds (or past the end of uint64) is as
   * good as no timeout - and converting it would be undefined. */
  if (isfinite(timeout) && timeout * 1e9 < 9.0e18) {
    deadline = uv_hrtime() + (uint64_t)(timeout * 1e9);
    if (deadline == 0) deadline = 1; /* 0 means "no timeout" below */
  }

  /* TW_ESHUTDOWN once the reactor was stopped, crashed or is being freed;
   * before the first run it is accepted and waits. From here until we
   * leave, tw_reactor_free waits for us. */
  if ((err = tw__reactor_child_add(r, &b->child)) != 0) goto fail_refs;
  err = tw_reactor_call_from_thread(r, tw__bc_start, b, tw__bc_unref_cb);
  if (err != 0) {
    err = err == TW_ENOMEM ? err : TW_ESHUTDOWN;
    goto fail_child;
  }

  uv_mutex_lock(&b->mutex);
  while (b->state == TW__BC_PENDING) {
    if (deadline == 0) {
      uv_cond_wait(&b->cond, &b->mutex);
    } else {
      uint64_t now = uv_hrtime();
      if (now >= deadline ||
          uv_cond_timedwait(&b->cond, &b->mutex, deadline - now) ==
              UV_ETIMEDOUT) {
        if (b->state == TW__BC_PENDING) b->state = TW__BC_TIMEDOUT;
      }
    }
  }
  state = b->state;
  if (state == TW__BC_DONE) *result = b->result;
  uv_mutex_unlock(&b->mutex);

  if (state == TW__BC_TIMEDOUT) {
    /* Cancel it on the loop; the late result is released there. */
    uv_mutex_lock(&b->mutex);
    b->refs++;
    uv_mutex_unlock(&b->mutex);
    if (tw_reactor_call_from_thread(r, tw__bc_cancel, b, tw__bc_unref_cb) != 0)
      tw__bc_unref(b);
  }
  tw__reactor_child_done(r, &b->child); /* our last access to r */
  tw__bc_unref(b);
  switch (state) {
    case TW__BC_DONE:
      return 0;
    case TW__BC_TIMEDOUT:
      return TW_ETIMEDOUT;
    case TW__BC_DROPPED:
      return TW_ECANCELLED;
    default:
      return TW_ESHUTDOWN;
  }

fail_child:
  tw__reactor_child_done(r, &b->child);
fail_refs:
  b->refs = 1;
  tw__bc_unref(b); /* destroys the cond and mutex, frees b */
  return err;
fail_mutex:
  uv_mutex_destroy(&b->mutex);
fail_memory:
  tw__free(b);
  return err;
}
