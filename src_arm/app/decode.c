/* decode.c - from the network's logits to a hypothesis, as rsqasr.bin.decode makes it: CTC
 * greedy search over the frames, then detokenization of the kept token ids with the model's
 * token list. Apart from the graph runner (exec.c), as WeNet keeps its search and
 * post-processing apart from the model. */
#include <stdlib.h>
#include <string.h>

#include "rsqm.h"

int32_t rsqm_ctc_greedy_append(const float *logits, int32_t t_out, int32_t vocab, int32_t *prev, int32_t *ids) {
  int32_t n = 0;
  for (int32_t t = 0; t < t_out; t++) {
    const float *row = logits + (size_t)t * vocab;
    int32_t best = 0;
    for (int32_t c = 1; c < vocab; c++)
      if (row[c] > row[best]) best = c;
    if (best != *prev && best != 0) ids[n++] = best;
    *prev = best;
  }
  return n;
}

int rsqm_ctc_greedy(const float *logits, int32_t t_out, int32_t vocab, int32_t **ids, int32_t *n) {
  int32_t prev = -1;
  *n = 0;
  if (!(*ids = malloc(t_out > 0 ? (size_t)t_out * sizeof(int32_t) : 1))) return RSQM_ERROR;
  *n = rsqm_ctc_greedy_append(logits, t_out, vocab, &prev, *ids);
  return 0;
}

/* sentencepiece's word marker U+2581 (E2 96 81) -> ' ', then the leading spaces dropped; in
 * place, s[len] = 0 */
static void bpe_spaces(char *s, size_t len) {
  size_t w = 0;
  for (size_t r = 0; r < len;) {
    if (r + 2 < len && (unsigned char)s[r] == 0xE2 && (unsigned char)s[r + 1] == 0x96 &&
        (unsigned char)s[r + 2] == 0x81) {
      s[w++] = ' ';
      r += 3;
    } else {
      s[w++] = s[r++];
    }
  }
  s[w] = 0;
  size_t lead = 0;
  while (s[lead] == ' ') lead++;
  memmove(s, s + lead, w - lead + 1);
}

int rsqm_detokenize(const rsqm_model *m, const int32_t *ids, int32_t n, char **text) {
  size_t cap = 64, len = 0;
  char *s = malloc(cap);
  if (!s) return RSQM_ERROR;
  for (int32_t i = 0; i < n; i++) {
    const char *tok = m->tokens[ids[i]];
    if (m->token_type == RSQM_TOK_CHAR && !strcmp(tok, "<space>")) tok = " ";
    const size_t tl = strlen(tok);
    if (len + tl + 1 > cap) {
      while (len + tl + 1 > cap) cap *= 2;
      char *ns = realloc(s, cap);
      if (!ns) {
        free(s);
        return RSQM_ERROR;
      }
      s = ns;
    }
    memcpy(s + len, tok, tl);
    len += tl;
  }
  s[len] = 0;
  if (m->token_type == RSQM_TOK_BPE) bpe_spaces(s, len);
  *text = s;
  return 0;
}

int rsqm_greedy_text(const rsqm_model *m, const float *logits, int32_t t_out, char **text) {
  int32_t *ids, n;
  if (rsqm_ctc_greedy(logits, t_out, m->vocab, &ids, &n)) return RSQM_ERROR;
  const int rc = rsqm_detokenize(m, ids, n, text);
  free(ids);
  return rc;
}
