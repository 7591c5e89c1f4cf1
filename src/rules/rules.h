/*  rules.h -- the plug-in interface between aggregate.c (registry, parameter
 *  store, pre-filter, telemetry) and the rule files in src/rules/.  Not
 *  installed; only aggregate.c, the rule files and the aggregation test
 *  include it.
 *
 *  It includes only lower headers (types.h holds the types it shares with
 *  aggregate.h), never aggregate.h itself.
 *
 *  A rule is one file defining one `const bn_rule_ops_t bn_rule_ops_<name>`
 *  (and, if it keeps scratch or memory between rounds, a private state
 *  struct), registered by one line BN_RULE(bn_rule_ops_<name>) in
 *  registry.def and built by one line in src/meson.build.
 *
 *  Invariants:
 *    - aggregate.c callocs ops->state_size bytes per rule object and calls
 *      ops->init once, which allocates every buffer the rule needs for
 *      vectors of `dim` floats and up to `cap` = max_k + 1 vectors; after a
 *      failed init, ops->free is still called (on the zeroed or partly
 *      filled state) and must cope;
 *    - ops->aggregate allocates nothing and sees a bn_set_t of n >= 1
 *      vectors whose LAST entry is the node's own x_self; an entry is NULL
 *      only for a BN_RULE_F_STREAMS rule, when the vector was observed in
 *      set->slot[i] (of this round) and then released by the caller; all
 *      other entries are
 *      finite unless the rule has BN_RULE_F_CHECKS_FINITE (then it gets every
 *      vector and must itself set set->bad[i] = 1 for each non-finite one and
 *      give it weight 0);
 *    - ops->aggregate writes x_out (dim floats) and w[0..n-1] (its weights in
 *      set order) and returns BN_OK or a negative BN_E* code; it counts its
 *      fallback rounds in set->stats->degenerate.
 */
#ifndef BN_RULES_H
#define BN_RULES_H

#include "../rng.h"
#include "types.h"

/* Coordinates processed together by the blocked / transposed kernels.  A
 * block of all n vectors (n <= ~200) then stays in L1/L2. */
#define BN_RULE_BLOCK 256
/* Smoothing of the sign histograms before the KL divergence (similarity). */
#define BN_SIM_EPS 1e-6
/* RNG stream used by bucketing's permutations (added to rng.h's set). */
#define BN_STREAM_BUCKETING 0x6275636bu

/* Flags of a rule (bn_rule_ops_t.flags). */
enum {
    BN_RULE_F_CHECKS_FINITE = 1u << 0,  /* flags non-finite vectors itself     */
    BN_RULE_F_BUCKETABLE    = 1u << 1,  /* --bucketing may precede it          */
    BN_RULE_F_USES_PREV     = 1u << 2,  /* reads x_prev (cross-updates)        */
    BN_RULE_F_ORACLE        = 1u << 3,  /* needs in->oracle (loss or grad)     */
    BN_RULE_F_NO_GOSSIP     = 1u << 4,  /* ignores its neighbours (standalone) */
    BN_RULE_F_HELDOUT       = 1u << 5,  /* oracle on a held-out auxiliary set  */
    BN_RULE_F_STREAMS       = 1u << 6,  /* observe consumes the vector: the
                                         * caller may release it afterwards    */
};

/* The vectors a rule aggregates.  v[n-1] is the node's own x_self. */
typedef struct {
    size_t   dim;
    uint32_t n;                   /* vectors in v[], self included, >= 1          */
    const float *const *v;        /* n borrowed vectors of dim floats             */
    const float *x_prev;          /* x_i^t (borrowed)                             */
    const float *x_self;          /* x_i^{t+1}, == v[n-1] (borrowed)              */
    const bn_agg_input_t *in;     /* the caller's input, for ids and the oracle   */
    const uint32_t *orig;         /* orig[i]: index of v[i] in in->x_nb, k = self */
    const uint32_t *slot;         /* slot[i]: bn_rule_observe slot of v[i], or
                                   * UINT32_MAX (not observed, unknown, self)     */
    uint8_t  *bad;                /* n flags, zeroed: CHECKS_FINITE rules set 1   */
    bn_rule_stats_t *stats;       /* the rule object's counters                   */
} bn_set_t;

/* What init gets. */
typedef struct bn_rule_ops bn_rule_ops_t;
typedef struct {
    const bn_rule_ops_t  *ops;    /* the rule's own row (variant, params)         */
    const bn_rule_opts_t *opts;   /* validated options (bn_rule_param reads them)  */
    size_t   dim;                 /* vector length                                */
    uint32_t cap;                 /* vectors at most (neighbours + self)          */
} bn_rule_env_t;

struct bn_rule_ops {
    const char *name;                     /* command-line spelling              */
    const char *summary;                  /* one line for `byznode rules`       */
    const bn_rule_param_t *const *params; /* rows it reads, NULL-terminated     */
    uint32_t flags;                       /* BN_RULE_F_*                        */
    int      variant;                     /* for files serving several rules    */
    size_t   state_size;                  /* bytes of the rule's state (0: none) */
    int  (*init)(void *state, const bn_rule_env_t *env);          /* may be NULL */
    int  (*aggregate)(void *state, const bn_set_t *set, float *x_out, float *w);
    void (*free)(void *state);                                    /* may be NULL */
    /* The reputation the rule holds for node `id` (reputation rules; tests
     * and telemetry); may be NULL. */
    double (*reputation)(void *state, uint32_t id);
    /* Streaming (optional, both or neither): begin when the node's own
     * vectors of the round are known, observe for each neighbour vector as
     * it arrives (slot: see bn_rule_observe in aggregate.h).  aggregate must
     * give bit-identical results with or without them, reusing the work
     * only for vectors whose slot (set->slot) or else pointer, and the
     * round's x_prev / x_self, match, and counting them in
     * set->stats->streamed.  With BN_RULE_F_STREAMS, observe must keep all
     * it needs of the vector: the caller may free it right after. */
    void (*begin)(void *state, const float *x_prev, const float *x_self, size_t dim);
    void (*observe)(void *state, uint32_t slot, const float *x, size_t dim);
};

/* The value of one of the rule's parameters (set or default). */
static inline double bn_rule_param(const bn_rule_env_t *env, const bn_rule_param_t *p)
{
    return bn_rule_opts_value(env->opts, p);
}

/* The registry (registry.def): one extern per rule. */
#define BN_RULE(ops) extern const bn_rule_ops_t ops;
#include "registry.def"
#undef BN_RULE

/* ---- kernels shared by several rules ------------------------------------- */
/* mean.c: x_out = mean of the set, w = 1/n (each term scaled before it is added). */
int bn_rules_mean_core(const bn_set_t *set, float *x_out, float *w);

/* trimmed_mean.c: scratch of the coordinate-wise trimmed-mean kernel for
 * cap vectors, and its streamed store (trimmed-mean and median, when the
 * node calls begin / observe): each vector's order keys written as it
 * arrives, group-major (the BN_TRIM_W coordinates of a group, row by row,
 * are contiguous), so that after the last arrival the selection reads
 * contiguous keys already made.  Store: 64 cap ceil(dim / BN_TRIM_W) bytes
 * (about 4 cap dim, a second copy of the inbox's payload). */
typedef struct {
    int32_t  *keys;               /* cap * BN_TRIM_W: order keys of one group      */
    float    *tblock;             /* BN_RULE_BLOCK * cap floats: padded tail rows,
                                   * the median's transposed blocks (n > 256)      */
    const float **tailv;          /* cap pointers into tblock                      */
    uint32_t *kept;               /* cap: values kept per vector (telemetry)       */
    /* the streamed store; kb == NULL: none */
    int32_t  *kb;                 /* groups * cap * BN_TRIM_W keys                 */
    const float **o_ptr;          /* cap: the vector keyed into each row this round;
                                   * rows < cap - 1 are slots, cap - 1 is x_self   */
    uint32_t *row;                /* cap: the row of each set member, or UINT32_MAX */
    uint32_t cap;
    size_t   dim;
    int      open;                /* begin called, aggregate not yet               */
} bn_trim_scratch_t;
int  bn_trim_scratch_init(bn_trim_scratch_t *t, uint32_t bmax, uint32_t cap);
void bn_trim_scratch_free(bn_trim_scratch_t *t);
/* Adds the streamed store for vectors of dim floats (after scratch_init). */
int  bn_trim_stream_init(bn_trim_scratch_t *t, size_t dim);
/* The rule's begin / observe on it (no-ops without a store). */
void bn_trim_stream_begin(bn_trim_scratch_t *t, const float *x_self, size_t dim);
void bn_trim_stream_observe(bn_trim_scratch_t *t, uint32_t slot, const float *x, size_t dim);
/* The trimmed-mean kernel with an explicit b, 2b < n; uses the vectors of
 * the set found in the store (same pointers, observed since begin), counted
 * in set->stats->streamed, and closes the round's store. */
int  bn_rules_trimmed_core(bn_trim_scratch_t *t, const bn_set_t *set, uint32_t b,
                           float *x_out, float *w);

/* The selection kernel behind it (trim_simd.h), one per kernel set
 * (trim_k512.c, trim_k256.c, trim_kbase.c), chosen by bn_kernels_current():
 *   group: the trimmed mean of BN_TRIM_W coordinates v[j] + off, j < n, into
 *     out, with inv = 1 / (n - 2b); keys is cap * BN_TRIM_W scratch; kept[j]
 *     counts the lanes (among those set in `valid`) where v[j] was kept
 *     strictly inside the cut-offs;
 *   group_keys: the same on n rows of BN_TRIM_W order keys (vec.h) already
 *     made, 64-byte aligned; `ahead` > 0: prefetch that many bytes further;
 *   store: the order keys of x[0..dim) into row `row` of every group of a
 *     group-major store (group g's row at kb + g * gstride + row *
 *     BN_TRIM_W, 64-byte aligned; the tail padded with the key of +0),
 *     with non-temporal stores if `stream`. */
#define BN_TRIM_W 16
typedef struct {
    const char *name;
    /* NULL when this build cannot emit the set's instructions */
    void (*group)(const float *const *v, size_t off, uint32_t n, uint32_t b, float inv,
                  int32_t *keys, uint32_t *kept, unsigned valid, float *out);
    void (*group_keys)(const int32_t *keys, uint32_t n, uint32_t b, float inv, uint32_t *kept,
                       unsigned valid, float *out, size_t ahead);
    void (*store)(const float *x, size_t dim, int32_t *kb, size_t gstride, uint32_t row,
                  int stream);
} bn_trim_kernel_t;
extern const bn_trim_kernel_t bn_trim_kernel_avx512, bn_trim_kernel_avx2, bn_trim_kernel_base;
/* The kernel of the current set (bn_kernels_current), else the base one. */
const bn_trim_kernel_t *bn_trim_kernel(void);

/* median.c: coordinate-wise median with the scratch above. */
int  bn_rules_median_core(bn_trim_scratch_t *t, const bn_set_t *set, float *x_out, float *w);

/* bucketing.c: s-resampling before a BN_RULE_F_BUCKETABLE rule. */
typedef struct {
    uint32_t s;                   /* bucket size (> 1)                            */
    uint32_t nb_max;              /* buckets at most                              */
    float    *bucket;             /* nb_max * dim floats: bucket means            */
    const float **bv;             /* nb_max pointers into bucket                  */
    uint32_t *perm;               /* cap: permutation of the set                  */
    uint32_t *bucket_of;          /* cap: bucket of each set member               */
    float    *bw;                 /* nb_max: weights of the buckets               */
    uint8_t  *bbad;               /* nb_max: bad flags of the bucket set          */
    bn_rng_t rng;                 /* the permutation stream                       */
} bn_bucketing_t;
int  bn_bucketing_init(bn_bucketing_t *b, uint32_t s, uint64_t seed, size_t dim, uint32_t cap);
void bn_bucketing_free(bn_bucketing_t *b);
/* Averages a seeded permutation of the set in buckets of s, applies the
 * inner rule to the bucket means; w gets each member's share (its bucket's
 * weight / bucket size). */
int  bn_bucketing_apply(bn_bucketing_t *b, const bn_rule_ops_t *inner, void *inner_state,
                        const bn_set_t *set, float *x_out, float *w);

/* ---- reputation memory (reputation.c; bygars, bygars++) -------------------- */
typedef struct {
    uint32_t id;                  /* node id                                      */
    uint8_t  used;                /* slot occupied                                */
    double   q;                   /* its reputation                               */
} bn_rep_slot_t;
typedef struct {
    bn_rep_slot_t *slot;          /* cap slots (NULL before init / after free)    */
    uint32_t cap, used;           /* power of two; occupied                       */
    double   self;                /* the node's own reputation                    */
} bn_rep_table_t;
/* Slots for rounds of up to cap vectors; BN_ENOMEM. */
int  bn_rep_init(bn_rep_table_t *t, uint32_t cap);
void bn_rep_free(bn_rep_table_t *t);
/* The reputation of id (inserted at 0 if insert and there is room), or NULL. */
double *bn_rep_find(bn_rep_table_t *t, uint32_t id, bool insert);
/* Its value, 0 for an id never seen. */
double bn_rep_get(bn_rep_table_t *t, uint32_t id);
/* ops->reputation of a rule whose state begins with its bn_rep_table_t. */
double bn_rep_reputation(void *state, uint32_t id);
/* The memory of set member j: &t->self for the node (j = n - 1), the
 * neighbour's slot (inserted), or NULL (no ids, or the table is full). */
double *bn_rep_of(bn_rep_table_t *t, const bn_set_t *set, uint32_t j);
/* out = x_prev + sum_j coef[j] (v[j] - x_prev). */
void bn_rep_combine(const bn_set_t *set, const double *coef, float *restrict out);
/* The degenerate round: x_out = x_self, all weight on self, counted. */
void bn_rep_keep_self(const bn_set_t *set, float *x_out, float *w);

/* ---- similarity pieces, exposed for the tests ----------------------------- */
/* KL(p || q) over the three sign bins {+, 0, -}, both smoothed as
 * (p + eps) / (1 + 3 eps) with eps = BN_SIM_EPS; p and q are fractions. */
double bn_rules_sign_kl(const double p[3], const double q[3]);

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
