/*
 * lib/worker.c - the worker interface (worker.h), failing work, intrusive
 * items, and the thread, lock and memory workers.
 */
#include "gate.h"
#include "worker-internal.h"

#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#if defined(__linux__) || defined(__APPLE__)
#include <pthread.h>
#endif

/* ---- The interface -------------------------------------------------------- */

int tw_worker_do(tw_worker *worker, tw_call_fn fn, void *arg) {
  return tw_worker_do_full(worker, fn, arg, NULL);
}

int tw_worker_do_full(tw_worker *worker, tw_call_fn fn, void *arg,
                      tw_free_fn arg_free) {
  if (worker == NULL || fn == NULL || worker->vtable == NULL ||
      worker->vtable->do_work == NULL)
    return TW_EINVAL;
  return worker->vtable->do_work(worker, fn, arg, arg_free);
}

int tw_worker_quit(tw_worker *worker) {
  if (worker == NULL || worker->vtable == NULL || worker->vtable->quit == NULL)
    return TW_EINVAL;
  return worker->vtable->quit(worker);
}

int tw_worker_free(tw_worker *worker) {
  if (worker == NULL || worker->vtable == NULL ||
      worker->vtable->destroy == NULL)
    return TW_EINVAL;
  return worker->vtable->destroy(worker);
}

/* ---- Failing work: one pending failure per thread ------------------------- */

static TW__TLS tw_failure *tw__pending_failure;

void tw_work_fail(tw_failure *failure) {
  tw_failure *old = tw__pending_failure;
  if (failure == NULL) failure = tw_failure_new(NULL, 0, "work failed");
  tw__pending_failure = failure;
  tw_failure_unref(old);
}

tw_failure *tw_work_take_failure(void) {
  tw_failure *f = tw__pending_failure;
  tw__pending_failure = NULL;
  return f;
}

void tw__work_log_pending(const char *why) {
  tw_failure *f = tw__pending_failure;
  if (f == NULL) return;
  tw__pending_failure = NULL;
  tw_log_failure(f, why);
  tw_failure_unref(f);
}

tw_failure **tw__work_failure_slot(void) { return &tw__pending_failure; }

void tw__work_log_slot(tw_failure **slot, const char *why) {
  tw_failure *f = *slot;
  *slot = NULL;
  tw_log_failure(f, why);
  tw_failure_unref(f);
}

/* ---- Items ---------------------------------------------------------------- */

/* What do_work accepts, as an item of an intrusive worker. */
typedef struct tw__plain_item {
  tw__item item;
  tw_call_fn fn;
  void *arg;
  tw_free_fn arg_free;
} tw__plain_item;

static void tw__plain_run(tw__item *it) {
  tw__plain_item *p = TW__CONTAINER_OF(it, tw__plain_item, item);
  tw_call_fn fn = p->fn;
  void *arg = p->arg;
  tw_free_fn arg_free = p->arg_free;
  /* Freed first: long work should not pin its wrapper. */
  tw__free(p);
  fn(arg);
  if (arg_free != NULL) arg_free(arg);
}

static void tw__plain_drop(tw__item *it) {
  tw__plain_item *p = TW__CONTAINER_OF(it, tw__plain_item, item);
  tw_free_fn arg_free = p->arg_free;
  void *arg = p->arg;
  tw__free(p);
  if (arg_free != NULL) arg_free(arg);
}

static const tw__item_ops tw__plain_ops = {tw__plain_run, tw__plain_drop};

static tw__plain_item *tw__plain_new(tw_call_fn fn, void *arg,
                                     tw_free_fn arg_free) {
  tw__plain_item *p = tw__malloc(sizeof(*p));
  if (p == NULL) return NULL;
  p->item.ops = &tw__plain_ops;
  p->fn = fn;
  p->arg = arg;
  p->arg_free = arg_free;
  return p;
}

/*
 * The do_work of the intrusive classes: wrap fn/arg/arg_free in an
 * allocated item and pass it to do_item.
 */
static int tw__class_do_work(tw_worker *w, tw_call_fn fn, void *arg,
                             tw_free_fn arg_free) {
  const tw__worker_class *cls = tw__worker_class_of(w);
  tw__plain_item *p;
  int rc;
  if (cls == NULL) return TW_EINVAL;
  p = tw__plain_new(fn, arg, arg_free);
  if (p == NULL) return TW_ENOMEM;
  rc = cls->do_item(w, &p->item);
  if (rc != 0) tw__free(p);
  return rc;
}

const tw__worker_class *tw__worker_class_of(const tw_worker *w) {
  static const tw__worker_class *const classes[] = {
      &tw__serial_worker_class, &tw__thread_worker_class,
      &tw__memory_worker_class, &tw__lock_worker_class};
  size_t i;
  for (i = 0; i < TW__ARRAY_SIZE(classes); i++)
    if (w->vtable == &classes[i]->vtable) return classes[i];
  return NULL;
}

/*
 * An item on its way through a foreign worker's do_work. ran tells
 * arg_free whether the item still needs dropping; once run, the item may
 * already have been freed or resubmitted, so it is never touched again.
 */
typedef struct tw__adapter {
  tw__item *item;
  int ran;
} tw__adapter;

static void tw__adapter_run(void *arg) {
  tw__adapter *a = arg;
  a->ran = 1;
  tw__item_run(a->item);
}

static void tw__adapter_free(void *arg) {
  tw__adapter *a = arg;
  if (!a->ran) tw__item_drop(a->item);
  tw__free(a);
}

int tw__worker_do_item(tw_worker *w, tw__item *item) {
  const tw__worker_class *cls = tw__worker_class_of(w);
  tw__adapter *a;
  int rc;
  if (cls != NULL) return cls->do_item(w, item);
  /* A create_worker may hand the team anything. */
  if (w->vtable == NULL || w->vtable->do_work == NULL) return TW_EINVAL;
  a = tw__malloc(sizeof(*a));
  if (a == NULL) return TW_ENOMEM;
  a->item = item;
  a->ran = 0;
  rc = w->vtable->do_work(w, tw__adapter_run, a, tw__adapter_free);
  if (rc != 0) tw__free(a);
  return rc;
}

/* Name the calling thread; does nothing where unsupported. */
static void tw__thread_set_name(const char *name) {
#if defined(__linux__)
  char buf[TW__THREAD_NAME_MAX];
  snprintf(buf, sizeof(buf), "%s", name);
  (void)pthread_setname_np(pthread_self(), buf);
#elif defined(__APPLE__)
  (void)pthread_setname_np(name);
#else
  (void)name;
#endif
}

/* ---- Thread worker -------------------------------------------------------- */

/*
 * state = accepted-but-unfinished items * TW__T_ONE | SLEEP | QUIT, a gate
 * (lib/gate.h) with a flag of its own: acceptance and quit are decided by
 * one atomic operation, so a do either lands before quit (and is counted,
 * so the thread will run it) or is rejected. SLEEP is set by the thread just before it waits on the
 * semaphore; whoever clears it (a do, or quit) posts exactly once, so posts
 * and waits stay balanced and the semaphore never overflows.
 */
#define TW__T_QUIT TW__GATE_CLOSED
#define TW__T_SLEEP ((size_t)2)
#define TW__T_ONE ((size_t)4)

typedef struct tw__thread_worker {
  tw_worker base; /* read by every submitter */
  /* state and q are written by submitters and the thread: lines of their
   * own (the worker's memory is line-aligned, tw__calloc_lines) */
  TW__LINE_ALIGNED tw__gate state; /* lib/gate.h */
  atomic_int finished; /* the body has returned from its loop */
  tw__mpsc q;
  TW__LINE_ALIGNED uv_sem_t sem;
  uv_thread_t tid;
  int custom;
  tw_thread_starter starter;
  void *handle;
  char name[TW__THREAD_NAME_MAX];
} tw__thread_worker;

/* The thread worker whose thread body is running on this thread. */
static TW__TLS tw__thread_worker *tw__current_thread_worker;

TW__TLS void (*tw__thread_exit_hook)(void);

int tw__thread_worker_is_current(const tw_worker *w) {
  return tw__current_thread_worker != NULL &&
         &tw__current_thread_worker->base == w;
}

static atomic_ulong tw__thread_worker_ids;

#ifndef TW__THREAD_SPIN_NS
#define TW__THREAD_SPIN_NS 20000
#endif

/*
 * Wait a little for work before sleeping (a sleep costs the thread that
 * wakes us a futex call, and both of us a context switch): 1 when state
 * changed. After the first few dozen polls, each check of the clock also
 * yields the CPU, so that on a busy machine the thread that will give us
 * work (often waiting for a CPU itself) can run.
 */
static int tw__thread_spin(tw__thread_worker *w, size_t *s) {
  uint64_t deadline = 0;
  unsigned i;
  for (i = 1;; i++) {
    size_t now;
    TW__CPU_RELAX();
    now = atomic_load_explicit(&w->state, memory_order_acquire);
    if (now != *s) {
      *s = now;
      return 1;
    }
    if ((i & 63) == 0) {
      uint64_t t = uv_hrtime();
      if (deadline == 0)
        deadline = t + TW__THREAD_SPIN_NS;
      else if (t >= deadline)
        return 0;
      else
        sched_yield();
    }
  }
}

static void tw__thread_body(void *arg) {
  tw__thread_worker *w = arg;
  tw__thread_worker *prev = tw__current_thread_worker;
  /* A custom starter may run a body inside another's: each has its own. */
  void (*outer_hook)(void) = tw__thread_exit_hook;
  tw__thread_exit_hook = NULL;
  if (w->name[0] != '\0') tw__thread_set_name(w->name);
  tw__current_thread_worker = w;
  for (;;) {
    size_t s = atomic_load_explicit(&w->state, memory_order_acquire);
    size_t n = s / TW__T_ONE, i;
    if (n == 0) {
      if (s & TW__T_QUIT) break;
      if (tw__thread_spin(w, &s)) continue;
      if (atomic_compare_exchange_weak_explicit(&w->state, &s,
                                                s | TW__T_SLEEP,
                                                memory_order_acq_rel,
                                                memory_order_acquire))
        uv_sem_wait(&w->sem);
      continue;
    }
    /* Run exactly the n items counted; later ones wait for the next round,
     * which keeps the atomic traffic at one subtraction per batch. */
    for (i = 0; i < n; i++) {
      tw__item *it = TW__CONTAINER_OF(tw__mpsc_pop_wait(&w->q), tw__item, node);
      tw__item_run(it);
      tw__work_log_pending("Unhandled error in thread worker");
    }
    atomic_fetch_sub_explicit(&w->state, n * TW__T_ONE, memory_order_acq_rel);
  }
  if (tw__thread_exit_hook != NULL) tw__thread_exit_hook();
  tw__thread_exit_hook = outer_hook;
  tw__current_thread_worker = prev;
  atomic_store_explicit(&w->finished, 1, memory_order_release);
}

int tw__thread_worker_finished(tw_worker *wk) {
  tw__thread_worker *w = (tw__thread_worker *)wk;
  return !w->custom &&
         atomic_load_explicit(&w->finished, memory_order_acquire);
}

int tw__thread_worker_alone(tw_worker *wk) {
  tw__thread_worker *w = (tw__thread_worker *)wk;
  return tw__current_thread_worker == w &&
         atomic_load_explicit(&w->state, memory_order_acquire) == TW__T_ONE;
}

static int tw__thread_do_item(tw_worker *wk, tw__item *it) {
  tw__thread_worker *w = (tw__thread_worker *)wk;
  size_t s;
  if (tw__gate_enter_ex(&w->state, TW__T_ONE, TW__T_SLEEP, &s) != 0)
    return TW_EALREADYQUIT;
  tw__mpsc_push(&w->q, &it->node);
  if (s & TW__T_SLEEP) uv_sem_post(&w->sem);
  return 0;
}

static int tw__thread_quit(tw_worker *wk) {
  tw__thread_worker *w = (tw__thread_worker *)wk;
  size_t s;
  if (tw__gate_shut_ex(&w->state, TW__T_SLEEP, &s) != 0)
    return TW_EALREADYQUIT;
  if (s & TW__T_SLEEP) uv_sem_post(&w->sem);
  return 0;
}

static int tw__thread_destroy(tw_worker *wk) {
  tw__thread_worker *w = (tw__thread_worker *)wk;
  tw__mpsc_node *n;
  if (tw__current_thread_worker == w) return TW_EDEADLK;
  (void)tw__thread_quit(wk);
  if (w->custom) {
    if (w->starter.join != NULL) w->starter.join(w->starter.ctx, w->handle);
  } else {
    uv_thread_join(&w->tid);
  }
  /* Only a fake thread that never ran its body leaves work behind. */
  while ((n = tw__mpsc_pop(&w->q)) != NULL) {
    tw__item *it = TW__CONTAINER_OF(n, tw__item, node);
    tw__item_drop(it);
  }
  uv_sem_destroy(&w->sem);
  tw__free_lines(w);
  return 0;
}

const tw__worker_class tw__thread_worker_class = {
    {tw__class_do_work, tw__thread_quit, tw__thread_destroy},
    tw__thread_do_item};

static int tw__thread_worker_create(tw_worker **out, const char *name,
                                    const tw_thread_starter *starter) {
  tw__thread_worker *w;
  int rc;
  w = tw__calloc_lines(sizeof(*w));
  if (w == NULL) return TW_ENOMEM;
  w->base.vtable = &tw__thread_worker_class.vtable;
  atomic_init(&w->state, 0);
  atomic_init(&w->finished, 0);
  tw__mpsc_init(&w->q);
  rc = uv_sem_init(&w->sem, 0);
  if (rc != 0) goto fail_sem;
  if (starter != NULL) {
    w->custom = 1;
    w->starter = *starter;
    rc = starter->start(starter->ctx, tw__thread_body, w, &w->handle);
  } else {
    if (name != NULL)
      snprintf(w->name, sizeof(w->name), "%s", name);
    else
      snprintf(w->name, sizeof(w->name), "tw-worker-%lu",
               atomic_fetch_add(&tw__thread_worker_ids, 1) + 1);
    rc = uv_thread_create(&w->tid, tw__thread_body, w);
  }
  if (rc != 0) goto fail_thread;
  *out = &w->base;
  return 0;
fail_thread:
  uv_sem_destroy(&w->sem);
fail_sem:
  tw__free_lines(w);
  return rc;
}

int tw_thread_worker_new(tw_worker **out, const char *name) {
  if (out == NULL) return TW_EINVAL;
  return tw__thread_worker_create(out, name, NULL);
}

int tw_thread_worker_new_custom(tw_worker **out,
                                const tw_thread_starter *starter) {
  if (out == NULL || starter == NULL || starter->start == NULL)
    return TW_EINVAL;
  return tw__thread_worker_create(out, NULL, starter);
}

/* ---- Lock worker ---------------------------------------------------------- */

typedef struct tw__lock_worker {
  tw_worker base;
  tw__quit quit;
  tw_call_fn acquire;
  tw_call_fn release;
  void *lock;
  int own_mutex;
  uv_mutex_t mutex;
} tw__lock_worker;

/*
 * Twisted keeps LockWorker's re-entrancy list in a threading.local per
 * worker. Here each thread has a stack of frames, one per lock worker whose
 * outermost do is running on it: rarely more than one or two, so a linear
 * search is cheapest.
 */
typedef struct tw__lock_frame {
  tw__lock_worker *w;
  TW__FIFO(tw__item) queued; /* re-entrant items */
  struct tw__lock_frame *prev;
} tw__lock_frame;

static TW__TLS tw__lock_frame *tw__lock_frames;

static tw__lock_frame *tw__lock_frame_find(const tw__lock_worker *w) {
  tw__lock_frame *f;
  for (f = tw__lock_frames; f != NULL; f = f->prev)
    if (f->w == w) return f;
  return NULL;
}

static void tw__mutex_acquire(void *m) { uv_mutex_lock(m); }
static void tw__mutex_release(void *m) { uv_mutex_unlock(m); }

/*
 * The outermost do on this thread: take the lock, run the first item (an
 * item, or fn/arg/arg_free, which needs no allocation), then whatever it
 * queued re-entrantly.
 */
static int tw__lock_outermost(tw__lock_worker *w, tw__item *first,
                              tw_call_fn fn, void *arg, tw_free_fn arg_free) {
  tw__lock_frame frame;
  tw__item *it;
  tw_call_fn release = w->release;
  void *lock = w->lock;
  tw_failure **slot, *outer;
  w->acquire(lock);
  /* quit may have won while we waited (test_quitWhileGettingLock). */
  if (tw__quit_is_set(&w->quit)) {
    release(lock);
    return TW_EALREADYQUIT;
  }
  slot = tw__work_failure_slot();
  outer = tw__work_stash(slot);
  frame.w = w;
  TW__FIFO_INIT(&frame.queued);
  frame.prev = tw__lock_frames;
  tw__lock_frames = &frame;
  if (first != NULL) {
    tw__item_run(first);
  } else {
    fn(arg);
    if (arg_free != NULL) arg_free(arg);
  }
  while (*slot == NULL && !TW__FIFO_EMPTY(&frame.queued)) {
    TW__FIFO_POP(&frame.queued, it, next);
    tw__item_run(it);
  }
  /* A failure propagates to our caller, abandoning what was queued behind
   * it, as an exception leaves Twisted's loop. */
  for (;;) {
    TW__FIFO_POP(&frame.queued, it, next);
    if (it == NULL) break;
    tw__item_drop(it);
  }
  tw__lock_frames = frame.prev;
  tw__work_unstash(slot, outer);
  /* w may be freed as soon as the lock is released: nothing after this
   * touches it. */
  release(lock);
  return 0;
}

static int tw__lock_do_item(tw_worker *wk, tw__item *it) {
  tw__lock_worker *w = (tw__lock_worker *)wk;
  tw__lock_frame *f;
  if (tw__quit_is_set(&w->quit)) return TW_EALREADYQUIT;
  f = tw__lock_frame_find(w);
  if (f != NULL) {
    TW__FIFO_PUSH(&f->queued, it, next);
    return 0;
  }
  return tw__lock_outermost(w, it, NULL, NULL, NULL);
}

static int tw__lock_do_work(tw_worker *wk, tw_call_fn fn, void *arg,
                            tw_free_fn arg_free) {
  tw__lock_worker *w = (tw__lock_worker *)wk;
  tw__lock_frame *f;
  tw__plain_item *p;
  if (tw__quit_is_set(&w->quit)) return TW_EALREADYQUIT;
  f = tw__lock_frame_find(w);
  if (f == NULL) return tw__lock_outermost(w, NULL, fn, arg, arg_free);
  p = tw__plain_new(fn, arg, arg_free);
  if (p == NULL) return TW_ENOMEM;
  TW__FIFO_PUSH(&f->queued, &p->item, next);
  return 0;
}

static int tw__lock_quit(tw_worker *wk) {
  tw__lock_worker *w = (tw__lock_worker *)wk;
  return tw__quit_set(&w->quit);
}

static int tw__lock_destroy(tw_worker *wk) {
  tw__lock_worker *w = (tw__lock_worker *)wk;
  if (tw__lock_frame_find(w) != NULL) return TW_EDEADLK;
  (void)tw__quit_set(&w->quit);
  /* Wait out a thread still inside its outermost do (e.g. the one that ran
   * a team's last coordination step and is about to release the lock). */
  w->acquire(w->lock);
  w->release(w->lock);
  if (w->own_mutex) uv_mutex_destroy(&w->mutex);
  tw__free(w);
  return 0;
}

const tw__worker_class tw__lock_worker_class = {
    {tw__lock_do_work, tw__lock_quit, tw__lock_destroy}, tw__lock_do_item};

static tw__lock_worker *tw__lock_alloc(void) {
  tw__lock_worker *w = tw__calloc(1, sizeof(*w));
  if (w == NULL) return NULL;
  w->base.vtable = &tw__lock_worker_class.vtable;
  tw__quit_init(&w->quit);
  return w;
}

int tw_lock_worker_new(tw_worker **out) {
  tw__lock_worker *w;
  int rc;
  if (out == NULL) return TW_EINVAL;
  w = tw__lock_alloc();
  if (w == NULL) return TW_ENOMEM;
  rc = uv_mutex_init(&w->mutex);
  if (rc != 0) goto fail_mutex;
  w->own_mutex = 1;
  w->acquire = tw__mutex_acquire;
  w->release = tw__mutex_release;
  w->lock = &w->mutex;
  *out = &w->base;
  return 0;
fail_mutex:
  tw__free(w);
  return rc;
}

int tw_lock_worker_new_custom(tw_worker **out, tw_call_fn acquire,
                              tw_call_fn release, void *lock) {
  tw__lock_worker *w;
  if (out == NULL || acquire == NULL || release == NULL) return TW_EINVAL;
  w = tw__lock_alloc();
  if (w == NULL) return TW_ENOMEM;
  w->acquire = acquire;
  w->release = release;
  w->lock = lock;
  *out = &w->base;
  return 0;
}

/* ---- Memory worker -------------------------------------------------------- */

typedef struct tw__memory_worker {
  tw_worker base;
  uv_mutex_t mutex;
  TW__FIFO(tw__item) queue;
  int quit;
  int performing; /* items tw_memory_worker_perform is running (mutex) */
} tw__memory_worker;

static int tw__memory_do_item(tw_worker *wk, tw__item *it) {
  tw__memory_worker *w = (tw__memory_worker *)wk;
  uv_mutex_lock(&w->mutex);
  if (w->quit) {
    uv_mutex_unlock(&w->mutex);
    return TW_EALREADYQUIT;
  }
  TW__FIFO_PUSH(&w->queue, it, next);
  uv_mutex_unlock(&w->mutex);
  return 0;
}

static int tw__memory_quit(tw_worker *wk) {
  tw__memory_worker *w = (tw__memory_worker *)wk;
  int rc = 0;
  uv_mutex_lock(&w->mutex);
  if (w->quit)
    rc = TW_EALREADYQUIT;
  else
    w->quit = 1;
  uv_mutex_unlock(&w->mutex);
  return rc;
}

/* Detach the whole queue. */
static tw__item *tw__memory_take_all(tw__memory_worker *w) {
  tw__item *it;
  uv_mutex_lock(&w->mutex);
  TW__FIFO_TAKE(&w->queue, it);
  uv_mutex_unlock(&w->mutex);
  return it;
}

int tw_memory_worker_perform(tw_worker *worker) {
  tw__memory_worker *w;
  tw__item *it;
  if (worker == NULL || worker->vtable != &tw__memory_worker_class.vtable)
    return 0;
  w = (tw__memory_worker *)worker;
  uv_mutex_lock(&w->mutex);
  TW__FIFO_POP(&w->queue, it, next);
  if (it != NULL) {
    it->next = NULL;
    /* Counted so that tw_worker_free from inside the item is refused. */
    w->performing++;
  }
  uv_mutex_unlock(&w->mutex);
  if (it == NULL) return 0;
  tw__item_run(it);
  uv_mutex_lock(&w->mutex);
  w->performing--;
  uv_mutex_unlock(&w->mutex);
  return 1;
}

static int tw__memory_destroy(tw_worker *wk) {
  tw__memory_worker *w = (tw__memory_worker *)wk;
  tw__item *it, *next;
  int performing;
  /* From inside an item perform is running (on this thread: the caller
   * guarantees no other thread still uses the worker): refuse, as the other
   * workers do, before anything changes. */
  uv_mutex_lock(&w->mutex);
  performing = w->performing;
  uv_mutex_unlock(&w->mutex);
  if (performing > 0) return TW_EDEADLK;
  (void)tw__memory_quit(wk);
  /* Detached first: a drop may submit elsewhere, never back here (quit). */
  for (it = tw__memory_take_all(w); it != NULL; it = next) {
    next = it->next;
    tw__item_drop(it);
  }
  uv_mutex_destroy(&w->mutex);
  tw__free(w);
  return 0;
}

const tw__worker_class tw__memory_worker_class = {
    {tw__class_do_work, tw__memory_quit, tw__memory_destroy},
    tw__memory_do_item};

int tw_memory_worker_new(tw_worker **out) {
  tw__memory_worker *w;
  int rc;
  if (out == NULL) return TW_EINVAL;
  w = tw__calloc(1, sizeof(*w));
  if (w == NULL) return TW_ENOMEM;
  rc = uv_mutex_init(&w->mutex);
  if (rc != 0) goto fail_mutex;
  w->base.vtable = &tw__memory_worker_class.vtable;
  *out = &w->base;
  return 0;
fail_mutex:
  tw__free(w);
  return rc;
}
