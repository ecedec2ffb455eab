/*
 * examples/finger08.c - the finger tutorial's finger08.py ("Use
 * Deferreds"): getUser returns a Deferred, and the protocol answers from
 * its callbacks, so that the protocol no longer assumes the answer is
 * there at once. Here getUser is defer.succeed (already fired: the
 * callbacks run inside line_received); examples/finger_thread.c keeps
 * the protocol unchanged and answers from a thread.
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
 *     class FingerFactory(protocol.ServerFactory):
 *         protocol = FingerProtocol
 *         def __init__(self, users):
 *             self.users = users
 *         def getUser(self, user):
 *             return defer.succeed(self.users.get(user, b"No such user"))
 *
 * usage: finger08 [ENDPOINT]   (default tcp:1079). Until SIGINT/SIGTERM.
 */
#include <twuv.h>

#include "finger_protocol.h"

/* getUser: defer.succeed(self.users.get(user, b"No such user")). */
static tw_deferred *get_user(finger_factory *f, const char *user,
                             size_t len) {
  tw_result v = tw_result_strdup(finger_lookup(f->users, user, len));
  tw_deferred *d;
  if (tw_result_is_failure(v)) return tw_fail(v.u.failure);
  d = tw_succeed(v.u.value, v.value_free);
  if (d == NULL) tw_result_release(v); /* out of memory: still ours */
  return d;
}

int main(int argc, char **argv) {
  return finger_main(argc, argv, get_user);
}
