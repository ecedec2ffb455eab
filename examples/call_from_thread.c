/*
 * examples/call_from_thread.c - "Invoking Twisted From Other Threads", the
 * first example of Twisted's "Using Threads in Twisted" howto:
 *
 *     def notThreadSafe(someProtocol, message):
 *         someProtocol.transport.write(b"a message: " + message)
 *     def callFromWhateverThreadYouWant():
 *         reactor.callFromThread(notThreadSafe, b"hello")
 *
 * Here the "transport" is a libuv file write on the reactor's own loop:
 * like every libuv call on a loop, it may only be made on the loop's thread.
 * A worker thread therefore hands the message to the loop thread with
 * tw_reactor_call_from_thread, the only reactor function that is
 * thread-safe.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <twuv.h>
#include <uv.h>

static tw_reactor *reactor;

typedef struct {
  uv_fs_t req;
  uv_buf_t buf;
  char text[128];
} write_req;

static void written(uv_fs_t *req) {
  write_req *w = (write_req *)req;
  if (req->result < 0)
    fprintf(stderr, "write failed: %s\n", uv_strerror((int)req->result));
  uv_fs_req_cleanup(req);
  free(w);
  tw_reactor_stop(reactor);
}

/* Not thread-safe: touches the loop. Runs on the loop thread only. */
static void not_thread_safe(void *arg) {
  const char *message = arg;
  write_req *w = malloc(sizeof(*w));
  if (w == NULL) {
    tw_reactor_stop(reactor);
    return;
  }
  snprintf(w->text, sizeof(w->text), "a message: %s\n", message);
  w->buf = uv_buf_init(w->text, (unsigned)strlen(w->text));
  if (uv_fs_write(tw_reactor_loop(reactor), &w->req, 1, &w->buf, 1, -1,
                  written) != 0) {
    free(w);
    tw_reactor_stop(reactor);
  }
}

/* Thread-safe: may run on any thread. */
static void call_from_whatever_thread_you_want(void *arg) {
  int err;
  (void)arg;
  err = tw_reactor_call_from_thread(reactor, not_thread_safe, "hello", NULL);
  if (err != 0) fprintf(stderr, "call_from_thread: %s\n", tw_strerror(err));
}

int main(void) {
  uv_thread_t thread;
  int err = tw_reactor_new(&reactor, NULL, TW_REACTOR_SIGNALS);
  if (err != 0) {
    fprintf(stderr, "tw_reactor_new: %s\n", tw_strerror(err));
    return 1;
  }
  if (uv_thread_create(&thread, call_from_whatever_thread_you_want, NULL) != 0)
    return 1;
  err = tw_reactor_run(reactor);
  uv_thread_join(&thread);
  tw_reactor_free(reactor);
  tw_thread_cleanup(); /* this thread's cached nodes (valgrind) */
  return err == 0 ? 0 : 1;
}
