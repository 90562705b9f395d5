/* rsq_decode.c - rsq-decode: decode audio or Kaldi features with an exported model (src_arm/FORMAT.md).
 *
 *   rsq-decode [--threads N] [--dump-logits DIR|FILE] [--dump-feats FILE] [--timing] [--profile] [--no-fuse]
 *              model.rsq wav.scp|feats.scp|feats.ark|audio.wav [out.txt]
 *
 * Audio (a wav.scp, told from a feats.scp by its first entry being a RIFF file, or one .wav file
 * whose name without .wav is the utterance id): 16-bit PCM mono at the model's sample rate, turned
 * into the model's fbank features here (fbank.c, with the options of the model's FBNK section).
 * --dump-feats: the features of every utterance (before CMVN) as one Kaldi binary ark.
 *
 * --stream [--chunk N]: each utterance goes through the network in chunks of N feature frames
 * (default 40, 0.4 s; stream.c keeps every layer's past, nothing is recomputed); the logits and
 * the hypothesis are bit for bit the whole-utterance ones. On a terminal the partial hypothesis is
 * shown on stderr as it changes; --show-partial writes, after every chunk, a line "partial <utt>
 * <feature frames in> <output frames out> <text>" on stderr wherever it goes. The summary line adds the model's lookahead.
 *
 * Writes Kaldi text ("utt-id hypothesis", the tokens joined as rsqasr's decode writes them) to
 * out.txt or stdout, and a summary line on
 * stderr. --dump-logits: an existing directory gets one <utt>.npy (float32 [T'][V]) per
 * utterance, any other path one Kaldi binary ark of float matrices. --timing: one line per
 * utterance on stderr. --profile: the network time split by layer kind (rsqm.h), one line on
 * stderr; the ARM builds also issue one marker system call per change of kind (rsqm.h), which
 * the qemu instruction counter uses to split its count. --no-fuse: run every ReLU, residual add,
 * quantize and dequantize as its own pass instead of in the int8 kernels (same output bit for
 * bit; for measuring what the fusion saves). Exit status 0, or 1 with a message naming the file on any error (a
 * model or feature file that cannot be read, a feature dimension that does not match the
 * model, an utterance with 0 frames); an utterance too short for the network gets an empty
 * hypothesis and a warning, as in rsqasr.bin.decode.
 *
 * out.txt, when it is a regular file or does not exist, is written atomically: a temporary file
 * beside it (mode 0666 less the umask) renamed onto it at the end. Anything else that exists at
 * that path (a device such as /dev/null, a FIFO, a symlink) is opened and written through, never
 * renamed over: as root, a rename onto /dev/null would make it a regular file for the machine. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rsqm.h"

static const char *prog = "rsq-decode";
static char *g_tmp_out = NULL; /* removed on error: out.txt is only ever replaced whole */

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s: ", prog);
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  if (g_tmp_out) remove(g_tmp_out);
  exit(1);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void usage(FILE *f) {
  fprintf(f,
          "Usage: %s [--threads N] [--dump-logits DIR|FILE] [--dump-feats FILE] [--timing] [--profile] [--no-fuse]\n"
          "       model.rsq wav.scp|feats.scp|feats.ark|audio.wav [out.txt]\n"
          "  Decodes audio (a wav.scp or one .wav file: 16-bit PCM mono at the model's sample rate; the\n"
          "  model's fbank is computed here) or Kaldi features (feats.scp with 'key path[:offset]' lines,\n"
          "  or a binary ark whose name ends in .ark) with CTC greedy search; writes 'utt-id hypothesis'\n"
          "  lines to out.txt or stdout.\n"
          "  --threads N        kernel threads (default 1)\n"
          "  --dump-logits P    logits of every utterance: P a directory -> P/<utt>.npy, else a Kaldi ark\n"
          "  --dump-feats F     the features of every utterance (before CMVN) as a Kaldi binary ark\n"
          "  --stream           streaming: chunks of --chunk frames (same output); partial results on a terminal\n"
          "  --chunk N          streaming chunk in feature frames (10 ms each; default 40)\n"
          "  --show-partial     with --stream: after every chunk a line 'partial utt frames-in frames-out text'\n"
          "  --timing           per-utterance time on stderr\n"
          "  --profile          network time split by layer kind (stderr, ms per 600 frames); the ARM\n"
          "                     builds also mark each kind for the qemu instruction counter\n"
          "  --no-fuse          ReLU, residual add, quantize and dequantize as separate passes (the\n"
          "                     same output; to measure what fusing them into the kernels saves)\n",
          prog);
}

typedef struct {
  FILE *f;
  char *path;
} feat_file;

/* 1 when path may be replaced by a rename: it does not exist, or it is a regular file (lstat: a
 * symlink is not followed). */
static int replaceable(const char *path) {
  struct stat st;
  if (lstat(path, &st)) return errno == ENOENT;
  return S_ISREG(st.st_mode);
}

/* A new temporary file "<path>.tmp<pid>[.n]" (O_EXCL: never an existing file or link). */
static FILE *open_temp(const char *path, char **tmp_path) {
  const size_t n = strlen(path) + 40;
  char *tmp = malloc(n);
  if (!tmp) die("out of memory");
  for (int i = 0; i < 100; i++) {
    if (i == 0) snprintf(tmp, n, "%s.tmp%ld", path, (long)getpid());
    else snprintf(tmp, n, "%s.tmp%ld.%d", path, (long)getpid(), i);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0) {
      FILE *f = fdopen(fd, "w");
      if (!f) die("%s: cannot write: %s", tmp, strerror(errno));
      *tmp_path = tmp;
      return f;
    }
    if (errno != EEXIST) die("%s: cannot write: %s", tmp, strerror(errno));
  }
  die("%s: cannot create a temporary file beside it", path);
  return NULL;
}

/* logits sinks */
static void write_npy(const char *dir, const char *utt, const float *x, int32_t rows, int32_t cols) {
  if (strchr(utt, '/')) die("--dump-logits %s: utterance id '%s' contains '/'", dir, utt);
  size_t n = strlen(dir) + strlen(utt) + 8;
  char *path = malloc(n);
  if (!path) die("out of memory");
  snprintf(path, n, "%s/%s.npy", dir, utt);
  FILE *f = fopen(path, "wb");
  if (!f) die("%s: cannot write: %s", path, strerror(errno));
  char hdr[128];
  int len = snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }", rows, cols);
  int total = 10 + len + 1;
  int pad = (64 - total % 64) % 64;
  uint8_t pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0, 0};
  uint16_t hl = (uint16_t)(len + pad + 1);
  memcpy(pre + 8, &hl, 2);
  fwrite(pre, 1, 10, f);
  fwrite(hdr, 1, (size_t)len, f);
  for (int i = 0; i < pad; i++) fputc(' ', f);
  fputc('\n', f);
  fwrite(x, sizeof(float), (size_t)rows * cols, f);
  if (fclose(f)) die("%s: write error", path);
  free(path);
}

static void write_ark(FILE *f, const char *path, const char *utt, const float *x, int32_t rows, int32_t cols) {
  uint8_t h[5] = {4, 0, 0, 0, 0};
  fprintf(f, "%s ", utt);
  fwrite("\0BFM ", 1, 5, f);
  memcpy(h + 1, &rows, 4);
  fwrite(h, 1, 5, f);
  memcpy(h + 1, &cols, 4);
  fwrite(h, 1, 5, f);
  if (fwrite(x, sizeof(float), (size_t)rows * cols, f) != (size_t)rows * cols)
    die("%s: write error", path);
}
/* ---------------------------------------------------------------- command line */
typedef struct options {
  int threads, timing, profile, no_fuse, stream, chunk, show_partial;
  const char *dump;       /* --dump-logits, or NULL */
  const char *dump_feats; /* --dump-feats, or NULL */
  const char *model_path, *feats_path, *out_path;
} options;

/* -1: go on; else the exit status (0 after --help, 2 after a usage error) */
static int parse_args(int argc, char **argv, options *o) {
  *o = (options){.threads = 1, .chunk = 40};
  const char *pos[3];
  int npos = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
      char *end;
      long v = strtol(argv[++i], &end, 10);
      if (*end || v < 1 || v > 256) die("--threads: '%s' is not an integer in [1, 256]", argv[i]);
      o->threads = (int)v;
    } else if (!strcmp(argv[i], "--dump-logits") && i + 1 < argc) {
      o->dump = argv[++i];
    } else if (!strcmp(argv[i], "--chunk") && i + 1 < argc) {
      char *end;
      long v = strtol(argv[++i], &end, 10);
      if (*end || v < 1 || v > 100000) die("--chunk: '%s' is not an integer in [1, 100000]", argv[i]);
      o->chunk = (int)v;
    } else if (!strcmp(argv[i], "--stream")) {
      o->stream = 1;
    } else if (!strcmp(argv[i], "--show-partial")) {
      o->show_partial = 1;
    } else if (!strcmp(argv[i], "--dump-feats") && i + 1 < argc) {
      o->dump_feats = argv[++i];
    } else if (!strcmp(argv[i], "--timing")) {
      o->timing = 1;
    } else if (!strcmp(argv[i], "--profile")) {
      o->profile = 1;
    } else if (!strcmp(argv[i], "--no-fuse")) {
      o->no_fuse = 1;
    } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      usage(stdout);
      return 0;
    } else if (argv[i][0] == '-' && argv[i][1]) {
      usage(stderr);
      die("unknown option or missing value: %s", argv[i]);
    } else if (npos < 3) {
      pos[npos++] = argv[i];
    } else {
      usage(stderr);
      die("too many arguments");
    }
  }
  if (npos < 2) {
    usage(stderr);
    return 2;
  }
  o->model_path = pos[0];
  o->feats_path = pos[1];
  o->out_path = npos > 2 ? pos[2] : NULL;
  return -1;
}

/* ---------------------------------------------------------------- features */
/* An scp (its entries, the file of the last one opened), a binary ark read sequentially, a
 * wav.scp or one wav file (audio: fb computes the features). */
typedef struct feats_reader {
  const char *path;
  FILE *ark;
  rsqm_scp_entry *ents;
  int32_t nent, next;
  feat_file cur;
  int audio;       /* 1: the entries (or path itself, single) are wav files */
  int single;      /* 1: path is one wav file */
  rsqm_fbank *fb;  /* audio: the model's fbank */
  int32_t rate, bins, frame_length;
} feats_reader;

static int ends_with_ci(const char *s, const char *suffix) {
  const size_t n = strlen(s), k = strlen(suffix);
  if (n <= k) return 0;
  for (size_t i = 0; i < k; i++)
    if ((s[n - k + i] | 0x20) != (suffix[i] | 0x20)) return 0;
  return 1;
}

/* 1 when the file starts with "RIFF" (a wav.scp's entries are wav files; a feats.scp's are arks) */
static int is_riff(const char *path) {
  char h[4];
  FILE *f = fopen(path, "rb");
  if (!f) return 0;
  const int yes = fread(h, 1, 4, f) == 4 && !memcmp(h, "RIFF", 4);
  fclose(f);
  return yes;
}

static void feats_open(feats_reader *r, const char *path, const rsqm_model *m, const char *model_path) {
  char err[RSQM_ERRLEN];
  *r = (feats_reader){.path = path};
  if (ends_with_ci(path, ".ark")) {
    if (!(r->ark = fopen(path, "rb"))) die("%s: cannot open: %s", path, strerror(errno));
    return;
  }
  if (ends_with_ci(path, ".wav")) {
    r->audio = r->single = 1;
  } else {
    if (rsqm_scp_read(path, &r->ents, &r->nent, err, sizeof err)) die("%s: %s", path, err);
    r->audio = r->nent > 0 && r->ents[0].offset < 0 && is_riff(r->ents[0].path);
  }
  if (!r->audio) return;
  if (!m->has_fbank)
    die("%s: audio input needs the model's fbank options, and %s has no FBNK section (exported before audio input "
        "existed: export it again, or give features)", path, model_path);
  if (rsqm_fbank_create(&m->fbank, &r->fb, err, sizeof err)) die("%s: %s", model_path, err);
  r->rate = m->fbank.sample_rate;
  r->bins = m->fbank.num_bins;
  r->frame_length = m->fbank.frame_length;
}

/* Audio: the wav at wav_path -> features; where names the utterance in messages. */
static void audio_features(feats_reader *r, const char *wav_path, const char *where, float **feats, int32_t *rows,
                           int32_t *cols) {
  char err[RSQM_ERRLEN];
  int16_t *x = NULL;
  int64_t n = 0;
  if (rsqm_wav_read(wav_path, r->rate, &x, &n, err, sizeof err)) die("%s: %s", where, err);
  if (rsqm_fbank_num_frames(r->fb, n) == 0)
    die("%s: %lld samples, shorter than one frame (%d samples)", where, (long long)n, r->frame_length);
  if (rsqm_fbank_compute(r->fb, x, n, feats, rows, err, sizeof err)) die("%s: %s", where, err);
  *cols = r->bins;
  free(x);
}

/* The next utterance: 1 with *key and *feats malloc'd and where naming it for messages, 0 at
 * the end. */
static int feats_next(feats_reader *r, char **key, float **feats, int32_t *rows, int32_t *cols,
                      char *where, size_t wlen) {
  char err[RSQM_ERRLEN];
  *key = NULL;
  *feats = NULL;
  *rows = *cols = 0;
  if (r->ark) {
    int rc = rsqm_ark_next(r->ark, key, feats, rows, cols, err, sizeof err);
    if (rc == 1) return 0;
    if (rc < 0) die("%s: %s", r->path, err);
    snprintf(where, wlen, "%s: '%.400s'", r->path, *key);
    return 1;
  }
  if (r->single) {
    if (r->next++) return 0;
    const char *base = strrchr(r->path, '/');
    base = base ? base + 1 : r->path;
    *key = strdup(base);
    if (!*key) die("out of memory");
    (*key)[strlen(*key) - 4] = 0; /* ".wav" */
    snprintf(where, wlen, "%s", r->path);
    audio_features(r, r->path, where, feats, rows, cols);
    return 1;
  }
  if (r->next >= r->nent) return 0;
  const rsqm_scp_entry *e = &r->ents[r->next++];
  feat_file *cur = &r->cur;
  *key = strdup(e->key);
  if (!*key) die("out of memory");
  snprintf(where, wlen, "%s:%d: '%.300s' (%.300s)", r->path, e->line, e->key, e->path);
  if (r->audio) {
    if (e->offset >= 0) die("%s: a wav.scp entry with an :offset (audio files are read whole)", where);
    audio_features(r, e->path, where, feats, rows, cols);
    return 1;
  }
  if (!cur->path || strcmp(cur->path, e->path)) {
    if (cur->f) fclose(cur->f);
    free(cur->path);
    cur->path = strdup(e->path);
    if (!cur->path) die("out of memory");
    if (!(cur->f = fopen(e->path, "rb"))) die("%s: cannot open %s: %s", where, e->path, strerror(errno));
  }
  if (fseeko(cur->f, e->offset < 0 ? 0 : (off_t)e->offset, SEEK_SET))
    die("%s: cannot seek to offset %lld", where, (long long)e->offset);
  if (rsqm_ark_read_matrix(cur->f, feats, rows, cols, err, sizeof err)) die("%s: %s", where, err);
  return 1;
}

/* the files only; the scp entries are freed at the very end (feats_free) */
static void feats_close(feats_reader *r) {
  if (r->cur.f) fclose(r->cur.f);
  free(r->cur.path);
  if (r->ark) fclose(r->ark);
  r->cur = (feat_file){NULL, NULL};
  r->ark = NULL;
}

static void feats_free(feats_reader *r) {
  rsqm_scp_free(r->ents, r->nent);
  rsqm_fbank_free(r->fb);
}

/* ---------------------------------------------------------------- outputs */
typedef struct outputs {
  const char *out_path, *dump, *dump_feats;
  FILE *out;     /* hypotheses: stdout, out_path, or a temporary beside it */
  char *tmp_out; /* the temporary, renamed onto out_path at the end */
  int dump_dir;  /* --dump-logits is a directory: one .npy per utterance */
  FILE *dump_f;  /* else one ark */
  FILE *feats_f; /* --dump-feats */
} outputs;

static void outputs_open(outputs *w, const options *o) {
  *w = (outputs){.out_path = o->out_path, .dump = o->dump, .dump_feats = o->dump_feats, .out = stdout};
  if (o->out_path && replaceable(o->out_path)) {
    w->out = open_temp(o->out_path, &w->tmp_out);
    g_tmp_out = w->tmp_out;
  } else if (o->out_path) { /* a device, FIFO or symlink: write through */
    if (!(w->out = fopen(o->out_path, "w"))) die("%s: cannot write: %s", o->out_path, strerror(errno));
  }
  if (o->dump) {
    struct stat st;
    if (!stat(o->dump, &st) && S_ISDIR(st.st_mode)) w->dump_dir = 1;
    else if (!(w->dump_f = fopen(o->dump, "wb"))) die("%s: cannot write: %s", o->dump, strerror(errno));
  }
  if (o->dump_feats && !(w->feats_f = fopen(o->dump_feats, "wb")))
    die("%s: cannot write: %s", o->dump_feats, strerror(errno));
}

static void outputs_close(outputs *w) {
  if (w->dump_f && fclose(w->dump_f)) die("%s: write error", w->dump);
  if (w->feats_f && fclose(w->feats_f)) die("%s: write error", w->dump_feats);
  if (w->tmp_out) {
    if (fclose(w->out)) die("%s: write error", w->tmp_out);
    if (!replaceable(w->out_path)) die("%s: became a non-regular file while decoding; not replaced", w->out_path);
    if (rename(w->tmp_out, w->out_path)) die("%s: cannot rename to %s: %s", w->tmp_out, w->out_path, strerror(errno));
    g_tmp_out = NULL;
    free(w->tmp_out);
  } else if (w->out_path) {
    if (fclose(w->out)) die("%s: write error", w->out_path);
  } else if (fflush(stdout)) {
    die("write error on stdout");
  }
}

/* ---------------------------------------------------------------- decoding */
typedef struct totals {
  long long frames;
  int32_t utts, n_short, n_bad;
  double t_net; /* seconds in rsqm_run + rsqm_greedy_text */
} totals;

/* ---------------------------------------------------------------- streaming */
typedef struct streamer {
  rsqm_stream *s;
  int tty;          /* stderr is a terminal: the partial hypothesis is redrawn in place */
  int32_t *ids, n_ids, cap_ids, prev, seen;
} streamer;

/* Greedy search over the output frames computed since the last call; shows the partial text when
 * it changed. */
static void show_partial(streamer *st, const rsqm_model *m, const options *o, const char *key, int32_t fed) {
  const int32_t t1 = rsqm_stream_frames(st->s), V = m->vocab;
  float *row = malloc((size_t)(t1 > st->seen ? t1 - st->seen : 1) * V * sizeof(float));
  if (!row) die("out of memory");
  rsqm_stream_logits(st->s, st->seen, t1, row);
  if (st->n_ids + (t1 - st->seen) > st->cap_ids) {
    st->cap_ids = 2 * (st->n_ids + (t1 - st->seen)) + 64;
    if (!(st->ids = realloc(st->ids, (size_t)st->cap_ids * sizeof(int32_t)))) die("out of memory");
  }
  const int32_t added = rsqm_ctc_greedy_append(row, t1 - st->seen, V, &st->prev, st->ids + st->n_ids);
  const int changed = added > 0;
  st->n_ids += added;
  free(row);
  st->seen = t1;
  if (!(o->show_partial || (changed && st->tty))) return;
  char *text = NULL;
  if (rsqm_detokenize(m, st->ids, st->n_ids, &text)) die("out of memory");
  if (o->show_partial) fprintf(stderr, "partial %s %d %d %s\n", key, fed, t1, text);
  else fprintf(stderr, "\r\033[K%s: %s", key, text);
  free(text);
}

/* The whole utterance through the stream in chunks: rsqm_run's contract (logits malloc'd). */
static int stream_run(streamer *st, rsqm_model *m, const options *o, const char *key, const float *feats,
                      int32_t rows, float **logits, int32_t *t_out, char *err, size_t errlen) {
  rsqm_stream_reset(st->s);
  st->n_ids = st->seen = 0;
  st->prev = -1;
  *logits = NULL;
  *t_out = 0;
  int rc = 0;
  for (int32_t t = 0; t < rows && !rc; t += o->chunk) {
    const int32_t n = rows - t < o->chunk ? rows - t : o->chunk;
    rc = rsqm_stream_push(st->s, feats + (size_t)t * m->dim, n, t + n == rows, o->threads, err, errlen);
    if (!rc) show_partial(st, m, o, key, t + n);
  }
  if (st->tty && !o->show_partial) fprintf(stderr, "\r\033[K");
  if (rc) return rc;
  const int32_t T = rsqm_stream_frames(st->s);
  if (!(*logits = malloc((size_t)(T ? T : 1) * m->vocab * sizeof(float)))) {
    rsqm_seterr(err, errlen, "out of memory");
    return RSQM_ERROR;
  }
  rsqm_stream_logits(st->s, 0, T, *logits);
  *t_out = T;
  return 0;
}

/* One utterance: checks, network, greedy text, the hypothesis line and the logits. */
static void decode_utterance(rsqm_model *m, const options *o, outputs *w, streamer *st, const char *key,
                             const float *feats, int32_t rows, int32_t cols, const char *where,
                             totals *tot) {
  char err[RSQM_ERRLEN];
  if (rows == 0) die("%s: empty utterance (0 frames)", where);
  if (cols != m->dim) die("%s: features of dimension %d; the model %s takes %d", where, cols, o->model_path, m->dim);
  if (w->feats_f) write_ark(w->feats_f, o->dump_feats, key, feats, rows, cols);
  int64_t n_nonfinite = 0;
  for (int64_t i = 0; i < (int64_t)rows * cols; i++) n_nonfinite += !isfinite(feats[i]);
  if (n_nonfinite) { /* Kaldi style: warn, count, empty hypothesis, go on */
    fprintf(stderr, "%s: warning: %s has %lld NaN/Inf feature values; skipped (empty hypothesis)\n", prog, where,
            (long long)n_nonfinite);
    tot->n_bad++;
    tot->utts++;
    fprintf(w->out, "%s\n", key);
    return;
  }
  double t0 = now_s();
  float *logits = NULL;
  int32_t t_out = 0;
  int rc = st->s ? stream_run(st, m, o, key, feats, rows, &logits, &t_out, err, sizeof err)
                 : rsqm_run(m, feats, rows, o->threads, &logits, &t_out, err, sizeof err);
  char *text = NULL;
  if (rc == RSQM_ERROR) die("%s: %s", where, err);
  if (rc == RSQM_TOO_SHORT) {
    fprintf(stderr, "%s: warning: %s has %d frames, too few for the network; empty hypothesis\n", prog,
            where, rows);
    tot->n_short++;
    text = strdup("");
    if (!text) die("out of memory");
  } else if (rsqm_greedy_text(m, logits, t_out, &text)) {
    die("out of memory");
  }
  const double dt = now_s() - t0;
  tot->t_net += dt;
  tot->frames += rows;
  tot->utts++;
  if (o->timing) fprintf(stderr, "%s: %s %d frames %.3f ms\n", prog, key, rows, 1e3 * dt);
  if (o->dump && logits) {
    if (w->dump_dir) write_npy(o->dump, key, logits, t_out, m->vocab);
    else write_ark(w->dump_f, o->dump, key, logits, t_out, m->vocab);
  }
  /* "utt hyp".rstrip() as rsqasr.bin.decode writes it */
  size_t tl = strlen(text);
  while (tl > 0 && (text[tl - 1] == ' ' || text[tl - 1] == '\t')) text[--tl] = 0;
  if (tl) fprintf(w->out, "%s %s\n", key, text);
  else fprintf(w->out, "%s\n", key);
  free(text);
  free(logits);
}

static const char *impl_name(rsq_impl i) {
  switch (i) {
    case RSQ_IMPL_REF: return "ref";
    case RSQ_IMPL_NEON: return "neon";
    case RSQ_IMPL_AVX2: return "avx2";
    case RSQ_IMPL_VNNI: return "vnni";
    case RSQ_IMPL_DOT: return "sdot";
    case RSQ_IMPL_I8MM: return "smmla";
    default: return "?";
  }
}

/* Which kernels AUTO chose for the int8 layers on this CPU ("int8 kernels: smmla (7 convs), neon
 * (2 depthwise)"): one line, nothing for an FP32-only model or ops not created. */
static void print_kernels(const rsqm_model *m) {
  int n_conv[8] = {0}, n_dw[8] = {0}, any = 0;
  for (int32_t i = 0; i < m->n_layers; i++) {
    const rsqm_layer *L = &m->layers[i];
    if (L->op8) n_conv[rsq_conv1d_s8_impl(L->op8) & 7]++, any = 1;
    if (L->dw8) n_dw[rsq_dwconv1d_s8_impl(L->dw8) & 7]++, any = 1;
  }
  if (!any) return;
  fprintf(stderr, "%s: int8 kernels:", prog);
  const char *sep = " ";
  for (int k = 0; k < 8; k++)
    if (n_conv[k]) fprintf(stderr, "%s%s (%d conv%s)", sep, impl_name((rsq_impl)k), n_conv[k], n_conv[k] > 1 ? "s" : ""), sep = ", ";
  for (int k = 0; k < 8; k++)
    if (n_dw[k]) fprintf(stderr, "%s%s (%d depthwise)", sep, impl_name((rsq_impl)k), n_dw[k]), sep = ", ";
  fprintf(stderr, "\n");
}

static void print_summary(const options *o, const totals *t, const rsqm_profile *prof, const rsqm_model *m) {
  const double audio = (double)t->frames / 100.0;
  fprintf(stderr,
          "%s: %d utterances (%d too short, %d with NaN/Inf features), %.2f s of audio (10 ms frames), %.3f s in the network, RTF %.4f, "
          "%.2f ms per utterance of 600 frames (threads %d)\n",
          prog, t->utts, t->n_short, t->n_bad, audio, t->t_net, audio > 0 ? t->t_net / audio : 0.0,
          t->frames > 0 ? 1e3 * t->t_net * 600.0 / (double)t->frames : 0.0, o->threads);
  print_kernels(m);
  if (o->stream) {
    const int32_t look = rsqm_stream_lookahead(m);
    fprintf(stderr, "%s: streaming in chunks of %d frames (%d ms); the model looks %d frames (%d ms) ahead\n", prog,
            o->chunk, 10 * o->chunk, look, 10 * look);
  }
  if (o->profile) {
    fprintf(stderr, "%s: profile, ms per utterance of 600 frames:", prog);
    for (int k = 0; k < RSQM_N_KINDS; k++)
      fprintf(stderr, " %s %.3f", rsqm_kind_names[k],
              t->frames > 0 ? prof->ms[k] * 600.0 / (double)t->frames : 0.0);
    fprintf(stderr, "\n");
  }
}

int main(int argc, char **argv) {
  options o;
  const int status = parse_args(argc, argv, &o);
  if (status >= 0) return status;
  char err[RSQM_ERRLEN];
  rsqm_profile prof;
  memset(&prof, 0, sizeof prof);
  rsqm_model *m = NULL;
  if (rsqm_load_file(o.model_path, &m, err, sizeof err)) die("%s: %s", o.model_path, err);
  if (rsqm_prepare(m, err, sizeof err)) die("%s: %s", o.model_path, err);
  if (o.profile) m->profile = &prof;
  m->no_fuse = o.no_fuse;

  feats_reader in;
  feats_open(&in, o.feats_path, m, o.model_path);
  outputs w;
  outputs_open(&w, &o);
  totals tot = {0};
  streamer st = {0};
  if (o.stream) {
    if (rsqm_stream_open(m, &st.s, err, sizeof err)) die("%s: %s", o.model_path, err);
    st.tty = isatty(2);
  }
  char *key;
  float *feats;
  int32_t rows, cols;
  char where[1024];
  while (feats_next(&in, &key, &feats, &rows, &cols, where, sizeof where)) {
    decode_utterance(m, &o, &w, &st, key, feats, rows, cols, where, &tot);
    free(feats);
    free(key);
  }
  feats_close(&in);
  outputs_close(&w);
  print_summary(&o, &tot, &prof, m);
  feats_free(&in);
  rsqm_stream_close(st.s);
  free(st.ids);
  rsqm_free(m);
  return 0;
}
