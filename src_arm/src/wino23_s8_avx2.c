/* wino23_s8_avx2.c - INT8 Winograd F(2,3) Conv1D, native AVX2 (x86-64).
 *
 * Same algorithm and transforms as wino23_s8_neon.c (B^T, G'' with rows 0/3 = g0, g2, A''^T
 * carrying the factor 2; y = (A''^T m) >> 1 exact), same split of the kernel into k/3 chunks
 * plus k%3 leftover taps accumulated in the same int32 tile, one requantize per output.
 *
 * Winograd-domain operands are signed on both sides (|V| <= 126, |U| <= 126) and vpmaddubsw
 * multiplies u8 x s8, so the GEMMs on V use the sign mode of avx2_common.h (|V| x sign(V) U):
 * rows 1/2 (|U| <= 126): 2 products per int16 lane (31752), chain 1;
 * rows 0/3 (|U| <= 42):  pair sums <= 10584, chain 3 (31752).
 * Leftover taps: offset mode on xpad (x + 64), chain 3, corrected by -64 * sum(w).
 *
 * Data flow: (1) V = B^T d for every tile and chunk, stored as |V| (u8) and V (s8),
 *   layout [tile][xi][nch*cin_p]; (2) per block of RSQ_AVX2_WR tiles x 16 columns: four GEMMs,
 *   output transform, leftover GEMM, requantize.
 * Packed: int32 colsum_leftover[cout_p], int32 colsum_U[4][cout_p] (sum over the reduction of
 *   U_xi per column; the VNNI build's correction), then per 16-column group U_0..U_3
 *   ([KW/4][16][4] each) and the leftover taps ([KL/4][16][4]).
 * The VNNI build (RSQ_X86_VNNI, avx2_common.h) takes the same packed weights and buffers but
 * needs no sign mode: vpdpbusd has no int16 stage, so V is stored once as V + 128 (u8 in
 * [2, 254]) and every row runs the offset micro-kernel; the output transform adds the
 * per-column constants -128 * (2 S0 + S1 + S2) and -128 * (S1 - S2 - 2 S3), S_xi = colsum_U[xi],
 * before the exact >> 1 (the sums are modular; only the final y2 must fit int32, and it does). */
#include "avx2_common.h"

#ifdef RSQ_X86_VNNI
#define RSQ_AVX2_WR 6 /* tiles (pairs of outputs) per micro-tile: 12 accumulators of 32 ymm */
#else
#define RSQ_AVX2_WR 3 /* tiles (pairs of outputs) per micro-tile */
#endif /* RSQ_X86_VNNI */
#define RSQ_AVX2_WRB 8 /* micro-tiles per work item */
#define RSQ_AVX2_KC 252 /* reduction steps per cache slice (multiple of the chains 1, 3) */

static int32_t cout16(int32_t cout) { return RSQ_ROUND_UP(cout, 16); }

#ifndef RSQ_X86_VNNI
size_t rsq_wino23_s8_avx2_packed_size(int32_t cin, int32_t cout, int32_t k) {
  const int32_t cin_p = RSQ_ROUND_UP(cin, 4);
  return (size_t)cout16(cout) * 4 * 5 + (size_t)cout16(cout) * (4 * (k / 3) + k % 3) * cin_p;
}

void rsq_wino23_s8_avx2_pack(int32_t cin, int32_t cout, int32_t k, const int8_t *w, void *packed) {
  const int32_t cin_p = RSQ_ROUND_UP(cin, 4), nch = k / 3, rem = k % 3, cp = cout16(cout);
  const int32_t KW = nch * cin_p, KL = rem * cin_p;
  int32_t *colsum = packed, *ucs = colsum + cp; /* 5 * cp * 4 bytes: keeps base 64-aligned */
  int8_t *base = (int8_t *)packed + (size_t)cp * 4 * 5;
  for (int32_t i = 0; i < 4 * cp; i++) ucs[i] = 0;
  for (int32_t cg = 0; cg < cp / 16; cg++) {
    int8_t *dst = base + (size_t)cg * 16 * (4 * KW + KL);
    for (int32_t xi = 0; xi < 4; xi++)
      for (int32_t kk = 0; kk < KW; kk++)
        for (int32_t c = 0; c < 16; c++) {
          const int32_t ch = kk / cin_p, ci = kk % cin_p, co = cg * 16 + c;
          int32_t u = 0;
          if (co < cout && ci < cin) {
            u = rsq_wino23_u(w + ((size_t)co * cin + ci) * k + 3 * ch, xi);
          }
          dst[(size_t)xi * 16 * KW + (size_t)(kk / 4) * 64 + c * 4 + kk % 4] = (int8_t)u;
          ucs[(size_t)xi * cp + cg * 16 + c] += u;
        }
    if (KL)
      rsq_avx2_pack16(cin, cout, k, w, cg * 16, 3 * nch, rem, cin_p, dst + (size_t)64 * KW,
                      colsum + cg * 16);
    else
      for (int c = 0; c < 16; c++) colsum[cg * 16 + c] = 0;
  }
}

#endif /* RSQ_X86_VNNI */

/* tiles rounded up to 6 (a multiple of both builds' RSQ_AVX2_WR): one V buffer size for both */
static int32_t ntiles_round(int32_t t_out) { return RSQ_ROUND_UP((t_out + 1) / 2, 6); }

#ifndef RSQ_X86_VNNI
size_t rsq_wino23_s8_avx2_vsize(int32_t cin, int32_t k, int32_t t_out) {
  return (size_t)2 * ntiles_round(t_out) * 4 * (k / 3) * RSQ_ROUND_UP(cin, 4);
}
#endif /* RSQ_X86_VNNI */

/* |V| and V = B^T d for one tile, all chunks; xpad holds d + 64. VNNI build: V + 128 into va
 * (vs unused). */
static void input_transform(const rsq_geom *g, const uint8_t *xpad, uint8_t *va, int8_t *vs,
                            int32_t tile) {
  const int32_t cin_p = g->cin_p, nch = g->k / 3, KW = nch * cin_p;
  const size_t off = (size_t)tile * 4 * KW;
  const __m256i m128 = _mm256_set1_epi8(-128);
  for (int32_t c = 0; c < nch; c++) {
    const uint8_t *d = xpad + (size_t)(2 * tile + 3 * c) * cin_p;
    const size_t o = off + (size_t)c * cin_p;
    int32_t ci = 0;
    for (; ci + 32 <= cin_p; ci += 32) {
      const __m256i d0 = _mm256_loadu_si256((const __m256i *)(d + ci));
      const __m256i d1 = _mm256_loadu_si256((const __m256i *)(d + cin_p + ci));
      const __m256i d2 = _mm256_loadu_si256((const __m256i *)(d + 2 * cin_p + ci));
      const __m256i d3 = _mm256_loadu_si256((const __m256i *)(d + 3 * cin_p + ci));
      __m256i v[4];
      v[0] = _mm256_sub_epi8(d0, d2);                    /* offsets cancel */
      v[1] = _mm256_add_epi8(_mm256_add_epi8(d1, d2), m128); /* (d1+64)+(d2+64)-128, mod 256 */
      v[2] = _mm256_sub_epi8(d2, d1);
      v[3] = _mm256_sub_epi8(d1, d3);
      for (int xi = 0; xi < 4; xi++) {
#ifdef RSQ_X86_VNNI
        _mm256_storeu_si256((__m256i *)(va + o + (size_t)xi * KW + ci), _mm256_xor_si256(v[xi], m128));
#else
        _mm256_storeu_si256((__m256i *)(vs + o + (size_t)xi * KW + ci), v[xi]);
        _mm256_storeu_si256((__m256i *)(va + o + (size_t)xi * KW + ci), _mm256_abs_epi8(v[xi]));
#endif /* RSQ_X86_VNNI */
      }
    }
    for (; ci < cin_p; ci++) {
      const int32_t d0 = d[ci] - 64, d1 = d[cin_p + ci] - 64, d2 = d[2 * cin_p + ci] - 64,
                    d3 = d[3 * cin_p + ci] - 64;
      const int32_t v[4] = {d0 - d2, d1 + d2, d2 - d1, d1 - d3};
      for (int xi = 0; xi < 4; xi++) {
#ifdef RSQ_X86_VNNI
        va[o + (size_t)xi * KW + ci] = (uint8_t)(v[xi] + 128);
#else
        vs[o + (size_t)xi * KW + ci] = (int8_t)v[xi];
        va[o + (size_t)xi * KW + ci] = (uint8_t)(v[xi] < 0 ? -v[xi] : v[xi]);
#endif /* RSQ_X86_VNNI */
      }
    }
  }
}

void RSQ_X86_FN(rsq_wino23_s8)(const rsq_geom *g, const uint8_t *xpad, const void *packed,
                        uint8_t *vbuf, const rsq_rq *rq, int8_t *y, int32_t threads) {
  assert(g->stride == 1 && g->k >= 3 && g->cin_p % 4 == 0 && g->xoff == 64 && threads >= 1);
  const int32_t cin_p = g->cin_p, nch = g->k / 3, rem = g->k % 3, cp = cout16(g->cout);
  const int32_t KW = nch * cin_p, KL = rem * cin_p;
  const int32_t ntr = ntiles_round(g->t_out), nrb = ntr / RSQ_AVX2_WR, ncg = cp / 16;
  const int32_t nchunk = (nrb + RSQ_AVX2_WRB - 1) / RSQ_AVX2_WRB;
  const size_t gbytes = (size_t)16 * (4 * KW + KL), vhalf = (size_t)ntr * 4 * KW;
  uint8_t *va = vbuf;
  int8_t *vs = (int8_t *)vbuf + vhalf;
  const int32_t *colsum = packed, *ucs = colsum + cp;
  const int8_t *base = (const int8_t *)packed + (size_t)cp * 4 * 5;
  (void)threads;
  (void)ucs;
  (void)vs;
#pragma omp parallel num_threads(threads)
  {
#pragma omp for schedule(static)
    for (int32_t tile = 0; tile < ntr; tile++) input_transform(g, xpad, va, vs, tile);
    /* implicit barrier: all of V is ready */
#pragma omp for schedule(static)
    for (int32_t item = 0; item < ncg * nchunk; item++) {
      const int32_t cg = item / nchunk, rb0 = (item % nchunk) * RSQ_AVX2_WRB, co0 = cg * 16;
      const int32_t rb1 = rb0 + RSQ_AVX2_WRB < nrb ? rb0 + RSQ_AVX2_WRB : nrb;
      const int8_t *u = base + (size_t)cg * gbytes;
      const size_t lda = (size_t)4 * KW;
      __m256i mb[RSQ_AVX2_WRB][4][2 * RSQ_AVX2_WR];
      /* cache blocking as in gemm_s8_avx2.c: 16 KiB slices of U_xi stay in L1 */
      for (int xi = 0; xi < 4; xi++)
        for (int32_t s0 = 0; s0 < KW / 4; s0 += RSQ_AVX2_KC) {
          const int32_t ns = KW / 4 - s0 < RSQ_AVX2_KC ? KW / 4 - s0 : RSQ_AVX2_KC;
          const int8_t *ux = u + (size_t)xi * 16 * KW + (size_t)s0 * 64;
          for (int32_t rb = rb0; rb < rb1; rb++) {
            __m256i *acc = mb[rb - rb0][xi];
            if (s0 == 0)
              for (int j = 0; j < 2 * RSQ_AVX2_WR; j++) acc[j] = _mm256_setzero_si256();
            const size_t o = (size_t)rb * RSQ_AVX2_WR * lda + (size_t)xi * KW + 4 * (size_t)s0;
#ifdef RSQ_X86_VNNI
            rsq_avx2_ukr_u8(va + o, lda, ux, ns, RSQ_AVX2_WR, 1, acc);
#else
            if (xi == 0 || xi == 3)
              rsq_avx2_ukr_sign(va + o, vs + o, lda, ux, ns, RSQ_AVX2_WR, 3, acc);
            else
              rsq_avx2_ukr_sign(va + o, vs + o, lda, ux, ns, RSQ_AVX2_WR, 1, acc);
#endif /* RSQ_X86_VNNI */
          }
        }
      int32_t adj[16];
      for (int c = 0; c < 16; c++) /* modular: only the final int32 sum must fit */
        adj[c] = (int32_t)(0u - 64u * (uint32_t)colsum[co0 + c]);
      rsq_avx2_rq16 q;
      rsq_avx2_rq16_load(&q, rq, co0, rem ? adj : NULL);
#ifdef RSQ_X86_VNNI
      __m256i corr[2][2]; /* [output of the tile][column half]: the V + 128 offsets, see top */
      {
        int32_t c2[2][16];
        for (int c = 0; c < 16; c++) {
          const uint32_t s0 = (uint32_t)ucs[co0 + c], s1 = (uint32_t)ucs[cp + co0 + c],
                         s2 = (uint32_t)ucs[2 * cp + co0 + c], s3 = (uint32_t)ucs[3 * cp + co0 + c];
          c2[0][c] = (int32_t)(0u - 128u * (2u * s0 + s1 + s2));
          c2[1][c] = (int32_t)(0u - 128u * (s1 - s2 - 2u * s3));
        }
        for (int j = 0; j < 2; j++)
          for (int h = 0; h < 2; h++) corr[j][h] = _mm256_loadu_si256((const __m256i *)(c2[j] + 8 * h));
      }
#endif /* RSQ_X86_VNNI */
      const int32_t nc = g->cout - co0 < 16 ? g->cout - co0 : 16;
      for (int32_t rb = rb0; rb < rb1; rb++) {
      const int32_t tile0 = rb * RSQ_AVX2_WR;
      __m256i (*m)[2 * RSQ_AVX2_WR] = mb[rb - rb0];
      __m256i yv[4 * RSQ_AVX2_WR]; /* [output row][column half] */
      for (int r = 0; r < RSQ_AVX2_WR; r++)
        for (int h = 0; h < 2; h++) {
          const __m256i m0 = m[0][2 * r + h], m1 = m[1][2 * r + h], m2 = m[2][2 * r + h],
                        m3 = m[3][2 * r + h];
          /* A''^T: y2_0 = 2 m0 + m1 + m2, y2_1 = m1 - m2 - 2 m3; conv = y2 >> 1 (exact) */
          __m256i y0 = _mm256_add_epi32(_mm256_slli_epi32(m0, 1), _mm256_add_epi32(m1, m2));
          __m256i y1 = _mm256_sub_epi32(_mm256_sub_epi32(m1, m2), _mm256_slli_epi32(m3, 1));
#ifdef RSQ_X86_VNNI
          y0 = _mm256_add_epi32(y0, corr[0][h]);
          y1 = _mm256_add_epi32(y1, corr[1][h]);
#endif /* RSQ_X86_VNNI */
          yv[4 * r + h] = _mm256_srai_epi32(y0, 1);
          yv[4 * r + 2 + h] = _mm256_srai_epi32(y1, 1);
        }
      if (rem) { /* leftover taps: spatial GEMM (offset mode) into the same int32 tile */
        const uint8_t *a = xpad + (size_t)(2 * tile0 + 3 * nch) * cin_p;
        const int8_t *ul = u + (size_t)64 * KW;
        for (int half = 0; half < 2; half++) {
          __m256i l[2 * RSQ_AVX2_WR];
          for (int j = 0; j < 2 * RSQ_AVX2_WR; j++) l[j] = _mm256_setzero_si256();
          rsq_avx2_ukr_u8(a + (size_t)half * RSQ_AVX2_WR * cin_p, cin_p, ul, KL / 4, RSQ_AVX2_WR, 3, l);
          for (int j = 0; j < 2 * RSQ_AVX2_WR; j++)
            yv[2 * RSQ_AVX2_WR * half + j] = _mm256_add_epi32(yv[2 * RSQ_AVX2_WR * half + j], l[j]);
        }
      }
      const int32_t t0 = 2 * tile0;
      for (int r = 0; r < 2 * RSQ_AVX2_WR && t0 + r < g->t_out; r++)
        rsq_avx2_requant_store16(&q, yv[2 * r], yv[2 * r + 1], y + (size_t)(t0 + r) * g->cout + co0, nc);
      }
    }
  }
}
