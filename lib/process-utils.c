/*
 * lib/process-utils.c - twisted.internet.utils's getProcessOutput,
 * getProcessValue and getProcessOutputAndValue (process.h): one process
 * protocol (Twisted's _BackRelay, _ValueGetter and _EverythingGetter in
 * one, by kind) that collects the output and fires a Deferred from
 * process_ended.
 */
#include <twuv/process.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* _UnexpectedErrorOutput(IOError): OSError in Python 3. */
const tw_error_type TW_UNEXPECTED_ERROR_OUTPUT = {"_UnexpectedErrorOutput",
                                                  &TW_OS_ERROR};

typedef enum { RELAY_OUTPUT, RELAY_VALUE, RELAY_EVERYTHING } relay_kind;

typedef struct relay_buf {
  char *p;
  size_t len, cap;
} relay_buf;

typedef struct relay {
  tw_process_protocol pp;
  relay_kind kind;
  int errortoo;
  tw_deferred *d;     /* fired from process_ended (or at stderr: NULL) */
  tw_deferred *ended; /* _BackRelay.onProcessEnded, after stderr */
  relay_buf out, err;
  int oom; /* a buffer could not grow: the Deferred fails with ENOMEM */
  const void *stdin_bytes; /* borrowed: connection_made runs inside spawn */
  size_t stdin_len;
} relay;

void tw_process_output_free(void *o) {
  tw_process_output *po = o;
  if (po == NULL) return;
  tw__free(po->out);
  tw__free(po->err);
  tw__free(po);
}

static int buf_add(relay_buf *b, const char *data, size_t len) {
  if (b->len + len + 1 > b->cap) {
    size_t cap = b->cap != 0 ? b->cap : 256;
    char *p;
    while (cap < b->len + len + 1) cap *= 2;
    p = tw__realloc(b->p, cap);
    if (p == NULL) return TW_ENOMEM;
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, data, len);
  b->len += len;
  b->p[b->len] = '\0';
  return 0;
}

/* Move a buffer out as a NUL-terminated string (never NULL). */
static char *buf_take(relay_buf *b, size_t *len) {
  char *p = b->p;
  *len = b->len;
  b->p = NULL;
  b->len = b->cap = 0;
  if (p == NULL) p = tw__calloc(1, 1);
  return p;
}

static tw_process_output *relay_output(relay *x, int code, int sig) {
  tw_process_output *po = tw__calloc(1, sizeof(*po));
  if (po == NULL) return NULL;
  po->out = buf_take(&x->out, &po->out_len);
  po->err = buf_take(&x->err, &po->err_len);
  po->code = code;
  po->signal = sig;
  if (po->out == NULL || po->err == NULL) {
    tw_process_output_free(po);
    return NULL;
  }
  return po;
}

/* Python's repr() of a bytes object: b'...' (b"..." when it has a ' and no
 * "), escaping \\, the quote, \t \n \r and non-printables as \xNN; cut
 * short (without "...") when out is full. size >= 8. */
static void bytes_repr(const char *s, size_t len, char *out, size_t size) {
  static const char hex[] = "0123456789abcdef";
  size_t i, n = 0;
  char q = '\'';
  if (memchr(s, '\'', len) != NULL && memchr(s, '"', len) == NULL) q = '"';
  out[n++] = 'b';
  out[n++] = q;
  /* Each byte takes at most 4 characters; the quote and the NUL 2. */
  for (i = 0; i < len && n + 6 <= size; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '\\' || c == (unsigned char)q) {
      out[n++] = '\\';
      out[n++] = (char)c;
    } else if (c == '\t' || c == '\n' || c == '\r') {
      out[n++] = '\\';
      out[n++] = c == '\t' ? 't' : c == '\n' ? 'n' : 'r';
    } else if (c < 0x20 || c >= 0x7f) {
      out[n++] = '\\';
      out[n++] = 'x';
      out[n++] = hex[c >> 4];
      out[n++] = hex[c & 15];
    } else {
      out[n++] = (char)c;
    }
  }
  out[n++] = q;
  out[n] = '\0';
}

static void relay_payload_free(void *d) { tw_deferred_unref(d); }

tw_deferred *tw_unexpected_error_output_ended(const tw_failure *f) {
  if (tw_failure_type(f) != &TW_UNEXPECTED_ERROR_OUTPUT) return NULL;
  return tw_failure_payload(f);
}

static tw_failure *relay_out(tw_process_protocol *pp, const char *data,
                             size_t len) {
  relay *x = (relay *)pp;
  if (buf_add(&x->out, data, len) != 0) x->oom = 1;
  return NULL;
}

static tw_failure *relay_err(tw_process_protocol *pp, const char *data,
                             size_t len) {
  relay *x = (relay *)pp;
  char text[512];
  tw_failure *f;
  if (x->kind == RELAY_VALUE) return NULL; /* _ValueGetter ignores it */
  if (x->kind == RELAY_EVERYTHING || x->errortoo) {
    /* errReceivedIsGood writes to the same buffer as outReceived. */
    if (buf_add(x->kind == RELAY_EVERYTHING ? &x->err : &x->out, data, len) !=
        0)
      x->oom = 1;
    return NULL;
  }
  /* errReceivedIsBad. */
  if (x->d == NULL) return NULL;
  x->ended = tw_deferred_new(NULL, NULL);
  bytes_repr(data, len, text, sizeof(text));
  if (x->ended == NULL) {
    f = tw_failure_from_code(TW_ENOMEM);
  } else {
    f = tw_failure_new_payload(&TW_UNEXPECTED_ERROR_OUTPUT, 0,
                               tw_deferred_ref(x->ended), relay_payload_free,
                               "got stderr: %s", text);
  }
  tw_deferred_errback(x->d, f);
  tw_deferred_unref(x->d);
  x->d = NULL;
  tw_transport_lose_connection(pp->transport);
  return NULL;
}

static void relay_made(tw_process_protocol *pp) {
  relay *x = (relay *)pp;
  if (x->kind != RELAY_EVERYTHING || x->stdin_bytes == NULL) return;
  tw_process_write_to_child(pp->transport, 0, x->stdin_bytes, x->stdin_len);
  tw_process_close_stdin(pp->transport);
}

static void relay_ended(tw_process_protocol *pp, tw_failure *reason) {
  relay *x = (relay *)pp;
  int code = tw_process_exit_code(reason), sig = tw_process_exit_signal(reason);
  tw_process_output *po;
  if (x->d == NULL) {
    /* _BackRelay after stderr: onProcessEnded.errback(reason). */
    if (x->ended != NULL) tw_deferred_errback(x->ended, tw_failure_ref(reason));
    return;
  }
  if (x->oom) {
    tw_deferred_errback(x->d, tw_failure_from_code(TW_ENOMEM));
    return;
  }
  if (!tw_failure_check(reason, &TW_PROCESS_DONE) &&
      !tw_failure_check(reason, &TW_PROCESS_TERMINATED)) {
    /* Not a process reason (the reactor shut down first): pass it on. */
    tw_deferred_errback(x->d, tw_failure_ref(reason));
    return;
  }
  if (x->kind == RELAY_VALUE) {
    tw_deferred_callback(x->d, tw_result_value((void *)(intptr_t)code, NULL));
    return;
  }
  po = relay_output(x, code, sig);
  if (po == NULL) {
    tw_deferred_errback(x->d, tw_failure_from_code(TW_ENOMEM));
    return;
  }
  if (x->kind == RELAY_EVERYTHING && sig != 0) {
    /* Twisted errbacks with the tuple (out, err, signal). */
    tw_deferred_errback(
        x->d, tw_failure_new_payload(&TW_PROCESS_TERMINATED,
                                     tw_failure_code(reason), po,
                                     tw_process_output_free, "%s",
                                     tw_failure_message(reason)));
    return;
  }
  tw_deferred_callback(x->d, tw_result_value(po, tw_process_output_free));
}

static void relay_dealloc(tw_process_protocol *pp) {
  relay *x = (relay *)pp;
  tw_deferred_unref(x->d);
  tw_deferred_unref(x->ended);
  tw__free(x->out.p);
  tw__free(x->err.p);
  tw__free(x);
}

static const tw_process_protocol_ops relay_ops = {
    .connection_made = relay_made,
    .out_received = relay_out,
    .err_received = relay_err,
    .process_ended = relay_ended,
};

/* _callProtocolWithDeferred: argv = {executable, args...}. */
static int relay_spawn(relay_kind kind, tw_reactor *r, const char *executable,
                       const char *const *args, const char *const *env,
                       const char *path, int errortoo, const void *stdin_bytes,
                       size_t stdin_len, tw_deferred **out) {
  const char *stack[16], **argv = stack;
  size_t n = 0, i;
  tw_transport *t;
  relay *x;
  int err;
  if (out != NULL) *out = NULL;
  if (out == NULL || (errortoo != 0 && errortoo != 1) ||
      (stdin_bytes == NULL && stdin_len > 0) || executable == NULL)
    return TW_EINVAL;
  if (args != NULL)
    while (args[n] != NULL) n++;
  if (n + 2 > TW__ARRAY_SIZE(stack)) {
    argv = tw__malloc((n + 2) * sizeof(*argv));
    if (argv == NULL) return TW_ENOMEM;
  }
  argv[0] = executable;
  for (i = 0; i < n; i++) argv[i + 1] = args[i];
  argv[n + 1] = NULL;
  x = tw__calloc(1, sizeof(*x));
  if (x == NULL) {
    err = TW_ENOMEM;
    goto done;
  }
  tw_process_protocol_init(&x->pp, &relay_ops);
  x->kind = kind;
  x->errortoo = errortoo;
  x->stdin_bytes = stdin_bytes;
  x->stdin_len = stdin_len;
  x->d = tw_deferred_new(NULL, NULL);
  if (x->d == NULL) {
    tw__free(x);
    err = TW_ENOMEM;
    goto done;
  }
  /* The caller's reference, and the relay's (released in dealloc). */
  *out = tw_deferred_ref(x->d);
  err = tw_spawn_process(r, &x->pp, executable, argv, env, path, NULL, 0,
                         NULL, &t);
  if (err != 0) {
    tw_deferred_unref(*out);
    *out = NULL;
    tw_deferred_unref(x->d);
    tw__free(x);
    goto done;
  }
  x->pp.dealloc = relay_dealloc;
  x->stdin_bytes = NULL;
done:
  if (argv != stack) tw__free(argv);
  return err;
}

int tw_get_process_output(tw_reactor *r, const char *executable,
                          const char *const *args, const char *const *env,
                          const char *path, int errortoo, tw_deferred **out) {
  return relay_spawn(RELAY_OUTPUT, r, executable, args, env, path, errortoo,
                     NULL, 0, out);
}

int tw_get_process_value(tw_reactor *r, const char *executable,
                         const char *const *args, const char *const *env,
                         const char *path, tw_deferred **out) {
  return relay_spawn(RELAY_VALUE, r, executable, args, env, path, 0, NULL, 0,
                     out);
}

int tw_get_process_output_and_value(tw_reactor *r, const char *executable,
                                    const char *const *args,
                                    const char *const *env, const char *path,
                                    const void *stdin_bytes, size_t stdin_len,
                                    tw_deferred **out) {
  return relay_spawn(RELAY_EVERYTHING, r, executable, args, env, path, 0,
                     stdin_bytes, stdin_len, out);
}
