/* op_common.c - argument checks shared by the op layers (op_common.h), the output length of a
 * Conv1D (rsq.h) and which implementations this build and CPU can run (internal.h). */
#include "op_common.h"

#if defined(RSQ_WITH_DOT) && defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP2_I8MM
#define HWCAP2_I8MM (1UL << 13) /* Linux arch/arm64 uapi hwcap.h */
#endif /* HWCAP2_I8MM */
#endif /* RSQ_WITH_DOT && __aarch64__ && __linux__ */

rsq_status rsq_out_length(const rsq_conv1d_params *p, int32_t t_in, int32_t *t_out,
                          const char *who) {
  if (p->k < 1 || p->stride < 1 || p->pad_left < 0 || p->pad_right < 0) {
    rsq_set_error("%s: k = %d, stride = %d, pads = %d/%d invalid", who, p->k, p->stride,
                  p->pad_left, p->pad_right);
    return RSQ_ERR_PARAM;
  }
  int64_t span = (int64_t)t_in + p->pad_left + p->pad_right - p->k;
  if (t_in < 1 || span < 0 || span / p->stride + 1 > INT32_MAX / 2) {
    rsq_set_error("%s: t_in = %d with k = %d, pads = %d/%d gives no output", who, t_in, p->k,
                  p->pad_left, p->pad_right);
    return RSQ_ERR_SHAPE;
  }
  *t_out = (int32_t)(span / p->stride + 1);
  return RSQ_OK;
}

rsq_status rsq_conv1d_out_length(const rsq_conv1d_params *p, int32_t t_in, int32_t *t_out) {
  if (!p || !t_out) {
    rsq_set_error("rsq_conv1d_out_length: null pointer");
    return RSQ_ERR_NULL;
  }
  return rsq_out_length(p, t_in, t_out, "rsq_conv1d_out_length");
}

rsq_status rsq_check_conv_shape(const rsq_conv1d_params *p, const char *who) {
  if (p->cin < 1 || p->cout < 1) {
    rsq_set_error("%s: cin = %d, cout = %d must be >= 1", who, p->cin, p->cout);
    return RSQ_ERR_SHAPE;
  }
  if (p->cin > (1 << 20) || p->cout > (1 << 20)) {
    rsq_set_error("%s: cin = %d, cout = %d too large", who, p->cin, p->cout);
    return RSQ_ERR_SHAPE;
  }
  if (p->k < 1 || p->k > 4096) {
    rsq_set_error("%s: k = %d must be in [1, 4096]", who, p->k);
    return RSQ_ERR_PARAM;
  }
  if (p->stride != 1 && p->stride != 2) {
    rsq_set_error("%s: stride = %d must be 1 or 2", who, p->stride);
    return RSQ_ERR_PARAM;
  }
  if (p->pad_left < 0 || p->pad_right < 0 || p->pad_left >= p->k || p->pad_right >= p->k) {
    rsq_set_error("%s: pads %d/%d must be in [0, k-1] (k = %d)", who, p->pad_left, p->pad_right, p->k);
    return RSQ_ERR_PARAM;
  }
  return RSQ_OK;
}

rsq_status rsq_check_impl_value(rsq_impl impl, const char *who) {
  if (impl < RSQ_IMPL_AUTO || impl > RSQ_IMPL_I8MM) {
    rsq_set_error("%s: unknown impl %d", who, (int)impl);
    return RSQ_ERR_PARAM;
  }
  return RSQ_OK;
}

rsq_status rsq_check_s8_clamp(int32_t lo, int32_t hi, const char *who) {
  if (lo < -127 || hi > 127 || lo > hi) {
    rsq_set_error("%s: clamp [%d, %d] must satisfy -127 <= min <= max <= 127", who, lo, hi);
    return RSQ_ERR_PARAM;
  }
  return RSQ_OK;
}

rsq_status rsq_check_threads(int32_t threads, const char *who) {
  if (threads < 1) {
    rsq_set_error("%s: threads = %d must be >= 1", who, threads);
    return RSQ_ERR_PARAM;
  }
  return RSQ_OK;
}

rsq_status rsq_check_s8_create_ptrs(int have_desc_out_weight, const int32_t *mult, const int32_t *shift,
                                    const char *who) {
  if (!have_desc_out_weight || !mult != !shift) {
    rsq_set_error("%s: null pointer (desc, out, weight are required; multiplier and shift come "
                  "together)", who);
    return RSQ_ERR_NULL;
  }
  return RSQ_OK;
}

rsq_status rsq_s8_run_check(int have_op, const rsq_s8_io *io, int32_t in_absmax, int requant,
                            int32_t threads, const char *who) {
  if (!have_op) {
    rsq_set_error("%s: null pointer (op, x and the output are required)", who);
    return RSQ_ERR_NULL;
  }
  rsq_status st = rsq_io_check(io, in_absmax, who);
  if (st) return st;
  if ((st = rsq_check_threads(threads, who))) return st;
  if (io->y && !requant) {
    rsq_set_error("%s: the op was created without multipliers (accumulator-only): give acc or "
                  "yf as the output", who);
    return RSQ_ERR_PARAM;
  }
  return RSQ_OK;
}

/* Whether this build and CPU can run an implementation's kernels (internal.h). */
int rsq_impl_available(rsq_impl impl) {
  switch (impl) {
    case RSQ_IMPL_REF: return 1;
    case RSQ_IMPL_NEON:
#if defined(__ARM_NEON) || defined(__ARM_NEON__)
      return 1;
#elif defined(RSQ_WITH_SIMDE_NEON) && defined(RSQ_HAVE_X86)
      return rsq_cpu_has_avx2(); /* the SIMDe build of the NEON kernels uses AVX2 */
#else
      return 0;
#endif /* NEON: native, SIMDe */
    case RSQ_IMPL_AVX2:
#if defined(RSQ_WITH_AVX2) && defined(RSQ_HAVE_X86)
      return rsq_cpu_has_avx2();
#else
      return 0;
#endif /* RSQ_WITH_AVX2 && RSQ_HAVE_X86 */
    case RSQ_IMPL_DOT:
#if defined(RSQ_WITH_DOT) && defined(__aarch64__) && defined(__linux__)
      return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#else
      return 0;
#endif /* RSQ_WITH_DOT && __aarch64__ && __linux__ */
    case RSQ_IMPL_I8MM:
#if defined(RSQ_WITH_DOT) && defined(__aarch64__) && defined(__linux__)
      return (getauxval(AT_HWCAP2) & HWCAP2_I8MM) != 0;
#else
      return 0;
#endif /* RSQ_WITH_DOT && __aarch64__ && __linux__ */
    case RSQ_IMPL_VNNI:
#if defined(RSQ_WITH_VNNI) && defined(RSQ_HAVE_X86)
      return rsq_cpu_has_avx512vnni();
#else
      return 0;
#endif /* RSQ_WITH_VNNI && RSQ_HAVE_X86 */
    default: return 0;
  }
}
