/*
 * Stress: the uv worker (worker.h). 4 threads submit 50k items each (scaled)
 * while the loop thread runs; the last submitter quits the worker, and
 * uv_run returns once the accepted work is done. Checks: every item runs
 * exactly once on a pool thread and its arg_free runs exactly once; the
 * worker's memory is released after free and one more uv_run; nothing
 * leaks.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

#include "stress.h"

#define SUBMITTERS 4

typedef struct slot {
  atomic_int runs;
  atomic_int frees;
} slot;

static tw_worker *worker;
static long per_submitter;
static slot *slots[SUBMITTERS];
static atomic_int finished;
static atomic_long bad;
static uv_thread_t loop_thread;

static void item(void *arg) {
  slot *s = arg;
  uv_thread_t self = uv_thread_self();
  if (uv_thread_equal(&self, &loop_thread)) atomic_fetch_add(&bad, 1);
  atomic_fetch_add_explicit(&s->runs, 1, memory_order_relaxed);
}

static void item_free(void *arg) {
  slot *s = arg;
  atomic_fetch_add_explicit(&s->frees, 1, memory_order_relaxed);
}

static void submit(void *arg) {
  uintptr_t p = (uintptr_t)arg;
  long i;
  for (i = 0; i < per_submitter; i++)
    if (tw_worker_do_full(worker, item, &slots[p][i], item_free) != 0)
      atomic_fetch_add(&bad, 1);
  if (atomic_fetch_add(&finished, 1) + 1 == SUBMITTERS)
    CHECK_EQ(tw_worker_quit(worker), 0);
}

int main(void) {
  uv_loop_t loop;
  uv_thread_t t[SUBMITTERS];
  uintptr_t p;
  long i;
  twt_alloc_install();
  per_submitter = stress_scaled(50000);
  loop_thread = uv_thread_self();
  for (p = 0; p < SUBMITTERS; p++) {
    slots[p] = calloc((size_t)per_submitter, sizeof(slot));
    CHECK(slots[p] != NULL);
  }
  CHECK_EQ(uv_loop_init(&loop), 0);
  CHECK_EQ(tw_uv_worker_new(&worker, &loop), 0);
  for (p = 0; p < SUBMITTERS; p++)
    CHECK_EQ(uv_thread_create(&t[p], submit, (void *)p), 0);
  CHECK_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
  for (p = 0; p < SUBMITTERS; p++) uv_thread_join(&t[p]);
  CHECK_EQ(tw_worker_do(worker, item, &slots[0][0]), TW_EALREADYQUIT);
  CHECK_EQ(atomic_load(&bad), 0);
  for (p = 0; p < SUBMITTERS; p++)
    for (i = 0; i < per_submitter; i++) {
      CHECK_EQ(atomic_load(&slots[p][i].runs), 1);
      CHECK_EQ(atomic_load(&slots[p][i].frees), 1);
    }
  CHECK_EQ(tw_worker_free(worker), 0);
  CHECK_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
  CHECK_EQ(uv_loop_close(&loop), 0);
  for (p = 0; p < SUBMITTERS; p++) free(slots[p]);
  stress_check_no_leaks();
  printf("uv_worker: %ld items from %d threads through libuv's pool, each run "
         "and released once\n",
         per_submitter * SUBMITTERS, SUBMITTERS);
  return 0;
}
