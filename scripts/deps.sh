#!/bin/sh
# Install, with apt-get, whatever twuv's build, tests and demo need and this
# Debian 12 machine lacks. Sourced by demo.sh and test.sh; safe to run alone.
# Only Debian's own packages are used (CI has no other network).

# python3-twisted: the oracle (examples compared with their Twisted originals).
TWUV_PACKAGES="gcc clang libc6-dev python3 python3-twisted meson ninja-build pkg-config libuv1-dev libcriterion-dev valgrind"

twuv_missing_packages() {
  for p in $TWUV_PACKAGES; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
      printf '%s ' "$p"
  done
}

twuv_ensure_deps() {
  if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "deps: not a Debian system; install by hand: $TWUV_PACKAGES" >&2
    return 0
  fi
  missing=$(twuv_missing_packages)
  [ -n "$missing" ] || return 0
  echo "deps: installing $missing"
  sudo=
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || {
      echo "deps: missing $missing and not root (no sudo)" >&2
      return 1
    }
    sudo=sudo
  fi
  export DEBIAN_FRONTEND=noninteractive
  # shellcheck disable=SC2086
  $sudo apt-get install -y -q --no-install-recommends $missing >/dev/null 2>&1 || {
    $sudo apt-get update -q >/dev/null 2>&1 || true
    # shellcheck disable=SC2086
    $sudo apt-get install -y -q --no-install-recommends $missing
  }
}

# Run directly: just install.
case "$0" in
  *deps.sh) set -eu; twuv_ensure_deps ;;
esac
