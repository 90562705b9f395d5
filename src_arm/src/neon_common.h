/* neon_common.h - NEON micro-kernel and requantizing epilogue shared by gemm_s8_neon.c and
 * wino23_s8_neon.c (same micro-kernel style on both sides keeps the comparison fair).
 * Native <arm_neon.h> on ARM; SIMDe translation on other targets (x86-64 host builds). */
#ifndef RSQ_NEON_COMMON_H
#define RSQ_NEON_COMMON_H

#if defined(__ARM_NEON) || defined(__ARM_NEON__)
#include <arm_neon.h>
#else
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/arm/neon.h>
#endif /* __ARM_NEON */

#include <string.h>

#include "internal.h"

#define RSQ_INLINE static inline __attribute__((always_inline))

/* 3x2 micro-kernel: out[r] = { sum_k a_r[k]*b0[k], sum_k a_r[k]*b1[k] } for r = 0..2.
 * a_r: 8*nsteps int8 (contiguous); b packed [nsteps][2][8].
 * Each (row, column) pair owns an int16x8 accumulator fed by vmull.s8 then (chain-1) x
 * vmlal.s8, then folded into int32 with vpadal.s16. `chain` products per int16 lane must be
 * bounded by 32767 by the caller (|a|*|b|*chain <= 32767). Loads are 64-bit (d registers):
 * 3 x vld1.8 {d} + 1 x vld1.8 {d,d} per 48 MACs. Registers: 6 q int32 + 6 q int16 + 2.5 q
 * operands = 14.5 of 16 q. */
RSQ_INLINE void rsq_ukr_3x2(const int8_t *a0, const int8_t *a1, const int8_t *a2,
                            const int8_t *b, int32_t nsteps, const int32_t chain,
                            int32x2_t out[3]) {
  int32x4_t c00 = vdupq_n_s32(0), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  int32_t s = 0;
#if (defined(__ARM_NEON) || defined(__ARM_NEON__)) && !defined(__aarch64__)
  /* ARMv7: one asm statement per 8-deep step keeps GCC from hoisting the loads of a whole
   * unrolled chain (which spilled to the stack); %e/%f are the d halves of a q operand. */
#define RSQ_STEP(OP, CONS)                                                                  \
  {                                                                                     \
    int8x8_t x0, x1, x2;                                                                \
    int8x16_t wq;                                                                       \
    __asm__ __volatile__(                                                               \
        "vld1.8 {%P[x0]}, [%[a0]]!\n\t"                                                 \
        "vld1.8 {%e[wq], %f[wq]}, [%[b]]!\n\t"                                          \
        "vld1.8 {%P[x1]}, [%[a1]]!\n\t"                                                 \
        "vld1.8 {%P[x2]}, [%[a2]]!\n\t"                                                 \
        OP " %q[p00], %P[x0], %e[wq]\n\t"                                               \
        OP " %q[p01], %P[x0], %f[wq]\n\t"                                               \
        OP " %q[p10], %P[x1], %e[wq]\n\t"                                               \
        OP " %q[p11], %P[x1], %f[wq]\n\t"                                               \
        OP " %q[p20], %P[x2], %e[wq]\n\t"                                               \
        OP " %q[p21], %P[x2], %f[wq]\n\t"                                               \
        : [p00] CONS(p00), [p01] CONS(p01), [p10] CONS(p10), [p11] CONS(p11),           \
          [p20] CONS(p20), [p21] CONS(p21), [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), \
          [b] "+r"(b), [x0] "=&w"(x0), [x1] "=&w"(x1), [x2] "=&w"(x2), [wq] "=&w"(wq)   \
        :                                                                               \
        : "memory");                                                                    \
  }
#define RSQ_FIRST()                                                   \
  int16x8_t p00, p01, p10, p11, p20, p21;                            \
  RSQ_STEP("vmull.s8", "=w")
#define RSQ_MLAL() RSQ_STEP("vmlal.s8", "+w")
#define RSQ_LOAD()
#else
#define RSQ_LOAD()                                                    \
  int8x8_t x0 = vld1_s8(a0), x1 = vld1_s8(a1), x2 = vld1_s8(a2);      \
  int8x16_t wq = vld1q_s8(b);                                         \
  int8x8_t w0 = vget_low_s8(wq), w1 = vget_high_s8(wq);              \
  a0 += 8; a1 += 8; a2 += 8; b += 16;
#define RSQ_FIRST()                                                   \
  int16x8_t p00 = vmull_s8(x0, w0), p01 = vmull_s8(x0, w1);          \
  int16x8_t p10 = vmull_s8(x1, w0), p11 = vmull_s8(x1, w1);          \
  int16x8_t p20 = vmull_s8(x2, w0), p21 = vmull_s8(x2, w1);
#define RSQ_MLAL()                                                    \
  p00 = vmlal_s8(p00, x0, w0); p01 = vmlal_s8(p01, x0, w1);          \
  p10 = vmlal_s8(p10, x1, w0); p11 = vmlal_s8(p11, x1, w1);          \
  p20 = vmlal_s8(p20, x2, w0); p21 = vmlal_s8(p21, x2, w1);
#endif /* ARMv7 asm steps */
#define RSQ_PADAL()                                                   \
  c00 = vpadalq_s16(c00, p00); c01 = vpadalq_s16(c01, p01);          \
  c10 = vpadalq_s16(c10, p10); c11 = vpadalq_s16(c11, p11);          \
  c20 = vpadalq_s16(c20, p20); c21 = vpadalq_s16(c21, p21);
  /* full chains: constant trip count, unrolled by the compiler */
  for (; s + chain <= nsteps; s += chain) {
    RSQ_LOAD();
    RSQ_FIRST();
#pragma GCC unroll 16
    for (int32_t i = 1; i < chain; i++) {
      RSQ_LOAD();
      RSQ_MLAL();
    }
    RSQ_PADAL();
  }
  if (s < nsteps) { /* partial chain */
    RSQ_LOAD();
    RSQ_FIRST();
    for (s++; s < nsteps; s++) {
      RSQ_LOAD();
      RSQ_MLAL();
    }
    RSQ_PADAL();
  }
#undef RSQ_LOAD
#undef RSQ_FIRST
#undef RSQ_MLAL
#undef RSQ_PADAL
#undef RSQ_STEP
  /* horizontal sums: out[r] = { sum(c_r0), sum(c_r1) } */
  out[0] = vpadd_s32(vpadd_s32(vget_low_s32(c00), vget_high_s32(c00)),
                     vpadd_s32(vget_low_s32(c01), vget_high_s32(c01)));
  out[1] = vpadd_s32(vpadd_s32(vget_low_s32(c10), vget_high_s32(c10)),
                     vpadd_s32(vget_low_s32(c11), vget_high_s32(c11)));
  out[2] = vpadd_s32(vpadd_s32(vget_low_s32(c20), vget_high_s32(c20)),
                     vpadd_s32(vget_low_s32(c21), vget_high_s32(c21)));
}

/* 2x4 micro-kernel: out[r] = { sum_k a_r[k]*b_c[k] : c = 0..3 } for rows r = 0, 1.
 * a_r: 8*nsteps int8 contiguous; b packed per 16-deep group [4][16], a trailing 8-deep step
 * (nsteps odd) as [4][8]. Every (row, column) pair: vmull.s8 + vmlal.s8 (2 products per
 * int16 lane, <= 2*126*126 = 31752 for Winograd-domain operands) then vpadal.s16 into int32.
 * Per 16-deep step: 2 + 2 loads (16 B rows, 2 x 32 B weights) + 8 vmull + 8 vmlal + 8 vpadal
 * = 28 instructions per 128 MACs. Measured better than a 3x2 tile with 12-deep int16 chains
 * (137 instructions per 576 MACs incl. loads): the chain saves vpadal but its 12 live int16
 * accumulators force a small tile and more loads per MAC. 8 + 6 + 1 of 16 q registers. */
RSQ_INLINE void rsq_ukr_2x4(const int8_t *a0, const int8_t *a1, const int8_t *b,
                            int32_t nsteps, int32x4_t out[2]) {
  int32x4_t c00 = vdupq_n_s32(0), c01 = c00, c02 = c00, c03 = c00;
  int32x4_t c10 = c00, c11 = c00, c12 = c00, c13 = c00;
  int32_t s = 0;
#define RSQ_PAIR(c, x, w) \
  c = vpadalq_s16(c, vmlal_s8(vmull_s8(vget_low_s8(x), vget_low_s8(w)), vget_high_s8(x), vget_high_s8(w)))
  for (; s + 2 <= nsteps; s += 2) {
    const int8x16_t x0 = vld1q_s8(a0), x1 = vld1q_s8(a1);
    const int8x16_t w0 = vld1q_s8(b), w1 = vld1q_s8(b + 16);
    a0 += 16;
    a1 += 16;
    RSQ_PAIR(c00, x0, w0);
    RSQ_PAIR(c10, x1, w0);
    RSQ_PAIR(c01, x0, w1);
    RSQ_PAIR(c11, x1, w1);
    const int8x16_t w2 = vld1q_s8(b + 32), w3 = vld1q_s8(b + 48);
    b += 64;
    RSQ_PAIR(c02, x0, w2);
    RSQ_PAIR(c12, x1, w2);
    RSQ_PAIR(c03, x0, w3);
    RSQ_PAIR(c13, x1, w3);
  }
#undef RSQ_PAIR
  if (s < nsteps) { /* trailing 8-deep step */
    const int8x8_t x0 = vld1_s8(a0), x1 = vld1_s8(a1);
    const int8x16_t wa = vld1q_s8(b), wb = vld1q_s8(b + 16);
    c00 = vpadalq_s16(c00, vmull_s8(x0, vget_low_s8(wa)));
    c01 = vpadalq_s16(c01, vmull_s8(x0, vget_high_s8(wa)));
    c02 = vpadalq_s16(c02, vmull_s8(x0, vget_low_s8(wb)));
    c03 = vpadalq_s16(c03, vmull_s8(x0, vget_high_s8(wb)));
    c10 = vpadalq_s16(c10, vmull_s8(x1, vget_low_s8(wa)));
    c11 = vpadalq_s16(c11, vmull_s8(x1, vget_high_s8(wa)));
    c12 = vpadalq_s16(c12, vmull_s8(x1, vget_low_s8(wb)));
    c13 = vpadalq_s16(c13, vmull_s8(x1, vget_high_s8(wb)));
  }
#define RSQ_HSUM2(p, q) \
  vpadd_s32(vpadd_s32(vget_low_s32(p), vget_high_s32(p)), vpadd_s32(vget_low_s32(q), vget_high_s32(q)))
  out[0] = vcombine_s32(RSQ_HSUM2(c00, c01), RSQ_HSUM2(c02, c03));
  out[1] = vcombine_s32(RSQ_HSUM2(c10, c11), RSQ_HSUM2(c12, c13));
#undef RSQ_HSUM2
}

/* packed offset of (column c of a 4-column quad, reduction index kk) for rsq_ukr_2x4 */
static inline size_t rsq_quad_index(int32_t K, int32_t c, int32_t kk) {
  const int32_t full = K / 16 * 16;
  return kk < full ? (size_t)(kk / 16) * 64 + c * 16 + kk % 16
                   : (size_t)full * 4 + c * 8 + (kk - full);
}

/* Requantize rows of an int32 tile [rows][8] (columns co0..co0+7) and store int8 rows of y.
 * Exactly rsq.h steps 0-3: vqshl (saturating left shift, shift < 0), vqrdmulh (SRDHM),
 * vrshl by -shift (rounding right shift), saturating narrows, clamp. */
RSQ_INLINE void rsq_neon_requant_store(const int32_t *tile, int32_t rows, int32_t co0,
                                       int32_t ncols, const rsq_rq *rq, int8_t *y,
                                       int32_t ldy) {
  const int32x4_t b0 = vld1q_s32(rq->bias + co0), b1 = vld1q_s32(rq->bias + co0 + 4);
  const int32x4_t m0 = vld1q_s32(rq->mult + co0), m1 = vld1q_s32(rq->mult + co0 + 4);
  const int32x4_t l0 = vld1q_s32(rq->lshift + co0), l1 = vld1q_s32(rq->lshift + co0 + 4);
  const int32x4_t r0 = vnegq_s32(vld1q_s32(rq->rshift + co0));
  const int32x4_t r1 = vnegq_s32(vld1q_s32(rq->rshift + co0 + 4));
  const int8x8_t lo = vdup_n_s8((int8_t)rq->lo), hi = vdup_n_s8((int8_t)rq->hi);
  for (int32_t r = 0; r < rows; r++) {
    int32x4_t a0 = vaddq_s32(vld1q_s32(tile + 8 * r), b0);
    int32x4_t a1 = vaddq_s32(vld1q_s32(tile + 8 * r + 4), b1);
    a0 = vrshlq_s32(vqrdmulhq_s32(vqshlq_s32(a0, l0), m0), r0);
    a1 = vrshlq_s32(vqrdmulhq_s32(vqshlq_s32(a1, l1), m1), r1);
    int8x8_t q = vqmovn_s16(vcombine_s16(vqmovn_s32(a0), vqmovn_s32(a1)));
    q = vmin_s8(vmax_s8(q, lo), hi);
    int8_t *yr = y + (size_t)r * ldy + co0;
    if (ncols == 8) {
      vst1_s8(yr, q);
    } else {
      int8_t tmp[8];
      vst1_s8(tmp, q);
      memcpy(yr, tmp, (size_t)ncols);
    }
  }
}

#endif /* RSQ_NEON_COMMON_H */
