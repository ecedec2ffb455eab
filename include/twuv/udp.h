/*
 * twuv/udp.h - UDP (IReactorUDP.listenUDP, IReactorMulticast.listenMulticast,
 * DatagramProtocol, IUDPTransport, IMulticastTransport), on libuv's
 * uv_udp_t.
 *
 * As in Twisted there are no connections and no factory: one protocol per
 * socket, and the listening port is the protocol's transport. The protocol
 * is a struct the user embeds (first member, or found back with a
 * container_of) with a const table of callbacks, as tw_protocol:
 *
 *     typedef struct echo { tw_datagram_protocol base; long n; } echo;
 *     static tw_failure *echo_received(tw_datagram_protocol *p,
 *                                      const char *data, size_t len,
 *                                      const tw_address *from) {
 *       ((echo *)p)->n++;
 *       tw_udp_port_write(p->transport, data, len, from);
 *       return NULL;
 *     }
 *     static const tw_datagram_protocol_ops echo_ops = {
 *         .datagram_received = echo_received};
 *     ...
 *     echo e;
 *     tw_udp_port *port;
 *     tw_datagram_protocol_init(&e.base, &echo_ops);
 *     tw_listen_udp(&port, reactor, 8000, &e.base, NULL, 0);
 *
 * The calls a port makes on its protocol, in order:
 *   start_protocol          from inside tw_listen_udp, once the socket is
 *                           bound (p->transport set), when the protocol was
 *                           on no other port (Twisted's doStart/numPorts)
 *   datagram_received*      one call per datagram; data and addr borrowed
 *                           for the call only
 *   connection_refused      a connected port learnt that an earlier
 *                           datagram was refused (ICMP port unreachable)
 *   stop_protocol           after the socket is closed (stop, reactor
 *                           shutdown or free), never from inside the call
 *                           that stopped it; p->transport is NULL by then,
 *                           and the protocol is on no other port
 *
 * Ports belong to the reactor, as TCP ports do (net.h): the reactor's
 * shutdown and tw_reactor_free close the ports still open (stop_protocol
 * runs), and nothing leaks.
 *
 * Threads: loop thread only; other threads get TW_EWRONGTHREAD (the yes/no
 * getters answer 0). To send from a worker thread, hand the bytes to the
 * loop with tw_reactor_call_from_thread.
 *
 * Error codes: libuv's pass through (UV_EMSGSIZE is -EMSGSIZE,
 * UV_EAGAIN -EAGAIN, ... on POSIX: compare with the negated <errno.h>
 * value, this header does not need <uv.h>).
 */
#ifndef TWUV_UDP_H
#define TWUV_UDP_H

#include <stddef.h>

#include "common.h"
#include "defer.h"
#include "failure.h"
#include "protocol.h"
#include "reactor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tw_udp_port tw_udp_port;
typedef struct tw_datagram_protocol tw_datagram_protocol;

/* Twisted's default maxPacketSize. */
#define TW_UDP_MAX_PACKET_SIZE 8192
/* The most a port reads of one datagram (the reactor's read buffer): no
 * UDP payload is larger over IPv4 or IPv6 without jumbograms. */
#define TW_UDP_MAX_PACKET_LIMIT 65536

/*
 * A datagram protocol's callbacks; any may be NULL (nothing happens, as
 * with DatagramProtocol's own methods).
 */
typedef struct tw_datagram_protocol_ops {
  /* startProtocol: the protocol was connected to its first port. */
  void (*start_protocol)(tw_datagram_protocol *p);
  /* stopProtocol: its last port is closed (p->transport is NULL). */
  void (*stop_protocol)(tw_datagram_protocol *p);
  /*
   * datagramReceived(datagram, addr): len bytes (0 for an empty datagram)
   * from addr (a UDP IPv4Address/IPv6Address: numeric host and port). Both
   * are borrowed for the call: every port of a reactor reads into the
   * reactor's one read buffer. A datagram longer than the port's
   * max_packet_size arrives cut to max_packet_size bytes, the rest lost,
   * as Twisted's recvfrom(maxPacketSize) does (tw_udp_port_truncated
   * counts them). Return NULL, or a failure (ownership passes to the
   * port): it is logged (TW_LOG_ERROR) and the port goes on, as Twisted
   * logs what datagramReceived raised.
   */
  tw_failure *(*datagram_received)(tw_datagram_protocol *p, const char *data,
                                   size_t len, const tw_address *addr);
  /*
   * connectionRefused: only on a connected port (tw_udp_port_connect), an
   * ICMP error for an earlier datagram: from the loop when a read reports
   * it, or from inside tw_udp_port_write when the send does (then the
   * write also returns UV_ECONNREFUSED), as Twisted calls it from write.
   */
  void (*connection_refused)(tw_datagram_protocol *p);
} tw_datagram_protocol_ops;

/*
 * The protocol struct the user embeds. Set ops with
 * tw_datagram_protocol_init; the other fields are read-only for the user.
 */
struct tw_datagram_protocol {
  const tw_datagram_protocol_ops *ops;
  /* self.transport: the port, from listen until the port is stopped
   * (NULL again before stop_protocol, as Twisted's doStop). */
  tw_udp_port *transport;
  /* numPorts: the ports it is on (start_protocol on the first, stop_protocol
   * after the last). A protocol is on one port at a time (Twisted asserts
   * transport is None); after a stop it may listen again. */
  int num_ports;
  void *data; /* the user's, never touched by twuv */
};

/* tw_datagram_protocol_init: zero p and set its callbacks (ops must outlive
 * it). 0 or TW_EINVAL (NULL). Any thread. The protocol must stay valid
 * while it is on a port: until its stop_protocol has returned (the port
 * writes p->transport and num_ports just before it). */
TW_EXTERN int tw_datagram_protocol_init(tw_datagram_protocol *p,
                                        const tw_datagram_protocol_ops *ops);

/*
 * tw_listen_udp: listenUDP(port, protocol, interface, maxPacketSize): bind
 * a UDP socket and connect p to it (start_protocol runs before this
 * returns; *out is set first, so start_protocol may read it), then read
 * datagrams. port 0 picks a free port (tw_udp_port_get_host tells which).
 * interface NULL or "" means IPv4's "0.0.0.0", as Twisted; an IPv6 literal
 * ("::1", "::") makes an IPv6 port. max_packet_size 0 means
 * TW_UDP_MAX_PACKET_SIZE (8192); above TW_UDP_MAX_PACKET_LIMIT it is that
 * limit. Errors, nothing kept and nothing called: TW_EINVAL (out, r or p
 * NULL, port outside 0..65535, interface not a numeric IPv4/IPv6 address -
 * Twisted's InvalidAddressError -, max_packet_size negative), TW_EBUSY (p
 * is on a port already), a CannotListenError's libuv code (UV_EADDRINUSE,
 * UV_EACCES, UV_EADDRNOTAVAIL, ...), TW_ENOMEM, TW_ESHUTDOWN (the reactor
 * stopped for good), TW_EWRONGTHREAD.
 */
TW_EXTERN int tw_listen_udp(tw_udp_port **out, tw_reactor *r, int port,
                            tw_datagram_protocol *p, const char *interface,
                            int max_packet_size);

/*
 * tw_listen_multicast: listenMulticast(port, protocol, interface,
 * maxPacketSize, listenMultiple): tw_listen_udp for a port that will join
 * groups; listen_multiple 1 lets several sockets bind the same address
 * and port (SO_REUSEADDR, as Twisted's; libuv 1.44 sets it). Every UDP
 * port takes the multicast calls below; this differs from tw_listen_udp
 * only by listen_multiple. To receive a group's datagrams the port must be
 * bound to the group's address or the any address ("0.0.0.0"), not to a
 * unicast one (the kernel matches the destination address). Errors as
 * tw_listen_udp.
 */
TW_EXTERN int tw_listen_multicast(tw_udp_port **out, tw_reactor *r, int port,
                                  tw_datagram_protocol *p,
                                  const char *interface, int max_packet_size,
                                  int listen_multiple);

/*
 * tw_udp_port_write: write(datagram, addr): send len bytes as one datagram
 * to addr, now (one sendmsg through uv_udp_try_send: nothing is queued or
 * copied, data is not kept). addr's host must be a numeric address of the
 * port's family (or "<broadcast>", 255.255.255.255, on an IPv4 port) and
 * its port 1..65535; addr->family may be TW_ADDRESS_NONE, IPV4 or IPV6 and
 * is not trusted over host. On a connected port addr is NULL (or the
 * address connected to). Returns 0 when the kernel took the datagram, else
 * a code and the datagram is not sent, as Twisted's write raises:
 *   TW_EINVAL            p NULL, data NULL with len > 0, addr a hostname or
 *                        of the other family, port out of range (Twisted's
 *                        InvalidAddressError)
 *   UV_EDESTADDRREQ      addr NULL on a port that is not connected
 *   UV_EISCONN           a connected port given another address (Twisted
 *                        asserts)
 *   UV_EMSGSIZE          too long for a datagram (MessageLengthError)
 *   UV_EAGAIN            the socket's send buffer is full (also ENOBUFS):
 *                        Twisted's write raises it too (sendto's
 *                        BlockingIOError; udp.py catches only EINTR,
 *                        EMSGSIZE and ECONNREFUSED). Retry later or drop.
 *   UV_ECONNREFUSED      connected port: an earlier datagram was refused;
 *                        connection_refused has been called (Twisted calls
 *                        it and returns None; twuv also says this datagram
 *                        was not sent)
 *   TW_ENOTCONN          the port is stopping (stop was called)
 *   TW_EWRONGTHREAD, or another libuv code (UV_ENETUNREACH, UV_EACCES for
 *   a broadcast without set_broadcast_allowed, ...).
 * EINTR is retried inside libuv, as Twisted retries it.
 */
TW_EXTERN int tw_udp_port_write(tw_udp_port *p, const void *data, size_t len,
                                const tw_address *addr);

/*
 * tw_udp_port_write_sequence: writeSequence(seq, addr): the n pieces as one
 * datagram (sendmsg with n iovecs: Twisted joins them). Errors as
 * tw_udp_port_write; TW_EINVAL also for bufs NULL with n > 0, a piece with
 * base NULL and len > 0, or more than 1024 pieces (IOV_MAX).
 */
TW_EXTERN int tw_udp_port_write_sequence(tw_udp_port *p, const tw_iovec *bufs,
                                         size_t n, const tw_address *addr);

/*
 * tw_udp_port_connect: connect(host, port): "connect" the socket to one
 * peer: it then receives only that peer's datagrams, sends with addr NULL,
 * and hears of refused datagrams (connection_refused). host must be a
 * numeric IPv4/IPv6 address (Twisted requires an IP; resolve a name
 * first with tw_reactor_resolve) of the port's family. Returns 0,
 * TW_EINVAL (NULL, host not numeric - InvalidAddressError - or of the
 * other family, port outside 1..65535), TW_EBUSY (connected already:
 * Twisted's RuntimeError "reconnecting is not currently supported"),
 * TW_ENOTCONN (stopping), a libuv code from connect(2); nothing changed on
 * error. TW_EWRONGTHREAD.
 */
TW_EXTERN int tw_udp_port_connect(tw_udp_port *p, const char *host, int port);

/* tw_udp_port_get_host: getHost: the bound address (type TW_ADDRESS_UDP;
 * the real port when 0 was asked). 0, TW_EINVAL, TW_EWRONGTHREAD. Still
 * answers between stop and the port's close. */
TW_EXTERN int tw_udp_port_get_host(tw_udp_port *p, tw_address *out);

/*
 * tw_udp_port_stop: stopListening: stop reading and close the socket;
 * stop_protocol runs from the loop once it is closed (never from inside
 * this call: Twisted's test_stopProtocolScheduling), then *out (if out is
 * not NULL; the caller's reference) fires with None. The port is freed
 * when closed: do not use p after this call (p->transport of its protocol
 * is set to NULL before stop_protocol). May be called from the protocol's
 * own callbacks, start_protocol included. Errors: TW_EINVAL (NULL, a stop
 * already made), TW_ENOMEM, TW_EWRONGTHREAD.
 *
 * Lifetime: the reactor's shutdown (tw_reactor_stop) and tw_reactor_free
 * close the ports still open, as stop does without a Deferred.
 */
TW_EXTERN int tw_udp_port_stop(tw_udp_port *p, tw_deferred **out);

/*
 * tw_udp_port_truncated: how many datagrams arrived longer than the port's
 * max_packet_size (and were delivered cut). twuv only. 0 for NULL or off
 * the loop thread.
 */
TW_EXTERN unsigned long tw_udp_port_truncated(tw_udp_port *p);

/*
 * Broadcast: setBroadcastAllowed / getBroadcastAllowed (SO_BROADCAST, off
 * by default). set: enabled 0 or 1 (other values: TW_EINVAL); returns 0,
 * TW_EINVAL, TW_ENOTCONN (stopping), a libuv code, TW_EWRONGTHREAD.
 * get: 1 or 0 (0 also for misuse).
 */
TW_EXTERN int tw_udp_port_set_broadcast_allowed(tw_udp_port *p, int enabled);
TW_EXTERN int tw_udp_port_get_broadcast_allowed(tw_udp_port *p);

/*
 * Multicast (IMulticastTransport). Every UDP port takes them (Twisted's
 * are on listenMulticast's ports only). Addresses are numeric: Twisted's
 * joinGroup/leaveGroup/setOutgoingInterface resolve names and return a
 * Deferred; here the call is the setsockopt itself, done when it returns,
 * so it returns a code (resolve a name first with tw_reactor_resolve).
 *
 * tw_udp_port_join_group / _leave_group: joinGroup(addr, interface) /
 * leaveGroup: group an IPv4 or IPv6 multicast address; interface the
 * local address of the interface to join on (IPv4), or NULL / "" for the
 * kernel's choice (INADDR_ANY, Twisted's ""). For IPv6 the interface is
 * an IPv6 literal whose scope ("::%lo") names it. Returns 0, TW_EINVAL (p
 * or group NULL, an address not numeric), a libuv code where Twisted
 * fails with MulticastJoinError (a group that is not multicast:
 * UV_EINVAL; leaving a group not joined: UV_EADDRNOTAVAIL), TW_ENOTCONN
 * (stopping), TW_EWRONGTHREAD.
 *
 * tw_udp_port_set_ttl / _get_ttl: setTTL/getTTL, the multicast TTL (IPv4)
 * or hop limit (IPv6), 1 by default. set: 0..255 (TW_EINVAL otherwise,
 * as Twisted's struct.pack("B"));
 * get: the TTL, or a negative code.
 *
 * tw_udp_port_set_loopback_mode / _get_loopback_mode: setLoopbackMode /
 * getLoopbackMode (IP_MULTICAST_LOOP, on by default): whether this host's
 * own members of a group get what this socket sends to it. set: mode 0 or
 * 1; get: 1 or 0 (0 also for misuse).
 *
 * tw_udp_port_set_outgoing_interface: setOutgoingInterface(addr): the
 * interface multicast datagrams leave by, given by its local IPv4 address
 * ("127.0.0.1"), or for IPv6 a literal with a scope; NULL or "" restores
 * the kernel's choice. 0, TW_EINVAL, a libuv code, TW_ENOTCONN,
 * TW_EWRONGTHREAD.
 * tw_udp_port_get_outgoing_interface: getOutgoingInterface: the interface's
 * IPv4 address as a string into buf ("0.0.0.0" while the kernel chooses),
 * NUL-terminated; size must hold it (16 bytes always do: TW_EINVAL
 * otherwise). IPv6 ports: TW_ENOTSUP (Twisted's is IPv4 only). 0 or a
 * code.
 */
TW_EXTERN int tw_udp_port_join_group(tw_udp_port *p, const char *group,
                                     const char *interface);
TW_EXTERN int tw_udp_port_leave_group(tw_udp_port *p, const char *group,
                                      const char *interface);
TW_EXTERN int tw_udp_port_set_ttl(tw_udp_port *p, int ttl);
TW_EXTERN int tw_udp_port_get_ttl(tw_udp_port *p);
TW_EXTERN int tw_udp_port_set_loopback_mode(tw_udp_port *p, int mode);
TW_EXTERN int tw_udp_port_get_loopback_mode(tw_udp_port *p);
TW_EXTERN int tw_udp_port_set_outgoing_interface(tw_udp_port *p,
                                                 const char *interface);
TW_EXTERN int tw_udp_port_get_outgoing_interface(tw_udp_port *p, char *buf,
                                                 size_t size);

#ifdef __cplusplus
}
#endif
#endif /* TWUV_UDP_H */
