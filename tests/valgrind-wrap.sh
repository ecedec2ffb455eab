#!/bin/sh
# valgrind wrapper for `meson test --setup valgrind`. Criterion forks and
# execs its workers, and neither a worker's valgrind errors nor its leaks
# change the runner's exit status, so run with --trace-children=yes, keep one
# log per process, and fail when any log reports an error or a definite leak.
valgrind=$1
shift
logdir=$(mktemp -d "${TMPDIR:-/tmp}/twuv-vg.XXXXXX") || exit 99
"$valgrind" --trace-children=yes --child-silent-after-fork=no \
  --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite \
  --track-origins=no --error-exitcode=97 \
  --log-file="$logdir/vg.%p.log" "$@"
status=$?
bad=0
for f in "$logdir"/vg.*.log; do
  [ -s "$f" ] || continue
  if grep -Eq 'ERROR SUMMARY: [1-9]|definitely lost: [1-9]' "$f"; then
    echo "valgrind reported problems in $f:" >&2
    cat "$f" >&2
    bad=1
  fi
done
rm -rf "$logdir"
[ $bad -eq 0 ] || exit 1
exit $status
