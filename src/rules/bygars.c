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
 *  with grad L the gradient of the loss on the node's auxiliary batch
 *  (in->oracle->grad), then x_out = x_i^t + sum_j q_j D_j (line 10).
 *  eq. 2 is the exact derivative of L(x_i^t + sum_j q_j D_j) in q_j.
 *  Step size (adaptation): alpha = bygars-lr / (||Delta_ii|| ||g_1||), g_1
 *  the first meta gradient of the round, so that a D_j of the node's own
 *  norm along -g_1 moves q_j by bygars-lr whatever the model's scale (the
 *  paper tunes alpha_t per data set; a model vector has no fixed scale).
 *  |q_j| is clamped to BN_BYGARS_QMAX and a non-finite q restarts from 0.
 *  Reputation memory as in bygars++ (open addressing on the id, 8 (max_k+1)
 *  slots or more; 3/4 full: new ids are judged on the round alone, from 0).
 *  Degenerate (x_out = x_self): Delta_ii = 0, a non-finite gradient, or all
 *  q = 0 after the steps.  Returns BN_EARG without oracle->grad.
 *  Cost: k oracle gradients (a forward and backward pass each), 2 k + 1
 *  reads of each vector.  Telemetry: w_j = |q_j c_j| / sum_l |q_l c_l|,
 *  c_j the clip factor (shares of the update's magnitude; ByGARS weights
 *  are signed and need not sum to one).
 */
#include "rules.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define BN_BYGARS_QMAX 1e3

typedef struct {
    uint32_t id;                  /* node id                                      */
    uint8_t  used;                /* slot occupied                                */
    double   q;                   /* reputation q_j                               */
} s_slot_t;

typedef struct {
    double   alpha;               /* meta step size (bygars-lr)                   */
    uint32_t steps;               /* meta updates per round (k)                   */
    float   *xh;                  /* dim: pseudo update x^                        */
    float   *g;                   /* dim: gradient of the auxiliary loss          */
    double  *clip, *q, *ip;       /* cap each                                     */
    s_slot_t **slot;              /* cap: the memory slot of each vector, or NULL */
    s_slot_t *rep;                /* rep_cap slots                                */
    uint32_t rep_cap, rep_used;   /* power of two; occupied                       */
    double   q_self;              /* the node's own reputation                    */
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
    st->slot = calloc(cap, sizeof *st->slot);
    uint32_t rc = 256;
    while (rc < 8 * cap && rc < (1u << 24))
        rc <<= 1;
    st->rep_cap = rc;
    st->rep = calloc(rc, sizeof *st->rep);
    return st->xh && st->g && st->clip && st->q && st->ip && st->slot && st->rep
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
    free(st->slot);
    free(st->rep);
}

static s_slot_t *s_slot(s_state_t *st, uint32_t id, int insert)
{
    uint32_t mask = st->rep_cap - 1;
    for (uint32_t h = (uint32_t) bn_mix64(id) & mask;; h = (h + 1) & mask) {
        s_slot_t *s = &st->rep[h];
        if (s->used && s->id == id)
            return s;
        if (!s->used) {
            if (!insert || 4 * (st->rep_used + 1) > 3 * st->rep_cap)
                return NULL;
            s->used = 1;
            s->id = id;
            s->q = 0.0;
            st->rep_used++;
            return s;
        }
    }
}

static double s_reputation(void *state, uint32_t id)
{
    s_slot_t *s = s_slot(state, id, 0);
    return s ? s->q : 0.0;
}

static void s_degenerate(const bn_set_t *set, float *x_out, float *w)
{
    set->stats->degenerate++;
    memcpy(x_out, set->x_self, set->dim * sizeof *x_out);
    for (uint32_t j = 0; j + 1 < set->n; j++)
        w[j] = 0.0f;
    w[set->n - 1] = 1.0f;
}

/* out = x_prev + sum_j q_j clip_j (x_j - x_prev). */
static void s_combine(const s_state_t *st, const bn_set_t *set, float *restrict out)
{
    size_t dim = set->dim;
    const float *restrict xp = set->x_prev;
    for (size_t c = 0; c < dim; c++)
        out[c] = 0.0f;
    for (uint32_t j = 0; j < set->n; j++) {
        float a = (float) (st->q[j] * st->clip[j]);
        if (a == 0.0f)
            continue;
        const float *restrict x = set->v[j];
        for (size_t c = 0; c < dim; c++)
            out[c] += a * x[c] - a * xp[c];
    }
    for (size_t c = 0; c < dim; c++)
        out[c] += xp[c];
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
        s_degenerate(set, x_out, w);
        return BN_OK;
    }
    for (uint32_t j = 0; j < n; j++) {
        double nj;
        bn_select_diff_stats(set->v[j], xp, NULL, dim, &dot, &nj);
        nj = sqrt(nj);
        st->clip[j] = nj > rself ? rself / nj : 1.0;
        st->slot[j] = j == me || !set->in->nb_id ? NULL
                    : s_slot(st, set->in->nb_id[set->orig[j]], 1);
        st->q[j] = j == me ? st->q_self : st->slot[j] ? st->slot[j]->q : 0.0;
    }

    /* k pseudo / meta updates */
    double alpha = 0.0;
    for (uint32_t it = 0; it < st->steps; it++) {
        s_combine(st, set, st->xh);
        or->grad(or->ctx, st->xh, st->g);
        if (!bn_select_finite(st->g, dim)) {
            s_degenerate(set, x_out, w);
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
                s_degenerate(set, x_out, w);
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
    st->q_self = st->q[me];
    double tot = 0.0;
    for (uint32_t j = 0; j < n; j++) {
        if (st->slot[j])
            st->slot[j]->q = st->q[j];
        tot += fabs(st->q[j] * st->clip[j]);
    }
    if (!(tot > 0.0) || !isfinite(tot)) {
        s_degenerate(set, x_out, w);
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
    .params = s_params, .flags = BN_RULE_F_USES_PREV | BN_RULE_F_ORACLE,
    .state_size = sizeof(s_state_t), .init = s_init, .aggregate = s_aggregate, .free = s_free,
    .reputation = s_reputation,
};
