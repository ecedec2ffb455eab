/*
 * tests/test_testing.c - testing.h's doubles, and through them the rules
 * protocol.c applies to every transport (producers, lose_connection held
 * by a producer, dropped writes, connection_lost once and never
 * re-entrant).
 *
 * Ports twisted/internet/test/test_testing.py's StringTransportTests and
 * NonStreamingProducerTests, twisted/test/test_iosim.py (FakeTransportTests,
 * StrictPushProducerTests, IOPumpTests) and the producer and
 * re-entrancy tests of twisted/test/test_loopback.py (test_pushProducer,
 * test_pullProducer, test_writeNotReentrant, greetings), the loopback
 * being the pump here with a manual clock for callLater.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "twtest.h"

TWT_SUITE(testing);

/* ---- a recording protocol ----------------------------------------------- */

typedef struct rec {
  tw_protocol base;
  char got[256];
  size_t n;
  int made, lost, read_lost, write_lost;
  int in_callback;         /* inside one of our callbacks */
  int lost_inside;         /* connection_lost came while in_callback */
  const tw_error_type *reason_type;
  char reason_msg[128];
  int lose_on_data;        /* lose_connection from data_received */
  int abort_on_data;
  const char *greeting;    /* written from connection_made */
  const char *reply;       /* written for each data_received */
  tw_failure *fail_with;   /* returned by data_received (once) */
  int *order;              /* shared event counter */
  int lost_at;             /* *order when connection_lost came */
  tw_transport *transport_in_lost; /* p->transport during connection_lost */
} rec;

static void rec_made(tw_protocol *p) {
  rec *r = (rec *)p;
  r->in_callback++;
  r->made++;
  if (r->greeting != NULL)
    tw_transport_write(p->transport, r->greeting, strlen(r->greeting));
  r->in_callback--;
}

static tw_failure *rec_data(tw_protocol *p, const char *data, size_t len) {
  rec *r = (rec *)p;
  tw_failure *f;
  r->in_callback++;
  cr_assert_lt(r->n + len, sizeof r->got);
  memcpy(r->got + r->n, data, len);
  r->n += len;
  r->got[r->n] = '\0';
  if (r->reply != NULL)
    tw_transport_write(p->transport, r->reply, strlen(r->reply));
  if (r->lose_on_data) tw_transport_lose_connection(p->transport);
  if (r->abort_on_data) tw_transport_abort_connection(p->transport);
  r->in_callback--;
  f = r->fail_with;
  r->fail_with = NULL;
  return f;
}

static void rec_lost(tw_protocol *p, tw_failure *reason) {
  rec *r = (rec *)p;
  r->lost++;
  if (r->in_callback) r->lost_inside = 1;
  cr_assert_eq(p->connected, 0);
  r->transport_in_lost = p->transport;
  r->reason_type = tw_failure_type(reason);
  snprintf(r->reason_msg, sizeof r->reason_msg, "%s",
           tw_failure_message(reason));
  if (r->order != NULL) r->lost_at = ++*r->order;
}

static void rec_read_lost(tw_protocol *p) { ((rec *)p)->read_lost++; }
static void rec_write_lost(tw_protocol *p) { ((rec *)p)->write_lost++; }

static const tw_protocol_ops rec_ops = {
    .connection_made = rec_made,
    .data_received = rec_data,
    .connection_lost = rec_lost,
};

static const tw_protocol_ops half_ops = {
    .connection_made = rec_made,
    .data_received = rec_data,
    .connection_lost = rec_lost,
    .read_connection_lost = rec_read_lost,
    .write_connection_lost = rec_write_lost,
};

static void rec_init(rec *r) {
  memset(r, 0, sizeof *r);
  tw_protocol_init(&r->base, &rec_ops);
}

/* ---- a recording producer -------------------------------------------------- */

typedef struct prod {
  tw_producer base;
  int paused, resumed, stopped;
  int *order;
  int stopped_at;
  tw_transport *consumer; /* pull: write on resume */
  int writes_left;        /* pull: how many resumes write */
  size_t write_size;
  tw_failure *fail_resume; /* returned by resume (once) */
} prod;

static char big[70000];

static tw_failure *prod_pause(tw_producer *p) {
  ((prod *)p)->paused++;
  return NULL;
}

static tw_failure *prod_resume(tw_producer *p) {
  prod *pr = (prod *)p;
  tw_failure *f = pr->fail_resume;
  pr->resumed++;
  pr->fail_resume = NULL;
  if (f != NULL) return f;
  if (pr->consumer != NULL && pr->writes_left > 0) {
    pr->writes_left--;
    tw_transport_write(pr->consumer, big, pr->write_size);
  }
  return NULL;
}

static tw_failure *prod_stop(tw_producer *p) {
  prod *pr = (prod *)p;
  pr->stopped++;
  if (pr->order != NULL) pr->stopped_at = ++*pr->order;
  return NULL;
}

static const tw_producer_ops prod_ops = {prod_pause, prod_resume, prod_stop};

static void prod_init(prod *p) {
  memset(p, 0, sizeof *p);
  p->base.ops = &prod_ops;
}

static tw_string_transport *new_st(unsigned flags) {
  tw_string_transport *st;
  cr_assert_eq(tw_string_transport_new(&st, NULL, NULL, flags), 0);
  return st;
}

#define T(st) tw_string_transport_transport(st)

static void assert_value(tw_string_transport *st, const char *expect) {
  size_t len;
  const char *v = tw_string_transport_value(st, &len);
  cr_assert_eq(len, strlen(expect), "%zu: %s", len, v);
  cr_assert_str_eq(v, expect);
}

/* ---- StringTransportTests --------------------------------------------------- */

TWT_TEST(testing, register_producer) {
  tw_string_transport *st = new_st(0);
  prod p;
  prod_init(&p);
  cr_assert_eq(tw_transport_register_producer(T(st), &p.base, 1), 0);
  cr_assert_eq(tw_string_transport_producer(st), &p.base);
  cr_assert_eq(tw_string_transport_streaming(st), 1);
  cr_assert_eq(p.resumed, 0); /* a push producer is not resumed */
  tw_string_transport_free(st);
}

TWT_TEST(testing, disallowed_register_producer) {
  tw_string_transport *st = new_st(0);
  prod p, q;
  prod_init(&p);
  prod_init(&q);
  cr_assert_eq(tw_transport_register_producer(T(st), &p.base, 1), 0);
  cr_assert_eq(tw_transport_register_producer(T(st), &q.base, 0), TW_EBUSY);
  cr_assert_eq(tw_string_transport_producer(st), &p.base);
  cr_assert_eq(tw_string_transport_streaming(st), 1);
  cr_assert_eq(q.resumed + q.stopped, 0);
  tw_string_transport_free(st);
}

TWT_TEST(testing, unregister_producer) {
  tw_string_transport *st = new_st(0);
  prod p, q;
  prod_init(&p);
  prod_init(&q);
  cr_assert_eq(tw_transport_register_producer(T(st), &p.base, 0), 0);
  cr_assert_eq(tw_transport_unregister_producer(T(st)), 0);
  cr_assert_null(tw_string_transport_producer(st));
  cr_assert_eq(tw_string_transport_streaming(st), 0);
  cr_assert_eq(tw_transport_register_producer(T(st), &q.base, 1), 0);
  cr_assert_eq(tw_string_transport_producer(st), &q.base);
  cr_assert_eq(tw_string_transport_streaming(st), 1);
  tw_string_transport_free(st);
}

/* Twisted's StringTransport raises here; a real FileDescriptor does not,
 * and neither do we. */
TWT_TEST(testing, unregister_without_producer_is_harmless) {
  tw_string_transport *st = new_st(0);
  cr_assert_eq(tw_transport_unregister_producer(T(st)), 0);
  tw_string_transport_free(st);
}

TWT_TEST(testing, initial_producer_state) {
  tw_string_transport *st = new_st(0);
  cr_assert_str_eq(tw_string_transport_producer_state(st), "producing");
  cr_assert_null(tw_string_transport_producer_state(NULL));
  tw_string_transport_free(st);
}

TWT_TEST(testing, pause_producing) {
  tw_string_transport *st = new_st(0);
  cr_assert_eq(tw_transport_pause_producing(T(st)), 0);
  cr_assert_str_eq(tw_string_transport_producer_state(st), "paused");
  tw_string_transport_free(st);
}

TWT_TEST(testing, resume_producing) {
  tw_string_transport *st = new_st(0);
  cr_assert_eq(tw_transport_pause_producing(T(st)), 0);
  cr_assert_eq(tw_transport_resume_producing(T(st)), 0);
  cr_assert_str_eq(tw_string_transport_producer_state(st), "producing");
  tw_string_transport_free(st);
}

TWT_TEST(testing, stop_producing) {
  tw_string_transport *st = new_st(0);
  cr_assert_eq(tw_transport_stop_producing(T(st)), 0);
  cr_assert_str_eq(tw_string_transport_producer_state(st), "stopped");
  cr_assert_eq(tw_string_transport_disconnecting(st), 0);
  tw_string_transport_free(st);
}

TWT_TEST(testing, stopped_transport_cannot_pause) {
  tw_string_transport *st = new_st(0);
  tw_transport_stop_producing(T(st));
  cr_assert_eq(tw_transport_pause_producing(T(st)), TW_EINVAL);
  cr_assert_str_eq(tw_string_transport_producer_state(st), "stopped");
  tw_string_transport_free(st);
}

TWT_TEST(testing, stopped_transport_cannot_resume) {
  tw_string_transport *st = new_st(0);
  tw_transport_stop_producing(T(st));
  cr_assert_eq(tw_transport_resume_producing(T(st)), TW_EINVAL);
  cr_assert_str_eq(tw_string_transport_producer_state(st), "stopped");
  tw_string_transport_free(st);
}

TWT_TEST(testing, disconnecting_transport_cannot_pause) {
  tw_string_transport *st = new_st(0);
  tw_transport_lose_connection(T(st));
  cr_assert_eq(tw_transport_pause_producing(T(st)), TW_ENOTCONN);
  cr_assert_str_eq(tw_string_transport_producer_state(st), "producing");
  tw_string_transport_free(st);
}

TWT_TEST(testing, disconnecting_transport_cannot_resume) {
  tw_string_transport *st = new_st(0);
  tw_transport_lose_connection(T(st));
  cr_assert_eq(tw_transport_resume_producing(T(st)), TW_ENOTCONN);
  tw_string_transport_free(st);
}

/* StringTransport(lenient=True). */
TWT_TEST(testing, lenient_transport_can_pause_after_lose) {
  tw_string_transport *st = new_st(TW_STRING_TRANSPORT_LENIENT);
  tw_transport_lose_connection(T(st));
  cr_assert_eq(tw_transport_pause_producing(T(st)), 0);
  cr_assert_str_eq(tw_string_transport_producer_state(st), "paused");
  cr_assert_eq(tw_transport_resume_producing(T(st)), 0);
  cr_assert_str_eq(tw_string_transport_producer_state(st), "producing");
  tw_string_transport_free(st);
}

TWT_TEST(testing, lose_connection_sets_disconnecting) {
  tw_string_transport *st = new_st(0);
  cr_assert_eq(tw_string_transport_disconnecting(st), 0);
  cr_assert_eq(tw_transport_lose_connection(T(st)), 0);
  cr_assert_eq(tw_string_transport_disconnecting(st), 1);
  cr_assert_eq(tw_transport_disconnecting(T(st)), 1);
  cr_assert_eq(tw_string_transport_disconnected(st), 0);
  tw_string_transport_free(st);
}

TWT_TEST(testing, abort_connection_sets_disconnected) {
  tw_string_transport *st = new_st(0);
  cr_assert_eq(tw_transport_abort_connection(T(st)), 0);
  cr_assert_eq(tw_string_transport_disconnected(st), 1);
  cr_assert_eq(tw_string_transport_disconnecting(st), 1);
  tw_string_transport_free(st);
}

TWT_TEST(testing, specified_addresses) {
  tw_address host, peer, got;
  tw_string_transport *st;
  memset(&host, 0, sizeof host);
  host.family = TW_ADDRESS_UNIX;
  strcpy(host.name, "/tmp/host");
  memset(&peer, 0, sizeof peer);
  peer.family = TW_ADDRESS_IPV6;
  peer.type = TW_ADDRESS_TCP;
  strcpy(peer.host, "::1");
  peer.port = 9;
  cr_assert_eq(tw_string_transport_new(&st, &host, &peer, 0), 0);
  cr_assert_eq(tw_transport_get_host(T(st), &got), 0);
  cr_assert(tw_address_equal(&got, &host));
  cr_assert_eq(tw_transport_get_peer(T(st), &got), 0);
  cr_assert(tw_address_equal(&got, &peer));
  tw_string_transport_free(st);
}

/* StringTransport's default hostAddress / peerAddress, as Twisted's
 * (10.0.0.1:12345 and 192.168.1.1:54321): values only, nothing binds. */
TWT_TEST(testing, default_addresses) {
  tw_string_transport *st = new_st(0);
  tw_address got;
  char buf[128];
  cr_assert_eq(tw_transport_get_host(T(st), &got), 0);
  tw_address_format(&got, buf, sizeof buf);
  cr_assert_str_eq(buf,
                   "IPv4Address(type='TCP', host='10.0.0.1', port=12345)");
  cr_assert_eq(tw_transport_get_peer(T(st), &got), 0);
  tw_address_format(&got, buf, sizeof buf);
  cr_assert_str_eq(buf,
                   "IPv4Address(type='TCP', host='192.168.1.1', port=54321)");
  tw_string_transport_free(st);
}

TWT_TEST(testing, string_transport_bad_input) {
  tw_string_transport *st = NULL;
  tw_address bad;
  rec r;
  memset(&bad, 0, sizeof bad);
  cr_assert_eq(tw_string_transport_new(NULL, NULL, NULL, 0), TW_EINVAL);
  cr_assert_eq(tw_string_transport_new(&st, NULL, NULL, 64), TW_EINVAL);
  cr_assert_eq(tw_string_transport_new(&st, &bad, NULL, 0), TW_EINVAL);
  cr_assert_eq(tw_string_transport_new(&st, NULL, &bad, 0), TW_EINVAL);
  cr_assert_null(st);
  twt_alloc_fail_nth(1);
  cr_assert_eq(tw_string_transport_new(&st, NULL, NULL, 0), TW_ENOMEM);
  twt_alloc_fail_nth(0);
  cr_assert_null(st);
  cr_assert_eq(tw_string_transport_connect(NULL, NULL), TW_EINVAL);
  cr_assert_eq(tw_string_transport_clear(NULL), TW_EINVAL);
  cr_assert_eq(tw_string_transport_receive(NULL, "x", 1), TW_EINVAL);
  cr_assert_eq(tw_string_transport_eof(NULL), TW_EINVAL);
  cr_assert_eq(tw_string_transport_lose(NULL, NULL), TW_EINVAL);
  cr_assert_null(tw_string_transport_transport(NULL));
  cr_assert_null(tw_string_transport_from(NULL));
  cr_assert_eq(tw_string_transport_disconnecting(NULL), 0);
  cr_assert_eq(tw_string_transport_disconnected(NULL), 0);
  cr_assert_eq(tw_string_transport_lost(NULL), 0);
  cr_assert_null(tw_string_transport_producer(NULL));
  cr_assert_eq(tw_string_transport_streaming(NULL), 0);
  cr_assert_str_eq(tw_string_transport_value(NULL, NULL), "");
  tw_string_transport_free(NULL);
  st = new_st(0);
  cr_assert_eq(tw_string_transport_from(T(st)), st);
  cr_assert_eq(tw_string_transport_connect(st, NULL), TW_EINVAL);
  cr_assert_eq(tw_string_transport_receive(st, NULL, 1), TW_EINVAL);
  /* No protocol: received bytes go nowhere. */
  cr_assert_eq(tw_string_transport_receive(st, "x", 1), TW_ENOTCONN);
  rec_init(&r);
  cr_assert_eq(tw_string_transport_connect(st, &r.base), 0);
  cr_assert_eq(tw_string_transport_connect(st, &r.base), TW_EBUSY);
  cr_assert_eq(r.made, 1);
  tw_string_transport_free(st);
  cr_assert_eq(r.lost, 1);
}

TWT_TEST(testing, write_value_clear) {
  tw_string_transport *st = new_st(0);
  tw_iovec v[3] = {{"b", 1}, {"", 0}, {"cd", 2}};
  cr_assert_eq(tw_transport_write(T(st), "a", 1), 0);
  cr_assert_eq(tw_transport_write_sequence(T(st), v, 3), 0);
  assert_value(st, "abcd");
  cr_assert_eq(tw_transport_buffered(T(st)), 0); /* not BUFFERED */
  cr_assert_eq(tw_string_transport_clear(st), 0);
  assert_value(st, "");
  cr_assert_eq(tw_transport_write(T(st), "e", 1), 0);
  assert_value(st, "e");
  tw_string_transport_free(st);
}

TWT_TEST(testing, write_out_of_memory_writes_nothing) {
  tw_string_transport *st = new_st(0);
  twt_alloc_fail_nth(1);
  cr_assert_eq(tw_transport_write(T(st), "abc", 3), TW_ENOMEM);
  twt_alloc_fail_nth(0);
  assert_value(st, "");
  cr_assert_eq(tw_transport_write(T(st), "abc", 3), 0);
  assert_value(st, "abc");
  tw_string_transport_free(st);
}

/* A long write_sequence (more pieces than protocol.c keeps on the stack,
 * some empty). */
TWT_TEST(testing, write_sequence_many_pieces) {
  tw_string_transport *st = new_st(0);
  tw_iovec v[40];
  char expect[41];
  size_t i, k = 0;
  for (i = 0; i < 40; i++) {
    v[i].base = &"xyz"[i % 3];
    v[i].len = i % 4 == 0 ? 0 : 1;
    if (v[i].len) expect[k++] = "xyz"[i % 3];
  }
  expect[k] = '\0';
  cr_assert_eq(tw_transport_write_sequence(T(st), v, 40), 0);
  assert_value(st, expect);
  tw_string_transport_free(st);
}

/* ---- StringTransportWithDisconnection and connection_lost delivery ------- */

TWT_TEST(testing, with_disconnection_lose_connection) {
  tw_string_transport *st = new_st(TW_STRING_TRANSPORT_WITH_DISCONNECTION);
  rec r;
  rec_init(&r);
  cr_assert_eq(tw_string_transport_connect(st, &r.base), 0);
  cr_assert_eq(r.base.connected, 1);
  cr_assert_eq(r.base.transport, T(st));
  cr_assert_eq(tw_transport_connected(T(st)), 1);
  cr_assert_eq(tw_transport_lose_connection(T(st)), 0);
  cr_assert_eq(r.lost, 1);
  cr_assert_eq(r.reason_type, &TW_CONNECTION_DONE);
  cr_assert_eq(tw_string_transport_lost(st), 1);
  cr_assert_eq(tw_transport_connected(T(st)), 0);
  /* Once: later closes do nothing. */
  cr_assert_eq(tw_transport_lose_connection(T(st)), 0);
  cr_assert_eq(tw_transport_abort_connection(T(st)), 0);
  cr_assert_eq(tw_string_transport_lose(st, NULL), 0);
  cr_assert_eq(r.lost, 1);
  /* A dead transport: writes dropped, still answers. */
  cr_assert_eq(tw_transport_write(T(st), "x", 1), TW_ENOTCONN);
  assert_value(st, "");
  cr_assert_eq(tw_transport_pause_producing(T(st)), 0);
  tw_string_transport_free(st);
  cr_assert_eq(r.lost, 1);
}

TWT_TEST(testing, with_disconnection_abort) {
  tw_string_transport *st = new_st(TW_STRING_TRANSPORT_WITH_DISCONNECTION);
  rec r;
  rec_init(&r);
  tw_string_transport_connect(st, &r.base);
  cr_assert_eq(tw_transport_abort_connection(T(st)), 0);
  cr_assert_eq(r.lost, 1);
  cr_assert_eq(r.reason_type, &TW_CONNECTION_ABORTED);
  tw_string_transport_free(st);
}

/* A protocol that closes from inside data_received hears connection_lost
 * only after data_received returned (tcp.py's callLater(0)). */
TWT_TEST(testing, connection_lost_not_reentrant) {
  tw_string_transport *st = new_st(TW_STRING_TRANSPORT_WITH_DISCONNECTION);
  rec r;
  rec_init(&r);
  r.lose_on_data = 1;
  tw_string_transport_connect(st, &r.base);
  cr_assert_eq(tw_string_transport_receive(st, "hi", 2), 0);
  cr_assert_eq(r.lost, 1);
  cr_assert_eq(r.lost_inside, 0);
  tw_string_transport_free(st);
}

TWT_TEST(testing, abort_not_reentrant) {
  tw_string_transport *st = new_st(TW_STRING_TRANSPORT_WITH_DISCONNECTION);
  rec r;
  rec_init(&r);
  r.abort_on_data = 1;
  tw_string_transport_connect(st, &r.base);
  tw_string_transport_receive(st, "hi", 2);
  cr_assert_eq(r.lost, 1);
  cr_assert_eq(r.lost_inside, 0);
  cr_assert_eq(r.reason_type, &TW_CONNECTION_ABORTED);
  /* Bytes after the close are not delivered. */
  cr_assert_eq(tw_string_transport_receive(st, "more", 4), TW_ENOTCONN);
  cr_assert_str_eq(r.got, "hi");
  tw_string_transport_free(st);
}

/* dataReceived raising: the connection drops with that failure. */
TWT_TEST(testing, data_received_failure_is_the_reason) {
  tw_string_transport *st = new_st(TW_STRING_TRANSPORT_WITH_DISCONNECTION);
  rec r;
  rec_init(&r);
  r.fail_with = tw_failure_new(&TW_VALUE_ERROR, 0, "bad frame");
  tw_string_transport_connect(st, &r.base);
  tw_string_transport_receive(st, "x", 1);
  cr_assert_eq(r.lost, 1);
  cr_assert_eq(r.reason_type, &TW_VALUE_ERROR);
  cr_assert_str_eq(r.reason_msg, "bad frame");
  cr_assert_eq(tw_string_transport_disconnected(st), 1); /* aborted */
  tw_string_transport_free(st);
}

/* The plain StringTransport never delivers connection_lost on its own;
 * free does, for a protocol still attached. */
TWT_TEST(testing, plain_transport_lose_does_not_deliver) {
  tw_string_transport *st = new_st(0);
  rec r;
  rec_init(&r);
  tw_string_transport_connect(st, &r.base);
  tw_transport_lose_connection(T(st));
  cr_assert_eq(r.lost, 0);
  cr_assert_eq(tw_string_transport_lose(st, NULL), 0);
  cr_assert_eq(r.lost, 1);
  cr_assert_eq(r.reason_type, &TW_CONNECTION_DONE);
  tw_string_transport_free(st);
  cr_assert_eq(r.lost, 1);
}

TWT_TEST(testing, lose_with_reason) {
  tw_string_transport *st = new_st(0);
  tw_failure *f = tw_failure_from_code(-ECONNRESET);
  rec r;
  rec_init(&r);
  tw_string_transport_connect(st, &r.base);
  tw_string_transport_lose(st, f);
  tw_failure_unref(f);
  cr_assert_eq(r.reason_type, &TW_CONNECTION_RESET_ERROR);
  tw_string_transport_free(st);
}

TWT_TEST(testing, eof_half_closeable) {
  tw_string_transport *st = new_st(0);
  rec r;
  rec_init(&r);
  r.base.ops = &half_ops;
  tw_string_transport_connect(st, &r.base);
  cr_assert_eq(tw_string_transport_eof(st), 0);
  cr_assert_eq(r.read_lost, 1);
  cr_assert_eq(r.lost, 0);
  /* Still writable. */
  cr_assert_eq(tw_transport_write(T(st), "bye", 3), 0);
  assert_value(st, "bye");
  tw_string_transport_free(st);
}

/* lose_write_connection on the string transport: recorded, later writes
 * kept until the test shuts the write side; then write_connection_lost
 * (once) and writes dropped. */
TWT_TEST(testing, string_transport_half_close) {
  tw_string_transport *st = new_st(0);
  rec r;
  rec_init(&r);
  r.base.ops = &half_ops;
  tw_string_transport_connect(st, &r.base);
  cr_assert_eq(tw_string_transport_write_disconnecting(st), 0);
  cr_assert_eq(tw_string_transport_write_closed(st), TW_ENOTCONN);
  cr_assert_eq(tw_transport_write(T(st), "a", 1), 0);
  cr_assert_eq(tw_transport_lose_write_connection(T(st)), 0);
  cr_assert_eq(tw_string_transport_write_disconnecting(st), 1);
  cr_assert_eq(tw_transport_write(T(st), "b", 1), 0);
  assert_value(st, "ab");
  cr_assert_eq(r.write_lost, 0);
  cr_assert_eq(tw_string_transport_write_closed(st), 0);
  cr_assert_eq(r.write_lost, 1);
  cr_assert_eq(tw_string_transport_write_closed(st), 0);
  cr_assert_eq(r.write_lost, 1);
  cr_assert_eq(tw_transport_write(T(st), "c", 1), TW_ENOTCONN);
  assert_value(st, "ab");
  /* the read side still works */
  cr_assert_eq(tw_string_transport_receive(st, "in", 2), 0);
  cr_assert_str_eq(r.got, "in");
  cr_assert_eq(r.lost, 0);
  cr_assert_eq(tw_string_transport_write_disconnecting(NULL), 0);
  cr_assert_eq(tw_string_transport_write_closed(NULL), TW_EINVAL);
  tw_string_transport_free(st);
}

TWT_TEST(testing, eof_not_half_closeable) {
  tw_string_transport *st = new_st(0);
  rec r;
  rec_init(&r);
  tw_string_transport_connect(st, &r.base);
  cr_assert_eq(tw_string_transport_eof(st), 0);
  cr_assert_eq(r.lost, 1);
  cr_assert_eq(r.reason_type, &TW_CONNECTION_DONE);
  tw_string_transport_free(st);
}

/* ---- producer rules through the string transport ---------------------------- */

/* _maybePauseProducer: over bufferSize, not at it; once; resumed when the
 * buffer is empty again (doWrite). */
TWT_TEST(testing, streaming_producer_paused_over_buffer_size) {
  tw_string_transport *st = new_st(TW_STRING_TRANSPORT_BUFFERED);
  prod p;
  prod_init(&p);
  cr_assert_eq(tw_transport_register_producer(T(st), &p.base, 1), 0);
  cr_assert_eq(tw_transport_write(T(st), big, TW_TRANSPORT_BUFFER_SIZE), 0);
  cr_assert_eq(tw_transport_buffered(T(st)), TW_TRANSPORT_BUFFER_SIZE);
  cr_assert_eq(p.paused, 0);
  cr_assert_eq(tw_transport_write(T(st), "x", 1), 0);
  cr_assert_eq(p.paused, 1);
  cr_assert_eq(tw_transport_write(T(st), "y", 1), 0);
  cr_assert_eq(p.paused, 1);
  cr_assert_eq(p.resumed, 0);
  cr_assert_eq(tw_string_transport_clear(st), 0);
  cr_assert_eq(p.resumed, 1);
  /* Emptied again without a pause: no resume. */
  tw_transport_write(T(st), "z", 1);
  tw_string_transport_clear(st);
  cr_assert_eq(p.resumed, 1);
  tw_string_transport_free(st);
  cr_assert_eq(p.stopped, 0); /* no connection: nothing to stop */
}

/* test_cannotPauseProduction: a pull producer is never paused. */
TWT_TEST(testing, pull_producer_never_paused) {
  tw_string_transport *st = new_st(TW_STRING_TRANSPORT_BUFFERED);
  prod p;
  prod_init(&p);
  p.consumer = T(st);
  p.writes_left = 1;
  p.write_size = sizeof big;
  cr_assert_eq(tw_transport_register_producer(T(st), &p.base, 0), 0);
  cr_assert_eq(p.resumed, 1); /* registerProducer resumes a pull producer */
  cr_assert_eq(tw_transport_buffered(T(st)), sizeof big);
  cr_assert_eq(p.paused, 0);
  tw_string_transport_free(st);
}

/* NonStreamingProducerTests.test_producesOnly10Times: a pull producer
 * writing its counter each time it is resumed and unregistering after 10;
 * resumed each time the buffer empties. */
typedef struct counter_prod {
  tw_producer base;
  tw_transport *consumer;
  int counter, resumed_after_done;
} counter_prod;

static tw_failure *counter_resume(tw_producer *p) {
  counter_prod *c = (counter_prod *)p;
  char d[12];
  if (c->consumer == NULL || c->counter >= 10) {
    c->resumed_after_done++;
    return NULL;
  }
  snprintf(d, sizeof d, "%d", c->counter++);
  tw_transport_write(c->consumer, d, strlen(d));
  if (c->counter == 10) {
    tw_transport_unregister_producer(c->consumer);
    c->consumer = NULL;
  }
  return NULL;
}

static tw_failure *counter_pause(tw_producer *p) {
  (void)p;
  return tw_failure_new(&TW_RUNTIME_ERROR, 0, "pause on a pull producer");
}

static const tw_producer_ops counter_ops = {counter_pause, counter_resume,
                                            NULL};

TWT_TEST(testing, produces_only_10_times) {
  tw_string_transport *st = new_st(TW_STRING_TRANSPORT_BUFFERED);
  counter_prod c = {{&counter_ops, NULL}, NULL, 0, 0};
  char all[32] = "";
  int i;
  c.consumer = T(st);
  cr_assert_eq(tw_transport_register_producer(T(st), &c.base, 0), 0);
  for (i = 0; i < 12; i++) {
    strcat(all, tw_string_transport_value(st, NULL));
    tw_string_transport_clear(st);
  }
  cr_assert_str_eq(all, "0123456789");
  cr_assert_null(tw_string_transport_producer(st));
  cr_assert_eq(c.resumed_after_done, 0);
  tw_string_transport_free(st);
}

/* registerProducer on a disconnected transport: stopProducing at once. */
TWT_TEST(testing, register_on_lost_connection_stops_producer) {
  tw_string_transport *st = new_st(0);
  rec r;
  prod p;
  rec_init(&r);
  prod_init(&p);
  tw_string_transport_connect(st, &r.base);
  tw_string_transport_lose(st, NULL);
  cr_assert_eq(tw_transport_register_producer(T(st), &p.base, 1), 0);
  cr_assert_eq(p.stopped, 1);
  cr_assert_null(tw_string_transport_producer(st));
  tw_string_transport_free(st);
}

/* FileDescriptor.connectionLost: the producer is stopped, and forgotten,
 * before the protocol's connectionLost. */
TWT_TEST(testing, connection_lost_stops_producer_first) {
  tw_string_transport *st = new_st(TW_STRING_TRANSPORT_WITH_DISCONNECTION);
  rec r;
  prod p;
  int order = 0;
  rec_init(&r);
  prod_init(&p);
  r.order = p.order = &order;
  tw_string_transport_connect(st, &r.base);
  tw_transport_register_producer(T(st), &p.base, 1);
  tw_transport_abort_connection(T(st));
  cr_assert_eq(p.stopped, 1);
  cr_assert_eq(r.lost, 1);
  cr_assert_eq(p.stopped_at, 1);
  cr_assert_eq(r.lost_at, 2);
  cr_assert_null(tw_string_transport_producer(st));
  tw_string_transport_free(st);
  cr_assert_eq(p.stopped, 1);
}

/* loseConnection with a producer registered waits for unregisterProducer,
 * as Twisted documents; the producer's writes are still taken. */
TWT_TEST(testing, lose_connection_waits_for_producer) {
  tw_string_transport *st = new_st(TW_STRING_TRANSPORT_WITH_DISCONNECTION);
  rec r;
  prod p;
  rec_init(&r);
  prod_init(&p);
  tw_string_transport_connect(st, &r.base);
  tw_transport_register_producer(T(st), &p.base, 1);
  cr_assert_eq(tw_transport_lose_connection(T(st)), 0);
  cr_assert_eq(tw_transport_disconnecting(T(st)), 1);
  cr_assert_eq(r.lost, 0);
  cr_assert_eq(tw_transport_write(T(st), "last", 4), 0);
  assert_value(st, "last");
  cr_assert_eq(tw_transport_unregister_producer(T(st)), 0);
  cr_assert_eq(r.lost, 1);
  cr_assert_eq(r.reason_type, &TW_CONNECTION_DONE);
  cr_assert_eq(p.stopped, 0); /* unregistered, not stopped */
  cr_assert_eq(tw_transport_write(T(st), "late", 4), TW_ENOTCONN);
  tw_string_transport_free(st);
}

TWT_TEST(testing, abort_overrides_lose_held_by_producer) {
  tw_string_transport *st = new_st(TW_STRING_TRANSPORT_WITH_DISCONNECTION);
  rec r;
  prod p;
  rec_init(&r);
  prod_init(&p);
  tw_string_transport_connect(st, &r.base);
  tw_transport_register_producer(T(st), &p.base, 0);
  tw_transport_lose_connection(T(st));
  cr_assert_eq(r.lost, 0);
  cr_assert_eq(tw_transport_abort_connection(T(st)), 0);
  cr_assert_eq(r.lost, 1);
  cr_assert_eq(r.reason_type, &TW_CONNECTION_ABORTED);
  cr_assert_eq(p.stopped, 1);
  cr_assert_eq(tw_transport_unregister_producer(T(st)), 0);
  cr_assert_eq(r.lost, 1);
  tw_string_transport_free(st);
}

/* A producer callback that fails aborts the connection with its failure. */
TWT_TEST(testing, producer_failure_aborts) {
  tw_string_transport *st = new_st(TW_STRING_TRANSPORT_WITH_DISCONNECTION);
  rec r;
  prod p;
  rec_init(&r);
  prod_init(&p);
  p.fail_resume = tw_failure_new(&TW_VALUE_ERROR, 0, "no more");
  tw_string_transport_connect(st, &r.base);
  cr_assert_eq(tw_transport_register_producer(T(st), &p.base, 0), 0);
  cr_assert_eq(r.lost, 1);
  cr_assert_eq(r.reason_type, &TW_VALUE_ERROR);
  cr_assert_eq(p.stopped, 1);
  tw_string_transport_free(st);
}

/* StringTransport.write appends after loseConnection (checked against
 * Twisted 22.4: write(b"a"), loseConnection(), write(b"b") -> value()
 * b"ab"); writes are dropped only once the loss is delivered. */
TWT_TEST(testing, string_write_after_lose_connection_is_kept) {
  tw_string_transport *st = new_st(0);
  tw_iovec v[2] = {{"c", 1}, {"d", 1}};
  cr_assert_eq(tw_transport_write(T(st), "a", 1), 0);
  cr_assert_eq(tw_transport_lose_connection(T(st)), 0);
  cr_assert_eq(tw_transport_disconnecting(T(st)), 1);
  cr_assert_eq(tw_transport_write(T(st), "b", 1), 0);
  cr_assert_eq(tw_transport_write_sequence(T(st), v, 2), 0);
  assert_value(st, "abcd");
  cr_assert_eq(tw_string_transport_lose(st, NULL), 0);
  cr_assert_eq(tw_transport_write(T(st), "e", 1), TW_ENOTCONN);
  assert_value(st, "abcd");
  tw_string_transport_free(st);
}

/* p->transport stays set during connection_lost, and is NULL once it
 * returned (twuv's deliberate difference from Twisted, which keeps
 * self.transport: the transport's memory may go right after, and every
 * tw_transport_* call on NULL is a harmless TW_EINVAL). */
TWT_TEST(testing, string_transport_null_after_connection_lost) {
  tw_string_transport *st = new_st(TW_STRING_TRANSPORT_WITH_DISCONNECTION);
  tw_address a;
  rec r;
  rec_init(&r);
  cr_assert_eq(tw_string_transport_connect(st, &r.base), 0);
  cr_assert_eq(tw_transport_lose_connection(T(st)), 0);
  cr_assert_eq(r.lost, 1);
  cr_assert_eq(r.transport_in_lost, T(st));
  cr_assert_null(r.base.transport);
  cr_assert_eq(r.base.connected, 0);
  cr_assert_eq(tw_transport_write(r.base.transport, "x", 1), TW_EINVAL);
  cr_assert_eq(tw_transport_lose_connection(r.base.transport), TW_EINVAL);
  cr_assert_eq(tw_transport_get_peer(r.base.transport, &a), TW_EINVAL);
  cr_assert_eq(tw_transport_connected(r.base.transport), 0);
  tw_string_transport_free(st);
  /* and a protocol still attached when the transport is freed */
  st = new_st(0);
  rec_init(&r);
  cr_assert_eq(tw_string_transport_connect(st, &r.base), 0);
  tw_string_transport_free(st);
  cr_assert_eq(r.lost, 1);
  cr_assert_null(r.base.transport);
}

TWT_TEST(testing, writes_dropped_after_abort) {
  tw_string_transport *st = new_st(0);
  cr_assert_eq(tw_transport_write(T(st), "a", 1), 0);
  cr_assert_eq(tw_transport_abort_connection(T(st)), 0);
  cr_assert_eq(tw_transport_write(T(st), "b", 1), TW_ENOTCONN);
  cr_assert_eq(tw_transport_write(T(st), "", 0), 0);
  assert_value(st, "a");
  tw_string_transport_free(st);
}

/* ---- feeding in every chunking ---------------------------------------------- */

/* A line protocol (LineReceiver with b"\r\n"): counts complete lines, the
 * delimiter possibly split across calls. */
typedef struct lines {
  tw_protocol base;
  char partial[64];
  size_t plen;
  int count;
  char last[64];
} lines;

static tw_failure *lines_data(tw_protocol *p, const char *data, size_t len) {
  lines *l = (lines *)p;
  size_t i;
  for (i = 0; i < len; i++) {
    if (l->plen >= sizeof l->partial - 1)
      return tw_failure_new(&TW_VALUE_ERROR, 0, "line too long");
    l->partial[l->plen++] = data[i];
    if (l->plen >= 2 && l->partial[l->plen - 2] == '\r' &&
        l->partial[l->plen - 1] == '\n') {
      memcpy(l->last, l->partial, l->plen - 2);
      l->last[l->plen - 2] = '\0';
      l->count++;
      l->plen = 0;
      tw_transport_write(p->transport, "ok\r\n", 4);
    }
  }
  return NULL;
}

static const tw_protocol_ops lines_ops = {.data_received = lines_data};

static int check_lines(tw_protocol *p, tw_string_transport *st, size_t chunk,
                       void *arg) {
  lines *l = (lines *)p;
  int *calls = arg;
  (*calls)++;
  if (chunk != (size_t)*calls) return 100;
  if (l->count != 3 || strcmp(l->last, "three") != 0 || l->plen != 0) return 1;
  if (strcmp(tw_string_transport_value(st, NULL), "ok\r\nok\r\nok\r\n") != 0)
    return 2;
  return 0;
}

TWT_TEST(testing, feed_all_chunkings) {
  tw_factory f;
  const char *in = "one\r\ntwo\r\nthree\r\n";
  int calls = 0;
  cr_assert_eq(tw_factory_for_protocol(&f, &lines_ops, sizeof(lines), NULL),
               0);
  cr_assert_eq(tw_testing_feed_all_chunkings(&f, in, strlen(in), 0,
                                             check_lines, &calls),
               0);
  cr_assert_eq(calls, (int)strlen(in));
}

/* A protocol that gets only the whole-buffer case right is caught. */
static tw_failure *naive_data(tw_protocol *p, const char *data, size_t len) {
  lines *l = (lines *)p;
  if (len >= 2 && data[len - 2] == '\r' && data[len - 1] == '\n') l->count = 3;
  return NULL;
}
static const tw_protocol_ops naive_ops = {.data_received = naive_data};

static int check_count(tw_protocol *p, tw_string_transport *st, size_t chunk,
                       void *arg) {
  (void)st;
  *(size_t *)arg = chunk;
  return ((lines *)p)->count == 3 ? 0 : 7;
}

TWT_TEST(testing, feed_all_chunkings_finds_a_bad_split) {
  tw_factory f;
  const char *in = "ab\r\n";
  size_t chunk = 0;
  cr_assert_eq(tw_factory_for_protocol(&f, &naive_ops, sizeof(lines), NULL),
               0);
  /* chunk 1 ends on "\n" alone: the naive protocol misses it. */
  cr_assert_eq(tw_testing_feed_all_chunkings(&f, in, 4, 0, check_count,
                                             &chunk),
               7);
  cr_assert_eq(chunk, 1);
}

TWT_TEST(testing, feed) {
  tw_string_transport *st = new_st(TW_STRING_TRANSPORT_WITH_DISCONNECTION);
  rec r, unattached;
  rec_init(&r);
  rec_init(&unattached);
  tw_string_transport_connect(st, &r.base);
  cr_assert_eq(tw_testing_feed(&r.base, "abcdefg", 7, 3), 0);
  cr_assert_str_eq(r.got, "abcdefg");
  cr_assert_eq(tw_testing_feed(&r.base, "hi", 2, 0), 0);
  cr_assert_str_eq(r.got, "abcdefghi");
  cr_assert_eq(tw_testing_feed(&unattached.base, "x", 1, 1), TW_EINVAL);
  cr_assert_eq(tw_testing_feed(NULL, "x", 1, 1), TW_EINVAL);
  cr_assert_eq(tw_testing_feed(&r.base, NULL, 1, 1), TW_EINVAL);
  r.lose_on_data = 1;
  cr_assert_eq(tw_testing_feed(&r.base, "jkl", 3, 1), TW_ENOTCONN);
  cr_assert_str_eq(r.got, "abcdefghij");
  cr_assert_eq(r.lost, 1);
  tw_string_transport_free(st);
}

static int check_never(tw_protocol *p, tw_string_transport *st, size_t chunk,
                       void *arg) {
  (void)p;
  (void)st;
  (void)chunk;
  (void)arg;
  return 0;
}

TWT_TEST(testing, feed_all_chunkings_bad_input) {
  tw_factory f, refusing;
  static const tw_factory_ops none = {0};
  cr_assert_eq(tw_factory_for_protocol(&f, &lines_ops, sizeof(lines), NULL),
               0);
  tw_factory_init(&refusing, &none);
  cr_assert_eq(tw_testing_feed_all_chunkings(NULL, "x", 1, 0, check_never,
                                             NULL),
               TW_EINVAL);
  cr_assert_eq(tw_testing_feed_all_chunkings(&f, "x", 1, 0, NULL, NULL),
               TW_EINVAL);
  cr_assert_eq(tw_testing_feed_all_chunkings(&f, NULL, 1, 0, check_never,
                                             NULL),
               TW_EINVAL);
  cr_assert_eq(tw_testing_feed_all_chunkings(&f, "x", 1, 99, check_never,
                                             NULL),
               TW_EINVAL);
  cr_assert_eq(tw_testing_feed_all_chunkings(&refusing, "x", 1, 0,
                                             check_never, NULL),
               TW_ECANCELLED);
  twt_alloc_fail_nth(1);
  cr_assert_eq(tw_testing_feed_all_chunkings(&f, "x", 1, 0, check_never,
                                             NULL),
               TW_ENOMEM);
  twt_alloc_fail_nth(2); /* the protocol: refused */
  cr_assert_eq(tw_testing_feed_all_chunkings(&f, "x", 1, 0, check_never,
                                             NULL),
               TW_ECANCELLED);
  twt_alloc_fail_nth(0);
  /* len 0: one round, nothing fed. */
  cr_assert_eq(tw_testing_feed_all_chunkings(&f, NULL, 0, 0, check_never,
                                             NULL),
               0);
}

/* ---- iosim: FakeTransportTests ------------------------------------------------ */

static tw_iopump *pump_of(rec *server, rec *client, int greet) {
  tw_iopump *pump;
  cr_assert_eq(tw_iopump_connect(&pump, &server->base, &client->base, greet),
               0);
  return pump;
}

static void assert_pending(tw_iopump *pump, int side, const char *expect) {
  size_t len;
  const char *v = tw_iopump_pending(pump, side, &len);
  cr_assert_eq(len, strlen(expect));
  cr_assert_str_eq(v, expect);
}

TWT_TEST(testing, fake_write_sequence) {
  rec s, c;
  tw_iopump *pump;
  tw_iovec v[3] = {{"b", 1}, {"c", 1}, {"d", 1}};
  rec_init(&s);
  rec_init(&c);
  pump = pump_of(&s, &c, 0);
  cr_assert_eq(tw_transport_write(tw_iopump_client_transport(pump), "a", 1),
               0);
  cr_assert_eq(tw_transport_write_sequence(tw_iopump_client_transport(pump),
                                           v, 3),
               0);
  assert_pending(pump, 1, "abcd");
  tw_iopump_free(pump);
}

TWT_TEST(testing, fake_write_after_close) {
  rec s, c;
  tw_iopump *pump;
  tw_transport *ct;
  rec_init(&s);
  rec_init(&c);
  pump = pump_of(&s, &c, 0);
  ct = tw_iopump_client_transport(pump);
  cr_assert_eq(tw_transport_write(ct, "before", 6), 0);
  cr_assert_eq(tw_transport_lose_connection(ct), 0);
  cr_assert_eq(tw_transport_write(ct, "after", 5), TW_ENOTCONN);
  {
    tw_iovec v[2] = {{"a", 1}, {"b", 1}};
    cr_assert_eq(tw_transport_write_sequence(ct, v, 2), TW_ENOTCONN);
  }
  assert_pending(pump, 1, "before");
  cr_assert_eq(tw_iopump_flush(pump), 1);
  cr_assert_str_eq(s.got, "before");
  cr_assert_eq(c.lost, 1);
  tw_iopump_free(pump);
}

/* data_received's failure over the pump: that side's unsent bytes are
 * dropped and it gets the failure; the other side sees a clean close
 * (ConnectionDone), as over TCP, where the close is orderly. */
TWT_TEST(testing, pump_data_received_failure_closes_cleanly) {
  rec s, c;
  tw_iopump *pump;
  rec_init(&s);
  rec_init(&c);
  s.reply = "dropped";
  s.fail_with = tw_failure_new(&TW_VALUE_ERROR, 0, "bad frame");
  pump = pump_of(&s, &c, 1);
  cr_assert_eq(tw_transport_write(tw_iopump_client_transport(pump), "x", 1),
               0);
  cr_assert_eq(tw_iopump_flush(pump), 1);
  cr_assert_eq(s.lost, 1);
  cr_assert_eq(s.reason_type, &TW_VALUE_ERROR);
  cr_assert_str_eq(s.reason_msg, "bad frame");
  cr_assert_eq(c.lost, 1);
  cr_assert_eq(c.reason_type, &TW_CONNECTION_DONE);
  cr_assert_eq(c.n, 0);
  tw_iopump_free(pump);
}

/* p->transport is NULL once connection_lost returned, on the pump too. */
TWT_TEST(testing, pump_transport_null_after_connection_lost) {
  rec s, c;
  tw_iopump *pump;
  tw_transport *st, *ct;
  rec_init(&s);
  rec_init(&c);
  pump = pump_of(&s, &c, 1);
  st = tw_iopump_server_transport(pump);
  ct = tw_iopump_client_transport(pump);
  cr_assert_eq(tw_transport_lose_connection(ct), 0);
  cr_assert_eq(tw_iopump_flush(pump), 1);
  cr_assert_eq(s.lost, 1);
  cr_assert_eq(c.lost, 1);
  cr_assert_eq(s.transport_in_lost, st);
  cr_assert_eq(c.transport_in_lost, ct);
  cr_assert_null(s.base.transport);
  cr_assert_null(c.base.transport);
  cr_assert_eq(tw_transport_write(c.base.transport, "x", 1), TW_EINVAL);
  tw_iopump_free(pump);
}

/* ---- StrictPushProducer (test_iosim.py) ----------------------------------------- */

typedef struct strict {
  tw_producer base;
  int state; /* 0 running, 1 paused, 2 stopped */
  int errors;
} strict;

static tw_failure *strict_err(strict *s, const char *what) {
  s->errors++;
  return tw_failure_new(&TW_VALUE_ERROR, 0, "Cannot %s %d IPushProducer",
                        what, s->state);
}

static tw_failure *strict_stop(tw_producer *p) {
  strict *s = (strict *)p;
  if (s->state == 2) return strict_err(s, "stop");
  s->state = 2;
  return NULL;
}
static tw_failure *strict_pause(tw_producer *p) {
  strict *s = (strict *)p;
  if (s->state != 0) return strict_err(s, "pause");
  s->state = 1;
  return NULL;
}
static tw_failure *strict_resume(tw_producer *p) {
  strict *s = (strict *)p;
  if (s->state != 1) return strict_err(s, "resume");
  s->state = 0;
  return NULL;
}
static const tw_producer_ops strict_ops = {strict_pause, strict_resume,
                                           strict_stop};

static void strict_init(strict *s) {
  memset(s, 0, sizeof *s);
  s->base.ops = &strict_ops;
}

/* StrictPushProducerTests: every transition from every state. */
TWT_TEST(testing, strict_push_producer) {
  /* from state, call (0 pause 1 resume 2 stop): resulting state or -1. */
  static const int table[3][3] = {{1, -1, 2}, {-1, 0, 2}, {-1, -1, -1}};
  int from, call;
  for (from = 0; from < 3; from++) {
    for (call = 0; call < 3; call++) {
      strict s;
      tw_failure *f;
      strict_init(&s);
      s.state = from;
      f = call == 0   ? strict_pause(&s.base)
          : call == 1 ? strict_resume(&s.base)
                      : strict_stop(&s.base);
      if (table[from][call] < 0) {
        cr_assert_not_null(f);
        cr_assert_eq(s.state, from);
        tw_failure_unref(f);
      } else {
        cr_assert_null(f);
        cr_assert_eq(s.state, table[from][call]);
      }
    }
  }
}

/* IOPumpTests: pump never resumes a streaming producer it did not pause. */
static void streaming_producer_test(int side) {
  rec s, c;
  strict prod;
  tw_iopump *pump;
  tw_transport *t;
  rec_init(&s);
  rec_init(&c);
  strict_init(&prod);
  pump = pump_of(&s, &c, 0);
  t = side == 0 ? tw_iopump_server_transport(pump)
                : tw_iopump_client_transport(pump);
  cr_assert_eq(tw_transport_register_producer(t, &prod.base, 1), 0);
  cr_assert_geq(tw_iopump_pump(pump), 0);
  cr_assert_eq(prod.state, 0);
  cr_assert_eq(prod.errors, 0);
  tw_iopump_free(pump);
  cr_assert_eq(prod.state, 2); /* stopped when the connection went */
  cr_assert_eq(prod.errors, 0);
}

TWT_TEST(testing, server_streaming_producer) { streaming_producer_test(0); }
TWT_TEST(testing, client_streaming_producer) { streaming_producer_test(1); }

/* ---- the pump: greetings, closes, limits ------------------------------------------- */

/* test_loopback.py _greetingtest / connectedServerAndClient. */
TWT_TEST(testing, server_greeting) {
  rec s, c;
  tw_iopump *pump;
  rec_init(&s);
  rec_init(&c);
  s.greeting = "hello";
  pump = pump_of(&s, &c, 1);
  cr_assert_eq(s.made, 1);
  cr_assert_eq(c.made, 1);
  cr_assert_str_eq(c.got, "hello");
  tw_iopump_free(pump);
  cr_assert_eq(s.lost, 1);
  cr_assert_eq(c.lost, 1);
}

TWT_TEST(testing, client_greeting_and_reply) {
  rec s, c;
  tw_iopump *pump;
  rec_init(&s);
  rec_init(&c);
  c.greeting = "ping";
  s.reply = "pong";
  pump = pump_of(&s, &c, 0);
  cr_assert_eq(s.n, 0);
  cr_assert_eq(tw_iopump_pump(pump), 1);
  cr_assert_str_eq(s.got, "ping");
  cr_assert_eq(c.n, 0);
  cr_assert_eq(tw_iopump_flush(pump), 1);
  cr_assert_str_eq(c.got, "pong");
  cr_assert_eq(tw_iopump_flush(pump), 0);
  tw_iopump_free(pump);
}

/* IOPump.pump: a close reaches the other side first, then (next round)
 * the closing side; the bytes written before move first. */
TWT_TEST(testing, pump_lose_connection) {
  rec s, c;
  tw_iopump *pump;
  int order = 0;
  rec_init(&s);
  rec_init(&c);
  s.order = c.order = &order;
  pump = pump_of(&s, &c, 1);
  tw_transport_write(tw_iopump_server_transport(pump), "bye", 3);
  tw_transport_lose_connection(tw_iopump_server_transport(pump));
  cr_assert_eq(tw_iopump_pump(pump), 1); /* the bytes */
  cr_assert_str_eq(c.got, "bye");
  cr_assert_eq(c.lost + s.lost, 0);
  cr_assert_eq(tw_iopump_pump(pump), 1);
  cr_assert_eq(c.lost, 1);
  cr_assert_eq(s.lost, 0);
  cr_assert_eq(tw_iopump_pump(pump), 1);
  cr_assert_eq(s.lost, 1);
  cr_assert_eq(tw_iopump_pump(pump), 0);
  cr_assert_eq(c.lost_at, 1);
  cr_assert_eq(s.lost_at, 2);
  cr_assert(tw_error_type_is(s.reason_type, &TW_CONNECTION_DONE));
  cr_assert(tw_error_type_is(c.reason_type, &TW_CONNECTION_DONE));
  cr_assert_str_eq(c.reason_msg, "Connection done");
  cr_assert_null(tw_iopump_server(pump));
  cr_assert_null(tw_iopump_client(pump));
  tw_iopump_free(pump);
  cr_assert_eq(s.lost + c.lost, 2);
}

TWT_TEST(testing, pump_abort_connection) {
  rec s, c;
  tw_iopump *pump;
  rec_init(&s);
  rec_init(&c);
  pump = pump_of(&s, &c, 1);
  tw_transport_write(tw_iopump_client_transport(pump), "unsent", 6);
  cr_assert_eq(tw_transport_abort_connection(tw_iopump_client_transport(pump)),
               0);
  cr_assert_eq(c.lost, 0); /* from the pump, never from inside abort */
  cr_assert_eq(tw_iopump_flush(pump), 1);
  cr_assert_eq(s.n, 0); /* discarded */
  cr_assert_eq(c.reason_type, &TW_CONNECTION_ABORTED);
  cr_assert_eq(s.reason_type, &TW_CONNECTION_LOST);
  tw_iopump_free(pump);
}

/* Twisted's flush asserts "Too long" after 1000 rounds. */
static void pingpong_made(tw_protocol *p) {
  if (p->data != NULL) tw_transport_write(p->transport, "a", 1);
}
static tw_failure *pingpong_data(tw_protocol *p, const char *d, size_t n) {
  (void)d;
  (void)n;
  tw_transport_write(p->transport, "a", 1);
  return NULL;
}
static const tw_protocol_ops pingpong_ops = {.connection_made = pingpong_made,
                                             .data_received = pingpong_data};

TWT_TEST(testing, flush_gives_up_after_1000_rounds) {
  tw_protocol s, c;
  tw_iopump *pump;
  tw_protocol_init(&s, &pingpong_ops);
  tw_protocol_init(&c, &pingpong_ops);
  c.data = &c; /* the client starts */
  cr_assert_eq(tw_iopump_connect(&pump, &s, &c, 1), TW_EBUSY);
  cr_assert_not_null(pump);
  cr_assert_eq(tw_iopump_flush(pump), TW_EBUSY);
  tw_iopump_free(pump);
}

/* test_writeNotReentrant: data_received never runs while its own
 * transport's write is on the stack. */
TWT_TEST(testing, write_not_reentrant) {
  rec s, c;
  tw_iopump *pump;
  rec_init(&s);
  rec_init(&c);
  s.reply = "bytes";
  c.lose_on_data = 1;
  pump = pump_of(&s, &c, 1);
  cr_assert_eq(tw_transport_write(tw_iopump_client_transport(pump), "foo", 3),
               0);
  cr_assert_eq(c.n, 0); /* nothing delivered inside write */
  cr_assert_geq(tw_iopump_flush(pump), 1);
  cr_assert_str_eq(c.got, "bytes");
  cr_assert_eq(c.lost, 1);
  cr_assert_eq(c.lost_inside, 0);
  tw_iopump_free(pump);
}

TWT_TEST(testing, pump_addresses) {
  rec s, c;
  tw_iopump *pump;
  tw_address a, b;
  rec_init(&s);
  rec_init(&c);
  pump = pump_of(&s, &c, 0);
  tw_transport_get_host(tw_iopump_server_transport(pump), &a);
  tw_transport_get_peer(tw_iopump_client_transport(pump), &b);
  cr_assert(tw_address_equal(&a, &b));
  tw_transport_get_peer(tw_iopump_server_transport(pump), &a);
  tw_transport_get_host(tw_iopump_client_transport(pump), &b);
  cr_assert(tw_address_equal(&a, &b));
  cr_assert_eq(a.port, 54321);
  cr_assert_eq(tw_transport_set_tcp_nodelay(tw_iopump_server_transport(pump),
                                            1),
               0);
  cr_assert_eq(tw_transport_get_tcp_nodelay(tw_iopump_server_transport(pump)),
               1);
  cr_assert_eq(tw_transport_get_tcp_keepalive(tw_iopump_server_transport(pump)),
               0);
  tw_iopump_free(pump);
}

TWT_TEST(testing, pump_bad_input) {
  rec s, c;
  tw_iopump *pump = NULL;
  tw_protocol no_ops;
  memset(&no_ops, 0, sizeof no_ops);
  rec_init(&s);
  rec_init(&c);
  cr_assert_eq(tw_iopump_connect(NULL, &s.base, &c.base, 0), TW_EINVAL);
  cr_assert_eq(tw_iopump_connect(&pump, NULL, &c.base, 0), TW_EINVAL);
  cr_assert_eq(tw_iopump_connect(&pump, &s.base, NULL, 0), TW_EINVAL);
  cr_assert_eq(tw_iopump_connect(&pump, &s.base, &s.base, 0), TW_EINVAL);
  cr_assert_eq(tw_iopump_connect(&pump, &no_ops, &c.base, 0), TW_EINVAL);
  twt_alloc_fail_nth(1);
  cr_assert_eq(tw_iopump_connect(&pump, &s.base, &c.base, 0), TW_ENOMEM);
  twt_alloc_fail_nth(0);
  cr_assert_null(pump);
  cr_assert_eq(s.made + c.made, 0);
  cr_assert_eq(tw_iopump_pump(NULL), TW_EINVAL);
  cr_assert_eq(tw_iopump_flush(NULL), TW_EINVAL);
  cr_assert_null(tw_iopump_server(NULL));
  cr_assert_null(tw_iopump_client_transport(NULL));
  cr_assert_str_eq(tw_iopump_pending(NULL, 0, NULL), "");
  tw_iopump_free(NULL);
  pump = pump_of(&s, &c, 0);
  cr_assert_str_eq(tw_iopump_pending(pump, 2, NULL), "");
  /* A protocol already attached cannot be connected again. */
  {
    tw_iopump *again;
    rec other;
    rec_init(&other);
    cr_assert_eq(tw_iopump_connect(&again, &s.base, &other.base, 0),
                 TW_EINVAL);
  }
  tw_iopump_free(pump);
}

/* connectedServerAndClient with factories (Factory.forProtocol). */
static int fac_made, fac_lost;
static void fac_made_cb(tw_protocol *p) {
  fac_made++;
  if (p->factory->data != NULL)
    tw_transport_write(p->transport, p->factory->data,
                       strlen(p->factory->data));
}
static tw_failure *fac_data(tw_protocol *p, const char *d, size_t n) {
  return tw_transport_write(p->transport, d, n) == 0
             ? NULL
             : tw_failure_new(&TW_RUNTIME_ERROR, 0, "write failed");
}
static void fac_lost_cb(tw_protocol *p, tw_failure *r) {
  (void)p;
  (void)r;
  fac_lost++;
}
static const tw_protocol_ops echo_ops = {.connection_made = fac_made_cb,
                                         .data_received = fac_data,
                                         .connection_lost = fac_lost_cb};

typedef struct client_proto {
  tw_protocol base;
  char got[32];
  size_t n;
} client_proto;

static char client_got[32]; /* outlives the factory-made client */

static tw_failure *client_data(tw_protocol *p, const char *d, size_t n) {
  client_proto *c = (client_proto *)p;
  memcpy(c->got + c->n, d, n);
  c->n += n;
  memcpy(client_got, c->got, c->n);
  if (c->n >= 5) tw_transport_lose_connection(p->transport);
  return NULL;
}
static const tw_protocol_ops client_ops = {.connection_made = fac_made_cb,
                                           .data_received = client_data,
                                           .connection_lost = fac_lost_cb};

TWT_TEST(testing, connected_server_and_client) {
  tw_factory sf, cf;
  tw_iopump *pump;
  client_proto *c;
  fac_made = fac_lost = 0;
  tw_factory_for_protocol(&sf, &echo_ops, sizeof(tw_protocol), NULL);
  tw_factory_for_protocol(&cf, &client_ops, sizeof(client_proto), NULL);
  cf.data = "hello";
  cr_assert_eq(tw_iopump_connected_server_and_client(&pump, &sf, &cf, 0), 0);
  cr_assert_eq(fac_made, 2);
  c = (client_proto *)tw_iopump_client(pump);
  cr_assert_eq(c->base.factory, &cf);
  cr_assert_eq(tw_iopump_server(pump)->factory, &sf);
  memset(client_got, 0, sizeof client_got);
  cr_assert_eq(tw_iopump_flush(pump), 1);
  cr_assert_eq(memcmp(client_got, "hello", 5), 0); /* c is freed now */
  /* The client closed after the echo: both sides are gone, and both
   * factory-made protocols freed (the leak check). */
  cr_assert_eq(fac_lost, 2);
  cr_assert_null(tw_iopump_client(pump));
  tw_iopump_free(pump);
}

TWT_TEST(testing, connected_server_and_client_refused) {
  tw_factory sf, cf, refusing;
  static const tw_factory_ops none = {0};
  tw_iopump *pump = NULL;
  fac_made = 0;
  tw_factory_for_protocol(&sf, &echo_ops, sizeof(tw_protocol), NULL);
  tw_factory_for_protocol(&cf, &client_ops, sizeof(client_proto), NULL);
  tw_factory_init(&refusing, &none);
  cr_assert_eq(tw_iopump_connected_server_and_client(&pump, &refusing, &cf, 1),
               TW_ECANCELLED);
  cr_assert_eq(tw_iopump_connected_server_and_client(&pump, &sf, &refusing, 1),
               TW_ECANCELLED);
  cr_assert_eq(tw_iopump_connected_server_and_client(NULL, &sf, &cf, 1),
               TW_EINVAL);
  cr_assert_eq(tw_iopump_connected_server_and_client(&pump, NULL, &cf, 1),
               TW_EINVAL);
  cr_assert_null(pump);
  cr_assert_eq(fac_made, 0);
  /* Out of memory for the pump: both built protocols are freed. */
  twt_alloc_fail_nth(3);
  cr_assert_eq(tw_iopump_connected_server_and_client(&pump, &sf, &cf, 1),
               TW_ENOMEM);
  twt_alloc_fail_nth(0);
  cr_assert_eq(fac_made, 0);
}

/* ---- producers over the pump (test_loopback.py) --------------------------------------- */

/* test_pushProducer: a push producer writing one piece per clock tick
 * (callLater(0) on a manual clock), unregistering at the end; it is never
 * resumed. */
typedef struct push_prod {
  tw_producer base;
  tw_transport *consumer;
  tw_clock *clock;
  int next, resumed;
} push_prod;

static void push_produce(void *arg) {
  push_prod *pp = arg;
  char d[12];
  if (pp->next < 10) {
    snprintf(d, sizeof d, "%d", pp->next++);
    tw_transport_write(pp->consumer, d, strlen(d));
    tw_clock_call_later(pp->clock, 0, push_produce, pp, NULL, NULL);
  } else {
    tw_transport_unregister_producer(pp->consumer);
  }
}

static tw_failure *push_resume(tw_producer *p) {
  ((push_prod *)p)->resumed++;
  return NULL;
}
static const tw_producer_ops push_ops = {NULL, push_resume, NULL};

TWT_TEST(testing, push_producer) {
  rec s, c;
  tw_iopump *pump;
  push_prod pp;
  int rounds = 0;
  memset(&pp, 0, sizeof pp);
  pp.base.ops = &push_ops;
  pp.clock = tw_clock_new_manual();
  cr_assert_not_null(pp.clock);
  rec_init(&s);
  rec_init(&c);
  pump = pump_of(&s, &c, 1);
  pp.consumer = tw_iopump_server_transport(pump);
  cr_assert_eq(tw_transport_register_producer(pp.consumer, &pp.base, 1), 0);
  push_produce(&pp);
  while (strcmp(c.got, "0123456789") != 0 && rounds++ < 50) {
    tw_clock_advance(pp.clock, 0);
    cr_assert_geq(tw_iopump_flush(pump), 0);
  }
  cr_assert_str_eq(c.got, "0123456789");
  cr_assert_eq(pp.resumed, 0);
  tw_clock_free(pp.clock);
  tw_iopump_free(pump);
}

/* test_pullProducer: resumed each time its bytes are gone. */
typedef struct pull_prod {
  tw_producer base;
  tw_transport *consumer;
  int next;
} pull_prod;

static tw_failure *pull_resume(tw_producer *p) {
  pull_prod *pp = (pull_prod *)p;
  char d[12];
  snprintf(d, sizeof d, "%d", pp->next++);
  tw_transport_write(pp->consumer, d, strlen(d));
  if (pp->next == 10) tw_transport_unregister_producer(pp->consumer);
  return NULL;
}
static const tw_producer_ops pull_ops = {NULL, pull_resume, NULL};

TWT_TEST(testing, pull_producer) {
  rec s, c;
  tw_iopump *pump;
  pull_prod pp;
  memset(&pp, 0, sizeof pp);
  pp.base.ops = &pull_ops;
  rec_init(&s);
  rec_init(&c);
  pump = pump_of(&s, &c, 1);
  pp.consumer = tw_iopump_server_transport(pump);
  cr_assert_eq(tw_transport_register_producer(pp.consumer, &pp.base, 0), 0);
  cr_assert_eq(tw_iopump_flush(pump), 1);
  cr_assert_str_eq(c.got, "0123456789");
  cr_assert_eq(pp.next, 10);
  tw_iopump_free(pump);
}

static const tw_protocol_ops sink_ops = {.connection_lost = rec_lost};

/* The transport as a push producer, over the pump: the server stops
 * reading; the client's buffer grows past bufferSize and its streaming
 * producer is paused; reading again lets the bytes through, and the
 * emptied buffer resumes the producer. */
TWT_TEST(testing, backpressure_through_pump) {
  rec s, c;
  tw_iopump *pump;
  prod p;
  tw_transport *ct, *stt;
  rec_init(&s);
  rec_init(&c);
  prod_init(&p);
  pump = pump_of(&s, &c, 1);
  ct = tw_iopump_client_transport(pump);
  stt = tw_iopump_server_transport(pump);
  cr_assert_eq(tw_transport_register_producer(ct, &p.base, 1), 0);
  cr_assert_eq(tw_transport_pause_producing(stt), 0);
  cr_assert_eq(tw_transport_write(ct, big, 60000), 0);
  cr_assert_eq(tw_iopump_flush(pump), 0); /* the reader is paused */
  cr_assert_eq(p.paused, 0);
  cr_assert_eq(tw_transport_write(ct, big, 10000), 0);
  cr_assert_eq(p.paused, 1);
  cr_assert_eq(tw_transport_buffered(ct), 70000);
  cr_assert_eq(tw_transport_resume_producing(stt), 0);
  s.base.ops = &sink_ops; /* 70000 bytes: more than rec keeps */
  cr_assert_eq(tw_iopump_flush(pump), 1);
  cr_assert_eq(p.resumed, 1);
  cr_assert_eq(tw_transport_buffered(ct), 0);
  tw_iopump_free(pump);
}

/* Half-close over the pump: the client shuts its write side; a
 * half-closeable server reads EOF and can still answer. A write between
 * lose_write_connection and the shutdown is sent first (Twisted's write
 * checks _writeDisconnected only); one after write_connection_lost is
 * dropped. */
TWT_TEST(testing, pump_half_close) {
  rec s, c;
  tw_iopump *pump;
  rec_init(&s);
  rec_init(&c);
  s.base.ops = &half_ops;
  c.base.ops = &half_ops;
  pump = pump_of(&s, &c, 1);
  tw_transport_write(tw_iopump_client_transport(pump), "req", 3);
  cr_assert_eq(tw_transport_lose_write_connection(
                   tw_iopump_client_transport(pump)),
               0);
  cr_assert_eq(tw_transport_write(tw_iopump_client_transport(pump), "x", 1),
               0);
  cr_assert_eq(tw_iopump_flush(pump), 1);
  cr_assert_str_eq(s.got, "reqx");
  cr_assert_eq(c.write_lost, 1);
  cr_assert_eq(tw_transport_write(tw_iopump_client_transport(pump), "y", 1),
               TW_ENOTCONN);
  cr_assert_eq(s.read_lost, 1);
  cr_assert_eq(s.lost + c.lost, 0);
  tw_transport_write(tw_iopump_server_transport(pump), "resp", 4);
  tw_transport_lose_connection(tw_iopump_server_transport(pump));
  cr_assert_eq(tw_iopump_flush(pump), 1);
  cr_assert_str_eq(c.got, "resp");
  cr_assert_eq(s.lost, 1);
  cr_assert_eq(c.lost, 1);
  tw_iopump_free(pump);
}

/* Not half-closeable: EOF closes the connection cleanly on both sides. */
TWT_TEST(testing, pump_eof_closes) {
  rec s, c;
  tw_iopump *pump;
  rec_init(&s);
  rec_init(&c);
  c.base.ops = &half_ops;
  pump = pump_of(&s, &c, 1);
  tw_transport_lose_write_connection(tw_iopump_client_transport(pump));
  cr_assert_eq(tw_iopump_flush(pump), 1);
  cr_assert_eq(s.lost, 1);
  cr_assert_eq(c.lost, 1);
  cr_assert_eq(s.reason_type, &TW_CONNECTION_DONE);
  cr_assert_eq(c.reason_type, &TW_CONNECTION_DONE);
  tw_iopump_free(pump);
}

/* ---- threads ------------------------------------------------------------------------ */

typedef struct foreign {
  tw_string_transport *st;
  tw_iopump *pump;
  tw_protocol *p;
  int rc[9];
} foreign;

static void *foreign_thread(void *arg) {
  foreign *f = arg;
  rec other;
  rec_init(&other);
  f->rc[0] = tw_string_transport_connect(f->st, &other.base);
  f->rc[1] = tw_string_transport_clear(f->st);
  f->rc[2] = tw_string_transport_receive(f->st, "x", 1);
  f->rc[3] = tw_string_transport_eof(f->st);
  f->rc[4] = tw_string_transport_lose(f->st, NULL);
  f->rc[5] = tw_testing_feed(f->p, "x", 1, 1);
  f->rc[6] = tw_iopump_pump(f->pump);
  f->rc[7] = tw_iopump_flush(f->pump);
  f->rc[8] = tw_transport_write(tw_iopump_client_transport(f->pump), "x", 1);
  return NULL;
}

/* The doubles belong to the thread that made them. */
TWT_TEST(testing, doubles_wrong_thread) {
  foreign f;
  rec r, s, c;
  pthread_t th;
  int i;
  rec_init(&r);
  rec_init(&s);
  rec_init(&c);
  f.st = new_st(0);
  tw_string_transport_connect(f.st, &r.base);
  tw_transport_write(T(f.st), "kept", 4);
  f.p = &r.base;
  f.pump = pump_of(&s, &c, 0);
  cr_assert_eq(pthread_create(&th, NULL, foreign_thread, &f), 0);
  cr_assert_eq(pthread_join(th, NULL), 0);
  for (i = 0; i < 9; i++) cr_assert_eq(f.rc[i], TW_EWRONGTHREAD, "call %d", i);
  assert_value(f.st, "kept");
  cr_assert_eq(r.n + r.lost + r.read_lost, 0);
  assert_pending(f.pump, 1, "");
  tw_iopump_free(f.pump);
  tw_string_transport_free(f.st);
}
