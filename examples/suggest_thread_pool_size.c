/*
 * examples/suggest_thread_pool_size.c - "Managing the Reactor Thread Pool",
 * from Twisted's "Using Threads in Twisted" howto:
 *
 *     reactor.suggestThreadPoolSize(30)
 *
 * and getThreadPool for "more advanced tuning and monitoring". The reactor's
 * pool starts with minimum 0 and maximum 10 (Twisted's default reactor); the
 * suggestion raises the maximum. Forty short jobs then show the pool's
 * statistics - including how long jobs waited for a thread, which tells a
 * saturated pool from an idle one.
 */
#include <stdio.h>
#include <twuv.h>
#include <uv.h>

static tw_reactor *reactor;
static int remaining = 40;

static void show(const char *when) {
  tw_threadpool_statistics st;
  tw_threadpool_stats(tw_reactor_get_thread_pool(reactor), &st);
  printf("%-9s min %d max %d, threads %zu (idle %zu, busy %zu), queued %zu, "
         "jobs %llu done, avg wait %.2f ms, avg run %.2f ms\n",
         when, st.min_threads, st.max_threads, st.workers, st.waiters,
         st.working, st.queued, (unsigned long long)st.completed,
         st.completed ? (double)st.queue_wait_ns / st.completed / 1e6 : 0.0,
         st.completed ? (double)st.run_ns / st.completed / 1e6 : 0.0);
}

static void job_done(void *arg) {
  (void)arg;
  if (--remaining == 0) {
    show("finished:");
    tw_reactor_stop(reactor);
  }
}

static void job(void *arg) {
  (void)arg;
  uv_sleep(20); /* blocking work */
  tw_reactor_call_from_thread(reactor, job_done, NULL, NULL);
}

static tw_result start(void *arg) {
  int i;
  (void)arg;
  show("default:");
  tw_reactor_suggest_thread_pool_size(reactor, 30);
  show("suggest:");
  for (i = 0; i < 40; i++) tw_reactor_call_in_thread(reactor, job, NULL, NULL);
  show("busy:");
  return tw_result_none();
}

int main(void) {
  int err = tw_reactor_new(&reactor, NULL, TW_REACTOR_SIGNALS);
  if (err == 0)
    err = tw_reactor_call_when_running(reactor, start, NULL, NULL, NULL);
  if (err == 0) err = tw_reactor_run(reactor);
  if (err != 0) fprintf(stderr, "error: %s\n", tw_strerror(err));
  tw_reactor_free(reactor);
  tw_thread_cleanup(); /* this thread's cached nodes (valgrind) */
  return err == 0 ? 0 : 1;
}
