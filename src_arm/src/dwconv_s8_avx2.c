/* dwconv_s8_avx2.c - INT8 depthwise Conv1D, native AVX2 (x86-64).
 * Vectorized over channels (16 per vector): per tap, 16 inputs and 16 weights sign-extended to
 * int16 (vpmovsxbw), multiplied in int16 (|x w| <= 127 * 127: exact), the products widened
 * into two int32x8 accumulators (k * 127 * 127 does not fit int16 for k > 2, so no int16
 * chains). Work item: 16 channels x 4 output rows. One requantize per output
 * (rsq_avx2_requant_store16, steps 0-3 of rsq.h). xpad and wpk as for the NEON kernel with the
 * channel stride c_p = RSQ_ROUND_UP(channels, 16). */
#include "avx2_common.h"

void rsq_dwconv1d_s8_avx2(int32_t channels, int32_t k, int32_t t_out, const int8_t *xpad,
                          const int8_t *wpk, const rsq_rq *rq, int8_t *y, int32_t threads) {
  assert(k >= 1 && k <= 64 && threads >= 1);
  const int32_t c_p = RSQ_ROUND_UP(channels, 16), ncg = c_p / 16, nrb = (t_out + 3) / 4;
  (void)threads;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int32_t item = 0; item < ncg * nrb; item++) {
    const int32_t cg = item / nrb, rb = item % nrb, t0 = rb * 4, c0 = cg * 16;
    const int32_t nc = channels - c0 < 16 ? channels - c0 : 16;
    rsq_avx2_rq16 q;
    rsq_avx2_rq16_load(&q, rq, c0, NULL);
    for (int32_t r = 0; r < 4 && t0 + r < t_out; r++) {
      const int8_t *xr = xpad + (size_t)(t0 + r) * c_p + c0;
      __m256i a0 = _mm256_setzero_si256(), a1 = a0;
      for (int32_t j = 0; j < k; j++) {
        const __m256i xv = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(xr + (size_t)j * c_p)));
        const __m256i wv =
            _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(wpk + (size_t)j * c_p + c0)));
        const __m256i p = _mm256_mullo_epi16(xv, wv);
        a0 = _mm256_add_epi32(a0, _mm256_cvtepi16_epi32(_mm256_castsi256_si128(p)));
        a1 = _mm256_add_epi32(a1, _mm256_cvtepi16_epi32(_mm256_extracti128_si256(p, 1)));
      }
      rsq_avx2_requant_store16(&q, a0, a1, y + (size_t)(t0 + r) * channels + c0, nc);
    }
  }
}
