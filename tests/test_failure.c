/*
 * tests/test_failure.c - tw_failure (failure.h): Twisted's Failure.check /
 * trap / getErrorMessage, FirstError, FailureGroup, payloads, refcounts and
 * behaviour when memory runs out.
 */
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <uv.h>

#include "twtest.h"

TWT_SUITE(failure);

static const tw_error_type MY_ERROR = {"test.MyError", &TW_VALUE_ERROR};
static const tw_error_type MY_SUB_ERROR = {"test.MySubError", &MY_ERROR};

TWT_TEST(failure, check_matches_the_type_and_its_bases) {
  tw_failure *f = tw_failure_new(&MY_SUB_ERROR, 7, "sub %d", 1);
  cr_assert_eq(tw_failure_check(f, &MY_SUB_ERROR), &MY_SUB_ERROR);
  cr_assert_eq(tw_failure_check(f, &MY_ERROR), &MY_ERROR);
  cr_assert_eq(tw_failure_check(f, &TW_VALUE_ERROR), &TW_VALUE_ERROR);
  cr_assert_eq(tw_failure_check(f, &TW_ERROR), &TW_ERROR);
  cr_assert_null(tw_failure_check(f, &TW_CANCELLED_ERROR));
  cr_assert_null(tw_failure_check(f, &TW_RUNTIME_ERROR));
  tw_failure_unref(f);
}

TWT_TEST(failure, a_base_does_not_match_a_subtype) {
  tw_failure *f = tw_failure_new(&MY_ERROR, 0, NULL);
  cr_assert_null(tw_failure_check(f, &MY_SUB_ERROR));
  tw_failure_unref(f);
}

TWT_TEST(failure, check_any_returns_the_first_matching_argument) {
  const tw_error_type *types[] = {&TW_CANCELLED_ERROR, &TW_VALUE_ERROR,
                                  &MY_ERROR};
  tw_failure *f = tw_failure_new(&MY_SUB_ERROR, 0, NULL);
  cr_assert_eq(tw_failure_check_any(f, types, 3), &TW_VALUE_ERROR);
  cr_assert_null(tw_failure_check_any(f, types, 1));
  cr_assert_null(tw_failure_check_any(f, NULL, 3));
  cr_assert_null(tw_failure_check_any(NULL, types, 3));
  tw_failure_unref(f);
}

TWT_TEST(failure, trap_returns_the_match_or_null) {
  tw_failure *f = tw_failure_new(&TW_CANCELLED_ERROR, 0, NULL);
  cr_assert_eq(tw_failure_trap(f, &TW_CANCELLED_ERROR), &TW_CANCELLED_ERROR);
  cr_assert_null(tw_failure_trap(f, &TW_TIMEOUT_ERROR));
  tw_failure_unref(f);
}

TWT_TEST(failure, builtin_hierarchy_follows_twisted) {
  cr_assert(tw_error_type_is(&TW_ALREADY_CALLED, &TW_VALUE_ERROR));
  cr_assert(tw_error_type_is(&TW_ALREADY_CANCELLED, &TW_VALUE_ERROR));
  cr_assert(tw_error_type_is(&TW_REACTOR_NOT_RUNNING, &TW_RUNTIME_ERROR));
  cr_assert(tw_error_type_is(&TW_REACTOR_NOT_RESTARTABLE, &TW_RUNTIME_ERROR));
  cr_assert(tw_error_type_is(&TW_REACTOR_ALREADY_RUNNING, &TW_RUNTIME_ERROR));
  cr_assert(tw_error_type_is(&TW_UV_ERROR, &TW_OS_ERROR));
  cr_assert(tw_error_type_is(&TW_DNS_LOOKUP_ERROR, &TW_OS_ERROR));
  cr_assert_not(tw_error_type_is(&TW_CANCELLED_ERROR, &TW_TIMEOUT_ERROR));
  cr_assert_not(tw_error_type_is(&TW_ALREADY_CALLED_ERROR, &TW_VALUE_ERROR));
  cr_assert_not(tw_error_type_is(NULL, &TW_ERROR));
  cr_assert_not(tw_error_type_is(&TW_ERROR, NULL));
  /* Every built-in type reaches the root. */
  {
    const tw_error_type *all[] = {
        &TW_RUNTIME_ERROR, &TW_VALUE_ERROR, &TW_TYPE_ERROR, &TW_MEMORY_ERROR,
        &TW_OS_ERROR, &TW_CANCELLED_ERROR, &TW_TIMEOUT_ERROR,
        &TW_ALREADY_CALLED_ERROR, &TW_FIRST_ERROR, &TW_FAILURE_GROUP,
        &TW_QUEUE_OVERFLOW, &TW_QUEUE_UNDERFLOW, &TW_ALREADY_CALLED,
        &TW_ALREADY_CANCELLED, &TW_REACTOR_NOT_RUNNING,
        &TW_REACTOR_ALREADY_RUNNING, &TW_REACTOR_NOT_RESTARTABLE,
        &TW_DNS_LOOKUP_ERROR, &TW_ALREADY_QUIT_ERROR, &TW_DEADLOCK_ERROR,
        &TW_SHUTDOWN_ERROR, &TW_WRONG_THREAD_ERROR, &TW_UV_ERROR,
        &TW_BLOCKING_IO_ERROR, &TW_CHILD_PROCESS_ERROR, &TW_CONNECTION_ERROR,
        &TW_BROKEN_PIPE_ERROR, &TW_CONNECTION_ABORTED_ERROR,
        &TW_CONNECTION_REFUSED_ERROR, &TW_CONNECTION_RESET_ERROR,
        &TW_FILE_EXISTS_ERROR, &TW_FILE_NOT_FOUND_ERROR, &TW_INTERRUPTED_ERROR,
        &TW_IS_A_DIRECTORY_ERROR, &TW_NOT_A_DIRECTORY_ERROR,
        &TW_PERMISSION_ERROR, &TW_PROCESS_LOOKUP_ERROR, &TW_OS_TIMEOUT_ERROR,
        &TW_SYSTEM_EXIT};
    size_t i;
    for (i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
      cr_assert(tw_error_type_is(all[i], &TW_ERROR), "%s", all[i]->name);
      cr_assert(all[i]->name != NULL && all[i]->name[0] != '\0');
    }
  }
}

TWT_TEST(failure, cyclic_user_types_do_not_hang) {
  static tw_error_type a, b;
  a.name = "a";
  a.base = &b;
  b.name = "b";
  b.base = &a;
  cr_assert_not(tw_error_type_is(&a, &TW_ERROR));
  cr_assert(tw_error_type_is(&a, &b));
}

TWT_TEST(failure, message_is_formatted) {
  tw_failure *f = tw_failure_new(&TW_RUNTIME_ERROR, -3, "value %s=%d", "x", 5);
  cr_assert_str_eq(tw_failure_message(f), "value x=5");
  cr_assert_eq(tw_failure_code(f), -3);
  cr_assert_eq(tw_failure_type(f), &TW_RUNTIME_ERROR);
  cr_assert_null(tw_failure_payload(f));
  cr_assert_eq(tw_failure_cause_count(f), 0);
  cr_assert_null(tw_failure_cause(f, 0));
  tw_failure_unref(f);
}

TWT_TEST(failure, null_type_and_format_get_safe_defaults) {
  tw_failure *f = tw_failure_new(NULL, 0, NULL);
  cr_assert_eq(tw_failure_type(f), &TW_ERROR);
  cr_assert_str_eq(tw_failure_message(f), "Exception");
  tw_failure_unref(f);
}

TWT_TEST(failure, long_messages_are_truncated) {
  char big[10000];
  tw_failure *f;
  memset(big, 'y', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  f = tw_failure_new(&TW_ERROR, 0, "%s", big);
  cr_assert_eq(strlen(tw_failure_message(f)), 4096);
  tw_failure_unref(f);
}

TWT_TEST(failure, accessors_tolerate_null) {
  cr_assert_null(tw_failure_type(NULL));
  cr_assert_eq(tw_failure_code(NULL), 0);
  cr_assert_str_eq(tw_failure_message(NULL), "");
  cr_assert_null(tw_failure_payload(NULL));
  cr_assert_eq(tw_failure_cause_count(NULL), 0);
  cr_assert_null(tw_failure_cause(NULL, 0));
  cr_assert_eq(tw_failure_index(NULL), 0);
  cr_assert_null(tw_failure_check(NULL, &TW_ERROR));
  cr_assert_null(tw_failure_ref(NULL));
  tw_failure_unref(NULL);
}

static int payload_freed;
static void free_payload(void *p) {
  payload_freed++;
  cr_assert_str_eq(p, "payload");
}

TWT_TEST(failure, payload_destructor_runs_with_the_last_reference) {
  static char data[] = "payload";
  tw_failure *f = tw_failure_new_payload(&MY_ERROR, 0, data, free_payload,
                                         "with %s", "payload");
  cr_assert_eq(tw_failure_payload(f), data);
  cr_assert_eq(tw_failure_ref(f), f);
  tw_failure_unref(f);
  cr_assert_eq(payload_freed, 0);
  tw_failure_unref(f);
  cr_assert_eq(payload_freed, 1);
}

TWT_TEST(failure, payload_without_destructor) {
  int x = 1;
  tw_failure *f = tw_failure_new_payload(&MY_ERROR, 0, &x, NULL, "p");
  cr_assert_eq(tw_failure_payload(f), &x);
  tw_failure_unref(f);
}

TWT_TEST(failure, payload_is_destroyed_when_the_failure_cannot_be_allocated) {
  static char data[] = "payload";
  tw_failure *f;
  twt_alloc_fail_nth(1);
  f = tw_failure_new_payload(&MY_ERROR, 0, data, free_payload, "x");
  cr_assert_eq(payload_freed, 1);
  cr_assert(tw_failure_check(f, &TW_MEMORY_ERROR));
  cr_assert_null(tw_failure_payload(f));
  tw_failure_unref(f);
}

TWT_TEST(failure, out_of_memory_gives_the_static_memory_error) {
  tw_failure *f;
  twt_alloc_fail_all(1);
  f = tw_failure_new(&MY_ERROR, 0, "x");
  cr_assert(tw_failure_check(f, &TW_MEMORY_ERROR));
  cr_assert_eq(tw_failure_code(f), TW_ENOMEM);
  /* Refcounting the static failure is harmless, any number of times. */
  tw_failure_ref(f);
  tw_failure_unref(f);
  tw_failure_unref(f);
  tw_failure_unref(f);
  cr_assert_str_eq(tw_failure_message(f), "not enough memory");
  twt_alloc_fail_all(0);
}

TWT_TEST(failure, refcount_is_exact) {
  tw_failure *f = tw_failure_new(&MY_ERROR, 0, "x");
  int i;
  for (i = 0; i < 100; i++) tw_failure_ref(f);
  for (i = 0; i < 100; i++) tw_failure_unref(f);
  cr_assert_eq(twt_alloc_live(), 1);
  tw_failure_unref(f);
  cr_assert_eq(twt_alloc_live(), 0);
}

TWT_TEST(failure, from_code_maps_twuv_codes_to_their_types) {
  static const struct {
    int code;
    const tw_error_type *type;
  } map[] = {
      {TW_ECANCELLED, &TW_CANCELLED_ERROR},
      {UV_ECANCELED, &TW_CANCELLED_ERROR}, /* the same code */
      /* Shared with libuv (error.h), so an OS error: the builtin
       * TimeoutError; Deferred timeouts name defer.TimeoutError. */
      {TW_ETIMEDOUT, &TW_OS_TIMEOUT_ERROR},
      {TW_EALREADYCALLED, &TW_ALREADY_CALLED_ERROR},
      {TW_EALREADYCANCELLED, &TW_ALREADY_CANCELLED},
      {TW_EALREADYQUIT, &TW_ALREADY_QUIT_ERROR},
      {TW_ENOMEM, &TW_MEMORY_ERROR},
      {UV_ENOMEM, &TW_MEMORY_ERROR},
      {TW_EINVAL, &TW_VALUE_ERROR},
      {UV_EINVAL, &TW_VALUE_ERROR},
      {TW_ENOTRUNNING, &TW_REACTOR_NOT_RUNNING},
      {TW_EALREADYRUNNING, &TW_REACTOR_ALREADY_RUNNING},
      {TW_ENOTRESTARTABLE, &TW_REACTOR_NOT_RESTARTABLE},
      {TW_EDEADLK, &TW_DEADLOCK_ERROR},
      {TW_ESHUTDOWN, &TW_SHUTDOWN_ERROR},
      {TW_EWRONGTHREAD, &TW_WRONG_THREAD_ERROR},
      {TW_EOVERFLOW, &TW_QUEUE_OVERFLOW},
      {TW_EUNDERFLOW, &TW_QUEUE_UNDERFLOW},
      {TW_ENOENT, &TW_RUNTIME_ERROR}, /* own: not FileNotFoundError */
      {TW_EBUSY, &TW_UV_ERROR},         /* shared: Python's plain OSError */
      {TW_ENOTSUP, &TW_UV_ERROR},
      {UV_ECONNREFUSED, &TW_CONNECTION_REFUSED_ERROR},
      {UV_EAI_NONAME, &TW_UV_ERROR},
      {UV_EMFILE, &TW_UV_ERROR},
  };
  size_t i;
  for (i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
    tw_failure *f = tw_failure_from_code(map[i].code);
    cr_assert_eq(tw_failure_type(f), map[i].type, "code %s",
                 tw_err_name(map[i].code));
    cr_assert_eq(tw_failure_code(f), map[i].code);
    cr_assert_str_eq(tw_failure_message(f), tw_strerror(map[i].code));
    tw_failure_unref(f);
  }
}

/*
 * Python's own errno -> OSError subclass table (PEP 3151), printed by
 * python3.11 with type(OSError(errno.X, "x")).__name__ for every errno name:
 * the codes libuv names must give the same subclasses, and every one of them
 * must still be an OSError carrying its code and message.
 */
TWT_TEST(failure, oserror_subclasses_follow_python_errno_mapping) {
  static const struct {
    int code;
    const tw_error_type *type;
    const char *python_name;
    const tw_error_type *python_base;
  } map[] = {
      {UV_EAGAIN, &TW_BLOCKING_IO_ERROR, "BlockingIOError", &TW_OS_ERROR},
      {UV_EALREADY, &TW_BLOCKING_IO_ERROR, "BlockingIOError", &TW_OS_ERROR},
      {-EINPROGRESS, &TW_BLOCKING_IO_ERROR, "BlockingIOError", &TW_OS_ERROR},
      {-ECHILD, &TW_CHILD_PROCESS_ERROR, "ChildProcessError", &TW_OS_ERROR},
      {UV_EPIPE, &TW_BROKEN_PIPE_ERROR, "BrokenPipeError", &TW_CONNECTION_ERROR},
      {UV_ESHUTDOWN, &TW_BROKEN_PIPE_ERROR, "BrokenPipeError",
       &TW_CONNECTION_ERROR},
      {UV_ECONNABORTED, &TW_CONNECTION_ABORTED_ERROR, "ConnectionAbortedError",
       &TW_CONNECTION_ERROR},
      {UV_ECONNREFUSED, &TW_CONNECTION_REFUSED_ERROR, "ConnectionRefusedError",
       &TW_CONNECTION_ERROR},
      {UV_ECONNRESET, &TW_CONNECTION_RESET_ERROR, "ConnectionResetError",
       &TW_CONNECTION_ERROR},
      {UV_EEXIST, &TW_FILE_EXISTS_ERROR, "FileExistsError", &TW_OS_ERROR},
      {UV_ENOENT, &TW_FILE_NOT_FOUND_ERROR, "FileNotFoundError", &TW_OS_ERROR},
      {UV_EINTR, &TW_INTERRUPTED_ERROR, "InterruptedError", &TW_OS_ERROR},
      {UV_EISDIR, &TW_IS_A_DIRECTORY_ERROR, "IsADirectoryError", &TW_OS_ERROR},
      {UV_ENOTDIR, &TW_NOT_A_DIRECTORY_ERROR, "NotADirectoryError",
       &TW_OS_ERROR},
      {UV_EACCES, &TW_PERMISSION_ERROR, "PermissionError", &TW_OS_ERROR},
      {UV_EPERM, &TW_PERMISSION_ERROR, "PermissionError", &TW_OS_ERROR},
      {UV_ESRCH, &TW_PROCESS_LOOKUP_ERROR, "ProcessLookupError", &TW_OS_ERROR},
      {UV_ETIMEDOUT, &TW_OS_TIMEOUT_ERROR, "TimeoutError", &TW_OS_ERROR},
  };
  size_t i;
  for (i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
    tw_failure *f = tw_failure_from_code(map[i].code);
    const tw_error_type *t = tw_failure_type(f);
    cr_assert_eq(t, map[i].type, "code %d (%s)", map[i].code,
                 tw_err_name(map[i].code));
    cr_assert_str_eq(t->name, map[i].python_name);
    cr_assert_eq(t->base, map[i].python_base, "%s", t->name);
    cr_assert(tw_failure_check(f, &TW_OS_ERROR), "%s", t->name);
    cr_assert_null(tw_failure_check(f, &TW_UV_ERROR), "%s", t->name);
    cr_assert_eq(tw_failure_code(f), map[i].code);
    cr_assert_str_eq(tw_failure_message(f), tw_strerror(map[i].code));
    tw_failure_unref(f);
  }
}

TWT_TEST(failure, os_timeout_error_is_not_defer_timeout_error) {
  /* Python's builtin TimeoutError (an OSError) and Twisted's
   * defer.TimeoutError (an Exception) are unrelated types in Twisted too.
   * They share one code (TW_ETIMEDOUT == UV_ETIMEDOUT): the type tells
   * them apart. A socket's ETIMEDOUT (tw_failure_from_code) is the
   * builtin; a Deferred's timeout is defer.TimeoutError. */
  tw_clock *clock = tw_clock_new_manual();
  tw_deferred *d = tw_deferred_new(NULL, NULL);
  tw_failure *os = tw_failure_from_code(UV_ETIMEDOUT);
  tw_result r;
  cr_assert(tw_failure_check(os, &TW_OS_TIMEOUT_ERROR));
  cr_assert(tw_failure_check(os, &TW_OS_ERROR));
  cr_assert_null(tw_failure_check(os, &TW_TIMEOUT_ERROR));
  cr_assert_eq(tw_deferred_add_timeout(d, clock, 1, NULL, NULL), 0);
  cr_assert_eq(tw_clock_advance(clock, 1), 1);
  cr_assert_eq(tw_deferred_take_result(d, &r), 0);
  cr_assert_eq(r.kind, TW_RESULT_FAILURE);
  cr_assert_eq(tw_failure_type(r.u.failure), &TW_TIMEOUT_ERROR);
  cr_assert_null(tw_failure_check(r.u.failure, &TW_OS_ERROR));
  /* ... and the codes compare equal. */
  cr_assert_eq(tw_failure_code(r.u.failure), tw_failure_code(os));
  cr_assert_eq(tw_failure_code(r.u.failure), UV_ETIMEDOUT);
  tw_result_release(r);
  tw_failure_unref(os);
  tw_deferred_unref(d);
  tw_clock_free(clock);
}

/* A cancelled Deferred's CancelledError carries libuv's ECANCELED, and that
 * code maps back to CancelledError: one code, one type. */
TWT_TEST(failure, cancelled_deferred_carries_libuvs_ecanceled) {
  tw_deferred *d = tw_deferred_new(NULL, NULL);
  tw_failure *f = tw_failure_from_code(UV_ECANCELED);
  tw_result r;
  cr_assert_eq(tw_failure_type(f), &TW_CANCELLED_ERROR);
  cr_assert_eq(tw_deferred_cancel(d), 0);
  cr_assert_eq(tw_deferred_take_result(d, &r), 0);
  cr_assert_eq(r.kind, TW_RESULT_FAILURE);
  cr_assert_eq(tw_failure_type(r.u.failure), &TW_CANCELLED_ERROR);
  cr_assert_eq(tw_failure_code(r.u.failure), UV_ECANCELED);
  tw_result_release(r);
  tw_failure_unref(f);
  tw_deferred_unref(d);
}

TWT_TEST(failure, uv_error_carries_the_libuv_code) {
  tw_failure *f = tw_failure_from_code(UV_ECONNREFUSED);
  cr_assert(tw_failure_check(f, &TW_OS_ERROR));
  cr_assert_eq(tw_failure_code(f), UV_ECONNREFUSED);
  cr_assert_str_eq(tw_failure_message(f), uv_strerror(UV_ECONNREFUSED));
  tw_failure_unref(f);
}

TWT_TEST(failure, first_error_wraps_the_sub_failure_and_index) {
  /* Twisted FirstError(subFailure, index) as made by DeferredList. */
  tw_failure *sub = tw_failure_new(&MY_ERROR, 5, "inner");
  tw_failure *f = tw_failure_first_error(sub, 1);
  cr_assert(tw_failure_check(f, &TW_FIRST_ERROR));
  cr_assert_null(tw_failure_check(f, &MY_ERROR));
  cr_assert_eq(tw_failure_index(f), 1);
  cr_assert_eq(tw_failure_cause_count(f), 1);
  cr_assert_eq(tw_failure_cause(f, 0), sub);
  cr_assert_eq(tw_failure_code(f), 5);
  cr_assert_str_eq(tw_failure_message(f),
                   "FirstError[#1, test.MyError: inner]");
  tw_failure_unref(f); /* releases sub too: ownership was taken */
}

TWT_TEST(failure, first_error_with_null_sub_is_a_value_error) {
  tw_failure *f = tw_failure_first_error(NULL, 0);
  cr_assert(tw_failure_check(f, &TW_VALUE_ERROR));
  tw_failure_unref(f);
}

TWT_TEST(failure, first_error_releases_sub_when_out_of_memory) {
  tw_failure *sub = tw_failure_new(&MY_ERROR, 0, "inner");
  tw_failure *f;
  twt_alloc_fail_nth(1);
  f = tw_failure_first_error(sub, 0);
  cr_assert(tw_failure_check(f, &TW_MEMORY_ERROR));
  cr_assert_eq(twt_alloc_live(), 0);
}

TWT_TEST(failure, failure_group_holds_failures_in_order) {
  tw_failure *fs[3];
  tw_failure *g;
  fs[0] = tw_failure_new(&MY_ERROR, 0, "zero");
  fs[1] = NULL;
  fs[2] = tw_failure_new(&TW_CANCELLED_ERROR, 0, "two");
  g = tw_failure_group(fs, 3);
  cr_assert(tw_failure_check(g, &TW_FAILURE_GROUP));
  cr_assert_eq(tw_failure_cause_count(g), 2);
  cr_assert_eq(tw_failure_cause(g, 0), fs[0]);
  cr_assert_eq(tw_failure_cause(g, 1), fs[2]);
  cr_assert_null(tw_failure_cause(g, 2));
  tw_failure_unref(g);
}

TWT_TEST(failure, empty_failure_group) {
  tw_failure *g = tw_failure_group(NULL, 0);
  cr_assert_eq(tw_failure_cause_count(g), 0);
  tw_failure_unref(g);
}

TWT_TEST(failure, format_writes_like_snprintf) {
  char buf[256], small[8];
  tw_failure *sub = tw_failure_new(&MY_ERROR, 0, "inner");
  tw_failure *f = tw_failure_first_error(sub, 2);
  size_t n = tw_failure_format(f, buf, sizeof(buf));
  cr_assert_eq(n, strlen(buf));
  cr_assert(strstr(buf, "FirstError: ") == buf, "%s", buf);
  cr_assert(strstr(buf, "[#2] test.MyError: inner") != NULL, "%s", buf);
  cr_assert_eq(tw_failure_format(f, small, sizeof(small)), n);
  cr_assert_eq(strlen(small), sizeof(small) - 1);
  cr_assert_eq(tw_failure_format(f, NULL, 0), n);
  cr_assert_eq(tw_failure_format(NULL, buf, sizeof(buf)), strlen(buf));
  tw_failure_unref(f);
}

static void *share_failure(void *arg) { return arg; }

static void ref_unref_many(void *arg) {
  int i;
  for (i = 0; i < 100000; i++) {
    tw_failure_ref(arg);
    tw_failure_unref(arg);
  }
}

TWT_TEST(failure, refcount_is_thread_safe) {
  tw_failure *f = share_failure(tw_failure_new(&MY_ERROR, 0, "shared"));
  uv_thread_t t[4];
  int i;
  for (i = 0; i < 4; i++) cr_assert_eq(uv_thread_create(&t[i], ref_unref_many, f), 0);
  for (i = 0; i < 4; i++) uv_thread_join(&t[i]);
  cr_assert_eq(twt_alloc_live(), 1);
  tw_failure_unref(f);
}

static tw_failure *make_failure(const char *fmt, ...) {
  va_list ap;
  tw_failure *f;
  va_start(ap, fmt);
  f = tw_failure_newv(&TW_VALUE_ERROR, TW_EINVAL, fmt, ap);
  va_end(ap);
  return f;
}

TWT_TEST(failure, newv_formats_from_a_va_list) {
  tw_failure *f = make_failure("%s %d", "bad value", 7);
  cr_assert_not_null(f);
  cr_assert(tw_failure_check(f, &TW_VALUE_ERROR));
  cr_assert_eq(tw_failure_code(f), TW_EINVAL);
  cr_assert_str_eq(tw_failure_message(f), "bad value 7");
  tw_failure_unref(f);
}
