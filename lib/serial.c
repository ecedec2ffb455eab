/*
 * lib/serial.c - the serial worker: a lock-free exclusive executor with no
 * thread of its own (worker.h), the coordinator of twuv's teams.
 *
 * One atomic word, state = count * TW__S_ONE | QUIT, where count is the
 * number of accepted items not yet run (and accounted for). A do first
 * raises count with a CAS that fails once QUIT is set, so acceptance and
 * quit are totally ordered. The do that raises count from 0 owns the worker:
 * it runs its own item at once (no queueing, no allocation) and then drains
 * the intrusive MPSC queue (lib/mpsc.h) until count falls back to 0. Every
 * other do pushes its item and returns; the count it raised keeps the
 * drainer going until that item has run, and tw__mpsc_pop_wait covers the
 * window between a producer's CAS and its push. So at most one thread runs
 * items at any time, each producer's items run in its order, and no mutex is
 * taken on the way.
 *
 * Completion: QUIT with count 0 happens exactly once - in quit, if the
 * worker is idle, or in the drainer's last subtraction. Whichever sees it
 * signals `done` (the only mutex, off the hot path), and free waits for it,
 * so free never races with a drainer still inside the worker.
 *
 * Nodes: a do that finds the worker busy needs a node; they come from a
 * freelist (worker-internal.h) rather than from malloc in the submitter and
 * free in the drainer, a cross-thread free that glibc pays for with its
 * arena lock.
 */
#include "worker-internal.h"

#include <uv.h>

#define TW__S_QUIT ((size_t)1)
#define TW__S_ONE ((size_t)2)

/* Nodes per worker, allocated at the first busy do (a team's coordinator
 * never needs them: the team's items carry their own). */
#define TW__S_NODES 1024

typedef struct tw__serial_node {
  tw__freenode free; /* first: the freelist's */
  tw__item item;
  tw_call_fn fn;
  void *arg;
  tw_free_fn arg_free;
  tw__freelist *home; /* NULL: from tw__malloc */
} tw__serial_node;

typedef struct tw__serial_worker {
  tw_worker base;
  _Atomic size_t state;
  tw__mpsc q;
  tw__freelist nodes;
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

static void tw__serial_node_release(tw__serial_node *n) {
  if (n->home != NULL)
    tw__freelist_put(n->home, n);
  else
    tw__free(n);
}

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

/* ---- running -------------------------------------------------------------- */

static void tw__serial_signal_done(tw__serial_worker *w) {
  uv_mutex_lock(&w->mutex);
  w->done = 1;
  uv_cond_signal(&w->cond);
  uv_mutex_unlock(&w->mutex);
}

static void tw__serial_run(tw__item *it, tw_failure **failure) {
  it->run(it);
  if (*failure != NULL) tw__work_log_slot(failure, tw__serial_why);
}

/*
 * Called by the thread that took count from 0, after it ran its own item
 * (ran = 1): run what others queued, subtracting in batches, until count
 * reaches 0. After that subtraction the worker belongs to nobody, so the
 * only access left is the done signal, which free waits for.
 */
static void tw__serial_drain(tw__serial_worker *w, size_t ran,
                             tw_failure **failure) {
  for (;;) {
    tw__mpsc_node *n;
    size_t s;
    while ((n = tw__mpsc_pop(&w->q)) != NULL) {
      tw__serial_run(TW__CONTAINER_OF(n, tw__item, node), failure);
      ran++;
    }
    s = atomic_fetch_sub_explicit(&w->state, ran * TW__S_ONE,
                                  memory_order_acq_rel);
    if (s / TW__S_ONE == ran) {
      if (s & TW__S_QUIT) tw__serial_signal_done(w);
      return;
    }
    /* More were accepted; one is being linked in right now. */
    tw__serial_run(TW__CONTAINER_OF(tw__mpsc_pop_wait(&w->q), tw__item, node),
                   failure);
    ran = 1;
  }
}

/* Accept one item: 0 and the previous state, or TW_EALREADYQUIT. */
static int tw__serial_accept(tw__serial_worker *w, size_t *prev) {
  size_t s = atomic_load_explicit(&w->state, memory_order_relaxed);
  do {
    if (s & TW__S_QUIT) return TW_EALREADYQUIT;
  } while (!atomic_compare_exchange_weak_explicit(&w->state, &s, s + TW__S_ONE,
                                                  memory_order_acq_rel,
                                                  memory_order_relaxed));
  *prev = s;
  return 0;
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
  tw__serial_drain(w, 1, failure);
  tw__serial_frames = frame.prev;
  *failure = outer;
}

static int tw__serial_do_item(tw_worker *wk, tw__item *it) {
  tw__serial_worker *w = (tw__serial_worker *)wk;
  size_t prev;
  int rc = tw__serial_accept(w, &prev);
  if (rc != 0) return rc;
  if (prev / TW__S_ONE == 0)
    tw__serial_own(w, it, NULL, NULL, NULL);
  else
    tw__mpsc_push(&w->q, &it->node);
  return 0;
}

static int tw__serial_do_work(tw_worker *wk, tw_call_fn fn, void *arg,
                              tw_free_fn arg_free) {
  tw__serial_worker *w = (tw__serial_worker *)wk;
  tw__serial_node *n;
  size_t s = atomic_load_explicit(&w->state, memory_order_relaxed);
  int rc;
  if (s & TW__S_QUIT) return TW_EALREADYQUIT;
  /* Idle: take it over and run fn without wrapping it in a node. */
  if (s == 0 && atomic_compare_exchange_strong_explicit(
                    &w->state, &s, TW__S_ONE, memory_order_acq_rel,
                    memory_order_relaxed)) {
    tw__serial_own(w, NULL, fn, arg, arg_free);
    return 0;
  }
  n = tw__freelist_get(&w->nodes);
  if (n != NULL) {
    n->home = &w->nodes;
  } else {
    n = tw__malloc(sizeof(*n));
    if (n == NULL) return TW_ENOMEM;
    n->home = NULL;
  }
  n->item.run = tw__serial_node_run;
  n->item.drop = tw__serial_node_drop;
  n->fn = fn;
  n->arg = arg;
  n->arg_free = arg_free;
  rc = tw__serial_do_item(wk, &n->item);
  if (rc != 0) tw__serial_node_release(n);
  return rc;
}

static int tw__serial_quit(tw_worker *wk) {
  tw__serial_worker *w = (tw__serial_worker *)wk;
  size_t s = atomic_load_explicit(&w->state, memory_order_relaxed);
  do {
    if (s & TW__S_QUIT) return TW_EALREADYQUIT;
  } while (!atomic_compare_exchange_weak_explicit(&w->state, &s,
                                                  s | TW__S_QUIT,
                                                  memory_order_acq_rel,
                                                  memory_order_relaxed));
  if (s / TW__S_ONE == 0) tw__serial_signal_done(w);
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
  tw__freelist_destroy(&w->nodes);
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
  atomic_init(&w->state, 0);
  tw__mpsc_init(&w->q);
  tw__freelist_init(&w->nodes, sizeof(tw__serial_node), TW__S_NODES);
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
