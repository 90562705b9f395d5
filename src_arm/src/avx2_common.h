/* avx2_common.h - AVX2 micro-kernels and requantizing epilogue shared by gemm_s8_avx2.c and
 * wino23_s8_avx2.c (x86-64 only; these files are compiled with -mavx2 -mfma and only called
 * after rsq_cpu_has_avx2(); a second build of them with RSQ_X86_VNNI uses vpdpbusd, below, and
 * is only called after rsq_cpu_has_avx512vnni()).
 *
 * Packed B layout (both kernels): per 16-column group, per 4-deep reduction step s:
 *   64 bytes = [16 columns][4 reduction values], i.e. two 32-byte vectors (columns 0-7, 8-15);
 *   each 32-bit lane of a vector holds the 4 weights of one column.
 * A row's 4 reduction values are broadcast to every 32-bit lane (vpbroadcastd) and multiplied
 * with vpmaddubsw (u8 x s8 -> adjacent pair sums in int16), then `chain` steps are summed in
 * int16 (vpaddw) before one vpmaddwd by ones widens them into the int32 accumulators.
 * Exactness: every int16 lane holds at most 2*chain products; the callers choose chain so
 * that 2*chain*max|a|*max|b| <= 32767 (no saturation, no wrap).
 *
 * Two operand modes:
 *  - offset (ukr_u8): a = x + xoff as uint8 (GEMM, leftover taps); the caller subtracts
 *    xoff * sum(b) per column.
 *  - sign (ukr_sign): a given as |v| (uint8) and v (int8); b's sign is flipped where v < 0
 *    (vpsignb), so |v| * (sign(v) b) = v b for signed v in [-126, 126] (Winograd domain,
 *    where no offset keeps |a| small enough). */
#ifndef RSQ_AVX2_COMMON_H
#define RSQ_AVX2_COMMON_H

#include <immintrin.h>
#include <string.h>

#include "internal.h"

#define RSQ_INLINE static inline __attribute__((always_inline))

static inline int32_t rsq_ld32(const void *p) {
  int32_t v;
  memcpy(&v, p, 4);
  return v;
}

#ifdef RSQ_X86_VNNI
/* The VNNI build of the same kernel sources (gemm_s8_avx2.c and wino23_s8_avx2.c compiled a
 * second time with -mavx512vnni -mavx512vl, RSQ_X86_VNNI defined): vpdpbusd on ymm registers
 * adds the four u8 x s8 products of each 32-bit lane straight into the int32 accumulator, so
 * nothing passes through int16 and `chain` does not matter: exact for any a in [0, 255] and
 * b in [-127, 127], so the VNNI build needs no sign mode (no rsq_avx2_ukr_sign: the Winograd
 * stores V + 128, wino23_s8_avx2.c). The kernels' entry points get the suffix _vnni instead of
 * _avx2. */
#define RSQ_X86_FN(name) name##_vnni
RSQ_INLINE void rsq_avx2_ukr_u8(const uint8_t *a, size_t lda, const int8_t *b, int32_t nsteps,
                                const int R, const int chain, __m256i acc[]) {
  (void)chain;
  for (int32_t s = 0; s < nsteps; s++) {
    const __m256i w0 = _mm256_load_si256((const __m256i *)(b + (size_t)s * 64));
    const __m256i w1 = _mm256_load_si256((const __m256i *)(b + (size_t)s * 64 + 32));
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
      const __m256i x = _mm256_set1_epi32(rsq_ld32(a + r * lda + 4 * (size_t)s));
      acc[2 * r] = _mm256_dpbusd_epi32(acc[2 * r], x, w0);
      acc[2 * r + 1] = _mm256_dpbusd_epi32(acc[2 * r + 1], x, w1);
    }
  }
}

#else
#define RSQ_X86_FN(name) name##_avx2
/* acc[2r + h] (r < R, h = column half) += sum_s a_r[4s..4s+3] . b[s][8h..8h+7][0..3].
 * Loop order: row-major inside a chain (row r's two int16 partial sums are finished and folded
 * before row r+1 starts), weights as memory operands: 2R int32 accumulators + 2 int16 partials +
 * a few temporaries stay in the 16 ymm registers (the step-major order spilled). */
RSQ_INLINE void rsq_avx2_ukr_u8(const uint8_t *a, size_t lda, const int8_t *b, int32_t nsteps,
                                const int R, const int chain, __m256i acc[]) {
  const __m256i ones = _mm256_set1_epi16(1);
  int32_t s = 0;
  for (; s + chain <= nsteps; s += chain) {
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
      __m256i t0 = _mm256_setzero_si256(), t1 = t0;
#pragma GCC unroll 4
      for (int i = 0; i < chain; i++) {
        const int8_t *bs = b + (size_t)(s + i) * 64;
        const __m256i x = _mm256_set1_epi32(rsq_ld32(a + r * lda + 4 * (size_t)(s + i)));
        const __m256i p0 = _mm256_maddubs_epi16(x, _mm256_load_si256((const __m256i *)bs));
        const __m256i p1 = _mm256_maddubs_epi16(x, _mm256_load_si256((const __m256i *)(bs + 32)));
        t0 = i ? _mm256_add_epi16(t0, p0) : p0;
        t1 = i ? _mm256_add_epi16(t1, p1) : p1;
      }
      acc[2 * r] = _mm256_add_epi32(acc[2 * r], _mm256_madd_epi16(t0, ones));
      acc[2 * r + 1] = _mm256_add_epi32(acc[2 * r + 1], _mm256_madd_epi16(t1, ones));
    }
  }
  for (; s < nsteps; s++) {
    const __m256i w0 = _mm256_load_si256((const __m256i *)(b + (size_t)s * 64));
    const __m256i w1 = _mm256_load_si256((const __m256i *)(b + (size_t)s * 64 + 32));
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
      const __m256i x = _mm256_set1_epi32(rsq_ld32(a + r * lda + 4 * (size_t)s));
      acc[2 * r] = _mm256_add_epi32(acc[2 * r], _mm256_madd_epi16(_mm256_maddubs_epi16(x, w0), ones));
      acc[2 * r + 1] =
          _mm256_add_epi32(acc[2 * r + 1], _mm256_madd_epi16(_mm256_maddubs_epi16(x, w1), ones));
    }
  }
}

/* Same with signed a: aa = |a| (uint8), as = a (int8), rows lda apart in both. */
RSQ_INLINE void rsq_avx2_ukr_sign(const uint8_t *aa, const int8_t *as, size_t lda,
                                  const int8_t *b, int32_t nsteps, const int R, const int chain,
                                  __m256i acc[]) {
  const __m256i ones = _mm256_set1_epi16(1);
  int32_t s = 0;
  for (; s + chain <= nsteps; s += chain) {
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
      __m256i t0 = _mm256_setzero_si256(), t1 = t0;
#pragma GCC unroll 4
      for (int i = 0; i < chain; i++) {
        const int8_t *bs = b + (size_t)(s + i) * 64;
        const size_t o = r * lda + 4 * (size_t)(s + i);
        const __m256i xa = _mm256_set1_epi32(rsq_ld32(aa + o));
        const __m256i xs = _mm256_set1_epi32(rsq_ld32(as + o));
        const __m256i p0 = _mm256_maddubs_epi16(
            xa, _mm256_sign_epi8(_mm256_load_si256((const __m256i *)bs), xs));
        const __m256i p1 = _mm256_maddubs_epi16(
            xa, _mm256_sign_epi8(_mm256_load_si256((const __m256i *)(bs + 32)), xs));
        t0 = i ? _mm256_add_epi16(t0, p0) : p0;
        t1 = i ? _mm256_add_epi16(t1, p1) : p1;
      }
      acc[2 * r] = _mm256_add_epi32(acc[2 * r], _mm256_madd_epi16(t0, ones));
      acc[2 * r + 1] = _mm256_add_epi32(acc[2 * r + 1], _mm256_madd_epi16(t1, ones));
    }
  }
  for (; s < nsteps; s++) {
    const __m256i w0 = _mm256_load_si256((const __m256i *)(b + (size_t)s * 64));
    const __m256i w1 = _mm256_load_si256((const __m256i *)(b + (size_t)s * 64 + 32));
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
      const size_t o = r * lda + 4 * (size_t)s;
      const __m256i xa = _mm256_set1_epi32(rsq_ld32(aa + o));
      const __m256i xs = _mm256_set1_epi32(rsq_ld32(as + o));
      acc[2 * r] = _mm256_add_epi32(
          acc[2 * r], _mm256_madd_epi16(_mm256_maddubs_epi16(xa, _mm256_sign_epi8(w0, xs)), ones));
      acc[2 * r + 1] = _mm256_add_epi32(
          acc[2 * r + 1], _mm256_madd_epi16(_mm256_maddubs_epi16(xa, _mm256_sign_epi8(w1, xs)), ones));
    }
  }
}

#endif /* RSQ_X86_VNNI */

/* pack w[cout][cin][k] taps j0..j0+nj-1 of columns co0..co0+15 into [nsteps][16][4], the
 * reduction index kk = (j - j0)*cin_p + ci; returns the per-column sums in colsum[16]. */
static inline void rsq_avx2_pack16(int32_t cin, int32_t cout, int32_t k, const int8_t *w,
                                   int32_t co0, int32_t j0, int32_t nj, int32_t cin_p,
                                   int8_t *dst, int32_t *colsum) {
  const int32_t K = nj * cin_p;
  for (int32_t c = 0; c < 16; c++) colsum[c] = 0;
  for (int32_t kk = 0; kk < K; kk++)
    for (int32_t c = 0; c < 16; c++) {
      const int32_t j = j0 + kk / cin_p, ci = kk % cin_p, co = co0 + c;
      const int8_t v = (co < cout && ci < cin) ? w[((size_t)co * cin + ci) * k + j] : 0;
      dst[(size_t)(kk / 4) * 64 + c * 4 + kk % 4] = v;
      colsum[c] += v;
    }
}

/* Requantize two int32 vectors (columns co0..co0+15) with per-column bias (already including
 * any offset correction), exactly steps 0-3 of rsq.h, and store ncols int8 values. */
typedef struct rsq_avx2_rq16 {
  __m256i bias[2], mult[2], lsh[2], rsh[2], rsh32[2], lo, hi;
  const rsq_rq *rq; /* for the int32 output mode (rq->acc != NULL) */
  int32_t co0;
} rsq_avx2_rq16;

static inline void rsq_avx2_rq16_load(rsq_avx2_rq16 *q, const rsq_rq *rq, int32_t co0,
                                      const int32_t *bias_adj /* [16] or NULL */) {
  for (int h = 0; h < 2; h++) {
    __m256i b = _mm256_loadu_si256((const __m256i *)(rq->bias + co0 + 8 * h));
    if (bias_adj) b = _mm256_add_epi32(b, _mm256_loadu_si256((const __m256i *)(bias_adj + 8 * h)));
    q->bias[h] = b;
    q->mult[h] = _mm256_loadu_si256((const __m256i *)(rq->mult + co0 + 8 * h));
    q->lsh[h] = _mm256_loadu_si256((const __m256i *)(rq->lshift + co0 + 8 * h));
    q->rsh[h] = _mm256_loadu_si256((const __m256i *)(rq->rshift + co0 + 8 * h));
    q->rsh32[h] = _mm256_sub_epi32(_mm256_set1_epi32(32), q->rsh[h]);
  }
  q->lo = _mm256_set1_epi32(rq->lo);
  q->hi = _mm256_set1_epi32(rq->hi);
  q->rq = rq;
  q->co0 = co0;
}

RSQ_INLINE __m256i rsq_avx2_requant8(__m256i a, __m256i l, __m256i M, __m256i r, __m256i r32,
                                     __m256i lo, __m256i hi) {
  /* step 0: saturating left shift by l in [0, 31] */
  const __m256i sh = _mm256_sllv_epi32(a, l);
  const __m256i ok = _mm256_cmpeq_epi32(_mm256_srav_epi32(sh, l), a);
  const __m256i sat = _mm256_xor_si256(_mm256_srai_epi32(a, 31), _mm256_set1_epi32(INT32_MAX));
  a = _mm256_blendv_epi8(sat, sh, ok);
  /* step 1: (2 a M + 2^31) >> 32 = (a M + 2^30) >> 31; the result fits int32 (M < 2^31) and
   * only bits 31..62 of the int64 are needed, so a logical 64-bit shift is enough */
  const __m256i rnd = _mm256_set1_epi64x((int64_t)1 << 30);
  const __m256i pe = _mm256_add_epi64(_mm256_mul_epi32(a, M), rnd);
  const __m256i po = _mm256_add_epi64(
      _mm256_mul_epi32(_mm256_srli_epi64(a, 32), _mm256_srli_epi64(M, 32)), rnd);
  a = _mm256_blend_epi32(_mm256_srli_epi64(pe, 31), _mm256_slli_epi64(_mm256_srli_epi64(po, 31), 32),
                         0xAA);
  /* step 2: round half up shift by r in [0, 31]: (a >> r) + bit (r-1) of a (0 when r = 0) */
  a = _mm256_add_epi32(_mm256_srav_epi32(a, r), _mm256_srli_epi32(_mm256_sllv_epi32(a, r32), 31));
  /* step 3 */
  return _mm256_min_epi32(_mm256_max_epi32(a, lo), hi);
}

RSQ_INLINE void rsq_avx2_requant_store16(const rsq_avx2_rq16 *q, __m256i a0, __m256i a1,
                                         int8_t *y, int32_t ncols) {
  if (q->rq->acc) { /* int32 output mode (rsq_rq): acc + bias (incl. offset correction) */
    int32_t tmp[16], zero[16] = {0};
    _mm256_storeu_si256((__m256i *)tmp, _mm256_add_epi32(a0, q->bias[0]));
    _mm256_storeu_si256((__m256i *)(tmp + 8), _mm256_add_epi32(a1, q->bias[1]));
    rsq_store_acc_row(q->rq, tmp, zero, y, q->co0, ncols);
    return;
  }
  a0 = rsq_avx2_requant8(_mm256_add_epi32(a0, q->bias[0]), q->lsh[0], q->mult[0], q->rsh[0],
                         q->rsh32[0], q->lo, q->hi);
  a1 = rsq_avx2_requant8(_mm256_add_epi32(a1, q->bias[1]), q->lsh[1], q->mult[1], q->rsh[1],
                         q->rsh32[1], q->lo, q->hi);
  const __m256i w16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(a0, a1), 0xD8);
  const __m128i b8 = _mm_packs_epi16(_mm256_castsi256_si128(w16), _mm256_extracti128_si256(w16, 1));
  if (ncols == 16) {
    _mm_storeu_si128((__m128i *)y, b8);
  } else {
    int8_t tmp[16];
    _mm_storeu_si128((__m128i *)tmp, b8);
    memcpy(y, tmp, (size_t)ncols);
  }
}

#endif /* RSQ_AVX2_COMMON_H */
