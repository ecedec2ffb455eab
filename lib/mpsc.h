/*
 * lib/mpsc.h - an intrusive, lock-free multi-producer single-consumer queue
 * (Vyukov's design), shared by the reactor's call_from_thread queue and the
 * thread and uv workers. (The serial worker has its own bounded ring,
 * lib/serial.c: this queue cannot make a producer wait.)
 *
 * Producers: tw__mpsc_push, any thread, wait-free (one exchange, one store).
 * Consumer: tw__mpsc_pop / tw__mpsc_pop_wait, one thread at a time.
 * Order: FIFO in the order the producers' exchanges happened, so FIFO per
 * producer.
 *
 * Emptiness is not tracked here: a push is visible to the consumer only once
 * the producer has linked it (its second step), so users pair the queue with
 * an atomic count of items promised to the consumer, raised by producers
 * around their push (before it, as the reactor does so that the push is the
 * producer's last access, or after it). When the count says an item exists,
 * tw__mpsc_pop_wait returns it, spinning briefly (then yielding) while its
 * producer finishes pushing.
 */
#ifndef TWUV_MPSC_H
#define TWUV_MPSC_H

#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>

#include "internal.h"

typedef struct tw__mpsc_node {
  _Atomic(struct tw__mpsc_node *) next;
} tw__mpsc_node;

typedef struct tw__mpsc {
  _Atomic(tw__mpsc_node *) head; /* producers exchange here (newest) */
  /* The producers' line and the consumer's apart: on one line, every push
   * took it from the consumer and every pop took it back. */
  char pad[TW__LINE - sizeof(void *)];
  tw__mpsc_node *tail; /* consumer side (oldest) */
  tw__mpsc_node stub;
} tw__mpsc;

static inline void tw__mpsc_init(tw__mpsc *q) {
  atomic_init(&q->stub.next, NULL);
  atomic_init(&q->head, &q->stub);
  q->tail = &q->stub;
}

static inline void tw__mpsc_push(tw__mpsc *q, tw__mpsc_node *n) {
  tw__mpsc_node *prev;
  atomic_store_explicit(&n->next, NULL, memory_order_relaxed);
  prev = atomic_exchange_explicit(&q->head, n, memory_order_acq_rel);
  /* Until this store, the consumer cannot reach n (or anything after it). */
  atomic_store_explicit(&prev->next, n, memory_order_release);
}

/* The oldest linked node, or NULL (empty, or the next push is in flight). */
static inline tw__mpsc_node *tw__mpsc_pop(tw__mpsc *q) {
  tw__mpsc_node *tail = q->tail;
  tw__mpsc_node *next =
      atomic_load_explicit(&tail->next, memory_order_acquire);
  if (tail == &q->stub) {
    if (next == NULL) return NULL;
    q->tail = next;
    tail = next;
    next = atomic_load_explicit(&tail->next, memory_order_acquire);
  }
  if (next != NULL) {
    q->tail = next;
    return tail;
  }
  /* tail is the last linked node; if a producer has moved head past it, its
   * link is in flight: let the caller retry. */
  if (tail != atomic_load_explicit(&q->head, memory_order_acquire))
    return NULL;
  /* Re-insert the stub so that tail can be handed out. */
  tw__mpsc_push(q, &q->stub);
  next = atomic_load_explicit(&tail->next, memory_order_acquire);
  if (next != NULL) {
    q->tail = next;
    return tail;
  }
  return NULL;
}

/* Pop a node the caller knows was pushed (by a count): never NULL. */
static inline tw__mpsc_node *tw__mpsc_pop_wait(tw__mpsc *q) {
  unsigned spins = 0;
  tw__mpsc_node *n;
  while ((n = tw__mpsc_pop(q)) == NULL) {
    if (++spins > 64) sched_yield();
  }
  return n;
}

#endif
