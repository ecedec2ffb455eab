/*
 * Stress: a pool (a team of up to 8 thread workers, coordinated by the
 * serial worker) under grow, shrink and quit while 4 threads submit.
 * Checks: every item runs exactly once when do accepted it and never when do
 * returned TW_EALREADYQUIT; once a submitter saw TW_EALREADYQUIT, every
 * later do is refused too; arg_free runs exactly once per accepted item;
 * join leaves no worker thread behind; nothing leaks.
 * Then a deep backlog: 2 threads submit without pausing to a pool of 2, so
 * that most items wait, beyond the ring, and the workers take them from the
 * backlog themselves: each runs and is released exactly once.
 */
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <uv.h>

#include "stress.h"

#define SUBMITTERS 4
#define LIMIT 8
#define MAX_OUTSTANDING 2048

typedef struct slot {
  atomic_int runs;
  atomic_int frees;
  int accepted; /* written by its submitter only */
} slot;

static tw_team *team;
static long per_submitter;
static slot *slots[SUBMITTERS];
static atomic_long submitted;
static atomic_long accepted_total;
static atomic_long completed;
static atomic_long bad;

static size_t limit(void *ctx) {
  (void)ctx;
  return LIMIT;
}

static void item(void *arg) {
  slot *s = arg;
  atomic_fetch_add_explicit(&s->runs, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&completed, 1, memory_order_relaxed);
}

static void item_free(void *arg) {
  slot *s = arg;
  atomic_fetch_add_explicit(&s->frees, 1, memory_order_relaxed);
}

static void submit(void *arg) {
  uintptr_t p = (uintptr_t)arg;
  long i;
  int quit_seen = 0;
  for (i = 0; i < per_submitter; i++) {
    slot *s = &slots[p][i];
    int rc;
    /* Back-pressure, so that submitting lasts as long as the work and the
     * churn below hits a team that is busy, backlogged and being fed. */
    while (!quit_seen && atomic_load(&accepted_total) - atomic_load(&completed) >
                             MAX_OUTSTANDING)
      sched_yield();
    rc = tw_worker_do_full(tw_team_worker(team), item, s, item_free);
    if (rc == 0) {
      s->accepted = 1;
      atomic_fetch_add(&accepted_total, 1);
      if (quit_seen) atomic_fetch_add(&bad, 1); /* accepted after a refusal */
    } else if (rc == TW_EALREADYQUIT) {
      quit_seen = 1;
    } else {
      fprintf(stderr, "do: %s\n", tw_err_name(rc));
      atomic_fetch_add(&bad, 1);
    }
    atomic_fetch_add_explicit(&submitted, 1, memory_order_relaxed);
  }
}

/* ---- The deep backlog ---------------------------------------------------- */

#define DEEP_SUBMITTERS 2

static tw_team *deep_team;
static long deep_per_submitter;

static size_t limit_two(void *ctx) {
  (void)ctx;
  return 2;
}

static void deep_submit(void *arg) {
  uintptr_t p = (uintptr_t)arg;
  long i;
  for (i = 0; i < deep_per_submitter; i++)
    if (tw_worker_do_full(tw_team_worker(deep_team), item, &slots[p][i],
                          item_free) != 0)
      atomic_fetch_add(&bad, 1);
}

static void deep_backlog(void) {
  uv_thread_t t[DEEP_SUBMITTERS];
  uintptr_t p;
  long i, max_backlog = 0;
  tw_team_stats st;
  deep_per_submitter = per_submitter;
  for (p = 0; p < DEEP_SUBMITTERS; p++)
    memset(slots[p], 0, (size_t)deep_per_submitter * sizeof(slot));
  CHECK_EQ(tw_pool_new(&deep_team, limit_two, NULL, "tw-deep"), 0);
  for (p = 0; p < DEEP_SUBMITTERS; p++)
    CHECK_EQ(uv_thread_create(&t[p], deep_submit, (void *)p), 0);
  for (p = 0; p < DEEP_SUBMITTERS; p++) uv_thread_join(&t[p]);
  CHECK_EQ(tw_team_statistics(deep_team, &st), 0);
  max_backlog = (long)st.backlog;
  CHECK_EQ(tw_worker_quit(tw_team_worker(deep_team)), 0);
  CHECK_EQ(tw_team_join(deep_team), 0);
  CHECK_EQ(tw_team_statistics(deep_team, &st), 0);
  CHECK_EQ(st.busy + st.idle + st.backlog, 0);
  CHECK(st.created <= 2);
  CHECK_EQ(atomic_load(&bad), 0);
  for (p = 0; p < DEEP_SUBMITTERS; p++)
    for (i = 0; i < deep_per_submitter; i++) {
      slot *s = &slots[p][i];
      if (atomic_load(&s->runs) != 1 || atomic_load(&s->frees) != 1) {
        fprintf(stderr, "deep backlog: submitter %d item %ld ran %d, freed %d\n",
                (int)p, i, atomic_load(&s->runs), atomic_load(&s->frees));
        exit(1);
      }
    }
  CHECK_EQ(tw_worker_free(tw_team_worker(deep_team)), 0);
  printf("team: deep backlog: %ld items from %d threads to a pool of 2, each "
         "run once (backlog %ld when the submitters were done)\n",
         deep_per_submitter * DEEP_SUBMITTERS, DEEP_SUBMITTERS, max_backlog);
}

int main(void) {
  uv_thread_t t[SUBMITTERS];
  uintptr_t p;
  long i, total, accepted = 0, ran = 0;
  unsigned rnd = 12345;
  int threads_before;
  long churns = 0;
  tw_team_stats st;
  twt_alloc_install();
  per_submitter = stress_scaled(200000);
  total = per_submitter * SUBMITTERS;
  for (p = 0; p < SUBMITTERS; p++) {
    slots[p] = calloc((size_t)per_submitter, sizeof(slot));
    CHECK(slots[p] != NULL);
  }
  threads_before = stress_threads_baseline();
  CHECK_EQ(tw_pool_new(&team, limit, NULL, "tw-stress"), 0);
  CHECK_EQ(tw_team_grow(team, LIMIT), 0);
  for (p = 0; p < SUBMITTERS; p++)
    CHECK_EQ(uv_thread_create(&t[p], submit, (void *)p), 0);
  /* Churn the team until about 3/4 of the items are submitted, then quit
   * while the submitters are still going. */
  while (atomic_load(&submitted) < total * 3 / 4) {
    int rc;
    rnd = rnd * 1103515245u + 12345u;
    switch ((rnd >> 16) % 4) {
      case 0: rc = tw_team_grow(team, 1 + (int)((rnd >> 8) % 4)); break;
      case 1: rc = tw_team_shrink(team, 1 + (int)((rnd >> 8) % 4)); break;
      case 2: rc = tw_team_shrink_all(team); break;
      default: rc = tw_team_statistics(team, &st); break;
    }
    CHECK_EQ(rc, 0);
    churns++;
    sched_yield();
  }
  CHECK_EQ(tw_worker_quit(tw_team_worker(team)), 0);
  CHECK_EQ(tw_worker_quit(tw_team_worker(team)), TW_EALREADYQUIT);
  CHECK_EQ(tw_team_grow(team, 1), TW_EALREADYQUIT);
  CHECK_EQ(tw_team_join(team), 0);
  for (p = 0; p < SUBMITTERS; p++) uv_thread_join(&t[p]);
  CHECK_EQ(tw_team_statistics(team, &st), 0);
  CHECK_EQ(st.idle, 0);
  CHECK_EQ(st.busy, 0);
  CHECK_EQ(st.backlog, 0);
  STRESS_WAIT_THREAD_COUNT(threads_before);
  CHECK_EQ(atomic_load(&bad), 0);
  for (p = 0; p < SUBMITTERS; p++)
    for (i = 0; i < per_submitter; i++) {
      slot *s = &slots[p][i];
      int runs = atomic_load(&s->runs), frees = atomic_load(&s->frees);
      if (runs != s->accepted || frees != s->accepted) {
        fprintf(stderr, "submitter %d item %ld: accepted %d, ran %d, freed %d\n",
                (int)p, i, s->accepted, runs, frees);
        return 1;
      }
      accepted += s->accepted;
      ran += runs;
    }
  CHECK_EQ(tw_worker_free(tw_team_worker(team)), 0);
  deep_backlog();
  for (p = 0; p < SUBMITTERS; p++) free(slots[p]);
  stress_check_no_leaks();
  printf("team: %ld of %ld items accepted and run exactly once, %ld refused "
         "after quit; %ld grow/shrink calls, %zu workers created, all joined\n",
         accepted, total, total - accepted, churns, st.created);
  (void)ran;
  return 0;
}
