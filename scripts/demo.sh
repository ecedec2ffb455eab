#!/bin/sh
# Set everything up on a fresh Debian 12 machine and run the demo: install
# what is missing, build twuv, then run the examples ported from Twisted's
# "Using Threads in Twisted" howto and its docs/core/examples - echo and
# simple servers, the chat server (two users), the finger tutorial's first
# servers, the UDP echo pair, each started on a free port of 127.0.0.1 and
# talked to by its client; the process howto's listings (wc fed on its
# stdin, getProcessValue) - showing their output.
set -eu
cd "$(dirname "$0")/.."
. ./scripts/deps.sh
twuv_ensure_deps
build=${TWUV_BUILD_DIR:-build}
[ -f "$build/build.ninja" ] || meson setup "$build" >/dev/null
ninja -C "$build" >/dev/null
meson test -C "$build" --no-rebuild --suite examples --verbose
