/*
 * lib/team.c - Team (Twisted's twisted._threads._team) and pool()
 * (twisted._threads._pool), worker.h: the layout; the path of an item (do,
 * the coordinator's steps, the worker's run, the backlog); the team's life
 * around it (grow, shrink and quit steps, join, free, creation,
 * statistics); and pool(). Nothing else looks inside a team.
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
#include "gate.h"
#include "tnode.h"
#include "worker-internal.h"

#include <sched.h>
#include <stdio.h>
#include <uv.h>

typedef struct tw__member {
  struct tw__member *next; /* idle stack or retired list */
  tw_team *team;
  tw_worker *worker;
  const tw__worker_class *cls; /* NULL: a foreign worker */
} tw__member;

/*
 * The backlog's oldest items wait in a ring from which a worker finishing
 * its item may take the next one itself (see tw__team_take_next). Its size
 * bounds how far that can run ahead of the coordinator; newer items wait in
 * the coordinator's overflow list until the ring has room.
 */
#define TW__TEAM_RING 1024

typedef struct tw__task {
  tw__item item; /* also the backlog link (item.next) */
  tw_call_fn fn;
  void *arg;
  tw_free_fn arg_free;
  /* Hop 1 (coordinate): the team; given to a worker: its member (whose
   * team is the same). One word, so that a task fits a 64-byte node. */
  union {
    tw_team *team;
    tw__member *member;
  } u;
} tw__task;

static inline tw_team *tw__task_team(const tw__task *task) {
  return task->u.member->team;
}

typedef struct tw__team_step {
  tw__item item;
  tw_team *team;
  int n; /* < 0: all (shrink) */
} tw__team_step;

/*
 * The fields are grouped by who writes them, each group on cache lines of
 * its own: set at creation (read by everyone, on every item), written by
 * submitters (state), the coordinator's, the ring's head (takers) and tail
 * (the coordinator).
 */
struct tw_team {
  tw_worker base;
  tw_worker *coordinator;
  const tw__worker_class *coord_cls; /* NULL: a foreign coordinator */
  tw_team_create_fn create_worker;
  tw_team_log_fn log_exception;
  void *ctx;
  tw_free_fn ctx_free;
  /* The coordinator is a serial worker: a do may run its step inline, and
   * workers may take backlogged items from the ring themselves. */
  int direct;

  /* accepted external steps, and quit (TW__GATE_CLOSED): lib/gate.h */
  TW__LINE_ALIGNED tw__gate state;
  atomic_int check_queued;

  /* ---- coordinator only ---- */
  /* ring_head as last read, for tw__ring_put */
  TW__LINE_ALIGNED uint64_t ring_head_seen;
  uint64_t ring_tail_mine; /* ring_tail, read here: the takers read that
                              line, so a load of it misses */
  tw__member *idle; /* a stack: the most recently idle worker is reused */
  size_t idle_n;
  size_t busy_n;
  /* The backlog, oldest first: front (items a refusing worker gave back),
   * the ring, overflow. */
  tw__item *front_head;
  size_t front_n;
  TW__FIFO(tw__item) over;
  size_t over_n;
  size_t to_shrink;
  size_t created_n;
  int should_quit;
  int finished;
  tw__member *retired; /* quit workers, freed by join (or reaped) */
  tw__member *spare;   /* a record kept from a create_worker that said no */
  /* Why this step's last tw__team_create_member returned NULL: 0 for "no
   * more workers" (create_worker's limit), else an error (no memory for
   * the record, a thread that could not start: tw__team_create_failed).
   * Acted on and cleared by tw__team_step_end. */
  int create_err;

  /* Statistics, published by the coordinator for lock-free readers. */
  /* st_backlog: the backlog outside the ring. */
  _Atomic size_t st_idle, st_busy, st_backlog, st_created;
  /*
   * The one seqlock, and all it does: keep tw_team_statistics' backlog (and
   * so the thread pool's `queued`) from counting a task twice. The backlog
   * is st_backlog (front and overflow, published by the coordinator) plus
   * the ring, counted live (workers take from it without the coordinator).
   * A refill moves tasks from overflow into the ring: a reader between the
   * ring's new tail and the new st_backlog would see them in both. st_seq
   * is odd during a refill; the reader (tw_team_statistics) retries until
   * it read both figures within one even value. Writer: only
   * tw__team_backlog_refill, two stores per refill of up to 256 tasks, none
   * per item. The alternatives cost more where it matters: one backlog
   * counter would take a locked decrement from every worker that takes a
   * task from the ring (the hot path); lowering st_backlog before the move
   * would only swap the double count for a miss (tasks counted nowhere).
   * Kept: exact, and costs nothing per item.
   * Tested by tests/test_team.c's
   * statistics_never_count_a_backlogged_item_twice.
   */
  _Atomic unsigned st_seq;

  tw__item quit_step;  /* Twisted's startFinishing */
  tw__item check_step; /* "maybe finish", after a failed submission */
  tw__item serve_step; /* a worker for a backlog with none (tw__team_serve) */
  atomic_int serve_queued;

  uv_mutex_t mutex;
  uv_cond_t cond;
  int done;       /* finished (under mutex) */
  int join_state; /* 0 not joined, 1 joining, 2 joined (under mutex) */

  /*
   * The ring: slots [ring_head, ring_tail) hold the oldest backlogged tasks.
   * Only the coordinator adds (at ring_tail); any thread takes the head with
   * a CAS on ring_head. Both counters only grow, so a CAS from a stale head
   * fails instead of taking a slot refilled since (no ABA). Each counter
   * has a cache line of its own: takers write one, the coordinator the
   * other.
   */
  TW__LINE_ALIGNED _Atomic uint64_t ring_head;
  TW__LINE_ALIGNED _Atomic uint64_t ring_tail;
  /* front_n != 0: the ring's head is not the oldest item, no direct takes */
  atomic_int front_busy;
  /* ---- written by workers, now and then ---- */
  /* Set by a taker that left the ring low: refill it from overflow. */
  TW__LINE_ALIGNED atomic_int refill_wanted;
  TW__LINE_ALIGNED _Atomic(tw__task *) ring[TW__TEAM_RING];
};

/* The teams whose work or coordination this thread is running. */
typedef struct tw__team_frame {
  const tw_team *team;
  struct tw__team_frame *prev;
} tw__team_frame;

/*
 * Tasks are allocated by submitters and released by workers or in the
 * coordinator, usually on another thread: they come from the submitting
 * thread's slab (tnode.h), however deep the backlog grows.
 */
_Static_assert(sizeof(tw__task) <= TW__TNODE_SIZE,
               "a task must fit a task tnode");

static inline tw__task *tw__team_task_new(void) {
  return tw__tnode_get_kind(TW__TNODE_TASK);
}

static inline void tw__team_task_release(tw__task *task) {
  tw__tnode_put(task);
}

static inline int tw__team_submit(tw_team *t, tw__item *it) {
  if (t->coord_cls != NULL) return t->coord_cls->do_item(t->coordinator, it);
  return tw__worker_do_item(t->coordinator, it);
}

/* An accepted external step has run (or was dropped). */
static inline void tw__team_step_done(tw_team *t) {
  (void)tw__gate_sub(&t->state, TW__GATE_ONE);
}

/* Items in the ring now (any thread; head first, so never negative). */
static inline size_t tw__ring_count(tw_team *t) {
  uint64_t head = atomic_load_explicit(&t->ring_head, memory_order_acquire);
  return (size_t)(atomic_load_explicit(&t->ring_tail, memory_order_acquire) -
                  head);
}

/* Nothing backlogged (coordinator only: nobody else adds). */
static inline int tw__team_backlog_empty(tw_team *t) {
  return t->front_n == 0 && t->over_n == 0 && tw__ring_count(t) == 0;
}

/* ---- Frames --------------------------------------------------------------- */

static TW__TLS tw__team_frame *tw__team_frames;

/* tw__team_on_member_thread: set by tw__team_work around its tasks. */
static TW__TLS const tw_team *tw__team_member_thread;

const tw_team *tw__team_on_member_thread(void) {
  return tw__team_member_thread;
}

static void tw__team_enter(tw__team_frame *f, const tw_team *t) {
  f->team = t;
  f->prev = tw__team_frames;
  tw__team_frames = f;
}

static void tw__team_leave(tw__team_frame *f) { tw__team_frames = f->prev; }

static int tw__team_inside(const tw_team *t) {
  const tw__team_frame *f;
  for (f = tw__team_frames; f != NULL; f = f->prev)
    if (f->team == t) return 1;
  return 0;
}

/* ---- Coordinator-only helpers ------------------------------------------- */

static void tw__team_publish(tw_team *t) {
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
static tw__task *tw__team_backlog_pop(tw_team *t) {
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
static tw__member *tw__team_create_member(tw_team *t) {
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
static void tw__team_quit_idlers(tw_team *t, int n) {
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
static void tw__team_recycle(tw_team *t, tw__member *m) {
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
static void tw__team_step_end(tw_team *t, tw__team_frame *f) {
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
 * The worker stays busy, so the team cannot finish meanwhile. The task
 * taken (the worker's now), or NULL.
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

static int tw__team_accept(tw_team *t) {
  return tw__gate_enter(&t->state);
}

/*
 * Undo an acceptance whose step the coordinator refused (a foreign
 * coordinator out of memory). If that was the last step a quitting team
 * waited for, someone must still run the finish check.
 */
static void tw__team_unaccept(tw_team *t) {
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

/* ---- grow, shrink, quit, join, free ------------------------------------ */

static void tw__team_grow_step(tw__item *it);
static void tw__team_shrink_step(tw__item *it);
static void tw__team_step_dropped(tw__item *it);
static void tw__team_quit_step(tw__item *it);
static void tw__team_check_step(tw__item *it);
static void tw__team_serve_step(tw__item *it);
static void tw__team_serve_dropped(tw__item *it);
static void tw__team_nothing(tw__item *it);

static const tw__item_ops tw__team_grow_ops = {tw__team_grow_step,
                                               tw__team_step_dropped};
static const tw__item_ops tw__team_shrink_ops = {tw__team_shrink_step,
                                                 tw__team_step_dropped};
static const tw__item_ops tw__team_quit_ops = {tw__team_quit_step,
                                               tw__team_nothing};
static const tw__item_ops tw__team_check_ops = {tw__team_check_step,
                                                tw__team_nothing};
static const tw__item_ops tw__team_serve_ops = {tw__team_serve_step,
                                                tw__team_serve_dropped};

static void tw__team_grow_step(tw__item *it) {
  tw__team_step *s = TW__CONTAINER_OF(it, tw__team_step, item);
  tw_team *t = s->team;
  int i, n = s->n;
  tw__team_frame f;
  tw__free(s);
  tw__team_enter(&f, t);
  /* Twisted would grow and then quit the new workers at once. */
  for (i = 0; i < n && !t->should_quit; i++) {
    tw__member *m = tw__team_create_member(t);
    if (m == NULL) break;
    tw__team_recycle(t, m);
  }
  tw__team_step_done(t);
  tw__team_step_end(t, &f);
}

static void tw__team_shrink_step(tw__item *it) {
  tw__team_step *s = TW__CONTAINER_OF(it, tw__team_step, item);
  tw_team *t = s->team;
  int n = s->n;
  tw__team_frame f;
  tw__free(s);
  tw__team_enter(&f, t);
  if (!t->should_quit) tw__team_quit_idlers(t, n);
  tw__team_step_done(t);
  tw__team_step_end(t, &f);
}

static void tw__team_step_dropped(tw__item *it) {
  tw__team_step *s = TW__CONTAINER_OF(it, tw__team_step, item);
  tw_team *t = s->team;
  tw__free(s);
  tw__team_step_done(t);
}

static void tw__team_quit_step(tw__item *it) {
  tw_team *t = TW__CONTAINER_OF(it, tw_team, quit_step);
  tw__team_frame f;
  tw__team_enter(&f, t);
  t->should_quit = 1;
  tw__team_quit_idlers(t, -1);
  tw__team_step_end(t, &f);
}

static void tw__team_check_step(tw__item *it) {
  tw_team *t = TW__CONTAINER_OF(it, tw_team, check_step);
  tw__team_frame f;
  atomic_store_explicit(&t->check_queued, 0, memory_order_release);
  tw__team_enter(&f, t);
  tw__team_step_end(t, &f);
}

static void tw__team_nothing(tw__item *it) { (void)it; }

/*
 * A backlog with no worker gets one (which then serves it, and takes the
 * rest from the ring), or fails if none can be made (tw__team_step_end).
 * Not counted in state: after quit it finds should_quit and does nothing,
 * and the team's free waits for its coordinator before freeing t.
 */
static void tw__team_serve_step(tw__item *it) {
  tw_team *t = TW__CONTAINER_OF(it, tw_team, serve_step);
  tw__team_frame f;
  atomic_store_explicit(&t->serve_queued, 0, memory_order_release);
  tw__team_enter(&f, t);
  if (!t->should_quit && !t->finished && t->idle_n + t->busy_n == 0 &&
      !tw__team_backlog_empty(t)) {
    tw__member *m = tw__team_create_member(t);
    if (m != NULL) tw__team_recycle(t, m);
  }
  tw__team_step_end(t, &f);
}

static void tw__team_serve_dropped(tw__item *it) {
  tw_team *t = TW__CONTAINER_OF(it, tw_team, serve_step);
  atomic_store_explicit(&t->serve_queued, 0, memory_order_release);
}

int tw__team_serve(tw_team *t) {
  int expected = 0, rc;
  if (!atomic_compare_exchange_strong(&t->serve_queued, &expected, 1))
    return 0; /* queued already, and not yet begun */
  rc = tw__team_submit(t, &t->serve_step);
  if (rc != 0) atomic_store(&t->serve_queued, 0);
  /* Quit: there is nothing to serve any more. */
  return rc == TW_EALREADYQUIT ? 0 : rc;
}

/*
 * For a create_worker (in the coordinator) that returns NULL because a
 * worker could not be made, not because of a limit: the error, so that
 * the team can fail work that no worker is left to run instead of keeping
 * it in a backlog for ever (pool()'s creator; a user's create_worker
 * cannot say, and its NULL means "no more workers", as in Twisted).
 */
static void tw__team_create_failed(tw_team *t, int err) { t->create_err = err; }

static int tw__team_submit_step(tw_team *t, const tw__item_ops *ops,
                                int n) {
  tw__team_step *s;
  int rc;
  if (t == NULL) return TW_EINVAL;
  s = tw__malloc(sizeof(*s));
  if (s == NULL) return TW_ENOMEM;
  s->item.ops = ops;
  s->team = t;
  s->n = n;
  rc = tw__team_accept(t);
  if (rc != 0) {
    tw__free(s);
    return rc;
  }
  rc = tw__team_submit(t, &s->item);
  if (rc != 0) {
    tw__free(s);
    tw__team_unaccept(t);
  }
  return rc;
}

static int tw__team_quit(tw_worker *wk) {
  tw_team *t = (tw_team *)wk;
  int rc = tw__gate_shut(&t->state);
  if (rc != 0) return rc;
  rc = tw__team_submit(t, &t->quit_step);
  /* A foreign coordinator out of memory: stay unquit, let them retry. */
  if (rc != 0) tw__gate_reopen(&t->state);
  return rc;
}

int tw_team_join(tw_team *t) {
  tw__member *m, *next;
  if (t == NULL) return TW_EINVAL;
  if (tw__team_inside(t)) return TW_EDEADLK;
  if (!tw__gate_is_closed(&t->state)) return TW_EINVAL;
  uv_mutex_lock(&t->mutex);
  while (!t->done || t->join_state == 1) uv_cond_wait(&t->cond, &t->mutex);
  if (t->join_state == 2) {
    uv_mutex_unlock(&t->mutex);
    return 0;
  }
  t->join_state = 1;
  uv_mutex_unlock(&t->mutex);
  /* Finished: every worker is retired (idle ones too, by quit_idlers) and
   * idle; each free joins a thread that may still be leaving its last
   * step, and the coordinator's free waits for its drainer likewise. */
  for (m = t->retired; m != NULL; m = next) {
    next = m->next;
    (void)tw_worker_free(m->worker);
    tw__free_lines(m);
  }
  for (m = t->idle; m != NULL; m = next) {
    next = m->next;
    (void)tw_worker_free(m->worker);
    tw__free_lines(m);
  }
  t->retired = t->idle = NULL;
  t->idle_n = t->busy_n = 0;
  tw__free_lines(t->spare);
  t->spare = NULL;
  /* A do racing with join may still try a serial coordinator inline (and
   * find it quit): that one is freed with the team. */
  if (!t->direct) {
    (void)tw_worker_free(t->coordinator);
    t->coordinator = NULL;
  }
  tw__team_publish(t);
  uv_mutex_lock(&t->mutex);
  t->join_state = 2;
  uv_cond_broadcast(&t->cond);
  uv_mutex_unlock(&t->mutex);
  return 0;
}

static int tw__team_destroy(tw_worker *wk) {
  tw_team *t = (tw_team *)wk;
  tw__task *task;
  int rc;
  if (tw__team_inside(t)) return TW_EDEADLK;
  rc = tw__team_quit(wk);
  if (rc != 0 && rc != TW_EALREADYQUIT) return rc;
  (void)tw_team_join(t);
  /* A backlog left with no worker to serve it (Twisted abandons it). */
  while ((task = tw__team_backlog_pop(t)) != NULL) {
    if (task->arg_free != NULL) task->arg_free(task->arg);
    tw__team_task_release(task);
  }
  if (t->coordinator != NULL) (void)tw_worker_free(t->coordinator);
  if (t->ctx_free != NULL) t->ctx_free(t->ctx);
  uv_cond_destroy(&t->cond);
  uv_mutex_destroy(&t->mutex);
  tw__free_lines(t);
  return 0;
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

static const tw_worker_vtable tw__team_vtable = {
    tw__team_do_work, tw__team_quit, tw__team_destroy};

int tw__is_team(const tw_worker *w) { return w->vtable == &tw__team_vtable; }

/* ---- Public team functions ---------------------------------------------- */

/* A team whose create ctx is released by ctx_free when the team is freed
 * (pool()'s). */
static int tw__team_new_ex(tw_team **out, tw_worker *coordinator,
                           tw_team_create_fn create_worker,
                           tw_team_log_fn log_exception, void *ctx,
                           tw_free_fn ctx_free) {
  tw_team *t;
  int rc;
  if (out == NULL || coordinator == NULL || coordinator->vtable == NULL ||
      coordinator->vtable->do_work == NULL ||
      coordinator->vtable->quit == NULL ||
      coordinator->vtable->destroy == NULL || create_worker == NULL)
    return TW_EINVAL;
  if (coordinator->vtable == &tw__team_vtable ||
      coordinator->vtable == &tw__uv_worker_vtable)
    return TW_EINVAL; /* not exclusive */
  t = tw__calloc_lines(sizeof(*t));
  if (t == NULL) return TW_ENOMEM;
  rc = uv_mutex_init(&t->mutex);
  if (rc != 0) goto fail_mutex;
  rc = uv_cond_init(&t->cond);
  if (rc != 0) goto fail_cond;
  t->base.vtable = &tw__team_vtable;
  t->coordinator = coordinator;
  t->create_worker = create_worker;
  t->log_exception = log_exception;
  t->ctx = ctx;
  t->ctx_free = ctx_free;
  t->coord_cls = tw__worker_class_of(coordinator);
  t->direct = t->coord_cls == &tw__serial_worker_class;
  atomic_init(&t->ring_head, 0);
  atomic_init(&t->ring_tail, 0);
  atomic_init(&t->front_busy, 0);
  atomic_init(&t->refill_wanted, 0);
  atomic_init(&t->state, 0);
  atomic_init(&t->check_queued, 0);
  atomic_init(&t->serve_queued, 0);
  atomic_init(&t->st_idle, 0);
  atomic_init(&t->st_busy, 0);
  atomic_init(&t->st_backlog, 0);
  atomic_init(&t->st_created, 0);
  atomic_init(&t->st_seq, 0);
  t->quit_step.ops = &tw__team_quit_ops;
  t->check_step.ops = &tw__team_check_ops;
  t->serve_step.ops = &tw__team_serve_ops;
  *out = t;
  return 0;
fail_cond:
  uv_mutex_destroy(&t->mutex);
fail_mutex:
  tw__free_lines(t);
  return rc;
}

int tw_team_new(tw_team **out, tw_worker *coordinator,
                tw_team_create_fn create_worker, tw_team_log_fn log_exception,
                void *ctx) {
  return tw__team_new_ex(out, coordinator, create_worker, log_exception, ctx,
                         NULL);
}

tw_worker *tw_team_worker(tw_team *team) {
  return team == NULL ? NULL : &team->base;
}

int tw_team_grow(tw_team *team, int n) {
  if (n <= 0) return TW_EINVAL;
  return tw__team_submit_step(team, &tw__team_grow_ops, n);
}

int tw_team_shrink(tw_team *team, int n) {
  if (n <= 0) return TW_EINVAL;
  return tw__team_submit_step(team, &tw__team_shrink_ops, n);
}

int tw_team_shrink_all(tw_team *team) {
  return tw__team_submit_step(team, &tw__team_shrink_ops, -1);
}

int tw_team_statistics(const tw_team *team, tw_team_stats *out) {
  /* C11 atomic loads take non-const pointers; nothing is written. */
  tw_team *t = (tw_team *)team;
  if (t == NULL || out == NULL) return TW_EINVAL;
  out->idle = atomic_load_explicit(&t->st_idle, memory_order_relaxed);
  out->busy = atomic_load_explicit(&t->st_busy, memory_order_relaxed);
  for (;;) {
    unsigned seq = atomic_load_explicit(&t->st_seq, memory_order_acquire);
    if (seq & 1) {
      sched_yield(); /* a refill is under way: a few hundred stores */
      continue;
    }
    out->backlog =
        atomic_load_explicit(&t->st_backlog, memory_order_acquire) +
        tw__ring_count(t);
    /* No fence needed: the loads above are acquires, so this one stays
     * after them, and if they saw any store of the refill, its odd count
     * happened before this read. */
    if (atomic_load_explicit(&t->st_seq, memory_order_acquire) == seq) break;
  }
  out->created = atomic_load_explicit(&t->st_created, memory_order_relaxed);
  return 0;
}

/* Coordinator-exact worker count (idle + busy), for create_worker. */
static size_t tw__team_worker_count(const tw_team *team) {
  return team->idle_n + team->busy_n;
}

/* ---- pool() ------------------------------------------------------------------ */

typedef struct tw__pool {
  tw_pool_limit_fn limit;
  void *ctx;
  tw_team *team;
  unsigned long next_id;
  char prefix[TW__THREAD_NAME_MAX];
} tw__pool;

/* Twisted's limitedWorkerCreator, in the coordinator. */
static tw_worker *tw__pool_create(void *ctx) {
  tw__pool *p = ctx;
  char name[TW__THREAD_NAME_MAX];
  unsigned long id;
  int digits, keep, rc;
  tw_worker *w;
  if (tw__team_worker_count(p->team) >= p->limit(p->ctx)) return NULL;
  id = ++p->next_id;
  /* Keep the number whole: trim the prefix to fit 15 characters. */
  digits = snprintf(NULL, 0, "%lu", id);
  keep = (int)sizeof(name) - 2 - digits;
  if (keep < 0) keep = 0;
  snprintf(name, sizeof(name), "%.*s-%lu", keep, p->prefix, id);
  rc = tw_thread_worker_new(&w, name);
  if (rc != 0) {
    /* Not "no more workers": work with no thread left to run it fails
     * with rc rather than wait for ever (tw__team_step_end); a later do
     * tries again. */
    tw_log(TW_LOG_WARN, NULL, "pool: could not start a worker thread: %s",
           tw_strerror(rc));
    tw__team_create_failed(p->team, rc);
    return NULL;
  }
  return w;
}

int tw_pool_new(tw_team **out, tw_pool_limit_fn current_limit, void *ctx,
                const char *name) {
  tw__pool *p;
  tw_worker *coordinator;
  tw_team *team;
  int rc;
  if (out == NULL || current_limit == NULL) return TW_EINVAL;
  p = tw__calloc_lines(sizeof(*p));
  if (p == NULL) return TW_ENOMEM;
  p->limit = current_limit;
  p->ctx = ctx;
  snprintf(p->prefix, sizeof(p->prefix), "%s",
           name != NULL ? name : "tw-worker");
  rc = tw_serial_worker_new(&coordinator);
  if (rc != 0) goto fail_coordinator;
  rc = tw__team_new_ex(&team, coordinator, tw__pool_create, NULL, p,
                       tw__free_lines);
  if (rc != 0) goto fail_team;
  p->team = team;
  *out = team;
  return 0;
fail_team:
  (void)tw_worker_free(coordinator);
fail_coordinator:
  tw__free_lines(p);
  return rc;
}
