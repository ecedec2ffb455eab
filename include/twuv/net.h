/*
 * twuv/net.h - stream connections over TCP and UNIX sockets
 * (IReactorTCP.listenTCP/connectTCP, IReactorUNIX.listenUNIX/connectUNIX,
 * IListeningPort, IConnector), on libuv's uv_tcp_t and uv_pipe_t.
 *
 * Connections are transports (protocol.h); each one's protocol comes from
 * the factory given here. Listening ports and connectors belong to the
 * reactor: they are closed when the reactor shuts down (open connections
 * get connection_lost), and tw_reactor_free with sockets still open loses
 * no callback and leaks nothing (they are reactor children,
 * docs/design.md).
 *
 * Threads: loop thread only; other threads get TW_EWRONGTHREAD.
 * SIGPIPE: see docs/networking.md (a write to a closed peer never kills
 * the program).
 */
#ifndef TWUV_NET_H
#define TWUV_NET_H

#include "common.h"
#include "defer.h"
#include "protocol.h"
#include "reactor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tw_listening_port tw_listening_port;

/* Twisted's default listen backlog. */
#define TW_LISTEN_BACKLOG 50
/* Twisted's default connect timeout, seconds. */
#define TW_CONNECT_TIMEOUT 30.0

/*
 * tw_listen_tcp: listenTCP(port, factory, backlog, interface). port 0 picks
 * a free port (tw_listening_port_get_host tells which); backlog <= 0 means
 * TW_LISTEN_BACKLOG; interface NULL or "" means "0.0.0.0" (IPv4 only, as
 * Twisted); an IPv6 literal ("::", "::1") listens on IPv6. Calls the
 * factory's start_factory (do_start). Errors: TW_EINVAL (out, r or f NULL,
 * port outside 0..65535, interface not a numeric address), a
 * CannotListenError's libuv code (UV_EADDRINUSE, UV_EACCES, ...),
 * TW_ENOMEM, TW_ESHUTDOWN (reactor stopped for good), TW_EWRONGTHREAD.
 */
TW_EXTERN int tw_listen_tcp(tw_listening_port **out, tw_reactor *r, int port,
                            tw_factory *f, int backlog,
                            const char *interface);

/*
 * tw_listen_unix: listenUNIX(path, factory, backlog, mode). mode 0 means
 * 0666. A path longer than a sockaddr_un holds is TW_EINVAL (libuv 1.44
 * would truncate it silently). Other errors as tw_listen_tcp.
 */
TW_EXTERN int tw_listen_unix(tw_listening_port **out, tw_reactor *r,
                             const char *path, tw_factory *f, int backlog,
                             int mode);

/* tw_listening_port_get_host: getHost. 0, TW_EINVAL, TW_EWRONGTHREAD. */
TW_EXTERN int tw_listening_port_get_host(tw_listening_port *p,
                                         tw_address *out);

/*
 * tw_listening_port_stop: stopListening: stop accepting; *out (if out is
 * not NULL) is a Deferred firing with None once the socket is closed and
 * the factory's stop_factory has run. Open connections are not touched.
 * The port is freed after that: do not use p afterwards. Errors: TW_EINVAL,
 * TW_EWRONGTHREAD (a second stop: TW_EINVAL).
 */
TW_EXTERN int tw_listening_port_stop(tw_listening_port *p, tw_deferred **out);

/*
 * tw_connect_tcp: connectTCP(host, port, factory, timeout, bindAddress).
 * host is a name or a numeric address (names go through the reactor's
 * resolver, resolve.h); timeout <= 0 means TW_CONNECT_TIMEOUT; bind_address
 * may be NULL. The factory gets started_connecting, then either
 * build_protocol + the protocol's connection_made, or
 * client_connection_failed(reason: error.ConnectionRefusedError,
 * error.TimeoutError, DNSLookupError, ConnectError carrying the libuv
 * code); after a connection, client_connection_lost. Errors: TW_EINVAL,
 * TW_ENOMEM, TW_ESHUTDOWN, TW_EWRONGTHREAD.
 */
TW_EXTERN int tw_connect_tcp(tw_connector **out, tw_reactor *r,
                             const char *host, int port, tw_factory *f,
                             double timeout, const tw_address *bind_address);

/* tw_connect_unix: connectUNIX(path, factory, timeout). As tw_connect_tcp;
 * a path too long for a sockaddr_un is TW_EINVAL. */
TW_EXTERN int tw_connect_unix(tw_connector **out, tw_reactor *r,
                              const char *path, tw_factory *f,
                              double timeout);

/*
 * IConnector. stop_connecting: abandon a connection attempt in progress
 * (client_connection_failed(UserError) follows, from the loop);
 * TW_ENOTCONNECTING... see the implementation's doc. disconnect: drop the
 * connection or the attempt. connect: connect again (after a failure or a
 * loss: ReconnectingClientFactory's use). get_destination: the address it
 * connects to.
 */
TW_EXTERN int tw_connector_stop_connecting(tw_connector *c);
TW_EXTERN int tw_connector_disconnect(tw_connector *c);
TW_EXTERN int tw_connector_connect(tw_connector *c);
TW_EXTERN int tw_connector_get_destination(tw_connector *c, tw_address *out);

#ifdef __cplusplus
}
#endif
#endif /* TWUV_NET_H */
