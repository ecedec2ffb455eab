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

/*
 * A name resolver (Twisted's IResolverSimple.getHostByName, installed with
 * reactor.installResolver): look name up, and set *out to a Deferred (a
 * reference the caller owns) that fires as tw_reactor_resolve's does: with
 * a struct addrinfo * list whose value destructor frees it (make the list
 * with getaddrinfo and pass freeaddrinfo-calling destructor), or with a
 * failure - TW_DNS_LOOKUP_ERROR for a name that does not resolve, as
 * Twisted's resolvers do. It may fire before returning. timeout is in
 * seconds (INFINITY: none); honouring it is the resolver's business.
 * Return 0, or an error code (then *out is ignored and the caller gets the
 * code). arg is the one given to tw_reactor_install_resolver. Called on
 * the loop thread, from tw_reactor_resolve* and so from every lookup the
 * library makes: tw_connect_tcp and the client endpoints with a host name.
 */
typedef int (*tw_resolver_fn)(void *arg, tw_reactor *r, const char *name,
                              double timeout, tw_deferred **out);

/*
 * tw_reactor_install_resolver: reactor.installResolver(resolver): every
 * later lookup on r (tw_reactor_resolve*, tw_connect_tcp with a name, the
 * client endpoints) goes through fn with arg. fn NULL restores the default
 * (uv_getaddrinfo). The reactor owns arg from here: arg_free (if not NULL)
 * runs when the resolver is replaced, and when the reactor is freed.
 * Lookups already made are not affected. The use: tests that must not
 * touch the machine's resolver (a table of names), or a program with its
 * own DNS client. Twisted returns the old resolver; here the old one's
 * arg_free runs instead (arg's ownership is the reactor's). Loop thread
 * only. Errors: TW_EINVAL (r NULL; fn NULL with an arg or arg_free),
 * TW_EWRONGTHREAD, TW_ESHUTDOWN (the reactor stopped for good or is being
 * freed); on error nothing changes and arg_free is not called.
 */
TW_EXTERN int tw_reactor_install_resolver(tw_reactor *r, tw_resolver_fn fn,
                                          void *arg, tw_free_fn arg_free);

#ifdef __cplusplus
}
#endif
#endif /* TWUV_RESOLVE_H */
