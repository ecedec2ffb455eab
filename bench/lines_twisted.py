"""
bench/lines_twisted.py - Twisted 22.4's LineReceiver on bench/lines'
input: 1 MiB buffers of 64-byte lines (62 bytes and "\r\n"), fed to
dataReceived, each line counted in lineReceived. Prints one line,
"<lines> <seconds>" (the thread's CPU seconds: time.thread_time(), as
the C side), for the caller (bench/lines.c) to turn into lines/s.

Usage: python3 lines_twisted.py BUFFERS [READ_SIZE]
(READ_SIZE: each buffer is given to dataReceived in reads of that many
bytes; default the whole buffer.)
"""
import sys
import time

from twisted.protocols.basic import LineReceiver


class Counter(LineReceiver):
    def __init__(self):
        self.lines = 0
        self.bytes = 0

    def lineReceived(self, line):
        self.lines += 1
        self.bytes += len(line)


def make_buffer():
    line = bytes(ord("a") + i % 26 for i in range(62)) + b"\r\n"
    return line * (1024 * 1024 // 64)


def main():
    buffers = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    buf = make_buffer()
    size = int(sys.argv[2]) if len(sys.argv) > 2 else len(buf)
    reads = [buf[i : i + size] for i in range(0, len(buf), size)]
    p = Counter()
    start = time.thread_time()
    for _ in range(buffers):
        for r in reads:
            p.dataReceived(r)
    elapsed = time.thread_time() - start
    assert p.lines == buffers * len(buf) // 64, p.lines
    print(p.lines, "%.9f" % elapsed)


if __name__ == "__main__":
    main()
