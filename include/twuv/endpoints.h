/*
 * twuv/endpoints.h - stream endpoints (twisted.internet.endpoints):
 * TCP4/TCP6/UNIX server and client endpoints, connectProtocol, and the
 * endpoint description strings of serverFromString / clientFromString
 * ("tcp:8080:interface=127.0.0.1", "unix:path=/run/s:timeout=5"), with a
 * registry through which a library adds its own prefixes (Twisted's
 * IStreamServerEndpointStringParser / IStreamClientEndpointStringParser-
 * WithReactor plugins).
 *
 * An endpoint is a small value: what to listen on or connect to, and the
 * reactor. tw_endpoint_listen / tw_endpoint_connect may be called any
 * number of times; each call copies what it needs, so the endpoint may be
 * freed as soon as they return.
 *
 *     tw_endpoint *ep;
 *     tw_failure *why;
 *     if (tw_server_from_string(&ep, r, "tcp:8080:interface=127.0.0.1",
 *                               &why) != 0) {
 *       fprintf(stderr, "bad endpoint: %s\n", tw_failure_message(why));
 *       tw_failure_unref(why);
 *     }
 *
 * Threads: making, inspecting, parsing and freeing endpoints is
 * thread-safe (an endpoint is not shared state: one thread at a time per
 * endpoint); tw_endpoint_listen / _connect / tw_connect_protocol run on the
 * reactor's loop thread (elsewhere: TW_EWRONGTHREAD), and the Deferreds
 * they give belong to that thread. The parser registry is thread-safe.
 *
 * Where this departs from Twisted 22.4 (docs/porting.md, "Endpoints"):
 * values Twisted would only reject when listening or connecting (a port
 * outside 0..65535, an interface or bindAddress that is not a numeric
 * address, a UNIX path too long for a socket) are rejected when the
 * endpoint is made; arguments Twisted drops silently (a third positional
 * argument of a client description, a positional host/port/path given as
 * a keyword too) are errors; "lockfile"/"wantPID"/"checkPID" are parsed and
 * checked, but twuv makes no PID lock files.
 */
#ifndef TWUV_ENDPOINTS_H
#define TWUV_ENDPOINTS_H

#include <stddef.h>

#include "common.h"
#include "defer.h"
#include "failure.h"
#include "net.h"
#include "protocol.h"
#include "reactor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tw_endpoint tw_endpoint;

/* ---- errors ---------------------------------------------------------------- */

/*
 * error.ConnectingCancelledError(address): tw_endpoint_connect's Deferred
 * was cancelled before the connection was made. The failure's payload is a
 * const tw_address * (the destination, as the connector's
 * get_destination; NULL out of memory), its code TW_ECANCELLED, its
 * message the address as tw_address_format writes it (str() of Twisted's
 * exception).
 */
TW_EXTERN extern const tw_error_type TW_CONNECTING_CANCELLED_ERROR;
/* error.NoProtocol: the factory's build_protocol returned NULL. */
TW_EXTERN extern const tw_error_type TW_NO_PROTOCOL;

/* ---- kinds and what an endpoint holds --------------------------------------- */

typedef enum tw_endpoint_kind {
  TW_ENDPOINT_CUSTOM = 0,      /* tw_endpoint_new (a library's own) */
  TW_ENDPOINT_TCP4_SERVER = 1, /* TCP4ServerEndpoint */
  TW_ENDPOINT_TCP6_SERVER = 2, /* TCP6ServerEndpoint */
  TW_ENDPOINT_UNIX_SERVER = 3, /* UNIXServerEndpoint */
  TW_ENDPOINT_TCP4_CLIENT = 4, /* TCP4ClientEndpoint */
  TW_ENDPOINT_TCP6_CLIENT = 5, /* TCP6ClientEndpoint */
  TW_ENDPOINT_UNIX_CLIENT = 6  /* UNIXClientEndpoint */
} tw_endpoint_kind;

/*
 * What an endpoint was made with (the attributes Twisted's tests look at:
 * _port, _interface, _backlog, _mode, _host, _timeout, _bindAddress, _path,
 * _wantPID, _checkPID). Strings are borrowed from the endpoint. Fields that
 * do not apply to the kind are 0 / NULL.
 */
typedef struct tw_endpoint_info {
  int kind;          /* tw_endpoint_kind */
  const char *host;  /* servers: the interface ("" = all); clients: host */
  const char *path;  /* UNIX: the socket's path */
  int port;          /* TCP */
  int backlog;       /* servers (the value used: TW_LISTEN_BACKLOG for 0) */
  int mode;          /* UNIX servers: the socket file's mode */
  double timeout;    /* clients, seconds */
  int has_bind_address;
  tw_address bind_address; /* TCP clients, when has_bind_address */
  int lock_pid;      /* UNIX: wantPID (server) / checkPID (client) */
} tw_endpoint_info;

/* ---- constructors -------------------------------------------------------- */

/*
 * tw_tcp4_server_endpoint_new: TCP4ServerEndpoint(reactor, port, backlog,
 * interface). port 0..65535 (0: any free port); backlog <= 0 means
 * TW_LISTEN_BACKLOG; interface NULL or "" listens on every IPv4 address,
 * otherwise it must be a numeric IPv4 or IPv6 address (an IPv6 one listens
 * on IPv6, as Twisted's). Strings are copied.
 * tw_tcp6_server_endpoint_new: TCP6ServerEndpoint: the same, but interface
 * NULL means "::".
 * Returns 0, TW_EINVAL (out or r NULL, port out of range, interface not
 * numeric), TW_ENOMEM. Any thread.
 */
TW_EXTERN int tw_tcp4_server_endpoint_new(tw_endpoint **out, tw_reactor *r,
                                          int port, int backlog,
                                          const char *interface);
TW_EXTERN int tw_tcp6_server_endpoint_new(tw_endpoint **out, tw_reactor *r,
                                          int port, int backlog,
                                          const char *interface);

/*
 * tw_unix_server_endpoint_new: UNIXServerEndpoint(reactor, address,
 * backlog, mode). mode is the socket file's permission bits (0..07777;
 * 0 means 0666, tw_listen_unix's default); backlog as above. The path must
 * fit a sockaddr_un (at most TW_ADDRESS_PATH_MAX - 1 bytes, not empty).
 * Returns 0, TW_EINVAL, TW_ENOMEM. Any thread.
 */
TW_EXTERN int tw_unix_server_endpoint_new(tw_endpoint **out, tw_reactor *r,
                                          const char *path, int backlog,
                                          int mode);

/*
 * tw_tcp4_client_endpoint_new: TCP4ClientEndpoint(reactor, host, port,
 * timeout, bindAddress). host: a name (resolved by tw_connect_tcp) or a
 * numeric address; port 0..65535; timeout in seconds, <= 0 means
 * TW_CONNECT_TIMEOUT; bind_address NULL or a numeric IPv4/IPv6 address
 * (copied; its port is used too). Returns 0, TW_EINVAL (NULLs, empty
 * host, port out of range, timeout NaN, bind_address not an IPv4/IPv6
 * numeric address), TW_ENOMEM. Any thread.
 * tw_tcp6_client_endpoint_new: TCP6ClientEndpoint: host is an IPv6 literal,
 * or a name resolved with tw_reactor_resolve whose first IPv6 address is
 * used (none: the Deferred fails with TW_DNS_LOOKUP_ERROR). Cancelling
 * while the name is resolved fails it with CancelledError, as Twisted's
 * (its lookup is a deferToThread).
 */
TW_EXTERN int tw_tcp4_client_endpoint_new(tw_endpoint **out, tw_reactor *r,
                                          const char *host, int port,
                                          double timeout,
                                          const tw_address *bind_address);
TW_EXTERN int tw_tcp6_client_endpoint_new(tw_endpoint **out, tw_reactor *r,
                                          const char *host, int port,
                                          double timeout,
                                          const tw_address *bind_address);

/*
 * tw_unix_client_endpoint_new: UNIXClientEndpoint(reactor, path, timeout).
 * Path and timeout as above. Returns 0, TW_EINVAL, TW_ENOMEM. Any thread.
 */
TW_EXTERN int tw_unix_client_endpoint_new(tw_endpoint **out, tw_reactor *r,
                                          const char *path, double timeout);

/*
 * A library's own endpoint kind (what a parser registered below returns for
 * its prefix, e.g. TLS over TCP). listen / connect have
 * tw_endpoint_listen's / _connect's contract: on 0, *out is a Deferred the
 * caller owns; either may be NULL (the endpoint does not do that: the call
 * returns TW_EINVAL). connect counts the factory in and out with
 * tw_factory_do_start / _do_stop around its use, as every transport does
 * (tw_connect_protocol's one-shot factory is freed by its stop, or when the
 * Deferred fires if it was never started). destroy, if not NULL, runs once
 * from tw_endpoint_free with data. ops must outlive the endpoint.
 */
typedef struct tw_endpoint_ops {
  int (*listen)(tw_endpoint *ep, tw_factory *f, tw_deferred **out);
  int (*connect)(tw_endpoint *ep, tw_factory *f, tw_deferred **out);
  void (*destroy)(void *data);
} tw_endpoint_ops;

/*
 * tw_endpoint_new: an endpoint of the caller's kind (TW_ENDPOINT_CUSTOM)
 * on reactor r with ops and data (read back with tw_endpoint_data). Returns
 * 0, TW_EINVAL (out, r or ops NULL), TW_ENOMEM (destroy is then not
 * called). Any thread.
 */
TW_EXTERN int tw_endpoint_new(tw_endpoint **out, tw_reactor *r,
                              const tw_endpoint_ops *ops, void *data);

/* tw_endpoint_data: the data given to tw_endpoint_new (NULL for NULL or a
 * built-in kind). tw_endpoint_reactor: the endpoint's reactor (NULL for
 * NULL). Any thread. */
TW_EXTERN void *tw_endpoint_data(const tw_endpoint *ep);
TW_EXTERN tw_reactor *tw_endpoint_reactor(const tw_endpoint *ep);

/*
 * tw_endpoint_get_info: what ep was made with, into *out (strings borrowed
 * from ep). Returns 0 or TW_EINVAL (NULL). Any thread.
 */
TW_EXTERN int tw_endpoint_get_info(const tw_endpoint *ep,
                                   tw_endpoint_info *out);

/* tw_endpoint_free: free ep (NULL is ignored). Listening ports and
 * connections made from it are not touched. Any thread. */
TW_EXTERN void tw_endpoint_free(tw_endpoint *ep);

/* ---- using endpoints ------------------------------------------------------ */

/*
 * tw_endpoint_listen: IStreamServerEndpoint.listen(factory). *out is a new
 * Deferred (the caller's reference) that fires with the tw_listening_port *
 * (a borrowed value: the port belongs to the reactor until
 * tw_listening_port_stop), or fails with CannotListenError
 * (TW_CANNOT_LISTEN_ERROR, the libuv code, Twisted's message "Couldn't
 * listen on 127.0.0.1:80: address already in use."), or another failure
 * of tw_listen_*'s code. A built-in endpoint fires it before returning, as
 * Twisted's (defer.execute). The factory must outlive the port.
 * Returns 0, TW_EINVAL (NULL, or ep is a client endpoint), TW_ENOMEM,
 * TW_EWRONGTHREAD (nothing done).
 */
TW_EXTERN int tw_endpoint_listen(tw_endpoint *ep, tw_factory *f,
                                 tw_deferred **out);

/*
 * tw_endpoint_connect: IStreamClientEndpoint.connect(factory), with
 * _WrappingFactory's semantics. *out is a new Deferred (the caller's
 * reference) that fires with the connected tw_protocol * (a borrowed value:
 * the protocol belongs to its connection) after the protocol's
 * connection_made has run; or fails with the reason the connection attempt
 * failed (client_connection_failed's: error.ConnectionRefusedError,
 * error.TimeoutError, DNSLookupError, ConnectError, ...), with NoProtocol
 * (TW_NO_PROTOCOL) when the factory's build_protocol returns NULL, or with
 * ConnectingCancelledError when cancelled before the connection is made
 * (tw_deferred_cancel: the attempt is abandoned - connector
 * stopConnecting; cancelled from inside the protocol's connection_made,
 * the new connection is aborted). The factory's start_factory / stop_factory run around
 * the attempt (doStart/doStop pass through), and the protocol's callbacks
 * are its own (a half-closeable protocol stays half-closeable). The
 * factory must outlive the connection.
 * Returns 0, TW_EINVAL (NULL, or ep is a server endpoint), TW_ENOMEM,
 * TW_EWRONGTHREAD (nothing done). Other errors of tw_connect_* come as a
 * failed Deferred, as Twisted's defer.fail().
 */
TW_EXTERN int tw_endpoint_connect(tw_endpoint *ep, tw_factory *f,
                                  tw_deferred **out);

/*
 * tw_connect_protocol: connectProtocol(endpoint, protocol): connect ep and
 * use p (the caller's, initialised with tw_protocol_init) for the
 * connection, without a factory of the caller's. *out as
 * tw_endpoint_connect's; it fires with p. If the attempt fails, p was never
 * used and stays the caller's; once connected, p is the connection's until
 * its connection_lost (then p->dealloc, if set). Errors as
 * tw_endpoint_connect, and TW_EINVAL for p NULL.
 */
TW_EXTERN int tw_connect_protocol(tw_endpoint *ep, tw_protocol *p,
                                  tw_deferred **out);

/* ---- description strings ---------------------------------------------------- */

/* Descriptions longer than this are refused (the parser is quadratic in
 * the number of keywords; real descriptions are under 200 bytes). */
#define TW_ENDPOINT_DESCRIPTION_MAX 16384

/*
 * tw_server_from_string: serverFromString(reactor, description). The
 * grammar is Twisted's: arguments separated by ':', "name=value" for
 * keywords ('=' inside a value needs no escape), a backslash escapes the
 * next character ("unix:/tmp/a\:b"); the first positional argument is the
 * prefix. Built-in prefixes, matched exactly (lower case) as Twisted does:
 *   tcp:PORT[:INTERFACE[:BACKLOG]]       keywords port, interface, backlog
 *   tcp6:PORT[:BACKLOG[:INTERFACE]]      (sic: Twisted's order), same
 *                                        keywords; matched in any case
 *   unix:ADDRESS[:MODE[:BACKLOG[:LOCKFILE]]]  keywords address, mode
 *                                        (octal, default 666), backlog,
 *                                        lockfile (an int, default 1)
 * Numbers follow Python's int() (surrounding whitespace, a sign, '_'
 * between digits; mode also a "0o" prefix). Other prefixes go to the
 * parsers registered below, matched in any case.
 *
 * Returns 0 and sets *out (and *error to NULL, when error is not NULL), or
 * a negative code, *out untouched, and - when error is not NULL - *error a
 * new failure (the caller unrefs it) whose type is the exception Twisted
 * raises and whose message names the problem:
 *   TW_EINVAL  ValueError ("Unknown endpoint type: 'ftl'", "port: invalid
 *              literal for int() with base 10: 'x'", "port '70000' out of
 *              range 0-65535"; also for out, r or description NULL),
 *              TypeError ("tcp: got an unexpected keyword argument 'foo'",
 *              "tcp: missing required argument 'port'", "tcp: takes at
 *              most 3 positional arguments (4 given)", "tcp: got multiple
 *              values for argument 'port'"), RuntimeError (a description
 *              that ends in a lone backslash: Twisted's tokenizer raises
 *              StopIteration);
 *   TW_ENOMEM  MemoryError;
 *   or what a registered parser returned.
 * Any thread.
 */
TW_EXTERN int tw_server_from_string(tw_endpoint **out, tw_reactor *r,
                                    const char *description,
                                    tw_failure **error);

/*
 * tw_client_from_string: clientFromString(reactor, description). The
 * prefix is matched in any case. Built-in:
 *   tcp:[HOST[:PORT]]   keywords host, port, timeout (an int, seconds),
 *                       bindAddress (a numeric address: bind to it, port 0)
 *                       - "tcp:h:80", "tcp:host=h:port=80", "tcp:h:port=80",
 *                       "tcp:host=h:80"
 *   unix:[PATH]         keywords path, timeout, lockfile (an int),
 *                       checkPID (any string; non-empty is true)
 * Errors and *error as tw_server_from_string. Any thread.
 */
TW_EXTERN int tw_client_from_string(tw_endpoint **out, tw_reactor *r,
                                    const char *description,
                                    tw_failure **error);

/*
 * A parsed description (Twisted's _parse): the prefix (the first
 * positional argument, or NULL when there is none), the other positional
 * arguments in order, and the keywords - each name once, at the place it
 * first appeared, with the last value given (a Python dict's update
 * order). Everything is unescaped and NUL-terminated.
 */
typedef struct tw_endpoint_kwarg {
  const char *name;
  const char *value;
} tw_endpoint_kwarg;

typedef struct tw_endpoint_args {
  const char *prefix;
  size_t nargs;
  const char *const *args;
  size_t nkwargs;
  const tw_endpoint_kwarg *kwargs;
} tw_endpoint_args;

/*
 * tw_endpoint_parse: _parse(description) into *out, one allocation freed
 * with tw_endpoint_args_free. Returns 0, TW_EINVAL (NULL, too long, a lone
 * trailing backslash; *error as above), TW_ENOMEM. Any thread.
 */
TW_EXTERN int tw_endpoint_parse(tw_endpoint_args **out,
                                const char *description, tw_failure **error);
TW_EXTERN void tw_endpoint_args_free(tw_endpoint_args *a);

/* tw_endpoint_args_get: the value of keyword name, or NULL. */
TW_EXTERN const char *tw_endpoint_args_get(const tw_endpoint_args *a,
                                           const char *name);

/*
 * tw_endpoint_quote: quoteStringArgument(argument): argument with '\' and
 * ':' escaped by a backslash, into buf like snprintf (NUL-terminated,
 * truncated to size). Returns the length needed (without the NUL), or
 * TW_EINVAL (argument NULL, buf NULL with size > 0). Thread-safe.
 */
TW_EXTERN int tw_endpoint_quote(const char *argument, char *buf,
                                size_t size);

/*
 * A parser for a prefix of the caller's: Twisted's plugin's
 * parseStreamServer(reactor, *args, **kwargs) / parseStreamClient(...).
 * args->prefix is the prefix as written. On success it returns 0 with
 * *out set; on failure a negative code and, when error is not NULL, a
 * failure in *error (tw_failure_new(&TW_VALUE_ERROR, TW_EINVAL, ...)).
 */
typedef int (*tw_endpoint_parser_fn)(tw_endpoint **out, tw_reactor *r,
                                     const tw_endpoint_args *args, void *arg,
                                     tw_failure **error);

#define TW_ENDPOINT_PREFIX_MAX 31 /* bytes in a registered prefix */
#define TW_ENDPOINT_PARSERS_MAX 32 /* prefixes registered at once */

/*
 * tw_endpoint_register_parser: make prefix (matched in any case, 1 to
 * TW_ENDPOINT_PREFIX_MAX bytes without ':', '=' or '\') known to
 * tw_server_from_string (server, may be NULL) and tw_client_from_string
 * (client, may be NULL; not both NULL), called with arg. Returns 0,
 * TW_EINVAL (bad prefix, both NULL), TW_EBUSY (the prefix is registered,
 * or is built in for a side given: tcp/tcp6/unix servers, tcp/unix
 * clients), TW_EOVERFLOW (TW_ENDPOINT_PARSERS_MAX registered).
 * tw_endpoint_unregister_parser: forget it; returns 0 or TW_ENOENT. A
 * parser may be running on another thread while it is unregistered: do
 * not free what arg points to until such calls are over. Thread-safe.
 */
TW_EXTERN int tw_endpoint_register_parser(const char *prefix,
                                          tw_endpoint_parser_fn server,
                                          tw_endpoint_parser_fn client,
                                          void *arg);
TW_EXTERN int tw_endpoint_unregister_parser(const char *prefix);

#ifdef __cplusplus
}
#endif
#endif /* TWUV_ENDPOINTS_H */
