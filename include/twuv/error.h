/*
 * twuv/error.h - error codes.
 *
 * twuv follows libuv: a function that can fail returns 0 or a negative code,
 * and codes coming from libuv are passed through unchanged.
 *
 * The rule: one code per meaning. A TW_E* code that means what a libuv code
 * means IS that libuv code - TW_EINVAL == UV_EINVAL, TW_ENOMEM == UV_ENOMEM,
 * TW_ETIMEDOUT == UV_ETIMEDOUT, TW_ECANCELLED == UV_ECANCELED, TW_EBUSY ==
 * UV_EBUSY, TW_ENOTSUP == UV_ENOTSUP, TW_ENOTCONN == UV_ENOTCONN, TW_ESRCH ==
 * UV_ESRCH (a process that has exited: process.h) - so an
 * error from libuv and the same error from twuv compare equal. On POSIX
 * libuv's codes are negated errno values, so these are defined from
 * <errno.h> (this header never needs <uv.h>; the library checks each
 * against its UV_ twin when it is built).
 * The TW_ names stay: they are the documented API. Because the values are
 * equal, a switch may not have both a TW_ and a UV_ label for one of them.
 *
 * Every other TW_E* code is twuv's own and lives in [-7099, -7001], a range
 * libuv never uses (libuv's codes are negated errno values, UV_EAI_* around
 * -3000 and a few near -4000). That includes codes whose errno name exists
 * with another meaning: TW_ENOENT ("no such item", not "no such file"),
 * TW_EOVERFLOW (a queue, not a value too large), TW_ESHUTDOWN (the reactor
 * is shutting down; libuv's is "cannot send after transport endpoint
 * shutdown") and TW_EDEADLK (libuv has no such code).
 *
 * An int returned by twuv is therefore 0, one of twuv's own codes or a
 * libuv code; tw_strerror and tw_err_name understand all of them. A shared
 * code is libuv's in every respect: its name and message are libuv's
 * ("EINVAL", "invalid argument") and tw_is_tw_error answers 0 for it.
 *
 * Asynchronous errors (the result of a Deferred, the outcome of thread work)
 * travel as tw_failure objects instead; see failure.h. Their type, not their
 * code, says which exception they are: a Deferred timeout is Twisted's
 * defer.TimeoutError, a socket's ETIMEDOUT Python's builtin TimeoutError,
 * and both carry the code TW_ETIMEDOUT.
 */
#ifndef TWUV_ERROR_H
#define TWUV_ERROR_H

#include <errno.h>

#include "common.h"

#if !defined(EINVAL) || !defined(ENOMEM) || !defined(ETIMEDOUT) || \
    !defined(ECANCELED) || !defined(EBUSY) || !defined(ENOTSUP) || \
    !defined(ENOTCONN) || !defined(ESRCH)
#error "twuv/error.h needs the POSIX errno values of <errno.h>"
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* libuv's code for an errno value on POSIX (its UV__ERR). */
#define TW__ERR(e) (-(e))

/*
 * X-macro tables: name, value, message. TW_ERRNO_SHARED_MAP holds the codes
 * that are libuv's (message: libuv's), TW_ERRNO_OWN_MAP twuv's own, and
 * TW_ERRNO_MAP both. Own values are part of the ABI and are never
 * renumbered; new codes are appended. (-7019 is unassigned; -7001, -7002,
 * -7012, -7013, -7015 and -7020 were the shared codes' values before 0.x
 * made them libuv's and are not reused.)
 */
#define TW_ERRNO_SHARED_MAP(XX)                                              \
  XX(EINVAL, TW__ERR(EINVAL), "invalid argument")                            \
  XX(ENOMEM, TW__ERR(ENOMEM), "not enough memory")                           \
  XX(ETIMEDOUT, TW__ERR(ETIMEDOUT), "connection timed out")                  \
  XX(ECANCELLED, TW__ERR(ECANCELED), "operation canceled")                   \
  XX(EBUSY, TW__ERR(EBUSY), "resource busy or locked")                       \
  XX(ENOTSUP, TW__ERR(ENOTSUP), "operation not supported on socket")         \
  XX(ENOTCONN, TW__ERR(ENOTCONN), "socket is not connected")                \
  XX(ESRCH, TW__ERR(ESRCH), "no such process")

#define TW_ERRNO_OWN_MAP(XX)                                                 \
  XX(EALREADYCALLED, -7003, "already called")                                \
  XX(EALREADYCANCELLED, -7004, "already cancelled")                          \
  XX(EALREADYQUIT, -7005, "worker has already quit")                         \
  XX(ENOTRUNNING, -7006, "reactor is not running")                           \
  XX(EALREADYRUNNING, -7007, "reactor is already running")                   \
  XX(ENOTRESTARTABLE, -7008, "reactor cannot be restarted")                  \
  XX(EDEADLK, -7009, "operation would deadlock")                             \
  XX(ESHUTDOWN, -7010, "reactor is shutting down or stopped")                \
  XX(EWRONGTHREAD, -7011, "called from a thread other than the loop's")      \
  XX(ENOENT, -7014, "no such item")                                          \
  XX(EOVERFLOW, -7016, "queue overflow")                                     \
  XX(EUNDERFLOW, -7017, "queue underflow")                                   \
  XX(ENOTLOCKED, -7018, "not locked or not acquired")

#define TW_ERRNO_MAP(XX) TW_ERRNO_SHARED_MAP(XX) TW_ERRNO_OWN_MAP(XX)

typedef enum tw_errno {
#define TW__ERRNO_ENUM(name, value, msg) TW_##name = value,
  TW_ERRNO_MAP(TW__ERRNO_ENUM)
#undef TW__ERRNO_ENUM
  TW__ERRNO_FIRST = -7001, /* the smallest-magnitude own code */
  TW__ERRNO_LAST = -7099   /* the range reserved for twuv's own codes */
} tw_errno;

/*
 * tw_strerror: a static, human-readable message for any code: 0 ("success"),
 * TW_E* and UV_E* codes (a shared code's is libuv's: tw_strerror(TW_EINVAL)
 * is "invalid argument"). An unknown code gives "unknown error" (no memory
 * is allocated, unlike uv_strerror on unknown codes).
 * Thread-safe. Never fails; never returns NULL.
 */
TW_EXTERN const char *tw_strerror(int err);

/*
 * tw_err_name: the static symbolic name of a code: "TW_EALREADYCALLED" for
 * twuv's own codes; libuv's name for libuv codes, shared ones included
 * ("ECONNREFUSED"; tw_err_name(TW_EINVAL) is "EINVAL", as
 * uv_err_name(UV_EINVAL) is); "OK" for 0; "UNKNOWN" for a code neither
 * library defines. A name starts with "TW_" exactly when tw_is_tw_error.
 * Thread-safe. Never fails; never returns NULL.
 */
TW_EXTERN const char *tw_err_name(int err);

/*
 * tw_is_tw_error: 1 when err is one of twuv's own codes (TW_ERRNO_OWN_MAP),
 * 0 otherwise: 0, libuv codes, and the TW_E* codes that are libuv's
 * (TW_EINVAL, TW_ENOMEM, ...: TW_ERRNO_SHARED_MAP). Thread-safe.
 */
TW_EXTERN int tw_is_tw_error(int err);

#ifdef __cplusplus
}
#endif
#endif /* TWUV_ERROR_H */
