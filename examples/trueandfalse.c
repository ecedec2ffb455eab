/*
 * examples/trueandfalse.c - Twisted's docs/core/howto/listings/process/
 * trueandfalse.py ported: getProcessValue on /bin/true, then /bin/false.
 *
 *     $ ./trueandfalse
 *     /bin/true exits with rc=0
 *     /bin/false exits with rc=1
 */
#include <stdint.h>
#include <stdio.h>
#include <twuv.h>

static tw_reactor *r;
static int rc_true = -1, rc_false = -1;

static tw_result print_false_value(tw_result val, void *arg) {
  (void)arg;
  if (val.kind != TW_RESULT_VALUE) return val;
  rc_false = (int)(intptr_t)val.u.value;
  printf("/bin/false exits with rc=%d\n", rc_false);
  tw_reactor_stop(r);
  return tw_result_none();
}

static tw_result print_true_value(tw_result val, void *arg) {
  tw_deferred *output;
  (void)arg;
  if (val.kind != TW_RESULT_VALUE) return val;
  rc_true = (int)(intptr_t)val.u.value;
  printf("/bin/true exits with rc=%d\n", rc_true);
  if (tw_get_process_value(r, "/bin/false", NULL, NULL, NULL, &output) != 0) {
    tw_reactor_stop(r);
    return tw_result_none();
  }
  tw_deferred_add_callback(output, print_false_value, NULL);
  tw_deferred_unref(output);
  return tw_result_none();
}

int main(void) {
  tw_deferred *output;
  if (tw_reactor_new(&r, NULL, 0) != 0) return 1;
  if (tw_get_process_value(r, "/bin/true", NULL, NULL, NULL, &output) != 0)
    return 1;
  tw_deferred_add_callback(output, print_true_value, NULL);
  tw_deferred_unref(output);
  tw_reactor_run(r);
  tw_reactor_free(r);
  return rc_true == 0 && rc_false == 1 ? 0 : 1;
}
