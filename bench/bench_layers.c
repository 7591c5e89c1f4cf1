/*  bench_layers.c -- time of each layer pass of the CNN's training step, one thread.
 *
 *  Calls the public kernels of layers.h with exactly the shapes and buffers
 *  that model.c's CNN uses at batch B (conv1+pool fused, conv2 direct with
 *  the SIMD sets, its bias/ReLU/pool, the layout changes, fc1, fc2, the
 *  loss, SGD), each pass repeated on its own, so the split of a step can be
 *  read per layer and compared across kernel sets and CPUs without a
 *  profiler.  Per pass: the median of `reps` calls' thread CPU time (time
 *  spent waiting for a core on a shared machine is not counted), in us, and
 *  GFLOP/s for the passes with a known flop count (for conv2, the direct
 *  convolution's flops whichever way it runs, so a Winograd pass shows an
 *  effective rate; the last rows time conv2's direct kernels for
 *  comparison, outside the sum).  The inputs are synthetic
 *  (the work does not depend on the values, except the argmax paths, which
 *  see random data here).
 *
 *  usage: bench_layers [reps (default 200)] [batch (default 60)]
 *  env BN_KERNELS=portable|sse4|avx2|avx512|neon as for bench_model.
 */
#include "layers.h"
#include "rng.h"
#include "sgd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void openblas_set_num_threads(int num_threads);

static double s_thread_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double) ts.tv_sec + 1e-9 * (double) ts.tv_nsec;
}

static int s_cmp(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return (x > y) - (x < y);
}

static void s_fill(float *v, size_t n, bn_rng_t *rng, float lo, float hi)
{
    for (size_t i = 0; i < n; i++)
        v[i] = lo + (hi - lo) * (float) bn_rng_uniform(rng);
}

enum { PASSES = 20 };

int main(int argc, char **argv)
{
    const int reps = argc > 1 ? atoi(argv[1]) : 200;
    const int B = argc > 2 ? atoi(argv[2]) : 60;
    if (reps < 1 || B < 1 || B > 4096) {
        fprintf(stderr, "usage: bench_layers [reps >= 1] [batch 1..4096]\n");
        return 2;
    }
    openblas_set_num_threads(1);
    char err[160];
    if (bn_kernels_init(err, sizeof err) != BN_OK) {
        fprintf(stderr, "bench_layers: %s\n", err);
        return 2;
    }
    /* the CNN of model.c */
    const int IMG = 28, C1 = 16, K = 5, P1 = 12, C2 = 32, O2 = 8, P2 = 4, FLAT = 512, H1 = 128,
              NC = 10;
    const size_t nw1 = (size_t) C1 * K * K, nw2 = (size_t) C2 * C1 * K * K;
    const size_t nw3 = (size_t) H1 * FLAT, nw4 = (size_t) NC * H1;
    const size_t dim = nw1 + C1 + nw2 + C2 + nw3 + H1 + nw4 + NC;
    bn_rng_t rng;
    bn_rng_seed(&rng, 7, 1);
    float *x = bn_alloc_floats((size_t) B * IMG * IMG), *p1 = bn_alloc_floats((size_t) B * P1 * P1 * C1);
    float *dp1 = bn_alloc_floats((size_t) B * P1 * P1 * C1), *a2 = bn_alloc_floats((size_t) B * O2 * O2 * C2);
    float *p2 = bn_alloc_floats((size_t) B * FLAT), *flat = bn_alloc_floats((size_t) B * FLAT);
    float *dflat = bn_alloc_floats((size_t) B * FLAT), *h = bn_alloc_floats((size_t) B * H1);
    float *dh = bn_alloc_floats((size_t) B * H1), *logits = bn_alloc_floats((size_t) B * NC);
    float *params = bn_alloc_floats(dim), *grad = bn_alloc_floats(dim);
    float *w2 = bn_alloc_floats(nw2), *w2h = bn_alloc_floats(nw2), *dw2 = bn_alloc_floats(nw2);
    uint8_t *am1 = bn_alloc_aligned((size_t) B * P1 * P1 * C1), *am2 = bn_alloc_aligned((size_t) B * FLAT);
    uint8_t *y = bn_alloc_aligned((size_t) B);
    float *wino = bn_alloc_floats(bn_conv2d_winograd_scratch(C1, C2));
    if (!x || !p1 || !dp1 || !a2 || !p2 || !flat || !dflat || !h || !dh || !logits || !params
        || !grad || !w2 || !w2h || !dw2 || !am1 || !am2 || !y || !wino)
        return 1;
    s_fill(x, (size_t) B * IMG * IMG, &rng, 0.0f, 1.0f);
    s_fill(params, dim, &rng, -0.1f, 0.1f);
    for (int i = 0; i < B; i++)
        y[i] = (uint8_t) bn_rng_below(&rng, NC);
    float *w1 = params, *b1 = w1 + nw1, *w2p = b1 + C1, *b2 = w2p + nw2, *w3 = b2 + C2;
    float *b3 = w3 + nw3, *w4 = b3 + H1, *b4 = w4 + nw4;
    float *gw1 = grad, *gb1 = gw1 + nw1, *gw2 = gb1 + C1, *gb2 = gw2 + nw2, *gw3 = gb2 + C2;
    float *gb3 = gw3 + nw3, *gw4 = gb3 + H1, *gb4 = gw4 + nw4;
    bn_sgd_t sgd;
    if (bn_sgd_init(&sgd, dim, 0.1f, 5e-4f, 0.0f) != BN_OK)
        return 1;
    /* one forward so that every buffer holds what its pass reads */
    bn_conv1ch_relu_pool_forward(p1, am1, x, w1, b1, B, IMG, IMG, C1, K);
    bn_conv_weight_to_ohwi(w2, w2p, C2, C1, K);
    bn_conv_weight_to_hwio(w2h, w2p, C2, C1, K);
    bn_conv2d_forward_direct(a2, p1, w2h, B, P1, P1, C1, C2, K);
    bn_bias_relu_maxpool2_forward(p2, am2, a2, b2, B, O2, O2, C2);
    bn_nhwc_to_nchw(flat, p2, B, P2, P2, C2);
    bn_fc_forward(h, flat, w3, b3, B, FLAT, H1);
    bn_relu_forward(h, h, (size_t) B * H1);
    bn_fc_forward(logits, h, w4, b4, B, H1, NC);
    s_fill(a2, (size_t) B * O2 * O2 * C2, &rng, -1.0f, 1.0f);   /* stands for conv2's dout */
    s_fill(dh, (size_t) B * H1, &rng, -1.0f, 1.0f);
    s_fill(dflat, (size_t) B * FLAT, &rng, -1.0f, 1.0f);

    static const char *names[PASSES] = {
        "conv1+relu+pool fwd", "conv2 weight layouts", "conv2 fwd", "bias+relu+pool2 fwd",
        "nhwc->nchw", "fc1 fwd (sgemm)", "relu fwd", "fc2 fwd (sgemm)", "softmax xent",
        "fc2 bwd (sgemm)", "fc1 bwd (sgemm x2)", "nchw->nhwc", "bias+relu+pool2 bwd",
        "conv2 bwd (dW + dX)", "conv1+relu+pool bwd", "sgd step", "  of which conv2 dW",
        "conv2 fwd, direct", "conv2 bwd, direct", "  of which dW, direct",
    };
    const double mflop[PASSES] = {
        2.0 * B * 24 * 24 * C1 * K * K * 1e-6, 0, 2.0 * B * O2 * O2 * C2 * C1 * K * K * 1e-6, 0,
        0, 2.0 * B * FLAT * H1 * 1e-6, 0, 2.0 * B * H1 * NC * 1e-6, 0,
        4.0 * B * H1 * NC * 1e-6, 4.0 * B * FLAT * H1 * 1e-6, 0, 0,
        4.0 * B * O2 * O2 * C2 * C1 * K * K * 1e-6, 2.0 * B * 24 * 24 * C1 * K * K * 1e-6, 0,
        2.0 * B * O2 * O2 * C2 * C1 * K * K * 1e-6,
        2.0 * B * O2 * O2 * C2 * C1 * K * K * 1e-6, 4.0 * B * O2 * O2 * C2 * C1 * K * K * 1e-6,
        2.0 * B * O2 * O2 * C2 * C1 * K * K * 1e-6,
    };
    double *t = malloc(sizeof(double) * (size_t) reps);
    if (!t)
        return 1;
    double total = 0.0, total_fwd = 0.0;
    printf("byznode kernels: %s, batch %d, median of %d calls (thread CPU time)\n",
           bn_kernels_name(bn_kernels_current()), B, reps);
    for (int p = 0; p < PASSES; p++) {
        for (int r = 0; r < reps + 3; r++) {
            double t0 = s_thread_now();
            switch (p) {
            case 0: bn_conv1ch_relu_pool_forward(p1, am1, x, w1, b1, B, IMG, IMG, C1, K); break;
            case 1: bn_conv_weight_to_ohwi(w2, w2p, C2, C1, K);
                    bn_conv_weight_to_hwio(w2h, w2p, C2, C1, K); break;
            case 2: bn_conv2d_forward_winograd(a2, wino, p1, w2h, B, P1, P1, C1, C2, K); break;
            case 3: bn_bias_relu_maxpool2_forward(p2, am2, a2, b2, B, O2, O2, C2); break;
            case 4: bn_nhwc_to_nchw(flat, p2, B, P2, P2, C2); break;
            case 5: bn_fc_forward(h, flat, w3, b3, B, FLAT, H1); break;
            case 6: bn_relu_forward(h, h, (size_t) B * H1); break;
            case 7: bn_fc_forward(logits, h, w4, b4, B, H1, NC); break;
            case 8: bn_softmax_xent(logits, logits, y, B, NC, NULL); break;
            case 9: bn_fc_backward(dh, gw4, gb4, logits, h, w4, B, H1, NC); break;
            case 10: bn_fc_backward(dflat, gw3, gb3, dh, flat, w3, B, FLAT, H1); break;
            case 11: bn_nchw_to_nhwc(dp1, dflat, B, P2, P2, C2); break;
            case 12: bn_bias_relu_maxpool2_backward(a2, gb2, dp1, p2, am2, B, O2, O2, C2); break;
            case 13: bn_conv2d_backward_winograd(dp1, dw2, wino, a2, p1, w2, B, P1, P1, C1, C2, K);
                     break;
            case 14: bn_conv1ch_relu_pool_backward(gw1, gb1, dp1, p1, am1, x, B, IMG, IMG, C1, K);
                     break;
            case 15: bn_sgd_step(&sgd, params, grad); break;
            case 16: bn_conv2d_backward_winograd(NULL, dw2, wino, a2, p1, w2, B, P1, P1, C1, C2, K);
                     break;
            case 17: bn_conv2d_forward_direct(a2, p1, w2h, B, P1, P1, C1, C2, K); break;
            case 18: bn_conv2d_backward_direct(dp1, dw2, a2, p1, w2, B, P1, P1, C1, C2, K); break;
            case 19: bn_conv2d_backward_direct(NULL, dw2, a2, p1, w2, B, P1, P1, C1, C2, K); break;
            }
            if (r >= 3)
                t[r - 3] = s_thread_now() - t0;
        }
        qsort(t, (size_t) reps, sizeof *t, s_cmp);
        double us = t[reps / 2] * 1e6;
        if (p < 16)
            total += us;
        if (p <= 8)
            total_fwd += us;
        if (mflop[p] > 0)
            printf("%-22s %8.1f us  %6.1f GFLOP/s\n", names[p], us, mflop[p] / us * 1e3);
        else
            printf("%-22s %8.1f us\n", names[p], us);
    }
    (void) gw2;
    printf("%-22s %8.1f us  (forward passes: %.1f us)\n", "sum", total, total_fwd);
    free(t);
    return 0;
}
