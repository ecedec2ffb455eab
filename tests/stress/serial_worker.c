/*
 * Stress: the serial worker (worker.h). 8 threads submit 500k items each
 * (scaled by TWUV_STRESS_SCALE; more threads than cores, so their lanes
 * fill and submitters wait for the combiner, and every 1000th item also
 * queues one re-entrantly). Checks: every item runs exactly once, in order per
 * submitter, never two at once. The per-submitter bookkeeping is
 * deliberately plain memory: under TSan, any two items not ordered by the
 * worker's hand-over would be reported as a race.
 *
 * Then quit races with busy submitters (rounds scaled likewise): quit comes
 * from another thread while a combiner runs lanes, so that the QUIT flag
 * meets its DIRTY clears and its final hand-back, and new threads each
 * round take the lanes of the threads that exited (thread indexes reused). Checks: every
 * accepted item runs exactly once before free returns, a submitter once
 * refused stays refused, and a do after quit on the quitting thread is
 * refused.
 *
 * Then the bias (lib/serial.c, "Biasing"): an owner thread submits bursts
 * longer than the bias threshold (so it parks the worker and runs items
 * with no atomic) while a thief thread's dos take the bias away at random
 * moments - often while an owner's item runs (items spin a little), so
 * that the thief leaves the worker to the owner, who must claim it. New
 * threads each round (indexes, lanes and biases inherited). Checks: every
 * item exactly once, FIFO per thread, never two at once, the re-entrant
 * items of biased items right after them. Last, quit races with a lone
 * submitter running on its bias.
 */
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

#include "stress.h"

#define SUBMITTERS 8

static tw_worker *worker;
static long per_submitter;
static long next_seq[SUBMITTERS]; /* touched only by running items */
static long ran;
static long reentrant_ran; /* touched only by running items */
static atomic_int running;
static atomic_long overlaps;
static atomic_long rejected;

static void reentrant_item(void *arg) {
  (void)arg;
  if (atomic_fetch_add_explicit(&running, 1, memory_order_relaxed) != 0)
    atomic_fetch_add(&overlaps, 1);
  reentrant_ran++;
  atomic_fetch_sub_explicit(&running, 1, memory_order_relaxed);
}

static void item(void *arg) {
  uintptr_t v = (uintptr_t)arg;
  int s = (int)(v % SUBMITTERS);
  long seq = (long)(v / SUBMITTERS);
  if (atomic_fetch_add_explicit(&running, 1, memory_order_relaxed) != 0)
    atomic_fetch_add(&overlaps, 1);
  if (next_seq[s] != seq) {
    fprintf(stderr, "submitter %d: item %ld ran, expected %ld\n", s, seq,
            next_seq[s]);
    exit(1);
  }
  next_seq[s] = seq + 1;
  ran++;
  /* A do from inside the work, never waiting (even with the ring full). */
  if (seq % 1000 == 0 && tw_worker_do(worker, reentrant_item, NULL) != 0) {
    fprintf(stderr, "re-entrant do failed\n");
    exit(1);
  }
  atomic_fetch_sub_explicit(&running, 1, memory_order_relaxed);
}

static void submit(void *arg) {
  uintptr_t s = (uintptr_t)arg;
  long i;
  for (i = 0; i < per_submitter; i++) {
    int rc = tw_worker_do(worker, item, (void *)((uintptr_t)i * SUBMITTERS + s));
    if (rc != 0) {
      fprintf(stderr, "do: %s\n", tw_err_name(rc));
      atomic_fetch_add(&rejected, 1);
    }
  }
}

/* ---- quit racing with submissions ---- */

#define RACE_SUBMITTERS 3

static tw_worker *race_w;
static long race_ran;            /* touched only by running items */
static atomic_long race_started; /* items that began running */
static atomic_long race_accepted;
static atomic_int race_go;

static void race_item(void *arg) {
  (void)arg;
  race_ran++;
  atomic_fetch_add_explicit(&race_started, 1, memory_order_relaxed);
}

static void race_submit(void *arg) {
  long accepted = 0;
  int rc;
  (void)arg;
  while (!atomic_load(&race_go)) sched_yield();
  while ((rc = tw_worker_do(race_w, race_item, NULL)) == 0) accepted++;
  CHECK_EQ(rc, TW_EALREADYQUIT);
  CHECK_EQ(tw_worker_do(race_w, race_item, NULL), TW_EALREADYQUIT);
  atomic_fetch_add(&race_accepted, accepted);
}

static void quit_race(long rounds) {
  long r;
  for (r = 0; r < rounds; r++) {
    uv_thread_t t[RACE_SUBMITTERS];
    int i;
    /* Quit at a different point of the flow each round. */
    long quit_after = 1 + (r * 7919) % 20000;
    race_ran = 0;
    atomic_store(&race_started, 0);
    atomic_store(&race_accepted, 0);
    atomic_store(&race_go, 0);
    CHECK_EQ(tw_serial_worker_new(&race_w), 0);
    for (i = 0; i < RACE_SUBMITTERS; i++)
      CHECK_EQ(uv_thread_create(&t[i], race_submit, NULL), 0);
    atomic_store(&race_go, 1);
    while (atomic_load_explicit(&race_started, memory_order_relaxed) <
           quit_after)
      sched_yield();
    CHECK_EQ(tw_worker_quit(race_w), 0);
    CHECK_EQ(tw_worker_do(race_w, race_item, NULL), TW_EALREADYQUIT);
    for (i = 0; i < RACE_SUBMITTERS; i++) uv_thread_join(&t[i]);
    /* free waits for the drain: every accepted item has run after it. */
    CHECK_EQ(tw_worker_free(race_w), 0);
    CHECK_EQ(race_ran, atomic_load(&race_accepted));
  }
}

/* ---- the bias ---- */

/* More than TW__S_BIAS_AFTER (4096) dos in a row: the burst ends biased.
 * Not scaled: fewer would never park. */
#define BIAS_BURST 6000
#define BIAS_BURSTS 3

static tw_worker *bias_w;
static long bias_next[2];       /* touched only by running items */
static long bias_ran;           /* likewise */
static long bias_reentrant_due; /* likewise: the next item must be it */
static atomic_int bias_owner_done;
static atomic_long bias_thief_sent;

static void bias_reentrant(void *arg) {
  (void)arg;
  if (atomic_fetch_add_explicit(&running, 1, memory_order_relaxed) != 0)
    atomic_fetch_add(&overlaps, 1);
  CHECK_EQ(bias_reentrant_due, 1);
  bias_reentrant_due = 0;
  atomic_fetch_sub_explicit(&running, 1, memory_order_relaxed);
}

static void bias_item(void *arg) {
  uintptr_t v = (uintptr_t)arg;
  int s = (int)(v & 1);
  long seq = (long)(v >> 1);
  volatile int spin;
  if (atomic_fetch_add_explicit(&running, 1, memory_order_relaxed) != 0)
    atomic_fetch_add(&overlaps, 1);
  /* A re-entrant item runs right after the item that queued it. */
  CHECK_EQ(bias_reentrant_due, 0);
  CHECK_EQ(bias_next[s], seq);
  bias_next[s] = seq + 1;
  bias_ran++;
  if (s == 0 && seq % 1000 == 999) {
    bias_reentrant_due = 1;
    CHECK_EQ(tw_worker_do(bias_w, bias_reentrant, NULL), 0);
  }
  /* Long enough that a thief's do often lands while an item runs. */
  for (spin = 0; spin < 50; spin++) {
  }
  atomic_fetch_sub_explicit(&running, 1, memory_order_relaxed);
}

static void bias_owner(void *arg) {
  long i;
  (void)arg;
  for (i = 0; i < (long)BIAS_BURST * BIAS_BURSTS; i++) {
    CHECK_EQ(tw_worker_do(bias_w, bias_item, (void *)((uintptr_t)i << 1)), 0);
    /* Between bursts, let the thief in. */
    if (i % BIAS_BURST == BIAS_BURST - 1) sched_yield();
  }
  atomic_store(&bias_owner_done, 1);
}

static void bias_thief(void *arg) {
  long n = 0;
  unsigned x = (unsigned)(uintptr_t)arg * 2654435761u + 1;
  (void)arg;
  while (!atomic_load(&bias_owner_done)) {
    int k;
    CHECK_EQ(
        tw_worker_do(bias_w, bias_item, (void *)(((uintptr_t)n << 1) | 1)), 0);
    n++;
    /* A random pause: the owner runs alone for a while, then is robbed. */
    x = x * 1103515245u + 12345u;
    for (k = (int)((x >> 16) % 1024); k > 0; k--) sched_yield();
  }
  atomic_store(&bias_thief_sent, n);
}

static void bias_rounds(long rounds) {
  long r;
  for (r = 0; r < rounds; r++) {
    uv_thread_t owner, thief;
    bias_next[0] = bias_next[1] = 0;
    bias_ran = 0;
    bias_reentrant_due = 0;
    atomic_store(&bias_owner_done, 0);
    CHECK_EQ(tw_serial_worker_new(&bias_w), 0);
    CHECK_EQ(uv_thread_create(&owner, bias_owner, NULL), 0);
    CHECK_EQ(uv_thread_create(&thief, bias_thief, (void *)(uintptr_t)r), 0);
    uv_thread_join(&owner);
    uv_thread_join(&thief);
    CHECK_EQ(tw_worker_quit(bias_w), 0);
    CHECK_EQ(tw_worker_free(bias_w), 0);
    CHECK_EQ(atomic_load(&overlaps), 0);
    CHECK_EQ(bias_next[0], (long)BIAS_BURST * BIAS_BURSTS);
    CHECK_EQ(bias_next[1], atomic_load(&bias_thief_sent));
    CHECK_EQ(bias_ran, bias_next[0] + bias_next[1]);
    CHECK_EQ(bias_reentrant_due, 0);
  }
}

/* Quit from the main thread while a lone submitter runs on its bias. */
static void bias_quit_submit(void *arg) {
  long accepted = 0;
  int rc;
  (void)arg;
  while ((rc = tw_worker_do(race_w, race_item, NULL)) == 0) accepted++;
  CHECK_EQ(rc, TW_EALREADYQUIT);
  atomic_fetch_add(&race_accepted, accepted);
}

static void bias_quit_race(long rounds) {
  long r;
  for (r = 0; r < rounds; r++) {
    uv_thread_t t;
    long quit_after = BIAS_BURST + (r * 7919) % 5000;
    race_ran = 0;
    atomic_store(&race_started, 0);
    atomic_store(&race_accepted, 0);
    CHECK_EQ(tw_serial_worker_new(&race_w), 0);
    CHECK_EQ(uv_thread_create(&t, bias_quit_submit, NULL), 0);
    while (atomic_load_explicit(&race_started, memory_order_relaxed) <
           quit_after)
      sched_yield();
    CHECK_EQ(tw_worker_quit(race_w), 0);
    uv_thread_join(&t);
    CHECK_EQ(tw_worker_free(race_w), 0);
    CHECK_EQ(race_ran, atomic_load(&race_accepted));
  }
}

int main(void) {
  uv_thread_t t[SUBMITTERS];
  uintptr_t s;
  twt_alloc_install();
  per_submitter = stress_scaled(500000);
  CHECK_EQ(tw_serial_worker_new(&worker), 0);
  for (s = 0; s < SUBMITTERS; s++)
    CHECK_EQ(uv_thread_create(&t[s], submit, (void *)s), 0);
  for (s = 0; s < SUBMITTERS; s++) uv_thread_join(&t[s]);
  CHECK_EQ(tw_worker_quit(worker), 0);
  CHECK_EQ(tw_worker_free(worker), 0);
  CHECK_EQ(atomic_load(&rejected), 0);
  CHECK_EQ(atomic_load(&overlaps), 0);
  CHECK_EQ(ran, per_submitter * SUBMITTERS);
  for (s = 0; s < SUBMITTERS; s++) CHECK_EQ(next_seq[s], per_submitter);
  CHECK_EQ(reentrant_ran, SUBMITTERS * ((per_submitter + 999) / 1000));
  quit_race(stress_scaled(200));
  bias_rounds(stress_scaled(30));
  bias_quit_race(stress_scaled(100));
  stress_check_no_leaks();
  printf("serial_worker: %ld items from %d submitters, exactly once, FIFO per "
         "submitter, never two at once; quit raced with %d submitters; %ld "
         "rounds of a biased owner and a thief; quit raced with a biased "
         "submitter\n",
         ran, SUBMITTERS, RACE_SUBMITTERS, stress_scaled(30));
  return 0;
}
