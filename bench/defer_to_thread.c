/*
 * bench/defer_to_thread: jobs run on a thread pool with their results back
 * on the loop, with pools of 2 and 8 threads.
 *
 *   burst    100k no-op jobs submitted at once from the loop; the clock stops
 *            when the last result has reached the loop
 *   latency  one job at a time (submit, wait for the result on the loop,
 *            submit the next): p50 and p99 of the round trip
 *
 *   twuv      tw_defer_to_thread: a Deferred per job, fired on the loop
 *   baseline  uv_queue_work + after_work_cb (libuv's pool, sized with
 *             UV_THREADPOOL_SIZE - read once per process, so each pool size
 *             runs in a child process of its own; twuv and libuv alternate
 *             rounds in that child), with a request allocated per job and
 *             freed in after_work_cb, as code that submits jobs one by one
 *             must (twuv allocates its per-job state too)
 *
 * Also runs bench/defer_to_thread_twisted.py (Twisted 22.4, deferToThread)
 * with Debian's /usr/bin/python3 when it is there.
 */
#include <math.h>
#include <twuv.h>
#include <unistd.h>

#include "bench.h"

static long N;
static long done;
static int pool_size;

/* ---- twuv ------------------------------------------------------------------ */

static tw_reactor *reactor;

static tw_result noop_job(void *arg) {
  (void)arg;
  return tw_result_none();
}

static tw_result count_result(tw_result r, void *arg) {
  (void)arg;
  if (++done == N) tw_reactor_crash(reactor);
  return r;
}

static tw_result burst(void *arg) {
  long i;
  (void)arg;
  for (i = 0; i < N; i++) {
    tw_deferred *d;
    if (tw_defer_to_thread(reactor, noop_job, NULL, NULL, &d) != 0) abort();
    tw_deferred_add_callback(d, count_result, NULL);
    tw_deferred_unref(d);
  }
  return tw_result_none();
}

static double twuv_burst(void) {
  double t0;
  done = 0;
  tw_reactor_call_when_running(reactor, burst, NULL, NULL, NULL);
  t0 = bench_now();
  tw_reactor_run(reactor);
  return bench_now() - t0;
}

static double *samples;
static long nsamples, trips;
static double sent_at;

static tw_result next_trip(void *arg);

static tw_result trip_done(tw_result r, void *arg) {
  (void)arg;
  samples[nsamples++] = bench_now() - sent_at;
  if (nsamples == trips)
    tw_reactor_crash(reactor);
  else
    next_trip(NULL);
  return r;
}

static tw_result next_trip(void *arg) {
  tw_deferred *d;
  (void)arg;
  sent_at = bench_now();
  if (tw_defer_to_thread(reactor, noop_job, NULL, NULL, &d) != 0) abort();
  tw_deferred_add_callback(d, trip_done, NULL);
  tw_deferred_unref(d);
  return tw_result_none();
}

static void twuv_latency(void) {
  nsamples = 0;
  tw_reactor_call_when_running(reactor, next_trip, NULL, NULL, NULL);
  tw_reactor_run(reactor);
}

/* ---- baseline: uv_queue_work ------------------------------------------------- */

static uv_loop_t loop;
static uv_work_t *reqs;

static void uv_noop(uv_work_t *req) { (void)req; }

static void uv_after(uv_work_t *req, int status) {
  (void)status;
  free(req);
  ++done;
}

static double uv_burst(void) {
  double t0 = bench_now();
  long i;
  done = 0;
  for (i = 0; i < N; i++) {
    uv_work_t *req = malloc(sizeof(*req));
    uv_queue_work(&loop, req, uv_noop, uv_after);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  if (done != N) abort();
  return bench_now() - t0;
}

static void uv_trip_after(uv_work_t *req, int status) {
  (void)status;
  samples[nsamples++] = bench_now() - sent_at;
  if (nsamples < trips) {
    sent_at = bench_now();
    uv_queue_work(&loop, req, uv_noop, uv_trip_after);
  }
}

static void uv_latency(void) {
  nsamples = 0;
  sent_at = bench_now();
  uv_queue_work(&loop, &reqs[0], uv_noop, uv_trip_after);
  uv_run(&loop, UV_RUN_DEFAULT);
}

static void percentiles(double *p50, double *p99) {
  bench_median(samples, (int)nsamples); /* sorts */
  *p50 = samples[nsamples / 2];
  *p99 = samples[(long)((double)nsamples * 0.99)];
}

static void run_twisted(void) {
  char cmd[1024], line[256], version[64];
  double burst_ns, p50, p99;
  FILE *p;
  if (access("/usr/bin/python3", X_OK) != 0) {
    printf("  Twisted: not available (/usr/bin/python3 with twisted)\n");
    return;
  }
  snprintf(cmd, sizeof(cmd),
           "/usr/bin/python3 '%s/defer_to_thread_twisted.py' %d %ld %ld "
           "2>/dev/null",
           TW_BENCH_SOURCE_DIR, pool_size, N / 10, trips / 10);
  p = popen(cmd, "r");
  if (p == NULL) return;
  while (fgets(line, sizeof(line), p) != NULL) {
    if (sscanf(line, "twisted %63s burst_ns_per_job %lf p50_us %lf p99_us %lf",
               version, &burst_ns, &p50, &p99) == 4) {
      printf("  Twisted %s (deferToThread): burst %.0f ns/job, latency p50 "
             "%.1f us, p99 %.1f us\n",
             version, burst_ns, p50, p99);
    }
  }
  if (pclose(p) != 0) printf("  Twisted: not available\n");
}

static int child(int size) {
  int rounds = bench_rounds(5), i;
  double tw[32], uv[32], mt, mu, t50, t99, u50, u99;
  pool_size = size;
  N = bench_scaled(100000);
  trips = bench_scaled(20000);
  reqs = malloc((size_t)N * sizeof(*reqs));
  samples = malloc((size_t)trips * sizeof(*samples));
  uv_loop_init(&loop);
  for (i = 0; i < rounds && i < 32; i++) {
    /* A fresh reactor per round: run() cannot follow a stop, and crash
     * leaves the pool started - which is what the baseline has too. */
    if (i == 0) {
      tw_reactor_new(&reactor, NULL, 0);
      tw_reactor_suggest_thread_pool_size(reactor, size);
    }
    uv[i] = uv_burst();
    tw[i] = twuv_burst();
  }
  mt = bench_median(tw, i);
  mu = bench_median(uv, i);
  printf("pool of %d, %ld no-op jobs, results on the loop: twuv %.0f ns/job, "
         "uv_queue_work %.0f ns/job, ratio %.2f\n",
         size, N, mt * 1e9 / (double)N, mu * 1e9 / (double)N, mu / mt);
  uv_latency();
  percentiles(&u50, &u99);
  twuv_latency();
  percentiles(&t50, &t99);
  printf("  round-trip latency, %ld serial jobs: twuv p50 %.1f us p99 %.1f "
         "us, uv_queue_work p50 %.1f us p99 %.1f us\n",
         trips, t50 * 1e6, t99 * 1e6, u50 * 1e6, u99 * 1e6);
  run_twisted();
  tw_reactor_crash(reactor);
  tw_reactor_free(reactor);
  uv_loop_close(&loop);
  free(reqs);
  free(samples);
  return 0;
}

int main(int argc, char **argv) {
  static const int sizes[] = {2, 8};
  int k;
  /* The child: bench_defer_to_thread POOL_SIZE (run by the parent). */
  if (argc > 1) {
    int n = atoi(argv[1]);
    if (n < 1 || n > 1024) {
      fprintf(stderr, "usage: %s   (runs pools of 2 and 8 threads)\n",
              argv[0]);
      return 2;
    }
    return child(n);
  }
  bench_machine();
  for (k = 0; k < 2; k++) {
    char cmd[4096], size[8];
    snprintf(size, sizeof(size), "%d", sizes[k]);
    snprintf(cmd, sizeof(cmd), "UV_THREADPOOL_SIZE=%s '%s' %s", size, argv[0],
             size);
    fflush(stdout);
    if (system(cmd) != 0) return 1;
  }
  return 0;
}
