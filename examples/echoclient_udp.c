/*
 * examples/echoclient_udp.c - Twisted's docs/core/examples/echoclient_udp.py:
 * a connected UDP port sends three datagrams to an echo server, one at a
 * time, printing each echo, and stops after the last.
 *
 * usage: echoclient_udp [HOST:PORT | HOST PORT]   (default 127.0.0.1:8000;
 *        the host must be numeric, as connect() requires an IP)
 * UDP may lose a datagram: with no echo for 5 seconds the client gives up
 * and exits 1 (Twisted's example would wait for ever).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <twuv.h>

#include "udp_arg.h"

typedef struct echo_client {
  tw_datagram_protocol base;
  tw_reactor *r;
  const char *host;
  int port;
  int next, failed;
  tw_delayed_call *timeout;
} echo_client;

static const char *const strings[] = {"Hello, world!", "What a fine day it is.",
                                      "Bye-bye!"};

static void no_answer(void *arg) {
  echo_client *c = arg;
  fprintf(stderr, "no answer from %s:%d\n", c->host, c->port);
  c->failed = 1;
  tw_delayed_call_unref(c->timeout);
  c->timeout = NULL;
  tw_reactor_stop(c->r);
}

static void send_datagram(echo_client *c) {
  int err;
  if (c->timeout != NULL) {
    tw_delayed_call_cancel(c->timeout);
    tw_delayed_call_unref(c->timeout);
    c->timeout = NULL;
  }
  if (c->next == (int)(sizeof(strings) / sizeof(strings[0]))) {
    tw_reactor_stop(c->r);
    return;
  }
  err = tw_udp_port_write(c->base.transport, strings[c->next],
                          strlen(strings[c->next]), NULL);
  c->next++;
  if (err != 0) {
    fprintf(stderr, "write: %s\n", tw_strerror(err));
    c->failed = 1;
    tw_reactor_stop(c->r);
    return;
  }
  tw_reactor_call_later(c->r, 5.0, no_answer, c, NULL, &c->timeout);
}

static void start_protocol(tw_datagram_protocol *p) {
  echo_client *c = (echo_client *)p;
  int err = tw_udp_port_connect(p->transport, c->host, c->port);
  if (err != 0) {
    fprintf(stderr, "connect %s:%d: %s\n", c->host, c->port, tw_strerror(err));
    c->failed = 1;
    tw_reactor_stop(c->r);
    return;
  }
  send_datagram(c);
}

static tw_failure *datagram_received(tw_datagram_protocol *p,
                                     const char *data, size_t len,
                                     const tw_address *from) {
  (void)from;
  printf("Datagram received:  b'%.*s'\n", (int)len, data);
  send_datagram((echo_client *)p);
  return NULL;
}

static void connection_refused(tw_datagram_protocol *p) {
  echo_client *c = (echo_client *)p;
  fprintf(stderr, "connection refused by %s:%d\n", c->host, c->port);
  c->failed = 1;
  tw_reactor_stop(c->r);
}

static const tw_datagram_protocol_ops client_ops = {
    .start_protocol = start_protocol,
    .datagram_received = datagram_received,
    .connection_refused = connection_refused};

int main(int argc, char **argv) {
  static echo_client c;
  char host[64], arg[128];
  const char *local;
  tw_udp_port *port;
  int err;
  if (argc > 2)
    snprintf(arg, sizeof(arg), "%s:%s", argv[1], argv[2]);
  else
    snprintf(arg, sizeof(arg), "%s", argc > 1 ? argv[1] : "127.0.0.1:8000");
  if (udp_arg(arg, "127.0.0.1", host, sizeof(host), &c.port) != 0) {
    fprintf(stderr, "usage: echoclient_udp [HOST:PORT | HOST PORT]\n");
    return 2;
  }
  c.host = host;
  tw_datagram_protocol_init(&c.base, &client_ops);
  if (tw_reactor_new(&c.r, NULL, 0) != 0) return 1;
  /* listenUDP(0, protocol): the family follows the server's address, and
   * a loopback server is talked to from loopback only. */
  if (strcmp(host, "::1") == 0 || strncmp(host, "127.", 4) == 0)
    local = host;
  else
    local = strchr(host, ':') != NULL ? "::" : "0.0.0.0";
  err = tw_listen_udp(&port, c.r, 0, &c.base, local, 0);
  if (err != 0) {
    fprintf(stderr, "listen: %s\n", tw_strerror(err));
    tw_reactor_free(c.r);
    return 1;
  }
  if (!c.failed) tw_reactor_run(c.r);
  if (c.timeout != NULL) {
    tw_delayed_call_cancel(c.timeout);
    tw_delayed_call_unref(c.timeout);
  }
  return tw_reactor_free(c.r) == 0 && !c.failed ? 0 : 1;
}
