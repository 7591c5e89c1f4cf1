/*  attack.c -- the vectors Byzantine nodes send (docs/attacks.md has the formulas).
 *
 *  bn_attack_craft() is a pure function of its inputs and the attack RNG: it
 *  allocates nothing and never reads outside in->honest[0..n_honest)[0..dim).
 *  Coordinate-wise statistics (mean, standard deviation) are accumulated in
 *  double over blocks of coordinates, two passes per block (mean, then squared
 *  deviations), so that they are stable and the honest vectors are streamed
 *  in cache-sized pieces.  sigma is the population standard deviation
 *  (divide by the number of honest models m, not m - 1), so m == 1 is legal
 *  and gives sigma = 0.
 */
#include "attack.h"
#include "roles.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const s_names[BN_ATTACK_COUNT] = {
    [BN_ATTACK_NONE]       = "none",
    [BN_ATTACK_DLIE]       = "dlie",
    [BN_ATTACK_RANDOM]     = "random",
    [BN_ATTACK_REVERSE]    = "reverse",
    [BN_ATTACK_SIGN_FLIP]  = "sign-flip",
    [BN_ATTACK_GAUSSIAN]   = "gaussian",
    [BN_ATTACK_LABEL_FLIP] = "label-flip",
    [BN_ATTACK_IPM]        = "ipm",
    [BN_ATTACK_ALIE]       = "alie",
    [BN_ATTACK_MIMIC]      = "mimic",
    [BN_ATTACK_CONSTANT]   = "constant",
    [BN_ATTACK_CRASH]      = "crash",
    [BN_ATTACK_NAN]        = "nan",
    [BN_ATTACK_ECHO]       = "echo",
    [BN_ATTACK_DRIFT]      = "drift",
    [BN_ATTACK_DISSENSUS]  = "dissensus",
    [BN_ATTACK_MINMAX]     = "minmax",
    [BN_ATTACK_MINSUM]     = "minsum",
    [BN_ATTACK_RANDOM_SIGN_FLIP] = "random-sign-flip",
    [BN_ATTACK_OFOM]       = "ofom",
    [BN_ATTACK_PAF]        = "paf",
    [BN_ATTACK_MODEL_NEGATION] = "model-negation",
    [BN_ATTACK_GRADIENT_SCALE] = "gradient-scale",
    [BN_ATTACK_NORMALIZED_MEAN] = "normalized-mean",
    [BN_ATTACK_MIMIC2]     = "mimic2",
    [BN_ATTACK_MIXED]      = "mixed",
};

static const char *const s_dir_names[BN_DRIFT_COUNT] = {
    [BN_DRIFT_REVERSE] = "reverse",
    [BN_DRIFT_RANDOM]  = "random",
    [BN_DRIFT_TARGET]  = "target",
};

void bn_attack_opts_default(bn_attack_opts_t *opts, bn_attack_kind_t kind)
{
    if (!opts)
        return;
    memset(opts, 0, sizeof *opts);
    opts->kind = kind;
    opts->z = 2.0f;
    opts->epsilon = 0.1f;
    opts->gaussian_std = 200.0f;
    opts->value = 1.0f;
    opts->n = 0;
    opts->b = 0;
    opts->drift_scale = 1.0f;
    opts->drift_dir = BN_DRIFT_REVERSE;
    opts->drift_target = UINT32_MAX;
    opts->dissensus_scale = 1.0f;
    opts->seed = 0;
    opts->rsf_std = 10.0f;
    opts->fang_b = 2.0f;
    opts->negation_scale = 1e10f;
    opts->gradient_scale = 1e10f;
    opts->mix[0] = '\0';
}

/* The index of name in names[0..count) ('_' is accepted for '-':
 * "sign_flip"), or -1. */
static int s_name_index(const char *const *names, int count, const char *name)
{
    for (int k = 0; k < count; k++) {
        const char *a = names[k], *b = name;
        while (*a && (*a == *b || (*a == '-' && *b == '_'))) {
            a++;
            b++;
        }
        if (*a == '\0' && *b == '\0')
            return k;
    }
    return -1;
}

/* names[k], or "unknown" when k is out of range. */
static const char *s_name_at(const char *const *names, unsigned count, unsigned k)
{
    return k < count ? names[k] : "unknown";
}

int bn_drift_dir_parse(const char *name, bn_drift_dir_t *dir)
{
    int k = name && dir ? s_name_index(s_dir_names, BN_DRIFT_COUNT, name) : -1;
    if (k < 0)
        return BN_EARG;
    *dir = (bn_drift_dir_t) k;
    return BN_OK;
}

const char *bn_drift_dir_name(bn_drift_dir_t dir)
{
    return s_name_at(s_dir_names, BN_DRIFT_COUNT, (unsigned) dir);
}

int bn_attack_parse(const char *name, bn_attack_kind_t *kind)
{
    int k = name && kind ? s_name_index(s_names, BN_ATTACK_COUNT, name) : -1;
    if (k < 0)
        return BN_EARG;
    *kind = (bn_attack_kind_t) k;
    return BN_OK;
}

const char *bn_attack_name(bn_attack_kind_t kind)
{
    return s_name_at(s_names, BN_ATTACK_COUNT, (unsigned) kind);
}

bool bn_attack_trains(bn_attack_kind_t kind)
{
    return kind == BN_ATTACK_NONE || kind == BN_ATTACK_SIGN_FLIP || kind == BN_ATTACK_LABEL_FLIP
        || kind == BN_ATTACK_RANDOM_SIGN_FLIP || kind == BN_ATTACK_GRADIENT_SCALE;
}

bool bn_attack_per_victim(bn_attack_kind_t kind)
{
    switch (kind) {
    case BN_ATTACK_ECHO: case BN_ATTACK_DRIFT: case BN_ATTACK_DISSENSUS:
    case BN_ATTACK_MINMAX: case BN_ATTACK_MINSUM:
        return true;
    default:
        return false;
    }
}

bool bn_attack_needs_honest(bn_attack_kind_t kind)
{
    switch (kind) {
    case BN_ATTACK_DLIE: case BN_ATTACK_RANDOM: case BN_ATTACK_REVERSE:
    case BN_ATTACK_IPM:  case BN_ATTACK_ALIE:   case BN_ATTACK_MIMIC:
    case BN_ATTACK_OFOM: case BN_ATTACK_PAF:    case BN_ATTACK_MODEL_NEGATION:
    case BN_ATTACK_NORMALIZED_MEAN: case BN_ATTACK_MIMIC2:
        return true;
    default:
        return bn_attack_per_victim(kind);
    }
}

/* ------------------------------------------------------- normal quantile */

/* Coefficients of P. J. Acklam's rational approximations to Phi^-1 (central
 * region |p - 0.5| <= 0.5 - P_LOW, and the tails), relative error < 1.15e-9
 * before refinement. */
static const double s_a[6] = { -3.969683028665376e+01,  2.209460984245205e+02,
                               -2.759285104469687e+02,  1.383577518672690e+02,
                               -3.066479806614716e+01,  2.506628277459239e+00 };
static const double s_b[5] = { -5.447609879822406e+01,  1.615858368580409e+02,
                               -1.556989798598866e+02,  6.680131188771972e+01,
                               -1.328068155288572e+01 };
static const double s_c[6] = { -7.784894002430293e-03, -3.223964580411365e-01,
                               -2.400758277161838e+00, -2.549732539343734e+00,
                                4.374664141464968e+00,  2.938163982698783e+00 };
static const double s_d[4] = {  7.784695709041462e-03,  3.224671290700398e-01,
                                2.445134137142996e+00,  3.754408661907416e+00 };
#define P_LOW 0.02425

/* Lower-tail approximation for p in (0, P_LOW]. */
static double s_tail(double p)
{
    double q = sqrt(-2.0 * log(p));
    return (((((s_c[0] * q + s_c[1]) * q + s_c[2]) * q + s_c[3]) * q + s_c[4]) * q + s_c[5])
         / ((((s_d[0] * q + s_d[1]) * q + s_d[2]) * q + s_d[3]) * q + 1.0);
}

double bn_attack_norm_quantile(double p)
{
    if (isnan(p) || p < 0.0 || p > 1.0)
        return NAN;
    if (p == 0.0)
        return -INFINITY;
    if (p == 1.0)
        return INFINITY;
    double x;
    if (p < P_LOW) {
        x = s_tail(p);
    } else if (p <= 1.0 - P_LOW) {
        double q = p - 0.5, r = q * q;
        x = (((((s_a[0] * r + s_a[1]) * r + s_a[2]) * r + s_a[3]) * r + s_a[4]) * r + s_a[5]) * q
          / (((((s_b[0] * r + s_b[1]) * r + s_b[2]) * r + s_b[3]) * r + s_b[4]) * r + 1.0);
    } else {
        x = -s_tail(1.0 - p);
    }
    /* One Halley step on f(x) = Phi(x) - p.  In the upper half the residual
     * is taken on the complement, Q(x) = 1 - Phi(x), which erfc gives without
     * cancellation. */
    const double sqrt2 = 1.4142135623730950488, sqrt2pi = 2.5066282746310005024;
    double e;
    if (x <= 0.0)
        e = 0.5 * erfc(-x / sqrt2) - p;
    else
        e = (1.0 - p) - 0.5 * erfc(x / sqrt2);   /* 1 - p is exact for p >= 0.5 */
    double u = e * sqrt2pi * exp(0.5 * x * x);
    if (isfinite(u))
        x = x - u / (1.0 + 0.5 * x * u);
    return x;
}

double bn_attack_alie_z(uint32_t n, uint32_t b)
{
    if (n < 2)
        return 0.0;
    /* s: honest nodes the attackers need "on their side" for a majority. */
    int64_t s = (int64_t) (n / 2 + 1) - (int64_t) b;
    if (s < 1)
        s = 1;
    if (s > (int64_t) n - 1)
        s = (int64_t) n - 1;
    return bn_attack_norm_quantile((double) ((int64_t) n - s) / (double) n);
}

/* ------------------------------------------------------------- crafting */

enum { S_BLOCK = 256 };   /* coordinates per statistics block */

/* out[j] = scale * mu_j (+ z * sigma_j when with_sigma) over the m honest vectors. */
static void s_mean_sigma(const bn_attack_input_t *in, double scale, bool with_sigma, double z,
                         float *out)
{
    const uint32_t m = in->n_honest;
    double mu[S_BLOCK], ss[S_BLOCK];
    for (size_t j0 = 0; j0 < in->dim; j0 += S_BLOCK) {
        size_t w = BN_MIN((size_t) S_BLOCK, in->dim - j0);
        for (size_t j = 0; j < w; j++)
            mu[j] = 0.0;
        for (uint32_t i = 0; i < m; i++) {
            const float *x = in->honest[i] + j0;
            for (size_t j = 0; j < w; j++)
                mu[j] += x[j];
        }
        for (size_t j = 0; j < w; j++)
            mu[j] /= m;
        if (with_sigma) {
            for (size_t j = 0; j < w; j++)
                ss[j] = 0.0;
            for (uint32_t i = 0; i < m; i++) {
                const float *x = in->honest[i] + j0;
                for (size_t j = 0; j < w; j++) {
                    double d = x[j] - mu[j];
                    ss[j] += d * d;
                }
            }
            for (size_t j = 0; j < w; j++)
                out[j0 + j] = (float) (mu[j] + z * sqrt(ss[j] / m));
        } else {
            for (size_t j = 0; j < w; j++)
                out[j0 + j] = (float) (scale * mu[j]);
        }
    }
}

/* Gaussian vector with the Euclidean norm of the honest mean. */
static void s_random(const bn_attack_input_t *in, float *out)
{
    s_mean_sigma(in, 1.0, false, 0.0, out);        /* out = honest mean, for its norm */
    double target = 0.0;
    for (size_t j = 0; j < in->dim; j++)
        target += (double) out[j] * out[j];
    target = sqrt(target);
    double norm = 0.0;
    for (size_t j = 0; j < in->dim; j++) {
        double g = bn_rng_normal(in->rng);
        out[j] = (float) g;
        norm += g * g;
    }
    norm = sqrt(norm);
    double k = norm > 0.0 ? target / norm : 0.0;
    for (size_t j = 0; j < in->dim; j++)
        out[j] = (float) (out[j] * k);
}

static void s_copy_self(const bn_attack_input_t *in, float *out)
{
    if (in->x_self && in->x_self != out)
        memcpy(out, in->x_self, in->dim * sizeof *out);
}


/* ------------------------------------------------------ per-victim attacks */

enum { S_MAX_NB = 1024 };   /* victim neighbours used for r_h and the bounds */

/* The victim's view: index of its own model in honest[] (or -1) and the
 * indices of its honest neighbours (the first S_MAX_NB of them). */
typedef struct {
    const float *xh;        /* victim's own new model                  */
    uint32_t self;          /* index of xh in in->honest, or UINT32_MAX */
    uint32_t nb[S_MAX_NB];  /* indices into in->honest                  */
    uint32_t n_nb;
} s_view_t;

static void s_view(const bn_attack_input_t *in, s_view_t *v)
{
    v->xh = in->victim_x;
    v->self = UINT32_MAX;
    v->n_nb = 0;
    for (uint32_t i = 0; i < in->n_honest && v->n_nb < S_MAX_NB; i++) {
        uint32_t id = in->honest_id ? in->honest_id[i] : UINT32_MAX;
        if (in->honest[i] == in->victim_x && v->self == UINT32_MAX)
            v->self = i;
        if (in->honest[i] == in->victim_x || (id != UINT32_MAX && id == in->victim))
            continue;
        if (in->graph && id != UINT32_MAX && in->victim != UINT32_MAX
            && in->victim < in->graph->n && id < in->graph->n
            && !bn_topology_has_edge(in->graph, in->victim, id))
            continue;
        v->nb[v->n_nb++] = i;
    }
}

static double s_dist(const float *a, const float *b, size_t dim)
{
    double s = 0.0;
    for (size_t j = 0; j < dim; j++) {
        double d = (double) a[j] - b[j];
        s += d * d;
    }
    return sqrt(s);
}

void bn_attack_pair_cache_reset(double *pair_dist, uint32_t k)
{
    for (size_t i = 0; pair_dist && i < (size_t) k * k; i++)
        pair_dist[i] = NAN;
}

/* ||honest[i] - honest[j]|| through the round's cache when there is one
 * (s_dist is symmetric bit for bit: a - b = -(b - a) exactly). */
static double s_pair_dist(const bn_attack_input_t *in, uint32_t i, uint32_t j)
{
    if (!in->pair_dist)
        return s_dist(in->honest[i], in->honest[j], in->dim);
    double *c = &in->pair_dist[(size_t) i * in->n_honest + j];
    if (isnan(*c)) {
        *c = s_dist(in->honest[i], in->honest[j], in->dim);
        in->pair_dist[(size_t) j * in->n_honest + i] = *c;
    }
    return *c;
}

static int s_cmp_double(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return (x > y) - (x < y);
}

/* r_h: the median distance from x_h to its honest neighbours (the mean of the
 * two middle ones for an even count); 0 without neighbours. */
static double s_spread(const bn_attack_input_t *in, const s_view_t *v)
{
    double d[S_MAX_NB];
    for (uint32_t k = 0; k < v->n_nb; k++)
        d[k] = s_dist(v->xh, in->honest[v->nb[k]], in->dim);
    if (v->n_nb == 0)
        return 0.0;
    qsort(d, v->n_nb, sizeof *d, s_cmp_double);
    uint32_t m = v->n_nb / 2;
    return v->n_nb % 2 ? d[m] : 0.5 * (d[m - 1] + d[m]);
}

/* Coordinate j of the fixed random direction (before normalisation): uniform
 * in [-1, 1), a hash of (seed, j), so every attacker and every round agree. */
static double s_random_coord(uint64_t seed, size_t j)
{
    uint64_t h = bn_mix64(seed ^ bn_mix64(0x6472696674ull + (uint64_t) j));
    return (double) (h >> 11) * 0x1.0p-52 - 1.0;
}

/* u, the unit direction of drift / minmax / minsum, into u (dim floats).
 * Returns false when it is undefined (a zero vector); u is then all zeros. */
static bool s_direction(const bn_attack_opts_t *o, const bn_attack_input_t *in, const float *xh,
                        float *u)
{
    const size_t dim = in->dim;
    double norm = 0.0;
    switch (o->drift_dir) {
    case BN_DRIFT_RANDOM:
        for (size_t j = 0; j < dim; j++) {
            u[j] = (float) s_random_coord(o->seed, j);
            norm += (double) u[j] * u[j];
        }
        break;
    case BN_DRIFT_TARGET: {
        const float *t = NULL;
        for (uint32_t i = 0; i < in->n_honest && in->honest_id; i++)
            if (in->honest_id[i] == o->drift_target)
                t = in->honest[i];
        for (size_t j = 0; j < dim; j++) {
            u[j] = (t ? t[j] : 0.0f) - xh[j];
            norm += (double) u[j] * u[j];
        }
        break;
    }
    case BN_DRIFT_REVERSE:
    default:
        s_mean_sigma(in, -1.0, false, 0.0, u);
        for (size_t j = 0; j < dim; j++)
            norm += (double) u[j] * u[j];
        break;
    }
    norm = sqrt(norm);
    if (!(norm > 0.0) || !isfinite(norm)) {
        memset(u, 0, dim * sizeof *u);
        return false;
    }
    for (size_t j = 0; j < dim; j++)
        u[j] = (float) (u[j] / norm);
    return true;
}

/* minmax / minsum step gamma along the unit direction u, over the victim's
 * neighbourhood S = {x_h} + its honest neighbours, with a_g = x_h - g:
 *   minmax: the largest gamma with max_g ||a_g + gamma u|| <= max_{g,g'} ||g - g'||
 *   minsum: the largest gamma with sum_g ||a_g + gamma u||^2
 *                                    <= max_g sum_{g'} ||g - g'||^2
 * Both constraints hold at gamma = 0 (x_h is in S), so each is a quadratic
 * with a non-negative root. */
static double s_minmax_gamma(const bn_attack_input_t *in, const s_view_t *v, const float *u,
                             bool sum)
{
    const size_t dim = in->dim;
    const uint32_t m = v->n_nb + 1;          /* |S|; member 0 is x_h */
    double R = 0.0, best_row = 0.0, B = 0.0, C = 0.0, gamma = INFINITY;
    /* Member a of S as an index into in->honest (UINT32_MAX: x_h, when it
     * is not among them). */
#define S_MEMBER(a) ((a) == 0 ? v->self : v->nb[(a) - 1])
    for (uint32_t a = 0; a < m; a++) {
        const float *ga = a == 0 ? v->xh : in->honest[v->nb[a - 1]];
        double row = 0.0;
        for (uint32_t b = 0; b < m; b++) {
            if (b == a)
                continue;
            const float *gb = b == 0 ? v->xh : in->honest[v->nb[b - 1]];
            uint32_t ia = S_MEMBER(a), ib = S_MEMBER(b);
            double d = ia != UINT32_MAX && ib != UINT32_MAX ? s_pair_dist(in, ia, ib)
                                                            : s_dist(ga, gb, dim);
            R = BN_MAX(R, d);
            row += d * d;
        }
        best_row = BN_MAX(best_row, row);
    }
#undef S_MEMBER
    for (uint32_t a = 1; a < m; a++) {
        const float *g = in->honest[v->nb[a - 1]];
        double ap = 0.0, aa = 0.0;
        for (size_t j = 0; j < dim; j++) {
            double d = (double) v->xh[j] - g[j];
            ap += d * u[j];
            aa += d * d;
        }
        B += ap;
        C += aa;
        double disc = ap * ap - aa + R * R;
        double gg = -ap + sqrt(disc > 0.0 ? disc : 0.0);
        gamma = BN_MIN(gamma, gg);
    }
    if (sum) {
        double disc = B * B - (double) m * (C - best_row);
        return BN_MAX(0.0, (-B + sqrt(disc > 0.0 ? disc : 0.0)) / m);
    }
    gamma = BN_MIN(gamma, R);                /* g = x_h itself: ||gamma u|| <= R */
    return m == 1 ? 0.0 : BN_MAX(0.0, gamma);
}

static int s_per_victim(const bn_attack_opts_t *o, const bn_attack_input_t *in, float *out)
{
    const size_t dim = in->dim;
    if (!in->victim_x) {
        s_mean_sigma(in, 1.0, false, 0.0, out);      /* something plausible */
        return BN_EARG;
    }
    const float *xh = in->victim_x;
    if (o->kind == BN_ATTACK_ECHO) {
        memcpy(out, xh, dim * sizeof *out);
        return BN_OK;
    }
    s_view_t v;
    s_view(in, &v);
    if (o->kind == BN_ATTACK_DISSENSUS) {
        double s = o->dissensus_scale * s_spread(in, &v);
        /* out = mean of the neighbours, then x_h + s * unit(x_h - mean) */
        double norm = 0.0;
        for (size_t j0 = 0; j0 < dim; j0 += S_BLOCK) {
            size_t w = BN_MIN((size_t) S_BLOCK, dim - j0);
            double mu[S_BLOCK] = { 0 };
            for (uint32_t k = 0; k < v.n_nb; k++) {
                const float *x = in->honest[v.nb[k]] + j0;
                for (size_t j = 0; j < w; j++)
                    mu[j] += x[j];
            }
            for (size_t j = 0; j < w; j++) {
                double d = v.n_nb ? (double) xh[j0 + j] - mu[j] / v.n_nb : 0.0;
                out[j0 + j] = (float) d;
                norm += d * d;
            }
        }
        norm = sqrt(norm);
        double k = norm > 0.0 && isfinite(norm) ? s / norm : 0.0;
        for (size_t j = 0; j < dim; j++)
            out[j] = (float) (xh[j] + k * out[j]);
        return BN_OK;
    }
    /* drift, minmax, minsum: x_h + step * u */
    s_direction(o, in, xh, out);
    double step;
    if (o->kind == BN_ATTACK_DRIFT)
        step = o->drift_scale * s_spread(in, &v);
    else
        step = s_minmax_gamma(in, &v, out, o->kind == BN_ATTACK_MINSUM);
    for (size_t j = 0; j < dim; j++)
        out[j] = (float) (xh[j] + step * out[j]);
    return BN_OK;
}

/* ------------------------------------------------- the seeds' attacks */

/* ofom / paf: per coordinate, against the honest direction of change
 * s_j = sign(mu_j - x_prev_j) (ties count as "up"), sampled uniformly
 *   ofom: s_j > 0 -> below the least honest value: [w_min / b, w_min] if w_min > 0,
 *         else [b w_min, w_min]; s_j <= 0 -> above the largest: [w_max, b w_max]
 *         if w_max > 0, else [w_max / b, w_max]   (Fang et al.'s full knowledge)
 *   paf:  s_j > 0 -> [mu_j - 4 sigma_j, mu_j - 3 sigma_j], else
 *         [mu_j + 3 sigma_j, mu_j + 4 sigma_j]         (partial knowledge) */
static void s_fang(const bn_attack_opts_t *o, const bn_attack_input_t *in, bool full, float *out)
{
    const uint32_t m = in->n_honest;
    const double b = o->fang_b;
    for (size_t j0 = 0; j0 < in->dim; j0 += S_BLOCK) {
        size_t w = BN_MIN((size_t) S_BLOCK, in->dim - j0);
        double mu[S_BLOCK] = { 0 }, ss[S_BLOCK] = { 0 }, lo[S_BLOCK], hi[S_BLOCK];
        for (size_t j = 0; j < w; j++) {
            lo[j] = INFINITY;
            hi[j] = -INFINITY;
        }
        for (uint32_t i = 0; i < m; i++) {
            const float *x = in->honest[i] + j0;
            for (size_t j = 0; j < w; j++) {
                mu[j] += x[j];
                lo[j] = BN_MIN(lo[j], (double) x[j]);
                hi[j] = BN_MAX(hi[j], (double) x[j]);
            }
        }
        for (size_t j = 0; j < w; j++)
            mu[j] /= m;
        if (!full)
            for (uint32_t i = 0; i < m; i++) {
                const float *x = in->honest[i] + j0;
                for (size_t j = 0; j < w; j++) {
                    double d = x[j] - mu[j];
                    ss[j] += d * d;
                }
            }
        for (size_t j = 0; j < w; j++) {
            bool up = mu[j] - (double) in->x_prev[j0 + j] >= 0.0;   /* honest direction */
            double a, c;                                          /* sample in [a, c] */
            if (full) {
                if (up) {
                    a = lo[j] > 0.0 ? lo[j] / b : b * lo[j];
                    c = lo[j];
                } else {
                    a = hi[j];
                    c = hi[j] > 0.0 ? b * hi[j] : hi[j] / b;
                }
            } else {
                double sg = sqrt(ss[j] / m);
                a = up ? mu[j] - 4.0 * sg : mu[j] + 3.0 * sg;
                c = up ? mu[j] - 3.0 * sg : mu[j] + 4.0 * sg;
            }
            out[j0 + j] = (float) (a + (c - a) * bn_rng_uniform(in->rng));
        }
    }
}

/* model-negation: x_prev - k sum_h (h - x_prev). */
static void s_model_negation(const bn_attack_opts_t *o, const bn_attack_input_t *in, float *out)
{
    s_mean_sigma(in, 1.0, false, 0.0, out);                /* mu */
    const double k = (double) o->negation_scale * in->n_honest;
    for (size_t j = 0; j < in->dim; j++)
        out[j] = (float) (in->x_prev[j] - k * ((double) out[j] - in->x_prev[j]));
}

/* normalized-mean: x_prev - r sum_h g_h / ||g_h||, g_h = h - x_prev, r the
 * median ||g_h|| over the h with g_h != 0 (so that each normalised honest
 * update keeps a typical honest size).  At most the first 1024 honest models. */
static void s_normalized_mean(const bn_attack_input_t *in, float *out)
{
    const size_t dim = in->dim;
    const uint32_t m = BN_MIN(in->n_honest, (uint32_t) S_MAX_NB);
    double nrm[S_MAX_NB], sorted[S_MAX_NB];
    uint32_t nz = 0;
    for (uint32_t i = 0; i < m; i++) {
        nrm[i] = s_dist(in->honest[i], in->x_prev, dim);
        if (nrm[i] > 0.0 && isfinite(nrm[i]))
            sorted[nz++] = nrm[i];
    }
    if (nz == 0) {
        memcpy(out, in->x_prev, dim * sizeof *out);
        return;
    }
    qsort(sorted, nz, sizeof *sorted, s_cmp_double);
    double r = nz % 2 ? sorted[nz / 2] : 0.5 * (sorted[nz / 2 - 1] + sorted[nz / 2]);
    for (size_t j0 = 0; j0 < dim; j0 += S_BLOCK) {
        size_t w = BN_MIN((size_t) S_BLOCK, dim - j0);
        double acc[S_BLOCK] = { 0 };
        for (uint32_t i = 0; i < m; i++) {
            if (!(nrm[i] > 0.0) || !isfinite(nrm[i]))
                continue;
            const float *x = in->honest[i] + j0;
            for (size_t j = 0; j < w; j++)
                acc[j] += ((double) x[j] - in->x_prev[j0 + j]) / nrm[i];
        }
        for (size_t j = 0; j < w; j++)
            out[j0 + j] = (float) (in->x_prev[j0 + j] - r * acc[j]);
    }
}

/* mimic2: two clusters of the honest models, seeded at a = the model of the
 * lowest honest id and c = the model farthest from a; every model joins the
 * nearer seed (ties: a's).  All attackers send the mean of a's cluster, so
 * median-like rules are pulled to one side of a split (non-iid) population.
 * At most the first 1024 honest models. */
static void s_mimic2(const bn_attack_input_t *in, float *out)
{
    const size_t dim = in->dim;
    const uint32_t m = BN_MIN(in->n_honest, (uint32_t) S_MAX_NB);
    uint32_t a = 0;
    for (uint32_t i = 1; i < m; i++)
        if (in->honest_id[i] < in->honest_id[a])
            a = i;
    uint32_t c = a;
    double far = -1.0;
    for (uint32_t i = 0; i < m; i++) {
        double d = s_dist(in->honest[i], in->honest[a], dim);
        if (d > far) {
            far = d;
            c = i;
        }
    }
    bool in_a[S_MAX_NB];
    uint32_t size = 0;
    for (uint32_t i = 0; i < m; i++) {
        in_a[i] = s_dist(in->honest[i], in->honest[a], dim) <= s_dist(in->honest[i], in->honest[c], dim);
        size += in_a[i];
    }
    for (size_t j = 0; j < dim; j++) {
        double s = 0.0;
        for (uint32_t i = 0; i < m; i++)
            if (in_a[i])
                s += in->honest[i][j];
        out[j] = (float) (s / size);
    }
}

/* ------------------------------------------------------------ mixed */

/* Parses entry [p, e) of a mix: "NAME" or "ID:NAME".  *id = UINT32_MAX for a
 * bare NAME. */
static int s_mix_entry(const char *p, const char *e, uint32_t *id, bn_attack_kind_t *kind)
{
    char buf[64];
    size_t len = (size_t) (e - p);
    if (len == 0 || len >= sizeof buf)
        return BN_EARG;
    memcpy(buf, p, len);
    buf[len] = '\0';
    char *name = buf, *colon = strchr(buf, ':');
    *id = UINT32_MAX;
    if (colon) {
        *colon = '\0';
        char *end = NULL;
        if (buf[0] < '0' || buf[0] > '9')
            return BN_EARG;
        unsigned long v = strtoul(buf, &end, 10);
        if (*end || v >= UINT32_MAX)
            return BN_EARG;
        *id = (uint32_t) v;
        name = colon + 1;
    }
    if (bn_attack_parse(name, kind) != BN_OK || *kind == BN_ATTACK_NONE || *kind == BN_ATTACK_MIXED)
        return BN_EARG;
    return BN_OK;
}

int bn_attack_mix_check(const char *mix, char *err, size_t errlen)
{
    if (!mix || !*mix)
        return bn_fail(err, errlen, BN_EARG, "attack-mix is empty (NAME,... or ID:NAME,...)");
    for (const char *p = mix;;) {
        const char *e = strchr(p, ',');
        if (!e)
            e = p + strlen(p);
        uint32_t id;
        bn_attack_kind_t k;
        if (s_mix_entry(p, e, &id, &k) != BN_OK)
            return bn_fail(err, errlen, BN_EARG, "attack-mix: bad entry '%.*s' (NAME or ID:NAME, "
                           "NAME an attack other than none and mixed)", (int) (e - p), p);
        if (!*e)
            return BN_OK;
        p = e + 1;
    }
}

int bn_attack_resolve(bn_attack_opts_t *opts, uint32_t id, uint64_t seed, uint32_t n, uint32_t b,
                      char *err, size_t errlen)
{
    if (!opts || opts->kind != BN_ATTACK_MIXED)
        return BN_OK;
    int rc = bn_attack_mix_check(opts->mix, err, errlen);
    if (rc != BN_OK)
        return rc;
    /* Pass 1: this id's own entry, the named ids and the bare entries. */
    bn_attack_kind_t bare[BN_ATTACK_MIX_MAX / 2];
    uint32_t n_bare = 0;
    bool *named = calloc(n ? n : 1, sizeof *named), *byz = calloc(n ? n : 1, sizeof *byz);
    if (!named || !byz) {
        free(named);
        free(byz);
        return bn_fail(err, errlen, BN_ENOMEM, "out of memory");
    }
    bn_attack_kind_t own = BN_ATTACK_COUNT;
    for (const char *p = opts->mix;;) {
        const char *e = strchr(p, ',');
        if (!e)
            e = p + strlen(p);
        uint32_t eid = UINT32_MAX;
        bn_attack_kind_t k = BN_ATTACK_NONE;
        (void) s_mix_entry(p, e, &eid, &k);             /* checked above */
        if (eid == UINT32_MAX)
            bare[n_bare++] = k;
        else {
            if (eid < n)
                named[eid] = true;
            if (eid == id)
                own = k;
        }
        if (!*e)
            break;
        p = e + 1;
    }
    if (own == BN_ATTACK_COUNT) {
        if (n_bare == 0) {
            free(named);
            free(byz);
            return bn_fail(err, errlen, BN_EARG, "attack-mix '%s' names no attack for node %u",
                           opts->mix, id);
        }
        rc = bn_roles_byzantine(seed, n, b, byz);
        if (rc != BN_OK) {
            free(named);
            free(byz);
            return bn_fail(err, errlen, rc, "out of memory");
        }
        uint32_t rank = id;
        if (id < n && byz[id]) {
            rank = 0;
            for (uint32_t i = 0; i < id; i++)
                rank += byz[i] && !named[i];
        }
        own = bare[rank % n_bare];
    }
    free(named);
    free(byz);
    opts->kind = own;
    return BN_OK;
}

/* ------------------------------------------------------------ craft */

/* Are the inputs an attack that needs the honest models reads all there
 * (bn_attack_needs_honest kinds only)?  The honest vectors, and per kind the
 * ids (mimic), the RNG (random, Fang's), x_prev (Fang's, model-negation,
 * normalized-mean) and a swarm in which ALIE's z is defined. */
static bool s_inputs_ok(const bn_attack_opts_t *opts, const bn_attack_input_t *in)
{
    const bn_attack_kind_t k = opts->kind;
    bool ok = in->n_honest > 0 && in->honest != NULL;
    for (uint32_t i = 0; ok && i < in->n_honest; i++)
        ok = in->honest[i] != NULL || in->dim == 0;
    if (k == BN_ATTACK_MIMIC || k == BN_ATTACK_MIMIC2)
        ok = ok && in->honest_id != NULL;
    if (k == BN_ATTACK_RANDOM || k == BN_ATTACK_OFOM || k == BN_ATTACK_PAF)
        ok = ok && in->rng != NULL;
    if (k == BN_ATTACK_OFOM || k == BN_ATTACK_PAF
        || k == BN_ATTACK_MODEL_NEGATION || k == BN_ATTACK_NORMALIZED_MEAN)
        ok = ok && in->x_prev != NULL;
    if (k == BN_ATTACK_ALIE)
        ok = ok && opts->n >= 2 && opts->b < opts->n;
    return ok;
}

/* mimic: the model of the lowest honest id. */
static void s_mimic(const bn_attack_input_t *in, float *out)
{
    uint32_t best = 0;
    for (uint32_t i = 1; i < in->n_honest; i++)
        if (in->honest_id[i] < in->honest_id[best])
            best = i;
    if (in->honest[best] != out)
        memcpy(out, in->honest[best], in->dim * sizeof *out);
}

/* sign-flip: the attacker's own step reversed, x_prev - (x_self - x_prev). */
static int s_sign_flip(const bn_attack_input_t *in, float *out)
{
    if (!in->x_prev || !in->x_self)
        return BN_EARG;
    for (size_t j = 0; j < in->dim; j++)
        out[j] = in->x_prev[j] - (in->x_self[j] - in->x_prev[j]);
    return BN_OK;
}

/* x_prev + r (x_self - x_prev) in double: the attacker's own step scaled by r
 * (random-sign-flip draws r, gradient-scale fixes it). */
static int s_scaled_step(const bn_attack_input_t *in, double r, float *out)
{
    for (size_t j = 0; j < in->dim; j++)
        out[j] = (float) (in->x_prev[j] + r * ((double) in->x_self[j] - in->x_prev[j]));
    return BN_OK;
}

/* gaussian: N(0, gaussian_std^2) in every coordinate. */
static int s_gaussian(const bn_attack_opts_t *opts, const bn_attack_input_t *in, float *out)
{
    if (!in->rng) {
        s_copy_self(in, out);
        return BN_EARG;
    }
    for (size_t j = 0; j < in->dim; j++)
        out[j] = (float) (opts->gaussian_std * bn_rng_normal(in->rng));
    return BN_OK;
}

/* constant and nan: one value in every coordinate. */
static int s_fill(const bn_attack_input_t *in, float value, float *out)
{
    for (size_t j = 0; j < in->dim; j++)
        out[j] = value;
    return BN_OK;
}

int bn_attack_craft(const bn_attack_opts_t *opts, const bn_attack_input_t *in, float *out)
{
    if (!opts || !in || (!out && in->dim > 0))
        return BN_EARG;
    if ((unsigned) opts->kind >= BN_ATTACK_COUNT)
        return BN_EARG;
    if (bn_attack_needs_honest(opts->kind) && !s_inputs_ok(opts, in)) {
        s_copy_self(in, out);
        return BN_EARG;
    }

    switch (opts->kind) {
    case BN_ATTACK_NONE:
    case BN_ATTACK_LABEL_FLIP:                   /* the poison is in its training */
        if (!in->x_self)
            return BN_EARG;
        s_copy_self(in, out);
        return BN_OK;
    case BN_ATTACK_DLIE:
        s_mean_sigma(in, 1.0, true, opts->z, out);
        return BN_OK;
    case BN_ATTACK_ALIE:
        s_mean_sigma(in, 1.0, true, bn_attack_alie_z(opts->n, opts->b), out);
        return BN_OK;
    case BN_ATTACK_REVERSE:
        s_mean_sigma(in, -1.0, false, 0.0, out);
        return BN_OK;
    case BN_ATTACK_IPM:
        s_mean_sigma(in, -(double) opts->epsilon, false, 0.0, out);
        return BN_OK;
    case BN_ATTACK_RANDOM:
        s_random(in, out);
        return BN_OK;
    case BN_ATTACK_MIMIC:
        s_mimic(in, out);
        return BN_OK;
    case BN_ATTACK_SIGN_FLIP:
        return s_sign_flip(in, out);
    case BN_ATTACK_GAUSSIAN:
        return s_gaussian(opts, in, out);
    case BN_ATTACK_CONSTANT:
        return s_fill(in, opts->value, out);
    case BN_ATTACK_CRASH:                        /* the caller sends nothing */
        return BN_OK;
    case BN_ATTACK_NAN:
        return s_fill(in, NAN, out);
    case BN_ATTACK_ECHO: case BN_ATTACK_DRIFT: case BN_ATTACK_DISSENSUS:
    case BN_ATTACK_MINMAX: case BN_ATTACK_MINSUM:
        return s_per_victim(opts, in, out);
    case BN_ATTACK_RANDOM_SIGN_FLIP:
        if (!in->x_prev || !in->x_self || !in->rng)
            return BN_EARG;
        return s_scaled_step(in, opts->rsf_std * bn_rng_normal(in->rng), out);
    case BN_ATTACK_GRADIENT_SCALE:
        if (!in->x_prev || !in->x_self)
            return BN_EARG;
        return s_scaled_step(in, (double) opts->gradient_scale, out);
    case BN_ATTACK_OFOM:
    case BN_ATTACK_PAF:
        s_fang(opts, in, opts->kind == BN_ATTACK_OFOM, out);
        return BN_OK;
    case BN_ATTACK_MODEL_NEGATION:
        s_model_negation(opts, in, out);
        return BN_OK;
    case BN_ATTACK_NORMALIZED_MEAN:
        s_normalized_mean(in, out);
        return BN_OK;
    case BN_ATTACK_MIMIC2:
        s_mimic2(in, out);
        return BN_OK;
    case BN_ATTACK_MIXED:                        /* resolved before the run starts */
        s_copy_self(in, out);
        return BN_EARG;
    default:
        return BN_EARG;
    }
}
