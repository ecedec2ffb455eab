/*
 * bench/spawn.c - processes spawned and reaped per second (/bin/true):
 *   twuv     tw_spawn_process; a process counts when process_ended runs
 *            (exited, and every pipe closed: Twisted's processEnded)
 *   libuv    raw uv_spawn doing the same work by hand: the same pipes,
 *            read to EOF and closed, the exit callback, the handle closed
 *   twisted  bench/spawn_twisted.py on Debian's python3 (Twisted 22.4), when
 *            /usr/bin/python3 has it
 * in two modes: "pipes" (the default childFDs: stdin, stdout and stderr
 * pipes; stdin is read for the child's EOF, as twuv does) and "nopipes"
 * (child_fds empty: only the process). WINDOW processes are in flight at
 * a time; twuv and libuv alternate in the same process, ROUNDS rounds of
 * COUNT processes each; medians are compared (goal: twuv >= 0.9x libuv).
 * Environment: empty for all three (twuv's and Twisted's default).
 * TWUV_BENCH_ROUNDS, TWUV_BENCH_SCALE as for the other benchmarks.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <twuv.h>
#include <unistd.h>
#include <uv.h>

#include "bench.h"

#define WINDOW 4
#define MAX_ROUNDS 32

static const char *const true_argv[] = {"/bin/true", NULL};
static const char *const empty_env[] = {NULL};
static long count;
static int with_pipes;
static int started, done_n;

static void die(const char *what, int err) {
  fprintf(stderr, "bench_spawn: %s: %s\n", what, tw_strerror(err));
  exit(1);
}

/* ---- twuv ------------------------------------------------------------------ */

static tw_reactor *R;

static void twuv_spawn_one(void);

static void twuv_ended(tw_process_protocol *pp, tw_failure *reason) {
  (void)reason;
  (void)pp;
  done_n++;
  if (started < count) twuv_spawn_one();
  if (done_n == count) tw_reactor_crash(R);
}

static const tw_process_protocol_ops twuv_ops = {.process_ended = twuv_ended};

static void twuv_dealloc(tw_process_protocol *pp) { free(pp); }

static void twuv_spawn_one(void) {
  static const tw_child_fd none[1] = {{0, 'w', 0}};
  tw_process_protocol *pp = malloc(sizeof(*pp));
  tw_transport *t;
  int err;
  if (pp == NULL) die("malloc", TW_ENOMEM);
  tw_process_protocol_init(pp, &twuv_ops);
  pp->dealloc = twuv_dealloc;
  err = tw_spawn_process(R, pp, "/bin/true", true_argv, NULL, NULL,
                         with_pipes ? NULL : none, 0, NULL, &t);
  if (err != 0) die("tw_spawn_process", err);
  started++;
}

static void twuv_start(void *arg) {
  int i;
  (void)arg;
  for (i = 0; i < WINDOW && started < count; i++) twuv_spawn_one();
}

static double run_twuv(void) {
  double t0;
  started = done_n = 0;
  t0 = bench_now();
  tw_reactor_call_later(R, 0, twuv_start, NULL, NULL, NULL);
  tw_reactor_run(R);
  if (done_n != count) die("twuv round", TW_EINVAL);
  return (double)count / (bench_now() - t0);
}

/* ---- raw libuv ---------------------------------------------------------------- */

typedef struct raw_proc {
  uv_process_t h;
  uv_pipe_t pipes[3];
  int open; /* handles not closed yet: the process and the pipes */
} raw_proc;

static uv_loop_t *L;
static char rbuf[65536];

static void raw_spawn_one(void);

static void raw_closed(uv_handle_t *h) {
  raw_proc *p = h->data;
  if (--p->open > 0) return;
  free(p);
  done_n++;
  if (started < count) raw_spawn_one();
}

static void raw_alloc(uv_handle_t *h, size_t s, uv_buf_t *b) {
  (void)h;
  (void)s;
  *b = uv_buf_init(rbuf, sizeof(rbuf));
}

static void raw_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  (void)b;
  if (n < 0) uv_close((uv_handle_t *)s, raw_closed);
}

static void raw_exit(uv_process_t *h, int64_t st, int sig) {
  (void)st;
  (void)sig;
  uv_close((uv_handle_t *)h, raw_closed);
}

static void raw_spawn_one(void) {
  raw_proc *p = calloc(1, sizeof(*p));
  uv_process_options_t o;
  uv_stdio_container_t stdio[3];
  int i, err;
  if (p == NULL) die("calloc", TW_ENOMEM);
  memset(&o, 0, sizeof(o));
  o.file = "/bin/true";
  o.args = (char **)(uintptr_t)true_argv;
  o.env = (char **)(uintptr_t)empty_env;
  o.exit_cb = raw_exit;
  if (with_pipes) {
    for (i = 0; i < 3; i++) {
      uv_pipe_init(L, &p->pipes[i], 0);
      p->pipes[i].data = p;
      stdio[i].flags = (uv_stdio_flags)(UV_CREATE_PIPE | UV_READABLE_PIPE |
                                        UV_WRITABLE_PIPE);
      stdio[i].data.stream = (uv_stream_t *)&p->pipes[i];
    }
    o.stdio = stdio;
    o.stdio_count = 3;
  }
  p->h.data = p;
  err = uv_spawn(L, &p->h, &o);
  if (err != 0) die("uv_spawn", err);
  p->open = 1;
  if (with_pipes)
    for (i = 0; i < 3; i++) {
      p->open++;
      uv_read_start((uv_stream_t *)&p->pipes[i], raw_alloc, raw_read);
    }
  started++;
}

static double run_raw(void) {
  double t0;
  int i;
  started = done_n = 0;
  t0 = bench_now();
  for (i = 0; i < WINDOW && started < count; i++) raw_spawn_one();
  while (done_n < count) uv_run(L, UV_RUN_ONCE);
  return (double)count / (bench_now() - t0);
}

/* ---- Twisted --------------------------------------------------------------------- */

static char twisted_script[4096];

static int twisted_available(void) {
  return bench_twisted_available(twisted_script);
}

/* All rounds in one interpreter; the rates into out. 0 or -1. */
static int run_twisted(const char *mode, int rounds, double *out) {
  char cmd[8192], line[64];
  FILE *f;
  int n = 0;
  snprintf(cmd, sizeof(cmd), "/usr/bin/python3 %s %s %ld %d %d",
           twisted_script, mode, count, WINDOW, rounds);
  f = popen(cmd, "r");
  if (f == NULL) return -1;
  while (n < rounds && fgets(line, sizeof(line), f) != NULL)
    out[n++] = atof(line);
  pclose(f);
  return n == rounds ? 0 : -1;
}

/* ---- main --------------------------------------------------------------------- */

int main(void) {
  static const char *const modes[2] = {"pipes", "nopipes"};
  double tw[MAX_ROUNDS], raw[MAX_ROUNDS], py[MAX_ROUNDS];
  int rounds = bench_rounds(5), r, m, err, have_twisted;
  double load[3] = {0, 0, 0};
  FILE *la;
  if (rounds > MAX_ROUNDS) rounds = MAX_ROUNDS;
  count = bench_scaled(300);
  snprintf(twisted_script, sizeof(twisted_script), "%s/spawn_twisted.py",
           TW_BENCH_SOURCE_DIR);
  have_twisted = twisted_available();
  err = tw_reactor_new(&R, NULL, 0);
  if (err != 0) die("tw_reactor_new", err);
  L = malloc(sizeof(*L));
  if (L == NULL || uv_loop_init(L) != 0) die("uv_loop_init", TW_ENOMEM);
  bench_machine();
  la = fopen("/proc/loadavg", "r");
  if (la != NULL) {
    if (fscanf(la, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3)
      load[0] = -1;
    fclose(la);
  }
  printf("spawn /bin/true, %ld processes per round, %d in flight, %d "
         "round(s), twuv and libuv alternating%s; load average %.2f\n",
         count, WINDOW, rounds,
         have_twisted ? "" : " (no Twisted: /usr/bin/python3 lacks it)",
         load[0]);
  for (m = 0; m < 2; m++) {
    double mt, mr;
    with_pipes = m == 0;
    for (r = 0; r < rounds; r++) {
      if (r % 2 == 0) {
        tw[r] = run_twuv();
        raw[r] = run_raw();
      } else {
        raw[r] = run_raw();
        tw[r] = run_twuv();
      }
    }
    mt = bench_median(tw, rounds);
    mr = bench_median(raw, rounds);
    printf("%-8s twuv %8.0f/s  libuv %8.0f/s  twuv/libuv %.2f", modes[m], mt,
           mr, mt / mr);
    if (have_twisted && run_twisted(modes[m], rounds, py) == 0) {
      double mp = bench_median(py, rounds);
      printf("  twisted %8.0f/s  twuv/twisted %.1f", mp, mt / mp);
    }
    printf("\n");
  }
  tw_reactor_free(R);
  uv_loop_close(L);
  free(L);
  return 0;
}
