/*
 * Stress: the networking layer with threads around it, the way
 * docs/networking.md says to combine them (run under TSan, ASan+UBSan and
 * valgrind by CI; Criterion cannot run under TSan).
 *
 * CONNS client connections over loopback TCP to one server, all on one
 * reactor. For each connection a producer thread makes RECORDS records and
 * hands each to the loop with tw_reactor_call_from_thread, which writes it
 * to the client's transport (transports are loop-thread only). The server
 * protocol cuts the stream into 16-byte records (any chunking) and, for
 * each, defers a hash of it to the reactor's thread pool
 * (tw_defer_to_thread); the Deferred fires on the loop and writes the
 * reply (sequence number and hash) back. The client checks each reply and,
 * once it has all of its own, loses the connection; when every connection
 * is gone on both sides the reactor stops.
 *
 * Checks: every record answered exactly once with the right hash, the
 * records of one connection written in the producer's order (the server
 * sees sequence numbers in order: call_from_thread is FIFO per calling
 * thread), every connection_lost a clean ConnectionDone, no twuv
 * allocation leaked. A safety timer fails the run instead of hanging.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <uv.h>

#include "stress.h"

#define CONNS 4
#define REC 16

static tw_reactor *reactor;
static long records;
static int port;

/* The hash a pool thread computes and the client checks (FNV-1a). */
static uint64_t hash_record(const unsigned char *rec) {
  uint64_t h = 1469598103934665603ull;
  int i;
  for (i = 0; i < REC; i++) h = (h ^ rec[i]) * 1099511628211ull;
  return h;
}

static void put32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static uint32_t get32(const unsigned char *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

static void make_record(unsigned char *rec, uint32_t conn, uint32_t seq) {
  uint64_t salt = (uint64_t)conn * 0x9e3779b97f4a7c15ull + seq;
  put32(rec, conn);
  put32(rec + 4, seq);
  memcpy(rec + 8, &salt, 8);
}

/* ---- the server ---------------------------------------------------------------- */

typedef struct server {
  tw_protocol base;
  unsigned char part[REC];
  size_t npart;
  uint32_t conn;      /* from the first record */
  long next_seq;      /* the sequence number expected next */
  long in_flight;     /* hashes deferred, not yet answered */
  int lost;
} server;

static server servers[CONNS];
static int nservers;
static long server_lost;

typedef struct job {
  server *s;
  unsigned char rec[REC];
  uint64_t hash; /* written by the pool thread, read on the loop */
} job;

static tw_result hash_job(void *arg) { /* pool thread */
  job *j = arg;
  j->hash = hash_record(j->rec);
  return tw_result_value(j, NULL);
}

static tw_result hashed(tw_result res, void *arg) { /* loop */
  job *j = arg;
  unsigned char reply[REC];
  CHECK_EQ(res.kind, TW_RESULT_VALUE);
  CHECK(res.u.value == j);
  j->s->in_flight--;
  memcpy(reply, j->rec + 4, 4); /* seq */
  put32(reply + 4, 0);
  memcpy(reply + 8, &j->hash, 8);
  /* The client loses the connection only once it has every reply. */
  CHECK(j->s->base.transport != NULL);
  CHECK_EQ(tw_transport_write(j->s->base.transport, (char *)reply, REC), 0);
  free(j);
  return tw_result_none();
}

static void server_record(server *s, const unsigned char *rec) {
  job *j;
  tw_deferred *d;
  if (s->next_seq == 0) s->conn = get32(rec);
  CHECK_EQ(get32(rec), s->conn);
  CHECK_EQ(get32(rec + 4), s->next_seq); /* FIFO per producer thread */
  s->next_seq++;
  j = malloc(sizeof(*j));
  CHECK(j != NULL);
  j->s = s;
  memcpy(j->rec, rec, REC);
  CHECK_EQ(tw_defer_to_thread(reactor, hash_job, j, NULL, &d), 0);
  s->in_flight++;
  CHECK_EQ(tw_deferred_add_callbacks(d, hashed, NULL, j), 0);
  tw_deferred_unref(d);
}

static tw_failure *server_data(tw_protocol *p, const char *data, size_t len) {
  server *s = (server *)p;
  const unsigned char *u = (const unsigned char *)data;
  while (len > 0) {
    size_t take = REC - s->npart < len ? REC - s->npart : len;
    if (s->npart == 0 && len >= REC) { /* whole records: no copy */
      server_record(s, u);
      u += REC;
      len -= REC;
      continue;
    }
    memcpy(s->part + s->npart, u, take);
    s->npart += take;
    u += take;
    len -= take;
    if (s->npart == REC) {
      server_record(s, s->part);
      s->npart = 0;
    }
  }
  return NULL;
}

static int clients_lost;

static void maybe_stop(void) {
  if (server_lost == CONNS && clients_lost == CONNS)
    CHECK_EQ(tw_reactor_stop(reactor), 0);
}

static void server_connection_lost(tw_protocol *p, tw_failure *reason) {
  server *s = (server *)p;
  CHECK(tw_failure_check(reason, &TW_CONNECTION_DONE) != NULL);
  CHECK_EQ(s->in_flight, 0);
  CHECK_EQ(s->npart, 0);
  CHECK_EQ(s->next_seq, records);
  s->lost = 1;
  server_lost++;
  maybe_stop();
}

static const tw_protocol_ops server_ops = {NULL, server_data,
                                           server_connection_lost, NULL, NULL};

static tw_protocol *build_server(tw_factory *f, const tw_address *a) {
  (void)f;
  (void)a;
  CHECK(nservers < CONNS);
  tw_protocol_init(&servers[nservers].base, &server_ops);
  return &servers[nservers++].base;
}

/* ---- the clients ------------------------------------------------------------------ */

typedef struct client {
  tw_protocol base;
  uint32_t conn;
  unsigned char part[REC];
  size_t npart;
  long replies;
  unsigned char *seen; /* per sequence number */
  uv_sem_t connected;  /* the producer waits for it */
} client;

static client clients[CONNS];
static int nclients;

static void client_made(tw_protocol *p) {
  uv_sem_post(&((client *)p)->connected);
}

static void client_reply(client *c, const unsigned char *rep) {
  uint32_t seq = get32(rep);
  unsigned char rec[REC];
  uint64_t h;
  CHECK(seq < (uint32_t)records);
  CHECK_EQ(c->seen[seq]++, 0);
  make_record(rec, c->conn, seq);
  memcpy(&h, rep + 8, 8);
  CHECK(h == hash_record(rec));
  if (++c->replies == records)
    CHECK_EQ(tw_transport_lose_connection(c->base.transport), 0);
}

static tw_failure *client_data(tw_protocol *p, const char *data, size_t len) {
  client *c = (client *)p;
  while (len > 0) {
    size_t take = REC - c->npart < len ? REC - c->npart : len;
    memcpy(c->part + c->npart, data, take);
    c->npart += take;
    data += take;
    len -= take;
    if (c->npart == REC) {
      client_reply(c, c->part);
      c->npart = 0;
    }
  }
  return NULL;
}

static void client_lost_cb(tw_protocol *p, tw_failure *reason) {
  client *c = (client *)p;
  CHECK(tw_failure_check(reason, &TW_CONNECTION_DONE) != NULL);
  CHECK_EQ(c->replies, records);
  clients_lost++;
  maybe_stop();
}

static const tw_protocol_ops client_ops = {client_made, client_data,
                                           client_lost_cb, NULL, NULL};

static tw_protocol *build_client(tw_factory *f, const tw_address *a) {
  (void)f;
  (void)a;
  CHECK(nclients < CONNS);
  return &clients[nclients++].base;
}

/* A record from a producer thread, written on the loop. */
typedef struct outgoing {
  client *c;
  unsigned char rec[REC];
} outgoing;

static void send_record(void *arg) { /* loop */
  outgoing *o = arg;
  CHECK(o->c->base.transport != NULL);
  CHECK_EQ(tw_transport_write(o->c->base.transport, (char *)o->rec, REC), 0);
}

static void producer(void *arg) { /* its own thread */
  client *c = arg;
  long i;
  uv_sem_wait(&c->connected);
  for (i = 0; i < records; i++) {
    outgoing *o = malloc(sizeof(*o));
    CHECK(o != NULL);
    o->c = c;
    make_record(o->rec, c->conn, (uint32_t)i);
    CHECK_EQ(tw_reactor_call_from_thread(reactor, send_record, o, free), 0);
  }
}

static void give_up(void *arg) {
  (void)arg;
  fprintf(stderr, "net_threads: no end after 300 s (%ld servers lost, %d "
                  "clients lost)\n",
          server_lost, clients_lost);
  exit(1);
}

int main(void) {
  static const tw_factory_ops sops = {build_server, NULL, NULL,
                                      NULL,         NULL, NULL};
  static const tw_factory_ops cops = {build_client, NULL, NULL,
                                      NULL,         NULL, NULL};
  tw_factory sf, cf;
  tw_listening_port *lp;
  tw_address a;
  tw_delayed_call *safety;
  uv_thread_t th[CONNS];
  int i;
  twt_alloc_install();
  records = stress_scaled(100000);
  CHECK_EQ(tw_reactor_new(&reactor, NULL, 0), 0);
  tw_factory_init(&sf, &sops);
  tw_factory_init(&cf, &cops);
  CHECK_EQ(tw_listen_tcp(&lp, reactor, 0, &sf, 0, "127.0.0.1"), 0);
  CHECK_EQ(tw_listening_port_get_host(lp, &a), 0);
  port = a.port;
  for (i = 0; i < CONNS; i++) {
    tw_connector *c;
    client *cl = &clients[i];
    tw_protocol_init(&cl->base, &client_ops);
    cl->conn = (uint32_t)i;
    cl->seen = calloc((size_t)records, 1);
    CHECK(cl->seen != NULL);
    CHECK_EQ(uv_sem_init(&cl->connected, 0), 0);
    CHECK_EQ(tw_connect_tcp(&c, reactor, "127.0.0.1", port, &cf, 30, NULL), 0);
    CHECK_EQ(uv_thread_create(&th[i], producer, cl), 0);
  }
  CHECK_EQ(tw_reactor_call_later(reactor, 300, give_up, NULL, NULL, &safety),
           0);
  CHECK_EQ(tw_reactor_run(reactor), 0);
  for (i = 0; i < CONNS; i++) uv_thread_join(&th[i]);
  CHECK_EQ(tw_delayed_call_cancel(safety), 0);
  tw_delayed_call_unref(safety);
  CHECK_EQ(tw_reactor_free(reactor), 0);
  for (i = 0; i < CONNS; i++) {
    long j;
    for (j = 0; j < records; j++) CHECK_EQ(clients[i].seen[j], 1);
    free(clients[i].seen);
    uv_sem_destroy(&clients[i].connected);
  }
  CHECK_EQ(nservers, CONNS);
  stress_check_no_leaks();
  printf("net_threads: %d connections, %ld records each, answered through "
         "the pool\n",
         CONNS, records);
  return 0;
}
