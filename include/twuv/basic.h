/*
 * twuv/basic.h - twisted.protocols.basic: LineReceiver, LineOnlyReceiver,
 * Int8/16/32StringReceiver, NetstringReceiver and FileSender.
 *
 * Each receiver is a protocol (protocol.h) that the user builds on by
 * embedding it first in his own struct, as a Twisted program subclasses
 * LineReceiver; the receiver's own tw_protocol_ops does the parsing and
 * calls the user's table:
 *
 *     typedef struct chat { tw_line_receiver lr; int lines; } chat;
 *     static tw_failure *chat_line(tw_line_receiver *lr, const char *line,
 *                                  size_t len) {
 *       ((chat *)lr)->lines++;
 *       tw_line_receiver_send_line(lr, line, len);   (an echo)
 *       return NULL;
 *     }
 *     static const tw_line_receiver_ops chat_ops = {.line_received = chat_line};
 *     static void chat_init(chat *c) { tw_line_receiver_init(&c->lr, &chat_ops); }
 *
 * A factory builds such a protocol in its build_protocol: allocate the
 * user's struct, init the receiver, set base.dealloc to free it
 * (docs/networking.md, "Line-based protocols"); the receiver frees its own
 * buffers after connection_lost, before dealloc.
 *
 * Memory: a receiver keeps only what Twisted keeps between two reads (a
 * partial line, a partial length-prefixed string, a netstring's payload),
 * and never more than its limit (max_length) for that: beyond it the
 * limit's callback runs (line_length_exceeded, length_limit_exceeded) or
 * the netstring is refused. What a receiver holds is freed when its
 * connection is lost (after the user's connection_lost), or by its
 * _cleanup call for a receiver that never had a connection.
 *
 * Borrowed data: the line, string or raw bytes given to a callback are
 * valid for the call only. A line (or string) that lies wholly inside the
 * bytes the transport delivered is passed as a pointer into them, without
 * a copy; only a line split between two reads is assembled in the
 * receiver's buffer (docs/performance.md, "Lines", measures it).
 *
 * Threads: a receiver belongs to its transport's loop thread, as every
 * protocol; nothing here is thread-safe. The tw_transport_* calls a
 * receiver makes answer TW_EWRONGTHREAD from another thread.
 *
 * Callbacks return a failure to drop the connection with it (as
 * data_received does, protocol.h; Twisted's "return why" / raise), or NULL.
 */
#ifndef TWUV_BASIC_H
#define TWUV_BASIC_H

#include <stddef.h>

#include "common.h"
#include "failure.h"
#include "protocol.h"

#ifdef __cplusplus
extern "C" {
#endif

/* NotImplementedError (RuntimeError): what a receiver whose string or line
 * callback is NULL gives, as Twisted's base classes raise it. */
TW_EXTERN extern const tw_error_type TW_NOT_IMPLEMENTED_ERROR;

/* The longest delimiter a line receiver takes. */
#define TW_LINE_DELIMITER_MAX 16
/* LineReceiver.MAX_LENGTH and LineOnlyReceiver.MAX_LENGTH. */
#define TW_LINE_MAX_LENGTH 16384

/* ---- LineReceiver ------------------------------------------------------------ */

typedef struct tw_line_receiver tw_line_receiver;

/*
 * The user's callbacks. Any may be NULL: connection_made, connection_lost,
 * read_connection_lost and write_connection_lost are the protocol's (a
 * non-NULL read_connection_lost makes the receiver half-closeable,
 * protocol.h); line_received and raw_data_received NULL give a
 * NotImplementedError failure when called, as Twisted's; a NULL
 * line_length_exceeded does Twisted's default, lose_connection.
 */
typedef struct tw_line_receiver_ops {
  void (*connection_made)(tw_line_receiver *lr);
  void (*connection_lost)(tw_line_receiver *lr, tw_failure *reason);
  void (*read_connection_lost)(tw_line_receiver *lr);
  void (*write_connection_lost)(tw_line_receiver *lr);
  /* lineReceived: line without its delimiter, borrowed for the call. */
  tw_failure *(*line_received)(tw_line_receiver *lr, const char *line,
                               size_t len);
  /* rawDataReceived: in raw mode, everything buffered and received, in one
   * call per read (borrowed). */
  tw_failure *(*raw_data_received)(tw_line_receiver *lr, const char *data,
                                   size_t len);
  /* lineLengthExceeded: a line longer than max_length, or max_length +
   * len(delimiter) bytes without a delimiter. data is the rest of the
   * buffer, starting with the over-long line (it may hold more lines, or
   * only the start of the line), borrowed; the buffer is empty when it is
   * called. As Twisted: parsing stops after it until the next read. */
  tw_failure *(*line_length_exceeded)(tw_line_receiver *lr, const char *data,
                                      size_t len);
} tw_line_receiver_ops;

/*
 * The receiver, embedded first in the user's struct. base is the protocol
 * to hand to a transport or factory (&lr->base); producer is the receiver
 * as a pull or push producer (Twisted's LineReceiver is one: LineTester
 * registers itself with registerProducer(self, False)). Every other field
 * is private: use the functions below.
 */
struct tw_line_receiver {
  tw_protocol base;     /* first */
  tw_producer producer; /* pause/resume/stop_producing below */
  const tw_line_receiver_ops *ops;
  size_t max_length;
  /* private */
  char *tw__buf;          /* unparsed bytes kept between reads (owned) */
  size_t tw__off, tw__len, tw__cap;
  const char *tw__view;   /* the bytes being parsed (borrowed or lent) */
  size_t tw__view_len;
  const char *tw__next;   /* the read's rest, after a line completed */
  size_t tw__next_len;
  char *tw__lent;         /* the owned block tw__view points into */
  size_t tw__lent_cap;
  char *tw__cleared;      /* what clear_line_buffer returned last */
  unsigned char tw__delim[TW_LINE_DELIMITER_MAX];
  unsigned char tw__delim_len;
  unsigned char tw__line_mode, tw__paused, tw__busy, tw__partial, tw__lost,
      tw__cleanup_due;
};

/*
 * tw_line_receiver_init: zero lr and make it a LineReceiver calling ops
 * (which must outlive it): line mode, delimiter "\r\n", max_length
 * TW_LINE_MAX_LENGTH, not paused. Returns 0 or TW_EINVAL (lr or ops NULL).
 * Any thread (before the receiver is used).
 */
TW_EXTERN int tw_line_receiver_init(tw_line_receiver *lr,
                                    const tw_line_receiver_ops *ops);

/*
 * tw_line_receiver_cleanup: free what lr holds (the partial line, the
 * last cleared buffer) and empty its buffer. Done by the receiver itself
 * after the user's connection_lost; call it for a receiver that never had
 * a connection, or was fed through its data_received by hand. Safe to
 * call more than once; NULL ignored. Not from inside lr's own callbacks.
 */
TW_EXTERN void tw_line_receiver_cleanup(tw_line_receiver *lr);

/*
 * tw_line_receiver_set_delimiter: the delimiter (1 to
 * TW_LINE_DELIMITER_MAX bytes, copied). Takes effect for the next line.
 * Returns 0 or TW_EINVAL (NULL, len 0 or too long; nothing changed).
 * tw_line_receiver_delimiter: the delimiter and its length in *len (len
 * may be NULL); NULL for NULL.
 */
TW_EXTERN int tw_line_receiver_set_delimiter(tw_line_receiver *lr,
                                             const void *delimiter,
                                             size_t len);
TW_EXTERN const char *tw_line_receiver_delimiter(const tw_line_receiver *lr,
                                                 size_t *len);

/*
 * tw_line_receiver_set_max_length: MAX_LENGTH (any value, 0 included).
 * Setting lr->max_length directly does the same. Returns 0 or TW_EINVAL.
 */
TW_EXTERN int tw_line_receiver_set_max_length(tw_line_receiver *lr,
                                              size_t max_length);

/*
 * tw_line_receiver_set_raw_mode: setRawMode - what is received (and what
 * remains of the read being parsed) goes to raw_data_received. Returns 0
 * or TW_EINVAL.
 */
TW_EXTERN int tw_line_receiver_set_raw_mode(tw_line_receiver *lr);

/*
 * tw_line_receiver_set_line_mode: setLineMode(extra) - back to lines;
 * extra (len bytes, copied, may be NULL when len is 0) is parsed as if
 * received, before what remains buffered would be. From inside a callback
 * (as Twisted's rawDataReceived does with the rest of its data) extra is
 * only queued and parsed when the callback returns; called outside the
 * receiver's callbacks, it is parsed at once (callbacks run from inside
 * this call). Do not pass extra from line_received (Twisted's advice: it
 * goes after the rest of the read).
 * Returns NULL, or a failure the caller owns: what a callback returned
 * while extra was parsed (Twisted returns it from setLineMode: return it
 * from your callback to drop the connection, or unref it), MemoryError
 * (extra could not be kept: nothing changed), ValueError (lr NULL, extra
 * NULL with len > 0).
 */
TW_EXTERN tw_failure *tw_line_receiver_set_line_mode(tw_line_receiver *lr,
                                                     const void *extra,
                                                     size_t len);

/* tw_line_receiver_line_mode: 1 in line mode, 0 in raw mode (and NULL). */
TW_EXTERN int tw_line_receiver_line_mode(const tw_line_receiver *lr);

/*
 * tw_line_receiver_clear_line_buffer: clearLineBuffer - empty the buffer
 * and give what it held (*data, *len; both may be NULL to discard). Also
 * from inside a callback: then it is the rest of the read being parsed,
 * which is then not parsed. *data is owned by lr and valid until the next
 * clear_line_buffer or cleanup (or the connection's loss). Returns 0,
 * TW_EINVAL (lr NULL), TW_ENOMEM (nothing changed).
 */
TW_EXTERN int tw_line_receiver_clear_line_buffer(tw_line_receiver *lr,
                                                 const char **data,
                                                 size_t *len);

/* tw_line_receiver_buffered: how many bytes are buffered (received and
 * not yet parsed, the partial line included). 0 for NULL. */
TW_EXTERN size_t tw_line_receiver_buffered(const tw_line_receiver *lr);

/*
 * tw_line_receiver_send_line: sendLine - write line and the delimiter,
 * one vectored write. Returns what tw_transport_write_sequence returns
 * (TW_EINVAL also for lr NULL, line NULL with len > 0, no transport).
 */
TW_EXTERN int tw_line_receiver_send_line(tw_line_receiver *lr,
                                         const void *line, size_t len);

/*
 * The receiver as a producer (_PauseableMixin):
 * tw_line_receiver_pause_producing: stop parsing (no callback until
 * resumed; what arrives is kept) and pause the transport. Returns 0 or
 * what tw_transport_pause_producing returns (the receiver is paused
 * anyway, as Twisted sets paused before calling the transport).
 * tw_line_receiver_resume_producing: resume the transport, then parse
 * what was kept (callbacks run from inside this call; a failure one of
 * them returns closes the connection with it, as from data_received).
 * Returns 0 or the transport's error (then nothing is parsed, as Twisted's
 * raise stops it).
 * tw_line_receiver_stop_producing: paused, and the transport's
 * stop_producing. Returns 0 or its error.
 * All: TW_EINVAL for NULL; without a transport only the receiver changes.
 * tw_line_receiver_paused: 1 when paused, else 0 (also for NULL).
 */
TW_EXTERN int tw_line_receiver_pause_producing(tw_line_receiver *lr);
TW_EXTERN int tw_line_receiver_resume_producing(tw_line_receiver *lr);
TW_EXTERN int tw_line_receiver_stop_producing(tw_line_receiver *lr);
TW_EXTERN int tw_line_receiver_paused(const tw_line_receiver *lr);

#ifdef __cplusplus
}
#endif
#endif /* TWUV_BASIC_H */
