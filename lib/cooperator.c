/*
 * lib/cooperator.c - Cooperator, CooperativeTask, cooperate and coiterate
 * (cooperator.h), ported from twisted/internet/task.py (Twisted 22.4) one
 * method at a time: the Python names are in the comments.
 */
#include <string.h>
#include <uv.h>

#include "clock-internal.h"
#include "defer-internal.h"

const tw_error_type TW_SCHEDULER_ERROR = {"SchedulerError", &TW_ERROR};
const tw_error_type TW_SCHEDULER_STOPPED = {"SchedulerStopped",
                                            &TW_SCHEDULER_ERROR};
const tw_error_type TW_TASK_FINISHED = {"TaskFinished", &TW_SCHEDULER_ERROR};
const tw_error_type TW_TASK_DONE = {"TaskDone", &TW_TASK_FINISHED};
const tw_error_type TW_TASK_STOPPED = {"TaskStopped", &TW_TASK_FINISHED};
const tw_error_type TW_TASK_FAILED = {"TaskFailed", &TW_TASK_FINISHED};
const tw_error_type TW_NOT_PAUSED = {"NotPaused", &TW_SCHEDULER_ERROR};

struct tw_cooperator {
  size_t refs; /* the user's, each task's, a running tick's */
  tw_clock *clock;
  tw_cooperator_options opts;
  tw_cooperative_task **tasks; /* _tasks: each entry holds a reference */
  size_t ntasks;
  size_t cap;
  /* _metarator, a Python list iterator over _tasks: the index of the next
   * task, and whether it is exhausted (a list iterator stays exhausted
   * even when the list grows). Removals do not move it, as in Python. */
  size_t meta_idx;
  int meta_live;
  void *delayed_call; /* _delayedCall: a tw_delayed_call reference with the
                         default scheduler, the custom scheduler's handle */
  int started;
  int stopped;
  int must_schedule_on_start;
  int freed;
};

struct tw_cooperative_task {
  size_t refs; /* the user's, the cooperator's list, a yielded Deferred's
                  pair, a work unit or completion in progress */
  tw_cooperator *coop; /* a reference */
  tw_iterator_fn fn;
  void *arg;
  tw_free_fn arg_free;
  tw_deferred **deferreds; /* _deferreds: references */
  size_t ndeferreds;
  size_t dcap;
  int pause_count;
  int moves_arg; /* coiterate: success moves arg into the one Deferred */
  const tw_error_type *state; /* _completionState */
  tw_failure *failure;        /* _completionResult when it is a failure */
};

/* ---- references ------------------------------------------------------------ */

static void tw__coop_unref(tw_cooperator *c) {
  if (--c->refs > 0) return;
  /* Only a stopped cooperator loses its last reference (free stops it),
   * so no task and no tick is left. */
  tw_delayed_call_unref(c->opts.schedule ? NULL : c->delayed_call);
  tw__free(c->tasks);
  tw__free(c);
}

tw_cooperative_task *tw_cooperative_task_ref(tw_cooperative_task *t) {
  if (t != NULL) t->refs++;
  return t;
}

void tw_cooperative_task_unref(tw_cooperative_task *t) {
  size_t i;
  if (t == NULL || --t->refs > 0) return;
  /* Unfinished whenDone Deferreds can never fire now: they go with their
   * last reference, as the garbage collector would take them. */
  for (i = 0; i < t->ndeferreds; i++) tw_deferred_unref(t->deferreds[i]);
  tw__free(t->deferreds);
  tw_failure_unref(t->failure);
  if (t->arg_free != NULL) t->arg_free(t->arg);
  tw__coop_unref(t->coop);
  tw__free(t);
}

/* ---- scheduling ------------------------------------------------------------ */

static int tw__coop_check(const tw_cooperator *c) {
  if (c->clock != NULL && c->clock->ops != NULL && c->clock->ops->check)
    return c->clock->ops->check(c->clock);
  return 0;
}

static void tw__coop_tick(void *p);

/* self._delayedCall.cancel(); self._delayedCall = None */
static void tw__coop_cancel_tick(tw_cooperator *c) {
  void *h = c->delayed_call;
  if (h == NULL) return;
  c->delayed_call = NULL;
  if (c->opts.schedule != NULL) {
    c->opts.cancel(h, c->opts.schedule_ctx);
  } else {
    /* Fails harmlessly if the clock already dropped it (clock freed). */
    tw_delayed_call_cancel(h);
    tw_delayed_call_unref(h);
  }
}

/* _reschedule */
static int tw__coop_reschedule(tw_cooperator *c) {
  tw_delayed_call *dc = NULL;
  int err;
  if (!c->started) {
    c->must_schedule_on_start = 1;
    return 0;
  }
  if (c->delayed_call != NULL || c->ntasks == 0) return 0;
  if (c->opts.schedule != NULL) {
    void *h = c->opts.schedule(tw__coop_tick, c, c->opts.schedule_ctx);
    if (h == NULL) return TW_ENOMEM;
    c->delayed_call = h;
    return 0;
  }
  /* The tick needs no reference: stop (and so free) cancels it first. */
  err = tw_clock_call_later(c->clock, TW_COOPERATOR_EPSILON, tw__coop_tick,
                            c, NULL, &dc);
  if (err == 0) c->delayed_call = dc;
  return err;
}

/* The list's append; the caller's reference moves into the list. */
static int tw__coop_append(tw_cooperator *c, tw_cooperative_task *t) {
  if (c->ntasks == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 4;
    tw_cooperative_task **n = tw__realloc(c->tasks, cap * sizeof(*n));
    if (n == NULL) return TW_ENOMEM;
    c->tasks = n;
    c->cap = cap;
  }
  c->tasks[c->ntasks++] = t;
  return 0;
}

/* _removeTask (a task not in the list is ignored: Twisted would raise
 * ValueError, which only a stop that skipped tasks could cause). */
static void tw__coop_remove(tw_cooperator *c, tw_cooperative_task *t) {
  size_t i;
  for (i = 0; i < c->ntasks; i++)
    if (c->tasks[i] == t) break;
  if (i == c->ntasks) return;
  memmove(c->tasks + i, c->tasks + i + 1,
          (c->ntasks - i - 1) * sizeof(*c->tasks));
  c->ntasks--;
  /* If no work left to do, cancel the delayed call. */
  if (c->ntasks == 0) tw__coop_cancel_tick(c);
  tw_cooperative_task_unref(t);
}

/* ---- completion ------------------------------------------------------------ */

/* Deferred.callback that tolerates a Deferred fired behind our back (as
 * Twisted's AlreadyCalledError would end up: the result is dropped). */
static void tw__fire(tw_deferred *d, tw_result r) {
  if (tw_deferred_callback(d, r) != 0) tw_result_release(r);
}

/* _completeWith(state, result): f is a failure reference, or NULL for
 * success (the result is the iterator: arg). */
static void tw__task_complete(tw_cooperative_task *t,
                              const tw_error_type *state, tw_failure *f) {
  tw_deferred **ds;
  size_t i, n;
  t->refs++; /* removing it from the list drops one */
  t->state = state;
  t->failure = f;
  if (t->pause_count == 0) tw__coop_remove(t->coop, t);
  /* The Deferreds fire after all this, because a callback may want to
   * manipulate other tasks (Cooperator.stop must not find this one). */
  ds = t->deferreds;
  n = t->ndeferreds;
  t->deferreds = NULL;
  t->ndeferreds = t->dcap = 0;
  for (i = 0; i < n; i++) {
    if (f != NULL) {
      tw__fire(ds[i], tw_result_failure(tw_failure_ref(f)));
    } else if (t->moves_arg) {
      tw_free_fn arg_free = t->arg_free;
      t->arg_free = NULL; /* the result owns arg now */
      if (tw_deferred_callback(ds[i], tw_result_value(t->arg, arg_free)) != 0)
        t->arg_free = arg_free;
    } else {
      tw__fire(ds[i], tw_result_value(t->arg, NULL));
    }
    tw_deferred_unref(ds[i]);
  }
  tw__free(ds);
  tw_cooperative_task_unref(t);
}

static tw_failure *tw__empty(const tw_error_type *type) {
  return tw_failure_new(type, 0, "%s", "");
}

/* _addTask: the caller's reference moves into the list (or is dropped). */
static int tw__coop_add(tw_cooperator *c, tw_cooperative_task *t) {
  int err;
  if (c->stopped) {
    tw__task_complete(t, &TW_SCHEDULER_STOPPED,
                      tw__empty(&TW_SCHEDULER_STOPPED));
    tw_cooperative_task_unref(t);
    return 0;
  }
  if ((err = tw__coop_append(c, t)) != 0) return err;
  if ((err = tw__coop_reschedule(c)) != 0) {
    c->ntasks--; /* undo the append: the reference is the caller's again */
    return err;
  }
  return 0;
}

/* ---- CooperativeTask ------------------------------------------------------- */

static int tw__task_check(const tw_cooperative_task *t) {
  return t == NULL ? TW_EINVAL : tw__coop_check(t->coop);
}

int tw_cooperative_task_when_done(tw_cooperative_task *t, tw_deferred **out) {
  tw_deferred *d;
  int err;
  if (out != NULL) *out = NULL;
  if (out == NULL) return TW_EINVAL;
  if ((err = tw__task_check(t)) != 0) return err;
  d = tw__deferred_new_full(NULL, NULL, NULL, __FILE__, __LINE__);
  if (d == NULL) return TW_ENOMEM;
  if (t->state == NULL) {
    if (t->ndeferreds == t->dcap) {
      size_t cap = t->dcap ? t->dcap * 2 : 2;
      tw_deferred **n = tw__realloc(t->deferreds, cap * sizeof(*n));
      if (n == NULL) {
        tw_deferred_unref(d);
        return TW_ENOMEM;
      }
      t->deferreds = n;
      t->dcap = cap;
    }
    t->deferreds[t->ndeferreds++] = tw_deferred_ref(d);
  } else if (t->failure != NULL) {
    tw_deferred_errback(d, tw_failure_ref(t->failure));
  } else {
    tw_deferred_callback(d, tw_result_value(t->arg, NULL));
  }
  *out = d;
  return 0;
}

int tw_cooperative_task_pause(tw_cooperative_task *t) {
  int err;
  if ((err = tw__task_check(t)) != 0) return err;
  if (t->state != NULL) return TW_ENOTRUNNING; /* _checkFinish */
  if (++t->pause_count == 1) tw__coop_remove(t->coop, t);
  return 0;
}

int tw_cooperative_task_resume(tw_cooperative_task *t) {
  int err;
  if ((err = tw__task_check(t)) != 0) return err;
  if (t->pause_count == 0) return TW_EINVAL; /* NotPaused */
  if (--t->pause_count == 0 && t->state == NULL) {
    /* The list's reference. */
    if ((err = tw__coop_add(t->coop, tw_cooperative_task_ref(t))) != 0) {
      t->refs--;
      t->pause_count++;
      return err;
    }
  }
  return 0;
}

int tw_cooperative_task_stop(tw_cooperative_task *t) {
  int err;
  if ((err = tw__task_check(t)) != 0) return err;
  if (t->state != NULL) return TW_ENOTRUNNING; /* _checkFinish */
  tw__task_complete(t, &TW_TASK_STOPPED, tw__empty(&TW_TASK_STOPPED));
  return 0;
}

const tw_error_type *tw_cooperative_task_completion(
    const tw_cooperative_task *t) {
  return t ? t->state : NULL;
}

int tw_cooperative_task_paused(const tw_cooperative_task *t) {
  return t ? t->pause_count : TW_EINVAL;
}

/* _oneWorkUnit's lambda result: self.resume() (returns None). */
static tw_result tw__task_yielded_ok(tw_result r, void *p) {
  tw_cooperative_task *t = p;
  int err;
  tw_result_release(r);
  err = tw_cooperative_task_resume(t);
  if (err == TW_ENOMEM && t->state == NULL) {
    /* Out of memory, the task could not go back into its cooperator: end
     * it rather than leave it paused for good. */
    tw__task_complete(t, &TW_TASK_FAILED, tw_failure_from_code(err));
  } else if (err != 0 && err != TW_ENOTRUNNING) {
    /* Twisted's resume raises here (NotPaused: the program already resumed
     * the pause the yield took) and the error surfaces as an unhandled
     * failure of this Deferred; TW_EWRONGTHREAD: fired off the loop
     * thread. Neither may pass silently. */
    return tw_result_failure(tw_failure_new(
        err == TW_EINVAL ? &TW_NOT_PAUSED : &TW_RUNTIME_ERROR, err,
        "resuming the task after its Deferred fired: %s", tw_strerror(err)));
  }
  return tw_result_none();
}

/* _oneWorkUnit's failLater: self._completeWith(TaskFailed(), failure). */
static tw_result tw__task_yielded_failed(tw_result r, void *p) {
  tw_cooperative_task *t = p;
  /* Twisted completes a second time and raises AlreadyCalledError when the
   * task had already finished (stopped while it waited); here the failure
   * stays in the Deferred, reported if nobody handles it. */
  if (t->state != NULL) return r;
  tw__task_complete(t, &TW_TASK_FAILED, r.u.failure);
  return tw_result_none();
}

static void tw__task_unref_cb(void *p) { tw_cooperative_task_unref(p); }

/* _oneWorkUnit */
static void tw__task_work(tw_cooperative_task *t) {
  int done = 0;
  tw_result r = t->fn(t->arg, &done);
  tw_deferred *d;
  if (r.kind == TW_RESULT_FAILURE) {
    if (r.u.failure == NULL)
      r.u.failure = tw_failure_new(&TW_VALUE_ERROR, TW_EINVAL,
                                   "iterator returned a NULL failure");
    if (t->state != NULL) { /* it ended itself meanwhile (stop) */
      tw_log_failure(r.u.failure, "Unhandled error in a stopped task");
      tw_failure_unref(r.u.failure);
      return;
    }
    tw__task_complete(t, &TW_TASK_FAILED, r.u.failure);
    return;
  }
  if (done) {
    tw_result_release(r);
    if (t->state == NULL) tw__task_complete(t, &TW_TASK_DONE, NULL);
    return;
  }
  if (r.kind != TW_RESULT_DEFERRED) {
    tw_result_release(r);
    return;
  }
  d = r.u.deferred;
  if (!tw__deferred_live(d)) {
    if (t->state == NULL)
      tw__task_complete(t, &TW_TASK_FAILED,
                        tw_failure_new(&TW_VALUE_ERROR, TW_EINVAL,
                                       "iterator returned a bad Deferred"));
    return;
  }
  /* self.pause(): Twisted raises out of the tick if the iterator stopped
   * its own task; then the Deferred is simply not waited for. */
  if (tw_cooperative_task_pause(t) != 0) {
    tw_deferred_unref(d);
    return;
  }
  t->refs++; /* the pair's */
  if (tw_deferred_add_callbacks_full(d, tw__task_yielded_ok,
                                     tw__task_yielded_failed, t,
                                     tw__task_unref_cb) != 0) {
    t->refs--;
    tw__task_complete(t, &TW_TASK_FAILED, tw_failure_from_code(TW_ENOMEM));
  }
  tw_deferred_unref(d);
}

/* ---- Cooperator ------------------------------------------------------------ */

int tw_cooperator_new(tw_cooperator **out, tw_clock *clock, int started,
                      const tw_cooperator_options *opts) {
  tw_cooperator *c;
  tw_cooperator_options o;
  if (out != NULL) *out = NULL;
  if (out == NULL) return TW_EINVAL;
  if (opts != NULL)
    o = *opts;
  else
    memset(&o, 0, sizeof(o));
  if ((o.schedule == NULL) != (o.cancel == NULL)) return TW_EINVAL;
  if (o.slice_begin != NULL && o.slice_over == NULL) return TW_EINVAL;
  if (clock == NULL && o.schedule == NULL) return TW_EINVAL;
  c = tw__calloc(1, sizeof(*c));
  if (c == NULL) return TW_ENOMEM;
  c->refs = 1;
  c->clock = clock;
  c->opts = o;
  c->started = started != 0;
  *out = c;
  return 0;
}

/* _Timer: real time, as Twisted's time.time() (monotonic here). */
static double tw__coop_now(void) { return (double)uv_hrtime() * 1e-9; }

/* The metarator's next(), or NULL when exhausted. */
static tw_cooperative_task *tw__coop_meta_next(tw_cooperator *c) {
  if (c->meta_live && c->meta_idx < c->ntasks) return c->tasks[c->meta_idx++];
  c->meta_live = 0;
  return NULL;
}

/* _tick, with _tasksWhileNotStopped inlined. */
static void tw__coop_tick(void *p) {
  tw_cooperator *c = p;
  tw_cooperative_task *t;
  double end = 0.0;
  int err;
  c->refs++; /* an iterator may free the cooperator */
  if (c->opts.schedule == NULL) tw_delayed_call_unref(c->delayed_call);
  c->delayed_call = NULL;
  /* terminator = self._terminationPredicateFactory() */
  if (c->opts.slice_over == NULL)
    end = tw__coop_now() + TW_COOPERATOR_MAX_SLICE;
  else if (c->opts.slice_begin != NULL)
    c->opts.slice_begin(c->opts.slice_ctx);
  while (c->ntasks > 0) {
    while ((t = tw__coop_meta_next(c)) != NULL) {
      t->refs++;
      tw__task_work(t);
      tw_cooperative_task_unref(t);
      if (c->opts.slice_over != NULL ? c->opts.slice_over(c->opts.slice_ctx)
                                     : tw__coop_now() >= end)
        goto out;
    }
    c->meta_idx = 0; /* self._metarator = iter(self._tasks) */
    c->meta_live = 1;
  }
out:
  if ((err = tw__coop_reschedule(c)) != 0) {
    /* No next tick (out of memory): end the tasks rather than let them
     * wait for good. */
    tw_failure *f = tw_failure_from_code(err);
    while (c->ntasks > 0)
      tw__task_complete(c->tasks[0], &TW_TASK_FAILED, tw_failure_ref(f));
    tw_failure_unref(f);
  }
  tw__coop_unref(c);
}

int tw_cooperator_start(tw_cooperator *c) {
  int err, must;
  if (c == NULL || c->freed) return TW_EINVAL;
  if ((err = tw__coop_check(c)) != 0) return err;
  must = c->must_schedule_on_start;
  if (must) {
    int started = c->started, stopped = c->stopped;
    c->started = 1;
    c->stopped = 0;
    c->must_schedule_on_start = 0;
    if ((err = tw__coop_reschedule(c)) != 0) {
      c->started = started;
      c->stopped = stopped;
      c->must_schedule_on_start = 1;
      return err;
    }
  }
  c->started = 1;
  c->stopped = 0;
  return 0;
}

static void tw__coop_stop(tw_cooperator *c) {
  tw_cooperative_task **tasks = c->tasks;
  size_t i, n = c->ntasks;
  c->stopped = 1;
  /* self._tasks = []: take the list first, so that completing one task
   * neither skips the next (Twisted's loop removes from the list it walks
   * and so ends only every other task) nor finds it. */
  c->tasks = NULL;
  c->ntasks = c->cap = 0;
  c->meta_idx = 0;
  c->meta_live = 0;
  /* Cancel the tick before the tasks' whenDone callbacks run: one that
   * restarts the cooperator and adds a task schedules a tick of its own,
   * which must survive (Twisted loses that task). */
  tw__coop_cancel_tick(c);
  for (i = 0; i < n; i++) {
    tw_cooperative_task *t = tasks[i];
    if (t->state == NULL)
      tw__task_complete(t, &TW_SCHEDULER_STOPPED,
                        tw__empty(&TW_SCHEDULER_STOPPED));
    tw_cooperative_task_unref(t);
  }
  tw__free(tasks);
}

int tw_cooperator_stop(tw_cooperator *c) {
  int err;
  if (c == NULL || c->freed) return TW_EINVAL;
  if ((err = tw__coop_check(c)) != 0) return err;
  c->refs++; /* a whenDone callback may free it */
  tw__coop_stop(c);
  tw__coop_unref(c);
  return 0;
}

int tw_cooperator_running(const tw_cooperator *c) {
  if (c == NULL || c->freed) return 0;
  return c->started && !c->stopped;
}

void tw_cooperator_free(tw_cooperator *c) {
  if (c == NULL || c->freed) return;
  c->freed = 1;
  tw__coop_stop(c);
  /* Tasks may keep the struct alive past the clock: a stopped cooperator
   * never schedules, and thread checks have nothing left to check. */
  c->clock = NULL;
  tw__coop_unref(c);
}

static int tw__coop_new_task(tw_cooperator *c, tw_iterator_fn fn, void *arg,
                             tw_cooperative_task **out) {
  tw_cooperative_task *t;
  int err;
  *out = NULL;
  if (c == NULL || fn == NULL || c->freed) return TW_EINVAL;
  if ((err = tw__coop_check(c)) != 0) return err;
  t = tw__calloc(1, sizeof(*t));
  if (t == NULL) return TW_ENOMEM;
  t->refs = 1; /* the caller's */
  t->coop = c;
  t->fn = fn;
  t->arg = arg;
  c->refs++;
  *out = t;
  return 0;
}

/* The end of CooperativeTask.__init__: cooperator._addTask(self). On error
 * the task is freed without arg_free (arg stays the caller's). */
static int tw__coop_add_new(tw_cooperator *c, tw_cooperative_task *t,
                            tw_free_fn arg_free) {
  int err;
  if ((err = tw__coop_add(c, tw_cooperative_task_ref(t))) != 0) {
    t->refs = 1;
    tw_cooperative_task_unref(t);
    return err;
  }
  t->arg_free = arg_free;
  return 0;
}

int tw_cooperate(tw_cooperator *c, tw_iterator_fn fn, void *arg,
                 tw_free_fn arg_free, tw_cooperative_task **out) {
  tw_cooperative_task *t;
  int err;
  if (out != NULL) *out = NULL;
  if ((err = tw__coop_new_task(c, fn, arg, &t)) != 0) return err;
  if ((err = tw__coop_add_new(c, t, arg_free)) != 0) return err;
  if (out != NULL)
    *out = t;
  else
    tw_cooperative_task_unref(t);
  return 0;
}

int tw_coiterate(tw_cooperator *c, tw_iterator_fn fn, void *arg,
                 tw_free_fn arg_free, tw_deferred *done, tw_deferred **out) {
  tw_cooperative_task *t;
  tw_deferred *d;
  int err;
  if (out != NULL) *out = NULL;
  if (out == NULL || (done != NULL && !tw__deferred_live(done)))
    return TW_EINVAL;
  if ((err = tw__coop_new_task(c, fn, arg, &t)) != 0) return err;
  t->deferreds = tw__malloc(sizeof(*t->deferreds));
  d = done ? tw_deferred_ref(done)
           : tw__deferred_new_full(NULL, NULL, NULL, __FILE__, __LINE__);
  if (t->deferreds == NULL || d == NULL) {
    tw_deferred_unref(d);
    tw_cooperative_task_unref(t);
    return TW_ENOMEM;
  }
  /* CooperativeTask(iterator, self).whenDone().chainDeferred(doneDeferred),
   * with doneDeferred as the whenDone Deferred itself: nothing else can
   * see the intermediate one. Added before _addTask, which may complete
   * the task at once (stopped cooperator); Twisted's whenDone after it
   * then fires at once, to the same effect. */
  t->deferreds[0] = tw_deferred_ref(d);
  t->ndeferreds = t->dcap = 1;
  t->moves_arg = 1;
  *out = d;
  if ((err = tw__coop_add_new(c, t, arg_free)) != 0) {
    tw_deferred_unref(d);
    *out = NULL;
    return err;
  }
  tw_cooperative_task_unref(t); /* the list or the Deferred's wait keep it */
  return 0;
}
