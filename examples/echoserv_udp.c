/*
 * examples/echoserv_udp.c - Twisted's docs/core/examples/echoserv_udp.py:
 * the UDP version of the simplest protocol, writing each datagram back to
 * its sender.
 *
 * usage: echoserv_udp [[HOST:]PORT]   (default: port 8000 on 0.0.0.0, as
 *        listenUDP(8000, EchoUDP()); "127.0.0.1:0" picks a free port on
 *        loopback). Prints "listening on HOST:PORT" once bound; runs until
 *        SIGINT or SIGTERM.
 */
#include <stdio.h>

#include <twuv.h>

#include "udp_arg.h"

/* class EchoUDP(DatagramProtocol): datagramReceived writes it back. */
static tw_failure *echo_received(tw_datagram_protocol *p, const char *data,
                                 size_t len, const tw_address *from) {
  tw_udp_port_write(p->transport, data, len, from);
  return NULL;
}

static const tw_datagram_protocol_ops echo_ops = {.datagram_received =
                                                      echo_received};

int main(int argc, char **argv) {
  tw_datagram_protocol echo;
  tw_reactor *r;
  tw_udp_port *port;
  tw_address a;
  char host[64];
  int portno, err;
  if (udp_arg(argc > 1 ? argv[1] : "8000", "", host, sizeof(host), &portno) !=
      0) {
    fprintf(stderr, "usage: echoserv_udp [[HOST:]PORT]\n");
    return 2;
  }
  tw_datagram_protocol_init(&echo, &echo_ops);
  /* TW_REACTOR_SIGNALS: SIGINT/SIGTERM stop the reactor, as Twisted's. */
  if (tw_reactor_new(&r, NULL, TW_REACTOR_SIGNALS) != 0) return 1;
  err = tw_listen_udp(&port, r, portno, &echo, host, 0);
  if (err != 0) {
    fprintf(stderr, "cannot listen on %s:%d: %s\n", host, portno,
            tw_strerror(err));
    tw_reactor_free(r);
    return 1;
  }
  tw_udp_port_get_host(port, &a);
  printf("listening on %s:%d\n", a.host, a.port);
  fflush(stdout);
  tw_reactor_run(r);
  /* The reactor's shutdown closed the port. */
  return tw_reactor_free(r) == 0 ? 0 : 1;
}
