/*
 * twuv/reconnect.h - twisted.internet.protocol.ReconnectingClientFactory:
 * a client factory that connects again, with exponential back-off and
 * jitter, each time its connection fails or is lost.
 *
 *     static tw_reconnecting_factory rf;
 *     static tw_protocol *build(tw_factory *f, const tw_address *a) {
 *       tw_reconnecting_factory_reset_delay((tw_reconnecting_factory *)f);
 *       return make_my_protocol();        // connected: start over at 1 s
 *     }
 *     static const tw_factory_ops ops = {.build_protocol = build};
 *     tw_reconnecting_factory_init(&rf, &ops, tw_reactor_clock(r));
 *     rf.max_delay = 60;                  // Twisted's attributes, as fields
 *     tw_connect_tcp(&c, r, "127.0.0.1", 8000, &rf.base, 30, NULL);
 *
 * rf.base is the tw_factory to give to tw_connect_tcp / tw_connect_unix
 * (net.h); its callbacks are the user's ops, with Twisted's
 * ReconnectingClientFactory behaviour for client_connection_failed and
 * client_connection_lost where the user's ops leave them NULL. A user's
 * own client_connection_failed/_lost overrides the default, as a Python
 * subclass's method does, and calls tw_reconnecting_factory_client_
 * connection_failed/_lost when it wants the retry (Twisted's
 * ReconnectingClientFactory.clientConnectionLost(self, connector, reason)).
 *
 * The retry (retry(), Twisted's arithmetic exactly): retries counts up;
 * past max_retries (when >= 0) the factory gives up; else
 * delay = min(delay * factor, max_delay), then, when jitter is not 0,
 * delay = normalvariate(delay, delay * jitter) (Python's random.
 * normalvariate, Kinderman-Monahan, on the uniform source below, so the
 * delay may exceed max_delay by the jitter, as in Twisted), and
 * connector.connect() is called delay seconds later on clock. A negative
 * delay (possible with jitter, though with a tiny probability) is 0 here
 * (Twisted's reactor would refuse it).
 *
 * Lifetime: the factory is the program's (static, or embedded, or
 * allocated). Before freeing it, call tw_reconnecting_factory_stop_trying
 * (which cancels a retry waiting on the clock) and make sure no connector
 * still uses it (tw_connector_free, or the reactor's free). The connector
 * is the reactor's (net.h); the factory only remembers the last one.
 *
 * Threads: the reactor's loop thread (the clock's); calls from another
 * thread with the reactor's clock schedule nothing.
 */
#ifndef TWUV_RECONNECT_H
#define TWUV_RECONNECT_H

#include <stdint.h>

#include "clock.h"
#include "common.h"
#include "net.h"
#include "protocol.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Twisted's class attributes. */
#define TW_RECONNECT_MAX_DELAY 3600.0
#define TW_RECONNECT_INITIAL_DELAY 1.0
#define TW_RECONNECT_FACTOR 2.7182818284590451 /* math.e */
#define TW_RECONNECT_JITTER 0.119626565582

/* A uniform random number in [0, 1), as Python's random.random(). */
typedef double (*tw_random_fn)(void *arg);

typedef struct tw_reconnecting_factory {
  tw_factory base; /* first: give &rf->base to the connect calls */
  /* The user's callbacks (build_protocol, start/stop_factory,
   * started_connecting; client_connection_failed/_lost override the
   * defaults). */
  const tw_factory_ops *ops;
  /* Twisted's attributes; set them after init. */
  double max_delay;     /* maxDelay, 3600 */
  double initial_delay; /* initialDelay, 1.0 */
  double factor;        /* factor, e */
  double jitter;        /* jitter, 0.119626565582; 0: none */
  double delay;         /* delay: the last one (initial_delay at first) */
  int retries;          /* retries: consecutive attempts */
  int max_retries;      /* maxRetries: -1 for None (no maximum) */
  int continue_trying;  /* continueTrying: 1 until stop_trying */
  tw_connector *connector; /* connector: the last one that failed/was lost */
  tw_clock *clock;         /* clock: where the retry is scheduled */
  /* The uniform source for the jitter: NULL (init's) is twuv's own
   * generator (xorshift, seeded from the time and the factory's address);
   * set one to replay a sequence. */
  tw_random_fn random;
  void *random_arg;
  /* twuv's own: */
  tw_delayed_call *call_id_; /* _callID */
  uint64_t rng_;
} tw_reconnecting_factory;

/*
 * tw_reconnecting_factory_init: set rf up with the user's factory ops
 * (copied as a pointer: must outlive rf; build_protocol required, unless
 * the program sets rf->base.protocol_ops/protocol_size as
 * tw_factory_for_protocol does) and the clock for the retries
 * (tw_reactor_clock(r), or a manual clock in tests), with Twisted's
 * defaults. Returns 0, or TW_EINVAL (rf, ops or clock NULL). Any thread.
 */
TW_EXTERN int tw_reconnecting_factory_init(tw_reconnecting_factory *rf,
                                           const tw_factory_ops *ops,
                                           tw_clock *clock);

/*
 * tw_reconnecting_factory_client_connection_failed / _lost: the default
 * clientConnectionFailed / clientConnectionLost: when still trying,
 * remember the connector and retry. What rf->base calls when the user's
 * ops leave these NULL; a user's override calls them to retry. reason may
 * be NULL. Returns tw_reconnecting_factory_retry's result, or 0 when not
 * trying.
 */
TW_EXTERN int tw_reconnecting_factory_client_connection_failed(
    tw_reconnecting_factory *rf, tw_connector *c, tw_failure *reason);
TW_EXTERN int tw_reconnecting_factory_client_connection_lost(
    tw_reconnecting_factory *rf, tw_connector *c, tw_failure *reason);

/*
 * tw_reconnecting_factory_retry: retry(connector): have connector (NULL:
 * rf->connector) connect again after the next delay (arithmetic above).
 * Does nothing when stop_trying was called, and gives up (nothing
 * scheduled, retries still counted) past max_retries. A retry already
 * waiting is replaced (Twisted would leave both, and the second connect
 * would raise). When the delayed connect fails at once (tw_connector_
 * connect returns an error other than TW_EBUSY and TW_ESHUTDOWN: out of
 * memory, a libuv error), that counts as a failed attempt and is retried
 * the same way; TW_EBUSY (connecting or connected already) and
 * TW_ESHUTDOWN (the reactor is stopping) end the retries quietly.
 * Returns 0 (scheduled, or nothing to do), TW_EINVAL (rf NULL; no
 * connector given or remembered: Twisted's ValueError), or the clock's
 * error (TW_ENOMEM, TW_EWRONGTHREAD, TW_ESHUTDOWN: nothing scheduled).
 */
TW_EXTERN int tw_reconnecting_factory_retry(tw_reconnecting_factory *rf,
                                            tw_connector *connector);

/*
 * tw_reconnecting_factory_stop_trying: stopTrying: cancel a retry waiting
 * on the clock, stop trying (continue_trying 0), and stop the
 * remembered connector's attempt in progress, if any
 * (tw_connector_stop_connecting; its "not connecting" is ignored, as
 * Twisted's NotConnectingError). A connection already made is not
 * touched: when it is lost, nothing retries. rf NULL is ignored.
 */
TW_EXTERN void tw_reconnecting_factory_stop_trying(
    tw_reconnecting_factory *rf);

/*
 * tw_reconnecting_factory_reset_delay: resetDelay: call it once
 * connected: delay back to initial_delay, retries to 0, trying again
 * (continue_trying 1). As Twisted, it forgets a retry waiting on the
 * clock without cancelling it (a reset while one waits leaves it to
 * run). rf NULL is ignored.
 */
TW_EXTERN void tw_reconnecting_factory_reset_delay(
    tw_reconnecting_factory *rf);

/* tw_reconnecting_factory_waiting: 1 while a retry waits on the clock
 * (_callID is set and pending), else 0 (also for NULL). */
TW_EXTERN int tw_reconnecting_factory_waiting(
    const tw_reconnecting_factory *rf);

/*
 * tw_normalvariate: Python's random.normalvariate(mu, sigma) on the
 * uniform source rnd(arg) (Kinderman and Monahan's method, the same
 * draws in the same order, so the same uniforms give Python's result).
 * NaN when rnd is NULL. Thread-safe if rnd is.
 */
TW_EXTERN double tw_normalvariate(double mu, double sigma, tw_random_fn rnd,
                                  void *arg);

#ifdef __cplusplus
}
#endif
#endif /* TWUV_RECONNECT_H */
