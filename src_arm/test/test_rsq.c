/* test_rsq.c - kernel tests: every optimised kernel against its plain-C reference (exact for
 * integers, relative tolerance for FP32), Winograd reference against direct convolution,
 * requantization edge cases, threads, and every bad-input status of the public API.
 * Usage: test_rsq <group>; groups: requant wino_tile wino_ref gemm_neon wino_neon avx2 vnni
 * epilogue threads f32 api dwconv acc. A group whose kernels this CPU/build lacks says
 * "skipped" and which implementation it skipped. On failure every shape parameter and the first differing index
 * is printed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "rsq/rsq.h"

static int g_fail = 0;
static int g_compared = 0;
#define CHECK(cond, ...)                                              \
  do {                                                                \
    if (!(cond)) {                                                    \
      fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                   \
      fprintf(stderr, "\n");                                          \
      g_fail++;                                                       \
    }                                                                 \
  } while (0)

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void) {
  g_rng ^= g_rng << 13;
  g_rng ^= g_rng >> 7;
  g_rng ^= g_rng << 17;
  return (uint32_t)(g_rng >> 11);
}
static int32_t rint_in(int32_t lo, int32_t hi) { return lo + (int32_t)(rnd() % (uint32_t)(hi - lo + 1)); }

/* ---------------------------------------------------------------- requant */
static void test_requant(void) {
  int32_t M, s;
  CHECK(rsq_quantize_multiplier(0.5, &M, &s) == RSQ_OK && M == (1 << 30) && s == 0, "0.5 -> %d %d", M, s);
  CHECK(rsq_quantize_multiplier(1.0, &M, &s) == RSQ_OK && M == (1 << 30) && s == -1, "1.0 -> %d %d", M, s);
  CHECK(rsq_quantize_multiplier(3.0, &M, &s) == RSQ_OK && M == 1610612736 && s == -2, "3.0 -> %d %d", M, s);
  CHECK(rsq_quantize_multiplier(0.75 / 1024, &M, &s) == RSQ_OK && M == 1610612736 && s == 10, "-> %d %d", M, s);
  /* M rounds up to 2^31: halve and decrement shift */
  CHECK(rsq_quantize_multiplier(0.25 * (1.0 - 1e-12), &M, &s) == RSQ_OK && M == (1 << 30) && s == 1,
        "near 0.25 -> %d %d", M, s);
  /* rounding of M to nearest (ties away from zero) */
  CHECK(rsq_quantize_multiplier((1073741824.0 + 0.5) / 2147483648.0, &M, &s) == RSQ_OK &&
            M == 1073741825 && s == 0, "tie -> %d %d", M, s);
  CHECK(rsq_quantize_multiplier(ldexp(1.0, -32), &M, &s) == RSQ_OK && s == 31, "2^-32 -> %d", s);
  CHECK(rsq_quantize_multiplier(ldexp(1.0, -33), &M, &s) == RSQ_ERR_PARAM, "2^-33 accepted");
  CHECK(rsq_quantize_multiplier(ldexp(1.0, 31), &M, &s) == RSQ_ERR_PARAM, "2^31 accepted");
  CHECK(rsq_quantize_multiplier(0.0, &M, &s) == RSQ_ERR_PARAM, "0 accepted");
  CHECK(rsq_quantize_multiplier(-1.0, &M, &s) == RSQ_ERR_PARAM, "-1 accepted");
  CHECK(rsq_quantize_multiplier(NAN, &M, &s) == RSQ_ERR_PARAM, "nan accepted");
  CHECK(rsq_quantize_multiplier(INFINITY, &M, &s) == RSQ_ERR_PARAM, "inf accepted");
  CHECK(rsq_quantize_multiplier(0.5, NULL, &s) == RSQ_ERR_NULL, "null accepted");
  /* SRDHM round half up: 3 * 0.5 = 1.5 -> 2, -3 * 0.5 = -1.5 -> -1 */
  CHECK(rsq_requantize(3, 1 << 30, 0, -127, 127) == 2, "3*0.5");
  CHECK(rsq_requantize(-3, 1 << 30, 0, -127, 127) == -1, "-3*0.5");
  /* shift > 0 ties: 5*0.5 = 2.5 -> 3 (step 1), (3 + 1) >> 1 = 2 */
  CHECK(rsq_requantize(5, 1 << 30, 1, -127, 127) == 2, "5*0.25 -> %d", rsq_requantize(5, 1 << 30, 1, -127, 127));
  CHECK(rsq_requantize(-6, 1 << 30, 1, -127, 127) == -1, "-6*0.25 -> %d", rsq_requantize(-6, 1 << 30, 1, -127, 127));
  CHECK(rsq_requantize(-10, 1 << 30, 2, -127, 127) == -1, "-10/16 -> %d", rsq_requantize(-10, 1 << 30, 2, -127, 127));
  /* negative shift: left shift first, saturating */
  CHECK(rsq_requantize(7, 1 << 30, -2, -127, 127) == 14, "7*2");
  CHECK(rsq_requantize(INT32_MAX, 1 << 30, -5, -127, 127) == 127, "sat+");
  CHECK(rsq_requantize(INT32_MIN, 1 << 30, -5, -127, 127) == -127, "sat-");
  CHECK(rsq_requantize(INT32_MAX, INT32_MAX, 31, -127, 127) == 1, "max/2^31 -> %d", rsq_requantize(INT32_MAX, INT32_MAX, 31, -127, 127));
  CHECK(rsq_requantize(INT32_MIN, INT32_MAX, 31, -127, 127) == -1, "min/2^31 -> %d", rsq_requantize(INT32_MIN, INT32_MAX, 31, -127, 127));
  /* clamp and ReLU */
  CHECK(rsq_requantize(1000, 1 << 30, 0, -63, 63) == 63, "clamp 63");
  CHECK(rsq_requantize(-1000, 1 << 30, 0, -63, 63) == -63, "clamp -63");
  CHECK(rsq_requantize(-1000, 1 << 30, 0, 0, 127) == 0, "relu");
  CHECK(rsq_requantize(40, 1 << 30, 0, 0, 127) == 20, "relu pass");
  /* against an independent formulation: round-half-up of acc*M/2^31 then of /2^shift */
  for (int i = 0; i < 200000; i++) {
    int32_t acc = (int32_t)rnd() ^ (int32_t)(rnd() << 16);
    if (i % 3 == 0) acc >>= rint_in(0, 30);
    int32_t Mi = (int32_t)((1u << 30) + (rnd() % (1u << 30)));
    int32_t sh = rint_in(0, 31);
    /* independent: floor((acc*M + 2^30) / 2^31) with explicit floor division */
    int64_t num = (int64_t)acc * Mi + (1LL << 30);
    int64_t a = num >= 0 ? num / (1LL << 31) : -((-num + (1LL << 31) - 1) / (1LL << 31));
    int64_t r = a;
    if (sh > 0) {
      int64_t n2 = a + (1LL << (sh - 1));
      r = n2 >= 0 ? n2 / (1LL << sh) : -((-n2 + (1LL << sh) - 1) / (1LL << sh));
    }
    r = r < -127 ? -127 : r > 127 ? 127 : r;
    int32_t got = rsq_requantize(acc, Mi, sh, -127, 127);
    if (got != r) {
      CHECK(got == r, "acc=%d M=%d shift=%d: got %d want %lld", acc, Mi, sh, got, (long long)r);
      break;
    }
  }
}

/* ---------------------------------------------------------------- Winograd tile */
static void test_wino_tile(void) {
  /* all-extremes: every sign pattern of d in {-63,63}^4, g in {-42,42}^3, plus random */
  for (int n = 0; n < 128 + 100000; n++) {
    int32_t d[4], g[3], y2[2];
    for (int i = 0; i < 4; i++) d[i] = n < 128 ? ((n >> i) & 1 ? 63 : -63) : rint_in(-63, 63);
    for (int j = 0; j < 3; j++) g[j] = n < 128 ? ((n >> (4 + j)) & 1 ? 42 : -42) : rint_in(-42, 42);
    rsq_wino23_tile_ref(d, g, y2);
    int32_t c0 = d[0] * g[0] + d[1] * g[1] + d[2] * g[2];
    int32_t c1 = d[1] * g[0] + d[2] * g[1] + d[3] * g[2];
    if (y2[0] != 2 * c0 || y2[1] != 2 * c1) {
      CHECK(0, "d=%d,%d,%d,%d g=%d,%d,%d: Y2=%d,%d want %d,%d", d[0], d[1], d[2], d[3], g[0], g[1],
            g[2], y2[0], y2[1], 2 * c0, 2 * c1);
      break;
    }
    /* ranges the NEON kernels rely on */
    int32_t v[4] = {d[0] - d[2], d[1] + d[2], d[2] - d[1], d[1] - d[3]};
    int32_t u[4] = {g[0], g[0] + g[1] + g[2], g[0] - g[1] + g[2], g[2]};
    for (int i = 0; i < 4; i++) {
      CHECK(abs(v[i]) <= 126 && abs(u[i]) <= (i == 0 || i == 3 ? 42 : 126), "range");
    }
  }
  /* the erratum: B^T row 4 printed as [0,-1,0,1] gives a wrong convolution */
  int32_t d[4] = {1, 2, 3, 5}, g[3] = {1, 1, 1};
  int32_t v3 = -d[1] + d[3], y1 = (g[0] + g[1] + g[2]) * (d[1] + d[2]) - (g[0] - g[1] + g[2]) * (d[2] - d[1]) - 2 * g[2] * v3;
  CHECK(y1 != 2 * (d[1] + d[2] + d[3]), "erratum pair unexpectedly exact");
}

/* ---------------------------------------------------------------- conv harness */
typedef struct {
  rsq_conv1d_params p;
  int32_t t_in, in_absmax, wmax, lo, hi, pattern;
} conv_case;

static void print_case(const char *what, const conv_case *c, rsq_algo algo, rsq_impl impl, int threads) {
  fprintf(stderr,
          "  [%s] algo=%d impl=%d threads=%d cin=%d cout=%d k=%d stride=%d pad=%d/%d t_in=%d "
          "in_absmax=%d wmax=%d clamp=[%d,%d] pattern=%d\n",
          what, (int)algo, (int)impl, threads, c->p.cin, c->p.cout, c->p.k, c->p.stride,
          c->p.pad_left, c->p.pad_right, c->t_in, c->in_absmax, c->wmax, c->lo, c->hi, c->pattern);
}

/* pattern 0: random; 1: all +max (maximal int16 lane sums); 2: time-alternating sign with
 * weights (+,-,+) taps (maximal |B^T d| rows 2, |G g| row 2); 3: random signs at the extremes */
static void fill_case(const conv_case *c, int8_t *x, int8_t *w, int32_t *bias, int32_t *M, int32_t *sh) {
  const int32_t cin = c->p.cin, cout = c->p.cout, k = c->p.k;
  for (int32_t t = 0; t < c->t_in; t++)
    for (int32_t ci = 0; ci < cin; ci++) {
      int32_t v;
      switch (c->pattern) {
        case 1: v = c->in_absmax; break;
        case 2: v = (t & 1) ? -c->in_absmax : c->in_absmax; break;
        case 3: v = (rnd() & 1) ? -c->in_absmax : c->in_absmax; break;
        default: v = rint_in(-c->in_absmax, c->in_absmax);
      }
      x[(size_t)t * cin + ci] = (int8_t)v;
    }
  for (int32_t co = 0; co < cout; co++)
    for (int32_t ci = 0; ci < cin; ci++)
      for (int32_t j = 0; j < k; j++) {
        int32_t v;
        switch (c->pattern) {
          case 1: v = c->wmax; break;
          case 2: v = (j & 1) ? -c->wmax : c->wmax; break;
          case 3: v = (rnd() & 1) ? -c->wmax : c->wmax; break;
          default: v = rint_in(-c->wmax, c->wmax);
        }
        w[((size_t)co * cin + ci) * k + j] = (int8_t)v;
      }
  /* scale so that outputs spread over the int8 range: m ~ 60 / (sqrt(K) * in * w) */
  double K = (double)k * cin, amp = (c->pattern ? K : sqrt(K)) * c->in_absmax * c->wmax / 3.0 + 1;
  for (int32_t co = 0; co < cout; co++) {
    double m = (60.0 / amp) * (0.5 + (rnd() % 1000) / 1000.0);
    if (rnd() % 8 == 0) m *= 64; /* some channels saturate / use small shifts */
    if (rsq_quantize_multiplier(m, &M[co], &sh[co]) != RSQ_OK) { M[co] = 1 << 30; sh[co] = 0; }
    bias[co] = rint_in(-(int32_t)amp, (int32_t)amp);
  }
}

/* Runs algo/impl and compares with the reference op. Returns 0 on success. */
static int run_compare(const conv_case *c, rsq_algo algo, rsq_impl impl, int threads) {
  int32_t t_out;
  if (rsq_conv1d_out_length(&c->p, c->t_in, &t_out) != RSQ_OK) return 0;
  const size_t nx = (size_t)c->t_in * c->p.cin, nw = (size_t)c->p.cout * c->p.cin * c->p.k;
  const size_t ny = (size_t)t_out * c->p.cout;
  int8_t *x = malloc(nx), *w = malloc(nw), *y = malloc(ny), *yr = malloc(ny);
  int32_t *bias = malloc(c->p.cout * 4), *M = malloc(c->p.cout * 4), *sh = malloc(c->p.cout * 4);
  fill_case(c, x, w, bias, M, sh);
  rsq_conv1d_s8_ref(&c->p, x, c->t_in, w, bias, M, sh, c->lo, c->hi, yr);
  rsq_conv1d_s8_desc d = {c->p, algo, impl, c->in_absmax, w, bias, M, sh, c->lo, c->hi};
  rsq_conv1d_s8 *op = NULL;
  int bad = 0;
  rsq_status st = rsq_conv1d_s8_create(&d, &op);
  if (st != RSQ_OK) {
    print_case("create failed", c, algo, impl, threads);
    fprintf(stderr, "  status %d: %s\n", st, rsq_last_error());
    bad = 1;
  } else {
    memset(y, 0x55, ny);
    st = rsq_conv1d_s8_run(op, x, c->t_in, y, threads);
    if (st != RSQ_OK) {
      print_case("run failed", c, algo, impl, threads);
      fprintf(stderr, "  status %d: %s\n", st, rsq_last_error());
      bad = 1;
    } else {
      g_compared++;
      for (size_t i = 0; i < ny; i++)
        if (y[i] != yr[i]) {
          print_case("mismatch", c, algo, impl, threads);
          fprintf(stderr, "  first difference at t=%zu co=%zu: got %d want %d (t_out=%d)\n",
                  i / c->p.cout, i % c->p.cout, y[i], yr[i], t_out);
          bad = 1;
          break;
        }
    }
    rsq_conv1d_s8_destroy(op);
  }
  free(x); free(w); free(y); free(yr); free(bias); free(M); free(sh);
  if (bad) g_fail++;
  return bad;
}

static const int32_t K_LIST[] = {1, 2, 3, 4, 5, 9, 13, 15};
static const int32_t CIN_LIST[] = {1, 3, 4, 7, 8, 9, 15, 16, 17, 24, 33};
static const int32_t COUT_LIST[] = {1, 2, 3, 4, 7, 8, 9, 15, 16, 17, 31, 33, 64, 65};

static conv_case random_case(int wino, int n) {
  conv_case c;
  memset(&c, 0, sizeof c);
  do {
    c.p.k = K_LIST[rnd() % 8];
  } while (wino && c.p.k < 3);
  c.p.cin = CIN_LIST[rnd() % 11];
  c.p.cout = COUT_LIST[rnd() % 14];
  c.p.stride = wino ? 1 : 1 + (int32_t)(rnd() % 2);
  c.p.pad_left = rint_in(0, c.p.k - 1);
  c.p.pad_right = rint_in(0, c.p.k - 1);
  int32_t t_out = 1 + (n % 15); /* 1..15: below/equal/above the 3- and 6-row tiles, odd */
  if (n % 7 == 0) t_out = 25 + (int32_t)(rnd() % 8);
  c.t_in = (t_out - 1) * c.p.stride + c.p.k - c.p.pad_left - c.p.pad_right;
  if (c.t_in < 1) { c.t_in = 1; }
  c.pattern = n % 5 == 4 ? 0 : (n % 5);
  c.in_absmax = 63;
  c.wmax = 42;
  if (!wino && n % 9 == 5) { c.in_absmax = 127; c.wmax = 127; }
  if (!wino && n % 9 == 7) { c.in_absmax = 100; c.wmax = 20; }
  int cl = n % 4;
  c.lo = cl == 0 ? -127 : cl == 1 ? -63 : 0;
  c.hi = cl == 1 ? 63 : 127;
  return c;
}

static void test_conv_impl(rsq_impl impl, int wino, int ncases) {
  rsq_algo algo = wino ? RSQ_ALGO_WINO23 : RSQ_ALGO_GEMM;
  int fails = 0;
  for (int n = 0; n < ncases && fails < 5; n++) {
    conv_case c = random_case(wino, n);
    fails += run_compare(&c, algo, impl, 1);
  }
  /* fixed edge cases: every k in the list, every blocking boundary for cin/cout */
  for (int ki = 0; ki < 8 && fails < 5; ki++) {
    int32_t k = K_LIST[ki];
    if (wino && k < 3) continue;
    for (int pat = 0; pat < 4; pat++) {
      conv_case c = {{16, 16, k, 1, k / 2, (k - 1) / 2}, 13, 63, 42, -127, 127, pat};
      fails += run_compare(&c, algo, impl, 1);
      c.p.cin = 17; c.p.cout = 9; c.t_in = 1; c.p.pad_left = k - 1; c.p.pad_right = 0;
      fails += run_compare(&c, algo, impl, 1);
    }
  }
  /* long reductions and many rows: cross the AVX2 cache slices (252 4-deep steps) and row
   * chunks (48 rows), cin not a multiple of 4/8/16, cout not a multiple of 12/16 */
  const conv_case big[] = {{{130, 40, 9, 1, 4, 4}, 100, 63, 42, -127, 127, 0},
                           {{130, 40, 9, 1, 4, 4}, 100, 63, 42, -63, 63, 1},
                           {{260, 17, 15, 1, 7, 7}, 61, 63, 42, -127, 127, 3},
                           {{300, 29, 4, 1, 0, 3}, 77, 63, 42, 0, 127, 2}};
  for (int i = 0; i < 4 && fails < 5; i++) fails += run_compare(&big[i], algo, impl, 1 + i % 3);
  if (wino) return;
  /* the full int8 range (AVX2: sign mode; VNNI: offset 128) across the cache slices */
  const conv_case full[] = {{{130, 40, 9, 1, 4, 4}, 100, 127, 127, -127, 127, 0},
                            {{260, 17, 15, 2, 7, 7}, 61, 127, 127, -127, 127, 1},
                            {{33, 70, 1, 1, 0, 0}, 50, 127, 64, 0, 127, 2},
                            {{33, 70, 3, 1, 1, 1}, 50, 120, 65, -127, 127, 3}};
  for (int i = 0; i < 4 && fails < 5; i++) fails += run_compare(&full[i], algo, impl, 1 + i % 2);
}

static int have_impl(rsq_impl impl) {
  int8_t w = 1;
  int32_t M = 1 << 30, s = 0;
  rsq_conv1d_s8_desc d = {{1, 1, 3, 1, 0, 0}, RSQ_ALGO_GEMM, impl, 63, &w, NULL, &M, &s, -127, 127};
  int8_t w3[3] = {1, 1, 1};
  d.weight = w3;
  rsq_conv1d_s8 *op = NULL;
  rsq_status st = rsq_conv1d_s8_create(&d, &op);
  rsq_conv1d_s8_destroy(op);
  return st == RSQ_OK;
}

static void test_epilogue(rsq_impl impl) {
  /* k=1, cin=1: the accumulator is dominated by the bias, which spans the int32 range, with
   * random multipliers and shifts in [-31, 31]: exercises saturation and rounding of the
   * vector requantization against the scalar rule. */
  const int32_t cout = 67, t_in = 9;
  int8_t x[9], w[67];
  int32_t bias[67], M[67], sh[67];
  int8_t y[9 * 67], yr[9 * 67];
  for (int rep = 0; rep < 40; rep++) {
    for (int i = 0; i < t_in; i++) x[i] = (int8_t)rint_in(-1, 1);
    for (int i = 0; i < cout; i++) {
      w[i] = (int8_t)rint_in(-1, 1);
      int32_t mag = rint_in(0, 31);
      int64_t b = (int64_t)(rnd() % 2000000001u) - 1000000000;
      bias[i] = (int32_t)(mag >= 31 ? (rnd() & 1 ? INT32_MAX - 64 : INT32_MIN + 64) : (b >> (31 - mag)));
      M[i] = (int32_t)((1u << 30) + (rnd() % (1u << 30)));
      if (rep % 5 == 0) M[i] = (int32_t)(INT32_MAX - (rnd() % 3));
      sh[i] = rint_in(-31, 31);
    }
    int lo = rep % 3 == 2 ? 0 : rep % 3 == 1 ? -63 : -127, hi = rep % 3 == 1 ? 63 : 127;
    rsq_conv1d_params p = {1, cout, 1, 1, 0, 0};
    rsq_conv1d_s8_ref(&p, x, t_in, w, bias, M, sh, lo, hi, yr);
    rsq_conv1d_s8_desc d = {p, RSQ_ALGO_GEMM, impl, 1, w, bias, M, sh, lo, hi};
    rsq_conv1d_s8 *op = NULL;
    rsq_status st = rsq_conv1d_s8_create(&d, &op);
    CHECK(st == RSQ_OK, "create: %s", rsq_last_error());
    if (st) return;
    CHECK(rsq_conv1d_s8_run(op, x, t_in, y, 1) == RSQ_OK, "run: %s", rsq_last_error());
    for (int i = 0; i < t_in * cout; i++)
      if (y[i] != yr[i]) {
        CHECK(0, "impl=%d rep=%d t=%d co=%d bias=%d M=%d shift=%d: got %d want %d", impl, rep,
              i / cout, i % cout, bias[i % cout], M[i % cout], sh[i % cout], y[i], yr[i]);
        break;
      }
    rsq_conv1d_s8_destroy(op);
  }
}

static void test_threads(void) {
  rsq_impl impls[6] = {RSQ_IMPL_NEON, RSQ_IMPL_AVX2, RSQ_IMPL_VNNI, RSQ_IMPL_REF, RSQ_IMPL_DOT, RSQ_IMPL_I8MM};
  for (int ii = 0; ii < 6; ii++) {
    if (!have_impl(impls[ii])) continue;
    for (int th = 1; th <= 3; th++)
      for (int wino = 0; wino < 2; wino++) {
        conv_case c = {{33, 65, wino ? 9 : 5, wino ? 1 : 2, 2, 1}, 40, 63, 42, -127, 127, 0};
        run_compare(&c, wino ? RSQ_ALGO_WINO23 : RSQ_ALGO_GEMM, impls[ii], th);
        conv_case c2 = {{16, 7, 4, 1, 1, 2}, 3, 63, 42, 0, 127, 3};
        run_compare(&c2, wino ? RSQ_ALGO_WINO23 : RSQ_ALGO_GEMM, impls[ii], th);
      }
  }
}

/* ---------------------------------------------------------------- Winograd ref vs direct */
static void test_wino_ref(void) {
  for (int n = 0; n < 120; n++) {
    conv_case c = random_case(1, n);
    int32_t t_out;
    if (rsq_conv1d_out_length(&c.p, c.t_in, &t_out) != RSQ_OK) continue;
    size_t nx = (size_t)c.t_in * c.p.cin, nw = (size_t)c.p.cout * c.p.cin * c.p.k;
    int8_t *x = malloc(nx), *w = malloc(nw);
    int32_t *a = malloc((size_t)t_out * c.p.cout * 4), *b = malloc((size_t)t_out * c.p.cout * 4);
    int32_t *bias = malloc(c.p.cout * 4), *M = malloc(c.p.cout * 4), *sh = malloc(c.p.cout * 4);
    fill_case(&c, x, w, bias, M, sh);
    rsq_conv1d_s8_acc_ref(&c.p, x, c.t_in, w, a);
    rsq_wino23_s8_acc_ref(&c.p, x, c.t_in, w, b);
    for (int32_t i = 0; i < t_out * c.p.cout; i++)
      if (a[i] != b[i]) {
        print_case("wino ref vs direct", &c, RSQ_ALGO_WINO23, RSQ_IMPL_REF, 1);
        fprintf(stderr, "  first difference t=%d co=%d: wino %d direct %d\n", i / c.p.cout,
                i % c.p.cout, b[i], a[i]);
        g_fail++;
        break;
      }
    free(x); free(w); free(a); free(b); free(bias); free(M); free(sh);
    /* and the requantized reference ops agree */
    run_compare(&c, RSQ_ALGO_WINO23, RSQ_IMPL_REF, 1);
  }
}

/* ---------------------------------------------------------------- FP32 */
static void test_f32(void) {
  for (int n = 0; n < 60; n++) {
    conv_case c = random_case(0, n);
    int32_t t_out;
    if (rsq_conv1d_out_length(&c.p, c.t_in, &t_out) != RSQ_OK) continue;
    size_t nx = (size_t)c.t_in * c.p.cin, nw = (size_t)c.p.cout * c.p.cin * c.p.k, ny = (size_t)t_out * c.p.cout;
    float *x = malloc(nx * 4), *w = malloc(nw * 4), *b = malloc(c.p.cout * 4), *y = malloc(ny * 4), *yr = malloc(ny * 4);
    for (size_t i = 0; i < nx; i++) x[i] = (float)rint_in(-1000, 1000) / 500.f;
    for (size_t i = 0; i < nw; i++) w[i] = (float)rint_in(-1000, 1000) / 700.f;
    for (int i = 0; i < c.p.cout; i++) b[i] = (float)rint_in(-1000, 1000) / 100.f;
    float lo = n % 3 == 0 ? 0.f : -INFINITY;
    rsq_conv1d_f32_ref(&c.p, x, c.t_in, w, b, lo, INFINITY, yr);
    rsq_conv1d_f32_desc d = {c.p, RSQ_IMPL_AUTO, w, b, lo, INFINITY};
    rsq_conv1d_f32 *op = NULL;
    CHECK(rsq_conv1d_f32_create(&d, &op) == RSQ_OK, "%s", rsq_last_error());
    CHECK(rsq_conv1d_f32_run(op, x, c.t_in, y, 1 + n % 3) == RSQ_OK, "%s", rsq_last_error());
    /* tolerance: 1e-5 * (sum of |terms|) bound <= 1e-5 * K * 2 * 1.43 + |b| scale */
    float tol = 1e-5f * (float)(c.p.k * c.p.cin) * 3.f + 1e-4f;
    for (size_t i = 0; i < ny; i++)
      if (!(fabsf(y[i] - yr[i]) <= tol)) {
        print_case("f32 mismatch", &c, RSQ_ALGO_GEMM, RSQ_IMPL_AUTO, 1 + n % 3);
        fprintf(stderr, "  first difference t=%zu co=%zu: got %g want %g tol %g\n", i / c.p.cout,
                i % c.p.cout, y[i], yr[i], tol);
        g_fail++;
        break;
      }
    rsq_conv1d_f32_destroy(op);
    free(x); free(w); free(b); free(y); free(yr);
  }
  /* linear = conv k=1 over rows */
  float wl[6] = {1, 2, 3, 4, 5, 6}, bl[2] = {0.5f, -1}, xl[6] = {1, 0, -1, 2, 1, 0}, yl[4];
  rsq_conv1d_f32 *op = NULL;
  CHECK(rsq_linear_f32_create(3, 2, wl, bl, RSQ_IMPL_AUTO, &op) == RSQ_OK, "linear create");
  CHECK(rsq_conv1d_f32_run(op, xl, 2, yl, 1) == RSQ_OK, "linear run");
  CHECK(yl[0] == -1.5f && yl[1] == -3.f && yl[2] == 4.5f && yl[3] == 12.f, "linear %g %g %g %g", yl[0], yl[1], yl[2], yl[3]);
  rsq_conv1d_f32_destroy(op);
}

/* ---------------------------------------------------------------- API statuses */
static void test_api(void) {
  int8_t w[3 * 4 * 4];
  for (int i = 0; i < 48; i++) w[i] = (int8_t)(i % 7 - 3);
  int32_t M[4] = {1 << 30, 1 << 30, 1 << 30, 1 << 30}, sh[4] = {0, 0, 0, 0};
  rsq_conv1d_s8_desc good = {{4, 4, 3, 1, 1, 1}, RSQ_ALGO_GEMM, RSQ_IMPL_AUTO, 63, w, NULL, M, sh, -127, 127};
  rsq_conv1d_s8 *op = NULL;
  rsq_conv1d_s8_desc d;
#define EXPECT_CREATE(mod, want)                                                        \
  do {                                                                                  \
    d = good;                                                                           \
    mod;                                                                                \
    op = (rsq_conv1d_s8 *)&d; /* not NULL: a failed create must set *op to NULL */      \
    rsq_status st_ = rsq_conv1d_s8_create(&d, &op);                                    \
    CHECK(st_ == (want), "%s: got %d (%s) want %d", #mod, st_, rsq_last_error(), want); \
    CHECK(st_ != RSQ_OK || op != NULL, "op null");                                      \
    CHECK(st_ == RSQ_OK || (op == NULL && rsq_last_error()[0]), "%s: no message or *op not NULL", #mod); \
    if (op != (rsq_conv1d_s8 *)&d) rsq_conv1d_s8_destroy(op);                           \
  } while (0)
  EXPECT_CREATE((void)0, RSQ_OK);
  EXPECT_CREATE(d.shape.k = 0, RSQ_ERR_PARAM);
  EXPECT_CREATE(d.shape.k = -3, RSQ_ERR_PARAM);
  EXPECT_CREATE(d.shape.cin = 0, RSQ_ERR_SHAPE);
  EXPECT_CREATE(d.shape.cout = 0, RSQ_ERR_SHAPE);
  EXPECT_CREATE(d.shape.cin = -1, RSQ_ERR_SHAPE);
  EXPECT_CREATE(d.shape.stride = 3, RSQ_ERR_PARAM);
  EXPECT_CREATE(d.shape.stride = 0, RSQ_ERR_PARAM);
  EXPECT_CREATE(d.shape.pad_left = -1, RSQ_ERR_PARAM);
  EXPECT_CREATE(d.shape.pad_left = 3, RSQ_ERR_PARAM);   /* pads must be < k (rsq.h) */
  EXPECT_CREATE(d.shape.pad_right = 65536, RSQ_ERR_PARAM);
  EXPECT_CREATE((d.shape.pad_left = 2, d.shape.pad_right = 2), RSQ_OK);
  EXPECT_CREATE(d.weight = NULL, RSQ_ERR_NULL);
  EXPECT_CREATE(d.multiplier = NULL, RSQ_ERR_NULL);
  EXPECT_CREATE(d.shift = NULL, RSQ_ERR_NULL);
  EXPECT_CREATE((d.algo = RSQ_ALGO_WINO23, d.shape.stride = 2), RSQ_ERR_UNSUPPORTED);
  EXPECT_CREATE((d.algo = RSQ_ALGO_WINO23, d.shape.k = 2), RSQ_ERR_UNSUPPORTED);
  EXPECT_CREATE((d.algo = RSQ_ALGO_WINO23, d.in_absmax = 64), RSQ_ERR_PARAM);
  EXPECT_CREATE(d.algo = (rsq_algo)7, RSQ_ERR_PARAM);
  EXPECT_CREATE(d.impl = (rsq_impl)9, RSQ_ERR_PARAM);
  EXPECT_CREATE(d.in_absmax = 0, RSQ_ERR_PARAM);
  EXPECT_CREATE(d.in_absmax = 128, RSQ_ERR_PARAM);
  EXPECT_CREATE(d.out_min = -128, RSQ_ERR_PARAM);
  EXPECT_CREATE((d.out_min = 5, d.out_max = 4), RSQ_ERR_PARAM);
  M[2] = (1 << 30) - 1;
  EXPECT_CREATE((void)0, RSQ_ERR_PARAM);
  M[2] = 1 << 30;
  sh[1] = 32;
  EXPECT_CREATE((void)0, RSQ_ERR_PARAM);
  sh[1] = 0;
  w[5] = -128;
  EXPECT_CREATE((void)0, RSQ_ERR_PARAM);
  w[5] = 43;
  EXPECT_CREATE(d.algo = RSQ_ALGO_WINO23, RSQ_ERR_PARAM);
  w[5] = 0;
  int32_t big[4] = {INT32_MAX, 0, 0, 0};
  EXPECT_CREATE(d.bias = big, RSQ_ERR_PARAM); /* accumulator could overflow */
  CHECK(rsq_conv1d_s8_create(NULL, &op) == RSQ_ERR_NULL, "null desc");
  CHECK(rsq_conv1d_s8_create(&good, NULL) == RSQ_ERR_NULL, "null out");
  /* run */
  CHECK(rsq_conv1d_s8_create(&good, &op) == RSQ_OK, "%s", rsq_last_error());
  int8_t x[40] = {0}, y[40];
  CHECK(rsq_conv1d_s8_run(op, x, 10, y, 0) == RSQ_ERR_PARAM, "threads 0");
  CHECK(rsq_conv1d_s8_run(op, x, 10, y, -1) == RSQ_ERR_PARAM, "threads -1");
  CHECK(rsq_conv1d_s8_run(op, NULL, 10, y, 1) == RSQ_ERR_NULL, "x null");
  CHECK(rsq_conv1d_s8_run(op, x, 10, NULL, 1) == RSQ_ERR_NULL, "y null");
  CHECK(rsq_conv1d_s8_run(NULL, x, 10, y, 1) == RSQ_ERR_NULL, "op null");
  CHECK(rsq_conv1d_s8_run(op, x, 0, y, 1) == RSQ_ERR_SHAPE, "t_in 0");
  CHECK(rsq_conv1d_s8_run(op, x, -5, y, 1) == RSQ_ERR_SHAPE, "t_in -5");
  x[3] = 64;
  CHECK(rsq_conv1d_s8_run(op, x, 10, y, 1) == RSQ_ERR_PARAM, "input out of range");
  x[3] = 0;
  CHECK(rsq_conv1d_s8_run(op, x, 1, y, 1) == RSQ_OK, "t_in 1 with pads: %s", rsq_last_error());
  rsq_conv1d_s8_destroy(op);
  rsq_conv1d_params p5 = {4, 4, 5, 1, 0, 0};
  int32_t t_out = 0;
  CHECK(rsq_conv1d_out_length(&p5, 4, &t_out) == RSQ_ERR_SHAPE, "t_out <= 0");
  CHECK(rsq_conv1d_out_length(&p5, 5, &t_out) == RSQ_OK && t_out == 1, "t_out 1");
  CHECK(rsq_conv1d_out_length(NULL, 5, &t_out) == RSQ_ERR_NULL, "null p");
  rsq_conv1d_params p2 = {4, 4, 3, 2, 1, 1};
  CHECK(rsq_conv1d_out_length(&p2, 150, &t_out) == RSQ_OK && t_out == 75, "stride 2: %d", t_out);
  /* f32 */
  float wf[48] = {0};
  rsq_conv1d_f32_desc fd = {{4, 4, 3, 1, 1, 1}, RSQ_IMPL_AUTO, wf, NULL, -INFINITY, INFINITY};
  rsq_conv1d_f32 *fop = NULL;
  CHECK(rsq_conv1d_f32_create(&fd, &fop) == RSQ_OK, "f32 create");
  float xf[40] = {0}, yf[40];
  CHECK(rsq_conv1d_f32_run(fop, xf, 10, yf, 0) == RSQ_ERR_PARAM, "f32 threads 0");
  CHECK(rsq_conv1d_f32_run(fop, NULL, 10, yf, 1) == RSQ_ERR_NULL, "f32 x null");
  CHECK(rsq_conv1d_f32_run(fop, xf, 0, yf, 1) == RSQ_ERR_SHAPE, "f32 t_in 0");
  rsq_conv1d_f32_destroy(fop);
  fd.shape.k = 0;
  CHECK(rsq_conv1d_f32_create(&fd, &fop) == RSQ_ERR_PARAM, "f32 k 0");
  fd.shape.k = 3;
  fd.shape.cin = 0;
  CHECK(rsq_conv1d_f32_create(&fd, &fop) == RSQ_ERR_SHAPE, "f32 cin 0");
  fd.shape.cin = 4;
  fd.weight = NULL;
  CHECK(rsq_conv1d_f32_create(&fd, &fop) == RSQ_ERR_NULL, "f32 w null");
  CHECK(rsq_linear_f32_create(0, 3, wf, NULL, RSQ_IMPL_AUTO, &fop) == RSQ_ERR_SHAPE, "linear 0");
  CHECK(strcmp(rsq_status_string(RSQ_OK), "ok") == 0, "status string");
}

/* ---------------------------------------------------------------- depthwise */
/* independent direct formula (no padding copy, int64) for the reference */
static int32_t dw_direct(const int8_t *x, int32_t t_in, int32_t C, const int8_t *w, int32_t k,
                         int32_t pl, int32_t t, int32_t c, int32_t bias) {
  int64_t a = bias;
  for (int32_t j = 0; j < k; j++) {
    int32_t ti = t - pl + j;
    if (ti >= 0 && ti < t_in) a += (int64_t)x[(size_t)ti * C + c] * w[(size_t)c * k + j];
  }
  return (int32_t)a;
}

static void test_dwconv(void) {
  static const int32_t CH[] = {1, 3, 7, 8, 9, 16, 17, 33, 64, 70};
  static const int32_t KS[] = {1, 2, 3, 5, 11, 20, 21};
  rsq_impl impls[3] = {RSQ_IMPL_REF, RSQ_IMPL_NEON, RSQ_IMPL_AVX2};
  int fails = 0;
  for (int n = 0; n < 160 && fails < 5; n++) {
    const int32_t C = CH[rnd() % 10], k = KS[rnd() % 7], pl = rint_in(0, k - 1),
                  pr = rint_in(0, k - 1), pattern = n % 4, threads = 1 + n % 3;
    int32_t t_out = 1 + n % 13; /* below / equal / above the 4-row block */
    if (n % 11 == 0) t_out = 40 + (int32_t)(rnd() % 9);
    int32_t t_in = t_out + k - 1 - pl - pr;
    if (t_in < 1) continue;
    const int32_t lo = n % 3 == 0 ? -127 : n % 3 == 1 ? -63 : 0, hi = n % 3 == 1 ? 63 : 127;
    int8_t *x = malloc((size_t)t_in * C), *w = malloc((size_t)C * k);
    int8_t *y = malloc((size_t)t_out * C), *yr = malloc((size_t)t_out * C);
    int32_t *bias = malloc(C * 4), *M = malloc(C * 4), *sh = malloc(C * 4);
    for (int32_t i = 0; i < t_in * C; i++)
      x[i] = (int8_t)(pattern == 1 ? 127 : pattern == 2 ? ((i / C) & 1 ? -127 : 127) : rint_in(-127, 127));
    for (int32_t i = 0; i < C * k; i++)
      w[i] = (int8_t)(pattern == 1 ? 127 : pattern == 2 ? ((i % k) & 1 ? -127 : 127) : rint_in(-127, 127));
    for (int32_t c = 0; c < C; c++) {
      double m = 60.0 / (k * 127.0 * 127.0 / (pattern ? 1.0 : 8.0)) * (0.5 + (rnd() % 1000) / 1000.0);
      if (rnd() % 8 == 0) m *= 64;
      if (rsq_quantize_multiplier(m, &M[c], &sh[c]) != RSQ_OK) { M[c] = 1 << 30; sh[c] = 0; }
      bias[c] = rint_in(-20000, 20000);
    }
    rsq_dwconv1d_s8_ref(C, k, pl, pr, x, t_in, w, bias, M, sh, lo, hi, yr, NULL);
    for (int32_t t = 0; t < t_out && fails < 5; t++) /* reference vs the direct formula */
      for (int32_t c = 0; c < C; c++) {
        int32_t want = rsq_requantize(dw_direct(x, t_in, C, w, k, pl, t, c, bias[c]), M[c], sh[c], lo, hi);
        if (yr[(size_t)t * C + c] != want) {
          CHECK(0, "dw ref C=%d k=%d pad=%d/%d t_in=%d pattern=%d: t=%d c=%d got %d want %d", C, k,
                pl, pr, t_in, pattern, t, c, yr[(size_t)t * C + c], want);
          fails++;
          break;
        }
      }
    for (int ii = 0; ii < 3; ii++) {
      rsq_dwconv1d_s8_desc d = {C, k, pl, pr, impls[ii], w, bias, M, sh, lo, hi};
      rsq_dwconv1d_s8 *op = NULL;
      rsq_status st = rsq_dwconv1d_s8_create(&d, &op);
      if (st == RSQ_ERR_UNSUPPORTED && impls[ii] != RSQ_IMPL_REF) continue; /* not on this CPU */
      CHECK(st == RSQ_OK, "dw create C=%d k=%d: %s", C, k, rsq_last_error());
      if (st) { fails++; continue; }
      memset(y, 0x55, (size_t)t_out * C);
      st = rsq_dwconv1d_s8_run(op, x, t_in, y, threads);
      CHECK(st == RSQ_OK, "dw run: %s", rsq_last_error());
      g_compared++;
      for (int32_t i = 0; i < t_out * C; i++)
        if (y[i] != yr[i]) {
          CHECK(0, "dw impl=%d threads=%d channels=%d k=%d pad=%d/%d t_in=%d t_out=%d clamp=[%d,%d] "
                "pattern=%d: first difference at t=%d c=%d: got %d want %d", (int)impls[ii], threads,
                C, k, pl, pr, t_in, t_out, lo, hi, pattern, i / C, i % C, y[i], yr[i]);
          fails++;
          break;
        }
      rsq_dwconv1d_s8_destroy(op);
    }
    free(x); free(w); free(y); free(yr); free(bias); free(M); free(sh);
  }
  /* statuses */
  int8_t w[3 * 4] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, x[40] = {0}, y[40];
  int32_t M[4] = {1 << 30, 1 << 30, 1 << 30, 1 << 30}, sh[4] = {0, 0, 0, 0};
  const rsq_dwconv1d_s8_desc good = {4, 3, 1, 1, RSQ_IMPL_AUTO, w, NULL, M, sh, -127, 127};
  rsq_dwconv1d_s8_desc d;
  rsq_dwconv1d_s8 *op = NULL;
#define EXPECT_DW(mod, want)                                                               \
  do {                                                                                     \
    d = good;                                                                              \
    mod;                                                                                   \
    op = NULL;                                                                             \
    rsq_status st_ = rsq_dwconv1d_s8_create(&d, &op);                                     \
    CHECK(st_ == (want), "%s: got %d (%s) want %d", #mod, st_, rsq_last_error(), want);    \
    CHECK(st_ == RSQ_OK || (op == NULL && rsq_last_error()[0]), "no message/op set");      \
    rsq_dwconv1d_s8_destroy(op);                                                           \
  } while (0)
  EXPECT_DW((void)0, RSQ_OK);
  EXPECT_DW(d.channels = 0, RSQ_ERR_SHAPE);
  EXPECT_DW(d.k = 0, RSQ_ERR_PARAM);
  EXPECT_DW(d.k = 65, RSQ_ERR_PARAM);
  EXPECT_DW(d.pad_left = -1, RSQ_ERR_PARAM);
  EXPECT_DW(d.weight = NULL, RSQ_ERR_NULL);
  EXPECT_DW(d.multiplier = NULL, RSQ_ERR_NULL);
  EXPECT_DW(d.impl = (rsq_impl)9, RSQ_ERR_PARAM);
  EXPECT_DW(d.impl = RSQ_IMPL_VNNI, RSQ_ERR_UNSUPPORTED);
  EXPECT_DW((d.out_min = 3, d.out_max = 2), RSQ_ERR_PARAM);
  M[1] = 5;
  EXPECT_DW((void)0, RSQ_ERR_PARAM);
  M[1] = 1 << 30;
  sh[2] = -32;
  EXPECT_DW((void)0, RSQ_ERR_PARAM);
  sh[2] = 0;
  w[4] = -128;
  EXPECT_DW((void)0, RSQ_ERR_PARAM);
  w[4] = 5;
  int32_t big[4] = {0, INT32_MAX, 0, 0};
  EXPECT_DW(d.bias = big, RSQ_ERR_PARAM);
  CHECK(rsq_dwconv1d_s8_create(NULL, &op) == RSQ_ERR_NULL, "dw null desc");
  CHECK(rsq_dwconv1d_s8_create(&good, &op) == RSQ_OK, "%s", rsq_last_error());
  CHECK(rsq_dwconv1d_s8_run(op, x, 10, y, 0) == RSQ_ERR_PARAM, "dw threads 0");
  CHECK(rsq_dwconv1d_s8_run(op, NULL, 10, y, 1) == RSQ_ERR_NULL, "dw x null");
  CHECK(rsq_dwconv1d_s8_run(op, x, 0, y, 1) == RSQ_ERR_SHAPE, "dw t_in 0");
  x[2] = -128;
  CHECK(rsq_dwconv1d_s8_run(op, x, 10, y, 1) == RSQ_ERR_PARAM, "dw x -128");
  x[2] = 0;
  CHECK(rsq_dwconv1d_s8_run(op, x, 1, y, 1) == RSQ_OK, "dw t_in 1: %s", rsq_last_error());
  rsq_dwconv1d_s8_destroy(op);
  rsq_dwconv1d_s8_desc d5 = good;
  d5.k = 5;
  d5.pad_left = d5.pad_right = 0;
  int8_t w5[20] = {0};
  d5.weight = w5;
  CHECK(rsq_dwconv1d_s8_create(&d5, &op) == RSQ_OK, "dw k5");
  CHECK(rsq_dwconv1d_s8_run(op, x, 4, y, 1) == RSQ_ERR_SHAPE, "dw t_out 0");
  rsq_dwconv1d_s8_destroy(op);
}

/* ---------------------------------------------------------------- int32 output (run_acc) */
/* rsq_conv1d_s8_run_acc / rsq_dwconv1d_s8_run_acc on every implementation against the
 * reference accumulators plus bias. */
static void test_acc(void) {
  const rsq_impl impls[] = {RSQ_IMPL_REF, RSQ_IMPL_NEON, RSQ_IMPL_AVX2, RSQ_IMPL_VNNI, RSQ_IMPL_DOT, RSQ_IMPL_I8MM};
  for (int n = 0; n < 120; n++) {
    const int wino = n % 2;
    conv_case c = random_case(wino, n);
    int32_t t_out;
    if (rsq_conv1d_out_length(&c.p, c.t_in, &t_out) != RSQ_OK) continue;
    const size_t nx = (size_t)c.t_in * c.p.cin, nw = (size_t)c.p.cout * c.p.cin * c.p.k;
    const size_t ny = (size_t)t_out * c.p.cout;
    int8_t *x = malloc(nx), *w = malloc(nw);
    int32_t *bias = malloc(c.p.cout * 4), *M = malloc(c.p.cout * 4), *sh = malloc(c.p.cout * 4);
    int32_t *ref = malloc(ny * 4), *got = malloc(ny * 4);
    fill_case(&c, x, w, bias, M, sh);
    rsq_conv1d_s8_acc_ref(&c.p, x, c.t_in, w, ref);
    for (size_t i = 0; i < ny; i++) ref[i] += bias[i % c.p.cout];
    for (int ii = 0; ii < 6; ii++) {
      if (!have_impl(impls[ii])) continue;
      /* every third case without multipliers: an accumulator-only op (rsq.h) */
      const int acc_only = n % 3 == 2;
      rsq_conv1d_s8_desc d = {c.p, wino ? RSQ_ALGO_WINO23 : RSQ_ALGO_GEMM, impls[ii], c.in_absmax, w, bias,
                              acc_only ? NULL : M, acc_only ? NULL : sh, c.lo, c.hi};
      rsq_conv1d_s8 *op = NULL;
      rsq_status st = rsq_conv1d_s8_create(&d, &op);
      CHECK(st == RSQ_OK, "create: %s", rsq_last_error());
      if (st) continue;
      memset(got, 0x55, ny * 4);
      st = rsq_conv1d_s8_run_acc(op, x, c.t_in, got, 1 + n % 2);
      CHECK(st == RSQ_OK, "run_acc: %s", rsq_last_error());
      if (acc_only)
        CHECK(rsq_conv1d_s8_run(op, x, c.t_in, (int8_t *)got, 1) == RSQ_ERR_PARAM,
              "int8 output from an op without multipliers accepted");
      g_compared++;
      for (size_t i = 0; i < ny && st == RSQ_OK; i++)
        if (got[i] != ref[i]) {
          print_case("acc mismatch", &c, d.algo, impls[ii], 1);
          fprintf(stderr, "  first difference at t=%zu co=%zu: got %d want %d\n", i / c.p.cout,
                  i % c.p.cout, got[i], ref[i]);
          g_fail++;
          break;
        }
      rsq_conv1d_s8_destroy(op);
    }
    free(x); free(w); free(bias); free(M); free(sh); free(ref); free(got);
  }
  /* depthwise */
  for (int n = 0; n < 40; n++) {
    const int32_t C = 1 + (int32_t)(rnd() % 37), k = 1 + (int32_t)(rnd() % 11);
    const int32_t pl = rint_in(0, k - 1), pr = rint_in(0, k - 1);
    const int32_t t_in = rint_in(k > pl + pr ? k - pl - pr : 1, 40), t_out = t_in + pl + pr - k + 1;
    int8_t *x = malloc((size_t)t_in * C), *w = malloc((size_t)C * k);
    int32_t *bias = malloc(C * 4), *M = malloc(C * 4), *sh = malloc(C * 4);
    int32_t *ref = malloc((size_t)t_out * C * 4), *got = malloc((size_t)t_out * C * 4);
    for (int32_t i = 0; i < t_in * C; i++) x[i] = (int8_t)rint_in(-127, 127);
    for (int32_t i = 0; i < C * k; i++) w[i] = (int8_t)rint_in(-127, 127);
    for (int32_t i = 0; i < C; i++) { bias[i] = rint_in(-100000, 100000); M[i] = 1 << 30; sh[i] = 3; }
    for (int32_t t = 0; t < t_out; t++)
      for (int32_t ch = 0; ch < C; ch++) {
        int32_t a = bias[ch];
        for (int32_t j = 0; j < k; j++) {
          int32_t r = t - pl + j;
          if (r >= 0 && r < t_in) a += x[r * C + ch] * w[ch * k + j];
        }
        ref[t * C + ch] = a;
      }
    for (int ii = 0; ii < 3; ii++) { /* REF, NEON, AVX2: the depthwise op has no VNNI kernel */
      const int acc_only = n % 3 == 2; /* no multipliers: an accumulator-only op */
      rsq_dwconv1d_s8_desc d = {C, k, pl, pr, impls[ii], w, bias, acc_only ? NULL : M, acc_only ? NULL : sh,
                                -127, 127};
      rsq_dwconv1d_s8 *op = NULL;
      rsq_status st = rsq_dwconv1d_s8_create(&d, &op);
      if (st == RSQ_ERR_UNSUPPORTED && impls[ii] != RSQ_IMPL_REF) continue; /* not on this CPU */
      CHECK(st == RSQ_OK, "dw create: %s", rsq_last_error());
      if (st) continue;
      st = rsq_dwconv1d_s8_run_acc(op, x, t_in, got, 1 + n % 2);
      CHECK(st == RSQ_OK, "dw run_acc: %s", rsq_last_error());
      if (acc_only)
        CHECK(rsq_dwconv1d_s8_run(op, x, t_in, (int8_t *)got, 1) == RSQ_ERR_PARAM,
              "dw: int8 output from an op without multipliers accepted");
      g_compared++;
      for (int32_t i = 0; i < t_out * C && st == RSQ_OK; i++)
        if (got[i] != ref[i]) {
          fprintf(stderr, "  dw acc mismatch impl=%d C=%d k=%d pads=%d/%d t_in=%d at %d: %d vs %d\n",
                  (int)impls[ii], C, k, pl, pr, t_in, i, got[i], ref[i]);
          g_fail++;
          break;
        }
      rsq_dwconv1d_s8_destroy(op);
    }
    free(x); free(w); free(bias); free(M); free(sh); free(ref); free(got);
  }
}

/* ---------------------------------------------------------------- fused io (run_io) */
/* The executor's old float steps, written out here independently: quantize with roundf,
 * dequantize, ReLU, add, one float32 rounding each (volatile: no contraction). */
static int8_t io_quant1(float x, float inv, int32_t T) {
  volatile float u = x * inv;
  if (!(u == u)) return 0;
  float r = roundf(u);
  if (r > (float)T) r = (float)T;
  if (r < (float)-T) r = (float)-T;
  return (int8_t)(int32_t)r;
}

static float io_epi(int32_t acc, float deq, int relu, const float *add) {
  volatile float v = (float)acc * deq;
  if (relu) v = v < 0.0f ? 0.0f : v;
  if (add) v = *add + v;
  return v;
}

static float io_rand_float(void) {
  switch (rnd() % 8) { /* halfway points, zeros, huge values, NaN among ordinary ones */
    case 0: return (float)rint_in(-300, 300) * 0.5f;
    case 1: return 0.0f;
    case 2: return (rnd() % 2 ? 1.0f : -1.0f) * 1e30f;
    case 3: return rnd() % 4 ? 0.49999997f * (rnd() % 2 ? 1 : -1) : NAN;
    default: return ((float)(rnd() % 2000001) - 1000000.0f) * 1e-4f;
  }
}

static int io_same(const float *a, const float *b, size_t n, const char *what, int impl) {
  for (size_t i = 0; i < n; i++)
    if (memcmp(&a[i], &b[i], sizeof(float))) {
      fprintf(stderr, "  %s impl=%d at %zu: got %.9g want %.9g\n", what, impl, i, (double)a[i], (double)b[i]);
      return 0;
    }
  return 1;
}

static void test_io(void) {
  /* the quantizer against roundf, on the values where rounding rules differ */
  const float special[] = {0.5f, -0.5f, 1.5f, -1.5f, 2.5f, 0.49999997f, -0.49999997f, 62.5f, 63.5f,
                           -63.5f, 126.5f, 127.49f, 1e30f, -1e30f, INFINITY, -INFINITY, NAN, 0.0f, -0.0f};
  int8_t q[19];
  for (int T = 63; T <= 127; T += 64) {
    CHECK(rsq_quantize_f32(special, 19, 1.0f, T, q) == RSQ_OK, "quantize: %s", rsq_last_error());
    for (int i = 0; i < 19; i++)
      CHECK(q[i] == io_quant1(special[i], 1.0f, T), "quantize %g (T %d): %d vs %d", (double)special[i], T,
            q[i], io_quant1(special[i], 1.0f, T));
  }
  for (int i = 0; i < 100000; i++) {
    const float x = io_rand_float(), inv = 1.0f / (0.01f + (float)(rnd() % 1000) * 0.01f);
    int8_t g;
    rsq_quantize_f32(&x, 1, inv, 127, &g);
    if (g != io_quant1(x, inv, 127)) {
      CHECK(0, "quantize %.9g * %.9g: %d vs %d", (double)x, (double)inv, g, io_quant1(x, inv, 127));
      break;
    }
  }
  CHECK(rsq_quantize_f32(special, 1, 1.0f, 128, q) == RSQ_ERR_PARAM, "quantize absmax 128");
  CHECK(rsq_quantize_f32(special, 1, 0.0f, 127, q) == RSQ_ERR_PARAM, "quantize inv 0");

  const rsq_impl impls[] = {RSQ_IMPL_REF, RSQ_IMPL_NEON, RSQ_IMPL_AVX2, RSQ_IMPL_VNNI, RSQ_IMPL_DOT, RSQ_IMPL_I8MM};
  for (int n = 0; n < 48; n++) {
    const int wino = n % 2, dw = n % 6 == 5;
    conv_case c = random_case(wino && !dw, n);
    if (dw) { /* depthwise: channels in, channels out */
      c.p.cout = c.p.cin;
      c.p.stride = 1;
      c.in_absmax = 127;
    }
    int32_t t_out;
    if (rsq_conv1d_out_length(&c.p, c.t_in, &t_out) != RSQ_OK) continue;
    const int32_t C = c.p.cout;
    const size_t nx = (size_t)c.t_in * c.p.cin, ny = (size_t)t_out * C;
    const size_t nw = dw ? (size_t)C * c.p.k : (size_t)C * c.p.cin * c.p.k;
    float *xf = malloc(nx * 4), *deq = malloc(C * 4), *add = malloc(ny * 4), *want = malloc(ny * 4),
          *got = malloc(ny * 4);
    int8_t *xq = malloc(nx), *w = malloc((size_t)C * c.p.cin * c.p.k), *yq = malloc(ny), *yq2 = malloc(ny);
    int32_t *bias = malloc(C * 4), *M = malloc(C * 4), *sh = malloc(C * 4), *acc = malloc(ny * 4),
            *acc2 = malloc(ny * 4);
    fill_case(&c, xq, w, bias, M, sh);
    if (dw)
      for (size_t i = 0; i < nw; i++) w[i] = (int8_t)rint_in(-127, 127);
    const float s = 0.01f + (float)(rnd() % 100) * 0.003f, inv = 1.0f / s;
    const int32_t T = c.in_absmax;
    for (size_t i = 0; i < nx; i++) xf[i] = rnd() % 3 ? (float)rint_in(-T - 5, T + 5) * s * 0.37f : io_rand_float();
    for (size_t i = 0; i < nx; i++) xq[i] = io_quant1(xf[i], inv, T);
    for (int32_t i = 0; i < C; i++) deq[i] = (float)(rnd() % 1000 + 1) * 1.3e-6f;
    for (size_t i = 0; i < ny; i++) add[i] = io_rand_float();
    const int relu = rnd() % 2, with_add = rnd() % 2;
    for (int ii = 0; ii < 6; ii++) {
      if (!have_impl(impls[ii]) || (dw && (impls[ii] == RSQ_IMPL_VNNI || impls[ii] == RSQ_IMPL_DOT || impls[ii] == RSQ_IMPL_I8MM))) continue;
      rsq_conv1d_s8 *op = NULL;
      rsq_dwconv1d_s8 *dop = NULL;
      rsq_status st;
      if (dw) {
        rsq_dwconv1d_s8_desc d = {C, c.p.k, c.p.pad_left, c.p.pad_right, impls[ii], w, bias, M, sh, c.lo, c.hi};
        st = rsq_dwconv1d_s8_create(&d, &dop);
      } else {
        rsq_conv1d_s8_desc d = {c.p, wino ? RSQ_ALGO_WINO23 : RSQ_ALGO_GEMM, impls[ii], c.in_absmax, w, bias,
                                M, sh, c.lo, c.hi};
        st = rsq_conv1d_s8_create(&d, &op);
      }
      CHECK(st == RSQ_OK, "create: %s", rsq_last_error());
      if (st) continue;
#define IO_RUN(io) (dw ? rsq_dwconv1d_s8_run_io(dop, &(io), c.t_in, 1 + n % 2) \
                       : rsq_conv1d_s8_run_io(op, &(io), c.t_in, 1 + n % 2))
      /* the int8 paths give the references: int32 accumulators and requantized outputs */
      rsq_s8_io ia = {.x = xq, .acc = acc}, iy = {.x = xq, .y = yq};
      st = IO_RUN(ia);
      CHECK(st == RSQ_OK && IO_RUN(iy) == RSQ_OK, "int8 io: %s", rsq_last_error());
      for (size_t i = 0; i < ny; i++)
        want[i] = io_epi(acc[i], deq[i % C], relu, with_add ? &add[i] : NULL);
      /* float in: the same accumulators and int8 outputs */
      rsq_s8_io fa = {.xf = xf, .x_inv_scale = inv, .x_absmax = T, .acc = acc2};
      rsq_s8_io fy = {.xf = xf, .x_inv_scale = inv, .x_absmax = T, .y = yq2};
      CHECK(IO_RUN(fa) == RSQ_OK && IO_RUN(fy) == RSQ_OK, "float-in io: %s", rsq_last_error());
      CHECK(!memcmp(acc, acc2, ny * 4), "float-in acc differs (impl %d, dw %d)", (int)impls[ii], dw);
      CHECK(!memcmp(yq, yq2, ny), "float-in requantized output differs (impl %d, dw %d)", (int)impls[ii], dw);
      /* float out, from int8 and from float input */
      for (int from_f = 0; from_f < 2; from_f++) {
        rsq_s8_io fo = {.deq = deq, .add = with_add ? add : NULL, .relu = relu, .yf = got};
        if (from_f) fo.xf = xf, fo.x_inv_scale = inv, fo.x_absmax = T;
        else fo.x = xq;
        memset(got, 0x55, ny * 4);
        CHECK(IO_RUN(fo) == RSQ_OK, "float-out io: %s", rsq_last_error());
        g_compared++;
        if (!io_same(got, want, ny, from_f ? "float in/out" : "float out", (int)impls[ii])) g_fail++;
      }
      /* bad io */
      rsq_s8_io bad = {.x = xq, .xf = xf, .x_inv_scale = inv, .x_absmax = T, .y = yq2};
      CHECK(IO_RUN(bad) == RSQ_ERR_PARAM, "x and xf both given");
      bad = (rsq_s8_io){.x = xq, .y = yq2, .acc = acc2};
      CHECK(IO_RUN(bad) == RSQ_ERR_PARAM, "two outputs");
      bad = (rsq_s8_io){.x = xq, .yf = got};
      CHECK(IO_RUN(bad) == RSQ_ERR_PARAM, "yf without deq");
      bad = (rsq_s8_io){.x = xq};
      CHECK(IO_RUN(bad) == RSQ_ERR_NULL, "no output");
      bad = (rsq_s8_io){.xf = xf, .x_inv_scale = inv, .x_absmax = dw ? 128 : c.in_absmax + 1, .y = yq2};
      CHECK(IO_RUN(bad) == RSQ_ERR_PARAM, "x_absmax above in_absmax");
#undef IO_RUN
      rsq_conv1d_s8_destroy(op);
      rsq_dwconv1d_s8_destroy(dop);
    }
    free(xf); free(deq); free(add); free(want); free(got); free(xq); free(w); free(yq); free(yq2);
    free(bias); free(M); free(sh); free(acc); free(acc2);
  }
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "Usage: %s <group>\n", argv[0]);
    return 2;
  }
  const char *g = argv[1];
  if (!strcmp(g, "requant")) test_requant();
  else if (!strcmp(g, "wino_tile")) test_wino_tile();
  else if (!strcmp(g, "wino_ref")) test_wino_ref();
  else if (!strcmp(g, "gemm_neon") || !strcmp(g, "wino_neon")) {
    if (!have_impl(RSQ_IMPL_NEON)) { printf("NEON not available: skipped\n"); return 0; }
    test_conv_impl(RSQ_IMPL_NEON, !strcmp(g, "wino_neon"), 260);
  } else if (!strcmp(g, "avx2")) {
    if (!have_impl(RSQ_IMPL_AVX2)) { printf("AVX2 not available: skipped\n"); return 0; }
    test_conv_impl(RSQ_IMPL_AVX2, 0, 260);
    test_conv_impl(RSQ_IMPL_AVX2, 1, 260);
  } else if (!strcmp(g, "vnni")) {
    if (!have_impl(RSQ_IMPL_VNNI)) { printf("AVX-512 VNNI not available: skipped\n"); return 0; }
    test_conv_impl(RSQ_IMPL_VNNI, 0, 260);
    test_conv_impl(RSQ_IMPL_VNNI, 1, 260);
  } else if (!strcmp(g, "dot")) {
    if (!have_impl(RSQ_IMPL_DOT)) { printf("AArch64 dot product not available: skipped\n"); return 0; }
    test_conv_impl(RSQ_IMPL_DOT, 0, 260);
    test_conv_impl(RSQ_IMPL_DOT, 1, 260);
  } else if (!strcmp(g, "i8mm")) {
    if (!have_impl(RSQ_IMPL_I8MM)) { printf("AArch64 int8 matrix multiply not available: skipped\n"); return 0; }
    test_conv_impl(RSQ_IMPL_I8MM, 0, 260);
    test_conv_impl(RSQ_IMPL_I8MM, 1, 260);
  } else if (!strcmp(g, "epilogue")) {
    if (have_impl(RSQ_IMPL_NEON)) test_epilogue(RSQ_IMPL_NEON);
    if (have_impl(RSQ_IMPL_DOT)) test_epilogue(RSQ_IMPL_DOT);
    if (have_impl(RSQ_IMPL_I8MM)) test_epilogue(RSQ_IMPL_I8MM);
    if (have_impl(RSQ_IMPL_AVX2)) test_epilogue(RSQ_IMPL_AVX2);
    if (have_impl(RSQ_IMPL_VNNI)) test_epilogue(RSQ_IMPL_VNNI);
    test_epilogue(RSQ_IMPL_REF);
  } else if (!strcmp(g, "threads")) test_threads();
  else if (!strcmp(g, "f32")) test_f32();
  else if (!strcmp(g, "api")) test_api();
  else if (!strcmp(g, "dwconv")) test_dwconv();
  else if (!strcmp(g, "acc")) test_acc();
  else if (!strcmp(g, "io")) test_io();
  else {
    fprintf(stderr, "%s: unknown group %s\n", argv[0], g);
    return 2;
  }
  printf("%s: %s (%d failures, %d op comparisons)\n", g, g_fail ? "FAILED" : "passed", g_fail, g_compared);
  return g_fail ? 1 : 0;
}
