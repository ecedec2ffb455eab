/*
 * lib/gate.h - the count-unless-closed gate: one atomic word,
 * users * one | flags | TW__GATE_CLOSED, so that "let me in" and "close"
 * are decided by one atomic operation: an entry either lands before the
 * close (and is counted, so whoever closes knows to wait for it, or to run
 * it) or is refused with TW_EALREADYQUIT. Not installed.
 *
 * Bit 0 is CLOSED (a worker's QUIT). A user that keeps flags of its own in
 * the same word (the thread worker's SLEEP) puts them between bit 0 and
 * its unit, and passes that unit as `one`; everyone else counts in
 * TW__GATE_ONE.
 *
 * Used by: the thread pool (submit, team and jobs gates), the team (its
 * accepted external steps and QUIT), the thread worker and the uv worker
 * (accepted items and QUIT), the reactor's call_from_thread queue.
 */
#ifndef TWUV_LIB_GATE_H
#define TWUV_LIB_GATE_H

#include <stdatomic.h>
#include <stddef.h>
#include <uv.h>

#include "internal.h"

#define TW__GATE_CLOSED ((size_t)1)
#define TW__GATE_ONE ((size_t)2)

typedef _Atomic size_t tw__gate;

/*
 * Count `one` user in and clear the flags in `clear`, unless closed: 0
 * (with *old, if not NULL, the word before), or TW_EALREADYQUIT (nothing
 * changed).
 */
static inline int tw__gate_enter_ex(tw__gate *g, size_t one, size_t clear,
                                    size_t *old) {
  size_t s = atomic_load_explicit(g, memory_order_relaxed);
  do {
    if (s & TW__GATE_CLOSED) return TW_EALREADYQUIT;
  } while (!atomic_compare_exchange_weak_explicit(
      g, &s, (s + one) & ~clear, memory_order_acq_rel, memory_order_relaxed));
  if (old != NULL) *old = s;
  return 0;
}

/*
 * Count one user in with a single fetch_add, and take it back out if the
 * gate was closed: 0 (with *old, if not NULL, the word before) or
 * TW_EALREADYQUIT. No CAS loop, so it never retries under contention - for
 * hot paths with many producers (the reactor's call_from_thread). The cost:
 * a refused user is counted for a moment, so a closer waiting for the count
 * to drop sees it briefly (it must wait for those undos too).
 */
static inline int tw__gate_enter_add(tw__gate *g, size_t *old) {
  size_t s = atomic_fetch_add_explicit(g, TW__GATE_ONE, memory_order_acq_rel);
  if (s & TW__GATE_CLOSED) {
    atomic_fetch_sub_explicit(g, TW__GATE_ONE, memory_order_acq_rel);
    return TW_EALREADYQUIT;
  }
  if (old != NULL) *old = s;
  return 0;
}

static inline int tw__gate_enter(tw__gate *g) {
  return tw__gate_enter_ex(g, TW__GATE_ONE, 0, NULL);
}

/*
 * Close and clear the flags in `clear`, unless closed already: 0 (with
 * *old, if not NULL, the word before), or TW_EALREADYQUIT. Does not wait
 * for the users inside (tw__gate_close_wait does).
 */
static inline int tw__gate_shut_ex(tw__gate *g, size_t clear, size_t *old) {
  size_t s = atomic_load_explicit(g, memory_order_relaxed);
  do {
    if (s & TW__GATE_CLOSED) return TW_EALREADYQUIT;
  } while (!atomic_compare_exchange_weak_explicit(
      g, &s, (s | TW__GATE_CLOSED) & ~clear, memory_order_acq_rel,
      memory_order_relaxed));
  if (old != NULL) *old = s;
  return 0;
}

static inline int tw__gate_shut(tw__gate *g) {
  return (atomic_fetch_or_explicit(g, TW__GATE_CLOSED, memory_order_acq_rel) &
          TW__GATE_CLOSED)
             ? TW_EALREADYQUIT
             : 0;
}

/* Undo a shut whose follow-up failed (the close did not happen). */
static inline void tw__gate_reopen(tw__gate *g) {
  atomic_fetch_and_explicit(g, ~TW__GATE_CLOSED, memory_order_acq_rel);
}

/* n users leave (n * their unit); returns the word before. For gates whose
 * closer does not sleep on a condition variable (it polls, or the last
 * user acts on the value returned). */
static inline size_t tw__gate_sub(tw__gate *g, size_t n) {
  return atomic_fetch_sub_explicit(g, n, memory_order_acq_rel);
}

static inline int tw__gate_is_closed(tw__gate *g) {
  return (atomic_load_explicit(g, memory_order_acquire) & TW__GATE_CLOSED) !=
         0;
}

/* Users inside (counted in `one`). */
static inline size_t tw__gate_users(tw__gate *g, size_t one) {
  return atomic_load_explicit(g, memory_order_acquire) / one;
}

/*
 * A gate whose closer sleeps until the users are out (the thread pool's):
 * the closer and the last user meet under mutex and cond.
 */
static inline void tw__gate_leave(tw__gate *g, uv_mutex_t *mutex,
                                  uv_cond_t *cond) {
  size_t s = atomic_load_explicit(g, memory_order_relaxed);
  while (!(s & TW__GATE_CLOSED))
    if (atomic_compare_exchange_weak_explicit(g, &s, s - TW__GATE_ONE,
                                              memory_order_acq_rel,
                                              memory_order_relaxed))
      return;
  /* Closed: leave under the mutex, so that the closer, which may free the
   * gate's memory once it sees the count at 0, cannot miss the wake-up or
   * outlive our unlock. */
  uv_mutex_lock(mutex);
  if (atomic_fetch_sub_explicit(g, TW__GATE_ONE, memory_order_acq_rel) ==
      (TW__GATE_CLOSED | TW__GATE_ONE))
    uv_cond_broadcast(cond);
  uv_mutex_unlock(mutex);
}

/* Close (if not closed yet) and wait until every user has left. */
static inline void tw__gate_close_wait(tw__gate *g, uv_mutex_t *mutex,
                                       uv_cond_t *cond) {
  atomic_fetch_or_explicit(g, TW__GATE_CLOSED, memory_order_acq_rel);
  uv_mutex_lock(mutex);
  while (atomic_load_explicit(g, memory_order_acquire) != TW__GATE_CLOSED)
    uv_cond_wait(cond, mutex);
  uv_mutex_unlock(mutex);
}

#endif
