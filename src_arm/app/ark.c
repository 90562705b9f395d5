/* ark.c - Kaldi feature input: feats.scp ("key path[:offset]") and binary ark matrices as
 * Kaldi / kaldiio write them: "\0B" then "FM " (float32) or "DM " (float64, converted), then
 * "\4" int32 rows, "\4" int32 cols, then rows * cols little-endian values. Compressed matrices
 * ("CM", "CM2", "CM3") and text arks are rejected with a message. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "rsqm.h"

#define MAX_ROWS 10000000
#define MAX_COLS 65536
#define MAX_VALUES ((int64_t)1 << 28) /* 1 GiB of float32 */


static int read_exact(FILE *f, void *buf, size_t n) { return fread(buf, 1, n, f) == n; }

static int read_dim(FILE *f, int32_t *v, const char *what, char *err, size_t errlen) {
  uint8_t b[5];
  if (!read_exact(f, b, 5)) {
    rsqm_seterr(err, errlen, "truncated matrix header (%s)", what);
    return 1;
  }
  if (b[0] != 4) {
    rsqm_seterr(err, errlen, "bad matrix header: %s size marker %d (expected 4)", what, b[0]);
    return 1;
  }
  memcpy(v, b + 1, 4);
  return 0;
}

int rsqm_ark_read_matrix(FILE *f, float **data, int32_t *rows, int32_t *cols, char *err, size_t errlen) {
  *data = NULL;
  *rows = *cols = 0;
  uint8_t h[5];
  if (!read_exact(f, h, 2)) {
    rsqm_seterr(err, errlen, "truncated: no matrix at this position");
    return 1;
  }
  if (h[0] != 0 || h[1] != 'B') {
    rsqm_seterr(err, errlen, "not a binary Kaldi object (header bytes 0x%02x 0x%02x, expected \\0B; text arks "
                "are not supported)", h[0], h[1]);
    return 1;
  }
  if (!read_exact(f, h, 3)) {
    rsqm_seterr(err, errlen, "truncated matrix type");
    return 1;
  }
  int dbl;
  if (!memcmp(h, "FM ", 3)) dbl = 0;
  else if (!memcmp(h, "DM ", 3)) dbl = 1;
  else if (h[0] == 'C' && h[1] == 'M') {
    rsqm_seterr(err, errlen, "compressed Kaldi matrix (CM): not supported, write features uncompressed");
    return 1;
  } else {
    rsqm_seterr(err, errlen, "bad matrix type '%c%c%c' (expected FM or DM)", h[0] >= 32 && h[0] < 127 ? h[0] : '?',
                h[1] >= 32 && h[1] < 127 ? h[1] : '?', h[2] >= 32 && h[2] < 127 ? h[2] : '?');
    return 1;
  }
  int32_t r, c;
  if (read_dim(f, &r, "rows", err, errlen) || read_dim(f, &c, "cols", err, errlen)) return 1;
  if (r < 0 || r > MAX_ROWS || c < 0 || c > MAX_COLS || (int64_t)r * c > MAX_VALUES || (r > 0 && c == 0)) {
    rsqm_seterr(err, errlen, "bad matrix size %d x %d", r, c);
    return 1;
  }
  const size_t n = (size_t)r * (size_t)c;
  *rows = r;
  *cols = c;
  if (n == 0) return 0;
  float *out = malloc(n * sizeof(float));
  if (!out) {
    rsqm_seterr(err, errlen, "out of memory for a %d x %d matrix", r, c);
    return 1;
  }
  if (!dbl) {
    if (!read_exact(f, out, n * sizeof(float))) {
      free(out);
      rsqm_seterr(err, errlen, "truncated matrix data (%d x %d float32)", r, c);
      return 1;
    }
  } else {
    double buf[256];
    for (size_t i = 0; i < n;) {
      size_t m = n - i < 256 ? n - i : 256;
      if (!read_exact(f, buf, m * sizeof(double))) {
        free(out);
        rsqm_seterr(err, errlen, "truncated matrix data (%d x %d float64)", r, c);
        return 1;
      }
      for (size_t j = 0; j < m; j++) out[i + j] = (float)buf[j];
      i += m;
    }
  }
  *data = out;
  return 0;
}

int rsqm_ark_next(FILE *f, char **key, float **data, int32_t *rows, int32_t *cols, char *err, size_t errlen) {
  *key = NULL;
  *data = NULL;
  size_t cap = 64, len = 0;
  int ch;
  while ((ch = fgetc(f)) == '\n' || ch == '\r' || ch == '\t') {
  }
  if (ch == EOF) return 1;
  char *k = malloc(cap);
  if (!k) {
    rsqm_seterr(err, errlen, "out of memory");
    return -1;
  }
  while (ch != ' ') {
    if (ch == EOF || ch == 0 || ch == '\n' || len >= 4096) {
      free(k);
      rsqm_seterr(err, errlen, ch == EOF ? "truncated record: key without data" : "bad ark record: no space after "
                  "the key (or a key longer than 4096 bytes)");
      return -1;
    }
    if (len + 1 >= cap) {
      char *nk = realloc(k, cap *= 2);
      if (!nk) {
        free(k);
        rsqm_seterr(err, errlen, "out of memory");
        return -1;
      }
      k = nk;
    }
    k[len++] = (char)ch;
    ch = fgetc(f);
  }
  k[len] = 0;
  if (len == 0) {
    free(k);
    rsqm_seterr(err, errlen, "bad ark record: empty key");
    return -1;
  }
  if (rsqm_ark_read_matrix(f, data, rows, cols, err, errlen)) {
    char msg[RSQM_ERRLEN];
    snprintf(msg, sizeof msg, "'%.200s': %s", k, err ? err : "");
    rsqm_seterr(err, errlen, "%s", msg);
    free(k);
    return -1;
  }
  *key = k;
  return 0;
}

void rsqm_scp_free(rsqm_scp_entry *e, int32_t n) {
  if (!e) return;
  for (int32_t i = 0; i < n; i++) {
    free(e[i].key);
    free(e[i].path);
  }
  free(e);
}

int rsqm_scp_read(const char *scp, rsqm_scp_entry **entries, int32_t *n, char *err, size_t errlen) {
  *entries = NULL;
  *n = 0;
  FILE *f = fopen(scp, "r");
  if (!f) {
    rsqm_seterr(err, errlen, "cannot open: %s", strerror(errno));
    return 1;
  }
  int32_t cap = 0, cnt = 0, lineno = 0;
  rsqm_scp_entry *e = NULL;
  char *line = NULL;
  size_t lcap = 0;
  ssize_t got;
  int rc = 0;
  while ((got = getline(&line, &lcap, f)) >= 0) {
    lineno++;
    while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r' || line[got - 1] == ' ' ||
                       line[got - 1] == '\t'))
      line[--got] = 0;
    if (got == 0) continue;
    if ((size_t)got != strlen(line)) {
      if (lineno == 1)
        rsqm_seterr(err, errlen, "line 1: binary data (NUL byte): a Kaldi ark, not an scp? features are read as an "
                    "ark only when the file name ends in .ark");
      else
        rsqm_seterr(err, errlen, "line %d: NUL byte", lineno);
      rc = 1;
      break;
    }
    /* key and path are separated by whitespace (spaces or tabs), as in Kaldi */
    char *sp = line + strcspn(line, " \t");
    if (!*sp || sp == line) {
      rsqm_seterr(err, errlen, "line %d: expected 'key path[:offset]'", lineno);
      rc = 1;
      break;
    }
    *sp = 0;
    char *path = sp + 1;
    while (*path == ' ' || *path == '\t') path++;
    if (!*path || strpbrk(path, " \t") || path[strlen(path) - 1] == '|' || strchr(path, '[')) {
      rsqm_seterr(err, errlen, "line %d: '%s': only 'path' or 'path:offset' entries are supported (no pipes, "
                  "ranges or spaces)", lineno, line);
      rc = 1;
      break;
    }
    int64_t off = -1;
    char *colon = strrchr(path, ':');
    if (colon && colon[1]) {
      char *end;
      errno = 0;
      long long v = strtoll(colon + 1, &end, 10);
      if (*end == 0 && errno == 0 && v >= 0 && colon[1] >= '0' && colon[1] <= '9') {
        off = v;
        *colon = 0;
      }
    }
    if (cnt == cap) {
      int32_t nc = cap ? cap * 2 : 256;
      rsqm_scp_entry *ne = nc > cap ? realloc(e, (size_t)nc * sizeof *e) : NULL;
      if (!ne) {
        rsqm_seterr(err, errlen, "out of memory");
        rc = 1;
        break;
      }
      e = ne;
      cap = nc;
    }
    e[cnt].key = strdup(line);
    e[cnt].path = strdup(path);
    e[cnt].offset = off;
    e[cnt].line = lineno;
    cnt++;
    if (!e[cnt - 1].key || !e[cnt - 1].path) {
      rsqm_seterr(err, errlen, "out of memory");
      rc = 1;
      break;
    }
  }
  if (!rc && ferror(f)) {
    rsqm_seterr(err, errlen, "read error");
    rc = 1;
  }
  free(line);
  fclose(f);
  if (rc) {
    rsqm_scp_free(e, cnt);
    return 1;
  }
  *entries = e;
  *n = cnt;
  return 0;
}
