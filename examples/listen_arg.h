/*
 * examples/listen_arg.h - the servers' first argument: where to listen.
 * Accepted for now: a port number ("8000"), "tcp:PORT" and "unix:PATH"
 * (the endpoint string parser of endpoints.h will replace this). Port 0
 * picks a free port. Prints "listening on HOST:PORT" (or the UNIX path)
 * once listening, which the examples test reads.
 */
#ifndef TWUV_EXAMPLES_LISTEN_ARG_H
#define TWUV_EXAMPLES_LISTEN_ARG_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <twuv.h>

static int example_listen(tw_reactor *r, tw_factory *f, const char *arg,
                          tw_listening_port **out) {
  tw_address a;
  char *end;
  long port;
  int err;
  if (strncmp(arg, "unix:", 5) == 0) {
    err = tw_listen_unix(out, r, arg + 5, f, 0, 0);
  } else {
    if (strncmp(arg, "tcp:", 4) == 0) arg += 4;
    port = strtol(arg, &end, 10);
    if (*arg == '\0' || *end != '\0' || port < 0 || port > 65535) {
      fprintf(stderr, "usage: PORT | tcp:PORT | unix:PATH (got %s)\n", arg);
      return TW_EINVAL;
    }
    err = tw_listen_tcp(out, r, (int)port, f, 0, NULL);
  }
  if (err != 0) {
    fprintf(stderr, "cannot listen on %s: %s\n", arg, tw_strerror(err));
    return err;
  }
  tw_listening_port_get_host(*out, &a);
  if (a.family == TW_ADDRESS_UNIX)
    printf("listening on %s\n", a.name);
  else
    printf("listening on %s:%d\n", a.host, a.port);
  fflush(stdout);
  return 0;
}

#endif
