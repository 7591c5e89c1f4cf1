/*  similarity.c -- the similarity-based reweighting of Xu & Huang (ICASSP
 *  2022, Algorithm 1, eqs. 5-8) and its two Table-1 ablations.
 *
 *  For every j in N_i and i itself, the cross-update is
 *      Delta_ji = x_j^{t+1} - x_i^t                                  (eq. 5)
 *  p_j = fractions of (+, 0, -) entries of Delta_ji, q_i those of Delta_ii;
 *      w1_j = softmax_j(-c KL(p_j || q_i))                           (eqs. 6-7)
 *      w2_j = max(0, cos(Delta_ji, Delta_ii))                        (eq. 8)
 *      w_j  = w1_j * w2_j   (similarity), w1_j (similarity-kl), w2_j (-cos)
 *      x_out = x_i^t + sum_j w_j clip(Delta_ji) / sum_j w_j,
 *      clip(D) = D * min(1, ||Delta_ii|| / ||D||).
 *  The bins are the three fixed signs (never data-dependent edges), both
 *  histograms are smoothed with eps = BN_SIM_EPS before the KL (so an empty
 *  bin gives a large but finite divergence), every received vector is scored
 *  (the rule knows nothing of who is Byzantine) and the weights are divided
 *  by their sum.
 *
 *  Degenerate rounds (stats.degenerate, x_out = x_self, weight 1 on self):
 *    - ||Delta_ii|| == 0: the clip radius is 0, so every clipped update is 0
 *      and the formula gives x_i^t == x_self anyway; the cosine is undefined;
 *    - the weights sum to zero or are not finite (cannot happen for finite
 *      inputs with Delta_ii != 0, since the node's own weight is positive).
 *  A neighbour with Delta_ji == 0 has cosine 0.
 *
 *  Arithmetic (since 2 Dec 2026, issue 9; same formula, exact sum): the
 *  weights are e_j = exp(-c KL_j) (x cos_j); the node's own KL is 0, the
 *  smallest, so no max subtraction is needed and e_j is in [0, 1].  Each
 *  term e_j clip_j Delta_jc is then at most R = ||Delta_ii|| in magnitude,
 *  and the sum over the set is kept in int64 fixed point: each term rounded
 *  once (in double) to a multiple of 2^-sh, 2^sh = 2^S_SHIFT / 2^ceil(log2
 *  R), by the 1.5 * 2^52 magic number (the same bits on every kernel set).
 *  Integer addition is exact and associative, so the result does not
 *  depend on the order in which the terms were added: models can be
 *  aggregated in arrival order (streaming) and still give the same bits as
 *  one call over all of them.  sum_j e_j is over k + 1 doubles, summed in
 *  set order at the end.  Rounding: R 2^-48 per term.
 *
 *  Streaming (BN_RULE_F_STREAMS): begin computes Delta_ii, its statistics
 *  and the node's own term; observe does pass 1 of a neighbour's vector
 *  (sign counts, dot with Delta_ii, ||Delta_ji||^2 in float lanes, a chunk
 *  redone in double if the float partials overflow, which also detects NaN
 *  / inf: this rule flags them itself), its weight, and adds its term, so
 *  the caller can free the vector right after.  aggregate takes the
 *  observed work by slot (or pointer), does the same for the vectors not
 *  observed, and converts the sum.  Cost: two reads of each vector, both
 *  while it is hot (on arrival); after the last arrival only one pass over
 *  d.  Requires a finite x_prev (aggregate.c substitutes x_self otherwise).
 *  State: O(d) for the round (Delta_ii, the int64 sum) plus O(cap)
 *  statistics; nothing is remembered between rounds.
 */
#include "rules.h"
#include "../clone.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define S_LANES 64

/* fmaf only where it is a single instruction; the libm fallback is slow. */
#ifdef FP_FAST_FMAF
#define S_FMA(a, b, c) fmaf((a), (b), (c))
#else
#define S_FMA(a, b, c) ((a) * (b) + (c))
#endif
#define S_CHUNK 4096

enum { S_BOTH, S_KL, S_COS };       /* similarity, similarity-kl, similarity-cos */

/* Fixed point of the weighted sum: each term e_j clip_j Delta_jc is at most
 * R = ||Delta_ii|| in magnitude, and is accumulated as round(term * S) in
 * int64 with S = 2^(S_SHIFT - ceil(log2 R)) (one bit less per doubling of
 * the vectors past 2^14), so a term is below 2^S_SHIFT and the sum of all
 * of them below 2^62. */
#define S_SHIFT 48
#define S_MAGIC 6755399441055744.0      /* 1.5 * 2^52: t + S_MAGIC rounds t */

/* The pass-1 statistics of one vector and what the weights make of them. */
typedef struct {
    double  dot, nrm;               /* <Delta_ji, Delta_ii>, ||Delta_ji||^2       */
    int64_t pos;                    /* positive entries of Delta_ji              */
    uint32_t neg;                   /* negative entries                          */
    uint8_t flag;                   /* bit 0: non-finite; bit 1: |Delta| > FLT_MAX;
                                     * bit 2: term not in acc yet (aggregate)    */
    double  e, a;                   /* unnormalised weight, coefficient e * clip */
} s_vec_t;

typedef struct {
    int      variant;               /* S_BOTH, S_KL or S_COS                     */
    uint32_t cap;                   /* vectors at most                           */
    float    c;                     /* softmax scale on -KL                      */
    s_vec_t *m;                     /* cap: the set's members (aggregate)        */
    /* the round: from begin, or from aggregate when there was none */
    float   *d;                     /* dim: Delta_ii                             */
    int64_t *acc;                   /* dim: sum_j round(S a_j Delta_jc), self's in */
    const float *b_prev, *b_self;   /* the round's x_prev, x_self (borrowed)     */
    int      open;                  /* begin called, aggregate not yet           */
    s_vec_t  self;                  /* Delta_ii's statistics and weight          */
    double   r;                     /* ||Delta_ii||: the clip radius R           */
    double   q[3];                  /* Delta_ii's sign fractions                 */
    int      sh;                    /* S = 2^sh                                  */
    int      acc_ok;                /* acc holds exactly self + the observed     */
    /* streaming: the vectors observed in the open round, by slot */
    const float **o_ptr;            /* cap: the pointer observed (compared only)  */
    s_vec_t *o;                     /* cap: its statistics and weight            */
    uint8_t *o_seen;                /* cap: 1 observed, 2 also used by aggregate */
} s_state_t;

static const bn_rule_param_t s_param_c = {
    "c", BN_RULE_PARAM_F32, 5, 1e-6, 1e6, "softmax scale on -KL(sign histograms)" };
static const bn_rule_param_t *const s_params[] = { &s_param_c, NULL };

double bn_rules_sign_kl(const double p[3], const double q[3])
{
    const double eps = BN_SIM_EPS, norm = 1.0 + 3.0 * eps;
    double kl = 0.0;
    for (int s = 0; s < 3; s++) {
        double ps = (p[s] + eps) / norm, qs = (q[s] + eps) / norm;
        kl += ps * log(ps / qs);
    }
    return kl > 0.0 ? kl : 0.0;
}

/* Float pass over one chunk; returns 0 if the partials overflowed or met a
 * NaN (caller redoes the chunk in double). */
static inline BN_CLONE_BODY int s_chunk_float_body(const float *restrict x,
                                                   const float *restrict xp,
                                                   const float *restrict r, size_t len,
                                                   double *dot, double *nrm, int64_t *pos,
                                                   int64_t *neg)
{
    float fd[S_LANES] = { 0 }, fn[S_LANES] = { 0 };
    int32_t ip[S_LANES] = { 0 }, in[S_LANES] = { 0 };
    size_t c = 0;
    for (; c + S_LANES <= len; c += S_LANES)
        for (int l = 0; l < S_LANES; l++) {
            float d = x[c + l] - xp[c + l];
            fd[l] = S_FMA(d, r[c + l], fd[l]);
            fn[l] = S_FMA(d, d, fn[l]);
            ip[l] += d > 0.0f;
            in[l] += d < 0.0f;
        }
    for (; c < len; c++) {
        float d = x[c] - xp[c];
        fd[0] = S_FMA(d, r[c], fd[0]);
        fn[0] = S_FMA(d, d, fn[0]);
        ip[0] += d > 0.0f;
        in[0] += d < 0.0f;
    }
    float sd = 0.0f, sn = 0.0f;
    int64_t sp = 0, sg = 0;
    for (int l = 0; l < S_LANES; l++) {
        sd += fd[l];
        sn += fn[l];
        sp += ip[l];
        sg += in[l];
    }
    *pos += sp;
    *neg += sg;
    if (!isfinite(sd) || !isfinite(sn))
        return 0;
    *dot += sd;
    *nrm += sn;
    return 1;
}

BN_CLONE(int, s_chunk_float, (const float *restrict x, const float *restrict xp,
                              const float *restrict r, size_t len, double *dot, double *nrm,
                              int64_t *pos, int64_t *neg),
         (x, xp, r, len, dot, nrm, pos, neg))
#define s_chunk_float BN_CLONE_PICK(s_chunk_float)

/* Double pass over one chunk; returns 1 if some |Delta| exceeds FLT_MAX
 * (the float difference would overflow), and leaves NaN in dot/nrm if the
 * chunk holds NaN or infinity. */
static int s_chunk_double(const float *x, const float *xp, const float *xs, size_t len,
                          double *dot, double *nrm)
{
    double sd = 0.0, sn = 0.0;
    int huge = 0;
    for (size_t c = 0; c < len; c++) {
        double d = (double) x[c] - (double) xp[c];
        double r = (double) xs[c] - (double) xp[c];
        sd += d * r;
        sn += d * d;
        huge |= fabs(d) > (double) FLT_MAX;
    }
    *dot += sd;
    *nrm += sn;
    return huge;
}

/* acc[i] += round(a (x[i] - p[i])) over len coordinates, in double: the
 * same bits on every kernel set (element-wise, no contraction; the
 * magic-number rounding needs |a (x - p)| < 2^51). */
static inline BN_CLONE_BODY int s_fix_body(int64_t *restrict acc, const float *restrict x,
                                           const float *restrict p, double a, size_t len)
{
    int64_t mbits;
    double magic = S_MAGIC;
    memcpy(&mbits, &magic, sizeof mbits);
    for (size_t i = 0; i < len; i++) {
        double t = a * ((double) x[i] - (double) p[i]) + S_MAGIC;
        int64_t b;
        memcpy(&b, &t, sizeof b);
        acc[i] += b - mbits;
    }
    return 0;
}
BN_CLONE(int, s_fix, (int64_t *restrict acc, const float *restrict x, const float *restrict p,
                      double a, size_t len), (acc, x, p, a, len))
#define s_fix BN_CLONE_PICK(s_fix)

static int s_init(void *state, const bn_rule_env_t *env)
{
    s_state_t *st = state;
    uint32_t cap = env->cap;
    st->variant = env->ops->variant;
    st->c = (float) bn_rule_param(env, &s_param_c);
    st->m = calloc(cap, sizeof *st->m);
    st->d = bn_alloc_floats(env->dim);
    st->acc = calloc(env->dim, sizeof *st->acc);
    st->o_ptr = calloc(cap, sizeof *st->o_ptr);
    st->o = calloc(cap, sizeof *st->o);
    st->o_seen = calloc(cap, sizeof *st->o_seen);
    st->cap = cap;
    return st->m && st->d && st->acc && st->o_ptr && st->o && st->o_seen ? BN_OK : BN_ENOMEM;
}

static void s_free(void *state)
{
    s_state_t *st = state;
    free(st->m);
    bn_free(st->d);
    free(st->acc);
    free(st->o_ptr);
    free(st->o);
    free(st->o_seen);
}

/* Pass 1 of one vector over all chunks: sign counts, dot with Delta_ii (d),
 * squared norm, in float lanes, a chunk redone in double if they overflow
 * (which also detects NaN / inf). */
static void s_vec_pass1(const float *x, const float *xp, const float *xs, const float *d,
                        size_t dim, s_vec_t *v)
{
    v->dot = v->nrm = 0.0;
    v->pos = 0;
    v->neg = 0;
    v->flag = 0;
    for (size_t c0 = 0; c0 < dim && !(v->flag & 1); c0 += S_CHUNK) {
        size_t len = BN_MIN((size_t) S_CHUNK, dim - c0);
        int64_t p = 0, g = 0;
        if (!s_chunk_float(x + c0, xp + c0, d + c0, len, &v->dot, &v->nrm, &p, &g)) {
            if (s_chunk_double(x + c0, xp + c0, xs + c0, len, &v->dot, &v->nrm))
                v->flag |= 2;
            if (!isfinite(v->dot) || !isfinite(v->nrm))
                v->flag |= 1;
        }
        v->pos += p;
        v->neg += (uint32_t) g;
    }
}

/* The weight e (in [0, 1]: the node's own KL is 0 and its cosine 1, so the
 * softmax needs no max subtraction) and the coefficient a = e clip of a
 * vector from its statistics; 0 for a non-finite one. */
static void s_weigh(const s_state_t *st, size_t dim, s_vec_t *v)
{
    v->e = v->a = 0.0;
    if (v->flag & 1)
        return;
    double p[3] = { (double) v->pos / (double) dim,
                    (double) (dim - (size_t) v->pos - v->neg) / (double) dim,
                    (double) v->neg / (double) dim };
    double kl = bn_rules_sign_kl(p, st->q), c = st->c;
    double nj = sqrt(v->nrm), nself = st->r;
    double w1 = exp(-c * kl), w2 = 0.0;
    if (nj > 0.0 && nself > 0.0) {
        w2 = v->dot / (nj * nself);
        w2 = w2 > 0.0 ? (w2 < 1.0 ? w2 : 1.0) : 0.0;
    }
    v->e = st->variant == S_KL ? w1 : st->variant == S_COS ? w2 : w1 * w2;
    v->a = v->e * (nj > nself ? nself / nj : 1.0);
}

/* Adds vector x's term round(S a (x - x_prev)) to acc. */
static void s_add(s_state_t *st, const float *x, const float *xp, double a, size_t dim)
{
    if (a == 0.0 || !(st->r > 0.0))
        return;
    double as = ldexp(a, st->sh);
    for (size_t c0 = 0; c0 < dim; c0 += S_CHUNK)
        s_fix(st->acc + c0, x + c0, xp + c0, as, BN_MIN((size_t) S_CHUNK, dim - c0));
}

/* Starts a round from the node's own vectors: Delta_ii, its statistics,
 * the clip radius, the scale and acc = the node's own term. */
static void s_round(s_state_t *st, const float *xp, const float *xs, size_t dim)
{
    for (size_t c = 0; c < dim; c++)
        st->d[c] = xs[c] - xp[c];
    s_vec_pass1(xs, xp, xs, st->d, dim, &st->self);
    st->r = sqrt(st->self.nrm);
    st->q[0] = (double) st->self.pos / (double) dim;
    st->q[1] = (double) (dim - (size_t) st->self.pos - st->self.neg) / (double) dim;
    st->q[2] = (double) st->self.neg / (double) dim;
    s_weigh(st, dim, &st->self);
    int e = 0, extra = 0;
    (void) frexp(st->r, &e);                  /* r < 2^e */
    while (extra < 30 && (st->cap >> 14 >> extra) > 0)
        extra++;                              /* more than 2^14 vectors */
    st->sh = S_SHIFT - extra - e;
    memset(st->acc, 0, dim * sizeof *st->acc);
    s_add(st, xs, xp, st->self.a, dim);
    for (uint32_t j = 0; j < st->cap; j++)
        st->o_seen[j] = 0;
    st->acc_ok = 1;
}

static void s_begin(void *state, const float *x_prev, const float *x_self, size_t dim)
{
    s_state_t *st = state;
    st->b_prev = x_prev;
    st->b_self = x_self;
    s_round(st, x_prev, x_self, dim);
    st->open = 1;
}

/* Pass 1 of x, its weight, and its term into acc: after this the rule
 * needs nothing more of x (BN_RULE_F_STREAMS). */
static void s_observe(void *state, uint32_t slot, const float *x, size_t dim)
{
    s_state_t *st = state;
    if (!st->open || slot + 1 >= st->cap || !x)
        return;
    if (st->o_seen[slot]) {
        st->acc_ok = 0;                       /* observed twice: acc must be rebuilt */
        return;
    }
    s_vec_pass1(x, st->b_prev, st->b_self, st->d, dim, &st->o[slot]);
    s_weigh(st, dim, &st->o[slot]);
    s_add(st, x, st->b_prev, st->o[slot].a, dim);
    st->o_ptr[slot] = x;
    st->o_seen[slot] = 1;
}

/* The slot in which set member j was observed, or UINT32_MAX: the slot the
 * caller names (if its pointer, when given, matches), else the one holding
 * its pointer (slots are in x_nb order and at least the vector's index
 * there, so the search starts at orig[j]). */
static uint32_t s_observed(const s_state_t *st, const bn_set_t *set, uint32_t j)
{
    const float *x = set->v[j];
    if (set->slot && set->slot[j] != UINT32_MAX) {
        uint32_t s = set->slot[j];
        return s + 1 < st->cap && st->o_seen[s] && (!x || st->o_ptr[s] == x) ? s : UINT32_MAX;
    }
    for (uint32_t s = set->orig[j]; x && s + 1 < st->cap; s++)
        if (st->o_seen[s] && st->o_ptr[s] == x)
            return s;
    return UINT32_MAX;
}

/* Each member's statistics and weight: observed (counted as streamed) or
 * computed now (flag bit 2: its term is not in acc).  BN_EARG if a released
 * vector's slot was not observed. */
static int s_members(s_state_t *st, const bn_set_t *set, int use)
{
    uint32_t me = set->n - 1;
    for (uint32_t j = 0; j < me; j++) {
        uint32_t s = use ? s_observed(st, set, j) : UINT32_MAX;
        if (s != UINT32_MAX && st->o_seen[s] == 1) {
            st->m[j] = st->o[s];
            st->o_seen[s] = 2;
            set->stats->streamed++;
            continue;
        }
        if (!set->v[j])
            return BN_EARG;
        s_vec_pass1(set->v[j], set->x_prev, set->x_self, st->d, set->dim, &st->m[j]);
        s_weigh(st, set->dim, &st->m[j]);
        st->m[j].flag |= 4;
    }
    st->m[me] = st->self;
    for (uint32_t s = 0; s + 1 < st->cap; s++)
        if (st->o_seen[s] == 1)
            st->acc_ok = 0;                   /* observed but not in the set */
    return BN_OK;
}

/* acc = the sum over the set's members, and only them. */
static int s_sum(s_state_t *st, const bn_set_t *set)
{
    uint32_t me = set->n - 1;
    if (!st->acc_ok) {
        for (uint32_t j = 0; j < me; j++)
            if (!set->v[j])
                return BN_EARG;               /* released, and acc cannot be used */
        memset(st->acc, 0, set->dim * sizeof *st->acc);
        s_add(st, set->x_self, set->x_prev, st->self.a, set->dim);
    }
    for (uint32_t j = 0; j < me; j++)
        if (!st->acc_ok || (st->m[j].flag & 4))
            s_add(st, set->v[j], set->x_prev, st->m[j].a, set->dim);
    return BN_OK;
}

static void s_keep_self(const bn_set_t *set, float *x_out, float *w)
{
    set->stats->degenerate++;
    memcpy(x_out, set->x_self, set->dim * sizeof *x_out);
    for (uint32_t j = 0; j < set->n; j++)
        w[j] = 0.0f;
    w[set->n - 1] = 1.0f;
}

static int s_aggregate(void *state, const bn_set_t *set, float *restrict x_out, float *w)
{
    s_state_t *st = state;
    size_t dim = set->dim;
    uint32_t n = set->n;
    int use = st->open && st->b_prev == set->x_prev && st->b_self == set->x_self;
    st->open = 0;
    if (!use)
        s_round(st, set->x_prev, set->x_self, dim);
    int rc = s_members(st, set, use);
    if (rc != BN_OK)
        return rc;
    double wsum = 0.0;
    for (uint32_t j = 0; j < n; j++) {
        set->bad[j] = st->m[j].flag & 1;
        wsum += st->m[j].e;
    }
    if (!(st->r > 0.0) || !(wsum > 0.0) || !isfinite(wsum)) {
        s_keep_self(set, x_out, w);
        return BN_OK;
    }
    if ((rc = s_sum(st, set)) != BN_OK)
        return rc;
    for (uint32_t j = 0; j < n; j++)
        w[j] = (float) (st->m[j].e / wsum);
    const float *restrict xp = set->x_prev;
    const int64_t *restrict acc = st->acc;
    double inv = ldexp(1.0 / wsum, -st->sh);
    for (size_t c = 0; c < dim; c++)
        x_out[c] = (float) ((double) xp[c] + (double) acc[c] * inv);
    return BN_OK;
}

#define S_FLAGS (BN_RULE_F_CHECKS_FINITE | BN_RULE_F_USES_PREV | BN_RULE_F_STREAMS)

const bn_rule_ops_t bn_rule_ops_similarity = {
    .name = "similarity",
    .summary = "Xu & Huang 2022 (the paper): softmax(-c KL of sign histograms) x ReLU cosine, clipped",
    .params = s_params, .flags = S_FLAGS, .variant = S_BOTH, .state_size = sizeof(s_state_t),
    .init = s_init, .aggregate = s_aggregate, .free = s_free,
    .begin = s_begin, .observe = s_observe,
};

const bn_rule_ops_t bn_rule_ops_similarity_kl = {
    .name = "similarity-kl",
    .summary = "Table 1 ablation: the KL softmax weight only, clipped",
    .params = s_params, .flags = S_FLAGS, .variant = S_KL, .state_size = sizeof(s_state_t),
    .init = s_init, .aggregate = s_aggregate, .free = s_free,
    .begin = s_begin, .observe = s_observe,
};

const bn_rule_ops_t bn_rule_ops_similarity_cos = {
    .name = "similarity-cos",
    .summary = "Table 1 ablation: the ReLU cosine weight only, clipped",
    .params = s_params, .flags = S_FLAGS, .variant = S_COS, .state_size = sizeof(s_state_t),
    .init = s_init, .aggregate = s_aggregate, .free = s_free,
    .begin = s_begin, .observe = s_observe,
};
