/*
 * examples/chatclient.c - two users of examples/chatserver (Twisted's
 * chatserver.py) in one program, for the demo: alice and bob connect,
 * each says who is here and waits to see its own line come back (the
 * server has it in its clients list then); once both are in, alice says
 * "hello from alice", bob answers "hi from bob" when he sees it, and each
 * prints every line it sees. Both must see both lines; then both hang
 * up and the program exits 0 (1 on a failure or after 10 seconds).
 *
 * usage: chatclient HOST PORT
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <twuv.h>

typedef struct user {
  tw_line_receiver lr; /* first */
  const char *name;
  tw_factory factory; /* builds this user's protocol */
  int joined, saw_alice, saw_bob, lost;
} user;

static user alice, bob;
static tw_reactor *reactor;
static int failed;

/* The server's LineReceiver splits on "\r\n" (telnet's); it answers
 * with "\n", this receiver's delimiter. */
static void say(user *u, const char *line) {
  tw_iovec v[2] = {{line, strlen(line)}, {"\r\n", 2}};
  tw_transport_write_sequence(u->lr.base.transport, v, 2);
}

static void user_made(tw_line_receiver *lr) {
  user *u = (user *)lr;
  char line[64];
  snprintf(line, sizeof line, "%s is here", u->name);
  say(u, line);
}

static void user_lost(tw_line_receiver *lr, tw_failure *reason) {
  user *u = (user *)lr;
  (void)reason;
  u->lost = 1;
  if (alice.lost && bob.lost) tw_reactor_stop(reactor);
}

static int is(const char *line, size_t len, const char *want) {
  return len == strlen(want) && memcmp(line, want, len) == 0;
}

static tw_failure *user_line(tw_line_receiver *lr, const char *line,
                             size_t len) {
  user *u = (user *)lr;
  char own[64];
  printf("%s saw: %.*s\n", u->name, (int)len, line);
  snprintf(own, sizeof own, "%s is here", u->name);
  if (is(line, len, own)) {
    u->joined = 1;
    if (alice.joined && bob.joined) say(&alice, "hello from alice");
  }
  if (is(line, len, "hello from alice")) {
    u->saw_alice = 1;
    if (u == &bob) say(&bob, "hi from bob");
  }
  if (is(line, len, "hi from bob")) u->saw_bob = 1;
  if (alice.saw_alice && alice.saw_bob && bob.saw_alice && bob.saw_bob) {
    tw_transport_lose_connection(alice.lr.base.transport);
    tw_transport_lose_connection(bob.lr.base.transport);
  }
  return NULL;
}

static const tw_line_receiver_ops user_ops = {.connection_made = user_made,
                                              .connection_lost = user_lost,
                                              .line_received = user_line};

/* The factory hands out its user's protocol (no allocation). */
static tw_protocol *user_build(tw_factory *f, const tw_address *addr) {
  (void)addr;
  return &((user *)f->data)->lr.base;
}

static void user_failed(tw_factory *f, tw_connector *c, tw_failure *reason) {
  (void)c;
  fprintf(stderr, "%s: connection failed: %s\n", ((user *)f->data)->name,
          tw_failure_message(reason));
  failed = 1;
  tw_reactor_stop(reactor);
}

static const tw_factory_ops user_factory_ops = {
    .build_protocol = user_build, .client_connection_failed = user_failed};

static void too_slow(void *arg) {
  (void)arg;
  fprintf(stderr, "timed out\n");
  failed = 1;
  tw_reactor_stop(reactor);
}

static int start(user *u, const char *name, const char *host, int port) {
  tw_connector *c;
  u->name = name;
  tw_line_receiver_init(&u->lr, &user_ops);
  /* chatserver.py writes message + b'\n' */
  tw_line_receiver_set_delimiter(&u->lr, "\n", 1);
  tw_factory_init(&u->factory, &user_factory_ops);
  u->factory.data = u;
  return tw_connect_tcp(&c, reactor, host, port, &u->factory, 5.0, NULL);
}

int main(int argc, char **argv) {
  int err;
  if (argc != 3) {
    fprintf(stderr, "usage: chatclient HOST PORT\n");
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (tw_reactor_new(&reactor, NULL, TW_REACTOR_SIGNALS) != 0) return 1;
  err = start(&alice, "alice", argv[1], atoi(argv[2]));
  if (err == 0) err = start(&bob, "bob", argv[1], atoi(argv[2]));
  if (err == 0)
    err = tw_reactor_call_later(reactor, 10.0, too_slow, NULL, NULL, NULL);
  if (err != 0) {
    fprintf(stderr, "error: %s\n", tw_strerror(err));
    tw_reactor_free(reactor);
    return 1;
  }
  tw_reactor_run(reactor);
  tw_reactor_free(reactor);
  if (!failed) printf("both saw both lines\n");
  return failed ? 1 : 0;
}
