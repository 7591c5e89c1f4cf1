/*  kernels_neon.c -- the NEON kernel set for aarch64 (4 floats per vector).
 *
 *  NEON (Advanced SIMD) is part of the aarch64 baseline, so this file needs
 *  no target flags and layers.c uses it on every aarch64 CPU.  The kernels
 *  are kernels_simd.h's, blocked for 32 q registers: conv forward 4 pixels
 *  x 16 channels (16 accumulators), weight gradient 4 output x 16 input
 *  channels, input gradient 4 pixels x 16 channels, the fused first layer
 *  2 x 4 conv outputs x 8 channels.  Built by Debian's cross compiler and
 *  tested under qemu-user (tests/cross_aarch64.sh).
 *
 *  conv2 runs as Winograd F(4x4, 5x5) (kernels_winograd.h; GEMM blocks of
 *  16 q accumulators).  Its speed on an aarch64 core is NOT measured (only
 *  its results, under qemu); it is on because on both x86 sets it was about
 *  4x faster than the direct kernels, both kinds being FMA-bound, and the
 *  ratio of transform work to GEMM work does not depend on the vector
 *  width.  S_WG_ON 0 turns it off if a measurement says otherwise.
 */
#include "kernels.h"

#if defined(__aarch64__)
#include <arm_neon.h>
#include <string.h>

#define S_TARGET
#define V        float32x4_t
#define VW       4
#define VI       uint32x4_t
#define VZERO()        vdupq_n_f32(0.0f)
#define VLOAD(p)       vld1q_f32(p)
#define VSTORE(p, v)   vst1q_f32((p), (v))
#define VSET1(x)       vdupq_n_f32(x)
#define VFMA(a, b, c)  vfmaq_f32((c), (a), (b))
#define VADD(a, b)     vaddq_f32((a), (b))
#define VSUB(a, b)     vsubq_f32((a), (b))
#define VMUL(a, b)     vmulq_f32((a), (b))

/* Four argmax bytes widened to 32-bit lanes (reads exactly 4 bytes). */
static inline VI s_am_load(const uint8_t *am)
{
    uint32_t word;
    memcpy(&word, am, sizeof word);
    const uint16x8_t w16 = vmovl_u8(vreinterpret_u8_u32(vdup_n_u32(word)));
    return vmovl_u16(vget_low_u16(w16));
}

static inline V s_am_pick(VI a, int q, V g)
{
    return vreinterpretq_f32_u32(vandq_u32(vceqq_u32(a, vdupq_n_u32((uint32_t) q)),
                                           vreinterpretq_u32_f32(g)));
}

static inline V s_relu_mask(V g, V y)
{
    return vreinterpretq_f32_u32(vandq_u32(vcgtq_f32(y, vdupq_n_f32(0.0f)),
                                           vreinterpretq_u32_f32(g)));
}

static inline void s_pool4(float *out, uint8_t *am, V v0, V v1, V v2, V v3, V bias, bool relu)
{
    V m = v0;
    uint32x4_t a = vdupq_n_u32(0), k = vcgtq_f32(v1, m);
    m = vbslq_f32(k, v1, m);
    a = vbslq_u32(k, vdupq_n_u32(1), a);
    k = vcgtq_f32(v2, m);
    m = vbslq_f32(k, v2, m);
    a = vbslq_u32(k, vdupq_n_u32(2), a);
    k = vcgtq_f32(v3, m);
    m = vbslq_f32(k, v3, m);
    a = vbslq_u32(k, vdupq_n_u32(3), a);
    if (relu) {                     /* x > 0 ? x : 0, as the portable loops (NaN -> 0) */
        const V x = vaddq_f32(m, bias);
        m = vbslq_f32(vcgtq_f32(x, vdupq_n_f32(0.0f)), x, vdupq_n_f32(0.0f));
    }
    vst1q_f32(out, m);
    const uint16x4_t a16 = vmovn_u32(a);
    const uint8x8_t a8 = vmovn_u16(vcombine_u16(a16, a16));
    const uint32_t word = vget_lane_u32(vreinterpret_u32_u8(a8), 0);
    memcpy(am, &word, sizeof word);
}

#define S_CONV_PX 4
#define S_CONV_NV 4
#define S_DW_NO   4
#define S_DX_PX   4
#define S_C1_PC   4
#define S_C1_NV   2
#define S_WG_T    4
#define S_WG_NV   4
#define S_WG_TX   4
#define S_WG_NC   4
#define S_WG_CB   4
#define S_WG_ON   1
#define S_SET      bn_kernel_set_neon
#define S_SET_NAME "neon"
#include "kernels_simd.h"

#else

const bn_kernel_set_t bn_kernel_set_neon = { .name = "neon", .available = false };

#endif
