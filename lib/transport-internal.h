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
   * piece non-empty. Called only while not disconnecting. */
  int (*writev)(tw_transport *t, const tw_iovec *bufs, size_t n);
  /* Begin a clean close once the buffer drains (producer rules already
   * applied by protocol.c: called when no producer holds the close). */
  int (*lose)(tw_transport *t);
  /* Close now, discarding the buffer; connection_lost(ConnectionAborted)
   * later, from the loop. */
  int (*abort)(tw_transport *t);
  int (*lose_write)(tw_transport *t);
  int (*get_peer)(tw_transport *t, tw_address *out);
  int (*get_host)(tw_transport *t, tw_address *out);
  /* opt: 0 nodelay, 1 keepalive; get returns 1/0. */
  int (*set_tcp_option)(tw_transport *t, int opt, int enabled);
  int (*get_tcp_option)(tw_transport *t, int opt);
  /* Reading: stop / start (the transport as a push producer). */
  int (*pause_reading)(tw_transport *t);
  int (*resume_reading)(tw_transport *t);
  /* Bytes buffered, not yet taken by the kernel (or the peer). */
  size_t (*buffered)(tw_transport *t);
} tw__transport_ops;

/* The common part, first in every kind's struct. Fields are protocol.c's
 * (and the kind's own code, through the functions below). */
struct tw_transport {
  const tw__transport_ops *ops;
  tw_protocol *protocol;
  tw_producer *producer;
  unsigned producer_streaming : 1;
  unsigned producer_paused : 1;    /* we paused it (buffer over the limit) */
  unsigned disconnecting : 1;      /* lose or abort called, or lost */
  unsigned lose_waits_producer : 1; /* lose_connection held by a producer */
  unsigned connected : 1;
  unsigned lost : 1;               /* connection_lost delivered */
  unsigned in_call : 1;            /* inside a protocol callback we made */
};

/* A kind's set-up: ops, and the protocol it will serve (may be NULL until
 * tw__transport_make_connection). */
void tw__transport_init(tw_transport *t, const tw__transport_ops *ops);

/* makeConnection: set p->transport, connected, call connection_made. */
void tw__transport_make_connection(tw_transport *t, tw_protocol *p);

/* Deliver bytes to the protocol (data_received); a failure it returns
 * aborts the connection with that reason. */
void tw__transport_data(tw_transport *t, const char *data, size_t len);

/* The peer closed its side (EOF): half-closeable protocols get
 * read_connection_lost, others a clean close (ConnectionDone). */
void tw__transport_eof(tw_transport *t);

/* The write side is shut down (after lose_write): write_connection_lost. */
void tw__transport_write_closed(tw_transport *t);

/* The buffered count changed: apply the producer rules. */
void tw__transport_buffer_changed(tw_transport *t);

/* The connection is gone: the producer, if still registered, is stopped
 * and forgotten (FileDescriptor.connectionLost), then the protocol gets
 * connection_lost(reason) (borrowed), then dealloc. Exactly once; later
 * calls do nothing. (Check the order against Twisted 22.4's abstract.py
 * and tcp.py and keep this comment true.) */
void tw__transport_lost(tw_transport *t, tw_failure *reason);

#endif /* TWUV_TRANSPORT_INTERNAL_H */
