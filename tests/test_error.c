/*
 * tests/test_error.c - error codes, tw_strerror and tw_err_name (error.h).
 */
#include <string.h>
#include <uv.h>

#include "twtest.h"

TWT_SUITE(error);

static const int all_codes[] = {
#define XX(name, value, msg) TW_##name,
    TW_ERRNO_MAP(XX)
#undef XX
};

static const int own_codes[] = {
#define XX(name, value, msg) TW_##name,
    TW_ERRNO_OWN_MAP(XX)
#undef XX
};

static const struct {
  int code;
  const char *name, *msg;
} shared_codes[] = {
#define XX(name, value, msg) {TW_##name, #name, msg},
    TW_ERRNO_SHARED_MAP(XX)
#undef XX
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

TWT_TEST(error, every_own_code_has_a_name_and_a_message) {
  size_t i;
  for (i = 0; i < COUNT(own_codes); i++) {
    int c = own_codes[i];
    cr_assert(strncmp(tw_err_name(c), "TW_E", 4) == 0, "code %d", c);
    cr_assert_str_neq(tw_strerror(c), "unknown error", "code %d", c);
    cr_assert(tw_is_tw_error(c));
  }
}

TWT_TEST(error, names_are_the_macro_names) {
  cr_assert_str_eq(tw_err_name(TW_EALREADYQUIT), "TW_EALREADYQUIT");
  cr_assert_str_eq(tw_err_name(TW_EWRONGTHREAD), "TW_EWRONGTHREAD");
  cr_assert_str_eq(tw_strerror(TW_EALREADYCALLED), "already called");
}

/* One code per meaning: a shared TW_ code is libuv's code, with libuv's
 * name and message, and is not one of twuv's own. */
TWT_TEST(error, shared_codes_are_libuvs) {
  size_t i;
  cr_assert_eq(TW_EINVAL, (int)UV_EINVAL);
  cr_assert_eq(TW_ENOMEM, (int)UV_ENOMEM);
  cr_assert_eq(TW_ETIMEDOUT, (int)UV_ETIMEDOUT);
  cr_assert_eq(TW_ECANCELLED, (int)UV_ECANCELED);
  cr_assert_eq(TW_EBUSY, (int)UV_EBUSY);
  cr_assert_eq(TW_ENOTSUP, (int)UV_ENOTSUP);
  cr_assert_eq(TW_ENOTCONN, (int)UV_ENOTCONN);
  cr_assert_eq(TW_ESRCH, (int)UV_ESRCH);
  cr_assert_eq(COUNT(shared_codes), 8);
  for (i = 0; i < COUNT(shared_codes); i++) {
    int c = shared_codes[i].code;
    cr_assert_not(tw_is_tw_error(c), "%s", shared_codes[i].name);
    cr_assert_str_eq(tw_err_name(c), uv_err_name(c));
    cr_assert_str_eq(tw_strerror(c), uv_strerror(c));
    /* The table's message is libuv's too. */
    cr_assert_str_eq(tw_strerror(c), shared_codes[i].msg);
  }
  cr_assert_str_eq(tw_err_name(TW_EINVAL), "EINVAL");
  cr_assert_str_eq(tw_err_name(TW_ECANCELLED), "ECANCELED");
  cr_assert_str_eq(tw_strerror(TW_EINVAL), "invalid argument");
}

/* Codes whose errno name exists with another meaning keep twuv's value. */
TWT_TEST(error, same_name_other_meaning_stays_twuvs) {
  cr_assert_neq(TW_ENOENT, (int)UV_ENOENT);
  cr_assert_neq(TW_EOVERFLOW, (int)UV_EOVERFLOW);
  cr_assert_neq(TW_ESHUTDOWN, (int)UV_ESHUTDOWN);
  cr_assert(tw_is_tw_error(TW_ESHUTDOWN));
  cr_assert_str_eq(tw_err_name(TW_ESHUTDOWN), "TW_ESHUTDOWN");
  cr_assert_str_eq(tw_err_name(UV_ESHUTDOWN), "ESHUTDOWN");
  cr_assert(tw_is_tw_error(TW_EDEADLK));
}

TWT_TEST(error, codes_are_distinct_and_own_ones_in_the_reserved_range) {
  size_t i, j, n = COUNT(all_codes);
  for (i = 0; i < COUNT(own_codes); i++)
    cr_assert(own_codes[i] <= -7001 && own_codes[i] >= -7099);
  for (i = 0; i < n; i++)
    for (j = i + 1; j < n; j++) cr_assert_neq(all_codes[i], all_codes[j]);
}

TWT_TEST(error, range_is_disjoint_from_libuv) {
  /* libuv names every code it defines; none of our own is one of them. */
  static const int uv_codes[] = {
#define XX(name, msg) UV_##name,
      UV_ERRNO_MAP(XX)
#undef XX
  };
  size_t i;
  for (i = 0; i < sizeof(uv_codes) / sizeof(uv_codes[0]); i++) {
    cr_assert_not(tw_is_tw_error(uv_codes[i]), "%d", uv_codes[i]);
    /* libuv codes pass through: same name and message as libuv gives. */
    cr_assert_str_eq(tw_err_name(uv_codes[i]), uv_err_name(uv_codes[i]));
    cr_assert_str_eq(tw_strerror(uv_codes[i]), uv_strerror(uv_codes[i]));
  }
}

TWT_TEST(error, zero_is_success) {
  cr_assert_str_eq(tw_err_name(0), "OK");
  cr_assert_str_eq(tw_strerror(0), "success");
  cr_assert_not(tw_is_tw_error(0));
}

TWT_TEST(error, unknown_codes_get_a_safe_static_answer) {
  /* -7001 and -7012 were TW_EINVAL's and TW_ETIMEDOUT's before 0.x. */
  static const int unknown[] = {1,     42,     -7000,  -7001,      -7012,
                                -7098, -7100,  -99999, 123456,
                                -2147483647 - 1};
  size_t i;
  for (i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
    cr_assert_str_eq(tw_strerror(unknown[i]), "unknown error", "%d",
                     unknown[i]);
    cr_assert_str_eq(tw_err_name(unknown[i]), "UNKNOWN", "%d", unknown[i]);
  }
  /* Asking twice gives the same static pointer: nothing is allocated. */
  cr_assert_eq(tw_strerror(-99999), tw_strerror(-99999));
}
