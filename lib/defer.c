/*
 * lib/defer.c - the Deferred (defer.h): results, references, freeing and
 * the unhandled-failure report, firing, adding callbacks, pause, cancel,
 * and the convenience constructors. The callback runner is in defer-run.c.
 */
#include "defer-struct.h"

#include <stdatomic.h>
#include <string.h>

tw_result tw__result_error(const tw_error_type *type, int code,
                           const char *msg) {
  return tw_result_failure(tw_failure_new(type, code, "%s", msg));
}

void tw_result_release(tw_result r) {
  switch (r.kind) {
    case TW_RESULT_VALUE:
      if (r.value_free != NULL) r.value_free(r.u.value);
      break;
    case TW_RESULT_FAILURE:
      tw_failure_unref(r.u.failure);
      break;
    case TW_RESULT_DEFERRED:
      tw_deferred_unref(r.u.deferred);
      break;
  }
}

/* ---- callback vector ---------------------------------------------------- */

/* Room for n more pairs at the end: 0 or TW_ENOMEM (nothing changed). */
int tw__cbvec_reserve(tw_deferred *d, uint32_t n) {
  tw__cbvec *v = d->cbs;
  uint32_t used = v != NULL ? v->len - v->head : 0;
  uint32_t cap = v != NULL ? v->cap : 3;
  if (v != NULL && v->cap - v->len >= n) return 0;
  if (v == NULL || v->cap - used < n) {
    while (cap - used < n) {
      if (cap > (UINT32_MAX / 4 - sizeof(tw__cbvec)) / sizeof(tw__cb))
        return TW_ENOMEM;
      /* x4 while small: 3 -> 12 covers the common chains in two
       * allocations; x2 beyond bounds the waste. */
      cap *= cap < 64 ? 4 : 2;
    }
    /* malloc + copy rather than realloc: glibc's realloc bypasses its
     * thread cache and cost more than the copy of a few pairs. */
    v = tw__malloc(sizeof(tw__cbvec) + (size_t)cap * sizeof(tw__cb));
    if (v == NULL) return TW_ENOMEM;
    if (d->cbs == NULL) {
      v->head = v->len = 0;
    } else {
      v->head = 0;
      v->len = used;
      memcpy(v->e, d->cbs->e + d->cbs->head, used * sizeof(tw__cb));
      if (!tw__cbs_boxed(d)) tw__free(d->cbs);
    }
    v->cap = cap;
    d->cbs = v;
  }
  if (v->head > 0) {
    /* Reuse the consumed front rather than grow. */
    memmove(v->e, v->e + v->head, used * sizeof(tw__cb));
    v->len = used;
    v->head = 0;
  }
  return 0;
}

int tw__deferred_reserve(tw_deferred *d, unsigned n) {
  return tw__cbvec_reserve(d, n);
}


/* ---- freeing ------------------------------------------------------------ */

/*
 * Freeing one Deferred can release others (a dropped continuation owns its
 * outer Deferred; an arg_free may own anything), and a chain of them may be
 * 100 000 long. So a free started while another is under way on this thread
 * is queued and done by the outermost one, in bounded stack.
 */
static TW__TLS tw_deferred *tw__pending_free;
static TW__TLS int tw__freeing;

static void tw__quarantine_or_free(tw_deferred *d);

static tw__deferred_box *tw__box_of(tw_deferred *d) {
  return TW__CONTAINER_OF((void *)d, tw__deferred_box, mem);
}

/* Give a Deferred's memory back: to its box's producer, or to malloc. */
static void tw__deferred_memory_go(tw_deferred *d) {
  if (d->flags & TW__BOXED)
    tw__box_of(d)->release(tw__box_of(d));
  else
    tw__free(d);
}

static void tw__drop_pair(tw_deferred *d, tw__cb *e) {
  if (e->cb == TW__CONTINUE) {
    tw_deferred *outer = e->arg;
    /* The outer can never be continued now: it waits for good, as in
     * Twisted, but must not keep a pointer to freed memory. */
    if (tw__kind(outer) == TW__WAITING && outer->s.result.u.deferred == d)
      outer->s.result.u.deferred = NULL;
    tw__unref(outer);
  } else if (e->cb == TW__CHAIN) {
    tw__unref(e->arg);
  } else if (e->arg_free != NULL) {
    e->arg_free(e->arg);
  }
}

static void tw__destroy(tw_deferred *d) {
  tw__cbvec *v = d->cbs;
  int boxed = tw__cbs_boxed(d);
  uint32_t i;
  d->cbs = NULL;
  if (v != NULL) {
    for (i = v->head; i < v->len; i++) tw__drop_pair(d, &v->e[i]);
    if (!boxed) tw__free(v);
  }
  if (d->flags & TW__CALLED) {
    tw_result r = tw__take(d);
    if (r.kind == TW_RESULT_FAILURE) {
      tw__log_at(TW_LOG_CRITICAL, r.u.failure, d->file, d->line,
                 "Unhandled error in Deferred:");
      tw_failure_unref(r.u.failure);
    } else if (r.kind == TW_RESULT_VALUE && r.value_free != NULL) {
      r.value_free(r.u.value);
    }
  } else if (d->s.canceller.arg_free != NULL) {
    tw_free_fn f = d->s.canceller.arg_free;
    d->s.canceller.arg_free = NULL;
    f(d->s.canceller.arg);
  }
  tw__quarantine_or_free(d);
}

void tw__deferred_release(tw_deferred *d) {
  if (tw__freeing) {
    d->free_next = tw__pending_free;
    tw__pending_free = d;
    return;
  }
  tw__freeing = 1;
  for (;;) {
    tw__destroy(d);
    d = tw__pending_free;
    if (d == NULL) break;
    tw__pending_free = d->free_next;
  }
  tw__freeing = 0;
}

/* ---- debug: quarantine of freed Deferreds -------------------------------- */

#if TW_DEBUG_DEFERREDS
/*
 * A freed Deferred is kept allocated, marked dead, for a while, so that a
 * public call through a dangling pointer finds the dead mark and returns
 * TW_EINVAL instead of touching reused memory. The quarantine holds the
 * last TW__QUARANTINE_MAX Deferreds freed, and is emptied whenever the last
 * live Deferred goes, so that leak checks (which run when a program or test
 * has released everything) see no memory held.
 */
#define TW__QUARANTINE_MAX 256
static tw_deferred *tw__quarantine[TW__QUARANTINE_MAX];
static size_t tw__q_head, tw__q_len;
static atomic_flag tw__q_lock = ATOMIC_FLAG_INIT;
static atomic_long tw__live_deferreds;

static void tw__q_acquire(void) {
  while (atomic_flag_test_and_set_explicit(&tw__q_lock, memory_order_acquire))
    ;
}
static void tw__q_release(void) {
  atomic_flag_clear_explicit(&tw__q_lock, memory_order_release);
}

static void tw__quarantine_or_free(tw_deferred *d) {
  tw_deferred *evict[TW__QUARANTINE_MAX + 1];
  size_t n = 0, i;
  d->magic = TW__MAGIC_DEAD;
  tw__q_acquire();
  if (tw__q_len == TW__QUARANTINE_MAX) {
    evict[n++] = tw__quarantine[tw__q_head];
    tw__q_head = (tw__q_head + 1) % TW__QUARANTINE_MAX;
    tw__q_len--;
  }
  tw__quarantine[(tw__q_head + tw__q_len) % TW__QUARANTINE_MAX] = d;
  tw__q_len++;
  if (atomic_fetch_sub(&tw__live_deferreds, 1) == 1) {
    for (i = 0; i < tw__q_len; i++)
      evict[n++] = tw__quarantine[(tw__q_head + i) % TW__QUARANTINE_MAX];
    tw__q_head = tw__q_len = 0;
  }
  tw__q_release();
  for (i = 0; i < n; i++) tw__deferred_memory_go(evict[i]);
}

#else
static void tw__quarantine_or_free(tw_deferred *d) { tw__deferred_memory_go(d); }
#endif

/* ---- construction and references ---------------------------------------- */

static void tw__deferred_init(tw_deferred *d, tw_canceller_fn canceller,
                              void *arg, tw_free_fn arg_free,
                              const char *file, int line) {
  d->refs = 1;
  d->paused = 0;
  d->flags = 0;
  d->line = line;
  d->file = file;
  d->cbs = NULL;
  d->s.canceller.fn = canceller;
  d->s.canceller.arg = arg;
  d->s.canceller.arg_free = arg_free;
#if TW_DEBUG_DEFERREDS
  d->magic = TW__MAGIC_LIVE;
  atomic_fetch_add(&tw__live_deferreds, 1);
#endif
}

tw_deferred *tw__deferred_new_full(tw_canceller_fn canceller, void *arg,
                                   tw_free_fn arg_free, const char *file,
                                   int line) {
  tw_deferred *d = tw__malloc(sizeof(*d));
  if (d == NULL) return NULL;
  tw__deferred_init(d, canceller, arg, arg_free, file, line);
  return d;
}

_Static_assert(sizeof(struct tw_deferred) <= TW__BOX_DEFERRED,
               "a Deferred fits its place in a box");

tw_deferred *tw__deferred_box_init(tw__deferred_box *box,
                                   tw_canceller_fn canceller, void *arg,
                                   void (*release)(tw__deferred_box *box),
                                   const char *file, int line) {
  tw_deferred *d = tw__box_deferred(box);
  tw__cbvec *v = tw__box_cbs(d);
  tw__deferred_init(d, canceller, arg, NULL, file, line);
  box->release = release;
  d->flags = TW__BOXED;
  v->head = v->len = 0;
  v->cap = TW__BOX_PAIRS;
  d->cbs = v;
  return d;
}

tw_deferred *tw_deferred_new_at(tw_canceller_fn canceller, void *arg,
                                const char *file, int line) {
  return tw__deferred_new_full(canceller, arg, NULL, file, line);
}

tw_deferred *(tw_deferred_new)(tw_canceller_fn canceller, void *arg) {
  return tw__deferred_new_full(canceller, arg, NULL, NULL, 0);
}

tw_deferred *tw_deferred_ref(tw_deferred *d) {
  if (tw__bad(d) || d->refs == UINT32_MAX) return NULL;
  d->refs++;
  return d;
}

void tw_deferred_unref(tw_deferred *d) {
  if (tw__bad(d)) return;
  if (--d->refs == 0) tw__deferred_release(d);
}

/* ---- firing ------------------------------------------------------------- */

static int tw__fire(tw_deferred *d, tw_result r) {
  tw_free_fn f;
  void *a;
  if (d->flags & TW__CALLED) {
    if (d->flags & TW__SUPPRESS) {
      d->flags &= ~(uint32_t)TW__SUPPRESS;
      tw_result_release(r);
      return 0;
    }
    return TW_EALREADYCALLED;
  }
  f = d->s.canceller.arg_free;
  a = d->s.canceller.arg;
  d->flags |= TW__CALLED;
  tw__put(d, r);
  if (f != NULL) f(a);
  tw__deferred_run(d);
  return 0;
}

int tw_deferred_callback(tw_deferred *d, tw_result result) {
  if (tw__bad(d)) return TW_EINVAL;
  switch (result.kind) {
    case TW_RESULT_VALUE:
      break;
    case TW_RESULT_FAILURE:
      if (result.u.failure == NULL) return TW_EINVAL;
      break;
    default:
      return TW_EINVAL;
  }
  return tw__fire(d, result);
}

int tw_deferred_errback(tw_deferred *d, tw_failure *f) {
  if (tw__bad(d) || f == NULL) return TW_EINVAL;
  return tw__fire(d, tw_result_failure(f));
}

/* ---- adding callbacks --------------------------------------------------- */

/* The exported adders share this, rather than call each other through the
 * PLT (exported functions of a shared library can be interposed). */
static inline int tw__add(tw_deferred *d, tw_callback_fn callback,
                          tw_callback_fn errback, void *arg,
                          tw_free_fn arg_free) {
  if (tw__bad(d) || (callback == NULL && errback == NULL)) return TW_EINVAL;
  if (tw__append(d, callback, errback, arg, arg_free) != 0) return TW_ENOMEM;
  if (d->flags & TW__CALLED) tw__deferred_run(d);
  return 0;
}

int tw_deferred_add_callbacks_full(tw_deferred *d, tw_callback_fn callback,
                                   tw_callback_fn errback, void *arg,
                                   tw_free_fn arg_free) {
  return tw__add(d, callback, errback, arg, arg_free);
}

int tw_deferred_add_callbacks(tw_deferred *d, tw_callback_fn callback,
                              tw_callback_fn errback, void *arg) {
  return tw__add(d, callback, errback, arg, NULL);
}

int tw_deferred_add_callback(tw_deferred *d, tw_callback_fn fn, void *arg) {
  if (fn == NULL) return TW_EINVAL;
  return tw__add(d, fn, NULL, arg, NULL);
}

int tw_deferred_add_errback(tw_deferred *d, tw_callback_fn fn, void *arg) {
  if (fn == NULL) return TW_EINVAL;
  return tw__add(d, NULL, fn, arg, NULL);
}

int tw_deferred_add_both(tw_deferred *d, tw_callback_fn fn, void *arg) {
  if (fn == NULL) return TW_EINVAL;
  return tw__add(d, fn, fn, arg, NULL);
}

int tw_deferred_chain_deferred(tw_deferred *d, tw_deferred *d2) {
  if (tw__bad(d) || tw__bad(d2) || d == d2) return TW_EINVAL;
  if (tw__append(d, TW__CHAIN, TW__CHAIN, d2, NULL) != 0) return TW_ENOMEM;
  d2->refs++;
  if (d->flags & TW__CALLED) tw__deferred_run(d);
  return 0;
}

/* ---- pause, cancel, state ----------------------------------------------- */

int tw_deferred_pause(tw_deferred *d) {
  if (tw__bad(d) || d->paused == INT32_MAX) return TW_EINVAL;
  d->paused++;
  return 0;
}

int tw_deferred_unpause(tw_deferred *d) {
  if (tw__bad(d) || d->paused <= 0) return TW_EINVAL;
  /* A Deferred waiting on another holds a pause of its own, which only the
   * inner's continuation may release. */
  if (d->paused == 1 && (d->flags & TW__CALLED) &&
      tw__kind(d) == TW__WAITING)
    return TW_EINVAL;
  if (--d->paused == 0 && (d->flags & TW__CALLED)) tw__deferred_run(d);
  return 0;
}

int tw_deferred_cancel(tw_deferred *d) {
  if (tw__bad(d)) return TW_EINVAL;
  /* Fired but waiting: Twisted forwards to the inner Deferred, which may be
   * waiting in turn; walk instead of recursing, as chains can be long. */
  while ((d->flags & TW__CALLED) && tw__kind(d) == TW__WAITING) {
    d = d->s.result.u.deferred;
    if (d == NULL) return 0;
  }
  if (!(d->flags & TW__CALLED)) {
    tw_canceller_fn fn = d->s.canceller.fn;
    void *arg = d->s.canceller.arg;
    tw_free_fn arg_free = d->s.canceller.arg_free;
    d->refs++; /* the canceller may drop every other reference */
    if (fn != NULL) {
      /* Called at most once, even if it cancels again; its argument must
       * outlive the call even if it fires d. */
      d->s.canceller.fn = NULL;
      d->s.canceller.arg_free = NULL;
      fn(d, arg);
    } else {
      d->flags |= TW__SUPPRESS;
    }
    if (!(d->flags & TW__CALLED))
      tw__fire(d, tw_result_failure(tw_failure_new(
                      &TW_CANCELLED_ERROR, TW_ECANCELLED, "%s", "")));
    if (fn != NULL && arg_free != NULL) arg_free(arg);
    tw__unref(d);
  }
  return 0;
}

int tw__deferred_live(const tw_deferred *d) { return !tw__bad(d); }

int tw_deferred_called(const tw_deferred *d) {
  if (tw__bad(d)) return 0;
  return (d->flags & TW__CALLED) != 0;
}

int tw_deferred_paused(const tw_deferred *d) {
  if (tw__bad(d)) return TW_EINVAL;
  return d->paused;
}

static int tw__result_ready(const tw_deferred *d) {
  if (!(d->flags & TW__CALLED) || (d->flags & TW__RUNNING) ||
      tw__kind(d) == TW__WAITING)
    return TW_EBUSY;
  return 0;
}

int tw_deferred_peek_result(const tw_deferred *d, tw_result *out) {
  int err;
  if (tw__bad(d) || out == NULL) return TW_EINVAL;
  if ((err = tw__result_ready(d)) != 0) return err;
  *out = d->s.result;
  return 0;
}

int tw_deferred_take_result(tw_deferred *d, tw_result *out) {
  int err;
  if (tw__bad(d) || out == NULL) return TW_EINVAL;
  if ((err = tw__result_ready(d)) != 0) return err;
  *out = tw__take(d);
  return 0;
}

/* ---- convenience constructors ------------------------------------------- */

tw_deferred *tw_succeed(void *value, tw_free_fn value_free) {
  tw_deferred *d = tw__deferred_new_full(NULL, NULL, NULL, NULL, 0);
  if (d == NULL) return NULL;
  d->flags |= TW__CALLED;
  tw__put(d, tw_result_value(value, value_free));
  return d;
}

/* Total, so NULL means out of memory only (design.md, "API conventions"):
 * a NULL f fails the Deferred with ValueError, as a callback returning a
 * NULL failure does. */
tw_deferred *tw_fail(tw_failure *f) {
  tw_deferred *d = tw__deferred_new_full(NULL, NULL, NULL, NULL, 0);
  if (d == NULL) return NULL;
  d->flags |= TW__CALLED;
  tw__put(d, f != NULL ? tw_result_failure(f)
                       : tw__result_error(&TW_VALUE_ERROR, TW_EINVAL,
                                          "tw_fail: NULL failure"));
  return d;
}

tw_deferred *tw_maybe_deferred(tw_result_fn fn, void *arg) {
  tw_deferred *d;
  tw_result r;
  /* Twisted's maybeDeferred(None) calls None, and the TypeError becomes
   * the Deferred's failure; so NULL here means out of memory only. */
  if (fn == NULL)
    r = tw__result_error(&TW_TYPE_ERROR, TW_EINVAL,
                         "tw_maybe_deferred: fn is NULL");
  else
    r = fn(arg);
  if (r.kind == TW_RESULT_DEFERRED) {
    if (!tw__bad(r.u.deferred)) return r.u.deferred;
    r = tw__result_error(&TW_VALUE_ERROR, TW_EINVAL,
                         "function returned a NULL or freed Deferred");
  } else if (r.kind == TW_RESULT_FAILURE && r.u.failure == NULL) {
    r = tw__result_error(&TW_VALUE_ERROR, TW_EINVAL,
                         "function returned a NULL failure");
  } else if (r.kind != TW_RESULT_VALUE && r.kind != TW_RESULT_FAILURE) {
    r = tw__result_error(&TW_VALUE_ERROR, TW_EINVAL,
                         "function returned a result of unknown kind");
  }
  d = tw__deferred_new_full(NULL, NULL, NULL, NULL, 0);
  if (d == NULL) {
    tw_result_release(r);
    return NULL;
  }
  d->flags |= TW__CALLED;
  tw__put(d, r);
  return d;
}

tw_result tw_log_error(tw_result result, void *arg) {
  (void)arg;
  if (result.kind == TW_RESULT_FAILURE)
    tw_log_failure(result.u.failure, "Unhandled Error");
  return result;
}
