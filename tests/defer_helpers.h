/*
 * tests/defer_helpers.h - small helpers shared by test_defer.c and
 * test_task.c: a trace of callback events, and result assertions in the
 * style of trial's successResultOf / failureResultOf / assertNoResult.
 *
 * Values in these tests are string literals (no destructor) unless a test
 * is about destructors.
 */
#ifndef TWT_DEFER_HELPERS_H
#define TWT_DEFER_HELPERS_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "twtest.h"

#define V(s) ((void *)(s))

static const tw_error_type GENERIC_ERROR = {"GenericError", &TW_ERROR};

static inline tw_failure *generic_error(const char *msg) {
  return tw_failure_new(&GENERIC_ERROR, 0, "%s", msg);
}

/* ---- a trace of events, compared as one string ------------------------- */

static char trace_buf[8192];

static inline void trace(const char *fmt, ...) TW_PRINTF(1, 2);
static inline void trace(const char *fmt, ...) {
  size_t used = strlen(trace_buf);
  va_list ap;
  if (used > 0 && used < sizeof(trace_buf) - 1) {
    trace_buf[used++] = ',';
    trace_buf[used] = '\0';
  }
  va_start(ap, fmt);
  vsnprintf(trace_buf + used, sizeof(trace_buf) - used, fmt, ap);
  va_end(ap);
}

static inline void trace_reset(void) { trace_buf[0] = '\0'; }

#define assert_trace(expected) \
  cr_assert_str_eq(trace_buf, (expected), "trace: %s", trace_buf)

/* Describe a result: the string value, None, or !Type:message. */
static inline void trace_result(const char *name, tw_result r) {
  if (r.kind == TW_RESULT_FAILURE)
    trace("%s!%s:%s", name, tw_failure_type(r.u.failure)->name,
          tw_failure_message(r.u.failure));
  else if (r.kind == TW_RESULT_VALUE && r.u.value == NULL)
    trace("%s=None", name);
  else if (r.kind == TW_RESULT_VALUE)
    trace("%s=%s", name, (const char *)r.u.value);
  else
    trace("%s=<Deferred>", name);
}

/* Record (name is the arg) and pass the result on. */
static inline tw_result rec(tw_result r, void *name) {
  trace_result(name, r);
  return r;
}

/* Record and consume: the next callback gets None (Python's list.append). */
static inline tw_result rec_eat(tw_result r, void *name) {
  trace_result(name, r);
  tw_result_release(r);
  return tw_result_none();
}

/* Consume whatever comes (lambda e: None). */
static inline tw_result eat(tw_result r, void *arg) {
  (void)arg;
  tw_result_release(r);
  return tw_result_none();
}

/* ---- result assertions ----------------------------------------------------
 * Macros, so that a failing assertion reports the test's line. */

/* successResultOf: the current value, as a string (NULL for None). */
#define success_result_of(d)                                                 \
  __extension__({                                                            \
    tw_result r_;                                                            \
    cr_assert_eq(tw_deferred_peek_result((d), &r_), 0, "no result");         \
    cr_assert_eq(r_.kind, TW_RESULT_VALUE, "failure: %s",                    \
                 r_.kind == TW_RESULT_FAILURE                                \
                     ? tw_failure_message(r_.u.failure)                      \
                     : "?");                                                 \
    (const char *)r_.u.value;                                                \
  })

/* failureResultOf(d, type): asserts, then consumes the failure (d is left
 * holding None) so that it is not reported as unhandled. */
#define failure_result_of(d, type)                                            \
  do {                                                                        \
    tw_result r_;                                                             \
    cr_assert_eq(tw_deferred_take_result((d), &r_), 0, "no result");          \
    cr_assert_eq(r_.kind, TW_RESULT_FAILURE, "not a failure");                \
    cr_assert(tw_failure_check(r_.u.failure, (type)), "failure is %s: %s",    \
              tw_failure_type(r_.u.failure)->name,                            \
              tw_failure_message(r_.u.failure));                              \
    tw_result_release(r_);                                                    \
  } while (0)

/* assertNoResult */
#define assert_no_result(d)                                        \
  do {                                                             \
    tw_result r_;                                                  \
    cr_assert_eq(tw_deferred_peek_result((d), &r_), TW_EBUSY,      \
                 "the Deferred has a result");                     \
  } while (0)

#endif
