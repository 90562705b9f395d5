/* rsq_decode.c - rsq-decode: decode Kaldi features with an exported model (src_arm/FORMAT.md).
 *
 *   rsq-decode [--threads N] [--dump-logits DIR|FILE] [--timing] [--profile] [--no-fuse] model.rsq feats.scp|feats.ark [out.txt]
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
          "Usage: %s [--threads N] [--dump-logits DIR|FILE] [--timing] [--profile] [--no-fuse] model.rsq feats.scp|feats.ark [out.txt]\n"
          "  Decodes Kaldi features (feats.scp with 'key path[:offset]' lines, or a binary ark whose name\n"
          "  ends in .ark) with CTC greedy search; writes 'utt-id hypothesis' lines to out.txt or stdout.\n"
          "  --threads N        kernel threads (default 1)\n"
          "  --dump-logits P    logits of every utterance: P a directory -> P/<utt>.npy, else a Kaldi ark\n"
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

int main(int argc, char **argv) {
  int threads = 1, timing = 0;
  rsqm_profile prof;
  memset(&prof, 0, sizeof prof);
  int profile = 0, no_fuse = 0;
  const char *dump = NULL;
  const char *pos[3];
  int npos = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
      char *end;
      long v = strtol(argv[++i], &end, 10);
      if (*end || v < 1 || v > 256) die("--threads: '%s' is not an integer in [1, 256]", argv[i]);
      threads = (int)v;
    } else if (!strcmp(argv[i], "--dump-logits") && i + 1 < argc) {
      dump = argv[++i];
    } else if (!strcmp(argv[i], "--timing")) {
      timing = 1;
    } else if (!strcmp(argv[i], "--profile")) {
      profile = 1;
    } else if (!strcmp(argv[i], "--no-fuse")) {
      no_fuse = 1;
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
  const char *model_path = pos[0], *feats_path = pos[1], *out_path = npos > 2 ? pos[2] : NULL;
  char err[RSQM_ERRLEN];

  rsqm_model *m = NULL;
  if (rsqm_load_file(model_path, &m, err, sizeof err)) die("%s: %s", model_path, err);
  if (rsqm_prepare(m, err, sizeof err)) die("%s: %s", model_path, err);
  if (profile) m->profile = &prof;
  m->no_fuse = no_fuse;

  /* features: an scp, or a binary ark read sequentially */
  const size_t fl = strlen(feats_path);
  const int is_ark = fl > 4 && !strcmp(feats_path + fl - 4, ".ark");
  rsqm_scp_entry *ents = NULL;
  int32_t nent = 0;
  FILE *ark = NULL;
  if (is_ark) {
    if (!(ark = fopen(feats_path, "rb"))) die("%s: cannot open: %s", feats_path, strerror(errno));
  } else if (rsqm_scp_read(feats_path, &ents, &nent, err, sizeof err)) {
    die("%s: %s", feats_path, err);
  }

  /* outputs */
  FILE *out = stdout;
  char *tmp_out = NULL;
  if (out_path && replaceable(out_path)) {
    out = open_temp(out_path, &tmp_out);
    g_tmp_out = tmp_out;
  } else if (out_path) { /* a device, FIFO or symlink: write through */
    if (!(out = fopen(out_path, "w"))) die("%s: cannot write: %s", out_path, strerror(errno));
  }
  int dump_dir = 0;
  FILE *dump_f = NULL;
  if (dump) {
    struct stat st;
    if (!stat(dump, &st) && S_ISDIR(st.st_mode)) dump_dir = 1;
    else if (!(dump_f = fopen(dump, "wb"))) die("%s: cannot write: %s", dump, strerror(errno));
  }

  feat_file cur = {NULL, NULL};
  long long frames_total = 0;
  int32_t n_utts = 0, n_short = 0, n_bad = 0;
  double t_net = 0;
  for (int32_t u = 0;; u++) {
    char *key = NULL;
    float *feats = NULL;
    int32_t rows = 0, cols = 0;
    char where[1024];
    if (is_ark) {
      int r = rsqm_ark_next(ark, &key, &feats, &rows, &cols, err, sizeof err);
      if (r == 1) break;
      if (r < 0) die("%s: %s", feats_path, err);
      snprintf(where, sizeof where, "%s: '%.400s'", feats_path, key);
    } else {
      if (u >= nent) break;
      const rsqm_scp_entry *e = &ents[u];
      key = strdup(e->key);
      if (!key) die("out of memory");
      snprintf(where, sizeof where, "%s:%d: '%.300s' (%.300s)", feats_path, e->line, e->key, e->path);
      if (!cur.path || strcmp(cur.path, e->path)) {
        if (cur.f) fclose(cur.f);
        free(cur.path);
        cur.path = strdup(e->path);
        if (!cur.path) die("out of memory");
        if (!(cur.f = fopen(e->path, "rb"))) die("%s: cannot open %s: %s", where, e->path, strerror(errno));
      }
      if (fseeko(cur.f, e->offset < 0 ? 0 : (off_t)e->offset, SEEK_SET))
        die("%s: cannot seek to offset %lld", where, (long long)e->offset);
      if (rsqm_ark_read_matrix(cur.f, &feats, &rows, &cols, err, sizeof err)) die("%s: %s", where, err);
    }
    if (rows == 0) die("%s: empty utterance (0 frames)", where);
    if (cols != m->dim) die("%s: features of dimension %d; the model %s takes %d", where, cols, model_path, m->dim);
    int64_t n_nonfinite = 0;
    for (int64_t i = 0; i < (int64_t)rows * cols; i++) n_nonfinite += !isfinite(feats[i]);
    if (n_nonfinite) { /* Kaldi style: warn, count, empty hypothesis, go on */
      fprintf(stderr, "%s: warning: %s has %lld NaN/Inf feature values; skipped (empty hypothesis)\n", prog, where,
              (long long)n_nonfinite);
      n_bad++;
      n_utts++;
      fprintf(out, "%s\n", key);
      free(feats);
      free(key);
      continue;
    }
    double t0 = now_s();
    float *logits = NULL;
    int32_t t_out = 0;
    int rc = rsqm_run(m, feats, rows, threads, &logits, &t_out, err, sizeof err);
    char *text = NULL;
    if (rc == RSQM_ERROR) die("%s: %s", where, err);
    if (rc == RSQM_TOO_SHORT) {
      fprintf(stderr, "%s: warning: %s has %d frames, too few for the network; empty hypothesis\n", prog,
              where, rows);
      n_short++;
      text = strdup("");
      if (!text) die("out of memory");
    } else if (rsqm_greedy_text(m, logits, t_out, &text)) {
      die("out of memory");
    }
    const double dt = now_s() - t0;
    t_net += dt;
    frames_total += rows;
    n_utts++;
    if (timing) fprintf(stderr, "%s: %s %d frames %.3f ms\n", prog, key, rows, 1e3 * dt);
    if (dump && logits) {
      if (dump_dir) write_npy(dump, key, logits, t_out, m->vocab);
      else write_ark(dump_f, dump, key, logits, t_out, m->vocab);
    }
    /* "utt hyp".rstrip() as rsqasr.bin.decode writes it */
    size_t tl = strlen(text);
    while (tl > 0 && (text[tl - 1] == ' ' || text[tl - 1] == '\t')) text[--tl] = 0;
    if (tl) fprintf(out, "%s %s\n", key, text);
    else fprintf(out, "%s\n", key);
    free(text);
    free(logits);
    free(feats);
    free(key);
  }
  if (cur.f) fclose(cur.f);
  free(cur.path);
  if (ark) fclose(ark);
  if (dump_f && fclose(dump_f)) die("%s: write error", dump);
  if (tmp_out) {
    if (fclose(out)) die("%s: write error", tmp_out);
    if (!replaceable(out_path)) die("%s: became a non-regular file while decoding; not replaced", out_path);
    if (rename(tmp_out, out_path)) die("%s: cannot rename to %s: %s", tmp_out, out_path, strerror(errno));
    g_tmp_out = NULL;
    free(tmp_out);
  } else if (out_path) {
    if (fclose(out)) die("%s: write error", out_path);
  } else if (fflush(stdout)) {
    die("write error on stdout");
  }
  const double audio = (double)frames_total / 100.0;
  fprintf(stderr,
          "%s: %d utterances (%d too short, %d with NaN/Inf features), %.2f s of audio (10 ms frames), %.3f s in the network, RTF %.4f, "
          "%.2f ms per utterance of 600 frames (threads %d)\n",
          prog, n_utts, n_short, n_bad, audio, t_net, audio > 0 ? t_net / audio : 0.0,
          frames_total > 0 ? 1e3 * t_net * 600.0 / (double)frames_total : 0.0, threads);
  if (profile) {
    fprintf(stderr, "%s: profile, ms per utterance of 600 frames:", prog);
    for (int k = 0; k < RSQM_N_KINDS; k++)
      fprintf(stderr, " %s %.3f", rsqm_kind_names[k],
              frames_total > 0 ? prof.ms[k] * 600.0 / (double)frames_total : 0.0);
    fprintf(stderr, "\n");
  }
  rsqm_scp_free(ents, nent);
  rsqm_free(m);
  return 0;
}
