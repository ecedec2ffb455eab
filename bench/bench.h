/*
 * bench/bench.h - helpers shared by the benchmarks: timing, medians, the
 * machine line. Each benchmark runs twuv and its baseline alternately in the
 * same process, several rounds, and compares the medians.
 */
#ifndef TW_BENCH_H
#define TW_BENCH_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static inline double bench_now(void) { return (double)uv_hrtime() * 1e-9; }

static int bench_cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static inline double bench_median(double *v, int n) {
  qsort(v, (size_t)n, sizeof(double), bench_cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Rounds: $TWUV_BENCH_ROUNDS (default def). */
static inline int bench_rounds(int def) {
  const char *s = getenv("TWUV_BENCH_ROUNDS");
  int n = s ? atoi(s) : def;
  return n > 0 ? n : def;
}

/* Scale: $TWUV_BENCH_SCALE multiplies iteration counts (default 1). */
static inline long bench_scaled(long n) {
  const char *s = getenv("TWUV_BENCH_SCALE");
  double f = s ? atof(s) : 1.0;
  long v = (long)((double)n * (f > 0 ? f : 1.0));
  return v > 0 ? v : 1;
}

static inline void bench_machine(void) {
  char model[256] = "unknown CPU", line[512];
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (f != NULL) {
    while (fgets(line, sizeof(line), f) != NULL) {
      if (strncmp(line, "model name", 10) == 0) {
        char *p = strchr(line, ':');
        if (p != NULL) {
          snprintf(model, sizeof(model), "%s", p + 2);
          model[strcspn(model, "\n")] = '\0';
        }
        break;
      }
    }
    fclose(f);
  }
  printf("machine: %s, %u CPUs, libuv %s\n", model,
         (unsigned)uv_available_parallelism(), uv_version_string());
}

#endif
