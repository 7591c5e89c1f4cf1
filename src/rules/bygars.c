/*  bygars.c -- ByGARS (Regatti, Chen & Gupta, 000_3ab494291f9190a0.txt,
 *  Section 3.1, Fig. 1a, eqs. 1-2): reputation scores learnt by meta-gradient
 *  steps on an auxiliary data set, in decentralized form (rule "bygars";
 *  the cheaper ByGARS++ is bygars_pp.c, rule "bygars++").
 *
 *  The node plays the server for N_i plus itself; what a worker sends (a
 *  gradient h_j, applied as -gamma h_j) is here a neighbour's cross-update
 *  D_j = clip(x_j - x_i^t) to norm ||Delta_ii|| (the same decentralized
 *  adaptation as bygars++: the node's own step bounds every update, the
 *  paper's gamma_t is absorbed in it).  Reputations q_j are kept per node id
 *  (and q_self for the node), start at 0 (q_0 = 0) and are real-valued: a
 *  negative q flips an update, as in the paper.  Each round, k = bygars-steps
 *  times (Fig. 1a lines 5-8):
 *      pseudo update   x^ = x_i^t + sum_j q_j D_j                    (eq. 1)
 *      meta update     q_j <- q_j - alpha <D_j, grad L(x^)>          (eq. 2)
 *  with grad L the gradient of the loss on the node's auxiliary set
 *  (in->oracle->grad; the flag BN_RULE_F_HELDOUT makes the node hold it
 *  out of its training shard, node_setup.c), then x_out = x_i^t + sum_j
 *  q_j D_j (line 10).
 *  eq. 2 is the exact derivative of L(x_i^t + sum_j q_j D_j) in q_j.
 *  Step size (adaptation): alpha = bygars-lr / (||Delta_ii|| ||g_1||), g_1
 *  the first meta gradient of the round, so that a D_j of the node's own
 *  norm along -g_1 moves q_j by bygars-lr whatever the model's scale (the
 *  paper tunes alpha_t per data set; a model vector has no fixed scale).
 *  |q_j| is clamped to BN_BYGARS_QMAX and a non-finite q restarts from 0.
 *  Reputation memory: reputation.c (shared with bygars++; 3/4 full: new ids
 *  are judged on the round alone, from 0).
 *  Degenerate (x_out = x_self): Delta_ii = 0, a non-finite gradient, or all
 *  q = 0 after the steps.  Returns BN_EARG without oracle->grad.
 *  Cost: k oracle gradients (a forward and backward pass each), 2 k + 1
 *  reads of each vector.  Telemetry: w_j = |q_j c_j| / sum_l |q_l c_l|,
 *  c_j the clip factor (shares of the update's magnitude; ByGARS weights
 *  are signed and need not sum to one).
 */
#include "combine.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define BN_BYGARS_QMAX 1e3

typedef struct {
    bn_rep_table_t rep;           /* first (bn_rep_reputation): q_j per id, q_self */
    double   alpha;               /* meta step size (bygars-lr)                   */
    uint32_t steps;               /* meta updates per round (k)                   */
    float   *xh;                  /* dim: pseudo update x^                        */
    float   *g;                   /* dim: gradient of the auxiliary loss          */
    double  *clip, *q, *ip, *coef;/* cap each                                     */
    double  **mem;                /* cap: the memory of each vector, or NULL      */
} s_state_t;

static const bn_rule_param_t s_param_lr = {
    "bygars-lr", BN_RULE_PARAM_F32, 1.0, 1e-6, 1, "reputation step size alpha" };
static const bn_rule_param_t s_param_steps = {
    "bygars-steps", BN_RULE_PARAM_U32, 2, 1, 100, "bygars: meta updates per round (k)" };
static const bn_rule_param_t *const s_params[] = { &s_param_lr, &s_param_steps, NULL };

static int s_init(void *state, const bn_rule_env_t *env)
{
    s_state_t *st = state;
    uint32_t cap = env->cap;
    st->alpha = (float) bn_rule_param(env, &s_param_lr);
    st->steps = (uint32_t) bn_rule_param(env, &s_param_steps);
    st->xh = bn_alloc_floats(env->dim);
    st->g = bn_alloc_floats(env->dim);
    st->clip = calloc(cap, sizeof *st->clip);
    st->q = calloc(cap, sizeof *st->q);
    st->ip = calloc(cap, sizeof *st->ip);
    st->coef = calloc(cap, sizeof *st->coef);
    st->mem = calloc(cap, sizeof *st->mem);
    int rc = bn_rep_init(&st->rep, cap);
    return st->xh && st->g && st->clip && st->q && st->ip && st->coef && st->mem && rc == BN_OK
         ? BN_OK : BN_ENOMEM;
}

static void s_free(void *state)
{
    s_state_t *st = state;
    bn_free(st->xh);
    bn_free(st->g);
    free(st->clip);
    free(st->q);
    free(st->ip);
    free(st->coef);
    free(st->mem);
    bn_rep_free(&st->rep);
}

/* out = x_prev + sum_j q_j clip_j (x_j - x_prev). */
static void s_combine(s_state_t *st, const bn_set_t *set, float *restrict out)
{
    for (uint32_t j = 0; j < set->n; j++)
        st->coef[j] = st->q[j] * st->clip[j];
    bn_rep_combine(set, st->coef, out);
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

    /* clip factors from ||Delta_ji|| and the remembered reputations */
    double nrm_me, dot;
    bn_select_diff_stats(set->v[me], xp, NULL, dim, &dot, &nrm_me);
    double rself = sqrt(nrm_me);
    if (!(rself > 0.0) || !isfinite(rself)) {
        bn_rep_keep_self(set, x_out, w);
        return BN_OK;
    }
    for (uint32_t j = 0; j < n; j++) {
        double nj;
        bn_select_diff_stats(set->v[j], xp, NULL, dim, &dot, &nj);
        nj = sqrt(nj);
        st->clip[j] = bn_clip_factor(nj, rself);
        st->mem[j] = bn_rep_of(&st->rep, set, j);
        st->q[j] = st->mem[j] ? *st->mem[j] : 0.0;
    }

    /* k pseudo / meta updates */
    double alpha = 0.0;
    for (uint32_t it = 0; it < st->steps; it++) {
        s_combine(st, set, st->xh);
        or->grad(or->ctx, st->xh, st->g);
        if (!bn_select_finite(st->g, dim)) {
            bn_rep_keep_self(set, x_out, w);
            return BN_OK;
        }
        for (uint32_t j = 0; j < n; j++) {
            double nrm;
            bn_select_diff_stats(set->v[j], xp, st->g, dim, &st->ip[j], &nrm);
        }
        if (it == 0) {
            double gn = 0.0;
            for (size_t c = 0; c < dim; c++)
                gn += (double) st->g[c] * (double) st->g[c];
            gn = sqrt(gn);
            if (!(gn > 0.0)) {
                bn_rep_keep_self(set, x_out, w);
                return BN_OK;
            }
            alpha = st->alpha / (rself * gn);
        }
        for (uint32_t j = 0; j < n; j++) {
            /* d/dq_j L(x_prev + sum_l q_l clip_l Delta_l) = clip_j <Delta_j, g> */
            double q = st->q[j] - alpha * st->clip[j] * st->ip[j];
            st->q[j] = !isfinite(q) ? 0.0 : q > BN_BYGARS_QMAX ? BN_BYGARS_QMAX
                     : q < -BN_BYGARS_QMAX ? -BN_BYGARS_QMAX : q;
        }
    }
    double tot = 0.0;
    for (uint32_t j = 0; j < n; j++) {
        if (st->mem[j])
            *st->mem[j] = st->q[j];
        tot += fabs(st->q[j] * st->clip[j]);
    }
    if (!(tot > 0.0) || !isfinite(tot)) {
        bn_rep_keep_self(set, x_out, w);
        return BN_OK;
    }
    s_combine(st, set, x_out);
    for (uint32_t j = 0; j < n; j++)
        w[j] = (float) (fabs(st->q[j] * st->clip[j]) / tot);
    return BN_OK;
}

const bn_rule_ops_t bn_rule_ops_bygars = {
    .name = "bygars",
    .summary = "ByGARS (Regatti et al.): reputations learnt by meta-gradient steps on local data",
    .params = s_params, .flags = BN_RULE_F_USES_PREV | BN_RULE_F_ORACLE | BN_RULE_F_HELDOUT,
    .state_size = sizeof(s_state_t), .init = s_init, .aggregate = s_aggregate, .free = s_free,
    .reputation = bn_rep_reputation,
};
