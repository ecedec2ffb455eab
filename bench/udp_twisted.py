"""bench/udp_twisted.py - the Twisted 22.4 UDP echo server of bench/udp.c.

Same logic as the twuv and raw libuv servers: each datagram is written
back to its sender (docs/core/examples/echoserv_udp.py). Listens on
127.0.0.1, port 0; prints the port on stdout, then serves until killed.
"""
import sys

from twisted.internet import reactor
from twisted.internet.protocol import DatagramProtocol


class EchoUDP(DatagramProtocol):
    def datagramReceived(self, datagram, address):
        try:
            self.transport.write(datagram, address)
        except BlockingIOError:
            pass  # the same policy as the C servers: a full buffer drops it


def main():
    port = reactor.listenUDP(0, EchoUDP(), interface="127.0.0.1")
    sys.stdout.write("%d\n" % port.getHost().port)
    sys.stdout.flush()
    reactor.run()


if __name__ == "__main__":
    main()
