"""bench/echo_twisted.py - the Twisted 22.4 echo server of bench/echo.c.

Same logic and the same backpressure policy as the twuv and raw libuv
servers: echo what arrives; the transport is registered as its own
streaming producer, so reading stops while more than 64 KiB wait to be
written and starts again once the buffer is empty (Twisted's
FileDescriptor rules). Listens on 127.0.0.1, port 0; prints the port on
stdout, then serves until killed.
"""
import sys

from twisted.internet import protocol, reactor


class Echo(protocol.Protocol):
    def connectionMade(self):
        self.transport.registerProducer(self.transport, True)

    def dataReceived(self, data):
        self.transport.write(data)


def main():
    factory = protocol.Factory.forProtocol(Echo)
    port = reactor.listenTCP(0, factory, backlog=1024, interface="127.0.0.1")
    sys.stdout.write("%d\n" % port.getHost().port)
    sys.stdout.flush()
    reactor.run()


if __name__ == "__main__":
    main()
