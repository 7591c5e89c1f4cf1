/*  dataset_absent.c -- stands in for src/dataset.c in the aarch64 cross build
 *  of the kernel tests (tests/cross_aarch64.sh), where no arm64 zlib is
 *  installed to read the gzip'd IDX files.  Only test_model's Fashion-MNIST
 *  learning run reads data, and that run is left out there
 *  (BN_TEST_NO_LEARNING=1); these definitions only satisfy the linker.  A
 *  call means a test started to read data: it fails loudly, never quietly.
 */
#include "dataset.h"

#include <stdio.h>
#include <stdlib.h>

int bn_dataset_load_dir(bn_dataset_t *ds, const char *dir, bool train,
                        const uint32_t *subset, uint32_t subset_n, char *err, size_t errlen)
{
    (void) ds; (void) train; (void) subset; (void) subset_n;
    return bn_fail(err, errlen, BN_EIO, "%s: no dataset reading in the aarch64 kernel test build",
                   dir ? dir : "(null)");
}

void bn_dataset_free(bn_dataset_t *ds)
{
    (void) ds;
}

void bn_dataset_batch(const bn_dataset_t *ds, const uint32_t *idx, uint32_t batch,
                      float *x, uint8_t *y)
{
    (void) ds; (void) idx; (void) batch; (void) x; (void) y;
    fprintf(stderr, "dataset_absent: bn_dataset_batch called in the aarch64 kernel test build\n");
    abort();
}
