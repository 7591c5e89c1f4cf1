/*  bench_model.c -- single-thread training and evaluation throughput of the models.
 *
 *  For each model: forward + backward + SGD step (lr 0.1, weight decay 5e-4,
 *  no momentum, as in scripts/bench_pytorch.py) at a fixed batch on synthetic
 *  pixels in [0, 1) with random labels, then forward only.  Each phase warms
 *  up for a fixed time and then measures steady state for `seconds` seconds
 *  of wall-clock time.  OpenBLAS is pinned to one thread.
 *
 *  usage: bench_model [seconds per phase (default 3)] [batch (default 60)] [models (default cnn)]
 *  models: comma-separated subset of cnn,mlp,logreg or "all".
 *  env BN_KERNELS=portable|sse4|avx2|avx512|neon: force a kernel set (layers.h);
 *  refused, exit status 2, when this CPU cannot run it.  The set in use is
 *  printed first.
 */
#include "layers.h"
#include "model.h"
#include "rng.h"
#include "sgd.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void openblas_set_num_threads(int num_threads);

/* CPU time of this process in seconds (all threads; the bench has one). */
static double s_cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double) ts.tv_sec + 1e-9 * (double) ts.tv_nsec;
}

/* Runs `phase` repeatedly for warm-up then for `seconds`; returns samples/s
 * of wall-clock time, and in *per_cpu_s samples per second of CPU time (the
 * steadier figure on a shared machine: time the process waited for a core
 * is not counted). */
static double s_measure(bn_model_t *m, float *params, float *grad, bn_sgd_t *sgd,
                        const float *x, const uint8_t *y, uint32_t batch, uint32_t nbatches,
                        bool train, double seconds, double *ms_per_step, double *per_cpu_s)
{
    double warm = seconds < 1.0 ? seconds : 1.0;
    uint64_t steps = 0;
    double t0 = bn_now(), t = t0, start = 0.0, cpu_start = 0.0;
    volatile float sink = 0.0f;
    bool measuring = false;
    for (uint64_t i = 0;; i++) {
        const float *bx = x + (size_t) (i % nbatches) * batch * 784;
        const uint8_t *by = y + (size_t) (i % nbatches) * batch;
        if (train) {
            sink += bn_model_loss_grad(m, params, bx, by, batch, grad, NULL);
            bn_sgd_step(sgd, params, grad);
        } else {
            sink += bn_model_loss(m, params, bx, by, batch, NULL);
        }
        t = bn_now();
        if (!measuring) {
            if (t - t0 >= warm) {
                measuring = true;
                start = t;
                cpu_start = s_cpu_now();
            }
        } else {
            steps++;
            if (t - start >= seconds)
                break;
        }
    }
    (void) sink;
    *per_cpu_s = (double) steps * batch / (s_cpu_now() - cpu_start);
    *ms_per_step = (t - start) * 1e3 / (double) steps;
    return (double) steps * batch / (t - start);
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 3.0;
    int batch_arg = argc > 2 ? atoi(argv[2]) : 60;
    const char *models = argc > 3 ? argv[3] : "cnn";
    if (seconds <= 0.0 || batch_arg < 1 || batch_arg > 4096) {
        fprintf(stderr, "usage: bench_model [seconds > 0] [batch 1..4096] [cnn,mlp,logreg|all]\n");
        return 2;
    }
    const uint32_t batch = (uint32_t) batch_arg, nbatches = 16;
    openblas_set_num_threads(1);
    char err[160];
    if (bn_kernels_init(err, sizeof err) != BN_OK) {
        fprintf(stderr, "bench_model: %s\n", err);
        return 2;
    }
    const char *forced = getenv("BN_KERNELS");
    printf("byznode kernels: %s (%s)\n", bn_kernels_name(bn_kernels_current()),
           forced && *forced ? "forced by BN_KERNELS" : "best this CPU supports");

    float *x = bn_alloc_floats((size_t) batch * nbatches * 784);
    uint8_t *y = bn_alloc_aligned((size_t) batch * nbatches);
    if (!x || !y)
        return 1;
    bn_rng_t rng;
    bn_rng_seed(&rng, 12345, 1000);
    for (size_t i = 0; i < (size_t) batch * nbatches * 784; i++)
        x[i] = (float) bn_rng_uniform(&rng);
    for (size_t i = 0; i < (size_t) batch * nbatches; i++)
        y[i] = (uint8_t) bn_rng_below(&rng, 10);

    static const bn_model_kind_t kinds[] = { BN_MODEL_CNN, BN_MODEL_MLP, BN_MODEL_LOGREG };
    int rc = 0;
    for (size_t k = 0; k < BN_ARRAY_LEN(kinds); k++) {
        const char *name = bn_model_name(kinds[k]);
        if (strcmp(models, "all") != 0 && !strstr(models, name))
            continue;
        bn_model_t *m = bn_model_new(kinds[k], batch);
        if (!m) {
            rc = 1;
            break;
        }
        size_t d = bn_model_dim(m);
        float *params = bn_alloc_floats(d), *grad = bn_alloc_floats(d);
        bn_sgd_t sgd;
        if (!params || !grad || bn_sgd_init(&sgd, d, 0.1f, 5e-4f, 0.0f) != BN_OK) {
            rc = 1;
            break;
        }
        bn_model_init(m, params, 1);
        double ms_train, ms_eval, cpu_tr, cpu_ev;
        double tr = s_measure(m, params, grad, &sgd, x, y, batch, nbatches, true, seconds,
                              &ms_train, &cpu_tr);
        double ev = s_measure(m, params, grad, &sgd, x, y, batch, nbatches, false, seconds,
                              &ms_eval, &cpu_ev);
        printf("byznode %-6s train (fwd+bwd+sgd) batch %u: %9.0f samples/s  (%.3f ms/step)"
               "  %9.0f samples/cpu-s\n", name, batch, tr, ms_train, cpu_tr);
        printf("byznode %-6s eval  (forward)     batch %u: %9.0f samples/s  (%.3f ms/batch)"
               "  %9.0f samples/cpu-s\n", name, batch, ev, ms_eval, cpu_ev);
        fflush(stdout);
        bn_sgd_free(&sgd);
        bn_free(params);
        bn_free(grad);
        bn_model_destroy(&m);
    }
    bn_free(x);
    bn_free(y);
    return rc;
}
