/*  kernels_avx2.c -- the AVX2 + FMA kernel set (8 floats per vector).
 *
 *  Compiled on every x86-64 gcc/clang build with target("avx2,fma") on each
 *  function; layers.c calls it only when the CPU reports both.  The kernels
 *  are kernels_simd.h's, blocked for 16 ymm registers: conv forward 4 pixels
 *  x 16 channels (8 accumulators + 2 weight vectors + a broadcast), weight
 *  gradient 4 output x 16 input channels, input gradient 4 pixels x 16
 *  channels, the fused first layer 2 x 2 conv outputs x 16 channels.
 */
#include "kernels.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define S_TARGET __attribute__((target("avx2,fma")))
#define V        __m256
#define VW       8
#define VI       __m256i
#define VZERO()        _mm256_setzero_ps()
#define VLOAD(p)       _mm256_loadu_ps(p)
#define VSTORE(p, v)   _mm256_storeu_ps((p), (v))
#define VSET1(x)       _mm256_set1_ps(x)
#define VFMA(a, b, c)  _mm256_fmadd_ps((a), (b), (c))
#define VADD(a, b)     _mm256_add_ps((a), (b))
#define VSUB(a, b)     _mm256_sub_ps((a), (b))
#define VMUL(a, b)     _mm256_mul_ps((a), (b))

S_TARGET static inline VI s_am_load(const uint8_t *am)
{
    return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *) am));
}

S_TARGET static inline V s_am_pick(VI a, int q, V g)
{
    return _mm256_and_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(a, _mm256_set1_epi32(q))), g);
}

S_TARGET static inline V s_relu_mask(V g, V y)
{
    return _mm256_and_ps(_mm256_cmp_ps(y, _mm256_setzero_ps(), _CMP_GT_OQ), g);
}

S_TARGET static inline void s_pool4(float *out, uint8_t *am, V v0, V v1, V v2, V v3,
                                    V bias, bool relu)
{
    V m = v0, a = _mm256_setzero_ps();        /* argmax as 0.0 .. 3.0 */
    V k = _mm256_cmp_ps(v1, m, _CMP_GT_OQ);
    m = _mm256_blendv_ps(m, v1, k);
    a = _mm256_blendv_ps(a, _mm256_set1_ps(1.0f), k);
    k = _mm256_cmp_ps(v2, m, _CMP_GT_OQ);
    m = _mm256_blendv_ps(m, v2, k);
    a = _mm256_blendv_ps(a, _mm256_set1_ps(2.0f), k);
    k = _mm256_cmp_ps(v3, m, _CMP_GT_OQ);
    m = _mm256_blendv_ps(m, v3, k);
    a = _mm256_blendv_ps(a, _mm256_set1_ps(3.0f), k);
    if (relu)
        m = _mm256_max_ps(_mm256_add_ps(m, bias), _mm256_setzero_ps());
    _mm256_storeu_ps(out, m);
    const __m256i ai = _mm256_cvtps_epi32(a);
    const __m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(ai), _mm256_extracti128_si256(ai, 1));
    _mm_storel_epi64((__m128i *) am, _mm_packus_epi16(w16, w16));
}

#define S_CONV_PX 4
#define S_CONV_NV 2
#define S_DW_NO   4
#define S_DX_PX   4
#define S_C1_PC   2
#define S_C1_NV   2
#define S_WG_T    4
#define S_WG_NV   2
#define S_WG_TX   4
#define S_WG_NC   2
#define S_WG_CB   4
#define S_WG_ON   1
#define S_SET      bn_kernel_set_avx2
#define S_SET_NAME "avx2"
#include "kernels_simd.h"

#else

const bn_kernel_set_t bn_kernel_set_avx2 = { .name = "avx2", .available = false };

#endif
