/*
 * examples/udp_arg.h - the UDP examples' address argument, endpoint-like:
 * "HOST:PORT" ("127.0.0.1:8000", "::1:0": the port is after the last
 * colon) or a bare "PORT" (host: the default given). Twisted has no
 * endpoint strings for UDP; this is the examples' own, kept small.
 */
#ifndef TWUV_EXAMPLES_UDP_ARG_H
#define TWUV_EXAMPLES_UDP_ARG_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Split arg into host (size bytes) and *port; 0, or -1 when malformed. */
static int udp_arg(const char *arg, const char *default_host, char *host,
                   size_t size, int *port) {
  const char *colon = strrchr(arg, ':');
  const char *digits = colon != NULL ? colon + 1 : arg;
  char *end;
  long v;
  if (colon != NULL) {
    size_t n = (size_t)(colon - arg);
    if (n == 0 || n >= size) return -1;
    memcpy(host, arg, n);
    host[n] = '\0';
  } else {
    snprintf(host, size, "%s", default_host);
  }
  v = strtol(digits, &end, 10);
  if (*digits == '\0' || *end != '\0' || v < 0 || v > 65535) return -1;
  *port = (int)v;
  return 0;
}

#endif
