/* exec.c - runs a loaded model's graph with librsq's kernels, bit-exact with the Python integer
 * reference (rsqasr/quant/intref.py) for every integer layer and every float32 elementwise op:
 *   CMVN          x = (f - mean) / std                        (float32, a division: GlobalMVN)
 *   quantize      q = clamp(roundf(x * (1.0f / s_in)), -T, T)  (round half away from zero)
 *   int8 layer    rsq_conv1d_s8 / rsq_dwconv1d_s8: requantized int8, or int32 acc (run_acc)
 *   dequantize    y = (float)acc * deq[co]
 *   add / relu    float32 a + b / (x < 0 ? 0 : x); int8 relu max(q, 0)
 *   FP32 layers   rsq_conv1d_f32 / linear (summation order differs from BLAS: tolerance)
 * Values are stored time-major [T][C] whatever their logical PyTorch layout (rsqm_node). This
 * file is compiled with -ffp-contract=off: no fused multiply-adds in the float32 steps. The
 * logits go on to CTC greedy search and detokenization in decode.c.
 * Fusion (plan_run; off with m->no_fuse): an int8 layer quantizes a float input itself, straight
 * into its kernel's input layout, and an int8 layer with float output dequantizes in its kernel
 * epilogue and takes over a following ReLU and then a following residual add (rsq_s8_io). The
 * float steps and their order stay the same (a + b == b + a in IEEE arithmetic), so the output
 * is bit for bit the unfused one; the saving is the passes over memory (and the int32 buffers). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if (defined(__arm__) || defined(__aarch64__)) && defined(__linux__)
#include <unistd.h>
#endif /* (__arm__ || __aarch64__) && __linux__ */

#include "rsqm.h"

/* ---------------------------------------------------------------- profile (--profile) */
const char *const rsqm_kind_names[RSQM_N_KINDS] = {"front", "conv_k3", "pointwise", "depthwise",
                                                   "classifier", "glue"};

int rsqm_layer_kind(const rsqm_layer *L) {
  if (L->op == RSQM_OP_LINEAR) return RSQM_K_CLASSIFIER;
  if (L->groups > 1) return RSQM_K_DEPTHWISE;
  if (L->stride > 1) return RSQM_K_FRONT;
  return L->k == 1 ? RSQM_K_POINTWISE : RSQM_K_CONV_K3;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

/* Close the running kind's interval and open `kind`'s (RSQM_N_KINDS: none, end of a run). */
static void prof_enter(rsqm_profile *p, int kind) {
  if (!p || p->cur == kind) return;
  const double t = now_ms();
  if (p->cur >= 0 && p->cur < RSQM_N_KINDS) p->ms[p->cur] += t - p->t_last;
  p->t_last = t;
  p->cur = kind;
#if (defined(__arm__) || defined(__aarch64__)) && defined(__linux__)
  syscall(RSQM_MARK_SYSCALL, kind); /* -ENOSYS; seen by the qemu counter */
#endif /* (__arm__ || __aarch64__) && __linux__ */
}


/* ---------------------------------------------------------------- buffer pool */
/* Buffers of the executor's values and temporaries, kept by the model: a request takes the
 * smallest free buffer that is large enough (or regrows a free one, or adds one), a release
 * marks it free. The graph keeps the same shapes from one utterance to the next, so after the
 * first utterance of a given length no request allocates. */
typedef struct rsqm_pool {
  void **buf;
  size_t *cap;
  uint8_t *busy;
  int32_t n, max;
} rsqm_pool;

void rsqm_pool_free(rsqm_pool *pool) {
  if (!pool) return;
  for (int32_t i = 0; i < pool->n; i++) free(pool->buf[i]);
  free(pool->buf);
  free(pool->cap);
  free(pool->busy);
  free(pool);
}

static void *pool_get(rsqm_model *m, size_t bytes) {
  if (!m->pool && !(m->pool = calloc(1, sizeof(rsqm_pool)))) return NULL;
  rsqm_pool *p = m->pool;
  if (bytes == 0) bytes = 1;
  int32_t best = -1, any = -1;
  for (int32_t i = 0; i < p->n; i++) {
    if (p->busy[i]) continue;
    if (p->cap[i] >= bytes && (best < 0 || p->cap[i] < p->cap[best])) best = i;
    if (any < 0 || p->cap[i] > p->cap[any]) any = i;
  }
  if (best < 0 && any >= 0) { /* regrow the largest free buffer */
    void *nb = malloc(bytes);
    if (!nb) return NULL;
    free(p->buf[any]);
    p->buf[any] = nb;
    p->cap[any] = bytes;
    best = any;
  }
  if (best < 0) {
    if (p->n == p->max) {
      const int32_t mx = p->max ? 2 * p->max : 16;
      void **b = realloc(p->buf, (size_t)mx * sizeof *b);
      if (b) p->buf = b;
      size_t *c = realloc(p->cap, (size_t)mx * sizeof *c);
      if (c) p->cap = c;
      uint8_t *u = realloc(p->busy, (size_t)mx);
      if (u) p->busy = u;
      if (!b || !c || !u) return NULL;
      p->max = mx;
    }
    if (!(p->buf[p->n] = malloc(bytes))) return NULL;
    p->cap[p->n] = bytes;
    best = p->n++;
  }
  p->busy[best] = 1;
  return p->buf[best];
}

static void pool_put(rsqm_model *m, void *ptr) {
  if (!ptr || !m->pool) return;
  for (int32_t i = 0; i < m->pool->n; i++)
    if (m->pool->buf[i] == ptr) {
      m->pool->busy[i] = 0;
      return;
    }
}

/* ---------------------------------------------------------------- run plan */
/* Made once per model. Fusion: an int8 layer whose float output has one reader takes over a
 * following ReLU and then a following residual add (the kernels' float epilogue, rsq_s8_io),
 * when the add's other operand is float; the ReLU and add nodes then only name the layer's
 * buffer. Order: the graph's, except that a fused add's other operand is computed before the
 * layer (a stable topological order). Buffers: root[i] is the node whose buffer value i uses
 * (itself, or through transposes and fused nodes a layer's); last[r] the step that reads root r
 * last (n_nodes: the output). */
typedef struct rsqm_xplan {
  int32_t *order;       /* [n]: node run at step p */
  int32_t *root, *last; /* [n]: buffer owner of each value; last step reading each owner's buffer */
  int32_t *relu, *add;  /* [n]: layer i applies its fused ReLU (1) / adds value add[i] (-1: none) */
  int32_t *src;         /* [n]: a fused ReLU / add node names the buffer of value src[i] (-1: no) */
} rsqm_xplan;

void rsqm_xplan_free(rsqm_xplan *xp) {
  if (!xp) return;
  free(xp->order);
  free(xp->root);
  free(xp->last);
  free(xp->relu);
  free(xp->add);
  free(xp->src);
  free(xp);
}

static int n_inputs(const rsqm_node *N) {
  return N->op == RSQM_N_INPUT ? 0 : N->op == RSQM_N_ADD ? 2 : 1;
}

static int plan_run(rsqm_model *m) {
  if (m->xplan) return 0;
  const int32_t n = m->n_nodes;
  rsqm_xplan *xp = calloc(1, sizeof *xp);
  int32_t *readers = calloc((size_t)n + 1, sizeof *readers);
  uint8_t *done = calloc((size_t)n + 1, 1);
  if (!xp || !readers || !done) goto nomem;
  const size_t sz = ((size_t)n + 1) * sizeof(int32_t);
  if (!(xp->order = malloc(sz)) || !(xp->root = malloc(sz)) || !(xp->last = malloc(sz)) ||
      !(xp->relu = malloc(sz)) || !(xp->add = malloc(sz)) || !(xp->src = malloc(sz)))
    goto nomem;
  for (int32_t i = 0; i < n; i++) { /* the loader checked in0/in1 < i */
    const rsqm_node *N = &m->nodes[i];
    for (int k = 0; k < n_inputs(N); k++) readers[k ? N->in1 : N->in0]++;
    xp->relu[i] = 0;
    xp->add[i] = xp->src[i] = -1;
  }
  for (int32_t i = 0; i < n && !m->no_fuse; i++) {
    const rsqm_node *N = &m->nodes[i];
    if (N->op != RSQM_N_CONV || N->q8) continue; /* an int8 layer with float output */
    const rsqm_layer *L = &m->layers[N->layer];
    if (L->scheme == RSQM_FP32 || L->out == RSQM_OUT_REQUANT) continue;
    int32_t cur = i; /* the value the chain has reached; its one reader is looked for */
    for (int32_t j = i + 1; j < n && readers[cur] == 1 && cur != m->output; j++) {
      const rsqm_node *R = &m->nodes[j];
      const int reads = R->in0 == cur || (R->op == RSQM_N_ADD && R->in1 == cur);
      if (!reads || R->op == RSQM_N_INPUT) continue;
      if (R->op == RSQM_N_RELU && cur == i) {
        xp->relu[i] = 1;
        xp->src[j] = cur;
        cur = j;
        continue;
      }
      if (R->op == RSQM_N_ADD && R->in0 != R->in1) {
        const int32_t o = R->in0 == cur ? R->in1 : R->in0;
        if (!m->nodes[o].q8) {
          xp->add[i] = o;
          xp->src[j] = cur;
        }
      }
      break;
    }
  }
  /* order: repeatedly the lowest-numbered node whose inputs (and fused add operand) are done */
  for (int32_t p = 0; p < n; p++) {
    int32_t pick = -1;
    for (int32_t i = 0; i < n && pick < 0; i++) {
      if (done[i]) continue;
      const rsqm_node *N = &m->nodes[i];
      int ok = 1;
      for (int k = 0; k < n_inputs(N); k++) ok &= done[k ? N->in1 : N->in0];
      if (xp->add[i] >= 0) ok &= done[xp->add[i]];
      if (ok) pick = i;
    }
    if (pick < 0) goto nomem; /* not reached: the graph is acyclic, fused operands are not the layer's */
    done[pick] = 1;
    xp->order[p] = pick;
  }
  for (int32_t p = 0; p < n; p++) {
    const int32_t i = xp->order[p];
    const rsqm_node *N = &m->nodes[i];
    xp->root[i] = N->op == RSQM_N_TRANSPOSE ? xp->root[N->in0] : xp->src[i] >= 0 ? xp->root[xp->src[i]] : i;
    xp->last[i] = -1;
  }
  for (int32_t p = 0; p < n; p++) {
    const int32_t i = xp->order[p];
    const rsqm_node *N = &m->nodes[i];
    for (int k = 0; k < n_inputs(N); k++) xp->last[xp->root[k ? N->in1 : N->in0]] = p;
    if (xp->add[i] >= 0) xp->last[xp->root[xp->add[i]]] = p; /* raised again by the add node */
  }
  if (m->output >= 0 && m->output < n) xp->last[xp->root[m->output]] = n;
  free(readers);
  free(done);
  m->xplan = xp;
  return 0;
nomem:
  free(readers);
  free(done);
  rsqm_xplan_free(xp);
  return 1;
}

typedef struct value {
  int32_t T, C;
  int8_t *q; /* q8 values */
  float *f;  /* float values */
  int owned; /* transpose shares its input's buffer */
} value;

void rsqm_conv_f32_grouped(const rsqm_layer *L, int32_t pad_l, const float *x, int32_t t_in, float *y, int32_t t_out) {
  const int32_t cig = L->cin / L->groups, cog = L->cout / L->groups;
  for (int32_t t = 0; t < t_out; t++)
    for (int32_t co = 0; co < L->cout; co++) {
      const int32_t g = co / cog;
      float acc = L->bf ? L->bf[co] : 0.0f;
      for (int32_t ci = 0; ci < cig; ci++)
        for (int32_t j = 0; j < L->k; j++) {
          const int64_t r = (int64_t)t * L->stride - pad_l + j;
          if (r >= 0 && r < t_in)
            acc += x[(size_t)r * L->cin + (size_t)g * cig + ci] * L->wf[((size_t)co * cig + ci) * L->k + j];
        }
      y[(size_t)t * L->cout + co] = acc;
    }
}

/* relu, add: the fused ReLU and residual operand (plan_run; add NULL: none) */
static int run_layer(rsqm_model *m, const rsqm_layer *L, const rsqm_node *in_node, const value *in,
                     int relu, const value *add, value *out, int32_t threads, char *err, size_t errlen) {
  rsqm_profile *prof = m->profile;
  const int kind = rsqm_layer_kind(L);
  rsq_conv1d_params p = {L->cin, L->cout, L->k, L->stride, L->pad_l, L->pad_r};
  int32_t t_out;
  if (rsq_conv1d_out_length(&p, in->T, &t_out) != RSQ_OK) return RSQM_TOO_SHORT;
  out->T = t_out;
  out->C = L->cout;
  out->owned = 1;
  const size_t nx = (size_t)in->T * in->C, ny = (size_t)t_out * L->cout;
  if (L->scheme == RSQM_FP32) {
    if (!(out->f = pool_get(m, ny * sizeof(float)))) goto nomem;
    const float *x = in->f;
    float *xd = NULL;
    if (in->q) { /* never produced by the plans (the loader rejects it); kept total */
      if (!(xd = pool_get(m, nx * sizeof(float)))) goto nomem;
      for (size_t i = 0; i < nx; i++) xd[i] = (float)in->q[i] * in_node->qs;
      x = xd;
    }
    rsq_status st = RSQ_OK;
    prof_enter(prof, kind);
    if (L->groups > 1)
      rsqm_conv_f32_grouped(L, L->pad_l, x, in->T, out->f, t_out);
    else
      st = rsq_conv1d_f32_run(L->opf, x, in->T, out->f, threads);
    prof_enter(prof, RSQM_K_GLUE);
    pool_put(m, xd);
    if (st != RSQ_OK) {
      rsqm_seterr(err, errlen, "layer %s: %s", L->name, rsq_last_error());
      return RSQM_ERROR;
    }
    return 0;
  }
  /* quantized. Fused (the default): a float input is quantized by the op straight into its
   * kernel layout, a float output is dequantized (and ReLU'd, and added) in the kernel epilogue.
   * --no-fuse: a quantize pass, int32 accumulators and a dequantize pass, as the steps read. */
  rsq_s8_io io = {0};
  int8_t *xqa = NULL;
  int32_t *acc = NULL;
  if (in->q) {
    io.x = in->q;
  } else if (!m->no_fuse) {
    io.xf = in->f;
    io.x_inv_scale = 1.0f / L->s_in;
    io.x_absmax = L->act_T;
  } else {
    if (!(xqa = pool_get(m, nx))) goto nomem;
    rsq_quantize_f32(in->f, nx, 1.0f / L->s_in, L->act_T, xqa);
    io.x = xqa;
  }
  if (add && (add->T != t_out || add->C != L->cout || !add->f)) {
    pool_put(m, xqa);
    rsqm_seterr(err, errlen, "layer %s: fused add of %dx%d and %dx%d values", L->name, t_out, L->cout, add->T, add->C);
    return RSQM_ERROR;
  }
  if (L->out == RSQM_OUT_REQUANT) {
    io.y = out->q = pool_get(m, ny);
  } else {
    io.yf = out->f = pool_get(m, ny * sizeof(float));
    io.deq = L->deq;
    io.relu = relu;
    io.add = add ? add->f : NULL;
    if (m->no_fuse) {
      io.acc = acc = pool_get(m, ny * sizeof(int32_t));
      io.yf = NULL;
    }
  }
  if ((!io.y && !io.yf && !io.acc) || (m->no_fuse && L->out != RSQM_OUT_REQUANT && (!acc || !out->f))) {
    pool_put(m, acc);
    pool_put(m, xqa);
    goto nomem;
  }
  prof_enter(prof, kind);
  rsq_status st = L->dw8 ? rsq_dwconv1d_s8_run_io(L->dw8, &io, in->T, threads)
                         : rsq_conv1d_s8_run_io(L->op8, &io, in->T, threads);
  prof_enter(prof, RSQM_K_GLUE);
  if (acc) { /* --no-fuse: dequantize */
    if (st == RSQ_OK)
      for (int32_t t = 0; t < t_out; t++)
        for (int32_t c = 0; c < L->cout; c++)
          out->f[(size_t)t * L->cout + c] = (float)acc[(size_t)t * L->cout + c] * L->deq[c];
    pool_put(m, acc);
  }
  pool_put(m, xqa);
  if (st != RSQ_OK) {
    rsqm_seterr(err, errlen, "layer %s: %s", L->name, rsq_last_error());
    return RSQM_ERROR;
  }
  return 0;
nomem:
  rsqm_seterr(err, errlen, "layer %s: out of memory", L->name);
  return RSQM_ERROR;
}

int rsqm_run(rsqm_model *m, const float *feats, int32_t t_in, int32_t threads, float **logits,
             int32_t *t_out, char *err, size_t errlen) {
  *logits = NULL;
  *t_out = 0;
  if (!m->prepared && rsqm_prepare(m, err, errlen)) return RSQM_ERROR;
  if (t_in < 1) {
    rsqm_seterr(err, errlen, "empty input (0 frames)");
    return RSQM_ERROR;
  }
  if (threads < 1) threads = 1;
  rsqm_profile *prof = m->profile;
  if (plan_run(m)) {
    rsqm_seterr(err, errlen, "out of memory");
    return RSQM_ERROR;
  }
  if (prof) {
    prof->cur = -1;
    prof_enter(prof, RSQM_K_GLUE); /* CMVN and everything up to the first layer */
  }
  value *v = calloc((size_t)m->n_nodes, sizeof(value));
  if (!v) {
    rsqm_seterr(err, errlen, "out of memory");
    return RSQM_ERROR;
  }
  int rc = 0;
  const rsqm_xplan *xp = m->xplan;
  for (int32_t step = 0; step < m->n_nodes && !rc; step++) {
    const int32_t i = xp->order[step];
    const rsqm_node *N = &m->nodes[i];
    value *o = &v[i];
    if (N->op == RSQM_N_INPUT) {
      const size_t n = (size_t)t_in * m->dim;
      o->T = t_in;
      o->C = m->dim;
      o->owned = 1;
      if (!(o->f = pool_get(m, n * sizeof(float)))) goto nomem;
      for (int32_t t = 0; t < t_in; t++)
        for (int32_t d = 0; d < m->dim; d++) {
          const size_t j = (size_t)t * m->dim + d;
          o->f[j] = (feats[j] - m->mean[d]) / m->std[d];
        }
      continue;
    }
    const value *a = &v[N->in0];
    const size_t n = (size_t)a->T * a->C;
    if (xp->src[i] >= 0) { /* a ReLU or add fused into the layer that made value src[i] */
      *o = v[xp->src[i]];
      o->owned = 0;
    } else switch (N->op) {
      case RSQM_N_TRANSPOSE: /* data stays [T][C] */
        *o = *a;
        o->owned = 0;
        break;
      case RSQM_N_RELU:
        o->T = a->T;
        o->C = a->C;
        o->owned = 1;
        if (a->q) {
          if (!(o->q = pool_get(m, n))) goto nomem;
          for (size_t j = 0; j < n; j++) o->q[j] = a->q[j] < 0 ? 0 : a->q[j];
        } else {
          if (!(o->f = pool_get(m, n * sizeof(float)))) goto nomem;
          for (size_t j = 0; j < n; j++) o->f[j] = a->f[j] < 0.0f ? 0.0f : a->f[j];
        }
        break;
      case RSQM_N_ADD: {
        const value *b = &v[N->in1];
        if (a->T != b->T || a->C != b->C) {
          rsqm_seterr(err, errlen, "graph node %d: add of %dx%d and %dx%d values", i, a->T, a->C, b->T, b->C);
          rc = RSQM_ERROR;
          break;
        }
        o->T = a->T;
        o->C = a->C;
        o->owned = 1;
        if (!(o->f = pool_get(m, n * sizeof(float)))) goto nomem;
        for (size_t j = 0; j < n; j++) o->f[j] = a->f[j] + b->f[j];
        break;
      }
      case RSQM_N_PAD: {
        const int64_t T = (int64_t)a->T + N->a0 + N->a1;
        if (T > INT32_MAX / 2) {
          rsqm_seterr(err, errlen, "graph node %d: padded length too large", i);
          rc = RSQM_ERROR;
          break;
        }
        o->T = (int32_t)T;
        o->C = a->C;
        o->owned = 1;
        const size_t es = a->q ? 1 : sizeof(float);
        const size_t bytes = ((size_t)T * (size_t)a->C + 1) * es;
        void *buf = pool_get(m, bytes);
        if (!buf) goto nomem;
        memset(buf, 0, bytes);
        memcpy((char *)buf + (size_t)N->a0 * a->C * es, a->q ? (void *)a->q : (void *)a->f, n * es);
        if (a->q) o->q = buf;
        else o->f = buf;
        break;
      }
      case RSQM_N_CONV:
      case RSQM_N_LINEAR:
        rc = run_layer(m, &m->layers[N->layer], &m->nodes[N->in0], a, xp->relu[i],
                       xp->add[i] >= 0 ? &v[xp->add[i]] : NULL, o, threads, err, errlen);
        break;
      default:
        rsqm_seterr(err, errlen, "graph node %d: op %d", i, N->op);
        rc = RSQM_ERROR;
    }
    /* inputs read for the last time go back to the pool */
    for (int in = 0; in < (N->op == RSQM_N_ADD ? 2 : 1) && !rc; in++) {
      const int32_t j = xp->root[in ? N->in1 : N->in0]; /* the buffer's owner */
      if (xp->last[j] == step && v[j].owned) {
        pool_put(m, v[j].q);
        pool_put(m, v[j].f);
        v[j].q = NULL;
        v[j].f = NULL;
        v[j].owned = 0;
      }
    }
  }
  if (!rc) {
    const value *o = &v[m->output];
    const size_t n = (size_t)o->T * o->C;
    float *out = malloc(n ? n * sizeof(float) : 1);
    if (!out) goto nomem;
    if (o->q)
      for (size_t j = 0; j < n; j++) out[j] = (float)o->q[j] * m->nodes[m->output].qs;
    else
      memcpy(out, o->f, n * sizeof(float));
    *logits = out;
    *t_out = o->T;
  }
  goto cleanup;
nomem:
  rsqm_seterr(err, errlen, "out of memory");
  rc = RSQM_ERROR;
cleanup:
  for (int32_t i = 0; i < m->n_nodes; i++)
    if (v[i].owned) {
      pool_put(m, v[i].q);
      pool_put(m, v[i].f);
    }
  free(v);
  if (prof) {
    prof_enter(prof, RSQM_N_KINDS);
    prof->runs++;
  }
  return rc;
}
