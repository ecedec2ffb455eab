/*
 * Stress: the serial worker (worker.h). 4 threads submit 1M items each
 * (scaled by TWUV_STRESS_SCALE). Checks: every item runs exactly once, in
 * order per submitter, never two at once. The per-submitter bookkeeping is
 * deliberately plain memory: under TSan, any two items not ordered by the
 * worker's hand-over would be reported as a race.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

#include "stress.h"

#define SUBMITTERS 4

static tw_worker *worker;
static long per_submitter;
static long next_seq[SUBMITTERS]; /* touched only by running items */
static long ran;
static atomic_int running;
static atomic_long overlaps;
static atomic_long rejected;

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

int main(void) {
  uv_thread_t t[SUBMITTERS];
  uintptr_t s;
  twt_alloc_install();
  per_submitter = stress_scaled(1000000);
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
  stress_check_no_leaks();
  printf("serial_worker: %ld items from %d submitters, exactly once, FIFO per "
         "submitter, never two at once\n",
         ran, SUBMITTERS);
  return 0;
}
