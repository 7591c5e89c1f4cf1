/*  trim_kbase.c -- the trimmed-mean / median selection kernel (trim_simd.h)
 *  for the portable kernel set (and neon, which has no rule kernels of its
 *  own yet): SSE2 on x86-64 (its baseline, 4 lanes), plain C elsewhere
 *  (and with -DBN_RULES_SCALAR, so that x86 tests can check that path).
 */
#include "rules.h"

#if defined(__x86_64__) && defined(__SSE2__) && !defined(BN_RULES_SCALAR)
#define BN_VEC 128
#else
#define BN_VEC 1
#endif
#include "vec.h"
#define S_KERNEL      bn_trim_kernel_base
#define S_KERNEL_NAME "portable"
#include "trim_simd.h"
