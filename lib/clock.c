/*
 * lib/clock.c - delayed calls on a binary heap, and the manual clock
 * (clock.h).
 */
#include "clock-internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TW__DC_MAX_REFS ((1u << 24) - 1)

/* The per-call memory budget (issue: <= 64 bytes per pending call). */
_Static_assert(sizeof(void *) != 8 || sizeof(struct tw_delayed_call) +
                                              sizeof(tw__heap_entry) <=
                                          64,
               "a pending delayed call must cost at most 64 bytes");

/* Earlier deadline first; equal deadlines in creation order (wrap-safe). */
static int tw__entry_before(const tw__heap_entry *a, const tw__heap_entry *b) {
  if (a->time != b->time) return a->time < b->time;
  return (int32_t)(a->dc->seq - b->dc->seq) < 0;
}

static void tw__heap_set(tw_clock *c, uint32_t i, tw__heap_entry e) {
  c->heap[i] = e;
  e.dc->index = i;
}

static void tw__heap_up(tw_clock *c, uint32_t i) {
  tw__heap_entry e = c->heap[i];
  while (i > 0) {
    uint32_t parent = (i - 1) / 2;
    if (!tw__entry_before(&e, &c->heap[parent])) break;
    tw__heap_set(c, i, c->heap[parent]);
    i = parent;
  }
  tw__heap_set(c, i, e);
}

static void tw__heap_down(tw_clock *c, uint32_t i) {
  tw__heap_entry e = c->heap[i];
  for (;;) {
    uint32_t child = 2 * i + 1;
    if (child >= c->len) break;
    if (child + 1 < c->len &&
        tw__entry_before(&c->heap[child + 1], &c->heap[child]))
      child++;
    if (!tw__entry_before(&c->heap[child], &e)) break;
    tw__heap_set(c, i, c->heap[child]);
    i = child;
  }
  tw__heap_set(c, i, e);
}

/* Restore the heap property around slot i after its time changed. */
static void tw__heap_fix(tw_clock *c, uint32_t i) {
  if (i > 0 && tw__entry_before(&c->heap[i], &c->heap[(i - 1) / 2]))
    tw__heap_up(c, i);
  else
    tw__heap_down(c, i);
}

/* Remove slot i; returns its deadline. */
static double tw__heap_remove(tw_clock *c, uint32_t i) {
  double time = c->heap[i].time;
  tw__heap_entry last = c->heap[--c->len];
  if (i != c->len) {
    tw__heap_set(c, i, last);
    tw__heap_fix(c, i);
  }
  return time;
}

static void tw__clock_changed(tw_clock *c) {
  if (!c->running && c->ops != NULL && c->ops->changed != NULL)
    c->ops->changed(c);
}

static int tw__clock_check(tw_clock *c) {
  if (c->ops != NULL && c->ops->check != NULL) return c->ops->check(c);
  return 0;
}

static double tw__clock_now(tw_clock *c) {
  return c->ops != NULL ? c->ops->now(c) : c->manual_now;
}

void tw__clock_init(tw_clock *c, const tw__clock_ops *ops) {
  memset(c, 0, sizeof(*c));
  c->ops = ops;
}

/* The call is no longer pending (its deadline is in u.time): drop the
 * user's data now, as Twisted drops func/args on cancel. */
static void tw__dc_release_arg(tw_delayed_call *dc) {
  tw_free_fn arg_free = dc->arg_free;
  void *arg = dc->arg;
  dc->clock = NULL;
  dc->arg = NULL;
  dc->arg_free = NULL;
  if (arg_free != NULL) arg_free(arg);
}

void tw__clock_destroy(tw_clock *c) {
  tw__heap_entry *heap = c->heap;
  uint32_t i, len = c->len;
  c->heap = NULL;
  c->len = c->cap = c->cancelled = 0;
  c->dying = 1; /* an arg_free below may try to schedule: refused */
  /* Every call stops being pending before any arg_free runs: an arg_free
   * commonly cancels a sibling call (an object owning two timers), which
   * must then find it already cancelled, not a heap that is gone. */
  for (i = 0; i < len; i++) {
    tw_delayed_call *dc = heap[i].dc;
    if (dc->state == TW__DC_PENDING) {
      dc->state = TW__DC_CANCELLED;
      dc->u.time = heap[i].time;
      dc->clock = NULL;
    } else {
      heap[i].dc = NULL; /* cancelled earlier: arg already released */
      tw_delayed_call_unref(dc);
    }
  }
  for (i = 0; i < len; i++) {
    tw_delayed_call *dc = heap[i].dc;
    if (dc == NULL) continue;
    tw__dc_release_arg(dc);
    tw_delayed_call_unref(dc);
  }
  tw__free(heap);
}

/*
 * Cancelled calls stay in the heap and are dropped when they reach the top,
 * as Twisted's reactor does, so that cancel is O(1) instead of a sift
 * through the heap. When they make up over half of it, rebuild the heap
 * without them: O(n), so cancelling stays O(1) amortised and the heap never
 * holds more than twice the pending calls.
 */
static void tw__clock_compact(tw_clock *c) {
  uint32_t i, j = 0;
  for (i = 0; i < c->len; i++) {
    tw__heap_entry e = c->heap[i];
    if (e.dc->state == TW__DC_CANCELLED) {
      tw_delayed_call_unref(e.dc);
    } else {
      e.dc->index = j;
      c->heap[j++] = e;
    }
  }
  c->len = j;
  c->cancelled = 0;
  for (i = j / 2; i-- > 0;) tw__heap_down(c, i);
}

/* Drop cancelled calls from the top of the heap. */
static void tw__clock_purge_top(tw_clock *c) {
  while (c->len > 0 && c->heap[0].dc->state == TW__DC_CANCELLED) {
    tw_delayed_call *dc = c->heap[0].dc;
    tw__heap_remove(c, 0);
    c->cancelled--;
    tw_delayed_call_unref(dc);
  }
}

double tw__clock_next_deadline(tw_clock *c) {
  tw__clock_purge_top(c);
  return c->len > 0 ? c->heap[0].time : INFINITY;
}

int tw__clock_run_due(tw_clock *c, double now, int only_older) {
  uint32_t limit = c->next_seq;
  int count = 0;
  int was_running = c->running;
  c->running = 1;
  while (tw__clock_purge_top(c), c->len > 0) {
    tw_delayed_call *dc = c->heap[0].dc;
    tw_call_fn fn;
    if (c->heap[0].time > now) break;
    if (only_older && (int32_t)(dc->seq - limit) >= 0) break;
    fn = dc->u.fn;
    dc->u.time = tw__heap_remove(c, 0);
    /* Twisted sets `called` before invoking, so active() is false and
     * cancel() says AlreadyCalled from inside the call itself. */
    dc->state = TW__DC_CALLED;
    fn(dc->arg);
    tw__dc_release_arg(dc);
    tw_delayed_call_unref(dc); /* the heap's reference */
    count++;
  }
  c->running = was_running;
  return count;
}

int tw_clock_call_later(tw_clock *c, double delay, tw_call_fn fn, void *arg,
                        tw_free_fn arg_free, tw_delayed_call **out) {
  tw_delayed_call *dc;
  int err;
  if (out != NULL) *out = NULL;
  if (c == NULL || fn == NULL || !tw__valid_delay(delay)) return TW_EINVAL;
  if ((err = tw__clock_check(c)) != 0) return err;
  if (c->dying) return TW_ESHUTDOWN;
  if (c->len == c->cap) {
    uint32_t cap = c->cap ? c->cap * 2 : 16;
    tw__heap_entry *heap;
    if (cap < c->cap) return TW_ENOMEM; /* 2^32 pending calls */
    heap = tw__realloc(c->heap, (size_t)cap * sizeof(*heap));
    if (heap == NULL) return TW_ENOMEM;
    c->heap = heap;
    c->cap = cap;
  }
  dc = tw__malloc(sizeof(*dc));
  if (dc == NULL) return TW_ENOMEM;
  dc->clock = c;
  dc->u.fn = fn;
  dc->arg = arg;
  dc->arg_free = arg_free;
  dc->seq = c->next_seq++;
  dc->refs = out != NULL ? 2 : 1; /* the heap's, and the caller's */
  dc->state = TW__DC_PENDING;
  c->heap[c->len].time = tw__clock_now(c) + delay;
  c->heap[c->len].dc = dc;
  dc->index = c->len++;
  tw__heap_up(c, dc->index);
  if (dc->index == 0) tw__clock_changed(c);
  if (out != NULL) *out = dc;
  return 0;
}

double tw_clock_seconds(tw_clock *c) {
  return c != NULL ? tw__clock_now(c) : NAN;
}

tw_clock *tw_clock_new_manual(void) {
  tw_clock *c = tw__malloc(sizeof(*c));
  if (c != NULL) tw__clock_init(c, NULL);
  return c;
}

void tw_clock_free(tw_clock *c) {
  if (c == NULL || c->ops != NULL) return;
  tw__clock_destroy(c);
  tw__free(c);
}

int tw_clock_advance(tw_clock *c, double amount) {
  if (c == NULL || c->ops != NULL || !tw__valid_delay(amount))
    return TW_EINVAL;
  c->manual_now += amount;
  return tw__clock_run_due(c, c->manual_now, 0);
}

int tw_clock_pump(tw_clock *c, const double *timings, size_t n) {
  size_t i;
  int total = 0;
  if (c == NULL || c->ops != NULL || (timings == NULL && n > 0))
    return TW_EINVAL;
  for (i = 0; i < n; i++)
    if (!tw__valid_delay(timings[i])) return TW_EINVAL;
  for (i = 0; i < n; i++) total += tw_clock_advance(c, timings[i]);
  return total;
}

size_t tw_clock_pending(tw_clock *c) {
  return c != NULL ? c->len - c->cancelled : 0;
}

static int tw__entry_cmp(const void *a, const void *b) {
  const tw__heap_entry *x = a, *y = b;
  return tw__entry_before(x, y) ? -1 : tw__entry_before(y, x) ? 1 : 0;
}

size_t tw_clock_get_delayed_calls(tw_clock *c, tw_delayed_call **out,
                                  size_t n) {
  tw__heap_entry *all;
  size_t i, live = 0, pending;
  if (c == NULL) return 0;
  pending = c->len - c->cancelled;
  if (out == NULL || n == 0) return pending;
  if (n > pending) n = pending;
  all = tw__malloc(c->len * sizeof(*all));
  if (all == NULL) {
    /* Out of memory: settle for heap order (the first is still the
     * earliest) rather than fail. */
    tw__clock_purge_top(c);
    for (i = 0; i < c->len && live < n; i++)
      if (c->heap[i].dc->state != TW__DC_CANCELLED) out[live++] = c->heap[i].dc;
    return pending;
  }
  for (i = 0; i < c->len; i++)
    if (c->heap[i].dc->state != TW__DC_CANCELLED) all[live++] = c->heap[i];
  qsort(all, live, sizeof(*all), tw__entry_cmp);
  for (i = 0; i < n; i++) out[i] = all[i].dc;
  tw__free(all);
  return pending;
}

/* ---- delayed calls ------------------------------------------------------ */

tw_delayed_call *tw_delayed_call_ref(tw_delayed_call *dc) {
  if (dc == NULL || dc->refs == TW__DC_MAX_REFS) return NULL;
  dc->refs++;
  return dc;
}

void tw_delayed_call_unref(tw_delayed_call *dc) {
  if (dc == NULL) return;
  if (--dc->refs == 0) tw__free(dc);
}

/* The shared checks of cancel/reset/delay, in Twisted's order. */
static int tw__dc_check(const tw_delayed_call *dc) {
  if (dc == NULL) return TW_EINVAL;
  if (dc->state == TW__DC_CANCELLED) return TW_EALREADYCANCELLED;
  if (dc->state == TW__DC_CALLED) return TW_EALREADYCALLED;
  return tw__clock_check(dc->clock);
}

int tw_delayed_call_cancel(tw_delayed_call *dc) {
  tw_clock *c;
  uint32_t i;
  int err = tw__dc_check(dc);
  if (err != 0) return err;
  c = dc->clock;
  i = dc->index;
  dc->state = TW__DC_CANCELLED;
  dc->u.time = c->heap[i].time;
  c->cancelled++;
  /* The heap keeps its reference until the entry leaves it. The earliest
   * deadline can only move later, which the reactor's timer tolerates. */
  tw__dc_release_arg(dc);
  if (c->heap != NULL && c->cancelled > 50 && c->cancelled > c->len / 2)
    tw__clock_compact(c);
  return 0;
}

static void tw__dc_move(tw_delayed_call *dc, double time) {
  tw_clock *c = dc->clock;
  int was_top = dc->index == 0;
  c->heap[dc->index].time = time;
  tw__heap_fix(c, dc->index);
  if (was_top || dc->index == 0) tw__clock_changed(c);
}

int tw_delayed_call_reset(tw_delayed_call *dc, double seconds_from_now) {
  int err = tw__dc_check(dc);
  if (err != 0) return err;
  if (!tw__valid_delay(seconds_from_now)) return TW_EINVAL;
  tw__dc_move(dc, tw__clock_now(dc->clock) + seconds_from_now);
  return 0;
}

int tw_delayed_call_delay(tw_delayed_call *dc, double seconds_later) {
  int err = tw__dc_check(dc);
  if (err != 0) return err;
  if (!isfinite(seconds_later)) return TW_EINVAL;
  tw__dc_move(dc, tw_delayed_call_get_time(dc) + seconds_later);
  return 0;
}

int tw_delayed_call_active(const tw_delayed_call *dc) {
  return dc != NULL && dc->state == TW__DC_PENDING;
}

int tw_delayed_call_called(const tw_delayed_call *dc) {
  return dc != NULL && dc->state == TW__DC_CALLED;
}

int tw_delayed_call_cancelled(const tw_delayed_call *dc) {
  return dc != NULL && dc->state == TW__DC_CANCELLED;
}

double tw_delayed_call_get_time(const tw_delayed_call *dc) {
  if (dc == NULL) return NAN;
  return dc->state == TW__DC_PENDING ? dc->clock->heap[dc->index].time
                                     : dc->u.time;
}

int tw_delayed_call_compare(const tw_delayed_call *a,
                            const tw_delayed_call *b) {
  double ta, tb;
  if (a == NULL || b == NULL) return (a != NULL) - (b != NULL);
  ta = tw_delayed_call_get_time(a);
  tb = tw_delayed_call_get_time(b);
  return (ta > tb) - (ta < tb);
}
