/*
 * examples/call_in_thread.c - "Running Code In Threads", from Twisted's
 * "Using Threads in Twisted" howto:
 *
 *     def aSillyBlockingMethod(x):
 *         import time
 *         time.sleep(2)
 *         print(x)
 *
 *     reactor.callInThread(aSillyBlockingMethod, "2 seconds have passed")
 *     reactor.run()
 *
 * The blocking function runs on a thread of the reactor's pool, so the loop
 * stays free meanwhile (a timer on the loop ticks to show it). Unlike the
 * Python example, which runs until interrupted, this one then stops the
 * reactor - from the pool thread, through the only thread-safe door.
 */
#include <stdio.h>
#include <twuv.h>
#include <uv.h>

static tw_reactor *reactor;

static void stop_reactor(void *arg) { tw_reactor_stop(arg); }

static void a_silly_blocking_method(void *x) {
  uv_sleep(2000); /* blocks this pool thread, not the loop */
  printf("%s\n", (const char *)x);
  fflush(stdout);
  tw_reactor_call_from_thread(reactor, stop_reactor, reactor, NULL);
}

static void tick(void *arg) {
  printf("the loop is not blocked (%s)\n", (const char *)arg);
  fflush(stdout);
}

int main(void) {
  int err = tw_reactor_new(&reactor, NULL, TW_REACTOR_SIGNALS);
  if (err == 0)
    err = tw_reactor_call_in_thread(reactor, a_silly_blocking_method,
                                    "2 seconds have passed", NULL);
  if (err == 0)
    err = tw_reactor_call_later(reactor, 1.0, tick, "1 s", NULL, NULL);
  if (err == 0) err = tw_reactor_run(reactor);
  if (err != 0) fprintf(stderr, "error: %s\n", tw_strerror(err));
  tw_reactor_free(reactor);
  tw_thread_cleanup(); /* this thread's cached nodes (valgrind) */
  return err == 0 ? 0 : 1;
}
