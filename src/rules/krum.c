/*  krum.c -- Krum and Multi-Krum (Blanchard et al.) over the n vectors of a
 *  node's neighbourhood, self included.
 *
 *  score(i) = sum of the squared distances from x_i to its n - b - 2 nearest
 *  other vectors (at least 1; fewer than b + 3 vectors counts as a
 *  degenerate round).  krum returns the vector with the lowest score (ties:
 *  lowest index in the set, self last); multi-krum the average of the m
 *  lowest-scored vectors, m = --krum-m or n - b when 0, clamped to [1, n].
 *  Telemetry: 1/m on each selected vector, 0 elsewhere.
 *
 *  Cost: O(n^2 d / 2) for the pairwise distances (blocked over coordinates so
 *  a block of all n vectors stays in cache; float partials per block summed
 *  in double; an overflowing difference gives an infinite distance, which
 *  only ranks that vector last), plus O(n^2 (n - b)) for the scores.
 */
#include "combine.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define S_CHUNK 512
#define S_LANES 16

__attribute__((noinline))
static float s_sqdist(const float *restrict a, const float *restrict b, size_t len)
{
    float acc[S_LANES] = { 0 };
    size_t c = 0;
    for (; c + S_LANES <= len; c += S_LANES)
        for (int l = 0; l < S_LANES; l++) {
            float d = a[c + l] - b[c + l];
            acc[l] += d * d;
        }
    for (; c < len; c++) {
        float d = a[c] - b[c];
        acc[0] += d * d;
    }
    float s = 0.0f;
    for (int l = 0; l < S_LANES; l++)
        s += acc[l];
    return s;
}

enum { S_KRUM, S_MULTI };

typedef struct {
    int      variant;             /* S_KRUM or S_MULTI                             */
    uint32_t b, m;                /* assumed Byzantine; vectors averaged (0: n-b)  */
    double  *dist;                /* cap * cap pairwise squared distances          */
    double  *score, *row;         /* cap each                                      */
    uint32_t *idx;                /* cap                                           */
} s_state_t;

static const bn_rule_param_t s_param_m = {
    "krum-m", BN_RULE_PARAM_U32, 0, 0, 1e6, "vectors averaged (0 = n - b)" };
static const bn_rule_param_t *const s_params_krum[] = { &bn_rule_param_trim, NULL };
static const bn_rule_param_t *const s_params_multi[] = { &bn_rule_param_trim, &s_param_m, NULL };

static int s_init(void *state, const bn_rule_env_t *env)
{
    s_state_t *st = state;
    uint32_t cap = env->cap;
    st->variant = env->ops->variant;
    st->b = (uint32_t) bn_rule_param(env, &bn_rule_param_trim);
    st->m = st->variant == S_MULTI ? (uint32_t) bn_rule_param(env, &s_param_m) : 0;
    st->dist = calloc((size_t) cap * cap, sizeof *st->dist);
    st->score = calloc(cap, sizeof *st->score);
    st->row = calloc(cap, sizeof *st->row);
    st->idx = calloc(cap, sizeof *st->idx);
    return st->dist && st->score && st->row && st->idx ? BN_OK : BN_ENOMEM;
}

static void s_free(void *state)
{
    s_state_t *st = state;
    free(st->dist);
    free(st->score);
    free(st->row);
    free(st->idx);
}

static int s_aggregate(void *state, const bn_set_t *set, float *restrict x_out, float *w)
{
    s_state_t *st = state;
    size_t dim = set->dim;
    uint32_t n = set->n;
    double *dist = st->dist, *score = st->score, *row = st->row;
    uint32_t *idx = st->idx;
    for (size_t i = 0; i < (size_t) n * n; i++)
        dist[i] = 0.0;
    for (size_t c0 = 0; c0 < dim; c0 += S_CHUNK) {
        size_t len = BN_MIN((size_t) S_CHUNK, dim - c0);
        for (uint32_t i = 0; i < n; i++)
            for (uint32_t j = i + 1; j < n; j++)
                dist[(size_t) i * n + j] += s_sqdist(set->v[i] + c0, set->v[j] + c0, len);
    }
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t j = i + 1; j < n; j++)
            dist[(size_t) j * n + i] = dist[(size_t) i * n + j];

    uint32_t b = st->b;
    uint32_t near = n > b + 2 ? n - b - 2 : 1;
    if (n < b + 3 && n > 1)
        set->stats->degenerate++;
    if (near > n - 1)
        near = n - 1;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t t = 0;
        for (uint32_t j = 0; j < n; j++)
            if (j != i)
                row[t++] = dist[(size_t) i * n + j];
        uint32_t *sel = st->idx;
        bn_select_smallest(row, t, near, sel);
        double s = 0.0;
        for (uint32_t q = 0; q < near; q++)
            s += row[sel[q]];
        score[i] = s;
    }
    uint32_t m = 1;
    if (st->variant == S_MULTI) {
        m = st->m ? st->m : (n > b ? n - b : 1);
        m = BN_MAX(1u, BN_MIN(m, n));
    }
    bn_select_smallest(score, n, m, idx);
    bn_combine_mean_of(set, idx, m, x_out, w);
    return BN_OK;
}

const bn_rule_ops_t bn_rule_ops_krum = {
    .name = "krum",
    .summary = "Krum (Blanchard et al.): the vector closest to its n - b - 2 nearest",
    .params = s_params_krum, .flags = BN_RULE_F_BUCKETABLE, .variant = S_KRUM,
    .state_size = sizeof(s_state_t), .init = s_init, .aggregate = s_aggregate, .free = s_free,
};

const bn_rule_ops_t bn_rule_ops_multi_krum = {
    .name = "multi-krum",
    .summary = "Multi-Krum: average of the m best Krum scores",
    .params = s_params_multi, .flags = BN_RULE_F_BUCKETABLE, .variant = S_MULTI,
    .state_size = sizeof(s_state_t), .init = s_init, .aggregate = s_aggregate, .free = s_free,
};
