/*
 * Stress: defer_to_thread round trips from 4 threads while the pool is
 * resized up and down, with some requests cancelled mid-flight.
 *
 * A round trip: a requester thread asks the loop (call_from_thread) to
 * defer_to_thread a job; the job runs on a pool thread; its Deferred fires
 * on the loop, which hands the answer back to the requester. Each requester
 * keeps a window of requests in flight. One request in 7 is cancelled right
 * after it is made, which races the cancel against the job starting,
 * running and finishing.
 *
 * Checks: every request is answered exactly once (its value, or
 * CancelledError for a cancelled one); every job ran at most once, and
 * exactly once for each request answered with a value; no twuv allocation
 * leaks.
 */
#include <stdatomic.h>
#include <string.h>
#include <uv.h>

#include "stress.h"

#define REQUESTERS 4
#define WINDOW 64

static tw_reactor *reactor;
static long per_thread;

/* Shared by the job (its arg) and the callbacks (theirs): a cancelled
 * Deferred fires while its job may still run, so each side releases its
 * own reference. */
typedef struct request {
  int thread;
  long index;
  int cancel;
  atomic_int refs;
} request;

static _Atomic unsigned char *job_runs[REQUESTERS];
static unsigned char *answers[REQUESTERS];  /* loop thread only */
static long answered_value, answered_cancelled; /* loop thread only */
static uv_sem_t window[REQUESTERS];
static int resizes; /* loop thread only */

static tw_result job(void *arg) {
  request *rq = arg;
  atomic_fetch_add(&job_runs[rq->thread][rq->index], 1);
  return tw_result_value(rq, NULL);
}

static void free_request(void *arg) {
  request *rq = arg;
  if (atomic_fetch_sub(&rq->refs, 1) == 1) free(rq);
}

static tw_result answer(tw_result r, void *arg) {
  request *rq = arg;
  CHECK_EQ(answers[rq->thread][rq->index]++, 0);
  if (r.kind == TW_RESULT_VALUE) {
    CHECK(r.u.value == rq);
    answered_value++;
    /* The job returned its arg: the result took arg over, with
     * free_request as its destructor (threads.h), so releasing the
     * result drops the job's reference. */
    tw_result_release(r);
  } else {
    CHECK(r.kind == TW_RESULT_FAILURE);
    CHECK(tw_failure_check(r.u.failure, &TW_CANCELLED_ERROR));
    CHECK(rq->cancel);
    answered_cancelled++;
    tw_result_release(r);
  }
  /* Resize the pool up and down while all this goes on. */
  if ((answered_value + answered_cancelled) % 997 == 0) {
    static const int sizes[] = {1, 8, 2, 5, 1, 3};
    CHECK_EQ(tw_reactor_suggest_thread_pool_size(reactor, sizes[resizes % 6]), 0);
    resizes++;
  }
  uv_sem_post(&window[rq->thread]);
  return tw_result_none();
}

/* Loop thread: start one round trip. */
static void start_request(void *arg) {
  request *rq = arg;
  tw_deferred *d;
  CHECK_EQ(tw_defer_to_thread(reactor, job, rq, free_request, &d), 0);
  tw_deferred_add_callbacks_full(d, answer, answer, rq, free_request);
  if (rq->cancel) CHECK_EQ(tw_deferred_cancel(d), 0);
  tw_deferred_unref(d);
}

static void requester(void *arg) {
  int t = (int)(intptr_t)arg;
  long i;
  for (i = 0; i < per_thread; i++) {
    request *rq = malloc(sizeof(*rq));
    CHECK(rq != NULL);
    uv_sem_wait(&window[t]);
    rq->thread = t;
    rq->index = i;
    rq->cancel = i % 7 == 3;
    atomic_init(&rq->refs, 2);
    CHECK_EQ(tw_reactor_call_from_thread(reactor, start_request, rq, NULL), 0);
  }
}

static void check_done(void *arg) {
  (void)arg;
  if (answered_value + answered_cancelled == per_thread * REQUESTERS)
    CHECK_EQ(tw_reactor_stop(reactor), 0);
  else
    tw_reactor_call_later(reactor, 0.001, check_done, NULL, NULL, NULL);
}

int main(void) {
  uv_thread_t t[REQUESTERS];
  int i;
  long j;
  twt_alloc_install();
  per_thread = stress_scaled(100000);
  CHECK_EQ(tw_reactor_new(&reactor, NULL, 0), 0);
  for (i = 0; i < REQUESTERS; i++) {
    job_runs[i] = calloc((size_t)per_thread, 1);
    answers[i] = calloc((size_t)per_thread, 1);
    CHECK(job_runs[i] && answers[i]);
    CHECK_EQ(uv_sem_init(&window[i], WINDOW), 0);
  }
  for (i = 0; i < REQUESTERS; i++)
    CHECK_EQ(uv_thread_create(&t[i], requester, (void *)(intptr_t)i), 0);
  CHECK_EQ(tw_reactor_call_later(reactor, 0.001, check_done, NULL, NULL, NULL), 0);
  CHECK_EQ(tw_reactor_run(reactor), 0);
  for (i = 0; i < REQUESTERS; i++) uv_thread_join(&t[i]);
  CHECK_EQ(tw_reactor_free(reactor), 0);

  for (i = 0; i < REQUESTERS; i++) {
    for (j = 0; j < per_thread; j++) {
      int cancelled = j % 7 == 3;
      CHECK_EQ(answers[i][j], 1);
      CHECK(job_runs[i][j] <= 1);
      if (!cancelled) CHECK_EQ(job_runs[i][j], 1);
    }
    free((void *)job_runs[i]);
    free(answers[i]);
    uv_sem_destroy(&window[i]);
  }
  stress_check_no_leaks();
  printf("defer_to_thread: %ld round trips, %ld values, %ld cancelled, %d "
         "resizes\n",
         per_thread * REQUESTERS, answered_value, answered_cancelled,
         resizes);
  return 0;
}
