/* epilogue.c - the float32 steps the int8 ops can take over from the executor (rsq_s8_io):
 * quantizing a float input and dequantizing (+ ReLU, + residual add) the int32 output. Built
 * with -ffp-contract=off (CMakeLists.txt): every step is one float32 rounding, exactly as
 * app/exec.c and the Python integer reference (rsqasr/quant/numerics.py) do them. */
#include <stdlib.h>

#include "internal.h"

void rsq_store_f32_row(const rsq_f32_epi *e, size_t i0, int32_t co0, const int32_t *a,
                       const int32_t *bias, int32_t ncols) {
  const float *deq = e->deq + co0;
  float *y = e->yf + i0;
  for (int32_t c = 0; c < ncols; c++) {
    float v = (float)(int32_t)((uint32_t)a[c] + (uint32_t)bias[c]) * deq[c];
    if (e->relu) v = v < 0.0f ? 0.0f : v;
    if (e->add) v = e->add[i0 + c] + v; /* add(x, layer) = x + layer: commutative in IEEE */
    y[c] = v;
  }
}

/* Round half away from zero without libm: clamping first is the same as clamping the rounded
 * value (absmax is an integer), t = trunc(u) and u - t are exact for |u| <= 127. */
void rsq_quantize_row(const float *x, size_t n, float inv, int32_t absmax, int8_t *q) {
  const float hi = (float)absmax, lo = -hi;
  for (size_t i = 0; i < n; i++) {
    float u = x[i] * inv;
    u = u == u ? u : 0.0f; /* NaN */
    u = u > hi ? hi : u;
    u = u < lo ? lo : u;
    int32_t t = (int32_t)u;
    const float d = u - (float)t;
    t += (d >= 0.5f) - (d <= -0.5f);
    q[i] = (int8_t)t;
  }
}

rsq_status rsq_quantize_f32(const float *x, size_t n, float inv_scale, int32_t absmax, int8_t *q) {
  if ((!x || !q) && n) {
    rsq_set_error("rsq_quantize_f32: null pointer");
    return RSQ_ERR_NULL;
  }
  if (absmax < 1 || absmax > 127 || !(inv_scale > 0.0f)) { /* +inf: 1/s of a subnormal s */
    rsq_set_error("rsq_quantize_f32: absmax = %d (1..127) or inv_scale = %g (> 0) invalid",
                  absmax, (double)inv_scale);
    return RSQ_ERR_PARAM;
  }
  rsq_quantize_row(x, n, inv_scale, absmax, q);
  return RSQ_OK;
}

rsq_status rsq_io_check(const rsq_s8_io *io, int32_t in_absmax, const char *who) {
  if (!io || (!io->x && !io->xf)) {
    rsq_set_error("%s: null pointer (io and its input x or xf are required)", who);
    return RSQ_ERR_NULL;
  }
  if (!!io->y + !!io->acc + !!io->yf != 1 || (io->yf && !io->deq) || (io->x && io->xf)) {
    rsq_set_error("%s: give one input (x or xf) and one output (y, acc or yf with deq)", who);
    return io->y || io->acc || io->yf ? RSQ_ERR_PARAM : RSQ_ERR_NULL;
  }
  if (io->xf && (io->x_absmax < 1 || io->x_absmax > in_absmax || !(io->x_inv_scale > 0.0f))) {
    rsq_set_error("%s: float input needs 1 <= x_absmax <= %d (got %d) and x_inv_scale > 0",
                  who, in_absmax, io->x_absmax);
    return RSQ_ERR_PARAM;
  }
  return RSQ_OK;
}

void rsq_io_rq(const rsq_s8_io *io, rsq_rq *rq, rsq_f32_epi *fe, int32_t cout, int8_t **y) {
  *y = io->y;
  if (io->acc) {
    *y = (int8_t *)io->acc;
    rq->acc = io->acc;
    rq->ybase = *y;
  } else if (io->yf) {
    *fe = (rsq_f32_epi){io->yf, io->deq, io->add, io->relu, cout};
    *y = (int8_t *)io->yf;
    rq->acc = (int32_t *)(void *)io->yf;
    rq->ybase = *y;
    rq->fe = fe;
  }
}

void rsq_io_finish_acc(const rsq_s8_io *io, const int32_t *acc, int32_t t_out, int32_t cout) {
  static const int32_t zero[64];
  const rsq_f32_epi fe = {io->yf, io->deq, io->add, io->relu, cout};
  for (int32_t t = 0; t < t_out; t++)
    for (int32_t c0 = 0; c0 < cout; c0 += 64) {
      const size_t i0 = (size_t)t * cout + c0;
      rsq_store_f32_row(&fe, i0, c0, acc + i0, zero, cout - c0 < 64 ? cout - c0 : 64);
    }
}

rsq_status rsq_io_ref_begin(const rsq_s8_io *io, size_t nx, size_t ny, rsq_io_ref *r, const char *who) {
  *r = (rsq_io_ref){io->x, io->acc, NULL, NULL};
  if (io->xf && !(r->xq_buf = malloc(nx ? nx : 1))) goto nomem;
  if (io->yf && !(r->acc_buf = malloc(ny ? ny * sizeof(int32_t) : 1))) goto nomem;
  if (io->xf) {
    rsq_quantize_row(io->xf, nx, io->x_inv_scale, io->x_absmax, r->xq_buf);
    r->x = r->xq_buf;
  }
  if (io->yf) r->acc = r->acc_buf;
  return RSQ_OK;
nomem:
  free(r->xq_buf);
  r->xq_buf = NULL;
  rsq_set_error("%s: out of memory", who);
  return RSQ_ERR_NOMEM;
}

void rsq_io_ref_end(const rsq_s8_io *io, rsq_io_ref *r, int32_t t_out, int32_t cout) {
  if (io->yf) rsq_io_finish_acc(io, r->acc, t_out, cout);
  free(r->xq_buf);
  free(r->acc_buf);
  r->xq_buf = NULL;
  r->acc_buf = NULL;
}
