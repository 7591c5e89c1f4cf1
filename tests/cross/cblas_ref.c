/*  cblas_ref.c -- a plain reference sgemm (row-major only) for the aarch64
 *  cross build of the kernel tests; see cblas.h beside it.  C = alpha *
 *  op(A) op(B) + beta * C with the sum in double, so it is at least as
 *  accurate as the BLAS it stands in for.  Slow, and only ever run on test
 *  shapes.
 */
#include "cblas.h"

#include <stdio.h>
#include <stdlib.h>

void cblas_sgemm(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb,
                 int M, int N, int K, float alpha, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc)
{
    if (order != CblasRowMajor) {
        fprintf(stderr, "cblas_ref: only row-major is implemented\n");
        abort();
    }
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0.0;
            for (int p = 0; p < K; p++) {
                float a = ta == CblasNoTrans ? A[(size_t) i * lda + p] : A[(size_t) p * lda + i];
                float b = tb == CblasNoTrans ? B[(size_t) p * ldb + j] : B[(size_t) j * ldb + p];
                s += (double) a * b;
            }
            float *c = &C[(size_t) i * ldc + j];
            *c = (float) (alpha * s + (beta == 0.0f ? 0.0 : (double) beta * *c));
        }
}

void openblas_set_num_threads(int num_threads)
{
    (void) num_threads;
}
