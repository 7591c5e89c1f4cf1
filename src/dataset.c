/*  dataset.c -- IDX reader (images 0x00000803, labels 0x00000801), plain or
 *  gzip; see dataset.h.
 *
 *  A plain file is read with pread() at offsets checked against the header
 *  and the file's size, so a malformed or truncated file can never make us
 *  read past its end or allocate more than the file could hold; a subset
 *  load reads only the requested images.  A gzip file (detected by its magic
 *  bytes 1f 8b, whatever its name) is inflated by zlib as one forward stream:
 *  a subset load visits the wanted images in file order, skips the others
 *  through a fixed scratch buffer, and always reads to the end of the stream
 *  so that truncation, trailing bytes and zlib's CRC-32 check are seen.
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
#include <zlib.h>

#include "rng.h"

#define S_MAGIC_LABELS 0x00000801u
#define S_MAGIC_IMAGES 0x00000803u
#define S_GZ_RATIO     1032u          /* deflate's largest expansion ratio */
#define S_SCRATCH      (64u * 1024u)  /* skip buffer for gzip streams      */

/* An open IDX file with its validated header. */
typedef struct {
    int fd;               /* -1 when closed                                */
    gzFile gz;            /* non-NULL for a gzip file (owns fd then)       */
    const char *path;     /* borrowed, for messages                        */
    uint32_t dims[3];     /* n, then rows and cols for images              */
    uint64_t data_off;    /* byte offset of the first item (uncompressed)  */
    uint64_t item_bytes;  /* bytes per item (1 or rows * cols)             */
    uint64_t pos;         /* gzip: uncompressed bytes consumed so far      */
} s_idx_t;

static uint32_t s_be32(const uint8_t *p)
{
    return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

/* Plain file: reads exactly len bytes at off; BN_EIO on error or short file. */
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

/* gzip: reads up to len bytes (buf NULL: into scratch, discarding them);
 * *got is what was read, short only at the end of the stream.  A corrupt
 * stream or a failed CRC gives BN_EFORMAT with zlib's message. */
static int s_gz_read(s_idx_t *f, void *buf, uint64_t len, uint64_t *got,
                     char *err, size_t errlen)
{
    static _Thread_local uint8_t scratch[S_SCRATCH];
    *got = 0;
    while (len > 0) {
        uint64_t cap = buf ? (1u << 30) : S_SCRATCH;
        unsigned want = (unsigned) (len < cap ? len : cap);
        uint8_t *dst = buf ? (uint8_t *) buf + *got : scratch;
        int r = gzread(f->gz, dst, want);
        if (r < 0) {
            int zerr = 0;
            const char *msg = gzerror(f->gz, &zerr);
            return bn_fail(err, errlen, zerr == Z_ERRNO ? BN_EIO : BN_EFORMAT,
                           "%s: gzip stream broken after %llu bytes: %s", f->path,
                           (unsigned long long) f->pos, zerr == Z_ERRNO ? strerror(errno) : msg);
        }
        if (r == 0) {
            /* zlib reports a stream cut short only here, as Z_BUF_ERROR. */
            int zerr = 0;
            gzerror(f->gz, &zerr);
            if (zerr == Z_BUF_ERROR)
                return bn_fail(err, errlen, BN_EFORMAT,
                               "%s: gzip stream truncated after %llu bytes", f->path,
                               (unsigned long long) f->pos);
            break;
        }
        *got += (uint64_t) r;
        f->pos += (uint64_t) r;
        len -= (uint64_t) r;
    }
    return BN_OK;
}

/* Reads len bytes at uncompressed offset off (gzip: off >= f->pos, the bytes
 * in between are skipped); buf NULL skips.  Short data is BN_EFORMAT. */
static int s_read_at(s_idx_t *f, void *buf, uint64_t len, uint64_t off,
                     char *err, size_t errlen)
{
    if (!f->gz) {
        if (!buf)
            return BN_OK;
        if (s_pread_all(f->fd, buf, (size_t) len, off) != BN_OK)
            return bn_fail(err, errlen, BN_EIO, "%s: read of %llu bytes at %llu failed", f->path,
                           (unsigned long long) len, (unsigned long long) off);
        return BN_OK;
    }
    assert(off >= f->pos);
    uint64_t got = 0;
    int rc = s_gz_read(f, NULL, off - f->pos, &got, err, errlen);
    if (rc == BN_OK && f->pos == off)
        rc = s_gz_read(f, buf, len, &got, err, errlen);
    if (rc == BN_OK && (f->pos != off + len))
        rc = bn_fail(err, errlen, BN_EFORMAT,
                     "%s: truncated (stream ends after %llu bytes, header says %u items need %llu)",
                     f->path, (unsigned long long) f->pos, f->dims[0],
                     (unsigned long long) (f->data_off + (uint64_t) f->dims[0] * f->item_bytes));
    return rc;
}

/* gzip: reads the rest of the stream, which must end exactly after the last
 * item (this is also where zlib checks the CRC).  Plain: nothing to do, the
 * size was checked at open. */
static int s_finish(s_idx_t *f, char *err, size_t errlen)
{
    if (!f->gz)
        return BN_OK;
    uint64_t need = f->data_off + (uint64_t) f->dims[0] * f->item_bytes;
    int rc = s_read_at(f, NULL, 0, need, err, errlen);
    if (rc != BN_OK)
        return rc;
    uint8_t extra[1];
    uint64_t got = 0;
    rc = s_gz_read(f, extra, 1, &got, err, errlen);
    if (rc == BN_OK && got > 0)
        rc = bn_fail(err, errlen, BN_EFORMAT, "%s: trailing bytes after %u items", f->path,
                     f->dims[0]);
    return rc;
}

/* Opens path and validates its header for `magic` (ndims 1 or 3) and, for a
 * plain file, its size; a gzip file's uncompressed size is bounded by
 * S_GZ_RATIO times its size before anything is allocated. */
static int s_idx_open(s_idx_t *f, const char *path, uint32_t magic, char *err, size_t errlen)
{
    const char *what = magic == S_MAGIC_IMAGES ? "images" : "labels";
    unsigned ndims = magic & 0xffu;
    memset(f, 0, sizeof *f);
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
    uint8_t gzmagic[2] = { 0, 0 };
    bool gzip = size >= 2 && s_pread_all(f->fd, gzmagic, 2, 0) == BN_OK
                && gzmagic[0] == 0x1f && gzmagic[1] == 0x8b;
    uint64_t limit = size;
    if (gzip) {
        f->gz = gzdopen(f->fd, "rb");
        if (!f->gz)
            return bn_fail(err, errlen, BN_ENOMEM, "%s: cannot start gzip reader", path);
        f->fd = -1;     /* owned by gz now */
        gzbuffer(f->gz, 128u * 1024u);
        limit = size * S_GZ_RATIO + 64;
    }
    uint64_t hdr_len = 4 + 4 * (uint64_t) ndims;
    uint8_t hdr[16];
    if (gzip) {
        uint64_t got = 0;
        int rc = s_gz_read(f, hdr, hdr_len, &got, err, errlen);
        if (rc != BN_OK)
            return rc;
        if (got < hdr_len)
            return bn_fail(err, errlen, BN_EFORMAT, "%s: truncated header (%llu bytes, need %llu)",
                           path, (unsigned long long) got, (unsigned long long) hdr_len);
    } else {
        if (size < hdr_len)
            return bn_fail(err, errlen, BN_EFORMAT,
                           "%s: truncated header (%llu bytes, need %llu)", path,
                           (unsigned long long) size, (unsigned long long) hdr_len);
        if (s_pread_all(f->fd, hdr, (size_t) hdr_len, 0) != BN_OK)
            return bn_fail(err, errlen, BN_EIO, "%s: cannot read header", path);
    }
    uint32_t got = s_be32(hdr);
    if (got != magic)
        return bn_fail(err, errlen, BN_EFORMAT,
                       "%s: bad magic 0x%08x (expected 0x%08x for %s)", path, got, magic, what);
    f->item_bytes = 1;
    for (unsigned d = 0; d < ndims; d++)
        f->dims[d] = s_be32(hdr + 4 + 4 * d);
    if (ndims == 3) {
        if (f->dims[1] != BN_IMAGE_ROWS || f->dims[2] != BN_IMAGE_COLS)
            return bn_fail(err, errlen, BN_EFORMAT,
                           "%s: wrong dims: images are %u x %u, byznode's models take %u x %u",
                           path, f->dims[1], f->dims[2], BN_IMAGE_ROWS, BN_IMAGE_COLS);
        f->item_bytes = (uint64_t) f->dims[1] * f->dims[2];
    }
    if (f->dims[0] == 0)
        return bn_fail(err, errlen, BN_EFORMAT, "%s: holds 0 %s", path, what);
    f->data_off = hdr_len;
    uint64_t need = hdr_len + (uint64_t) f->dims[0] * f->item_bytes;
    if (limit < need)
        return bn_fail(err, errlen, BN_EFORMAT,
                       "%s: truncated (%llu bytes%s, header says %u %s need %llu)", path,
                       (unsigned long long) size, gzip ? " of gzip, too few for" : ",",
                       f->dims[0], what, (unsigned long long) need);
    if (!gzip && size > need)
        return bn_fail(err, errlen, BN_EFORMAT,
                       "%s: %llu trailing bytes after %u %s", path,
                       (unsigned long long) (size - need), f->dims[0], what);
    return BN_OK;
}

static void s_idx_close(s_idx_t *f)
{
    if (f->gz)
        gzclose_r(f->gz);
    else if (f->fd >= 0)
        close(f->fd);
    f->gz = NULL;
    f->fd = -1;
}

/* Reads and validates every label of an open label file into a new array. */
static int s_read_labels(s_idx_t *f, uint8_t **labels, char *err, size_t errlen)
{
    uint32_t n = f->dims[0];
    uint8_t *lab = malloc(n);
    if (!lab)
        return bn_fail(err, errlen, BN_ENOMEM, "%s: out of memory for %u labels", f->path, n);
    int rc = s_read_at(f, lab, n, f->data_off, err, errlen);
    if (rc == BN_OK)
        rc = s_finish(f, err, errlen);
    for (uint32_t i = 0; rc == BN_OK && i < n; i++)
        if (lab[i] >= BN_NUM_CLASSES)
            rc = bn_fail(err, errlen, BN_EFORMAT, "%s: label %u at index %u is > %d",
                         f->path, lab[i], i, BN_NUM_CLASSES - 1);
    if (rc != BN_OK) {
        free(lab);
        return rc;
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

static int s_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y ? -1 : x > y;
}

/* Reads images subset[0..m) of an open image file into out, visiting them in
 * file order (each (index, position) pair packed in one u64 and sorted), so
 * that a gzip stream is read once, forwards. */
static int s_read_subset(s_idx_t *f, const uint32_t *subset, uint32_t m, uint8_t *out,
                         char *err, size_t errlen)
{
    size_t px = (size_t) f->item_bytes;
    uint64_t *order = malloc((size_t) m * sizeof *order);
    if (!order)
        return bn_fail(err, errlen, BN_ENOMEM, "%s: out of memory for a subset of %u", f->path, m);
    for (uint32_t k = 0; k < m; k++)
        order[k] = (uint64_t) subset[k] << 32 | k;
    qsort(order, m, sizeof *order, s_cmp_u64);
    int rc = BN_OK;
    for (uint32_t j = 0; rc == BN_OK && j < m; j++) {
        uint32_t idx = (uint32_t) (order[j] >> 32), pos = (uint32_t) order[j];
        uint8_t *dst = out + (size_t) pos * px;
        if (j > 0 && (uint32_t) (order[j - 1] >> 32) == idx)
            memcpy(dst, out + (size_t) (uint32_t) order[j - 1] * px, px);
        else
            rc = s_read_at(f, dst, px, f->data_off + (uint64_t) idx * px, err, errlen);
    }
    free(order);
    return rc;
}

int bn_dataset_load(bn_dataset_t *ds, const char *images_path, const char *labels_path,
                    const uint32_t *subset, uint32_t subset_n, char *err, size_t errlen)
{
    s_idx_t fi = { .fd = -1 }, fl = { .fd = -1 };
    uint8_t *all_labels = NULL;
    memset(ds, 0, sizeof *ds);

    /* The images' header first (shape, count), then every label. */
    int rc = s_idx_open(&fi, images_path, S_MAGIC_IMAGES, err, errlen);
    if (rc != BN_OK)
        goto fail;
    rc = s_idx_open(&fl, labels_path, S_MAGIC_LABELS, err, errlen);
    if (rc == BN_OK)
        rc = s_read_labels(&fl, &all_labels, err, errlen);
    s_idx_close(&fl);
    if (rc != BN_OK)
        goto fail;
    if (fi.dims[0] != fl.dims[0]) {
        rc = bn_fail(err, errlen, BN_EFORMAT, "%s: count mismatch: %u images but %s has %u labels",
                     images_path, fi.dims[0], labels_path, fl.dims[0]);
        goto fail;
    }

    uint32_t count = fi.dims[0];
    size_t px = (size_t) fi.item_bytes;
    if (subset) {
        if (subset_n == 0) {
            rc = bn_fail(err, errlen, BN_EARG, "%s: empty subset", images_path);
            goto fail;
        }
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
    ds->images = malloc((size_t) count * px);
    ds->labels = malloc(count);
    if (!ds->images || !ds->labels) {
        rc = bn_fail(err, errlen, BN_ENOMEM, "%s: out of memory for %u images", images_path, count);
        goto fail;
    }
    if (subset) {
        rc = s_read_subset(&fi, subset, subset_n, ds->images, err, errlen);
        for (uint32_t k = 0; k < subset_n; k++)
            ds->labels[k] = all_labels[subset[k]];
    } else {
        rc = s_read_at(&fi, ds->images, (uint64_t) count * px, fi.data_off, err, errlen);
        memcpy(ds->labels, all_labels, count);
    }
    if (rc == BN_OK)
        rc = s_finish(&fi, err, errlen);
    if (rc != BN_OK)
        goto fail;
    free(all_labels);
    s_idx_close(&fi);
    return BN_OK;

fail:
    free(all_labels);
    s_idx_close(&fi);
    bn_dataset_free(ds);
    return rc;
}

int bn_dataset_file(char *out, size_t len, const char *dir, bool train, bool labels)
{
    const char *pre = train ? "train" : "t10k";
    const char *kind = labels ? "labels-idx1" : "images-idx3";
    int a = snprintf(out, len, "%s/%s-%s-ubyte.gz", dir, pre, kind);
    if (a < 0 || (size_t) a >= len)
        return BN_EARG;
    bool gz = access(out, F_OK) == 0;
    out[a - 3] = 0;
    if (gz && access(out, F_OK) != 0)
        out[a - 3] = '.';
    return BN_OK;
}

int bn_dataset_load_dir(bn_dataset_t *ds, const char *dir, bool train,
                        const uint32_t *subset, uint32_t subset_n, char *err, size_t errlen)
{
    char ip[4096], lp[4096];
    if (bn_dataset_file(ip, sizeof ip, dir, train, false) != BN_OK
        || bn_dataset_file(lp, sizeof lp, dir, train, true) != BN_OK) {
        memset(ds, 0, sizeof *ds);
        return bn_fail(err, errlen, BN_EARG, "%s: data directory path too long", dir);
    }
    return bn_dataset_load(ds, ip, lp, subset, subset_n, err, errlen);
}

int bn_dataset_load_eval(bn_dataset_t *ds, const char *dir, uint32_t subset, uint64_t seed,
                         bool *partial, char *err, size_t errlen)
{
    char lp[4096];
    memset(ds, 0, sizeof *ds);
    *partial = false;
    if (subset == 0)
        return bn_dataset_load_dir(ds, dir, false, NULL, 0, err, errlen);
    if (bn_dataset_file(lp, sizeof lp, dir, false, true) != BN_OK)
        return bn_fail(err, errlen, BN_EARG, "%s: data directory path too long", dir);
    uint8_t *labels = NULL;
    uint32_t total = 0;
    int rc = bn_idx_read_labels(lp, &labels, &total, err, errlen);
    free(labels);
    if (rc != BN_OK)
        return rc;
    if (subset >= total)
        return bn_dataset_load_dir(ds, dir, false, NULL, 0, err, errlen);
    uint32_t *idx = malloc((size_t) total * sizeof *idx);
    if (!idx)
        return bn_fail(err, errlen, BN_ENOMEM, "out of memory for %u test indices", total);
    for (uint32_t i = 0; i < total; i++)
        idx[i] = i;
    bn_rng_t r;
    bn_rng_seed(&r, seed, BN_STREAM_EVAL);
    bn_rng_shuffle_u32(&r, idx, total);
    rc = bn_dataset_load_dir(ds, dir, false, idx, subset, err, errlen);
    free(idx);
    *partial = rc == BN_OK;
    return rc;
}

int bn_dataset_scan_dir(const char *dir, bool train, uint32_t chunk, bn_dataset_chunk_fn fn,
                        void *ctx, char *err, size_t errlen)
{
    char ip[4096], lp[4096];
    if (bn_dataset_file(ip, sizeof ip, dir, train, false) != BN_OK
        || bn_dataset_file(lp, sizeof lp, dir, train, true) != BN_OK)
        return bn_fail(err, errlen, BN_EARG, "%s: data directory path too long", dir);
    if (chunk == 0)
        return bn_fail(err, errlen, BN_EARG, "scan: chunk must be >= 1");
    s_idx_t fi = { .fd = -1 }, fl = { .fd = -1 };
    bn_dataset_t view = { 0 };
    int rc = s_idx_open(&fl, lp, S_MAGIC_LABELS, err, errlen);
    if (rc == BN_OK)
        rc = s_read_labels(&fl, &view.labels, err, errlen);
    s_idx_close(&fl);
    if (rc != BN_OK)
        return rc;
    uint8_t *all_labels = view.labels;
    rc = s_idx_open(&fi, ip, S_MAGIC_IMAGES, err, errlen);
    if (rc == BN_OK && fi.dims[0] != fl.dims[0])
        rc = bn_fail(err, errlen, BN_EFORMAT, "%s: count mismatch: %u images but %s has %u labels",
                     ip, fi.dims[0], lp, fl.dims[0]);
    size_t px = (size_t) fi.item_bytes;
    uint32_t total = fi.dims[0];
    if (chunk > total)
        chunk = total;
    uint8_t *buf = rc == BN_OK ? malloc((size_t) chunk * px) : NULL;
    if (rc == BN_OK && !buf)
        rc = bn_fail(err, errlen, BN_ENOMEM, "%s: out of memory for %u images", ip, chunk);
    view.rows = fi.dims[1];
    view.cols = fi.dims[2];
    view.images = buf;
    for (uint32_t first = 0; rc == BN_OK && first < total; first += chunk) {
        uint32_t m = total - first < chunk ? total - first : chunk;
        rc = s_read_at(&fi, buf, (uint64_t) m * px, fi.data_off + (uint64_t) first * px, err, errlen);
        if (rc != BN_OK)
            break;
        view.n = m;
        view.labels = all_labels + first;
        fn(&view, ctx);
    }
    if (rc == BN_OK)
        rc = s_finish(&fi, err, errlen);
    s_idx_close(&fi);
    free(buf);
    free(all_labels);
    return rc;
}

int bn_dataset_split(bn_dataset_t *ds, const uint32_t *idx, uint32_t m, bn_dataset_t *out)
{
    if (!ds || !out || !idx || m == 0 || m >= ds->n)
        return BN_EARG;
    size_t px = (size_t) ds->rows * ds->cols;
    uint8_t *taken = calloc(ds->n, 1);
    if (!taken)
        return BN_ENOMEM;
    for (uint32_t k = 0; k < m; k++) {
        if (idx[k] >= ds->n || taken[idx[k]]) {
            free(taken);
            return BN_EARG;
        }
        taken[idx[k]] = 1;
    }
    out->images = malloc((size_t) m * px);
    out->labels = malloc(m);
    if (!out->images || !out->labels) {
        free(taken);
        bn_dataset_free(out);
        return BN_ENOMEM;
    }
    out->n = m;
    out->rows = ds->rows;
    out->cols = ds->cols;
    for (uint32_t k = 0; k < m; k++) {
        memcpy(out->images + (size_t) k * px, ds->images + (size_t) idx[k] * px, px);
        out->labels[k] = ds->labels[idx[k]];
    }
    uint32_t kept = 0;
    for (uint32_t i = 0; i < ds->n; i++) {
        if (taken[i])
            continue;
        if (kept != i) {
            memmove(ds->images + (size_t) kept * px, ds->images + (size_t) i * px, px);
            ds->labels[kept] = ds->labels[i];
        }
        kept++;
    }
    ds->n = kept;
    free(taken);
    return BN_OK;
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
