/*
 * Stress: tw_reactor_call_from_thread from 4 producer threads, 1M calls each,
 * while a fifth thread stops the reactor early (through call_from_thread,
 * as the contract requires). Every call must be accounted for exactly once:
 * run and then released, released without running (accepted before the
 * queue closed), or refused with TW_ESHUTDOWN (never accepted). FIFO per
 * producer among the calls that ran. No twuv allocation may leak. The stop
 * comes a quarter of the way in, so that most producers race the closing
 * of the queue and many calls are refused.
 */
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <uv.h>

#include "stress.h"

#define PRODUCERS 4

static tw_reactor *reactor;
static long per_producer;
static unsigned char *ran[PRODUCERS], *released[PRODUCERS],
    *refused[PRODUCERS];
static long last_run[PRODUCERS];
static atomic_long submitted;
static atomic_int fifo_broken;

typedef struct {
  int producer;
} producer_t;

static void on_call(void *arg) {
  uintptr_t v = (uintptr_t)arg;
  int p = (int)(v & 3);
  long i = (long)(v >> 2);
  ran[p][i]++;
  if (i <= last_run[p]) atomic_store(&fifo_broken, 1);
  last_run[p] = i;
}

static void on_release(void *arg) {
  uintptr_t v = (uintptr_t)arg;
  released[v & 3][v >> 2]++;
}

static void produce(void *arg) {
  int p = ((producer_t *)arg)->producer;
  long i;
  for (i = 0; i < per_producer; i++) {
    void *a = (void *)(((uintptr_t)i << 2) | (uintptr_t)p);
    int err;
    while ((err = tw_reactor_call_from_thread(reactor, on_call, a,
                                              on_release)) == TW_ENOMEM) {
    }
    if (err == TW_ESHUTDOWN)
      refused[p][i] = 1;
    else
      CHECK_EQ(err, 0);
    atomic_fetch_add_explicit(&submitted, 1, memory_order_relaxed);
  }
}

static void stop_now(void *arg) { CHECK_EQ(tw_reactor_stop(arg), 0); }

static void stopper(void *arg) {
  long quarter = per_producer * PRODUCERS / 4;
  (void)arg;
  while (atomic_load_explicit(&submitted, memory_order_relaxed) < quarter)
    sched_yield();
  CHECK_EQ(tw_reactor_call_from_thread(reactor, stop_now, reactor, NULL), 0);
}

int main(void) {
  uv_thread_t t[PRODUCERS], s;
  producer_t args[PRODUCERS];
  long total_ran = 0, total_released = 0, total_refused = 0, i;
  int p;

  twt_alloc_install();
  per_producer = stress_scaled(1000000);
  for (p = 0; p < PRODUCERS; p++) {
    ran[p] = calloc((size_t)per_producer, 1);
    released[p] = calloc((size_t)per_producer, 1);
    refused[p] = calloc((size_t)per_producer, 1);
    CHECK(ran[p] && released[p] && refused[p]);
    last_run[p] = -1;
  }
  CHECK_EQ(tw_reactor_new(&reactor, NULL, 0), 0);
  for (p = 0; p < PRODUCERS; p++) {
    args[p].producer = p;
    CHECK_EQ(uv_thread_create(&t[p], produce, &args[p]), 0);
  }
  CHECK_EQ(uv_thread_create(&s, stopper, NULL), 0);
  CHECK_EQ(tw_reactor_run(reactor), 0);
  /* Stopped for good: later calls are refused, none is lost. */
  for (p = 0; p < PRODUCERS; p++) uv_thread_join(&t[p]);
  uv_thread_join(&s);
  CHECK_EQ(tw_reactor_free(reactor), 0);

  for (p = 0; p < PRODUCERS; p++) {
    for (i = 0; i < per_producer; i++) {
      int r = ran[p][i], f = released[p][i], x = refused[p][i];
      CHECK(r <= 1 && f <= 1);
      /* exactly one fate per call */
      CHECK((x == 1 && r == 0 && f == 0) || (x == 0 && f == 1));
      total_ran += r;
      total_released += f;
      total_refused += x;
    }
    free(ran[p]);
    free(released[p]);
    free(refused[p]);
  }
  CHECK(!atomic_load(&fifo_broken));
  CHECK(total_ran > 0);
  stress_check_no_leaks();
  printf("call_from_thread: %ld calls: %ld ran, %ld released unrun, %ld refused\n",
         per_producer * PRODUCERS, total_ran, total_released - total_ran,
         total_refused);
  return 0;
}
