/*
 * examples/fingerclient.c - asks a finger server (examples/finger07,
 * finger08, finger_thread) about users, one connection per user, as
 * `finger USER@HOST` would: sends the name and a "\r\n", prints what the
 * server answers until it closes, as "USER: ANSWER".
 *
 * usage: fingerclient HOST PORT [USER...]   (default users: moshez nobody)
 * Exits 0 when every user got an answer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <twuv.h>

typedef struct query {
  tw_protocol base; /* first */
  char answer[512];
  size_t len;
} query;

static tw_reactor *reactor;
static const char *host;
static int port, next_user, nusers, failed;
static char **users;
static tw_factory factory;

static void ask_next(void);

static void query_made(tw_protocol *p) {
  const char *u = users[next_user];
  tw_iovec v[2] = {{u, strlen(u)}, {"\r\n", 2}};
  tw_transport_write_sequence(p->transport, v, 2);
}

static tw_failure *query_data(tw_protocol *p, const char *data, size_t len) {
  query *q = (query *)p;
  if (len > sizeof q->answer - 1 - q->len) len = sizeof q->answer - 1 - q->len;
  memcpy(q->answer + q->len, data, len);
  q->len += len;
  return NULL;
}

/* The server answered and closed: print, then the next user. */
static void query_lost(tw_protocol *p, tw_failure *reason) {
  query *q = (query *)p;
  (void)reason;
  while (q->len > 0 &&
         (q->answer[q->len - 1] == '\n' || q->answer[q->len - 1] == '\r'))
    q->len--;
  q->answer[q->len] = '\0';
  printf("%s: %s\n", users[next_user], q->answer);
  if (q->len == 0) failed = 1;
  next_user++;
  ask_next();
}

static const tw_protocol_ops query_ops = {.connection_made = query_made,
                                          .data_received = query_data,
                                          .connection_lost = query_lost};

static void query_failed(tw_factory *f, tw_connector *c, tw_failure *reason) {
  (void)f;
  (void)c;
  fprintf(stderr, "connection failed: %s\n", tw_failure_message(reason));
  failed = 1;
  tw_reactor_stop(reactor);
}

static void ask_next(void) {
  tw_connector *c;
  if (next_user == nusers) {
    tw_reactor_stop(reactor);
    return;
  }
  if (tw_connect_tcp(&c, reactor, host, port, &factory, 5.0, NULL) != 0) {
    failed = 1;
    tw_reactor_stop(reactor);
  }
}

static void too_slow(void *arg) {
  (void)arg;
  fprintf(stderr, "timed out\n");
  failed = 1;
  tw_reactor_stop(reactor);
}

int main(int argc, char **argv) {
  static char *default_users[] = {"moshez", "nobody"};
  static const tw_factory_ops fops = {.client_connection_failed =
                                          query_failed};
  if (argc < 3) {
    fprintf(stderr, "usage: fingerclient HOST PORT [USER...]\n");
    return 2;
  }
  host = argv[1];
  port = atoi(argv[2]);
  users = argc > 3 ? argv + 3 : default_users;
  nusers = argc > 3 ? argc - 3 : 2;
  setvbuf(stdout, NULL, _IOLBF, 0);
  /* Factory.forProtocol: a zeroed query per connection, freed after it. */
  tw_factory_for_protocol(&factory, &query_ops, sizeof(query), &fops);
  if (tw_reactor_new(&reactor, NULL, TW_REACTOR_SIGNALS) != 0) return 1;
  tw_reactor_call_later(reactor, 10.0, too_slow, NULL, NULL, NULL);
  ask_next();
  tw_reactor_run(reactor);
  tw_reactor_free(reactor);
  return failed ? 1 : 0;
}
