/*  median.c -- coordinate-wise median (Yin et al.) of the n vectors, self
 *  included; for even n the mean of the two middle values.
 *
 *  Two methods, chosen by n (both one read of each vector from memory):
 *    - n <= BN_MEDIAN_NET_MAX: the trimmed-mean kernel with b = (n - 1) / 2
 *      (trimmed_mean.c: per-lane search on order keys, the same bits on
 *      every kernel set; for even n the formula there gives the mean of the
 *      two middle values);
 *    - larger n: per block of BN_RULE_BLOCK coordinates the vectors are
 *      transposed into a buffer that stays in cache and each column goes
 *      through quickselect (bn_select_median), kept so that the results for
 *      n > 256 stay what they were.
 *  Telemetry: 1/n each; a coordinate-wise median selects no whole vector.
 *  State: the trimmed-mean kernel's scratch (bn_trim_scratch_t) with its
 *  streamed store (begin / observe: each arriving vector's order keys, see
 *  rules.h; not for cap > BN_MEDIAN_NET_MAX or with bucketing).
 */
#include "rules.h"

#ifndef BN_MEDIAN_NET_MAX
#define BN_MEDIAN_NET_MAX 256
#endif

int bn_rules_median_core(bn_trim_scratch_t *ts, const bn_set_t *set, float *x_out, float *w)
{
    size_t dim = set->dim;
    uint32_t n = set->n;
    if (n <= BN_MEDIAN_NET_MAX) {
        int rc = bn_rules_trimmed_core(ts, set, (n - 1) / 2, x_out, w);
        for (uint32_t j = 0; j < n; j++)
            w[j] = 1.0f / (float) n;
        return rc;
    }
    ts->open = 0;                       /* the store is not used above 256 */
    float *t = ts->tblock;
    for (size_t c0 = 0; c0 < dim; c0 += BN_RULE_BLOCK) {
        size_t len = BN_MIN((size_t) BN_RULE_BLOCK, dim - c0);
        bn_select_transpose(set->v, n, c0, len, t);
        for (size_t c = 0; c < len; c++)
            x_out[c0 + c] = bn_select_median(t + c * n, n);
    }
    for (uint32_t j = 0; j < n; j++)
        w[j] = 1.0f / (float) n;
    return BN_OK;
}

static int s_init(void *state, const bn_rule_env_t *env)
{
    int rc = bn_trim_scratch_init(state, env->cap / 2 + 1, env->cap);
    /* the store serves the kernel (n <= BN_MEDIAN_NET_MAX), not bucket means */
    if (rc == BN_OK && env->cap <= BN_MEDIAN_NET_MAX
        && bn_rule_param(env, &bn_rule_param_bucketing) <= 1)
        rc = bn_trim_stream_init(state, env->dim);
    return rc;
}

static void s_begin(void *state, const float *x_prev, const float *x_self, size_t dim)
{
    (void) x_prev;
    bn_trim_stream_begin(state, x_self, dim);
}

static void s_observe(void *state, uint32_t slot, const float *x, size_t dim)
{
    bn_trim_stream_observe(state, slot, x, dim);
}

static void s_free(void *state)
{
    bn_trim_scratch_free(state);
}

static int s_aggregate(void *state, const bn_set_t *set, float *x_out, float *w)
{
    return bn_rules_median_core(state, set, x_out, w);
}

const bn_rule_ops_t bn_rule_ops_median = {
    .name = "median",
    .summary = "coordinate-wise median (Yin et al.)",
    .flags = BN_RULE_F_BUCKETABLE, .state_size = sizeof(bn_trim_scratch_t),
    .init = s_init, .aggregate = s_aggregate, .free = s_free,
    .begin = s_begin, .observe = s_observe,
};
