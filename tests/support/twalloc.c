#include "twalloc.h"

#include <stdatomic.h>
#include <stdlib.h>

#include "twuv.h"

static atomic_long live, total, failed, countdown;
static atomic_int fail_all;

static int should_fail(void) {
  long n;
  if (atomic_load(&fail_all)) return 1;
  n = atomic_load(&countdown);
  while (n > 0) {
    if (atomic_compare_exchange_weak(&countdown, &n, n - 1)) return n == 1;
  }
  return 0;
}

static void *t_malloc(size_t size) {
  void *p;
  if (should_fail()) {
    atomic_fetch_add(&failed, 1);
    return NULL;
  }
  p = malloc(size);
  if (p) {
    atomic_fetch_add(&live, 1);
    atomic_fetch_add(&total, 1);
  }
  return p;
}

static void *t_calloc(size_t count, size_t size) {
  void *p;
  if (should_fail()) {
    atomic_fetch_add(&failed, 1);
    return NULL;
  }
  p = calloc(count, size);
  if (p) {
    atomic_fetch_add(&live, 1);
    atomic_fetch_add(&total, 1);
  }
  return p;
}

static void *t_realloc(void *ptr, size_t size) {
  void *p;
  if (should_fail()) {
    atomic_fetch_add(&failed, 1);
    return NULL;
  }
  p = realloc(ptr, size);
  if (p && ptr == NULL) {
    atomic_fetch_add(&live, 1);
    atomic_fetch_add(&total, 1);
  }
  return p;
}

static void t_free(void *ptr) {
  if (ptr == NULL) return;
  atomic_fetch_sub(&live, 1);
  free(ptr);
}

void twt_alloc_install(void) {
  tw_replace_allocator(t_malloc, t_realloc, t_calloc, t_free);
}

long twt_alloc_live(void) { return atomic_load(&live); }
long twt_alloc_total(void) { return atomic_load(&total); }
long twt_alloc_failed(void) { return atomic_load(&failed); }
void twt_alloc_fail_nth(long n) { atomic_store(&countdown, n > 0 ? n : 0); }
void twt_alloc_fail_all(int on) { atomic_store(&fail_all, on != 0); }
