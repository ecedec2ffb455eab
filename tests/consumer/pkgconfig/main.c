/* A consumer built against the installed twuv through pkg-config, with
 * strict C11: proves the installed headers and library work together. */
/* libuv 1.44's uv.h needs POSIX types that strict -std=c11 hides
 * (pthread_rwlock_t); twuv's own headers do not include it. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>
#include <twuv.h>
#include <uv.h> /* twuv.pc Requires libuv: its flags come along */

int main(void) {
  tw_failure *f;
  if (tw_version() != TW_VERSION_HEX) {
    fprintf(stderr, "header/library mismatch: %x vs %x\n", tw_version(),
            (unsigned)TW_VERSION_HEX);
    return 1;
  }
  f = tw_failure_from_code(TW_ECANCELLED);
  if (!tw_failure_check(f, &TW_CANCELLED_ERROR)) return 1;
  tw_failure_unref(f);
  if (strcmp(tw_err_name(TW_EALREADYCALLED), "TW_EALREADYCALLED") != 0)
    return 1;
  /* One code per meaning: twuv's shared codes are libuv's. */
  if ((int)TW_ETIMEDOUT != (int)UV_ETIMEDOUT || strcmp(tw_err_name(TW_EINVAL), "EINVAL"))
    return 1;
  /* A consumer calling uv_* links with `pkg-config --libs twuv` alone. */
  if (tw_reactor_loop(NULL) != NULL || uv_version() == 0) return 1;
  printf("twuv %s (libuv %s) via pkg-config: ok\n", tw_version_string(),
         uv_version_string());
  return 0;
}
