/*
 * tests/test_reconnect.c - reconnect.h: ReconnectingClientFactory. The
 * port of twisted/test/test_factories.py's ReconnectingFactoryTests
 * (names in snake_case; the three pickling tests have no C counterpart:
 * nothing is serialized) with real connectors over loopback where
 * Twisted used fakes, internet/test/test_tcp.py's test_reconnect, the
 * back-off arithmetic against values recorded from Twisted 22.4's
 * retry() (tests/twisted_reconnect_oracle.py ->
 * tests/support/reconnect_traces.h: the same uniforms must give the same
 * doubles), and twuv's own: overrides, max_retries over refused
 * connections, bad input.
 *
 * Network rules: 127.0.0.1, port 0, every loop bounded (spin), no sleeps,
 * no timing asserts; per-test leak checks (TWT_TEST).
 */
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "reconnect_traces.h"
#include "twtest.h"

TWT_SUITE(reconnect);

#define spin twt_spin /* twtest.h */

/* ---- a server that closes each connection at once ----------------------- */

static int srv_made;
static tw_listening_port *closing_port; /* ClosingFactory: stop on first */

static void closing_made(tw_protocol *p) {
  srv_made++;
  tw_transport_lose_connection(p->transport);
}
static const tw_protocol_ops closing_ops = {.connection_made = closing_made};

static tw_protocol *closing_build(tw_factory *f, const tw_address *a) {
  tw_protocol *p = calloc(1, sizeof *p);
  (void)f;
  (void)a;
  cr_assert_not_null(p);
  tw_protocol_init(p, &closing_ops);
  p->dealloc = (void (*)(tw_protocol *))free;
  if (closing_port != NULL) {
    tw_listening_port_stop(closing_port, NULL);
    closing_port = NULL;
  }
  return p;
}
static const tw_factory_ops closing_fops = {.build_protocol = closing_build};

/* ---- the client side: a reconnecting factory that records ----------------- */

static int cli_made, cli_lost, connecting, failed, lost, built;
static const tw_error_type *failed_type;
static int override_calls_base = 1;

static void cli_made_cb(tw_protocol *p) {
  (void)p;
  cli_made++;
}
static void cli_lost_cb(tw_protocol *p, tw_failure *r) {
  (void)p;
  (void)r;
  cli_lost++;
}
static const tw_protocol_ops cli_ops = {.connection_made = cli_made_cb,
                                        .connection_lost = cli_lost_cb};

static tw_protocol *cli_build(tw_factory *f, const tw_address *a) {
  tw_protocol *p = calloc(1, sizeof *p);
  (void)f;
  (void)a;
  cr_assert_not_null(p);
  built++;
  tw_protocol_init(p, &cli_ops);
  p->dealloc = (void (*)(tw_protocol *))free;
  return p;
}
static void cli_connecting(tw_factory *f, tw_connector *c) {
  (void)f;
  (void)c;
  connecting++;
}
static void cli_failed(tw_factory *f, tw_connector *c, tw_failure *reason) {
  failed++;
  failed_type = tw_failure_type(reason);
  if (override_calls_base)
    tw_reconnecting_factory_client_connection_failed(
        (tw_reconnecting_factory *)f, c, reason);
}
static void cli_conn_lost(tw_factory *f, tw_connector *c, tw_failure *reason) {
  lost++;
  if (override_calls_base)
    tw_reconnecting_factory_client_connection_lost(
        (tw_reconnecting_factory *)f, c, reason);
}

/* Only build_protocol: the defaults retry. */
static const tw_factory_ops plain_ops = {.build_protocol = cli_build,
                                         .started_connecting = cli_connecting};
/* Overrides that record, then (override_calls_base) call the base. */
static const tw_factory_ops recording_ops = {
    .build_protocol = cli_build,
    .started_connecting = cli_connecting,
    .client_connection_failed = cli_failed,
    .client_connection_lost = cli_conn_lost};

static tw_reactor *R;
static tw_clock *clk;
static tw_factory SF;
static tw_reconnecting_factory rf;

static void set_up(const tw_factory_ops *ops) {
  srv_made = cli_made = cli_lost = connecting = failed = lost = built = 0;
  failed_type = NULL;
  override_calls_base = 1;
  closing_port = NULL;
  R = twt_new_reactor(0);
  clk = tw_clock_new_manual();
  cr_assert_not_null(clk);
  tw_factory_init(&SF, &closing_fops);
  cr_assert_eq(tw_reconnecting_factory_init(&rf, ops, clk), 0);
}

static void tear_down(void) {
  tw_reconnecting_factory_stop_trying(&rf);
  twt_free_reactor(R);
  tw_clock_free(clk);
}

/* A port that refuses connections: bound, not listening, held by the
 * test (so that no other process can start listening on it meanwhile). */
static int refusing_port(int *fd) {
  struct sockaddr_in a;
  socklen_t len = sizeof a;
  *fd = socket(AF_INET, SOCK_STREAM, 0);
  cr_assert_geq(*fd, 0);
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  cr_assert_eq(bind(*fd, (struct sockaddr *)&a, sizeof a), 0);
  cr_assert_eq(getsockname(*fd, (struct sockaddr *)&a, &len), 0);
  return ntohs(a.sin_port);
}

static int listen_local(tw_listening_port **p) {
  tw_address a;
  cr_assert_eq(tw_listen_tcp(p, R, 0, &SF, 0, "127.0.0.1"), 0);
  cr_assert_eq(tw_listening_port_get_host(*p, &a), 0);
  return a.port;
}

/* Advance the manual clock to the waiting retry (it connects). */
static void run_retry(void) {
  tw_delayed_call *dc;
  cr_assert_eq(tw_clock_get_delayed_calls(clk, &dc, 1), 1);
  cr_assert_geq(tw_clock_advance(clk, tw_delayed_call_get_time(dc) -
                                          tw_clock_seconds(clk)),
                1);
}

/* ---- ReconnectingFactoryTests ----------------------------------------------- */

/* stopTrying while connected: when the connection is later lost, no
 * attempt to reconnect (and the connector is not asked to stop). */
TWT_TEST(reconnect, test_stop_trying_when_connected) {
  tw_listening_port *p;
  tw_connector *c;
  int port;
  static const tw_protocol_ops quiet = {0};
  set_up(&recording_ops);
  /* a server that keeps the connection: its protocols do nothing */
  cr_assert_eq(tw_factory_for_protocol(&SF, &quiet, sizeof(tw_protocol), NULL),
               0);
  port = listen_local(&p);
  cr_assert_eq(tw_connect_tcp(&c, R, "127.0.0.1", port, &rf.base, 5, NULL),
               0);
  cr_assert(spin(R, &cli_made)); /* connected (buildProtocol) */
  tw_reconnecting_factory_stop_trying(&rf);
  cr_assert_eq(cli_lost, 0); /* the connection is not touched */
  cr_assert_eq(tw_connector_disconnect(c), 0);
  cr_assert(spin(R, &lost));
  cr_assert_eq(rf.continue_trying, 0);
  cr_assert_eq(tw_clock_pending(clk), 0);
  cr_assert_eq(connecting, 1);
  tear_down();
}

/* stopTrying stops the connector's attempt in progress, and the failure
 * that follows does not retry. */
TWT_TEST(reconnect, test_stop_trying_does_not_reconnect) {
  tw_listening_port *p;
  tw_connector *c;
  int port;
  set_up(&recording_ops);
  port = listen_local(&p);
  cr_assert_eq(tw_connect_tcp(&c, R, "127.0.0.1", port, &rf.base, 5, NULL),
               0);
  rf.connector = c; /* an active attempt */
  tw_reconnecting_factory_stop_trying(&rf);
  cr_assert(spin(R, &failed));
  cr_assert_eq(failed_type, &TW_USER_ERROR);
  cr_assert_eq(tw_clock_pending(clk), 0);
  cr_assert_eq(tw_reconnecting_factory_waiting(&rf), 0);
  cr_assert_eq(connecting, 1); /* never attempted again */
  cr_assert_eq(built, 0);
  tear_down();
}

/* The clock used for the retry is the one given. */
TWT_TEST(reconnect, test_parametrized_clock) {
  tw_listening_port *p;
  tw_connector *c;
  int port;
  set_up(&plain_ops);
  port = listen_local(&p);
  cr_assert_eq(tw_connect_tcp(&c, R, "127.0.0.1", port, &rf.base, 5, NULL),
               0);
  cr_assert_eq(tw_reconnecting_factory_client_connection_lost(&rf, c, NULL),
               0);
  cr_assert_eq(tw_clock_pending(clk), 1);
  cr_assert_eq(tw_reconnecting_factory_waiting(&rf), 1);
  cr_assert_eq(rf.connector, c);
  tear_down();
}

/* ---- internet/test/test_tcp.py: test_reconnect ------------------------------ */

/* connector.connect() from clientConnectionLost makes a new attempt (here
 * the server stopped listening at its first connection: refused). */
static void lost_then_connect(tw_factory *f, tw_connector *c,
                              tw_failure *reason) {
  (void)f;
  (void)reason;
  lost++;
  cr_assert_eq(tw_connector_connect(c), 0);
}
static const tw_factory_ops connect_again_ops = {
    .build_protocol = cli_build,
    .started_connecting = cli_connecting,
    .client_connection_failed = cli_failed,
    .client_connection_lost = lost_then_connect};

TWT_TEST(reconnect, test_reconnect) {
  tw_listening_port *p;
  tw_connector *c;
  int port;
  set_up(&connect_again_ops);
  override_calls_base = 0;
  port = listen_local(&p);
  closing_port = p;
  cr_assert_eq(tw_connect_tcp(&c, R, "127.0.0.1", port, &rf.base, 5, NULL),
               0);
  cr_assert(spin(R, &failed));
  cr_assert_eq(failed_type, &TW_NET_CONNECTION_REFUSED_ERROR);
  cr_assert_eq(cli_made, 1); /* (made, closed) == (1, 1) */
  cr_assert_eq(cli_lost, 1);
  cr_assert_eq(lost, 1);
  cr_assert_eq(connecting, 2);
  tear_down();
}

/* ---- the back-off against Twisted ---------------------------------------------- */

typedef struct seq {
  const double *u;
  size_t n, i;
} seq;

static double seq_random(void *arg) {
  seq *s = arg;
  cr_assert_lt(s->i, s->n, "more uniforms drawn than Twisted drew");
  return s->u[s->i++];
}

static void replay(const double *u, size_t nu, const rc_step *steps,
                   size_t nsteps, int reset_at, double factor, double jitter,
                   double max_delay, double initial_delay, int max_retries) {
  tw_listening_port *p;
  tw_connector *c;
  seq s = {u, nu, 0};
  size_t i;
  int port;
  set_up(&plain_ops);
  port = listen_local(&p);
  cr_assert_eq(tw_connect_tcp(&c, R, "127.0.0.1", port, &rf.base, 5, NULL),
               0);
  rf.factor = factor;
  rf.jitter = jitter;
  rf.max_delay = max_delay;
  rf.initial_delay = initial_delay;
  rf.delay = initial_delay;
  rf.max_retries = max_retries;
  rf.random = seq_random;
  rf.random_arg = &s;
  for (i = 0; i < nsteps; i++) {
    tw_delayed_call *dc;
    cr_assert_eq(tw_reconnecting_factory_retry(&rf, c), 0);
    cr_assert_eq(rf.delay, steps[i].delay, "step %zu: %a != Twisted's %a", i,
                 rf.delay, steps[i].delay);
    cr_assert_eq(rf.retries, steps[i].retries);
    cr_assert_eq(tw_reconnecting_factory_waiting(&rf), steps[i].scheduled);
    if (steps[i].scheduled) {
      cr_assert_eq(tw_clock_get_delayed_calls(clk, &dc, 1), 1);
      cr_assert_eq(tw_delayed_call_get_time(dc),
                   tw_clock_seconds(clk) + steps[i].delay);
      /* as Twisted's run: the call runs (the connector is busy: ignored) */
      run_retry();
    }
    if ((int)i == reset_at) tw_reconnecting_factory_reset_delay(&rf);
  }
  if (nu > 1 || u[0] != 0) cr_assert_eq(s.i, nu, "fewer uniforms drawn");
  tear_down();
}

#define REPLAY(name, ...)                                                   \
  replay(rc_##name##_uniforms,                                              \
         sizeof rc_##name##_uniforms / sizeof rc_##name##_uniforms[0],      \
         rc_##name##_steps,                                                 \
         sizeof rc_##name##_steps / sizeof rc_##name##_steps[0], __VA_ARGS__)

TWT_TEST(reconnect, retry_matches_twisted_defaults) {
  REPLAY(defaults, RC_DEFAULTS_RESET_AT, TW_RECONNECT_FACTOR,
         TW_RECONNECT_JITTER, 3600, 1.0, -1);
}

TWT_TEST(reconnect, retry_matches_twisted_max_retries) {
  REPLAY(max_retries_5, RC_MAX_RETRIES_5_RESET_AT, TW_RECONNECT_FACTOR,
         TW_RECONNECT_JITTER, 3600, 1.0, 5);
}

TWT_TEST(reconnect, retry_matches_twisted_without_jitter) {
  REPLAY(no_jitter_max_10, RC_NO_JITTER_MAX_10_RESET_AT, TW_RECONNECT_FACTOR,
         0, 10, 1.0, -1);
}

TWT_TEST(reconnect, retry_matches_twisted_phi_small_max_delay) {
  REPLAY(phi_small_max, RC_PHI_SMALL_MAX_RESET_AT, 1.6180339887498948,
         TW_RECONNECT_JITTER, 4, 0.5, -1);
}

TWT_TEST(reconnect, retry_matches_twisted_reset_delay) {
  REPLAY(reset_after_4, RC_RESET_AFTER_4_RESET_AT, TW_RECONNECT_FACTOR,
         TW_RECONNECT_JITTER, 3600, 1.0, -1);
}

/* Python's normalvariate on a known sequence: u1 = 0.75, u2 = 1 - 0.5. */
static double two_values(void *arg) {
  int *i = arg;
  return (*i)++ == 0 ? 0.75 : 0.5;
}

TWT_TEST(reconnect, normalvariate_is_pythons) {
  int i = 0;
  const double magic = 4 * exp(-0.5) / sqrt(2.0);
  double z = magic * 0.25 / 0.5;
  cr_assert_eq(tw_normalvariate(10, 2, two_values, &i), 10 + z * 2);
  cr_assert_eq(i, 2);
  cr_assert(isnan(tw_normalvariate(0, 1, NULL, NULL)));
}

/* ---- over loopback ------------------------------------------------------------------ */

/* The defaults reconnect after each loss, on the clock given: three
 * connections, each closed by the server, then stop_trying. */
TWT_TEST(reconnect, reconnects_after_each_loss) {
  tw_listening_port *p;
  tw_connector *c;
  int port, round;
  set_up(&plain_ops);
  port = listen_local(&p);
  cr_assert_eq(tw_connect_tcp(&c, R, "127.0.0.1", port, &rf.base, 5, NULL),
               0);
  for (round = 1; round <= 3; round++) {
    int want = round;
    /* wait for this round's loss and its retry */
    uint64_t end = uv_hrtime() + 10ull * 1000000000ull;
    while (!(cli_lost >= want && tw_reconnecting_factory_waiting(&rf)) &&
           uv_hrtime() < end)
      cr_assert_eq(tw_reactor_iterate(R, 0.05), 0);
    cr_assert_eq(cli_made, round);
    cr_assert_eq(rf.retries, round);
    cr_assert_eq(rf.connector, c);
    if (round < 3) run_retry();
  }
  cr_assert_eq(connecting, 3);
  tw_reconnecting_factory_stop_trying(&rf);
  cr_assert_eq(tw_clock_pending(clk), 0);
  tear_down();
}

/* max_retries over refused connections, on the reactor's clock: the
 * first attempt and max_retries retries, then it gives up. */
TWT_TEST(reconnect, gives_up_after_max_retries_refused) {
  int fd;
  tw_connector *c;
  int port, done = 0;
  set_up(&recording_ops);
  rf.clock = tw_reactor_clock(R);
  rf.initial_delay = rf.delay = 0.001;
  rf.factor = 2;
  rf.jitter = 0;
  rf.max_retries = 3;
  port = refusing_port(&fd);
  cr_assert_eq(tw_connect_tcp(&c, R, "127.0.0.1", port, &rf.base, 5, NULL),
               0);
  {
    uint64_t end = uv_hrtime() + 10ull * 1000000000ull;
    while (!(failed == 4 && !tw_reconnecting_factory_waiting(&rf)) &&
           uv_hrtime() < end)
      cr_assert_eq(tw_reactor_iterate(R, 0.05), 0);
  }
  done = failed;
  cr_assert_eq(done, 4);
  cr_assert_eq(connecting, 4);
  cr_assert_eq(rf.retries, 4); /* counted, then abandoned */
  cr_assert_eq(failed_type, &TW_NET_CONNECTION_REFUSED_ERROR);
  cr_assert_eq(tw_reconnecting_factory_waiting(&rf), 0);
  tear_down();
  close(fd);
}

/* A user override that does not call the base: no retry. */
TWT_TEST(reconnect, override_without_base_does_not_retry) {
  int fd;
  tw_connector *c;
  int port;
  set_up(&recording_ops);
  override_calls_base = 0;
  port = refusing_port(&fd);
  cr_assert_eq(tw_connect_tcp(&c, R, "127.0.0.1", port, &rf.base, 5, NULL),
               0);
  cr_assert(spin(R, &failed));
  cr_assert_eq(tw_clock_pending(clk), 0);
  cr_assert_eq(rf.retries, 0);
  tear_down();
  close(fd);
}

/* reset_delay after connecting (Twisted's advice): the next loss starts
 * over from initial_delay; continue_trying comes back. */
static tw_protocol *build_and_reset(tw_factory *f, const tw_address *a) {
  tw_reconnecting_factory_reset_delay((tw_reconnecting_factory *)f);
  return cli_build(f, a);
}
static const tw_factory_ops resetting_ops = {.build_protocol = build_and_reset};

TWT_TEST(reconnect, reset_delay_in_build_protocol) {
  tw_listening_port *p;
  tw_connector *c;
  int port;
  set_up(&resetting_ops);
  rf.jitter = 0;
  rf.retries = 7;
  rf.delay = 100;
  rf.continue_trying = 0; /* reset_delay sets it again */
  port = listen_local(&p);
  cr_assert_eq(tw_connect_tcp(&c, R, "127.0.0.1", port, &rf.base, 5, NULL),
               0);
  cr_assert(spin(R, &cli_lost));
  {
    uint64_t end = uv_hrtime() + 10ull * 1000000000ull;
    while (!tw_reconnecting_factory_waiting(&rf) && uv_hrtime() < end)
      cr_assert_eq(tw_reactor_iterate(R, 0.05), 0);
  }
  cr_assert_eq(rf.retries, 1);
  cr_assert_eq(rf.delay, TW_RECONNECT_FACTOR);
  tear_down();
}

TWT_TEST(reconnect, bad_input) {
  tw_reconnecting_factory z;
  set_up(&plain_ops);
  cr_assert_eq(tw_reconnecting_factory_init(NULL, &plain_ops, clk), TW_EINVAL);
  cr_assert_eq(tw_reconnecting_factory_init(&z, NULL, clk), TW_EINVAL);
  cr_assert_eq(tw_reconnecting_factory_init(&z, &plain_ops, NULL), TW_EINVAL);
  /* no connector to retry (Twisted's ValueError): nothing counted */
  cr_assert_eq(tw_reconnecting_factory_retry(&rf, NULL), TW_EINVAL);
  cr_assert_eq(rf.retries, 0);
  cr_assert_eq(tw_reconnecting_factory_retry(NULL, NULL), TW_EINVAL);
  cr_assert_eq(
      tw_reconnecting_factory_client_connection_failed(NULL, NULL, NULL),
      TW_EINVAL);
  cr_assert_eq(tw_reconnecting_factory_client_connection_lost(NULL, NULL, NULL),
               TW_EINVAL);
  tw_reconnecting_factory_stop_trying(NULL);
  tw_reconnecting_factory_reset_delay(NULL);
  cr_assert_eq(tw_reconnecting_factory_waiting(NULL), 0);
  /* defaults are Twisted's */
  cr_assert_eq(rf.max_delay, 3600);
  cr_assert_eq(rf.initial_delay, 1.0);
  cr_assert_eq(rf.delay, 1.0);
  cr_assert_eq(rf.factor, 2.7182818284590451);
  cr_assert_eq(rf.jitter, 0.119626565582);
  cr_assert_eq(rf.max_retries, -1);
  cr_assert_eq(rf.continue_trying, 1);
  cr_assert_null(rf.connector);
  /* not trying: retry does nothing */
  rf.continue_trying = 0;
  cr_assert_eq(tw_reconnecting_factory_retry(&rf, NULL), 0);
  tear_down();
}
