/*  tv_norm.c -- total-variation-norm penalised update (Peng & Ling, ICASSP
 *  2020): x_i <- x_i - lr (grad + lambda sum_j sign(x_i - x_j)).
 *
 *  Here x_self already contains the local gradient step, so the rule applies
 *  only the penalty step, with the node's x_self and its neighbours' x_j:
 *      x_out = x_self - lr * lambda * sum_{j in N_i} sign(x_self - x_j)
 *  (sign(0) = 0).  Each neighbour moves each coordinate by at most
 *  lr * lambda, whatever it sent.  Cost: one read of each vector.
 *  Telemetry: every vector has the same bounded influence, 1/n each.
 */
#include "rules.h"

/* acc += sign(xs - x); out of line so GCC does not vectorise the loop over
 * neighbours with gathers. */
__attribute__((noinline))
static void s_sign_acc(float *restrict acc, const float *restrict xs, const float *restrict x,
                       size_t dim)
{
    for (size_t c = 0; c < dim; c++)
        acc[c] += (xs[c] > x[c] ? 1.0f : 0.0f) - (xs[c] < x[c] ? 1.0f : 0.0f);
}

typedef struct {
    float step;                   /* lr * lambda                                   */
} s_state_t;

static const bn_rule_param_t s_param_lambda = {
    "lambda", BN_RULE_PARAM_F32, 0.001, 0, 1e6, "penalty (step = --lr x lambda)" };
static const bn_rule_param_t *const s_params[] = { &s_param_lambda, NULL };

static int s_init(void *state, const bn_rule_env_t *env)
{
    s_state_t *st = state;
    st->step = env->opts->lr * (float) bn_rule_param(env, &s_param_lambda);
    return BN_OK;
}

static int s_aggregate(void *state, const bn_set_t *set, float *restrict x_out, float *w)
{
    s_state_t *st = state;
    size_t dim = set->dim;
    uint32_t n = set->n;
    const float *restrict xs = set->x_self;
    float step = st->step;
    for (size_t c = 0; c < dim; c++)
        x_out[c] = 0.0f;            /* signed count of neighbours below minus above */
    for (uint32_t j = 0; j + 1 < n; j++)
        s_sign_acc(x_out, xs, set->v[j], dim);
    for (size_t c = 0; c < dim; c++)
        x_out[c] = xs[c] - step * x_out[c];
    for (uint32_t j = 0; j < n; j++)
        w[j] = 1.0f / (float) n;
    return BN_OK;
}

const bn_rule_ops_t bn_rule_ops_tv_norm = {
    .name = "tv-norm",
    .summary = "TV-norm penalty (Peng & Ling): each neighbour moves a coordinate by <= lr lambda",
    .params = s_params, .state_size = sizeof(s_state_t), .init = s_init, .aggregate = s_aggregate,
};
