/*
 * lib/defer-result.c - results carrying a string (defer.h): tw_result_strdup,
 * tw_result_printf, tw_result_vprintf.
 */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* The destructor a string result carries: the memory came from the hook. */
static void tw__result_string_free(void *p) { tw__free(p); }

static tw_result tw__result_string(char *copy) {
  if (copy == NULL) return tw_result_failure(tw_failure_from_code(TW_ENOMEM));
  return tw_result_value(copy, tw__result_string_free);
}

tw_result tw_result_strdup(const char *s) {
  size_t n;
  char *copy;
  if (s == NULL)
    return tw_result_failure(tw_failure_new(&TW_VALUE_ERROR, TW_EINVAL,
                                            "tw_result_strdup(NULL)"));
  n = strlen(s) + 1;
  copy = tw__malloc(n);
  if (copy != NULL) memcpy(copy, s, n);
  return tw__result_string(copy);
}

tw_result tw_result_vprintf(const char *fmt, va_list ap) {
  va_list ap2;
  char *copy;
  int n;
  if (fmt == NULL)
    return tw_result_failure(tw_failure_new(&TW_VALUE_ERROR, TW_EINVAL,
                                            "tw_result_printf(NULL)"));
  va_copy(ap2, ap);
  n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0)
    return tw_result_failure(tw_failure_new(&TW_VALUE_ERROR, TW_EINVAL,
                                            "tw_result_printf: bad format"));
  copy = tw__malloc((size_t)n + 1);
  if (copy != NULL) vsnprintf(copy, (size_t)n + 1, fmt, ap);
  return tw__result_string(copy);
}

tw_result tw_result_printf(const char *fmt, ...) {
  tw_result r;
  va_list ap;
  va_start(ap, fmt);
  r = tw_result_vprintf(fmt, ap);
  va_end(ap);
  return r;
}
