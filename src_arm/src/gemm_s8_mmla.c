/* gemm_s8_mmla.c - INT8 Conv1D kernels for AArch64 with the ARMv8.6 int8 matrix multiply
 * (I8MM: SMMLA multiplies a 2x8 int8 matrix by the transpose of another 2x8 and adds the 2x2
 * int32 product, 32 MACs per instruction where SDOT does 16). Built with
 * -march=armv8.2-a+dotprod+i8mm on AArch64 only and chosen at run time (RSQ_IMPL_I8MM, when the
 * CPU reports i8mm: Cortex-A510/A710/X2 and later), so the same binary runs everywhere.
 *
 * One micro-kernel serves both algorithms: 8 rows x 8 columns of int32 in 16 registers of 2x2
 * blocks, K a multiple of 8, the rows given as 4 row pairs interleaved in memory ([K/8][2][8]: one
 * 16-byte load per pair and 8 k); B is packed per 8-column group as [K/8][8][8] (column c's 8
 * k-values at ((kk/8)*8 + c)*8), so one 16-byte load holds a column pair. Per 8 k: 4 loads for A,
 * 4 for B, 16 SMMLA: 24 instructions per 512 MACs (the SDOT kernel: 44). A variant on 8 separate
 * rows (two 8-byte loads and an insert per pair: 32 per 512 MACs) serves the leftover taps.
 *
 * GEMM: row t of A is xpad + t*stride*cin_p, K = k*cin_p (as gemm_s8_dot.c), copied once into
 * row pairs (t_out*K bytes, about the Winograd's V), which every column group then reads.
 * Winograd F(2,3): the transforms of gemm_s8_dot.c (V = B^T d, |V| <= 126), written per tile pair
 * with the two tiles' rows interleaved (mmla_input_tile), blocks of 8 tiles (16 output rows) x 8
 * columns: the four products M_xi = V_xi U_xi with the micro-kernel (rows = tiles), the output
 * transform A''^T, the k % 3 leftover taps as a spatial GEMM into the same block, one requantize
 * per output. */
#include <arm_neon.h>
#include <string.h>

#include "internal.h"
#include "neon_common.h"

/* acc[i][j] = [r0 c0, r0 c1, r1 c0, r1 c1] of rows 2i, 2i+1 and columns 2j, 2j+1 ->
 * c[2r], c[2r+1]: row r, columns 0-3 and 4-7 */
static inline void mmla_unzip(int32x4_t acc[4][4], int32x4_t c[16]) {
  for (int i = 0; i < 4; i++)
    for (int h = 0; h < 2; h++) {
      const int64x2_t p = vreinterpretq_s64_s32(acc[i][2 * h]), q = vreinterpretq_s64_s32(acc[i][2 * h + 1]);
      c[4 * i + h] = vreinterpretq_s32_s64(vzip1q_s64(p, q));     /* row 2i, columns 4h..4h+3 */
      c[4 * i + 2 + h] = vreinterpretq_s32_s64(vzip2q_s64(p, q)); /* row 2i+1 */
    }
}

#define MMLA_ROW_PAIR(i, x)                      \
  do {                                           \
    acc[i][0] = vmmlaq_s32(acc[i][0], x, b0);    \
    acc[i][1] = vmmlaq_s32(acc[i][1], x, b1);    \
    acc[i][2] = vmmlaq_s32(acc[i][2], x, b2);    \
    acc[i][3] = vmmlaq_s32(acc[i][3], x, b3);    \
  } while (0)

/* Rows a[0..7] (K int8 each, anywhere) times one packed column group (overwrites c). */
static inline void mmla_8x8(const int8_t *const a[8], const int8_t *b, int32_t K, int32x4_t c[16]) {
  int32x4_t acc[4][4];
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++) acc[i][j] = vdupq_n_s32(0);
  for (int32_t kk = 0; kk < K; kk += 8) {
    const int8x16_t b0 = vld1q_s8(b), b1 = vld1q_s8(b + 16), b2 = vld1q_s8(b + 32), b3 = vld1q_s8(b + 48);
    for (int i = 0; i < 4; i++) MMLA_ROW_PAIR(i, vcombine_s8(vld1_s8(a[2 * i] + kk), vld1_s8(a[2 * i + 1] + kk)));
    b += 64;
  }
  mmla_unzip(acc, c);
}

/* The same for rows given as 4 interleaved row pairs ([K/8][2][8] each: one 16-byte load). */
static inline void mmla_8x8_pairs(const int8_t *const ap[4], const int8_t *b, int32_t K, int32x4_t c[16]) {
  int32x4_t acc[4][4];
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++) acc[i][j] = vdupq_n_s32(0);
  for (int32_t kk = 0; kk < K; kk += 8) {
    const int8x16_t b0 = vld1q_s8(b), b1 = vld1q_s8(b + 16), b2 = vld1q_s8(b + 32), b3 = vld1q_s8(b + 48);
    for (int i = 0; i < 4; i++) MMLA_ROW_PAIR(i, vld1q_s8(ap[i] + 2 * kk));
    b += 64;
  }
  mmla_unzip(acc, c);
}

static inline void store_8x8(const int32x4_t c[16], int32_t *tile) {
  for (int r = 0; r < 8; r++) {
    vst1q_s32(tile + 8 * r, c[2 * r]);
    vst1q_s32(tile + 8 * r + 4, c[2 * r + 1]);
  }
}

/* ---------------------------------------------------------------- GEMM */
size_t rsq_gemm_s8_mmla_packed_size(int32_t cin, int32_t cout, int32_t k) {
  return (size_t)RSQ_ROUND_UP(cout, 8) * k * RSQ_ROUND_UP(cin, 8);
}

void rsq_gemm_s8_mmla_pack(int32_t cin, int32_t cout, int32_t k, const int8_t *w, int8_t *packed) {
  rsq_pack_gemm_kb(cin, cout, k, RSQ_ROUND_UP(cin, 8), 8, w, packed); /* [K/8][8][8] */
}

size_t rsq_gemm_s8_mmla_asize(int32_t cin, int32_t k, int32_t t_out) {
  return (size_t)RSQ_ROUND_UP(t_out, 8) * k * RSQ_ROUND_UP(cin, 8);
}

void rsq_gemm_s8_mmla(const rsq_geom *g, const int8_t *xpad, const int8_t *packed, int8_t *abuf, const rsq_rq *rq,
                      int8_t *y, int32_t threads) {
  assert(g->cin_p % 8 == 0 && threads >= 1);
  const int32_t K = g->k * g->cin_p, ncg = RSQ_ROUND_UP(g->cout, 8) / 8, nrb = (g->t_out + 7) / 8;
  const size_t lda = (size_t)g->stride * g->cin_p;
  (void)threads;
#pragma omp parallel num_threads(threads)
  {
    /* A's rows interleaved by pairs (rows 2j, 2j+1 -> abuf + 2jK as [K/8][2][8]; rows past the
     * end repeat the last one): one 16-byte load per row pair and 8 k in the products, for a
     * copy of A that every column group shares */
#pragma omp for schedule(static)
    for (int32_t j = 0; j < nrb * 4; j++) {
      const int32_t r0 = 2 * j < g->t_out ? 2 * j : g->t_out - 1, r1 = 2 * j + 1 < g->t_out ? 2 * j + 1 : g->t_out - 1;
      const int8_t *a0 = xpad + (size_t)r0 * lda, *a1 = xpad + (size_t)r1 * lda;
      int8_t *dst = abuf + (size_t)j * 2 * K;
      int32_t kk = 0;
      for (; kk + 16 <= K; kk += 16) {
        const int64x2_t x0 = vreinterpretq_s64_s8(vld1q_s8(a0 + kk)), x1 = vreinterpretq_s64_s8(vld1q_s8(a1 + kk));
        vst1q_s8(dst + 2 * kk, vreinterpretq_s8_s64(vzip1q_s64(x0, x1)));
        vst1q_s8(dst + 2 * kk + 16, vreinterpretq_s8_s64(vzip2q_s64(x0, x1)));
      }
      if (kk < K) vst1q_s8(dst + 2 * kk, vcombine_s8(vld1_s8(a0 + kk), vld1_s8(a1 + kk)));
    }
    /* implicit barrier: all of A is ready */
#pragma omp for schedule(static)
    for (int32_t item = 0; item < ncg * nrb; item++) {
      const int32_t cg = item / nrb, rb = item % nrb, t0 = rb * 8, co0 = cg * 8;
      const int32_t rows = g->t_out - t0 < 8 ? g->t_out - t0 : 8;
      const int8_t *ap[4];
      for (int32_t i = 0; i < 4; i++) ap[i] = abuf + (size_t)(4 * rb + i) * 2 * K;
      int32x4_t c[16];
      mmla_8x8_pairs(ap, packed + (size_t)cg * 8 * K, K, c);
      int32_t tile[8 * 8];
      store_8x8(c, tile);
      const int32_t nc = g->cout - co0 < 8 ? g->cout - co0 : 8;
      rsq_neon_requant_store(tile, 8, rows, co0, nc, rq, y + (size_t)t0 * g->cout, g->cout);
    }
  }
}

/* ---------------------------------------------------------------- Winograd F(2,3) */
size_t rsq_wino23_s8_mmla_packed_size(int32_t cin, int32_t cout, int32_t k) {
  return (size_t)RSQ_ROUND_UP(cout, 8) * (4 * (k / 3) + k % 3) * RSQ_ROUND_UP(cin, 8);
}

void rsq_wino23_s8_mmla_pack(int32_t cin, int32_t cout, int32_t k, const int8_t *w, int8_t *packed) {
  rsq_pack_wino23_kb(cin, cout, k, RSQ_ROUND_UP(cin, 8), 8, w, packed);
}

/* V = B^T d of one tile into the interleaved layout: tile pair p (tiles 2p, 2p+1) at
 * vbuf + p*8*KW, then per xi [KW/8][2][8] (the pair's two rows of 8 k-values side by side). */
static inline void mmla_input_tile(const rsq_geom *g, const int8_t *xpad, int8_t *vbuf, int32_t tile) {
  const int32_t cin_p = g->cin_p, nch = g->k / 3, KW = nch * cin_p;
  int8_t *base = vbuf + (size_t)(tile / 2) * 8 * KW + (tile & 1) * 8;
  for (int32_t c = 0; c < nch; c++) {
    const int8_t *d = xpad + (size_t)(2 * tile + 3 * c) * cin_p;
    for (int32_t ci = 0; ci < cin_p; ci += 8) {
      const int8x8_t d0 = vld1_s8(d + ci), d1 = vld1_s8(d + cin_p + ci);
      const int8x8_t d2 = vld1_s8(d + 2 * cin_p + ci), d3 = vld1_s8(d + 3 * cin_p + ci);
      int8_t *v = base + (size_t)2 * (c * cin_p + ci);
      vst1_s8(v, vsub_s8(d0, d2));               /* B^T row 0: d0 - d2 */
      vst1_s8(v + 2 * KW, vadd_s8(d1, d2));      /* row 1: d1 + d2 */
      vst1_s8(v + 4 * KW, vsub_s8(d2, d1));      /* row 2: d2 - d1 */
      vst1_s8(v + 6 * KW, vsub_s8(d1, d3));      /* row 3: d1 - d3 */
    }
  }
}

static int32_t mmla_tiles(int32_t t_out) { return RSQ_ROUND_UP((t_out + 1) / 2, 8); }

size_t rsq_wino23_s8_mmla_vsize(int32_t cin, int32_t k, int32_t t_out) {
  return (size_t)mmla_tiles(t_out) * 4 * (k / 3) * RSQ_ROUND_UP(cin, 8);
}

void rsq_wino23_s8_mmla(const rsq_geom *g, const int8_t *xpad, const int8_t *packed, int8_t *vbuf, const rsq_rq *rq,
                        int8_t *y, int32_t threads) {
  assert(g->stride == 1 && g->k >= 3 && g->cin_p % 8 == 0 && threads >= 1);
  const int32_t cin_p = g->cin_p, nch = g->k / 3, rem = g->k % 3;
  const int32_t KW = nch * cin_p, KL = rem * cin_p;
  const size_t group_bytes = (size_t)8 * (4 * KW + KL);
  const int32_t ntr = mmla_tiles(g->t_out), nrb = ntr / 8, ncg = RSQ_ROUND_UP(g->cout, 8) / 8;
  (void)threads;
#pragma omp parallel num_threads(threads)
  {
#pragma omp for schedule(static)
    for (int32_t tile = 0; tile < ntr; tile++) mmla_input_tile(g, xpad, vbuf, tile);
    /* implicit barrier: all of V is ready */
#pragma omp for schedule(static)
    for (int32_t item = 0; item < ncg * nrb; item++) {
      const int32_t cg = item / nrb, rb = item % nrb, t0 = rb * 16, co0 = cg * 8;
      const int8_t *v = vbuf + (size_t)rb * 4 * 8 * KW; /* tile pair 4rb + i at v + i*8*KW */
      const int8_t *u = packed + (size_t)cg * group_bytes;
      int32_t m[4][8 * 8];
      for (int32_t xi = 0; xi < 4; xi++) {
        const int8_t *ap[4];
        for (int32_t i = 0; i < 4; i++) ap[i] = v + (size_t)(8 * i + 2 * xi) * KW;
        int32x4_t c[16];
        mmla_8x8_pairs(ap, u + (size_t)xi * 8 * KW, KW, c);
        store_8x8(c, m[xi]);
      }
      int32_t tile[16 * 8];
      for (int32_t r = 0; r < 8; r++) /* tile r -> output rows 2r, 2r+1 */
        for (int32_t h = 0; h < 2; h++) {
          const int32_t o = 8 * r + 4 * h;
          rsq_wino23_output_q(vld1q_s32(m[0] + o), vld1q_s32(m[1] + o), vld1q_s32(m[2] + o), vld1q_s32(m[3] + o),
                              tile + 16 * r + 4 * h, tile + 16 * r + 8 + 4 * h);
        }
      if (rem) { /* leftover taps: spatial GEMM over the 16 output rows into the same block */
        const int8_t *ul = u + (size_t)32 * KW;
        for (int32_t half = 0; half < 2; half++) {
          const int8_t *a[8];
          for (int32_t r = 0; r < 8; r++) a[r] = xpad + (size_t)(t0 + 8 * half + r + 3 * nch) * cin_p;
          int32x4_t l[16];
          mmla_8x8(a, ul, KL, l);
          for (int32_t r = 0; r < 8; r++)
            for (int32_t h = 0; h < 2; h++) {
              int32_t *dst = tile + 8 * (8 * half + r) + 4 * h;
              vst1q_s32(dst, vaddq_s32(vld1q_s32(dst), l[2 * r + h]));
            }
        }
      }
      const int32_t rows = g->t_out - t0 < 16 ? g->t_out - t0 : 16;
      const int32_t nc = g->cout - co0 < 8 ? g->cout - co0 : 8;
      if (rows > 0) rsq_neon_requant_store(tile, 8, rows, co0, nc, rq, y + (size_t)t0 * g->cout, g->cout);
    }
  }
}
