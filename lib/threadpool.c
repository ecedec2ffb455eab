/*
 * lib/threadpool.c - Twisted's ThreadPool (threadpool.h), on a team or on
 * libuv's own pool; its clock (TSC ticks) and statistics at the end.
 *
 * As in Twisted, the pool is a thin layer over a team (tw_pool_new: thread
 * workers coordinated by the serial worker) whose worker limit is the
 * pool's "current limit": 0 until start and after stop, max in between.
 * The team does the scheduling (idle workers, backlog, shrink debt); the
 * pool adds start/stop/adjust_poolsize, the job wrapper (timing, counting,
 * fn -> arg_free -> on_result) and the guarantees Twisted lacks:
 *
 * - Gates. stop must free the team (only that releases a backlog no thread
 *   will serve: the cleanup path), while other threads may still be inside
 *   a submission or reading statistics through it. A gate (lib/gate.h)
 *   is one word: entering is a CAS that fails once the gate is closed; the
 *   closer waits until the count drains to 0. The submit
 *   gate closes when stop begins, so every accepted job reaches the team
 *   before the team quits; the team gate closes when the team is about to
 *   be freed, and stats fall back to the final figures; the jobs gate (uv
 *   pools) counts jobs not yet finished, since libuv has no join.
 *
 * - Ownership of a job. The wrapper is handed to the worker with its own
 *   arg_free (tw__tp_after), which the worker calls exactly once: after the
 *   wrapper ran, or instead of it when the job was dropped (the team freed
 *   with a backlog, a uv pool stopped before it started). The latter is the
 *   cleanup path: arg_free(arg), then on_result(CancelledError).
 *
 * - Frames. A thread-local stack of the pools whose user code (fn, arg_free,
 *   on_result) runs on this thread, so that stop and free called from there
 *   return TW_EDEADLK before changing anything.
 */
#include "gate.h"
#include "threadpool-internal.h"
#include "tnode.h"

#include <stdio.h>
#include <string.h>
#include <uv.h>

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#define TW__TP_TSC 1
#include <x86intrin.h>
#endif

/* ---- Clock ----------------------------------------------------------------- */

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
 *
 * The TSC's rate is measured against uv_hrtime between two stamps: one
 * taken when the process's first pool is made, the other when statistics
 * are first read, at least 2 ms later. Measuring at creation spun 2 ms
 * (64,000 uv_hrtime calls on our VM) for statistics most programs never
 * read: the process's first tw_threadpool_new + free took 2.3-2.5 ms, now
 * 0.25-0.3 ms (first-call costs: symbol binding, page faults), later ones
 * ~1 us (clang release build). A longer span only makes the rate more
 * exact; a read within 2 ms of the first pool spins the rest of the 2 ms.
 */
static double tw__ns_per_tick = 1.0;
static int tw__tsc_ok; /* set once, by tw__tp_clock_init */
static uv_once_t tw__tsc_once = UV_ONCE_INIT;
#if TW__TP_TSC
#include <cpuid.h>
static uv_once_t tw__tsc_rate_once = UV_ONCE_INIT;
static uint64_t tw__tsc_t0, tw__tsc_c0; /* the first stamp: probe */

static void tw__tsc_probe(void) {
  unsigned a, b, c, d;
  /* CPUID 0x80000007, EDX bit 8: the TSC runs at a constant rate in every
   * power state. */
  if (!__get_cpuid(0x80000007u, &a, &b, &c, &d) || !((d >> 8) & 1u)) return;
  tw__tsc_t0 = uv_hrtime();
  tw__tsc_c0 = (uint64_t)__rdtsc();
  tw__tsc_ok = 1;
}

static void tw__tsc_rate(void) {
  uint64_t t1, c1;
  do {
    t1 = uv_hrtime();
    c1 = (uint64_t)__rdtsc();
  } while (t1 - tw__tsc_t0 < 2000000);
  /* Counted in ticks since the first pool: ns it is not, but a counter that
   * went backwards gives no better rate. */
  if (c1 > tw__tsc_c0)
    tw__ns_per_tick = (double)(t1 - tw__tsc_t0) / (double)(c1 - tw__tsc_c0);
}
#else
static void tw__tsc_probe(void) {}
#endif

/* Choose the clock and stamp it, once per process (the first pool made);
 * the TSC's rate is measured at the first statistics read. */
static void tw__tp_clock_init(void) { uv_once(&tw__tsc_once, tw__tsc_probe); }

static inline uint64_t tw__tp_ticks(void) {
#if TW__TP_TSC
  return tw__tsc_ok ? (uint64_t)__rdtsc() : uv_hrtime();
#else
  return uv_hrtime();
#endif
}

/* ---- Layout ---------------------------------------------------------------- */

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

/* ---- Slots ------------------------------------------------------------------ */

static TW__TLS tw_threadpool *tw__tp_mine_tp;
static TW__TLS tw__tp_slot *tw__tp_mine;

/* The thread is leaving: its slot is free for the next one. */
static void tw__tp_slot_leave(void) {
  if (tw__tp_mine == NULL) return;
  atomic_store_explicit(&tw__tp_mine->taken, 0, memory_order_release);
  tw__tp_mine = NULL;
  tw__tp_mine_tp = NULL;
}

static tw__tp_slot *tw__tp_slot_of(tw_threadpool *tp, int in_job) {
  tw__tp_slot *slot;
  /* Claimed by one of the pool's own threads, which are joined before the
   * slots go: anything this thread runs for tp may count there. */
  if (TW__LIKELY(tw__tp_mine_tp == tp)) return tw__tp_mine;
  if (tp->uv || tp->team == NULL || in_job || tw__tp_mine != NULL ||
      tw__team_on_member_thread() != tp->team)
    return NULL;
  uv_mutex_lock(&tp->sync);
  for (slot = atomic_load_explicit(&tp->slots, memory_order_relaxed);
       slot != NULL; slot = slot->next)
    if (!atomic_load_explicit(&slot->taken, memory_order_acquire)) break;
  if (slot == NULL && (slot = tw__calloc_lines(sizeof(*slot))) != NULL) {
    slot->next = atomic_load_explicit(&tp->slots, memory_order_relaxed);
    atomic_store_explicit(&tp->slots, slot, memory_order_release);
  }
  if (slot != NULL) atomic_store_explicit(&slot->taken, 1, memory_order_relaxed);
  uv_mutex_unlock(&tp->sync);
  if (slot == NULL) return NULL;
  tw__tp_mine = slot;
  tw__tp_mine_tp = tp;
  tw__thread_exit_hook = tw__tp_slot_leave;
  return slot;
}

static void tw__tp_slots_free(tw_threadpool *tp) {
  tw__tp_slot *slot = atomic_load_explicit(&tp->slots, memory_order_acquire),
              *next;
  for (; slot != NULL; slot = next) {
    next = slot->next;
    tw__free_lines(slot);
  }
}

/* ---- Limits ---------------------------------------------------------------- */

#define TW__TP_MAX_THREADS 1024

_Static_assert(sizeof(tw__tp_job) <= TW__TNODE_SIZE, "a job must fit a tnode");

/* ---- Frames --------------------------------------------------------------- */

typedef struct tw__tp_frame {
  const tw_threadpool *tp;
  struct tw__tp_frame *prev;
} tw__tp_frame;

static TW__TLS tw__tp_frame *tw__tp_frames;

static void tw__tp_enter(tw__tp_frame *f, const tw_threadpool *tp) {
  f->tp = tp;
  f->prev = tw__tp_frames;
  tw__tp_frames = f;
}

static void tw__tp_leave(tw__tp_frame *f) { tw__tp_frames = f->prev; }

static int tw__tp_inside(const tw_threadpool *tp) {
  const tw__tp_frame *f;
  for (f = tw__tp_frames; f != NULL; f = f->prev)
    if (f->tp == tp) return 1;
  return 0;
}

/* ---- Jobs --------------------------------------------------------------------- */

/*
 * Jobs are allocated by submitters and released on pool threads: from the
 * submitting thread's node slab, as the serial worker's nodes are (malloc
 * here and free there costs glibc its arena lock, and a pool's backlog can
 * outgrow any fixed freelist).
 */
static tw__tp_job *tw__tp_job_new(void) { return tw__tnode_get(); }

/* The pool is done with the job: its last access to it. */
static void tw__tp_job_release(tw__tp_job *job) {
  if (!(job->submit_ns & TW__TP_EXT))
    tw__tnode_put(job);
  else if (job->u.tp->uv)
    tw__tnode_put(TW__CONTAINER_OF(job, tw__tp_job_ext, base));
  /* else the team releases the node with the task in its room, after
   * this (the worker's arg_free) returns */
}

static void tw__tp_add(_Atomic uint64_t *counter, uint64_t n) {
  atomic_fetch_add_explicit(counter, n, memory_order_relaxed);
}

/*
 * For the counters of a job's later stages (begun, completed, cancelled):
 * a reader that loads one of them (stats, in order from the latest stage)
 * also sees the earlier stages of the same jobs, so no figure overtakes
 * the one before it.
 */
static void tw__tp_count(_Atomic uint64_t *counter) {
  atomic_fetch_add_explicit(counter, 1, memory_order_release);
}

/*
 * What on_result receives: fn's failure if it reported one (it wins over
 * the value, which is released), else fn's result unless it cannot cross
 * threads or is malformed.
 */
static tw_result tw__tp_checked(tw_result r, tw_failure *failure) {
  if (failure != NULL) {
    tw_result_release(r);
    return tw_result_failure(failure);
  }
  switch (r.kind) {
    case TW_RESULT_VALUE:
      return r;
    case TW_RESULT_FAILURE:
      if (r.u.failure != NULL) return r;
      break;
    case TW_RESULT_DEFERRED:
      /* A Deferred belongs to one thread; on_result runs on this one. */
      tw_result_release(r);
      return tw_result_failure(tw_failure_new(
          &TW_TYPE_ERROR, 0,
          "a thread pool job returned a Deferred; return its value instead"));
  }
  return tw_result_failure(tw_failure_new(
      &TW_VALUE_ERROR, 0, "a thread pool job returned a malformed result"));
}

/* The wrapper, on a pool thread (or in tw_memory_worker_perform). */
static void tw__tp_run(void *p) {
  tw__tp_job *job = p;
  tw_threadpool *tp = job->u.tp;
  tw__tp_frame f;
  uint64_t start = tw__tp_ticks(), end;
  uint64_t submit = job->submit_ns & ~TW__TP_MARKS;
  tw__tp_slot *slot = tw__tp_slot_of(tp, tw__tp_frames != NULL);
  job->submit_ns &= TW__TP_EXT; /* ran */
  if (slot != NULL)
    tw__tp_slot_bump(&slot->wait, start > submit ? start - submit : 0,
                     memory_order_relaxed);
  else
    tw__tp_add(&tp->wait_ns, start > submit ? start - submit : 0);
  if (tp->uv) tw__tp_count(&tp->begun);
  tw__tp_enter(&f, tp);
  if (job->on_result == NULL) {
    job->fn.call(job->arg);
    /* A failure stays pending for the team's log_exception (Twisted's
     * log.err), or the uv worker's log. */
    if (job->arg_free != NULL) job->arg_free(job->arg);
  } else {
    tw_result r = job->fn.result(job->arg);
    r = tw__tp_checked(r, tw_work_take_failure());
    /* The work is released before on_result, as Twisted does; unless the
     * result is arg itself, which then moves into it. */
    if (!tw__result_adopt_arg(&r, job->arg, job->arg_free) &&
        job->arg_free != NULL)
      job->arg_free(job->arg);
    /* on_result's failure stays pending for the team, as an exception
     * from Twisted's onResult propagates to Team. */
    job->on_result(r, job->ctx);
  }
  tw__tp_leave(&f);
  end = tw__tp_ticks();
  if (slot != NULL) {
    tw__tp_slot_bump(&slot->run, end > start ? end - start : 0,
                     memory_order_relaxed);
    tw__tp_slot_bump(&slot->completed, 1, memory_order_release);
  } else {
    tw__tp_add(&tp->run_ns, end > start ? end - start : 0);
    tw__tp_count(&tp->completed);
  }
}

/*
 * The cleanup path, for a job that will never run: on the thread that
 * drops it (stop or free). Takes why.
 */
static void tw__tp_cancel(tw__tp_job *job, tw_failure *why) {
  tw_threadpool *tp = job->u.tp;
  tw__tp_frame f;
  tw_failure **slot = tw__work_failure_slot();
  tw_failure *outer = tw__work_stash(slot);
  tw__tp_enter(&f, tp);
  if (job->arg_free != NULL) job->arg_free(job->arg);
  if (job->on_result != NULL)
    job->on_result(tw_result_failure(why), job->ctx);
  else
    tw_failure_unref(why);
  tw__work_log_pending("Unhandled error in thread pool on_result");
  tw__tp_leave(&f);
  tw__work_unstash(slot, outer);
  tw__tp_count(&tp->cancelled);
}

/* Why a job dropped by the team never ran: its team could make no thread
 * for it (the team logged that), or the pool stopped first. */
static tw_failure *tw__tp_cancelled(const tw__tp_job *job) {
  int err = tw__team_drop_error(job->u.tp->team);
  if (job->on_result == NULL) return NULL;
  if (err != 0) return tw_failure_from_code(err);
  return tw_failure_new(&TW_CANCELLED_ERROR, TW_ECANCELLED,
                        "the thread pool stopped before the job could run");
}

/* The worker's arg_free for the wrapper: once, after it ran or instead. */
static void tw__tp_after(void *p) {
  tw__tp_job *job = p;
  tw_threadpool *tp = job->u.tp;
  if (job->submit_ns & TW__TP_PENDING)
    tw__tp_cancel(job, tw__tp_cancelled(job));
  tw__tp_job_release(job);
  /* The last touch of tp: a uv pool may be freed as soon as this is done. */
  if (tp->uv) tw__gate_leave(&tp->jobs_gate, &tp->sync, &tp->cond);
}

/* ---- Submission --------------------------------------------------------------- */

static int tw__tp_uv_hand(tw_threadpool *tp, tw__tp_job *job) {
  return tw_worker_do_full(tp->worker, tw__tp_run, job, tw__tp_after);
}

/* Hand over, or hold until start (decided under ctl, where start takes the
 * held jobs, so none is left behind). */
static int tw__tp_uv_submit(tw_threadpool *tp, tw__tp_job *job) {
  int rc;
  /* Cannot fail: the jobs gate closes only after the submit gate. */
  (void)tw__gate_enter(&tp->jobs_gate);
  if (!atomic_load_explicit(&tp->open, memory_order_acquire)) {
    uv_mutex_lock(&tp->ctl);
    if (!atomic_load_explicit(&tp->open, memory_order_relaxed)) {
      TW__FIFO_PUSH(&tp->held, job, u.next);
      uv_mutex_unlock(&tp->ctl);
      return 0;
    }
    uv_mutex_unlock(&tp->ctl);
  }
  rc = tw__tp_uv_hand(tp, job);
  if (rc != 0) tw__gate_leave(&tp->jobs_gate, &tp->sync, &tp->cond);
  return rc;
}

/* Hand a filled job to the pool's worker; the task of a caller's job
 * (ext) sits in its room when the worker is a team. */
static int tw__tp_hand(tw_threadpool *tp, tw__tp_job *job, int ext) {
  if (tp->uv) return tw__tp_uv_submit(tp, job);
  if (ext && tw__is_team(tp->worker))
    return tw__team_do_room(tp->worker,
                            &TW__CONTAINER_OF(job, tw__tp_job_ext, base)->room,
                            tw__tp_run, job, tw__tp_after);
  return tw_worker_do_full(tp->worker, tw__tp_run, job, tw__tp_after);
}

/* Fill job (from a tnode, or the caller's: ext) and hand it over, through
 * the submit gate unless owned (see tw__threadpool_submit_ext). On error
 * the job is still the caller's. */
static int tw__tp_submit_job(tw_threadpool *tp, tw__tp_job *job, int ext,
                             int owned, tw_call_fn fn, tw_result_fn rfn,
                             void *arg, tw_free_fn arg_free,
                             tw_on_result_fn on_result, void *ctx) {
  int rc;
  if (owned && !tp->uv) {
    if (atomic_load_explicit(&tp->submit_gate, memory_order_relaxed) &
        TW__GATE_CLOSED)
      return TW_EALREADYQUIT;
  } else {
    owned = 0;
    rc = tw__gate_enter(&tp->submit_gate);
    if (rc != 0) return rc;
  }
  job->u.tp = tp;
  if (on_result == NULL)
    job->fn.call = fn;
  else
    job->fn.result = rfn;
  job->arg = arg;
  job->arg_free = arg_free;
  job->on_result = on_result;
  job->ctx = ctx;
  job->submit_ns = (tw__tp_ticks() & ~TW__TP_MARKS) | TW__TP_PENDING |
                   (ext ? TW__TP_EXT : 0);
  if (owned) {
    /* The team refuses once it quits: no gate needed to keep the job from
     * being accepted by a stopped pool, and no free can run meanwhile. */
    uint64_t n =
        atomic_load_explicit(&tp->submitted_owned, memory_order_relaxed);
    atomic_store_explicit(&tp->submitted_owned, n + 1, memory_order_relaxed);
    rc = tw__tp_hand(tp, job, ext);
    if (rc != 0)
      atomic_store_explicit(&tp->submitted_owned, n, memory_order_relaxed);
    return rc;
  }
  /* Counted before any thread can see the job (tw__tp_count). */
  tw__tp_add(&tp->submitted, 1);
  rc = tw__tp_hand(tp, job, ext);
  if (rc != 0) atomic_fetch_sub_explicit(&tp->submitted, 1, memory_order_relaxed);
  tw__gate_leave(&tp->submit_gate, &tp->sync, &tp->cond);
  return rc;
}

static int tw__tp_submit(tw_threadpool *tp, tw_call_fn fn, tw_result_fn rfn,
                         void *arg, tw_free_fn arg_free,
                         tw_on_result_fn on_result, void *ctx) {
  tw__tp_job *job = tw__tp_job_new();
  int rc;
  if (job == NULL) return TW_ENOMEM;
  rc = tw__tp_submit_job(tp, job, 0, 0, fn, rfn, arg, arg_free, on_result,
                         ctx);
  if (rc != 0) tw__tnode_put(job);
  return rc;
}

void tw__threadpool_own(tw_threadpool *tp, int (*is_owner)(void *owner),
                        void *owner) {
  tp->is_owner = is_owner;
  tp->owner = owner;
}

int tw__threadpool_submit_ext(tw_threadpool *tp, tw__tp_job_ext *ext,
                              int owned, tw_result_fn fn, void *arg,
                              tw_on_result_fn on_result, void *ctx) {
  return tw__tp_submit_job(tp, &ext->base, 1, owned, NULL, fn, arg, NULL,
                           on_result, ctx);
}

int tw_threadpool_call_in_thread(tw_threadpool *tp, tw_call_fn fn, void *arg,
                                 tw_free_fn arg_free) {
  if (tp == NULL || fn == NULL) return TW_EINVAL;
  return tw__tp_submit(tp, fn, NULL, arg, arg_free, NULL, NULL);
}

int tw_threadpool_call_in_thread_with_callback(tw_threadpool *tp,
                                               tw_on_result_fn on_result,
                                               void *ctx, tw_result_fn fn,
                                               void *arg,
                                               tw_free_fn arg_free) {
  if (tp == NULL || fn == NULL || on_result == NULL) return TW_EINVAL;
  return tw__tp_submit(tp, NULL, fn, arg, arg_free, on_result, ctx);
}

/* ---- Creation ----------------------------------------------------------------- */

/* Twisted's currentLimit(), read by the team in its coordinator. */
static size_t tw__tp_limit(void *ctx) {
  tw_threadpool *tp = ctx;
  if (!atomic_load_explicit(&tp->started, memory_order_acquire)) return 0;
  return (size_t)atomic_load_explicit(&tp->max, memory_order_relaxed);
}

static int tw__tp_default_team(tw_team **out, tw_pool_limit_fn current_limit,
                               void *limit_ctx, const char *name, void *ctx) {
  (void)ctx;
  return tw_pool_new(out, current_limit, limit_ctx, name);
}

static void tw__tp_destroy(tw_threadpool *tp) {
  tw__tp_slots_free(tp);
  uv_cond_destroy(&tp->cond);
  uv_mutex_destroy(&tp->sync);
  uv_mutex_destroy(&tp->ctl);
  tw__free_lines(tp);
}

static int tw__tp_alloc(tw_threadpool **out, int min, int max,
                        const char *name) {
  tw_threadpool *tp = tw__calloc_lines(sizeof(*tp));
  int rc;
  if (tp == NULL) return TW_ENOMEM;
  rc = uv_mutex_init(&tp->ctl);
  if (rc != 0) goto fail_ctl;
  rc = uv_mutex_init(&tp->sync);
  if (rc != 0) goto fail_sync;
  rc = uv_cond_init(&tp->cond);
  if (rc != 0) goto fail_cond;
  atomic_init(&tp->min, min);
  atomic_init(&tp->max, max);
  atomic_init(&tp->started, 0);
  atomic_init(&tp->joined, 0);
  atomic_init(&tp->open, 0);
  atomic_init(&tp->submit_gate, 0);
  atomic_init(&tp->team_gate, 0);
  atomic_init(&tp->jobs_gate, 0);
  atomic_init(&tp->submitted, 0);
  atomic_init(&tp->submitted_owned, 0);
  atomic_init(&tp->completed, 0);
  atomic_init(&tp->cancelled, 0);
  atomic_init(&tp->begun, 0);
  atomic_init(&tp->wait_ns, 0);
  atomic_init(&tp->run_ns, 0);
  atomic_init(&tp->slots, NULL);
  tw__tp_clock_init();
  atomic_init(&tp->threads_final, 0);
  snprintf(tp->name, sizeof(tp->name), "%s", name != NULL ? name : "tw-pool");
  *out = tp;
  return 0;
fail_cond:
  uv_mutex_destroy(&tp->sync);
fail_sync:
  uv_mutex_destroy(&tp->ctl);
fail_ctl:
  tw__free_lines(tp);
  return rc;
}

int tw_threadpool_new_custom(tw_threadpool **out, int min_threads,
                             int max_threads, const char *name,
                             tw_threadpool_team_fn create_team, void *ctx) {
  tw_threadpool *tp;
  tw_team *team = NULL;
  int rc;
  if (out == NULL || create_team == NULL || min_threads < 0 ||
      max_threads < min_threads || max_threads > TW__TP_MAX_THREADS)
    return TW_EINVAL;
  rc = tw__tp_alloc(&tp, min_threads, max_threads, name);
  if (rc != 0) return rc;
  rc = create_team(&team, tw__tp_limit, tp, tp->name, ctx);
  if (rc == 0 && team == NULL) rc = TW_EINVAL;
  if (rc != 0) goto fail_team;
  tp->team = team;
  tp->worker = tw_team_worker(team);
  *out = tp;
  return 0;
fail_team:
  tw__tp_destroy(tp);
  return rc;
}

int tw_threadpool_new(tw_threadpool **out, int min_threads, int max_threads,
                      const char *name) {
  return tw_threadpool_new_custom(out, min_threads, max_threads, name,
                                  tw__tp_default_team, NULL);
}

int tw_threadpool_new_uv(tw_threadpool **out, struct uv_loop_s *loop) {
  tw_threadpool *tp;
  int rc;
  if (out == NULL || loop == NULL) return TW_EINVAL;
  rc = tw__tp_alloc(&tp, 0, 0, "uv");
  if (rc != 0) return rc;
  tp->uv = 1;
  tp->loop_thread = uv_thread_self();
  rc = tw_uv_worker_new(&tp->worker, loop);
  if (rc != 0) goto fail_worker;
  *out = tp;
  return 0;
fail_worker:
  tw__tp_destroy(tp);
  return rc;
}

/* ---- start, adjust_poolsize --------------------------------------------------- */

/* The part of Twisted's adjustPoolsize that acts on a started pool. */
static int tw__tp_resize(tw_threadpool *tp, int min, int max) {
  tw_team_stats st;
  size_t workers;
  (void)tw_team_statistics(tp->team, &st);
  workers = st.idle + st.busy;
  if (workers > (size_t)max)
    return tw_team_shrink(tp->team, (int)(workers - (size_t)max));
  if (workers < (size_t)min)
    return tw_team_grow(tp->team, (int)((size_t)min - workers));
  return 0;
}

/* uv: hand over what waited for start (outside ctl: it may take long). */
static void tw__tp_uv_open(tw_threadpool *tp, tw__tp_job *held) {
  while (held != NULL) {
    tw__tp_job *job = held;
    int rc;
    held = job->u.next;
    job->u.tp = tp;
    rc = tw__tp_uv_hand(tp, job);
    if (rc != 0) {
      /* Accepted long ago: it must end somewhere, and visibly. */
      tw_failure *f = tw_failure_from_code(rc);
      tw__log_at(TW_LOG_ERROR, f, NULL, 0,
                 "thread pool: a job could not be handed to libuv at start");
      if (job->on_result == NULL) {
        tw_failure_unref(f);
        f = NULL;
      }
      tw__tp_cancel(job, f);
      tw__tp_job_release(job);
      tw__gate_leave(&tp->jobs_gate, &tp->sync, &tp->cond);
    }
  }
}

int tw_threadpool_start(tw_threadpool *tp) {
  tw_team_stats st;
  tw__tp_job *held;
  int rc = 0;
  if (tp == NULL) return TW_EINVAL;
  uv_mutex_lock(&tp->ctl);
  if (tp->stop_called) {
    uv_mutex_unlock(&tp->ctl);
    return TW_EALREADYQUIT;
  }
  if (atomic_load_explicit(&tp->started, memory_order_relaxed)) {
    uv_mutex_unlock(&tp->ctl);
    return 0;
  }
  atomic_store_explicit(&tp->started, 1, memory_order_release);
  if (tp->uv) {
    TW__FIFO_TAKE(&tp->held, held);
    atomic_store_explicit(&tp->open, 1, memory_order_release);
    /* Open: stop is not called yet, and cannot close it before ctl is
     * released; stop then waits for the hand-over. */
    (void)tw__gate_enter(&tp->submit_gate);
    uv_mutex_unlock(&tp->ctl);
    tw__tp_uv_open(tp, held);
    tw__gate_leave(&tp->submit_gate, &tp->sync, &tp->cond);
    return 0;
  }
  /* Twisted: adjustPoolsize() (grow to min), then grow by the backlog; the
   * team's create_worker caps both at max. */
  rc = tw__tp_resize(tp, atomic_load(&tp->min), atomic_load(&tp->max));
  if (rc == 0) {
    (void)tw_team_statistics(tp->team, &st);
    if (st.backlog > 0) {
      int max = atomic_load_explicit(&tp->max, memory_order_relaxed);
      int n = st.backlog < (size_t)max ? (int)st.backlog : max;
      if (n > 0) rc = tw_team_grow(tp->team, n);
    }
  }
  /*
   * The grows are steps the team allocates. Without them (no memory), the
   * jobs held until now would wait for a thread that nothing creates until
   * the next submission, which may never come. The serve step (no
   * allocation with our coordinator) gives the backlog a thread, or fails
   * it with the error; the pool is then started and makes its threads as
   * work arrives. Only a custom team whose coordinator refuses leaves the
   * pool unstarted (start can be tried again; the jobs stay held).
   */
  if (rc == 0 || rc == TW_ENOMEM) rc = tw__team_serve(tp->team);
  if (rc != 0) atomic_store_explicit(&tp->started, 0, memory_order_release);
  uv_mutex_unlock(&tp->ctl);
  return rc;
}

int tw_threadpool_adjust_poolsize(tw_threadpool *tp, int min_threads,
                                  int max_threads) {
  int old_min, old_max, rc = 0;
  if (tp == NULL || min_threads < -1 || max_threads < -1) return TW_EINVAL;
  if (tp->uv) return TW_ENOTSUP;
  uv_mutex_lock(&tp->ctl);
  if (tp->stop_called) {
    uv_mutex_unlock(&tp->ctl);
    return TW_EALREADYQUIT;
  }
  old_min = atomic_load_explicit(&tp->min, memory_order_relaxed);
  old_max = atomic_load_explicit(&tp->max, memory_order_relaxed);
  if (min_threads == -1) min_threads = old_min;
  if (max_threads == -1) max_threads = old_max;
  if (max_threads < min_threads || max_threads > TW__TP_MAX_THREADS) {
    uv_mutex_unlock(&tp->ctl);
    return TW_EINVAL;
  }
  atomic_store_explicit(&tp->min, min_threads, memory_order_relaxed);
  atomic_store_explicit(&tp->max, max_threads, memory_order_release);
  if (atomic_load_explicit(&tp->started, memory_order_relaxed)) {
    rc = tw__tp_resize(tp, min_threads, max_threads);
    /* Work that waited while max was 0 gets a thread now (the grow above
     * makes only the minimum). Cannot fail with our coordinator; a custom
     * one that refuses leaves it to the next submission. */
    if (rc == 0) (void)tw__team_serve(tp->team);
    if (rc != 0) {
      atomic_store_explicit(&tp->min, old_min, memory_order_relaxed);
      atomic_store_explicit(&tp->max, old_max, memory_order_release);
    }
  }
  uv_mutex_unlock(&tp->ctl);
  return rc;
}

/* ---- stop, free ------------------------------------------------------------------ */

static int tw__tp_finish_team(tw_threadpool *tp) {
  tw_team_stats st;
  int rc;
  if (!tp->team_quit) {
    rc = tw_worker_quit(tp->worker);
    if (rc != 0 && rc != TW_EALREADYQUIT) return rc;
    tp->team_quit = 1;
  }
  /* TW_EDEADLK only from inside the team but outside any job (a log
   * handler): the pool is quit and free finishes the join. */
  rc = tw_team_join(tp->team);
  if (rc != 0) return rc;
  (void)tw_team_statistics(tp->team, &st);
  atomic_store_explicit(&tp->threads_final, st.created, memory_order_relaxed);
  tw__gate_close_wait(&tp->team_gate, &tp->sync, &tp->cond);
  /* Drops the backlog no thread was left to serve: the cleanup path. */
  (void)tw_worker_free(tp->worker);
  tp->worker = NULL;
  tp->team = NULL;
  return 0;
}

static int tw__tp_finish_uv(tw_threadpool *tp) {
  tw__tp_job *held;
  int rc;
  if (tp->worker != NULL) {
    /* Hands what other threads queued to libuv, closes the handle. */
    rc = tw_worker_free(tp->worker);
    if (rc != 0) return rc;
    tp->worker = NULL;
  }
  uv_mutex_lock(&tp->ctl);
  TW__FIFO_TAKE(&tp->held, held);
  uv_mutex_unlock(&tp->ctl);
  while (held != NULL) {
    tw__tp_job *job = held;
    held = job->u.next;
    job->u.tp = tp;
    tw__tp_after(job); /* never ran: cancelled */
  }
  /* libuv has no join: wait for the jobs themselves. */
  tw__gate_close_wait(&tp->jobs_gate, &tp->sync, &tp->cond);
  return 0;
}

/* Quit, join and release the team (or the uv worker), once. */
static int tw__tp_finish(tw_threadpool *tp) {
  int rc;
  uv_mutex_lock(&tp->sync);
  while (tp->finishing) uv_cond_wait(&tp->cond, &tp->sync);
  if (tp->finished) {
    uv_mutex_unlock(&tp->sync);
    return 0;
  }
  tp->finishing = 1;
  uv_mutex_unlock(&tp->sync);
  rc = tp->uv ? tw__tp_finish_uv(tp) : tw__tp_finish_team(tp);
  uv_mutex_lock(&tp->sync);
  tp->finishing = 0;
  if (rc == 0) {
    tp->finished = 1;
    atomic_store_explicit(&tp->joined, 1, memory_order_release);
  }
  uv_cond_broadcast(&tp->cond);
  uv_mutex_unlock(&tp->sync);
  return rc;
}

/* What stop and free refuse before changing anything. */
static int tw__tp_check_caller(const tw_threadpool *tp) {
  if (tw__tp_inside(tp)) return TW_EDEADLK;
  if (tp->is_owner != NULL) {
    if (!tp->is_owner(tp->owner)) return TW_EWRONGTHREAD;
  } else if (tp->uv) {
    uv_thread_t self = uv_thread_self();
    if (!uv_thread_equal(&self, &tp->loop_thread)) return TW_EWRONGTHREAD;
  }
  return 0;
}

int tw_threadpool_stop(tw_threadpool *tp) {
  int rc;
  if (tp == NULL) return TW_EINVAL;
  rc = tw__tp_check_caller(tp);
  if (rc != 0) return rc;
  uv_mutex_lock(&tp->ctl);
  if (tp->stop_called) {
    uv_mutex_unlock(&tp->ctl);
    return TW_EALREADYQUIT;
  }
  tp->stop_called = 1;
  /* Twisted: started = False, so currentLimit() is 0 from now on. */
  atomic_store_explicit(&tp->started, 0, memory_order_release);
  uv_mutex_unlock(&tp->ctl);
  /* Every accepted job reaches the team before it quits. */
  tw__gate_close_wait(&tp->submit_gate, &tp->sync, &tp->cond);
  return tw__tp_finish(tp);
}

int tw_threadpool_free(tw_threadpool *tp) {
  int rc;
  if (tp == NULL) return TW_EINVAL;
  rc = tw__tp_check_caller(tp);
  if (rc != 0) return rc;
  rc = tw_threadpool_stop(tp);
  /* Stopped before (or a stop that could not finish): finish it here. */
  if (rc == TW_EALREADYQUIT) rc = tw__tp_finish(tp);
  if (rc != 0) return rc;
  tw__tp_destroy(tp);
  return 0;
}

/* ---- Statistics ------------------------------------------------------------- */

static size_t tw__tp_diff(uint64_t a, uint64_t b) {
  return a > b ? (size_t)(a - b) : 0;
}

/* A sum of tw__tp_ticks() differences, in ns. */
static uint64_t tw__tp_to_ns(uint64_t ticks) {
  double v;
  if (!tw__tsc_ok || ticks == 0) return ticks;
#if TW__TP_TSC
  uv_once(&tw__tsc_rate_once, tw__tsc_rate);
#endif
  v = (double)ticks * tw__ns_per_tick;
  if (v >= 18e18) return UINT64_MAX;
  return v >= 1.0 ? (uint64_t)v : 1; /* some time passed: never none */
}

/* completed, and the threads' ticks in queue_wait_ns and run_ns. */
static void tw__tp_sum_slots(tw_threadpool *tp, tw_threadpool_statistics *out) {
  const tw__tp_slot *slot;
  out->completed = atomic_load(&tp->completed);
  for (slot = atomic_load_explicit(&tp->slots, memory_order_acquire);
       slot != NULL; slot = slot->next) {
    out->completed +=
        atomic_load_explicit(&slot->completed, memory_order_acquire);
    out->queue_wait_ns +=
        atomic_load_explicit(&slot->wait, memory_order_relaxed);
    out->run_ns += atomic_load_explicit(&slot->run, memory_order_relaxed);
  }
}

int tw_threadpool_stats(const tw_threadpool *ctp,
                        tw_threadpool_statistics *out) {
  /* C11 atomic operations take non-const pointers; the gate's count is the
   * only thing written. */
  tw_threadpool *tp = (tw_threadpool *)ctp;
  uint64_t begun;
  if (tp == NULL || out == NULL) return TW_EINVAL;
  memset(out, 0, sizeof(*out));
  /* Later stages first, so that no figure overtakes an earlier one. */
  tw__tp_sum_slots(tp, out);
  out->cancelled = atomic_load(&tp->cancelled);
  begun = atomic_load(&tp->begun);
  out->submitted = atomic_load(&tp->submitted) +
                   atomic_load(&tp->submitted_owned);
  out->queue_wait_ns = tw__tp_to_ns(
      out->queue_wait_ns +
      atomic_load_explicit(&tp->wait_ns, memory_order_relaxed));
  out->run_ns = tw__tp_to_ns(
      out->run_ns + atomic_load_explicit(&tp->run_ns, memory_order_relaxed));
  out->started = atomic_load_explicit(&tp->started, memory_order_relaxed);
  out->joined = atomic_load_explicit(&tp->joined, memory_order_acquire);
  if (tp->uv) {
    if (!out->joined) {
      out->working = tw__tp_diff(begun, out->completed);
      out->queued = tw__tp_diff(out->submitted, begun + out->cancelled);
    }
    return 0;
  }
  out->min_threads = atomic_load_explicit(&tp->min, memory_order_relaxed);
  out->max_threads = atomic_load_explicit(&tp->max, memory_order_relaxed);
  if (tw__gate_enter(&tp->team_gate) == 0) {
    tw_team_stats st;
    (void)tw_team_statistics(tp->team, &st);
    tw__gate_leave(&tp->team_gate, &tp->sync, &tp->cond);
    out->waiters = st.idle;
    out->working = st.busy;
    out->workers = st.idle + st.busy;
    out->queued = st.backlog;
    out->threads_started = st.created;
  } else {
    out->threads_started =
        atomic_load_explicit(&tp->threads_final, memory_order_relaxed);
  }
  return 0;
}
