/*
 * bench/deferred.c - the cost of a Deferred: create one, add 10 callbacks,
 * fire it, free it; N times. Reports ns per Deferred, allocator calls per
 * callback (through a counting allocator installed with
 * tw_replace_allocator) and the bytes of a Deferred with no callbacks; then
 * runs bench/deferred_twisted.py with Debian's /usr/bin/python3 (which has
 * Twisted 22.4), when it is there, and prints the ratio.
 *
 * usage: bench_deferred [N]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "twuv.h"

#ifndef TW_BENCH_SOURCE_DIR
#define TW_BENCH_SOURCE_DIR "bench"
#endif

#define CALLBACKS 10
#define REPS 5 /* best of: the machine may be shared */

static unsigned long alloc_calls;
static size_t last_size;

static void *count_malloc(size_t size) {
  alloc_calls++;
  last_size = size;
  return malloc(size);
}
static void *count_realloc(void *p, size_t size) {
  alloc_calls++;
  last_size = size;
  return realloc(p, size);
}
static void *count_calloc(size_t n, size_t size) {
  alloc_calls++;
  last_size = n * size;
  return calloc(n, size);
}

static tw_result passthrough(tw_result r, void *arg) {
  (void)arg;
  return r;
}

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int one_deferred(void) {
  tw_deferred *d = tw_deferred_new(NULL, NULL);
  int i;
  if (d == NULL) return -1;
  for (i = 0; i < CALLBACKS; i++)
    if (tw_deferred_add_callback(d, passthrough, NULL) != 0) return -1;
  if (tw_deferred_callback(d, tw_result_none()) != 0) return -1;
  tw_deferred_unref(d);
  return 0;
}

static double run(long n) {
  double start = now_ns();
  long i;
  for (i = 0; i < n; i++)
    if (one_deferred() != 0) {
      fprintf(stderr, "bench_deferred: out of memory\n");
      exit(1);
    }
  return (now_ns() - start) / (double)n;
}

/* ns per Deferred measured by Twisted, or a negative number. */
static double run_twisted(long n, char *version, size_t vlen) {
  char cmd[1024], line[256];
  FILE *p;
  double ns = -1;
  if (access("/usr/bin/python3", X_OK) != 0) return -1;
  snprintf(cmd, sizeof(cmd),
           "/usr/bin/python3 '%s/deferred_twisted.py' %ld 2>/dev/null",
           TW_BENCH_SOURCE_DIR, n);
  p = popen(cmd, "r");
  if (p == NULL) return -1;
  while (fgets(line, sizeof(line), p) != NULL)
    if (sscanf(line, "twisted %63s ns_per_deferred %lf", version, &ns) == 2)
      break;
  version[vlen - 1] = '\0';
  if (pclose(p) != 0) return -1;
  return ns;
}

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 2000000;
  double ns, best = -1, twisted_ns;
  unsigned long calls;
  size_t deferred_bytes;
  char version[64] = "?";
  int rep;
  tw_deferred *d;

  if (n <= 0) n = 2000000;
  tw_replace_allocator(count_malloc, count_realloc, count_calloc, free);

  /* A Deferred with no callbacks: one allocation, of this size. */
  alloc_calls = 0;
  d = tw_deferred_new(NULL, NULL);
  deferred_bytes = last_size;
  calls = alloc_calls;
  tw_deferred_unref(d);
  if (calls != 1) fprintf(stderr, "note: %lu allocations for one Deferred\n", calls);

  run(n / 10 + 1); /* warm up */
  alloc_calls = 0;
  for (rep = 0; rep < REPS; rep++) {
    ns = run(n);
    if (best < 0 || ns < best) best = ns;
  }
  calls = alloc_calls;

  printf("deferred: %ld x (new, %d x add_callback, callback, unref), best of %d\n",
         n, CALLBACKS, REPS);
  printf("  twuv:    %.1f ns per Deferred (%.2f ns per callback)\n", best,
         best / CALLBACKS);
  printf("  allocator calls per Deferred: %.2f (1 for the Deferred itself)\n",
         (double)calls / (REPS * (double)n));
  printf("  allocator calls per callback: %.2f (excluding the Deferred)\n",
         ((double)calls / (REPS * (double)n) - 1.0) / CALLBACKS);
  printf("  bytes per Deferred with no callbacks: %zu\n", deferred_bytes);

  twisted_ns = run_twisted(n / 10 > 200000 ? 200000 : n / 10 + 1, version,
                           sizeof(version));
  if (twisted_ns > 0) {
    printf("  Twisted %s: %.1f ns per Deferred\n", version, twisted_ns);
    printf("  ratio: %.1fx faster than Twisted (goal >= 50x)\n",
           twisted_ns / best);
  } else {
    printf("  Twisted: not available (/usr/bin/python3 with twisted), no ratio\n");
  }
  return 0;
}
