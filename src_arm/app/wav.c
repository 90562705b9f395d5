/* wav.c - audio input: RIFF/WAVE files holding 16-bit PCM mono at the model's sample rate, the
 * audio AISHELL-1 and the mini corpus ship (and what Kaldi's wav.scp points at). Anything else
 * is refused with one message: not RIFF/WAVE, a compressed or float format, another sample
 * width, more than one channel, another sample rate, no fmt or data chunk, or a data chunk that
 * the file does not hold in full (truncated). The chunks are walked as the RIFF spec lays them
 * out (each padded to an even size); unknown chunks (LIST, fact, ...) are skipped. A RIFF size
 * field of 0 or 0xffffffff (writers that stream) is tolerated, as Kaldi's reader does. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rsqm.h"

#define WAV_MAX_SAMPLES ((int64_t)1 << 31) /* 37 hours at 16 kHz */

static uint32_t le32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

/* fmt chunk: PCM (1), or WAVE_FORMAT_EXTENSIBLE (0xfffe) whose sub-format GUID starts with 1 */
static int check_fmt(const uint8_t *c, uint32_t size, int32_t rate, char *err, size_t errlen) {
  if (size < 16) {
    rsqm_seterr(err, errlen, "fmt chunk of %u bytes (at least 16 expected)", size);
    return 1;
  }
  uint16_t tag = le16(c);
  const uint16_t channels = le16(c + 2), bits = le16(c + 14);
  const uint32_t fs = le32(c + 4);
  if (tag == 0xfffe) {
    if (size < 40) {
      rsqm_seterr(err, errlen, "WAVE_FORMAT_EXTENSIBLE fmt chunk of %u bytes (40 expected)", size);
      return 1;
    }
    tag = le16(c + 24);
  }
  if (tag != 1) {
    rsqm_seterr(err, errlen, "audio format %u is not PCM (1): compressed or float audio is not supported", tag);
    return 1;
  }
  if (bits != 16) {
    rsqm_seterr(err, errlen, "%u-bit samples: only 16-bit PCM is supported", bits);
    return 1;
  }
  if (channels != 1) {
    rsqm_seterr(err, errlen, "%u channels: only mono is supported", channels);
    return 1;
  }
  if ((int64_t)fs != rate) {
    rsqm_seterr(err, errlen, "sample rate %u Hz; the model takes %d Hz (resample first, e.g. sox in.wav -r %d out.wav)",
                fs, rate, rate);
    return 1;
  }
  return 0;
}

int rsqm_wav_read(const char *path, int32_t rate, int16_t **samples, int64_t *n, char *err, size_t errlen) {
  *samples = NULL;
  *n = 0;
  FILE *f = fopen(path, "rb");
  if (!f) {
    rsqm_seterr(err, errlen, "cannot open: %s", strerror(errno));
    return 1;
  }
  uint8_t h[12];
  int rc = 1, have_fmt = 0;
  if (fread(h, 1, 12, f) != 12 || memcmp(h, "RIFF", 4) || memcmp(h + 8, "WAVE", 4)) {
    rsqm_seterr(err, errlen, "not a RIFF/WAVE file");
    goto done;
  }
  for (;;) {
    uint8_t ch[8];
    if (fread(ch, 1, 8, f) != 8) {
      rsqm_seterr(err, errlen, have_fmt ? "no data chunk (truncated?)" : "no fmt chunk (truncated?)");
      goto done;
    }
    const uint32_t size = le32(ch + 4);
    if (!memcmp(ch, "fmt ", 4)) {
      uint8_t c[64];
      const uint32_t take = size < sizeof c ? size : (uint32_t)sizeof c;
      if (fread(c, 1, take, f) != take) {
        rsqm_seterr(err, errlen, "truncated fmt chunk");
        goto done;
      }
      if (check_fmt(c, size, rate, err, errlen)) goto done;
      if (size > take && fseeko(f, (off_t)(size - take), SEEK_CUR)) goto truncated;
      if ((size & 1) && fseeko(f, 1, SEEK_CUR)) goto truncated;
      have_fmt = 1;
    } else if (!memcmp(ch, "data", 4)) {
      if (!have_fmt) {
        rsqm_seterr(err, errlen, "data chunk before the fmt chunk");
        goto done;
      }
      if (size & 1) {
        rsqm_seterr(err, errlen, "data chunk of %u bytes: not a whole number of 16-bit samples", size);
        goto done;
      }
      const int64_t count = size / 2;
      if (count > WAV_MAX_SAMPLES) {
        rsqm_seterr(err, errlen, "data chunk of %u bytes is too long", size);
        goto done;
      }
      int16_t *x = malloc(count ? (size_t)count * sizeof(int16_t) : 1);
      if (!x) {
        rsqm_seterr(err, errlen, "out of memory for %lld samples", (long long)count);
        goto done;
      }
      uint8_t *raw = (uint8_t *)x;
      const size_t got = fread(raw, 1, size, f);
      if (got != size) {
        free(x);
        rsqm_seterr(err, errlen, "truncated: the data chunk says %u bytes, the file holds %zu", size, got);
        goto done;
      }
      for (int64_t i = 0; i < count; i++) x[i] = (int16_t)le16(raw + 2 * i); /* in place: byte order */
      *samples = x;
      *n = count;
      rc = 0;
      goto done;
    } else {
      const int64_t skip = (int64_t)size + (size & 1);
      if (fseeko(f, (off_t)skip, SEEK_CUR)) goto truncated;
    }
  }
truncated:
  rsqm_seterr(err, errlen, "truncated chunk");
done:
  fclose(f);
  return rc;
}
