/* op_common.h - what the op layers (conv1d_s8.c, dwconv_s8.c, conv1d_f32.c) share: the checks
 * of their arguments (op_common.c) and the per-channel requantization arrays (requant.c). Every
 * check sets rsq_last_error with the calling function's name (who) and returns its status; the
 * kernels do not use this header (they assert, internal.h). */
#ifndef RSQ_OP_COMMON_H
#define RSQ_OP_COMMON_H

#include "internal.h"

#ifdef __cplusplus
extern "C" {
#endif /* __cplusplus */

/* ---- op_common.c ---- */
/* A dense Conv1D shape: cin, cout in [1, 2^20] (RSQ_ERR_SHAPE), k in [1, 4096], stride 1 or 2,
 * pads in [0, k-1] (RSQ_ERR_PARAM). */
rsq_status rsq_check_conv_shape(const rsq_conv1d_params *p, const char *who);
/* impl one of the rsq_impl values (RSQ_ERR_PARAM). */
rsq_status rsq_check_impl_value(rsq_impl impl, const char *who);
/* int8 output clamp: -127 <= lo <= hi <= 127 (RSQ_ERR_PARAM). */
rsq_status rsq_check_s8_clamp(int32_t lo, int32_t hi, const char *who);
/* rsq_conv1d_out_length with the messages prefixed by who. */
rsq_status rsq_out_length(const rsq_conv1d_params *p, int32_t t_in, int32_t *t_out,
                          const char *who);
/* The start of every int8 run: an op (have_op), a valid rsq_s8_io (rsq_io_check with the op's
 * input bound in_absmax), threads >= 1, and no requantized output y from an op created without
 * multipliers (requant = 0). */
rsq_status rsq_s8_run_check(int have_op, const rsq_s8_io *io, int32_t in_absmax, int requant,
                            int32_t threads, const char *who);
rsq_status rsq_check_threads(int32_t threads, const char *who);
/* The start of every int8 create: desc, out and the weights given, and multiplier and shift both
 * given or both NULL (an accumulator-only op) (RSQ_ERR_NULL). */
rsq_status rsq_check_s8_create_ptrs(int have_desc_out_weight, const int32_t *mult, const int32_t *shift,
                                    const char *who);

/* ---- requant.c ---- */
/* Channel c of a descriptor's multiplier/shift arrays in range (M in [2^30, 2^31), shift in
 * [-31, 31]); mult == NULL (an accumulator-only op) passes. */
rsq_status rsq_check_requant_channel(const int32_t *mult, const int32_t *shift, int32_t c,
                                     const char *who);
/* An op's copies of bias and requantization per output channel, padded to RSQ_COUT_PAD
 * entries past n + 16 (bias 0, M 2^30 there) for the vector epilogues. */
typedef struct rsq_rq_arrays {
  int32_t *bias, *mult, *shift, *lshift, *rshift;
} rsq_rq_arrays;
/* Allocate and fill (bias NULL: zeros; mult and shift NULL: M = 2^30, shift 0). 0: out of
 * memory (free with rsq_rq_arrays_free). */
int rsq_rq_arrays_init(rsq_rq_arrays *a, int32_t n, const int32_t *bias, const int32_t *mult,
                       const int32_t *shift);
void rsq_rq_arrays_free(rsq_rq_arrays *a);
/* The kernels' view (requantized int8 output; rsq_io_rq switches it to acc / float). */
rsq_rq rsq_rq_of(const rsq_rq_arrays *a, int32_t lo, int32_t hi);

#ifdef __cplusplus
}
#endif /* __cplusplus */
#endif /* RSQ_OP_COMMON_H */
