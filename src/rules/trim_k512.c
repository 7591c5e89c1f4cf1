/*  trim_k512.c -- the trimmed-mean / median selection kernel (trim_simd.h)
 *  for the avx512 kernel set: 16 lanes, target("avx512f") per function, so
 *  the portable build carries it; trimmed_mean.c calls it only when
 *  bn_kernels_current() is avx512.  Elsewhere: group = NULL.
 */
#include "rules.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define BN_VEC 512
#include "vec.h"
#define S_KERNEL      bn_trim_kernel_avx512
#define S_KERNEL_NAME "avx512"
#include "trim_simd.h"
#else
const bn_trim_kernel_t bn_trim_kernel_avx512 = { .name = "avx512", .group = NULL };
#endif
