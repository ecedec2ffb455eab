/*
 * lib/basic.c - basic.h: twisted.protocols.basic's LineReceiver (this
 * file's first part), LineOnlyReceiver, the int-prefixed receivers, the
 * netstring receiver and FileSender.
 *
 * The LineReceiver parses what Twisted's dataReceived parses - its
 * _buffer, the bytes kept plus the read - without copying the read: the
 * unparsed stream is up to three pieces, in order,
 *   view  the bytes being parsed: the read itself (borrowed from the
 *         transport), or a block of ours lent to the parse (lent);
 *   next  the rest of the read, when a line split between two reads was
 *         first completed in our buffer;
 *   buf   what arrived meanwhile (data re-entering while a callback runs:
 *         setLineMode(extra), a resume), and what is kept between reads.
 * A line inside view is handed out as a pointer into it. Our buffer is
 * never handed out in place: it is lent (moved to lent) first, so that
 * bytes arriving from inside a callback go to a fresh buffer and never
 * move the bytes the callback is reading.
 */
#include "internal.h"
#include "transport-internal.h"

#include <errno.h>
#include <string.h>

#include "twuv/basic.h"

const tw_error_type TW_NOT_IMPLEMENTED_ERROR = {"NotImplementedError",
                                                &TW_RUNTIME_ERROR};

/* The struct is embedded in every line-based protocol: keep it small.
 * 48 (tw_protocol) + 16 (producer) + 8 (ops) + 8 (max_length) + 96 (the
 * buffer's pointers and counts) + 16 (delimiter) + 6 flags = 198. */
_Static_assert(sizeof(void *) != 8 || sizeof(tw_line_receiver) <= 216,
               "tw_line_receiver grew");

static tw_failure *not_implemented(const char *what) {
  return tw_failure_new(&TW_NOT_IMPLEMENTED_ERROR, 0, "%s", what);
}

static tw_failure *no_memory(void) { return tw_failure_from_code(TW_ENOMEM); }

/* a >= b + c without overflow. */
static int at_least_sum(size_t a, size_t b, size_t c) {
  return a >= c && a - c >= b;
}

/* The first delimiter in v[0..n), or n when there is none. */
static size_t find_delim(const char *v, size_t n, const unsigned char *d,
                         size_t dlen) {
  const char *p = v, *end = v + n;
  if (dlen == 1) {
    p = memchr(v, d[0], n);
    return p != NULL ? (size_t)(p - v) : n;
  }
  while ((size_t)(end - p) >= dlen) {
    p = memchr(p, d[0], (size_t)(end - p) - dlen + 1);
    if (p == NULL) break;
    /* "\r\n", the default, without a memcmp call per line */
    if (dlen == 2 ? (unsigned char)p[1] == d[1]
                  : memcmp(p + 1, d + 1, dlen - 1) == 0)
      return (size_t)(p - v);
    p++;
  }
  return n;
}

/* ---- the receivers' buffer (tw__recv_buf) -------------------------------------- */

static size_t rb_len(const tw__recv_buf *rb) { return rb->len - rb->off; }

/* All the unparsed bytes. */
static size_t rb_total(const tw__recv_buf *rb) {
  return rb->view_len + rb->next_len + rb_len(rb);
}

static int rb_append(tw__recv_buf *rb, const char *data, size_t n) {
  size_t need;
  if (n == 0) return 0;
  if (rb->off > 0 && rb->len + n > rb->cap) {
    memmove(rb->buf, rb->buf + rb->off, rb_len(rb));
    rb->len -= rb->off;
    rb->off = 0;
  }
  if (n > (size_t)-1 - rb->len) return TW_ENOMEM;
  need = rb->len + n;
  if (need > rb->cap) {
    size_t cap = rb->cap < 64 ? 64 : rb->cap;
    char *b;
    while (cap < need) cap = cap > (size_t)-1 / 2 ? need : cap * 2;
    b = tw__realloc(rb->buf, cap);
    if (b == NULL) return TW_ENOMEM;
    rb->buf = b;
    rb->cap = cap;
  }
  memcpy(rb->buf + rb->len, data, n);
  rb->len += n;
  return 0;
}

/* The view is done with (no callback holds it): the lent block becomes
 * the buffer's storage again, or is freed. */
static void rb_release(tw__recv_buf *rb) {
  if (rb->lent == NULL) return;
  if (rb->buf == NULL && rb->lent_cap <= rb->keep_cap) {
    rb->buf = rb->lent;
    rb->cap = rb->lent_cap;
    rb->off = rb->len = 0;
  } else {
    tw__free(rb->lent);
  }
  rb->lent = NULL;
  rb->lent_cap = 0;
}

/* Move the buffer into the view (the view is empty, nothing lent). */
static void rb_lend(tw__recv_buf *rb) {
  rb->view = rb->buf + rb->off;
  rb->view_len = rb_len(rb);
  rb->lent = rb->buf;
  rb->lent_cap = rb->cap;
  rb->buf = NULL;
  rb->off = rb->len = rb->cap = 0;
}

/* view + next + buf, copied into one new block (or *len 0 and NULL). */
static int rb_gather(const tw__recv_buf *rb, char **out, size_t *len) {
  size_t total = rb->view_len, al = rb_len(rb);
  char *b;
  *out = NULL;
  *len = 0;
  if (rb->next_len > (size_t)-1 - total) return TW_ENOMEM;
  total += rb->next_len;
  if (al > (size_t)-1 - total) return TW_ENOMEM;
  total += al;
  if (total == 0) return 0;
  b = tw__malloc(total);
  if (b == NULL) return TW_ENOMEM;
  if (rb->view_len) memcpy(b, rb->view, rb->view_len);
  if (rb->next_len) memcpy(b + rb->view_len, rb->next, rb->next_len);
  if (al) memcpy(b + rb->view_len + rb->next_len, rb->buf + rb->off, al);
  *out = b;
  *len = total;
  return 0;
}

/* The parse needs the whole unparsed stream in the view: an over-long
 * line goes out whole, raw data in one call, a delimiter may straddle
 * two pieces. Only between callbacks (the old lent block is freed). */
static int rb_merge(tw__recv_buf *rb) {
  char *b;
  size_t total;
  if (rb->next_len == 0 && rb_len(rb) == 0) return 0;
  if (rb->view_len == 0 && rb->next_len == 0) {
    rb_release(rb);
    rb_lend(rb);
    return 0;
  }
  if (rb_gather(rb, &b, &total) != 0) return TW_ENOMEM;
  tw__free(rb->lent);
  rb->lent = b;
  rb->lent_cap = total;
  rb->view = b;
  rb->view_len = total;
  rb->next_len = 0;
  rb->off = rb->len = 0;
  return 0;
}

/* Advance to the next piece once the view is used up: 1 when there is
 * one, 0 when everything was parsed. Between callbacks only. */
static int rb_advance(tw__recv_buf *rb) {
  rb_release(rb);
  if (rb->next_len != 0) {
    rb->view = rb->next;
    rb->view_len = rb->next_len;
    rb->next_len = 0;
    return 1;
  }
  if (rb_len(rb) == 0) return 0;
  rb_lend(rb);
  return 1;
}

static void rb_drop_all(tw__recv_buf *rb) {
  rb->off = rb->len = 0;
  rb->view_len = rb->next_len = 0;
  rb_release(rb);
}

/* After a parse: what is left of view and next goes before buf. On
 * TW_ENOMEM everything unparsed is dropped (the caller fails the
 * connection). */
static int rb_save(tw__recv_buf *rb) {
  if (rb->view_len == 0 && rb->next_len == 0) {
    rb_release(rb);
    return 0;
  }
  if (rb_len(rb) == 0 && rb->next_len == 0 && rb->lent != NULL &&
      rb->lent_cap <= rb->keep_cap) {
    /* The rest is in our lent block: it becomes the buffer, in place. */
    tw__free(rb->buf);
    rb->buf = rb->lent;
    rb->cap = rb->lent_cap;
    rb->off = (size_t)(rb->view - rb->lent);
    rb->len = rb->off + rb->view_len;
    rb->lent = NULL;
    rb->lent_cap = 0;
    rb->view_len = 0;
    return 0;
  }
  if (rb_len(rb) == 0) {
    rb->off = rb->len = 0;
    if (rb_append(rb, rb->view, rb->view_len) != 0 ||
        rb_append(rb, rb->next, rb->next_len) != 0) {
      rb_drop_all(rb);
      return TW_ENOMEM;
    }
  } else {
    char *b;
    size_t total;
    if (rb_gather(rb, &b, &total) != 0) {
      rb_drop_all(rb);
      return TW_ENOMEM;
    }
    tw__free(rb->buf);
    rb->buf = b;
    rb->cap = total;
    rb->off = 0;
    rb->len = total;
  }
  rb->view_len = rb->next_len = 0;
  rb_release(rb);
  return 0;
}

static void rb_free(tw__recv_buf *rb) {
  tw__free(rb->buf);
  tw__free(rb->lent);
  rb->buf = rb->lent = NULL;
  rb->off = rb->len = rb->cap = rb->lent_cap = 0;
  rb->view_len = rb->next_len = 0;
}

/* A block kept as the buffer's storage is at most this (a bigger one, an
 * over-long line or a read kept while paused, is freed after use). */
static size_t keep_cap_for(size_t max_length) {
  if (max_length < 4096) return 8192;
  if (max_length > ((size_t)-1 - 64) / 2) return (size_t)-1;
  return max_length * 2 + 64;
}

/* ---- LineReceiver's parse ---------------------------------------------------- */

/* Twisted: "if why or self.transport and self.transport.disconnecting" */
static int lr_stopped(tw_line_receiver *lr) {
  tw_transport *t = lr->base.transport;
  return lr->tw__lost || (t != NULL && tw__transport_is_disconnecting(t));
}

static tw_failure *lr_exceeded(tw_line_receiver *lr, const char *v,
                               size_t n) {
  if (lr->ops->line_length_exceeded != NULL)
    return lr->ops->line_length_exceeded(lr, v, n);
  /* Twisted: return self.transport.loseConnection() */
  if (lr->base.transport != NULL)
    (void)tw_transport_lose_connection(lr->base.transport);
  return NULL;
}

/* dataReceived's loop: "while self._buffer and not self.paused". */
static tw_failure *lr_run(tw_line_receiver *lr) {
  for (;;) {
    const char *v;
    size_t n, i, dlen;
    tw_failure *f;
    if (lr->tw__paused) return NULL;
    if (lr->tw__rb.view_len == 0) {
      if (!rb_advance(&lr->tw__rb)) return NULL;
      continue;
    }
    if (!lr->tw__line_mode) {
      /* The whole buffer, in one call. */
      if (rb_merge(&lr->tw__rb) != 0) return no_memory();
      v = lr->tw__rb.view;
      n = lr->tw__rb.view_len;
      lr->tw__rb.view_len = 0;
      if (lr->ops->raw_data_received == NULL)
        return not_implemented("rawDataReceived");
      f = lr->ops->raw_data_received(lr, v, n);
      if (f != NULL) return f;
      continue;
    }
    v = lr->tw__rb.view;
    n = lr->tw__rb.view_len;
    dlen = lr->tw__delim_len;
    i = find_delim(v, n, lr->tw__delim, dlen);
    if (i == n) {
      if (lr->tw__rb.next_len != 0 || rb_len(&lr->tw__rb) != 0) {
        /* The delimiter may straddle the pieces. */
        if (rb_merge(&lr->tw__rb) != 0) return no_memory();
        continue;
      }
      if (at_least_sum(n, lr->max_length, dlen)) {
        lr->tw__rb.view_len = 0;
        return lr_exceeded(lr, v, n);
      }
      lr->tw__partial = 1; /* kept by save_rest: no delimiter in it */
      return NULL;
    }
    if (i > lr->max_length) {
      /* exceeded = line + delimiter + the rest of the buffer */
      if (rb_merge(&lr->tw__rb) != 0) return no_memory();
      v = lr->tw__rb.view;
      n = lr->tw__rb.view_len;
      lr->tw__rb.view_len = 0;
      return lr_exceeded(lr, v, n);
    }
    if (lr->ops->line_received == NULL) return not_implemented("lineReceived");
    /* The common case, lines one after another in the view: a tight loop
     * that leaves for the general one when anything changes. */
    lr->tw__changed = 0;
    for (;;) {
      lr->tw__rb.view = v + i + dlen;
      lr->tw__rb.view_len = n - i - dlen;
      f = lr->ops->line_received(lr, v, i);
      if (f != NULL) return f;
      if (lr_stopped(lr)) return NULL;
      /* paused, mode, delimiter or buffer changed by the callback */
      if (lr->tw__changed || lr->tw__rb.view_len == 0) break;
      v = lr->tw__rb.view;
      n = lr->tw__rb.view_len;
      i = find_delim(v, n, lr->tw__delim, dlen);
      if (i == n || i > lr->max_length) break;
    }
  }
}

/* The buffer holds a partial line (no delimiter) and data arrives: take
 * from data only what completes the line, so that the rest of the read is
 * parsed in place. When the line turns out too long (or no delimiter
 * comes), all of data joins the buffer: the parse needs it whole. */
static int lr_complete(tw_line_receiver *lr, const char *data, size_t n) {
  const unsigned char *d = lr->tw__delim;
  size_t dlen = lr->tw__delim_len, k = rb_len(&lr->tw__rb), take = n, s, i;
  const char *a = lr->tw__rb.buf + lr->tw__rb.off;
  int found = 0;
  /* A delimiter straddling the two: its first k - s bytes end the buffer. */
  for (s = k > dlen - 1 ? k - (dlen - 1) : 0; s < k; s++) {
    size_t in_a = k - s;
    if (n >= dlen - in_a && memcmp(a + s, d, in_a) == 0 &&
        memcmp(data, d + in_a, dlen - in_a) == 0) {
      if (s <= lr->max_length) take = dlen - in_a;
      found = 1;
      break;
    }
  }
  if (!found) {
    i = find_delim(data, n, d, dlen);
    if (i < n && i <= lr->max_length && k <= lr->max_length - i)
      take = i + dlen;
  }
  if (rb_append(&lr->tw__rb, data, take) != 0) return TW_ENOMEM;
  lr->tw__rb.next = data + take;
  lr->tw__rb.next_len = n - take;
  return 0;
}

static void lr_do_cleanup(tw_line_receiver *lr) {
  rb_free(&lr->tw__rb);
  tw__free(lr->tw__cleared);
  lr->tw__cleared = NULL;
  lr->tw__partial = 0;
  lr->tw__cleanup_due = 0;
}

/* What arrives while paused, from a transport that does not pause (a real
 * one does, with the receiver), is kept up to this much more than a line;
 * beyond it the connection is dropped rather than the buffer growing. */
static size_t lr_paused_limit(const tw_line_receiver *lr) {
  size_t lim = lr->max_length + lr->tw__delim_len;
  if (lim < lr->max_length) return (size_t)-1;
  if (lim > (size_t)-1 - TW_TRANSPORT_BUFFER_SIZE) return (size_t)-1;
  return lim + TW_TRANSPORT_BUFFER_SIZE;
}

static tw_failure *lr_data(tw_protocol *p, const char *data, size_t len) {
  tw_line_receiver *lr = (tw_line_receiver *)p;
  tw_failure *f;
  int rc = 0;
  if (lr->tw__busy || lr->tw__paused) {
    /* Twisted: self._buffer += data (and the running loop, or the
     * resume, parses it). */
    size_t limit = lr_paused_limit(lr);
    if (!lr->tw__busy && len > 0 && (len > limit || rb_len(&lr->tw__rb) > limit - len))
      return tw_failure_new(&TW_RUNTIME_ERROR, TW_EOVERFLOW,
                            "%zu bytes received while the line receiver "
                            "is paused: more than it keeps",
                            rb_len(&lr->tw__rb) + len);
    if (rb_append(&lr->tw__rb, data, len) != 0) return no_memory();
    lr->tw__partial = 0;
    return NULL;
  }
  if (len == 0 && rb_len(&lr->tw__rb) == 0) return NULL;
  lr->tw__busy = 1;
  if (rb_len(&lr->tw__rb) == 0) {
    lr->tw__rb.view = data;
    lr->tw__rb.view_len = len;
  } else if (lr->tw__line_mode && lr->tw__partial) {
    /* The completed line first (lent), then the read's rest (next). */
    rc = lr_complete(lr, data, len);
    if (rc == 0) rb_lend(&lr->tw__rb);
  } else {
    rc = rb_append(&lr->tw__rb, data, len);
  }
  lr->tw__partial = 0;
  if (rc != 0) {
    lr->tw__busy = 0;
    return no_memory();
  }
  f = lr_run(lr);
  if (lr->tw__cleanup_due) {
    lr->tw__busy = 0;
    lr_do_cleanup(lr);
    return f;
  }
  if (rb_save(&lr->tw__rb) != 0 && f == NULL) f = no_memory();
  lr->tw__busy = 0;
  return f;
}

/* ---- LineReceiver's protocol and producer ------------------------------------ */

static void lr_made(tw_protocol *p) {
  tw_line_receiver *lr = (tw_line_receiver *)p;
  lr->tw__lost = 0;
  if (lr->ops->connection_made != NULL) lr->ops->connection_made(lr);
}

static void lr_lost(tw_protocol *p, tw_failure *reason) {
  tw_line_receiver *lr = (tw_line_receiver *)p;
  lr->tw__lost = 1;
  if (lr->ops->connection_lost != NULL) lr->ops->connection_lost(lr, reason);
  tw_line_receiver_cleanup(lr);
}

static void lr_read_lost(tw_protocol *p) {
  tw_line_receiver *lr = (tw_line_receiver *)p;
  if (lr->ops->read_connection_lost != NULL)
    lr->ops->read_connection_lost(lr);
}

static void lr_write_lost(tw_protocol *p) {
  tw_line_receiver *lr = (tw_line_receiver *)p;
  if (lr->ops->write_connection_lost != NULL)
    lr->ops->write_connection_lost(lr);
}

static const tw_protocol_ops lr_protocol_ops = {
    .connection_made = lr_made,
    .data_received = lr_data,
    .connection_lost = lr_lost,
    .write_connection_lost = lr_write_lost,
};

static const tw_protocol_ops lr_half_close_ops = {
    .connection_made = lr_made,
    .data_received = lr_data,
    .connection_lost = lr_lost,
    .read_connection_lost = lr_read_lost,
    .write_connection_lost = lr_write_lost,
};

static tw_line_receiver *lr_of_producer(tw_producer *p) {
  return (tw_line_receiver *)((char *)p - offsetof(tw_line_receiver, producer));
}

static tw_failure *lr_prod_pause(tw_producer *p) {
  (void)tw_line_receiver_pause_producing(lr_of_producer(p));
  return NULL;
}

/* resumeProducing: the transport first (its error stops it, as Twisted's
 * raise), then dataReceived(b""). */
static int lr_resume(tw_line_receiver *lr, tw_failure **f) {
  *f = NULL;
  lr->tw__paused = 0;
  if (lr->base.transport != NULL) {
    int rc = tw_transport_resume_producing(lr->base.transport);
    if (rc != 0) return rc;
  }
  *f = lr_data(&lr->base, "", 0);
  return 0;
}

static tw_failure *lr_prod_resume(tw_producer *p) {
  tw_failure *f;
  (void)lr_resume(lr_of_producer(p), &f);
  return f;
}

static tw_failure *lr_prod_stop(tw_producer *p) {
  (void)tw_line_receiver_stop_producing(lr_of_producer(p));
  return NULL;
}

static const tw_producer_ops lr_producer_ops = {
    .pause_producing = lr_prod_pause,
    .resume_producing = lr_prod_resume,
    .stop_producing = lr_prod_stop,
};

/* ---- LineReceiver's API ---------------------------------------------------------- */

int tw_line_receiver_init(tw_line_receiver *lr,
                          const tw_line_receiver_ops *ops) {
  if (lr == NULL || ops == NULL) return TW_EINVAL;
  memset(lr, 0, sizeof *lr);
  tw_protocol_init(&lr->base, ops->read_connection_lost != NULL
                                  ? &lr_half_close_ops
                                  : &lr_protocol_ops);
  lr->producer.ops = &lr_producer_ops;
  lr->ops = ops;
  lr->max_length = TW_LINE_MAX_LENGTH;
  lr->tw__rb.keep_cap = keep_cap_for(lr->max_length);
  lr->tw__delim[0] = '\r';
  lr->tw__delim[1] = '\n';
  lr->tw__delim_len = 2;
  lr->tw__line_mode = 1;
  return 0;
}

void tw_line_receiver_cleanup(tw_line_receiver *lr) {
  if (lr == NULL) return;
  if (lr->tw__busy) {
    lr->tw__cleanup_due = 1; /* at the end of the running parse */
    lr->tw__changed = 1;
    return;
  }
  lr_do_cleanup(lr);
}

int tw_line_receiver_set_delimiter(tw_line_receiver *lr, const void *delimiter,
                                   size_t len) {
  if (lr == NULL || delimiter == NULL || len == 0 ||
      len > TW_LINE_DELIMITER_MAX)
    return TW_EINVAL;
  memcpy(lr->tw__delim, delimiter, len);
  lr->tw__delim_len = (unsigned char)len;
  lr->tw__partial = 0; /* the buffer may hold the new one */
  lr->tw__changed = 1;
  return 0;
}

const char *tw_line_receiver_delimiter(const tw_line_receiver *lr,
                                       size_t *len) {
  if (len != NULL) *len = lr != NULL ? lr->tw__delim_len : 0;
  return lr != NULL ? (const char *)lr->tw__delim : NULL;
}

int tw_line_receiver_set_max_length(tw_line_receiver *lr, size_t max_length) {
  if (lr == NULL) return TW_EINVAL;
  lr->max_length = max_length;
  lr->tw__rb.keep_cap = keep_cap_for(max_length);
  return 0;
}

int tw_line_receiver_set_raw_mode(tw_line_receiver *lr) {
  if (lr == NULL) return TW_EINVAL;
  lr->tw__line_mode = 0;
  lr->tw__changed = 1;
  return 0;
}

tw_failure *tw_line_receiver_set_line_mode(tw_line_receiver *lr,
                                           const void *extra, size_t len) {
  if (lr == NULL || (extra == NULL && len > 0))
    return tw_failure_from_code(TW_EINVAL);
  lr->tw__line_mode = 1;
  lr->tw__changed = 1;
  if (len == 0) return NULL;
  return lr_data(&lr->base, extra, len);
}

int tw_line_receiver_line_mode(const tw_line_receiver *lr) {
  return lr != NULL && lr->tw__line_mode;
}

int tw_line_receiver_clear_line_buffer(tw_line_receiver *lr, const char **data,
                                       size_t *len) {
  char *b = NULL;
  const char *out;
  size_t n;
  if (lr == NULL) return TW_EINVAL;
  if (lr->tw__rb.view_len == 0 && lr->tw__rb.next_len == 0 && lr->tw__rb.off == 0 &&
      lr->tw__rb.len > 0) {
    /* Only our buffer: it becomes the cleared block, no copy. */
    b = lr->tw__rb.buf;
    n = lr->tw__rb.len;
    lr->tw__rb.buf = NULL;
    lr->tw__rb.len = lr->tw__rb.cap = 0;
  } else if (rb_gather(&lr->tw__rb, &b, &n) != 0) {
    return TW_ENOMEM;
  }
  tw__free(lr->tw__cleared);
  lr->tw__cleared = b;
  out = b != NULL ? b : "";
  /* The lent block stays until the parse releases it: a callback may be
   * reading a line in it. */
  lr->tw__rb.view_len = lr->tw__rb.next_len = 0;
  lr->tw__rb.off = lr->tw__rb.len = 0;
  lr->tw__partial = 0;
  if (data != NULL) *data = out;
  if (len != NULL) *len = n;
  return 0;
}

size_t tw_line_receiver_buffered(const tw_line_receiver *lr) {
  return lr != NULL ? rb_total(&lr->tw__rb) : 0;
}

int tw_line_receiver_send_line(tw_line_receiver *lr, const void *line,
                               size_t len) {
  tw_iovec v[2];
  if (lr == NULL || (line == NULL && len > 0) || lr->base.transport == NULL)
    return TW_EINVAL;
  v[0].base = line;
  v[0].len = len;
  v[1].base = lr->tw__delim;
  v[1].len = lr->tw__delim_len;
  return tw_transport_write_sequence(lr->base.transport, v, 2);
}

int tw_line_receiver_pause_producing(tw_line_receiver *lr) {
  if (lr == NULL) return TW_EINVAL;
  lr->tw__paused = 1;
  lr->tw__changed = 1;
  return lr->base.transport != NULL
             ? tw_transport_pause_producing(lr->base.transport)
             : 0;
}

int tw_line_receiver_resume_producing(tw_line_receiver *lr) {
  tw_failure *f;
  int rc;
  if (lr == NULL) return TW_EINVAL;
  rc = lr_resume(lr, &f);
  if (f != NULL) {
    if (lr->base.transport != NULL) {
      tw__transport_fail(lr->base.transport, f);
    } else {
      /* Nobody to close: say so rather than drop it (Twisted drops it). */
      tw_log_failure(f, "line receiver callback failed while resuming");
      tw_failure_unref(f);
    }
  }
  return rc;
}

int tw_line_receiver_stop_producing(tw_line_receiver *lr) {
  if (lr == NULL) return TW_EINVAL;
  lr->tw__paused = 1;
  lr->tw__changed = 1;
  return lr->base.transport != NULL
             ? tw_transport_stop_producing(lr->base.transport)
             : 0;
}

int tw_line_receiver_paused(const tw_line_receiver *lr) {
  return lr != NULL && lr->tw__paused;
}

/* ---- LineOnlyReceiver ------------------------------------------------------------ */

_Static_assert(sizeof(void *) != 8 || sizeof(tw_line_only_receiver) <= 176,
               "tw_line_only_receiver grew");

static int lo_stopped(tw_line_only_receiver *lo) {
  tw_transport *t = lo->base.transport;
  return lo->tw__lost || (t != NULL && tw__transport_is_disconnecting(t));
}

/* Twisted sets _buffer to the last piece of the split before delivering
 * any line: when it returns early, the lines between are dropped. */
static int lo_keep_last_piece(tw_line_only_receiver *lo) {
  tw__recv_buf *rb = &lo->tw__rb;
  size_t dlen = lo->tw__delim_len, i;
  if (rb_merge(rb) != 0) return TW_ENOMEM;
  while ((i = find_delim(rb->view, rb->view_len, lo->tw__delim, dlen)) <
         rb->view_len) {
    rb->view += i + dlen;
    rb->view_len -= i + dlen;
  }
  return 0;
}

static tw_failure *lo_exceeded(tw_line_only_receiver *lo, const char *v,
                               size_t n) {
  if (lo->ops->line_length_exceeded != NULL)
    return lo->ops->line_length_exceeded(lo, v, n);
  if (lo->base.transport != NULL)
    (void)tw_transport_lose_connection(lo->base.transport);
  return NULL;
}

static tw_failure *lo_run(tw_line_only_receiver *lo) {
  tw__recv_buf *rb = &lo->tw__rb;
  for (;;) {
    const char *v;
    size_t n, i, dlen = lo->tw__delim_len;
    tw_failure *f;
    if (rb->view_len == 0) {
      if (!rb_advance(rb)) return NULL;
      continue;
    }
    v = rb->view;
    n = rb->view_len;
    i = find_delim(v, n, lo->tw__delim, dlen);
    if (i == n) {
      if (rb->next_len != 0 || rb_len(rb) != 0) {
        if (rb_merge(rb) != 0) return no_memory();
        continue;
      }
      if (n > lo->max_length) {
        /* dropped after the call: never an unbounded buffer */
        rb->view_len = 0;
        return lo_exceeded(lo, v, n);
      }
      return NULL;
    }
    if (lo_stopped(lo))
      return lo_keep_last_piece(lo) != 0 ? no_memory() : NULL;
    rb->view = v + i + dlen;
    rb->view_len = n - i - dlen;
    if (i > lo->max_length) {
      f = lo_exceeded(lo, v, i);
      if (lo_keep_last_piece(lo) != 0 && f == NULL) f = no_memory();
      return f;
    }
    if (lo->ops->line_received == NULL) return not_implemented("lineReceived");
    f = lo->ops->line_received(lo, v, i);
    if (f != NULL) return f;
  }
}

static tw_failure *lo_data(tw_protocol *p, const char *data, size_t len) {
  tw_line_only_receiver *lo = (tw_line_only_receiver *)p;
  tw__recv_buf *rb = &lo->tw__rb;
  tw_failure *f;
  if (lo->tw__busy)
    return rb_append(rb, data, len) != 0 ? no_memory() : NULL;
  if (len == 0) return NULL;
  lo->tw__busy = 1;
  if (rb_len(rb) == 0) {
    rb->view = data;
    rb->view_len = len;
  } else {
    /* The kept partial line (no delimiter in it) completed from data:
     * only up to the first delimiter, the rest parsed in place. */
    const unsigned char *d = lo->tw__delim;
    size_t dlen = lo->tw__delim_len, k = rb_len(rb), take = len, s, i;
    const char *a = rb->buf + rb->off;
    int found = 0;
    for (s = k > dlen - 1 ? k - (dlen - 1) : 0; s < k && !found; s++) {
      size_t in_a = k - s;
      if (len >= dlen - in_a && memcmp(a + s, d, in_a) == 0 &&
          memcmp(data, d + in_a, dlen - in_a) == 0) {
        take = dlen - in_a;
        found = 1;
      }
    }
    if (!found && (i = find_delim(data, len, d, dlen)) < len) take = i + dlen;
    if (rb_append(rb, data, take) != 0) {
      lo->tw__busy = 0;
      return no_memory();
    }
    rb->next = data + take;
    rb->next_len = len - take;
    rb_lend(rb);
  }
  f = lo_run(lo);
  if (!lo->tw__cleanup_due && rb_save(rb) != 0 && f == NULL) f = no_memory();
  lo->tw__busy = 0;
  if (lo->tw__cleanup_due) tw_line_only_receiver_cleanup(lo);
  return f;
}

static void lo_made(tw_protocol *p) {
  tw_line_only_receiver *lo = (tw_line_only_receiver *)p;
  lo->tw__lost = 0;
  if (lo->ops->connection_made != NULL) lo->ops->connection_made(lo);
}

static void lo_lost(tw_protocol *p, tw_failure *reason) {
  tw_line_only_receiver *lo = (tw_line_only_receiver *)p;
  lo->tw__lost = 1;
  if (lo->ops->connection_lost != NULL) lo->ops->connection_lost(lo, reason);
  tw_line_only_receiver_cleanup(lo);
}

static void lo_read_lost(tw_protocol *p) {
  tw_line_only_receiver *lo = (tw_line_only_receiver *)p;
  if (lo->ops->read_connection_lost != NULL)
    lo->ops->read_connection_lost(lo);
}

static void lo_write_lost(tw_protocol *p) {
  tw_line_only_receiver *lo = (tw_line_only_receiver *)p;
  if (lo->ops->write_connection_lost != NULL)
    lo->ops->write_connection_lost(lo);
}

static const tw_protocol_ops lo_protocol_ops = {
    .connection_made = lo_made,
    .data_received = lo_data,
    .connection_lost = lo_lost,
    .write_connection_lost = lo_write_lost,
};

static const tw_protocol_ops lo_half_close_ops = {
    .connection_made = lo_made,
    .data_received = lo_data,
    .connection_lost = lo_lost,
    .read_connection_lost = lo_read_lost,
    .write_connection_lost = lo_write_lost,
};

int tw_line_only_receiver_init(tw_line_only_receiver *lo,
                               const tw_line_only_receiver_ops *ops) {
  if (lo == NULL || ops == NULL) return TW_EINVAL;
  memset(lo, 0, sizeof *lo);
  tw_protocol_init(&lo->base, ops->read_connection_lost != NULL
                                  ? &lo_half_close_ops
                                  : &lo_protocol_ops);
  lo->ops = ops;
  lo->max_length = TW_LINE_MAX_LENGTH;
  lo->tw__rb.keep_cap = keep_cap_for(lo->max_length);
  lo->tw__delim[0] = '\r';
  lo->tw__delim[1] = '\n';
  lo->tw__delim_len = 2;
  return 0;
}

void tw_line_only_receiver_cleanup(tw_line_only_receiver *lo) {
  if (lo == NULL) return;
  if (lo->tw__busy) {
    lo->tw__cleanup_due = 1;
    return;
  }
  rb_free(&lo->tw__rb);
  lo->tw__cleanup_due = 0;
}

int tw_line_only_receiver_set_delimiter(tw_line_only_receiver *lo,
                                        const void *delimiter, size_t len) {
  if (lo == NULL || delimiter == NULL || len == 0 ||
      len > TW_LINE_DELIMITER_MAX)
    return TW_EINVAL;
  memcpy(lo->tw__delim, delimiter, len);
  lo->tw__delim_len = (unsigned char)len;
  return 0;
}

int tw_line_only_receiver_send_line(tw_line_only_receiver *lo,
                                    const void *line, size_t len) {
  tw_iovec v[2];
  if (lo == NULL || (line == NULL && len > 0) || lo->base.transport == NULL)
    return TW_EINVAL;
  v[0].base = line;
  v[0].len = len;
  v[1].base = lo->tw__delim;
  v[1].len = lo->tw__delim_len;
  return tw_transport_write_sequence(lo->base.transport, v, 2);
}

size_t tw_line_only_receiver_buffered(const tw_line_only_receiver *lo) {
  return lo != NULL ? rb_total(&lo->tw__rb) : 0;
}

/* ---- Int8/16/32StringReceiver ------------------------------------------------------ */

_Static_assert(sizeof(void *) != 8 || sizeof(tw_int_string_receiver) <= 216,
               "tw_int_string_receiver grew");

static size_t int_prefix_value(const char *p, size_t n) {
  const unsigned char *u = (const unsigned char *)p;
  size_t v = 0, i;
  for (i = 0; i < n; i++) v = (v << 8) | u[i]; /* network byte order */
  return v;
}

static int int_stopped(tw_int_string_receiver *r) { return r->tw__lost; }

static tw_failure *int_exceeded(tw_int_string_receiver *r, size_t length) {
  if (r->ops->length_limit_exceeded != NULL)
    return r->ops->length_limit_exceeded(r, length);
  if (r->base.transport != NULL)
    (void)tw_transport_lose_connection(r->base.transport);
  return NULL;
}

/* A set_recvd from the callback that just returned: the parse goes on
 * with its bytes (the old ones are no longer read by anyone). */
static void int_apply_recvd(tw_int_string_receiver *r) {
  tw__recv_buf *rb = &r->tw__rb;
  if (!r->tw__recvd_set) return;
  r->tw__recvd_set = 0;
  rb_drop_all(rb);
  rb->lent = r->tw__recvd;
  rb->lent_cap = r->tw__recvd_len;
  rb->view = r->tw__recvd != NULL ? r->tw__recvd : "";
  rb->view_len = r->tw__recvd_len;
  r->tw__recvd = NULL;
  r->tw__recvd_len = 0;
  r->tw__stalled = 0;
}

static tw_failure *int_run(tw_int_string_receiver *r) {
  tw__recv_buf *rb = &r->tw__rb;
  size_t P = r->tw__prefix;
  for (;;) {
    const char *v;
    size_t n, length;
    tw_failure *f;
    if (r->tw__paused || int_stopped(r)) return NULL;
    if (rb->view_len == 0) {
      if (!rb_advance(rb)) return NULL;
      continue;
    }
    v = rb->view;
    n = rb->view_len;
    if (n < P) {
      if (rb->next_len != 0 || rb_len(rb) != 0) {
        if (rb_merge(rb) != 0) return no_memory();
        continue;
      }
      return NULL;
    }
    length = int_prefix_value(v, P);
    if (length > r->max_length) {
      /* recvd, inside the call, is everything from this prefix on */
      if (rb_merge(rb) != 0) return no_memory();
      r->tw__stalled = 1;
      f = int_exceeded(r, length);
      int_apply_recvd(r);
      return f;
    }
    if (n - P < length) {
      if (rb->next_len != 0 || rb_len(rb) != 0) {
        if (rb_merge(rb) != 0) return no_memory();
        continue;
      }
      return NULL;
    }
    rb->view = v + P + length;
    rb->view_len = n - P - length;
    if (r->ops->string_received == NULL)
      return not_implemented("stringReceived");
    f = r->ops->string_received(r, v + P, length);
    tw__free(r->tw__scratch);
    r->tw__scratch = NULL;
    int_apply_recvd(r);
    if (f != NULL) return f;
  }
}

static size_t int_paused_limit(const tw_int_string_receiver *r) {
  size_t lim = r->max_length + r->tw__prefix;
  if (lim < r->max_length || lim > (size_t)-1 - TW_TRANSPORT_BUFFER_SIZE)
    return (size_t)-1;
  return lim + TW_TRANSPORT_BUFFER_SIZE;
}

static tw_failure *int_data(tw_protocol *p, const char *data, size_t len) {
  tw_int_string_receiver *r = (tw_int_string_receiver *)p;
  tw__recv_buf *rb = &r->tw__rb;
  size_t P = r->tw__prefix;
  tw_failure *f;
  int rc = 0;
  if (r->tw__busy)
    return rb_append(rb, data, len) != 0 ? no_memory() : NULL;
  if (r->tw__stalled) {
    /* Twisted appends to a buffer whose first prefix it will refuse
     * again: the call again, the bytes not kept. */
    if (r->tw__paused || rb_len(rb) < P) return NULL;
    r->tw__busy = 1;
    f = int_exceeded(r, int_prefix_value(rb->buf + rb->off, P));
    r->tw__busy = 0;
    if (r->tw__recvd_set) {
      int_apply_recvd(r);
      if (rb_save(rb) != 0 && f == NULL) f = no_memory();
    }
    if (r->tw__cleanup_due) tw_int_string_receiver_cleanup(r);
    return f;
  }
  if (r->tw__paused) {
    size_t limit = int_paused_limit(r);
    if (len > limit || rb_len(rb) > limit - len)
      return tw_failure_new(&TW_RUNTIME_ERROR, TW_EOVERFLOW,
                            "%zu bytes received while the string receiver "
                            "is paused: more than it keeps",
                            rb_len(rb) + len);
    return rb_append(rb, data, len) != 0 ? no_memory() : NULL;
  }
  if (len == 0 && rb_len(rb) == 0) return NULL;
  r->tw__busy = 1;
  if (rb_len(rb) == 0) {
    rb->view = data;
    rb->view_len = len;
  } else {
    /* Complete the kept prefix and string from data, no more. */
    size_t k = rb_len(rb), used = 0;
    if (k < P) {
      used = P - k < len ? P - k : len;
      rc = rb_append(rb, data, used);
    }
    if (rc == 0 && rb_len(rb) >= P) {
      size_t length = int_prefix_value(rb->buf + rb->off, P);
      size_t have = rb_len(rb) - P, more;
      if (length > r->max_length) /* kept whole, as Twisted */
        more = len - used;
      else
        more = length > have ? length - have : 0;
      if (more > len - used) more = len - used;
      rc = rb_append(rb, data + used, more);
      used += more;
    }
    if (rc == 0) {
      rb->next = data + used;
      rb->next_len = len - used;
      rb_lend(rb);
    }
  }
  if (rc != 0) {
    r->tw__busy = 0;
    return no_memory();
  }
  f = int_run(r);
  if (!r->tw__cleanup_due && rb_save(rb) != 0 && f == NULL) f = no_memory();
  r->tw__busy = 0;
  if (r->tw__cleanup_due) tw_int_string_receiver_cleanup(r);
  return f;
}

static void int_made(tw_protocol *p) {
  tw_int_string_receiver *r = (tw_int_string_receiver *)p;
  r->tw__lost = 0;
  if (r->ops->connection_made != NULL) r->ops->connection_made(r);
}

static void int_lost(tw_protocol *p, tw_failure *reason) {
  tw_int_string_receiver *r = (tw_int_string_receiver *)p;
  r->tw__lost = 1;
  if (r->ops->connection_lost != NULL) r->ops->connection_lost(r, reason);
  tw_int_string_receiver_cleanup(r);
}

static void int_read_lost(tw_protocol *p) {
  tw_int_string_receiver *r = (tw_int_string_receiver *)p;
  if (r->ops->read_connection_lost != NULL) r->ops->read_connection_lost(r);
}

static void int_write_lost(tw_protocol *p) {
  tw_int_string_receiver *r = (tw_int_string_receiver *)p;
  if (r->ops->write_connection_lost != NULL) r->ops->write_connection_lost(r);
}

static const tw_protocol_ops int_protocol_ops = {
    .connection_made = int_made,
    .data_received = int_data,
    .connection_lost = int_lost,
    .write_connection_lost = int_write_lost,
};

static const tw_protocol_ops int_half_close_ops = {
    .connection_made = int_made,
    .data_received = int_data,
    .connection_lost = int_lost,
    .read_connection_lost = int_read_lost,
    .write_connection_lost = int_write_lost,
};

static tw_int_string_receiver *int_of_producer(tw_producer *p) {
  return (tw_int_string_receiver *)((char *)p -
                                    offsetof(tw_int_string_receiver,
                                             producer));
}

static int int_resume(tw_int_string_receiver *r, tw_failure **f) {
  *f = NULL;
  r->tw__paused = 0;
  if (r->base.transport != NULL) {
    int rc = tw_transport_resume_producing(r->base.transport);
    if (rc != 0) return rc;
  }
  *f = int_data(&r->base, "", 0);
  return 0;
}

static tw_failure *int_prod_pause(tw_producer *p) {
  (void)tw_int_string_receiver_pause_producing(int_of_producer(p));
  return NULL;
}

static tw_failure *int_prod_resume(tw_producer *p) {
  tw_failure *f;
  (void)int_resume(int_of_producer(p), &f);
  return f;
}

static tw_failure *int_prod_stop(tw_producer *p) {
  (void)tw_int_string_receiver_stop_producing(int_of_producer(p));
  return NULL;
}

static const tw_producer_ops int_producer_ops = {
    .pause_producing = int_prod_pause,
    .resume_producing = int_prod_resume,
    .stop_producing = int_prod_stop,
};

static int int_init(tw_int_string_receiver *r,
                    const tw_int_string_receiver_ops *ops, unsigned prefix) {
  if (r == NULL || ops == NULL) return TW_EINVAL;
  memset(r, 0, sizeof *r);
  tw_protocol_init(&r->base, ops->read_connection_lost != NULL
                                 ? &int_half_close_ops
                                 : &int_protocol_ops);
  r->producer.ops = &int_producer_ops;
  r->ops = ops;
  r->max_length = TW_STRING_MAX_LENGTH;
  r->tw__rb.keep_cap = keep_cap_for(r->max_length);
  r->tw__prefix = (unsigned char)prefix;
  return 0;
}

int tw_int8_string_receiver_init(tw_int_string_receiver *r,
                                 const tw_int_string_receiver_ops *ops) {
  return int_init(r, ops, 1);
}

int tw_int16_string_receiver_init(tw_int_string_receiver *r,
                                  const tw_int_string_receiver_ops *ops) {
  return int_init(r, ops, 2);
}

int tw_int32_string_receiver_init(tw_int_string_receiver *r,
                                  const tw_int_string_receiver_ops *ops) {
  return int_init(r, ops, 4);
}

void tw_int_string_receiver_cleanup(tw_int_string_receiver *r) {
  if (r == NULL) return;
  if (r->tw__busy) {
    r->tw__cleanup_due = 1;
    return;
  }
  rb_free(&r->tw__rb);
  tw__free(r->tw__recvd);
  tw__free(r->tw__scratch);
  r->tw__recvd = r->tw__scratch = NULL;
  r->tw__recvd_len = 0;
  r->tw__recvd_set = r->tw__stalled = r->tw__cleanup_due = 0;
}

size_t tw_int_string_receiver_prefix_length(const tw_int_string_receiver *r) {
  return r != NULL ? r->tw__prefix : 0;
}

int tw_int_string_receiver_send_string(tw_int_string_receiver *r,
                                       const void *s, size_t len) {
  unsigned char prefix[4];
  tw_iovec v[2];
  size_t P, i;
  if (r == NULL || (s == NULL && len > 0) || r->base.transport == NULL)
    return TW_EINVAL;
  P = r->tw__prefix;
  /* len >= 2 ** (8 * prefixLength): StringTooLongError */
  if (P < sizeof(size_t) && len >> (8 * P) != 0) return TW_EINVAL;
  for (i = 0; i < P; i++)
    prefix[i] = (unsigned char)(len >> (8 * (P - 1 - i)));
  v[0].base = prefix;
  v[0].len = P;
  v[1].base = s;
  v[1].len = len;
  return tw_transport_write_sequence(r->base.transport, v, 2);
}

int tw_int_string_receiver_recvd(tw_int_string_receiver *r, const char **data,
                                 size_t *len) {
  tw__recv_buf *rb;
  int pieces;
  if (r == NULL || len == NULL) return TW_EINVAL;
  rb = &r->tw__rb;
  if (r->tw__recvd_set) {
    *len = r->tw__recvd_len;
    if (data != NULL) *data = r->tw__recvd != NULL ? r->tw__recvd : "";
    return 0;
  }
  pieces = (rb->view_len != 0) + (rb->next_len != 0) + (rb_len(rb) != 0);
  if (pieces <= 1) {
    *len = rb_total(rb);
    if (data != NULL)
      *data = rb->view_len ? rb->view
              : rb->next_len ? rb->next
              : rb_len(rb) ? rb->buf + rb->off
                           : "";
    return 0;
  }
  {
    char *b;
    size_t n;
    if (rb_gather(rb, &b, &n) != 0) return TW_ENOMEM;
    tw__free(r->tw__scratch);
    r->tw__scratch = b;
    *len = n;
    if (data != NULL) *data = b;
  }
  return 0;
}

int tw_int_string_receiver_set_recvd(tw_int_string_receiver *r,
                                     const void *data, size_t len) {
  char *b = NULL;
  if (r == NULL || (data == NULL && len > 0)) return TW_EINVAL;
  if (len > 0) {
    b = tw__malloc(len);
    if (b == NULL) return TW_ENOMEM;
    memcpy(b, data, len);
  }
  if (r->tw__busy) {
    /* Used once the running callback returns. */
    tw__free(r->tw__recvd);
    r->tw__recvd = b;
    r->tw__recvd_len = len;
    r->tw__recvd_set = 1;
    return 0;
  }
  rb_free(&r->tw__rb);
  r->tw__rb.buf = b;
  r->tw__rb.cap = r->tw__rb.len = len;
  r->tw__stalled = 0;
  return 0;
}

int tw_int_string_receiver_pause_producing(tw_int_string_receiver *r) {
  if (r == NULL) return TW_EINVAL;
  r->tw__paused = 1;
  return r->base.transport != NULL
             ? tw_transport_pause_producing(r->base.transport)
             : 0;
}

int tw_int_string_receiver_resume_producing(tw_int_string_receiver *r) {
  tw_failure *f;
  int rc;
  if (r == NULL) return TW_EINVAL;
  rc = int_resume(r, &f);
  if (f != NULL) {
    if (r->base.transport != NULL) {
      tw__transport_fail(r->base.transport, f);
    } else {
      tw_log_failure(f, "string receiver callback failed while resuming");
      tw_failure_unref(f);
    }
  }
  return rc;
}

int tw_int_string_receiver_stop_producing(tw_int_string_receiver *r) {
  if (r == NULL) return TW_EINVAL;
  r->tw__paused = 1;
  return r->base.transport != NULL
             ? tw_transport_stop_producing(r->base.transport)
             : 0;
}

int tw_int_string_receiver_paused(const tw_int_string_receiver *r) {
  return r != NULL && r->tw__paused;
}

/* ---- NetstringReceiver ------------------------------------------------------------ */

const tw_error_type TW_NETSTRING_PARSE_ERROR = {"NetstringParseError",
                                                &TW_VALUE_ERROR};

_Static_assert(sizeof(void *) != 8 || sizeof(tw_netstring_receiver) <= 176,
               "tw_netstring_receiver grew");

enum { NS_LENGTH = 0, NS_PAYLOAD = 1 };

/* NetstringReceiver's messages, word for word. */
static const char ns_missing_length[] =
    "The received netstring does not start with a length specification.";
static const char ns_missing_comma[] =
    "The received netstring is not terminated by a comma.";

static void ns_refuse(tw_netstring_receiver *ns, tw_failure *error) {
  /* _handleParseError */
  if (ns->tw__error == NULL)
    ns->tw__error = error;
  else
    tw_failure_unref(error);
  if (ns->base.transport != NULL)
    (void)tw_transport_lose_connection(ns->base.transport);
}

static tw_failure *ns_too_long(const tw_netstring_receiver *ns) {
  return tw_failure_new(&TW_NETSTRING_PARSE_ERROR, 0,
                        "The received netstring is longer than the maximum "
                        "%zu specified by self.MAX_LENGTH",
                        ns->max_length);
}

/* _extractLength: NULL, or the failure (the length is returned in *out).
 * _maxLengthSize is ceil(log10(MAX_LENGTH)) + 1, computed without floats
 * (log10(0) is Python's "math domain error", a ValueError that is not a
 * NetstringParseError: it escapes dataReceived). */
static tw_failure *ns_extract(const tw_netstring_receiver *ns, const char *d,
                              size_t n, size_t *out, int *escape) {
  size_t k = 0, v = 0, i;
  unsigned long long p = 1;
  *escape = 0;
  if (ns->max_length == 0) {
    *escape = 1;
    return tw_failure_new(&TW_VALUE_ERROR, 0, "math domain error");
  }
  while (p < ns->max_length) {
    p *= 10;
    k++;
  }
  if (n > k + 1) return ns_too_long(ns);
  for (i = 0; i < n; i++) {
    size_t digit = (size_t)(d[i] - '0');
    if (v > ((size_t)-1 - digit) / 10) return ns_too_long(ns);
    v = v * 10 + digit;
  }
  if (v > ns->max_length) return ns_too_long(ns);
  *out = v;
  return NULL;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/*
 * _consumeLength on the kept digits + d[0..n): 1 and *used (bytes of d
 * taken) when a length was read; 0 when incomplete (everything kept);
 * -1 with *error when refused (*escape: not a NetstringParseError).
 */
static int ns_length(tw_netstring_receiver *ns, const char *d, size_t n,
                     size_t *used, tw_failure **error, int *escape) {
  char spec[sizeof ns->tw__digits + 1];
  size_t k = ns->tw__ndigits, total = k + n, j, value;
  const char *digits;
  char c0 = k > 0 ? ns->tw__digits[0] : d[0];
#define NS_AT(i) ((i) < k ? ns->tw__digits[(i)] : d[(i) - k])
  *error = NULL;
  *escape = 0;
  if (!is_digit(c0)) {
    *error = tw_failure_new(&TW_NETSTRING_PARSE_ERROR, 0, ns_missing_length);
    return -1;
  }
  /* (0|[1-9]\d*) */
  j = 1;
  if (c0 != '0')
    while (j < total && is_digit(NS_AT(j))) j++;
  /* The digits, contiguous: in d when none are kept, else (kept ones are
   * at most _maxLengthSize + 1) copied if short enough to matter. */
  if (k == 0) {
    digits = d;
  } else {
    size_t i, m = j < sizeof spec ? j : sizeof spec;
    for (i = 0; i < m; i++) spec[i] = NS_AT(i);
    digits = spec;
    if (j > m) { /* longer than any accepted length */
      *error = ns_too_long(ns);
      if (!(j < total && NS_AT(j) == ':') &&
          !(j == total || (j == total - 1 && NS_AT(j) == '\n'))) {
        tw_failure_unref(*error);
        *error =
            tw_failure_new(&TW_NETSTRING_PARSE_ERROR, 0, ns_missing_length);
      }
      return -1;
    }
  }
  if (j < total && NS_AT(j) == ':') {
    /* _LENGTH matched: _processLength */
    *error = ns_extract(ns, digits, j, &value, escape);
    if (*error != NULL) return -1;
    ns->tw__expected = value + 1;
    *used = j + 1 - k;
    ns->tw__ndigits = 0;
    return 1;
  }
  /* _checkPartialLengthSpecification: (0|[1-9]\d*)$ over all of it ($:
   * the end, or before a '\n' that ends it) */
  if (!(j == total || (j == total - 1 && NS_AT(j) == '\n'))) {
    *error = tw_failure_new(&TW_NETSTRING_PARSE_ERROR, 0, ns_missing_length);
    return -1;
  }
  *error = ns_extract(ns, digits, j, &value, escape);
  if (*error != NULL) return -1;
  /* IncompleteNetstring: keep it (at most _maxLengthSize + 1 + '\n'). */
  if (total > sizeof ns->tw__digits) { /* cannot happen: checked above */
    *error = ns_too_long(ns);
    return -1;
  }
  {
    size_t i;
    char tmp[sizeof ns->tw__digits];
    for (i = 0; i < total; i++) tmp[i] = NS_AT(i);
    memcpy(ns->tw__digits, tmp, total);
    ns->tw__ndigits = (unsigned char)total;
  }
  *used = n;
  return 0;
#undef NS_AT
}

static tw_failure *ns_deliver(tw_netstring_receiver *ns, const char *s,
                              size_t n) {
  if (ns->ops->string_received == NULL)
    return not_implemented("stringReceived");
  return ns->ops->string_received(ns, s, n);
}

/* dataReceived over one read: NULL, or a failure to drop the connection. */
static tw_failure *ns_parse(tw_netstring_receiver *ns, const char *d,
                            size_t n) {
  size_t pos = 0;
  while (pos < n && ns->tw__error == NULL && !ns->tw__lost) {
    tw_failure *f;
    if (ns->tw__state == NS_LENGTH) {
      size_t used = 0;
      int escape, rc = ns_length(ns, d + pos, n - pos, &used, &f, &escape);
      if (rc < 0) {
        if (escape) return f;
        ns_refuse(ns, f);
        return NULL;
      }
      pos += used;
      if (rc == 0) return NULL;
      ns->tw__state = NS_PAYLOAD;
      ns->tw__have = 0;
    }
    {
      size_t avail = n - pos, need = ns->tw__expected - ns->tw__have, take;
      if (ns->tw__have == 0 && avail >= need) {
        /* The whole payload is in the read: passed in place. */
        const char *payload = d + pos;
        pos += need;
        if (payload[need - 1] != ',') {
          ns_refuse(ns, tw_failure_new(&TW_NETSTRING_PARSE_ERROR, 0,
                                       ns_missing_comma));
          return NULL;
        }
        ns->tw__state = NS_LENGTH;
        f = ns_deliver(ns, payload, need - 1);
        if (f != NULL) return f;
        continue;
      }
      if (avail == 0) return NULL;
      if (ns->tw__cap < ns->tw__expected) {
        char *b = tw__realloc(ns->tw__payload, ns->tw__expected);
        if (b == NULL) return no_memory();
        ns->tw__payload = b;
        ns->tw__cap = ns->tw__expected;
      }
      take = avail < need ? avail : need;
      memcpy(ns->tw__payload + ns->tw__have, d + pos, take);
      ns->tw__have += take;
      pos += take;
      if (ns->tw__have < ns->tw__expected) return NULL;
      if (ns->tw__payload[ns->tw__expected - 1] != ',') {
        ns_refuse(ns, tw_failure_new(&TW_NETSTRING_PARSE_ERROR, 0,
                                     ns_missing_comma));
        return NULL;
      }
      ns->tw__state = NS_LENGTH;
      ns->tw__have = 0;
      f = ns_deliver(ns, ns->tw__payload, ns->tw__expected - 1);
      /* a large payload buffer is not kept */
      if (ns->tw__cap > 65536) {
        tw__free(ns->tw__payload);
        ns->tw__payload = NULL;
        ns->tw__cap = 0;
      }
      if (f != NULL) return f;
    }
  }
  return NULL;
}

static tw_failure *ns_data(tw_protocol *p, const char *data, size_t len) {
  tw_netstring_receiver *ns = (tw_netstring_receiver *)p;
  tw_failure *f;
  if (ns->tw__busy) {
    /* From a callback: parsed after the read. */
    if (len > ns->tw__pend_cap - ns->tw__pend_len) {
      size_t cap = ns->tw__pend_len + len;
      char *b;
      if (cap < ns->tw__pend_len) return no_memory();
      b = tw__realloc(ns->tw__pend, cap);
      if (b == NULL) return no_memory();
      ns->tw__pend = b;
      ns->tw__pend_cap = cap;
    }
    if (len) memcpy(ns->tw__pend + ns->tw__pend_len, data, len);
    ns->tw__pend_len += len;
    return NULL;
  }
  if (ns->tw__error != NULL) return NULL; /* refused: the rest is dropped */
  ns->tw__busy = 1;
  f = ns_parse(ns, data, len);
  while (f == NULL && ns->tw__pend_len > 0 && ns->tw__error == NULL &&
         !ns->tw__lost) {
    char *b = ns->tw__pend;
    size_t n = ns->tw__pend_len;
    ns->tw__pend = NULL;
    ns->tw__pend_len = ns->tw__pend_cap = 0;
    f = ns_parse(ns, b, n);
    tw__free(b);
  }
  ns->tw__busy = 0;
  if (ns->tw__cleanup_due) tw_netstring_receiver_cleanup(ns);
  return f;
}

static void ns_made(tw_protocol *p) {
  tw_netstring_receiver *ns = (tw_netstring_receiver *)p;
  /* makeConnection resets the parse */
  ns->tw__lost = 0;
  ns->tw__state = NS_LENGTH;
  ns->tw__ndigits = 0;
  ns->tw__have = ns->tw__expected = 0;
  if (ns->ops->connection_made != NULL) ns->ops->connection_made(ns);
}

static void ns_lost(tw_protocol *p, tw_failure *reason) {
  tw_netstring_receiver *ns = (tw_netstring_receiver *)p;
  ns->tw__lost = 1;
  if (ns->ops->connection_lost != NULL) ns->ops->connection_lost(ns, reason);
  tw_netstring_receiver_cleanup(ns);
}

static void ns_read_lost(tw_protocol *p) {
  tw_netstring_receiver *ns = (tw_netstring_receiver *)p;
  if (ns->ops->read_connection_lost != NULL) ns->ops->read_connection_lost(ns);
}

static void ns_write_lost(tw_protocol *p) {
  tw_netstring_receiver *ns = (tw_netstring_receiver *)p;
  if (ns->ops->write_connection_lost != NULL)
    ns->ops->write_connection_lost(ns);
}

static const tw_protocol_ops ns_protocol_ops = {
    .connection_made = ns_made,
    .data_received = ns_data,
    .connection_lost = ns_lost,
    .write_connection_lost = ns_write_lost,
};

static const tw_protocol_ops ns_half_close_ops = {
    .connection_made = ns_made,
    .data_received = ns_data,
    .connection_lost = ns_lost,
    .read_connection_lost = ns_read_lost,
    .write_connection_lost = ns_write_lost,
};

int tw_netstring_receiver_init(tw_netstring_receiver *ns,
                               const tw_netstring_receiver_ops *ops) {
  if (ns == NULL || ops == NULL) return TW_EINVAL;
  memset(ns, 0, sizeof *ns);
  tw_protocol_init(&ns->base, ops->read_connection_lost != NULL
                                  ? &ns_half_close_ops
                                  : &ns_protocol_ops);
  ns->ops = ops;
  ns->max_length = TW_STRING_MAX_LENGTH;
  return 0;
}

void tw_netstring_receiver_cleanup(tw_netstring_receiver *ns) {
  if (ns == NULL) return;
  if (ns->tw__busy) {
    ns->tw__cleanup_due = 1;
    return;
  }
  tw__free(ns->tw__payload);
  tw__free(ns->tw__pend);
  ns->tw__payload = ns->tw__pend = NULL;
  ns->tw__cap = ns->tw__have = ns->tw__pend_len = ns->tw__pend_cap = 0;
  tw_failure_unref(ns->tw__error);
  ns->tw__error = NULL;
  ns->tw__ndigits = 0;
  ns->tw__state = NS_LENGTH;
  ns->tw__cleanup_due = 0;
}

int tw_netstring_receiver_send_string(tw_netstring_receiver *ns, const void *s,
                                      size_t len) {
  char prefix[32];
  tw_iovec v[3];
  int n;
  if (ns == NULL || (s == NULL && len > 0) || ns->base.transport == NULL)
    return TW_EINVAL;
  n = snprintf(prefix, sizeof prefix, "%zu:", len);
  v[0].base = prefix;
  v[0].len = (size_t)n;
  v[1].base = s;
  v[1].len = len;
  v[2].base = ",";
  v[2].len = 1;
  return tw_transport_write_sequence(ns->base.transport, v, 3);
}

tw_failure *tw_netstring_receiver_parse_error(const tw_netstring_receiver *ns) {
  return ns != NULL ? ns->tw__error : NULL;
}

int tw_netstring_receiver_broken_peer(const tw_netstring_receiver *ns) {
  return ns != NULL && ns->tw__error != NULL;
}

/* ---- FileSender -------------------------------------------------------------------- */

static tw_file_sender *fs_of(tw_producer *p) { return (tw_file_sender *)p; }

static void fs_finish(tw_file_sender *fs, tw_failure *error) {
  tw_deferred *d = fs->tw__deferred;
  fs->tw__deferred = NULL;
  fs->tw__file = NULL;
  tw__free(fs->tw__chunk);
  fs->tw__chunk = NULL;
  if (d == NULL) {
    tw_failure_unref(error);
    return;
  }
  if (error != NULL)
    (void)tw_deferred_errback(d, error);
  else
    (void)tw_deferred_callback(d, tw_result_int(fs->tw__last));
  tw_deferred_unref(d);
}

static tw_failure *fs_resume(tw_producer *p) {
  tw_file_sender *fs = fs_of(p);
  size_t n = 0;
  const void *out;
  errno = 0;
  if (fs->tw__file != NULL && fs->tw__chunk != NULL)
    n = fread(fs->tw__chunk, 1, fs->chunk_size, fs->tw__file);
  if (n == 0) {
    if (fs->tw__file != NULL && ferror(fs->tw__file)) {
      /* Twisted's read raises: the connection drops with the error. */
      int e = errno != 0 ? errno : EIO;
      tw_failure *f = tw_failure_from_code(-e);
      fs_finish(fs, tw_failure_ref(f));
      return f;
    }
    if (fs->tw__consumer != NULL)
      (void)tw_transport_unregister_producer(fs->tw__consumer);
    fs_finish(fs, NULL);
    return NULL;
  }
  out = fs->tw__chunk;
  if (fs->tw__transform != NULL) {
    out = fs->tw__transform(fs->tw__chunk, &n, fs->tw__arg);
    if (out == NULL) {
      if (fs->tw__consumer != NULL)
        (void)tw_transport_unregister_producer(fs->tw__consumer);
      fs_finish(fs, tw_failure_new(&TW_VALUE_ERROR, 0,
                                   "the transform refused a chunk"));
      return NULL;
    }
  }
  if (n > 0) {
    (void)tw_transport_write(fs->tw__consumer, out, n);
    fs->tw__last = ((const unsigned char *)out)[n - 1];
  }
  return NULL;
}

static tw_failure *fs_pause(tw_producer *p) {
  (void)p;
  return NULL;
}

static tw_failure *fs_stop(tw_producer *p) {
  tw_file_sender *fs = fs_of(p);
  if (fs->tw__deferred != NULL)
    fs_finish(fs, tw_failure_new(&TW_ERROR, 0,
                                 "Consumer asked us to stop producing"));
  return NULL;
}

static const tw_producer_ops fs_ops = {
    .pause_producing = fs_pause,
    .resume_producing = fs_resume,
    .stop_producing = fs_stop,
};

int tw_file_sender_init(tw_file_sender *fs) {
  if (fs == NULL) return TW_EINVAL;
  memset(fs, 0, sizeof *fs);
  fs->producer.ops = &fs_ops;
  fs->chunk_size = TW_FILE_SENDER_CHUNK_SIZE;
  fs->tw__last = -1;
  return 0;
}

int tw_file_sender_begin(tw_file_sender *fs, FILE *file,
                         tw_transport *consumer,
                         tw_file_sender_transform_fn transform, void *arg,
                         tw_deferred **out) {
  tw_deferred *d;
  int rc;
  if (out != NULL) *out = NULL;
  if (fs == NULL || file == NULL || consumer == NULL || out == NULL ||
      fs->chunk_size == 0 || fs->producer.ops != &fs_ops)
    return TW_EINVAL;
  if (fs->tw__deferred != NULL) return TW_EBUSY;
  fs->tw__chunk = tw__malloc(fs->chunk_size);
  d = tw_deferred_new(NULL, NULL);
  if (fs->tw__chunk == NULL || d == NULL) {
    tw__free(fs->tw__chunk);
    fs->tw__chunk = NULL;
    tw_deferred_unref(d);
    return TW_ENOMEM;
  }
  fs->tw__file = file;
  fs->tw__consumer = consumer;
  fs->tw__transform = transform;
  fs->tw__arg = arg;
  fs->tw__last = -1;
  fs->tw__deferred = d;
  *out = tw_deferred_ref(d); /* the caller's; fs keeps its own */
  rc = tw_transport_register_producer(consumer, &fs->producer, 0);
  if (rc != 0) {
    fs->tw__deferred = NULL;
    fs->tw__file = NULL;
    tw__free(fs->tw__chunk);
    fs->tw__chunk = NULL;
    tw_deferred_unref(d);
    tw_deferred_unref(*out);
    *out = NULL;
    return rc;
  }
  return 0;
}
