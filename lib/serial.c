/*
 * lib/serial.c - the serial worker: a lock-free exclusive executor with no
 * thread of its own (worker.h), the coordinator of twuv's teams.
 *
 * Design (docs/workers.md, "How the serial worker works"): asynchronous
 * combining with per-thread publication lanes - flat combining's
 * publication records made bounded single-producer rings - and the
 * "whoever finds it idle runs it" rule of folly's SerialExecutor and
 * libdispatch's serial queues; plus streaming (asymmetric fences, as
 * liburcu's and folly's) and biasing (biased locking, as the JVM's).
 *
 * One atomic word, state = tag | REVOKE | PARKED | STREAM | DIRTY |
 * ACTIVE | QUIT:
 *   ACTIVE clear   idle: nobody runs items, and every item queued has run
 *   ACTIVE set     a thread (the combiner) runs items
 *   DIRTY          set by a submitter that queued an item while ACTIVE was
 *                  set and DIRTY clear: the combiner must look at the lanes
 *                  before it may clear ACTIVE (only ever set with ACTIVE)
 *   QUIT           set once by quit; further submissions fail
 *   STREAM         with ACTIVE and DIRTY: submitters publish unfenced
 *   PARKED         without ACTIVE: idle, biased to the tag's thread
 *   REVOKE         with ACTIVE and DIRTY: a bias being taken away
 *   tag            which thread last handed the worker back (lingering,
 *                  biasing)
 * A do that finds the worker idle takes it (one CAS sets ACTIVE), runs its
 * item at once - no slot - and hands it back with one CAS from the value it
 * took it in: the uncontended path is two atomic operations on one line,
 * as a mutex's lock and unlock, and as the ring this replaces.
 *
 * A do that finds it busy puts the item in its thread's lane: a ring of
 * TW__S_CAP slots with one producer (the thread) and one consumer (whoever
 * is the combiner), made on that thread's first such do. It writes the
 * slot, publishes it with one store of the lane's tail (its own line) and
 * reads state: if ACTIVE and DIRTY are both set (and the store was
 * seq_cst) it is done - the combiner clears DIRTY before it runs what the
 * lanes hold, so it will see the item. Only the first submitter after a
 * clear writes state (a CAS setting DIRTY, which also orders its store);
 * if the worker went idle meanwhile, the submitter takes it and runs what
 * waits. So while the worker stays busy, submitters write
 * only their own lines and state is read-mostly: in the ring, every
 * submitter claimed its slot with a CAS on state, whose line then moved
 * between the cores on every item (2 - 8 submitters on an idle machine:
 * 0.30 - 0.79 of a mutex, docs/performance.md).
 *
 * The combiner runs the lanes round after round, at most TW__S_BATCH items
 * of a lane per round, each item followed by what it queued re-entrantly
 * (a do from inside the work, on the combiner's own thread: a list only it
 * touches, as in a lock worker). When it sees DIRTY it clears it and runs
 * rounds until one finds nothing; when DIRTY is clear it hands back with a
 * CAS that fails if a submitter set DIRTY (or quit came) meanwhile.
 *
 * Lingering: handed back the moment it catches up, a worker fed by another
 * thread's stream of dos changes hands on nearly every item (each do finds
 * it idle for an instant and takes it), and state's line crosses the cores
 * twice an item - the ring's problem again. So a combiner that ran other
 * threads' items (or, on a public do, took the worker from another
 * thread's hand-back while its own thread lately found it busy) polls for
 * more for a few microseconds (TW__S_LINGER) before handing back: the
 * others then find it busy and queue in their lanes, and it runs their
 * items in batches. A team's steps (do_item) and its inline steps
 * (tw__serial_try_run) never linger: their threads have tasks to run.
 *
 * Order: FIFO per submitting thread (a thread's items share its lane; a
 * thread that finds the worker idle knows every item it queued before has
 * run: the combiner that ran them handed back after them). Nothing between
 * threads.
 *
 * Bounded: a lane holds TW__S_CAP items. A submitter whose lane is full
 * waits - spinning, then yielding the CPU, never on a lock - until the
 * combiner has run a batch of it, or takes the worker itself if it went
 * idle. Lanes go by a thread index, unique among live threads (given back
 * when a thread exits), so at most TW__S_LANES lanes of TW__S_CAP items
 * per worker; a thread without a lane (more live submitters than lanes, or
 * no memory for one) waits until the worker is idle and runs its item
 * itself.
 *
 * Streaming: a busy do's store of its tail and read of state must not be
 * reordered (a Dekker pair with the combiner's DIRTY clear), and the full
 * barrier that takes - a locked instruction on a line the combiner has
 * just read - cost ~100 ns an item: 2 submitters ran at 8 M items/s. So a
 * combiner that has run TW__S_STREAM_AFTER lane items in one DIRTY
 * episode (public dos only) sets STREAM; a submitter that reads
 * ACTIVE|DIRTY|STREAM publishes with a plain release store and a compiler
 * barrier, and reads state again. Before a combiner clears STREAM's
 * DIRTY - its only way towards handing back - it runs the heavy barrier
 * (membarrier(PRIVATE_EXPEDITED): a barrier on every CPU running one of
 * our threads, 0.2 us here): a submitter that read STREAM had stored its
 * tail before that barrier, so the rounds after it see the item. A
 * streaming combiner that finds a lane thin waits TW__S_STREAM_GAP pauses
 * before the next round, so that its reads of the tails do not take the
 * producers' lines away from them item by item (2 submitters: 22 M
 * items/s without the gap, 45 with 64 pauses, 55 with 256 and 1024-slot
 * lanes).
 *
 * Biasing: one thread doing all the dos still pays two atomics an item
 * (take and hand back), as a mutex does. A thread that takes the worker
 * from its own hand-back TW__S_BIAS_AFTER times in a row (public dos,
 * heavy barrier available) hands it back PARKED instead of idle. Its later
 * dos, while state is exactly PARKED with its tag, set its lane's
 * `running` flag (a plain store), read state again and run the item: no
 * atomic, 2x the mutex's rate. Another thread that finds it PARKED revokes
 * (tw__serial_revoke): CAS to ACTIVE|DIRTY|REVOKE (now busy: submitters
 * queue), the heavy barrier, then `running`: 0, the biased thread is not
 * in an item, and the revoker claims the worker; 1, it is, and the revoker
 * queues its item and returns - the biased thread, reading state after its
 * item, sees REVOKE (the barrier again) and claims. If both try, clearing
 * REVOKE (one CAS) decides. Nobody waits for another's item. A revocation
 * costs ~1 - 3 us (the barrier's IPI on the biased thread's CPU): the
 * threshold of 4096 takes keeps that under 1 ns an item in the worst
 * pattern (4096 dos from one thread, then one from another, again and
 * again).
 *
 * Completion: QUIT while idle happens in quit, if the worker is idle, or in
 * a combiner's final CAS. Whoever sees it signals `done` (a mutex, off the
 * hot path), and free waits for it. A submitter still touches the worker
 * after publishing its item (it reads state), and that item may be the one
 * whose work leads to the worker's free (a team's last step): so each lane
 * has an `inflight` flag, set around the publication, and free also waits
 * until every lane's is clear. A biased do sets it too, before it reads
 * state; free runs the heavy barrier before it looks at the flags.
 */
#include "tnode.h"
#include "worker-internal.h"

#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <uv.h>

#if defined(__linux__)
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#if defined(__GNUC__)
#define TW__NOINLINE __attribute__((noinline))
#else
#define TW__NOINLINE
#endif

typedef struct tw__serial_node {
  tw__item item;
  tw_call_fn fn;
  void *arg;
  tw_free_fn arg_free;
} tw__serial_node;

_Static_assert(sizeof(tw__serial_node) <= TW__TNODE_SIZE,
               "a serial node must fit a tnode");

#define TW__S_QUIT ((uintptr_t)1)
#define TW__S_ACTIVE ((uintptr_t)2)
#define TW__S_DIRTY ((uintptr_t)4)
/* Streaming (see "Streaming" at the top): only ever set with ACTIVE and
 * DIRTY, by the combiner, and cleared with DIRTY. */
#define TW__S_STREAM ((uintptr_t)8)
#define TW__S_STREAMING (TW__S_ACTIVE | TW__S_DIRTY | TW__S_STREAM)
/* Biased (see "Biasing" at the top): PARKED, without ACTIVE - idle, but
 * the thread of the tag may run items without an atomic; REVOKE, with
 * ACTIVE and DIRTY - another thread took the bias away, and the first of
 * the two to clear REVOKE is the combiner. */
#define TW__S_PARKED ((uintptr_t)16)
#define TW__S_REVOKE ((uintptr_t)32)
/* The rest of state: the index + 1 of the thread that last handed the
 * worker back (0: a thread without one). */
#define TW__S_TAG_SHIFT 6
#define TW__S_TAG_MASK ((uintptr_t)0xff << TW__S_TAG_SHIFT)
#define TW__S_TAG(st) ((unsigned)(((st) & TW__S_TAG_MASK) >> TW__S_TAG_SHIFT))

/* Lanes a worker can have: one bit each in the thread-index map. */
#define TW__S_LANES ((unsigned)(sizeof(uintptr_t) * CHAR_BIT))
/* Items one lane holds. */
#define TW__S_CAP ((uintptr_t)1024)
#define TW__S_MASK (TW__S_CAP - 1)
/* Items a combiner runs from one lane before the other lanes' turn. */
#define TW__S_BATCH ((uintptr_t)256)
/* Spins before a waiting thread starts yielding its CPU. */
#define TW__S_WAIT_SPINS 32

/*
 * Lingering (see the top): a combiner that ran other threads' items, or
 * that took the worker from another thread's hand-back while its own
 * thread lately found it busy, polls for more every TW__S_POLL_GAP pauses,
 * up to TW__S_LINGER times, before handing back: about 3 us here (a pause
 * is 45 ns on the 2-vCPU Xeon of docs/performance.md). Long enough to
 * bridge the gaps between a submitter's items (tens of ns), short enough
 * that a combiner whose feeders stopped (or lost their CPU) soon goes back
 * to its own work. TW__S_HOT: the takes, after its last do that found a
 * worker busy, during which a thread lingers so.
 */
#define TW__S_LINGER 16
#define TW__S_POLL_GAP 4
#define TW__S_HOT 64
/* Items a combiner runs from the lanes in one DIRTY episode before it
 * declares the episode a stream (see "Streaming" at the top). */
#define TW__S_STREAM_AFTER 64
/* Takes in a row, each from its own hand-back, after which a thread parks
 * the worker biased to itself instead of handing it back (see "Biasing"
 * at the top). */
#define TW__S_BIAS_AFTER 4096
/* Pauses a streaming combiner waits after a round that found less than
 * half a batch (see "Streaming" at the top). */
#define TW__S_STREAM_GAP 256

/* The combiner's flags. */
#define TW__S_LOOK 1       /* the lanes may hold work: drain first */
#define TW__S_MAY_LINGER 2 /* a public do: its thread may wait for more */
#define TW__S_SHARED 4     /* taken from another thread's hand-back */

/* A slot. fn NULL: arg is a tw__item (a team's step, never allocated). */
typedef struct tw__serial_slot {
  tw_call_fn fn;
  void *arg;
  tw_free_fn arg_free;
} tw__serial_slot;

typedef struct tw__serial_lane {
  /* The producer's own line: tickets below room are free to fill (its copy
   * of head + CAP); inflight while it publishes (read only by free). Apart
   * from tail, which the combiner reads every round, since a write to a
   * line the other core has just read waits for it and inflight is written
   * twice a do (measured level, 22 M items/s with 2 submitters either way,
   * before the stream gap; kept as the cheaper layout in principle). */
  uintptr_t room;
  _Atomic unsigned inflight;
  /* Set while the thread runs an item on its bias (see the top). */
  _Atomic unsigned running;
  /* Tickets below tail are filled. */
  TW__LINE_ALIGNED _Atomic uintptr_t tail;
  /* The combiner's line: tickets below head have run (published once per
   * batch; read by the producer only when its room runs out). */
  TW__LINE_ALIGNED _Atomic uintptr_t head;
  TW__LINE_ALIGNED tw__serial_slot ring[TW__S_CAP];
} tw__serial_lane;

_Static_assert(TW__S_LANES + 1 <= (TW__S_TAG_MASK >> TW__S_TAG_SHIFT),
               "an index + 1 must fit state's tag");
_Static_assert(sizeof(tw__serial_lane) ==
                   3 * TW__LINE + TW__S_CAP * sizeof(tw__serial_slot),
               "a lane is three lines and its ring");

typedef struct tw__serial_worker {
  tw_worker base; /* read by every submitter */
  /* written when a thread takes or hands back the worker, and by the first
   * submitter after a DIRTY clear; read by every submitter */
  TW__LINE_ALIGNED _Atomic uintptr_t state;
  /* Written once per lane made; read by the combiner every round. */
  TW__LINE_ALIGNED _Atomic unsigned n_lanes; /* 1 + the highest lane made */
  _Atomic(tw__serial_lane *) lanes[TW__S_LANES];
  /* The combiner's (handed from one to the next by state's CAS). */
  TW__LINE_ALIGNED TW__FIFO(tw__item) mine; /* re-entrant items */
  int heavy; /* the heavy barrier works (set once, when made): the worker
              * may stream and be biased */
  uv_mutex_t mutex;
  uv_cond_t cond;
  int done;
} tw__serial_worker;

/* The serial workers being drained by this thread, innermost first. */
typedef struct tw__serial_frame {
  const tw__serial_worker *w;
  struct tw__serial_frame *prev;
} tw__serial_frame;

static TW__TLS tw__serial_frame *tw__serial_frames;

static const char tw__serial_why[] = "Unhandled error in serial worker";

/* ---- thread indexes --------------------------------------------------------- */

/*
 * A thread's lane in every serial worker is the one at its index: unique
 * among live threads (a bit in tw__serial_taken), taken on the thread's
 * first do to a busy worker, given back by a thread-specific destructor
 * when it exits. A later thread with the same index inherits the lanes
 * (their producer side: the exit's release, the take's acquire).
 */
static _Atomic uintptr_t tw__serial_taken;
static TW__TLS unsigned tw__serial_index; /* index + 1; 0: none */
/* Takes from idle left during which this thread, having lately found a
 * worker busy, lingers if another thread handed that worker back. */
static TW__TLS unsigned tw__serial_hot;
/* Takes in a row from this thread's own hand-back (any worker). */
static TW__TLS unsigned tw__serial_streak;
static pthread_key_t tw__serial_key;
static uv_once_t tw__serial_once = UV_ONCE_INIT;
static int tw__serial_key_ok;

static void tw__serial_thread_exit(void *value) {
  unsigned i = (unsigned)(uintptr_t)value - 1;
  tw__serial_index = 0;
  atomic_fetch_and_explicit(&tw__serial_taken, ~((uintptr_t)1 << i),
                            memory_order_release);
}

static void tw__serial_key_init(void) {
  tw__serial_key_ok =
      pthread_key_create(&tw__serial_key, tw__serial_thread_exit) == 0;
}

/* The index of the lowest bit set in m (not 0). */
static unsigned tw__serial_lowest(uintptr_t m) {
#if defined(__GNUC__)
  return (unsigned)__builtin_ctzll((unsigned long long)m);
#else
  unsigned i = 0;
  while (!(m & 1)) {
    m >>= 1;
    i++;
  }
  return i;
#endif
}

/* The calling thread's index + 1, taken now if need be; 0: none free. */
static unsigned tw__serial_my_index(void) {
  uintptr_t taken;
  unsigned i;
  if (TW__LIKELY(tw__serial_index != 0)) return tw__serial_index;
  uv_once(&tw__serial_once, tw__serial_key_init);
  if (!tw__serial_key_ok) return 0;
  taken = atomic_load_explicit(&tw__serial_taken, memory_order_relaxed);
  do {
    if (~taken == 0) return 0;
    i = tw__serial_lowest(~taken);
  } while (!atomic_compare_exchange_weak_explicit(
      &tw__serial_taken, &taken, taken | (uintptr_t)1 << i,
      memory_order_acquire, memory_order_relaxed));
  if (pthread_setspecific(tw__serial_key, (void *)(uintptr_t)(i + 1)) != 0) {
    atomic_fetch_and_explicit(&tw__serial_taken, ~((uintptr_t)1 << i),
                              memory_order_release);
    return 0;
  }
  tw__serial_index = i + 1;
  return i + 1;
}

/* ---- the heavy barrier ----------------------------------------------------- */

/*
 * Streaming's other half (see the top): a memory barrier run on every CPU
 * that runs a thread of this process, by the one thread that calls it -
 * Linux's membarrier(PRIVATE_EXPEDITED), 4.14+. Measured on the 2-vCPU
 * machine of docs/performance.md: 0.2 us a call (1.0 under valgrind,
 * which supports it), once per stream that ends. Without it (another
 * system, an older kernel, a seccomp filter refusing it) no worker ever
 * streams: every submitter fences, as before.
 */
#if defined(__linux__) && defined(__NR_membarrier)
static uv_once_t tw__serial_heavy_once = UV_ONCE_INIT;
static int tw__serial_heavy_ok;

static void tw__serial_heavy_init(void) {
  long cmds = syscall(__NR_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
  tw__serial_heavy_ok =
      cmds > 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
      syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0,
              0) == 0;
}

/* 1 if this process can stream (asked once, when a worker is made). */
static int tw__serial_heavy(void) {
  uv_once(&tw__serial_heavy_once, tw__serial_heavy_init);
  return tw__serial_heavy_ok;
}

/* Only called after tw__serial_heavy said 1: the command then fails
 * only with EINVAL or EPERM (unregistered), neither possible here. */
static void tw__serial_heavy_barrier(void) {
  (void)syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
}
#else
static int tw__serial_heavy(void) { return 0; }
static void tw__serial_heavy_barrier(void) {}
#endif

/* ---- nodes ---------------------------------------------------------------- */

static void tw__serial_node_release(tw__serial_node *n) { tw__tnode_put(n); }

static void tw__serial_node_run(tw__item *it) {
  tw__serial_node *n = TW__CONTAINER_OF(it, tw__serial_node, item);
  tw_call_fn fn = n->fn;
  void *arg = n->arg;
  tw_free_fn arg_free = n->arg_free;
  /* Give the node back before running: the submitters may reuse it. */
  tw__serial_node_release(n);
  fn(arg);
  if (arg_free != NULL) arg_free(arg);
}

static void tw__serial_node_drop(tw__item *it) {
  tw__serial_node *n = TW__CONTAINER_OF(it, tw__serial_node, item);
  tw_free_fn arg_free = n->arg_free;
  void *arg = n->arg;
  tw__serial_node_release(n);
  if (arg_free != NULL) arg_free(arg);
}

static const tw__item_ops tw__serial_node_ops = {tw__serial_node_run,
                                                 tw__serial_node_drop};

/* ---- running -------------------------------------------------------------- */

static void tw__serial_signal_done(tw__serial_worker *w) {
  uv_mutex_lock(&w->mutex);
  w->done = 1;
  uv_cond_signal(&w->cond);
  uv_mutex_unlock(&w->mutex);
}

/* 1 when the calling thread is w's combiner (a do from inside its work). */
static int tw__serial_is_mine(const tw__serial_worker *w) {
  const tw__serial_frame *f;
  for (f = tw__serial_frames; f != NULL; f = f->prev)
    if (f->w == w) return 1;
  return 0;
}

/*
 * One step of waiting for another thread (the combiner, to make room):
 * spin briefly, then give the CPU away - on a machine with more
 * submitters than cores, the thread we wait for may need ours.
 */
static void tw__serial_pause(unsigned *spins) {
  if (++*spins <= TW__S_WAIT_SPINS)
    TW__CPU_RELAX();
  else
    sched_yield();
}

static void tw__serial_run_fn(tw_call_fn fn, void *arg, tw_free_fn arg_free,
                              tw_failure **failure) {
  if (fn == NULL) {
    tw__item_run((tw__item *)arg);
  } else {
    fn(arg);
    if (arg_free != NULL) arg_free(arg);
  }
  if (*failure != NULL) tw__work_log_slot(failure, tw__serial_why);
}

/* Run the combiner's re-entrant items (and the ones they add), FIFO. */
static void tw__serial_run_mine(tw__serial_worker *w, tw_failure **failure) {
  tw__item *it;
  for (;;) {
    TW__FIFO_POP(&w->mine, it, next);
    if (it == NULL) break;
    tw__item_run(it);
    if (*failure != NULL) tw__work_log_slot(failure, tw__serial_why);
  }
}

/*
 * One round over the lanes: run at most TW__S_BATCH items of each, in
 * order, each followed by what it queued re-entrantly. The number run.
 * seq_cst loads: after a DIRTY clear, a round must see every item whose
 * submitter read DIRTY set before the clear.
 */
static uintptr_t tw__serial_round(tw__serial_worker *w, tw_failure **failure) {
  unsigned n = atomic_load_explicit(&w->n_lanes, memory_order_seq_cst);
  uintptr_t ran = 0;
  unsigned i;
  for (i = 0; i < n; i++) {
    tw__serial_lane *l =
        atomic_load_explicit(&w->lanes[i], memory_order_seq_cst);
    uintptr_t h, end;
    if (l == NULL) continue;
    h = atomic_load_explicit(&l->head, memory_order_relaxed);
    end = atomic_load_explicit(&l->tail, memory_order_seq_cst);
    if (end == h) continue;
    if (end - h > TW__S_BATCH) end = h + TW__S_BATCH;
    ran += end - h;
    do {
      const tw__serial_slot *s = &l->ring[h & TW__S_MASK];
      tw_call_fn fn = s->fn;
      void *arg = s->arg;
      tw_free_fn arg_free = s->arg_free;
      h++;
      tw__serial_run_fn(fn, arg, arg_free, failure);
      tw__serial_run_mine(w, failure);
    } while (h != end);
    /* Once per batch: the producer reads it only when out of room
     * (release: our reads of the slots come before their reuse). */
    atomic_store_explicit(&l->head, h, memory_order_release);
  }
  return ran;
}

/* 1 if a lane has an item the combiner has not run. */
static int tw__serial_pending(tw__serial_worker *w) {
  unsigned n = atomic_load_explicit(&w->n_lanes, memory_order_relaxed);
  unsigned i;
  for (i = 0; i < n; i++) {
    tw__serial_lane *l =
        atomic_load_explicit(&w->lanes[i], memory_order_acquire);
    if (l != NULL && atomic_load_explicit(&l->tail, memory_order_relaxed) !=
                         atomic_load_explicit(&l->head, memory_order_relaxed))
      return 1;
  }
  return 0;
}

/* 1 when, polling every TW__S_POLL_GAP pauses for up to TW__S_LINGER
 * polls, a lane gets an item. */
static int tw__serial_linger_lanes(tw__serial_worker *w) {
  unsigned polls, k;
  for (polls = 0; polls < TW__S_LINGER; polls++) {
    for (k = 0; k < TW__S_POLL_GAP; k++) TW__CPU_RELAX();
    if (tw__serial_pending(w)) return 1;
  }
  return 0;
}

/* Polling state likewise: 1 when it changed (*st: the new value). */
static int tw__serial_linger_state(tw__serial_worker *w, uintptr_t *st) {
  unsigned polls, k;
  for (polls = 0; polls < TW__S_LINGER; polls++) {
    uintptr_t now;
    for (k = 0; k < TW__S_POLL_GAP; k++) TW__CPU_RELAX();
    now = atomic_load_explicit(&w->state, memory_order_relaxed);
    if (now != *st) {
      *st = now;
      return 1;
    }
  }
  return 0;
}

/*
 * Declare a stream (see the top) if the submitters have set DIRTY again
 * since the combiner cleared it: 1 if state now has STREAM.
 */
static int tw__serial_start_stream(tw__serial_worker *w) {
  uintptr_t st = atomic_load_explicit(&w->state, memory_order_relaxed);
  if ((st & TW__S_STREAMING) != (TW__S_ACTIVE | TW__S_DIRTY)) return 0;
  return atomic_compare_exchange_strong_explicit(
      &w->state, &st, st | TW__S_STREAM, memory_order_relaxed,
      memory_order_relaxed);
}

/* Rounds until one finds every lane empty (*fed: items run); lingering
 * for more if allowed and fed. Called once a DIRTY episode. */
static void tw__serial_drain(tw__serial_worker *w, tw_failure **failure,
                             int flags, uintptr_t *fed) {
  uintptr_t episode = 0;
  int streaming = 0;
  for (;;) {
    uintptr_t ran = tw__serial_round(w, failure);
    *fed += ran;
    episode += ran;
    if (ran != 0) {
      /* Only a public do's combiner: a team's steps come a few at a time,
       * from threads with tasks of their own (see TW__S_MAY_LINGER). */
      if (!streaming && episode >= TW__S_STREAM_AFTER &&
          (flags & TW__S_MAY_LINGER) && w->heavy)
        streaming = tw__serial_start_stream(w);
      if (streaming && ran < TW__S_BATCH / 2) {
        unsigned k;
        for (k = 0; k < TW__S_STREAM_GAP; k++) TW__CPU_RELAX();
      }
      continue;
    }
    if (!(flags & TW__S_MAY_LINGER) || *fed == 0 ||
        !tw__serial_linger_lanes(w))
      return;
  }
}

/*
 * The combiner's part, holding ACTIVE (st: the state it took it in): run
 * what waits until the worker can be handed back. After the final CAS the
 * worker belongs to nobody, so the only access left is the done signal,
 * which free waits for.
 */
static TW__NOINLINE void tw__serial_combine(tw__serial_worker *w,
                                            uintptr_t st, int flags,
                                            tw_failure **failure) {
  uintptr_t fed = 0;
  if (tw__serial_hot != 0 && (flags & TW__S_MAY_LINGER)) {
    tw__serial_hot--;
    if ((st & TW__S_TAG_MASK) >> TW__S_TAG_SHIFT != tw__serial_index)
      flags |= TW__S_SHARED;
  }
  if (flags & TW__S_LOOK) tw__serial_drain(w, failure, flags, &fed);
  for (;;) {
    tw__serial_run_mine(w, failure);
    if (!(st & TW__S_DIRTY)) {
      uintptr_t idle;
      if ((flags & TW__S_MAY_LINGER) && (fed != 0 || (flags & TW__S_SHARED)) &&
          tw__serial_linger_state(w, &st))
        continue;
      idle = (st & ~(TW__S_ACTIVE | TW__S_TAG_MASK)) |
             ((uintptr_t)tw__serial_index << TW__S_TAG_SHIFT);
      if (atomic_compare_exchange_strong_explicit(
              &w->state, &st, idle, memory_order_acq_rel,
              memory_order_acquire)) {
        if (st & TW__S_QUIT) tw__serial_signal_done(w);
        return;
      }
      continue; /* DIRTY set, or quit: look again */
    }
    /* Submitters queued items: clear DIRTY, then run every item queued
     * (the next submitter sets it again, with one CAS). Ending a stream:
     * the heavy barrier, so the next rounds see every item whose
     * submitter skipped its fence. */
    st = atomic_fetch_and_explicit(&w->state, ~(TW__S_DIRTY | TW__S_STREAM),
                                   memory_order_seq_cst);
    if (st & TW__S_STREAM) tw__serial_heavy_barrier();
    st &= ~(TW__S_DIRTY | TW__S_STREAM);
    tw__serial_drain(w, failure, flags, &fed);
  }
}

static tw__serial_lane *tw__serial_lane_of(tw__serial_worker *w, unsigned i);

/*
 * At an uncontended hand-back (st: the state the worker was taken in):
 * 1 if the calling thread should park it biased to itself - the heavy
 * barrier works, and this is its TW__S_BIAS_AFTER-th take in a row from
 * its own hand-back. It then has an index and a lane (its running flag).
 */
static int tw__serial_should_park(tw__serial_worker *w, uintptr_t st) {
  unsigned i;
  if (!w->heavy) return 0;
  if (TW__S_TAG(st) != tw__serial_index) {
    tw__serial_streak = 0;
    return 0;
  }
  if (++tw__serial_streak < TW__S_BIAS_AFTER) return 0;
  i = tw__serial_my_index();
  return i != 0 && tw__serial_lane_of(w, i) != NULL;
}

/* Clear REVOKE (*st: the state expected): 1 if we did - we are the
 * combiner, *st the state now (ACTIVE and DIRTY set) - or 0 if another
 * thread did first. */
static int tw__serial_claim(tw__serial_worker *w, uintptr_t *st) {
  uintptr_t old = *st;
  while (old & TW__S_REVOKE)
    if (atomic_compare_exchange_weak_explicit(&w->state, &old,
                                              old & ~TW__S_REVOKE,
                                              memory_order_acq_rel,
                                              memory_order_acquire)) {
      *st = old & ~TW__S_REVOKE;
      return 1;
    }
  return 0;
}

/*
 * Take the worker parked biased to another thread (old: the state seen,
 * PARKED). After the CAS to REVOKE the worker is busy (ACTIVE and DIRTY:
 * submitters queue); after the heavy barrier, either we see the biased
 * thread running an item and leave the worker to it (it sees REVOKE when
 * its item ends, and claims), or it is not running one and we claim -
 * and if both try, the first to clear REVOKE is the combiner. 1 taken
 * (*st: the state, DIRTY set), 0 busy, -1 state moved on: look again.
 */
static int tw__serial_revoke(tw__serial_worker *w, uintptr_t old,
                             uintptr_t *st) {
  uintptr_t rv = (old & ~TW__S_PARKED) | TW__S_ACTIVE | TW__S_DIRTY |
                 TW__S_REVOKE;
  tw__serial_lane *l;
  if (!atomic_compare_exchange_strong_explicit(&w->state, &old, rv,
                                               memory_order_acq_rel,
                                               memory_order_relaxed))
    return -1;
  tw__serial_heavy_barrier();
  l = atomic_load_explicit(&w->lanes[TW__S_TAG(rv) - 1], memory_order_acquire);
  if (atomic_load_explicit(&l->running, memory_order_acquire)) return 0;
  if (!tw__serial_claim(w, &rv)) return 0;
  *st = rv;
  return 1;
}

/* We own the worker (st: ACTIVE and what came with it): run fn(arg) (fn
 * NULL: arg is an item; both NULL: nothing), then combine. */
static void tw__serial_own(tw__serial_worker *w, uintptr_t st, tw_call_fn fn,
                           void *arg, tw_free_fn arg_free, int flags) {
  tw__serial_frame frame;
  tw_failure **failure = tw__work_failure_slot();
  /* A failure the caller has not collected yet is not ours to log. */
  tw_failure *outer = tw__work_stash(failure);
  frame.w = w;
  frame.prev = tw__serial_frames;
  tw__serial_frames = &frame;
  if (fn != NULL || arg != NULL) tw__serial_run_fn(fn, arg, arg_free, failure);
  if (TW__LIKELY(!(flags & TW__S_LOOK) && !(st & TW__S_DIRTY) &&
                 TW__FIFO_EMPTY(&w->mine) &&
                 (!(flags & TW__S_MAY_LINGER) || tw__serial_hot == 0))) {
    /* Nothing queued meanwhile and no reason to linger (the usual case
     * without contention): one CAS hands the worker back - parked, biased
     * to us, if we keep taking it from ourselves. */
    uintptr_t park = (flags & TW__S_MAY_LINGER) && tw__serial_should_park(w, st)
                         ? TW__S_PARKED
                         : 0;
    uintptr_t idle = (st & ~(TW__S_ACTIVE | TW__S_TAG_MASK)) | park |
                     ((uintptr_t)tw__serial_index << TW__S_TAG_SHIFT);
    if (atomic_compare_exchange_strong_explicit(&w->state, &st, idle,
                                                memory_order_acq_rel,
                                                memory_order_acquire)) {
      if (TW__UNLIKELY(st & TW__S_QUIT)) tw__serial_signal_done(w);
      goto out;
    }
  }
  tw__serial_combine(w, st, flags, failure);
out:
  tw__serial_frames = frame.prev;
  tw__work_unstash(failure, outer);
}

/* Take w if idle: 1 (*st: the state taken, ACTIVE set), 0 busy,
 * TW_EALREADYQUIT. */
static TW__NOINLINE int tw__serial_take_slow(tw__serial_worker *w,
                                             uintptr_t *st) {
  uintptr_t old = atomic_load_explicit(&w->state, memory_order_relaxed);
  for (;;) {
    if (old & TW__S_QUIT) return TW_EALREADYQUIT;
    if (old & TW__S_ACTIVE) return 0;
    if ((old & TW__S_PARKED) && TW__S_TAG(old) != tw__serial_index) {
      int rc = tw__serial_revoke(w, old, st);
      if (rc >= 0) return rc;
      old = atomic_load_explicit(&w->state, memory_order_relaxed);
      continue;
    }
    /* Idle, or parked biased to us (we are not running on the bias: a do
     * from inside our own item stops at tw__serial_submit). */
    if (atomic_compare_exchange_weak_explicit(
            &w->state, &old, (old & ~TW__S_PARKED) | TW__S_ACTIVE,
            memory_order_acq_rel, memory_order_relaxed)) {
      *st = (old & ~TW__S_PARKED) | TW__S_ACTIVE;
      return 1;
    }
  }
}

static int tw__serial_take(tw__serial_worker *w, uintptr_t *st) {
  uintptr_t old = atomic_load_explicit(&w->state, memory_order_relaxed);
  /* Inline only the two common cases: idle, and busy (the first costs
   * 2 ns an item in bench_serial_worker when the others are inline too). */
  if (TW__LIKELY(!(old & (TW__S_QUIT | TW__S_ACTIVE | TW__S_PARKED)))) {
    if (TW__LIKELY(atomic_compare_exchange_weak_explicit(
            &w->state, &old, old | TW__S_ACTIVE, memory_order_acq_rel,
            memory_order_relaxed))) {
      *st = old | TW__S_ACTIVE;
      return 1;
    }
  } else if ((old & (TW__S_QUIT | TW__S_ACTIVE)) == TW__S_ACTIVE) {
    return 0;
  }
  return tw__serial_take_slow(w, st);
}

/* A thread with no lane in w: wait until w is idle, take it and run the
 * item (it has nothing queued in w, so FIFO holds). */
static int tw__serial_run_when_idle(tw__serial_worker *w, tw_call_fn fn,
                                    void *arg, tw_free_fn arg_free,
                                    int flags) {
  unsigned spins = 0;
  uintptr_t st;
  int rc;
  while ((rc = tw__serial_take(w, &st)) == 0) tw__serial_pause(&spins);
  if (rc < 0) return rc;
  tw__serial_own(w, st, fn, arg, arg_free, flags);
  return 0;
}

/* The calling thread's lane in w (index i + 1), made if need be; NULL: no
 * memory. Only the thread holding index i makes lane i. */
static tw__serial_lane *tw__serial_lane_of(tw__serial_worker *w, unsigned i) {
  tw__serial_lane *l =
      atomic_load_explicit(&w->lanes[i - 1], memory_order_acquire);
  unsigned n;
  if (TW__LIKELY(l != NULL)) return l;
  l = tw__calloc_lines(sizeof(*l));
  if (l == NULL) return NULL;
  atomic_init(&l->tail, 0);
  atomic_init(&l->inflight, 0);
  atomic_init(&l->running, 0);
  atomic_init(&l->head, 0);
  l->room = TW__S_CAP;
  /* seq_cst, as the loads of n_lanes and lanes in a round: both come before
   * our first item's tail store, so a round after a DIRTY clear that must
   * see that item sees the lane. */
  atomic_store_explicit(&w->lanes[i - 1], l, memory_order_seq_cst);
  n = atomic_load_explicit(&w->n_lanes, memory_order_seq_cst);
  while (n < i && !atomic_compare_exchange_weak_explicit(
                      &w->n_lanes, &n, i, memory_order_seq_cst,
                      memory_order_relaxed)) {
  }
  return l;
}

/*
 * Queue an item in the calling thread's lane of the busy worker w (see the
 * top of the file), or, if the lane is full, wait for room or for the
 * worker to be idle (then run the item ourselves).
 */
static int tw__serial_queue(tw__serial_worker *w, tw__serial_lane *l,
                            tw_call_fn fn, void *arg, tw_free_fn arg_free,
                            int flags) {
  uintptr_t t = atomic_load_explicit(&l->tail, memory_order_relaxed);
  uintptr_t st;
  tw__serial_slot *s;
  int fenced;
  if (TW__UNLIKELY(t == l->room)) {
    l->room = atomic_load_explicit(&l->head, memory_order_acquire) + TW__S_CAP;
    if (t == l->room) {
      /* Full: wait until the combiner has run a batch of it. */
      unsigned spins = 0;
      int rc;
      for (;;) {
        rc = tw__serial_take(w, &st);
        if (rc != 0) break;
        tw__serial_pause(&spins);
        l->room =
            atomic_load_explicit(&l->head, memory_order_acquire) + TW__S_CAP;
        if (t != l->room) break;
      }
      if (rc < 0) return rc;
      if (rc == 1) {
        /* Idle: every item we queued has run (see the top). */
        tw__serial_own(w, st, fn, arg, arg_free, flags);
        return 0;
      }
    }
  }
  s = &l->ring[t & TW__S_MASK];
  s->fn = fn;
  s->arg = arg;
  s->arg_free = arg_free;
  /*
   * Publish, then read state: a Dekker pair with the combiner's DIRTY
   * clear and its next round, so the store and the read need a full
   * barrier between them - unless what follows is a CAS on state (which
   * orders the store before it for whoever reads its value). Streaming
   * (DIRTY already set): a seq_cst store, one locked instruction on our
   * own line. Otherwise (the first item after a clear, or a lone step):
   * a plain store and the CAS that sets DIRTY: one atomic, as the ring's
   * ticket, where a seq_cst store before that CAS made two (a team's
   * steps come mostly alone; bench_defer_to_thread under load, 5 runs
   * each, medians with a pool of 2 / 8: 746 / 531 ns a job, 786 / 558
   * with the two atomics, 745 / 760 with the ring - all within the noise).
   */
  st = atomic_load_explicit(&w->state, memory_order_relaxed);
  if ((st & TW__S_STREAMING) == TW__S_STREAMING) {
    /*
     * A stream (see the top): no fence. The store, then state again, in
     * that order for the compiler; the CPU may still let the load pass
     * the store, which the combiner's heavy barrier covers: if this load
     * sees STREAM, the store is visible to the rounds that follow the
     * barrier that ends the stream.
     */
    atomic_store_explicit(&l->tail, t + 1, memory_order_release);
    atomic_signal_fence(memory_order_seq_cst);
    st = atomic_load_explicit(&w->state, memory_order_relaxed);
    if ((st & TW__S_STREAMING) == TW__S_STREAMING) return 0;
    fenced = 0;
  } else if ((fenced = (st & (TW__S_ACTIVE | TW__S_DIRTY)) ==
                       (TW__S_ACTIVE | TW__S_DIRTY))) {
    atomic_store_explicit(&l->tail, t + 1, memory_order_seq_cst);
    st = atomic_load_explicit(&w->state, memory_order_seq_cst);
  } else {
    atomic_store_explicit(&l->tail, t + 1, memory_order_release);
  }
  for (;;) {
    if ((st & (TW__S_ACTIVE | TW__S_DIRTY)) == (TW__S_ACTIVE | TW__S_DIRTY)) {
      if (fenced) return 0;
      /* Set by another submitter: trust it only after a full barrier
       * (the same store again, seq_cst; TSan has no fences). */
      atomic_store_explicit(&l->tail, t + 1, memory_order_seq_cst);
      fenced = 1;
      st = atomic_load_explicit(&w->state, memory_order_seq_cst);
      continue;
    }
    if (st & TW__S_ACTIVE) {
      if (atomic_compare_exchange_weak_explicit(&w->state, &st,
                                                st | TW__S_DIRTY,
                                                memory_order_seq_cst,
                                                memory_order_seq_cst))
        return 0;
    } else if (TW__UNLIKELY(st & TW__S_PARKED) &&
               TW__S_TAG(st) != tw__serial_index) {
      /* Parked biased to another thread since we read ACTIVE. */
      uintptr_t got;
      int rc = tw__serial_revoke(w, st, &got);
      if (rc == 1)
        tw__serial_own(w, got, NULL, NULL, NULL, flags | TW__S_LOOK);
      if (rc >= 0) return 0;
      st = atomic_load_explicit(&w->state, memory_order_seq_cst);
    } else if (atomic_compare_exchange_weak_explicit(
                   &w->state, &st, (st & ~TW__S_PARKED) | TW__S_ACTIVE,
                   memory_order_seq_cst, memory_order_seq_cst)) {
      /* Idle (even after quit: the item was accepted): run the lanes. */
      tw__serial_own(w, (st & ~TW__S_PARKED) | TW__S_ACTIVE, NULL, NULL,
                     NULL, flags | TW__S_LOOK);
      return 0;
    }
  }
}

/* A do that found w busy: 0 queued (or run), 2 re-entrant (not queued
 * yet), or an error. */
static TW__NOINLINE int tw__serial_submit_busy(tw__serial_worker *w,
                                               tw_call_fn fn, void *arg,
                                               tw_free_fn arg_free,
                                               int flags) {
  unsigned i;
  tw__serial_lane *l;
  int rc;
  i = tw__serial_my_index();
  l = i != 0 ? tw__serial_lane_of(w, i) : NULL;
  if (TW__UNLIKELY(l == NULL))
    return tw__serial_run_when_idle(w, fn, arg, arg_free, flags);
  /* Until we are done with w: free waits for it (our item may be the one
   * whose work frees w). Release: what we did before is visible then. */
  atomic_store_explicit(&l->inflight, 1, memory_order_relaxed);
  tw__serial_hot = TW__S_HOT;
  rc = tw__serial_queue(w, l, fn, arg, arg_free, flags);
  atomic_store_explicit(&l->inflight, 0, memory_order_release);
  return rc;
}

/* 0 done (run or queued), 2 re-entrant (not queued yet), or an error. */
static int tw__serial_submit(tw__serial_worker *w, tw_call_fn fn, void *arg,
                             tw_free_fn arg_free, int flags) {
  uintptr_t st;
  int rc;
  /* A do from inside the work must not run (or wait for) itself: with the
   * worker parked biased to us, take would succeed. */
  if (TW__UNLIKELY(tw__serial_frames != NULL) && tw__serial_is_mine(w))
    return 2;
  rc = tw__serial_take(w, &st);
  if (TW__LIKELY(rc == 1)) {
    tw__serial_own(w, st, fn, arg, arg_free, flags);
    return 0;
  }
  if (rc < 0) return rc;
  return tw__serial_submit_busy(w, fn, arg, arg_free, flags);
}

/* A re-entrant do: queue it on the combiner's own list. */
static int tw__serial_add_mine(tw__serial_worker *w, tw__item *it) {
  if (atomic_load_explicit(&w->state, memory_order_relaxed) & TW__S_QUIT)
    return TW_EALREADYQUIT;
  TW__FIFO_PUSH(&w->mine, it, next);
  return 0;
}

static int tw__serial_do_item(tw_worker *wk, tw__item *it) {
  tw__serial_worker *w = (tw__serial_worker *)wk;
  int rc = tw__serial_submit(w, NULL, it, NULL, 0);
  return rc == 2 ? tw__serial_add_mine(w, it) : rc;
}

/*
 * A do on the bias (see the top; parked: the state w was parked in by
 * thread index i): 0 run, 1 not run (the bias is gone: take the usual
 * path), TW_EALREADYQUIT.
 */
static TW__NOINLINE int tw__serial_biased(tw__serial_worker *w, unsigned i,
                                          uintptr_t parked, tw_call_fn fn,
                                          void *arg, tw_free_fn arg_free) {
  tw__serial_lane *l =
      atomic_load_explicit(&w->lanes[i - 1], memory_order_acquire);
  tw__serial_frame frame;
  tw_failure **failure;
  tw_failure *outer;
  uintptr_t st;
  int rc = 1;
  /* inflight: for free, as in tw__serial_submit_busy. Then running, and
   * state again: the revoker's CAS, heavy barrier and load of running
   * are the other half (as a stream's, plain stores and a compiler
   * barrier on this side). */
  atomic_store_explicit(&l->inflight, 1, memory_order_relaxed);
  atomic_store_explicit(&l->running, 1, memory_order_relaxed);
  atomic_signal_fence(memory_order_seq_cst);
  st = atomic_load_explicit(&w->state, memory_order_relaxed);
  if (TW__UNLIKELY(st != parked)) {
    /* Revoked (or quit) meanwhile. If the revoker saw us running, it
     * left the worker to us: claim it. */
    atomic_store_explicit(&l->running, 0, memory_order_release);
    if ((st & TW__S_REVOKE) && TW__S_TAG(st) == i && tw__serial_claim(w, &st)) {
      rc = st & TW__S_QUIT ? TW_EALREADYQUIT : 0;
      if (rc == 0)
        tw__serial_own(w, st, fn, arg, arg_free, TW__S_MAY_LINGER);
      else
        tw__serial_own(w, st, NULL, NULL, NULL, TW__S_LOOK);
    }
    atomic_store_explicit(&l->inflight, 0, memory_order_release);
    return rc;
  }
  failure = tw__work_failure_slot();
  outer = tw__work_stash(failure);
  frame.w = w;
  frame.prev = NULL;
  tw__serial_frames = &frame;
  tw__serial_run_fn(fn, arg, arg_free, failure);
  tw__serial_run_mine(w, failure);
  tw__serial_frames = NULL;
  tw__work_unstash(failure, outer);
  atomic_store_explicit(&l->running, 0, memory_order_release);
  atomic_signal_fence(memory_order_seq_cst);
  st = atomic_load_explicit(&w->state, memory_order_relaxed);
  /* Revoked while we ran: the revoker may have left the worker to us. */
  if (TW__UNLIKELY(st & TW__S_REVOKE) && TW__S_TAG(st) == i &&
      tw__serial_claim(w, &st))
    tw__serial_own(w, st, NULL, NULL, NULL, TW__S_LOOK);
  atomic_store_explicit(&l->inflight, 0, memory_order_release);
  return 0;
}

static int tw__serial_do_work(tw_worker *wk, tw_call_fn fn, void *arg,
                              tw_free_fn arg_free) {
  tw__serial_worker *w = (tw__serial_worker *)wk;
  tw__serial_node *n;
  unsigned i = tw__serial_index;
  int rc;
  if (i != 0 && tw__serial_frames == NULL) {
    uintptr_t parked = TW__S_PARKED | ((uintptr_t)i << TW__S_TAG_SHIFT);
    if (atomic_load_explicit(&w->state, memory_order_relaxed) == parked) {
      rc = tw__serial_biased(w, i, parked, fn, arg, arg_free);
      if (rc != 1) return rc;
    }
  }
  rc = tw__serial_submit(w, fn, arg, arg_free, TW__S_MAY_LINGER);
  if (rc != 2) return rc;
  n = tw__tnode_get();
  if (n == NULL) return TW_ENOMEM;
  n->item.ops = &tw__serial_node_ops;
  n->fn = fn;
  n->arg = arg;
  n->arg_free = arg_free;
  rc = tw__serial_add_mine(w, &n->item);
  if (rc != 0) tw__serial_node_release(n);
  return rc;
}

int tw__serial_try_run(tw_worker *wk, tw_call_fn fn, void *arg) {
  tw__serial_worker *w = (tw__serial_worker *)wk;
  uintptr_t st;
  int rc = tw__serial_take(w, &st);
  if (rc != 1) return rc;
  tw__serial_own(w, st, fn, arg, NULL, 0);
  return 1;
}

static int tw__serial_quit(tw_worker *wk) {
  tw__serial_worker *w = (tw__serial_worker *)wk;
  uintptr_t old =
      atomic_fetch_or_explicit(&w->state, TW__S_QUIT, memory_order_acq_rel);
  if (old & TW__S_QUIT) return TW_EALREADYQUIT;
  /* Idle: nobody will see the flag at a final CAS. */
  if (!(old & TW__S_ACTIVE)) tw__serial_signal_done(w);
  return 0;
}

static int tw__serial_destroy(tw_worker *wk) {
  tw__serial_worker *w = (tw__serial_worker *)wk;
  unsigned i, n;
  if (tw__serial_is_mine(w)) return TW_EDEADLK;
  (void)tw__serial_quit(wk);
  uv_mutex_lock(&w->mutex);
  while (!w->done) uv_cond_wait(&w->cond, &w->mutex);
  uv_mutex_unlock(&w->mutex);
  /* A submitter whose item has run may not have left yet (see the top),
   * nor a thread that read its bias before quit (the heavy barrier: it
   * set inflight before it read state). */
  if (w->heavy) tw__serial_heavy_barrier();
  n = atomic_load_explicit(&w->n_lanes, memory_order_acquire);
  for (i = 0; i < n; i++) {
    tw__serial_lane *l =
        atomic_load_explicit(&w->lanes[i], memory_order_acquire);
    unsigned spins = 0;
    if (l == NULL) continue;
    while (atomic_load_explicit(&l->inflight, memory_order_acquire))
      tw__serial_pause(&spins);
    tw__free_lines(l);
  }
  uv_cond_destroy(&w->cond);
  uv_mutex_destroy(&w->mutex);
  tw__free_lines(w);
  return 0;
}

const tw__worker_class tw__serial_worker_class = {
    {tw__serial_do_work, tw__serial_quit, tw__serial_destroy},
    tw__serial_do_item};

int tw_serial_worker_new(tw_worker **out) {
  tw__serial_worker *w;
  int rc;
  unsigned i;
  if (out == NULL) return TW_EINVAL;
  w = tw__calloc_lines(sizeof(*w));
  if (w == NULL) return TW_ENOMEM;
  w->base.vtable = &tw__serial_worker_class.vtable;
  w->heavy = tw__serial_heavy();
  atomic_init(&w->state, 0);
  atomic_init(&w->n_lanes, 0);
  for (i = 0; i < TW__S_LANES; i++) atomic_init(&w->lanes[i], NULL);
  rc = uv_mutex_init(&w->mutex);
  if (rc != 0) {
    tw__free_lines(w);
    return rc;
  }
  rc = uv_cond_init(&w->cond);
  if (rc != 0) {
    uv_mutex_destroy(&w->mutex);
    tw__free_lines(w);
    return rc;
  }
  *out = &w->base;
  return 0;
}
