/*  layers.c -- stateless layer kernels; see layers.h for layouts and shapes.
 *
 *  Matrix products go through cblas_sgemm (OpenBLAS, row-major).  The
 *  portable kernels here are simple loops over the contiguous channel
 *  dimension that the compiler vectorises for the build's baseline; restrict
 *  says which buffers never alias.  The direct convolutions, pooling passes
 *  and the fused first layer also have per-ISA versions (kernels_avx512.c,
 *  kernels_avx2.c, kernels_sse.c, kernels_neon.c, behind kernels.h), one set of which is
 *  chosen once per process: the best the CPU has, or BN_KERNELS.  A set
 *  entry that declines a shape falls back to the portable loop here.
 */
#include "layers.h"

#include "kernels.h"

#include <assert.h>
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- kernel set selection ------------------------------------------------ */

static const char *const s_kernels_names[BN_KERNELS_COUNT] = {
    [BN_KERNELS_PORTABLE] = "portable",
    [BN_KERNELS_SSE4]     = "sse4",
    [BN_KERNELS_AVX2]     = "avx2",
    [BN_KERNELS_AVX512]   = "avx512",
    [BN_KERNELS_NEON]     = "neon",
};

/* The portable set: no entries, every kernel runs the loops in this file. */
static const bn_kernel_set_t s_portable_set = { .name = "portable", .available = true };

static const bn_kernel_set_t *s_sets[BN_KERNELS_COUNT] = {
    [BN_KERNELS_PORTABLE] = &s_portable_set,
    [BN_KERNELS_SSE4]     = &bn_kernel_set_sse4,
    [BN_KERNELS_AVX2]     = &bn_kernel_set_avx2,
    [BN_KERNELS_AVX512]   = &bn_kernel_set_avx512,
    [BN_KERNELS_NEON]     = &bn_kernel_set_neon,
};

static int s_current = -1;           /* bn_kernels_t once chosen; -1 before  */

const char *bn_kernels_name(bn_kernels_t k)
{
    return (unsigned) k < BN_KERNELS_COUNT ? s_kernels_names[k] : "unknown";
}

int bn_kernels_parse(const char *name, bn_kernels_t *k)
{
    if (!name || !k)
        return BN_EARG;
    for (int i = 0; i < BN_KERNELS_COUNT; i++)
        if (strcmp(name, s_kernels_names[i]) == 0) {
            *k = (bn_kernels_t) i;
            return BN_OK;
        }
    return BN_EARG;
}

/* What the CPU reports, without asking whether the set was compiled in. */
static bool s_cpu_has(bn_kernels_t k)
{
    switch (k) {
    case BN_KERNELS_PORTABLE:
        return true;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    case BN_KERNELS_SSE4:
        return __builtin_cpu_supports("sse4.1");
    case BN_KERNELS_AVX2:
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case BN_KERNELS_AVX512:
        return __builtin_cpu_supports("avx512f");
#endif
#if defined(__aarch64__)
    case BN_KERNELS_NEON:
        return true;                 /* Advanced SIMD is aarch64 baseline    */
#endif
    default:
        return false;
    }
}

bool bn_kernels_supported(bn_kernels_t k)
{
    return (unsigned) k < BN_KERNELS_COUNT && s_sets[k]->available && s_cpu_has(k);
}

bn_kernels_t bn_kernels_best(void)
{
    static const bn_kernels_t order[] = { BN_KERNELS_AVX512, BN_KERNELS_AVX2, BN_KERNELS_SSE4,
                                          BN_KERNELS_NEON };
    for (size_t i = 0; i < BN_ARRAY_LEN(order); i++)
        if (bn_kernels_supported(order[i]))
            return order[i];
    return BN_KERNELS_PORTABLE;
}

int bn_kernels_select(bn_kernels_t k)
{
    if (!bn_kernels_supported(k))
        return BN_EARG;
    s_current = (int) k;
    return BN_OK;
}

/* "sse4.1 avx2 fma avx512f" or "neon" or "none": what the CPU offers, for messages. */
static void s_cpu_features(char *buf, size_t len)
{
    buf[0] = '\0';
    size_t used = 0;
    const char *have[5];
    size_t n = 0;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (__builtin_cpu_supports("sse4.1"))
        have[n++] = "sse4.1";
    if (__builtin_cpu_supports("avx2"))
        have[n++] = "avx2";
    if (__builtin_cpu_supports("fma"))
        have[n++] = "fma";
    if (__builtin_cpu_supports("avx512f"))
        have[n++] = "avx512f";
#elif defined(__aarch64__)
    have[n++] = "neon";
#endif
    if (n == 0)
        have[n++] = "none of sse4.1/avx2/fma/avx512f/neon";
    for (size_t i = 0; i < n && used + 1 < len; i++) {
        int w = snprintf(buf + used, len - used, "%s%s", i ? " " : "", have[i]);
        if (w < 0)
            break;
        used += (size_t) w;
    }
}

int bn_kernels_init(char *err, size_t errlen)
{
    char cpu[96];
    s_cpu_features(cpu, sizeof cpu);
    const char *env = getenv("BN_KERNELS");
    bn_kernels_t k = bn_kernels_best();
    if (env && *env) {
        if (bn_kernels_parse(env, &k) != BN_OK)
            return bn_fail(err, errlen, BN_EARG,
                           "BN_KERNELS=%s: not a kernel set (portable, sse4, avx2, avx512, neon)",
                           env);
        if (!bn_kernels_supported(k))
            return bn_fail(err, errlen, BN_EARG,
                           "BN_KERNELS=%s: this %s cannot run it (CPU has: %s)", env,
                           s_sets[k]->available ? "CPU" : "build", cpu);
    }
    s_current = (int) k;
    BN_INFO("kernels: %s (%s; CPU has: %s)", bn_kernels_name(k),
            env && *env ? "forced by BN_KERNELS" : "best this CPU supports", cpu);
    return BN_OK;
}

bn_kernels_t bn_kernels_current(void)
{
    if (s_current < 0) {
        /* A program that did not call bn_kernels_init: do it now; a bad
         * BN_KERNELS is a request that cannot be honoured, so stop. */
        char err[160];
        if (bn_kernels_init(err, sizeof err) != BN_OK) {
            fprintf(stderr, "byznode: %s\n", err);
            exit(2);
        }
    }
    return (bn_kernels_t) s_current;
}

static const bn_kernel_set_t *s_set(void)
{
    return s_sets[bn_kernels_current()];
}

/* ---- convolution ------------------------------------------------------ */

/* dst[j * ds + i] = src[i * ss + j] for i < rows, j < cols, in 8 x 8 tiles:
 * a tile's 8 source rows and 8 destination rows stay in L1 while it is
 * copied.  Element by element along a source row, each store went to another
 * cache line at a stride of 2 KB for conv2's HWIO weights (a few cache
 * sets): 21-34 us per step for conv2's two weight layouts. */
static void s_transpose2d(float *restrict dst, size_t ds, const float *restrict src, size_t ss,
                          size_t rows, size_t cols)
{
    enum { T = 8 };
    for (size_t i0 = 0; i0 < rows; i0 += T)
        for (size_t j0 = 0; j0 < cols; j0 += T) {
            const size_t ni = BN_MIN(rows - i0, (size_t) T), nj = BN_MIN(cols - j0, (size_t) T);
            if (ni == T && nj == T) {
                for (size_t j = j0; j < j0 + T; j++)
                    for (size_t i = i0; i < i0 + T; i++)
                        dst[j * ds + i] = src[i * ss + j];
            } else {
                for (size_t j = j0; j < j0 + nj; j++)
                    for (size_t i = i0; i < i0 + ni; i++)
                        dst[j * ds + i] = src[i * ss + j];
            }
        }
}

/* dst[o][b][a] = src[o][a][b] for src of shape [O][A][B]: the two weight
 * layouts, and the two image layouts (bn_nhwc_to_nchw), are this
 * transposition of each other's inner two axes. */
static void s_transpose_inner(float *restrict dst, const float *restrict src, size_t O, size_t A,
                              size_t B)
{
    for (size_t o = 0; o < O; o++)
        s_transpose2d(dst + o * A * B, A, src + o * A * B, B, A, B);
}

void bn_conv_weight_to_ohwi(float *restrict dst, const float *restrict src,
                            int OC, int C, int K)
{
    s_transpose_inner(dst, src, OC, C, (size_t) K * K);      /* [OC][C][KK] -> [OC][KK][C] */
}

void bn_conv_weight_to_oihw(float *restrict dst, const float *restrict src,
                            int OC, int C, int K)
{
    s_transpose_inner(dst, src, OC, (size_t) K * K, C);      /* [OC][KK][C] -> [OC][C][KK] */
}

void bn_im2col_nhwc(float *restrict col, const float *restrict in,
                    int B, int H, int W, int C, int K)
{
    const int OH = H - K + 1, OW = W - K + 1;
    const size_t seg = (size_t) K * C;           /* one kernel row: K pixels x C */
    for (int b = 0; b < B; b++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                float *dst = col + (((size_t) b * OH + oh) * OW + ow) * K * seg;
                const float *src = in + (((size_t) b * H + oh) * W + ow) * C;
                for (int ki = 0; ki < K; ki++)
                    memcpy(dst + ki * seg, src + (size_t) ki * W * C, seg * sizeof(float));
            }
}

void bn_col2im_nhwc(float *restrict din, const float *restrict dcol,
                    int B, int H, int W, int C, int K)
{
    const int OH = H - K + 1, OW = W - K + 1;
    const size_t seg = (size_t) K * C;
    memset(din, 0, (size_t) B * H * W * C * sizeof(float));
    for (int b = 0; b < B; b++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                const float *src = dcol + (((size_t) b * OH + oh) * OW + ow) * K * seg;
                float *dst = din + (((size_t) b * H + oh) * W + ow) * C;
                for (int ki = 0; ki < K; ki++) {
                    float *restrict d = dst + (size_t) ki * W * C;
                    const float *restrict s = src + ki * seg;
                    for (size_t i = 0; i < seg; i++)
                        d[i] += s[i];
                }
            }
}

/* dbias[c] = sum over rows of m [rows][C]. */
static void s_column_sums(float *restrict dbias, const float *restrict m, size_t rows, int C)
{
    memset(dbias, 0, (size_t) C * sizeof(float));
    for (size_t r = 0; r < rows; r++)
        for (int c = 0; c < C; c++)
            dbias[c] += m[r * C + c];
}

void bn_conv2d_forward(float *out, float *col, const float *in, const float *weight,
                       const float *bias, int B, int H, int W, int C, int OC, int K)
{
    const int OH = H - K + 1, OW = W - K + 1;
    const int M = B * OH * OW, KKC = K * K * C;
    bn_im2col_nhwc(col, in, B, H, W, C, K);
    /* out [M][OC] = col [M][KKC] * weight [OC][KKC]^T */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, OC, KKC,
                1.0f, col, KKC, weight, KKC, 0.0f, out, OC);
    if (bias)
        for (int r = 0; r < M; r++)
            for (int o = 0; o < OC; o++)
                out[(size_t) r * OC + o] += bias[o];
}

void bn_conv2d_backward(float *din, float *dcol, float *dweight, float *dbias,
                        const float *dout, const float *col, const float *weight,
                        int B, int H, int W, int C, int OC, int K)
{
    const int OH = H - K + 1, OW = W - K + 1;
    const int M = B * OH * OW, KKC = K * K * C;
    /* dweight [OC][KKC] = dout [M][OC]^T * col [M][KKC]; before dcol may overwrite col. */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, KKC, M,
                1.0f, dout, OC, col, KKC, 0.0f, dweight, KKC);
    if (dbias)
        s_column_sums(dbias, dout, (size_t) M, OC);
    if (din) {
        /* dcol [M][KKC] = dout [M][OC] * weight [OC][KKC] */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, KKC, OC,
                    1.0f, dout, OC, weight, KKC, 0.0f, dcol, KKC);
        bn_col2im_nhwc(din, dcol, B, H, W, C, K);
    }
}

void bn_conv_weight_to_hwio(float *restrict dst, const float *restrict src, int OC, int C, int K)
{
    const size_t KK = (size_t) K * K;
    /* per input channel c: dst[k][c][o] = src[o][c][k], an [OC][KK] transpose */
    for (int c = 0; c < C; c++)
        s_transpose2d(dst + (size_t) c * OC, (size_t) C * OC, src + c * KK, C * KK, OC, KK);
}


void bn_conv2d_forward_direct(float *out, const float *in, const float *weight_hwio,
                              int B, int H, int W, int C, int OC, int K)
{
    const int OH = H - K + 1, OW = W - K + 1;
    const bn_kernel_set_t *ks = s_set();
    if (ks->conv_forward && ks->conv_forward(out, in, weight_hwio, B, H, W, C, OC, K))
        return;
    for (int b = 0; b < B; b++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                float *restrict o = out + (((size_t) b * OH + oh) * OW + ow) * OC;
                for (int k = 0; k < OC; k++)
                    o[k] = 0.0f;
                for (int ki = 0; ki < K; ki++)
                    for (int kj = 0; kj < K; kj++) {
                        const float *src = in + (((size_t) b * H + oh + ki) * W + ow + kj) * C;
                        const float *w = weight_hwio + (size_t) (ki * K + kj) * C * OC;
                        for (int c = 0; c < C; c++) {
                            const float x = src[c];
                            const float *restrict wc = w + (size_t) c * OC;
                            for (int k = 0; k < OC; k++)
                                o[k] += x * wc[k];
                        }
                    }
            }
}


void bn_conv2d_backward_direct(float *din, float *dweight_ohwi, const float *dout,
                               const float *in, const float *weight_ohwi,
                               int B, int H, int W, int C, int OC, int K)
{
    const int OH = H - K + 1, OW = W - K + 1, KK = K * K;
    const bn_kernel_set_t *ks = s_set();
    if (ks->conv_backward
        && ks->conv_backward(din, dweight_ohwi, dout, in, weight_ohwi, B, H, W, C, OC, K))
        return;
    memset(dweight_ohwi, 0, (size_t) OC * KK * C * sizeof(float));
    if (din)
        memset(din, 0, (size_t) B * H * W * C * sizeof(float));
    for (int b = 0; b < B; b++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                const float *g = dout + (((size_t) b * OH + oh) * OW + ow) * OC;
                for (int ki = 0; ki < K; ki++)
                    for (int kj = 0; kj < K; kj++) {
                        size_t px = (((size_t) b * H + oh + ki) * W + ow + kj) * C;
                        const float *restrict x = in + px;
                        for (int o = 0; o < OC; o++) {
                            const float go = g[o];
                            float *restrict dw = dweight_ohwi + ((size_t) o * KK + ki * K + kj) * C;
                            for (int c = 0; c < C; c++)
                                dw[c] += go * x[c];
                            if (din) {
                                float *restrict d = din + px;
                                const float *restrict wc = weight_ohwi + ((size_t) o * KK + ki * K + kj) * C;
                                for (int c = 0; c < C; c++)
                                    d[c] += go * wc[c];
                            }
                        }
                    }
            }
}

size_t bn_conv2d_winograd_scratch(int C, int OC)
{
    return bn_winograd_scratch_floats(C, OC);
}

bool bn_conv2d_forward_winograd(float *out, float *scratch, const float *in,
                                const float *weight_hwio, int B, int H, int W, int C, int OC,
                                int K)
{
    const bn_kernel_set_t *ks = s_set();
    if (scratch && ks->conv_forward_winograd
        && ks->conv_forward_winograd(out, scratch, in, weight_hwio, B, H, W, C, OC, K))
        return true;
    bn_conv2d_forward_direct(out, in, weight_hwio, B, H, W, C, OC, K);
    return false;
}

bool bn_conv2d_backward_winograd(float *din, float *dweight_ohwi, float *scratch,
                                 const float *dout, const float *in, const float *weight_ohwi,
                                 int B, int H, int W, int C, int OC, int K)
{
    const bn_kernel_set_t *ks = s_set();
    if (scratch && ks->conv_backward_winograd
        && ks->conv_backward_winograd(din, dweight_ohwi, scratch, dout, in, weight_ohwi,
                                      B, H, W, C, OC, K))
        return true;
    bn_conv2d_backward_direct(din, dweight_ohwi, dout, in, weight_ohwi, B, H, W, C, OC, K);
    return false;
}

/* ---- pointwise and pooling ---------------------------------------------- */

void bn_relu_forward(float *out, const float *in, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = in[i] > 0.0f ? in[i] : 0.0f;
}

void bn_relu_backward(float *din, const float *dout, const float *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        din[i] = out[i] > 0.0f ? dout[i] : 0.0f;
}

/* One output pixel of 2x2 pooling over C channels: the four window cells are
 * p0, p0 + C, p0 + W*C, p0 + W*C + C.  Strict '>' keeps the first maximum. */
static inline void s_pool_pixel(float *restrict out, uint8_t *restrict am,
                                const float *restrict p0, const float *restrict p2,
                                const float *restrict bias, int C, bool relu)
{
    const float *restrict p1 = p0 + C, *restrict p3 = p2 + C;
    for (int c = 0; c < C; c++) {
        float m = p0[c];
        uint8_t a = 0;
        a = p1[c] > m ? 1 : a;
        m = p1[c] > m ? p1[c] : m;
        a = p2[c] > m ? 2 : a;
        m = p2[c] > m ? p2[c] : m;
        a = p3[c] > m ? 3 : a;
        m = p3[c] > m ? p3[c] : m;
        if (relu) {
            m += bias[c];
            m = m > 0.0f ? m : 0.0f;
        }
        out[c] = m;
        am[c] = a;
    }
}


static void s_pool_forward(float *out, uint8_t *argmax, const float *in, const float *bias,
                           int B, int H, int W, int C, bool relu)
{
    assert(H % 2 == 0 && W % 2 == 0);
    const int OH = H / 2, OW = W / 2;
    const bn_kernel_set_t *ks = s_set();
    if (ks->pool_forward && ks->pool_forward(out, argmax, in, bias, B, H, W, C, relu))
        return;
    for (int b = 0; b < B; b++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                size_t o = (((size_t) b * OH + oh) * OW + ow) * C;
                const float *p0 = in + (((size_t) b * H + 2 * oh) * W + 2 * ow) * C;
                s_pool_pixel(out + o, argmax + o, p0, p0 + (size_t) W * C, bias, C, relu);
            }
}

void bn_maxpool2_forward(float *out, uint8_t *argmax, const float *in,
                         int B, int H, int W, int C)
{
    s_pool_forward(out, argmax, in, NULL, B, H, W, C, false);
}

void bn_bias_relu_maxpool2_forward(float *out, uint8_t *argmax, const float *in,
                                   const float *bias, int B, int H, int W, int C)
{
    s_pool_forward(out, argmax, in, bias, B, H, W, C, true);
}

static void s_pool_backward(float *din, float *dbias, const float *dout, const float *out,
                            const uint8_t *argmax, int B, int H, int W, int C)
{
    assert(H % 2 == 0 && W % 2 == 0);
    const int OH = H / 2, OW = W / 2;
    if (dbias)
        memset(dbias, 0, (size_t) C * sizeof(float));
    const bn_kernel_set_t *ks = s_set();
    if (ks->pool_backward && ks->pool_backward(din, dbias, dout, out, argmax, B, H, W, C))
        return;
    for (int b = 0; b < B; b++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                size_t o = (((size_t) b * OH + oh) * OW + ow) * C;
                const float *restrict g = dout + o;
                const float *restrict y = out ? out + o : NULL;
                const uint8_t *restrict a = argmax + o;
                float *restrict d0 = din + (((size_t) b * H + 2 * oh) * W + 2 * ow) * C;
                float *restrict d1 = d0 + C;
                float *restrict d2 = d0 + (size_t) W * C;
                float *restrict d3 = d2 + C;
                if (dbias) {
                    for (int c = 0; c < C; c++) {
                        float v = y[c] > 0.0f ? g[c] : 0.0f;
                        dbias[c] += v;
                        d0[c] = a[c] == 0 ? v : 0.0f;
                        d1[c] = a[c] == 1 ? v : 0.0f;
                        d2[c] = a[c] == 2 ? v : 0.0f;
                        d3[c] = a[c] == 3 ? v : 0.0f;
                    }
                } else {
                    for (int c = 0; c < C; c++) {
                        float v = g[c];
                        d0[c] = a[c] == 0 ? v : 0.0f;
                        d1[c] = a[c] == 1 ? v : 0.0f;
                        d2[c] = a[c] == 2 ? v : 0.0f;
                        d3[c] = a[c] == 3 ? v : 0.0f;
                    }
                }
            }
}

void bn_maxpool2_backward(float *din, const float *dout, const uint8_t *argmax,
                          int B, int H, int W, int C)
{
    s_pool_backward(din, NULL, dout, NULL, argmax, B, H, W, C);
}

void bn_bias_relu_maxpool2_backward(float *din, float *dbias, const float *dout,
                                    const float *out, const uint8_t *argmax,
                                    int B, int H, int W, int C)
{
    s_pool_backward(din, dbias, dout, out, argmax, B, H, W, C);
}

void bn_nhwc_to_nchw(float *restrict dst, const float *restrict src, int B, int H, int W, int C)
{
    s_transpose_inner(dst, src, B, (size_t) H * W, C);   /* [B][HW][C] -> [B][C][HW] */
}

void bn_nchw_to_nhwc(float *restrict dst, const float *restrict src, int B, int H, int W, int C)
{
    s_transpose_inner(dst, src, B, C, (size_t) H * W);   /* [B][C][HW] -> [B][HW][C] */
}

/* ---- fused first layer (single input channel) ------------------------- */


/* Portable paths: blocks of 16 output channels with taps transposed to
 * wt[k][16] (zero-padded past OC), so the inner loops over 16 channels
 * vectorise with whatever vector unit the build targets. */
enum { S_GENERIC_MAX_KK = 64 };

static void s_conv1ch_transpose16(float *wt, const float *weight, int OC, int KK, int oc0)
{
    for (int k = 0; k < KK; k++)
        for (int c = 0; c < 16; c++)
            wt[k * 16 + c] = oc0 + c < OC ? weight[(size_t) (oc0 + c) * KK + k] : 0.0f;
}

static void s_conv1ch_fwd_generic(float *out, uint8_t *argmax, const float *in,
                                  const float *weight, const float *bias,
                                  int B, int H, int W, int OC, int K)
{
    const int KK = K * K, OH = H - K + 1, OW = W - K + 1, PH = OH / 2, PW = OW / 2;
    float wt[S_GENERIC_MAX_KK * 16];
    assert(KK <= S_GENERIC_MAX_KK);
    for (int oc0 = 0; oc0 < OC; oc0 += 16) {
        const int n = BN_MIN(16, OC - oc0);
        s_conv1ch_transpose16(wt, weight, OC, KK, oc0);
        for (int b = 0; b < B; b++)
            for (int ph = 0; ph < PH; ph++)
                for (int pw = 0; pw < PW; pw++) {
                    float v[4][16];
                    for (int q = 0; q < 4; q++) {
                        const float *img = in + ((size_t) b * H + 2 * ph + q / 2) * W
                                           + 2 * pw + q % 2;
                        float acc[16] = { 0 };      /* one cell: few registers */
                        for (int ki = 0; ki < K; ki++)
                            for (int kj = 0; kj < K; kj++) {
                                const float xv = img[(size_t) ki * W + kj];
                                const float *w = wt + (ki * K + kj) * 16;
                                for (int c = 0; c < 16; c++)
                                    acc[c] += xv * w[c];
                            }
                        memcpy(v[q], acc, sizeof acc);
                    }
                    size_t o = (((size_t) b * PH + ph) * PW + pw) * OC + oc0;
                    for (int c = 0; c < n; c++) {
                        float m = v[0][c];
                        uint8_t a = 0;
                        for (int q = 1; q < 4; q++)
                            if (v[q][c] > m) {
                                m = v[q][c];
                                a = (uint8_t) q;
                            }
                        m += bias[oc0 + c];
                        out[o + c] = m > 0.0f ? m : 0.0f;
                        argmax[o + c] = a;
                    }
                }
    }
}

static void s_conv1ch_bwd_generic(float *dweight, float *dbias, const float *dout,
                                  const float *out, const uint8_t *argmax, const float *in,
                                  int B, int H, int W, int OC, int K)
{
    const int KK = K * K, OH = H - K + 1, OW = W - K + 1, PH = OH / 2, PW = OW / 2;
    float dwt[S_GENERIC_MAX_KK * 16];
    assert(KK <= S_GENERIC_MAX_KK);
    for (int oc0 = 0; oc0 < OC; oc0 += 16) {
        const int n = BN_MIN(16, OC - oc0);
        float db[16] = { 0 };
        memset(dwt, 0, sizeof dwt);
        for (int b = 0; b < B; b++)
            for (int ph = 0; ph < PH; ph++)
                for (int pw = 0; pw < PW; pw++) {
                    size_t o = (((size_t) b * PH + ph) * PW + pw) * OC + oc0;
                    float g[16], gq[16];
                    uint8_t a[16];
                    for (int c = 0; c < 16; c++) {
                        bool on = c < n && out[o + c] > 0.0f;
                        g[c] = on ? dout[o + c] : 0.0f;
                        a[c] = c < n ? argmax[o + c] : 4;
                        db[c] += g[c];
                    }
                    for (int q = 0; q < 4; q++) {
                        for (int c = 0; c < 16; c++)
                            gq[c] = a[c] == q ? g[c] : 0.0f;
                        const float *img = in + ((size_t) b * H + 2 * ph + q / 2) * W
                                           + 2 * pw + q % 2;
                        for (int ki = 0; ki < K; ki++)
                            for (int kj = 0; kj < K; kj++) {
                                const float xv = img[(size_t) ki * W + kj];
                                float *d = dwt + (ki * K + kj) * 16;
                                for (int c = 0; c < 16; c++)
                                    d[c] += xv * gq[c];
                            }
                    }
                }
        for (int c = 0; c < n; c++) {
            for (int k = 0; k < KK; k++)
                dweight[(size_t) (oc0 + c) * KK + k] = dwt[k * 16 + c];
            dbias[oc0 + c] = db[c];
        }
    }
}

void bn_conv1ch_relu_pool_forward(float *out, uint8_t *argmax, const float *in,
                                  const float *weight, const float *bias,
                                  int B, int H, int W, int OC, int K)
{
    const int OH = H - K + 1, OW = W - K + 1;
    assert(OH % 2 == 0 && OW % 2 == 0);
    (void) OH;
    (void) OW;
    const bn_kernel_set_t *ks = s_set();
    if (ks->conv1ch_forward && ks->conv1ch_forward(out, argmax, in, weight, bias, B, H, W, OC, K))
        return;
    s_conv1ch_fwd_generic(out, argmax, in, weight, bias, B, H, W, OC, K);
}

void bn_conv1ch_relu_pool_backward(float *dweight, float *dbias, const float *dout,
                                   const float *out, const uint8_t *argmax, const float *in,
                                   int B, int H, int W, int OC, int K)
{
    const int OH = H - K + 1, OW = W - K + 1, KK = K * K;
    assert(OH % 2 == 0 && OW % 2 == 0);
    (void) OH;
    (void) OW;
    (void) KK;
    const bn_kernel_set_t *ks = s_set();
    if (ks->conv1ch_backward
        && ks->conv1ch_backward(dweight, dbias, dout, out, argmax, in, B, H, W, OC, K))
        return;
    s_conv1ch_bwd_generic(dweight, dbias, dout, out, argmax, in, B, H, W, OC, K);
}

/* ---- fully connected ------------------------------------------------------ */

void bn_fc_forward(float *out, const float *in, const float *weight, const float *bias,
                   int B, int IN, int OUT)
{
    for (int b = 0; b < B; b++)
        memcpy(out + (size_t) b * OUT, bias, (size_t) OUT * sizeof(float));
    /* out [B][OUT] += in [B][IN] * weight [OUT][IN]^T */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, OUT, IN,
                1.0f, in, IN, weight, IN, 1.0f, out, OUT);
}

void bn_fc_backward(float *din, float *dweight, float *dbias, const float *dout,
                    const float *in, const float *weight, int B, int IN, int OUT)
{
    /* dweight [OUT][IN] = dout [B][OUT]^T * in [B][IN] */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OUT, IN, B,
                1.0f, dout, OUT, in, IN, 0.0f, dweight, IN);
    s_column_sums(dbias, dout, (size_t) B, OUT);
    if (din)  /* din [B][IN] = dout [B][OUT] * weight [OUT][IN] */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, IN, OUT,
                    1.0f, dout, OUT, weight, IN, 0.0f, din, IN);
}

/* ---- loss -------------------------------------------------------------- */

float bn_softmax_xent(float *dlogits, const float *logits, const uint8_t *labels,
                      int B, int NC, uint32_t *correct)
{
    double total = 0.0;
    const float inv_b = 1.0f / (float) B;
    uint32_t hits = 0;
    for (int b = 0; b < B; b++) {
        const float *z = logits + (size_t) b * NC;
        int y = labels[b];
        assert(y < NC);
        int arg = 0;
        float zmax = z[0];
        for (int k = 1; k < NC; k++)
            if (z[k] > zmax) {
                zmax = z[k];
                arg = k;
            }
        hits += arg == y;
        double sum = 0.0;
        for (int k = 0; k < NC; k++)
            sum += exp((double) (z[k] - zmax));
        double logsum = log(sum);
        total += logsum - (double) (z[y] - zmax);
        if (dlogits) {
            float *dz = dlogits + (size_t) b * NC;
            for (int k = 0; k < NC; k++) {
                float p = (float) exp((double) (z[k] - zmax) - logsum);
                dz[k] = (p - (k == y ? 1.0f : 0.0f)) * inv_b;
            }
        }
    }
    if (correct)
        *correct += hits;
    return (float) (total / B);
}
