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
#if (defined(__ARM_NEON) || defined(__ARM_NEON__)) && !defined(__aarch64__)
  /* ARMv7: the whole loop in one asm block with fixed registers, so that each 16-deep step is
   * exactly 4 loads (vld1.8 of 2 and 4 d registers) + 8 vmull + 8 vmlal + 8 vpadal + subs/bne:
   * 30 instructions per 128 MACs (GCC's version split the loads and added address arithmetic).
   * q0-q3 / q4-q7: int32 accumulators of rows 0 / 1; q8, q9: rows; q10, q11: two columns of
   * weights; q14, q15: int16 products. The row sums end in q0 / q4. */
  int32_t n16 = nsteps / 2, odd = nsteps & 1;
  int32x4_t r0, r1;
  __asm__ __volatile__(
      "vmov.i32 q0, #0\n\tvmov.i32 q1, #0\n\tvmov.i32 q2, #0\n\tvmov.i32 q3, #0\n\t"
      "vmov.i32 q4, #0\n\tvmov.i32 q5, #0\n\tvmov.i32 q6, #0\n\tvmov.i32 q7, #0\n\t"
      "cmp %[n], #0\n\t"
      "beq 2f\n"
      "1:\n\t"
      "vld1.8 {d16-d17}, [%[a0]]!\n\t"
      "vld1.8 {d18-d19}, [%[a1]]!\n\t"
      "vld1.8 {d20-d23}, [%[b]]!\n\t"
      "vmull.s8 q14, d16, d20\n\t"
      "vmull.s8 q15, d18, d20\n\t"
      "vmlal.s8 q14, d17, d21\n\t"
      "vmlal.s8 q15, d19, d21\n\t"
      "vpadal.s16 q0, q14\n\t"
      "vpadal.s16 q4, q15\n\t"
      "vmull.s8 q14, d16, d22\n\t"
      "vmull.s8 q15, d18, d22\n\t"
      "vmlal.s8 q14, d17, d23\n\t"
      "vmlal.s8 q15, d19, d23\n\t"
      "vpadal.s16 q1, q14\n\t"
      "vpadal.s16 q5, q15\n\t"
      "vld1.8 {d20-d23}, [%[b]]!\n\t"
      "vmull.s8 q14, d16, d20\n\t"
      "vmull.s8 q15, d18, d20\n\t"
      "vmlal.s8 q14, d17, d21\n\t"
      "vmlal.s8 q15, d19, d21\n\t"
      "vpadal.s16 q2, q14\n\t"
      "vpadal.s16 q6, q15\n\t"
      "vmull.s8 q14, d16, d22\n\t"
      "vmull.s8 q15, d18, d22\n\t"
      "vmlal.s8 q14, d17, d23\n\t"
      "vmlal.s8 q15, d19, d23\n\t"
      "vpadal.s16 q3, q14\n\t"
      "vpadal.s16 q7, q15\n\t"
      "subs %[n], %[n], #1\n\t"
      "bne 1b\n"
      "2:\n\t"
      "cmp %[odd], #0\n\t"
      "beq 3f\n\t" /* trailing 8-deep step: weights [4][8] */
      "vld1.8 {d16}, [%[a0]]\n\t"
      "vld1.8 {d18}, [%[a1]]\n\t"
      "vld1.8 {d20-d23}, [%[b]]\n\t"
      "vmull.s8 q14, d16, d20\n\t"
      "vmull.s8 q15, d18, d20\n\t"
      "vpadal.s16 q0, q14\n\t"
      "vpadal.s16 q4, q15\n\t"
      "vmull.s8 q14, d16, d21\n\t"
      "vmull.s8 q15, d18, d21\n\t"
      "vpadal.s16 q1, q14\n\t"
      "vpadal.s16 q5, q15\n\t"
      "vmull.s8 q14, d16, d22\n\t"
      "vmull.s8 q15, d18, d22\n\t"
      "vpadal.s16 q2, q14\n\t"
      "vpadal.s16 q6, q15\n\t"
      "vmull.s8 q14, d16, d23\n\t"
      "vmull.s8 q15, d18, d23\n\t"
      "vpadal.s16 q3, q14\n\t"
      "vpadal.s16 q7, q15\n"
      "3:\n\t"
      "vpadd.i32 d0, d0, d1\n\tvpadd.i32 d2, d2, d3\n\t"
      "vpadd.i32 d4, d4, d5\n\tvpadd.i32 d6, d6, d7\n\t"
      "vpadd.i32 d0, d0, d2\n\tvpadd.i32 d1, d4, d6\n\t"
      "vpadd.i32 d8, d8, d9\n\tvpadd.i32 d10, d10, d11\n\t"
      "vpadd.i32 d12, d12, d13\n\tvpadd.i32 d14, d14, d15\n\t"
      "vpadd.i32 d8, d8, d10\n\tvpadd.i32 d9, d12, d14\n\t"
      "vmov %q[r0], q0\n\t"
      "vmov %q[r1], q4\n\t"
      : [a0] "+r"(a0), [a1] "+r"(a1), [b] "+r"(b), [n] "+r"(n16), [r0] "=w"(r0), [r1] "=w"(r1)
      : [odd] "r"(odd)
      : "cc", "memory", "d0", "d1", "d2", "d3", "d4", "d5", "d6", "d7", "d8", "d9", "d10", "d11",
        "d12", "d13", "d14", "d15", "d16", "d17", "d18", "d19", "d20", "d21", "d22", "d23", "d28",
        "d29", "d30", "d31");
  out[0] = r0;
  out[1] = r1;
#else
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
#endif /* ARMv7 asm */
}

/* 2x3 micro-kernel with `chain`-deep int16 accumulation:
 *   out[r*ldo + c] = sum_k a_r[k] * b_c[k], r = 0, 1, c = 0..2.
 * a_r: 8*nsteps int8 contiguous; b packed [nsteps][3][8] (rsq_triple_index).
 * Every (row, column) pair owns an int16x8 accumulator (vmull.s8 then chain-1 vmlal.s8),
 * folded into int32 by vpadal.s16 once per chain; the caller guarantees
 * chain * max|a| * max|b| <= 32767. Per 8-deep step: 3 loads (1 d per row, the 3 weight
 * columns in ONE vld1.8 {d,d,d}) + 6 multiplies = 9 instructions per 48 MACs; per chain 6
 * vpadal + subs/bne. 12 int16/int32 accumulators + 2.5 q operands: 14.5 of 16 q.
 * Used by the GEMM (chain 12 for |x| <= 63, |w| <= 42; shorter chains for wider ranges) and
 * by the Winograd's k%3 leftover taps (the GEMM's chain).
 * Names: rsq_ukr_<rows>x<columns>_chain<depth>, one instance per chain depth (12, 6, 4, 2),
 * and rsq_ukr_2x3 picks one. The depth is spelled out: in XNNPACK's names (2x8c4) a "c<N>"
 * suffix is the reduction blocking, not an accumulation depth. */
#if (defined(__ARM_NEON) || defined(__ARM_NEON__)) && !defined(__aarch64__)
#define RSQ_2X3_STEP(OP)                                                            \
  "vld1.8 {d24}, [%[a0]]!\n\t"                                                       \
  "vld1.8 {d25}, [%[a1]]!\n\t"                                                       \
  "vld1.8 {d26-d28}, [%[b]]!\n\t"                                                    \
  OP " q6, d24, d26\n\t" OP " q7, d24, d27\n\t" OP " q8, d24, d28\n\t"              \
  OP " q9, d25, d26\n\t" OP " q10, d25, d27\n\t" OP " q11, d25, d28\n\t"
#define RSQ_2X3_PADAL                                                               \
  "vpadal.s16 q0, q6\n\tvpadal.s16 q1, q7\n\tvpadal.s16 q2, q8\n\t"                \
  "vpadal.s16 q3, q9\n\tvpadal.s16 q4, q10\n\tvpadal.s16 q5, q11\n\t"
#define RSQ_DEF_UKR_2X3(CH)                                                          \
  RSQ_INLINE void rsq_ukr_2x3_chain##CH(const int8_t *a0, const int8_t *a1, const int8_t *b,    \
                                    int32_t nsteps, int32_t *o0, int32_t ldo) {             \
    int32_t nf = nsteps / CH, nt = nsteps % CH;                                     \
    int32_t *o1 = o0 + ldo;                                                          \
    __asm__ __volatile__(                                                            \
        "vmov.i32 q0, #0\n\tvmov.i32 q1, #0\n\tvmov.i32 q2, #0\n\t"                 \
        "vmov.i32 q3, #0\n\tvmov.i32 q4, #0\n\tvmov.i32 q5, #0\n\t"                 \
        "cmp %[nf], #0\n\tbeq 2f\n"                                                  \
        "1:\n\t" RSQ_2X3_STEP("vmull.s8") ".rept " #CH " - 1\n\t" RSQ_2X3_STEP("vmlal.s8") \
        ".endr\n\t" RSQ_2X3_PADAL "subs %[nf], %[nf], #1\n\tbne 1b\n"                 \
        "2:\n\tcmp %[nt], #0\n\tbeq 4f\n\t" RSQ_2X3_STEP("vmull.s8")                 \
        "subs %[nt], %[nt], #1\n\tbeq 3f\n"                                          \
        "5:\n\t" RSQ_2X3_STEP("vmlal.s8") "subs %[nt], %[nt], #1\n\tbne 5b\n"          \
        "3:\n\t" RSQ_2X3_PADAL "\n"                                                    \
        "4:\n\t"                                                                     \
        "vpadd.i32 d0, d0, d1\n\tvpadd.i32 d2, d2, d3\n\tvpadd.i32 d4, d4, d5\n\t"  \
        "vpadd.i32 d0, d0, d2\n\tvpadd.i32 d4, d4, d4\n\t"                           \
        "vpadd.i32 d6, d6, d7\n\tvpadd.i32 d8, d8, d9\n\tvpadd.i32 d10, d10, d11\n\t" \
        "vpadd.i32 d6, d6, d8\n\tvpadd.i32 d10, d10, d10\n\t"                        \
        "vst1.32 {d0}, [%[o0]]!\n\tvst1.32 {d4[0]}, [%[o0]]\n\t"                     \
        "vst1.32 {d6}, [%[o1]]!\n\tvst1.32 {d10[0]}, [%[o1]]\n\t"                    \
        : [a0] "+r"(a0), [a1] "+r"(a1), [b] "+r"(b), [nf] "+r"(nf), [nt] "+r"(nt),    \
          [o0] "+r"(o0), [o1] "+r"(o1)                                               \
        :                                                                            \
        : "cc", "memory", "d0", "d1", "d2", "d3", "d4", "d5", "d6", "d7", "d8", "d9", \
          "d10", "d11", "d12", "d13", "d14", "d15", "d16", "d17", "d18", "d19", "d20",   \
          "d21", "d22", "d23", "d24", "d25", "d26", "d27", "d28");                   \
  }
#else
#define RSQ_DEF_UKR_2X3(CH)                                                          \
  RSQ_INLINE void rsq_ukr_2x3_chain##CH(const int8_t *a0, const int8_t *a1, const int8_t *b,    \
                                    int32_t nsteps, int32_t *o0, int32_t ldo) {             \
    int32x4_t c[6];                                                                  \
    for (int i = 0; i < 6; i++) c[i] = vdupq_n_s32(0);                                \
    for (int32_t s = 0; s < nsteps; s += CH) {                                       \
      const int32_t n = nsteps - s < CH ? nsteps - s : CH;                           \
      int16x8_t p[6];                                                                \
      for (int32_t i = 0; i < n; i++) {                                              \
        const int8x8_t x0 = vld1_s8(a0), x1 = vld1_s8(a1);                           \
        const int8x8_t w[3] = {vld1_s8(b), vld1_s8(b + 8), vld1_s8(b + 16)};         \
        a0 += 8; a1 += 8; b += 24;                                                   \
        for (int cc = 0; cc < 3; cc++) {                                             \
          p[cc] = i ? vmlal_s8(p[cc], x0, w[cc]) : vmull_s8(x0, w[cc]);             \
          p[3 + cc] = i ? vmlal_s8(p[3 + cc], x1, w[cc]) : vmull_s8(x1, w[cc]);     \
        }                                                                            \
      }                                                                              \
      for (int i = 0; i < 6; i++) c[i] = vpadalq_s16(c[i], p[i]);                    \
    }                                                                                \
    for (int i = 0; i < 6; i++) {                                                    \
      int32x2_t h = vpadd_s32(vget_low_s32(c[i]), vget_high_s32(c[i]));             \
      o0[(i / 3) * ldo + i % 3] = vget_lane_s32(vpadd_s32(h, h), 0);                 \
    }                                                                                \
  }
#endif /* ARMv7 asm */
RSQ_DEF_UKR_2X3(12)
RSQ_DEF_UKR_2X3(6)
RSQ_DEF_UKR_2X3(4)
RSQ_DEF_UKR_2X3(2)

/* chain-dispatching wrapper: uses the largest instantiated chain <= chain (>= 2) */
RSQ_INLINE void rsq_ukr_2x3(const int8_t *a0, const int8_t *a1, const int8_t *b, int32_t nsteps,
                            int32_t chain, int32_t *o0, int32_t ldo) {
  if (chain >= 12) rsq_ukr_2x3_chain12(a0, a1, b, nsteps, o0, ldo);
  else if (chain >= 6) rsq_ukr_2x3_chain6(a0, a1, b, nsteps, o0, ldo);
  else if (chain >= 4) rsq_ukr_2x3_chain4(a0, a1, b, nsteps, o0, ldo);
  else rsq_ukr_2x3_chain2(a0, a1, b, nsteps, o0, ldo);
}

/* packed offset of (column c of a 3-column triple, reduction index kk) for rsq_ukr_2x3 */
static inline size_t rsq_triple_index(int32_t c, int32_t kk) {
  return (size_t)(kk / 8) * 24 + c * 8 + kk % 8;
}

/* packed offset of (column c of a 4-column quad, reduction index kk) for rsq_ukr_2x4 */
static inline size_t rsq_quad_index(int32_t K, int32_t c, int32_t kk) {
  const int32_t full = K / 16 * 16;
  return kk < full ? (size_t)(kk / 16) * 64 + c * 16 + kk % 16
                   : (size_t)full * 4 + c * 8 + (kk - full);
}

/* Requantize rows of an int32 tile [rows][ldt] (columns co0..co0+7) and store int8 rows of y.
 * Exactly rsq.h steps 0-3: vqshl (saturating left shift, shift < 0), vqrdmulh (SRDHM),
 * vrshl by -shift (rounding right shift), saturating narrows, clamp. */
RSQ_INLINE void rsq_neon_requant_store(const int32_t *tile, int32_t ldt, int32_t rows,
                                       int32_t co0, int32_t ncols, const rsq_rq *rq, int8_t *y,
                                       int32_t ldy) {
  if (rq->acc) { /* int32 output mode (rsq_rq): acc + bias, no requantization */
    for (int32_t r = 0; r < rows; r++)
      rsq_store_acc_row(rq, tile + ldt * r, rq->bias + co0, y + (size_t)r * ldy + co0, co0, ncols);
    return;
  }
  const int32x4_t b0 = vld1q_s32(rq->bias + co0), b1 = vld1q_s32(rq->bias + co0 + 4);
  const int32x4_t m0 = vld1q_s32(rq->mult + co0), m1 = vld1q_s32(rq->mult + co0 + 4);
  const int32x4_t l0 = vld1q_s32(rq->lshift + co0), l1 = vld1q_s32(rq->lshift + co0 + 4);
  const int32x4_t r0 = vnegq_s32(vld1q_s32(rq->rshift + co0));
  const int32x4_t r1 = vnegq_s32(vld1q_s32(rq->rshift + co0 + 4));
  const int8x8_t lo = vdup_n_s8((int8_t)rq->lo), hi = vdup_n_s8((int8_t)rq->hi);
  for (int32_t r = 0; r < rows; r++) {
    int32x4_t a0 = vaddq_s32(vld1q_s32(tile + ldt * r), b0);
    int32x4_t a1 = vaddq_s32(vld1q_s32(tile + ldt * r + 4), b1);
    a0 = vrshlq_s32(vqrdmulhq_s32(vqshlq_s32(a0, l0), m0), r0);
    a1 = vrshlq_s32(vqrdmulhq_s32(vqshlq_s32(a1, l1), m1), r1);
    int8x8_t q = vqmovn_s16(vcombine_s16(vqmovn_s32(a0), vqmovn_s32(a1)));
    q = vmin_s8(vmax_s8(q, lo), hi);
    int8_t *yr = y + (size_t)r * ldy + co0;
    if (ncols == 8) {
      vst1_s8(yr, q);
    } else if (ncols == 4) { /* second half of a 12-column group */
      const int32_t v = vget_lane_s32(vreinterpret_s32_s8(q), 0);
      memcpy(yr, &v, 4);
    } else {
      int8_t tmp[8];
      vst1_s8(tmp, q);
      memcpy(yr, tmp, (size_t)ncols);
    }
  }
}

/* Winograd F(2,3) input transform of one tile, every chunk and channel: V = B^T d into
 * vbuf[tile][xi][c * cin_p + ci], d the 4 xpad rows 2 tile + 3c .. + 3 (|d| <= 63 -> |V| <= 126, no
 * wrap); cin_p a multiple of 8. Shared by wino23_s8_neon.c and gemm_s8_dot.c. */
RSQ_INLINE void rsq_wino23_input_tile(const rsq_geom *g, const int8_t *xpad, int8_t *vbuf, int32_t tile) {
  const int32_t cin_p = g->cin_p, nch = g->k / 3, KW = nch * cin_p;
  for (int32_t c = 0; c < nch; c++) {
    const int8_t *d = xpad + (size_t)(2 * tile + 3 * c) * cin_p;
    int8_t *v0 = vbuf + (size_t)tile * 4 * KW + (size_t)c * cin_p, *v1 = v0 + KW, *v2 = v1 + KW, *v3 = v2 + KW;
    int32_t ci = 0;
    for (; ci + 16 <= cin_p; ci += 16) {
      int8x16_t d0 = vld1q_s8(d + ci), d1 = vld1q_s8(d + cin_p + ci);
      int8x16_t d2 = vld1q_s8(d + 2 * cin_p + ci), d3 = vld1q_s8(d + 3 * cin_p + ci);
      vst1q_s8(v0 + ci, vsubq_s8(d0, d2)); /* B^T row 0: d0 - d2 */
      vst1q_s8(v1 + ci, vaddq_s8(d1, d2)); /* row 1: d1 + d2 */
      vst1q_s8(v2 + ci, vsubq_s8(d2, d1)); /* row 2: d2 - d1 */
      vst1q_s8(v3 + ci, vsubq_s8(d1, d3)); /* row 3: d1 - d3 */
    }
    for (; ci < cin_p; ci += 8) {
      int8x8_t d0 = vld1_s8(d + ci), d1 = vld1_s8(d + cin_p + ci);
      int8x8_t d2 = vld1_s8(d + 2 * cin_p + ci), d3 = vld1_s8(d + 3 * cin_p + ci);
      vst1_s8(v0 + ci, vsub_s8(d0, d2));
      vst1_s8(v1 + ci, vadd_s8(d1, d2));
      vst1_s8(v2 + ci, vsub_s8(d2, d1));
      vst1_s8(v3 + ci, vsub_s8(d1, d3));
    }
  }
}

/* The Winograd F(2,3) output transform A''^T of four int32 products (4 columns): y2_0 = 2 m0 + m1 +
 * m2, y2_1 = m1 - m2 - 2 m3; the conv outputs are y2 >> 1 (exact). Rows to y0 and y1. */
RSQ_INLINE void rsq_wino23_output_q(int32x4_t m0, int32x4_t m1, int32x4_t m2, int32x4_t m3, int32_t *y0, int32_t *y1) {
  const int32x4_t s12 = vaddq_s32(m1, m2), d12 = vsubq_s32(m1, m2);
  vst1q_s32(y0, vshrq_n_s32(vaddq_s32(vshlq_n_s32(m0, 1), s12), 1));
  vst1q_s32(y1, vshrq_n_s32(vsubq_s32(d12, vshlq_n_s32(m3, 1)), 1));
}

#endif /* RSQ_NEON_COMMON_H */
