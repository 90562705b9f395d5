/*
 * rsq.h - public API of the rsqasr native engine (INT8 / INT8-Winograd / FP32 Conv1D).
 *
 * LAYOUT
 *   Activations are time-major: x[t][c], channel index contiguous ("[T][C]").
 *   Weights are given as PyTorch stores Conv1d weights: w[cout][cin][k].
 *   Output length: t_out = (t_in + pad_left + pad_right - k) / stride + 1 (floor).
 *   Batch is handled by the caller (one sequence per call).
 *
 * QUANTIZATION / REQUANTIZATION RULE (bit exact; the Python integer reference follows it)
 *   Symmetric, zero-point 0 everywhere. int8 values are in [-127, 127] (-128 is rejected).
 *   acc = bias[co] + sum_{j,ci} x[t*stride - pad_left + j][ci] * w[co][ci][j]   (int32;
 *         out-of-range input rows are zeros; bias is int32 at scale s_in*s_w[co]).
 *   Real multiplier m = s_in*s_w/s_out > 0 is represented as (M, shift):
 *         M int32 in [2^30, 2^31), shift int32 in [-31, 31], m ~= M * 2^(-31-shift).
 *   Step 0: if shift < 0: acc = saturate_int32(acc * 2^(-shift)).
 *   Step 1: a = SRDHM(acc, M) = saturate_int32((2*acc*M + 2^31) >> 32)   (int64 arithmetic,
 *           ">>" is an arithmetic shift = floor division; this is NEON vqrdmulh.s32).
 *   Step 2: if shift > 0: r = (a + 2^(shift-1)) >> shift   (round half up; NEON vrshl.s32
 *           by -shift), else r = a.
 *   Step 3: q = clamp(r, out_min, out_max). Use [-63,63] when the consumer is a Winograd
 *           layer, [-127,127] for normal INT8; out_min = 0 additionally for a fused ReLU.
 *   The FP32 value of an output q is q * s_out.
 *   rsq_quantize_multiplier() derives (M, shift) from a double m:
 *         q = frexp(m, &e)  (m = q * 2^e, q in [0.5,1)),  M = llround(q * 2^31)
 *         (round half away from zero), if M == 2^31 { M = 2^30; e += 1 },  shift = -e.
 *   See src_arm/QUANT.md for worked examples.
 *
 * WINOGRAD F(2,3) (RSQ_ALGO_WINO23)
 *   Only stride 1 and k >= 3. The kernel is split into floor(k/3) 3-tap chunks computed in
 *   the Winograd domain plus k%3 leftover taps computed as a GEMM; everything is accumulated
 *   in one int32 tile and requantized once. Exact (bit-identical to RSQ_ALGO_GEMM) provided
 *   inputs are in [-63,63] (in_absmax <= 63) and weights in [-42,42].
 *
 * ERRORS
 *   Every function returns rsq_status; on failure rsq_last_error() returns a message for the
 *   calling thread. Bad input never causes undefined behaviour.
 *
 * THREADS
 *   run functions take threads >= 1 (OpenMP, work split over output-channel blocks x time
 *   blocks). An op object holds a scratch workspace: do not run one op from two threads at
 *   the same time (create one op per thread instead).
 */
#ifndef RSQ_RSQ_H
#define RSQ_RSQ_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif /* __cplusplus */

typedef enum rsq_status {
  RSQ_OK = 0,
  RSQ_ERR_NULL = 1,        /* a required pointer is NULL */
  RSQ_ERR_SHAPE = 2,       /* a size <= 0, or an output length that would be <= 0 */
  RSQ_ERR_PARAM = 3,       /* a parameter out of range (k, stride, pads, threads, requant, values) */
  RSQ_ERR_UNSUPPORTED = 4, /* valid but not supported: Winograd with stride != 1 or k < 3,
                              an implementation this build/CPU cannot run */
  RSQ_ERR_NOMEM = 5        /* allocation failed (only create/run of op objects allocate) */
} rsq_status;

/* Message describing the last failure in the calling thread ("" if none). */
const char *rsq_last_error(void);
const char *rsq_status_string(rsq_status s);

/* ---- requantization helpers (exactly the rule above) ---- */
rsq_status rsq_quantize_multiplier(double m, int32_t *multiplier, int32_t *shift);
/* Scalar requantize of one accumulator (reference implementation of steps 0-3). */
int32_t rsq_requantize(int32_t acc, int32_t multiplier, int32_t shift, int32_t out_min,
                       int32_t out_max);

/* Float32 -> int8 as the integer reference quantizes: q = clamp(round_half_away(x * inv_scale),
 * -absmax, absmax) with the product in float32, NaN -> 0 (absmax 1..127). */
rsq_status rsq_quantize_f32(const float *x, size_t n, float inv_scale, int32_t absmax, int8_t *q);

/* ---- fused input/output of the int8 ops (rsq_conv1d_s8_run_io, rsq_dwconv1d_s8_run_io) ----
 * The input is int8 (x) or float32 (xf, quantized on the fly exactly as rsq_quantize_f32 with
 * x_inv_scale and x_absmax <= the op's in_absmax, straight into the kernel's input layout). The
 * output is exactly one of: y (requantized int8), acc (int32 accumulators incl. bias), or yf
 * (float32: v = (float)acc * deq[co]; if relu, v = v < 0 ? 0 : v; if add, v = add[i] + v; each
 * step one float32 rounding, as the executor's dequantize/ReLU/add passes it replaces). */
typedef struct rsq_s8_io {
  const int8_t *x;      /* [t_in][cin], or NULL and xf */
  const float *xf;      /* [t_in][cin] */
  float x_inv_scale;    /* float32 1/s_in */
  int32_t x_absmax;     /* 1..in_absmax */
  int8_t *y;            /* [t_out][cout] */
  int32_t *acc;         /* [t_out][cout] */
  float *yf;            /* [t_out][cout] */
  const float *deq;     /* [cout], with yf */
  const float *add;     /* [t_out][cout] or NULL, with yf (may not overlap yf) */
  int32_t relu;         /* with yf */
} rsq_s8_io;

/* ---- Conv1D shapes ---- */
typedef struct rsq_conv1d_params {
  int32_t cin, cout;           /* >= 1 */
  int32_t k;                   /* kernel size, >= 1 */
  int32_t stride;              /* 1 or 2 */
  int32_t pad_left, pad_right; /* >= 0, < k (zero padding) */
} rsq_conv1d_params;

/* t_out for a given t_in; RSQ_ERR_SHAPE if it would be <= 0. */
rsq_status rsq_conv1d_out_length(const rsq_conv1d_params *p, int32_t t_in, int32_t *t_out);

typedef enum rsq_algo { RSQ_ALGO_GEMM = 0, RSQ_ALGO_WINO23 = 1 } rsq_algo;

typedef enum rsq_impl {
  RSQ_IMPL_AUTO = 0, /* fastest available: NEON on ARM; on x86-64 VNNI, else AVX2 (native
                        kernels only: AUTO never picks the SIMDe-emulated NEON on x86) */
  RSQ_IMPL_REF = 1,  /* plain C reference */
  RSQ_IMPL_NEON = 2, /* NEON kernels (native on ARM; through SIMDe on x86-64 builds) */
  RSQ_IMPL_AVX2 = 3, /* native x86-64 AVX2 kernels (vpmaddubsw with int16 accumulation;
                        sign mode for the full int8 range) */
  RSQ_IMPL_VNNI = 4, /* native x86-64 AVX-512 VNNI kernels (vpdpbusd on ymm; needs
                        avx512vnni + avx512vl) */
  RSQ_IMPL_DOT = 5,  /* AArch64 NEON with the ARMv8.2 dot-product instructions (sdot): conv
                        GEMM and Winograd only (depthwise: NEON); AUTO picks it when the CPU
                        reports asimddp (and not i8mm) */
  RSQ_IMPL_I8MM = 6  /* AArch64 with the ARMv8.6 int8 matrix multiply (smmla): conv GEMM and
                        Winograd only (depthwise: NEON); AUTO picks it when the CPU reports i8mm */
} rsq_impl;

/* ---- INT8 Conv1D op ---- */
typedef struct rsq_conv1d_s8 rsq_conv1d_s8;

typedef struct rsq_conv1d_s8_desc {
  rsq_conv1d_params shape;
  rsq_algo algo;
  rsq_impl impl;
  int32_t in_absmax;          /* caller guarantees |x| <= in_absmax (1..127); the run
                                 functions check it. <= 63 required for Winograd. */
  const int8_t *weight;       /* [cout][cin][k], values in [-127,127] ([-42,42] for Winograd) */
  const int32_t *bias;        /* [cout] or NULL (zero); with the weights and inputs it must keep
                                 every accumulator in int32: 8*k*cin*in_absmax*max|w| + max|bias|
                                 <= INT32_MAX (8: headroom of the Winograd transforms and of the
                                 AVX2 offset arithmetic), else RSQ_ERR_PARAM */
  const int32_t *multiplier;  /* [cout], each in [2^30, 2^31)   (per-tensor: all equal); or
                                 NULL together with shift: an accumulator-only op, for layers
                                 whose output is int32 or float (run_acc, run_io with acc or
                                 yf); a requantized output y is then refused (RSQ_ERR_PARAM) */
  const int32_t *shift;       /* [cout], each in [-31, 31]; NULL with multiplier */
  int32_t out_min, out_max;   /* -127 <= out_min <= out_max <= 127 */
} rsq_conv1d_s8_desc;

/* Packs (transforms) the weights once; the op keeps its own copies. */
rsq_status rsq_conv1d_s8_create(const rsq_conv1d_s8_desc *d, rsq_conv1d_s8 **op);
/* x: [t_in][cin], y: [t_out][cout] (t_out from rsq_conv1d_out_length). */
rsq_status rsq_conv1d_s8_run(rsq_conv1d_s8 *op, const int8_t *x, int32_t t_in, int8_t *y,
                             int32_t threads);
/* Same, but writes the int32 accumulators acc[t_out][cout] = bias + sum (no requantization;
   the multipliers of the op are ignored): for layers whose output is dequantized to float. */
rsq_status rsq_conv1d_s8_run_acc(rsq_conv1d_s8 *op, const int8_t *x, int32_t t_in, int32_t *acc,
                                 int32_t threads);
/* Any input/output pair of rsq_s8_io (the two functions above are its int8 -> y / acc cases). */
rsq_status rsq_conv1d_s8_run_io(rsq_conv1d_s8 *op, const rsq_s8_io *io, int32_t t_in,
                                int32_t threads);
void rsq_conv1d_s8_destroy(rsq_conv1d_s8 *op);
/* The implementation the op actually runs (AUTO resolved). */
rsq_impl rsq_conv1d_s8_impl(const rsq_conv1d_s8 *op);

/* ---- INT8 depthwise Conv1D op (groups == channels, stride 1; DFSMN memory layer) ----
 * y[t][c] = requantize(bias[c] + sum_{j<k} x[t - pad_left + j][c] * w[c][j])  (same rule as
 * above; out-of-range input rows are zeros). x: [t_in][channels], y: [t_out][channels],
 * t_out = t_in + pad_left + pad_right - k + 1. Weights as PyTorch stores them: [channels][1][k]. */
typedef struct rsq_dwconv1d_s8 rsq_dwconv1d_s8;

typedef struct rsq_dwconv1d_s8_desc {
  int32_t channels;           /* >= 1 */
  int32_t k;                  /* 1..64 */
  int32_t pad_left, pad_right;/* 0..k-1 */
  rsq_impl impl;              /* AUTO, REF, NEON or AVX2 (VNNI: UNSUPPORTED) */
  const int8_t *weight;       /* [channels][k], values in [-127, 127] */
  const int32_t *bias;        /* [channels] or NULL; |bias| <= 2^31 - 1 - k*127*127 */
  const int32_t *multiplier;  /* [channels], each in [2^30, 2^31); or NULL with shift (an
                                 accumulator-only op, as for rsq_conv1d_s8_desc) */
  const int32_t *shift;       /* [channels], each in [-31, 31]; NULL with multiplier */
  int32_t out_min, out_max;   /* -127 <= out_min <= out_max <= 127 */
} rsq_dwconv1d_s8_desc;

rsq_status rsq_dwconv1d_s8_create(const rsq_dwconv1d_s8_desc *d, rsq_dwconv1d_s8 **op);
/* x values must be in [-127, 127] (checked). */
rsq_status rsq_dwconv1d_s8_run(rsq_dwconv1d_s8 *op, const int8_t *x, int32_t t_in, int8_t *y,
                               int32_t threads);
/* int32 accumulators acc[t_out][channels] = bias + sum, no requantization. */
rsq_status rsq_dwconv1d_s8_run_acc(rsq_dwconv1d_s8 *op, const int8_t *x, int32_t t_in,
                                   int32_t *acc, int32_t threads);
rsq_status rsq_dwconv1d_s8_run_io(rsq_dwconv1d_s8 *op, const rsq_s8_io *io, int32_t t_in,
                                  int32_t threads);
void rsq_dwconv1d_s8_destroy(rsq_dwconv1d_s8 *op);
rsq_impl rsq_dwconv1d_s8_impl(const rsq_dwconv1d_s8 *op);

/* ---- FP32 Conv1D / linear op ---- */
typedef struct rsq_conv1d_f32 rsq_conv1d_f32;
typedef struct rsq_conv1d_f32_desc {
  rsq_conv1d_params shape;
  rsq_impl impl;              /* AUTO/REF (AUTO = blocked C kernel, auto-vectorized) */
  const float *weight;        /* [cout][cin][k] */
  const float *bias;          /* [cout] or NULL */
  float out_min, out_max;     /* clamp (use -INFINITY/INFINITY for none, 0/INFINITY for ReLU) */
} rsq_conv1d_f32_desc;

rsq_status rsq_conv1d_f32_create(const rsq_conv1d_f32_desc *d, rsq_conv1d_f32 **op);
rsq_status rsq_conv1d_f32_run(rsq_conv1d_f32 *op, const float *x, int32_t t_in, float *y,
                              int32_t threads);
void rsq_conv1d_f32_destroy(rsq_conv1d_f32 *op);

/* Linear layer y[n][o] = b[o] + sum_i x[n][i] * w[o][i] (PyTorch nn.Linear weight layout):
   a Conv1D with k = 1 over the n rows. */
rsq_status rsq_linear_f32_create(int32_t in_features, int32_t out_features, const float *weight,
                                 const float *bias, rsq_impl impl, rsq_conv1d_f32 **op);

#ifdef __cplusplus
}
#endif /* __cplusplus */
#endif /* RSQ_RSQ_H */
