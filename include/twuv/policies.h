/*
 * twuv/policies.h - twisted.protocols.policies: TimeoutMixin.
 *
 * A protocol that drops idle connections embeds a tw_timeout_mixin and
 * calls it from its own callbacks, as a Twisted protocol that mixes in
 * TimeoutMixin calls self.setTimeout / self.resetTimeout:
 *
 *     typedef struct idle {
 *       tw_protocol base;
 *       tw_timeout_mixin timeout;
 *     } idle;
 *
 *     static void idle_made(tw_protocol *p) {
 *       idle *x = (idle *)p;
 *       tw_timeout_mixin_init(&x->timeout, p, tw_reactor_clock(r), NULL);
 *       tw_timeout_mixin_set_timeout(&x->timeout, 60.0, NULL);
 *     }
 *     static tw_failure *idle_data(tw_protocol *p, const char *d, size_t n) {
 *       tw_timeout_mixin_reset_timeout(&((idle *)p)->timeout);
 *       ...
 *     }
 *     static void idle_lost(tw_protocol *p, tw_failure *reason) {
 *       tw_timeout_mixin_connection_lost(&((idle *)p)->timeout);
 *     }
 *
 * When the timeout passes with no reset, the mixin calls the
 * timeout_connection given to init (TimeoutMixin.timeoutConnection), or
 * by default loses the connection (tw_timeout_mixin_timeout_connection).
 *
 * The timer and the protocol's end. The timer is a delayed call on the
 * clock given to init (the reactor's, tw_reactor_clock, or a manual clock
 * in tests, as Twisted's tests override callLater), and its argument is
 * the mixin, inside the protocol's memory. So the timer must not outlive
 * the protocol: tw_timeout_mixin_connection_lost cancels it (Twisted's
 * pattern is setTimeout(None) in connectionLost). Forgetting that call
 * is harmless: a timer armed while the protocol has a transport is
 * cancelled by the transport itself, right after the protocol's
 * connection_lost returns and before its dealloc (so a factory-made
 * protocol freed there leaves no timer behind). Only a timer armed while
 * the protocol has no transport (before connection_made, or on a protocol
 * never connected) is the program's to cancel (tw_timeout_mixin_set_timeout
 * with TW_TIMEOUT_NONE) before the memory goes: otherwise it fires into
 * freed memory, as any delayed call whose argument was freed would.
 *
 * Threads: the mixin belongs to its protocol's loop thread (the clock's
 * thread); with the reactor's clock, calls from another thread return
 * TW_EWRONGTHREAD and change nothing.
 */
#ifndef TWUV_POLICIES_H
#define TWUV_POLICIES_H

#include "clock.h"
#include "common.h"
#include "protocol.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Twisted's None for a timeout: no timeout. */
#define TW_TIMEOUT_NONE (-1.0)

typedef struct tw_timeout_mixin tw_timeout_mixin;

/* timeoutConnection: called once when the timeout passes (the mixin has
 * forgotten its timer by then). It may free the protocol. */
typedef void (*tw_timeout_connection_fn)(tw_timeout_mixin *m);

struct tw_timeout_mixin {
  /* timeOut: the period in seconds that reset_timeout re-arms with, or
   * TW_TIMEOUT_NONE. The user may set it directly, as Twisted's class
   * attribute (this arms nothing: set_timeout does); init sets
   * TW_TIMEOUT_NONE. */
  double timeout;
  /* Read-only for the user, set by init: */
  tw_protocol *protocol;
  tw_clock *clock;
  tw_timeout_connection_fn timeout_connection; /* NULL: lose the connection */
  /* twuv's own: */
  tw_delayed_call *call_;
  unsigned watch_id_; /* the protocol's end watched (0: not) */
};

/*
 * tw_timeout_mixin_init: set m up for protocol p (the protocol that
 * embeds it; its transport is what the default timeout_connection
 * loses), with the clock its timer runs on and the timeout_connection
 * to call (NULL: tw_timeout_mixin_timeout_connection). timeout starts as
 * TW_TIMEOUT_NONE and no timer runs. Call it once, before the other
 * calls (connection_made is a good place); m's previous contents are
 * overwritten, so a timer armed before must be cancelled first
 * (tw_timeout_mixin_connection_lost). Returns 0, or TW_EINVAL (m, p or
 * clock NULL). Any thread.
 */
TW_EXTERN int tw_timeout_mixin_init(tw_timeout_mixin *m, tw_protocol *p,
                                    tw_clock *clock,
                                    tw_timeout_connection_fn timeout_connection);

/*
 * tw_timeout_mixin_set_timeout: setTimeout(period): make period the
 * timeout (seconds >= 0, or TW_TIMEOUT_NONE to disable) and store the
 * previous one in *prev (prev may be NULL). With a timer armed, it is
 * moved to period from now, or cancelled for TW_TIMEOUT_NONE; with none,
 * a period arms one. A timer cancelled from elsewhere (Twisted's
 * test_setTimeoutCancleAlreadyCancelled: the clock dropped it) counts as
 * none: TW_TIMEOUT_NONE forgets it quietly, a period arms a new one
 * (Twisted's reset would raise AlreadyCancelled there).
 * Errors change nothing (*prev untouched): TW_EINVAL (m NULL or not
 * initialised, period negative other than TW_TIMEOUT_NONE, NaN or
 * infinite), TW_ENOMEM, TW_EWRONGTHREAD, TW_ESHUTDOWN (the clock's).
 */
TW_EXTERN int tw_timeout_mixin_set_timeout(tw_timeout_mixin *m, double period,
                                           double *prev);

/*
 * tw_timeout_mixin_reset_timeout: resetTimeout: start the countdown of
 * m->timeout again from now. Does nothing when no timer is armed (it
 * fired, was never set, was cancelled, or timeout is TW_TIMEOUT_NONE).
 * Call it when meaningful data arrives. Returns 0, TW_EINVAL (m NULL, or
 * m->timeout set to a bad value), TW_EWRONGTHREAD.
 */
TW_EXTERN int tw_timeout_mixin_reset_timeout(tw_timeout_mixin *m);

/*
 * tw_timeout_mixin_timeout_connection: the default timeoutConnection:
 * lose the protocol's connection (tw_transport_lose_connection). A
 * timeout_connection of the user's may call it too (Twisted's
 * super().timeoutConnection()). Returns what lose_connection returns
 * (TW_EINVAL when the protocol has no transport, or m is NULL).
 */
TW_EXTERN int tw_timeout_mixin_timeout_connection(tw_timeout_mixin *m);

/*
 * tw_timeout_mixin_connection_lost: the protocol's connection is gone:
 * cancel the timer, as setTimeout(None) in connectionLost (timeout
 * becomes TW_TIMEOUT_NONE). Call it from connection_lost; forgetting it
 * is harmless for a timer armed while connected (see the top of this
 * file). Also the way to drop a timer armed before the protocol had a
 * transport. m NULL is ignored.
 */
TW_EXTERN void tw_timeout_mixin_connection_lost(tw_timeout_mixin *m);

/* tw_timeout_mixin_armed: 1 while a timer is armed (not fired, not
 * cancelled), else 0 (also for NULL). */
TW_EXTERN int tw_timeout_mixin_armed(const tw_timeout_mixin *m);

#ifdef __cplusplus
}
#endif
#endif /* TWUV_POLICIES_H */
