/*
 * tests/test_endpoints.c - endpoints.h: the description-string tests of
 * Twisted 22.4's twisted/internet/test/test_endpoints.py (ParserTests,
 * ServerStringTests, ClientStringTests, TCP6ServerEndpointPluginTests,
 * plugins as registered parsers), the descriptions compared with what real
 * Twisted makes of them (tests/twisted_endpoints_oracle.py), twuv's own
 * edges (bad input, the registry, the departures endpoints.h lists), and
 * endpoints over loopback: listen, connect with _WrappingFactory's
 * semantics, cancellation (WrappingFactoryTests,
 * ClientEndpointTestCaseMixin, ConnectProtocolTests).
 *
 * Network tests bind 127.0.0.1, ::1 or a UNIX path in a mkdtemp directory,
 * port 0, numeric hosts only; every loop is bounded by a safety timer that
 * fails the test.
 */
#include <math.h>
#include <stdint.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "twtest.h"

TWT_SUITE(endpoints);

/* ---- helpers ------------------------------------------------------------------ */

static tw_reactor *R;

static tw_endpoint *server(const char *d) {
  tw_endpoint *ep = NULL;
  tw_failure *why = NULL;
  int rc = tw_server_from_string(&ep, R, d, &why);
  cr_assert_eq(rc, 0, "server %s: %d %s", d, rc, tw_failure_message(why));
  cr_assert_null(why);
  return ep;
}

static tw_endpoint *client(const char *d) {
  tw_endpoint *ep = NULL;
  tw_failure *why = NULL;
  int rc = tw_client_from_string(&ep, R, d, &why);
  cr_assert_eq(rc, 0, "client %s: %d %s", d, rc, tw_failure_message(why));
  cr_assert_null(why);
  return ep;
}

static tw_endpoint_info info(tw_endpoint *ep) {
  tw_endpoint_info i;
  cr_assert_eq(tw_endpoint_get_info(ep, &i), 0);
  return i;
}

/* The description is refused with TW_EINVAL and a failure of type t whose
 * message contains text (NULL: any). */
static void refused(int is_server, const char *d, const tw_error_type *t,
                    const char *text) {
  tw_endpoint *ep = NULL;
  tw_failure *why = NULL;
  int rc = is_server ? tw_server_from_string(&ep, R, d, &why)
                     : tw_client_from_string(&ep, R, d, &why);
  cr_assert_eq(rc, TW_EINVAL, "%s %s: %d", is_server ? "server" : "client", d,
               rc);
  cr_assert_null(ep);
  cr_assert_not_null(why);
  cr_assert_eq(tw_failure_type(why), t, "%s: %s: %s", d,
               tw_failure_type(why)->name, tw_failure_message(why));
  if (text != NULL)
    cr_assert(strstr(tw_failure_message(why), text) != NULL,
              "%s: '%s' lacks '%s'", d, tw_failure_message(why), text);
  tw_failure_unref(why);
}

static void setup_reactor(void) { R = twt_new_reactor(0); }
static void free_reactor(void) {
  twt_free_reactor(R);
  R = NULL;
}

/* ==== ParserTests (endpoints._parseServer) =====================================
 * These only parse descriptions (Twisted's own ParserTests use port 80 too):
 * nothing here binds a socket; tests that listen use port 0. */

TWT_TEST(endpoints, test_simple_tcp) {
  setup_reactor();
  tw_endpoint *ep = server("tcp:80");
  tw_endpoint_info i = info(ep);
  cr_assert_eq(i.kind, TW_ENDPOINT_TCP4_SERVER);
  cr_assert_eq(i.port, 80);
  cr_assert_str_eq(i.host, "");
  cr_assert_eq(i.backlog, 50);
  tw_endpoint_free(ep);
  free_reactor();
}

TWT_TEST(endpoints, test_interface_tcp) {
  setup_reactor();
  tw_endpoint *ep = server("tcp:80:interface=127.0.0.1");
  tw_endpoint_info i = info(ep);
  cr_assert_eq(i.port, 80);
  cr_assert_str_eq(i.host, "127.0.0.1");
  cr_assert_eq(i.backlog, 50);
  tw_endpoint_free(ep);
  free_reactor();
}

TWT_TEST(endpoints, test_backlog_tcp) {
  setup_reactor();
  tw_endpoint *ep = server("tcp:80:backlog=6");
  tw_endpoint_info i = info(ep);
  cr_assert_eq(i.port, 80);
  cr_assert_str_eq(i.host, "");
  cr_assert_eq(i.backlog, 6);
  tw_endpoint_free(ep);
  free_reactor();
}

TWT_TEST(endpoints, test_simple_unix) {
  setup_reactor();
  tw_endpoint *ep = server("unix:/var/run/finger");
  tw_endpoint_info i = info(ep);
  cr_assert_eq(i.kind, TW_ENDPOINT_UNIX_SERVER);
  cr_assert_str_eq(i.path, "/var/run/finger");
  cr_assert_eq(i.mode, 0666);
  cr_assert_eq(i.backlog, 50);
  cr_assert_eq(i.lock_pid, 1);
  tw_endpoint_free(ep);
  free_reactor();
}

TWT_TEST(endpoints, test_mode_unix) {
  setup_reactor();
  tw_endpoint *ep = server("unix:/var/run/finger:mode=0660");
  tw_endpoint_info i = info(ep);
  cr_assert_eq(i.mode, 0660);
  cr_assert_eq(i.backlog, 50);
  cr_assert_eq(i.lock_pid, 1);
  tw_endpoint_free(ep);
  free_reactor();
}

TWT_TEST(endpoints, test_want_pid_unix) {
  setup_reactor();
  tw_endpoint *ep = server("unix:/var/run/finger:lockfile=0");
  tw_endpoint_info i = info(ep);
  cr_assert_eq(i.mode, 0666);
  cr_assert_eq(i.lock_pid, 0);
  tw_endpoint_free(ep);
  free_reactor();
}

TWT_TEST(endpoints, test_escape) {
  setup_reactor();
  tw_endpoint *ep = server("unix:foo\\:bar\\=baz\\:qux\\\\");
  cr_assert_str_eq(info(ep).path, "foo:bar=baz:qux\\");
  tw_endpoint_free(ep);
  free_reactor();
}

TWT_TEST(endpoints, test_quote_string_argument) {
  char buf[64];
  cr_assert_eq(tw_endpoint_quote("some : stuff \\", buf, sizeof buf), 16);
  cr_assert_str_eq(buf, "some \\: stuff \\\\");
}

TWT_TEST(endpoints, test_implied_escape) {
  setup_reactor();
  tw_endpoint *ep = server("unix:address=foo=bar");
  cr_assert_str_eq(info(ep).path, "foo=bar");
  tw_endpoint_free(ep);
  free_reactor();
}

TWT_TEST(endpoints, test_unknown_type_parser) {
  setup_reactor();
  refused(1, "bogus-type:nothing", &TW_VALUE_ERROR, NULL);
  free_reactor();
}

/* ==== ServerStringTests ============================================================= */

TWT_TEST(endpoints, test_server_tcp) {
  setup_reactor();
  tw_endpoint *ep = server("tcp:1234:backlog=12:interface=10.0.0.1");
  tw_endpoint_info i = info(ep);
  cr_assert_eq(i.kind, TW_ENDPOINT_TCP4_SERVER);
  cr_assert_eq(tw_endpoint_reactor(ep), R);
  cr_assert_eq(i.port, 1234);
  cr_assert_eq(i.backlog, 12);
  cr_assert_str_eq(i.host, "10.0.0.1");
  tw_endpoint_free(ep);
  free_reactor();
}

TWT_TEST(endpoints, test_server_unix) {
  setup_reactor();
  tw_endpoint *ep = server("unix:/var/foo/bar:backlog=7:mode=0123:lockfile=1");
  tw_endpoint_info i = info(ep);
  cr_assert_eq(i.kind, TW_ENDPOINT_UNIX_SERVER);
  cr_assert_eq(tw_endpoint_reactor(ep), R);
  cr_assert_str_eq(i.path, "/var/foo/bar");
  cr_assert_eq(i.backlog, 7);
  cr_assert_eq(i.mode, 0123);
  cr_assert_eq(i.lock_pid, 1);
  tw_endpoint_free(ep);
  free_reactor();
}

TWT_TEST(endpoints, test_server_unknown_type) {
  setup_reactor();
  refused(1, "ftl:andromeda/carcosa/hali/2387", &TW_VALUE_ERROR,
          "Unknown endpoint type: 'ftl'");
  free_reactor();
}

/* A registered parser stands for Twisted's fake plugin (fakeendpoint.py):
 * it records what it was given and makes a custom endpoint. */
typedef struct fake_seen {
  tw_reactor *r;
  char prefix[16];
  char args[4][16];
  size_t nargs;
  char kw[4][2][16];
  size_t nkw;
  void *arg;
  int destroyed;
} fake_seen;

static fake_seen seen;

static void fake_destroy(void *data) { ((fake_seen *)data)->destroyed++; }
static const tw_endpoint_ops fake_ops = {NULL, NULL, fake_destroy};

static int fake_parser(tw_endpoint **out, tw_reactor *r,
                       const tw_endpoint_args *a, void *arg,
                       tw_failure **error) {
  size_t i;
  (void)error;
  memset(&seen, 0, sizeof seen);
  seen.r = r;
  seen.arg = arg;
  snprintf(seen.prefix, sizeof seen.prefix, "%s", a->prefix);
  seen.nargs = a->nargs;
  for (i = 0; i < a->nargs && i < 4; i++)
    snprintf(seen.args[i], 16, "%s", a->args[i]);
  seen.nkw = a->nkwargs;
  for (i = 0; i < a->nkwargs && i < 4; i++) {
    snprintf(seen.kw[i][0], 16, "%s", a->kwargs[i].name);
    snprintf(seen.kw[i][1], 16, "%s", a->kwargs[i].value);
  }
  return tw_endpoint_new(out, r, &fake_ops, &seen);
}

TWT_TEST(endpoints, test_server_type_from_plugin) {
  setup_reactor();
  cr_assert_eq(tw_endpoint_register_parser("fake", fake_parser, NULL, (void *)R),
               0);
  tw_endpoint *ep = server("fake:hello:world:yes=no:up=down");
  cr_assert_eq(info(ep).kind, TW_ENDPOINT_CUSTOM);
  cr_assert_eq(tw_endpoint_data(ep), &seen);
  cr_assert_eq(seen.r, R);
  cr_assert_eq(seen.arg, (void *)R);
  cr_assert_str_eq(seen.prefix, "fake");
  cr_assert_eq(seen.nargs, 2);
  cr_assert_str_eq(seen.args[0], "hello");
  cr_assert_str_eq(seen.args[1], "world");
  cr_assert_eq(seen.nkw, 2);
  cr_assert_str_eq(seen.kw[0][0], "yes");
  cr_assert_str_eq(seen.kw[0][1], "no");
  cr_assert_str_eq(seen.kw[1][0], "up");
  cr_assert_str_eq(seen.kw[1][1], "down");
  tw_endpoint_free(ep);
  cr_assert_eq(seen.destroyed, 1);
  /* Server only: the client side does not know it. */
  refused(0, "fake:hello", &TW_VALUE_ERROR, "Unknown endpoint type: 'fake'");
  cr_assert_eq(tw_endpoint_unregister_parser("FAKE"), 0);
  refused(1, "fake:hello", &TW_VALUE_ERROR, "Unknown endpoint type: 'fake'");
  free_reactor();
}

/* ==== ClientStringTests ============================================================== */

TWT_TEST(endpoints, test_client_tcp) {
  setup_reactor();
  tw_endpoint *ep =
      client("tcp:host=example.com:port=1234:timeout=7:bindAddress=10.0.0.2");
  tw_endpoint_info i = info(ep);
  cr_assert_eq(i.kind, TW_ENDPOINT_TCP4_CLIENT);
  cr_assert_eq(tw_endpoint_reactor(ep), R);
  cr_assert_str_eq(i.host, "example.com");
  cr_assert_eq(i.port, 1234);
  cr_assert_eq(i.timeout, 7.0);
  cr_assert_eq(i.has_bind_address, 1);
  cr_assert_str_eq(i.bind_address.host, "10.0.0.2");
  cr_assert_eq(i.bind_address.port, 0);
  cr_assert_eq(i.bind_address.family, TW_ADDRESS_IPV4);
  tw_endpoint_free(ep);
  free_reactor();
}

TWT_TEST(endpoints, test_client_tcp_positional_args) {
  setup_reactor();
  tw_endpoint *ep =
      client("tcp:example.com:1234:timeout=7:bindAddress=10.0.0.2");
  tw_endpoint_info i = info(ep);
  cr_assert_eq(i.kind, TW_ENDPOINT_TCP4_CLIENT);
  cr_assert_str_eq(i.host, "example.com");
  cr_assert_eq(i.port, 1234);
  cr_assert_eq(i.timeout, 7.0);
  cr_assert_str_eq(i.bind_address.host, "10.0.0.2");
  tw_endpoint_free(ep);
  free_reactor();
}

TWT_TEST(endpoints, test_client_tcp_host_positional_arg) {
  setup_reactor();
  tw_endpoint *ep =
      client("tcp:example.com:port=1234:timeout=7:bindAddress=10.0.0.2");
  cr_assert_str_eq(info(ep).host, "example.com");
  cr_assert_eq(info(ep).port, 1234);
  tw_endpoint_free(ep);
  free_reactor();
}

TWT_TEST(endpoints, test_client_tcp_port_positional_arg) {
  setup_reactor();
  tw_endpoint *ep =
      client("tcp:host=example.com:1234:timeout=7:bindAddress=10.0.0.2");
  cr_assert_str_eq(info(ep).host, "example.com");
  cr_assert_eq(info(ep).port, 1234);
  tw_endpoint_free(ep);
  free_reactor();
}

TWT_TEST(endpoints, test_client_tcp_defaults) {
  setup_reactor();
  tw_endpoint *ep = client("tcp:host=example.com:port=1234");
  cr_assert_eq(info(ep).timeout, 30.0);
  cr_assert_eq(info(ep).has_bind_address, 0);
  tw_endpoint_free(ep);
  free_reactor();
}

TWT_TEST(endpoints, test_client_unix) {
  setup_reactor();
  tw_endpoint *ep = client("unix:path=/var/foo/bar:lockfile=1:timeout=9");
  tw_endpoint_info i = info(ep);
  cr_assert_eq(i.kind, TW_ENDPOINT_UNIX_CLIENT);
  cr_assert_eq(tw_endpoint_reactor(ep), R);
  cr_assert_str_eq(i.path, "/var/foo/bar");
  cr_assert_eq(i.timeout, 9.0);
  cr_assert_eq(i.lock_pid, 1);
  tw_endpoint_free(ep);
  free_reactor();
}

TWT_TEST(endpoints, test_client_unix_defaults) {
  setup_reactor();
  tw_endpoint *ep = client("unix:path=/var/foo/bar");
  cr_assert_eq(info(ep).timeout, 30.0);
  cr_assert_eq(info(ep).lock_pid, 0);
  tw_endpoint_free(ep);
  free_reactor();
}

TWT_TEST(endpoints, test_client_unix_path_positional_arg) {
  setup_reactor();
  tw_endpoint *ep = client("unix:/var/foo/bar:lockfile=1:timeout=9");
  tw_endpoint_info i = info(ep);
  cr_assert_eq(i.kind, TW_ENDPOINT_UNIX_CLIENT);
  cr_assert_str_eq(i.path, "/var/foo/bar");
  cr_assert_eq(i.timeout, 9.0);
  cr_assert_eq(i.lock_pid, 1);
  tw_endpoint_free(ep);
  free_reactor();
}

TWT_TEST(endpoints, test_client_type_from_plugin) {
  setup_reactor();
  cr_assert_eq(tw_endpoint_register_parser("crfake", NULL, fake_parser, NULL),
               0);
  tw_endpoint *ep = client("crfake:alpha:beta:cee=dee:num=1");
  cr_assert_eq(seen.r, R); /* test_stringParserWithReactor */
  cr_assert_eq(seen.nargs, 2);
  cr_assert_str_eq(seen.args[0], "alpha");
  cr_assert_str_eq(seen.args[1], "beta");
  cr_assert_eq(seen.nkw, 2);
  cr_assert_str_eq(seen.kw[0][0], "cee");
  cr_assert_str_eq(seen.kw[0][1], "dee");
  cr_assert_str_eq(seen.kw[1][0], "num");
  cr_assert_str_eq(seen.kw[1][1], "1");
  tw_endpoint_free(ep);
  cr_assert_eq(tw_endpoint_unregister_parser("crfake"), 0);
  free_reactor();
}

TWT_TEST(endpoints, test_client_unknown_type) {
  setup_reactor();
  refused(0, "ftl:andromeda/carcosa/hali/2387", &TW_VALUE_ERROR,
          "Unknown endpoint type: 'ftl'");
  free_reactor();
}

/* ==== TCP6ServerEndpointPluginTests ================================================== */

TWT_TEST(endpoints, test_tcp6_server_endpoint_from_string) {
  setup_reactor();
  tw_endpoint *ep = server("tcp6:8080:backlog=12:interface=\\:\\:1");
  tw_endpoint_info i = info(ep);
  cr_assert_eq(i.kind, TW_ENDPOINT_TCP6_SERVER);
  cr_assert_eq(i.port, 8080);
  cr_assert_eq(i.backlog, 12);
  cr_assert_str_eq(i.host, "::1");
  tw_endpoint_free(ep);
  ep = server("TCP6:80"); /* a plugin: any case */
  cr_assert_str_eq(info(ep).host, "::");
  tw_endpoint_free(ep);
  ep = server("tcp6:80:1:\\:\\:1"); /* port, backlog, interface */
  cr_assert_eq(info(ep).backlog, 1);
  cr_assert_str_eq(info(ep).host, "::1");
  tw_endpoint_free(ep);
  free_reactor();
}

/* ==== twuv: Python's binding and int(), and what Twisted raises ====================== */

TWT_TEST(endpoints, python_binding_errors) {
  setup_reactor();
  refused(1, "tcp:80:foo=1", &TW_TYPE_ERROR,
          "unexpected keyword argument 'foo'");
  refused(1, "tcp:1:2:3:4:foo=1", &TW_TYPE_ERROR, "'foo'"); /* kw first */
  refused(1, "tcp:1:2:3:4", &TW_TYPE_ERROR,
          "takes at most 3 positional arguments (4 given)");
  refused(1, "tcp:80:port=81", &TW_TYPE_ERROR,
          "multiple values for argument 'port'");
  refused(1, "tcp:80:factory=1", &TW_TYPE_ERROR, "'factory'");
  refused(1, "tcp6:80:reactor=1", &TW_TYPE_ERROR, "'reactor'");
  refused(1, "tcp:interface=127.0.0.1", &TW_TYPE_ERROR,
          "missing required argument 'port'");
  refused(1, "tcp", &TW_TYPE_ERROR, "'port'");
  refused(1, "tcp:x:foo=1", &TW_TYPE_ERROR, NULL); /* binding before int() */
  refused(1, "tcp:=80", &TW_TYPE_ERROR, "''");
  refused(1, "unix:a:b:c:d:e", &TW_TYPE_ERROR, "(5 given)");
  refused(0, "tcp:host=h", &TW_TYPE_ERROR, "'port'");
  refused(0, "tcp:host=h:port=1:foo=1", &TW_TYPE_ERROR, "'foo'");
  refused(0, "tcp:host=h:port=x:foo=1", &TW_VALUE_ERROR, "'x'"); /* int() 1st */
  refused(0, "unix", &TW_TYPE_ERROR, "'path'");
  free_reactor();
}

TWT_TEST(endpoints, python_int) {
  setup_reactor();
  tw_endpoint *ep = server("tcp: 8_0 ");
  cr_assert_eq(info(ep).port, 80);
  tw_endpoint_free(ep);
  ep = server("tcp:+0080:backlog=\t7\n");
  cr_assert_eq(info(ep).port, 80);
  cr_assert_eq(info(ep).backlog, 7);
  tw_endpoint_free(ep);
  ep = server("unix:a:0o7_7");
  cr_assert_eq(info(ep).mode, 077);
  tw_endpoint_free(ep);
  ep = server("unix:a: +0O17 ");
  cr_assert_eq(info(ep).mode, 017);
  tw_endpoint_free(ep);
  ep = server("unix:a:lockfile=99999999999999999999999");
  cr_assert_eq(info(ep).lock_pid, 1); /* bool(int(...)) */
  tw_endpoint_free(ep);
  refused(1, "tcp:8__0", &TW_VALUE_ERROR,
          "port: invalid literal for int() with base 10: '8__0'");
  refused(1, "tcp:_80", &TW_VALUE_ERROR, "'_80'");
  refused(1, "tcp:80_", &TW_VALUE_ERROR, "'80_'");
  refused(1, "tcp:0x50", &TW_VALUE_ERROR, "'0x50'");
  refused(1, "tcp:8 0", &TW_VALUE_ERROR, "'8 0'");
  refused(1, "tcp:", &TW_VALUE_ERROR, "base 10: ''");
  refused(1, "unix:a:8", &TW_VALUE_ERROR,
          "mode: invalid literal for int() with base 8: '8'");
  refused(1, "unix:a:0o", &TW_VALUE_ERROR, "'0o'");
  refused(1, "tcp:80:backlog=x'y", &TW_VALUE_ERROR, "\"x'y\""); /* repr */
  refused(0, "tcp:host=h:port=1:timeout=1.5", &TW_VALUE_ERROR, "'1.5'");
  free_reactor();
}

TWT_TEST(endpoints, prefixes_and_tokens) {
  setup_reactor();
  /* serverFromString matches its built-ins exactly, tcp6 (a plugin) and
   * every client prefix in any case. */
  refused(1, "TCP:80", &TW_VALUE_ERROR, "Unknown endpoint type: 'tcp'");
  tw_endpoint *ep = client("Tcp:h:1");
  cr_assert_eq(info(ep).kind, TW_ENDPOINT_TCP4_CLIENT);
  tw_endpoint_free(ep);
  ep = client("UNIX:/x");
  cr_assert_eq(info(ep).kind, TW_ENDPOINT_UNIX_CLIENT);
  tw_endpoint_free(ep);
  /* Twisted has no tcp6 client parser, no ssl without TLS here. */
  refused(0, "tcp6:h:1", &TW_VALUE_ERROR, "Unknown endpoint type: 'tcp6'");
  refused(1, "ssl:443", &TW_VALUE_ERROR, "Unknown endpoint type: 'ssl'");
  refused(1, "", &TW_VALUE_ERROR, "Unknown endpoint type: ''");
  /* The prefix is the first positional argument, wherever it is. */
  refused(1, "a=b:tcp:80", &TW_TYPE_ERROR, "'a'");
  refused(1, "a=b", &TW_VALUE_ERROR, "no type prefix"); /* IndexError */
  refused(1, "tcp:80\\", &TW_RUNTIME_ERROR, "backslash");
  refused(0, "\\", &TW_RUNTIME_ERROR, NULL);
  /* A repeated keyword keeps its last value (a dict). */
  ep = server("tcp:port=1:port=2");
  cr_assert_eq(info(ep).port, 2);
  tw_endpoint_free(ep);
  free_reactor();
}

TWT_TEST(endpoints, departures_refuse_what_twisted_defers_or_drops) {
  setup_reactor();
  refused(1, "tcp:65536", &TW_VALUE_ERROR, "port '65536' out of range 0-65535");
  refused(1, "tcp:-1", &TW_VALUE_ERROR, "out of range");
  refused(1, "tcp:99999999999999999999999", &TW_VALUE_ERROR, "out of range");
  refused(1, "tcp:80:backlog=-1", &TW_VALUE_ERROR, "backlog");
  refused(1, "tcp:80:interface=localhost", &TW_VALUE_ERROR,
          "interface 'localhost' is not a numeric");
  refused(1, "unix:a:17777", &TW_VALUE_ERROR, "mode '17777' out of range");
  refused(1, "unix:", &TW_VALUE_ERROR, "empty");
  refused(0, "tcp:h:1:bindAddress=h", &TW_VALUE_ERROR, "bindAddress 'h'");
  refused(0, "tcp:h:1:timeout=0", &TW_VALUE_ERROR, "timeout");
  refused(0, "tcp::1", &TW_VALUE_ERROR, "host is empty");
  /* What _parseClientTCP/_parseClientUNIX would drop silently. */
  refused(0, "tcp:a:b:c:host=h:port=1", &TW_TYPE_ERROR, "(3 given)");
  refused(0, "tcp:h:80:host=x", &TW_TYPE_ERROR, "'host'");
  refused(0, "tcp:80:host=h:port=81", &TW_TYPE_ERROR, "'port'");
  refused(0, "unix:a:path=b", &TW_TYPE_ERROR, "'path'");
  refused(0, "unix:a:b", &TW_TYPE_ERROR, "(2 given)");
  {
    char path[200];
    memset(path, 'x', sizeof path);
    memcpy(path, "unix:", 5);
    path[5 + 108] = '\0';
    refused(1, path, &TW_VALUE_ERROR, "longer than a UNIX socket");
    path[5 + 107] = '\0';
    tw_endpoint *ep = server(path);
    tw_endpoint_free(ep);
  }
  {
    char *big = malloc(TW_ENDPOINT_DESCRIPTION_MAX + 2);
    cr_assert_not_null(big);
    memset(big, 'x', TW_ENDPOINT_DESCRIPTION_MAX + 1);
    big[TW_ENDPOINT_DESCRIPTION_MAX + 1] = '\0';
    refused(1, big, &TW_VALUE_ERROR, "longer than 16384");
    free(big);
  }
  free_reactor();
}

/* ==== twuv: the parse API, quoting, the registry, bad input ========================== */

TWT_TEST(endpoints, parse_api) {
  tw_endpoint_args *a = NULL;
  tw_failure *why = (tw_failure *)1;
  cr_assert_eq(tw_endpoint_parse(&a, "a:b:d=1:c:d=2:e=x=y", &why), 0);
  cr_assert_null(why);
  cr_assert_str_eq(a->prefix, "a");
  cr_assert_eq(a->nargs, 2);
  cr_assert_str_eq(a->args[0], "b");
  cr_assert_str_eq(a->args[1], "c");
  cr_assert_eq(a->nkwargs, 2);
  cr_assert_str_eq(a->kwargs[0].name, "d");
  cr_assert_str_eq(a->kwargs[0].value, "2");
  cr_assert_str_eq(tw_endpoint_args_get(a, "e"), "x=y");
  cr_assert_null(tw_endpoint_args_get(a, "z"));
  tw_endpoint_args_free(a);
  cr_assert_eq(tw_endpoint_parse(&a, "k=v", NULL), 0);
  cr_assert_null(a->prefix);
  cr_assert_eq(a->nargs, 0);
  cr_assert_eq(a->nkwargs, 1);
  tw_endpoint_args_free(a);
  cr_assert_eq(tw_endpoint_parse(&a, "", NULL), 0);
  cr_assert_str_eq(a->prefix, "");
  tw_endpoint_args_free(a);
  a = NULL;
  cr_assert_eq(tw_endpoint_parse(&a, "x\\", NULL), TW_EINVAL);
  cr_assert_null(a);
  cr_assert_eq(tw_endpoint_parse(NULL, "x", NULL), TW_EINVAL);
  cr_assert_eq(tw_endpoint_parse(&a, NULL, &why), TW_EINVAL);
  cr_assert_eq(tw_failure_type(why), &TW_VALUE_ERROR);
  tw_failure_unref(why);
  tw_endpoint_args_free(NULL);
  cr_assert_null(tw_endpoint_args_get(NULL, "x"));
}

TWT_TEST(endpoints, quote_truncates_like_snprintf) {
  char buf[4];
  cr_assert_eq(tw_endpoint_quote("a:b", buf, sizeof buf), 4);
  cr_assert_str_eq(buf, "a\\:");
  cr_assert_eq(tw_endpoint_quote("a:b", NULL, 0), 4);
  cr_assert_eq(tw_endpoint_quote(NULL, buf, sizeof buf), TW_EINVAL);
  cr_assert_eq(tw_endpoint_quote("x", NULL, 3), TW_EINVAL);
  cr_assert_eq(tw_endpoint_quote("", buf, sizeof buf), 0);
  cr_assert_str_eq(buf, "");
}

static int failing_parser(tw_endpoint **out, tw_reactor *r,
                          const tw_endpoint_args *a, void *arg,
                          tw_failure **error) {
  (void)out, (void)r, (void)a, (void)arg;
  if (error != NULL)
    *error = tw_failure_new(&TW_VALUE_ERROR, TW_EINVAL, "no %s today", "x");
  return TW_EINVAL;
}

static int silent_parser(tw_endpoint **out, tw_reactor *r,
                         const tw_endpoint_args *a, void *arg,
                         tw_failure **error) {
  (void)out, (void)r, (void)a, (void)error;
  return (int)(intptr_t)arg;
}

TWT_TEST(endpoints, registry) {
  char name[8];
  int i;
  setup_reactor();
  cr_assert_eq(tw_endpoint_register_parser(NULL, fake_parser, NULL, NULL),
               TW_EINVAL);
  cr_assert_eq(tw_endpoint_register_parser("x", NULL, NULL, NULL), TW_EINVAL);
  cr_assert_eq(tw_endpoint_register_parser("", fake_parser, NULL, NULL),
               TW_EINVAL);
  cr_assert_eq(tw_endpoint_register_parser("a:b", fake_parser, NULL, NULL),
               TW_EINVAL);
  cr_assert_eq(tw_endpoint_register_parser("a=b", fake_parser, NULL, NULL),
               TW_EINVAL);
  cr_assert_eq(tw_endpoint_register_parser(
                   "0123456789012345678901234567890123", fake_parser, NULL,
                   NULL),
               TW_EINVAL);
  cr_assert_eq(tw_endpoint_register_parser("TCP", fake_parser, NULL, NULL),
               TW_EBUSY);
  cr_assert_eq(tw_endpoint_register_parser("tcp6", fake_parser, NULL, NULL),
               TW_EBUSY);
  cr_assert_eq(tw_endpoint_register_parser("unix", NULL, fake_parser, NULL),
               TW_EBUSY);
  /* Twisted has no tcp6 client parser: a library may add one. */
  cr_assert_eq(tw_endpoint_register_parser("tcp6", NULL, fake_parser, NULL),
               0);
  cr_assert_eq(tw_endpoint_register_parser("Tcp6", NULL, fake_parser, NULL),
               TW_EBUSY);
  tw_endpoint *ep = client("tcp6:h:1");
  cr_assert_eq(info(ep).kind, TW_ENDPOINT_CUSTOM);
  tw_endpoint_free(ep);
  cr_assert_eq(tw_endpoint_unregister_parser("tcp6"), 0);
  cr_assert_eq(tw_endpoint_unregister_parser("tcp6"), TW_ENOENT);
  cr_assert_eq(tw_endpoint_unregister_parser(NULL), TW_ENOENT);
  /* A parser's failure reaches the caller; one without a failure gets one
   * for its code; one that says 0 without an endpoint is refused. */
  cr_assert_eq(tw_endpoint_register_parser("bad", failing_parser, NULL, NULL),
               0);
  refused(1, "bad:1", &TW_VALUE_ERROR, "no x today");
  cr_assert_eq(tw_endpoint_unregister_parser("bad"), 0);
  cr_assert_eq(tw_endpoint_register_parser("quiet", silent_parser, NULL,
                                           (void *)(intptr_t)TW_ENOMEM),
               0);
  {
    tw_endpoint *none = NULL;
    tw_failure *why = NULL;
    cr_assert_eq(tw_server_from_string(&none, R, "quiet", &why), TW_ENOMEM);
    cr_assert_eq(tw_failure_type(why), &TW_MEMORY_ERROR);
    tw_failure_unref(why);
  }
  cr_assert_eq(tw_endpoint_unregister_parser("quiet"), 0);
  cr_assert_eq(tw_endpoint_register_parser("zero", silent_parser, NULL, NULL),
               0);
  refused(1, "zero", &TW_VALUE_ERROR, "made no endpoint");
  cr_assert_eq(tw_endpoint_unregister_parser("zero"), 0);
  /* The table is fixed: the 33rd is refused, and nothing is allocated. */
  for (i = 0; i < TW_ENDPOINT_PARSERS_MAX; i++) {
    snprintf(name, sizeof name, "p%d", i);
    cr_assert_eq(tw_endpoint_register_parser(name, fake_parser, NULL, NULL),
                 0);
  }
  cr_assert_eq(tw_endpoint_register_parser("one-more", fake_parser, NULL, NULL),
               TW_EOVERFLOW);
  for (i = 0; i < TW_ENDPOINT_PARSERS_MAX; i++) {
    snprintf(name, sizeof name, "p%d", i);
    cr_assert_eq(tw_endpoint_unregister_parser(name), 0);
  }
  free_reactor();
}

TWT_TEST(endpoints, bad_input) {
  tw_endpoint *ep = NULL;
  tw_failure *why = NULL;
  tw_endpoint_info i;
  tw_address bind;
  setup_reactor();
  cr_assert_eq(tw_server_from_string(NULL, R, "tcp:80", &why), TW_EINVAL);
  cr_assert_eq(tw_failure_type(why), &TW_VALUE_ERROR);
  tw_failure_unref(why);
  cr_assert_eq(tw_server_from_string(&ep, NULL, "tcp:80", NULL), TW_EINVAL);
  cr_assert_eq(tw_client_from_string(&ep, R, NULL, NULL), TW_EINVAL);
  cr_assert_eq(tw_server_from_string(&ep, R, "tcp:x", NULL), TW_EINVAL);
  cr_assert_null(ep);
  cr_assert_eq(tw_tcp4_server_endpoint_new(NULL, R, 80, 0, NULL), TW_EINVAL);
  cr_assert_eq(tw_tcp4_server_endpoint_new(&ep, NULL, 80, 0, NULL), TW_EINVAL);
  cr_assert_eq(tw_tcp4_server_endpoint_new(&ep, R, 65536, 0, NULL), TW_EINVAL);
  cr_assert_eq(tw_tcp4_server_endpoint_new(&ep, R, -1, 0, NULL), TW_EINVAL);
  cr_assert_eq(tw_tcp6_server_endpoint_new(&ep, R, 1, 0, "example.com"),
               TW_EINVAL);
  cr_assert_eq(tw_unix_server_endpoint_new(&ep, R, "", 0, 0), TW_EINVAL);
  cr_assert_eq(tw_unix_server_endpoint_new(&ep, R, NULL, 0, 0), TW_EINVAL);
  cr_assert_eq(tw_unix_server_endpoint_new(&ep, R, "/x", 0, 010000), TW_EINVAL);
  cr_assert_eq(tw_tcp4_client_endpoint_new(&ep, R, "", 1, 0, NULL), TW_EINVAL);
  cr_assert_eq(tw_tcp4_client_endpoint_new(&ep, R, "h", 1, NAN, NULL),
               TW_EINVAL);
  memset(&bind, 0, sizeof bind);
  cr_assert_eq(tw_tcp4_client_endpoint_new(&ep, R, "h", 1, 0, &bind),
               TW_EINVAL); /* no family */
  bind.family = TW_ADDRESS_IPV4;
  strcpy(bind.host, "nope");
  cr_assert_eq(tw_tcp6_client_endpoint_new(&ep, R, "h", 1, 0, &bind),
               TW_EINVAL);
  cr_assert_eq(tw_unix_client_endpoint_new(&ep, R, NULL, 0), TW_EINVAL);
  cr_assert_eq(tw_endpoint_new(&ep, R, NULL, NULL), TW_EINVAL);
  cr_assert_null(ep);
  cr_assert_eq(tw_endpoint_get_info(NULL, &i), TW_EINVAL);
  cr_assert_null(tw_endpoint_data(NULL));
  cr_assert_null(tw_endpoint_reactor(NULL));
  tw_endpoint_free(NULL);
  /* Defaults of the constructors: the values used. */
  cr_assert_eq(tw_tcp6_server_endpoint_new(&ep, R, 0, 0, NULL), 0);
  i = info(ep);
  cr_assert_str_eq(i.host, "::");
  cr_assert_eq(i.backlog, TW_LISTEN_BACKLOG);
  cr_assert_null(tw_endpoint_data(ep));
  tw_endpoint_free(ep);
  cr_assert_eq(tw_unix_client_endpoint_new(&ep, R, "/s", -1), 0);
  cr_assert_eq(info(ep).timeout, TW_CONNECT_TIMEOUT);
  tw_endpoint_free(ep);
  free_reactor();
}

/* ==== differential: descriptions against real Twisted ================================ */

static size_t unhex(const char *h, char *out, size_t cap) {
  size_t n = 0;
  if (strcmp(h, "-") == 0) {
    out[0] = '\0';
    return 0;
  }
  while (h[0] != '\0' && h[1] != '\0' && n + 1 < cap) {
    unsigned v;
    cr_assert_eq(sscanf(h, "%2x", &v), 1);
    out[n++] = (char)v;
    h += 2;
  }
  out[n] = '\0';
  return n;
}

static void diff_line(char *line) {
  static char d[TW_ENDPOINT_DESCRIPTION_MAX * 2 + 8];
  char side[4], dhex[2 * sizeof d], res[4], a[64];
  tw_endpoint *ep = NULL;
  tw_failure *why = NULL;
  int rc;
  cr_assert_eq(sscanf(line, "%3s %s %3s", side, dhex, res), 3, "%s", line);
  unhex(dhex, d, sizeof d);
  rc = side[0] == 'S' ? tw_server_from_string(&ep, R, d, &why)
                      : tw_client_from_string(&ep, R, d, &why);
  if (strcmp(res, "ERR") == 0) {
    char want[600], bh[1200];
    cr_assert_eq(sscanf(line, "%*s %*s %*s %63s %1199s", a, bh), 2);
    unhex(bh, want, sizeof want);
    cr_assert_neq(rc, 0, "%s '%s': twuv accepted, Twisted raised %s", side, d,
                  a);
    cr_assert_str_eq(tw_failure_type(why)->name, a, "%s '%s': %s (%s)", side,
                     d, tw_failure_type(why)->name, tw_failure_message(why));
    cr_assert(strstr(tw_failure_message(why), want) != NULL,
              "%s '%s': '%s' lacks Twisted's '%s'", side, d,
              tw_failure_message(why), want);
    tw_failure_unref(why);
  } else {
    int kind, port, backlog, mode, lock, hasbind;
    double timeout;
    char hh[1200], ph[1200], bhh[200], host[600], path[600], bhost[100];
    tw_endpoint_info i;
    cr_assert_eq(rc, 0, "%s '%s': twuv refused (%s: %s), Twisted accepted",
                 side, d, why ? tw_failure_type(why)->name : "-",
                 tw_failure_message(why));
    cr_assert_eq(sscanf(line, "%*s %*s %*s %d %d %d %1199s %1199s %d %d %lf %d "
                              "%199s",
                        &kind, &port, &backlog, hh, ph, &mode, &lock, &timeout,
                        &hasbind, bhh),
                 10, "%s", line);
    i = info(ep);
    cr_assert_eq(i.kind, kind, "%s '%s'", side, d);
    cr_assert_eq(i.port, port, "%s '%s'", side, d);
    cr_assert_eq(i.backlog, backlog, "%s '%s'", side, d);
    if (strcmp(hh, "!") == 0) {
      cr_assert_null(i.host, "%s '%s'", side, d);
    } else {
      unhex(hh, host, sizeof host);
      cr_assert_str_eq(i.host, host, "%s '%s'", side, d);
    }
    if (strcmp(ph, "!") == 0) {
      cr_assert_null(i.path, "%s '%s'", side, d);
    } else {
      unhex(ph, path, sizeof path);
      cr_assert_str_eq(i.path, path, "%s '%s'", side, d);
    }
    cr_assert_eq(i.mode, mode, "%s '%s'", side, d);
    cr_assert_eq(i.lock_pid, lock, "%s '%s'", side, d);
    cr_assert_eq(i.timeout, timeout, "%s '%s'", side, d);
    cr_assert_eq(i.has_bind_address, hasbind, "%s '%s'", side, d);
    if (hasbind) {
      unhex(bhh, bhost, sizeof bhost);
      cr_assert_str_eq(i.bind_address.host, bhost, "%s '%s'", side, d);
    }
    tw_endpoint_free(ep);
  }
}

TWT_TEST(endpoints, differential_against_twisted) {
  const char *path = getenv("TWT_TWISTED_ENDPOINT_CASES");
  FILE *in;
  char *line = NULL;
  size_t cap = 0;
  long cases = 0;
  if (path == NULL || path[0] == '\0')
    cr_skip_test("TWT_TWISTED_ENDPOINT_CASES not set (the build found no "
                 "Twisted for /usr/bin/python3)");
  in = fopen(path, "r");
  cr_assert_not_null(in, "cannot open %s", path);
  setup_reactor();
  while (getline(&line, &cap, in) > 0) {
    if (strncmp(line, "end", 3) == 0) break;
    diff_line(line);
    cases++;
  }
  free(line);
  fclose(in);
  free_reactor();
  cr_assert(cases > 1000, "only %ld cases in %s", cases, path);
}

/* ==== endpoints over loopback ==========================================================
 *
 * Ports of WrappingFactoryTests and ClientEndpointTestCaseMixin /
 * ServerEndpointTestCaseMixin (TCP4EndpointsTests, TCP6EndpointsTests,
 * UNIXEndpointsTests) and ConnectProtocolTests, on real sockets instead of
 * Twisted's MemoryReactor: the same observable contract.
 */

/* Iterate until *flag: at most 20000 iterations and 10 s (then fail). */
static int spin(const int *flag) { return twt_spin(R, flag); }

typedef struct peer {
  tw_protocol base;
  int made, lost, read_lost, dealloced;
  const tw_error_type *lost_type;
  char recv[64];
  size_t nrecv;
  const char *send_on_made;
  int lose_after; /* lose once this many bytes came */
  int half_close_on_made;
} peer;

static peer srv[4], cli[4];
static int nsrv, ncli, srv_lost, cli_lost, cli_read_lost;

static void peer_made(tw_protocol *p) {
  peer *x = (peer *)p;
  x->made = 1;
  if (x->send_on_made != NULL)
    tw_transport_write(p->transport, x->send_on_made, strlen(x->send_on_made));
  if (x->half_close_on_made) tw_transport_lose_write_connection(p->transport);
}

static tw_failure *peer_data(tw_protocol *p, const char *data, size_t len) {
  peer *x = (peer *)p;
  if (x->nrecv + len < sizeof x->recv) memcpy(x->recv + x->nrecv, data, len);
  x->nrecv += len;
  if (x->lose_after > 0 && x->nrecv >= (size_t)x->lose_after)
    tw_transport_lose_connection(p->transport);
  return NULL;
}

static void peer_lost(tw_protocol *p, tw_failure *reason) {
  peer *x = (peer *)p;
  x->lost++;
  x->lost_type = tw_failure_type(reason);
  if (x >= srv && x < srv + 4) srv_lost++;
  if (x >= cli && x < cli + 4) cli_lost++;
}

static void peer_read_lost(tw_protocol *p) {
  ((peer *)p)->read_lost++;
  cli_read_lost++;
  tw_transport_lose_connection(p->transport);
}

static void peer_dealloc(tw_protocol *p) { ((peer *)p)->dealloced++; }

static const tw_protocol_ops peer_ops = {peer_made, peer_data, peer_lost, NULL,
                                         NULL};
static const tw_protocol_ops half_ops = {peer_made, peer_data, peer_lost,
                                         peer_read_lost, NULL};

static peer srv_tpl, cli_tpl;
static const tw_protocol_ops *cli_ops = &peer_ops;
static int refuse_client, started_n, stopped_n;

static tw_protocol *build_srv(tw_factory *f, const tw_address *a) {
  peer *x;
  (void)f, (void)a;
  if (nsrv == 4) return NULL;
  x = &srv[nsrv++];
  *x = srv_tpl;
  tw_protocol_init(&x->base, &peer_ops);
  return &x->base;
}

static tw_protocol *build_cli(tw_factory *f, const tw_address *a) {
  peer *x;
  (void)f, (void)a;
  if (refuse_client || ncli == 4) return NULL;
  x = &cli[ncli++];
  *x = cli_tpl;
  tw_protocol_init(&x->base, cli_ops);
  x->base.dealloc = peer_dealloc;
  return &x->base;
}

static void count_start(tw_factory *f) {
  (void)f;
  started_n++;
}
static void count_stop(tw_factory *f) {
  (void)f;
  stopped_n++;
}

static const tw_factory_ops srv_fops = {build_srv, NULL, NULL, NULL, NULL,
                                        NULL};
static const tw_factory_ops cli_fops = {build_cli, count_start, count_stop,
                                        NULL, NULL, NULL};
static tw_factory SF, CF;

static void net_setup(void) {
  setup_reactor();
  memset(srv, 0, sizeof srv);
  memset(cli, 0, sizeof cli);
  nsrv = ncli = srv_lost = cli_lost = cli_read_lost = 0;
  started_n = stopped_n = refuse_client = 0;
  memset(&srv_tpl, 0, sizeof srv_tpl);
  memset(&cli_tpl, 0, sizeof cli_tpl);
  cli_ops = &peer_ops;
  tw_factory_init(&SF, &srv_fops);
  tw_factory_init(&CF, &cli_fops);
}

/* What a Deferred fired with, recorded by a callback pair. */
typedef struct outcome {
  int fired;
  int ok;
  void *value;
  const tw_error_type *type;
  int code;
  char message[256];
  tw_address addr; /* ConnectingCancelledError's payload */
  int made_at_fire; /* the protocol's connection_made had run */
} outcome;

static tw_result on_result(tw_result r, void *arg) {
  outcome *o = arg;
  o->fired = 1;
  if (r.kind == TW_RESULT_FAILURE) {
    const tw_address *a = tw_failure_payload(r.u.failure);
    o->type = tw_failure_type(r.u.failure);
    o->code = tw_failure_code(r.u.failure);
    snprintf(o->message, sizeof o->message, "%s",
             tw_failure_message(r.u.failure));
    if (o->type == &TW_CONNECTING_CANCELLED_ERROR && a != NULL) o->addr = *a;
    tw_result_release(r);
    return tw_result_none();
  }
  o->ok = 1;
  o->value = r.u.value;
  if (o->value != NULL && o->value != (void *)1)
    o->made_at_fire = ((tw_protocol *)o->value)->connected;
  return r;
}

static void watch(tw_deferred *d, outcome *o) {
  memset(o, 0, sizeof *o);
  cr_assert_eq(tw_deferred_add_both(d, on_result, o), 0);
}

/* Listen with ep on SF; the port's address into *host. */
static tw_listening_port *listen_on(tw_endpoint *ep, tw_address *host) {
  tw_deferred *d;
  outcome o;
  cr_assert_eq(tw_endpoint_listen(ep, &SF, &d), 0);
  watch(d, &o);
  cr_assert_eq(o.fired, 1, "listen fires before it returns");
  cr_assert_eq(o.ok, 1, "listen failed: %s", o.message);
  tw_deferred_unref(d);
  if (host != NULL)
    cr_assert_eq(tw_listening_port_get_host(o.value, host), 0);
  return o.value;
}

static void stop_port(tw_listening_port *p) {
  tw_deferred *d;
  outcome o;
  cr_assert_eq(tw_listening_port_stop(p, &d), 0);
  watch(d, &o);
  cr_assert(spin(&o.fired));
  tw_deferred_unref(d);
}

static tw_endpoint *tcp_client_to(const tw_address *a) {
  char desc[128];
  snprintf(desc, sizeof desc, "tcp:127.0.0.1:%d:timeout=5", a->port);
  return client(desc);
}

TWT_TEST(endpoints, test_endpoint_listen_success) {
  tw_address a;
  net_setup();
  tw_endpoint *ep = server("tcp:0:interface=127.0.0.1");
  tw_listening_port *p = listen_on(ep, &a);
  tw_endpoint_free(ep); /* the port does not need it */
  cr_assert_eq(a.family, TW_ADDRESS_IPV4);
  cr_assert_str_eq(a.host, "127.0.0.1");
  cr_assert(a.port > 0);
  stop_port(p);
  free_reactor();
}

TWT_TEST(endpoints, test_endpoint_listen_failure) {
  tw_address a;
  tw_deferred *d;
  outcome o;
  char want[128];
  net_setup();
  tw_endpoint *ep = server("tcp:0:interface=127.0.0.1");
  tw_listening_port *p = listen_on(ep, &a);
  tw_endpoint_free(ep);
  cr_assert_eq(tw_tcp4_server_endpoint_new(&ep, R, a.port, 0, "127.0.0.1"), 0);
  cr_assert_eq(tw_endpoint_listen(ep, &SF, &d), 0);
  watch(d, &o);
  cr_assert_eq(o.fired, 1);
  cr_assert_eq(o.type, &TW_CANNOT_LISTEN_ERROR);
  cr_assert_eq(o.code, UV_EADDRINUSE);
  snprintf(want, sizeof want,
           "Couldn't listen on 127.0.0.1:%d: address already in use.", a.port);
  cr_assert_str_eq(o.message, want);
  tw_deferred_unref(d);
  tw_endpoint_free(ep);
  stop_port(p);
  free_reactor();
}

/* test_endpointConnectSuccess + _WrappingProtocol: the protocol's
 * connection_made runs before the Deferred fires with it; data, loss and
 * dealloc reach it through the wrapper; doStart/doStop pass through. */
TWT_TEST(endpoints, test_endpoint_connect_success) {
  tw_address a;
  tw_deferred *d;
  outcome o;
  net_setup();
  tw_endpoint *sep = server("tcp:0:interface=127.0.0.1");
  tw_listening_port *p = listen_on(sep, &a);
  tw_endpoint *cep = tcp_client_to(&a);
  srv_tpl.send_on_made = "hello";
  cli_tpl.lose_after = 5;
  cr_assert_eq(tw_endpoint_connect(cep, &CF, &d), 0);
  tw_endpoint_free(cep); /* the attempt does not need it */
  watch(d, &o);
  cr_assert_eq(o.fired, 0, "fires from the loop");
  cr_assert_eq(started_n, 1);
  cr_assert(spin(&o.fired));
  cr_assert_eq(o.ok, 1, "%s: %s", o.type ? o.type->name : "-", o.message);
  cr_assert_eq(o.value, &cli[0].base);
  cr_assert_eq(o.made_at_fire, 1);
  cr_assert_eq(cli[0].made, 1);
  cr_assert_eq(cli[0].base.factory, &CF);
  cr_assert_not_null(cli[0].base.transport);
  tw_deferred_unref(d);
  cr_assert(spin(&cli_lost));
  cr_assert_eq(cli[0].nrecv, 5);
  cr_assert_eq(memcmp(cli[0].recv, "hello", 5), 0);
  cr_assert_eq(cli[0].lost_type, &TW_CONNECTION_DONE);
  cr_assert_eq(cli[0].dealloced, 1);
  cr_assert_eq(cli[0].base.connected, 0);
  cr_assert_null(cli[0].base.transport, "gone once connection_lost returned");
  cr_assert(spin(&stopped_n));
  cr_assert_eq(started_n, 1);
  cr_assert(spin(&srv_lost));
  stop_port(p);
  tw_endpoint_free(sep);
  free_reactor();
}

/* test_endpointConnectFailure: the Deferred fails with the reason the
 * connector gave (nothing listens: ConnectionRefusedError). */
TWT_TEST(endpoints, test_endpoint_connect_failure) {
  tw_address a;
  tw_deferred *d;
  outcome o;
  struct sockaddr_in sin;
  socklen_t len = sizeof sin;
  int fd;
  net_setup();
  /* A port bound and not listening: refused, and held (no other process
   * on the machine can start listening there meanwhile). */
  fd = socket(AF_INET, SOCK_STREAM, 0);
  cr_assert(fd >= 0);
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  cr_assert_eq(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
  cr_assert_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
  memset(&a, 0, sizeof a);
  a.port = ntohs(sin.sin_port);
  tw_endpoint *cep = tcp_client_to(&a);
  cr_assert_eq(tw_endpoint_connect(cep, &CF, &d), 0);
  watch(d, &o);
  cr_assert(spin(&o.fired));
  cr_assert_eq(o.ok, 0);
  cr_assert_eq(o.type, &TW_NET_CONNECTION_REFUSED_ERROR, "%s",
               o.type ? o.type->name : "-");
  cr_assert_eq(o.code, UV_ECONNREFUSED);
  cr_assert_eq(ncli, 0);
  cr_assert(spin(&stopped_n));
  tw_deferred_unref(d);
  tw_endpoint_free(cep);
  close(fd);
  free_reactor();
}

/* test_endpointConnectingCancelled: cancelling before the connection is
 * made fails the Deferred with ConnectingCancelledError(destination) and
 * abandons the attempt: no protocol is built. */
TWT_TEST(endpoints, test_endpoint_connecting_cancelled) {
  tw_address a;
  tw_deferred *d;
  outcome o;
  net_setup();
  tw_endpoint *sep = server("tcp:0:interface=127.0.0.1");
  tw_listening_port *p = listen_on(sep, &a);
  tw_endpoint *cep = tcp_client_to(&a);
  cr_assert_eq(tw_endpoint_connect(cep, &CF, &d), 0);
  watch(d, &o);
  cr_assert_eq(o.fired, 0);
  cr_assert_eq(tw_deferred_cancel(d), 0);
  cr_assert_eq(o.fired, 1);
  cr_assert_eq(o.type, &TW_CONNECTING_CANCELLED_ERROR);
  cr_assert_eq(o.addr.family, TW_ADDRESS_IPV4);
  cr_assert_str_eq(o.addr.host, "127.0.0.1");
  cr_assert_eq(o.addr.port, a.port);
  {
    char want[128];
    snprintf(want, sizeof want,
             "IPv4Address(type='TCP', host='127.0.0.1', port=%d)", a.port);
    cr_assert_str_eq(o.message, want);
  }
  cr_assert(spin(&stopped_n)); /* the attempt ended: doStop */
  cr_assert_eq(ncli, 0, "no protocol after a cancel");
  cr_assert_eq(tw_deferred_cancel(d), 0); /* fired: nothing */
  tw_deferred_unref(d);
  tw_endpoint_free(cep);
  stop_port(p);
  tw_endpoint_free(sep);
  free_reactor();
}

/* Cancelling after the connection is made does nothing (the Deferred has
 * fired); the connection goes on. */
TWT_TEST(endpoints, cancel_after_connect_does_nothing) {
  tw_address a;
  tw_deferred *d;
  outcome o;
  net_setup();
  tw_endpoint *sep = server("tcp:0:interface=127.0.0.1");
  tw_listening_port *p = listen_on(sep, &a);
  tw_endpoint *cep = tcp_client_to(&a);
  cr_assert_eq(tw_endpoint_connect(cep, &CF, &d), 0);
  watch(d, &o);
  cr_assert(spin(&o.fired));
  cr_assert_eq(o.ok, 1);
  cr_assert_eq(tw_deferred_cancel(d), 0);
  cr_assert_eq(cli[0].lost, 0);
  tw_transport_lose_connection(cli[0].base.transport);
  cr_assert(spin(&cli_lost));
  cr_assert(spin(&stopped_n));
  tw_deferred_unref(d);
  tw_endpoint_free(cep);
  stop_port(p);
  tw_endpoint_free(sep);
  free_reactor();
}

/* test_failedBuildProtocol / test_buildNoneProtocol: a factory that
 * builds nothing fails the Deferred with NoProtocol. */
TWT_TEST(endpoints, test_build_none_protocol) {
  tw_address a;
  tw_deferred *d;
  outcome o;
  net_setup();
  tw_endpoint *sep = server("tcp:0:interface=127.0.0.1");
  tw_listening_port *p = listen_on(sep, &a);
  tw_endpoint *cep = tcp_client_to(&a);
  refuse_client = 1;
  cr_assert_eq(tw_endpoint_connect(cep, &CF, &d), 0);
  watch(d, &o);
  cr_assert(spin(&o.fired));
  cr_assert_eq(o.type, &TW_NO_PROTOCOL);
  cr_assert(spin(&stopped_n));
  tw_deferred_unref(d);
  tw_endpoint_free(cep);
  stop_port(p);
  tw_endpoint_free(sep);
  free_reactor();
}

/* TCPClientTestsBase.test_buildProtocolReturnsNone (internet/test/
 * test_tcp.py, TCP4 and TCP6 builders): a client endpoint whose factory
 * builds nothing fails its Deferred with NoProtocol, and the connection is
 * closed gracefully: the server's protocol hears connectionLost. */
static void build_protocol_returns_none(const char *server_desc,
                                        const char *client_fmt) {
  tw_address a;
  tw_deferred *d;
  outcome o;
  char desc[128];
  net_setup();
  tw_endpoint *sep = server(server_desc);
  tw_listening_port *p = listen_on(sep, &a);
  snprintf(desc, sizeof desc, client_fmt, a.port);
  tw_endpoint *cep = client(desc);
  refuse_client = 1;
  cr_assert_eq(tw_endpoint_connect(cep, &CF, &d), 0);
  watch(d, &o);
  cr_assert(spin(&o.fired));
  cr_assert_eq(o.type, &TW_NO_PROTOCOL);
  cr_assert(spin(&srv_lost));
  cr_assert_eq(srv[0].made, 1);
  cr_assert_eq(srv[0].lost, 1);
  cr_assert(srv[0].lost_type == &TW_CONNECTION_DONE ||
            tw_error_type_is(srv[0].lost_type, &TW_CONNECTION_LOST));
  tw_deferred_unref(d);
  tw_endpoint_free(cep);
  stop_port(p);
  tw_endpoint_free(sep);
  free_reactor();
}

TWT_TEST(endpoints, test_build_protocol_returns_none) {
  build_protocol_returns_none("tcp:0:interface=127.0.0.1",
                              "tcp:127.0.0.1:%d:timeout=5");
}

TWT_TEST(endpoints, test_build_protocol_returns_none_ipv6) {
  build_protocol_returns_none("tcp6:0:interface=\\:\\:1",
                              "tcp:\\:\\:1:%d:timeout=5");
}

/* ConnectProtocolTests.test_connectProtocolCreatesFactory: the Deferred
 * fires with the protocol given. */
TWT_TEST(endpoints, test_connect_protocol) {
  tw_address a;
  tw_deferred *d;
  outcome o;
  peer mine;
  net_setup();
  tw_endpoint *sep = server("tcp:0:interface=127.0.0.1");
  tw_listening_port *p = listen_on(sep, &a);
  tw_endpoint *cep = tcp_client_to(&a);
  memset(&mine, 0, sizeof mine);
  tw_protocol_init(&mine.base, &peer_ops);
  mine.send_on_made = "ping";
  cr_assert_eq(tw_connect_protocol(cep, &mine.base, &d), 0);
  watch(d, &o);
  cr_assert(spin(&o.fired));
  cr_assert_eq(o.value, &mine.base);
  cr_assert_eq(o.made_at_fire, 1);
  cr_assert_null(mine.base.factory);
  srv_tpl.lose_after = 0;
  cr_assert(spin(&nsrv));
  tw_transport_lose_connection(mine.base.transport);
  cr_assert(spin(&mine.lost));
  cr_assert(spin(&srv_lost));
  cr_assert_eq(srv[0].nrecv, 4);
  tw_deferred_unref(d);
  tw_endpoint_free(cep);
  stop_port(p);
  tw_endpoint_free(sep);
  free_reactor();
}

/* _WrappingProtocol provides IHalfCloseableProtocol when the wrapped one
 * does: the peer's half-close reaches read_connection_lost. */
TWT_TEST(endpoints, test_wrapping_protocol_half_closeable) {
  tw_address a;
  tw_deferred *d;
  outcome o;
  net_setup();
  tw_endpoint *sep = server("tcp:0:interface=127.0.0.1");
  tw_listening_port *p = listen_on(sep, &a);
  tw_endpoint *cep = tcp_client_to(&a);
  srv_tpl.half_close_on_made = 1;
  cli_ops = &half_ops;
  cr_assert_eq(tw_endpoint_connect(cep, &CF, &d), 0);
  watch(d, &o);
  cr_assert(spin(&cli_read_lost));
  cr_assert(spin(&cli_lost)); /* read_lost loses the connection */
  cr_assert_eq(cli[0].read_lost, 1);
  cr_assert(spin(&stopped_n));
  tw_deferred_unref(d);
  tw_endpoint_free(cep);
  cr_assert(spin(&srv_lost));
  stop_port(p);
  tw_endpoint_free(sep);
  free_reactor();
}

static char tmpdir[64];

TWT_TEST(endpoints, unix_endpoints) {
  char desc[160], path[128];
  tw_address a;
  tw_deferred *d;
  outcome o;
  struct stat st;
  net_setup();
  strcpy(tmpdir, "/tmp/twuv-ep-XXXXXX");
  cr_assert_not_null(mkdtemp(tmpdir));
  snprintf(path, sizeof path, "%s/s", tmpdir);
  snprintf(desc, sizeof desc, "unix:%s:mode=600", path);
  tw_endpoint *sep = server(desc);
  tw_listening_port *p = listen_on(sep, &a);
  cr_assert_eq(a.family, TW_ADDRESS_UNIX);
  cr_assert_str_eq(a.name, path);
  cr_assert_eq(stat(path, &st), 0);
  cr_assert_eq(st.st_mode & 0777, 0600);
  snprintf(desc, sizeof desc, "unix:path=%s:timeout=5", path);
  tw_endpoint *cep = client(desc);
  srv_tpl.send_on_made = "unix";
  cli_tpl.lose_after = 4;
  cr_assert_eq(tw_endpoint_connect(cep, &CF, &d), 0);
  watch(d, &o);
  cr_assert(spin(&o.fired));
  cr_assert_eq(o.ok, 1);
  cr_assert(spin(&cli_lost));
  cr_assert_eq(memcmp(cli[0].recv, "unix", 4), 0);
  tw_deferred_unref(d);
  /* Listening again on the file: CannotListenError naming the path. */
  cr_assert_eq(tw_endpoint_listen(sep, &SF, &d), 0);
  watch(d, &o);
  cr_assert_eq(o.type, &TW_CANNOT_LISTEN_ERROR);
  cr_assert(strstr(o.message, path) != NULL);
  tw_deferred_unref(d);
  stop_port(p);
  /* The file is gone: connecting fails with the connector's reason. */
  cr_assert_eq(tw_endpoint_connect(cep, &CF, &d), 0);
  watch(d, &o);
  cr_assert(spin(&o.fired));
  cr_assert(tw_error_type_is(o.type, &TW_CONNECT_ERROR));
  cr_assert_eq(o.code, UV_ENOENT);
  tw_deferred_unref(d);
  tw_endpoint_free(cep);
  tw_endpoint_free(sep);
  cr_assert(spin(&srv_lost));
  free_reactor();
  rmdir(tmpdir);
}

TWT_TEST(endpoints, tcp6_endpoints) {
  tw_address a;
  tw_deferred *d;
  outcome o;
  tw_endpoint *sep, *cep;
  net_setup();
  sep = server("tcp6:0:interface=\\:\\:1");
  cr_assert_eq(tw_endpoint_listen(sep, &SF, &d), 0);
  watch(d, &o);
  if (!o.ok) { /* no IPv6 loopback on this machine */
    tw_deferred_unref(d);
    tw_endpoint_free(sep);
    free_reactor();
    cr_skip_test("cannot listen on ::1: %s", o.message);
  }
  tw_deferred_unref(d);
  cr_assert_eq(tw_listening_port_get_host(o.value, &a), 0);
  cr_assert_eq(a.family, TW_ADDRESS_IPV6);
  tw_listening_port *p = o.value;
  cr_assert_eq(tw_tcp6_client_endpoint_new(&cep, R, "::1", a.port, 5, NULL), 0);
  cli_tpl.send_on_made = "six";
  srv_tpl.lose_after = 3;
  cr_assert_eq(tw_endpoint_connect(cep, &CF, &d), 0);
  watch(d, &o);
  cr_assert(spin(&o.fired));
  cr_assert_eq(o.ok, 1);
  cr_assert(spin(&cli_lost));
  cr_assert_eq(srv[0].nrecv, 3);
  tw_deferred_unref(d);
  tw_endpoint_free(cep);
  stop_port(p);
  tw_endpoint_free(sep);
  free_reactor();
}

/* A client endpoint with a host name asks the reactor's resolver
 * (installResolver; no test asks the machine's): TCP4 for its first IPv4
 * address, TCP6 for its first IPv6 one. */
static void free_ai(void *ai) { freeaddrinfo(ai); }

static int names_resolve(void *arg, tw_reactor *r, const char *name,
                         double timeout, tw_deferred **out) {
  struct addrinfo hints, *ai;
  (void)r;
  (void)timeout;
  ++*(int *)arg;
  if (strcmp(name, "v4.example") != 0 && strcmp(name, "v6.example") != 0) {
    *out = tw_fail(tw_failure_new(&TW_DNS_LOOKUP_ERROR, 0, "no %s", name));
    return 0;
  }
  memset(&hints, 0, sizeof(hints));
  hints.ai_flags = AI_NUMERICHOST;
  hints.ai_socktype = SOCK_STREAM;
  if (getaddrinfo(name[1] == '4' ? "127.0.0.1" : "::1", NULL, &hints, &ai) != 0)
    return TW_EINVAL;
  *out = tw_succeed(ai, free_ai);
  return 0;
}

TWT_TEST(endpoints, client_endpoints_resolve_names_with_the_reactor_resolver) {
  tw_address a;
  tw_deferred *d;
  outcome o;
  char desc[128];
  int calls = 0;
  net_setup();
  cr_assert_eq(tw_reactor_install_resolver(R, names_resolve, &calls, NULL), 0);
  tw_endpoint *sep = server("tcp:0:interface=127.0.0.1");
  tw_listening_port *p = listen_on(sep, &a);
  snprintf(desc, sizeof desc, "tcp:v4.example:%d:timeout=5", a.port);
  tw_endpoint *cep = client(desc);
  cli_tpl.send_on_made = "four";
  srv_tpl.lose_after = 4;
  cr_assert_eq(tw_endpoint_connect(cep, &CF, &d), 0);
  watch(d, &o);
  cr_assert(spin(&o.fired));
  cr_assert_eq(o.ok, 1, "%s", o.message);
  cr_assert_eq(calls, 1);
  cr_assert(spin(&cli_lost));
  cr_assert_eq(srv[0].nrecv, 4);
  tw_deferred_unref(d);
  tw_endpoint_free(cep);
  /* A name the resolver does not know: the Deferred fails with its
   * DNSLookupError. */
  snprintf(desc, sizeof desc, "tcp:nowhere.example:%d:timeout=5", a.port);
  cep = client(desc);
  cr_assert_eq(tw_endpoint_connect(cep, &CF, &d), 0);
  watch(d, &o);
  cr_assert(spin(&o.fired));
  cr_assert_eq(o.ok, 0);
  cr_assert_eq(o.type, &TW_DNS_LOOKUP_ERROR);
  cr_assert_eq(calls, 2);
  tw_deferred_unref(d);
  tw_endpoint_free(cep);
  stop_port(p);
  tw_endpoint_free(sep);
  free_reactor();
}

/* ---- twuv: wrong kind, wrong thread, a custom kind, reactor free --------------------- */

typedef struct thread_call {
  tw_endpoint *ep;
  int listen_rc, connect_rc, proto_rc;
} thread_call;

static void *other_thread(void *arg) {
  thread_call *t = arg;
  tw_deferred *d = NULL;
  tw_protocol p;
  tw_protocol_init(&p, &peer_ops);
  t->listen_rc = tw_endpoint_listen(t->ep, &SF, &d);
  t->connect_rc = tw_endpoint_connect(t->ep, &CF, &d);
  t->proto_rc = tw_connect_protocol(t->ep, &p, &d);
  return NULL;
}

TWT_TEST(endpoints, wrong_kind_and_thread) {
  tw_deferred *d = NULL;
  tw_protocol pr;
  pthread_t th;
  thread_call t;
  net_setup();
  tw_protocol_init(&pr, &peer_ops);
  tw_endpoint *sep = server("tcp:0:interface=127.0.0.1");
  tw_endpoint *cep = client("tcp:127.0.0.1:1");
  cr_assert_eq(tw_endpoint_listen(cep, &SF, &d), TW_EINVAL);
  cr_assert_eq(tw_endpoint_connect(sep, &CF, &d), TW_EINVAL);
  cr_assert_eq(tw_connect_protocol(sep, &pr, &d), TW_EINVAL);
  cr_assert_eq(tw_endpoint_listen(NULL, &SF, &d), TW_EINVAL);
  cr_assert_eq(tw_endpoint_listen(sep, NULL, &d), TW_EINVAL);
  cr_assert_eq(tw_endpoint_listen(sep, &SF, NULL), TW_EINVAL);
  cr_assert_eq(tw_endpoint_connect(cep, NULL, &d), TW_EINVAL);
  cr_assert_eq(tw_connect_protocol(cep, NULL, &d), TW_EINVAL);
  cr_assert_null(d);
  t.ep = sep;
  cr_assert_eq(pthread_create(&th, NULL, other_thread, &t), 0);
  pthread_join(th, NULL);
  cr_assert_eq(t.listen_rc, TW_EWRONGTHREAD);
  t.ep = cep;
  cr_assert_eq(pthread_create(&th, NULL, other_thread, &t), 0);
  pthread_join(th, NULL);
  cr_assert_eq(t.connect_rc, TW_EWRONGTHREAD);
  cr_assert_eq(t.proto_rc, TW_EWRONGTHREAD);
  tw_endpoint_free(sep);
  tw_endpoint_free(cep);
  free_reactor();
}

/* A library's kind whose connect uses a built-in endpoint (as a TLS
 * wrapper would): tw_connect_protocol gives it a one-shot factory. */
static int custom_connect(tw_endpoint *ep, tw_factory *f, tw_deferred **out) {
  return tw_endpoint_connect(tw_endpoint_data(ep), f, out);
}
static const tw_endpoint_ops custom_ops = {NULL, custom_connect, NULL};

TWT_TEST(endpoints, custom_kind_connect_protocol) {
  tw_address a;
  tw_deferred *d;
  outcome o;
  peer mine;
  tw_endpoint *ep;
  net_setup();
  tw_endpoint *sep = server("tcp:0:interface=127.0.0.1");
  tw_listening_port *p = listen_on(sep, &a);
  tw_endpoint *inner = tcp_client_to(&a);
  cr_assert_eq(tw_endpoint_new(&ep, R, &custom_ops, inner), 0);
  cr_assert_eq(tw_endpoint_listen(ep, &SF, &d), TW_EINVAL); /* no listen */
  memset(&mine, 0, sizeof mine);
  tw_protocol_init(&mine.base, &peer_ops);
  cr_assert_eq(tw_connect_protocol(ep, &mine.base, &d), 0);
  watch(d, &o);
  cr_assert(spin(&o.fired));
  cr_assert_eq(o.value, &mine.base);
  tw_transport_lose_connection(mine.base.transport);
  cr_assert(spin(&mine.lost));
  tw_deferred_unref(d);
  /* Failing: the one-shot factory still goes (leak check). */
  stop_port(p);
  memset(&mine, 0, sizeof mine);
  tw_protocol_init(&mine.base, &peer_ops);
  cr_assert_eq(tw_connect_protocol(ep, &mine.base, &d), 0);
  watch(d, &o);
  cr_assert(spin(&o.fired));
  cr_assert_eq(o.ok, 0);
  tw_deferred_unref(d);
  cr_assert(spin(&srv_lost));
  tw_endpoint_free(ep);
  tw_endpoint_free(inner);
  tw_endpoint_free(sep);
  free_reactor();
}

/* tw_reactor_free with an attempt in flight: the Deferred fails (the
 * connector's ConnectError), everything is freed. */
TWT_TEST(endpoints, reactor_free_ends_an_attempt) {
  tw_address a;
  tw_deferred *d;
  outcome o;
  net_setup();
  tw_endpoint *sep = server("tcp:0:interface=127.0.0.1");
  (void)listen_on(sep, &a);
  tw_endpoint *cep = tcp_client_to(&a);
  cr_assert_eq(tw_endpoint_connect(cep, &CF, &d), 0);
  watch(d, &o);
  tw_endpoint_free(cep);
  tw_endpoint_free(sep);
  free_reactor();
  cr_assert_eq(o.fired, 1);
  cr_assert(o.ok || tw_error_type_is(o.type, &TW_CONNECT_ERROR));
  cr_assert_eq(stopped_n, 1);
  tw_deferred_unref(d);
}

/* test_wrappingProtocolNotHalfCloseable: the wrapper of a protocol that is
 * not half-closeable is not either: the peer's half-close ends the
 * connection (ConnectionDone), no read_connection_lost. */
TWT_TEST(endpoints, test_wrapping_protocol_not_half_closeable) {
  tw_address a;
  tw_deferred *d;
  outcome o;
  net_setup();
  tw_endpoint *sep = server("tcp:0:interface=127.0.0.1");
  tw_listening_port *p = listen_on(sep, &a);
  tw_endpoint *cep = tcp_client_to(&a);
  srv_tpl.half_close_on_made = 1;
  cr_assert_eq(tw_endpoint_connect(cep, &CF, &d), 0);
  watch(d, &o);
  cr_assert(spin(&cli_lost));
  cr_assert_eq(cli[0].read_lost, 0);
  cr_assert_eq(cli[0].lost_type, &TW_CONNECTION_DONE);
  cr_assert(spin(&stopped_n));
  tw_deferred_unref(d);
  tw_endpoint_free(cep);
  cr_assert(spin(&srv_lost));
  stop_port(p);
  tw_endpoint_free(sep);
  free_reactor();
}

static int write_lost_n;
static void peer_write_lost(tw_protocol *p) {
  (void)p;
  write_lost_n++;
}
static const tw_protocol_ops half_write_ops = {
    peer_made, peer_data, peer_lost, peer_read_lost, peer_write_lost};

/* test_wrappedProtocolWriteConnectionLost: loseWriteConnection's
 * write_connection_lost reaches the wrapped protocol; the server sees the
 * EOF, and closes. */
TWT_TEST(endpoints, test_wrapped_protocol_write_connection_lost) {
  tw_address a;
  tw_deferred *d;
  outcome o;
  net_setup();
  write_lost_n = 0;
  tw_endpoint *sep = server("tcp:0:interface=127.0.0.1");
  tw_listening_port *p = listen_on(sep, &a);
  tw_endpoint *cep = tcp_client_to(&a);
  cli_tpl.half_close_on_made = 1;
  cli_ops = &half_write_ops;
  cr_assert_eq(tw_endpoint_connect(cep, &CF, &d), 0);
  watch(d, &o);
  cr_assert(spin(&write_lost_n));
  cr_assert(spin(&srv_lost));
  cr_assert(spin(&cli_lost));
  cr_assert(spin(&stopped_n));
  tw_deferred_unref(d);
  tw_endpoint_free(cep);
  stop_port(p);
  tw_endpoint_free(sep);
  free_reactor();
}

/* test_endpointConnectNonDefaultArgs: timeout and bindAddress reach the
 * connection (bound to 127.0.0.1, port picked by the kernel). */
TWT_TEST(endpoints, test_endpoint_connect_non_default_args) {
  tw_address a, host;
  tw_deferred *d;
  outcome o;
  char desc[128];
  net_setup();
  tw_endpoint *sep = server("tcp:0:interface=127.0.0.1:backlog=3");
  tw_listening_port *p = listen_on(sep, &a);
  snprintf(desc, sizeof desc, "tcp:host=127.0.0.1:port=%d:timeout=9:"
                              "bindAddress=127.0.0.1", a.port);
  tw_endpoint *cep = client(desc);
  cr_assert_eq(info(cep).timeout, 9.0);
  cr_assert_eq(tw_endpoint_connect(cep, &CF, &d), 0);
  watch(d, &o);
  cr_assert(spin(&o.fired));
  cr_assert_eq(o.ok, 1);
  cr_assert_eq(tw_transport_get_host(cli[0].base.transport, &host), 0);
  cr_assert_str_eq(host.host, "127.0.0.1");
  cr_assert(host.port > 0);
  tw_transport_lose_connection(cli[0].base.transport);
  cr_assert(spin(&cli_lost));
  cr_assert(spin(&stopped_n));
  tw_deferred_unref(d);
  tw_endpoint_free(cep);
  cr_assert(spin(&srv_lost));
  stop_port(p);
  tw_endpoint_free(sep);
  free_reactor();
}

/* Cancelling from inside the protocol's connection_made (before the
 * Deferred fires): the Deferred fails with ConnectingCancelledError and
 * the connection is aborted. */
static tw_deferred *cancel_me;
static void cancel_made(tw_protocol *p) {
  peer_made(p);
  cr_assert_eq(tw_deferred_cancel(cancel_me), 0);
}
static const tw_protocol_ops cancel_ops = {cancel_made, peer_data, peer_lost,
                                           NULL, NULL};

TWT_TEST(endpoints, cancel_inside_connection_made_aborts) {
  tw_address a;
  outcome o;
  net_setup();
  tw_endpoint *sep = server("tcp:0:interface=127.0.0.1");
  tw_listening_port *p = listen_on(sep, &a);
  tw_endpoint *cep = tcp_client_to(&a);
  cli_ops = &cancel_ops;
  cr_assert_eq(tw_endpoint_connect(cep, &CF, &cancel_me), 0);
  watch(cancel_me, &o);
  cr_assert(spin(&o.fired));
  cr_assert_eq(o.type, &TW_CONNECTING_CANCELLED_ERROR);
  cr_assert_eq(cli[0].made, 1);
  cr_assert(spin(&cli_lost));
  cr_assert_eq(cli[0].lost_type, &TW_CONNECTION_ABORTED);
  cr_assert_eq(cli[0].dealloced, 1);
  cr_assert(spin(&stopped_n));
  tw_deferred_unref(cancel_me);
  tw_endpoint_free(cep);
  cr_assert(spin(&srv_lost));
  stop_port(p);
  tw_endpoint_free(sep);
  free_reactor();
}
