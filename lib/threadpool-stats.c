/*
 * lib/threadpool-stats.c - the thread pool's clock and statistics
 * (tw_threadpool_stats, threadpool.h): job timing in TSC ticks, the pool
 * threads' own slots, and the figures read from them, the pool's counters
 * and its team.
 */
#include "threadpool-struct.h"

#include <string.h>

/* ---- Clock ----------------------------------------------------------------- */

/* The TSC's rate is measured against uv_hrtime between two stamps: one taken
 * when the process's first pool is made, the other when statistics are first
 * read, at least 2 ms later. Measuring at creation spun 2 ms (64,000
 * uv_hrtime calls on our VM) for statistics most programs never read: the
 * process's first tw_threadpool_new + free took 2.3-2.5 ms, now 0.25-0.3 ms
 * (first-call costs: symbol binding, page faults), later ones ~1 us (clang
 * release build). A longer span only makes the rate more exact; a read
 * within 2 ms of the first pool spins the rest of the 2 ms. */
static double tw__ns_per_tick = 1.0;
int tw__tsc_ok;
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

void tw__tp_clock_init(void) { uv_once(&tw__tsc_once, tw__tsc_probe); }

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

tw__tp_slot *tw__tp_slot_of(tw_threadpool *tp, int in_job) {
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

void tw__tp_slots_free(tw_threadpool *tp) {
  tw__tp_slot *slot = atomic_load_explicit(&tp->slots, memory_order_acquire),
              *next;
  for (; slot != NULL; slot = next) {
    next = slot->next;
    tw__free_lines(slot);
  }
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
