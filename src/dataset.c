/*  dataset.c -- IDX reader (images 0x00000803, labels 0x00000801); see dataset.h.
 *
 *  Every read is a pread() at an offset checked against the header and the
 *  file's size, so a malformed or truncated file can never make us read past
 *  its end or allocate more than the file could hold.  A subset load reads
 *  only the requested images (one pread each), so memory and I/O are
 *  proportional to the subset, not to the file.
 */
#include "dataset.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_MAGIC_LABELS 0x00000801u
#define S_MAGIC_IMAGES 0x00000803u
#define S_MAX_SIDE     1024u   /* sanity bound on rows and cols */

/* An open IDX file with its validated header. */
typedef struct {
    int fd;               /* -1 when closed                          */
    const char *path;     /* borrowed, for messages                  */
    uint32_t dims[3];     /* n, then rows and cols for images        */
    uint64_t data_off;    /* byte offset of the first item           */
    uint64_t item_bytes;  /* bytes per item (1 or rows * cols)       */
} s_idx_t;

static uint32_t s_be32(const uint8_t *p)
{
    return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

/* Reads exactly len bytes at off; BN_EIO on error or short file. */
static int s_pread_all(int fd, void *buf, size_t len, uint64_t off)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t r = pread(fd, p, len, (off_t) off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return BN_EIO;
        }
        if (r == 0)
            return BN_EIO;
        p += r;
        len -= (size_t) r;
        off += (uint64_t) r;
    }
    return BN_OK;
}

/* Opens path and validates its header for `magic` (ndims 1 or 3) and its size. */
static int s_idx_open(s_idx_t *f, const char *path, uint32_t magic, char *err, size_t errlen)
{
    const char *what = magic == S_MAGIC_IMAGES ? "images" : "labels";
    unsigned ndims = magic & 0xffu;
    f->fd = -1;
    f->path = path;
    f->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (f->fd < 0)
        return bn_fail(err, errlen, BN_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(f->fd, &st) != 0)
        return bn_fail(err, errlen, BN_EIO, "%s: cannot stat: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return bn_fail(err, errlen, BN_EIO, "%s: not a regular file", path);
    uint64_t size = (uint64_t) st.st_size;
    uint64_t hdr_len = 4 + 4 * (uint64_t) ndims;
    if (size < hdr_len)
        return bn_fail(err, errlen, BN_EFORMAT,
                       "%s: truncated header (%llu bytes, need %llu)", path,
                       (unsigned long long) size, (unsigned long long) hdr_len);
    uint8_t hdr[16];
    if (s_pread_all(f->fd, hdr, (size_t) hdr_len, 0) != BN_OK)
        return bn_fail(err, errlen, BN_EIO, "%s: cannot read header", path);
    uint32_t got = s_be32(hdr);
    if (got != magic)
        return bn_fail(err, errlen, BN_EFORMAT,
                       "%s: bad magic 0x%08x (expected 0x%08x for %s)", path, got, magic, what);
    f->item_bytes = 1;
    for (unsigned d = 0; d < ndims; d++) {
        f->dims[d] = s_be32(hdr + 4 + 4 * d);
        if (d > 0) {
            if (f->dims[d] == 0 || f->dims[d] > S_MAX_SIDE)
                return bn_fail(err, errlen, BN_EFORMAT,
                               "%s: wrong dims %u x %u (each must be 1..%u)", path,
                               f->dims[1], s_be32(hdr + 12), S_MAX_SIDE);
            f->item_bytes *= f->dims[d];
        }
    }
    f->data_off = hdr_len;
    uint64_t need = hdr_len + (uint64_t) f->dims[0] * f->item_bytes;
    if (size < need)
        return bn_fail(err, errlen, BN_EFORMAT,
                       "%s: truncated (%llu bytes, header says %u %s need %llu)", path,
                       (unsigned long long) size, f->dims[0], what, (unsigned long long) need);
    if (size > need)
        return bn_fail(err, errlen, BN_EFORMAT,
                       "%s: %llu trailing bytes after %u %s", path,
                       (unsigned long long) (size - need), f->dims[0], what);
    return BN_OK;
}

static void s_idx_close(s_idx_t *f)
{
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
}

/* Reads and validates every label of an open label file into a new array. */
static int s_read_labels(s_idx_t *f, uint8_t **labels, char *err, size_t errlen)
{
    uint32_t n = f->dims[0];
    uint8_t *lab = malloc(n > 0 ? n : 1);
    if (!lab)
        return bn_fail(err, errlen, BN_ENOMEM, "%s: out of memory for %u labels", f->path, n);
    if (s_pread_all(f->fd, lab, n, f->data_off) != BN_OK) {
        free(lab);
        return bn_fail(err, errlen, BN_EIO, "%s: read failed", f->path);
    }
    for (uint32_t i = 0; i < n; i++) {
        if (lab[i] >= BN_NUM_CLASSES) {
            int rc = bn_fail(err, errlen, BN_EFORMAT, "%s: label %u at index %u is > %d",
                             f->path, lab[i], i, BN_NUM_CLASSES - 1);
            free(lab);
            return rc;
        }
    }
    *labels = lab;
    return BN_OK;
}

int bn_idx_read_labels(const char *path, uint8_t **labels, uint32_t *n,
                       char *err, size_t errlen)
{
    s_idx_t f;
    int rc = s_idx_open(&f, path, S_MAGIC_LABELS, err, errlen);
    if (rc == BN_OK)
        rc = s_read_labels(&f, labels, err, errlen);
    if (rc == BN_OK)
        *n = f.dims[0];
    s_idx_close(&f);
    return rc;
}

int bn_dataset_load(bn_dataset_t *ds, const char *images_path, const char *labels_path,
                    const uint32_t *subset, uint32_t subset_n, char *err, size_t errlen)
{
    s_idx_t fi = { .fd = -1 }, fl = { .fd = -1 };
    uint8_t *all_labels = NULL;
    memset(ds, 0, sizeof *ds);

    int rc = s_idx_open(&fi, images_path, S_MAGIC_IMAGES, err, errlen);
    if (rc != BN_OK)
        goto fail;
    rc = s_idx_open(&fl, labels_path, S_MAGIC_LABELS, err, errlen);
    if (rc != BN_OK)
        goto fail;
    if (fi.dims[0] != fl.dims[0]) {
        rc = bn_fail(err, errlen, BN_EFORMAT, "%s: count mismatch: %u images but %s has %u labels",
                     images_path, fi.dims[0], labels_path, fl.dims[0]);
        goto fail;
    }
    rc = s_read_labels(&fl, &all_labels, err, errlen);
    if (rc != BN_OK)
        goto fail;

    uint32_t count = fi.dims[0];
    size_t px = (size_t) fi.item_bytes;
    if (subset) {
        for (uint32_t k = 0; k < subset_n; k++) {
            if (subset[k] >= count) {
                rc = bn_fail(err, errlen, BN_EARG, "%s: subset index %u at position %u >= %u images",
                             images_path, subset[k], k, count);
                goto fail;
            }
        }
        count = subset_n;
    }
    ds->n = count;
    ds->rows = fi.dims[1];
    ds->cols = fi.dims[2];
    ds->images = malloc(count > 0 ? (size_t) count * px : 1);
    ds->labels = malloc(count > 0 ? count : 1);
    if (!ds->images || !ds->labels) {
        rc = bn_fail(err, errlen, BN_ENOMEM, "%s: out of memory for %u images", images_path, count);
        goto fail;
    }
    if (subset) {
        for (uint32_t k = 0; k < subset_n; k++) {
            if (s_pread_all(fi.fd, ds->images + (size_t) k * px, px,
                            fi.data_off + (uint64_t) subset[k] * px) != BN_OK) {
                rc = bn_fail(err, errlen, BN_EIO, "%s: read of image %u failed", images_path, subset[k]);
                goto fail;
            }
            ds->labels[k] = all_labels[subset[k]];
        }
    } else {
        if (s_pread_all(fi.fd, ds->images, (size_t) count * px, fi.data_off) != BN_OK) {
            rc = bn_fail(err, errlen, BN_EIO, "%s: read failed", images_path);
            goto fail;
        }
        if (count > 0)
            memcpy(ds->labels, all_labels, count);
    }
    free(all_labels);
    s_idx_close(&fi);
    s_idx_close(&fl);
    return BN_OK;

fail:
    free(all_labels);
    s_idx_close(&fi);
    s_idx_close(&fl);
    bn_dataset_free(ds);
    return rc;
}

int bn_dataset_load_dir(bn_dataset_t *ds, const char *dir, bool train,
                        const uint32_t *subset, uint32_t subset_n, char *err, size_t errlen)
{
    char ip[4096], lp[4096];
    const char *pre = train ? "train" : "t10k";
    int a = snprintf(ip, sizeof ip, "%s/%s-images-idx3-ubyte", dir, pre);
    int b = snprintf(lp, sizeof lp, "%s/%s-labels-idx1-ubyte", dir, pre);
    if (a < 0 || (size_t) a >= sizeof ip || b < 0 || (size_t) b >= sizeof lp) {
        memset(ds, 0, sizeof *ds);
        return bn_fail(err, errlen, BN_EARG, "%s: data directory path too long", dir);
    }
    return bn_dataset_load(ds, ip, lp, subset, subset_n, err, errlen);
}

void bn_dataset_free(bn_dataset_t *ds)
{
    if (!ds)
        return;
    free(ds->images);
    free(ds->labels);
    memset(ds, 0, sizeof *ds);
}

void bn_dataset_batch(const bn_dataset_t *ds, const uint32_t *idx, uint32_t batch,
                      float *x, uint8_t *y)
{
    size_t px = (size_t) ds->rows * ds->cols;
    for (uint32_t b = 0; b < batch; b++) {
        assert(idx[b] < ds->n);
        const uint8_t *src = ds->images + (size_t) idx[b] * px;
        float *dst = x + (size_t) b * px;
        for (size_t k = 0; k < px; k++)
            dst[k] = ((float) src[k] * (1.0f / 255.0f) - BN_PIXEL_MEAN) * (1.0f / BN_PIXEL_STD);
        y[b] = ds->labels[idx[b]];
    }
}
