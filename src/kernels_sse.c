/*  kernels_sse.c -- the SSE4.1 kernel set "sse4" (4 floats per vector, no FMA)
 *  for x86-64 CPUs without AVX2: the Atom-class edge boxes (Goldmont Plus:
 *  Celeron J4125, N4020) have SSE4.2 but no AVX at all.
 *
 *  Compiled on every x86-64 gcc/clang build with target("sse4.1") on each
 *  function (SSE4.1 for blendvps in the pooling argmax and pmovzxbd in the
 *  argmax load; the rest is SSE2); layers.c calls it only when the CPU
 *  reports sse4.1.  There is no FMA: VFMA(a, b, c) is add(mul(a, b), c),
 *  rounded twice, so results differ from the FMA sets' in the last bits
 *  (the tests' tolerances hold both).  The kernels are kernels_simd.h's and
 *  kernels_winograd.h's, blocked for 16 xmm registers as the AVX2 set is,
 *  with at most 8 accumulators so that the operands, the broadcast and the
 *  product's temporary (legacy SSE is two-operand) fit beside them: conv
 *  forward 4 pixels x 8 channels, weight gradient 2 output x 16 input
 *  channels, input gradient 2 pixels x 16 channels (16 channels are 4
 *  vectors here, 2 with AVX2), the fused first layer 2 x 2 conv outputs x 8
 *  channels, Winograd GEMM blocks of 8.
 */
#include "kernels.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#include <string.h>

#define S_TARGET __attribute__((target("sse4.1")))
#define V        __m128
#define VW       4
#define VI       __m128i
#define VZERO()        _mm_setzero_ps()
#define VLOAD(p)       _mm_loadu_ps(p)
#define VSTORE(p, v)   _mm_storeu_ps((p), (v))
#define VSET1(x)       _mm_set1_ps(x)
#define VFMA(a, b, c)  _mm_add_ps(_mm_mul_ps((a), (b)), (c))
#define VADD(a, b)     _mm_add_ps((a), (b))
#define VSUB(a, b)     _mm_sub_ps((a), (b))
#define VMUL(a, b)     _mm_mul_ps((a), (b))

/* Four argmax bytes widened to 32-bit lanes (reads exactly 4 bytes). */
S_TARGET static inline VI s_am_load(const uint8_t *am)
{
    int word;
    memcpy(&word, am, sizeof word);
    return _mm_cvtepu8_epi32(_mm_cvtsi32_si128(word));
}

S_TARGET static inline V s_am_pick(VI a, int q, V g)
{
    return _mm_and_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(a, _mm_set1_epi32(q))), g);
}

S_TARGET static inline V s_relu_mask(V g, V y)
{
    return _mm_and_ps(_mm_cmpgt_ps(y, _mm_setzero_ps()), g);   /* NaN y: 0 */
}

S_TARGET static inline void s_pool4(float *out, uint8_t *am, V v0, V v1, V v2, V v3,
                                    V bias, bool relu)
{
    V m = v0, a = _mm_setzero_ps();           /* argmax as 0.0 .. 3.0 */
    V k = _mm_cmpgt_ps(v1, m);
    m = _mm_blendv_ps(m, v1, k);
    a = _mm_blendv_ps(a, _mm_set1_ps(1.0f), k);
    k = _mm_cmpgt_ps(v2, m);
    m = _mm_blendv_ps(m, v2, k);
    a = _mm_blendv_ps(a, _mm_set1_ps(2.0f), k);
    k = _mm_cmpgt_ps(v3, m);
    m = _mm_blendv_ps(m, v3, k);
    a = _mm_blendv_ps(a, _mm_set1_ps(3.0f), k);
    if (relu)                       /* maxps returns its second operand on NaN: 0 */
        m = _mm_max_ps(_mm_add_ps(m, bias), _mm_setzero_ps());
    _mm_storeu_ps(out, m);
    const __m128i ai = _mm_cvtps_epi32(a);
    const __m128i w16 = _mm_packs_epi32(ai, ai);
    const int word = _mm_cvtsi128_si32(_mm_packus_epi16(w16, w16));
    memcpy(am, &word, sizeof word);
}

#define S_CONV_PX 4
#define S_CONV_NV 2
#define S_DW_NO   2
#define S_DX_PX   2
#define S_C1_PC   2
#define S_C1_NV   2
#define S_WG_T    4
#define S_WG_NV   2
#define S_WG_TX   4
#define S_WG_NC   2
#define S_WG_CB   4
#define S_WG_ON   1
#define S_SET      bn_kernel_set_sse4
#define S_SET_NAME "sse4"
#include "kernels_simd.h"

#else

const bn_kernel_set_t bn_kernel_set_sse4 = { .name = "sse4", .available = false };

#endif
