/*
 * bench/udp: datagrams echoed per second by three UDP echo servers with
 * the same logic (write each datagram back to its sender at once; a
 * datagram the kernel will not take now is dropped), driven by one C load
 * generator:
 *
 *   twuv     tw_listen_udp + a DatagramProtocol whose datagram_received
 *            calls tw_udp_port_write(data, from)
 *   libuv    hand-written raw libuv, as well as we can: one static read
 *            buffer, uv_udp_try_send straight from it to the sockaddr
 *            libuv gave
 *   twisted  bench/udp_twisted.py (listenUDP + DatagramProtocol) on
 *            Debian's python3 (Twisted 22.4), when it is there
 *
 * Each server is a child process of its own, a fresh image; the load
 * generator is a libuv loop in this process with one UDP socket
 * connected to the server. Modes:
 *
 *   pingpong-1   one 64-byte datagram in flight: echoes/s (bound by the
 *                round trip: wake-ups and the kernel more than the server)
 *   flood-64     up to 64 in flight, refilled in bursts with sendmmsg and
 *                read with recvmmsg, so that the load generator spends
 *                less per datagram than a server doing one recvmsg and
 *                one sendmsg each: echoes/s, the server's throughput
 *
 * Every echo is checked (64 bytes, the pattern sent). UDP may drop: a
 * datagram not echoed within 20 ms counts as lost and is replaced (the
 * window is refilled), and losses are printed.
 *
 * Rounds alternate the servers (the order rotates each round); printed:
 * median and range per server and mode, and the ratios twuv/libuv and
 * twuv/twisted.
 *
 * Usage: bench_udp [rounds]   (default 3; TWUV_BENCH_SCALE scales counts;
 *        bench_udp --serve twuv|libuv FD is a server, run by itself)
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <twuv.h>

#include "bench.h"

#define MSG 64
#define MAX_ROUNDS 15

enum { SRV_TWUV, SRV_LIBUV, SRV_TWISTED, NSRV };
static const char *const srv_name[NSRV] = {"twuv", "libuv", "twisted"};
enum { M_PP1, M_FLOOD, NMODE };
static const char *const mode_name[NMODE] = {"pingpong-1", "flood-64"};
static const int mode_window[NMODE] = {1, 64};



static void die(const char *what, int err) {
  fprintf(stderr, "bench_udp: %s: %s\n", what,
          err < 0 ? uv_strerror(err) : strerror(err));
  exit(1);
}

/* ---- the raw libuv server --------------------------------------------------- */

static char raw_buf[65536];

static void raw_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf) {
  (void)h;
  (void)size;
  *buf = uv_buf_init(raw_buf, sizeof(raw_buf));
}

static void raw_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                     const struct sockaddr *addr, unsigned flags) {
  uv_buf_t b;
  (void)flags;
  if (nread < 0 || addr == NULL) return;
  b = uv_buf_init(buf->base, (unsigned)nread);
  (void)uv_udp_try_send(h, &b, 1, addr); /* EAGAIN: dropped */
}

static int serve_libuv(int port_fd) {
  uv_loop_t own, *loop = &own;
  uv_udp_t server;
  struct sockaddr_in addr;
  struct sockaddr_storage name;
  int len = sizeof(name), err;
  uv_ip4_addr("127.0.0.1", 0, &addr);
  if ((err = uv_loop_init(loop)) != 0 || (err = uv_udp_init(loop, &server)) != 0 ||
      (err = uv_udp_bind(&server, (const struct sockaddr *)&addr, 0)) != 0 ||
      (err = uv_udp_recv_start(&server, raw_alloc, raw_recv)) != 0 ||
      (err = uv_udp_getsockname(&server, (struct sockaddr *)&name, &len)) != 0)
    die("libuv server", err);
  dprintf(port_fd, "%d\n", ntohs(((struct sockaddr_in *)&name)->sin_port));
  close(port_fd);
  return uv_run(loop, UV_RUN_DEFAULT);
}

/* ---- the twuv server -------------------------------------------------------- */

static tw_failure *echo_received(tw_datagram_protocol *p, const char *data,
                                 size_t len, const tw_address *from) {
  (void)tw_udp_port_write(p->transport, data, len, from); /* EAGAIN: dropped */
  return NULL;
}

static const tw_datagram_protocol_ops echo_ops = {.datagram_received =
                                                      echo_received};

static int serve_twuv(int port_fd) {
  tw_reactor *r;
  tw_datagram_protocol echo;
  tw_udp_port *port;
  tw_address host;
  int err;
  if ((err = tw_reactor_new(&r, NULL, 0)) != 0 ||
      (err = tw_datagram_protocol_init(&echo, &echo_ops)) != 0 ||
      (err = tw_listen_udp(&port, r, 0, &echo, "127.0.0.1", 0)) != 0 ||
      (err = tw_udp_port_get_host(port, &host)) != 0)
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
  s->pid = bench_server_start("bench_udp", srv_name[kind],
                              kind == SRV_TWISTED ? twisted_script : NULL,
                              &s->port);
}

static void server_stop(server *s) { bench_server_stop(s->pid); }

/* ---- the load generator ------------------------------------------------------ */

static uv_loop_t *loop;
static uv_udp_t client;
static uv_timer_t ticker;
static char pattern[MSG];
/* recvmmsg reads into 64 KiB chunks of the buffer (libuv 1.44 reads up
 * to 20 datagrams per call). */
static char rx[20 * 65536];
static long target, sent, received, lost, bad;
static int window;
static long received_at_tick;

static void send_one(void) {
  uv_buf_t b = uv_buf_init(pattern, MSG);
  int err;
  if (sent >= target) return;
  err = uv_udp_try_send(&client, &b, 1, NULL);
  if (err == UV_EAGAIN) return; /* the tick refills */
  if (err < 0) die("send", err);
  sent++;
}

/* Fill the window: one sendmmsg on the connected socket. */
static void send_burst(void) {
  struct mmsghdr msgs[64];
  struct iovec iov = {pattern, MSG};
  uv_os_fd_t fd;
  long want = window - (sent - received - lost);
  int i, n;
  if (want > target - sent) want = target - sent;
  if (want > 64) want = 64;
  if (want <= 0) return;
  memset(msgs, 0, sizeof(msgs));
  for (i = 0; i < want; i++) {
    msgs[i].msg_hdr.msg_iov = &iov;
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  if (uv_fileno((uv_handle_t *)&client, &fd) != 0) die("fileno", EBADF);
  n = sendmmsg(fd, msgs, (unsigned)want, 0);
  if (n < 0 && errno != EAGAIN && errno != ENOBUFS) die("sendmmsg", errno);
  if (n > 0) sent += n;
}

static void client_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf) {
  (void)h;
  (void)size;
  *buf = uv_buf_init(rx, sizeof(rx));
}

static void finish(void) {
  uv_udp_recv_stop(&client);
  uv_timer_stop(&ticker);
}

static void client_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                        const struct sockaddr *addr, unsigned flags) {
  (void)h;
  (void)flags;
  if (nread < 0) die("recv", (int)nread);
  if (addr == NULL) return; /* EAGAIN, or recvmmsg's buffer given back */
  if (nread != MSG || memcmp(buf->base, pattern, MSG) != 0) bad++;
  received++;
  if (received + lost >= target) {
    finish();
    return;
  }
  if (window == 1)
    send_one();
  else if (sent - received - lost <= window / 2)
    send_burst();
}

/* Every 200 ms: with no echo since the last tick, what is in flight is
 * lost; send as many new ones. */
static void tick(uv_timer_t *t) {
  (void)t;
  if (received == received_at_tick) {
    long inflight = sent - received - lost;
    lost += inflight;
    if (received + lost >= target) {
      finish();
      return;
    }
    if (window == 1)
      send_one();
    else
      send_burst();
  }
  received_at_tick = received;
}

static double run_mode(const server *s, int m) {
  struct sockaddr_in local, dest;
  double t0, secs;
  int i, err;
  uv_ip4_addr("127.0.0.1", 0, &local);
  uv_ip4_addr("127.0.0.1", s->port, &dest);
  if ((err = uv_udp_init_ex(loop, &client, AF_INET | UV_UDP_RECVMMSG)) != 0 ||
      (err = uv_udp_bind(&client, (const struct sockaddr *)&local, 0)) != 0 ||
      (err = uv_udp_connect(&client, (const struct sockaddr *)&dest)) != 0 ||
      (err = uv_udp_recv_start(&client, client_alloc, client_recv)) != 0)
    die("client", err);
  uv_timer_init(loop, &ticker);
  window = mode_window[m];
  target = bench_scaled(m == M_PP1 ? 20000 : 100000);
  sent = received = lost = bad = received_at_tick = 0;
  t0 = bench_now();
  if (window == 1)
    send_one();
  else
    send_burst();
  (void)i;
  uv_timer_start(&ticker, tick, 200, 200);
  uv_run(loop, UV_RUN_DEFAULT);
  secs = bench_now() - t0;
  uv_close((uv_handle_t *)&client, NULL);
  uv_close((uv_handle_t *)&ticker, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  if (bad != 0) {
    fprintf(stderr, "bench_udp: %s %s: %ld bad echoes\n", srv_name[s->kind],
            mode_name[m], bad);
    exit(1);
  }
  if (received < target / 2) {
    fprintf(stderr, "bench_udp: %s %s: only %ld of %ld echoed\n",
            srv_name[s->kind], mode_name[m], received, target);
    exit(1);
  }
  return (double)received / secs;
}

static double result[NSRV][NMODE][MAX_ROUNDS];
static long losses[NSRV][NMODE];

static void print_mode(int m, int rounds, int nsrv) {
  double med[NSRV];
  int k, i;
  printf("%-11s", mode_name[m]);
  for (k = 0; k < nsrv; k++) {
    double v[MAX_ROUNDS];
    for (i = 0; i < rounds; i++) v[i] = result[k][m][i];
    med[k] = bench_median(v, rounds); /* sorts v */
    printf("  %s %.0f dgram/s (%.0f-%.0f, %ld lost)", srv_name[k], med[k],
           v[0], v[rounds - 1], losses[k][m]);
  }
  printf("  ratio twuv/libuv %.2f", med[SRV_TWUV] / med[SRV_LIBUV]);
  if (nsrv > SRV_TWISTED)
    printf(" twuv/twisted %.1f", med[SRV_TWUV] / med[SRV_TWISTED]);
  printf("\n");
}

int main(int argc, char **argv) {
  int rounds, nsrv, r, k, m, i;
  char load[128] = "?";
  FILE *f;
  if (argc == 4 && strcmp(argv[1], "--serve") == 0) {
    if (strcmp(argv[2], srv_name[SRV_TWUV]) == 0)
      return serve_twuv(atoi(argv[3]));
    return serve_libuv(atoi(argv[3]));
  }
  rounds = argc > 1 ? atoi(argv[1]) : bench_rounds(3);
  if (rounds < 1) rounds = 1;
  if (rounds > MAX_ROUNDS) rounds = MAX_ROUNDS;
  snprintf(twisted_script, sizeof(twisted_script), "%s/udp_twisted.py",
           TW_BENCH_SOURCE_DIR);
  for (i = 0; i < MSG; i++) pattern[i] = (char)('a' + i % 26);
  loop = uv_default_loop();
  nsrv = twisted_available() ? NSRV : SRV_TWISTED;
  bench_machine();
  if ((f = fopen("/proc/loadavg", "r")) != NULL) {
    if (fgets(load, sizeof(load), f) != NULL) load[strcspn(load, "\n")] = '\0';
    fclose(f);
  }
  printf("UDP echo servers in child processes, %d round(s), servers "
         "alternating%s; loadavg %s\n",
         rounds, nsrv == NSRV ? "" : " (no Twisted: /usr/bin/python3 lacks it)",
         load);
  for (r = 0; r < rounds; r++) {
    for (i = 0; i < nsrv; i++) {
      server s;
      k = (i + r) % nsrv;
      server_start(&s, k);
      for (m = 0; m < NMODE; m++) {
        result[k][m][r] = run_mode(&s, m);
        losses[k][m] += lost;
      }
      server_stop(&s);
    }
  }
  for (m = 0; m < NMODE; m++) print_mode(m, rounds, nsrv);
  return 0;
}
