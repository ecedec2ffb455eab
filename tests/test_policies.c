/*
 * tests/test_policies.c - policies.h: TimeoutMixin. The port of
 * twisted/test/test_policies.py's TimeoutMixinTests (names in
 * snake_case; Twisted's typo in test_setTimeoutCancleAlreadyCancelled
 * kept so the name can be grepped), driven by a manual clock and the
 * string transport as Twisted's are by task.Clock and StringTransport;
 * then twuv's own: the default timeout_connection, the timer cancelled
 * by the transport when the protocol forgets to, bad input, and one
 * idle connection dropped over loopback TCP by the reactor's clock.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "twtest.h"

TWT_SUITE(policies);

/* TimeoutTester: a protocol with the mixin; timeOut 3; connectionMade
 * sets the timeout, dataReceived resets it, connectionLost cancels it,
 * timeoutConnection only records. */
typedef struct tester {
  tw_protocol base;
  tw_timeout_mixin tm;
  int timed_out;
  int forget_in_lost; /* twuv's tests: connection_lost leaves the timer */
  int lost;
} tester;

static void tester_made(tw_protocol *p) {
  tester *t = (tester *)p;
  cr_assert_eq(tw_timeout_mixin_set_timeout(&t->tm, t->tm.timeout, NULL), 0);
}

static tw_failure *tester_data(tw_protocol *p, const char *d, size_t n) {
  (void)d;
  (void)n;
  cr_assert_eq(tw_timeout_mixin_reset_timeout(&((tester *)p)->tm), 0);
  return NULL;
}

static void tester_lost(tw_protocol *p, tw_failure *reason) {
  tester *t = (tester *)p;
  (void)reason;
  t->lost++;
  if (!t->forget_in_lost) tw_timeout_mixin_connection_lost(&t->tm);
}

static void tester_timeout(tw_timeout_mixin *m) {
  ((tester *)m->protocol)->timed_out = 1;
}

static const tw_protocol_ops tester_ops = {.connection_made = tester_made,
                                           .data_received = tester_data,
                                           .connection_lost = tester_lost};

static tw_clock *clock_;
static tester proto;
static tw_string_transport *st;

/* setUp: a manual clock and a TimeoutTester on it (timeOut = 3). */
static void set_up(void) {
  clock_ = tw_clock_new_manual();
  cr_assert_not_null(clock_);
  memset(&proto, 0, sizeof proto);
  tw_protocol_init(&proto.base, &tester_ops);
  cr_assert_eq(tw_timeout_mixin_init(&proto.tm, &proto.base, clock_,
                                     tester_timeout),
               0);
  proto.tm.timeout = 3;
  st = NULL;
}

/* makeConnection(StringTransport()). */
static void make_connection(void) {
  cr_assert_eq(tw_string_transport_new(&st, NULL, NULL, 0), 0);
  cr_assert_eq(tw_string_transport_connect(st, &proto.base), 0);
}

static void pump(const double *t, size_t n) {
  cr_assert_geq(tw_clock_pump(clock_, t, n), 0);
}

static void tear_down(void) {
  tw_string_transport_free(st); /* connection_lost: setTimeout(None) */
  tw_timeout_mixin_connection_lost(&proto.tm);
  cr_assert_eq(tw_clock_pending(clock_), 0);
  tw_clock_free(clock_);
}

/* The callLater of the clock given is used (Twisted overrides callLater). */
TWT_TEST(policies, test_overridden_call_later) {
  set_up();
  cr_assert_eq(tw_timeout_mixin_set_timeout(&proto.tm, 10, NULL), 0);
  cr_assert_eq(tw_clock_pending(clock_), 1);
  tw_timeout_mixin_connection_lost(&proto.tm); /* no transport: ours */
  tear_down();
}

/* The protocol times out at the time its timeOut says. */
TWT_TEST(policies, test_timeout) {
  static const double a[] = {0, 0.5, 1.0, 1.0}, b[] = {0, 1.0};
  set_up();
  make_connection();
  pump(a, 4);
  cr_assert_eq(proto.timed_out, 0);
  pump(b, 2);
  cr_assert_eq(proto.timed_out, 1);
  tear_down();
}

/* Receiving data delays the timeout. */
TWT_TEST(policies, test_no_timeout) {
  static const double a[] = {0, 0.5, 1.0, 1.0}, b[] = {0, 1.0, 1.0, 0.5},
                      c[] = {0, 1.0};
  set_up();
  make_connection();
  pump(a, 4);
  cr_assert_eq(proto.timed_out, 0);
  cr_assert_eq(tw_string_transport_receive(st, "hello there", 11), 0);
  pump(b, 4);
  cr_assert_eq(proto.timed_out, 0);
  pump(c, 2);
  cr_assert_eq(proto.timed_out, 1);
  tear_down();
}

/* A new timeout replaces the previous one. */
TWT_TEST(policies, test_reset_timeout) {
  static const double a[] = {0, 0.9}, b[] = {0, 0.2};
  set_up();
  proto.tm.timeout = TW_TIMEOUT_NONE;
  make_connection();
  cr_assert_eq(tw_timeout_mixin_set_timeout(&proto.tm, 1, NULL), 0);
  cr_assert_eq(proto.tm.timeout, 1);
  pump(a, 2);
  cr_assert_eq(proto.timed_out, 0);
  pump(b, 2);
  cr_assert_eq(proto.timed_out, 1);
  tear_down();
}

/* Setting the timeout to None cancels it. */
TWT_TEST(policies, test_cancel_timeout) {
  static const double a[] = {0, 5, 5, 5};
  set_up();
  proto.tm.timeout = 5;
  make_connection();
  cr_assert_eq(tw_timeout_mixin_set_timeout(&proto.tm, TW_TIMEOUT_NONE, NULL),
               0);
  cr_assert_eq(proto.tm.timeout, TW_TIMEOUT_NONE);
  pump(a, 4);
  cr_assert_eq(proto.timed_out, 0);
  tear_down();
}

/* setTimeout returns the previous timeout. */
TWT_TEST(policies, test_set_timeout_return) {
  double prev = 0;
  set_up();
  proto.tm.timeout = 5;
  cr_assert_eq(tw_timeout_mixin_set_timeout(&proto.tm, 10, &prev), 0);
  cr_assert_eq(prev, 5);
  cr_assert_eq(tw_timeout_mixin_set_timeout(&proto.tm, TW_TIMEOUT_NONE, &prev),
               0);
  cr_assert_eq(prev, 10);
  cr_assert_eq(tw_timeout_mixin_set_timeout(&proto.tm, 1, &prev), 0);
  cr_assert_eq(prev, TW_TIMEOUT_NONE);
  cr_assert_eq(proto.tm.timeout, 1);
  /* Clean up the DelayedCall */
  cr_assert_eq(tw_timeout_mixin_set_timeout(&proto.tm, TW_TIMEOUT_NONE, NULL),
               0);
  tear_down();
}

/* A timeout cancelled from elsewhere (the clock dropped it) is cleaned up
 * by setTimeout(None) without an error. */
TWT_TEST(policies, test_set_timeout_cancle_already_cancelled) {
  tw_delayed_call *dc[2];
  set_up();
  cr_assert_eq(tw_timeout_mixin_set_timeout(&proto.tm, 3, NULL), 0);
  cr_assert_eq(tw_clock_get_delayed_calls(clock_, dc, 2), 1);
  cr_assert_eq(tw_delayed_call_cancel(dc[0]), 0);
  cr_assert_neq(proto.tm.timeout, TW_TIMEOUT_NONE);
  cr_assert_eq(tw_timeout_mixin_set_timeout(&proto.tm, TW_TIMEOUT_NONE, NULL),
               0);
  cr_assert_eq(proto.tm.timeout, TW_TIMEOUT_NONE);
  cr_assert_eq(tw_timeout_mixin_armed(&proto.tm), 0);
  tear_down();
}

/* ---- twuv's own ------------------------------------------------------------ */

/* A timer cancelled from elsewhere: a new period arms a new one, and
 * reset does nothing (Twisted's reset would raise AlreadyCancelled). */
TWT_TEST(policies, cancelled_elsewhere_then_new_period_arms_again) {
  tw_delayed_call *dc[2];
  static const double a[] = {0, 2.0};
  set_up();
  make_connection(); /* armed: 3 */
  cr_assert_eq(tw_clock_get_delayed_calls(clock_, dc, 2), 1);
  cr_assert_eq(tw_delayed_call_cancel(dc[0]), 0);
  cr_assert_eq(tw_timeout_mixin_reset_timeout(&proto.tm), 0);
  cr_assert_eq(tw_timeout_mixin_armed(&proto.tm), 0);
  cr_assert_eq(tw_clock_pending(clock_), 0);
  cr_assert_eq(tw_timeout_mixin_set_timeout(&proto.tm, 2, NULL), 0);
  cr_assert_eq(tw_timeout_mixin_armed(&proto.tm), 1);
  pump(a, 2);
  cr_assert_eq(proto.timed_out, 1);
  cr_assert_eq(tw_timeout_mixin_armed(&proto.tm), 0);
  /* after the timeout: reset does nothing (no timer), as Twisted */
  cr_assert_eq(tw_timeout_mixin_reset_timeout(&proto.tm), 0);
  cr_assert_eq(tw_clock_pending(clock_), 0);
  tear_down();
}

/* A timeout of 0 fires on the next advance, as callLater(0). */
TWT_TEST(policies, zero_timeout_fires_on_next_advance) {
  set_up();
  proto.tm.timeout = 0;
  make_connection();
  cr_assert_eq(proto.timed_out, 0);
  cr_assert_eq(tw_clock_advance(clock_, 0), 1);
  cr_assert_eq(proto.timed_out, 1);
  tear_down();
}

/* The default timeoutConnection loses the connection. */
TWT_TEST(policies, default_timeout_connection_loses_the_connection) {
  set_up();
  proto.tm.timeout_connection = NULL;
  make_connection();
  cr_assert_eq(tw_clock_advance(clock_, 3), 1);
  cr_assert_eq(proto.timed_out, 0);
  cr_assert_eq(tw_string_transport_disconnecting(st), 1);
  tear_down();
}

/* A protocol that forgets tw_timeout_mixin_connection_lost: the
 * transport cancels the timer after connection_lost, before dealloc
 * frees the protocol (a factory-made one); advancing the clock past the
 * timeout then calls nothing (ASan/valgrind would see a use after free). */
static int freed_protocols;
static void free_tester(tw_protocol *p) {
  freed_protocols++;
  free(p);
}

static tester *heap_tester(void) {
  tester *t = calloc(1, sizeof *t);
  cr_assert_not_null(t);
  tw_protocol_init(&t->base, &tester_ops);
  t->base.dealloc = free_tester;
  cr_assert_eq(tw_timeout_mixin_init(&t->tm, &t->base, clock_, tester_timeout),
               0);
  t->tm.timeout = 3;
  t->forget_in_lost = 1;
  return t;
}

TWT_TEST(policies, forgotten_cancel_is_done_by_the_transport) {
  tester *t;
  set_up();
  freed_protocols = 0;
  t = heap_tester();
  cr_assert_eq(tw_string_transport_new(
                   &st, NULL, NULL, TW_STRING_TRANSPORT_WITH_DISCONNECTION),
               0);
  cr_assert_eq(tw_string_transport_connect(st, &t->base), 0);
  cr_assert_eq(tw_clock_pending(clock_), 1);
  cr_assert_eq(tw_transport_lose_connection(tw_string_transport_transport(st)),
               0);
  cr_assert_eq(freed_protocols, 1);
  cr_assert_eq(tw_clock_pending(clock_), 0);
  cr_assert_eq(tw_clock_advance(clock_, 10), 0);
  tw_string_transport_free(st);
  st = NULL;
  tw_clock_free(clock_);
}

/* The same through the pump (iosim), and a timer re-armed after a
 * reset: still one watch, cancelled once. */
TWT_TEST(policies, forgotten_cancel_over_the_pump) {
  tester *t, other;
  tw_iopump *pump_;
  static const double a[] = {1, 1};
  set_up();
  freed_protocols = 0;
  t = heap_tester();
  memset(&other, 0, sizeof other);
  tw_protocol_init(&other.base, &tester_ops);
  cr_assert_eq(tw_timeout_mixin_init(&other.tm, &other.base, clock_,
                                     tester_timeout),
               0);
  cr_assert_eq(tw_iopump_connect(&pump_, &t->base, &other.base, 1), 0);
  pump(a, 2);
  cr_assert_eq(tw_timeout_mixin_reset_timeout(&t->tm), 0);
  cr_assert_eq(tw_timeout_mixin_set_timeout(&t->tm, 5, NULL), 0);
  cr_assert_eq(tw_clock_pending(clock_), 1);
  cr_assert_eq(tw_transport_lose_connection(tw_iopump_client_transport(pump_)),
               0);
  cr_assert_geq(tw_iopump_flush(pump_), 0);
  cr_assert_eq(freed_protocols, 1);
  cr_assert_eq(other.lost, 1);
  cr_assert_eq(tw_clock_pending(clock_), 0);
  cr_assert_eq(tw_clock_advance(clock_, 10), 0);
  tw_iopump_free(pump_);
  tw_clock_free(clock_);
}

/* A timeout_connection that ends the connection at once (the string
 * transport with disconnection delivers connection_lost inside
 * lose_connection: the protocol is freed inside the timer's call). */
static void timeout_and_lose(tw_timeout_mixin *m) {
  tw_timeout_mixin_timeout_connection(m);
}

TWT_TEST(policies, timeout_connection_may_free_the_protocol) {
  tester *t;
  set_up();
  freed_protocols = 0;
  t = heap_tester();
  t->forget_in_lost = 0;
  t->tm.timeout_connection = timeout_and_lose;
  cr_assert_eq(tw_string_transport_new(
                   &st, NULL, NULL, TW_STRING_TRANSPORT_WITH_DISCONNECTION),
               0);
  cr_assert_eq(tw_string_transport_connect(st, &t->base), 0);
  cr_assert_eq(tw_clock_advance(clock_, 3), 1);
  cr_assert_eq(freed_protocols, 1);
  cr_assert_eq(tw_string_transport_lost(st), 1);
  tw_string_transport_free(st);
  tw_clock_free(clock_);
}

/* A timer armed before the protocol had a transport is not watched: the
 * program cancels it (here after the connection came and went: the
 * connection's own set/reset calls start watching it). */
TWT_TEST(policies, timer_armed_without_transport_is_the_programs) {
  set_up();
  proto.forget_in_lost = 1;
  cr_assert_eq(tw_timeout_mixin_set_timeout(&proto.tm, 7, NULL), 0);
  cr_assert_eq(tw_clock_pending(clock_), 1);
  make_connection(); /* set_timeout(3) moves it, and now watches */
  cr_assert_eq(tw_clock_pending(clock_), 1);
  tw_string_transport_free(st); /* connection_lost forgets: the watch */
  st = NULL;
  cr_assert_eq(tw_clock_pending(clock_), 0);
  /* without a transport: stays until cancelled */
  cr_assert_eq(tw_timeout_mixin_set_timeout(&proto.tm, 7, NULL), 0);
  cr_assert_eq(tw_clock_pending(clock_), 1);
  tw_timeout_mixin_connection_lost(&proto.tm);
  cr_assert_eq(tw_clock_pending(clock_), 0);
  cr_assert_eq(proto.tm.timeout, TW_TIMEOUT_NONE);
  tear_down();
}

/* Many watched protocols (the watch table grows and shrinks back to
 * nothing). */
TWT_TEST(policies, many_watched_protocols) {
  enum { N = 100 };
  tw_string_transport *sts[N];
  int i;
  set_up();
  freed_protocols = 0;
  for (i = 0; i < N; i++) {
    tester *t = heap_tester();
    cr_assert_eq(tw_string_transport_new(&sts[i], NULL, NULL, 0), 0);
    cr_assert_eq(tw_string_transport_connect(sts[i], &t->base), 0);
  }
  cr_assert_eq(tw_clock_pending(clock_), N);
  for (i = 0; i < N; i += 2) tw_string_transport_free(sts[i]);
  cr_assert_eq(tw_clock_pending(clock_), N / 2);
  for (i = 1; i < N; i += 2) tw_string_transport_free(sts[i]);
  cr_assert_eq(freed_protocols, N);
  cr_assert_eq(tw_clock_pending(clock_), 0);
  tw_clock_free(clock_);
}

TWT_TEST(policies, bad_input_changes_nothing) {
  tw_timeout_mixin zero;
  double prev = 42;
  set_up();
  memset(&zero, 0, sizeof zero);
  cr_assert_eq(tw_timeout_mixin_init(NULL, &proto.base, clock_, NULL),
               TW_EINVAL);
  cr_assert_eq(tw_timeout_mixin_init(&zero, NULL, clock_, NULL), TW_EINVAL);
  cr_assert_eq(tw_timeout_mixin_init(&zero, &proto.base, NULL, NULL),
               TW_EINVAL);
  cr_assert_eq(tw_timeout_mixin_set_timeout(NULL, 1, &prev), TW_EINVAL);
  cr_assert_eq(tw_timeout_mixin_set_timeout(&zero, 1, &prev), TW_EINVAL);
  cr_assert_eq(tw_timeout_mixin_set_timeout(&proto.tm, -2, &prev), TW_EINVAL);
  cr_assert_eq(tw_timeout_mixin_set_timeout(&proto.tm, NAN, &prev), TW_EINVAL);
  cr_assert_eq(tw_timeout_mixin_set_timeout(&proto.tm, INFINITY, &prev),
               TW_EINVAL);
  cr_assert_eq(prev, 42);
  cr_assert_eq(proto.tm.timeout, 3);
  cr_assert_eq(tw_clock_pending(clock_), 0);
  cr_assert_eq(tw_timeout_mixin_reset_timeout(NULL), TW_EINVAL);
  cr_assert_eq(tw_timeout_mixin_reset_timeout(&zero), TW_EINVAL);
  cr_assert_eq(tw_timeout_mixin_timeout_connection(NULL), TW_EINVAL);
  /* no transport: lose_connection's TW_EINVAL */
  cr_assert_eq(tw_timeout_mixin_timeout_connection(&proto.tm), TW_EINVAL);
  tw_timeout_mixin_connection_lost(NULL);
  tw_timeout_mixin_connection_lost(&zero);
  cr_assert_eq(tw_timeout_mixin_armed(NULL), 0);
  cr_assert_eq(tw_timeout_mixin_armed(&zero), 0);
  /* a bad timeout field: reset refuses it once a timer runs */
  cr_assert_eq(tw_timeout_mixin_set_timeout(&proto.tm, 1, NULL), 0);
  proto.tm.timeout = NAN;
  cr_assert_eq(tw_timeout_mixin_reset_timeout(&proto.tm), TW_EINVAL);
  cr_assert_eq(tw_timeout_mixin_armed(&proto.tm), 1);
  tw_timeout_mixin_connection_lost(&proto.tm);
  tear_down();
}

/* ---- over loopback, on the reactor's clock ------------------------------- */

static tw_reactor *R;
static int srv_lost, cli_lost;
static const tw_error_type *cli_lost_type;

static void idle_made(tw_protocol *p) {
  tester *t = (tester *)p;
  cr_assert_eq(tw_timeout_mixin_init(&t->tm, p, tw_reactor_clock(R), NULL), 0);
  /* small, and nothing asserts how long it took */
  cr_assert_eq(tw_timeout_mixin_set_timeout(&t->tm, 0.01, NULL), 0);
}
static void idle_lost(tw_protocol *p, tw_failure *reason) {
  (void)p;
  (void)reason;
  srv_lost++;
}
static const tw_protocol_ops idle_ops = {.connection_made = idle_made,
                                         .data_received = tester_data,
                                         .connection_lost = idle_lost};
static void client_lost(tw_protocol *p, tw_failure *reason) {
  (void)p;
  cli_lost++;
  cli_lost_type = tw_failure_type(reason);
}
static const tw_protocol_ops client_ops = {.connection_lost = client_lost};

TWT_TEST(policies, idle_connection_dropped_over_loopback) {
  tw_factory sf, cf;
  tw_listening_port *port;
  tw_connector *c;
  tw_address a;
  uint64_t end = uv_hrtime() + 10ull * 1000000000ull;
  int i;
  R = twt_new_reactor(0);
  srv_lost = cli_lost = 0;
  cr_assert_eq(tw_factory_for_protocol(&sf, &idle_ops, sizeof(tester), NULL),
               0);
  cr_assert_eq(tw_factory_for_protocol(&cf, &client_ops, sizeof(tw_protocol),
                                       NULL),
               0);
  cr_assert_eq(tw_listen_tcp(&port, R, 0, &sf, 0, "127.0.0.1"), 0);
  cr_assert_eq(tw_listening_port_get_host(port, &a), 0);
  cr_assert_eq(tw_connect_tcp(&c, R, "127.0.0.1", a.port, &cf, 5.0, NULL), 0);
  for (i = 0; i < 20000 && !(srv_lost && cli_lost) && uv_hrtime() < end; i++)
    cr_assert_eq(tw_reactor_iterate(R, 0.05), 0);
  cr_assert_eq(srv_lost, 1);
  cr_assert_eq(cli_lost, 1);
  cr_assert_eq(cli_lost_type, &TW_CONNECTION_DONE);
  twt_free_reactor(R);
}
