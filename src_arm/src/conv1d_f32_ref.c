/* conv1d_f32_ref.c - plain-C reference FP32 Conv1D (double accumulation is NOT used: float,
 * ci-innermost order; tests compare the fast kernel with a relative tolerance). */
#include "internal.h"

void rsq_conv1d_f32_ref(const rsq_conv1d_params *p, const float *x, int32_t t_in,
                        const float *w, const float *bias, float lo, float hi, float *y) {
  int32_t t_out = (t_in + p->pad_left + p->pad_right - p->k) / p->stride + 1;
  for (int32_t t = 0; t < t_out; t++)
    for (int32_t co = 0; co < p->cout; co++) {
      float s = bias ? bias[co] : 0.f;
      for (int32_t j = 0; j < p->k; j++) {
        int32_t ti = t * p->stride - p->pad_left + j;
        if (ti < 0 || ti >= t_in) continue;
        for (int32_t ci = 0; ci < p->cin; ci++)
          s += x[(size_t)ti * p->cin + ci] * w[((size_t)co * p->cin + ci) * p->k + j];
      }
      s = s < lo ? lo : s;
      s = s > hi ? hi : s;
      y[(size_t)t * p->cout + co] = s;
    }
}
