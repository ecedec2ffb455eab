/*
 * examples/echoclient.c - Twisted's docs/core/examples/echoclient.py: send
 * three lines to an echo server, print what comes back, close after the
 * last; task.react ends the program when the factory's Deferred fires.
 *
 * usage: echoclient [HOST [PORT]]   (default localhost 8000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <twuv.h>

#define END "Bye-bye!"

/* class EchoClient(LineReceiver): the line splitting is written out here
 * (LineReceiver's delimiter is "\r\n"). */
typedef struct echo_client {
  tw_protocol base;
  char line[1024];
  size_t len;
} echo_client;

static void send_line(tw_protocol *p, const char *line) {
  tw_iovec v[2] = {{line, strlen(line)}, {"\r\n", 2}};
  tw_transport_write_sequence(p->transport, v, 2);
}

static void client_made(tw_protocol *p) {
  send_line(p, "Hello, world!");
  send_line(p, "What a fine day it is.");
  send_line(p, END);
}

static void line_received(tw_protocol *p, const char *line) {
  printf("receive: b'%s'\n", line);
  if (strcmp(line, END) == 0) tw_transport_lose_connection(p->transport);
}

static tw_failure *client_data(tw_protocol *p, const char *data, size_t len) {
  echo_client *c = (echo_client *)p;
  size_t i;
  /* data is borrowed for this call: keep what is not a whole line yet. */
  for (i = 0; i < len; i++) {
    if (c->len == sizeof(c->line))
      return tw_failure_new(&TW_VALUE_ERROR, 0, "line too long");
    c->line[c->len++] = data[i];
    if (c->len >= 2 && c->line[c->len - 2] == '\r' &&
        c->line[c->len - 1] == '\n') {
      c->line[c->len - 2] = '\0';
      c->len = 0;
      line_received(p, c->line);
    }
  }
  return NULL;
}

static const tw_protocol_ops client_ops = {.connection_made = client_made,
                                           .data_received = client_data};

/* class EchoClientFactory(ClientFactory), with its done Deferred. */
typedef struct echo_factory {
  tw_factory base;
  tw_deferred *done;
} echo_factory;

static void connection_failed(tw_factory *f, tw_connector *c,
                              tw_failure *reason) {
  (void)c;
  printf("connection failed: %s\n", tw_failure_message(reason));
  tw_deferred_errback(((echo_factory *)f)->done, tw_failure_ref(reason));
}

static void connection_lost(tw_factory *f, tw_connector *c,
                            tw_failure *reason) {
  (void)c;
  printf("connection lost: %s\n", tw_failure_message(reason));
  tw_deferred_callback(((echo_factory *)f)->done, tw_result_none());
}

static echo_factory factory;

static tw_deferred *echo_main(tw_reactor *r, int argc, char **argv) {
  static const tw_factory_ops ops = {.client_connection_failed =
                                         connection_failed,
                                     .client_connection_lost =
                                         connection_lost};
  tw_connector *c;
  const char *host = argc > 1 ? argv[1] : "localhost";
  int port = argc > 2 ? atoi(argv[2]) : 8000;
  tw_factory_for_protocol(&factory.base, &client_ops, sizeof(echo_client),
                          &ops);
  factory.done = tw_deferred_new(NULL, NULL);
  if (tw_connect_tcp(&c, r, host, port, &factory.base, 0, NULL) != 0)
    return NULL;
  return tw_deferred_ref(factory.done);
}

int main(int argc, char **argv) {
  int code = tw_react(echo_main, argc, argv);
  tw_deferred_unref(factory.done);
  return code;
}
