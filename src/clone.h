/*  clone.h -- plain C loops compiled once per x86 kernel set, chosen at run
 *  time like the model kernels (layers.h: bn_kernels_current, BN_KERNELS),
 *  so the portable build vectorises them for AVX2 or AVX-512 where the CPU
 *  has it instead of for SSE2 only.
 *
 *  Used by the rules (rules/similarity.c, rules/select.c: finite checks,
 *  axpy, difference statistics) and by wire.c (the finiteness check of
 *  every received payload).  A private helper of those .c files: never
 *  include it from a header.  For a loop written as
 *      static inline BN_CLONE_BODY int s_f_body(params) { ... }
 *  BN_CLONE(int, s_f, (params), (args)) defines s_f_k512, s_f_k256 and
 *  s_f_kbase (the body inlined under target("avx512f"), target("avx2,fma")
 *  and the build's baseline), and BN_CLONE_PICK(s_f) is the one of the
 *  current set (the baseline for portable, sse4 and neon, or when the
 *  compiler cannot target x86).  Bodies return a value (int when there is nothing
 *  to return).  The build is ISO C (-std=c11: no floating-point
 *  contraction), so an element-wise loop, or one with a fixed number of
 *  partial sums, gives the same bits on every set.
 */
#ifndef BN_CLONE_H
#define BN_CLONE_H

#include "layers.h"

#define BN_CLONE_BODY __attribute__((always_inline))

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define BN_CLONE(ret, name, params, args)                                              \
    __attribute__((target("avx512f"))) static ret name##_k512 params                   \
    { return name##_body args; }                                                       \
    __attribute__((target("avx2,fma"))) static ret name##_k256 params                  \
    { return name##_body args; }                                                       \
    static ret name##_kbase params { return name##_body args; }
#define BN_CLONE_PICK(name)                                                            \
    (bn_kernels_current() == BN_KERNELS_AVX512 ? name##_k512                           \
     : bn_kernels_current() == BN_KERNELS_AVX2 ? name##_k256 : name##_kbase)
#else
#define BN_CLONE(ret, name, params, args)                                              \
    static ret name##_kbase params { return name##_body args; }
#define BN_CLONE_PICK(name) (name##_kbase)
#endif

#endif
