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
