/*  aggregate.c -- registry of the robust aggregation rules, option defaults
 *  and validation, buffer allocation, and the common pre-filter.
 *
 *  The pre-filter runs before every rule: a neighbour vector that is NULL or
 *  contains NaN / infinity is dropped (weight 0) and counted in
 *  stats.nonfinite; the node's own x_self is checked too and, if it is not
 *  finite, x_prev takes its place for this round (counted in
 *  stats.degenerate); for the rules built on cross-updates (similarity*,
 *  bygars) a non-finite x_prev is replaced by x_self (so Delta_ii = 0 and the
 *  round keeps x_self; also counted).  Both non-finite: BN_EARG.  The similarity rules fuse the finiteness check into
 *  their first pass (one read less) and flag bad vectors themselves.
 *  bn_rule_aggregate allocates nothing: every buffer comes from bn_rule_new.
 */
#include "aggregate.h"
#include "rules/rules.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char    *name;          /* command-line spelling                  */
    bn_rule_kind_t kind;          /* enum value, equal to the row's index   */
    bn_rule_fn     fn;            /* the rule                               */
    bool           checks_finite; /* the rule flags non-finite vectors      */
    bool           bucketable;    /* --bucketing may precede it             */
    bool           uses_prev;     /* reads x_prev (cross-updates)           */
} s_rule_row_t;

static const s_rule_row_t s_rules[BN_RULE_COUNT] = {
    { "standalone",     BN_RULE_STANDALONE,     bn_rules_standalone,     false, false, false },
    { "mean",           BN_RULE_MEAN,           bn_rules_mean,           false, false, false },
    { "similarity",     BN_RULE_SIMILARITY,     bn_rules_similarity,     true,  false, true },
    { "similarity-kl",  BN_RULE_SIMILARITY_KL,  bn_rules_similarity,     true,  false, true },
    { "similarity-cos", BN_RULE_SIMILARITY_COS, bn_rules_similarity,     true,  false, true },
    { "trimmed-mean",   BN_RULE_TRIMMED_MEAN,   bn_rules_trimmed_mean,   false, true , false },
    { "median",         BN_RULE_MEDIAN,         bn_rules_median,         false, true , false },
    { "krum",           BN_RULE_KRUM,           bn_rules_krum,           false, true , false },
    { "multi-krum",     BN_RULE_MULTI_KRUM,     bn_rules_krum,           false, true , false },
    { "tv-norm",        BN_RULE_TV_NORM,        bn_rules_tv_norm,        false, false, false },
    { "mozi",           BN_RULE_MOZI,           bn_rules_mozi,           false, false, false },
    { "clipped-gossip", BN_RULE_CLIPPED_GOSSIP, bn_rules_clipped_gossip, false, false, false },
    { "brsgd",          BN_RULE_BRSGD,          bn_rules_brsgd,          false, false, false },
    { "bygars",         BN_RULE_BYGARS,         bn_rules_bygars,         false, false, true },
};

void bn_rule_opts_default(bn_rule_opts_t *opts, bn_rule_kind_t kind)
{
    memset(opts, 0, sizeof *opts);
    opts->kind = kind;
    opts->c = 5.0f;
    opts->b = 1;
    opts->m = 0;
    opts->lambda = 0.001f;
    opts->lr = 0.1f;
    opts->clip_tau = 1.0f;
    opts->beta = 0.5f;
    opts->bygars_lr = 1.0f;
    opts->mozi_keep = 0;
    opts->bucketing = 0;
    opts->seed = 0;
}

int bn_rule_parse(const char *name, bn_rule_kind_t *kind)
{
    if (!name || !kind)
        return BN_EARG;
    for (size_t i = 0; i < BN_ARRAY_LEN(s_rules); i++)
        if (strcmp(name, s_rules[i].name) == 0) {
            *kind = s_rules[i].kind;
            return BN_OK;
        }
    return BN_EARG;
}

const char *bn_rule_name(bn_rule_kind_t kind)
{
    if ((unsigned) kind >= BN_RULE_COUNT)
        return "unknown";
    return s_rules[kind].name;
}

static bool s_opts_valid(const bn_rule_opts_t *o)
{
    if ((unsigned) o->kind >= BN_RULE_COUNT)
        return false;
    if (!(isfinite(o->c) && o->c > 0.0f))
        return false;
    if (!(isfinite(o->lambda) && o->lambda >= 0.0f) || !(isfinite(o->lr) && o->lr >= 0.0f))
        return false;
    if (!(isfinite(o->clip_tau) && o->clip_tau > 0.0f))
        return false;
    if (!(o->beta > 0.0f && o->beta <= 1.0f))
        return false;
    if (!(o->bygars_lr > 0.0f && o->bygars_lr <= 1.0f))
        return false;
    if (o->bucketing > 1 && !s_rules[o->kind].bucketable)
        return false;
    return true;
}

bn_rule_t *bn_rule_new(const bn_rule_opts_t *opts, size_t dim, uint32_t max_k)
{
    if (!opts || dim == 0 || max_k >= UINT32_MAX / 2 || !s_opts_valid(opts))
        return NULL;
    bn_rule_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->opts = *opts;
    self->dim = dim;
    self->max_k = max_k;
    self->cap = max_k + 1;
    uint32_t cap = self->cap;
    bn_rule_kind_t kind = opts->kind;

    self->v = calloc(cap, sizeof *self->v);
    self->orig = calloc(cap, sizeof *self->orig);
    self->w = calloc(cap, sizeof *self->w);
    self->bad = calloc(cap, sizeof *self->bad);
    self->s0 = calloc(cap, sizeof(double));
    self->s1 = calloc(cap, sizeof(double));
    self->s2 = calloc(cap, sizeof(double));
    self->score = calloc(cap, sizeof *self->score);
    self->idx = calloc(cap, sizeof *self->idx);
    self->col = bn_alloc_floats(cap);
    self->tblock = bn_alloc_floats((size_t) BN_RULE_BLOCK * cap);
    self->tailv = calloc(cap, sizeof *self->tailv);
    if (!self->v || !self->orig || !self->w || !self->bad || !self->s0 || !self->s1
        || !self->s2 || !self->score || !self->idx || !self->col || !self->tblock || !self->tailv)
        goto fail;

    if (kind == BN_RULE_TRIMMED_MEAN || kind == BN_RULE_MEDIAN || kind == BN_RULE_BRSGD) {
        size_t b = kind == BN_RULE_TRIMMED_MEAN ? opts->b : cap / 2 + 1;
        b = BN_MIN(b, (size_t) cap / 2 + 1);
        b = BN_MAX(b, (size_t) 1);
        self->hi = bn_alloc_floats(b * BN_RULE_BLOCK);
        self->lo = bn_alloc_floats(b * BN_RULE_BLOCK);
        if (!self->hi || !self->lo)
            goto fail;
    }
    if (kind == BN_RULE_BYGARS || kind == BN_RULE_BRSGD) {
        self->dvec = bn_alloc_floats(dim);
        if (!self->dvec)
            goto fail;
    }
    if (kind == BN_RULE_KRUM || kind == BN_RULE_MULTI_KRUM) {
        self->dist = calloc((size_t) cap * cap, sizeof(double));
        if (!self->dist)
            goto fail;
    }
    if (kind == BN_RULE_BYGARS) {
        uint32_t rc = 256;
        while (rc < 8 * cap && rc < (1u << 24))
            rc <<= 1;
        self->rep_cap = rc;
        self->rep = calloc(rc, sizeof *self->rep);
        if (!self->rep)
            goto fail;
    }
    if (opts->bucketing > 1) {
        uint32_t s = opts->bucketing;
        self->nb_max = (cap + s - 1) / s;
        self->bucket = bn_alloc_floats((size_t) self->nb_max * dim);
        self->bv = calloc(self->nb_max, sizeof *self->bv);
        self->bw = calloc(self->nb_max, sizeof *self->bw);
        self->perm = calloc(cap, sizeof *self->perm);
        self->bucket_of = calloc(cap, sizeof *self->bucket_of);
        if (!self->bucket || !self->bv || !self->bw || !self->perm || !self->bucket_of)
            goto fail;
        bn_rng_seed(&self->rng, opts->seed, BN_STREAM_BUCKETING);
    }
    return self;
fail:
    bn_rule_destroy(&self);
    return NULL;
}

void bn_rule_destroy(bn_rule_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bn_rule_t *self = *self_p;
    free(self->v);
    free(self->orig);
    free(self->w);
    free(self->bad);
    free(self->s0);
    free(self->s1);
    free(self->s2);
    free(self->score);
    free(self->idx);
    bn_free(self->col);
    bn_free(self->tblock);
    free(self->tailv);
    bn_free(self->hi);
    bn_free(self->lo);
    bn_free(self->dvec);
    free(self->dist);
    bn_free(self->bucket);
    free(self->bv);
    free(self->bw);
    free(self->perm);
    free(self->bucket_of);
    free(self->rep);
    free(self);
    *self_p = NULL;
}

int bn_rule_aggregate(bn_rule_t *self, const bn_agg_input_t *in, float *x_out, float *weights)
{
    if (!self || !in || !x_out || !in->x_self || !in->x_prev)
        return BN_EARG;
    if (in->k > self->max_k || in->dim != self->dim || (in->k > 0 && !in->x_nb))
        return BN_EARG;
    const s_rule_row_t *row = &s_rules[self->opts.kind];
    size_t dim = self->dim;
    uint32_t k = in->k;
    self->stats.rounds++;

    /* the node's own vector: a diverged local step is replaced by x_prev */
    const float *x_self = in->x_self, *x_prev = in->x_prev;
    if (!bn_select_finite(x_self, dim)) {
        if (!bn_select_finite(x_prev, dim))
            return BN_EARG;
        x_self = x_prev;
        self->stats.degenerate++;
    } else if (row->uses_prev && !bn_select_finite(x_prev, dim)) {
        /* cross-updates need a finite x_i^t; without one the round keeps x_self */
        x_prev = x_self;
        self->stats.degenerate++;
    }

    uint32_t n = 0;
    for (uint32_t j = 0; j < k; j++) {
        const float *x = in->x_nb[j];
        if (!x || (!row->checks_finite && !bn_select_finite(x, dim))) {
            self->stats.nonfinite++;
            continue;
        }
        self->v[n] = x;
        self->orig[n] = j;
        n++;
    }
    self->v[n] = x_self;
    self->orig[n] = k;
    n++;
    memset(self->bad, 0, n);

    bn_set_t set = {
        .dim = dim, .n = n, .v = self->v, .x_prev = x_prev, .x_self = x_self,
        .in = in, .orig = self->orig,
    };
    int rc;
    if (self->opts.bucketing > 1 && row->bucketable)
        rc = bn_rules_bucketing(self, &set, row->fn, x_out, self->w);
    else
        rc = row->fn(self, &set, x_out, self->w);
    if (rc != BN_OK)
        return rc;

    if (row->checks_finite)
        for (uint32_t i = 0; i < n; i++)
            if (self->bad[i]) {
                self->stats.nonfinite++;
                self->w[i] = 0.0f;
            }
    if (weights) {
        memset(weights, 0, (size_t) (k + 1) * sizeof *weights);
        for (uint32_t i = 0; i < n; i++)
            weights[self->orig[i]] = self->w[i];
    }
    return BN_OK;
}

const bn_rule_stats_t *bn_rule_stats(const bn_rule_t *self)
{
    return self ? &self->stats : NULL;
}
