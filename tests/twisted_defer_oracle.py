#!/usr/bin/python3
"""
tests/twisted_defer_oracle.py - random Deferred programs, run in real Twisted.

Writes N random programs over a pool of 4 Deferreds, each followed by the
trace Twisted (22.4, Debian's python3-twisted) gives for it; the test
defer::differential_against_twisted in tests/test_defer.c replays every
program on twuv's Deferreds and compares the traces event by event.

The program language is the randomized model test's (test_defer.c, the
B_* behaviours and the tr() events): callback pairs whose halves pass,
replace, fail, return a fired Deferred, return a pool Deferred, add to their
own Deferred, or - mid-chain - fire, fail, pause, unpause, cancel, chain or
add to a pool Deferred; and, between them, fire, pause, unpause, cancel and
chainDeferred. Where twuv departs from Twisted on purpose (docs/porting.md),
the Python side does what twuv documents, so that the comparison is about
everything else:
  - unpause without a matching pause (or of a waiting Deferred's own pause)
    returns TW_EINVAL and changes nothing (Twisted goes to -1);
  - chainDeferred(d, d) returns TW_EINVAL;
  - a callback returning its own Deferred, or one waiting on it, gets a
    failure with TW_EINVAL (Twisted warns and deadlocks);
  - a callback returning a Deferred whose callback is running gets None
    (Twisted takes the value that running callback holds);
  - callback/errback on a fired Deferred returns TW_EALREADYCALLED.
Programs that leave a reference cycle (chainDeferred deadlocks, which twuv
cannot free) are given the same cycle-breaking tail as the model test
(unpause, cancel, add a pair), or dropped if that does not break it.

usage: twisted_defer_oracle.py [-n COUNT] [-s SEED] [-o FILE]
"""
import argparse
import errno
import random
import sys
import warnings

from twisted.internet import defer
from twisted.internet.defer import (AlreadyCalledError, CancelledError,
                                    Deferred, fail, succeed)
from twisted.python.failure import Failure

# twuv's error codes (include/twuv/error.h). EINVAL and ECANCELLED are
# libuv's, which are negated errno values on POSIX.
TW_EINVAL = -errno.EINVAL
TW_EALREADYCALLED = -7003
TW_ECANCELLED = -errno.ECANCELED

# The behaviours, numbered as test_defer.c's enum.
(B_NONE, B_PASS, B_VALUE, B_FAIL, B_RET_SUCC, B_RET_FAIL, B_RET_POOL,
 B_ADD_SELF, B_FIRE_OTHER, B_ADD_OTHER, B_FAIL_OTHER, B_PAUSE_OTHER,
 B_UNPAUSE_OTHER, B_CANCEL_OTHER, B_CHAIN_OTHER, B_COUNT) = range(16)

MK = 4


class GenErr(Exception):
    def __init__(self, code):
        Exception.__init__(self, code)
        self.code = code


def code_of(f):
    v = f.value
    if isinstance(v, GenErr):
        return v.code
    if isinstance(v, CancelledError):
        return TW_ECANCELLED
    if isinstance(v, AlreadyCalledError):
        return TW_EALREADYCALLED
    raise RuntimeError("unexpected failure %r" % (f,))


class Program:
    def __init__(self, cancellers):
        self.trace = []
        self.pool = []
        for i, k in enumerate(cancellers):
            self.pool.append(Deferred(self.canceller(i, k) if k else None))

    def tr(self, a, b, c, d):
        self.trace += [a, b, c, d]

    def canceller(self, i, kind):
        def cancel(d):
            self.tr(i, -1, kind, 0)
            if kind == 1:
                d.callback(777)
            elif kind == 2:
                d.errback(Failure(GenErr(888)))
        return cancel

    # ---- the operations, with twuv's documented departures ----

    def fire(self, i, v, failed):
        try:
            if failed:
                self.pool[i].errback(Failure(GenErr(v)))
            else:
                self.pool[i].callback(v)
        except AlreadyCalledError:
            return TW_EALREADYCALLED
        return 0

    def waiting(self, d):
        return d.called and isinstance(d.result, Deferred)

    def unpause(self, i):
        d = self.pool[i]
        if d.paused <= 0:
            return TW_EINVAL
        if d.paused == 1 and self.waiting(d):
            return TW_EINVAL
        d.unpause()
        return 0

    def chain(self, i, t):
        if i == t:
            return TW_EINVAL
        self.pool[i].chainDeferred(self.pool[t])
        return 0

    def add(self, i, cb_beh, cb_arg, eb_beh, eb_arg, tag):
        cb = self.half(i, tag, cb_beh, cb_arg, 0) if cb_beh else None
        eb = self.half(i, tag, eb_beh, eb_arg, 1) if eb_beh else None
        self.pool[i].addCallbacks(cb or defer.passthru, eb or defer.passthru)

    def half(self, c, tag, beh, barg, side):
        def run(r):
            if isinstance(r, Failure):
                self.tr(c, tag, side * 1000 + 1, code_of(r))
            else:
                self.tr(c, tag, side * 1000, 0 if r is None else r)
            return self.behave(c, tag, beh, barg, r)
        return run

    def returned(self, c, j):
        """What returning pool[j] from a callback on pool[c] gives."""
        inner, cur = self.pool[j], self.pool[c]
        if inner is cur:
            return Failure(GenErr(TW_EINVAL))
        ready = (inner.called and not isinstance(inner.result, Deferred)
                 and not inner.paused)
        if not ready:
            x = inner
            while x.called and isinstance(x.result, Deferred):
                x = x.result
                if x is cur:
                    return Failure(GenErr(TW_EINVAL))
            return inner
        if inner._runningCallbacks:
            return succeed(None)
        return inner

    def behave(self, c, tag, beh, barg, r):
        x = barg % MK
        if beh == B_PASS:
            return r
        if beh == B_VALUE:
            return tag
        if beh == B_FAIL:
            return Failure(GenErr(tag))
        if beh == B_RET_SUCC:
            return succeed(tag)
        if beh == B_RET_FAIL:
            return fail(GenErr(tag))
        if beh == B_RET_POOL:
            return self.returned(c, barg)
        if beh == B_ADD_SELF:
            self.add(c, B_PASS, 0, B_PASS, 0, tag + 1000)
            return r
        if beh == B_FIRE_OTHER:
            self.tr(c, tag, 5000, self.fire(barg, tag, False))
            return r
        if beh == B_ADD_OTHER:
            self.add(barg, B_PASS, 0, B_PASS, 0, tag + 2000)
            return r
        if beh == B_FAIL_OTHER:
            self.tr(c, tag, 6000 + beh, self.fire(x, tag, True))
            return r
        if beh == B_PAUSE_OTHER:
            self.pool[x].pause()
            self.tr(c, tag, 6000 + beh, 0)
            return r
        if beh == B_UNPAUSE_OTHER:
            self.tr(c, tag, 6000 + beh, self.unpause(x))
            return r
        if beh == B_CANCEL_OTHER:
            self.pool[x].cancel()
            self.tr(c, tag, 6000 + beh, 0)
            return r
        if beh == B_CHAIN_OTHER:
            self.tr(c, tag, 6000 + beh, self.chain(x, barg // MK))
            return r
        raise AssertionError(beh)

    # ---- observation ----

    def state(self):
        for d in self.pool:
            ready = d.called and not self.waiting(d)
            self.tr(-3, int(d.called), d.paused, int(ready))
            if ready:
                if isinstance(d.result, Failure):
                    self.tr(-4, 1, code_of(d.result), 0)
                else:
                    self.tr(-4, 0, 0 if d.result is None else d.result, 0)

    def edges(self, d):
        out = []
        for item in d.callbacks:
            fn, args, _ = item[0]
            if fn is defer._CONTINUE:
                out.append(args[0])
            elif getattr(fn, "__self__", None) is not None and \
                    isinstance(fn.__self__, Deferred):
                out.append(fn.__self__)
        return out

    def has_cycle(self):
        def reaches(frm, to, depth):
            if depth > MK:
                return False
            for n in self.edges(frm):
                if n is to or reaches(n, to, depth + 1):
                    return True
            return False
        return any(reaches(d, d, 0) for d in self.pool)


def generate(rng, tag_start=1):
    """One program: canceller kinds and a list of operations."""
    cancellers = [rng.randrange(4) for _ in range(MK)]
    ops = []
    tag = tag_start
    for _ in range(1 + rng.randrange(24)):
        op, d = rng.randrange(100), rng.randrange(MK)
        if op < 45:
            def pick():
                return B_NONE if rng.randrange(4) == 0 else \
                    1 + rng.randrange(B_COUNT - 1)
            cb, eb = pick(), pick()
            while cb == B_NONE and eb == B_NONE:
                cb, eb = pick(), pick()
            cba = rng.randrange(MK * MK if cb == B_CHAIN_OTHER else MK)
            eba = rng.randrange(MK * MK if eb == B_CHAIN_OTHER else MK)
            ops.append(("a", d, cb, cba, eb, eba, tag))
            tag += 1
        elif op < 60:
            ops.append(("f", d, int(rng.randrange(3) == 0), tag))
            tag += 1
        elif op < 68:
            ops.append(("p", d))
        elif op < 78:
            ops.append(("u", d))
        elif op < 90:
            ops.append(("x", d))
        else:
            ops.append(("c", d, rng.randrange(MK)))
    return cancellers, ops, tag


def run_op(p, op):
    k, d = op[0], op[1]
    if k == "a":
        p.add(*op[1:])
        return 0
    if k == "f":
        return p.fire(d, op[3], op[2] == 1)
    if k == "p":
        p.pool[d].pause()
        return 0
    if k == "u":
        return p.unpause(d)
    if k == "x":
        p.pool[d].cancel()
        return 0
    if k == "c":
        return p.chain(d, op[2])
    raise AssertionError(op)


def run_program(cancellers, ops, tag):
    """Run ops in Twisted; add the cycle-breaking tail. The trace, or None."""
    p = Program(cancellers)
    for n, op in enumerate(ops):
        p.tr(-2, n, run_op(p, op), 0)
        p.state()
    rounds = 0
    while p.has_cycle() and rounds < 16:
        rounds += 1

        def do(op):
            n = len(ops)
            ops.append(op)
            p.tr(-2, n, run_op(p, op), 0)
            p.state()
        for i, d in enumerate(p.pool):
            while d.paused - int(p.waiting(d)) > 0:
                do(("u", i))
            do(("x", i))
        for i in range(MK):
            do(("a", i, B_PASS, 0, B_PASS, 0, tag))
            tag += 1
    if p.has_cycle():
        return None
    logs = 0
    for d in p.pool:
        if d.called and isinstance(d.result, Failure):
            logs += 1
    for d in p.pool:  # Twisted would log them at garbage collection
        if d.called and isinstance(d.result, Failure):
            d.result = None
        if d._debugInfo is not None:
            d._debugInfo.failResult = None
    p.tr(-5, logs, 0, 0)
    return p.trace


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("-s", type=int, default=1)
    ap.add_argument("-o", default="-")
    a = ap.parse_args()
    warnings.simplefilter("ignore")
    rng = random.Random(a.s)
    out = sys.stdout if a.o == "-" else open(a.o, "w")
    made = 0
    while made < a.n:
        cancellers, ops, tag = generate(rng)
        trace = run_program(cancellers, ops, tag)
        if trace is None:
            continue
        out.write("case %d %s\n" % (made, " ".join(map(str, cancellers))))
        for op in ops:
            out.write(" ".join(map(str, op)) + "\n")
        out.write("expect %s\n" % " ".join(map(str, trace)))
        made += 1
    out.write("end\n")
    if out is not sys.stdout:
        out.close()


if __name__ == "__main__":
    main()
