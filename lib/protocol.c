/*
 * lib/protocol.c - protocol.h: twisted.internet.error's types, addresses,
 * protocols and factories, and the tw_transport_* calls every transport
 * kind shares (argument and thread checks, the disconnect state, Twisted
 * FileDescriptor's producer rules, connection_lost delivery), dispatching
 * to the kind's ops (transport-internal.h).
 */
#include "internal.h"
#include "transport-internal.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* ---- twisted.internet.error (bases as in Twisted 22.4's error.py) -------- */

const tw_error_type TW_BIND_ERROR = {"BindError", &TW_ERROR};
const tw_error_type TW_CANNOT_LISTEN_ERROR = {"CannotListenError",
                                              &TW_BIND_ERROR};
const tw_error_type TW_CONNECT_ERROR = {"ConnectError", &TW_ERROR};
const tw_error_type TW_CONNECT_BIND_ERROR = {"ConnectBindError",
                                             &TW_CONNECT_ERROR};
const tw_error_type TW_UNKNOWN_HOST_ERROR = {"UnknownHostError",
                                             &TW_CONNECT_ERROR};
const tw_error_type TW_NO_ROUTE_ERROR = {"NoRouteError", &TW_CONNECT_ERROR};
const tw_error_type TW_NET_CONNECTION_REFUSED_ERROR = {
    "ConnectionRefusedError", &TW_CONNECT_ERROR};
const tw_error_type TW_TCP_TIMED_OUT_ERROR = {"TCPTimedOutError",
                                              &TW_CONNECT_ERROR};
const tw_error_type TW_USER_ERROR = {"UserError", &TW_CONNECT_ERROR};
const tw_error_type TW_NET_TIMEOUT_ERROR = {"TimeoutError", &TW_USER_ERROR};
const tw_error_type TW_CONNECTION_CLOSED = {"ConnectionClosed", &TW_ERROR};
const tw_error_type TW_CONNECTION_LOST = {"ConnectionLost",
                                          &TW_CONNECTION_CLOSED};
const tw_error_type TW_CONNECTION_ABORTED = {"ConnectionAborted",
                                             &TW_CONNECTION_LOST};
const tw_error_type TW_CONNECTION_DONE = {"ConnectionDone",
                                          &TW_CONNECTION_CLOSED};
const tw_error_type TW_NOT_CONNECTING_ERROR = {"NotConnectingError",
                                               &TW_RUNTIME_ERROR};
const tw_error_type TW_NOT_LISTENING_ERROR = {"NotListeningError",
                                              &TW_RUNTIME_ERROR};

/* Twisted's messages (str() of each with no arguments). */
tw_failure *tw__connection_done(void) {
  return tw_failure_new(&TW_CONNECTION_DONE, 0,
                        "Connection was closed cleanly.");
}

tw_failure *tw__connection_lost(int code) {
  if (code == 0)
    return tw_failure_new(
        &TW_CONNECTION_LOST, 0,
        "Connection to the other side was lost in a non-clean fashion.");
  return tw_failure_new(
      &TW_CONNECTION_LOST, code,
      "Connection to the other side was lost in a non-clean fashion: %s.",
      tw_strerror(code));
}

tw_failure *tw__connection_aborted(void) {
  return tw_failure_new(
      &TW_CONNECTION_ABORTED, 0,
      "Connection was aborted locally using ITCPTransport.abortConnection.");
}

/* ---- addresses ------------------------------------------------------------ */

/* Appends to buf as snprintf would, keeping the needed length in *n. */
static void addr_put(char *buf, size_t size, size_t *n, const char *s,
                     size_t len) {
  if (*n < size) {
    size_t room = size - 1 - *n;
    memcpy(buf + *n, s, len < room ? len : room);
  }
  *n += len;
}

/*
 * Python's repr of a str: single quotes unless the text holds a single
 * quote and no double one; backslash, the quote, \t \n \r and other
 * control bytes escaped. Bytes >= 0x80 are copied (a UTF-8 path prints as
 * Python prints the decoded name).
 */
static void addr_put_pyrepr(char *buf, size_t size, size_t *n,
                            const char *s) {
  char q = (strchr(s, '\'') != NULL && strchr(s, '"') == NULL) ? '"' : '\'';
  const unsigned char *c;
  addr_put(buf, size, n, &q, 1);
  for (c = (const unsigned char *)s; *c != '\0'; c++) {
    char esc[5];
    if (*c == '\\' || *c == (unsigned char)q) {
      esc[0] = '\\';
      esc[1] = (char)*c;
      addr_put(buf, size, n, esc, 2);
    } else if (*c == '\t' || *c == '\n' || *c == '\r') {
      esc[0] = '\\';
      esc[1] = *c == '\t' ? 't' : *c == '\n' ? 'n' : 'r';
      addr_put(buf, size, n, esc, 2);
    } else if (*c < 0x20 || *c == 0x7f) {
      snprintf(esc, sizeof esc, "\\x%02x", *c);
      addr_put(buf, size, n, esc, 4);
    } else {
      addr_put(buf, size, n, (const char *)c, 1);
    }
  }
  addr_put(buf, size, n, &q, 1);
}

static int addr_has_nul(const char *s, size_t max) {
  return memchr(s, '\0', max) != NULL;
}

int tw_address_format(const tw_address *a, char *buf, size_t size) {
  size_t n = 0;
  char tmp[96];
  int k;
  if (a == NULL || (buf == NULL && size > 0)) return TW_EINVAL;
  switch (a->family) {
    case TW_ADDRESS_IPV4:
    case TW_ADDRESS_IPV6:
      if ((a->type != TW_ADDRESS_TCP && a->type != TW_ADDRESS_UDP) ||
          !addr_has_nul(a->host, sizeof a->host))
        return TW_EINVAL;
      k = snprintf(tmp, sizeof tmp, "%s(type='%s', host=",
                   a->family == TW_ADDRESS_IPV4 ? "IPv4Address"
                                                : "IPv6Address",
                   a->type == TW_ADDRESS_TCP ? "TCP" : "UDP");
      addr_put(buf, size, &n, tmp, (size_t)k);
      addr_put_pyrepr(buf, size, &n, a->host);
      if (a->family == TW_ADDRESS_IPV4)
        k = snprintf(tmp, sizeof tmp, ", port=%d)", a->port);
      else
        k = snprintf(tmp, sizeof tmp, ", port=%d, flowInfo=%u, scopeID=%u)",
                     a->port, a->flow_info, a->scope_id);
      addr_put(buf, size, &n, tmp, (size_t)k);
      break;
    case TW_ADDRESS_UNIX:
      if (!addr_has_nul(a->name, sizeof a->name)) return TW_EINVAL;
      addr_put(buf, size, &n, "UNIXAddress(", 12);
      if (a->name[0] == '\0')
        addr_put(buf, size, &n, "None", 4);
      else
        addr_put_pyrepr(buf, size, &n, a->name);
      addr_put(buf, size, &n, ")", 1);
      break;
    default:
      return TW_EINVAL;
  }
  if (size > 0) buf[n < size ? n : size - 1] = '\0';
  if (n > (size_t)0x7fffffff) return TW_EINVAL; /* cannot happen: bounded */
  return (int)n;
}

int tw_address_equal(const tw_address *a, const tw_address *b) {
  if (a == NULL || b == NULL || a->family != b->family) return 0;
  switch (a->family) {
    case TW_ADDRESS_IPV4:
    case TW_ADDRESS_IPV6:
      /* attrs' __eq__: every field. */
      if (a->type != b->type || a->port != b->port ||
          strncmp(a->host, b->host, sizeof a->host) != 0)
        return 0;
      return a->family == TW_ADDRESS_IPV4 ||
             (a->flow_info == b->flow_info && a->scope_id == b->scope_id);
    case TW_ADDRESS_UNIX: {
      /* UNIXAddress.__eq__: equal names, or two names of the same file
       * (os.path.samefile). Two unnamed addresses (None) are equal. */
      struct stat sa, sb;
      if (strncmp(a->name, b->name, sizeof a->name) == 0) return 1;
      if (a->name[0] == '\0' || b->name[0] == '\0' ||
          !addr_has_nul(a->name, sizeof a->name) ||
          !addr_has_nul(b->name, sizeof b->name))
        return 0;
      if (stat(a->name, &sa) != 0 || stat(b->name, &sb) != 0) return 0;
      return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    }
    default:
      return 0;
  }
}

/* ---- protocols and factories ---------------------------------------------- */

int tw_protocol_init(tw_protocol *p, const tw_protocol_ops *ops) {
  if (p == NULL || ops == NULL) return TW_EINVAL;
  memset(p, 0, sizeof *p);
  p->ops = ops;
  return 0;
}

int tw_factory_init(tw_factory *f, const tw_factory_ops *ops) {
  if (f == NULL || ops == NULL) return TW_EINVAL;
  memset(f, 0, sizeof *f);
  f->ops = ops;
  return 0;
}

int tw_factory_for_protocol(tw_factory *f,
                            const tw_protocol_ops *protocol_ops,
                            size_t protocol_size, const tw_factory_ops *ops) {
  if (f == NULL || protocol_ops == NULL ||
      protocol_size < sizeof(tw_protocol))
    return TW_EINVAL;
  memset(f, 0, sizeof *f);
  f->ops = ops;
  f->protocol_ops = protocol_ops;
  f->protocol_size = protocol_size;
  return 0;
}

int tw_factory_do_start(tw_factory *f) {
  if (f == NULL || f->num_ports == 0x7fffffff) return TW_EINVAL;
  if (f->num_ports == 0 && f->ops != NULL && f->ops->start_factory != NULL) {
    f->num_ports++; /* counted before the call, as a re-entrant start sees */
    f->ops->start_factory(f);
    return 0;
  }
  f->num_ports++;
  return 0;
}

int tw_factory_do_stop(tw_factory *f) {
  if (f == NULL || f->num_ports <= 0) return TW_EINVAL;
  f->num_ports--;
  if (f->num_ports == 0 && f->ops != NULL && f->ops->stop_factory != NULL)
    f->ops->stop_factory(f);
  return 0;
}

static void factory_protocol_free(tw_protocol *p) { tw__free(p); }

tw_protocol *tw_factory_build_protocol(tw_factory *f, const tw_address *addr) {
  tw_protocol *p;
  if (f == NULL) return NULL;
  if (f->protocol_ops != NULL) {
    if (f->protocol_size < sizeof(tw_protocol)) return NULL;
    p = tw__calloc(1, f->protocol_size);
    if (p == NULL) return NULL; /* refused: the transport closes */
    p->ops = f->protocol_ops;
    p->dealloc = factory_protocol_free;
  } else {
    if (f->ops == NULL || f->ops->build_protocol == NULL) return NULL;
    p = f->ops->build_protocol(f, addr);
    if (p == NULL) return NULL;
  }
  p->factory = f;
  return p;
}

/* ---- watching a protocol's end (transport-internal.h) ---------------------- */

/* watch_ fills the padding after connected (LP64): protocols stay 48
 * bytes. */
_Static_assert(sizeof(void *) != 8 || sizeof(int) != 4 ||
                   sizeof(tw_protocol) == 6 * sizeof(void *),
               "tw_protocol's watch_ fits the padding after connected");

/* One watch; free entries have fn NULL and chain through next. */
typedef struct watch_entry {
  tw__end_fn fn;
  void *arg;
  unsigned next; /* the protocol's next watch, or the next free entry */
} watch_entry;

/* The thread's table: entries 1..cap (index 0 means none), allocated on
 * the first watch and freed with the last (so that a thread that stops
 * watching keeps nothing). */
static TW__TLS watch_entry *watch_tab;
static TW__TLS unsigned watch_cap, watch_used, watch_free;

int tw__protocol_watch(tw_protocol *p, tw__end_fn fn, void *arg,
                       unsigned *id) {
  unsigned i;
  if (watch_free == 0) {
    unsigned cap = watch_cap != 0 ? watch_cap * 2 : 16, k;
    watch_entry *t;
    if (cap > 0x3fffffffu) return TW_ENOMEM;
    t = tw__realloc(watch_tab, (size_t)(cap + 1) * sizeof *t);
    if (t == NULL) return TW_ENOMEM;
    for (k = watch_cap + 1; k <= cap; k++) {
      t[k].fn = NULL;
      t[k].arg = NULL;
      t[k].next = k < cap ? k + 1 : 0;
    }
    watch_free = watch_cap + 1;
    watch_tab = t;
    watch_cap = cap;
  }
  i = watch_free;
  watch_free = watch_tab[i].next;
  watch_tab[i].fn = fn;
  watch_tab[i].arg = arg;
  watch_tab[i].next = p->watch_;
  p->watch_ = i;
  watch_used++;
  *id = i;
  return 0;
}

static void watch_release(unsigned i) {
  watch_tab[i].fn = NULL;
  watch_tab[i].arg = NULL;
  watch_tab[i].next = watch_free;
  watch_free = i;
  if (--watch_used == 0) {
    tw__free(watch_tab);
    watch_tab = NULL;
    watch_cap = watch_free = 0;
  }
}

void tw__protocol_unwatch(tw_protocol *p, unsigned id) {
  unsigned *link = &p->watch_;
  while (*link != 0 && *link <= watch_cap) {
    if (*link == id) {
      *link = watch_tab[id].next;
      watch_release(id);
      return;
    }
    link = &watch_tab[*link].next;
  }
}

/* After connection_lost: every watch runs once, newest first. A watch
 * added meanwhile (by a watch's fn) runs too. */
static void protocol_ended(tw_protocol *p) {
  while (p->watch_ != 0 && p->watch_ <= watch_cap) {
    unsigned i = p->watch_;
    tw__end_fn fn = watch_tab[i].fn;
    void *arg = watch_tab[i].arg;
    p->watch_ = watch_tab[i].next;
    watch_release(i);
    if (fn != NULL) fn(arg);
  }
  p->watch_ = 0;
}

/* ---- the shared transport state -------------------------------------------- */

/* The common part every kind embeds first: 48 bytes on x86-64, so that a
 * kind's own hot fields (its handle pointer, buffer counts) share the
 * first cache line with it. */
_Static_assert(sizeof(tw_transport) <= 6 * sizeof(void *),
               "tw_transport's shared part fits six words");

void tw__transport_init(tw_transport *t, const tw__transport_ops *ops) {
  memset(t, 0, sizeof *t);
  t->ops = ops;
}

void tw__transport_dispose(tw_transport *t) {
  if (t == NULL) return;
  tw_failure_unref(t->reason);
  tw_failure_unref(t->pending_lost);
  t->reason = t->pending_lost = NULL;
}

static void deliver_lost(tw_transport *t, tw_failure *reason);

/* Every callback into user code, and every op, runs between enter and
 * leave: a loss reported meanwhile waits for the outermost leave. */
static void enter(tw_transport *t) { t->depth++; }

static void leave(tw_transport *t) {
  tw_failure *f;
  if (--t->depth > 0 || t->pending_lost == NULL) return;
  f = t->pending_lost;
  t->pending_lost = NULL;
  deliver_lost(t, f);
  tw_failure_unref(f);
}

/* A protocol callback: in_call is set for its duration (saved and restored,
 * so nested callbacks keep the outer state). */
#define PROTOCOL_CALL(t, call)        \
  do {                                \
    unsigned saved_ = (t)->in_call;   \
    enter(t);                         \
    (t)->in_call = 1;                 \
    call;                             \
    (t)->in_call = saved_;            \
    leave(t);                         \
  } while (0)

/*
 * Close at once with a reason of ours or the user's (owned; the first
 * reason wins): a failure data_received or a producer returned, an EOF on
 * a protocol that is not half-closeable. Twisted runs connectionLost(
 * reason) at once (posixbase _disconnectSelectable) and closes the socket
 * orderly (tcp.py _closeSocket(orderly=True): only ConnectionAborted sets
 * SO_LINGER for a RST): the unsent bytes are dropped, but the peer reads
 * EOF. The kind's close_now does that; a kind without it aborts.
 */
static void close_with(tw_transport *t, tw_failure *reason) {
  int (*op)(tw_transport *);
  if (t->lost) {
    tw_failure_unref(reason);
    return;
  }
  if (t->reason == NULL)
    t->reason = reason;
  else
    tw_failure_unref(reason);
  op = t->ops->close_now != NULL ? t->ops->close_now : t->ops->abort;
  if (!t->aborting && op != NULL) {
    t->aborting = 1;
    t->disconnecting = 1;
    t->lose_waits_producer = 0;
    enter(t);
    op(t);
    leave(t);
  }
}

/* A failure the user's code returned (data_received, a producer): logged
 * first where the kind says so (tw__transport_ops.log_user_failures), then
 * the connection closes with it. */
static void user_failure(tw_transport *t, tw_failure *f) {
  if (t->ops->log_user_failures) tw_log_failure(f, NULL);
  close_with(t, f);
}

/* One producer callback. A failure it returns closes the connection at
 * once with it as the reason (close_with). */
typedef enum { PROD_PAUSE, PROD_RESUME, PROD_STOP } prod_call;

static void producer_call(tw_transport *t, tw_producer *p, prod_call which) {
  tw_failure *(*fn)(tw_producer *) = NULL;
  tw_failure *f = NULL;
  if (p == NULL || p->ops == NULL) return;
  switch (which) {
    case PROD_PAUSE: fn = p->ops->pause_producing; break;
    case PROD_RESUME: fn = p->ops->resume_producing; break;
    case PROD_STOP: fn = p->ops->stop_producing; break;
  }
  if (fn == NULL) return;
  PROTOCOL_CALL(t, f = fn(p));
  if (f != NULL) user_failure(t, f);
}

static void deliver_lost(tw_transport *t, tw_failure *given) {
  tw_protocol *p = t->protocol;
  tw_producer *prod = t->producer;
  tw_failure *own = NULL, *reason;
  t->lost = 1;
  t->disconnecting = 1;
  t->lose_waits_producer = 0;
  /* FileDescriptor.connectionLost: the producer is stopped and forgotten
   * before the protocol hears (tcp.py Connection.connectionLost). */
  t->producer = NULL;
  t->producer_paused = 0;
  if (prod != NULL && prod->ops != NULL && prod->ops->stop_producing != NULL) {
    tw_failure *f;
    PROTOCOL_CALL(t, f = prod->ops->stop_producing(prod));
    tw_failure_unref(f); /* too late to change the reason */
  }
  reason = t->reason != NULL ? t->reason : given;
  if (reason == NULL) reason = own = tw__connection_done();
  if (p != NULL) {
    p->connected = 0;
    if (p->ops != NULL && p->ops->connection_lost != NULL)
      PROTOCOL_CALL(t, p->ops->connection_lost(p, reason));
    t->protocol = NULL;
    if (p->watch_ != 0) protocol_ended(p);
    /* Twisted keeps self.transport; here the kind may free t right after
     * (a stream does), so a protocol kept beyond connection_lost would
     * hold a dangling pointer: it gets NULL, on which every tw_transport_*
     * call is a harmless TW_EINVAL (protocol.h). */
    p->transport = NULL;
    if (p->dealloc != NULL) p->dealloc(p);
  }
  tw_failure_unref(own);
  tw_failure_unref(t->reason);
  t->reason = NULL;
}

void tw__transport_lost(tw_transport *t, tw_failure *reason) {
  if (t == NULL || t->lost || t->pending_lost != NULL) return;
  t->disconnecting = 1;
  if (t->depth > 0) {
    t->pending_lost = reason != NULL ? tw_failure_ref(reason)
                                     : tw__connection_done();
    return;
  }
  deliver_lost(t, reason);
}

void tw__transport_make_connection(tw_transport *t, tw_protocol *p) {
  if (t == NULL || t->lost || t->protocol != NULL) return;
  t->connected = 1;
  if (p == NULL) return; /* connected, the protocol comes later */
  t->protocol = p;
  p->transport = t;
  p->connected = 1;
  if (p->ops != NULL && p->ops->connection_made != NULL)
    PROTOCOL_CALL(t, p->ops->connection_made(p));
}

void tw__transport_data(tw_transport *t, const char *data, size_t len) {
  tw_protocol *p;
  tw_failure *f = NULL;
  if (t == NULL || t->disconnecting || t->lost || len == 0) return;
  p = t->protocol;
  if (p == NULL || p->ops == NULL || p->ops->data_received == NULL) return;
  PROTOCOL_CALL(t, f = p->ops->data_received(p, data, len));
  if (f != NULL) user_failure(t, f);
}

void tw__transport_eof(tw_transport *t) {
  tw_protocol *p;
  if (t == NULL || t->lost || t->read_closed) return;
  if (t->disconnecting && !t->aborting) {
    /* lose_connection came first: Twisted stopped reading there
     * (FileDescriptor.loseConnection's stopReading) and never sees this
     * EOF; the close waits for the buffer to drain (or a producer) and
     * ends with ConnectionDone. Closing now would drop what is still
     * buffered - e.g. the answer to a peer that half-closed after its
     * request. */
    t->read_closed = 1;
    return;
  }
  p = t->protocol;
  if (p != NULL && p->ops != NULL && p->ops->read_connection_lost != NULL &&
      !t->disconnecting) {
    t->read_closed = 1;
    PROTOCOL_CALL(t, p->ops->read_connection_lost(p));
    return;
  }
  /* Not half-closeable: a clean close now, reason ConnectionDone. */
  t->read_closed = 1;
  close_with(t, tw__connection_done());
}

void tw__transport_write_closed(tw_transport *t) {
  tw_protocol *p;
  if (t == NULL || t->lost || t->write_closed) return;
  t->write_closed = 1;
  p = t->protocol;
  if (p != NULL && p->ops != NULL && p->ops->write_connection_lost != NULL)
    PROTOCOL_CALL(t, p->ops->write_connection_lost(p));
}

static size_t buffered(tw_transport *t) {
  return t->ops->buffered != NULL ? t->ops->buffered(t) : 0;
}

/* _maybePauseProducer: after a write. Paused once, not on every write. */
static void maybe_pause_producer(tw_transport *t) {
  if (t->producer == NULL || !t->producer_streaming || t->producer_paused)
    return;
  if (buffered(t) > TW_TRANSPORT_BUFFER_SIZE) {
    t->producer_paused = 1;
    producer_call(t, t->producer, PROD_PAUSE);
  }
}

void tw__transport_buffer_changed(tw_transport *t) {
  if (t == NULL || t->lost || t->in_write) return;
  if (buffered(t) != 0) {
    maybe_pause_producer(t);
    return;
  }
  /* doWrite, the buffer empty: resume a pull producer, or a streaming one
   * we paused. Only after a write, so that a producer that wrote nothing
   * is not called again and again. */
  if (!t->drain_wanted) return;
  t->drain_wanted = 0;
  if (t->producer != NULL &&
      (!t->producer_streaming || t->producer_paused)) {
    t->producer_paused = 0;
    producer_call(t, t->producer, PROD_RESUME);
  }
}

/* ---- tw_transport_* ---------------------------------------------------------- */

static int check(tw_transport *t) {
  if (t == NULL || t->ops == NULL) return TW_EINVAL;
  if (t->ops->on_loop_thread != NULL && !t->ops->on_loop_thread(t))
    return TW_EWRONGTHREAD;
  return 0;
}

/* Writes are dropped when not connected, once the loss is known (also
 * one waiting to be delivered), after an abort (tcp.py's abortConnection
 * replaces doWrite) and once the write side is shut (write_connection_lost
 * delivered, or the kind already shutting it down: its writev says so).
 * Between lose_write_connection and the shutdown they are sent first, as
 * FileDescriptor.write checks _writeDisconnected only, which doWrite sets
 * once the buffer drained. A write after
 * lose_connection goes to the kind, which decides as Twisted's transport
 * of that kind does: FileDescriptor.write still sends it (the close waits
 * for the flush), iosim's FakeTransport drops it, StringTransport keeps
 * it. */
static int write_dropped(tw_transport *t) {
  return !t->connected || t->lost || t->aborting || t->write_closed ||
         t->pending_lost != NULL;
}

static int do_writev(tw_transport *t, const tw_iovec *bufs, size_t n) {
  int rc;
  if (t->ops->writev == NULL) return TW_ENOTSUP;
  t->in_write = 1;
  enter(t);
  rc = t->ops->writev(t, bufs, n);
  t->in_write = 0;
  if (rc == 0) {
    t->drain_wanted = 1;
    maybe_pause_producer(t);
  }
  leave(t);
  return rc;
}

int tw_transport_write(tw_transport *t, const void *data, size_t len) {
  tw_iovec v;
  int rc = check(t);
  if (rc != 0) return rc;
  if (data == NULL && len > 0) return TW_EINVAL;
  if (len == 0) return 0;
  if (write_dropped(t)) return TW_ENOTCONN;
  v.base = data;
  v.len = len;
  return do_writev(t, &v, 1);
}

/* Pieces on the stack before writev is given a compacted copy. */
#define SEQ_STACK 16

int tw_transport_write_sequence(tw_transport *t, const tw_iovec *bufs,
                                size_t n) {
  tw_iovec stack[SEQ_STACK], *v = stack;
  size_t i, k = 0;
  int rc = check(t);
  if (rc != 0) return rc;
  if (bufs == NULL && n > 0) return TW_EINVAL;
  for (i = 0; i < n; i++)
    if (bufs[i].base == NULL && bufs[i].len > 0) return TW_EINVAL;
  for (i = 0; i < n; i++) k += bufs[i].len != 0;
  if (k == 0) return 0;
  if (write_dropped(t)) return TW_ENOTCONN;
  if (k == n) return do_writev(t, bufs, n);
  /* Empty pieces are left out (the kind is promised non-empty ones). */
  if (k > SEQ_STACK) {
    v = tw__malloc(k * sizeof *v);
    if (v == NULL) return TW_ENOMEM;
  }
  for (i = 0, k = 0; i < n; i++)
    if (bufs[i].len != 0) v[k++] = bufs[i];
  rc = do_writev(t, v, k);
  if (v != stack) tw__free(v);
  return rc;
}

/* ops->lose, once. */
static int send_lose(tw_transport *t) {
  int rc;
  if (t->lose_sent) return 0;
  t->lose_sent = 1;
  enter(t);
  rc = t->ops->lose(t);
  leave(t);
  return rc;
}

int tw_transport_lose_connection(tw_transport *t) {
  int rc = check(t);
  if (rc != 0) return rc;
  if (t->ops->lose == NULL) return TW_ENOTSUP;
  /* loseConnection: only when connected and not already disconnecting. */
  if (!t->connected || t->disconnecting || t->lost) return 0;
  t->disconnecting = 1;
  if (t->producer != NULL) {
    /* As Twisted documents it: the close waits for unregisterProducer. */
    t->lose_waits_producer = 1;
    return 0;
  }
  return send_lose(t);
}

int tw_transport_abort_connection(tw_transport *t) {
  int rc = check(t);
  if (rc != 0) return rc;
  if (t->ops->abort == NULL) return TW_ENOTSUP;
  if (t->aborting || t->lost || t->pending_lost != NULL) return 0;
  t->aborting = 1;
  t->disconnecting = 1;
  t->lose_waits_producer = 0;
  enter(t);
  rc = t->ops->abort(t);
  leave(t);
  return rc;
}

int tw_transport_lose_write_connection(tw_transport *t) {
  int rc = check(t);
  if (rc != 0) return rc;
  if (t->ops->lose_write == NULL) return TW_ENOTSUP;
  if (!t->connected || t->disconnecting || t->lost || t->write_closing)
    return 0;
  t->write_closing = 1;
  enter(t);
  rc = t->ops->lose_write(t);
  leave(t);
  return rc;
}

static int get_addr(tw_transport *t, tw_address *out,
                    int (*op)(tw_transport *, tw_address *)) {
  int rc = check(t);
  if (rc != 0) return rc;
  if (out == NULL) return TW_EINVAL;
  if (op == NULL) return TW_ENOTSUP;
  return op(t, out);
}

int tw_transport_get_peer(tw_transport *t, tw_address *out) {
  return get_addr(t, out, t != NULL && t->ops != NULL ? t->ops->get_peer
                                                      : NULL);
}

int tw_transport_get_host(tw_transport *t, tw_address *out) {
  return get_addr(t, out, t != NULL && t->ops != NULL ? t->ops->get_host
                                                      : NULL);
}

static int set_option(tw_transport *t, int opt, int enabled) {
  int rc = check(t);
  if (rc != 0) return rc;
  if (enabled != 0 && enabled != 1) return TW_EINVAL;
  if (t->ops->set_tcp_option == NULL) return TW_ENOTSUP;
  return t->ops->set_tcp_option(t, opt, enabled);
}

static int get_option(tw_transport *t, int opt) {
  if (check(t) != 0 || t->ops->get_tcp_option == NULL) return 0;
  return t->ops->get_tcp_option(t, opt) == 1;
}

int tw_transport_set_tcp_nodelay(tw_transport *t, int enabled) {
  return set_option(t, 0, enabled);
}
int tw_transport_set_tcp_keepalive(tw_transport *t, int enabled) {
  return set_option(t, 1, enabled);
}
int tw_transport_get_tcp_nodelay(tw_transport *t) { return get_option(t, 0); }
int tw_transport_get_tcp_keepalive(tw_transport *t) {
  return get_option(t, 1);
}

static int reading_op(tw_transport *t, int (*op)(tw_transport *)) {
  int rc = check(t);
  if (rc != 0) return rc;
  if (op == NULL) return TW_ENOTSUP;
  if (t->lost) return 0; /* a dead transport: harmless */
  enter(t);
  rc = op(t);
  leave(t);
  return rc;
}

int tw_transport_pause_producing(tw_transport *t) {
  return reading_op(t, t != NULL && t->ops != NULL ? t->ops->pause_reading
                                                   : NULL);
}

int tw_transport_resume_producing(tw_transport *t) {
  return reading_op(t, t != NULL && t->ops != NULL ? t->ops->resume_reading
                                                   : NULL);
}

/* FileDescriptor.stopProducing is loseConnection (unless the kind says
 * otherwise: the string transport only records it, as Twisted's). */
int tw_transport_stop_producing(tw_transport *t) {
  int rc = check(t);
  if (rc != 0) return rc;
  if (t->ops->stop_producing == NULL) return tw_transport_lose_connection(t);
  if (t->lost) return 0;
  enter(t);
  rc = t->ops->stop_producing(t);
  leave(t);
  return rc;
}

int tw_transport_register_producer(tw_transport *t, tw_producer *p,
                                   int streaming) {
  int rc = check(t);
  if (rc != 0) return rc;
  if (p == NULL || p->ops == NULL || (streaming != 0 && streaming != 1))
    return TW_EINVAL;
  if (t->producer != NULL) return TW_EBUSY;
  if (t->lost) {
    /* registerProducer on a disconnected transport. */
    producer_call(t, p, PROD_STOP);
    return 0;
  }
  t->producer = p;
  t->producer_streaming = (unsigned)streaming;
  t->producer_paused = 0;
  if (!streaming) producer_call(t, p, PROD_RESUME);
  return 0;
}

int tw_transport_unregister_producer(tw_transport *t) {
  int rc = check(t);
  if (rc != 0) return rc;
  t->producer = NULL;
  t->producer_paused = 0;
  if (t->lose_waits_producer && !t->lost && !t->aborting) {
    t->lose_waits_producer = 0;
    return send_lose(t);
  }
  return 0;
}

int tw_transport_disconnecting(tw_transport *t) {
  if (check(t) != 0) return 0;
  return t->disconnecting || t->lost;
}

int tw_transport_connected(tw_transport *t) {
  if (check(t) != 0) return 0;
  return t->connected && !t->lost;
}

size_t tw_transport_buffered(tw_transport *t) {
  if (check(t) != 0) return 0;
  return buffered(t);
}

/* basic.c (issue 15): a receiver's callback returned a failure outside
 * data_received (from a resume the user called): close as if
 * data_received had returned it - logged the same way (user_failure). */
void tw__transport_fail(tw_transport *t, tw_failure *f) {
  if (t == NULL || check(t) != 0) {
    tw_failure_unref(f);
    return;
  }
  user_failure(t, f);
}
