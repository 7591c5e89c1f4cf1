/*  checkpoint.c -- atomic save and verified load; see checkpoint.h.
 *
 *  Layout (little-endian, as written by this host): "BZCK" magic, u32 version
 *  (2), u64 config fingerprint,
 *  u32 epoch, u64 round, u64 dim, u32 flags (1 = sgd started, 2 = velocity),
 *  2 x 32 bytes rng states, u32 order_n, u32 order_pos, x[dim] f32,
 *  velocity[dim] f32 if flag 2, order[order_n] u32, u64 FNV-1a checksum of
 *  everything before it.
 */
#include "checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_VERSION 2
#define S_HEAD (4 + 4 + 8 + 4 + 8 + 8 + 4 + 64 + 8)   /* through order_pos */

typedef struct { uint8_t *p; size_t len, cap; } s_buf_t;

static void s_put(s_buf_t *b, const void *src, size_t n)
{
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

static uint64_t s_fnv(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static void s_path(char *out, size_t cap, const char *dir, uint32_t id, const char *suffix)
{
    snprintf(out, cap, "%s/checkpoint-%u.bin%s", dir, id, suffix);
}

/* Writes len bytes of p to a new file tmp, fsync-ed; removes tmp on failure. */
static int s_write_file(const char *tmp, const void *p, size_t len, char *err, size_t errlen)
{
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return bn_fail(err, errlen, BN_EIO, "%s: cannot create: %s", tmp, strerror(errno));
    const uint8_t *at = p;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, at, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = w < 0 ? errno : EIO;
            close(fd);
            unlink(tmp);
            return bn_fail(err, errlen, BN_EIO, "%s: write failed: %s", tmp, strerror(e));
        }
        at += w;
        left -= (size_t) w;
    }
    if (fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return bn_fail(err, errlen, BN_EIO, "%s: fsync failed: %s", tmp, strerror(e));
    }
    if (close(fd) != 0) {
        int e = errno;
        unlink(tmp);
        return bn_fail(err, errlen, BN_EIO, "%s: close failed: %s", tmp, strerror(e));
    }
    return BN_OK;
}

/* tmp -> final, then the directory entry made durable. */
static int s_commit(const char *tmp, const char *final, const char *dir, char *err, size_t errlen)
{
    if (rename(tmp, final) != 0) {
        int e = errno;
        unlink(tmp);
        return bn_fail(err, errlen, BN_EIO, "rename %s -> %s: %s", tmp, final, strerror(e));
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        /* Some file systems cannot fsync a directory (EINVAL); the rename
         * itself already happened, so only a real I/O error counts. */
        int rc = fsync(dfd);
        int e = errno;
        close(dfd);
        if (rc != 0 && e == EIO)
            return bn_fail(err, errlen, BN_EIO, "%s: fsync failed: %s", dir, strerror(e));
    }
    return BN_OK;
}

int bn_checkpoint_save(const char *dir, uint32_t id, const bn_checkpoint_t *ck,
                       char *err, size_t errlen)
{
    size_t cap = S_HEAD + ck->dim * 8 + (size_t) ck->order_n * 4 + 8;
    s_buf_t b = { malloc(cap), 0, cap };
    if (!b.p)
        return bn_fail(err, errlen, BN_ENOMEM, "out of memory for a checkpoint");
    uint32_t version = S_VERSION, flags = (ck->sgd_started ? 1u : 0u) | (ck->velocity ? 2u : 0u);
    uint64_t dim = ck->dim;
    s_put(&b, "BZCK", 4);
    s_put(&b, &version, 4);
    s_put(&b, &ck->config_fp, 8);
    s_put(&b, &ck->epoch, 4);
    s_put(&b, &ck->round, 8);
    s_put(&b, &dim, 8);
    s_put(&b, &flags, 4);
    s_put(&b, &ck->batch_rng, 32);
    s_put(&b, &ck->attack_rng, 32);
    s_put(&b, &ck->order_n, 4);
    s_put(&b, &ck->order_pos, 4);
    s_put(&b, ck->x, ck->dim * 4);
    if (ck->velocity)
        s_put(&b, ck->velocity, ck->dim * 4);
    s_put(&b, ck->order, (size_t) ck->order_n * 4);
    uint64_t sum = s_fnv(b.p, b.len);
    s_put(&b, &sum, 8);

    char tmp[1024], final[1024];
    s_path(tmp, sizeof tmp, dir, id, ".tmp");
    s_path(final, sizeof final, dir, id, "");
    int rc = s_write_file(tmp, b.p, b.len, err, errlen);
    if (rc == BN_OK)
        rc = s_commit(tmp, final, dir, err, errlen);
    free(b.p);
    return rc;
}

/* The stored sample order (order_n 4-byte indices at q, unaligned): every index below order_n. */
static bool s_order_ok(const uint8_t *q, uint32_t order_n)
{
    for (uint32_t i = 0; i < order_n; i++) {
        uint32_t v;
        memcpy(&v, q + (size_t) i * 4, 4);
        if (v >= order_n)
            return false;
    }
    return true;
}

int bn_checkpoint_load(const char *dir, uint32_t id, uint64_t config_fp, uint32_t epochs,
                       bn_checkpoint_t *ck, char *err, size_t errlen)
{
    char path[1024];
    s_path(path, sizeof path, dir, id, "");
    FILE *f = fopen(path, "rb");
    if (!f)
        return bn_fail(err, errlen, BN_EIO, "%s: %s", path, strerror(errno));
    size_t expect_max = S_HEAD + ck->dim * 8 + (size_t) ck->order_n * 4 + 8;
    uint8_t *p = malloc(expect_max + 1);
    size_t len = p ? fread(p, 1, expect_max + 1, f) : 0;
    fclose(f);
    int rc = bn_fail(err, errlen, BN_EFORMAT, "%s: not a checkpoint of this node's model and data", path);
    if (!p)
        return bn_fail(err, errlen, BN_ENOMEM, "out of memory");
    size_t head = S_HEAD;
    if (len < head + 8 || len > expect_max || memcmp(p, "BZCK", 4) != 0)
        goto done;
    uint64_t sum;
    memcpy(&sum, p + len - 8, 8);
    if (sum != s_fnv(p, len - 8)) {
        rc = bn_fail(err, errlen, BN_EFORMAT, "%s: checksum mismatch (corrupt checkpoint)", path);
        goto done;
    }
    uint32_t version, epoch, flags, order_n, order_pos;
    uint64_t round, dim, fp;
    size_t o = 4;
    memcpy(&version, p + o, 4); o += 4;
    if (version != S_VERSION) {
        rc = bn_fail(err, errlen, BN_EFORMAT, "%s: checkpoint format %u, this byznode reads %u",
                     path, version, S_VERSION);
        goto done;
    }
    memcpy(&fp, p + o, 8); o += 8;
    memcpy(&epoch, p + o, 4); o += 4;
    memcpy(&round, p + o, 8); o += 8;
    memcpy(&dim, p + o, 8); o += 8;
    memcpy(&flags, p + o, 4); o += 4;
    bn_rng_t r1, r2;
    memcpy(&r1, p + o, 32); o += 32;
    memcpy(&r2, p + o, 32); o += 32;
    memcpy(&order_n, p + o, 4); o += 4;
    memcpy(&order_pos, p + o, 4); o += 4;
    bool has_v = flags & 2u;
    if (version != S_VERSION || dim != ck->dim || order_n != ck->order_n || order_pos > order_n
        || has_v != (ck->velocity != NULL)
        || len != o + dim * 4 * (has_v ? 2 : 1) + (size_t) order_n * 4 + 8)
        goto done;
    if (!s_order_ok(p + o + dim * 4 * (has_v ? 2 : 1), order_n))
        goto done;
    if (fp != config_fp) {
        rc = bn_fail(err, errlen, BN_EMISMATCH, "%s: written with another configuration (fingerprint "
                     "%016llx, this run %016llx: a swarm-wide option such as --batch, --seed or --epochs "
                     "differs)", path, (unsigned long long) fp, (unsigned long long) config_fp);
        goto done;
    }
    if (epoch > epochs) {
        rc = bn_fail(err, errlen, BN_EMISMATCH, "%s: at epoch %u, beyond this run's %u epochs",
                     path, epoch, epochs);
        goto done;
    }
    memcpy(ck->x, p + o, dim * 4);
    o += dim * 4;
    if (has_v) {
        memcpy(ck->velocity, p + o, dim * 4);
        o += dim * 4;
    }
    memcpy(ck->order, p + o, (size_t) order_n * 4);
    ck->epoch = epoch;
    ck->round = round;
    ck->sgd_started = flags & 1u;
    ck->batch_rng = r1;
    ck->attack_rng = r2;
    ck->order_pos = order_pos;
    ck->config_fp = fp;
    rc = BN_OK;
done:
    free(p);
    return rc;
}

/* The 1-based "epoch" of one jsonl line, 0 if it has none. */
static uint32_t s_line_epoch(const char *line)
{
    const char *k = strstr(line, "\"epoch\":");
    if (!k)
        return 0;
    char *end = NULL;
    unsigned long v = strtoul(k + 8, &end, 10);
    return end == k + 8 || v > UINT32_MAX ? 0 : (uint32_t) v;
}

/* Reads the last BN_CHECKPOINT_LOG_TAIL bytes of f (of a file that is not
 * regular: the first ones) into buf (BN_CHECKPOINT_LOG_TAIL + 1 bytes) and
 * NUL-terminates them.  The byte count; *cut when the window starts after
 * the file's first byte.  0 when f cannot be positioned. */
static size_t s_read_tail(FILE *f, char *buf, bool *cut)
{
    struct stat st;
    *cut = false;
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > BN_CHECKPOINT_LOG_TAIL) {
        if (fseeko(f, st.st_size - (off_t) BN_CHECKPOINT_LOG_TAIL, SEEK_SET) != 0)
            return 0;
        *cut = true;
    }
    size_t n = fread(buf, 1, BN_CHECKPOINT_LOG_TAIL, f);
    buf[n] = '\0';
    return n;
}

uint32_t bn_checkpoint_log_last(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char *buf = malloc((size_t) BN_CHECKPOINT_LOG_TAIL + 1);
    bool cut = false;
    size_t n = buf ? s_read_tail(f, buf, &cut) : 0;
    fclose(f);
    uint32_t last = 0;
    char *p = buf, *end = buf + n;
    if (cut) {                           /* the window's first line is a fragment */
        char *nl = memchr(buf, '\n', n);
        p = nl ? nl + 1 : end;
    }
    for (char *nl; p < end && (nl = memchr(p, '\n', (size_t) (end - p))); p = nl + 1) {
        *nl = '\0';                      /* a torn last line (no '\n') does not count */
        uint32_t e = s_line_epoch(p);
        if (e && strlen(p) == (size_t) (nl - p))    /* nor one with a NUL byte */
            last = e;
    }
    free(buf);
    return last;
}

int bn_checkpoint_trim_log(const char *path, uint32_t epochs_done, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? BN_OK : bn_fail(err, errlen, BN_EIO, "%s: %s", path, strerror(errno));
    s_buf_t b = { NULL, 0, 0 };
    char *line = malloc((size_t) BN_CHECKPOINT_LOG_TAIL + 1);
    long len;
    int rc = BN_OK;
    bool changed = false;
    if (!line) {
        rc = bn_fail(err, errlen, BN_ENOMEM, "%s: out of memory", path);
        goto done;
    }
    while ((len = bn_read_line(f, line, (size_t) BN_CHECKPOINT_LOG_TAIL + 1)) != 0) {
        uint32_t e = len > 0 ? s_line_epoch(line) : 0;    /* len < 0: too long, or a NUL */
        if (e == 0 || e > epochs_done || line[len - 1] != '\n') {
            changed = true;       /* this line and everything after it go */
            break;
        }
        if (b.len + (size_t) len > b.cap) {
            size_t nc = (b.cap ? 2 * b.cap : 4096) + (size_t) len;
            uint8_t *np = realloc(b.p, nc);
            if (!np) {
                rc = bn_fail(err, errlen, BN_ENOMEM, "%s: out of memory", path);
                goto done;
            }
            b.p = np;
            b.cap = nc;
        }
        s_put(&b, line, (size_t) len);
    }
    if (ferror(f)) {
        rc = bn_fail(err, errlen, BN_EIO, "%s: read error", path);
        goto done;
    }
    if (changed) {
        char tmp[1100], dir[1024];
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        snprintf(dir, sizeof dir, "%s", path);
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = '\0';
        else
            snprintf(dir, sizeof dir, ".");
        rc = s_write_file(tmp, b.p ? (const void *) b.p : "", b.len, err, errlen);
        if (rc == BN_OK)
            rc = s_commit(tmp, path, dir, err, errlen);
    }
done:
    free(line);
    free(b.p);
    fclose(f);
    return rc;
}
