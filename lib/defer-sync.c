/*
 * lib/defer-sync.c - DeferredLock, DeferredSemaphore and DeferredQueue
 * (defer.h).
 *
 * A lock is a semaphore with one token, as far as the machinery goes; both
 * are a tw__prim. Waiting Deferreds are owned by their primitive (it is their
 * producer) until it fires or cancels them.
 */
#include "defer-internal.h"

#include <string.h>

/* ---- a FIFO of fixed-size elements -------------------------------------- */

typedef struct tw__fifo {
  char *buf;
  size_t elem;
  size_t head;
  size_t len;
  size_t cap;
} tw__fifo;

static void tw__fifo_init(tw__fifo *q, size_t elem) {
  memset(q, 0, sizeof(*q));
  q->elem = elem;
}

/* Room for one more push, so that the push itself cannot fail. */
static int tw__fifo_reserve(tw__fifo *q) {
  size_t cap;
  char *buf;
  if (q->head + q->len < q->cap) return 0;
  if (q->head > 0) {
    memmove(q->buf, q->buf + q->head * q->elem, q->len * q->elem);
    q->head = 0;
    return 0;
  }
  cap = q->cap ? q->cap * 2 : 4;
  if (cap > SIZE_MAX / 2 / q->elem) return TW_ENOMEM;
  buf = tw__realloc(q->buf, cap * q->elem);
  if (buf == NULL) return TW_ENOMEM;
  q->buf = buf;
  q->cap = cap;
  return 0;
}

static void tw__fifo_push(tw__fifo *q, const void *e) {
  memcpy(q->buf + (q->head + q->len) * q->elem, e, q->elem);
  q->len++;
}

static void tw__fifo_pop(tw__fifo *q, void *e) {
  memcpy(e, q->buf + q->head * q->elem, q->elem);
  q->head++;
  if (--q->len == 0) q->head = 0;
}

static void *tw__fifo_at(tw__fifo *q, size_t i) {
  return q->buf + (q->head + i) * q->elem;
}

static void tw__fifo_remove_at(tw__fifo *q, size_t i) {
  char *p = (char *)tw__fifo_at(q, i);
  memmove(p, p + q->elem, (q->len - i - 1) * q->elem);
  if (--q->len == 0) q->head = 0;
}

/* Remove the Deferred d from a FIFO of Deferreds; 1 when it was there. */
static int tw__fifo_remove_deferred(tw__fifo *q, tw_deferred *d) {
  size_t i;
  for (i = 0; i < q->len; i++) {
    if (*(tw_deferred **)tw__fifo_at(q, i) == d) {
      tw__fifo_remove_at(q, i);
      return 1;
    }
  }
  return 0;
}

/* Cancel every waiting Deferred (the owner is going away). */
static void tw__cancel_all(tw__fifo *waiting) {
  tw__fifo q = *waiting;
  tw_deferred *d;
  /* Take the list first: each canceller looks for its Deferred in it. */
  tw__fifo_init(waiting, q.elem);
  while (q.len > 0) {
    tw__fifo_pop(&q, &d);
    tw_deferred_cancel(d);
    tw_deferred_unref(d);
  }
  tw__free(q.buf);
}

/* ---- DeferredLock / DeferredSemaphore ------------------------------------ */

typedef struct tw__prim {
  size_t refs;  /* the user's, and one per run in progress */
  int tokens;
  int limit;
  tw__fifo waiting; /* of tw_deferred * (references) */
} tw__prim;

struct tw_deferred_lock {
  tw__prim p;
};
struct tw_deferred_semaphore {
  tw__prim p;
};

static tw__prim *tw__prim_new(int tokens) {
  tw__prim *p = tw__malloc(sizeof(*p));
  if (p == NULL) return NULL;
  p->refs = 1;
  p->tokens = p->limit = tokens;
  tw__fifo_init(&p->waiting, sizeof(tw_deferred *));
  return p;
}

static void tw__prim_unref(tw__prim *p) {
  if (--p->refs > 0) return;
  tw__free(p->waiting.buf);
  tw__free(p);
}

static void tw__prim_free(tw__prim *p) {
  tw__cancel_all(&p->waiting);
  tw__prim_unref(p);
}

/* _cancelAcquire: a waiting acquire is cancelled. */
static void tw__prim_cancel_acquire(tw_deferred *d, void *arg) {
  tw__prim *p = arg;
  if (tw__fifo_remove_deferred(&p->waiting, d)) tw_deferred_unref(d);
}

/*
 * Commit an acquire prepared by tw__prim_prepare: take a token and fire d
 * with the primitive (Twisted fires with the lock itself), or queue d.
 */
static void tw__prim_commit(tw__prim *p, tw_deferred *d) {
  if (p->tokens > 0) {
    p->tokens--;
    tw_deferred_callback(d, tw_result_value(p, NULL));
  } else {
    tw_deferred_ref(d);
    tw__fifo_push(&p->waiting, &d);
  }
}

/* A new acquire Deferred with room to queue it: commit cannot fail. */
static int tw__prim_prepare(tw__prim *p, tw_deferred **out) {
  tw_deferred *d;
  if (p->tokens == 0 && tw__fifo_reserve(&p->waiting) != 0) return TW_ENOMEM;
  d = tw__deferred_new_full(tw__prim_cancel_acquire, p, NULL, __FILE__,
                            __LINE__);
  if (d == NULL) return TW_ENOMEM;
  *out = d;
  return 0;
}

static int tw__prim_acquire(tw__prim *p, tw_deferred **out) {
  tw_deferred *d;
  int err;
  if (out != NULL) *out = NULL;
  if (p == NULL || out == NULL) return TW_EINVAL;
  if ((err = tw__prim_prepare(p, &d)) != 0) return err;
  tw__prim_commit(p, d);
  *out = d;
  return 0;
}

static int tw__prim_release(tw__prim *p) {
  tw_deferred *d;
  if (p == NULL) return TW_EINVAL;
  if (p->tokens >= p->limit) return TW_ENOTLOCKED;
  /* Hand-off: the first waiter gets the token inside this call. As in
   * Twisted, the token passes to it and it leaves the queue BEFORE it
   * fires, so its callbacks own the token: a release there passes it on,
   * an acquire there waits. A waiter someone fired behind our back refuses
   * it (nothing ran): the next one gets it. */
  while (p->waiting.len > 0) {
    int rc;
    tw__fifo_pop(&p->waiting, &d);
    rc = tw_deferred_callback(d, tw_result_value(p, NULL));
    tw_deferred_unref(d);
    if (rc == 0) return 0;
  }
  p->tokens++;
  return 0;
}

/* run(f): acquire, then maybe_deferred(f), then release however it ends. */
typedef struct tw__run_ctx {
  tw__prim *p;
  tw_result_fn fn;
  void *arg;
  int acquired;
} tw__run_ctx;

static tw_result tw__run_execute(tw_result r, void *arg) {
  tw__run_ctx *ctx = arg;
  tw_deferred *inner;
  tw_result_release(r);
  ctx->acquired = 1;
  inner = tw_maybe_deferred(ctx->fn, ctx->arg);
  if (inner == NULL) return tw_result_failure(tw_failure_from_code(TW_ENOMEM));
  return tw_result_deferred(inner);
}

static tw_result tw__run_release(tw_result r, void *arg) {
  tw__run_ctx *ctx = arg;
  if (ctx->acquired) {
    int err;
    ctx->acquired = 0;
    /* Twisted's _releaseAndReturn: an error from release (fn released the
     * lock itself) replaces the result. */
    if ((err = tw__prim_release(ctx->p)) != 0) {
      tw_result_release(r);
      return tw_result_failure(tw_failure_from_code(err));
    }
  }
  return r;
}

static void tw__run_ctx_free(void *arg) {
  tw__run_ctx *ctx = arg;
  int err;
  /* Dropped unrun (the Deferred was freed while the lock is held by this
   * run): give the token back rather than keep the lock forever. There is
   * no Deferred left to fail: an error from the release is logged. */
  if (ctx->acquired && (err = tw__prim_release(ctx->p)) != 0)
    tw__log_at(TW_LOG_ERROR, NULL, NULL, 0,
               "run: releasing the lock of a dropped run failed: %s",
               tw_strerror(err));
  tw__prim_unref(ctx->p);
  tw__free(ctx);
}

static int tw__prim_run(tw__prim *p, tw_result_fn fn, void *arg,
                        tw_deferred **out) {
  tw__run_ctx *ctx;
  tw_deferred *d;
  if (out != NULL) *out = NULL;
  if (p == NULL || fn == NULL || out == NULL) return TW_EINVAL;
  ctx = tw__malloc(sizeof(*ctx));
  if (ctx == NULL) return TW_ENOMEM;
  if (tw__prim_prepare(p, &d) != 0) {
    tw__free(ctx);
    return TW_ENOMEM;
  }
  ctx->p = p;
  ctx->fn = fn;
  ctx->arg = arg;
  ctx->acquired = 0;
  /* Both pairs go on before d can fire, so that adding them runs nothing. */
  if (tw_deferred_add_callbacks(d, tw__run_execute, NULL, ctx) != 0) {
    tw_deferred_unref(d);
    tw__free(ctx);
    return TW_ENOMEM;
  }
  if (tw_deferred_add_callbacks_full(d, tw__run_release, tw__run_release, ctx,
                                     tw__run_ctx_free) != 0) {
    tw_deferred_unref(d);
    tw__free(ctx);
    return TW_ENOMEM;
  }
  p->refs++;
  tw__prim_commit(p, d);
  *out = d;
  return 0;
}

tw_deferred_lock *tw_deferred_lock_new(void) {
  return (tw_deferred_lock *)tw__prim_new(1);
}

void tw_deferred_lock_free(tw_deferred_lock *lock) {
  if (lock != NULL) tw__prim_free(&lock->p);
}

int tw_deferred_lock_acquire(tw_deferred_lock *lock, tw_deferred **out) {
  return tw__prim_acquire(lock ? &lock->p : NULL, out);
}

int tw_deferred_lock_release(tw_deferred_lock *lock) {
  return tw__prim_release(lock ? &lock->p : NULL);
}

int tw_deferred_lock_locked(const tw_deferred_lock *lock) {
  if (lock == NULL) return 0;
  return lock->p.tokens == 0;
}

int tw_deferred_lock_run(tw_deferred_lock *lock, tw_result_fn fn, void *arg,
                         tw_deferred **out) {
  return tw__prim_run(lock ? &lock->p : NULL, fn, arg, out);
}

int tw_deferred_semaphore_new(tw_deferred_semaphore **out, int tokens) {
  tw__prim *p;
  if (out != NULL) *out = NULL;
  if (out == NULL || tokens < 1) return TW_EINVAL;
  p = tw__prim_new(tokens);
  if (p == NULL) return TW_ENOMEM;
  *out = (tw_deferred_semaphore *)p;
  return 0;
}

void tw_deferred_semaphore_free(tw_deferred_semaphore *sem) {
  if (sem != NULL) tw__prim_free(&sem->p);
}

int tw_deferred_semaphore_acquire(tw_deferred_semaphore *sem,
                                  tw_deferred **out) {
  return tw__prim_acquire(sem ? &sem->p : NULL, out);
}

int tw_deferred_semaphore_release(tw_deferred_semaphore *sem) {
  return tw__prim_release(sem ? &sem->p : NULL);
}

int tw_deferred_semaphore_run(tw_deferred_semaphore *sem, tw_result_fn fn,
                              void *arg, tw_deferred **out) {
  return tw__prim_run(sem ? &sem->p : NULL, fn, arg, out);
}

int tw_deferred_semaphore_tokens(const tw_deferred_semaphore *sem) {
  return sem ? sem->p.tokens : TW_EINVAL;
}

int tw_deferred_semaphore_limit(const tw_deferred_semaphore *sem) {
  return sem ? sem->p.limit : TW_EINVAL;
}

/* ---- DeferredQueue ------------------------------------------------------- */

typedef struct tw__qvalue {
  void *value;
  tw_free_fn value_free;
} tw__qvalue;

struct tw_deferred_queue {
  size_t size;     /* TW_UNLIMITED: no limit */
  size_t backlog;  /* TW_UNLIMITED: no limit */
  tw__fifo pending; /* of tw__qvalue */
  tw__fifo waiting; /* of tw_deferred * (references) */
};

int tw_deferred_queue_new(tw_deferred_queue **out, size_t size,
                          size_t backlog) {
  tw_deferred_queue *q;
  if (out != NULL) *out = NULL;
  if (out == NULL) return TW_EINVAL;
  q = tw__malloc(sizeof(*q));
  if (q == NULL) return TW_ENOMEM;
  q->size = size;
  q->backlog = backlog;
  tw__fifo_init(&q->pending, sizeof(tw__qvalue));
  tw__fifo_init(&q->waiting, sizeof(tw_deferred *));
  *out = q;
  return 0;
}

void tw_deferred_queue_free(tw_deferred_queue *q) {
  tw__qvalue v;
  if (q == NULL) return;
  tw__cancel_all(&q->waiting);
  while (q->pending.len > 0) {
    tw__fifo_pop(&q->pending, &v);
    if (v.value_free != NULL) v.value_free(v.value);
  }
  tw__free(q->pending.buf);
  tw__free(q);
}

int tw_deferred_queue_put(tw_deferred_queue *q, void *value,
                          tw_free_fn value_free) {
  tw__qvalue v;
  tw_deferred *d;
  if (q == NULL) return TW_EINVAL;
  /* A waiter someone fired behind our back refuses the value: the next one
   * gets it, or the queue keeps it. */
  while (q->waiting.len > 0) {
    int rc;
    tw__fifo_pop(&q->waiting, &d);
    rc = tw_deferred_callback(d, tw_result_value(value, value_free));
    tw_deferred_unref(d);
    if (rc == 0) return 0;
  }
  if (q->size != TW_UNLIMITED && q->pending.len >= q->size)
    return TW_EOVERFLOW;
  if (tw__fifo_reserve(&q->pending) != 0) return TW_ENOMEM;
  v.value = value;
  v.value_free = value_free;
  tw__fifo_push(&q->pending, &v);
  return 0;
}

/* _cancelGet: a waiting get is cancelled. */
static void tw__queue_cancel_get(tw_deferred *d, void *arg) {
  tw_deferred_queue *q = arg;
  if (tw__fifo_remove_deferred(&q->waiting, d)) tw_deferred_unref(d);
}

int tw_deferred_queue_get(tw_deferred_queue *q, tw_deferred **out) {
  tw_deferred *d;
  if (out != NULL) *out = NULL;
  if (q == NULL || out == NULL) return TW_EINVAL;
  if (q->pending.len > 0) {
    tw__qvalue v;
    memcpy(&v, tw__fifo_at(&q->pending, 0), sizeof(v));
    d = tw_succeed(v.value, v.value_free);
    if (d == NULL) return TW_ENOMEM; /* the value stays queued */
    tw__fifo_pop(&q->pending, &v);
    *out = d;
    return 0;
  }
  if (q->backlog != TW_UNLIMITED && q->waiting.len >= q->backlog)
    return TW_EUNDERFLOW;
  if (tw__fifo_reserve(&q->waiting) != 0) return TW_ENOMEM;
  d = tw__deferred_new_full(tw__queue_cancel_get, q, NULL, __FILE__, __LINE__);
  if (d == NULL) return TW_ENOMEM;
  tw_deferred_ref(d);
  tw__fifo_push(&q->waiting, &d);
  *out = d;
  return 0;
}

size_t tw_deferred_queue_pending(const tw_deferred_queue *q) {
  return q ? q->pending.len : 0;
}

size_t tw_deferred_queue_waiting(const tw_deferred_queue *q) {
  return q ? q->waiting.len : 0;
}
