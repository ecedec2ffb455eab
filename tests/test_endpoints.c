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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* ==== ParserTests (endpoints._parseServer) ===================================== */

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
  char side[4], dhex[2 * sizeof d], res[4], a[64], b[512];
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
  (void)b;
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
