/*
 * lib/internal.h - what every twuv source file shares. Not installed.
 *
 * Internal names use the tw__ prefix. Nothing here is exported: the library
 * is built with -fvisibility=hidden and only TW_EXTERN symbols escape.
 */
#ifndef TWUV_LIB_INTERNAL_H
#define TWUV_LIB_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "twuv.h"

/* Allocation through the replaceable allocator (common.c). */
void *tw__malloc(size_t size);
void *tw__calloc(size_t count, size_t size);
void *tw__realloc(void *ptr, size_t size);
void tw__free(void *ptr);

/*
 * Zeroed memory on cache lines of its own (64-byte aligned, rounded up to
 * whole lines), for objects that threads share: whatever malloc puts next
 * to it can then not share a line with it (a line written by one thread
 * and read by another moves between their caches on every write). One
 * allocation through the hook; free with tw__free_lines.
 */
#define TW__LINE 64
void *tw__calloc_lines(size_t size);
void tw__free_lines(void *ptr);

/*
 * Log with the source location of the subject. Never allocates.
 * failure may be NULL; file may be NULL.
 */
void tw__log_at(tw_log_level level, const tw_failure *failure,
                const char *file, int line, const char *fmt, ...)
    TW_PRINTF(5, 6);

/* The failure every constructor returns when memory runs out (immortal). */
extern tw_failure tw__failure_oom;

#define TW__ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#if defined(__GNUC__)
#define TW__LIKELY(x) __builtin_expect(!!(x), 1)
#define TW__UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define TW__LIKELY(x) (x)
#define TW__UNLIKELY(x) (x)
#endif

/* container_of, for intrusive nodes. */
#define TW__CONTAINER_OF(ptr, type, member) \
  ((type *)((char *)(ptr) - offsetof(type, member)))

/*
 * Moving arg into a result (defer_later, defer_to_thread,
 * call_in_thread_with_callback: their arg_free runs before the result's
 * consumers see it). A result whose value is arg itself takes arg over: the
 * caller then must not run arg_free, and when the value came without a
 * destructor, arg_free becomes it, so whoever releases the result last frees
 * arg. Returns 1 when arg moved. `return tw_result_value(arg, NULL)` from fn
 * is therefore safe with any arg_free (it used to be a use after free).
 */
static inline int tw__result_adopt_arg(tw_result *r, void *arg,
                                       tw_free_fn arg_free) {
  if (arg == NULL || r->kind != TW_RESULT_VALUE || r->u.value != arg)
    return 0;
  if (r->value_free == NULL) r->value_free = arg_free;
  return 1;
}

/* Set by meson: -Ddebug_deferreds=true keeps freed Deferreds in a
 * quarantine, so that use after the last unref returns TW_EINVAL. (Thread
 * checks need no option: every build has them.) */
#ifndef TW_DEBUG_DEFERREDS
#define TW_DEBUG_DEFERREDS 0
#endif

#endif /* TWUV_LIB_INTERNAL_H */
