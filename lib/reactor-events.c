/*
 * lib/reactor-events.c - system event triggers: Twisted's _ThreePhaseEvent
 * and the reactor's add/remove/fireSystemEvent, callWhenRunning, and the
 * before-phase Deferreds an event waits for. (The reactor's libuv handles,
 * and its startup and shutdown themselves, are reactor.c's.)
 */
#include "reactor-struct.h"

#include <string.h>

struct tw__trigger {
  tw__trigger *next;
  uint64_t id;
  tw_result_fn fn;
  void *arg;
  tw_free_fn arg_free;
};

/* One gate per before-trigger Deferred still pending. */
typedef struct tw__before_wait {
  struct tw__before_wait *next;
  tw_reactor *r; /* NULL once the reactor is gone */
  tw__event *ev;
} tw__before_wait;

struct tw__event {
  tw__event *next;
  tw__trigger *head[3];
  tw__trigger **tail[3];
  tw__before_wait *gates;  /* pending before-phase Deferreds */
  int in_before;    /* running the before phase: gates only count down */
  char name[];
};

static void tw__trigger_result(tw_reactor *r, tw__event *ev, int phase,
                               tw_result res);

static tw__event *tw__event_find(tw_reactor *r, const char *name) {
  tw__event *ev;
  for (ev = r->events; ev != NULL; ev = ev->next)
    if (strcmp(ev->name, name) == 0) return ev;
  return NULL;
}

static tw__event *tw__event_get(tw_reactor *r, const char *name) {
  tw__event *ev = tw__event_find(r, name);
  size_t len;
  int p;
  if (ev != NULL) return ev;
  len = strlen(name);
  ev = tw__malloc(sizeof(*ev) + len + 1);
  if (ev == NULL) return NULL;
  for (p = 0; p < 3; p++) {
    ev->head[p] = NULL;
    ev->tail[p] = &ev->head[p];
  }
  ev->gates = NULL;
  ev->in_before = 0;
  memcpy(ev->name, name, len + 1);
  ev->next = r->events;
  r->events = ev;
  return ev;
}

static tw__trigger *tw__trigger_pop(tw__event *ev, int phase) {
  tw__trigger *t = ev->head[phase];
  if (t == NULL) return NULL;
  ev->head[phase] = t->next;
  if (ev->head[phase] == NULL) ev->tail[phase] = &ev->head[phase];
  return t;
}

static void tw__trigger_drop(tw__trigger *t) {
  if (t->arg_free != NULL) t->arg_free(t->arg);
  tw__free(t);
}

static int tw__add_trigger(tw_reactor *r, tw_phase phase,
                           const char *event_type, tw_result_fn fn, void *arg,
                           tw_free_fn arg_free, tw_trigger_id *id) {
  tw__event *ev;
  tw__trigger *t;
  if (phase != TW_PHASE_BEFORE && phase != TW_PHASE_DURING &&
      phase != TW_PHASE_AFTER)
    return TW_EINVAL;
  t = tw__malloc(sizeof(*t));
  if (t == NULL) return TW_ENOMEM;
  ev = tw__event_get(r, event_type);
  if (ev == NULL) {
    tw__free(t);
    return TW_ENOMEM;
  }
  t->next = NULL;
  t->id = r->next_trigger_id++;
  t->fn = fn;
  t->arg = arg;
  t->arg_free = arg_free;
  *ev->tail[phase] = t;
  ev->tail[phase] = &t->next;
  if (id != NULL) *id = t->id;
  return 0;
}

int tw__reactor_add_internal_trigger(tw_reactor *r, tw_phase phase,
                                     const char *event_type, tw_result_fn fn) {
  return tw__add_trigger(r, phase, event_type, fn, r, NULL, NULL);
}

int tw_reactor_add_system_event_trigger(tw_reactor *r, tw_phase phase,
                                        const char *event_type,
                                        tw_result_fn fn, void *arg,
                                        tw_free_fn arg_free,
                                        tw_trigger_id *id) {
  if (id != NULL) *id = 0;
  if (r == NULL || event_type == NULL || fn == NULL) return TW_EINVAL;
  TW__LOOP_ONLY(r, TW_EWRONGTHREAD);
  if (r->closing) return TW_EINVAL;
  return tw__add_trigger(r, phase, event_type, fn, arg, arg_free, id);
}

int tw_reactor_remove_system_event_trigger(tw_reactor *r, tw_trigger_id id) {
  tw__event *ev;
  int p;
  if (r == NULL || id == 0) return id == 0 && r != NULL ? TW_ENOENT : TW_EINVAL;
  TW__LOOP_ONLY(r, TW_EWRONGTHREAD);
  for (ev = r->events; ev != NULL; ev = ev->next) {
    for (p = 0; p < 3; p++) {
      tw__trigger **link;
      for (link = &ev->head[p]; *link != NULL; link = &(*link)->next) {
        tw__trigger *t = *link;
        if (t->id != id) continue;
        *link = t->next;
        if (ev->tail[p] == &t->next) ev->tail[p] = link;
        tw__trigger_drop(t);
        return 0;
      }
    }
  }
  return TW_ENOENT;
}

int tw_reactor_call_when_running(tw_reactor *r, tw_result_fn fn, void *arg,
                                 tw_free_fn arg_free, tw_trigger_id *id) {
  if (id != NULL) *id = 0;
  if (r == NULL || fn == NULL) return TW_EINVAL;
  TW__LOOP_ONLY(r, TW_EWRONGTHREAD);
  if (r->running) {
    tw_result res = fn(arg);
    if (arg_free != NULL) arg_free(arg);
    tw__trigger_result(r, NULL, TW_PHASE_AFTER, res);
    return 0;
  }
  return tw_reactor_add_system_event_trigger(r, TW_PHASE_AFTER, "startup", fn,
                                             arg, arg_free, id);
}

/* ---- firing ------------------------------------------------------------- */

static void tw__event_continue(tw_reactor *r, tw__event *ev);

static void tw__before_wait_unlink(tw__before_wait *g) {
  tw__before_wait **link;
  if (g->r == NULL) return;
  for (link = &g->ev->gates; *link != NULL; link = &(*link)->next) {
    if (*link == g) {
      *link = g->next;
      break;
    }
  }
}

/* A before-trigger's Deferred fired (either way): pass its result on. */
static tw_result tw__before_wait_fired(tw_result result, void *arg) {
  tw__before_wait *g = arg;
  tw_reactor *r = g->r;
  tw__event *ev = g->ev;
  if (r == NULL) return result;
  tw__before_wait_unlink(g);
  g->r = NULL;
  /* Twisted leaves the before-Deferred's result alone: a failure stays
   * unhandled and is reported when that Deferred goes away. */
  /* As Twisted's DeferredList, built only after every before trigger ran:
   * a before-Deferred fired by a later before trigger releases nothing. */
  if (ev->gates == NULL && !ev->in_before) tw__event_continue(r, ev);
  return result;
}

static void tw__before_wait_free(void *arg) {
  tw__before_wait *g = arg;
  tw_reactor *r = g->r;
  tw__event *ev = g->ev;
  if (r != NULL) {
    /* Dropped unfired (nothing held it): it can never release the event.
     * Twisted would wait for ever; go on, and say why. */
    tw__before_wait_unlink(g);
    g->r = NULL;
    tw__log_at(TW_LOG_WARN, NULL, NULL, 0,
               "a Deferred returned by a before-%s trigger was freed "
               "without firing; continuing the event",
               ev->name);
    if (ev->gates == NULL && !ev->in_before) tw__event_continue(r, ev);
  }
  tw__free(g);
}

/*
 * What a trigger returned. Only a before trigger's Deferred matters: the
 * during phase waits for it. Everything else is released (a failure logged).
 */
static void tw__trigger_result(tw_reactor *r, tw__event *ev, int phase,
                               tw_result res) {
  tw_deferred *d;
  tw__before_wait *g;
  if (res.kind == TW_RESULT_FAILURE) {
    tw__log_at(TW_LOG_ERROR, res.u.failure, NULL, 0,
               "While calling system event trigger handler");
    tw_failure_unref(res.u.failure);
    return;
  }
  if (res.kind != TW_RESULT_DEFERRED || phase != TW_PHASE_BEFORE ||
      res.u.deferred == NULL || tw_deferred_called(res.u.deferred) == 1) {
    tw_result_release(res);
    return;
  }
  d = res.u.deferred;
  g = tw__malloc(sizeof(*g));
  if (g == NULL) {
    /* Cannot wait for it: better to go on than to hang the event. */
    tw__log_at(TW_LOG_ERROR, &tw__failure_oom, NULL, 0,
               "cannot wait for a before-trigger Deferred");
    tw_deferred_unref(d);
    return;
  }
  g->r = r;
  g->ev = ev;
  g->next = ev->gates;
  ev->gates = g;
  if (tw_deferred_add_callbacks_full(d, tw__before_wait_fired, tw__before_wait_fired, g,
                                     tw__before_wait_free) != 0) {
    tw__before_wait_unlink(g);
    tw__free(g);
    tw__log_at(TW_LOG_ERROR, &tw__failure_oom, NULL, 0,
               "cannot wait for a before-trigger Deferred");
  }
  tw_deferred_unref(d);
}

static void tw__run_phase(tw_reactor *r, tw__event *ev, int phase) {
  tw__trigger *t;
  while ((t = tw__trigger_pop(ev, phase)) != NULL) {
    tw_result res = t->fn(t->arg);
    tw__trigger_drop(t);
    tw__trigger_result(r, ev, phase, res);
  }
}

static void tw__event_continue(tw_reactor *r, tw__event *ev) {
  tw__run_phase(r, ev, TW_PHASE_DURING);
  tw__run_phase(r, ev, TW_PHASE_AFTER);
  if (strcmp(ev->name, "shutdown") == 0) tw__reactor_shutdown_done(r);
}

static void tw__event_fire(tw_reactor *r, tw__event *ev) {
  ev->in_before++;
  tw__run_phase(r, ev, TW_PHASE_BEFORE);
  ev->in_before--;
  if (ev->gates == NULL) tw__event_continue(r, ev);
}

void tw__reactor_fire(tw_reactor *r, const char *event_type) {
  tw__event *ev = tw__event_find(r, event_type);
  if (ev != NULL)
    tw__event_fire(r, ev);
  else if (strcmp(event_type, "shutdown") == 0)
    tw__reactor_shutdown_done(r);
}

int tw_reactor_fire_system_event(tw_reactor *r, const char *event_type) {
  if (r == NULL || event_type == NULL) return TW_EINVAL;
  TW__LOOP_ONLY(r, TW_EWRONGTHREAD);
  if (r->closing) return TW_EINVAL;
  tw__reactor_fire(r, event_type);
  return 0;
}

void tw__reactor_destroy_events(tw_reactor *r) {
  tw__event *ev;
  while ((ev = r->events) != NULL) {
    int p;
    r->events = ev->next;
    for (p = 0; p < 3; p++) {
      tw__trigger *t;
      while ((t = tw__trigger_pop(ev, p)) != NULL) tw__trigger_drop(t);
    }
    /* Pending gates stay with their Deferreds; make them inert. */
    while (ev->gates != NULL) {
      tw__before_wait *g = ev->gates;
      ev->gates = g->next;
      g->r = NULL;
    }
    tw__free(ev);
  }
}
