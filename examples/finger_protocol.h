/*
 * examples/finger_protocol.h - the finger tutorial's FingerProtocol from
 * finger08.py on, shared by finger08.c and finger_thread.c (the tutorial's
 * point: the protocol takes a Deferred from getUser and no longer changes,
 * whatever the back end):
 *
 *     class FingerProtocol(basic.LineReceiver):
 *         def lineReceived(self, user):
 *             d = self.factory.getUser(user)
 *             def onError(err):
 *                 return 'Internal error in server'
 *             d.addErrback(onError)
 *             def writeResponse(message):
 *                 self.transport.write(message + b'\r\n')
 *                 self.transport.loseConnection()
 *             d.addCallback(writeResponse)
 *
 * One thing C adds: writeResponse's closure holds the protocol, which is
 * freed after its connection_lost. A client that hangs up before the
 * answer comes would leave the callback a dangling pointer, so
 * connection_lost cancels the Deferred if it has not fired (a thread's
 * late answer is then dropped: threads.h) - the callbacks run there,
 * while the protocol is still alive, and their write is simply dropped.
 */
#ifndef TWUV_EXAMPLES_FINGER_PROTOCOL_H
#define TWUV_EXAMPLES_FINGER_PROTOCOL_H

#include <stdlib.h>
#include <string.h>
#include <twuv.h>

#include "listen_arg.h"

typedef struct finger_user {
  const char *name, *status;
} finger_user;

/* self.users.get(user, b"No such user") */
static const char *finger_lookup(const finger_user *users, const char *user,
                                 size_t len) {
  const finger_user *u;
  for (u = users; u->name != NULL; u++)
    if (strlen(u->name) == len && memcmp(u->name, user, len) == 0)
      return u->status;
  return "No such user";
}

typedef struct finger_factory finger_factory;
/* getUser: a Deferred firing with the answer (a string result), or NULL
 * out of memory. */
typedef tw_deferred *(*finger_get_user_fn)(finger_factory *f,
                                           const char *user, size_t len);

struct finger_factory {
  tw_factory base;
  const finger_user *users;
  finger_get_user_fn get_user;
  tw_reactor *reactor;
};

typedef struct finger_protocol {
  tw_line_receiver lr; /* first */
  tw_deferred *pending; /* getUser's Deferred, until connection_lost */
} finger_protocol;

static void finger_respond(finger_protocol *x, const char *message) {
  tw_transport *t = x->lr.base.transport;
  tw_iovec v[2] = {{message, strlen(message)}, {"\r\n", 2}};
  tw_transport_write_sequence(t, v, 2);
  tw_transport_lose_connection(t);
}

static tw_result finger_on_error(tw_result err, void *arg) {
  (void)arg;
  tw_result_release(err);
  return tw_result_strdup("Internal error in server");
}

static tw_result finger_write_response(tw_result message, void *arg) {
  finger_respond(arg, tw_result_as_str(message));
  tw_result_release(message);
  return tw_result_none();
}

static tw_failure *finger_line(tw_line_receiver *lr, const char *user,
                               size_t len) {
  finger_protocol *x = (finger_protocol *)lr;
  finger_factory *f = (finger_factory *)lr->base.factory;
  tw_deferred *d;
  if (x->pending != NULL) return NULL; /* answering already */
  d = f->get_user(f, user, len);
  if (d == NULL) {
    finger_respond(x, "Internal error in server");
    return NULL;
  }
  x->pending = d;
  tw_deferred_add_errback(d, finger_on_error, NULL);
  tw_deferred_add_callback(d, finger_write_response, x);
  return NULL;
}

static void finger_lost(tw_line_receiver *lr, tw_failure *reason) {
  finger_protocol *x = (finger_protocol *)lr;
  (void)reason;
  if (x->pending == NULL) return;
  if (!tw_deferred_called(x->pending)) tw_deferred_cancel(x->pending);
  tw_deferred_unref(x->pending);
  x->pending = NULL;
}

static const tw_line_receiver_ops finger_protocol_ops = {
    .connection_lost = finger_lost, .line_received = finger_line};

static void finger_free(tw_protocol *p) { free(p); }

static tw_protocol *finger_build(tw_factory *f, const tw_address *addr) {
  finger_protocol *x = calloc(1, sizeof *x);
  (void)f;
  (void)addr;
  if (x == NULL) return NULL;
  tw_line_receiver_init(&x->lr, &finger_protocol_ops);
  x->lr.base.dealloc = finger_free;
  return &x->lr.base;
}

static const tw_factory_ops finger_factory_ops = {.build_protocol =
                                                      finger_build};

/* fingerEndpoint = endpoints.serverFromString(reactor, "tcp:1079")
 * fingerEndpoint.listen(FingerFactory({b'moshez': b'Happy and well'}))
 * reactor.run() */
static int finger_main(int argc, char **argv, finger_get_user_fn get_user) {
  static const finger_user users[] = {{"moshez", "Happy and well"},
                                      {NULL, NULL}};
  finger_factory f;
  tw_listening_port *port;
  int rc;
  tw_factory_init(&f.base, &finger_factory_ops);
  f.users = users;
  f.get_user = get_user;
  if (tw_reactor_new(&f.reactor, NULL, TW_REACTOR_SIGNALS) != 0) return 1;
  if (example_listen(f.reactor, &f.base, argc > 1 ? argv[1] : "tcp:1079",
                     &port) != 0) {
    tw_reactor_free(f.reactor);
    return 1;
  }
  tw_reactor_run(f.reactor);
  rc = tw_reactor_free(f.reactor) == 0 ? 0 : 1;
  tw_thread_cleanup();
  return rc;
}

#endif
