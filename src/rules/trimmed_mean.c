/*  trimmed_mean.c -- coordinate-wise trimmed mean (BRIDGE-T, Yang & Bajwa):
 *  per coordinate, drop the b largest and the b smallest of the n values
 *  (self included) and average the n - 2b that remain.
 *
 *  Fewer than 2b + 1 vectors: b is lowered to (n - 1) / 2 for the round,
 *  which is the coordinate-wise median (odd n) or the mean of the two middle
 *  values (even n); the round counts as degenerate.  b = 0 is the mean.
 *
 *  Method (selection, not sorting), per group of 4 SIMD registers of
 *  coordinates (vec.h; 4 independent chains for instruction-level parallelism):
 *    1. one pass over the n vectors keeps, per coordinate, the b largest and
 *       the b smallest values seen so far in sorted lists updated by a
 *       branch-free max/min insertion network; L = b-th smallest, H = b-th
 *       largest;
 *    2. a second pass over the same n cache lines (now in L1) sums the values
 *       strictly between L and H, and counts values below / equal to L and
 *       above / equal to H, so that ties at L or H are kept exactly as often
 *       as the sorted definition keeps them.
 *  The trimmed values are never subtracted from a total, so a huge Byzantine
 *  value cannot wipe out the honest digits; each kept value is scaled by
 *  1 / (n - 2b) before it is added.  Cost: 4 b n + O(n) vector operations per
 *  BN_VL coordinates, one read of each vector from memory.
 *  Telemetry: w_j = share of the values kept strictly inside (L, H) that
 *  came from vector j (ties at L / H are not attributed), summing to 1.
 */
#include "rules.h"
#include "vec.h"

#include <math.h>
#include <stdlib.h>

/* Coordinates handled together: S_G registers of BN_VL lanes, so that S_G
 * independent max/min chains keep the pipeline busy. */
#define S_G 4
#define S_W (S_G * BN_VL)

/* One group of S_W coordinates at offset `off` of the n vectors v[]. */
static void s_group(const float *const *v, size_t off, uint32_t n, uint32_t b, float inv,
                    float *hi, float *lo, float *out, double *kept)
{
    bn_vf ninf = bn_vset1(-INFINITY), pinf = bn_vset1(INFINITY);
    for (uint32_t l = 0; l < b * S_G; l++) {
        bn_vstore(hi + l * BN_VL, ninf);
        bn_vstore(lo + l * BN_VL, pinf);
    }
    /* pass 1: hi[0] >= hi[1] >= ... and lo[0] <= lo[1] <= ... */
    for (uint32_t j = 0; j < n; j++) {
        bn_vf x[S_G], y[S_G];
        for (int g = 0; g < S_G; g++)
            x[g] = y[g] = bn_vload(v[j] + off + g * BN_VL);
        for (uint32_t l = 0; l < b; l++) {
            float *h = hi + (size_t) l * S_W, *o = lo + (size_t) l * S_W;
            for (int g = 0; g < S_G; g++) {
                bn_vf t = bn_vload(h + g * BN_VL);
                bn_vstore(h + g * BN_VL, bn_vmax(t, x[g]));
                x[g] = bn_vmin(t, x[g]);
                bn_vf u = bn_vload(o + g * BN_VL);
                bn_vstore(o + g * BN_VL, bn_vmin(u, y[g]));
                y[g] = bn_vmax(u, y[g]);
            }
        }
    }
    bn_vf zero = bn_vset1(0.0f), one = bn_vset1(1.0f), vinv = bn_vset1(inv);
    bn_vf H[S_G], L[S_G], sum[S_G], lt[S_G], eql[S_G], gt[S_G], eqh[S_G];
    for (int g = 0; g < S_G; g++) {
        H[g] = bn_vload(hi + (size_t) (b - 1) * S_W + g * BN_VL);
        L[g] = bn_vload(lo + (size_t) (b - 1) * S_W + g * BN_VL);
        sum[g] = lt[g] = eql[g] = gt[g] = eqh[g] = zero;
    }
    /* pass 2 */
    for (uint32_t j = 0; j < n; j++) {
        int inside = 0;
        for (int g = 0; g < S_G; g++) {
            bn_vf x = bn_vload(v[j] + off + g * BN_VL);
            bn_vm mid = bn_mand(bn_vgt(x, L[g]), bn_vlt(x, H[g]));
            sum[g] = bn_vaddm(sum[g], mid, bn_vmul(x, vinv));
            inside += bn_mcount(mid);
            lt[g] = bn_vaddm(lt[g], bn_vlt(x, L[g]), one);
            gt[g] = bn_vaddm(gt[g], bn_vgt(x, H[g]), one);
            eql[g] = bn_vaddm(eql[g], bn_veq(x, L[g]), one);
            eqh[g] = bn_vaddm(eqh[g], bn_veq(x, H[g]), one);
        }
        kept[j] += inside;
    }
    float fb = (float) b;
    for (int g = 0; g < S_G; g++) {
        float fs[BN_VL], flt[BN_VL], fgt[BN_VL], fel[BN_VL], feh[BN_VL], fL[BN_VL], fH[BN_VL];
        bn_vstore(fs, sum[g]);
        bn_vstore(flt, lt[g]);
        bn_vstore(fgt, gt[g]);
        bn_vstore(fel, eql[g]);
        bn_vstore(feh, eqh[g]);
        bn_vstore(fL, L[g]);
        bn_vstore(fH, H[g]);
        for (int c = 0; c < BN_VL; c++) {
            float *o = out + g * BN_VL + c;
            if (fL[c] == fH[c]) {
                *o = fL[c];
            } else {
                float nl = fel[c] - (fb - flt[c]);      /* copies of L kept */
                float nh = feh[c] - (fb - fgt[c]);      /* copies of H kept */
                *o = fs[c] + inv * (nl * fL[c] + nh * fH[c]);
            }
        }
    }
}

int bn_trim_scratch_init(bn_trim_scratch_t *t, uint32_t bmax, uint32_t cap)
{
    size_t b = BN_MIN((size_t) bmax, (size_t) cap / 2 + 1);
    b = BN_MAX(b, (size_t) 1);
    t->hi = bn_alloc_floats(b * BN_RULE_BLOCK);
    t->lo = bn_alloc_floats(b * BN_RULE_BLOCK);
    t->tblock = bn_alloc_floats((size_t) BN_RULE_BLOCK * cap);
    t->tailv = calloc(cap, sizeof *t->tailv);
    t->kept = calloc(cap, sizeof *t->kept);
    return t->hi && t->lo && t->tblock && t->tailv && t->kept ? BN_OK : BN_ENOMEM;
}

void bn_trim_scratch_free(bn_trim_scratch_t *t)
{
    bn_free(t->hi);
    bn_free(t->lo);
    bn_free(t->tblock);
    free(t->tailv);
    free(t->kept);
    t->hi = t->lo = t->tblock = NULL;
    t->tailv = NULL;
    t->kept = NULL;
}

int bn_rules_trimmed_core(bn_trim_scratch_t *t, const bn_set_t *set, uint32_t b, float *x_out,
                          float *w)
{
    size_t dim = set->dim;
    uint32_t n = set->n;
    if (b == 0)
        return bn_rules_mean_core(set, x_out, w);
    float inv = 1.0f / (float) (n - 2 * b);
    double *kept = t->kept;
    for (uint32_t j = 0; j < n; j++)
        kept[j] = 0.0;
    size_t full = dim - dim % S_W;
    for (size_t c0 = 0; c0 < full; c0 += S_W)
        s_group(set->v, c0, n, b, inv, t->hi, t->lo, x_out + c0, kept);
    if (full < dim) {
        /* tail: copy the last coordinates into padded rows (NaN padding never
         * counts as kept and its lanes are discarded) */
        size_t r = dim - full;
        float *tb = t->tblock, out[S_W];
        for (uint32_t j = 0; j < n; j++) {
            for (size_t c = 0; c < S_W; c++)
                tb[(size_t) j * S_W + c] = c < r ? set->v[j][full + c] : NAN;
            t->tailv[j] = tb + (size_t) j * S_W;
        }
        s_group(t->tailv, 0, n, b, inv, t->hi, t->lo, out, kept);
        for (size_t c = 0; c < r; c++)
            x_out[full + c] = out[c];
    }
    double tot = 0.0;
    for (uint32_t j = 0; j < n; j++)
        tot += kept[j];
    for (uint32_t j = 0; j < n; j++)
        w[j] = tot > 0.0 ? (float) (kept[j] / tot) : 1.0f / (float) n;
    return BN_OK;
}

/* The rule's state: its b and the kernel's scratch. */
typedef struct {
    uint32_t b;
    bn_trim_scratch_t t;
} s_state_t;

static int s_init(void *state, const bn_rule_env_t *env)
{
    s_state_t *st = state;
    st->b = (uint32_t) bn_rule_param(env, &bn_rule_param_trim);
    return bn_trim_scratch_init(&st->t, st->b, env->cap);
}

static void s_free(void *state)
{
    bn_trim_scratch_free(&((s_state_t *) state)->t);
}

static int s_aggregate(void *state, const bn_set_t *set, float *x_out, float *w)
{
    s_state_t *st = state;
    uint32_t n = set->n, b = st->b;
    if (n < 2 * b + 1) {
        b = (n - 1) / 2;
        set->stats->degenerate++;
    }
    return bn_rules_trimmed_core(&st->t, set, b, x_out, w);
}

static const bn_rule_param_t *const s_params[] = { &bn_rule_param_trim, NULL };

const bn_rule_ops_t bn_rule_ops_trimmed_mean = {
    .name = "trimmed-mean",
    .summary = "BRIDGE-T: coordinate-wise mean without the b largest and b smallest",
    .params = s_params, .flags = BN_RULE_F_BUCKETABLE, .state_size = sizeof(s_state_t),
    .init = s_init, .aggregate = s_aggregate, .free = s_free,
};
