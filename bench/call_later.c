/*
 * bench/call_later: delayed calls.
 *
 *   cancel  schedule N calls (distinct deadlines 1..2 s ahead), then cancel
 *           them all, including releasing every handle
 *   fire    schedule N calls due within ~1 ms and run the loop until all ran
 *
 *   twuv      tw_reactor_call_later: one heap entry per call, one uv_timer_t
 *             for the reactor
 *   baseline  one malloc'd uv_timer_t per call (init, start; stop and
 *             uv_close, freed in the close callback), as plain libuv code
 *             does it; the loop runs until every close completed
 *
 * Also reports the memory a pending call costs, counted through
 * tw_replace_allocator (twuv) and sizeof(uv_timer_t) (baseline).
 */
#include <stdatomic.h>
#include <twuv.h>

#include "bench.h"

static long N;
static long fired;

/* ---- byte-counting allocator (for the memory figure) ------------------------ */

static atomic_long live_bytes;

static void *count_malloc(size_t n) {
  size_t *p = malloc(n + 16);
  if (p == NULL) return NULL;
  p[0] = n;
  atomic_fetch_add(&live_bytes, (long)n);
  return (char *)p + 16;
}

static void count_free(void *q) {
  size_t *p;
  if (q == NULL) return;
  p = (size_t *)((char *)q - 16);
  atomic_fetch_sub(&live_bytes, (long)p[0]);
  free(p);
}

static void *count_realloc(void *q, size_t n) {
  void *r = count_malloc(n);
  if (r == NULL) return NULL;
  if (q != NULL) {
    size_t old = ((size_t *)((char *)q - 16))[0];
    memcpy(r, q, old < n ? old : n);
    count_free(q);
  }
  return r;
}

static void *count_calloc(size_t c, size_t n) {
  void *r = count_malloc(c * n);
  if (r) memset(r, 0, c * n);
  return r;
}

/* ---- twuv ------------------------------------------------------------------- */

static tw_reactor *reactor;

static void tw_noop(void *arg) { (void)arg; }

static void tw_fire(void *arg) {
  (void)arg;
  if (++fired == N) tw_reactor_crash(reactor);
}

static double twuv_cancel(tw_delayed_call **dcs) {
  double t0 = bench_now();
  long i;
  for (i = 0; i < N; i++)
    tw_reactor_call_later(reactor, 1.0 + (double)i * 1e-6, tw_noop, NULL, NULL,
                          &dcs[i]);
  for (i = 0; i < N; i++) {
    tw_delayed_call_cancel(dcs[i]);
    tw_delayed_call_unref(dcs[i]);
  }
  return bench_now() - t0;
}

static double twuv_fire(void) {
  double t0 = bench_now();
  long i;
  fired = 0;
  for (i = 0; i < N; i++)
    tw_reactor_call_later(reactor, (double)(i % 1000) * 1e-6, tw_fire, NULL,
                          NULL, NULL);
  tw_reactor_run(reactor);
  return bench_now() - t0;
}

/* ---- baseline: one uv_timer_t per call -------------------------------------- */

static uv_loop_t loop;

static void free_on_close(uv_handle_t *h) { free(h); }

static void base_noop(uv_timer_t *t) { (void)t; }

static void base_fire(uv_timer_t *t) {
  fired++;
  uv_close((uv_handle_t *)t, free_on_close);
}

static double base_cancel(uv_timer_t **ts) {
  double t0 = bench_now();
  long i;
  for (i = 0; i < N; i++) {
    ts[i] = malloc(sizeof(uv_timer_t));
    uv_timer_init(&loop, ts[i]);
    uv_timer_start(ts[i], base_noop, 1000 + (uint64_t)(i / 1000), 0);
  }
  for (i = 0; i < N; i++) {
    uv_timer_stop(ts[i]);
    uv_close((uv_handle_t *)ts[i], free_on_close);
  }
  uv_run(&loop, UV_RUN_DEFAULT); /* the close callbacks free the timers */
  return bench_now() - t0;
}

static double base_fire_run(void) {
  double t0 = bench_now();
  long i;
  fired = 0;
  for (i = 0; i < N; i++) {
    uv_timer_t *t = malloc(sizeof(*t));
    uv_timer_init(&loop, t);
    uv_timer_start(t, base_fire, (uint64_t)(i % 2), 0);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  return bench_now() - t0;
}

int main(void) {
  int rounds = bench_rounds(5), i;
  double tc[32], bc[32], tf[32], bf[32], mtc, mbc, mtf, mbf;
  tw_delayed_call **dcs;
  uv_timer_t **ts;
  long before;

  tw_replace_allocator(count_malloc, count_realloc, count_calloc, count_free);
  bench_machine();
  N = bench_scaled(1 << 20);
  dcs = malloc((size_t)N * sizeof(*dcs));
  ts = malloc((size_t)N * sizeof(*ts));
  uv_loop_init(&loop);
  tw_reactor_new(&reactor, NULL, 0);

  /* Memory per pending call: schedule N, measure, cancel. */
  before = atomic_load(&live_bytes);
  for (i = 0; i < N; i++)
    tw_reactor_call_later(reactor, 10, tw_noop, NULL, NULL, NULL);
  printf("memory per pending delayed call: twuv %.1f bytes (heap entry + "
         "slot), one uv_timer_t per call %zu bytes\n",
         (double)(atomic_load(&live_bytes) - before) / (double)N,
         sizeof(uv_timer_t));
  tw_reactor_free(reactor);
  /* Time with the plain allocator: the counting one would slow twuv only.
   * Nothing of twuv's is allocated at this point, so swapping is safe. */
  if (atomic_load(&live_bytes) != 0) abort();
  tw_replace_allocator(malloc, realloc, calloc, free);
  tw_reactor_new(&reactor, NULL, 0);

  for (i = 0; i < rounds && i < 32; i++) {
    bc[i] = base_cancel(ts);
    tc[i] = twuv_cancel(dcs);
    bf[i] = base_fire_run();
    tf[i] = twuv_fire();
  }
  mtc = bench_median(tc, i);
  mbc = bench_median(bc, i);
  mtf = bench_median(tf, i);
  mbf = bench_median(bf, i);
  printf("call_later+cancel, %ld calls: twuv %.1f ns/call, uv_timer per call "
         "%.1f ns/call, ratio %.2f\n",
         N, mtc * 1e9 / (double)N, mbc * 1e9 / (double)N, mbc / mtc);
  printf("call_later that fire, %ld calls: twuv %.1f ns/call, uv_timer per "
         "call %.1f ns/call, ratio %.2f\n",
         N, mtf * 1e9 / (double)N, mbf * 1e9 / (double)N, mbf / mtf);
  tw_reactor_free(reactor);
  uv_loop_close(&loop);
  free(dcs);
  free(ts);
  return 0;
}
