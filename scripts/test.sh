#!/bin/sh
# The whole test suite, as CI runs it (.ci/run calls this):
#   gcc build (-Werror, freed-Deferred quarantine on): unit, stress, example
#     and consumer tests
#   clang release build (-Werror, quarantine off): unit and example tests
#   ASan+UBSan build (halt_on_error=1, quarantine off: ASan itself sees a
#     use of a freed Deferred on the release path): unit and stress tests
#   TSan build (quarantine off: the release path of boxed Deferreds): the
#     thread stress executables (Criterion cannot run under TSan)
# Thread checks are in every build.
#   valgrind: the unit suites and stress executables of the gcc build
# and ends with one line: N passed, N failed. A configuration that fails to
# set up or build counts as a failure in that line.
# Build trees go to $TWUV_BUILD_ROOT (default: build-ci/).
set -u
cd "$(dirname "$0")/.." || exit 1
. ./scripts/deps.sh
twuv_ensure_deps || exit 1

root=${TWUV_BUILD_ROOT:-build-ci}
mkdir -p "$root"
logs=""
status=0

setup() { # setup DIR [meson options...]
  dir=$1
  shift
  if [ -f "$root/$dir/build.ninja" ]; then
    meson setup --reconfigure "$root/$dir" "$@" >"$root/$dir.setup.log" 2>&1
  else
    meson setup "$root/$dir" "$@" >"$root/$dir.setup.log" 2>&1
  fi || { cat "$root/$dir.setup.log"; echo "setup of $dir failed"; status=1
          logs="$logs setup-of-$dir=$root/$dir.setup-failed"; return 1; }
  echo "== building $dir"
  ninja -C "$root/$dir" >"$root/$dir.build.log" 2>&1 ||
    { tail -n 60 "$root/$dir.build.log"; echo "build of $dir failed"; status=1
      logs="$logs build-of-$dir=$root/$dir.build-failed"; return 1; }
}

runtests() { # runtests LABEL DIR LOGNAME [meson test options...]
  label=$1
  dir=$2
  log=$3
  shift 3
  echo "== testing $label"
  rm -f "$root/$dir/meson-logs/$log"
  if meson test -C "$root/$dir" --no-rebuild --print-errorlogs "$@" >"$root/$label.test.log" 2>&1; then
    # "No tests defined" leaves no log: nothing to count, nothing failed.
    [ -f "$root/$dir/meson-logs/$log" ] || { echo "   (no tests in $label)"; return 0; }
  else
    grep -E '^ *[0-9]+/[0-9]+ ' "$root/$label.test.log" | grep -vE ' (OK|SKIP) ' | head -n 40
    status=1
  fi
  logs="$logs $label=$root/$dir/meson-logs/$log"
}

if setup gcc -Dwerror=true -Ddebug_deferreds=true -Dtests=enabled; then
  runtests gcc gcc testlog.json --suite unit --suite stress --suite examples --suite consumer
  runtests valgrind gcc testlog-valgrind.json --setup valgrind --suite unit --suite stress \
    --num-processes 2
fi
if CC=clang setup clang -Dwerror=true -Ddebug_deferreds=false -Dbuildtype=release \
     -Dtests=enabled -Dconsumer_tests=false; then
  runtests clang clang testlog.json --suite unit --suite examples --suite consumer
fi
if setup asan -Dwerror=true -Ddebug_deferreds=false -Dtests=enabled -Dconsumer_tests=false \
     -Db_sanitize=address,undefined -Db_lundef=false -Dbenchmarks=false; then
  runtests asan+ubsan asan testlog.json --suite unit --suite stress
fi
if setup tsan -Dwerror=true -Ddebug_deferreds=false -Dtests=enabled -Dconsumer_tests=false \
     -Db_sanitize=thread -Db_lundef=false -Dbenchmarks=false -Dexamples=false; then
  runtests tsan tsan testlog.json --suite stress
fi

# shellcheck disable=SC2086
python3 scripts/summarize.py $logs || status=1
exit $status
