/*
 * examples/defer_to_thread.c - "Getting Results", from Twisted's "Using
 * Threads in Twisted" howto:
 *
 *     def doLongCalculation():
 *         # .... do long calculation here ...
 *         return 3
 *
 *     def printResult(x):
 *         print(x)
 *
 *     d = threads.deferToThread(doLongCalculation)
 *     d.addCallback(printResult)
 *     reactor.run()
 *
 * The calculation runs on a pool thread; its result comes back to the loop
 * thread as the result of a Deferred, where the callbacks run.
 */
#include <stdint.h>
#include <stdio.h>
#include <twuv.h>

static tw_reactor *reactor;

/* Runs on a pool thread. */
static tw_result do_long_calculation(void *arg) {
  volatile unsigned long acc = 0, i;
  (void)arg;
  for (i = 0; i < 50000000ul; i++) acc += i % 7; /* ... long calculation ... */
  (void)acc;
  return tw_result_value((void *)(intptr_t)3, NULL);
}

/* Runs on the loop thread. */
static tw_result print_result(tw_result x, void *arg) {
  (void)arg;
  printf("%ld\n", (long)(intptr_t)x.u.value);
  return x;
}

static tw_result stop(tw_result r, void *arg) {
  if (r.kind == TW_RESULT_FAILURE)
    fprintf(stderr, "failed: %s\n", tw_failure_message(r.u.failure));
  tw_result_release(r);
  tw_reactor_stop(arg);
  return tw_result_none();
}

int main(void) {
  tw_deferred *d;
  int err = tw_reactor_new(&reactor, NULL, TW_REACTOR_SIGNALS);
  if (err == 0)
    err = tw_defer_to_thread(reactor, do_long_calculation, NULL, NULL, &d);
  if (err != 0) {
    fprintf(stderr, "error: %s\n", tw_strerror(err));
    return 1;
  }
  tw_deferred_add_callback(d, print_result, NULL);
  tw_deferred_add_both(d, stop, reactor);
  tw_deferred_unref(d); /* the pool job holds it until it fires */
  err = tw_reactor_run(reactor);
  tw_reactor_free(reactor);
  tw_thread_cleanup(); /* this thread's cached nodes (valgrind) */
  return err == 0 ? 0 : 1;
}
