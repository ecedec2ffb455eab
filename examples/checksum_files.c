/*
 * examples/checksum_files.c - the worked port of docs/porting.md: the
 * Twisted program examples/checksum_files.py, line by line in C. It shows
 * the idioms every port needs:
 *   - task.react: tw_react, returning the exit code from main;
 *   - an int result in a void * (tw_result_int / tw_result_as_int) and a
 *     string result (tw_result_printf, tw_result_strdup);
 *   - an OSError from the C library as a failure of Python's subclass
 *     (tw_failure_from_code(-errno): FileNotFoundError, PermissionError...);
 *   - DeferredSemaphore.run + deferToThread, trap, gatherResults;
 *   - SystemExit(2) as the exit code.
 * Checksums the files named on the command line (itself, when none), two at
 * a time on the reactor's thread pool, and prints one line per file in
 * argument order. tests/ runs it and the Python program on the same files and
 * compares their output, with Twisted as the oracle.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <twuv.h>

static tw_reactor *reactor;
static tw_deferred_semaphore *sem;
static int npaths;
static char **paths;

/* def fnv1a(path): runs on a pool thread. */
static tw_result fnv1a(void *arg) {
  const char *path = arg;
  uint32_t h = 0x811C9DC5u;
  int c;
  FILE *f = fopen(path, "rb");
  /* libuv's error codes are -errno on POSIX: the failure is the OSError
   * subclass Python would raise (FileNotFoundError for ENOENT). */
  if (f == NULL) return tw_result_failure(tw_failure_from_code(-errno));
  while ((c = getc(f)) != EOF) h = (h ^ (uint32_t)c) * 0x01000193u;
  if (ferror(f)) { /* a directory opens, then reads fail: EISDIR */
    int err = errno;
    fclose(f);
    return tw_result_failure(tw_failure_from_code(-err));
  }
  fclose(f);
  return tw_result_int((intptr_t)h);
}

/* threads.deferToThread(fnv1a, path), as sem.run's function. */
static tw_result hash_in_thread(void *path) {
  tw_deferred *d;
  int err = tw_defer_to_thread(reactor, fnv1a, path, NULL, &d);
  if (err < 0) return tw_result_failure(tw_failure_from_code(err));
  return tw_result_deferred(d);
}

/* lambda h: "%08x" % h */
static tw_result to_hex(tw_result h, void *arg) {
  (void)arg;
  return tw_result_printf("%08lx", (unsigned long)tw_result_as_int(h));
}

/* def describe(failure): failure.trap(OSError); return type name */
static tw_result describe(tw_result r, void *arg) {
  tw_result name;
  (void)arg;
  if (!tw_failure_trap(r.u.failure, &TW_OS_ERROR)) return r; /* re-raise */
  name = tw_result_strdup(tw_failure_type(r.u.failure)->name);
  tw_result_release(r);
  return name;
}

/* def show(texts) */
static tw_result show(tw_result r, void *arg) {
  const tw_list_result *texts = r.u.value;
  int i, missing = 0;
  (void)arg;
  for (i = 0; i < npaths; i++) {
    const char *text = texts->items[i].value;
    printf("%s: %s\n", paths[i], text);
    if (strcmp(text, "FileNotFoundError") == 0) missing = 1;
  }
  tw_result_release(r);
  if (missing)
    return tw_result_failure(tw_failure_new(&TW_SYSTEM_EXIT, 2, "missing"));
  return tw_result_none();
}

/* def main(reactor, *paths) */
static tw_deferred *checksum_main(tw_reactor *r, int argc, char **argv) {
  tw_deferred **ds, *all = NULL;
  int i, n = 0;
  reactor = r;
  npaths = argc;
  paths = argv;
  ds = calloc((size_t)argc, sizeof(*ds));
  if (ds == NULL || tw_deferred_semaphore_new(&sem, 2) < 0) {
    free(ds);
    return NULL;
  }
  for (i = 0; i < npaths; i++) {
    tw_deferred *d;
    if (tw_deferred_semaphore_run(sem, hash_in_thread, argv[i], &d) < 0) break;
    tw_deferred_add_callbacks(d, to_hex, describe, NULL);
    ds[n++] = d;
  }
  if (n == npaths) tw_gather_results(&all, ds, (size_t)n, 0); /* NULL on error */
  for (i = 0; i < n; i++) tw_deferred_unref(ds[i]); /* the list holds them */
  free(ds);
  if (all != NULL) tw_deferred_add_callback(all, show, NULL);
  return all;
}

int main(int argc, char **argv) {
  char *self[] = {argv[0], NULL};
  int code = argc > 1 ? tw_react(checksum_main, argc - 1, argv + 1)
                      : tw_react(checksum_main, 1, self);
  tw_deferred_semaphore_free(sem);
  tw_thread_cleanup(); /* release this thread's cached nodes (valgrind) */
  if (code < 0) {
    fprintf(stderr, "checksum_files: %s\n", tw_strerror(code));
    return 1;
  }
  return code;
}
