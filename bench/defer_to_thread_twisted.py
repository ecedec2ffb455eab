"""The work of bench/defer_to_thread.c in Twisted, for the ratio.

usage: defer_to_thread_twisted.py POOL_SIZE JOBS ROUND_TRIPS
prints: twisted VERSION burst_ns_per_job N p50_us N p99_us N
"""
import sys
import time

from twisted import __version__
from twisted.internet import reactor, threads


def noop():
    return None


def main():
    size, jobs, trips = (int(a) for a in sys.argv[1:4])
    reactor.suggestThreadPoolSize(size)
    out = {}

    def burst():
        left = [jobs]
        start = time.perf_counter()

        def done(_):
            left[0] -= 1
            if left[0] == 0:
                out["burst"] = (time.perf_counter() - start) * 1e9 / jobs
                latency()

        for _ in range(jobs):
            threads.deferToThread(noop).addCallback(done)

    def latency():
        samples = []

        def one(_=None, t0=None):
            if t0 is not None:
                samples.append(time.perf_counter() - t0)
            if len(samples) == trips:
                samples.sort()
                out["p50"] = samples[len(samples) // 2] * 1e6
                out["p99"] = samples[int(len(samples) * 0.99)] * 1e6
                reactor.stop()
                return
            t = time.perf_counter()
            threads.deferToThread(noop).addCallback(one, t)

        one()

    reactor.callWhenRunning(burst)
    reactor.run()
    print("twisted %s burst_ns_per_job %.1f p50_us %.2f p99_us %.2f"
          % (__version__, out["burst"], out["p50"], out["p99"]))


main()
