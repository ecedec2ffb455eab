/*
 * lib/reconnect.c - ReconnectingClientFactory (reconnect.h), above net.h's
 * connectors: rf->base's callbacks forward to the user's ops and supply
 * Twisted's defaults for the two client callbacks.
 */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include <twuv/reconnect.h>
#include <uv.h>

#include "internal.h"

/* ---- the uniform source --------------------------------------------------- */

/* xorshift64* (Vigna): 53 random bits as a double in [0, 1), as Python's
 * random(). Not cryptographic; the jitter only spreads clients out. */
static double xorshift_random(void *arg) {
  uint64_t *s = arg, x = *s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return (double)((x * 0x2545F4914F6CDD1Dull) >> 11) * 0x1.0p-53;
}

/* Python's random.normalvariate: NV_MAGICCONST = 4 * exp(-0.5) / sqrt(2). */
double tw_normalvariate(double mu, double sigma, tw_random_fn rnd, void *arg) {
  const double magic = 4 * exp(-0.5) / sqrt(2.0);
  double z;
  if (rnd == NULL) return NAN;
  for (;;) {
    double u1 = rnd(arg), u2 = 1.0 - rnd(arg), zz;
    z = magic * (u1 - 0.5) / u2;
    zz = z * z / 4.0;
    if (zz <= -log(u2)) break;
  }
  return mu + z * sigma;
}

/* ---- rf->base's callbacks --------------------------------------------------- */

static tw_reconnecting_factory *rf_of(tw_factory *f) {
  return (tw_reconnecting_factory *)f;
}

static tw_protocol *rf_build(tw_factory *f, const tw_address *addr) {
  tw_reconnecting_factory *rf = rf_of(f);
  if (rf->ops->build_protocol == NULL) return NULL;
  return rf->ops->build_protocol(f, addr);
}

static void rf_start(tw_factory *f) {
  tw_reconnecting_factory *rf = rf_of(f);
  if (rf->ops->start_factory != NULL) rf->ops->start_factory(f);
}

static void rf_stop(tw_factory *f) {
  tw_reconnecting_factory *rf = rf_of(f);
  if (rf->ops->stop_factory != NULL) rf->ops->stop_factory(f);
}

static void rf_connecting(tw_factory *f, tw_connector *c) {
  tw_reconnecting_factory *rf = rf_of(f);
  if (rf->ops->started_connecting != NULL) rf->ops->started_connecting(f, c);
}

static void rf_failed(tw_factory *f, tw_connector *c, tw_failure *reason) {
  tw_reconnecting_factory *rf = rf_of(f);
  if (rf->ops->client_connection_failed != NULL)
    rf->ops->client_connection_failed(f, c, reason);
  else
    tw_reconnecting_factory_client_connection_failed(rf, c, reason);
}

static void rf_lost(tw_factory *f, tw_connector *c, tw_failure *reason) {
  tw_reconnecting_factory *rf = rf_of(f);
  if (rf->ops->client_connection_lost != NULL)
    rf->ops->client_connection_lost(f, c, reason);
  else
    tw_reconnecting_factory_client_connection_lost(rf, c, reason);
}

static const tw_factory_ops rf_ops = {rf_build,      rf_start, rf_stop,
                                      rf_connecting, rf_failed, rf_lost};

int tw_reconnecting_factory_init(tw_reconnecting_factory *rf,
                                 const tw_factory_ops *ops, tw_clock *clock) {
  if (rf == NULL || ops == NULL || clock == NULL) return TW_EINVAL;
  memset(rf, 0, sizeof *rf);
  tw_factory_init(&rf->base, &rf_ops);
  rf->ops = ops;
  rf->max_delay = TW_RECONNECT_MAX_DELAY;
  rf->initial_delay = TW_RECONNECT_INITIAL_DELAY;
  rf->factor = TW_RECONNECT_FACTOR;
  rf->jitter = TW_RECONNECT_JITTER;
  rf->delay = rf->initial_delay;
  rf->retries = 0;
  rf->max_retries = -1;
  rf->continue_trying = 1;
  rf->clock = clock;
  /* A seed per factory and run; never 0 (xorshift's fixed point). */
  rf->rng_ = uv_hrtime() ^ ((uint64_t)(uintptr_t)rf * 0x9E3779B97F4A7C15ull);
  if (rf->rng_ == 0) rf->rng_ = 0x9E3779B97F4A7C15ull;
  return 0;
}

/* ---- retrying ----------------------------------------------------------------- */

/* What a scheduled retry connects. */
typedef struct retry_call {
  tw_reconnecting_factory *rf;
  tw_connector *connector;
} retry_call;

/* _callID is the call now running (or dead): forget it. A newer pending
 * call (after a reset_delay that forgot this one) is kept. */
static void forget_call(tw_reconnecting_factory *rf) {
  if (rf->call_id_ != NULL && !tw_delayed_call_active(rf->call_id_)) {
    tw_delayed_call_unref(rf->call_id_);
    rf->call_id_ = NULL;
  }
}

/* reconnector(): _callID = None; connector.connect(). */
static void reconnector(void *arg) {
  retry_call *rc = arg;
  tw_reconnecting_factory *rf = rc->rf;
  int err;
  forget_call(rf);
  err = tw_connector_connect(rc->connector);
  if (err != 0 && err != TW_EBUSY && err != TW_ESHUTDOWN)
    tw_reconnecting_factory_retry(rf, rc->connector); /* a failed attempt */
}

static void retry_call_free(void *arg) { tw__free(arg); }

int tw_reconnecting_factory_retry(tw_reconnecting_factory *rf,
                                  tw_connector *connector) {
  retry_call *rc;
  tw_delayed_call *dc;
  double delay;
  int err;
  if (rf == NULL) return TW_EINVAL;
  if (!rf->continue_trying) return 0; /* abandoned on explicit request */
  if (connector == NULL) connector = rf->connector;
  if (connector == NULL) return TW_EINVAL; /* "no connector to retry" */
  rf->retries++;
  if (rf->max_retries >= 0 && rf->retries > rf->max_retries)
    return 0; /* abandoned after max_retries */
  delay = rf->delay * rf->factor;
  rf->delay = delay < rf->max_delay ? delay : rf->max_delay;
  if (rf->jitter != 0)
    rf->delay = rf->random != NULL
                    ? tw_normalvariate(rf->delay, rf->delay * rf->jitter,
                                       rf->random, rf->random_arg)
                    : tw_normalvariate(rf->delay, rf->delay * rf->jitter,
                                       xorshift_random, &rf->rng_);
  delay = rf->delay;
  if (!(delay >= 0)) delay = 0; /* negative (jitter) or NaN */
  if (!isfinite(delay)) delay = rf->max_delay >= 0 && isfinite(rf->max_delay)
                                    ? rf->max_delay
                                    : TW_RECONNECT_MAX_DELAY;
  rc = tw__malloc(sizeof *rc);
  if (rc == NULL) return TW_ENOMEM;
  rc->rf = rf;
  rc->connector = connector;
  err = tw_clock_call_later(rf->clock, delay, reconnector, rc, retry_call_free,
                            &dc);
  if (err != 0) {
    tw__free(rc);
    return err;
  }
  if (rf->call_id_ != NULL) {
    tw_delayed_call_cancel(rf->call_id_); /* a retry already waiting */
    tw_delayed_call_unref(rf->call_id_);
  }
  rf->call_id_ = dc;
  return 0;
}

int tw_reconnecting_factory_client_connection_failed(
    tw_reconnecting_factory *rf, tw_connector *c, tw_failure *reason) {
  (void)reason;
  if (rf == NULL) return TW_EINVAL;
  if (!rf->continue_trying) return 0;
  rf->connector = c;
  return tw_reconnecting_factory_retry(rf, NULL);
}

int tw_reconnecting_factory_client_connection_lost(
    tw_reconnecting_factory *rf, tw_connector *c, tw_failure *reason) {
  return tw_reconnecting_factory_client_connection_failed(rf, c, reason);
}

void tw_reconnecting_factory_stop_trying(tw_reconnecting_factory *rf) {
  if (rf == NULL) return;
  if (rf->call_id_ != NULL) {
    tw_delayed_call_cancel(rf->call_id_);
    tw_delayed_call_unref(rf->call_id_);
    rf->call_id_ = NULL;
  }
  rf->continue_trying = 0;
  if (rf->connector != NULL)
    tw_connector_stop_connecting(rf->connector); /* TW_ENOTCONN ignored */
}

void tw_reconnecting_factory_reset_delay(tw_reconnecting_factory *rf) {
  if (rf == NULL) return;
  rf->delay = rf->initial_delay;
  rf->retries = 0;
  /* _callID = None: forgotten, not cancelled (it still runs). */
  tw_delayed_call_unref(rf->call_id_);
  rf->call_id_ = NULL;
  rf->continue_trying = 1;
}

int tw_reconnecting_factory_waiting(const tw_reconnecting_factory *rf) {
  return rf != NULL && rf->call_id_ != NULL &&
         tw_delayed_call_active(rf->call_id_);
}
