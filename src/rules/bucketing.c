/*  bucketing.c -- s-resampling / bucketing (He, Karimireddy & Jaggi) before
 *  trimmed-mean, median, krum or multi-krum.
 *
 *  Each round the n vectors (self included) are put in a random order (the
 *  rule's own RNG, seeded from opts.seed and BN_STREAM_BUCKETING, so runs
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

int bn_rules_bucketing(bn_rule_t *self, const bn_set_t *set, bn_rule_fn inner,
                       float *x_out, float *w)
{
    size_t dim = set->dim;
    uint32_t n = set->n, s = self->opts.bucketing;
    if (s <= 1 || n <= 1)
        return inner(self, set, x_out, w);
    for (uint32_t i = 0; i < n; i++)
        self->perm[i] = i;
    bn_rng_shuffle_u32(&self->rng, self->perm, n);
    uint32_t nb = (n + s - 1) / s;
    for (uint32_t b = 0; b < nb; b++) {
        uint32_t lo = b * s, hi = BN_MIN(lo + s, n);
        float inv = 1.0f / (float) (hi - lo);
        float *restrict out = self->bucket + (size_t) b * dim;
        bn_select_scale(out, inv, set->v[self->perm[lo]], dim);
        self->bucket_of[self->perm[lo]] = b;
        for (uint32_t i = lo + 1; i < hi; i++) {
            bn_select_axpy(out, inv, set->v[self->perm[i]], dim);
            self->bucket_of[self->perm[i]] = b;
        }
        self->bv[b] = out;
    }
    bn_set_t bset = *set;
    bset.n = nb;
    bset.v = self->bv;
    bset.orig = self->perm;
    int rc = inner(self, &bset, x_out, self->bw);
    if (rc != BN_OK)
        return rc;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t b = self->bucket_of[i];
        uint32_t size = BN_MIN(b * s + s, n) - b * s;
        w[i] = self->bw[b] / (float) size;
    }
    return BN_OK;
}
