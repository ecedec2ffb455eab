/*
 * twuv/process.h - child processes: Twisted's IReactorProcess.spawnProcess,
 * ProcessProtocol, the process transport (IProcessTransport), the reasons
 * ProcessDone / ProcessTerminated / ProcessExitedAlready
 * (twisted.internet.error), and twisted.internet.utils's getProcessOutput,
 * getProcessValue and getProcessOutputAndValue. On libuv's uv_spawn.
 *
 *     typedef struct collect { tw_process_protocol base; size_t n; } collect;
 *     static tw_failure *got(tw_process_protocol *pp, const char *data,
 *                            size_t len) {
 *       ((collect *)pp)->n += len;
 *       return NULL;
 *     }
 *     static void ended(tw_process_protocol *pp, tw_failure *reason) {
 *       printf("%zu bytes, %s\n", ((collect *)pp)->n,
 *              tw_failure_message(reason));
 *     }
 *     static const tw_process_protocol_ops ops = {.out_received = got,
 *                                                 .process_ended = ended};
 *     ...
 *     const char *argv[] = {"ls", "-l", NULL};
 *     tw_process_protocol_init(&c.base, &ops);
 *     tw_spawn_process(r, &c.base, "ls", argv, TW_PROCESS_ENV_INHERIT, NULL,
 *                      NULL, 0, NULL, &t);
 *
 * The process transport is a tw_transport (protocol.h): tw_transport_write
 * writes to the child's stdin, tw_transport_write_sequence too,
 * tw_transport_lose_connection closes stdin, stdout and stderr (Twisted's
 * Process.loseConnection: the process is not killed), a producer registered
 * with tw_transport_register_producer feeds stdin (paused above
 * TW_TRANSPORT_BUFFER_SIZE bytes buffered for stdin, resumed when empty,
 * stopped when stdin goes), tw_transport_pause_producing /
 * resume_producing stop and start reading the child's output pipes.
 * getHost/getPeer and abort_connection answer TW_ENOTSUP (Twisted's
 * NotImplementedError; a process has no abortConnection). The functions
 * below do what only a process can.
 *
 * The calls a process makes on its protocol, in Twisted's order:
 *   connection_made                 inside tw_spawn_process, once the child
 *                                   runs (pp->transport set)
 *   child_data_received(fd, data)*  bytes the child wrote to a "r" pipe
 *                                   (default: out_received for fd 1,
 *                                   err_received for fd 2)
 *   child_connection_lost(fd)       once per pipe, when it closes (either
 *                                   side; default: in/out/err_connection_
 *                                   lost for 0/1/2)
 *   process_exited(reason)          the child exited (reaped)
 *   process_ended(reason)           last, once: the child exited AND every
 *                                   pipe closed; pp->transport is NULL after
 *                                   it, then pp->dealloc runs
 * Reasons are borrowed for the call: TW_PROCESS_DONE (exit code 0) or
 * TW_PROCESS_TERMINATED (another exit code, or a signal), with Twisted's
 * messages; the failure's code is the wait status (Twisted's .status);
 * read the exit code and signal with tw_process_exit_code /
 * tw_process_exit_signal. A process_ended that follows a reactor shutdown
 * before the child exited has another reason (below).
 *
 * Decisions where libuv and Twisted differ (docs/design.md "Processes"):
 *   - env NULL is an EMPTY environment, as Twisted's spawnProcess when env
 *     is not given (libuv would inherit); TW_PROCESS_ENV_INHERIT passes the
 *     parent's (Twisted's env=None).
 *   - An executable that cannot be run (not found, not executable, a bad
 *     path or uid) fails tw_spawn_process at once with libuv's code
 *     (UV_ENOENT, UV_EACCES, ...) and no callback is made; Twisted's child
 *     writes a traceback to its stderr and process_ended gets
 *     ProcessTerminated(exit code 1). libuv knows the exec failed before
 *     uv_spawn returns, so twuv says so then.
 *   - Child descriptors 0-2 that child_fds leaves out are /dev/null in the
 *     child (libuv); Twisted closes them. Other descriptors the parent has
 *     open without FD_CLOEXEC are inherited (libuv does not close them;
 *     Twisted closes every descriptor not in childFDs). libuv's pipes are
 *     socketpairs.
 *   - Reactor shutdown (and tw_reactor_free) with a child running closes
 *     its pipes (child_connection_lost for each) and stops watching it:
 *     process_ended follows at once with a TW_CONNECTION_LOST failure
 *     ("... the reactor shut down before the process exited"), no
 *     process_exited. The child is NOT killed and not reaped (it becomes
 *     a zombie when it exits, until this program exits), as with Twisted,
 *     whose reactor stops without touching its children. Kill it first
 *     (tw_process_signal, e.g. from a "before shutdown" trigger) if it must
 *     go.
 *
 * Threads: everything here is loop-thread only (TW_EWRONGTHREAD from other
 * threads), as for every transport.
 */
#ifndef TWUV_PROCESS_H
#define TWUV_PROCESS_H

#include <stddef.h>

#include "common.h"
#include "defer.h"
#include "failure.h"
#include "protocol.h"
#include "reactor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- twisted.internet.error ----------------------------------------------- */

TW_EXTERN extern const tw_error_type TW_PROCESS_DONE;       /* ProcessDone(ConnectionDone) */
TW_EXTERN extern const tw_error_type TW_PROCESS_TERMINATED; /* ProcessTerminated(ConnectionLost) */
TW_EXTERN extern const tw_error_type TW_PROCESS_EXITED_ALREADY; /* ProcessExitedAlready(Exception) */
/* twisted.internet.utils._UnexpectedErrorOutput(IOError): see
 * tw_get_process_output. */
TW_EXTERN extern const tw_error_type TW_UNEXPECTED_ERROR_OUTPUT;

/*
 * tw_process_exit_code: the exit code of a TW_PROCESS_DONE or
 * TW_PROCESS_TERMINATED failure (0-255), or -1 when the child was ended by
 * a signal (Twisted's exitCode None) or f is not such a failure.
 * tw_process_exit_signal: the signal that ended the child, or 0 (Twisted's
 * signal None; also for other failures). Thread-safe.
 */
TW_EXTERN int tw_process_exit_code(const tw_failure *f);
TW_EXTERN int tw_process_exit_signal(const tw_failure *f);

/* ---- ProcessProtocol ----------------------------------------------------------- */

typedef struct tw_process_protocol tw_process_protocol;

/*
 * A process protocol's callbacks; any may be NULL (Twisted's
 * ProcessProtocol does nothing by default). The data callbacks borrow the
 * bytes for the call (copy what you keep) and may return a failure
 * (ownership passes): it is logged (Twisted logs what a handler raises)
 * and that pipe is closed, as Twisted disconnects the reader whose
 * handler raised.
 */
typedef struct tw_process_protocol_ops {
  void (*connection_made)(tw_process_protocol *pp);
  /* childDataReceived(childFD, data). When NULL: out_received for fd 1,
   * err_received for fd 2, nothing for other descriptors. */
  tw_failure *(*child_data_received)(tw_process_protocol *pp, int child_fd,
                                     const char *data, size_t len);
  tw_failure *(*out_received)(tw_process_protocol *pp, const char *data,
                              size_t len);
  tw_failure *(*err_received)(tw_process_protocol *pp, const char *data,
                              size_t len);
  /* childConnectionLost(childFD). When NULL: in_connection_lost for fd 0,
   * out_connection_lost for 1, err_connection_lost for 2. */
  void (*child_connection_lost)(tw_process_protocol *pp, int child_fd);
  void (*in_connection_lost)(tw_process_protocol *pp);
  void (*out_connection_lost)(tw_process_protocol *pp);
  void (*err_connection_lost)(tw_process_protocol *pp);
  /* processExited(reason) and processEnded(reason): reason borrowed. */
  void (*process_exited)(tw_process_protocol *pp, tw_failure *reason);
  void (*process_ended)(tw_process_protocol *pp, tw_failure *reason);
} tw_process_protocol_ops;

/*
 * The struct the user embeds (first member, or found with a container_of).
 * Set ops with tw_process_protocol_init; transport is kept by twuv: the
 * process transport from connection_made until process_ended returns,
 * then NULL. dealloc (if not NULL) runs after process_ended: the place to
 * free the protocol.
 */
struct tw_process_protocol {
  const tw_process_protocol_ops *ops;
  tw_transport *transport;
  void (*dealloc)(tw_process_protocol *pp);
  void *data; /* the user's, never touched by twuv */
};

/* tw_process_protocol_init: zero pp and set its callbacks (ops must
 * outlive it). 0 or TW_EINVAL (pp or ops NULL). Any thread. */
TW_EXTERN int tw_process_protocol_init(tw_process_protocol *pp,
                                       const tw_process_protocol_ops *ops);

/* ---- spawnProcess ------------------------------------------------------------ */

/*
 * One entry of Twisted's childFDs: the child's descriptor child_fd
 * (0-255) is
 *   mode 'w'  a pipe the parent writes to (the child reads it: stdin),
 *   mode 'r'  a pipe the parent reads from (child_data_received),
 *   mode 'i'  the parent's descriptor parent_fd, inherited (Twisted's
 *             integer value; the parent ignores it).
 */
typedef struct tw_child_fd {
  int child_fd;
  char mode;
  int parent_fd; /* mode 'i' only */
} tw_child_fd;

/* uid/gid for the child (Twisted's uid and gid arguments); an id whose
 * set_ flag is 0 is left as it is. */
typedef struct tw_process_ids {
  int set_uid;
  unsigned uid;
  int set_gid;
  unsigned gid;
} tw_process_ids;

/* env value meaning "the parent's environment" (Twisted's env=None). */
TW_EXTERN extern const char *const tw_process_env_inherit[];
#define TW_PROCESS_ENV_INHERIT (tw_process_env_inherit)

/*
 * tw_spawn_process: spawnProcess(pp, executable, argv, env, path, uid,
 * gid, childFDs=child_fds). Runs executable (searched in PATH when it has
 * no '/', as Twisted's execvpe and libuv's execvp do) with argv (a
 * NULL-terminated list, argv[0] included; NULL means {executable}), env (a
 * NULL-terminated list of "NAME=value"; NULL: an EMPTY environment;
 * TW_PROCESS_ENV_INHERIT: the parent's), in directory path (NULL: the
 * parent's), with the n_child_fds entries of child_fds (NULL: Twisted's
 * default {0: 'w', 1: 'r', 2: 'r'}; n_child_fds 0 with a non-NULL
 * child_fds: no pipes), and ids (NULL: the parent's uid/gid).
 * connection_made is called before this returns; *out is the process
 * transport (the same as pp->transport), valid until process_ended
 * returns.
 * Returns 0, or (nothing called on pp, nothing left behind): TW_EINVAL (r,
 * pp, pp->ops, executable or out NULL; a child_fd outside 0-255, twice,
 * or with another mode; a NULL argv or env string is only a terminator),
 * TW_EBUSY (pp is already connected to a process), UV_EBADF (an 'i'
 * entry's parent_fd is not open), TW_EWRONGTHREAD, TW_ESHUTDOWN (the
 * reactor is being freed), TW_ENOMEM, or uv_spawn's code for a child that
 * could not be started (UV_ENOENT: no such executable or path; UV_EACCES,
 * UV_EPERM (ids), ...). *out is NULL on error.
 */
TW_EXTERN int tw_spawn_process(tw_reactor *r, tw_process_protocol *pp,
                               const char *executable,
                               const char *const *argv,
                               const char *const *env, const char *path,
                               const tw_child_fd *child_fds,
                               size_t n_child_fds, const tw_process_ids *ids,
                               tw_transport **out);

/* ---- the process transport (IProcessTransport) -------------------------------- */

/*
 * tw_process_pid: the child's pid while it runs, 0 once it exited (Twisted
 * sets pid to None). TW_EINVAL when t is NULL or not a process transport;
 * TW_EWRONGTHREAD.
 */
TW_EXTERN int tw_process_pid(tw_transport *t);

/*
 * tw_process_signal: signalProcess(name): "HUP", "STOP", "INT", "KILL" or
 * "TERM", the names Twisted translates (any other name is refused, as
 * Twisted's os.kill would refuse the string). tw_process_signal_number:
 * signalProcess(int). Returns 0,
 * TW_ESRCH once the child has exited or is no longer watched (Twisted's
 * ProcessExitedAlready), TW_EINVAL (t not a process transport, name NULL
 * or unknown - Twisted would raise from os.kill - or a number outside
 * 0-64), another kill(2) error, TW_EWRONGTHREAD. Signal 0 checks that
 * the child is alive.
 */
TW_EXTERN int tw_process_signal(tw_transport *t, const char *name);
TW_EXTERN int tw_process_signal_number(tw_transport *t, int signum);

/*
 * tw_process_write_to_child: writeToChild(childFD, data): write to a 'w'
 * pipe (tw_transport_write is fd 0). Returns as tw_transport_write, and
 * TW_EINVAL (not a process transport, data NULL with len > 0, child_fd
 * not a 'w' pipe of this process - Twisted's KeyError), TW_ENOTCONN (the
 * pipe is closed or closing).
 */
TW_EXTERN int tw_process_write_to_child(tw_transport *t, int child_fd,
                                        const void *data, size_t len);

/*
 * tw_process_close_child_fd: closeChildFD(childFD): a 'w' pipe closes once
 * what is buffered for it is written (the child reads EOF), a 'r' pipe at
 * once (later output is not read); child_connection_lost(fd) follows from
 * the loop. An fd that is not an open pipe of the process is taken as
 * already closed (Twisted): 0. close_stdin/stdout/stderr are fds 0/1/2.
 * Returns 0, TW_EINVAL (not a process transport, child_fd < 0),
 * TW_EWRONGTHREAD.
 */
TW_EXTERN int tw_process_close_child_fd(tw_transport *t, int child_fd);
TW_EXTERN int tw_process_close_stdin(tw_transport *t);
TW_EXTERN int tw_process_close_stdout(tw_transport *t);
TW_EXTERN int tw_process_close_stderr(tw_transport *t);

/* tw_transport_is_process: 1 when t is a process transport, else 0. */
TW_EXTERN int tw_transport_is_process(tw_transport *t);

/* ---- twisted.internet.utils ---------------------------------------------------- */

/*
 * What the utils' Deferreds fire with: out and err are the child's stdout
 * and stderr (each NUL-terminated after its len bytes, never NULL), code
 * the exit code (-1 when a signal ended it) and signal the signal (0 for
 * none). Freed by the Deferred's value_free (tw_process_output_free).
 */
typedef struct tw_process_output {
  char *out;
  size_t out_len;
  char *err;
  size_t err_len;
  int code;
  int signal;
} tw_process_output;

/* tw_process_output_free: free o (NULL: nothing). Any thread. */
TW_EXTERN void tw_process_output_free(void *o);

/*
 * tw_get_process_output: getProcessOutput(executable, args, env, path,
 * reactor, errortoo). args EXCLUDE the executable (NULL-terminated; NULL:
 * none): the child's argv is {executable, args...}. env and path as
 * tw_spawn_process (NULL env: empty, which is also getProcessOutput's
 * default env={}). *out fires with a tw_process_output whose out holds
 * stdout - with stderr mixed in, in arrival order, when errortoo is 1 -
 * once the process ended, whatever its exit code. With errortoo 0, the
 * first bytes on stderr fail *out at once with TW_UNEXPECTED_ERROR_OUTPUT
 * (Twisted's _UnexpectedErrorOutput, an IOError: message "got stderr: "
 * and Python's repr of those bytes) and close the child's pipes; the
 * failure's payload (tw_unexpected_error_output_ended) is the Deferred
 * Twisted calls processEnded, failed with process_ended's reason when the
 * process ends - give it an errback, or its failure is logged as an
 * unhandled error when it goes, as in Twisted.
 * Returns 0, or what tw_spawn_process returns (then *out is NULL: no
 * Deferred), TW_EINVAL (errortoo not 0/1, out NULL).
 */
TW_EXTERN int tw_get_process_output(tw_reactor *r, const char *executable,
                                    const char *const *args,
                                    const char *const *env, const char *path,
                                    int errortoo, tw_deferred **out);

/* The processEnded Deferred of a TW_UNEXPECTED_ERROR_OUTPUT failure
 * (borrowed: the failure holds it; tw_deferred_ref to keep it), or NULL
 * for another failure. Loop thread. */
TW_EXTERN tw_deferred *tw_unexpected_error_output_ended(const tw_failure *f);

/*
 * tw_get_process_value: getProcessValue: *out fires with the exit code as
 * a value, (void *)(intptr_t)code, or (void *)(intptr_t)-1 when a signal
 * ended the child (Twisted's None). Arguments and returns as
 * tw_get_process_output.
 */
TW_EXTERN int tw_get_process_value(tw_reactor *r, const char *executable,
                                   const char *const *args,
                                   const char *const *env, const char *path,
                                   tw_deferred **out);

/*
 * tw_get_process_output_and_value: getProcessOutputAndValue(..., stdinBytes):
 * *out fires with a tw_process_output (out, err, code) when the process
 * ended with an exit code; when a signal ended it, *out fails with a
 * TW_PROCESS_TERMINATED failure whose payload is the tw_process_output
 * (out, err, signal: Twisted errbacks with the tuple (out, err, signal)).
 * stdin_bytes (NULL: none) is written to the child's stdin, which is then
 * closed. Arguments and returns as tw_get_process_output (TW_EINVAL also
 * for stdin_bytes NULL with stdin_len > 0).
 */
TW_EXTERN int tw_get_process_output_and_value(
    tw_reactor *r, const char *executable, const char *const *args,
    const char *const *env, const char *path, const void *stdin_bytes,
    size_t stdin_len, tw_deferred **out);

#ifdef __cplusplus
}
#endif
#endif /* TWUV_PROCESS_H */
