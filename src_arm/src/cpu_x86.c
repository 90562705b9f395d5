/* cpu_x86.c - run-time CPU feature checks (x86-64). */
#include "internal.h"

#ifdef RSQ_HAVE_X86
int rsq_cpu_has_avx2(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

int rsq_cpu_has_avx512vnni(void) {
  __builtin_cpu_init(); /* libgcc's checks include the OS's XCR0 support of the AVX-512 state */
  return rsq_cpu_has_avx2() && __builtin_cpu_supports("avx512vnni") &&
         __builtin_cpu_supports("avx512vl");
}
#endif /* RSQ_HAVE_X86 */
