/*  bygars.c -- ByGARS++ (Regatti, Chen & Gupta) reputation aggregation in
 *  decentralized form.
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
 *             alpha = opts.bygars_lr; updated BEFORE it is used, so a newly
 *             seen neighbour already has an informed score);
 *    x_out  = x_i^t + sum_j max(q_j, 0) D_j / sum_j max(q_j, 0).
 *  Negative reputations are clipped to 0 (ByGARS uses them to flip a
 *  negated gradient; flipping a whole model vector is not meaningful).
 *  Reputations are kept per node id (neighbours change in time-varying
 *  graphs) in an open-addressing table of 8 (max_k + 1) slots or more; when
 *  it is 3/4 full new ids are not remembered (they restart from 0 each
 *  round).  in->nb_id == NULL: nothing is remembered.
 *  Degenerate (x_out = x_self): the gradient is not finite, Delta_ii = 0,
 *  or no reputation is positive.  Returns BN_EARG without oracle->grad.
 *  Cost: one oracle gradient, two reads of each vector.
 *  Telemetry: w_j = max(q_j, 0) / sum.
 */
#include "rules.h"

#include <math.h>
#include <string.h>

static bn_rep_slot_t *s_slot(bn_rule_t *self, uint32_t id, int insert)
{
    uint32_t mask = self->rep_cap - 1;
    for (uint32_t h = (uint32_t) bn_mix64(id) & mask;; h = (h + 1) & mask) {
        bn_rep_slot_t *s = &self->rep[h];
        if (s->used && s->id == id)
            return s;
        if (!s->used) {
            if (!insert || 4 * (self->rep_used + 1) > 3 * self->rep_cap)
                return NULL;
            s->used = 1;
            s->id = id;
            s->rep = 0.0;
            self->rep_used++;
            return s;
        }
    }
}

double bn_rules_reputation(const bn_rule_t *self, uint32_t id)
{
    if (!self || !self->rep)
        return 0.0;
    bn_rep_slot_t *s = s_slot((bn_rule_t *) self, id, 0);
    return s ? s->rep : 0.0;
}

static void s_degenerate(bn_rule_t *self, const bn_set_t *set, float *x_out, float *w)
{
    self->stats.degenerate++;
    memcpy(x_out, set->x_self, set->dim * sizeof *x_out);
    for (uint32_t j = 0; j + 1 < set->n; j++)
        w[j] = 0.0f;
    w[set->n - 1] = 1.0f;
}

int bn_rules_bygars(bn_rule_t *self, const bn_set_t *set, float *restrict x_out, float *w)
{
    const bn_oracle_t *or = set->in->oracle;
    if (!or || !or->grad)
        return BN_EARG;
    size_t dim = set->dim;
    uint32_t n = set->n, me = n - 1;
    const float *restrict xp = set->x_prev;
    float *restrict g = self->dvec;
    double *ip = self->s0, *nrm = self->s1, *coef = self->s2;
    or->grad(or->ctx, xp, g);
    if (!bn_select_finite(g, dim)) {
        s_degenerate(self, set, x_out, w);
        return BN_OK;
    }
    for (uint32_t j = 0; j < n; j++) {
        bn_select_diff_stats(set->v[j], xp, g, dim, &ip[j], &nrm[j]);
        nrm[j] = sqrt(nrm[j]);
    }
    double rself = nrm[me];
    if (!(rself > 0.0)) {
        s_degenerate(self, set, x_out, w);
        return BN_OK;
    }
    double alpha = self->opts.bygars_lr, sum = 0.0;
    for (uint32_t j = 0; j < n; j++) {
        double clip = nrm[j] > rself ? rself / nrm[j] : 1.0;
        double obs = -ip[j] * clip;
        double q;
        if (j == me) {
            q = self->rep_self = (1.0 - alpha) * self->rep_self + alpha * obs;
        } else {
            bn_rep_slot_t *s = set->in->nb_id ? s_slot(self, set->in->nb_id[set->orig[j]], 1) : NULL;
            q = alpha * obs;
            if (s)
                q = s->rep = (1.0 - alpha) * s->rep + q;
        }
        double r = q > 0.0 && isfinite(q) ? q : 0.0;
        w[j] = (float) r;
        coef[j] = r * clip;
        sum += r;
    }
    if (!(sum > 0.0) || !isfinite(sum)) {
        s_degenerate(self, set, x_out, w);
        return BN_OK;
    }
    for (size_t c = 0; c < dim; c++)
        x_out[c] = 0.0f;
    for (uint32_t j = 0; j < n; j++) {
        w[j] = (float) (w[j] / sum);
        if (coef[j] == 0.0)
            continue;
        const float *restrict x = set->v[j];
        float a = (float) (coef[j] / sum);
        for (size_t c = 0; c < dim; c++)
            x_out[c] += a * x[c] - a * xp[c];
    }
    for (size_t c = 0; c < dim; c++)
        x_out[c] += xp[c];
    return BN_OK;
}
