/*  kernels_simd.h -- register-blocked kernels written once over a small
 *  vector vocabulary, instantiated by kernels_avx2.c (8 floats per vector),
 *  kernels_sse.c and kernels_neon.c (4 floats per vector).
 *
 *  PRIVATE: included only by those files, once each, after they define
 *    S_TARGET                 attribute put on every function (or nothing)
 *    V, VW                    vector type and its float count
 *    VZERO() VLOAD(p) VSTORE(p, v) VSET1(x) VFMA(a, b, c) (= a * b + c) VADD(a, b)
 *    VSUB(a, b) VMUL(a, b)
 *    VI, s_am_load(am)        VW argmax bytes widened to a vector
 *    s_am_pick(a, q, g)       g where the argmax is q, 0 elsewhere
 *    s_relu_mask(g, y)        g where y > 0, 0 elsewhere
 *    s_pool4(out, am, v0, v1, v2, v3, bias, relu)
 *                             VW channels of one pooled pixel from the four
 *                             window cells (row-major), strict '>' so the
 *                             first maximum wins; with relu max(0, m + bias)
 *    S_CONV_PX, S_CONV_NV     conv forward block: PX output pixels of a row x
 *                             NV vectors of output channels
 *    S_DW_NO                  weight gradient block: NO output channels x
 *                             16 input channels per tap
 *    S_DX_PX                  input gradient block: PX input pixels x 16 channels
 *    S_C1_PC, S_C1_NV         fused first layer: 2 rows x PC columns x NV vectors
 *    S_WG_T S_WG_NV S_WG_TX S_WG_NC S_WG_CB
 *                             Winograd GEMM blocks (kernels_winograd.h)
 *    S_WG_ON                  1: the set uses the Winograd conv2 passes
 *                             (0 where they measured slower than the direct ones)
 *    S_SET                    name of the bn_kernel_set_t to define
 *    S_SET_NAME               its string name
 *  The blocks are chosen so that accumulators + loaded operands fit the
 *  ISA's register file (16 ymm for AVX2, 16 xmm for SSE, 32 q registers for
 *  NEON) and every loop below them has compile-time trip counts, so they
 *  stay in registers.
 *  Same shapes, layouts and results (up to float rounding) as layers.h.
 *  At the end, kernels_winograd.h adds the Winograd F(4x4, 5x5) conv2
 *  passes over the same vocabulary (kernels_avx512.c instantiates that
 *  header too, with its own zmm vocabulary); with AVX2 on Zen 4 they took
 *  conv2 forward from 907 to 229 us and backward from 2313 to 472 us per
 *  batch of 60.
 */
#ifndef BN_KERNELS_SIMD_H
#define BN_KERNELS_SIMD_H

#include <string.h>

/* ---- conv forward: out [B][OH][OW][OC] from HWIO weights -------------- */

/* One block of S_CONV_NV * VW output channels starting at oc0, for every
 * output pixel; S_CONV_PX x S_CONV_NV accumulators across K*K*C taps. */
S_TARGET static void s_conv_fwd_block(float *out, const float *in, const float *wt,
                                      int B, int H, int W, int C, int OC, int K, int oc0)
{
    const int OH = H - K + 1, OW = W - K + 1;
    for (int b = 0; b < B; b++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow0 = 0; ow0 < OW; ow0 += S_CONV_PX) {
                V acc[S_CONV_PX][S_CONV_NV];
                for (int j = 0; j < S_CONV_PX; j++)
                    for (int v = 0; v < S_CONV_NV; v++)
                        acc[j][v] = VZERO();
                for (int ki = 0; ki < K; ki++)
                    for (int kj = 0; kj < K; kj++) {
                        const float *src = in + (((size_t) b * H + oh + ki) * W + ow0 + kj) * C;
                        const float *w = wt + (size_t) (ki * K + kj) * C * OC + oc0;
                        for (int c = 0; c < C; c++, w += OC) {
                            V wv[S_CONV_NV];
                            for (int v = 0; v < S_CONV_NV; v++)
                                wv[v] = VLOAD(w + VW * v);
                            for (int j = 0; j < S_CONV_PX; j++) {
                                const V x = VSET1(src[(size_t) j * C + c]);
                                for (int v = 0; v < S_CONV_NV; v++)
                                    acc[j][v] = VFMA(x, wv[v], acc[j][v]);
                            }
                        }
                    }
                float *o = out + (((size_t) b * OH + oh) * OW + ow0) * OC + oc0;
                for (int j = 0; j < S_CONV_PX; j++)
                    for (int v = 0; v < S_CONV_NV; v++)
                        VSTORE(o + (size_t) j * OC + VW * v, acc[j][v]);
            }
}

static bool s_conv_forward(float *out, const float *in, const float *weight_hwio,
                           int B, int H, int W, int C, int OC, int K)
{
    const int OW = W - K + 1;
    if (OW % S_CONV_PX != 0 || OC % (S_CONV_NV * VW) != 0)
        return false;
    for (int oc0 = 0; oc0 < OC; oc0 += S_CONV_NV * VW)
        s_conv_fwd_block(out, in, weight_hwio, B, H, W, C, OC, K, oc0);
    return true;
}

/* ---- conv backward for 16 input channels ------------------------------- */

enum { S_CB = 16, S_NX = S_CB / VW };   /* input channels, and vectors of them */

/* dweight (OHWI): per tap and S_DW_NO output channels, S_DW_NO x S_NX
 * accumulators (vectors over the 16 input channels) run over every output
 * pixel of the batch. */
S_TARGET static void s_conv_dw_c16(float *dw, const float *dout, const float *in,
                                   int B, int H, int W, int OC, int K)
{
    const int OH = H - K + 1, OW = W - K + 1, KK = K * K;
    for (int ki = 0; ki < K; ki++)
        for (int kj = 0; kj < K; kj++)
            for (int oc0 = 0; oc0 < OC; oc0 += S_DW_NO) {
                V acc[S_DW_NO][S_NX];
                for (int o = 0; o < S_DW_NO; o++)
                    for (int v = 0; v < S_NX; v++)
                        acc[o][v] = VZERO();
                for (int b = 0; b < B; b++)
                    for (int oh = 0; oh < OH; oh++) {
                        const float *x = in + (((size_t) b * H + oh + ki) * W + kj) * S_CB;
                        const float *g = dout + ((size_t) b * OH + oh) * OW * OC + oc0;
                        for (int ow = 0; ow < OW; ow++, x += S_CB, g += OC) {
                            V xv[S_NX];
                            for (int v = 0; v < S_NX; v++)
                                xv[v] = VLOAD(x + VW * v);
                            for (int o = 0; o < S_DW_NO; o++) {
                                const V gs = VSET1(g[o]);
                                for (int v = 0; v < S_NX; v++)
                                    acc[o][v] = VFMA(gs, xv[v], acc[o][v]);
                            }
                        }
                    }
                for (int o = 0; o < S_DW_NO; o++)
                    for (int v = 0; v < S_NX; v++)
                        VSTORE(dw + ((size_t) (oc0 + o) * KK + ki * K + kj) * S_CB + VW * v,
                               acc[o][v]);
            }
}

/* din: for S_DX_PX output pixels of a row and one tap, the S_DX_PX input
 * pixels they touch are S_DX_PX x S_NX vectors; each output channel adds
 * weight x dout. */
S_TARGET static void s_conv_dx_c16(float *din, const float *dout, const float *w,
                                   int B, int H, int W, int OC, int K)
{
    const int OH = H - K + 1, OW = W - K + 1, KK = K * K;
    memset(din, 0, (size_t) B * H * W * S_CB * sizeof(float));
    for (int b = 0; b < B; b++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow0 = 0; ow0 < OW; ow0 += S_DX_PX) {
                const float *g = dout + (((size_t) b * OH + oh) * OW + ow0) * OC;
                for (int ki = 0; ki < K; ki++)
                    for (int kj = 0; kj < K; kj++) {
                        float *d = din + (((size_t) b * H + oh + ki) * W + ow0 + kj) * S_CB;
                        V acc[S_DX_PX][S_NX];
                        for (int j = 0; j < S_DX_PX; j++)
                            for (int v = 0; v < S_NX; v++)
                                acc[j][v] = VLOAD(d + j * S_CB + VW * v);
                        const float *wk = w + (size_t) (ki * K + kj) * S_CB;
                        for (int oc = 0; oc < OC; oc++) {
                            V wv[S_NX];
                            for (int v = 0; v < S_NX; v++)
                                wv[v] = VLOAD(wk + (size_t) oc * KK * S_CB + VW * v);
                            for (int j = 0; j < S_DX_PX; j++) {
                                const V gs = VSET1(g[(size_t) j * OC + oc]);
                                for (int v = 0; v < S_NX; v++)
                                    acc[j][v] = VFMA(gs, wv[v], acc[j][v]);
                            }
                        }
                        for (int j = 0; j < S_DX_PX; j++)
                            for (int v = 0; v < S_NX; v++)
                                VSTORE(d + j * S_CB + VW * v, acc[j][v]);
                    }
            }
}

static bool s_conv_backward(float *din, float *dweight_ohwi, const float *dout,
                            const float *in, const float *weight_ohwi,
                            int B, int H, int W, int C, int OC, int K)
{
    const int OW = W - K + 1;
    if (C != S_CB || OC % S_DW_NO != 0 || OW % S_DX_PX != 0)
        return false;
    s_conv_dw_c16(dweight_ohwi, dout, in, B, H, W, OC, K);
    if (din)
        s_conv_dx_c16(din, dout, weight_ohwi, B, H, W, OC, K);
    return true;
}

/* ---- pooling, with or without bias + ReLU ------------------------------ */

S_TARGET static void s_pool_fwd(float *out, uint8_t *argmax, const float *in, const float *bias,
                                int B, int H, int W, int C, bool relu)
{
    const int OH = H / 2, OW = W / 2;
    for (int b = 0; b < B; b++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                size_t o = (((size_t) b * OH + oh) * OW + ow) * C;
                const float *p0 = in + (((size_t) b * H + 2 * oh) * W + 2 * ow) * C;
                const float *p2 = p0 + (size_t) W * C;
                for (int c = 0; c < C; c += VW)
                    s_pool4(out + o + c, argmax + o + c, VLOAD(p0 + c), VLOAD(p0 + C + c),
                            VLOAD(p2 + c), VLOAD(p2 + C + c),
                            relu ? VLOAD(bias + c) : VZERO(), relu);
            }
}

static bool s_pool_forward(float *out, uint8_t *argmax, const float *in, const float *bias,
                           int B, int H, int W, int C, bool relu)
{
    if (C % VW != 0)
        return false;
    s_pool_fwd(out, argmax, in, bias, B, H, W, C, relu);
    return true;
}

S_TARGET static void s_pool_bwd(float *din, float *dbias, const float *dout, const float *out,
                                const uint8_t *argmax, int B, int H, int W, int C)
{
    const int OH = H / 2, OW = W / 2;
    for (int c = 0; c < C; c += VW) {
        V db = VZERO();
        for (int b = 0; b < B; b++)
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++) {
                    size_t o = (((size_t) b * OH + oh) * OW + ow) * C + c;
                    float *d0 = din + (((size_t) b * H + 2 * oh) * W + 2 * ow) * C + c;
                    float *d2 = d0 + (size_t) W * C;
                    V g = VLOAD(dout + o);
                    if (dbias) {
                        g = s_relu_mask(g, VLOAD(out + o));
                        db = VADD(db, g);
                    }
                    const VI a = s_am_load(argmax + o);
                    VSTORE(d0, s_am_pick(a, 0, g));
                    VSTORE(d0 + C, s_am_pick(a, 1, g));
                    VSTORE(d2, s_am_pick(a, 2, g));
                    VSTORE(d2 + C, s_am_pick(a, 3, g));
                }
        if (dbias)
            VSTORE(dbias + c, db);
    }
}

static bool s_pool_backward(float *din, float *dbias, const float *dout, const float *out,
                            const uint8_t *argmax, int B, int H, int W, int C)
{
    if (C % VW != 0)
        return false;
    s_pool_bwd(din, dbias, dout, out, argmax, B, H, W, C);
    return true;
}

/* ---- fused first layer (single input channel) -------------------------- */

enum { S_C1_OCB = S_C1_NV * VW };      /* output channels per block */

/* Forward for S_C1_OCB channels from oc0: a 2 x S_C1_PC block of conv
 * outputs in registers by broadcast-FMA over the K*K taps, then pooled into
 * S_C1_PC / 2 outputs. */
S_TARGET static void s_conv1ch_fwd_block(float *out, uint8_t *argmax, const float *in,
                                         const float *weight, const float *bias,
                                         int B, int H, int W, int OC, int K, int oc0)
{
    const int KK = K * K, OH = H - K + 1, OW = W - K + 1, PH = OH / 2, PW = OW / 2;
    float wt[BN_KERNELS_MAX_KK * S_C1_OCB] __attribute__((aligned(64)));
    for (int k = 0; k < KK; k++)
        for (int c = 0; c < S_C1_OCB; c++)
            wt[k * S_C1_OCB + c] = weight[(size_t) (oc0 + c) * KK + k];
    V vb[S_C1_NV];
    for (int v = 0; v < S_C1_NV; v++)
        vb[v] = VLOAD(bias + oc0 + VW * v);
    for (int b = 0; b < B; b++)
        for (int ph = 0; ph < PH; ph++)
            for (int ow0 = 0; ow0 < OW; ow0 += S_C1_PC) {
                V a0[S_C1_PC][S_C1_NV], a1[S_C1_PC][S_C1_NV];
                for (int j = 0; j < S_C1_PC; j++)
                    for (int v = 0; v < S_C1_NV; v++)
                        a0[j][v] = a1[j][v] = VZERO();
                const float *r = in + ((size_t) b * H + 2 * ph) * W + ow0;
                for (int ki = 0; ki < K; ki++)
                    for (int kj = 0; kj < K; kj++) {
                        V wv[S_C1_NV];
                        for (int v = 0; v < S_C1_NV; v++)
                            wv[v] = VLOAD(wt + (ki * K + kj) * S_C1_OCB + VW * v);
                        const float *s0 = r + (size_t) ki * W + kj, *s1 = s0 + W;
                        for (int j = 0; j < S_C1_PC; j++) {
                            const V x0 = VSET1(s0[j]), x1 = VSET1(s1[j]);
                            for (int v = 0; v < S_C1_NV; v++) {
                                a0[j][v] = VFMA(x0, wv[v], a0[j][v]);
                                a1[j][v] = VFMA(x1, wv[v], a1[j][v]);
                            }
                        }
                    }
                for (int pj = 0; pj < S_C1_PC / 2; pj++) {
                    size_t o = (((size_t) b * PH + ph) * PW + ow0 / 2 + pj) * OC + oc0;
                    for (int v = 0; v < S_C1_NV; v++)
                        s_pool4(out + o + VW * v, argmax + o + VW * v, a0[2 * pj][v],
                                a0[2 * pj + 1][v], a1[2 * pj][v], a1[2 * pj + 1][v], vb[v], true);
                }
            }
}

/* Backward for S_C1_OCB channels: the pooled gradient is expanded to the
 * 2 x S_C1_PC block of conv outputs in registers (ReLU and argmax masks),
 * then every tap's weight gradient gathers the products. */
S_TARGET static void s_conv1ch_bwd_block(float *dweight, float *dbias, const float *dout,
                                         const float *out, const uint8_t *argmax, const float *in,
                                         int B, int H, int W, int OC, int K, int oc0)
{
    const int KK = K * K, OH = H - K + 1, OW = W - K + 1, PH = OH / 2, PW = OW / 2;
    float dwt[BN_KERNELS_MAX_KK * S_C1_OCB] __attribute__((aligned(64)));
    memset(dwt, 0, sizeof dwt);
    V db[S_C1_NV];
    for (int v = 0; v < S_C1_NV; v++)
        db[v] = VZERO();
    for (int b = 0; b < B; b++)
        for (int ph = 0; ph < PH; ph++)
            for (int ow0 = 0; ow0 < OW; ow0 += S_C1_PC) {
                V g0[S_C1_PC][S_C1_NV], g1[S_C1_PC][S_C1_NV];
                for (int pj = 0; pj < S_C1_PC / 2; pj++) {
                    size_t o = (((size_t) b * PH + ph) * PW + ow0 / 2 + pj) * OC + oc0;
                    for (int v = 0; v < S_C1_NV; v++) {
                        const V g = s_relu_mask(VLOAD(dout + o + VW * v), VLOAD(out + o + VW * v));
                        db[v] = VADD(db[v], g);
                        const VI a = s_am_load(argmax + o + VW * v);
                        g0[2 * pj][v]     = s_am_pick(a, 0, g);
                        g0[2 * pj + 1][v] = s_am_pick(a, 1, g);
                        g1[2 * pj][v]     = s_am_pick(a, 2, g);
                        g1[2 * pj + 1][v] = s_am_pick(a, 3, g);
                    }
                }
                const float *r = in + ((size_t) b * H + 2 * ph) * W + ow0;
                for (int ki = 0; ki < K; ki++)
                    for (int kj = 0; kj < K; kj++) {
                        const float *s0 = r + (size_t) ki * W + kj, *s1 = s0 + W;
                        V acc[S_C1_NV];
                        for (int v = 0; v < S_C1_NV; v++)
                            acc[v] = VZERO();
                        for (int j = 0; j < S_C1_PC; j++) {
                            const V x0 = VSET1(s0[j]), x1 = VSET1(s1[j]);
                            for (int v = 0; v < S_C1_NV; v++)
                                acc[v] = VFMA(x1, g1[j][v], VFMA(x0, g0[j][v], acc[v]));
                        }
                        float *d = dwt + (ki * K + kj) * S_C1_OCB;
                        for (int v = 0; v < S_C1_NV; v++)
                            VSTORE(d + VW * v, VADD(VLOAD(d + VW * v), acc[v]));
                    }
            }
    for (int k = 0; k < KK; k++)
        for (int c = 0; c < S_C1_OCB; c++)
            dweight[(size_t) (oc0 + c) * KK + k] = dwt[k * S_C1_OCB + c];
    for (int v = 0; v < S_C1_NV; v++)
        VSTORE(dbias + oc0 + VW * v, db[v]);
}

static bool s_conv1ch_forward(float *out, uint8_t *argmax, const float *in, const float *weight,
                              const float *bias, int B, int H, int W, int OC, int K)
{
    const int OW = W - K + 1;
    if (OC % S_C1_OCB != 0 || OW % S_C1_PC != 0 || K * K > BN_KERNELS_MAX_KK)
        return false;
    for (int oc0 = 0; oc0 < OC; oc0 += S_C1_OCB)
        s_conv1ch_fwd_block(out, argmax, in, weight, bias, B, H, W, OC, K, oc0);
    return true;
}

static bool s_conv1ch_backward(float *dweight, float *dbias, const float *dout, const float *out,
                               const uint8_t *argmax, const float *in,
                               int B, int H, int W, int OC, int K)
{
    const int OW = W - K + 1;
    if (OC % S_C1_OCB != 0 || OW % S_C1_PC != 0 || K * K > BN_KERNELS_MAX_KK)
        return false;
    for (int oc0 = 0; oc0 < OC; oc0 += S_C1_OCB)
        s_conv1ch_bwd_block(dweight, dbias, dout, out, argmax, in, B, H, W, OC, K, oc0);
    return true;
}

/* ---- Winograd F(4x4, 5x5) for K == 5 --------------------------------- */

#include "kernels_winograd.h"

const bn_kernel_set_t S_SET = {
    .name = S_SET_NAME, .available = true,
    .conv_forward = s_conv_forward, .conv_backward = s_conv_backward,
    .pool_forward = s_pool_forward, .pool_backward = s_pool_backward,
    .conv1ch_forward = s_conv1ch_forward, .conv1ch_backward = s_conv1ch_backward,
    .conv_forward_winograd = S_WG_ON ? s_wg_forward : NULL,
    .conv_backward_winograd = S_WG_ON ? s_wg_backward : NULL,
};

#endif
