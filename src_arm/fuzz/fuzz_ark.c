/* fuzz_ark.c - libFuzzer target: the Kaldi binary ark reader (rsqm_ark_next, and through it
 * rsqm_ark_read_matrix) on an in-memory stream. Build and run: src_arm/fuzz/fuzz.sh. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "rsqm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  FILE *f = fmemopen((void *)data, size, "rb");
  if (!f) return 0;
  char err[RSQM_ERRLEN];
  for (int n = 0; n < 64; n++) {
    char *key = NULL;
    float *m = NULL;
    int32_t rows, cols;
    int r = rsqm_ark_next(f, &key, &m, &rows, &cols, err, sizeof err);
    free(key);
    free(m);
    if (r) break;
  }
  fclose(f);
  return 0;
}
