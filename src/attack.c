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

#include <math.h>
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
}

int bn_attack_parse(const char *name, bn_attack_kind_t *kind)
{
    if (!name || !kind)
        return BN_EARG;
    for (int k = 0; k < BN_ATTACK_COUNT; k++) {
        const char *a = s_names[k], *b = name;
        /* '_' is accepted for '-' ("sign_flip") */
        while (*a && (*a == *b || (*a == '-' && *b == '_'))) {
            a++;
            b++;
        }
        if (*a == '\0' && *b == '\0') {
            *kind = (bn_attack_kind_t) k;
            return BN_OK;
        }
    }
    return BN_EARG;
}

const char *bn_attack_name(bn_attack_kind_t kind)
{
    if ((unsigned) kind >= BN_ATTACK_COUNT)
        return "unknown";
    return s_names[kind];
}

bool bn_attack_trains(bn_attack_kind_t kind)
{
    return kind == BN_ATTACK_NONE || kind == BN_ATTACK_SIGN_FLIP || kind == BN_ATTACK_LABEL_FLIP;
}

bool bn_attack_per_victim(bn_attack_kind_t kind)
{
    (void) kind;
    return false;   /* no built-in attack is per-victim yet */
}

bool bn_attack_needs_honest(bn_attack_kind_t kind)
{
    switch (kind) {
    case BN_ATTACK_DLIE: case BN_ATTACK_RANDOM: case BN_ATTACK_REVERSE:
    case BN_ATTACK_IPM:  case BN_ATTACK_ALIE:   case BN_ATTACK_MIMIC:
        return true;
    default:
        return false;
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

int bn_attack_craft(const bn_attack_opts_t *opts, const bn_attack_input_t *in, float *out)
{
    if (!opts || !in || (!out && in->dim > 0))
        return BN_EARG;
    if ((unsigned) opts->kind >= BN_ATTACK_COUNT)
        return BN_EARG;
    const size_t dim = in->dim;

    if (bn_attack_needs_honest(opts->kind)) {
        bool ok = in->n_honest > 0 && in->honest != NULL;
        for (uint32_t i = 0; ok && i < in->n_honest; i++)
            ok = in->honest[i] != NULL || dim == 0;
        if (opts->kind == BN_ATTACK_MIMIC)
            ok = ok && in->honest_id != NULL;
        if (opts->kind == BN_ATTACK_RANDOM)
            ok = ok && in->rng != NULL;
        if (opts->kind == BN_ATTACK_ALIE)
            ok = ok && opts->n >= 2 && opts->b < opts->n;
        if (!ok) {
            s_copy_self(in, out);
            return BN_EARG;
        }
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
    case BN_ATTACK_MIMIC: {
        uint32_t best = 0;
        for (uint32_t i = 1; i < in->n_honest; i++)
            if (in->honest_id[i] < in->honest_id[best])
                best = i;
        if (in->honest[best] != out)
            memcpy(out, in->honest[best], dim * sizeof *out);
        return BN_OK;
    }
    case BN_ATTACK_SIGN_FLIP:
        if (!in->x_prev || !in->x_self)
            return BN_EARG;
        for (size_t j = 0; j < dim; j++)
            out[j] = in->x_prev[j] - (in->x_self[j] - in->x_prev[j]);
        return BN_OK;
    case BN_ATTACK_GAUSSIAN:
        if (!in->rng) {
            s_copy_self(in, out);
            return BN_EARG;
        }
        for (size_t j = 0; j < dim; j++)
            out[j] = (float) (opts->gaussian_std * bn_rng_normal(in->rng));
        return BN_OK;
    case BN_ATTACK_CONSTANT:
        for (size_t j = 0; j < dim; j++)
            out[j] = opts->value;
        return BN_OK;
    case BN_ATTACK_CRASH:                        /* the caller sends nothing */
        return BN_OK;
    case BN_ATTACK_NAN:
        for (size_t j = 0; j < dim; j++)
            out[j] = NAN;
        return BN_OK;
    default:
        return BN_EARG;
    }
}
