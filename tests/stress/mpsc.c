/*
 * Stress: the intrusive MPSC queue (lib/mpsc.h) with the count protocol the
 * reactor and the thread worker use. 4 producers push 1M items each; one
 * consumer pops exactly what the count promises. Checks: every item arrives
 * exactly once, FIFO per producer.
 */
#include <stdatomic.h>
#include <uv.h>

#include "../../lib/mpsc.h"
#include "stress.h"

#define PRODUCERS 4

typedef struct item {
  tw__mpsc_node node;
  int producer;
  long seq;
} item;

static tw__mpsc q;
static atomic_long count;
static long per_producer;
static item *items[PRODUCERS];

static void produce(void *arg) {
  int p = (int)(intptr_t)arg;
  long i;
  for (i = 0; i < per_producer; i++) {
    item *it = &items[p][i];
    it->producer = p;
    it->seq = i;
    tw__mpsc_push(&q, &it->node);
    atomic_fetch_add_explicit(&count, 1, memory_order_release);
  }
}

int main(void) {
  uv_thread_t t[PRODUCERS];
  long next[PRODUCERS] = {0};
  long total, got = 0;
  int p;
  per_producer = stress_scaled(1000000);
  total = per_producer * PRODUCERS;
  tw__mpsc_init(&q);
  for (p = 0; p < PRODUCERS; p++) {
    items[p] = calloc((size_t)per_producer, sizeof(item));
    CHECK(items[p] != NULL);
  }
  for (p = 0; p < PRODUCERS; p++)
    CHECK(uv_thread_create(&t[p], produce, (void *)(intptr_t)p) == 0);
  while (got < total) {
    long avail = atomic_load_explicit(&count, memory_order_acquire);
    long k;
    for (k = 0; k < avail; k++) {
      item *it = (item *)tw__mpsc_pop_wait(&q);
      CHECK(it->producer >= 0 && it->producer < PRODUCERS);
      CHECK_EQ(it->seq, next[it->producer]);
      next[it->producer]++;
      it->producer = -1; /* exactly once: a second pop would fail above */
    }
    atomic_fetch_sub_explicit(&count, avail, memory_order_relaxed);
    got += avail;
  }
  for (p = 0; p < PRODUCERS; p++) uv_thread_join(&t[p]);
  CHECK(tw__mpsc_pop(&q) == NULL);
  for (p = 0; p < PRODUCERS; p++) {
    CHECK_EQ(next[p], per_producer);
    free(items[p]);
  }
  printf("mpsc: %ld items from %d producers, FIFO per producer\n", total,
         PRODUCERS);
  return 0;
}
