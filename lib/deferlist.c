/*
 * lib/deferlist.c - DeferredList, gatherResults and race (defer.h).
 *
 * References: the list Deferred owns the state (its canceller's argument);
 * each input's pending callback pair owns the state too; the state owns the
 * list Deferred while some input may still fire it (it is the list's
 * producer). The state points at its inputs without owning them: an input
 * that nothing else holds can never fire, so it is freed, its pair is
 * dropped, and the state forgets it. Nothing cycles, so a list that can no
 * longer fire is freed with the last outside reference.
 */
#include "defer-internal.h"

#include <stdint.h>
#include <string.h>

typedef struct tw__dl tw__dl;

typedef struct tw__dl_slot {
  tw__dl *dl;
  tw_deferred *input; /* weak; NULL once its pair ran or was dropped */
} tw__dl_slot;

struct tw__dl {
  size_t refs;
  tw_deferred *d;      /* the list's Deferred; owned while holds_d */
  int holds_d;
  int race;
  unsigned flags;
  size_t n;
  size_t finished;     /* inputs recorded */
  size_t pending;      /* input pairs not yet run or dropped */
  size_t nfailed;      /* race: failures recorded */
  size_t winner;       /* race: SIZE_MAX until one succeeds */
  tw_list_result *result; /* owned until delivered */
  tw__dl_slot slots[];
};

static void tw__list_result_free(void *p) {
  tw_list_result *res = p;
  size_t i;
  if (res == NULL) return;
  for (i = 0; i < res->count; i++) {
    tw_list_item *it = &res->items[i];
    if (it->succeeded == 1 && it->value_free != NULL) it->value_free(it->value);
    if (it->succeeded == 0) tw_failure_unref(it->failure);
  }
  tw__free(res);
}

static void tw__dl_unref(void *p) {
  tw__dl *st = p;
  if (--st->refs > 0) return;
  tw__list_result_free(st->result);
  tw__free(st);
}

/* The state stops being the list's producer. */
static void tw__dl_let_go(tw__dl *st) {
  if (st->holds_d) {
    st->holds_d = 0;
    tw_deferred_unref(st->d);
  }
}

/* Still able to fire the list (nobody else fired it)? */
static int tw__dl_open(tw__dl *st) {
  if (st->holds_d && tw_deferred_called(st->d) == 1) tw__dl_let_go(st);
  return st->holds_d;
}

/* Firing the list releases its hold on st (its canceller's argument):
 * keep st alive across it. */
static void tw__dl_fire_list(tw__dl *st) {
  tw_list_result *res = st->result;
  st->result = NULL;
  st->refs++;
  if (tw_deferred_callback(st->d, tw_result_value(res, tw__list_result_free)) !=
      0)
    tw__list_result_free(res);
  tw__dl_let_go(st);
  tw__dl_unref(st);
}

static void tw__dl_fire_failure(tw__dl *st, tw_failure *f) {
  st->refs++;
  if (tw_deferred_errback(st->d, f) != 0) tw_failure_unref(f);
  tw__dl_let_go(st);
  tw__dl_unref(st);
}

static void tw__dl_cancel_inputs(tw__dl *st, size_t except) {
  size_t i;
  for (i = 0; i < st->n; i++) {
    /* Re-read each time: cancelling one input may free another. */
    tw_deferred *in = st->slots[i].input;
    if (in == NULL || i == except) continue;
    tw_deferred_ref(in);
    tw_deferred_cancel(in);
    tw_deferred_unref(in);
  }
}

static void tw__dl_canceller(tw_deferred *d, void *arg) {
  (void)d;
  tw__dl_cancel_inputs(arg, SIZE_MAX);
}

static tw_result tw__race_step(tw__dl *st, size_t i, tw_result r) {
  tw_list_item *it;
  if (!tw__dl_open(st) || st->winner != SIZE_MAX) {
    /* A late result (even one from cancelling the losers): ignored. */
    tw_result_release(r);
    return tw_result_none();
  }
  it = &st->result->items[i];
  if (r.kind != TW_RESULT_FAILURE) {
    it->succeeded = 1;
    it->value = r.u.value;
    it->value_free = r.value_free;
    st->winner = i;
    st->result->index = i;
    tw__dl_cancel_inputs(st, i);
    tw__dl_fire_list(st);
  } else {
    it->succeeded = 0;
    it->failure = r.u.failure;
    if (++st->nfailed == st->n) {
      tw_failure *group[64], **fs = group;
      size_t k;
      if (st->n > 64) fs = tw__malloc(st->n * sizeof(*fs));
      if (fs == NULL) {
        tw__dl_fire_failure(st, tw_failure_from_code(TW_ENOMEM));
      } else {
        for (k = 0; k < st->n; k++)
          fs[k] = tw_failure_ref(st->result->items[k].failure);
        tw__dl_fire_failure(st, tw_failure_group(fs, st->n));
        if (fs != group) tw__free(fs);
      }
    }
  }
  return tw_result_none();
}

/* DeferredList._cbDeferred, and race's succeeded/failed. */
static tw_result tw__dl_input_done(tw_result r, void *arg) {
  tw__dl_slot *slot = arg;
  tw__dl *st = slot->dl;
  size_t i = (size_t)(slot - st->slots);
  int failed = r.kind == TW_RESULT_FAILURE;
  tw_list_item *it;
  slot->input = NULL;
  if (st->race) return tw__race_step(st, i, r);
  if (!tw__dl_open(st)) {
    /* The list has fired and its result is delivered: the input keeps
     * its result, except an error the list was told to consume. */
    if (failed && (st->flags & TW_DL_CONSUME_ERRORS)) {
      tw_result_release(r);
      return tw_result_none();
    }
    return r;
  }
  it = &st->result->items[i];
  st->finished++;
  if (!failed) {
    it->succeeded = 1;
    it->value = r.u.value;
    it->value_free = r.value_free;
    r = tw_result_none(); /* moved, as an inner Deferred's result is */
  } else {
    it->succeeded = 0;
    if (st->flags & TW_DL_CONSUME_ERRORS) {
      it->failure = r.u.failure;
      r = tw_result_none();
    } else {
      it->failure = tw_failure_ref(r.u.failure);
    }
  }
  if (!failed && (st->flags & TW_DL_FIRE_ON_ONE_CALLBACK)) {
    st->result->index = i;
    tw__dl_fire_list(st);
  } else if (failed && (st->flags & TW_DL_FIRE_ON_ONE_ERRBACK)) {
    tw__dl_fire_failure(
        st, tw_failure_first_error(tw_failure_ref(it->failure), i));
  } else if (st->finished == st->n) {
    tw__dl_fire_list(st);
  }
  return r;
}

static void tw__dl_input_gone(void *arg) {
  tw__dl_slot *slot = arg;
  tw__dl *st = slot->dl;
  slot->input = NULL;
  /* No input is left to fire the list: stop keeping it alive. */
  if (--st->pending == 0) tw__dl_let_go(st);
  tw__dl_unref(st);
}

static int tw__dl_new(tw_deferred **out, tw_deferred *const *ds, size_t n,
                      unsigned flags, int race) {
  tw__dl *st;
  tw_list_result *res;
  tw_deferred *d;
  size_t i;

  if (out != NULL) *out = NULL;
  if (out == NULL || (ds == NULL && n > 0) ||
      (flags & ~(unsigned)(TW_DL_FIRE_ON_ONE_CALLBACK |
                           TW_DL_FIRE_ON_ONE_ERRBACK | TW_DL_CONSUME_ERRORS)))
    return TW_EINVAL;
  for (i = 0; i < n; i++)
    if (!tw__deferred_live(ds[i])) return TW_EINVAL;
  /* More inputs than memory can describe: no allocation could succeed. */
  if (n > (SIZE_MAX - sizeof(*st)) / sizeof(st->slots[0]) ||
      n > (SIZE_MAX - sizeof(*res)) / sizeof(res->items[0]))
    return TW_ENOMEM;

  st = tw__malloc(sizeof(*st) + n * sizeof(st->slots[0]));
  res = tw__malloc(sizeof(*res) + n * sizeof(res->items[0]));
  d = st ? tw__deferred_new_full(tw__dl_canceller, st, tw__dl_unref, __FILE__,
                                 __LINE__)
         : NULL;
  if (d == NULL || res == NULL) goto oom;
  /* Room for our pair on every input first, so adding them cannot fail
   * half-way (adding may already run callbacks). */
  for (i = 0; i < n; i++)
    if (tw__deferred_reserve(ds[i], 1) != 0) goto oom;

  st->refs = 1 + n; /* d's canceller argument, and each pending pair */
  st->d = d;
  st->holds_d = n > 0;
  if (st->holds_d) tw_deferred_ref(d);
  st->race = race;
  st->flags = flags;
  st->n = n;
  st->finished = st->nfailed = 0;
  st->pending = n;
  st->winner = SIZE_MAX;
  st->result = res;
  res->count = n;
  res->index = SIZE_MAX;
  for (i = 0; i < n; i++) {
    res->items[i].succeeded = -1;
    res->items[i].value = NULL;
    res->items[i].value_free = NULL;
    res->items[i].failure = NULL;
    st->slots[i].dl = st;
    st->slots[i].input = ds[i];
  }
  /* Twisted fires on the empty list at once, unless it waits for a
   * success that can never come. */
  if (n == 0 && !race && !(flags & TW_DL_FIRE_ON_ONE_CALLBACK))
    tw__dl_fire_list(st);
  for (i = 0; i < n; i++) {
    if (tw_deferred_add_callbacks_full(ds[i], tw__dl_input_done,
                                       tw__dl_input_done, &st->slots[i],
                                       tw__dl_input_gone) != 0) {
      /* Only if a callback run meanwhile took the reserved room: count
       * the input as failed rather than wait for it forever. */
      tw_result r = tw__dl_input_done(
          tw_result_failure(tw_failure_from_code(TW_ENOMEM)), &st->slots[i]);
      tw_result_release(r);
      tw__dl_input_gone(&st->slots[i]);
    }
  }
  *out = d;
  return 0;

oom:
  if (d != NULL) {
    /* d owns st through its canceller argument. */
    st->refs = 1;
    st->result = NULL;
    tw_deferred_unref(d);
  } else {
    tw__free(st);
  }
  tw__free(res);
  return TW_ENOMEM;
}

int tw_deferred_list(tw_deferred **out, tw_deferred *const *ds, size_t n,
                     unsigned flags) {
  return tw__dl_new(out, ds, n, flags, 0);
}

int tw_gather_results(tw_deferred **out, tw_deferred *const *ds, size_t n,
                      int consume_errors) {
  return tw__dl_new(out, ds, n,
                    TW_DL_FIRE_ON_ONE_ERRBACK |
                        (consume_errors ? TW_DL_CONSUME_ERRORS : 0u),
                    0);
}

int tw_race(tw_deferred **out, tw_deferred *const *ds, size_t n) {
  return tw__dl_new(out, ds, n, 0, 1);
}
