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

/* A failure result with a fresh failure of the given type and code. */
tw_result tw__result_error(const tw_error_type *type, int code,
                           const char *msg);

#endif
