/*  brsgd.c -- BrSGD aggregator (Li et al., Algorithm 2) applied by a node to
 *  the n vectors of its neighbourhood, self included.
 *
 *  Per coordinate c: a_c = mean; M_jc = 1 if x_j[c] >= a_c; if fewer than
 *  n/2 vectors are >= a_c the column is negated (the minority side scores
 *  -1), so score_j = sum_c M_jc rewards being on the majority side.
 *  Constraint 1: ||x_j - median||_1 <= 2 T.  Decentralized adaptation: the
 *  paper's threshold T is a scale the node cannot know in advance, so
 *  T = median_j ||x_j - median||_1 (then at least half of the vectors pass).
 *  Constraint 2: the ceil(beta n) highest scores (ties: smaller l1 first).
 *  x_out = mean of the vectors meeting both; if none does, the best-scored
 *  vector of constraint 1 (degenerate round).
 *  Cost: the coordinate-wise median (median.c), then O(n d) for the mean,
 *  the majority scores and the l1 distances, blocked so that each vector is
 *  read once from memory for all three, and one more read of the selected
 *  vectors for the final mean.  Telemetry: 1/selected on each selected vector.
 */
#include "combine.h"

#include <math.h>
#include <stdlib.h>

#define S_CHUNK 1024
#define S_LANES 32

/* l1 distance of x to med over one chunk; float lanes, double on overflow. */
__attribute__((noinline))
static double s_l1(const float *restrict x, const float *restrict med, size_t len)
{
    float acc[S_LANES] = { 0 };
    size_t c = 0;
    for (; c + S_LANES <= len; c += S_LANES)
        for (int l = 0; l < S_LANES; l++)
            acc[l] += fabsf(x[c + l] - med[c + l]);
    for (; c < len; c++)
        acc[0] += fabsf(x[c] - med[c]);
    float s = 0.0f;
    for (int l = 0; l < S_LANES; l++)
        s += acc[l];
    if (isfinite(s))
        return s;
    double d = 0.0;
    for (c = 0; c < len; c++)
        d += fabs((double) x[c] - (double) med[c]);
    return d;
}

__attribute__((noinline))
static void s_count_ge(float *restrict cnt, const float *restrict x, const float *restrict a,
                       size_t len)
{
    for (size_t c = 0; c < len; c++)
        cnt[c] += x[c] >= a[c] ? 1.0f : 0.0f;
}

__attribute__((noinline))
static int64_t s_score(const float *restrict x, const float *restrict a,
                       const int32_t *restrict sgn, size_t len)
{
    int32_t s = 0;
    for (size_t c = 0; c < len; c++)
        s += x[c] >= a[c] ? sgn[c] : 0;
    return s;
}

typedef struct {
    float    beta;                /* fraction of vectors kept                      */
    bn_trim_scratch_t t;          /* the median's scratch                          */
    float   *med;                 /* dim floats: the coordinate-wise median        */
    int64_t *score;               /* cap: majority scores                          */
    double  *l1, *key, *tmp;      /* cap each                                      */
    uint32_t *idx;                /* cap                                           */
} s_state_t;

static const bn_rule_param_t s_param_beta = {
    "beta", BN_RULE_PARAM_F32, 0.5, 1e-6, 1, "fraction of the vectors kept" };
static const bn_rule_param_t *const s_params[] = { &s_param_beta, NULL };

static int s_init(void *state, const bn_rule_env_t *env)
{
    s_state_t *st = state;
    uint32_t cap = env->cap;
    st->beta = (float) bn_rule_param(env, &s_param_beta);
    if (bn_trim_scratch_init(&st->t, cap / 2 + 1, cap) != BN_OK)
        return BN_ENOMEM;
    st->med = bn_alloc_floats(env->dim);
    st->score = calloc(cap, sizeof *st->score);
    st->l1 = calloc(cap, sizeof *st->l1);
    st->key = calloc(cap, sizeof *st->key);
    st->tmp = calloc(cap, sizeof *st->tmp);
    st->idx = calloc(cap, sizeof *st->idx);
    return st->med && st->score && st->l1 && st->key && st->tmp && st->idx ? BN_OK : BN_ENOMEM;
}

static void s_free(void *state)
{
    s_state_t *st = state;
    bn_trim_scratch_free(&st->t);
    bn_free(st->med);
    free(st->score);
    free(st->l1);
    free(st->key);
    free(st->tmp);
    free(st->idx);
}

static int s_aggregate(void *state, const bn_set_t *set, float *restrict x_out, float *w)
{
    s_state_t *st = state;
    size_t dim = set->dim;
    uint32_t n = set->n;
    int64_t *score = st->score;
    double *l1 = st->l1, *key = st->key, *tmp = st->tmp;
    uint32_t *idx = st->idx;
    float *restrict med = st->med;
    float inv_n = 1.0f / (float) n;
    /* coordinate-wise median first */
    int rc = bn_rules_median_core(&st->t, set, med, w);
    if (rc != BN_OK)
        return rc;
    for (uint32_t j = 0; j < n; j++) {
        score[j] = 0;
        l1[j] = 0.0;
    }
    float a[S_CHUNK], cnt[S_CHUNK];
    int32_t sgn[S_CHUNK];
    for (size_t c0 = 0; c0 < dim; c0 += S_CHUNK) {
        size_t len = BN_MIN((size_t) S_CHUNK, dim - c0);
        for (size_t c = 0; c < len; c++)
            a[c] = cnt[c] = 0.0f;
        for (uint32_t j = 0; j < n; j++)
            bn_select_axpy(a, inv_n, set->v[j] + c0, len);
        for (uint32_t j = 0; j < n; j++)
            s_count_ge(cnt, set->v[j] + c0, a, len);
        for (size_t c = 0; c < len; c++)
            sgn[c] = 2.0f * cnt[c] < (float) n ? -1 : 1;
        for (uint32_t j = 0; j < n; j++) {
            const float *restrict x = set->v[j] + c0;
            score[j] += s_score(x, a, sgn, len);
            l1[j] += s_l1(x, med + c0, len);
        }
    }
    /* constraint 1: l1 <= 2 * median l1 */
    bn_select_smallest(l1, n, n / 2 + 1, idx);
    double thr = 2.0 * l1[idx[n / 2]];
    double l1max = 0.0;
    for (uint32_t j = 0; j < n; j++)
        l1max = l1[j] > l1max ? l1[j] : l1max;
    /* constraint 2: the ceil(beta n) best scores, ties by smaller l1 */
    for (uint32_t j = 0; j < n; j++)
        key[j] = -(double) score[j] + 0.5 * (l1max > 0.0 ? l1[j] / (l1max * 1.000001) : 0.0);
    uint32_t top = (uint32_t) ceil((double) st->beta * n);
    top = BN_MAX(1u, BN_MIN(top, n));
    bn_select_smallest(key, n, top, idx);
    uint32_t nsel = 0;
    for (uint32_t q = 0; q < top; q++)
        if (l1[idx[q]] <= thr)
            idx[nsel++] = idx[q];
    if (nsel == 0) {
        set->stats->degenerate++;
        for (uint32_t j = 0; j < n; j++)
            tmp[j] = l1[j] <= thr ? key[j] : INFINITY;
        bn_select_smallest(tmp, n, 1, idx);
        nsel = 1;
    }
    bn_combine_mean_of(set, idx, nsel, x_out, w);
    return BN_OK;
}

const bn_rule_ops_t bn_rule_ops_brsgd = {
    .name = "brsgd",
    .summary = "BrSGD (Li et al.): majority-side scores within an l1 ball around the median",
    .params = s_params, .state_size = sizeof(s_state_t),
    .init = s_init, .aggregate = s_aggregate, .free = s_free,
};
