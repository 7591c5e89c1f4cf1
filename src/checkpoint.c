/*  checkpoint.c -- atomic save and verified load; see checkpoint.h.
 *
 *  Layout (little-endian, as written by this host): "BZCK" magic, u32 version,
 *  u32 epoch, u64 round, u64 dim, u32 flags (1 = sgd started, 2 = velocity),
 *  2 x 32 bytes rng states, u32 order_n, u32 order_pos, x[dim] f32,
 *  velocity[dim] f32 if flag 2, order[order_n] u32, u64 FNV-1a checksum of
 *  everything before it.
 */
#include "checkpoint.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_VERSION 1

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

int bn_checkpoint_save(const char *dir, uint32_t id, const bn_checkpoint_t *ck,
                       char *err, size_t errlen)
{
    size_t cap = 4 + 4 + 4 + 8 + 8 + 4 + 64 + 8 + ck->dim * 8 + (size_t) ck->order_n * 4 + 8;
    s_buf_t b = { malloc(cap), 0, cap };
    if (!b.p)
        return bn_fail(err, errlen, BN_ENOMEM, "out of memory for a checkpoint");
    uint32_t version = S_VERSION, flags = (ck->sgd_started ? 1u : 0u) | (ck->velocity ? 2u : 0u);
    uint64_t dim = ck->dim;
    s_put(&b, "BZCK", 4);
    s_put(&b, &version, 4);
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
    int rc = BN_OK;
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        rc = bn_fail(err, errlen, BN_EIO, "%s: %s", tmp, strerror(errno));
        goto done;
    }
    if (fwrite(b.p, 1, b.len, f) != b.len || fflush(f) != 0 || fsync(fileno(f)) != 0) {
        rc = bn_fail(err, errlen, BN_EIO, "%s: write failed: %s", tmp, strerror(errno));
        fclose(f);
        unlink(tmp);
        goto done;
    }
    fclose(f);
    if (rename(tmp, final) != 0) {
        rc = bn_fail(err, errlen, BN_EIO, "rename %s -> %s: %s", tmp, final, strerror(errno));
        unlink(tmp);
    }
done:
    free(b.p);
    return rc;
}

int bn_checkpoint_load(const char *dir, uint32_t id, bn_checkpoint_t *ck, char *err, size_t errlen)
{
    char path[1024];
    s_path(path, sizeof path, dir, id, "");
    FILE *f = fopen(path, "rb");
    if (!f)
        return bn_fail(err, errlen, BN_EIO, "%s: %s", path, strerror(errno));
    size_t expect_max = 4 + 4 + 4 + 8 + 8 + 4 + 64 + 8 + ck->dim * 8 + (size_t) ck->order_n * 4 + 8;
    uint8_t *p = malloc(expect_max + 1);
    size_t len = p ? fread(p, 1, expect_max + 1, f) : 0;
    fclose(f);
    int rc = bn_fail(err, errlen, BN_EFORMAT, "%s: not a checkpoint of this node's model and data", path);
    if (!p)
        return bn_fail(err, errlen, BN_ENOMEM, "out of memory");
    size_t head = 4 + 4 + 4 + 8 + 8 + 4 + 64 + 8;
    if (len < head + 8 || len > expect_max || memcmp(p, "BZCK", 4) != 0)
        goto done;
    uint64_t sum;
    memcpy(&sum, p + len - 8, 8);
    if (sum != s_fnv(p, len - 8)) {
        rc = bn_fail(err, errlen, BN_EFORMAT, "%s: checksum mismatch (corrupt checkpoint)", path);
        goto done;
    }
    uint32_t version, epoch, flags, order_n, order_pos;
    uint64_t round, dim;
    size_t o = 4;
    memcpy(&version, p + o, 4); o += 4;
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
    for (uint32_t i = 0; i < order_n; i++) {
        uint32_t v;
        memcpy(&v, p + o + dim * 4 * (has_v ? 2 : 1) + (size_t) i * 4, 4);
        if (v >= order_n)
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
    rc = BN_OK;
done:
    free(p);
    return rc;
}
