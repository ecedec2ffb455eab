/*
 * lib/reactor-children.c - the registry of everything a reactor owns or
 * must wait for before it can go (reactor-internal.h, "children"; the
 * design in docs/design.md, "Reactor children").
 *
 * One list, oldest first, under children_lock (blocked callers come and go
 * from their own threads, foreign jobs finish on pool threads). The
 * reactor walks it newest first, calling each child's close without the
 * lock; the child is pinned meanwhile, so that a done from another thread
 * waits for close to return rather than free the child under it, and a
 * done from inside close (on the loop thread) unlinks at once and tells
 * the walk not to touch the child again. Children done during a walk move
 * its cursor off themselves; children added during a free walk are picked
 * up by another pass.
 */
#include "reactor-struct.h"

/* The registry's own flags, above the owner's (TW__CHILD_OWNER_FLAGS). */
enum {
  TW__CHILD_LINKED = 1u << 8,
  TW__CHILD_PINNED = 1u << 9, /* inside its close */
  TW__CHILD_FREED = 1u << 10  /* close(TW__CLOSE_FREE) was called */
};

int tw__reactor_children_init(tw_reactor *r) {
  int err = uv_mutex_init(&r->children_lock);
  if (err != 0) return err;
  err = uv_cond_init(&r->children_cond);
  if (err != 0) uv_mutex_destroy(&r->children_lock);
  return err;
}

void tw__reactor_children_destroy(tw_reactor *r) {
  uv_cond_destroy(&r->children_cond);
  uv_mutex_destroy(&r->children_lock);
}

/* ---- the list (under children_lock) ----------------------------------------- */

static void tw__child_link(tw_reactor *r, tw__child *c) {
  c->next = NULL;
  c->prev = r->children_tail;
  if (r->children_tail != NULL)
    r->children_tail->next = c;
  else
    r->children = c;
  r->children_tail = c;
  c->flags |= TW__CHILD_LINKED;
  r->children_count++;
  if (c->flags & TW__CHILD_BUSY) r->children_busy++;
  if (c->flags & TW__CHILD_ON_LOOP) r->children_on_loop++;
}

static void tw__child_unlink(tw_reactor *r, tw__child *c) {
  tw__child_walk *w;
  /* A walk about to visit c goes on to the one before it. */
  for (w = r->walks; w != NULL; w = w->up)
    if (w->next == c) w->next = c->prev;
  if (c->prev != NULL)
    c->prev->next = c->next;
  else
    r->children = c->next;
  if (c->next != NULL)
    c->next->prev = c->prev;
  else
    r->children_tail = c->prev;
  c->next = c->prev = NULL;
  r->children_count--;
  if (c->flags & TW__CHILD_BUSY) r->children_busy--;
  if (c->flags & TW__CHILD_ON_LOOP) r->children_on_loop--;
  c->flags &= ~(TW__CHILD_LINKED | TW__CHILD_BUSY);
}

/* ---- what owners call ---------------------------------------------------------- */

int tw__reactor_child_add(tw_reactor *r, tw__child *c) {
  int err = 0;
  uv_mutex_lock(&r->children_lock);
  if (r->children_closed || ((c->flags & TW__CHILD_HALT) && r->halted))
    err = TW_ESHUTDOWN;
  else
    tw__child_link(r, c);
  uv_mutex_unlock(&r->children_lock);
  return err;
}

void tw__reactor_child_park(tw_reactor *r, tw__child *c) {
  uv_mutex_lock(&r->children_lock);
  if (!(c->flags & TW__CHILD_LINKED)) {
    c->flags &= ~TW__CHILD_BUSY;
    tw__child_link(r, c);
  } else if (c->flags & TW__CHILD_BUSY) {
    c->flags &= ~TW__CHILD_BUSY;
    r->children_busy--;
  }
  uv_mutex_unlock(&r->children_lock);
}

void tw__reactor_child_done(tw_reactor *r, tw__child *c) {
  int release;
  uv_mutex_lock(&r->children_lock);
  if (c->flags & TW__CHILD_PINNED) {
    if (tw__reactor_on_loop_thread(r)) {
      /* Inside its own close (only the loop thread walks): the walk must
       * not touch c once close returns. */
      tw__child_walk *w;
      for (w = r->walks; w != NULL; w = w->up)
        if (w->current == c) w->current = NULL;
      c->flags &= ~TW__CHILD_PINNED;
    } else {
      while (c->flags & TW__CHILD_PINNED)
        uv_cond_wait(&r->children_cond, &r->children_lock);
    }
  }
  tw__child_unlink(r, c);
  /* tw_reactor_free may be waiting for this one. */
  uv_cond_broadcast(&r->children_cond);
  release = r->free_waiting && r->children == NULL;
  uv_mutex_unlock(&r->children_lock);
  /* Hosted loop, free returned: the last TW__CHILD_ON_LOOP child takes the
   * reactor's memory with it (on the loop thread). */
  if (release) tw__reactor_maybe_release(r);
}

/* ---- walks (loop thread) ------------------------------------------------------- */

/* Call close(why) on each child it concerns, newest first; how many. */
static int tw__children_walk(tw_reactor *r, int why) {
  tw__child_walk w;
  tw__child *c;
  int closed = 0;
  uv_mutex_lock(&r->children_lock);
  w.up = r->walks;
  w.next = r->children_tail;
  w.current = NULL;
  r->walks = &w;
  while ((c = w.next) != NULL) {
    w.next = c->prev;
    /* Pinned: an outer walk is inside its close. */
    if (c->flags & TW__CHILD_PINNED) continue;
    if (why == TW__CLOSE_HALT       ? !(c->flags & TW__CHILD_HALT)
        : why == TW__CLOSE_SHUTDOWN ? !(c->flags & TW__CHILD_SHUTDOWN)
                                    : (c->flags & TW__CHILD_FREED) != 0)
      continue;
    if (why == TW__CLOSE_FREE) c->flags |= TW__CHILD_FREED;
    c->flags |= TW__CHILD_PINNED;
    w.current = c;
    uv_mutex_unlock(&r->children_lock);
    c->ops->close(c, why);
    uv_mutex_lock(&r->children_lock);
    if (w.current == c) {
      /* Still registered (it finishes later, or elsewhere). */
      c->flags &= ~TW__CHILD_PINNED;
      uv_cond_broadcast(&r->children_cond);
    }
    w.current = NULL;
    closed++;
  }
  r->walks = w.up;
  uv_mutex_unlock(&r->children_lock);
  return closed;
}

void tw__reactor_children_halt(tw_reactor *r) {
  int was;
  uv_mutex_lock(&r->children_lock);
  was = r->halted;
  r->halted = 1;
  uv_mutex_unlock(&r->children_lock);
  /* Halted already (a stop's crash, after the stop): no halt child came
   * since - they are refused - and those there were told. */
  if (!was) tw__children_walk(r, TW__CLOSE_HALT);
}

void tw__reactor_children_shutdown(tw_reactor *r) {
  (void)tw__children_walk(r, TW__CLOSE_SHUTDOWN);
}

void tw__reactor_children_live(tw_reactor *r) {
  uv_mutex_lock(&r->children_lock);
  r->halted = 0;
  uv_mutex_unlock(&r->children_lock);
}

int tw__reactor_children_close(tw_reactor *r) {
  int busy;
  uv_mutex_lock(&r->children_lock);
  busy = r->children_busy > 0;
  if (!busy) {
    r->children_closed = 1;
    r->halted = 1;
  }
  uv_mutex_unlock(&r->children_lock);
  return busy ? TW_EBUSY : 0;
}

int tw__reactor_children_free(tw_reactor *r) {
  int left;
  /* A close may park more (a pool's jobs, dropped as it is joined, whose
   * results the closed queue refused): walk until a pass closes none. */
  while (tw__children_walk(r, TW__CLOSE_FREE) > 0) {
  }
  uv_mutex_lock(&r->children_lock);
  while (r->children_count > 0) {
    if (r->children_on_loop > 0 && r->own_loop != NULL) {
      /* Their close callbacks come from our loop: run it. */
      uv_mutex_unlock(&r->children_lock);
      uv_run(r->own_loop, UV_RUN_ONCE);
      uv_mutex_lock(&r->children_lock);
      continue;
    }
    /* Hosted loop: what is left finishes on the host's loop, later. */
    if (r->children_count == r->children_on_loop) break;
    /* Children that finish on other threads: released blocking callers on
     * their way out. */
    uv_cond_wait(&r->children_cond, &r->children_lock);
  }
  left = r->children != NULL;
  if (left) r->free_waiting = 1;
  uv_mutex_unlock(&r->children_lock);
  return left;
}

uint64_t tw__reactor_calls_queued(tw_reactor *r) {
  return tw__gate_users(&r->queued, TW__GATE_ONE);
}
