/* dwconv_s8_ref.c - plain-C reference INT8 depthwise Conv1D (groups == channels, stride 1). */
#include "internal.h"

void rsq_dwconv1d_s8_ref(int32_t channels, int32_t k, int32_t pad_left, int32_t pad_right,
                         const int8_t *x, int32_t t_in, const int8_t *w, const int32_t *bias,
                         const int32_t *mult, const int32_t *shift, int32_t lo, int32_t hi,
                         int8_t *y, int32_t *acc_out) {
  const int32_t t_out = t_in + pad_left + pad_right - k + 1;
  for (int32_t t = 0; t < t_out; t++)
    for (int32_t c = 0; c < channels; c++) {
      int32_t acc = bias ? bias[c] : 0;
      for (int32_t j = 0; j < k; j++) {
        const int32_t ti = t - pad_left + j;
        if (ti < 0 || ti >= t_in) continue; /* zero padding */
        acc += (int32_t)x[(size_t)ti * channels + c] * w[(size_t)c * k + j];
      }
      if (acc_out)
        acc_out[(size_t)t * channels + c] = acc;
      else
        y[(size_t)t * channels + c] = (int8_t)rsq_requant1(acc, mult[c], shift[c], lo, hi);
    }
}
