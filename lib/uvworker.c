/*
 * lib/uvworker.c - a worker over libuv's own thread pool (worker.h).
 *
 * uv_queue_work may only be called on the loop's thread. A do on the loop's
 * thread calls it directly; a do elsewhere pushes the item on an intrusive
 * MPSC queue and wakes the loop through one uv_async_t, only when the queue
 * goes from empty to non-empty (the count protocol of lib/mpsc.h); the async
 * callback hands everything queued to uv_queue_work.
 *
 * state = items accepted and not yet completed, and QUIT: a gate
 * (lib/gate.h). Like the other workers, acceptance and quit are one atomic
 * decision. The count
 * tells free when the last after_work callback has run, so the memory can
 * go once the handle is closed too.
 */
#include "gate.h"
#include "worker-internal.h"

#include <uv.h>


typedef struct tw__uv_worker {
  tw_worker base;
  uv_loop_t *loop;
  uv_thread_t loop_thread;
  uv_async_t async;
  tw__mpsc q;
  _Atomic size_t queued; /* pushed, not yet handed to libuv */
  tw__gate state;
  /* loop thread only */
  int unrefed;
  int freeing;
  int closed;
} tw__uv_worker;

typedef struct tw__uv_item {
  uv_work_t req;
  tw__mpsc_node node;
  tw__uv_worker *w;
  tw_call_fn fn;
  void *arg;
  tw_free_fn arg_free;
} tw__uv_item;

static int tw__uv_on_loop_thread(const tw__uv_worker *w) {
  uv_thread_t self = uv_thread_self();
  return uv_thread_equal(&self, &w->loop_thread);
}

static void tw__uv_maybe_release(tw__uv_worker *w) {
  if (w->freeing && w->closed && tw__gate_users(&w->state, TW__GATE_ONE) == 0)
    tw__free(w);
}

/* On a pool thread. */
static void tw__uv_work_cb(uv_work_t *req) {
  tw__uv_item *it = TW__CONTAINER_OF(req, tw__uv_item, req);
  it->fn(it->arg);
  tw__work_log_pending("Unhandled error in uv worker");
  if (it->arg_free != NULL) it->arg_free(it->arg);
}

/* On the loop thread. */
static void tw__uv_after_cb(uv_work_t *req, int status) {
  tw__uv_item *it = TW__CONTAINER_OF(req, tw__uv_item, req);
  tw__uv_worker *w = it->w;
  /* Nobody cancels these requests; should someone, the work was dropped. */
  if (status != 0 && it->arg_free != NULL) it->arg_free(it->arg);
  tw__free(it);
  (void)tw__gate_sub(&w->state, TW__GATE_ONE);
  tw__uv_maybe_release(w);
}

static void tw__uv_hand(tw__uv_worker *w, tw__uv_item *it) {
  /* Fails only for a NULL work_cb. */
  (void)uv_queue_work(w->loop, &it->req, tw__uv_work_cb, tw__uv_after_cb);
}

/* Hand over everything pushed so far, including pushes made meanwhile. */
static void tw__uv_drain(tw__uv_worker *w) {
  for (;;) {
    size_t n = atomic_load_explicit(&w->queued, memory_order_acquire), i;
    if (n == 0) return;
    for (i = 0; i < n; i++)
      tw__uv_hand(w, TW__CONTAINER_OF(tw__mpsc_pop_wait(&w->q), tw__uv_item,
                                      node));
    if (atomic_fetch_sub_explicit(&w->queued, n, memory_order_acq_rel) == n)
      return;
  }
}

static void tw__uv_async_cb(uv_async_t *handle) {
  tw__uv_worker *w = TW__CONTAINER_OF(handle, tw__uv_worker, async);
  tw__uv_drain(w);
  /* After quit the handle no longer keeps the loop alive; the requests
   * still in flight do, until they complete. */
  if (!w->unrefed &&
      tw__gate_is_closed(&w->state)) {
    uv_unref((uv_handle_t *)&w->async);
    w->unrefed = 1;
  }
}

static void tw__uv_close_cb(uv_handle_t *handle) {
  tw__uv_worker *w = TW__CONTAINER_OF(handle, tw__uv_worker, async);
  w->closed = 1;
  tw__uv_maybe_release(w);
}

static int tw__uv_do_work(tw_worker *wk, tw_call_fn fn, void *arg,
                          tw_free_fn arg_free) {
  tw__uv_worker *w = (tw__uv_worker *)wk;
  tw__uv_item *it;
  it = tw__malloc(sizeof(*it));
  if (it == NULL) return TW_ENOMEM;
  it->w = w;
  it->fn = fn;
  it->arg = arg;
  it->arg_free = arg_free;
  if (tw__gate_enter(&w->state) != 0) {
    tw__free(it);
    return TW_EALREADYQUIT;
  }
  if (tw__uv_on_loop_thread(w)) {
    tw__uv_hand(w, it);
  } else {
    tw__mpsc_push(&w->q, &it->node);
    if (atomic_fetch_add_explicit(&w->queued, 1, memory_order_acq_rel) == 0)
      uv_async_send(&w->async);
  }
  return 0;
}

static int tw__uv_quit(tw_worker *wk) {
  tw__uv_worker *w = (tw__uv_worker *)wk;
  if (tw__gate_shut(&w->state) != 0) return TW_EALREADYQUIT;
  /* Let the loop thread unref the handle. */
  uv_async_send(&w->async);
  return 0;
}

static int tw__uv_destroy(tw_worker *wk) {
  tw__uv_worker *w = (tw__uv_worker *)wk;
  if (!tw__uv_on_loop_thread(w)) return TW_EWRONGTHREAD;
  (void)tw__uv_quit(wk);
  tw__uv_drain(w);
  w->freeing = 1;
  uv_close((uv_handle_t *)&w->async, tw__uv_close_cb);
  return 0;
}

const tw_worker_vtable tw__uv_worker_vtable = {tw__uv_do_work, tw__uv_quit,
                                               tw__uv_destroy};

int tw_uv_worker_new(tw_worker **out, struct uv_loop_s *loop) {
  tw__uv_worker *w;
  int rc;
  if (out == NULL || loop == NULL) return TW_EINVAL;
  w = tw__calloc(1, sizeof(*w));
  if (w == NULL) return TW_ENOMEM;
  w->base.vtable = &tw__uv_worker_vtable;
  w->loop = loop;
  w->loop_thread = uv_thread_self();
  tw__mpsc_init(&w->q);
  atomic_init(&w->queued, 0);
  atomic_init(&w->state, 0);
  rc = uv_async_init(loop, &w->async, tw__uv_async_cb);
  if (rc != 0) goto fail_async;
  *out = &w->base;
  return 0;
fail_async:
  tw__free(w);
  return rc;
}
