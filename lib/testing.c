/*
 * lib/testing.c - testing.h: the string transport, the feeder and the
 * iosim pump. Each is a transport kind (transport-internal.h), so that
 * protocol.c applies to them the rules it applies to real connections.
 */
#include "internal.h"
#include "transport-internal.h"

#include <pthread.h>
#include <string.h>

/* ---- shared bits -------------------------------------------------------------- */

/* A growable byte buffer: what a double holds of the bytes written. */
typedef struct bytes {
  char *data;
  size_t len, cap;
} bytes;

/* Appends the pieces; all or nothing. */
static int bytes_append(bytes *b, const tw_iovec *bufs, size_t n) {
  size_t i, total = 0;
  for (i = 0; i < n; i++) {
    if (bufs[i].len > (size_t)-1 - 1 - total - b->len) return TW_ENOMEM;
    total += bufs[i].len;
  }
  if (b->len + total + 1 > b->cap) {
    size_t cap = b->cap != 0 ? b->cap : 256;
    char *d;
    while (cap < b->len + total + 1)
      cap = cap > (size_t)-1 / 2 ? b->len + total + 1 : cap * 2;
    d = tw__realloc(b->data, cap);
    if (d == NULL) return TW_ENOMEM;
    b->data = d;
    b->cap = cap;
  }
  for (i = 0; i < n; i++) {
    memcpy(b->data + b->len, bufs[i].base, bufs[i].len);
    b->len += bufs[i].len;
  }
  b->data[b->len] = '\0';
  return 0;
}

static const char *bytes_value(const bytes *b, size_t *len) {
  if (len != NULL) *len = b != NULL ? b->len : 0;
  return b != NULL && b->data != NULL ? b->data : "";
}

static void bytes_clear(bytes *b) {
  b->len = 0;
  if (b->data != NULL) b->data[0] = '\0';
}

static void address_ipv4(tw_address *a, const char *host, int port) {
  memset(a, 0, sizeof *a);
  a->family = TW_ADDRESS_IPV4;
  a->type = TW_ADDRESS_TCP;
  strcpy(a->host, host);
  a->port = port;
}

/* A valid address to copy: one tw_address_format accepts. */
static int address_ok(const tw_address *a) {
  return a == NULL || tw_address_format(a, NULL, 0) >= 0;
}

/* ---- StringTransport ------------------------------------------------------------ */

enum { PRODUCING = 0, PAUSED = 1, STOPPED = 2 };

#define ST_FLAGS                                                  \
  (TW_STRING_TRANSPORT_LENIENT | TW_STRING_TRANSPORT_WITH_DISCONNECTION | \
   TW_STRING_TRANSPORT_BUFFERED)

struct tw_string_transport {
  tw_transport t; /* first */
  pthread_t owner;
  bytes out;
  tw_address host, peer;
  unsigned flags;
  int state; /* PRODUCING, PAUSED, STOPPED */
  unsigned aborted : 1;
  unsigned write_disconnecting : 1; /* lose_write_connection called */
};

static tw_string_transport *st_of(tw_transport *t) {
  return (tw_string_transport *)t;
}

static int st_on_thread(tw_transport *t) {
  return pthread_equal(st_of(t)->owner, pthread_self()) != 0;
}

/* StringTransport.write appends, also after loseConnection (protocol.c
 * drops writes after an abort and once the loss is delivered). */
static int st_writev(tw_transport *t, const tw_iovec *bufs, size_t n) {
  return bytes_append(&st_of(t)->out, bufs, n);
}

static int st_lose(tw_transport *t) {
  /* StringTransportWithDisconnection.loseConnection; protocol.c holds the
   * delivery until the public call (or the protocol's callback) returns. */
  if (st_of(t)->flags & TW_STRING_TRANSPORT_WITH_DISCONNECTION) {
    tw_failure *f = tw__connection_done();
    tw__transport_lost(t, f);
    tw_failure_unref(f);
  }
  return 0;
}

static int st_abort(tw_transport *t) {
  st_of(t)->aborted = 1;
  if (st_of(t)->flags & TW_STRING_TRANSPORT_WITH_DISCONNECTION) {
    tw_failure *f = tw__connection_aborted();
    tw__transport_lost(t, f);
    tw_failure_unref(f);
  }
  return 0;
}

/* loseWriteConnection (StringTransport has none): recorded; the bytes
 * written until the test completes it (tw_string_transport_write_closed)
 * are kept, as a socket sends them before its shutdown. */
static int st_lose_write(tw_transport *t) {
  st_of(t)->write_disconnecting = 1;
  return 0;
}

static int st_get_peer(tw_transport *t, tw_address *out) {
  *out = st_of(t)->peer;
  return 0;
}

static int st_get_host(tw_transport *t, tw_address *out) {
  *out = st_of(t)->host;
  return 0;
}

/* StringTransport._checkState: RuntimeError after loseConnection (unless
 * lenient) and on a stopped producer. */
static int st_check_state(tw_string_transport *st) {
  if (st->t.disconnecting && !(st->flags & TW_STRING_TRANSPORT_LENIENT))
    return TW_ENOTCONN;
  if (st->state == STOPPED) return TW_EINVAL;
  return 0;
}

static int st_pause(tw_transport *t) {
  int rc = st_check_state(st_of(t));
  if (rc == 0) st_of(t)->state = PAUSED;
  return rc;
}

static int st_resume(tw_transport *t) {
  int rc = st_check_state(st_of(t));
  if (rc == 0) st_of(t)->state = PRODUCING;
  return rc;
}

static int st_stop(tw_transport *t) {
  st_of(t)->state = STOPPED;
  return 0;
}

static size_t st_buffered(tw_transport *t) {
  tw_string_transport *st = st_of(t);
  return (st->flags & TW_STRING_TRANSPORT_BUFFERED) ? st->out.len : 0;
}

static const tw__transport_ops string_ops = {
    .on_loop_thread = st_on_thread,
    .writev = st_writev,
    .lose = st_lose,
    .abort = st_abort,
    .lose_write = st_lose_write,
    .get_peer = st_get_peer,
    .get_host = st_get_host,
    .pause_reading = st_pause,
    .resume_reading = st_resume,
    .stop_producing = st_stop,
    .buffered = st_buffered,
};

int tw_string_transport_new(tw_string_transport **out, const tw_address *host,
                            const tw_address *peer, unsigned flags) {
  tw_string_transport *st;
  if (out == NULL || (flags & ~(unsigned)ST_FLAGS) != 0 || !address_ok(host) ||
      !address_ok(peer))
    return TW_EINVAL;
  st = tw__calloc(1, sizeof *st);
  if (st == NULL) return TW_ENOMEM;
  tw__transport_init(&st->t, &string_ops);
  st->owner = pthread_self();
  st->flags = flags;
  if (host != NULL)
    st->host = *host;
  else
    address_ipv4(&st->host, "10.0.0.1", 12345);
  if (peer != NULL)
    st->peer = *peer;
  else
    address_ipv4(&st->peer, "192.168.1.1", 54321);
  tw__transport_make_connection(&st->t, NULL); /* connected = True */
  *out = st;
  return 0;
}

void tw_string_transport_free(tw_string_transport *st) {
  if (st == NULL) return;
  if (st->t.protocol != NULL && !st->t.lost) tw__transport_lost(&st->t, NULL);
  tw__transport_dispose(&st->t);
  tw__free(st->out.data);
  tw__free(st);
}

tw_transport *tw_string_transport_transport(tw_string_transport *st) {
  return st != NULL ? &st->t : NULL;
}

tw_string_transport *tw_string_transport_from(tw_transport *t) {
  return t != NULL && t->ops == &string_ops ? st_of(t) : NULL;
}

static int st_check(tw_string_transport *st) {
  if (st == NULL) return TW_EINVAL;
  return st_on_thread(&st->t) ? 0 : TW_EWRONGTHREAD;
}

int tw_string_transport_connect(tw_string_transport *st, tw_protocol *p) {
  int rc = st_check(st);
  if (rc != 0) return rc;
  if (p == NULL || p->ops == NULL) return TW_EINVAL;
  if (st->t.protocol != NULL || st->t.lost) return TW_EBUSY;
  tw__transport_make_connection(&st->t, p);
  return 0;
}

const char *tw_string_transport_value(tw_string_transport *st, size_t *len) {
  return bytes_value(st != NULL ? &st->out : NULL, len);
}

int tw_string_transport_clear(tw_string_transport *st) {
  int rc = st_check(st);
  if (rc != 0) return rc;
  bytes_clear(&st->out);
  if (st->flags & TW_STRING_TRANSPORT_BUFFERED)
    tw__transport_buffer_changed(&st->t);
  return 0;
}

int tw_string_transport_disconnecting(tw_string_transport *st) {
  return st != NULL && st->t.disconnecting;
}

int tw_string_transport_disconnected(tw_string_transport *st) {
  return st != NULL && st->aborted;
}

tw_producer *tw_string_transport_producer(tw_string_transport *st) {
  return st != NULL ? st->t.producer : NULL;
}

int tw_string_transport_streaming(tw_string_transport *st) {
  return st != NULL && st->t.producer != NULL && st->t.producer_streaming;
}

const char *tw_string_transport_producer_state(tw_string_transport *st) {
  if (st == NULL) return NULL;
  switch (st->state) {
    case PAUSED: return "paused";
    case STOPPED: return "stopped";
    default: return "producing";
  }
}

int tw_string_transport_receive(tw_string_transport *st, const void *data,
                                size_t len) {
  int rc = st_check(st);
  if (rc != 0) return rc;
  if (data == NULL && len > 0) return TW_EINVAL;
  if (st->t.protocol == NULL || st->t.disconnecting || st->t.lost)
    return len > 0 ? TW_ENOTCONN : 0;
  tw__transport_data(&st->t, data, len);
  return 0;
}

int tw_string_transport_eof(tw_string_transport *st) {
  int rc = st_check(st);
  if (rc != 0) return rc;
  tw__transport_eof(&st->t);
  /* Not half-closeable: protocol.c aborted; the peer is gone, so the close
   * completes now (its reason: ConnectionDone). */
  if (st->t.aborting && !st->t.lost) tw__transport_lost(&st->t, NULL);
  return 0;
}

int tw_string_transport_lose(tw_string_transport *st, tw_failure *reason) {
  int rc = st_check(st);
  if (rc != 0) return rc;
  tw__transport_lost(&st->t, reason);
  return 0;
}

int tw_string_transport_write_disconnecting(tw_string_transport *st) {
  return st != NULL && st->write_disconnecting;
}

int tw_string_transport_write_closed(tw_string_transport *st) {
  int rc = st_check(st);
  if (rc != 0) return rc;
  if (!st->write_disconnecting || st->t.lost) return TW_ENOTCONN;
  tw__transport_write_closed(&st->t); /* once: later calls do nothing */
  return 0;
}

int tw_string_transport_lost(tw_string_transport *st) {
  return st != NULL && st->t.lost;
}

/* ---- feeding -------------------------------------------------------------------- */

static const tw__transport_ops fake_ops;

int tw_testing_feed(tw_protocol *p, const void *data, size_t len,
                    size_t chunk) {
  tw_transport *t;
  const char *d = data;
  size_t off = 0;
  if (p == NULL || (data == NULL && len > 0)) return TW_EINVAL;
  t = p->transport;
  if (t == NULL || (t->ops != &string_ops && t->ops != &fake_ops))
    return TW_EINVAL;
  if (!t->ops->on_loop_thread(t)) return TW_EWRONGTHREAD;
  if (chunk == 0) chunk = len;
  while (off < len) {
    size_t n = len - off < chunk ? len - off : chunk;
    /* p may be gone once the connection closed: look only at t. */
    if (t->disconnecting || t->lost || t->protocol == NULL) return TW_ENOTCONN;
    tw__transport_data(t, d + off, n);
    off += n;
  }
  return 0;
}

int tw_testing_feed_all_chunkings(tw_factory *f, const void *data, size_t len,
                                  unsigned flags, tw_testing_check_fn check,
                                  void *arg) {
  size_t chunk, last = len > 0 ? len : 1;
  if (f == NULL || check == NULL || (data == NULL && len > 0) ||
      (flags & ~(unsigned)ST_FLAGS) != 0)
    return TW_EINVAL;
  for (chunk = 1; chunk <= last; chunk++) {
    tw_string_transport *st;
    tw_protocol *p;
    int rc = tw_string_transport_new(&st, NULL, NULL, flags);
    if (rc != 0) return rc;
    p = tw_factory_build_protocol(f, &st->peer);
    if (p == NULL) {
      tw_string_transport_free(st);
      return TW_ECANCELLED;
    }
    tw__transport_make_connection(&st->t, p);
    (void)tw_testing_feed(p, data, len, chunk);
    rc = check(st->t.protocol, st, chunk, arg);
    tw_string_transport_free(st);
    if (rc != 0) return rc;
  }
  return 0;
}

/* ---- iosim ------------------------------------------------------------------------ */

typedef struct fake_side {
  tw_transport t; /* first */
  struct tw_iopump *pump;
  bytes out;
  tw_address host, peer;
  tw_failure *reason; /* this side's connection_lost reason, owned */
  unsigned closing : 1;       /* lose/abort sent, or the peer closed */
  unsigned closed : 1;        /* iosim's disconnected */
  unsigned aborted : 1;
  unsigned write_shut : 1;    /* lose_write sent, not yet done */
  unsigned reading_paused : 1;
  unsigned nodelay : 1;
  unsigned keepalive : 1;
} fake_side;

struct tw_iopump {
  fake_side side[2]; /* 0 server, 1 client */
  pthread_t owner;
};

static fake_side *fs_of(tw_transport *t) { return (fake_side *)t; }

static fake_side *fs_peer(fake_side *s) {
  return &s->pump->side[s == &s->pump->side[0] ? 1 : 0];
}

static int fs_on_thread(tw_transport *t) {
  return pthread_equal(fs_of(t)->pump->owner, pthread_self()) != 0;
}

/* iosim's FakeTransport.write: "if self.disconnecting: return" - once
 * lose_connection reached the fake (not while a producer holds it back),
 * writes are dropped, reported as TW_ENOTCONN. */
static int fs_writev(tw_transport *t, const tw_iovec *bufs, size_t n) {
  if (fs_of(t)->closing) return TW_ENOTCONN;
  return bytes_append(&fs_of(t)->out, bufs, n);
}

static int fs_lose(tw_transport *t) {
  fs_of(t)->closing = 1; /* reported by the pump once the bytes moved */
  return 0;
}

static void fs_set_reason(fake_side *s, tw_failure *f) {
  if (s->reason == NULL)
    s->reason = f;
  else
    tw_failure_unref(f);
}

static int fs_abort(tw_transport *t) {
  fake_side *s = fs_of(t), *peer = fs_peer(s);
  s->closing = 1;
  s->aborted = 1;
  bytes_clear(&s->out); /* a RST: what was not sent is gone */
  fs_set_reason(s, tw__connection_aborted());
  if (!peer->t.write_closed) fs_set_reason(peer, tw__connection_lost(-ECONNRESET));
  return 0;
}

/* protocol.c's close after a failure of the user's: this side's unsent
 * bytes are dropped, and the close crosses the pump as a clean one (the
 * peer gets ConnectionDone), as over TCP. */
static int fs_close_now(tw_transport *t) {
  fake_side *s = fs_of(t);
  s->closing = 1;
  bytes_clear(&s->out);
  return 0;
}

static int fs_lose_write(tw_transport *t) {
  fs_of(t)->write_shut = 1;
  return 0;
}

static int fs_get_peer(tw_transport *t, tw_address *out) {
  *out = fs_of(t)->peer;
  return 0;
}

static int fs_get_host(tw_transport *t, tw_address *out) {
  *out = fs_of(t)->host;
  return 0;
}

static int fs_set_option(tw_transport *t, int opt, int enabled) {
  if (opt == 0)
    fs_of(t)->nodelay = (unsigned)enabled;
  else
    fs_of(t)->keepalive = (unsigned)enabled;
  return 0;
}

static int fs_get_option(tw_transport *t, int opt) {
  return opt == 0 ? fs_of(t)->nodelay : fs_of(t)->keepalive;
}

static int fs_pause(tw_transport *t) {
  if (!t->disconnecting) fs_of(t)->reading_paused = 1;
  return 0;
}

static int fs_resume(tw_transport *t) {
  if (!t->disconnecting) fs_of(t)->reading_paused = 0;
  return 0;
}

static size_t fs_buffered(tw_transport *t) { return fs_of(t)->out.len; }

static const tw__transport_ops fake_ops = {
    .on_loop_thread = fs_on_thread,
    .writev = fs_writev,
    .lose = fs_lose,
    .abort = fs_abort,
    .close_now = fs_close_now,
    .lose_write = fs_lose_write,
    .get_peer = fs_get_peer,
    .get_host = fs_get_host,
    .set_tcp_option = fs_set_option,
    .get_tcp_option = fs_get_option,
    .pause_reading = fs_pause,
    .resume_reading = fs_resume,
    .buffered = fs_buffered,
};

static void pump_addresses(tw_address *server, tw_address *client) {
  address_ipv4(server, "10.0.0.1", 12345);
  address_ipv4(client, "192.168.1.1", 54321);
}

int tw_iopump_connect(tw_iopump **out, tw_protocol *server,
                      tw_protocol *client, int greet) {
  tw_iopump *pump;
  int i;
  if (out == NULL || server == NULL || client == NULL || server == client ||
      server->ops == NULL || client->ops == NULL ||
      server->transport != NULL || client->transport != NULL)
    return TW_EINVAL;
  pump = tw__calloc(1, sizeof *pump);
  if (pump == NULL) return TW_ENOMEM;
  pump->owner = pthread_self();
  for (i = 0; i < 2; i++) {
    tw__transport_init(&pump->side[i].t, &fake_ops);
    pump->side[i].pump = pump;
  }
  pump_addresses(&pump->side[0].host, &pump->side[1].host);
  pump->side[0].peer = pump->side[1].host;
  pump->side[1].peer = pump->side[0].host;
  *out = pump;
  tw__transport_make_connection(&pump->side[0].t, server);
  tw__transport_make_connection(&pump->side[1].t, client);
  if (greet && tw_iopump_flush(pump) == TW_EBUSY) return TW_EBUSY;
  return 0;
}

int tw_iopump_connected_server_and_client(tw_iopump **out,
                                          tw_factory *server_f,
                                          tw_factory *client_f, int greet) {
  tw_address saddr, caddr;
  tw_protocol *c, *s;
  int rc;
  if (out == NULL || server_f == NULL || client_f == NULL) return TW_EINVAL;
  pump_addresses(&saddr, &caddr);
  /* As connectedServerAndClient: the client first. */
  c = tw_factory_build_protocol(client_f, &saddr);
  if (c == NULL) return TW_ECANCELLED;
  s = tw_factory_build_protocol(server_f, &caddr);
  if (s == NULL) {
    if (c->dealloc != NULL) c->dealloc(c);
    return TW_ECANCELLED;
  }
  rc = tw_iopump_connect(out, s, c, greet);
  if (rc == TW_EINVAL || rc == TW_ENOMEM) {
    /* Nothing was called on them: give them back (once, should a factory
     * have returned one protocol for both). */
    if (c->dealloc != NULL) c->dealloc(c);
    if (s != c && s->dealloc != NULL) s->dealloc(s);
  }
  return rc;
}

tw_protocol *tw_iopump_server(tw_iopump *pump) {
  return pump != NULL ? pump->side[0].t.protocol : NULL;
}

tw_protocol *tw_iopump_client(tw_iopump *pump) {
  return pump != NULL ? pump->side[1].t.protocol : NULL;
}

tw_transport *tw_iopump_server_transport(tw_iopump *pump) {
  return pump != NULL ? &pump->side[0].t : NULL;
}

tw_transport *tw_iopump_client_transport(tw_iopump *pump) {
  return pump != NULL ? &pump->side[1].t : NULL;
}

const char *tw_iopump_pending(tw_iopump *pump, int side, size_t *len) {
  if (pump == NULL || (side != 0 && side != 1)) return bytes_value(NULL, len);
  return bytes_value(&pump->side[side].out, len);
}

/* iosim's reportDisconnect: this side's connection_lost. */
static void report_disconnect(fake_side *s) {
  tw_failure *f = s->reason;
  s->reason = NULL;
  if (f == NULL) f = tw_failure_new(&TW_CONNECTION_DONE, 0, "Connection done");
  tw__transport_lost(&s->t, f);
  tw_failure_unref(f);
}

/* Close one side, as IOPump.pump: s is disconnected, its peer is told. */
static void close_side(fake_side *s) {
  fake_side *peer = fs_peer(s);
  s->closed = 1;
  peer->closing = 1;
  report_disconnect(peer);
}

int tw_iopump_pump(tw_iopump *pump) {
  bytes taken[2] = {{NULL, 0, 0}, {NULL, 0, 0}};
  int i, moved = 0;
  if (pump == NULL) return TW_EINVAL;
  if (!pthread_equal(pump->owner, pthread_self())) return TW_EWRONGTHREAD;
  /* getOutBuffer on both: a paused reader leaves the bytes where they are
   * (its peer's buffer grows, and the peer's producer pauses). */
  for (i = 0; i < 2; i++) {
    fake_side *s = &pump->side[i], *r = fs_peer(s);
    if (s->out.len == 0 || (r->reading_paused && !r->t.lost)) continue;
    taken[i] = s->out;
    memset(&s->out, 0, sizeof s->out);
  }
  /* _checkProducer: the emptied buffers let producers go on. */
  for (i = 0; i < 2; i++)
    if (taken[i].len != 0) tw__transport_buffer_changed(&pump->side[i].t);
  /* The client's bytes to the server, then the server's to the client. */
  for (i = 1; i >= 0; i--) {
    if (taken[i].len != 0) {
      moved = 1;
      tw__transport_data(&fs_peer(&pump->side[i])->t, taken[i].data,
                         taken[i].len);
    }
  }
  tw__free(taken[0].data);
  tw__free(taken[1].data);
  if (moved) return 1;
  /* A write side shut once its bytes are gone: the peer reads EOF. */
  for (i = 0; i < 2; i++) {
    fake_side *s = &pump->side[i];
    if (s->write_shut && s->out.len == 0 && !s->t.lost && !s->closing) {
      fake_side *peer = fs_peer(s);
      s->write_shut = 0;
      tw__transport_write_closed(&s->t);
      tw__transport_eof(&peer->t);
      return 1;
    }
  }
  for (i = 0; i < 2; i++) {
    fake_side *s = &pump->side[i];
    if (s->closing && !s->closed && s->out.len == 0) {
      close_side(s);
      return 1;
    }
  }
  return 0;
}

int tw_iopump_flush(tw_iopump *pump) {
  int i, rc, result = 0;
  for (i = 0; i < TW_IOPUMP_MAX_ROUNDS; i++) {
    rc = tw_iopump_pump(pump);
    if (rc < 0) return rc;
    if (rc == 0) return result;
    result = 1;
  }
  return TW_EBUSY;
}

void tw_iopump_free(tw_iopump *pump) {
  int i;
  if (pump == NULL) return;
  for (i = 0; i < 2; i++) {
    fake_side *s = &pump->side[i];
    if (s->t.protocol != NULL && !s->t.lost) tw__transport_lost(&s->t, NULL);
  }
  for (i = 0; i < 2; i++) {
    tw__transport_dispose(&pump->side[i].t);
    tw_failure_unref(pump->side[i].reason);
    tw__free(pump->side[i].out.data);
  }
  tw__free(pump);
}
