#!/bin/sh
# Run a ported example and its Twisted original on the same arguments and
# compare what they print and their exit codes: Twisted is the oracle.
# usage: compare_with_twisted.sh C_PROGRAM PYTHON_PROGRAM
# Exit 77 (skipped) when Debian's python3 has no Twisted.
set -u
c_prog=$1
py_prog=$2
py=/usr/bin/python3
"$py" -c 'import twisted' 2>/dev/null || { echo "python3-twisted missing: skipped"; exit 77; }
work=$(mktemp -d "${TMPDIR:-/tmp}/twuv-compare.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
printf 'hello\n' >"$work/a.txt"
: >"$work/empty"
head -c 70000 "$c_prog" >"$work/big.bin"
mkdir "$work/dir"
set -- "$work/a.txt" "$work/missing" "$work/empty" "$work/big.bin" "$work/dir"
i=0
while [ $i -lt 70 ]; do # more files than any fixed-size array would hold
  set -- "$@" "$work/a.txt"
  i=$((i + 1))
done
"$c_prog" "$@" >"$work/c.out" 2>"$work/c.err"
c_code=$?
"$py" "$py_prog" "$@" >"$work/py.out" 2>"$work/py.err"
py_code=$?
echo "twuv exit $c_code, Twisted exit $py_code"
head -n 5 "$work/c.out"
if [ "$c_code" -ne "$py_code" ] || ! cmp -s "$work/c.out" "$work/py.out"; then
  echo "MISMATCH: Twisted printed:"
  cat "$work/py.out" "$work/py.err"
  echo "twuv stderr:"
  cat "$work/c.err"
  exit 1
fi
echo "same output as Twisted 22.4"
