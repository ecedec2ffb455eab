#!/usr/bin/python3
"""
tests/twisted_basic_oracle.py - twisted.protocols.basic's receivers, run by
real Twisted on the same inputs and in the same chunkings as
tests/test_basic.c's basic::differential_against_twisted.

For a fixed list of inputs (test_basic.py's) and N random ones, drawn from
the pieces each protocol's input is made of (lines, raw-mode switches,
pauses, over-long lines and partial delimiters; valid and corrupt
netstrings, lengths split anywhere, leading zeros, '\n' after the digits;
length prefixes over the limit), this feeds Twisted 22.4's own test
protocols (twisted.protocols.test.test_basic: LineTester,
FlippingLineTester, ExcessivelyLargeLineCatcher, LineOnlyTester,
TestNetstring, TestInt16) every chunking from 1 byte to the whole input,
as a transport would: each chunk to dataReceived, and no more once the
transport is disconnecting (a socket stops reading at loseConnection).
After the feed the clock is advanced by 0 (LineTester's pauses resume).

Where twuv departs from Twisted on purpose (include/twuv/basic.h), the
Twisted side is adjusted here: IntNStringReceiver, after
lengthLimitExceeded, keeps the read from the refused prefix on (Twisted
keeps all of it and delivers the strings before the prefix again).

The trace of one run is bytes: for each event a tag, the payload's length,
':' and the payload:
  R item      LineTester's received list (after the feed, then '|' and the
              list again after clock.advance(0))
  L line      a line (FlippingLineTester, ExcessivelyLargeLineCatcher,
              LineOnlyTester) or a string (TestNetstring, TestInt16)
  X data      lineLengthExceeded(data) / lengthLimitExceeded: X and the
              length in decimal
  B data      clearLineBuffer() at the end (LineReceiver kinds)
  E message   the NetstringParseError that refused the peer
  D           transport.disconnecting at the end

Output: "case <kind> <max> <hex input>", then "chunk <n> <hex trace>" for n
in 1..len(input), ...; then "end".

usage: twisted_basic_oracle.py [-n COUNT] [-s SEED] [-o FILE]
"""
import argparse
import random
import struct
import sys

from twisted.internet import task
from twisted.internet.testing import StringTransport
from twisted.protocols import basic
from twisted.protocols.test import test_basic as tb


def ev(tag, payload=b""):
    return tag + str(len(payload)).encode() + b":" + payload


class Catcher(tb.ExcessivelyLargeLineCatcher):
    def connectionMade(self):
        self.trace = []

    def lineReceived(self, line):
        self.trace.append(ev(b"L", line))

    def lineLengthExceeded(self, data):
        self.trace.append(ev(b"X", data))


class Flipper(tb.FlippingLineTester):
    pass


class Netstring(tb.TestNetstring):
    def _consumeData(self):
        try:
            return basic.NetstringReceiver._consumeData(self)
        except basic.NetstringParseError as e:
            self.error = str(e)
            raise


class Int16(tb.TestInt16):
    def connectionMade(self):
        self.trace = []

    def stringReceived(self, s):
        self.trace.append(ev(b"L", s))

    def lengthLimitExceeded(self, length):
        self.trace.append(ev(b"X", str(length).encode()))
        # Twisted keeps all of the read (_unprocessed = alldata), so the
        # strings before the refused prefix are delivered again by the next
        # read; twuv keeps from the prefix on (basic.h). Compare with that.
        self._unprocessed = self._unprocessed[self._compatibilityOffset :]
        self._compatibilityOffset = 0


def run(kind, maxlen, data, chunk):
    clock = task.Clock()
    t = StringTransport()
    if kind == "line_tester":
        p = tb.LineTester(clock)
    elif kind == "catcher":
        p = Catcher()
    elif kind == "flipper":
        p = Flipper()
    elif kind == "line_only":
        p = tb.LineOnlyTester()
    elif kind == "netstring":
        p = Netstring()
    elif kind == "int16":
        p = Int16()
    p.MAX_LENGTH = maxlen
    p.makeConnection(t)
    for i in range(0, len(data), chunk):
        if t.disconnecting:
            break
        p.dataReceived(data[i : i + chunk])
    out = []
    if kind == "line_tester":
        out += [ev(b"R", r) for r in p.received]
        clock.advance(0)
        out.append(b"|")
        out += [ev(b"R", r) for r in p.received]
    elif kind == "flipper":
        out += [ev(b"L", r) for r in p.lines]
    elif kind == "line_only":
        out += [ev(b"L", r) for r in p.received]
    elif kind == "netstring":
        out += [ev(b"L", r) for r in p.received]
        if getattr(p, "error", None):
            out.append(ev(b"E", p.error.encode()))
    else:
        out += p.trace
    if kind in ("line_tester", "catcher", "flipper"):
        out.append(ev(b"B", p.clearLineBuffer()))
    if t.disconnecting:
        out.append(b"D")
    return b"".join(out)


# ---- inputs ------------------------------------------------------------------

FIXED = [
    ("line_tester", 64, tb.LineReceiverTests.buffer),
    ("line_tester", 64, tb.LineReceiverTests.pauseBuf),
    ("line_tester", 64, tb.LineReceiverTests.rawpauseBuf),
    ("flipper", 16384, b"x\nx" * 30),
    ("catcher", 6, b"x" * 14),
    ("catcher", 6, b"x\r\n" + b"x" * 14),
    ("catcher", 6, b"\r\n".join([b"x" * 14] * 2)),
    ("catcher", 6, (b"x" * 14 + b"\r\n") * 2),
    ("catcher", 4, b"xxx\r\nxxx"),
    ("catcher", 4, b"xxxx\r\nxxxx\r"),
    ("line_only", 64, tb.LineOnlyReceiverTests.buffer),
    ("line_only", 64, b"x" * 67 + b"\r\nr"),
    ("netstring", 50, b"5:hello,5:world,0:,1:a,4:1:a,,"),
    ("netstring", 50, b"2:aaa,"),
    ("netstring", 50, b"0:a,"),
    ("netstring", 50, b":aaa,"),
    ("netstring", 50, b"3aaa,"),
    ("netstring", 50, b"aaa,"),
    ("netstring", 50, b"aaa"),
    ("netstring", 50, b"9999999999999999999999"),
    ("netstring", 50, b"51:" + b"a" * 51 + b","),
    ("netstring", 50, b"50:" + b"a" * 50 + b","),
    ("netstring", 50, b"\x00" * 51 + b":" + b"a" * 51),
    ("netstring", 50, b"1:a,12\n:b,"),
    ("netstring", 50, b"007:abcdefg,"),
    ("netstring", 12, b"12:abcdefghijkl,"),
    ("netstring", 11, b"12:abcdefghijkl,"),
    ("netstring", 11, b"1000:"),
    ("netstring", 99999, b"100000:"),
    ("int16", 50, b"\x00\x01a\x00\x10" + b"b" * 16),
    ("int16", 50, b"\x10\x00aaaaaa"),
    ("int16", 10, b"\x00\x0b" + b"x" * 11),
]


def rnd_line_tester(r):
    parts = [b"len 0\n"]  # an empty line switches to raw: length set
    for _ in range(r.randint(1, 8)):
        c = r.random()
        if c < 0.3:
            parts.append(b"line%d\n" % r.randint(0, 99))
        elif c < 0.5:
            n = r.randint(0, 12)
            raw = bytes(r.choice(b"ab\n") for _ in range(n + r.randint(0, 6)))
            parts.append(b"len %d\n\n" % n + raw)
        elif c < 0.6:
            parts.append(b"pause\n")
        elif c < 0.7:
            n = r.randint(0, 8)
            parts.append(b"len %d\nrawpause\n" % n
                         + bytes(r.choice(b"xy\n") for _ in range(n + 2)))
        elif c < 0.85:
            parts.append(b"z" * r.randint(60, 140) + r.choice([b"\n", b""]))
        else:
            parts.append(b"\n")
    return b"".join(parts)


def rnd_catcher(r):
    n = r.randint(1, 40)
    return bytes(r.choice(b"xxxxy\r\n") for _ in range(n))


def rnd_line_only(r):
    n = r.randint(1, 160)
    return bytes(r.choice(b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n\r") for _ in range(n))


def rnd_netstring(r):
    parts = []
    for _ in range(r.randint(1, 6)):
        c = r.random()
        if c < 0.6:
            s = bytes(r.choice(b"ab:,1\n") for _ in range(r.randint(0, 20)))
            parts.append(b"%d:" % len(s) + s + b",")
        elif c < 0.7:
            s = b"a" * r.randint(45, 55)
            parts.append(b"%d:" % len(s) + s + b",")
        else:
            parts.append(r.choice([b"0", b"00:", b"01:a,", b"1", b":", b",",
                                   b"a", b"\n", b"12\n", b"9" * r.randint(2, 5),
                                   b"3:ab,", b"2:abc", b"-1:"]))
    return b"".join(parts)


def rnd_int16(r):
    parts = []
    for _ in range(r.randint(1, 5)):
        n = r.choice([0, 1, 5, 16, 50, 51, 300])
        parts.append(struct.pack("!H", n) + b"q" * min(n, r.randint(0, n + 2)))
    return b"".join(parts)


RANDOM = [
    ("line_tester", 64, rnd_line_tester),
    ("catcher", 6, rnd_catcher),
    ("catcher", 4, rnd_catcher),
    ("line_only", 16, rnd_line_only),
    ("netstring", 50, rnd_netstring),
    ("netstring", 12, rnd_netstring),
    ("int16", 50, rnd_int16),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=40)
    ap.add_argument("-s", type=int, default=1)
    ap.add_argument("-o", default="-")
    a = ap.parse_args()
    r = random.Random(a.s)
    cases = list(FIXED)
    for i in range(a.n):
        kind, maxlen, gen = RANDOM[i % len(RANDOM)]
        cases.append((kind, maxlen, gen(r)))
    out = sys.stdout if a.o == "-" else open(a.o, "w")
    for kind, maxlen, data in cases:
        out.write("case %s %d %s\n" % (kind, maxlen, data.hex() or "-"))
        for chunk in range(1, max(len(data), 1) + 1):
            out.write("chunk %d %s\n" % (chunk, run(kind, maxlen, data, chunk).hex() or "-"))
    out.write("end\n")
    if out is not sys.stdout:
        out.close()


if __name__ == "__main__":
    main()
