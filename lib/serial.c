/*
 * lib/serial.c - the serial worker: a lock-free exclusive executor with no
 * thread of its own (worker.h), the coordinator of twuv's teams.
 *
 * One atomic word, top = pointer to the most recently submitted item | flags:
 *   0                  idle: nobody runs items, nothing is queued
 *   LOCKED | items     a drainer is running items; items (maybe none) wait,
 *                      newest first, linked through item->next
 *   QUIT               set once by quit; further submissions fail
 * A submission is one compare-and-swap. The one that finds the worker idle
 * takes it (0 -> LOCKED) and runs its own item at once - no queueing, no
 * node - then drains: it takes every waiting item with one atomic
 * (fetch_and, keeping the flags), reverses them into submission order, runs
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

typedef struct tw__serial_worker {
  tw_worker base; /* read by every submitter */
  /* written by every submitter and drainer: a line of its own (the
   * worker's memory is line-aligned, tw__calloc_lines) */
  char pad_before[TW__LINE - sizeof(tw_worker)];
  _Atomic uintptr_t top;
  char pad_after[TW__LINE - sizeof(uintptr_t)];
  uv_mutex_t mutex;
  uv_cond_t cond;
  int done;
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
 */
static void tw__serial_drain(tw__serial_worker *w, tw_failure **failure) {
  uintptr_t expect = TW__S_LOCKED;
  /* Nothing came in meanwhile (the usual case without contention): one CAS
   * hands the worker back. */
  if (atomic_load_explicit(&w->top, memory_order_relaxed) == TW__S_LOCKED &&
      atomic_compare_exchange_strong_explicit(&w->top, &expect, 0,
                                              memory_order_acq_rel,
                                              memory_order_relaxed))
    return;
  for (;;) {
    uintptr_t old = atomic_fetch_and_explicit(&w->top, TW__S_FLAGS,
                                              memory_order_acq_rel);
    tw__item *batch = (tw__item *)(old & ~TW__S_FLAGS), *fifo = NULL;
    if (batch == NULL) {
      uintptr_t expect = old & TW__S_FLAGS; /* LOCKED, maybe QUIT */
      if (atomic_compare_exchange_strong_explicit(
              &w->top, &expect, expect & ~TW__S_LOCKED, memory_order_acq_rel,
              memory_order_relaxed)) {
        if (expect & TW__S_QUIT) tw__serial_signal_done(w);
        return;
      }
      continue; /* a submission (or quit) came in: look again */
    }
    /* Newest first -> submission order. */
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
 * Submit it. With it == NULL the caller only wants the worker if idle (to
 * run its work inline): 1 means busy. Otherwise 0 with *own set when the
 * worker was idle and is now the caller's (it was not queued: run it), 0
 * with *own clear when queued, or TW_EALREADYQUIT.
 */
static int tw__serial_submit(tw__serial_worker *w, tw__item *it, int *own) {
  uintptr_t old = atomic_load_explicit(&w->top, memory_order_relaxed);
  for (;;) {
    uintptr_t desired;
    if (old & TW__S_QUIT) return TW_EALREADYQUIT;
    if (!(old & TW__S_LOCKED)) {
      desired = TW__S_LOCKED;
    } else if (it == NULL) {
      return 1;
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
  int own, rc = tw__serial_submit(w, it, &own);
  if (rc == 0 && own) tw__serial_own(w, it, NULL, NULL, NULL);
  return rc;
}

static int tw__serial_do_work(tw_worker *wk, tw_call_fn fn, void *arg,
                              tw_free_fn arg_free) {
  tw__serial_worker *w = (tw__serial_worker *)wk;
  tw__serial_node *n;
  int own, rc = tw__serial_submit(w, NULL, &own);
  if (rc <= 0) {
    /* Idle: ours now; run fn without wrapping it in a node. */
    if (rc == 0) tw__serial_own(w, NULL, fn, arg, arg_free);
    return rc;
  }
  n = tw__tnode_get();
  if (n == NULL) return TW_ENOMEM;
  n->item.ops = &tw__serial_node_ops;
  n->fn = fn;
  n->arg = arg;
  n->arg_free = arg_free;
  rc = tw__serial_submit(w, &n->item, &own);
  if (rc != 0)
    tw__serial_node_release(n);
  else if (own) /* went idle meanwhile: the item is ours to run */
    tw__serial_own(w, &n->item, NULL, NULL, NULL);
  return rc;
}

int tw__serial_try_run(tw_worker *wk, tw_call_fn fn, void *arg) {
  tw__serial_worker *w = (tw__serial_worker *)wk;
  int own, rc = tw__serial_submit(w, NULL, &own);
  if (rc != 0) return rc == 1 ? 0 : rc;
  tw__serial_own(w, NULL, fn, arg, NULL);
  return 1;
}

static int tw__serial_quit(tw_worker *wk) {
  tw__serial_worker *w = (tw__serial_worker *)wk;
  uintptr_t old =
      atomic_fetch_or_explicit(&w->top, TW__S_QUIT, memory_order_acq_rel);
  if (old & TW__S_QUIT) return TW_EALREADYQUIT;
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
  atomic_init(&w->top, 0);
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
