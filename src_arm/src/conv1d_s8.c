/* conv1d_s8.c - INT8 Conv1D op layer: validation, weight packing, workspace, dispatch. The
 * argument checks it shares with the other op layers are in op_common.c, the per-channel
 * requantization arrays in requant.c. */
#include <stdlib.h>
#include <string.h>

#include "op_common.h"

struct rsq_conv1d_s8 {
  rsq_conv1d_params p;
  rsq_algo algo;
  rsq_impl impl;
  int32_t in_absmax, w_absmax, lo, hi, chain;
  int requant;      /* 0: created without multipliers (int32 / float output only) */
  int8_t *w;        /* copy [cout][cin][k] (reference) */
  rsq_rq_arrays rq; /* bias and requantization per output channel, padded */
  void *packed;
  void *ws;
  size_t ws_size;
};

/* x86 kernels, GEMM: any range (offset mode when a chain >= 1 exists, else sign mode, gemm_s8_avx2.c);
 * Winograd: the ranges its transforms need (checked at create for every impl anyway). */
static int avx2_ranges_ok(int32_t in_absmax, int32_t w_absmax, rsq_algo algo) {
  if (algo == RSQ_ALGO_WINO23) return in_absmax <= 63 && w_absmax <= 42;
  return 1;
}

#if defined(RSQ_WITH_AVX2) && defined(RSQ_HAVE_X86)
/* AVX2 kernels: vpmaddubsw on (x + o) in [1, 2*in_absmax+1] and w must not saturate int16. */
/* xoff: 64 for |x| <= 63 (x + 64 in [1, 127]), else in_absmax + 1 (x + xoff in [1, 255]). */
static int32_t avx2_xoff(int32_t in_absmax) { return in_absmax <= 63 ? 64 : in_absmax + 1; }
static int32_t avx2_chain(int32_t in_absmax, int32_t w_absmax) {
  const int32_t pair = 2 * (avx2_xoff(in_absmax) + in_absmax) * (w_absmax > 0 ? w_absmax : 1);
  const int32_t c = 32767 / pair;
  return c > 3 ? 3 : c;
}
static int avx2_sign_mode(const rsq_conv1d_s8 *op) {
  return op->impl == RSQ_IMPL_AVX2 && op->algo == RSQ_ALGO_GEMM &&
         avx2_chain(op->in_absmax, op->w_absmax) < 1;
}
#endif /* RSQ_WITH_AVX2 && RSQ_HAVE_X86 */

void rsq_conv1d_s8_destroy(rsq_conv1d_s8 *op) {
  if (!op) return;
  free(op->w);
  rsq_rq_arrays_free(&op->rq);
  free(op->packed);
  free(op->ws);
  free(op);
}

rsq_impl rsq_conv1d_s8_impl(const rsq_conv1d_s8 *op) { return op ? op->impl : RSQ_IMPL_AUTO; }

/* create, step 1: the shape, algo, impl, value ranges and the Winograd limits. */
static rsq_status check_desc(const rsq_conv1d_s8_desc *d, const char *who) {
  const rsq_conv1d_params *p = &d->shape;
  rsq_status st = rsq_check_conv_shape(p, who);
  if (st) return st;
  if (d->algo != RSQ_ALGO_GEMM && d->algo != RSQ_ALGO_WINO23) {
    rsq_set_error("%s: unknown algo %d", who, (int)d->algo);
    return RSQ_ERR_PARAM;
  }
  if ((st = rsq_check_impl_value(d->impl, who))) return st;
  if (d->in_absmax < 1 || d->in_absmax > 127) {
    rsq_set_error("%s: in_absmax = %d must be in [1, 127]", who, d->in_absmax);
    return RSQ_ERR_PARAM;
  }
  if ((st = rsq_check_s8_clamp(d->out_min, d->out_max, who))) return st;
  if (d->algo == RSQ_ALGO_WINO23) {
    if (p->stride != 1 || p->k < 3) {
      rsq_set_error("%s: Winograd F(2,3) needs stride 1 and k >= 3 (got stride %d, k %d)", who,
                    p->stride, p->k);
      return RSQ_ERR_UNSUPPORTED;
    }
    if (d->in_absmax > 63) {
      rsq_set_error("%s: Winograd needs inputs in [-63, 63] (in_absmax = %d)", who, d->in_absmax);
      return RSQ_ERR_PARAM;
    }
  }
  return RSQ_OK;
}

/* create, step 2: symmetric int8 weights (no -128), their max |w| (the Winograd's <= 42). */
static rsq_status check_weights(const rsq_conv1d_s8_desc *d, int32_t *w_absmax, const char *who) {
  const size_t nw = (size_t)d->shape.cout * d->shape.cin * d->shape.k;
  int32_t wmax = 0;
  for (size_t i = 0; i < nw; i++) {
    int32_t v = d->weight[i];
    if (v == -128) {
      rsq_set_error("%s: weight[%zu] = -128 (symmetric int8 is [-127, 127])", who, i);
      return RSQ_ERR_PARAM;
    }
    if (v < 0) v = -v;
    if (v > wmax) wmax = v;
  }
  if (d->algo == RSQ_ALGO_WINO23 && wmax > 42) {
    rsq_set_error("%s: Winograd needs weights in [-42, 42] (max |w| = %d)", who, wmax);
    return RSQ_ERR_PARAM;
  }
  *w_absmax = wmax;
  return RSQ_OK;
}

/* create, step 3: the requantization of every channel, and the int32 accumulators (reference,
 * NEON, AVX2 offsets, Winograd intermediates) cannot overflow:
 * rsq.h: 8*k*cin*in_absmax*max|w| + max|bias| <= INT32_MAX. */
static rsq_status check_requant_bias(const rsq_conv1d_s8_desc *d, int32_t wmax, const char *who) {
  const rsq_conv1d_params *p = &d->shape;
  int64_t maxbias = 0;
  for (int32_t co = 0; co < p->cout; co++) {
    rsq_status st = rsq_check_requant_channel(d->multiplier, d->shift, co, who);
    if (st) return st;
    int64_t b = d->bias ? d->bias[co] : 0;
    if (b < 0) b = -b;
    if (b > maxbias) maxbias = b;
  }
  const int64_t sum_bound = (int64_t)8 * p->k * p->cin * d->in_absmax * (wmax > 0 ? wmax : 1);
  if (sum_bound > INT32_MAX) {
    rsq_set_error("%s: 8*k*cin*|x|*|w| = %lld too large for int32 accumulation (k=%d cin=%d)", who,
                  (long long)sum_bound, p->k, p->cin);
    return RSQ_ERR_PARAM;
  }
  if (sum_bound + maxbias > INT32_MAX) {
    rsq_set_error("%s: |bias| up to %lld too large: 8*k*cin*|x|*|w| + max|bias| = %lld exceeds INT32_MAX", who,
                  (long long)maxbias, (long long)(sum_bound + maxbias));
    return RSQ_ERR_PARAM;
  }
  return RSQ_OK;
}

/* create, step 4: AUTO resolved, an explicit impl checked against this build, CPU and ranges. */
static rsq_status choose_impl(const rsq_conv1d_s8_desc *d, int32_t wmax, rsq_impl *out,
                              const char *who) {
  rsq_impl impl = d->impl;
  if (impl == RSQ_IMPL_AUTO) {
    /* x86: native kernels only (the SIMDe NEON build is for tests and comparisons) */
    if (rsq_impl_available(RSQ_IMPL_VNNI) && avx2_ranges_ok(d->in_absmax, wmax, d->algo))
      impl = RSQ_IMPL_VNNI;
    else if (rsq_impl_available(RSQ_IMPL_AVX2) && avx2_ranges_ok(d->in_absmax, wmax, d->algo))
      impl = RSQ_IMPL_AVX2;
    else if (rsq_impl_available(RSQ_IMPL_I8MM))
      impl = RSQ_IMPL_I8MM;
    else if (rsq_impl_available(RSQ_IMPL_DOT))
      impl = RSQ_IMPL_DOT;
    else if (rsq_impl_available(RSQ_IMPL_NEON))
      impl = RSQ_IMPL_NEON;
    else
      impl = RSQ_IMPL_REF;
  } else if (impl == RSQ_IMPL_NEON && !rsq_impl_available(RSQ_IMPL_NEON)) {
    rsq_set_error("%s: NEON kernels not available in this build/CPU", who);
    return RSQ_ERR_UNSUPPORTED;
  } else if (impl == RSQ_IMPL_AVX2 &&
             (!rsq_impl_available(RSQ_IMPL_AVX2) || !avx2_ranges_ok(d->in_absmax, wmax, d->algo))) {
    rsq_set_error("%s: AVX2 kernels not available in this build/CPU or for these value ranges "
                  "(in_absmax %d, max|w| %d)", who, d->in_absmax, wmax);
    return RSQ_ERR_UNSUPPORTED;
  } else if (impl == RSQ_IMPL_VNNI && !rsq_impl_available(RSQ_IMPL_VNNI)) {
    rsq_set_error("%s: AVX-512 VNNI kernels not available in this build/CPU", who);
    return RSQ_ERR_UNSUPPORTED;
  } else if (impl == RSQ_IMPL_DOT && !rsq_impl_available(RSQ_IMPL_DOT)) {
    rsq_set_error("%s: AArch64 dot-product (sdot) kernels not available in this build/CPU", who);
    return RSQ_ERR_UNSUPPORTED;
  } else if (impl == RSQ_IMPL_I8MM && !rsq_impl_available(RSQ_IMPL_I8MM)) {
    rsq_set_error("%s: AArch64 int8 matrix-multiply (smmla) kernels not available in this build/CPU", who);
    return RSQ_ERR_UNSUPPORTED;
  }
  *out = impl;
  return RSQ_OK;
}

/* create, step 5: the chosen kernels' packed (transformed) weights. 0: out of memory. */
static int pack_weights(rsq_conv1d_s8 *op, const int8_t *w) {
  const rsq_conv1d_params *p = &op->p;
  if (op->impl == RSQ_IMPL_NEON) {
    /* GEMM: the 2x3 tile with chain-deep int16 accumulation when the ranges allow >= 6-deep
     * chains (|x| <= 63, |w| <= 42 gives 12), else the 2x4 tile (2 products per lane). */
    const int gemm23 = op->chain >= 6;
    size_t sz = op->algo == RSQ_ALGO_GEMM
                    ? (gemm23 ? rsq_gemm_s8_neon_2x3_packed_size(p->cin, p->cout, p->k)
                              : rsq_gemm_s8_neon_packed_size(p->cin, p->cout, p->k))
                    : rsq_wino23_s8_neon_packed_size(p->cin, p->cout, p->k);
    op->packed = malloc(sz);
    if (!op->packed) return 0;
    if (op->algo == RSQ_ALGO_GEMM && gemm23)
      rsq_gemm_s8_neon_2x3_pack(p->cin, p->cout, p->k, w, op->packed);
    else if (op->algo == RSQ_ALGO_GEMM)
      rsq_gemm_s8_neon_pack(p->cin, p->cout, p->k, w, op->packed);
    else
      rsq_wino23_s8_neon_pack(p->cin, p->cout, p->k, w, op->packed);
  }
#if defined(RSQ_WITH_DOT)
  if (op->impl == RSQ_IMPL_DOT) {
    size_t sz = op->algo == RSQ_ALGO_GEMM ? rsq_gemm_s8_dot_packed_size(p->cin, p->cout, p->k)
                                          : rsq_wino23_s8_dot_packed_size(p->cin, p->cout, p->k);
    op->packed = malloc(sz);
    if (!op->packed) return 0;
    if (op->algo == RSQ_ALGO_GEMM)
      rsq_gemm_s8_dot_pack(p->cin, p->cout, p->k, w, op->packed);
    else
      rsq_wino23_s8_dot_pack(p->cin, p->cout, p->k, w, op->packed);
  }
  if (op->impl == RSQ_IMPL_I8MM) {
    size_t sz = op->algo == RSQ_ALGO_GEMM ? rsq_gemm_s8_mmla_packed_size(p->cin, p->cout, p->k)
                                          : rsq_wino23_s8_mmla_packed_size(p->cin, p->cout, p->k);
    op->packed = malloc(sz);
    if (!op->packed) return 0;
    if (op->algo == RSQ_ALGO_GEMM)
      rsq_gemm_s8_mmla_pack(p->cin, p->cout, p->k, w, op->packed);
    else
      rsq_wino23_s8_mmla_pack(p->cin, p->cout, p->k, w, op->packed);
  }
#endif /* RSQ_WITH_DOT */
#if defined(RSQ_WITH_AVX2) && defined(RSQ_HAVE_X86)
  if (op->impl == RSQ_IMPL_AVX2 || op->impl == RSQ_IMPL_VNNI) { /* one packed layout for both */
    size_t sz = op->algo == RSQ_ALGO_GEMM ? rsq_gemm_s8_avx2_packed_size(p->cin, p->cout, p->k)
                                          : rsq_wino23_s8_avx2_packed_size(p->cin, p->cout, p->k);
    op->packed = aligned_alloc(64, RSQ_ROUND_UP(sz, 64));
    if (!op->packed) return 0;
    if (op->algo == RSQ_ALGO_GEMM)
      rsq_gemm_s8_avx2_pack(p->cin, p->cout, p->k, w, op->packed);
    else
      rsq_wino23_s8_avx2_pack(p->cin, p->cout, p->k, w, op->packed);
  }
#endif /* RSQ_WITH_AVX2 && RSQ_HAVE_X86 */
  return 1;
}

rsq_status rsq_conv1d_s8_create(const rsq_conv1d_s8_desc *d, rsq_conv1d_s8 **out) {
  static const char *who = "rsq_conv1d_s8_create";
  if (out) *out = NULL;
  rsq_status st0 = rsq_check_s8_create_ptrs(d && out && d->weight, d ? d->multiplier : NULL,
                                            d ? d->shift : NULL, who);
  if (st0) return st0;
  const rsq_conv1d_params *p = &d->shape;
  int32_t wmax;
  rsq_impl impl;
  rsq_status st = check_desc(d, who);
  if (st || (st = check_weights(d, &wmax, who)) || (st = check_requant_bias(d, wmax, who)) ||
      (st = choose_impl(d, wmax, &impl, who)))
    return st;

  rsq_conv1d_s8 *op = calloc(1, sizeof *op);
  if (!op) goto nomem;
  op->p = *p;
  op->algo = d->algo;
  op->impl = impl;
  op->in_absmax = d->in_absmax;
  op->w_absmax = wmax;
  op->lo = d->out_min;
  op->hi = d->out_max;
  op->requant = d->multiplier != NULL;
  {
    int32_t c = 32767 / (d->in_absmax * (wmax > 0 ? wmax : 1));
    op->chain = c > 12 ? 12 : c; /* >= 2 since 2*127*127 <= 32767 */
  }
  const size_t nw = (size_t)p->cout * p->cin * p->k;
  op->w = malloc(nw);
  if (!op->w || !rsq_rq_arrays_init(&op->rq, p->cout, d->bias, d->multiplier, d->shift)) goto nomem;
  memcpy(op->w, d->weight, nw);
  if (!pack_weights(op, d->weight)) goto nomem;
  *out = op;
  return RSQ_OK;
nomem:
  rsq_conv1d_s8_destroy(op);
  rsq_set_error("%s: out of memory", who);
  return RSQ_ERR_NOMEM;
}

static int grow_ws(rsq_conv1d_s8 *op, size_t need) {
  if (op->ws_size >= need) return 1;
  free(op->ws);
  op->ws = aligned_alloc(64, RSQ_ROUND_UP(need, 64));
  op->ws_size = op->ws ? need : 0;
  return op->ws != NULL;
}

/* The reference path: whole int8 input, int32 or requantized output, float epilogue after. */
static rsq_status conv_run_ref(rsq_conv1d_s8 *op, const rsq_s8_io *io, int32_t t_in, int32_t t_out,
                               const char *who) {
  const rsq_conv1d_params *p = &op->p;
  rsq_io_ref r;
  rsq_status st = rsq_io_ref_begin(io, (size_t)t_in * p->cin, (size_t)t_out * p->cout, &r, who);
  if (st) return st;
  if (r.acc) {
    if (op->algo == RSQ_ALGO_GEMM)
      rsq_conv1d_s8_acc_ref(p, r.x, t_in, op->w, r.acc);
    else
      rsq_wino23_s8_acc_ref(p, r.x, t_in, op->w, r.acc);
    for (int32_t t = 0; t < t_out; t++)
      for (int32_t co = 0; co < p->cout; co++) {
        int32_t *a = r.acc + (size_t)t * p->cout + co;
        *a = (int32_t)((uint32_t)*a + (uint32_t)op->rq.bias[co]);
      }
  } else if (op->algo == RSQ_ALGO_GEMM) {
    rsq_conv1d_s8_ref(p, r.x, t_in, op->w, op->rq.bias, op->rq.mult, op->rq.shift, op->lo, op->hi, io->y);
  } else {
    rsq_wino23_s8_ref(p, r.x, t_in, op->w, op->rq.bias, op->rq.mult, op->rq.shift, op->lo, op->hi, io->y);
  }
  rsq_io_ref_end(io, &r, t_out, p->cout);
  return RSQ_OK;
}

#if defined(RSQ_WITH_AVX2) && defined(RSQ_HAVE_X86)
/* Input row t of io as int8: io->x's row, or io->xf's row quantized into tmp. */
static const int8_t *in_row(const rsq_s8_io *io, int32_t t, int32_t cin, int8_t *tmp) {
  if (io->x) return io->x + (size_t)t * cin;
  rsq_quantize_row(io->xf + (size_t)t * cin, (size_t)cin, io->x_inv_scale, io->x_absmax, tmp);
  return tmp;
}
#endif /* RSQ_WITH_AVX2 && RSQ_HAVE_X86 */

/* The NEON and SDOT kernels' workspace: xpad [rows][cin_p] (xbytes, rounded up to 64) then vbytes
 * for the kernel; rows [pad_left, pad_left + t_in) of the zeroed xpad hold x (a float input
 * quantized straight into it). NULL (error set) when out of memory. */
static int8_t *s8_input(rsq_conv1d_s8 *op, const rsq_s8_io *io, int32_t t_in, int32_t rows, int32_t cin_p,
                        size_t vbytes, size_t *xbytes_out, const char *who) {
  const rsq_conv1d_params *p = &op->p;
  const size_t xbytes = RSQ_ROUND_UP((size_t)rows * cin_p, 64);
  if (!grow_ws(op, xbytes + vbytes)) {
    rsq_set_error("%s: out of memory", who);
    return NULL;
  }
  int8_t *xpad = op->ws;
  memset(xpad, 0, xbytes);
  for (int32_t t = 0; t < t_in && t + p->pad_left < rows; t++) {
    int8_t *dst = xpad + (size_t)(t + p->pad_left) * cin_p;
    if (io->xf)
      rsq_quantize_row(io->xf + (size_t)t * p->cin, (size_t)p->cin, io->x_inv_scale, io->x_absmax, dst);
    else
      memcpy(dst, io->x + (size_t)t * p->cin, (size_t)p->cin);
  }
  *xbytes_out = xbytes;
  return xpad;
}

static rsq_status conv_run(rsq_conv1d_s8 *op, const rsq_s8_io *io, int32_t t_in, int32_t threads,
                           const char *who) {
  rsq_status st = rsq_s8_run_check(op != NULL, io, op ? op->in_absmax : 0, op && op->requant,
                                   threads, who);
  if (st) return st;
  int32_t t_out;
  st = rsq_conv1d_out_length(&op->p, t_in, &t_out);
  if (st) return st;
  const rsq_conv1d_params *p = &op->p;
  if (io->x) { /* the kernels' int16 chains rely on the declared input range: check it */
    const size_t nx = (size_t)t_in * p->cin;
    int32_t xmax = 0;
    for (size_t i = 0; i < nx; i++) {
      int32_t v = io->x[i] < 0 ? -(int32_t)io->x[i] : io->x[i];
      xmax = v > xmax ? v : xmax;
    }
    if (xmax > op->in_absmax) {
      rsq_set_error("%s: input has |x| = %d > in_absmax = %d", who, xmax, op->in_absmax);
      return RSQ_ERR_PARAM;
    }
  } /* a float input is quantized to |x| <= x_absmax <= in_absmax */
  if (op->impl == RSQ_IMPL_REF) return conv_run_ref(op, io, t_in, t_out, who);
  rsq_rq rq = rsq_rq_of(&op->rq, op->lo, op->hi);
  rsq_f32_epi fe;
  int8_t *y;
  rsq_io_rq(io, &rq, &fe, p->cout, &y);
  rsq_geom g = {p->cin, p->cout, p->k, p->stride, 0, 0, t_out, op->chain, 0};
  const int32_t rows = rsq_xpad_rows(p, t_out);
  if (op->impl == RSQ_IMPL_NEON) {
    g.cin_p = RSQ_ROUND_UP(p->cin, 8);
    g.cout_p = RSQ_ROUND_UP(p->cout, 8);
    size_t xbytes, vbytes = op->algo == RSQ_ALGO_WINO23 ? rsq_wino23_s8_neon_vsize(p->cin, p->k, t_out) : 0;
    int8_t *xpad = s8_input(op, io, t_in, rows, g.cin_p, vbytes, &xbytes, who);
    if (!xpad) return RSQ_ERR_NOMEM;
    if (op->algo == RSQ_ALGO_GEMM && op->chain >= 6)
      rsq_gemm_s8_neon_2x3(&g, xpad, op->packed, &rq, y, threads);
    else if (op->algo == RSQ_ALGO_GEMM)
      rsq_gemm_s8_neon(&g, xpad, op->packed, &rq, y, threads);
    else
      rsq_wino23_s8_neon(&g, xpad, op->packed, xpad + xbytes, &rq, y, threads);
    return RSQ_OK;
  }
#if defined(RSQ_WITH_DOT)
  if (op->impl == RSQ_IMPL_DOT) {
    g.cin_p = RSQ_ROUND_UP(p->cin, 16);
    g.cout_p = RSQ_ROUND_UP(p->cout, 8);
    const int32_t drows = rsq_xpad_rows(p, RSQ_ROUND_UP(t_out, 8)); /* Winograd: blocks of 8 rows */
    size_t xbytes, vbytes = op->algo == RSQ_ALGO_WINO23 ? rsq_wino23_s8_dot_vsize(p->cin, p->k, t_out) : 0;
    int8_t *xpad = s8_input(op, io, t_in, drows, g.cin_p, vbytes, &xbytes, who);
    if (!xpad) return RSQ_ERR_NOMEM;
    if (op->algo == RSQ_ALGO_GEMM)
      rsq_gemm_s8_dot(&g, xpad, op->packed, &rq, y, threads);
    else
      rsq_wino23_s8_dot(&g, xpad, op->packed, xpad + xbytes, &rq, y, threads);
    return RSQ_OK;
  }
  if (op->impl == RSQ_IMPL_I8MM) {
    g.cin_p = RSQ_ROUND_UP(p->cin, 8);
    g.cout_p = RSQ_ROUND_UP(p->cout, 8);
    const int32_t mrows = rsq_xpad_rows(p, RSQ_ROUND_UP(t_out, 16)); /* Winograd: blocks of 16 rows */
    size_t xbytes, vbytes = op->algo == RSQ_ALGO_WINO23 ? rsq_wino23_s8_mmla_vsize(p->cin, p->k, t_out)
                                                        : rsq_gemm_s8_mmla_asize(p->cin, p->k, t_out);
    int8_t *xpad = s8_input(op, io, t_in, mrows, g.cin_p, vbytes, &xbytes, who);
    if (!xpad) return RSQ_ERR_NOMEM;
    if (op->algo == RSQ_ALGO_GEMM)
      rsq_gemm_s8_mmla(&g, xpad, op->packed, xpad + xbytes, &rq, y, threads);
    else
      rsq_wino23_s8_mmla(&g, xpad, op->packed, xpad + xbytes, &rq, y, threads);
    return RSQ_OK;
  }
#endif /* RSQ_WITH_DOT */
#if defined(RSQ_WITH_AVX2) && defined(RSQ_HAVE_X86)
  if (op->impl == RSQ_IMPL_AVX2 || op->impl == RSQ_IMPL_VNNI) {
    g.cin_p = RSQ_ROUND_UP(p->cin, 4);
    g.cout_p = RSQ_ROUND_UP(p->cout, 16);
    const int sign = avx2_sign_mode(op);
    size_t xbytes = RSQ_ROUND_UP((size_t)rows * g.cin_p + 64, 64);
    size_t vbytes = op->algo == RSQ_ALGO_WINO23 ? rsq_wino23_s8_avx2_vsize(p->cin, p->k, t_out)
                                                : sign ? xbytes : 0;
    const size_t rowq = io->xf ? RSQ_ROUND_UP((size_t)p->cin, 64) : 0; /* a quantized input row */
    if (!grow_ws(op, xbytes + vbytes + rowq)) {
      rsq_set_error("%s: out of memory", who);
      return RSQ_ERR_NOMEM;
    }
    uint8_t *xpad = op->ws;
    int8_t *xs = sign ? (int8_t *)op->ws + xbytes : NULL; /* sign mode: |x| in xpad, x in xs */
    int8_t *tmp = (int8_t *)op->ws + xbytes + vbytes;
    /* offset mode: xpad = x + xoff as uint8 (gemm_s8_avx2.c); padding rows hold x = 0 */
    const uint8_t o = sign ? 0 : (uint8_t)avx2_xoff(op->in_absmax);
    g.xoff = o;
    g.chain = sign || op->impl == RSQ_IMPL_VNNI ? 1 : avx2_chain(op->in_absmax, op->w_absmax);
    memset(xpad, o, xbytes);
    if (xs) memset(xs, 0, xbytes);
    for (int32_t t = 0; t < t_in && t + p->pad_left < rows; t++) {
      const size_t row = (size_t)(t + p->pad_left) * g.cin_p;
      if (xs) {
        const int8_t *src = in_row(io, t, p->cin, xs + row);
        if (src != xs + row) memcpy(xs + row, src, (size_t)p->cin);
        for (int32_t ci = 0; ci < p->cin; ci++) xpad[row + ci] = (uint8_t)(src[ci] < 0 ? -src[ci] : src[ci]);
      } else {
        const int8_t *src = in_row(io, t, p->cin, tmp);
        for (int32_t ci = 0; ci < p->cin; ci++) xpad[row + ci] = (uint8_t)(src[ci] + o);
      }
    }
#if defined(RSQ_WITH_VNNI)
    if (op->impl == RSQ_IMPL_VNNI) {
      if (op->algo == RSQ_ALGO_GEMM)
        rsq_gemm_s8_vnni(&g, xpad, NULL, op->packed, &rq, y, threads);
      else
        rsq_wino23_s8_vnni(&g, xpad, op->packed, xpad + xbytes, &rq, y, threads);
      return RSQ_OK;
    }
#endif /* RSQ_WITH_VNNI */
    if (op->algo == RSQ_ALGO_GEMM)
      rsq_gemm_s8_avx2(&g, xpad, xs, op->packed, &rq, y, threads);
    else
      rsq_wino23_s8_avx2(&g, xpad, op->packed, xpad + xbytes, &rq, y, threads);
    return RSQ_OK;
  }
#endif /* RSQ_WITH_AVX2 && RSQ_HAVE_X86 */
  rsq_set_error("%s: implementation %d not available", who, (int)op->impl);
  return RSQ_ERR_UNSUPPORTED;
}

rsq_status rsq_conv1d_s8_run(rsq_conv1d_s8 *op, const int8_t *x, int32_t t_in, int8_t *y,
                             int32_t threads) {
  const rsq_s8_io io = {.x = x, .y = y};
  return conv_run(op, &io, t_in, threads, "rsq_conv1d_s8_run");
}

rsq_status rsq_conv1d_s8_run_acc(rsq_conv1d_s8 *op, const int8_t *x, int32_t t_in, int32_t *acc,
                                 int32_t threads) {
  const rsq_s8_io io = {.x = x, .acc = acc};
  return conv_run(op, &io, t_in, threads, "rsq_conv1d_s8_run_acc");
}

rsq_status rsq_conv1d_s8_run_io(rsq_conv1d_s8 *op, const rsq_s8_io *io, int32_t t_in,
                                int32_t threads) {
  return conv_run(op, io, t_in, threads, "rsq_conv1d_s8_run_io");
}
