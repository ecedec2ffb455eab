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
 * Cache lines. A line written by one thread and read by another moves
 * between their caches on every write, so what different threads write is
 * kept on different lines. TW__LINE is the one spelling of the line size.
 *
 * tw__calloc_lines: zeroed memory on lines of its own (TW__LINE-aligned,
 * rounded up to whole lines): whatever malloc puts next to it cannot share
 * a line with it. One allocation through the hook; free with
 * tw__free_lines.
 *
 * TW__LINE_ALIGNED, before a field: the field starts a line. Only in
 * structs that come from tw__calloc_lines (or a tnode): the field's
 * alignment becomes the struct's, which plain malloc (16 bytes) would not
 * honour. Memory without that promise (a struct embedded in a malloc'd
 * one, such as tw__mpsc) pads instead: char pad[TW__LINE - used].
 */
#define TW__LINE 64
#define TW__LINE_ALIGNED _Alignas(TW__LINE)
void *tw__calloc_lines(size_t size);
void tw__free_lines(void *ptr);

/*
 * Thread-local storage. State read several times per item (pending
 * failure, frames, slabs): in a shared library the default TLS model costs
 * a __tls_get_addr call per access; initial-exec is one load. Its price:
 * the library takes a few dozen bytes of static TLS, which a dlopen()ed
 * library draws from glibc's reserve (hundreds of bytes), so dlopen still
 * works.
 */
#if defined(__GNUC__) && defined(__ELF__)
#define TW__TLS _Thread_local __attribute__((tls_model("initial-exec")))
#else
#define TW__TLS _Thread_local
#endif

/*
 * A small intrusive FIFO (BSD's STAILQ, cut down): a head and a tail
 * pointer over nodes that link through a field of their own (field: its
 * name, e.g. next). Not thread-safe: callers lock, or own it. Macros, so
 * that any node type can use it without casts.
 *
 *   TW__FIFO(tw__item) q;          a member or variable
 *   TW__FIFO_INIT(&q);
 *   TW__FIFO_PUSH(&q, it, next);   append it
 *   TW__FIFO_POP(&q, it, next);    it = the oldest, unlinked (or NULL)
 *   TW__FIFO_UNPOP(&q, it, next);  put the node just popped back first
 *   TW__FIFO_TAKE(&q, it);         it = the whole chain (NULL-ended);
 *                                  q is empty after
 */
#define TW__FIFO(type) \
  struct {             \
    type *head;        \
    type *tail;        \
  }
#define TW__FIFO_INIT(q) ((q)->head = (q)->tail = NULL)
#define TW__FIFO_EMPTY(q) ((q)->head == NULL)
#define TW__FIFO_PUSH(q, n, field) \
  do {                             \
    (n)->field = NULL;             \
    if ((q)->tail != NULL)         \
      (q)->tail->field = (n);      \
    else                           \
      (q)->head = (n);             \
    (q)->tail = (n);               \
  } while (0)
#define TW__FIFO_POP(q, out, field)                   \
  do {                                                \
    (out) = (q)->head;                                \
    if ((out) != NULL) {                              \
      (q)->head = (out)->field;                       \
      if ((q)->head == NULL) (q)->tail = NULL;        \
    }                                                 \
  } while (0)
#define TW__FIFO_UNPOP(q, n, field)          \
  do {                                       \
    (n)->field = (q)->head;                  \
    if ((q)->head == NULL) (q)->tail = (n);  \
    (q)->head = (n);                         \
  } while (0)
#define TW__FIFO_TAKE(q, out) \
  do {                        \
    (out) = (q)->head;        \
    TW__FIFO_INIT(q);         \
  } while (0)

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
