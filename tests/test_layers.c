/*  test_layers.c -- layer kernels against hand-computed values, a naive
 *  reference convolution and central finite differences.
 *
 *  The whole group runs once per kernel set this CPU supports (portable,
 *  sse4, avx2, avx512, neon: layers.h), selected with bn_kernels_select, so every
 *  check below -- finite differences included -- covers every set; the
 *  comparison tests also hold each set against the portable one.
 *
 *  Gradient checks: every kernel output y is reduced to L = sum(r * y) with a
 *  fixed random r, so dL/dy = r is fed to the backward kernel; each analytic
 *  input/weight/bias gradient is compared with (L(v + h) - L(v - h)) / 2h
 *  evaluated in double.  A checker self-test shows that a 3% error fails.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layers.h"
#include "fixture.h"
#include "rng.h"

static bn_rng_t s_rng;

static void s_fill(float *v, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++)
        v[i] = lo + (hi - lo) * (float) bn_rng_uniform(&s_rng);
}

/* Random values with |v| in [0.1, 1]: away from ReLU's kink. */
static void s_fill_away_from_zero(float *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float m = 0.1f + 0.9f * (float) bn_rng_uniform(&s_rng);
        v[i] = bn_rng_uniform(&s_rng) < 0.5 ? -m : m;
    }
}

static double s_dot(const float *a, const float *b, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double) a[i] * b[i];
    return s;
}

typedef double (*s_loss_fn)(void *ctx);

/* Number of coordinates of var whose analytic gradient disagrees with the
 * central difference: |a - n| > atol + rtol * |n|. */
static int s_grad_mismatches(const char *what, float *var, const float *analytic, size_t n,
                             s_loss_fn loss, void *ctx, float h, double rtol, double atol)
{
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        float keep = var[i];
        var[i] = keep + h;
        double lp = loss(ctx);
        var[i] = keep - h;
        double lm = loss(ctx);
        var[i] = keep;
        double num = (lp - lm) / (2.0 * h);
        double err = fabs(num - analytic[i]);
        if (err > atol + rtol * fabs(num)) {
            if (bad < 5)
                fprintf(stderr, "  %s[%zu]: analytic %.6g numeric %.6g\n", what, i,
                        (double) analytic[i], num);
            bad++;
        }
    }
    return bad;
}

#define RTOL 1e-2
#define ATOL 2e-3

/* ---- convolution ------------------------------------------------------ */

typedef struct {
    int B, H, W, C, OC, K;
    float *in, *w, *b, *out, *col, *r;
} s_conv_t;

static double s_conv_loss(void *ctx)
{
    s_conv_t *c = ctx;
    bn_conv2d_forward(c->out, c->col, c->in, c->w, c->b, c->B, c->H, c->W, c->C, c->OC, c->K);
    size_t n = (size_t) c->B * (c->H - c->K + 1) * (c->W - c->K + 1) * c->OC;
    return s_dot(c->out, c->r, n);
}

static void test_conv2d_gradients(void **state)
{
    (void) state;
    s_conv_t c = { .B = 2, .H = 7, .W = 6, .C = 3, .OC = 4, .K = 3 };
    int OH = c.H - c.K + 1, OW = c.W - c.K + 1;
    size_t nin = (size_t) c.B * c.H * c.W * c.C, nw = (size_t) c.OC * c.K * c.K * c.C;
    size_t nout = (size_t) c.B * OH * OW * c.OC, ncol = (size_t) c.B * OH * OW * c.K * c.K * c.C;
    c.in = bn_alloc_floats(nin);
    c.w = bn_alloc_floats(nw);
    c.b = bn_alloc_floats(c.OC);
    c.out = bn_alloc_floats(nout);
    c.col = bn_alloc_floats(ncol);
    c.r = bn_alloc_floats(nout);
    float *din = bn_alloc_floats(nin), *dw = bn_alloc_floats(nw), *db = bn_alloc_floats(c.OC);
    float *dcol = bn_alloc_floats(ncol);
    s_fill(c.in, nin, -1, 1);
    s_fill(c.w, nw, -0.5f, 0.5f);
    s_fill(c.b, c.OC, -0.5f, 0.5f);
    s_fill(c.r, nout, -1, 1);

    s_conv_loss(&c);
    bn_conv2d_backward(din, dcol, dw, db, c.r, c.col, c.w, c.B, c.H, c.W, c.C, c.OC, c.K);
    assert_int_equal(s_grad_mismatches("conv din", c.in, din, nin, s_conv_loss, &c, 1e-2f, RTOL, ATOL), 0);
    assert_int_equal(s_grad_mismatches("conv dw", c.w, dw, nw, s_conv_loss, &c, 1e-2f, RTOL, ATOL), 0);
    assert_int_equal(s_grad_mismatches("conv db", c.b, db, c.OC, s_conv_loss, &c, 1e-2f, RTOL, ATOL), 0);

    /* dcol may be col itself (the model relies on it): same answers. */
    float *din2 = bn_alloc_floats(nin), *dw2 = bn_alloc_floats(nw);
    s_conv_loss(&c);
    bn_conv2d_backward(din2, c.col, dw2, NULL, c.r, c.col, c.w, c.B, c.H, c.W, c.C, c.OC, c.K);
    for (size_t i = 0; i < nin; i++)
        assert_float_equal(din2[i], din[i], 1e-5);
    for (size_t i = 0; i < nw; i++)
        assert_float_equal(dw2[i], dw[i], 1e-5);
    /* Without din (first layer), the weight gradient is unchanged. */
    s_conv_loss(&c);
    bn_conv2d_backward(NULL, NULL, dw2, NULL, c.r, c.col, NULL, c.B, c.H, c.W, c.C, c.OC, c.K);
    for (size_t i = 0; i < nw; i++)
        assert_float_equal(dw2[i], dw[i], 1e-5);

    bn_free(din2); bn_free(dw2);
    bn_free(c.in); bn_free(c.w); bn_free(c.b); bn_free(c.out); bn_free(c.col); bn_free(c.r);
    bn_free(din); bn_free(dw); bn_free(db); bn_free(dcol);
}

static void test_conv2d_hand_values(void **state)
{
    (void) state;
    /* 1 x 3 x 3 input 1..9, 2 x 2 kernel [[1, 2], [3, 4]], bias 0.5:
     * out[0][0] = 1*1 + 2*2 + 3*4 + 4*5 + 0.5 = 37.5, then 47.5, 67.5, 77.5. */
    float in[9] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
    float w[4] = { 1, 2, 3, 4 }, b[1] = { 0.5f }, out[4], col[16];
    bn_conv2d_forward(out, col, in, w, b, 1, 3, 3, 1, 1, 2);
    assert_float_equal(out[0], 37.5f, 1e-5);
    assert_float_equal(out[1], 47.5f, 1e-5);
    assert_float_equal(out[2], 67.5f, 1e-5);
    assert_float_equal(out[3], 77.5f, 1e-5);

    /* Two channels, NHWC: channel 1 holds 10x channel 0; two output channels with
     * weights (OHWI) selecting channel 0 at (0,0) and channel 1 at (1,1). */
    float in2[18];
    for (int p = 0; p < 9; p++) {
        in2[p * 2 + 0] = (float) (p + 1);
        in2[p * 2 + 1] = 10.0f * (float) (p + 1);
    }
    float w2[2 * 2 * 2 * 2] = { 0 };
    w2[0 * 8 + 0 * 2 + 0] = 1.0f;          /* oc 0: (ki 0, kj 0, c 0) */
    w2[1 * 8 + 3 * 2 + 1] = 1.0f;          /* oc 1: (ki 1, kj 1, c 1) */
    float out2[8], col2[32];
    bn_conv2d_forward(out2, col2, in2, w2, NULL, 1, 3, 3, 2, 2, 2);
    const float expect[8] = { 1, 50, 2, 60, 4, 80, 5, 90 };   /* [oh][ow][oc] */
    for (int i = 0; i < 8; i++)
        assert_float_equal(out2[i], expect[i], 1e-5);
}

static void test_conv2d_matches_nchw_reference(void **state)
{
    (void) state;
    /* PyTorch-layout weights (OIHW) and NCHW input through the layout helpers
     * must equal a naive NCHW convolution. */
    const int B = 2, C = 3, H = 8, W = 7, OC = 5, K = 3, OH = H - K + 1, OW = W - K + 1;
    float in_nchw[2 * 3 * 8 * 7], in_nhwc[2 * 3 * 8 * 7], w_oihw[5 * 3 * 9], w_ohwi[5 * 3 * 9];
    float bias[5], out[2 * 6 * 5 * 5], ref[2 * 5 * 6 * 5], out_nchw[2 * 5 * 6 * 5];
    float col[2 * 6 * 5 * 27];
    s_fill(in_nchw, BN_ARRAY_LEN(in_nchw), -1, 1);
    s_fill(w_oihw, BN_ARRAY_LEN(w_oihw), -1, 1);
    s_fill(bias, 5, -1, 1);
    for (int b = 0; b < B; b++)
        for (int o = 0; o < OC; o++)
            for (int y = 0; y < OH; y++)
                for (int x = 0; x < OW; x++) {
                    double s = bias[o];
                    for (int c = 0; c < C; c++)
                        for (int i = 0; i < K; i++)
                            for (int j = 0; j < K; j++)
                                s += (double) in_nchw[((b * C + c) * H + y + i) * W + x + j]
                                     * w_oihw[((o * C + c) * K + i) * K + j];
                    ref[((b * OC + o) * OH + y) * OW + x] = (float) s;
                }
    bn_nchw_to_nhwc(in_nhwc, in_nchw, B, H, W, C);
    bn_conv_weight_to_ohwi(w_ohwi, w_oihw, OC, C, K);
    bn_conv2d_forward(out, col, in_nhwc, w_ohwi, bias, B, H, W, C, OC, K);
    bn_nhwc_to_nchw(out_nchw, out, B, OH, OW, OC);
    for (size_t i = 0; i < BN_ARRAY_LEN(ref); i++)
        assert_float_equal(out_nchw[i], ref[i], 1e-4);
    /* And the inverse conversions round-trip exactly. */
    float back[5 * 3 * 9], back_in[2 * 3 * 8 * 7];
    bn_conv_weight_to_oihw(back, w_ohwi, OC, C, K);
    assert_memory_equal(back, w_oihw, sizeof back);
    bn_nhwc_to_nchw(back_in, in_nhwc, B, H, W, C);
    assert_memory_equal(back_in, in_nchw, sizeof back_in);
}

/* The set under test (this run of the group), and a switch to the portable
 * set and back for comparisons. */
static bn_kernels_t s_under_test = BN_KERNELS_PORTABLE;

static void s_use(bn_kernels_t k)
{
    assert_int_equal(bn_kernels_select(k), BN_OK);
}

/* Direct convolution (no im2col) with the set under test against the im2col
 * + sgemm kernels, which the finite-difference test above checks: the SIMD
 * shapes (C 16, OC 16 or 32, OW % 8 == 0) and an odd shape no set blocks for. */
static void s_check_conv_direct(int B, int H, int W, int C, int OC)
{
    const int K = 5, OH = H - K + 1, OW = W - K + 1;
    size_t nin = (size_t) B * H * W * C, nw = (size_t) OC * K * K * C, nout = (size_t) B * OH * OW * OC;
    float *in = bn_alloc_floats(nin), *w = bn_alloc_floats(nw), *wo = bn_alloc_floats(nw);
    float *wh = bn_alloc_floats(nw), *g = bn_alloc_floats(nout), *col = bn_alloc_floats(nout / OC * K * K * C);
    float *o1 = bn_alloc_floats(nout), *o2 = bn_alloc_floats(nout);
    float *d1 = bn_alloc_floats(nin), *d2 = bn_alloc_floats(nin), *dw1 = bn_alloc_floats(nw);
    float *dw2 = bn_alloc_floats(nw), *dw3 = bn_alloc_floats(nw);
    s_fill(in, nin, 0, 1);
    s_fill(w, nw, -0.5f, 0.5f);
    s_fill(g, nout, -1, 1);
    bn_conv_weight_to_ohwi(wo, w, OC, C, K);
    bn_conv_weight_to_hwio(wh, w, OC, C, K);
    /* hwio round trip against a direct index computation */
    for (int o = 0; o < OC; o += 3)
        for (int c = 0; c < C; c++)
            for (int k = 0; k < K * K; k++)
                assert_float_equal(wh[((size_t) k * C + c) * OC + o], w[((size_t) o * C + c) * K * K + k], 0);
    bn_conv2d_forward(o1, col, in, wo, NULL, B, H, W, C, OC, K);
    bn_conv2d_backward(d1, col, dw1, NULL, g, col, wo, B, H, W, C, OC, K);
    bn_conv2d_forward_direct(o2, in, wh, B, H, W, C, OC, K);
    bn_conv2d_backward_direct(d2, dw2, g, in, wo, B, H, W, C, OC, K);
    bn_conv2d_backward_direct(NULL, dw3, g, in, wo, B, H, W, C, OC, K);
    for (size_t i = 0; i < nout; i++)
        assert_float_equal(o2[i], o1[i], 1e-4);
    for (size_t i = 0; i < nin; i++)
        assert_float_equal(d2[i], d1[i], 1e-4);
    for (size_t i = 0; i < nw; i++) {
        assert_float_equal(dw2[i], dw1[i], 1e-3);
        assert_float_equal(dw3[i], dw2[i], 0);
    }
    bn_free(in); bn_free(w); bn_free(wo); bn_free(wh); bn_free(g); bn_free(col);
    bn_free(o1); bn_free(o2); bn_free(d1); bn_free(d2); bn_free(dw1); bn_free(dw2); bn_free(dw3);
}

static void test_conv2d_direct(void **state)
{
    (void) state;
    s_check_conv_direct(3, 12, 12, 16, 32);   /* the CNN's conv2 shape */
    s_check_conv_direct(2, 6, 20, 16, 16);    /* OW 16, OC 16 */
    s_check_conv_direct(2, 7, 9, 3, 5);       /* portable loops only */
    s_check_conv_direct(1, 9, 9, 16, 48);     /* OW 5: avx512 declines, others block OC */
}

/* Largest |a - ref| over the largest |ref|: the error relative to the
 * tensor's scale (an elementwise ratio is meaningless for sums that cancel). */
static double s_rel_err(const float *a, const float *ref, size_t n)
{
    double e = 0.0, m = 0.0;
    for (size_t i = 0; i < n; i++) {
        e = fmax(e, fabs((double) a[i] - ref[i]));
        m = fmax(m, fabs((double) ref[i]));
    }
    return m > 0.0 ? e / m : e;
}

/* Winograd F(4x4, 5x5) passes with the set under test against the portable
 * direct loops.  fits: the shape is one the SIMD sets' Winograd kernels take
 * (they must then report that they ran); else they must fall back to the
 * direct kernels.  The bound 2e-5 is about 10x what fp32 F(4, 5) gives here
 * (the transforms' constants up to 21/4 and 16/45 amplify rounding; see
 * kernels_winograd.h); the direct kernels stay at their own tolerances. */
static void s_check_conv_winograd(int B, int H, int W, int C, int OC, bool fits)
{
    const int K = 5, OH = H - K + 1, OW = W - K + 1;
    size_t nin = (size_t) B * H * W * C, nw = (size_t) OC * K * K * C, nout = (size_t) B * OH * OW * OC;
    float *in = bn_alloc_floats(nin), *w = bn_alloc_floats(nw), *wo = bn_alloc_floats(nw);
    float *wh = bn_alloc_floats(nw), *g = bn_alloc_floats(nout);
    float *o1 = bn_alloc_floats(nout), *o2 = bn_alloc_floats(nout);
    float *d1 = bn_alloc_floats(nin), *d2 = bn_alloc_floats(nin), *dw1 = bn_alloc_floats(nw);
    float *dw2 = bn_alloc_floats(nw), *dw3 = bn_alloc_floats(nw);
    float *scratch = bn_alloc_floats(bn_conv2d_winograd_scratch(C, OC));
    s_fill(in, nin, 0, 1);
    s_fill(w, nw, -0.5f, 0.5f);
    s_fill(g, nout, -1, 1);
    bn_conv_weight_to_ohwi(wo, w, OC, C, K);
    bn_conv_weight_to_hwio(wh, w, OC, C, K);
    s_use(BN_KERNELS_PORTABLE);
    bn_conv2d_forward_direct(o1, in, wh, B, H, W, C, OC, K);
    bn_conv2d_backward_direct(d1, dw1, g, in, wo, B, H, W, C, OC, K);
    s_use(s_under_test);
    const bool simd = s_under_test != BN_KERNELS_PORTABLE;
    assert_true(!bn_conv2d_forward_winograd(o2, NULL, in, wh, B, H, W, C, OC, K));  /* no scratch */
    assert_int_equal(bn_conv2d_forward_winograd(o2, scratch, in, wh, B, H, W, C, OC, K),
                     simd && fits);
    assert_int_equal(bn_conv2d_backward_winograd(d2, dw2, scratch, g, in, wo, B, H, W, C, OC, K),
                     simd && fits);
    assert_int_equal(bn_conv2d_backward_winograd(NULL, dw3, scratch, g, in, wo, B, H, W, C, OC, K),
                     simd && fits);
    const double eo = s_rel_err(o2, o1, nout), ed = s_rel_err(d2, d1, nin);
    const double ew = s_rel_err(dw2, dw1, nw);
    printf("    winograd %d x %d x %d x %d -> %d (%s): max error / max |value|: "
           "out %.2g, din %.2g, dweight %.2g\n", B, H, W, C, OC, simd && fits ? "ran" : "direct",
           eo, ed, ew);
    assert_true(eo < 2e-5 && ed < 2e-5 && ew < 2e-5);
    for (size_t i = 0; i < nw; i++)
        assert_float_equal(dw3[i], dw2[i], 0);
    bn_free(in); bn_free(w); bn_free(wo); bn_free(wh); bn_free(g); bn_free(scratch);
    bn_free(o1); bn_free(o2); bn_free(d1); bn_free(d2); bn_free(dw1); bn_free(dw2); bn_free(dw3);
}

static void test_conv2d_winograd(void **state)
{
    (void) state;
    s_check_conv_winograd(3, 12, 12, 16, 32, true);   /* the CNN's conv2 shape */
    s_check_conv_winograd(3, 16, 20, 32, 64, true);   /* 12 x 16 output, a partial chunk */
    s_check_conv_winograd(2, 10, 12, 16, 32, false);  /* OH 6: direct kernels */
    s_check_conv_winograd(1, 12, 12, 16, 16, s_under_test != BN_KERNELS_AVX512);  /* OC 16 */
}

/* Central differences on the direct kernels themselves (linear in each
 * argument, so the check is tight), at the CNN's conv2 shape with the set
 * under test; every 31st coordinate, to keep the portable run (and the
 * aarch64 run under qemu) short. */
typedef struct {
    int B, H, W, C, OC, K;
    float *in, *w_oihw, *wh, *out, *r;
} s_direct_t;

static double s_direct_loss(void *ctx)
{
    s_direct_t *c = ctx;
    bn_conv_weight_to_hwio(c->wh, c->w_oihw, c->OC, c->C, c->K);
    bn_conv2d_forward_direct(c->out, c->in, c->wh, c->B, c->H, c->W, c->C, c->OC, c->K);
    size_t n = (size_t) c->B * (c->H - c->K + 1) * (c->W - c->K + 1) * c->OC;
    return s_dot(c->out, c->r, n);
}

static int s_grad_mismatches_every(const char *what, float *var, const float *analytic,
                                   size_t n, size_t stride, s_loss_fn loss, void *ctx)
{
    int bad = 0;
    for (size_t i = 0; i < n; i += stride)
        bad += s_grad_mismatches(what, var + i, analytic + i, 1, loss, ctx, 1e-2f, RTOL, ATOL);
    return bad;
}

static void test_conv2d_direct_gradients(void **state)
{
    (void) state;
    s_direct_t c = { .B = 1, .H = 12, .W = 12, .C = 16, .OC = 32, .K = 5 };
    const int OH = c.H - c.K + 1, OW = c.W - c.K + 1;
    size_t nin = (size_t) c.B * c.H * c.W * c.C, nw = (size_t) c.OC * c.K * c.K * c.C;
    size_t nout = (size_t) c.B * OH * OW * c.OC;
    c.in = bn_alloc_floats(nin);
    c.w_oihw = bn_alloc_floats(nw);
    c.wh = bn_alloc_floats(nw);
    c.out = bn_alloc_floats(nout);
    c.r = bn_alloc_floats(nout);
    float *wo = bn_alloc_floats(nw), *dwo = bn_alloc_floats(nw), *dw = bn_alloc_floats(nw);
    float *din = bn_alloc_floats(nin);
    s_fill(c.in, nin, -1, 1);
    s_fill(c.w_oihw, nw, -0.2f, 0.2f);
    s_fill(c.r, nout, -1, 1);
    bn_conv_weight_to_ohwi(wo, c.w_oihw, c.OC, c.C, c.K);
    bn_conv2d_backward_direct(din, dwo, c.r, c.in, wo, c.B, c.H, c.W, c.C, c.OC, c.K);
    bn_conv_weight_to_oihw(dw, dwo, c.OC, c.C, c.K);       /* same layout as w_oihw */
    assert_int_equal(s_grad_mismatches_every("direct din", c.in, din, nin, 31,
                                             s_direct_loss, &c), 0);
    assert_int_equal(s_grad_mismatches_every("direct dw", c.w_oihw, dw, nw, 31,
                                             s_direct_loss, &c), 0);
    bn_free(c.in); bn_free(c.w_oihw); bn_free(c.wh); bn_free(c.out); bn_free(c.r);
    bn_free(wo); bn_free(dwo); bn_free(dw); bn_free(din);
}

/* ---- pooling and ReLU ------------------------------------------------- */

static void test_maxpool_hand_values(void **state)
{
    (void) state;
    /* 1 x 4 x 4, one channel.  Window (0,0) = {1, 5, 3, 2}: max 5 at cell 1;
     * window (0,1) = {7, 7, 0, 7}: tie, first wins (cell 0); window (1,0) =
     * {-1, -2, -3, -0.5}: max -0.5 at cell 3; window (1,1) = {0, 0, 9, 0}: cell 2. */
    float in[16] = {
         1,  5,  7, 7,
         3,  2,  0, 7,
        -1, -2,  0, 0,
        -3, -0.5f, 9, 0,
    };
    float out[4], din[16], dout[4] = { 10, 20, 30, 40 };
    uint8_t am[4];
    bn_maxpool2_forward(out, am, in, 1, 4, 4, 1);
    assert_float_equal(out[0], 5, 0);
    assert_float_equal(out[1], 7, 0);
    assert_float_equal(out[2], -0.5f, 0);
    assert_float_equal(out[3], 9, 0);
    assert_int_equal(am[0], 1);
    assert_int_equal(am[1], 0);
    assert_int_equal(am[2], 3);
    assert_int_equal(am[3], 2);
    bn_maxpool2_backward(din, dout, am, 1, 4, 4, 1);
    const float expect[16] = {
        0, 10, 20, 0,
        0,  0,  0, 0,
        0,  0,  0, 0,
        0, 30, 40, 0,
    };
    assert_memory_equal(din, expect, sizeof expect);

    /* Fused bias + ReLU + pool: bias 1 -> max(0, 5+1) = 6, 8, max(0, 0.5) = 0.5, 10;
     * bias -6 -> 0 for the first three windows (ReLU off), 3 for the last. */
    float bias = 1.0f;
    bn_bias_relu_maxpool2_forward(out, am, in, &bias, 1, 4, 4, 1);
    assert_float_equal(out[0], 6, 1e-6);
    assert_float_equal(out[1], 8, 1e-6);
    assert_float_equal(out[2], 0.5f, 1e-6);
    assert_float_equal(out[3], 10, 1e-6);
    bias = -6.0f;
    bn_bias_relu_maxpool2_forward(out, am, in, &bias, 1, 4, 4, 1);
    assert_float_equal(out[0], 0, 0);
    assert_float_equal(out[1], 1, 1e-6);
    assert_float_equal(out[2], 0, 0);
    assert_float_equal(out[3], 3, 1e-6);
    float dbias;
    bn_bias_relu_maxpool2_backward(din, &dbias, dout, out, am, 1, 4, 4, 1);
    assert_float_equal(dbias, 20 + 40, 1e-6);   /* only the two active windows */
    assert_float_equal(din[2], 20, 0);
    assert_float_equal(din[14], 40, 0);
    assert_float_equal(din[1], 0, 0);           /* window 0 is ReLU-off */
}

typedef struct {
    int B, H, W, C;
    bool fused;
    float *in, *bias, *out, *r;
    uint8_t *am;
} s_pool_t;

static double s_pool_loss(void *ctx)
{
    s_pool_t *p = ctx;
    if (p->fused)
        bn_bias_relu_maxpool2_forward(p->out, p->am, p->in, p->bias, p->B, p->H, p->W, p->C);
    else
        bn_maxpool2_forward(p->out, p->am, p->in, p->B, p->H, p->W, p->C);
    return s_dot(p->out, p->r, (size_t) p->B * (p->H / 2) * (p->W / 2) * p->C);
}

static void s_check_pool(bool fused, int C)
{
    s_pool_t p = { .B = 2, .H = 6, .W = 4, .C = C, .fused = fused };
    size_t nin = (size_t) p.B * p.H * p.W * p.C, nout = nin / 4;
    p.in = bn_alloc_floats(nin);
    p.bias = bn_alloc_floats(p.C);
    p.out = bn_alloc_floats(nout);
    p.r = bn_alloc_floats(nout);
    p.am = bn_alloc_aligned(nout);
    float *din = bn_alloc_floats(nin), *dbias = bn_alloc_floats(p.C);
    /* Distinct values (a shuffled grid with spacing 0.05) keep every window's
     * maximum, and the max + bias, at least 0.025 away from a tie or from 0. */
    for (size_t i = 0; i < nin; i++)
        p.in[i] = -3.0f + 0.05f * (float) i + 0.0123f;
    for (size_t i = nin - 1; i > 0; i--) {
        size_t j = bn_rng_below(&s_rng, i + 1);
        float t = p.in[i]; p.in[i] = p.in[j]; p.in[j] = t;
    }
    for (int c = 0; c < p.C; c++)
        p.bias[c] = 0.05f * (float) (c % 5 - 2);
    s_fill(p.r, nout, -1, 1);
    s_pool_loss(&p);
    if (fused)
        bn_bias_relu_maxpool2_backward(din, dbias, p.r, p.out, p.am, p.B, p.H, p.W, p.C);
    else
        bn_maxpool2_backward(din, p.r, p.am, p.B, p.H, p.W, p.C);
    assert_int_equal(s_grad_mismatches("pool din", p.in, din, nin, s_pool_loss, &p, 1e-3f, RTOL, ATOL), 0);
    if (fused)
        assert_int_equal(s_grad_mismatches("pool dbias", p.bias, dbias, p.C, s_pool_loss, &p, 1e-3f, RTOL, ATOL), 0);
    bn_free(p.in); bn_free(p.bias); bn_free(p.out); bn_free(p.r); bn_free(p.am);
    bn_free(din); bn_free(dbias);
}

static void test_maxpool_gradients(void **state)
{
    (void) state;
    /* C = 5 runs the portable loops; the vector path (C % 16 == 0) is held
     * to these by test_maxpool_wide_channels_match_single.  (With C = 32 the
     * grid of distinct values gets large and float rounding of the loss
     * swamps the differences.) */
    s_check_pool(false, 5);
    s_check_pool(true, 5);
}

static void test_maxpool_wide_channels_match_single(void **state)
{
    (void) state;
    /* 16 and 48 channels (vector paths) must equal pooling each channel alone
     * (scalar path), including ties (values drawn from {0, 1, 2}) and ReLU. */
    enum { B = 2, H = 4, W = 6 };
    for (int C = 16; C <= 48; C += 32) {
        size_t nin = (size_t) B * H * W * C, nout = nin / 4;
        float *in = bn_alloc_floats(nin), *out = bn_alloc_floats(nout), *bias = bn_alloc_floats(C);
        float *g = bn_alloc_floats(nout), *din = bn_alloc_floats(nin), *db = bn_alloc_floats(C);
        uint8_t *am = bn_alloc_aligned(nout);
        float one_in[B * H * W], one_out[B * H * W / 4], one_g[B * H * W / 4], one_din[B * H * W];
        uint8_t one_am[B * H * W / 4];
        for (size_t i = 0; i < nin; i++)
            in[i] = (float) bn_rng_below(&s_rng, 3) - 1.0f;
        s_fill(bias, C, -1, 1);
        s_fill(g, nout, -1, 1);
        for (int fused = 0; fused < 2; fused++) {
            if (fused) {
                bn_bias_relu_maxpool2_forward(out, am, in, bias, B, H, W, C);
                bn_bias_relu_maxpool2_backward(din, db, g, out, am, B, H, W, C);
            } else {
                bn_maxpool2_forward(out, am, in, B, H, W, C);
                bn_maxpool2_backward(din, g, am, B, H, W, C);
            }
            for (int c = 0; c < C; c++) {
                for (size_t i = 0; i < nin / C; i++)
                    one_in[i] = in[i * C + c];
                for (size_t i = 0; i < nout / C; i++)
                    one_g[i] = g[i * C + c];
                float one_db = 0.0f;
                if (fused) {
                    bn_bias_relu_maxpool2_forward(one_out, one_am, one_in, bias + c, B, H, W, 1);
                    bn_bias_relu_maxpool2_backward(one_din, &one_db, one_g, one_out, one_am, B, H, W, 1);
                    assert_float_equal(db[c], one_db, 1e-5);
                } else {
                    bn_maxpool2_forward(one_out, one_am, one_in, B, H, W, 1);
                    bn_maxpool2_backward(one_din, one_g, one_am, B, H, W, 1);
                }
                for (size_t i = 0; i < nout / C; i++) {
                    assert_float_equal(out[i * C + c], one_out[i], 0);
                    assert_int_equal(am[i * C + c], one_am[i]);
                }
                for (size_t i = 0; i < nin / C; i++)
                    assert_float_equal(din[i * C + c], one_din[i], 0);
            }
        }
        bn_free(in); bn_free(out); bn_free(bias); bn_free(g); bn_free(din); bn_free(db); bn_free(am);
    }
}

typedef struct { size_t n; float *in, *out, *r; } s_relu_t;

static double s_relu_loss(void *ctx)
{
    s_relu_t *p = ctx;
    bn_relu_forward(p->out, p->in, p->n);
    return s_dot(p->out, p->r, p->n);
}

static void test_relu(void **state)
{
    (void) state;
    float in[200], out[200], r[200], din[200];
    s_relu_t p = { 200, in, out, r };
    s_fill_away_from_zero(in, 200);
    s_fill(r, 200, -1, 1);
    s_relu_loss(&p);
    for (int i = 0; i < 200; i++)
        assert_float_equal(out[i], in[i] > 0 ? in[i] : 0.0f, 0);
    bn_relu_backward(din, r, out, 200);
    assert_int_equal(s_grad_mismatches("relu din", in, din, 200, s_relu_loss, &p, 1e-3f, RTOL, ATOL), 0);
    /* In place forward and backward. */
    memcpy(din, r, sizeof din);
    bn_relu_backward(din, din, out, 200);
    for (int i = 0; i < 200; i++)
        assert_float_equal(din[i], in[i] > 0 ? r[i] : 0.0f, 0);
}

/* ---- fused first layer -------------------------------------------------- */

typedef struct {
    int B, H, W, OC, K;
    float *in, *w, *b, *out, *r;
    uint8_t *am;
} s_c1_t;

static double s_c1_loss(void *ctx)
{
    s_c1_t *c = ctx;
    bn_conv1ch_relu_pool_forward(c->out, c->am, c->in, c->w, c->b, c->B, c->H, c->W, c->OC, c->K);
    size_t n = (size_t) c->B * ((c->H - c->K + 1) / 2) * ((c->W - c->K + 1) / 2) * c->OC;
    return s_dot(c->out, c->r, n);
}

/* OC 16 / OW 8 takes the vector path, OC 5 the portable one; both must equal
 * conv2d + bias_relu_maxpool2, whose gradients the finite-difference tests
 * check.  (Finite differences on the fused kernel itself, with hundreds of
 * windows, hit ReLU/max switches within +-h too often to be a stable test;
 * the whole-model check in test_model covers it as well.) */
static void s_check_conv1ch(int OC, int H, int W)
{
    s_c1_t c = { .B = 2, .H = H, .W = W, .OC = OC, .K = 5 };
    const int OH = H - 4, OW = W - 4;
    size_t nin = (size_t) c.B * H * W, nw = (size_t) OC * 25, nfull = (size_t) c.B * OH * OW * OC;
    size_t nout = nfull / 4;
    c.in = bn_alloc_floats(nin);
    c.w = bn_alloc_floats(nw);
    c.b = bn_alloc_floats(OC);
    c.out = bn_alloc_floats(nout);
    c.r = bn_alloc_floats(nout);
    c.am = bn_alloc_aligned(nout);
    float *full = bn_alloc_floats(nfull), *col = bn_alloc_floats(nfull / OC * 25);
    float *ref = bn_alloc_floats(nout), *dfull = bn_alloc_floats(nfull);
    float *dw = bn_alloc_floats(nw), *db = bn_alloc_floats(OC);
    float *dw_ref = bn_alloc_floats(nw), *db_ref = bn_alloc_floats(OC);
    uint8_t *am_ref = bn_alloc_aligned(nout);
    s_fill(c.in, nin, 0, 1);
    s_fill(c.w, nw, -0.2f, 0.2f);
    s_fill(c.b, OC, -0.2f, 0.2f);
    s_fill(c.r, nout, -1, 1);

    s_c1_loss(&c);
    bn_conv2d_forward(full, col, c.in, c.w, NULL, c.B, H, W, 1, OC, 5);
    bn_bias_relu_maxpool2_forward(ref, am_ref, full, c.b, c.B, OH, OW, OC);
    for (size_t i = 0; i < nout; i++) {
        assert_float_equal(c.out[i], ref[i], 1e-5);
        if (fabsf(c.out[i]) > 0.0f)
            assert_int_equal(c.am[i], am_ref[i]);
    }
    bn_conv1ch_relu_pool_backward(dw, db, c.r, c.out, c.am, c.in, c.B, H, W, OC, 5);
    bn_bias_relu_maxpool2_backward(dfull, db_ref, c.r, ref, am_ref, c.B, OH, OW, OC);
    bn_conv2d_backward(NULL, NULL, dw_ref, NULL, dfull, col, NULL, c.B, H, W, 1, OC, 5);
    for (size_t i = 0; i < nw; i++)
        assert_float_equal(dw[i], dw_ref[i], 1e-4);
    for (int i = 0; i < OC; i++)
        assert_float_equal(db[i], db_ref[i], 1e-4);

    bn_free(c.in); bn_free(c.w); bn_free(c.b); bn_free(c.out); bn_free(c.r); bn_free(c.am);
    bn_free(full); bn_free(col); bn_free(ref); bn_free(dfull); bn_free(dw); bn_free(db);
    bn_free(dw_ref); bn_free(db_ref); bn_free(am_ref);
}

static void test_conv1ch_fused(void **state)
{
    (void) state;
    s_check_conv1ch(16, 12, 20);    /* OW 16: vector path  */
    s_check_conv1ch(32, 8, 12);     /* two channel blocks  */
    s_check_conv1ch(16, 8, 16);     /* OW 12: avx512 declines, avx2 and neon block it */
    s_check_conv1ch(5, 10, 8);      /* portable path       */
}

static void test_set_matches_portable(void **state)
{
    (void) state;
    /* Same results from the set under test and the portable set on the
     * model's shapes: pool 16/32 channels, fused conv1 (argmax identical). */
    enum { B = 3, H = 28, OC = 16, PH = 12 };
    float *in = bn_alloc_floats(B * H * H), *w = bn_alloc_floats(OC * 25), *b = bn_alloc_floats(OC);
    float *b32 = bn_alloc_floats(32);
    float *out[2], *dw[2], *db[2], *g = bn_alloc_floats(B * PH * PH * OC);
    float *din[2], *pout[2], *pdb[2];
    uint8_t *am[2], *pam[2];
    s_fill(in, B * H * H, 0, 1);
    s_fill(w, OC * 25, -0.3f, 0.3f);
    s_fill(b, OC, -0.2f, 0.2f);
    s_fill(b32, 32, -0.2f, 0.2f);
    s_fill(g, B * PH * PH * OC, -1, 1);
    for (int mode = 0; mode < 2; mode++) {
        s_use(mode == 1 ? BN_KERNELS_PORTABLE : s_under_test);
        out[mode] = bn_alloc_floats(B * PH * PH * OC);
        am[mode] = bn_alloc_aligned(B * PH * PH * OC);
        dw[mode] = bn_alloc_floats(OC * 25);
        db[mode] = bn_alloc_floats(OC);
        bn_conv1ch_relu_pool_forward(out[mode], am[mode], in, w, b, B, H, H, OC, 5);
        bn_conv1ch_relu_pool_backward(dw[mode], db[mode], g, out[mode], am[mode], in, B, H, H, OC, 5);
        /* 2x2 pooling of the conv1 output as 32 channels of a 12 x 6 map (any
         * layout will do: both paths see the same numbers). */
        din[mode] = bn_alloc_floats(B * PH * PH * OC);
        pout[mode] = bn_alloc_floats(B * PH * PH * OC / 4);
        pam[mode] = bn_alloc_aligned(B * PH * PH * OC / 4);
        pdb[mode] = bn_alloc_floats(32);
        bn_bias_relu_maxpool2_forward(pout[mode], pam[mode], out[mode], b32, B, 12, 6, 32);
        bn_bias_relu_maxpool2_backward(din[mode], pdb[mode], g, pout[mode], pam[mode], B, 12, 6, 32);
    }
    s_use(s_under_test);
    for (int i = 0; i < B * PH * PH * OC; i++) {
        assert_float_equal(out[0][i], out[1][i], 1e-5);
        assert_int_equal(am[0][i], am[1][i]);
        assert_float_equal(din[0][i], din[1][i], 1e-5);
    }
    for (int i = 0; i < B * PH * PH * OC / 4; i++) {
        assert_float_equal(pout[0][i], pout[1][i], 1e-5);
        assert_int_equal(pam[0][i], pam[1][i]);
    }
    for (int i = 0; i < OC * 25; i++)
        assert_float_equal(dw[0][i], dw[1][i], 1e-3);
    for (int i = 0; i < OC; i++)
        assert_float_equal(db[0][i], db[1][i], 1e-4);
    for (int i = 0; i < 32; i++)
        assert_float_equal(pdb[0][i], pdb[1][i], 1e-4);
    for (int mode = 0; mode < 2; mode++) {
        bn_free(out[mode]); bn_free(am[mode]); bn_free(dw[mode]); bn_free(db[mode]);
        bn_free(din[mode]); bn_free(pout[mode]); bn_free(pam[mode]); bn_free(pdb[mode]);
    }
    bn_free(in); bn_free(w); bn_free(b); bn_free(b32); bn_free(g);
}

/* ---- fully connected and loss ----------------------------------------- */

typedef struct { int B, IN, OUT; float *in, *w, *b, *out, *r; } s_fc_t;

static double s_fc_loss(void *ctx)
{
    s_fc_t *f = ctx;
    bn_fc_forward(f->out, f->in, f->w, f->b, f->B, f->IN, f->OUT);
    return s_dot(f->out, f->r, (size_t) f->B * f->OUT);
}

/* A 3 x 7 -> 5 fully connected case: random inputs, weights, biases and loss
 * direction r (drawn in that order), then forward and backward. */
typedef struct {
    s_fc_t f;
    float in[21], w[35], b[5], out[15], r[15], din[21], dw[35], db[5];
} s_fc_case_t;

static void s_fc_case(s_fc_case_t *c)
{
    c->f = (s_fc_t) { .B = 3, .IN = 7, .OUT = 5, .in = c->in, .w = c->w, .b = c->b,
                      .out = c->out, .r = c->r };
    s_fill(c->in, 21, -1, 1);
    s_fill(c->w, 35, -1, 1);
    s_fill(c->b, 5, -1, 1);
    s_fill(c->r, 15, -1, 1);
    s_fc_loss(&c->f);
    bn_fc_backward(c->din, c->dw, c->db, c->r, c->in, c->w, 3, 7, 5);
}

static void test_fc(void **state)
{
    (void) state;
    s_fc_case_t c;
    s_fc_case(&c);
    /* Forward against the definition. */
    for (int i = 0; i < 3; i++)
        for (int o = 0; o < 5; o++) {
            double s = c.b[o];
            for (int k = 0; k < 7; k++)
                s += (double) c.in[i * 7 + k] * c.w[o * 7 + k];
            assert_float_equal(c.out[i * 5 + o], s, 1e-5);
        }
    assert_int_equal(s_grad_mismatches("fc din", c.in, c.din, 21, s_fc_loss, &c.f, 1e-2f, RTOL, ATOL), 0);
    assert_int_equal(s_grad_mismatches("fc dw", c.w, c.dw, 35, s_fc_loss, &c.f, 1e-2f, RTOL, ATOL), 0);
    assert_int_equal(s_grad_mismatches("fc db", c.b, c.db, 5, s_fc_loss, &c.f, 1e-2f, RTOL, ATOL), 0);
}

typedef struct { int B, NC; float *z; const uint8_t *y; } s_xent_t;

static double s_xent_loss(void *ctx)
{
    s_xent_t *x = ctx;
    return bn_softmax_xent(NULL, x->z, x->y, x->B, x->NC, NULL);
}

static void test_softmax_xent(void **state)
{
    (void) state;
    /* All-zero logits: loss log(10); the first class is the prediction. */
    float z[4 * 10] = { 0 }, dz[4 * 10];
    uint8_t y[4] = { 0, 3, 9, 0 };
    uint32_t correct = 5;
    float loss = bn_softmax_xent(dz, z, y, 4, 10, &correct);
    assert_float_equal(loss, log(10.0), 1e-6);
    assert_int_equal(correct, 5 + 2);
    assert_float_equal(dz[0], (0.1f - 1.0f) / 4, 1e-7);
    assert_float_equal(dz[1], 0.1f / 4, 1e-7);
    /* Two classes, logits (0, ln 3): p = (1/4, 3/4); label 0 -> loss ln 4. */
    float z2[2] = { 0.0f, (float) log(3.0) }, dz2[2];
    uint8_t y2 = 0;
    assert_float_equal(bn_softmax_xent(dz2, z2, &y2, 1, 2, NULL), log(4.0), 1e-6);
    assert_float_equal(dz2[0], -0.75f, 1e-6);
    assert_float_equal(dz2[1], 0.75f, 1e-6);
    /* Large logits do not overflow. */
    float z3[2] = { 1000.0f, 0.0f };
    assert_float_equal(bn_softmax_xent(NULL, z3, &y2, 1, 2, NULL), 0.0, 1e-6);
    /* Finite differences on random logits. */
    s_fill(z, 40, -3, 3);
    s_xent_t x = { 4, 10, z, y };
    bn_softmax_xent(dz, z, y, 4, 10, NULL);
    assert_int_equal(s_grad_mismatches("xent dz", z, dz, 40, s_xent_loss, &x, 1e-2f, RTOL, ATOL), 0);
    /* In place: dlogits == logits. */
    float zz[40];
    memcpy(zz, z, sizeof zz);
    bn_softmax_xent(zz, zz, y, 4, 10, NULL);
    assert_memory_equal(zz, dz, sizeof zz);
}

static void test_checker_rejects_wrong_gradient(void **state)
{
    (void) state;
    /* The tolerances must catch a 3% error and a swapped pair of coordinates. */
    s_fc_case_t c;
    s_fc_case(&c);
    float *dw = c.dw;
    for (int i = 0; i < 35; i++)
        dw[i] *= 1.03f;
    assert_true(s_grad_mismatches("scaled dw (expected to fail)", c.w, dw, 35, s_fc_loss, &c.f,
                                  1e-2f, RTOL, ATOL) > 20);
    bn_fc_backward(c.din, dw, c.db, c.r, c.in, c.w, 3, 7, 5);
    float t = dw[3]; dw[3] = dw[4]; dw[4] = t;
    assert_true(s_grad_mismatches("swapped dw (expected to fail)", c.w, dw, 35, s_fc_loss, &c.f,
                                  1e-2f, RTOL, ATOL) >= 1);
}

/* Every test starts from the same RNG state, so tests do not depend on order. */
static int s_reseed(void **state)
{
    (void) state;
    bn_rng_seed(&s_rng, 2024, 77);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_conv2d_gradients, s_reseed),
        cmocka_unit_test_setup(test_conv2d_hand_values, s_reseed),
        cmocka_unit_test_setup(test_conv2d_matches_nchw_reference, s_reseed),
        cmocka_unit_test_setup(test_conv2d_direct, s_reseed),
        cmocka_unit_test_setup(test_conv2d_direct_gradients, s_reseed),
        cmocka_unit_test_setup(test_conv2d_winograd, s_reseed),
        cmocka_unit_test_setup(test_maxpool_hand_values, s_reseed),
        cmocka_unit_test_setup(test_maxpool_gradients, s_reseed),
        cmocka_unit_test_setup(test_maxpool_wide_channels_match_single, s_reseed),
        cmocka_unit_test_setup(test_conv1ch_fused, s_reseed),
        cmocka_unit_test_setup(test_set_matches_portable, s_reseed),
        cmocka_unit_test_setup(test_relu, s_reseed),
        cmocka_unit_test_setup(test_fc, s_reseed),
        cmocka_unit_test_setup(test_softmax_xent, s_reseed),
        cmocka_unit_test_setup(test_checker_rejects_wrong_gradient, s_reseed),
    };
    /* Once per kernel set this CPU runs; a set it lacks is reported, not hidden. */
    return BN_FX_RUN_PER_KERNEL_SET("layers", tests, &s_under_test);
}
