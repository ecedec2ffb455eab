/*
 * bench/net_write: many small writes from one callback (a protocol writing
 * a header, fields and a trailer piece by piece).
 *
 *   twuv      W tw_transport_write calls of 64 bytes on a TCP transport,
 *             then one reactor iteration: the stream coalesces them and
 *             hands them to libuv in one uv_write before the loop polls
 *   baseline  W uv_try_write calls of 64 bytes on a raw uv_tcp_t on the
 *             same loop: one write(2) each, as a naive libuv program (or
 *             a transport without coalescing) makes
 *
 * Both connect over loopback to the same twuv server, which discards what
 * it reads. Per round: the time from the first write until the bytes were
 * handed to the kernel. Prints the medians and their ratio; the figure
 * quoted in lib/stream.c and docs/networking.md ("Writing").
 */
#include <twuv.h>

#include "bench.h"

#define PIECE 64

static tw_reactor *R;
static tw_transport *T;
static uv_tcp_t raw;
static int raw_connected;

static void made(tw_protocol *p) { T = p->transport; }
static const tw_protocol_ops client_ops = {.connection_made = made};
static const tw_protocol_ops sink_ops = {0};

static void raw_connect_cb(uv_connect_t *req, int status) {
  (void)req;
  raw_connected = status == 0 ? 1 : -1;
}

int main(void) {
  static char piece[PIECE];
  tw_factory sf, cf;
  tw_listening_port *port;
  tw_connector *c;
  tw_address a;
  struct sockaddr_in sin;
  uv_connect_t req;
  long w = bench_scaled(1000), i;
  int rounds = bench_rounds(200), k;
  double *tw = calloc((size_t)rounds, sizeof(double));
  double *base = calloc((size_t)rounds, sizeof(double));
  bench_machine();
  if (tw_reactor_new(&R, NULL, 0) != 0) return 1;
  tw_factory_for_protocol(&sf, &sink_ops, sizeof(tw_protocol), NULL);
  tw_factory_for_protocol(&cf, &client_ops, sizeof(tw_protocol), NULL);
  if (tw_listen_tcp(&port, R, 0, &sf, 0, "127.0.0.1") != 0) return 1;
  tw_listening_port_get_host(port, &a);
  if (tw_connect_tcp(&c, R, "127.0.0.1", a.port, &cf, 5, NULL) != 0) return 1;
  uv_tcp_init(tw_reactor_loop(R), &raw);
  uv_ip4_addr("127.0.0.1", a.port, &sin);
  uv_tcp_connect(&req, &raw, (const struct sockaddr *)&sin, raw_connect_cb);
  for (i = 0; i < 100000 && (T == NULL || raw_connected == 0); i++)
    tw_reactor_iterate(R, 0.01);
  if (T == NULL || raw_connected != 1) return 1;
  for (k = 0; k < rounds; k++) {
    double t0 = bench_now();
    for (i = 0; i < w; i++) tw_transport_write(T, piece, PIECE);
    while (tw_transport_buffered(T) > 0) tw_reactor_iterate(R, 0);
    tw_reactor_iterate(R, 0); /* the flush node */
    tw[k] = bench_now() - t0;
    t0 = bench_now();
    for (i = 0; i < w; i++) {
      uv_buf_t b = uv_buf_init(piece, PIECE);
      while (uv_try_write((uv_stream_t *)&raw, &b, 1) == UV_EAGAIN)
        tw_reactor_iterate(R, 0);
    }
    base[k] = bench_now() - t0;
    /* let the server drain both */
    for (i = 0; i < 10; i++) tw_reactor_iterate(R, 0);
  }
  printf("%ld writes of %d bytes per round, %d rounds\n", w, PIECE, rounds);
  printf("twuv (coalesced):        median %8.1f us per round\n",
         bench_median(tw, rounds) * 1e6);
  printf("baseline (uv_try_write): median %8.1f us per round\n",
         bench_median(base, rounds) * 1e6);
  printf("ratio baseline/twuv: %.1fx\n",
         bench_median(base, rounds) / bench_median(tw, rounds));
  uv_close((uv_handle_t *)&raw, NULL);
  tw_reactor_free(R);
  free(tw);
  free(base);
  return 0;
}
