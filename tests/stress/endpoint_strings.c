/*
 * Stress: endpoints.h's thread-safe part - description strings parsed and
 * endpoints made and freed on 4 threads at once, while the same threads
 * register, use and unregister prefixes of their own and race to register
 * one shared prefix (exactly one wins each round). Checks: every parse
 * gives what a single thread gets, the registry never loses or doubles an
 * entry, nothing leaks (the allocator hook), and under TSan no data race.
 */
#include <stdatomic.h>
#include <string.h>
#include <uv.h>

#include "stress.h"

#define THREADS 4

static tw_reactor *R;
static atomic_int shared_wins, shared_calls;
static uv_barrier_t round_start, round_end;
static long rounds;

static int own_parser(tw_endpoint **out, tw_reactor *r,
                      const tw_endpoint_args *a, void *arg,
                      tw_failure **error) {
  (void)error;
  if (a->nargs != 1 || strcmp(a->args[0], "x") != 0 ||
      strcmp(tw_endpoint_args_get(a, "k") ? tw_endpoint_args_get(a, "k") : "",
             "v") != 0)
    return TW_EINVAL;
  return tw_unix_client_endpoint_new(out, r, (const char *)arg, 1.0);
}

static int shared_parser(tw_endpoint **out, tw_reactor *r,
                         const tw_endpoint_args *a, void *arg,
                         tw_failure **error) {
  (void)a, (void)arg, (void)error;
  atomic_fetch_add(&shared_calls, 1);
  return tw_tcp4_server_endpoint_new(out, r, 1, 0, NULL);
}

static void check_builtins(void) {
  tw_endpoint *ep;
  tw_endpoint_info i;
  tw_failure *why;
  CHECK(tw_server_from_string(&ep, R, "tcp:8080:interface=127.0.0.1:backlog=7",
                              NULL) == 0);
  CHECK(tw_endpoint_get_info(ep, &i) == 0);
  CHECK(i.port == 8080 && i.backlog == 7 && strcmp(i.host, "127.0.0.1") == 0);
  tw_endpoint_free(ep);
  CHECK(tw_client_from_string(&ep, R, "unix:/tmp/a\\:b:timeout=3", NULL) == 0);
  CHECK(tw_endpoint_get_info(ep, &i) == 0);
  CHECK(strcmp(i.path, "/tmp/a:b") == 0 && i.timeout == 3.0);
  tw_endpoint_free(ep);
  CHECK(tw_server_from_string(&ep, R, "tcp:x", &why) == TW_EINVAL);
  CHECK(tw_failure_type(why) == &TW_VALUE_ERROR);
  tw_failure_unref(why);
}

static void worker(void *arg) {
  int id = (int)(intptr_t)arg;
  char prefix[16], desc[64], path[32];
  long n;
  snprintf(prefix, sizeof prefix, "own%d", id);
  snprintf(path, sizeof path, "/tmp/s%d", id);
  snprintf(desc, sizeof desc, "OWN%d:x:k=v", id);
  for (n = 0; n < rounds; n++) {
    tw_endpoint *ep;
    tw_endpoint_info i;
    int rc;
    CHECK(tw_endpoint_register_parser(prefix, own_parser, NULL, path) == 0);
    CHECK(tw_server_from_string(&ep, R, desc, NULL) == 0);
    CHECK(tw_endpoint_get_info(ep, &i) == 0);
    CHECK(strcmp(i.path, path) == 0); /* our arg, not another thread's */
    tw_endpoint_free(ep);
    check_builtins();
    /* Everyone races for "shared"; one registers it. */
    uv_barrier_wait(&round_start);
    rc = tw_endpoint_register_parser("shared", shared_parser, NULL, NULL);
    CHECK(rc == 0 || rc == TW_EBUSY);
    if (rc == 0) atomic_fetch_add(&shared_wins, 1);
    uv_barrier_wait(&round_end);
    CHECK(tw_server_from_string(&ep, R, "shared", NULL) == 0);
    tw_endpoint_free(ep);
    if (uv_barrier_wait(&round_start) > 0) /* one thread: the serializer */
      CHECK(tw_endpoint_unregister_parser("shared") == 0);
    uv_barrier_wait(&round_end);
    CHECK(tw_endpoint_unregister_parser(prefix) == 0);
  }
}

int main(void) {
  uv_thread_t t[THREADS];
  int i;
  twt_alloc_install();
  rounds = stress_scaled(5000);
  CHECK(tw_reactor_new(&R, NULL, 0) == 0);
  CHECK(uv_barrier_init(&round_start, THREADS) == 0);
  CHECK(uv_barrier_init(&round_end, THREADS) == 0);
  for (i = 0; i < THREADS; i++)
    CHECK(uv_thread_create(&t[i], worker, (void *)(intptr_t)i) == 0);
  for (i = 0; i < THREADS; i++) CHECK(uv_thread_join(&t[i]) == 0);
  CHECK_EQ(atomic_load(&shared_wins), rounds);
  CHECK_EQ(atomic_load(&shared_calls), rounds * THREADS);
  CHECK(tw_endpoint_unregister_parser("shared") == TW_ENOENT);
  uv_barrier_destroy(&round_start);
  uv_barrier_destroy(&round_end);
  CHECK(tw_reactor_free(R) == 0);
  tw_thread_cleanup();
  CHECK_EQ(twt_alloc_live(), 0);
  printf("endpoint_strings: %ld rounds x %d threads ok\n", rounds, THREADS);
  return 0;
}
