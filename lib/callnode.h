/*
 * lib/callnode.h - the node that carries one (fn, arg, arg_free) call
 * through an MPSC queue (reactor call_from_thread; usable by any queue that
 * runs calls on one consumer thread).
 *
 * Nodes come from per-thread slabs: a producer thread carves nodes from its
 * current slab without any synchronisation, and the consumer releases each
 * node with one atomic decrement on its slab, freeing the slab when its last
 * node is released. That turns one malloc + one cross-thread free per call
 * (most of the cost of a hand-written queue) into one of each per slab.
 *
 * A thread's partly used slab stays cached until the thread exits (a
 * thread-specific destructor releases it) or calls tw_thread_cleanup().
 */
#ifndef TWUV_CALLNODE_H
#define TWUV_CALLNODE_H

#include "internal.h"
#include "mpsc.h"

typedef struct tw__call_slab tw__call_slab;

typedef struct tw__call_node {
  tw__mpsc_node link;
  tw_call_fn fn;
  void *arg;
  tw_free_fn arg_free;
  tw__call_slab *slab;
} tw__call_node;

/* A node from the calling thread's slab, or NULL when out of memory. */
tw__call_node *tw__call_node_get(void);

/* Give a node back (any thread, once per node). */
void tw__call_node_put(tw__call_node *node);

#endif
