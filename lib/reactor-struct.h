/*
 * lib/reactor-struct.h - the layout of struct tw_reactor and what the
 * reactor's own files share: reactor.c (loop, run/stop/crash, the
 * call_from_thread queue, its libuv handles, new/free), reactor-events.c
 * (system event triggers) and reactor-children.c (the registry of what the
 * reactor owns or waits for). Included by those three files only: every
 * other module goes through reactor-internal.h and reactor.h.
 *
 * Three files rather than one: three topics (the loop and its lifetime;
 * Twisted's three-phase events; teardown of children), each read on its
 * own, sharing one struct - as libuv's core.c, loop.c and the handle files
 * share uv-common.h.
 */
#ifndef TWUV_REACTOR_STRUCT_H
#define TWUV_REACTOR_STRUCT_H

#include <stdatomic.h>
#include <pthread.h>
#include <uv.h>

#include "tnode.h"
#include "clock-internal.h"
#include "gate.h"
#include "internal.h"
#include "mpsc.h"
#include "reactor-internal.h"


/* A walk of the children in progress (reactor-children.c); on the loop
 * thread's stack, linked while it runs so that a child done meanwhile can
 * move the walk's cursor off itself. Walks nest (a close may stop the
 * reactor). */
typedef struct tw__child_walk {
  struct tw__child_walk *up;
  tw__child *next;    /* the next child to visit (older than current) */
  tw__child *current; /* inside its close; NULL once it was done there */
} tw__child_walk;

typedef struct tw__trigger tw__trigger;
typedef struct tw__event tw__event;

struct tw_reactor {
  /* The thread that created the reactor: its loop thread for life, set once
   * before the reactor is handed to anyone, so read without atomics. Kept
   * with the loop-thread state, off the producers' cache line: every
   * loop-only call compares it. */
  uv_thread_t loop_thread;
  uv_loop_t *loop;
  uv_loop_t *own_loop; /* allocated by us, or NULL (hosted) */
  unsigned flags;

  /* Cross-thread queue: any thread pushes, the loop thread drains. Padded
   * away from the loop-thread state around it to avoid false sharing
   * (padding, not _Alignas: the struct comes from malloc, which promises
   * no more than 16-byte alignment). */
  char pad_before[TW__LINE];
  tw__gate queued; /* calls accepted and not yet taken (gate.h) */
  tw__mpsc queue;
  char pad_after[TW__LINE];

  uv_async_t async;
  uv_timer_t timer;
  uv_check_t check;
  uv_idle_t idle;
  uv_signal_t sigint;
  uv_signal_t sigterm;
  uv_prepare_t prepare; /* runs the flush nodes (networking) */
  int open_handles; /* closes still to complete */

  /* The networking layer's (reactor-internal.h): the shared read buffer
   * and the flush nodes queued for the prepare phase. */
  char *read_buf;
  tw__flush_node *flush_head, *flush_tail;

  tw_clock clock;
  double armed_deadline; /* the timer's deadline, NaN when not armed */

  /* Twisted's ReactorBase state (loop thread only). */
  int started;        /* _started */
  int running;        /* running */
  int stopped;        /* _stopped */
  int just_stopped;   /* _justStopped */
  int started_before; /* _startedBefore */

  int in_run;         /* inside tw_reactor_run's uv_run */
  int in_iterate;     /* inside an iteration (its callbacks) */
  int manual_iterate; /* inside tw_reactor_iterate */
  int closing;        /* tw_reactor_free under way */
  int draining;       /* running queued thread calls */
  int need_really_start; /* crash could not re-add the startup trigger */
  int close_pending;  /* the queue must close once the drain ends */
  int queue_closed;   /* queued is closed (read here instead:
                         that word's line is the producers') */

  tw__event *events;
  uint64_t next_trigger_id;

  /* Children (reactor-children.c): everything the reactor owns or waits
   * for, oldest first. Under children_lock: blocked callers come and go
   * from other threads, foreign jobs finish there. */
  uv_mutex_t children_lock;
  uv_cond_t children_cond; /* a child done or unpinned */
  tw__child *children, *children_tail;
  int children_count;
  int children_on_loop;    /* of them TW__CHILD_ON_LOOP */
  int children_busy;       /* of them TW__CHILD_BUSY */
  int children_closed;     /* free under way: adds refused */
  int halted;              /* TW__CHILD_HALT adds refused: stopped or
                              crashed (live from creation - blocking calls
                              wait for the first run - and again when a
                              crashed reactor runs) */
  int free_waiting;        /* hosted loop: free returned, waiting for
                              TW__CHILD_ON_LOOP children (loop thread) */
  tw__child_walk *walks;   /* loop thread, under children_lock */

  /* The reactor's thread pool (threads.c creates and frees it; a child of
   * the reactor), NULL until first use. */
  tw_threadpool *pool;

  /* The installed name resolver (resolve.c; fn NULL: uv_getaddrinfo). */
  tw__resolver_hook resolver;
};

/*
 * 1 on the reactor's loop thread. Inline and cheap (pthread_self and a
 * compare, ~5 instructions; 12 through the clock's check hook), so every
 * build checks: measured with callgrind on bench_call_later, the
 * out-of-line check through libuv cost ~27 instructions per check (~5% of a
 * call_later + cancel; now ~2%, within the benchmarks' noise).
 */
_Static_assert(sizeof(uv_thread_t) == sizeof(pthread_t),
               "uv_thread_t is pthread_t on POSIX");
static inline int tw__reactor_on_loop_thread(const tw_reactor *r) {
  return pthread_equal(pthread_self(), r->loop_thread);
}

/*
 * The guard of every loop-thread-only function: return err when called off
 * the loop thread. In every build (it used to need -Dthread_checks).
 */
#define TW__LOOP_ONLY(r, err)                                  \
  do {                                                         \
    if (TW__UNLIKELY(!tw__reactor_on_loop_thread(r))) return (err); \
  } while (0)
/* reactor.c: after the shutdown event completed. */
void tw__reactor_shutdown_done(tw_reactor *r);
/* reactor.c: the memory goes (handles closed, children done). */
void tw__reactor_maybe_release(tw_reactor *r);

/* reactor-children.c */
int tw__reactor_children_init(tw_reactor *r);
void tw__reactor_children_destroy(tw_reactor *r);
/* stop, crash: refuse TW__CHILD_HALT adds, close those registered. */
void tw__reactor_children_halt(tw_reactor *r);
/* the shutdown event's disconnectAll: close TW__CHILD_SHUTDOWN children. */
void tw__reactor_children_shutdown(tw_reactor *r);
/* really start: accept TW__CHILD_HALT adds again. */
void tw__reactor_children_live(tw_reactor *r);
/* free, before anything changes: TW_EBUSY while a busy child is
 * registered; otherwise refuse adds from now on. */
int tw__reactor_children_close(tw_reactor *r);
/* free: close every child (until none is left unclosed), then wait for
 * those that finish elsewhere; 1 if TW__CHILD_ON_LOOP children remain on a
 * hosted loop (the memory goes with the last). */
int tw__reactor_children_free(tw_reactor *r);

/* reactor-events.c */
int tw__reactor_add_internal_trigger(tw_reactor *r, tw_phase phase,
                                     const char *event_type, tw_result_fn fn);
void tw__reactor_fire(tw_reactor *r, const char *event_type);
void tw__reactor_destroy_events(tw_reactor *r);

#endif
