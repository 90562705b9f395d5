/* wino23_s8_neon.c - INT8 Winograd F(2,3) Conv1D, NEON (ARMv7; SIMDe elsewhere).
 *
 * Kernel split into nch = k/3 chunks of 3 taps + rem = k%3 leftover taps (paper Fig. 3).
 * For a tile of two outputs (t, t+1) and chunk c, d = xpad rows t+3c .. t+3c+3.
 *
 * Transforms applied here (an exact rescaling of the set B^T, G' = 2G, A^T of wino23_s8_ref.c
 * and docs/quantization.md):
 *
 *        [ 1  0 -1  0 ]          [ 1  0  0 ]                 [ 2  1  1  0 ]
 *  B^T = [ 0  1  1  0 ]    G'' = [ 1  1  1 ]          A''^T = [ 0  1 -1 -2 ]
 *        [ 0 -1  1  0 ]          [ 1 -1  1 ]
 *        [ 0  1  0 -1 ]          [ 0  0  1 ]
 *
 *  Y2 = A''^T [ (G'' g) .* (B^T d) ] = A^T [ (G' g) .* (B^T d) ] = 2*conv;  Y = Y2 >> 1.
 *  Rows 0 and 3 of G' (= 2g0, 2g2) are halved here and the factor 2 moved into A^T: the
 *  result is identical, but |U0|,|U3| <= 42 instead of 84. Rows 1/2: |U|,|V| <= 126, 2
 *  products per int16 lane = 31752 <= 32767.
 *
 * Data flow per call: (1) input transform V = B^T d for every tile and chunk, int8
 *   (|V| <= 126), layout vbuf[tile][xi][nch*cin_p]; (2) for a block of 2 tiles x 12 columns:
 *   four GEMMs M_xi = V_xi . U_xi, output transform on the int32 results, plus the leftover
 *   taps as a spatial GEMM into the SAME int32 tile, one requantize per output.
 *   All four rows use rsq_ukr_2x4 (ARMv7 asm: vmull + vmlal + vpadal, 16-deep steps, 2
 *   products per int16 lane, which rows 1/2 (|U|, |V| <= 126) require). Rows 0/3 (|U| <= 42)
 *   could run the GEMM's 2x3 kernel with 6-deep int16 chains instead; measured under qemu-arm
 *   that executed MORE instructions than the 2x4 kernel at the Table 3 sizes (k=3, cin=128:
 *   6.60M vs 6.52M per call; k=15, cin=128: 6.40M vs 6.28M): the per-call cost (zeroing,
 *   partial last chain, horizontal sums of 6 outputs) outweighs the saved vpadal, so that
 *   variant was removed. Leftover taps: rsq_ukr_2x3 with the GEMM's chain (the GEMM's own
 *   micro-kernel).
 * Packed weights per 12-column group: U_0..U_3 (3 quads each, rsq_ukr_2x4 order), then the
 *   leftover taps (4 triples x rem*cin_p, rsq_ukr_2x3 order). */
#include "neon_common.h"

size_t rsq_wino23_s8_neon_packed_size(int32_t cin, int32_t cout, int32_t k) {
  const int32_t cin_p = RSQ_ROUND_UP(cin, 8);
  return (size_t)RSQ_ROUND_UP(cout, 12) * (4 * (k / 3) + k % 3) * cin_p;
}

void rsq_wino23_s8_neon_pack(int32_t cin, int32_t cout, int32_t k, const int8_t *w,
                             int8_t *packed) {
  const int32_t cin_p = RSQ_ROUND_UP(cin, 8), nch = k / 3, rem = k % 3;
  const int32_t KW = nch * cin_p, KL = rem * cin_p, cout_p = RSQ_ROUND_UP(cout, 12);
  const size_t group_bytes = (size_t)12 * (4 * KW + KL);
  for (int32_t cg = 0; cg < cout_p / 12; cg++) {
    int8_t *dst = packed + (size_t)cg * group_bytes;
    for (int32_t xi = 0; xi < 4; xi++)
      for (int32_t c = 0; c < 12; c++)
        for (int32_t kk = 0; kk < KW; kk++) {
          int32_t ch = kk / cin_p, ci = kk % cin_p, co = 12 * cg + c, u = 0;
          if (co < cout && ci < cin) {
            u = rsq_wino23_u(w + ((size_t)co * cin + ci) * k + 3 * ch, xi);
          }
          const size_t off = (size_t)(c / 4) * 4 * KW + rsq_quad_index(KW, c % 4, kk);
          dst[(size_t)xi * 12 * KW + off] = (int8_t)u;
        }
    dst += (size_t)48 * KW;
    for (int32_t c = 0; c < 12; c++)
      for (int32_t kk = 0; kk < KL; kk++) {
        int32_t j = 3 * nch + kk / cin_p, ci = kk % cin_p, co = 12 * cg + c;
        dst[(size_t)(c / 3) * 3 * KL + rsq_triple_index(c % 3, kk)] =
            (co < cout && ci < cin) ? w[((size_t)co * cin + ci) * k + j] : 0;
      }
  }
}

static int32_t ntiles_round(int32_t t_out) { return RSQ_ROUND_UP((t_out + 1) / 2, 2); }

size_t rsq_wino23_s8_neon_vsize(int32_t cin, int32_t k, int32_t t_out) {
  return (size_t)ntiles_round(t_out) * 4 * (k / 3) * RSQ_ROUND_UP(cin, 8);
}

void rsq_wino23_s8_neon(const rsq_geom *g, const int8_t *xpad, const int8_t *packed,
                        int8_t *vbuf, const rsq_rq *rq, int8_t *y, int32_t threads) {
  assert(g->stride == 1 && g->k >= 3 && g->cin_p % 8 == 0 && g->chain >= 2 && threads >= 1);
  const int32_t cin_p = g->cin_p, nch = g->k / 3, rem = g->k % 3;
  const int32_t KW = nch * cin_p, KL = rem * cin_p;
  const size_t group_bytes = (size_t)12 * (4 * KW + KL);
  const int32_t ntr = ntiles_round(g->t_out), nrb = ntr / 2;
  const int32_t ncg = RSQ_ROUND_UP(g->cout, 12) / 12;
  (void)threads;
#pragma omp parallel num_threads(threads)
  {
#pragma omp for schedule(static)
    for (int32_t tile = 0; tile < ntr; tile++) rsq_wino23_input_tile(g, xpad, vbuf, tile);
    /* implicit barrier: all of V is ready */
#pragma omp for schedule(static)
    for (int32_t item = 0; item < ncg * nrb; item++) {
      const int32_t cg = item / nrb, rb = item % nrb, t0 = rb * 4, co0 = cg * 12;
      const int8_t *v0 = vbuf + (size_t)rb * 2 * 4 * KW, *v1 = v0 + (size_t)4 * KW;
      const int8_t *u = packed + (size_t)cg * group_bytes;
      int32_t m[4][2 * 12]; /* M_xi[tile][column] */
      for (int32_t xi = 0; xi < 4; xi++) /* 2x4 tiles */
        for (int32_t qq = 0; qq < 3; qq++) {
          int32x4_t o[2];
          rsq_ukr_2x4(v0 + xi * KW, v1 + xi * KW, u + (size_t)xi * 12 * KW + (size_t)qq * 4 * KW,
                      KW / 8, o);
          vst1q_s32(m[xi] + 4 * qq, o[0]);
          vst1q_s32(m[xi] + 12 + 4 * qq, o[1]);
        }
      int32_t tile[4 * 16]; /* row stride 16: the 4-column epilogue reads 8 */
      for (int32_t i = 0; i < 2; i++) /* tile i -> output rows 2i, 2i+1 */
        for (int32_t c = 0; c < 12; c += 4) {
          const int32_t o = 12 * i + c;
          rsq_wino23_output_q(vld1q_s32(m[0] + o), vld1q_s32(m[1] + o), vld1q_s32(m[2] + o), vld1q_s32(m[3] + o),
                              tile + 32 * i + c, tile + 32 * i + 16 + c);
        }
      if (rem) { /* leftover taps as a spatial GEMM into the same int32 tile */
        const int8_t *a = xpad + (size_t)(t0 + 3 * nch) * cin_p;
        const int8_t *ul = u + (size_t)48 * KW;
        int32_t l[4 * 16];
        for (int32_t tt = 0; tt < 4; tt++) {
          rsq_ukr_2x3(a, a + cin_p, ul + (size_t)tt * 3 * KL, KL / 8, g->chain, l + 3 * tt, 16);
          rsq_ukr_2x3(a + 2 * cin_p, a + 3 * cin_p, ul + (size_t)tt * 3 * KL, KL / 8, g->chain,
                      l + 32 + 3 * tt, 16);
        }
        for (int32_t r = 0; r < 4; r++)
          for (int32_t c = 0; c < 12; c += 4)
            vst1q_s32(tile + 16 * r + c, vaddq_s32(vld1q_s32(tile + 16 * r + c), vld1q_s32(l + 16 * r + c)));
      }
      const int32_t rows = g->t_out - t0 < 4 ? g->t_out - t0 : 4;
      const int32_t nc = g->cout - co0 < 12 ? g->cout - co0 : 12;
      int8_t *yr = y + (size_t)t0 * g->cout;
      rsq_neon_requant_store(tile, 16, rows, co0, nc < 8 ? nc : 8, rq, yr, g->cout);
      if (nc > 8) rsq_neon_requant_store(tile + 8, 16, rows, co0 + 8, nc - 8, rq, yr, g->cout);
    }
  }
}
