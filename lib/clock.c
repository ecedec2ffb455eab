/*
 * lib/clock.c - delayed calls on a binary heap, and the manual clock
 * (clock.h).
 */
#include "clock-internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TW__DC_MAX_REFS ((1u << 23) - 1)

/* The per-call memory budget (issue: <= 64 bytes per pending call). */
_Static_assert(sizeof(void *) != 8 || sizeof(struct tw_delayed_call) +
                                              sizeof(tw__heap_entry) <=
                                          64,
               "a pending delayed call must cost at most 64 bytes");

/* seq order, wrap-safe (live seqs span less than 2^31). */
static int tw__seq_before(uint32_t a, uint32_t b) {
  return (int32_t)(a - b) < 0;
}

/* Earlier deadline first; equal deadlines in seq order. */
static int tw__entry_before(const tw__heap_entry *a, const tw__heap_entry *b) {
  if (a->time != b->time) return a->time < b->time;
  return tw__seq_before(a->dc->seq, b->dc->seq);
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
  c->low_seq = UINT32_MAX; /* just below the first next_seq, 0 */
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

/* ---- the order of equal deadlines (task.Clock's) ----------------------------
 *
 * task.Clock keeps its calls in a list that it stable-sorts by time on every
 * callLater and before and after each call advance runs; reset and delay
 * change a call's time without sorting. So calls due at the same time run in
 * the list's order, which is what the last sort made of it: a call moved
 * since then goes behind every call that was at its new time if it moved
 * sooner (it was after them), in front of them if it moved later (it was
 * before them), and calls moved onto the same time keep their order from
 * that sort. Twisted 22.4, A = callLater(2); B = callLater(1); A.reset(1):
 * B runs first.
 *
 * twuv keeps (time, seq) order in its heap and reproduces that: a moved call
 * is recorded as dirty with its time at the last "sort" (it keeps its seq
 * meanwhile), and at the points where task.Clock sorts - call_later, and
 * before each call of a run - tw__clock_settle gives every dirty call a new
 * seq: from low_seq, counting down, if it moved later (in front of every
 * call at its time), from next_seq, counting up, if it moved sooner (behind
 * them), in their old order. The reactor's clock uses the same rule (its
 * passes are the sorts): Twisted's reactor heap promises no order for equal
 * deadlines, and a program tested on a manual clock then behaves the same.
 * The dirty list holds a reference to each call, so a cancelled call in it
 * is simply skipped. Cost when nothing was moved: one test per call_later
 * and per call run. Measured with callgrind on bench_call_later (clang
 * -O3): tw_clock_call_later went from 96 to 111 instructions per call (this
 * test, the creation counter `born` and the overflow check together), a
 * call run by tw__clock_run_due +1; the whole benchmark +0.8%.
 */

static int tw__dirty_cmp(const void *a, const void *b) {
  const tw__dirty_entry *x = a, *y = b;
  if (x->old_time != y->old_time) return x->old_time < y->old_time ? -1 : 1;
  if (x->dc->seq == y->dc->seq) return 0;
  return tw__seq_before(x->dc->seq, y->dc->seq) ? -1 : 1;
}

/* The new seq of a pending call moved from old_time, in the settle order. */
static void tw__settle_assign(tw_clock *c, tw__dirty_entry *d, uint32_t n,
                              int fix_heap) {
  uint32_t i;
  /* In front: the earliest (old_time, seq) gets the lowest seq. */
  for (i = n; i-- > 0;) {
    tw_delayed_call *dc = d[i].dc;
    if (c->heap[dc->index].time > d[i].old_time) {
      dc->seq = c->low_seq--;
      if (fix_heap) tw__heap_fix(c, dc->index);
    }
  }
  for (i = 0; i < n; i++) {
    tw_delayed_call *dc = d[i].dc;
    if (c->heap[dc->index].time < d[i].old_time) {
      dc->seq = c->next_seq++;
      if (fix_heap) tw__heap_fix(c, dc->index);
    }
  }
}

/* Drop the dirty entries of calls no longer pending; sort the rest. */
static uint32_t tw__dirty_prepare(tw_clock *c) {
  uint32_t i, n = 0;
  for (i = 0; i < c->ndirty; i++) {
    tw__dirty_entry e = c->dirty[i];
    if (e.dc->state == TW__DC_PENDING) {
      c->dirty[n++] = e;
    } else {
      e.dc->dirty = 0;
      tw_delayed_call_unref(e.dc); /* the list's reference */
    }
  }
  c->ndirty = n;
  if (n > 1) qsort(c->dirty, n, sizeof(*c->dirty), tw__dirty_cmp);
  return n;
}

static void tw__clock_settle_slow(tw_clock *c) {
  uint32_t i, n = tw__dirty_prepare(c);
  tw__settle_assign(c, c->dirty, n, 1);
  for (i = 0; i < n; i++) {
    c->dirty[i].dc->dirty = 0;
    tw_delayed_call_unref(c->dirty[i].dc);
  }
  c->ndirty = 0;
}

/* A macro, not an inline function: clang -O3 outlined that (with the slow
 * path inlined into it), a call per call_later and per call run. */
#define tw__clock_settle(c)                          \
  do {                                               \
    if ((c)->ndirty != 0) tw__clock_settle_slow(c); \
  } while (0)

/* dc (pending, not dirty) moves from old_time to new_time. */
static void tw__clock_mark_dirty(tw_clock *c, tw_delayed_call *dc,
                                 double old_time, double new_time) {
  if (c->ndirty == c->dirty_cap || dc->refs == TW__DC_MAX_REFS) {
    uint32_t cap = c->dirty_cap ? c->dirty_cap * 2 : 8;
    tw__dirty_entry *d = NULL;
    if (dc->refs != TW__DC_MAX_REFS && cap > c->dirty_cap)
      d = tw__realloc(c->dirty, (size_t)cap * sizeof(*d));
    if (d == NULL) {
      /* Out of memory: place it now, as if task.Clock sorted right after
       * this move (the order differs from task.Clock's only if the call
       * moves again, or another moves onto its time, before the next
       * sort). The caller fixes the heap. */
      if (new_time < old_time)
        dc->seq = c->next_seq++;
      else
        dc->seq = c->low_seq--;
      return;
    }
    c->dirty = d;
    c->dirty_cap = cap;
  }
  c->dirty[c->ndirty].old_time = old_time;
  c->dirty[c->ndirty].dc = dc;
  c->ndirty++;
  dc->dirty = 1;
  dc->refs++;
}

void tw__clock_destroy(tw_clock *c) {
  tw__heap_entry *heap = c->heap;
  uint32_t i, len = c->len;
  for (i = 0; i < c->ndirty; i++) {
    c->dirty[i].dc->dirty = 0;
    tw_delayed_call_unref(c->dirty[i].dc); /* the list's reference */
  }
  tw__free(c->dirty);
  c->dirty = NULL;
  c->ndirty = c->dirty_cap = 0;
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
  uint32_t limit = c->next_born;
  int count = 0;
  int was_running = c->running;
  c->running = 1;
  /* task.Clock sorts before each call it runs. */
  for (;;) {
    tw_delayed_call *dc;
    tw_call_fn fn;
    tw__clock_settle(c);
    tw__clock_purge_top(c);
    if (c->len == 0) break;
    dc = c->heap[0].dc;
    if (c->heap[0].time > now) break;
    if (only_older && !tw__seq_before(dc->born, limit)) break;
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
  double time;
  int err;
  if (out != NULL) *out = NULL;
  if (c == NULL || fn == NULL || !tw__valid_delay(delay)) return TW_EINVAL;
  if ((err = tw__clock_check(c)) != 0) return err;
  if (c->dying) return TW_ESHUTDOWN;
  time = tw__clock_now(c) + delay;
  if (!isfinite(time)) return TW_EINVAL; /* overflow: never due */
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
  /* task.Clock appends, then sorts: moved calls settle first. */
  tw__clock_settle(c);
  dc->seq = c->next_seq++;
  dc->born = c->next_born++;
  dc->refs = out != NULL ? 2 : 1; /* the heap's, and the caller's */
  dc->dirty = 0;
  dc->state = TW__DC_PENDING;
  c->heap[c->len].time = time;
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
  if (c == NULL || c->ops != NULL || c->free_pending) return;
  tw__clock_destroy(c);
  /* From inside one of its own calls: the run loop of the advance (or
   * pump) below us still reads the clock; the outermost one frees it. */
  if (c->advancing > 0)
    c->free_pending = 1;
  else
    tw__free(c);
}

/* The outermost advance/pump of a clock freed meanwhile frees it. */
static void tw__clock_advance_done(tw_clock *c) {
  if (--c->advancing == 0 && c->free_pending) tw__free(c);
}

int tw_clock_advance(tw_clock *c, double amount) {
  int count;
  if (c == NULL || c->ops != NULL || !tw__valid_delay(amount))
    return TW_EINVAL;
  if (c->dying) return TW_ESHUTDOWN; /* freed from a call of this advance */
  /* Time stays finite: past DBL_MAX nothing could ever be due again. */
  if (!isfinite(c->manual_now + amount)) return TW_EINVAL;
  c->manual_now += amount;
  c->advancing++;
  count = tw__clock_run_due(c, c->manual_now, 0);
  tw__clock_advance_done(c);
  return count;
}

int tw_clock_pump(tw_clock *c, const double *timings, size_t n) {
  size_t i;
  int total = 0;
  double now;
  if (c == NULL || c->ops != NULL || (timings == NULL && n > 0))
    return TW_EINVAL;
  if (c->dying) return TW_ESHUTDOWN;
  now = c->manual_now;
  for (i = 0; i < n; i++) {
    if (!tw__valid_delay(timings[i])) return TW_EINVAL;
    now += timings[i];
    if (!isfinite(now)) return TW_EINVAL;
  }
  c->advancing++;
  for (i = 0; i < n; i++) {
    /* A call may free the clock, or advance it itself (past DBL_MAX). */
    int count = tw_clock_advance(c, timings[i]);
    if (count < 0) break;
    total += count;
  }
  tw__clock_advance_done(c);
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
  if (all != NULL && c->ndirty != 0) {
    /* The order the next settle will make, without making it (task.Clock's
     * getDelayedCalls does not sort either): give the moved calls their
     * new seqs for the sort below, then take them back. */
    uint32_t j, low = c->low_seq, next = c->next_seq;
    uint32_t nd = tw__dirty_prepare(c);
    uint32_t *saved = tw__malloc((nd ? nd : 1) * sizeof(*saved));
    if (saved == NULL) {
      tw__free(all);
      all = NULL;
    } else {
      for (j = 0; j < nd; j++) saved[j] = c->dirty[j].dc->seq;
      tw__settle_assign(c, c->dirty, nd, 0);
      for (i = 0; i < c->len; i++)
        if (c->heap[i].dc->state != TW__DC_CANCELLED) all[live++] = c->heap[i];
      qsort(all, live, sizeof(*all), tw__entry_cmp);
      for (j = 0; j < nd; j++) c->dirty[j].dc->seq = saved[j];
      c->low_seq = low;
      c->next_seq = next;
      tw__free(saved);
      for (i = 0; i < n; i++) out[i] = all[i].dc;
      tw__free(all);
      return pending;
    }
  }
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
  double old_time = c->heap[dc->index].time;
  if (!dc->dirty && time != old_time)
    tw__clock_mark_dirty(c, dc, old_time, time);
  c->heap[dc->index].time = time;
  tw__heap_fix(c, dc->index);
  if (was_top || dc->index == 0) tw__clock_changed(c);
}

int tw_delayed_call_reset(tw_delayed_call *dc, double seconds_from_now) {
  int err = tw__dc_check(dc);
  double time;
  if (err != 0) return err;
  if (!tw__valid_delay(seconds_from_now)) return TW_EINVAL;
  time = tw__clock_now(dc->clock) + seconds_from_now;
  if (!isfinite(time)) return TW_EINVAL; /* overflow: never due */
  tw__dc_move(dc, time);
  return 0;
}

int tw_delayed_call_delay(tw_delayed_call *dc, double seconds_later) {
  int err = tw__dc_check(dc);
  double time;
  if (err != 0) return err;
  if (!isfinite(seconds_later)) return TW_EINVAL;
  time = tw_delayed_call_get_time(dc) + seconds_later;
  if (!isfinite(time)) return TW_EINVAL; /* overflow: never due */
  tw__dc_move(dc, time);
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
