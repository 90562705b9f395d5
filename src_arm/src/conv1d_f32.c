/* conv1d_f32.c - FP32 Conv1D / linear op layer (shared checks: op_common.c). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "op_common.h"

struct rsq_conv1d_f32 {
  rsq_conv1d_params p;
  rsq_impl impl;
  float lo, hi;
  float *w, *bias, *packed, *ws;
  size_t ws_size;
};

void rsq_conv1d_f32_destroy(rsq_conv1d_f32 *op) {
  if (!op) return;
  free(op->w);
  free(op->bias);
  free(op->packed);
  free(op->ws);
  free(op);
}

rsq_status rsq_conv1d_f32_create(const rsq_conv1d_f32_desc *d, rsq_conv1d_f32 **out) {
  static const char *who = "rsq_conv1d_f32_create";
  if (out) *out = NULL;
  if (!d || !out || !d->weight) {
    rsq_set_error("%s: null pointer (desc, out, weight are required)", who);
    return RSQ_ERR_NULL;
  }
  *out = NULL;
  const rsq_conv1d_params *p = &d->shape;
  rsq_status st = rsq_check_conv_shape(p, who);
  if (st) return st;
  if (d->impl != RSQ_IMPL_AUTO && d->impl != RSQ_IMPL_REF) {
    rsq_set_error("%s: impl %d unsupported for FP32 (AUTO or REF)", who, (int)d->impl);
    return RSQ_ERR_UNSUPPORTED;
  }
  if (isnan(d->out_min) || isnan(d->out_max) || d->out_min > d->out_max) {
    rsq_set_error("%s: clamp [%g, %g] invalid", who, d->out_min, d->out_max);
    return RSQ_ERR_PARAM;
  }
  rsq_conv1d_f32 *op = calloc(1, sizeof *op);
  if (!op) goto nomem;
  op->p = *p;
  op->impl = d->impl == RSQ_IMPL_REF ? RSQ_IMPL_REF : RSQ_IMPL_AUTO;
  op->lo = d->out_min;
  op->hi = d->out_max;
  const size_t nw = (size_t)p->cout * p->cin * p->k;
  op->w = malloc(nw * sizeof(float));
  op->bias = calloc(RSQ_ROUND_UP((size_t)p->cout, 16), sizeof(float));
  op->packed = malloc(rsq_conv1d_f32_packed_size(p->cin, p->cout, p->k) * sizeof(float));
  if (!op->w || !op->bias || !op->packed) goto nomem;
  memcpy(op->w, d->weight, nw * sizeof(float));
  if (d->bias) memcpy(op->bias, d->bias, (size_t)p->cout * sizeof(float));
  rsq_conv1d_f32_pack(p->cin, p->cout, p->k, d->weight, op->packed);
  *out = op;
  return RSQ_OK;
nomem:
  rsq_conv1d_f32_destroy(op);
  rsq_set_error("%s: out of memory", who);
  return RSQ_ERR_NOMEM;
}

rsq_status rsq_linear_f32_create(int32_t in_features, int32_t out_features, const float *weight,
                                 const float *bias, rsq_impl impl, rsq_conv1d_f32 **op) {
  rsq_conv1d_f32_desc d = {{in_features, out_features, 1, 1, 0, 0}, impl, weight, bias,
                           -INFINITY, INFINITY};
  return rsq_conv1d_f32_create(&d, op);
}

rsq_status rsq_conv1d_f32_run(rsq_conv1d_f32 *op, const float *x, int32_t t_in, float *y,
                              int32_t threads) {
  static const char *who = "rsq_conv1d_f32_run";
  if (!op || !x || !y) {
    rsq_set_error("%s: null pointer (op, x, y are required)", who);
    return RSQ_ERR_NULL;
  }
  rsq_status st = rsq_check_threads(threads, who);
  if (st) return st;
  int32_t t_out;
  if ((st = rsq_conv1d_out_length(&op->p, t_in, &t_out))) return st;
  const rsq_conv1d_params *p = &op->p;
  if (op->impl == RSQ_IMPL_REF) {
    rsq_conv1d_f32_ref(p, x, t_in, op->w, op->bias, op->lo, op->hi, y);
    return RSQ_OK;
  }
  const int32_t rows = (RSQ_ROUND_UP(t_out, 4) - 1) * p->stride + p->k;
  const size_t need = (size_t)rows * p->cin;
  if (op->ws_size < need) {
    free(op->ws);
    op->ws = malloc(need * sizeof(float));
    op->ws_size = op->ws ? need : 0;
    if (!op->ws) {
      rsq_set_error("%s: out of memory", who);
      return RSQ_ERR_NOMEM;
    }
  }
  memset(op->ws, 0, need * sizeof(float));
  for (int32_t t = 0; t < t_in && t + p->pad_left < rows; t++)
    memcpy(op->ws + (size_t)(t + p->pad_left) * p->cin, x + (size_t)t * p->cin,
           (size_t)p->cin * sizeof(float));
  rsq_geom g = {p->cin, p->cout, p->k, p->stride, p->cin, RSQ_ROUND_UP(p->cout, 16), t_out, 0, 0};
  rsq_conv1d_f32_fast(&g, op->ws, op->packed, op->bias, op->lo, op->hi, y, threads);
  return RSQ_OK;
}
