/*  trimmed_mean.c -- coordinate-wise trimmed mean (BRIDGE-T, Yang & Bajwa):
 *  per coordinate, drop the b largest and the b smallest of the n values
 *  (self included) and average the n - 2b that remain.
 *
 *  Fewer than 2b + 1 vectors: b is lowered to (n - 1) / 2 for the round,
 *  which is the coordinate-wise median (odd n) or the mean of the two middle
 *  values (even n); the round counts as degenerate.  b = 0 is the mean.
 *
 *  Definition (exact, the same bits on every kernel set): order the n values
 *  of a coordinate totally (-0 before +0, vec.h's keys); L = the value of
 *  rank b - 1, H = rank n - b (0-based); if L and H are the same float the
 *  result is L, else
 *      S + inv * (nl * L + nh * H),   inv = 1 / (n - 2b) (float),
 *  S = the float sum, in set order, of x * inv over the values strictly
 *  between L and H, nl / nh = the copies of L / H that rank b .. n - b - 1
 *  keeps.  The trimmed values are never subtracted from a total, so a huge
 *  Byzantine value cannot wipe out the honest digits.
 *
 *  Method: the selection kernel of trim_simd.h (order keys, a per-lane
 *  interpolating search for L and H, one summing pass) over groups of
 *  BN_TRIM_W coordinates that stay in L1, one read of each vector from
 *  memory, about 10-15 passes of n vector compares per group on model-like
 *  values instead of 4 b n; the kernel set is the model kernels' run-time
 *  choice (bn_kernels_current: avx512, avx2, else SSE2 / plain C, sse4
 *  included).
 *  Telemetry: w_j = share of the values kept strictly inside (L, H) that
 *  came from vector j (ties at L / H are not attributed), summing to 1.
 */
#include "rules.h"
#include "../layers.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const bn_trim_kernel_t *bn_trim_kernel(void)
{
    const bn_trim_kernel_t *k = &bn_trim_kernel_base;
    switch (bn_kernels_current()) {
    case BN_KERNELS_AVX512: k = &bn_trim_kernel_avx512; break;
    case BN_KERNELS_AVX2:   k = &bn_trim_kernel_avx2; break;
    default: break;
    }
    return k->group ? k : &bn_trim_kernel_base;
}

/* Copies coordinates [c0, c0 + len) of the n vectors (those without a row
 * in the store if `row`) into rows of BN_RULE_BLOCK floats of tb (n x 1
 * KiB: stays in L2), zero-padded to a multiple of BN_TRIM_W; one sequential
 * read per row, which the hardware prefetchers follow (n interleaved
 * streams of 64 bytes they do not). */
static void s_block(const float *const *v, uint32_t n, size_t c0, size_t len, float *tb,
                    const float **rows, const uint32_t *row)
{
    size_t padded = (len + BN_TRIM_W - 1) / BN_TRIM_W * BN_TRIM_W;
    for (uint32_t j = 0; j < n; j++) {
        if (row && row[j] != UINT32_MAX)
            continue;
        float *dst = tb + (size_t) j * BN_RULE_BLOCK;
        memcpy(dst, v[j] + c0, len * sizeof *dst);
        for (size_t c = len; c < padded; c++)
            dst[c] = 0.0f;
        rows[j] = dst;
    }
}

/* While block c0 - BN_RULE_BLOCK is computed, its group `part` (of
 * BN_RULE_BLOCK / BN_TRIM_W) asks for its share of the rows of block c0, so
 * that s_block then copies from cache. */
static void s_prefetch(const float *const *v, uint32_t n, size_t c0, size_t dim, size_t part)
{
    if (c0 >= dim)
        return;
    size_t len = BN_MIN((size_t) BN_RULE_BLOCK, dim - c0), parts = BN_RULE_BLOCK / BN_TRIM_W;
    uint32_t j0 = (uint32_t) (part * n / parts), j1 = (uint32_t) ((part + 1) * n / parts);
    for (uint32_t j = j0; j < j1; j++)
        for (size_t c = 0; c < len; c += 16)
            __builtin_prefetch(v[j] + c0 + c, 0, 2);
}

int bn_trim_scratch_init(bn_trim_scratch_t *t, uint32_t bmax, uint32_t cap)
{
    (void) bmax;
    t->cap = cap;
    t->kb = NULL;                       /* no store unless bn_trim_stream_init */
    t->o_ptr = NULL;
    t->row = NULL;
    t->open = 0;
    t->keys = (int32_t *) (void *) bn_alloc_floats((size_t) cap * BN_TRIM_W);
    t->tblock = bn_alloc_floats((size_t) BN_RULE_BLOCK * cap);
    t->tailv = calloc(cap, sizeof *t->tailv);
    t->kept = calloc(cap, sizeof *t->kept);
    return t->keys && t->tblock && t->tailv && t->kept ? BN_OK : BN_ENOMEM;
}

int bn_trim_stream_init(bn_trim_scratch_t *t, size_t dim)
{
    size_t groups = (dim + BN_TRIM_W - 1) / BN_TRIM_W;
    t->dim = dim;
    t->kb = (int32_t *) (void *) bn_alloc_floats(groups * t->cap * BN_TRIM_W);
    t->o_ptr = calloc(t->cap, sizeof *t->o_ptr);
    t->row = calloc(t->cap, sizeof *t->row);
    return t->kb && t->o_ptr && t->row ? BN_OK : BN_ENOMEM;
}

void bn_trim_scratch_free(bn_trim_scratch_t *t)
{
    bn_free(t->keys);
    bn_free(t->tblock);
    free(t->tailv);
    free(t->kept);
    bn_free(t->kb);
    free(t->o_ptr);
    free(t->row);
    t->keys = NULL;
    t->tblock = NULL;
    t->tailv = NULL;
    t->kept = NULL;
    t->kb = NULL;
    t->o_ptr = NULL;
    t->row = NULL;
}

/* Non-temporal stores into a store of more than this: it does not stay in
 * cache until the aggregate anyway. */
#define S_STREAM_NT_BYTES (16u << 20)

static void s_store(bn_trim_scratch_t *t, uint32_t row, const float *x)
{
    size_t gstride = (size_t) t->cap * BN_TRIM_W;
    size_t bytes = (t->dim + BN_TRIM_W - 1) / BN_TRIM_W * gstride * sizeof(int32_t);
    bn_trim_kernel()->store(x, t->dim, t->kb, gstride, row, bytes > S_STREAM_NT_BYTES);
    t->o_ptr[row] = x;
}

void bn_trim_stream_begin(bn_trim_scratch_t *t, const float *x_self, size_t dim)
{
    t->open = 0;
    if (!t->kb || !x_self || dim != t->dim)
        return;
    for (uint32_t r = 0; r < t->cap; r++)
        t->o_ptr[r] = NULL;
    s_store(t, t->cap - 1, x_self);
    t->open = 1;
}

void bn_trim_stream_observe(bn_trim_scratch_t *t, uint32_t slot, const float *x, size_t dim)
{
    if (t->kb && t->open && x && dim == t->dim && slot + 1 < t->cap)
        s_store(t, slot, x);
}

/* The store's row of each set member (t->row, UINT32_MAX: none) and how
 * many have one, if the round's x_self is the one begin keyed (else none,
 * as for the other streaming rules); closes the round.  Neighbour slots are
 * in x_nb order and at least the vector's index there (aggregate.h), so
 * the search for member j starts at orig[j]; x_self is row cap - 1. */
static uint32_t s_match(bn_trim_scratch_t *t, const bn_set_t *set)
{
    uint32_t n = set->n, found = 1;
    int use = t->kb && t->open && set->dim == t->dim && n <= t->cap
              && t->o_ptr[t->cap - 1] == set->x_self;
    t->open = 0;
    if (!use)
        return 0;
    for (uint32_t j = 0; j + 1 < n; j++) {
        uint32_t r = UINT32_MAX;
        for (uint32_t s = set->orig[j]; s + 1 < t->cap && r == UINT32_MAX; s++)
            if (t->o_ptr[s] == set->v[j])
                r = s;
        t->row[j] = r;
        found += r != UINT32_MAX;
    }
    t->row[n - 1] = t->cap - 1;
    set->stats->streamed += found - 1;
    return found;
}

/* Not streamed: block copies of the vectors, then the kernel per group. */
static void s_run_copy(bn_trim_scratch_t *t, const bn_set_t *set, const bn_trim_kernel_t *kern,
                       uint32_t b, float inv, float *x_out)
{
    size_t dim = set->dim;
    uint32_t n = set->n;
    for (size_t c0 = 0; c0 < dim; c0 += BN_RULE_BLOCK) {
        size_t len = BN_MIN((size_t) BN_RULE_BLOCK, dim - c0);
        s_block(set->v, n, c0, len, t->tblock, t->tailv, NULL);
        for (size_t g = 0; g < len; g += BN_TRIM_W) {
            s_prefetch(set->v, n, c0 + BN_RULE_BLOCK, dim, g / BN_TRIM_W);
            size_t r = BN_MIN((size_t) BN_TRIM_W, len - g);
            float out[BN_TRIM_W];
            /* the padding lanes are computed on zeros, never counted as
             * kept, and discarded */
            kern->group(t->tailv, g, n, b, inv, t->keys, t->kept, (1u << r) - 1, out);
            memcpy(x_out + c0 + g, out, r * sizeof *out);
        }
    }
}

/* Every member in the store, in rows 0 .. n - 1 (all slots observed in
 * order): the kernel reads each group where it lies. */
static void s_run_store(bn_trim_scratch_t *t, const bn_set_t *set, const bn_trim_kernel_t *kern,
                        uint32_t b, float inv, float *x_out)
{
    size_t dim = set->dim, gstride = (size_t) t->cap * BN_TRIM_W;
    for (size_t c0 = 0, g = 0; c0 < dim; c0 += BN_TRIM_W, g++) {
        size_t r = BN_MIN((size_t) BN_TRIM_W, dim - c0);
        float out[BN_TRIM_W];
        size_t ahead = c0 + BN_TRIM_W < dim ? gstride * sizeof(int32_t) : 0;
        kern->group_keys(t->kb + g * gstride, set->n, b, inv, t->kept, (1u << r) - 1, out, ahead);
        memcpy(x_out + c0, out, r * sizeof *out);
    }
}

/* Some members in the store: per group, their rows are copied into the
 * scratch next to the keys of the others (block copies as in s_run_copy). */
static void s_run_mixed(bn_trim_scratch_t *t, const bn_set_t *set, const bn_trim_kernel_t *kern,
                        uint32_t b, float inv, float *x_out)
{
    size_t dim = set->dim, gstride = (size_t) t->cap * BN_TRIM_W;
    uint32_t n = set->n;
    for (size_t c0 = 0; c0 < dim; c0 += BN_RULE_BLOCK) {
        size_t len = BN_MIN((size_t) BN_RULE_BLOCK, dim - c0);
        s_block(set->v, n, c0, len, t->tblock, t->tailv, t->row);
        for (size_t g = 0; g < len; g += BN_TRIM_W) {
            const int32_t *grp = t->kb + (c0 + g) / BN_TRIM_W * gstride;
            for (uint32_t j = 0; j < n; j++) {
                if (t->row[j] != UINT32_MAX)
                    memcpy(t->keys + (size_t) j * BN_TRIM_W, grp + (size_t) t->row[j] * BN_TRIM_W,
                           BN_TRIM_W * sizeof *grp);
                else
                    kern->store(t->tailv[j] + g, BN_TRIM_W, t->keys, 0, j, 0);
            }
            size_t r = BN_MIN((size_t) BN_TRIM_W, len - g);
            float out[BN_TRIM_W];
            kern->group_keys(t->keys, n, b, inv, t->kept, (1u << r) - 1, out, 0);
            memcpy(x_out + c0 + g, out, r * sizeof *out);
        }
    }
}

int bn_rules_trimmed_core(bn_trim_scratch_t *t, const bn_set_t *set, uint32_t b, float *x_out,
                          float *w)
{
    uint32_t n = set->n;
    if (b == 0) {
        t->open = 0;
        return bn_rules_mean_core(set, x_out, w);
    }
    uint32_t found = s_match(t, set);
    const bn_trim_kernel_t *kern = bn_trim_kernel();
    float inv = 1.0f / (float) (n - 2 * b);
    uint32_t *kept = t->kept;
    for (uint32_t j = 0; j < n; j++)
        kept[j] = 0;
    int in_order = found == n && n == t->cap;
    for (uint32_t j = 0; j < n && in_order; j++)
        in_order = t->row[j] == j;
    if (in_order)
        s_run_store(t, set, kern, b, inv, x_out);
    else if (found)
        s_run_mixed(t, set, kern, b, inv, x_out);
    else
        s_run_copy(t, set, kern, b, inv, x_out);
    double tot = 0.0;
    for (uint32_t j = 0; j < n; j++)
        tot += kept[j];
    for (uint32_t j = 0; j < n; j++)
        w[j] = tot > 0.0 ? (float) ((double) kept[j] / tot) : 1.0f / (float) n;
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
    int rc = bn_trim_scratch_init(&st->t, st->b, env->cap);
    /* with bucketing the kernel sees bucket means, never the observed vectors */
    if (rc == BN_OK && bn_rule_param(env, &bn_rule_param_bucketing) <= 1)
        rc = bn_trim_stream_init(&st->t, env->dim);
    return rc;
}

static void s_begin(void *state, const float *x_prev, const float *x_self, size_t dim)
{
    (void) x_prev;
    bn_trim_stream_begin(&((s_state_t *) state)->t, x_self, dim);
}

static void s_observe(void *state, uint32_t slot, const float *x, size_t dim)
{
    bn_trim_stream_observe(&((s_state_t *) state)->t, slot, x, dim);
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
    .begin = s_begin, .observe = s_observe,
};
