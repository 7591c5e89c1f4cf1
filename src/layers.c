/*  layers.c -- stateless layer kernels; see layers.h for layouts and shapes.
 *
 *  Matrix products go through cblas_sgemm (OpenBLAS, row-major).  Everything
 *  else is written as simple loops over the contiguous channel dimension so
 *  that the compiler vectorises them; restrict says which buffers never alias.
 */
#include "layers.h"

#include <assert.h>
#include <cblas.h>
#include <math.h>
#include <string.h>

/* AVX-512 kernels are compiled on every x86-64 gcc/clang build (with a
 * target attribute) and chosen at run time, so -Dnative=false builds still
 * use them on CPUs that have AVX-512; elsewhere the portable loops run. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define S_AVX512_CODE 1
#define S_AVX512 __attribute__((target("avx512f")))
#include <immintrin.h>
#else
#define S_AVX512_CODE 0
#endif

static bool s_force_portable = false;

void bn_layers_force_portable(bool on)
{
    s_force_portable = on;
}

static bool s_use_avx512(void)
{
    if (s_force_portable)
        return false;
#if defined(__AVX512F__)
    return true;
#elif S_AVX512_CODE
    static int cached = -1;          /* benign race: every thread stores the same value */
    if (cached < 0)
        cached = __builtin_cpu_supports("avx512f") ? 1 : 0;
    return cached == 1;
#else
    return false;
#endif
}

bool bn_layers_vectorised(void)
{
    return s_use_avx512();
}

/* ---- convolution ------------------------------------------------------ */

void bn_conv_weight_to_ohwi(float *restrict dst, const float *restrict src,
                            int OC, int C, int K)
{
    const int KK = K * K;
    for (int o = 0; o < OC; o++)
        for (int c = 0; c < C; c++)
            for (int k = 0; k < KK; k++)
                dst[((size_t) o * KK + k) * C + c] = src[((size_t) o * C + c) * KK + k];
}

void bn_conv_weight_to_oihw(float *restrict dst, const float *restrict src,
                            int OC, int C, int K)
{
    const int KK = K * K;
    for (int o = 0; o < OC; o++)
        for (int c = 0; c < C; c++)
            for (int k = 0; k < KK; k++)
                dst[((size_t) o * C + c) * KK + k] = src[((size_t) o * KK + k) * C + c];
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
    const int KK = K * K;
    for (int o = 0; o < OC; o++)
        for (int c = 0; c < C; c++)
            for (int k = 0; k < KK; k++)
                dst[((size_t) k * C + c) * OC + o] = src[((size_t) o * C + c) * KK + k];
}

#if S_AVX512_CODE
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
#endif

void bn_conv2d_forward_direct(float *out, const float *in, const float *weight_hwio,
                              int B, int H, int W, int C, int OC, int K)
{
    const int OH = H - K + 1, OW = W - K + 1;
#if S_AVX512_CODE
    if (OW % 8 == 0 && (OC == 16 || OC == 32) && s_use_avx512()) {
        if (OC == 16)
            s_conv_direct16(out, in, weight_hwio, B, H, W, C, K);
        else
            s_conv_direct32(out, in, weight_hwio, B, H, W, C, K);
        return;
    }
#endif
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

#if S_AVX512_CODE
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
#endif

void bn_conv2d_backward_direct(float *din, float *dweight_ohwi, const float *dout,
                               const float *in, const float *weight_ohwi,
                               int B, int H, int W, int C, int OC, int K)
{
    const int OH = H - K + 1, OW = W - K + 1, KK = K * K;
#if S_AVX512_CODE
    if (C == 16 && OC % 16 == 0 && OW % 8 == 0 && s_use_avx512()) {
        s_conv_dw_c16(dweight_ohwi, dout, in, B, H, W, OC, K);
        if (din)
            s_conv_dx_c16(din, dout, weight_ohwi, B, H, W, OC, K);
        return;
    }
#endif
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

#if S_AVX512_CODE
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
#endif

static void s_pool_forward(float *out, uint8_t *argmax, const float *in, const float *bias,
                           int B, int H, int W, int C, bool relu)
{
    assert(H % 2 == 0 && W % 2 == 0);
    const int OH = H / 2, OW = W / 2;
#if S_AVX512_CODE
    if (C % 16 == 0 && s_use_avx512()) {
        s_pool_forward16(out, argmax, in, bias, B, H, W, C, relu);
        return;
    }
#endif
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
#if S_AVX512_CODE
    if (C % 16 == 0 && s_use_avx512()) {
        s_pool_backward16(din, dbias, dout, out, argmax, B, H, W, C);
        return;
    }
#endif
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
    const size_t HW = (size_t) H * W;
    for (int b = 0; b < B; b++) {
        const float *s = src + (size_t) b * HW * C;
        float *d = dst + (size_t) b * HW * C;
        for (size_t p = 0; p < HW; p++)
            for (int c = 0; c < C; c++)
                d[c * HW + p] = s[p * C + c];
    }
}

void bn_nchw_to_nhwc(float *restrict dst, const float *restrict src, int B, int H, int W, int C)
{
    const size_t HW = (size_t) H * W;
    for (int b = 0; b < B; b++) {
        const float *s = src + (size_t) b * HW * C;
        float *d = dst + (size_t) b * HW * C;
        for (size_t p = 0; p < HW; p++)
            for (int c = 0; c < C; c++)
                d[p * C + c] = s[c * HW + p];
    }
}

/* ---- fused first layer (single input channel) ------------------------- */

#if S_AVX512_CODE
enum { S_MAX_KK = 64 };

/* Forward for 16 output channels oc0..oc0+15: each step computes a 2 x 8 block
 * of conv outputs (two rows, eight columns) in 16 registers by broadcast-FMA
 * over the K*K taps, then pools it into 4 outputs. */
S_AVX512 static void s_conv1ch_fwd16(float *out, uint8_t *argmax, const float *in, const float *weight,
                            const float *bias, int B, int H, int W, int OC, int K, int oc0)
{
    const int KK = K * K, OH = H - K + 1, OW = W - K + 1, PH = OH / 2, PW = OW / 2;
    float wt[S_MAX_KK * 16] __attribute__((aligned(64)));
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
    float dwt[S_MAX_KK * 16] __attribute__((aligned(64)));
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
#endif

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
#if S_AVX512_CODE
    if (OC % 16 == 0 && OW % 8 == 0 && K * K <= S_MAX_KK && s_use_avx512()) {
        for (int oc0 = 0; oc0 < OC; oc0 += 16)
            s_conv1ch_fwd16(out, argmax, in, weight, bias, B, H, W, OC, K, oc0);
        return;
    }
#endif
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
#if S_AVX512_CODE
    if (OC % 16 == 0 && OW % 8 == 0 && KK <= S_MAX_KK && s_use_avx512()) {
        for (int oc0 = 0; oc0 < OC; oc0 += 16)
            s_conv1ch_bwd16(dweight, dbias, dout, out, argmax, in, B, H, W, OC, K, oc0);
        return;
    }
#endif
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
