/*
 * examples/simpleserv.c - Twisted's docs/core/examples/simpleserv.py: an
 * echo protocol on a protocol.ServerFactory, here with a factory struct of
 * its own and build_protocol written out (what Factory.forProtocol does for
 * echoserv.c), counting the connections it builds.
 *
 * usage: simpleserv [PORT | tcp:PORT | unix:PATH]   (default 8000)
 * Runs until SIGINT or SIGTERM.
 */
#include <stdlib.h>

#include <twuv.h>

#include "listen_arg.h"

/* This is just about the simplest possible protocol. */
static tw_failure *echo_data(tw_protocol *p, const char *data, size_t len) {
  /* As soon as any data is received, write it back. */
  tw_transport_write(p->transport, data, len);
  return NULL;
}

static void echo_dealloc(tw_protocol *p) { free(p); }

static const tw_protocol_ops echo_ops = {.data_received = echo_data};

typedef struct server_factory {
  tw_factory base;
  long built;
} server_factory;

/* ServerFactory.buildProtocol: one Echo per connection. */
static tw_protocol *build_echo(tw_factory *f, const tw_address *addr) {
  tw_protocol *p = malloc(sizeof(*p));
  (void)addr;
  if (p == NULL) return NULL; /* refused: the connection is closed */
  tw_protocol_init(p, &echo_ops);
  p->dealloc = echo_dealloc; /* after connection_lost */
  ((server_factory *)f)->built++;
  return p;
}

static const tw_factory_ops server_ops = {.build_protocol = build_echo};

int main(int argc, char **argv) {
  tw_reactor *r;
  server_factory f;
  tw_listening_port *port;
  tw_factory_init(&f.base, &server_ops);
  f.built = 0;
  if (tw_reactor_new(&r, NULL, TW_REACTOR_SIGNALS) != 0) return 1;
  if (example_listen(r, &f.base, argc > 1 ? argv[1] : "8000", &port) != 0) {
    tw_reactor_free(r);
    return 1;
  }
  tw_reactor_run(r);
  fprintf(stderr, "served %ld connections\n", f.built);
  return tw_reactor_free(r) == 0 ? 0 : 1;
}
