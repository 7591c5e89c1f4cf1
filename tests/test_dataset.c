/*  test_dataset.c -- IDX reader: valid files plain and gzip, every malformed
 *  kind (truncation, trailing bytes, magic, dimensions other than 28 x 28,
 *  zero images, counts, labels, corrupt gzip streams), subsets, the .gz name
 *  resolution, batch conversion, and the official Fashion-MNIST files.
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
#include <zlib.h>

#include "dataset.h"
#include "fixture.h"

#define PX (BN_IMAGE_ROWS * BN_IMAGE_COLS)

static char s_dir[256];

/* The bytes of an IDX file: big-endian header (magic, dims...) then `body`. */
static size_t s_idx_bytes(uint8_t *out, uint32_t magic, const uint32_t *dims, int ndims,
                          const uint8_t *body, size_t body_len)
{
    uint32_t words[4] = { magic, 0, 0, 0 };
    for (int i = 0; i < ndims; i++)
        words[1 + i] = dims[i];
    size_t n = 0;
    for (int i = 0; i < 1 + ndims; i++) {
        out[n++] = (uint8_t) (words[i] >> 24);
        out[n++] = (uint8_t) (words[i] >> 16);
        out[n++] = (uint8_t) (words[i] >> 8);
        out[n++] = (uint8_t) words[i];
    }
    if (body_len)
        memcpy(out + n, body, body_len);
    return n + body_len;
}

/* Writes an IDX file named `name` in s_dir (gzip-compressed when gz). */
static void s_write_idx_gz(const char *name, bool gz, uint32_t magic, const uint32_t *dims,
                           int ndims, const uint8_t *body, size_t body_len, char *path_out)
{
    snprintf(path_out, 512, "%s/%s", s_dir, name);
    uint8_t *buf = malloc(16 + body_len);
    assert_non_null(buf);
    size_t n = s_idx_bytes(buf, magic, dims, ndims, body, body_len);
    if (gz) {
        gzFile f = gzopen(path_out, "wb");
        assert_non_null(f);
        assert_int_equal(gzwrite(f, buf, (unsigned) n), (int) n);
        assert_int_equal(gzclose(f), Z_OK);
    } else {
        FILE *f = fopen(path_out, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(buf, 1, n, f), n);
        fclose(f);
    }
    free(buf);
}

static void s_write_idx(const char *name, uint32_t magic, const uint32_t *dims, int ndims,
                        const uint8_t *body, size_t body_len, char *path_out)
{
    s_write_idx_gz(name, false, magic, dims, ndims, body, body_len, path_out);
}

/* 5 images of 28 x 28; image i has pixel k = (10 * i + k) mod 256, except
 * image 1 pixel 0 = 255. */
static uint8_t s_pix[5 * PX];
static uint8_t s_lab[5] = { 3, 9, 0, 7, 1 };
static const uint32_t s_di[3] = { 5, BN_IMAGE_ROWS, BN_IMAGE_COLS }, s_dl[1] = { 5 };

static void s_make_pixels(void)
{
    for (int i = 0; i < 5; i++)
        for (int k = 0; k < PX; k++)
            s_pix[i * PX + k] = (uint8_t) (10 * i + k);
    s_pix[PX] = 255;
}

static void s_valid_pair_gz(bool gz, char *ip, char *lp)
{
    s_make_pixels();
    s_write_idx_gz(gz ? "img.gz" : "img", gz, 0x803, s_di, 3, s_pix, sizeof s_pix, ip);
    s_write_idx_gz(gz ? "lab.gz" : "lab", gz, 0x801, s_dl, 1, s_lab, sizeof s_lab, lp);
}

static void s_valid_pair(char *ip, char *lp)
{
    s_valid_pair_gz(false, ip, lp);
}

static int s_setup(void **state)
{
    (void) state;
    return bn_fx_tmpdir(s_dir, sizeof s_dir, "dataset");
}

static int s_teardown(void **state)
{
    (void) state;
    return bn_fx_rmtree(s_dir);
}

static void test_valid_full(void **state)
{
    (void) state;
    for (int gz = 0; gz <= 1; gz++) {
        char ip[512], lp[512], err[512] = "";
        s_valid_pair_gz(gz, ip, lp);
        bn_dataset_t ds;
        if (bn_dataset_load(&ds, ip, lp, NULL, 0, err, sizeof err) != BN_OK)
            fail_msg("gz=%d: %s", gz, err);
        assert_int_equal(ds.n, 5);
        assert_int_equal(ds.rows, 28);
        assert_int_equal(ds.cols, 28);
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
}

static void test_subset_and_dir(void **state)
{
    (void) state;
    for (int gz = 0; gz <= 1; gz++) {
        char ip[512], lp[512], err[512] = "";
        s_valid_pair_gz(gz, ip, lp);
        /* Out of file order, with a repeat: a gzip stream is read once. */
        uint32_t sub[4] = { 4, 0, 2, 4 };
        bn_dataset_t ds;
        assert_int_equal(bn_dataset_load(&ds, ip, lp, sub, 4, err, sizeof err), BN_OK);
        assert_int_equal(ds.n, 4);
        for (int k = 0; k < 4; k++) {
            assert_memory_equal(ds.images + k * PX, s_pix + sub[k] * PX, PX);
            assert_int_equal(ds.labels[k], s_lab[sub[k]]);
        }
        bn_dataset_free(&ds);

        uint32_t bad[2] = { 1, 5 };
        assert_int_equal(bn_dataset_load(&ds, ip, lp, bad, 2, err, sizeof err), BN_EARG);
        assert_non_null(strstr(err, "img"));
        assert_null(ds.images);
        /* An empty subset is refused, not a zero-image data set. */
        assert_int_equal(bn_dataset_load(&ds, ip, lp, bad, 0, err, sizeof err), BN_EARG);
        assert_non_null(strstr(err, "empty subset"));
    }

    /* The standard names inside a directory: plain train-*, gzip t10k-*. */
    char tp[512], err[512] = "";
    s_write_idx("train-images-idx3-ubyte", 0x803, s_di, 3, s_pix, sizeof s_pix, tp);
    s_write_idx("train-labels-idx1-ubyte", 0x801, s_dl, 1, s_lab, sizeof s_lab, tp);
    bn_dataset_t ds;
    uint32_t one = 1;
    assert_int_equal(bn_dataset_load_dir(&ds, s_dir, true, &one, 1, err, sizeof err), BN_OK);
    assert_int_equal(ds.n, 1);
    assert_int_equal(ds.images[0], 255);
    assert_int_equal(ds.labels[0], 9);
    bn_dataset_free(&ds);
    /* t10k-* is absent in this directory: the error names the plain file. */
    assert_int_equal(bn_dataset_load_dir(&ds, s_dir, false, NULL, 0, err, sizeof err), BN_EIO);
    assert_non_null(strstr(err, "t10k-images-idx3-ubyte"));
    assert_non_null(strstr(err, "cannot open"));
    char f[600];
    assert_int_equal(bn_dataset_file(f, sizeof f, s_dir, false, true), BN_OK);
    assert_null(strstr(f, ".gz"));
    s_write_idx_gz("t10k-images-idx3-ubyte.gz", true, 0x803, s_di, 3, s_pix, sizeof s_pix, tp);
    s_write_idx_gz("t10k-labels-idx1-ubyte.gz", true, 0x801, s_dl, 1, s_lab, sizeof s_lab, tp);
    assert_int_equal(bn_dataset_file(f, sizeof f, s_dir, false, true), BN_OK);
    assert_non_null(strstr(f, "t10k-labels-idx1-ubyte.gz"));
    assert_int_equal(bn_dataset_file(f, sizeof f, s_dir, true, false), BN_OK);
    assert_null(strstr(f, ".gz"));
    assert_int_equal(bn_dataset_load_dir(&ds, s_dir, false, NULL, 0, err, sizeof err), BN_OK);
    assert_int_equal(ds.n, 5);
    assert_memory_equal(ds.images, s_pix, sizeof s_pix);
    bn_dataset_free(&ds);
    char tiny[8];
    assert_int_equal(bn_dataset_file(tiny, sizeof tiny, s_dir, true, true), BN_EARG);
}

static void test_batch_values(void **state)
{
    (void) state;
    char ip[512], lp[512], err[512] = "";
    s_valid_pair(ip, lp);
    bn_dataset_t ds;
    assert_int_equal(bn_dataset_load(&ds, ip, lp, NULL, 0, err, sizeof err), BN_OK);
    uint32_t idx[2] = { 1, 3 };
    float *x = malloc(2 * PX * sizeof *x);
    assert_non_null(x);
    uint8_t y[2];
    bn_dataset_batch(&ds, idx, 2, x, y);
    /* (pixel / 255 - 0.2860) / 0.3530, computed by hand: */
    assert_float_equal(x[0], (1.0f - 0.2860f) / 0.3530f, 1e-5f);      /* 255 -> 2.02266 */
    assert_float_equal(x[0], 2.022663f, 1e-5f);
    assert_float_equal(x[1], (11.0f / 255.0f - 0.2860f) / 0.3530f, 1e-5f);
    assert_float_equal(x[PX], (30.0f / 255.0f - 0.2860f) / 0.3530f, 1e-5f);
    assert_float_equal(x[PX + 5], -0.421374f, 2e-6f);                 /* 35 */
    assert_int_equal(y[0], 9);
    assert_int_equal(y[1], 7);
    free(x);
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

    /* truncated images: one byte short */
    s_write_idx("bad", 0x803, s_di, 3, s_pix, sizeof s_pix - 1, bp);
    s_expect_fail(bp, lp, BN_EFORMAT, "bad", "truncated");
    /* truncated header */
    s_write_idx("bad", 0x803, s_di, 0, NULL, 0, bp);
    s_expect_fail(bp, lp, BN_EFORMAT, "bad", "truncated");
    /* trailing garbage */
    static uint8_t big[5 * PX + 1];
    s_write_idx("bad", 0x803, s_di, 3, big, sizeof big, bp);
    s_expect_fail(bp, lp, BN_EFORMAT, "bad", "trailing");
    /* bad magic: a label magic in the images slot, and garbage */
    s_write_idx("bad", 0x801, s_di, 3, s_pix, sizeof s_pix, bp);
    s_expect_fail(bp, lp, BN_EFORMAT, "bad", "bad magic");
    s_write_idx("bad", 0xdeadbeef, s_dl, 1, s_lab, sizeof s_lab, bp);
    s_expect_fail(ip, bp, BN_EFORMAT, "bad", "bad magic");
    /* Images that are not 28 x 28 are refused, whatever the file holds:
     * 10 x 10 (would train on uninitialised batch memory), 1024 x 1024 (would
     * overflow the batch buffer), 0 rows, absurd cols, 28 x 27. */
    uint32_t shapes[5][2] = { { 10, 10 }, { 1024, 1024 }, { 0, 28 }, { 28, 100000 }, { 28, 27 } };
    for (int s = 0; s < 5; s++) {
        uint32_t d[3] = { 1, shapes[s][0], shapes[s][1] };
        size_t body = (size_t) shapes[s][0] * shapes[s][1];
        uint8_t *pix = calloc(body ? body : 1, 1);
        assert_non_null(pix);
        s_write_idx("bad", 0x803, d, 3, pix, body, bp);
        uint32_t d1[1] = { 1 };
        char lp1[512];
        s_write_idx("lab", 0x801, d1, 1, s_lab, 1, lp1);
        s_expect_fail(bp, lp1, BN_EFORMAT, "bad", "wrong dims");
        s_write_idx_gz("bad.gz", true, 0x803, d, 3, pix, body, bp);
        s_expect_fail(bp, lp1, BN_EFORMAT, "bad.gz", "wrong dims");
        free(pix);
        snprintf(bp, sizeof bp, "%s/bad", s_dir);
    }
    s_valid_pair(ip, lp);
    /* zero images (an empty --train-images file) */
    uint32_t dz[3] = { 0, 28, 28 }, dz1[1] = { 0 };
    char zl[512];
    s_write_idx("bad", 0x803, dz, 3, NULL, 0, bp);
    s_write_idx("lab", 0x801, dz1, 1, NULL, 0, zl);
    s_expect_fail(bp, zl, BN_EFORMAT, "bad", "holds 0 images");
    s_valid_pair(ip, lp);
    s_write_idx("bad", 0x801, dz1, 1, NULL, 0, bp);
    s_expect_fail(ip, bp, BN_EFORMAT, "bad", "holds 0 labels");
    s_write_idx("bad", 0x803, dz, 3, NULL, 0, bp);
    s_expect_fail(bp, lp, BN_EFORMAT, "bad", "holds 0 images");
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
    s_write_idx("bad", 0x801, s_dl, 1, lab10, 5, bp);
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

/* Writes raw bytes to s_dir/name. */
static void s_write_raw(const char *name, const uint8_t *b, size_t n, char *path_out)
{
    snprintf(path_out, 512, "%s/%s", s_dir, name);
    FILE *f = fopen(path_out, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
}

/* Reads s_dir/name whole into a malloc'd buffer. */
static uint8_t *s_slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static uint8_t tmp[1 << 16];
    *n = fread(tmp, 1, sizeof tmp, f);
    fclose(f);
    uint8_t *b = malloc(*n);
    assert_non_null(b);
    memcpy(b, tmp, *n);
    return b;
}

static void test_malformed_gzip(void **state)
{
    (void) state;
    char ip[512], lp[512], bp[512];
    s_valid_pair_gz(true, ip, lp);
    size_t n = 0;
    uint8_t *gz = s_slurp(ip, &n);

    /* the stream cut short, in the middle and in the trailer */
    s_write_raw("bad.gz", gz, n / 2, bp);
    s_expect_fail(bp, lp, BN_EFORMAT, "bad.gz", "");
    s_write_raw("bad.gz", gz, n - 4, bp);
    s_expect_fail(bp, lp, BN_EFORMAT, "bad.gz", "");
    /* a flipped CRC-32: the data inflate fine, the check fails */
    uint8_t *c = malloc(n);
    assert_non_null(c);
    memcpy(c, gz, n);
    c[n - 8] ^= 0x5a;
    s_write_raw("bad.gz", c, n, bp);
    s_expect_fail(bp, lp, BN_EFORMAT, "bad.gz", "gzip stream broken");
    /* a corrupt deflate body */
    memcpy(c, gz, n);
    for (size_t i = 20; i < 40 && i < n; i++)
        c[i] = 0xff;
    s_write_raw("bad.gz", c, n, bp);
    s_expect_fail(bp, lp, BN_EFORMAT, "bad.gz", "");
    free(c);
    free(gz);
    /* uncompressed content too short / too long inside a valid gzip stream */
    s_write_idx_gz("bad.gz", true, 0x803, s_di, 3, s_pix, sizeof s_pix - 1, bp);
    s_expect_fail(bp, lp, BN_EFORMAT, "bad.gz", "truncated");
    static uint8_t big[5 * PX + 3];
    s_write_idx_gz("bad.gz", true, 0x803, s_di, 3, big, sizeof big, bp);
    s_expect_fail(bp, lp, BN_EFORMAT, "bad.gz", "trailing");
    /* a header promising 2^32 - 1 images in a few hundred bytes of gzip is
     * refused before any allocation (deflate cannot expand 1032-fold) */
    uint32_t dh[3] = { 0xffffffffu, 28, 28 };
    s_write_idx_gz("bad.gz", true, 0x803, dh, 3, s_pix, sizeof s_pix, bp);
    s_expect_fail(bp, lp, BN_EFORMAT, "bad.gz", "truncated");
    /* a subset of a truncated stream fails too (it reads to the end) */
    s_write_idx_gz("bad.gz", true, 0x803, s_di, 3, s_pix, sizeof s_pix - PX, bp);
    bn_dataset_t ds;
    uint32_t first = 0;
    char err[512] = "";
    assert_int_equal(bn_dataset_load(&ds, bp, lp, &first, 1, err, sizeof err), BN_EFORMAT);
    assert_non_null(strstr(err, "truncated"));
    assert_null(ds.images);
}

typedef struct { uint8_t img[5 * PX]; uint8_t lab[5]; uint32_t n, calls, max_chunk; } s_scan_t;

static void s_scan_fn(const bn_dataset_t *v, void *ctx)
{
    s_scan_t *a = ctx;
    assert_true(a->n + v->n <= 5);
    memcpy(a->img + (size_t) a->n * PX, v->images, (size_t) v->n * PX);
    memcpy(a->lab + a->n, v->labels, v->n);
    a->n += v->n;
    a->calls++;
    if (v->n > a->max_chunk)
        a->max_chunk = v->n;
}

/* The chunked scan sees every image once, in order; the evaluation subset is
 * the seeded shuffle's first images, or the whole set. */
static void test_scan_and_eval(void **state)
{
    (void) state;
    char tp[512], err[512] = "";
    s_make_pixels();
    s_write_idx_gz("t10k-images-idx3-ubyte.gz", true, 0x803, s_di, 3, s_pix, sizeof s_pix, tp);
    s_write_idx_gz("t10k-labels-idx1-ubyte.gz", true, 0x801, s_dl, 1, s_lab, sizeof s_lab, tp);
    for (uint32_t chunk = 1; chunk <= 6; chunk++) {
        s_scan_t a = { .n = 0 };
        assert_int_equal(bn_dataset_scan_dir(s_dir, false, chunk, s_scan_fn, &a, err, sizeof err), BN_OK);
        assert_int_equal(a.n, 5);
        assert_int_equal(a.calls, (5 + chunk - 1) / chunk);
        assert_int_equal(a.max_chunk, chunk < 5 ? chunk : 5);
        assert_memory_equal(a.img, s_pix, sizeof s_pix);
        assert_memory_equal(a.lab, s_lab, 5);
    }
    s_scan_t a = { .n = 0 };
    assert_int_equal(bn_dataset_scan_dir(s_dir, false, 0, s_scan_fn, &a, err, sizeof err), BN_EARG);
    /* a truncated stream fails the scan */
    s_write_idx_gz("t10k-images-idx3-ubyte.gz", true, 0x803, s_di, 3, s_pix, sizeof s_pix - 1, tp);
    memset(&a, 0, sizeof a);
    assert_int_equal(bn_dataset_scan_dir(s_dir, false, 2, s_scan_fn, &a, err, sizeof err), BN_EFORMAT);
    s_write_idx_gz("t10k-images-idx3-ubyte.gz", true, 0x803, s_di, 3, s_pix, sizeof s_pix, tp);

    bn_dataset_t ds, ds2;
    bool partial = true;
    assert_int_equal(bn_dataset_load_eval(&ds, s_dir, 0, 7, &partial, err, sizeof err), BN_OK);
    assert_false(partial);
    assert_int_equal(ds.n, 5);
    bn_dataset_free(&ds);
    assert_int_equal(bn_dataset_load_eval(&ds, s_dir, 5, 7, &partial, err, sizeof err), BN_OK);
    assert_false(partial);
    assert_int_equal(ds.n, 5);
    bn_dataset_free(&ds);
    assert_int_equal(bn_dataset_load_eval(&ds, s_dir, 3, 7, &partial, err, sizeof err), BN_OK);
    assert_true(partial);
    assert_int_equal(ds.n, 3);
    assert_int_equal(bn_dataset_load_eval(&ds2, s_dir, 3, 7, &partial, err, sizeof err), BN_OK);
    assert_memory_equal(ds.images, ds2.images, 3 * PX);   /* same seed, same images */
    for (uint32_t k = 0; k < 3; k++) {                     /* each is one of the file's, once */
        int found = -1;
        for (int i = 0; i < 5; i++)
            if (memcmp(ds.images + k * PX, s_pix + i * PX, PX) == 0)
                found = i;
        assert_true(found >= 0);
        assert_int_equal(ds.labels[k], s_lab[found]);
        for (uint32_t j = 0; j < k; j++)
            assert_memory_not_equal(ds.images + k * PX, ds.images + j * PX, PX);
    }
    bn_dataset_free(&ds);
    bn_dataset_free(&ds2);
}

/* The data directory: $BN_DATA_DIR, else Debian's dataset-fashion-mnist. */
static void s_data_dir(char *dir, size_t len)
{
    const char *env = getenv("BN_DATA_DIR");
    snprintf(dir, len, "%s", env && *env ? env : BN_DATA_DIR_DEFAULT);
}

typedef struct { const bn_dataset_t *ref; uint32_t n; int bad; } s_real_chk_t;

static void s_real_scan_fn(const bn_dataset_t *v, void *ctx)
{
    s_real_chk_t *c = ctx;
    if (c->n + v->n > c->ref->n
        || memcmp(v->images, c->ref->images + (size_t) c->n * PX, (size_t) v->n * PX) != 0
        || memcmp(v->labels, c->ref->labels + c->n, v->n) != 0)
        c->bad++;
    c->n += v->n;
}

/* The official files (scripts/setup.sh installs them): 60,000 / 10,000, the
 * first labels and pixel sums of the official release. */
static void test_real_fashion_mnist(void **state)
{
    (void) state;
    char dir[1024];
    s_data_dir(dir, sizeof dir);
    char p[1200];
    assert_int_equal(bn_dataset_file(p, sizeof p, dir, true, true), BN_OK);
    if (access(p, R_OK) != 0)
        fail_msg("Fashion-MNIST not found in %s: run scripts/setup.sh "
                 "(Debian package dataset-fashion-mnist) or set BN_DATA_DIR", dir);

    char err[512] = "";
    uint8_t *lab = NULL;
    uint32_t n = 0;
    if (bn_idx_read_labels(p, &lab, &n, err, sizeof err) != BN_OK)
        fail_msg("%s", err);
    assert_int_equal(n, 60000);
    uint32_t hist[10] = { 0 };
    for (uint32_t i = 0; i < n; i++)
        hist[lab[i]]++;
    for (int c = 0; c < 10; c++)
        assert_int_equal(hist[c], 6000);
    const uint8_t first_train[10] = { 9, 0, 0, 3, 0, 2, 7, 2, 5, 5 };
    assert_memory_equal(lab, first_train, 10);
    free(lab);

    bn_dataset_t test;
    if (bn_dataset_load_dir(&test, dir, false, NULL, 0, err, sizeof err) != BN_OK)
        fail_msg("%s", err);
    assert_int_equal(test.n, 10000);
    assert_int_equal(test.rows, 28);
    assert_int_equal(test.cols, 28);
    memset(hist, 0, sizeof hist);
    for (uint32_t i = 0; i < test.n; i++)
        hist[test.labels[i]]++;
    for (int c = 0; c < 10; c++)
        assert_int_equal(hist[c], 1000);
    const uint8_t first_test[10] = { 9, 2, 1, 1, 6, 1, 4, 6, 5, 7 };
    assert_memory_equal(test.labels, first_test, 10);
    uint64_t s0 = 0, s1 = 0;
    for (int k = 0; k < PX; k++) {
        s0 += test.images[k];
        s1 += test.images[(size_t) 9999 * PX + k];
    }
    assert_int_equal(s0, 33456);
    assert_int_equal(s1, 24390);

    /* The chunked scan of the whole test set sees the same 10,000 images. */
    {
        s_real_chk_t c = { &test, 0, 0 };
        assert_int_equal(bn_dataset_scan_dir(dir, false, 1000, s_real_scan_fn, &c, err, sizeof err), BN_OK);
        assert_int_equal(c.n, 10000);
        assert_int_equal(c.bad, 0);
    }

    /* A subset equals the same rows of the full load. */
    uint32_t sub[4] = { 9999, 0, 1234, 5000 };
    bn_dataset_t part;
    assert_int_equal(bn_dataset_load_dir(&part, dir, false, sub, 4, err, sizeof err), BN_OK);
    for (int k = 0; k < 4; k++) {
        assert_memory_equal(part.images + k * PX, test.images + (size_t) sub[k] * PX, PX);
        assert_int_equal(part.labels[k], test.labels[sub[k]]);
    }
    bn_dataset_free(&part);
    bn_dataset_free(&test);

    /* A train subset of 1,200 images keeps only those (the first one's pixel
     * sum is the official image 0's). */
    uint32_t many[1200];
    for (uint32_t i = 0; i < 1200; i++)
        many[i] = i * 50;
    bn_dataset_t tr;
    assert_int_equal(bn_dataset_load_dir(&tr, dir, true, many, 1200, err, sizeof err), BN_OK);
    assert_int_equal(tr.n, 1200);
    s0 = 0;
    for (int k = 0; k < PX; k++)
        s0 += tr.images[k];
    assert_int_equal(s0, 76247);
    assert_int_equal(tr.labels[0], 9);
    bn_dataset_free(&tr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_full),
        cmocka_unit_test(test_subset_and_dir),
        cmocka_unit_test(test_batch_values),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_malformed_gzip),
        cmocka_unit_test(test_scan_and_eval),
        cmocka_unit_test(test_real_fashion_mnist),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
