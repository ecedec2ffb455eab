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
 * A thread's partly used slab stays cached until the thread exits (a
 * thread-specific destructor retires it) or calls tw_thread_cleanup().
 * Nodes are TW__TNODE_SIZE bytes, pointer-aligned.
 */
#ifndef TWUV_TNODE_H
#define TWUV_TNODE_H

#include "internal.h"

#define TW__TNODE_SIZE 56

/* A node from the calling thread's slab, or NULL when out of memory. */
void *tw__tnode_get(void);

/* Release a node (any thread, once per node). */
void tw__tnode_put(void *node);

#endif
