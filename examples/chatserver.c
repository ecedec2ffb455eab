/*
 * examples/chatserver.c - Twisted's docs/core/examples/chatserver.py, "the
 * most basic chat protocol possible": every line a client sends goes to
 * every client connected (the sender included), followed by "\n".
 *
 * usage: chatserver [ENDPOINT]   (default 1025, as the original; see
 * listen_arg.h). Runs until SIGINT or SIGTERM. Talk to it with
 * `telnet localhost 1025` from two terminals, or run examples/chatclient.
 *
 * The Python original, and what each part became:
 *
 *     class MyChat(basic.LineReceiver):          struct my_chat, a
 *         def connectionMade(self):              tw_line_receiver first
 *             print("Got new client!")
 *             self.factory.clients.append(self)
 *         def connectionLost(self, reason):
 *             print("Lost a client!")
 *             self.factory.clients.remove(self)
 *         def lineReceived(self, line):
 *             print("received", repr(line))
 *             for c in self.factory.clients:
 *                 c.message(line)
 *         def message(self, message):
 *             self.transport.write(message + b'\n')
 *
 *     factory = protocol.ServerFactory()         struct chat_factory: the
 *     factory.protocol = MyChat                  clients list lives in it
 *     factory.clients = []
 */
#include <stdio.h>
#include <stdlib.h>
#include <twuv.h>

#include "listen_arg.h"
#include "pyrepr.h"

typedef struct my_chat {
  tw_line_receiver lr; /* first: the protocol is &lr.base */
  struct my_chat *prev, *next;
} my_chat;

/* ServerFactory with a clients list (in connection order, as a list). */
typedef struct chat_factory {
  tw_factory base;
  my_chat *first, *last;
} chat_factory;

static chat_factory *factory_of(tw_line_receiver *lr) {
  return (chat_factory *)lr->base.factory;
}

static void chat_made(tw_line_receiver *lr) {
  my_chat *c = (my_chat *)lr;
  chat_factory *f = factory_of(lr);
  printf("Got new client!\n");
  c->prev = f->last; /* self.factory.clients.append(self) */
  c->next = NULL;
  if (f->last != NULL)
    f->last->next = c;
  else
    f->first = c;
  f->last = c;
}

static void chat_lost(tw_line_receiver *lr, tw_failure *reason) {
  my_chat *c = (my_chat *)lr;
  chat_factory *f = factory_of(lr);
  (void)reason;
  printf("Lost a client!\n");
  if (c->prev != NULL) /* self.factory.clients.remove(self) */
    c->prev->next = c->next;
  else
    f->first = c->next;
  if (c->next != NULL)
    c->next->prev = c->prev;
  else
    f->last = c->prev;
}

/* message: the line and "\n", in one vectored write. */
static void chat_message(my_chat *c, const char *message, size_t len) {
  tw_iovec v[2] = {{message, len}, {"\n", 1}};
  tw_transport_write_sequence(c->lr.base.transport, v, 2);
}

static tw_failure *chat_line(tw_line_receiver *lr, const char *line,
                             size_t len) {
  my_chat *c;
  printf("received ");
  print_bytes_repr(stdout, line, len);
  printf("\n");
  for (c = factory_of(lr)->first; c != NULL; c = c->next)
    chat_message(c, line, len);
  return NULL;
}

static const tw_line_receiver_ops chat_ops = {
    .connection_made = chat_made,
    .connection_lost = chat_lost,
    .line_received = chat_line};

static void chat_free(tw_protocol *p) { free(p); }

/* factory.protocol = MyChat: one my_chat per connection, freed after its
 * connection_lost (the receiver has freed its buffers by then). */
static tw_protocol *chat_build(tw_factory *f, const tw_address *addr) {
  my_chat *c = calloc(1, sizeof *c);
  (void)f;
  (void)addr;
  if (c == NULL) return NULL;
  tw_line_receiver_init(&c->lr, &chat_ops);
  c->lr.base.dealloc = chat_free;
  return &c->lr.base;
}

static const tw_factory_ops chat_factory_ops = {.build_protocol = chat_build};

int main(int argc, char **argv) {
  tw_reactor *r;
  chat_factory f = {0};
  tw_listening_port *port;
  setvbuf(stdout, NULL, _IOLBF, 0);
  tw_factory_init(&f.base, &chat_factory_ops);
  if (tw_reactor_new(&r, NULL, TW_REACTOR_SIGNALS) != 0) return 1;
  if (example_listen(r, &f.base, argc > 1 ? argv[1] : "1025", &port) != 0) {
    tw_reactor_free(r);
    return 1;
  }
  tw_reactor_run(r);
  return tw_reactor_free(r) == 0 ? 0 : 1;
}
