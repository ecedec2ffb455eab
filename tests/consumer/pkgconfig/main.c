/* A consumer built against the installed twuv through pkg-config, with
 * strict C11: proves the installed headers and library work together. */
#include <stdio.h>
#include <string.h>
#include <twuv.h>

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
  if (strcmp(tw_err_name(TW_EINVAL), "TW_EINVAL") != 0) return 1;
  printf("twuv %s via pkg-config: ok\n", tw_version_string());
  return 0;
}
