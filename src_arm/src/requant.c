/* requant.c - the requantization rule of rsq.h: (M, shift) from a real multiplier, the scalar
 * requantize, and the per-channel arrays the int8 op layers (conv1d_s8.c, dwconv_s8.c) keep for
 * their kernels' epilogues (rsq_rq). */
#include <math.h>
#include <stdlib.h>

#include "op_common.h"

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

rsq_status rsq_check_requant_channel(const int32_t *mult, const int32_t *shift, int32_t c,
                                     const char *who) {
  if (!mult) return RSQ_OK; /* an accumulator-only op */
  if (mult[c] < (1 << 30)) {
    rsq_set_error("%s: multiplier[%d] = %d must be in [2^30, 2^31)", who, c, mult[c]);
    return RSQ_ERR_PARAM;
  }
  if (shift[c] < -31 || shift[c] > 31) {
    rsq_set_error("%s: shift[%d] = %d must be in [-31, 31]", who, c, shift[c]);
    return RSQ_ERR_PARAM;
  }
  return RSQ_OK;
}

int rsq_rq_arrays_init(rsq_rq_arrays *a, int32_t n, const int32_t *bias, const int32_t *mult,
                       const int32_t *shift) {
  /* padded so that the vector epilogues' tiles of 12/16 columns may read past n */
  const size_t cpad = RSQ_ROUND_UP((size_t)n + 16, RSQ_COUT_PAD);
  a->bias = calloc(cpad, sizeof(int32_t));
  a->mult = calloc(cpad, sizeof(int32_t));
  a->shift = calloc(cpad, sizeof(int32_t));
  a->lshift = calloc(cpad, sizeof(int32_t));
  a->rshift = calloc(cpad, sizeof(int32_t));
  if (!a->bias || !a->mult || !a->shift || !a->lshift || !a->rshift) return 0;
  for (int32_t c = 0; c < n; c++) {
    /* no multipliers (accumulator-only op): M = 2^30, shift 0, the values the executor used
     * to pass for its float-output layers; the int32/float epilogues never read them */
    const int32_t s = shift ? shift[c] : 0;
    a->bias[c] = bias ? bias[c] : 0;
    a->mult[c] = mult ? mult[c] : 1 << 30;
    a->shift[c] = s;
    a->lshift[c] = s < 0 ? -s : 0;
    a->rshift[c] = s > 0 ? s : 0;
  }
  for (size_t c = (size_t)n; c < cpad; c++) a->mult[c] = 1 << 30;
  return 1;
}

void rsq_rq_arrays_free(rsq_rq_arrays *a) {
  free(a->bias);
  free(a->mult);
  free(a->shift);
  free(a->lshift);
  free(a->rshift);
  *a = (rsq_rq_arrays){0};
}

rsq_rq rsq_rq_of(const rsq_rq_arrays *a, int32_t lo, int32_t hi) {
  return (rsq_rq){a->bias, a->mult, a->lshift, a->rshift, lo, hi, NULL, NULL, NULL};
}
