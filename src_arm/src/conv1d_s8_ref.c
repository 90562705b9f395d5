/* conv1d_s8_ref.c - plain-C reference INT8 Conv1D (direct convolution) and requantization. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

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

rsq_status rsq_quantize_multiplier(double m, int32_t *multiplier, int32_t *shift) {
  if (!multiplier || !shift) {
    rsq_set_error("rsq_quantize_multiplier: null output pointer");
    return RSQ_ERR_NULL;
  }
  if (!(m > 0.0) || !isfinite(m)) {
    rsq_set_error("rsq_quantize_multiplier: m = %g must be finite and > 0", m);
    return RSQ_ERR_PARAM;
  }
  int e = 0;
  double q = frexp(m, &e); /* m = q * 2^e, q in [0.5, 1) */
  long long M = llround(q * 2147483648.0);
  if (M == (1LL << 31)) {
    M = 1LL << 30;
    e += 1;
  }
  if (-e < -31 || -e > 31) {
    rsq_set_error("rsq_quantize_multiplier: m = %g gives shift %d outside [-31, 31]", m, -e);
    return RSQ_ERR_PARAM;
  }
  *multiplier = (int32_t)M;
  *shift = -e;
  return RSQ_OK;
}

int32_t rsq_requantize(int32_t acc, int32_t multiplier, int32_t shift, int32_t out_min,
                       int32_t out_max) {
  return rsq_requant1(acc, multiplier, shift, out_min, out_max);
}

int32_t rsq_xpad_rows(const rsq_conv1d_params *p, int32_t t_out) {
  /* rows touched by a full last tile (t_out rounded up to 12 output rows: covers row blocks
   * of 2, 3, 4 and 6) plus the kernel extent; never fewer than the padded input. */
  int32_t t_round = RSQ_ROUND_UP(t_out, 12);
  return (t_round - 1) * p->stride + p->k + 1;
}

void rsq_conv1d_s8_acc_ref(const rsq_conv1d_params *p, const int8_t *x, int32_t t_in,
                           const int8_t *w, int32_t *acc) {
  int32_t t_out = (t_in + p->pad_left + p->pad_right - p->k) / p->stride + 1;
  for (int32_t t = 0; t < t_out; t++) {
    for (int32_t co = 0; co < p->cout; co++) {
      int32_t s = 0;
      for (int32_t j = 0; j < p->k; j++) {
        int32_t ti = t * p->stride - p->pad_left + j;
        if (ti < 0 || ti >= t_in) continue; /* zero padding: exact since zero-point is 0 */
        const int8_t *xr = x + (size_t)ti * p->cin;
        const int8_t *wr = w + (size_t)co * p->cin * p->k + j;
        for (int32_t ci = 0; ci < p->cin; ci++) s += (int32_t)xr[ci] * wr[(size_t)ci * p->k];
      }
      acc[(size_t)t * p->cout + co] = s;
    }
  }
}

void rsq_conv1d_s8_ref(const rsq_conv1d_params *p, const int8_t *x, int32_t t_in,
                       const int8_t *w, const int32_t *bias, const int32_t *mult,
                       const int32_t *shift, int32_t lo, int32_t hi, int8_t *y) {
  int32_t t_out = (t_in + p->pad_left + p->pad_right - p->k) / p->stride + 1;
  for (int32_t t = 0; t < t_out; t++) {
    for (int32_t co = 0; co < p->cout; co++) {
      int32_t s = bias ? bias[co] : 0;
      for (int32_t j = 0; j < p->k; j++) {
        int32_t ti = t * p->stride - p->pad_left + j;
        if (ti < 0 || ti >= t_in) continue;
        const int8_t *xr = x + (size_t)ti * p->cin;
        const int8_t *wr = w + (size_t)co * p->cin * p->k + j;
        for (int32_t ci = 0; ci < p->cin; ci++) s += (int32_t)xr[ci] * wr[(size_t)ci * p->k];
      }
      y[(size_t)t * p->cout + co] = (int8_t)rsq_requant1(s, mult[co], shift[co], lo, hi);
    }
  }
}
