/* fuzz_model.c - libFuzzer target: the model loader (rsqm_load_memory), kernel op creation
 * (rsqm_prepare) and, for inputs that load, one run of the graph executor on a few frames.
 * Built with -DRSQM_FUZZING (the loader then ignores the two CRC-32s, or every mutation would
 * stop at the checksum). Build and run: src_arm/fuzz/fuzz.sh (see src_arm/README.md). */
#include <stdint.h>
#include <stdlib.h>

#include "rsqm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char err[RSQM_ERRLEN];
  rsqm_model *m = NULL;
  if (rsqm_load_memory(data, size, &m, err, sizeof err)) return 0;
  if (!rsqm_prepare(m, err, sizeof err) && m->dim <= 512) {
    const int32_t frames[2] = {1, 9};
    for (int r = 0; r < 2; r++) {
      float *x = malloc((size_t)frames[r] * m->dim * sizeof(float));
      if (!x) break;
      for (int32_t i = 0; i < frames[r] * m->dim; i++) x[i] = (float)((i * 37) % 23) * 0.25f - 2.5f;
      float *logits = NULL;
      int32_t t_out = 0;
      if (rsqm_run(m, x, frames[r], 1, &logits, &t_out, err, sizeof err) == 0) {
        char *text = NULL;
        if (!rsqm_greedy_text(m, logits, t_out, &text)) free(text);
      }
      free(logits);
      free(x);
    }
  }
  rsqm_free(m);
  return 0;
}
