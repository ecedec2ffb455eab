/*
 * lib/defer.c - the Deferred (defer.h): results, references, the callback
 * chain, chaining, pause, cancel and the unhandled-failure report.
 *
 * The callback runner is Twisted's Deferred._runCallbacks (defer.py 22.4),
 * with its chain list as an explicit stack of frames (see tw__run).
 */
#include "defer-internal.h"

#include <assert.h>
#include <stdatomic.h>
#include <string.h>

/* ---- layout ------------------------------------------------------------- */

/* One (callback, errback) pair. */
typedef struct tw__cb {
  tw_callback_fn cb;
  tw_callback_fn eb;
  void *arg;
  tw_free_fn arg_free;
} tw__cb;

/*
 * The pending pairs, a FIFO in one growable block: pairs are taken from
 * head and appended at len. Kept out of the Deferred so that a Deferred with
 * no callbacks stays small, and grown by doubling so a long chain costs
 * O(log n) allocations.
 */
typedef struct tw__cbvec {
  uint32_t head;
  uint32_t len;
  uint32_t cap;
  uint32_t unused;
  tw__cb e[];
} tw__cbvec;

enum {
  TW__CALLED = 1u << 0,
  TW__RUNNING = 1u << 1,  /* inside one of its own callbacks */
  TW__SUPPRESS = 1u << 2, /* cancelled without canceller: eat one fire */
  TW__HAS_WAITER = 1u << 3 /* a continuation may be in its callbacks */
};

/* What a fired Deferred holds: TW_RESULT_VALUE, _FAILURE, or this. */
#define TW__WAITING TW_RESULT_DEFERRED

struct tw_deferred {
  /* refs and paused while alive; the pending-free link once dead. */
  union {
    struct {
      uint32_t refs;
      int32_t paused;
    };
    tw_deferred *free_next;
  };
  uint32_t flags;
  int32_t line;
  const char *file;
  tw__cbvec *cbs;
  /*
   * Before firing: the canceller. After: the result. A Deferred waiting on
   * another holds a weak pointer to it here (kind TW_RESULT_DEFERRED): the
   * inner's
   * continuation owns a reference to us, never the other way round, so no
   * cycle forms; the inner clears the pointer when it continues us or is
   * freed.
   */
  union {
    struct {
      tw_canceller_fn fn;
      void *arg;
      tw_free_fn arg_free;
    } canceller;
    /* Stored whole, in the caller's layout: a callback's argument is then
     * copied with the same access widths it was written with (assembling
     * it from parts made every call stall on store forwarding). */
    tw_result result;
  } s;
#if TW_THREAD_CHECKS
  uint32_t magic;
#endif
};

_Static_assert(sizeof(struct tw_deferred) <= 64,
               "a Deferred with no callbacks must fit in 64 bytes");

#define TW__MAGIC_LIVE 0x7764664cu /* "Lfdw" */
#define TW__MAGIC_DEAD 0xdeadd1edu

/*
 * Sentinels stored as a pair's callback. Never called: the runner compares
 * against them. CONTINUE is Twisted's _CONTINUE (arg: the outer Deferred
 * waiting on this one, a reference); CHAIN is chainDeferred's
 * (d2.callback, d2.errback) pair (arg: d2, a reference).
 */
static tw_result tw__continue_fn(tw_result r, void *arg) {
  (void)arg;
  return r;
}
static tw_result tw__chain_fn(tw_result r, void *arg) {
  (void)arg;
  return r;
}
#define TW__CONTINUE tw__continue_fn
#define TW__CHAIN tw__chain_fn

/* ---- small helpers ------------------------------------------------------ */

static inline unsigned tw__kind(const tw_deferred *d) {
  return (unsigned)d->s.result.kind;
}

/* Public entry points refuse NULL and, in debug builds, freed Deferreds. */
static inline int tw__bad(const tw_deferred *d) {
#if TW_THREAD_CHECKS
  return d == NULL || d->magic != TW__MAGIC_LIVE;
#else
  return d == NULL;
#endif
}

/* Move the result out of a fired d, leaving None. */
static inline tw_result tw__take(tw_deferred *d) {
  tw_result r = d->s.result;
  d->s.result = tw_result_none();
  return r;
}

static inline void tw__put(tw_deferred *d, tw_result r) {
  if (r.kind != TW_RESULT_VALUE) r.value_free = NULL;
  d->s.result = r;
}

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
static int tw__cbvec_reserve(tw_deferred *d, uint32_t n) {
  tw__cbvec *v = d->cbs;
  uint32_t used = v != NULL ? v->len - v->head : 0;
  uint32_t cap = v != NULL ? v->cap : 4;
  if (v != NULL && v->cap - v->len >= n) return 0;
  if (v == NULL || v->cap - used < n) {
    while (cap - used < n) {
      if (cap > (UINT32_MAX / 4 - sizeof(tw__cbvec)) / sizeof(tw__cb))
        return TW_ENOMEM;
      /* x4 while small: 4 -> 16 covers the common chains in two
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
      tw__free(d->cbs);
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

static inline int tw__append(tw_deferred *d, tw_callback_fn cb,
                             tw_callback_fn eb, void *arg,
                             tw_free_fn arg_free) {
  tw__cb *e;
  if (TW__UNLIKELY(d->cbs == NULL || d->cbs->len == d->cbs->cap) &&
      tw__cbvec_reserve(d, 1) != 0)
    return TW_ENOMEM;
  e = &d->cbs->e[d->cbs->len++];
  e->cb = cb;
  e->eb = eb;
  e->arg = arg;
  e->arg_free = arg_free;
  return 0;
}

int tw__deferred_reserve(tw_deferred *d, unsigned n) {
  return tw__cbvec_reserve(d, n);
}

static int tw__has_callbacks(const tw_deferred *d) {
  return d->cbs != NULL && d->cbs->head < d->cbs->len;
}

/* ---- freeing ------------------------------------------------------------ */

/*
 * Freeing one Deferred can release others (a dropped continuation owns its
 * outer Deferred; an arg_free may own anything), and a chain of them may be
 * 100 000 long. So a free started while another is under way on this thread
 * is queued and done by the outermost one, in bounded stack.
 */
static _Thread_local tw_deferred *tw__pending_free;
static _Thread_local int tw__freeing;

static void tw__quarantine_or_free(tw_deferred *d);
static void tw__release(tw_deferred *d);

/* Drop a reference the library itself holds (the Deferred is alive). */
static inline void tw__unref(tw_deferred *d) {
  if (--d->refs == 0) tw__release(d);
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
  uint32_t i;
  d->cbs = NULL;
  if (v != NULL) {
    for (i = v->head; i < v->len; i++) tw__drop_pair(d, &v->e[i]);
    tw__free(v);
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

static void tw__release(tw_deferred *d) {
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

#if TW_THREAD_CHECKS
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
  for (i = 0; i < n; i++) tw__free(evict[i]);
}

void tw__deferred_quarantine_drain(void) {
  tw_deferred *evict[TW__QUARANTINE_MAX];
  size_t n, i;
  tw__q_acquire();
  n = tw__q_len;
  for (i = 0; i < n; i++)
    evict[i] = tw__quarantine[(tw__q_head + i) % TW__QUARANTINE_MAX];
  tw__q_head = tw__q_len = 0;
  tw__q_release();
  for (i = 0; i < n; i++) tw__free(evict[i]);
}
#else
static void tw__quarantine_or_free(tw_deferred *d) { tw__free(d); }
void tw__deferred_quarantine_drain(void) {}
#endif

/* ---- construction and references ---------------------------------------- */

tw_deferred *tw__deferred_new_full(tw_canceller_fn canceller, void *arg,
                                   tw_free_fn arg_free, const char *file,
                                   int line) {
  tw_deferred *d = tw__malloc(sizeof(*d));
  if (d == NULL) return NULL;
  d->refs = 1;
  d->paused = 0;
  d->flags = 0;
  d->line = line;
  d->file = file;
  d->cbs = NULL;
  d->s.canceller.fn = canceller;
  d->s.canceller.arg = arg;
  d->s.canceller.arg_free = arg_free;
#if TW_THREAD_CHECKS
  d->magic = TW__MAGIC_LIVE;
  atomic_fetch_add(&tw__live_deferreds, 1);
#endif
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
  if (--d->refs == 0) tw__release(d);
}

/* ---- the callback runner ------------------------------------------------ */

/*
 * Twisted's `chain` list. A frame is a Deferred being processed (a
 * reference). `barrier` marks where one of Twisted's (re-entrant)
 * _runCallbacks calls starts: the run itself, and each chainDeferred target,
 * which Twisted runs by a nested d2.callback(). A paused Deferred ends the
 * innermost such call: its frames are dropped down to and including the
 * nearest barrier, and the frame below continues. `clear_running` says the
 * frame's Deferred is "running" its chainDeferred pair (as Twisted's is
 * during d2.callback) until the frames above it are done.
 */
typedef struct tw__frame {
  tw_deferred *d;
  unsigned char barrier;
  unsigned char clear_running;
} tw__frame;

#define TW__LOCAL_FRAMES 16

typedef struct tw__stack {
  tw__frame *f;
  size_t n;
  size_t cap;
  tw__frame local[TW__LOCAL_FRAMES];
} tw__stack;

static void tw__stack_init(tw__stack *st) {
  st->f = st->local;
  st->n = 0;
  st->cap = TW__LOCAL_FRAMES;
}

static int tw__stack_push(tw__stack *st, tw_deferred *d, int barrier) {
  if (st->n == st->cap) {
    size_t cap = st->cap * 2;
    tw__frame *f;
    if (st->f == st->local) {
      f = tw__malloc(cap * sizeof(*f));
      if (f != NULL) memcpy(f, st->local, sizeof(st->local));
    } else {
      f = tw__realloc(st->f, cap * sizeof(*f));
    }
    if (f == NULL) return TW_ENOMEM;
    st->f = f;
    st->cap = cap;
  }
  st->f[st->n].d = d;
  st->f[st->n].barrier = (unsigned char)barrier;
  st->f[st->n].clear_running = 0;
  st->n++;
  return 0;
}

static void tw__stack_fini(tw__stack *st) {
  if (st->f != st->local) tw__free(st->f);
}

/*
 * Is `inner` (transitively) waiting on `target`? Only asked when target has
 * something waiting on it, which a cycle needs.
 */
static int tw__waits_on(const tw_deferred *inner, const tw_deferred *target) {
  while (inner != NULL && (inner->flags & TW__CALLED) &&
         tw__kind(inner) == TW__WAITING) {
    inner = inner->s.result.u.deferred;
    if (inner == target) return 1;
  }
  return 0;
}

/* Turn a bad callback return into a failure, so the chain can go on. */
static tw_result tw__check_return(tw_deferred *cur, tw_result r) {
  switch (r.kind) {
    case TW_RESULT_VALUE:
      return r;
    case TW_RESULT_FAILURE:
      if (r.u.failure != NULL) return r;
      return tw__result_error(&TW_VALUE_ERROR, TW_EINVAL,
                              "callback returned a NULL failure");
    case TW_RESULT_DEFERRED:
      if (tw__bad(r.u.deferred))
        return tw__result_error(&TW_VALUE_ERROR, TW_EINVAL,
                                "callback returned a NULL or freed Deferred");
      if (r.u.deferred == cur) {
        /* Twisted warns and then waits on itself forever (a leak here).
         * Its announced future behaviour is an error: give it now. */
        tw_deferred_unref(r.u.deferred);
        return tw__result_error(
            &TW_RUNTIME_ERROR, TW_EINVAL,
            "Callback returned the Deferred it was attached to");
      }
      return r;
  }
  return tw__result_error(&TW_VALUE_ERROR, TW_EINVAL,
                          "callback returned a result of unknown kind");
}

static int tw__loop(tw__stack *st);

/*
 * Push a frame; when the stack cannot grow (out of memory), run the frame
 * on a fresh stack instead - recursion only ever happens then. Returns 1
 * when a pause must unwind the caller's frames too.
 */
static int tw__push_or_recurse(tw__stack *st, tw_deferred *d, int barrier) {
  tw__stack sub;
  int unwind;
  if (tw__stack_push(st, d, barrier) == 0) return 0;
  tw__stack_init(&sub);
  sub.f[0].d = d;
  sub.f[0].barrier = (unsigned char)barrier;
  sub.f[0].clear_running = 0;
  sub.n = 1;
  unwind = tw__loop(&sub);
  tw__stack_fini(&sub);
  return unwind;
}

/*
 * Unwind after a pause: drop frames down to and including the nearest
 * barrier. Returns 1 when the stack ran out first (the caller's stack must
 * go on unwinding).
 */
static int tw__unwind(tw__stack *st) {
  while (st->n > 0) {
    tw__frame fr = st->f[--st->n];
    tw__unref(fr.d);
    if (fr.barrier) return 0;
  }
  return 1;
}

/* Fire d2 from d's CHAIN pair: d2.callback(result) from inside d's chain.
 * Returns 1 when d2's run was started (as a frame above cur's). */
static int tw__chain_step(tw__stack *st, tw_deferred *cur, tw_deferred *d2) {
  tw_result r = tw__take(cur);
  tw_free_fn f;
  void *a;
  if (d2->flags & TW__CALLED) {
    tw_result_release(r);
    if (d2->flags & TW__SUPPRESS) {
      d2->flags &= ~(uint32_t)TW__SUPPRESS;
    } else {
      /* d2.callback raised AlreadyCalledError inside d's callback. */
      tw__put(cur, tw__result_error(&TW_ALREADY_CALLED_ERROR,
                                    TW_EALREADYCALLED,
                                    "chained Deferred already called"));
    }
    tw__unref(d2);
    return 0;
  }
  f = d2->s.canceller.arg_free;
  a = d2->s.canceller.arg;
  d2->flags |= TW__CALLED;
  tw__put(d2, r);
  cur->flags |= TW__RUNNING;
  st->f[st->n - 1].clear_running = 1;
  if (f != NULL) f(a);
  /* d2's frame is a barrier, so its run never unwinds cur's frames. */
  (void)tw__push_or_recurse(st, d2, 1);
  return 1;
}

/* Process the frames until none is left (see tw__frame). */
#if defined(__GNUC__) && !defined(__clang__)
/* GCC's SLP vectoriser copies the 24-byte tw_result argument with a 16-byte
 * load right after writing it with 8-byte stores: a store-forwarding stall
 * on every callback that cost ~30% of the benchmark. */
__attribute__((optimize("no-tree-slp-vectorize")))
#endif
static int tw__loop(tw__stack *st) {
  while (st->n > 0) {
    tw__frame *top = &st->f[st->n - 1];
    tw_deferred *cur = top->d;
    int finished = 1;
    if (top->clear_running) {
      top->clear_running = 0;
      cur->flags &= ~(uint32_t)TW__RUNNING;
    }
    if (cur->paused) {
      if (tw__unwind(st)) return 1;
      continue;
    }
    while (tw__has_callbacks(cur)) {
      tw__cbvec *v = cur->cbs;
      tw__cb item = v->e[v->head++];
      tw_callback_fn fn;
      tw_result r;
      if (v->head == v->len) {
        v->head = v->len = 0;
        cur->flags &= ~(uint32_t)TW__HAS_WAITER;
      }
      if (item.cb == TW__CONTINUE) {
        tw_deferred *chainee = item.arg;
        tw__put(chainee, tw__take(cur));
        chainee->paused--;
        finished = 0;
        /* Process the chainee next; come back to cur afterwards. */
        if (tw__push_or_recurse(st, chainee, 0) && tw__unwind(st)) return 1;
        break;
      }
      if (item.cb == TW__CHAIN) {
        if (!tw__chain_step(st, cur, item.arg)) continue;
        finished = 0;
        break;
      }
      fn = tw__kind(cur) == TW_RESULT_FAILURE ? item.eb : item.cb;
      if (fn == NULL) {
        /* Pass-through half: the result stays where it is. */
        if (item.arg_free != NULL) item.arg_free(item.arg);
        continue;
      }
      /* The callback owns the result; the slot keeps a stale copy until
       * the new result replaces it. Nothing reads it meanwhile: a running
       * Deferred's result is "busy" (peek/take), has nothing to steal, and
       * it cannot be freed (its frame holds a reference). Passing the slot
       * itself spares a copy that stalled on store forwarding. */
      cur->flags |= TW__RUNNING;
      cur->s.result = fn(cur->s.result, item.arg);
      cur->flags &= ~(uint32_t)TW__RUNNING;
      if (item.arg_free != NULL) item.arg_free(item.arg);
      /* Stored whole first and tested in place: branching on the returned
       * copy made GCC rebuild it piecewise, stalling again. */
      if (TW__LIKELY(cur->s.result.kind == TW_RESULT_VALUE)) continue;
      r = tw__check_return(cur, tw__take(cur));
      if (r.kind == TW_RESULT_DEFERRED) {
        tw_deferred *inner = r.u.deferred;
        if (!(inner->flags & TW__CALLED) || tw__kind(inner) == TW__WAITING ||
            inner->paused) {
          if ((cur->flags & TW__HAS_WAITER) && tw__waits_on(inner, cur)) {
            tw__unref(inner);
            tw__put(cur, tw__result_error(
                             &TW_RUNTIME_ERROR, TW_EINVAL,
                             "Deferreds waiting on each other (a cycle)"));
            continue;
          }
          /* The continuation owns a reference to cur (see struct). */
          if (tw__append(inner, TW__CONTINUE, TW__CONTINUE, cur, NULL) != 0) {
            tw__unref(inner);
            tw__put(cur, tw_result_failure(tw_failure_from_code(TW_ENOMEM)));
            continue;
          }
          cur->refs++;
          inner->flags |= TW__HAS_WAITER;
          cur->paused++;
          cur->s.result.kind = TW__WAITING;
          cur->s.result.value_free = NULL;
          cur->s.result.u.deferred = inner;
          tw__unref(inner);
          break;
        }
        /* It has a result already: steal it, leaving it None. A running
         * one's result belongs to its callback: there is nothing to take. */
        tw__put(cur, inner->flags & TW__RUNNING ? tw_result_none()
                                                 : tw__take(inner));
        tw__unref(inner);
      } else {
        tw__put(cur, r);
      }
    }
    if (finished) {
      /* cur is done for now; back to whoever handed it its result. */
      st->n--;
      tw__unref(cur);
    }
  }
  return 0;
}

/* Deferred._runCallbacks(self). self has fired. */
static void tw__run(tw_deferred *self) {
  tw__stack st;
  if (self->flags & TW__RUNNING) return; /* the outer loop picks it up */
  if (self->paused) return;
  tw__stack_init(&st);
  self->refs++; /* the frame's: callbacks may drop every other one */
  st.f[0].d = self;
  st.f[0].barrier = 1;
  st.f[0].clear_running = 0;
  st.n = 1;
  (void)tw__loop(&st);
  tw__stack_fini(&st);
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
  tw__run(d);
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
  if (d->flags & TW__CALLED) tw__run(d);
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
  if (d->flags & TW__CALLED) tw__run(d);
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
  if (--d->paused == 0 && (d->flags & TW__CALLED)) tw__run(d);
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
                      &TW_CANCELLED_ERROR, TW_ECANCELLED, "Deferred cancelled")));
    if (fn != NULL && arg_free != NULL) arg_free(arg);
    tw__unref(d);
  }
  return 0;
}

int tw_deferred_called(const tw_deferred *d) {
  if (tw__bad(d)) return TW_EINVAL;
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

tw_deferred *tw_fail(tw_failure *f) {
  tw_deferred *d;
  if (f == NULL) return NULL;
  d = tw__deferred_new_full(NULL, NULL, NULL, NULL, 0);
  if (d == NULL) return NULL;
  d->flags |= TW__CALLED;
  tw__put(d, tw_result_failure(f));
  return d;
}

tw_deferred *tw_maybe_deferred(tw_result_fn fn, void *arg) {
  tw_deferred *d;
  tw_result r;
  if (fn == NULL) return NULL;
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
