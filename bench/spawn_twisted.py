"""bench/spawn_twisted.py - the Twisted 22.4 side of bench/spawn.c.

Spawns COUNT /bin/true processes with reactor.spawnProcess, WINDOW in
flight at a time, each done at processEnded (exited and every pipe
closed), and prints "<processes per second>" for each of ROUNDS rounds.
MODE "pipes" uses spawnProcess's default childFDs (stdin, stdout and
stderr pipes), "nopipes" childFDs={} - the same two modes as bench/spawn.c.
An empty environment, as twuv's default.

usage: spawn_twisted.py MODE COUNT WINDOW ROUNDS
"""
import sys
import time

from twisted.internet import protocol, reactor


def main():
    mode, count, window, rounds = (
        sys.argv[1],
        int(sys.argv[2]),
        int(sys.argv[3]),
        int(sys.argv[4]),
    )
    child_fds = None if mode == "pipes" else {}
    state = {"started": 0, "done": 0, "round": 0, "t0": 0.0}

    class P(protocol.ProcessProtocol):
        def processEnded(self, reason):
            state["done"] += 1
            if state["done"] == count:
                rate = count / (time.perf_counter() - state["t0"])
                sys.stdout.write("%.1f\n" % rate)
                sys.stdout.flush()
                state["round"] += 1
                if state["round"] == rounds:
                    reactor.stop()
                else:
                    reactor.callLater(0, start_round)
                return
            spawn()

    def spawn():
        if state["started"] < count:
            state["started"] += 1
            reactor.spawnProcess(
                P(), "/bin/true", ["/bin/true"], {}, childFDs=child_fds
            )

    def start_round():
        state["started"] = state["done"] = 0
        state["t0"] = time.perf_counter()
        for _ in range(window):
            spawn()

    reactor.callWhenRunning(start_round)
    reactor.run()


if __name__ == "__main__":
    main()
