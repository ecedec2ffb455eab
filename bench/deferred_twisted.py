"""
Twisted 22.4 doing bench/deferred.c's work: create a Deferred, add 10
pass-through callbacks, fire it, drop it; N times. Run with Debian's
/usr/bin/python3 (python3-twisted). Prints one line:

    twisted <version> ns_per_deferred <float>
"""
import sys
import time

import twisted
from twisted.internet.defer import Deferred


def passthrough(result):
    return result


def run(n):
    for _ in range(n):
        d = Deferred()
        for _ in range(10):
            d.addCallback(passthrough)
        d.callback(None)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200000
    run(min(n, 10000))  # warm up
    best = None
    for _ in range(5):
        start = time.perf_counter()
        run(n)
        elapsed = time.perf_counter() - start
        best = elapsed if best is None or elapsed < best else best
    print("twisted %s ns_per_deferred %.1f" % (twisted.__version__, best * 1e9 / n))


if __name__ == "__main__":
    main()
