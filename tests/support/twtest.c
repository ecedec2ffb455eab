#include "twtest.h"

#include <stdio.h>
#include <string.h>
#include <uv.h>

#define TWT_LOG_MAX 256

static uv_mutex_t log_mutex;
static twt_log_entry log_entries[TWT_LOG_MAX];
static size_t log_n;
static size_t log_dropped;

static void capture(const tw_log_record *rec, void *ctx) {
  twt_log_entry *e;
  (void)ctx;
  uv_mutex_lock(&log_mutex);
  if (log_n == TWT_LOG_MAX) {
    log_dropped++;
    uv_mutex_unlock(&log_mutex);
    return;
  }
  e = &log_entries[log_n++];
  memset(e, 0, sizeof(*e));
  e->level = rec->level;
  snprintf(e->message, sizeof(e->message), "%s", rec->message);
  if (rec->failure) {
    e->type = tw_failure_type(rec->failure);
    e->code = tw_failure_code(rec->failure);
    snprintf(e->failure_message, sizeof(e->failure_message), "%s",
             tw_failure_message(rec->failure));
  }
  if (rec->file) snprintf(e->file, sizeof(e->file), "%s", rec->file);
  e->line = rec->line;
  uv_mutex_unlock(&log_mutex);
}

void twt_setup(void) {
  twt_alloc_install();
  if (uv_mutex_init(&log_mutex) != 0) cr_assert_fail("mutex init");
  log_n = log_dropped = 0;
  tw_log_set_handler(capture, NULL);
}

void twt_teardown(void) { tw_log_set_handler(NULL, NULL); }

void twt_check(void) {
  size_t i, errors = 0;
  long live;
  uv_mutex_lock(&log_mutex);
  for (i = 0; i < log_n; i++) {
    if (log_entries[i].level >= TW_LOG_ERROR) {
      errors++;
      cr_log_info("unflushed logged error: %s [%s: %s]",
                  log_entries[i].message,
                  log_entries[i].type ? log_entries[i].type->name : "-",
                  log_entries[i].failure_message);
    }
  }
  uv_mutex_unlock(&log_mutex);
  tw_thread_cleanup(); /* this thread's node cache is not a leak */
  live = twt_alloc_live();
  cr_assert(live == 0, "leak: %ld twuv allocation(s) still live", live);
  cr_assert(errors == 0, "%zu logged error(s) not flushed by the test",
            errors);
  cr_assert(log_dropped == 0, "log capture overflowed");
}

size_t twt_log_count(void) {
  size_t n;
  uv_mutex_lock(&log_mutex);
  n = log_n;
  uv_mutex_unlock(&log_mutex);
  return n;
}

twt_log_entry twt_log_get(size_t i) {
  twt_log_entry e;
  uv_mutex_lock(&log_mutex);
  if (i < log_n)
    e = log_entries[i];
  else
    memset(&e, 0, sizeof(e));
  uv_mutex_unlock(&log_mutex);
  return e;
}

size_t twt_log_flush(const tw_error_type *type) {
  size_t i, j = 0, removed = 0;
  uv_mutex_lock(&log_mutex);
  for (i = 0; i < log_n; i++) {
    twt_log_entry *e = &log_entries[i];
    int match = e->level >= TW_LOG_ERROR &&
                (type == NULL || tw_error_type_is(e->type, type));
    if (match) {
      removed++;
    } else {
      if (i != j) log_entries[j] = *e;
      j++;
    }
  }
  log_n = j;
  uv_mutex_unlock(&log_mutex);
  return removed;
}

size_t twt_log_count_containing(const char *text) {
  size_t i, n = 0;
  uv_mutex_lock(&log_mutex);
  for (i = 0; i < log_n; i++)
    if (strstr(log_entries[i].message, text) != NULL) n++;
  uv_mutex_unlock(&log_mutex);
  return n;
}

void twt_log_clear(void) {
  uv_mutex_lock(&log_mutex);
  log_n = 0;
  uv_mutex_unlock(&log_mutex);
}

atomic_int twt_freed;

void twt_count_free(void *arg) {
  (void)arg;
  atomic_fetch_add(&twt_freed, 1);
}

tw_reactor *twt_new_reactor(unsigned flags) {
  tw_reactor *r = NULL;
  cr_assert_eq(tw_reactor_new(&r, NULL, flags), 0);
  return r;
}

void twt_run(tw_reactor *r) { cr_assert_eq(tw_reactor_run(r), 0); }

void twt_free_reactor(tw_reactor *r) { cr_assert_eq(tw_reactor_free(r), 0); }

int twt_spin_until(tw_reactor *r, const int *flag, int want) {
  uint64_t end = uv_hrtime() + (uint64_t)TWT_SPIN_SECONDS * 1000000000u;
  int i;
  for (i = 0; i < 20000 && *flag < want && uv_hrtime() < end; i++)
    cr_assert_eq(tw_reactor_iterate(r, 0.05), 0);
  return *flag >= want;
}

int twt_spin(tw_reactor *r, const int *flag) {
  return twt_spin_until(r, flag, 1);
}
