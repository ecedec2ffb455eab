/*
 * lib/stream-internal.h - the libuv stream transport (stream.c): a TCP or
 * UNIX connection as a transport kind (transport-internal.h), shared by the
 * listening ports and connectors of net.c. Not installed.
 *
 * Life of a stream: net.c allocates it (tw__stream_new) and opens its
 * handle; once the socket is connected (accepted, or a connect completed)
 * tw__stream_start registers it as a reactor child, gives it its protocol
 * and starts reading. Every way out goes through tw__stream_close: one
 * uv_close (uv_tcp_close_reset for an abort), whose callback delivers
 * connection_lost (if a protocol was made), tells the connector, leaves the
 * reactor's children and frees the stream.
 */
#ifndef TWUV_STREAM_INTERNAL_H
#define TWUV_STREAM_INTERNAL_H

#include <netinet/in.h>
#include <twuv/net.h>
#include <twuv/protocol.h>
#include <uv.h>

#include "internal.h"
#include "reactor-internal.h"
#include "transport-internal.h"

typedef struct tw__stream tw__stream;

/* What the owner of a stream (a connector) hears when it closes. */
typedef struct tw__stream_owner_ops {
  /* The stream closed: made is 1 when it had connected (reason is then the
   * connection_lost reason, delivered to the protocol first), 0 when the
   * attempt failed (reason: why). reason borrowed. */
  void (*closed)(tw__stream *s, void *owner, int made, tw_failure *reason);
  /* Optional (NULL: not told): the stream's buffered count changed, told
   * after protocol.c's producer rules ran on the stream (a process's stdin
   * pipe: the producer is the process transport's, process.c). */
  void (*buffer_changed)(tw__stream *s, void *owner);
} tw__stream_owner_ops;

/* An IPv4 or IPv6 socket address as the kernel gave it (28 bytes; the
 * tw_address, 176 bytes, is made when asked). sa_family AF_UNSPEC: none. */
typedef union tw__inaddr {
  struct sockaddr sa;
  struct sockaddr_in in4;
  struct sockaddr_in6 in6;
} tw__inaddr;

/*
 * One connection. Memory matters here (an idle connection's cost is
 * this struct, the protocol and libuv's handle inside it): the handle
 * comes last and a TCP stream is allocated without the bytes a uv_pipe_t
 * needs beyond a uv_tcp_t (tw__stream_new), and the addresses are kept
 * compact (TCP: two sockaddrs; UNIX: the paths, allocated, NULL when
 * unnamed). The size budget and its numbers are in stream.c.
 */
/* A libuv stream handle of either kind (a connection's, a listening
 * port's), seen as whichever libuv type a call needs. */
typedef union tw__uv_stream {
  uv_handle_t handle;
  uv_stream_t stream;
  uv_tcp_t tcp;
  uv_pipe_t pipe;
} tw__uv_stream;

struct tw__stream {
  tw_transport base; /* first: the transport kind's common part */
  tw__child child;   /* registered from tw__stream_start */
  tw__flush_node flush;
  tw_reactor *r;
  const tw__stream_owner_ops *owner_ops; /* NULL: none (server side) */
  void *owner;
  /* Bytes written and not yet handed to libuv: the coalescing buffer and
   * the unsent tails (stream.c, "Writing"). */
  char *pend;
  size_t pend_len, pend_cap;
  tw_failure *reason; /* why it closes; NULL: ConnectionDone */
  /* getHost/getPeer, read once connected and kept after the close (so
   * that connection_lost can still log them). */
  union {
    struct {
      tw__inaddr host, peer;
    } in;
    struct {
      char *host, *peer; /* owned; NULL: unnamed (UNIXAddress(None)) */
    } un;
  } addr;
  unsigned inflight; /* uv_write requests not yet called back */
  unsigned is_tcp : 1;
  unsigned made : 1;        /* connected (accepted / connect succeeded) */
  unsigned registered : 1;  /* a reactor child */
  unsigned reading : 1;     /* uv_read_start in force */
  unsigned paused : 1;      /* pause_reading (the transport as producer) */
  unsigned eof : 1;         /* the peer shut its side down */
  unsigned closing : 1;     /* uv_close called */
  unsigned lose_pending : 1;
  unsigned shutdown_pending : 1; /* lose_write: shut down once drained */
  unsigned shutdown_started : 1;
  /* Last: a TCP stream is allocated up to the end of h.tcp only. */
  tw__uv_stream h;
};

/* A new stream on r (TCP when tcp, else UNIX), handle initialised (its
 * memory then goes with the handle's close: tw__stream_close). TW_ENOMEM,
 * or libuv's code. */
int tw__stream_new(tw__stream **out, tw_reactor *r, int tcp);

/* An IPv4/IPv6 sockaddr as a TCP tw_address (family NONE for others). */
void tw__sockaddr_address(const struct sockaddr *sa, tw_address *a);

/*
 * Connected: register as a reactor child, build the protocol with f (NULL
 * refused: the stream closes, ConnectionDone), make the connection, start
 * reading. For a client, the factory's build_protocol gets the peer's
 * address. Returns 0, or an error after which the stream is closing.
 */
int tw__stream_start(tw__stream *s, tw_factory *f);

/*
 * tw__stream_start with a protocol the caller made (a process's pipes,
 * process.c): register, make the connection, start reading. Same returns.
 */
int tw__stream_start_protocol(tw__stream *s, tw_protocol *p);

/* Close (once; later calls drop reason): reason owned (NULL: ConnectionDone),
 * reset 1 for a TCP RST (abort). */
void tw__stream_close(tw__stream *s, tw_failure *reason, int reset);

#endif /* TWUV_STREAM_INTERNAL_H */
