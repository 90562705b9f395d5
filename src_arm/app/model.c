/* model.c - loader of the engine's model file (src_arm/FORMAT.md): checks the header, both
 * CRC-32s, every section size, every layer record against its plan rules, every tensor's place
 * in DATA and value range, and the graph (inputs, layouts, channels, int8 scales) before
 * anything runs. Little-endian fields are read with memcpy (no unaligned access). It only
 * parses: the kernel ops of the layers are made by rsqm_prepare (ops.c). */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rsqm.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "rsq-decode reads little-endian model files in place: big-endian hosts are not supported"
#endif /* big-endian */

#define HEADER_SIZE 64u
#define ENTRY_SIZE 32u
#define LAYER_RECORD 128u
#define NODE_RECORD 24u
#define MAX_SECTIONS 64u
#define MAX_LAYERS 4096
#define MAX_NODES 65536
#define MAX_TOKENS (1 << 20)

static uint32_t rd32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}
static int32_t rdi32(const uint8_t *p) {
  int32_t v;
  memcpy(&v, p, 4);
  return v;
}
static uint64_t rd64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}
static float rdf(const uint8_t *p) {
  float v;
  memcpy(&v, p, 4);
  return v;
}

uint32_t rsqm_crc32(const uint8_t *p, size_t n) {
  static uint32_t table[256];
  static int init = 0;
  if (!init) { /* CRC-32/ISO-HDLC (zlib's crc32), reflected polynomial 0xEDB88320 */
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int j = 0; j < 8; j++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      table[i] = c;
    }
    init = 1;
  }
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; i++) c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

typedef struct {
  const uint8_t *p;
  uint64_t size;
} section;

/* an array of count elements of esize bytes at DATA offset off: in bounds and aligned */
static const void *data_array(const section *data, uint64_t off, uint64_t count, uint64_t esize,
                              const char *what, const rsqm_layer *L, int32_t li, char *err,
                              size_t errlen) {
  if (count > (UINT64_C(1) << 40) || off > data->size || count * esize > data->size - off ||
      off % esize) {
    rsqm_seterr(err, errlen, "layer %d (%s): %s (%llu x %llu bytes at DATA offset %llu) outside the %llu-byte "
                "DATA section or misaligned", li, L->name, what, (unsigned long long)count,
                (unsigned long long)esize, (unsigned long long)off, (unsigned long long)data->size);
    return NULL;
  }
  return data->p + off;
}

void rsqm_free(rsqm_model *m) {
  if (!m) return;
  rsqm_ops_free(m);
  if (m->tokens)
    for (int32_t i = 0; i < m->n_tokens; i++) free(m->tokens[i]);
  free(m->tokens);
  free(m->mean);
  free(m->std);
  free(m->layers);
  free(m->nodes);
  rsqm_pool_free(m->pool);
  rsqm_xplan_free(m->xplan);
  free(m->meta);
  free(m->blob);
  free(m);
}

static int parse_tokens(rsqm_model *m, const section *s, char *err, size_t errlen) {
  if (s->size < 8) {
    rsqm_seterr(err, errlen, "TOKN section too short (%llu bytes)", (unsigned long long)s->size);
    return 1;
  }
  uint32_t n = rd32(s->p), type = rd32(s->p + 4);
  if (n < 1 || n > MAX_TOKENS || type > RSQM_TOK_BPE) {
    rsqm_seterr(err, errlen, "TOKN: %u tokens of type %u (need 1..%d tokens, type 0 or 1)", n, type, MAX_TOKENS);
    return 1;
  }
  m->tokens = calloc(n, sizeof(char *));
  if (!m->tokens) {
    rsqm_seterr(err, errlen, "out of memory");
    return 1;
  }
  m->n_tokens = (int32_t)n;
  m->token_type = (int32_t)type;
  uint64_t pos = 8;
  for (uint32_t i = 0; i < n; i++) {
    if (s->size - pos < 4) {
      rsqm_seterr(err, errlen, "TOKN: token %u truncated", i);
      return 1;
    }
    uint32_t len = rd32(s->p + pos);
    pos += 4;
    if (len < 1 || len > 1024 || len > s->size - pos) {
      rsqm_seterr(err, errlen, "TOKN: token %u has length %u (1..1024, inside the section)", i, len);
      return 1;
    }
    if (memchr(s->p + pos, 0, len)) {
      rsqm_seterr(err, errlen, "TOKN: token %u contains a NUL byte", i);
      return 1;
    }
    m->tokens[i] = malloc(len + 1);
    if (!m->tokens[i]) {
      rsqm_seterr(err, errlen, "out of memory");
      return 1;
    }
    memcpy(m->tokens[i], s->p + pos, len);
    m->tokens[i][len] = 0;
    pos += len;
  }
  if (pos != s->size) {
    rsqm_seterr(err, errlen, "TOKN: %llu trailing bytes", (unsigned long long)(s->size - pos));
    return 1;
  }
  return 0;
}

static int parse_cmvn(rsqm_model *m, const section *s, char *err, size_t errlen) {
  if (s->size < 8) {
    rsqm_seterr(err, errlen, "CMVN section too short");
    return 1;
  }
  uint32_t dim = rd32(s->p), flags = rd32(s->p + 4);
  if (dim < 1 || dim > 65536 || flags != 3 || s->size != 8 + 8 * (uint64_t)dim) {
    rsqm_seterr(err, errlen, "CMVN: dim %u, flags %u, %llu bytes: inconsistent", dim, flags,
                (unsigned long long)s->size);
    return 1;
  }
  m->dim = (int32_t)dim;
  m->mean = malloc(dim * sizeof(float));
  m->std = malloc(dim * sizeof(float));
  if (!m->mean || !m->std) {
    rsqm_seterr(err, errlen, "out of memory");
    return 1;
  }
  for (uint32_t i = 0; i < dim; i++) {
    m->mean[i] = rdf(s->p + 8 + 4 * (size_t)i);
    m->std[i] = rdf(s->p + 8 + 4 * (size_t)dim + 4 * (size_t)i);
    if (!isfinite(m->mean[i]) || !isfinite(m->std[i]) || !(m->std[i] > 0)) {
      rsqm_seterr(err, errlen, "CMVN: mean/std of dimension %u not finite or std <= 0", i);
      return 1;
    }
  }
  return 0;
}

/* FBNK (optional): 48 bytes, the options of the features the model was trained on */
static int parse_fbank(rsqm_model *m, const section *s, char *err, size_t errlen) {
  if (s->size != 48) {
    rsqm_seterr(err, errlen, "FBNK section of %llu bytes (48 expected)", (unsigned long long)s->size);
    return 1;
  }
  rsqm_fbank_opts *o = &m->fbank;
  const uint8_t *p = s->p;
  o->sample_rate = rdi32(p);
  o->num_bins = rdi32(p + 4);
  o->frame_length = rdi32(p + 8);
  o->frame_shift = rdi32(p + 12);
  o->fft_size = rdi32(p + 16);
  o->window = rdi32(p + 20);
  o->flags = rd32(p + 24);
  o->preemph = rdf(p + 28);
  o->dither = rdf(p + 32);
  o->low_freq = rdf(p + 36);
  o->high_freq = rdf(p + 40);
  o->log_floor = rdf(p + 44);
  if (rsqm_fbank_opts_check(o, err, errlen)) return 1;
  if (o->num_bins != m->dim) {
    rsqm_seterr(err, errlen, "FBNK: %d mel bins, the CMVN section (the model's input) has dimension %d", o->num_bins,
                m->dim);
    return 1;
  }
  m->has_fbank = 1;
  return 0;
}

/* LAYR record fields after the ones read into rsqm_layer: the name and the tensors in DATA */
typedef struct layer_refs {
  uint32_t name_off, name_len;
  uint64_t w_off, b_off, m_off, sh_off;
} layer_refs;

/* the fixed fields of record i (FORMAT.md, LAYR) */
static void read_layer_record(const uint8_t *r, rsqm_layer *L, layer_refs *ref) {
  L->op = rdi32(r);
  L->scheme = rdi32(r + 4);
  L->cin = rdi32(r + 8);
  L->cout = rdi32(r + 12);
  L->k = rdi32(r + 16);
  L->stride = rdi32(r + 20);
  L->groups = rdi32(r + 24);
  L->pad_l = rdi32(r + 28);
  L->pad_r = rdi32(r + 32);
  L->act_T = rdi32(r + 36);
  L->w_T = rdi32(r + 40);
  L->out = rdi32(r + 44);
  L->lo = rdi32(r + 48);
  L->hi = rdi32(r + 52);
  L->consumer = rdi32(r + 56);
  L->flags = rd32(r + 60);
  L->s_in = rdf(r + 64);
  L->s_out = rdf(r + 68);
  ref->name_off = rd32(r + 72);
  ref->name_len = rd32(r + 76);
  ref->w_off = rd64(r + 80);
  ref->b_off = rd64(r + 88);
  ref->m_off = rd64(r + 96);
  ref->sh_off = rd64(r + 104);
}

/* the name (for messages: truncated to 127 bytes, control characters shown as '?') */
static int read_layer_name(rsqm_layer *L, uint32_t i, const layer_refs *ref, const section *data,
                           char *err, size_t errlen) {
  if (ref->name_len < 1 || ref->name_off > data->size || ref->name_len > data->size - ref->name_off) {
    rsqm_seterr(err, errlen, "layer %u: name outside the DATA section", i);
    return 1;
  }
  size_t nl = ref->name_len < sizeof L->name - 1 ? ref->name_len : sizeof L->name - 1;
  memcpy(L->name, data->p + ref->name_off, nl);
  L->name[nl] = 0;
  for (size_t c = 0; c < nl; c++)
    if ((unsigned char)L->name[c] < 32) L->name[c] = '?';
  return 0;
}

/* op, scheme, output kind, flags and the shape */
static int check_layer_shape(const rsqm_layer *L, uint32_t i, char *err, size_t errlen) {
  if (L->op < RSQM_OP_CONV || L->op > RSQM_OP_LINEAR || L->scheme < RSQM_FP32 || L->scheme > RSQM_WINO23 ||
      L->out < RSQM_OUT_FLOAT || L->out > RSQM_OUT_REQUANT || (L->flags & ~7u)) {
    rsqm_seterr(err, errlen, "layer %u (%s): op %d / scheme %d / out %d / flags %u unknown", i, L->name,
                L->op, L->scheme, L->out, L->flags);
    return 1;
  }
  if (L->cin < 1 || L->cin > (1 << 20) || L->cout < 1 || L->cout > (1 << 20) || L->k < 1 ||
      L->k > 4096 || (L->stride != 1 && L->stride != 2) || L->groups < 1 || L->cin % L->groups ||
      L->cout % L->groups || L->pad_l < 0 || L->pad_l >= L->k || L->pad_r < 0 || L->pad_r >= L->k) {
    rsqm_seterr(err, errlen, "layer %u (%s): cin %d, cout %d, k %d, stride %d, groups %d, pads %d/%d invalid",
                i, L->name, L->cin, L->cout, L->k, L->stride, L->groups, L->pad_l, L->pad_r);
    return 1;
  }
  if (L->op == RSQM_OP_LINEAR && (L->k != 1 || L->stride != 1 || L->groups != 1 || L->pad_l || L->pad_r)) {
    rsqm_seterr(err, errlen, "layer %u (%s): a linear layer must have k 1, stride 1, groups 1, no pads", i,
                L->name);
    return 1;
  }
  return 0;
}

/* an FP32 layer: float weights [nw] and the optional bias */
static int parse_fp32_layer(rsqm_layer *L, uint32_t i, const layer_refs *ref, uint64_t nw,
                            const section *data, char *err, size_t errlen) {
  if (L->out != RSQM_OUT_FLOAT) {
    rsqm_seterr(err, errlen, "layer %u (%s): an fp32 layer cannot requantize", i, L->name);
    return 1;
  }
  if (!(L->wf = data_array(data, ref->w_off, nw, 4, "weight", L, (int32_t)i, err, errlen))) return 1;
  if ((L->flags & RSQM_FLAG_BIAS) &&
      !(L->bf = data_array(data, ref->b_off, (uint64_t)L->cout, 4, "bias", L, (int32_t)i, err, errlen)))
    return 1;
  return 0;
}

/* a quantized layer's int8 output: multipliers, shifts, clamp and output scale */
static int parse_requant(rsqm_layer *L, uint32_t i, const layer_refs *ref, const section *data,
                         char *err, size_t errlen) {
  if (!(L->mult = data_array(data, ref->m_off, (uint64_t)L->cout, 4, "multipliers", L, (int32_t)i, err, errlen)) ||
      !(L->shift = data_array(data, ref->sh_off, (uint64_t)L->cout, 4, "shifts", L, (int32_t)i, err, errlen)))
    return 1;
  for (int32_t c = 0; c < L->cout; c++)
    if (L->mult[c] < (1 << 30) || L->shift[c] < -31 || L->shift[c] > 31) {
      rsqm_seterr(err, errlen, "layer %u (%s): requantization (M %d, shift %d) of channel %d out of range", i,
                  L->name, L->mult[c], L->shift[c], c);
      return 1;
    }
  if (L->hi < 1 || L->hi > 127 || (L->lo != 0 && L->lo != -L->hi) ||
      (L->lo == 0) != ((L->flags & RSQM_FLAG_RELU) != 0) || !isfinite(L->s_out) || !(L->s_out > 0)) {
    rsqm_seterr(err, errlen, "layer %u (%s): requant range [%d, %d] / output scale %g invalid", i, L->name,
                L->lo, L->hi, (double)L->s_out);
    return 1;
  }
  return 0;
}

/* a quantized layer's float output: the dequantization scale of each channel */
static int parse_dequant(rsqm_layer *L, uint32_t i, const layer_refs *ref, const section *data,
                         char *err, size_t errlen) {
  if (!(L->deq = data_array(data, ref->m_off, (uint64_t)L->cout, 4, "dequant scales", L, (int32_t)i, err, errlen)))
    return 1;
  for (int32_t c = 0; c < L->cout; c++)
    if (!isfinite(L->deq[c])) {
      rsqm_seterr(err, errlen, "layer %u (%s): dequant scale of channel %d not finite", i, L->name, c);
      return 1;
    }
  return 0;
}

/* a quantized layer: value ranges against its scheme, int8 weights [nw], int32 bias, output */
static int parse_int8_layer(rsqm_layer *L, uint32_t i, const layer_refs *ref, uint64_t nw,
                            const section *data, char *err, size_t errlen) {
  const int wino = L->scheme == RSQM_WINO23;
  if (L->act_T < 1 || L->act_T > (wino ? 63 : 127) || L->w_T < 1 || L->w_T > (wino ? 42 : 127)) {
    rsqm_seterr(err, errlen, "layer %u (%s): ranges act +-%d, w +-%d invalid for %s", i, L->name, L->act_T,
                L->w_T, wino ? "Winograd (<= 63, <= 42)" : "int8 (<= 127)");
    return 1;
  }
  if (wino && (L->stride != 1 || L->k < 3 || L->groups != 1)) {
    rsqm_seterr(err, errlen, "layer %u (%s): Winograd needs stride 1, k >= 3, groups 1", i, L->name);
    return 1;
  }
  if (L->groups > 1 && (L->groups != L->cin || L->cin != L->cout || L->stride != 1 || L->k > 64)) {
    rsqm_seterr(err, errlen, "layer %u (%s): grouped int8 conv is supported only as depthwise (groups = cin = "
                "cout), stride 1, k <= 64", i, L->name);
    return 1;
  }
  if (!isfinite(L->s_in) || !(L->s_in > 0)) {
    rsqm_seterr(err, errlen, "layer %u (%s): input scale %g invalid", i, L->name, (double)L->s_in);
    return 1;
  }
  if (!(L->w8 = data_array(data, ref->w_off, nw, 1, "weight", L, (int32_t)i, err, errlen))) return 1;
  for (uint64_t j = 0; j < nw; j++)
    if (L->w8[j] > L->w_T || L->w8[j] < -L->w_T) {
      rsqm_seterr(err, errlen, "layer %u (%s): weight %llu = %d outside +-%d", i, L->name,
                  (unsigned long long)j, L->w8[j], L->w_T);
      return 1;
    }
  if (!(L->b32 = data_array(data, ref->b_off, (uint64_t)L->cout, 4, "bias", L, (int32_t)i, err, errlen)))
    return 1;
  return L->out == RSQM_OUT_REQUANT ? parse_requant(L, i, ref, data, err, errlen)
                                    : parse_dequant(L, i, ref, data, err, errlen);
}

/* requant consumers: a quantized layer whose input range/scale is the producer's output */
static int check_consumers(const rsqm_model *m, char *err, size_t errlen) {
  for (int32_t i = 0; i < m->n_layers; i++) {
    const rsqm_layer *L = &m->layers[i];
    if (L->scheme == RSQM_FP32 || L->out != RSQM_OUT_REQUANT) continue;
    if (L->consumer < 0 || L->consumer >= m->n_layers || L->consumer == i) {
      rsqm_seterr(err, errlen, "layer %d (%s): requant consumer %d invalid", i, L->name, L->consumer);
      return 1;
    }
    const rsqm_layer *C = &m->layers[L->consumer];
    if (C->scheme == RSQM_FP32 || C->act_T != L->hi || memcmp(&C->s_in, &L->s_out, sizeof(float))) {
      rsqm_seterr(err, errlen, "layer %d (%s): output range +-%d at scale %g does not match its consumer %s "
                  "(+-%d at %g)", i, L->name, L->hi, (double)L->s_out, C->name, C->act_T, (double)C->s_in);
      return 1;
    }
  }
  return 0;
}

static int parse_layers(rsqm_model *m, const section *s, const section *data, char *err,
                        size_t errlen) {
  if (s->size < 8) {
    rsqm_seterr(err, errlen, "LAYR section too short");
    return 1;
  }
  uint32_t n = rd32(s->p), rec = rd32(s->p + 4);
  if (n < 1 || n > MAX_LAYERS || rec != LAYER_RECORD || s->size != 8 + (uint64_t)n * rec) {
    rsqm_seterr(err, errlen, "LAYR: %u records of %u bytes do not fill %llu bytes", n, rec,
                (unsigned long long)s->size);
    return 1;
  }
  m->layers = calloc(n, sizeof(rsqm_layer));
  if (!m->layers) {
    rsqm_seterr(err, errlen, "out of memory");
    return 1;
  }
  m->n_layers = (int32_t)n;
  for (uint32_t i = 0; i < n; i++) {
    rsqm_layer *L = &m->layers[i];
    layer_refs ref;
    read_layer_record(s->p + 8 + (size_t)i * rec, L, &ref);
    if (read_layer_name(L, i, &ref, data, err, errlen) || check_layer_shape(L, i, err, errlen)) return 1;
    const uint64_t nw = (uint64_t)L->cout * (uint64_t)(L->cin / L->groups) * (uint64_t)L->k;
    if (L->scheme == RSQM_FP32 ? parse_fp32_layer(L, i, &ref, nw, data, err, errlen)
                               : parse_int8_layer(L, i, &ref, nw, data, err, errlen))
      return 1;
  }
  return check_consumers(m, err, errlen);
}

/* GRPH node i (record r): its fields, its inputs (earlier nodes), and what it makes of them:
 * layout, channels, int8 or float (FORMAT.md, GRPH); used counts each layer's nodes */
static int parse_node(rsqm_model *m, const uint8_t *r, int32_t i, int32_t *used, char *err,
                      size_t errlen) {
  rsqm_node *N = &m->nodes[i];
  N->op = rdi32(r);
  N->in0 = rdi32(r + 4);
  N->in1 = rdi32(r + 8);
  N->layer = rdi32(r + 12);
  N->a0 = rdi32(r + 16);
  N->a1 = rdi32(r + 20);
  if (N->op < RSQM_N_INPUT || N->op > RSQM_N_LINEAR) {
    rsqm_seterr(err, errlen, "GRPH node %d: op %d unknown", i, N->op);
    return 1;
  }
  if ((N->op == RSQM_N_INPUT) != (i == 0)) {
    rsqm_seterr(err, errlen, "GRPH node %d: the input node must be node 0, and only it", i);
    return 1;
  }
  if (N->op == RSQM_N_INPUT) {
    N->time_major = 1;
    N->ch = m->dim;
    return 0;
  }
  if (N->in0 < 0 || N->in0 >= i || (N->op == RSQM_N_ADD && (N->in1 < 0 || N->in1 >= i))) {
    rsqm_seterr(err, errlen, "GRPH node %d: inputs %d/%d are not earlier nodes", i, N->in0, N->in1);
    return 1;
  }
  const rsqm_node *A = &m->nodes[N->in0];
  N->time_major = A->time_major;
  N->ch = A->ch;
  N->q8 = A->q8;
  N->qs = A->qs;
  N->qT = A->qT;
  switch (N->op) {
    case RSQM_N_TRANSPOSE:
      N->time_major = !A->time_major;
      break;
    case RSQM_N_PAD:
      if (A->time_major || N->a0 < 0 || N->a0 >= 65536 || N->a1 < 0 || N->a1 >= 65536) {
        rsqm_seterr(err, errlen, "GRPH node %d: pad %d/%d must be on the time axis of a [C][T] value", i, N->a0,
                    N->a1);
        return 1;
      }
      break;
    case RSQM_N_RELU:
      break;
    case RSQM_N_ADD: {
      const rsqm_node *B = &m->nodes[N->in1];
      if (A->q8 || B->q8 || A->time_major != B->time_major || A->ch != B->ch) {
        rsqm_seterr(err, errlen, "GRPH node %d: add of mismatched values (int8 %d/%d, layout %d/%d, channels "
                    "%d/%d)", i, A->q8, B->q8, A->time_major, B->time_major, A->ch, B->ch);
        return 1;
      }
      break;
    }
    case RSQM_N_CONV:
    case RSQM_N_LINEAR: {
      if (N->layer < 0 || N->layer >= m->n_layers) {
        rsqm_seterr(err, errlen, "GRPH node %d: layer %d invalid", i, N->layer);
        return 1;
      }
      const rsqm_layer *L = &m->layers[N->layer];
      const int conv = N->op == RSQM_N_CONV;
      if (L->op != (conv ? RSQM_OP_CONV : RSQM_OP_LINEAR) || used[N->layer]++) {
        rsqm_seterr(err, errlen, "GRPH node %d: layer %d (%s) is not a %s or is used twice", i, N->layer, L->name,
                    conv ? "conv" : "linear");
        return 1;
      }
      if (A->time_major != !conv || A->ch != L->cin) {
        rsqm_seterr(err, errlen, "GRPH node %d: layer %s takes %d channels %s, its input has %d channels %s", i,
                    L->name, L->cin, conv ? "[C][T]" : "[T][C]", A->ch, A->time_major ? "[T][C]" : "[C][T]");
        return 1;
      }
      if (A->q8 && (L->scheme == RSQM_FP32 || A->qT != L->act_T || memcmp(&A->qs, &L->s_in, sizeof(float)))) {
        rsqm_seterr(err, errlen, "GRPH node %d: int8 input (+-%d at %g) does not match layer %s (+-%d at %g)", i,
                    A->qT, (double)A->qs, L->name, L->act_T, (double)L->s_in);
        return 1;
      }
      N->ch = L->cout;
      N->q8 = L->scheme != RSQM_FP32 && L->out == RSQM_OUT_REQUANT;
      N->qs = N->q8 ? L->s_out : 0.0f;
      N->qT = N->q8 ? L->hi : 0;
      break;
    }
  }
  return 0;
}

static int parse_graph(rsqm_model *m, const section *s, char *err, size_t errlen) {
  if (s->size < 8) {
    rsqm_seterr(err, errlen, "GRPH section too short");
    return 1;
  }
  uint32_t n = rd32(s->p), outn = rd32(s->p + 4);
  if (n < 2 || n > MAX_NODES || outn >= n || s->size != 8 + (uint64_t)n * NODE_RECORD) {
    rsqm_seterr(err, errlen, "GRPH: %u nodes, output %u, %llu bytes: inconsistent", n, outn,
                (unsigned long long)s->size);
    return 1;
  }
  m->nodes = calloc(n, sizeof(rsqm_node));
  int32_t *used = calloc((size_t)m->n_layers, sizeof(int32_t));
  if (!m->nodes || !used) {
    free(used);
    rsqm_seterr(err, errlen, "out of memory");
    return 1;
  }
  m->n_nodes = (int32_t)n;
  m->output = (int32_t)outn;
  int rc = 1;
  for (int32_t i = 0; i < (int32_t)n; i++)
    if (parse_node(m, s->p + 8 + (size_t)i * NODE_RECORD, i, used, err, errlen)) goto done;
  for (int32_t l = 0; l < m->n_layers; l++)
    if (!used[l]) {
      rsqm_seterr(err, errlen, "layer %d (%s) is not used by the graph", l, m->layers[l].name);
      goto done;
    }
  if (!m->nodes[outn].time_major) {
    rsqm_seterr(err, errlen, "GRPH: the output node %u is not time-major [T][V]", outn);
    goto done;
  }
  m->vocab = m->nodes[outn].ch;
  if (m->vocab != m->n_tokens) {
    rsqm_seterr(err, errlen, "the network outputs %d classes, the token list has %d", m->vocab, m->n_tokens);
    goto done;
  }
  rc = 0;
done:
  free(used);
  return rc;
}

int rsqm_load_memory(const uint8_t *data, size_t size, rsqm_model **out, char *err, size_t errlen) {
  *out = NULL;
  if (size < HEADER_SIZE) {
    rsqm_seterr(err, errlen, "truncated: %zu bytes, the header alone is %u", size, HEADER_SIZE);
    return 1;
  }
  if (memcmp(data, "RSQMODEL", 8)) {
    rsqm_seterr(err, errlen, "not an rsqasr model file (bad magic)");
    return 1;
  }
  uint32_t version = rd32(data + 8);
  if (version != RSQM_VERSION) {
    rsqm_seterr(err, errlen, "model format version %u; this rsq-decode reads version %d", version, RSQM_VERSION);
    return 1;
  }
#ifdef RSQM_FUZZING
  const int check_crc = 0; /* fuzz builds: let mutations reach the parsers behind the checksums */
#else
  const int check_crc = 1;
#endif /* RSQM_FUZZING */
  if (check_crc && rsqm_crc32(data, 60) != rd32(data + 60)) {
    rsqm_seterr(err, errlen, "header checksum mismatch (corrupt header)");
    return 1;
  }
  uint32_t hsize = rd32(data + 12), nsec = rd32(data + 24), pcrc = rd32(data + 28), flags = rd32(data + 32);
  uint64_t fsize = rd64(data + 16);
  if (hsize != HEADER_SIZE || flags != 0) {
    rsqm_seterr(err, errlen, "header size %u / flags %u unsupported", hsize, flags);
    return 1;
  }
  if (fsize != size) {
    rsqm_seterr(err, errlen, "file has %zu bytes, its header says %llu (truncated or padded)", size,
                (unsigned long long)fsize);
    return 1;
  }
  if (nsec > MAX_SECTIONS || HEADER_SIZE + (uint64_t)nsec * ENTRY_SIZE > size) {
    rsqm_seterr(err, errlen, "%u sections do not fit the file", nsec);
    return 1;
  }
  if (check_crc && rsqm_crc32(data + HEADER_SIZE, size - HEADER_SIZE) != pcrc) {
    rsqm_seterr(err, errlen, "payload checksum mismatch (corrupt file)");
    return 1;
  }
  rsqm_model *m = calloc(1, sizeof *m);
  if (!m || !(m->blob = malloc(size))) {
    free(m);
    rsqm_seterr(err, errlen, "out of memory");
    return 1;
  }
  memcpy(m->blob, data, size);
  m->size = size;
  /* the six required sections, then the optional ones */
  static const char *tags[7] = {"META", "TOKN", "CMVN", "GRPH", "LAYR", "DATA", "FBNK"};
  section sec[7];
  memset(sec, 0, sizeof sec);
  int found[7] = {0};
  const uint64_t table_end = HEADER_SIZE + (uint64_t)nsec * ENTRY_SIZE;
  for (uint32_t i = 0; i < nsec; i++) {
    const uint8_t *e = m->blob + HEADER_SIZE + (size_t)i * ENTRY_SIZE;
    uint64_t off = rd64(e + 8), sz = rd64(e + 16);
    if (off < table_end || off > size || sz > size - off || off % 16) {
      rsqm_seterr(err, errlen, "section %u: offset %llu size %llu outside the file or misaligned", i,
                  (unsigned long long)off, (unsigned long long)sz);
      goto fail;
    }
    for (int t = 0; t < 7; t++)
      if (!memcmp(e, tags[t], 4)) {
        if (found[t]++) {
          rsqm_seterr(err, errlen, "section %s appears twice", tags[t]);
          goto fail;
        }
        sec[t].p = m->blob + off;
        sec[t].size = sz;
      }
    /* unknown tags are skipped (sections may be added without a version change) */
  }
  for (int t = 0; t < 6; t++)
    if (!found[t]) {
      rsqm_seterr(err, errlen, "section %s missing", tags[t]);
      goto fail;
    }
  if (!(m->meta = malloc(sec[0].size + 1))) {
    rsqm_seterr(err, errlen, "out of memory");
    goto fail;
  }
  memcpy(m->meta, sec[0].p, sec[0].size);
  m->meta[sec[0].size] = 0;
  if (parse_tokens(m, &sec[1], err, errlen) || parse_cmvn(m, &sec[2], err, errlen) ||
      parse_layers(m, &sec[4], &sec[5], err, errlen) || parse_graph(m, &sec[3], err, errlen) ||
      (found[6] && parse_fbank(m, &sec[6], err, errlen)))
    goto fail;
  *out = m;
  return 0;
fail:
  rsqm_free(m);
  return 1;
}

/* Files larger than this are refused before anything is allocated (the paper-size models are
 * ~20-70 MB). */
#define RSQM_MAX_FILE ((uint64_t)1 << 31)

int rsqm_load_file(const char *path, rsqm_model **out, char *err, size_t errlen) {
  *out = NULL;
  /* O_NONBLOCK: a FIFO given as the model must not block the open; it is refused below */
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    rsqm_seterr(err, errlen, "cannot open: %s", strerror(errno));
    return 1;
  }
  struct stat st;
  if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
    close(fd);
    rsqm_seterr(err, errlen, "not a regular file");
    return 1;
  }
  FILE *f = fdopen(fd, "rb");
  if (!f) {
    close(fd);
    rsqm_seterr(err, errlen, "cannot open: %s", strerror(errno));
    return 1;
  }
  /* the header first: its magic, version, checksum and declared size decide what is allocated */
  uint8_t head[HEADER_SIZE];
  const size_t hn = fread(head, 1, HEADER_SIZE, f);
  if (hn < HEADER_SIZE || memcmp(head, "RSQMODEL", 8)) {
    fclose(f);
    if (hn >= 8 && memcmp(head, "RSQMODEL", 8)) rsqm_seterr(err, errlen, "not an rsqasr model file (bad magic)");
    else rsqm_seterr(err, errlen, "truncated: %zu bytes, the header alone is %u", hn, HEADER_SIZE);
    return 1;
  }
  const uint64_t fsize = rd64(head + 16);
  int refused = 1;
  if (rd32(head + 8) != RSQM_VERSION || rsqm_crc32(head, 60) != rd32(head + 60))
    rsqm_load_memory(head, HEADER_SIZE, out, err, errlen); /* its message for a bad version / checksum */
  else if (fsize > RSQM_MAX_FILE)
    rsqm_seterr(err, errlen, "header declares %llu bytes, more than the %llu this reader accepts",
                (unsigned long long)fsize, (unsigned long long)RSQM_MAX_FILE);
  else if (fsize != (uint64_t)st.st_size)
    rsqm_seterr(err, errlen, "file has %llu bytes, its header says %llu (truncated or padded)",
                (unsigned long long)st.st_size, (unsigned long long)fsize);
  else
    refused = 0;
  if (refused) {
    fclose(f);
    return 1;
  }
  uint8_t *buf = malloc((size_t)fsize);
  if (!buf) {
    fclose(f);
    rsqm_seterr(err, errlen, "out of memory reading %llu bytes", (unsigned long long)fsize);
    return 1;
  }
  memcpy(buf, head, HEADER_SIZE);
  const size_t want = (size_t)fsize - HEADER_SIZE;
  const size_t got = fread(buf + HEADER_SIZE, 1, want, f);
  const int bad = ferror(f);
  fclose(f);
  if (bad || got != want) {
    free(buf);
    rsqm_seterr(err, errlen, bad ? "read error" : "truncated while reading");
    return 1;
  }
  int rc = rsqm_load_memory(buf, (size_t)fsize, out, err, errlen);
  free(buf);
  return rc;
}
