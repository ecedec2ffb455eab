/*
 * lib/stream.c - the libuv stream transport: a connected TCP or UNIX
 * socket (uv_tcp_t / uv_pipe_t) as a transport kind for protocol.c
 * (transport-internal.h). Listening and connecting are net.c's.
 *
 * Reading: every stream of a reactor reads into the reactor's one 64 KiB
 * buffer (tw__reactor_read_buffer); data_received borrows the bytes.
 *
 * Writing: see "Writing" below. Closing: one path, tw__stream_close, for
 * a clean close (drained), an abort (RST), an error, EOF, the reactor's
 * shutdown and free; connection_lost comes from the uv_close callback, so
 * never from inside a call the protocol made, and after libuv cancelled
 * the pending writes (their callbacks run before the close callback).
 */
#include "stream-internal.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>

static const tw__transport_ops tw__stream_ops;
static const tw__child_ops tw__stream_child_ops;

/* ---- creation ------------------------------------------------------------- */

static void tw__stream_flush_cb(tw__flush_node *n);

/* Bytes allocated for a stream: a TCP one ends with its uv_tcp_t (16
 * bytes less than the union's uv_pipe_t on x86-64). */
#define TW__STREAM_TCP_SIZE (offsetof(tw__stream, h) + sizeof(uv_tcp_t))

static size_t tw__stream_size(int tcp) {
  return tcp ? TW__STREAM_TCP_SIZE : sizeof(tw__stream);
}

/*
 * The size budget of an idle connection (the goal: at most 512
 * bytes beyond libuv's own uv_tcp_t, 248 B on x86-64). bench/echo's idle
 * mode (10,000 connections, server RSS per connection, release build,
 * glibc malloc, 2-vCPU VM, 2026-12-07) measured twuv at 913 B/conn
 * against 286 for the raw libuv server (+627): a TCP stream allocated
 * 792 B, of which 352 were two tw_address copies (176 B each) and 16 the
 * tail of a uv_pipe_t that a TCP stream never uses. With the addresses as
 * two 28-byte sockaddrs (UNIX: the paths, allocated only when named) and
 * the handle last, a TCP stream allocates 472 B (224 beyond its
 * uv_tcp_t), and the same run measured 591 B/conn (587-596, +306 over
 * raw libuv; the rest is bench/echo's 64-byte protocol, malloc's headers
 * and libuv's per-descriptor watcher slot). The budget: 232 B beyond the
 * uv_tcp_t (the old layout allocated 544 beyond it).
 */
_Static_assert(TW__STREAM_TCP_SIZE - sizeof(uv_tcp_t) <= 232,
               "a TCP stream allocates at most 232 bytes beyond its uv_tcp_t");

int tw__stream_new(tw__stream **out, tw_reactor *r, int tcp) {
  tw__stream *s = tw__calloc(1, tw__stream_size(tcp));
  int err;
  *out = NULL;
  if (s == NULL) return TW_ENOMEM;
  if (tcp)
    err = uv_tcp_init(tw_reactor_loop(r), &s->h.tcp);
  else
    err = uv_pipe_init(tw_reactor_loop(r), &s->h.pipe, 0);
  if (err != 0) {
    tw__free(s);
    return err;
  }
  s->h.handle.data = s;
  s->r = r;
  s->is_tcp = tcp != 0;
  s->flush.fn = tw__stream_flush_cb;
  tw__transport_init(&s->base, &tw__stream_ops);
  *out = s;
  return 0;
}

/* A sockaddr as a tw_address (TCP: IPv4/IPv6). */
void tw__sockaddr_address(const struct sockaddr *sa, tw_address *a) {
  memset(a, 0, sizeof(*a));
  a->type = TW_ADDRESS_TCP;
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    a->family = TW_ADDRESS_IPV4;
    uv_ip4_name(in, a->host, sizeof(a->host));
    a->port = ntohs(in->sin_port);
  } else if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    a->family = TW_ADDRESS_IPV6;
    uv_ip6_name(in6, a->host, sizeof(a->host));
    a->port = ntohs(in6->sin6_port);
    a->flow_info = ntohl(in6->sin6_flowinfo);
    a->scope_id = in6->sin6_scope_id;
  }
}

/* One end of a UNIX socket: its path, allocated, or NULL when unnamed
 * (also an abstract or unreadable name, as before: UNIXAddress(None)). */
static int tw__pipe_name(const uv_pipe_t *h,
                         int (*get)(const uv_pipe_t *, char *, size_t *),
                         char **out) {
  char buf[TW_ADDRESS_PATH_MAX];
  size_t len = sizeof(buf);
  char *p;
  *out = NULL;
  /* Zeroed: with an uninitialised buffer valgrind reports a conditional
   * jump on uninitialised bytes inside libuv 1.44's uv_pipe_getsockname
   * (the cause inside libuv was not traced). */
  memset(buf, 0, sizeof(buf));
  if (get(h, buf, &len) != 0 || len == 0 || len >= sizeof(buf) ||
      buf[0] == '\0')
    return 0;
  p = tw__malloc(len + 1);
  if (p == NULL) return TW_ENOMEM;
  memcpy(p, buf, len);
  p[len] = '\0';
  *out = p;
  return 0;
}

/* Read host and peer from the socket (after accept / connect), once:
 * they answer getHost/getPeer also after the close. 0 or TW_ENOMEM. */
static int tw__stream_read_addresses(tw__stream *s) {
  int err;
  if (s->is_tcp) {
    int len = (int)sizeof(s->addr.in.host);
    if (uv_tcp_getsockname(&s->h.tcp, &s->addr.in.host.sa, &len) != 0)
      s->addr.in.host.sa.sa_family = AF_UNSPEC;
    len = (int)sizeof(s->addr.in.peer);
    if (uv_tcp_getpeername(&s->h.tcp, &s->addr.in.peer.sa, &len) != 0)
      s->addr.in.peer.sa.sa_family = AF_UNSPEC;
    return 0;
  }
  err = tw__pipe_name(&s->h.pipe, uv_pipe_getsockname, &s->addr.un.host);
  if (err == 0)
    err = tw__pipe_name(&s->h.pipe, uv_pipe_getpeername, &s->addr.un.peer);
  return err;
}

/* getHost (peer 0) / getPeer (peer 1) as a tw_address. */
static void tw__stream_address(const tw__stream *s, int peer, tw_address *a) {
  const char *name;
  if (s->is_tcp) {
    tw__sockaddr_address(peer ? &s->addr.in.peer.sa : &s->addr.in.host.sa, a);
    return;
  }
  /* An unnamed end answers "" (Twisted's UNIXAddress(None)). */
  memset(a, 0, sizeof(*a));
  a->family = TW_ADDRESS_UNIX;
  name = peer ? s->addr.un.peer : s->addr.un.host;
  if (name != NULL) memcpy(a->name, name, strlen(name) + 1);
}

/* ---- closing ---------------------------------------------------------------- */

static void tw__stream_closed(uv_handle_t *h) {
  tw__stream *s = h->data;
  tw_failure *reason = s->reason;
  if (reason == NULL) reason = tw__connection_done();
  s->reason = NULL;
  /* Pending writes were cancelled (their callbacks ran before this one). */
  tw__free(s->pend);
  s->pend = NULL;
  s->pend_len = 0;
  if (s->base.protocol != NULL) tw__transport_lost(&s->base, reason);
  if (s->owner_ops != NULL && s->owner_ops->closed != NULL)
    s->owner_ops->closed(s, s->owner, s->made, reason);
  tw_failure_unref(reason);
  tw__transport_dispose(&s->base);
  if (s->registered) tw__reactor_child_done(s->r, &s->child);
  if (!s->is_tcp) {
    tw__free(s->addr.un.host);
    tw__free(s->addr.un.peer);
  }
  tw__free(s);
}

void tw__stream_close(tw__stream *s, tw_failure *reason, int reset) {
  if (s->closing) {
    if (reason != NULL) tw_failure_unref(reason);
    return;
  }
  s->closing = 1;
  s->reason = reason;
  tw__reactor_flush_remove(s->r, &s->flush);
  if (s->reading) {
    uv_read_stop(&s->h.stream);
    s->reading = 0;
  }
  /* An abort discards what is buffered: SO_LINGER {1, 0} and close, so the
   * peer sees a RST (uv_tcp_close_reset refuses once a shutdown started:
   * then a plain close). Pipes have no RST. */
  if (reset && s->is_tcp && !s->shutdown_started &&
      uv_tcp_close_reset(&s->h.tcp, tw__stream_closed) == 0)
    return;
  uv_close(&s->h.handle, tw__stream_closed);
}

/* ---- reading ---------------------------------------------------------------- */

static void tw__stream_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  tw__stream *s = h->data;
  char *b = tw__reactor_read_buffer(s->r);
  (void)suggested;
  /* NULL (out of memory): libuv reports UV_ENOBUFS to read_cb. */
  *buf = uv_buf_init(b, b != NULL ? TW__READ_BUFFER_SIZE : 0);
}

static void tw__stream_flush(tw__stream *s);

static void tw__stream_read(uv_stream_t *h, ssize_t nread,
                            const uv_buf_t *buf) {
  tw__stream *s = h->data;
  if (nread > 0) {
    tw__transport_data(&s->base, buf->base, (size_t)nread);
    /* What data_received wrote leaves now, as one write, rather than
     * before the next poll: the writes of one callback are still
     * coalesced, and the answer is on its way while the loop reads the
     * other connections of this poll. */
    if (!s->closing && s->pend_len > 0) {
      tw__reactor_flush_remove(s->r, &s->flush);
      tw__stream_flush(s);
    }
    return;
  }
  if (nread == 0) return; /* EAGAIN: not EOF */
  uv_read_stop(h);
  s->reading = 0;
  if (nread == UV_EOF) {
    s->eof = 1;
    /* Twisted (tcp.py _dataReceived, posixbase _disconnectSelectable): a
     * half-closeable protocol gets readConnectionLost and the connection
     * stays open for writing; any other is lost at once with
     * ConnectionDone, dropping what was still buffered (protocol.c's
     * close_now) - unless lose_connection came first: then the EOF is
     * ignored and the close waits for the buffer, as Twisted stopped
     * reading at loseConnection. protocol.c decides. */
    if (s->base.protocol != NULL && !s->base.lost) {
      tw__transport_eof(&s->base);
      return;
    }
    tw__stream_close(s, NULL, 0);
    return;
  }
  tw__stream_close(s, tw__connection_lost((int)nread), 0);
}

static int tw__stream_start_reading(tw__stream *s) {
  int err;
  if (s->reading || s->paused || s->eof || s->closing) return 0;
  err = uv_read_start(&s->h.stream, tw__stream_alloc, tw__stream_read);
  if (err == 0) s->reading = 1;
  return err;
}

/* ---- starting ---------------------------------------------------------------- */

/* Register as a reactor child and read the addresses: the first step of
 * both starts. 0, or an error after which the stream is closing. */
static int tw__stream_register(tw__stream *s) {
  int err;
  tw__child_init(&s->child, &tw__stream_child_ops,
                 TW__CHILD_ON_LOOP | TW__CHILD_SHUTDOWN);
  err = tw__reactor_child_add(s->r, &s->child);
  if (err != 0) {
    tw__stream_close(s, tw__connection_lost(0), 0);
    return err;
  }
  s->registered = 1;
  s->made = 1;
  err = tw__stream_read_addresses(s);
  if (err != 0) {
    tw__stream_close(s, tw__connection_lost(err), 0);
    return err;
  }
  return 0;
}

/* Make the connection with p and start reading. */
static void tw__stream_connect_protocol(tw__stream *s, tw_protocol *p) {
  int err;
  tw__transport_make_connection(&s->base, p);
  /* connection_made may have paused, lost or aborted the connection. */
  err = tw__stream_start_reading(s);
  if (err != 0) tw__stream_close(s, tw__connection_lost(err), 0);
}

int tw__stream_start(tw__stream *s, tw_factory *f) {
  tw_protocol *p;
  tw_address peer;
  int err = tw__stream_register(s);
  if (err != 0) return err;
  /* A server's factory is asked about the peer; a client's about the
   * destination, which is the peer too. */
  tw__stream_address(s, 1, &peer);
  p = tw_factory_build_protocol(f, &peer);
  if (p == NULL) {
    /* Refused: close the accepted socket (Twisted's server does; its
     * client closes too, then clientConnectionLost). */
    tw__stream_close(s, NULL, 0);
    return 0;
  }
  tw__stream_connect_protocol(s, p);
  return 0;
}

int tw__stream_start_protocol(tw__stream *s, tw_protocol *p) {
  int err = tw__stream_register(s);
  if (err != 0) return err;
  tw__stream_connect_protocol(s, p);
  return 0;
}

/* The reactor's disconnectAll (shutdown) and free: lost, with Twisted's
 * main.CONNECTION_LOST (a ConnectionLost), from the close callback, which
 * runs on the same loop iteration. */
static void tw__stream_child_close(tw__child *c, int why) {
  tw__stream *s = TW__CONTAINER_OF(c, tw__stream, child);
  (void)why;
  tw__stream_close(s, tw__connection_lost(0), 0);
}

static const tw__child_ops tw__stream_child_ops = {tw__stream_child_close};

/* ---- writing ------------------------------------------------------------------
 *
 * Twisted's write never sends: it appends to a buffer that doWrite sends on
 * the next reactor iteration, at most SEND_LIMIT (128 KiB) per send
 * (abstract.py), so writes made in one iteration leave in one send.
 * Here:
 *   - while nothing is queued in libuv or here, a write of at least
 *     TW__WRITE_DIRECT bytes goes to the kernel at once (uv_try_write, the
 *     pieces of a write_sequence as one writev); only the tail the kernel
 *     did not take is copied;
 *   - smaller writes, and everything written while bytes are queued, are
 *     appended to the stream's buffer (pend), handed to libuv in one
 *     uv_write before the loop next waits for I/O (a reactor flush node,
 *     run from a uv_prepare handle): a protocol that writes a header, a
 *     body and a trailer in one callback makes one syscall, not three. The
 *     buffer moves into the write request (no second copy).
 * Measured with bench/net_write.c (clang release build, loopback, 2 vCPU
 * VM with a load average of 5-12): 1000 writes of 64 bytes from one
 * callback took 37 us as one coalesced uv_write, 330 us as 1000
 * uv_try_write calls (8.8x, three runs 8.8-9.0x): a write(2) of 64 bytes
 * costs ~0.33 us here, appending 64 bytes to the buffer a few ns. The
 * direct path starts at 4 KiB, where copying (~0.1 us per 4 KiB) would no
 * longer be much cheaper than the call that the copy tries to save, and
 * where a write is large enough to be worth sending before the next poll.
 */
#define TW__WRITE_DIRECT 4096
#define TW__WRITE_IOV 64 /* pieces given to one uv_try_write */

typedef struct tw__write_req {
  uv_write_t req;
  char *buf; /* owned: the stream's pend, moved here */
} tw__write_req;

static size_t tw__stream_buffered_count(const tw__stream *s) {
  return s->pend_len + s->h.stream.write_queue_size;
}

static int tw__stream_reserve(tw__stream *s, size_t more) {
  size_t need = s->pend_len + more, cap;
  char *p;
  if (need <= s->pend_cap) return 0;
  cap = s->pend_cap != 0 ? s->pend_cap : TW__WRITE_DIRECT;
  while (cap < need) cap *= 2;
  p = tw__realloc(s->pend, cap);
  if (p == NULL) return TW_ENOMEM;
  s->pend = p;
  s->pend_cap = cap;
  return 0;
}

static void tw__stream_do_shutdown(tw__stream *s);

/* The buffered count changed: protocol.c's producer rules, then the owner
 * (a process forwards its stdin pipe's count to the process transport,
 * where the user's producer is registered). */
static void tw__stream_buffer_changed(tw__stream *s) {
  tw__transport_buffer_changed(&s->base);
  if (s->owner_ops != NULL && s->owner_ops->buffer_changed != NULL)
    s->owner_ops->buffer_changed(s, s->owner);
}

/* Everything buffered went out: a pending close or shutdown proceeds. */
static void tw__stream_drained(tw__stream *s) {
  if (s->closing || tw__stream_buffered_count(s) != 0 || s->inflight != 0)
    return;
  if (s->lose_pending)
    tw__stream_close(s, NULL, 0);
  else if (s->shutdown_pending && !s->shutdown_started)
    tw__stream_do_shutdown(s);
}

static void tw__stream_written(uv_write_t *req, int status) {
  tw__write_req *w = (tw__write_req *)req;
  tw__stream *s = req->handle->data;
  tw__free(w->buf);
  tw__free(w);
  s->inflight--;
  if (s->closing) return; /* cancelled by the close */
  if (status < 0) {
    tw__stream_close(s, tw__connection_lost(status), 0);
    return;
  }
  tw__stream_buffer_changed(s);
  tw__stream_drained(s);
}

/* Hand pend to libuv in one uv_write (it writes at once when its queue is
 * empty). */
static void tw__stream_flush(tw__stream *s) {
  tw__write_req *w;
  uv_buf_t b;
  int err;
  if (s->closing || s->pend_len == 0) return;
  if (s->inflight == 0 && s->h.stream.write_queue_size == 0) {
    /* Nothing queued in libuv: try the kernel first. A uv_write would
     * send at once too, but costs a request allocation, a callback on the
     * next loop turn and its bookkeeping. (bench/echo's ping-pong on 10
     * connections, 64-byte messages: twuv/raw libuv 0.84 before, 0.80 -
     * 0.88 after, on an idle 2-vCPU VM: within noise; the gap is
     * elsewhere, docs/performance.md.) */
    int sent;
    b = uv_buf_init(s->pend, (unsigned)s->pend_len);
    sent = uv_try_write(&s->h.stream, &b, 1);
    if (sent == UV_EAGAIN || sent == UV_ENOSYS) sent = 0;
    if (sent < 0) {
      tw__stream_close(s, tw__connection_lost(sent), 0);
      return;
    }
    if ((size_t)sent == s->pend_len) {
      /* All gone: the buffer goes too (an idle connection keeps none). */
      tw__free(s->pend);
      s->pend = NULL;
      s->pend_len = s->pend_cap = 0;
      tw__stream_buffer_changed(s);
      tw__stream_drained(s);
      return;
    }
    memmove(s->pend, s->pend + sent, s->pend_len - (size_t)sent);
    s->pend_len -= (size_t)sent;
  }
  w = tw__malloc(sizeof(*w));
  if (w == NULL) {
    /* Try again on the next turn. */
    tw__reactor_flush_add(s->r, &s->flush);
    return;
  }
  w->buf = s->pend;
  b = uv_buf_init(s->pend, (unsigned)s->pend_len);
  s->pend = NULL;
  s->pend_len = s->pend_cap = 0;
  err = uv_write(&w->req, &s->h.stream, &b, 1, tw__stream_written);
  if (err != 0) {
    tw__free(w->buf);
    tw__free(w);
    tw__stream_close(s, tw__connection_lost(err), 0);
    return;
  }
  s->inflight++;
  /* Written at once: the count went down (and a lose may proceed). */
  tw__stream_buffer_changed(s);
  tw__stream_drained(s);
}

static void tw__stream_flush_cb(tw__flush_node *n) {
  tw__stream *s = TW__CONTAINER_OF(n, tw__stream, flush);
  if (s->pend_len > 0) {
    tw__stream_flush(s);
    return;
  }
  tw__stream_buffer_changed(s);
  tw__stream_drained(s); /* a lose or shutdown with nothing to send */
}

static tw__stream *tw__stream_of(tw_transport *t) {
  return (tw__stream *)t;
}

static int tw__stream_writev(tw_transport *t, const tw_iovec *bufs,
                             size_t n) {
  tw__stream *s = tw__stream_of(t);
  size_t total = 0, i, skip = 0;
  int err;
  /* After lose_write_connection, writes are still sent until the
   * shutdown starts (the buffer drained), as Twisted's. */
  if (s->closing || s->shutdown_started) return TW_ENOTCONN;
  for (i = 0; i < n; i++) total += bufs[i].len;
  if (s->inflight == 0 && s->h.stream.write_queue_size == 0 &&
      s->pend_len + total >= TW__WRITE_DIRECT) {
    uv_buf_t iov[TW__WRITE_IOV + 1];
    unsigned k = 0;
    int sent;
    if (s->pend_len > 0) iov[k++] = uv_buf_init(s->pend, (unsigned)s->pend_len);
    for (i = 0; i < n && k < TW__WRITE_IOV + 1; i++)
      iov[k++] = uv_buf_init((char *)bufs[i].base, (unsigned)bufs[i].len);
    sent = uv_try_write(&s->h.stream, iov, k);
    if (sent == UV_EAGAIN || sent == UV_ENOSYS) sent = 0;
    if (sent < 0) {
      /* The write is accepted and the connection is lost with the error
       * (Twisted finds it at the next doWrite). */
      tw__stream_close(s, tw__connection_lost(sent), 0);
      return 0;
    }
    skip = (size_t)sent;
    if (s->pend_len > 0) {
      size_t from_pend = skip < s->pend_len ? skip : s->pend_len;
      memmove(s->pend, s->pend + from_pend, s->pend_len - from_pend);
      s->pend_len -= from_pend;
      skip -= from_pend;
    }
  }
  /* Copy what the kernel did not take. */
  if (skip < total) {
    err = tw__stream_reserve(s, total - skip);
    if (err != 0) {
      if (skip == 0) return TW_ENOMEM; /* nothing written */
      /* Part of it left: the stream cannot stay consistent. */
      tw__stream_close(s, tw__connection_lost(UV_ENOMEM), 0);
      return 0;
    }
    for (i = 0; i < n; i++) {
      size_t len = bufs[i].len;
      const char *base = bufs[i].base;
      if (skip >= len) {
        skip -= len;
        continue;
      }
      memcpy(s->pend + s->pend_len, base + skip, len - skip);
      s->pend_len += len - skip;
      skip = 0;
    }
  }
  /* Flushed or not, the flush node runs this turn: when the kernel took
   * everything at once, it is Twisted's doWrite finding the buffer empty
   * (a pull producer is resumed from there, never from inside write). */
  tw__reactor_flush_add(s->r, &s->flush);
  tw__stream_buffer_changed(s);
  return 0;
}

/* ---- closing ops ---------------------------------------------------------------- */

static int tw__stream_lose(tw_transport *t) {
  tw__stream *s = tw__stream_of(t);
  if (s->closing) return 0;
  s->lose_pending = 1;
  /* Drain first (not uv_shutdown: it would make later writes fail with
   * EPIPE and forbid an abort's RST; networking-reference.md). The close
   * waits for the flush before the next poll, as Twisted's waits for the
   * next doWrite: what the protocol writes after lose_connection in the
   * same callback still goes out. */
  tw__reactor_flush_add(s->r, &s->flush);
  return 0;
}

static int tw__stream_abort(tw_transport *t) {
  tw__stream *s = tw__stream_of(t);
  s->pend_len = 0;
  tw__stream_close(s, tw__connection_aborted(), 1);
  return 0;
}

/* protocol.c's close after a failure of the user's: the buffer goes, the
 * socket is closed without SO_LINGER (the peer reads EOF; Linux still
 * sends a RST if bytes the peer sent are left unread, as for Twisted's
 * close). The reason protocol.c keeps (the failure) is the stream's too,
 * so that a connector's client_connection_lost gets it, as Twisted's. */
static int tw__stream_close_now(tw_transport *t) {
  tw__stream *s = tw__stream_of(t);
  s->pend_len = 0;
  tw__stream_close(s, t->reason != NULL ? tw_failure_ref(t->reason) : NULL, 0);
  return 0;
}

/* The write side is shut: write_connection_lost. A shutdown error (the
 * peer reset the connection meanwhile: ENOTCONN) is ignored, as tcp.py's
 * _closeWriteConnection ignores shutdown's OSError and still notifies:
 * the read side reports the broken connection (or the protocol closes). */
static void tw__stream_shut(uv_shutdown_t *req, int status) {
  tw__stream *s = req->handle->data;
  tw__free(req);
  (void)status;
  if (s->closing) return;
  tw__transport_write_closed(&s->base);
}

static void tw__stream_do_shutdown(tw__stream *s) {
  uv_shutdown_t *req = tw__malloc(sizeof(*req));
  int err;
  if (req == NULL) {
    tw__stream_close(s, tw__connection_lost(UV_ENOMEM), 0);
    return;
  }
  s->shutdown_started = 1;
  err = uv_shutdown(req, &s->h.stream, tw__stream_shut);
  if (err != 0) {
    tw__free(req);
    tw__stream_close(s, tw__connection_lost(err), 0);
  }
}

static int tw__stream_lose_write(tw_transport *t) {
  tw__stream *s = tw__stream_of(t);
  if (s->closing || s->shutdown_pending) return 0;
  s->shutdown_pending = 1;
  tw__reactor_flush_add(s->r, &s->flush);
  return 0;
}

/* ---- the rest of the ops ---------------------------------------------------------- */

static int tw__stream_on_loop(tw_transport *t) {
  return tw_reactor_in_loop_thread(tw__stream_of(t)->r);
}

static int tw__stream_get_peer(tw_transport *t, tw_address *out) {
  tw__stream_address(tw__stream_of(t), 1, out);
  return 0;
}

static int tw__stream_get_host(tw_transport *t, tw_address *out) {
  tw__stream_address(tw__stream_of(t), 0, out);
  return 0;
}

static int tw__stream_set_tcp_option(tw_transport *t, int opt, int enabled) {
  tw__stream *s = tw__stream_of(t);
  if (!s->is_tcp) return TW_ENOTSUP;
  if (s->closing) return TW_ENOTCONN;
  if (opt == 0) return uv_tcp_nodelay(&s->h.tcp, enabled != 0);
  /* Twisted's setTcpKeepAlive sets SO_KEEPALIVE only; libuv also sets the
   * idle time (TCP_KEEPIDLE): the kernel's default, 7200 s. */
  return uv_tcp_keepalive(&s->h.tcp, enabled != 0, 7200);
}

static int tw__stream_get_tcp_option(tw_transport *t, int opt) {
  tw__stream *s = tw__stream_of(t);
  uv_os_fd_t fd;
  int v = 0;
  socklen_t len = sizeof(v);
  if (!s->is_tcp || s->closing) return 0;
  if (uv_fileno(&s->h.handle, &fd) != 0) return 0;
  if (opt == 0
          ? getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &len)
          : getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &v, &len))
    return 0;
  return v != 0;
}

static int tw__stream_pause_reading(tw_transport *t) {
  tw__stream *s = tw__stream_of(t);
  s->paused = 1;
  if (s->reading) {
    /* Takes effect at once, also inside read_cb (libuv rechecks). */
    uv_read_stop(&s->h.stream);
    s->reading = 0;
  }
  return 0;
}

static int tw__stream_resume_reading(tw_transport *t) {
  tw__stream *s = tw__stream_of(t);
  int err;
  s->paused = 0;
  if (!s->made) return 0; /* tw__stream_start reads */
  /* FileDescriptor.resumeProducing does nothing while disconnecting. */
  if (s->base.disconnecting) return 0;
  err = tw__stream_start_reading(s);
  if (err != 0) tw__stream_close(s, tw__connection_lost(err), 0);
  return 0;
}

static size_t tw__stream_buffered(tw_transport *t) {
  return tw__stream_buffered_count(tw__stream_of(t));
}

static const tw__transport_ops tw__stream_ops = {
    .on_loop_thread = tw__stream_on_loop,
    .writev = tw__stream_writev,
    .lose = tw__stream_lose,
    .abort = tw__stream_abort,
    .close_now = tw__stream_close_now,
    .lose_write = tw__stream_lose_write,
    .get_peer = tw__stream_get_peer,
    .get_host = tw__stream_get_host,
    .set_tcp_option = tw__stream_set_tcp_option,
    .get_tcp_option = tw__stream_get_tcp_option,
    .pause_reading = tw__stream_pause_reading,
    .resume_reading = tw__stream_resume_reading,
    .buffered = tw__stream_buffered,
    .log_user_failures = 1,
};
