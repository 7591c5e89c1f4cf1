/*  trim_k256.c -- the trimmed-mean / median selection kernel (trim_simd.h)
 *  for the avx2 kernel set: 8 lanes, target("avx2,fma") per function, so the
 *  portable build carries it; trimmed_mean.c calls it only when
 *  bn_kernels_current() is avx2.  Elsewhere: group = NULL.
 */
#include "rules.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define BN_VEC 256
#include "vec.h"
#define S_KERNEL      bn_trim_kernel_avx2
#define S_KERNEL_NAME "avx2"
#include "trim_simd.h"
#else
const bn_trim_kernel_t bn_trim_kernel_avx2 = { .name = "avx2", .group = NULL };
#endif
