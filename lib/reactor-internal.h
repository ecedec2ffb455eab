/*
 * lib/reactor-internal.h - the reactor's state, shared by reactor.c (loop,
 * run/stop, call_from_thread) and reactor-events.c (system event triggers,
 * handle lifetime). The threads module reaches the reactor through it too.
 */
#ifndef TWUV_REACTOR_INTERNAL_H
#define TWUV_REACTOR_INTERNAL_H

#include <stdatomic.h>
#include <pthread.h>
#include <uv.h>

#include "tnode.h"
#include "clock-internal.h"
#include "internal.h"
#include "mpsc.h"

/* call_from_thread queue word: count of accepted calls + closed flag. */
#define TW__QUEUE_CLOSED (UINT64_C(1) << 63)
#define TW__QUEUE_COUNT (TW__QUEUE_CLOSED - 1)

/* One call_from_thread call; carved from the producer's slab (tnode.h),
 * or embedded in the caller's object (ext). */
typedef struct tw__call_node {
  tw__mpsc_node link;
  tw_call_fn fn;
  void *arg;
  tw_free_fn arg_free;
  int ext;
} tw__call_node;

/*
 * tw_reactor_call_from_thread with the node in the caller's memory (which
 * arg_free, or fn, may free: the reactor does not touch the node after
 * them). Never TW_ENOMEM; TW_ESHUTDOWN once the queue is closed.
 */
int tw__reactor_call_from_thread_node(tw_reactor *r, tw__call_node *call,
                                      tw_call_fn fn, void *arg,
                                      tw_free_fn arg_free);

/*
 * A thread blocked in the reactor's name (tw_blocking_call_from_thread).
 * The reactor releases every waiter - calls release(w) under its waiter
 * lock - as soon as it stops running (stop requested, crash, free).
 */
typedef struct tw__reactor_waiter {
  struct tw__reactor_waiter *next;
  struct tw__reactor_waiter **pprev;
  void (*release)(struct tw__reactor_waiter *w);
} tw__reactor_waiter;

/*
 * Cleanup that must run on the loop thread but arrives from another thread
 * after the reactor stopped for good (its call_from_thread queue is closed):
 * parked here, run by tw_reactor_free. Embedded in the object it cleans up,
 * so parking never allocates.
 */
typedef struct tw__reactor_parked {
  struct tw__reactor_parked *next;
  tw_call_fn fn;
  void *arg;
} tw__reactor_parked;

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
  char pad_before[64];
  _Atomic uint64_t queued;
  tw__mpsc queue;
  char pad_after[64];

  uv_async_t async;
  uv_timer_t timer;
  uv_check_t check;
  uv_idle_t idle;
  uv_signal_t sigint;
  uv_signal_t sigterm;
  int open_handles; /* closes still to complete */

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
  int queue_closed;   /* queued has TW__QUEUE_CLOSED (read here instead:
                         that word's line is the producers') */

  tw__event *events;
  uint64_t next_trigger_id;

  /* Threads blocked in tw_blocking_call_from_thread (threads.c). */
  uv_mutex_t waiters_lock;
  uv_cond_t waiters_gone;
  tw__reactor_waiter *waiters;
  int waiters_inside; /* threads inside tw__reactor_enter/leave_blocking */
  int live;           /* blocking calls allowed: from creation (they wait
                         for the first run) until stop, crash or free;
                         again when a crashed reactor runs */
  tw__reactor_parked *parked; /* under waiters_lock */

  /* Work in flight that will call back into the reactor from another
   * thread (defer_to_thread_pool jobs on a pool the reactor does not own):
   * free refuses with TW_EBUSY until it is done. */
  _Atomic long busy_refs;

  /* The reactor's thread pool (threads.c), created on first use. */
  tw_threadpool *pool;
  tw_trigger_id pool_start_id;
  void (*pool_free)(tw_reactor *r); /* frees pool at reactor free */
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
void tw__reactor_shutdown_done(tw_reactor *r);

/*
 * Blocking callers: enter registers w (TW_ESHUTDOWN once the reactor was
 * stopped, crashed or is being freed; before the first run it is accepted
 * and waits); leave unregisters it if still registered. A thread between the
 * two keeps tw_reactor_free waiting, so a released waiter may still touch
 * the reactor until it leaves. Any thread.
 */
int tw__reactor_enter_blocking(tw_reactor *r, tw__reactor_waiter *w);
void tw__reactor_leave_blocking(tw_reactor *r, tw__reactor_waiter *w);

/* Park p (fn, arg set by the caller) for tw_reactor_free. Any thread. */
void tw__reactor_park(tw_reactor *r, tw__reactor_parked *p);

/* reactor-events.c */
int tw__reactor_add_internal_trigger(tw_reactor *r, tw_phase phase,
                                     const char *event_type, tw_result_fn fn);
void tw__reactor_fire(tw_reactor *r, const char *event_type);
void tw__reactor_destroy_events(tw_reactor *r);

#endif
