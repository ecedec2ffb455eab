/*
 * tests/test_core.c - the allocator hook, the version and the log hook
 * (common.h, version.h, failure.h's log half).
 *
 * Twisted counterparts: UtilTests.test_logErrorLogsError (the log hook
 * reports a failure), plus twuv's own contract for the allocator.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "twtest.h"

TWT_SUITE(core);

TWT_TEST(core, version_matches_header) {
  char expect[32];
  cr_assert_eq(tw_version(), TW_VERSION_HEX);
  snprintf(expect, sizeof(expect), "%d.%d.%d", TW_VERSION_MAJOR,
           TW_VERSION_MINOR, TW_VERSION_PATCH);
  cr_assert_str_eq(tw_version_string(), expect);
}

static void *bad_malloc(size_t n) { (void)n; return NULL; }

TWT_TEST(core, replace_allocator_rejects_null) {
  cr_assert_eq(tw_replace_allocator(NULL, realloc, calloc, free), TW_EINVAL);
  cr_assert_eq(tw_replace_allocator(malloc, NULL, calloc, free), TW_EINVAL);
  cr_assert_eq(tw_replace_allocator(malloc, realloc, NULL, free), TW_EINVAL);
  cr_assert_eq(tw_replace_allocator(malloc, realloc, calloc, NULL), TW_EINVAL);
  cr_assert_eq(tw_replace_allocator(bad_malloc, realloc, calloc, NULL),
               TW_EINVAL);
  /* Nothing changed: allocations still go through the counting allocator. */
  {
    long before = twt_alloc_total();
    tw_failure *f = tw_failure_new(&TW_ERROR, 0, "x");
    cr_assert_eq(twt_alloc_total(), before + 1);
    tw_failure_unref(f);
  }
}

TWT_TEST(core, every_allocation_goes_through_the_hook) {
  tw_failure *f;
  cr_assert_eq(twt_alloc_live(), 0);
  f = tw_failure_new(&TW_VALUE_ERROR, 1, "hello %d", 42);
  cr_assert_eq(twt_alloc_live(), 1);
  tw_failure_unref(f);
  cr_assert_eq(twt_alloc_live(), 0);
}

TWT_TEST(core, allocation_failure_injection_fails_exactly_the_nth) {
  tw_failure *a, *b, *c;
  twt_alloc_fail_nth(2);
  a = tw_failure_new(&TW_ERROR, 0, "a");
  b = tw_failure_new(&TW_ERROR, 0, "b");
  c = tw_failure_new(&TW_ERROR, 0, "c");
  cr_assert_str_eq(tw_failure_message(a), "a");
  cr_assert(tw_failure_check(b, &TW_MEMORY_ERROR));
  cr_assert_eq(tw_failure_code(b), TW_ENOMEM);
  cr_assert_str_eq(tw_failure_message(c), "c");
  cr_assert_eq(twt_alloc_failed(), 1);
  tw_failure_unref(a);
  tw_failure_unref(b);
  tw_failure_unref(c);
}

static int custom_calls;
static void *custom_malloc(size_t n) { custom_calls++; return malloc(n); }
static void *custom_realloc(void *p, size_t n) { custom_calls++; return realloc(p, n); }
static void *custom_calloc(size_t c, size_t n) { custom_calls++; return calloc(c, n); }
static void custom_free(void *p) { custom_calls++; free(p); }

TWT_TEST(core, replace_allocator_installs_all_four) {
  tw_failure *f;
  cr_assert_eq(tw_replace_allocator(custom_malloc, custom_realloc,
                                    custom_calloc, custom_free), 0);
  f = tw_failure_new(&TW_ERROR, 0, "x");
  tw_failure_unref(f);
  cr_assert_eq(custom_calls, 2);
  twt_alloc_install(); /* restore, so the teardown's leak check stays valid */
}

/* ---- log hook ---------------------------------------------------------- */

typedef struct {
  int calls;
  tw_log_level level;
  char message[128];
  const tw_error_type *type;
  void *ctx;
} seen_t;

static void recorder(const tw_log_record *rec, void *ctx) {
  seen_t *s = ctx;
  s->calls++;
  s->level = rec->level;
  snprintf(s->message, sizeof(s->message), "%s", rec->message);
  s->type = rec->failure ? tw_failure_type(rec->failure) : NULL;
  s->ctx = ctx;
}

TWT_TEST(core, log_handler_receives_events) {
  seen_t seen = {0};
  tw_log_fn fn;
  void *ctx;
  tw_log_set_handler(recorder, &seen);
  tw_log_get_handler(&fn, &ctx);
  cr_assert_eq(fn, recorder);
  cr_assert_eq(ctx, &seen);
  tw_log(TW_LOG_INFO, NULL, "hello %s", "world");
  cr_assert_eq(seen.calls, 1);
  cr_assert_eq(seen.level, TW_LOG_INFO);
  cr_assert_str_eq(seen.message, "hello world");
  cr_assert_null(seen.type);
  cr_assert_eq(seen.ctx, &seen);
}

TWT_TEST(core, test_log_error_logs_error) {
  /* Twisted UtilTests.test_logErrorLogsError: the failure reaches the log. */
  seen_t seen = {0};
  tw_failure *f = tw_failure_new(&TW_VALUE_ERROR, 0, "bad value");
  tw_log_set_handler(recorder, &seen);
  tw_log_failure(f, NULL);
  cr_assert_eq(seen.calls, 1);
  cr_assert_eq(seen.level, TW_LOG_ERROR);
  cr_assert_eq(seen.type, &TW_VALUE_ERROR);
  cr_assert_str_eq(seen.message, "Unhandled Error");
  tw_log_failure(f, "while doing it");
  cr_assert_str_eq(seen.message, "while doing it");
  tw_failure_unref(f);
}

TWT_TEST(core, log_set_null_restores_default) {
  tw_log_fn fn = recorder;
  void *ctx = &fn;
  tw_log_set_handler(NULL, &fn);
  tw_log_get_handler(&fn, &ctx);
  cr_assert_null(fn);
  cr_assert_null(ctx);
  /* The default handler writes to stderr and must not crash on any input. */
  tw_log(TW_LOG_DEBUG, NULL, "%s", "default handler, no failure");
  {
    tw_failure *f = tw_failure_new(&TW_RUNTIME_ERROR, 3, "boom");
    tw_log(TW_LOG_WARN, f, "default handler with a failure");
    tw_failure_unref(f);
  }
}

TWT_TEST(core, log_truncates_long_messages_without_allocating) {
  char big[4000];
  seen_t seen = {0};
  long total;
  memset(big, 'x', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  tw_log_set_handler(recorder, &seen);
  total = twt_alloc_total();
  tw_log(TW_LOG_INFO, NULL, "%s", big);
  cr_assert_eq(twt_alloc_total(), total);
  cr_assert_eq(seen.calls, 1);
  cr_assert_eq(strlen(seen.message), sizeof(seen.message) - 1);
}

TWT_TEST(core, log_works_when_memory_is_exhausted) {
  seen_t seen = {0};
  tw_log_set_handler(recorder, &seen);
  twt_alloc_fail_all(1);
  tw_log(TW_LOG_ERROR, NULL, "still logging");
  twt_alloc_fail_all(0);
  cr_assert_eq(seen.calls, 1);
  cr_assert_str_eq(seen.message, "still logging");
}

TWT_TEST(core, capture_fixture_flushes_by_type) {
  /* The fixture's own contract: unflushed errors fail a test; flush by type
   * removes only matching ones. */
  tw_failure *a = tw_failure_new(&TW_CANCELLED_ERROR, 0, "c");
  tw_failure *b = tw_failure_new(&TW_VALUE_ERROR, 0, "v");
  tw_log_failure(a, NULL);
  tw_log_failure(b, NULL);
  tw_log(TW_LOG_INFO, NULL, "info is never an error");
  cr_assert_eq(twt_log_count(), 3);
  cr_assert_eq(twt_log_flush(&TW_CANCELLED_ERROR), 1);
  cr_assert_eq(twt_log_count(), 2);
  cr_assert_eq(twt_log_flush(&TW_ERROR), 1);
  cr_assert_eq(twt_log_count(), 1);
  tw_failure_unref(a);
  tw_failure_unref(b);
}
