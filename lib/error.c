/*
 * lib/error.c - tw_strerror and tw_err_name (error.h). Own codes are named
 * here; libuv names every other code, the shared TW_E* codes included.
 */
#include "internal.h"

#include <string.h>
#include <uv.h>

/*
 * One code per meaning (error.h): the shared TW_E* codes are libuv's. Checked
 * here, where both headers are visible, so error.h need not include uv.h.
 */
#define TW__SAME(tw, uv) \
  _Static_assert((int)(tw) == (int)(uv), #tw " is libuv's " #uv)
TW__SAME(TW_EINVAL, UV_EINVAL);
TW__SAME(TW_ENOMEM, UV_ENOMEM);
TW__SAME(TW_ETIMEDOUT, UV_ETIMEDOUT);
TW__SAME(TW_ECANCELLED, UV_ECANCELED);
TW__SAME(TW_EBUSY, UV_EBUSY);
TW__SAME(TW_ENOTSUP, UV_ENOTSUP);
TW__SAME(TW_ENOTCONN, UV_ENOTCONN);
TW__SAME(TW_ESRCH, UV_ESRCH);
#undef TW__SAME
/* ... and every own code is in the range libuv never uses. */
#define TW__OWN_IN_RANGE(name, value, msg)                          \
  _Static_assert(TW_##name <= TW__ERRNO_FIRST &&                    \
                     TW_##name >= TW__ERRNO_LAST,                   \
                 "TW_" #name " is in twuv's range");
TW_ERRNO_OWN_MAP(TW__OWN_IN_RANGE)
#undef TW__OWN_IN_RANGE

int tw_is_tw_error(int err) {
  switch (err) {
#define TW__IS_CASE(name, value, msg) case TW_##name:
    TW_ERRNO_OWN_MAP(TW__IS_CASE)
#undef TW__IS_CASE
    return 1;
    default:
      return 0;
  }
}

/* Within the range reserved for twuv, assigned or not. */
static int tw__in_tw_range(int err) {
  return err <= TW__ERRNO_FIRST && err >= TW__ERRNO_LAST;
}

/*
 * libuv's uv_strerror/uv_err_name allocate (and leak) a string for codes
 * they do not know. uv_err_name_r never allocates, so use it to ask whether
 * libuv knows the code before asking for the static string.
 */
static int tw__uv_knows(int err) {
  char buf[64];
  static const char unknown[] = "Unknown system error";
  uv_err_name_r(err, buf, sizeof(buf));
  return strncmp(buf, unknown, sizeof(unknown) - 1) != 0;
}

const char *tw_strerror(int err) {
  switch (err) {
    case 0:
      return "success";
#define TW__STRERROR_CASE(name, value, msg) \
  case TW_##name:                           \
    return msg;
      TW_ERRNO_OWN_MAP(TW__STRERROR_CASE)
#undef TW__STRERROR_CASE
    default:
      break;
  }
  if (err < 0 && !tw__in_tw_range(err) && tw__uv_knows(err))
    return uv_strerror(err);
  return "unknown error";
}

const char *tw_err_name(int err) {
  switch (err) {
    case 0:
      return "OK";
#define TW__ERRNAME_CASE(name, value, msg) \
  case TW_##name:                          \
    return "TW_" #name;
      TW_ERRNO_OWN_MAP(TW__ERRNAME_CASE)
#undef TW__ERRNAME_CASE
    default:
      break;
  }
  if (err < 0 && !tw__in_tw_range(err) && tw__uv_knows(err))
    return uv_err_name(err);
  return "UNKNOWN";
}
