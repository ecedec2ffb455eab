/*
 * lib/defer-struct.h - the Deferred's layout and the helpers that defer.c
 * (the object) and defer-run.c (the callback runner) share. Not installed;
 * nothing outside these two files looks inside a tw_deferred.
 */
#ifndef TWUV_DEFER_STRUCT_H
#define TWUV_DEFER_STRUCT_H

#include "defer-internal.h"

/* ---- layout -------------------------------------------------------------- */

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
 * no callbacks stays small, and grown geometrically (3, 12, 48, 192, then
 * x2) so a long chain costs O(log n) allocations. The first block of 3
 * (128 bytes with glibc's header) stays in glibc's fast bins, which a
 * Deferred freed soon after it was made (defer_to_thread) notices.
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
  TW__HAS_WAITER = 1u << 3, /* a continuation may be in its callbacks */
  TW__BOXED = 1u << 4       /* in a tw__deferred_box (defer-internal.h) */
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
#if TW_DEBUG_DEFERREDS
  uint32_t magic;
#endif
};

_Static_assert(sizeof(struct tw_deferred) <= 64,
               "a Deferred with no callbacks must fit in 64 bytes");

/* A box holds the Deferred, then its first callback block. */
#define TW__BOX_DEFERRED 64
_Static_assert(TW__BOX_BYTES == TW__BOX_DEFERRED + sizeof(tw__cbvec) +
                                    TW__BOX_PAIRS * sizeof(tw__cb),
               "a box is a Deferred and its first callback block");

static inline tw__cbvec *tw__box_cbs(tw_deferred *d) {
  return (tw__cbvec *)(void *)((unsigned char *)d + TW__BOX_DEFERRED);
}

/* d's block is its box's: not to be freed. */
static inline int tw__cbs_boxed(tw_deferred *d) {
  return (d->flags & TW__BOXED) && d->cbs == tw__box_cbs(d);
}

#define TW__MAGIC_LIVE 0x7764664cu /* "Lfdw" */
#define TW__MAGIC_DEAD 0xdeadd1edu

/*
 * Sentinels stored as a pair's callback. Never called: the runner compares
 * against them. CONTINUE is Twisted's _CONTINUE (arg: the outer Deferred
 * waiting on this one, a reference); CHAIN is chainDeferred's
 * (d2.callback, d2.errback) pair (arg: d2, a reference).
 */
tw_result tw__continue_fn(tw_result r, void *arg);
tw_result tw__chain_fn(tw_result r, void *arg);
#define TW__CONTINUE tw__continue_fn
#define TW__CHAIN tw__chain_fn

/* ---- small helpers ------------------------------------------------------ */

static inline unsigned tw__kind(const tw_deferred *d) {
  return (unsigned)d->s.result.kind;
}

/* Public entry points refuse NULL and, in debug builds, freed Deferreds. */
static inline int tw__bad(const tw_deferred *d) {
#if TW_DEBUG_DEFERREDS
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

/* ---- the callback block ---------------------------------------------------- */

/* Room for n more pairs at the end of d's block: 0 or TW_ENOMEM. */
int tw__cbvec_reserve(tw_deferred *d, uint32_t n);

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

static inline int tw__has_callbacks(const tw_deferred *d) {
  return d->cbs != NULL && d->cbs->head < d->cbs->len;
}

/* ---- references and running ------------------------------------------------ */

/* Free d, whose last reference went (queued if a free is under way). */
void tw__deferred_release(tw_deferred *d);

/* Drop a reference the library itself holds (the Deferred is alive). */
static inline void tw__unref(tw_deferred *d) {
  if (--d->refs == 0) tw__deferred_release(d);
}

/* Deferred._runCallbacks(d), for a fired d. */
void tw__deferred_run(tw_deferred *d);

#endif
