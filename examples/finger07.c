/*
 * examples/finger07.c - the finger tutorial's finger07.py (Twisted's
 * docs/core/howto/tutorial/intro.rst, "Read Username, Output From
 * Non-empty Factory, Drop Connections"): a finger server that answers
 * from a table in its factory.
 *
 *     class FingerProtocol(basic.LineReceiver):
 *         def lineReceived(self, user):
 *             self.transport.write(self.factory.getUser(user) + b"\r\n")
 *             self.transport.loseConnection()
 *
 *     class FingerFactory(protocol.ServerFactory):
 *         protocol = FingerProtocol
 *         def __init__(self, users):
 *             self.users = users
 *         def getUser(self, user):
 *             return self.users.get(user, b"No such user")
 *
 *     fingerEndpoint = endpoints.serverFromString(reactor, "tcp:1079")
 *     fingerEndpoint.listen(FingerFactory({b"moshez": b"Happy and well"}))
 *     reactor.run()
 *
 * usage: finger07 [ENDPOINT]   (default tcp:1079). Until SIGINT/SIGTERM.
 * Try it: `echo moshez | nc localhost 1079`, or examples/fingerclient.
 */
#include <stdlib.h>
#include <string.h>
#include <twuv.h>

#include "listen_arg.h"

/* The users table: {b"moshez": b"Happy and well"}. */
typedef struct finger_user {
  const char *name, *status;
} finger_user;

typedef struct finger_factory {
  tw_factory base;
  const finger_user *users;
} finger_factory;

/* getUser: the table's entry, or "No such user". */
static const char *get_user(finger_factory *f, const char *user, size_t len) {
  const finger_user *u;
  for (u = f->users; u->name != NULL; u++)
    if (strlen(u->name) == len && memcmp(u->name, user, len) == 0)
      return u->status;
  return "No such user";
}

static tw_failure *finger_line(tw_line_receiver *lr, const char *user,
                               size_t len) {
  tw_transport *t = lr->base.transport;
  const char *answer = get_user((finger_factory *)lr->base.factory, user, len);
  tw_iovec v[2] = {{answer, strlen(answer)}, {"\r\n", 2}};
  tw_transport_write_sequence(t, v, 2);
  tw_transport_lose_connection(t);
  return NULL;
}

static const tw_line_receiver_ops finger_ops = {.line_received = finger_line};

static void finger_free(tw_protocol *p) { free(p); }

/* protocol = FingerProtocol */
static tw_protocol *finger_build(tw_factory *f, const tw_address *addr) {
  tw_line_receiver *lr = calloc(1, sizeof *lr);
  (void)f;
  (void)addr;
  if (lr == NULL) return NULL;
  tw_line_receiver_init(lr, &finger_ops);
  lr->base.dealloc = finger_free;
  return &lr->base;
}

static const tw_factory_ops finger_factory_ops = {.build_protocol =
                                                      finger_build};

int main(int argc, char **argv) {
  static const finger_user users[] = {{"moshez", "Happy and well"},
                                      {NULL, NULL}};
  tw_reactor *r;
  finger_factory f;
  tw_listening_port *port;
  tw_factory_init(&f.base, &finger_factory_ops);
  f.users = users;
  if (tw_reactor_new(&r, NULL, TW_REACTOR_SIGNALS) != 0) return 1;
  if (example_listen(r, &f.base, argc > 1 ? argv[1] : "tcp:1079", &port) !=
      0) {
    tw_reactor_free(r);
    return 1;
  }
  tw_reactor_run(r);
  return tw_reactor_free(r) == 0 ? 0 : 1;
}
