/*
 * Stress: 4 threads in tw_blocking_call_from_thread while the reactor shuts
 * down, over and over. Some calls return a value at once, some a Deferred
 * fired shortly after, some a Deferred that is never fired; the reactor
 * stops at a moment that races all of them. Checks: every call returns
 * (none hangs), with 0 and its value or with TW_ESHUTDOWN - never anything
 * else - and once the reactor is down every later call is refused; nothing
 * leaks, no result is reported as unhandled.
 */
#include <math.h>
#include <stdatomic.h>
#include <string.h>
#include <uv.h>

#include "stress.h"

#define CALLERS 4

static tw_reactor *reactor;
static atomic_long ok_calls, shutdown_calls;
static tw_deferred *never[1024];
static int nnever;

static void fire(void *arg) {
  tw_deferred_callback(arg, tw_result_value("later", NULL));
}
static void unref(void *arg) { tw_deferred_unref(arg); }

/* Loop thread. */
static tw_result on_loop(void *arg) {
  long k = (long)(intptr_t)arg;
  tw_deferred *d;
  switch (k % 3) {
    case 0:
      return tw_result_value("now", NULL);
    case 1:
      d = tw_deferred_new(NULL, NULL);
      CHECK_EQ(tw_reactor_call_later(reactor, 0, fire, tw_deferred_ref(d),
                                     unref, NULL),
               0);
      return tw_result_deferred(d);
    default:
      /* Held, never fired: only shutdown releases the caller. */
      d = tw_deferred_new(NULL, NULL);
      if (nnever < 1024) never[nnever++] = tw_deferred_ref(d);
      return tw_result_deferred(d);
  }
}

static void caller(void *arg) {
  long k = (long)(intptr_t)arg;
  for (;; k += CALLERS) {
    tw_result r;
    int rc = tw_blocking_call_from_thread(reactor, on_loop,
                                          (void *)(intptr_t)k, &r, INFINITY);
    if (rc == TW_ESHUTDOWN) {
      atomic_fetch_add(&shutdown_calls, 1);
      break;
    }
    CHECK_EQ(rc, 0);
    CHECK(r.kind == TW_RESULT_VALUE);
    atomic_fetch_add(&ok_calls, 1);
  }
}

static void stop_now(void *arg) { CHECK_EQ(tw_reactor_stop(arg), 0); }

static void refused_after_shutdown(void *arg) {
  tw_result r;
  (void)arg;
  CHECK_EQ(tw_blocking_call_from_thread(reactor, on_loop, NULL, &r, 1.0),
           TW_ESHUTDOWN);
}

static tw_result start_callers(void *arg) {
  uv_thread_t *t = arg;
  long i;
  for (i = 0; i < CALLERS; i++)
    CHECK_EQ(uv_thread_create(&t[i], caller, (void *)(intptr_t)i), 0);
  return tw_result_none();
}

int main(void) {
  long rounds = stress_scaled(300), n;
  int i;
  twt_alloc_install();
  for (n = 0; n < rounds; n++) {
    uv_thread_t t[CALLERS], late;
    nnever = 0;
    CHECK_EQ(tw_reactor_new(&reactor, NULL, 0), 0);
    CHECK_EQ(tw_reactor_call_when_running(reactor, start_callers, t, NULL, NULL), 0);
    /* Stop after a varying number of loop iterations. */
    CHECK_EQ(tw_reactor_call_later(reactor, (double)(n % 5) * 0.0005, stop_now,
                                   reactor, NULL, NULL),
             0);
    CHECK_EQ(tw_reactor_run(reactor), 0);
    for (i = 0; i < CALLERS; i++) uv_thread_join(&t[i]);
    /* Down: refused at once. */
    CHECK_EQ(uv_thread_create(&late, refused_after_shutdown, NULL), 0);
    uv_thread_join(&late);
    for (i = 0; i < nnever; i++) tw_deferred_unref(never[i]);
    CHECK_EQ(tw_reactor_free(reactor), 0);
  }
  stress_check_no_leaks();
  printf("blocking_shutdown: %ld rounds, %ld calls answered, %ld released by "
         "shutdown\n",
         rounds, atomic_load(&ok_calls), atomic_load(&shutdown_calls));
  return 0;
}
