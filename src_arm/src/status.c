/* status.c - the error state of the public API: one message per thread (rsq_last_error), set
 * by whatever function fails last in that thread, and the names of the status codes. */
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"

static _Thread_local char g_err[256];

void rsq_set_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(g_err, sizeof g_err, fmt, ap);
  va_end(ap);
}

const char *rsq_last_error(void) { return g_err; }

const char *rsq_status_string(rsq_status s) {
  switch (s) {
    case RSQ_OK: return "ok";
    case RSQ_ERR_NULL: return "null pointer";
    case RSQ_ERR_SHAPE: return "bad shape";
    case RSQ_ERR_PARAM: return "bad parameter";
    case RSQ_ERR_UNSUPPORTED: return "unsupported";
    case RSQ_ERR_NOMEM: return "out of memory";
  }
  return "unknown status";
}
