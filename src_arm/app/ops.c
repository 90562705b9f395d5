/* ops.c - the librsq kernel ops of a loaded model's layers (rsqm_prepare): created once, with the
 * weights packed for the kernels this build and CPU run, and destroyed with the model. The
 * loader (model.c) only parses and validates the file; everything here trusts its checks. */
#include <math.h>

#include "rsqm.h"

/* One layer's op with the given time padding (none for a grouped FP32 conv: exec.c runs it as
 * a direct loop): the layer's own (rsqm_prepare) or none (stream.c). */
rsq_status rsqm_create_layer_op(const rsqm_layer *L, int32_t pad_l, int32_t pad_r, rsq_conv1d_s8 **op8,
                                rsq_dwconv1d_s8 **dw8, rsq_conv1d_f32 **opf) {
  if (L->scheme == RSQM_FP32) {
    if (L->groups > 1) return RSQ_OK;
    if (L->op == RSQM_OP_LINEAR)
      return rsq_linear_f32_create(L->cin, L->cout, L->wf, L->bf, RSQ_IMPL_AUTO, opf);
    rsq_conv1d_f32_desc d = {{L->cin, L->cout, L->k, L->stride, pad_l, pad_r}, RSQ_IMPL_AUTO,
                             L->wf, L->bf, -INFINITY, INFINITY};
    return rsq_conv1d_f32_create(&d, opf);
  }
  /* int8. A float-output layer runs with int32 or float output (rsq_s8_io acc / yf, exec.c): an
   * accumulator-only op, without multipliers (its clamp is unused, any valid one will do). */
  const int requant = L->out == RSQM_OUT_REQUANT;
  const int32_t *M = requant ? L->mult : NULL, *S = requant ? L->shift : NULL;
  const int32_t lo = requant ? L->lo : -127, hi = requant ? L->hi : 127;
  if (L->groups > 1) {
    rsq_dwconv1d_s8_desc d = {L->cin, L->k, pad_l, pad_r, RSQ_IMPL_AUTO, L->w8, L->b32, M, S, lo, hi};
    return rsq_dwconv1d_s8_create(&d, dw8);
  }
  rsq_conv1d_s8_desc d = {{L->cin, L->cout, L->k, L->stride, pad_l, pad_r},
                          L->scheme == RSQM_WINO23 ? RSQ_ALGO_WINO23 : RSQ_ALGO_GEMM,
                          RSQ_IMPL_AUTO, L->act_T, L->w8, L->b32, M, S, lo, hi};
  return rsq_conv1d_s8_create(&d, op8);
}

int rsqm_prepare(rsqm_model *m, char *err, size_t errlen) {
  if (m->prepared) return 0;
  for (int32_t i = 0; i < m->n_layers; i++) {
    rsqm_layer *L = &m->layers[i];
    if (rsqm_create_layer_op(L, L->pad_l, L->pad_r, &L->op8, &L->dw8, &L->opf) != RSQ_OK) {
      rsqm_seterr(err, errlen, "layer %d (%s): %s", i, L->name, rsq_last_error());
      return 1;
    }
  }
  m->prepared = 1;
  return 0;
}

void rsqm_ops_free(rsqm_model *m) {
  if (!m->layers) return;
  for (int32_t i = 0; i < m->n_layers; i++) {
    rsqm_layer *L = &m->layers[i];
    rsq_conv1d_s8_destroy(L->op8);
    rsq_dwconv1d_s8_destroy(L->dw8);
    rsq_conv1d_f32_destroy(L->opf);
    L->op8 = NULL;
    L->dw8 = NULL;
    L->opf = NULL;
  }
  m->prepared = 0;
}
