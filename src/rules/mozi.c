/*  mozi.c -- MOZI (Guo et al. 2020), distance- then performance-based
 *  selection by a node over its neighbours.
 *
 *  1. Distance pre-selection: keep the --mozi-keep neighbours closest to
 *     x_self in l2 (--mozi-keep 0 means k - b; ties by lower index).
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
#include <stdlib.h>

typedef struct {
    uint32_t b, keep;             /* assumed Byzantine; pre-selection size (0: k-b) */
    double  *dist;                /* cap                                           */
    uint32_t *idx;                /* cap                                           */
} s_state_t;

static const bn_rule_param_t s_param_keep = {
    "mozi-keep", BN_RULE_PARAM_U32, 0, 0, 1e6, "distance pre-selection size (0 = k - b)" };
static const bn_rule_param_t *const s_params[] = { &bn_rule_param_trim, &s_param_keep, NULL };

static int s_init(void *state, const bn_rule_env_t *env)
{
    s_state_t *st = state;
    st->b = (uint32_t) bn_rule_param(env, &bn_rule_param_trim);
    st->keep = (uint32_t) bn_rule_param(env, &s_param_keep);
    st->dist = calloc(env->cap, sizeof *st->dist);
    st->idx = calloc(env->cap, sizeof *st->idx);
    return st->dist && st->idx ? BN_OK : BN_ENOMEM;
}

static void s_free(void *state)
{
    s_state_t *st = state;
    free(st->dist);
    free(st->idx);
}

static int s_aggregate(void *state, const bn_set_t *set, float *restrict x_out, float *w)
{
    s_state_t *st = state;
    const bn_oracle_t *or = set->in->oracle;
    if (!or || !or->loss)
        return BN_EARG;
    size_t dim = set->dim;
    uint32_t n = set->n, k = n - 1;
    const float *restrict xs = set->x_self;
    double *dist = st->dist;
    uint32_t *idx = st->idx;
    for (uint32_t j = 0; j < k; j++) {
        double dot;
        bn_select_diff_stats(set->v[j], xs, NULL, dim, &dot, &dist[j]);
    }
    uint32_t keep = st->keep;
    if (keep == 0)
        keep = k > st->b ? k - st->b : 0;
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

const bn_rule_ops_t bn_rule_ops_mozi = {
    .name = "mozi",
    .summary = "MOZI (Guo et al.): nearest neighbours whose local loss is no worse than own",
    .params = s_params, .flags = BN_RULE_F_ORACLE, .state_size = sizeof(s_state_t),
    .init = s_init, .aggregate = s_aggregate, .free = s_free,
};
