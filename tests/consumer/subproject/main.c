/* Built by a parent meson project that uses twuv as a subproject. */
#include <stdio.h>
#include <twuv.h>

int main(void) {
  if (tw_version() != TW_VERSION_HEX) return 1;
  printf("twuv %s as a meson subproject: ok\n", tw_version_string());
  return 0;
}
