/*  rules.h -- internal interface between aggregate.c (registry, pre-filter,
 *  telemetry) and the rule files in src/rules/.  Not installed; only
 *  aggregate.c, the rule files and the aggregation test include it.
 *
 *  Invariants:
 *    - every buffer a rule touches is allocated once in bn_rule_new(), sized
 *      for `dim` floats and up to max_k + 1 vectors (neighbours plus self);
 *    - a rule sees a bn_set_t of n >= 1 vectors whose LAST entry is the
 *      node's own x_self; all entries are finite unless the rule is marked
 *      `checks_finite` (then it gets every vector and must itself flag the
 *      non-finite ones in self->bad[] and give them weight 0);
 *    - a rule writes x_out (dim floats) and w[0..n-1] (its weights in set
 *      order) and returns BN_OK or a negative BN_E* code.
 */
#ifndef BN_RULES_H
#define BN_RULES_H

#include "../aggregate.h"
#include "../rng.h"

/* Coordinates processed together by the blocked / transposed kernels.  A
 * block of all n vectors (n <= ~200) then stays in L1/L2. */
#define BN_RULE_BLOCK 256
/* Smoothing of the sign histograms before the KL divergence (similarity). */
#define BN_SIM_EPS 1e-6
/* RNG stream used by bucketing's permutations (added to rng.h's set). */
#define BN_STREAM_BUCKETING 0x6275636bu

/* The vectors a rule aggregates.  v[n-1] is the node's own x_self. */
typedef struct {
    size_t   dim;
    uint32_t n;                   /* vectors in v[], self included, >= 1          */
    const float *const *v;        /* n borrowed vectors of dim floats             */
    const float *x_prev;          /* x_i^t (borrowed)                             */
    const float *x_self;          /* x_i^{t+1}, == v[n-1] (borrowed)              */
    const bn_agg_input_t *in;     /* the caller's input, for ids and the oracle   */
    const uint32_t *orig;         /* orig[i]: index of v[i] in in->x_nb, k = self */
} bn_set_t;

/* Per-neighbour reputation (bygars), open addressing on the node id. */
typedef struct {
    uint32_t id;                  /* node id                                      */
    uint8_t  used;                /* slot occupied                                */
    double   rep;                 /* reputation q_j                               */
} bn_rep_slot_t;

struct bn_rule_t {
    bn_rule_opts_t opts;          /* validated options                            */
    size_t   dim;                 /* vector length                                */
    uint32_t max_k;               /* neighbours at most                           */
    uint32_t cap;                 /* max_k + 1: vectors at most                   */
    bn_rule_stats_t stats;        /* counters returned by bn_rule_stats           */

    /* the filtered set handed to the rule */
    const float **v;              /* cap pointers                                 */
    uint32_t *orig;               /* cap: original index of v[i]                  */
    float    *w;                  /* cap: weights in set order                    */
    uint8_t  *bad;                /* cap: 1 if the vector was non-finite          */

    /* generic per-vector scratch */
    double   *s0, *s1, *s2;       /* cap doubles each                             */
    int64_t  *score;              /* cap: brsgd majority scores                   */
    uint32_t *idx;                /* cap indices                                  */
    float    *col;                /* cap floats: one transposed coordinate        */
    float    *tblock;             /* BN_RULE_BLOCK * cap floats, transposed block */
    float    *hi, *lo;            /* trimmed-mean / median: b * BN_RULE_BLOCK each */
    const float **tailv;          /* cap pointers: padded tail rows (trimmed)     */
    float    *dvec;               /* dim floats: gradient (bygars), median (brsgd)*/
    double   *dist;               /* cap * cap: krum pairwise squared distances   */

    /* bucketing */
    float    *bucket;             /* nb_max * dim floats: bucket means            */
    const float **bv;             /* nb_max pointers into bucket                  */
    uint32_t *perm;               /* cap: permutation of the set                  */
    uint32_t *bucket_of;          /* cap: bucket of each set member               */
    float    *bw;                 /* nb_max: weights of the buckets               */
    uint32_t nb_max;              /* buckets at most                              */
    bn_rng_t rng;                 /* bucketing's permutation stream               */

    /* bygars reputations */
    bn_rep_slot_t *rep;           /* rep_cap slots                                */
    uint32_t rep_cap;             /* power of two                                 */
    uint32_t rep_used;            /* occupied slots                               */
    double   rep_self;            /* the node's own reputation                    */
};

typedef int (*bn_rule_fn)(bn_rule_t *self, const bn_set_t *set, float *x_out, float *w);

/* ---- the rules (one file each) ------------------------------------------ */
int bn_rules_mean(bn_rule_t *self, const bn_set_t *set, float *x_out, float *w);
int bn_rules_standalone(bn_rule_t *self, const bn_set_t *set, float *x_out, float *w);
/* similarity, similarity-kl, similarity-cos (self->opts.kind selects); checks_finite */
int bn_rules_similarity(bn_rule_t *self, const bn_set_t *set, float *x_out, float *w);
int bn_rules_trimmed_mean(bn_rule_t *self, const bn_set_t *set, float *x_out, float *w);
/* The trimmed-mean kernel with an explicit b, 2b < n (median uses it). */
int bn_rules_trimmed_core(bn_rule_t *self, const bn_set_t *set, uint32_t b, float *x_out, float *w);
int bn_rules_median(bn_rule_t *self, const bn_set_t *set, float *x_out, float *w);
int bn_rules_krum(bn_rule_t *self, const bn_set_t *set, float *x_out, float *w);
int bn_rules_tv_norm(bn_rule_t *self, const bn_set_t *set, float *x_out, float *w);
int bn_rules_mozi(bn_rule_t *self, const bn_set_t *set, float *x_out, float *w);
int bn_rules_clipped_gossip(bn_rule_t *self, const bn_set_t *set, float *x_out, float *w);
int bn_rules_brsgd(bn_rule_t *self, const bn_set_t *set, float *x_out, float *w);
int bn_rules_bygars(bn_rule_t *self, const bn_set_t *set, float *x_out, float *w);
/* Bucketing wrapper: averages a seeded permutation of the set in buckets of
 * opts.bucketing and applies `inner` to the bucket means; w gets each
 * member's share (its bucket's weight / bucket size). */
int bn_rules_bucketing(bn_rule_t *self, const bn_set_t *set, bn_rule_fn inner,
                       float *x_out, float *w);

/* ---- similarity pieces, exposed for the tests ----------------------------- */
/* KL(p || q) over the three sign bins {+, 0, -}, both smoothed as
 * (p + eps) / (1 + 3 eps) with eps = BN_SIM_EPS; p and q are fractions. */
double bn_rules_sign_kl(const double p[3], const double q[3]);
/* The node's bygars reputation for `id`, or 0 if never seen. */
double bn_rules_reputation(const bn_rule_t *self, uint32_t id);

/* ---- selection helpers (select.c) ------------------------------------------ */
/* Returns the k-th smallest (0-based) of a[0..n), partially reordering a so that
 * a[0..k) <= a[k] <= a[k+1..n).  O(n) expected; a must be finite; k < n. */
float bn_select_kth(float *a, uint32_t n, uint32_t k);
/* Coordinate-wise median of a[0..n) (mean of the two middle values for even n);
 * reorders a. */
float bn_select_median(float *a, uint32_t n);
/* Writes into idx[0..m) the indices of the m smallest key[] values (ties by
 * lower index), in increasing key order.  O(n m); n, m <= cap. */
void  bn_select_smallest(const double *key, uint32_t n, uint32_t m, uint32_t *idx);
/* Copies coordinates [c0, c0 + len) of the n vectors into t[c * n + j]. */
void  bn_select_transpose(const float *const *v, uint32_t n, size_t c0, size_t len, float *t);
/* dot = <x - base, ref> (0 if ref is NULL) and nrm = ||x - base||^2 in double,
 * from float partials per chunk (a chunk whose partials overflow is redone in
 * double).  Inputs finite; one vectorised pass. */
void  bn_select_diff_stats(const float *x, const float *base, const float *ref, size_t dim,
                           double *dot, double *nrm);
/* y[0..n) += a * x[0..n)  and  y[0..n) = a * x[0..n) (out of line: see select.c). */
void  bn_select_axpy(float *restrict y, float a, const float *restrict x, size_t n);
void  bn_select_scale(float *restrict y, float a, const float *restrict x, size_t n);
/* 1 if all dim floats are finite, else 0 (one vectorised pass). */
int   bn_select_finite(const float *x, size_t dim);

#endif
