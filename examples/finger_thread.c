/*
 * examples/finger_thread.c - the finger tutorial's FingerProtocol
 * (finger08.py on, unchanged: finger_protocol.h) with a getUser whose
 * answer comes from a thread, as the tutorial's later back ends (a
 * process in finger09.py, the web in finger10.py) answer later:
 *
 *     def getUser(self, user):
 *         return threads.deferToThread(self._lookup, user)
 *
 * The lookup runs on the reactor's thread pool (it stands for a blocking
 * call: a database, a file read); its string comes back to the loop
 * thread as the Deferred's result, where writeResponse writes it. A
 * client that hangs up first has the Deferred cancelled (the thread's
 * late answer is dropped).
 *
 * usage: finger_thread [ENDPOINT]   (default tcp:1079). Until
 * SIGINT/SIGTERM.
 */
#include <string.h>
#include <twuv.h>

#include "finger_protocol.h"

typedef struct lookup {
  const finger_user *users;
  size_t len;
  char user[]; /* copied: the line is borrowed for line_received only */
} lookup;

/* On a pool thread: the blocking lookup. */
static tw_result lookup_in_thread(void *arg) {
  lookup *q = arg;
  return tw_result_strdup(finger_lookup(q->users, q->user, q->len));
}

static tw_deferred *get_user(finger_factory *f, const char *user,
                             size_t len) {
  lookup *q = malloc(sizeof *q + len + 1);
  tw_deferred *d;
  if (q == NULL) return NULL;
  q->users = f->users;
  q->len = len;
  memcpy(q->user, user, len);
  q->user[len] = '\0';
  if (tw_defer_to_thread(f->reactor, lookup_in_thread, q, free, &d) != 0) {
    free(q); /* an error takes nothing: arg_free was not called */
    return NULL;
  }
  return d;
}

int main(int argc, char **argv) {
  return finger_main(argc, argv, get_user);
}
