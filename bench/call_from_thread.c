/*
 * bench/call_from_thread: N trivial calls handed from P producer threads to
 * the loop thread, with 1 and 4 producers.
 *
 *   twuv      tw_reactor_call_from_thread (lock-free MPSC queue, one
 *             uv_async_t, wake only on empty -> non-empty)
 *   baseline  what one writes by hand with libuv: a mutex-protected linked
 *             list of malloc'd nodes + uv_async_send when it was empty; the
 *             async callback detaches the list under the lock and runs it
 *
 * Both allocate one node per call and run the same function on the loop.
 * Time: from releasing the producers until the last call has run.
 * Prints the medians and the ratio baseline / twuv (> 1: twuv is faster).
 */
#include <stdatomic.h>
#include <twuv.h>

#include "bench.h"

static long N;
static int P;
static long done;
static uv_barrier_t start_barrier;

/* ---- twuv ---------------------------------------------------------------- */

static tw_reactor *reactor;

static void tw_work(void *arg) {
  (void)arg;
  if (++done == N) tw_reactor_crash(reactor);
}

static void tw_producer_thread(void *arg) {
  long i, n = N / P;
  (void)arg;
  uv_barrier_wait(&start_barrier);
  for (i = 0; i < n; i++)
    while (tw_reactor_call_from_thread(reactor, tw_work, NULL, NULL) != 0) {
    }
}

static double run_twuv(void) {
  uv_thread_t t[8];
  double t0;
  int i;
  done = 0;
  if (tw_reactor_new(&reactor, NULL, 0) != 0) abort();
  uv_barrier_init(&start_barrier, (unsigned)P + 1);
  for (i = 0; i < P; i++) uv_thread_create(&t[i], tw_producer_thread, NULL);
  uv_barrier_wait(&start_barrier);
  t0 = bench_now();
  tw_reactor_run(reactor);
  t0 = bench_now() - t0;
  for (i = 0; i < P; i++) uv_thread_join(&t[i]);
  uv_barrier_destroy(&start_barrier);
  tw_reactor_free(reactor);
  return t0;
}

/* ---- baseline: mutex queue + uv_async_send -------------------------------- */

typedef struct node {
  struct node *next;
  void (*fn)(void *);
  void *arg;
} node;

static uv_loop_t loop;
static uv_async_t async;
static uv_mutex_t mutex;
static node *head, **tail = &head;

static void base_work(void *arg) {
  (void)arg;
  if (++done == N) uv_close((uv_handle_t *)&async, NULL);
}

static void base_async_cb(uv_async_t *h) {
  node *list, *n;
  (void)h;
  uv_mutex_lock(&mutex);
  list = head;
  head = NULL;
  tail = &head;
  uv_mutex_unlock(&mutex);
  while ((n = list) != NULL) {
    list = n->next;
    n->fn(n->arg);
    free(n);
  }
}

static void base_producer(void *arg) {
  long i, n = N / P;
  (void)arg;
  uv_barrier_wait(&start_barrier);
  for (i = 0; i < n; i++) {
    node *x = malloc(sizeof(*x));
    int was_empty;
    x->next = NULL;
    x->fn = base_work;
    x->arg = NULL;
    uv_mutex_lock(&mutex);
    was_empty = head == NULL;
    *tail = x;
    tail = &x->next;
    uv_mutex_unlock(&mutex);
    if (was_empty) uv_async_send(&async);
  }
}

static double run_baseline(void) {
  uv_thread_t t[8];
  double t0;
  int i;
  done = 0;
  uv_loop_init(&loop);
  uv_mutex_init(&mutex);
  uv_async_init(&loop, &async, base_async_cb);
  uv_barrier_init(&start_barrier, (unsigned)P + 1);
  for (i = 0; i < P; i++) uv_thread_create(&t[i], base_producer, NULL);
  uv_barrier_wait(&start_barrier);
  t0 = bench_now();
  uv_run(&loop, UV_RUN_DEFAULT);
  t0 = bench_now() - t0;
  for (i = 0; i < P; i++) uv_thread_join(&t[i]);
  uv_barrier_destroy(&start_barrier);
  uv_mutex_destroy(&mutex);
  uv_loop_close(&loop);
  return t0;
}

int main(void) {
  static const int producers[] = {1, 4};
  int rounds = bench_rounds(7), k, i;
  bench_machine();
  for (k = 0; k < 2; k++) {
    double tw[32], base[32], mt, mb;
    P = producers[k];
    N = bench_scaled(2000000) / P * P;
    for (i = 0; i < rounds && i < 32; i++) {
      base[i] = run_baseline();
      tw[i] = run_twuv();
    }
    mt = bench_median(tw, i);
    mb = bench_median(base, i);
    printf("call_from_thread %d producer%s, %ld calls: twuv %.1f ns/call "
           "(%.2f M/s), mutex+async %.1f ns/call (%.2f M/s), ratio %.2f\n",
           P, P == 1 ? "" : "s", N, mt * 1e9 / (double)N,
           (double)N / mt / 1e6, mb * 1e9 / (double)N, (double)N / mb / 1e6,
           mb / mt);
  }
  return 0;
}
