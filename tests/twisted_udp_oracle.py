#!/usr/bin/python3
"""
tests/twisted_udp_oracle.py - UDP scenarios run by real Twisted.

Runs each scenario of the test udp::differential_against_twisted
(tests/test_udp.c) on Twisted 22.4's reactor (Debian's python3-twisted),
over 127.0.0.1 / ::1 with port 0 (multicast: the group joined on the
loopback interface only), and writes what came of it; the C test runs the
same scenarios on twuv and compares line by line. Outcomes of calls are
"ok" or the exception's class name; twuv's codes are mapped to those names
by the test (TW_EINVAL on write/connect/listen -> InvalidAddressError,
UV_EMSGSIZE -> MessageLengthError, ...).

Output: "<scenario> <value>" lines, then "end".

usage: twisted_udp_oracle.py [-o FILE]
"""
import argparse
import sys

from twisted.internet import defer, reactor
from twisted.internet.protocol import DatagramProtocol
from twisted.python.failure import Failure

LOCAL = "127.0.0.1"


def outcome(f, *args):
    try:
        f(*args)
        return "ok"
    except Exception as e:  # the class name is the answer
        return type(e).__name__


class Recorder(DatagramProtocol):
    def __init__(self, want=0):
        self.lengths = []
        self.events = []
        self.want = want
        self.done = defer.Deferred()
        self.stop_in_start = False
        self.in_start = False

    def startProtocol(self):
        self.events.append("start")
        if self.stop_in_start:
            self.in_start = True
            self.transport.stopListening()
            self.in_start = False

    def stopProtocol(self):
        self.events.append("stop-in-start" if self.in_start else "stop")

    def datagramReceived(self, data, addr):
        self.lengths.append(len(data))
        if len(self.lengths) == self.want and not self.done.called:
            self.done.callback(None)


def bounded(d, seconds=10):
    """d, failed with a TimeoutError if it has not fired within seconds."""
    call = reactor.callLater(seconds, d.errback, TimeoutError("no datagram"))
    d.addBoth(lambda r: (call.active() and call.cancel(), r)[1])
    return d


@defer.inlineCallbacks
def received_lengths(max_packet, sizes):
    p = Recorder(len(sizes))
    port = reactor.listenUDP(0, p, interface=LOCAL, maxPacketSize=max_packet)
    to = (LOCAL, port.getHost().port)
    for n in sizes:
        port.write(b"x" * n, to)
    yield bounded(p.done)
    yield port.stopListening()
    return ",".join(str(n) for n in p.lengths)


@defer.inlineCallbacks
def scenarios(out):
    def emit(name, value):
        out.write("%s %s\n" % (name, value))

    emit("truncate_16", (yield received_lengths(16, [16, 17, 100])))
    emit("default_max", (yield received_lengths(8192, [9000])))
    emit("largest", (yield received_lengths(65536, [65507])))
    emit("empty", (yield received_lengths(8192, [0])))

    p4 = Recorder()
    port4 = reactor.listenUDP(0, p4, interface=LOCAL)
    to4 = (LOCAL, port4.getHost().port)
    emit("write_too_long", outcome(port4.write, b"x" * 65508, to4))
    emit("write_hostname", outcome(port4.write, b"x", ("example.invalid", 1)))
    emit("write_v6_on_v4", outcome(port4.write, b"x", ("::1", 1)))
    emit("write_broadcast", outcome(port4.write, b"x", ("<broadcast>", 1234)))
    emit("broadcast_default", int(bool(port4.getBroadcastAllowed())))
    emit("connect_hostname", outcome(port4.connect, "example.invalid", 1))
    emit("connect", outcome(port4.connect, LOCAL, to4[1]))
    emit("connect_twice", outcome(port4.connect, LOCAL, to4[1]))
    emit("listen_in_use",
         outcome(reactor.listenUDP, to4[1], Recorder(), LOCAL))
    emit("listen_hostname",
         outcome(reactor.listenUDP, 0, Recorder(), "example.com"))
    yield port4.stopListening()

    p6 = Recorder()
    port6 = reactor.listenUDP(0, p6, interface="::1")
    emit("write_v4_on_v6", outcome(port6.write, b"x", (LOCAL, 1)))
    emit("write_broadcast_on_v6",
         outcome(port6.write, b"x", ("<broadcast>", 1)))
    yield port6.stopListening()

    pm = Recorder()
    portm = reactor.listenMulticast(0, pm, interface=LOCAL)
    emit("ttl_default", portm.getTTL())
    emit("loopback_default", int(portm.getLoopbackMode()))
    emit("outgoing_default", portm.getOutgoingInterface())
    portm.setTTL(2)
    emit("ttl_set", portm.getTTL())
    yield portm.setOutgoingInterface(LOCAL)
    emit("outgoing_set", portm.getOutgoingInterface())
    try:
        yield portm.joinGroup(LOCAL, LOCAL)
        emit("join_not_multicast", "ok")
    except Exception as e:
        emit("join_not_multicast", type(e).__name__)
    try:
        yield portm.leaveGroup("225.0.0.250", LOCAL)
        emit("leave_not_joined", "ok")
    except Exception as e:
        emit("leave_not_joined", type(e).__name__)
    try:
        yield portm.joinGroup("225.0.0.250", LOCAL)
        emit("join", "ok")
    except Exception as e:
        emit("join", type(e).__name__)
    yield portm.stopListening()

    ps = Recorder()
    ports = reactor.listenUDP(0, ps, interface=LOCAL)
    yield ports.stopListening()
    ps2 = Recorder()
    ps2.stop_in_start = True
    reactor.listenUDP(0, ps2, interface=LOCAL)
    d = defer.Deferred()
    reactor.callLater(0, d.callback, None)
    yield d
    emit("start_stop", ",".join(ps.events))
    emit("stop_in_start", ",".join(ps2.events))
    out.write("end\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-o", default="-")
    args = ap.parse_args()
    out = sys.stdout if args.o == "-" else open(args.o, "w")
    failed = []

    def done(result):
        if isinstance(result, Failure) or result is not None:
            failed.append(result)
        reactor.stop()

    reactor.callWhenRunning(lambda: scenarios(out).addBoth(done))
    reactor.run()
    out.flush()
    if failed:
        sys.stderr.write("twisted_udp_oracle: %s\n" % (failed[0],))
        sys.exit(1)


if __name__ == "__main__":
    main()
