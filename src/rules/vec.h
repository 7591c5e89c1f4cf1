/*  vec.h -- a thin SIMD layer for the coordinate-wise kernels (trimmed mean,
 *  median): one float vector type of BN_VL lanes and a mask type, AVX-512,
 *  AVX2, SSE2 or plain scalar (BN_VL = 1) depending on the target the build
 *  selects (-march=native by default).  Only max/min/compare/add/mul and
 *  masked accumulation; NaN never reaches these kernels (pre-filter).
 */
#ifndef BN_RULES_VEC_H
#define BN_RULES_VEC_H

#if defined(__AVX512F__)
#include <immintrin.h>
#define BN_VL 16
typedef __m512 bn_vf;
typedef __mmask16 bn_vm;
#define bn_vload(p)        _mm512_loadu_ps(p)
#define bn_vstore(p, x)    _mm512_storeu_ps((p), (x))
#define bn_vset1(a)        _mm512_set1_ps(a)
#define bn_vmax(a, b)      _mm512_max_ps((a), (b))
#define bn_vmin(a, b)      _mm512_min_ps((a), (b))
#define bn_vadd(a, b)      _mm512_add_ps((a), (b))
#define bn_vmul(a, b)      _mm512_mul_ps((a), (b))
#define bn_vgt(a, b)       _mm512_cmp_ps_mask((a), (b), _CMP_GT_OQ)
#define bn_vlt(a, b)       _mm512_cmp_ps_mask((a), (b), _CMP_LT_OQ)
#define bn_veq(a, b)       _mm512_cmp_ps_mask((a), (b), _CMP_EQ_OQ)
#define bn_mand(a, b)      ((bn_vm) ((a) & (b)))
#define bn_vaddm(acc, m, x) _mm512_mask_add_ps((acc), (m), (acc), (x))
#define bn_mcount(m)       __builtin_popcount((unsigned) (m))
#elif defined(__AVX2__)
#include <immintrin.h>
#define BN_VL 8
typedef __m256 bn_vf;
typedef __m256 bn_vm;
#define bn_vload(p)        _mm256_loadu_ps(p)
#define bn_vstore(p, x)    _mm256_storeu_ps((p), (x))
#define bn_vset1(a)        _mm256_set1_ps(a)
#define bn_vmax(a, b)      _mm256_max_ps((a), (b))
#define bn_vmin(a, b)      _mm256_min_ps((a), (b))
#define bn_vadd(a, b)      _mm256_add_ps((a), (b))
#define bn_vmul(a, b)      _mm256_mul_ps((a), (b))
#define bn_vgt(a, b)       _mm256_cmp_ps((a), (b), _CMP_GT_OQ)
#define bn_vlt(a, b)       _mm256_cmp_ps((a), (b), _CMP_LT_OQ)
#define bn_veq(a, b)       _mm256_cmp_ps((a), (b), _CMP_EQ_OQ)
#define bn_mand(a, b)      _mm256_and_ps((a), (b))
#define bn_vaddm(acc, m, x) _mm256_add_ps((acc), _mm256_and_ps((m), (x)))
#define bn_mcount(m)       __builtin_popcount((unsigned) _mm256_movemask_ps(m))
#elif defined(__SSE2__)
#include <immintrin.h>
#define BN_VL 4
typedef __m128 bn_vf;
typedef __m128 bn_vm;
#define bn_vload(p)        _mm_loadu_ps(p)
#define bn_vstore(p, x)    _mm_storeu_ps((p), (x))
#define bn_vset1(a)        _mm_set1_ps(a)
#define bn_vmax(a, b)      _mm_max_ps((a), (b))
#define bn_vmin(a, b)      _mm_min_ps((a), (b))
#define bn_vadd(a, b)      _mm_add_ps((a), (b))
#define bn_vmul(a, b)      _mm_mul_ps((a), (b))
#define bn_vgt(a, b)       _mm_cmpgt_ps((a), (b))
#define bn_vlt(a, b)       _mm_cmplt_ps((a), (b))
#define bn_veq(a, b)       _mm_cmpeq_ps((a), (b))
#define bn_mand(a, b)      _mm_and_ps((a), (b))
#define bn_vaddm(acc, m, x) _mm_add_ps((acc), _mm_and_ps((m), (x)))
#define bn_mcount(m)       __builtin_popcount((unsigned) _mm_movemask_ps(m))
#else
#define BN_VL 1
typedef float bn_vf;
typedef int bn_vm;
#define bn_vload(p)        (*(p))
#define bn_vstore(p, x)    (*(p) = (x))
#define bn_vset1(a)        (a)
#define bn_vmax(a, b)      ((a) > (b) ? (a) : (b))
#define bn_vmin(a, b)      ((a) < (b) ? (a) : (b))
#define bn_vadd(a, b)      ((a) + (b))
#define bn_vmul(a, b)      ((a) * (b))
#define bn_vgt(a, b)       ((a) > (b))
#define bn_vlt(a, b)       ((a) < (b))
#define bn_veq(a, b)       ((a) == (b))
#define bn_mand(a, b)      ((a) & (b))
#define bn_vaddm(acc, m, x) ((m) ? (acc) + (x) : (acc))
#define bn_mcount(m)       (m)
#endif

#endif
