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
#include "rules.h"

#include <math.h>

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

int bn_rules_brsgd(bn_rule_t *self, const bn_set_t *set, float *restrict x_out, float *w)
{
    size_t dim = set->dim;
    uint32_t n = set->n;
    int64_t *score = self->score;
    double *l1 = self->s0, *key = self->s1, *tmp = self->s2;
    uint32_t *idx = self->idx;
    float *restrict med = self->dvec;
    float inv_n = 1.0f / (float) n;
    /* coordinate-wise median first (uses s0 as scratch: reset below) */
    int rc = bn_rules_median(self, set, med, w);
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
    uint32_t top = (uint32_t) ceil((double) self->opts.beta * n);
    top = BN_MAX(1u, BN_MIN(top, n));
    bn_select_smallest(key, n, top, idx);
    uint32_t nsel = 0;
    for (uint32_t q = 0; q < top; q++)
        if (l1[idx[q]] <= thr)
            idx[nsel++] = idx[q];
    if (nsel == 0) {
        self->stats.degenerate++;
        for (uint32_t j = 0; j < n; j++)
            tmp[j] = l1[j] <= thr ? key[j] : INFINITY;
        bn_select_smallest(tmp, n, 1, idx);
        nsel = 1;
    }
    float inv = 1.0f / (float) nsel;
    for (uint32_t j = 0; j < n; j++)
        w[j] = 0.0f;
    bn_select_scale(x_out, inv, set->v[idx[0]], dim);
    w[idx[0]] = inv;
    for (uint32_t q = 1; q < nsel; q++) {
        bn_select_axpy(x_out, inv, set->v[idx[q]], dim);
        w[idx[q]] = inv;
    }
    return BN_OK;
}
