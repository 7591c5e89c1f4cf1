/*  bucketing.c -- s-resampling / bucketing (He, Karimireddy & Jaggi) before
 *  trimmed-mean, median, krum or multi-krum.
 *
 *  Each round the n vectors (self included) are put in a random order (the
 *  rule's own RNG, seeded from the run seed and BN_STREAM_BUCKETING, so runs
 *  repeat), cut into ceil(n / s) consecutive buckets of s (the last may be
 *  smaller) and averaged per bucket; the inner rule then aggregates the
 *  bucket means.  This is Algorithm 2 of the paper with T = ceil(n / s):
 *  every vector is used exactly once.  With n divisible by s the mean of the
 *  bucket means is the mean of the inputs.
 *  Cost: one read of each vector and a write of ceil(n / s) bucket means,
 *  plus the inner rule on ceil(n / s) vectors.
 *  Telemetry: each member gets its bucket's weight / the bucket's size.
 */
#include "rules.h"

#include <stdlib.h>

int bn_bucketing_init(bn_bucketing_t *b, uint32_t s, uint64_t seed, size_t dim, uint32_t cap)
{
    b->s = s;
    b->nb_max = (cap + s - 1) / s;
    b->bucket = bn_alloc_floats((size_t) b->nb_max * dim);
    b->bv = calloc(b->nb_max, sizeof *b->bv);
    b->bw = calloc(b->nb_max, sizeof *b->bw);
    b->bbad = calloc(b->nb_max, sizeof *b->bbad);
    b->perm = calloc(cap, sizeof *b->perm);
    b->bucket_of = calloc(cap, sizeof *b->bucket_of);
    bn_rng_seed(&b->rng, seed, BN_STREAM_BUCKETING);
    return b->bucket && b->bv && b->bw && b->bbad && b->perm && b->bucket_of ? BN_OK : BN_ENOMEM;
}

void bn_bucketing_free(bn_bucketing_t *b)
{
    bn_free(b->bucket);
    free(b->bv);
    free(b->bw);
    free(b->bbad);
    free(b->perm);
    free(b->bucket_of);
}

int bn_bucketing_apply(bn_bucketing_t *bk, const bn_rule_ops_t *inner, void *inner_state,
                       const bn_set_t *set, float *x_out, float *w)
{
    size_t dim = set->dim;
    uint32_t n = set->n, s = bk->s;
    if (s <= 1 || n <= 1)
        return inner->aggregate(inner_state, set, x_out, w);
    for (uint32_t i = 0; i < n; i++)
        bk->perm[i] = i;
    bn_rng_shuffle_u32(&bk->rng, bk->perm, n);
    uint32_t nb = (n + s - 1) / s;
    for (uint32_t b = 0; b < nb; b++) {
        uint32_t lo = b * s, hi = BN_MIN(lo + s, n);
        float inv = 1.0f / (float) (hi - lo);
        float *restrict out = bk->bucket + (size_t) b * dim;
        bn_select_scale(out, inv, set->v[bk->perm[lo]], dim);
        bk->bucket_of[bk->perm[lo]] = b;
        for (uint32_t i = lo + 1; i < hi; i++) {
            bn_select_axpy(out, inv, set->v[bk->perm[i]], dim);
            bk->bucket_of[bk->perm[i]] = b;
        }
        bk->bv[b] = out;
        bk->bbad[b] = 0;
    }
    bn_set_t bset = *set;
    bset.n = nb;
    bset.v = bk->bv;
    bset.orig = bk->perm;
    bset.bad = bk->bbad;
    int rc = inner->aggregate(inner_state, &bset, x_out, bk->bw);
    if (rc != BN_OK)
        return rc;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t b = bk->bucket_of[i];
        uint32_t size = BN_MIN(b * s + s, n) - b * s;
        w[i] = bk->bw[b] / (float) size;
    }
    return BN_OK;
}
