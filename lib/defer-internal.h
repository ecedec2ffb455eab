/*
 * lib/defer-internal.h - what the Deferred's helper modules (deferlist.c,
 * defer-sync.c, task.c) need from defer.c beyond the public API.
 */
#ifndef TWUV_DEFER_INTERNAL_H
#define TWUV_DEFER_INTERNAL_H

#include "internal.h"

/*
 * tw_deferred_new with a destructor for the canceller's argument: arg_free
 * (may be NULL) runs once, when d fires (the canceller can no longer be
 * called) or when d is freed unfired. Producers use it to tie their own state
 * to the Deferred they will fire. NULL when out of memory (arg_free is then
 * not called).
 */
tw_deferred *tw__deferred_new_full(tw_canceller_fn canceller, void *arg,
                                   tw_free_fn arg_free, const char *file,
                                   int line);

/*
 * Make room for n more callback pairs on d, so that the next n
 * tw_deferred_add_callbacks* cannot fail for lack of memory (unless
 * callbacks run in between add pairs). 0 or TW_ENOMEM.
 */
int tw__deferred_reserve(tw_deferred *d, unsigned n);

/*
 * A Deferred in memory its producer provides, with room for its first
 * TW__BOX_PAIRS callback pairs: a producer that makes one Deferred per
 * item (defer_to_thread) then allocates nothing for it unless the chain
 * grows longer. tw__deferred_box_init returns the Deferred (one reference,
 * the caller's); when its last reference goes, it is destroyed as any
 * Deferred is (pairs dropped, result released or reported) and then
 * release(box) is called, once, instead of a free: on that thread, or in
 * debug builds (-Ddebug_deferreds) when the quarantine of freed Deferreds
 * lets it go, on whichever thread that happens. The box must stay valid
 * until then. file and line: where an unhandled failure is reported from.
 */
#define TW__BOX_PAIRS 2
#define TW__BOX_BYTES (64 + 16 + TW__BOX_PAIRS * 32)

typedef struct tw__deferred_box {
  void (*release)(struct tw__deferred_box *box);
  union {
    void *align;
    unsigned char bytes[TW__BOX_BYTES];
  } mem;
} tw__deferred_box;

/* The Deferred in box (once initialised). */
static inline tw_deferred *tw__box_deferred(tw__deferred_box *box) {
  return (tw_deferred *)(void *)box->mem.bytes;
}

tw_deferred *tw__deferred_box_init(tw__deferred_box *box,
                                   tw_canceller_fn canceller, void *arg,
                                   void (*release)(tw__deferred_box *box),
                                   const char *file, int line);

/*
 * 1 when d is a live Deferred: not NULL and (with -Ddebug_deferreds) not
 * freed. The check behind every TW_EINVAL for a bad Deferred argument;
 * tw_deferred_called answers 0 for those (a yes/no, never a code).
 */
int tw__deferred_live(const tw_deferred *d);

/* A failure result with a fresh failure of the given type and code. */
tw_result tw__result_error(const tw_error_type *type, int code,
                           const char *msg);

#endif
