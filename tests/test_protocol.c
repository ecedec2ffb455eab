/*
 * tests/test_protocol.c - protocol.h: twisted.internet.error's types,
 * addresses, protocols and factories, and the tw_transport_* argument and
 * thread checks (the producer and disconnect rules are exercised through
 * the test doubles in test_testing.c).
 *
 * Ports twisted/internet/test/test_protocol.py's FactoryTests (doStart /
 * doStop counting, forProtocol) and twisted/test/test_address.py's repr
 * and equality tests; the error hierarchy and the address reprs are
 * checked against real Twisted when /usr/bin/python3 has it.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "twtest.h"

TWT_SUITE(protocol);

/* ---- twisted.internet.error ---------------------------------------------- */

typedef struct {
  const tw_error_type *type;
  const char *name;  /* Twisted's class name */
  const char *base;  /* Twisted's base class, qualified */
  const tw_error_type *base_type;
} error_row;

static const error_row errors[] = {
    {&TW_BIND_ERROR, "BindError", "builtins.Exception", &TW_ERROR},
    {&TW_CANNOT_LISTEN_ERROR, "CannotListenError", "error.BindError",
     &TW_BIND_ERROR},
    {&TW_CONNECT_ERROR, "ConnectError", "builtins.Exception", &TW_ERROR},
    {&TW_CONNECT_BIND_ERROR, "ConnectBindError", "error.ConnectError",
     &TW_CONNECT_ERROR},
    {&TW_UNKNOWN_HOST_ERROR, "UnknownHostError", "error.ConnectError",
     &TW_CONNECT_ERROR},
    {&TW_NO_ROUTE_ERROR, "NoRouteError", "error.ConnectError",
     &TW_CONNECT_ERROR},
    {&TW_NET_CONNECTION_REFUSED_ERROR, "ConnectionRefusedError",
     "error.ConnectError", &TW_CONNECT_ERROR},
    {&TW_TCP_TIMED_OUT_ERROR, "TCPTimedOutError", "error.ConnectError",
     &TW_CONNECT_ERROR},
    {&TW_USER_ERROR, "UserError", "error.ConnectError", &TW_CONNECT_ERROR},
    {&TW_NET_TIMEOUT_ERROR, "TimeoutError", "error.UserError",
     &TW_USER_ERROR},
    {&TW_CONNECTION_CLOSED, "ConnectionClosed", "builtins.Exception",
     &TW_ERROR},
    {&TW_CONNECTION_LOST, "ConnectionLost", "error.ConnectionClosed",
     &TW_CONNECTION_CLOSED},
    {&TW_CONNECTION_ABORTED, "ConnectionAborted", "error.ConnectionLost",
     &TW_CONNECTION_LOST},
    {&TW_CONNECTION_DONE, "ConnectionDone", "error.ConnectionClosed",
     &TW_CONNECTION_CLOSED},
    {&TW_NOT_CONNECTING_ERROR, "NotConnectingError", "builtins.RuntimeError",
     &TW_RUNTIME_ERROR},
    {&TW_NOT_LISTENING_ERROR, "NotListeningError", "builtins.RuntimeError",
     &TW_RUNTIME_ERROR},
    {&TW_DNS_LOOKUP_ERROR, "DNSLookupError", "builtins.OSError",
     &TW_OS_ERROR},
};

TWT_TEST(protocol, error_types_hierarchy) {
  size_t i;
  for (i = 0; i < sizeof errors / sizeof errors[0]; i++) {
    cr_assert_str_eq(errors[i].type->name, errors[i].name);
    cr_assert_eq(errors[i].type->base, errors[i].base_type, "%s",
                 errors[i].name);
    cr_assert(tw_error_type_is(errors[i].type, &TW_ERROR));
  }
  /* The chains Twisted code relies on: reason.check(ConnectionLost) for an
   * abort, ConnectionClosed for every close. */
  cr_assert(tw_error_type_is(&TW_CONNECTION_ABORTED, &TW_CONNECTION_LOST));
  cr_assert(tw_error_type_is(&TW_CONNECTION_ABORTED, &TW_CONNECTION_CLOSED));
  cr_assert_not(tw_error_type_is(&TW_CONNECTION_DONE, &TW_CONNECTION_LOST));
  cr_assert(tw_error_type_is(&TW_NET_TIMEOUT_ERROR, &TW_CONNECT_ERROR));
  cr_assert_not(tw_error_type_is(&TW_NET_TIMEOUT_ERROR, &TW_TIMEOUT_ERROR));
  cr_assert_not(tw_error_type_is(&TW_NET_CONNECTION_REFUSED_ERROR,
                                 &TW_OS_ERROR));
}

/* Runs python3 (Twisted 22.4) with a script; NULL when it cannot. */
static FILE *twisted_python(const char *script) {
  char cmd[4096];
  if (access("/usr/bin/python3", X_OK) != 0) return NULL;
  if (system("/usr/bin/python3 -c 'import twisted.internet.error' "
             ">/dev/null 2>&1") != 0)
    return NULL;
  snprintf(cmd, sizeof cmd, "/usr/bin/python3 -c \"%s\" 2>/dev/null", script);
  return popen(cmd, "r");
}

TWT_TEST(protocol, error_types_against_twisted) {
  char line[256], expect[256];
  size_t i;
  FILE *py = twisted_python(
      "from twisted.internet import error\n"
      "import sys\n"
      "for n in sys.argv[1:] or ['BindError','CannotListenError',"
      "'ConnectError','ConnectBindError','UnknownHostError','NoRouteError',"
      "'ConnectionRefusedError','TCPTimedOutError','UserError',"
      "'TimeoutError','ConnectionClosed','ConnectionLost',"
      "'ConnectionAborted','ConnectionDone','NotConnectingError',"
      "'NotListeningError','DNSLookupError']:\n"
      "  b = getattr(error, n).__bases__[0]\n"
      "  print(n, b.__module__.replace('twisted.internet.', '') + '.' + "
      "b.__name__)\n");
  if (py == NULL) cr_skip_test("no python3 with Twisted");
  for (i = 0; i < sizeof errors / sizeof errors[0]; i++) {
    cr_assert_not_null(fgets(line, sizeof line, py));
    line[strcspn(line, "\n")] = '\0';
    snprintf(expect, sizeof expect, "%s %s", errors[i].name, errors[i].base);
    cr_assert_str_eq(line, expect);
  }
  cr_assert_eq(pclose(py), 0);
}

/* ---- addresses ----------------------------------------------------------- */

static tw_address ip(int family, int type, const char *host, int port) {
  tw_address a;
  memset(&a, 0, sizeof a);
  a.family = family;
  a.type = type;
  cr_assert_lt(strlen(host), sizeof a.host);
  memcpy(a.host, host, strlen(host) + 1);
  a.port = port;
  return a;
}

static tw_address unix_addr(const char *name) {
  tw_address a;
  memset(&a, 0, sizeof a);
  a.family = TW_ADDRESS_UNIX;
  cr_assert_lt(strlen(name), sizeof a.name);
  memcpy(a.name, name, strlen(name) + 1);
  return a;
}

static void assert_format(const tw_address *a, const char *expect) {
  char buf[256];
  int n = tw_address_format(a, buf, sizeof buf);
  cr_assert_eq(n, (int)strlen(expect), "%d for %s", n, expect);
  cr_assert_str_eq(buf, expect);
}

static tw_address v6_scoped(void) {
  tw_address a = ip(TW_ADDRESS_IPV6, TW_ADDRESS_UDP, "::1", 8080);
  a.flow_info = 1;
  a.scope_id = 2;
  return a;
}

TWT_TEST(protocol, address_repr) {
  tw_address a = ip(TW_ADDRESS_IPV4, TW_ADDRESS_TCP, "127.0.0.1", 8080);
  tw_address b = ip(TW_ADDRESS_IPV6, TW_ADDRESS_TCP, "::1", 8080);
  tw_address c = v6_scoped();
  tw_address u = unix_addr("/tmp/s");
  tw_address none = unix_addr("");
  tw_address q = unix_addr("/tmp/a'b");
  tw_address bs = unix_addr("/tmp/a\\b\"c");
  tw_address tab = unix_addr("/tmp/a\tb");
  assert_format(&a, "IPv4Address(type='TCP', host='127.0.0.1', port=8080)");
  assert_format(&b, "IPv6Address(type='TCP', host='::1', port=8080, "
                    "flowInfo=0, scopeID=0)");
  assert_format(&c, "IPv6Address(type='UDP', host='::1', port=8080, "
                    "flowInfo=1, scopeID=2)");
  assert_format(&u, "UNIXAddress('/tmp/s')");
  assert_format(&none, "UNIXAddress(None)");
  assert_format(&q, "UNIXAddress(\"/tmp/a'b\")");
  assert_format(&bs, "UNIXAddress('/tmp/a\\\\b\"c')");
  assert_format(&tab, "UNIXAddress('/tmp/a\\tb')");
}

TWT_TEST(protocol, address_repr_against_twisted) {
  const char *expect[4];
  char line[256], buf[256];
  tw_address a = ip(TW_ADDRESS_IPV4, TW_ADDRESS_TCP, "127.0.0.1", 8080);
  tw_address b = v6_scoped();
  tw_address u = unix_addr("/tmp/a'b");
  tw_address n = unix_addr("");
  const tw_address *all[4] = {&a, &b, &u, &n};
  size_t i;
  FILE *py = twisted_python(
      "from twisted.internet.address import *\n"
      "print(repr(IPv4Address('TCP', '127.0.0.1', 8080)))\n"
      "print(repr(IPv6Address('UDP', '::1', 8080, 1, 2)))\n"
      "print(repr(UNIXAddress('/tmp/a' + chr(39) + 'b')))\n"
      "print(repr(UNIXAddress(None)))\n");
  (void)expect;
  if (py == NULL) cr_skip_test("no python3 with Twisted");
  for (i = 0; i < 4; i++) {
    cr_assert_not_null(fgets(line, sizeof line, py));
    line[strcspn(line, "\n")] = '\0';
    cr_assert_gt(tw_address_format(all[i], buf, sizeof buf), 0);
    cr_assert_str_eq(buf, line);
  }
  cr_assert_eq(pclose(py), 0);
}

TWT_TEST(protocol, address_format_truncates_like_snprintf) {
  tw_address a = ip(TW_ADDRESS_IPV4, TW_ADDRESS_TCP, "127.0.0.1", 80);
  const char *full = "IPv4Address(type='TCP', host='127.0.0.1', port=80)";
  char buf[10];
  memset(buf, 'x', sizeof buf);
  cr_assert_eq(tw_address_format(&a, buf, sizeof buf), (int)strlen(full));
  cr_assert_str_eq(buf, "IPv4Addre");
  cr_assert_eq(tw_address_format(&a, NULL, 0), (int)strlen(full));
  cr_assert_eq(tw_address_format(&a, buf, 1), (int)strlen(full));
  cr_assert_str_eq(buf, "");
}

TWT_TEST(protocol, address_format_bad_input) {
  char buf[64] = "unchanged";
  tw_address a = ip(TW_ADDRESS_IPV4, TW_ADDRESS_TCP, "127.0.0.1", 80);
  tw_address bad = a;
  cr_assert_eq(tw_address_format(NULL, buf, sizeof buf), TW_EINVAL);
  cr_assert_eq(tw_address_format(&a, NULL, 5), TW_EINVAL);
  bad.family = 0;
  cr_assert_eq(tw_address_format(&bad, buf, sizeof buf), TW_EINVAL);
  bad.family = 99;
  cr_assert_eq(tw_address_format(&bad, buf, sizeof buf), TW_EINVAL);
  bad = a;
  bad.type = 7;
  cr_assert_eq(tw_address_format(&bad, buf, sizeof buf), TW_EINVAL);
  bad = a;
  memset(bad.host, 'h', sizeof bad.host); /* not terminated */
  cr_assert_eq(tw_address_format(&bad, buf, sizeof buf), TW_EINVAL);
  bad = unix_addr("x");
  memset(bad.name, 'n', sizeof bad.name);
  cr_assert_eq(tw_address_format(&bad, buf, sizeof buf), TW_EINVAL);
  cr_assert_str_eq(buf, "unchanged");
}

/* test_address.py: equality compares every field (IPv6's flowInfo and
 * scopeID too, type too); UNIX names compare by file. */
TWT_TEST(protocol, address_equality) {
  tw_address a = ip(TW_ADDRESS_IPV4, TW_ADDRESS_TCP, "127.0.0.1", 1);
  tw_address b = a, c;
  tw_address v6 = ip(TW_ADDRESS_IPV6, TW_ADDRESS_TCP, "::1", 1), v6b;
  cr_assert_eq(tw_address_equal(&a, &b), 1);
  b.type = TW_ADDRESS_UDP;
  cr_assert_eq(tw_address_equal(&a, &b), 0);
  b = a;
  b.port = 2;
  cr_assert_eq(tw_address_equal(&a, &b), 0);
  b = a;
  snprintf(b.host, sizeof b.host, "127.0.0.2");
  cr_assert_eq(tw_address_equal(&a, &b), 0);
  b = a;
  b.flow_info = 9; /* not an IPv4 field */
  cr_assert_eq(tw_address_equal(&a, &b), 1);
  v6b = v6;
  cr_assert_eq(tw_address_equal(&v6, &v6b), 1);
  v6b.scope_id = 5;
  cr_assert_eq(tw_address_equal(&v6, &v6b), 0);
  v6b = v6;
  v6b.flow_info = 5;
  cr_assert_eq(tw_address_equal(&v6, &v6b), 0);
  c = ip(TW_ADDRESS_IPV6, TW_ADDRESS_TCP, "127.0.0.1", 1);
  cr_assert_eq(tw_address_equal(&a, &c), 0);
  cr_assert_eq(tw_address_equal(NULL, &a), 0);
  cr_assert_eq(tw_address_equal(&a, NULL), 0);
  memset(&c, 0, sizeof c);
  cr_assert_eq(tw_address_equal(&c, &c), 0); /* unset: no endpoint */
}

TWT_TEST(protocol, unix_address_equality) {
  char dir[] = "/tmp/twuv-addr-XXXXXX", path[128], link_path[128];
  tw_address none1 = unix_addr(""), none2 = unix_addr("");
  tw_address a, b, other;
  FILE *f;
  cr_assert_eq(tw_address_equal(&none1, &none2), 1);
  cr_assert_not_null(mkdtemp(dir));
  snprintf(path, sizeof path, "%s/sock", dir);
  snprintf(link_path, sizeof link_path, "%s/link", dir);
  f = fopen(path, "w");
  cr_assert_not_null(f);
  fclose(f);
  cr_assert_eq(symlink(path, link_path), 0);
  a = unix_addr(path);
  b = unix_addr(link_path);
  other = unix_addr("/nonexistent/twuv");
  /* test_address.py test_comparisonOfLinkedFiles: samefile. */
  cr_assert_eq(tw_address_equal(&a, &b), 1);
  cr_assert_eq(tw_address_equal(&a, &other), 0);
  cr_assert_eq(tw_address_equal(&a, &none1), 0);
  unlink(link_path);
  unlink(path);
  rmdir(dir);
  /* Once gone, only the names count. */
  cr_assert_eq(tw_address_equal(&a, &b), 0);
  cr_assert_eq(tw_address_equal(&a, &a), 1);
}

/* ---- protocols and factories ---------------------------------------------- */

static const tw_protocol_ops empty_ops = {0};

TWT_TEST(protocol, protocol_init) {
  tw_protocol p;
  memset(&p, 0xab, sizeof p);
  cr_assert_eq(tw_protocol_init(&p, &empty_ops), 0);
  cr_assert_eq(p.ops, &empty_ops);
  cr_assert_null(p.transport);
  cr_assert_null(p.factory);
  cr_assert_eq(p.connected, 0);
  cr_assert_null(p.dealloc);
  cr_assert_null(p.data);
  cr_assert_eq(tw_protocol_init(NULL, &empty_ops), TW_EINVAL);
  memset(&p, 0xab, sizeof p);
  cr_assert_eq(tw_protocol_init(&p, NULL), TW_EINVAL);
  cr_assert_eq(((unsigned char *)&p)[0], 0xab); /* unchanged */
}

static int starts, stops;
static void on_start(tw_factory *f) {
  (void)f;
  starts++;
}
static void on_stop(tw_factory *f) {
  (void)f;
  stops++;
}
static const tw_factory_ops counting_ops = {.start_factory = on_start,
                                            .stop_factory = on_stop};

/* FactoryTests: doStart calls startFactory for the first port only,
 * doStop stopFactory for the last only. */
TWT_TEST(protocol, do_start_do_stop) {
  tw_factory f;
  starts = stops = 0;
  cr_assert_eq(tw_factory_init(&f, &counting_ops), 0);
  cr_assert_eq(tw_factory_do_start(&f), 0);
  cr_assert_eq(f.num_ports, 1);
  cr_assert_eq(starts, 1);
  cr_assert_eq(tw_factory_do_start(&f), 0);
  cr_assert_eq(f.num_ports, 2);
  cr_assert_eq(starts, 1);
  cr_assert_eq(tw_factory_do_stop(&f), 0);
  cr_assert_eq(stops, 0);
  cr_assert_eq(tw_factory_do_stop(&f), 0);
  cr_assert_eq(stops, 1);
  cr_assert_eq(f.num_ports, 0);
  /* A doStop too many does nothing (Twisted returns early). */
  cr_assert_eq(tw_factory_do_stop(&f), TW_EINVAL);
  cr_assert_eq(stops, 1);
  cr_assert_eq(f.num_ports, 0);
  /* Again from the start. */
  cr_assert_eq(tw_factory_do_start(&f), 0);
  cr_assert_eq(starts, 2);
  cr_assert_eq(tw_factory_do_stop(&f), 0);
  cr_assert_eq(stops, 2);
}

TWT_TEST(protocol, factory_without_callbacks) {
  tw_factory f;
  static const tw_factory_ops none = {0};
  cr_assert_eq(tw_factory_init(&f, &none), 0);
  cr_assert_eq(tw_factory_do_start(&f), 0);
  cr_assert_eq(tw_factory_do_stop(&f), 0);
  cr_assert_null(tw_factory_build_protocol(&f, NULL));
}

TWT_TEST(protocol, factory_bad_input) {
  tw_factory f;
  cr_assert_eq(tw_factory_init(NULL, &counting_ops), TW_EINVAL);
  cr_assert_eq(tw_factory_init(&f, NULL), TW_EINVAL);
  cr_assert_eq(tw_factory_do_start(NULL), TW_EINVAL);
  cr_assert_eq(tw_factory_do_stop(NULL), TW_EINVAL);
  cr_assert_null(tw_factory_build_protocol(NULL, NULL));
  cr_assert_eq(tw_factory_for_protocol(NULL, &empty_ops, sizeof(tw_protocol),
                                       NULL),
               TW_EINVAL);
  cr_assert_eq(tw_factory_for_protocol(&f, NULL, sizeof(tw_protocol), NULL),
               TW_EINVAL);
  cr_assert_eq(tw_factory_for_protocol(&f, &empty_ops,
                                       sizeof(tw_protocol) - 1, NULL),
               TW_EINVAL);
}

typedef struct {
  tw_protocol base;
  long counter;
  char tail[40];
} my_protocol;

static int lost_calls;
static void my_lost(tw_protocol *p, tw_failure *reason) {
  (void)reason;
  cr_assert_eq(((my_protocol *)p)->counter, 7);
  lost_calls++;
}
static const tw_protocol_ops my_ops = {.connection_lost = my_lost};

/* Factory.forProtocol: a zeroed protocol of the size given, with its
 * factory set, freed after connection_lost (the leak check proves it). */
TWT_TEST(protocol, for_protocol) {
  tw_factory f;
  tw_string_transport *st;
  my_protocol *p;
  size_t i;
  lost_calls = 0;
  starts = 0;
  cr_assert_eq(tw_factory_for_protocol(&f, &my_ops, sizeof(my_protocol),
                                       &counting_ops),
               0);
  cr_assert_eq(f.protocol_size, sizeof(my_protocol));
  cr_assert_eq(tw_factory_do_start(&f), 0);
  cr_assert_eq(starts, 1);
  p = (my_protocol *)tw_factory_build_protocol(&f, NULL);
  cr_assert_not_null(p);
  cr_assert_eq(p->base.ops, &my_ops);
  cr_assert_eq(p->base.factory, &f);
  cr_assert_not_null(p->base.dealloc);
  cr_assert_eq(p->counter, 0);
  for (i = 0; i < sizeof p->tail; i++) cr_assert_eq(p->tail[i], 0);
  p->counter = 7;
  cr_assert_eq(tw_string_transport_new(&st, NULL, NULL, 0), 0);
  cr_assert_eq(tw_string_transport_connect(st, &p->base), 0);
  cr_assert_eq(tw_string_transport_lose(st, NULL), 0);
  cr_assert_eq(lost_calls, 1);
  tw_string_transport_free(st);
  cr_assert_eq(tw_factory_do_stop(&f), 0);
}

TWT_TEST(protocol, for_protocol_out_of_memory) {
  tw_factory f;
  cr_assert_eq(tw_factory_for_protocol(&f, &my_ops, sizeof(my_protocol),
                                       NULL),
               0);
  twt_alloc_fail_nth(1);
  cr_assert_null(tw_factory_build_protocol(&f, NULL));
  twt_alloc_fail_nth(0);
}

static tw_address seen_addr;
static tw_protocol built;
static tw_protocol *build(tw_factory *f, const tw_address *addr) {
  (void)f;
  seen_addr = *addr;
  tw_protocol_init(&built, &empty_ops);
  return &built;
}
static tw_protocol *refuse(tw_factory *f, const tw_address *addr) {
  (void)f;
  (void)addr;
  return NULL;
}

TWT_TEST(protocol, build_protocol) {
  tw_factory f;
  static const tw_factory_ops ops = {.build_protocol = build};
  static const tw_factory_ops refusing = {.build_protocol = refuse};
  tw_address a = ip(TW_ADDRESS_IPV4, TW_ADDRESS_TCP, "127.0.0.1", 5);
  cr_assert_eq(tw_factory_init(&f, &ops), 0);
  cr_assert_eq(tw_factory_build_protocol(&f, &a), &built);
  cr_assert_eq(built.factory, &f);
  cr_assert(tw_address_equal(&seen_addr, &a));
  cr_assert_eq(tw_factory_init(&f, &refusing), 0);
  cr_assert_null(tw_factory_build_protocol(&f, &a));
  /* forProtocol ignores a build_protocol given in ops. */
  cr_assert_eq(tw_factory_for_protocol(&f, &my_ops, sizeof(tw_protocol), &ops),
               0);
  {
    tw_protocol *p = tw_factory_build_protocol(&f, &a);
    cr_assert_neq(p, &built);
    cr_assert_eq(p->ops, &my_ops);
    p->dealloc(p);
  }
}

/* ---- tw_transport_* argument checks ------------------------------------------ */

TWT_TEST(protocol, transport_null) {
  tw_address a;
  tw_producer prod = {0};
  tw_iovec v = {"x", 1};
  cr_assert_eq(tw_transport_write(NULL, "x", 1), TW_EINVAL);
  cr_assert_eq(tw_transport_write_sequence(NULL, &v, 1), TW_EINVAL);
  cr_assert_eq(tw_transport_lose_connection(NULL), TW_EINVAL);
  cr_assert_eq(tw_transport_abort_connection(NULL), TW_EINVAL);
  cr_assert_eq(tw_transport_lose_write_connection(NULL), TW_EINVAL);
  cr_assert_eq(tw_transport_get_peer(NULL, &a), TW_EINVAL);
  cr_assert_eq(tw_transport_get_host(NULL, &a), TW_EINVAL);
  cr_assert_eq(tw_transport_set_tcp_nodelay(NULL, 1), TW_EINVAL);
  cr_assert_eq(tw_transport_set_tcp_keepalive(NULL, 1), TW_EINVAL);
  cr_assert_eq(tw_transport_get_tcp_nodelay(NULL), 0);
  cr_assert_eq(tw_transport_get_tcp_keepalive(NULL), 0);
  cr_assert_eq(tw_transport_pause_producing(NULL), TW_EINVAL);
  cr_assert_eq(tw_transport_resume_producing(NULL), TW_EINVAL);
  cr_assert_eq(tw_transport_stop_producing(NULL), TW_EINVAL);
  cr_assert_eq(tw_transport_register_producer(NULL, &prod, 1), TW_EINVAL);
  cr_assert_eq(tw_transport_unregister_producer(NULL), TW_EINVAL);
  cr_assert_eq(tw_transport_disconnecting(NULL), 0);
  cr_assert_eq(tw_transport_connected(NULL), 0);
  cr_assert_eq(tw_transport_buffered(NULL), 0);
}

static tw_failure *nothing(tw_producer *p) {
  (void)p;
  return NULL;
}
static const tw_producer_ops nothing_ops = {nothing, nothing, nothing};

TWT_TEST(protocol, transport_bad_arguments) {
  tw_string_transport *st;
  tw_transport *t;
  tw_producer prod = {&nothing_ops, NULL}, no_ops = {NULL, NULL};
  tw_iovec bad[2] = {{"a", 1}, {NULL, 3}};
  cr_assert_eq(tw_string_transport_new(&st, NULL, NULL, 0), 0);
  t = tw_string_transport_transport(st);
  cr_assert_eq(tw_transport_write(t, NULL, 1), TW_EINVAL);
  cr_assert_eq(tw_transport_write(t, NULL, 0), 0);
  cr_assert_eq(tw_transport_write_sequence(t, NULL, 1), TW_EINVAL);
  cr_assert_eq(tw_transport_write_sequence(t, bad, 2), TW_EINVAL);
  cr_assert_eq(tw_transport_write_sequence(t, NULL, 0), 0);
  cr_assert_eq(tw_transport_get_peer(t, NULL), TW_EINVAL);
  cr_assert_eq(tw_transport_get_host(t, NULL), TW_EINVAL);
  cr_assert_eq(tw_transport_register_producer(t, NULL, 1), TW_EINVAL);
  cr_assert_eq(tw_transport_register_producer(t, &no_ops, 1), TW_EINVAL);
  cr_assert_eq(tw_transport_register_producer(t, &prod, 2), TW_EINVAL);
  cr_assert_null(tw_string_transport_producer(st));
  /* Not a TCP transport. */
  cr_assert_eq(tw_transport_set_tcp_nodelay(t, 1), TW_ENOTSUP);
  cr_assert_eq(tw_transport_set_tcp_keepalive(t, 1), TW_ENOTSUP);
  cr_assert_eq(tw_transport_get_tcp_nodelay(t), 0);
  /* The string transport takes a half-close (testing.h). */
  cr_assert_eq(tw_transport_lose_write_connection(t), 0);
  cr_assert_eq(tw_string_transport_value(st, NULL)[0], '\0');
  cr_assert_eq(tw_transport_disconnecting(t), 0);
  tw_string_transport_free(st);
}

typedef struct {
  tw_transport *t;
  int rc[12];
} thread_calls;

static void *other_thread(void *arg) {
  thread_calls *c = arg;
  tw_address a;
  tw_producer prod = {&nothing_ops, NULL};
  tw_iovec v = {"x", 1};
  c->rc[0] = tw_transport_write(c->t, "x", 1);
  c->rc[1] = tw_transport_write_sequence(c->t, &v, 1);
  c->rc[2] = tw_transport_lose_connection(c->t);
  c->rc[3] = tw_transport_abort_connection(c->t);
  c->rc[4] = tw_transport_get_peer(c->t, &a);
  c->rc[5] = tw_transport_get_host(c->t, &a);
  c->rc[6] = tw_transport_pause_producing(c->t);
  c->rc[7] = tw_transport_resume_producing(c->t);
  c->rc[8] = tw_transport_stop_producing(c->t);
  c->rc[9] = tw_transport_register_producer(c->t, &prod, 1);
  c->rc[10] = tw_transport_unregister_producer(c->t);
  c->rc[11] = tw_transport_set_tcp_nodelay(c->t, 1);
  return NULL;
}

/* Every call from a thread other than the owner's: TW_EWRONGTHREAD, and
 * nothing changed. */
TWT_TEST(protocol, transport_wrong_thread) {
  tw_string_transport *st;
  thread_calls c;
  pthread_t th;
  size_t i, len;
  cr_assert_eq(tw_string_transport_new(&st, NULL, NULL, 0), 0);
  c.t = tw_string_transport_transport(st);
  cr_assert_eq(pthread_create(&th, NULL, other_thread, &c), 0);
  cr_assert_eq(pthread_join(th, NULL), 0);
  for (i = 0; i < 12; i++) cr_assert_eq(c.rc[i], TW_EWRONGTHREAD, "call %zu", i);
  tw_string_transport_value(st, &len);
  cr_assert_eq(len, 0);
  cr_assert_eq(tw_string_transport_disconnecting(st), 0);
  cr_assert_null(tw_string_transport_producer(st));
  cr_assert_str_eq(tw_string_transport_producer_state(st), "producing");
  tw_string_transport_free(st);
}
