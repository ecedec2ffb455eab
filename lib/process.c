/*
 * lib/process.c - process.h: tw_spawn_process on uv_spawn, the process
 * transport (a transport kind, transport-internal.h), its pipes and the
 * reasons. The utils (getProcessOutput & co.) are in process-utils.c.
 *
 * Shape (Twisted's process.Process): a process owns one uv_process_t and
 * one pipe per 'w'/'r' entry of child_fds. Each pipe is a stream of
 * stream.c (a uv_pipe_t over libuv's socketpair): reading into the
 * reactor's buffer, writes tried first and coalesced, its own reactor
 * child and its own close path; process.c gives it an internal protocol
 * (data -> child_data_received) and hears its close through the stream's
 * owner hooks (-> child_connection_lost). The process itself is a
 * transport whose protocol is an internal adapter: connection_made is the
 * user's, connection_lost is process_ended, delivered by protocol.c
 * exactly once when the child has exited (uv_process_t closed) and every
 * pipe has closed - Twisted's maybeCallProcessEnded.
 *
 * A 'w' pipe is read too: the child's end of a socketpair closing (the
 * child exited, or closed its stdin) reads as EOF there, which closes the
 * pipe - Twisted's ProcessWriter does the same with its "read hack"
 * (readable write end = the reader went away). Bytes the child writes to
 * its stdin are dropped.
 *
 * The uv_process_t is closed as soon as the child exits; the process is a
 * reactor child (ON_LOOP | SHUTDOWN) whose close, at shutdown or free,
 * closes it early (the child is not killed) and the pipes.
 */
#include <twuv/process.h>

#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <uv.h>

#include "internal.h"
#include "reactor-internal.h"
#include "stream-internal.h"
#include "transport-internal.h"

/* ---- reasons ----------------------------------------------------------------- */

const tw_error_type TW_PROCESS_DONE = {"ProcessDone", &TW_CONNECTION_DONE};
const tw_error_type TW_PROCESS_TERMINATED = {"ProcessTerminated",
                                             &TW_CONNECTION_LOST};
const tw_error_type TW_PROCESS_EXITED_ALREADY = {"ProcessExitedAlready",
                                                 &TW_ERROR};

const char *const tw_process_env_inherit[] = {NULL};

/* The reason for a wait status (code = status, Twisted's .status), with
 * Twisted's messages: _BaseProcess._getReason. */
static tw_failure *tw__process_reason(int exit_code, int sig) {
  int status = sig != 0 ? sig : (exit_code & 0xff) << 8;
  if (sig != 0)
    return tw_failure_new(&TW_PROCESS_TERMINATED, status,
                          "A process has ended with a probable error "
                          "condition: process ended by signal %d.",
                          sig);
  if (exit_code != 0)
    return tw_failure_new(&TW_PROCESS_TERMINATED, status,
                          "A process has ended with a probable error "
                          "condition: process ended with exit code %d.",
                          exit_code);
  return tw_failure_new(&TW_PROCESS_DONE, status,
                        "A process has ended without apparent errors: "
                        "process finished with exit code 0.");
}

static int tw__is_process_reason(const tw_failure *f) {
  return tw_failure_check(f, &TW_PROCESS_DONE) != NULL ||
         tw_failure_check(f, &TW_PROCESS_TERMINATED) != NULL;
}

/* The status: exited (WIFEXITED) when its low 7 bits are 0. */
int tw_process_exit_code(const tw_failure *f) {
  int st;
  if (!tw__is_process_reason(f)) return -1;
  st = tw_failure_code(f);
  if ((st & 0x7f) != 0) return -1;
  return (st >> 8) & 0xff;
}

int tw_process_exit_signal(const tw_failure *f) {
  if (!tw__is_process_reason(f)) return 0;
  return tw_failure_code(f) & 0x7f;
}

/* ---- the structs --------------------------------------------------------------- */

typedef struct tw__process tw__process;

typedef struct tw__pipe {
  tw_protocol proto; /* the pipe stream's protocol (ours) */
  tw__process *proc;
  tw__stream *s; /* NULL once closed (or never made) */
  int child_fd;
  char mode; /* 'w' or 'r' */
} tw__pipe;

struct tw__process {
  tw_transport base; /* first: the transport kind's common part */
  tw__child child;
  tw_reactor *r;
  tw_protocol adapter; /* the process transport's protocol (ours) */
  tw_process_protocol *pp;
  tw_failure *reason; /* why it ended, owned */
  int pid;
  unsigned npipes, open; /* pipes made / not closed yet */
  unsigned registered : 1;
  unsigned spawned : 1;
  unsigned exited : 1;
  unsigned handle_closing : 1;
  unsigned handle_closed : 1;
  unsigned ended : 1;
  uv_process_t h;
  tw__pipe pipes[]; /* npipes */
};

/*
 * Size (x86-64, libuv 1.44): a process is 304 bytes, 168 beyond its
 * uv_process_t (136), plus 72 per pipe, plus the pipe's stream (488, of
 * which 264 are libuv's uv_pipe_t): 1,984 bytes for the default three
 * pipes, against 1,040 for the three uv_pipe_t and the uv_process_t a raw
 * libuv program needs. Small next to the fork and exec behind each one
 * (bench/spawn: about 1 ms each on the 2-vCPU VM).
 */
_Static_assert(sizeof(tw__process) - sizeof(uv_process_t) <= 176,
               "a process is at most 176 bytes beyond its uv_process_t");
_Static_assert(sizeof(tw__pipe) <= 80, "a pipe's own part is 80 bytes");

static const tw__transport_ops tw__process_ops;
static const tw__child_ops tw__process_child_ops;
static const tw_protocol_ops tw__adapter_ops;
static const tw_protocol_ops tw__pipe_proto_ops;
static const tw__stream_owner_ops tw__pipe_owner_ops;

static tw__process *tw__process_of(tw_transport *t) { return (tw__process *)t; }

static tw__pipe *tw__process_pipe(tw__process *p, int child_fd) {
  unsigned i;
  for (i = 0; i < p->npipes; i++)
    if (p->pipes[i].child_fd == child_fd) return &p->pipes[i];
  return NULL;
}

/* ---- the end ------------------------------------------------------------------- */

static void tw__process_free(tw__process *p) {
  tw_failure_unref(p->reason);
  tw__transport_dispose(&p->base);
  if (p->registered) tw__reactor_child_done(p->r, &p->child);
  tw__free(p);
}

/* maybeCallProcessEnded: the child exited (or is no longer watched) and
 * every pipe closed: process_ended, once, then the process goes. */
static void tw__process_maybe_end(tw__process *p) {
  if (p->ended || !p->handle_closed || p->open != 0) return;
  p->ended = 1;
  if (p->reason == NULL)
    p->reason = tw_failure_new(
        &TW_CONNECTION_LOST, 0,
        "Connection to the other side was lost in a non-clean fashion: the "
        "reactor shut down before process %d exited (it was not killed).",
        p->pid);
  tw__transport_lost(&p->base, p->reason);
  tw__process_free(p);
}

static void tw__process_handle_closed(uv_handle_t *h) {
  tw__process *p = h->data;
  p->handle_closed = 1;
  if (!p->spawned) {
    /* uv_spawn failed: nothing was made but the handle and the pipes'
     * streams, which close on their own. */
    tw__process_free(p);
    return;
  }
  tw__process_maybe_end(p);
}

static void tw__process_close_handle(tw__process *p) {
  if (p->handle_closing) return;
  p->handle_closing = 1;
  uv_close((uv_handle_t *)&p->h, tw__process_handle_closed);
}

static void tw__process_exit_cb(uv_process_t *h, int64_t exit_status,
                                int term_signal) {
  tw__process *p = h->data;
  tw_process_protocol *pp = p->pp;
  p->exited = 1;
  p->reason = tw__process_reason((int)exit_status, term_signal);
  /* BaseProcess.processEnded: pid None, processExited, then
   * maybeCallProcessEnded (here: once the handle has closed). */
  if (pp != NULL && p->base.protocol != NULL && pp->ops->process_exited != NULL)
    pp->ops->process_exited(pp, p->reason);
  tw__process_close_handle(p);
}

/* Reactor shutdown and free: stop watching the child (not killed) and
 * close its pipes; process_ended follows from the close callbacks. */
static void tw__process_child_close(tw__child *c, int why) {
  tw__process *p = TW__CONTAINER_OF(c, tw__process, child);
  unsigned i;
  (void)why;
  for (i = 0; i < p->npipes; i++)
    if (p->pipes[i].s != NULL)
      tw__stream_close(p->pipes[i].s, tw__connection_lost(0), 0);
  tw__process_close_handle(p);
}

static const tw__child_ops tw__process_child_ops = {tw__process_child_close};

/* ---- the pipes ------------------------------------------------------------------ */

static tw_failure *tw__pipe_data(tw_protocol *proto, const char *data,
                                 size_t len) {
  tw__pipe *pi = TW__CONTAINER_OF(proto, tw__pipe, proto);
  tw_process_protocol *pp = pi->proc->pp;
  const tw_process_protocol_ops *ops;
  tw_failure *f = NULL;
  if (pi->mode != 'r' || pp == NULL) return NULL; /* a 'w' pipe: dropped */
  ops = pp->ops;
  if (ops->child_data_received != NULL)
    f = ops->child_data_received(pp, pi->child_fd, data, len);
  else if (pi->child_fd == 1 && ops->out_received != NULL)
    f = ops->out_received(pp, data, len);
  else if (pi->child_fd == 2 && ops->err_received != NULL)
    f = ops->err_received(pp, data, len);
  /* A failure: Twisted logs what doRead raised and disconnects that
   * reader. The pipe's stream does both (protocol.c logs the failures of a
   * stream's protocol once, then closes it). */
  return f;
}

static const tw_protocol_ops tw__pipe_proto_ops = {
    .data_received = tw__pipe_data};

/* childConnectionLost: the pipe's stream has closed (after its protocol,
 * ours, heard connection_lost). Then, maybe, process_ended. */
static void tw__pipe_closed(tw__stream *s, void *owner, int made,
                            tw_failure *reason) {
  tw__pipe *pi = owner;
  tw__process *p = pi->proc;
  tw_process_protocol *pp = p->pp;
  (void)s;
  (void)made;
  (void)reason;
  pi->s = NULL;
  p->open--;
  if (pi->child_fd == 0 && pi->mode == 'w' && p->base.producer != NULL) {
    /* stdin is gone: its producer is stopped and forgotten, as
     * FileDescriptor.connectionLost does for pipes[0]'s. */
    tw_producer *prod = p->base.producer;
    if (prod->ops->stop_producing != NULL)
      tw_failure_unref(prod->ops->stop_producing(prod));
    tw_transport_unregister_producer(&p->base);
  }
  if (pp != NULL && p->base.protocol != NULL) {
    const tw_process_protocol_ops *ops = pp->ops;
    if (ops->child_connection_lost != NULL)
      ops->child_connection_lost(pp, pi->child_fd);
    else if (pi->child_fd == 0 && ops->in_connection_lost != NULL)
      ops->in_connection_lost(pp);
    else if (pi->child_fd == 1 && ops->out_connection_lost != NULL)
      ops->out_connection_lost(pp);
    else if (pi->child_fd == 2 && ops->err_connection_lost != NULL)
      ops->err_connection_lost(pp);
  }
  tw__process_maybe_end(p);
}

/* stdin's buffered count changed: the producer rules of the process
 * transport, where the user's producer is registered. */
static void tw__pipe_buffer_changed(tw__stream *s, void *owner) {
  tw__pipe *pi = owner;
  (void)s;
  if (pi->child_fd == 0 && pi->mode == 'w')
    tw__transport_buffer_changed(&pi->proc->base);
}

static const tw__stream_owner_ops tw__pipe_owner_ops = {
    .closed = tw__pipe_closed, .buffer_changed = tw__pipe_buffer_changed};

/* ---- the adapter: the process transport's protocol ------------------------------ */

static tw__process *tw__adapter_process(tw_protocol *a) {
  return TW__CONTAINER_OF(a, tw__process, adapter);
}

static void tw__adapter_made(tw_protocol *a) {
  tw_process_protocol *pp = tw__adapter_process(a)->pp;
  if (pp->ops->connection_made != NULL) pp->ops->connection_made(pp);
}

static void tw__adapter_lost(tw_protocol *a, tw_failure *reason) {
  tw_process_protocol *pp = tw__adapter_process(a)->pp;
  if (pp->ops->process_ended != NULL) pp->ops->process_ended(pp, reason);
}

/* After process_ended: the user's protocol is let go. */
static void tw__adapter_dealloc(tw_protocol *a) {
  tw__process *p = tw__adapter_process(a);
  tw_process_protocol *pp = p->pp;
  p->pp = NULL;
  pp->transport = NULL;
  if (pp->dealloc != NULL) pp->dealloc(pp);
}

static const tw_protocol_ops tw__adapter_ops = {
    .connection_made = tw__adapter_made, .connection_lost = tw__adapter_lost};

/* ---- spawning ------------------------------------------------------------------- */

#define TW__CHILD_FD_MAX 256

int tw_process_protocol_init(tw_process_protocol *pp,
                             const tw_process_protocol_ops *ops) {
  if (pp == NULL || ops == NULL) return TW_EINVAL;
  memset(pp, 0, sizeof(*pp));
  pp->ops = ops;
  return 0;
}

static const tw_child_fd tw__default_fds[3] = {
    {0, 'w', -1}, {1, 'r', -1}, {2, 'r', -1}};

/* Check child_fds; *nstdio: the stdio array's length, *npipes: pipes. */
static int tw__check_fds(const tw_child_fd *fds, size_t n, int *nstdio,
                         unsigned *npipes) {
  unsigned char seen[TW__CHILD_FD_MAX];
  size_t i;
  int max = -1;
  memset(seen, 0, sizeof(seen));
  *npipes = 0;
  for (i = 0; i < n; i++) {
    int fd = fds[i].child_fd;
    if (fd < 0 || fd >= TW__CHILD_FD_MAX || seen[fd]) return TW_EINVAL;
    seen[fd] = 1;
    if (fds[i].mode == 'w' || fds[i].mode == 'r')
      (*npipes)++;
    else if (fds[i].mode != 'i')
      return TW_EINVAL;
    if (fd > max) max = fd;
  }
  for (i = 0; i < n; i++)
    if (fds[i].mode == 'i' &&
        (fds[i].parent_fd < 0 || fcntl(fds[i].parent_fd, F_GETFD) == -1))
      return UV_EBADF;
  *nstdio = max + 1;
  return 0;
}

/* Close what a failed spawn made: the streams (their memory goes with
 * their close callbacks), then the handle (uv_spawn initialised it, even
 * on failure) or, before uv_spawn, the process itself. */
static void tw__spawn_undo(tw__process *p, int handle_inited) {
  unsigned i;
  for (i = 0; i < p->npipes; i++)
    if (p->pipes[i].s != NULL) {
      tw__stream_close(p->pipes[i].s, NULL, 0);
      p->pipes[i].s = NULL;
    }
  if (handle_inited)
    tw__process_close_handle(p);
  else
    tw__process_free(p);
}

int tw_spawn_process(tw_reactor *r, tw_process_protocol *pp,
                     const char *executable, const char *const *argv,
                     const char *const *env, const char *path,
                     const tw_child_fd *child_fds, size_t n_child_fds,
                     const tw_process_ids *ids, tw_transport **out) {
  static const char *const empty_env[] = {NULL};
  uv_stdio_container_t stdio_stack[8], *stdio = stdio_stack;
  uv_process_options_t o;
  const char *argv_default[2];
  tw__process *p;
  unsigned npipes, k;
  int nstdio, err;
  size_t i;

  if (out != NULL) *out = NULL;
  if (r == NULL || pp == NULL || pp->ops == NULL || executable == NULL ||
      out == NULL)
    return TW_EINVAL;
  if (!tw_reactor_in_loop_thread(r)) return TW_EWRONGTHREAD;
  if (pp->transport != NULL) return TW_EBUSY;
  if (child_fds == NULL) {
    child_fds = tw__default_fds;
    n_child_fds = 3;
  }
  err = tw__check_fds(child_fds, n_child_fds, &nstdio, &npipes);
  if (err != 0) return err;
  if (tw__reactor_gone(r)) return TW_ESHUTDOWN;

  p = tw__calloc(1, sizeof(*p) + npipes * sizeof(tw__pipe));
  if (p == NULL) return TW_ENOMEM;
  p->r = r;
  p->pp = pp;
  p->h.data = p;
  tw__transport_init(&p->base, &tw__process_ops);
  /* A child before anything of libuv's exists: tw_reactor_free then waits
   * for the handle's close, failed spawn or not. */
  tw__child_init(&p->child, &tw__process_child_ops,
                 TW__CHILD_ON_LOOP | TW__CHILD_SHUTDOWN);
  err = tw__reactor_child_add(r, &p->child);
  if (err != 0) {
    tw__free(p);
    return err;
  }
  p->registered = 1;

  if (nstdio > (int)TW__ARRAY_SIZE(stdio_stack)) {
    stdio = tw__calloc((size_t)nstdio, sizeof(*stdio));
    if (stdio == NULL) {
      tw__spawn_undo(p, 0);
      return TW_ENOMEM;
    }
  }
  for (k = 0; k < (unsigned)nstdio; k++) stdio[k].flags = UV_IGNORE;
  for (i = 0, k = 0; i < n_child_fds; i++) {
    const tw_child_fd *c = &child_fds[i];
    uv_stdio_container_t *sc = &stdio[c->child_fd];
    if (c->mode == 'i') {
      sc->flags = UV_INHERIT_FD;
      sc->data.fd = c->parent_fd;
      continue;
    }
    err = tw__stream_new(&p->pipes[k].s, r, 0);
    if (err != 0) break;
    p->npipes = ++k;
    p->pipes[k - 1].proc = p;
    p->pipes[k - 1].child_fd = c->child_fd;
    p->pipes[k - 1].mode = c->mode;
    /* A 'w' pipe is readable too: see the top of the file. */
    sc->flags = c->mode == 'w'
                    ? (uv_stdio_flags)(UV_CREATE_PIPE | UV_READABLE_PIPE |
                                       UV_WRITABLE_PIPE)
                    : (uv_stdio_flags)(UV_CREATE_PIPE | UV_WRITABLE_PIPE);
    sc->data.stream = (uv_stream_t *)&p->pipes[k - 1].s->h.pipe;
  }
  if (err != 0) {
    if (stdio != stdio_stack) tw__free(stdio);
    tw__spawn_undo(p, 0);
    return err;
  }

  memset(&o, 0, sizeof(o));
  o.exit_cb = tw__process_exit_cb;
  o.file = executable;
  if (argv == NULL) {
    argv_default[0] = executable;
    argv_default[1] = NULL;
    argv = argv_default;
  }
  /* libuv takes char ** and changes nothing. */
  o.args = (char **)(uintptr_t)argv;
  /* Twisted: no env given = an empty environment (libuv: NULL inherits). */
  if (env == TW_PROCESS_ENV_INHERIT)
    o.env = NULL;
  else
    o.env = (char **)(uintptr_t)(env != NULL ? env : empty_env);
  o.cwd = path;
  o.stdio = stdio;
  o.stdio_count = nstdio;
  if (ids != NULL && ids->set_uid) {
    o.flags |= UV_PROCESS_SETUID;
    o.uid = (uv_uid_t)ids->uid;
  }
  if (ids != NULL && ids->set_gid) {
    o.flags |= UV_PROCESS_SETGID;
    o.gid = (uv_gid_t)ids->gid;
  }
  err = uv_spawn(tw_reactor_loop(r), &p->h, &o);
  if (stdio != stdio_stack) tw__free(stdio);
  if (err != 0) {
    /* The exec failed (or fork, or a pipe): libuv knows before returning,
     * so the caller hears now (docs/design.md "Processes"). */
    tw__spawn_undo(p, 1);
    return err;
  }
  p->spawned = 1;
  p->pid = p->h.pid;
  p->open = p->npipes;
  *out = &p->base;
  for (k = 0; k < p->npipes; k++) {
    tw__pipe *pi = &p->pipes[k];
    tw_protocol_init(&pi->proto, &tw__pipe_proto_ops);
    pi->s->owner_ops = &tw__pipe_owner_ops;
    pi->s->owner = pi;
    /* An error leaves the stream closing: its close tells us. */
    (void)tw__stream_start_protocol(pi->s, &pi->proto);
  }
  tw_protocol_init(&p->adapter, &tw__adapter_ops);
  p->adapter.dealloc = tw__adapter_dealloc;
  pp->transport = &p->base;
  tw__transport_make_connection(&p->base, &p->adapter);
  return 0;
}

/* ---- the transport kind ----------------------------------------------------------- */

static int tw__process_on_loop(tw_transport *t) {
  return tw_reactor_in_loop_thread(tw__process_of(t)->r);
}

/* The open 'w' pipe for child_fd, or NULL. */
static tw__pipe *tw__process_writer(tw__process *p, int child_fd) {
  tw__pipe *pi = tw__process_pipe(p, child_fd);
  return pi != NULL && pi->mode == 'w' && pi->s != NULL ? pi : NULL;
}

static int tw__process_writev(tw_transport *t, const tw_iovec *bufs,
                              size_t n) {
  tw__pipe *pi = tw__process_writer(tw__process_of(t), 0);
  /* Twisted's Process.write drops the bytes when there is no stdin. */
  if (pi == NULL) return TW_ENOTCONN;
  return tw_transport_write_sequence(&pi->s->base, bufs, n);
}

static int tw__process_close_fd(tw__process *p, int child_fd) {
  tw__pipe *pi = tw__process_pipe(p, child_fd);
  if (pi == NULL || pi->s == NULL) return 0; /* already closed */
  return tw_transport_lose_connection(&pi->s->base);
}

/* Process.loseConnection: closeStdin, closeStderr, closeStdout. */
static int tw__process_lose(tw_transport *t) {
  tw__process *p = tw__process_of(t);
  tw__process_close_fd(p, 0);
  tw__process_close_fd(p, 2);
  tw__process_close_fd(p, 1);
  return 0;
}

/* protocol.c's close after a producer's failure: every pipe now. */
static int tw__process_close_now(tw_transport *t) {
  tw__process *p = tw__process_of(t);
  unsigned i;
  for (i = 0; i < p->npipes; i++)
    if (p->pipes[i].s != NULL)
      tw_transport_abort_connection(&p->pipes[i].s->base);
  return 0;
}

static int tw__process_reading(tw_transport *t, int pause) {
  tw__process *p = tw__process_of(t);
  unsigned i;
  for (i = 0; i < p->npipes; i++) {
    tw__pipe *pi = &p->pipes[i];
    if (pi->mode != 'r' || pi->s == NULL) continue;
    if (pause)
      tw_transport_pause_producing(&pi->s->base);
    else
      tw_transport_resume_producing(&pi->s->base);
  }
  return 0;
}

static int tw__process_pause(tw_transport *t) {
  return tw__process_reading(t, 1);
}

static int tw__process_resume(tw_transport *t) {
  return tw__process_reading(t, 0);
}

static size_t tw__process_buffered(tw_transport *t) {
  tw__pipe *pi = tw__process_writer(tw__process_of(t), 0);
  return pi != NULL ? tw_transport_buffered(&pi->s->base) : 0;
}

static const tw__transport_ops tw__process_ops = {
    .on_loop_thread = tw__process_on_loop,
    .writev = tw__process_writev,
    .lose = tw__process_lose,
    .close_now = tw__process_close_now,
    .pause_reading = tw__process_pause,
    .resume_reading = tw__process_resume,
    .buffered = tw__process_buffered,
};

/* ---- IProcessTransport -------------------------------------------------------------- */

int tw_transport_is_process(tw_transport *t) {
  return t != NULL && t->ops == &tw__process_ops;
}

/* t a process transport, on its loop thread: 0, or the code. */
static int tw__process_check(tw_transport *t) {
  if (!tw_transport_is_process(t)) return TW_EINVAL;
  if (!tw__process_on_loop(t)) return TW_EWRONGTHREAD;
  return 0;
}

int tw_process_pid(tw_transport *t) {
  int err = tw__process_check(t);
  if (err != 0) return err;
  return tw__process_of(t)->exited ? 0 : tw__process_of(t)->pid;
}

int tw_process_signal_number(tw_transport *t, int signum) {
  tw__process *p;
  int err = tw__process_check(t);
  if (err != 0) return err;
  if (signum < 0 || signum > 64) return TW_EINVAL;
  p = tw__process_of(t);
  /* Once reaped (or no longer watched) the pid may be anybody's. */
  if (p->exited || p->handle_closing) return TW_ESRCH;
  return uv_process_kill(&p->h, signum);
}

int tw_process_signal(tw_transport *t, const char *name) {
  static const struct {
    const char *name;
    int num;
  } names[] = {{"HUP", SIGHUP},
               {"STOP", SIGSTOP},
               {"INT", SIGINT},
               {"KILL", SIGKILL},
               {"TERM", SIGTERM}};
  size_t i;
  int err = tw__process_check(t);
  if (err != 0) return err;
  if (name == NULL) return TW_EINVAL;
  for (i = 0; i < TW__ARRAY_SIZE(names); i++)
    if (strcmp(name, names[i].name) == 0)
      return tw_process_signal_number(t, names[i].num);
  return TW_EINVAL;
}

int tw_process_write_to_child(tw_transport *t, int child_fd, const void *data,
                              size_t len) {
  tw__pipe *pi;
  int err = tw__process_check(t);
  if (err != 0) return err;
  if (data == NULL && len > 0) return TW_EINVAL;
  pi = tw__process_pipe(tw__process_of(t), child_fd);
  if (pi == NULL || pi->mode != 'w') return TW_EINVAL;
  if (pi->s == NULL) return TW_ENOTCONN;
  return tw_transport_write(&pi->s->base, data, len);
}

int tw_process_close_child_fd(tw_transport *t, int child_fd) {
  int err = tw__process_check(t);
  if (err != 0) return err;
  if (child_fd < 0) return TW_EINVAL;
  return tw__process_close_fd(tw__process_of(t), child_fd);
}

int tw_process_close_stdin(tw_transport *t) {
  return tw_process_close_child_fd(t, 0);
}

int tw_process_close_stdout(tw_transport *t) {
  return tw_process_close_child_fd(t, 1);
}

int tw_process_close_stderr(tw_transport *t) {
  return tw_process_close_child_fd(t, 2);
}
