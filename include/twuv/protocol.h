/*
 * twuv/protocol.h - Twisted's Protocol, Factory, Transport, producers and
 * addresses (twisted.internet.protocol, interfaces.ITransport/ITCPTransport,
 * IProducer/IConsumer, twisted.internet.address, twisted.internet.error).
 *
 * The model, as in libuv: a protocol is a struct the user embeds in his own
 * (first member, or found back with a container_of), with a const table of
 * callbacks, exactly as a uv_tcp_t is embedded and given callbacks:
 *
 *     typedef struct echo { tw_protocol base; long bytes; } echo;
 *     static tw_failure *echo_data(tw_protocol *p, const char *data,
 *                                  size_t len) {
 *       ((echo *)p)->bytes += (long)len;
 *       tw_transport_write(p->transport, data, len);
 *       return NULL;
 *     }
 *     static const tw_protocol_ops echo_ops = {.data_received = echo_data};
 *
 * and a factory builds one per connection (tw_factory_for_protocol makes the
 * common "Factory.forProtocol(Echo)" factory: it allocates a zeroed struct of
 * the given size per connection and frees it after connection_lost).
 *
 * Transports are polymorphic: the same tw_transport_* calls work on a real
 * TCP or UNIX connection (net.h), on the string transport and the in-memory
 * pump of testing.h, and on whatever a later module (TLS, processes) makes.
 *
 * The calls a transport makes on its protocol, in order, each at most once
 * except data_received:
 *   connection_made          when the connection is made (p->transport set)
 *   data_received*           bytes borrowed for the call only
 *   read_connection_lost     (half-closeable protocols only: the peer shut
 *   write_connection_lost     down its side / our write side is shut down)
 *   connection_lost(reason)  exactly once, last; never from inside a call
 *                            the protocol made on its transport (write,
 *                            lose_connection, abort_connection, ...): such a
 *                            call that ends the connection has it delivered
 *                            from the loop afterwards, as Twisted does
 * After connection_lost returns, the transport sets p->transport to NULL,
 * then calls p->dealloc (if not NULL), and never touches the protocol
 * again. A protocol that frees itself does it in dealloc, not inside
 * connection_lost (the transport still writes p->transport after it).
 *
 * Reasons (failures, borrowed for the call; tw_failure_ref to keep one):
 *   TW_CONNECTION_DONE       clean close (ours or the peer's)
 *   TW_CONNECTION_LOST       the connection broke; code = the libuv code
 *   TW_CONNECTION_ABORTED    after abort_connection (a ConnectionLost)
 *   any failure data_received returned (Twisted: the exception it raised)
 *
 * Threads: protocols, factories and transports belong to the reactor's loop
 * thread. Every tw_transport_* call from another thread returns
 * TW_EWRONGTHREAD and changes nothing; to write from a worker thread, hand
 * the bytes to the loop with tw_reactor_call_from_thread (docs/networking.md
 * shows it).
 */
#ifndef TWUV_PROTOCOL_H
#define TWUV_PROTOCOL_H

#include <stddef.h>

#include "common.h"
#include "defer.h"
#include "failure.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- twisted.internet.error ---------------------------------------------- */
/*
 * Where a twisted.internet.error class has the same Python name as a
 * builtin that failure.h already maps (ConnectionRefusedError,
 * TimeoutError), its constant takes the prefix TW_NET_.
 */
TW_EXTERN extern const tw_error_type TW_BIND_ERROR;           /* BindError */
TW_EXTERN extern const tw_error_type TW_CANNOT_LISTEN_ERROR;  /* CannotListenError(BindError) */
TW_EXTERN extern const tw_error_type TW_CONNECT_ERROR;        /* ConnectError */
TW_EXTERN extern const tw_error_type TW_CONNECT_BIND_ERROR;   /* ConnectBindError(ConnectError) */
TW_EXTERN extern const tw_error_type TW_UNKNOWN_HOST_ERROR;   /* UnknownHostError(ConnectError) */
TW_EXTERN extern const tw_error_type TW_NO_ROUTE_ERROR;       /* NoRouteError(ConnectError) */
TW_EXTERN extern const tw_error_type TW_NET_CONNECTION_REFUSED_ERROR; /* error.ConnectionRefusedError(ConnectError) */
TW_EXTERN extern const tw_error_type TW_TCP_TIMED_OUT_ERROR;  /* TCPTimedOutError(ConnectError) */
TW_EXTERN extern const tw_error_type TW_USER_ERROR;           /* UserError(ConnectError) */
TW_EXTERN extern const tw_error_type TW_NET_TIMEOUT_ERROR;    /* error.TimeoutError(UserError) */
TW_EXTERN extern const tw_error_type TW_CONNECTION_CLOSED;    /* ConnectionClosed */
TW_EXTERN extern const tw_error_type TW_CONNECTION_LOST;      /* ConnectionLost(ConnectionClosed) */
TW_EXTERN extern const tw_error_type TW_CONNECTION_ABORTED;   /* ConnectionAborted(ConnectionLost) */
TW_EXTERN extern const tw_error_type TW_CONNECTION_DONE;      /* ConnectionDone(ConnectionClosed) */
TW_EXTERN extern const tw_error_type TW_NOT_CONNECTING_ERROR; /* NotConnectingError(RuntimeError) */
TW_EXTERN extern const tw_error_type TW_NOT_LISTENING_ERROR;  /* NotListeningError(RuntimeError) */
/* (TW_DNS_LOOKUP_ERROR, DNSLookupError, is in failure.h.) */

/* ---- addresses (twisted.internet.address) -------------------------------- */

typedef enum tw_address_family {
  TW_ADDRESS_NONE = 0, /* not set */
  TW_ADDRESS_IPV4 = 1, /* IPv4Address */
  TW_ADDRESS_IPV6 = 2, /* IPv6Address */
  TW_ADDRESS_UNIX = 3  /* UNIXAddress */
} tw_address_family;

typedef enum tw_address_type {
  TW_ADDRESS_TCP = 1, /* type 'TCP' */
  TW_ADDRESS_UDP = 2  /* type 'UDP' */
} tw_address_type;

#define TW_ADDRESS_HOST_MAX 46  /* INET6_ADDRSTRLEN */
#define TW_ADDRESS_PATH_MAX 108 /* sun_path on Linux, with its NUL */

/*
 * An address, a plain value (copy it freely). host is numeric ("127.0.0.1",
 * "::1"), as Twisted's; name is a UNIX socket's path ("" when unnamed, which
 * is Twisted's None).
 */
typedef struct tw_address {
  int family;  /* tw_address_family */
  int type;    /* tw_address_type (IPv4/IPv6 only) */
  char host[TW_ADDRESS_HOST_MAX];
  int port;
  unsigned flow_info; /* IPv6 only */
  unsigned scope_id;  /* IPv6 only */
  char name[TW_ADDRESS_PATH_MAX];
} tw_address;

/*
 * tw_address_format: the address as Twisted's repr would print it
 * ("IPv4Address(type='TCP', host='127.0.0.1', port=8080)",
 * "UNIXAddress('/tmp/s')") into buf, NUL-terminated, truncated to size.
 * Returns the length it needed (as snprintf), or TW_EINVAL (NULL address,
 * unknown family, NULL buf with a non-zero size). Thread-safe.
 */
TW_EXTERN int tw_address_format(const tw_address *a, char *buf, size_t size);

/* tw_address_equal: 1 when a and b name the same endpoint, else 0 (also
 * for NULL). Thread-safe. */
TW_EXTERN int tw_address_equal(const tw_address *a, const tw_address *b);

/* ---- protocols ------------------------------------------------------------ */

typedef struct tw_protocol tw_protocol;
typedef struct tw_factory tw_factory;
typedef struct tw_transport tw_transport;
typedef struct tw_producer tw_producer;
typedef struct tw_connector tw_connector; /* net.h */

/*
 * A protocol's callbacks; any may be NULL (then nothing happens, as with
 * Twisted's Protocol base class - a NULL data_received discards the bytes).
 */
typedef struct tw_protocol_ops {
  /* makeConnection/connectionMade: p->transport is set. */
  void (*connection_made)(tw_protocol *p);
  /*
   * dataReceived: data is borrowed for the call (the transport reads into
   * one buffer per reactor and reuses it: copy what you keep). Return NULL,
   * or a failure (ownership passes to the transport) to drop the connection
   * with it as connection_lost's reason - Twisted's "the protocol raised":
   * what is buffered is dropped, no more data comes, and the close is
   * orderly (TCP: the peer reads EOF, not a RST - only abort_connection
   * resets), connection_lost from the loop. On a TCP or UNIX connection
   * the failure is also logged (an ERROR event, "Unhandled Error"), as
   * Twisted's reactor logs what dataReceived raised; testing.h's doubles
   * do not log it.
   * The chunking is arbitrary: a protocol must accept any split of the
   * stream, down to one byte at a time (testing.h feeds it that way).
   */
  tw_failure *(*data_received)(tw_protocol *p, const char *data, size_t len);
  /* connectionLost: the last call; reason is borrowed for the call. */
  void (*connection_lost)(tw_protocol *p, tw_failure *reason);
  /*
   * IHalfCloseableProtocol: a protocol that sets read_connection_lost is
   * half-closeable. When the peer shuts down its write side, it gets
   * read_connection_lost instead of connection_lost, and the connection
   * stays open for writing until the protocol calls lose_connection.
   * write_connection_lost follows tw_transport_lose_write_connection once
   * the buffered bytes are sent (IHalfCloseableProtocol.writeConnectionLost).
   */
  void (*read_connection_lost)(tw_protocol *p);
  void (*write_connection_lost)(tw_protocol *p);
} tw_protocol_ops;

/*
 * The protocol struct the user embeds. Set ops with tw_protocol_init; the
 * other fields are read-only for the user and kept by the transport.
 */
struct tw_protocol {
  const tw_protocol_ops *ops;
  /* self.transport: set before connection_made, still set (and its
   * get_peer/get_host answering) during connection_lost, NULL once
   * connection_lost has returned. A deliberate difference from Twisted,
   * which keeps self.transport: a connection's memory is freed right after
   * connection_lost, and in C a kept pointer would be a use after free;
   * every tw_transport_* call on NULL returns TW_EINVAL (or 0 for the
   * yes/no and count calls) and does nothing. */
  tw_transport *transport;
  /* self.factory: set by the factory that built the protocol, or NULL. */
  tw_factory *factory;
  /* self.connected: 1 from connection_made until connection_lost. */
  int connected;
  /* twuv's own, 0 unless a helper of twuv's (policies.h's timeout mixin)
   * waits for this protocol's end: never touch it (tw_protocol_init
   * zeroes it). It sits in the padding after connected: the struct's
   * size is unchanged. */
  unsigned watch_;
  /* Called after connection_lost with the protocol (p->transport already
   * NULL), if not NULL: set by a factory that allocated it
   * (tw_factory_for_protocol), or by the user - the place for a protocol
   * to free itself. */
  void (*dealloc)(tw_protocol *p);
  void *data; /* the user's, never touched by twuv */
};

/*
 * tw_protocol_init: zero p and set its callbacks (ops must outlive it).
 * Returns 0, or TW_EINVAL (p or ops NULL). Any thread.
 */
TW_EXTERN int tw_protocol_init(tw_protocol *p, const tw_protocol_ops *ops);

/* ---- factories ------------------------------------------------------------ */

/*
 * A factory's callbacks. build_protocol is required for a factory used to
 * listen or connect; the rest may be NULL.
 */
typedef struct tw_factory_ops {
  /*
   * buildProtocol(addr): a new protocol for a connection with addr (the
   * peer for a server, the destination for a client), or NULL to refuse it
   * (a server then closes the accepted connection at once; a client's
   * connection is closed and nothing more is called). A protocol returned
   * here always gets connection_made, then connection_lost.
   */
  tw_protocol *(*build_protocol)(tw_factory *f, const tw_address *addr);
  void (*start_factory)(tw_factory *f); /* the first port/connector started */
  void (*stop_factory)(tw_factory *f);  /* the last one stopped */
  /* ClientFactory: */
  void (*started_connecting)(tw_factory *f, tw_connector *c);
  void (*client_connection_failed)(tw_factory *f, tw_connector *c,
                                   tw_failure *reason); /* reason borrowed */
  void (*client_connection_lost)(tw_factory *f, tw_connector *c,
                                 tw_failure *reason); /* reason borrowed */
} tw_factory_ops;

/* The factory struct the user embeds (or makes with
 * tw_factory_for_protocol). num_ports is Twisted's numPorts. */
struct tw_factory {
  const tw_factory_ops *ops;
  int num_ports;
  /* Set by tw_factory_for_protocol: the protocols it builds. */
  const tw_protocol_ops *protocol_ops;
  size_t protocol_size;
  void *data; /* the user's, never touched by twuv */
};

/*
 * tw_factory_init: zero f and set its callbacks. Returns 0 or TW_EINVAL.
 * Any thread.
 */
TW_EXTERN int tw_factory_init(tw_factory *f, const tw_factory_ops *ops);

/*
 * tw_factory_for_protocol: Factory.forProtocol: a factory whose
 * build_protocol allocates a zeroed protocol of protocol_size bytes (at
 * least sizeof(tw_protocol); the tw_protocol first) with protocol_ops,
 * sets its factory, and frees it after its connection_lost. Other ops
 * (start/stop, client callbacks) may be given in ops, or NULL for none;
 * ops->build_protocol, if set, is ignored. Returns 0 or TW_EINVAL (f or
 * protocol_ops NULL, protocol_size too small). Any thread.
 */
TW_EXTERN int tw_factory_for_protocol(tw_factory *f,
                                      const tw_protocol_ops *protocol_ops,
                                      size_t protocol_size,
                                      const tw_factory_ops *ops);

/*
 * tw_factory_do_start / tw_factory_do_stop: doStart/doStop - count a port
 * or connector in or out, calling start_factory on the first and
 * stop_factory on the last (a do_stop at 0 does nothing and returns
 * TW_EINVAL, as Twisted only logs). Listening ports and connectors call
 * them; a transport module of the user's would too. Returns 0 or
 * TW_EINVAL. Loop thread (where the factory is used).
 */
TW_EXTERN int tw_factory_do_start(tw_factory *f);
TW_EXTERN int tw_factory_do_stop(tw_factory *f);

/*
 * tw_factory_build_protocol: call f's build_protocol (what a transport
 * does for each connection): the protocol, with p->factory = f, or NULL
 * (refused, or f NULL or without build_protocol).
 */
TW_EXTERN tw_protocol *tw_factory_build_protocol(tw_factory *f,
                                                 const tw_address *addr);

/* ---- producers (IPushProducer / IPullProducer) ---------------------------- */

/*
 * A producer's callbacks. A push (streaming) producer gets pause and
 * resume; a pull (non-streaming) producer gets resume_producing each time
 * the consumer wants more; both get stop_producing once, when the consumer
 * goes away. A callback may return a failure (ownership passes): the
 * transport then closes the connection at once with it as the reason, as
 * Twisted does when resumeProducing raises (what is buffered is dropped;
 * the close is orderly, and the failure logged, as for data_received's).
 */
typedef struct tw_producer_ops {
  tw_failure *(*pause_producing)(tw_producer *p);
  tw_failure *(*resume_producing)(tw_producer *p);
  tw_failure *(*stop_producing)(tw_producer *p);
} tw_producer_ops;

struct tw_producer {
  const tw_producer_ops *ops;
  void *data; /* the user's */
};

/* ---- transports (ITransport, ITCPTransport, IConsumer, IPushProducer) ----- */

/* One piece of a vectored write. */
typedef struct tw_iovec {
  const void *base;
  size_t len;
} tw_iovec;

/* Twisted's FileDescriptor.bufferSize: a streaming producer is paused when
 * more than this many bytes are buffered, resumed when none are. */
#define TW_TRANSPORT_BUFFER_SIZE 65536

/*
 * tw_transport_write: send len bytes, in order after everything written
 * before. Returns at once: the bytes the kernel does not take now are
 * copied (data is not kept after the call); small writes made in one loop
 * turn are coalesced. A write before connection_made, after the
 * connection is lost (also inside connection_lost), after
 * abort_connection or once the write side is shut (after
 * lose_write_connection, when the buffered bytes are sent and the
 * shutdown starts) is dropped, as in Twisted, but reported; a write
 * after lose_write_connection and before that is sent first, as
 * Twisted's (write checks _writeDisconnected only). A write after lose_connection does what
 * Twisted's transport of that kind does: a TCP or UNIX connection sends
 * it (FileDescriptor.write: the close waits until it is sent), testing.h's
 * pump drops it (iosim's FakeTransport), the string transport keeps it;
 * while a registered producer holds a lose_connection back, every kind
 * takes the writes (the producer finishes its work, then unregisters).
 * Returns 0, or TW_ENOTCONN (= UV_ENOTCONN) when dropped, TW_EINVAL (t
 * NULL, data NULL with len > 0), TW_ENOMEM (nothing written), TW_ENOTSUP
 * (the transport cannot write), TW_EWRONGTHREAD. len 0 does nothing
 * (after the argument checks).
 */
TW_EXTERN int tw_transport_write(tw_transport *t, const void *data,
                                 size_t len);

/*
 * tw_transport_write_sequence: writeSequence - the n pieces as one
 * vectored write (writev), in order; empty pieces are skipped. Errors as
 * tw_transport_write (TW_EINVAL also for bufs NULL with n > 0, or a piece
 * with base NULL and len > 0: then nothing is written).
 */
TW_EXTERN int tw_transport_write_sequence(tw_transport *t,
                                          const tw_iovec *bufs, size_t n);

/*
 * tw_transport_lose_connection: close after everything buffered is sent
 * (then connection_lost(ConnectionDone)). With a producer registered, the
 * close waits for it to be unregistered, as Twisted documents. Calls after
 * the first, calls before connection_made, and calls on a lost
 * connection, do nothing. Returns 0, TW_EINVAL, TW_ENOTSUP, TW_EWRONGTHREAD.
 */
TW_EXTERN int tw_transport_lose_connection(tw_transport *t);

/*
 * tw_transport_abort_connection: close at once, discarding what is
 * buffered (TCP: a RST); connection_lost(ConnectionAborted) follows from
 * the loop, never from inside this call. An abort after a
 * lose_connection still aborts (also one held by a producer); a second
 * abort, and a lose after an abort, do nothing. Returns 0, TW_EINVAL,
 * TW_ENOTSUP, TW_EWRONGTHREAD.
 */
TW_EXTERN int tw_transport_abort_connection(tw_transport *t);

/*
 * tw_transport_lose_write_connection: ITCPTransport.loseWriteConnection -
 * shut down the write side once the buffered bytes (and those written
 * until then) are sent; the protocol (half-closeable) gets
 * write_connection_lost from the loop, and may go on reading. A second
 * call, a call after lose_connection, and a call on a lost connection do
 * nothing (Twisted 22.4, called again after the first completed, breaks
 * the connection). A shutdown error (the peer reset the connection) is
 * ignored, as Twisted's: write_connection_lost still comes, and the read
 * side reports the loss. lose_connection afterwards closes at once once
 * the write side is shut (write_connection_lost is then never called if
 * it had not come yet). Returns 0, TW_EINVAL, TW_ENOTSUP (transport
 * cannot half-close), TW_EWRONGTHREAD.
 */
TW_EXTERN int tw_transport_lose_write_connection(tw_transport *t);

/*
 * tw_transport_get_peer / tw_transport_get_host: getPeer/getHost into
 * *out. Still answer once the connection is lost, inside connection_lost
 * (the connection's addresses, read when it was made; p->transport is
 * NULL after it). Returns 0, TW_EINVAL, TW_EWRONGTHREAD.
 */
TW_EXTERN int tw_transport_get_peer(tw_transport *t, tw_address *out);
TW_EXTERN int tw_transport_get_host(tw_transport *t, tw_address *out);

/*
 * tw_transport_set_tcp_nodelay / _keepalive: ITCPTransport.setTcpNoDelay /
 * setTcpKeepAlive (enabled 0 or 1). Returns 0, TW_EINVAL, TW_ENOTSUP (not
 * a TCP transport), a libuv code, TW_EWRONGTHREAD.
 * tw_transport_get_tcp_nodelay / _keepalive: 1 or 0 (0 also for a bad or
 * non-TCP transport).
 */
TW_EXTERN int tw_transport_set_tcp_nodelay(tw_transport *t, int enabled);
TW_EXTERN int tw_transport_set_tcp_keepalive(tw_transport *t, int enabled);
TW_EXTERN int tw_transport_get_tcp_nodelay(tw_transport *t);
TW_EXTERN int tw_transport_get_tcp_keepalive(tw_transport *t);

/*
 * The transport as a push producer: pause_producing stops reading (no
 * data_received until resumed), resume_producing starts again,
 * stop_producing drops the connection (as loseConnection). On a lost
 * connection they do nothing. Returns 0, TW_EINVAL, TW_ENOTSUP,
 * TW_EWRONGTHREAD (and for testing.h's string transport, its
 * RuntimeErrors: see there).
 */
TW_EXTERN int tw_transport_pause_producing(tw_transport *t);
TW_EXTERN int tw_transport_resume_producing(tw_transport *t);
TW_EXTERN int tw_transport_stop_producing(tw_transport *t);

/*
 * tw_transport_register_producer: IConsumer.registerProducer: streaming 1
 * for a push producer (paused above TW_TRANSPORT_BUFFER_SIZE buffered
 * bytes, resumed when the buffer is empty), 0 for a pull producer
 * (resume_producing each time the buffer empties after a write, and once
 * now). A streaming producer is paused once when the buffer goes over
 * the limit (Twisted repeats pauseProducing on every write while over it)
 * and resumed once it is empty. The producer must stay valid until
 * unregistered or stopped: when the connection is lost it gets
 * stop_producing and is forgotten, before connection_lost. Registering on
 * a lost connection calls stop_producing at once and returns 0, as
 * Twisted. Returns 0, TW_EINVAL, TW_EBUSY (a producer is registered:
 * Twisted's RuntimeError), TW_EWRONGTHREAD.
 * tw_transport_unregister_producer: forget it (and, if lose_connection
 * was waiting for that, close). Returns 0 (also when none), TW_EINVAL,
 * TW_EWRONGTHREAD.
 */
TW_EXTERN int tw_transport_register_producer(tw_transport *t, tw_producer *p,
                                             int streaming);
TW_EXTERN int tw_transport_unregister_producer(tw_transport *t);

/*
 * tw_transport_disconnecting: 1 once lose_connection or abort was called
 * or the connection is lost (Twisted's transport.disconnecting), else 0
 * (also for NULL). tw_transport_connected: 1 while connected, else 0.
 */
TW_EXTERN int tw_transport_disconnecting(tw_transport *t);
TW_EXTERN int tw_transport_connected(tw_transport *t);

/* tw_transport_buffered: the bytes written and not yet handed to the
 * kernel (0 for NULL). Loop thread. */
TW_EXTERN size_t tw_transport_buffered(tw_transport *t);

#ifdef __cplusplus
}
#endif
#endif /* TWUV_PROTOCOL_H */
