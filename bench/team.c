/*
 * bench/team: 1M no-op items through a team of 2 thread workers (tw_pool_new
 * with a limit of 2, coordinated by the serial worker) versus the same items
 * through uv_queue_work on libuv's pool sized to 2 (UV_THREADPOOL_SIZE=2),
 * driven by uv_run, same process. Both sides: submit everything from one
 * thread, stop the clock when the last item has run. libuv gets its best
 * case: preallocated uv_work_t, no after_work callback work.
 *
 * Prints the medians of REPS runs and the ratio (libuv time / team time,
 * > 1 means the team is faster). Goal: >= 1.0.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

#include <twuv.h>

#define N 1000000L
#define REPS 5

static atomic_long done;
static uv_sem_t all_done;

static void noop(void *arg) {
  (void)arg;
  if (atomic_fetch_add_explicit(&done, 1, memory_order_acq_rel) + 1 == N)
    uv_sem_post(&all_done);
}

static size_t limit_two(void *ctx) {
  (void)ctx;
  return 2;
}

static double run_team(void) {
  tw_team *team;
  tw_worker *w;
  uint64_t start;
  long i;
  double secs;
  atomic_store(&done, 0);
  if (tw_pool_new(&team, limit_two, NULL, "tw-bench") != 0) abort();
  /* Both threads exist before the clock starts, as libuv's do. */
  tw_team_grow(team, 2);
  w = tw_team_worker(team);
  start = uv_hrtime();
  for (i = 0; i < N; i++)
    if (tw_worker_do(w, noop, NULL) != 0) abort();
  uv_sem_wait(&all_done);
  secs = (double)(uv_hrtime() - start) / 1e9;
  tw_worker_free(w);
  return secs;
}

static void uv_noop(uv_work_t *req) { noop(req); }
static void uv_after(uv_work_t *req, int status) {
  (void)req;
  (void)status;
}

static double run_uv(uv_work_t *reqs) {
  uv_loop_t loop;
  uint64_t start;
  long i;
  double secs;
  atomic_store(&done, 0);
  uv_loop_init(&loop);
  start = uv_hrtime();
  for (i = 0; i < N; i++)
    if (uv_queue_work(&loop, &reqs[i], uv_noop, uv_after) != 0) abort();
  uv_sem_wait(&all_done);
  secs = (double)(uv_hrtime() - start) / 1e9;
  uv_run(&loop, UV_RUN_DEFAULT); /* the completions, off the clock */
  uv_loop_close(&loop);
  return secs;
}

/* Start libuv's pool (it starts on first use) before timing anything. */
static void warm_up(void) {
  uv_loop_t loop;
  uv_work_t req;
  atomic_store(&done, N - 1);
  uv_loop_init(&loop);
  uv_queue_work(&loop, &req, uv_noop, uv_after);
  uv_sem_wait(&all_done);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(void) {
  double team[REPS], uvt[REPS], mt, mu;
  uv_work_t *reqs = malloc(sizeof(uv_work_t) * N);
  int r;
  if (reqs == NULL) abort();
  setenv("UV_THREADPOOL_SIZE", "2", 1);
  uv_sem_init(&all_done, 0);
  warm_up();
  for (r = 0; r < REPS; r++) {
    team[r] = run_team();
    uvt[r] = run_uv(reqs);
  }
  qsort(team, REPS, sizeof(double), cmp_double);
  qsort(uvt, REPS, sizeof(double), cmp_double);
  mt = team[REPS / 2];
  mu = uvt[REPS / 2];
  printf("%ld no-op items, 2 threads, median of %d: team %.3f s (%.2f M "
         "items/s), uv_queue_work %.3f s (%.2f M items/s), ratio %.2f\n",
         N, REPS, mt, N / mt / 1e6, mu, N / mu / 1e6, mu / mt);
  uv_sem_destroy(&all_done);
  free(reqs);
  return 0;
}
