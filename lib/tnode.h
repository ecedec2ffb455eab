/*
 * lib/tnode.h - nodes handed from one thread to another, from per-thread
 * slabs.
 *
 * A queue that carries work from producer threads to a consumer needs one
 * node per item. malloc in the producer plus free in the consumer costs
 * glibc its arena lock on every item - most of the time of a hand-written
 * cross-thread queue. Here a producer thread carves nodes from its own slab
 * without any synchronisation, and whoever is done with a node releases it
 * with one atomic decrement on its slab, which is freed when its last node
 * is released. One allocation per slab instead of one per item, and no
 * shared free list to contend on (or to suffer ABA).
 *
 * Nodes are TW__TNODE_SIZE bytes, each the rest of a 64-byte cache line of
 * its own (after its slab's address): the thread writing new nodes and the
 * threads reading older ones never share a line. Three kinds, with slabs of
 * their own, for nodes of different lifetimes: TW__TNODE_SMALL (the serial
 * worker's and the reactor's calls), TW__TNODE_TASK (a team's tasks, which
 * may wait in a backlog), TW__TNODE_JOB (defer_to_thread's jobs, seven
 * lines each, made and mostly released on the loop thread).
 *
 * A thread's partly used slabs stay cached until the thread exits (a
 * thread-specific destructor retires them) or calls tw_thread_cleanup().
 */
#ifndef TWUV_TNODE_H
#define TWUV_TNODE_H

#include "internal.h"

#define TW__TNODE_SIZE 56

/*
 * TW__TNODE_JOB nodes are seven lines: room for a defer_to_thread job, its
 * team task and its Deferred. A job node has two holders (the pool and the
 * Deferred), so it starts with two references: it takes two
 * tw__tnode_put, one from each.
 */
#define TW__TNODE_JOB_SIZE (7 * 64 - 8)

enum { TW__TNODE_SMALL, TW__TNODE_TASK, TW__TNODE_JOB, TW__TNODE_KINDS };

/* A node of that kind from the calling thread's slab, or NULL (no memory). */
void *tw__tnode_get_kind(int kind);

static inline void *tw__tnode_get(void) {
  return tw__tnode_get_kind(TW__TNODE_SMALL);
}

/* Release a node of any kind (any thread; once per node, twice per job). */
void tw__tnode_put(void *node);

#endif
