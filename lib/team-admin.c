/*
 * lib/team-admin.c - a team's life outside an item's path (team.c): its
 * creation, the grow, shrink and quit steps, join, free and statistics;
 * and pool() (twisted._threads._pool), worker.h.
 */
#include "team-struct.h"

#include <sched.h>
#include <stdio.h>
#include <uv.h>

static void tw__team_grow_step(tw__item *it);
static void tw__team_shrink_step(tw__item *it);
static void tw__team_step_dropped(tw__item *it);
static void tw__team_quit_step(tw__item *it);
static void tw__team_check_step(tw__item *it);
static void tw__team_serve_step(tw__item *it);
static void tw__team_serve_dropped(tw__item *it);
static void tw__team_nothing(tw__item *it);

static const tw__item_ops tw__team_grow_ops = {tw__team_grow_step,
                                               tw__team_step_dropped};
static const tw__item_ops tw__team_shrink_ops = {tw__team_shrink_step,
                                                 tw__team_step_dropped};
static const tw__item_ops tw__team_quit_ops = {tw__team_quit_step,
                                               tw__team_nothing};
const tw__item_ops tw__team_check_ops = {tw__team_check_step,
                                         tw__team_nothing};
static const tw__item_ops tw__team_serve_ops = {tw__team_serve_step,
                                                tw__team_serve_dropped};

/* ---- grow, shrink, quit steps ---------------------------------------------- */

static void tw__team_grow_step(tw__item *it) {
  tw__team_step *s = TW__CONTAINER_OF(it, tw__team_step, item);
  tw_team *t = s->team;
  int i, n = s->n;
  tw__team_frame f;
  tw__free(s);
  tw__team_enter(&f, t);
  /* Twisted would grow and then quit the new workers at once. */
  for (i = 0; i < n && !t->should_quit; i++) {
    tw__member *m = tw__team_create_member(t);
    if (m == NULL) break;
    tw__team_recycle(t, m);
  }
  tw__team_step_done(t);
  tw__team_step_end(t, &f);
}

static void tw__team_shrink_step(tw__item *it) {
  tw__team_step *s = TW__CONTAINER_OF(it, tw__team_step, item);
  tw_team *t = s->team;
  int n = s->n;
  tw__team_frame f;
  tw__free(s);
  tw__team_enter(&f, t);
  if (!t->should_quit) tw__team_quit_idlers(t, n);
  tw__team_step_done(t);
  tw__team_step_end(t, &f);
}

static void tw__team_step_dropped(tw__item *it) {
  tw__team_step *s = TW__CONTAINER_OF(it, tw__team_step, item);
  tw_team *t = s->team;
  tw__free(s);
  tw__team_step_done(t);
}

static void tw__team_quit_step(tw__item *it) {
  tw_team *t = TW__CONTAINER_OF(it, tw_team, quit_step);
  tw__team_frame f;
  tw__team_enter(&f, t);
  t->should_quit = 1;
  tw__team_quit_idlers(t, -1);
  tw__team_step_end(t, &f);
}

static void tw__team_check_step(tw__item *it) {
  tw_team *t = TW__CONTAINER_OF(it, tw_team, check_step);
  tw__team_frame f;
  atomic_store_explicit(&t->check_queued, 0, memory_order_release);
  tw__team_enter(&f, t);
  tw__team_step_end(t, &f);
}

static void tw__team_nothing(tw__item *it) { (void)it; }

/*
 * A backlog with no worker gets one (which then serves it, and takes the
 * rest from the ring), or fails if none can be made (tw__team_step_end).
 * Not counted in state: after quit it finds should_quit and does nothing,
 * and the team's free waits for its coordinator before freeing t.
 */
static void tw__team_serve_step(tw__item *it) {
  tw_team *t = TW__CONTAINER_OF(it, tw_team, serve_step);
  tw__team_frame f;
  atomic_store_explicit(&t->serve_queued, 0, memory_order_release);
  tw__team_enter(&f, t);
  if (!t->should_quit && !t->finished && t->idle_n + t->busy_n == 0 &&
      !tw__team_backlog_empty(t)) {
    tw__member *m = tw__team_create_member(t);
    if (m != NULL) tw__team_recycle(t, m);
  }
  tw__team_step_end(t, &f);
}

static void tw__team_serve_dropped(tw__item *it) {
  tw_team *t = TW__CONTAINER_OF(it, tw_team, serve_step);
  atomic_store_explicit(&t->serve_queued, 0, memory_order_release);
}

int tw__team_serve(tw_team *t) {
  int expected = 0, rc;
  if (!atomic_compare_exchange_strong(&t->serve_queued, &expected, 1))
    return 0; /* queued already, and not yet begun */
  rc = tw__team_submit(t, &t->serve_step);
  if (rc != 0) atomic_store(&t->serve_queued, 0);
  /* Quit: there is nothing to serve any more. */
  return rc == TW_EALREADYQUIT ? 0 : rc;
}

void tw__team_create_failed(tw_team *t, int err) { t->create_err = err; }

static int tw__team_submit_step(tw_team *t, const tw__item_ops *ops,
                                int n) {
  tw__team_step *s;
  int rc;
  if (t == NULL) return TW_EINVAL;
  s = tw__malloc(sizeof(*s));
  if (s == NULL) return TW_ENOMEM;
  s->item.ops = ops;
  s->team = t;
  s->n = n;
  rc = tw__team_accept(t);
  if (rc != 0) {
    tw__free(s);
    return rc;
  }
  rc = tw__team_submit(t, &s->item);
  if (rc != 0) {
    tw__free(s);
    tw__team_unaccept(t);
  }
  return rc;
}

int tw__team_quit(tw_worker *wk) {
  tw_team *t = (tw_team *)wk;
  int rc = tw__gate_shut(&t->state);
  if (rc != 0) return rc;
  rc = tw__team_submit(t, &t->quit_step);
  /* A foreign coordinator out of memory: stay unquit, let them retry. */
  if (rc != 0) tw__gate_reopen(&t->state);
  return rc;
}

int tw_team_join(tw_team *t) {
  tw__member *m, *next;
  if (t == NULL) return TW_EINVAL;
  if (tw__team_inside(t)) return TW_EDEADLK;
  if (!tw__gate_is_closed(&t->state)) return TW_EINVAL;
  uv_mutex_lock(&t->mutex);
  while (!t->done || t->join_state == 1) uv_cond_wait(&t->cond, &t->mutex);
  if (t->join_state == 2) {
    uv_mutex_unlock(&t->mutex);
    return 0;
  }
  t->join_state = 1;
  uv_mutex_unlock(&t->mutex);
  /* Finished: every worker is retired (idle ones too, by quit_idlers) and
   * idle; each free joins a thread that may still be leaving its last
   * step, and the coordinator's free waits for its drainer likewise. */
  for (m = t->retired; m != NULL; m = next) {
    next = m->next;
    (void)tw_worker_free(m->worker);
    tw__free_lines(m);
  }
  for (m = t->idle; m != NULL; m = next) {
    next = m->next;
    (void)tw_worker_free(m->worker);
    tw__free_lines(m);
  }
  t->retired = t->idle = NULL;
  t->idle_n = t->busy_n = 0;
  tw__free_lines(t->spare);
  t->spare = NULL;
  /* A do racing with join may still try a serial coordinator inline (and
   * find it quit): that one is freed with the team. */
  if (!t->direct) {
    (void)tw_worker_free(t->coordinator);
    t->coordinator = NULL;
  }
  tw__team_publish(t);
  uv_mutex_lock(&t->mutex);
  t->join_state = 2;
  uv_cond_broadcast(&t->cond);
  uv_mutex_unlock(&t->mutex);
  return 0;
}

int tw__team_destroy(tw_worker *wk) {
  tw_team *t = (tw_team *)wk;
  tw__task *task;
  int rc;
  if (tw__team_inside(t)) return TW_EDEADLK;
  rc = tw__team_quit(wk);
  if (rc != 0 && rc != TW_EALREADYQUIT) return rc;
  (void)tw_team_join(t);
  /* A backlog left with no worker to serve it (Twisted abandons it). */
  while ((task = tw__team_backlog_pop(t)) != NULL) {
    if (task->arg_free != NULL) task->arg_free(task->arg);
    tw__team_task_release(task);
  }
  if (t->coordinator != NULL) (void)tw_worker_free(t->coordinator);
  if (t->ctx_free != NULL) t->ctx_free(t->ctx);
  uv_cond_destroy(&t->cond);
  uv_mutex_destroy(&t->mutex);
  tw__free_lines(t);
  return 0;
}

/* ---- Public team functions ---------------------------------------------- */

int tw__team_new_ex(tw_team **out, tw_worker *coordinator,
                    tw_team_create_fn create_worker,
                    tw_team_log_fn log_exception, void *ctx,
                    tw_free_fn ctx_free) {
  tw_team *t;
  int rc;
  if (out == NULL || coordinator == NULL || coordinator->vtable == NULL ||
      coordinator->vtable->do_work == NULL ||
      coordinator->vtable->quit == NULL ||
      coordinator->vtable->destroy == NULL || create_worker == NULL)
    return TW_EINVAL;
  if (coordinator->vtable == &tw__team_vtable ||
      coordinator->vtable == &tw__uv_worker_vtable)
    return TW_EINVAL; /* not exclusive */
  t = tw__calloc_lines(sizeof(*t));
  if (t == NULL) return TW_ENOMEM;
  rc = uv_mutex_init(&t->mutex);
  if (rc != 0) {
    tw__free_lines(t);
    return rc;
  }
  rc = uv_cond_init(&t->cond);
  if (rc != 0) {
    uv_mutex_destroy(&t->mutex);
    tw__free_lines(t);
    return rc;
  }
  t->base.vtable = &tw__team_vtable;
  t->coordinator = coordinator;
  t->create_worker = create_worker;
  t->log_exception = log_exception;
  t->ctx = ctx;
  t->ctx_free = ctx_free;
  t->coord_cls = tw__worker_class_of(coordinator);
  t->direct = t->coord_cls == &tw__serial_worker_class;
  atomic_init(&t->ring_head, 0);
  atomic_init(&t->ring_tail, 0);
  atomic_init(&t->front_busy, 0);
  atomic_init(&t->refill_wanted, 0);
  atomic_init(&t->state, 0);
  atomic_init(&t->check_queued, 0);
  atomic_init(&t->serve_queued, 0);
  atomic_init(&t->st_idle, 0);
  atomic_init(&t->st_busy, 0);
  atomic_init(&t->st_backlog, 0);
  atomic_init(&t->st_created, 0);
  atomic_init(&t->st_seq, 0);
  t->quit_step.ops = &tw__team_quit_ops;
  t->check_step.ops = &tw__team_check_ops;
  t->serve_step.ops = &tw__team_serve_ops;
  *out = t;
  return 0;
}

int tw_team_new(tw_team **out, tw_worker *coordinator,
                tw_team_create_fn create_worker, tw_team_log_fn log_exception,
                void *ctx) {
  return tw__team_new_ex(out, coordinator, create_worker, log_exception, ctx,
                         NULL);
}

tw_worker *tw_team_worker(tw_team *team) {
  return team == NULL ? NULL : &team->base;
}

int tw_team_grow(tw_team *team, int n) {
  if (n <= 0) return TW_EINVAL;
  return tw__team_submit_step(team, &tw__team_grow_ops, n);
}

int tw_team_shrink(tw_team *team, int n) {
  if (n <= 0) return TW_EINVAL;
  return tw__team_submit_step(team, &tw__team_shrink_ops, n);
}

int tw_team_shrink_all(tw_team *team) {
  return tw__team_submit_step(team, &tw__team_shrink_ops, -1);
}

int tw_team_statistics(const tw_team *team, tw_team_stats *out) {
  /* C11 atomic loads take non-const pointers; nothing is written. */
  tw_team *t = (tw_team *)team;
  if (t == NULL || out == NULL) return TW_EINVAL;
  out->idle = atomic_load_explicit(&t->st_idle, memory_order_relaxed);
  out->busy = atomic_load_explicit(&t->st_busy, memory_order_relaxed);
  for (;;) {
    unsigned seq = atomic_load_explicit(&t->st_seq, memory_order_acquire);
    if (seq & 1) {
      sched_yield(); /* a refill is under way: a few hundred stores */
      continue;
    }
    out->backlog =
        atomic_load_explicit(&t->st_backlog, memory_order_acquire) +
        tw__ring_count(t);
    /* No fence needed: the loads above are acquires, so this one stays
     * after them, and if they saw any store of the refill, its odd count
     * happened before this read. */
    if (atomic_load_explicit(&t->st_seq, memory_order_acquire) == seq) break;
  }
  out->created = atomic_load_explicit(&t->st_created, memory_order_relaxed);
  return 0;
}

size_t tw__team_worker_count(const tw_team *team) {
  return team->idle_n + team->busy_n;
}

/* ---- pool() ------------------------------------------------------------------ */

typedef struct tw__pool {
  tw_pool_limit_fn limit;
  void *ctx;
  tw_team *team;
  unsigned long next_id;
  char prefix[TW__THREAD_NAME_MAX];
} tw__pool;

/* Twisted's limitedWorkerCreator, in the coordinator. */
static tw_worker *tw__pool_create(void *ctx) {
  tw__pool *p = ctx;
  char name[TW__THREAD_NAME_MAX];
  unsigned long id;
  int digits, keep, rc;
  tw_worker *w;
  if (tw__team_worker_count(p->team) >= p->limit(p->ctx)) return NULL;
  id = ++p->next_id;
  /* Keep the number whole: trim the prefix to fit 15 characters. */
  digits = snprintf(NULL, 0, "%lu", id);
  keep = (int)sizeof(name) - 2 - digits;
  if (keep < 0) keep = 0;
  snprintf(name, sizeof(name), "%.*s-%lu", keep, p->prefix, id);
  rc = tw_thread_worker_new(&w, name);
  if (rc != 0) {
    /* Not "no more workers": work with no thread left to run it fails
     * with rc rather than wait for ever (tw__team_step_end); a later do
     * tries again. */
    tw_log(TW_LOG_WARN, NULL, "pool: could not start a worker thread: %s",
           tw_strerror(rc));
    tw__team_create_failed(p->team, rc);
    return NULL;
  }
  return w;
}

int tw_pool_new(tw_team **out, tw_pool_limit_fn current_limit, void *ctx,
                const char *name) {
  tw__pool *p;
  tw_worker *coordinator;
  tw_team *team;
  int rc;
  if (out == NULL || current_limit == NULL) return TW_EINVAL;
  p = tw__calloc_lines(sizeof(*p));
  if (p == NULL) return TW_ENOMEM;
  p->limit = current_limit;
  p->ctx = ctx;
  snprintf(p->prefix, sizeof(p->prefix), "%s",
           name != NULL ? name : "tw-worker");
  rc = tw_serial_worker_new(&coordinator);
  if (rc != 0) {
    tw__free_lines(p);
    return rc;
  }
  rc = tw__team_new_ex(&team, coordinator, tw__pool_create, NULL, p,
                       tw__free_lines);
  if (rc != 0) {
    (void)tw_worker_free(coordinator);
    tw__free_lines(p);
    return rc;
  }
  p->team = team;
  *out = team;
  return 0;
}
