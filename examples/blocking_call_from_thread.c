/*
 * examples/blocking_call_from_thread.c - blockingCallFromThread, from
 * Twisted's "Using Threads in Twisted" howto:
 *
 *     def inThread():
 *         try:
 *             result = threads.blockingCallFromThread(
 *                 reactor, getPage, "http://twistedmatrix.com/")
 *         except Error, exc:
 *             print exc
 *         else:
 *             print result
 *         reactor.callFromThread(reactor.stop)
 *
 *     reactor.callInThread(inThread)
 *     reactor.run()
 *
 * A pool thread asks the loop for a value that the loop produces
 * asynchronously (here a "page" that arrives 100 ms later - twuv has no
 * HTTP client - and a second one that fails, to show the error path), and
 * blocks until each arrives. Twisted would hang if this were called on the
 * loop thread; twuv returns TW_EDEADLK, as the last call shows.
 */
#include <stdio.h>
#include <string.h>
#include <twuv.h>

static tw_reactor *reactor;

static const tw_error_type HTTP_ERROR = {"twisted.web.error.Error", &TW_ERROR};

static void deliver(void *arg) {
  tw_deferred_callback(arg, tw_result_value("<html>Twisted</html>", NULL));
}

static void deliver_404(void *arg) {
  tw_deferred_errback(arg, tw_failure_new(&HTTP_ERROR, 404, "404 Not Found"));
}

static void unref(void *d) { tw_deferred_unref(d); }

/* Loop thread: start a "download"; its Deferred fires later. */
static tw_result get_page(void *url) {
  tw_deferred *d = tw_deferred_new(NULL, NULL);
  int missing = strstr(url, "missing") != NULL;
  tw_reactor_call_later(reactor, 0.1, missing ? deliver_404 : deliver,
                        tw_deferred_ref(d), unref, NULL);
  return tw_result_deferred(d);
}

static void fetch(const char *url) {
  tw_result result;
  int err = tw_blocking_call_from_thread(reactor, get_page, (void *)url,
                                         &result, 5.0);
  if (err != 0)
    printf("%s: %s\n", url, tw_strerror(err));
  else if (result.kind == TW_RESULT_FAILURE)
    printf("%s: %s: %s\n", url, tw_failure_type(result.u.failure)->name,
           tw_failure_message(result.u.failure));
  else
    printf("%s: %s\n", url, (const char *)result.u.value);
  tw_result_release(result);
}

static void stop_reactor(void *arg) { tw_reactor_stop(arg); }

/* A pool thread. */
static void in_thread(void *arg) {
  (void)arg;
  fetch("http://twistedmatrix.com/");
  fetch("http://twistedmatrix.com/missing");
  tw_reactor_call_from_thread(reactor, stop_reactor, reactor, NULL);
}

/* On the loop thread Twisted deadlocks for ever; twuv says so. */
static tw_result on_the_loop(void *arg) {
  tw_result result;
  (void)arg;
  printf("on the loop thread: %s\n",
         tw_err_name(tw_blocking_call_from_thread(reactor, get_page, "x",
                                                  &result, 1.0)));
  return tw_result_none();
}

int main(void) {
  int err = tw_reactor_new(&reactor, NULL, TW_REACTOR_SIGNALS);
  if (err == 0) err = tw_reactor_call_in_thread(reactor, in_thread, NULL, NULL);
  if (err == 0)
    err = tw_reactor_call_when_running(reactor, on_the_loop, NULL, NULL, NULL);
  if (err == 0) err = tw_reactor_run(reactor);
  if (err != 0) fprintf(stderr, "error: %s\n", tw_strerror(err));
  tw_reactor_free(reactor);
  tw_thread_cleanup(); /* this thread's cached nodes (valgrind) */
  return err == 0 ? 0 : 1;
}
