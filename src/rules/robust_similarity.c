/*  robust_similarity.c -- the similarity reweighting of Xu & Huang (ICASSP
 *  2022, Algorithm 1) hardened against an adversary who knows it (echo,
 *  drift, dissensus: docs/attacks.md, issue 12) while keeping what the
 *  paper's weights do against its own attacks (random, reverse, D-LIE).
 *
 *  Why the paper's rule yields to "the victim's own model plus p": the
 *  cross-update of such a vector is Delta_ii + p, so its sign histogram is
 *  the victim's own (KL ~ 0) and its cosine with Delta_ii is about
 *  ||Delta_ii|| / ||Delta_ii + p|| > 0 whatever p; honest cross-updates are
 *  dominated by the disagreement between models and nearly orthogonal to the
 *  victim's own step (measured: cosines -0.3 .. 0.7, median ~0.1), so the
 *  attacker out-weighs them.  The own step is a poor reference; the
 *  neighbourhood is a better one.  Per round, over the n vectors:
 *
 *    1. the paper's score sigma_j = exp(-c (KL_j - min KL)) x
 *       max(0, cos(Delta_ji, Delta_ii)), as in similarity.c: it is what
 *       rejects reverse and random (cosine <= 0, huge norm) and D-LIE (a
 *       one-sided sign histogram);
 *    2. a cap: a_j = min(1, sigma_j / median_{l in N_i} sigma_l): no
 *       neighbour weighs more than a typical one, however much it resembles
 *       the victim's own step (echo had ~10x an honest weight);
 *    3. the neighbourhood's coordinate-wise median r, u = r - x_self, and
 *       for each neighbour
 *         z_j     = ||x_j - r|| / median_l ||x_l - r||  (self included),
 *         kappa_j = cos(x_j - x_self, u)  (centripetal cosine);
 *       g_j = 1 for z_j <= rs-z-full, 0 for z_j >= rs-z-zero, linear
 *       between; h_j the same on kappa_j / median kappa with rs-kappa-zero
 *       < rs-kappa-full.  An honest neighbour's offset from x_self points
 *       to the centre (measured kappa 0.5 .. 0.87, median 0.73); drift's
 *       offset s u is orthogonal to it (kappa 0.08 .. 0.43), dissensus's
 *       points away (z ~ 2.4, kappa < 0), an echo has no offset (kappa 0);
 *    4. memory per node id: rep_j <- (1 - beta) rep_j + beta min(g_j, h_j)
 *       (rep starts at 1, beta = rs-memory), the neighbour's consistency is
 *       min(g_j, h_j, rep_j): one caught repeatedly stays down for ~1/beta
 *       rounds, so alternating between attacking and behaving does not pay;
 *    5. self-centred clipping (He, Karimireddy & Jaggi 2022) with an
 *       adaptive radius: omega_j = a_j min(g_j, h_j, rep_j), omega_self = 1,
 *       tau = median of ||x_j - x_self|| over the neighbours with omega > 0,
 *         x_out = x_self + sum_{j in N_i} omega_j clip(x_j - x_self, tau)
 *                          / (1 + sum_j omega_j).
 *  Guarantees and limits: docs/rules.md.
 *
 *  Degenerate rounds (x_out = x_self, weight 1 on self, stats.degenerate):
 *  Delta_ii = 0 (the cosine is undefined) or no neighbour has omega > 0.
 *  Cost: four reads of each vector (statistics, median, offsets, weighted
 *  sum) plus the median kernel.  Non-finite vectors are removed by the
 *  common pre-filter; huge finite ones go through double sums.  Telemetry:
 *  w_j = omega_j min(1, tau / ||x_j - x_self||) / (1 + sum omega), self
 *  1 - sum_j w_j, so that x_out = sum_j w_j x_j.
 */
#include "rules.h"
#include "combine.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define S_CHUNK 2048
#define S_LANES 32

typedef struct {
    uint32_t id;                  /* node id                                      */
    uint8_t  used;                /* slot occupied                                */
    float    rep;                 /* consistency memory, starts at 1              */
} s_slot_t;

typedef struct {
    float    c;                   /* softmax scale on -KL                          */
    float    z_full, z_zero;      /* consistency band, in medians of rho           */
    float    k_full, k_zero;      /* centripetal band, in medians of kappa         */
    float    beta;                /* memory step                                   */
    bn_trim_scratch_t t;          /* the median's scratch                          */
    float   *d;                   /* dim: Delta_ii                                 */
    float   *r;                   /* dim: coordinate-wise median                   */
    double  *dot, *nrm, *rho, *dself, *omega, *coef;   /* cap each                 */
    int64_t *pos, *neg;           /* cap: sign counts of Delta_ji                   */
    float   *tmp;                 /* cap: medians                                   */
    float   *wtmp;                /* cap: the median kernel's weights (unused)      */
    s_slot_t *rep;                /* rep_cap slots                                  */
    uint32_t rep_cap, rep_used;   /* power of two; occupied                         */
} s_state_t;

static const bn_rule_param_t s_param_c = {
    "c", BN_RULE_PARAM_F32, 5, 1e-6, 1e6, "softmax scale on -KL(sign histograms)" };
static const bn_rule_param_t s_param_zfull = {
    "rs-z-full", BN_RULE_PARAM_F32, 1.3, 1, 100,
    "robust-similarity: full weight within this many median distances of the median" };
static const bn_rule_param_t s_param_zzero = {
    "rs-z-zero", BN_RULE_PARAM_F32, 1.6, 1, 100,
    "robust-similarity: no weight beyond this many median distances (> rs-z-full)" };
static const bn_rule_param_t s_param_kfull = {
    "rs-kappa-full", BN_RULE_PARAM_F32, 0.75, 0, 1,
    "robust-similarity: full weight from this fraction of the median centripetal cosine" };
static const bn_rule_param_t s_param_kzero = {
    "rs-kappa-zero", BN_RULE_PARAM_F32, 0.5, 0, 1,
    "robust-similarity: no weight below this fraction (< rs-kappa-full)" };
static const bn_rule_param_t s_param_beta = {
    "rs-memory", BN_RULE_PARAM_F32, 0.2, 1e-3, 1,
    "robust-similarity: step of the per-neighbour consistency memory (1 = none)" };
static const bn_rule_param_t *const s_params[] = {
    &s_param_c, &s_param_zfull, &s_param_zzero, &s_param_kfull, &s_param_kzero, &s_param_beta,
    NULL };

static int s_init(void *state, const bn_rule_env_t *env)
{
    s_state_t *st = state;
    uint32_t cap = env->cap;
    st->c = (float) bn_rule_param(env, &s_param_c);
    st->z_full = (float) bn_rule_param(env, &s_param_zfull);
    st->z_zero = (float) bn_rule_param(env, &s_param_zzero);
    st->beta = (float) bn_rule_param(env, &s_param_beta);
    st->k_full = (float) bn_rule_param(env, &s_param_kfull);
    st->k_zero = (float) bn_rule_param(env, &s_param_kzero);
    if (!(st->z_zero > st->z_full) || !(st->k_full > st->k_zero))
        return BN_EARG;
    if (bn_trim_scratch_init(&st->t, cap / 2 + 1, cap) != BN_OK)
        return BN_ENOMEM;
    st->d = bn_alloc_floats(env->dim);
    st->r = bn_alloc_floats(env->dim);
    double **dv[] = { &st->dot, &st->nrm, &st->rho, &st->dself, &st->omega, &st->coef };
    for (size_t i = 0; i < BN_ARRAY_LEN(dv); i++)
        if (!(*dv[i] = calloc(cap, sizeof(double))))
            return BN_ENOMEM;
    st->pos = calloc(cap, sizeof *st->pos);
    st->neg = calloc(cap, sizeof *st->neg);
    st->tmp = calloc(cap, sizeof *st->tmp);
    st->wtmp = calloc(cap, sizeof *st->wtmp);
    uint32_t rc = 256;
    while (rc < 8 * cap && rc < (1u << 24))
        rc <<= 1;
    st->rep_cap = rc;
    st->rep = calloc(rc, sizeof *st->rep);
    return st->d && st->r && st->pos && st->neg && st->tmp && st->wtmp && st->rep
         ? BN_OK : BN_ENOMEM;
}

static void s_free(void *state)
{
    s_state_t *st = state;
    bn_trim_scratch_free(&st->t);
    bn_free(st->d);
    bn_free(st->r);
    free(st->dot);
    free(st->nrm);
    free(st->rho);
    free(st->dself);
    free(st->omega);
    free(st->coef);
    free(st->pos);
    free(st->neg);
    free(st->tmp);
    free(st->wtmp);
    free(st->rep);
}

/* The memory slot of `id` (inserted with rep = 1 when new), or NULL when the
 * table is 3/4 full (that neighbour is then judged on the round alone). */
static s_slot_t *s_slot(s_state_t *st, uint32_t id)
{
    uint32_t mask = st->rep_cap - 1;
    for (uint32_t h = (uint32_t) bn_mix64(id) & mask;; h = (h + 1) & mask) {
        s_slot_t *s = &st->rep[h];
        if (s->used && s->id == id)
            return s;
        if (!s->used) {
            if (4 * (st->rep_used + 1) > 3 * st->rep_cap)
                return NULL;
            s->used = 1;
            s->id = id;
            s->rep = 1.0f;
            st->rep_used++;
            return s;
        }
    }
}

/* Sign counts of x - xp, <x - xp, d> and ||x - xp||^2 over dim floats: float
 * lanes per chunk, the chunk redone in double when they overflow. */
static void s_stats(const float *restrict x, const float *restrict xp, const float *restrict d,
                    size_t dim, double *dot, double *nrm, int64_t *pos, int64_t *neg)
{
    double sd = 0.0, sn = 0.0;
    int64_t sp = 0, sg = 0;
    for (size_t c0 = 0; c0 < dim; c0 += S_CHUNK) {
        size_t len = BN_MIN((size_t) S_CHUNK, dim - c0);
        const float *restrict a = x + c0, *restrict b = xp + c0, *restrict r = d + c0;
        float fd[S_LANES] = { 0 }, fn[S_LANES] = { 0 };
        int32_t ip[S_LANES] = { 0 }, in[S_LANES] = { 0 };
        size_t c = 0;
        for (; c + S_LANES <= len; c += S_LANES)
            for (int l = 0; l < S_LANES; l++) {
                float v = a[c + l] - b[c + l];
                fd[l] += v * r[c + l];
                fn[l] += v * v;
                ip[l] += v > 0.0f;
                in[l] += v < 0.0f;
            }
        for (; c < len; c++) {
            float v = a[c] - b[c];
            fd[0] += v * r[c];
            fn[0] += v * v;
            ip[0] += v > 0.0f;
            in[0] += v < 0.0f;
        }
        float cd = 0.0f, cn = 0.0f;
        for (int l = 0; l < S_LANES; l++) {
            cd += fd[l];
            cn += fn[l];
            sp += ip[l];
            sg += in[l];
        }
        if (isfinite(cd) && isfinite(cn)) {
            sd += cd;
            sn += cn;
            continue;
        }
        for (c = 0; c < len; c++) {
            double v = (double) a[c] - (double) b[c];
            sd += v * (double) r[c];
            sn += v * v;
        }
    }
    *dot = sd;
    *nrm = sn;
    *pos = sp;
    *neg = sg;
}

static void s_degenerate(const bn_set_t *set, float *x_out, float *w)
{
    set->stats->degenerate++;
    memcpy(x_out, set->x_self, set->dim * sizeof *x_out);
    for (uint32_t j = 0; j + 1 < set->n; j++)
        w[j] = 0.0f;
    w[set->n - 1] = 1.0f;
}

/* Median of the m doubles a[0..m) (through the float scratch). */
static double s_median(s_state_t *st, const double *a, uint32_t m)
{
    for (uint32_t i = 0; i < m; i++)
        st->tmp[i] = (float) a[i];
    return bn_select_median(st->tmp, m);
}

/* 1. The paper's statistics against the own step Delta_ii into sigma
 * (= st->coef): softmax numerator x ReLU cosine.  Returns ||Delta_ii||, or
 * 0 when it is 0 or not finite (a degenerate round). */
static double s_sigma(s_state_t *st, const bn_set_t *set)
{
    size_t dim = set->dim;
    uint32_t n = set->n, me = n - 1;
    const float *restrict xp = set->x_prev;
    const float *restrict xs = set->x_self;
    for (size_t c = 0; c < dim; c++)
        st->d[c] = xs[c] - xp[c];
    for (uint32_t j = 0; j < n; j++)
        s_stats(set->v[j], xp, st->d, dim, &st->dot[j], &st->nrm[j], &st->pos[j], &st->neg[j]);
    double nself = sqrt(st->nrm[me]);
    if (!(nself > 0.0) || !isfinite(nself))
        return 0.0;
    double q[3] = { (double) st->pos[me] / (double) dim,
                    (double) ((int64_t) dim - st->pos[me] - st->neg[me]) / (double) dim,
                    (double) st->neg[me] / (double) dim };
    double *sigma = st->coef, kl_min = INFINITY;
    for (uint32_t j = 0; j < n; j++) {
        double p[3] = { (double) st->pos[j] / (double) dim,
                        (double) ((int64_t) dim - st->pos[j] - st->neg[j]) / (double) dim,
                        (double) st->neg[j] / (double) dim };
        sigma[j] = bn_rules_sign_kl(p, q);
        kl_min = sigma[j] < kl_min ? sigma[j] : kl_min;
    }
    for (uint32_t j = 0; j < n; j++) {
        double nj = sqrt(st->nrm[j]), cs = 0.0;
        if (nj > 0.0 && isfinite(nj)) {
            cs = st->dot[j] / (nj * nself);
            cs = cs > 0.0 ? (cs < 1.0 ? cs : 1.0) : 0.0;
        }
        sigma[j] = exp(-(double) st->c * (sigma[j] - kl_min)) * cs;
    }
    return nself;
}

/* 3. Consistency with the neighbourhood's coordinate-wise median r: per
 * vector rho_j = ||x_j - r||, dself_j = ||x_j - x_self|| and kappa_j (=
 * st->nrm) = cos(x_j - x_self, r - x_self).  u = r - x_self gives
 * ||x_j - r||^2 = ||x_j - x_self||^2 - 2 <x_j - x_self, u> + ||u||^2.
 * Sets *uu = ||u||^2. */
static int s_consistency(s_state_t *st, const bn_set_t *set, double *uu_out)
{
    size_t dim = set->dim;
    uint32_t n = set->n, me = n - 1;
    const float *restrict xs = set->x_self;
    int rc = bn_rules_median_core(&st->t, set, st->r, st->wtmp);
    if (rc != BN_OK)
        return rc;
    double uu = 0.0;
    for (size_t c = 0; c < dim; c++) {
        st->d[c] = st->r[c] - xs[c];
        uu += (double) st->d[c] * (double) st->d[c];
    }
    double *kappa = st->nrm;            /* the Delta_ji norms are no longer needed */
    for (uint32_t j = 0; j < n; j++) {
        double dot, ds2;
        bn_select_diff_stats(set->v[j], xs, st->d, dim, &dot, &ds2);
        double r2 = ds2 - 2.0 * dot + uu;
        st->rho[j] = r2 > 0.0 ? sqrt(r2) : 0.0;
        st->dself[j] = sqrt(ds2);
        kappa[j] = ds2 > 0.0 && uu > 0.0 ? dot / sqrt(ds2 * uu) : 0.0;
    }
    st->rho[me] = sqrt(uu);
    *uu_out = uu;
    return BN_OK;
}

/* 4. Weights with memory omega_j (the reputations are updated); the dself of
 * the neighbours kept go to st->tmp.  Returns how many were kept. */
static uint32_t s_omega(s_state_t *st, const bn_set_t *set, double sref, double rmed,
                        double kref, double uu)
{
    double zf = st->z_full, zz = st->z_zero, beta = st->beta;
    double kf = st->k_full, kz = st->k_zero;
    const double *sigma = st->coef, *kappa = st->nrm;
    uint32_t m = 0, k = set->n - 1;
    for (uint32_t j = 0; j < k; j++) {
        double a = sref > 0.0 ? BN_MIN(1.0, sigma[j] / sref) : (sigma[j] > 0.0 ? 1.0 : 0.0);
        double z = rmed > 0.0 ? st->rho[j] / rmed : (st->rho[j] > 0.0 ? INFINITY : 1.0);
        double g = z <= zf ? 1.0 : z >= zz ? 0.0 : (zz - z) / (zz - zf);
        /* centripetal: an honest neighbour's offset from x_self points to r */
        double kr = kref > 0.0 ? kappa[j] / kref : (kappa[j] > 0.0 ? 1.0 : 0.0);
        double h = !(uu > 0.0) ? 1.0 : kr >= kf ? 1.0 : kr <= kz ? 0.0 : (kr - kz) / (kf - kz);
        g = BN_MIN(g, h);
        s_slot_t *s = set->in->nb_id ? s_slot(st, set->in->nb_id[set->orig[j]]) : NULL;
        if (s) {
            s->rep = (float) ((1.0 - beta) * s->rep + beta * g);
            g = BN_MIN(g, (double) s->rep);
        }
        st->omega[j] = a * g;
        if (st->omega[j] > 0.0)
            st->tmp[m++] = (float) st->dself[j];
    }
    return m;
}

/* 5. x_out = x_self + sum_j a_j (x_j - x_self), a_j = omega_j clip_j / (1 +
 * sum omega), clipped at the adaptive radius tau. */
static void s_combine(s_state_t *st, const bn_set_t *set, double tau, float *restrict x_out,
                      float *w)
{
    size_t dim = set->dim;
    uint32_t k = set->n - 1;
    const float *restrict xs = set->x_self;
    double wsum = 1.0, wself = 1.0;
    for (uint32_t j = 0; j < k; j++)
        wsum += st->omega[j];
    for (size_t c = 0; c < dim; c++)
        x_out[c] = 0.0f;
    for (uint32_t j = 0; j < k; j++) {
        double ds = st->dself[j];
        double clip = bn_clip_factor(ds, tau);
        double a = st->omega[j] * clip / wsum;
        w[j] = (float) a;
        wself -= a;
        if (a == 0.0)
            continue;
        bn_clip_accumulate(x_out, (float) a, set->v[j], xs, dim, ds);
    }
    for (size_t c = 0; c < dim; c++)
        x_out[c] += xs[c];
    w[k] = (float) wself;
}

static int s_aggregate(void *state, const bn_set_t *set, float *restrict x_out, float *w)
{
    s_state_t *st = state;
    uint32_t n = set->n, k = n - 1;
    if (k == 0) {
        memcpy(x_out, set->x_self, set->dim * sizeof *x_out);
        w[k] = 1.0f;
        return BN_OK;
    }
    if (s_sigma(st, set) == 0.0) {
        s_degenerate(set, x_out, w);
        return BN_OK;
    }
    /* 2. the cap relative to a typical neighbour */
    double sref = s_median(st, st->coef, k);
    double uu;
    int rc = s_consistency(st, set, &uu);
    if (rc != BN_OK)
        return rc;
    double rmed = s_median(st, st->rho, n);
    double kref = s_median(st, st->nrm, k);
    uint32_t m = s_omega(st, set, sref, rmed, kref, uu);
    if (m == 0) {
        s_degenerate(set, x_out, w);
        return BN_OK;
    }
    s_combine(st, set, bn_select_median(st->tmp, m), x_out, w);
    return BN_OK;
}

const bn_rule_ops_t bn_rule_ops_robust_similarity = {
    .name = "robust-similarity",
    .summary = "similarity hardened: capped paper weights, consistency with the neighbourhood "
               "median, memory, self-centred adaptive clipping",
    .params = s_params, .flags = BN_RULE_F_USES_PREV, .state_size = sizeof(s_state_t),
    .init = s_init, .aggregate = s_aggregate, .free = s_free,
};
