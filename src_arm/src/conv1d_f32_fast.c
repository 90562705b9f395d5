/* conv1d_f32_fast.c - blocked FP32 Conv1D / linear (implicit GEMM, auto-vectorized C).
 * A[t][kk] = xpad[t*stride*cin + kk], kk = j*cin + ci (time-major rows are contiguous);
 * B packed [K][cout_p] with cout_p a multiple of 16; micro-tile 4 rows x 16 columns.
 * On x86-64 an AVX2+FMA clone is selected at load time (target_clones). */
#include <string.h>

#include "internal.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define RSQ_F32_CLONES __attribute__((target_clones("arch=haswell", "default")))
#else
#define RSQ_F32_CLONES
#endif /* x86-64 gcc */

size_t rsq_conv1d_f32_packed_size(int32_t cin, int32_t cout, int32_t k) {
  return (size_t)k * cin * RSQ_ROUND_UP(cout, 16);
}

void rsq_conv1d_f32_pack(int32_t cin, int32_t cout, int32_t k, const float *w, float *packed) {
  const int32_t cout_p = RSQ_ROUND_UP(cout, 16);
  for (int32_t j = 0; j < k; j++)
    for (int32_t ci = 0; ci < cin; ci++)
      for (int32_t co = 0; co < cout_p; co++)
        packed[((size_t)j * cin + ci) * cout_p + co] =
            co < cout ? w[((size_t)co * cin + ci) * k + j] : 0.f;
}

RSQ_F32_CLONES
static void tile_4x16(const float *a, size_t lda, const float *b, size_t ldb, int32_t K,
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

void rsq_conv1d_f32_fast(const rsq_geom *g, const float *xpad, const float *packed,
                         const float *bias_p, float lo, float hi, float *y, int32_t threads) {
  assert(threads >= 1);
  const int32_t K = g->k * g->cin, cout_p = RSQ_ROUND_UP(g->cout, 16);
  const int32_t ncb = cout_p / 16, nrb = (g->t_out + 3) / 4;
  const size_t lda = (size_t)g->stride * g->cin;
  (void)threads;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int32_t item = 0; item < ncb * nrb; item++) {
    const int32_t cb = item / nrb, rb = item % nrb, t0 = rb * 4, co0 = cb * 16;
    float c[4 * 16];
    tile_4x16(xpad + (size_t)t0 * lda, lda, packed + co0, (size_t)cout_p, K, c);
    for (int32_t r = 0; r < 4 && t0 + r < g->t_out; r++)
      for (int32_t cc = 0; cc < 16 && co0 + cc < g->cout; cc++) {
        float v = c[r * 16 + cc] + bias_p[co0 + cc];
        v = v < lo ? lo : v;
        v = v > hi ? hi : v;
        y[(size_t)(t0 + r) * g->cout + co0 + cc] = v;
      }
  }
}
