/*  clipped_gossip.c -- self-centred clipping (He, Karimireddy & Jaggi,
 *  "Byzantine-robust decentralized learning via self-centered clipping"),
 *  in the node's own frame:
 *      x_out = x_self + sum_{j in N_i} w_ij clip(x_j - x_self, tau),
 *      clip(z, tau) = z * min(1, tau / ||z||),  w_ij = 1 / n  (uniform
 *      gossip weights over N_i plus self; the self term is zero).
 *  Each neighbour moves the model by at most tau / n in l2 norm.
 *  Cost: two reads of each neighbour vector (norm, then accumulation).
 *  Telemetry: w_j = min(1, tau / ||x_j - x_self||) / n, and self gets
 *  1 - sum_j w_j, i.e. x_out = sum_j w_j x_j exactly.
 */
#include "combine.h"

#include <float.h>
#include <math.h>

typedef struct {
    float tau;                    /* clipping radius                               */
} s_state_t;

static const bn_rule_param_t s_param_tau = {
    "clip-tau", BN_RULE_PARAM_F32, 1.0, 1e-9, 1e9, "clipping radius (l2, model units)" };
static const bn_rule_param_t *const s_params[] = { &s_param_tau, NULL };

static int s_init(void *state, const bn_rule_env_t *env)
{
    ((s_state_t *) state)->tau = (float) bn_rule_param(env, &s_param_tau);
    return BN_OK;
}

static int s_aggregate(void *state, const bn_set_t *set, float *restrict x_out, float *w)
{
    s_state_t *st = state;
    size_t dim = set->dim;
    uint32_t n = set->n;
    const float *restrict xs = set->x_self;
    double tau = st->tau, inv_n = 1.0 / (double) n;
    for (size_t c = 0; c < dim; c++)
        x_out[c] = 0.0f;
    double wsum = 0.0;
    for (uint32_t j = 0; j + 1 < n; j++) {
        const float *restrict x = set->v[j];
        double dot, nrm;
        bn_select_diff_stats(x, xs, NULL, dim, &dot, &nrm);
        nrm = sqrt(nrm);
        double a = inv_n * bn_clip_factor(nrm, tau);
        w[j] = (float) a;
        wsum += a;
        bn_clip_accumulate(x_out, (float) a, x, xs, dim, nrm);
    }
    for (size_t c = 0; c < dim; c++)
        x_out[c] += xs[c];
    w[n - 1] = (float) (1.0 - wsum);
    return BN_OK;
}

const bn_rule_ops_t bn_rule_ops_clipped_gossip = {
    .name = "clipped-gossip",
    .summary = "ClippedGossip (He, Karimireddy & Jaggi): self-centred clipping at radius tau",
    .params = s_params, .state_size = sizeof(s_state_t), .init = s_init, .aggregate = s_aggregate,
};
