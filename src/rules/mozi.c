/*  mozi.c -- MOZI (Guo et al. 2020), distance- then performance-based
 *  selection by a node over its neighbours.
 *
 *  1. Distance pre-selection: keep the mozi_keep neighbours closest to
 *     x_self in l2 (mozi_keep = 0 means k - b; ties by lower index).
 *  2. Performance check: of those, keep the ones whose loss on the node's
 *     local validation batch, in->oracle->loss, is at most the loss of
 *     x_self (a non-finite loss is rejected).
 *  3. x_out = average of x_self and the kept neighbours (MOZI mixes
 *     alpha x_self + (1 - alpha) mean(kept); here alpha = 1 / (|kept| + 1),
 *     the uniform gossip weight).
 *  Returns BN_EARG if the oracle or its loss is missing.
 *  Cost: one read of each vector for the distances, |pre-selected| + 1
 *  oracle loss evaluations (which dominate: a forward pass each), and one
 *  read of each kept vector.  Telemetry: 1/(|kept|+1) on self and kept.
 */
#include "rules.h"

#include <math.h>

int bn_rules_mozi(bn_rule_t *self, const bn_set_t *set, float *restrict x_out, float *w)
{
    const bn_oracle_t *or = set->in->oracle;
    if (!or || !or->loss)
        return BN_EARG;
    size_t dim = set->dim;
    uint32_t n = set->n, k = n - 1;
    const float *restrict xs = set->x_self;
    double *dist = self->s0;
    uint32_t *idx = self->idx;
    for (uint32_t j = 0; j < k; j++) {
        double dot;
        bn_select_diff_stats(set->v[j], xs, NULL, dim, &dot, &dist[j]);
    }
    uint32_t keep = self->opts.mozi_keep;
    if (keep == 0)
        keep = k > self->opts.b ? k - self->opts.b : 0;
    keep = BN_MIN(keep, k);
    bn_select_smallest(dist, k, keep, idx);
    float own = or->loss(or->ctx, xs);
    uint32_t nsel = 0;
    for (uint32_t q = 0; q < keep; q++) {
        float lj = or->loss(or->ctx, set->v[idx[q]]);
        if (isfinite(lj) && (!isfinite(own) || lj <= own))
            idx[nsel++] = idx[q];
    }
    float inv = 1.0f / (float) (nsel + 1);
    for (uint32_t j = 0; j < n; j++)
        w[j] = 0.0f;
    bn_select_scale(x_out, inv, xs, dim);
    for (uint32_t q = 0; q < nsel; q++) {
        bn_select_axpy(x_out, inv, set->v[idx[q]], dim);
        w[idx[q]] = inv;
    }
    w[n - 1] = inv;
    return BN_OK;
}
