/*
 * examples/process.c - Twisted's docs/core/howto/listings/process/process.py
 * ported: feed "wc" ten verses on its stdin, close it, and read what it
 * counted, printing every ProcessProtocol callback on the way.
 *
 *     $ ./process
 *     connectionMade!
 *     inConnectionLost! stdin is closed! (we probably did it)
 *     outReceived! with 24 bytes!
 *     outConnectionLost! The child closed their stdout!
 *     I saw 40 lines
 *     ...
 *     processEnded, status 0
 *     quitting
 *
 * (The order of the *ConnectionLost lines and processExited follows the
 * child and the kernel, as in Twisted.) Exits 1 if wc did not count 40
 * lines, so that the examples suite checks it.
 */
#include <stdio.h>
#include <string.h>
#include <twuv.h>

typedef struct my_pp {
  tw_process_protocol base;
  tw_reactor *r;
  int verses;
  char data[256];
  size_t len;
  long lines;
} my_pp;

static void made(tw_process_protocol *pp) {
  my_pp *m = (my_pp *)pp;
  int i;
  printf("connectionMade!\n");
  for (i = 0; i < m->verses; i++) {
    static const char verse[] =
        "Aleph-null bottles of beer on the wall,\n"
        "Aleph-null bottles of beer,\n"
        "Take one down and pass it around,\n"
        "Aleph-null bottles of beer on the wall.\n";
    tw_transport_write(pp->transport, verse, sizeof(verse) - 1);
  }
  tw_process_close_stdin(pp->transport); /* tell them we're done */
}

static tw_failure *out_received(tw_process_protocol *pp, const char *data,
                                size_t len) {
  my_pp *m = (my_pp *)pp;
  printf("outReceived! with %zu bytes!\n", len);
  if (m->len + len < sizeof(m->data)) {
    memcpy(m->data + m->len, data, len);
    m->len += len;
    m->data[m->len] = '\0';
  }
  return NULL;
}

static tw_failure *err_received(tw_process_protocol *pp, const char *data,
                                size_t len) {
  (void)pp;
  (void)data;
  printf("errReceived! with %zu bytes!\n", len);
  return NULL;
}

static void in_lost(tw_process_protocol *pp) {
  (void)pp;
  printf("inConnectionLost! stdin is closed! (we probably did it)\n");
}

static void out_lost(tw_process_protocol *pp) {
  my_pp *m = (my_pp *)pp;
  printf("outConnectionLost! The child closed their stdout!\n");
  /* now is the time to examine what they wrote */
  if (sscanf(m->data, "%ld", &m->lines) == 1)
    printf("I saw %ld lines\n", m->lines);
}

static void err_lost(tw_process_protocol *pp) {
  (void)pp;
  printf("errConnectionLost! The child closed their stderr.\n");
}

static void exited(tw_process_protocol *pp, tw_failure *reason) {
  (void)pp;
  printf("processExited, status %d\n", tw_process_exit_code(reason));
}

static void ended(tw_process_protocol *pp, tw_failure *reason) {
  my_pp *m = (my_pp *)pp;
  printf("processEnded, status %d\n", tw_process_exit_code(reason));
  printf("quitting\n");
  tw_reactor_stop(m->r);
}

static const tw_process_protocol_ops my_pp_ops = {
    .connection_made = made,
    .out_received = out_received,
    .err_received = err_received,
    .in_connection_lost = in_lost,
    .out_connection_lost = out_lost,
    .err_connection_lost = err_lost,
    .process_exited = exited,
    .process_ended = ended,
};

int main(void) {
  static const char *const argv[] = {"wc", NULL};
  static const char *const env[] = {NULL}; /* Twisted's {}: empty */
  tw_reactor *r;
  tw_transport *t;
  my_pp pp;
  int err;
  if (tw_reactor_new(&r, NULL, 0) != 0) return 1;
  tw_process_protocol_init(&pp.base, &my_pp_ops);
  pp.r = r;
  pp.verses = 10;
  pp.len = 0;
  pp.lines = -1;
  err = tw_spawn_process(r, &pp.base, "wc", argv, env, NULL, NULL, 0, NULL,
                         &t);
  if (err != 0) {
    fprintf(stderr, "spawn wc: %s\n", tw_strerror(err));
    tw_reactor_free(r);
    return 1;
  }
  tw_reactor_run(r);
  tw_reactor_free(r);
  return pp.lines == 40 ? 0 : 1;
}
