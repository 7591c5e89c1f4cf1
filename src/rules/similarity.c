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
 *  Cost: two reads of each vector.  Pass 1 (blocked over coordinates so
 *  that x_i^t and x_self stay in L1) computes sign counts, the dot product
 *  with Delta_ii and ||Delta_ji||^2 together in float lanes, re-doing a block
 *  in double if the float partials overflow; that also detects NaN / inf,
 *  which this rule flags itself (the generic pre-filter is skipped).  Pass 2
 *  accumulates the weighted clipped updates block by block into x_out, four
 *  neighbours per sweep so that x_prev and x_out are touched once per four.
 *  Requires a finite x_prev (aggregate.c substitutes x_self otherwise).
 *  State: per-vector scratch only; nothing is remembered between rounds.
 */
#include "rules.h"
#include "clone.h"

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

/* Per-vector scratch, cap entries each. */
typedef struct {
    int      variant;               /* S_BOTH, S_KL or S_COS                     */
    uint32_t cap;                   /* vectors at most                           */
    float    c;                     /* softmax scale on -KL                      */
    double  *dot, *nrm, *kl;        /* <Delta_ji, Delta_ii>, ||Delta_ji||^2, KL  */
    int64_t *pos;                   /* positive entries of Delta_ji              */
    uint32_t *neg;                  /* negative entries; later: nonzero indices  */
    uint8_t *flag;                  /* bit 1: |Delta| > FLT_MAX; bit 0: non-finite;
                                     * bit 2: pass 1 already done (observed)     */
    /* streaming (begin / observe): pass 1 of each neighbour as it arrives */
    float   *d;                     /* dim: Delta_ii of the open round           */
    const float *b_prev, *b_self;   /* the round's x_prev, x_self (borrowed)     */
    int      open;                  /* begin called, aggregate not yet           */
    const float **o_ptr;            /* cap: the vector observed in each slot     */
    double  *o_dot, *o_nrm;         /* cap: its pass-1 statistics                */
    int64_t *o_pos;
    uint32_t *o_neg;
    uint8_t *o_flag;
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

/* out += sum_{i<4} a_i (q_i - p) over len floats. */
static inline BN_CLONE_BODY int s_acc4_body(float *restrict out, const float *const *q,
                                            const float *a, const float *restrict p, size_t len)
{
    const float *restrict q0 = q[0], *restrict q1 = q[1], *restrict q2 = q[2], *restrict q3 = q[3];
    float a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3];
    for (size_t i = 0; i < len; i++) {
        float pi = p[i];
        float v = S_FMA(a0, q0[i] - pi, out[i]);
        v = S_FMA(a1, q1[i] - pi, v);
        v = S_FMA(a2, q2[i] - pi, v);
        out[i] = S_FMA(a3, q3[i] - pi, v);
    }
    return 0;
}
BN_CLONE(int, s_acc4, (float *restrict out, const float *const *q, const float *a,
                       const float *restrict p, size_t len), (out, q, a, p, len))
#define s_acc4 BN_CLONE_PICK(s_acc4)

static int s_init(void *state, const bn_rule_env_t *env)
{
    s_state_t *st = state;
    uint32_t cap = env->cap;
    st->variant = env->ops->variant;
    st->c = (float) bn_rule_param(env, &s_param_c);
    st->dot = calloc(cap, sizeof *st->dot);
    st->nrm = calloc(cap, sizeof *st->nrm);
    st->kl = calloc(cap, sizeof *st->kl);
    st->pos = calloc(cap, sizeof *st->pos);
    st->neg = calloc(cap, sizeof *st->neg);
    st->flag = calloc(cap, sizeof *st->flag);
    st->d = bn_alloc_floats(env->dim);
    st->o_ptr = calloc(cap, sizeof *st->o_ptr);
    st->o_dot = calloc(cap, sizeof *st->o_dot);
    st->o_nrm = calloc(cap, sizeof *st->o_nrm);
    st->o_pos = calloc(cap, sizeof *st->o_pos);
    st->o_neg = calloc(cap, sizeof *st->o_neg);
    st->o_flag = calloc(cap, sizeof *st->o_flag);
    st->cap = cap;
    return st->dot && st->nrm && st->kl && st->pos && st->neg && st->flag && st->d && st->o_ptr
           && st->o_dot && st->o_nrm && st->o_pos && st->o_neg && st->o_flag ? BN_OK : BN_ENOMEM;
}

static void s_free(void *state)
{
    s_state_t *st = state;
    free(st->dot);
    free(st->nrm);
    free(st->kl);
    free(st->pos);
    free(st->neg);
    free(st->flag);
    bn_free(st->d);
    free(st->o_ptr);
    free(st->o_dot);
    free(st->o_nrm);
    free(st->o_pos);
    free(st->o_neg);
    free(st->o_flag);
}

/* Pass 1 of one vector over all chunks, in the order the blocked loop of
 * s_aggregate uses, so the statistics are bit-identical to it. */
static void s_vec_pass1(const float *x, const float *xp, const float *xs, const float *d,
                        size_t dim, double *dot, double *nrm, int64_t *pos, uint32_t *neg,
                        uint8_t *flag)
{
    *dot = *nrm = 0.0;
    *pos = 0;
    *neg = 0;
    *flag = 0;
    for (size_t c0 = 0; c0 < dim && !(*flag & 1); c0 += S_CHUNK) {
        size_t len = BN_MIN((size_t) S_CHUNK, dim - c0);
        int64_t p = 0, g = 0;
        if (!s_chunk_float(x + c0, xp + c0, d + c0, len, dot, nrm, &p, &g)) {
            if (s_chunk_double(x + c0, xp + c0, xs + c0, len, dot, nrm))
                *flag |= 2;
            if (!isfinite(*dot) || !isfinite(*nrm))
                *flag |= 1;
        }
        *pos += p;
        *neg += (uint32_t) g;
    }
}

static void s_begin(void *state, const float *x_prev, const float *x_self, size_t dim)
{
    s_state_t *st = state;
    st->b_prev = x_prev;
    st->b_self = x_self;
    for (size_t c = 0; c < dim; c++)
        st->d[c] = x_self[c] - x_prev[c];
    for (uint32_t j = 0; j < st->cap; j++)
        st->o_ptr[j] = NULL;
    st->open = 1;
}

static void s_observe(void *state, uint32_t slot, const float *x, size_t dim)
{
    s_state_t *st = state;
    if (!st->open || slot + 1 >= st->cap || !x)
        return;
    s_vec_pass1(x, st->b_prev, st->b_self, st->d, dim, &st->o_dot[slot], &st->o_nrm[slot],
                &st->o_pos[slot], &st->o_neg[slot], &st->o_flag[slot]);
    st->o_ptr[slot] = x;
}

/* The slot in which x was observed: slots are in x_nb order and a slot is at
 * least the vector's index there (the node observes under its position in
 * the neighbour list and leaves out the models that never came), so the
 * search starts at `from`.  UINT32_MAX if x was not observed. */
static uint32_t s_observed(const s_state_t *st, uint32_t from, const float *x)
{
    for (uint32_t s = from; s + 1 < st->cap; s++)
        if (st->o_ptr[s] == x)
            return s;
    return UINT32_MAX;
}

/* Per-vector statistics of the set: those observed as they arrived (same
 * x_prev and x_self), then pass 1 over the rest: sign counts, dot with
 * Delta_ii, squared norms, in blocks so that x_prev and Delta_ii stay in L1.
 * flag bit 1: huge; bit 0: non-finite; bit 2: observed. */
static void s_pass1(s_state_t *st, const bn_set_t *set)
{
    size_t dim = set->dim;
    uint32_t n = set->n, me = n - 1;
    const float *restrict xp = set->x_prev;
    const float *restrict xs = set->x_self;
    double *dot = st->dot, *nrm = st->nrm;
    int64_t *pos = st->pos;
    uint32_t *neg = st->neg;            /* uint32 is enough for dim < 2^32 */
    uint8_t *huge = st->flag;
    int use = st->open && st->b_prev == xp && st->b_self == xs;
    st->open = 0;
    for (uint32_t j = 0; j < n; j++) {
        uint32_t slot = use && j < me ? s_observed(st, set->orig[j], set->v[j]) : UINT32_MAX;
        if (slot != UINT32_MAX) {
            set->stats->streamed++;
            dot[j] = st->o_dot[slot];
            nrm[j] = st->o_nrm[slot];
            pos[j] = st->o_pos[slot];
            neg[j] = st->o_neg[slot];
            huge[j] = st->o_flag[slot] | 4;
            continue;
        }
        dot[j] = nrm[j] = 0.0;
        pos[j] = 0;
        neg[j] = 0;
        huge[j] = 0;
    }
    float rbuf[S_CHUNK];            /* Delta_ii on the current chunk */
    for (size_t c0 = 0; c0 < dim; c0 += S_CHUNK) {
        size_t len = BN_MIN((size_t) S_CHUNK, dim - c0);
        for (size_t c = 0; c < len; c++)
            rbuf[c] = xs[c0 + c] - xp[c0 + c];
        for (uint32_t j = 0; j < n; j++) {
            if (huge[j] & 5)
                continue;
            const float *x = set->v[j] + c0;
            int64_t p = 0, g = 0;
            if (!s_chunk_float(x, xp + c0, rbuf, len, &dot[j], &nrm[j], &p, &g)) {
                if (s_chunk_double(x, xp + c0, xs + c0, len, &dot[j], &nrm[j]))
                    huge[j] |= 2;
                if (!isfinite(dot[j]) || !isfinite(nrm[j]))
                    huge[j] |= 1;
            }
            pos[j] += p;
            neg[j] += (uint32_t) g;
        }
    }
}

/* The weights from the statistics: w[j] (normalised, telemetry), the
 * coefficients of Delta_ji in st->kl (normalised) and the indices of the
 * nonzero ones in st->neg.  Returns how many, or -1 for a degenerate round. */
static int64_t s_weights(s_state_t *st, const bn_set_t *set, float *w)
{
    size_t dim = set->dim;
    uint32_t n = set->n, me = n - 1;
    double *dot = st->dot, *nrm = st->nrm, *kl = st->kl;
    int64_t *pos = st->pos;
    uint32_t *neg = st->neg;
    uint8_t *huge = st->flag;
    double nself = sqrt(nrm[me]);
    double q[3] = { (double) pos[me] / (double) dim,
                    (double) (dim - (size_t) pos[me] - neg[me]) / (double) dim,
                    (double) neg[me] / (double) dim };
    double kl_min = INFINITY;
    for (uint32_t j = 0; j < n; j++) {
        if (huge[j] & 1)
            continue;
        double p[3] = { (double) pos[j] / (double) dim,
                        (double) (dim - (size_t) pos[j] - neg[j]) / (double) dim,
                        (double) neg[j] / (double) dim };
        kl[j] = bn_rules_sign_kl(p, q);
        kl_min = kl[j] < kl_min ? kl[j] : kl_min;
    }
    double c = st->c, wsum = 0.0;
    for (uint32_t j = 0; j < n; j++) {
        if (huge[j] & 1) {
            kl[j] = 0.0;            /* reused below as the coefficient */
            w[j] = 0.0f;
            continue;
        }
        double nj = sqrt(nrm[j]);
        double w1 = exp(-c * (kl[j] - kl_min));   /* softmax numerator; the   */
        double w2 = 0.0;                          /* denominator cancels below */
        if (nj > 0.0 && nself > 0.0) {
            w2 = dot[j] / (nj * nself);
            w2 = w2 > 0.0 ? (w2 < 1.0 ? w2 : 1.0) : 0.0;
        }
        double wj = st->variant == S_KL ? w1 : st->variant == S_COS ? w2 : w1 * w2;
        double clip = nj > nself ? nself / nj : 1.0;
        kl[j] = wj * clip;          /* unnormalised coefficient of Delta_ji */
        dot[j] = wj;                /* unnormalised weight                   */
        wsum += wj;
    }
    for (uint32_t j = 0; j < n; j++) {
        huge[j] &= 3;
        set->bad[j] = huge[j] & 1;
    }
    if (nself == 0.0 || !(wsum > 0.0) || !isfinite(wsum))
        return -1;
    uint32_t nz = 0;
    for (uint32_t j = 0; j < n; j++) {
        if (huge[j] & 1)
            continue;
        w[j] = (float) (dot[j] / wsum);
        kl[j] /= wsum;
        if (kl[j] != 0.0)
            neg[nz++] = j;          /* neg counts are no longer needed */
    }
    return nz;
}

/* Pass 2: x_out = x_prev + sum_j coef_j Delta_ji over the nz nonzero
 * coefficients, chunk by chunk, four neighbours per sweep so that x_prev and
 * x_out are loaded and stored once for four vectors. */
static void s_pass2(const s_state_t *st, const bn_set_t *set, uint32_t nz, float *restrict x_out)
{
    size_t dim = set->dim;
    const float *restrict xp = set->x_prev;
    for (size_t c0 = 0; c0 < dim; c0 += S_CHUNK) {
        size_t len = BN_MIN((size_t) S_CHUNK, dim - c0);
        float *restrict out = x_out + c0;
        const float *restrict p0 = xp + c0;
        for (size_t i = 0; i < len; i++)
            out[i] = 0.0f;
        const float *qv[4];
        float a[4];
        int nq = 0;
        for (uint32_t t = 0; t < nz; t++) {
            uint32_t j = st->neg[t];
            const float *restrict x = set->v[j] + c0;
            float aj = (float) st->kl[j];
            if (st->flag[j] & 2) {
                for (size_t i = 0; i < len; i++)
                    out[i] += aj * x[i] - aj * p0[i];
                continue;
            }
            qv[nq] = x;
            a[nq++] = aj;
            if (nq == 4) {
                s_acc4(out, qv, a, p0, len);
                nq = 0;
            }
        }
        for (int i = nq; i < 4 && nq > 0; i++) {
            qv[i] = qv[0];          /* pad with weight 0 */
            a[i] = 0.0f;
        }
        if (nq > 0)
            s_acc4(out, qv, a, p0, len);
        for (size_t i = 0; i < len; i++)
            out[i] += p0[i];
    }
}

static int s_aggregate(void *state, const bn_set_t *set, float *restrict x_out, float *w)
{
    s_state_t *st = state;
    s_pass1(st, set);
    int64_t nz = s_weights(st, set, w);
    if (nz < 0) {
        set->stats->degenerate++;
        memcpy(x_out, set->x_self, set->dim * sizeof *x_out);
        for (uint32_t j = 0; j < set->n; j++)
            w[j] = 0.0f;
        w[set->n - 1] = 1.0f;
        return BN_OK;
    }
    s_pass2(st, set, (uint32_t) nz, x_out);
    return BN_OK;
}

#define S_FLAGS (BN_RULE_F_CHECKS_FINITE | BN_RULE_F_USES_PREV)

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
