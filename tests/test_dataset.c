/*  test_dataset.c -- IDX reader: valid files, every malformed kind, subsets,
 *  batch conversion, and the real converted Fashion-MNIST files.
 *
 *  Small IDX files are generated in a fresh temp directory per test run.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dataset.h"

static char s_dir[256];

/* Writes a file with a big-endian header (magic, dims...) then `body`. */
static void s_write_idx(const char *name, uint32_t magic, const uint32_t *dims, int ndims,
                        const uint8_t *body, size_t body_len, char *path_out)
{
    snprintf(path_out, 512, "%s/%s", s_dir, name);
    FILE *f = fopen(path_out, "wb");
    assert_non_null(f);
    uint32_t words[4] = { magic, 0, 0, 0 };
    for (int i = 0; i < ndims; i++)
        words[1 + i] = dims[i];
    for (int i = 0; i < 1 + ndims; i++) {
        uint8_t b[4] = { (uint8_t) (words[i] >> 24), (uint8_t) (words[i] >> 16),
                         (uint8_t) (words[i] >> 8), (uint8_t) words[i] };
        assert_int_equal(fwrite(b, 1, 4, f), 4);
    }
    if (body_len)
        assert_int_equal(fwrite(body, 1, body_len, f), body_len);
    fclose(f);
}

/* 5 images of 2 x 3; image i has pixel k = 10 * i + k, except image 1 pixel 0 = 255. */
static uint8_t s_pix[5 * 6];
static uint8_t s_lab[5] = { 3, 9, 0, 7, 1 };

static void s_valid_pair(char *ip, char *lp)
{
    for (int i = 0; i < 5; i++)
        for (int k = 0; k < 6; k++)
            s_pix[i * 6 + k] = (uint8_t) (10 * i + k);
    s_pix[6] = 255;
    uint32_t di[3] = { 5, 2, 3 }, dl[1] = { 5 };
    s_write_idx("img", 0x803, di, 3, s_pix, sizeof s_pix, ip);
    s_write_idx("lab", 0x801, dl, 1, s_lab, sizeof s_lab, lp);
}

static int s_setup(void **state)
{
    (void) state;
    const char *tmp = getenv("TMPDIR");
    snprintf(s_dir, sizeof s_dir, "%s/bn_test_dataset.XXXXXX", tmp ? tmp : "/tmp");
    return mkdtemp(s_dir) ? 0 : -1;
}

static int s_teardown(void **state)
{
    (void) state;
    const char *names[] = { "img", "lab", "bad", "train-images-idx3-ubyte",
                            "train-labels-idx1-ubyte" };
    char p[512];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", s_dir, names[i]);
        unlink(p);
    }
    rmdir(s_dir);
    return 0;
}

static void test_valid_full(void **state)
{
    (void) state;
    char ip[512], lp[512], err[512] = "";
    s_valid_pair(ip, lp);
    bn_dataset_t ds;
    assert_int_equal(bn_dataset_load(&ds, ip, lp, NULL, 0, err, sizeof err), BN_OK);
    assert_int_equal(ds.n, 5);
    assert_int_equal(ds.rows, 2);
    assert_int_equal(ds.cols, 3);
    assert_memory_equal(ds.images, s_pix, sizeof s_pix);
    assert_memory_equal(ds.labels, s_lab, sizeof s_lab);
    bn_dataset_free(&ds);
    assert_null(ds.images);
    assert_int_equal(ds.n, 0);
    bn_dataset_free(&ds);   /* safe twice */

    uint8_t *lab = NULL;
    uint32_t n = 0;
    assert_int_equal(bn_idx_read_labels(lp, &lab, &n, err, sizeof err), BN_OK);
    assert_int_equal(n, 5);
    assert_memory_equal(lab, s_lab, 5);
    free(lab);
}

static void test_subset_and_dir(void **state)
{
    (void) state;
    char ip[512], lp[512], err[512] = "";
    s_valid_pair(ip, lp);
    uint32_t sub[3] = { 4, 0, 2 };
    bn_dataset_t ds;
    assert_int_equal(bn_dataset_load(&ds, ip, lp, sub, 3, err, sizeof err), BN_OK);
    assert_int_equal(ds.n, 3);
    assert_int_equal(ds.images[0], 40);
    assert_int_equal(ds.images[5], 45);
    assert_int_equal(ds.images[6], 0);
    assert_int_equal(ds.images[12 + 3], 23);
    assert_int_equal(ds.labels[0], 1);
    assert_int_equal(ds.labels[1], 3);
    assert_int_equal(ds.labels[2], 0);
    bn_dataset_free(&ds);

    uint32_t bad[2] = { 1, 5 };
    assert_int_equal(bn_dataset_load(&ds, ip, lp, bad, 2, err, sizeof err), BN_EARG);
    assert_non_null(strstr(err, "img"));
    assert_null(ds.images);

    /* The standard names inside a directory. */
    char tp[512];
    uint32_t di[3] = { 5, 2, 3 }, dl[1] = { 5 };
    s_write_idx("train-images-idx3-ubyte", 0x803, di, 3, s_pix, sizeof s_pix, tp);
    s_write_idx("train-labels-idx1-ubyte", 0x801, dl, 1, s_lab, sizeof s_lab, tp);
    uint32_t one = 1;
    assert_int_equal(bn_dataset_load_dir(&ds, s_dir, true, &one, 1, err, sizeof err), BN_OK);
    assert_int_equal(ds.n, 1);
    assert_int_equal(ds.images[0], 255);
    assert_int_equal(ds.labels[0], 9);
    bn_dataset_free(&ds);
    /* t10k-* is absent in this directory. */
    assert_int_equal(bn_dataset_load_dir(&ds, s_dir, false, NULL, 0, err, sizeof err), BN_EIO);
    assert_non_null(strstr(err, "t10k-images-idx3-ubyte"));
}

static void test_batch_values(void **state)
{
    (void) state;
    char ip[512], lp[512], err[512] = "";
    s_valid_pair(ip, lp);
    bn_dataset_t ds;
    assert_int_equal(bn_dataset_load(&ds, ip, lp, NULL, 0, err, sizeof err), BN_OK);
    uint32_t idx[2] = { 1, 3 };
    float x[12];
    uint8_t y[2];
    bn_dataset_batch(&ds, idx, 2, x, y);
    /* (pixel / 255 - 0.2860) / 0.3530, computed by hand: */
    assert_float_equal(x[0], (1.0f - 0.2860f) / 0.3530f, 1e-5f);      /* 255 -> 2.02266 */
    assert_float_equal(x[0], 2.022663f, 1e-5f);
    assert_float_equal(x[1], (11.0f / 255.0f - 0.2860f) / 0.3530f, 1e-5f);
    assert_float_equal(x[6], (30.0f / 255.0f - 0.2860f) / 0.3530f, 1e-5f);
    assert_float_equal(x[11], -0.421374f, 2e-6f);                      /* 35 */
    assert_int_equal(y[0], 9);
    assert_int_equal(y[1], 7);
    bn_dataset_free(&ds);
}

/* Loads (bad images file, good labels) or (good images, bad labels) and checks
 * the code and that the message names the file and contains `what`. */
static void s_expect_fail(const char *ip, const char *lp, int code, const char *file_part,
                          const char *what)
{
    char err[512] = "";
    bn_dataset_t ds;
    int rc = bn_dataset_load(&ds, ip, lp, NULL, 0, err, sizeof err);
    if (rc != code || !strstr(err, file_part) || !strstr(err, what))
        fail_msg("expected %d naming '%s' with '%s', got %d: %s", code, file_part, what, rc, err);
    assert_null(ds.images);
    assert_null(ds.labels);
}

static void test_malformed(void **state)
{
    (void) state;
    char ip[512], lp[512], bp[512];
    s_valid_pair(ip, lp);
    uint32_t di[3] = { 5, 2, 3 }, dl[1] = { 5 };

    /* truncated images: one byte short */
    s_write_idx("bad", 0x803, di, 3, s_pix, sizeof s_pix - 1, bp);
    s_expect_fail(bp, lp, BN_EFORMAT, "bad", "truncated");
    /* truncated header */
    s_write_idx("bad", 0x803, di, 0, NULL, 0, bp);
    s_expect_fail(bp, lp, BN_EFORMAT, "bad", "truncated");
    /* trailing garbage */
    uint8_t big[64] = { 0 };
    s_write_idx("bad", 0x803, di, 3, big, sizeof s_pix + 1, bp);
    s_expect_fail(bp, lp, BN_EFORMAT, "bad", "trailing");
    /* bad magic: a label magic in the images slot, and garbage */
    s_write_idx("bad", 0x801, di, 3, s_pix, sizeof s_pix, bp);
    s_expect_fail(bp, lp, BN_EFORMAT, "bad", "bad magic");
    s_write_idx("bad", 0xdeadbeef, dl, 1, s_lab, sizeof s_lab, bp);
    s_expect_fail(ip, bp, BN_EFORMAT, "bad", "bad magic");
    /* wrong dims: zero rows; absurd cols */
    uint32_t d0[3] = { 5, 0, 3 }, dx[3] = { 5, 2, 100000 };
    s_write_idx("bad", 0x803, d0, 3, s_pix, 0, bp);
    s_expect_fail(bp, lp, BN_EFORMAT, "bad", "wrong dims");
    s_write_idx("bad", 0x803, dx, 3, s_pix, sizeof s_pix, bp);
    s_expect_fail(bp, lp, BN_EFORMAT, "bad", "wrong dims");
    /* huge count in header but tiny file: must not allocate or read past */
    uint32_t dh[3] = { 0xffffffffu, 28, 28 };
    s_write_idx("bad", 0x803, dh, 3, s_pix, sizeof s_pix, bp);
    s_expect_fail(bp, lp, BN_EFORMAT, "bad", "truncated");
    /* count mismatch: 4 labels for 5 images */
    uint32_t d4[1] = { 4 };
    s_write_idx("bad", 0x801, d4, 1, s_lab, 4, bp);
    s_expect_fail(ip, bp, BN_EFORMAT, "img", "count mismatch");
    /* label > 9 */
    uint8_t lab10[5] = { 1, 2, 10, 3, 4 };
    s_write_idx("bad", 0x801, dl, 1, lab10, 5, bp);
    s_expect_fail(ip, bp, BN_EFORMAT, "bad", "label 10 at index 2");
    uint8_t *l = NULL;
    uint32_t n = 0;
    char err[512] = "";
    assert_int_equal(bn_idx_read_labels(bp, &l, &n, err, sizeof err), BN_EFORMAT);
    assert_non_null(strstr(err, "bad"));
    assert_null(l);
    /* missing files */
    char mp[600];
    snprintf(mp, sizeof mp, "%s/does-not-exist", s_dir);
    s_expect_fail(mp, lp, BN_EIO, "does-not-exist", "cannot open");
    s_expect_fail(ip, mp, BN_EIO, "does-not-exist", "cannot open");
    assert_int_equal(bn_idx_read_labels(mp, &l, &n, err, sizeof err), BN_EIO);
    assert_non_null(strstr(err, "does-not-exist"));
    /* a directory is not a data file */
    s_expect_fail(s_dir, lp, BN_EIO, s_dir, "regular");
}

/* The real converted files: scripts/fetch_data.sh must have run first. */
static void test_real_fashion_mnist(void **state)
{
    (void) state;
    char dir[1024];
    const char *env = getenv("BN_DATA_DIR");
    const char *root = getenv("BN_SOURCE_ROOT");
    if (env && *env)
        snprintf(dir, sizeof dir, "%s", env);
    else
        snprintf(dir, sizeof dir, "%s/data/fashion-mnist", root ? root : ".");
    char p[1200];
    snprintf(p, sizeof p, "%s/train-labels-idx1-ubyte", dir);
    if (access(p, R_OK) != 0)
        fail_msg("Fashion-MNIST not found in %s: run scripts/fetch_data.sh first "
                 "(or set BN_DATA_DIR)", dir);

    char err[512] = "";
    uint8_t *lab = NULL;
    uint32_t n = 0;
    assert_int_equal(bn_idx_read_labels(p, &lab, &n, err, sizeof err), BN_OK);
    assert_int_equal(n, 60000);
    uint32_t hist[10] = { 0 };
    uint32_t changes = 0;
    for (uint32_t i = 0; i < n; i++) {
        hist[lab[i]]++;
        changes += i > 0 && lab[i] != lab[i - 1];
    }
    for (int c = 0; c < 10; c++)
        assert_int_equal(hist[c], 6000);
    assert_true(changes > 50000);   /* interleaved, not sorted by class */
    free(lab);

    bn_dataset_t test;
    assert_int_equal(bn_dataset_load_dir(&test, dir, false, NULL, 0, err, sizeof err), BN_OK);
    assert_int_equal(test.n, 10000);
    assert_int_equal(test.rows, 28);
    assert_int_equal(test.cols, 28);
    memset(hist, 0, sizeof hist);
    for (uint32_t i = 0; i < test.n; i++)
        hist[test.labels[i]]++;
    for (int c = 0; c < 10; c++)
        assert_int_equal(hist[c], 1000);

    /* A pread subset equals the same rows of the full load. */
    uint32_t sub[4] = { 9999, 0, 1234, 5000 };
    bn_dataset_t part;
    assert_int_equal(bn_dataset_load_dir(&part, dir, false, sub, 4, err, sizeof err), BN_OK);
    for (int k = 0; k < 4; k++) {
        assert_memory_equal(part.images + k * 784, test.images + (size_t) sub[k] * 784, 784);
        assert_int_equal(part.labels[k], test.labels[sub[k]]);
    }
    bn_dataset_free(&part);
    bn_dataset_free(&test);

    /* Train subset of 1,200 images loads without the 47 MB file in memory. */
    uint32_t many[1200];
    for (uint32_t i = 0; i < 1200; i++)
        many[i] = i * 50;
    bn_dataset_t tr;
    assert_int_equal(bn_dataset_load_dir(&tr, dir, true, many, 1200, err, sizeof err), BN_OK);
    assert_int_equal(tr.n, 1200);
    bn_dataset_free(&tr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_full),
        cmocka_unit_test(test_subset_and_dir),
        cmocka_unit_test(test_batch_values),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_real_fashion_mnist),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
