/*  bygars_pp.c -- ByGARS++ (Regatti, Chen & Gupta, 000_3ab494291f9190a0.txt,
 *  Fig. 1b / eq. 3) reputation aggregation in decentralized form, rule
 *  "bygars++" (the paper's ByGARS with meta-gradient steps is bygars.c).
 *
 *  The node plays the server for N_i plus itself.  A neighbour's "gradient"
 *  is its cross-update Delta_ji = x_j - x_i^t (a descent step, i.e. minus a
 *  scaled gradient).  Each round:
 *    g      = in->oracle->grad(x_i^t) on the node's held-out batch;
 *    D_j    = clip(Delta_ji) to norm ||Delta_ii|| (decentralized adaptation:
 *             the paper's server scales by its own step size; here the node's
 *             own step bounds every update, so a rescaled vector can neither
 *             inflate its reputation nor take a huge step);
 *    q_j   <- (1 - alpha) q_j + alpha <-D_j, g>       (ByGARS++ eq. 3,
 *             alpha = --bygars-lr; updated BEFORE it is used, so a newly
 *             seen neighbour already has an informed score);
 *    x_out  = x_i^t + sum_j max(q_j, 0) D_j / sum_j max(q_j, 0).
 *  Negative reputations are clipped to 0 (ByGARS uses them to flip a
 *  negated gradient; flipping a whole model vector is not meaningful).
 *  Reputations are kept per node id (neighbours change in time-varying
 *  graphs) in reputation.c's table (shared with bygars); when it is 3/4
 *  full new ids are not remembered (they restart from 0 each round).
 *  in->nb_id == NULL: nothing is remembered.
 *  Degenerate (x_out = x_self): the gradient is not finite, Delta_ii = 0,
 *  or no reputation is positive.  Returns BN_EARG without oracle->grad.
 *  Cost: one oracle gradient, two reads of each vector.
 *  Telemetry: w_j = max(q_j, 0) / sum.
 */
#include "combine.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    bn_rep_table_t rep;           /* first (bn_rep_reputation): q_j per id, own   */
    double   alpha;               /* reputation step size (bygars-lr)             */
    float   *g;                   /* dim floats: the oracle's gradient            */
    double  *ip, *nrm, *coef;     /* cap each                                     */
} s_state_t;

static const bn_rule_param_t s_param_lr = {
    "bygars-lr", BN_RULE_PARAM_F32, 1.0, 1e-6, 1, "reputation step size alpha" };
static const bn_rule_param_t *const s_params[] = { &s_param_lr, NULL };

static int s_init(void *state, const bn_rule_env_t *env)
{
    s_state_t *st = state;
    uint32_t cap = env->cap;
    st->alpha = (float) bn_rule_param(env, &s_param_lr);
    st->g = bn_alloc_floats(env->dim);
    st->ip = calloc(cap, sizeof *st->ip);
    st->nrm = calloc(cap, sizeof *st->nrm);
    st->coef = calloc(cap, sizeof *st->coef);
    int rc = bn_rep_init(&st->rep, cap);
    return st->g && st->ip && st->nrm && st->coef && rc == BN_OK ? BN_OK : BN_ENOMEM;
}

static void s_free(void *state)
{
    s_state_t *st = state;
    bn_free(st->g);
    free(st->ip);
    free(st->nrm);
    free(st->coef);
    bn_rep_free(&st->rep);
}

static int s_aggregate(void *state, const bn_set_t *set, float *restrict x_out, float *w)
{
    s_state_t *st = state;
    const bn_oracle_t *or = set->in->oracle;
    if (!or || !or->grad)
        return BN_EARG;
    size_t dim = set->dim;
    uint32_t n = set->n, me = n - 1;
    const float *restrict xp = set->x_prev;
    float *restrict g = st->g;
    double *ip = st->ip, *nrm = st->nrm, *coef = st->coef;
    or->grad(or->ctx, xp, g);
    if (!bn_select_finite(g, dim)) {
        bn_rep_keep_self(set, x_out, w);
        return BN_OK;
    }
    for (uint32_t j = 0; j < n; j++) {
        bn_select_diff_stats(set->v[j], xp, g, dim, &ip[j], &nrm[j]);
        nrm[j] = sqrt(nrm[j]);
    }
    double rself = nrm[me];
    if (!(rself > 0.0)) {
        bn_rep_keep_self(set, x_out, w);
        return BN_OK;
    }
    double alpha = st->alpha, sum = 0.0;
    for (uint32_t j = 0; j < n; j++) {
        double clip = bn_clip_factor(nrm[j], rself);
        double obs = -ip[j] * clip;
        /* eq. 3; without memory (no ids, table full) judged on the round alone */
        double *mem = bn_rep_of(&st->rep, set, j);
        double q = alpha * obs;
        if (mem)
            q = *mem = (1.0 - alpha) * *mem + q;
        double r = q > 0.0 && isfinite(q) ? q : 0.0;
        w[j] = (float) r;
        coef[j] = r * clip;
        sum += r;
    }
    if (!(sum > 0.0) || !isfinite(sum)) {
        bn_rep_keep_self(set, x_out, w);
        return BN_OK;
    }
    for (uint32_t j = 0; j < n; j++) {
        w[j] = (float) (w[j] / sum);
        coef[j] /= sum;
    }
    bn_rep_combine(set, coef, x_out);
    return BN_OK;
}

const bn_rule_ops_t bn_rule_ops_bygars_pp = {
    .name = "bygars++",
    .summary = "ByGARS++ (Regatti et al.): reputations from the local gradient, clipped updates",
    .params = s_params, .flags = BN_RULE_F_USES_PREV | BN_RULE_F_ORACLE,
    .state_size = sizeof(s_state_t), .init = s_init, .aggregate = s_aggregate, .free = s_free,
    .reputation = bn_rep_reputation,
};
