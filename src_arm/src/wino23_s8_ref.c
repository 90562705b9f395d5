/* wino23_s8_ref.c - plain-C reference INT8 Winograd F(2,3) Conv1D (stride 1, k >= 3).
 *
 * The kernel is split into nch = k/3 chunks of 3 taps (paper Fig. 3); chunk c covers taps
 * 3c..3c+2 and reads input rows t+3c .. t+3c+3 for an output pair (t, t+1). The k%3 leftover
 * taps are a plain GEMM. Every chunk and the leftover are summed in ONE int32 accumulator, then
 * requantized once.
 *
 * Transform set: the standard F(2,3) matrices (Lavin & Gray) with G scaled by 2 to integer
 * entries, as docs/quantization.md ("Winograd F(2,3)") and rsqasr/quant/intref.py write them.
 * Eq. 2 of the paper prints row 4 of B^T as [0 -1 0 1], an erratum; the row is [0 1 0 -1]
 * (test group wino_tile checks the tile against the direct convolution at every range end):
 *
 *        [ 1  0 -1  0 ]          [ 2  0  0 ]
 *  B^T = [ 0  1  1  0 ]    G' =  [ 1  1  1 ]  (= 2G)    A^T = [ 1  1  1  0 ]
 *        [ 0 -1  1  0 ]          [ 1 -1  1 ]                  [ 0  1 -1 -1 ]
 *        [ 0  1  0 -1 ]          [ 0  0  2 ]
 *
 *  Y2 = A^T [ (G' g) .* (B^T d) ] = 2 * conv(d, g) exactly;  Y = Y2 >> 1 (exact, Y2 is even).
 *  Ranges: |d| <= 63 -> |B^T d| <= 126;  |g| <= 42 -> |G' g| <= 126.
 */
#include "internal.h"

void rsq_wino23_tile_ref(const int32_t d[4], const int32_t g[3], int32_t y2[2]) {
  /* V = B^T d */
  int32_t v0 = d[0] - d[2], v1 = d[1] + d[2], v2 = d[2] - d[1], v3 = d[1] - d[3];
  /* U = G' g */
  int32_t u0 = 2 * g[0], u1 = g[0] + g[1] + g[2], u2 = g[0] - g[1] + g[2], u3 = 2 * g[2];
  int32_t m0 = u0 * v0, m1 = u1 * v1, m2 = u2 * v2, m3 = u3 * v3;
  /* Y2 = A^T m */
  y2[0] = m0 + m1 + m2;
  y2[1] = m1 - m2 - m3;
}

/* input value at time ti (zero outside [0, t_in)) */
static inline int32_t xat(const int8_t *x, int32_t t_in, int32_t cin, int32_t ti, int32_t ci) {
  return (ti < 0 || ti >= t_in) ? 0 : x[(size_t)ti * cin + ci];
}

/* The one loop of both entry points: acc != NULL stores the sums (from bias, or 0) there,
 * else y gets them requantized. */
static void wino23_s8_ref(const rsq_conv1d_params *p, const int8_t *x, int32_t t_in,
                          const int8_t *w, const int32_t *bias, const int32_t *mult,
                          const int32_t *shift, int32_t lo, int32_t hi, int8_t *y, int32_t *acc) {
  assert(p->stride == 1 && p->k >= 3);
  const int32_t k = p->k, cin = p->cin, cout = p->cout;
  const int32_t nch = k / 3, rem = k % 3;
  const int32_t t_out = t_in + p->pad_left + p->pad_right - k + 1;
  for (int32_t t0 = 0; t0 < t_out; t0 += 2) {
    for (int32_t co = 0; co < cout; co++) {
      int32_t y2[2] = {0, 0}; /* one int32 tile for all chunks: 2 * conv */
      for (int32_t c = 0; c < nch; c++) {
        for (int32_t ci = 0; ci < cin; ci++) {
          int32_t d[4], g[3], r[2];
          for (int i = 0; i < 4; i++) d[i] = xat(x, t_in, cin, t0 - p->pad_left + 3 * c + i, ci);
          for (int j = 0; j < 3; j++) g[j] = w[((size_t)co * cin + ci) * k + 3 * c + j];
          rsq_wino23_tile_ref(d, g, r);
          y2[0] += r[0];
          y2[1] += r[1];
        }
      }
      for (int o = 0; o < 2 && t0 + o < t_out; o++) {
        int32_t s = (y2[o] >> 1) + (bias ? bias[co] : 0); /* exact: y2 is even */
        for (int32_t j = 3 * nch; j < 3 * nch + rem; j++)  /* leftover taps: GEMM */
          for (int32_t ci = 0; ci < cin; ci++)
            s += xat(x, t_in, cin, t0 + o - p->pad_left + j, ci) *
                 (int32_t)w[((size_t)co * cin + ci) * k + j];
        if (acc)
          acc[(size_t)(t0 + o) * cout + co] = s;
        else
          y[(size_t)(t0 + o) * cout + co] = (int8_t)rsq_requant1(s, mult[co], shift[co], lo, hi);
      }
    }
  }
}

void rsq_wino23_s8_acc_ref(const rsq_conv1d_params *p, const int8_t *x, int32_t t_in,
                           const int8_t *w, int32_t *acc) {
  wino23_s8_ref(p, x, t_in, w, NULL, NULL, NULL, 0, 0, NULL, acc);
}

void rsq_wino23_s8_ref(const rsq_conv1d_params *p, const int8_t *x, int32_t t_in,
                       const int8_t *w, const int32_t *bias, const int32_t *mult,
                       const int32_t *shift, int32_t lo, int32_t hi, int8_t *y) {
  wino23_s8_ref(p, x, t_in, w, bias, mult, shift, lo, hi, y, NULL);
}
