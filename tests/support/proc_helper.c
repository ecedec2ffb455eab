/*
 * tests/support/proc_helper.c - the child process of tests/test_process.c
 * (and bench/spawn.c), in place of Twisted's "python -c ..." children.
 * Runs its arguments as a list of commands, in order:
 *
 *   write FD TEXT   write TEXT to descriptor FD ("\n" in TEXT is a newline)
 *   echo            copy stdin to stdout until EOF
 *   line            copy one line of stdin (up to and with its \n) to stdout
 *   drain           read stdin until EOF, discarding it
 *   count           read stdin until EOF, then print the byte count
 *   big N           write N bytes ('x') to stdout
 *   close FD        close descriptor FD
 *   env             print the environment, one NAME=value per line
 *   cwd             print the working directory
 *   ids             print "uid gid"
 *   fds N           print which of the descriptors 0..N-1 are open ("0 1 2")
 *   drainfd FD      read FD until EOF, discarding it
 *   closeon         read lines from stdin, each a descriptor to close,
 *                   until an empty line (Twisted's process_loseconnection)
 *   fork_keep       fork a grandchild that keeps stdio open until stdin's
 *                   EOF; the helper itself goes on (Twisted's
 *                   process_helper)
 *   argv            print the remaining arguments, each followed by a NUL
 *   exit N          exit with code N
 *   kill SIG        send itself signal SIG (a number)
 *
 * With no command left it exits 0. A write error exits 99.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

static void put(int fd, const char *s, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, s, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) exit(99);
    s += n;
    len -= (size_t)n;
  }
}

static void puts_fd(int fd, const char *s) { put(fd, s, strlen(s)); }

static void unescape(char *s) {
  char *w = s;
  for (; *s; s++) {
    if (s[0] == '\\' && s[1] == 'n') {
      *w++ = '\n';
      s++;
    } else {
      *w++ = *s;
    }
  }
  *w = '\0';
}

/* Read stdin to EOF: out >= 0 copies there; returns the count. */
static long long slurp(int out) {
  char buf[65536];
  long long total = 0;
  for (;;) {
    ssize_t n = read(0, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return total;
    total += n;
    if (out >= 0) put(out, buf, (size_t)n);
  }
}

int main(int argc, char **argv) {
  int i;
  char line[4096];
  signal(SIGPIPE, SIG_DFL);
  for (i = 1; i < argc; i++) {
    const char *c = argv[i];
    const char *a = i + 1 < argc ? argv[i + 1] : "0";
    if (strcmp(c, "write") == 0 && i + 2 < argc) {
      unescape(argv[i + 2]);
      puts_fd(atoi(a), argv[i + 2]);
      i += 2;
    } else if (strcmp(c, "echo") == 0) {
      slurp(1);
    } else if (strcmp(c, "line") == 0) {
      size_t n = 0;
      while (n < sizeof(line)) {
        ssize_t k = read(0, line + n, 1);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        n++;
        if (line[n - 1] == '\n') break;
      }
      put(1, line, n);
    } else if (strcmp(c, "drain") == 0) {
      slurp(-1);
    } else if (strcmp(c, "count") == 0) {
      snprintf(line, sizeof(line), "%lld", slurp(-1));
      puts_fd(1, line);
    } else if (strcmp(c, "big") == 0) {
      long long n = atoll(a), k;
      char buf[65536];
      memset(buf, 'x', sizeof(buf));
      for (k = 0; k < n; k += (long long)sizeof(buf))
        put(1, buf, n - k < (long long)sizeof(buf) ? (size_t)(n - k) : sizeof(buf));
      i++;
    } else if (strcmp(c, "close") == 0) {
      close(atoi(a));
      i++;
    } else if (strcmp(c, "env") == 0) {
      char **e;
      for (e = environ; *e != NULL; e++) {
        puts_fd(1, *e);
        puts_fd(1, "\n");
      }
    } else if (strcmp(c, "cwd") == 0) {
      if (getcwd(line, sizeof(line)) == NULL) return 98;
      puts_fd(1, line);
    } else if (strcmp(c, "ids") == 0) {
      snprintf(line, sizeof(line), "%u %u", (unsigned)getuid(),
               (unsigned)getgid());
      puts_fd(1, line);
    } else if (strcmp(c, "fds") == 0) {
      int fd, n = atoi(a), first = 1;
      for (fd = 0; fd < n; fd++) {
        if (fcntl(fd, F_GETFD) == -1) continue;
        snprintf(line, sizeof(line), first ? "%d" : " %d", fd);
        first = 0;
        puts_fd(1, line);
      }
      i++;
    } else if (strcmp(c, "drainfd") == 0) {
      char buf[65536];
      int fd = atoi(a);
      for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
      }
      i++;
    } else if (strcmp(c, "closeon") == 0) {
      for (;;) {
        size_t n = 0;
        while (n + 1 < sizeof(line)) {
          ssize_t k = read(0, line + n, 1);
          if (k < 0 && errno == EINTR) continue;
          if (k <= 0) return 0;
          if (line[n] == '\n') break;
          n++;
        }
        line[n] = '\0';
        if (n == 0) break;
        close(atoi(line));
      }
    } else if (strcmp(c, "fork_keep") == 0) {
      pid_t pid = fork();
      if (pid < 0) return 95;
      if (pid == 0) {
        slurp(-1);
        _exit(0);
      }
    } else if (strcmp(c, "argv") == 0) {
      for (i++; i < argc; i++) put(1, argv[i], strlen(argv[i]) + 1);
      return 0;
    } else if (strcmp(c, "exit") == 0) {
      return atoi(a);
    } else if (strcmp(c, "kill") == 0) {
      signal(atoi(a), SIG_DFL);
      raise(atoi(a));
      return 97;
    } else {
      fprintf(stderr, "proc_helper: unknown command %s\n", c);
      return 96;
    }
  }
  return 0;
}
