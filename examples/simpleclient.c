/*
 * examples/simpleclient.c - Twisted's docs/core/examples/simpleclient.py:
 * once connected, send a message, print the answer, close; the factory
 * stops the reactor when the connection is lost or cannot be made.
 * Run simpleserv first.
 *
 * usage: simpleclient [HOST [PORT]]   (default localhost 8000)
 */
#include <stdio.h>
#include <stdlib.h>

#include <twuv.h>

/* A client protocol. */
static void client_made(tw_protocol *p) {
  tw_address peer;
  char text[160];
  tw_transport_get_peer(p->transport, &peer);
  tw_address_format(&peer, text, sizeof(text));
  printf("New connection from remote peer %s\n", text);
  tw_transport_write(p->transport, "hello, world!", 13);
}

static tw_failure *client_data(tw_protocol *p, const char *data, size_t len) {
  printf("Server said: b'%.*s'\n", (int)len, data);
  tw_transport_lose_connection(p->transport);
  return NULL;
}

static void client_lost(tw_protocol *p, tw_failure *reason) {
  (void)p;
  (void)reason;
  printf("connection lost\n");
}

static const tw_protocol_ops client_ops = {.connection_made = client_made,
                                           .data_received = client_data,
                                           .connection_lost = client_lost};

typedef struct echo_factory {
  tw_factory base;
  tw_reactor *r;
  int failed;
} echo_factory;

static void connection_failed(tw_factory *f, tw_connector *c,
                              tw_failure *reason) {
  (void)c;
  (void)reason;
  printf("Connection failed - goodbye!\n");
  ((echo_factory *)f)->failed = 1;
  tw_reactor_stop(((echo_factory *)f)->r);
}

static void connection_lost(tw_factory *f, tw_connector *c,
                            tw_failure *reason) {
  (void)c;
  (void)reason;
  printf("Connection lost - goodbye!\n");
  tw_reactor_stop(((echo_factory *)f)->r);
}

int main(int argc, char **argv) {
  static const tw_factory_ops ops = {.client_connection_failed =
                                         connection_failed,
                                     .client_connection_lost =
                                         connection_lost};
  echo_factory f;
  tw_connector *c;
  tw_reactor *r;
  const char *host = argc > 1 ? argv[1] : "localhost";
  int port = argc > 2 ? atoi(argv[2]) : 8000;
  if (tw_reactor_new(&r, NULL, 0) != 0) return 1;
  tw_factory_for_protocol(&f.base, &client_ops, sizeof(tw_protocol), &ops);
  f.r = r;
  f.failed = 0;
  /* this connects the protocol to a server running on port 8000 */
  if (tw_connect_tcp(&c, r, host, port, &f.base, 0, NULL) != 0) {
    tw_reactor_free(r);
    return 1;
  }
  tw_reactor_run(r);
  tw_reactor_free(r);
  return f.failed;
}
