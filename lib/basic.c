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

#include <string.h>

#include "twuv/basic.h"

const tw_error_type TW_NOT_IMPLEMENTED_ERROR = {"NotImplementedError",
                                                &TW_RUNTIME_ERROR};

/* The struct is embedded in every line-based protocol: keep it small.
 * 48 (tw_protocol) + 16 (producer) + 8 (ops) + 8 (max_length) + 96 (the
 * buffer's pointers and counts) + 16 (delimiter) + 6 flags = 198. */
_Static_assert(sizeof(void *) != 8 || sizeof(tw_line_receiver) <= 208,
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
    if (memcmp(p + 1, d + 1, dlen - 1) == 0) return (size_t)(p - v);
    p++;
  }
  return n;
}

/* ---- LineReceiver's buffer -------------------------------------------------- */

/* A lent block bigger than this (an over-long line, a read kept while
 * paused) is freed after use rather than kept as the buffer's storage. */
static size_t lr_keep_cap(const tw_line_receiver *lr) {
  if (lr->max_length < 4096) return 8192;
  if (lr->max_length > ((size_t)-1 - 64) / 2) return (size_t)-1;
  return lr->max_length * 2 + 64;
}

static size_t a_len(const tw_line_receiver *lr) {
  return lr->tw__len - lr->tw__off;
}

static int a_append(tw_line_receiver *lr, const char *data, size_t n) {
  size_t need;
  if (n == 0) return 0;
  if (lr->tw__off > 0 && lr->tw__len + n > lr->tw__cap) {
    memmove(lr->tw__buf, lr->tw__buf + lr->tw__off, a_len(lr));
    lr->tw__len -= lr->tw__off;
    lr->tw__off = 0;
  }
  if (n > (size_t)-1 - lr->tw__len) return TW_ENOMEM;
  need = lr->tw__len + n;
  if (need > lr->tw__cap) {
    size_t cap = lr->tw__cap < 64 ? 64 : lr->tw__cap;
    char *b;
    while (cap < need) cap = cap > (size_t)-1 / 2 ? need : cap * 2;
    b = tw__realloc(lr->tw__buf, cap);
    if (b == NULL) return TW_ENOMEM;
    lr->tw__buf = b;
    lr->tw__cap = cap;
  }
  memcpy(lr->tw__buf + lr->tw__len, data, n);
  lr->tw__len += n;
  return 0;
}

/* The view is done with (no callback holds it): the lent block becomes
 * the buffer's storage again, or is freed. */
static void release_lent(tw_line_receiver *lr) {
  if (lr->tw__lent == NULL) return;
  if (lr->tw__buf == NULL && lr->tw__lent_cap <= lr_keep_cap(lr)) {
    lr->tw__buf = lr->tw__lent;
    lr->tw__cap = lr->tw__lent_cap;
    lr->tw__off = lr->tw__len = 0;
  } else {
    tw__free(lr->tw__lent);
  }
  lr->tw__lent = NULL;
  lr->tw__lent_cap = 0;
}

/* Move the buffer into the view (the view is empty, nothing lent). */
static void lend_buf(tw_line_receiver *lr) {
  lr->tw__view = lr->tw__buf + lr->tw__off;
  lr->tw__view_len = a_len(lr);
  lr->tw__lent = lr->tw__buf;
  lr->tw__lent_cap = lr->tw__cap;
  lr->tw__buf = NULL;
  lr->tw__off = lr->tw__len = lr->tw__cap = 0;
}

/* view + next + buf, copied into one new block (or *len 0 and NULL). */
static int gather(tw_line_receiver *lr, char **out, size_t *len) {
  size_t total = lr->tw__view_len, al = a_len(lr);
  char *b;
  *out = NULL;
  *len = 0;
  if (lr->tw__next_len > (size_t)-1 - total) return TW_ENOMEM;
  total += lr->tw__next_len;
  if (al > (size_t)-1 - total) return TW_ENOMEM;
  total += al;
  if (total == 0) return 0;
  b = tw__malloc(total);
  if (b == NULL) return TW_ENOMEM;
  if (lr->tw__view_len) memcpy(b, lr->tw__view, lr->tw__view_len);
  if (lr->tw__next_len)
    memcpy(b + lr->tw__view_len, lr->tw__next, lr->tw__next_len);
  if (al) memcpy(b + lr->tw__view_len + lr->tw__next_len,
                 lr->tw__buf + lr->tw__off, al);
  *out = b;
  *len = total;
  return 0;
}

/* The parse needs the whole unparsed stream in the view: an over-long
 * line goes out whole, raw data in one call, a delimiter may straddle
 * two pieces. Only between callbacks (the old lent block is freed). */
static int merge_all(tw_line_receiver *lr) {
  char *b;
  size_t total;
  if (lr->tw__next_len == 0 && a_len(lr) == 0) return 0;
  if (lr->tw__view_len == 0 && lr->tw__next_len == 0) {
    release_lent(lr);
    lend_buf(lr);
    return 0;
  }
  if (gather(lr, &b, &total) != 0) return TW_ENOMEM;
  tw__free(lr->tw__lent);
  lr->tw__lent = b;
  lr->tw__lent_cap = total;
  lr->tw__view = b;
  lr->tw__view_len = total;
  lr->tw__next_len = 0;
  lr->tw__off = lr->tw__len = 0;
  return 0;
}

/* After a parse: what is left of view and next goes before buf. */
static int save_rest(tw_line_receiver *lr) {
  if (lr->tw__view_len == 0 && lr->tw__next_len == 0) {
    release_lent(lr);
    return 0;
  }
  if (a_len(lr) == 0 && lr->tw__next_len == 0 && lr->tw__lent != NULL &&
      lr->tw__lent_cap <= lr_keep_cap(lr)) {
    /* The rest is in our lent block: it becomes the buffer, in place. */
    tw__free(lr->tw__buf);
    lr->tw__buf = lr->tw__lent;
    lr->tw__cap = lr->tw__lent_cap;
    lr->tw__off = (size_t)(lr->tw__view - lr->tw__lent);
    lr->tw__len = lr->tw__off + lr->tw__view_len;
    lr->tw__lent = NULL;
    lr->tw__lent_cap = 0;
    lr->tw__view_len = 0;
    return 0;
  }
  if (a_len(lr) == 0) {
    lr->tw__off = lr->tw__len = 0;
    if (a_append(lr, lr->tw__view, lr->tw__view_len) != 0 ||
        a_append(lr, lr->tw__next, lr->tw__next_len) != 0) {
      lr->tw__off = lr->tw__len = 0;
      lr->tw__view_len = lr->tw__next_len = 0;
      release_lent(lr);
      return TW_ENOMEM;
    }
  } else {
    char *b;
    size_t total;
    if (gather(lr, &b, &total) != 0) {
      lr->tw__off = lr->tw__len = 0;
      lr->tw__view_len = lr->tw__next_len = 0;
      release_lent(lr);
      return TW_ENOMEM;
    }
    tw__free(lr->tw__buf);
    lr->tw__buf = b;
    lr->tw__cap = total;
    lr->tw__off = 0;
    lr->tw__len = total;
  }
  lr->tw__view_len = lr->tw__next_len = 0;
  release_lent(lr);
  return 0;
}

/* ---- LineReceiver's parse ---------------------------------------------------- */

static int lr_stopped(tw_line_receiver *lr) {
  tw_transport *t = lr->base.transport;
  return lr->tw__lost || (t != NULL && tw_transport_disconnecting(t));
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
    if (lr->tw__view_len == 0) {
      release_lent(lr);
      if (lr->tw__next_len != 0) {
        lr->tw__view = lr->tw__next;
        lr->tw__view_len = lr->tw__next_len;
        lr->tw__next_len = 0;
        continue;
      }
      if (a_len(lr) == 0) return NULL;
      lend_buf(lr);
      continue;
    }
    if (!lr->tw__line_mode) {
      /* The whole buffer, in one call. */
      if (merge_all(lr) != 0) return no_memory();
      v = lr->tw__view;
      n = lr->tw__view_len;
      lr->tw__view_len = 0;
      if (lr->ops->raw_data_received == NULL)
        return not_implemented("rawDataReceived");
      f = lr->ops->raw_data_received(lr, v, n);
      if (f != NULL) return f;
      continue;
    }
    v = lr->tw__view;
    n = lr->tw__view_len;
    dlen = lr->tw__delim_len;
    i = find_delim(v, n, lr->tw__delim, dlen);
    if (i == n) {
      if (lr->tw__next_len != 0 || a_len(lr) != 0) {
        /* The delimiter may straddle the pieces. */
        if (merge_all(lr) != 0) return no_memory();
        continue;
      }
      if (at_least_sum(n, lr->max_length, dlen)) {
        lr->tw__view_len = 0;
        return lr_exceeded(lr, v, n);
      }
      lr->tw__partial = 1; /* kept by save_rest: no delimiter in it */
      return NULL;
    }
    if (i > lr->max_length) {
      /* exceeded = line + delimiter + the rest of the buffer */
      if (merge_all(lr) != 0) return no_memory();
      v = lr->tw__view;
      n = lr->tw__view_len;
      lr->tw__view_len = 0;
      return lr_exceeded(lr, v, n);
    }
    lr->tw__view = v + i + dlen;
    lr->tw__view_len = n - i - dlen;
    if (lr->ops->line_received == NULL) return not_implemented("lineReceived");
    f = lr->ops->line_received(lr, v, i);
    if (f != NULL) return f;
    if (lr_stopped(lr)) return NULL;
  }
}

/* The buffer holds a partial line (no delimiter) and data arrives: take
 * from data only what completes the line, so that the rest of the read is
 * parsed in place. When the line turns out too long (or no delimiter
 * comes), all of data joins the buffer: the parse needs it whole. */
static int lr_complete(tw_line_receiver *lr, const char *data, size_t n) {
  const unsigned char *d = lr->tw__delim;
  size_t dlen = lr->tw__delim_len, k = a_len(lr), take = n, s, i;
  const char *a = lr->tw__buf + lr->tw__off;
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
  if (a_append(lr, data, take) != 0) return TW_ENOMEM;
  lr->tw__next = data + take;
  lr->tw__next_len = n - take;
  return 0;
}

static void lr_do_cleanup(tw_line_receiver *lr) {
  tw__free(lr->tw__buf);
  tw__free(lr->tw__lent);
  tw__free(lr->tw__cleared);
  lr->tw__buf = lr->tw__lent = lr->tw__cleared = NULL;
  lr->tw__off = lr->tw__len = lr->tw__cap = lr->tw__lent_cap = 0;
  lr->tw__view_len = lr->tw__next_len = 0;
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
    if (!lr->tw__busy && len > 0 && (len > limit || a_len(lr) > limit - len))
      return tw_failure_new(&TW_RUNTIME_ERROR, TW_EOVERFLOW,
                            "%zu bytes received while the line receiver "
                            "is paused: more than it keeps",
                            a_len(lr) + len);
    if (a_append(lr, data, len) != 0) return no_memory();
    lr->tw__partial = 0;
    return NULL;
  }
  if (len == 0 && a_len(lr) == 0) return NULL;
  lr->tw__busy = 1;
  if (a_len(lr) == 0) {
    lr->tw__view = data;
    lr->tw__view_len = len;
  } else if (lr->tw__line_mode && lr->tw__partial) {
    /* The completed line first (lent), then the read's rest (next). */
    rc = lr_complete(lr, data, len);
    if (rc == 0) lend_buf(lr);
  } else {
    rc = a_append(lr, data, len);
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
  if (save_rest(lr) != 0 && f == NULL) f = no_memory();
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
  return 0;
}

int tw_line_receiver_set_raw_mode(tw_line_receiver *lr) {
  if (lr == NULL) return TW_EINVAL;
  lr->tw__line_mode = 0;
  return 0;
}

tw_failure *tw_line_receiver_set_line_mode(tw_line_receiver *lr,
                                           const void *extra, size_t len) {
  if (lr == NULL || (extra == NULL && len > 0))
    return tw_failure_from_code(TW_EINVAL);
  lr->tw__line_mode = 1;
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
  if (lr->tw__view_len == 0 && lr->tw__next_len == 0 && lr->tw__off == 0 &&
      lr->tw__len > 0) {
    /* Only our buffer: it becomes the cleared block, no copy. */
    b = lr->tw__buf;
    n = lr->tw__len;
    lr->tw__buf = NULL;
    lr->tw__len = lr->tw__cap = 0;
  } else if (gather(lr, &b, &n) != 0) {
    return TW_ENOMEM;
  }
  tw__free(lr->tw__cleared);
  lr->tw__cleared = b;
  out = b != NULL ? b : "";
  /* The lent block stays until the parse releases it: a callback may be
   * reading a line in it. */
  lr->tw__view_len = lr->tw__next_len = 0;
  lr->tw__off = lr->tw__len = 0;
  lr->tw__partial = 0;
  if (data != NULL) *data = out;
  if (len != NULL) *len = n;
  return 0;
}

size_t tw_line_receiver_buffered(const tw_line_receiver *lr) {
  if (lr == NULL) return 0;
  return lr->tw__view_len + lr->tw__next_len + a_len(lr);
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
  return lr->base.transport != NULL
             ? tw_transport_stop_producing(lr->base.transport)
             : 0;
}

int tw_line_receiver_paused(const tw_line_receiver *lr) {
  return lr != NULL && lr->tw__paused;
}
