/*  kernels_avx512.c -- the AVX-512F kernel set (16 floats per vector).
 *
 *  Compiled on every x86-64 gcc/clang build with target("avx512f") on each
 *  function, so a build without -march=native still carries it; layers.c
 *  calls it only when the CPU reports avx512f.  Blocking: conv forward keeps
 *  8 output pixels x OC (16 or 32) channels in 8 or 16 zmm accumulators
 *  across all K*K*C taps; the weight gradient keeps, for K == 5, the 5 taps
 *  of a kernel row x 4 output channels (else 16 output channels of one tap)
 *  x 16 input channels; the input gradient, for K == 5, the 12 input pixels
 *  under 8 output pixels and one kernel row (else 8 input pixels of one
 *  tap) x 16 channels; the fused first layer a 2 x 8 block of conv outputs
 *  per 16 channels.
 *
 *  conv2 itself (K 5, 12x12 -> 8x8) runs as Winograd F(4x4, 5x5) instead:
 *  kernels_winograd.h, instantiated at the end of this file with zmm
 *  vectors (GEMM blocks of 16 accumulators).  The direct kernels above were
 *  at the FMA peak (about 118 GFLOP/s on Zen 4); Winograd does 6.25x fewer
 *  multiply-adds in the channel sums, and measured 3.9x faster forward and
 *  4.0x faster backward (docs/performance.md).  They remain for the shapes
 *  it does not take.
 */
#include "kernels.h"

#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define S_AVX512 __attribute__((target("avx512f")))

/* NOC = OC / 16 vectors per pixel; a block is 8 output pixels of one row, so
 * 8 * NOC accumulators stay in registers across all K*K*C taps. */
#define S_CONV_DIRECT_KERNEL(NAME, NOC)                                                   \
S_AVX512 static void NAME(float *out, const float *in, const float *wt,                   \
                          int B, int H, int W, int C, int K)                              \
{                                                                                         \
    const int OH = H - K + 1, OW = W - K + 1, OC = 16 * (NOC);                            \
    for (int b = 0; b < B; b++)                                                           \
        for (int oh = 0; oh < OH; oh++)                                                   \
            for (int ow0 = 0; ow0 < OW; ow0 += 8) {                                       \
                __m512 acc[8][NOC];                                                       \
                for (int j = 0; j < 8; j++)                                               \
                    for (int v = 0; v < (NOC); v++)                                       \
                        acc[j][v] = _mm512_setzero_ps();                                  \
                for (int ki = 0; ki < K; ki++)                                            \
                    for (int kj = 0; kj < K; kj++) {                                      \
                        const float *src = in + (((size_t) b * H + oh + ki) * W + ow0 + kj) * C; \
                        const float *w = wt + (size_t) (ki * K + kj) * C * OC;            \
                        for (int c = 0; c < C; c++, w += OC) {                            \
                            __m512 wv[NOC];                                               \
                            for (int v = 0; v < (NOC); v++)                               \
                                wv[v] = _mm512_loadu_ps(w + 16 * v);                      \
                            for (int j = 0; j < 8; j++) {                                 \
                                const __m512 x = _mm512_set1_ps(src[(size_t) j * C + c]); \
                                for (int v = 0; v < (NOC); v++)                           \
                                    acc[j][v] = _mm512_fmadd_ps(x, wv[v], acc[j][v]);     \
                            }                                                             \
                        }                                                                 \
                    }                                                                     \
                float *o = out + (((size_t) b * OH + oh) * OW + ow0) * OC;                \
                for (int j = 0; j < 8; j++)                                               \
                    for (int v = 0; v < (NOC); v++)                                       \
                        _mm512_storeu_ps(o + (size_t) j * OC + 16 * v, acc[j][v]);        \
            }                                                                             \
}
S_CONV_DIRECT_KERNEL(s_conv_direct16, 1)
S_CONV_DIRECT_KERNEL(s_conv_direct32, 2)
#undef S_CONV_DIRECT_KERNEL

/* The same for K == 5, with each load feeding a whole kernel row: per kernel
 * row ki and input channel c, the 5 taps' weight vectors (5 * NOC) are
 * loaded once and each of the 12 input pixels under the 8 outputs is
 * broadcast once, for 40 * NOC FMAs (0.28 loads per FMA at NOC 2, against
 * 0.63 above). */
#define S_CONV_DIRECT_K5_KERNEL(NAME, NOC)                                                \
S_AVX512 static void NAME(float *out, const float *in, const float *wt,                   \
                          int B, int H, int W, int C)                                     \
{                                                                                         \
    enum { K = 5, NP = 8 + K - 1 };                                                       \
    const int OH = H - K + 1, OW = W - K + 1, OC = 16 * (NOC);                            \
    for (int b = 0; b < B; b++)                                                           \
        for (int oh = 0; oh < OH; oh++)                                                   \
            for (int ow0 = 0; ow0 < OW; ow0 += 8) {                                       \
                __m512 acc[8][NOC];                                                       \
                for (int j = 0; j < 8; j++)                                               \
                    for (int v = 0; v < (NOC); v++)                                       \
                        acc[j][v] = _mm512_setzero_ps();                                  \
                for (int ki = 0; ki < K; ki++) {                                          \
                    const float *src = in + (((size_t) b * H + oh + ki) * W + ow0) * C;   \
                    const float *w = wt + (size_t) ki * K * C * OC;                       \
                    for (int c = 0; c < C; c++, w += OC) {                                \
                        __m512 wv[K][NOC];                                                \
                        for (int kj = 0; kj < K; kj++)                                    \
                            for (int v = 0; v < (NOC); v++)                               \
                                wv[kj][v] = _mm512_loadu_ps(w + (size_t) kj * C * OC + 16 * v); \
                        _Pragma("GCC unroll 12")                                          \
                        for (int p = 0; p < NP; p++) {                                    \
                            const __m512 x = _mm512_set1_ps(src[(size_t) p * C + c]);     \
                            _Pragma("GCC unroll 5")                                       \
                            for (int kj = 0; kj < K; kj++) {                              \
                                const int j = p - kj;                                     \
                                if (j < 0 || j >= 8)                                      \
                                    continue;                                             \
                                for (int v = 0; v < (NOC); v++)                           \
                                    acc[j][v] = _mm512_fmadd_ps(x, wv[kj][v], acc[j][v]); \
                            }                                                             \
                        }                                                                 \
                    }                                                                     \
                }                                                                         \
                float *o = out + (((size_t) b * OH + oh) * OW + ow0) * OC;                \
                for (int j = 0; j < 8; j++)                                               \
                    for (int v = 0; v < (NOC); v++)                                       \
                        _mm512_storeu_ps(o + (size_t) j * OC + 16 * v, acc[j][v]);        \
            }                                                                             \
}
S_CONV_DIRECT_K5_KERNEL(s_conv_direct16_k5, 1)
S_CONV_DIRECT_K5_KERNEL(s_conv_direct32_k5, 2)
#undef S_CONV_DIRECT_K5_KERNEL

/* dweight (OHWI) for C == 16: per tap and block of 16 output channels, 16
 * accumulators (one per output channel, a vector over the 16 input channels)
 * run over every output pixel of the batch. */
S_AVX512 static void s_conv_dw_c16(float *dw, const float *dout, const float *in,
                                   int B, int H, int W, int OC, int K)
{
    const int OH = H - K + 1, OW = W - K + 1, KK = K * K;
    for (int ki = 0; ki < K; ki++)
        for (int kj = 0; kj < K; kj++)
            for (int oc0 = 0; oc0 < OC; oc0 += 16) {
                __m512 acc[16];
                for (int o = 0; o < 16; o++)
                    acc[o] = _mm512_setzero_ps();
                for (int b = 0; b < B; b++)
                    for (int oh = 0; oh < OH; oh++) {
                        const float *x = in + (((size_t) b * H + oh + ki) * W + kj) * 16;
                        const float *g = dout + ((size_t) b * OH + oh) * OW * OC + oc0;
                        for (int ow = 0; ow < OW; ow++, x += 16, g += OC) {
                            const __m512 xv = _mm512_loadu_ps(x);
                            for (int o = 0; o < 16; o++)
                                acc[o] = _mm512_fmadd_ps(_mm512_set1_ps(g[o]), xv, acc[o]);
                        }
                    }
                for (int o = 0; o < 16; o++)
                    _mm512_storeu_ps(dw + ((size_t) (oc0 + o) * KK + ki * K + kj) * 16, acc[o]);
            }
}

/* din for C == 16: for 8 output pixels of a row and one tap, the 8 input
 * pixels they touch are 8 vectors; each output channel adds weight x dout. */
S_AVX512 static void s_conv_dx_c16(float *din, const float *dout, const float *w,
                                   int B, int H, int W, int OC, int K)
{
    const int OH = H - K + 1, OW = W - K + 1;
    memset(din, 0, (size_t) B * H * W * 16 * sizeof(float));
    for (int b = 0; b < B; b++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow0 = 0; ow0 < OW; ow0 += 8) {
                const float *g = dout + (((size_t) b * OH + oh) * OW + ow0) * OC;
                for (int ki = 0; ki < K; ki++)
                    for (int kj = 0; kj < K; kj++) {
                        float *d = din + (((size_t) b * H + oh + ki) * W + ow0 + kj) * 16;
                        __m512 acc[8];
                        for (int j = 0; j < 8; j++)
                            acc[j] = _mm512_loadu_ps(d + j * 16);
                        const float *wk = w + (size_t) (ki * K + kj) * 16;
                        for (int oc = 0; oc < OC; oc++) {
                            const __m512 wv = _mm512_loadu_ps(wk + (size_t) oc * K * K * 16);
                            for (int j = 0; j < 8; j++)
                                acc[j] = _mm512_fmadd_ps(_mm512_set1_ps(g[(size_t) j * OC + oc]),
                                                         wv, acc[j]);
                        }
                        for (int j = 0; j < 8; j++)
                            _mm512_storeu_ps(d + j * 16, acc[j]);
                    }
            }
}

/* The same two gradients for K == 5, blocked so that one load or broadcast
 * feeds several taps (fewer loads per FMA, and no read-modify-write of din
 * per tap), which is what holds the kernels above below the FMA peak.
 *
 * dweight: per kernel row ki and 4 output channels, the 5 taps of the row x
 * 4 channels are 20 accumulators; at each output pixel the 4 dout values
 * are broadcast once and the 5 input vectors x[ow + kj] loaded once, 20
 * FMAs.  40 sweeps of the batch instead of 50. */
S_AVX512 static void s_conv_dw_c16_k5(float *dw, const float *dout, const float *in,
                                      int B, int H, int W, int OC)
{
    enum { K = 5, KK = 25, NO = 4 };
    const int OH = H - K + 1, OW = W - K + 1;
    for (int ki = 0; ki < K; ki++)
        for (int oc0 = 0; oc0 < OC; oc0 += NO) {
            __m512 acc[K][NO];
            for (int kj = 0; kj < K; kj++)
                for (int o = 0; o < NO; o++)
                    acc[kj][o] = _mm512_setzero_ps();
            for (int b = 0; b < B; b++)
                for (int oh = 0; oh < OH; oh++) {
                    const float *x = in + (((size_t) b * H + oh + ki) * W) * 16;
                    const float *g = dout + ((size_t) b * OH + oh) * OW * OC + oc0;
                    for (int ow = 0; ow < OW; ow++, x += 16, g += OC) {
                        __m512 xv[K];
                        for (int kj = 0; kj < K; kj++)
                            xv[kj] = _mm512_loadu_ps(x + kj * 16);
                        for (int o = 0; o < NO; o++) {
                            const __m512 gv = _mm512_set1_ps(g[o]);
                            for (int kj = 0; kj < K; kj++)
                                acc[kj][o] = _mm512_fmadd_ps(gv, xv[kj], acc[kj][o]);
                        }
                    }
                }
            for (int o = 0; o < NO; o++)
                for (int kj = 0; kj < K; kj++)
                    _mm512_storeu_ps(dw + ((size_t) (oc0 + o) * KK + ki * K + kj) * 16, acc[kj][o]);
        }
}

/* din: for 8 output pixels of a row and one kernel row ki, the 12 input
 * pixels they touch (8 + K - 1) are 12 accumulators loaded and stored once;
 * per output channel the 5 weight vectors of the row are loaded once and
 * each of the 8 dout values broadcast once, for 40 FMAs. */
S_AVX512 static void s_conv_dx_c16_k5(float *din, const float *dout, const float *w,
                                      int B, int H, int W, int OC)
{
    enum { K = 5, KK = 25, NP = 8 + K - 1 };
    const int OH = H - K + 1, OW = W - K + 1;
    memset(din, 0, (size_t) B * H * W * 16 * sizeof(float));
    for (int b = 0; b < B; b++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow0 = 0; ow0 < OW; ow0 += 8) {
                const float *g = dout + (((size_t) b * OH + oh) * OW + ow0) * OC;
                for (int ki = 0; ki < K; ki++) {
                    float *d = din + (((size_t) b * H + oh + ki) * W + ow0) * 16;
                    __m512 acc[NP];
                    for (int p = 0; p < NP; p++)
                        acc[p] = _mm512_loadu_ps(d + p * 16);
                    const float *wk = w + (size_t) ki * K * 16;
                    for (int oc = 0; oc < OC; oc++) {
                        const float *wo = wk + (size_t) oc * KK * 16;
                        __m512 wv[K];
                        for (int kj = 0; kj < K; kj++)
                            wv[kj] = _mm512_loadu_ps(wo + kj * 16);
                        for (int j = 0; j < 8; j++) {
                            const __m512 gv = _mm512_set1_ps(g[(size_t) j * OC + oc]);
                            for (int kj = 0; kj < K; kj++)
                                acc[j + kj] = _mm512_fmadd_ps(gv, wv[kj], acc[j + kj]);
                        }
                    }
                    for (int p = 0; p < NP; p++)
                        _mm512_storeu_ps(d + p * 16, acc[p]);
                }
            }
}

/* 16 channels of one pooled pixel from the window cells v0..v3 (row-major);
 * strict '>' keeps the first maximum.  With relu: max(0, max + bias). */
S_AVX512 static inline void s_pool16_vec(float *out, uint8_t *am, __m512 v0, __m512 v1, __m512 v2,
                                __m512 v3, __m512 bias, bool relu)
{
    __m512 m = v0;
    __m512i a = _mm512_setzero_si512();
    __mmask16 k = _mm512_cmp_ps_mask(v1, m, _CMP_GT_OQ);
    m = _mm512_mask_blend_ps(k, m, v1);
    a = _mm512_mask_mov_epi32(a, k, _mm512_set1_epi32(1));
    k = _mm512_cmp_ps_mask(v2, m, _CMP_GT_OQ);
    m = _mm512_mask_blend_ps(k, m, v2);
    a = _mm512_mask_mov_epi32(a, k, _mm512_set1_epi32(2));
    k = _mm512_cmp_ps_mask(v3, m, _CMP_GT_OQ);
    m = _mm512_mask_blend_ps(k, m, v3);
    a = _mm512_mask_mov_epi32(a, k, _mm512_set1_epi32(3));
    if (relu)
        m = _mm512_max_ps(_mm512_add_ps(m, bias), _mm512_setzero_ps());
    _mm512_storeu_ps(out, m);
    _mm_storeu_si128((__m128i *) am, _mm512_cvtepi32_epi8(a));
}

S_AVX512 static inline void s_pool16(float *out, uint8_t *am, const float *p0, const float *p1,
                            const float *p2, const float *p3, __m512 bias, bool relu)
{
    s_pool16_vec(out, am, _mm512_loadu_ps(p0), _mm512_loadu_ps(p1), _mm512_loadu_ps(p2),
                 _mm512_loadu_ps(p3), bias, relu);
}

/* Backward of 16 channels of one pooled pixel: g (already ReLU-masked) goes
 * to the argmax cell, zeros to the other three. */
S_AVX512 static inline void s_unpool16(float *d0, float *d1, float *d2, float *d3, __m512 g,
                              const uint8_t *am)
{
    __m512i a = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *) am));
    _mm512_storeu_ps(d0, _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(a, _mm512_set1_epi32(0)), g));
    _mm512_storeu_ps(d1, _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(a, _mm512_set1_epi32(1)), g));
    _mm512_storeu_ps(d2, _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(a, _mm512_set1_epi32(2)), g));
    _mm512_storeu_ps(d3, _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(a, _mm512_set1_epi32(3)), g));
}
S_AVX512 static void s_pool_forward16(float *out, uint8_t *argmax, const float *in,
                                      const float *bias, int B, int H, int W, int C, bool relu)
{
    const int OH = H / 2, OW = W / 2;
    for (int b = 0; b < B; b++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                size_t o = (((size_t) b * OH + oh) * OW + ow) * C;
                const float *p0 = in + (((size_t) b * H + 2 * oh) * W + 2 * ow) * C;
                for (int c = 0; c < C; c += 16)
                    s_pool16(out + o + c, argmax + o + c, p0 + c, p0 + C + c,
                             p0 + (size_t) W * C + c, p0 + (size_t) W * C + C + c,
                             relu ? _mm512_loadu_ps(bias + c) : _mm512_setzero_ps(), relu);
            }
}

S_AVX512 static void s_pool_backward16(float *din, float *dbias, const float *dout,
                                       const float *out, const uint8_t *argmax,
                                       int B, int H, int W, int C)
{
    const int OH = H / 2, OW = W / 2;
    for (int c = 0; c < C; c += 16) {
        __m512 db = _mm512_setzero_ps();
        for (int b = 0; b < B; b++)
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++) {
                    size_t o = (((size_t) b * OH + oh) * OW + ow) * C + c;
                    float *d0 = din + (((size_t) b * H + 2 * oh) * W + 2 * ow) * C + c;
                    __m512 g = _mm512_loadu_ps(dout + o);
                    if (dbias) {
                        __mmask16 on = _mm512_cmp_ps_mask(_mm512_loadu_ps(out + o),
                                                          _mm512_setzero_ps(), _CMP_GT_OQ);
                        g = _mm512_maskz_mov_ps(on, g);
                        db = _mm512_add_ps(db, g);
                    }
                    s_unpool16(d0, d0 + C, d0 + (size_t) W * C, d0 + (size_t) W * C + C,
                               g, argmax + o);
                }
        if (dbias)
            _mm512_storeu_ps(dbias + c, db);
    }
}


/* Forward for 16 output channels oc0..oc0+15: each step computes a 2 x 8 block
 * of conv outputs (two rows, eight columns) in 16 registers by broadcast-FMA
 * over the K*K taps, then pools it into 4 outputs. */
S_AVX512 static void s_conv1ch_fwd16(float *out, uint8_t *argmax, const float *in, const float *weight,
                            const float *bias, int B, int H, int W, int OC, int K, int oc0)
{
    const int KK = K * K, OH = H - K + 1, OW = W - K + 1, PH = OH / 2, PW = OW / 2;
    float wt[BN_KERNELS_MAX_KK * 16] __attribute__((aligned(64)));
    for (int k = 0; k < KK; k++)
        for (int c = 0; c < 16; c++)
            wt[k * 16 + c] = weight[(size_t) (oc0 + c) * KK + k];
    const __m512 vb = _mm512_loadu_ps(bias + oc0);
    for (int b = 0; b < B; b++)
        for (int ph = 0; ph < PH; ph++)
            for (int ow0 = 0; ow0 < OW; ow0 += 8) {
                __m512 a0[8], a1[8];
                for (int j = 0; j < 8; j++)
                    a0[j] = a1[j] = _mm512_setzero_ps();
                const float *r = in + ((size_t) b * H + 2 * ph) * W + ow0;
                for (int ki = 0; ki < K; ki++)
                    for (int kj = 0; kj < K; kj++) {
                        const __m512 w = _mm512_load_ps(wt + (ki * K + kj) * 16);
                        const float *s0 = r + (size_t) ki * W + kj, *s1 = s0 + W;
                        for (int j = 0; j < 8; j++) {
                            a0[j] = _mm512_fmadd_ps(_mm512_set1_ps(s0[j]), w, a0[j]);
                            a1[j] = _mm512_fmadd_ps(_mm512_set1_ps(s1[j]), w, a1[j]);
                        }
                    }
                for (int pj = 0; pj < 4; pj++) {
                    size_t o = (((size_t) b * PH + ph) * PW + ow0 / 2 + pj) * OC + oc0;
                    s_pool16_vec(out + o, argmax + o, a0[2 * pj], a0[2 * pj + 1],
                                 a1[2 * pj], a1[2 * pj + 1], vb, true);
                }
            }
}

/* Backward for 16 output channels: the pooled gradient is expanded to the
 * 2 x 8 block of conv outputs in registers (ReLU and argmax masks), then
 * every tap's weight gradient gathers the 16 products. */
S_AVX512 static void s_conv1ch_bwd16(float *dweight, float *dbias, const float *dout, const float *out,
                            const uint8_t *argmax, const float *in,
                            int B, int H, int W, int OC, int K, int oc0)
{
    const int KK = K * K, OH = H - K + 1, OW = W - K + 1, PH = OH / 2, PW = OW / 2;
    float dwt[BN_KERNELS_MAX_KK * 16] __attribute__((aligned(64)));
    memset(dwt, 0, sizeof dwt);
    __m512 db = _mm512_setzero_ps();
    const __m512i q0 = _mm512_set1_epi32(0), q1 = _mm512_set1_epi32(1);
    const __m512i q2 = _mm512_set1_epi32(2), q3 = _mm512_set1_epi32(3);
    for (int b = 0; b < B; b++)
        for (int ph = 0; ph < PH; ph++)
            for (int ow0 = 0; ow0 < OW; ow0 += 8) {
                __m512 g0[8], g1[8];
                for (int pj = 0; pj < 4; pj++) {
                    size_t o = (((size_t) b * PH + ph) * PW + ow0 / 2 + pj) * OC + oc0;
                    __mmask16 on = _mm512_cmp_ps_mask(_mm512_loadu_ps(out + o),
                                                      _mm512_setzero_ps(), _CMP_GT_OQ);
                    __m512 g = _mm512_maskz_loadu_ps(on, dout + o);
                    db = _mm512_add_ps(db, g);
                    __m512i a = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *) (argmax + o)));
                    g0[2 * pj]     = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(a, q0), g);
                    g0[2 * pj + 1] = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(a, q1), g);
                    g1[2 * pj]     = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(a, q2), g);
                    g1[2 * pj + 1] = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(a, q3), g);
                }
                const float *r = in + ((size_t) b * H + 2 * ph) * W + ow0;
                for (int ki = 0; ki < K; ki++)
                    for (int kj = 0; kj < K; kj++) {
                        const float *s0 = r + (size_t) ki * W + kj, *s1 = s0 + W;
                        __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
                        for (int j = 0; j < 8; j++) {
                            acc0 = _mm512_fmadd_ps(_mm512_set1_ps(s0[j]), g0[j], acc0);
                            acc1 = _mm512_fmadd_ps(_mm512_set1_ps(s1[j]), g1[j], acc1);
                        }
                        float *d = dwt + (ki * K + kj) * 16;
                        _mm512_store_ps(d, _mm512_add_ps(_mm512_load_ps(d), _mm512_add_ps(acc0, acc1)));
                    }
            }
    for (int k = 0; k < KK; k++)
        for (int c = 0; c < 16; c++)
            dweight[(size_t) (oc0 + c) * KK + k] = dwt[k * 16 + c];
    _mm512_storeu_ps(dbias + oc0, db);
}

/* ---- Winograd F(4x4, 5x5): kernels_winograd.h with zmm vectors --------- */

#define S_TARGET S_AVX512
#define V        __m512
#define VW       16
#define VZERO()        _mm512_setzero_ps()
#define VLOAD(p)       _mm512_loadu_ps(p)
#define VSTORE(p, v)   _mm512_storeu_ps((p), (v))
#define VSET1(x)       _mm512_set1_ps(x)
#define VFMA(a, b, c)  _mm512_fmadd_ps((a), (b), (c))
#define VADD(a, b)     _mm512_add_ps((a), (b))
#define VSUB(a, b)     _mm512_sub_ps((a), (b))
#define VMUL(a, b)     _mm512_mul_ps((a), (b))
/* 32 zmm: forward 8 tiles x 32 output channels, input gradient 16 tiles x
 * 16 input channels, weight gradient 8 input x 32 output channels: 16
 * accumulators each. */
#define S_WG_T    8
#define S_WG_NV   2
#define S_WG_TX   16
#define S_WG_NC   1
#define S_WG_CB   8
#include "kernels_winograd.h"

/* ---- the set: shape checks, then the kernels above -------------------- */

static bool s_conv_forward(float *out, const float *in, const float *weight_hwio,
                           int B, int H, int W, int C, int OC, int K)
{
    const int OW = W - K + 1;
    if (OW % 8 != 0 || (OC != 16 && OC != 32))
        return false;
    if (K == 5 && OC == 16)
        s_conv_direct16_k5(out, in, weight_hwio, B, H, W, C);
    else if (K == 5)
        s_conv_direct32_k5(out, in, weight_hwio, B, H, W, C);
    else if (OC == 16)
        s_conv_direct16(out, in, weight_hwio, B, H, W, C, K);
    else
        s_conv_direct32(out, in, weight_hwio, B, H, W, C, K);
    return true;
}

static bool s_conv_backward(float *din, float *dweight_ohwi, const float *dout,
                            const float *in, const float *weight_ohwi,
                            int B, int H, int W, int C, int OC, int K)
{
    const int OW = W - K + 1;
    if (C != 16 || OC % 16 != 0 || OW % 8 != 0)
        return false;
    if (K == 5 && OC % 4 == 0) {
        s_conv_dw_c16_k5(dweight_ohwi, dout, in, B, H, W, OC);
        if (din)
            s_conv_dx_c16_k5(din, dout, weight_ohwi, B, H, W, OC);
        return true;
    }
    s_conv_dw_c16(dweight_ohwi, dout, in, B, H, W, OC, K);
    if (din)
        s_conv_dx_c16(din, dout, weight_ohwi, B, H, W, OC, K);
    return true;
}

static bool s_pool_forward(float *out, uint8_t *argmax, const float *in, const float *bias,
                           int B, int H, int W, int C, bool relu)
{
    if (C % 16 != 0)
        return false;
    s_pool_forward16(out, argmax, in, bias, B, H, W, C, relu);
    return true;
}

static bool s_pool_backward(float *din, float *dbias, const float *dout, const float *out,
                            const uint8_t *argmax, int B, int H, int W, int C)
{
    if (C % 16 != 0)
        return false;
    s_pool_backward16(din, dbias, dout, out, argmax, B, H, W, C);
    return true;
}

static bool s_conv1ch_forward(float *out, uint8_t *argmax, const float *in, const float *weight,
                              const float *bias, int B, int H, int W, int OC, int K)
{
    const int OW = W - K + 1;
    if (OC % 16 != 0 || OW % 8 != 0 || K * K > BN_KERNELS_MAX_KK)
        return false;
    for (int oc0 = 0; oc0 < OC; oc0 += 16)
        s_conv1ch_fwd16(out, argmax, in, weight, bias, B, H, W, OC, K, oc0);
    return true;
}

static bool s_conv1ch_backward(float *dweight, float *dbias, const float *dout, const float *out,
                               const uint8_t *argmax, const float *in,
                               int B, int H, int W, int OC, int K)
{
    const int OW = W - K + 1;
    if (OC % 16 != 0 || OW % 8 != 0 || K * K > BN_KERNELS_MAX_KK)
        return false;
    for (int oc0 = 0; oc0 < OC; oc0 += 16)
        s_conv1ch_bwd16(dweight, dbias, dout, out, argmax, in, B, H, W, OC, K, oc0);
    return true;
}

const bn_kernel_set_t bn_kernel_set_avx512 = {
    .name = "avx512", .available = true,
    .conv_forward = s_conv_forward, .conv_backward = s_conv_backward,
    .pool_forward = s_pool_forward, .pool_backward = s_pool_backward,
    .conv1ch_forward = s_conv1ch_forward, .conv1ch_backward = s_conv1ch_backward,
    .conv_forward_winograd = s_wg_forward, .conv_backward_winograd = s_wg_backward,
};

#else

const bn_kernel_set_t bn_kernel_set_avx512 = { .name = "avx512", .available = false };

#endif
