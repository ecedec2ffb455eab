/*
 * tests/support/twalloc.h - a counting allocator with failure injection, for
 * the unit tests and the stress executables. Installed through
 * tw_replace_allocator; thread-safe (C11 atomics).
 */
#ifndef TWT_ALLOC_H
#define TWT_ALLOC_H

#include <stddef.h>

/* Install the counting allocator (idempotent). */
void twt_alloc_install(void);

/* Allocations made and not yet freed. */
long twt_alloc_live(void);

/* Allocations made since installation (successful ones). */
long twt_alloc_total(void);

/*
 * Make the n-th allocation from now fail (n = 1: the next one); n <= 0
 * disables injection. Only that one allocation fails.
 */
void twt_alloc_fail_nth(long n);

/* Make every allocation fail (on != 0) or none (on == 0). */
void twt_alloc_fail_all(int on);

/* Allocations that were made to fail so far. */
long twt_alloc_failed(void);

#endif
