/* gemm_s8_dot.c - INT8 Conv1D kernels for AArch64 with the ARMv8.2 dot-product instructions
 * (SDOT: four int8 x int8 products summed into each int32 lane). Built with
 * -march=armv8.2-a+dotprod on AArch64 only and chosen at run time (RSQ_IMPL_DOT, when the CPU
 * reports asimddp), so the same binary runs on cores without it (Cortex-A53/A73: RSQ_IMPL_NEON).
 *
 * One micro-kernel serves both algorithms: 4 rows x 8 columns of int32, the A rows contiguous
 * (K int8 each, K a multiple of 16), B packed per 8-column group as [K/4][8][4] so that one
 * 16-byte load holds 4 k-values of 4 columns. Per 16 k: 4 row loads, 8 B loads, 32 SDOT (by
 * lane: the row's 4 k-values broadcast from its 16-byte vector), 512 MACs.
 *
 * GEMM (implicit, as gemm_s8_neon.c): row t of A is xpad + t*stride*cin_p, K = k*cin_p.
 * Winograd F(2,3) (the transforms of wino23_s8_neon.c: B^T, G'' = G' with rows 0 and 3 halved,
 * A''^T; y = A''^T [(G'' g) .* (B^T d)] >> 1): V = B^T d per tile and chunk into vbuf
 * [tile][xi][nch*cin_p] (|V| <= 126 with |d| <= 63), then per block of 4 tiles x 8 columns the
 * four products M_xi = V_xi U_xi with the micro-kernel (rows = tiles), the output transform to
 * 8 output rows, the k % 3 leftover taps as a spatial GEMM into the same tile, one requantize
 * (or float epilogue) per output. With SDOT the products need no int16 chains: the ranges only
 * matter for the int8 transforms. */
#include <arm_neon.h>
#include <string.h>

#include "internal.h"
#include "neon_common.h"

#define DOT_LANE(acc0, acc1, b0, b1, x, l)       \
  do {                                           \
    acc0 = vdotq_laneq_s32(acc0, b0, x, l);      \
    acc1 = vdotq_laneq_s32(acc1, b1, x, l);      \
  } while (0)

/* c[2r], c[2r+1]: row r, columns 0-3 and 4-7 (overwritten) */
static inline void dot_4x8(const int8_t *a0, const int8_t *a1, const int8_t *a2, const int8_t *a3,
                           const int8_t *b, int32_t K, int32x4_t c[8]) {
  int32x4_t c00 = vdupq_n_s32(0), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
  for (int32_t kk = 0; kk < K; kk += 16) {
    const int8x16_t x0 = vld1q_s8(a0 + kk), x1 = vld1q_s8(a1 + kk), x2 = vld1q_s8(a2 + kk),
                    x3 = vld1q_s8(a3 + kk);
    int8x16_t lo = vld1q_s8(b), hi = vld1q_s8(b + 16);
    DOT_LANE(c00, c01, lo, hi, x0, 0);
    DOT_LANE(c10, c11, lo, hi, x1, 0);
    DOT_LANE(c20, c21, lo, hi, x2, 0);
    DOT_LANE(c30, c31, lo, hi, x3, 0);
    lo = vld1q_s8(b + 32);
    hi = vld1q_s8(b + 48);
    DOT_LANE(c00, c01, lo, hi, x0, 1);
    DOT_LANE(c10, c11, lo, hi, x1, 1);
    DOT_LANE(c20, c21, lo, hi, x2, 1);
    DOT_LANE(c30, c31, lo, hi, x3, 1);
    lo = vld1q_s8(b + 64);
    hi = vld1q_s8(b + 80);
    DOT_LANE(c00, c01, lo, hi, x0, 2);
    DOT_LANE(c10, c11, lo, hi, x1, 2);
    DOT_LANE(c20, c21, lo, hi, x2, 2);
    DOT_LANE(c30, c31, lo, hi, x3, 2);
    lo = vld1q_s8(b + 96);
    hi = vld1q_s8(b + 112);
    DOT_LANE(c00, c01, lo, hi, x0, 3);
    DOT_LANE(c10, c11, lo, hi, x1, 3);
    DOT_LANE(c20, c21, lo, hi, x2, 3);
    DOT_LANE(c30, c31, lo, hi, x3, 3);
    b += 128;
  }
  c[0] = c00, c[1] = c01, c[2] = c10, c[3] = c11, c[4] = c20, c[5] = c21, c[6] = c30, c[7] = c31;
}

/* ---------------------------------------------------------------- GEMM */
/* Packed B of the SDOT and SMMLA kernels: per 8-column group, blocks of kb k-values ([K/kb][8][kb]:
 * kb = 4 for SDOT, 8 for SMMLA), element (kk, c) at ((kk/kb)*8 + c)*kb + kk%kb. */
static inline size_t kb_index(int32_t kk, int32_t c, int32_t kb) { return ((size_t)(kk / kb) * 8 + c) * kb + kk % kb; }

void rsq_pack_gemm_kb(int32_t cin, int32_t cout, int32_t k, int32_t cin_p, int32_t kb, const int8_t *w, int8_t *packed) {
  const int32_t K = k * cin_p, cout_p = RSQ_ROUND_UP(cout, 8);
  for (int32_t cg = 0; cg < cout_p / 8; cg++)
    for (int32_t c = 0; c < 8; c++)
      for (int32_t kk = 0; kk < K; kk++) {
        const int32_t j = kk / cin_p, ci = kk % cin_p, co = 8 * cg + c;
        packed[(size_t)cg * 8 * K + kb_index(kk, c, kb)] = (co < cout && ci < cin) ? w[((size_t)co * cin + ci) * k + j] : 0;
      }
}

/* The Winograd's: per column group the four U_xi = G'' g of the k/3 chunks, then the k%3 leftover taps. */
void rsq_pack_wino23_kb(int32_t cin, int32_t cout, int32_t k, int32_t cin_p, int32_t kb, const int8_t *w, int8_t *packed) {
  const int32_t nch = k / 3, rem = k % 3, KW = nch * cin_p, KL = rem * cin_p, cout_p = RSQ_ROUND_UP(cout, 8);
  const size_t group_bytes = (size_t)8 * (4 * KW + KL);
  for (int32_t cg = 0; cg < cout_p / 8; cg++) {
    int8_t *dst = packed + (size_t)cg * group_bytes;
    for (int32_t xi = 0; xi < 4; xi++)
      for (int32_t c = 0; c < 8; c++)
        for (int32_t kk = 0; kk < KW; kk++) {
          const int32_t ch = kk / cin_p, ci = kk % cin_p, co = 8 * cg + c;
          const int32_t u = (co < cout && ci < cin) ? rsq_wino23_u(w + ((size_t)co * cin + ci) * k + 3 * ch, xi) : 0;
          dst[(size_t)xi * 8 * KW + kb_index(kk, c, kb)] = (int8_t)u;
        }
    dst += (size_t)32 * KW;
    for (int32_t c = 0; c < 8; c++)
      for (int32_t kk = 0; kk < KL; kk++) {
        const int32_t j = 3 * nch + kk / cin_p, ci = kk % cin_p, co = 8 * cg + c;
        dst[kb_index(kk, c, kb)] = (co < cout && ci < cin) ? w[((size_t)co * cin + ci) * k + j] : 0;
      }
  }
}

size_t rsq_gemm_s8_dot_packed_size(int32_t cin, int32_t cout, int32_t k) {
  return (size_t)RSQ_ROUND_UP(cout, 8) * k * RSQ_ROUND_UP(cin, 16);
}

void rsq_gemm_s8_dot_pack(int32_t cin, int32_t cout, int32_t k, const int8_t *w, int8_t *packed) {
  rsq_pack_gemm_kb(cin, cout, k, RSQ_ROUND_UP(cin, 16), 4, w, packed);
}

void rsq_gemm_s8_dot(const rsq_geom *g, const int8_t *xpad, const int8_t *packed, const rsq_rq *rq, int8_t *y,
                     int32_t threads) {
  assert(g->cin_p % 16 == 0 && threads >= 1);
  const int32_t K = g->k * g->cin_p, ncg = RSQ_ROUND_UP(g->cout, 8) / 8, nrb = (g->t_out + 3) / 4;
  const size_t lda = (size_t)g->stride * g->cin_p;
  (void)threads;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int32_t item = 0; item < ncg * nrb; item++) {
    const int32_t cg = item / nrb, rb = item % nrb, t0 = rb * 4, co0 = cg * 8;
    const int32_t rows = g->t_out - t0 < 4 ? g->t_out - t0 : 4;
    const int8_t *a[4];
    for (int32_t r = 0; r < 4; r++) a[r] = xpad + (size_t)(t0 + (r < rows ? r : rows - 1)) * lda;
    int32x4_t c[8];
    dot_4x8(a[0], a[1], a[2], a[3], packed + (size_t)cg * 8 * K, K, c);
    int32_t tile[4 * 8];
    for (int32_t r = 0; r < 4; r++) {
      vst1q_s32(tile + 8 * r, c[2 * r]);
      vst1q_s32(tile + 8 * r + 4, c[2 * r + 1]);
    }
    const int32_t nc = g->cout - co0 < 8 ? g->cout - co0 : 8;
    rsq_neon_requant_store(tile, 8, rows, co0, nc, rq, y + (size_t)t0 * g->cout, g->cout);
  }
}

/* ---------------------------------------------------------------- Winograd F(2,3) */
size_t rsq_wino23_s8_dot_packed_size(int32_t cin, int32_t cout, int32_t k) {
  return (size_t)RSQ_ROUND_UP(cout, 8) * (4 * (k / 3) + k % 3) * RSQ_ROUND_UP(cin, 16);
}

void rsq_wino23_s8_dot_pack(int32_t cin, int32_t cout, int32_t k, const int8_t *w, int8_t *packed) {
  rsq_pack_wino23_kb(cin, cout, k, RSQ_ROUND_UP(cin, 16), 4, w, packed);
}

static int32_t dot_tiles(int32_t t_out) { return RSQ_ROUND_UP((t_out + 1) / 2, 4); }

size_t rsq_wino23_s8_dot_vsize(int32_t cin, int32_t k, int32_t t_out) {
  return (size_t)dot_tiles(t_out) * 4 * (k / 3) * RSQ_ROUND_UP(cin, 16);
}

void rsq_wino23_s8_dot(const rsq_geom *g, const int8_t *xpad, const int8_t *packed, int8_t *vbuf, const rsq_rq *rq,
                       int8_t *y, int32_t threads) {
  assert(g->stride == 1 && g->k >= 3 && g->cin_p % 16 == 0 && threads >= 1);
  const int32_t cin_p = g->cin_p, nch = g->k / 3, rem = g->k % 3;
  const int32_t KW = nch * cin_p, KL = rem * cin_p;
  const size_t group_bytes = (size_t)8 * (4 * KW + KL);
  const int32_t ntr = dot_tiles(g->t_out), nrb = ntr / 4, ncg = RSQ_ROUND_UP(g->cout, 8) / 8;
  (void)threads;
#pragma omp parallel num_threads(threads)
  {
#pragma omp for schedule(static)
    for (int32_t tile = 0; tile < ntr; tile++) rsq_wino23_input_tile(g, xpad, vbuf, tile);
    /* implicit barrier: all of V is ready */
#pragma omp for schedule(static)
    for (int32_t item = 0; item < ncg * nrb; item++) {
      const int32_t cg = item / nrb, rb = item % nrb, t0 = rb * 8, co0 = cg * 8;
      const int8_t *v = vbuf + (size_t)rb * 4 * 4 * KW; /* tile 4rb + r at v + r*4*KW */
      const int8_t *u = packed + (size_t)cg * group_bytes;
      int32x4_t m[4][8];
      for (int32_t xi = 0; xi < 4; xi++)
        dot_4x8(v + xi * KW, v + 4 * KW + xi * KW, v + 8 * KW + xi * KW, v + 12 * KW + xi * KW,
                u + (size_t)xi * 8 * KW, KW, m[xi]);
      int32_t tile[8 * 8];
      for (int32_t r = 0; r < 4; r++) /* tile r -> output rows 2r, 2r+1 */
        for (int32_t h = 0; h < 2; h++) {
          rsq_wino23_output_q(m[0][2 * r + h], m[1][2 * r + h], m[2][2 * r + h], m[3][2 * r + h],
                              tile + 16 * r + 4 * h, tile + 16 * r + 8 + 4 * h);
        }
      if (rem) { /* leftover taps: spatial GEMM over the 8 output rows into the same tile */
        const int8_t *a = xpad + (size_t)(t0 + 3 * nch) * cin_p;
        const int8_t *ul = u + (size_t)32 * KW;
        for (int32_t half = 0; half < 2; half++) {
          const int8_t *ah = a + (size_t)4 * half * cin_p;
          int32x4_t l[8];
          dot_4x8(ah, ah + cin_p, ah + 2 * (size_t)cin_p, ah + 3 * (size_t)cin_p, ul, KL, l);
          for (int32_t r = 0; r < 4; r++)
            for (int32_t h = 0; h < 2; h++) {
              int32_t *dst = tile + 8 * (4 * half + r) + 4 * h;
              vst1q_s32(dst, vaddq_s32(vld1q_s32(dst), l[2 * r + h]));
            }
        }
      }
      const int32_t rows = g->t_out - t0 < 8 ? g->t_out - t0 : 8;
      const int32_t nc = g->cout - co0 < 8 ? g->cout - co0 : 8;
      if (rows > 0) rsq_neon_requant_store(tile, 8, rows, co0, nc, rq, y + (size_t)t0 * g->cout, g->cout);
    }
  }
}
