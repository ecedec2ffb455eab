/*
 * twuv/testing.h - test doubles for protocols: Twisted's
 * twisted.internet.testing.StringTransport (and ...WithDisconnection),
 * twisted.test.iosim's FakeTransport, IOPump and connectedServerAndClient,
 * and a feeder that gives a protocol its input in every chunking.
 *
 * They are transports like the real ones: every tw_transport_* call works
 * on them with the same shared rules (protocol.h: producers paused above
 * TW_TRANSPORT_BUFFER_SIZE and resumed when the buffer empties,
 * lose_connection waiting for a producer, writes dropped after the loss,
 * connection_lost exactly once and never from inside the protocol's own
 * call, dealloc after it). Nothing here needs a reactor or a socket: a
 * protocol that uses timers can be given a manual clock
 * (tw_clock_new_manual) and the test advances it between pumps.
 *
 * Threads: a test double belongs to the thread that made it; tw_transport_*
 * calls from another thread return TW_EWRONGTHREAD, as on a reactor's
 * transports. The functions below are for that thread too.
 *
 * Where the doubles differ from Twisted's (because they run the real
 * transports' rules):
 *   - registering a pull (non-streaming) producer calls its
 *     resume_producing once at once, as FileDescriptor does;
 *   - a write after abort_connection, or once connection_lost was
 *     delivered, is dropped and returns TW_ENOTCONN (Twisted's
 *     StringTransport keeps it). A write after lose_connection is kept by
 *     the string transport (as StringTransport) and dropped by the pump's
 *     fake transports, TW_ENOTCONN (as iosim's FakeTransport) - except
 *     while a producer holds the lose_connection back, when both take it;
 *   - with TW_STRING_TRANSPORT_BUFFERED, value() is the send buffer: a
 *     streaming producer is paused when it holds more than
 *     TW_TRANSPORT_BUFFER_SIZE bytes, and clear() empties it ("the peer
 *     took everything"), resuming a paused or pull producer;
 *   - the pump's abort discards the aborting side's unsent bytes, and the
 *     two sides get ConnectionAborted and ConnectionLost (ECONNRESET) as
 *     over TCP (iosim treats abort as loseConnection); a failure returned
 *     by data_received (or a producer) also discards that side's unsent
 *     bytes, and the other side gets a clean close (ConnectionDone), as
 *     over TCP. On the string transport such a failure aborts (.disconnected
 *     becomes 1: the test sees that the protocol dropped the connection).
 */
#ifndef TWUV_TESTING_H
#define TWUV_TESTING_H

#include <stddef.h>

#include "common.h"
#include "protocol.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- StringTransport -------------------------------------------------------- */

typedef struct tw_string_transport tw_string_transport;

/* Flags for tw_string_transport_new. */
enum {
  /* StringTransport(lenient=True): pause/resume_producing on the transport
   * are allowed after lose_connection. */
  TW_STRING_TRANSPORT_LENIENT = 1,
  /* StringTransportWithDisconnection: lose_connection (and abort) deliver
   * connection_lost to the protocol (ConnectionDone; ConnectionAborted
   * after an abort) at the end of the call - or, when the protocol made
   * the call from one of its own callbacks, when that callback returns. */
  TW_STRING_TRANSPORT_WITH_DISCONNECTION = 2,
  /* value() counts as the send buffer (see the top of this file). */
  TW_STRING_TRANSPORT_BUFFERED = 4
};

/*
 * tw_string_transport_new: a connected string transport without a
 * protocol (attach one with tw_string_transport_connect). host and peer
 * are copied; NULL gives Twisted's defaults, IPv4 TCP 10.0.0.1:12345 for
 * the host and 192.168.1.1:54321 for the peer. flags: TW_STRING_TRANSPORT_*.
 * Returns 0 and *out, or TW_EINVAL (out NULL, unknown flag, an address that
 * tw_address_format rejects), TW_ENOMEM (*out untouched). Free with
 * tw_string_transport_free.
 */
TW_EXTERN int tw_string_transport_new(tw_string_transport **out,
                                      const tw_address *host,
                                      const tw_address *peer, unsigned flags);

/*
 * tw_string_transport_free: free st. A protocol still attached and not yet
 * told gets connection_lost(ConnectionDone) first (so a factory-made one
 * is deallocated); a protocol not deallocated keeps a dangling transport
 * pointer and must not use it. NULL is ignored.
 */
TW_EXTERN void tw_string_transport_free(tw_string_transport *st);

/* tw_string_transport_transport: st as a tw_transport (never NULL for a
 * valid st; NULL for NULL). */
TW_EXTERN tw_transport *tw_string_transport_transport(tw_string_transport *st);

/* tw_string_transport_from: the string transport t is, or NULL when t is
 * NULL or another kind. */
TW_EXTERN tw_string_transport *tw_string_transport_from(tw_transport *t);

/*
 * tw_string_transport_connect: protocol.makeConnection(transport): attach
 * p and call its connection_made. Returns 0, TW_EINVAL (NULL, or p's ops
 * NULL), TW_EBUSY (a protocol is attached already, or the transport is
 * lost), TW_EWRONGTHREAD.
 */
TW_EXTERN int tw_string_transport_connect(tw_string_transport *st,
                                          tw_protocol *p);

/*
 * tw_string_transport_value: the bytes written since the last clear
 * (value()), and their count in *len (len may be NULL). The pointer is
 * valid until the next write or clear; never NULL ("" when empty, also
 * for a NULL st). It is NUL-terminated after the bytes.
 */
TW_EXTERN const char *tw_string_transport_value(tw_string_transport *st,
                                                size_t *len);

/* tw_string_transport_clear: clear(). Returns 0, TW_EINVAL,
 * TW_EWRONGTHREAD. */
TW_EXTERN int tw_string_transport_clear(tw_string_transport *st);

/* tw_string_transport_disconnecting: 1 once lose_connection or abort was
 * called (Twisted's .disconnecting), else 0 (also for NULL). */
TW_EXTERN int tw_string_transport_disconnecting(tw_string_transport *st);

/* tw_string_transport_disconnected: 1 once abort_connection was called
 * (Twisted's .disconnected), else 0. */
TW_EXTERN int tw_string_transport_disconnected(tw_string_transport *st);

/* tw_string_transport_producer: the registered producer (.producer), or
 * NULL. tw_string_transport_streaming: 1 when it is a streaming one, else
 * 0 (also with none). */
TW_EXTERN tw_producer *tw_string_transport_producer(tw_string_transport *st);
TW_EXTERN int tw_string_transport_streaming(tw_string_transport *st);

/*
 * tw_string_transport_producer_state: the transport's own state as a push
 * producer (producerState): "producing", "paused" or "stopped". Static
 * string; NULL for NULL. On st, tw_transport_pause_producing and
 * tw_transport_resume_producing return TW_EINVAL once it is stopped and,
 * unless LENIENT, TW_ENOTCONN once lose_connection was called (Twisted's
 * RuntimeErrors); tw_transport_stop_producing only sets "stopped".
 */
TW_EXTERN const char *tw_string_transport_producer_state(
    tw_string_transport *st);

/*
 * The other side's part, for tests:
 * tw_string_transport_receive: deliver bytes to the protocol
 * (data_received), dropped once disconnecting; returns 0, TW_EINVAL,
 * TW_ENOTCONN (dropped: disconnecting or no protocol), TW_EWRONGTHREAD.
 * tw_string_transport_eof: the peer shut down its write side
 * (read_connection_lost for a half-closeable protocol, else the
 * connection closes with ConnectionDone).
 * tw_string_transport_lose: the connection is gone: connection_lost with
 * reason (borrowed; NULL: ConnectionDone), once. Both return 0, TW_EINVAL,
 * TW_EWRONGTHREAD.
 */
TW_EXTERN int tw_string_transport_receive(tw_string_transport *st,
                                          const void *data, size_t len);
TW_EXTERN int tw_string_transport_eof(tw_string_transport *st);
TW_EXTERN int tw_string_transport_lose(tw_string_transport *st,
                                       tw_failure *reason);

/*
 * Half-close on the string transport (Twisted's StringTransport has no
 * loseWriteConnection; this one takes it as a socket would):
 * tw_transport_lose_write_connection is recorded, and the bytes written
 * after it are still kept (a socket sends them before its shutdown).
 * tw_string_transport_write_disconnecting: 1 once the protocol called
 * lose_write_connection, else 0 (also for NULL).
 * tw_string_transport_write_closed: the test's "the buffer drained and
 * the write side is shut": the protocol (half-closeable) gets
 * write_connection_lost, and writes are dropped from then on
 * (TW_ENOTCONN). Once; later calls do nothing and return 0. Returns 0,
 * TW_EINVAL, TW_ENOTCONN (lose_write_connection was not called, or the
 * connection is lost), TW_EWRONGTHREAD.
 */
TW_EXTERN int tw_string_transport_write_disconnecting(tw_string_transport *st);
TW_EXTERN int tw_string_transport_write_closed(tw_string_transport *st);

/* tw_string_transport_lost: 1 once connection_lost was delivered, else 0. */
TW_EXTERN int tw_string_transport_lost(tw_string_transport *st);

/* ---- feeding in every chunking ------------------------------------------- */

/*
 * tw_testing_feed: deliver len bytes of data to p through its transport
 * (which must be a string transport or a pump's fake transport), chunk
 * bytes per data_received call (the last may be shorter; chunk 0 means
 * all at once). Stops when the connection starts closing. Returns 0 when
 * every byte was delivered, TW_ENOTCONN when some were dropped, TW_EINVAL
 * (p or its transport NULL or of another kind, data NULL with len > 0),
 * TW_EWRONGTHREAD.
 */
TW_EXTERN int tw_testing_feed(tw_protocol *p, const void *data, size_t len,
                              size_t chunk);

/*
 * A check run after each feeding: p is the protocol, still attached - or
 * NULL when its connection_lost was delivered already (it closed, with
 * TW_STRING_TRANSPORT_WITH_DISCONNECTION; a factory-made one is freed) -
 * and st its string transport (tw_string_transport_lost says whether it
 * closed). Return 0 when the protocol did the right thing, anything else
 * to stop.
 */
typedef int (*tw_testing_check_fn)(tw_protocol *p, tw_string_transport *st,
                                   size_t chunk, void *arg);

/*
 * tw_testing_feed_all_chunkings: for every chunk size from 1 to len (or
 * just 1 when len is 0): build a protocol with f
 * (tw_factory_build_protocol, address the string transport's default
 * peer), connect it to a new string transport made with flags, feed it
 * data in chunks of that size, call check, then end the connection
 * (connection_lost(ConnectionDone) if still connected: a factory-made
 * protocol is deallocated) and free the transport. Returns 0 when check
 * returned 0 every time; check's first non-zero result (and stops there);
 * TW_EINVAL (f, check NULL, data NULL with len > 0, flags unknown),
 * TW_ENOMEM, TW_ECANCELLED (f refused to build a protocol).
 */
TW_EXTERN int tw_testing_feed_all_chunkings(tw_factory *f, const void *data,
                                            size_t len, unsigned flags,
                                            tw_testing_check_fn check,
                                            void *arg);

/* ---- iosim: FakeTransport pairs and the IOPump ------------------------------- */

typedef struct tw_iopump tw_iopump;

/* Twisted's IOPump.flush limit: more rounds than this is an error. */
#define TW_IOPUMP_MAX_ROUNDS 1000

/*
 * tw_iopump_connect: iosim.connect: make a FakeTransport for each
 * protocol (the server's host 10.0.0.1:12345 and the client's
 * 192.168.1.1:54321, IPv4 TCP, each the other's peer), make the server's
 * connection, then the client's, and with greet flush once
 * (tw_iopump_flush). The protocols stay the caller's (their dealloc, if
 * set, runs after their connection_lost). Returns 0 and *out, TW_EINVAL
 * (a NULL argument, the same protocol twice, a protocol without ops or
 * already attached), TW_ENOMEM (nothing called), TW_EBUSY (greet did not
 * settle: the pump is made and returned anyway). Free with
 * tw_iopump_free.
 */
TW_EXTERN int tw_iopump_connect(tw_iopump **out, tw_protocol *server,
                                tw_protocol *client, int greet);

/*
 * tw_iopump_connected_server_and_client: connectedServerAndClient with
 * factories: builds the server's protocol with server_f (address: the
 * client's) and the client's with client_f (address: the server's), then
 * as tw_iopump_connect. Errors as tw_iopump_connect, and TW_ECANCELLED
 * when a factory refused (returned NULL). On TW_ECANCELLED, TW_EINVAL and
 * TW_ENOMEM nothing was called on the protocols built, and those with a
 * dealloc (tw_factory_for_protocol's) are deallocated.
 */
TW_EXTERN int tw_iopump_connected_server_and_client(tw_iopump **out,
                                                    tw_factory *server_f,
                                                    tw_factory *client_f,
                                                    int greet);

/* The two protocols (NULL once that side's connection_lost was
 * delivered) and transports (valid until tw_iopump_free). */
TW_EXTERN tw_protocol *tw_iopump_server(tw_iopump *pump);
TW_EXTERN tw_protocol *tw_iopump_client(tw_iopump *pump);
TW_EXTERN tw_transport *tw_iopump_server_transport(tw_iopump *pump);
TW_EXTERN tw_transport *tw_iopump_client_transport(tw_iopump *pump);

/*
 * tw_iopump_pump: one round (IOPump.pump): take what each side wrote,
 * let their producers react to the emptied buffers, deliver the bytes
 * (the client's to the server first); when nothing moved, report a side's
 * close to the other (its connection_lost), one side per round, as iosim.
 * Returns 1 when something moved or closed, 0 when idle, TW_EINVAL,
 * TW_EWRONGTHREAD.
 */
TW_EXTERN int tw_iopump_pump(tw_iopump *pump);

/*
 * tw_iopump_flush: pump until idle (IOPump.flush). Returns 1 when
 * something moved, 0 when nothing did, TW_EBUSY when still moving after
 * TW_IOPUMP_MAX_ROUNDS rounds (Twisted's "Too long"), TW_EINVAL,
 * TW_EWRONGTHREAD.
 */
TW_EXTERN int tw_iopump_flush(tw_iopump *pump);

/*
 * tw_iopump_pending: the bytes a side wrote and the pump has not moved
 * yet (FakeTransport.stream). side: 0 server, 1 client. The pointer is
 * valid until the next write or pump; never NULL.
 */
TW_EXTERN const char *tw_iopump_pending(tw_iopump *pump, int side,
                                        size_t *len);

/*
 * tw_iopump_free: free the pump and its transports. A side still
 * connected gets connection_lost(ConnectionDone) first (so that
 * factory-made protocols are deallocated). NULL is ignored.
 */
TW_EXTERN void tw_iopump_free(tw_iopump *pump);

#ifdef __cplusplus
}
#endif
#endif /* TWUV_TESTING_H */
