#!/bin/sh
# Set everything up on a fresh Debian 12 machine and run the demo: install
# what is missing, build twuv, then run the examples ported from Twisted's
# "Using Threads in Twisted" howto and its docs/core/examples (echo and
# simple servers, each started on a free port and talked to by its client),
# showing their output.
set -eu
cd "$(dirname "$0")/.."
. ./scripts/deps.sh
twuv_ensure_deps
build=${TWUV_BUILD_DIR:-build}
[ -f "$build/build.ninja" ] || meson setup "$build" >/dev/null
ninja -C "$build" >/dev/null
meson test -C "$build" --no-rebuild --suite examples --verbose
# UDP (issue 16): the examples suite above includes the UDP echo pair,
# echoserv_udp on 127.0.0.1 port 0 and echoclient_udp connected to it
# (Twisted's echoserv_udp.py / echoclient_udp.py).
