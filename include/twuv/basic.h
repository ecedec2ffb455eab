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
#include <stdio.h>

#include "common.h"
#include "defer.h"
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

/*
 * Private: the unparsed bytes of a receiver (what Twisted keeps in
 * _buffer), without copying the read being parsed: view (the read, or a
 * block of ours lent to the parse), next (the read's rest once a split
 * line was completed in buf), then buf (owned: kept between reads, and
 * what re-enters from inside a callback).
 */
typedef struct tw__recv_buf {
  char *buf;
  size_t off, len, cap;
  const char *view;
  size_t view_len;
  const char *next;
  size_t next_len;
  char *lent;
  size_t lent_cap;
  size_t keep_cap; /* a lent block larger than this is not kept */
} tw__recv_buf;

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
  tw__recv_buf tw__rb; /* private, as every tw__ field */
  char *tw__cleared;   /* what clear_line_buffer returned last */
  unsigned char tw__delim[TW_LINE_DELIMITER_MAX];
  unsigned char tw__delim_len;
  unsigned char tw__line_mode, tw__paused, tw__busy, tw__partial, tw__lost,
      tw__cleanup_due, tw__changed;
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

/* ---- LineOnlyReceiver ---------------------------------------------------------- */

typedef struct tw_line_only_receiver tw_line_only_receiver;

/*
 * LineOnlyReceiver: lines only (no raw mode, no pausing), Twisted's
 * faster variant. Callbacks as tw_line_receiver_ops's; line_length_exceeded
 * gets the over-long line alone (a complete line longer than max_length,
 * or the buffered partial line once it is longer than max_length); NULL
 * loses the connection.
 * As Twisted: no line is delivered once the transport is disconnecting,
 * and after line_length_exceeded the rest of that read is dropped but its
 * last partial line. Unlike Twisted, the over-long partial line is dropped
 * after line_length_exceeded (Twisted keeps it and calls again with it
 * and all that follows until a delimiter: an unbounded buffer).
 */
typedef struct tw_line_only_receiver_ops {
  void (*connection_made)(tw_line_only_receiver *lo);
  void (*connection_lost)(tw_line_only_receiver *lo, tw_failure *reason);
  void (*read_connection_lost)(tw_line_only_receiver *lo);
  void (*write_connection_lost)(tw_line_only_receiver *lo);
  tw_failure *(*line_received)(tw_line_only_receiver *lo, const char *line,
                               size_t len);
  tw_failure *(*line_length_exceeded)(tw_line_only_receiver *lo,
                                      const char *line, size_t len);
} tw_line_only_receiver_ops;

struct tw_line_only_receiver {
  tw_protocol base; /* first */
  const tw_line_only_receiver_ops *ops;
  size_t max_length;
  tw__recv_buf tw__rb; /* private */
  unsigned char tw__delim[TW_LINE_DELIMITER_MAX];
  unsigned char tw__delim_len, tw__busy, tw__lost, tw__cleanup_due;
};

/*
 * tw_line_only_receiver_init: zero lo, delimiter "\r\n", max_length
 * TW_LINE_MAX_LENGTH. Returns 0 or TW_EINVAL. tw_line_only_receiver_cleanup,
 * _set_delimiter, _send_line: as the tw_line_receiver_ calls (send_line
 * is writeSequence((line, delimiter))).
 */
TW_EXTERN int tw_line_only_receiver_init(tw_line_only_receiver *lo,
                                         const tw_line_only_receiver_ops *ops);
TW_EXTERN void tw_line_only_receiver_cleanup(tw_line_only_receiver *lo);
TW_EXTERN int tw_line_only_receiver_set_delimiter(tw_line_only_receiver *lo,
                                                  const void *delimiter,
                                                  size_t len);
TW_EXTERN int tw_line_only_receiver_send_line(tw_line_only_receiver *lo,
                                              const void *line, size_t len);
/* tw_line_only_receiver_buffered: bytes kept (the partial line). */
TW_EXTERN size_t tw_line_only_receiver_buffered(
    const tw_line_only_receiver *lo);

/* ---- Int8/16/32StringReceiver ---------------------------------------------------- */

typedef struct tw_int_string_receiver tw_int_string_receiver;

/* IntNStringReceiver.MAX_LENGTH and NetstringReceiver.MAX_LENGTH. */
#define TW_STRING_MAX_LENGTH 99999

/*
 * The user's callbacks (the protocol's four as tw_line_receiver_ops's).
 * string_received: a string, without its prefix, borrowed for the call;
 * NULL gives a NotImplementedError failure. length_limit_exceeded: a
 * prefix announced length > max_length; NULL loses the connection (as
 * Twisted). As Twisted, parsing stops there and the over-long prefix
 * stays buffered (tw_int_string_receiver_recvd shows it), and
 * length_limit_exceeded is called again for each read. Unlike Twisted,
 * what arrives after is not kept (Twisted appends it to a buffer it can
 * never parse), and the strings before the prefix are not delivered again
 * (Twisted keeps the whole read, _unprocessed = alldata, and parses it
 * again from its start on the next read).
 */
typedef struct tw_int_string_receiver_ops {
  void (*connection_made)(tw_int_string_receiver *r);
  void (*connection_lost)(tw_int_string_receiver *r, tw_failure *reason);
  void (*read_connection_lost)(tw_int_string_receiver *r);
  void (*write_connection_lost)(tw_int_string_receiver *r);
  tw_failure *(*string_received)(tw_int_string_receiver *r, const char *s,
                                 size_t len);
  tw_failure *(*length_limit_exceeded)(tw_int_string_receiver *r,
                                       size_t length);
} tw_int_string_receiver_ops;

/* One struct for the three: the prefix length is chosen by the init. */
struct tw_int_string_receiver {
  tw_protocol base;     /* first */
  tw_producer producer; /* _PauseableMixin */
  const tw_int_string_receiver_ops *ops;
  size_t max_length;
  tw__recv_buf tw__rb; /* private */
  char *tw__recvd;     /* set_recvd's block, used when the callback returns */
  size_t tw__recvd_len;
  char *tw__scratch;   /* recvd() gathered from several pieces */
  unsigned char tw__prefix, tw__paused, tw__busy, tw__lost, tw__cleanup_due,
      tw__stalled, tw__recvd_set;
};
typedef tw_int_string_receiver tw_int8_string_receiver;
typedef tw_int_string_receiver tw_int16_string_receiver;
typedef tw_int_string_receiver tw_int32_string_receiver;

/*
 * tw_int8/16/32_string_receiver_init: zero r and make it an
 * Int8StringReceiver (a 1-byte length), Int16StringReceiver (2 bytes,
 * network byte order, "!H") or Int32StringReceiver (4 bytes, "!I");
 * max_length TW_STRING_MAX_LENGTH. Returns 0 or TW_EINVAL.
 */
TW_EXTERN int tw_int8_string_receiver_init(
    tw_int_string_receiver *r, const tw_int_string_receiver_ops *ops);
TW_EXTERN int tw_int16_string_receiver_init(
    tw_int_string_receiver *r, const tw_int_string_receiver_ops *ops);
TW_EXTERN int tw_int32_string_receiver_init(
    tw_int_string_receiver *r, const tw_int_string_receiver_ops *ops);

/* tw_int_string_receiver_cleanup: as tw_line_receiver_cleanup. */
TW_EXTERN void tw_int_string_receiver_cleanup(tw_int_string_receiver *r);

/* tw_int_string_receiver_prefix_length: 1, 2 or 4 (0 for NULL). */
TW_EXTERN size_t tw_int_string_receiver_prefix_length(
    const tw_int_string_receiver *r);

/*
 * tw_int_string_receiver_send_string: sendString - the length prefix and
 * s, one vectored write. Returns what tw_transport_write_sequence returns;
 * TW_EINVAL (NULL, no transport, s NULL with len > 0, and len >= 2 **
 * (8 * prefix length): Twisted's StringTooLongError, nothing written).
 */
TW_EXTERN int tw_int_string_receiver_send_string(tw_int_string_receiver *r,
                                                 const void *s, size_t len);

/*
 * The recvd attribute (_RecvdCompatHack): tw_int_string_receiver_recvd:
 * the bytes received and not yet parsed - inside string_received, those
 * after the string; inside length_limit_exceeded, from the over-long
 * prefix on. *data is borrowed until the receiver parses again (the
 * callback returns) - may be NULL to only get *len.
 * tw_int_string_receiver_set_recvd: replace them by a copy of data (so
 * that, from string_received, the parse goes on with it instead). Both
 * return 0, TW_EINVAL (r NULL, data NULL with len > 0; *len NULL),
 * TW_ENOMEM (nothing changed).
 */
TW_EXTERN int tw_int_string_receiver_recvd(tw_int_string_receiver *r,
                                           const char **data, size_t *len);
TW_EXTERN int tw_int_string_receiver_set_recvd(tw_int_string_receiver *r,
                                               const void *data, size_t len);

/* As tw_line_receiver_pause/resume/stop_producing and _paused. */
TW_EXTERN int tw_int_string_receiver_pause_producing(
    tw_int_string_receiver *r);
TW_EXTERN int tw_int_string_receiver_resume_producing(
    tw_int_string_receiver *r);
TW_EXTERN int tw_int_string_receiver_stop_producing(tw_int_string_receiver *r);
TW_EXTERN int tw_int_string_receiver_paused(const tw_int_string_receiver *r);

/* ---- NetstringReceiver ------------------------------------------------------------ */

/* NetstringParseError (ValueError): the reason a netstring was refused,
 * kept by the receiver (tw_netstring_receiver_parse_error). */
TW_EXTERN extern const tw_error_type TW_NETSTRING_PARSE_ERROR;

typedef struct tw_netstring_receiver tw_netstring_receiver;

/*
 * string_received: a netstring's payload, borrowed for the call; NULL
 * gives a NotImplementedError failure. The protocol's four as above.
 */
typedef struct tw_netstring_receiver_ops {
  void (*connection_made)(tw_netstring_receiver *ns);
  void (*connection_lost)(tw_netstring_receiver *ns, tw_failure *reason);
  void (*read_connection_lost)(tw_netstring_receiver *ns);
  void (*write_connection_lost)(tw_netstring_receiver *ns);
  tw_failure *(*string_received)(tw_netstring_receiver *ns, const char *s,
                                 size_t len);
} tw_netstring_receiver_ops;

struct tw_netstring_receiver {
  tw_protocol base; /* first */
  const tw_netstring_receiver_ops *ops;
  size_t max_length;
  /* private */
  tw_failure *tw__error;  /* the NetstringParseError, once refused */
  char *tw__payload;      /* a payload split between reads */
  size_t tw__have, tw__cap;
  size_t tw__expected;    /* payload + its comma */
  char *tw__pend;         /* what re-entered from a callback */
  size_t tw__pend_len, tw__pend_cap;
  char tw__digits[24];    /* a length split between reads */
  unsigned char tw__ndigits, tw__state, tw__busy, tw__lost, tw__cleanup_due;
};

/*
 * tw_netstring_receiver_init: zero ns, max_length TW_STRING_MAX_LENGTH.
 * Returns 0 or TW_EINVAL. tw_netstring_receiver_cleanup: as
 * tw_line_receiver_cleanup (also releases the parse error).
 *
 * The netstring rules are Twisted's, down to when each error is seen: a
 * length is digits without leading zeros ("0" alone is one), then ':'; the
 * digits are refused as soon as they are more than
 * ceil(log10(max_length)) + 1 or their value is above max_length ("The
 * received netstring is longer than the maximum %d specified by
 * self.MAX_LENGTH"), anything else where the length should be is refused
 * ("The received netstring does not start with a length specification.";
 * as Python's regex $, a '\n' as the very last byte received after the
 * digits is waited on), and a payload not followed by ',' is refused ("The
 * received netstring is not terminated by a comma."). A refusal loses the
 * connection (brokenPeer) and drops what follows.
 */
TW_EXTERN int tw_netstring_receiver_init(tw_netstring_receiver *ns,
                                         const tw_netstring_receiver_ops *ops);
TW_EXTERN void tw_netstring_receiver_cleanup(tw_netstring_receiver *ns);

/*
 * tw_netstring_receiver_send_string: sendString - "<len>:<s>," as one
 * vectored write. Returns what tw_transport_write_sequence returns;
 * TW_EINVAL (NULL, no transport, s NULL with len > 0).
 */
TW_EXTERN int tw_netstring_receiver_send_string(tw_netstring_receiver *ns,
                                                const void *s, size_t len);

/*
 * tw_netstring_receiver_parse_error: the NetstringParseError that made the
 * receiver refuse the peer (borrowed, valid until cleanup), or NULL.
 * tw_netstring_receiver_broken_peer: brokenPeer, 1 once refused, else 0.
 */
TW_EXTERN tw_failure *tw_netstring_receiver_parse_error(
    const tw_netstring_receiver *ns);
TW_EXTERN int tw_netstring_receiver_broken_peer(
    const tw_netstring_receiver *ns);

/* ---- FileSender --------------------------------------------------------------------- */

/* FileSender.CHUNK_SIZE */
#define TW_FILE_SENDER_CHUNK_SIZE 16384

/*
 * A transform: given a chunk read from the file (chunk, *len bytes, which
 * it may change in place), return the bytes to write (chunk itself, or
 * memory of its own valid until its next call) with their count in *len;
 * NULL fails the transfer (the Deferred gets a ValueError).
 */
typedef const void *(*tw_file_sender_transform_fn)(void *chunk, size_t *len,
                                                   void *arg);

/*
 * FileSender: a pull (non-streaming) producer sending a file's contents to
 * a consumer (a transport), CHUNK_SIZE bytes per resume_producing. The
 * caller owns the struct; it must stay valid until the Deferred fired.
 */
typedef struct tw_file_sender {
  tw_producer producer; /* registered with the consumer */
  size_t chunk_size;    /* CHUNK_SIZE; may be changed before begin */
  /* private */
  FILE *tw__file;
  tw_transport *tw__consumer;
  tw_file_sender_transform_fn tw__transform;
  void *tw__arg;
  tw_deferred *tw__deferred;
  char *tw__chunk;
  int tw__last; /* the last byte sent, -1 before any */
} tw_file_sender;

/* tw_file_sender_init: zero fs, chunk_size TW_FILE_SENDER_CHUNK_SIZE.
 * Returns 0 or TW_EINVAL. */
TW_EXTERN int tw_file_sender_init(tw_file_sender *fs);

/*
 * tw_file_sender_begin: beginFileTransfer(file, consumer, transform) -
 * register fs as a pull producer with consumer, and give *out a Deferred
 * (the caller's reference) fired when everything was written, with the
 * last byte written (tw_result_int: 0-255, or -1 for an empty file), as
 * Twisted's fires with lastSent. file (a FILE *, read with fread) stays
 * the caller's: not closed. transform may be NULL.
 * The Deferred fails with Exception("Consumer asked us to stop producing")
 * when the consumer stops the producer first (the connection went), with
 * the OSError of a read error (the connection is then dropped with it, as
 * Twisted's resumeProducing raising), or with the transform's ValueError.
 * Returns 0, TW_EINVAL (NULL, chunk_size 0), TW_EBUSY (a transfer is
 * running, or the consumer has a producer), TW_ENOMEM; on error nothing
 * was registered and *out is NULL. Loop thread (the consumer's).
 */
TW_EXTERN int tw_file_sender_begin(tw_file_sender *fs, FILE *file,
                                   tw_transport *consumer,
                                   tw_file_sender_transform_fn transform,
                                   void *arg, tw_deferred **out);

#ifdef __cplusplus
}
#endif
#endif /* TWUV_BASIC_H */
