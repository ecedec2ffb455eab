/*
 * twuv/common.h - export macro, shared callback types, the allocator hook.
 *
 * Every other twuv header includes this one. It needs nothing but the C
 * standard library: in particular it never includes <uv.h>, so consumers may
 * compile with -std=c11 -pedantic.
 */
#ifndef TWUV_COMMON_H
#define TWUV_COMMON_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * TW_EXTERN marks every public symbol. The library is built with hidden
 * visibility, so anything without it stays internal.
 */
#if defined(_WIN32)
#if defined(TW_BUILDING_SHARED)
#define TW_EXTERN __declspec(dllexport)
#elif defined(TW_USING_SHARED)
#define TW_EXTERN __declspec(dllimport)
#else
#define TW_EXTERN /* static library */
#endif
#elif defined(__GNUC__) && __GNUC__ >= 4
#define TW_EXTERN __attribute__((visibility("default")))
#else
#define TW_EXTERN
#endif

#if defined(__GNUC__)
#define TW_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define TW_PRINTF(fmt, args)
#endif

/* The libuv loop, forward-declared so that no public header needs <uv.h>. */
struct uv_loop_s;

/*
 * A destructor for user data. Wherever twuv accepts `void *arg` together with
 * a `tw_free_fn arg_free`, the rule is the same: twuv calls arg_free(arg)
 * exactly once, when it no longer needs arg - after the function that
 * received arg has returned, or instead of that function when the call is
 * cancelled, rejected after acceptance, or discarded because its owner
 * (reactor, pool, worker, Deferred) is freed. arg_free may be NULL.
 * If the submitting call itself returns an error, arg was NOT accepted and
 * arg_free is NOT called: the caller still owns arg.
 */
typedef void (*tw_free_fn)(void *arg);

/* A function run later with its argument (reactor calls, thread work). */
typedef void (*tw_call_fn)(void *arg);

/*
 * Allocator hook, in the style of uv_replace_allocator. All of twuv's own
 * memory goes through these four functions (libuv's does not: use
 * uv_replace_allocator for that).
 *
 * Call it before any other twuv function, and never while another thread
 * might allocate through twuv. The functions must be thread-safe. realloc
 * and calloc must behave like their standard counterparts (calloc checks for
 * overflow). free(NULL) must be harmless.
 *
 * Returns 0, or TW_EINVAL when any pointer is NULL (nothing is changed).
 * Thread-safety: not thread-safe (see above).
 */
typedef void *(*tw_malloc_func)(size_t size);
typedef void *(*tw_realloc_func)(void *ptr, size_t size);
typedef void *(*tw_calloc_func)(size_t count, size_t size);
typedef void (*tw_free_func)(void *ptr);

TW_EXTERN int tw_replace_allocator(tw_malloc_func malloc_func,
                                   tw_realloc_func realloc_func,
                                   tw_calloc_func calloc_func,
                                   tw_free_func free_func);

/*
 * tw_thread_cleanup: release the memory twuv caches for the calling thread
 * (slabs of the nodes that carry calls from this thread to another: reactor
 * call_from_thread, serial worker, team tasks, defer_to_thread jobs - about
 * 250 KiB at most on a loop thread that used them all; a slab still
 * carrying some is released by the last of them). This happens by itself when a thread
 * exits; call it on a thread that lives on (the main thread) when you want
 * every twuv allocation released, e.g. before checking for leaks. Safe to
 * call at any time, any number of times; calls already submitted are
 * unaffected. Thread-safe (it touches only the calling thread's cache).
 */
TW_EXTERN void tw_thread_cleanup(void);

#ifdef __cplusplus
}
#endif
#endif /* TWUV_COMMON_H */
