/*
 * twuv/resolve.h - name resolution: reactor.resolve (IReactorCore.resolve,
 * the default ThreadedResolver), on libuv's uv_getaddrinfo.
 *
 * The networking layer's module for host names: connectTCP, the endpoints
 * (HostnameEndpoint) and a pluggable resolver (IReactorPluggableNameResolver)
 * build on it. A lookup in flight is a busy child of the reactor
 * (docs/design.md, "Reactor children"): tw_reactor_free refuses with
 * TW_EBUSY until its callback came.
 */
#ifndef TWUV_RESOLVE_H
#define TWUV_RESOLVE_H

#include "common.h"
#include "defer.h"
#include "reactor.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * tw_reactor_resolve: reactor.resolve(name): look name up with
 * uv_getaddrinfo (on libuv's pool, as Twisted runs the blocking resolver in
 * a thread). *out fires with a struct addrinfo * list (all addresses, any
 * family; freed by the value's destructor, uv_freeaddrinfo) - Twisted
 * returns only the first IPv4 address as a string - or fails with
 * TW_DNS_LOOKUP_ERROR carrying the libuv code (UV_EAI_*). A lookup not
 * answered within 60 seconds (Twisted's default, the sum of its timeouts
 * (1, 3, 11, 45)) fails with TW_DNS_LOOKUP_ERROR, code TW_ETIMEDOUT
 * ("address 'name' not found: timeout error"), as ThreadedResolver does.
 * Cancelling, or the timeout, stops a lookup that has not started; one
 * already running is abandoned and its answer freed. Loop thread only.
 * Errors: TW_EINVAL, TW_ENOMEM, TW_EWRONGTHREAD, TW_ESHUTDOWN (the reactor
 * is being freed: from a cleanup that free runs), libuv errors.
 */
TW_EXTERN int tw_reactor_resolve(tw_reactor *r, const char *name,
                                 tw_deferred **out);

/*
 * tw_reactor_resolve_timeout: reactor.resolve(name, timeout=(t,)): as
 * tw_reactor_resolve with a timeout of `timeout` seconds (Twisted sums its
 * tuple; pass the sum). INFINITY: no timeout. Errors as tw_reactor_resolve,
 * plus TW_EINVAL for a timeout that is NaN, zero or negative.
 */
TW_EXTERN int tw_reactor_resolve_timeout(tw_reactor *r, const char *name,
                                         double timeout, tw_deferred **out);

#ifdef __cplusplus
}
#endif
#endif /* TWUV_RESOLVE_H */
