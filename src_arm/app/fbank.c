/* fbank.c - Kaldi's log-mel filterbank (compute-fbank-feats, use_energy false), computed from
 * 16-bit samples with the options the model file carries (FBNK, src_arm/FORMAT.md), so that
 * rsq-decode takes audio and nothing can disagree with the features the model was trained on
 * (stage 2: kaldi-native-fbank through rsqasr/features/fbank.py).
 *
 * Per frame of frame_length samples every frame_shift (snip_edges: only whole frames, the first
 * at sample 0): the samples as floats (int16 scale); minus their mean (remove_dc_offset);
 * pre-emphasis x[i] -= c x[i-1] from the last sample down, x[0] -= c x[0]; times the Povey
 * window (0.5 - 0.5 cos(2 pi i / (L - 1)))^0.85; zero-padded to fft_size; |FFT|^2 for bins
 * 0..fft_size/2 - 1 (use_power; Kaldi's mel banks never reach the Nyquist bin); the triangular
 * mel filters between low_freq and high_freq on the 1127 ln(1 + f / 700) scale with Kaldi's
 * bin edges and weights (computed in float, as Kaldi does); log(max(energy, log_floor)).
 * Dither is 0 (the recipe's setting, so features are deterministic); the loader refuses others.
 *
 * Precision is Kaldi's: float (BaseFloat) everywhere except the FFT, which takes the float frame
 * in double and returns float, with the same order of float operations (the mean as a running
 * float sum; pre-emphasis, window, power and the mel sums one float operation at a time; no fused
 * multiply-adds, CMakeLists.txt). The low mel bins of quiet frames are tiny differences of large
 * numbers there, so computing them more exactly would move them away from the features the
 * model was trained on (by up to 4e-3 in log energy on the mini corpus); this way they agree
 * with kaldi-native-fbank's to the FFT's last bits (test_wav_input.py measures it). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rsqm.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif /* M_PI */

struct rsqm_fbank {
  rsqm_fbank_opts o;
  float *window;     /* [frame_length] */
  float *frame;      /* work [frame_length] */
  int32_t *first;    /* [num_bins]: first FFT bin of each mel filter */
  int32_t *len;      /* [num_bins]: its number of bins */
  float *weights;    /* [num_bins][fft_size / 2] (only first..first+len-1 used) */
  double *cs, *sn;   /* twiddles [fft_size / 2] */
  int32_t *rev;      /* bit reversal [fft_size] */
  double *re, *im;   /* work [fft_size] */
  float *power;      /* [fft_size / 2] */
};

static float mel_scale(float f) { return 1127.0f * logf(1.0f + f / 700.0f); }

int rsqm_fbank_opts_check(const rsqm_fbank_opts *o, char *err, size_t errlen) {
  const uint32_t want = RSQM_FBANK_REMOVE_DC | RSQM_FBANK_SNIP_EDGES | RSQM_FBANK_POWER | RSQM_FBANK_LOG;
  const int32_t n = o->fft_size;
  if (o->sample_rate < 1000 || o->sample_rate > 384000 || o->num_bins < 1 || o->num_bins > 1024 ||
      o->frame_length < 2 || o->frame_shift < 1 || o->frame_length > 65536 || o->frame_shift > 65536) {
    rsqm_seterr(err, errlen, "FBNK: sample rate %d, %d bins, frame length %d, shift %d: out of range", o->sample_rate,
                o->num_bins, o->frame_length, o->frame_shift);
    return 1;
  }
  if (n < o->frame_length || n > 65536 || (n & (n - 1))) {
    rsqm_seterr(err, errlen, "FBNK: FFT size %d is not a power of two >= the frame length %d", n, o->frame_length);
    return 1;
  }
  if (o->window != RSQM_WINDOW_POVEY || o->flags != want) {
    rsqm_seterr(err, errlen, "FBNK: window %d, flags 0x%x: only the Povey window (1) with DC removal, snip_edges, "
                "power spectrum and log (flags 0x%x) are implemented", o->window, o->flags, want);
    return 1;
  }
  if (!(o->dither == 0.0f)) {
    rsqm_seterr(err, errlen, "FBNK: dither %g: only 0 (deterministic features) is implemented", (double)o->dither);
    return 1;
  }
  if (!(o->preemph >= 0.0f && o->preemph <= 1.0f) || !(o->low_freq >= 0.0f) || !(o->high_freq > o->low_freq) ||
      !(o->high_freq <= 0.5f * (float)o->sample_rate) || !(o->log_floor > 0.0f) || !isfinite(o->log_floor)) {
    rsqm_seterr(err, errlen, "FBNK: pre-emphasis %g, mel range [%g, %g] Hz at %d Hz, log floor %g: out of range",
                (double)o->preemph, (double)o->low_freq, (double)o->high_freq, o->sample_rate, (double)o->log_floor);
    return 1;
  }
  return 0;
}

void rsqm_fbank_free(rsqm_fbank *fb) {
  if (!fb) return;
  free(fb->window);
  free(fb->frame);
  free(fb->first);
  free(fb->len);
  free(fb->weights);
  free(fb->cs);
  free(fb->sn);
  free(fb->rev);
  free(fb->re);
  free(fb->im);
  free(fb->power);
  free(fb);
}

int rsqm_fbank_create(const rsqm_fbank_opts *o, rsqm_fbank **out, char *err, size_t errlen) {
  *out = NULL;
  if (rsqm_fbank_opts_check(o, err, errlen)) return 1;
  const int32_t n = o->fft_size, half = n / 2, L = o->frame_length, nb = o->num_bins;
  rsqm_fbank *fb = calloc(1, sizeof *fb);
  if (!fb) goto oom;
  fb->o = *o;
  fb->window = malloc((size_t)L * sizeof(float));
  fb->frame = malloc((size_t)L * sizeof(float));
  fb->first = malloc((size_t)nb * sizeof(int32_t));
  fb->len = malloc((size_t)nb * sizeof(int32_t));
  fb->weights = calloc((size_t)nb * half, sizeof(float));
  fb->cs = malloc((size_t)half * sizeof(double));
  fb->sn = malloc((size_t)half * sizeof(double));
  fb->rev = malloc((size_t)n * sizeof(int32_t));
  fb->re = malloc((size_t)n * sizeof(double));
  fb->im = malloc((size_t)n * sizeof(double));
  fb->power = malloc((size_t)half * sizeof(float));
  if (!fb->window || !fb->frame || !fb->first || !fb->len || !fb->weights || !fb->cs || !fb->sn || !fb->rev || !fb->re ||
      !fb->im || !fb->power)
    goto oom;
  const double a = 2.0 * M_PI / (double)(L - 1);
  for (int32_t i = 0; i < L; i++) fb->window[i] = (float)pow(0.5 - 0.5 * cos(a * (double)i), 0.85);
  for (int32_t i = 0; i < half; i++) {
    fb->cs[i] = cos(2.0 * M_PI * (double)i / (double)n);
    fb->sn[i] = -sin(2.0 * M_PI * (double)i / (double)n);
  }
  int32_t bits = 0;
  while ((1 << bits) < n) bits++;
  for (int32_t i = 0; i < n; i++) {
    int32_t r = 0;
    for (int32_t b = 0; b < bits; b++) r |= ((i >> b) & 1) << (bits - 1 - b);
    fb->rev[i] = r;
  }
  /* Kaldi's MelBanks, in float as Kaldi computes them */
  const float bin_width = (float)o->sample_rate / (float)n;
  const float mel_lo = mel_scale(o->low_freq), mel_hi = mel_scale(o->high_freq);
  const float delta = (mel_hi - mel_lo) / (float)(nb + 1);
  for (int32_t b = 0; b < nb; b++) {
    const float left = mel_lo + (float)b * delta, center = mel_lo + (float)(b + 1) * delta,
                right = mel_lo + (float)(b + 2) * delta;
    int32_t first = -1, last = -1;
    float *w = fb->weights + (size_t)b * half;
    for (int32_t i = 0; i < half; i++) {
      const float mel = mel_scale(bin_width * (float)i);
      if (mel > left && mel < right) {
        w[i] = mel <= center ? (mel - left) / (center - left) : (right - mel) / (right - center);
        if (first < 0) first = i;
        last = i;
      }
    }
    fb->first[b] = first < 0 ? 0 : first;
    fb->len[b] = first < 0 ? 0 : last - first + 1;
  }
  *out = fb;
  return 0;
oom:
  rsqm_fbank_free(fb);
  rsqm_seterr(err, errlen, "out of memory");
  return 1;
}

/* in-place radix-2 decimation-in-time FFT of re/im (size n, bit-reversed input order made here) */
static void fft(rsqm_fbank *fb) {
  const int32_t n = fb->o.fft_size;
  double *re = fb->re, *im = fb->im;
  for (int32_t i = 0; i < n; i++) {
    const int32_t j = fb->rev[i];
    if (j > i) {
      double t = re[i];
      re[i] = re[j];
      re[j] = t;
      t = im[i];
      im[i] = im[j];
      im[j] = t;
    }
  }
  for (int32_t len = 2; len <= n; len <<= 1) {
    const int32_t h = len / 2, step = n / len;
    for (int32_t s = 0; s < n; s += len)
      for (int32_t k = 0; k < h; k++) {
        const double wr = fb->cs[k * step], wi = fb->sn[k * step];
        const int32_t p = s + k, q = p + h;
        const double xr = re[q] * wr - im[q] * wi, xi = re[q] * wi + im[q] * wr;
        re[q] = re[p] - xr;
        im[q] = im[p] - xi;
        re[p] += xr;
        im[p] += xi;
      }
  }
}

int32_t rsqm_fbank_num_frames(const rsqm_fbank *fb, int64_t n_samples) {
  if (n_samples < fb->o.frame_length) return 0;
  const int64_t f = 1 + (n_samples - fb->o.frame_length) / fb->o.frame_shift;
  return f > INT32_MAX ? INT32_MAX : (int32_t)f;
}

int rsqm_fbank_compute(rsqm_fbank *fb, const int16_t *x, int64_t n_samples, float **feats, int32_t *rows,
                       char *err, size_t errlen) {
  const rsqm_fbank_opts *o = &fb->o;
  const int32_t T = rsqm_fbank_num_frames(fb, n_samples), L = o->frame_length, n = o->fft_size, half = n / 2;
  *feats = NULL;
  *rows = T;
  if (T == 0) return 0;
  float *y = malloc((size_t)T * (size_t)o->num_bins * sizeof(float));
  if (!y) {
    rsqm_seterr(err, errlen, "out of memory for %d frames", T);
    return 1;
  }
  const float c = o->preemph;
  float *d = fb->frame;
  for (int32_t t = 0; t < T; t++) {
    const int16_t *s = x + (int64_t)t * o->frame_shift;
    float sum = 0.0f;
    for (int32_t i = 0; i < L; i++) {
      d[i] = (float)s[i];
      sum += d[i];
    }
    const float mean = sum / (float)L;
    for (int32_t i = 0; i < L; i++) d[i] -= mean;
    for (int32_t i = L - 1; i > 0; i--) d[i] -= c * d[i - 1];
    d[0] -= c * d[0];
    for (int32_t i = 0; i < L; i++) d[i] *= fb->window[i];
    double *re = fb->re, *im = fb->im;
    for (int32_t i = 0; i < L; i++) re[i] = (double)d[i];
    for (int32_t i = L; i < n; i++) re[i] = 0.0;
    memset(im, 0, (size_t)n * sizeof(double));
    fft(fb);
    for (int32_t i = 0; i < half; i++) {
      const float r = (float)re[i], m = (float)im[i];
      fb->power[i] = r * r + m * m;
    }
    float *out = y + (size_t)t * o->num_bins;
    for (int32_t b = 0; b < o->num_bins; b++) {
      const float *w = fb->weights + (size_t)b * half;
      float e = 0.0f;
      for (int32_t i = fb->first[b]; i < fb->first[b] + fb->len[b]; i++) e += w[i] * fb->power[i];
      out[b] = logf(e > o->log_floor ? e : o->log_floor);
    }
  }
  *feats = y;
  return 0;
}
