/*
 * lib/reactor.c - the reactor (reactor.h): run/stop/crash, one reactor
 * iteration per libuv loop iteration, delayed calls on the clock heap, and
 * the lock-free call_from_thread queue.
 *
 * libuv handles, all on the reactor's loop and all unreferenced except the
 * async while the reactor is started (that is what keeps uv_run(DEFAULT)
 * going, as reactor.run() keeps going with nothing to do):
 *   async  wakes the loop when call_from_thread makes the queue non-empty
 *   timer  armed for the earliest delayed call (one for all of them)
 *   check  runs the reactor iteration once per loop iteration, after poll
 *   idle   started only when the next iteration must not block in poll
 *          (queued thread calls left over, a pending stop, a fired timer)
 */
#include "reactor-struct.h"

#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static void tw__reactor_close_queue(tw_reactor *r);
static void tw__reactor_timer_cb(uv_timer_t *h);
static void tw__reactor_idle_cb(uv_idle_t *h);
static void tw__reactor_signal_cb(uv_signal_t *h, int signum);

/* ---- threads ------------------------------------------------------------ */

static void tw__set_loop_thread(tw_reactor *r) {
  r->loop_thread = pthread_self();
}


/* ---- time --------------------------------------------------------------- */

static double tw__reactor_now(tw_clock *c) {
  (void)c;
  return (double)uv_hrtime() * 1e-9;
}

static int tw__reactor_clock_check(tw_clock *c) {
  tw_reactor *r = TW__CONTAINER_OF(c, tw_reactor, clock);
  if (!tw__reactor_on_loop_thread(r)) return TW_EWRONGTHREAD;
  return 0;
}

/*
 * Keep the single uv_timer armed for the earliest deadline. The timer only
 * wakes the loop: the calls themselves run in the iteration (check phase),
 * so that timers, thread calls and shutdown keep Twisted's order.
 */
static void tw__reactor_arm(tw_reactor *r) {
  double deadline = tw__clock_next_deadline(&r->clock);
  double now;
  uint64_t ms;
  if (r->closing) return;
  if (deadline == INFINITY) {
    if (!isnan(r->armed_deadline)) {
      uv_timer_stop(&r->timer);
      r->armed_deadline = NAN;
    }
    return;
  }
  if (deadline == r->armed_deadline) return;
  now = tw__reactor_now(&r->clock);
  if (deadline <= now) {
    ms = 0;
  } else {
    double wait = ceil((deadline - now) * 1000.0);
    ms = wait > 9e15 ? (uint64_t)9e15 : (uint64_t)wait;
    /* uv_timer_start counts from the loop's cached time: refresh it so the
     * timer is not early by however stale that is. */
    uv_update_time(r->loop);
  }
  uv_timer_start(&r->timer, tw__reactor_timer_cb, ms, 0);
  r->armed_deadline = deadline;
}

static void tw__reactor_clock_changed(tw_clock *c) {
  tw_reactor *r = TW__CONTAINER_OF(c, tw_reactor, clock);
  double deadline;
  /* Inside an iteration the timer is re-armed once at its end. */
  if (r->in_iterate != 0) return;
  /* Only an earlier deadline needs the timer now. A later one (a cancel or
   * a reset of the earliest call) can wait: the armed timer then fires
   * early, finds nothing due and re-arms - one wasted wake-up instead of a
   * uv_timer_start on every cancel. */
  deadline = tw__clock_next_deadline(c);
  if (isnan(r->armed_deadline) ? deadline != INFINITY
                               : deadline < r->armed_deadline)
    tw__reactor_arm(r);
}

static const tw__clock_ops tw__reactor_clock_ops = {
    tw__reactor_now, tw__reactor_clock_check, tw__reactor_clock_changed};

/* ---- wake-ups ----------------------------------------------------------- */

/* Make the next loop iteration not block in poll, so the check runs soon. */
static void tw__reactor_wake(tw_reactor *r) {
  if (!r->closing && !uv_is_active((uv_handle_t *)&r->idle))
    uv_idle_start(&r->idle, tw__reactor_idle_cb);
}

static void tw__reactor_idle_cb(uv_idle_t *h) { (void)h; }

static void tw__reactor_timer_cb(uv_timer_t *h) {
  tw_reactor *r = h->data;
  r->armed_deadline = NAN; /* fired: re-arm even for the same deadline */
  tw__reactor_wake(r);
}

static void tw__reactor_async_cb(uv_async_t *h) {
  /* Only a wake-up: the queue is drained in the check phase. */
  (void)h;
}

/* ---- call_from_thread --------------------------------------------------- */

_Static_assert(sizeof(tw__call_node) <= TW__TNODE_SIZE,
               "a call node must fit a tnode");

/* Fill call and queue it; TW_ESHUTDOWN if the reactor refuses it. */
static int tw__reactor_push_call(tw_reactor *r, tw__call_node *call,
                                 tw_call_fn fn, void *arg,
                                 tw_free_fn arg_free, int ext) {
  size_t prev;
  call->fn = fn;
  call->arg = arg;
  call->arg_free = arg_free;
  call->ext = ext;
  /*
   * Count first, then push. The count doubles as the "closed" flag, so one
   * atomic both reserves the slot and checks that the reactor still accepts
   * calls. The consumer pops exactly what the count promises, waiting for a
   * push in flight; so once the closer has popped every counted call, no
   * producer touches the reactor any more - which is what makes closing (and
   * freeing, and uv_async_send on libuv 1.44, which aborts after close) safe.
   */
  if (tw__gate_enter_add(&r->queued, &prev) != 0) return TW_ESHUTDOWN;
  /* Wake only on empty -> non-empty; sent before the push so that the push
   * is the producer's last access to the reactor. */
  if (prev / TW__GATE_ONE == 0) uv_async_send(&r->async);
  tw__mpsc_push(&r->queue, &call->link);
  return 0;
}

int tw_reactor_call_from_thread(tw_reactor *r, tw_call_fn fn, void *arg,
                                tw_free_fn arg_free) {
  tw__call_node *call;
  int err;
  if (r == NULL || fn == NULL) return TW_EINVAL;
  call = tw__tnode_get();
  if (call == NULL) return TW_ENOMEM;
  err = tw__reactor_push_call(r, call, fn, arg, arg_free, 0);
  if (err != 0) tw__tnode_put(call);
  return err;
}

int tw__reactor_call_from_thread_node(tw_reactor *r, tw__call_node *call,
                                      tw_call_fn fn, void *arg,
                                      tw_free_fn arg_free) {
  return tw__reactor_push_call(r, call, fn, arg, arg_free, 1);
}

/* Run (run != 0) or discard the n oldest queued calls. */
static void tw__reactor_take_calls(tw_reactor *r, size_t n, int run) {
  size_t i;
  for (i = 0; i < n; i++) {
    tw__call_node *call =
        TW__CONTAINER_OF(tw__mpsc_pop_wait(&r->queue), tw__call_node, link);
    /* An ext node may be gone once fn or arg_free has run. */
    tw_call_fn fn = call->fn;
    void *arg = call->arg;
    tw_free_fn arg_free = call->arg_free;
    int ext = call->ext;
    if (run) fn(arg);
    if (arg_free != NULL) arg_free(arg);
    if (!ext) tw__tnode_put(call);
  }
}

/* Step 1 of an iteration: the calls queued before it, FIFO. */
static int tw__reactor_drain(tw_reactor *r) {
  size_t v = atomic_load_explicit(&r->queued, memory_order_acquire);
  size_t n = v / TW__GATE_ONE, prev;
  /* Closed: whatever the count says now is refused callers on their way
   * out; nothing of theirs will ever be pushed. */
  if (n == 0 || (v & TW__GATE_CLOSED)) return 0;
  r->draining = 1;
  tw__reactor_take_calls(r, n, 1);
  r->draining = 0;
  prev = tw__gate_sub(&r->queued, n * TW__GATE_ONE);
  /* A call above finished the shutdown: close now that our n are off the
   * books (closing mid-drain would count calls already taken). */
  if (r->close_pending) {
    r->close_pending = 0;
    tw__reactor_close_queue(r);
    return 0;
  }
  /* Calls queued meanwhile saw a non-zero count and sent no wake-up. */
  return prev / TW__GATE_ONE > n;
}

/*
 * Refuse further calls and discard those accepted but not run (their
 * arg_free runs). Loop thread only. Producers that counted themselves
 * before the flag was set are accepted: their nodes arrive (pop_wait covers
 * a push still in flight). Producers that see the flag undo their count and
 * push nothing, so the count is only ever taken down by what we popped -
 * never stored over, which would lose a refused producer's undo.
 */
static void tw__reactor_close_queue(tw_reactor *r) {
  size_t prev, n;
  if (r->draining) {
    r->close_pending = 1;
    return;
  }
  r->queue_closed = 1;
  if (tw__gate_shut_ex(&r->queued, 0, &prev) != 0) return;
  n = prev / TW__GATE_ONE;
  tw__reactor_take_calls(r, n, 0);
  (void)tw__gate_sub(&r->queued, n * TW__GATE_ONE);
}

/* Before the memory goes: wait for refused producers to finish their undo
 * (a few instructions each), their last access to the reactor. */
static void tw__reactor_quiesce_queue(tw_reactor *r) {
  while (tw__gate_users(&r->queued, TW__GATE_ONE) != 0) sched_yield();
}

/* ---- the iteration -------------------------------------------------------- */

/* Twisted's runUntilCurrent. */
static void tw__reactor_iteration(tw_reactor *r) {
  int more;
  r->in_iterate++;
  more = tw__reactor_drain(r);
  /* Timers: a call_later(0) made by a thread call above runs now (as in
   * Twisted); calls made by the timers themselves wait for the next pass. */
  tw__clock_run_due(&r->clock, tw__reactor_now(&r->clock), 1);
  if (r->just_stopped) {
    r->just_stopped = 0;
    tw__reactor_fire(r, "shutdown");
  }
  r->in_iterate--;
  tw__reactor_arm(r);
  if (more || r->just_stopped)
    tw__reactor_wake(r);
  else if (!r->closing)
    uv_idle_stop(&r->idle);
}

static void tw__reactor_check_cb(uv_check_t *h) {
  tw_reactor *r = h->data;
  /* tw_reactor_iterate already ran the iteration before its poll. */
  if (r->started && !r->manual_iterate)
    tw__reactor_iteration(r);
  else if (!r->closing)
    uv_idle_stop(&r->idle);
}

/* ---- run / stop / crash ---------------------------------------------------- */

static tw_result tw__really_start_running(void *arg) {
  tw_reactor *r = arg;
  r->running = 1;
  tw__reactor_children_live(r);
  if (r->flags & TW_REACTOR_SIGNALS) {
    uv_signal_start(&r->sigint, tw__reactor_signal_cb, SIGINT);
    uv_signal_start(&r->sigterm, tw__reactor_signal_cb, SIGTERM);
  }
  return tw_result_none();
}

static void tw__reactor_signal_cb(uv_signal_t *h, int signum) {
  tw_reactor *r = h->data;
  (void)signum;
  /* As Twisted's sigInt/sigTerm: callFromThread(stop); already stopping is
   * fine. */
  (void)tw_reactor_stop(r);
}

static int tw__reactor_add_really_start(tw_reactor *r) {
  return tw__reactor_add_internal_trigger(r, TW_PHASE_DURING, "startup",
                                          tw__really_start_running);
}

static void tw__reactor_do_crash(tw_reactor *r) {
  r->started = 0;
  r->running = 0;
  tw__reactor_children_halt(r);
  uv_unref((uv_handle_t *)&r->async);
  if (r->flags & TW_REACTOR_SIGNALS) {
    uv_signal_stop(&r->sigint);
    uv_signal_stop(&r->sigterm);
  }
  if (r->in_run) uv_stop(r->loop);
}

/* The reactor's own during-shutdown trigger, registered first (Twisted's
 * ("during", "shutdown", crash)). */
static tw_result tw__reactor_shutdown_crash(void *arg) {
  tw__reactor_do_crash(arg);
  return tw_result_none();
}

/* The reactor's second during-shutdown trigger, right after the crash
 * (Twisted's ("during", "shutdown", disconnectAll)): connections, ports and
 * connection attempts close; their close callbacks still run on this loop
 * iteration, before run returns. */
static tw_result tw__reactor_disconnect_all(void *arg) {
  tw__reactor_children_shutdown(arg);
  return tw_result_none();
}

/* After the shutdown event completed: stopped for good. */
void tw__reactor_shutdown_done(tw_reactor *r) {
  /* The event ran without the reactor's own crash trigger: a "shutdown"
   * fired by hand (before run, or while running) used it up, as triggers
   * run once. Twisted then never returns from run; crash here instead, so
   * that a stop always ends the run. */
  if (r->started_before && r->started) tw__reactor_do_crash(r);
  if (r->started_before && !r->started) tw__reactor_close_queue(r);
}

static int tw__reactor_startup(tw_reactor *r) {
  if (r == NULL) return TW_EINVAL;
  if (r->started) return TW_EALREADYRUNNING;
  if (r->started_before) return TW_ENOTRESTARTABLE;
  if (r->closing) return TW_EINVAL;
  if (r->need_really_start) {
    if (tw__reactor_add_really_start(r) != 0) return TW_ENOMEM;
    r->need_really_start = 0;
  }
  r->started = 1;
  r->stopped = 0;
  uv_ref((uv_handle_t *)&r->async);
  /* Run the first iteration promptly: calls queued before run are waiting. */
  tw__reactor_wake(r);
  tw__reactor_fire(r, "startup");
  return 0;
}

/*
 * The reactor's loop thread is the thread that created it, for its whole
 * life: run and start_running refuse any other thread in every build (not
 * only with thread checks). Twisted makes whichever thread starts the
 * reactor its I/O thread; twuv does not hand a reactor over, so that
 * tw_reactor_in_loop_thread, the thread checks and the TW_EDEADLK of
 * tw_blocking_call_from_thread give the same answer before and after run,
 * and no state set up by one thread is taken over unsynchronised by
 * another. One comparison per run: nothing to gain by compiling it out.
 */
int tw_reactor_start_running(tw_reactor *r) {
  if (r == NULL) return TW_EINVAL;
  if (!tw__reactor_on_loop_thread(r)) return TW_EWRONGTHREAD;
  return tw__reactor_startup(r);
}

int tw_reactor_run(tw_reactor *r) {
  int err;
  if (r == NULL) return TW_EINVAL;
  if (!tw__reactor_on_loop_thread(r)) return TW_EWRONGTHREAD;
  /* Twisted's checks first (_started, then _startedBefore); then the
   * nesting twuv cannot allow: uv_run is not re-entrant. */
  if (r->started) return TW_EALREADYRUNNING;
  if (r->started_before) return TW_ENOTRESTARTABLE;
  if (r->in_run || r->in_iterate || r->manual_iterate) return TW_EBUSY;
  err = tw__reactor_startup(r);
  if (err != 0) return err;
  r->in_run = 1;
  while (r->started) uv_run(r->loop, UV_RUN_DEFAULT);
  r->in_run = 0;
  return 0;
}

int tw_reactor_stop(tw_reactor *r) {
  if (r == NULL) return TW_EINVAL;
  TW__LOOP_ONLY(r, TW_EWRONGTHREAD);
  if (r->stopped) return TW_ENOTRUNNING;
  r->stopped = 1;
  r->just_stopped = 1;
  r->started_before = 1;
  /* Shutdown starts: threads blocked on the reactor get TW_ESHUTDOWN now
   * rather than a result that may never come. */
  tw__reactor_children_halt(r);
  tw__reactor_wake(r);
  return 0;
}

int tw_reactor_crash(tw_reactor *r) {
  if (r == NULL) return TW_EINVAL;
  TW__LOOP_ONLY(r, TW_EWRONGTHREAD);
  tw__reactor_do_crash(r);
  /* As Twisted: re-add _reallyStartRunning so that run() can start again.
   * Out of memory, the next startup adds it instead: the crash itself has
   * happened and must not report failure. */
  if (tw__reactor_add_really_start(r) != 0) r->need_really_start = 1;
  return 0;
}

int tw_reactor_running(tw_reactor *r) {
  /* A yes/no answer: 0 for NULL and off the loop thread, never a code. */
  if (r == NULL) return 0;
  TW__LOOP_ONLY(r, 0);
  return r->running != 0;
}

int tw_reactor_in_loop_thread(tw_reactor *r) {
  return r != NULL && tw__reactor_on_loop_thread(r);
}

static void tw__noop(void *arg) { (void)arg; }

int tw_reactor_iterate(tw_reactor *r, double delay) {
  tw_delayed_call *wake = NULL;
  if (r == NULL || isnan(delay) || delay < 0) return TW_EINVAL;
  TW__LOOP_ONLY(r, TW_EWRONGTHREAD);
  if (r->in_run || r->in_iterate || r->manual_iterate || r->closing)
    return TW_EBUSY;
  /* Twisted's iterate: runUntilCurrent, then one poll of at most delay. */
  tw__reactor_iteration(r);
  r->manual_iterate = 1;
  /* INFINITY: no bounding call; the poll waits for the next event (a due
   * delayed call's timer, a call_from_thread, any handle on the loop). */
  if (delay > 0 &&
      (delay == INFINITY ||
       tw_clock_call_later(&r->clock, delay, tw__noop, NULL, NULL, &wake) ==
           0)) {
    /* The async is referenced for the poll, so that uv_run blocks even on a
     * reactor that is not started; the no-op call bounds the wait. */
    uv_ref((uv_handle_t *)&r->async);
    uv_run(r->loop, UV_RUN_ONCE);
    if (!r->started) uv_unref((uv_handle_t *)&r->async);
    if (wake != NULL) {
      (void)tw_delayed_call_cancel(wake);
      tw_delayed_call_unref(wake);
    }
  } else {
    uv_run(r->loop, UV_RUN_NOWAIT);
  }
  r->manual_iterate = 0;
  return 0;
}

/* ---- for other modules (reactor-internal.h) -------------------------------- */

int tw__reactor_gone(const tw_reactor *r) {
  return (r->started_before && !r->started) || r->queue_closed || r->closing;
}

unsigned tw__reactor_flags(const tw_reactor *r) { return r->flags; }

tw_threadpool *tw__reactor_pool(const tw_reactor *r) { return r->pool; }

void tw__reactor_set_pool(tw_reactor *r, tw_threadpool *tp) { r->pool = tp; }

tw__resolver_hook *tw__reactor_resolver(tw_reactor *r) { return &r->resolver; }

/* ---- time API -------------------------------------------------------------- */

tw_clock *tw_reactor_clock(tw_reactor *r) { return r ? &r->clock : NULL; }

struct uv_loop_s *tw_reactor_loop(tw_reactor *r) {
  return r ? r->loop : NULL;
}

double tw_reactor_seconds(tw_reactor *r) {
  if (r == NULL) return NAN;
  TW__LOOP_ONLY(r, NAN);
  return tw__reactor_now(&r->clock);
}

int tw_reactor_call_later(tw_reactor *r, double delay, tw_call_fn fn,
                          void *arg, tw_free_fn arg_free,
                          tw_delayed_call **out) {
  if (out != NULL) *out = NULL;
  if (r == NULL) return TW_EINVAL;
  return tw_clock_call_later(&r->clock, delay, fn, arg, arg_free, out);
}

/* ---- handles ------------------------------------------------------------ */

void tw__reactor_maybe_release(tw_reactor *r) {
  if (r->open_handles > 0 || r->children != NULL) return;
  tw__reactor_children_destroy(r);
  tw__free(r->read_buf);
  tw__free(r);
}

static void tw__handle_closed(uv_handle_t *h) {
  tw_reactor *r = h->data;
  if (--r->open_handles == 0 && r->own_loop == NULL)
    tw__reactor_maybe_release(r);
}

static void tw__open(tw_reactor *r, uv_handle_t *h) {
  h->data = r;
  uv_unref(h);
  r->open_handles++;
}

/* ---- what the networking layer borrows ------------------------------------ */

char *tw__reactor_read_buffer(tw_reactor *r) {
  if (r->read_buf == NULL) r->read_buf = tw__malloc(TW__READ_BUFFER_SIZE);
  return r->read_buf;
}

static void tw__reactor_prepare_cb(uv_prepare_t *h) {
  tw_reactor *r = h->data;
  /* Only the nodes queued now: one a fn queues again waits for the next
   * turn (its own flush may have met a full socket). */
  tw__flush_node *last = r->flush_tail, *n;
  while ((n = r->flush_head) != NULL) {
    tw__reactor_flush_remove(r, n);
    n->fn(n);
    if (n == last) break;
  }
  if (r->flush_head == NULL) uv_prepare_stop(&r->prepare);
}

void tw__reactor_flush_add(tw_reactor *r, tw__flush_node *n) {
  if (n->prev != NULL || r->flush_head == n) return; /* queued */
  n->next = NULL;
  n->prev = r->flush_tail;
  if (r->flush_tail != NULL)
    r->flush_tail->next = n;
  else
    r->flush_head = n;
  r->flush_tail = n;
  if (!r->closing) uv_prepare_start(&r->prepare, tw__reactor_prepare_cb);
}

void tw__reactor_flush_remove(tw_reactor *r, tw__flush_node *n) {
  if (n->prev == NULL && r->flush_head != n) return; /* not queued */
  if (n->prev != NULL)
    n->prev->next = n->next;
  else
    r->flush_head = n->next;
  if (n->next != NULL)
    n->next->prev = n->prev;
  else
    r->flush_tail = n->prev;
  n->next = n->prev = NULL;
}

static int tw__reactor_init_handles(tw_reactor *r) {
  int err = uv_async_init(r->loop, &r->async, tw__reactor_async_cb);
  if (err != 0) return err;
  tw__open(r, (uv_handle_t *)&r->async);
  uv_timer_init(r->loop, &r->timer);
  tw__open(r, (uv_handle_t *)&r->timer);
  uv_check_init(r->loop, &r->check);
  tw__open(r, (uv_handle_t *)&r->check);
  uv_check_start(&r->check, tw__reactor_check_cb);
  uv_idle_init(r->loop, &r->idle);
  tw__open(r, (uv_handle_t *)&r->idle);
  uv_prepare_init(r->loop, &r->prepare);
  tw__open(r, (uv_handle_t *)&r->prepare);
  if (r->flags & TW_REACTOR_SIGNALS) {
    err = uv_signal_init(r->loop, &r->sigint);
    if (err == 0) {
      tw__open(r, (uv_handle_t *)&r->sigint);
      err = uv_signal_init(r->loop, &r->sigterm);
      if (err == 0) tw__open(r, (uv_handle_t *)&r->sigterm);
    }
  }
  return err;
}

static void tw__close(uv_handle_t *h) {
  if (h->data != NULL && !uv_is_closing(h)) uv_close(h, tw__handle_closed);
}

/*
 * Close the reactor's handles; its memory (and our loop's) goes once their
 * close callbacks ran - here on our loop, from the host's loop otherwise -
 * and its children are done (tw__reactor_maybe_release).
 */
static void tw__reactor_close_handles(tw_reactor *r) {
  uv_loop_t *own = r->own_loop;
  int err;
  r->closing = 1;
  tw__close((uv_handle_t *)&r->async);
  tw__close((uv_handle_t *)&r->timer);
  tw__close((uv_handle_t *)&r->check);
  tw__close((uv_handle_t *)&r->idle);
  tw__close((uv_handle_t *)&r->prepare);
  if (r->flags & TW_REACTOR_SIGNALS) {
    tw__close((uv_handle_t *)&r->sigint);
    tw__close((uv_handle_t *)&r->sigterm);
  }
  if (own == NULL) {
    /* The host's loop runs the close callbacks. */
    tw__reactor_maybe_release(r);
    return;
  }
  while (r->open_handles > 0) uv_run(own, UV_RUN_NOWAIT);
  err = uv_loop_close(own);
  if (err == 0) {
    tw__free(own);
  } else {
    /* Handles the program added to our loop are still open: closing them
     * behind its back would be worse than leaving the loop allocated. */
    tw__log_at(TW_LOG_ERROR, NULL, NULL, 0,
               "tw_reactor_free: libuv handles left open on the reactor's "
               "loop (%s); the loop is not freed",
               tw_err_name(err));
  }
  tw__reactor_maybe_release(r);
}

/* ---- creation and destruction ------------------------------------------------ */

/*
 * SIGPIPE is ignored when the first reactor is made, if its disposition is
 * still the default: libuv writes with write/writev, which raise SIGPIPE
 * when the peer is gone (libuv leaves the signal to the application:
 * joyent/libuv #1254), and the default action kills the process - a scratch
 * libuv echo server died of it when a client went away mid-stream
 * (networking-reference.md). Python ignores SIGPIPE at start-up, so a
 * Twisted program never sees it either; here the write fails with EPIPE and
 * the connection is lost with that code. A handler the program installed
 * itself is left alone. Done at reactor creation rather than at the first
 * socket, so that a raw libuv handle on the reactor's loop is covered too
 * (docs/networking.md).
 */
static void tw__ignore_sigpipe_once(void) {
  struct sigaction sa;
  if (sigaction(SIGPIPE, NULL, &sa) != 0) return;
  if (!(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == SIG_DFL) {
    sa.sa_handler = SIG_IGN;
    (void)sigaction(SIGPIPE, &sa, NULL);
  }
}

static void tw__ignore_sigpipe(void) {
  static uv_once_t once = UV_ONCE_INIT;
  uv_once(&once, tw__ignore_sigpipe_once);
}

static uv_once_t tw__default_once = UV_ONCE_INIT;
static uv_mutex_t tw__default_mutex;
static tw_reactor *tw__default_reactor;

static void tw__default_init(void) {
  if (uv_mutex_init(&tw__default_mutex) != 0) abort();
}

/*
 * One unwinding ladder (libuv's style): each label undoes one step and
 * falls through to the ones before it. The handles are the exception that
 * cannot fall through: once one is open, its close callback owns the
 * memory (tw__reactor_close_handles frees r, and our loop, now or from the
 * host's loop).
 */
int tw_reactor_new(tw_reactor **out, struct uv_loop_s *loop, unsigned flags) {
  tw_reactor *r;
  int err;
  if (out == NULL) return TW_EINVAL;
  *out = NULL;
  if (flags & ~(TW_REACTOR_SIGNALS | TW_REACTOR_UV_POOL)) return TW_EINVAL;
  err = TW_ENOMEM;
  r = tw__calloc(1, sizeof(*r));
  if (r == NULL) goto fail;
  r->flags = flags;
  if (loop == NULL) {
    r->own_loop = tw__malloc(sizeof(*r->own_loop));
    if (r->own_loop == NULL) goto fail_reactor;
    if ((err = uv_loop_init(r->own_loop)) != 0) goto fail_loop_memory;
    loop = r->own_loop;
  }
  r->loop = loop;
  tw__clock_init(&r->clock, &tw__reactor_clock_ops);
  r->armed_deadline = NAN;
  r->stopped = 1; /* Twisted's class attribute _stopped = True */
  tw__mpsc_init(&r->queue);
  atomic_init(&r->queued, 0); /* open, empty */
  tw__set_loop_thread(r);
  r->next_trigger_id = 1;
  /* Blocking calls made before the first run wait for it, as Twisted's
   * blockingCallFromThread does (its callFromThread queues until run):
   * the reactor is not halted (calloc). */
  if ((err = tw__reactor_children_init(r)) != 0) goto fail_loop;
  /* Twisted's __init__ triggers, in its order. */
  if ((err = tw__reactor_add_really_start(r)) != 0) goto fail_triggers;
  if ((err = tw__reactor_add_internal_trigger(r, TW_PHASE_DURING, "shutdown",
                                              tw__reactor_shutdown_crash)) != 0)
    goto fail_triggers;
  if ((err = tw__reactor_add_internal_trigger(r, TW_PHASE_DURING, "shutdown",
                                              tw__reactor_disconnect_all)) != 0)
    goto fail_triggers;
  tw__ignore_sigpipe();
  if ((err = tw__reactor_init_handles(r)) != 0) goto fail_handles;
  *out = r;
  return 0;

fail_handles:
  tw__reactor_destroy_events(r);
  tw__reactor_close_handles(r);
  return err;
fail_triggers:
  tw__reactor_destroy_events(r);
  tw__reactor_children_destroy(r);
fail_loop:
  if (r->own_loop != NULL) uv_loop_close(r->own_loop);
fail_loop_memory:
  tw__free(r->own_loop);
fail_reactor:
  tw__free(r);
fail:
  return err;
}

tw_reactor *tw_reactor_default(void) {
  tw_reactor *r;
  uv_once(&tw__default_once, tw__default_init);
  uv_mutex_lock(&tw__default_mutex);
  if (tw__default_reactor == NULL)
    (void)tw_reactor_new(&tw__default_reactor, uv_default_loop(), 0);
  r = tw__default_reactor;
  uv_mutex_unlock(&tw__default_mutex);
  return r;
}

int tw_reactor_free(tw_reactor *r) {
  if (r == NULL) return TW_EINVAL;
  TW__LOOP_ONLY(r, TW_EWRONGTHREAD);
  /* closing: called again from an arg_free this free runs (which would
   * otherwise spin in the quiesce below, or free r twice). */
  if (r->closing || r->in_run || r->in_iterate || r->manual_iterate ||
      r->started)
    return TW_EBUSY;
  /* Busy children (jobs on a pool we do not own, lookups in flight) would
   * call back into freed memory. Checked before anything changes; from here
   * on children are refused. */
  if (tw__reactor_children_close(r) != 0) return TW_EBUSY;
  /* From here on the reactor is going away: run/iterate/free and new
   * triggers are refused, and so is call_later (TW_ESHUTDOWN, as clock.h
   * says) - also from the arg_frees below that run before the clock's own
   * turn, whose calls would otherwise be accepted and then dropped. */
  r->closing = 1;
  r->clock.dying = 1;
  uv_once(&tw__default_once, tw__default_init);
  uv_mutex_lock(&tw__default_mutex);
  if (tw__default_reactor == r) tw__default_reactor = NULL;
  uv_mutex_unlock(&tw__default_mutex);

  /* No more thread calls: those queued are dropped (their arg_free runs:
   * a job's tells its Deferred the result is lost). */
  tw__reactor_close_queue(r);
  /* Then the children, newest first: blocked callers are released (and
   * waited for), the pool is joined (results its jobs hand back now are
   * refused by the queue and parked: handed over by another pass), parked
   * results are handed over. */
  (void)tw__reactor_children_free(r);
  tw__reactor_quiesce_queue(r);
  if (r->resolver.arg_free != NULL) {
    tw_free_fn arg_free = r->resolver.arg_free;
    r->resolver.arg_free = NULL;
    r->resolver.fn = NULL;
    arg_free(r->resolver.arg);
  }
  tw__reactor_destroy_events(r);
  tw__clock_destroy(&r->clock);
  /* Frees r once every close callback ran and every child is done. */
  tw__reactor_close_handles(r);
  return 0;
}
