/*
 * examples/echoserv.c - Twisted's docs/core/examples/echoserv.py: the
 * simplest protocol, writing back whatever it receives.
 *
 * usage: echoserv [PORT | tcp:PORT | unix:PATH]   (default 8000)
 * Runs until SIGINT or SIGTERM.
 */
#include <twuv.h>

#include "listen_arg.h"

/* class Echo(Protocol): dataReceived writes the data back. */
static tw_failure *echo_data(tw_protocol *p, const char *data, size_t len) {
  tw_transport_write(p->transport, data, len);
  return NULL;
}

static const tw_protocol_ops echo_ops = {.data_received = echo_data};

int main(int argc, char **argv) {
  tw_reactor *r;
  tw_factory f;
  tw_listening_port *port;
  /* f = Factory(); f.protocol = Echo */
  tw_factory_for_protocol(&f, &echo_ops, sizeof(tw_protocol), NULL);
  /* TW_REACTOR_SIGNALS: SIGINT/SIGTERM stop the reactor, as Twisted's. */
  if (tw_reactor_new(&r, NULL, TW_REACTOR_SIGNALS) != 0) return 1;
  if (example_listen(r, &f, argc > 1 ? argv[1] : "8000", &port) != 0) {
    tw_reactor_free(r);
    return 1;
  }
  tw_reactor_run(r);
  /* The reactor's shutdown closed the port and the connections. */
  return tw_reactor_free(r) == 0 ? 0 : 1;
}
