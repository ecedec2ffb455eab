#!/bin/sh
# Build a tiny parent project whose subprojects/twuv is this source tree, with
# `dependency('twuv')` resolved by meson.override_dependency, then run it.
# usage: run.sh SOURCE_ROOT WORKDIR
set -eu
src=$1
work=$2
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work"
mkdir -p "$work/proj/subprojects"
cp "$here/meson.build" "$here/main.c" "$work/proj/"
# A copy, not a symlink: meson refuses subprojects that resolve outside the
# parent's tree. Only what a subproject build reads is copied.
mkdir -p "$work/proj/subprojects/twuv"
cp -R "$src/include" "$src/lib" "$src/meson.build" "$src/meson_options.txt" \
  "$work/proj/subprojects/twuv/"
meson setup --force-fallback-for=twuv "$work/build" "$work/proj" >"$work/setup.log" 2>&1 ||
  { cat "$work/setup.log" >&2; exit 1; }
grep -E 'Dependency twuv' "$work/setup.log" || true
meson compile -C "$work/build" >"$work/compile.log" 2>&1 ||
  { cat "$work/compile.log" >&2; exit 1; }
"$work/build/consumer"
