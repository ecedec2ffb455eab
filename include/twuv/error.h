/*
 * twuv/error.h - error codes.
 *
 * twuv follows libuv: a function that can fail returns 0 or a negative code.
 * twuv's own codes (TW_E*) live in [-7099, -7001], a range libuv never uses
 * (libuv's codes are negated errno values, UV_EAI_* around -3000 and a few
 * near -4000). Codes coming from libuv are passed through unchanged, so an
 * int returned by twuv is either 0, a TW_E* code or a UV_E* code, and both
 * tw_strerror and tw_err_name understand all of them.
 *
 * Asynchronous errors (the result of a Deferred, the outcome of thread work)
 * travel as tw_failure objects instead; see failure.h.
 */
#ifndef TWUV_ERROR_H
#define TWUV_ERROR_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * X-macro table: name, value, message. Values are part of the ABI and are
 * never renumbered; new codes are appended. (-7019 is unassigned.)
 */
#define TW_ERRNO_MAP(XX)                                                     \
  XX(EINVAL, -7001, "invalid argument")                                      \
  XX(ENOMEM, -7002, "not enough memory")                                     \
  XX(EALREADYCALLED, -7003, "already called")                                \
  XX(EALREADYCANCELLED, -7004, "already cancelled")                          \
  XX(EALREADYQUIT, -7005, "worker has already quit")                         \
  XX(ENOTRUNNING, -7006, "reactor is not running")                           \
  XX(EALREADYRUNNING, -7007, "reactor is already running")                   \
  XX(ENOTRESTARTABLE, -7008, "reactor cannot be restarted")                  \
  XX(EDEADLK, -7009, "operation would deadlock")                             \
  XX(ESHUTDOWN, -7010, "reactor is shutting down or stopped")                \
  XX(EWRONGTHREAD, -7011, "called from a thread other than the loop's")      \
  XX(ETIMEDOUT, -7012, "operation timed out")                                \
  XX(ECANCELLED, -7013, "operation cancelled")                               \
  XX(ENOENT, -7014, "no such item")                                          \
  XX(EBUSY, -7015, "resource busy")                                          \
  XX(EOVERFLOW, -7016, "queue overflow")                                     \
  XX(EUNDERFLOW, -7017, "queue underflow")                                   \
  XX(ENOTLOCKED, -7018, "not locked or not acquired")                        \
  XX(ENOTSUP, -7020, "operation not supported")

typedef enum tw_errno {
#define TW__ERRNO_ENUM(name, value, msg) TW_##name = value,
  TW_ERRNO_MAP(TW__ERRNO_ENUM)
#undef TW__ERRNO_ENUM
  TW__ERRNO_FIRST = -7001, /* the smallest-magnitude code */
  TW__ERRNO_LAST = -7099   /* the range reserved for twuv */
} tw_errno;

/*
 * tw_strerror: a static, human-readable message for any code: 0 ("success"),
 * TW_E* and UV_E* codes. An unknown code gives "unknown error" (no memory is
 * allocated, unlike uv_strerror on unknown codes).
 * Thread-safe. Never fails; never returns NULL.
 */
TW_EXTERN const char *tw_strerror(int err);

/*
 * tw_err_name: the static symbolic name of a code: "TW_EINVAL", or libuv's
 * name ("ECONNREFUSED") for UV_E* codes, "OK" for 0, and "UNKNOWN" for a code
 * neither library defines.
 * Thread-safe. Never fails; never returns NULL.
 */
TW_EXTERN const char *tw_err_name(int err);

/*
 * tw_is_tw_error: 1 when err is one of twuv's own codes, 0 otherwise
 * (including 0 and libuv codes). Thread-safe.
 */
TW_EXTERN int tw_is_tw_error(int err);

#ifdef __cplusplus
}
#endif
#endif /* TWUV_ERROR_H */
