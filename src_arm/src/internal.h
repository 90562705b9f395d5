/* internal.h - kernel-level interfaces shared by the op layer, the kernels and the tests.
 * Kernels assert their preconditions and never allocate; the op layer (conv1d_s8.c,
 * dwconv_s8.c, conv1d_f32.c, with the checks and requantization arrays of op_common.h)
 * validates user input, owns packed weights and workspace. */
#ifndef RSQ_INTERNAL_H
#define RSQ_INTERNAL_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#include "rsq/rsq.h"

#ifdef __cplusplus
extern "C" {
#endif /* __cplusplus */

#define RSQ_ROUND_UP(x, m) ((((x) + (m)-1) / (m)) * (m))

/* status.c: the calling thread's rsq_last_error() message */
void rsq_set_error(const char *fmt, ...);
/* op_common.c: 1 when this build and CPU can run an implementation's kernels (REF: always). */
int rsq_impl_available(rsq_impl impl);

/* Per-output-channel requantization arrays. Arrays are padded by the op layer to a multiple
 * of RSQ_COUT_PAD entries so vector epilogues may read past cout. */
#define RSQ_COUT_PAD 64
typedef struct rsq_rq {
  const int32_t *bias;   /* [cout_pad] (zeros if none) */
  const int32_t *mult;   /* [cout_pad] M in [2^30, 2^31) */
  const int32_t *lshift; /* [cout_pad] max(-shift, 0) */
  const int32_t *rshift; /* [cout_pad] max(shift, 0) */
  int32_t lo, hi;
  /* int32 output mode (rsq_*_run_acc): when acc != NULL the epilogues store acc + bias as int32
   * and do not requantize. The kernels are then given y = ybase = (int8_t *)acc, so an int8
   * output pointer y + i maps to acc[i] (acc has 4x the bytes: y + i stays inside it). */
  int32_t *acc;
  const int8_t *ybase;
  /* float output mode (rsq_s8_io.yf): acc and ybase are set as above (to the float buffer: also
   * 4 bytes per element) and the rows go through rsq_store_f32_row */
  const struct rsq_f32_epi *fe;
} rsq_rq;

/* The float epilogue of rsq_s8_io: v = (float)acc * deq[co]; ReLU; add[i] + v. ld = cout. */
typedef struct rsq_f32_epi {
  float *yf;
  const float *deq, *add;
  int32_t relu, ld;
} rsq_f32_epi;

/* epilogue.c (built with -ffp-contract=off: one float32 rounding per step, as the executor and
 * numpy): the float epilogue for ncols columns of the row starting at element i0 = t*ld + co0. */
void rsq_store_f32_row(const rsq_f32_epi *e, size_t i0, int32_t co0, const int32_t *a,
                       const int32_t *bias, int32_t ncols);
/* q[i] = clamp(round_half_away(x[i] * inv), -absmax, absmax), NaN -> 0 (rsq_quantize_f32). */
void rsq_quantize_row(const float *x, size_t n, float inv, int32_t absmax, int8_t *q);

/* The op layers' handling of rsq_s8_io: check it (in_absmax: the op's input bound); set up rq
 * and the kernel's y for its output; for the reference path, apply the float epilogue to int32
 * accumulators acc[t_out][cout] (bias included). */
rsq_status rsq_io_check(const rsq_s8_io *io, int32_t in_absmax, const char *who);
void rsq_io_rq(const rsq_s8_io *io, rsq_rq *rq, rsq_f32_epi *fe, int32_t cout, int8_t **y);
void rsq_io_finish_acc(const rsq_s8_io *io, const int32_t *acc, int32_t t_out, int32_t cout);
/* The reference paths' view of rsq_s8_io: a whole int8 input (io->x, or io->xf quantized into a
 * buffer) and, for acc/yf outputs, int32 accumulators (io->acc, or a buffer for the float
 * epilogue; NULL for requantized output). begin allocates (nx inputs, ny outputs); end applies
 * the float epilogue when io->yf and frees. */
typedef struct rsq_io_ref {
  const int8_t *x;
  int32_t *acc;
  int8_t *xq_buf;
  int32_t *acc_buf;
} rsq_io_ref;
rsq_status rsq_io_ref_begin(const rsq_s8_io *io, size_t nx, size_t ny, rsq_io_ref *r, const char *who);
void rsq_io_ref_end(const rsq_s8_io *io, rsq_io_ref *r, int32_t t_out, int32_t cout);

/* int32 output mode of the epilogues: store acc + bias (modular add: the op layer bounds the
 * sum to int32) for ncols columns of one row; y is the int8 address the requantizing path
 * would have written, co0 its output channel. */
static inline void rsq_store_acc_row(const rsq_rq *rq, const int32_t *a, const int32_t *bias,
                                     const int8_t *y, int32_t co0, int32_t ncols) {
  if (rq->fe) {
    rsq_store_f32_row(rq->fe, (size_t)(y - rq->ybase), co0, a, bias, ncols);
    return;
  }
  int32_t *dst = rq->acc + (y - rq->ybase);
  for (int32_t c = 0; c < ncols; c++) dst[c] = (int32_t)((uint32_t)a[c] + (uint32_t)bias[c]);
}

/* Scalar requantization of one accumulator (bias already added): steps 0-3 of rsq.h. */
static inline int32_t rsq_requant1(int32_t acc, int32_t M, int32_t shift, int32_t lo,
                                   int32_t hi) {
  int64_t a = acc;
  if (shift < 0) { /* step 0: saturating left shift (multiplication: no UB on negatives) */
    a *= (int64_t)1 << (-shift);
    if (a > INT32_MAX) a = INT32_MAX;
    if (a < INT32_MIN) a = INT32_MIN;
  }
  /* step 1: SRDHM. |a| <= 2^31, M < 2^31: 2*a*M + 2^31 fits int64. */
  int64_t p = (2 * a * (int64_t)M + ((int64_t)1 << 31)) >> 32;
  if (p > INT32_MAX) p = INT32_MAX;
  if (p < INT32_MIN) p = INT32_MIN;
  /* step 2: rounding (half up) arithmetic right shift */
  if (shift > 0) p = (p + ((int64_t)1 << (shift - 1))) >> shift;
  /* step 3: clamp */
  if (p < lo) p = lo;
  if (p > hi) p = hi;
  return (int32_t)p;
}

/* ---------------- references (plain C) ---------------- */
/* Direct convolution, int32 accumulators WITHOUT bias: acc[t_out][cout].
 * x [t_in][cin], w [cout][cin][k]. */
void rsq_conv1d_s8_acc_ref(const rsq_conv1d_params *p, const int8_t *x, int32_t t_in,
                           const int8_t *w, int32_t *acc);
/* Full reference op: acc + bias, requantize, int8 output y[t_out][cout]. */
void rsq_conv1d_s8_ref(const rsq_conv1d_params *p, const int8_t *x, int32_t t_in,
                       const int8_t *w, const int32_t *bias, const int32_t *mult,
                       const int32_t *shift, int32_t lo, int32_t hi, int8_t *y);
/* F(2,3) on one tile with the transform set of wino23_s8_ref.c (docs/quantization.md):
 * y2[0..1] = 2 * conv(d[0..3], g[0..2]). */
void rsq_wino23_tile_ref(const int32_t d[4], const int32_t g[3], int32_t y2[2]);
/* Reference Winograd conv (stride 1, k >= 3): int32 accumulators without bias. */
void rsq_wino23_s8_acc_ref(const rsq_conv1d_params *p, const int8_t *x, int32_t t_in,
                           const int8_t *w, int32_t *acc);
void rsq_wino23_s8_ref(const rsq_conv1d_params *p, const int8_t *x, int32_t t_in,
                       const int8_t *w, const int32_t *bias, const int32_t *mult,
                       const int32_t *shift, int32_t lo, int32_t hi, int8_t *y);

/* ---------------- optimised kernels ----------------
 * Common input preparation (op layer): xpad = zero-padded copy of x, [rows][cin_p] with
 * cin_p = RSQ_ROUND_UP(cin, 8) (NEON) or RSQ_ROUND_UP(cin, 4) (AVX2); row r holds input time
 * r - pad_left; rows = rsq_xpad_rows(...). AVX2 kernels store x + 64 as uint8 (offset trick).
 */
static inline int32_t rsq_xpad_rows(const rsq_conv1d_params *p, int32_t t_out) {
  /* rows touched by a full last tile (t_out rounded up to 12 output rows: covers row blocks
   * of 2, 3, 4 and 6) plus the kernel extent; never fewer than the padded input. */
  int32_t t_round = RSQ_ROUND_UP(t_out, 12);
  return (t_round - 1) * p->stride + p->k + 1;
}

/* Row xi of G'' g for the 3 taps g[0..2] (the packers' weight transform; rows 0 and 3 of G' halved,
 * see wino23_s8_neon.c): g0, g0 + g1 + g2, g0 - g1 + g2, g2. */
static inline int32_t rsq_wino23_u(const int8_t *g, int32_t xi) {
  const int32_t g0 = g[0], g1 = g[1], g2 = g[2];
  return xi == 0 ? g0 : xi == 1 ? g0 + g1 + g2 : xi == 2 ? g0 - g1 + g2 : g2;
}
typedef struct rsq_geom {
  int32_t cin, cout, k, stride;
  int32_t cin_p;  /* padded channel stride of xpad / packed weights */
  int32_t cout_p; /* cout rounded up to the kernel's column group */
  int32_t t_out;
  int32_t chain;  /* NEON spatial GEMM: products summed per int16 lane before vpadal */
  int32_t xoff;   /* AVX2: offset added to activations in xpad (uint8 = x + xoff) */
} rsq_geom;

/* NEON (armv7 native, or SIMDe on x86-64). Column group 8, micro-tile 2 rows x 4 columns. */
size_t rsq_gemm_s8_neon_packed_size(int32_t cin, int32_t cout, int32_t k);
void rsq_gemm_s8_neon_pack(int32_t cin, int32_t cout, int32_t k, const int8_t *w, int8_t *packed);
void rsq_gemm_s8_neon(const rsq_geom *g, const int8_t *xpad, const int8_t *packed,
                      const rsq_rq *rq, int8_t *y, int32_t threads);
/* alternative GEMM for comparison: 3x2 tile with `chain`-deep int16 accumulation */
size_t rsq_gemm_s8_neon_c12_packed_size(int32_t cin, int32_t cout, int32_t k);
void rsq_gemm_s8_neon_c12_pack(int32_t cin, int32_t cout, int32_t k, const int8_t *w, int8_t *packed);
void rsq_gemm_s8_neon_c12(const rsq_geom *g, const int8_t *xpad, const int8_t *packed,
                          const rsq_rq *rq, int8_t *y, int32_t threads);
/* AArch64 with SDOT (gemm_s8_dot.c; RSQ_IMPL_DOT): cin_p = RSQ_ROUND_UP(cin, 16), column group
 * 8, micro-tile 4 rows x 8 columns; Winograd in blocks of 4 tiles (8 output rows: xpad must hold
 * rsq_xpad_rows(p, RSQ_ROUND_UP(t_out, 8)) rows). */
size_t rsq_gemm_s8_dot_packed_size(int32_t cin, int32_t cout, int32_t k);
void rsq_gemm_s8_dot_pack(int32_t cin, int32_t cout, int32_t k, const int8_t *w, int8_t *packed);
void rsq_gemm_s8_dot(const rsq_geom *g, const int8_t *xpad, const int8_t *packed, const rsq_rq *rq, int8_t *y,
                     int32_t threads);
size_t rsq_wino23_s8_dot_packed_size(int32_t cin, int32_t cout, int32_t k);
void rsq_wino23_s8_dot_pack(int32_t cin, int32_t cout, int32_t k, const int8_t *w, int8_t *packed);
size_t rsq_wino23_s8_dot_vsize(int32_t cin, int32_t k, int32_t t_out);
void rsq_wino23_s8_dot(const rsq_geom *g, const int8_t *xpad, const int8_t *packed, int8_t *vbuf, const rsq_rq *rq,
                       int8_t *y, int32_t threads);
/* the SDOT and SMMLA weight packers (gemm_s8_dot.c): 8-column groups of kb-deep k blocks */
void rsq_pack_gemm_kb(int32_t cin, int32_t cout, int32_t k, int32_t cin_p, int32_t kb, const int8_t *w, int8_t *packed);
void rsq_pack_wino23_kb(int32_t cin, int32_t cout, int32_t k, int32_t cin_p, int32_t kb, const int8_t *w, int8_t *packed);
/* AArch64 with SMMLA (gemm_s8_mmla.c; RSQ_IMPL_I8MM): cin_p = RSQ_ROUND_UP(cin, 8), column group
 * 8, micro-tile 8 rows x 8 columns; Winograd in blocks of 8 tiles (16 output rows: xpad must hold
 * rsq_xpad_rows(p, RSQ_ROUND_UP(t_out, 16)) rows). */
size_t rsq_gemm_s8_mmla_packed_size(int32_t cin, int32_t cout, int32_t k);
void rsq_gemm_s8_mmla_pack(int32_t cin, int32_t cout, int32_t k, const int8_t *w, int8_t *packed);
size_t rsq_gemm_s8_mmla_asize(int32_t cin, int32_t k, int32_t t_out); /* abuf: A in row pairs */
void rsq_gemm_s8_mmla(const rsq_geom *g, const int8_t *xpad, const int8_t *packed, int8_t *abuf, const rsq_rq *rq,
                      int8_t *y, int32_t threads);
size_t rsq_wino23_s8_mmla_packed_size(int32_t cin, int32_t cout, int32_t k);
void rsq_wino23_s8_mmla_pack(int32_t cin, int32_t cout, int32_t k, const int8_t *w, int8_t *packed);
size_t rsq_wino23_s8_mmla_vsize(int32_t cin, int32_t k, int32_t t_out);
void rsq_wino23_s8_mmla(const rsq_geom *g, const int8_t *xpad, const int8_t *packed, int8_t *vbuf, const rsq_rq *rq,
                        int8_t *y, int32_t threads);
/* default GEMM when chain >= 6: 2x3 tile, column group 12, `chain`-deep int16 accumulation */
size_t rsq_gemm_s8_neon_2x3_packed_size(int32_t cin, int32_t cout, int32_t k);
void rsq_gemm_s8_neon_2x3_pack(int32_t cin, int32_t cout, int32_t k, const int8_t *w, int8_t *packed);
void rsq_gemm_s8_neon_2x3(const rsq_geom *g, const int8_t *xpad, const int8_t *packed,
                          const rsq_rq *rq, int8_t *y, int32_t threads);
size_t rsq_wino23_s8_neon_packed_size(int32_t cin, int32_t cout, int32_t k);
void rsq_wino23_s8_neon_pack(int32_t cin, int32_t cout, int32_t k, const int8_t *w,
                             int8_t *packed);
size_t rsq_wino23_s8_neon_vsize(int32_t cin, int32_t k, int32_t t_out);
void rsq_wino23_s8_neon(const rsq_geom *g, const int8_t *xpad, const int8_t *packed,
                        int8_t *vbuf, const rsq_rq *rq, int8_t *y, int32_t threads);

/* AVX2 (x86-64 only). Column group 16 (two 8-lane vectors), micro-tile 3 rows x 16 columns.
 * Activations enter as uint8 x+64 in [1,127]; packed weights carry per-column corrections. */
#if defined(__x86_64__) || defined(__i386__)
#define RSQ_HAVE_X86 1
int rsq_cpu_has_avx2(void);
int rsq_cpu_has_avx512vnni(void); /* avx512vnni + avx512vl (+ OS support), and avx2 */
size_t rsq_gemm_s8_avx2_packed_size(int32_t cin, int32_t cout, int32_t k);
void rsq_gemm_s8_avx2_pack(int32_t cin, int32_t cout, int32_t k, const int8_t *w, void *packed);
/* xs == NULL: offset mode (xpad = x + g->xoff); xs != NULL: sign mode (xpad = |x|, xs = x,
 * g->xoff = 0), the AVX2 kernel's way to the full int8 range. */
void rsq_gemm_s8_avx2(const rsq_geom *g, const uint8_t *xpad, const int8_t *xs,
                      const void *packed, const rsq_rq *rq, int8_t *y, int32_t threads);
size_t rsq_wino23_s8_avx2_packed_size(int32_t cin, int32_t cout, int32_t k);
void rsq_wino23_s8_avx2_pack(int32_t cin, int32_t cout, int32_t k, const int8_t *w, void *packed);
size_t rsq_wino23_s8_avx2_vsize(int32_t cin, int32_t k, int32_t t_out);
void rsq_wino23_s8_avx2(const rsq_geom *g, const uint8_t *xpad, const void *packed,
                        uint8_t *vbuf, const rsq_rq *rq, int8_t *y, int32_t threads);
/* The same kernels built with vpdpbusd (RSQ_X86_VNNI): same packed weights (the _avx2 packers),
 * same workspace; offset mode exact for any x + xoff in [0, 255]. */
void rsq_gemm_s8_vnni(const rsq_geom *g, const uint8_t *xpad, const int8_t *xs,
                      const void *packed, const rsq_rq *rq, int8_t *y, int32_t threads);
void rsq_wino23_s8_vnni(const rsq_geom *g, const uint8_t *xpad, const void *packed,
                        uint8_t *vbuf, const rsq_rq *rq, int8_t *y, int32_t threads);
/* depthwise, AVX2: xpad as for the NEON kernel but c_p = RSQ_ROUND_UP(channels, 16) */
void rsq_dwconv1d_s8_avx2(int32_t channels, int32_t k, int32_t t_out, const int8_t *xpad,
                          const int8_t *wpk, const rsq_rq *rq, int8_t *y, int32_t threads);
#endif /* x86 */

/* ---------------- depthwise INT8 ---------------- */
/* reference: acc + bias, requantize into y; w [c][k]. acc != NULL: store acc + bias there
 * (int32 output mode) instead, and mult, shift and y are not used. */
void rsq_dwconv1d_s8_ref(int32_t channels, int32_t k, int32_t pad_left, int32_t pad_right,
                         const int8_t *x, int32_t t_in, const int8_t *w, const int32_t *bias,
                         const int32_t *mult, const int32_t *shift, int32_t lo, int32_t hi,
                         int8_t *y, int32_t *acc);
/* NEON: xpad [t_out + k - 1 + 3 rows][c_p = RSQ_ROUND_UP(channels, 16)] zero padded (row r holds
 * input time r - pad_left), packed weights [k][c_p]. */
void rsq_dwconv1d_s8_neon(int32_t channels, int32_t k, int32_t t_out, const int8_t *xpad,
                          const int8_t *wpk, const rsq_rq *rq, int8_t *y, int32_t threads);

/* ---------------- FP32 ---------------- */
void rsq_conv1d_f32_ref(const rsq_conv1d_params *p, const float *x, int32_t t_in,
                        const float *w, const float *bias, float lo, float hi, float *y);
/* Fast FP32: weights packed [k*cin][cout_p] (cout_p multiple of 16), xpad [rows][cin]. */
size_t rsq_conv1d_f32_packed_size(int32_t cin, int32_t cout, int32_t k);
void rsq_conv1d_f32_pack(int32_t cin, int32_t cout, int32_t k, const float *w, float *packed);
void rsq_conv1d_f32_fast(const rsq_geom *g, const float *xpad, const float *packed,
                         const float *bias_p, float lo, float hi, float *y, int32_t threads);

#ifdef __cplusplus
}
#endif /* __cplusplus */
#endif /* RSQ_INTERNAL_H */
