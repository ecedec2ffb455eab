/*
 * lib/team.c - Team (Twisted's twisted._threads._team), worker.h: the
 * path of an item (do, the coordinator's steps, the worker's run, the
 * backlog). team-admin.c has the rest (create, grow, shrink, quit, join,
 * free, statistics, pool()); team-struct.h the layout both share.
 *
 * The algorithm is Twisted's, step for step: every decision (which worker,
 * backlog, shrink, quit) is a step run by the coordinator, an exclusive
 * worker, so the state below the "coordinator only" line needs no lock.
 * What C adds:
 *
 * - One allocation per item, from the submitting thread's slab (tnode.h),
 *   or none when the submitter brings the task's memory (tw__team_do_room,
 *   defer_to_thread's jobs). A task carries its intrusive item through all
 *   three hops (coordinator: pick a worker; worker: run it; coordinator:
 *   recycle the worker), so no hop after tw_team_do can fail for lack of
 *   memory with twuv's own workers.
 *
 * - A definite end. Twisted quits the coordinator when the last busy worker
 *   is recycled, but a do that passed its quit check just before quit may
 *   still have its step queued behind; its worker would then find the
 *   coordinator gone. Here `state` counts the external steps (do, grow,
 *   shrink) accepted and not yet run, in the same word as the QUIT bit, and
 *   the team finishes - quits the coordinator and wakes tw_team_join - only
 *   when quit was requested, no worker is busy and that count is 0.
 *
 * - A thread-local frame marks "inside this team's work or coordination",
 *   so that join and free there return TW_EDEADLK instead of hanging.
 *
 * - Fast paths with a serial coordinator (docs/workers.md): a do that finds
 *   it idle runs its step inline, checking quit inside the coordinator, so
 *   it is not counted in `state`; and the backlog's oldest tasks wait in a
 *   lock-free ring, from which a worker finishing its task takes the next
 *   one itself - exactly what its recycle step would do while the backlog
 *   is not empty - instead of going through the coordinator twice.
 *
 * - Retired thread workers whose threads are done are freed when the team
 *   next creates a worker, not all at join.
 */
#include "team-struct.h"


static TW__TLS tw__team_frame *tw__team_frames;

/* tw__team_on_member_thread: set by tw__team_work around its tasks. */
static TW__TLS const tw_team *tw__team_member_thread;

const tw_team *tw__team_on_member_thread(void) {
  return tw__team_member_thread;
}

void tw__team_enter(tw__team_frame *f, const tw_team *t) {
  f->team = t;
  f->prev = tw__team_frames;
  tw__team_frames = f;
}

void tw__team_leave(tw__team_frame *f) { tw__team_frames = f->prev; }

int tw__team_inside(const tw_team *t) {
  const tw__team_frame *f;
  for (f = tw__team_frames; f != NULL; f = f->prev)
    if (f->team == t) return 1;
  return 0;
}

/* ---- Coordinator-only helpers ------------------------------------------- */

void tw__team_publish(tw_team *t) {
  atomic_store_explicit(&t->st_idle, t->idle_n, memory_order_relaxed);
  atomic_store_explicit(&t->st_busy, t->busy_n, memory_order_relaxed);
  /* Release: a statistics reader who sees this count sees the ring as it
   * was when it was made (or later), so a task taken from the ring and put
   * back in front is not also counted in the ring. */
  atomic_store_explicit(&t->st_backlog, t->front_n + t->over_n,
                        memory_order_release);
  atomic_store_explicit(&t->st_created, t->created_n, memory_order_relaxed);
}

static void tw__team_idle_push(tw_team *t, tw__member *m) {
  m->next = t->idle;
  t->idle = m;
  t->idle_n++;
}

static tw__member *tw__team_idle_pop(tw_team *t) {
  tw__member *m = t->idle;
  if (m != NULL) {
    t->idle = m->next;
    t->idle_n--;
  }
  return m;
}

/* ---- The backlog ------------------------------------------------------- */

/*
 * Where the i-th task goes: consecutive tasks eight slots (a line) apart,
 * so that the coordinator filling the next slot and a worker taking the
 * previous one do not share a line.
 */
#define TW__TEAM_RING_LINES (TW__TEAM_RING / 8)
static inline size_t tw__ring_slot(uint64_t i) {
  return (size_t)((i % TW__TEAM_RING_LINES) * 8 +
                  (i / TW__TEAM_RING_LINES) % 8);
}

/* Add at the ring's tail if there is room (coordinator only). */
static int tw__ring_put(tw_team *t, tw__task *task) {
  uint64_t tail = t->ring_tail_mine;
  /* The head only grows: re-read it (a line the takers write) only when
   * the ring looks full. */
  if (tail - t->ring_head_seen >= TW__TEAM_RING) {
    t->ring_head_seen =
        atomic_load_explicit(&t->ring_head, memory_order_acquire);
    if (tail - t->ring_head_seen >= TW__TEAM_RING) return 0;
  }
  atomic_store_explicit(&t->ring[tw__ring_slot(tail)], task,
                        memory_order_relaxed);
  /* Publishes the slot and the task to takers. */
  t->ring_tail_mine = tail + 1;
  atomic_store_explicit(&t->ring_tail, tail + 1, memory_order_release);
  return 1;
}

/*
 * Take the ring's oldest task, or NULL if empty (any thread). The slot is
 * read before the CAS: once ring_head has passed it the coordinator may
 * refill it, but then the CAS fails, since ring_head never comes back.
 */
static tw__task *tw__ring_take(tw_team *t) {
  uint64_t head = atomic_load_explicit(&t->ring_head, memory_order_acquire);
  for (;;) {
    tw__task *task;
    uint64_t tail = atomic_load_explicit(&t->ring_tail, memory_order_acquire);
    if (head == tail) return NULL;
    task = atomic_load_explicit(&t->ring[tw__ring_slot(head)],
                                memory_order_relaxed);
    if (atomic_compare_exchange_weak_explicit(&t->ring_head, &head, head + 1,
                                              memory_order_acq_rel,
                                              memory_order_acquire)) {
      /* Running low: ask the coordinator to refill at its next step. */
      if (tail - head <= TW__TEAM_RING / 4 &&
          !atomic_load_explicit(&t->refill_wanted, memory_order_relaxed))
        atomic_store_explicit(&t->refill_wanted, 1, memory_order_relaxed);
      return task;
    }
  }
}

/*
 * Move overflow into the ring while it has room (coordinator only, at the
 * end of each step, when there is overflow). The ring was full at the last
 * look at its head (a line the takers keep writing): look again only when
 * a taker asked (refill_wanted, set when it left the ring a quarter full).
 * At most TW__TEAM_REFILL_MAX tasks per step keep steps short.
 */
#define TW__TEAM_REFILL_MAX 256

static void tw__team_backlog_refill(tw_team *t) {
  tw__item *it;
  unsigned moved = 0, seq;
  if (t->ring_tail_mine - t->ring_head_seen >= TW__TEAM_RING) {
    if (!atomic_load_explicit(&t->refill_wanted, memory_order_relaxed))
      return;
    atomic_store_explicit(&t->refill_wanted, 0, memory_order_relaxed);
  }
  seq = atomic_load_explicit(&t->st_seq, memory_order_relaxed);
  /* A seqlock write around the move (tw_team_statistics reads). No fence
   * (gcc refuses them under TSan): the release stores of ring_tail and
   * st_backlog order this odd value before them for whoever sees either. */
  atomic_store_explicit(&t->st_seq, seq + 1, memory_order_relaxed);
  while (moved++ < TW__TEAM_REFILL_MAX) {
    /* Popped before the put: from then on a worker may run the task and
     * reuse its links. */
    TW__FIFO_POP(&t->over, it, next);
    if (it == NULL) break;
#if defined(__GNUC__)
    if (t->over.head != NULL) __builtin_prefetch(t->over.head);
#endif
    if (!tw__ring_put(t, TW__CONTAINER_OF(it, tw__task, item))) {
      TW__FIFO_UNPOP(&t->over, it, next);
      break;
    }
    t->over_n--;
  }
  atomic_store_explicit(&t->st_backlog, t->front_n + t->over_n,
                        memory_order_release);
  atomic_store_explicit(&t->st_seq, seq + 2, memory_order_release);
}

/* Append (front = 0), or put back at the head (front = 1). */
static void tw__team_backlog_push(tw_team *t, tw__task *task, int front) {
  tw__item *it = &task->item;
  if (front) {
    it->next = t->front_head;
    t->front_head = it;
    if (t->front_n++ == 0)
      atomic_store_explicit(&t->front_busy, 1, memory_order_relaxed);
    return;
  }
  if (TW__FIFO_EMPTY(&t->over) && tw__ring_put(t, task)) return;
  TW__FIFO_PUSH(&t->over, it, next);
  t->over_n++;
}

/* The oldest backlogged task, or NULL (coordinator only). */
tw__task *tw__team_backlog_pop(tw_team *t) {
  tw__item *it = t->front_head;
  tw__task *task;
  if (it != NULL) {
    t->front_head = it->next;
    if (--t->front_n == 0)
      atomic_store_explicit(&t->front_busy, 0, memory_order_relaxed);
    return TW__CONTAINER_OF(it, tw__task, item);
  }
  task = tw__ring_take(t);
  if (task != NULL) return task;
  /* The ring ran dry before a refill: overflow is next in line. */
  TW__FIFO_POP(&t->over, it, next);
  if (it == NULL) return NULL;
  t->over_n--;
  return TW__CONTAINER_OF(it, tw__task, item);
}

static void tw__team_retire(tw_team *t, tw__member *m) {
  (void)tw_worker_quit(m->worker);
  m->next = t->retired;
  t->retired = m;
}

/*
 * Free the retired thread workers whose threads are done, so that a team
 * that keeps shrinking and growing does not keep every thread it ever
 * quit until join. Others (whose end cannot be seen) wait for join.
 */
static void tw__team_reap(tw_team *t) {
  tw__member **p = &t->retired, *m;
  while ((m = *p) != NULL) {
    if (m->cls == &tw__thread_worker_class &&
        tw__thread_worker_finished(m->worker)) {
      *p = m->next;
      (void)tw_worker_free(m->worker);
      tw__free_lines(m);
    } else {
      p = &m->next;
    }
  }
}

/*
 * The record is allocated before asking create_worker, so that a worker
 * once created always has one; a pool at its limit says no to every
 * backlogged item, so the unused record is kept for the next attempt.
 * Retired workers are reaped first. NULL with t->create_err set when a
 * worker could not be made (no memory for the record, or what the creator
 * reported), with it 0 when create_worker said "no more".
 */
tw__member *tw__team_create_member(tw_team *t) {
  tw__member *m = t->spare;
  tw_worker *w;
  if (t->retired != NULL) tw__team_reap(t);
  if (m == NULL) m = tw__calloc_lines(sizeof(*m));
  t->spare = NULL;
  if (m == NULL) {
    t->create_err = TW_ENOMEM;
    return NULL;
  }
  t->create_err = 0;
  w = t->create_worker(t->ctx);
  if (w == NULL) {
    t->spare = m;
    return NULL;
  }
  t->create_err = 0;
  m->worker = w;
  m->team = t;
  m->cls = tw__worker_class_of(w);
  m->next = NULL;
  t->created_n++;
  return m;
}

/* Quit when asked to, nobody is busy and no accepted step is still due. */
static void tw__team_maybe_finish(tw_team *t) {
  if (!t->should_quit || t->finished || t->busy_n != 0) return;
  if (tw__gate_users(&t->state, TW__GATE_ONE) != 0) return;
  t->finished = 1;
  tw__team_publish(t);
  (void)tw_worker_quit(t->coordinator);
  uv_mutex_lock(&t->mutex);
  t->done = 1;
  uv_cond_broadcast(&t->cond);
  /* The joiner may free t from here on: nothing below touches it. */
  uv_mutex_unlock(&t->mutex);
}


/* The steps and hops, each with its drop (tw__item_ops). */
static void tw__team_coordinate(tw__item *it);
static void tw__team_coordinate_dropped(tw__item *it);
static void tw__team_work(tw__item *it);
static void tw__team_work_dropped(tw__item *it);
static void tw__team_recycle_step(tw__item *it);
static void tw__team_recycle_dropped(tw__item *it);
static void tw__team_refused_step(tw__item *it);
static void tw__team_refused_dropped(tw__item *it);

static const tw__item_ops tw__team_coordinate_ops = {tw__team_coordinate,
                                                     tw__team_coordinate_dropped};
static const tw__item_ops tw__team_work_ops = {tw__team_work,
                                               tw__team_work_dropped};
static const tw__item_ops tw__team_recycle_ops = {tw__team_recycle_step,
                                                  tw__team_recycle_dropped};
static const tw__item_ops tw__team_refused_ops = {tw__team_refused_step,
                                                  tw__team_refused_dropped};

/*
 * Twisted's _coordinateThisTask. A task no worker exists for, and for which
 * none could be made (create_err), would wait for ever: with refuse set
 * (the submitter is still waiting for do's answer: the inline step), it is
 * refused with that error and stays the caller's - Twisted's callInThread
 * raises the thread's start error too; otherwise it goes to the backlog,
 * which the step's end then fails (tw__team_step_end). A creation that
 * fails while other workers exist only leaves the task to them.
 */
static int tw__team_dispatch(tw_team *t, tw__task *task, int refuse) {
  tw__member *m = tw__team_idle_pop(t);
  int rc;
  if (m == NULL) m = tw__team_create_member(t);
  if (m == NULL) {
    if (refuse && t->create_err != 0 && t->idle_n + t->busy_n == 0)
      return t->create_err;
    tw__team_backlog_push(t, task, 0);
    return 0;
  }
  t->busy_n++;
  task->u.member = m;
  task->item.ops = &tw__team_work_ops;
  rc = tw__worker_do_item(m->worker, &task->item);
  if (rc != 0) {
    /* Only a foreign worker can refuse: retire it, keep the work. */
    t->busy_n--;
    tw__log_at(TW_LOG_ERROR, NULL, NULL, 0,
               "team: a worker refused work (%s); retiring it",
               tw_err_name(rc));
    tw__team_retire(t, m);
    tw__team_backlog_push(t, task, 1);
  }
  return 0;
}

/*
 * Twisted's _quitIdlers(n), n < 0 meaning all. The debt of workers to quit
 * later is clamped to the busy count: only busy workers can ever pay it.
 */
void tw__team_quit_idlers(tw_team *t, int n) {
  size_t i, count = n < 0 ? t->idle_n + t->busy_n : (size_t)n;
  for (i = 0; i < count; i++) {
    tw__member *m = tw__team_idle_pop(t);
    if (m != NULL)
      tw__team_retire(t, m);
    else if (t->to_shrink < t->busy_n)
      t->to_shrink++;
    else
      break;
  }
}

/* Twisted's _recycleWorker: the backlog before quitting or shrinking. */
void tw__team_recycle(tw_team *t, tw__member *m) {
  tw__task *next;
  tw__team_idle_push(t, m);
  if ((next = tw__team_backlog_pop(t)) != NULL) {
    (void)tw__team_dispatch(t, next, 0);
  } else if (t->should_quit) {
    tw__team_quit_idlers(t, -1);
  } else if (t->to_shrink > 0) {
    t->to_shrink--;
    tw__team_retire(t, tw__team_idle_pop(t)); /* m: on top */
  }
}

/* The team failing its backlog on this thread, and why. */
static TW__TLS const tw_team *tw__team_dropping;
static TW__TLS int tw__team_drop_err;

int tw__team_drop_error(const tw_team *t) {
  return t != NULL && t == tw__team_dropping ? tw__team_drop_err : 0;
}

/*
 * No worker is left and none could be made (err): the backlog would wait
 * for ever - nothing else creates a worker for it until the next do, which
 * may never come. Fail it instead: each task's arg_free runs in place of
 * fn, with tw__team_drop_error(t) saying why (a thread pool's job hands
 * that failure to its on_result, a defer_to_thread Deferred fails with it).
 * Work accepted by a quitting team is left to the team's free, as before.
 */
static void tw__team_fail_backlog(tw_team *t, int err) {
  tw__task *task;
  size_t n = 0;
  const tw_team *outer = tw__team_dropping;
  int outer_err = tw__team_drop_err;
  tw__team_dropping = t;
  tw__team_drop_err = err;
  while ((task = tw__team_backlog_pop(t)) != NULL) {
    if (task->arg_free != NULL) task->arg_free(task->arg);
    tw__team_task_release(task);
    n++;
  }
  tw__team_dropping = outer;
  tw__team_drop_err = outer_err;
  tw__log_at(TW_LOG_ERROR, NULL, NULL, 0,
             "team: no worker could be created (%s) and none is left: %zu "
             "waiting item%s failed",
             tw_err_name(err), n, n == 1 ? "" : "s");
}

/* The end of a coordinator step (t may be freed after this). */
void tw__team_step_end(tw_team *t, tw__team_frame *f) {
  if (t->create_err != 0) {
    int err = t->create_err;
    t->create_err = 0;
    if (!t->should_quit && t->idle_n + t->busy_n == 0 &&
        !tw__team_backlog_empty(t))
      tw__team_fail_backlog(t, err);
  }
  if (!TW__FIFO_EMPTY(&t->over)) tw__team_backlog_refill(t);
  tw__team_publish(t);
  tw__team_maybe_finish(t);
  tw__team_leave(f);
}

/* ---- The task's three hops ----------------------------------------------- */


static void tw__team_send_back(tw_team *t, tw__task *task) {
  int rc;
  task->item.ops = &tw__team_recycle_ops;
  rc = tw__team_submit(t, &task->item);
  if (rc != 0) {
    /* Only a foreign coordinator can refuse here (it is not quit while a
     * worker is busy, and twuv's own never allocate). */
    tw__log_at(TW_LOG_CRITICAL, NULL, NULL, 0,
               "team: the coordinator refused a finished worker (%s); the "
               "worker is lost and the team cannot finish",
               tw_err_name(rc));
    tw__team_task_release(task);
  }
}

/* Hop 1, external (tw_team_do): pick a worker. */
static void tw__team_coordinate(tw__item *it) {
  tw__task *task = TW__CONTAINER_OF(it, tw__task, item);
  tw_team *t = task->u.team;
  tw__team_frame f;
  tw__team_enter(&f, t);
  (void)tw__team_dispatch(t, task, 0); /* task may be running already */
  tw__team_step_done(t);
  tw__team_step_end(t, &f);
}

static void tw__team_coordinate_dropped(tw__item *it) {
  tw__task *task = TW__CONTAINER_OF(it, tw__task, item);
  tw_team *t = task->u.team;
  if (task->arg_free != NULL) task->arg_free(task->arg);
  tw__team_task_release(task);
  tw__team_step_done(t);
}


/*
 * Twisted's idleAndPending when the backlog is not empty, without the trip
 * through the coordinator: the worker that just finished takes the oldest
 * backlogged task itself. That is exactly what its recycle step would do -
 * become idle, be popped again (it is on top of the idle stack) and be given
 * the backlog's head - and it leaves the counts as they were (still busy,
 * one item less in the backlog). Only with a serial coordinator, which would
 * have run the step at once too (any other may be stepped by hand and
 * observed in between), only for twuv's own workers (whose do cannot fail
 * for want of memory), and only while the ring's head is the oldest item.
 * The worker stays busy, so the team cannot finish meanwhile. 1 if done.
 */
static tw__task *tw__team_take_next(tw_team *t, tw__member *m) {
  if (!t->direct || m->cls == NULL ||
      atomic_load_explicit(&t->front_busy, memory_order_relaxed))
    return NULL;
  return tw__ring_take(t);
}

/* Give m the task it took (as dispatch would: m->do). */
static void tw__team_give(tw_team *t, tw__member *m, tw__task *next) {
  int rc;
  next->u.member = m;
  next->item.ops = &tw__team_work_ops;
  rc = m->cls->do_item(m->worker, &next->item);
  if (rc != 0) {
    /* Quit behind the team's back: let the coordinator retire it and
     * put the task back, as when dispatching. */
    next->item.ops = &tw__team_refused_ops;
    if (tw__team_submit(t, &next->item) != 0)
      tw__team_refused_dropped(&next->item);
  }
}

/* Hand the failure an item left in *slot to log_exception. */
static void tw__team_report(tw_team *t, tw_failure **slot) {
  tw_failure *failure = *slot;
  *slot = NULL;
  if (t->log_exception != NULL)
    t->log_exception(failure, t->ctx);
  else
    tw_log_failure(failure, "Unhandled error in team work");
  tw_failure_unref(failure);
}

/*
 * Hop 2, on the worker: run it, report its failure, release its arg; then
 * take the next backlogged task (tw__team_take_next) or go back to the
 * coordinator. A thread worker running on its own thread with nothing else
 * queued runs the task it took at once: queueing it to itself would run it
 * next anyway. A failure already pending on this thread (its caller's, not
 * collected) is set aside meanwhile and put back.
 */
static void tw__team_work(tw__item *it) {
  tw__task *task = TW__CONTAINER_OF(it, tw__task, item);
  tw__member *m = task->u.member;
  tw_team *t = m->team;
  tw__task *next;
  tw__team_frame f;
  tw_failure **slot = tw__work_failure_slot();
  tw_failure *outer = tw__work_stash(slot);
  const tw_team *outer_member = tw__team_member_thread;
  tw__team_enter(&f, t);
  tw__team_member_thread = m->cls == &tw__thread_worker_class &&
                                   tw__thread_worker_is_current(m->worker)
                               ? t
                               : NULL;
  for (;;) {
    task->fn(task->arg);
    if (*slot != NULL) tw__team_report(t, slot);
    if (task->arg_free != NULL) task->arg_free(task->arg);
    /* A failure arg_free left is the worker's to log, as for a lone task:
     * the next task must not run with it pending (it would be taken for
     * that task's). */
    if (*slot != NULL) {
      next = NULL;
      break;
    }
    next = tw__team_take_next(t, m);
    if (next == NULL) break;
    tw__team_task_release(task);
    if (m->cls != &tw__thread_worker_class ||
        !tw__thread_worker_alone(m->worker))
      break;
    next->u.member = m;
    task = next;
  }
  tw__team_member_thread = outer_member;
  tw__team_leave(&f);
  tw__work_unstash(slot, outer);
  if (next != NULL)
    tw__team_give(t, m, next);
  else
    tw__team_send_back(t, task);
}

static void tw__team_work_dropped(tw__item *it) {
  tw__task *task = TW__CONTAINER_OF(it, tw__task, item);
  if (task->arg_free != NULL) task->arg_free(task->arg);
  task->arg_free = NULL;
  tw__team_send_back(tw__task_team(task), task);
}

/* Hop 3, internal: Twisted's idleAndPending. */
static void tw__team_recycle_step(tw__item *it) {
  tw__task *task = TW__CONTAINER_OF(it, tw__task, item);
  tw__member *m = task->u.member;
  tw_team *t = m->team;
  tw__team_frame f;
  tw__team_task_release(task);
  tw__team_enter(&f, t);
  t->busy_n--;
  tw__team_recycle(t, m);
  tw__team_step_end(t, &f);
}

static void tw__team_recycle_dropped(tw__item *it) {
  tw__team_task_release(TW__CONTAINER_OF(it, tw__task, item));
}

/* A worker refused the task it took from the backlog (tw__team_take_next). */
static void tw__team_refused_step(tw__item *it) {
  tw__task *task = TW__CONTAINER_OF(it, tw__task, item);
  tw_team *t = tw__task_team(task);
  tw__team_frame f;
  tw__team_enter(&f, t);
  t->busy_n--;
  tw__log_at(TW_LOG_ERROR, NULL, NULL, 0,
             "team: a worker refused work (%s); retiring it",
             tw_err_name(TW_EALREADYQUIT));
  tw__team_retire(t, task->u.member);
  tw__team_backlog_push(t, task, 1);
  tw__team_step_end(t, &f);
}

/* Only a foreign coordinator drops (never one of the serial kind). */
static void tw__team_refused_dropped(tw__item *it) {
  tw__task *task = TW__CONTAINER_OF(it, tw__task, item);
  if (task->arg_free != NULL) task->arg_free(task->arg);
  tw__team_task_release(task);
}

/* ---- Accepting external steps --------------------------------------------- */

int tw__team_accept(tw_team *t) {
  return tw__gate_enter(&t->state);
}

/*
 * Undo an acceptance whose step the coordinator refused (a foreign
 * coordinator out of memory). If that was the last step a quitting team
 * waited for, someone must still run the finish check.
 */
void tw__team_unaccept(tw_team *t) {
  size_t s = tw__gate_sub(&t->state, TW__GATE_ONE);
  int expected = 0;
  int rc;
  if (s != (TW__GATE_CLOSED | TW__GATE_ONE)) return;
  if (!atomic_compare_exchange_strong(&t->check_queued, &expected, 1)) return;
  rc = tw__team_submit(t, &t->check_step);
  if (rc != 0) {
    atomic_store(&t->check_queued, 0);
    if (rc != TW_EALREADYQUIT)
      tw__log_at(TW_LOG_CRITICAL, NULL, NULL, 0,
                 "team: the coordinator refused the finish check (%s); the "
                 "team cannot finish",
                 tw_err_name(rc));
  }
}

/* ---- The team as a worker --------------------------------------------------- */

/*
 * A do's step run inline, in a serial coordinator that do found idle. The
 * quit check is made inside the coordinator: a quit racing with it has its
 * step queued behind this one, so the team cannot finish before this task
 * is placed, and the step need not be counted in state.
 */
typedef struct tw__team_inline {
  tw__task *task;
  int rc;
} tw__team_inline;

static void tw__team_coordinate_inline(void *arg) {
  tw__team_inline *in = arg;
  tw__task *task = in->task;
  tw_team *t = task->u.team;
  tw__team_frame f;
  if (tw__gate_is_closed(&t->state)) {
    in->rc = TW_EALREADYQUIT;
    return;
  }
  tw__team_enter(&f, t);
  /* Refused: the task stays the submitter's (do returns in->rc). */
  in->rc = tw__team_dispatch(t, task, 1); /* task may be running already */
  tw__team_step_end(t, &f);
}

/* do with the task in task's memory; on error it is still the caller's. */
static int tw__team_do_task(tw_team *t, tw__task *task, tw_call_fn fn,
                            void *arg, tw_free_fn arg_free) {
  int rc;
  task->fn = fn;
  task->arg = arg;
  task->arg_free = arg_free;
  task->item.ops = &tw__team_coordinate_ops;
  task->u.team = t;
  if (t->direct) {
    tw__team_inline in;
    in.task = task;
    in.rc = 0;
    rc = tw__serial_try_run(t->coordinator, tw__team_coordinate_inline, &in);
    if (rc == 1) return in.rc;
    if (rc != 0) return rc;
    /* Busy: queue the step like any coordinator's. */
  }
  rc = tw__team_accept(t);
  if (rc != 0) return rc;
  rc = tw__team_submit(t, &task->item);
  if (rc != 0) tw__team_unaccept(t);
  return rc;
}

static int tw__team_do_work(tw_worker *wk, tw_call_fn fn, void *arg,
                            tw_free_fn arg_free) {
  tw__task *task = tw__team_task_new();
  int rc;
  if (task == NULL) return TW_ENOMEM;
  rc = tw__team_do_task((tw_team *)wk, task, fn, arg, arg_free);
  if (rc != 0) tw__team_task_release(task);
  return rc;
}

_Static_assert(sizeof(tw__task) <= sizeof(tw__task_room),
               "a task fits its room");

int tw__team_do_room(tw_worker *wk, tw__task_room *room, tw_call_fn fn,
                     void *arg, tw_free_fn arg_free) {
  return tw__team_do_task((tw_team *)wk, (tw__task *)(void *)room, fn, arg,
                          arg_free);
}

const tw_worker_vtable tw__team_vtable = {tw__team_do_work, tw__team_quit,
                                          tw__team_destroy};

int tw__is_team(const tw_worker *w) { return w->vtable == &tw__team_vtable; }
