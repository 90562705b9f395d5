/* cpu_x86.c - run-time CPU feature checks (x86-64). */
#include "internal.h"

#ifdef RSQ_HAVE_X86
int rsq_cpu_has_avx2(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#endif /* RSQ_HAVE_X86 */
