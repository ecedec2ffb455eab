/*
 * tests/support/twtest.h - shared fixtures for the Criterion unit tests.
 *
 * Every suite is declared with TWT_SUITE(name) and every test with
 * TWT_TEST(suite, name) (or TWT_TEST_OPTS(suite, name, .timeout = 5, ...)).
 * The suite's .init installs the counting allocator and a capturing log
 * handler; at the end of each test body, twt_check() fails the test when
 *   - any twuv allocation is still live (the leak check: LeakSanitizer and
 *     valgrind do not fail a Criterion run, this does), or
 *   - an ERROR or CRITICAL event was logged and not flushed by the test
 *     (Twisted's trial fails a test that logs an error it did not flush).
 *
 * Why not a .fini: Criterion 2.4.1 reports a test whose .fini fails as
 * passed (it only warns), so the checks run inside the test body.
 *
 * Do not use cr_log_warn: Criterion 2.4.1 exits 1 on any warning. Avoid the
 * new-API gt(): on 2.4.1 it means ge.
 */
#ifndef TWT_TEST_H
#define TWT_TEST_H

#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stddef.h>

#include "twalloc.h"
#include "twuv.h"

void twt_setup(void);
void twt_teardown(void);

/* The end-of-test checks: no live twuv allocation, no unflushed error. */
void twt_check(void);

#define TWT_SUITE(name) TestSuite(name, .init = twt_setup, .fini = twt_teardown)

#define TWT_TEST(suite, name)                   \
  static void twt__body_##suite##_##name(void); \
  Test(suite, name) {                           \
    twt__body_##suite##_##name();               \
    twt_check();                                \
  }                                             \
  static void twt__body_##suite##_##name(void)

#define TWT_TEST_OPTS(suite, name, ...)         \
  static void twt__body_##suite##_##name(void); \
  Test(suite, name, __VA_ARGS__) {              \
    twt__body_##suite##_##name();               \
    twt_check();                                \
  }                                             \
  static void twt__body_##suite##_##name(void)

typedef struct twt_log_entry {
  tw_log_level level;
  char message[512];
  const tw_error_type *type; /* of the failure, NULL if none */
  int code;                  /* of the failure */
  char failure_message[256];
  char file[256];
  int line;
} twt_log_entry;

/* Captured log events (thread-safe capture; read them from the test). */
size_t twt_log_count(void);
/* A copy of entry i (i < twt_log_count()). */
twt_log_entry twt_log_get(size_t i);
/*
 * Twisted's flushLoggedErrors(type): remove the ERROR/CRITICAL events whose
 * failure matches type (NULL: every ERROR/CRITICAL event, with or without a
 * failure) and return how many were removed.
 */
size_t twt_log_flush(const tw_error_type *type);
/* Number of captured events whose message contains text. */
size_t twt_log_count_containing(const char *text);
/* Forget every captured event. */
void twt_log_clear(void);

/*
 * An arg_free that only counts its calls, in twt_freed (atomic: pool
 * threads and workers free too). Test files name them count_free and freed
 * ("#define count_free twt_count_free", "#define freed twt_freed") and zero
 * freed where they count from; each Criterion test runs in a fresh process.
 */
extern atomic_int twt_freed;
void twt_count_free(void *arg);

/* tw_reactor_new(flags), tw_reactor_run (until stopped) and tw_reactor_free,
 * asserting that they return 0. */
tw_reactor *twt_new_reactor(unsigned flags);
void twt_run(tw_reactor *r);
void twt_free_reactor(tw_reactor *r);

/*
 * Iterate r (tw_reactor_iterate(r, 0.05), asserting 0) until *flag >= want:
 * at most 20000 iterations and TWT_SPIN_SECONDS. Returns 1 when *flag got
 * there, 0 when a bound was hit (assert on it: a test that would hang
 * fails instead). The time bound is generous on purpose: it stops a hang,
 * it does not time anything (valgrind on a busy 2-CPU machine is slow).
 * twt_spin: want = 1.
 */
#define TWT_SPIN_SECONDS 60
int twt_spin_until(tw_reactor *r, const int *flag, int want);
int twt_spin(tw_reactor *r, const int *flag);

#endif
