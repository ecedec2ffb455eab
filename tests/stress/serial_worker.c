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
  stress_check_no_leaks();
  printf("serial_worker: %ld items from %d submitters, exactly once, FIFO per "
         "submitter, never two at once; quit raced with %d submitters\n",
         ran, SUBMITTERS, RACE_SUBMITTERS);
  return 0;
}
