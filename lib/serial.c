/*
 * lib/serial.c - the serial worker: a lock-free exclusive executor with no
 * thread of its own (worker.h), the coordinator of twuv's teams.
 *
 * Design (docs/workers.md, "How the serial worker works"): asynchronous
 * combining over a bounded ring, in the line of CC-Synch and flat
 * combining. One
 * atomic word, state = tickets << 2 | LOCKED | QUIT:
 *   LOCKED clear     idle: nobody runs items, the ring is empty
 *   LOCKED set       a thread (the combiner) runs items; tickets counts the
 *                    ring slots ever claimed
 *   QUIT             set once by quit; further submissions fail
 * A do that finds the worker idle takes it (one CAS sets LOCKED) and runs
 * its own item at once - no slot, no node - then becomes the combiner: it
 * runs the items the others put in the ring meanwhile, in ticket order,
 * until it can clear LOCKED with the ticket count equal to what it ran. A
 * do that finds it busy claims the next ticket with one CAS on state (only
 * if that ticket's slot is free), writes fn/arg/arg_free into the slot,
 * publishes it with the slot's sequence number (Vyukov's bounded queue) and
 * returns. So at most one thread runs items, items run in the order their
 * tickets were claimed (hence FIFO per submitter), and the combiner's
 * release fails whenever a ticket was claimed after its last look.
 *
 * Bounded: the ring has TW__S_CAP slots and nothing else holds queued work
 * from other threads. When it is full, a submitter waits (spinning, then
 * yielding the CPU - never a mutex) until the combiner has freed half of
 * it. So the backlog is at most TW__S_CAP items however many threads
 * submit, and submitters cannot outrun the combiner: the old design (a
 * Treiber stack of nodes) let 4 - 8 submitters build a backlog of millions
 * of nodes (150 - 220 MB, docs/performance.md).
 * The one exception: a do from inside the work on the combiner's own
 * thread (re-entrant) must not wait for itself; such items go to a list
 * only the combiner touches and run right after the current item, as in a
 * lock worker. Their number is what the work itself submits.
 *
 * Completion: QUIT while idle happens exactly once - in quit, if the worker
 * is idle, or in the combiner's final CAS. Whichever sees it signals `done`
 * (the only mutex, off the hot path), and free waits for it, so free never
 * races with a combiner still inside the worker.
 */
#include "tnode.h"
#include "worker-internal.h"

#include <sched.h>
#include <stdint.h>
#include <uv.h>


typedef struct tw__serial_node {
  tw__item item;
  tw_call_fn fn;
  void *arg;
  tw_free_fn arg_free;
} tw__serial_node;

_Static_assert(sizeof(tw__serial_node) <= TW__TNODE_SIZE,
               "a serial node must fit a tnode");

#define TW__S_QUIT ((uintptr_t)1)
#define TW__S_LOCKED ((uintptr_t)2)
#define TW__S_ONE ((uintptr_t)4) /* one ticket */
/* Tickets and sequence numbers count modulo 2^(bits - 2) (they wrap after
 * 2^30 items on a 32-bit machine: only equality is ever tested). */
#define TW__S_SEQ(x) ((x) & (UINTPTR_MAX >> 2))
#define TW__S_TICKET(state) ((state) >> 2)

/*
 * The ring's size: the most items waiting for the combiner. 256 slots of
 * 32 bytes (8 KB a worker) let a combiner run batches of 128 while its
 * submitters fill the other half; 1024 and 4096 measured no better
 * (bench/serial_worker, docs/performance.md).
 */
#define TW__S_CAP ((uintptr_t)256)
#define TW__S_MASK (TW__S_CAP - 1)

/* A slot: free for ticket t when seq == t, filled for it when seq == t + 1.
 * fn NULL: arg is a tw__item (a team's step, never allocated here). */
typedef struct tw__serial_slot {
  _Atomic uintptr_t seq;
  tw_call_fn fn;
  void *arg;
  tw_free_fn arg_free;
} tw__serial_slot;

typedef struct tw__serial_worker {
  tw_worker base; /* read by every submitter */
  /* written by every submitter and the combiner: a line of its own (the
   * worker's memory is line-aligned, tw__calloc_lines) */
  TW__LINE_ALIGNED _Atomic uintptr_t state;
  /* The combiner's (handed from one to the next by state's CAS). */
  TW__LINE_ALIGNED uintptr_t head; /* the next ticket to run */
  TW__FIFO(tw__item) mine;         /* re-entrant items */
  uv_mutex_t mutex;
  uv_cond_t cond;
  int done;
  TW__LINE_ALIGNED tw__serial_slot ring[TW__S_CAP];
} tw__serial_worker;

/* The serial workers being drained by this thread, innermost first. */
typedef struct tw__serial_frame {
  const tw__serial_worker *w;
  struct tw__serial_frame *prev;
} tw__serial_frame;

static TW__TLS tw__serial_frame *tw__serial_frames;

static const char tw__serial_why[] = "Unhandled error in serial worker";

/* ---- nodes ---------------------------------------------------------------- */

static void tw__serial_node_release(tw__serial_node *n) { tw__tnode_put(n); }

static void tw__serial_node_run(tw__item *it) {
  tw__serial_node *n = TW__CONTAINER_OF(it, tw__serial_node, item);
  tw_call_fn fn = n->fn;
  void *arg = n->arg;
  tw_free_fn arg_free = n->arg_free;
  /* Give the node back before running: the submitters may reuse it. */
  tw__serial_node_release(n);
  fn(arg);
  if (arg_free != NULL) arg_free(arg);
}

static void tw__serial_node_drop(tw__item *it) {
  tw__serial_node *n = TW__CONTAINER_OF(it, tw__serial_node, item);
  tw_free_fn arg_free = n->arg_free;
  void *arg = n->arg;
  tw__serial_node_release(n);
  if (arg_free != NULL) arg_free(arg);
}

static const tw__item_ops tw__serial_node_ops = {tw__serial_node_run,
                                                 tw__serial_node_drop};

/* ---- running -------------------------------------------------------------- */

static void tw__serial_signal_done(tw__serial_worker *w) {
  uv_mutex_lock(&w->mutex);
  w->done = 1;
  uv_cond_signal(&w->cond);
  uv_mutex_unlock(&w->mutex);
}

/* 1 when the calling thread is w's combiner (a do from inside its work). */
static int tw__serial_is_mine(const tw__serial_worker *w) {
  const tw__serial_frame *f;
  for (f = tw__serial_frames; f != NULL; f = f->prev)
    if (f->w == w) return 1;
  return 0;
}

/*
 * One step of waiting for another thread (a full ring's combiner, or a
 * submitter between its claim and its publication): spin briefly, then
 * give the CPU away - on a machine with more submitters than cores, the
 * thread we wait for may need ours.
 */
static void tw__serial_pause(unsigned *spins, unsigned limit) {
  if (++*spins <= limit)
    TW__CPU_RELAX();
  else
    sched_yield();
}

static void tw__serial_run_fn(tw_call_fn fn, void *arg, tw_free_fn arg_free,
                              tw_failure **failure) {
  if (fn == NULL) {
    tw__item_run((tw__item *)arg);
  } else {
    fn(arg);
    if (arg_free != NULL) arg_free(arg);
  }
  if (*failure != NULL) tw__work_log_slot(failure, tw__serial_why);
}

/* Run the combiner's re-entrant items (and the ones they add), FIFO. */
static void tw__serial_run_mine(tw__serial_worker *w, tw_failure **failure) {
  tw__item *it;
  for (;;) {
    TW__FIFO_POP(&w->mine, it, next);
    if (it == NULL) break;
    tw__item_run(it);
    if (*failure != NULL) tw__work_log_slot(failure, tw__serial_why);
  }
}

/*
 * Called by the thread that took the worker from idle, after it ran its own
 * item: run what others put in the ring meanwhile, in ticket order, until
 * the worker can be handed back to idle. After that CAS the worker belongs
 * to nobody, so the only access left is the done signal, which free waits
 * for.
 */
static void tw__serial_drain(tw__serial_worker *w, tw_failure **failure) {
  uintptr_t h = w->head;
  tw__serial_run_mine(w, failure);
  for (;;) {
    uintptr_t st = atomic_load_explicit(&w->state, memory_order_acquire);
    uintptr_t end = TW__S_TICKET(st);
    if (end == h) {
      if (atomic_compare_exchange_strong_explicit(
              &w->state, &st, st & ~TW__S_LOCKED, memory_order_acq_rel,
              memory_order_relaxed)) {
        if (st & TW__S_QUIT) tw__serial_signal_done(w);
        return;
      }
      continue; /* a ticket was claimed (or quit came in): look again */
    }
    while (h != end) {
      tw__serial_slot *s = &w->ring[h & TW__S_MASK];
      uintptr_t ready = TW__S_SEQ(h + 1);
      tw_call_fn fn;
      void *arg;
      tw_free_fn arg_free;
      unsigned spins = 0;
      /* Claimed; its submitter may still be writing it. */
      while (atomic_load_explicit(&s->seq, memory_order_acquire) != ready)
        tw__serial_pause(&spins, 32);
      fn = s->fn;
      arg = s->arg;
      arg_free = s->arg_free;
      /* Free the slot before running: a waiting submitter may take it. */
      atomic_store_explicit(&s->seq, TW__S_SEQ(h + TW__S_CAP),
                            memory_order_release);
      h = TW__S_SEQ(h + 1);
      tw__serial_run_fn(fn, arg, arg_free, failure);
      tw__serial_run_mine(w, failure);
    }
    w->head = h; /* for the next combiner, through state's CAS */
  }
}

/*
 * The ring is full at ticket t (ticket t - CAP is not run yet): wait until
 * the combiner has run ticket t - CAP/2, i.e. half the ring is free, rather
 * than until the first slot is. Woken one slot at a time, the submitters
 * kept the ring full and fought the combiner over each slot's cache line
 * and over state at every item; woken at half, they fill 128 slots in a
 * burst while the combiner runs the other 128 (bench/serial_worker, 2
 * submitters, same loaded machine: 48.3 M items/s against 13.9 M).
 */
/* Spins before a waiting submitter starts yielding (256 measured the same
 * as 32 on a loaded machine; an idle one may say otherwise). */
#define TW__S_WAIT_SPINS 32
static void tw__serial_wait_half(tw__serial_worker *w, uintptr_t t) {
  uintptr_t u = TW__S_SEQ(t - TW__S_CAP / 2);
  uintptr_t freed = TW__S_SEQ(u + TW__S_CAP); /* slot's seq once u ran */
  _Atomic uintptr_t *seq = &w->ring[u & TW__S_MASK].seq;
  unsigned spins = 0;
  /* Before u ran, seq is u or u + 1: "behind" freed modulo the counter's
   * range; once it ran, freed or later. */
  while (TW__S_SEQ(atomic_load_explicit(seq, memory_order_relaxed) - freed) >
         (UINTPTR_MAX >> 3))
    tw__serial_pause(&spins, TW__S_WAIT_SPINS);
}

/*
 * Take the worker if idle (0: it is the caller's now, run the item), or,
 * when want_slot, claim the next ticket (1, *ticket set: fill its slot),
 * waiting while the ring is full, or return 2 when the caller is the
 * combiner itself (re-entrant: queue on its own list); without want_slot,
 * 1 means busy. TW_EALREADYQUIT once quit.
 */
static int tw__serial_claim(tw__serial_worker *w, int want_slot,
                            uintptr_t *ticket) {
  uintptr_t old = atomic_load_explicit(&w->state, memory_order_relaxed);
  for (;;) {
    uintptr_t t;
    if (old & TW__S_QUIT) return TW_EALREADYQUIT;
    if (!(old & TW__S_LOCKED)) {
      if (atomic_compare_exchange_weak_explicit(&w->state, &old,
                                                old | TW__S_LOCKED,
                                                memory_order_acq_rel,
                                                memory_order_relaxed))
        return 0;
      continue;
    }
    if (!want_slot) return 1;
    /* Busy, perhaps with us: a do from inside the work must not wait for
     * itself (checked only here, off the idle path). */
    if (tw__serial_is_mine(w)) return 2;
    t = TW__S_TICKET(old);
    /* The slot is free for ticket t once the combiner has taken ticket
     * t - CAP out of it (acquire: our writes come after its reads). */
    if (atomic_load_explicit(&w->ring[t & TW__S_MASK].seq,
                             memory_order_acquire) != t) {
      uintptr_t now = atomic_load_explicit(&w->state, memory_order_relaxed);
      if (now == old) tw__serial_wait_half(w, t); /* full */
      old = atomic_load_explicit(&w->state, memory_order_relaxed);
      continue;
    }
    if (atomic_compare_exchange_weak_explicit(&w->state, &old,
                                              old + TW__S_ONE,
                                              memory_order_acq_rel,
                                              memory_order_relaxed)) {
      *ticket = t;
      return 1;
    }
  }
}

static void tw__serial_fill(tw__serial_worker *w, uintptr_t t, tw_call_fn fn,
                            void *arg, tw_free_fn arg_free) {
  tw__serial_slot *s = &w->ring[t & TW__S_MASK];
  s->fn = fn;
  s->arg = arg;
  s->arg_free = arg_free;
  atomic_store_explicit(&s->seq, TW__S_SEQ(t + 1), memory_order_release);
}

/* We own the worker: run fn(arg) (fn NULL: arg is an item), then drain. */
static void tw__serial_own(tw__serial_worker *w, tw_call_fn fn, void *arg,
                           tw_free_fn arg_free) {
  tw__serial_frame frame;
  tw_failure **failure = tw__work_failure_slot();
  /* A failure the caller has not collected yet is not ours to log. */
  tw_failure *outer = tw__work_stash(failure);
  frame.w = w;
  frame.prev = tw__serial_frames;
  tw__serial_frames = &frame;
  tw__serial_run_fn(fn, arg, arg_free, failure);
  {
    /* Nothing claimed or queued meanwhile (the usual case without
     * contention): one CAS hands the worker back. */
    uintptr_t idle = (w->head << 2) | TW__S_LOCKED;
    if (!TW__FIFO_EMPTY(&w->mine) ||
        !atomic_compare_exchange_strong_explicit(
            &w->state, &idle, idle & ~TW__S_LOCKED, memory_order_acq_rel,
            memory_order_relaxed))
      tw__serial_drain(w, failure);
  }
  tw__serial_frames = frame.prev;
  tw__work_unstash(failure, outer);
}

/* A re-entrant do: queue it on the combiner's own list. */
static int tw__serial_add_mine(tw__serial_worker *w, tw__item *it) {
  if (atomic_load_explicit(&w->state, memory_order_relaxed) & TW__S_QUIT)
    return TW_EALREADYQUIT;
  TW__FIFO_PUSH(&w->mine, it, next);
  return 0;
}

/* 0 done (run or queued), 2 re-entrant (not queued yet), or an error. */
static int tw__serial_submit(tw__serial_worker *w, tw_call_fn fn, void *arg,
                             tw_free_fn arg_free) {
  uintptr_t t;
  int rc = tw__serial_claim(w, 1, &t);
  if (rc == 0)
    tw__serial_own(w, fn, arg, arg_free);
  else if (rc == 1)
    tw__serial_fill(w, t, fn, arg, arg_free);
  return rc == 1 ? 0 : rc;
}

static int tw__serial_do_item(tw_worker *wk, tw__item *it) {
  tw__serial_worker *w = (tw__serial_worker *)wk;
  int rc = tw__serial_submit(w, NULL, it, NULL);
  return rc == 2 ? tw__serial_add_mine(w, it) : rc;
}

static int tw__serial_do_work(tw_worker *wk, tw_call_fn fn, void *arg,
                              tw_free_fn arg_free) {
  tw__serial_worker *w = (tw__serial_worker *)wk;
  tw__serial_node *n;
  int rc = tw__serial_submit(w, fn, arg, arg_free);
  if (rc != 2) return rc;
  n = tw__tnode_get();
  if (n == NULL) return TW_ENOMEM;
  n->item.ops = &tw__serial_node_ops;
  n->fn = fn;
  n->arg = arg;
  n->arg_free = arg_free;
  rc = tw__serial_add_mine(w, &n->item);
  if (rc != 0) tw__serial_node_release(n);
  return rc;
}

int tw__serial_try_run(tw_worker *wk, tw_call_fn fn, void *arg) {
  tw__serial_worker *w = (tw__serial_worker *)wk;
  uintptr_t t;
  int rc = tw__serial_claim(w, 0, &t);
  if (rc != 0) return rc == 1 ? 0 : rc;
  tw__serial_own(w, fn, arg, NULL);
  return 1;
}

static int tw__serial_quit(tw_worker *wk) {
  tw__serial_worker *w = (tw__serial_worker *)wk;
  uintptr_t old =
      atomic_fetch_or_explicit(&w->state, TW__S_QUIT, memory_order_acq_rel);
  if (old & TW__S_QUIT) return TW_EALREADYQUIT;
  /* Idle: nobody will see the flag at a final CAS. */
  if (!(old & TW__S_LOCKED)) tw__serial_signal_done(w);
  return 0;
}

static int tw__serial_destroy(tw_worker *wk) {
  tw__serial_worker *w = (tw__serial_worker *)wk;
  if (tw__serial_is_mine(w)) return TW_EDEADLK;
  (void)tw__serial_quit(wk);
  uv_mutex_lock(&w->mutex);
  while (!w->done) uv_cond_wait(&w->cond, &w->mutex);
  uv_mutex_unlock(&w->mutex);
  uv_cond_destroy(&w->cond);
  uv_mutex_destroy(&w->mutex);
  tw__free_lines(w);
  return 0;
}

const tw__worker_class tw__serial_worker_class = {
    {tw__serial_do_work, tw__serial_quit, tw__serial_destroy},
    tw__serial_do_item};

int tw_serial_worker_new(tw_worker **out) {
  tw__serial_worker *w;
  int rc;
  if (out == NULL) return TW_EINVAL;
  w = tw__calloc_lines(sizeof(*w));
  if (w == NULL) return TW_ENOMEM;
  w->base.vtable = &tw__serial_worker_class.vtable;
  {
    uintptr_t i;
    atomic_init(&w->state, 0);
    for (i = 0; i < TW__S_CAP; i++) atomic_init(&w->ring[i].seq, i);
  }
  rc = uv_mutex_init(&w->mutex);
  if (rc != 0) {
    tw__free_lines(w);
    return rc;
  }
  rc = uv_cond_init(&w->cond);
  if (rc != 0) {
    uv_mutex_destroy(&w->mutex);
    tw__free_lines(w);
    return rc;
  }
  *out = &w->base;
  return 0;
}
