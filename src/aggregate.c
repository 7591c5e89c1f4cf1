/*  aggregate.c -- the rule registry (rules/registry.def), the parameter
 *  store, buffer set-up, the common pre-filter and the telemetry.
 *
 *  The pre-filter runs before every rule: a neighbour vector that is NULL or
 *  contains NaN / infinity is dropped (weight 0) and counted in
 *  stats.nonfinite; the node's own x_self is checked too and, if it is not
 *  finite, x_prev takes its place for this round (counted in
 *  stats.degenerate); for the rules built on cross-updates
 *  (BN_RULE_F_USES_PREV) a non-finite x_prev is replaced by x_self (so
 *  Delta_ii = 0 and the round keeps x_self; also counted).  Both non-finite:
 *  BN_EARG.  Rules with BN_RULE_F_CHECKS_FINITE fuse the finiteness check
 *  into their first pass (one read less) and flag bad vectors themselves.
 *  bn_rule_aggregate allocates nothing: every buffer comes from bn_rule_new.
 *  Streaming: bn_rule_begin checks x_self and x_prev, bn_rule_observe each
 *  neighbour vector, while the node waits; bn_rule_aggregate reuses those
 *  checks for the same slots (in->slot) or pointers (for every rule), then
 *  the rule's own begin / observe work (similarity).  A NULL x_nb[j] with an
 *  observed slot is a released vector: kept in the set (v[i] = NULL) for a
 *  BN_RULE_F_STREAMS rule, dropped as before otherwise.
 *
 *  Parameters: each rule's table lists the rows it reads; a row read by
 *  several rules (trim, bucketing) is defined once here, or repeated in
 *  each rule file with the same name, type, default and range (c: the
 *  similarity rules; tested), which then are one parameter.  Rows are found
 *  by name over all rules, the first in registry order.
 */
#include "aggregate.h"
#include "rules/rules.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const bn_rule_param_t *const s_common[] = { &bn_rule_param_bucketing, NULL };

static const bn_rule_ops_t *const s_registry[] = {
#define BN_RULE(ops) &ops,
#include "rules/registry.def"
#undef BN_RULE
};
#define S_NRULES ((uint32_t) BN_ARRAY_LEN(s_registry))

struct bn_rule_t {
    const bn_rule_ops_t *ops;     /* the rule's table row                         */
    bn_rule_opts_t opts;          /* validated options                            */
    size_t   dim;                 /* vector length                                */
    uint32_t max_k;               /* neighbours at most                           */
    uint32_t cap;                 /* max_k + 1: vectors at most                   */
    bn_rule_stats_t stats;        /* counters returned by bn_rule_stats           */
    void    *state;               /* ops->state_size bytes, the rule's own        */
    bn_bucketing_t *bucketing;    /* NULL unless bucketing > 1                    */

    /* the filtered set handed to the rule */
    const float **v;              /* cap pointers                                 */
    uint32_t *orig;               /* cap: original index of v[i]                  */
    float    *w;                  /* cap: weights in set order                    */
    uint8_t  *bad;                /* cap: 1 if the vector was non-finite          */

    /* streaming (bn_rule_begin / bn_rule_observe): the pre-filter's finite
     * checks done while the node waits, reused for the same pointers */
    bool     open;                /* begin called, aggregate not yet              */
    const float *b_prev, *b_self; /* the round's vectors (borrowed)               */
    bool     b_prev_fin, b_self_fin;
    const float **o_ptr;          /* cap: the vector observed in each slot        */
    uint8_t  *o_fin;              /* cap: 1 if it is finite                       */
    uint8_t  *o_seen;             /* cap: 1 if the slot was observed this round   */
    uint32_t *slot;               /* cap: the set's observe slots (bn_set_t.slot) */
};

/* ---- registry ------------------------------------------------------------ */

uint32_t bn_rule_count(void)
{
    return S_NRULES;
}

int bn_rule_parse(const char *name, bn_rule_kind_t *kind)
{
    if (!name || !kind)
        return BN_EARG;
    for (uint32_t i = 0; i < S_NRULES; i++)
        if (strcmp(name, s_registry[i]->name) == 0) {
            *kind = i;
            return BN_OK;
        }
    return BN_EARG;
}

const char *bn_rule_name(bn_rule_kind_t kind)
{
    if (kind >= S_NRULES)
        return "unknown";
    return s_registry[kind]->name;
}

bool bn_rule_holds_out(bn_rule_kind_t kind)
{
    return kind < S_NRULES && (s_registry[kind]->flags & BN_RULE_F_HELDOUT);
}

/* ---- parameters ------------------------------------------------------------ */

/* Calls fn on every distinct row: rules in registry order, their rows in
 * table order, then the common rows; stops when fn returns nonzero. */
static const bn_rule_param_t *s_param_walk(int (*fn)(const bn_rule_param_t *, void *), void *arg)
{
    for (uint32_t r = 0; r <= S_NRULES; r++) {
        const bn_rule_param_t *const *ps = r < S_NRULES ? s_registry[r]->params : s_common;
        for (size_t i = 0; ps && ps[i]; i++) {
            const bn_rule_param_t *p = ps[i];
            /* skip a name met before (shared rows are listed by several rules) */
            bool seen = false;
            for (uint32_t q = 0; q < r && !seen; q++)
                for (size_t t = 0; s_registry[q]->params && s_registry[q]->params[t]; t++)
                    if (strcmp(s_registry[q]->params[t]->name, p->name) == 0) {
                        seen = true;
                        break;
                    }
            for (size_t t = 0; t < i && !seen; t++)
                seen = strcmp(ps[t]->name, p->name) == 0;
            if (!seen && fn(p, arg))
                return p;
        }
    }
    return NULL;
}

static int s_match_name(const bn_rule_param_t *p, void *arg)
{
    return strcmp(p->name, (const char *) arg) == 0;
}

typedef struct { size_t want, at; } s_nth_t;
static int s_match_nth(const bn_rule_param_t *p, void *arg)
{
    (void) p;
    s_nth_t *n = arg;
    return n->at++ == n->want;
}

const bn_rule_param_t *bn_rule_param_find(const char *name)
{
    return name ? s_param_walk(s_match_name, (void *) name) : NULL;
}

const bn_rule_param_t *bn_rule_param_at(size_t i)
{
    s_nth_t n = { i, 0 };
    return s_param_walk(s_match_nth, &n);
}

static bool s_reads(const bn_rule_ops_t *ops, const bn_rule_param_t *p)
{
    for (size_t i = 0; ops->params && ops->params[i]; i++)
        if (strcmp(ops->params[i]->name, p->name) == 0)
            return true;
    return p == &bn_rule_param_bucketing && (ops->flags & BN_RULE_F_BUCKETABLE);
}

void bn_rule_opts_default(bn_rule_opts_t *opts, bn_rule_kind_t kind)
{
    memset(opts, 0, sizeof *opts);
    opts->kind = kind;
    opts->lr = 0.1f;
    opts->seed = 0;
}

static int s_value_ok(const bn_rule_param_t *p, double v)
{
    if (!isfinite(v) || v < p->min || v > p->max)
        return 0;
    if (p->type == BN_RULE_PARAM_U32 && v != floor(v))
        return 0;
    return 1;
}

static int s_store(bn_rule_opts_t *opts, const bn_rule_param_t *p, double v)
{
    /* what the rule will read: u32 exactly, f32 rounded to float */
    v = p->type == BN_RULE_PARAM_F32 ? (double) (float) v : v;
    for (uint32_t i = 0; i < opts->n_set; i++)
        if (opts->set[i].param == p) {
            opts->set[i].value = v;
            return BN_OK;
        }
    if (opts->n_set >= BN_RULE_OPTS_MAX)
        return BN_EARG;
    opts->set[opts->n_set].param = p;
    opts->set[opts->n_set].value = v;
    opts->n_set++;
    return BN_OK;
}

int bn_rule_opts_set(bn_rule_opts_t *opts, const char *name, const char *value,
                     char *err, size_t errlen)
{
    const bn_rule_param_t *p = bn_rule_param_find(name);
    if (!opts || !p)
        return bn_fail(err, errlen, BN_EARG, "unknown rule parameter --%s", name ? name : "");
    if (!value || !*value)
        return bn_fail(err, errlen, BN_EARG, "--%s needs a value", name);
    char *end = NULL;
    double v = strtod(value, &end);
    if (end == value || *end || !isfinite(v))
        return bn_fail(err, errlen, BN_EARG, "--%s: '%s' is not a number", name, value);
    if (!s_value_ok(p, v))
        return bn_fail(err, errlen, BN_EARG, "--%s: %s is outside the accepted range [%g, %g]%s",
                       name, value, p->min, p->max,
                       p->type == BN_RULE_PARAM_U32 ? " (an integer)" : "");
    if (s_store(opts, p, v) != BN_OK)
        return bn_fail(err, errlen, BN_EARG, "--%s: too many rule parameters", name);
    return BN_OK;
}

int bn_rule_opts_put(bn_rule_opts_t *opts, const char *name, double value)
{
    const bn_rule_param_t *p = bn_rule_param_find(name);
    if (!opts || !p || !s_value_ok(p, value))
        return BN_EARG;
    return s_store(opts, p, value);
}

static double s_get(const bn_rule_opts_t *opts, const bn_rule_param_t *p)
{
    return bn_rule_opts_value(opts, p);
}

double bn_rule_opts_get(const bn_rule_opts_t *opts, const char *name)
{
    const bn_rule_param_t *p = bn_rule_param_find(name);
    return opts && p ? s_get(opts, p) : NAN;
}

bool bn_rule_opts_isset(const bn_rule_opts_t *opts, const char *name)
{
    for (uint32_t i = 0; opts && name && i < opts->n_set; i++)
        if (strcmp(opts->set[i].param->name, name) == 0)
            return true;
    return false;
}

int bn_rule_opts_check(const bn_rule_opts_t *o, char *err, size_t errlen)
{
    if (!o || o->kind >= S_NRULES)
        return bn_fail(err, errlen, BN_EARG, "unknown rule");
    if (!(isfinite(o->lr) && o->lr >= 0.0f))
        return bn_fail(err, errlen, BN_EARG, "rule learning rate %g: must be >= 0", (double) o->lr);
    if (o->n_set > BN_RULE_OPTS_MAX)
        return bn_fail(err, errlen, BN_EARG, "too many rule parameters");
    for (uint32_t i = 0; i < o->n_set; i++)
        if (!o->set[i].param || !s_value_ok(o->set[i].param, o->set[i].value))
            return bn_fail(err, errlen, BN_EARG, "rule parameter out of range");
    const bn_rule_ops_t *ops = s_registry[o->kind];
    uint32_t s = (uint32_t) s_get(o, &bn_rule_param_bucketing);
    if (s > 1 && !(ops->flags & BN_RULE_F_BUCKETABLE)) {
        char names[256] = "";
        size_t at = 0;
        for (uint32_t r = 0; r < S_NRULES; r++)
            if (s_registry[r]->flags & BN_RULE_F_BUCKETABLE && at < sizeof names)
                at += (size_t) snprintf(names + at, sizeof names - at, "%s%s",
                                        at ? ", " : "", s_registry[r]->name);
        return bn_fail(err, errlen, BN_EARG, "--bucketing %u: only %s take bucketing, not %s",
                       s, names, ops->name);
    }
    return BN_OK;
}

int bn_rule_opts_canon(const bn_rule_opts_t *o, char *buf, size_t len)
{
    if (!o || o->kind >= S_NRULES)
        return snprintf(buf, len, "rule=unknown");
    const bn_rule_ops_t *ops = s_registry[o->kind];
    int at = snprintf(buf, len, "rule=%s", ops->name);
    const bn_rule_param_t *const *lists[2] = { ops->params, s_common };
    for (int l = 0; l < 2; l++)
        for (size_t i = 0; lists[l] && lists[l][i]; i++) {
            const bn_rule_param_t *p = lists[l][i];
            if (l == 1 && !s_reads(ops, p))
                continue;
            size_t off = (size_t) at < len ? (size_t) at : len;
            at += snprintf(buf + off, len - off, " %s=%.9g", p->name, s_get(o, p));
        }
    return at;
}

static void s_flags_text(uint32_t f, char *buf, size_t len)
{
    snprintf(buf, len, "%s%s%s%s%s",
             f & BN_RULE_F_USES_PREV ? " cross-updates" : "",
             f & BN_RULE_F_ORACLE ? " local-data" : "",
             f & BN_RULE_F_HELDOUT ? " held-out" : "",
             f & BN_RULE_F_BUCKETABLE ? " bucketing" : "",
             f & BN_RULE_F_NO_GOSSIP ? " no-gossip" : "");
}

static void s_param_line(FILE *f, const bn_rule_param_t *p, const char *indent)
{
    fprintf(f, "%s--%-14s %-8.6g [%g..%g]%s  %s\n", indent, p->name, p->def, p->min, p->max,
            p->type == BN_RULE_PARAM_U32 ? " int" : "", p->help);
}

void bn_rule_list(void *file)
{
    FILE *f = file;
    fprintf(f, "rules (--rule NAME), their parameters (--NAME VALUE: default [range]):\n");
    for (uint32_t r = 0; r < S_NRULES; r++) {
        const bn_rule_ops_t *ops = s_registry[r];
        char fl[96];
        s_flags_text(ops->flags, fl, sizeof fl);
        fprintf(f, "  %-16s %s%s%s%s\n", ops->name, ops->summary, *fl ? " [" : "", *fl ? fl + 1 : "",
                *fl ? "]" : "");
        for (size_t i = 0; ops->params && ops->params[i]; i++)
            s_param_line(f, ops->params[i], "      ");
        if (ops->flags & BN_RULE_F_BUCKETABLE)
            s_param_line(f, &bn_rule_param_bucketing, "      ");
    }
}

static int s_print_row(const bn_rule_param_t *p, void *arg)
{
    FILE *f = arg;
    char users[256] = "";
    size_t at = 0;
    for (uint32_t r = 0; r < S_NRULES; r++)
        if (s_reads(s_registry[r], p) && at < sizeof users)
            at += (size_t) snprintf(users + at, sizeof users - at, "%s%s", at ? "," : "",
                                    s_registry[r]->name);
    fprintf(f, "  --%-18s %s: %s [%g..%g] (default %g)\n", p->name, users, p->help, p->min, p->max,
            p->def);
    return 0;
}

void bn_rule_print_params(void *file)
{
    s_param_walk(s_print_row, file);
}

/* ---- rule objects ------------------------------------------------------------ */

bn_rule_t *bn_rule_new(const bn_rule_opts_t *opts, size_t dim, uint32_t max_k)
{
    if (!opts || dim == 0 || max_k >= UINT32_MAX / 2 || bn_rule_opts_check(opts, NULL, 0) != BN_OK)
        return NULL;
    bn_rule_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->ops = s_registry[opts->kind];
    self->opts = *opts;
    self->dim = dim;
    self->max_k = max_k;
    self->cap = max_k + 1;
    uint32_t cap = self->cap;

    self->v = calloc(cap, sizeof *self->v);
    self->orig = calloc(cap, sizeof *self->orig);
    self->w = calloc(cap, sizeof *self->w);
    self->bad = calloc(cap, sizeof *self->bad);
    self->o_ptr = calloc(cap, sizeof *self->o_ptr);
    self->o_fin = calloc(cap, sizeof *self->o_fin);
    self->o_seen = calloc(cap, sizeof *self->o_seen);
    self->slot = calloc(cap, sizeof *self->slot);
    if (!self->v || !self->orig || !self->w || !self->bad || !self->o_ptr || !self->o_fin
        || !self->o_seen || !self->slot)
        goto fail;
    if (self->ops->state_size) {
        self->state = calloc(1, self->ops->state_size);
        if (!self->state)
            goto fail;
    }
    bn_rule_env_t env = { .ops = self->ops, .opts = &self->opts, .dim = dim, .cap = cap };
    if (self->ops->init && self->ops->init(self->state, &env) != BN_OK)
        goto fail;
    uint32_t s = (uint32_t) s_get(opts, &bn_rule_param_bucketing);
    if (s > 1) {
        self->bucketing = calloc(1, sizeof *self->bucketing);
        if (!self->bucketing || bn_bucketing_init(self->bucketing, s, opts->seed, dim, cap) != BN_OK)
            goto fail;
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
    if (self->ops && self->ops->free && self->state)
        self->ops->free(self->state);
    free(self->state);
    if (self->bucketing)
        bn_bucketing_free(self->bucketing);
    free(self->bucketing);
    free(self->v);
    free(self->orig);
    free(self->w);
    free(self->bad);
    free(self->o_ptr);
    free(self->o_fin);
    free(self->o_seen);
    free(self->slot);
    free(self);
    *self_p = NULL;
}

/* The pre-filter's check of x = in->x_nb[j]: the one made when x was
 * observed in `slot` (or, without slots, found by its pointer: slots are at
 * least the x_nb index, in x_nb order), else now.  x is NULL only when
 * observed and released. */
static bool s_finite_seen(const bn_rule_t *self, bool use, uint32_t j, uint32_t slot,
                          const float *x)
{
    if (slot != UINT32_MAX && (!x || self->o_ptr[slot] == x))
        return self->o_fin[slot];
    for (uint32_t s = j; use && slot == UINT32_MAX && s < self->max_k; s++)
        if (self->o_ptr[s] == x)
            return self->o_fin[s];
    return bn_select_finite(x, self->dim);
}

/* The observe slot the caller names for in->x_nb[j], if that slot was
 * observed in this round (use), else UINT32_MAX. */
static uint32_t s_slot_of(const bn_rule_t *self, bool use, const bn_agg_input_t *in, uint32_t j)
{
    if (!use || !in->slot || in->slot[j] >= self->max_k || !self->o_seen[in->slot[j]])
        return UINT32_MAX;
    return in->slot[j];
}

bool bn_rule_streams(const bn_rule_t *self)
{
    return self && (self->ops->flags & BN_RULE_F_STREAMS) && !self->bucketing;
}

int bn_rule_aggregate(bn_rule_t *self, const bn_agg_input_t *in, float *x_out, float *weights)
{
    if (!self || !in || !x_out || !in->x_self || !in->x_prev)
        return BN_EARG;
    if (in->k > self->max_k || in->dim != self->dim || (in->k > 0 && !in->x_nb))
        return BN_EARG;
    uint32_t flags = self->ops->flags;
    bool checks_finite = flags & BN_RULE_F_CHECKS_FINITE;
    size_t dim = self->dim;
    uint32_t k = in->k;
    self->stats.rounds++;

    /* the node's own vector: a diverged local step is replaced by x_prev */
    const float *x_self = in->x_self, *x_prev = in->x_prev;
    bool use = self->open && self->b_self == x_self && self->b_prev == x_prev;
    self->open = false;
    bool self_fin = use ? self->b_self_fin : bn_select_finite(x_self, dim);
    if (!self_fin) {
        if (!(use ? self->b_prev_fin : bn_select_finite(x_prev, dim)))
            return BN_EARG;
        x_self = x_prev;
        self->stats.degenerate++;
    } else if ((flags & BN_RULE_F_USES_PREV)
               && !(use ? self->b_prev_fin : bn_select_finite(x_prev, dim))) {
        /* cross-updates need a finite x_i^t; without one the round keeps x_self */
        x_prev = x_self;
        self->stats.degenerate++;
    }

    uint32_t n = 0;
    bool streams = bn_rule_streams(self);
    for (uint32_t j = 0; j < k; j++) {
        const float *x = in->x_nb[j];
        uint32_t slot = s_slot_of(self, use, in, j);
        bool released = !x && slot != UINT32_MAX && streams;
        if ((!x && !released) || (!checks_finite && !s_finite_seen(self, use, j, slot, x))) {
            self->stats.nonfinite++;
            continue;
        }
        self->v[n] = x;
        self->orig[n] = j;
        self->slot[n] = slot;
        n++;
    }
    self->v[n] = x_self;
    self->orig[n] = k;
    self->slot[n] = UINT32_MAX;
    n++;
    memset(self->bad, 0, n);

    bn_set_t set = {
        .dim = dim, .n = n, .v = self->v, .x_prev = x_prev, .x_self = x_self,
        .in = in, .orig = self->orig, .slot = self->slot, .bad = self->bad,
        .stats = &self->stats,
    };
    int rc;
    if (self->bucketing && (flags & BN_RULE_F_BUCKETABLE))
        rc = bn_bucketing_apply(self->bucketing, self->ops, self->state, &set, x_out, self->w);
    else
        rc = self->ops->aggregate(self->state, &set, x_out, self->w);
    if (rc != BN_OK)
        return rc;

    if (checks_finite)
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

int bn_rule_begin(bn_rule_t *self, const float *x_prev, const float *x_self)
{
    if (!self || !x_prev || !x_self)
        return BN_EARG;
    self->b_prev = x_prev;
    self->b_self = x_self;
    self->b_self_fin = bn_select_finite(x_self, self->dim);
    self->b_prev_fin = bn_select_finite(x_prev, self->dim);
    memset(self->o_ptr, 0, self->max_k * sizeof *self->o_ptr);
    memset(self->o_seen, 0, self->max_k);
    self->open = true;
    if (self->ops->begin)
        self->ops->begin(self->state, x_prev, x_self, self->dim);
    return BN_OK;
}

int bn_rule_observe(bn_rule_t *self, uint32_t slot, const float *x)
{
    if (!self || !x || slot >= self->max_k)
        return BN_EARG;
    if (self->open) {
        if (!(self->ops->flags & BN_RULE_F_CHECKS_FINITE))
            self->o_fin[slot] = (uint8_t) bn_select_finite(x, self->dim);
        self->o_ptr[slot] = x;
        self->o_seen[slot] = 1;
    }
    if (self->ops->observe)
        self->ops->observe(self->state, slot, x, self->dim);
    return BN_OK;
}

void *bn_rule_state(const bn_rule_t *r)
{
    return r ? r->state : NULL;
}

const bn_rule_ops_t *bn_rule_ops_of(const bn_rule_t *r)
{
    return r ? r->ops : NULL;
}

double bn_rules_reputation(const bn_rule_t *r, uint32_t id)
{
    if (!r || !r->ops->reputation || !r->state)
        return 0.0;
    return r->ops->reputation(r->state, id);
}
