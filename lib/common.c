/*
 * lib/common.c - the allocator hook (common.h) and the version (version.h).
 */
#include "internal.h"

#include <string.h>

#include <stdlib.h>

/*
 * Read on every allocation, written only by tw_replace_allocator, which the
 * contract says runs before any other twuv call (as with libuv): so plain
 * variables are enough, and thread creation publishes them.
 */
static struct {
  tw_malloc_func malloc_func;
  tw_realloc_func realloc_func;
  tw_calloc_func calloc_func;
  tw_free_func free_func;
} tw__allocator = {malloc, realloc, calloc, free};

int tw_replace_allocator(tw_malloc_func malloc_func,
                         tw_realloc_func realloc_func,
                         tw_calloc_func calloc_func, tw_free_func free_func) {
  if (malloc_func == NULL || realloc_func == NULL || calloc_func == NULL ||
      free_func == NULL)
    return TW_EINVAL;
  tw__allocator.malloc_func = malloc_func;
  tw__allocator.realloc_func = realloc_func;
  tw__allocator.calloc_func = calloc_func;
  tw__allocator.free_func = free_func;
  return 0;
}

void *tw__malloc(size_t size) {
  /* malloc(0) may return NULL or not; make it predictable. */
  if (size == 0) size = 1;
  return tw__allocator.malloc_func(size);
}

void *tw__calloc(size_t count, size_t size) {
  if (count == 0 || size == 0) count = size = 1;
  return tw__allocator.calloc_func(count, size);
}

void *tw__realloc(void *ptr, size_t size) {
  if (size == 0) size = 1; /* never the free-like realloc(p, 0) */
  return tw__allocator.realloc_func(ptr, size);
}

void tw__free(void *ptr) {
  if (ptr != NULL) tw__allocator.free_func(ptr);
}

void *tw__calloc_lines(size_t size) {
  size_t lines = (size + TW__LINE - 1) / TW__LINE, total;
  unsigned char *raw, *p;
  if (size == 0 || lines > (SIZE_MAX - 2 * TW__LINE) / TW__LINE) return NULL;
  /* Room to align, and for raw's address just below p, whatever the
   * allocator's alignment. */
  total = lines * TW__LINE + TW__LINE + sizeof(raw);
  raw = tw__calloc(1, total);
  if (raw == NULL) return NULL;
  p = raw + sizeof(raw);
  p += (TW__LINE - (uintptr_t)p % TW__LINE) % TW__LINE;
  memcpy(p - sizeof(raw), &raw, sizeof(raw));
  return p;
}

void tw__free_lines(void *ptr) {
  unsigned char *raw;
  if (ptr == NULL) return;
  memcpy(&raw, (unsigned char *)ptr - sizeof(raw), sizeof(raw));
  tw__free(raw);
}

/* ---- version ------------------------------------------------------------ */

#define TW__STR2(x) #x
#define TW__STR(x) TW__STR2(x)

unsigned int tw_version(void) { return TW_VERSION_HEX; }

const char *tw_version_string(void) {
  return TW__STR(TW_VERSION_MAJOR) "." TW__STR(TW_VERSION_MINOR) "." TW__STR(
      TW_VERSION_PATCH);
}
