/* dwconv_s8.c - INT8 depthwise Conv1D op layer: validation, weight packing, workspace, dispatch
 * (shared checks: op_common.c; per-channel requantization arrays: requant.c). */
#include <stdlib.h>
#include <string.h>

#include "op_common.h"

struct rsq_dwconv1d_s8 {
  int32_t channels, k, pad_left, pad_right, lo, hi;
  rsq_impl impl;
  int requant;      /* 0: created without multipliers (int32 / float output only) */
  int8_t *w;        /* [channels][k] (reference) */
  int8_t *wpk;      /* [k][c_p] (NEON, AVX2) */
  rsq_rq_arrays rq; /* bias and requantization per channel, padded */
  int8_t *ws;
  size_t ws_size;
};

/* channel stride of xpad and the packed weights: 16 serves both kernels (8 per NEON vector) */
static int32_t dw_cp(int32_t channels) { return RSQ_ROUND_UP(channels, 16); }

void rsq_dwconv1d_s8_destroy(rsq_dwconv1d_s8 *op) {
  if (!op) return;
  free(op->w);
  free(op->wpk);
  rsq_rq_arrays_free(&op->rq);
  free(op->ws);
  free(op);
}

rsq_impl rsq_dwconv1d_s8_impl(const rsq_dwconv1d_s8 *op) { return op ? op->impl : RSQ_IMPL_AUTO; }

rsq_status rsq_dwconv1d_s8_create(const rsq_dwconv1d_s8_desc *d, rsq_dwconv1d_s8 **out) {
  static const char *who = "rsq_dwconv1d_s8_create";
  if (out) *out = NULL;
  rsq_status st0 = rsq_check_s8_create_ptrs(d && out && d->weight, d ? d->multiplier : NULL,
                                            d ? d->shift : NULL, who);
  if (st0) return st0;
  if (d->channels < 1 || d->channels > (1 << 20)) {
    rsq_set_error("%s: channels = %d must be in [1, 2^20]", who, d->channels);
    return RSQ_ERR_SHAPE;
  }
  if (d->k < 1 || d->k > 64) {
    rsq_set_error("%s: k = %d must be in [1, 64]", who, d->k);
    return RSQ_ERR_PARAM;
  }
  if (d->pad_left < 0 || d->pad_right < 0 || d->pad_left >= d->k || d->pad_right >= d->k) {
    rsq_set_error("%s: pads %d/%d must be in [0, k-1] (k = %d)", who, d->pad_left, d->pad_right, d->k);
    return RSQ_ERR_PARAM;
  }
  rsq_status st = rsq_check_impl_value(d->impl, who);
  if (st || (st = rsq_check_s8_clamp(d->out_min, d->out_max, who))) return st;
  const size_t nw = (size_t)d->channels * d->k;
  for (size_t i = 0; i < nw; i++)
    if (d->weight[i] == -128) {
      rsq_set_error("%s: weight[%zu] = -128 (symmetric int8 is [-127, 127])", who, i);
      return RSQ_ERR_PARAM;
    }
  const int64_t bmax = (int64_t)INT32_MAX - (int64_t)d->k * 127 * 127;
  for (int32_t c = 0; c < d->channels; c++) {
    if ((st = rsq_check_requant_channel(d->multiplier, d->shift, c, who))) return st;
    if (d->bias && (d->bias[c] > bmax || d->bias[c] < -bmax)) {
      rsq_set_error("%s: |bias[%d]| = %d too large for int32 accumulation", who, c, d->bias[c]);
      return RSQ_ERR_PARAM;
    }
  }
  rsq_impl impl = d->impl;
  if (impl == RSQ_IMPL_AUTO) { /* x86: the native AVX2 kernel, never the SIMDe NEON one */
    impl = rsq_impl_available(RSQ_IMPL_AVX2)   ? RSQ_IMPL_AVX2
           : rsq_impl_available(RSQ_IMPL_NEON) ? RSQ_IMPL_NEON
                                               : RSQ_IMPL_REF;
  } else if (impl == RSQ_IMPL_VNNI || impl == RSQ_IMPL_DOT || impl == RSQ_IMPL_I8MM ||
             (impl == RSQ_IMPL_AVX2 && !rsq_impl_available(RSQ_IMPL_AVX2)) ||
             (impl == RSQ_IMPL_NEON && !rsq_impl_available(RSQ_IMPL_NEON))) {
    rsq_set_error("%s: implementation %d not available for the depthwise op in this build/CPU",
                  who, (int)impl);
    return RSQ_ERR_UNSUPPORTED;
  }
  rsq_dwconv1d_s8 *op = calloc(1, sizeof *op);
  if (!op) goto nomem;
  op->channels = d->channels;
  op->k = d->k;
  op->pad_left = d->pad_left;
  op->pad_right = d->pad_right;
  op->lo = d->out_min;
  op->hi = d->out_max;
  op->impl = impl;
  op->requant = d->multiplier != NULL;
  const int32_t c_p = dw_cp(d->channels);
  op->w = malloc(nw);
  op->wpk = calloc((size_t)d->k * c_p, 1);
  if (!op->w || !op->wpk || !rsq_rq_arrays_init(&op->rq, d->channels, d->bias, d->multiplier, d->shift))
    goto nomem;
  memcpy(op->w, d->weight, nw);
  for (int32_t c = 0; c < d->channels; c++)
    for (int32_t j = 0; j < d->k; j++) op->wpk[(size_t)j * c_p + c] = d->weight[(size_t)c * d->k + j];
  *out = op;
  return RSQ_OK;
nomem:
  rsq_dwconv1d_s8_destroy(op);
  rsq_set_error("%s: out of memory", who);
  return RSQ_ERR_NOMEM;
}

static rsq_status dw_run(rsq_dwconv1d_s8 *op, const rsq_s8_io *io, int32_t t_in, int32_t threads,
                         const char *who) {
  rsq_status st = rsq_s8_run_check(op != NULL, io, 127, op && op->requant, threads, who);
  if (st) return st;
  const rsq_conv1d_params shape = {op->channels, op->channels, op->k, 1, op->pad_left, op->pad_right};
  int32_t t_out;
  if ((st = rsq_out_length(&shape, t_in, &t_out, who))) return st;
  const size_t nx = (size_t)t_in * op->channels;
  if (io->x)
    for (size_t i = 0; i < nx; i++)
      if (io->x[i] == -128) {
        rsq_set_error("%s: x[%zu] = -128 (symmetric int8 is [-127, 127])", who, i);
        return RSQ_ERR_PARAM;
      }
  if (op->impl == RSQ_IMPL_REF) {
    rsq_io_ref r;
    st = rsq_io_ref_begin(io, nx, (size_t)t_out * op->channels, &r, who);
    if (st) return st;
    rsq_dwconv1d_s8_ref(op->channels, op->k, op->pad_left, op->pad_right, r.x, t_in, op->w,
                        op->rq.bias, op->rq.mult, op->rq.shift, op->lo, op->hi, io->y, r.acc);
    rsq_io_ref_end(io, &r, t_out, op->channels);
    return RSQ_OK;
  }
  const int32_t c_p = dw_cp(op->channels);
  const size_t rows = (size_t)RSQ_ROUND_UP(t_out, 4) + op->k - 1;
  const size_t need = rows * c_p;
  if (op->ws_size < need) {
    free(op->ws);
    op->ws = malloc(need);
    op->ws_size = op->ws ? need : 0;
    if (!op->ws) {
      rsq_set_error("%s: out of memory", who);
      return RSQ_ERR_NOMEM;
    }
  }
  memset(op->ws, 0, need);
  for (int32_t t = 0; t < t_in && (size_t)t + op->pad_left < rows; t++) {
    int8_t *dst = op->ws + ((size_t)t + op->pad_left) * c_p;
    if (io->xf) /* quantized straight into the padded input */
      rsq_quantize_row(io->xf + (size_t)t * op->channels, (size_t)op->channels, io->x_inv_scale,
                       io->x_absmax, dst);
    else
      memcpy(dst, io->x + (size_t)t * op->channels, (size_t)op->channels);
  }
  rsq_rq rq = rsq_rq_of(&op->rq, op->lo, op->hi);
  rsq_f32_epi fe;
  int8_t *y;
  rsq_io_rq(io, &rq, &fe, op->channels, &y);
#if defined(RSQ_WITH_AVX2) && defined(RSQ_HAVE_X86)
  if (op->impl == RSQ_IMPL_AVX2) {
    rsq_dwconv1d_s8_avx2(op->channels, op->k, t_out, op->ws, op->wpk, &rq, y, threads);
    return RSQ_OK;
  }
#endif /* RSQ_WITH_AVX2 && RSQ_HAVE_X86 */
#if defined(__ARM_NEON) || defined(__ARM_NEON__) || defined(RSQ_WITH_SIMDE_NEON)
  if (op->impl == RSQ_IMPL_NEON) {
    rsq_dwconv1d_s8_neon(op->channels, op->k, t_out, op->ws, op->wpk, &rq, y, threads);
    return RSQ_OK;
  }
#endif /* NEON: native or SIMDe */
  rsq_set_error("%s: implementation %d not available", who, (int)op->impl);
  return RSQ_ERR_UNSUPPORTED;
}

rsq_status rsq_dwconv1d_s8_run(rsq_dwconv1d_s8 *op, const int8_t *x, int32_t t_in, int8_t *y,
                               int32_t threads) {
  const rsq_s8_io io = {.x = x, .y = y};
  return dw_run(op, &io, t_in, threads, "rsq_dwconv1d_s8_run");
}

rsq_status rsq_dwconv1d_s8_run_acc(rsq_dwconv1d_s8 *op, const int8_t *x, int32_t t_in,
                                   int32_t *acc, int32_t threads) {
  const rsq_s8_io io = {.x = x, .acc = acc};
  return dw_run(op, &io, t_in, threads, "rsq_dwconv1d_s8_run_acc");
}

rsq_status rsq_dwconv1d_s8_run_io(rsq_dwconv1d_s8 *op, const rsq_s8_io *io, int32_t t_in,
                                  int32_t threads) {
  return dw_run(op, io, t_in, threads, "rsq_dwconv1d_s8_run_io");
}
