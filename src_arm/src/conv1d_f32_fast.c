/* conv1d_f32_fast.c - blocked FP32 Conv1D / linear (implicit GEMM, explicit SIMD kernels).
 * A[t][kk] = xpad[t*stride*cin + kk], kk = j*cin + ci (time-major rows are contiguous);
 * B packed per 16-column panel [cout_p/16][K][16] (contiguous stream for the micro-kernel);
 * micro-tile 4 rows x 16 columns.
 * Kernels: AVX2+FMA on x86-64 (run-time check), NEON (vmla by lane) on ARM, else plain C. */
#include <string.h>

#include "internal.h"

#if defined(RSQ_HAVE_X86)
#include <immintrin.h>
#endif /* RSQ_HAVE_X86 */
#if defined(__ARM_NEON) || defined(__ARM_NEON__)
#include <arm_neon.h>
#endif /* __ARM_NEON || __ARM_NEON__ */

size_t rsq_conv1d_f32_packed_size(int32_t cin, int32_t cout, int32_t k) {
  return (size_t)k * cin * RSQ_ROUND_UP(cout, 16);
}

void rsq_conv1d_f32_pack(int32_t cin, int32_t cout, int32_t k, const float *w, float *packed) {
  const int32_t cout_p = RSQ_ROUND_UP(cout, 16);
  for (int32_t j = 0; j < k; j++)
    for (int32_t ci = 0; ci < cin; ci++)
      for (int32_t co = 0; co < cout_p; co++)
        packed[((size_t)(co / 16) * k * cin + (size_t)j * cin + ci) * 16 + co % 16] =
            co < cout ? w[((size_t)co * cin + ci) * k + j] : 0.f;
}

/* portable C (auto-vectorized) */
__attribute__((unused)) static void tile_4x16_c(const float *a, size_t lda, const float *b, size_t ldb, int32_t K,
                        float *c /* [4][16] */) {
  float acc[4][16];
  memset(acc, 0, sizeof acc);
  for (int32_t kk = 0; kk < K; kk++) {
    const float *br = b + (size_t)kk * ldb;
    for (int r = 0; r < 4; r++) {
      const float av = a[r * lda + kk];
      for (int cc = 0; cc < 16; cc++) acc[r][cc] += av * br[cc];
    }
  }
  memcpy(c, acc, sizeof acc);
}

#if defined(RSQ_HAVE_X86)
/* AVX2 + FMA: 8 ymm accumulators, per reduction step 2 loads of B + 4 broadcasts + 8 FMAs.
 * FMA rounds once per multiply-add: results differ from the C reference in the last bits. */
__attribute__((target("avx2,fma"))) static void tile_4x16_avx2(const float *a, size_t lda,
                                                                const float *b, size_t ldb,
                                                                int32_t K, float *c) {
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
         c30 = c00, c31 = c00;
  for (int32_t kk = 0; kk < K; kk++) {
    const float *br = b + (size_t)kk * ldb;
    const __m256 b0 = _mm256_loadu_ps(br), b1 = _mm256_loadu_ps(br + 8);
    __m256 x = _mm256_broadcast_ss(a + kk);
    c00 = _mm256_fmadd_ps(x, b0, c00);
    c01 = _mm256_fmadd_ps(x, b1, c01);
    x = _mm256_broadcast_ss(a + lda + kk);
    c10 = _mm256_fmadd_ps(x, b0, c10);
    c11 = _mm256_fmadd_ps(x, b1, c11);
    x = _mm256_broadcast_ss(a + 2 * lda + kk);
    c20 = _mm256_fmadd_ps(x, b0, c20);
    c21 = _mm256_fmadd_ps(x, b1, c21);
    x = _mm256_broadcast_ss(a + 3 * lda + kk);
    c30 = _mm256_fmadd_ps(x, b0, c30);
    c31 = _mm256_fmadd_ps(x, b1, c31);
  }
  _mm256_storeu_ps(c, c00); _mm256_storeu_ps(c + 8, c01);
  _mm256_storeu_ps(c + 16, c10); _mm256_storeu_ps(c + 24, c11);
  _mm256_storeu_ps(c + 32, c20); _mm256_storeu_ps(c + 40, c21);
  _mm256_storeu_ps(c + 48, c30); _mm256_storeu_ps(c + 56, c31);
}
#endif /* x86 */

#if defined(__ARM_NEON) || defined(__ARM_NEON__)
/* NEON: 4 rows x 16 columns = 16 q accumulators would leave no operand registers on ARMv7,
 * so two passes of 4 x 8 (8 q accumulators, vmla by scalar lane). */
static void tile_4x8_neon(const float *a, size_t lda, const float *b, size_t ldb, int32_t K,
                          float *c, size_t ldc) {
  float32x4_t c00 = vdupq_n_f32(0.f), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
              c30 = c00, c31 = c00;
  for (int32_t kk = 0; kk < K; kk++) {
    const float *br = b + (size_t)kk * ldb;
    const float32x4_t b0 = vld1q_f32(br), b1 = vld1q_f32(br + 4);
    const float32x2_t x01 = {a[kk], a[lda + kk]}, x23 = {a[2 * lda + kk], a[3 * lda + kk]};
    c00 = vmlaq_lane_f32(c00, b0, x01, 0);
    c01 = vmlaq_lane_f32(c01, b1, x01, 0);
    c10 = vmlaq_lane_f32(c10, b0, x01, 1);
    c11 = vmlaq_lane_f32(c11, b1, x01, 1);
    c20 = vmlaq_lane_f32(c20, b0, x23, 0);
    c21 = vmlaq_lane_f32(c21, b1, x23, 0);
    c30 = vmlaq_lane_f32(c30, b0, x23, 1);
    c31 = vmlaq_lane_f32(c31, b1, x23, 1);
  }
  vst1q_f32(c, c00); vst1q_f32(c + 4, c01);
  vst1q_f32(c + ldc, c10); vst1q_f32(c + ldc + 4, c11);
  vst1q_f32(c + 2 * ldc, c20); vst1q_f32(c + 2 * ldc + 4, c21);
  vst1q_f32(c + 3 * ldc, c30); vst1q_f32(c + 3 * ldc + 4, c31);
}
#endif /* NEON */

static void tile_4x16(const float *a, size_t lda, const float *b, size_t ldb, int32_t K,
                      float *c, int use_avx2) {
#if defined(RSQ_HAVE_X86)
  if (use_avx2) {
    tile_4x16_avx2(a, lda, b, ldb, K, c);
    return;
  }
#endif /* RSQ_HAVE_X86 */
#if defined(__ARM_NEON) || defined(__ARM_NEON__)
  (void)use_avx2;
  tile_4x8_neon(a, lda, b, ldb, K, c, 16);
  tile_4x8_neon(a, lda, b + 8, ldb, K, c + 8, 16);
#else
  (void)use_avx2;
  tile_4x16_c(a, lda, b, ldb, K, c);
#endif /* __ARM_NEON || __ARM_NEON__ */
}

void rsq_conv1d_f32_fast(const rsq_geom *g, const float *xpad, const float *packed,
                         const float *bias_p, float lo, float hi, float *y, int32_t threads) {
  assert(threads >= 1);
  const int32_t K = g->k * g->cin, cout_p = RSQ_ROUND_UP(g->cout, 16);
  const int32_t ncb = cout_p / 16, nrb = (g->t_out + 3) / 4;
  const size_t lda = (size_t)g->stride * g->cin;
#if defined(RSQ_HAVE_X86)
  const int use_avx2 = rsq_cpu_has_avx2();
#else
  const int use_avx2 = 0;
#endif /* RSQ_HAVE_X86 */
  (void)threads;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int32_t item = 0; item < ncb * nrb; item++) {
    const int32_t cb = item / nrb, rb = item % nrb, t0 = rb * 4, co0 = cb * 16;
    float c[4 * 16];
    tile_4x16(xpad + (size_t)t0 * lda, lda, packed + (size_t)cb * 16 * K, 16, K, c, use_avx2);
    for (int32_t r = 0; r < 4 && t0 + r < g->t_out; r++)
      for (int32_t cc = 0; cc < 16 && co0 + cc < g->cout; cc++) {
        float v = c[r * 16 + cc] + bias_p[co0 + cc];
        v = v < lo ? lo : v;
        v = v > hi ? hi : v;
        y[(size_t)(t0 + r) * g->cout + co0 + cc] = v;
      }
  }
}
