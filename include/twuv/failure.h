/*
 * twuv/failure.h - tw_failure (Twisted's Failure) and the log hook.
 *
 * A failure is an immutable, reference-counted error value: an error type
 * (a tw_error_type descriptor, with a base pointer so that checks match
 * "subclasses"), an int code, a formatted message, an optional payload with
 * its destructor, and optionally the failures it wraps (FirstError wraps one,
 * FailureGroup several).
 *
 * Ownership: every function that returns a tw_failure * returns a new
 * reference that the caller owns and must release with tw_failure_unref (or
 * hand on to a function documented to take ownership). Failures are
 * immutable after creation, and their reference count is atomic, so a
 * failure may be shared between threads.
 *
 * Out of memory: the constructors never return NULL. When memory runs out
 * they return a shared, static failure of type TW_MEMORY_ERROR and code
 * TW_ENOMEM (reference counting on it is a no-op); a payload given to a
 * constructor that could not allocate is destroyed at once.
 */
#ifndef TWUV_FAILURE_H
#define TWUV_FAILURE_H

#include <stdarg.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * An error type: the analogue of an exception class. Define your own as a
 * static constant whose base is one of the built-in types:
 *
 *     const tw_error_type MY_PARSE_ERROR = {"myapp.ParseError", &TW_VALUE_ERROR};
 *
 * Types are compared by address, never by name.
 */
typedef struct tw_error_type {
  const char *name;                  /* for messages and logs */
  const struct tw_error_type *base;  /* NULL only for TW_ERROR, the root */
} tw_error_type;

/* The root of every hierarchy: Python's Exception. */
TW_EXTERN extern const tw_error_type TW_ERROR;

/* Python built-ins. */
TW_EXTERN extern const tw_error_type TW_RUNTIME_ERROR;  /* RuntimeError */
TW_EXTERN extern const tw_error_type TW_VALUE_ERROR;    /* ValueError */
TW_EXTERN extern const tw_error_type TW_TYPE_ERROR;     /* TypeError */
TW_EXTERN extern const tw_error_type TW_MEMORY_ERROR;   /* MemoryError */
TW_EXTERN extern const tw_error_type TW_OS_ERROR;       /* OSError */

/*
 * OSError's subclasses, as Python picks them from errno (PEP 3151): a failure
 * made by tw_failure_from_code from a libuv code (UV_E*, which is -errno on
 * POSIX) or a negated errno gets the subclass Python's OSError(errno, ...)
 * would be, keeping the code and tw_strerror's message:
 *
 *     if (tw_failure_check(f, &TW_FILE_NOT_FOUND_ERROR)) ...  (UV_ENOENT)
 *
 * A code with no subclass gets TW_UV_ERROR (an OSError). Check TW_OS_ERROR to
 * match every libuv error. Python's builtin TimeoutError is
 * TW_OS_TIMEOUT_ERROR: TW_TIMEOUT_ERROR is Twisted's defer.TimeoutError,
 * which is not an OSError (as in Twisted).
 */
TW_EXTERN extern const tw_error_type TW_BLOCKING_IO_ERROR;        /* EAGAIN EALREADY EINPROGRESS */
TW_EXTERN extern const tw_error_type TW_CHILD_PROCESS_ERROR;      /* ECHILD */
TW_EXTERN extern const tw_error_type TW_CONNECTION_ERROR;         /* ConnectionError: the 4 below */
TW_EXTERN extern const tw_error_type TW_BROKEN_PIPE_ERROR;        /* EPIPE ESHUTDOWN */
TW_EXTERN extern const tw_error_type TW_CONNECTION_ABORTED_ERROR; /* ECONNABORTED */
TW_EXTERN extern const tw_error_type TW_CONNECTION_REFUSED_ERROR; /* ECONNREFUSED */
TW_EXTERN extern const tw_error_type TW_CONNECTION_RESET_ERROR;   /* ECONNRESET */
TW_EXTERN extern const tw_error_type TW_FILE_EXISTS_ERROR;        /* EEXIST */
TW_EXTERN extern const tw_error_type TW_FILE_NOT_FOUND_ERROR;     /* ENOENT */
TW_EXTERN extern const tw_error_type TW_INTERRUPTED_ERROR;        /* EINTR */
TW_EXTERN extern const tw_error_type TW_IS_A_DIRECTORY_ERROR;     /* EISDIR */
TW_EXTERN extern const tw_error_type TW_NOT_A_DIRECTORY_ERROR;    /* ENOTDIR */
TW_EXTERN extern const tw_error_type TW_PERMISSION_ERROR;         /* EACCES EPERM */
TW_EXTERN extern const tw_error_type TW_PROCESS_LOOKUP_ERROR;     /* ESRCH */
TW_EXTERN extern const tw_error_type TW_OS_TIMEOUT_ERROR;         /* ETIMEDOUT: builtin TimeoutError */

/* twisted.internet.defer */
TW_EXTERN extern const tw_error_type TW_CANCELLED_ERROR;      /* CancelledError */
TW_EXTERN extern const tw_error_type TW_TIMEOUT_ERROR;        /* defer.TimeoutError */
TW_EXTERN extern const tw_error_type TW_ALREADY_CALLED_ERROR; /* AlreadyCalledError */
TW_EXTERN extern const tw_error_type TW_FIRST_ERROR;          /* FirstError: 1 cause + index */
TW_EXTERN extern const tw_error_type TW_FAILURE_GROUP;        /* FailureGroup: n causes */
TW_EXTERN extern const tw_error_type TW_QUEUE_OVERFLOW;       /* QueueOverflow */
TW_EXTERN extern const tw_error_type TW_QUEUE_UNDERFLOW;      /* QueueUnderflow */

/* twisted.internet.error (the DelayedCall ones derive from ValueError). */
TW_EXTERN extern const tw_error_type TW_ALREADY_CALLED;           /* AlreadyCalled */
TW_EXTERN extern const tw_error_type TW_ALREADY_CANCELLED;        /* AlreadyCancelled */
TW_EXTERN extern const tw_error_type TW_REACTOR_NOT_RUNNING;      /* ReactorNotRunning */
TW_EXTERN extern const tw_error_type TW_REACTOR_ALREADY_RUNNING;  /* ReactorAlreadyRunning */
TW_EXTERN extern const tw_error_type TW_REACTOR_NOT_RESTARTABLE;  /* ReactorNotRestartable */
TW_EXTERN extern const tw_error_type TW_DNS_LOOKUP_ERROR;         /* DNSLookupError (OSError here) */

/*
 * SystemExit(code): a failure of this type ending tw_react's main Deferred
 * makes tw_react return code & 0xff (what exit(code) reports) instead of 1.
 * Python's SystemExit is a BaseException, not an Exception; twuv has one
 * root, so it derives from TW_ERROR.
 */
TW_EXTERN extern const tw_error_type TW_SYSTEM_EXIT; /* SystemExit */

/* twisted._threads */
TW_EXTERN extern const tw_error_type TW_ALREADY_QUIT_ERROR;  /* AlreadyQuit */

/* twuv's own: where Twisted hangs or asserts, twuv fails with these. */
TW_EXTERN extern const tw_error_type TW_DEADLOCK_ERROR;     /* RuntimeError: would deadlock */
TW_EXTERN extern const tw_error_type TW_SHUTDOWN_ERROR;     /* RuntimeError: reactor gone */
TW_EXTERN extern const tw_error_type TW_WRONG_THREAD_ERROR; /* RuntimeError */
TW_EXTERN extern const tw_error_type TW_UV_ERROR;           /* OSError carrying a UV_E* code */

typedef struct tw_failure tw_failure;

/*
 * tw_error_type_is: 1 when type is base or derives from it, else 0 (also 0
 * when either is NULL). Thread-safe.
 */
TW_EXTERN int tw_error_type_is(const tw_error_type *type,
                               const tw_error_type *base);

/*
 * tw_failure_new: a new failure of the given type (NULL means TW_ERROR) with
 * an int code (any value; 0 when the type says it all) and a printf-style
 * message (NULL means the type's name). Messages longer than 4096 bytes are
 * truncated. Thread-safe. Never returns NULL (see "Out of memory" above).
 */
TW_EXTERN tw_failure *tw_failure_new(const tw_error_type *type, int code,
                                     const char *fmt, ...) TW_PRINTF(3, 4);

/* tw_failure_newv: tw_failure_new with a va_list. */
TW_EXTERN tw_failure *tw_failure_newv(const tw_error_type *type, int code,
                                      const char *fmt, va_list ap)
    TW_PRINTF(3, 0);

/*
 * tw_failure_new_payload: like tw_failure_new, and the failure carries
 * payload; payload_free(payload) runs when the last reference is released
 * (payload_free may be NULL). Read it back with tw_failure_payload.
 */
TW_EXTERN tw_failure *tw_failure_new_payload(const tw_error_type *type,
                                             int code, void *payload,
                                             tw_free_fn payload_free,
                                             const char *fmt, ...)
    TW_PRINTF(5, 6);

/*
 * tw_failure_from_code: the failure for an error code. One type per code:
 * TW_E* codes map to their natural type (TW_ECANCELLED -> TW_CANCELLED_ERROR,
 * TW_EALREADYCALLED -> TW_ALREADY_CALLED_ERROR,
 * TW_EALREADYCANCELLED -> TW_ALREADY_CANCELLED, TW_EALREADYQUIT ->
 * TW_ALREADY_QUIT_ERROR, TW_ENOMEM -> TW_MEMORY_ERROR, TW_EINVAL ->
 * TW_VALUE_ERROR, TW_ENOTRUNNING -> TW_REACTOR_NOT_RUNNING,
 * TW_EALREADYRUNNING -> TW_REACTOR_ALREADY_RUNNING, TW_ENOTRESTARTABLE ->
 * TW_REACTOR_NOT_RESTARTABLE, TW_EDEADLK -> TW_DEADLOCK_ERROR, TW_ESHUTDOWN ->
 * TW_SHUTDOWN_ERROR, TW_EWRONGTHREAD -> TW_WRONG_THREAD_ERROR, TW_EOVERFLOW ->
 * TW_QUEUE_OVERFLOW, TW_EUNDERFLOW -> TW_QUEUE_UNDERFLOW, other own codes
 * -> TW_RUNTIME_ERROR); any other non-zero code is taken as a libuv code (or
 * a negated errno) and gives the OSError subclass Python maps its errno to
 * (UV_ENOENT -> TW_FILE_NOT_FOUND_ERROR, UV_ECONNREFUSED ->
 * TW_CONNECTION_REFUSED_ERROR, ...: see the list above), or TW_UV_ERROR when
 * Python has none. That includes the codes twuv shares with libuv
 * (error.h): TW_ETIMEDOUT gives TW_OS_TIMEOUT_ERROR (the builtin
 * TimeoutError: twuv's Deferred timeouts are made as TW_TIMEOUT_ERROR by
 * name, with the same code), TW_EBUSY and TW_ENOTSUP TW_UV_ERROR; but
 * TW_EINVAL gives TW_VALUE_ERROR, TW_ENOMEM TW_MEMORY_ERROR and
 * TW_ECANCELLED TW_CANCELLED_ERROR, whatever produced them (a producer that
 * means an OSError names the type: tw_failure_new(&TW_UV_ERROR, code, ...)).
 * The code is kept; the message is tw_strerror(code). Thread-safe.
 */
TW_EXTERN tw_failure *tw_failure_from_code(int code);

/*
 * tw_failure_first_error: Twisted's FirstError(sub_failure, index), as made by
 * DeferredList(fireOnOneErrback=True) and gather_results. Takes ownership of
 * the caller's reference to sub (which must not be NULL: a NULL sub gives a
 * TW_VALUE_ERROR failure instead). The code is sub's code. Thread-safe.
 */
TW_EXTERN tw_failure *tw_failure_first_error(tw_failure *sub, size_t index);

/*
 * tw_failure_group: Twisted's FailureGroup(failures), as made by tw_race when
 * every input fails. Takes ownership of the n references in failures (the
 * array itself stays the caller's). n may be 0. NULL entries are skipped.
 * Thread-safe.
 */
TW_EXTERN tw_failure *tw_failure_group(tw_failure *const *failures, size_t n);

/* tw_failure_ref: a new reference to f (f may be NULL). Returns f. */
TW_EXTERN tw_failure *tw_failure_ref(tw_failure *f);

/*
 * tw_failure_unref: release a reference; the last one frees the failure,
 * runs its payload destructor and releases its causes. NULL is ignored.
 * Thread-safe.
 */
TW_EXTERN void tw_failure_unref(tw_failure *f);

/* Accessors. All are thread-safe and tolerate f == NULL. */
TW_EXTERN const tw_error_type *tw_failure_type(const tw_failure *f); /* NULL for NULL */
TW_EXTERN int tw_failure_code(const tw_failure *f);                  /* 0 for NULL */
TW_EXTERN void *tw_failure_payload(const tw_failure *f);             /* NULL if none */

/*
 * tw_failure_message: Twisted's getErrorMessage(): the message, never NULL
 * ("" for f == NULL). Valid as long as the caller holds a reference.
 */
TW_EXTERN const char *tw_failure_message(const tw_failure *f);

/*
 * Wrapped failures: FirstError has one cause and an index; a FailureGroup has
 * tw_failure_cause_count(f) causes; other failures have none.
 * tw_failure_cause returns a borrowed pointer (NULL when i is out of range).
 * tw_failure_index returns FirstError's index (0 for other failures).
 */
TW_EXTERN size_t tw_failure_cause_count(const tw_failure *f);
TW_EXTERN tw_failure *tw_failure_cause(const tw_failure *f, size_t i);
TW_EXTERN size_t tw_failure_index(const tw_failure *f);

/*
 * tw_failure_check: Failure.check(type): returns type when f's type is type
 * or derives from it, NULL otherwise (and for NULL arguments).
 */
TW_EXTERN const tw_error_type *tw_failure_check(const tw_failure *f,
                                                const tw_error_type *type);

/*
 * tw_failure_check_any: Failure.check(*types): the first of the n types that
 * f matches, or NULL.
 */
TW_EXTERN const tw_error_type *tw_failure_check_any(
    const tw_failure *f, const tw_error_type *const *types, size_t n);

/*
 * tw_failure_trap: Failure.trap(type). C cannot re-raise, so trap returns the
 * matching type, or NULL when f does not match - and then an errback should
 * return the failure it was given, unchanged, which is exactly what Twisted's
 * re-raise achieves:
 *
 *     if (!tw_failure_trap(r.u.failure, &TW_CANCELLED_ERROR)) return r;
 */
TW_EXTERN const tw_error_type *tw_failure_trap(const tw_failure *f,
                                               const tw_error_type *type);

/*
 * tw_failure_format: "TypeName: message" followed, for wrapped failures, by
 * the causes (FirstError adds " [#index]"), into buf like snprintf: returns
 * the length the full text needs (not counting the NUL), writes at most len
 * bytes including the NUL. buf may be NULL when len is 0. Thread-safe.
 */
TW_EXTERN size_t tw_failure_format(const tw_failure *f, char *buf, size_t len);

/* ---- The log hook ------------------------------------------------------- */

/* Levels, spaced like Python's logging levels. */
typedef enum tw_log_level {
  TW_LOG_DEBUG = 10,
  TW_LOG_INFO = 20,
  TW_LOG_WARN = 30,
  TW_LOG_ERROR = 40,
  TW_LOG_CRITICAL = 50
} tw_log_level;

/*
 * One log event. Everything is borrowed for the duration of the handler
 * call: copy what you keep (take a reference to failure).
 *   message  formatted text, never NULL
 *   failure  the failure being reported, or NULL
 *   file/line  where the subject was created (e.g. the unhandled Deferred),
 *            or NULL/0 when unknown
 */
typedef struct tw_log_record {
  tw_log_level level;
  const char *message;
  const tw_failure *failure;
  const char *file;
  int line;
} tw_log_record;

typedef void (*tw_log_fn)(const tw_log_record *record, void *ctx);

/*
 * tw_log_set_handler: route what twuv logs (unhandled errors in Deferreds,
 * failing thread work, failing system event triggers...) to fn(record, ctx).
 * fn == NULL restores the default handler, which writes one line per event
 * (plus the failure) to stderr. The handler may be called from any thread,
 * concurrently, so it must be thread-safe. Setting the handler is
 * thread-safe; a call already under way may still reach the old handler.
 */
TW_EXTERN void tw_log_set_handler(tw_log_fn fn, void *ctx);

/* tw_log_get_handler: the current handler and context (NULL fn = default). */
TW_EXTERN void tw_log_get_handler(tw_log_fn *fn, void **ctx);

/*
 * tw_log: emit a log event through the handler (Twisted's log.msg / log.err).
 * failure may be NULL. Messages longer than 1023 bytes are truncated. Does
 * not allocate, so it works when memory is exhausted. Thread-safe.
 */
TW_EXTERN void tw_log(tw_log_level level, const tw_failure *failure,
                      const char *fmt, ...) TW_PRINTF(3, 4);

/*
 * tw_log_failure: log.err(failure, why): an TW_LOG_ERROR event with the
 * failure; why may be NULL ("Unhandled Error"). Thread-safe.
 */
TW_EXTERN void tw_log_failure(const tw_failure *f, const char *why);

#ifdef __cplusplus
}
#endif
#endif /* TWUV_FAILURE_H */
