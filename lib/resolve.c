/*
 * lib/resolve.c - reactor.resolve (resolve.h): uv_getaddrinfo with a
 * Deferred, a timeout and cancellation. Each lookup in flight is a busy
 * child of its reactor (reactor-internal.h).
 */
#include <twuv/failure.h>
#include <twuv/resolve.h>

#include "internal.h"
#include "reactor-internal.h"

#include <math.h>
#include <string.h>
#include <uv.h>

typedef struct tw__resolve {
  tw__child child; /* busy: free waits for the request's callback */
  uv_getaddrinfo_t req;
  tw_reactor *r;
  tw_deferred *d;       /* NULL once cancelled or timed out */
  tw_delayed_call *dc;  /* the timeout (a reference), or NULL */
  char name[];
} tw__resolve;

static void tw__free_addrinfo(void *ai) { uv_freeaddrinfo(ai); }

static void tw__resolve_stop_timer(tw__resolve *rs) {
  if (rs->dc == NULL) return;
  (void)tw_delayed_call_cancel(rs->dc); /* TW_EALREADYCALLED: it ran */
  tw_delayed_call_unref(rs->dc);
  rs->dc = NULL;
}

/* The lookup's answer no longer matters: cancelled or timed out. Not from
 * the lookup's own callback (uv_cancel on a finished request is not safe). */
static void tw__resolve_abandon(tw__resolve *rs) {
  if (rs->d == NULL) return;
  /* Not started: libuv calls back with UV_EAI_CANCELED. Running: the
   * answer is dropped when it comes. */
  (void)uv_cancel((uv_req_t *)&rs->req);
  tw_deferred_unref(rs->d);
  rs->d = NULL;
  tw__resolve_stop_timer(rs);
}

static void tw__resolved(uv_getaddrinfo_t *req, int status,
                         struct addrinfo *res) {
  tw__resolve *rs = req->data;
  tw_deferred *d = rs->d;
  if (d == NULL) { /* cancelled or timed out while it ran */
    uv_freeaddrinfo(res);
  } else if (status == 0) {
    if (tw_deferred_callback(d, tw_result_value(res, tw__free_addrinfo)) != 0)
      uv_freeaddrinfo(res);
  } else {
    tw_failure *f = tw_failure_new(&TW_DNS_LOOKUP_ERROR, status, "%s: %s",
                                   rs->name, uv_strerror(status));
    if (tw_deferred_errback(d, f) != 0) tw_failure_unref(f);
    uv_freeaddrinfo(res);
  }
  tw__resolve_stop_timer(rs);
  tw_deferred_unref(d);
  tw__reactor_child_done(rs->r, &rs->child);
  tw__free(rs);
}

/*
 * The reactor's close: never called today - a lookup is a busy child, and
 * tw_reactor_free refuses while one is registered - but the answer to
 * "close" is to abandon the lookup; its callback still completes it.
 */
static void tw__resolve_close(tw__child *c, int why) {
  (void)why;
  tw__resolve_abandon(TW__CONTAINER_OF(c, tw__resolve, child));
}

static const tw__child_ops tw__resolve_ops = {tw__resolve_close};

static void tw__resolve_cancel(tw_deferred *d, void *arg) {
  tw__resolve *rs = arg;
  (void)d;
  tw__resolve_abandon(rs); /* the Deferred gets CancelledError now */
}

/* ThreadedResolver's timeout: DNSLookupError, the lookup abandoned. */
static void tw__resolve_timed_out(void *arg) {
  tw__resolve *rs = arg;
  tw_deferred *d = tw_deferred_ref(rs->d);
  tw_failure *f = tw_failure_new(&TW_DNS_LOOKUP_ERROR, TW_ETIMEDOUT,
                                 "address '%s' not found: timeout error",
                                 rs->name);
  tw__resolve_abandon(rs);
  if (tw_deferred_errback(d, f) != 0) tw_failure_unref(f);
  tw_deferred_unref(d);
}

int tw_reactor_resolve(tw_reactor *r, const char *name, tw_deferred **out) {
  /* Twisted's default: the sum of timeouts=(1, 3, 11, 45). */
  return tw_reactor_resolve_timeout(r, name, 60.0, out);
}

int tw_reactor_resolve_timeout(tw_reactor *r, const char *name,
                               double timeout, tw_deferred **out) {
  static const struct addrinfo hints = {0, AF_UNSPEC, SOCK_STREAM, 0, 0,
                                        NULL, NULL, NULL};
  tw__resolve *rs;
  tw__resolver_hook *hook;
  tw_deferred *d;
  size_t len;
  int err;
  if (out != NULL) *out = NULL;
  if (r == NULL || name == NULL || out == NULL || isnan(timeout) ||
      timeout <= 0)
    return TW_EINVAL;
  if (!tw_reactor_in_loop_thread(r)) return TW_EWRONGTHREAD;
  hook = tw__reactor_resolver(r);
  if (hook->fn != NULL) {
    d = NULL;
    err = hook->fn(hook->arg, r, name, timeout, &d);
    if (err != 0) return err;
    /* A resolver that says 0 and gives nothing broke its contract: an
     * error rather than a crash in the caller. */
    if (d == NULL) return TW_EINVAL;
    *out = d;
    return 0;
  }
  len = strlen(name);
  rs = tw__malloc(sizeof(*rs) + len + 1);
  if (rs == NULL) return TW_ENOMEM;
  memcpy(rs->name, name, len + 1);
  rs->dc = NULL;
  err = TW_ENOMEM;
  d = tw_deferred_new(tw__resolve_cancel, rs);
  if (d == NULL) goto fail_memory;
  if (!isinf(timeout) &&
      (err = tw_reactor_call_later(r, timeout, tw__resolve_timed_out, rs,
                                   NULL, &rs->dc)) != 0)
    goto fail_deferred;
  rs->d = tw_deferred_ref(d);
  rs->r = r;
  rs->req.data = rs;
  /* The request holds the loop: tw_reactor_free waits for its callback
   * (TW_EBUSY). Refused once free is under way. */
  tw__child_init(&rs->child, &tw__resolve_ops, TW__CHILD_BUSY);
  if ((err = tw__reactor_child_add(r, &rs->child)) != 0) goto fail_timer;
  err = uv_getaddrinfo(tw_reactor_loop(r), &rs->req, tw__resolved, rs->name,
                       NULL, &hints);
  if (err != 0) goto fail_child;
  *out = d;
  return 0;

fail_child:
  tw__reactor_child_done(rs->r, &rs->child);
fail_timer:
  tw__resolve_stop_timer(rs);
  tw_deferred_unref(d);
fail_deferred:
  tw_deferred_unref(d);
fail_memory:
  tw__free(rs);
  return err;
}

int tw_reactor_install_resolver(tw_reactor *r, tw_resolver_fn fn, void *arg,
                                tw_free_fn arg_free) {
  tw__resolver_hook *hook, old;
  if (r == NULL || (fn == NULL && (arg != NULL || arg_free != NULL)))
    return TW_EINVAL;
  if (!tw_reactor_in_loop_thread(r)) return TW_EWRONGTHREAD;
  /* From an arg_free tw_reactor_free runs, the new arg would never be
   * freed. */
  if (tw__reactor_gone(r)) return TW_ESHUTDOWN;
  hook = tw__reactor_resolver(r);
  old = *hook;
  hook->fn = fn;
  hook->arg = arg;
  hook->arg_free = arg_free;
  if (old.arg_free != NULL) old.arg_free(old.arg);
  return 0;
}
