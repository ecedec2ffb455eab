/*
 * lib/udp.c - UDP ports (udp.h): listenUDP/listenMulticast, the
 * DatagramProtocol calls, IUDPTransport and IMulticastTransport on libuv's
 * uv_udp_t.
 *
 * A port is a reactor child (flags ON_LOOP: done from its uv_close
 * callback; SHUTDOWN: closed by the reactor's disconnectAll, as Twisted's
 * removeAll + connectionLost closes UDP ports): a port the program forgot
 * is closed at shutdown or free, stop_protocol runs, and its memory goes
 * with its close callback.
 *
 * Reading: every port reads into the reactor's one 64 KiB read buffer
 * (tw__reactor_read_buffer, shared with the streams), offered as
 * max_packet_size bytes: the kernel cuts a longer datagram there and says
 * so (MSG_TRUNC, libuv's UV_UDP_PARTIAL), which is what Twisted's
 * recvfrom(maxPacketSize) gets. libuv reads up to 32 datagrams per
 * readiness event (Twisted: up to 256 KiB).
 *
 * Writing: one sendmsg per write through uv_udp_try_send (nothing is
 * queued: Twisted's write is a synchronous sendto that raises). The
 * destination comes as a tw_address (a numeric host string): parsing it
 * costs an inet_pton per datagram, so the port keeps the last address it
 * parsed, and a write to the address datagram_received was just given
 * (the echo case: the same pointer) uses the kernel's sockaddr as it came.
 */
#include "stream-internal.h" /* tw__inaddr, tw__sockaddr_address */

#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

#include <twuv/udp.h>

/* uv_udp_try_send takes unsigned nbufs; more pieces than IOV_MAX fail in
 * sendmsg (EMSGSIZE) - refuse them as bad input instead. */
#define TW__UDP_IOV_MAX 1024

struct tw_udp_port {
  tw__child child;
  tw_reactor *r;
  tw_datagram_protocol *proto; /* NULL until attached, and after stop */
  tw_deferred *stop_d;         /* stopListening's, or NULL */
  char *rbuf;                  /* the reactor's read buffer */
  size_t max_packet;
  unsigned long truncated;
  tw__inaddr host;      /* bound address */
  tw__inaddr connected; /* AF_UNSPEC when not connected */
  /* The last datagram's sender, as the kernel gave it and as given to
   * datagram_received (formatted again only when the sender changes). */
  tw__inaddr peer_sa;
  tw_address peer;
  /* The last destination parsed by a write. */
  tw__inaddr dest_sa;
  int dest_port;
  char dest_host[TW_ADDRESS_HOST_MAX];
  int family;             /* AF_INET or AF_INET6 */
  unsigned started : 1;   /* the protocol was attached */
  unsigned stopping : 1;  /* uv_close called */
  uv_udp_t h;
};

/* 648 bytes on x86-64 (libuv 1.44's uv_udp_t is 216 of them, the sender's
 * formatted tw_address 176): one per socket, not per peer, so the address
 * caches are worth their bytes. The budget catches a field added by
 * mistake. */
_Static_assert(sizeof(struct tw_udp_port) <= 704,
               "a UDP port fits its budget (11 cache lines)");

/* ---- closing ---------------------------------------------------------------- */

static void tw__udp_closed(uv_handle_t *h) {
  tw_udp_port *u = h->data;
  tw_deferred *d = u->stop_d;
  tw_datagram_protocol *p = u->proto;
  /* Twisted's connectionLost: protocol.doStop (transport None, numPorts
   * down, stopProtocol after the last), then the Deferred. */
  if (u->started && p != NULL) {
    p->transport = NULL;
    if (p->num_ports > 0) p->num_ports--;
    if (p->num_ports == 0 && p->ops != NULL && p->ops->stop_protocol != NULL)
      p->ops->stop_protocol(p);
  }
  tw__reactor_child_done(u->r, &u->child);
  tw__free(u);
  if (d != NULL) {
    (void)tw_deferred_callback(d, tw_result_none());
    tw_deferred_unref(d);
  }
}

static void tw__udp_close(tw_udp_port *u) {
  if (u->stopping) return;
  u->stopping = 1;
  /* uv_close stops reading (uv_udp_recv_stop) and closes the descriptor
   * now; libuv's read loop checks for that after each datagram. */
  uv_close((uv_handle_t *)&u->h, tw__udp_closed);
}

static void tw__udp_child_close(tw__child *c, int why) {
  (void)why;
  tw__udp_close(TW__CONTAINER_OF(c, tw_udp_port, child));
}

static const tw__child_ops tw__udp_child_ops = {tw__udp_child_close};

static void tw__udp_free_cb(uv_handle_t *h) { tw__free(h->data); }

/* ---- addresses -------------------------------------------------------------- */

/* A numeric IPv4 or IPv6 address (Twisted's isIPAddress/isIPv6Address)
 * and port as a sockaddr: 0, or TW_EINVAL. */
static int tw__udp_sockaddr(const char *host, int port, tw__inaddr *out) {
  memset(out, 0, sizeof(*out));
  if (uv_ip4_addr(host, port, &out->in4) == 0) return 0;
  if (uv_ip6_addr(host, port, &out->in6) == 0) return 0;
  return TW_EINVAL;
}

static int tw__udp_same_sockaddr(const tw__inaddr *a, const tw__inaddr *b) {
  if (a->sa.sa_family != b->sa.sa_family) return 0;
  if (a->sa.sa_family == AF_INET)
    return a->in4.sin_port == b->in4.sin_port &&
           a->in4.sin_addr.s_addr == b->in4.sin_addr.s_addr;
  if (a->sa.sa_family == AF_INET6)
    return a->in6.sin6_port == b->in6.sin6_port &&
           a->in6.sin6_scope_id == b->in6.sin6_scope_id &&
           a->in6.sin6_flowinfo == b->in6.sin6_flowinfo &&
           memcmp(&a->in6.sin6_addr, &b->in6.sin6_addr,
                  sizeof(a->in6.sin6_addr)) == 0;
  return 0;
}

static void tw__udp_address(const struct sockaddr *sa, tw_address *a) {
  tw__sockaddr_address(sa, a);
  a->type = TW_ADDRESS_UDP;
}

/* A write's destination as a sockaddr of the port's family: 0, or
 * TW_EINVAL (Twisted's InvalidAddressError). */
static int tw__udp_dest(tw_udp_port *u, const tw_address *a,
                        const tw__inaddr **out) {
  const char *host;
  tw__inaddr sa;
  /* The sender datagram_received was given: the kernel's own sockaddr. */
  if (a == &u->peer && u->peer_sa.sa.sa_family == u->family) {
    *out = &u->peer_sa;
    return 0;
  }
  if (a->family != TW_ADDRESS_NONE && a->family != TW_ADDRESS_IPV4 &&
      a->family != TW_ADDRESS_IPV6)
    return TW_EINVAL;
  if (a->port < 1 || a->port > 65535 ||
      memchr(a->host, '\0', sizeof(a->host)) == NULL)
    return TW_EINVAL;
  if (u->dest_sa.sa.sa_family != AF_UNSPEC && a->port == u->dest_port &&
      strcmp(a->host, u->dest_host) == 0) {
    *out = &u->dest_sa;
    return 0;
  }
  /* "<broadcast>" is 255.255.255.255, as Python's socket module says. */
  host = strcmp(a->host, "<broadcast>") == 0 ? "255.255.255.255" : a->host;
  if (tw__udp_sockaddr(host, a->port, &sa) != 0) return TW_EINVAL;
  /* An IPv4 port refuses IPv6 addresses and the other way round, as
   * udp.py's write does. */
  if (sa.sa.sa_family != u->family) return TW_EINVAL;
  u->dest_sa = sa;
  u->dest_port = a->port;
  memcpy(u->dest_host, a->host, strlen(a->host) + 1);
  *out = &u->dest_sa;
  return 0;
}

/* ---- reading ------------------------------------------------------------------ */

static void tw__udp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  tw_udp_port *u = h->data;
  (void)suggested;
  *buf = uv_buf_init(u->rbuf, (unsigned)u->max_packet);
}

static void tw__udp_refused(tw_udp_port *u) {
  tw_datagram_protocol *p = u->proto;
  if (p != NULL && p->ops != NULL && p->ops->connection_refused != NULL)
    p->ops->connection_refused(p);
}

static void tw__udp_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                         const struct sockaddr *addr, unsigned flags) {
  tw_udp_port *u = h->data;
  tw_datagram_protocol *p = u->proto;
  tw_failure *f;
  (void)buf;
  if (u->stopping) return;
  if (nread < 0) {
    /* udp.py's doRead: ECONNREFUSED tells a connected port's protocol;
     * EAGAIN/EINTR are libuv's; anything else ends the port, as an
     * exception out of doRead makes the reactor disconnect it. */
    if (nread == UV_ECONNREFUSED) {
      if (u->connected.sa.sa_family != AF_UNSPEC) tw__udp_refused(u);
      return;
    }
    tw__log_at(TW_LOG_ERROR, NULL, NULL, 0,
               "UDP port %d: read failed (%s); the port is closed",
               ntohs(u->host.in4.sin_port), tw_err_name((int)nread));
    tw__udp_close(u);
    return;
  }
  if (addr == NULL) return; /* nothing more to read (EAGAIN) */
  if (flags & UV_UDP_PARTIAL) u->truncated++;
  if (p == NULL || p->ops == NULL || p->ops->datagram_received == NULL)
    return;
  if (!tw__udp_same_sockaddr((const tw__inaddr *)addr, &u->peer_sa)) {
    memset(&u->peer_sa, 0, sizeof(u->peer_sa));
    memcpy(&u->peer_sa, addr,
           addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                       : sizeof(struct sockaddr_in));
    tw__udp_address(addr, &u->peer);
  }
  f = p->ops->datagram_received(p, u->rbuf, (size_t)nread, &u->peer);
  if (f != NULL) {
    /* Twisted: log.err() and go on reading. */
    tw_log_failure(f, "Unhandled Error in datagram_received");
    tw_failure_unref(f);
  }
}

/* ---- listening ---------------------------------------------------------------- */

int tw_datagram_protocol_init(tw_datagram_protocol *p,
                              const tw_datagram_protocol_ops *ops) {
  if (p == NULL || ops == NULL) return TW_EINVAL;
  memset(p, 0, sizeof(*p));
  p->ops = ops;
  return 0;
}

static int tw__udp_listen(tw_udp_port **out, tw_reactor *r, int port,
                          tw_datagram_protocol *p, const char *interface,
                          int max_packet_size, unsigned bind_flags) {
  tw__inaddr sa;
  tw_udp_port *u;
  char *rbuf;
  int err, len;
  if (out != NULL) *out = NULL;
  if (out == NULL || r == NULL || p == NULL || port < 0 || port > 65535 ||
      max_packet_size < 0)
    return TW_EINVAL;
  /* '' is IPv4's any address, as Twisted's listenUDP. */
  if (interface == NULL || interface[0] == '\0') interface = "0.0.0.0";
  if (tw__udp_sockaddr(interface, port, &sa) != 0) return TW_EINVAL;
  if (!tw_reactor_in_loop_thread(r)) return TW_EWRONGTHREAD;
  if (p->transport != NULL) return TW_EBUSY;
  if (tw__reactor_gone(r)) return TW_ESHUTDOWN;
  /* Taken now, so that reading never meets an allocation failure (libuv
   * would offer the same datagram again at once, for ever). */
  rbuf = tw__reactor_read_buffer(r);
  if (rbuf == NULL) return TW_ENOMEM;
  u = tw__calloc(1, sizeof(*u));
  if (u == NULL) return TW_ENOMEM;
  u->r = r;
  u->rbuf = rbuf;
  u->family = sa.sa.sa_family;
  u->max_packet = max_packet_size == 0 ? TW_UDP_MAX_PACKET_SIZE
                  : max_packet_size > TW_UDP_MAX_PACKET_LIMIT
                      ? TW_UDP_MAX_PACKET_LIMIT
                      : (size_t)max_packet_size;
  err = uv_udp_init(tw_reactor_loop(r), &u->h);
  if (err != 0) {
    tw__free(u);
    return err;
  }
  u->h.data = u;
  tw__child_init(&u->child, &tw__udp_child_ops,
                 TW__CHILD_ON_LOOP | TW__CHILD_SHUTDOWN);
  err = tw__reactor_child_add(r, &u->child);
  if (err != 0) {
    /* Not a child (free is under way): the loop frees it on close. */
    u->stopping = 1;
    uv_close((uv_handle_t *)&u->h, tw__udp_free_cb);
    return err;
  }
  err = uv_udp_bind(&u->h, &sa.sa, bind_flags);
  if (err == 0) {
    len = (int)sizeof(u->host);
    err = uv_udp_getsockname(&u->h, &u->host.sa, &len);
  }
  if (err == 0) err = uv_udp_recv_start(&u->h, tw__udp_alloc, tw__udp_recv);
  if (err != 0) {
    tw__udp_close(u); /* not started: no stop_protocol */
    return err;
  }
  *out = u;
  /* makeConnection: transport set, doStart (startProtocol on the first
   * port). Reading has started, but nothing is read before the loop runs. */
  u->started = 1;
  u->proto = p;
  p->transport = u;
  if (p->num_ports++ == 0 && p->ops != NULL && p->ops->start_protocol != NULL)
    p->ops->start_protocol(p);
  return 0;
}

int tw_listen_udp(tw_udp_port **out, tw_reactor *r, int port,
                  tw_datagram_protocol *p, const char *interface,
                  int max_packet_size) {
  return tw__udp_listen(out, r, port, p, interface, max_packet_size, 0);
}

int tw_listen_multicast(tw_udp_port **out, tw_reactor *r, int port,
                        tw_datagram_protocol *p, const char *interface,
                        int max_packet_size, int listen_multiple) {
  if (listen_multiple != 0 && listen_multiple != 1) {
    if (out != NULL) *out = NULL;
    return TW_EINVAL;
  }
  return tw__udp_listen(out, r, port, p, interface, max_packet_size,
                        listen_multiple ? UV_UDP_REUSEADDR : 0);
}

/* The checks every port call starts with: 0, or the code to return. */
static int tw__udp_check(tw_udp_port *u) {
  if (u == NULL) return TW_EINVAL;
  if (!tw_reactor_in_loop_thread(u->r)) return TW_EWRONGTHREAD;
  if (u->stopping) return TW_ENOTCONN;
  return 0;
}

int tw_udp_port_get_host(tw_udp_port *u, tw_address *out) {
  if (u == NULL || out == NULL) return TW_EINVAL;
  if (!tw_reactor_in_loop_thread(u->r)) return TW_EWRONGTHREAD;
  tw__udp_address(&u->host.sa, out);
  return 0;
}

int tw_udp_port_stop(tw_udp_port *u, tw_deferred **out) {
  if (out != NULL) *out = NULL;
  if (u == NULL) return TW_EINVAL;
  if (!tw_reactor_in_loop_thread(u->r)) return TW_EWRONGTHREAD;
  if (u->stopping) return TW_EINVAL;
  if (out != NULL) {
    tw_deferred *d = tw_deferred_new(NULL, NULL);
    if (d == NULL) return TW_ENOMEM;
    u->stop_d = tw_deferred_ref(d);
    *out = d;
  }
  tw__udp_close(u);
  return 0;
}

unsigned long tw_udp_port_truncated(tw_udp_port *u) {
  if (u == NULL || !tw_reactor_in_loop_thread(u->r)) return 0;
  return u->truncated;
}

/* ---- writing ------------------------------------------------------------------ */

static int tw__udp_send(tw_udp_port *u, const uv_buf_t *bufs, unsigned n,
                        const tw_address *addr) {
  const tw__inaddr *dest = NULL;
  int err;
  if (u->connected.sa.sa_family != AF_UNSPEC) {
    /* Connected: no address, or the one connected to (udp.py asserts). */
    if (addr != NULL) {
      err = tw__udp_dest(u, addr, &dest);
      if (err != 0) return err;
      if (!tw__udp_same_sockaddr(dest, &u->connected)) return UV_EISCONN;
      dest = NULL;
    }
  } else {
    if (addr == NULL) return UV_EDESTADDRREQ;
    err = tw__udp_dest(u, addr, &dest);
    if (err != 0) return err;
  }
  err = uv_udp_try_send(&u->h, bufs, n, dest != NULL ? &dest->sa : NULL);
  if (err >= 0) return 0;
  if (err == UV_ECONNREFUSED && u->connected.sa.sa_family != AF_UNSPEC)
    tw__udp_refused(u);
  return err;
}

int tw_udp_port_write(tw_udp_port *u, const void *data, size_t len,
                      const tw_address *addr) {
  uv_buf_t b;
  int err = tw__udp_check(u);
  if (err != 0) return err;
  if (data == NULL && len > 0) return TW_EINVAL;
  /* Longer than any datagram: EMSGSIZE, without the unsigned cut. */
  if (len > 0xFFFFFFFFu) return UV_EMSGSIZE;
  b = uv_buf_init(len > 0 ? (char *)data : (char *)"", (unsigned)len);
  return tw__udp_send(u, &b, 1, addr);
}

int tw_udp_port_write_sequence(tw_udp_port *u, const tw_iovec *bufs, size_t n,
                               const tw_address *addr) {
  uv_buf_t v[TW__UDP_IOV_MAX];
  size_t i;
  int err = tw__udp_check(u);
  if (err != 0) return err;
  if ((bufs == NULL && n > 0) || n > TW__UDP_IOV_MAX) return TW_EINVAL;
  for (i = 0; i < n; i++) {
    if (bufs[i].base == NULL && bufs[i].len > 0) return TW_EINVAL;
    if (bufs[i].len > 0xFFFFFFFFu) return UV_EMSGSIZE;
    v[i] = uv_buf_init(bufs[i].len > 0 ? (char *)bufs[i].base : (char *)"",
                       (unsigned)bufs[i].len);
  }
  if (n == 0) {
    v[0] = uv_buf_init((char *)"", 0);
    n = 1;
  }
  return tw__udp_send(u, v, (unsigned)n, addr);
}

int tw_udp_port_connect(tw_udp_port *u, const char *host, int port) {
  tw__inaddr sa;
  int err = tw__udp_check(u);
  if (err != 0) return err;
  if (host == NULL || port < 1 || port > 65535) return TW_EINVAL;
  if (tw__udp_sockaddr(host, port, &sa) != 0 || sa.sa.sa_family != u->family)
    return TW_EINVAL;
  /* Twisted: RuntimeError("already connected, reconnecting is not
   * currently supported"). */
  if (u->connected.sa.sa_family != AF_UNSPEC) return TW_EBUSY;
  err = uv_udp_connect(&u->h, &sa.sa);
  if (err != 0) return err;
  u->connected = sa;
  return 0;
}

/* ---- socket options ------------------------------------------------------------ */

int tw_udp_port_set_broadcast_allowed(tw_udp_port *u, int enabled) {
  int err = tw__udp_check(u);
  if (err != 0) return err;
  if (enabled != 0 && enabled != 1) return TW_EINVAL;
  return uv_udp_set_broadcast(&u->h, enabled);
}

/* An int socket option of the port's socket, or a negative code. */
static int tw__udp_getsockopt(tw_udp_port *u, int level, int name) {
  uv_os_fd_t fd;
  int v = 0, err;
  socklen_t len = sizeof(v);
  err = tw__udp_check(u);
  if (err != 0) return err;
  err = uv_fileno((const uv_handle_t *)&u->h, &fd);
  if (err != 0) return err;
  if (getsockopt(fd, level, name, &v, &len) != 0) return -errno;
  /* Linux answers IP_MULTICAST_TTL/_LOOP in one byte when asked so; an
   * int was asked: all four bytes are its. */
  return v;
}

int tw_udp_port_get_broadcast_allowed(tw_udp_port *u) {
  return tw__udp_getsockopt(u, SOL_SOCKET, SO_BROADCAST) > 0;
}

static int tw__udp_membership(tw_udp_port *u, const char *group,
                              const char *interface, uv_membership m) {
  tw__inaddr sa;
  int err = tw__udp_check(u);
  if (err != 0) return err;
  if (group == NULL || tw__udp_sockaddr(group, 0, &sa) != 0) return TW_EINVAL;
  if (interface != NULL && interface[0] == '\0') interface = NULL;
  if (interface != NULL && tw__udp_sockaddr(interface, 0, &sa) != 0)
    return TW_EINVAL;
  return uv_udp_set_membership(&u->h, group, interface, m);
}

int tw_udp_port_join_group(tw_udp_port *u, const char *group,
                           const char *interface) {
  return tw__udp_membership(u, group, interface, UV_JOIN_GROUP);
}

int tw_udp_port_leave_group(tw_udp_port *u, const char *group,
                            const char *interface) {
  return tw__udp_membership(u, group, interface, UV_LEAVE_GROUP);
}

int tw_udp_port_set_ttl(tw_udp_port *u, int ttl) {
  int err = tw__udp_check(u);
  if (err != 0) return err;
  if (ttl < 0 || ttl > 255) return TW_EINVAL;
  return uv_udp_set_multicast_ttl(&u->h, ttl);
}

int tw_udp_port_get_ttl(tw_udp_port *u) {
  if (u != NULL && u->family == AF_INET6)
    return tw__udp_getsockopt(u, IPPROTO_IPV6, IPV6_MULTICAST_HOPS);
  return tw__udp_getsockopt(u, IPPROTO_IP, IP_MULTICAST_TTL);
}

int tw_udp_port_set_loopback_mode(tw_udp_port *u, int mode) {
  int err = tw__udp_check(u);
  if (err != 0) return err;
  if (mode != 0 && mode != 1) return TW_EINVAL;
  return uv_udp_set_multicast_loop(&u->h, mode);
}

int tw_udp_port_get_loopback_mode(tw_udp_port *u) {
  if (u != NULL && u->family == AF_INET6)
    return tw__udp_getsockopt(u, IPPROTO_IPV6, IPV6_MULTICAST_LOOP) > 0;
  return tw__udp_getsockopt(u, IPPROTO_IP, IP_MULTICAST_LOOP) > 0;
}

int tw_udp_port_set_outgoing_interface(tw_udp_port *u, const char *interface) {
  tw__inaddr sa;
  int err = tw__udp_check(u);
  if (err != 0) return err;
  if (interface != NULL && interface[0] == '\0') interface = NULL;
  if (interface != NULL && (tw__udp_sockaddr(interface, 0, &sa) != 0 ||
                            sa.sa.sa_family != u->family))
    return TW_EINVAL;
  return uv_udp_set_multicast_interface(&u->h, interface);
}

int tw_udp_port_get_outgoing_interface(tw_udp_port *u, char *buf,
                                       size_t size) {
  struct in_addr in;
  socklen_t len = sizeof(in);
  uv_os_fd_t fd;
  int err = tw__udp_check(u);
  if (err != 0) return err;
  if (buf == NULL || size < INET_ADDRSTRLEN) return TW_EINVAL;
  if (u->family != AF_INET) return TW_ENOTSUP;
  err = uv_fileno((const uv_handle_t *)&u->h, &fd);
  if (err != 0) return err;
  memset(&in, 0, sizeof(in));
  if (getsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &in, &len) != 0)
    return -errno;
  if (inet_ntop(AF_INET, &in, buf, (socklen_t)size) == NULL) return -errno;
  return 0;
}
