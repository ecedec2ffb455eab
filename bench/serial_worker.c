/*
 * bench/serial_worker: trivial work (one increment of a shared counter)
 * submitted by 1, 2 and 4 threads to an exclusive worker: twuv's lock-free
 * serial worker versus a mutex-based LockWorker (tw_lock_worker_new: the
 * design of Twisted's pool coordinator), same work, same process.
 *
 * Each configuration runs REPS times alternating the two sides; the medians
 * are printed with their ratio (LockWorker time / serial worker time, so
 * > 1 means the serial worker is faster). Goal: >= 2.0 with 2 or more
 * submitters, >= 1.0 with one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

#include <twuv.h>

#define TOTAL 4000000L
#define REPS 5
#define MAX_THREADS 4

/*
 * The work's state, exclusive: the worker never runs two items at once. On
 * a cache line of its own: left to the linker it shared one with worker and
 * per_thread, which every submitter reads on every do, so each item's write
 * bounced that line between cores - a cost of the harness's layout, not of
 * either worker (it slowed both sides; which side more depended on how many
 * submitters ran).
 */
static struct {
  _Alignas(64) long n;
  char pad[64 - sizeof(long)];
} counter;
static tw_worker *worker;
static long per_thread;
static uv_barrier_t barrier;

static void bump(void *arg) {
  (void)arg;
  counter.n++;
}

static void submitter(void *arg) {
  long i;
  (void)arg;
  uv_barrier_wait(&barrier);
  for (i = 0; i < per_thread; i++)
    if (tw_worker_do(worker, bump, NULL) != 0) abort();
}

/* Seconds to run TOTAL items through w from nthreads threads. */
static double run(tw_worker *w, int nthreads) {
  uv_thread_t t[MAX_THREADS];
  uint64_t start;
  int i;
  worker = w;
  counter.n = 0;
  per_thread = TOTAL / nthreads;
  uv_barrier_init(&barrier, (unsigned)nthreads + 1);
  for (i = 0; i < nthreads; i++)
    if (uv_thread_create(&t[i], submitter, NULL) != 0) abort();
  uv_barrier_wait(&barrier);
  start = uv_hrtime();
  /* Every drain ends before its submitter's do returns: joined means done. */
  for (i = 0; i < nthreads; i++) uv_thread_join(&t[i]);
  {
    double secs = (double)(uv_hrtime() - start) / 1e9;
    uv_barrier_destroy(&barrier);
    if (counter.n != per_thread * nthreads) {
      fprintf(stderr, "lost items: %ld\n", counter.n);
      exit(1);
    }
    return secs;
  }
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(void) {
  static const int threads[] = {1, 2, 4};
  size_t k;
  printf("serial worker vs mutex LockWorker, %ld trivial items, median of %d\n",
         TOTAL, REPS);
  for (k = 0; k < sizeof(threads) / sizeof(threads[0]); k++) {
    double serial[REPS], lock[REPS], ms, ml;
    int r;
    for (r = 0; r < REPS; r++) {
      tw_worker *w;
      if (tw_serial_worker_new(&w) != 0) abort();
      serial[r] = run(w, threads[k]);
      tw_worker_free(w);
      if (tw_lock_worker_new(&w) != 0) abort();
      lock[r] = run(w, threads[k]);
      tw_worker_free(w);
    }
    qsort(serial, REPS, sizeof(double), cmp_double);
    qsort(lock, REPS, sizeof(double), cmp_double);
    ms = serial[REPS / 2];
    ml = lock[REPS / 2];
    printf("%d submitter(s): serial %.3f s (%.1f M items/s), LockWorker %.3f s "
           "(%.1f M items/s), ratio %.2f\n",
           threads[k], ms, TOTAL / ms / 1e6, ml, TOTAL / ml / 1e6, ml / ms);
  }
  return 0;
}
