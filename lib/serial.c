/*
 * lib/serial.c - the serial worker: a lock-free exclusive executor with no
 * thread of its own (worker.h), the coordinator of twuv's teams.
 *
 * One atomic word, top = pointer to the most recently submitted item | flags:
 *   0                  idle: nobody runs items, nothing is queued
 *   LOCKED | items     a drainer is running items; items (maybe none) wait,
 *                      newest first, linked through item->next
 *   QUIT               set once by quit; further submissions fail
 * plus a quit word, set by quit just before the QUIT bit and checked first
 * by every submission (see tw__serial_drain for why both).
 * A submission is one compare-and-swap. The one that finds the worker idle
 * takes it (0 -> LOCKED) and runs its own item at once - no queueing, no
 * node - then drains: it takes every waiting item with one exchange
 * (writing the flags back), reverses them into submission order, runs
 * them, and repeats until it can swap LOCKED back to 0. Everybody else
 * pushes and returns. So at most one thread runs items at any time, items
 * run in the order their submissions succeeded (hence FIFO per submitter),
 * and no mutex is taken on the way. The drainer pays one atomic per batch,
 * not per item.
 *
 * Completion: QUIT while idle happens exactly once - in quit, if the worker
 * is idle, or in the drainer's final swap. Whichever sees it signals `done`
 * (the only mutex, off the hot path), and free waits for it, so free never
 * races with a drainer still inside the worker.
 *
 * Nodes: a do that finds the worker busy needs a node; they come from the
 * submitting thread's slab (lib/tnode.h) rather than from malloc in the
 * submitter and free in the drainer, a cross-thread free that glibc pays
 * for with its arena lock, and rather than from a shared free list, whose
 * head every submitter and the drainer would fight over.
 */
#include "tnode.h"
#include "worker-internal.h"

#include <uv.h>


typedef struct tw__serial_node {
  tw__item item;
  tw_call_fn fn;
  void *arg;
  tw_free_fn arg_free;
} tw__serial_node;

_Static_assert(sizeof(tw__serial_node) <= TW__TNODE_SIZE,
               "a serial node must fit a tnode");

#define TW__S_LOCKED ((uintptr_t)1)
#define TW__S_QUIT ((uintptr_t)2)
#define TW__S_FLAGS (TW__S_LOCKED | TW__S_QUIT)

_Static_assert(_Alignof(tw__item) >= 4, "items leave two low bits free");

/*
 * top is the word every submission and every batch fights over: it gets a
 * cache line of its own. Otherwise the vtable pointer and the quit flag,
 * which every do reads, would share its line, and each read would pull the
 * line away from the thread about to swap it (and back).
 */
#define TW__S_LINE 64

typedef struct tw__serial_worker {
  tw_worker base;
  /* Set once, by the first quit; read by every submission (so it sits on
   * the read-mostly line of the vtable pointer, not on top's). */
  atomic_int quit;
  int done;
  uv_mutex_t mutex;
  uv_cond_t cond;
  char pad_before[TW__S_LINE];
  _Atomic uintptr_t top;
  char pad_after[TW__S_LINE - sizeof(uintptr_t)];
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

static void tw__serial_run(tw__item *it, tw_failure **failure) {
  tw__item_run(it);
  if (*failure != NULL) tw__work_log_slot(failure, tw__serial_why);
}

/*
 * Called by the thread that took the worker from idle, after it ran its own
 * item: run what others submitted meanwhile, a batch at a time, until the
 * worker can be handed back to idle. After that swap the worker belongs to
 * nobody, so the only access left is the done signal, which free waits for.
 *
 * A batch is taken with an exchange, not a compare-and-swap loop: with
 * submitters pushing as fast as they can, a CAS from a value read a moment
 * earlier keeps failing, and every attempt moves top's line twice. The
 * exchange writes the flags back blind, so it may erase a QUIT that quit
 * set since our last look; quit_seen remembers it from the value the
 * exchange returns, and the worker only goes idle from a top we wrote with
 * QUIT restored. Submitters cannot slip through that gap: they check the
 * quit word, which quit sets before the bit (see tw__serial_quit).
 */
static void tw__serial_drain(tw__serial_worker *w, tw_failure **failure) {
  uintptr_t written = TW__S_LOCKED, quit_seen = 0;
  for (;;) {
    uintptr_t cur = written, old;
    tw__item *batch, *fifo = NULL;
    /* Nothing came in since we wrote top (the usual case without
     * contention): one CAS hands the worker back. */
    if (written == (TW__S_LOCKED | quit_seen) &&
        atomic_compare_exchange_strong_explicit(&w->top, &cur, quit_seen,
                                                memory_order_release,
                                                memory_order_relaxed)) {
      if (quit_seen) tw__serial_signal_done(w);
      return;
    }
    quit_seen |= cur & TW__S_QUIT;
    written = TW__S_LOCKED | quit_seen;
    old = atomic_exchange_explicit(&w->top, written, memory_order_acq_rel);
    quit_seen |= old & TW__S_QUIT;
    /* Newest first -> submission order. */
    batch = (tw__item *)(old & ~TW__S_FLAGS);
    while (batch != NULL) {
      tw__item *next = batch->next;
      batch->next = fifo;
      fifo = batch;
      batch = next;
    }
    while (fifo != NULL) {
      tw__item *it = fifo;
      fifo = it->next; /* read before run: run may free or resubmit it */
      tw__serial_run(it, failure);
    }
  }
}

/*
 * Take the worker if idle: 1 (it is ours), 0 (busy; *top_seen holds the
 * value that said so) or TW_EALREADYQUIT. The quit word is checked first:
 * it is what keeps out submissions while a drainer's exchange has erased
 * the QUIT bit.
 */
static int tw__serial_take(tw__serial_worker *w, uintptr_t *top_seen) {
  uintptr_t old = 0;
  if (atomic_load_explicit(&w->quit, memory_order_acquire))
    return TW_EALREADYQUIT;
  /* Expect idle rather than load first: without contention that is one
   * CAS, and when busy the failed CAS has fetched the line for writing
   * along with the value the push needs. */
  if (atomic_compare_exchange_strong_explicit(&w->top, &old, TW__S_LOCKED,
                                              memory_order_acquire,
                                              memory_order_relaxed))
    return 1;
  if (old & TW__S_QUIT) return TW_EALREADYQUIT;
  *top_seen = old;
  return 0;
}

/*
 * Push it, last seen top being old: 0 with *own clear when queued, 0 with
 * *own set when the worker went idle meanwhile and is now the caller's (it
 * was not queued: run it), or TW_EALREADYQUIT.
 */
static int tw__serial_push(tw__serial_worker *w, tw__item *it, uintptr_t old,
                           int *own) {
  for (;;) {
    uintptr_t desired;
    if (old & TW__S_QUIT) return TW_EALREADYQUIT;
    if (!(old & TW__S_LOCKED)) {
      desired = TW__S_LOCKED;
    } else {
      it->next = (tw__item *)(old & ~TW__S_FLAGS);
      desired = (uintptr_t)it | TW__S_LOCKED;
    }
    if (atomic_compare_exchange_weak_explicit(&w->top, &old, desired,
                                              memory_order_acq_rel,
                                              memory_order_relaxed)) {
      *own = !(old & TW__S_LOCKED);
      return 0;
    }
  }
}

/* We own the worker: run first (an item, or fn/arg/arg_free), then drain. */
static void tw__serial_own(tw__serial_worker *w, tw__item *first,
                           tw_call_fn fn, void *arg, tw_free_fn arg_free) {
  tw__serial_frame frame;
  tw_failure **failure = tw__work_failure_slot();
  /* A failure the caller has not collected yet is not ours to log. */
  tw_failure *outer = *failure;
  *failure = NULL;
  frame.w = w;
  frame.prev = tw__serial_frames;
  tw__serial_frames = &frame;
  if (first != NULL) {
    tw__serial_run(first, failure);
  } else {
    fn(arg);
    if (arg_free != NULL) arg_free(arg);
    if (*failure != NULL) tw__work_log_slot(failure, tw__serial_why);
  }
  tw__serial_drain(w, failure);
  tw__serial_frames = frame.prev;
  *failure = outer;
}

static int tw__serial_do_item(tw_worker *wk, tw__item *it) {
  tw__serial_worker *w = (tw__serial_worker *)wk;
  uintptr_t old;
  int own, rc = tw__serial_take(w, &old);
  if (rc == 0) rc = tw__serial_push(w, it, old, &own);
  else if (rc == 1) own = 1, rc = 0;
  if (rc == 0 && own) tw__serial_own(w, it, NULL, NULL, NULL);
  return rc;
}

static int tw__serial_do_work(tw_worker *wk, tw_call_fn fn, void *arg,
                              tw_free_fn arg_free) {
  tw__serial_worker *w = (tw__serial_worker *)wk;
  tw__serial_node *n;
  uintptr_t old;
  int own, rc = tw__serial_take(w, &old);
  if (rc != 0) {
    /* Idle: ours now; run fn without wrapping it in a node. */
    if (rc == 1) {
      tw__serial_own(w, NULL, fn, arg, arg_free);
      rc = 0;
    }
    return rc;
  }
  n = tw__tnode_get();
  if (n == NULL) return TW_ENOMEM;
  n->item.ops = &tw__serial_node_ops;
  n->fn = fn;
  n->arg = arg;
  n->arg_free = arg_free;
  rc = tw__serial_push(w, &n->item, old, &own);
  if (rc != 0) {
    tw__serial_node_release(n);
  } else if (own) {
    /* Went idle meanwhile: ours, and fn needs no node after all. */
    tw__serial_node_release(n);
    tw__serial_own(w, NULL, fn, arg, arg_free);
  }
  return rc;
}

int tw__serial_try_run(tw_worker *wk, tw_call_fn fn, void *arg) {
  tw__serial_worker *w = (tw__serial_worker *)wk;
  uintptr_t old;
  int rc = tw__serial_take(w, &old);
  if (rc != 1) return rc;
  tw__serial_own(w, NULL, fn, arg, NULL);
  return 1;
}

/*
 * The quit word first, then the bit in top. The word turns away every do
 * from now on, even one that meets a top whose QUIT a drainer's exchange
 * has just erased; the bit is what the drainer's final swap and a late
 * submitter's CAS see (a do that read the word before it was set and
 * pushes afterwards was concurrent with quit, so it is accepted if the
 * worker is still running, and refused once it went idle with QUIT).
 */
static int tw__serial_quit(tw_worker *wk) {
  tw__serial_worker *w = (tw__serial_worker *)wk;
  uintptr_t old;
  if (atomic_exchange_explicit(&w->quit, 1, memory_order_acq_rel))
    return TW_EALREADYQUIT;
  old = atomic_fetch_or_explicit(&w->top, TW__S_QUIT, memory_order_acq_rel);
  /* Idle: nobody will see the flag at a final swap. */
  if (!(old & TW__S_LOCKED)) tw__serial_signal_done(w);
  return 0;
}

static int tw__serial_destroy(tw_worker *wk) {
  tw__serial_worker *w = (tw__serial_worker *)wk;
  tw__serial_frame *f;
  for (f = tw__serial_frames; f != NULL; f = f->prev)
    if (f->w == w) return TW_EDEADLK;
  (void)tw__serial_quit(wk);
  uv_mutex_lock(&w->mutex);
  while (!w->done) uv_cond_wait(&w->cond, &w->mutex);
  uv_mutex_unlock(&w->mutex);
  uv_cond_destroy(&w->cond);
  uv_mutex_destroy(&w->mutex);
  tw__free(w);
  return 0;
}

const tw__worker_class tw__serial_worker_class = {
    {tw__serial_do_work, tw__serial_quit, tw__serial_destroy},
    tw__serial_do_item};

int tw_serial_worker_new(tw_worker **out) {
  tw__serial_worker *w;
  int rc;
  if (out == NULL) return TW_EINVAL;
  w = tw__calloc(1, sizeof(*w));
  if (w == NULL) return TW_ENOMEM;
  w->base.vtable = &tw__serial_worker_class.vtable;
  atomic_init(&w->top, 0);
  atomic_init(&w->quit, 0);
  rc = uv_mutex_init(&w->mutex);
  if (rc != 0) {
    tw__free(w);
    return rc;
  }
  rc = uv_cond_init(&w->cond);
  if (rc != 0) {
    uv_mutex_destroy(&w->mutex);
    tw__free(w);
    return rc;
  }
  *out = &w->base;
  return 0;
}
