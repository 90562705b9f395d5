/* stream.c - streaming execution of a loaded model: features arrive in chunks, every node keeps
 * what it has computed, and each push computes only the frames that its inputs now determine.
 * The output equals rsqm_run's on the whole utterance bit for bit: the same ops on the same
 * values (CMVN, ReLU, add as single float32 operations; the int8 layers are exact integer
 * arithmetic whatever the tiling; their float epilogue the same per element), only fewer frames
 * at a time.
 *
 * A conv with kernel k, stride s and padding (l, r) writes output frame j from input rows
 * j*s - l .. j*s - l + k - 1. Before the end of the utterance the frames whose rows are all
 * present are computed (the rows before 0 are the left padding's zeros); at the end the rest,
 * with the right padding's zeros. Each layer runs as a second op of the same weights without
 * padding ("valid") on exactly those rows, so nothing is recomputed: the left context of every
 * conv (including the DFSMN memory) is the cached tail of its input. A layer's output frame j
 * needs raw input frames up to j*S + R (S: the product of the strides so far; R: its right
 * context), so the model's lookahead is the output's R (rsqm_stream_lookahead).
 *
 * Memory: every value keeps all its frames (growing buffers), simple and enough for utterances;
 * a long-running session would trim the frames no consumer can read again. */
#include <stdlib.h>
#include <string.h>

#include "rsqm.h"

typedef struct sval {
  int32_t C, q8;
  int8_t *q;
  float *f;
  int64_t cap; /* frames allocated */
  int32_t n;   /* frames computed */
  int32_t total; /* frames at the end of the utterance (-1: not known yet) */
  int alias;   /* a transpose: the value of its input (no buffer) */
} sval;

typedef struct slayer {
  rsq_conv1d_s8 *op8;
  rsq_dwconv1d_s8 *dw8;
  rsq_conv1d_f32 *opf;
} slayer;

struct rsqm_stream {
  rsqm_model *m;
  sval *v;        /* [n_nodes] */
  slayer *ops;    /* [n_layers]: the layers' ops without padding */
  int32_t *src;   /* [n_nodes]: the node whose value a node's value is (transposes) */
  void *scratch;  /* the rows of a padded slice */
  size_t scratch_cap;
  int final;
  int32_t fed;    /* raw frames pushed */
};

static int32_t resolve(const rsqm_stream *s, int32_t i) {
  while (s->src[i] != i) i = s->src[i];
  return i;
}

static int grow(sval *x, int64_t frames) {
  if (frames <= x->cap) return 0;
  int64_t cap = x->cap ? x->cap : 64;
  while (cap < frames) cap *= 2;
  const size_t es = x->q8 ? 1 : sizeof(float);
  void *p = realloc(x->q8 ? (void *)x->q : (void *)x->f, (size_t)cap * (size_t)x->C * es);
  if (!p) return 1;
  if (x->q8) x->q = p;
  else x->f = p;
  x->cap = cap;
  return 0;
}

static void *scratch(rsqm_stream *s, size_t bytes) {
  if (bytes > s->scratch_cap) {
    void *p = realloc(s->scratch, bytes);
    if (!p) return NULL;
    s->scratch = p;
    s->scratch_cap = bytes;
  }
  return s->scratch;
}

void rsqm_stream_close(rsqm_stream *s) {
  if (!s) return;
  if (s->v)
    for (int32_t i = 0; i < s->m->n_nodes; i++)
      if (!s->v[i].alias) {
        free(s->v[i].q);
        free(s->v[i].f);
      }
  if (s->ops)
    for (int32_t i = 0; i < s->m->n_layers; i++) {
      rsq_conv1d_s8_destroy(s->ops[i].op8);
      rsq_dwconv1d_s8_destroy(s->ops[i].dw8);
      rsq_conv1d_f32_destroy(s->ops[i].opf);
    }
  free(s->v);
  free(s->ops);
  free(s->src);
  free(s->scratch);
  free(s);
}

int rsqm_stream_open(rsqm_model *m, rsqm_stream **out, char *err, size_t errlen) {
  *out = NULL;
  if (!m->prepared && rsqm_prepare(m, err, errlen)) return RSQM_ERROR;
  rsqm_stream *s = calloc(1, sizeof *s);
  if (!s) goto nomem;
  s->m = m;
  s->v = calloc((size_t)m->n_nodes, sizeof *s->v);
  s->ops = calloc((size_t)m->n_layers, sizeof *s->ops);
  s->src = malloc((size_t)m->n_nodes * sizeof *s->src);
  if (!s->v || !s->ops || !s->src) goto nomem;
  for (int32_t i = 0; i < m->n_nodes; i++) {
    const rsqm_node *N = &m->nodes[i];
    s->src[i] = N->op == RSQM_N_TRANSPOSE ? N->in0 : i;
    s->v[i].alias = N->op == RSQM_N_TRANSPOSE;
    s->v[i].C = N->ch;
    s->v[i].q8 = N->q8;
    s->v[i].total = -1;
  }
  for (int32_t i = 0; i < m->n_layers; i++)
    if (rsqm_create_layer_op(&m->layers[i], 0, 0, &s->ops[i].op8, &s->ops[i].dw8, &s->ops[i].opf) != RSQ_OK) {
      rsqm_seterr(err, errlen, "layer %d (%s): %s", i, m->layers[i].name, rsq_last_error());
      rsqm_stream_close(s);
      return RSQM_ERROR;
    }
  *out = s;
  return 0;
nomem:
  rsqm_stream_close(s);
  rsqm_seterr(err, errlen, "out of memory");
  return RSQM_ERROR;
}

int32_t rsqm_stream_lookahead(const rsqm_model *m) {
  int32_t *S = malloc((size_t)m->n_nodes * sizeof *S), *R = malloc((size_t)m->n_nodes * sizeof *R);
  int32_t out = -1;
  if (!S || !R) goto done;
  for (int32_t i = 0; i < m->n_nodes; i++) {
    const rsqm_node *N = &m->nodes[i];
    if (N->op == RSQM_N_INPUT) {
      S[i] = 1;
      R[i] = 0;
      continue;
    }
    S[i] = S[N->in0];
    R[i] = R[N->in0];
    if (N->op == RSQM_N_ADD && R[N->in1] > R[i]) R[i] = R[N->in1]; /* the loader checked equal rates */
    if (N->op == RSQM_N_PAD) R[i] -= N->a0 * S[i];
    if (N->op == RSQM_N_CONV) {
      const rsqm_layer *L = &m->layers[N->layer];
      R[i] += (L->k - 1 - L->pad_l) * S[i];
      S[i] *= L->stride;
    }
  }
  out = R[m->output] > 0 ? R[m->output] : 0;
done:
  free(S);
  free(R);
  return out;
}

/* Output frames [j0, j1) of the layer of node i from its input value a (rows r0 .. r1-1 with
 * zeros outside [0, a->n)). */
static int run_valid(rsqm_stream *s, int32_t i, const sval *a, int32_t j0, int32_t j1, int32_t threads, char *err,
                     size_t errlen) {
  rsqm_model *m = s->m;
  const rsqm_node *N = &m->nodes[i];
  const rsqm_layer *L = &m->layers[N->layer];
  const slayer *op = &s->ops[N->layer];
  sval *o = &s->v[i];
  const int64_t r0 = (int64_t)j0 * L->stride - L->pad_l, r1 = (int64_t)(j1 - 1) * L->stride - L->pad_l + L->k;
  const int32_t len = (int32_t)(r1 - r0);
  const size_t es = a->q8 ? 1 : sizeof(float);
  const void *x;
  if (r0 >= 0 && r1 <= a->n) {
    x = a->q8 ? (const void *)(a->q + (size_t)r0 * a->C) : (const void *)(a->f + (size_t)r0 * a->C);
  } else { /* padding rows: a copy with zeros */
    char *b = scratch(s, (size_t)len * a->C * es);
    if (!b) goto nomem;
    memset(b, 0, (size_t)len * a->C * es);
    const int64_t lo = r0 < 0 ? 0 : r0, hi = r1 < a->n ? r1 : a->n;
    if (hi > lo)
      memcpy(b + (size_t)(lo - r0) * a->C * es, (a->q8 ? (const char *)a->q : (const char *)a->f) + (size_t)lo * a->C * es,
             (size_t)(hi - lo) * a->C * es);
    x = b;
  }
  if (grow(o, j1)) goto nomem;
  rsq_status st = RSQ_OK;
  if (L->scheme == RSQM_FP32) {
    float *y = o->f + (size_t)j0 * o->C;
    if (L->groups > 1) rsqm_conv_f32_grouped(L, 0, x, len, y, j1 - j0);
    else st = rsq_conv1d_f32_run(op->opf, x, len, y, threads);
  } else {
    rsq_s8_io io = {0};
    if (a->q8) {
      io.x = x;
    } else {
      io.xf = x;
      io.x_inv_scale = 1.0f / L->s_in;
      io.x_absmax = L->act_T;
    }
    if (L->out == RSQM_OUT_REQUANT) {
      io.y = o->q + (size_t)j0 * o->C;
    } else {
      io.yf = o->f + (size_t)j0 * o->C;
      io.deq = L->deq;
    }
    st = op->dw8 ? rsq_dwconv1d_s8_run_io(op->dw8, &io, len, threads) : rsq_conv1d_s8_run_io(op->op8, &io, len, threads);
  }
  if (st != RSQ_OK) {
    rsqm_seterr(err, errlen, "layer %s: %s", L->name, rsq_last_error());
    return RSQM_ERROR;
  }
  o->n = j1;
  return 0;
nomem:
  rsqm_seterr(err, errlen, "layer %s: out of memory", L->name);
  return RSQM_ERROR;
}

int rsqm_stream_push(rsqm_stream *s, const float *feats, int32_t n, int final, int32_t threads, char *err,
                     size_t errlen) {
  rsqm_model *m = s->m;
  if (s->final) {
    rsqm_seterr(err, errlen, "push after the end of the utterance");
    return RSQM_ERROR;
  }
  if (n < 0 || (int64_t)s->fed + n > INT32_MAX / 2) {
    rsqm_seterr(err, errlen, "bad chunk of %d frames", n);
    return RSQM_ERROR;
  }
  if (threads < 1) threads = 1;
  s->final = final;
  for (int32_t i = 0; i < m->n_nodes; i++) {
    const rsqm_node *N = &m->nodes[i];
    sval *o = &s->v[i];
    if (o->alias) continue;
    if (N->op == RSQM_N_INPUT) {
      if (grow(o, (int64_t)s->fed + n)) goto nomem;
      for (int32_t t = 0; t < n; t++)
        for (int32_t d = 0; d < m->dim; d++) {
          const size_t j = (size_t)t * m->dim + d;
          o->f[(size_t)(s->fed + t) * m->dim + d] = (feats[j] - m->mean[d]) / m->std[d];
        }
      s->fed += n;
      o->n = s->fed;
      if (final) o->total = s->fed;
      continue;
    }
    const sval *a = &s->v[resolve(s, N->in0)];
    int32_t avail = 0, total = -1;
    switch (N->op) {
      case RSQM_N_RELU:
        avail = a->n;
        total = a->total;
        if (grow(o, avail)) goto nomem;
        for (size_t j = (size_t)o->n * o->C; j < (size_t)avail * o->C; j++) {
          if (o->q8) o->q[j] = a->q[j] < 0 ? 0 : a->q[j];
          else o->f[j] = a->f[j] < 0.0f ? 0.0f : a->f[j];
        }
        break;
      case RSQM_N_ADD: {
        const sval *b = &s->v[resolve(s, N->in1)];
        avail = a->n < b->n ? a->n : b->n;
        if (a->total >= 0 && b->total >= 0) {
          if (a->total != b->total) {
            rsqm_seterr(err, errlen, "graph node %d: add of %d and %d frames", i, a->total, b->total);
            return RSQM_ERROR;
          }
          total = a->total;
        }
        if (grow(o, avail)) goto nomem;
        for (size_t j = (size_t)o->n * o->C; j < (size_t)avail * o->C; j++) o->f[j] = a->f[j] + b->f[j];
        break;
      }
      case RSQM_N_PAD: {
        avail = a->n + N->a0;
        if (a->total >= 0) total = avail = a->total + N->a0 + N->a1;
        if (grow(o, avail)) goto nomem;
        const size_t es = o->q8 ? 1 : sizeof(float);
        char *y = o->q8 ? (char *)o->q : (char *)o->f;
        const char *x = a->q8 ? (const char *)a->q : (const char *)a->f;
        for (int32_t t = o->n; t < avail; t++) {
          const int32_t r = t - N->a0;
          if (r >= 0 && r < a->n) memcpy(y + (size_t)t * o->C * es, x + (size_t)r * a->C * es, (size_t)o->C * es);
          else memset(y + (size_t)t * o->C * es, 0, (size_t)o->C * es);
        }
        break;
      }
      case RSQM_N_CONV:
      case RSQM_N_LINEAR: {
        const rsqm_layer *L = &m->layers[N->layer];
        const int64_t need = (int64_t)a->n + L->pad_l - L->k;
        avail = need >= 0 ? (int32_t)(need / L->stride + 1) : 0;
        if (a->total >= 0) {
          const int64_t t_all = (int64_t)a->total + L->pad_l + L->pad_r - L->k;
          if (t_all < 0) return RSQM_TOO_SHORT;
          total = avail = (int32_t)(t_all / L->stride + 1);
        }
        if (avail > o->n) {
          const int rc = run_valid(s, i, a, o->n, avail, threads, err, errlen);
          if (rc) return rc;
        }
        break;
      }
      default:
        rsqm_seterr(err, errlen, "graph node %d: op %d", i, N->op);
        return RSQM_ERROR;
    }
    if (avail > o->n) o->n = avail;
    o->total = total;
  }
  if (final && s->v[resolve(s, m->output)].n < 1) return RSQM_TOO_SHORT;
  return 0;
nomem:
  rsqm_seterr(err, errlen, "out of memory");
  return RSQM_ERROR;
}

void rsqm_stream_reset(rsqm_stream *s) {
  for (int32_t i = 0; i < s->m->n_nodes; i++) {
    s->v[i].n = 0;
    s->v[i].total = -1;
  }
  s->final = 0;
  s->fed = 0;
}

int32_t rsqm_stream_frames(const rsqm_stream *s) { return s->v[resolve(s, s->m->output)].n; }

void rsqm_stream_logits(const rsqm_stream *s, int32_t t0, int32_t t1, float *out) {
  const sval *o = &s->v[resolve(s, s->m->output)];
  const size_t a = (size_t)t0 * o->C, b = (size_t)t1 * o->C;
  if (o->q8)
    for (size_t j = a; j < b; j++) out[j - a] = (float)o->q[j] * s->m->nodes[s->m->output].qs;
  else
    memcpy(out, o->f + a, (b - a) * sizeof(float));
}
