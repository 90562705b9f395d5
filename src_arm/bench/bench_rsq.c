/* bench_rsq.c - benchmark of the Table 3 Conv1D shapes (output length 150, batch 1).
 * Usage:
 *   bench_rsq time [impl] [threads] [min_repeats]
 *       impl: auto|neon|avx2 (int8 kernels); prints one JSON record per line:
 *       {"shape":[k,cin,cout],"length":150,"impl":"gemm_s8"|"wino23_s8"|"fp32","threads":n,
 *        "ms_median":x,"ms_min":x,"gmacs":x,"isa":"..."}
 *   bench_rsq count <shape_index 0..6> gemm|gemm24|wino|none <calls> [impl]
 *       (gemm24: the GEMM forced onto the 2x4 micro-kernel the Winograd uses)
 *       creates the op, then calls it <calls> times with 1 thread (for qemu instruction
 *       counting: run with 2 different call counts and take the difference).
 * Separate program from the tests (ncnn benchncnn / XNNPACK bench style): warm-up, then
 * median and min over repeats, MACs of the direct convolution for the rate. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rsq/rsq.h"

static const int SHAPES[7][3] = {{3, 128, 512}, {3, 128, 768}, {3, 128, 1024}, {15, 128, 128},
                                 {9, 256, 512}, {13, 512, 512}, {15, 512, 512}};
#define T_OUT 150

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}
static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

typedef struct {
  int k, cin, cout, t_in;
  int8_t *x, *w;
  int32_t *bias, *M, *sh;
  float *xf, *wf, *bf;
} problem;

static uint32_t g_seed = 12345;
static int32_t rnd(int32_t lo, int32_t hi) {
  g_seed = g_seed * 1664525u + 1013904223u;
  return lo + (int32_t)((g_seed >> 8) % (uint32_t)(hi - lo + 1));
}

static void make_problem(problem *p, int si) {
  p->k = SHAPES[si][0];
  p->cin = SHAPES[si][1];
  p->cout = SHAPES[si][2];
  p->t_in = T_OUT + p->k - 1 - 2 * (p->k / 2); /* "same" padding k/2 on both sides */
  size_t nx = (size_t)p->t_in * p->cin, nw = (size_t)p->cout * p->cin * p->k;
  p->x = malloc(nx);
  p->w = malloc(nw);
  p->xf = malloc(nx * 4);
  p->wf = malloc(nw * 4);
  p->bias = malloc(p->cout * 4);
  p->M = malloc(p->cout * 4);
  p->sh = malloc(p->cout * 4);
  p->bf = malloc(p->cout * 4);
  for (size_t i = 0; i < nx; i++) p->xf[i] = (float)(p->x[i] = (int8_t)rnd(-63, 63));
  for (size_t i = 0; i < nw; i++) p->wf[i] = (float)(p->w[i] = (int8_t)rnd(-42, 42));
  for (int i = 0; i < p->cout; i++) {
    p->bias[i] = rnd(-10000, 10000);
    p->bf[i] = (float)p->bias[i];
    rsq_quantize_multiplier(60.0 / (sqrt((double)p->k * p->cin) * 63 * 42 / 3), &p->M[i], &p->sh[i]);
  }
}

static rsq_conv1d_params params_of(const problem *p) {
  rsq_conv1d_params q = {p->cin, p->cout, p->k, 1, p->k / 2, p->k / 2};
  return q;
}

static rsq_conv1d_s8 *make_s8(const problem *p, rsq_algo algo, rsq_impl impl) {
  rsq_conv1d_s8_desc d = {params_of(p), algo, impl, 63, p->w, p->bias, p->M, p->sh, -127, 127};
  rsq_conv1d_s8 *op = NULL;
  if (rsq_conv1d_s8_create(&d, &op) != RSQ_OK) {
    fprintf(stderr, "create failed: %s\n", rsq_last_error());
    exit(1);
  }
  return op;
}

static const char *impl_name(rsq_impl i) {
  return i == RSQ_IMPL_NEON ? "neon" : i == RSQ_IMPL_AVX2 ? "avx2" : i == RSQ_IMPL_VNNI ? "vnni"
       : i == RSQ_IMPL_DOT ? "dot" : i == RSQ_IMPL_I8MM ? "i8mm" : i == RSQ_IMPL_REF ? "ref" : "auto";
}

int main(int argc, char **argv) {
  if (argc >= 2 && !strcmp(argv[1], "count")) {
    if (argc != 5 && argc != 6) {
      fprintf(stderr, "Usage: %s count <shape 0..6> gemm|gemm24|wino|none <calls> [auto|neon|avx2|vnni|dot|i8mm]\n", argv[0]);
      return 2;
    }
    int si = atoi(argv[2]), calls = atoi(argv[4]);
    if (si < 0 || si > 6) return 2;
    problem p;
    make_problem(&p, si);
    rsq_algo algo = !strcmp(argv[3], "wino") ? RSQ_ALGO_WINO23 : RSQ_ALGO_GEMM;
    rsq_impl ci = RSQ_IMPL_AUTO;
    if (argc == 6 && !strcmp(argv[5], "neon")) ci = RSQ_IMPL_NEON;
    if (argc == 6 && !strcmp(argv[5], "avx2")) ci = RSQ_IMPL_AVX2;
    if (argc == 6 && !strcmp(argv[5], "vnni")) ci = RSQ_IMPL_VNNI;
    if (argc == 6 && !strcmp(argv[5], "dot")) ci = RSQ_IMPL_DOT;
    if (argc == 6 && !strcmp(argv[5], "i8mm")) ci = RSQ_IMPL_I8MM;
    rsq_conv1d_s8 *op;
    if (!strcmp(argv[3], "gemm24")) {
      /* the GEMM with the Winograd's 2x4 micro-kernel (2 products per int16 lane): declared
       * ranges too wide for >= 6-deep chains (one weight 127, in_absmax 127). Instruction
       * counts do not depend on the values, so this is the same-kernel comparison. */
      p.w[0] = 127;
      rsq_conv1d_s8_desc d = {params_of(&p), RSQ_ALGO_GEMM, ci, 127, p.w, p.bias, p.M, p.sh, -127, 127};
      if (rsq_conv1d_s8_create(&d, &op) != RSQ_OK) return 1;
    } else {
      op = make_s8(&p, algo, ci);
    }
    int8_t *y = malloc((size_t)T_OUT * p.cout);
    if (strcmp(argv[3], "none") != 0)
      for (int c = 0; c < calls; c++) rsq_conv1d_s8_run(op, p.x, p.t_in, y, 1);
    printf("impl=%s shape=%d,%d,%d calls=%d y0=%d\n", impl_name(rsq_conv1d_s8_impl(op)), p.k,
           p.cin, p.cout, calls, y[0]);
    return 0;
  }
  if (argc < 2 || strcmp(argv[1], "time") != 0) {
    fprintf(stderr, "Usage: %s time [auto|neon|avx2|vnni] [threads] [min_repeats]\n       %s count ...\n",
            argv[0], argv[0]);
    return 2;
  }
  rsq_impl impl = RSQ_IMPL_AUTO;
  if (argc > 2 && !strcmp(argv[2], "neon")) impl = RSQ_IMPL_NEON;
  if (argc > 2 && !strcmp(argv[2], "avx2")) impl = RSQ_IMPL_AVX2;
  if (argc > 2 && !strcmp(argv[2], "vnni")) impl = RSQ_IMPL_VNNI;
  int threads = argc > 3 ? atoi(argv[3]) : 1;
  int min_rep = argc > 4 ? atoi(argv[4]) : 50;
  for (int si = 0; si < 7; si++) {
    problem p;
    make_problem(&p, si);
    double macs = (double)T_OUT * p.k * p.cin * p.cout;
    for (int which = 0; which < 3; which++) {
      rsq_conv1d_s8 *op = NULL;
      rsq_conv1d_f32 *fop = NULL;
      int8_t *y = malloc((size_t)T_OUT * p.cout);
      float *yf = malloc((size_t)T_OUT * p.cout * 4);
      if (which < 2) {
        op = make_s8(&p, which ? RSQ_ALGO_WINO23 : RSQ_ALGO_GEMM, impl);
      } else {
        rsq_conv1d_f32_desc d = {params_of(&p), RSQ_IMPL_AUTO, p.wf, p.bf, -INFINITY, INFINITY};
        if (rsq_conv1d_f32_create(&d, &fop) != RSQ_OK) return 1;
      }
      double t[4000];
      int n = 0;
      double t_start = now_ms();
      for (int it = -5; n < 4000; it++) {
        double t0 = now_ms();
        if (op)
          rsq_conv1d_s8_run(op, p.x, p.t_in, y, threads);
        else
          rsq_conv1d_f32_run(fop, p.xf, p.t_in, yf, threads);
        double t1 = now_ms();
        if (it >= 0) t[n++] = t1 - t0;
        if (n >= min_rep && t1 - t_start > 300.0) break;
      }
      qsort(t, n, sizeof t[0], cmp_d);
      double med = n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
      printf("{\"shape\": [%d, %d, %d], \"length\": %d, \"impl\": \"%s\", \"threads\": %d, "
             "\"ms_median\": %.5f, \"ms_min\": %.5f, \"gmacs\": %.1f, \"isa\": \"%s\", \"repeats\": %d}\n",
             p.k, p.cin, p.cout, T_OUT, which == 0 ? "gemm_s8" : which == 1 ? "wino23_s8" : "fp32",
             threads, med, t[0], macs / med * 1e-6,
             op ? impl_name(rsq_conv1d_s8_impl(op)) : "f32", n);
      fflush(stdout);
      rsq_conv1d_s8_destroy(op);
      rsq_conv1d_f32_destroy(fop);
      free(y);
      free(yf);
    }
  }
  return 0;
}
