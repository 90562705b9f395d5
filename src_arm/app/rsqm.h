/*
 * rsqm.h - the rsq-decode side of the engine, one file per job: model.c the model file loader
 * (src_arm/FORMAT.md; parses and validates only), ops.c the layers' librsq kernel ops, exec.c
 * the graph executor, decode.c CTC greedy search and detokenization, ark.c the Kaldi feature
 * reader, err.c the error formatter they share.
 *
 * Every function that can fail returns 0 on success and writes a message to err (which the
 * caller prefixes with the file name); bad input never causes undefined behaviour.
 */
#ifndef RSQM_H
#define RSQM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "rsq/rsq.h"

#ifdef __cplusplus
extern "C" {
#endif /* __cplusplus */

#define RSQM_VERSION 1
#define RSQM_ERRLEN 512

enum { RSQM_N_INPUT = 0, RSQM_N_TRANSPOSE, RSQM_N_PAD, RSQM_N_RELU, RSQM_N_ADD, RSQM_N_CONV, RSQM_N_LINEAR };
enum { RSQM_OP_CONV = 0, RSQM_OP_LINEAR = 1 };
enum { RSQM_FP32 = 0, RSQM_INT8 = 1, RSQM_WINO23 = 2 };
enum { RSQM_OUT_FLOAT = 0, RSQM_OUT_REQUANT = 1 };
enum { RSQM_TOK_CHAR = 0, RSQM_TOK_BPE = 1 };
#define RSQM_FLAG_BIAS 1u
#define RSQM_FLAG_PER_CHANNEL 2u
#define RSQM_FLAG_RELU 4u

typedef struct rsqm_layer {
  int32_t op, scheme, cin, cout, k, stride, groups, pad_l, pad_r, act_T, w_T, out, lo, hi, consumer;
  uint32_t flags;
  float s_in, s_out;
  char name[128];
  const int8_t *w8;       /* quantized: [cout][cin/groups][k] */
  const int32_t *b32;     /* quantized: [cout] */
  const int32_t *mult, *shift; /* requant: [cout] */
  const float *deq;       /* quantized, float output: [cout] */
  const float *wf, *bf;   /* fp32: weight [cout][cin/groups][k], bias [cout] or NULL */
  /* created by rsqm_prepare */
  rsq_conv1d_s8 *op8;
  rsq_dwconv1d_s8 *dw8;
  rsq_conv1d_f32 *opf;
} rsqm_layer;

typedef struct rsqm_node {
  int32_t op, in0, in1, layer, a0, a1;
  /* static analysis (loader): layout, channels, value kind */
  int32_t time_major; /* 1: logical [T][C]; 0: [C][T] (PyTorch conv layout). Data is always [T][C]. */
  int32_t ch;
  int32_t q8;         /* 1: int8 values at scale qs, range [-qT, qT]; 0: float32 */
  float qs;
  int32_t qT;
} rsqm_node;

/* Where the time goes (rsq-decode --profile): every step of rsqm_run belongs to one kind.
 * Layers by shape: FRONT strided convs; CONV_K3 dense stride-1 convs with k >= 3 (the Winograd
 * candidates, whatever scheme runs them); POINTWISE k = 1 convs; DEPTHWISE grouped convs (the
 * DFSMN memory); CLASSIFIER linear layers. GLUE: CMVN, relu, add, pad, transpose nodes and the
 * float <-> int8 conversions around integer layers. */
enum { RSQM_K_FRONT = 0, RSQM_K_CONV_K3, RSQM_K_POINTWISE, RSQM_K_DEPTHWISE, RSQM_K_CLASSIFIER,
       RSQM_K_GLUE, RSQM_N_KINDS };
extern const char *const rsqm_kind_names[RSQM_N_KINDS];
int rsqm_layer_kind(const rsqm_layer *L);
/* Marker system call of the ARM builds' profile (a number no kernel defines: -ENOSYS, no
 * effect): rsqm_run issues syscall(RSQM_MARK_SYSCALL, kind) when it enters a kind, and
 * syscall(RSQM_MARK_SYSCALL, RSQM_N_KINDS) when it returns, so that the qemu instruction
 * counter (src_arm/tools/qemu_insn_count.c) can split its count by kind. */
#define RSQM_MARK_SYSCALL 0x7ff0
typedef struct rsqm_profile {
  double ms[RSQM_N_KINDS]; /* accumulated wall time per kind */
  int32_t runs;            /* rsqm_run calls profiled */
  /* internal */
  int32_t cur;
  double t_last;
} rsqm_profile;

/* The FBNK section (src_arm/FORMAT.md): the fbank options of the features the model was trained
 * on (fbank.c computes them from audio). */
#define RSQM_WINDOW_POVEY 1
#define RSQM_FBANK_REMOVE_DC 1u
#define RSQM_FBANK_SNIP_EDGES 2u
#define RSQM_FBANK_POWER 4u
#define RSQM_FBANK_LOG 8u
typedef struct rsqm_fbank_opts {
  int32_t sample_rate, num_bins, frame_length, frame_shift, fft_size, window; /* lengths in samples */
  uint32_t flags;
  float preemph, dither, low_freq, high_freq, log_floor; /* high_freq in Hz (absolute) */
} rsqm_fbank_opts;

struct rsqm_pool; /* exec.c */

typedef struct rsqm_model {
  uint8_t *blob;      /* the whole file (owned) */
  size_t size;
  char *meta;         /* NUL-terminated copy of META (JSON) */
  int32_t n_tokens, token_type;
  char **tokens;      /* NUL-terminated copies */
  int32_t dim;
  float *mean, *std;
  int32_t n_layers;
  rsqm_layer *layers;
  int32_t n_nodes, output;
  rsqm_node *nodes;
  int32_t vocab;      /* channels of the output node */
  int32_t has_fbank;  /* 1: the file has an FBNK section (audio input possible) */
  rsqm_fbank_opts fbank;
  int prepared;
  rsqm_profile *profile; /* NULL: off (the caller owns it; rsqm_run adds to it) */
  /* executor memory (exec.c): buffers reused from node to node and utterance to utterance, and
   * each value's last reader, so that a buffer goes back to the pool when nothing reads it any
   * more; after the first utterance of a given length rsqm_run allocates only the logits */
  struct rsqm_pool *pool;
  /* the run's plan, made on the first rsqm_run: node order, fused ReLU / residual adds, which
   * buffer each value lives in and the step that reads it last (exec.c) */
  struct rsqm_xplan *xplan;
  int no_fuse; /* 1: no fusion (each ReLU, add, quantize and dequantize its own pass; for
                  measuring what the fusion saves, rsq-decode --no-fuse) */
} rsqm_model;

/* Parse and validate a model held in memory (copied). name is used in messages only. */
int rsqm_load_memory(const uint8_t *data, size_t size, rsqm_model **out, char *err, size_t errlen);
/* Read a file and rsqm_load_memory it. */
int rsqm_load_file(const char *path, rsqm_model **out, char *err, size_t errlen);
/* ops.c: create the kernel ops (weights packed once); rsqm_ops_free destroys them (rsqm_free
 * calls it). */
int rsqm_prepare(rsqm_model *m, char *err, size_t errlen);
void rsqm_ops_free(rsqm_model *m);
/* ops.c: a layer's kernel op with the given time padding into *op8, *dw8 or *opf (none for a
 * grouped FP32 conv, which rsqm_conv_f32_grouped runs). */
rsq_status rsqm_create_layer_op(const rsqm_layer *L, int32_t pad_l, int32_t pad_r, rsq_conv1d_s8 **op8,
                                rsq_dwconv1d_s8 **dw8, rsq_conv1d_f32 **opf);
/* exec.c: a grouped FP32 conv (not covered by rsq_conv1d_f32), direct: x [t_in][cin] with pad_l
 * zero rows before it (and zeros after), y [t_out][cout]. */
void rsqm_conv_f32_grouped(const rsqm_layer *L, int32_t pad_l, const float *x, int32_t t_in, float *y,
                           int32_t t_out);
void rsqm_free(rsqm_model *m);
void rsqm_pool_free(struct rsqm_pool *pool); /* exec.c; called by rsqm_free */
void rsqm_xplan_free(struct rsqm_xplan *xp); /* exec.c; called by rsqm_free */

/* Run the network on feats [T][dim] (raw features; CMVN is applied here). On success *logits is
 * a malloc'd [*t_out][m->vocab] array. Returns 0, RSQM_TOO_SHORT (the input is too short for the
 * network: no output) or RSQM_ERROR. */
#define RSQM_ERROR 1
#define RSQM_TOO_SHORT 2
int rsqm_run(rsqm_model *m, const float *feats, int32_t t_in, int32_t threads, float **logits,
             int32_t *t_out, char *err, size_t errlen);

/* ---- stream.c: streaming execution (the same output as rsqm_run, bit for bit) ---- */
typedef struct rsqm_stream rsqm_stream;
/* A stream over m (its layers' ops without padding are created here). */
int rsqm_stream_open(rsqm_model *m, rsqm_stream **s, char *err, size_t errlen);
void rsqm_stream_close(rsqm_stream *s);
/* Forget the utterance (keeps the ops and buffers for the next one). */
void rsqm_stream_reset(rsqm_stream *s);
/* Feed n raw feature frames [n][dim] (CMVN applied here); final: the utterance ends with them.
 * Computes every output frame the frames so far determine. Returns 0, RSQM_TOO_SHORT (final, and
 * the utterance is too short for the network) or RSQM_ERROR. */
int rsqm_stream_push(rsqm_stream *s, const float *feats, int32_t n, int final, int32_t threads, char *err,
                     size_t errlen);
/* Output frames computed so far, and a copy of frames [t0, t1) as float32 [t1 - t0][m->vocab]. */
int32_t rsqm_stream_frames(const rsqm_stream *s);
void rsqm_stream_logits(const rsqm_stream *s, int32_t t0, int32_t t1, float *out);
/* Input frames an output frame waits for beyond its own position (output frame j needs raw
 * frames up to j * subsampling + this): the model's algorithmic lookahead. */
int32_t rsqm_stream_lookahead(const rsqm_model *m);

/* ---- decode.c ---- */
/* CTC greedy search: argmax per frame (first maximum), merge repeats, drop blank (id 0); the
 * kept ids in a malloc'd *ids (*n of them). Returns 0 or RSQM_ERROR (out of memory). */
int rsqm_ctc_greedy(const float *logits, int32_t t_out, int32_t vocab, int32_t **ids, int32_t *n);
/* The same search over more frames of an utterance (streaming): *prev is the last frame's label
 * (-1 before the first); the kept ids go to ids (room for t_out); returns how many. */
int32_t rsqm_ctc_greedy_append(const float *logits, int32_t t_out, int32_t vocab, int32_t *prev, int32_t *ids);
/* Token ids to text with m's token list: tokens joined; char: "<space>" -> " "; bpe: U+2581 ->
 * " ", leading spaces removed. *text malloc'd. Returns 0 or RSQM_ERROR (out of memory). */
int rsqm_detokenize(const rsqm_model *m, const int32_t *ids, int32_t n, char **text);
/* The two above: the hypothesis of logits [t_out][m->vocab]. */
int rsqm_greedy_text(const rsqm_model *m, const float *logits, int32_t t_out, char **text);

/* ---- Kaldi features ---- */
typedef struct rsqm_scp_entry {
  char *key;
  char *path;
  int64_t offset; /* -1: none (the matrix at the start of the file, without a key) */
  int32_t line;
} rsqm_scp_entry;

/* Read a feats.scp ("key path[:offset]" per line). */
int rsqm_scp_read(const char *scp, rsqm_scp_entry **entries, int32_t *n, char *err, size_t errlen);
void rsqm_scp_free(rsqm_scp_entry *e, int32_t n);
/* Read one binary Kaldi matrix ("\0B" then "FM " or "DM ", rows, cols, data) at the current
 * position of f. *data is malloc'd float32 [rows][cols] (NULL when rows * cols == 0). */
int rsqm_ark_read_matrix(FILE *f, float **data, int32_t *rows, int32_t *cols, char *err,
                         size_t errlen);
/* Read the next "key matrix" record of a binary ark: 0 (key malloc'd, data as above), 1 at a
 * clean end of file, -1 on error (message in err). */
int rsqm_ark_next(FILE *f, char **key, float **data, int32_t *rows, int32_t *cols, char *err,
                  size_t errlen);

/* ---- audio (wav.c, fbank.c) ---- */
/* Read a RIFF/WAVE file of 16-bit PCM mono at `rate` Hz: *samples malloc'd, *n of them. Anything
 * else (not RIFF/WAVE, not PCM, not 16-bit, not mono, another rate, truncated) is an error. */
int rsqm_wav_read(const char *path, int32_t rate, int16_t **samples, int64_t *n, char *err, size_t errlen);
typedef struct rsqm_fbank rsqm_fbank;
/* Validate FBNK options (the loader calls it): 0, or 1 with a message. */
int rsqm_fbank_opts_check(const rsqm_fbank_opts *o, char *err, size_t errlen);
/* Window, mel filters and FFT tables for o; rsqm_fbank_free releases them. */
int rsqm_fbank_create(const rsqm_fbank_opts *o, rsqm_fbank **out, char *err, size_t errlen);
void rsqm_fbank_free(rsqm_fbank *fb);
/* Frames of n_samples samples (snip_edges: whole frames only; 0 when shorter than one frame). */
int32_t rsqm_fbank_num_frames(const rsqm_fbank *fb, int64_t n_samples);
/* Log-mel features of int16 samples: *feats malloc'd float32 [*rows][num_bins] (NULL, 0 rows
 * when the audio is shorter than one frame). Returns 0 or 1 (out of memory). */
int rsqm_fbank_compute(rsqm_fbank *fb, const int16_t *x, int64_t n_samples, float **feats, int32_t *rows,
                       char *err, size_t errlen);

uint32_t rsqm_crc32(const uint8_t *p, size_t n);

/* err.c: printf-style message into err[len] (nothing when err is NULL or len 0); shared by the
 * loader, the ark reader, the op creation and the executor. */
void rsqm_seterr(char *err, size_t len, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif /* __GNUC__ */
    ;

#ifdef __cplusplus
}
#endif /* __cplusplus */
#endif /* RSQM_H */
