#!/bin/sh
# Install the built library into a scratch DESTDIR, then build and run a
# program against it with nothing but pkg-config (shared, then static).
# usage: run.sh BUILD_ROOT WORKDIR CC MAIN_C
set -eu
build=$1
work=$2
cc=$3
main=$4
rm -rf "$work"
mkdir -p "$work"
meson install -C "$build" --no-rebuild --quiet --destdir "$work/dest" >/dev/null
pc=$(find "$work/dest" -name twuv.pc | head -n 1)
[ -n "$pc" ] || { echo "twuv.pc was not installed" >&2; exit 1; }
PKG_CONFIG_PATH=$(dirname "$pc")
PKG_CONFIG_SYSROOT_DIR="$work/dest"
export PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR
version=$(pkg-config --modversion twuv)
echo "pkg-config --modversion twuv: $version"
# shellcheck disable=SC2046
"$cc" -std=c11 -pedantic -Wall -Wextra -Werror -o "$work/consumer" "$main" \
  $(pkg-config --cflags --libs twuv)
# pkgconf applies the sysroot to variables too.
libdir=$(pkg-config --variable=libdir twuv)
LD_LIBRARY_PATH="$libdir" "$work/consumer"
# Static: the private requirements (libuv, pthread) must come along.
static_libs=
for w in $(pkg-config --static --libs twuv); do
  [ "$w" = -ltwuv ] || static_libs="$static_libs $w"
done
# shellcheck disable=SC2046,SC2086
"$cc" -std=c11 -pedantic -Wall -Wextra -Werror -o "$work/consumer-static" "$main" \
  $(pkg-config --cflags twuv) "$libdir/libtwuv.a" $static_libs
"$work/consumer-static"
