/*
 * lib/reactor-internal.h - what the rest of the library may ask of a
 * reactor. The layout of struct tw_reactor is the reactor's own
 * (lib/reactor-struct.h, included by reactor.c, reactor-events.c and
 * reactor-children.c only): other modules go through these functions and
 * the public ones in reactor.h.
 *
 *   call_from_thread with the caller's node    threads.c (job results)
 *   gone, flags, the pool slot                 threads.c (the reactor's pool)
 *   children: add / park / done                threads.c (pool, blocked
 *                                              callers, foreign jobs),
 *                                              resolve.c (lookups); next the
 *                                              networking layer's transports
 *                                              and ports
 */
#ifndef TWUV_REACTOR_INTERNAL_H
#define TWUV_REACTOR_INTERNAL_H

#include <twuv/reactor.h>
#include <twuv/resolve.h>
#include <twuv/threadpool.h>

#include "mpsc.h"

/* ---- call_from_thread with the caller's memory ---------------------------- */

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

/* ---- state other modules need --------------------------------------------- */

/*
 * 1 when work submitted now could never come back: the reactor stopped for
 * good (past the "during shutdown" crash of a stop: its pool is being or
 * has been joined and it cannot run again), its call_from_thread queue is
 * closed, or tw_reactor_free is under way. Loop thread.
 */
int tw__reactor_gone(const tw_reactor *r);

/* The flags r was created with (TW_REACTOR_*). Any thread. */
unsigned tw__reactor_flags(const tw_reactor *r);

/*
 * The reactor's thread pool slot (threads.c creates, starts, stops and
 * frees the pool; the reactor only keeps the pointer). NULL when there is
 * none. Loop thread.
 */
tw_threadpool *tw__reactor_pool(const tw_reactor *r);
void tw__reactor_set_pool(tw_reactor *r, tw_threadpool *tp);

/*
 * The reactor's installed name resolver (resolve.c reads and replaces it;
 * the reactor keeps it and runs arg_free when it is freed). fn NULL: none
 * installed. Loop thread.
 */
typedef struct tw__resolver_hook {
  tw_resolver_fn fn;
  void *arg;
  tw_free_fn arg_free;
} tw__resolver_hook;
tw__resolver_hook *tw__reactor_resolver(tw_reactor *r);

/* ---- children ----------------------------------------------------------------
 *
 * Everything the reactor owns or must wait for before its memory can go
 * registers here, in one list (the shape of libuv's handle queue walked by
 * uv_walk + uv_close, or nng's reaper): a tw__child embedded in the owning
 * object, with an ops table whose close the reactor calls, and
 * tw__reactor_child_done - the "closed" callback - once the close has
 * completed, synchronously or later (a uv_close callback). docs/design.md,
 * "Reactor children", has the whole story.
 *
 * Walks go from the newest child to the oldest (destructor order: what was
 * made later, often by or on top of an older child - a job on the pool, a
 * connection on a port - closes first).
 */

/* Why close is called. */
enum {
  /* The reactor stopped running: tw_reactor_stop (when the stop is
   * requested), tw_reactor_crash (once for both: the stop's own crash
   * tells nobody again). Only children flagged TW__CHILD_HALT are told; a
   * child may hear it again after the reactor ran again (crash, run,
   * stop). */
  TW__CLOSE_HALT = 1,
  /* tw_reactor_free: every child; the last close a child gets. */
  TW__CLOSE_FREE = 2,
  /* The "shutdown" event's during phase, right after the reactor's own
   * crash (Twisted's disconnectAll): children flagged TW__CHILD_SHUTDOWN -
   * connections, listening ports, connection attempts - close then, while
   * the loop still runs their close callbacks before tw_reactor_run
   * returns. Told once per shutdown. */
  TW__CLOSE_SHUTDOWN = 3
};

/* Flags the owner sets before adding the child (tw__child_init). */
enum {
  /* Closed on halt (above), and refused by tw__reactor_child_add while the
   * reactor is halted (TW_ESHUTDOWN): threads blocked on the reactor. */
  TW__CHILD_HALT = 1u << 0,
  /* Busy: completes on its own, elsewhere (a libuv request, work on a pool
   * the reactor does not own), and cannot be hurried. tw_reactor_free
   * refuses with TW_EBUSY while a busy child is registered, before it
   * changes anything - as uv_loop_close refuses with UV_EBUSY while
   * requests are active. tw__reactor_child_park clears it. */
  TW__CHILD_BUSY = 1u << 1,
  /* Finishes closing from a callback of the reactor's loop (a uv_close
   * callback, a request's callback): tw_reactor_free runs its own loop
   * until such children are done; on a hosted loop, the reactor's memory
   * goes with the last of them, after free returned (as it goes with the
   * close callbacks of its own handles). */
  TW__CHILD_ON_LOOP = 1u << 2,
  /* Closed by the reactor's disconnectAll (TW__CLOSE_SHUTDOWN, above). */
  TW__CHILD_SHUTDOWN = 1u << 3,
  TW__CHILD_OWNER_FLAGS = (1u << 4) - 1
};

typedef struct tw__child tw__child;

typedef struct tw__child_ops {
  /*
   * Start closing c; why is TW__CLOSE_HALT or TW__CLOSE_FREE. On the loop
   * thread, without any reactor lock held: it may join threads, uv_close
   * handles, run user callbacks. Once the close has completed - inside
   * close, or later from a callback - the owner calls
   * tw__reactor_child_done(r, c) and may then free c. Until then the reactor
   * keeps c pinned: a done from another thread waits for close to return.
   * Called at most once with TW__CLOSE_FREE; a child still registered may
   * get TW__CLOSE_HALT more than once.
   */
  void (*close)(tw__child *c, int why);
} tw__child_ops;

/* Embedded in the owner; fields are the reactor's once added. 32 bytes:
 * a defer_to_thread job carries one in its 440-byte node. */
struct tw__child {
  tw__child *next, *prev;
  const tw__child_ops *ops;
  unsigned flags; /* the owner's TW__CHILD_* above, and the registry's */
};

_Static_assert(sizeof(tw__child) <= 4 * sizeof(void *),
               "a child is four words");

static inline void tw__child_init(tw__child *c, const tw__child_ops *ops,
                                  unsigned flags) {
  c->next = c->prev = NULL;
  c->ops = ops;
  c->flags = flags & TW__CHILD_OWNER_FLAGS;
}

/*
 * Register c with r. TW_ESHUTDOWN once tw_reactor_free is under way, and
 * for a TW__CHILD_HALT child while the reactor is halted (stopped or
 * crashed; it is live from creation, waiting for the first run, and again
 * while a crashed reactor runs). Any thread.
 */
int tw__reactor_child_add(tw_reactor *r, tw__child *c);

/*
 * c holds something only the loop thread may release (a result the
 * reactor's queue refused: it closed): keep it for tw_reactor_free, whose
 * close(TW__CLOSE_FREE) hands it over. c may be registered (it stops being
 * busy) or not (it is added; never refused - the caller's work is held by
 * a registered child, so free has not finished). Any thread.
 */
void tw__reactor_child_park(tw_reactor *r, tw__child *c);

/*
 * c finished closing (or has nothing left the reactor must wait for):
 * unregister it. After this the owner may free c, and - from another
 * thread - must not touch the reactor again. Any thread.
 */
void tw__reactor_child_done(tw_reactor *r, tw__child *c);

/* ---- what the networking layer borrows from the reactor ------------------ */

/*
 * The reactor's read buffer, TW__READ_BUFFER_SIZE bytes (allocated on first
 * use, freed with the reactor), or NULL when it cannot be allocated. Every
 * stream of the reactor reads into it: libuv calls alloc then read for one
 * stream at a time on the loop thread, and data_received borrows the bytes
 * for its call only, so one buffer serves them all (Twisted also reads at
 * most 64 KiB per recv, tcp.py). A malloc per read cost throughput in
 * networking-reference.md's scratch echo test (42-108 MiB/s against
 * 343-365 with a shared buffer). Loop thread.
 */
#define TW__READ_BUFFER_SIZE 65536
char *tw__reactor_read_buffer(tw_reactor *r);

/*
 * Flush nodes: work to run once before the loop next waits for I/O (a
 * uv_prepare handle, started only while a node is queued, unreferenced).
 * The streams queue one when they have coalesced bytes to hand to libuv.
 * Nodes run in the order queued; a node is queued at most once (queueing it
 * again does nothing); fn may queue nodes again (they run on the next
 * turn). Loop thread.
 */
typedef struct tw__flush_node tw__flush_node;
struct tw__flush_node {
  tw__flush_node *next, *prev; /* the reactor's; NULL when not queued */
  void (*fn)(tw__flush_node *n);
};
void tw__reactor_flush_add(tw_reactor *r, tw__flush_node *n);
void tw__reactor_flush_remove(tw_reactor *r, tw__flush_node *n);

/* For white-box tests: calls counted in the call_from_thread queue. */
uint64_t tw__reactor_calls_queued(tw_reactor *r);

#endif
