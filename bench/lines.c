/*
 * bench/lines: lines parsed per second by tw_line_receiver (basic.h), fed
 * 1 MiB buffers of 64-byte lines (62 bytes and "\r\n") through a string
 * transport, each line counted by line_received, against
 *
 *   hand     the same parse written by hand in C: a memchr loop for '\r',
 *            checking the '\n', calling the same kind of callback through
 *            a function pointer, carrying a split line over to the next
 *            buffer (none is split here: 1 MiB is 16384 lines)
 *   twisted  bench/lines_twisted.py: Twisted 22.4's LineReceiver on the
 *            same buffers, when /usr/bin/python3 has Twisted
 *
 * Times are the parsing thread's CPU time (CLOCK_THREAD_CPUTIME_ID; Python's
 * time.thread_time()), so that a loaded machine's other processes do not
 * count; the rates are lines per CPU second.
 *
 * twuv and hand alternate, several rounds, in this process; Twisted runs
 * once per round in a child. Printed: the medians, the ratios twuv/hand
 * (goal >= 0.8) and twuv/Twisted (goal >= 20), and the twuv allocations
 * made while parsing (0: lines inside a buffer are passed in place).
 *
 * Two more cases feed the same stream in 64 KiB reads (what a socket read
 * gives: Twisted's LineReceiver copies the rest of its buffer for every
 * line, so its rate falls with the read size, and 1 MiB reads are its
 * worst case) and in 1000-byte reads (most reads end in a split line,
 * which the receiver assembles in its buffer).
 *
 * Usage: bench_lines [rounds]  (default 7; TWUV_BENCH_SCALE scales the
 * number of buffers per round, 64 by default)
 */
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <twuv.h>

#include "bench.h"

#define BUF_SIZE (1024 * 1024)
#define LINE 64
#define MAX_ROUNDS 31

static char *buf;

/* The parse is one thread's CPU work: its CPU time, not the wall clock, so
 * that other processes on a loaded machine do not count (Twisted's side
 * uses time.thread_time() alike). */
static double cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- twuv --------------------------------------------------------------------- */

typedef struct counter {
  tw_line_receiver lr;
  long lines;
  size_t bytes;
} counter;

static tw_failure *count_line(tw_line_receiver *lr, const char *line,
                              size_t len) {
  counter *c = (counter *)lr;
  (void)line;
  c->lines++;
  c->bytes += len;
  return NULL;
}

static const tw_line_receiver_ops counter_ops = {.line_received = count_line};

/* Counts twuv's allocations while parsing. */
static long allocs;
static void *count_malloc(size_t n) { allocs++; return malloc(n); }
static void *count_realloc(void *p, size_t n) { allocs++; return realloc(p, n); }
static void *count_calloc(size_t a, size_t b) { allocs++; return calloc(a, b); }

static double run_twuv(long buffers, size_t read_size, long *allocs_out) {
  tw_string_transport *st;
  counter c;
  double t0, t;
  long i, a0;
  size_t off;
  memset(&c, 0, sizeof c);
  tw_line_receiver_init(&c.lr, &counter_ops);
  if (tw_string_transport_new(&st, NULL, NULL, 0) != 0 ||
      tw_string_transport_connect(st, &c.lr.base) != 0) {
    fprintf(stderr, "bench_lines: string transport\n");
    exit(1);
  }
  a0 = allocs;
  t0 = cpu_now();
  for (i = 0; i < buffers; i++)
    for (off = 0; off < BUF_SIZE; off += read_size)
      tw_string_transport_receive(
          st, buf + off, BUF_SIZE - off < read_size ? BUF_SIZE - off : read_size);
  t = cpu_now() - t0;
  *allocs_out = allocs - a0;
  if (c.lines != buffers * (BUF_SIZE / LINE) ||
      c.bytes != (size_t)c.lines * (LINE - 2)) {
    fprintf(stderr, "bench_lines: twuv counted %ld lines\n", c.lines);
    exit(1);
  }
  tw_string_transport_free(st);
  return (double)c.lines / t;
}

/* ---- by hand ---------------------------------------------------------------------- */

typedef struct hand {
  void (*line)(struct hand *h, const char *line, size_t len);
  long lines;
  size_t bytes;
  char carry[LINE * 4];
  size_t carry_len;
} hand;

static void hand_line(hand *h, const char *line, size_t len) {
  (void)line;
  h->lines++;
  h->bytes += len;
}

/* The obvious parse: memchr for '\r', check '\n', callback; a split line
 * is completed in a small carry buffer (lines here are short). */
static void hand_feed(hand *h, const char *d, size_t n) {
  const char *p = d, *end = d + n;
  if (h->carry_len > 0) {
    size_t take = 0;
    while (take < n && h->carry_len + take < sizeof h->carry) {
      h->carry[h->carry_len + take] = d[take];
      take++;
      if (h->carry_len + take >= 2 &&
          h->carry[h->carry_len + take - 2] == '\r' &&
          h->carry[h->carry_len + take - 1] == '\n')
        break;
    }
    h->carry_len += take;
    p = d + take;
    if (h->carry_len >= 2 && h->carry[h->carry_len - 2] == '\r' &&
        h->carry[h->carry_len - 1] == '\n') {
      h->line(h, h->carry, h->carry_len - 2);
      h->carry_len = 0;
    } else {
      return;
    }
  }
  while (p < end) {
    const char *cr = memchr(p, '\r', (size_t)(end - p));
    if (cr == NULL || cr + 1 >= end) break;
    if (cr[1] != '\n') {
      p = cr + 1; /* a lone '\r' is part of the line: go on searching */
      continue;
    }
    h->line(h, p, (size_t)(cr - p));
    p = cr + 2;
  }
  if (p < end) {
    memcpy(h->carry, p, (size_t)(end - p));
    h->carry_len = (size_t)(end - p);
  }
}

static double run_hand(long buffers, size_t read_size) {
  hand h;
  double t0, t;
  long i;
  size_t off;
  memset(&h, 0, sizeof h);
  h.line = hand_line;
  t0 = cpu_now();
  for (i = 0; i < buffers; i++)
    for (off = 0; off < BUF_SIZE; off += read_size)
      hand_feed(&h, buf + off,
                BUF_SIZE - off < read_size ? BUF_SIZE - off : read_size);
  t = cpu_now() - t0;
  if (h.lines != buffers * (BUF_SIZE / LINE)) {
    fprintf(stderr, "bench_lines: hand counted %ld lines\n", h.lines);
    exit(1);
  }
  return (double)h.lines / t;
}

/* ---- Twisted ------------------------------------------------------------------------ */

static char twisted_script[4096];

static int twisted_available(void) {
  return bench_twisted_available(twisted_script);
}

static double run_twisted(long buffers, size_t read_size) {
  char cmd[4200];
  FILE *p;
  long lines = 0;
  double secs = 0;
  snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %ld %zu", twisted_script,
           buffers, read_size);
  p = popen(cmd, "r");
  if (p == NULL || fscanf(p, "%ld %lf", &lines, &secs) != 2 || secs <= 0) {
    fprintf(stderr, "bench_lines: the Twisted run failed\n");
    exit(1);
  }
  pclose(p);
  return (double)lines / secs;
}

/* ---- main ------------------------------------------------------------------------------ */

static void range(double *v, int n, double *lo, double *hi) {
  int i;
  *lo = *hi = v[0];
  for (i = 1; i < n; i++) {
    if (v[i] < *lo) *lo = v[i];
    if (v[i] > *hi) *hi = v[i];
  }
}

static void one_case(const char *name, size_t read_size, int rounds,
                     long buffers, int with_twisted) {
  double tw[MAX_ROUNDS], hd[MAX_ROUNDS], py[MAX_ROUNDS], ratio[MAX_ROUNDS];
  double lo, hi, mt, mh;
  long a = 0, a_total = 0;
  int r;
  for (r = 0; r < rounds; r++) {
    if (r % 2 == 0) {
      tw[r] = run_twuv(buffers, read_size, &a);
      hd[r] = run_hand(buffers, read_size);
    } else {
      hd[r] = run_hand(buffers, read_size);
      tw[r] = run_twuv(buffers, read_size, &a);
    }
    a_total += a;
    ratio[r] = tw[r] / hd[r];
    /* Twisted is far slower: a 16th of the buffers is plenty */
    if (with_twisted)
      py[r] = run_twisted(buffers / 16 > 0 ? buffers / 16 : 1, read_size);
  }
  printf("%s (%ld MiB per round, %zu-byte reads):\n", name, buffers,
         read_size);
  range(tw, rounds, &lo, &hi);
  mt = bench_median(tw, rounds);
  printf("  twuv LineReceiver  %8.2f M lines/s (%.2f - %.2f)\n", mt / 1e6,
         lo / 1e6, hi / 1e6);
  range(hd, rounds, &lo, &hi);
  mh = bench_median(hd, rounds);
  printf("  hand-written C     %8.2f M lines/s (%.2f - %.2f)\n", mh / 1e6,
         lo / 1e6, hi / 1e6);
  range(ratio, rounds, &lo, &hi);
  printf("  twuv/hand          %8.2f (median of the rounds' ratios; %.2f - "
         "%.2f; goal >= 0.8)\n",
         bench_median(ratio, rounds), lo, hi);
  if (with_twisted) {
    double mp;
    range(py, rounds, &lo, &hi);
    mp = bench_median(py, rounds);
    printf("  Twisted 22.4       %8.3f M lines/s (%.3f - %.3f)\n", mp / 1e6,
           lo / 1e6, hi / 1e6);
    printf("  twuv/Twisted       %8.1f (goal >= 20)\n", mt / mp);
  }
  printf("  twuv allocations while parsing: %.1f per MiB\n",
         (double)a_total / ((double)rounds * (double)buffers));
}

int main(int argc, char **argv) {
  int rounds = argc > 1 ? atoi(argv[1]) : bench_rounds(7), twisted;
  long buffers = bench_scaled(64);
  size_t i;
  if (rounds <= 0) rounds = 7;
  if (rounds > MAX_ROUNDS) rounds = MAX_ROUNDS;
  buf = malloc(BUF_SIZE);
  if (buf == NULL) return 1;
  for (i = 0; i < BUF_SIZE; i++)
    buf[i] = i % LINE == LINE - 2   ? '\r'
             : i % LINE == LINE - 1 ? '\n'
                                    : (char)('a' + (i % LINE) % 26);
  tw_replace_allocator(count_malloc, count_realloc, count_calloc, free);
  snprintf(twisted_script, sizeof twisted_script, "%s/lines_twisted.py",
           TW_BENCH_SOURCE_DIR);
  twisted = twisted_available();
  bench_machine();
  printf("bench_lines: %d rounds%s\n", rounds,
         twisted ? "" : " (no Twisted: /usr/bin/python3 lacks it)");
  one_case("1 MiB reads", BUF_SIZE, rounds, buffers, twisted);
  one_case("64 KiB reads", 65536, rounds, buffers, twisted);
  one_case("1000-byte reads", 1000, rounds, buffers, 0);
  free(buf);
  tw_thread_cleanup();
  return 0;
}
