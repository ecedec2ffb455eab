/*
 * lib/endpoints-parse.c - endpoint description strings (endpoints.h):
 * Twisted 22.4's _tokenize/_parse, the built-in server and client parsers
 * (_parseTCP, _TCP6ServerParser, _parseUNIX, _parseClientTCP,
 * _parseClientUNIX, with Python's argument binding and int()), and the
 * registry of prefixes that libraries add (Twisted's plugins).
 *
 * Errors carry the exception Twisted raises for the same description, so a
 * description Twisted accepts is accepted here and one it refuses is
 * refused with the same exception type (tests/twisted_endpoints_oracle.py
 * checks that against real Twisted). The order of the checks is Python's:
 * binding the arguments (TypeError) before converting them (ValueError)
 * for the servers, the conversions of _parseClient* before the
 * constructor's binding for the clients; twuv's own range checks last.
 */
#include <twuv/endpoints.h>
#include <twuv/error.h>

#include "endpoints-internal.h"
#include "internal.h"

#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- errors ------------------------------------------------------------------ */

static int tw__ep_fail(tw_failure **error, const tw_error_type *type,
                       const char *fmt, ...) TW_PRINTF(3, 4);

static int tw__ep_fail(tw_failure **error, const tw_error_type *type,
                       const char *fmt, ...) {
  if (error != NULL) {
    va_list ap;
    va_start(ap, fmt);
    *error = tw_failure_newv(type, TW_EINVAL, fmt, ap);
    va_end(ap);
  }
  return TW_EINVAL;
}

static int tw__ep_nomem(tw_failure **error) {
  if (error != NULL) *error = tw_failure_from_code(TW_ENOMEM);
  return TW_ENOMEM;
}

/* Python's repr() of a str, for messages: single quotes unless the text
 * has one and no double quote; truncated (with "...") to fit. */
static void tw__ep_repr(const char *s, char *buf, size_t size) {
  char q = (strchr(s, '\'') != NULL && strchr(s, '"') == NULL) ? '"' : '\'';
  size_t n = 0;
  if (size < 8) {
    if (size > 0) buf[0] = '\0';
    return;
  }
  buf[n++] = q;
  for (; *s != '\0'; s++) {
    unsigned char c = (unsigned char)*s;
    char esc[5];
    size_t k;
    if (c == '\\' || c == (unsigned char)q) {
      esc[0] = '\\', esc[1] = (char)c, k = 2;
    } else if (c == '\n' || c == '\r' || c == '\t') {
      esc[0] = '\\', esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't', k = 2;
    } else if (c < 0x20 || c == 0x7f) {
      (void)snprintf(esc, sizeof esc, "\\x%02x", c);
      k = 4;
    } else {
      esc[0] = (char)c, k = 1;
    }
    if (n + k + 5 > size) { /* room for "...", the quote and the NUL */
      memcpy(buf + n, "...", 3);
      n += 3;
      break;
    }
    memcpy(buf + n, esc, k);
    n += k;
  }
  buf[n++] = q;
  buf[n] = '\0';
}

/* ---- Python's int() ------------------------------------------------------------ */

/* What Python's str.isspace() says of an ASCII byte (int() strips these). */
static int tw__py_space(char c) {
  return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

/*
 * int(s, base) for base 10 or 8: surrounding whitespace, an optional sign,
 * digits with single '_' between them; base 8 also takes a "0o" prefix
 * (then a '_' may follow it). 0 and *out set; -1 not a literal (ValueError
 * in Python); 1 a literal outside long long, *out saturated to LLONG_MAX or
 * LLONG_MIN (Python has no such limit: the callers' range checks refuse
 * it, and bool() of it is true as in Python). Non-ASCII digits and spaces, which
 * Python also takes, are not literals here.
 */
static int tw__py_int(const char *s, int base, long long *out) {
  const char *p = s, *end = s + strlen(s);
  unsigned long long v = 0, limit;
  int neg = 0, ovf = 0, ndigits = 0, us_ok, last_digit = 0;
  while (p < end && tw__py_space(*p)) p++;
  while (end > p && tw__py_space(end[-1])) end--;
  if (p < end && (*p == '+' || *p == '-')) neg = *p++ == '-';
  us_ok = 0;
  if (base == 8 && end - p >= 2 && p[0] == '0' && (p[1] == 'o' || p[1] == 'O')) {
    p += 2;
    us_ok = 1;
  }
  for (; p < end; p++) {
    int d;
    if (*p == '_') {
      if (!us_ok) return -1;
      us_ok = 0;
      last_digit = 0;
      continue;
    }
    if (*p < '0' || *p > '9') return -1;
    d = *p - '0';
    if (d >= base) return -1;
    ndigits++;
    last_digit = 1;
    us_ok = 1;
    if (v > (ULLONG_MAX - (unsigned)d) / (unsigned)base)
      ovf = 1;
    else
      v = v * (unsigned)base + (unsigned)d;
  }
  if (ndigits == 0 || !last_digit) return -1;
  limit = (unsigned long long)LLONG_MAX + (neg ? 1u : 0u);
  if (ovf || v > limit) {
    *out = neg ? LLONG_MIN : LLONG_MAX;
    return 1;
  }
  if (!neg)
    *out = (long long)v;
  else
    *out = v == (unsigned long long)LLONG_MAX + 1u ? LLONG_MIN : -(long long)v;
  return 0;
}

/*
 * The conversion of one argument: int(value, base) into *out (saturated
 * when past long long). A ValueError names the argument: "port: invalid
 * literal for int() with base 10: 'x'" (Python's message after the name).
 */
static int tw__ep_int(const char *what, const char *value, int base,
                      long long *out, tw_failure **error) {
  char rep[256];
  if (tw__py_int(value, base, out) >= 0) return 0;
  tw__ep_repr(value, rep, sizeof rep);
  return tw__ep_fail(error, &TW_VALUE_ERROR,
                     "%s: invalid literal for int() with base %d: %s", what,
                     base, rep);
}

/* The range check, made after every conversion (twuv's own, last). */
static int tw__ep_range(const char *what, const char *value, long long v,
                        long long lo, long long hi, int base,
                        tw_failure **error) {
  char rep[256];
  if (v >= lo && v <= hi) return 0;
  tw__ep_repr(value, rep, sizeof rep);
  if (base == 8)
    return tw__ep_fail(error, &TW_VALUE_ERROR,
                       "%s %s out of range 0o%llo-0o%llo", what, rep,
                       (unsigned long long)lo, (unsigned long long)hi);
  return tw__ep_fail(error, &TW_VALUE_ERROR, "%s %s out of range %lld-%lld",
                     what, rep, lo, hi);
}

/* ---- _tokenize / _parse ----------------------------------------------------------- */

/*
 * Twisted's tokenizer: ':' ends an argument; '=' splits the first one of an
 * argument into name and value (after it only ':' is an operator, so '='
 * in a value is literal); a backslash takes the next character as it is.
 * One walk counts (pool == NULL), a second fills the args.
 */
typedef struct tw__ep_seg {
  const char *s1, *s2; /* s2 NULL: positional */
} tw__ep_seg;

static int tw__ep_walk(const char *d, size_t *nseg, char *pool,
                       tw__ep_seg *segs) {
  size_t n = 0;
  int after_eq = 0;
  char *w = pool;
  if (segs != NULL) segs[0].s1 = w, segs[0].s2 = NULL;
  for (; *d != '\0'; d++) {
    if (*d == ':' || (*d == '=' && !after_eq)) {
      if (w != NULL) *w++ = '\0';
      if (*d == ':') {
        n++;
        after_eq = 0;
        if (segs != NULL) segs[n].s1 = w, segs[n].s2 = NULL;
      } else {
        after_eq = 1;
        if (segs != NULL) segs[n].s2 = w;
      }
      continue;
    }
    if (*d == '\\') {
      if (d[1] == '\0') return -1; /* next(iterdesc): StopIteration */
      d++;
    }
    if (w != NULL) *w++ = *d;
  }
  if (w != NULL) *w = '\0';
  *nseg = n + 1;
  return 0;
}

int tw_endpoint_parse(tw_endpoint_args **out, const char *description,
                      tw_failure **error) {
  size_t len, nseg, i, na = 0, nk = 0, size;
  tw__ep_seg *segs;
  tw_endpoint_args *a;
  const char **args;
  tw_endpoint_kwarg *kw;
  char *pool;
  if (out == NULL || description == NULL)
    return tw__ep_fail(error, &TW_VALUE_ERROR,
                       "tw_endpoint_parse: NULL argument");
  len = strlen(description);
  if (len > TW_ENDPOINT_DESCRIPTION_MAX)
    return tw__ep_fail(error, &TW_VALUE_ERROR,
                       "endpoint description longer than %d bytes",
                       TW_ENDPOINT_DESCRIPTION_MAX);
  if (tw__ep_walk(description, &nseg, NULL, NULL) != 0)
    return tw__ep_fail(error, &TW_RUNTIME_ERROR,
                       "endpoint description ends with a lone backslash "
                       "(Twisted: generator raised StopIteration)");
  /* One block: the header, the arrays, the segments, the strings (at most
   * len characters and two NULs per segment). */
  size = sizeof *a + nseg * (sizeof *args + sizeof *kw + sizeof *segs) +
         len + 2 * nseg + 1;
  a = tw__malloc(size);
  if (a == NULL) return tw__ep_nomem(error);
  args = (const char **)(void *)(a + 1);
  kw = (tw_endpoint_kwarg *)(void *)(args + nseg);
  segs = (tw__ep_seg *)(void *)(kw + nseg);
  pool = (char *)(segs + nseg);
  (void)tw__ep_walk(description, &nseg, pool, segs);
  for (i = 0; i < nseg; i++) {
    size_t j;
    if (segs[i].s2 == NULL) {
      args[na++] = segs[i].s1;
      continue;
    }
    /* kw[name] = value: a repeated name keeps its place, takes the value. */
    for (j = 0; j < nk; j++)
      if (strcmp(kw[j].name, segs[i].s1) == 0) break;
    kw[j].name = segs[i].s1;
    kw[j].value = segs[i].s2;
    if (j == nk) nk++;
  }
  a->prefix = na > 0 ? args[0] : NULL;
  a->nargs = na > 0 ? na - 1 : 0;
  a->args = na > 0 ? args + 1 : args;
  a->nkwargs = nk;
  a->kwargs = kw;
  *out = a;
  if (error != NULL) *error = NULL;
  return 0;
}

void tw_endpoint_args_free(tw_endpoint_args *a) { tw__free(a); }

const char *tw_endpoint_args_get(const tw_endpoint_args *a, const char *name) {
  size_t i;
  if (a == NULL || name == NULL) return NULL;
  for (i = 0; i < a->nkwargs; i++)
    if (strcmp(a->kwargs[i].name, name) == 0) return a->kwargs[i].value;
  return NULL;
}

int tw_endpoint_quote(const char *argument, char *buf, size_t size) {
  size_t n = 0;
  if (argument == NULL || (buf == NULL && size > 0)) return TW_EINVAL;
  for (; *argument != '\0'; argument++) {
    if (*argument == '\\' || *argument == ':') {
      if (n + 1 < size) buf[n] = '\\';
      n++;
    }
    if (n + 1 < size) buf[n] = *argument;
    n++;
  }
  if (size > 0) buf[n < size ? n : size - 1] = '\0';
  return n > INT_MAX ? TW_EINVAL : (int)n;
}

/* ---- Python's argument binding ------------------------------------------------------ */

/*
 * A parser function's signature: names bound before the description's
 * arguments (factory; self and reactor), then the positional-or-keyword
 * parameters, the first `required` of them without default. bind() fills
 * vals[i] (NULL: the default) and raises what CPython 3.11 raises, in its
 * order: each keyword (unexpected, or already bound), then too many
 * positional arguments, then missing ones.
 */
typedef struct tw__ep_sig {
  const char *who; /* "tcp", for messages */
  const char *const *bound;
  size_t nbound;
  const char *const *params;
  size_t nparams;
  size_t required;
} tw__ep_sig;

static int tw__ep_bind(const tw__ep_sig *s, const tw_endpoint_args *a,
                       const char **vals, tw_failure **error) {
  size_t i, j;
  for (i = 0; i < s->nparams; i++)
    vals[i] = i < a->nargs ? a->args[i] : NULL;
  for (i = 0; i < a->nkwargs; i++) {
    const char *name = a->kwargs[i].name;
    char rep[128];
    for (j = 0; j < s->nbound; j++)
      if (strcmp(s->bound[j], name) == 0) break;
    if (j < s->nbound) {
      tw__ep_repr(name, rep, sizeof rep);
      return tw__ep_fail(error, &TW_TYPE_ERROR,
                         "%s: got multiple values for argument %s", s->who,
                         rep);
    }
    for (j = 0; j < s->nparams; j++)
      if (strcmp(s->params[j], name) == 0) break;
    tw__ep_repr(name, rep, sizeof rep);
    if (j == s->nparams)
      return tw__ep_fail(error, &TW_TYPE_ERROR,
                         "%s: got an unexpected keyword argument %s", s->who,
                         rep);
    if (vals[j] != NULL)
      return tw__ep_fail(error, &TW_TYPE_ERROR,
                         "%s: got multiple values for argument %s", s->who,
                         rep);
    vals[j] = a->kwargs[i].value;
  }
  if (a->nargs > s->nparams)
    return tw__ep_fail(error, &TW_TYPE_ERROR,
                       "%s: takes at most %zu positional arguments (%zu "
                       "given)",
                       s->who, s->nparams, a->nargs);
  for (i = 0; i < s->required; i++)
    if (vals[i] == NULL)
      return tw__ep_fail(error, &TW_TYPE_ERROR,
                         "%s: missing required argument '%s'", s->who,
                         s->params[i]);
  return 0;
}

static int tw__ep_unexpected(const char *who, const tw_endpoint_args *a,
                             const char *const *names, size_t n,
                             tw_failure **error) {
  size_t i, j;
  for (i = 0; i < a->nkwargs; i++) {
    char rep[128];
    for (j = 0; j < n; j++)
      if (strcmp(names[j], a->kwargs[i].name) == 0) break;
    if (j < n) continue;
    tw__ep_repr(a->kwargs[i].name, rep, sizeof rep);
    /* TCP4ClientEndpoint(reactor, **kw): its own parameter names are
     * "multiple values", others "unexpected"; both TypeError. */
    return tw__ep_fail(error, &TW_TYPE_ERROR,
                       "%s: got an unexpected keyword argument %s", who, rep);
  }
  return 0;
}

/* ---- the built-in server parsers --------------------------------------------------- */

/* An interface or bindAddress: "" (interface only) or a numeric address
 * (twuv uses no resolver there). */
static int tw__ep_check_numeric(const char *what, const char *v,
                                tw_failure **error) {
  char rep[256];
  tw_address addr;
  if (tw__endpoint_numeric(v, &addr) == 0) return 0;
  tw__ep_repr(v, rep, sizeof rep);
  return tw__ep_fail(error, &TW_VALUE_ERROR,
                     "%s %s is not a numeric IPv4 or IPv6 address", what, rep);
}

/* The constructor's code, as a failure when it refused. */
static int tw__ep_made(int rc, const char *who, tw_failure **error) {
  if (rc == 0) {
    if (error != NULL) *error = NULL;
    return 0;
  }
  if (rc == TW_ENOMEM) return tw__ep_nomem(error);
  return tw__ep_fail(error, &TW_VALUE_ERROR, "%s: %s", who, tw_strerror(rc));
}

static int tw__ep_path_ok(const char *who, const char *path,
                          tw_failure **error) {
  size_t n = strlen(path);
  if (n == 0)
    return tw__ep_fail(error, &TW_VALUE_ERROR, "%s: the path is empty", who);
  if (n >= TW_ADDRESS_PATH_MAX)
    return tw__ep_fail(error, &TW_VALUE_ERROR,
                       "%s: path of %zu bytes is longer than a UNIX socket "
                       "address holds (%d)",
                       who, n, TW_ADDRESS_PATH_MAX - 1);
  return 0;
}

/* _parseTCP(factory, port, interface="", backlog=50) and
 * _TCP6ServerParser._parseServer(reactor, port, backlog=50, interface="::"). */
static int tw__ep_server_tcp(tw_endpoint **out, tw_reactor *r,
                             const tw_endpoint_args *a, int six,
                             tw_failure **error) {
  static const char *const tcp_bound[] = {"factory"};
  static const char *const tcp_params[] = {"port", "interface", "backlog"};
  static const char *const six_bound[] = {"self", "reactor"};
  static const char *const six_params[] = {"port", "backlog", "interface"};
  const tw__ep_sig sig = {six ? "tcp6" : "tcp", six ? six_bound : tcp_bound,
                          six ? 2 : 1, six ? six_params : tcp_params, 3, 1};
  const char *vals[3];
  const char *port_s, *iface, *backlog_s;
  long long port, backlog = TW_LISTEN_BACKLOG;
  int rc = tw__ep_bind(&sig, a, vals, error);
  if (rc != 0) return rc;
  port_s = vals[0];
  iface = vals[six ? 2 : 1];
  backlog_s = vals[six ? 1 : 2];
  if ((rc = tw__ep_int("port", port_s, 10, &port, error)) != 0)
    return rc;
  if (backlog_s != NULL &&
      (rc = tw__ep_int("backlog", backlog_s, 10, &backlog, error)) != 0)
    return rc;
  if (iface == NULL) iface = six ? "::" : "";
  if ((rc = tw__ep_range("port", port_s, port, 0, 65535, 10, error)) != 0)
    return rc;
  if (backlog_s != NULL &&
      (rc = tw__ep_range("backlog", backlog_s, backlog, 0, INT_MAX, 10,
                         error)) != 0)
    return rc;
  if (iface[0] != '\0' &&
      (rc = tw__ep_check_numeric("interface", iface, error)) != 0)
    return rc;
  rc = six ? tw_tcp6_server_endpoint_new(out, r, (int)port, (int)backlog, iface)
           : tw_tcp4_server_endpoint_new(out, r, (int)port, (int)backlog,
                                         iface);
  return tw__ep_made(rc, sig.who, error);
}

/* _parseUNIX(factory, address, mode="666", backlog=50, lockfile=True). */
static int tw__ep_server_unix(tw_endpoint **out, tw_reactor *r,
                              const tw_endpoint_args *a, tw_failure **error) {
  static const char *const bound[] = {"factory"};
  static const char *const params[] = {"address", "mode", "backlog",
                                       "lockfile"};
  const tw__ep_sig sig = {"unix", bound, 1, params, 4, 1};
  const char *vals[4];
  long long mode = 0666, backlog = TW_LISTEN_BACKLOG, lockfile = 1;
  tw_endpoint *ep;
  int rc = tw__ep_bind(&sig, a, vals, error);
  if (rc != 0) return rc;
  if (vals[1] != NULL &&
      (rc = tw__ep_int("mode", vals[1], 8, &mode, error)) != 0)
    return rc;
  if (vals[2] != NULL &&
      (rc = tw__ep_int("backlog", vals[2], 10, &backlog, error)) != 0)
    return rc;
  if (vals[3] != NULL &&
      (rc = tw__ep_int("lockfile", vals[3], 10, &lockfile, error)) != 0)
    return rc;
  if (vals[1] != NULL &&
      (rc = tw__ep_range("mode", vals[1], mode, 0, 07777, 8, error)) != 0)
    return rc;
  if (vals[2] != NULL &&
      (rc = tw__ep_range("backlog", vals[2], backlog, 0, INT_MAX, 10,
                         error)) != 0)
    return rc;
  if ((rc = tw__ep_path_ok("unix", vals[0], error)) != 0) return rc;
  rc = tw_unix_server_endpoint_new(&ep, r, vals[0], (int)backlog, (int)mode);
  if (rc == 0) {
    tw__endpoint_set_lock_pid(ep, lockfile != 0); /* bool(int(lockfile)) */
    *out = ep;
  }
  return tw__ep_made(rc, "unix", error);
}

/* ---- the built-in client parsers ---------------------------------------------------- */

/* _parseClientTCP + TCP4ClientEndpoint(reactor, host, port, timeout=30,
 * bindAddress=None). */
static int tw__ep_client_tcp(tw_endpoint **out, tw_reactor *r,
                             const tw_endpoint_args *a, tw_failure **error) {
  static const char *const names[] = {"host", "port", "timeout",
                                      "bindAddress"};
  const char *vals[4];
  const char *port_src;
  long long port = 0, timeout = 0;
  size_t i;
  int rc;
  tw_address bind;
  for (i = 0; i < 4; i++) vals[i] = tw_endpoint_args_get(a, names[i]);
  /* twuv refuses what _parseClientTCP would drop silently. */
  if (a->nargs > 2)
    return tw__ep_fail(error, &TW_TYPE_ERROR,
                       "tcp: takes at most 2 positional arguments (%zu given)",
                       a->nargs);
  if (a->nargs == 2 && (vals[0] != NULL || vals[1] != NULL))
    return tw__ep_fail(error, &TW_TYPE_ERROR,
                       "tcp: got multiple values for argument '%s'",
                       vals[0] != NULL ? "host" : "port");
  if (a->nargs == 1 && vals[0] != NULL && vals[1] != NULL)
    return tw__ep_fail(error, &TW_TYPE_ERROR,
                       "tcp: got multiple values for argument 'port'");
  if (a->nargs == 2) {
    vals[0] = a->args[0];
    vals[1] = a->args[1];
  } else if (a->nargs == 1) {
    vals[vals[0] != NULL ? 1 : 0] = a->args[0];
  }
  port_src = vals[1];
  if (port_src != NULL &&
      (rc = tw__ep_int("port", port_src, 10, &port, error)) != 0)
    return rc;
  if (vals[2] != NULL &&
      (rc = tw__ep_int("timeout", vals[2], 10, &timeout, error)) != 0)
    return rc;
  if ((rc = tw__ep_unexpected("tcp", a, names, 4, error)) != 0) return rc;
  for (i = 0; i < 2; i++)
    if (vals[i] == NULL)
      return tw__ep_fail(error, &TW_TYPE_ERROR,
                         "tcp: missing required argument '%s'", names[i]);
  if ((rc = tw__ep_range("port", port_src, port, 0, 65535, 10, error)) != 0)
    return rc;
  if (vals[2] != NULL &&
      (rc = tw__ep_range("timeout", vals[2], timeout, 1, INT_MAX, 10,
                         error)) != 0)
    return rc;
  if (vals[0][0] == '\0')
    return tw__ep_fail(error, &TW_VALUE_ERROR, "tcp: the host is empty");
  if (vals[3] != NULL) {
    if ((rc = tw__ep_check_numeric("bindAddress", vals[3], error)) != 0)
      return rc;
    (void)tw__endpoint_numeric(vals[3], &bind);
  }
  rc = tw_tcp4_client_endpoint_new(out, r, vals[0], (int)port,
                                   vals[2] != NULL ? (double)timeout : 0.0,
                                   vals[3] != NULL ? &bind : NULL);
  return tw__ep_made(rc, "tcp", error);
}

/* _parseClientUNIX + UNIXClientEndpoint(reactor, path, timeout=30,
 * checkPID=0). */
static int tw__ep_client_unix(tw_endpoint **out, tw_reactor *r,
                              const tw_endpoint_args *a, tw_failure **error) {
  static const char *const names[] = {"path", "timeout", "checkPID",
                                      "lockfile"};
  const char *path = tw_endpoint_args_get(a, "path");
  const char *timeout_s = tw_endpoint_args_get(a, "timeout");
  const char *check = tw_endpoint_args_get(a, "checkPID");
  const char *lockfile_s = tw_endpoint_args_get(a, "lockfile");
  long long timeout = 0, lockfile = 0;
  int lock_pid, rc;
  tw_endpoint *ep;
  if (a->nargs > 1)
    return tw__ep_fail(error, &TW_TYPE_ERROR,
                       "unix: takes at most 1 positional argument (%zu given)",
                       a->nargs);
  if (a->nargs == 1 && path != NULL)
    return tw__ep_fail(error, &TW_TYPE_ERROR,
                       "unix: got multiple values for argument 'path'");
  if (a->nargs == 1) path = a->args[0];
  if (lockfile_s != NULL &&
      (rc = tw__ep_int("lockfile", lockfile_s, 10, &lockfile, error)) !=
          0)
    return rc;
  if (timeout_s != NULL &&
      (rc = tw__ep_int("timeout", timeout_s, 10, &timeout, error)) != 0)
    return rc;
  if ((rc = tw__ep_unexpected("unix", a, names, 4, error)) != 0) return rc;
  if (path == NULL)
    return tw__ep_fail(error, &TW_TYPE_ERROR,
                       "unix: missing required argument 'path'");
  if (timeout_s != NULL &&
      (rc = tw__ep_range("timeout", timeout_s, timeout, 1, INT_MAX, 10,
                         error)) != 0)
    return rc;
  if ((rc = tw__ep_path_ok("unix", path, error)) != 0) return rc;
  /* checkPID=bool(int(lockfile)) when given; else checkPID as written,
   * which Python takes as true when the string is not empty. */
  if (lockfile_s != NULL)
    lock_pid = lockfile != 0;
  else
    lock_pid = check != NULL && check[0] != '\0';
  rc = tw_unix_client_endpoint_new(&ep, r, path,
                                   timeout_s != NULL ? (double)timeout : 0.0);
  if (rc == 0) {
    tw__endpoint_set_lock_pid(ep, lock_pid);
    *out = ep;
  }
  return tw__ep_made(rc, "unix", error);
}

/* ---- the registry ------------------------------------------------------------------ */

typedef struct tw__ep_parser {
  char prefix[TW_ENDPOINT_PREFIX_MAX + 1]; /* lower case; "" = free slot */
  tw_endpoint_parser_fn server;
  tw_endpoint_parser_fn client;
  void *arg;
} tw__ep_parser;

/* A fixed table: no allocation, so nothing to free at exit and nothing a
 * leak check sees; 32 prefixes is far more than Twisted ships (4). */
static tw__ep_parser tw__ep_parsers[TW_ENDPOINT_PARSERS_MAX];
static pthread_mutex_t tw__ep_lock = PTHREAD_MUTEX_INITIALIZER;

static char tw__ep_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* s in lower case into buf (size TW_ENDPOINT_PREFIX_MAX + 1); -1 when too
 * long to be a registered prefix. */
static int tw__ep_lower_copy(const char *s, char *buf) {
  size_t i;
  for (i = 0; s[i] != '\0'; i++) {
    if (i >= TW_ENDPOINT_PREFIX_MAX) return -1;
    buf[i] = tw__ep_lower(s[i]);
  }
  buf[i] = '\0';
  return 0;
}

static int tw__ep_lookup(const char *prefix, int server,
                         tw_endpoint_parser_fn *fn, void **arg) {
  char low[TW_ENDPOINT_PREFIX_MAX + 1];
  size_t i;
  int found = 0;
  if (tw__ep_lower_copy(prefix, low) != 0 || low[0] == '\0') return 0;
  pthread_mutex_lock(&tw__ep_lock);
  for (i = 0; i < TW_ENDPOINT_PARSERS_MAX; i++) {
    tw__ep_parser *p = &tw__ep_parsers[i];
    tw_endpoint_parser_fn f = server ? p->server : p->client;
    if (p->prefix[0] != '\0' && f != NULL && strcmp(p->prefix, low) == 0) {
      *fn = f;
      *arg = p->arg;
      found = 1;
      break;
    }
  }
  pthread_mutex_unlock(&tw__ep_lock);
  return found;
}

int tw_endpoint_register_parser(const char *prefix,
                                tw_endpoint_parser_fn server,
                                tw_endpoint_parser_fn client, void *arg) {
  char low[TW_ENDPOINT_PREFIX_MAX + 1];
  size_t i, free_slot = TW_ENDPOINT_PARSERS_MAX;
  if (prefix == NULL || (server == NULL && client == NULL) ||
      tw__ep_lower_copy(prefix, low) != 0 || low[0] == '\0' ||
      strpbrk(low, ":=\\") != NULL)
    return TW_EINVAL;
  if ((server != NULL && (strcmp(low, "tcp") == 0 ||
                          strcmp(low, "tcp6") == 0 ||
                          strcmp(low, "unix") == 0)) ||
      (client != NULL && (strcmp(low, "tcp") == 0 ||
                          strcmp(low, "unix") == 0)))
    return TW_EBUSY;
  pthread_mutex_lock(&tw__ep_lock);
  for (i = 0; i < TW_ENDPOINT_PARSERS_MAX; i++) {
    if (tw__ep_parsers[i].prefix[0] == '\0') {
      if (free_slot == TW_ENDPOINT_PARSERS_MAX) free_slot = i;
    } else if (strcmp(tw__ep_parsers[i].prefix, low) == 0) {
      pthread_mutex_unlock(&tw__ep_lock);
      return TW_EBUSY;
    }
  }
  if (free_slot == TW_ENDPOINT_PARSERS_MAX) {
    pthread_mutex_unlock(&tw__ep_lock);
    return TW_EOVERFLOW;
  }
  memcpy(tw__ep_parsers[free_slot].prefix, low, sizeof low);
  tw__ep_parsers[free_slot].server = server;
  tw__ep_parsers[free_slot].client = client;
  tw__ep_parsers[free_slot].arg = arg;
  pthread_mutex_unlock(&tw__ep_lock);
  return 0;
}

int tw_endpoint_unregister_parser(const char *prefix) {
  char low[TW_ENDPOINT_PREFIX_MAX + 1];
  size_t i;
  int rc = TW_ENOENT;
  if (prefix == NULL || tw__ep_lower_copy(prefix, low) != 0) return TW_ENOENT;
  pthread_mutex_lock(&tw__ep_lock);
  for (i = 0; i < TW_ENDPOINT_PARSERS_MAX; i++) {
    if (tw__ep_parsers[i].prefix[0] != '\0' &&
        strcmp(tw__ep_parsers[i].prefix, low) == 0) {
      memset(&tw__ep_parsers[i], 0, sizeof tw__ep_parsers[i]);
      rc = 0;
      break;
    }
  }
  pthread_mutex_unlock(&tw__ep_lock);
  return rc;
}

/* ---- serverFromString / clientFromString ------------------------------------------- */

static int tw__ep_unknown(const char *prefix, tw_failure **error) {
  char low[256];
  size_t i;
  for (i = 0; prefix[i] != '\0' && i + 1 < sizeof low; i++)
    low[i] = tw__ep_lower(prefix[i]);
  low[i] = '\0';
  /* Twisted quotes it with '...', not repr(). */
  return tw__ep_fail(error, &TW_VALUE_ERROR, "Unknown endpoint type: '%s'",
                     low);
}

static int tw__ep_plugin(tw_endpoint_parser_fn fn, void *arg,
                         tw_endpoint **out, tw_reactor *r,
                         const tw_endpoint_args *a, tw_failure **error) {
  tw_endpoint *ep = NULL;
  tw_failure *why = NULL;
  int rc = fn(&ep, r, a, arg, &why);
  if (rc > 0) rc = TW_EINVAL; /* codes are negative */
  if (rc == 0 && ep != NULL) {
    tw_failure_unref(why);
    *out = ep;
    if (error != NULL) *error = NULL;
    return 0;
  }
  if (rc == 0) { /* a parser that said yes without an endpoint */
    tw_failure_unref(why);
    return tw__ep_fail(error, &TW_VALUE_ERROR,
                       "the parser for '%s' made no endpoint", a->prefix);
  }
  if (why == NULL) why = tw_failure_from_code(rc);
  if (error != NULL)
    *error = why;
  else
    tw_failure_unref(why);
  return rc;
}

static int tw__ep_from_string(tw_endpoint **out, tw_reactor *r,
                              const char *description, int server,
                              tw_failure **error) {
  tw_endpoint_args *a;
  tw_endpoint_parser_fn fn;
  void *arg;
  int rc;
  if (out == NULL || r == NULL || description == NULL)
    return tw__ep_fail(error, &TW_VALUE_ERROR,
                       "%s: NULL argument",
                       server ? "tw_server_from_string"
                              : "tw_client_from_string");
  rc = tw_endpoint_parse(&a, description, error);
  if (rc != 0) return rc;
  if (a->prefix == NULL) {
    /* Twisted: IndexError from args[0] / args.pop(0). */
    rc = tw__ep_fail(error, &TW_VALUE_ERROR,
                     "endpoint description %s has no type prefix",
                     "(every argument is a keyword)");
  } else if (server && strcmp(a->prefix, "tcp") == 0) {
    rc = tw__ep_server_tcp(out, r, a, 0, error);
  } else if (server && strcmp(a->prefix, "unix") == 0) {
    rc = tw__ep_server_unix(out, r, a, error);
  } else if (server && strlen(a->prefix) == 4 &&
             tw__ep_lower(a->prefix[0]) == 't' &&
             tw__ep_lower(a->prefix[1]) == 'c' &&
             tw__ep_lower(a->prefix[2]) == 'p' && a->prefix[3] == '6') {
    rc = tw__ep_server_tcp(out, r, a, 1, error); /* a plugin: any case */
  } else if (!server && strlen(a->prefix) == 3 &&
             tw__ep_lower(a->prefix[0]) == 't' &&
             tw__ep_lower(a->prefix[1]) == 'c' &&
             tw__ep_lower(a->prefix[2]) == 'p') {
    rc = tw__ep_client_tcp(out, r, a, error);
  } else if (!server && strlen(a->prefix) == 4 &&
             tw__ep_lower(a->prefix[0]) == 'u' &&
             tw__ep_lower(a->prefix[1]) == 'n' &&
             tw__ep_lower(a->prefix[2]) == 'i' &&
             tw__ep_lower(a->prefix[3]) == 'x') {
    rc = tw__ep_client_unix(out, r, a, error);
  } else if (tw__ep_lookup(a->prefix, server, &fn, &arg)) {
    rc = tw__ep_plugin(fn, arg, out, r, a, error);
  } else {
    rc = tw__ep_unknown(a->prefix, error);
  }
  tw_endpoint_args_free(a);
  return rc;
}

int tw_server_from_string(tw_endpoint **out, tw_reactor *r,
                          const char *description, tw_failure **error) {
  return tw__ep_from_string(out, r, description, 1, error);
}

int tw_client_from_string(tw_endpoint **out, tw_reactor *r,
                          const char *description, tw_failure **error) {
  return tw__ep_from_string(out, r, description, 0, error);
}
