/*
 * bench/bench.h - helpers shared by the benchmarks: timing, medians, the
 * machine line. Each benchmark runs twuv and its baseline alternately in the
 * same process, several rounds, and compares the medians.
 */
#ifndef TW_BENCH_H
#define TW_BENCH_H

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
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

/* ---- Twisted, and servers in child processes ----------------------------- */

/* 1 when Debian's /usr/bin/python3 imports twisted and script is readable. */
static inline int bench_twisted_available(const char *script) {
  return access("/usr/bin/python3", X_OK) == 0 &&
         system("/usr/bin/python3 -c 'import twisted' 2>/dev/null") == 0 &&
         access(script, R_OK) == 0;
}

/* The running server's pid (0: none): killed if the benchmark exits early. */
static inline pid_t *bench_server_pid_(void) {
  static pid_t pid;
  return &pid;
}

static inline void bench_kill_server_(void) {
  if (*bench_server_pid_() > 0) kill(*bench_server_pid_(), SIGKILL);
}

/*
 * Start a benchmark server in a child process and read the port it prints
 * as its first line; its pid is returned (stop it with bench_server_stop).
 * script NULL: this program again, as "argv0 --serve name FD" with FD the
 * pipe to print on - a fresh image, not the forked copy: a forked child
 * inherits the load generator's heap, and the free chunks in it (already
 * resident, so already counted) would take the server's allocations
 * without its RSS growing (bench/echo's raw libuv server measured 0-1 B per
 * idle connection that way). Else /usr/bin/python3 script, printing on its
 * stdout. A server that prints no port ends the benchmark.
 */
static inline pid_t bench_server_start(const char *argv0, const char *name,
                                       const char *script, int *port) {
  int fds[2];
  char line[32];
  ssize_t n, got = 0;
  pid_t pid;
  static int registered;
  if (!registered) {
    registered = 1;
    atexit(bench_kill_server_);
  }
  if (pipe(fds) != 0 || (pid = fork()) < 0) {
    fprintf(stderr, "%s: cannot start the %s server: %s\n", argv0, name,
            strerror(errno));
    exit(1);
  }
  if (pid == 0) {
    close(fds[0]);
    if (script == NULL) {
      char fd[16];
      snprintf(fd, sizeof(fd), "%d", fds[1]);
      execl("/proc/self/exe", argv0, "--serve", name, fd, (char *)NULL);
      _exit(127);
    }
    dup2(fds[1], 1);
    close(fds[1]);
    execl("/usr/bin/python3", "python3", script, (char *)NULL);
    _exit(127);
  }
  close(fds[1]);
  *bench_server_pid_() = pid;
  while (got < (ssize_t)sizeof(line) - 1 &&
         (n = read(fds[0], line + got, sizeof(line) - 1 - (size_t)got)) > 0) {
    got += n;
    if (memchr(line, '\n', (size_t)got) != NULL) break;
  }
  close(fds[0]);
  line[got > 0 ? got : 0] = '\0';
  *port = atoi(line);
  if (*port <= 0) {
    fprintf(stderr, "%s: %s server did not start\n", argv0, name);
    exit(1);
  }
  return pid;
}

static inline void bench_server_stop(pid_t pid) {
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  *bench_server_pid_() = 0;
}

#endif
