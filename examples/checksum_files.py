"""checksum_files.py - a script-sized Twisted program, ported line by line
to examples/checksum_files.c (docs/porting.md, "A worked port").

Checksums files on the reactor's thread pool, two at a time, and prints one
line per file in argument order; a file that cannot be read prints its
OSError subclass. Exit code 2 when a file was missing (SystemExit), else 0.
"""
import sys

from twisted.internet import defer, task, threads


def fnv1a(path):
    # Runs on a pool thread.
    h = 0x811C9DC5
    with open(path, "rb") as f:
        for byte in f.read():
            h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h


def describe(failure):
    failure.trap(OSError)
    return type(failure.value).__name__


def main(reactor, *paths):
    sem = defer.DeferredSemaphore(2)
    ds = []
    for path in paths:
        d = sem.run(threads.deferToThread, fnv1a, path)
        d.addCallback(lambda h: "%08x" % h)
        d.addErrback(describe)
        ds.append(d)

    def show(texts):
        for path, text in zip(paths, texts):
            print(f"{path}: {text}")
        if "FileNotFoundError" in texts:
            raise SystemExit(2)

    return defer.gatherResults(ds).addCallback(show)


task.react(main, sys.argv[1:])
