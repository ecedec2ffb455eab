/*
 * lib/tnode.c - per-thread slabs of nodes (tnode.h).
 */
#include "tnode.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <uv.h>

/* 36 nodes of 64 bytes: one ~2.3 KiB allocation per 36 items. */
#define TW__SLAB_NODES 36

typedef struct tw__tnode_slab tw__tnode_slab;

typedef struct tw__tnode {
  union {
    char bytes[TW__TNODE_SIZE];
    void *align_ptr;
    double align_double;
  } u;
  tw__tnode_slab *slab;
} tw__tnode;

struct tw__tnode_slab {
  /* Nodes not yet released, counting those not yet carved. */
  _Atomic uint32_t refs;
  uint32_t used; /* the owning thread only */
  tw__tnode nodes[TW__SLAB_NODES];
};

#if defined(__GNUC__) && defined(__ELF__)
/* One load per access rather than a __tls_get_addr call. */
#define TW__TNODE_TLS _Thread_local __attribute__((tls_model("initial-exec")))
#else
#define TW__TNODE_TLS _Thread_local
#endif

static TW__TNODE_TLS tw__tnode_slab *tw__tls_slab;
static TW__TNODE_TLS int tw__tls_registered;
static pthread_key_t tw__tnode_key;
static uv_once_t tw__tnode_once = UV_ONCE_INIT;
static int tw__tnode_key_ok;

static void tw__slab_release(tw__tnode_slab *slab, uint32_t n) {
  if (atomic_fetch_sub_explicit(&slab->refs, n, memory_order_acq_rel) == n)
    tw__free(slab);
}

/* Give up the calling thread's slab: release the nodes it never carved. */
static void tw__slab_retire(void) {
  tw__tnode_slab *slab = tw__tls_slab;
  if (slab == NULL) return;
  tw__tls_slab = NULL;
  tw__slab_release(slab, TW__SLAB_NODES - slab->used);
}

static void tw__tnode_thread_exit(void *marker) {
  (void)marker;
  tw__slab_retire();
  /* A later thread-exit destructor may still submit calls: its slab must be
   * registered (and so retired) again, or it would leak. */
  tw__tls_registered = 0;
}

static void tw__tnode_key_init(void) {
  tw__tnode_key_ok =
      pthread_key_create(&tw__tnode_key, tw__tnode_thread_exit) == 0;
}

void tw_thread_cleanup(void) { tw__slab_retire(); }

void *tw__tnode_get(void) {
  tw__tnode_slab *slab = tw__tls_slab;
  tw__tnode *node;
  if (TW__UNLIKELY(slab == NULL)) {
    if (!tw__tls_registered) {
      /* The exit hook is what keeps a cached slab from leaking; without it
       * (key creation failed) every node gets a slab of its own. */
      uv_once(&tw__tnode_once, tw__tnode_key_init);
      if (tw__tnode_key_ok &&
          pthread_setspecific(tw__tnode_key, &tw__tls_slab) == 0)
        tw__tls_registered = 1;
    }
    slab = tw__malloc(sizeof(*slab));
    if (slab == NULL) return NULL;
    atomic_init(&slab->refs, TW__SLAB_NODES);
    slab->used = tw__tls_registered ? 0 : TW__SLAB_NODES - 1;
    if (!tw__tls_registered) atomic_init(&slab->refs, 1);
    tw__tls_slab = slab;
  }
  node = &slab->nodes[slab->used++];
  node->slab = slab;
  /* Fully carved: from now on the slab belongs to its nodes alone. */
  if (slab->used == TW__SLAB_NODES) tw__tls_slab = NULL;
  return node->u.bytes;
}

void tw__tnode_put(void *p) {
  tw__tnode *node = (tw__tnode *)p;
  tw__slab_release(node->slab, 1);
}
