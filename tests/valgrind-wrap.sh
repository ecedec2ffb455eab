#!/bin/sh
# valgrind wrapper for `meson test --setup valgrind`. Criterion forks and
# execs its workers, and neither a worker's valgrind errors nor its leaks
# change the runner's exit status, so run with --trace-children=yes, keep one
# log per process, and fail when any log reports an error or a definite leak.
#
# It also says why whenever the runner exits non-zero, because Criterion
# 2.4.1 can exit 1 with every TAP line `ok`:
#   - a worker that dies before its test starts (after BoxFort started it,
#     before the test's setup phase) is counted as a failed, crashed test
#     but left out of the TAP output and of its plan (`1..89` of 90 tests);
#   - a worker that dies after its test ended (or in .init/.fini) is only a
#     warning, and any warning makes the runner exit 1;
#   - Criterion turns valgrind's error reporting off in a worker until the
#     test starts, so a crash there is no valgrind error, and its message
#     ("Warning! The test `s::t` crashed during its setup or teardown.") goes
#     to stderr, which `--tap=-` silences (tests/meson.build uses
#     --tap=/dev/stdout for that reason).
# So: every process that died of a signal or was killed is shown, tests that
# never ran are named, and the exit status is explained.
valgrind=$1
shift
exe=$1
logdir=$(mktemp -d "${TMPDIR:-/tmp}/twuv-vg.XXXXXX") || exit 99
mkdir "$logdir/done" || exit 99

# valgrind names each log by PID and truncates an existing one. PIDs wrap
# (pid_max is 32768 here; on this machine a busy 8-minute run went through
# all of them), so a later worker could reuse an earlier one's PID and wipe
# its log, errors included. A finished log (its last line is valgrind's
# ERROR SUMMARY) is moved aside at once, to a name of its own.
collect() {
  n=0
  while :; do
    [ -e "$logdir/stop" ] && last=1 || last=0
    for f in "$logdir"/vg.*.log; do
      [ -f "$f" ] || continue
      if tail -n 1 "$f" | grep -q 'ERROR SUMMARY:'; then
        n=$((n + 1))
        mv "$f" "$logdir/done/${f##*/}.$n"
      fi
    done
    [ $last -eq 1 ] && return
    sleep 1
  done
}
collect &
collector=$!

# Criterion writes its TAP report at the end of the run: holding stdout in a
# file until then delays nothing, and lets us compare it with the test list.
"$valgrind" --trace-children=yes --child-silent-after-fork=no \
  --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite \
  --track-origins=no --error-exitcode=97 \
  --log-file="$logdir/vg.%p.log" "$@" >"$logdir/stdout"
status=$?
: >"$logdir/stop"
wait $collector
cat "$logdir/stdout"
bad=0
died=0
# A test that kills child processes on purpose (tests/test_process.c: its
# helper, killed by signals) names their executables' basenames in
# TWUV_VG_MAY_DIE: their dying of a signal, or being killed, is expected
# (their errors and leaks still count).
may_die() {
  [ -n "${TWUV_VG_MAY_DIE:-}" ] || return 1
  cmd=$(sed -n 's/^==[0-9]*== Command: \([^ ]*\).*/\1/p' "$1" | head -n 1)
  for name in $TWUV_VG_MAY_DIE; do
    [ "${cmd##*/}" = "$name" ] && return 0
  done
  return 1
}
for f in "$logdir"/done/vg.* "$logdir"/vg.*.log; do
  [ -s "$f" ] || continue
  if grep -Eq 'ERROR SUMMARY: [1-9]|definitely lost: [1-9]' "$f"; then
    echo "valgrind-wrap: valgrind reported problems in $f:" >&2
    cat "$f" >&2
    bad=1
  elif may_die "$f"; then
    :
  elif grep -q 'Process terminating with default action of signal' "$f"; then
    echo "valgrind-wrap: a process died of a signal ($f):" >&2
    cat "$f" >&2
    died=1
  elif ! grep -q 'ERROR SUMMARY:' "$f"; then
    # valgrind writes the summary at every exit it sees; none means SIGKILL
    # (or valgrind itself failing).
    echo "valgrind-wrap: $f ends without valgrind's summary: the process was killed (SIGKILL?) or valgrind failed:" >&2
    tail -n 40 "$f" >&2
    died=1
  fi
done

# Criterion runners only (TAP on stdout): tests that never ran. `--list`
# names every test, filtered or not (filtered ones appear as SKIP lines).
missing=
if grep -q '^TAP version' "$logdir/stdout" && "$exe" --list >"$logdir/list" 2>&1; then
  awk '/^[^ ]+: [0-9]+ tests?$/ { sub(":", "", $1); s = $1; next }
       s != "" && NF >= 2 { print s "::" $2 }' "$logdir/list" | sort >"$logdir/expected"
  sed -n 's/^\(not \)\{0,1\}ok - \([^ ]*\).*/\2/p' "$logdir/stdout" | sort >"$logdir/ran"
  missing=$(comm -23 "$logdir/expected" "$logdir/ran")
  if [ -n "$missing" ]; then
    echo "valgrind-wrap: these tests never ran (their worker died before the test started; Criterion counts each as a failed, crashed test but leaves it out of the TAP output):" >&2
    echo "$missing" | sed 's/^/    /' >&2
  fi
fi
rm -rf "$logdir"

if [ $status -ne 0 ]; then
  case $status in
    97) why="valgrind found errors in the runner process itself (see above)" ;;
    1) why="Criterion: a test failed, a test never ran, a worker died outside its test body (a warning), or a test logged a warning or error; see Criterion's [----] lines on stderr and the reports above" ;;
    *) if [ $status -gt 128 ]; then
         why="the runner died of signal $((status - 128))"
       else
         why="unexpected status"
       fi ;;
  esac
  echo "valgrind-wrap: $exe exited with status $status: $why" >&2
fi
if [ $bad -ne 0 ]; then
  echo "valgrind-wrap: failing the test: valgrind reported errors or definite leaks" >&2
  exit 1
fi
# A process that died or a test that never ran fails the run even if
# Criterion did not notice.
if [ $status -eq 0 ] && { [ $died -ne 0 ] || [ -n "$missing" ]; }; then
  echo "valgrind-wrap: failing the test: a process died of a signal or was killed" >&2
  exit 1
fi
exit $status
