/*
 * lib/endpoints-internal.h - what endpoints-parse.c (description strings)
 * needs of endpoints.c (the endpoints) beyond the public API. Not
 * installed.
 */
#ifndef TWUV_ENDPOINTS_INTERNAL_H
#define TWUV_ENDPOINTS_INTERNAL_H

#include <twuv/endpoints.h>

/* host as a numeric IPv4 or IPv6 address into *out (type TCP, port 0):
 * 0, or TW_EINVAL when it is not one (no resolver is asked). */
int tw__endpoint_numeric(const char *host, tw_address *out);

/* Record lockfile / checkPID (parsed and kept, not acted on: twuv makes no
 * PID lock files). */
void tw__endpoint_set_lock_pid(tw_endpoint *ep, int on);

#endif /* TWUV_ENDPOINTS_INTERNAL_H */
