/*
 * examples/pyrepr.h - print bytes as Python's repr(bytes) does (b'...'),
 * so that the examples' output reads as their Twisted originals' does.
 */
#ifndef TWUV_EXAMPLES_PYREPR_H
#define TWUV_EXAMPLES_PYREPR_H

#include <stdio.h>
#include <string.h>

static void print_bytes_repr(FILE *out, const char *s, size_t len) {
  /* Python quotes with " only when the bytes hold ' and no ". */
  char q = (memchr(s, '\'', len) != NULL && memchr(s, '"', len) == NULL)
               ? '"'
               : '\'';
  size_t i;
  fprintf(out, "b%c", q);
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '\\' || c == (unsigned char)q)
      fprintf(out, "\\%c", c);
    else if (c == '\t')
      fputs("\\t", out);
    else if (c == '\n')
      fputs("\\n", out);
    else if (c == '\r')
      fputs("\\r", out);
    else if (c < 0x20 || c >= 0x7f)
      fprintf(out, "\\x%02x", c);
    else
      fputc(c, out);
  }
  fputc(q, out);
}

#endif
