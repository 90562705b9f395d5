/* gemm_s8_avx2.c - INT8 Conv1D as an implicit GEMM, native AVX2 (x86-64).
 *
 * C[t][co] = sum_{kk < K} A[t][kk] * B[kk][co], K = k*cin_p, A[t][kk] = xpad[t*stride*cin_p + kk]
 * (time-major rows are contiguous: no im2col). xpad holds x + xoff as uint8 (offset trick for
 * vpmaddubsw); C is corrected by - xoff * sum_kk B[kk][co] in the epilogue.
 * Micro-tile RSQ_AVX2_R rows x 16 columns, `chain` 4-deep steps summed in int16
 * (rsq_avx2_ukr_u8; chain chosen by the op layer: 2*chain*max(x+xoff)*max|w| <= 32767,
 * 3 for |x| <= 63, |w| <= 42).
 * Full int8 range (no chain >= 1 exists, e.g. |x| = 127 with |w| > 64): sign mode instead,
 * xs != NULL: xpad holds |x| and xs holds x, and |x| * (sign(x) w) pairs are at most
 * 2 * 127 * 127 = 32258, exact in int16 (chain 1; no offset, no correction).
 * The VNNI build of this file (RSQ_X86_VNNI, avx2_common.h) uses vpdpbusd: offset mode for any
 * range, 6 rows per micro-tile (AVX-512VL gives 32 ymm registers).
 * Packed: int32 colsum[cout_p] then per 16-column group [K/4][16][4] int8 (one layout for both
 * builds: the VNNI kernel takes what rsq_gemm_s8_avx2_pack wrote). */
#include "avx2_common.h"

#ifdef RSQ_X86_VNNI
#define RSQ_AVX2_R 6
#else
#define RSQ_AVX2_R 3
#endif /* RSQ_X86_VNNI */

static int32_t cout16(int32_t cout) { return RSQ_ROUND_UP(cout, 16); }

#ifndef RSQ_X86_VNNI
size_t rsq_gemm_s8_avx2_packed_size(int32_t cin, int32_t cout, int32_t k) {
  return (size_t)cout16(cout) * 4 + (size_t)cout16(cout) * k * RSQ_ROUND_UP(cin, 4);
}

void rsq_gemm_s8_avx2_pack(int32_t cin, int32_t cout, int32_t k, const int8_t *w, void *packed) {
  const int32_t cin_p = RSQ_ROUND_UP(cin, 4), K = k * cin_p, cp = cout16(cout);
  int32_t *colsum = packed;
  int8_t *b = (int8_t *)packed + (size_t)cp * 4;
  for (int32_t cg = 0; cg < cp / 16; cg++)
    rsq_avx2_pack16(cin, cout, k, w, cg * 16, 0, k, cin_p, b + (size_t)cg * 16 * K, colsum + cg * 16);
}
#endif /* RSQ_X86_VNNI */

/* Cache blocking: a work item is one 16-column group x up to RSQ_AVX2_RB row blocks; the
 * reduction is cut into RSQ_AVX2_KC-step slices (16 * 4 * 255 B = 16 KiB of packed weights, kept
 * in L1 while the item's row blocks stream past) with the int32 tiles kept in a stack buffer. */
#define RSQ_AVX2_RB 16
#define RSQ_AVX2_KC 252 /* multiple of every chain length 1, 2, 3 */

static void ukr_chain(int32_t chain, const uint8_t *a, size_t lda, const int8_t *b,
                      int32_t nsteps, __m256i acc[2 * RSQ_AVX2_R]) {
  switch (chain) {
    case 3: rsq_avx2_ukr_u8(a, lda, b, nsteps, RSQ_AVX2_R, 3, acc); break;
    case 2: rsq_avx2_ukr_u8(a, lda, b, nsteps, RSQ_AVX2_R, 2, acc); break;
    default: rsq_avx2_ukr_u8(a, lda, b, nsteps, RSQ_AVX2_R, 1, acc); break;
  }
}

void RSQ_X86_FN(rsq_gemm_s8)(const rsq_geom *g, const uint8_t *xpad, const int8_t *xs,
                             const void *packed, const rsq_rq *rq, int8_t *y, int32_t threads) {
  assert(g->cin_p % 4 == 0 && g->chain >= 1 && threads >= 1 && (!xs || g->xoff == 0));
#ifdef RSQ_X86_VNNI
  assert(!xs); /* offset mode covers every range */
  (void)xs;
#endif /* RSQ_X86_VNNI */
  const int32_t K = g->k * g->cin_p, nsteps = K / 4, cp = cout16(g->cout);
  const int32_t ncg = cp / 16, nrb = (g->t_out + RSQ_AVX2_R - 1) / RSQ_AVX2_R;
  const int32_t nchunk = (nrb + RSQ_AVX2_RB - 1) / RSQ_AVX2_RB;
  const size_t lda = (size_t)g->stride * g->cin_p;
  const int32_t *colsum = packed;
  const int8_t *bw = (const int8_t *)packed + (size_t)cp * 4;
  (void)threads;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int32_t item = 0; item < ncg * nchunk; item++) {
    const int32_t cg = item / nchunk, rb0 = (item % nchunk) * RSQ_AVX2_RB, co0 = cg * 16;
    const int32_t rb1 = rb0 + RSQ_AVX2_RB < nrb ? rb0 + RSQ_AVX2_RB : nrb;
    const int8_t *b = bw + (size_t)cg * 16 * K;
    __m256i buf[RSQ_AVX2_RB][2 * RSQ_AVX2_R];
    for (int32_t s0 = 0; s0 < nsteps; s0 += RSQ_AVX2_KC) {
      const int32_t ns = nsteps - s0 < RSQ_AVX2_KC ? nsteps - s0 : RSQ_AVX2_KC;
      for (int32_t rb = rb0; rb < rb1; rb++) {
        __m256i *acc = buf[rb - rb0];
        if (s0 == 0)
          for (int j = 0; j < 2 * RSQ_AVX2_R; j++) acc[j] = _mm256_setzero_si256();
        const size_t o = (size_t)rb * RSQ_AVX2_R * lda + 4 * (size_t)s0;
#ifndef RSQ_X86_VNNI
        if (xs) { /* sign mode (AVX2 only: vpdpbusd needs no int16 stage) */
          rsq_avx2_ukr_sign(xpad + o, xs + o, lda, b + (size_t)s0 * 64, ns, RSQ_AVX2_R, 1, acc);
          continue;
        }
#endif /* RSQ_X86_VNNI */
        ukr_chain(g->chain, xpad + o, lda, b + (size_t)s0 * 64, ns, acc);
      }
    }
    int32_t adj[16];
    for (int c = 0; c < 16; c++) /* modular: only the final int32 sum must fit */
      adj[c] = (int32_t)(0u - (uint32_t)g->xoff * (uint32_t)colsum[co0 + c]);
    rsq_avx2_rq16 q;
    rsq_avx2_rq16_load(&q, rq, co0, adj);
    const int32_t nc = g->cout - co0 < 16 ? g->cout - co0 : 16;
    for (int32_t rb = rb0; rb < rb1; rb++)
      for (int r = 0; r < RSQ_AVX2_R && rb * RSQ_AVX2_R + r < g->t_out; r++)
        rsq_avx2_requant_store16(&q, buf[rb - rb0][2 * r], buf[rb - rb0][2 * r + 1],
                                 y + (size_t)(rb * RSQ_AVX2_R + r) * g->cout + co0, nc);
  }
}
