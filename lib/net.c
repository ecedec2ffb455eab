/*
 * lib/net.c - listening ports and connectors for TCP and UNIX sockets
 * (net.h): listenTCP/listenUNIX, connectTCP/connectUNIX, IListeningPort,
 * IConnector. The connections themselves are stream.c's transports.
 *
 * Everything here is a reactor child (flags ON_LOOP: done from a uv_close
 * callback; SHUTDOWN: closed by the reactor's disconnectAll): a port or a
 * connector the program forgot is closed at shutdown or free, and its
 * memory goes with its close callback.
 */
#include "stream-internal.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <twuv/resolve.h>

#define TW__SUN_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path))
#define TW__HOST_NAME_MAX 256

/* ---- listening ports ---------------------------------------------------------- */

struct tw_listening_port {
  tw__child child;
  tw__uv_stream h;
  tw_reactor *r;
  tw_factory *f;
  tw_deferred *stop_d; /* stopListening's, or NULL */
  tw_delayed_call *retry; /* an accept to try again (out of memory) */
  tw_address host;
  unsigned tcp : 1;
  unsigned started : 1;  /* the factory's do_start ran */
  unsigned stopping : 1; /* uv_close called */
};

static void tw__port_closed(uv_handle_t *h) {
  tw_listening_port *p = h->data;
  tw_deferred *d = p->stop_d;
  /* As Twisted's unix.Port.connectionLost: the socket file goes. */
  if (!p->tcp && p->started && p->host.name[0] != '\0')
    (void)unlink(p->host.name);
  if (p->started) (void)tw_factory_do_stop(p->f);
  tw__reactor_child_done(p->r, &p->child);
  tw__free(p);
  if (d != NULL) {
    (void)tw_deferred_callback(d, tw_result_none());
    tw_deferred_unref(d);
  }
}

static void tw__port_close(tw_listening_port *p) {
  if (p->stopping) return;
  p->stopping = 1;
  if (p->retry != NULL) {
    (void)tw_delayed_call_cancel(p->retry);
    tw_delayed_call_unref(p->retry);
    p->retry = NULL;
  }
  uv_close(&p->h.handle, tw__port_closed);
}

static void tw__port_child_close(tw__child *c, int why) {
  (void)why;
  tw__port_close(TW__CONTAINER_OF(c, tw_listening_port, child));
}

static const tw__child_ops tw__port_child_ops = {tw__port_child_close};

/* Seconds before an accept that ran out of memory is tried again. */
#define TW__ACCEPT_RETRY 0.1

static void tw__port_accept(uv_stream_t *server, int status);

static void tw__port_retry(void *arg) {
  tw_listening_port *p = arg;
  tw_delayed_call_unref(p->retry);
  p->retry = NULL;
  if (!p->stopping) tw__port_accept(&p->h.stream, 0);
}

static void tw__port_accept(uv_stream_t *server, int status) {
  tw_listening_port *p = server->data;
  tw__stream *s;
  int err;
  /* Accept errors (EMFILE: libuv's uv__emfile_trick already accepted and
   * closed one) leave the port listening, as Twisted's doRead does, which
   * logs "Could not accept new connection (EMFILE)" (log.msg: info). */
  if (status < 0) {
    tw__log_at(TW_LOG_INFO, NULL, NULL, 0,
               "Could not accept new connection (%s)", tw_err_name(status));
    return;
  }
  if (p->stopping) return;
  err = tw__stream_new(&s, p->r, p->tcp);
  if (err != 0) {
    /* No handle to accept into. libuv keeps the accepted socket and stops
     * watching the port until uv_accept: try again a little later (as
     * Twisted's doRead, which logs accept errors and keeps listening).
     * Only if even the timer cannot be had is the port dead - say so. */
    if (p->retry == NULL &&
        tw_reactor_call_later(p->r, TW__ACCEPT_RETRY, tw__port_retry, p,
                              NULL, &p->retry) == 0) {
      tw__log_at(TW_LOG_WARN, NULL, NULL, 0,
                 "listening port: cannot accept a connection (%s); trying "
                 "again in %g s",
                 tw_err_name(err), TW__ACCEPT_RETRY);
      return;
    }
    tw__log_at(TW_LOG_ERROR, NULL, NULL, 0,
               "listening port: cannot accept a connection (%s); the port "
               "stops accepting",
               tw_err_name(err));
    return;
  }
  err = uv_accept(server, &s->h.stream);
  if (err != 0) {
    tw__stream_close(s, NULL, 0);
    return;
  }
  (void)tw__stream_start(s, p->f);
}

static void tw__port_free_cb(uv_handle_t *h) { tw__free(h->data); }

/* Allocate, register and open a port's handle: 0, or an error with
 * nothing left behind. */
static int tw__port_new(tw_listening_port **out, tw_reactor *r, tw_factory *f,
                        int tcp) {
  tw_listening_port *p;
  int err;
  *out = NULL;
  if (!tw_reactor_in_loop_thread(r)) return TW_EWRONGTHREAD;
  if (tw__reactor_gone(r)) return TW_ESHUTDOWN;
  p = tw__calloc(1, sizeof(*p));
  if (p == NULL) return TW_ENOMEM;
  p->r = r;
  p->f = f;
  p->tcp = tcp != 0;
  err = tcp ? uv_tcp_init(tw_reactor_loop(r), &p->h.tcp)
            : uv_pipe_init(tw_reactor_loop(r), &p->h.pipe, 0);
  if (err != 0) {
    tw__free(p);
    return err;
  }
  p->h.handle.data = p;
  tw__child_init(&p->child, &tw__port_child_ops,
                 TW__CHILD_ON_LOOP | TW__CHILD_SHUTDOWN);
  err = tw__reactor_child_add(r, &p->child);
  if (err != 0) {
    /* Not a child: close the handle, and the loop frees the port later;
     * nothing waits for it, so do it the old way - the reactor is going
     * away, and uv_close's callback still runs from its free. */
    p->stopping = 1;
    tw__child_init(&p->child, &tw__port_child_ops, 0);
    uv_close(&p->h.handle, tw__port_free_cb);
    return err;
  }
  *out = p;
  return 0;
}

static int tw__port_listen(tw_listening_port *p, int backlog) {
  int err = uv_listen(&p->h.stream, backlog > 0 ? backlog : TW_LISTEN_BACKLOG,
                      tw__port_accept);
  if (err != 0) return err;
  p->started = 1;
  (void)tw_factory_do_start(p->f);
  return 0;
}

/* A numeric address and port as a sockaddr. */
static int tw__numeric_sockaddr(const char *host, int port,
                                struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof(*ss));
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0) return 0;
  if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0) return 0;
  return TW_EINVAL;
}

int tw_listen_tcp(tw_listening_port **out, tw_reactor *r, int port,
                  tw_factory *f, int backlog, const char *interface) {
  struct sockaddr_storage ss;
  tw_listening_port *p;
  int err, len;
  if (out != NULL) *out = NULL;
  if (out == NULL || r == NULL || f == NULL || port < 0 || port > 65535)
    return TW_EINVAL;
  /* '' is IPv4's any address, as Twisted's listenTCP. */
  if (interface == NULL || interface[0] == '\0') interface = "0.0.0.0";
  if (tw__numeric_sockaddr(interface, port, &ss) != 0) return TW_EINVAL;
  err = tw__port_new(&p, r, f, 1);
  if (err != 0) return err;
  /* uv_tcp_bind may report EADDRINUSE only at uv_listen. */
  err = uv_tcp_bind(&p->h.tcp, (const struct sockaddr *)&ss, 0);
  if (err == 0) err = tw__port_listen(p, backlog);
  if (err != 0) {
    tw__port_close(p);
    return err;
  }
  len = (int)sizeof(ss);
  if (uv_tcp_getsockname(&p->h.tcp, (struct sockaddr *)&ss, &len) == 0)
    tw__sockaddr_address((const struct sockaddr *)&ss, &p->host);
  *out = p;
  return 0;
}

int tw_listen_unix(tw_listening_port **out, tw_reactor *r, const char *path,
                   tw_factory *f, int backlog, int mode) {
  tw_listening_port *p;
  size_t len;
  int err, bound;
  if (out != NULL) *out = NULL;
  if (out == NULL || r == NULL || path == NULL || f == NULL || mode < 0 ||
      mode > 07777)
    return TW_EINVAL;
  /* libuv 1.44 truncates a long path silently (UV_PIPE_NO_TRUNCATE came in
   * 1.46): refuse it instead of binding another name. */
  len = strlen(path);
  if (len == 0 || len >= TW__SUN_PATH_MAX) return TW_EINVAL;
  err = tw__port_new(&p, r, f, 0);
  if (err != 0) return err;
  memset(&p->host, 0, sizeof(p->host));
  p->host.family = TW_ADDRESS_UNIX;
  memcpy(p->host.name, path, len + 1);
  err = uv_pipe_bind(&p->h.pipe, path);
  bound = err == 0;
  /* The mode with chmod(2): uv_pipe_chmod knows only "readable" and
   * "writable by everyone" (0444/0222/0666), not 0600 and the like that
   * listenUNIX(mode=) takes. Set before listen: no connection can come
   * in under the wrong mode. */
  if (err == 0 && chmod(path, (mode_t)(mode != 0 ? mode : 0666)) != 0)
    err = TW_EINVAL;
  if (err == 0) err = tw__port_listen(p, backlog);
  if (err != 0) {
    /* Bound but not listening: the file we made goes. */
    if (bound) (void)unlink(path);
    tw__port_close(p);
    return err;
  }
  *out = p;
  return 0;
}

int tw_listening_port_get_host(tw_listening_port *p, tw_address *out) {
  if (p == NULL || out == NULL) return TW_EINVAL;
  if (!tw_reactor_in_loop_thread(p->r)) return TW_EWRONGTHREAD;
  *out = p->host;
  return 0;
}

int tw_listening_port_stop(tw_listening_port *p, tw_deferred **out) {
  if (out != NULL) *out = NULL;
  if (p == NULL) return TW_EINVAL;
  if (!tw_reactor_in_loop_thread(p->r)) return TW_EWRONGTHREAD;
  if (p->stopping) return TW_EINVAL;
  if (out != NULL) {
    tw_deferred *d = tw_deferred_new(NULL, NULL);
    if (d == NULL) return TW_ENOMEM;
    p->stop_d = tw_deferred_ref(d);
    *out = d;
  }
  tw__port_close(p);
  return 0;
}

/* ---- connectors ------------------------------------------------------------------ */

enum { TW__DISCONNECTED, TW__CONNECTING, TW__CONNECTED };

struct tw_connector {
  tw__child child;
  tw_reactor *r;
  tw_factory *f;
  tw__stream *s;        /* the attempt, then the connection */
  tw_deferred *resolving; /* the name lookup in flight, or NULL */
  tw_delayed_call *timer; /* the connect timeout, or NULL */
  uv_connect_t req;
  double timeout;
  tw_address dest;
  int port;
  int state;
  int in_callback;      /* inside a factory callback we made */
  unsigned tcp : 1;
  unsigned factory_started : 1;
  unsigned closing : 1;      /* shutdown, free: no new attempts */
  unsigned free_pending : 1; /* free once the attempt/connection ended */
  unsigned has_bind : 1;
  struct sockaddr_storage bind_addr;
  char host[TW__HOST_NAME_MAX]; /* as given (a name or numeric) */
  char path[TW__SUN_PATH_MAX];
};

static void tw__connector_release(tw_connector *c) {
  tw__reactor_child_done(c->r, &c->child);
  tw__free(c);
}

static void tw__connector_cancel_timer(tw_connector *c) {
  if (c->timer == NULL) return;
  (void)tw_delayed_call_cancel(c->timer);
  tw_delayed_call_unref(c->timer);
  c->timer = NULL;
}

static void tw__connector_cancel_resolve(tw_connector *c) {
  tw_deferred *d = c->resolving;
  if (d == NULL) return;
  c->resolving = NULL;
  (void)tw_deferred_cancel(d); /* our errback sees resolving == NULL */
  tw_deferred_unref(d);
}

/* End the attempt with reason (owned): the stream's close callback tells
 * the factory, from the loop. */
static void tw__connector_fail(tw_connector *c, tw_failure *reason) {
  tw__connector_cancel_timer(c);
  tw__connector_cancel_resolve(c);
  if (c->s != NULL)
    tw__stream_close(c->s, reason, 0);
  else
    tw_failure_unref(reason);
}

/* Twisted's error.getConnectError for a connect(2) errno. */
static tw_failure *tw__connect_error(int code) {
  const tw_error_type *type = &TW_CONNECT_ERROR;
  if (code == UV_ECONNREFUSED)
    type = &TW_NET_CONNECTION_REFUSED_ERROR;
  else if (code == UV_ETIMEDOUT)
    type = &TW_TCP_TIMED_OUT_ERROR;
  else if (code == UV_ENETUNREACH || code == UV_EHOSTUNREACH)
    type = &TW_NO_ROUTE_ERROR;
  return tw_failure_new(type, code, "%s", uv_strerror(code));
}

static void tw__connector_closed(tw__stream *s, void *owner, int made,
                                 tw_failure *reason) {
  tw_connector *c = owner;
  const tw_factory_ops *ops = c->f->ops;
  (void)s;
  c->s = NULL;
  tw__connector_cancel_timer(c);
  tw__connector_cancel_resolve(c);
  c->state = TW__DISCONNECTED;
  c->in_callback++;
  if (made) {
    if (ops != NULL && ops->client_connection_lost != NULL)
      ops->client_connection_lost(c->f, c, reason);
  } else {
    if (ops != NULL && ops->client_connection_failed != NULL)
      ops->client_connection_failed(c->f, c, reason);
  }
  c->in_callback--;
  /* Not reconnected from the callback: the factory stops. */
  if (c->state == TW__DISCONNECTED && c->factory_started) {
    c->factory_started = 0;
    (void)tw_factory_do_stop(c->f);
  }
  if (c->free_pending && c->s == NULL && c->in_callback == 0)
    tw__connector_release(c);
}

static const tw__stream_owner_ops tw__connector_owner_ops = {
    .closed = tw__connector_closed};

static void tw__connector_connected(uv_connect_t *req, int status) {
  tw_connector *c = req->data;
  tw__stream *s = c->s;
  if (s == NULL || s->closing) return; /* stopped: the close tells */
  if (status < 0) {
    tw__connector_fail(c, tw__connect_error(status));
    return;
  }
  /* Connector.buildProtocol: connected, the timeout goes. */
  c->state = TW__CONNECTED;
  tw__connector_cancel_timer(c);
  (void)tw__stream_start(s, c->f);
}

/* connectTCP's bindAddress. Twisted binds a client socket without
 * SO_REUSEADDR (only ports set it), so an address another socket holds is
 * EADDRINUSE at bind: ConnectBindError. libuv's uv_tcp_bind always sets
 * SO_REUSEADDR, with which Linux lets a second client bind the address a
 * connected one holds and fails the connect (EADDRNOTAVAIL, a plain
 * ConnectError). So the socket is made and bound here and given to libuv. */
static int tw__connector_bind(tw_connector *c) {
  const struct sockaddr *a = (const struct sockaddr *)&c->bind_addr;
  socklen_t len = a->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                           : sizeof(struct sockaddr_in);
  /* Close-on-exec from the start: a process spawned by another thread
   * between socket() and a later fcntl() would inherit it. */
  int fd = socket(a->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0), err;
  if (fd < 0) return uv_translate_sys_error(errno);
  if (bind(fd, a, len) != 0) {
    err = uv_translate_sys_error(errno);
    close(fd);
    return err;
  }
  err = uv_tcp_open(&c->s->h.tcp, fd); /* makes it non-blocking */
  if (err != 0) close(fd);
  return err;
}

static void tw__connector_go(tw_connector *c,
                             const struct sockaddr_storage *ss) {
  int err;
  c->req.data = c;
  if (c->tcp) {
    if (c->has_bind && (err = tw__connector_bind(c)) != 0) {
      tw__connector_fail(c, tw_failure_new(&TW_CONNECT_BIND_ERROR, err, "%s",
                                           uv_strerror(err)));
      return;
    }
    err = uv_tcp_connect(&c->req, &c->s->h.tcp, (const struct sockaddr *)ss,
                         tw__connector_connected);
    if (err != 0) tw__connector_fail(c, tw__connect_error(err));
  } else {
    uv_pipe_connect(&c->req, &c->s->h.pipe, c->path, tw__connector_connected);
  }
}

static tw_result tw__connector_resolved(tw_result res, void *arg) {
  tw_connector *c = arg;
  const struct addrinfo *ai;
  struct sockaddr_storage ss;
  int found = 0;
  if (c->resolving == NULL) { /* cancelled */
    tw_result_release(res);
    return tw_result_none();
  }
  tw_deferred_unref(c->resolving);
  c->resolving = NULL;
  /* connectTCP resolves to IPv4 (gethostbyname), as Twisted's. */
  for (ai = res.u.value; ai != NULL; ai = ai->ai_next) {
    if (ai->ai_family == AF_INET && ai->ai_addrlen <= sizeof(ss)) {
      memset(&ss, 0, sizeof(ss));
      memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
      ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)c->port);
      found = 1;
      break;
    }
  }
  tw_result_release(res);
  if (!found)
    tw__connector_fail(c, tw_failure_new(&TW_DNS_LOOKUP_ERROR, UV_EAI_NONAME,
                                         "address '%s' not found: no IPv4 "
                                         "address",
                                         c->host));
  else
    tw__connector_go(c, &ss);
  return tw_result_none();
}

static tw_result tw__connector_resolve_failed(tw_result res, void *arg) {
  tw_connector *c = arg;
  if (c->resolving == NULL) { /* cancelled */
    tw_result_release(res);
    return tw_result_none();
  }
  tw_deferred_unref(c->resolving);
  c->resolving = NULL;
  /* The resolver's DNSLookupError, as Twisted's failIfNotConnected. */
  tw__connector_fail(c, tw_failure_ref(res.u.failure));
  tw_result_release(res);
  return tw_result_none();
}

static void tw__connector_timed_out(void *arg) {
  tw_connector *c = arg;
  tw_delayed_call_unref(c->timer);
  c->timer = NULL;
  if (c->state != TW__CONNECTING) return;
  tw__connector_fail(c, tw_failure_new(&TW_NET_TIMEOUT_ERROR, 0,
                                       "User timeout caused connection "
                                       "failure."));
}

int tw_connector_connect(tw_connector *c) {
  struct sockaddr_storage ss;
  const tw_factory_ops *ops;
  int err;
  if (c == NULL) return TW_EINVAL;
  if (!tw_reactor_in_loop_thread(c->r)) return TW_EWRONGTHREAD;
  if (c->closing || c->free_pending || tw__reactor_gone(c->r))
    return TW_ESHUTDOWN;
  /* Twisted: RuntimeError("can't connect in this state"). */
  if (c->state != TW__DISCONNECTED || c->s != NULL) return TW_EBUSY;
  err = tw__stream_new(&c->s, c->r, c->tcp);
  if (err != 0) return err;
  c->s->owner_ops = &tw__connector_owner_ops;
  c->s->owner = c;
  if (c->timeout > 0 &&
      (err = tw_reactor_call_later(c->r, c->timeout, tw__connector_timed_out,
                                   c, NULL, &c->timer)) != 0) {
    c->s->owner_ops = NULL;
    tw__stream_close(c->s, NULL, 0);
    c->s = NULL;
    return err;
  }
  c->state = TW__CONNECTING;
  if (!c->factory_started) {
    c->factory_started = 1;
    (void)tw_factory_do_start(c->f);
  }
  if (!c->tcp) {
    tw__connector_go(c, NULL);
  } else if (tw__numeric_sockaddr(c->host, c->port, &ss) == 0) {
    tw__connector_go(c, &ss);
  } else {
    tw_deferred *d;
    err = tw_reactor_resolve(c->r, c->host, &d);
    if (err != 0) {
      tw__connector_fail(c, tw_failure_new(&TW_DNS_LOOKUP_ERROR, err, "%s",
                                           tw_strerror(err)));
    } else {
      c->resolving = d;
      if (tw_deferred_add_callbacks(d, tw__connector_resolved,
                                    tw__connector_resolve_failed, c) != 0)
        tw__connector_fail(c, tw_failure_new(&TW_MEMORY_ERROR, TW_ENOMEM,
                                             "resolving %s", c->host));
    }
  }
  /* Connector.connect ends with factory.startedConnecting(self). */
  ops = c->f->ops;
  if (ops != NULL && ops->started_connecting != NULL) {
    c->in_callback++;
    ops->started_connecting(c->f, c);
    c->in_callback--;
    if (c->free_pending && c->s == NULL && c->in_callback == 0)
      tw__connector_release(c);
  }
  return 0;
}

static void tw__connector_child_close(tw__child *ch, int why) {
  tw_connector *c = TW__CONTAINER_OF(ch, tw_connector, child);
  c->closing = 1;
  if (why == TW__CLOSE_FREE) c->free_pending = 1;
  /* A connection made by c is a younger child: closed already. An attempt
   * ends as Twisted's disconnectAll ends it (a ConnectError). */
  if (c->state == TW__CONNECTING)
    tw__connector_fail(c, tw_failure_new(&TW_CONNECT_ERROR, 0,
                                         "the reactor is shutting down"));
  if (c->free_pending && c->s == NULL && c->in_callback == 0)
    tw__connector_release(c);
}

static const tw__child_ops tw__connector_child_ops = {
    tw__connector_child_close};

static int tw__connector_new(tw_connector **out, tw_reactor *r, tw_factory *f,
                             int tcp, double timeout) {
  tw_connector *c;
  int err;
  if (!tw_reactor_in_loop_thread(r)) return TW_EWRONGTHREAD;
  if (tw__reactor_gone(r)) return TW_ESHUTDOWN;
  c = tw__calloc(1, sizeof(*c));
  if (c == NULL) return TW_ENOMEM;
  c->r = r;
  c->f = f;
  c->tcp = tcp != 0;
  c->timeout = timeout > 0 ? timeout : TW_CONNECT_TIMEOUT;
  c->state = TW__DISCONNECTED;
  tw__child_init(&c->child, &tw__connector_child_ops,
                 TW__CHILD_ON_LOOP | TW__CHILD_SHUTDOWN);
  err = tw__reactor_child_add(r, &c->child);
  if (err != 0) {
    tw__free(c);
    return err;
  }
  *out = c;
  return 0;
}

/* A connector whose first connect failed at once: gone, nothing called. */
static int tw__connector_start(tw_connector **out, tw_connector *c) {
  int err = tw_connector_connect(c);
  if (err != 0) {
    tw__connector_release(c);
    return err;
  }
  *out = c;
  return 0;
}

int tw_connect_tcp(tw_connector **out, tw_reactor *r, const char *host,
                   int port, tw_factory *f, double timeout,
                   const tw_address *bind_address) {
  struct sockaddr_storage bind_ss;
  tw_connector *c;
  size_t len;
  int err;
  if (out != NULL) *out = NULL;
  if (out == NULL || r == NULL || host == NULL || f == NULL || port < 0 ||
      port > 65535 || timeout != timeout)
    return TW_EINVAL;
  len = strlen(host);
  if (len == 0 || len >= TW__HOST_NAME_MAX) return TW_EINVAL;
  if (bind_address != NULL &&
      ((bind_address->family != TW_ADDRESS_IPV4 &&
        bind_address->family != TW_ADDRESS_IPV6) ||
       bind_address->port < 0 || bind_address->port > 65535 ||
       tw__numeric_sockaddr(bind_address->host[0] != '\0'
                                ? bind_address->host
                                : "0.0.0.0",
                            bind_address->port, &bind_ss) != 0))
    return TW_EINVAL;
  err = tw__connector_new(&c, r, f, 1, timeout);
  if (err != 0) return err;
  memcpy(c->host, host, len + 1);
  c->port = port;
  c->dest.family = TW_ADDRESS_IPV4;
  c->dest.type = TW_ADDRESS_TCP;
  {
    struct sockaddr_in6 in6;
    if (uv_ip6_addr(host, port, &in6) == 0) c->dest.family = TW_ADDRESS_IPV6;
  }
  /* getDestination keeps the host as given (truncated to fit). */
  snprintf(c->dest.host, sizeof(c->dest.host), "%s", host);
  c->dest.port = port;
  if (bind_address != NULL) {
    c->has_bind = 1;
    c->bind_addr = bind_ss;
  }
  return tw__connector_start(out, c);
}

int tw_connect_unix(tw_connector **out, tw_reactor *r, const char *path,
                    tw_factory *f, double timeout) {
  tw_connector *c;
  size_t len;
  int err;
  if (out != NULL) *out = NULL;
  if (out == NULL || r == NULL || path == NULL || f == NULL ||
      timeout != timeout)
    return TW_EINVAL;
  len = strlen(path);
  if (len == 0 || len >= TW__SUN_PATH_MAX) return TW_EINVAL;
  err = tw__connector_new(&c, r, f, 0, timeout);
  if (err != 0) return err;
  memcpy(c->path, path, len + 1);
  c->dest.family = TW_ADDRESS_UNIX;
  memcpy(c->dest.name, path, len + 1);
  return tw__connector_start(out, c);
}

int tw_connector_stop_connecting(tw_connector *c) {
  if (c == NULL) return TW_EINVAL;
  if (!tw_reactor_in_loop_thread(c->r)) return TW_EWRONGTHREAD;
  /* Twisted: NotConnectingError. */
  if (c->state != TW__CONNECTING || c->s == NULL || c->s->closing)
    return TW_ENOTCONN;
  tw__connector_fail(c, tw_failure_new(&TW_USER_ERROR, 0,
                                       "User aborted connection."));
  return 0;
}

int tw_connector_disconnect(tw_connector *c) {
  if (c == NULL) return TW_EINVAL;
  if (!tw_reactor_in_loop_thread(c->r)) return TW_EWRONGTHREAD;
  if (c->state == TW__CONNECTING) {
    (void)tw_connector_stop_connecting(c);
  } else if (c->state == TW__CONNECTED && c->s != NULL) {
    (void)tw_transport_lose_connection(&c->s->base);
  }
  return 0;
}

int tw_connector_get_destination(tw_connector *c, tw_address *out) {
  if (c == NULL || out == NULL) return TW_EINVAL;
  if (!tw_reactor_in_loop_thread(c->r)) return TW_EWRONGTHREAD;
  *out = c->dest;
  return 0;
}

int tw_connector_free(tw_connector *c) {
  if (c == NULL) return TW_EINVAL;
  if (!tw_reactor_in_loop_thread(c->r)) return TW_EWRONGTHREAD;
  if (c->free_pending) return TW_EINVAL;
  c->free_pending = 1;
  if (c->state == TW__CONNECTING) {
    (void)tw_connector_stop_connecting(c);
  } else if (c->state == TW__CONNECTED && c->s != NULL) {
    (void)tw_transport_lose_connection(&c->s->base);
  }
  if (c->s == NULL && c->in_callback == 0) tw__connector_release(c);
  return 0;
}
