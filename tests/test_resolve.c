/*
 * tests/test_resolve.c - reactor.resolve (resolve.h): numeric lookups (no
 * dependence on the machine's resolver), failures with libuv's code,
 * cancellation, the timeout (ThreadedResolverTests.test_timeout), and free
 * refusing while a lookup is in flight.
 */
#include <arpa/inet.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <uv.h>

#include "twtest.h"

TWT_SUITE(resolve);

static tw_reactor *R;

static tw_reactor *new_reactor(unsigned flags) {
  tw_reactor *r = twt_new_reactor(flags);
  R = r;
  return r;
}

#define run(r) twt_run(r) /* twtest.h */
#define free_reactor(r) twt_free_reactor(r)

TWT_TEST(resolve, bad_input_returns_codes) {
  tw_reactor *r = new_reactor(0);
  tw_deferred *d = (tw_deferred *)&d;
  cr_assert_eq(tw_reactor_resolve(NULL, "localhost", &d), TW_EINVAL);
  cr_assert_null(d);
  cr_assert_eq(tw_reactor_resolve(r, NULL, &d), TW_EINVAL);
  cr_assert_eq(tw_reactor_resolve(r, "localhost", NULL), TW_EINVAL);
  free_reactor(r);
}

/* ---- twuv: resolve ------------------------------------------------------------------ */

/*
 * The answer of one lookup, copied out of the callback: the test asserts only
 * after the reactor is freed, so a failing assertion cannot leave the request
 * (and its Deferred) behind as a leak.
 */
typedef struct resolved {
  int stop_reactor; /* set by the test: stop R once it has fired */
  int fired;
  int failed;
  char failure[256];
  int dns_error, os_error, cancelled; /* the failure's types */
  int code;                           /* the failure's code */
  int family;                    /* of the first address */
  char first[INET6_ADDRSTRLEN];  /* the first address, as text */
} resolved;

static tw_result note_resolved(tw_result r, void *arg) {
  resolved *out = arg;
  out->fired++;
  if (r.kind == TW_RESULT_FAILURE) {
    out->failed = 1;
    snprintf(out->failure, sizeof(out->failure), "%s",
             tw_failure_message(r.u.failure));
    out->dns_error = tw_failure_check(r.u.failure, &TW_DNS_LOOKUP_ERROR) != NULL;
    out->os_error = tw_failure_check(r.u.failure, &TW_OS_ERROR) != NULL;
    out->cancelled = tw_failure_check(r.u.failure, &TW_CANCELLED_ERROR) != NULL;
    out->code = tw_failure_code(r.u.failure);
  } else if (r.kind == TW_RESULT_VALUE && r.u.value != NULL) {
    const struct addrinfo *ai = r.u.value;
    const void *a = NULL;
    out->family = ai->ai_family;
    if (ai->ai_family == AF_INET)
      a = &((const struct sockaddr_in *)ai->ai_addr)->sin_addr;
    else if (ai->ai_family == AF_INET6)
      a = &((const struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
    if (a == NULL ||
        inet_ntop(ai->ai_family, a, out->first, sizeof(out->first)) == NULL)
      out->first[0] = '\0';
  }
  tw_result_release(r); /* frees the addrinfo list (uv_freeaddrinfo) */
  if (out->stop_reactor) tw_reactor_stop(R);
  return tw_result_none();
}

/* Resolve name on a fresh reactor; every cleanup done before returning. */
static resolved resolve_and_free(const char *name) {
  resolved res;
  tw_reactor *r = new_reactor(0);
  tw_deferred *d = NULL;
  int rc;
  memset(&res, 0, sizeof(res));
  res.stop_reactor = 1;
  rc = tw_reactor_resolve(r, name, &d);
  if (rc == 0) {
    tw_deferred_add_both(d, note_resolved, &res);
    tw_deferred_unref(d);
    rc = tw_reactor_run(r);
  }
  free_reactor(r);
  cr_assert_eq(rc, 0, "resolve or run of %s: %d", name, rc);
  return res;
}

/*
 * Numeric addresses: getaddrinfo parses them itself, without /etc/hosts, DNS
 * or the network, so the test passes on any machine (a minimal root without
 * /etc/hosts does not know "localhost"). Twisted's own resolver tests use a
 * fake gethostbyname for the same reason.
 */
TWT_TEST(resolve, resolve_numeric_ipv4_address) {
  resolved res = resolve_and_free("127.0.0.1");
  cr_assert_eq(res.fired, 1);
  cr_assert_eq(res.failed, 0, "%s", res.failure);
  cr_assert_eq(res.family, AF_INET);
  cr_assert_str_eq(res.first, "127.0.0.1");
}

TWT_TEST(resolve, resolve_numeric_ipv6_address) {
  resolved res = resolve_and_free("::1");
  cr_assert_eq(res.fired, 1);
  cr_assert_eq(res.failed, 0, "%s", res.failure);
  cr_assert_eq(res.family, AF_INET6);
  cr_assert_str_eq(res.first, "::1");
}

TWT_TEST(resolve, resolve_failure_carries_the_libuv_error) {
  /* A malformed name fails at once, without asking the network. */
  resolved res = resolve_and_free("a..b");
  cr_assert_eq(res.fired, 1);
  cr_assert_eq(res.failed, 1, "a..b resolved to %s", res.first);
  cr_assert(res.dns_error, "%s", res.failure);
  cr_assert(res.os_error, "%s", res.failure);
  cr_assert_neq(res.code, 0);
}

TWT_TEST(resolve, resolve_can_be_cancelled) {
  tw_reactor *r = new_reactor(0);
  tw_deferred *d;
  resolved res;
  int rc_resolve, rc_cancel = -1, rc_free;
  memset(&res, 0, sizeof(res));
  rc_resolve = tw_reactor_resolve(r, "127.0.0.1", &d);
  if (rc_resolve == 0) {
    tw_deferred_add_both(d, note_resolved, &res);
    rc_cancel = tw_deferred_cancel(d);
    tw_deferred_unref(d);
  }
  /* The request completes (or is cancelled) on the loop; free waits. */
  rc_free = tw_reactor_free(r);
  if (rc_free == TW_EBUSY)
    while (tw_reactor_free(r) == TW_EBUSY) tw_reactor_iterate(r, 0.01);
  cr_assert_eq(rc_resolve, 0);
  cr_assert_eq(rc_cancel, 0);
  cr_assert_eq(rc_free, TW_EBUSY);
  cr_assert_eq(res.fired, 1);
  cr_assert(res.cancelled, "%s", res.failure);
}

/* ---- test_base.py: ThreadedResolverTests.test_timeout ------------------------
 * Twisted patches gethostbyname to block; here every thread of libuv's pool
 * (where uv_getaddrinfo runs) is held busy, so the lookup cannot start before
 * its timeout, whatever the machine's speed. */

typedef struct pool_blockers {
  uv_mutex_t mu;
  uv_cond_t cond;
  int running, release, n;
  uv_loop_t loop;
  uv_work_t work[128];
} pool_blockers;

static void blocker_work(uv_work_t *w) {
  pool_blockers *b = w->data;
  uv_mutex_lock(&b->mu);
  b->running++;
  uv_cond_broadcast(&b->cond);
  while (!b->release) uv_cond_wait(&b->cond, &b->mu);
  uv_mutex_unlock(&b->mu);
}

static void blocker_done(uv_work_t *w, int status) {
  (void)w;
  (void)status;
}

static void block_uv_pool(pool_blockers *b) {
  const char *env = getenv("UV_THREADPOOL_SIZE");
  int i;
  b->n = env != NULL && atoi(env) > 0 ? atoi(env) : 4;
  cr_assert_leq(b->n, 128);
  b->running = b->release = 0;
  cr_assert_eq(uv_mutex_init(&b->mu), 0);
  cr_assert_eq(uv_cond_init(&b->cond), 0);
  cr_assert_eq(uv_loop_init(&b->loop), 0);
  for (i = 0; i < b->n; i++) {
    b->work[i].data = b;
    cr_assert_eq(uv_queue_work(&b->loop, &b->work[i], blocker_work,
                               blocker_done), 0);
  }
  uv_mutex_lock(&b->mu);
  while (b->running < b->n) uv_cond_wait(&b->cond, &b->mu);
  uv_mutex_unlock(&b->mu);
}

static void unblock_uv_pool(pool_blockers *b) {
  uv_mutex_lock(&b->mu);
  b->release = 1;
  uv_cond_broadcast(&b->cond);
  uv_mutex_unlock(&b->mu);
  cr_assert_eq(uv_run(&b->loop, UV_RUN_DEFAULT), 0);
  cr_assert_eq(uv_loop_close(&b->loop), 0);
  uv_cond_destroy(&b->cond);
  uv_mutex_destroy(&b->mu);
}

static tw_result expect_lookup_timeout(tw_result r, void *arg) {
  int *seen = arg;
  cr_assert_eq(r.kind, TW_RESULT_FAILURE);
  cr_assert(tw_failure_check(r.u.failure, &TW_DNS_LOOKUP_ERROR));
  cr_assert_eq(tw_failure_code(r.u.failure), TW_ETIMEDOUT);
  cr_assert_str_eq(tw_failure_message(r.u.failure),
                   "address '127.0.0.1' not found: timeout error");
  tw_result_release(r);
  (*seen)++;
  tw_reactor_stop(R);
  return tw_result_none();
}

TWT_TEST_OPTS(resolve, test_timeout, .timeout = 120) {
  static pool_blockers b;
  tw_reactor *r = new_reactor(0);
  tw_deferred *d;
  int seen = 0;
  block_uv_pool(&b);
  cr_assert_eq(tw_reactor_resolve_timeout(r, "127.0.0.1", 0.001, &d), 0);
  tw_deferred_add_both(d, expect_lookup_timeout, &seen);
  tw_deferred_unref(d);
  run(r); /* hangs here if the timeout never fires */
  cr_assert_eq(seen, 1);
  unblock_uv_pool(&b);
  /* The abandoned lookup is cancelled (or runs and is dropped): the reactor
   * can be freed once its callback came, with nothing leaked. */
  while (tw_reactor_free(r) == TW_EBUSY) tw_reactor_iterate(r, 0.01);
}

static tw_result expect_loopback(tw_result r, void *arg) {
  (void)arg;
  cr_assert_eq(r.kind, TW_RESULT_VALUE);
  tw_reactor_stop(R);
  return r;
}

TWT_TEST(resolve, resolve_answered_in_time_cancels_its_timeout) {
  /* A numeric address needs no resolver; the timer must not outlive the
   * lookup (the leak check sees a pending delayed call otherwise). */
  tw_reactor *r = new_reactor(0);
  tw_deferred *d;
  cr_assert_eq(tw_reactor_resolve_timeout(r, "127.0.0.1", 3600, &d), 0);
  tw_deferred_add_both(d, expect_loopback, NULL);
  tw_deferred_unref(d);
  run(r);
  free_reactor(r);
}

TWT_TEST(resolve, resolve_timeout_must_be_positive) {
  tw_reactor *r = new_reactor(0);
  tw_deferred *d = NULL;
  cr_assert_eq(tw_reactor_resolve_timeout(r, "127.0.0.1", 0, &d), TW_EINVAL);
  cr_assert_eq(tw_reactor_resolve_timeout(r, "127.0.0.1", -1, &d), TW_EINVAL);
  cr_assert_eq(tw_reactor_resolve_timeout(r, "127.0.0.1", NAN, &d),
               TW_EINVAL);
  cr_assert_null(d);
  free_reactor(r);
}


/* ---- installResolver ---------------------------------------------------------------- */

typedef struct table {
  int calls, freed;
  double timeout;
} table;

static void free_ai(void *ai) { freeaddrinfo(ai); }

static int table_resolve(void *arg, tw_reactor *r, const char *name,
                         double timeout, tw_deferred **out) {
  table *t = arg;
  struct addrinfo hints, *ai;
  (void)r;
  t->calls++;
  t->timeout = timeout;
  if (strcmp(name, "twuv.example") != 0) {
    *out = tw_fail(tw_failure_new(&TW_DNS_LOOKUP_ERROR, 0, "no %s", name));
    return 0;
  }
  memset(&hints, 0, sizeof(hints));
  hints.ai_flags = AI_NUMERICHOST;
  if (getaddrinfo("192.0.2.7", NULL, &hints, &ai) != 0) return TW_EINVAL;
  *out = tw_succeed(ai, free_ai);
  return 0;
}

static void table_free(void *arg) { ((table *)arg)->freed++; }

TWT_TEST(resolve, install_resolver_bad_input) {
  tw_reactor *r = new_reactor(0);
  table t = {0, 0, 0};
  cr_assert_eq(tw_reactor_install_resolver(NULL, table_resolve, &t, NULL),
               TW_EINVAL);
  cr_assert_eq(tw_reactor_install_resolver(r, NULL, &t, NULL), TW_EINVAL);
  cr_assert_eq(tw_reactor_install_resolver(r, NULL, NULL, table_free),
               TW_EINVAL);
  cr_assert_eq(t.freed, 0); /* refused: arg_free not called */
  cr_assert_eq(tw_reactor_install_resolver(r, NULL, NULL, NULL), 0);
  free_reactor(r);
  cr_assert_eq(t.freed, 0);
}

/* reactor.installResolver: resolve goes through it, with the timeout; the
 * replaced resolver's arg_free runs; NULL restores uv_getaddrinfo. */
TWT_TEST(resolve, installed_resolver_answers_resolve) {
  tw_reactor *r = new_reactor(0);
  table t1 = {0, 0, 0}, t2 = {0, 0, 0};
  resolved a, b;
  tw_deferred *d;
  memset(&a, 0, sizeof(a));
  memset(&b, 0, sizeof(b));
  cr_assert_eq(tw_reactor_install_resolver(r, table_resolve, &t1, table_free),
               0);
  cr_assert_eq(tw_reactor_resolve_timeout(r, "twuv.example", 7.5, &d), 0);
  tw_deferred_add_both(d, note_resolved, &a);
  tw_deferred_unref(d);
  cr_assert_eq(t1.calls, 1);
  cr_assert_eq(t1.timeout, 7.5);
  cr_assert_eq(tw_reactor_install_resolver(r, table_resolve, &t2, table_free),
               0);
  cr_assert_eq(t1.freed, 1);
  cr_assert_eq(tw_reactor_resolve(r, "nowhere.example", &d), 0);
  tw_deferred_add_both(d, note_resolved, &b);
  tw_deferred_unref(d);
  cr_assert_eq(t2.calls, 1);
  cr_assert_eq(t2.timeout, 60.0); /* Twisted's default, (1, 3, 11, 45) */
  cr_assert_eq(tw_reactor_install_resolver(r, NULL, NULL, NULL), 0);
  cr_assert_eq(t2.freed, 1);
  free_reactor(r);
  cr_assert_eq(t1.calls, 1);
  cr_assert_eq(a.fired, 1);
  cr_assert_eq(a.failed, 0);
  cr_assert_eq(a.family, AF_INET);
  cr_assert_str_eq(a.first, "192.0.2.7");
  cr_assert_eq(b.fired, 1);
  cr_assert(b.dns_error);
}
