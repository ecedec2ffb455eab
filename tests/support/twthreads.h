/*
 * tests/support/twthreads.h - the process's thread count, for the unit and
 * stress tests that check threads are gone (Linux: /proc/self/task).
 */
#ifndef TWT_THREADS_H
#define TWT_THREADS_H

#include <dirent.h>

/* Threads of this process, as /proc/self/task lists them; -1 if unreadable.
 * A thread leaves the list once it has returned from its function. */
static inline int twt_count_threads(void) {
  DIR *d = opendir("/proc/self/task");
  struct dirent *e;
  int n = 0;
  if (d == NULL) return -1;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n;
}

#endif
