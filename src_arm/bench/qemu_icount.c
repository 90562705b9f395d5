/* qemu_icount.c - count executed guest instructions from a qemu-user log written with
 * `-d in_asm,exec,nochain -D <file>` (qemu 7.2 ships no TCG plugins). Each "IN:" block lists
 * the guest instructions of one translation block (TB); each "Trace" line is one execution
 * of the TB at the logged pc (nochain: every execution is logged). Count = sum over executed
 * TBs of their instruction counts (latest translation of a pc wins).
 * Usage: qemu_icount < logfile   (or a FIFO); prints the count. Host-only helper. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HBITS 22
static uint64_t keys[1u << HBITS];
static uint32_t vals[1u << HBITS];

static uint64_t execs[1u << HBITS];
static uint32_t *slot(uint64_t key) {
  uint64_t h = (key * 0x9E3779B97F4A7C15ull) >> (64 - HBITS);
  for (;;) {
    if (keys[h] == key || keys[h] == 0) {
      keys[h] = key;
      return &vals[h];
    }
    h = (h + 1) & ((1u << HBITS) - 1);
  }
}

int main(void) {
  static char line[4096];
  uint64_t total = 0, unknown = 0;
  int in_block = 0;
  uint64_t cur_pc = 0;
  uint32_t cur_n = 0;
  while (fgets(line, sizeof line, stdin)) {
    if (!strncmp(line, "IN:", 3)) {
      in_block = 1;
      cur_n = 0;
      cur_pc = 0;
      continue;
    }
    if (in_block) {
      if (line[0] == '0' && line[1] == 'x') {
        if (cur_n == 0) cur_pc = strtoull(line, NULL, 16);
        cur_n++;
        continue;
      }
      if (cur_n) *slot(cur_pc + 1) = cur_n;
      in_block = 0;
    }
    if (!strncmp(line, "Trace ", 6)) {
      char *b = strchr(line, '[');
      if (!b) continue;
      char *s1 = strchr(b, '/');
      if (!s1) continue;
      uint64_t pc = strtoull(s1 + 1, NULL, 16);
      uint32_t *v = slot(pc + 1);
      if (*v == 0) unknown++;
      total += *v;
      execs[v - vals]++;
    }
  }
  printf("%llu\n", (unsigned long long)total);
  if (getenv("QEMU_ICOUNT_TOP")) { /* profile: TBs with the most executed instructions */
    for (int r = 0; r < 400; r++) {
      uint64_t best = 0; size_t bi = 0;
      for (size_t i = 0; i < (1u << HBITS); i++)
        if (keys[i] && execs[i] * vals[i] > best) { best = execs[i] * vals[i]; bi = i; }
      if (!best) break;
      fprintf(stderr, "pc 0x%llx n=%u execs=%llu instr=%llu\n", (unsigned long long)(keys[bi] - 1),
              vals[bi], (unsigned long long)execs[bi], (unsigned long long)best);
      execs[bi] = 0;
    }
  }
  if (unknown) fprintf(stderr, "qemu_icount: %llu executions of unknown TBs\n", (unsigned long long)unknown);
  return 0;
}
