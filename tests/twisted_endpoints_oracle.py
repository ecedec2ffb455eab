#!/usr/bin/python3
"""
tests/twisted_endpoints_oracle.py - endpoint descriptions, parsed by real
Twisted.

Writes, for a fixed list of hand-picked descriptions and N random ones
(drawn from the pieces descriptions are made of: prefixes in several cases,
numbers in every form Python's int() takes or refuses, known and unknown
keywords, escapes, '=' in values, empty arguments), what Twisted 22.4's
serverFromString and clientFromString (Debian's python3-twisted) make of
each; the test endpoints::differential_against_twisted in
tests/test_endpoints.c parses every one with tw_server_from_string /
tw_client_from_string and compares: the endpoint's kind and every field,
or the exception type (and, for Twisted's informative ValueErrors, its
message, which twuv's must contain).

Where twuv departs from Twisted on purpose (include/twuv/endpoints.h,
docs/porting.md), the expectation is adjusted here, so that the comparison
is about everything else:
  - ssl (and Twisted's other plugins: systemd, stdio, tls) are not built in:
    "Unknown endpoint type";
  - no prefix at all (Twisted's IndexError) is a ValueError;
  - values Twisted accepts and only its listen/connect would refuse are
    ValueErrors: a port outside 0-65535, a negative backlog, an interface or
    bindAddress that is not a numeric address, a mode outside 0o0-0o7777, an
    empty or too long UNIX path, an empty host, a timeout below 1;
  - what _parseClientTCP/_parseClientUNIX drop silently is a TypeError: a
    third positional argument (second for unix), or a positional host,
    port or path given as a keyword too;
  - descriptions longer than 16384 bytes are refused (ValueError).

Output: one line per description and side,
  S|C <hex description> OK <kind> <port> <backlog> <hex host> <hex path>
      <mode> <lock> <timeout> <hasbind> <hex bindhost>
  S|C <hex description> ERR <ExceptionName> <hex text the message contains>
then "end". Hex keeps every byte of a description (colons, backslashes,
spaces) intact.

usage: twisted_endpoints_oracle.py [-n COUNT] [-s SEED] [-o FILE]
"""
import argparse
import random
import socket
import sys
import warnings

from twisted.internet import endpoints

TW_LISTEN_BACKLOG = 50
TW_CONNECT_TIMEOUT = 30
PATH_MAX = 108  # sun_path, with its NUL
DESCRIPTION_MAX = 16384

KIND = {
    "TCP4_SERVER": 1,
    "TCP6_SERVER": 2,
    "UNIX_SERVER": 3,
    "TCP4_CLIENT": 4,
    "UNIX_CLIENT": 6,
}

HAND = [
    # ParserTests / ServerStringTests / ClientStringTests
    "tcp:80", "tcp:80:interface=127.0.0.1", "tcp:80:backlog=6",
    "unix:/var/run/finger", "unix:/var/run/finger:mode=0660",
    "unix:/var/run/finger:lockfile=0", "unix:foo\\:bar\\=baz\\:qux\\\\",
    "unix:address=foo=bar", "bogus-type:nothing",
    "tcp:1234:backlog=12:interface=10.0.0.1",
    "unix:/var/foo/bar:backlog=7:mode=0123:lockfile=1",
    "ftl:andromeda/carcosa/hali/2387",
    "tcp:host=example.com:port=1234:timeout=7:bindAddress=10.0.0.2",
    "tcp:example.com:1234:timeout=7:bindAddress=10.0.0.2",
    "tcp:example.com:port=1234:timeout=7:bindAddress=10.0.0.2",
    "tcp:host=example.com:1234:timeout=7:bindAddress=10.0.0.2",
    "tcp:host=example.com:port=1234", "unix:path=/var/foo/bar:lockfile=1:timeout=9",
    "unix:path=/var/foo/bar", "unix:/var/foo/bar:lockfile=1:timeout=9",
    # TCP6ServerEndpointPluginTests
    "tcp6:8080:backlog=12:interface=\\:\\:1", "tcp6:8080", "TCP6:80",
    "tcp6:80:1:\\:\\:1", "tcp6:80:reactor=1", "tcp6:80:self=1",
    # the brief's and the header's examples
    "tcp:8080:interface=127.0.0.1:backlog=10", "tcp:port=8080",
    "unix:/tmp/s:mode=660:backlog=3", "tcp:\\:\\:1:80",
    "tcp:127.0.0.1:80:bindAddress=\\:\\:1",
    # Python's argument binding and its order
    "tcp:1:2:3:4:foo=1", "tcp:1:2:3:4:port=1", "tcp:foo=1", "tcp:port=1:port=2",
    "tcp:x:foo=1", "tcp:1:2:3:4", "tcp:80:factory=1", "tcp:=80", "tcp",
    "tcp:", "tcp:interface=127.0.0.1", "unix:a:b:c:d:e", "unix", "unix:",
    "a=b", "a=b:tcp:80", "tcp:80\\", "\\", "", ":", "::", "=", "tcp:80:",
    "TCP:80", "Tcp:h:1", "UNIX:/x", "tcp:80:interface=", "tcp:80:interface=localhost",
    # int()
    "tcp: 8_0 ", "tcp:8__0", "tcp:_80", "tcp:80_", "tcp:+80", "tcp:-0", "tcp:-1",
    "tcp:0080", "tcp:0x50", "tcp:99999999999999999999999", "tcp:65535", "tcp:65536",
    "tcp:\t80\n", "tcp:8 0", "tcp:80:backlog=-1", "tcp:80:backlog=0",
    "tcp:80:backlog=2147483647", "tcp:80:backlog=2147483648",
    "unix:a:0o7_7", "unix:a: +077 ", "unix:a:0o", "unix:a:0o_7", "unix:a:0O17",
    "unix:a:8", "unix:a:-1", "unix:a:7777", "unix:a:17777", "unix:a:0",
    "unix:a:mode=0x1", "unix:a:lockfile=x", "unix:a:lockfile=2", "unix:a:lockfile= 0 ",
    "unix:a:lockfile=99999999999999999999999",
    # clients
    "tcp:h:80", "tcp:h:80:host=x", "tcp:80:host=h:port=81", "tcp:a:b:c:host=h:port=1",
    "tcp:host=h", "tcp:h:x", "tcp:host=h:port=1:timeout=1.5",
    "tcp:host=h:port=x:foo=1", "tcp:host=h:port=1:foo=1", "Tcp6:h:1",
    "unix:a:b", "unix:a:path=b", "unix:path=a:checkPID=0", "unix:path=a:checkPID=",
    "unix:a:lockfile=x:timeout=y", "unix:a:timeout=y:lockfile=x",
    "tcp:h:1:reactor=1", "tcp:h:1:self=1", "tcp:h:1:timeout=-3", "tcp:h:1:timeout=0",
    "tcp:h:1:timeout= 7 ", "tcp::1", "tcp:host=:port=1", "tcp:h:1:bindAddress=h",
    "tcp:h:1:bindAddress=", "unix:" + "x" * 107, "unix:" + "x" * 108,
    "unix:path=" + "y" * 120, "ssl:443", "systemd:domain=INET:index=0", "stdio:",
    "tls:h:1", "x" * 20000,
]

PREFIXES = ["tcp", "tcp", "tcp", "unix", "unix", "tcp6", "TCP", "Tcp6", "UNIX",
            "uNiX", "ftl", "", "tcp6"]
KEYS = ["port", "interface", "backlog", "mode", "lockfile", "address", "host",
        "timeout", "bindAddress", "path", "checkPID", "factory", "reactor",
        "foo", "", "Port", "bindaddress"]
NUMS = ["0", "1", "80", "8080", "65535", "65536", "-1", "+5", " 7 ", "1_000",
        "1__0", "_1", "1_", "0o17", "0O7", "0o_7", "017", "09", "x", "", "1.5",
        "0x10", "99999999999999999999", "\t12\n", "2147483648", "666", "0660",
        "7777", "8"]
VALUES = ["127.0.0.1", "::1", "\\:\\:1", "10.0.0.1", "localhost", "", "a=b",
          "/tmp/sock", "/var/run/x\\:y", "h", "example.com", "0.0.0.0", "::",
          "1.2.3", "fe80::1%lo"]


def rand_arg(rng):
    r = rng.random()
    if r < 0.45:
        return rng.choice(NUMS)
    if r < 0.85:
        return rng.choice(VALUES)
    return "".join(rng.choice("ab:=\\ 1") for _ in range(rng.randint(0, 4)))


GOOD = {
    "tcp": (["80", "0", "8080", " 1_0 ", "+7"],
            {"port": ["80", "0", "65535"], "interface": ["127.0.0.1", "::1", ""],
             "backlog": ["5", "0", "50"], "host": ["127.0.0.1", "h", "\\:\\:1"],
             "timeout": ["1", "30", " 9 "], "bindAddress": ["127.0.0.1", "::"]}),
    "tcp6": (["80", "0"], {"port": ["80"], "backlog": ["1", "0"],
                           "interface": ["::1", "::", "127.0.0.1"]}),
    "unix": (["/tmp/a", "/tmp/a\\:b", "rel", "0660", "5"],
             {"address": ["/tmp/x"], "path": ["/tmp/p"], "mode": ["600", "0o7"],
              "backlog": ["3"], "lockfile": ["0", "1"], "timeout": ["4"],
              "checkPID": ["1", ""]}),
}


def good_description(rng):
    prefix = rng.choice(sorted(GOOD))
    pos, kws = GOOD[prefix]
    parts = [rng.choice([prefix, prefix.upper()]) if rng.random() < 0.2
             else prefix]
    parts += [rng.choice(pos) for _ in range(rng.randint(0, 2))]
    for _ in range(rng.randint(0, 3)):
        k = rng.choice(sorted(kws))
        parts.append(k + "=" + rng.choice(kws[k]))
    return ":".join(parts)


def rand_description(rng):
    if rng.random() < 0.5:
        return good_description(rng)
    parts = []
    if rng.random() < 0.95:
        parts.append(rng.choice(PREFIXES))
    for _ in range(rng.randint(0, 5)):
        if rng.random() < 0.5:
            parts.append(rand_arg(rng))
        else:
            parts.append(rng.choice(KEYS) + "=" + rand_arg(rng))
    if rng.random() < 0.05 and parts:
        parts.insert(rng.randint(0, len(parts)), rng.choice(KEYS) + "=" +
                     rand_arg(rng))
    d = ":".join(parts)
    if rng.random() < 0.03:
        d += "\\"
    return d


def numeric(host):
    for fam in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(fam, host)
            return True
        except (OSError, ValueError):
            pass
    return False


def hexs(s):
    return s.encode("utf-8", "surrogateescape").hex() or "-"


def err(name, contains=""):
    return ("ERR", name, contains)


def informative(exc):
    """The part of Twisted's message twuv's must contain."""
    msg = str(exc)
    if isinstance(exc, ValueError) and (msg.startswith("invalid literal") or
                                        msg.startswith("Unknown endpoint")):
        return msg
    return ""


def server_expect(d):
    if len(d.encode()) > DESCRIPTION_MAX:
        return err("ValueError")
    try:
        args, kw = endpoints._parse(d)
    except RuntimeError:
        return err("RuntimeError")
    if not args:
        return err("ValueError")
    if args[0] not in ("tcp", "unix") and args[0].lower() != "tcp6":
        return err("ValueError", "Unknown endpoint type: '%s'" % args[0].lower())
    try:
        ep = endpoints.serverFromString(None, d)
    except (ValueError, TypeError, RuntimeError) as e:
        return err(type(e).__name__, informative(e))
    except IndexError:
        return err("ValueError")
    except Exception:  # ssl without OpenSSL, and the like: not built in
        return err("ValueError", "Unknown endpoint type: '%s'" % args[0].lower())
    cls = type(ep).__name__
    if cls in ("TCP4ServerEndpoint", "TCP6ServerEndpoint"):
        port, backlog, iface = ep._port, ep._backlog, ep._interface
        if not 0 <= port <= 65535 or not 0 <= backlog <= 2**31 - 1:
            return err("ValueError")
        if iface != "" and not numeric(iface):
            return err("ValueError")
        kind = "TCP4_SERVER" if cls == "TCP4ServerEndpoint" else "TCP6_SERVER"
        return ("OK", KIND[kind], port, backlog or TW_LISTEN_BACKLOG, iface,
                None, 0, 0, 0.0, 0, "")
    if cls == "UNIXServerEndpoint":
        if not 0 <= ep._mode <= 0o7777 or not 0 <= ep._backlog <= 2**31 - 1:
            return err("ValueError")
        if ep._address == "" or len(ep._address.encode()) >= PATH_MAX:
            return err("ValueError")
        return ("OK", KIND["UNIX_SERVER"], 0, ep._backlog or TW_LISTEN_BACKLOG,
                None, ep._address, ep._mode or 0o666, int(bool(ep._wantPID)),
                0.0, 0, "")
    return err("ValueError", "Unknown endpoint type: '%s'" % args[0].lower())


def client_expect(d):
    if len(d.encode()) > DESCRIPTION_MAX:
        return err("ValueError")
    try:
        args, kw = endpoints._parse(d)
    except RuntimeError:
        return err("RuntimeError")
    if not args:
        return err("ValueError")
    name = args[0].upper()
    rest = args[1:]
    if name not in ("TCP", "UNIX"):
        return err("ValueError", "Unknown endpoint type: '%s'" % args[0].lower())
    # twuv refuses what Twisted would drop silently.
    if name == "TCP":
        if len(rest) > 2 or (len(rest) == 2 and ("host" in kw or "port" in kw)) \
                or (len(rest) == 1 and "host" in kw and "port" in kw):
            return err("TypeError")
    if name == "UNIX":
        if len(rest) > 1 or (len(rest) == 1 and "path" in kw):
            return err("TypeError")
    try:
        ep = endpoints.clientFromString(None, d)
    except (ValueError, TypeError, RuntimeError) as e:
        return err(type(e).__name__, informative(e))
    except IndexError:
        return err("ValueError")
    except Exception:
        return err("ValueError", "Unknown endpoint type: '%s'" % args[0].lower())
    cls = type(ep).__name__
    if cls == "TCP4ClientEndpoint":
        if not 0 <= ep._port <= 65535 or ep._timeout < 1 or \
                ep._timeout > 2**31 - 1 or ep._host == "":
            return err("ValueError")
        b = ep._bindAddress
        if b is not None and not numeric(b[0]):
            return err("ValueError")
        return ("OK", KIND["TCP4_CLIENT"], ep._port, 0, ep._host, None, 0, 0,
                float(ep._timeout), int(b is not None), b[0] if b else "")
    if cls == "UNIXClientEndpoint":
        if ep._timeout < 1 or ep._timeout > 2**31 - 1:
            return err("ValueError")
        if ep._path == "" or len(ep._path.encode()) >= PATH_MAX:
            return err("ValueError")
        return ("OK", KIND["UNIX_CLIENT"], 0, 0, None, ep._path, 0,
                int(bool(ep._checkPID)), float(ep._timeout), 0, "")
    return err("ValueError", "Unknown endpoint type: '%s'" % args[0].lower())


def line(side, d, exp):
    if exp[0] == "ERR":
        return "%s %s ERR %s %s" % (side, hexs(d), exp[1], hexs(exp[2]))
    (_, kind, port, backlog, host, path, mode, lock, timeout, hasbind,
     bindhost) = exp
    return "%s %s OK %d %d %d %s %s %d %d %.1f %d %s" % (
        side, hexs(d), kind, port, backlog,
        "!" if host is None else hexs(host), "!" if path is None else hexs(path),
        mode, lock, timeout, hasbind, hexs(bindhost))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=3000)
    ap.add_argument("-s", type=int, default=1)
    ap.add_argument("-o", default="-")
    o = ap.parse_args()
    warnings.simplefilter("ignore")
    rng = random.Random(o.s)
    descriptions = list(HAND) + [rand_description(rng) for _ in range(o.n)]
    out = sys.stdout if o.o == "-" else open(o.o, "w")
    for d in descriptions:
        out.write(line("S", d, server_expect(d)) + "\n")
        out.write(line("C", d, client_expect(d)) + "\n")
    out.write("end\n")
    if out is not sys.stdout:
        out.close()


if __name__ == "__main__":
    main()
