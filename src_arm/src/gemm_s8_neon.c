/* gemm_s8_neon.c - INT8 Conv1D as an implicit GEMM, NEON (ARMv7; SIMDe elsewhere).
 *
 * C[t][co] = sum_{kk < K} A[t][kk] * B[kk][co] with K = k*cin_p and
 * A[t][kk] = xpad[(t*stride)*cin_p + kk]: the k input rows of output t are contiguous in the
 * time-major padded input, so no im2col copy is needed. B is packed per column pair:
 * per 4-column quad for rsq_ukr_2x4 (2 rows x 4 columns, 2 products per int16 lane), one
 * requantize per output in the epilogue. This is the default (best measured) kernel.
 *
 * rsq_gemm_s8_neon_c12 is the alternative kept for comparison: 3x2 tile, products summed
 * `chain` deep in int16 (|x| <= 63, |w| <= 42 -> chain 12), B packed [K/8][2][8]. Under
 * qemu-arm it executes more instructions than the 2x4 kernel (see BENCH.md). */
#include "neon_common.h"

size_t rsq_gemm_s8_neon_c12_packed_size(int32_t cin, int32_t cout, int32_t k) {
  return (size_t)RSQ_ROUND_UP(cout, 8) * k * RSQ_ROUND_UP(cin, 8);
}

void rsq_gemm_s8_neon_c12_pack(int32_t cin, int32_t cout, int32_t k, const int8_t *w,
                           int8_t *packed) {
  const int32_t cin_p = RSQ_ROUND_UP(cin, 8), K = k * cin_p, cout_p = RSQ_ROUND_UP(cout, 8);
  for (int32_t p = 0; p < cout_p / 2; p++)
    for (int32_t s = 0; s < K / 8; s++)
      for (int32_t c = 0; c < 2; c++)
        for (int32_t l = 0; l < 8; l++) {
          int32_t kk = s * 8 + l, j = kk / cin_p, ci = kk % cin_p, co = 2 * p + c;
          packed[(((size_t)p * (K / 8) + s) * 2 + c) * 8 + l] =
              (co < cout && ci < cin) ? w[((size_t)co * cin + ci) * k + j] : 0;
        }
}

void rsq_gemm_s8_neon_c12(const rsq_geom *g, const int8_t *xpad, const int8_t *packed,
                      const rsq_rq *rq, int8_t *y, int32_t threads) {
  assert(g->cin_p % 8 == 0 && g->chain >= 1 && threads >= 1);
  const int32_t K = g->k * g->cin_p, nsteps = K / 8;
  const int32_t ncg = RSQ_ROUND_UP(g->cout, 8) / 8, nrb = (g->t_out + 2) / 3;
  const size_t lda = (size_t)g->stride * g->cin_p;
  const int32_t chain = g->chain;
  (void)threads;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int32_t item = 0; item < ncg * nrb; item++) {
    const int32_t cg = item / nrb, rb = item % nrb, t0 = rb * 3;
    const int8_t *a = xpad + (size_t)t0 * lda;
    int32_t tile[3 * 8];
    for (int32_t pp = 0; pp < 4; pp++) {
      const int8_t *b = packed + (size_t)(cg * 4 + pp) * 2 * K;
      int32x2_t o[3];
      if (chain == 12) /* |x|<=63, |w|<=42: the common case gets a fully unrolled chain */
        rsq_ukr_3x2(a, a + lda, a + 2 * lda, b, nsteps, 12, o);
      else
        rsq_ukr_3x2(a, a + lda, a + 2 * lda, b, nsteps, chain, o);
      for (int r = 0; r < 3; r++) vst1_s32(tile + 8 * r + 2 * pp, o[r]);
    }
    const int32_t rows = g->t_out - t0 < 3 ? g->t_out - t0 : 3;
    const int32_t nc = g->cout - cg * 8 < 8 ? g->cout - cg * 8 : 8;
    rsq_neon_requant_store(tile, 8, rows, cg * 8, nc, rq, y + (size_t)t0 * g->cout, g->cout);
  }
}

size_t rsq_gemm_s8_neon_packed_size(int32_t cin, int32_t cout, int32_t k) {
  return (size_t)RSQ_ROUND_UP(cout, 8) * k * RSQ_ROUND_UP(cin, 8);
}

void rsq_gemm_s8_neon_pack(int32_t cin, int32_t cout, int32_t k, const int8_t *w,
                           int8_t *packed) {
  const int32_t cin_p = RSQ_ROUND_UP(cin, 8), K = k * cin_p, cout_p = RSQ_ROUND_UP(cout, 8);
  for (int32_t q = 0; q < cout_p / 4; q++)
    for (int32_t c = 0; c < 4; c++)
      for (int32_t kk = 0; kk < K; kk++) {
        int32_t j = kk / cin_p, ci = kk % cin_p, co = 4 * q + c;
        packed[(size_t)q * 4 * K + rsq_quad_index(K, c, kk)] =
            (co < cout && ci < cin) ? w[((size_t)co * cin + ci) * k + j] : 0;
      }
}

void rsq_gemm_s8_neon(const rsq_geom *g, const int8_t *xpad, const int8_t *packed,
                      const rsq_rq *rq, int8_t *y, int32_t threads) {
  assert(g->cin_p % 8 == 0 && threads >= 1);
  const int32_t K = g->k * g->cin_p, nsteps = K / 8;
  const int32_t ncg = RSQ_ROUND_UP(g->cout, 8) / 8, nrb = (g->t_out + 1) / 2;
  const size_t lda = (size_t)g->stride * g->cin_p;
  (void)threads;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int32_t item = 0; item < ncg * nrb; item++) {
    const int32_t cg = item / nrb, rb = item % nrb, t0 = rb * 2;
    const int8_t *a = xpad + (size_t)t0 * lda;
    int32_t tile[2 * 8];
    for (int32_t qq = 0; qq < 2; qq++) {
      int32x4_t o[2];
      rsq_ukr_2x4(a, a + lda, packed + (size_t)(cg * 2 + qq) * 4 * K, nsteps, o);
      vst1q_s32(tile + 4 * qq, o[0]);
      vst1q_s32(tile + 8 + 4 * qq, o[1]);
    }
    const int32_t rows = g->t_out - t0 < 2 ? g->t_out - t0 : 2;
    const int32_t nc = g->cout - cg * 8 < 8 ? g->cout - cg * 8 : 8;
    rsq_neon_requant_store(tile, 8, rows, cg * 8, nc, rq, y + (size_t)t0 * g->cout, g->cout);
  }
}

/* ---- 2x3 tile, chain-deep int16 accumulation (default when chain >= 6) ----
 * Column group 12 (4 triples), row block 2. Packed per triple [K/8][3][8]. */
size_t rsq_gemm_s8_neon_2x3_packed_size(int32_t cin, int32_t cout, int32_t k) {
  return (size_t)RSQ_ROUND_UP(cout, 12) * k * RSQ_ROUND_UP(cin, 8);
}

void rsq_gemm_s8_neon_2x3_pack(int32_t cin, int32_t cout, int32_t k, const int8_t *w,
                               int8_t *packed) {
  const int32_t cin_p = RSQ_ROUND_UP(cin, 8), K = k * cin_p, cout_p = RSQ_ROUND_UP(cout, 12);
  for (int32_t t = 0; t < cout_p / 3; t++)
    for (int32_t c = 0; c < 3; c++)
      for (int32_t kk = 0; kk < K; kk++) {
        const int32_t j = kk / cin_p, ci = kk % cin_p, co = 3 * t + c;
        packed[(size_t)t * 3 * K + rsq_triple_index(c, kk)] =
            (co < cout && ci < cin) ? w[((size_t)co * cin + ci) * k + j] : 0;
      }
}

void rsq_gemm_s8_neon_2x3(const rsq_geom *g, const int8_t *xpad, const int8_t *packed,
                          const rsq_rq *rq, int8_t *y, int32_t threads) {
  assert(g->cin_p % 8 == 0 && g->chain >= 2 && threads >= 1);
  const int32_t K = g->k * g->cin_p, nsteps = K / 8, chain = g->chain;
  const int32_t ncg = RSQ_ROUND_UP(g->cout, 12) / 12, nrb = (g->t_out + 1) / 2;
  const size_t lda = (size_t)g->stride * g->cin_p;
  (void)threads;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int32_t item = 0; item < ncg * nrb; item++) {
    const int32_t cg = item / nrb, rb = item % nrb, t0 = rb * 2, co0 = cg * 12;
    const int8_t *a = xpad + (size_t)t0 * lda;
    int32_t tile[2 * 16]; /* row stride 16: the 4-column epilogue reads 8 */
    for (int32_t tt = 0; tt < 4; tt++)
      rsq_ukr_2x3(a, a + lda, packed + (size_t)(cg * 4 + tt) * 3 * K, nsteps, chain, tile + 3 * tt, 16);
    const int32_t rows = g->t_out - t0 < 2 ? g->t_out - t0 : 2;
    const int32_t nc = g->cout - co0 < 12 ? g->cout - co0 : 12;
    int8_t *yr = y + (size_t)t0 * g->cout;
    rsq_neon_requant_store(tile, 16, rows, co0, nc < 8 ? nc : 8, rq, yr, g->cout);
    if (nc > 8) rsq_neon_requant_store(tile + 8, 16, rows, co0 + 8, nc - 8, rq, yr, g->cout);
  }
}
