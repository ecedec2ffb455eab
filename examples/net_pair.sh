#!/bin/sh
# Run a server example on a free port and a client example against it.
# usage: net_pair.sh SERVER CLIENT EXPECTED_CLIENT_LINE...
# The server gets "tcp:0:interface=127.0.0.1" (a free port, loopback only;
# or $NET_PAIR_LISTEN: the UDP pair passes "127.0.0.1:0"), prints
# "listening on HOST:PORT" (read through a
# fifo: no sleeps), the client connects to 127.0.0.1:PORT; every expected
# line must be in the client's output; then SIGTERM stops the server, which
# must exit 0.
set -u
server=$1
client=$2
shift 2
work=$(mktemp -d "${TMPDIR:-/tmp}/twuv-net.XXXXXX") || exit 1
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
mkfifo "$work/out"
"$server" "${NET_PAIR_LISTEN:-tcp:0:interface=127.0.0.1}" >"$work/out" &
pid=$!
exec 3<"$work/out"
if ! read -r line <&3; then
  echo "the server printed nothing"
  exit 1
fi
echo "server: $line"
port=${line##*:}
"$client" 127.0.0.1 "$port" >"$work/client.out" 2>&1
code=$?
cat "$work/client.out"
if [ $code -ne 0 ]; then
  echo "client exit $code"
  exit 1
fi
for want in "$@"; do
  if ! grep -qxF "$want" "$work/client.out"; then
    echo "MISSING: $want"
    exit 1
  fi
done
kill -TERM "$pid"
wait "$pid"
scode=$?
pid=
cat <&3
if [ $scode -ne 0 ]; then
  echo "server exit $scode"
  exit 1
fi
echo "ok"
