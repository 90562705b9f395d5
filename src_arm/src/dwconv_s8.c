/* dwconv_s8.c - INT8 depthwise Conv1D op layer: validation, weight packing, workspace, dispatch. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct rsq_dwconv1d_s8 {
  int32_t channels, k, pad_left, pad_right, lo, hi;
  rsq_impl impl;
  int8_t *w;                                      /* [channels][k] (reference) */
  int8_t *wpk;                                    /* [k][c_p] (NEON, AVX2) */
  int32_t *bias, *mult, *shift, *lshift, *rshift; /* padded to RSQ_COUT_PAD */
  int8_t *ws;
  size_t ws_size;
};

/* channel stride of xpad and the packed weights: 16 serves both kernels (8 per NEON vector) */
static int32_t dw_cp(int32_t channels) { return RSQ_ROUND_UP(channels, 16); }

void rsq_dwconv1d_s8_destroy(rsq_dwconv1d_s8 *op) {
  if (!op) return;
  free(op->w);
  free(op->wpk);
  free(op->bias);
  free(op->mult);
  free(op->shift);
  free(op->lshift);
  free(op->rshift);
  free(op->ws);
  free(op);
}

rsq_impl rsq_dwconv1d_s8_impl(const rsq_dwconv1d_s8 *op) { return op ? op->impl : RSQ_IMPL_AUTO; }

rsq_status rsq_dwconv1d_s8_create(const rsq_dwconv1d_s8_desc *d, rsq_dwconv1d_s8 **out) {
  static const char *who = "rsq_dwconv1d_s8_create";
  if (out) *out = NULL;
  if (!d || !out || !d->weight || !d->multiplier || !d->shift) {
    rsq_set_error("%s: null pointer (desc, out, weight, multiplier and shift are required)", who);
    return RSQ_ERR_NULL;
  }
  *out = NULL;
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
  if (d->impl < RSQ_IMPL_AUTO || d->impl > RSQ_IMPL_VNNI) {
    rsq_set_error("%s: unknown impl %d", who, (int)d->impl);
    return RSQ_ERR_PARAM;
  }
  if (d->out_min < -127 || d->out_max > 127 || d->out_min > d->out_max) {
    rsq_set_error("%s: clamp [%d, %d] must satisfy -127 <= min <= max <= 127", who, d->out_min,
                  d->out_max);
    return RSQ_ERR_PARAM;
  }
  const size_t nw = (size_t)d->channels * d->k;
  for (size_t i = 0; i < nw; i++)
    if (d->weight[i] == -128) {
      rsq_set_error("%s: weight[%zu] = -128 (symmetric int8 is [-127, 127])", who, i);
      return RSQ_ERR_PARAM;
    }
  const int64_t bmax = (int64_t)INT32_MAX - (int64_t)d->k * 127 * 127;
  for (int32_t c = 0; c < d->channels; c++) {
    if (d->multiplier[c] < (1 << 30)) {
      rsq_set_error("%s: multiplier[%d] = %d must be in [2^30, 2^31)", who, c, d->multiplier[c]);
      return RSQ_ERR_PARAM;
    }
    if (d->shift[c] < -31 || d->shift[c] > 31) {
      rsq_set_error("%s: shift[%d] = %d must be in [-31, 31]", who, c, d->shift[c]);
      return RSQ_ERR_PARAM;
    }
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
  } else if (impl == RSQ_IMPL_VNNI || (impl == RSQ_IMPL_AVX2 && !rsq_impl_available(RSQ_IMPL_AVX2)) ||
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
  const int32_t c_p = dw_cp(d->channels);
  const size_t cpad = RSQ_ROUND_UP((size_t)d->channels + 16, RSQ_COUT_PAD);
  op->w = malloc(nw);
  op->wpk = calloc((size_t)d->k * c_p, 1);
  op->bias = calloc(cpad, sizeof(int32_t));
  op->mult = calloc(cpad, sizeof(int32_t));
  op->shift = calloc(cpad, sizeof(int32_t));
  op->lshift = calloc(cpad, sizeof(int32_t));
  op->rshift = calloc(cpad, sizeof(int32_t));
  if (!op->w || !op->wpk || !op->bias || !op->mult || !op->shift || !op->lshift || !op->rshift)
    goto nomem;
  memcpy(op->w, d->weight, nw);
  for (int32_t c = 0; c < d->channels; c++) {
    for (int32_t j = 0; j < d->k; j++) op->wpk[(size_t)j * c_p + c] = d->weight[(size_t)c * d->k + j];
    op->bias[c] = d->bias ? d->bias[c] : 0;
    op->mult[c] = d->multiplier[c];
    op->shift[c] = d->shift[c];
    op->lshift[c] = d->shift[c] < 0 ? -d->shift[c] : 0;
    op->rshift[c] = d->shift[c] > 0 ? d->shift[c] : 0;
  }
  for (size_t c = (size_t)d->channels; c < cpad; c++) op->mult[c] = 1 << 30;
  *out = op;
  return RSQ_OK;
nomem:
  rsq_dwconv1d_s8_destroy(op);
  rsq_set_error("%s: out of memory", who);
  return RSQ_ERR_NOMEM;
}

static rsq_status dw_run(rsq_dwconv1d_s8 *op, const rsq_s8_io *io, int32_t t_in, int32_t threads,
                         const char *who) {
  if (!op) {
    rsq_set_error("%s: null pointer (op, x and the output are required)", who);
    return RSQ_ERR_NULL;
  }
  rsq_status st = rsq_io_check(io, 127, who);
  if (st) return st;
  if (threads < 1) {
    rsq_set_error("%s: threads = %d must be >= 1", who, threads);
    return RSQ_ERR_PARAM;
  }
  const int64_t t_out64 = (int64_t)t_in + op->pad_left + op->pad_right - op->k + 1;
  if (t_in < 1 || t_out64 < 1 || t_out64 > INT32_MAX / 2) {
    rsq_set_error("%s: t_in = %d with k = %d, pads = %d/%d gives no output", who, t_in, op->k,
                  op->pad_left, op->pad_right);
    return RSQ_ERR_SHAPE;
  }
  const int32_t t_out = (int32_t)t_out64;
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
                        op->bias, op->mult, op->shift, op->lo, op->hi, io->y, r.acc);
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
  rsq_rq rq = {op->bias, op->mult, op->lshift, op->rshift, op->lo, op->hi, NULL, NULL, NULL};
  rsq_f32_epi fe;
  int8_t *y;
  rsq_io_rq(io, &rq, &fe, op->channels, &y);
#if defined(RSQ_WITH_AVX2) && defined(RSQ_HAVE_X86)
  if (op->impl == RSQ_IMPL_AVX2) {
    rsq_dwconv1d_s8_avx2(op->channels, op->k, t_out, op->ws, op->wpk, &rq, y, threads);
    return RSQ_OK;
  }
#endif
#if defined(__ARM_NEON) || defined(__ARM_NEON__) || defined(RSQ_WITH_SIMDE_NEON)
  if (op->impl == RSQ_IMPL_NEON) {
    rsq_dwconv1d_s8_neon(op->channels, op->k, t_out, op->ws, op->wpk, &rq, y, threads);
    return RSQ_OK;
  }
#endif
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
