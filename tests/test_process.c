/*
 * tests/test_process.c - child processes (process.h): ports of
 * twisted/internet/test/test_process.py (ProcessTestsBuilderBase,
 * ProcessTestsBuilder) and twisted/test/test_iutils.py (ProcessUtilsTests)
 * where they map, with Twisted's names in snake_case, plus twuv's own:
 * bad input, child_fds, env, reactor shutdown and free, producers.
 *
 * The child is tests/support/proc_helper (PROC_HELPER, built by meson) in
 * place of Twisted's python children. Every wait is bounded (spin: 20000
 * iterations and 10 s, then the test fails); no sleeps, no timing asserts.
 * The reasons' messages are Twisted 22.4's, as str() of ProcessDone(0),
 * ProcessTerminated(1) and ProcessTerminated(signal=9) print them.
 */
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "twtest.h"

#ifndef PROC_HELPER
#error "PROC_HELPER (the helper executable's path) is set by tests/meson.build"
#endif

TWT_SUITE(process);

/* ---- harness ------------------------------------------------------------------ */

#define spin twt_spin /* twtest.h */

/* spin for a condition: the same bounds. */
#define SPIN_UNTIL(cond)                                            \
  do {                                                              \
    uint64_t end_ = uv_hrtime() + 10ull * 1000000000ull;            \
    int i_;                                                         \
    for (i_ = 0; i_ < 20000 && !(cond) && uv_hrtime() < end_; i_++) \
      cr_assert_eq(tw_reactor_iterate(R, 0.05), 0);                 \
    cr_assert(cond, "timed out waiting for " #cond);                \
  } while (0)

#define BUF 8192

typedef struct rec {
  tw_process_protocol base;
  tw_transport *t;
  int made, made_in_spawn;
  char out[BUF], err[BUF], fd3[BUF];
  size_t nout, nerr, nfd3;
  int lost[8];
  int nlost; /* child_connection_lost calls */
  int lost_at_exit; /* nlost when process_exited ran */
  int exited, ended;
  const tw_error_type *exited_type, *ended_type;
  int exited_code, exited_signal, ended_code, ended_signal;
  char exited_msg[256], ended_msg[256];
  int lost_after_ended; /* child_connection_lost after process_ended */
  int pid_at_exit, signal_at_exit_rc;
  int transport_in_ended_is_set;
  char trace[256]; /* M D<fd> L<fd> X E */
  /* behaviour */
  const char *signal_on_data;
  int lose_on_data, lose_on_exit, fail_on_data;
  int closed_fds_on_exit;
} rec;

static int in_spawn;

static void trace(rec *x, const char *s) {
  size_t n = strlen(x->trace);
  snprintf(x->trace + n, sizeof(x->trace) - n, "%s%s", n ? " " : "", s);
}

static void rec_made(tw_process_protocol *pp) {
  rec *x = (rec *)pp;
  x->made++;
  x->made_in_spawn = in_spawn;
  x->t = pp->transport;
  trace(x, "M");
}

static void add(char *buf, size_t *n, const char *data, size_t len) {
  if (*n + len < BUF) {
    memcpy(buf + *n, data, len);
    buf[*n + len] = '\0';
  }
  *n += len;
}

static tw_failure *rec_data(tw_process_protocol *pp, int fd, const char *data,
                            size_t len) {
  rec *x = (rec *)pp;
  char tr[8];
  snprintf(tr, sizeof(tr), "D%d", fd);
  if (strstr(x->trace, tr) == NULL) trace(x, tr);
  if (fd == 1) add(x->out, &x->nout, data, len);
  if (fd == 2) add(x->err, &x->nerr, data, len);
  if (fd == 3) add(x->fd3, &x->nfd3, data, len);
  if (x->fail_on_data)
    return tw_failure_new(&TW_VALUE_ERROR, 0, "child_data_received raised");
  if (x->signal_on_data != NULL) {
    cr_assert_eq(tw_process_signal(pp->transport, x->signal_on_data), 0);
    x->signal_on_data = NULL;
  }
  if (x->lose_on_data) {
    x->lose_on_data = 0;
    cr_assert_eq(tw_transport_lose_connection(pp->transport), 0);
  }
  return NULL;
}

static void rec_lost(tw_process_protocol *pp, int fd) {
  rec *x = (rec *)pp;
  char tr[8];
  if (fd >= 0 && fd < 8) x->lost[fd]++;
  x->nlost++;
  if (x->ended) x->lost_after_ended++;
  snprintf(tr, sizeof(tr), "L%d", fd);
  trace(x, tr);
}

static void rec_exited(tw_process_protocol *pp, tw_failure *reason) {
  rec *x = (rec *)pp;
  x->exited++;
  x->lost_at_exit = x->nlost;
  x->exited_type = tw_failure_type(reason);
  x->exited_code = tw_process_exit_code(reason);
  x->exited_signal = tw_process_exit_signal(reason);
  snprintf(x->exited_msg, sizeof(x->exited_msg), "%s",
           tw_failure_message(reason));
  x->pid_at_exit = tw_process_pid(pp->transport);
  x->signal_at_exit_rc = tw_process_signal(pp->transport, "KILL");
  trace(x, "X");
  if (x->lose_on_exit)
    cr_assert_eq(tw_transport_lose_connection(pp->transport), 0);
}

static void rec_ended(tw_process_protocol *pp, tw_failure *reason) {
  rec *x = (rec *)pp;
  x->ended++;
  x->ended_type = tw_failure_type(reason);
  x->ended_code = tw_process_exit_code(reason);
  x->ended_signal = tw_process_exit_signal(reason);
  x->transport_in_ended_is_set = pp->transport != NULL;
  snprintf(x->ended_msg, sizeof(x->ended_msg), "%s",
           tw_failure_message(reason));
  trace(x, "E");
}

static const tw_process_protocol_ops rec_ops = {
    .connection_made = rec_made,
    .child_data_received = rec_data,
    .child_connection_lost = rec_lost,
    .process_exited = rec_exited,
    .process_ended = rec_ended,
};

static tw_reactor *R;
static rec P;

/* Under valgrind (--trace-children=yes) the helper runs under valgrind
 * too, which adds its own variables to the child's environment and cannot
 * write its log as another user. */
static int under_valgrind(void) {
  const char *p = getenv("LD_PRELOAD");
  return p != NULL && strstr(p, "vgpreload") != NULL;
}

/* out without the lines valgrind added (LD_PRELOAD=..., VALGRIND_...). */
static void strip_valgrind_env(char *out) {
  char *r = out, *w = out;
  while (*r != '\0') {
    char *nl = strchr(r, '\n');
    size_t len = nl != NULL ? (size_t)(nl - r) + 1 : strlen(r);
    if (strncmp(r, "LD_PRELOAD=", 11) != 0 && strncmp(r, "VALGRIND_", 9) != 0) {
      memmove(w, r, len);
      w += len;
    }
    r += len;
  }
  *w = '\0';
}

static void setup_reactor(void) {
  R = twt_new_reactor(0);
  memset(&P, 0, sizeof(P));
  cr_assert_eq(tw_process_protocol_init(&P.base, &rec_ops), 0);
}

/* Spawn the helper with args (NULL-terminated), default child_fds. */
static int spawn_fds(rec *x, const char *const *args, const tw_child_fd *fds,
                     size_t nfds, tw_transport **t) {
  const char *argv[32];
  size_t i = 0;
  int rc;
  argv[i++] = "proc_helper";
  for (; args != NULL && args[i - 1] != NULL; i++) argv[i] = args[i - 1];
  argv[i] = NULL;
  in_spawn = 1;
  rc = tw_spawn_process(R, &x->base, PROC_HELPER, argv, NULL, NULL, fds, nfds,
                        NULL, t);
  in_spawn = 0;
  return rc;
}

static tw_transport *spawn(rec *x, const char *const *args) {
  tw_transport *t = NULL;
  cr_assert_eq(spawn_fds(x, args, NULL, 0, &t), 0);
  cr_assert_not_null(t);
  return t;
}

static void wait_ended(rec *x) {
  cr_assert(spin(R, &x->ended), "process_ended never came (trace: %s)",
            x->trace);
}

static void finish(void) {
  twt_free_reactor(R);
  R = NULL;
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

static const char DONE_MSG[] =
    "A process has ended without apparent errors: process finished with "
    "exit code 0.";

/* ---- ProcessTestsBuilderBase ------------------------------------------------------ */

TWT_TEST(process, process_transport_interface) {
  tw_transport *t;
  setup_reactor();
  t = spawn(&P, ARGS("exit", "0"));
  /* connection_made ran inside tw_spawn_process, with the transport set. */
  cr_assert_eq(P.made, 1);
  cr_assert(P.made_in_spawn);
  cr_assert_eq(P.t, t);
  cr_assert_eq(P.base.transport, t);
  cr_assert_eq(tw_transport_is_process(t), 1);
  cr_assert_gt(tw_process_pid(t), 0);
  cr_assert_eq(tw_transport_connected(t), 1);
  {
    tw_address a;
    cr_assert_eq(tw_transport_get_peer(t, &a), TW_ENOTSUP);
    cr_assert_eq(tw_transport_get_host(t, &a), TW_ENOTSUP);
    cr_assert_eq(tw_transport_abort_connection(t), TW_ENOTSUP);
  }
  wait_ended(&P);
  cr_assert_eq(P.ended, 1);
  cr_assert_eq(P.ended_type, &TW_PROCESS_DONE);
  cr_assert_str_eq(P.ended_msg, DONE_MSG);
  cr_assert_eq(P.ended_code, 0);
  cr_assert_eq(P.ended_signal, 0);
  cr_assert(P.transport_in_ended_is_set);
  cr_assert_null(P.base.transport);
  /* Twisted's order: exited, the pipes (any order), ended last. */
  cr_assert_eq(P.exited, 1);
  cr_assert_eq(P.nlost, 3);
  cr_assert_eq(P.lost[0] + P.lost[1] + P.lost[2], 3);
  cr_assert_eq(P.lost_after_ended, 0);
  cr_assert(tw_failure_check(NULL, &TW_PROCESS_DONE) == NULL);
  finish();
}

/* _writeTest: the child echoes one line of its stdin. */
static void write_test(int how) {
  static const char bytes[] = "hello, world\n";
  tw_transport *t;
  setup_reactor();
  t = spawn(&P, ARGS("line"));
  switch (how) {
    case 0: cr_assert_eq(tw_transport_write(t, bytes, strlen(bytes)), 0); break;
    case 1: {
      tw_iovec v[2] = {{bytes, 5}, {bytes + 5, strlen(bytes) - 5}};
      cr_assert_eq(tw_transport_write_sequence(t, v, 2), 0);
      break;
    }
    case 2:
      cr_assert_eq(tw_process_write_to_child(t, 0, bytes, strlen(bytes)), 0);
      break;
    case 3:
      /* writeToChild(13): Twisted's KeyError. */
      cr_assert_eq(tw_process_write_to_child(t, 13, bytes, strlen(bytes)),
                   TW_EINVAL);
      cr_assert_eq(tw_process_write_to_child(t, 1, bytes, strlen(bytes)),
                   TW_EINVAL);
      cr_assert_eq(tw_transport_write(t, bytes, strlen(bytes)), 0);
      break;
  }
  wait_ended(&P);
  cr_assert_str_eq(P.out, bytes);
  cr_assert_eq(P.ended_type, &TW_PROCESS_DONE);
  finish();
}

TWT_TEST(process, write) { write_test(0); }
TWT_TEST(process, write_sequence) { write_test(1); }
TWT_TEST(process, write_to_child) { write_test(2); }
TWT_TEST(process, write_to_child_bad_file_descriptor) { write_test(3); }

/* test_spawnProcessEarlyIsReaped: spawned before the reactor runs, with no
 * pipes at all (childFDs={}), the exit is still seen. */
TWT_TEST(process, spawn_process_early_is_reaped) {
  tw_transport *t;
  setup_reactor();
  static const tw_child_fd none[1] = {{0, 'w', 0}};
  cr_assert_eq(spawn_fds(&P, ARGS("exit", "0"), none, 0, &t), 0);
  wait_ended(&P);
  cr_assert_eq(P.nlost, 0);
  cr_assert_eq(P.exited, 1);
  cr_assert_eq(P.ended_type, &TW_PROCESS_DONE);
  finish();
}

TWT_TEST(process, process_exited_with_signal) {
  setup_reactor();
  /* Talk first so that the signal reaches the helper, not a child still
   * on its way to exec (libuv's uv_spawn returns after the exec anyway). */
  P.signal_on_data = "TERM";
  spawn(&P, ARGS("write", "1", "x", "drain"));
  wait_ended(&P);
  cr_assert_eq(P.exited_type, &TW_PROCESS_TERMINATED);
  cr_assert_eq(P.exited_signal, SIGTERM);
  cr_assert_eq(P.exited_code, -1);
  cr_assert_str_eq(P.exited_msg,
                   "A process has ended with a probable error condition: "
                   "process ended by signal 15.");
  cr_assert_eq(P.ended_type, &TW_PROCESS_TERMINATED);
  cr_assert_eq(P.ended_signal, SIGTERM);
  cr_assert(tw_failure_check(NULL, &TW_CONNECTION_LOST) == NULL);
  cr_assert(tw_error_type_is(&TW_PROCESS_TERMINATED, &TW_CONNECTION_LOST));
  cr_assert(tw_error_type_is(&TW_PROCESS_DONE, &TW_CONNECTION_DONE));
  finish();
}

/* test_openFileDescriptors: a descriptor the parent opened with
 * FD_CLOEXEC (as twuv and libuv open theirs) is not open in the child;
 * 0-2 are. libuv does not close the others (docs/design.md): pinned in
 * open_file_descriptors_without_cloexec_are_inherited. */
TWT_TEST(process, open_file_descriptors) {
  int fds[2], high;
  char want[64];
  setup_reactor();
  cr_assert_eq(pipe2(fds, O_CLOEXEC), 0);
  high = fcntl(fds[1], F_DUPFD_CLOEXEC, 200);
  cr_assert_geq(high, 200);
  spawn(&P, ARGS("fds", "256"));
  wait_ended(&P);
  snprintf(want, sizeof(want), " %d", high);
  cr_assert_eq(strncmp(P.out, "0 1 2", 5), 0, "child fds: %s", P.out);
  cr_assert_null(strstr(P.out, want), "child fds: %s", P.out);
  close(fds[0]);
  close(fds[1]);
  close(high);
  finish();
}

TWT_TEST(process, open_file_descriptors_without_cloexec_are_inherited) {
  int fd;
  char want[64];
  setup_reactor();
  fd = fcntl(0, F_DUPFD, 210);
  if (fd < 0) fd = open("/dev/null", O_RDONLY);
  cr_assert_geq(fd, 0);
  if (fd < 210) {
    int f2 = fcntl(fd, F_DUPFD, 210);
    close(fd);
    fd = f2;
  }
  spawn(&P, ARGS("fds", "256"));
  wait_ended(&P);
  snprintf(want, sizeof(want), " %d", fd);
  cr_assert_not_null(strstr(P.out, want), "child fds: %s", P.out);
  close(fd);
  finish();
}

/* test_errorDuringExec, twuv's choice: an executable that cannot be run
 * fails tw_spawn_process at once with libuv's code; nothing is called on
 * the protocol and nothing leaks (docs/design.md "Processes"). */
TWT_TEST(process, error_during_exec) {
  tw_transport *t = (tw_transport *)&t;
  setup_reactor();
  cr_assert_eq(tw_spawn_process(R, &P.base, "/nonexistent/twuv-no-such-exe",
                                NULL, NULL, NULL, NULL, 0, NULL, &t),
               UV_ENOENT);
  cr_assert_null(t);
  cr_assert_eq(tw_spawn_process(R, &P.base, "twuv-no-such-exe-in-path", NULL,
                                TW_PROCESS_ENV_INHERIT, NULL, NULL, 0, NULL,
                                &t),
               UV_ENOENT);
  /* Not executable. */
  cr_assert_eq(tw_spawn_process(R, &P.base, "/etc/passwd", NULL, NULL, NULL,
                                NULL, 0, NULL, &t),
               UV_EACCES);
  /* A working directory that does not exist. */
  cr_assert_eq(tw_spawn_process(R, &P.base, PROC_HELPER, NULL, NULL,
                                "/nonexistent/twuv-dir", NULL, 0, NULL, &t),
               UV_ENOENT);
  cr_assert_eq(P.made, 0);
  cr_assert_null(P.base.transport);
  /* The protocol can be used again. */
  spawn(&P, ARGS("exit", "0"));
  wait_ended(&P);
  finish();
}

TWT_TEST(process, timely_process_exited) {
  setup_reactor();
  spawn(&P, ARGS("exit", "0"));
  cr_assert(spin(R, &P.exited));
  cr_assert_eq(P.exited_code, 0);
  cr_assert_eq(P.exited_type, &TW_PROCESS_DONE);
  wait_ended(&P);
  finish();
}

static void ids_test(int set_uid, int set_gid) {
  tw_process_ids ids = {0, 0, 0, 0};
  tw_transport *t;
  const char *argv[] = {"proc_helper", "ids", NULL};
  char want[64];
  unsigned uid = (unsigned)getuid(), gid = (unsigned)getgid();
  setup_reactor();
  /* As root: another user; otherwise (and under valgrind, whose traced
   * child could not write its log as that user) our own ids. */
  if (uid == 0 && !under_valgrind()) {
    if (set_uid) uid = 65534;
    if (set_gid) gid = 65534;
  }
  ids.set_uid = set_uid;
  ids.uid = uid;
  ids.set_gid = set_gid;
  ids.gid = gid;
  cr_assert_eq(tw_spawn_process(R, &P.base, PROC_HELPER, argv, NULL, "/", NULL,
                                0, &ids, &t),
               0);
  wait_ended(&P);
  snprintf(want, sizeof(want), "%u %u", uid, gid);
  cr_assert_str_eq(P.out, want);
  finish();
}

TWT_TEST(process, change_uid) { ids_test(1, 0); }
TWT_TEST(process, change_gid) { ids_test(0, 1); }

/* test_processExitedRaises has no C form (nothing raises); the data
 * callbacks can fail: the failure is logged and that pipe closed, as
 * Twisted disconnects the reader whose handler raised. */
TWT_TEST(process, child_data_received_failure_closes_the_pipe) {
  setup_reactor();
  P.fail_on_data = 1;
  spawn(&P, ARGS("write", "1", "x", "drainfd", "1"));
  /* The child blocks reading its stdout until we close it. */
  cr_assert(spin(R, &P.lost[1]));
  cr_assert_eq(twt_log_flush(&TW_VALUE_ERROR), 1);
  cr_assert_eq(P.exited, 0);
  cr_assert_eq(tw_process_close_stdin(P.t), 0);
  wait_ended(&P);
  cr_assert_eq(P.ended_type, &TW_PROCESS_DONE);
  finish();
}

/* ---- ProcessTestsBuilder ------------------------------------------------------------ */

/* The child closes the descriptor named by each line of its stdin. */
TWT_TEST(process, child_connection_lost) {
  tw_transport *t;
  setup_reactor();
  t = spawn(&P, ARGS("closeon"));
  tw_transport_write(t, "2\n", 2);
  cr_assert(spin(R, &P.lost[2]));
  cr_assert_eq(P.nlost, 1);
  tw_transport_write(t, "1\n", 2);
  cr_assert(spin(R, &P.lost[1]));
  cr_assert_eq(P.nlost, 2);
  tw_transport_write(t, "\n", 1);
  /* The child exits: its end of stdin closes, which closes ours. */
  cr_assert(spin(R, &P.lost[0]));
  wait_ended(&P);
  cr_assert_eq(P.nlost, 3);
  finish();
}

TWT_TEST(process, process_ended) {
  setup_reactor();
  P.lose_on_data = 1;
  /* fork_keep: a grandchild keeps stdio open until stdin's EOF. */
  spawn(&P, ARGS("fork_keep", "write", "1", "x", "drain"));
  wait_ended(&P);
  cr_assert_eq(P.ended_type, &TW_PROCESS_DONE);
  cr_assert_eq(P.lost[0], 1);
  cr_assert_eq(P.lost[1], 1);
  cr_assert_eq(P.lost[2], 1);
  cr_assert_eq(P.lost_after_ended, 0);
  cr_assert_eq(P.exited, 1);
  finish();
}

/* process_exited comes when the child exits, even with its descriptors
 * still open (a grandchild holds them); process_ended only once they are
 * closed. */
TWT_TEST(process, process_exited) {
  setup_reactor();
  P.lose_on_exit = 1;
  spawn(&P, ARGS("fork_keep", "exit", "0"));
  wait_ended(&P);
  cr_assert_eq(P.exited_type, &TW_PROCESS_DONE);
  cr_assert_eq(P.lost_at_exit, 0, "trace: %s", P.trace);
  cr_assert_eq(P.nlost, 3);
  cr_assert_eq(P.ended_type, &TW_PROCESS_DONE);
  /* After the exit: pid 0 (None), signals are ProcessExitedAlready. */
  cr_assert_eq(P.pid_at_exit, 0);
  cr_assert_eq(P.signal_at_exit_rc, TW_ESRCH);
  /* The pipes' order is libuv's close order (Twisted's is its reactor's). */
  cr_assert_eq(strncmp(P.trace, "M X L", 5), 0, "trace: %s", P.trace);
  cr_assert_eq(strcmp(P.trace + strlen(P.trace) - 2, " E"), 0, "trace: %s",
               P.trace);
  finish();
}

static tw_process_output *got_output;
static tw_failure *got_failure;
static intptr_t got_value;
static int got;

static tw_result on_output(tw_result r, void *arg) {
  (void)arg;
  got = 1;
  if (r.kind == TW_RESULT_FAILURE) {
    got_failure = r.u.failure;
    return tw_result_none();
  }
  got_output = r.u.value;
  return tw_result_none();
}

static tw_result on_value(tw_result r, void *arg) {
  (void)arg;
  got = 1;
  if (r.kind == TW_RESULT_FAILURE) {
    got_failure = r.u.failure;
    return tw_result_none();
  }
  got_value = (intptr_t)r.u.value;
  return tw_result_none();
}

static void watch(tw_deferred *d, tw_callback_fn fn) {
  got = 0;
  got_output = NULL;
  got_failure = NULL;
  got_value = -99;
  cr_assert_eq(tw_deferred_add_both(d, fn, NULL), 0);
  tw_deferred_unref(d);
}

/* Release what on_output kept. */
static void drop_output(void) {
  tw_process_output_free(got_output);
  got_output = NULL;
  tw_failure_unref(got_failure);
  got_failure = NULL;
}

TWT_TEST(process, shebang) {
  char dir[] = "/tmp/twuv-proc-XXXXXX", path[64];
  FILE *f;
  tw_deferred *d;
  setup_reactor();
  cr_assert_not_null(mkdtemp(dir));
  snprintf(path, sizeof(path), "%s/script", dir);
  f = fopen(path, "w");
  cr_assert_not_null(f);
  fprintf(f, "#!/bin/sh\nprintf 'this is the shebang output'\n");
  fclose(f);
  cr_assert_eq(chmod(path, 0700), 0);
  cr_assert_eq(tw_get_process_output_and_value(R, path, NULL, NULL, NULL, NULL,
                                               0, &d),
               0);
  watch(d, on_output);
  cr_assert(spin(R, &got));
  cr_assert_not_null(got_output);
  cr_assert_str_eq(got_output->out, "this is the shebang output");
  cr_assert_eq(got_output->err_len, 0);
  cr_assert_str_eq(got_output->err, "");
  cr_assert_eq(got_output->code, 0);
  drop_output();
  unlink(path);
  rmdir(dir);
  finish();
}

TWT_TEST(process, pause_and_resume_producing) {
  tw_transport *t;
  setup_reactor();
  t = spawn(&P, ARGS("write", "1", "abc", "exit", "0"));
  cr_assert_eq(tw_transport_pause_producing(t), 0);
  /* Paused: the exit is seen, the output is not read. */
  cr_assert(spin(R, &P.exited));
  cr_assert_eq(P.nout, 0);
  cr_assert_eq(P.ended, 0);
  cr_assert_eq(tw_transport_resume_producing(t), 0);
  wait_ended(&P);
  cr_assert_str_eq(P.out, "abc");
  finish();
}

TWT_TEST(process, process_command_line_arguments) {
  static const char *const args[] = {
      "argv", "hello", "\"", " \t|<>^&", "\"\\\\\"hello\\\\\"",
      "\"foo\\ bar baz\\\"\"", "", NULL};
  char all[256];
  const char *with_all[3];
  tw_deferred *d;
  size_t i, off = 0;
  setup_reactor();
  cr_assert_eq(tw_get_process_output_and_value(R, PROC_HELPER, args, NULL,
                                               NULL, NULL, 0, &d),
               0);
  watch(d, on_output);
  cr_assert(spin(R, &got));
  cr_assert_not_null(got_output);
  for (i = 1; args[i] != NULL; i++) {
    cr_assert_str_eq(got_output->out + off, args[i]);
    off += strlen(args[i]) + 1;
  }
  cr_assert_eq(got_output->out_len, off);
  drop_output();
  /* Every non-NUL byte. */
  for (i = 1; i < 256; i++) all[i - 1] = (char)i;
  all[255] = '\0';
  with_all[0] = "argv";
  with_all[1] = all;
  with_all[2] = NULL;
  cr_assert_eq(tw_get_process_output_and_value(R, PROC_HELPER, with_all, NULL,
                                               NULL, NULL, 0, &d),
               0);
  watch(d, on_output);
  cr_assert(spin(R, &got));
  cr_assert_not_null(got_output);
  cr_assert_eq(got_output->out_len, 256);
  cr_assert_eq(memcmp(got_output->out, all, 256), 0);
  drop_output();
  finish();
}

/* ---- exit codes, signals ------------------------------------------------------------- */

TWT_TEST(process, exit_code_is_process_terminated) {
  setup_reactor();
  spawn(&P, ARGS("exit", "3"));
  wait_ended(&P);
  cr_assert_eq(P.ended_type, &TW_PROCESS_TERMINATED);
  cr_assert_eq(P.ended_code, 3);
  cr_assert_eq(P.ended_signal, 0);
  cr_assert_str_eq(P.ended_msg,
                   "A process has ended with a probable error condition: "
                   "process ended with exit code 3.");
  finish();
}

TWT_TEST(process, signal_names_and_numbers) {
  tw_transport *t;
  setup_reactor();
  /* Signals only once the helper talks (as Twisted's tests): under
   * valgrind the exec'd child is valgrind starting up for a while. */
  t = spawn(&P, ARGS("write", "1", "x", "drain"));
  SPIN_UNTIL(P.nout > 0);
  /* Names Twisted does not translate, and bad numbers: refused. */
  cr_assert_eq(tw_process_signal(t, "SIGTERM"), TW_EINVAL);
  cr_assert_eq(tw_process_signal(t, "USR1"), TW_EINVAL);
  cr_assert_eq(tw_process_signal(t, "term"), TW_EINVAL);
  cr_assert_eq(tw_process_signal(t, ""), TW_EINVAL);
  cr_assert_eq(tw_process_signal(t, NULL), TW_EINVAL);
  cr_assert_eq(tw_process_signal_number(t, -1), TW_EINVAL);
  cr_assert_eq(tw_process_signal_number(t, 65), TW_EINVAL);
  cr_assert_eq(tw_process_signal(NULL, "KILL"), TW_EINVAL);
  /* 0: alive. */
  cr_assert_eq(tw_process_signal_number(t, 0), 0);
  cr_assert_eq(tw_process_signal_number(t, SIGKILL), 0);
  wait_ended(&P);
  cr_assert_eq(P.ended_signal, SIGKILL);
  cr_assert_str_eq(P.ended_msg,
                   "A process has ended with a probable error condition: "
                   "process ended by signal 9.");
  finish();
}

static void signal_name_test(const char *name, int num) {
  tw_transport *t;
  setup_reactor();
  t = spawn(&P, ARGS("write", "1", "x", "drain"));
  SPIN_UNTIL(P.nout > 0);
  cr_assert_eq(tw_process_signal(t, name), 0);
  if (num == SIGSTOP) {
    /* Stopped, not ended: kill it to finish. */
    cr_assert_eq(tw_process_signal(t, "KILL"), 0);
    num = SIGKILL;
  }
  wait_ended(&P);
  cr_assert_eq(P.ended_signal, num);
  finish();
}

TWT_TEST(process, signal_hup) { signal_name_test("HUP", SIGHUP); }
TWT_TEST(process, signal_int) { signal_name_test("INT", SIGINT); }
TWT_TEST(process, signal_term) { signal_name_test("TERM", SIGTERM); }
TWT_TEST(process, signal_stop) { signal_name_test("STOP", SIGSTOP); }

TWT_TEST(process, killed_by_own_signal) {
  setup_reactor();
  spawn(&P, ARGS("kill", "9"));
  wait_ended(&P);
  cr_assert_eq(P.exited_signal, 9);
  cr_assert_eq(P.ended_code, -1);
  finish();
}

/* ---- env, path, child_fds -------------------------------------------------------------- */

static void env_test(const char *const *env, const char *want, int contains) {
  const char *argv[] = {"proc_helper", "env", NULL};
  tw_transport *t;
  setup_reactor();
  cr_assert_eq(tw_spawn_process(R, &P.base, PROC_HELPER, argv, env, NULL,
                                NULL, 0, NULL, &t),
               0);
  wait_ended(&P);
  if (under_valgrind()) strip_valgrind_env(P.out);
  if (contains)
    cr_assert_not_null(strstr(P.out, want), "env: %s", P.out);
  else
    cr_assert_str_eq(P.out, want);
  finish();
}

/* Twisted: no env given = an empty environment (libuv would inherit). */
TWT_TEST(process, env_null_is_empty) {
  setenv("TWUV_PROC_TEST", "inherited", 1);
  env_test(NULL, "", 0);
}

TWT_TEST(process, env_list_is_the_whole_environment) {
  static const char *const env[] = {"A=1", "B=two words", NULL};
  setenv("TWUV_PROC_TEST", "inherited", 1);
  env_test(env, "A=1\nB=two words\n", 0);
}

TWT_TEST(process, env_inherit) {
  setenv("TWUV_PROC_TEST", "inherited", 1);
  env_test(TW_PROCESS_ENV_INHERIT, "TWUV_PROC_TEST=inherited\n", 1);
}

TWT_TEST(process, path_is_the_working_directory) {
  char dir[] = "/tmp/twuv-proc-XXXXXX", real[PATH_MAX];
  const char *argv[] = {"proc_helper", "cwd", NULL};
  tw_transport *t;
  setup_reactor();
  cr_assert_not_null(mkdtemp(dir));
  cr_assert_not_null(realpath(dir, real));
  cr_assert_eq(tw_spawn_process(R, &P.base, PROC_HELPER, argv, NULL, dir,
                                NULL, 0, NULL, &t),
               0);
  wait_ended(&P);
  cr_assert_str_eq(P.out, real);
  rmdir(dir);
  finish();
}

TWT_TEST(process, child_fds_extra_read_pipe) {
  static const tw_child_fd fds[] = {
      {0, 'w', 0}, {1, 'r', 0}, {2, 'r', 0}, {3, 'r', 0}};
  tw_transport *t;
  setup_reactor();
  cr_assert_eq(spawn_fds(&P, ARGS("write", "3", "three", "write", "2", "two"),
                         fds, 4, &t),
               0);
  wait_ended(&P);
  cr_assert_str_eq(P.fd3, "three");
  cr_assert_str_eq(P.err, "two");
  cr_assert_eq(P.lost[3], 1);
  cr_assert_eq(P.nlost, 4);
  finish();
}

/* An extra 'w' pipe, written with write_to_child, closed with
 * close_child_fd (the child reads its EOF). */
TWT_TEST(process, child_fds_extra_write_pipe) {
  static const tw_child_fd fds[] = {{1, 'r', 0}, {4, 'w', 0}};
  tw_transport *t;
  setup_reactor();
  cr_assert_eq(spawn_fds(&P, ARGS("drainfd", "4", "write", "1", "done"), fds,
                         2, &t),
               0);
  cr_assert_eq(tw_process_write_to_child(t, 4, "data", 4), 0);
  /* No stdin pipe: the transport's write is dropped, but reported. */
  cr_assert_eq(tw_transport_write(t, "x", 1), TW_ENOTCONN);
  cr_assert_eq(tw_process_close_child_fd(t, 4), 0);
  cr_assert_eq(tw_process_close_child_fd(t, 4), 0);
  cr_assert_eq(tw_process_close_child_fd(t, 9), 0); /* not a pipe: closed */
  cr_assert_eq(tw_process_close_child_fd(t, -1), TW_EINVAL);
  wait_ended(&P);
  cr_assert_str_eq(P.out, "done");
  cr_assert_eq(P.lost[4], 1);
  finish();
}

/* childFDs {1: parent_fd}: the child writes to our descriptor. Left-out
 * 0 and 2 are /dev/null (libuv). */
TWT_TEST(process, child_fds_inherit) {
  int fds[2];
  tw_child_fd map[1];
  tw_transport *t;
  char buf[64];
  ssize_t n;
  setup_reactor();
  cr_assert_eq(pipe2(fds, O_CLOEXEC), 0);
  map[0].child_fd = 1;
  map[0].mode = 'i';
  map[0].parent_fd = fds[1];
  cr_assert_eq(spawn_fds(&P, ARGS("write", "1", "inherited", "fds", "3"), map,
                         1, &t),
               0);
  wait_ended(&P);
  close(fds[1]);
  n = read(fds[0], buf, sizeof(buf) - 1);
  cr_assert_gt(n, 0);
  buf[n] = '\0';
  cr_assert_str_eq(buf, "inherited0 1 2");
  close(fds[0]);
  cr_assert_eq(P.nlost, 0);
  finish();
}

/* ---- bad input ------------------------------------------------------------------------- */

TWT_TEST(process, bad_input) {
  tw_transport *t = (tw_transport *)&t;
  tw_process_protocol bad;
  static const char *const argv[] = {"x", NULL};
  setup_reactor();
#define SPAWN_FDS(fds, n) \
  tw_spawn_process(R, &P.base, PROC_HELPER, argv, NULL, NULL, fds, n, NULL, &t)
  cr_assert_eq(tw_spawn_process(NULL, &P.base, PROC_HELPER, argv, NULL, NULL,
                                NULL, 0, NULL, &t),
               TW_EINVAL);
  cr_assert_null(t);
  cr_assert_eq(tw_spawn_process(R, NULL, PROC_HELPER, argv, NULL, NULL, NULL,
                                0, NULL, &t),
               TW_EINVAL);
  memset(&bad, 0, sizeof(bad));
  cr_assert_eq(tw_spawn_process(R, &bad, PROC_HELPER, argv, NULL, NULL, NULL,
                                0, NULL, &t),
               TW_EINVAL);
  cr_assert_eq(tw_spawn_process(R, &P.base, NULL, argv, NULL, NULL, NULL, 0,
                                NULL, &t),
               TW_EINVAL);
  cr_assert_eq(tw_spawn_process(R, &P.base, PROC_HELPER, argv, NULL, NULL,
                                NULL, 0, NULL, NULL),
               TW_EINVAL);
  {
    tw_child_fd dup[] = {{1, 'r', 0}, {1, 'w', 0}};
    tw_child_fd mode[] = {{1, 'x', 0}};
    tw_child_fd neg[] = {{-1, 'r', 0}};
    tw_child_fd high[] = {{256, 'r', 0}};
    tw_child_fd badfd[] = {{1, 'i', -1}};
    tw_child_fd closedfd[] = {{1, 'i', 0}};
    int fds[2];
    cr_assert_eq(SPAWN_FDS(dup, 2), TW_EINVAL);
    cr_assert_eq(SPAWN_FDS(mode, 1), TW_EINVAL);
    cr_assert_eq(SPAWN_FDS(neg, 1), TW_EINVAL);
    cr_assert_eq(SPAWN_FDS(high, 1), TW_EINVAL);
    cr_assert_eq(SPAWN_FDS(badfd, 1), UV_EBADF);
    cr_assert_eq(pipe(fds), 0);
    close(fds[0]);
    close(fds[1]);
    closedfd[0].parent_fd = fds[0];
    cr_assert_eq(SPAWN_FDS(closedfd, 1), UV_EBADF);
  }
  cr_assert_eq(P.made, 0);
  /* The transport calls on NULL and on another kind. */
  cr_assert_eq(tw_process_pid(NULL), TW_EINVAL);
  cr_assert_eq(tw_process_close_stdin(NULL), TW_EINVAL);
  cr_assert_eq(tw_process_write_to_child(NULL, 0, "x", 1), TW_EINVAL);
  cr_assert_eq(tw_transport_is_process(NULL), 0);
  cr_assert_eq(tw_process_exit_code(NULL), -1);
  cr_assert_eq(tw_process_exit_signal(NULL), 0);
  cr_assert_null(tw_unexpected_error_output_ended(NULL));
  cr_assert_eq(tw_process_protocol_init(NULL, &rec_ops), TW_EINVAL);
  cr_assert_eq(tw_process_protocol_init(&bad, NULL), TW_EINVAL);
  /* A protocol already connected: TW_EBUSY. */
  {
    tw_transport *t2 = NULL;
    spawn(&P, ARGS("drain"));
    cr_assert_eq(tw_spawn_process(R, &P.base, PROC_HELPER, argv, NULL, NULL,
                                  NULL, 0, NULL, &t2),
                 TW_EBUSY);
    cr_assert_null(t2);
    cr_assert_eq(tw_process_write_to_child(P.t, 0, NULL, 1), TW_EINVAL);
    cr_assert_eq(tw_process_close_stdin(P.t), 0);
    wait_ended(&P);
  }
  /* utils */
  {
    tw_deferred *d = (tw_deferred *)&d;
    cr_assert_eq(tw_get_process_output(R, PROC_HELPER, NULL, NULL, NULL, 2, &d),
                 TW_EINVAL);
    cr_assert_null(d);
    cr_assert_eq(tw_get_process_output(R, PROC_HELPER, NULL, NULL, NULL, 0,
                                       NULL),
                 TW_EINVAL);
    cr_assert_eq(tw_get_process_output_and_value(R, PROC_HELPER, NULL, NULL,
                                                 NULL, NULL, 3, &d),
                 TW_EINVAL);
    cr_assert_eq(tw_get_process_value(R, "/nonexistent/twuv-x", NULL, NULL,
                                      NULL, &d),
                 UV_ENOENT);
    cr_assert_null(d);
  }
#undef SPAWN_FDS
  finish();
}

static void *spawn_from_thread(void *arg) {
  static const char *const argv[] = {"x", NULL};
  tw_transport *t = NULL;
  intptr_t rc = tw_spawn_process(R, &P.base, PROC_HELPER, argv, NULL, NULL,
                                 NULL, 0, NULL, &t);
  (void)arg;
  if (rc == 0) return (void *)(intptr_t)1;
  rc = rc == TW_EWRONGTHREAD && t == NULL &&
       tw_process_signal(P.t, "KILL") == TW_EWRONGTHREAD &&
       tw_process_pid(P.t) == TW_EWRONGTHREAD &&
       tw_transport_write(P.t, "x", 1) == TW_EWRONGTHREAD;
  return (void *)(rc ? 0 : (intptr_t)2);
}

/* Loop thread only: another thread gets TW_EWRONGTHREAD, nothing made. */
TWT_TEST(process, wrong_thread) {
  pthread_t th;
  void *res;
  rec other;
  setup_reactor();
  memset(&other, 0, sizeof(other));
  cr_assert_eq(tw_process_protocol_init(&other.base, &rec_ops), 0);
  spawn(&other, ARGS("drain"));
  P.t = other.t;
  memset(&P.base, 0, sizeof(P.base));
  cr_assert_eq(tw_process_protocol_init(&P.base, &rec_ops), 0);
  cr_assert_eq(pthread_create(&th, NULL, spawn_from_thread, NULL), 0);
  cr_assert_eq(pthread_join(th, &res), 0);
  cr_assert_null(res);
  cr_assert_eq(P.made, 0);
  cr_assert_eq(tw_process_close_stdin(other.t), 0);
  cr_assert(spin(R, &other.ended));
  finish();
}

/* ---- producers on stdin ------------------------------------------------------------------ */

typedef struct prod {
  tw_producer base;
  tw_transport *t;
  int pauses, resumes, stops;
  int paused;
  size_t written, limit;
} prod;

static char chunk[16384];

static tw_failure *prod_pause(tw_producer *p) {
  ((prod *)p)->pauses++;
  ((prod *)p)->paused = 1;
  return NULL;
}

static tw_failure *prod_resume(tw_producer *p) {
  prod *x = (prod *)p;
  x->resumes++;
  x->paused = 0;
  return NULL;
}

static tw_failure *prod_stop(tw_producer *p) {
  ((prod *)p)->stops++;
  return NULL;
}

static const tw_producer_ops prod_ops = {prod_pause, prod_resume, prod_stop};

/* A streaming producer on the process transport: paused while the child
 * does not read (stdin buffered above 64 KiB), resumed once it has read
 * everything; the count the child prints says nothing was lost. */
TWT_TEST(process, streaming_producer_on_stdin) {
  static const tw_child_fd fds[] = {{0, 'w', 0}, {1, 'r', 0}, {3, 'w', 0}};
  prod pr;
  tw_transport *t;
  char want[32];
  setup_reactor();
  memset(&pr, 0, sizeof(pr));
  memset(chunk, 'y', sizeof(chunk));
  pr.base.ops = &prod_ops;
  /* The child reads fd 3 to EOF first, then counts its stdin. */
  cr_assert_eq(spawn_fds(&P, ARGS("drainfd", "3", "count"), fds, 3, &t), 0);
  cr_assert_eq(tw_transport_register_producer(t, &pr.base, 1), 0);
  cr_assert_eq(tw_transport_register_producer(t, &pr.base, 1), TW_EBUSY);
  while (!pr.paused && pr.written < (64u << 20)) {
    cr_assert_eq(tw_transport_write(t, chunk, sizeof(chunk)), 0);
    pr.written += sizeof(chunk);
  }
  cr_assert_eq(pr.pauses, 1);
  cr_assert_gt(tw_transport_buffered(t), TW_TRANSPORT_BUFFER_SIZE);
  /* Let the child read. */
  cr_assert_eq(tw_process_close_child_fd(t, 3), 0);
  cr_assert(spin(R, &pr.resumes));
  cr_assert_eq(tw_transport_buffered(t), 0);
  cr_assert_eq(tw_transport_unregister_producer(t), 0);
  cr_assert_eq(tw_process_close_stdin(t), 0);
  wait_ended(&P);
  snprintf(want, sizeof(want), "%zu", pr.written);
  cr_assert_str_eq(P.out, want);
  cr_assert_eq(pr.stops, 0);
  finish();
}

/* stdin goes (the child closed it): the producer is stopped and
 * forgotten, as FileDescriptor.connectionLost does. */
TWT_TEST(process, producer_stopped_when_stdin_goes) {
  static const tw_child_fd fds[] = {{0, 'w', 0}, {3, 'w', 0}};
  prod pr;
  tw_transport *t;
  setup_reactor();
  memset(&pr, 0, sizeof(pr));
  pr.base.ops = &prod_ops;
  cr_assert_eq(spawn_fds(&P, ARGS("close", "0", "drainfd", "3"), fds, 2, &t),
               0);
  cr_assert_eq(tw_transport_register_producer(t, &pr.base, 1), 0);
  cr_assert(spin(R, &P.lost[0]));
  cr_assert_eq(pr.stops, 1);
  /* Forgotten: another may register. */
  cr_assert_eq(tw_transport_register_producer(t, &pr.base, 1), 0);
  cr_assert_eq(tw_transport_unregister_producer(t), 0);
  cr_assert_eq(tw_transport_write(t, "x", 1), TW_ENOTCONN);
  cr_assert_eq(tw_process_close_child_fd(t, 3), 0);
  wait_ended(&P);
  cr_assert_eq(pr.stops, 1);
  finish();
}

/* lose_connection with a producer registered waits for unregister. */
TWT_TEST(process, lose_connection_waits_for_the_producer) {
  prod pr;
  tw_transport *t;
  setup_reactor();
  memset(&pr, 0, sizeof(pr));
  pr.base.ops = &prod_ops;
  t = spawn(&P, ARGS("echo"));
  cr_assert_eq(tw_transport_register_producer(t, &pr.base, 1), 0);
  cr_assert_eq(tw_transport_write(t, "abc", 3), 0);
  cr_assert_eq(tw_transport_lose_connection(t), 0);
  cr_assert_eq(tw_transport_disconnecting(t), 1);
  cr_assert_eq(tw_transport_write(t, "def", 3), 0);
  /* The child echoes: nothing closes until the producer goes. */
  SPIN_UNTIL(P.nout >= 6);
  cr_assert_eq(P.nlost, 0);
  cr_assert_eq(tw_transport_unregister_producer(t), 0);
  wait_ended(&P);
  cr_assert_str_eq(P.out, "abcdef");
  finish();
}

/* ---- reactor shutdown and free ---------------------------------------------------------- */

static void stop_now(void *arg) { tw_reactor_stop(arg); }

static int safety_fired;
static void safety(void *arg) {
  safety_fired = 1;
  tw_reactor_stop(arg);
}

/* The child was left running by twuv: it is alive (or a zombie not reaped
 * by anybody). Then kill and reap it here, bounded whatever it does. */
static void child_was_left_alone(int pid) {
  int status;
  cr_assert_eq(kill(pid, 0), 0);
  kill(pid, SIGKILL);
  cr_assert_eq(waitpid(pid, &status, 0), pid);
}

/* Shutdown with the child running: its pipes close
 * (child_connection_lost each), process_ended(ConnectionLost) follows, no
 * process_exited; the child is not killed. */
TWT_TEST(process, reactor_shutdown_with_child_running) {
  int pid;
  setup_reactor();
  spawn(&P, ARGS("drain"));
  pid = tw_process_pid(P.t);
  cr_assert_gt(pid, 0);
  cr_assert_eq(tw_reactor_call_later(R, 0, stop_now, R, NULL, NULL), 0);
  cr_assert_eq(tw_reactor_call_later(R, 10, safety, R, NULL, NULL), 0);
  twt_run(R);
  cr_assert_not(safety_fired);
  cr_assert_eq(P.ended, 1);
  cr_assert_eq(P.exited, 0);
  cr_assert_eq(P.nlost, 3);
  cr_assert_eq(P.ended_type, &TW_CONNECTION_LOST);
  cr_assert_not_null(strstr(P.ended_msg, "not killed"));
  cr_assert_null(P.base.transport);
  child_was_left_alone(pid);
  finish();
}

TWT_TEST(process, reactor_free_with_child_running) {
  int pid;
  static const tw_child_fd fds[] = {{0, 'i', 0}, {3, 'w', 0}};
  setup_reactor();
  /* The child blocks on fd 3; its stdin is ours. */
  cr_assert_eq(spawn_fds(&P, ARGS("drainfd", "3"), fds, 2, &P.t), 0);
  pid = tw_process_pid(P.t);
  cr_assert_gt(pid, 0);
  finish();
  cr_assert_eq(P.ended, 1);
  cr_assert_eq(P.exited, 0);
  cr_assert_eq(P.lost[3], 1);
  child_was_left_alone(pid);
}

TWT_TEST(process, reactor_free_with_child_still_running_not_killed) {
  int pid, status;
  int keep[2];
  tw_child_fd fds[2];
  setup_reactor();
  /* Its fd 3 is a pipe of ours that twuv does not close. */
  cr_assert_eq(pipe2(keep, O_CLOEXEC), 0);
  fds[0].child_fd = 1;
  fds[0].mode = 'r';
  fds[0].parent_fd = 0;
  fds[1].child_fd = 3;
  fds[1].mode = 'i';
  fds[1].parent_fd = keep[0];
  cr_assert_eq(spawn_fds(&P, ARGS("drainfd", "3"), fds, 2, &P.t), 0);
  pid = tw_process_pid(P.t);
  finish();
  cr_assert_eq(P.ended, 1);
  /* Still running after the reactor is gone. */
  cr_assert_eq(waitpid(pid, &status, WNOHANG), 0);
  close(keep[1]);
  close(keep[0]);
  child_was_left_alone(pid);
}

/* ---- test_iutils.py: ProcessUtilsTests --------------------------------------------------- */

TWT_TEST(process, output) {
  tw_deferred *d;
  setup_reactor();
  cr_assert_eq(tw_get_process_output(
                   R, PROC_HELPER,
                   ARGS("write", "1", "hello world!\\n", "write", "1",
                        "hello world!\\n"),
                   NULL, NULL, 0, &d),
               0);
  watch(d, on_output);
  cr_assert(spin(R, &got));
  cr_assert_not_null(got_output);
  cr_assert_str_eq(got_output->out, "hello world!\nhello world!\n");
  drop_output();
  finish();
}

static tw_failure *ended_failure;
static int ended_got;

static tw_result on_ended(tw_result r, void *arg) {
  (void)arg;
  ended_got = 1;
  cr_assert_eq(r.kind, TW_RESULT_FAILURE);
  ended_failure = r.u.failure;
  return tw_result_none();
}

TWT_TEST(process, output_with_error_ignored) {
  tw_deferred *d, *ended;
  setup_reactor();
  cr_assert_eq(tw_get_process_output(
                   R, PROC_HELPER,
                   ARGS("write", "2", "hello world\\n", "drain"), NULL, NULL,
                   0, &d),
               0);
  watch(d, on_output);
  cr_assert(spin(R, &got));
  cr_assert_not_null(got_failure);
  cr_assert_eq(tw_failure_type(got_failure), &TW_UNEXPECTED_ERROR_OUTPUT);
  cr_assert(tw_failure_check(got_failure, &TW_OS_ERROR));
  cr_assert_str_eq(tw_failure_message(got_failure),
                   "got stderr: b'hello world\\n'");
  /* err.processEnded fails with ProcessDone once the child ends (it got
   * its stdin's EOF: the relay closed the pipes). */
  ended = tw_unexpected_error_output_ended(got_failure);
  cr_assert_not_null(ended);
  ended_got = 0;
  cr_assert_eq(tw_deferred_add_both(ended, on_ended, NULL), 0);
  cr_assert(spin(R, &ended_got));
  cr_assert_eq(tw_failure_type(ended_failure), &TW_PROCESS_DONE);
  tw_failure_unref(ended_failure);
  drop_output();
  finish();
}

TWT_TEST(process, output_with_error_collected) {
  tw_deferred *d;
  setup_reactor();
  cr_assert_eq(tw_get_process_output(R, PROC_HELPER,
                                     ARGS("write", "1", "foo", "write", "2",
                                          "foo"),
                                     NULL, NULL, 1, &d),
               0);
  watch(d, on_output);
  cr_assert(spin(R, &got));
  cr_assert_not_null(got_output);
  cr_assert_str_eq(got_output->out, "foofoo");
  drop_output();
  finish();
}

TWT_TEST(process, value) {
  tw_deferred *d;
  setup_reactor();
  cr_assert_eq(tw_get_process_value(R, PROC_HELPER, ARGS("exit", "1"), NULL,
                                    NULL, &d),
               0);
  watch(d, on_value);
  cr_assert(spin(R, &got));
  cr_assert_null(got_failure);
  cr_assert_eq(got_value, 1);
  /* A signal: None, -1 here. */
  cr_assert_eq(tw_get_process_value(R, PROC_HELPER, ARGS("kill", "9"), NULL,
                                    NULL, &d),
               0);
  watch(d, on_value);
  cr_assert(spin(R, &got));
  cr_assert_eq(got_value, -1);
  finish();
}

TWT_TEST(process, output_and_value) {
  tw_deferred *d;
  setup_reactor();
  cr_assert_eq(tw_get_process_output_and_value(
                   R, PROC_HELPER,
                   ARGS("write", "1", "hello world!\\n", "write", "2",
                        "goodbye world!\\n", "exit", "1"),
                   NULL, NULL, NULL, 0, &d),
               0);
  watch(d, on_output);
  cr_assert(spin(R, &got));
  cr_assert_not_null(got_output);
  cr_assert_str_eq(got_output->out, "hello world!\n");
  cr_assert_str_eq(got_output->err, "goodbye world!\n");
  cr_assert_eq(got_output->code, 1);
  cr_assert_eq(got_output->signal, 0);
  drop_output();
  finish();
}

TWT_TEST(process, output_signal) {
  tw_deferred *d;
  tw_process_output *po;
  setup_reactor();
  cr_assert_eq(tw_get_process_output_and_value(
                   R, PROC_HELPER,
                   ARGS("write", "1", "stdout bytes\\n", "write", "2",
                        "stderr bytes\\n", "kill", "9"),
                   NULL, NULL, NULL, 0, &d),
               0);
  watch(d, on_output);
  cr_assert(spin(R, &got));
  cr_assert_not_null(got_failure);
  cr_assert_eq(tw_failure_type(got_failure), &TW_PROCESS_TERMINATED);
  cr_assert_eq(tw_process_exit_signal(got_failure), SIGKILL);
  po = tw_failure_payload(got_failure);
  cr_assert_not_null(po);
  cr_assert_str_eq(po->out, "stdout bytes\n");
  cr_assert_str_eq(po->err, "stderr bytes\n");
  cr_assert_eq(po->signal, SIGKILL);
  drop_output();
  finish();
}

static void path_test(int which, int default_path) {
  char dir[] = "/tmp/twuv-proc-XXXXXX", real[PATH_MAX], here[PATH_MAX];
  tw_deferred *d;
  const char *path;
  setup_reactor();
  cr_assert_not_null(mkdtemp(dir));
  cr_assert_not_null(realpath(dir, real));
  cr_assert_not_null(getcwd(here, sizeof(here)));
  path = default_path ? NULL : dir;
  switch (which) {
    case 0:
      cr_assert_eq(tw_get_process_output(R, PROC_HELPER, ARGS("cwd"), NULL,
                                         path, 0, &d),
                   0);
      break;
    default:
      break;
    case 2:
      cr_assert_eq(tw_get_process_output_and_value(R, PROC_HELPER, ARGS("cwd"),
                                                   NULL, path, NULL, 0, &d),
                   0);
      break;
  }
  if (which == 1) {
    /* getProcessValue: a script that exits 0 when its working directory
     * is the one expected. */
    char script[128];
    FILE *f;
    snprintf(script, sizeof(script), "%s/check", dir);
    f = fopen(script, "w");
    cr_assert_not_null(f);
    fprintf(f, "#!/bin/sh\n[ \"$(/bin/pwd -P)\" = '%s' ] && exit 0; exit 1\n",
            default_path ? here : real);
    fclose(f);
    cr_assert_eq(chmod(script, 0700), 0);
    cr_assert_eq(tw_get_process_value(R, script, NULL, NULL, path, &d), 0);
    watch(d, on_value);
    cr_assert(spin(R, &got));
    cr_assert_eq(got_value, 0);
    unlink(script);
  } else {
    watch(d, on_output);
    cr_assert(spin(R, &got));
    cr_assert_not_null(got_output);
    cr_assert_str_eq(got_output->out, default_path ? here : real);
    drop_output();
  }
  rmdir(dir);
  finish();
}

TWT_TEST(process, get_process_output_path) { path_test(0, 0); }
TWT_TEST(process, get_process_value_path) { path_test(1, 0); }
TWT_TEST(process, get_process_output_and_value_path) { path_test(2, 0); }
TWT_TEST(process, get_process_output_default_path) { path_test(0, 1); }
TWT_TEST(process, get_process_value_default_path) { path_test(1, 1); }
TWT_TEST(process, get_process_output_and_value_default_path) {
  path_test(2, 1);
}

TWT_TEST(process, get_process_output_and_value_stdin) {
  tw_deferred *d;
  static const char in[] = "these are the bytes to write to stdin";
  setup_reactor();
  cr_assert_eq(tw_get_process_output_and_value(R, PROC_HELPER, ARGS("echo"),
                                               NULL, NULL, in, strlen(in), &d),
               0);
  watch(d, on_output);
  cr_assert(spin(R, &got));
  cr_assert_not_null(got_output);
  cr_assert_str_eq(got_output->out, in);
  cr_assert_eq(got_output->code, 0);
  drop_output();
  finish();
}

/* A large output arrives whole (several reads). */
TWT_TEST(process, big_output) {
  tw_deferred *d;
  setup_reactor();
  cr_assert_eq(tw_get_process_output(R, PROC_HELPER, ARGS("big", "1000000"),
                                     NULL, NULL, 0, &d),
               0);
  watch(d, on_output);
  cr_assert(spin(R, &got));
  cr_assert_not_null(got_output);
  cr_assert_eq(got_output->out_len, 1000000);
  drop_output();
  finish();
}

/* closeStdout / closeStderr: our ends of the child's stdout and stderr
 * close (child_connection_lost for each, the child still running); the
 * process ends once stdin goes too and the child exits. */
TWT_TEST(process, close_stdout_and_close_stderr) {
  setup_reactor();
  spawn(&P, ARGS("drain"));
  cr_assert_eq(tw_process_close_stdout(P.t), 0);
  cr_assert(spin(R, &P.lost[1]));
  cr_assert_eq(tw_process_close_stderr(P.t), 0);
  cr_assert(spin(R, &P.lost[2]));
  cr_assert_eq(P.exited, 0);
  cr_assert_eq(P.lost[0], 0);
  cr_assert_eq(tw_process_close_stdout(P.t), 0); /* again: nothing */
  cr_assert_eq(tw_process_close_stdout(NULL), TW_EINVAL);
  cr_assert_eq(tw_process_close_stderr(NULL), TW_EINVAL);
  cr_assert_eq(tw_process_close_stdin(P.t), 0);
  wait_ended(&P);
  cr_assert_eq(P.ended_type, &TW_PROCESS_DONE);
  finish();
}
