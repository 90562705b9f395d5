/* conv1d_s8_ref.c - plain-C reference INT8 Conv1D (direct convolution): int32 accumulators, or
 * bias + requantization (rsq.h) into int8. */
#include "internal.h"

/* The one loop of both entry points: acc != NULL stores the sums (from bias, or 0) there,
 * else y gets them requantized. */
static void conv1d_s8_ref(const rsq_conv1d_params *p, const int8_t *x, int32_t t_in,
                          const int8_t *w, const int32_t *bias, const int32_t *mult,
                          const int32_t *shift, int32_t lo, int32_t hi, int8_t *y, int32_t *acc) {
  int32_t t_out = (t_in + p->pad_left + p->pad_right - p->k) / p->stride + 1;
  for (int32_t t = 0; t < t_out; t++) {
    for (int32_t co = 0; co < p->cout; co++) {
      int32_t s = bias ? bias[co] : 0;
      for (int32_t j = 0; j < p->k; j++) {
        int32_t ti = t * p->stride - p->pad_left + j;
        if (ti < 0 || ti >= t_in) continue; /* zero padding: exact since zero-point is 0 */
        const int8_t *xr = x + (size_t)ti * p->cin;
        const int8_t *wr = w + (size_t)co * p->cin * p->k + j;
        for (int32_t ci = 0; ci < p->cin; ci++) s += (int32_t)xr[ci] * wr[(size_t)ci * p->k];
      }
      if (acc)
        acc[(size_t)t * p->cout + co] = s;
      else
        y[(size_t)t * p->cout + co] = (int8_t)rsq_requant1(s, mult[co], shift[co], lo, hi);
    }
  }
}

void rsq_conv1d_s8_acc_ref(const rsq_conv1d_params *p, const int8_t *x, int32_t t_in,
                           const int8_t *w, int32_t *acc) {
  conv1d_s8_ref(p, x, t_in, w, NULL, NULL, NULL, 0, 0, NULL, acc);
}

void rsq_conv1d_s8_ref(const rsq_conv1d_params *p, const int8_t *x, int32_t t_in,
                       const int8_t *w, const int32_t *bias, const int32_t *mult,
                       const int32_t *shift, int32_t lo, int32_t hi, int8_t *y) {
  conv1d_s8_ref(p, x, t_in, w, bias, mult, shift, lo, hi, y, NULL);
}
