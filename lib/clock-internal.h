/*
 * lib/clock-internal.h - the timer heap behind every tw_clock.
 *
 * One binary min-heap of delayed calls ordered by (time, seq) serves both the
 * manual clock and the reactor (which embeds a tw_clock and drives it from a
 * single uv_timer_t). seq orders equal deadlines as task.Clock does (see
 * tw__clock_settle in clock.c): creation order, except for calls moved by
 * reset/delay.
 */
#ifndef TWUV_CLOCK_INTERNAL_H
#define TWUV_CLOCK_INTERNAL_H

#include "internal.h"

typedef struct tw__clock_ops {
  /* The current time in seconds. */
  double (*now)(tw_clock *clock);
  /* 0, or an error code when the caller may not use the clock now
   * (TW_EWRONGTHREAD). May be NULL. */
  int (*check)(tw_clock *clock);
  /* The earliest deadline may have changed (a call was added, removed or
   * moved while no pass was running). May be NULL. */
  void (*changed)(tw_clock *clock);
} tw__clock_ops;

/*
 * A heap slot carries the deadline next to the call, so that sifting compares
 * keys in one contiguous array instead of chasing a pointer per comparison.
 */
typedef struct tw__heap_entry {
  double time;
  tw_delayed_call *dc;
} tw__heap_entry;

/* A call moved by reset/delay since the last settle, and its time then. */
typedef struct tw__dirty_entry {
  double old_time;
  tw_delayed_call *dc;
} tw__dirty_entry;

struct tw_clock {
  const tw__clock_ops *ops; /* NULL for the manual clock */
  tw__heap_entry *heap;
  uint32_t len;
  uint32_t cap;
  uint32_t cancelled; /* cancelled calls still in the heap (removed lazily) */
  uint32_t next_seq;  /* seq of the next call at the back of its time */
  uint32_t low_seq;   /* seq of the next call at the front (counts down) */
  uint32_t next_born; /* creation counter (the reactor's pass limit) */
  tw__dirty_entry *dirty; /* moved calls not yet settled */
  uint32_t ndirty;
  uint32_t dirty_cap;
  int running;      /* inside tw__clock_run_due: changed() is not called */
  int dying;        /* being destroyed: call_later is refused */
  int advancing;    /* manual clock: inside tw_clock_advance / pump */
  int free_pending; /* manual clock: tw_clock_free called while advancing */
  double manual_now; /* the manual clock's time */
};

enum { TW__DC_PENDING = 0, TW__DC_CALLED = 1, TW__DC_CANCELLED = 2 };

/*
 * 48 bytes on LP64; with its 16-byte heap slot a pending call costs 64 bytes
 * of twuv memory. To get there: while the call is pending its deadline lives
 * only in the heap slot, and once it is not, in the place fn occupied (fn is
 * no longer needed then); refs and state share a word.
 */
struct tw_delayed_call {
  tw_clock *clock; /* NULL once no longer pending */
  union {
    tw_call_fn fn;    /* while pending */
    double time;      /* once called or cancelled */
  } u;
  void *arg;
  tw_free_fn arg_free;
  uint32_t seq;   /* order among equal deadlines; compared with wrap-around */
  uint32_t index; /* heap slot while pending */
  uint32_t born;  /* creation order (tw__clock_run_due's only_older) */
  uint32_t refs : 23;
  uint32_t dirty : 1; /* in clock->dirty */
  uint32_t state : 8;
};

/* A delay, interval or timeout twuv accepts: finite and not negative. */
static inline int tw__valid_delay(double d) {
  return d >= 0.0 && d <= 1.7976931348623157e308; /* false for NaN, inf */
}

/* Set up / tear down a clock embedded in another object (the reactor). */
void tw__clock_init(tw_clock *clock, const tw__clock_ops *ops);
/* Drop every pending call: state cancelled, arg_free run, heap refs released. */
void tw__clock_destroy(tw_clock *clock);

/* The earliest pending deadline, or +INFINITY when nothing is pending. */
double tw__clock_next_deadline(tw_clock *clock);

/*
 * Run the calls due at `now`, in order. With only_older set, calls created
 * after this pass began are left for the next pass (the reactor's rule);
 * without it, anything due runs, including calls made during the pass (the
 * manual clock's rule). Returns the number of calls run.
 */
int tw__clock_run_due(tw_clock *clock, double now, int only_older);

#endif
