#!/bin/sh
# Every public header must compile alone under strict ISO C11 with all
# warnings as errors, and must not need <uv.h>: a poisoned uv.h placed first
# on the include path makes any #include <uv.h> fail.
# usage: check-headers.sh INCLUDE_DIR CC [CC ARGS...] (e.g. ccache gcc)
set -u
incdir=$1
shift
[ $# -gt 0 ] || set -- cc
tmp=$(mktemp -d "${TMPDIR:-/tmp}/twuv-hdr.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/poison/uv"
echo '#error "twuv public headers must not include <uv.h>"' > "$tmp/poison/uv.h"
fail=0
n=0
for h in "$incdir"/twuv.h "$incdir"/twuv/*.h; do
  rel=${h#"$incdir"/}
  printf '#include <%s>\n#include <%s>\nint main(void) { return 0; }\n' "$rel" "$rel" > "$tmp/t.c"
  for std in c11 c17; do
    n=$((n + 1))
    if ! "$@" -std=$std -pedantic -Wall -Wextra -Werror -I"$tmp/poison" -I"$incdir" \
         -fsyntax-only "$tmp/t.c" 2> "$tmp/err"; then
      echo "FAIL: $rel does not compile alone with -std=$std -pedantic:" >&2
      cat "$tmp/err" >&2
      fail=1
    fi
  done
done
echo "checked $n header/standard combinations"
exit $fail
