/* dwconv_s8_neon.c - INT8 depthwise Conv1D, NEON (ARMv7; SIMDe elsewhere).
 * Vectorized over channels (8 per vector): per tap, vmull.s8 of 8 inputs by 8 weights, then
 * vaddw.s16 into two int32x4 accumulators (k*127*127 does not fit int16 for k > 2, so no
 * int16 chains). Work item: 8 channels x 4 output rows; the weights of the 8 channels for all
 * taps are loaded once per item. One requantize per output (rsq_neon_requant_store). */
#include "neon_common.h"

void rsq_dwconv1d_s8_neon(int32_t channels, int32_t k, int32_t t_out, const int8_t *xpad,
                          const int8_t *wpk, const rsq_rq *rq, int8_t *y, int32_t threads) {
  assert(k >= 1 && k <= 64 && threads >= 1);
  /* channel stride 16 (the op layer shares the layout with the AVX2 kernel), groups of 8 */
  const int32_t c_p = RSQ_ROUND_UP(channels, 16), ncg = RSQ_ROUND_UP(channels, 8) / 8;
  const int32_t nrb = (t_out + 3) / 4;
  (void)threads;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int32_t item = 0; item < ncg * nrb; item++) {
    const int32_t cg = item / nrb, rb = item % nrb, t0 = rb * 4, c0 = cg * 8;
    int32_t tile[4 * 8];
    for (int32_t r = 0; r < 4; r++) {
      const int8_t *xr = xpad + (size_t)(t0 + r) * c_p + c0;
      int32x4_t a0 = vdupq_n_s32(0), a1 = a0;
      for (int32_t j = 0; j < k; j++) {
        const int16x8_t p = vmull_s8(vld1_s8(xr + (size_t)j * c_p), vld1_s8(wpk + (size_t)j * c_p + c0));
        a0 = vaddw_s16(a0, vget_low_s16(p));
        a1 = vaddw_s16(a1, vget_high_s16(p));
      }
      vst1q_s32(tile + 8 * r, a0);
      vst1q_s32(tile + 8 * r + 4, a1);
    }
    const int32_t rows = t_out - t0 < 4 ? t_out - t0 : 4;
    const int32_t nc = channels - c0 < 8 ? channels - c0 : 8;
    rsq_neon_requant_store(tile, 8, rows, c0, nc, rq, y + (size_t)t0 * channels, channels);
  }
}
