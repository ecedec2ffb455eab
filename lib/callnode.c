/*
 * lib/callnode.c - per-thread slabs of call nodes (callnode.h).
 */
#include "callnode.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <uv.h>

/* ~2 KiB per slab: one allocation per 50 calls. */
#define TW__SLAB_NODES 50

struct tw__call_slab {
  /* Nodes not yet released, counting the ones still to be carved. */
  _Atomic uint32_t refs;
  uint32_t used; /* producer thread only */
  tw__call_node nodes[TW__SLAB_NODES];
};

static _Thread_local tw__call_slab *tw__tls_slab;
static _Thread_local int tw__tls_registered;
static pthread_key_t tw__slab_key;
static uv_once_t tw__slab_once = UV_ONCE_INIT;
static int tw__slab_key_ok;

static void tw__slab_release(tw__call_slab *slab, uint32_t n) {
  if (atomic_fetch_sub_explicit(&slab->refs, n, memory_order_acq_rel) == n)
    tw__free(slab);
}

/* Drop the calling thread's hold on its slab: the nodes it never carved. */
static void tw__slab_retire(tw__call_slab *slab) {
  uint32_t unused = TW__SLAB_NODES - slab->used;
  if (unused > 0) tw__slab_release(slab, unused);
}

static void tw__slab_thread_exit(void *p) {
  /* The key's value is only a marker; the slab is in the TLS pointer,
   * which is still valid while destructors run. */
  (void)p;
  if (tw__tls_slab != NULL) {
    tw__slab_retire(tw__tls_slab);
    tw__tls_slab = NULL;
  }
}

static void tw__slab_key_init(void) {
  tw__slab_key_ok = pthread_key_create(&tw__slab_key, tw__slab_thread_exit) == 0;
}

void tw_thread_cleanup(void) {
  if (tw__tls_slab != NULL) {
    tw__slab_retire(tw__tls_slab);
    tw__tls_slab = NULL;
  }
}

tw__call_node *tw__call_node_get(void) {
  tw__call_slab *slab = tw__tls_slab;
  tw__call_node *node;
  if (TW__UNLIKELY(slab == NULL)) {
    if (!tw__tls_registered) {
      /* Register the exit hook once per thread; without it (key creation
       * failed) the thread's last slab would leak, so use no cache. */
      uv_once(&tw__slab_once, tw__slab_key_init);
      if (tw__slab_key_ok && pthread_setspecific(tw__slab_key, &tw__tls_slab) == 0)
        tw__tls_registered = 1;
    }
    slab = tw__malloc(sizeof(*slab));
    if (slab == NULL) return NULL;
    atomic_init(&slab->refs, TW__SLAB_NODES);
    slab->used = 0;
    if (!tw__tls_registered) {
      /* No cache: a one-node slab in effect. */
      slab->used = TW__SLAB_NODES - 1;
      atomic_store_explicit(&slab->refs, 1, memory_order_relaxed);
    }
    tw__tls_slab = slab;
  }
  node = &slab->nodes[slab->used++];
  node->slab = slab;
  /* Fully carved: the slab now belongs to its nodes alone (the consumer
   * may free it as soon as the last one is released). */
  if (slab->used == TW__SLAB_NODES) tw__tls_slab = NULL;
  return node;
}

void tw__call_node_put(tw__call_node *node) {
  tw__slab_release(node->slab, 1);
}
