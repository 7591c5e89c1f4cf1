/*  cblas.h -- the CBLAS declarations byznode's kernels use, for the aarch64
 *  cross build of the kernel tests (tests/cross_aarch64.sh), which links the
 *  reference sgemm in cblas_ref.c instead of an arm64 OpenBLAS.
 */
#ifndef BN_CROSS_CBLAS_H
#define BN_CROSS_CBLAS_H

enum CBLAS_ORDER { CblasRowMajor = 101, CblasColMajor = 102 };
enum CBLAS_TRANSPOSE { CblasNoTrans = 111, CblasTrans = 112 };

void cblas_sgemm(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb,
                 int M, int N, int K, float alpha, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc);
void openblas_set_num_threads(int num_threads);

#endif
