/*  mean.c -- D-PSGD averaging and the stand-alone baseline.
 *
 *  mean:       x_out = (x_self + sum_j x_j) / n over the n finite vectors;
 *              each term is scaled by 1/n before it is added so that finite
 *              inputs cannot overflow the sum.  Cost: one read of each vector.
 *  standalone: no communication, x_out = x_self; weight 1 on self.
 *  Neither keeps state.
 */
#include "rules.h"

#include <string.h>

int bn_rules_mean_core(const bn_set_t *set, float *restrict x_out, float *w)
{
    size_t dim = set->dim;
    uint32_t n = set->n;
    float inv = 1.0f / (float) n;
    bn_select_scale(x_out, inv, set->v[0], dim);
    for (uint32_t j = 1; j < n; j++)
        bn_select_axpy(x_out, inv, set->v[j], dim);
    for (uint32_t j = 0; j < n; j++)
        w[j] = inv;
    return BN_OK;
}

static int s_mean(void *state, const bn_set_t *set, float *x_out, float *w)
{
    (void) state;
    return bn_rules_mean_core(set, x_out, w);
}

static int s_standalone(void *state, const bn_set_t *set, float *x_out, float *w)
{
    (void) state;
    memcpy(x_out, set->x_self, set->dim * sizeof *x_out);
    for (uint32_t j = 0; j + 1 < set->n; j++)
        w[j] = 0.0f;
    w[set->n - 1] = 1.0f;
    return BN_OK;
}

const bn_rule_ops_t bn_rule_ops_mean = {
    .name = "mean",
    .summary = "D-PSGD: plain average of the neighbourhood (no defence)",
    .aggregate = s_mean,
};

const bn_rule_ops_t bn_rule_ops_standalone = {
    .name = "standalone",
    .summary = "no communication: each node trains alone",
    .flags = BN_RULE_F_NO_GOSSIP,
    .aggregate = s_standalone,
};
