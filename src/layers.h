/*  layers.h -- stateless layer kernels (forward and backward) for model.c.
 *
 *  llm.c style: every kernel is a plain function of its buffers and shapes;
 *  nothing is allocated and nothing is remembered between calls.  Shapes are
 *  written as [dim][dim]... in row-major order.
 *
 *  Layout: image tensors are CHANNELS-LAST (NHWC: [B][H][W][C]) so that the
 *  channel vector of one pixel is contiguous; that makes im2col a handful of
 *  memcpy's, the convolution one large sgemm, and pooling / ReLU / bias plain
 *  vector loops over channels.  Convolution weights passed to the kernels are
 *  [OC][K][K][C] ("OHWI"); bn_conv_weight_to_ohwi()/_to_oihw() convert from
 *  and to PyTorch's [OC][C][K][K] layout, which is what the flat parameter
 *  vector stores.  Fully connected weights are PyTorch's [OUT][IN].
 *
 *  Gradient outputs (din, dweight, dbias) are OVERWRITTEN, never accumulated.
 *  Convolutions are "valid" (no padding), stride 1, square K x K kernels.
 *  Max-pooling is 2 x 2, stride 2, on even H and W; ties go to the first
 *  maximum in row-major window order, as in PyTorch.
 */
#ifndef BN_LAYERS_H
#define BN_LAYERS_H

#include "common.h"

/* ---- kernel sets ---------------------------------------------------------
 *
 * The direct convolutions, conv2's Winograd passes, the pooling passes and
 * the fused first layer have one implementation per instruction set; ONE
 * set is in use per process.  All sets compute the same values up to float rounding (ties in
 * pooling resolved identically) and every kernel keeps working on every set:
 * a shape a set is not blocked for runs the portable loops.
 *   portable -- plain C for the build's baseline (x86-64: SSE2); conv2 of the
 *               CNN goes through im2col + sgemm
 *   sse4     -- SSE4.1, 4 floats per vector, no FMA (x86-64 without AVX2)
 *   avx2     -- AVX2 + FMA, 8 floats per vector (x86-64)
 *   avx512   -- AVX-512F, 16 floats per vector (x86-64)
 *   neon     -- Advanced SIMD, 4 floats per vector (aarch64)
 * The x86 sets are compiled into every x86-64 build (function-level target
 * attributes), so a build for the baseline CPU still uses them where the CPU
 * has them. */
typedef enum {
    BN_KERNELS_PORTABLE,
    BN_KERNELS_SSE4,
    BN_KERNELS_AVX2,
    BN_KERNELS_AVX512,
    BN_KERNELS_NEON,
    BN_KERNELS_COUNT
} bn_kernels_t;

/* "portable", "sse4", "avx2", "avx512", "neon" (static; "unknown" out of range). */
const char *bn_kernels_name(bn_kernels_t k);
/* Name -> set; BN_EARG for anything else. */
int bn_kernels_parse(const char *name, bn_kernels_t *k);
/* True when set k is compiled into this build AND this CPU can run it. */
bool bn_kernels_supported(bn_kernels_t k);
/* The fastest supported set: avx512, else avx2, else sse4, else neon, else
 * portable. */
bn_kernels_t bn_kernels_best(void);
/* Start-up choice: the set named by the environment variable BN_KERNELS if
 * set (BN_EARG and a message in err, naming the CPU's features, when it is
 * not a set name or the CPU or build lacks it: a forced path is never
 * silently replaced), else bn_kernels_best(); logs one INFO line saying
 * which set and why.  Call once, before threads start. */
int bn_kernels_init(char *err, size_t errlen);
/* Switches to set k (tests and benchmarks compare sets this way); BN_EARG,
 * nothing changed, if unsupported.  Process-wide, not thread-safe: call
 * while no kernel runs. */
int bn_kernels_select(bn_kernels_t k);
/* The set in use.  If neither bn_kernels_init nor bn_kernels_select ran
 * yet, runs bn_kernels_init first, and on its failure prints the message
 * and exits with status 2 (a forced set that cannot run is never ignored). */
bn_kernels_t bn_kernels_current(void);

/* ---- convolution ------------------------------------------------------ */

/* Weight layout conversion: src [OC][C][K][K] -> dst [OC][K][K][C] and back.
 * src and dst must not overlap. */
void bn_conv_weight_to_ohwi(float *dst, const float *src, int OC, int C, int K);
void bn_conv_weight_to_oihw(float *dst, const float *src, int OC, int C, int K);

/* im2col for NHWC input: in [B][H][W][C] -> col [B*OH*OW][K*K*C], row
 * (b, oh, ow), column (ki, kj, c); OH = H - K + 1, OW = W - K + 1. */
void bn_im2col_nhwc(float *col, const float *in, int B, int H, int W, int C, int K);

/* Adjoint of bn_im2col_nhwc: din [B][H][W][C] = sum of the patches in dcol
 * [B*OH*OW][K*K*C] at their positions.  din is overwritten. */
void bn_col2im_nhwc(float *din, const float *dcol, int B, int H, int W, int C, int K);

/* out [B][OH][OW][OC] = conv(in [B][H][W][C], weight [OC][K][K][C]) + bias [OC]
 * (bias may be NULL: no bias).  col is scratch of B*OH*OW*K*K*C floats; it
 * is left holding im2col(in), which bn_conv2d_backward needs. */
void bn_conv2d_forward(float *out, float *col, const float *in, const float *weight,
                       const float *bias, int B, int H, int W, int C, int OC, int K);

/* Backward of bn_conv2d_forward given dout [B][OH][OW][OC] and the col that
 * forward left: dweight [OC][K][K][C] and dbias [OC] (NULL: skipped) are
 * overwritten.  If din != NULL, din [B][H][W][C] is overwritten with the input
 * gradient, using dcol (B*OH*OW*K*K*C floats) as scratch; dcol MAY be the
 * same buffer as col (col is then destroyed).  With din == NULL (first layer)
 * dcol is unused and may be NULL. */
void bn_conv2d_backward(float *din, float *dcol, float *dweight, float *dbias,
                        const float *dout, const float *col, const float *weight,
                        int B, int H, int W, int C, int OC, int K);

/* Direct (no im2col) convolution for NHWC input: out [B][OH][OW][OC] =
 * conv(in [B][H][W][C], weight [K][K][C][OC] ("HWIO")), no bias.  Register-
 * blocked in the SIMD sets (avx512: OC 16 or 32, OW % 8 == 0; avx2 and neon:
 * OC % 16 == 0, OW % 4 == 0), portable loops otherwise.  Same values as
 * bn_conv2d_forward up to float rounding. */
void bn_conv2d_forward_direct(float *out, const float *in, const float *weight_hwio,
                              int B, int H, int W, int C, int OC, int K);
/* Backward of bn_conv2d_forward_direct, also without im2col: dweight
 * [OC][K][K][C] ("OHWI") overwritten from dout [B][OH][OW][OC] and in; if
 * din != NULL, din [B][H][W][C] overwritten using weight [OC][K][K][C].
 * SIMD sets when C == 16 (avx512: OC % 16 == 0, OW % 8 == 0; avx2 and neon:
 * OC % 4 == 0, OW % 4 == 0); portable otherwise. */
void bn_conv2d_backward_direct(float *din, float *dweight_ohwi, const float *dout,
                               const float *in, const float *weight_ohwi,
                               int B, int H, int W, int C, int OC, int K);
/* Winograd F(4x4, 5x5) versions of the two above, same arguments and
 * results up to float rounding (about 1e-5 relative: tests/test_layers.c),
 * plus scratch of bn_conv2d_winograd_scratch(C, OC) floats, which the caller
 * owns (allocate once; contents are not kept between calls).  Where the
 * kernel set has them (avx512, avx2, sse4, neon) and the shape fits (K == 5, OH
 * and OW multiples of 4, C and OC multiples of 16 -- avx512: OC of 32),
 * they run and return true; otherwise they run the direct kernels above
 * and return false.  6.25x fewer multiply-adds in the channel sums; see
 * src/kernels_winograd.h. */
size_t bn_conv2d_winograd_scratch(int C, int OC);
bool bn_conv2d_forward_winograd(float *out, float *scratch, const float *in,
                                const float *weight_hwio, int B, int H, int W, int C, int OC,
                                int K);
bool bn_conv2d_backward_winograd(float *din, float *dweight_ohwi, float *scratch,
                                 const float *dout, const float *in, const float *weight_ohwi,
                                 int B, int H, int W, int C, int OC, int K);
/* src [OC][C][K][K] (PyTorch) -> dst [K][K][C][OC]; no overlap. */
void bn_conv_weight_to_hwio(float *dst, const float *src, int OC, int C, int K);

/* ---- pointwise and pooling ---------------------------------------------- */

/* out[i] = max(in[i], 0); out may equal in. */
void bn_relu_forward(float *out, const float *in, size_t n);
/* din[i] = out[i] > 0 ? dout[i] : 0, where out is the forward output; din may equal dout. */
void bn_relu_backward(float *din, const float *dout, const float *out, size_t n);

/* out [B][H/2][W/2][C] = 2x2 max of in [B][H][W][C]; argmax (same shape as
 * out) records which of the 4 window cells (0..3, row-major) won. */
void bn_maxpool2_forward(float *out, uint8_t *argmax, const float *in,
                         int B, int H, int W, int C);
/* din [B][H][W][C] (overwritten, zeros off the argmax) from dout [B][H/2][W/2][C]. */
void bn_maxpool2_backward(float *din, const float *dout, const uint8_t *argmax,
                          int B, int H, int W, int C);

/* Fused conv epilogue: out = maxpool2(relu(in + bias)), computed as
 * max(0, max4(in) + bias[c]) (equal, since bias is constant per channel and
 * ReLU is monotone).  Shapes as bn_maxpool2_forward; bias [C]. */
void bn_bias_relu_maxpool2_forward(float *out, uint8_t *argmax, const float *in,
                                   const float *bias, int B, int H, int W, int C);
/* Backward of the fused epilogue: din [B][H][W][C] (overwritten) and dbias [C]
 * (overwritten) from dout [B][H/2][W/2][C], the forward out and argmax. */
void bn_bias_relu_maxpool2_backward(float *din, float *dbias, const float *dout,
                                    const float *out, const uint8_t *argmax,
                                    int B, int H, int W, int C);

/* Layout changes: NHWC [B][H][W][C] <-> NCHW [B][C][H][W] (PyTorch's flatten order). */
void bn_nhwc_to_nchw(float *dst, const float *src, int B, int H, int W, int C);
void bn_nchw_to_nhwc(float *dst, const float *src, int B, int H, int W, int C);

/* ---- fused first layer (single input channel) ------------------------- */

/* out [B][OH/2][OW/2][OC] = maxpool2(relu(conv(in, weight) + bias)) for a
 * single-channel input in [B][H][W] and weight [OC][K][K] (PyTorch layout,
 * C = 1); argmax as bn_maxpool2_forward.  Equal to bn_conv2d_forward followed
 * by bn_bias_relu_maxpool2_forward, without im2col or the full-resolution
 * output (SIMD sets when OC % 16 == 0 -- neon: % 8 -- and OW % 8 == 0 --
 * avx2: % 2, neon: % 4 -- and K*K <= 64).  OH, OW even. */
void bn_conv1ch_relu_pool_forward(float *out, uint8_t *argmax, const float *in,
                                  const float *weight, const float *bias,
                                  int B, int H, int W, int OC, int K);
/* Its backward for the weights only (a first layer needs no input gradient):
 * dweight [OC][K][K] and dbias [OC] overwritten from dout [B][OH/2][OW/2][OC],
 * the forward out and argmax, and the input. */
void bn_conv1ch_relu_pool_backward(float *dweight, float *dbias, const float *dout,
                                   const float *out, const uint8_t *argmax, const float *in,
                                   int B, int H, int W, int OC, int K);

/* ---- fully connected ------------------------------------------------------ */

/* out [B][OUT] = in [B][IN] * weight[OUT][IN]^T + bias [OUT]. */
void bn_fc_forward(float *out, const float *in, const float *weight, const float *bias,
                   int B, int IN, int OUT);
/* dweight [OUT][IN], dbias [OUT] overwritten; din [B][IN] overwritten unless
 * NULL.  din may be the same buffer as in (in is read first). */
void bn_fc_backward(float *din, float *dweight, float *dbias, const float *dout,
                    const float *in, const float *weight, int B, int IN, int OUT);

/* ---- loss -------------------------------------------------------------- */

/* Softmax cross-entropy of logits [B][NC] against labels [B] (each < NC),
 * mean over the batch.  Returns the mean loss; if dlogits != NULL writes
 * d(mean loss)/d(logits) [B][NC] (may equal logits); if correct != NULL adds
 * the number of rows whose first maximal logit is the label. */
float bn_softmax_xent(float *dlogits, const float *logits, const uint8_t *labels,
                      int B, int NC, uint32_t *correct);

#endif
