/*
 * lib/worker-internal.h - what the worker sources (worker.c, serial.c,
 * team.c, uvworker.c) and the thread pool share. Not installed.
 *
 * twuv's own workers carry work as intrusive items (tw__item): the team
 * embeds one in each task and reuses it for every hop (coordinator, worker,
 * coordinator again), so that moving work around a team never allocates and
 * therefore never fails half-way. A worker class that can take such items
 * directly has a do_item entry; anything else (a user's worker, a team, the
 * uv worker) gets an item wrapped in an adapter through its public do_work.
 */
#ifndef TWUV_LIB_WORKER_INTERNAL_H
#define TWUV_LIB_WORKER_INTERNAL_H

#include <stdatomic.h>
#include <stdint.h>

#include "internal.h"
#include "mpsc.h"

/* A spinning thread's pause: lets a sibling hyperthread run. */
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define TW__CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define TW__CPU_RELAX() __asm__ __volatile__("yield")
#else
#define TW__CPU_RELAX() ((void)0)
#endif

typedef struct tw__item tw__item;
typedef void (*tw__item_fn)(tw__item *item);

/*
 * A unit of work. A worker calls exactly one of run (perform it) or drop
 * (dispose of it unrun, when the worker is freed with it queued), once, and
 * never touches the item afterwards: both may free or resubmit it. The two
 * come as a static pair, so that an item is three words (a team's task,
 * which embeds one, then fits a 64-byte node).
 */
typedef struct tw__item_ops {
  tw__item_fn run;
  tw__item_fn drop;
} tw__item_ops;

struct tw__item {
  tw__mpsc_node node; /* link in lock-free queues */
  tw__item *next;     /* link in plain lists */
  const tw__item_ops *ops;
};

static inline void tw__item_run(tw__item *it) { it->ops->run(it); }
static inline void tw__item_drop(tw__item *it) { it->ops->drop(it); }

/* A worker class: the public vtable plus the intrusive entry. */
typedef struct tw__worker_class {
  tw_worker_vtable vtable; /* first: w->vtable points here */
  /* Accept item; never allocates. 0 or TW_EALREADYQUIT. */
  int (*do_item)(tw_worker *w, tw__item *item);
} tw__worker_class;

extern const tw__worker_class tw__thread_worker_class;
extern const tw__worker_class tw__lock_worker_class;
extern const tw__worker_class tw__memory_worker_class;
extern const tw__worker_class tw__serial_worker_class;
extern const tw_worker_vtable tw__uv_worker_vtable;

/*
 * If the serial worker w is idle, take it, run fn(arg) as its item, run
 * what others submit meanwhile, and return 1; return 0 (nothing done) if
 * it is busy, TW_EALREADYQUIT if it has quit.
 */
int tw__serial_try_run(tw_worker *w, tw_call_fn fn, void *arg);

/*
 * 1 when the calling thread is thread worker w's own, running one item of
 * w's with nothing else queued and no quit requested: the next item w is
 * given would be the next it runs, so the caller may run it right away.
 */
int tw__thread_worker_alone(tw_worker *w);

/*
 * Room for a team's task in the submitter's memory: the start of a tnode
 * node (lib/tnode.h), with a reference for the team, which releases it
 * with tw__tnode_put once done with the task (after fn and arg_free).
 */
typedef struct tw__task_room {
  void *words[7];
} tw__task_room;

/*
 * tw_worker_do_full on a team (tw_team_worker), with the task in room
 * instead of a node the team allocates. Same errors; on error the team took
 * nothing (room's reference is still the caller's).
 */
int tw__team_do_room(tw_worker *team, tw__task_room *room, tw_call_fn fn,
                     void *arg, tw_free_fn arg_free);

/* 1 if w is a team's worker view (tw_team_worker). */
int tw__is_team(const tw_worker *w);

/*
 * Have the team's coordinator check, without allocating (with twuv's own
 * coordinators), that a backlog is not left with no worker: if it has
 * none, one is created to serve it, and if that fails the backlog fails
 * (tw__team_drop_error). Queued at most once at a time. 0, or the error of
 * a foreign coordinator's do (nothing queued then).
 */
int tw__team_serve(tw_team *team);

/*
 * While team drops an item because no worker could be created to run it
 * (called from the item's arg_free, instead of fn): the error that made
 * the creation fail (TW_ENOMEM, or the UV_E* code of a thread that could
 * not start). 0 otherwise - an item dropped because its team was freed,
 * another team's drop (a pool stopped from such an arg_free), or outside
 * any drop. Per thread.
 */
int tw__team_drop_error(const tw_team *team);

/*
 * Called by a thread worker's thread, if set, as it leaves its loop (after
 * its last item): work that keeps state per thread (the thread pool's
 * statistics slot) gives it back there. Per thread, and per loop: set
 * while running the worker's items, it belongs to that worker's loop.
 */
extern TW__TLS void (*tw__thread_exit_hook)(void);

/* 1 when the calling thread is thread worker w's, inside its loop. */
int tw__thread_worker_is_current(const tw_worker *w);

/*
 * The team whose task this thread is running as that team's own thread
 * worker (on the member's thread, not inline elsewhere), or NULL. Such a
 * thread is joined when the team is.
 */
const tw_team *tw__team_on_member_thread(void);

/*
 * 1 once thread worker w's thread has left its loop (after quit, with its
 * queue done): freeing w then only joins a thread that is returning.
 * Always 0 for a worker on a custom starter: its thread may go on after
 * the loop (and may be the very thread that would free it), so its join
 * can block - it waits for the team's join.
 */
int tw__thread_worker_finished(tw_worker *w);

/* The class of one of twuv's intrusive workers, or NULL. */
const tw__worker_class *tw__worker_class_of(const tw_worker *w);

/*
 * Hand item to w: directly for twuv's intrusive workers (fails only with
 * TW_EALREADYQUIT), through an allocated adapter and do_work otherwise
 * (may also fail with TW_ENOMEM or whatever that worker returns). On error
 * the item is untouched and still the caller's.
 */
int tw__worker_do_item(tw_worker *w, tw__item *item);

/* Log (and release) the failure pending on this thread, if any. */
void tw__work_log_pending(const char *why);

/*
 * This thread's pending-failure slot, for loops that check it after every
 * item: one TLS lookup per loop instead of one per item. The address is
 * valid for the thread's lifetime.
 */
tw_failure **tw__work_failure_slot(void);

/* Log and clear *slot (which must not be NULL). */
void tw__work_log_slot(tw_failure **slot, const char *why);

/* Thread names: at most 15 characters plus the NUL where the platform
 * has them. */
#define TW__THREAD_NAME_MAX 16

/*
 * Run work without mixing up failures - the one way every worker does it:
 *
 *   tw_failure **slot = tw__work_failure_slot();
 *   tw_failure *outer = tw__work_stash(slot);
 *   ... run items, each failure they leave in *slot handled ...
 *   tw__work_unstash(slot, outer);
 *
 * stash takes the failure already pending on this thread (a caller's, not
 * yet collected) out of the way; unstash puts it back, unless a newer one
 * is pending (the newer wins, as in tw_work_fail).
 */
static inline tw_failure *tw__work_stash(tw_failure **slot) {
  tw_failure *outer = *slot;
  *slot = NULL;
  return outer;
}

static inline void tw__work_unstash(tw_failure **slot, tw_failure *outer) {
  if (outer == NULL) return;
  if (*slot != NULL)
    tw_failure_unref(outer);
  else
    *slot = outer;
}

/*
 * The quit flag every worker keeps (Twisted's _convenience.Quit): set once,
 * atomically. Static inline so that the unit tests can port QuitTests.
 */
typedef struct tw__quit {
  atomic_int set;
} tw__quit;

static inline void tw__quit_init(tw__quit *q) { atomic_init(&q->set, 0); }

/* Quit.isSet */
static inline int tw__quit_is_set(tw__quit *q) {
  return atomic_load_explicit(&q->set, memory_order_acquire);
}

/* Quit.check(): 0, or TW_EALREADYQUIT once set. */
static inline int tw__quit_check(tw__quit *q) {
  return tw__quit_is_set(q) ? TW_EALREADYQUIT : 0;
}

/* Quit.set(): 0 the first time, TW_EALREADYQUIT after. */
static inline int tw__quit_set(tw__quit *q) {
  int expected = 0;
  return atomic_compare_exchange_strong_explicit(&q->set, &expected, 1,
                                                 memory_order_acq_rel,
                                                 memory_order_acquire)
             ? 0
             : TW_EALREADYQUIT;
}

#endif
