/*
 * lib/transport-internal.h - what a transport implementation provides to
 * lib/protocol.c, which owns the public tw_transport_* calls. Not installed.
 *
 * A transport kind (the uv stream transport of net.c, the string transport
 * and the pump's fake transports of testing.c, later TLS and processes)
 * embeds a struct tw_transport first in its own struct and fills ops.
 * protocol.c checks the arguments, the thread (ops->on_loop_thread) and the
 * dead/disconnecting state that every kind shares, then calls ops; an op
 * left NULL answers TW_ENOTSUP. protocol.c also holds what every kind does
 * the same way, as Twisted's FileDescriptor does for every transport:
 *   - the producer rules (register twice -> TW_EBUSY, register on a lost
 *     connection -> stop_producing at once, streaming producers paused
 *     above TW_TRANSPORT_BUFFER_SIZE and resumed when the buffer is empty,
 *     pull producers resumed each time it empties): a kind calls
 *     tw__transport_buffer_changed whenever its buffered count changes;
 *   - the connection_lost delivery: a kind calls tw__transport_lost(t,
 *     reason) exactly once when the connection is gone (from a loop
 *     callback, never from inside an op); protocol.c stops the producer,
 *     calls connection_lost, then dealloc.
 */
#ifndef TWUV_TRANSPORT_INTERNAL_H
#define TWUV_TRANSPORT_INTERNAL_H

#include "internal.h"

typedef struct tw__transport_ops {
  /* 1 when the caller may use the transport from this thread. NULL: any. */
  int (*on_loop_thread)(tw_transport *t);
  /* Send, in order; the kind copies what it cannot send now. n >= 1, every
   * piece non-empty. Called while connected, before abort was sent to the
   * kind, before the write side is shut (tw__transport_write_closed) and
   * before the loss (protocol.c drops those writes with TW_ENOTCONN) -
   * and also after lose_write (sent before the shutdown, as Twisted's
   * write checks _writeDisconnected only: a kind that already started
   * shutting down returns TW_ENOTCONN) and after lose: what a write after
   * lose_connection does is the kind's, as in Twisted, where it differs
   * per transport: a socket (FileDescriptor.write) sends it and its close
   * waits for it to drain, iosim's FakeTransport drops it (return
   * TW_ENOTCONN, nothing kept), StringTransport keeps it. A kind that is
   * closing and can no longer send returns TW_ENOTCONN. (A lose_connection
   * held by a producer is not sent to the kind until it unregisters:
   * every kind takes the producer's writes meanwhile.) */
  int (*writev)(tw_transport *t, const tw_iovec *bufs, size_t n);
  /* Begin a clean close once the buffer drains (producer rules already
   * applied by protocol.c: called when no producer holds the close). */
  int (*lose)(tw_transport *t);
  /* Close now, discarding the buffer; connection_lost(ConnectionAborted)
   * later, from the loop. */
  int (*abort)(tw_transport *t);
  /* Close now, discarding the buffer, but orderly (TCP: a FIN, not a
   * RST): protocol.c's close after a failure of the user's (data_received
   * or a producer returned one) or an EOF, with t->reason already set to
   * the failure (a kind may pass it on, e.g. to a connector); connection_
   * lost later, from the loop, with t->reason. NULL: abort is used. */
  int (*close_now)(tw_transport *t);
  int (*lose_write)(tw_transport *t);
  int (*get_peer)(tw_transport *t, tw_address *out);
  int (*get_host)(tw_transport *t, tw_address *out);
  /* opt: 0 nodelay, 1 keepalive; get returns 1/0. */
  int (*set_tcp_option)(tw_transport *t, int opt, int enabled);
  int (*get_tcp_option)(tw_transport *t, int opt);
  /* Reading: stop / start (the transport as a push producer). Called
   * until the loss is delivered, also while disconnecting: a kind ignores
   * them then (FileDescriptor's resumeProducing does nothing while
   * disconnecting). */
  int (*pause_reading)(tw_transport *t);
  int (*resume_reading)(tw_transport *t);
  /* stop_producing on the transport. NULL (every real kind): it is
   * lose_connection, as FileDescriptor's. */
  int (*stop_producing)(tw_transport *t);
  /* Bytes buffered, not yet taken by the kernel (or the peer). */
  size_t (*buffered)(tw_transport *t);
  /* 1: a failure data_received or a producer returns is logged (ERROR)
   * before the connection closes with it - a kind driven by the reactor,
   * as Twisted's reactor logs what doRead/doWrite raised (posixbase
   * _doReadOrWrite: log.err()). 0: not logged - the test doubles, where
   * Twisted's exception goes back to the test that fed the data. */
  unsigned log_user_failures;
} tw__transport_ops;

/* The common part, first in every kind's struct. Fields are protocol.c's;
 * a kind may read them (connected, disconnecting, lost) but writes none. */
struct tw_transport {
  const tw__transport_ops *ops;
  tw_protocol *protocol; /* NULL after dealloc */
  tw_producer *producer;
  /* The reason to deliver instead of the kind's (a failure data_received
   * or a producer returned, ConnectionDone after an EOF), owned. */
  tw_failure *reason;
  /* A loss the kind reported while a callback or op was running: delivered
   * when the outermost one returns (owned). */
  tw_failure *pending_lost;
  unsigned depth;                   /* callbacks/ops running on t */
  unsigned producer_streaming : 1;
  unsigned producer_paused : 1;     /* we paused it (buffer over the limit) */
  unsigned disconnecting : 1;       /* lose or abort called, or lost */
  unsigned lose_waits_producer : 1; /* lose_connection held by a producer */
  unsigned connected : 1;           /* connection_made called */
  unsigned lost : 1;                /* connection_lost delivered */
  unsigned in_call : 1;             /* inside a protocol callback we made */
  unsigned aborting : 1;            /* abort or close_now called (writes
                                       dropped) */
  unsigned write_closing : 1;       /* lose_write called */
  unsigned write_closed : 1;        /* write side shut (writes dropped) */
  unsigned read_closed : 1;         /* read_connection_lost delivered */
  unsigned lose_sent : 1;           /* ops->lose called */
  unsigned drain_wanted : 1;        /* written since the buffer was empty */
  unsigned in_write : 1;            /* inside tw_transport_write* */
};

/* A kind's set-up: ops, and the protocol it will serve (may be NULL until
 * tw__transport_make_connection). */
void tw__transport_init(tw_transport *t, const tw__transport_ops *ops);

/* Release what protocol.c holds for t (reasons kept for a loss never
 * delivered): call it when the kind frees t. */
void tw__transport_dispose(tw_transport *t);

/* makeConnection: set p->transport, connected, call connection_made.
 * p NULL: only mark t connected (a test double that exists before its
 * protocol); a later call with the protocol attaches it. */
void tw__transport_make_connection(tw_transport *t, tw_protocol *p);

/* Deliver bytes to the protocol (data_received); a failure it returns
 * closes the connection at once (ops->close_now, else ops->abort) with
 * that reason. Bytes are dropped once disconnecting (Twisted stops reading
 * at loseConnection). */
void tw__transport_data(tw_transport *t, const char *data, size_t len);

/* The peer closed its side (EOF): half-closeable protocols get
 * read_connection_lost, others a clean close at once: protocol.c calls
 * ops->close_now (else ops->abort) and the loss the kind then reports is
 * delivered as ConnectionDone (tcp.py readConnectionLost ->
 * connectionLost). After lose_connection (not abort) the EOF is ignored:
 * the pending close goes on (Twisted stopped reading at loseConnection).
 * A kind reports every EOF here (it stops reading itself). */
void tw__transport_eof(tw_transport *t);

/* The write side is shut down (after lose_write): write_connection_lost. */
void tw__transport_write_closed(tw_transport *t);

/* The buffered count changed: apply the producer rules. Call it from loop
 * callbacks when bytes leave the buffer (a write completed): a pull
 * producer, or a streaming producer we paused, is resumed when the buffer
 * is empty after a write (doWrite). protocol.c itself applies the pause
 * rule after every write, and ignores calls made from inside writev. A
 * kind whose writev sends everything at once must still report the empty
 * buffer from a later loop callback (Twisted's doWrite runs from the
 * reactor): a pull producer waits for that report. */
void tw__transport_buffer_changed(tw_transport *t);

/* The connection is gone: the producer, if still registered, is stopped
 * and forgotten (FileDescriptor.connectionLost, which tcp.py's
 * Connection.connectionLost runs first), then the protocol gets
 * connection_lost(reason) (borrowed; t->reason replaces it when set), then
 * dealloc, and t->protocol is NULL. Exactly once; later calls do nothing.
 * Reported while a callback or op runs on t (depth > 0), it is kept and
 * delivered when the outermost returns: never re-entrant. reason NULL means
 * ConnectionDone. The kind learns that delivery happened from t->lost. */
void tw__transport_lost(tw_transport *t, tw_failure *reason);

/*
 * A protocol's end, for twuv's own helpers (policies.c's timeout mixin):
 * tw__protocol_watch arranges for fn(arg) to run once, after p's
 * connection_lost has returned and before its dealloc - unless
 * tw__protocol_unwatch(p, id) removed it first. Several watches per
 * protocol run newest first. The watches live in a table of the calling
 * thread (the protocol's loop thread), found from p->watch_ (an index: a
 * pointer would not fit the padding it uses), so the cost is on the
 * watched protocols only. Returns 0 and *id (never 0), or TW_ENOMEM.
 * A watch on a protocol that never gets connection_lost stays until
 * removed (the table is freed when its last watch goes).
 */
typedef void (*tw__end_fn)(void *arg);
int tw__protocol_watch(tw_protocol *p, tw__end_fn fn, void *arg,
                       unsigned *id);
void tw__protocol_unwatch(tw_protocol *p, unsigned id);

/* The reasons, new references: ConnectionDone, ConnectionLost(code),
 * ConnectionAborted, with Twisted's messages. */
tw_failure *tw__connection_done(void);
tw_failure *tw__connection_lost(int code);
tw_failure *tw__connection_aborted(void);

/* tw_transport_disconnecting without the argument and thread checks, for
 * a protocol module's hot path (basic.c asks after every line, as
 * Twisted's LineReceiver does): t not NULL, on its loop thread. */
static inline int tw__transport_is_disconnecting(const tw_transport *t) {
  return t->disconnecting || t->lost;
}

/* Close t at once with f (owned), as when data_received returns f: for a
 * protocol module (basic.c) whose callbacks run outside data_received. A
 * NULL t, or a call from another thread, only releases f. */
void tw__transport_fail(tw_transport *t, tw_failure *f);

#endif /* TWUV_TRANSPORT_INTERNAL_H */
