/*
 * bench/echo: three echo servers with the same logic and the same
 * backpressure policy, driven by one C load generator:
 *
 *   twuv     tw_listen_tcp + a protocol that writes back what it reads;
 *            the transport is registered as its own streaming producer, so
 *            reading stops while more than 64 KiB wait to be written and
 *            starts again once the buffer is empty (Twisted's rules)
 *   libuv    hand-written raw libuv, as well as we can: one shared 64 KiB
 *            read buffer, uv_try_write first and a copy of the unsent tail
 *            only, uv_read_stop above 64 KiB queued and uv_read_start once
 *            the queue is empty
 *   twisted  bench/echo_twisted.py on Debian's python3 (Twisted 22.4), when
 *            it is there
 *
 * Each server runs in a child process of its own, a fresh image (so that
 * its memory can be read from /proc and the load generator keeps the
 * other core); the
 * load generator is a libuv loop in this process. Modes (libuv's
 * benchmark-ping-pongs.c, -pump.c and -pound.c are the models of method):
 *
 *   pingpong-1   one connection, 64-byte messages, one in flight:
 *                round trips/s, p50 and p99 latency
 *   pingpong-10  ten connections doing the same at once
 *   pump-4       four connections streaming 64 KiB chunks with up to 1 MiB
 *                in flight each: MiB/s echoed (every byte is checked
 *                against what was sent)
 *   churn        connect, send 64 bytes, read them back, close; ten at a
 *                time: connections/s
 *   idle         10,000 open connections (each echoed one byte, so the
 *                server has accepted and set each up): the server's
 *                resident memory per connection, on a fresh server process
 *
 * Rounds alternate the servers (the order rotates each round); printed:
 * median and range per server and mode, and the ratios twuv/libuv and
 * twuv/twisted (for idle: bytes per connection, lower is better).
 *
 * Usage: bench_echo [rounds]   (default 3; TWUV_BENCH_SCALE scales counts;
 *        TWUV_ECHO_MODES=pingpong-10,pump-4 runs only those modes and
 *        TWUV_ECHO_SERVERS=twuv only those servers, e.g. to profile one
 *        under perf record (which follows the server processes);
 *        bench_echo --serve twuv|libuv FD is a server, run by itself)
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <twuv.h>

#include "bench.h"

#define MSG 64
#define CHUNK 65536
#define WINDOW (1024 * 1024)
#define IDLE_CONNS 10000
#define MAX_ROUNDS 15

enum { SRV_TWUV, SRV_LIBUV, SRV_TWISTED, NSRV };
static const char *const srv_name[NSRV] = {"twuv", "libuv", "twisted"};
enum { M_PP1, M_PP10, M_PUMP, M_CHURN, M_IDLE, NMODE };
static const char *const mode_name[NMODE] = {"pingpong-1", "pingpong-10",
                                             "pump-4", "churn", "idle"};
static const char *const mode_unit[NMODE] = {"rt/s", "rt/s", "MiB/s",
                                             "conn/s", "B/conn"};


/* 1 when $var is unset or empty, or names name (comma-separated). */
static int env_lists(const char *var, const char *name) {
  const char *w = getenv(var), *p;
  size_t n = strlen(name);
  if (w == NULL || *w == '\0') return 1;
  for (p = w; (p = strstr(p, name)) != NULL; p += n)
    if ((p == w || p[-1] == ',') && (p[n] == '\0' || p[n] == ','))
      return 1;
  return 0;
}

static int mode_wanted(int m) { return env_lists("TWUV_ECHO_MODES", mode_name[m]); }


static void die(const char *what, int err) {
  fprintf(stderr, "bench_echo: %s: %s\n", what,
          err < 0 ? uv_strerror(err) : strerror(err));
  exit(1);
}

/* ---- the raw libuv server --------------------------------------------------- */

static char raw_buf[CHUNK]; /* one read buffer for every connection */

typedef struct raw_conn {
  uv_tcp_t h;
  int reading;
} raw_conn;

typedef struct raw_write {
  uv_write_t req;
  char data[];
} raw_write;

static void raw_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf) {
  (void)h;
  (void)size;
  *buf = uv_buf_init(raw_buf, sizeof(raw_buf));
}

static void raw_closed(uv_handle_t *h) { free(h); }

static void raw_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void raw_written(uv_write_t *req, int status) {
  raw_conn *c = req->handle->data;
  free(req);
  if (status < 0) return;
  if (!c->reading && uv_stream_get_write_queue_size((uv_stream_t *)&c->h) == 0 &&
      !uv_is_closing((uv_handle_t *)&c->h)) {
    c->reading = 1;
    uv_read_start((uv_stream_t *)&c->h, raw_alloc, raw_read);
  }
}

static void raw_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  raw_conn *c = s->data;
  int n;
  if (nread < 0) {
    uv_close((uv_handle_t *)s, raw_closed);
    return;
  }
  if (nread == 0) return;
  n = uv_try_write(s, &(uv_buf_t){buf->base, (size_t)nread}, 1);
  if (n == UV_EAGAIN) n = 0;
  if (n < 0) {
    uv_close((uv_handle_t *)s, raw_closed);
    return;
  }
  if (n < nread) {
    size_t rest = (size_t)(nread - n);
    raw_write *w = malloc(sizeof(*w) + rest);
    uv_buf_t b;
    if (w == NULL) die("malloc", ENOMEM);
    memcpy(w->data, buf->base + n, rest);
    b = uv_buf_init(w->data, (unsigned)rest);
    if (uv_write(&w->req, s, &b, 1, raw_written) != 0) {
      free(w);
      uv_close((uv_handle_t *)s, raw_closed);
      return;
    }
    if (uv_stream_get_write_queue_size(s) > CHUNK) {
      c->reading = 0;
      uv_read_stop(s);
    }
  }
}

static void raw_accept(uv_stream_t *server, int status) {
  raw_conn *c;
  if (status < 0) return;
  c = malloc(sizeof(*c));
  if (c == NULL) die("malloc", ENOMEM);
  uv_tcp_init(server->loop, &c->h);
  c->h.data = c;
  if (uv_accept(server, (uv_stream_t *)&c->h) != 0) {
    uv_close((uv_handle_t *)&c->h, raw_closed);
    return;
  }
  c->reading = 1;
  uv_read_start((uv_stream_t *)&c->h, raw_alloc, raw_read);
}

static int serve_libuv(int port_fd) {
  uv_loop_t own, *loop = &own; /* not the default loop: the parent's */
  uv_tcp_t server;
  struct sockaddr_in addr;
  struct sockaddr_storage name;
  int len = sizeof(name), err;
  uv_ip4_addr("127.0.0.1", 0, &addr);
  if ((err = uv_loop_init(loop)) != 0 || (err = uv_tcp_init(loop, &server)) != 0 ||
      (err = uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0)) != 0 ||
      (err = uv_listen((uv_stream_t *)&server, 1024, raw_accept)) != 0 ||
      (err = uv_tcp_getsockname(&server, (struct sockaddr *)&name, &len)) != 0)
    die("libuv server", err);
  dprintf(port_fd, "%d\n", ntohs(((struct sockaddr_in *)&name)->sin_port));
  close(port_fd);
  return uv_run(loop, UV_RUN_DEFAULT);
}

/* ---- the twuv server -------------------------------------------------------- */

typedef struct echo_proto {
  tw_protocol base;
  tw_producer self; /* the transport, as its own streaming producer */
} echo_proto;

static tw_failure *self_pause(tw_producer *pr) {
  echo_proto *e = pr->data;
  (void)tw_transport_pause_producing(e->base.transport);
  return NULL;
}

static tw_failure *self_resume(tw_producer *pr) {
  echo_proto *e = pr->data;
  (void)tw_transport_resume_producing(e->base.transport);
  return NULL;
}

static tw_failure *self_stop(tw_producer *pr) {
  (void)pr; /* the connection is going anyway */
  return NULL;
}

static const tw_producer_ops self_ops = {self_pause, self_resume, self_stop};

static void echo_made(tw_protocol *p) {
  echo_proto *e = (echo_proto *)p;
  e->self.ops = &self_ops;
  e->self.data = e;
  if (tw_transport_register_producer(p->transport, &e->self, 1) != 0)
    die("register_producer", EINVAL);
}

static tw_failure *echo_data(tw_protocol *p, const char *data, size_t len) {
  (void)tw_transport_write(p->transport, data, len);
  return NULL;
}

static const tw_protocol_ops echo_ops = {.connection_made = echo_made,
                                         .data_received = echo_data};

static int serve_twuv(int port_fd) {
  tw_reactor *r;
  tw_factory f;
  tw_listening_port *port;
  tw_address host;
  int err;
  if ((err = tw_reactor_new(&r, NULL, 0)) != 0 ||
      (err = tw_factory_for_protocol(&f, &echo_ops, sizeof(echo_proto),
                                     NULL)) != 0 ||
      (err = tw_listen_tcp(&port, r, 0, &f, 1024, "127.0.0.1")) != 0 ||
      (err = tw_listening_port_get_host(port, &host)) != 0)
    die("twuv server", err);
  dprintf(port_fd, "%d\n", host.port);
  close(port_fd);
  return tw_reactor_run(r);
}

/* ---- servers as child processes -------------------------------------------- */

typedef struct server {
  int kind;
  pid_t pid;
  int port;
} server;

static char twisted_script[4096];

static int twisted_available(void) {
  return bench_twisted_available(twisted_script);
}

static void server_start(server *s, int kind) {
  s->kind = kind;
  s->pid = bench_server_start("bench_echo", srv_name[kind],
                              kind == SRV_TWISTED ? twisted_script : NULL,
                              &s->port);
}

static void server_stop(server *s) { bench_server_stop(s->pid); }

static long server_rss_kb(const server *s) {
  char path[64], line[256];
  long kb = -1;
  FILE *f;
  snprintf(path, sizeof(path), "/proc/%d/status", (int)s->pid);
  f = fopen(path, "r");
  if (f == NULL) return -1;
  while (fgets(line, sizeof(line), f) != NULL)
    if (strncmp(line, "VmRSS:", 6) == 0) {
      kb = strtol(line + 6, NULL, 10);
      break;
    }
  fclose(f);
  return kb;
}

/* ---- the load generator ------------------------------------------------------ */

typedef struct client client;
typedef void (*client_fn)(client *c);

struct client {
  uv_tcp_t h;
  uv_connect_t connect;
  int index;
  int closed;
  /* pingpong / churn / idle */
  size_t want, got;
  uint64_t sent_at;
  long rounds_left;
  /* pump */
  uint64_t sent, received;
  int sending;
};

static uv_loop_t *loop;
static struct sockaddr_in server_addr;
static char rx[CHUNK];
static char pattern[CHUNK + 251];
static int mode;
static long target;         /* per connection: round trips / bytes */
static long active;         /* connections not finished */
static long started, finished, to_start; /* churn / idle */
static double *lat;         /* latencies, seconds */
static long nlat, lat_cap;
static int failed;

static void client_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf) {
  (void)h;
  (void)size;
  *buf = uv_buf_init(rx, sizeof(rx));
}

static void client_closed(uv_handle_t *h) {
  client *c = h->data;
  free(c);
}

static void client_done(client *c) {
  if (c->closed) return;
  c->closed = 1;
  active--;
  uv_close((uv_handle_t *)&c->h, client_closed);
}

static void write_done(uv_write_t *req, int status) {
  if (status < 0) failed = 1;
  free(req);
}

static void client_write(client *c, const char *data, size_t len,
                         uv_write_cb cb) {
  uv_write_t *req = malloc(sizeof(*req));
  uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
  if (req == NULL) die("malloc", ENOMEM);
  req->data = c;
  if (uv_write(req, (uv_stream_t *)&c->h, &b, 1, cb) != 0) die("write", EIO);
}

static void start_client(void);

static void ping(client *c) {
  c->got = 0;
  c->sent_at = uv_hrtime();
  client_write(c, pattern, c->want, write_done);
}

static void pump_more(client *c);

static void pump_written(uv_write_t *req, int status) {
  client *c = req->data;
  free(req);
  if (status < 0) {
    failed = 1;
    return;
  }
  c->sending = 0;
  pump_more(c);
}

static void pump_more(client *c) {
  if (c->sending || c->closed) return;
  if (c->sent < (uint64_t)target && c->sent - c->received < WINDOW) {
    size_t off = (size_t)(c->sent % 251);
    size_t len = CHUNK;
    if ((uint64_t)target - c->sent < len) len = (size_t)((uint64_t)target - c->sent);
    c->sending = 1;
    c->sent += len;
    client_write(c, pattern + off, len, pump_written);
  }
}

static void client_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  client *c = s->data;
  (void)buf;
  if (nread < 0) {
    if (!failed)
      fprintf(stderr, "bench_echo: read on connection %d: %s\n", c->index,
              uv_strerror((int)nread));
    failed = 1;
    client_done(c);
    return;
  }
  if (mode == M_PUMP) {
    size_t off = (size_t)(c->received % 251);
    if (memcmp(rx, pattern + off, (size_t)nread) != 0) failed = 1;
    c->received += (uint64_t)nread;
    if (c->received == (uint64_t)target) {
      client_done(c);
      return;
    }
    pump_more(c);
    return;
  }
  c->got += (size_t)nread;
  if (c->got < c->want) return;
  if (c->got > c->want) failed = 1;
  if (mode == M_PP1 || mode == M_PP10) {
    if (nlat < lat_cap) lat[nlat++] = (double)(uv_hrtime() - c->sent_at) * 1e-9;
    if (--c->rounds_left > 0) {
      ping(c);
      return;
    }
    client_done(c);
  } else if (mode == M_CHURN) {
    finished++;
    client_done(c);
    start_client();
  } else { /* idle: stay open, stop reading */
    finished++;
    uv_read_stop(s);
    if (finished == to_start) uv_stop(loop);
  }
}

static void client_connected(uv_connect_t *req, int status) {
  client *c = req->data;
  if (status < 0) {
    fprintf(stderr, "bench_echo: connect: %s\n", uv_strerror(status));
    failed = 1;
    client_done(c);
    if (mode == M_CHURN) start_client();
    return;
  }
  uv_read_start((uv_stream_t *)&c->h, client_alloc, client_read);
  if (mode == M_PUMP) {
    pump_more(c);
  } else {
    c->want = mode == M_IDLE ? 1 : MSG;
    if (mode == M_PP1 || mode == M_PP10) c->rounds_left = target;
    ping(c);
  }
}

static client *clients_all[IDLE_CONNS];

static void start_client(void) {
  client *c;
  if (started >= to_start) return;
  c = calloc(1, sizeof(*c));
  if (c == NULL) die("calloc", ENOMEM);
  c->index = (int)started++;
  c->h.data = c;
  c->connect.data = c;
  if (mode == M_IDLE) clients_all[c->index] = c;
  uv_tcp_init(loop, &c->h);
  active++;
  if (uv_tcp_connect(&c->connect, &c->h, (const struct sockaddr *)&server_addr,
                     client_connected) != 0)
    die("connect", EIO);
}

/* One mode against one server: the figure of merit. */
static double run_mode(const server *s, int m) {
  double t0, secs;
  long i, conns;
  long rss0 = 0;
  uv_ip4_addr("127.0.0.1", s->port, &server_addr);
  mode = m;
  failed = 0;
  nlat = 0;
  started = finished = active = 0;
  switch (m) {
  case M_PP1:
  case M_PP10:
    conns = m == M_PP1 ? 1 : 10;
    target = bench_scaled(20000) / conns;
    to_start = conns;
    break;
  case M_PUMP:
    conns = 4;
    target = bench_scaled(64L * 1024 * 1024);
    to_start = conns;
    break;
  case M_CHURN:
    conns = 10;
    to_start = bench_scaled(2000);
    break;
  default:
    conns = 100; /* connecting at a time */
    to_start = IDLE_CONNS;
    rss0 = server_rss_kb(s);
  }
  t0 = bench_now();
  for (i = 0; i < conns; i++) start_client();
  if (m == M_IDLE) {
    /* Keep 100 connecting until all 10,000 are up and echoed once. */
    while (finished < to_start) {
      while (started < to_start && started - finished < conns) start_client();
      uv_run(loop, UV_RUN_ONCE);
    }
  } else {
    uv_run(loop, UV_RUN_DEFAULT);
  }
  secs = bench_now() - t0;
  if (failed) {
    fprintf(stderr, "bench_echo: %s %s failed\n", srv_name[s->kind],
            mode_name[m]);
    exit(1);
  }
  switch (m) {
  case M_PP1:
  case M_PP10:
    return (double)nlat / secs;
  case M_PUMP:
    return (double)target * 4 / secs / (1024.0 * 1024.0);
  case M_CHURN:
    return (double)finished / secs;
  default: {
    long rss1 = server_rss_kb(s);
    for (i = 0; i < IDLE_CONNS; i++) client_done(clients_all[i]);
    uv_run(loop, UV_RUN_DEFAULT);
    return (double)(rss1 - rss0) * 1024.0 / IDLE_CONNS;
  }
  }
}

static double p50[NSRV][MAX_ROUNDS], p99[NSRV][MAX_ROUNDS];
static double result[NSRV][NMODE][MAX_ROUNDS];

static void print_mode(int m, int rounds, int nsrv) {
  double med[NSRV];
  int k, i;
  printf("%-12s", mode_name[m]);
  for (k = 0; k < nsrv; k++) {
    double v[MAX_ROUNDS], lo, hi;
    for (i = 0; i < rounds; i++) v[i] = result[k][m][i];
    med[k] = bench_median(v, rounds); /* sorts v */
    lo = v[0];
    hi = v[rounds - 1];
    printf("  %s %.0f %s (%.0f-%.0f)", srv_name[k], med[k], mode_unit[m], lo,
           hi);
  }
  if (m == M_IDLE)
    printf("  twuv-libuv %+.0f B/conn (uv_tcp_t %zu B)", med[SRV_TWUV] - med[SRV_LIBUV],
           sizeof(uv_tcp_t));
  else
    printf("  ratio twuv/libuv %.2f", med[SRV_TWUV] / med[SRV_LIBUV]);
  if (nsrv > SRV_TWISTED && m != M_IDLE)
    printf(" twuv/twisted %.1f", med[SRV_TWUV] / med[SRV_TWISTED]);
  printf("\n");
}

int main(int argc, char **argv) {
  int rounds, nsrv, r, k, m, i;
  struct rlimit rl;
  /* A server (server_start): bench_echo --serve twuv|libuv FD. */
  if (argc == 4 && strcmp(argv[1], "--serve") == 0) {
    signal(SIGPIPE, SIG_IGN);
    if (strcmp(argv[2], srv_name[SRV_TWUV]) == 0)
      return serve_twuv(atoi(argv[3]));
    return serve_libuv(atoi(argv[3]));
  }
  rounds = argc > 1 ? atoi(argv[1]) : bench_rounds(3);
  if (rounds < 1) rounds = 1;
  if (rounds > MAX_ROUNDS) rounds = MAX_ROUNDS;
  signal(SIGPIPE, SIG_IGN);
  /* 10,000 idle connections need 10,000 descriptors in each process (the
   * load generator's and the server's). */
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < IDLE_CONNS + 64) {
    rl.rlim_cur = rl.rlim_max < 2 * IDLE_CONNS ? rl.rlim_max : 2 * IDLE_CONNS;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < IDLE_CONNS + 64) {
    fprintf(stderr, "bench_echo: needs %d descriptors (ulimit -n)\n",
            IDLE_CONNS + 64);
    return 1;
  }
  snprintf(twisted_script, sizeof(twisted_script), "%s/echo_twisted.py",
           TW_BENCH_SOURCE_DIR);
  for (i = 0; i < (int)sizeof(pattern); i++) pattern[i] = (char)(i % 251);
  loop = uv_default_loop();
  lat_cap = bench_scaled(20000) + 16;
  lat = malloc(sizeof(double) * (size_t)lat_cap);
  nsrv = twisted_available() ? NSRV : SRV_TWISTED;
  bench_machine();
  printf("echo servers in child processes, %d round(s), servers alternating%s\n",
         rounds, nsrv == NSRV ? "" : " (no Twisted: /usr/bin/python3 lacks it)");
  for (r = 0; r < rounds; r++) {
    for (i = 0; i < nsrv; i++) {
      server s;
      k = (i + r) % nsrv;
      if (!env_lists("TWUV_ECHO_SERVERS", srv_name[k])) continue;
      server_start(&s, k);
      for (m = 0; m < NMODE; m++) {
        if (!mode_wanted(m)) continue;
        if (m == M_IDLE) {
          /* Idle on a fresh server: the heap the earlier modes grew and
           * freed (pump's 64 KiB tails) would take the idle connections
           * without RSS growing (the raw libuv server measured 0 B/conn
           * after pump on a 1-round run). */
          server_stop(&s);
          server_start(&s, k);
        }
        result[k][m][r] = run_mode(&s, m);
        if (m == M_PP1) {
          qsort(lat, (size_t)nlat, sizeof(double), bench_cmp_double);
          p50[k][r] = lat[nlat / 2];
          p99[k][r] = lat[nlat * 99 / 100];
        }
      }
      server_stop(&s);
    }
  }
  for (m = 0; m < NMODE; m++)
    if (mode_wanted(m)) print_mode(m, rounds, nsrv);
  for (k = 0; k < nsrv && mode_wanted(M_PP1); k++)
    printf("pingpong-1 latency %s: p50 %.1f us p99 %.1f us (median of rounds)\n",
           srv_name[k], bench_median(p50[k], rounds) * 1e6,
           bench_median(p99[k], rounds) * 1e6);
  free(lat);
  return 0;
}
