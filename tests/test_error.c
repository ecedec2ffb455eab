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

TWT_TEST(error, every_code_has_a_name_and_a_message) {
  size_t i;
  for (i = 0; i < sizeof(all_codes) / sizeof(all_codes[0]); i++) {
    int c = all_codes[i];
    cr_assert(strncmp(tw_err_name(c), "TW_E", 4) == 0, "code %d", c);
    cr_assert_str_neq(tw_strerror(c), "unknown error", "code %d", c);
    cr_assert(tw_is_tw_error(c));
  }
}

TWT_TEST(error, names_are_the_macro_names) {
  cr_assert_str_eq(tw_err_name(TW_EINVAL), "TW_EINVAL");
  cr_assert_str_eq(tw_err_name(TW_EALREADYQUIT), "TW_EALREADYQUIT");
  cr_assert_str_eq(tw_err_name(TW_EWRONGTHREAD), "TW_EWRONGTHREAD");
  cr_assert_str_eq(tw_strerror(TW_EALREADYCALLED), "already called");
}

TWT_TEST(error, codes_are_distinct_and_in_the_reserved_range) {
  size_t i, j, n = sizeof(all_codes) / sizeof(all_codes[0]);
  for (i = 0; i < n; i++) {
    cr_assert(all_codes[i] <= -7001 && all_codes[i] >= -7099);
    for (j = i + 1; j < n; j++) cr_assert_neq(all_codes[i], all_codes[j]);
  }
}

TWT_TEST(error, range_is_disjoint_from_libuv) {
  /* libuv names every code it defines; none of ours is one of them. */
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
  static const int unknown[] = {1, 42, -7000, -7098, -7100, -99999, 123456,
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
