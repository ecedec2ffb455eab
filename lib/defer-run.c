/*
 * lib/defer-run.c - the callback runner: Twisted's Deferred._runCallbacks
 * (defer.py 22.4), with its `chain` list as an explicit stack of frames, so
 * that chains of any length run in bounded C stack.
 */
#include "defer-struct.h"

#include <string.h>

/* The pair sentinels (defer-struct.h): only their addresses matter. */
tw_result tw__continue_fn(tw_result r, void *arg) {
  (void)arg;
  return r;
}

tw_result tw__chain_fn(tw_result r, void *arg) {
  (void)arg;
  return r;
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
 * during d2.callback) until the frames above it are done; coming back to
 * such a frame is a return into the middle of its callback loop, so its
 * pause count is not looked at then (as in Twisted).
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
      /* Back from the nested d2.callback() of cur's CHAIN pair: Twisted
       * returns into the middle of cur's callback loop, which never looks
       * at `paused` (only the top of its `while chain` does), so cur's next
       * callbacks run even if d2's callbacks paused cur. */
      top->clear_running = 0;
      cur->flags &= ~(uint32_t)TW__RUNNING;
    } else if (cur->paused) {
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
void tw__deferred_run(tw_deferred *self) {
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
