/*
 * lib/policies.c - twisted.protocols.policies: TimeoutMixin (policies.h).
 *
 * The timer is a delayed call on the mixin's clock whose argument is the
 * mixin. While a timer is armed and the protocol has a transport, the
 * mixin also watches the protocol's end (tw__protocol_watch,
 * transport-internal.h): if the protocol forgets to cancel the timer in
 * connection_lost, the watch does it before dealloc frees the memory the
 * timer points into.
 */
#include <math.h>
#include <string.h>

#include <twuv/policies.h>

#include "internal.h"
#include "transport-internal.h"

int tw_timeout_mixin_init(tw_timeout_mixin *m, tw_protocol *p,
                          tw_clock *clock, tw_timeout_connection_fn timeout_connection) {
  if (m == NULL || p == NULL || clock == NULL) return TW_EINVAL;
  memset(m, 0, sizeof *m);
  m->timeout = TW_TIMEOUT_NONE;
  m->protocol = p;
  m->clock = clock;
  m->timeout_connection = timeout_connection;
  return 0;
}

static int period_ok(double period) {
  return period == TW_TIMEOUT_NONE || (isfinite(period) && period >= 0.0);
}

/* The protocol's end is no longer watched. */
static void unwatch(tw_timeout_mixin *m) {
  if (m->watch_id_ != 0) {
    tw__protocol_unwatch(m->protocol, m->watch_id_);
    m->watch_id_ = 0;
  }
}

/* Forget the timer (cancelled or run) and the watch. */
static void forget(tw_timeout_mixin *m) {
  tw_delayed_call_unref(m->call_);
  m->call_ = NULL;
  unwatch(m);
}

/* The protocol's connection_lost returned with the timer still armed. */
static void protocol_ended(void *arg) {
  tw_timeout_mixin *m = arg;
  m->watch_id_ = 0; /* protocol.c removed the watch before calling */
  if (m->call_ != NULL) tw_delayed_call_cancel(m->call_);
  forget(m);
}

/* Watch the protocol's end while the timer is armed and there is a
 * transport to end. Out of memory the timer still runs (unwatched: the
 * protocol's own connection_lost call must cancel it, as in Twisted). */
static void watch(tw_timeout_mixin *m) {
  if (m->watch_id_ != 0 || m->call_ == NULL || m->protocol->transport == NULL)
    return;
  if (tw__protocol_watch(m->protocol, protocol_ended, m, &m->watch_id_) != 0)
    m->watch_id_ = 0;
}

/* __timedOut: forget the call, then timeoutConnection (last: it may free
 * the protocol, and m with it). */
static void timed_out(void *arg) {
  tw_timeout_mixin *m = arg;
  tw_timeout_connection_fn fn = m->timeout_connection;
  forget(m);
  if (fn != NULL)
    fn(m);
  else
    tw_timeout_mixin_timeout_connection(m);
}

/* The timer is alive (armed, not cancelled from elsewhere). A dead one is
 * forgotten. */
static int alive(tw_timeout_mixin *m) {
  if (m->call_ == NULL) return 0;
  if (tw_delayed_call_active(m->call_)) return 1;
  forget(m);
  return 0;
}

int tw_timeout_mixin_set_timeout(tw_timeout_mixin *m, double period,
                                 double *prev) {
  double old;
  int rc = 0;
  if (m == NULL || m->clock == NULL || m->protocol == NULL ||
      !period_ok(period))
    return TW_EINVAL;
  old = m->timeout;
  if (alive(m)) {
    if (period == TW_TIMEOUT_NONE) {
      rc = tw_delayed_call_cancel(m->call_);
      if (rc == TW_EWRONGTHREAD) return rc;
      forget(m);
      rc = 0;
    } else {
      rc = tw_delayed_call_reset(m->call_, period);
      if (rc != 0) return rc;
    }
  } else if (period != TW_TIMEOUT_NONE) {
    rc = tw_clock_call_later(m->clock, period, timed_out, m, NULL, &m->call_);
    if (rc != 0) {
      m->call_ = NULL;
      return rc;
    }
  }
  m->timeout = period;
  watch(m);
  if (prev != NULL) *prev = old;
  return 0;
}

int tw_timeout_mixin_reset_timeout(tw_timeout_mixin *m) {
  if (m == NULL || m->protocol == NULL) return TW_EINVAL;
  if (!alive(m) || m->timeout == TW_TIMEOUT_NONE) return 0;
  if (!period_ok(m->timeout)) return TW_EINVAL;
  {
    int rc = tw_delayed_call_reset(m->call_, m->timeout);
    if (rc != 0) return rc;
  }
  watch(m);
  return 0;
}

int tw_timeout_mixin_timeout_connection(tw_timeout_mixin *m) {
  if (m == NULL || m->protocol == NULL) return TW_EINVAL;
  return tw_transport_lose_connection(m->protocol->transport);
}

void tw_timeout_mixin_connection_lost(tw_timeout_mixin *m) {
  if (m == NULL || m->protocol == NULL) return;
  tw_timeout_mixin_set_timeout(m, TW_TIMEOUT_NONE, NULL);
}

int tw_timeout_mixin_armed(const tw_timeout_mixin *m) {
  return m != NULL && m->call_ != NULL && tw_delayed_call_active(m->call_);
}
