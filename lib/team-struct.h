/*
 * lib/team-struct.h - a team's layout and the helpers that team.c (an
 * item's path through the team) and team-admin.c (create, grow, shrink,
 * quit, join, free, statistics, pool()) share. Not installed; nothing else
 * looks inside a team.
 */
#ifndef TWUV_TEAM_STRUCT_H
#define TWUV_TEAM_STRUCT_H

#include "gate.h"
#include "tnode.h"
#include "worker-internal.h"

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
  /* Odd while the coordinator moves tasks from overflow (st_backlog) into
   * the ring (counted live): a reader who saw it change reads again, or it
   * could count the moved tasks twice. */
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

/* ---- team.c, for team-admin.c ---- */

/* Mark this thread inside t's work or coordination (TW_EDEADLK checks). */
void tw__team_enter(tw__team_frame *f, const tw_team *t);
void tw__team_leave(tw__team_frame *f);
int tw__team_inside(const tw_team *t);
/* Coordinator only: */
void tw__team_publish(tw_team *t);
tw__task *tw__team_backlog_pop(tw_team *t);
tw__member *tw__team_create_member(tw_team *t);
void tw__team_quit_idlers(tw_team *t, int n);
void tw__team_recycle(tw_team *t, tw__member *m);
void tw__team_step_end(tw_team *t, tw__team_frame *f);
/* Count an external step in state (TW_EALREADYQUIT once quit), or undo. */
int tw__team_accept(tw_team *t);
void tw__team_unaccept(tw_team *t);

/* ---- team-admin.c, for team.c ---- */

extern const tw__item_ops tw__team_check_ops;
int tw__team_quit(tw_worker *wk);
int tw__team_destroy(tw_worker *wk);

#endif
