/*
 * lib/failure.c - tw_failure and the log hook (failure.h).
 */
#include "internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

/* ---- error types -------------------------------------------------------- */

const tw_error_type TW_ERROR = {"Exception", NULL};
const tw_error_type TW_RUNTIME_ERROR = {"RuntimeError", &TW_ERROR};
const tw_error_type TW_VALUE_ERROR = {"ValueError", &TW_ERROR};
const tw_error_type TW_TYPE_ERROR = {"TypeError", &TW_ERROR};
const tw_error_type TW_MEMORY_ERROR = {"MemoryError", &TW_ERROR};
const tw_error_type TW_OS_ERROR = {"OSError", &TW_ERROR};

const tw_error_type TW_CANCELLED_ERROR = {"CancelledError", &TW_ERROR};
const tw_error_type TW_TIMEOUT_ERROR = {"TimeoutError", &TW_ERROR};
const tw_error_type TW_ALREADY_CALLED_ERROR = {"AlreadyCalledError", &TW_ERROR};
const tw_error_type TW_FIRST_ERROR = {"FirstError", &TW_ERROR};
const tw_error_type TW_FAILURE_GROUP = {"FailureGroup", &TW_ERROR};
const tw_error_type TW_QUEUE_OVERFLOW = {"QueueOverflow", &TW_ERROR};
const tw_error_type TW_QUEUE_UNDERFLOW = {"QueueUnderflow", &TW_ERROR};

const tw_error_type TW_ALREADY_CALLED = {"AlreadyCalled", &TW_VALUE_ERROR};
const tw_error_type TW_ALREADY_CANCELLED = {"AlreadyCancelled",
                                            &TW_VALUE_ERROR};
const tw_error_type TW_REACTOR_NOT_RUNNING = {"ReactorNotRunning",
                                              &TW_RUNTIME_ERROR};
const tw_error_type TW_REACTOR_ALREADY_RUNNING = {"ReactorAlreadyRunning",
                                                  &TW_RUNTIME_ERROR};
const tw_error_type TW_REACTOR_NOT_RESTARTABLE = {"ReactorNotRestartable",
                                                  &TW_RUNTIME_ERROR};
const tw_error_type TW_DNS_LOOKUP_ERROR = {"DNSLookupError", &TW_OS_ERROR};

const tw_error_type TW_SYSTEM_EXIT = {"SystemExit", &TW_ERROR};

const tw_error_type TW_ALREADY_QUIT_ERROR = {"AlreadyQuit", &TW_ERROR};

const tw_error_type TW_DEADLOCK_ERROR = {"DeadlockError", &TW_RUNTIME_ERROR};
const tw_error_type TW_SHUTDOWN_ERROR = {"ShutdownError", &TW_RUNTIME_ERROR};
const tw_error_type TW_WRONG_THREAD_ERROR = {"WrongThreadError",
                                             &TW_RUNTIME_ERROR};
const tw_error_type TW_UV_ERROR = {"UVError", &TW_OS_ERROR};

/* Python's OSError subclasses (PEP 3151), named as Python names them. */
const tw_error_type TW_BLOCKING_IO_ERROR = {"BlockingIOError", &TW_OS_ERROR};
const tw_error_type TW_CHILD_PROCESS_ERROR = {"ChildProcessError",
                                              &TW_OS_ERROR};
const tw_error_type TW_CONNECTION_ERROR = {"ConnectionError", &TW_OS_ERROR};
const tw_error_type TW_BROKEN_PIPE_ERROR = {"BrokenPipeError",
                                            &TW_CONNECTION_ERROR};
const tw_error_type TW_CONNECTION_ABORTED_ERROR = {"ConnectionAbortedError",
                                                   &TW_CONNECTION_ERROR};
const tw_error_type TW_CONNECTION_REFUSED_ERROR = {"ConnectionRefusedError",
                                                   &TW_CONNECTION_ERROR};
const tw_error_type TW_CONNECTION_RESET_ERROR = {"ConnectionResetError",
                                                 &TW_CONNECTION_ERROR};
const tw_error_type TW_FILE_EXISTS_ERROR = {"FileExistsError", &TW_OS_ERROR};
const tw_error_type TW_FILE_NOT_FOUND_ERROR = {"FileNotFoundError",
                                               &TW_OS_ERROR};
const tw_error_type TW_INTERRUPTED_ERROR = {"InterruptedError", &TW_OS_ERROR};
const tw_error_type TW_IS_A_DIRECTORY_ERROR = {"IsADirectoryError",
                                               &TW_OS_ERROR};
const tw_error_type TW_NOT_A_DIRECTORY_ERROR = {"NotADirectoryError",
                                                &TW_OS_ERROR};
const tw_error_type TW_PERMISSION_ERROR = {"PermissionError", &TW_OS_ERROR};
const tw_error_type TW_PROCESS_LOOKUP_ERROR = {"ProcessLookupError",
                                               &TW_OS_ERROR};
const tw_error_type TW_OS_TIMEOUT_ERROR = {"TimeoutError", &TW_OS_ERROR};

int tw_error_type_is(const tw_error_type *type, const tw_error_type *base) {
  /* Bounded walk: a user-made cycle in base pointers must not hang us. */
  int depth = 0;
  if (base == NULL) return 0;
  for (; type != NULL && depth < 64; type = type->base, depth++)
    if (type == base) return 1;
  return 0;
}

/* ---- failures ----------------------------------------------------------- */

#define TW__IMMORTAL UINT32_MAX
#define TW__MAX_MESSAGE 4096
#define TW__MAX_FORMAT_DEPTH 16

struct tw_failure {
  _Atomic uint32_t refs; /* TW__IMMORTAL: static, never freed */
  int code;
  const tw_error_type *type;
  const char *message;
  void *payload;
  tw_free_fn payload_free;
  size_t index;
  size_t ncauses;
  tw_failure **causes; /* in the same allocation, after the struct */
};

tw_failure tw__failure_oom = {TW__IMMORTAL, TW_ENOMEM,        &TW_MEMORY_ERROR,
                              "not enough memory", NULL, NULL, 0, 0, NULL};

/*
 * One allocation holds the struct, the cause array and the message, so a
 * failure costs one malloc/free whatever it carries.
 */
static tw_failure *tw__failure_alloc(const tw_error_type *type, int code,
                                     size_t ncauses, const char *fmt,
                                     va_list ap) {
  tw_failure *f;
  char *msg;
  size_t causes_size = ncauses * sizeof(tw_failure *);
  size_t msg_len;
  int n;
  va_list ap2;

  if (type == NULL) type = &TW_ERROR;
  if (fmt == NULL) {
    msg_len = strlen(type->name);
  } else {
    va_copy(ap2, ap);
    n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    msg_len = n < 0 ? 0 : (size_t)n;
  }
  if (msg_len > TW__MAX_MESSAGE) msg_len = TW__MAX_MESSAGE;

  f = tw__malloc(sizeof(*f) + causes_size + msg_len + 1);
  if (f == NULL) return NULL;
  atomic_init(&f->refs, 1);
  f->code = code;
  f->type = type;
  f->payload = NULL;
  f->payload_free = NULL;
  f->index = 0;
  f->ncauses = ncauses;
  f->causes = ncauses ? (tw_failure **)(f + 1) : NULL;
  msg = (char *)(f + 1) + causes_size;
  if (fmt == NULL)
    memcpy(msg, type->name, msg_len);
  else
    vsnprintf(msg, msg_len + 1, fmt, ap);
  msg[msg_len] = '\0';
  f->message = msg;
  return f;
}

/* Build a failure from a fixed format without needing a caller's va_list. */
static tw_failure *tw__failure_allocf(const tw_error_type *type, int code,
                                      size_t ncauses, const char *fmt, ...)
    TW_PRINTF(4, 5);
static tw_failure *tw__failure_allocf(const tw_error_type *type, int code,
                                      size_t ncauses, const char *fmt, ...) {
  tw_failure *f;
  va_list ap;
  va_start(ap, fmt);
  f = tw__failure_alloc(type, code, ncauses, fmt, ap);
  va_end(ap);
  return f;
}

tw_failure *tw_failure_newv(const tw_error_type *type, int code,
                            const char *fmt, va_list ap) {
  tw_failure *f = tw__failure_alloc(type, code, 0, fmt, ap);
  return f ? f : &tw__failure_oom;
}

tw_failure *tw_failure_new(const tw_error_type *type, int code,
                           const char *fmt, ...) {
  tw_failure *f;
  va_list ap;
  va_start(ap, fmt);
  f = tw_failure_newv(type, code, fmt, ap);
  va_end(ap);
  return f;
}

tw_failure *tw_failure_new_payload(const tw_error_type *type, int code,
                                   void *payload, tw_free_fn payload_free,
                                   const char *fmt, ...) {
  tw_failure *f;
  va_list ap;
  va_start(ap, fmt);
  f = tw__failure_alloc(type, code, 0, fmt, ap);
  va_end(ap);
  if (f == NULL) {
    if (payload_free != NULL) payload_free(payload);
    return &tw__failure_oom;
  }
  f->payload = payload;
  f->payload_free = payload_free;
  return f;
}

/*
 * The OSError subclass for a libuv code, as Python's OSError(errno, ...)
 * picks it (Objects/exceptions.c, checked against python3.11's errno table).
 * libuv's codes are -errno on POSIX, so the errno values libuv does not name
 * (ECHILD, EINPROGRESS) are matched as negated errno too.
 */
static const tw_error_type *tw__os_type_for_code(int code) {
  switch (code) {
    case UV_EAGAIN:
    case UV_EALREADY:
    case -EINPROGRESS:
      return &TW_BLOCKING_IO_ERROR;
    case -ECHILD:
      return &TW_CHILD_PROCESS_ERROR;
    case UV_EPIPE:
    case UV_ESHUTDOWN:
      return &TW_BROKEN_PIPE_ERROR;
    case UV_ECONNABORTED:
      return &TW_CONNECTION_ABORTED_ERROR;
    case UV_ECONNREFUSED:
      return &TW_CONNECTION_REFUSED_ERROR;
    case UV_ECONNRESET:
      return &TW_CONNECTION_RESET_ERROR;
    case UV_EEXIST:
      return &TW_FILE_EXISTS_ERROR;
    case UV_ENOENT:
      return &TW_FILE_NOT_FOUND_ERROR;
    case UV_EINTR:
      return &TW_INTERRUPTED_ERROR;
    case UV_EISDIR:
      return &TW_IS_A_DIRECTORY_ERROR;
    case UV_ENOTDIR:
      return &TW_NOT_A_DIRECTORY_ERROR;
    case UV_EACCES:
    case UV_EPERM:
      return &TW_PERMISSION_ERROR;
    case UV_ESRCH:
      return &TW_PROCESS_LOOKUP_ERROR;
    case UV_ETIMEDOUT:
      return &TW_OS_TIMEOUT_ERROR;
    default:
      return &TW_UV_ERROR;
  }
}

/*
 * Codes twuv shares with libuv (error.h) have one type each. Three take the
 * type twuv's own errors need, where Python's OSError(errno) would be a
 * plain OSError: EINVAL is a ValueError, ENOMEM a MemoryError, ECANCELED a
 * CancelledError. The others are OS errors: ETIMEDOUT is the builtin
 * TimeoutError (a Deferred timeout is made as defer.TimeoutError by name,
 * with the same code), EBUSY and ENOTSUP UVError.
 */
static const tw_error_type *tw__type_for_code(int code) {
  switch (code) {
    case TW_ECANCELLED:
      return &TW_CANCELLED_ERROR;
    case TW_EALREADYCALLED:
      return &TW_ALREADY_CALLED_ERROR;
    case TW_EALREADYCANCELLED:
      return &TW_ALREADY_CANCELLED;
    case TW_EALREADYQUIT:
      return &TW_ALREADY_QUIT_ERROR;
    case TW_ENOMEM:
      return &TW_MEMORY_ERROR;
    case TW_EINVAL:
      return &TW_VALUE_ERROR;
    case TW_ENOTRUNNING:
      return &TW_REACTOR_NOT_RUNNING;
    case TW_EALREADYRUNNING:
      return &TW_REACTOR_ALREADY_RUNNING;
    case TW_ENOTRESTARTABLE:
      return &TW_REACTOR_NOT_RESTARTABLE;
    case TW_EDEADLK:
      return &TW_DEADLOCK_ERROR;
    case TW_ESHUTDOWN:
      return &TW_SHUTDOWN_ERROR;
    case TW_EWRONGTHREAD:
      return &TW_WRONG_THREAD_ERROR;
    case TW_EOVERFLOW:
      return &TW_QUEUE_OVERFLOW;
    case TW_EUNDERFLOW:
      return &TW_QUEUE_UNDERFLOW;
    default:
      return tw_is_tw_error(code) || code == 0 ? &TW_RUNTIME_ERROR
                                               : tw__os_type_for_code(code);
  }
}

tw_failure *tw_failure_from_code(int code) {
  if (code == TW_ENOMEM) return &tw__failure_oom;
  return tw_failure_new(tw__type_for_code(code), code, "%s",
                        tw_strerror(code));
}

tw_failure *tw_failure_first_error(tw_failure *sub, size_t index) {
  tw_failure *f;
  if (sub == NULL)
    return tw_failure_new(&TW_VALUE_ERROR, TW_EINVAL,
                          "FirstError needs a sub-failure");
  /* Twisted's str(FirstError): FirstError[#index, <sub-failure>] */
  f = tw__failure_allocf(&TW_FIRST_ERROR, sub->code, 1, "FirstError[#%zu, %s: %s]",
                         index, sub->type->name, sub->message);
  if (f == NULL) {
    tw_failure_unref(sub);
    return &tw__failure_oom;
  }
  f->causes[0] = sub;
  f->index = index;
  return f;
}

tw_failure *tw_failure_group(tw_failure *const *failures, size_t n) {
  tw_failure *f;
  size_t i, count = 0;
  if (failures == NULL) n = 0;
  for (i = 0; i < n; i++)
    if (failures[i] != NULL) count++;
  f = tw__failure_allocf(&TW_FAILURE_GROUP, 0, count, "%zu failure%s", count,
                         count == 1 ? "" : "s");
  if (f == NULL) {
    for (i = 0; i < n; i++) tw_failure_unref(failures[i]);
    return &tw__failure_oom;
  }
  count = 0;
  for (i = 0; i < n; i++)
    if (failures[i] != NULL) f->causes[count++] = failures[i];
  return f;
}

tw_failure *tw_failure_ref(tw_failure *f) {
  if (f != NULL && atomic_load_explicit(&f->refs, memory_order_relaxed) !=
                       TW__IMMORTAL)
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
  return f;
}

void tw_failure_unref(tw_failure *f) {
  size_t i;
  if (f == NULL ||
      atomic_load_explicit(&f->refs, memory_order_relaxed) == TW__IMMORTAL)
    return;
  if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1)
    return;
  if (f->payload_free != NULL) f->payload_free(f->payload);
  for (i = 0; i < f->ncauses; i++) tw_failure_unref(f->causes[i]);
  tw__free(f);
}

const tw_error_type *tw_failure_type(const tw_failure *f) {
  return f ? f->type : NULL;
}

int tw_failure_code(const tw_failure *f) { return f ? f->code : 0; }

void *tw_failure_payload(const tw_failure *f) { return f ? f->payload : NULL; }

const char *tw_failure_message(const tw_failure *f) {
  return f ? f->message : "";
}

size_t tw_failure_cause_count(const tw_failure *f) {
  return f ? f->ncauses : 0;
}

tw_failure *tw_failure_cause(const tw_failure *f, size_t i) {
  return f && i < f->ncauses ? f->causes[i] : NULL;
}

size_t tw_failure_index(const tw_failure *f) { return f ? f->index : 0; }

const tw_error_type *tw_failure_check(const tw_failure *f,
                                      const tw_error_type *type) {
  return f != NULL && tw_error_type_is(f->type, type) ? type : NULL;
}

const tw_error_type *tw_failure_check_any(const tw_failure *f,
                                          const tw_error_type *const *types,
                                          size_t n) {
  size_t i;
  if (f == NULL || types == NULL) return NULL;
  for (i = 0; i < n; i++)
    if (tw_error_type_is(f->type, types[i])) return types[i];
  return NULL;
}

const tw_error_type *tw_failure_trap(const tw_failure *f,
                                     const tw_error_type *type) {
  return tw_failure_check(f, type);
}

/* snprintf-style appender: counts everything, writes what fits. */
typedef struct {
  char *buf;
  size_t len;
  size_t used;
} tw__sbuf;

static void tw__sbuf_put(tw__sbuf *s, const char *fmt, ...) TW_PRINTF(2, 3);
static void tw__sbuf_put(tw__sbuf *s, const char *fmt, ...) {
  va_list ap;
  int n;
  char *dst = NULL;
  size_t room = 0;
  if (s->buf != NULL && s->used < s->len) {
    dst = s->buf + s->used;
    room = s->len - s->used;
  }
  va_start(ap, fmt);
  n = vsnprintf(dst, room, fmt, ap);
  va_end(ap);
  if (n > 0) s->used += (size_t)n;
}

static void tw__format(const tw_failure *f, tw__sbuf *s, int depth) {
  size_t i;
  tw__sbuf_put(s, "%s: %s", f->type->name, f->message);
  if (depth >= TW__MAX_FORMAT_DEPTH) return;
  for (i = 0; i < f->ncauses; i++) {
    if (f->type == &TW_FIRST_ERROR)
      tw__sbuf_put(s, "\n%*s[#%zu] ", 2 * (depth + 1), "", f->index);
    else
      tw__sbuf_put(s, "\n%*s[%zu] ", 2 * (depth + 1), "", i);
    tw__format(f->causes[i], s, depth + 1);
  }
}

size_t tw_failure_format(const tw_failure *f, char *buf, size_t len) {
  tw__sbuf s;
  s.buf = buf;
  s.len = buf ? len : 0;
  s.used = 0;
  if (buf != NULL && len > 0) buf[0] = '\0';
  if (f == NULL)
    tw__sbuf_put(&s, "(no failure)");
  else
    tw__format(f, &s, 0);
  return s.used;
}

/* ---- log ---------------------------------------------------------------- */

static uv_once_t tw__log_once = UV_ONCE_INIT;
static uv_mutex_t tw__log_mutex;
static tw_log_fn tw__log_handler;
static void *tw__log_ctx;

static void tw__log_init(void) {
  /* uv_mutex_init only fails on resource exhaustion at startup; libuv's own
   * wrappers abort in that case too, and there is no caller to report to. */
  if (uv_mutex_init(&tw__log_mutex) != 0) abort();
}

void tw_log_set_handler(tw_log_fn fn, void *ctx) {
  uv_once(&tw__log_once, tw__log_init);
  uv_mutex_lock(&tw__log_mutex);
  tw__log_handler = fn;
  tw__log_ctx = fn ? ctx : NULL;
  uv_mutex_unlock(&tw__log_mutex);
}

void tw_log_get_handler(tw_log_fn *fn, void **ctx) {
  uv_once(&tw__log_once, tw__log_init);
  uv_mutex_lock(&tw__log_mutex);
  if (fn) *fn = tw__log_handler;
  if (ctx) *ctx = tw__log_ctx;
  uv_mutex_unlock(&tw__log_mutex);
}

static const char *tw__level_name(tw_log_level level) {
  switch (level) {
    case TW_LOG_DEBUG:
      return "DEBUG";
    case TW_LOG_INFO:
      return "INFO";
    case TW_LOG_WARN:
      return "WARN";
    case TW_LOG_ERROR:
      return "ERROR";
    case TW_LOG_CRITICAL:
      return "CRITICAL";
  }
  return "LOG";
}

static void tw__log_default(const tw_log_record *r) {
  char fbuf[1024];
  flockfile(stderr);
  fprintf(stderr, "twuv [%s] %s", tw__level_name(r->level), r->message);
  if (r->file != NULL) fprintf(stderr, " (created at %s:%d)", r->file, r->line);
  fputc('\n', stderr);
  if (r->failure != NULL) {
    tw_failure_format(r->failure, fbuf, sizeof(fbuf));
    fprintf(stderr, "    %s\n", fbuf);
  }
  funlockfile(stderr);
}

static void tw__log_emit(tw_log_level level, const tw_failure *failure,
                         const char *file, int line, const char *fmt,
                         va_list ap) {
  char msg[1024];
  tw_log_record rec;
  tw_log_fn fn;
  void *ctx;

  if (fmt == NULL)
    msg[0] = '\0';
  else
    vsnprintf(msg, sizeof(msg), fmt, ap);
  rec.level = level;
  rec.message = msg;
  rec.failure = failure;
  rec.file = file;
  rec.line = file ? line : 0;
  tw_log_get_handler(&fn, &ctx);
  if (fn != NULL)
    fn(&rec, ctx);
  else
    tw__log_default(&rec);
}

void tw__log_at(tw_log_level level, const tw_failure *failure,
                const char *file, int line, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  tw__log_emit(level, failure, file, line, fmt, ap);
  va_end(ap);
}

void tw_log(tw_log_level level, const tw_failure *failure, const char *fmt,
            ...) {
  va_list ap;
  va_start(ap, fmt);
  tw__log_emit(level, failure, NULL, 0, fmt, ap);
  va_end(ap);
}

void tw_log_failure(const tw_failure *f, const char *why) {
  tw__log_at(TW_LOG_ERROR, f, NULL, 0, "%s", why ? why : "Unhandled Error");
}
