/*
 * lib/threadpool-internal.h - a thread pool job whose memory the submitter
 * provides, for defer_to_thread (lib/threads.c): its per-job state, the
 * pool's job and the call back to the loop then live in one allocation
 * made and freed on the loop thread, instead of three nodes carved on one
 * thread and released on another.
 */
#ifndef TWUV_THREADPOOL_INTERNAL_H
#define TWUV_THREADPOOL_INTERNAL_H

#include "internal.h"
#include "worker-internal.h"

/* Seven words: a tnode (lib/tnode.h) has no room for more. */
typedef struct tw__tp_job {
  union {
    tw_threadpool *tp;
    struct tw__tp_job *next; /* instead, while held (uv, before start) */
  } u;
  union {
    tw_call_fn call;     /* on_result == NULL: call_in_thread */
    tw_result_fn result; /* call_in_thread_with_callback */
  } fn;
  void *arg;
  tw_free_fn arg_free;
  tw_on_result_fn on_result;
  void *ctx;
  /* The submission time (the pool's clock: ns, or TSC ticks on x86)
   * with two marks in its low bits: PENDING until the
   * job starts (then the time is cleared), EXT for the caller's memory. */
  uint64_t submit_ns;
} tw__tp_job;

#define TW__TP_PENDING ((uint64_t)1)
#define TW__TP_EXT ((uint64_t)2)
#define TW__TP_MARKS (TW__TP_PENDING | TW__TP_EXT)

/*
 * A job in the submitter's memory: the start of a tnode node (lib/tnode.h)
 * holding a reference for the pool, which releases it with tw__tnode_put
 * once done with the job - after on_result (or, for a job that never ran,
 * after on_result got CancelledError). A team pool keeps its task in room,
 * so the job needs no other node. Not released when the submission fails.
 */
typedef struct tw__tp_job_ext {
  tw__task_room room;
  tw__tp_job base;
} tw__tp_job_ext;

/*
 * tw_threadpool_call_in_thread_with_callback with the job in ext (no
 * arg_free: fn's data is the caller's). Same errors; on error nothing was
 * taken and release will not be called.
 *
 * owned: the calling thread is the pool's owner (tw__threadpool_own) - the
 * only thread that submits with owned set and the only one that may stop
 * or free the pool - so the submission skips the gate that keeps stop and
 * free from running under other submitters.
 */
int tw__threadpool_submit_ext(tw_threadpool *tp, tw__tp_job_ext *ext,
                              int owned, tw_result_fn fn, void *arg,
                              tw_on_result_fn on_result, void *ctx);

/*
 * Give tp an owner (the reactor whose pool it is): stop and free return
 * TW_EWRONGTHREAD unless is_owner(owner) says the calling thread is the
 * owner's (the loop thread), instead of the usual rule (a uv pool's thread
 * of creation); the owner's owned submissions (above) come from that
 * thread too. NULL is_owner: the usual rule.
 */
void tw__threadpool_own(tw_threadpool *tp, int (*is_owner)(void *owner),
                        void *owner);

#endif
