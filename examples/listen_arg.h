/*
 * examples/listen_arg.h - the servers' first argument: where to listen, an
 * endpoint description (endpoints.h: "tcp:8000",
 * "tcp:0:interface=127.0.0.1", "unix:/tmp/echo.sock:mode=600"), or a bare
 * port number, which means "tcp:PORT" (Twisted's old strports form). Port 0
 * picks a free port. Prints "listening on HOST:PORT" (or the UNIX path)
 * once listening, which the examples test reads.
 */
#ifndef TWUV_EXAMPLES_LISTEN_ARG_H
#define TWUV_EXAMPLES_LISTEN_ARG_H

#include <stdio.h>
#include <string.h>

#include <twuv.h>

static int example_listen(tw_reactor *r, tw_factory *f, const char *arg,
                          tw_listening_port **out) {
  char desc[512];
  tw_endpoint *ep;
  tw_failure *why;
  tw_deferred *d;
  tw_result res = tw_result_none();
  tw_address a;
  int err;
  if (arg[0] != '\0' && strspn(arg, "0123456789") == strlen(arg))
    snprintf(desc, sizeof desc, "tcp:%s", arg);
  else
    snprintf(desc, sizeof desc, "%s", arg);
  err = tw_server_from_string(&ep, r, desc, &why);
  if (err != 0) {
    fprintf(stderr, "%s: %s: %s\n", desc, tw_failure_type(why)->name,
            tw_failure_message(why));
    tw_failure_unref(why);
    return err;
  }
  /* A built-in endpoint's Deferred has fired when listen returns. */
  err = tw_endpoint_listen(ep, f, &d);
  tw_endpoint_free(ep);
  if (err != 0) return err;
  if (tw_deferred_take_result(d, &res) != 0 || tw_result_is_failure(res)) {
    fprintf(stderr, "cannot listen: %s\n",
            res.kind == TW_RESULT_FAILURE ? tw_failure_message(res.u.failure)
                                          : "?");
    tw_result_release(res);
    tw_deferred_unref(d);
    return TW_EINVAL;
  }
  tw_deferred_unref(d);
  *out = res.u.value;
  tw_listening_port_get_host(*out, &a);
  if (a.family == TW_ADDRESS_UNIX)
    printf("listening on %s\n", a.name);
  else
    printf("listening on %s:%d\n", a.host, a.port);
  fflush(stdout);
  return 0;
}

#endif
