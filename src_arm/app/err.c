/* err.c - the one-line error messages of the rsq-decode library (rsqm.h): the model loader, the
 * Kaldi feature reader and the executor all write their failure into the caller's buffer with
 * rsqm_seterr, and the caller prefixes the file name. */
#include <stdarg.h>
#include <stdio.h>

#include "rsqm.h"

void rsqm_seterr(char *err, size_t len, const char *fmt, ...) {
  if (!err || !len) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, len, fmt, ap);
  va_end(ap);
}
