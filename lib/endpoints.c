/*
 * lib/endpoints.c - the endpoints of endpoints.h: TCP4/TCP6/UNIX servers
 * and clients, a library's own kinds, listen, and connect with Twisted's
 * _WrappingFactory / _WrappingProtocol (connectProtocol included). The
 * description strings are endpoints-parse.c's.
 */
#include <twuv/endpoints.h>
#include <twuv/error.h>
#include <twuv/resolve.h>

#include "endpoints-internal.h"
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

const tw_error_type TW_CONNECTING_CANCELLED_ERROR = {
    "ConnectingCancelledError", &TW_ERROR};
const tw_error_type TW_NO_PROTOCOL = {"NoProtocol", &TW_ERROR};

struct tw_endpoint {
  int kind; /* tw_endpoint_kind */
  tw_reactor *r;
  const tw_endpoint_ops *ops; /* TW_ENDPOINT_CUSTOM */
  void *data;                 /* TW_ENDPOINT_CUSTOM */
  int port;
  int backlog;
  int mode;
  int lock_pid;
  int has_bind;
  double timeout;
  tw_address bind;
  char *host; /* both in the same block, after the struct */
  char *path;
};

/* An endpoint is a value made once per configuration, not per connection:
 * the budget only keeps it from growing by accident (tw_address is 184). */
_Static_assert(sizeof(struct tw_endpoint) <= 320,
               "struct tw_endpoint grew past its budget");

/* ---- making endpoints ---------------------------------------------------------- */

int tw__endpoint_numeric(const char *host, tw_address *out) {
  unsigned char buf[16];
  size_t n;
  if (host == NULL) return TW_EINVAL;
  n = strlen(host);
  if (n == 0 || n >= TW_ADDRESS_HOST_MAX) return TW_EINVAL;
  memset(out, 0, sizeof *out);
  if (uv_inet_pton(AF_INET, host, buf) == 0)
    out->family = TW_ADDRESS_IPV4;
  else if (uv_inet_pton(AF_INET6, host, buf) == 0)
    out->family = TW_ADDRESS_IPV6;
  else
    return TW_EINVAL;
  out->type = TW_ADDRESS_TCP;
  memcpy(out->host, host, n + 1);
  return 0;
}

void tw__endpoint_set_lock_pid(tw_endpoint *ep, int on) {
  if (ep != NULL) ep->lock_pid = on != 0;
}

/* One block: the struct, then host and path (NULL strings take no room). */
static int tw__endpoint_alloc(tw_endpoint **out, tw_reactor *r, int kind,
                              const char *host, const char *path) {
  size_t hn = host != NULL ? strlen(host) + 1 : 0;
  size_t pn = path != NULL ? strlen(path) + 1 : 0;
  tw_endpoint *ep = tw__calloc(1, sizeof *ep + hn + pn);
  char *s;
  if (ep == NULL) return TW_ENOMEM;
  ep->kind = kind;
  ep->r = r;
  s = (char *)(ep + 1);
  if (host != NULL) {
    ep->host = s;
    memcpy(s, host, hn);
    s += hn;
  }
  if (path != NULL) {
    ep->path = s;
    memcpy(s, path, pn);
  }
  *out = ep;
  return 0;
}

static int tw__server_tcp_new(tw_endpoint **out, tw_reactor *r, int kind,
                              int port, int backlog, const char *interface) {
  tw_address a;
  int rc;
  if (out == NULL || r == NULL || port < 0 || port > 65535) return TW_EINVAL;
  if (interface == NULL) interface = kind == TW_ENDPOINT_TCP6_SERVER ? "::" : "";
  if (interface[0] != '\0' && tw__endpoint_numeric(interface, &a) != 0)
    return TW_EINVAL;
  rc = tw__endpoint_alloc(out, r, kind, interface, NULL);
  if (rc != 0) return rc;
  (*out)->port = port;
  (*out)->backlog = backlog > 0 ? backlog : TW_LISTEN_BACKLOG;
  return 0;
}

int tw_tcp4_server_endpoint_new(tw_endpoint **out, tw_reactor *r, int port,
                                int backlog, const char *interface) {
  return tw__server_tcp_new(out, r, TW_ENDPOINT_TCP4_SERVER, port, backlog,
                            interface);
}

int tw_tcp6_server_endpoint_new(tw_endpoint **out, tw_reactor *r, int port,
                                int backlog, const char *interface) {
  return tw__server_tcp_new(out, r, TW_ENDPOINT_TCP6_SERVER, port, backlog,
                            interface);
}

static int tw__path_ok(const char *path) {
  size_t n;
  if (path == NULL) return 0;
  n = strlen(path);
  return n > 0 && n < TW_ADDRESS_PATH_MAX;
}

int tw_unix_server_endpoint_new(tw_endpoint **out, tw_reactor *r,
                                const char *path, int backlog, int mode) {
  int rc;
  if (out == NULL || r == NULL || !tw__path_ok(path) || mode < 0 ||
      mode > 07777)
    return TW_EINVAL;
  rc = tw__endpoint_alloc(out, r, TW_ENDPOINT_UNIX_SERVER, NULL, path);
  if (rc != 0) return rc;
  (*out)->backlog = backlog > 0 ? backlog : TW_LISTEN_BACKLOG;
  (*out)->mode = mode != 0 ? mode : 0666;
  return 0;
}

static int tw__client_tcp_new(tw_endpoint **out, tw_reactor *r, int kind,
                              const char *host, int port, double timeout,
                              const tw_address *bind) {
  int rc;
  tw_address b;
  if (out == NULL || r == NULL || host == NULL || host[0] == '\0' ||
      port < 0 || port > 65535 || isnan(timeout))
    return TW_EINVAL;
  if (bind != NULL) {
    /* Checked as tw_connect_tcp will use it: a numeric host ("" is any). */
    if ((bind->family != TW_ADDRESS_IPV4 && bind->family != TW_ADDRESS_IPV6) ||
        bind->port < 0 || bind->port > 65535 ||
        memchr(bind->host, '\0', sizeof bind->host) == NULL)
      return TW_EINVAL;
    if (bind->host[0] != '\0' && tw__endpoint_numeric(bind->host, &b) != 0)
      return TW_EINVAL;
  }
  rc = tw__endpoint_alloc(out, r, kind, host, NULL);
  if (rc != 0) return rc;
  (*out)->port = port;
  (*out)->timeout = timeout > 0 ? timeout : TW_CONNECT_TIMEOUT;
  if (bind != NULL) {
    (*out)->has_bind = 1;
    (*out)->bind = *bind;
  }
  return 0;
}

int tw_tcp4_client_endpoint_new(tw_endpoint **out, tw_reactor *r,
                                const char *host, int port, double timeout,
                                const tw_address *bind_address) {
  return tw__client_tcp_new(out, r, TW_ENDPOINT_TCP4_CLIENT, host, port,
                            timeout, bind_address);
}

int tw_tcp6_client_endpoint_new(tw_endpoint **out, tw_reactor *r,
                                const char *host, int port, double timeout,
                                const tw_address *bind_address) {
  return tw__client_tcp_new(out, r, TW_ENDPOINT_TCP6_CLIENT, host, port,
                            timeout, bind_address);
}

int tw_unix_client_endpoint_new(tw_endpoint **out, tw_reactor *r,
                                const char *path, double timeout) {
  int rc;
  if (out == NULL || r == NULL || !tw__path_ok(path) || isnan(timeout))
    return TW_EINVAL;
  rc = tw__endpoint_alloc(out, r, TW_ENDPOINT_UNIX_CLIENT, NULL, path);
  if (rc != 0) return rc;
  (*out)->timeout = timeout > 0 ? timeout : TW_CONNECT_TIMEOUT;
  return 0;
}

int tw_endpoint_new(tw_endpoint **out, tw_reactor *r,
                    const tw_endpoint_ops *ops, void *data) {
  int rc;
  if (out == NULL || r == NULL || ops == NULL) return TW_EINVAL;
  rc = tw__endpoint_alloc(out, r, TW_ENDPOINT_CUSTOM, NULL, NULL);
  if (rc != 0) return rc;
  (*out)->ops = ops;
  (*out)->data = data;
  return 0;
}

void *tw_endpoint_data(const tw_endpoint *ep) {
  return ep != NULL && ep->kind == TW_ENDPOINT_CUSTOM ? ep->data : NULL;
}

tw_reactor *tw_endpoint_reactor(const tw_endpoint *ep) {
  return ep != NULL ? ep->r : NULL;
}

int tw_endpoint_get_info(const tw_endpoint *ep, tw_endpoint_info *out) {
  if (ep == NULL || out == NULL) return TW_EINVAL;
  memset(out, 0, sizeof *out);
  out->kind = ep->kind;
  out->host = ep->host;
  out->path = ep->path;
  out->port = ep->port;
  out->backlog = ep->backlog;
  out->mode = ep->mode;
  out->timeout = ep->timeout;
  out->has_bind_address = ep->has_bind;
  if (ep->has_bind) out->bind_address = ep->bind;
  out->lock_pid = ep->lock_pid;
  return 0;
}

void tw_endpoint_free(tw_endpoint *ep) {
  if (ep == NULL) return;
  if (ep->kind == TW_ENDPOINT_CUSTOM && ep->ops->destroy != NULL)
    ep->ops->destroy(ep->data);
  tw__free(ep);
}

/* ---- listen (IStreamServerEndpoint) ------------------------------------------------- */

/* What tw_listen_* refused, as Twisted's listen raises it: a socket error
 * is CannotListenError(interface, port, socketError), whose str() is
 * "Couldn't listen on any:8080: [Errno 98] Address already in use." (the
 * libuv message here). Our own codes keep their own types. */
static tw_failure *tw__listen_failure(const tw_endpoint *ep, int rc) {
  if (rc == TW_EINVAL || rc == TW_ENOMEM || rc == TW_ESHUTDOWN ||
      rc == TW_EWRONGTHREAD)
    return tw_failure_from_code(rc);
  if (ep->kind == TW_ENDPOINT_UNIX_SERVER)
    return tw_failure_new(&TW_CANNOT_LISTEN_ERROR, rc,
                          "Couldn't listen on any:%s: %s.", ep->path,
                          tw_strerror(rc));
  return tw_failure_new(&TW_CANNOT_LISTEN_ERROR, rc,
                        "Couldn't listen on %s:%d: %s.",
                        ep->host[0] != '\0' ? ep->host : "any", ep->port,
                        tw_strerror(rc));
}

int tw_endpoint_listen(tw_endpoint *ep, tw_factory *f, tw_deferred **out) {
  tw_listening_port *port = NULL;
  tw_deferred *d;
  int rc;
  if (ep == NULL || f == NULL || out == NULL) return TW_EINVAL;
  if (ep->kind == TW_ENDPOINT_CUSTOM)
    return ep->ops->listen != NULL ? ep->ops->listen(ep, f, out) : TW_EINVAL;
  if (ep->kind != TW_ENDPOINT_TCP4_SERVER &&
      ep->kind != TW_ENDPOINT_TCP6_SERVER && ep->kind != TW_ENDPOINT_UNIX_SERVER)
    return TW_EINVAL;
  if (!tw_reactor_in_loop_thread(ep->r)) return TW_EWRONGTHREAD;
  d = tw_deferred_new(NULL, NULL);
  if (d == NULL) return TW_ENOMEM;
  /* defer.execute(listenTCP, ...): fired before we return. */
  if (ep->kind == TW_ENDPOINT_UNIX_SERVER)
    rc = tw_listen_unix(&port, ep->r, ep->path, f, ep->backlog, ep->mode);
  else
    rc = tw_listen_tcp(&port, ep->r, ep->port, f, ep->backlog, ep->host);
  if (rc == 0)
    (void)tw_deferred_callback(d, tw_result_value(port, NULL));
  else
    (void)tw_deferred_errback(d, tw__listen_failure(ep, rc));
  *out = d;
  return 0;
}

/* ---- connect (IStreamClientEndpoint): _WrappingFactory ------------------------------- */

/*
 * One connection attempt of tw_endpoint_connect / tw_connect_protocol: the
 * _WrappingFactory handed to tw_connect_* (base) and the _WrappingProtocol
 * it builds (proto), in one block. The connector calls base's callbacks;
 * the transport calls proto's, which pass everything to the protocol the
 * caller's factory built (inner), the caller's Deferred firing with inner
 * after its connection_made. The block goes when both are done with it:
 * the connector after the factory's stop_factory (net.c touches the
 * factory no more after do_stop), the transport after proto's dealloc.
 */
typedef struct tw__ep_connect {
  tw_factory base;
  tw_protocol proto;
  tw_factory *wrapped;   /* the caller's factory, NULL for connect_protocol */
  tw_protocol *one_shot; /* connectProtocol's protocol */
  tw_protocol *inner;    /* the protocol in use, until its connection_lost */
  tw_deferred *d;        /* our reference until it fires */
  tw_connector *c;
  int refs; /* the connector (until stop_factory), proto (until dealloc) */
} tw__ep_connect;

static void tw__ep_connect_unref(tw__ep_connect *cx) {
  if (--cx->refs > 0) return;
  if (cx->d != NULL) {
    /* Cannot happen with net.c (the attempt always ends in
     * client_connection_failed or a made connection), but a Deferred must
     * not keep a canceller whose argument is gone. */
    tw_deferred *d = cx->d;
    cx->d = NULL;
    (void)tw_deferred_errback(
        d, tw_failure_new(&TW_CONNECT_ERROR, 0, "the connection attempt "
                                                "ended without a result"));
    tw_deferred_unref(d);
  }
  tw__free(cx);
}

/* Fire the caller's Deferred once (ours is dropped first: a callback that
 * cancels it finds it fired). result or f: one of them. */
static void tw__ep_fire(tw__ep_connect *cx, tw_protocol *p, tw_failure *f) {
  tw_deferred *d = cx->d;
  if (d == NULL) {
    tw_failure_unref(f);
    return;
  }
  cx->d = NULL;
  if (f != NULL) {
    if (tw_deferred_errback(d, f) != 0) tw_failure_unref(f);
  } else {
    (void)tw_deferred_callback(d, tw_result_value(p, NULL));
  }
  tw_deferred_unref(d);
}

static tw__ep_connect *tw__ep_of_proto(tw_protocol *p) {
  return TW__CONTAINER_OF(p, tw__ep_connect, proto);
}

static tw__ep_connect *tw__ep_of_factory(tw_factory *f) {
  return TW__CONTAINER_OF(f, tw__ep_connect, base);
}

/* _WrappingProtocol.connectionMade: the caller's protocol gets the
 * transport and its connection_made, then the Deferred fires with it. */
static void tw__ep_proto_made(tw_protocol *p) {
  tw__ep_connect *cx = tw__ep_of_proto(p);
  tw_protocol *in = cx->inner;
  in->transport = p->transport;
  in->connected = 1;
  if (in->ops != NULL && in->ops->connection_made != NULL)
    in->ops->connection_made(in);
  tw__ep_fire(cx, in, NULL);
}

static tw_failure *tw__ep_proto_data(tw_protocol *p, const char *data,
                                     size_t len) {
  tw_protocol *in = tw__ep_of_proto(p)->inner;
  if (in->ops == NULL || in->ops->data_received == NULL) return NULL;
  return in->ops->data_received(in, data, len);
}

static void tw__ep_proto_lost(tw_protocol *p, tw_failure *reason) {
  tw__ep_connect *cx = tw__ep_of_proto(p);
  tw_protocol *in = cx->inner;
  cx->inner = NULL;
  in->connected = 0;
  if (in->ops != NULL && in->ops->connection_lost != NULL)
    in->ops->connection_lost(in, reason);
  /* As protocol.c does for the protocols it serves: the transport goes
   * once connection_lost has returned, so the caller's protocol must not
   * keep a pointer to it (protocol.h); it is freed in dealloc. */
  in->transport = NULL;
  if (in->dealloc != NULL) in->dealloc(in);
}

static void tw__ep_proto_read_lost(tw_protocol *p) {
  tw_protocol *in = tw__ep_of_proto(p)->inner;
  in->ops->read_connection_lost(in); /* only in the half-close table */
}

static void tw__ep_proto_write_lost(tw_protocol *p) {
  tw_protocol *in = tw__ep_of_proto(p)->inner;
  if (in->ops != NULL && in->ops->write_connection_lost != NULL)
    in->ops->write_connection_lost(in);
}

static void tw__ep_proto_dealloc(tw_protocol *p) {
  tw__ep_connect_unref(tw__ep_of_proto(p));
}

/* Two tables: the wrapper is half-closeable exactly when the caller's
 * protocol is (Twisted's directlyProvides(self, IHalfCloseableProtocol)). */
static const tw_protocol_ops tw__ep_proto_ops = {
    tw__ep_proto_made, tw__ep_proto_data, tw__ep_proto_lost, NULL,
    tw__ep_proto_write_lost};
static const tw_protocol_ops tw__ep_proto_ops_half = {
    tw__ep_proto_made, tw__ep_proto_data, tw__ep_proto_lost,
    tw__ep_proto_read_lost, tw__ep_proto_write_lost};

/* _WrappingFactory.buildProtocol: the caller's factory builds (NULL is
 * error.NoProtocol on the Deferred, and the connection is refused). */
static tw_protocol *tw__ep_build(tw_factory *f, const tw_address *addr) {
  tw__ep_connect *cx = tw__ep_of_factory(f);
  tw_protocol *in;
  if (cx->d == NULL) return NULL; /* cancelled: nobody waits for it */
  in = cx->wrapped != NULL ? tw_factory_build_protocol(cx->wrapped, addr)
                           : cx->one_shot;
  if (in == NULL) {
    tw__ep_fire(cx, NULL, tw_failure_new(&TW_NO_PROTOCOL, 0, NULL));
    return NULL;
  }
  cx->inner = in;
  (void)tw_protocol_init(&cx->proto, in->ops != NULL &&
                                             in->ops->read_connection_lost !=
                                                 NULL
                                         ? &tw__ep_proto_ops_half
                                         : &tw__ep_proto_ops);
  cx->proto.dealloc = tw__ep_proto_dealloc;
  cx->refs++;
  return &cx->proto;
}

static void tw__ep_start(tw_factory *f) {
  tw__ep_connect *cx = tw__ep_of_factory(f);
  if (cx->wrapped != NULL) (void)tw_factory_do_start(cx->wrapped);
}

/* The connector's last call on the factory. */
static void tw__ep_stop(tw_factory *f) {
  tw__ep_connect *cx = tw__ep_of_factory(f);
  if (cx->wrapped != NULL) (void)tw_factory_do_stop(cx->wrapped);
  tw__ep_connect_unref(cx);
}

static void tw__ep_started(tw_factory *f, tw_connector *c) {
  tw__ep_of_factory(f)->c = c;
}

/* clientConnectionFailed: the Deferred fails with the reason (unless a
 * cancel or NoProtocol fired it). Either way the connector has nothing
 * more to do for us: it is freed after this callback. */
static void tw__ep_failed(tw_factory *f, tw_connector *c, tw_failure *reason) {
  tw__ep_connect *cx = tw__ep_of_factory(f);
  tw__ep_fire(cx, NULL, tw_failure_ref(reason));
  cx->c = NULL;
  (void)tw_connector_free(c); /* TW_EINVAL: the reactor frees it already */
}

static void tw__ep_conn_lost(tw_factory *f, tw_connector *c,
                             tw_failure *reason) {
  tw__ep_connect *cx = tw__ep_of_factory(f);
  (void)reason;
  cx->c = NULL;
  (void)tw_connector_free(c);
}

static const tw_factory_ops tw__ep_factory_ops = {
    tw__ep_build, tw__ep_start,  tw__ep_stop,
    tw__ep_started, tw__ep_failed, tw__ep_conn_lost};

/* _WrappingFactory._canceller: ConnectingCancelledError(destination), then
 * stopConnecting (whose client_connection_failed finds the Deferred
 * fired). */
static void tw__ep_cancel(tw_deferred *d, void *arg) {
  tw__ep_connect *cx = arg;
  tw_address *dest = tw__calloc(1, sizeof *dest);
  char text[256] = "None";
  tw_failure *f;
  (void)d;
  if (dest != NULL && cx->c != NULL &&
      tw_connector_get_destination(cx->c, dest) == 0)
    (void)tw_address_format(dest, text, sizeof text);
  f = tw_failure_new_payload(&TW_CONNECTING_CANCELLED_ERROR, TW_ECANCELLED,
                             dest, tw__free, "%s", text);
  tw__ep_fire(cx, NULL, f);
  if (cx->inner != NULL) {
    /* Cancelled from inside the protocol's connection_made (the Deferred
     * fires after it): the connection is there and nobody wants it any
     * more. Twisted's stopConnecting raises NotConnectingError there and
     * the wrapper's callback AlreadyCalledError, which drops it; here it
     * is aborted (connection_lost(ConnectionAborted) follows). */
    (void)tw_transport_abort_connection(cx->proto.transport);
  } else if (cx->c != NULL) {
    (void)tw_connector_stop_connecting(cx->c);
  }
}

/* connectTCP/connectUNIX with a wrapping factory for f (or p). */
static int tw__ep_connect_to(tw_reactor *r, int unix_kind, const char *where,
                             int port, double timeout, const tw_address *bind,
                             tw_factory *f, tw_protocol *p,
                             tw_deferred **out) {
  tw__ep_connect *cx = tw__calloc(1, sizeof *cx);
  tw_connector *c = NULL;
  tw_deferred *d;
  int rc;
  if (cx == NULL) return TW_ENOMEM;
  d = tw_deferred_new(tw__ep_cancel, cx);
  if (d == NULL) {
    tw__free(cx);
    return TW_ENOMEM;
  }
  (void)tw_factory_init(&cx->base, &tw__ep_factory_ops);
  cx->wrapped = f;
  cx->one_shot = p;
  cx->d = tw_deferred_ref(d);
  cx->refs = 1; /* the connector's */
  if (unix_kind)
    rc = tw_connect_unix(&c, r, where, &cx->base, timeout);
  else
    rc = tw_connect_tcp(&c, r, where, port, &cx->base, timeout, bind);
  if (rc != 0) {
    /* Nothing was called and nothing kept (net.h): Twisted's
     * "except BaseException: return defer.fail()". */
    tw__ep_fire(cx, NULL, tw_failure_from_code(rc));
    tw__free(cx);
  } else {
    cx->c = c;
  }
  *out = d;
  return 0;
}

/* TCP6ClientEndpoint with a name: resolve it, connect to its first IPv6
 * address (the endpoint's values copied: it may be freed meanwhile). */
typedef struct tw__ep_resolve {
  tw_reactor *r;
  tw_factory *f;
  tw_protocol *p;
  int port;
  int has_bind;
  double timeout;
  tw_address bind;
} tw__ep_resolve;

static tw_result tw__ep_resolved(tw_result res, void *arg) {
  tw__ep_resolve *rs = arg;
  const struct addrinfo *ai;
  char host[TW_ADDRESS_HOST_MAX] = "";
  tw_deferred *d = NULL;
  int rc;
  for (ai = res.u.value; ai != NULL; ai = ai->ai_next) {
    if (ai->ai_family == AF_INET6 &&
        uv_ip6_name((const struct sockaddr_in6 *)(const void *)ai->ai_addr,
                    host, sizeof host) == 0)
      break;
  }
  tw_result_release(res);
  if (ai == NULL)
    return tw_result_failure(tw_failure_new(&TW_DNS_LOOKUP_ERROR,
                                            UV_EAI_NONAME,
                                            "no IPv6 address found"));
  rc = tw__ep_connect_to(rs->r, 0, host, rs->port, rs->timeout,
                         rs->has_bind ? &rs->bind : NULL, rs->f, rs->p, &d);
  if (rc != 0) return tw_result_failure(tw_failure_from_code(rc));
  return tw_result_deferred(d);
}

static int tw__ep_connect_any(tw_endpoint *ep, tw_factory *f, tw_protocol *p,
                              tw_deferred **out) {
  tw__ep_resolve *rs;
  tw_address lit;
  int rc;
  if (!tw_reactor_in_loop_thread(ep->r)) return TW_EWRONGTHREAD;
  switch (ep->kind) {
    case TW_ENDPOINT_UNIX_CLIENT:
      return tw__ep_connect_to(ep->r, 1, ep->path, 0, ep->timeout, NULL, f,
                               p, out);
    case TW_ENDPOINT_TCP4_CLIENT:
      return tw__ep_connect_to(ep->r, 0, ep->host, ep->port, ep->timeout,
                               ep->has_bind ? &ep->bind : NULL, f, p, out);
    case TW_ENDPOINT_TCP6_CLIENT:
      if (tw__endpoint_numeric(ep->host, &lit) == 0 &&
          lit.family == TW_ADDRESS_IPV6)
        return tw__ep_connect_to(ep->r, 0, ep->host, ep->port, ep->timeout,
                                 ep->has_bind ? &ep->bind : NULL, f, p, out);
      break;
    default:
      return TW_EINVAL;
  }
  rs = tw__calloc(1, sizeof *rs);
  if (rs == NULL) return TW_ENOMEM;
  rs->r = ep->r;
  rs->f = f;
  rs->p = p;
  rs->port = ep->port;
  rs->timeout = ep->timeout;
  rs->has_bind = ep->has_bind;
  rs->bind = ep->bind;
  rc = tw_reactor_resolve(ep->r, ep->host, out);
  if (rc != 0) {
    tw__free(rs);
    return rc;
  }
  rc = tw_deferred_add_callbacks_full(*out, tw__ep_resolved, NULL, rs,
                                      tw__free);
  if (rc != 0) {
    tw__free(rs);
    (void)tw_deferred_cancel(*out);
    tw_deferred_unref(*out);
    *out = NULL;
  }
  return rc;
}

int tw_endpoint_connect(tw_endpoint *ep, tw_factory *f, tw_deferred **out) {
  if (ep == NULL || f == NULL || out == NULL) return TW_EINVAL;
  if (ep->kind == TW_ENDPOINT_CUSTOM)
    return ep->ops->connect != NULL ? ep->ops->connect(ep, f, out)
                                    : TW_EINVAL;
  return tw__ep_connect_any(ep, f, NULL, out);
}

/* connectProtocol on a library's kind: OneShotFactory, freed when both
 * the Deferred has fired and the factory is not started (num_ports 0:
 * never started, or stopped). */
typedef struct tw__ep_one_shot {
  tw_factory base;
  tw_protocol *p;
  int fired;
} tw__ep_one_shot;

static tw_protocol *tw__one_shot_build(tw_factory *f, const tw_address *a) {
  (void)a;
  return TW__CONTAINER_OF(f, tw__ep_one_shot, base)->p;
}

static void tw__one_shot_stop(tw_factory *f) {
  tw__ep_one_shot *os = TW__CONTAINER_OF(f, tw__ep_one_shot, base);
  if (os->fired) tw__free(os);
}

static const tw_factory_ops tw__one_shot_ops = {
    tw__one_shot_build, NULL, tw__one_shot_stop, NULL, NULL, NULL};

static tw_result tw__one_shot_fired(tw_result res, void *arg) {
  tw__ep_one_shot *os = arg;
  os->fired = 1;
  if (os->base.num_ports == 0) tw__free(os);
  return res;
}

int tw_connect_protocol(tw_endpoint *ep, tw_protocol *p, tw_deferred **out) {
  tw__ep_one_shot *os;
  int rc;
  if (ep == NULL || p == NULL || out == NULL) return TW_EINVAL;
  if (ep->kind != TW_ENDPOINT_CUSTOM) return tw__ep_connect_any(ep, NULL, p, out);
  if (ep->ops->connect == NULL) return TW_EINVAL;
  os = tw__calloc(1, sizeof *os);
  if (os == NULL) return TW_ENOMEM;
  (void)tw_factory_init(&os->base, &tw__one_shot_ops);
  os->p = p;
  rc = ep->ops->connect(ep, &os->base, out);
  if (rc != 0) {
    tw__free(os);
    return rc;
  }
  if (tw_deferred_add_both(*out, tw__one_shot_fired, os) != 0) {
    /* Cannot watch the Deferred: keep the factory until it is stopped. */
    os->fired = 1;
  }
  return 0;
}
