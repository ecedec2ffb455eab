/*
 * lib/threadpool-struct.h - the thread pool's layout and the helpers that
 * threadpool.c (the pool) and threadpool-stats.c (its clock and
 * statistics) share. Not installed; nothing else looks inside a pool.
 */
#ifndef TWUV_THREADPOOL_STRUCT_H
#define TWUV_THREADPOOL_STRUCT_H

#include "gate.h"
#include "threadpool-internal.h"

#include <uv.h>

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#define TW__TP_TSC 1
#include <x86intrin.h>
#endif

/*
 * Timing every job (queue wait, run time) takes three clock reads, one of
 * them on the submitting (often the loop) thread. clock_gettime costs
 * 25-80 ns on the virtual machines we measure on; the x86 time-stamp
 * counter about 10. So on x86 with an invariant TSC the pool counts in
 * ticks, converted to ns when statistics are read at one rate measured
 * once per process (against uv_hrtime, from the first pool made to the
 * first statistics read, at least 2 ms): a fixed rate keeps every total
 * non-decreasing from one read to the next.
 * Elsewhere it counts uv_hrtime ns. Differences are clamped at 0, in case
 * a thread moves between cores whose counters disagree slightly.
 */
extern int tw__tsc_ok; /* set once, by tw__tp_clock_init */

/* Choose the clock and stamp it, once per process (the first pool made);
 * the TSC's rate is measured at the first statistics read. */
void tw__tp_clock_init(void);

static inline uint64_t tw__tp_ticks(void) {
#if TW__TP_TSC
  return tw__tsc_ok ? (uint64_t)__rdtsc() : uv_hrtime();
#else
  return uv_hrtime();
#endif
}

/*
 * A pool thread's figures, on a line of its own: three locked additions
 * per job on one line that every pool thread writes cost a no-op job a
 * third of its time. Each of the pool's own thread workers claims a slot
 * (kept in the pool's list, which only grows, until the pool is freed),
 * adds to it with plain stores, and gives it back when its thread exits,
 * for the next thread to claim. Readers sum the slots.
 */
typedef struct tw__tp_slot {
  struct tw__tp_slot *next; /* set before the slot is published */
  atomic_int taken;
  _Atomic uint64_t completed, wait, run; /* written by the taker only */
} tw__tp_slot;

struct tw_threadpool {
  /* ---- read-mostly ---- */
  tw_worker *worker; /* the team's IWorker view, or the uv worker */
  tw_team *team;     /* NULL for a uv pool */
  int uv;
  /* Owned by a reactor (tw__threadpool_own): stop and free only where
   * is_owner says so (its loop thread, which may change between runs). */
  int (*is_owner)(void *owner);
  void *owner;
  uv_thread_t loop_thread; /* uv: where stop and free may run */

  atomic_int min, max;
  atomic_int started; /* Twisted's started: the limit is max, not 0 */
  atomic_int joined;
  atomic_int open; /* uv: start came, jobs go straight to libuv */

  /* start, stop and sizes are decided under ctl */
  uv_mutex_t ctl;
  int stop_called;
  TW__FIFO(tw__tp_job) held; /* uv: submitted before start */

  /* the gates' waits and the end of the pool, under sync */
  uv_mutex_t sync;
  uv_cond_t cond;
  int finishing, finished;
  int team_quit; /* by the finishing thread */
  tw__gate team_gate;
  tw__gate jobs_gate;
  _Atomic size_t threads_final;
  char name[64];

  /* Written by every submission, and by every job: apart, so that the
   * submitters and the pool's threads do not fight over one cache line. */
  TW__LINE_ALIGNED tw__gate submit_gate;
  _Atomic uint64_t submitted;
  /* Submissions by the pool's owner (tw__threadpool_submit_ext, owned):
   * one writer, so a plain load and store, no locked instruction. */
  _Atomic uint64_t submitted_owned;
  TW__LINE_ALIGNED _Atomic uint64_t completed, cancelled, begun;
  _Atomic uint64_t wait_ns, run_ns;
  /* The pool threads' own figures (tw__tp_slot), added to those above. */
  _Atomic(struct tw__tp_slot *) slots;
};

static inline void tw__tp_slot_bump(_Atomic uint64_t *v, uint64_t n,
                             memory_order order) {
  atomic_store_explicit(v, atomic_load_explicit(v, memory_order_relaxed) + n,
                        order);
}

/*
 * The calling thread's slot in tp, claimed now if need be. Only one of the
 * pool's own thread workers claims one (running a job directly: in_job
 * says the thread is already inside a pool's job); anything that thread
 * then runs for tp counts there. NULL otherwise, or with no memory for a
 * slot: then the figures go to the pool's shared counters.
 */
tw__tp_slot *tw__tp_slot_of(tw_threadpool *tp, int in_job);

/* Free tp's slots (tp is being destroyed: its threads are joined). */
void tw__tp_slots_free(tw_threadpool *tp);

#endif
