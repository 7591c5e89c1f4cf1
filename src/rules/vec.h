/*  vec.h -- a thin SIMD vocabulary for the coordinate-wise rule kernels,
 *  instantiated once per kernel set (the model kernels' run-time dispatch,
 *  layers.h: BN_KERNELS, bn_kernels_current).
 *
 *  PRIVATE: included only by the rules/trim_k<set>.c instantiation files, each
 *  of which defines BN_VEC first:
 *    BN_VEC 512  AVX-512F, 16 lanes, target("avx512f") on every function
 *    BN_VEC 256  AVX2 + FMA, 8 lanes, target("avx2,fma")
 *    BN_VEC 128  SSE2 (the x86-64 baseline), 4 lanes
 *    BN_VEC 1    plain C, 1 lane (any other target)
 *  so that ONE portable build carries every path.  Types: bn_vf (floats),
 *  bn_vi (int32), bn_vm (a lane mask).  Integer keys (bn_ikey) order floats
 *  totally as signed int32: -inf < ... < -0 < +0 < ... < +inf; NaN never
 *  reaches these kernels (pre-filter).  Only exact operations (compare,
 *  select, integer add, float add and multiply, no FMA), so every
 *  instantiation of a kernel written lane by lane gives the same bits.
 */
#ifndef BN_RULES_VEC_H
#define BN_RULES_VEC_H

#include <stdint.h>
#include <string.h>

/* Set bits of a 16-bit mask, branch-free (SSE2 has no popcnt). */
static inline uint32_t s_popcnt16(unsigned x)
{
    x = x - ((x >> 1) & 0x5555u);
    x = (x & 0x3333u) + ((x >> 2) & 0x3333u);
    x = (x + (x >> 4)) & 0x0f0fu;
    return (x + (x >> 8)) & 0x1fu;
}

#if BN_VEC == 512
#include <immintrin.h>
#define BN_VL 16
#define BN_VTARGET __attribute__((target("avx512f")))
typedef __m512  bn_vf;
typedef __m512i bn_vi;
typedef __mmask16 bn_vm;
#define bn_vload(p)         _mm512_loadu_ps(p)
#define bn_vstore(p, x)     _mm512_storeu_ps((p), (x))
#define bn_vset1(a)         _mm512_set1_ps(a)
#define bn_vadd(a, b)       _mm512_add_ps((a), (b))
#define bn_vmul(a, b)       _mm512_mul_ps((a), (b))
#define bn_vaddm(acc, m, x) _mm512_mask_add_ps((acc), (m), (acc), (x))
#define bn_iload(p)         _mm512_loadu_si512((const void *) (p))
#define bn_istore(p, x)     _mm512_storeu_si512((void *) (p), (x))
#define bn_istream(p, x)    _mm512_stream_si512((void *) (p), (x))
#define bn_sfence()         _mm_sfence()
#define bn_iset1(a)         _mm512_set1_epi32(a)
#define bn_iadd(a, b)       _mm512_add_epi32((a), (b))
#define bn_isub(a, b)       _mm512_sub_epi32((a), (b))
#define bn_isrl1(a)         _mm512_srli_epi32((a), 1)
#define bn_igt(a, b)        _mm512_cmpgt_epi32_mask((a), (b))
#define bn_ieq(a, b)        _mm512_cmpeq_epi32_mask((a), (b))
#define bn_mand(a, b)       ((bn_vm) ((a) & (b)))
#define bn_mbits(m)         ((unsigned) (m))
#define bn_icount(acc, m)   _mm512_mask_sub_epi32((acc), (m), (acc), _mm512_set1_epi32(-1))
#define bn_isel(m, a, b)    _mm512_mask_blend_epi32((m), (b), (a))
#define bn_iall_eq(a, b)    (_mm512_cmpneq_epi32_mask((a), (b)) == 0)
#define bn_imax(a, b)       _mm512_max_epi32((a), (b))
#define bn_imin(a, b)       _mm512_min_epi32((a), (b))
#define bn_iminu(a, b)      _mm512_min_epu32((a), (b))
#define bn_imaxu(a, b)      _mm512_max_epu32((a), (b))
#define bn_mor(a, b)        ((bn_vm) ((a) | (b)))
#define bn_mandn(a, b)      ((bn_vm) ((a) & ~(b)))
#define bn_mxor(a, b)       ((bn_vm) ((a) ^ (b)))
#define bn_mnor(a, b)       ((bn_vm) ~((a) | (b)))
#define bn_mall(m)          ((m) == 0xffff)
#define bn_many(m)          ((m) != 0)
#define bn_popcnt16(x)      ((uint32_t) __builtin_popcount(x))
#define bn_vsub(a, b)       _mm512_sub_ps((a), (b))
#define bn_vdiv(a, b)       _mm512_div_ps((a), (b))
#define bn_vcvtt(f)         _mm512_cvttps_epi32(f)
/* acc = min(acc, k) in the lanes of m; acc = max(acc, k) in the others */
#define bn_imin_in(acc, m, k)  _mm512_mask_min_epi32((acc), (m), (acc), (k))
#define bn_imax_out(acc, m, k) _mm512_mask_max_epi32((acc), (bn_vm) ~(m), (acc), (k))
#define bn_ikey(f)          s_key512(f)
#define bn_vunkey(k)        _mm512_castsi512_ps(s_key512(_mm512_castsi512_ps(k)))
#define bn_vcvt(i)          _mm512_cvtepi32_ps(i)
#define bn_vsel(m, a, b)    _mm512_mask_blend_ps((m), (b), (a))
BN_VTARGET static inline bn_vi s_key512(bn_vf f)
{
    __m512i b = _mm512_castps_si512(f);
    return _mm512_xor_si512(b, _mm512_srli_epi32(_mm512_srai_epi32(b, 31), 1));
}
#elif BN_VEC == 256 || BN_VEC == 128
#include <immintrin.h>
#if BN_VEC == 256
#define BN_VL 8
#define BN_VTARGET __attribute__((target("avx2,fma")))
typedef __m256  bn_vf;
typedef __m256i bn_vi;
#define S_PS(x)  _mm256_##x##_ps
#define S_SI(x)  _mm256_##x##_si256
#define S_EP(x)  _mm256_##x##_epi32
#define bn_isel(m, a, b)    _mm256_blendv_epi8((b), (a), (m))
#define bn_iall_eq(a, b)    (_mm256_movemask_epi8(_mm256_cmpeq_epi32((a), (b))) == -1)
#define bn_mbits(m)         ((unsigned) _mm256_movemask_ps(_mm256_castsi256_ps(m)))
#define s_cast_ps(m)        _mm256_castsi256_ps(m)
#define s_cast_si(f)        _mm256_castps_si256(f)
#define bn_iload(p)         _mm256_loadu_si256((const __m256i *) (p))
#define bn_vcvt(i)          _mm256_cvtepi32_ps(i)
#define bn_imax(a, b)       _mm256_max_epi32((a), (b))
#define bn_imin(a, b)       _mm256_min_epi32((a), (b))
#define bn_iminu(a, b)      _mm256_min_epu32((a), (b))
#define bn_imaxu(a, b)      _mm256_max_epu32((a), (b))
#define bn_mall(m)          (_mm256_movemask_ps(_mm256_castsi256_ps(m)) == 0xff)
#define bn_many(m)          (_mm256_movemask_ps(_mm256_castsi256_ps(m)) != 0)
#define bn_popcnt16(x)      ((uint32_t) __builtin_popcount(x))   /* AVX2 CPUs have popcnt */
#define bn_istore(p, x)     _mm256_storeu_si256((__m256i *) (p), (x))
#define bn_istream(p, x)    _mm256_stream_si256((__m256i *) (p), (x))
#else
#define BN_VL 4
#define BN_VTARGET
typedef __m128  bn_vf;
typedef __m128i bn_vi;
#define S_PS(x)  _mm_##x##_ps
#define S_SI(x)  _mm_##x##_si128
#define S_EP(x)  _mm_##x##_epi32
#define bn_isel(m, a, b)    _mm_or_si128(_mm_and_si128((m), (a)), _mm_andnot_si128((m), (b)))
#define bn_iall_eq(a, b)    (_mm_movemask_epi8(_mm_cmpeq_epi32((a), (b))) == 0xffff)
#define bn_mbits(m)         ((unsigned) _mm_movemask_ps(_mm_castsi128_ps(m)))
#define s_cast_ps(m)        _mm_castsi128_ps(m)
#define s_cast_si(f)        _mm_castps_si128(f)
#define bn_iload(p)         _mm_loadu_si128((const __m128i *) (p))
#define bn_vcvt(i)          _mm_cvtepi32_ps(i)
#define bn_imax(a, b)       bn_isel(_mm_cmpgt_epi32((a), (b)), (a), (b))
#define bn_imin(a, b)       bn_isel(_mm_cmpgt_epi32((a), (b)), (b), (a))
/* unsigned order = signed order of x ^ 0x80000000 */
#define s_ubias(a)          _mm_xor_si128((a), _mm_set1_epi32(INT32_MIN))
#define bn_iminu(a, b)      bn_isel(_mm_cmpgt_epi32(s_ubias(a), s_ubias(b)), (b), (a))
#define bn_imaxu(a, b)      bn_isel(_mm_cmpgt_epi32(s_ubias(a), s_ubias(b)), (a), (b))
#define bn_mall(m)          (_mm_movemask_ps(_mm_castsi128_ps(m)) == 0xf)
#define bn_many(m)          (_mm_movemask_ps(_mm_castsi128_ps(m)) != 0)
#define bn_popcnt16(x)      s_popcnt16(x)
#define bn_istore(p, x)     _mm_storeu_si128((__m128i *) (p), (x))
#define bn_istream(p, x)    _mm_stream_si128((__m128i *) (p), (x))
#endif
typedef bn_vi bn_vm;                     /* all-ones lanes */
#define bn_sfence()         _mm_sfence()
#define bn_vload(p)         S_PS(loadu)(p)
#define bn_vstore(p, x)     S_PS(storeu)((p), (x))
#define bn_vset1(a)         S_PS(set1)(a)
#define bn_vadd(a, b)       S_PS(add)((a), (b))
#define bn_vmul(a, b)       S_PS(mul)((a), (b))
#define bn_vaddm(acc, m, x) S_PS(add)((acc), S_PS(and)(s_cast_ps(m), (x)))
#define bn_iset1(a)         S_EP(set1)(a)
#define bn_iadd(a, b)       S_EP(add)((a), (b))
#define bn_isub(a, b)       S_EP(sub)((a), (b))
#define bn_isrl1(a)         S_EP(srli)((a), 1)
#define bn_igt(a, b)        S_EP(cmpgt)((a), (b))
#define bn_ieq(a, b)        S_EP(cmpeq)((a), (b))
#define bn_mand(a, b)       S_SI(and)((a), (b))
#define bn_mor(a, b)        S_SI(or)((a), (b))
#define bn_mandn(a, b)      S_SI(andnot)((b), (a))
#define bn_mxor(a, b)       S_SI(xor)((a), (b))
#define bn_mnor(a, b)       S_SI(xor)(S_SI(or)((a), (b)), S_EP(set1)(-1))
#define bn_vsub(a, b)       S_PS(sub)((a), (b))
#define bn_vdiv(a, b)       S_PS(div)((a), (b))
#define bn_vcvtt(f)         S_EP(cvttps)(f)
#define bn_icount(acc, m)   S_EP(sub)((acc), (m))
#define bn_ikey(f)          S_SI(xor)(s_cast_si(f), S_EP(srli)(S_EP(srai)(s_cast_si(f), 31), 1))
#define bn_imin_in(acc, m, k)  bn_imin((acc), bn_isel((m), (k), (acc)))
#define bn_imax_out(acc, m, k) bn_imax((acc), bn_isel((m), (acc), (k)))
#define bn_vunkey(k)        s_cast_ps(bn_ikey(s_cast_ps(k)))
#define bn_vsel(m, a, b)    S_PS(or)(S_PS(and)(s_cast_ps(m), (a)), S_PS(andnot)(s_cast_ps(m), (b)))
#else
#define BN_VL 1
#define BN_VTARGET
typedef float   bn_vf;
typedef int32_t bn_vi;
typedef int32_t bn_vm;                   /* 0 or 1 */
#define bn_vload(p)         (*(p))
#define bn_vstore(p, x)     (*(p) = (x))
#define bn_vset1(a)         (a)
#define bn_vadd(a, b)       ((a) + (b))
#define bn_vmul(a, b)       ((a) * (b))
#define bn_vaddm(acc, m, x) ((m) ? (acc) + (x) : (acc))
#define bn_iload(p)         (*(const int32_t *) (p))
#define bn_istore(p, x)     (*(int32_t *) (p) = (x))
#define bn_istream(p, x)    (*(int32_t *) (p) = (x))
#define bn_sfence()         ((void) 0)
#define bn_iset1(a)         ((int32_t) (a))
#define bn_iadd(a, b)       ((int32_t) ((uint32_t) (a) + (uint32_t) (b)))
#define bn_isub(a, b)       ((int32_t) ((uint32_t) (a) - (uint32_t) (b)))
#define bn_isrl1(a)         ((int32_t) ((uint32_t) (a) >> 1))
#define bn_igt(a, b)        ((a) > (b))
#define bn_ieq(a, b)        ((a) == (b))
#define bn_mand(a, b)       ((a) & (b))
#define bn_mbits(m)         ((unsigned) (m))
#define bn_icount(acc, m)   ((acc) + (m))
#define bn_isel(m, a, b)    ((m) ? (a) : (b))
#define bn_iall_eq(a, b)    ((a) == (b))
#define bn_imax(a, b)       ((a) > (b) ? (a) : (b))
#define bn_imin(a, b)       ((a) < (b) ? (a) : (b))
#define bn_iminu(a, b)      ((uint32_t) (a) < (uint32_t) (b) ? (a) : (b))
#define bn_imaxu(a, b)      ((uint32_t) (a) > (uint32_t) (b) ? (a) : (b))
#define bn_mor(a, b)        ((a) | (b))
#define bn_mandn(a, b)      ((a) & !(b))
#define bn_mxor(a, b)       ((a) ^ (b))
#define bn_mnor(a, b)       (!((a) | (b)))
#define bn_mall(m)          ((m) != 0)
#define bn_many(m)          ((m) != 0)
#define bn_popcnt16(x)      s_popcnt16(x)
#define bn_vsub(a, b)       ((a) - (b))
#define bn_vdiv(a, b)       ((a) / (b))
#define bn_vcvtt(f)         ((int32_t) (f))
#define bn_imin_in(acc, m, k)  ((m) && (k) < (acc) ? (k) : (acc))
#define bn_imax_out(acc, m, k) (!(m) && (k) > (acc) ? (k) : (acc))
#define bn_ikey(f)          s_key1(f)
#define bn_vunkey(k)        s_unkey1(k)
#define bn_vcvt(i)          ((float) (i))
#define bn_vsel(m, a, b)    ((m) ? (a) : (b))
static inline int32_t s_key1(float f)
{
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    return (int32_t) (b ^ ((b >> 31) ? 0x7fffffffu : 0u));
}
static inline float s_unkey1(int32_t k)
{
    uint32_t b = (uint32_t) k;
    b ^= (b >> 31) ? 0x7fffffffu : 0u;
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}
#endif

#endif
