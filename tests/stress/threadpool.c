/*
 * Stress: a ThreadPool (up to 8 threads) fed by 4 threads through
 * call_in_thread and call_in_thread_with_callback while another thread
 * resizes it up and down; the main thread stops it while all of them are
 * still going. Checks: every accepted job ends exactly once - it ran (fn,
 * arg_free, and on_result for callback jobs, once each) or went through
 * the cleanup path (arg_free, and on_result with a CancelledError) - and a
 * refused job (TW_EALREADYQUIT, and only after stop) was not touched; once
 * a submitter was refused, it is refused for good; the statistics add up;
 * stop joined every thread; nothing leaks.
 *
 * Then the same with threads that cannot always be made (issue 11): a
 * thread injects allocation failures in bursts while the adjuster also
 * takes the maximum to 0 and back, so that the pool keeps losing all its
 * threads and having to make new ones. Submissions and resizes may then be
 * refused with TW_ENOMEM, and accepted work may end without running, with
 * that error instead of CancelledError. Once the submitters are done and
 * the injection ends, every accepted job must end *before* stop (stop
 * would cancel a job left waiting for a thread nobody makes: here such a
 * job hangs the test).
 *
 * Then the same submitters feed a pool over libuv's threads
 * (tw_threadpool_new_uv) whose loop thread starts it (work submitted before
 * waits for start) and stops it while they are still going.
 */
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

#include "stress.h"

#define SUBMITTERS 4
#define MAX_OUTSTANDING 256
#define BURST 512

typedef struct slot {
  atomic_int runs;
  atomic_int frees;
  atomic_int results;   /* on_result with the job's value */
  atomic_int cancelled; /* on_result with a CancelledError */
  atomic_int bad;       /* anything else */
  int accepted;         /* written by its submitter only */
} slot;

static tw_threadpool *tp;
static long per_submitter;
static slot *slots[SUBMITTERS];
static atomic_long submitted;
static atomic_long accepted_total;
static atomic_long finished; /* arg_free calls: every accepted job has one */
static atomic_long bad;
static atomic_int stopping;
static atomic_int pressure; /* back-pressure: only once jobs can finish */
static atomic_long adjustments;
/* The failing phase: allocations fail in bursts (issue 11). */
static atomic_int failing;
static atomic_int injecting;
static atomic_int inject_on;
static atomic_int adjusting;
static atomic_long nomem_ends, nomem_refusals, injections;

static void job(void *arg) {
  slot *s = arg;
  if (atomic_fetch_add_explicit(&s->runs, 1, memory_order_relaxed) % 64 == 0)
    sched_yield();
}

static tw_result job_result(void *arg) {
  job(arg);
  return tw_result_value(arg, NULL);
}

static void job_free(void *arg) {
  slot *s = arg;
  atomic_fetch_add_explicit(&s->frees, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&finished, 1, memory_order_relaxed);
}

static void on_result(tw_result r, void *ctx) {
  slot *s = ctx;
  if (!tw_result_is_failure(r) && r.u.value == s)
    atomic_fetch_add(&s->results, 1);
  else if (tw_result_is_failure(r) &&
           tw_failure_check(r.u.failure, &TW_CANCELLED_ERROR))
    atomic_fetch_add(&s->cancelled, 1);
  else if (atomic_load(&failing) && tw_result_is_failure(r) &&
           tw_failure_code(r.u.failure) == TW_ENOMEM) {
    atomic_fetch_add(&s->cancelled, 1); /* ended without running */
    atomic_fetch_add(&nomem_ends, 1);
  }
  else
    atomic_fetch_add(&s->bad, 1);
  tw_result_release(r);
}

static void submit(void *arg) {
  uintptr_t p = (uintptr_t)arg;
  long i;
  int refused = 0;
  for (i = 0; i < per_submitter; i++) {
    slot *s = &slots[p][i];
    int rc;
    /* Back-pressure in bursts, so that submitting lasts as long as the
     * work and the resizing hits a pool that is by turns backlogged (where
     * shrinking waits: the backlog comes first) and idle (where it bites). */
    /* Before a uv pool starts: hold at a quarter, the rest comes after. */
    while (!atomic_load(&pressure) && i >= per_submitter / 4) sched_yield();
    while (!refused && atomic_load(&pressure) &&
           atomic_load(&accepted_total) - atomic_load(&finished) >
               (i % BURST == 0 ? 0 : MAX_OUTSTANDING))
      sched_yield();
    if (i % 2 == 0)
      rc = tw_threadpool_call_in_thread(tp, job, s, job_free);
    else
      rc = tw_threadpool_call_in_thread_with_callback(tp, on_result, s,
                                                      job_result, s, job_free);
    if (rc == 0) {
      s->accepted = 1;
      atomic_fetch_add(&accepted_total, 1);
      if (refused) atomic_fetch_add(&bad, 1); /* accepted after a refusal */
    } else if (rc == TW_EALREADYQUIT) {
      if (!atomic_load(&stopping)) atomic_fetch_add(&bad, 1);
      refused = 1;
    } else if (rc == TW_ENOMEM && atomic_load(&failing)) {
      atomic_fetch_add(&nomem_refusals, 1);
      /* Do not race through the rest while the injector, maybe starved,
       * still has the failures on. */
      while (atomic_load(&inject_on)) sched_yield();
    } else {
      fprintf(stderr, "submit: %s\n", tw_err_name(rc));
      atomic_fetch_add(&bad, 1);
    }
    atomic_fetch_add_explicit(&submitted, 1, memory_order_relaxed);
  }
}

/* Resize at random until the pool refuses (stopped). */
static void adjust(void *arg) {
  unsigned rnd = 12345;
  long last = 0;
  tw_threadpool_statistics st;
  (void)arg;
  for (;;) {
    int min, max, rc, i;
    if (atomic_load(&failing)) {
      /* Not paced by the submissions: they may all be waiting for the
       * jobs a maximum of 0 holds. */
      if (!atomic_load(&adjusting)) break;
      for (i = 0; i < 64; i++) sched_yield();
    } else if (atomic_load(&submitted) - last < 16 &&
               !atomic_load(&stopping)) {
      /* Paced by the submissions (one resize per 16 jobs), so that
       * sanitizer builds spend their time on jobs, not on resizes. */
      sched_yield();
      continue;
    }
    last = atomic_load(&submitted);
    rnd = rnd * 1103515245u + 12345u;
    min = (int)((rnd >> 16) % 3);
    max = 1 + (int)((rnd >> 8) % 8);
    /* Failing: often no thread at all (0 and 1 are each a quarter). */
    if (atomic_load(&failing)) {
      min = 0;
      max = (int)((rnd >> 8) % 4);
    }
    if (max < min) max = min;
    rc = tw_threadpool_adjust_poolsize(tp, min, max);
    if (rc == TW_EALREADYQUIT) break;
    if (rc == TW_ENOMEM && atomic_load(&failing)) continue;
    if (rc != 0) {
      fprintf(stderr, "adjust: %s\n", tw_err_name(rc));
      atomic_fetch_add(&bad, 1);
      break;
    }
    CHECK_EQ(tw_threadpool_stats(tp, &st), 0);
    if (st.max_threads < st.min_threads) atomic_fetch_add(&bad, 1);
    atomic_fetch_add(&adjustments, 1);
    sched_yield();
  }
}

static void phase_reset(long n) {
  uintptr_t p;
  per_submitter = n;
  for (p = 0; p < SUBMITTERS; p++) {
    slots[p] = calloc((size_t)per_submitter, sizeof(slot));
    CHECK(slots[p] != NULL);
  }
  atomic_store(&submitted, 0);
  atomic_store(&accepted_total, 0);
  atomic_store(&finished, 0);
  atomic_store(&stopping, 0);
  atomic_store(&pressure, 0);
}

/* Every job ended exactly once, and the statistics agree; frees the slots.
 * Returns the number of jobs cancelled. */
static long check_jobs(const char *what) {
  uintptr_t p;
  long i, accepted = 0, ran = 0, cancelled = 0;
  tw_threadpool_statistics st;
  CHECK_EQ(atomic_load(&bad), 0);
  for (p = 0; p < SUBMITTERS; p++) {
    for (i = 0; i < per_submitter; i++) {
      slot *s = &slots[p][i];
      int runs = atomic_load(&s->runs), frees = atomic_load(&s->frees);
      int results = atomic_load(&s->results);
      int canc = atomic_load(&s->cancelled);
      int callback = i % 2 == 1, ok;
      if (!s->accepted)
        ok = runs + frees + results + canc == 0;
      else if (runs == 1)
        ok = frees == 1 && results == callback && canc == 0;
      else
        ok = runs == 0 && frees == 1 && results == 0 && canc == callback;
      if (!ok || atomic_load(&s->bad) != 0) {
        fprintf(stderr,
                "%s: submitter %d job %ld: accepted %d, ran %d, freed %d, "
                "results %d, cancelled %d, bad %d\n",
                what, (int)p, i, s->accepted, runs, frees, results, canc,
                atomic_load(&s->bad));
        exit(1);
      }
      accepted += s->accepted;
      ran += runs;
      cancelled += s->accepted && runs == 0;
    }
    free(slots[p]);
  }
  CHECK_EQ(tw_threadpool_stats(tp, &st), 0);
  CHECK_EQ(st.submitted, accepted);
  CHECK_EQ(st.completed, ran);
  CHECK_EQ(st.cancelled, cancelled);
  CHECK_EQ(st.joined, 1);
  CHECK_EQ(st.workers + st.working + st.waiters + st.queued, 0);
  printf("%s: %ld of %ld jobs accepted (%ld ran, %ld ended without running), "
         "%ld refused",
         what, accepted, per_submitter * SUBMITTERS, ran, cancelled,
         per_submitter * SUBMITTERS - accepted);
  return cancelled;
}

/* Wait until n more submissions were made, or for `yields` yields (the
 * submitters may all be held back by a maximum of 0). */
static void wait_submissions(long n, int yields) {
  long from = atomic_load(&submitted);
  while (yields-- > 0 && atomic_load(&submitted) - from < n) sched_yield();
}

/* Make every allocation fail now and then, for a few submissions at a
 * time (counted, not timed: a starved injector would otherwise leave the
 * failures on for a whole phase). */
static void inject(void *arg) {
  (void)arg;
  while (atomic_load(&injecting)) {
    atomic_store(&inject_on, 1);
    twt_alloc_fail_all(1);
    atomic_fetch_add(&injections, 1);
    wait_submissions(4, 16);
    twt_alloc_fail_all(0);
    atomic_store(&inject_on, 0);
    wait_submissions(64, 256);
  }
}

/* The failing phase's log: the pool's warnings and the team's errors. */
static atomic_long logged;
static void count_log(const tw_log_record *rec, void *ctx) {
  (void)rec;
  (void)ctx;
  atomic_fetch_add(&logged, 1);
}

static void failing_phase(void) {
  uv_thread_t t[SUBMITTERS], adjuster, injector;
  uintptr_t p;
  long ran;
  phase_reset(stress_scaled(20000));
  atomic_store(&pressure, 1);
  atomic_store(&failing, 1);
  atomic_store(&injecting, 1);
  atomic_store(&adjusting, 1);
  tw_log_set_handler(count_log, NULL);
  CHECK_EQ(tw_threadpool_new(&tp, 0, 4, "tw-stress"), 0);
  CHECK_EQ(tw_threadpool_start(tp), 0);
  CHECK_EQ(uv_thread_create(&injector, inject, NULL), 0);
  for (p = 0; p < SUBMITTERS; p++)
    CHECK_EQ(uv_thread_create(&t[p], submit, (void *)p), 0);
  CHECK_EQ(uv_thread_create(&adjuster, adjust, NULL), 0);
  for (p = 0; p < SUBMITTERS; p++) uv_thread_join(&t[p]);
  atomic_store(&injecting, 0);
  uv_thread_join(&injector);
  twt_alloc_fail_all(0);
  atomic_store(&adjusting, 0);
  uv_thread_join(&adjuster);
  /* Threads can be made again: every accepted job ends without a stop. */
  CHECK_EQ(tw_threadpool_adjust_poolsize(tp, 0, 4), 0);
  while (atomic_load(&finished) < atomic_load(&accepted_total)) sched_yield();
  atomic_store(&stopping, 1);
  CHECK_EQ(tw_threadpool_stop(tp), 0);
  ran = check_jobs("threadpool, failing");
  printf("; %ld without running for want of a thread (TW_ENOMEM), %ld "
         "submissions refused with TW_ENOMEM, %ld injections, %ld logged\n",
         atomic_load(&nomem_ends), atomic_load(&nomem_refusals),
         atomic_load(&injections), atomic_load(&logged));
  (void)ran;
  CHECK_EQ(tw_threadpool_free(tp), 0);
  tw_log_set_handler(NULL, NULL);
  atomic_store(&failing, 0);
}

/* The uv phase: on the loop thread, start after a quarter of the
 * submissions, stop after three quarters. */
static int uv_started;
static void uv_phase_idle(uv_idle_t *idle) {
  long n = atomic_load(&submitted), total = per_submitter * SUBMITTERS;
  /* What the submitters hold at (per_submitter / 4 each, rounded down). */
  if (!uv_started && n >= per_submitter / 4 * SUBMITTERS) {
    tw_threadpool_statistics st;
    CHECK_EQ(tw_threadpool_stats(tp, &st), 0);
    CHECK_EQ(st.completed, 0); /* held until now */
    CHECK_EQ(tw_threadpool_start(tp), 0);
    uv_started = 1;
    atomic_store(&pressure, 1);
  } else if (uv_started && n >= total * 3 / 4) {
    atomic_store(&stopping, 1);
    CHECK_EQ(tw_threadpool_stop(tp), 0);
    uv_close((uv_handle_t *)idle, NULL);
  }
}

static void uv_phase(void) {
  uv_loop_t loop;
  uv_idle_t idle;
  uv_thread_t t[SUBMITTERS];
  uintptr_t p;
  phase_reset(stress_scaled(5000));
  CHECK_EQ(uv_loop_init(&loop), 0);
  CHECK_EQ(tw_threadpool_new_uv(&tp, &loop), 0);
  CHECK_EQ(uv_idle_init(&loop, &idle), 0);
  CHECK_EQ(uv_idle_start(&idle, uv_phase_idle), 0);
  for (p = 0; p < SUBMITTERS; p++)
    CHECK_EQ(uv_thread_create(&t[p], submit, (void *)p), 0);
  CHECK_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
  for (p = 0; p < SUBMITTERS; p++) uv_thread_join(&t[p]);
  check_jobs("threadpool (uv)");
  printf("\n");
  CHECK_EQ(tw_threadpool_free(tp), 0);
  CHECK_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
  CHECK_EQ(uv_loop_close(&loop), 0);
}

int main(void) {
  uv_thread_t t[SUBMITTERS], adjuster;
  uintptr_t p;
  long total;
  int threads_before;
  tw_threadpool_statistics st;
  twt_alloc_install();
  phase_reset(stress_scaled(30000));
  atomic_store(&pressure, 1);
  total = per_submitter * SUBMITTERS;
  threads_before = stress_threads_baseline();
  CHECK_EQ(tw_threadpool_new(&tp, 0, 4, "tw-stress"), 0);
  CHECK_EQ(tw_threadpool_start(tp), 0);
  for (p = 0; p < SUBMITTERS; p++)
    CHECK_EQ(uv_thread_create(&t[p], submit, (void *)p), 0);
  CHECK_EQ(uv_thread_create(&adjuster, adjust, NULL), 0);
  while (atomic_load(&submitted) < total * 3 / 4) sched_yield();
  /* Stop while the submitters and the adjuster are still going. */
  atomic_store(&stopping, 1);
  CHECK_EQ(tw_threadpool_stop(tp), 0);
  CHECK_EQ(tw_threadpool_stop(tp), TW_EALREADYQUIT);
  /* The pool's threads are gone; only ours may still run. */
  CHECK(twt_count_threads() <= threads_before + SUBMITTERS + 1);
  uv_thread_join(&adjuster);
  for (p = 0; p < SUBMITTERS; p++) uv_thread_join(&t[p]);
  STRESS_WAIT_THREAD_COUNT(threads_before);
  check_jobs("threadpool");
  CHECK_EQ(tw_threadpool_stats(tp, &st), 0);
  CHECK(st.threads_started >= 1);
  printf("; %ld resizes, %zu threads started, all joined\n",
         atomic_load(&adjustments), st.threads_started);
  CHECK_EQ(tw_threadpool_free(tp), 0);
  failing_phase();
  uv_phase();
  stress_check_no_leaks();
  return 0;
}
