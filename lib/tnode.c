/*
 * lib/tnode.c - per-thread slabs of nodes (tnode.h).
 *
 * Reuse: a thread keeps a hold (one extra reference) on its last few fully
 * carved slabs of each kind (tw__tnode_holds). When it needs a new slab and
 * the oldest of them has only that hold left (every node released), it
 * carves it again instead of allocating: a thread that keeps a steady
 * number of nodes in flight allocates nothing and hands glibc no memory to
 * free on another thread (and no heap to trim and fault in again).
 */
#include "tnode.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <uv.h>

typedef struct tw__tnode_slab tw__tnode_slab;

/* Each node is its slab's address followed by the caller's bytes: one
 * cache line, line-aligned. */
typedef struct tw__tnode_head {
  tw__tnode_slab *slab;
} tw__tnode_head;

_Static_assert(sizeof(tw__tnode_head) + TW__TNODE_SIZE == TW__LINE,
               "a node is one cache line");

struct tw__tnode_slab {
  /* Nodes not yet released, counting those not yet carved, plus one while
   * the owning thread holds the slab. */
  _Atomic uint32_t refs;
  /* The nodes follow, from the first line boundary after this header. */
};

/*
 * Nodes per slab: 36 small (~2.4 KiB: every producer thread has one), 240
 * tasks (~15 KiB: made by few threads, in bursts of thousands, where a slab
 * per 60 had glibc's arena lock fought over by the pool threads freeing
 * them) and 36 jobs (~16 KiB: a Deferred the caller keeps keeps its job's
 * slab); and the lines of one node.
 */
static const uint32_t tw__tnode_counts[TW__TNODE_KINDS] = {36, 240, 36};
static const uint32_t tw__tnode_lines[TW__TNODE_KINDS] = {1, 1, 7};
/* References a new node holds in its slab (tnode.h: a job's two holders). */
static const uint32_t tw__tnode_refs[TW__TNODE_KINDS] = {1, 1, 2};

_Static_assert(TW__TNODE_JOB_SIZE + sizeof(tw__tnode_head) ==
                   7 * TW__LINE,
               "a job node is seven lines");

static size_t tw__slab_bytes(int kind, uint32_t count) {
  /* Room to align the nodes, whatever malloc's alignment. */
  return TW__LINE +
         (size_t)count * tw__tnode_lines[kind] * TW__LINE;
}

static tw__tnode_head *tw__tnode_at(tw__tnode_slab *slab, int kind,
                                    uint32_t i) {
  uintptr_t first = ((uintptr_t)(slab + 1) + TW__LINE - 1) &
                    ~(uintptr_t)(TW__LINE - 1);
  return (tw__tnode_head *)(first + (uintptr_t)i * tw__tnode_lines[kind] *
                                        TW__LINE);
}

#define TW__TNODE_HOLD 8
/* How many of the HOLD places each kind uses: a held job slab is big. */
static const uint32_t tw__tnode_holds[TW__TNODE_KINDS] = {8, 8, 4};

/* The calling thread's slabs of one kind (kept here, not in the slab,
 * whose line the releasers write). */
typedef struct tw__tnode_cache {
  tw__tnode_slab *slab; /* being carved, or NULL */
  uint32_t used;        /* nodes of slab carved */
  uint32_t n_held;      /* fully carved slabs we still hold, oldest first */
  uint32_t first;       /* index of the oldest in held */
  tw__tnode_slab *held[TW__TNODE_HOLD];
} tw__tnode_cache;

static TW__TLS tw__tnode_cache tw__tls_cache[TW__TNODE_KINDS];
static TW__TLS int tw__tls_registered;
static pthread_key_t tw__tnode_key;
static uv_once_t tw__tnode_once = UV_ONCE_INIT;
static int tw__tnode_key_ok;

static void tw__slab_release(tw__tnode_slab *slab, uint32_t n) {
  if (atomic_fetch_sub_explicit(&slab->refs, n, memory_order_acq_rel) == n)
    tw__free(slab);
}

/* Give up the calling thread's slabs: release the nodes it never carved
 * and its holds. */
static void tw__slab_retire(void) {
  int k;
  for (k = 0; k < TW__TNODE_KINDS; k++) {
    tw__tnode_cache *c = &tw__tls_cache[k];
    tw__tnode_slab *slab = c->slab;
    c->slab = NULL;
    if (slab != NULL)
      tw__slab_release(slab,
                       (tw__tnode_counts[k] - c->used) * tw__tnode_refs[k] + 1);
    while (c->n_held > 0) {
      slab = c->held[c->first];
      c->first = (c->first + 1) % TW__TNODE_HOLD;
      c->n_held--;
      tw__slab_release(slab, 1);
    }
  }
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


/* A slab to carve: the oldest held one if all its nodes came back. */
static tw__tnode_slab *tw__slab_new(tw__tnode_cache *c, int kind) {
  uint32_t count = tw__tnode_counts[kind] * tw__tnode_refs[kind];
  tw__tnode_slab *slab;
  if (c->n_held > 0) {
    slab = c->held[c->first];
    if (atomic_load_explicit(&slab->refs, memory_order_acquire) == 1) {
      c->first = (c->first + 1) % TW__TNODE_HOLD;
      c->n_held--;
      atomic_store_explicit(&slab->refs, count + 1,
                            memory_order_relaxed);
      return slab;
    }
  }
  slab = tw__malloc(tw__slab_bytes(kind, tw__tnode_counts[kind]));
  if (slab != NULL) atomic_init(&slab->refs, count + 1);
  return slab;
}

/* slab is fully carved: hold it for reuse, letting go of the oldest. */
static void tw__slab_hold(tw__tnode_cache *c, int kind, tw__tnode_slab *slab) {
  if (c->n_held == tw__tnode_holds[kind]) {
    tw__tnode_slab *oldest = c->held[c->first];
    c->first = (c->first + 1) % TW__TNODE_HOLD;
    c->n_held--;
    tw__slab_release(oldest, 1);
  }
  c->held[(c->first + c->n_held) % TW__TNODE_HOLD] = slab;
  c->n_held++;
}

void *tw__tnode_get_kind(int kind) {
  uint32_t count = tw__tnode_counts[kind];
  tw__tnode_cache *c = &tw__tls_cache[kind];
  tw__tnode_slab *slab = c->slab;
  tw__tnode_head *node;
  uint32_t used;
  if (TW__UNLIKELY(slab == NULL)) {
    if (!tw__tls_registered) {
      /* The exit hook is what keeps cached slabs from leaking; without it
       * (key creation failed) every node gets a slab of its own. */
      uv_once(&tw__tnode_once, tw__tnode_key_init);
      if (tw__tnode_key_ok &&
          pthread_setspecific(tw__tnode_key, &tw__tls_cache) == 0)
        tw__tls_registered = 1;
    }
    if (!tw__tls_registered) {
      slab = tw__malloc(tw__slab_bytes(kind, 1));
      if (slab == NULL) return NULL;
      atomic_init(&slab->refs, tw__tnode_refs[kind]);
      node = tw__tnode_at(slab, kind, 0);
      node->slab = slab;
      return node + 1;
    }
    slab = tw__slab_new(c, kind);
    if (slab == NULL) return NULL;
    c->slab = slab;
    c->used = 0;
  }
  used = c->used++;
  node = tw__tnode_at(slab, kind, used);
  node->slab = slab;
  if (used + 1 == count) {
    c->slab = NULL;
    tw__slab_hold(c, kind, slab);
  }
  return node + 1;
}

void tw__tnode_put(void *p) {
  tw__tnode_head *node = (tw__tnode_head *)p - 1;
  tw__slab_release(node->slab, 1);
}
