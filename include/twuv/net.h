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
 * 0666 (set with chmod(2) before listening). An empty path, or one longer
 * than a sockaddr_un holds (107 bytes on Linux), is TW_EINVAL (libuv 1.44
 * would truncate it silently); an existing file is UV_EADDRINUSE (Twisted's
 * listenUNIX without wantPID does not remove it either). Other errors as
 * tw_listen_tcp.
 */
TW_EXTERN int tw_listen_unix(tw_listening_port **out, tw_reactor *r,
                             const char *path, tw_factory *f, int backlog,
                             int mode);

/* tw_listening_port_get_host: getHost. 0, TW_EINVAL, TW_EWRONGTHREAD. */
TW_EXTERN int tw_listening_port_get_host(tw_listening_port *p,
                                         tw_address *out);

/*
 * tw_listening_port_stop: stopListening: stop accepting; *out (if out is
 * not NULL; the caller's reference) is a Deferred firing with None once
 * the socket is closed and the factory's stop_factory has run (a UNIX
 * port's socket file is removed first, as Twisted's). Open connections are
 * not touched. The port is freed when its socket is closed: do not use p
 * after this call. Errors: TW_EINVAL (NULL, or a stop already made),
 * TW_ENOMEM, TW_EWRONGTHREAD.
 *
 * Lifetime: a port belongs to the reactor. The reactor's shutdown
 * (tw_reactor_stop) and tw_reactor_free stop and free the ports still
 * listening (stop_factory runs): a program that keeps a port pointer must
 * not use it after that.
 */
TW_EXTERN int tw_listening_port_stop(tw_listening_port *p, tw_deferred **out);

/*
 * tw_connect_tcp: connectTCP(host, port, factory, timeout, bindAddress).
 * host is a name or a numeric address (names go through the reactor's
 * resolver, resolve.h); timeout <= 0 means TW_CONNECT_TIMEOUT; bind_address
 * may be NULL (it is bound without SO_REUSEADDR, as Twisted's client: an
 * address in use fails the attempt with ConnectBindError(EADDRINUSE)).
 * The factory gets started_connecting, then either
 * build_protocol + the protocol's connection_made, or
 * client_connection_failed(reason: error.ConnectionRefusedError,
 * error.TimeoutError, DNSLookupError, TCPTimedOutError, NoRouteError,
 * ConnectBindError, or ConnectError, each carrying the libuv code), always
 * from the loop; after a connection, client_connection_lost (after the
 * protocol's connection_lost). A protocol the factory refuses (NULL)
 * closes the connection: client_connection_lost(ConnectionDone), as
 * Twisted's client does. Names resolve to their first IPv4 address, as
 * connectTCP's gethostbyname. A connector is returned on success
 * (lifetime below). Errors (nothing called, nothing kept): TW_EINVAL
 * (NULL, port outside 0..65535, host empty or 256 bytes or longer, timeout
 * NaN, bind_address not an IPv4/IPv6 numeric address), TW_ENOMEM,
 * TW_ESHUTDOWN, TW_EWRONGTHREAD.
 */
TW_EXTERN int tw_connect_tcp(tw_connector **out, tw_reactor *r,
                             const char *host, int port, tw_factory *f,
                             double timeout, const tw_address *bind_address);

/* tw_connect_unix: connectUNIX(path, factory, timeout). As tw_connect_tcp;
 * an empty path or one too long for a sockaddr_un is TW_EINVAL; a missing
 * socket file fails the attempt with a ConnectError carrying UV_ENOENT. */
TW_EXTERN int tw_connect_unix(tw_connector **out, tw_reactor *r,
                              const char *path, tw_factory *f,
                              double timeout);

/*
 * IConnector. A connector belongs to the reactor: it lives across
 * attempts (tw_connector_connect tries again after a failure or a loss, as
 * ReconnectingClientFactory does) and is freed by tw_reactor_free, or
 * earlier by tw_connector_free. The reactor's shutdown ends an attempt in
 * progress (client_connection_failed with a ConnectError) and refuses new
 * ones (TW_ESHUTDOWN); the connection itself is closed like every other
 * (client_connection_lost after the protocol's connection_lost).
 * Loop thread only (others: TW_EWRONGTHREAD); c NULL: TW_EINVAL.
 *
 * tw_connector_stop_connecting: stopConnecting: abandon the attempt in
 * progress (its name lookup or connect); client_connection_failed(UserError)
 * follows from the loop, never from inside this call. TW_ENOTCONN when not
 * connecting (Twisted's NotConnectingError).
 *
 * tw_connector_disconnect: disconnect: stop connecting, or lose the
 * connection (tw_transport_lose_connection), or nothing. Returns 0.
 *
 * tw_connector_connect: connect: a new attempt (after a failure or a loss;
 * from the factory's client_connection_failed/_lost too). TW_EBUSY while
 * connecting or connected (Twisted's RuntimeError "can't connect in this
 * state"), TW_ESHUTDOWN after the reactor's shutdown or tw_connector_free,
 * TW_ENOMEM, a libuv code.
 *
 * tw_connector_get_destination: getDestination: the address given to
 * tw_connect_tcp (host as given: a name stays a name, cut to
 * TW_ADDRESS_HOST_MAX - 1 bytes) or tw_connect_unix.
 */
TW_EXTERN int tw_connector_stop_connecting(tw_connector *c);
TW_EXTERN int tw_connector_disconnect(tw_connector *c);
TW_EXTERN int tw_connector_connect(tw_connector *c);
TW_EXTERN int tw_connector_get_destination(tw_connector *c, tw_address *out);

/*
 * tw_connector_free: the program is done with c (twuv's; Twisted's
 * connector goes with its last reference): the attempt is stopped or the
 * connection lost (as tw_connector_disconnect), the factory still hears
 * the end (client_connection_failed / _lost), then c is freed - at once
 * when idle, else after that callback. Do not use c after this call; one
 * may make it from the factory's own callbacks. A connector never freed
 * goes with the reactor. Returns 0, TW_EINVAL (NULL, freed already),
 * TW_EWRONGTHREAD.
 */
TW_EXTERN int tw_connector_free(tw_connector *c);

#ifdef __cplusplus
}
#endif
#endif /* TWUV_NET_H */
