/*
 * twuv.h - the umbrella header: Twisted's programming model (reactor,
 * Deferreds, threads, twisted.threads workers) for C, on libuv.
 *
 * Include this, or only the topic headers you need from twuv/. No twuv header
 * includes <uv.h>; they compile under -std=c11 -pedantic.
 */
#ifndef TWUV_H
#define TWUV_H

#include "twuv/common.h"
#include "twuv/version.h"
#include "twuv/error.h"
#include "twuv/failure.h"
#include "twuv/clock.h"
#include "twuv/defer.h"
#include "twuv/task.h"
#include "twuv/cooperator.h"
#include "twuv/worker.h"
#include "twuv/reactor.h"
#include "twuv/threadpool.h"
#include "twuv/threads.h"
#include "twuv/resolve.h"
#include "twuv/protocol.h"
#include "twuv/testing.h"
#include "twuv/net.h"
#include "twuv/endpoints.h" /* endpoints (issue 14) */
#include "twuv/udp.h"       /* UDP (issue 16) */
#include "twuv/process.h"   /* processes (issue 16) */
#include "twuv/policies.h" /* TimeoutMixin (issue 15) */
#include "twuv/reconnect.h" /* ReconnectingClientFactory (issue 15) */
#include "twuv/basic.h"     /* LineReceiver & co (issue 15, basic) */

#endif /* TWUV_H */
